/* generic.h - the runner scenarios every model row runs (generic.c), and
 * the serialization test that an iterative row runs in place of the
 * catalogue's concurrent scenarios. Each starts its own server. */
#ifndef TESTS_RUNNER_GENERIC_H
#define TESTS_RUNNER_GENERIC_H

#include <stddef.h>

#include "models.h"

/* -c 4 and 10 clients: at most 4 served at once, all served in turn. */
enum outcome runner_capacity(const struct run_ctx *ctx, char *why,
                             size_t why_len);
/* RLIMIT_NOFILE 32 and 60 clients: no CPU spin, all served in the end. */
enum outcome runner_fd_exhaustion(const struct run_ctx *ctx, char *why,
                                  size_t why_len);
/* SIGTERM with clients connected: exit 0, every client sees the end. */
enum outcome runner_graceful_shutdown(const struct run_ctx *ctx, char *why,
                                      size_t why_len);
/* Iterative rows, in place of the scenarios that need concurrency: A is
 * echoed; B connects and sends; B gets nothing while A stays; A leaves; B
 * is echoed. PASS shows as "serial" in the matrix. */
enum outcome runner_serialized(const struct run_ctx *ctx, char *why,
                               size_t why_len);

#endif
