/* steps.c - the steps scenarios are made of (see steps.h). */
#include "steps.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "client/procfs.h"

#define IO_CHUNK (64 * 1024)

static enum outcome vreason(enum outcome o, char *why, size_t why_len,
                            const char *fmt, va_list ap)
{
    if (why != NULL && why_len > 0)
        vsnprintf(why, why_len, fmt, ap);
    return o;
}

enum outcome fail_with(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreason(OUTCOME_FAIL, why, why_len, fmt, ap);
    va_end(ap);
    return OUTCOME_FAIL;
}

enum outcome skip_with(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreason(OUTCOME_SKIP, why, why_len, fmt, ap);
    va_end(ap);
    return OUTCOME_SKIP;
}

const char *errname(int err)
{
    const char *name = strerrorname_np(err);

    return name != NULL ? name : "E?";
}

void stream_init(struct stream *s, int fd, int id, uint64_t seed,
                 uint64_t total)
{
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->id = id;
    s->seed = seed;
    s->total = total;
    s->chunk = IO_CHUNK;
}

/* One send() of the next pattern bytes; 1 = sent some, 0 = the socket is
 * full (EAGAIN) or nothing is left, -1 = error. */
static int stream_send_once(struct stream *s)
{
    char block[IO_CHUNK];
    uint64_t left = s->total - s->sent;
    size_t len = left < s->chunk ? (size_t)left : s->chunk;

    if (len > sizeof(block))
        len = sizeof(block);
    if (len == 0)
        return 0;
    pattern_fill(s->seed, s->sent, block, len);
    ssize_t n = send(s->fd, block, len, MSG_NOSIGNAL);
    if (n > 0) {
        s->sent += (uint64_t)n;
        return 1;
    }
    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return 0;
    return -1;
}

/* Sends what the socket takes now, and the half-close when it is due. */
static enum outcome stream_write_some(struct stream *s, bool once, char *why,
                                      size_t why_len)
{
    int rc;

    while ((rc = stream_send_once(s)) == 1 && !once)
        ;
    if (rc == -1)
        return fail_with(why, why_len, "client %d: send after %llu bytes: %s",
                         s->id, (unsigned long long)s->sent, errname(errno));
    if (s->sent == s->total && s->shut_after && !s->shut_done) {
        if (shutdown(s->fd, SHUT_WR) == -1)
            return fail_with(why, why_len, "client %d: shutdown(SHUT_WR): %s",
                             s->id, errname(errno));
        s->shut_done = true;
    }
    return OUTCOME_PASS;
}

static enum outcome check_echo(struct stream *s, const char *data, size_t n,
                               char *why, size_t why_len)
{
    if (s->received + n > s->sent)
        return fail_with(why, why_len,
                         "client %d: got %llu bytes back but sent "
                         "only %llu",
                         s->id, (unsigned long long)(s->received + n),
                         (unsigned long long)s->sent);
    long long bad = pattern_check(s->seed, s->received, data, n);
    if (bad >= 0) {
        uint64_t at = s->received + (uint64_t)bad;
        return fail_with(why, why_len,
                         "client %d: echo differs at byte %llu "
                         "(sent 0x%02x, got 0x%02x)",
                         s->id, (unsigned long long)at,
                         pattern_byte(s->seed, at), (uint8_t)data[bad]);
    }
    s->received += n;
    return OUTCOME_PASS;
}

enum outcome stream_read_some(struct stream *s, char *why, size_t why_len)
{
    char block[IO_CHUNK];

    while (s->received < s->total) {
        ssize_t n = recv(s->fd, block, sizeof(block), 0);
        if (n > 0) {
            if (check_echo(s, block, (size_t)n, why, why_len) != OUTCOME_PASS)
                return OUTCOME_FAIL;
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && errno == EAGAIN)
            return OUTCOME_PASS;
        if (n == 0)
            return fail_with(why, why_len,
                             "client %d: server closed after %llu "
                             "of %llu bytes echoed",
                             s->id, (unsigned long long)s->received,
                             (unsigned long long)s->total);
        return fail_with(why, why_len,
                         "client %d: recv after %llu bytes echoed: "
                         "%s",
                         s->id, (unsigned long long)s->received,
                         errname(errno));
    }
    return OUTCOME_PASS;
}

