/* load.h - the catalogue's load scenarios (load.c):
 * the ones that hold many connections or a stalled one. Internal to the
 * catalogue; everyone else uses the table in catalogue.h. */
#ifndef TESTS_SCENARIOS_LOAD_H
#define TESTS_SCENARIOS_LOAD_H

#include "catalogue.h"

enum outcome run_slow_reader(const struct target *t, char *why, size_t why_len);
enum outcome run_slowloris(const struct target *t, char *why, size_t why_len);
enum outcome run_many_idle(const struct target *t, char *why, size_t why_len);

#endif
