/* runner.h - the conformance runner's pieces, for anyone adding a test:
 *
 *   1. server processes: start a model's server (or socat) on a free port,
 *      with rlimits and an optional wrapper (valgrind), stop it with
 *      SIGTERM and get its exit status (check_server.c);
 *   2. the variant table: one row per model and mode (check_models.c);
 *   3. runner scenarios: tests that need to start the server themselves
 *      (other options, rlimits, signals), found by name (check_models.c).
 *
 * Adding a model-specific runner scenario, e.g. 02's "fd-setsize":
 *   - write it in its own file, tests/check_select.c:
 *         enum outcome runner_fd_setsize(const struct run_ctx *ctx,
 *                                        char *why, size_t why_len)
 *         {
 *             struct server s;
 *             const char *args[] = {"-c", "2000", NULL};
 *             enum outcome o = runner_start(ctx, &s, args, NULL, why,
 *                                           why_len);
 *             if (o != OUTCOME_PASS)
 *                 return o;  // FAIL, or SKIP: the model is unavailable
 *             struct target t = server_target(&s);
 *             o = ... steps (steps.h) against t, e.g. connect_many ...;
 *             return runner_finish(&s, o, why, why_len);
 *         }
 *   - declare it below (the "model-specific" list);
 *   - add {"fd-setsize", "fdset", runner_fd_setsize, false} to
 *     runner_scenarios[] in check_models.c, and "fd-setsize" to the row's
 *     extra[] list there.
 * It then runs as the Check test "02-select:fd-setsize" and gets a column.
 */
#ifndef TESTS_RUNNER_RUNNER_H
#define TESTS_RUNNER_RUNNER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "scenarios/catalogue.h"

/* ------------------------------------------------------ server processes */

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
};

struct server {
    pid_t pid;
    int port;
    char host[64];        /* from its "listening on" line */
    int stdout_fd;        /* the read end of its stdout */
    char stderr_path[64]; /* its stderr, kept for diagnostics */
    bool wrapped;         /* under valgrind: longer bounds */
    bool third_party;     /* socat: any stop by SIGTERM is fine */
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

/* SIGTERM, then waits up to 10 s (60 s wrapped); SIGKILL if it hangs.
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

/* --------------------------------------------------------- the variants */

#define VARIANT_ARGS  6
#define VARIANT_EXTRA 4

struct variant {
    const char *name; /* matrix row and Check suite: "04-epoll-events/edge" */
    const char *dir;  /* model directory; NULL for a third party */
    /* The model's options, NULL-terminated. A third-party row (dir NULL)
     * holds its whole command instead, "%d" standing for a free port. */
    const char *args[VARIANT_ARGS];
    bool iterative; /* one client at a time (01 --mode iterative) */
    bool threaded;  /* run under `make tsan` */
    /* Model-specific runner scenarios (names in runner_scenarios[]). */
    const char *extra[VARIANT_EXTRA];
};

extern const struct variant variants[];
extern const size_t variant_count;

/* What a runner scenario gets: its row, and how to start its server. */
struct run_ctx {
    const struct variant *v;
    char binary[PATH_MAX]; /* this row's server binary */
    bool wrap;             /* --valgrind: servers under $RUNNER_WRAP */
};

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

/* ------------------------------------------------------ runner scenarios */

typedef enum outcome (*runner_fn)(const struct run_ctx *ctx, char *why,
                                  size_t why_len);

struct runner_scenario {
    const char *name;   /* "capacity"; the Check test is "row:name" */
    const char *column; /* short matrix header, at most 6 characters */
    runner_fn run;
    bool generic; /* every model row runs it (not the third party);
                     otherwise only rows that list it in extra[] */
    bool debug_only; /* only against the debug build (-O0), e.g. the gdb
                        tours, which are written for it: not a cell of
                        the sanitizer runs */
};

/* Every runner scenario, generic and model-specific (check_models.c). */
extern const struct runner_scenario runner_scenarios[];
extern const size_t runner_scenario_count;
const struct runner_scenario *runner_scenario_find(const char *name);

/* Generic: run for every row except the third-party one
 * (check_scenarios.c). */
enum outcome runner_capacity(const struct run_ctx *ctx, char *why,
                             size_t why_len);
enum outcome runner_fd_exhaustion(const struct run_ctx *ctx, char *why,
                                  size_t why_len);
enum outcome runner_graceful_shutdown(const struct run_ctx *ctx, char *why,
                                      size_t why_len);
/* Iterative rows, in place of the scenarios that need concurrency: A is
 * echoed; B connects and sends; B gets nothing while A stays; A leaves; B
 * is echoed. PASS shows as "serial" in the matrix. */
enum outcome runner_serialized(const struct run_ctx *ctx, char *why,
                               size_t why_len);

/* Model-specific (each in its model's check_*.c file). To come, e.g.:
 * enum outcome runner_uring_refused(const struct run_ctx *, char *, size_t);
 */
/* Every model's first row: its walkthrough.gdb still hits every stop
 * (tests/check_tour.c). */
enum outcome runner_gdb_tour(const struct run_ctx *ctx, char *why,
                             size_t why_len);
/* 02: more clients than select() can watch (tests/check_select.c). */
enum outcome runner_fd_setsize(const struct run_ctx *ctx, char *why,
                               size_t why_len);
/* 05: realtime-signal queue overflow (tests/check_sigio.c). */
enum outcome runner_sigpending(const struct run_ctx *ctx, char *why,
                               size_t why_len);
/* 07: io_uring refused by a seccomp filter; the server must say so and
 * exit 1 (tests/check_iocp.c). */
enum outcome runner_uring_refused(const struct run_ctx *ctx, char *why,
                                  size_t why_len);

#endif
