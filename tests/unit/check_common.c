/* check_common.c - Check unit tests of common/: one suite per module.
 *
 * Step into one: CK_FORK=no CK_RUN_SUITE=buf gdb --args tests/check --unit
 */
#include "check_common.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "err.h"
#include "idle.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

/* ------------------------------------------------------------------ buf */

static int pair[2];

static void pair_setup(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
}

static void pair_teardown(void)
{
    close(pair[0]);
    close(pair[1]);
}

START_TEST(test_buf_fill_then_drain_echoes_in_order)
{
    struct buf b;
    char back[16] = {0};

    ck_assert_int_eq(buf_init(&b, 8), 0);
    ck_assert_int_eq(write(pair[1], "abcdef", 6), 6);
    ck_assert_int_eq(buf_fill(&b, pair[0]), 6);
    ck_assert_uint_eq(buf_len(&b), 6);
    ck_assert_int_eq(buf_drain(&b, pair[0]), 6);
    ck_assert(buf_empty(&b));
    ck_assert_int_eq(read(pair[1], back, sizeof(back)), 6);
    ck_assert_str_eq(back, "abcdef");
    buf_free(&b);
}
END_TEST

START_TEST(test_buf_fill_stops_at_the_bound)
{
    struct buf b;

    ck_assert_int_eq(buf_init(&b, 4), 0);
    ck_assert_int_eq(write(pair[1], "0123456789", 10), 10);
    ck_assert_int_eq(buf_fill(&b, pair[0]), 4);  /* no more than the cap */
    ck_assert(buf_full(&b));
    errno = 0;
    ck_assert_int_eq(buf_fill(&b, pair[0]), -1);
    ck_assert_int_eq(errno, ENOBUFS);
    buf_free(&b);
}
END_TEST

START_TEST(test_buf_consume_keeps_the_rest_at_the_head)
{
    struct buf b;

    ck_assert_int_eq(buf_init(&b, 8), 0);
    memcpy(buf_tail(&b), "hello", 5);
    buf_commit(&b, 5);
    buf_consume(&b, 2);
    ck_assert_uint_eq(buf_len(&b), 3);
    ck_assert_int_eq(memcmp(buf_head(&b), "llo", 3), 0);
    ck_assert_uint_eq(buf_space(&b), 5);
    buf_free(&b);
}
END_TEST

START_TEST(test_buf_fill_reports_end_of_stream)
{
    struct buf b;

    ck_assert_int_eq(buf_init(&b, 8), 0);
    ck_assert_int_eq(shutdown(pair[1], SHUT_WR), 0);
    ck_assert_int_eq(buf_fill(&b, pair[0]), 0);
    buf_free(&b);
}
END_TEST

START_TEST(test_buf_drain_to_closed_peer_is_epipe_not_sigpipe)
{
    struct buf b;

    /* SIGPIPE left at its default: were MSG_NOSIGNAL missing, the forked
     * test would die of the signal instead of failing an assertion. */
    signal(SIGPIPE, SIG_DFL);
    ck_assert_int_eq(buf_init(&b, 8), 0);
    memcpy(buf_tail(&b), "x", 1);
    buf_commit(&b, 1);
    close(pair[1]);
    pair[1] = -1;
    ck_assert_int_eq(buf_drain(&b, pair[0]), -1);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_uint_eq(buf_len(&b), 1);  /* nothing was lost */
    buf_free(&b);
}
END_TEST

