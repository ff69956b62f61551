/* models.h - what the conformance runner runs (models.c):
 *
 *   - the rows: one per model and mode (variants[]), each with its options
 *     and the model-specific runner scenarios it runs (.extra);
 *   - the runner scenarios: tests that start the server themselves (other
 *     options, rlimits, signals), by name (runner_scenarios[]).
 *
 * Adding a model-specific runner scenario, e.g. 02's "fd-setsize":
 *   - write it in tests/runner/fd_setsize.c, declared in fd_setsize.h,
 *     with runner_start() and runner_finish() of server.h around the
 *     steps of scenarios/steps.h (tests/README.md shows the whole file);
 *   - in models.c, include fd_setsize.h, add {"fd-setsize", "fdset",
 *     runner_fd_setsize, false} to runner_scenarios[] and "fd-setsize" to
 *     the row's .extra.
 * It then runs as the Check test "02-select:fd-setsize" and gets a column.
 */
#ifndef TESTS_RUNNER_MODELS_H
#define TESTS_RUNNER_MODELS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "scenarios/catalogue.h"

#define VARIANT_ARGS  6
#define VARIANT_EXTRA 4

struct variant {
    const char *name; /* matrix row and Check suite: "04-epoll-events/edge" */
    const char *dir;  /* model directory; NULL for a third party */
    /* The model's options, NULL-terminated. A third-party row (dir NULL)
     * holds its whole command instead, "%d" standing for a free port. */
    const char *args[VARIANT_ARGS];
    bool iterative; /* one client at a time (01 --mode iterative) */
    /* A Win32 twin (NN-model/win32.c, build/win32/NN-model/win32.exe),
     * run under wine and stopped with SIGINT: only `tests/check --win32`
     * runs these rows, and only those. */
    bool win32;
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
    bool linux_only; /* needs the server's rlimits or signals as Linux has
                        them: "-" on the Win32 rows */
};

/* Every runner scenario, generic and model-specific. */
extern const struct runner_scenario runner_scenarios[];
extern const size_t runner_scenario_count;
const struct runner_scenario *runner_scenario_find(const char *name);

#endif
