/* opts.c - the server command line of NOTES §1 (see opts.h). */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "sig.h"

#define MAX_EXTRA 8
#define LONG_HELP 1000          /* getopt value for --help */
#define LONG_IDLE_TIMEOUT 1001 /* getopt value for --idle-timeout */
#define EXTRA_BASE 2000         /* getopt value for extra option i: base + i */

int opts_parse_long(const char *text, long min, long max, long *out)
{
    char *end;

    if (text == NULL || *text == '\0' || *text == ' ' || *text == '+') {
        errno = EINVAL;
        return -1;
    }
    errno = 0;
    long value = strtol(text, &end, 10);
    if (*end != '\0') {
        errno = EINVAL;
        return -1;
    }
    if (errno == ERANGE || value < min || value > max) {
        errno = ERANGE;
        return -1;
    }
    *out = value;
    return 0;
}

/* Index of word in "a|b|c", or -1. */
static int choice_index(const char *choices, const char *word)
{
    size_t word_len = strlen(word);
    int index = 0;

    for (const char *p = choices; *p != '\0'; index++) {
        size_t len = strcspn(p, "|");
        if (len == word_len && strncmp(p, word, len) == 0)
            return index;
        p += len;
        if (*p == '|')
            p++;
    }
    return -1;
}

static int parse_number(const char *option, const char *text, long min,
                        long max, int *out)
{
    long value;

    if (opts_parse_long(text, min, max, &value) == -1) {
        fprintf(stderr, "%s: '%s' is not a number from %ld to %ld\n", option,
                text, min, max);
        return -1;
    }
    *out = (int)value;
    return 0;
}

static int parse_extra(const struct model_opt *o, const char *arg)
{
    char option[64];

    snprintf(option, sizeof(option), "--%s", o->name);
    switch (o->kind) {
    case OPT_FLAG:
        *o->value = 1;
        return 0;
    case OPT_INT:
        return parse_number(option, arg, o->min, o->max, o->value);
    case OPT_CHOICE: {
        int index = choice_index(o->choices, arg);
        if (index == -1) {
            fprintf(stderr, "%s: '%s' is not one of %s\n", option, arg,
                    o->choices);
            return -1;
        }
        *o->value = index;
        return 0;
    }
    }
    return -1;
}

/* Builds getopt_long's tables from the common options and m->extra. */
static void build_tables(const struct model_info *m, struct option *longs,
                         char *shorts)
{
    static const struct option common[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"max-clients", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, LONG_HELP},
        {"idle-timeout", required_argument, NULL, LONG_IDLE_TIMEOUT},
    };
    size_t n = sizeof(common) / sizeof(common[0]);

    memcpy(longs, common, sizeof(common));
    strcpy(shorts, ":H:p:c:v");  /* leading ':' - we word the errors */
    for (size_t i = 0; i < m->extra_count && i < MAX_EXTRA; i++) {
        const struct model_opt *o = &m->extra[i];
        int has_arg = o->kind == OPT_FLAG ? no_argument : required_argument;
        int val = o->short_name ? o->short_name : EXTRA_BASE + (int)i;
        longs[n++] = (struct option){o->name, has_arg, NULL, val};
        if (o->short_name) {
            size_t len = strlen(shorts);
            shorts[len++] = o->short_name;
            if (has_arg == required_argument)
                shorts[len++] = ':';
            shorts[len] = '\0';
        }
    }
    longs[n] = (struct option){NULL, 0, NULL, 0};
}

/* The extra option getopt returned as c, or NULL. */
static const struct model_opt *find_extra(const struct model_info *m, int c)
{
    for (size_t i = 0; i < m->extra_count && i < MAX_EXTRA; i++) {
        const struct model_opt *o = &m->extra[i];
        if (c == (o->short_name ? o->short_name : EXTRA_BASE + (int)i))
            return o;
    }
    return NULL;
}

