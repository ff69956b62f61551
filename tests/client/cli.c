/* cli.c - echo-client's command line (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "opts.h"
#include "scenarios/catalogue.h"

/* getopt values of the long-only options. */
enum { OPT_HELP = 1000, OPT_ONLY, OPT_SERVER_PID, OPT_STREAM, OPT_CSV };

static const struct option long_options[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"help", no_argument, NULL, OPT_HELP},
    {"only", required_argument, NULL, OPT_ONLY},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"conns", required_argument, NULL, 'c'},
    {"idle", required_argument, NULL, 'i'},
    {"size", required_argument, NULL, 's'},
    {"duration", required_argument, NULL, 'd'},
    {"warmup", required_argument, NULL, 'w'},
    {"stream", no_argument, NULL, OPT_STREAM},
    {"csv", no_argument, NULL, OPT_CSV},
    {NULL, 0, NULL, 0},
};

void cli_usage(FILE *out)
{
    fprintf(
        out,
        "usage: echo-client [-H HOST] -p PORT\n"
        "         interactive: stdin to the server, its echo to stdout\n"
        "       echo-client suite [--only NAME] [--server-pid PID] [-H HOST] "
        "-p PORT\n"
        "         runs the scenario catalogue; exit 0 iff none failed\n"
        "       echo-client bench [-c CONNS] [-i IDLE] [-s BYTES] "
        "[-d SECONDS] [-w SECONDS]\n"
        "                         [--stream] [--csv] [--server-pid PID] "
        "[-H HOST] -p PORT\n"
        "         closed-loop load: CONNS connections (default 1) echo "
        "BYTES-byte messages\n"
        "         (default 64) for SECONDS (default 5) after a warm-up "
        "(default 1);\n"
        "         -i holds IDLE more connections open; --stream streams "
        "BYTES-byte blocks\n"
        "         (the warm-up also waits, at most %d s, for every "
        "connection's first echo)\n"
        "         --server-pid samples the server's /proc over the measured "
        "period\n"
        "         --csv prints one line: " BENCH_CSV_COLUMNS "\n"
        "  -H, --host ADDR   numeric server address (default 127.0.0.1)\n"
        "  -p, --port PORT   server port (required)\n"
        "      --help        this text\n"
        "scenarios:",
        BENCH_RAMP_MAX_S);
    for (size_t i = 0; i < scenario_count; i++)
        fprintf(out, "%s %s", i % 5 == 0 ? "\n " : "", scenarios[i].name);
    fprintf(out, "\n");
}

static int parse_int(const char *option, const char *text, long min, long max,
                     long *out, char *err, size_t err_len)
{
    if (opts_parse_long(text, min, max, out) == 0)
        return 0;
    snprintf(err, err_len, "%s: '%s' is not a whole number from %ld to %ld",
             option, text, min, max);
    return -1;
}

/* Seconds may have a fraction ("0.5"), but nothing else after the number. */
static int parse_seconds(const char *option, const char *text, double min,
                         double *out, char *err, size_t err_len)
{
    char *end;

    errno = 0;
    double value = strtod(text, &end);
    if (*text == '\0' || *end != '\0' || errno != 0 || !isfinite(value) ||
        value < min || value > 3600) {
        snprintf(err, err_len,
                 "%s: '%s' is not a number of seconds from %g "
                 "to 3600",
                 option, text, min);
        return -1;
    }
    *out = value;
    return 0;
}

/* Which options each command takes. */
static bool option_allowed(enum cli_command command, int c)
{
    switch (c) {
    case 'H':
    case 'p':
    case OPT_HELP:
        return true;
    case OPT_ONLY:
        return command == CLI_SUITE;
    case OPT_SERVER_PID:
        return command == CLI_SUITE || command == CLI_BENCH;
    default:
        return command == CLI_BENCH;
    }
}

