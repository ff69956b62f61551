/* check_client.h - the unit tests of the test client's internals
 * (check_client.c); tests/check runs them with no arguments and with
 * --unit. */
#ifndef TESTS_UNIT_CHECK_CLIENT_H
#define TESTS_UNIT_CHECK_CLIENT_H

#include <check.h>

void add_client_suites(SRunner *sr);

#endif
