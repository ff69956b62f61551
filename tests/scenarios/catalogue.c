/* catalogue.c - the scenario catalogue (see catalogue.h).
 *
 * Each scenario is a short list of steps (steps.h). Echoed data is always
 * checked byte for byte against a pattern stream (client/client.h), so a
 * reason names the client and the byte. Seeds differ per scenario and per
 * client: an echo that went to the wrong client cannot look right.
 *
 * The heavier scenarios (slow-reader, slowloris, many-idle) are in
 * load.c; the table at the end lists all fourteen.
 */
#include "catalogue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "load.h"
#include "net.h"
#include "steps.h"

#define MIB (1024 * 1024)

/* One connected client, or -1 with the reason written. */
static int connect_one(const struct target *t, char *why, size_t why_len)
{
    int fd = client_connect(t->host, t->port, STEP_CONNECT_MS);

    if (fd == -1)
        fail_with(why, why_len, "connect to %s port %d: %s", t->host, t->port,
                  errname(errno));
    return fd;
}

/* Connects, streams `total` bytes of pattern `seed` through the echo with
 * `chunk`-byte sends, and closes. The shape of several scenarios. */
static enum outcome stream_one(const struct target *t, uint64_t seed,
                               uint64_t total, size_t chunk, char *why,
                               size_t why_len)
{
    struct stream s;
    int fd = connect_one(t, why, why_len);

    if (fd == -1)
        return OUTCOME_FAIL;
    stream_init(&s, fd, 0, seed, total);
    s.chunk = chunk;
    enum outcome o =
        streams_pump(&s, 1, client_deadline(STEP_LONG_MS), why, why_len);
    close(fd);
    return o;
}

static enum outcome run_single_byte(const struct target *t, char *why,
                                    size_t why_len)
{
    return stream_one(t, 1, 1, 1, why, why_len);
}

static enum outcome run_all_byte_values(const struct target *t, char *why,
                                        size_t why_len)
{
    unsigned char sent[256], got[256];
    size_t have = 0;
    long long deadline = client_deadline(STEP_ECHO_MS);
    int fd = connect_one(t, why, why_len);

    if (fd == -1)
        return OUTCOME_FAIL;
    for (int i = 0; i < 256; i++)
        sent[i] = (unsigned char)i; /* NUL, CR, LF, 0xff: nothing special */
    if (client_send_all(fd, sent, sizeof(sent), deadline) == -1 ||
        client_recv_exact(fd, got, sizeof(got), deadline, &have) == -1) {
        close(fd);
        return fail_with(why, why_len, "%s after %zu of 256 bytes echoed",
                         errname(errno), have);
    }
    close(fd);
    if (have < sizeof(got))
        return fail_with(why, why_len, "server closed after %zu of 256 bytes",
                         have);
    for (int i = 0; i < 256; i++)
        if (got[i] != sent[i])
            return fail_with(why, why_len,
                             "byte value 0x%02x came back as 0x%02x", i,
                             got[i]);
    return OUTCOME_PASS;
}

static enum outcome run_large_payload(const struct target *t, char *why,
                                      size_t why_len)
{
    /* 64 KiB sends while reading: a server that drops a partial send or
     * reorders buffers shows up as a differing byte. */
    return stream_one(t, 2, 4 * MIB, 64 * 1024, why, why_len);
}

static enum outcome run_trickle(const struct target *t, char *why,
                                size_t why_len)
{
    struct stream s;
    int fd = connect_one(t, why, why_len);

    if (fd == -1)
        return OUTCOME_FAIL;
    /* TCP_NODELAY: without it Nagle would merge the one-byte writes into
     * bigger segments, and the server would never see a 1-byte read. */
    if (net_set_nodelay(fd, true) == -1) {
        close(fd);
        return fail_with(why, why_len, "setsockopt(TCP_NODELAY): %s",
                         errname(errno));
    }
    stream_init(&s, fd, 0, 3, 4096);
    s.chunk = 1;
    enum outcome o =
        streams_pump(&s, 1, client_deadline(STEP_LONG_MS), why, why_len);
    close(fd);
    return o;
}

