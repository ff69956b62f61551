/* server.h - server processes for the conformance runner (server.c).
 *
 * server_start() starts a model's server (or socat) on a free port, with
 * rlimits and an optional wrapper (valgrind), and waits until it listens;
 * server_stop() sends SIGTERM and judges its exit status. A runner
 * scenario uses runner_start() and runner_finish(), which do the same for
 * its row (models.h) and fold the server's exit into the outcome.
 */
#ifndef TESTS_RUNNER_SERVER_H
#define TESTS_RUNNER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "models.h"
#include "scenarios/catalogue.h"

struct server_spec {
    const char *const *argv; /* program + arguments, NULL-terminated */
    /* true: a model server: "-p 0" is appended, the port is read from its
     * "listening on HOST:PORT" line. false (socat): argv already holds
     * `port`; the runner waits until a connect succeeds. */
    bool announces;
    int port;
    long nofile;     /* RLIMIT_NOFILE, soft = hard; 0 = inherited */
    long sigpending; /* RLIMIT_SIGPENDING; 0 = inherited */
    bool wrap;       /* run under $RUNNER_WRAP (split on spaces) */
    /* A Win32 twin: argv[0] is "wine", and it is stopped with SIGINT,
     * which Wine delivers as Ctrl-C to its console handler (Wine's SIGTERM
     * ends the process without running any handler). */
    bool win32;
};

struct server {
    pid_t pid;
    int port;
    char host[64];        /* from its "listening on" line */
    int stdout_fd;        /* the read end of its stdout */
    char stderr_path[64]; /* its stderr, kept for diagnostics */
    bool wrapped;         /* under valgrind: longer bounds */
    bool third_party;     /* socat: any stop by SIGTERM is fine */
    int stop_signal;      /* SIGTERM, or SIGINT for a Win32 twin */
    pid_t sockets_pid;    /* a twin: the wineserver holding its sockets */
    bool reaped;          /* it has exited and been waited for */
    int wait_status;      /* then waitpid()'s status (WIFEXITED...) */
};

/* Starts the server and waits (bounded) until it listens. PASS; FAIL with
 * the reason in why (the tail of its stderr goes to our stderr); or SKIP
 * when it exited 1 before listening with "unavailable" on stderr (e.g.
 * io_uring refused): then why holds that line. Needs server_release()
 * only after a PASS. */
enum outcome server_start(struct server *s, const struct server_spec *spec,
                          char *why, size_t why_len);

/* SIGTERM (a twin: SIGINT), then waits up to 10 s (60 s wrapped);
 * SIGKILL if it hangs.
 * PASS iff it exited with status 0 (third party: stopped by SIGTERM);
 * s->wait_status then holds the raw status for a caller that wants more.
 * Also kills what it left in its process group (socat's forks). */
enum outcome server_stop(struct server *s, char *why, size_t why_len);

/* After server_stop: closes its stdout pipe and removes its stderr file. */
void server_release(struct server *s);

/* The server as a scenario target (with its pid for the /proc checks). */
struct target server_target(const struct server *s);

/* Does the server's stderr so far contain needle? */
bool server_stderr_has(const struct server *s, const char *needle);

/* Prints the last lines of the server's stderr to out, each indented. */
void server_stderr_tail(const struct server *s, int lines, FILE *out);

/* Picks a free TCP port on 127.0.0.1 (bind to 0, read it, close): for
 * servers that cannot report the port they got, like socat. */
int runner_free_port(void);

/* Starts ctx's server with the row's options, then extra_args (may be NULL),
 * with optional rlimits (limits may be NULL: none). Outcome as
 * server_start(). */
struct runner_limits {
    long nofile;
    long sigpending;
};
enum outcome runner_start(const struct run_ctx *ctx, struct server *s,
                          const char *const *extra_args,
                          const struct runner_limits *limits, char *why,
                          size_t why_len);

/* Ends a runner scenario: stops the server and folds its exit into the
 * outcome o (a clean scenario with a bad exit is a FAIL; a FAIL keeps its
 * reason, with the exit problem appended). Prints the server's stderr tail
 * on failure. */
enum outcome runner_finish(struct server *s, enum outcome o, char *why,
                           size_t why_len);

#endif
