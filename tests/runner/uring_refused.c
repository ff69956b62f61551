/* uring_refused.c - 07-completion-port's runner scenario (uring_refused.h):
 *
 *   uring-refused  the server under tests/tool-no-uring, a seccomp wrapper
 *                  that makes io_uring_setup(2) fail with EPERM, as the
 *                  kernel.io_uring_disabled sysctl or a container's
 *                  seccomp profile would (NOTES §7.12). The server must
 *                  exit with status 1 before listening, with one stderr
 *                  line that names the call, the reason and the word
 *                  "unavailable". That is exactly what server_start()
 *                  reports as SKIP, so here a SKIP is the PASS, and a
 *                  server that listens (or crashes, or exits otherwise)
 *                  is the FAIL.
 *
 * The wrapper sits beside this program's servers: <root>/tests/ for the
 * debug build, <root>/build/<variant>/tests/ for the others.
 */
#include "uring_refused.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "paths.h"
#include "scenarios/steps.h"
#include "server.h"

#define REFUSED_CALL "io_uring_queue_init_params"

/* The wrapper of this build: <build root>/tests/tool-no-uring. */
static int tool_path(char *out, size_t len)
{
    char root[PATH_MAX];

    if (paths_build_root(root, sizeof(root)) == -1)
        return -1;
    int n = snprintf(out, len, "%s/tests/tool-no-uring", root);
    return n > 0 && (size_t)n < len && access(out, X_OK) == 0 ? 0 : -1;
}

enum outcome runner_uring_refused(const struct run_ctx *ctx, char *why,
                                  size_t why_len)
{
    char tool[PATH_MAX], refusal[512] = "";
    const char *argv[VARIANT_ARGS + 3];
    int argc = 0;
    struct server s;

    if (tool_path(tool, sizeof(tool)) == -1)
        return fail_with(why, why_len,
                         "tests/tool-no-uring beside %s is "
                         "not built",
                         ctx->binary);
    argv[argc++] = tool;
    argv[argc++] = ctx->binary;
    for (int i = 0; ctx->v->args[i] != NULL && i < VARIANT_ARGS; i++)
        argv[argc++] = ctx->v->args[i];
    argv[argc] = NULL;
    /* Never under $RUNNER_WRAP: valgrind would run the wrapper, and the
     * refusal is the server's business, not its memory's. */
    struct server_spec spec = {.argv = argv, .announces = true};

    enum outcome o = server_start(&s, &spec, refusal, sizeof(refusal));
    if (o == OUTCOME_SKIP && strstr(refusal, REFUSED_CALL) != NULL)
        return OUTCOME_PASS; /* exit 1, "unavailable", the call named */
    if (o == OUTCOME_SKIP)
        return fail_with(why, why_len,
                         "refused, but the line does not "
                         "name %s: \"%s\"",
                         REFUSED_CALL, refusal);
    if (o == OUTCOME_FAIL)
        return fail_with(why, why_len, "with io_uring refused: %s", refusal);
    o = fail_with(why, why_len,
                  "the server listened although "
                  "io_uring_setup was refused");
    return runner_finish(&s, o, why, why_len);
}