static enum outcome run_pipelined(const struct target *t, char *why,
                                  size_t why_len)
{
    char message[64];
    struct stream s;
    long long deadline = client_deadline(STEP_LONG_MS);
    int fd = connect_one(t, why, why_len);

    if (fd == -1)
        return OUTCOME_FAIL;
    stream_init(&s, fd, 0, 4, 0);
    /* 1000 messages of 1..61 bytes (about 31 KiB), each its own send(),
     * all before reading: small enough for the socket buffers to hold. */
    for (int i = 0; i < 1000; i++) {
        size_t len = 1 + (size_t)(i % 61);
        pattern_fill(s.seed, s.sent, message, len);
        if (client_send_all(fd, message, len, deadline) == -1) {
            close(fd);
            return fail_with(why, why_len, "send of message %d: %s", i,
                             errname(errno));
        }
        s.sent += len;
    }
    s.total = s.sent;
    enum outcome o = streams_pump(&s, 1, deadline, why, why_len);
    close(fd);
    return o;
}

static enum outcome run_sequential_clients(const struct target *t, char *why,
                                           size_t why_len)
{
    int baseline = server_fd_count(t);

    for (int i = 0; i < 200; i++) {
        int fd = client_connect(t->host, t->port, STEP_CONNECT_MS);
        if (fd == -1)
            return fail_with(why, why_len, "connect of client %d: %s", i,
                             errname(errno));
        enum outcome o =
            echo_once(fd, i, 100 + (uint64_t)i, 32, STEP_ECHO_MS, why, why_len);
        close(fd);
        if (o != OUTCOME_PASS)
            return o;
    }
    return wait_fds_back(t, baseline, "the 200 clients", why, why_len);
}

