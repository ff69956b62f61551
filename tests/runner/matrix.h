/* matrix.h - the model x scenario matrix of the conformance runner:
 * one Check test per (row, scenario), named "row:scenario", and the report
 * printed after the run. */
#ifndef TESTS_RUNNER_MATRIX_H
#define TESTS_RUNNER_MATRIX_H

#include <check.h>
#include <stdbool.h>

struct matrix_opts {
    const char *model; /* prefix of a model dir or row name; NULL = all */
    bool threaded;     /* only the threaded rows */
    bool valgrind;     /* servers under $RUNNER_WRAP, a subset of tests */
    bool win32;        /* only the Win32 twins' rows, under wine */
};

/* Adds a suite per present row. Returns the number of rows added, or -1
 * (with a message on stderr) when the filter matches no row at all. */
int matrix_add_suites(SRunner *sr, const struct matrix_opts *o);

/* After srunner_run_all(): prints the matrix, the failing and skipped
 * tests, and the last line "N passed, N failed[, N skipped]". Returns the
 * number of failed tests (unit tests included). */
int matrix_report(SRunner *sr);

#endif