START_TEST(test_buf_init_rejects_zero_capacity)
{
    struct buf b;

    ck_assert_int_eq(buf_init(&b, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");

    tcase_add_checked_fixture(tc, pair_setup, pair_teardown);
    tcase_add_test(tc, test_buf_fill_then_drain_echoes_in_order);
    tcase_add_test(tc, test_buf_fill_stops_at_the_bound);
    tcase_add_test(tc, test_buf_consume_keeps_the_rest_at_the_head);
    tcase_add_test(tc, test_buf_fill_reports_end_of_stream);
    tcase_add_test(tc, test_buf_drain_to_closed_peer_is_epipe_not_sigpipe);
    tcase_add_test(tc, test_buf_init_rejects_zero_capacity);
    suite_add_tcase(s, tc);
    return s;
}

/* ----------------------------------------------------------------- opts */

static int test_mode;
static int test_threads = 4;
static int test_edge;

static const struct model_opt test_extra[] = {
    {"mode", 0, OPT_CHOICE, "a|b", "iterative|threads", 0, 0, "mode", &test_mode},
    {"threads", 't', OPT_INT, "N", NULL, 1, 64, "threads", &test_threads},
    {"edge", 0, OPT_FLAG, NULL, NULL, 0, 0, "edge", &test_edge},
};

static const struct model_info test_model = {
    .program = "test/server",
    .summary = "a model for the option tests",
    .default_port = 9099,
    .default_max_clients = 1000,
    .max_clients_limit = 5000,
    .extra = test_extra,
    .extra_count = 3,
};

/* Parses a NULL-terminated list of words after a program name. */
static enum opts_result parse(struct server_opts *o, const char *const *words)
{
    char *argv[16] = {"server"};
    int argc = 1;

    while (*words != NULL && argc < 15)
        argv[argc++] = (char *)*words++;
    argv[argc] = NULL;
    return opts_parse(argc, argv, &test_model, o);
}

START_TEST(test_opts_defaults)
{
    struct server_opts o;
    const char *words[] = {NULL};

    ck_assert_int_eq(parse(&o, words), OPTS_OK);
    ck_assert_str_eq(o.host, "127.0.0.1");
    ck_assert_int_eq(o.port, 9099);
    ck_assert_int_eq(o.max_clients, 1000);
    ck_assert_int_eq(o.verbose, 0);
    ck_assert_int_eq(o.idle_timeout, 300);
}
END_TEST

START_TEST(test_opts_all_common_options)
{
    struct server_opts o;
    const char *words[] = {"-H", "::1", "--port", "0", "-c", "7", "-vv",
                           "--idle-timeout", "0", NULL};

    ck_assert_int_eq(parse(&o, words), OPTS_OK);
    ck_assert_str_eq(o.host, "::1");
    ck_assert_int_eq(o.port, 0);
    ck_assert_int_eq(o.max_clients, 7);
    ck_assert_int_eq(o.verbose, 2);
    ck_assert_int_eq(o.idle_timeout, 0);
}
END_TEST

START_TEST(test_opts_model_options)
{
    struct server_opts o;
    const char *words[] = {"--mode", "threads", "-t", "8", "--edge", NULL};

    test_mode = 0;
    test_threads = 4;
    test_edge = 0;
    ck_assert_int_eq(parse(&o, words), OPTS_OK);
    ck_assert_int_eq(test_mode, 1);
    ck_assert_int_eq(test_threads, 8);
    ck_assert_int_eq(test_edge, 1);
}
END_TEST

/* Each row: words that must be refused. */
static const char *const bad_lines[][4] = {
    {"-p", "65536", NULL},     {"-p", "-1", NULL},   {"-p", "80x", NULL},
    {"-p", "", NULL},          {"-p", " 5", NULL},   {"-c", "0", NULL},
    {"-c", "5001", NULL},      {"-H", "localhost", NULL},
    {"--mode", "fast", NULL},  {"-t", "0", NULL},    {"--bogus", NULL},
    {"-p", NULL},              {"extra-word", NULL}, {"-p", "99999999999999999999", NULL},
    {"--idle-timeout", "-1", NULL}, {"--idle-timeout", "2s", NULL},
    {"--idle-timeout", "86401", NULL}, {"--idle-timeout", NULL},
};

START_TEST(test_opts_rejects_bad_input)
{
    struct server_opts o;

    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));  /* the one-line errors are expected */
    ck_assert_int_eq(parse(&o, bad_lines[_i]), OPTS_BAD);
}
END_TEST

START_TEST(test_opts_help)
{
    struct server_opts o;
    const char *words[] = {"--help", NULL};

    ck_assert_int_eq(parse(&o, words), OPTS_HELP);
}
END_TEST

