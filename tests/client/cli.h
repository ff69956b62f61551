/* cli.h - echo-client's command line, parsed strictly (a bad number is an
 * error, not a zero), apart from main() so the unit tests can run it.
 *
 *   echo-client [-H HOST] -p PORT                        interactive
 *   echo-client suite [--only NAME] [--server-pid PID] [-H HOST] -p PORT
 *   echo-client bench [-c CONNS] [-i IDLE] [-s BYTES] [-d SECONDS]
 *                     [-w SECONDS] [--stream] [--csv] [--server-pid PID]
 *                     [-H HOST] -p PORT
 */
#ifndef TESTS_CLIENT_CLI_H
#define TESTS_CLIENT_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "bench.h"

enum cli_command { CLI_INTERACTIVE, CLI_SUITE, CLI_BENCH, CLI_HELP };

struct cli {
    enum cli_command command;
    const char *host;
    int port;
    const char *only; /* suite: one scenario, or NULL for all */
    pid_t server_pid; /* suite, bench: 0 = unknown */
    struct bench_opts bench;
};

/* Parses argv into *out. Returns 0, or -1 with a one-line reason in err.
 * Resets getopt first, so it may be called more than once. */
int cli_parse(int argc, char **argv, struct cli *out, char *err,
              size_t err_len);

void cli_usage(FILE *out);

#endif
