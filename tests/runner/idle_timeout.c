/* idle_timeout.c - the runner scenario "idle-timeout" (every model row and
 * every twin row): --idle-timeout closes idle clients, and only those.
 *
 * Two servers run side by side, so the second one's wait costs no time:
 *   [I1] "forever", -c 20 --idle-timeout 0: clients each echoed once (so we
 *        know they were accepted), then silent;
 *   [I2] "timed", -c 20 --idle-timeout 2: 20 silent clients take every
 *        slot; a newcomer is served once they have been closed, and each
 *        of them sees end of stream;
 *   [I3] timed: a client that echoes a byte every 0.5 s for 5 s is never
 *        closed, while one that keeps sending but never reads its echo is
 *        (it sees a reset while it still does not read);
 *   [I4] forever: 4 s or more after [I1], every client is still connected;
 *   [I5] both stop with exit 0; timed's summary line says how many it
 *        closed idle (silent ones + the one not reading), forever's "0".
 *
 * An iterative row serves one client at a time, so each silent client holds
 * the server for the whole timeout before the next is even accepted: it
 * gets 4 silent clients (8 s) instead of 20 (40 s), and [I1] one client.
 *
 * No bound decides on timing: each is the time the server is allowed
 * (timeouts to run out) plus STEP_LONG_MS, which only says "this hung". The
 * active client's 0.5 s leaves 1.5 s of slack before its 2 s timeout.
 */
#include "idle_timeout.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "scenarios/steps.h"
#include "server.h"

#define IDLE_SECONDS     2
#define IDLE_MS          (IDLE_SECONDS * 1000)
#define SILENT_CLIENTS   20 /* = -c: they take every slot */
#define SILENT_ITERATIVE 4  /* an iterative server times them out in turn */
#define FOREVER_QUIET_MS 4000
#define ACTIVE_PERIOD_MS 500
#define ACTIVE_ROUNDS    10 /* 5 s: longer than two timeouts */
#define PUSH_TOTAL       (64u * 1024 * 1024)
#define PUSH_STALL_MS    300