START_TEST(test_opts_parse_long_strict)
{
    long v;

    ck_assert_int_eq(opts_parse_long("42", 0, 100, &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(opts_parse_long("101", 0, 100, &v), -1);
    ck_assert_int_eq(errno, ERANGE);
    ck_assert_int_eq(opts_parse_long("4 2", 0, 100, &v), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(opts_parse_long("", 0, 100, &v), -1);
    ck_assert_int_eq(opts_parse_long(NULL, 0, 100, &v), -1);
}
END_TEST

/* The exit paths main() relies on: --help exits 0, bad input exits 2. */
START_TEST(test_opts_or_exit_help_exits_0)
{
    struct server_opts o;
    char *argv[] = {"server", "--help", NULL};

    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stdout));
    opts_parse_or_exit(2, argv, &test_model, &o);
}
END_TEST

START_TEST(test_opts_or_exit_bad_port_exits_2)
{
    struct server_opts o;
    char *argv[] = {"server", "-p", "nope", NULL};

    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
    opts_parse_or_exit(3, argv, &test_model, &o);
}
END_TEST

static Suite *opts_suite(void)
{
    Suite *s = suite_create("opts");
    TCase *tc = tcase_create("opts");
    int bad = sizeof(bad_lines) / sizeof(bad_lines[0]);

    tcase_add_test(tc, test_opts_defaults);
    tcase_add_test(tc, test_opts_all_common_options);
    tcase_add_test(tc, test_opts_model_options);
    tcase_add_loop_test(tc, test_opts_rejects_bad_input, 0, bad);
    tcase_add_test(tc, test_opts_help);
    tcase_add_test(tc, test_opts_parse_long_strict);
    tcase_add_exit_test(tc, test_opts_or_exit_help_exits_0, 0);
    tcase_add_exit_test(tc, test_opts_or_exit_bad_port_exits_2, 2);
    suite_add_tcase(s, tc);
    return s;
}

/* ----------------------------------------------------------------- addr */

START_TEST(test_addr_format_ipv4)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(53412)};
    char text[ADDR_TEXT_MAX];

    inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr);
    ck_assert_int_eq(addr_format((struct sockaddr *)&in4, sizeof(in4), text,
                                 sizeof(text)), 0);
    ck_assert_str_eq(text, "127.0.0.1:53412");
}
END_TEST

START_TEST(test_addr_format_ipv6_has_brackets)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6,
                               .sin6_port = htons(9002)};
    char text[ADDR_TEXT_MAX];

    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    ck_assert_int_eq(addr_format((struct sockaddr *)&in6, sizeof(in6), text,
                                 sizeof(text)), 0);
    ck_assert_str_eq(text, "[::1]:9002");
}
END_TEST

START_TEST(test_addr_format_refuses_other_families_and_short_buffers)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET, .sin_port = htons(1)};
    struct sockaddr sa = {.sa_family = AF_UNIX};
    char text[8];

    ck_assert_int_eq(addr_format(&sa, sizeof(sa), text, sizeof(text)), -1);
    ck_assert_int_eq(errno, EAFNOSUPPORT);
    inet_pton(AF_INET, "10.20.30.40", &in4.sin_addr);
    ck_assert_int_eq(addr_format((struct sockaddr *)&in4, sizeof(in4), text,
                                 sizeof(text)), -1);
    ck_assert_int_eq(errno, ENOSPC);
}
END_TEST

static Suite *addr_suite(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("addr");

    tcase_add_test(tc, test_addr_format_ipv4);
    tcase_add_test(tc, test_addr_format_ipv6_has_brackets);
    tcase_add_test(tc, test_addr_format_refuses_other_families_and_short_buffers);
    suite_add_tcase(s, tc);
    return s;
}

/* ------------------------------------------------------------------ net */

/* Listens on host port 0, connects, and checks both ends agree. */
static void listen_connect_accept(const char *host, const char *prefix)
{
    char local[ADDR_TEXT_MAX], peer[ADDR_TEXT_MAX];
    int listen_fd = net_listen(host, 0, SOCK_CLOEXEC);

    ck_assert_msg(listen_fd >= 0, "net_listen(%s): %s", host, strerror(errno));
    int port = addr_local_port(listen_fd);
    ck_assert_int_gt(port, 0);
    ck_assert_int_eq(addr_local(listen_fd, local, sizeof(local)), 0);
    ck_assert_msg(strncmp(local, prefix, strlen(prefix)) == 0, "%s", local);

    int client = net_connect(host, port, SOCK_CLOEXEC);
    ck_assert_msg(client >= 0, "net_connect: %s", strerror(errno));
    int served = net_accept(listen_fd, SOCK_NONBLOCK, peer, sizeof(peer));
    ck_assert_int_ge(served, 0);
    ck_assert_msg(strncmp(peer, prefix, strlen(prefix)) == 0, "%s", peer);
    ck_assert_int_eq(fcntl(served, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    close(served);
    close(client);
    close(listen_fd);
}

START_TEST(test_net_listen_port_0_ipv4)
{
    listen_connect_accept("127.0.0.1", "127.0.0.1:");
}
END_TEST

START_TEST(test_net_listen_port_0_ipv6)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe == -1)
        return;  /* no IPv6 in this kernel: nothing to test */
    close(probe);
    listen_connect_accept("::1", "[::1]:");
}
END_TEST