static enum outcome run_concurrent_clients(const struct target *t, char *why,
                                           size_t why_len)
{
    enum { CLIENTS = 100 };
    int fds[CLIENTS];
    struct stream s[CLIENTS];

    if (connect_many(t, fds, CLIENTS, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    /* 8 KiB each in 1 KiB sends, one send per client per turn: the server
     * sees the clients' bytes interleaved; distinct seeds catch cross-talk. */
    for (int i = 0; i < CLIENTS; i++) {
        stream_init(&s[i], fds[i], i, 1000 + (uint64_t)i, 8192);
        s[i].chunk = 1024;
    }
    enum outcome o =
        streams_pump(s, CLIENTS, client_deadline(STEP_LONG_MS), why, why_len);
    close_all(fds, CLIENTS);
    return o;
}

static enum outcome run_half_close(const struct target *t, char *why,
                                   size_t why_len)
{
    struct stream s;
    long long deadline = client_deadline(STEP_LONG_MS);
    int fd = connect_one(t, why, why_len);

    if (fd == -1)
        return OUTCOME_FAIL;
    /* The FIN goes out while part of the 256 KiB is still in flight: the
     * server must echo those bytes too before it closes. */
    stream_init(&s, fd, 0, 5, 256 * 1024);
    s.shut_after = true;
    enum outcome o = streams_pump(&s, 1, deadline, why, why_len);
    if (o == OUTCOME_PASS)
        o = expect_eof(fd, 0, deadline, why, why_len);
    close(fd);
    return o;
}

/* Client A sends 64 KiB, gets some echo back (the server is mid-stream),
 * then resets; returns FAIL with the reason when a step fails. */
static enum outcome reset_one(const struct target *t, int round, char *why,
                              size_t why_len)
{
    char block[64 * 1024], first;
    long long deadline = client_deadline(STEP_ECHO_MS);
    int fd = connect_one(t, why, why_len);

    if (fd == -1)
        return OUTCOME_FAIL;
    pattern_fill(6, 0, block, sizeof(block));
    if (client_send_all(fd, block, sizeof(block), deadline) == -1 ||
        client_recv_exact(fd, &first, 1, deadline, NULL) != 1) {
        close(fd);
        return fail_with(why, why_len, "round %d: no echo before the reset: %s",
                         round, errname(errno));
    }
    /* SO_LINGER {1, 0} + close: RST, with unread echo still queued on both
     * sides. The server's next send gets EPIPE/ECONNRESET. */
    if (client_abort(fd) == -1)
        return fail_with(why, why_len, "setsockopt(SO_LINGER): %s",
                         errname(errno));
    return OUTCOME_PASS;
}

static enum outcome run_reset_mid_stream(const struct target *t, char *why,
                                         size_t why_len)
{
    int baseline = server_fd_count(t);

    for (int round = 0; round < 5; round++) {
        if (reset_one(t, round, why, why_len) != OUTCOME_PASS)
            return OUTCOME_FAIL;
        int fd = connect_one(t, why, why_len);
        if (fd == -1)
            return OUTCOME_FAIL;
        enum outcome o = echo_once(fd, 1, 60 + (uint64_t)round, 4096,
                                   STEP_ECHO_MS, why, why_len);
        close(fd);
        if (o != OUTCOME_PASS || check_alive(t, why, why_len) != OUTCOME_PASS)
            return OUTCOME_FAIL;
    }
    return wait_fds_back(t, baseline, "the resets", why, why_len);
}

static enum outcome run_connect_and_close(const struct target *t, char *why,
                                          size_t why_len)
{
    enum { CLIENTS = 100 };
    int fds[CLIENTS], baseline = server_fd_count(t);

    /* All connected, then all closed before the server has served any:
     * it may accept a connection whose peer is already gone. */
    if (connect_many(t, fds, CLIENTS, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    close_all(fds, CLIENTS);
    int fd = connect_one(t, why, why_len);
    if (fd == -1)
        return OUTCOME_FAIL;
    enum outcome o = echo_once(fd, 0, 7, 1024, STEP_ECHO_MS, why, why_len);
    close(fd);
    if (o != OUTCOME_PASS || check_alive(t, why, why_len) != OUTCOME_PASS)
        return OUTCOME_FAIL;
    return wait_fds_back(t, baseline, "the 100 connects", why, why_len);
}

static enum outcome run_idle_then_active(const struct target *t, char *why,
                                         size_t why_len)
{
    int fd = connect_one(t, why, why_len);

    if (fd == -1)
        return OUTCOME_FAIL;
    enum outcome o = expect_quiet(fd, 0, 2000, "of idling", why, why_len);
    if (o == OUTCOME_PASS)
        o = echo_once(fd, 0, 8, 1024, STEP_ECHO_MS, why, why_len);
    close(fd);
    return o;
}

const struct scenario scenarios[] = {
    {"single-byte", "sends 1 byte", run_single_byte},
    {"all-byte-values", "sends bytes 0..255", run_all_byte_values},
    {"large-payload", "sends 4 MiB while reading", run_large_payload},
    {"trickle", "sends 4 KiB one byte per write (TCP_NODELAY)", run_trickle},
    {"pipelined", "sends 1000 small messages before reading any",
     run_pipelined},
    {"sequential-clients", "200 connect/echo/close cycles",
     run_sequential_clients},
    {"concurrent-clients", "100 clients at once, interleaved",
     run_concurrent_clients},
    {"half-close", "sends 256 KiB, then shutdown(SHUT_WR)", run_half_close},
    {"reset-mid-stream", "sends, then aborts with RST (SO_LINGER 0)",
     run_reset_mid_stream},
    {"connect-and-close", "100 connects closed at once", run_connect_and_close},
    {"idle-then-active", "idles 2 s, then echoes", run_idle_then_active},
    {"slow-reader", "sends 16 MiB without reading, then reads it all",
     run_slow_reader},
    {"slowloris", "50 clients each trickle a byte a second", run_slowloris},
    {"many-idle", "holds 900 idle connections", run_many_idle},
};
const size_t scenario_count = sizeof(scenarios) / sizeof(scenarios[0]);

const struct scenario *scenario_find(const char *name)
{
    for (size_t i = 0; i < scenario_count; i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return &scenarios[i];
    return NULL;
}
