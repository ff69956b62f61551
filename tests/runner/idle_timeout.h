/* idle_timeout.h - the runner scenario "idle-timeout" on every row
 * (idle_timeout.c). */
#ifndef TESTS_RUNNER_IDLE_TIMEOUT_H
#define TESTS_RUNNER_IDLE_TIMEOUT_H

#include <stddef.h>

#include "models.h"

/* -c 20 --idle-timeout 2: silent clients are closed and a newcomer is then
 * served; a client active every 0.5 s is never closed; one that stops
 * reading its echo is. With --idle-timeout 0 nobody is closed. */
enum outcome runner_idle_timeout(const struct run_ctx *ctx, char *why,
                                 size_t why_len);

#endif
