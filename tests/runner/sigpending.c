/* sigpending.c - 05-signal-driven's runner scenario (sigpending.h):
 *
 *   sigpending  the server under a tiny RLIMIT_SIGPENDING, so that its
 *               realtime-signal queue overflows and the kernel falls back
 *               to SIGIO; 50 clients stream 64 KiB each in interleaved
 *               4 KiB writes. Every byte must still be echoed, the server
 *               must stay up and exit 0 at SIGTERM, and its -v log must
 *               show that the overflow path ("rescanning") was taken.
 *
 * RLIMIT_SIGPENDING is compared with the signals queued for every process
 * of the same user, not just the server's: other processes of ours only
 * make the queue overflow sooner, which is what we want here.
 */
#include "sigpending.h"

#include <stdlib.h>

#include "client/client.h"
#include "scenarios/steps.h"
#include "server.h"

#define SIGQ_CLIENTS 50
#define SIGQ_BYTES (64 * 1024)
#define SIGQ_CHUNK 4096
#define SIGQ_LIMIT 8
#define SIGQ_OVERFLOW_LINE "signal queue overflow: rescanning"

/* Connects the clients and pumps every stream through the echo. */
static enum outcome sigq_pump(const struct target *t, int *fds,
                              struct stream *st, char *why, size_t why_len)
{
    if (connect_many(t, fds, SIGQ_CLIENTS, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    for (size_t i = 0; i < SIGQ_CLIENTS; i++) {
        stream_init(&st[i], fds[i], (int)i, 900 + i, SIGQ_BYTES);
        st[i].chunk = SIGQ_CHUNK;  /* many small writes: many signals */
    }
    return streams_pump(st, SIGQ_CLIENTS, client_deadline(STEP_LONG_MS), why,
                        why_len);
}

enum outcome runner_sigpending(const struct run_ctx *ctx, char *why,
                               size_t why_len)
{
    static const char *const args[] = {"-v", NULL};
    const struct runner_limits limits = {.sigpending = SIGQ_LIMIT};
    int fds[SIGQ_CLIENTS];
    struct server s;
    struct stream *st = calloc(SIGQ_CLIENTS, sizeof(*st));

    if (st == NULL)
        return fail_with(why, why_len, "calloc: out of memory");
    enum outcome o = runner_start(ctx, &s, args, &limits, why, why_len);
    if (o != OUTCOME_PASS) {
        free(st);
        return o;
    }
    struct target t = server_target(&s);
    o = sigq_pump(&t, fds, st, why, why_len);
    close_all(fds, SIGQ_CLIENTS);
    if (o == OUTCOME_PASS)
        o = check_alive(&t, why, why_len);
    if (o == OUTCOME_PASS && !server_stderr_has(&s, SIGQ_OVERFLOW_LINE))
        o = fail_with(why, why_len,
                      "all echoed, but the overflow path was never taken "
                      "(no \"%s\" in the server's stderr)",
                      SIGQ_OVERFLOW_LINE);
    free(st);
    return runner_finish(&s, o, why, why_len);
}
