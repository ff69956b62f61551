/* client.c - the test client's socket helpers (see client.h). */
#include "client.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

long long client_now_ms(void)
{
    struct timespec ts;

    /* Fails only for a bad clock id or pointer: a bug, not a condition. */
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
        abort();
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long client_deadline(int timeout_ms)
{
    return client_now_ms() + timeout_ms;
}

int client_remaining_ms(long long deadline)
{
    long long left = deadline - client_now_ms();

    if (left < 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

void client_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (long)(ms % 1000) * 1000000};

    /* nanosleep writes the time still to sleep into ts on EINTR. */
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

long client_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
        return -1;
    return (long)rl.rlim_cur;
}

int client_connect(const char *host, int port, int timeout_ms)
{
    struct sockaddr_storage ss;
    socklen_t len;
    /* Numeric hosts only, like the servers: a test never waits on DNS. */
    int fd = net_socket(host, port, false, SOCK_NONBLOCK | SOCK_CLOEXEC, &ss,
                        &len);

    if (fd == -1)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) == -1 &&
        (errno != EINPROGRESS || net_connect_finish(fd, timeout_ms) == -1)) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int client_wait(int fd, short events, long long deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int n = poll(&pfd, 1, client_remaining_ms(deadline));
        if (n > 0)
            return pfd.revents;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

int client_send_all(int fd, const void *data, size_t len, long long deadline)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 && errno != EAGAIN)
            return -1;
        /* EAGAIN: the socket's send buffer is full; wait for room. */
        if (client_wait(fd, POLLOUT, deadline) == -1)
            return -1;
    }
    return 0;
}

ssize_t client_recv_exact(int fd, void *data, size_t len, long long deadline,
                          size_t *got)
{
    char *p = data;
    size_t have = 0;

    while (have < len) {
        ssize_t n = recv(fd, p + have, len - have, 0);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        if (n == 0)
            break; /* end of stream: a short result */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || client_wait(fd, POLLIN, deadline) == -1) {
            if (got != NULL)
                *got = have;
            return -1;
        }
    }
    if (got != NULL)
        *got = have;
    return (ssize_t)have;
}

enum client_quiet client_expect_quiet(int fd, int ms)
{
    char byte;

    if (client_wait(fd, POLLIN, client_deadline(ms)) == -1)
        return errno == ETIMEDOUT ? QUIET_NOTHING : QUIET_ERROR;
    /* MSG_PEEK: look without taking, so a caller can still read the data. */
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK);
    if (n > 0)
        return QUIET_DATA;
    if (n == 0)
        return QUIET_EOF;
    return errno == EAGAIN ? QUIET_NOTHING : QUIET_ERROR;
}

int client_drain_to_end(int fd, long long deadline)
{
    char sink[16384];

    for (;;) {
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n == 0)
            return 0;
        if (n > 0 || errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return 1; /* ECONNRESET and friends: the end, abruptly */
        if (client_wait(fd, POLLIN, deadline) == -1)
            return -1;
    }
}

int client_abort(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    int rc = setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    int saved = errno;

    close(fd);
    errno = saved;
    return rc;
}

/* splitmix64's finaliser: a cheap, well-mixed 64-bit hash. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Eight bytes of the stream per hash: word w covers offsets 8w .. 8w+7. */
static uint64_t pattern_word(uint64_t seed, uint64_t word)
{
    return mix64(mix64(seed) ^ word);
}

uint8_t pattern_byte(uint64_t seed, uint64_t offset)
{
    return (uint8_t)(pattern_word(seed, offset / 8) >> (offset % 8 * 8));
}

void pattern_fill(uint64_t seed, uint64_t offset, void *out, size_t len)
{
    uint8_t *p = out;
    uint64_t word_index = offset / 8, word = pattern_word(seed, word_index);

    for (size_t i = 0; i < len; i++, offset++) {
        if (offset / 8 != word_index) {
            word_index = offset / 8;
            word = pattern_word(seed, word_index);
        }
        p[i] = (uint8_t)(word >> (offset % 8 * 8));
    }
}

long long pattern_check(uint64_t seed, uint64_t offset, const void *data,
                        size_t len)
{
    const uint8_t *p = data;
    uint64_t word_index = offset / 8, word = pattern_word(seed, word_index);

    for (size_t i = 0; i < len; i++, offset++) {
        if (offset / 8 != word_index) {
            word_index = offset / 8;
            word = pattern_word(seed, word_index);
        }
        if (p[i] != (uint8_t)(word >> (offset % 8 * 8)))
            return (long long)i;
    }
    return -1;
}
