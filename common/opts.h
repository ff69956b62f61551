/* opts.h - the server command line of NOTES §1, shared by every model.
 *
 *   -H, --host ADDR       listen address (default 127.0.0.1)
 *   -p, --port PORT       TCP port (default 9000+NN; 0 = any free port)
 *   -c, --max-clients N   concurrent clients (default 1000 or the model's limit)
 *   -v, --verbose         -v traces events, -vv every readiness/completion
 *       --idle-timeout SECS  close a client idle that long (default 300,
 *                         0 = never): nothing received from it, or none of
 *                         its pending echo taken (NOTES §3, "Idle clients")
 *       --help            usage on stdout, exit 0
 *
 * A model adds its own options with a small table of struct model_opt,
 * e.g. 01's "--mode iterative|threads" or 07's "-t, --threads N".
 * Parsing is strict: a bad port or number is an error (exit 2 with usage).
 */
#ifndef COMMON_OPTS_H
#define COMMON_OPTS_H

#include <stddef.h>
#include <stdio.h>

#define OPTS_IDLE_TIMEOUT_DEFAULT 300  /* seconds (redis: 0, nginx: 60) */
#define OPTS_IDLE_TIMEOUT_MAX 86400    /* a day: ms still fit any int */

enum model_opt_kind {
    OPT_FLAG,    /* present or not: *value = 1 when given */
    OPT_INT,     /* a whole number in [min, max] */
    OPT_CHOICE,  /* one word of choices ("iterative|threads"): *value = index */
};

struct model_opt {
    const char *name;        /* long name, without "--" */
    char short_name;         /* 0 when there is none */
    enum model_opt_kind kind;
    const char *arg_name;    /* for usage, e.g. "N" or "wait|callback" */
    const char *choices;     /* OPT_CHOICE: words separated by '|' */
    long min, max;           /* OPT_INT: inclusive bounds */
    const char *help;        /* one line, with the default */
    int *value;              /* where the result goes (preset = default) */
};

struct server_opts {
    const char *host;
    int port;
    int max_clients;
    int verbose;
    int idle_timeout;        /* seconds; 0 = never close an idle client */
};

struct model_info {
    const char *program;     /* "02-select/server", for usage */
    const char *summary;     /* one line: what the model is */
    int default_port;        /* 9000 + NN */
    int default_max_clients; /* 1000, or the model's inherent limit */
    int max_clients_limit;   /* largest -c accepted */
    const struct model_opt *extra;
    size_t extra_count;
};

enum opts_result { OPTS_OK, OPTS_HELP, OPTS_BAD };

/* Parses argv into *out and the extra options' values. On OPTS_BAD a one-line
 * error has been written to stderr (usage is the caller's to print). Resets
 * getopt's state first, so it may be called more than once (unit tests). */
enum opts_result opts_parse(int argc, char **argv, const struct model_info *m,
                            struct server_opts *out);

/* Usage text, on the given stream. */
void opts_usage(const struct model_info *m, FILE *stream);

/* What main() calls: opts_parse, then --help -> usage on stdout and exit 0,
 * bad option -> usage on stderr and exit 2. Like die(), it may exit. */
void opts_parse_or_exit(int argc, char **argv, const struct model_info *m,
                        struct server_opts *out);

/* Strict number parsing shared with the test client: the whole string must
 * be a decimal number in [min, max]. Returns 0, or -1 with errno = EINVAL
 * or ERANGE. */
int opts_parse_long(const char *text, long min, long max, long *out);

#endif
