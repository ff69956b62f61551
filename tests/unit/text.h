/* text.h - what the repository checks (check_labels.c, check_twin_refs.c)
 * share: reading a source file whole, and collecting the problems found
 * into one message for ck_assert_msg. */
#ifndef TESTS_UNIT_TEXT_H
#define TESTS_UNIT_TEXT_H

#include <stddef.h>

#define TEXT_MAX (1024 * 1024) /* larger than any file we check */

/* The whole file as a string (malloc'd), or NULL with errno (EFBIG past
 * TEXT_MAX). */
char *read_text(const char *path);

/* The problems found so far, "; "-separated, in the caller's buffer. */
struct report {
    char *why;
    size_t why_len;
    int problems;
};

void report_add(struct report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
