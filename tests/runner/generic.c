/* generic.c - the generic runner scenarios (generic.h): tests that
 * start the server themselves, with other options or limits, or signal it.
 *
 *   capacity           -c 4: four clients served at once, the rest wait in
 *                      the listen backlog and are served in turn
 *   fd-exhaustion      RLIMIT_NOFILE 32 and 60 clients: no CPU spin, and
 *                      everyone is served once descriptors free up
 *   graceful-shutdown  SIGTERM with clients connected: exit 0, summary line
 *   serialized         (iterative rows) B waits until A has left
 */
#include "generic.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "client/procfs.h"
#include "scenarios/steps.h"
#include "server.h"

#define TURN_CLIENTS_MAX 64
#define TURN_MESSAGE     64

/* Clients that have each sent one message and wait for its echo. */
struct turns {
    struct stream s[TURN_CLIENTS_MAX];
    size_t n;
    size_t echoed; /* complete echoes so far */
    size_t closed; /* echoed clients we have closed, oldest first */
    size_t order[TURN_CLIENTS_MAX]; /* indexes in the order echoed */
};

static void turns_close_all(struct turns *tu)
{
    for (size_t i = 0; i < tu->n; i++)
        if (tu->s[i].fd >= 0) {
            close(tu->s[i].fd);
            tu->s[i].fd = -1;
        }
}

