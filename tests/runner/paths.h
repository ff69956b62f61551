/* paths.h - where tests/check finds what it tests (paths.c).
 *
 * Everything is found from this program's own path, never from the
 * current directory, so `make sanitize` (build/asan/tests/check) tests the
 * servers of its own build:
 *
 *   program                     build root     source root
 *   REPO/tests/check            REPO           REPO
 *   REPO/build/asan/tests/check REPO/build/asan REPO
 *
 * The build root holds the binaries (NN-model/server, tests/tool-no-uring);
 * the source root holds the sources (NN-model/server.c, README.md,
 * walkthrough.gdb). Library style: -1 with errno set, never exits.
 */
#ifndef TESTS_RUNNER_PATHS_H
#define TESTS_RUNNER_PATHS_H

#include <stddef.h>

/* The directory above this program's tests/ directory. */
int paths_build_root(char *root, size_t len);

/* The repository: the build root, less a trailing /build/<variant>. */
int paths_source_root(char *root, size_t len);

#endif
