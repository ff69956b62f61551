/* check_client.c - unit tests of the test client's internals: the pattern
 * streams, the latency histogram, the /proc parsers, the socket helpers and
 * echo-client's command line. One suite, one TCase per unit.
 *
 * Step into one: CK_FORK=no CK_RUN_CASE=histogram gdb --args tests/check --unit
 */
#include "check_client.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/client.h"
#include "client/histogram.h"
#include "client/procfs.h"

/* ------------------------------------------------------------- pattern */

START_TEST(test_pattern_fill_matches_byte)
{
    unsigned char block[100];

    pattern_fill(7, 13, block, sizeof(block));
    for (size_t i = 0; i < sizeof(block); i++)
        ck_assert_uint_eq(block[i], pattern_byte(7, 13 + i));
}
END_TEST

START_TEST(test_pattern_slice_equals_whole)
{
    unsigned char whole[200], slice[63];

    pattern_fill(42, 0, whole, sizeof(whole));
    pattern_fill(42, 37, slice, sizeof(slice));
    ck_assert_mem_eq(slice, whole + 37, sizeof(slice));
}
END_TEST

START_TEST(test_pattern_check_finds_first_difference)
{
    unsigned char block[256];

    pattern_fill(3, 1000, block, sizeof(block));
    ck_assert_int_eq(pattern_check(3, 1000, block, sizeof(block)), -1);
    block[50] ^= 0x01;
    block[70] ^= 0x80;
    ck_assert_int_eq(pattern_check(3, 1000, block, sizeof(block)), 50);
    /* The same bytes checked at another offset do not match. */
    ck_assert_int_ne(pattern_check(3, 1001, block, sizeof(block)), -1);
}
END_TEST

START_TEST(test_pattern_seeds_differ)
{
    unsigned char a[256], b[256];
    int same = 0;

    pattern_fill(1000, 0, a, sizeof(a));
    pattern_fill(1001, 0, b, sizeof(b));
    for (size_t i = 0; i < sizeof(a); i++)
        same += a[i] == b[i];
    /* Random bytes agree 1 time in 256; allow a few. */
    ck_assert_int_lt(same, 8);
}
END_TEST

/* ----------------------------------------------------------- histogram */

START_TEST(test_histogram_buckets_bound_their_values)
{
    for (uint64_t v = 1; v < (1ULL << 40); v = v * 3 / 2 + 1) {
        int b = hist_bucket(v);
        uint64_t low = hist_bucket_low(b), next = hist_bucket_low(b + 1);
        ck_assert_uint_le(low, v);
        ck_assert_uint_gt(next, v);
        /* A bucket is at most 1/16 of its values wide. */
        ck_assert_uint_le((next - low) * 16, v < 16 ? 16 : v);
    }
}
END_TEST

START_TEST(test_histogram_percentiles_of_uniform)
{
    struct histogram *h = malloc(sizeof(*h));

    ck_assert_ptr_nonnull(h);
    hist_init(h);
    for (uint64_t v = 1; v <= 100000; v++)
        hist_record(h, v);
    ck_assert_uint_eq(h->total, 100000);
    ck_assert_uint_eq(h->max, 100000);
    /* Within a bucket's width (1/16) of the true value. */
    ck_assert_double_eq_tol(hist_percentile(h, 0.50), 50000, 50000 / 16.0);
    ck_assert_double_eq_tol(hist_percentile(h, 0.99), 99000, 99000 / 16.0);
    ck_assert_double_eq_tol(hist_percentile(h, 0.999), 99900, 99900 / 16.0);
    ck_assert_uint_le(hist_percentile(h, 1.0), 100000);
    free(h);
}
END_TEST

START_TEST(test_histogram_empty_and_single)
{
    struct histogram *h = malloc(sizeof(*h));

    ck_assert_ptr_nonnull(h);
    hist_init(h);
    ck_assert_uint_eq(hist_percentile(h, 0.5), 0);
    hist_record(h, 1000);
    /* One value: every percentile is it, within a bucket, never above. */
    ck_assert_uint_le(hist_percentile(h, 0.5), 1000);
    ck_assert_uint_ge(hist_percentile(h, 0.999), 1000 - 1000 / 16);
    free(h);
}
END_TEST

