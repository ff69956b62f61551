/* fd_setsize.h - 02-select's runner scenario "fd-setsize" (fd_setsize.c). */
#ifndef TESTS_RUNNER_FD_SETSIZE_H
#define TESTS_RUNNER_FD_SETSIZE_H

#include <stddef.h>

#include "models.h"

/* More clients than select() can watch: the server survives, the clients
 * it can watch are echoed, the rest are closed with a log line. */
enum outcome runner_fd_setsize(const struct run_ctx *ctx, char *why,
                               size_t why_len);

#endif