static int parse_bench_option(int c, struct bench_opts *b, char *err,
                              size_t err_len)
{
    long v = 0;
    int rc = 0;

    switch (c) {
    case 'c':
        rc = parse_int("--conns", optarg, 1, 10000, &v, err, err_len);
        b->conns = (int)v;
        break;
    case 'i':
        rc = parse_int("--idle", optarg, 0, 20000, &v, err, err_len);
        b->idle = (int)v;
        break;
    case 's':
        rc =
            parse_int("--size", optarg, 1, 64L * 1024 * 1024, &v, err, err_len);
        b->size = (size_t)v;
        break;
    case 'd':
        return parse_seconds("--duration", optarg, 0.01, &b->seconds, err,
                             err_len);
    case 'w':
        return parse_seconds("--warmup", optarg, 0, &b->warmup, err, err_len);
    case OPT_STREAM:
        b->stream = true;
        break;
    case OPT_CSV:
        b->csv = true;
        break;
    }
    return rc;
}

static int parse_option(int c, struct cli *out, char *err, size_t err_len)
{
    long v = 0;

    switch (c) {
    case 'H':
        if (!net_is_numeric_host(optarg)) {
            snprintf(err, err_len,
                     "--host: '%s' is not a numeric IPv4 or "
                     "IPv6 address",
                     optarg);
            return -1;
        }
        out->host = optarg;
        return 0;
    case 'p':
        if (parse_int("--port", optarg, 1, 65535, &v, err, err_len) == -1)
            return -1;
        out->port = (int)v;
        return 0;
    case OPT_ONLY:
        if (scenario_find(optarg) == NULL) {
            snprintf(err, err_len,
                     "--only: no scenario is called '%s' (see "
                     "--help)",
                     optarg);
            return -1;
        }
        out->only = optarg;
        return 0;
    case OPT_SERVER_PID:
        if (parse_int("--server-pid", optarg, 1, INT_MAX, &v, err, err_len) ==
            -1)
            return -1;
        out->server_pid = (pid_t)v;
        return 0;
    }
    return parse_bench_option(c, &out->bench, err, err_len);
}

/* The command word, if any; returns how many words it took (0 or 1). */
static int parse_command(int argc, char **argv, struct cli *out)
{
    if (argc > 1 && strcmp(argv[1], "suite") == 0) {
        out->command = CLI_SUITE;
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "bench") == 0) {
        out->command = CLI_BENCH;
        return 1;
    }
    out->command = CLI_INTERACTIVE;
    return 0;
}

static int parse_options(int argc, char **argv, struct cli *out, char *err,
                         size_t err_len)
{
    const char *shorts =
        out->command == CLI_BENCH ? ":H:p:c:i:s:d:w:" : ":H:p:";
    int c;

    optind = 0; /* glibc: 0 re-initialises getopt (the tests parse often) */
    opterr = 0; /* we word the errors ourselves */
    while ((c = getopt_long(argc, argv, shorts, long_options, NULL)) != -1) {
        if (c == OPT_HELP) {
            out->command = CLI_HELP;
            return 0;
        }
        if (c == '?' || c == ':') {
            snprintf(err, err_len, "%s '%s'",
                     c == '?' ? "unknown option" : "missing value for",
                     argv[optind - 1]);
            return -1;
        }
        if (!option_allowed(out->command, c)) {
            snprintf(err, err_len, "'%s' is not an option of '%s'",
                     argv[optind - 1], argv[0]);
            return -1;
        }
        if (parse_option(c, out, err, err_len) == -1)
            return -1;
    }
    if (optind < argc) {
        snprintf(err, err_len, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return 0;
}

int cli_parse(int argc, char **argv, struct cli *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    out->host = "127.0.0.1";
    bench_defaults(&out->bench);
    /* After the command word, argv[0] is the command: getopt skips it. */
    int shift = parse_command(argc, argv, out);
    if (parse_options(argc - shift, argv + shift, out, err, err_len) == -1)
        return -1;
    if (out->command == CLI_HELP)
        return 0;
    if (out->port == 0) {
        snprintf(err, err_len, "-p PORT is required");
        return -1;
    }
    out->bench.host = out->host;
    out->bench.port = out->port;
    out->bench.server_pid = out->server_pid;
    return 0;
}
