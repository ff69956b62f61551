/* catalogue.h - the scenario catalogue, implemented once (the table in
 * tests/README.md says what each scenario does and wants).
 *
 * `echo-client suite` runs it against any echo server; tests/check runs each
 * scenario against each model under Check. A scenario connects to the
 * target, does its one thing, and says PASS, FAIL (with a precise reason:
 * "echo of client 37 differs at byte 1024") or SKIP. Every wait has a bound;
 * timing decides nothing except "this hung".
 *
 * With target.server_pid != 0 a scenario also reads /proc for the server's
 * memory, descriptors and CPU time (see client/procfs.h).
 */
#ifndef TESTS_SCENARIOS_CATALOGUE_H
#define TESTS_SCENARIOS_CATALOGUE_H

#include <stddef.h>
#include <sys/types.h>

struct target {
    const char *host;
    int port;
    pid_t server_pid; /* 0 = unknown: the /proc checks are left out */
    /* Whose /proc/PID/fd counts the server's sockets, when that is not the
     * server (0: the server's own). A Win32 twin's sockets live in Wine's
     * wineserver, which holds a Linux descriptor for each socket of every
     * Wine process; the twin itself holds a few cached ones at most. */
    pid_t sockets_pid;
};

enum outcome { OUTCOME_PASS, OUTCOME_FAIL, OUTCOME_SKIP };

typedef enum outcome (*scenario_fn)(const struct target *t, char *why,
                                    size_t why_len);

struct scenario {
    const char *name; /* "half-close" */
    const char *does; /* one line: what the client does */
    scenario_fn run;  /* on FAIL or SKIP, writes the reason into why */
};

extern const struct scenario scenarios[];
extern const size_t scenario_count;

/* The scenario called name, or NULL. */
const struct scenario *scenario_find(const char *name);

#endif