START_TEST(test_net_listen_refuses_a_name_and_a_busy_port)
{
    ck_assert_int_eq(net_listen("localhost", 0, 0), -1);
    ck_assert_int_eq(errno, EINVAL);

    int first = net_listen("127.0.0.1", 0, 0);
    ck_assert_int_ge(first, 0);
    ck_assert_int_eq(net_listen("127.0.0.1", addr_local_port(first), 0), -1);
    ck_assert_int_eq(errno, EADDRINUSE);
    close(first);
}
END_TEST

START_TEST(test_net_socket_family_flags_and_address)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int fd = net_socket("127.0.0.1", 9002, false, SOCK_CLOEXEC, &ss, &len);

    ck_assert_msg(fd >= 0, "net_socket: %s", strerror(errno));
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(len, sizeof(struct sockaddr_in));
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9002);
    ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);

    /* Numeric hosts only: a name is refused before any socket exists. */
    errno = 0;
    ck_assert_int_eq(net_socket("localhost", 9002, false, 0, &ss, &len), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* A nonblocking connect that is still in progress: net_connect_finish
 * reports its outcome, success on a listener, ECONNREFUSED on a port that
 * was just closed. */
static int connect_nonblocking(int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = net_socket("127.0.0.1", port, false, SOCK_NONBLOCK, &ss, &len);

    ck_assert_int_ge(fd, 0);
    if (connect(fd, (struct sockaddr *)&ss, len) == -1)
        ck_assert_msg(errno == EINPROGRESS || errno == ECONNREFUSED, "%s",
                      strerror(errno));
    return fd;
}

START_TEST(test_net_connect_finish_reports_the_outcome)
{
    int listen_fd = net_listen("127.0.0.1", 0, SOCK_CLOEXEC);
    ck_assert_int_ge(listen_fd, 0);
    int port = addr_local_port(listen_fd);

    int fd = connect_nonblocking(port);
    ck_assert_msg(net_connect_finish(fd, 5000) == 0, "%s", strerror(errno));
    close(fd);

    close(listen_fd);  /* nobody listens there now */
    fd = connect_nonblocking(port);
    errno = 0;
    ck_assert_int_eq(net_connect_finish(fd, 5000), -1);
    ck_assert_msg(errno == ECONNREFUSED, "%s", strerror(errno));
    close(fd);
}
END_TEST

START_TEST(test_net_accept_error_classes)
{
    ck_assert(net_accept_exhausted(EMFILE));
    ck_assert(net_accept_exhausted(ENFILE));
    ck_assert(!net_accept_exhausted(ECONNABORTED));
    ck_assert(net_accept_transient(ECONNABORTED));
    ck_assert(!net_accept_transient(EBADF));
    ck_assert(!net_accept_transient(EMFILE));
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");

    tcase_add_test(tc, test_net_listen_port_0_ipv4);
    tcase_add_test(tc, test_net_listen_port_0_ipv6);
    tcase_add_test(tc, test_net_listen_refuses_a_name_and_a_busy_port);
    tcase_add_test(tc, test_net_socket_family_flags_and_address);
    tcase_add_test(tc, test_net_connect_finish_reports_the_outcome);
    tcase_add_test(tc, test_net_accept_error_classes);
    suite_add_tcase(s, tc);
    return s;
}

/* ------------------------------------------------------------ err + log */

/* Runs fn with stderr sent to a pipe; returns what it wrote. */
static void capture_stderr(void (*fn)(void), char *out, size_t len)
{
    int p[2], saved = dup(STDERR_FILENO);

    ck_assert_int_eq(pipe(p), 0);
    dup2(p[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(p[1]);
    ssize_t n = read(p[0], out, len - 1);
    out[n > 0 ? n : 0] = '\0';
    close(p[0]);
    close(saved);
}

static void write_some_lines(void)
{
    log_init("t", 1);
    log_info("info %d", 1);
    log_event("event");
    log_trace("trace: hidden at -v");
    errno = EAGAIN;
    warn_errno("recv(fd=%d)", 7);
    warn_code(ECONNRESET, "send");
}

START_TEST(test_log_lines_are_tagged_and_levelled)
{
    char text[1024];

    capture_stderr(write_some_lines, text, sizeof(text));
    ck_assert_str_eq(text, "[t] info 1\n"
                           "[t] event\n"
                           "[t] recv(fd=7): EAGAIN: Resource temporarily "
                           "unavailable\n"
                           "[t] send: ECONNRESET: Connection reset by peer\n");
}
END_TEST

START_TEST(test_err_die_exits_1)
{
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
    errno = EBADF;
    die("epoll_ctl(ADD, fd=%d)", 7);
}
END_TEST

START_TEST(test_err_die_code_exits_1)
{
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr));
    die_code(EAGAIN, "pthread_create");
}
END_TEST

/* Three passing failures in a row: the first is logged, each sleeps. */
static void back_off_three_times(void)
{
    log_init("t", 0);
    for (int i = 0; i < 3; i++) {
        errno = ENOMEM;
        back_off("poll(%d fds)", 5);
        ck_assert_int_eq(errno, ENOMEM);  /* kept for the caller */
    }
}

START_TEST(test_err_back_off_warns_once_and_sleeps)
{
    const char *line = "[t] poll(5 fds): ENOMEM: Cannot allocate memory "
                       "(retrying every 10 ms)\n";
    char text[1024];
    long long start = clock_ms();

    capture_stderr(back_off_three_times, text, sizeof(text));
    long long took = clock_ms() - start;
    ck_assert_int_ge(took, 3 * BACK_OFF_MS);
    /* At most one line per BACK_OFF_WARN_MS: one, unless this machine
     * stalled the test for a second (then the bound allows more). */
    int lines = 0;
    for (const char *p = text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    ck_assert_int_ge(lines, 1);
    ck_assert_int_le(lines, 1 + took / BACK_OFF_WARN_MS);
    ck_assert_int_eq(strncmp(text, line, strlen(line)), 0);
}
END_TEST

static Suite *err_suite(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("err");

    tcase_add_test(tc, test_log_lines_are_tagged_and_levelled);
    tcase_add_test(tc, test_err_back_off_warns_once_and_sleeps);
    tcase_add_exit_test(tc, test_err_die_exits_1, 1);
    tcase_add_exit_test(tc, test_err_die_code_exits_1, 1);
    suite_add_tcase(s, tc);
    return s;
}

/* ---------------------------------------------------------- sig + stats */

START_TEST(test_sig_stop_sets_flag_wakes_fd_and_shuts_sockets)
{
    int wake = eventfd(0, EFD_NONBLOCK);
    uint64_t count = 0;
    char byte;

    ck_assert_int_ge(wake, 0);
    sig_set_wake_fd(wake);
    sig_shutdown_on_stop(0, pair[0]);
    ck_assert_int_eq(sig_catch_stop(), 0);
    ck_assert(!sig_stop_requested());
    ck_assert_int_eq(raise(SIGTERM), 0);  /* the handler ran: we live on */
    ck_assert(sig_stop_requested());
    ck_assert_int_eq(read(wake, &count, sizeof(count)), sizeof(count));
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(recv(pair[0], &byte, 1, 0), 0);  /* shut down: EOF */
    sig_shutdown_on_stop(0, -1);
    sig_set_wake_fd(-1);
    close(wake);
}
END_TEST

START_TEST(test_sig_block_stop_blocks_both)
{
    sigset_t now;

    ck_assert_int_eq(sig_block_stop(NULL), 0);
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    ck_assert(sigismember(&now, SIGTERM));
    ck_assert(sigismember(&now, SIGINT));
}
END_TEST

START_TEST(test_stats_peak_and_current)
{
    struct stats s;

    stats_init(&s);
    ck_assert_int_eq(stats_client_opened(&s), 1);
    ck_assert_int_eq(stats_client_opened(&s), 2);
    ck_assert_int_eq(stats_client_closed(&s), 1);
    ck_assert_int_eq(stats_client_opened(&s), 2);
    stats_echoed(&s, 100);
    ck_assert_int_eq(atomic_load(&s.peak), 2);
    ck_assert_uint_eq(atomic_load(&s.served), 3);
    ck_assert_uint_eq(atomic_load(&s.bytes_echoed), 100);
    stats_closed_idle(&s);
    ck_assert_uint_eq(atomic_load(&s.closed_idle), 1);
}
END_TEST

/* The idle list: oldest first, a touch moves one to the tail, only the
 * head is looked at, and a timeout of 0 expires nobody. */
START_TEST(test_idle_oldest_first_and_touch_moves_to_tail)
{
    struct idle_list list;
    struct idle_entry a, b, c;
    int owners[3];

    idle_init(&list, 2);  /* 2 s */
    ck_assert_int_eq(idle_next_ms(&list, 0), -1);  /* nobody to time */
    idle_add(&list, &a, &owners[0], 1000);
    idle_add(&list, &b, &owners[1], 1500);
    idle_add(&list, &c, &owners[2], 1800);
    ck_assert_int_eq(idle_next_ms(&list, 2000), 1000);  /* a at 3000 */
    ck_assert_ptr_null(idle_expired(&list, 2999));
    idle_touch(&list, &a, 2500);  /* a is newest now: b is the oldest */
    ck_assert_int_eq(idle_next_ms(&list, 3000), 500);
    ck_assert_ptr_eq(idle_expired(&list, 3500), &owners[1]);
    idle_remove(&b);
    ck_assert(!idle_listed(&b));
    idle_remove(&b);  /* twice is harmless */
    idle_touch(&list, &b, 3600);  /* nor does a touch bring it back */
    ck_assert(!idle_listed(&b));
    ck_assert_ptr_eq(idle_expired(&list, 3800), &owners[2]);
    idle_remove(&c);
    ck_assert_ptr_null(idle_expired(&list, 4499));
    ck_assert_ptr_eq(idle_expired(&list, 9999), &owners[0]);
    ck_assert_int_eq(idle_next_ms(&list, 9999), 0);  /* overdue: 0, not < 0 */
    idle_remove(&a);
    ck_assert_int_eq(idle_next_ms(&list, 9999), -1);
}
END_TEST

START_TEST(test_idle_timeout_0_expires_nobody)
{
    struct idle_list list;
    struct idle_entry a;
    int owner;

    idle_init(&list, 0);
    idle_add(&list, &a, &owner, 0);
    ck_assert_ptr_null(idle_expired(&list, 1000LL * 1000 * 1000));
    ck_assert_int_eq(idle_next_ms(&list, 1000LL * 1000 * 1000), -1);
    idle_remove(&a);
}
END_TEST

static Suite *sig_suite(void)
{
    Suite *s = suite_create("sig");
    TCase *tc = tcase_create("sig");

    tcase_add_checked_fixture(tc, pair_setup, pair_teardown);
    tcase_add_test(tc, test_sig_stop_sets_flag_wakes_fd_and_shuts_sockets);
    tcase_add_test(tc, test_sig_block_stop_blocks_both);
    tcase_add_test(tc, test_stats_peak_and_current);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *idle_suite(void)
{
    Suite *s = suite_create("idle");
    TCase *tc = tcase_create("idle");

    tcase_add_test(tc, test_idle_oldest_first_and_touch_moves_to_tail);
    tcase_add_test(tc, test_idle_timeout_0_expires_nobody);
    suite_add_tcase(s, tc);
    return s;
}

void add_common_suites(SRunner *sr)
{
    srunner_add_suite(sr, buf_suite());
    srunner_add_suite(sr, opts_suite());
    srunner_add_suite(sr, addr_suite());
    srunner_add_suite(sr, net_suite());
    srunner_add_suite(sr, err_suite());
    srunner_add_suite(sr, sig_suite());
    srunner_add_suite(sr, idle_suite());
}
