/* check_labels.h - the step-label check of every model's server.c and
 * README walkthrough (check_labels.c); tests/check runs it with the other
 * unit tests, with no arguments and with --unit. */
#ifndef TESTS_UNIT_CHECK_LABELS_H
#define TESTS_UNIT_CHECK_LABELS_H

#include <check.h>

void add_labels_suites(SRunner *sr);

#endif
