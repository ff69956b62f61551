/* fd_setsize.c - 02-select's runner scenario "fd-setsize": more clients
 * than select() can watch.
 *
 * An fd_set has FD_SETSIZE (1024) bits, so select() cannot watch a
 * descriptor numbered 1024 or more; FD_SET() on one writes past the set
 * (NOTES §7.8). With RLIMIT_NOFILE 2048 and -c 2000 the server can accept
 * such descriptors. 1100 clients connect and send a byte each. Then:
 *   - the server is alive;
 *   - the clients it got below FD_SETSIZE are echoed: every number below
 *     1024 that the server did not already hold, FD_SETSIZE - baseline;
 *   - every other client sees end of stream or a reset, none hangs;
 *   - the server said so on stderr (a line naming FD_SETSIZE);
 *   - once they have all gone, a new client is echoed.
 *
 * The Win32 twin (02-select/win32.c) has the same scenario with its own
 * limit: a Winsock fd_set holds FD_SETSIZE sockets whatever their values,
 * and the twin raises FD_SETSIZE to 1024, so 1023 clients are watched
 * (the listener takes a place) and the rest closed. RLIMIT_NOFILE means
 * nothing to it; the descriptors counted are the wineserver's.
 */
#include "fd_setsize.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "client/procfs.h"
#include "scenarios/steps.h"
#include "server.h"

#define SETSIZE_CLIENTS 1100
#define SETSIZE_NOFILE  2048
#define SETSIZE_SEED    900
#define WIN32_SETSIZE   1024 /* 02-select/win32.c's FD_SETSIZE */

enum fate { WAITING, ECHOED, ENDED };

struct crowd {
    int fds[SETSIZE_CLIENTS];
    enum fate fate[SETSIZE_CLIENTS];
    size_t echoed, ended;
};

/* Connects the crowd, each client sending one byte of its own pattern. A
 * send refused (the server closed that one already) counts as its end. */
static enum outcome crowd_connect(const struct target *t, struct crowd *c,
                                  char *why, size_t why_len)
{
    if (connect_many(t, c->fds, SETSIZE_CLIENTS, why, why_len) !=
        OUTCOME_PASS)
        return OUTCOME_FAIL;
    for (size_t i = 0; i < SETSIZE_CLIENTS; i++) {
        uint8_t byte = pattern_byte(SETSIZE_SEED + i, 0);
        if (client_send_all(c->fds[i], &byte, 1,
                            client_deadline(STEP_ECHO_MS)) == 0)
            continue;
        if (errno != EPIPE && errno != ECONNRESET)
            return fail_with(why, why_len, "client %zu: send: %s", i,
                             errname(errno));
        c->fate[i] = ENDED;
        c->ended++;
    }
    return OUTCOME_PASS;
}

/* What arrived for client i: its byte back, or the end of its stream. */
static enum outcome crowd_read(struct crowd *c, size_t i, char *why,
                               size_t why_len)
{
    uint8_t byte;
    ssize_t n = recv(c->fds[i], &byte, 1, 0);

    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return OUTCOME_PASS;
    if (n == 1 && byte != pattern_byte(SETSIZE_SEED + i, 0))
        return fail_with(why, why_len, "client %zu: echo differs (sent "
                         "0x%02x, got 0x%02x)", i,
                         pattern_byte(SETSIZE_SEED + i, 0), byte);
    if (n == -1 && errno != ECONNRESET)
        return fail_with(why, why_len, "client %zu: recv: %s", i,
                         errname(errno));
    c->fate[i] = n == 1 ? ECHOED : ENDED;
    if (n == 1)
        c->echoed++;
    else
        c->ended++;
    return OUTCOME_PASS;
}

/* Waits until every client was echoed or ended; a client that gets
 * neither within the bound is the hang this scenario looks for. */
static enum outcome crowd_settle(struct crowd *c, char *why, size_t why_len)
{
    static struct pollfd pfd[SETSIZE_CLIENTS];
    static size_t who[SETSIZE_CLIENTS];
    long long deadline = client_deadline(STEP_LONG_MS);

