/* client.h - the test client's socket helpers: every wait has a deadline.
 *
 * The scenarios and the benchmark talk to a server that may be broken: it may
 * drop bytes, stop reading, or hang. So no helper here blocks without a bound.
 * Sockets are non-blocking and each wait is a poll() with what is left of a
 * deadline (CLOCK_MONOTONIC milliseconds, see client_deadline()).
 *
 * Library style, like common/: -1 with errno set, never exits. A deadline
 * that passes gives errno = ETIMEDOUT.
 */
#ifndef TESTS_CLIENT_CLIENT_H
#define TESTS_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Monotonic milliseconds; a deadline is client_now_ms() + a timeout. */
long long client_now_ms(void);
long long client_deadline(int timeout_ms);
/* Milliseconds left before deadline, never negative, at most INT_MAX. */
int client_remaining_ms(long long deadline);
/* Sleeps ms milliseconds (nanosleep, resumed after EINTR). */
void client_sleep_ms(int ms);

/* Raises this process's RLIMIT_NOFILE soft limit to its hard limit, so that
 * scenarios such as many-idle can hold 900+ sockets. Returns the new soft
 * limit, or -1 with errno. */
long client_raise_nofile(void);

/* Connects to host:port (numeric address) within timeout_ms. The returned
 * socket is non-blocking and close-on-exec. A full listen backlog can leave
 * a SYN unanswered for minutes; the timeout bounds that. */
int client_connect(const char *host, int port, int timeout_ms);

/* Waits until fd has one of events (POLLIN/POLLOUT) or the deadline passes.
 * Returns the revents (> 0), or -1 with errno (ETIMEDOUT at the deadline). */
int client_wait(int fd, short events, long long deadline);

/* Sends all len bytes before the deadline (MSG_NOSIGNAL: a reset peer gives
 * EPIPE, not a SIGPIPE). Returns 0, or -1 with errno. */
int client_send_all(int fd, const void *data, size_t len, long long deadline);

/* Receives exactly len bytes before the deadline. Returns len, the number of
 * bytes that came before end of stream (short), or -1 with errno; bytes that
 * arrived before an error or timeout are counted in *got when got != NULL. */
ssize_t client_recv_exact(int fd, void *data, size_t len, long long deadline,
                          size_t *got);

/* What arrives on a socket within a quiet period. */
enum client_quiet {
    QUIET_NOTHING, /* nothing arrived: what we hoped */
    QUIET_DATA,    /* bytes arrived (left unread) */
    QUIET_EOF,     /* the peer closed */
    QUIET_ERROR,   /* reset or another error; errno set */
};
/* Waits ms milliseconds and says what, if anything, arrived on fd. */
enum client_quiet client_expect_quiet(int fd, int ms);

/* Reads and discards until end of stream or an error (a reset counts as the
 * end). Returns 0 at EOF, 1 at a reset or other error, -1 with errno =
 * ETIMEDOUT if neither came before the deadline. */
int client_drain_to_end(int fd, long long deadline);

/* Closes with SO_LINGER {on, 0}: the kernel sends RST instead of FIN. */
int client_abort(int fd);

/* ------------------------------------------------------------- patterns
 * A deterministic byte stream: byte i of stream `seed` is a hash of (seed,
 * i). Any slice can be generated or checked from its offset alone, so an
 * echoed stream is verified byte for byte without keeping a copy, and two
 * clients with different seeds cannot be confused (cross-talk shows up). */
uint8_t pattern_byte(uint64_t seed, uint64_t offset);
void pattern_fill(uint64_t seed, uint64_t offset, void *out, size_t len);
/* Index in data of the first byte that differs from the stream, or -1. */
long long pattern_check(uint64_t seed, uint64_t offset, const void *data,
                        size_t len);

#endif