/* [I1] n clients on the forever server, each echoed once. */
static enum outcome forever_clients(const struct target *t, int *fds, int n,
                                    char *why, size_t why_len)
{
    if (connect_many(t, fds, (size_t)n, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    for (int i = 0; i < n; i++)
        if (echo_once(fds[i], i, 800 + (uint64_t)i, 16, STEP_ECHO_MS, why,
                      why_len) != OUTCOME_PASS)
            return OUTCOME_FAIL;
    return OUTCOME_PASS;
}

/* [I2] n silent clients, then a newcomer: it is served once the server has
 * closed them (all at once, or one after another on an iterative row), and
 * each of them sees end of stream. */
static enum outcome silent_then_newcomer(const struct target *t, int *fds,
                                         int n, bool serial, char *why,
                                         size_t why_len)
{
    int newcomer = -1;
    int allowed_ms = (serial ? n : 1) * IDLE_MS + STEP_LONG_MS;

    if (connect_many(t, fds, (size_t)n, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    if (connect_many(t, &newcomer, 1, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    enum outcome o = echo_once(newcomer, n, 820, 64, allowed_ms, why, why_len);
    close(newcomer);
    if (o != OUTCOME_PASS) {
        size_t len = strlen(why);
        snprintf(why + len, why_len - len,
                 " (the newcomer, behind %d silent clients and "
                 "--idle-timeout %d)", n, IDLE_SECONDS);
        return OUTCOME_FAIL;
    }
    for (int i = 0; i < n; i++)
        if (expect_eof(fds[i], i, client_deadline(STEP_LONG_MS), why,
                       why_len) != OUTCOME_PASS)
            return OUTCOME_FAIL;
    close_all(fds, (size_t)n);
    return OUTCOME_PASS;
}

/* Has the server closed fd? Without reading, and still sending, so the
 * server always has our bytes unread and its echo stays stuck: its close
 * is then a reset, which shows as POLLERR/POLLHUP or a failing send (an
 * orderly close would be POLLRDHUP). Without the sending, the kernel's
 * buffers could swallow the whole echo, and the server would rightly see
 * a client that reads but has stopped sending. 1 closed, 0 not yet, -1
 * error. */
static int peer_closed(int fd, int ms)
{
    static const char more[4096];
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};

    if (send(fd, more, sizeof(more), MSG_NOSIGNAL | MSG_DONTWAIT) == -1 &&
        errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return errno == ECONNRESET || errno == EPIPE ? 1 : -1;
    int ready = poll(&p, 1, ms);
    if (ready == -1)
        return errno == EINTR ? 0 : -1;
    return ready == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* [I3] One byte echoed every ACTIVE_PERIOD_MS for ACTIVE_ROUNDS; the
 * server must not close this client in between. */
static enum outcome active_rounds(int fd, int id, char *why, size_t why_len)
{
    long long next = client_now_ms();

    for (int round = 0; round < ACTIVE_ROUNDS; round++) {
        next += ACTIVE_PERIOD_MS;
        client_sleep_ms(client_remaining_ms(next));
        if (echo_once(fd, id, 830 + (uint64_t)round, 1, STEP_ECHO_MS, why,
                      why_len) != OUTCOME_PASS) {
            size_t len = strlen(why);
            snprintf(why + len, why_len - len,
                     " (the client active every %d ms, round %d: closed "
                     "as idle?)", ACTIVE_PERIOD_MS, round + 1);
            return OUTCOME_FAIL;
        }
    }
    return OUTCOME_PASS;
}

/* [I3] The active client runs its rounds while the pushing one, which
 * stopped reading, must be closed (on an iterative row: once the active
 * one has left and it is its turn). */
static enum outcome active_and_not_reading(const struct target *t, char *why,
                                           size_t why_len)
{
    int fds[2] = {-1, -1}; /* [0] active, [1] not reading */
    struct stream push;

    if (connect_many(t, fds, 2, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    /* The active one first: on an iterative row it is the one served. */
    enum outcome o = echo_once(fds[0], 40, 840, 1, STEP_ECHO_MS, why, why_len);
    stream_init(&push, fds[1], 41, 841, PUSH_TOTAL);
    if (o == OUTCOME_PASS)
        o = stream_push_until_stall(&push, PUSH_STALL_MS,
                                    client_deadline(STEP_LONG_MS), why,
                                    why_len);
    if (o == OUTCOME_PASS)
        o = active_rounds(fds[0], 40, why, why_len);
    close(fds[0]);
    fds[0] = -1;
    long long deadline = client_deadline(IDLE_MS + STEP_LONG_MS);
    int closed = 0;
    while (o == OUTCOME_PASS && closed == 0 &&
           client_remaining_ms(deadline) > 0)
        closed = peer_closed(fds[1], 100);
    if (o == OUTCOME_PASS && closed != 1)
        o = fail_with(why, why_len,
                      "client 41 stopped reading its echo after %llu bytes "
                      "and was %s",
                      (unsigned long long)push.sent,
                      closed == -1 ? "lost (poll failed)"
                                   : "never closed as idle");
    close_all(fds, 2);
    return o;
}

/* [I4] Nothing arrives on any of the forever server's clients: no byte,
 * no end of stream, no reset, until quiet_until. */
static enum outcome forever_still_there(const int *fds, int n,
                                        long long quiet_until, char *why,
                                        size_t why_len)
{
    struct pollfd p[SILENT_CLIENTS];

    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN | POLLRDHUP};
    do {
        int ready = poll(p, (nfds_t)n, client_remaining_ms(quiet_until));
        if (ready == -1 && errno != EINTR)
            return fail_with(why, why_len, "poll: %s", errname(errno));
        for (int i = 0; i < n && ready > 0; i++)
            if (p[i].revents != 0)
                return fail_with(why, why_len,
                                 "client %d of the --idle-timeout 0 server "
                                 "was closed (or got bytes) while idle "
                                 "(revents 0x%x)", i, p[i].revents);
    } while (client_remaining_ms(quiet_until) > 0);
    return OUTCOME_PASS;
}

/* [I5] Stops s; PASS iff it exited 0 and its summary line counts `closed`
 * idle clients. */
static enum outcome stop_and_count(struct server *s, int closed, char *why,
                                   size_t why_len)
{
    char needle[48];
    enum outcome o = server_stop(s, why, why_len);

    snprintf(needle, sizeof(needle), "concurrent, %d closed idle", closed);
    if (o == OUTCOME_PASS && !server_stderr_has(s, needle))
        o = fail_with(why, why_len,
                      "no summary line ending \"%s\" on stderr", needle);
    if (o == OUTCOME_FAIL)
        server_stderr_tail(s, 15, stderr);
    server_release(s);
    return o;
}

enum outcome runner_idle_timeout(const struct run_ctx *ctx, char *why,
                                 size_t why_len)
{
    static const char *const timed_args[] = {"-c", "20", "--idle-timeout",
                                             "2", NULL};
    static const char *const forever_args[] = {"-c", "20", "--idle-timeout",
                                               "0", NULL};
    int silent = ctx->v->iterative ? SILENT_ITERATIVE : SILENT_CLIENTS;
    int kept = ctx->v->iterative ? 1 : SILENT_CLIENTS;
    int silent_fds[SILENT_CLIENTS], kept_fds[SILENT_CLIENTS];
    struct server forever, timed;

    for (int i = 0; i < SILENT_CLIENTS; i++)
        silent_fds[i] = kept_fds[i] = -1;
    enum outcome o = runner_start(ctx, &forever, forever_args, NULL, why,
                                  why_len);
    if (o != OUTCOME_PASS)
        return o;
    o = runner_start(ctx, &timed, timed_args, NULL, why, why_len);
    if (o != OUTCOME_PASS)
        return runner_finish(&forever, o, why, why_len);

    struct target forever_target = server_target(&forever);
    struct target timed_target = server_target(&timed);
    o = forever_clients(&forever_target, kept_fds, kept, why, why_len);
    long long quiet_until = client_deadline(FOREVER_QUIET_MS);
    if (o == OUTCOME_PASS)
        o = silent_then_newcomer(&timed_target, silent_fds, silent,
                                 ctx->v->iterative, why, why_len);
    if (o == OUTCOME_PASS)
        o = active_and_not_reading(&timed_target, why, why_len);
    if (o == OUTCOME_PASS)
        o = forever_still_there(kept_fds, kept, quiet_until, why, why_len);
    close_all(silent_fds, SILENT_CLIENTS);
    close_all(kept_fds, SILENT_CLIENTS);

    /* On a failure, forever is only stopped: its own reason (if any)
     * goes to scratch, and why keeps the first one. */
    char scratch[256];
    if (o != OUTCOME_PASS) {
        runner_finish(&forever, OUTCOME_PASS, scratch, sizeof(scratch));
        return runner_finish(&timed, o, why, why_len);
    }
    o = stop_and_count(&timed, silent + 1, why, why_len);
    if (o != OUTCOME_PASS) {
        runner_finish(&forever, OUTCOME_PASS, scratch, sizeof(scratch));
        return o;
    }
    return stop_and_count(&forever, 0, why, why_len);
}