/* The first stream that is behind, for the timeout message. */
static enum outcome pump_timed_out(struct stream *s, size_t n, char *why,
                                   size_t why_len)
{
    size_t done = 0, first = n;

    for (size_t i = 0; i < n; i++) {
        if (s[i].received == s[i].total)
            done++;
        else if (first == n)
            first = i;
    }
    return fail_with(
        why, why_len,
        "timed out: %zu of %zu echoes complete; client "
        "%d got %llu of %llu bytes back (%llu sent)",
        done, n, s[first].id, (unsigned long long)s[first].received,
        (unsigned long long)s[first].total, (unsigned long long)s[first].sent);
}

/* Fills pfd with the streams that still want something; returns how many. */
static size_t pump_poll_set(struct stream *s, size_t n, struct pollfd *pfd,
                            size_t *index)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i].received == s[i].total)
            continue;
        pfd[k].fd = s[i].fd;
        pfd[k].events = POLLIN | (s[i].sent < s[i].total ? POLLOUT : 0);
        pfd[k].revents = 0;
        index[k++] = i;
    }
    return k;
}

static enum outcome pump_ready(struct stream *s, const struct pollfd *pfd,
                               char *why, size_t why_len)
{
    /* chunk-sized sends, one per wake-up: many clients interleave. */
    if ((pfd->revents & POLLOUT) &&
        stream_write_some(s, true, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    if (pfd->revents & (POLLIN | POLLHUP | POLLERR))
        return stream_read_some(s, why, why_len);
    return OUTCOME_PASS;
}

enum outcome streams_pump(struct stream *s, size_t n, long long deadline,
                          char *why, size_t why_len)
{
    struct pollfd *pfd = calloc(n, sizeof(*pfd));
    size_t *index = calloc(n, sizeof(*index)), k;
    enum outcome result = OUTCOME_PASS;

    if (pfd == NULL || index == NULL) {
        result = fail_with(why, why_len, "calloc: out of memory");
        goto done;
    }
    while (result == OUTCOME_PASS &&
           (k = pump_poll_set(s, n, pfd, index)) > 0) {
        int ready = poll(pfd, k, client_remaining_ms(deadline));
        if (ready == -1 && errno == EINTR)
            continue;
        if (ready == -1) {
            result = fail_with(why, why_len, "poll: %s", errname(errno));
        } else if (ready == 0) {
            result = pump_timed_out(s, n, why, why_len);
        } else {
            for (size_t j = 0; j < k && result == OUTCOME_PASS && ready > 0;
                 j++)
                result = pump_ready(&s[index[j]], &pfd[j], why, why_len);
        }
    }
done:
    free(pfd);
    free(index);
    return result;
}

enum outcome stream_push_until_stall(struct stream *s, int stall_ms,
                                     long long deadline, char *why,
                                     size_t why_len)
{
    while (s->sent < s->total) {
        if (stream_write_some(s, false, why, why_len) != OUTCOME_PASS)
            return OUTCOME_FAIL;
        if (s->sent == s->total)
            break;
        if (client_remaining_ms(deadline) == 0)
            return fail_with(why, why_len,
                             "client %d: still sending at the "
                             "deadline (%llu bytes sent)",
                             s->id, (unsigned long long)s->sent);
        int wait = stall_ms < client_remaining_ms(deadline)
                       ? stall_ms
                       : client_remaining_ms(deadline);
        if (client_wait(s->fd, POLLOUT, client_deadline(wait)) == -1) {
            if (errno == ETIMEDOUT)
                return OUTCOME_PASS; /* stalled: backpressure reached */
            return fail_with(why, why_len, "client %d: poll: %s", s->id,
                             errname(errno));
        }
    }
    return OUTCOME_PASS;
}

enum outcome echo_once(int fd, int id, uint64_t seed, size_t len,
                       int timeout_ms, char *why, size_t why_len)
{
    struct stream s;

    stream_init(&s, fd, id, seed, len);
    return streams_pump(&s, 1, client_deadline(timeout_ms), why, why_len);
}

enum outcome expect_eof(int fd, int id, long long deadline, char *why,
                        size_t why_len)
{
    char byte;

    for (;;) {
        ssize_t n = recv(fd, &byte, 1, 0);
        if (n == 0)
            return OUTCOME_PASS;
        if (n == 1)
            return fail_with(why, why_len,
                             "client %d: a byte (0x%02x) came after "
                             "the whole echo, instead of end of stream",
                             id, (uint8_t)byte);
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return fail_with(why, why_len,
                             "client %d: recv: %s instead of end of "
                             "stream",
                             id, errname(errno));
        if (client_wait(fd, POLLIN, deadline) == -1)
            return fail_with(why, why_len, "client %d: no end of stream: %s",
                             id, errname(errno));
    }
}

enum outcome expect_quiet(int fd, int id, int ms, const char *what, char *why,
                          size_t why_len)
{
    switch (client_expect_quiet(fd, ms)) {
    case QUIET_NOTHING:
        return OUTCOME_PASS;
    case QUIET_DATA:
        return fail_with(why, why_len, "client %d: got data within %d ms %s",
                         id, ms, what);
    case QUIET_EOF:
        return fail_with(why, why_len,
                         "client %d: server closed it within %d ms "
                         "%s",
                         id, ms, what);
    case QUIET_ERROR:
        break;
    }
    return fail_with(why, why_len, "client %d: %s within %d ms %s", id,
                     errname(errno), ms, what);
}

enum outcome connect_many(const struct target *t, int *fds, size_t n, char *why,
                          size_t why_len)
{
    for (size_t i = 0; i < n; i++)
        fds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        fds[i] = client_connect(t->host, t->port, STEP_CONNECT_MS);
        if (fds[i] == -1) {
            int err = errno;
            close_all(fds, i);
            return fail_with(why, why_len,
                             "connect of client %zu to %s port %d: "
                             "%s",
                             i, t->host, t->port, errname(err));
        }
    }
    return OUTCOME_PASS;
}

void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* close() of a socket can fail only with EBADF (a bug) or EINTR
         * (the descriptor is gone anyway on Linux): nothing to retry. */
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

/* The process whose descriptors are the server's sockets (catalogue.h). */
static pid_t sockets_pid(const struct target *t)
{
    return t->sockets_pid > 0 ? t->sockets_pid : t->server_pid;
}

int server_fd_count(const struct target *t)
{
    return t->server_pid > 0 ? proc_fd_count(sockets_pid(t)) : -1;
}

enum outcome wait_fds_back(const struct target *t, int baseline,
                           const char *after, char *why, size_t why_len)
{
    long long deadline = client_deadline(STEP_ECHO_MS);
    int count = -1;

    if (t->server_pid <= 0 || baseline < 0)
        return OUTCOME_PASS;
    /* The server closes its side only after it has read our FIN or RST, so
     * poll for the count to come down rather than sleep a fixed time. */
    while (client_remaining_ms(deadline) > 0) {
        count = proc_fd_count(sockets_pid(t));
        if (count == -1)
            return fail_with(why, why_len, "reading /proc/%d/fd: %s",
                             (int)sockets_pid(t), errname(errno));
        if (count <= baseline)
            return OUTCOME_PASS;
        client_sleep_ms(20);
    }
    return fail_with(why, why_len,
                     "descriptor leak: the server holds %d fds, %d "
                     "more than before %s",
                     count, count - baseline, after);
}

enum outcome check_alive(const struct target *t, char *why, size_t why_len)
{
    if (t->server_pid > 0 && !proc_alive(t->server_pid))
        return fail_with(why, why_len, "the server (pid %d) is dead",
                         (int)t->server_pid);
    return OUTCOME_PASS;
}
