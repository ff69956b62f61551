/* models.c - what the conformance runner runs: one row per model and
 * mode (variants[]), the runner scenarios by name (runner_scenarios[]), and
 * which catalogue scenarios an iterative server replaces with the
 * serialization test. See models.h for adding a row or a scenario.
 */
#include "models.h"

#include <string.h>

#include "fd_setsize.h"
#include "gdb_tour.h"
#include "generic.h"
#include "idle_timeout.h"
#include "sigpending.h"
#include "uring_refused.h"

const struct variant variants[] = {
    /* 01: the notes' first model, one client at a time; it times out idle
     * clients (--idle-timeout, 300 s), so idle-then-active (2 s) passes
     * normally, and idle-timeout times its silent clients out in turn. */
    {.name = "01-blocking/iterative",
     .dir = "01-blocking",
     .args = {"--mode", "iterative"},
     .iterative = true,
     .extra = {"gdb-tour"}},
    {.name = "01-blocking/threads",
     .dir = "01-blocking",
     .args = {"--mode", "threads"},
     .threaded = true},
    {.name = "02-select", .dir = "02-select",
     .extra = {"fd-setsize", "gdb-tour"}},  /* fd_setsize.c */
    {.name = "03-poll", .dir = "03-poll", .extra = {"gdb-tour"}},
    {.name = "04-epoll-events/level", .dir = "04-epoll-events",
     .extra = {"gdb-tour"}},
    {.name = "04-epoll-events/edge",
     .dir = "04-epoll-events",
     .args = {"--edge"}},
    {.name = "05-signal-driven", .dir = "05-signal-driven",
     .extra = {"sigpending", "gdb-tour"}},  /* sigpending.c */
    /* 06: threaded, but not under `make tsan`: TSan crashes in glibc's
     * AIO, whose helper threads start further threads TSan never saw
     * (NOTES §7.11). `make helgrind` checks both rows instead. */
    {.name = "06-aio-overlapped/wait",
     .dir = "06-aio-overlapped",
     .args = {"--notify", "wait"},
     .extra = {"gdb-tour"}},
    {.name = "06-aio-overlapped/callback",
     .dir = "06-aio-overlapped",
     .args = {"--notify", "callback"}},
    /* 07: "uring-refused" (uring_refused.c) on every row: it takes
     * a few milliseconds, and each -t must handle the refusal. */
    {.name = "07-completion-port/t1",
     .dir = "07-completion-port",
     .args = {"-t", "1"},
     .threaded = true,
     .extra = {"uring-refused", "gdb-tour"}},
    {.name = "07-completion-port/t2",
     .dir = "07-completion-port",
     .args = {"-t", "2"},
     .threaded = true,
     .extra = {"uring-refused"}},
    {.name = "07-completion-port/t4",
     .dir = "07-completion-port",
     .args = {"-t", "4"},
     .threaded = true,
     .extra = {"uring-refused"}},
    /* The Win32 twins (tests/check --win32, `make test-win32`): the same
     * catalogue and the same expectations, under wine. */
    {.name = "01-blocking/win32/iterative",
     .dir = "01-blocking",
     .args = {"--mode", "iterative"},
     .iterative = true,
     .win32 = true},
    {.name = "01-blocking/win32/threads",
     .dir = "01-blocking",
     .args = {"--mode", "threads"},
     .win32 = true},
    {.name = "02-select/win32",
     .dir = "02-select",
     .win32 = true,
     .extra = {"fd-setsize"}},  /* the twin's own limit: fd_setsize.c */
    {.name = "03-poll/win32", .dir = "03-poll", .win32 = true},
    {.name = "04-epoll-events/win32", .dir = "04-epoll-events",
     .win32 = true},
    {.name = "05-signal-driven/win32", .dir = "05-signal-driven",
     .win32 = true},
    {.name = "06-aio-overlapped/win32/wait",
     .dir = "06-aio-overlapped",
     .args = {"--notify", "wait"},
     .win32 = true},
    {.name = "06-aio-overlapped/win32/callback",
     .dir = "06-aio-overlapped",
     .args = {"--notify", "callback"},
     .win32 = true},
    {.name = "07-completion-port/win32/t1",
     .dir = "07-completion-port",
     .args = {"-t", "1"},
     .win32 = true},
    {.name = "07-completion-port/win32/t4",
     .dir = "07-completion-port",
     .args = {"-t", "4"},
     .win32 = true},
    /* The known-good third party: if a scenario fails here, the scenario
     * is wrong, not the models. */
    {.name = "socat",
     .args = {"socat",
              "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,backlog=1024",
              "EXEC:cat"}},
};
const size_t variant_count = sizeof(variants) / sizeof(variants[0]);

const struct runner_scenario runner_scenarios[] = {
    {.name = "capacity", .column = "cap", .run = runner_capacity,
     .generic = true},
    /* RLIMIT_NOFILE on the server: Windows has no such limit to set. */
    {.name = "fd-exhaustion", .column = "emfile",
     .run = runner_fd_exhaustion, .generic = true, .linux_only = true},
    {.name = "graceful-shutdown", .column = "term",
     .run = runner_graceful_shutdown, .generic = true},
    {.name = "idle-timeout", .column = "idleto", .run = runner_idle_timeout,
     .generic = true},
    /* Model-specific: only the rows that list them in .extra. */
    {.name = "fd-setsize", .column = "fdset", .run = runner_fd_setsize},
    {.name = "sigpending", .column = "sigq", .run = runner_sigpending,
     .linux_only = true},
    {.name = "gdb-tour", .column = "gdb", .run = runner_gdb_tour,
     .debug_only = true, .linux_only = true},
    {.name = "uring-refused", .column = "refuse",
     .run = runner_uring_refused, .linux_only = true},
};
const size_t runner_scenario_count =
    sizeof(runner_scenarios) / sizeof(runner_scenarios[0]);

const struct runner_scenario *runner_scenario_find(const char *name)
{
    for (size_t i = 0; i < runner_scenario_count; i++)
        if (strcmp(runner_scenarios[i].name, name) == 0)
            return &runner_scenarios[i];
    return NULL;
}
