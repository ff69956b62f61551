/* uring_refused.h - 07-completion-port's runner scenario "uring-refused"
 * (uring_refused.c). */
#ifndef TESTS_RUNNER_URING_REFUSED_H
#define TESTS_RUNNER_URING_REFUSED_H

#include <stddef.h>

#include "models.h"

/* io_uring refused by a seccomp filter (tests/tool-no-uring): the server
 * must say so and exit 1 before listening. */
enum outcome runner_uring_refused(const struct run_ctx *ctx, char *why,
                                  size_t why_len);

#endif