START_TEST(test_histogram_merge_adds_counts)
{
    struct histogram *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    hist_init(a);
    hist_init(b);
    for (int i = 0; i < 90; i++)
        hist_record(a, 10);
    for (int i = 0; i < 10; i++)
        hist_record(b, 5000);
    hist_merge(a, b);
    ck_assert_uint_eq(a->total, 100);
    ck_assert_uint_eq(a->max, 5000);
    ck_assert_uint_eq(hist_percentile(a, 0.5), 10);
    ck_assert_uint_ge(hist_percentile(a, 0.95), 5000 - 5000 / 16);
    free(a);
    free(b);
}
END_TEST

/* -------------------------------------------------------------- procfs */

static const char status_sample[] =
    "Name:\techo server\nUmask:\t0022\nState:\tS (sleeping)\n"
    "VmPeak:\t   10000 kB\nVmHWM:\t    4096 kB\nVmRSS:\t    2208 kB\n"
    "Threads:\t5\n"
    "voluntary_ctxt_switches:\t17\nnonvoluntary_ctxt_switches:\t3\n";

START_TEST(test_procfs_parse_status_fields)
{
    struct proc_status st;

    ck_assert_int_eq(proc_parse_status(status_sample, &st), 0);
    ck_assert_int_eq(st.rss_kib, 2208);
    ck_assert_int_eq(st.hwm_kib, 4096);
    ck_assert_int_eq(st.threads, 5);
    ck_assert_int_eq(st.voluntary_ctxt, 17);
    ck_assert_int_eq(st.involuntary_ctxt, 3);
}
END_TEST

