/* gdb_tour.h - the runner scenario "gdb-tour" (gdb_tour.c), on every
 * model's first row. */
#ifndef TESTS_RUNNER_GDB_TOUR_H
#define TESTS_RUNNER_GDB_TOUR_H

#include <stddef.h>

#include "models.h"

/* The model's walkthrough.gdb still reaches every stop under gdb. */
enum outcome runner_gdb_tour(const struct run_ctx *ctx, char *why,
                             size_t why_len);

#endif