    while (c->echoed + c->ended < SETSIZE_CLIENTS) {
        size_t k = 0;
        for (size_t i = 0; i < SETSIZE_CLIENTS; i++)
            if (c->fate[i] == WAITING) {
                pfd[k] = (struct pollfd){.fd = c->fds[i], .events = POLLIN};
                who[k++] = i;
            }
        int ready = poll(pfd, k, client_remaining_ms(deadline));
        if (ready == -1 && errno != EINTR)
            return fail_with(why, why_len, "poll: %s", errname(errno));
        if (ready == 0)
            return fail_with(why, why_len, "%zu of %d clients were neither "
                             "echoed nor closed (%zu echoed, %zu closed)",
                             k, SETSIZE_CLIENTS, c->echoed, c->ended);
        for (size_t j = 0; j < k; j++)
            if (pfd[j].revents != 0 &&
                crowd_read(c, who[j], why, why_len) != OUTCOME_PASS)
                return OUTCOME_FAIL;
    }
    return OUTCOME_PASS;
}

/* The whole check, against a running server that held `baseline`
 * descriptors before the crowd came. */
static enum outcome setsize_steps(const struct run_ctx *ctx,
                                  const struct server *s,
                                  const struct target *t, int baseline,
                                  struct crowd *c, char *why, size_t why_len)
{
    size_t watchable = ctx->v->win32 ? WIN32_SETSIZE - 1
                                     : FD_SETSIZE - (size_t)baseline;

    if (crowd_connect(t, c, why, why_len) != OUTCOME_PASS ||
        crowd_settle(c, why, why_len) != OUTCOME_PASS ||
        check_alive(t, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    if (c->echoed != watchable)
        return fail_with(why, why_len, "%zu clients were echoed; within "
                         "FD_SETSIZE the server had room for %zu clients",
                         c->echoed, watchable);
    if (!server_stderr_has(s, "FD_SETSIZE"))
        return fail_with(why, why_len, "%zu clients were closed without a "
                         "log line naming FD_SETSIZE", c->ended);
    close_all(c->fds, SETSIZE_CLIENTS);
    if (wait_fds_back(t, baseline, "the crowd left", why, why_len) !=
        OUTCOME_PASS)
        return OUTCOME_FAIL;
    int fd = client_connect(t->host, t->port, STEP_CONNECT_MS);
    if (fd == -1)
        return fail_with(why, why_len, "connect after the crowd: %s",
                         errname(errno));
    enum outcome o = echo_once(fd, 0, SETSIZE_SEED - 1, 100, STEP_ECHO_MS,
                               why, why_len);
    close(fd);
    return o;
}

enum outcome runner_fd_setsize(const struct run_ctx *ctx, char *why,
                               size_t why_len)
{
    static const char *const args[] = {"-c", "2000", NULL};
    const struct runner_limits limits = {.nofile = SETSIZE_NOFILE};
    struct server s;

    if (client_raise_nofile() < SETSIZE_CLIENTS + 64)
        return skip_with(why, why_len, "the test process cannot open %d "
                         "sockets (RLIMIT_NOFILE hard limit)",
                         SETSIZE_CLIENTS);
    struct crowd *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return fail_with(why, why_len, "calloc: out of memory");
    for (size_t i = 0; i < SETSIZE_CLIENTS; i++)
        c->fds[i] = -1;
    enum outcome o = runner_start(ctx, &s, args, &limits, why, why_len);
    if (o != OUTCOME_PASS) {
        free(c);
        return o;
    }
    struct target t = server_target(&s);
    int baseline = server_fd_count(&t);
    if (baseline < 0)
        o = fail_with(why, why_len, "reading /proc/%d/fd: %s", (int)s.pid,
                      errname(errno));
    else
        o = setsize_steps(ctx, &s, &t, baseline, c, why, why_len);
    close_all(c->fds, SETSIZE_CLIENTS);
    free(c);
    return runner_finish(&s, o, why, why_len);
}
