/* check_suites.h - the unit-test suites linked into tests/check. Each file
 * check_<unit>.c adds its suites to the runner; runner/main.c calls these. */
#ifndef TESTS_UNIT_CHECK_SUITES_H
#define TESTS_UNIT_CHECK_SUITES_H

#include <check.h>

/* common/'s units (check_common.c). */
void add_common_suites(SRunner *sr);
/* The test client's internals (check_client.c). */
void add_client_suites(SRunner *sr);

#endif