static int parse_common(int c, const struct model_info *m,
                        struct server_opts *out)
{
    switch (c) {
    case 'H':
        if (!net_is_numeric_host(optarg)) {
            fprintf(stderr, "--host: '%s' is not a numeric IPv4 or IPv6 "
                    "address (e.g. 127.0.0.1, ::1, 0.0.0.0, ::)\n", optarg);
            return -1;
        }
        out->host = optarg;
        return 0;
    case 'p':
        return parse_number("--port", optarg, 0, 65535, &out->port);
    case 'c':
        return parse_number("--max-clients", optarg, 1, m->max_clients_limit,
                            &out->max_clients);
    case 'v':
        out->verbose++;
        return 0;
    case LONG_IDLE_TIMEOUT:
        return parse_number("--idle-timeout", optarg, 0,
                            OPTS_IDLE_TIMEOUT_MAX, &out->idle_timeout);
    }
    return -1;
}

enum opts_result opts_parse(int argc, char **argv, const struct model_info *m,
                            struct server_opts *out)
{
    struct option longs[8 + MAX_EXTRA];
    char shorts[64];
    int c;

    out->host = "127.0.0.1";
    out->port = m->default_port;
    out->max_clients = m->default_max_clients;
    out->verbose = 0;
    out->idle_timeout = OPTS_IDLE_TIMEOUT_DEFAULT;
    build_tables(m, longs, shorts);
    optind = 0;   /* glibc: 0 re-initialises getopt fully (tests parse twice) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        const struct model_opt *extra = find_extra(m, c);
        if (c == LONG_HELP)
            return OPTS_HELP;
        if (c == '?' || c == ':') {
            fprintf(stderr, "%s: %s '%s'\n", m->program,
                    c == '?' ? "unknown option" : "missing value for",
                    argv[optind - 1]);
            return OPTS_BAD;
        }
        if (extra != NULL ? parse_extra(extra, optarg) == -1
                          : parse_common(c, m, out) == -1)
            return OPTS_BAD;
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", m->program,
                argv[optind]);
        return OPTS_BAD;
    }
    return OPTS_OK;
}

void opts_usage(const struct model_info *m, FILE *f)
{

    fprintf(f, "usage: %s [options]\n  %s\n\n", m->program, m->summary);
    fprintf(f, "  -H, --host ADDR        listen address (default 127.0.0.1;"
               " ::1, ::, 0.0.0.0 allowed)\n");
    fprintf(f, "  -p, --port PORT        TCP port (default %d; 0 = any free "
               "port)\n", m->default_port);
    fprintf(f, "  -c, --max-clients N    concurrent clients (default %d, at "
               "most %d)\n", m->default_max_clients, m->max_clients_limit);
    fprintf(f, "  -v, --verbose          trace events to stderr; -vv traces "
               "every readiness/completion\n");
    fprintf(f, "      --idle-timeout SECS  close a client silent (or not "
               "reading its echo) that\n                         long "
               "(default %d; 0 = never)\n", OPTS_IDLE_TIMEOUT_DEFAULT);
    fprintf(f, "      --help             this text\n");
    for (size_t i = 0; i < m->extra_count; i++) {
        const struct model_opt *o = &m->extra[i];
        char left[48];
        snprintf(left, sizeof(left), "%c%c%s --%s %s",
                 o->short_name ? '-' : ' ', o->short_name ? o->short_name : ' ',
                 o->short_name ? "," : " ", o->name,
                 o->arg_name ? o->arg_name : "");
        if (strlen(left) > 22)  /* a long left column: help on its own line */
            fprintf(f, "  %s\n  %-22s %s\n", left, "", o->help);
        else
            fprintf(f, "  %-22s %s\n", left, o->help);
    }
    fprintf(f, "\nstdout gets one line, \"listening on ADDR:PORT\"; the rest "
               "goes to stderr.\n%s: graceful shutdown with a summary line.\n",
            sig_stop_words);
}

void opts_parse_or_exit(int argc, char **argv, const struct model_info *m,
                        struct server_opts *out)
{
    switch (opts_parse(argc, argv, m, out)) {
    case OPTS_OK:
        return;
    case OPTS_HELP:
        opts_usage(m, stdout);
        exit(EXIT_SUCCESS);
    case OPTS_BAD:
        opts_usage(m, stderr);
        exit(2);
    }
}
