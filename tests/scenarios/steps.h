/* steps.h - the steps scenarios are made of: connect N clients, stream a
 * verified pattern through an echo, expect silence or end of stream, wait for
 * the server's descriptors to come back.
 *
 * A step that fails writes a precise reason into why ("client 37: echo
 * differs at byte 1024 (sent 0x3e, got 0x00)") and returns OUTCOME_FAIL, so
 * a scenario is a short list of steps:
 *     if (connect_many(t, fds, 100, why, len) != OUTCOME_PASS)
 *         return OUTCOME_FAIL;
 */
#ifndef TESTS_SCENARIOS_STEPS_H
#define TESTS_SCENARIOS_STEPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalogue.h"

/* Timeouts of the steps: generous, because they only say "this hung". */
#define STEP_CONNECT_MS 5000
#define STEP_ECHO_MS    10000
#define STEP_LONG_MS    20000

/* Writes the reason into why and returns OUTCOME_FAIL (or OUTCOME_SKIP). */
enum outcome fail_with(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum outcome skip_with(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "ECONNRESET" for an errno value (for reasons). */
const char *errname(int err);

/* One client's pattern stream through the echo: bytes [0, total) of pattern
 * `seed` go out, and each byte that comes back is checked at its offset. */
struct stream {
    int fd;
    int id; /* "client <id>" in reasons */
    uint64_t seed;
    uint64_t total; /* bytes to send in all */
    uint64_t sent;
    uint64_t received; /* echoed and verified */
    size_t chunk;      /* most bytes per send() (interleaves clients) */
    bool shut_after;   /* shutdown(SHUT_WR) once everything is sent */
    bool shut_done;
};

void stream_init(struct stream *s, int fd, int id, uint64_t seed,
                 uint64_t total);

/* Sends and receives on all n streams until every echo is complete or the
 * deadline passes (then fails, saying how far each got). */
enum outcome streams_pump(struct stream *s, size_t n, long long deadline,
                          char *why, size_t why_len);

/* Reads what has arrived on s without waiting, and verifies it.
 * PASS = progress or nothing yet; FAIL = wrong byte, EOF early, error. */
enum outcome stream_read_some(struct stream *s, char *why, size_t why_len);

/* Sends on s without reading until everything is sent or the socket has
 * taken nothing for stall_ms (the server has stopped reading: backpressure).
 * FAIL only on an error or at the deadline. */
enum outcome stream_push_until_stall(struct stream *s, int stall_ms,
                                     long long deadline, char *why,
                                     size_t why_len);

/* Sends len pattern bytes on fd and checks their echo: one round trip. */
enum outcome echo_once(int fd, int id, uint64_t seed, size_t len,
                       int timeout_ms, char *why, size_t why_len);

/* Expects end of stream on fd (the server closed) with no further bytes. */
enum outcome expect_eof(int fd, int id, long long deadline, char *why,
                        size_t why_len);

/* Expects nothing at all on fd for ms milliseconds ("what" says why). */
enum outcome expect_quiet(int fd, int id, int ms, const char *what, char *why,
                          size_t why_len);

/* Connects n clients (fds[i] = socket, non-blocking). On failure closes the
 * ones it opened (all fds[] = -1) and says which connect failed. */
enum outcome connect_many(const struct target *t, int *fds, size_t n, char *why,
                          size_t why_len);
/* Closes every fds[i] >= 0 and sets it to -1. */
void close_all(int *fds, size_t n);

/* With a server pid: waits (bounded) until the server holds at most
 * baseline descriptors again; fails with the count if it never does. */
enum outcome wait_fds_back(const struct target *t, int baseline,
                           const char *after, char *why, size_t why_len);
/* The server's descriptor count now, or -1 without a pid. */
int server_fd_count(const struct target *t);

/* Is the server (if its pid is known) still alive? FAIL when it is not. */
enum outcome check_alive(const struct target *t, char *why, size_t why_len);

#endif
