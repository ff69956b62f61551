/* main.c - tests/check: the unit tests and the conformance runner.
 *
 *   tests/check [--unit] [--threaded] [--valgrind] [--win32] [MODEL]
 *
 *   (none)       unit tests, then every model row through the scenario
 *                catalogue and the runner scenarios, then the matrix
 *   MODEL        only the rows whose model dir or row name starts with
 *                MODEL ("02", "02-select", "01-blocking/threads", "socat");
 *                the unit tests are left out
 *   --unit       only the unit tests (common/, the client's internals and
 *                the models' step labels)
 *   --threaded   only the threaded rows (01 threads, 06, 07): `make tsan`
 *   --valgrind   servers under $RUNNER_WRAP, a subset of the scenarios
 *   --win32      only the Win32 twins' rows (build/win32/, under wine:
 *                `make test-win32` sets up Wine first)
 *
 * The last line is "N passed, N failed" (", N skipped" when any); the exit
 * status is 0 iff nothing failed.
 *
 * One test under gdb:  CK_FORK=no CK_RUN_CASE='02-select:half-close' \
 *                      gdb --args tests/check 02
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "matrix.h"
#include "unit/check_client.h"
#include "unit/check_common.h"
#include "unit/check_labels.h"
#include "unit/check_twin_refs.h"

struct runner_args {
    bool unit_only;
    struct matrix_opts matrix;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tests/check [--unit] [--threaded] [--valgrind] [--win32] "
            "[MODEL]\n"
            "  MODEL       run only rows whose model starts with MODEL "
            "(e.g. 02, 04-epoll-events, socat)\n"
            "  --unit      only the unit tests\n"
            "  --threaded  only the threaded models (for TSan)\n"
            "  --valgrind  servers under $RUNNER_WRAP, a subset of the "
            "scenarios\n"
            "  --win32     only the Win32 twins, under wine (make test-win32)\n"
            "Check's variables apply: CK_RUN_CASE='02-select:half-close', "
            "CK_FORK=no, CK_VERBOSITY=verbose\n");
}

/* Returns 0, 1 for --help, or -1 (message printed) on a bad argument. */
static int parse_args(int argc, char **argv, struct runner_args *a)
{
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--unit") == 0) {
            a->unit_only = true;
        } else if (strcmp(argv[i], "--threaded") == 0) {
            a->matrix.threaded = true;
        } else if (strcmp(argv[i], "--valgrind") == 0) {
            a->matrix.valgrind = true;
        } else if (strcmp(argv[i], "--win32") == 0) {
            a->matrix.win32 = true;
        } else if (strcmp(argv[i], "--help") == 0) {
            return 1;
        } else if (argv[i][0] == '-' || a->matrix.model != NULL) {
            fprintf(stderr, "tests/check: unexpected argument '%s'\n", argv[i]);
            return -1;
        } else {
            a->matrix.model = argv[i];
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct runner_args a;
    SRunner *sr = srunner_create(NULL);

    switch (parse_args(argc, argv, &a)) {
    case 1:
        usage(stdout);
        return 0;
    case -1:
        usage(stderr);
        return 2;
    }
    /* --valgrind without a wrapper would run the servers bare and pass:
     * a check that cannot fail. `make valgrind` sets RUNNER_WRAP. */
    if (a.matrix.valgrind && getenv("RUNNER_WRAP") == NULL) {
        fprintf(stderr, "tests/check: --valgrind needs RUNNER_WRAP (the "
                        "valgrind command line); use `make valgrind`\n");
        return 2;
    }
    /* many-idle holds 900 sockets; a reset peer must give EPIPE, not kill
     * the runner. (Servers get SIGPIPE's default back before exec.) */
    if (client_raise_nofile() == -1 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("tests/check: setrlimit/signal");
        return 2;
    }
    bool unit = a.unit_only || (a.matrix.model == NULL && !a.matrix.threaded &&
                                !a.matrix.valgrind && !a.matrix.win32);
    if (unit) {
        add_common_suites(sr);
        add_client_suites(sr);
        add_labels_suites(sr);
        add_twin_refs_suites(sr);
    }
    int rows = a.unit_only ? 0 : matrix_add_suites(sr, &a.matrix);
    /* "make test MODEL=02" must not look green when 02 was never built. */
    /* Nor `make test-win32` when no twin was built. */
    if (rows == -1 ||
        (rows == 0 && (a.matrix.model != NULL || a.matrix.win32))) {
        if (rows == 0)
            fprintf(stderr, "tests/check: no server is built for '%s'\n",
                    a.matrix.model != NULL ? a.matrix.model : "--win32");
        srunner_free(sr);
        return 2;
    }
    /* CK_ENV: CK_VERBOSITY chooses the detail; normal by default. */
    srunner_run_all(sr, CK_ENV);
    int failed = matrix_report(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
