/* sigpending.h - 05-signal-driven's runner scenario "sigpending"
 * (sigpending.c). */
#ifndef TESTS_RUNNER_SIGPENDING_H
#define TESTS_RUNNER_SIGPENDING_H

#include <stddef.h>

#include "models.h"

/* A tiny RLIMIT_SIGPENDING overflows the realtime-signal queue: every
 * byte must still be echoed, through the server's rescan. */
enum outcome runner_sigpending(const struct run_ctx *ctx, char *why,
                               size_t why_len);

#endif
