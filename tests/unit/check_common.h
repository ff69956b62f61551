/* check_common.h - the unit tests of common/ (check_common.c), one suite
 * per module; tests/check runs them with no arguments and with --unit. */
#ifndef TESTS_UNIT_CHECK_COMMON_H
#define TESTS_UNIT_CHECK_COMMON_H

#include <check.h>

void add_common_suites(SRunner *sr);

#endif
