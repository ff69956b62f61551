/* check_twin_refs.h - NOTES.md §4's pointers into the Win32 twins
 * (check_twin_refs.c); tests/check runs it with the other unit tests. */
#ifndef TESTS_UNIT_CHECK_TWIN_REFS_H
#define TESTS_UNIT_CHECK_TWIN_REFS_H

#include <check.h>

void add_twin_refs_suites(SRunner *sr);

#endif
