/* echo-client.c - the one test client of the project.
 *
 *   echo-client -p 9002                  like nc: type, see the echo
 *   echo-client suite -p 9002            the scenario catalogue, PASS/FAIL
 *   echo-client bench -c 50 -s 1024 -p 9002    closed-loop load
 *
 * It works against any echo server, this project's or another's (socat,
 * nc -e cat). It uses common/ for options and errors, and no model's code.
 *
 * Try:  socat TCP-LISTEN:9100,reuseaddr,fork EXEC:cat &
 *       tests/echo-client suite -p 9100
 * gdb:  break catalogue.c:run_half_close, break streams_pump, break fail
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "client.h"
#include "err.h"
#include "log.h"
#include "procfs.h"
#include "scenarios/catalogue.h"
#include "sig.h"

#define INTERACTIVE_SEND_MS 30000 /* a server that takes nothing for 30 s */

/* write(2) until all is written: stdout may be a pipe taking part of it. */
static void write_all_stdout(const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, data, len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            die("write(stdout)");
        data += n;
        len -= (size_t)n;
    }
}

/* stdin -> server. Returns false at end of input (then half-closes). */
static bool copy_stdin(int sock)
{
    char buf[16384];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

    if (n == -1 && errno == EINTR)
        return true;
    if (n == -1)
        die("read(stdin)");
    if (n == 0) {
        /* Our FIN tells the server we are done; its echo of what is still
         * in flight keeps coming until it closes (the half-close rule,
         * NOTES §1). */
        if (shutdown(sock, SHUT_WR) == -1)
            die("shutdown(SHUT_WR)");
        return false;
    }
    if (client_send_all(sock, buf, (size_t)n,
                        client_deadline(INTERACTIVE_SEND_MS)) == -1)
        die("send");
    return true;
}

/* server -> stdout. Returns false once the server has closed. */
static bool copy_socket(int sock)
{
    char buf[16384];
    ssize_t n = recv(sock, buf, sizeof(buf), 0);

    if (n == -1 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n == -1)
        die("recv");
    if (n == 0)
        return false;
    write_all_stdout(buf, (size_t)n);
    return true;
}

static int run_interactive(const struct cli *c)
{
    int sock = client_connect(c->host, c->port, 5000);
    bool input_open = true, server_open = true;

    if (sock == -1)
        die("connect to %s port %d", c->host, c->port);
    while (server_open) {
        struct pollfd pfd[2] = {
            {.fd = sock, .events = POLLIN},
            {.fd = input_open ? STDIN_FILENO : -1, .events = POLLIN},
        };
        /* Interactive: waiting for the user has no bound (like nc). */
        if (poll(pfd, 2, -1) == -1) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (pfd[1].revents != 0)
            input_open = copy_stdin(sock);
        if (pfd[0].revents != 0)
            server_open = copy_socket(sock);
    }
    close(sock);
    return 0;
}

static int run_suite(const struct cli *c)
{
    struct target t = {
        .host = c->host, .port = c->port, .server_pid = c->server_pid};
    int passed = 0, failed = 0, skipped = 0;

    if (c->server_pid != 0 && !proc_alive(c->server_pid)) {
        fprintf(stderr, "echo-client: --server-pid %d: no such live process\n",
                (int)c->server_pid);
        return 2;
    }
    for (size_t i = 0; i < scenario_count; i++) {
        const struct scenario *s = &scenarios[i];
        char why[512] = "";
        if (c->only != NULL && s != scenario_find(c->only))
            continue;
        switch (s->run(&t, why, sizeof(why))) {
        case OUTCOME_PASS:
            printf("PASS %s\n", s->name);
            passed++;
            break;
        case OUTCOME_FAIL:
            printf("FAIL %s: %s\n", s->name, why);
            failed++;
            break;
        case OUTCOME_SKIP:
            printf("SKIP %s: %s\n", s->name, why);
            skipped++;
            break;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed", passed, failed);
    if (skipped > 0)
        printf(", %d skipped", skipped);
    printf("\n");
    return failed > 0 ? 1 : 0;
}

static int run_bench(const struct cli *c)
{
    struct bench_result *r = malloc(sizeof(*r)); /* the histogram: ~8 KiB */

    if (r == NULL)
        die("malloc");
    if (bench_run(&c->bench, r) == -1) {
        free(r);
        return 1;
    }
    bench_print(&c->bench, r, stdout);
    int status = r->errors > 0 ? 1 : 0;
    free(r);
    return status;
}

int main(int argc, char **argv)
{
    struct cli c;
    char err[256];

    log_init("echo-client", 0);
    if (cli_parse(argc, argv, &c, err, sizeof(err)) == -1) {
        fprintf(stderr, "echo-client: %s\n", err);
        cli_usage(stderr);
        return 2;
    }
    if (c.command == CLI_HELP) {
        cli_usage(stdout);
        return 0;
    }
    /* A peer that resets, or a closed stdout pipe: EPIPE, not death. */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");
    /* many-idle holds 900 sockets; bench -i may hold more. */
    if (client_raise_nofile() == -1)
        die("setrlimit(RLIMIT_NOFILE)");
    switch (c.command) {
    case CLI_SUITE:
        return run_suite(&c);
    case CLI_BENCH:
        return run_bench(&c);
    default:
        return run_interactive(&c);
    }
}