/* Connects n clients and sends each its message. */
static enum outcome turns_connect(const struct target *t, struct turns *tu,
                                  size_t n, char *why, size_t why_len)
{
    int fds[TURN_CLIENTS_MAX];
    char message[TURN_MESSAGE];

    memset(tu, 0, sizeof(*tu));
    if (connect_many(t, fds, n, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    tu->n = n;
    for (size_t i = 0; i < n; i++) {
        stream_init(&tu->s[i], fds[i], (int)i, 500 + i, TURN_MESSAGE);
        pattern_fill(tu->s[i].seed, 0, message, sizeof(message));
        if (client_send_all(fds[i], message, sizeof(message),
                            client_deadline(STEP_ECHO_MS)) == -1) {
            turns_close_all(tu);
            return fail_with(why, why_len, "client %zu: send: %s", i,
                             errname(errno));
        }
        tu->s[i].sent = TURN_MESSAGE;
    }
    return OUTCOME_PASS;
}

/* Reads whatever arrives for up to ms, noting the echoes that complete. */
static enum outcome turns_read(struct turns *tu, int ms, char *why,
                               size_t why_len)
{
    struct pollfd pfd[TURN_CLIENTS_MAX];
    size_t who[TURN_CLIENTS_MAX], k = 0;

    for (size_t i = 0; i < tu->n; i++)
        if (tu->s[i].fd >= 0 && tu->s[i].received < tu->s[i].total) {
            pfd[k] = (struct pollfd){.fd = tu->s[i].fd, .events = POLLIN};
            who[k++] = i;
        }
    int ready = poll(pfd, k, ms);
    if (ready == -1 && errno != EINTR)
        return fail_with(why, why_len, "poll: %s", errname(errno));
    for (size_t j = 0; j < k && ready > 0; j++) {
        struct stream *s = &tu->s[who[j]];
        if (pfd[j].revents == 0)
            continue;
        if (stream_read_some(s, why, why_len) != OUTCOME_PASS)
            return OUTCOME_FAIL;
        if (s->received == s->total)
            tu->order[tu->echoed++] = who[j];
    }
    return OUTCOME_PASS;
}

/* Served clients still connected: echoed and not yet closed by us. */
static size_t turns_open_served(const struct turns *tu)
{
    return tu->echoed - tu->closed;
}

/* Waits until at least `want` echoes are complete, bounded. */
static enum outcome turns_wait_echoed(struct turns *tu, size_t want,
                                      long long deadline, char *why,
                                      size_t why_len)
{
    while (tu->echoed < want) {
        if (client_remaining_ms(deadline) == 0)
            return fail_with(why, why_len,
                             "only %zu of %zu clients were echoed "
                             "(%zu expected by now) before the deadline",
                             tu->echoed, tu->n, want);
        if (turns_read(tu, client_remaining_ms(deadline), why, why_len) !=
            OUTCOME_PASS)
            return OUTCOME_FAIL;
    }
    return OUTCOME_PASS;
}

/* Closes the oldest served client, or all of them. */
static void turns_close_served(struct turns *tu, bool all)
{
    while (tu->closed < tu->echoed) {
        size_t oldest = tu->order[tu->closed++];
        close(tu->s[oldest].fd);
        tu->s[oldest].fd = -1;
        if (!all)
            return;
    }
}

/* Closes served clients (one by one, or all that are served) and waits for
 * more echoes, until every client was served; at most `bound` served ones
 * are ever open at once. */
static enum outcome turns_serve_rest(struct turns *tu, size_t bound,
                                     bool close_all, char *why, size_t why_len)
{
    long long deadline = client_deadline(STEP_LONG_MS);

    while (tu->echoed < tu->n) {
        turns_close_served(tu, close_all);
        if (turns_wait_echoed(tu, tu->echoed + 1, deadline, why, why_len) !=
            OUTCOME_PASS)
            return OUTCOME_FAIL;
        if (turns_open_served(tu) > bound)
            return fail_with(why, why_len,
                             "%zu clients served at once (at most "
                             "%zu allowed)",
                             turns_open_served(tu), bound);
    }
    return OUTCOME_PASS;
}

/* Phase 1 of capacity: `bound` clients echoed, then nobody else for 300 ms
 * while they stay connected. */
static enum outcome capacity_bounded(struct turns *tu, size_t bound, char *why,
                                     size_t why_len)
{
    if (turns_wait_echoed(tu, bound, client_deadline(STEP_ECHO_MS), why,
                          why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    long long quiet_until = client_deadline(300);
    while (client_remaining_ms(quiet_until) > 0)
        if (turns_read(tu, client_remaining_ms(quiet_until), why, why_len) !=
            OUTCOME_PASS)
            return OUTCOME_FAIL;
    if (tu->echoed > bound)
        return fail_with(why, why_len,
                         "%zu clients were echoed while the first "
                         "%zu stayed connected (at most %zu at once)",
                         tu->echoed, bound, bound);
    return OUTCOME_PASS;
}

enum outcome runner_capacity(const struct run_ctx *ctx, char *why,
                             size_t why_len)
{
    static const char *const args[] = {"-c", "4", NULL};
    /* An iterative server serves one client at a time whatever -c says. */
    size_t bound = ctx->v->iterative ? 1 : 4;
    struct server s;
    struct turns *tu = calloc(1, sizeof(*tu));

    if (tu == NULL)
        return fail_with(why, why_len, "calloc: out of memory");
    enum outcome o = runner_start(ctx, &s, args, NULL, why, why_len);
    if (o != OUTCOME_PASS) {
        free(tu);
        return o;
    }
    struct target t = server_target(&s);
    o = turns_connect(&t, tu, 10, why, why_len);
    if (o == OUTCOME_PASS)
        o = capacity_bounded(tu, bound, why, why_len);
    if (o == OUTCOME_PASS)
        o = turns_serve_rest(tu, bound, false, why, why_len);
    turns_close_all(tu);
    free(tu);
    return runner_finish(&s, o, why, why_len);
}

/* The server's CPU time over about 2 s while 60 clients wait and it has
 * run out of descriptors. A busy accept() loop burns a whole core (NOTES
 * §7.1: 1.3 s in 1.5 s); a server that pauses accepting uses almost nothing.
 * 0.5 s is a 4x margin below a spin: CPU seconds, not wall-clock timing. */
static enum outcome exhaustion_no_spin(const struct target *t, struct turns *tu,
                                       char *why, size_t why_len)
{
    double before, after;

    if (proc_cpu_seconds(t->server_pid, &before) == -1)
        return fail_with(why, why_len, "reading /proc/%d/stat: %s",
                         (int)t->server_pid, errname(errno));
    long long until = client_deadline(2000);
    while (client_remaining_ms(until) > 0)
        if (turns_read(tu, client_remaining_ms(until), why, why_len) !=
            OUTCOME_PASS)
            return OUTCOME_FAIL;
    if (proc_cpu_seconds(t->server_pid, &after) == -1)
        return fail_with(why, why_len, "reading /proc/%d/stat: %s",
                         (int)t->server_pid, errname(errno));
    if (after - before >= 0.5)
        return fail_with(why, why_len,
                         "the server used %.2f s of CPU in 2 s "
                         "while out of descriptors: a busy accept() loop?",
                         after - before);
    return OUTCOME_PASS;
}

enum outcome runner_fd_exhaustion(const struct run_ctx *ctx, char *why,
                                  size_t why_len)
{
    const struct runner_limits limits = {.nofile = 32};
    struct server s;

    if (ctx->wrap)
        return skip_with(why, why_len,
                         "not under valgrind (it needs "
                         "descriptors of its own)");
    struct turns *tu = calloc(1, sizeof(*tu));
    if (tu == NULL)
        return fail_with(why, why_len, "calloc: out of memory");
    enum outcome o = runner_start(ctx, &s, NULL, &limits, why, why_len);
    if (o != OUTCOME_PASS) {
        free(tu);
        return o;
    }
    struct target t = server_target(&s);
    o = turns_connect(&t, tu, 60, why, why_len);
    if (o == OUTCOME_PASS)
        o = exhaustion_no_spin(&t, tu, why, why_len);
    /* Recovery: the clients that got in are echoed; as they leave, the
     * ones waiting in the backlog must be served too. */
    if (o == OUTCOME_PASS)
        o = turns_serve_rest(tu, tu->n, true, why, why_len);
    turns_close_all(tu);
    free(tu);
    return runner_finish(&s, o, why, why_len);
}

/* Five clients in different states: idle after an echo (0..2; on an
 * iterative server only 0 can have been served), one streaming without
 * reading (3), one connected and silent (4). */
static enum outcome graceful_clients(const struct run_ctx *ctx,
                                     const struct target *t, int *fds,
                                     char *why, size_t why_len)
{
    struct stream mid;
    int echoed = ctx->v->iterative ? 1 : 3;

    if (connect_many(t, fds, 5, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    for (int i = 0; i < echoed; i++)
        if (echo_once(fds[i], i, 600 + (uint64_t)i, 100, STEP_ECHO_MS, why,
                      why_len) != OUTCOME_PASS)
            return OUTCOME_FAIL;
    stream_init(&mid, fds[3], 3, 603, 4 * 1024 * 1024);
    return stream_push_until_stall(&mid, 200, client_deadline(STEP_ECHO_MS),
                                   why, why_len);
}

/* After the server exited, each client sees EOF or a reset: no hang. */
static enum outcome graceful_ends(const int *fds, char *why, size_t why_len)
{
    long long deadline = client_deadline(STEP_ECHO_MS);

    for (int i = 0; i < 5; i++)
        if (client_drain_to_end(fds[i], deadline) == -1)
            return fail_with(why, why_len,
                             "client %d saw neither end of stream "
                             "nor a reset after the server exited: %s",
                             i, errname(errno));
    return OUTCOME_PASS;
}

enum outcome runner_graceful_shutdown(const struct run_ctx *ctx, char *why,
                                      size_t why_len)
{
    struct server s;
    int fds[5] = {-1, -1, -1, -1, -1};
    enum outcome o = runner_start(ctx, &s, NULL, NULL, why, why_len);

    if (o != OUTCOME_PASS)
        return o;
    struct target t = server_target(&s);
    o = graceful_clients(ctx, &t, fds, why, why_len);
    if (o != OUTCOME_PASS) {
        close_all(fds, 5);
        return runner_finish(&s, o, why, why_len);
    }
    /* SIGTERM with the clients still connected: exit 0 within the bound. */
    o = server_stop(&s, why, why_len);
    if (o == OUTCOME_PASS)
        o = graceful_ends(fds, why, why_len);
    if (o == OUTCOME_PASS && !server_stderr_has(&s, "shutdown:"))
        o = fail_with(why, why_len, "no \"shutdown:\" summary line on stderr");
    close_all(fds, 5);
    if (o == OUTCOME_FAIL)
        server_stderr_tail(&s, 15, stderr);
    server_release(&s);
    return o;
}

/* A is served, B waits (nothing for 500 ms) until A leaves, then B is.
 * Both connect first: the listen backlog is FIFO, so A is accepted first. */
static enum outcome serialized_steps(const struct target *t, char *why,
                                     size_t why_len)
{
    int fds[2];
    char message[TURN_MESSAGE];
    struct stream b;

    if (connect_many(t, fds, 2, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    enum outcome o = echo_once(fds[0], 0, 700, 100, STEP_ECHO_MS, why, why_len);
    stream_init(&b, fds[1], 1, 701, sizeof(message));
    pattern_fill(b.seed, 0, message, sizeof(message));
    if (o == OUTCOME_PASS &&
        client_send_all(b.fd, message, sizeof(message),
                        client_deadline(STEP_ECHO_MS)) == -1)
        o = fail_with(why, why_len, "client 1: send: %s", errname(errno));
    b.sent = sizeof(message);
    if (o == OUTCOME_PASS)
        o = expect_quiet(b.fd, 1, 500,
                         "while client 0 was still connected "
                         "(an iterative server serves one at a time)",
                         why, why_len);
    close(fds[0]); /* A leaves: now it is B's turn */
    fds[0] = -1;
    if (o == OUTCOME_PASS)
        o = streams_pump(&b, 1, client_deadline(STEP_ECHO_MS), why, why_len);
    close_all(fds, 2);
    return o;
}

enum outcome runner_serialized(const struct run_ctx *ctx, char *why,
                               size_t why_len)
{
    struct server s;
    enum outcome o = runner_start(ctx, &s, NULL, NULL, why, why_len);

    if (o != OUTCOME_PASS)
        return o;
    struct target t = server_target(&s);
    o = serialized_steps(&t, why, why_len);
    return runner_finish(&s, o, why, why_len);
}