START_TEST(test_procfs_parse_status_zombie_and_garbage)
{
    struct proc_status st;

    /* A zombie has no VmRSS line: 0, not an error. */
    ck_assert_int_eq(proc_parse_status("Name:\tx\nThreads:\t1\n", &st), 0);
    ck_assert_int_eq(st.rss_kib, 0);
    ck_assert_int_eq(proc_parse_status("no fields at all\n", &st), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* "VmRSS" must be the whole field name, at the start of a line. */
    ck_assert_int_eq(proc_parse_status("XVmRSS:\t9 kB\nThreads:\t1\n", &st), 0);
    ck_assert_int_eq(st.rss_kib, 0);
}
END_TEST

START_TEST(test_procfs_parse_stat_comm_with_parens)
{
    /* comm may hold spaces and ')': fields count from the last ')'. */
    static const char stat[] =
        "4401 (a) b (c)) R 4358 4358 3601 0 -1 4194304 100 0 0 0 "
        "250 50 0 0 20 0 1 0 48320 3133440 387";
    char state = 0;
    unsigned long long ticks = 0;

    ck_assert_int_eq(proc_parse_stat(stat, &state, &ticks), 0);
    ck_assert_int_eq(state, 'R');
    ck_assert_uint_eq(ticks, 300);
    ck_assert_int_eq(proc_parse_stat("4401 (cat) S 1 2", &state, &ticks), -1);
    ck_assert_int_eq(proc_parse_stat("no parenthesis", &state, &ticks), -1);
}
END_TEST

START_TEST(test_procfs_reads_this_process)
{
    struct proc_status st;
    double cpu = -1;
    int before = proc_fd_count(getpid());

    ck_assert_int_gt(before, 0);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_int_ne(fd, -1);
    ck_assert_int_eq(proc_fd_count(getpid()), before + 1);
    close(fd);
    ck_assert_int_eq(proc_read_status(getpid(), &st), 0);
    ck_assert_int_gt(st.rss_kib, 0);
    ck_assert_int_ge(st.threads, 1);
    ck_assert_int_eq(proc_cpu_seconds(getpid(), &cpu), 0);
    ck_assert(cpu >= 0);
    ck_assert(proc_alive(getpid()));
}
END_TEST

START_TEST(test_procfs_task_ctxt_delta_per_thread)
{
    /* Thread 20 exited (its counts are gone), 30 was born: only 10's
     * growth and 30's whole count are what happened in between. */
    static const struct proc_task_ctxt before[] = {{10, 100, 5}, {20, 50, 1}};
    static const struct proc_task_ctxt after[] = {{10, 130, 7}, {30, 4, 1}};
    long vol = -1, invol = -1;

    proc_task_ctxt_delta(before, 2, after, 2, &vol, &invol);
    ck_assert_int_eq(vol, 30 + 4);
    ck_assert_int_eq(invol, 2 + 1);
}
END_TEST

START_TEST(test_procfs_reads_own_threads)
{
    struct proc_task_ctxt *tasks = NULL;
    int count = proc_read_task_ctxt(getpid(), &tasks);

    ck_assert_int_ge(count, 1);
    for (int i = 1; i < count; i++)
        ck_assert_int_lt(tasks[i - 1].tid, tasks[i].tid); /* sorted */
    ck_assert_int_ge(tasks[0].voluntary, 0);
    free(tasks);
    ck_assert_int_eq(proc_read_task_ctxt(0, &tasks), -1);
}
END_TEST

START_TEST(test_procfs_dead_child_is_not_alive)
{
    pid_t child = fork();

    ck_assert_int_ne(child, -1);
    if (child == 0)
        _exit(0);
    /* Exited but not reaped: a zombie, which is not alive. */
    for (int i = 0; i < 500 && proc_alive(child); i++)
        client_sleep_ms(2);
    ck_assert(!proc_alive(child));
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    ck_assert(!proc_alive(child));
    ck_assert_int_eq(proc_fd_count(child), -1);
}
END_TEST

/* -------------------------------------------------------------- client */

START_TEST(test_client_send_and_recv_exact)
{
    int sv[2];
    char got[5];
    size_t have = 0;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    ck_assert_int_eq(client_send_all(sv[0], "hello", 5, client_deadline(1000)),
                     0);
    ck_assert_int_eq(
        client_recv_exact(sv[1], got, 5, client_deadline(1000), &have), 5);
    ck_assert_mem_eq(got, "hello", 5);
    /* Nothing more: the deadline bounds the wait. */
    ck_assert_int_eq(
        client_recv_exact(sv[1], got, 1, client_deadline(30), &have), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ck_assert_uint_eq(have, 0);
    /* End of stream: a short count, not an error. */
    ck_assert_int_eq(client_send_all(sv[0], "ab", 2, client_deadline(1000)), 0);
    close(sv[0]);
    ck_assert_int_eq(
        client_recv_exact(sv[1], got, 5, client_deadline(1000), &have), 2);
    close(sv[1]);
}
END_TEST

START_TEST(test_client_expect_quiet)
{
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    ck_assert_int_eq(client_expect_quiet(sv[1], 20), QUIET_NOTHING);
    ck_assert_int_eq(client_send_all(sv[0], "x", 1, client_deadline(100)), 0);
    ck_assert_int_eq(client_expect_quiet(sv[1], 20), QUIET_DATA);
    /* MSG_PEEK left the byte there. */
    ck_assert_int_eq(client_expect_quiet(sv[1], 20), QUIET_DATA);
    close(sv[0]);
    ck_assert_int_eq(client_drain_to_end(sv[1], client_deadline(100)), 0);
    ck_assert_int_eq(client_expect_quiet(sv[1], 20), QUIET_EOF);
    close(sv[1]);
}
END_TEST

START_TEST(test_client_connect_refused)
{
    /* Bind a port, close it: nothing listens there now. */
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);

    ck_assert_int_ne(probe, -1);
    ck_assert_int_eq(bind(probe, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(probe, (struct sockaddr *)&sin, &len), 0);
    close(probe);
    ck_assert_int_eq(client_connect("127.0.0.1", ntohs(sin.sin_port), 1000),
                     -1);
    ck_assert_int_eq(errno, ECONNREFUSED);
    ck_assert_int_eq(client_connect("localhost", 9, 1000), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ----------------------------------------------------------------- cli */

/* Splits a command line into argv (words kept in a static buffer: struct
 * cli points into them) and parses it. */
static int parse_line(const char *line, struct cli *out, char *err,
                      size_t err_len)
{
    static char words[512];
    char *argv[32], *save = NULL;
    int argc = 0;

    snprintf(words, sizeof(words), "%s", line);
    for (char *w = strtok_r(words, " ", &save); w != NULL && argc < 31;
         w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    argv[argc] = NULL;
    return cli_parse(argc, argv, out, err, err_len);
}

START_TEST(test_cli_suite_options)
{
    struct cli c;
    char err[256];

    ck_assert_int_eq(parse_line("echo-client suite --only half-close "
                                "--server-pid 42 -H ::1 -p 9002",
                                &c, err, sizeof(err)),
                     0);
    ck_assert_int_eq(c.command, CLI_SUITE);
    ck_assert_str_eq(c.only, "half-close");
    ck_assert_int_eq(c.server_pid, 42);
    ck_assert_str_eq(c.host, "::1");
    ck_assert_int_eq(c.port, 9002);
}
END_TEST

START_TEST(test_cli_bench_options)
{
    struct cli c;
    char err[256];

    ck_assert_int_eq(
        parse_line("echo-client bench -p 9 ", &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.command, CLI_BENCH);
    ck_assert_int_eq(c.bench.conns, 1);
    ck_assert_uint_eq(c.bench.size, 64);
    ck_assert(!c.bench.stream && !c.bench.csv);
    ck_assert_int_eq(parse_line("echo-client bench -c 50 -i 950 -s 1024 -d 2.5 "
                                "-w 0 --stream --csv --server-pid 42 -p 9",
                                &c, err, sizeof(err)),
                     0);
    ck_assert_int_eq(c.bench.conns, 50);
    ck_assert_int_eq(c.bench.idle, 950);
    ck_assert_uint_eq(c.bench.size, 1024);
    ck_assert_double_eq(c.bench.seconds, 2.5);
    ck_assert_double_eq(c.bench.warmup, 0);
    ck_assert(c.bench.stream && c.bench.csv);
    ck_assert_int_eq(c.bench.server_pid, 42);
    ck_assert_int_eq(c.bench.port, 9);
    ck_assert_str_eq(c.bench.host, "127.0.0.1");
}
END_TEST

START_TEST(test_cli_rejects_bad_input)
{
    static const char *const bad[] = {
        "echo-client -p 70000",
        "echo-client -p 12x",
        "echo-client -p ''",
        "echo-client",
        "echo-client bench -c 0 -p 9",
        "echo-client bench -d abc -p 9",
        "echo-client bench -d 1e9 -p 9",
        "echo-client bench -s -5 -p 9",
        "echo-client bench --only half-close -p 9",
        "echo-client suite -c 5 -p 9",
        "echo-client -H localhost -p 9",
        "echo-client suite --only nope -p 9",
        "echo-client -p 9 extra",
        "echo-client --server-pid 1 -p 9",
        "echo-client -x -p 9",
        "echo-client suite --server-pid 0 -p 9",
    };
    struct cli c;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(parse_line(bad[i], &c, err, sizeof(err)) == -1,
                      "accepted: %s", bad[i]);
        ck_assert_msg(err[0] != '\0', "no reason for: %s", bad[i]);
    }
}
END_TEST

START_TEST(test_cli_help_needs_no_port)
{
    struct cli c;
    char err[256];

    ck_assert_int_eq(parse_line("echo-client --help", &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.command, CLI_HELP);
    ck_assert_int_eq(
        parse_line("echo-client bench --help", &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.command, CLI_HELP);
}
END_TEST

void add_client_suites(SRunner *sr)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("pattern");

    tcase_add_test(tc, test_pattern_fill_matches_byte);
    tcase_add_test(tc, test_pattern_slice_equals_whole);
    tcase_add_test(tc, test_pattern_check_finds_first_difference);
    tcase_add_test(tc, test_pattern_seeds_differ);
    suite_add_tcase(s, tc);
    tc = tcase_create("histogram");
    tcase_add_test(tc, test_histogram_buckets_bound_their_values);
    tcase_add_test(tc, test_histogram_percentiles_of_uniform);
    tcase_add_test(tc, test_histogram_empty_and_single);
    tcase_add_test(tc, test_histogram_merge_adds_counts);
    suite_add_tcase(s, tc);
    tc = tcase_create("procfs");
    tcase_add_test(tc, test_procfs_parse_status_fields);
    tcase_add_test(tc, test_procfs_parse_status_zombie_and_garbage);
    tcase_add_test(tc, test_procfs_parse_stat_comm_with_parens);
    tcase_add_test(tc, test_procfs_reads_this_process);
    tcase_add_test(tc, test_procfs_task_ctxt_delta_per_thread);
    tcase_add_test(tc, test_procfs_reads_own_threads);
    tcase_add_test(tc, test_procfs_dead_child_is_not_alive);
    suite_add_tcase(s, tc);
    tc = tcase_create("socket-helpers");
    tcase_add_test(tc, test_client_send_and_recv_exact);
    tcase_add_test(tc, test_client_expect_quiet);
    tcase_add_test(tc, test_client_connect_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("cli");
    tcase_add_test(tc, test_cli_suite_options);
    tcase_add_test(tc, test_cli_bench_options);
    tcase_add_test(tc, test_cli_rejects_bad_input);
    tcase_add_test(tc, test_cli_help_needs_no_port);
    suite_add_tcase(s, tc);
    srunner_add_suite(sr, s);
}
