/* 03-poll/server.c - the poll model: one thread hands poll() an array of
 * (descriptor, events wanted) slots, then serves the slots marked ready.
 *
 * The Linux step between select and epoll: 02-select's loop, but the
 * question is an array of struct pollfd, one slot per socket, instead of
 * three bitmaps. No FD_SETSIZE: any descriptor number, as many slots as
 * there are clients (the array grows). The kernel answers in a separate
 * field, revents, so the array is not rebuilt every turn. What remains of
 * select's cost: every turn hands the kernel the whole array and scans it
 * all, ready or not, so a turn costs in proportion to the clients.
 *
 *   [S1] setup_stop, setup_listener: socket, bind, listen; slot 0
 *   [S2] event_loop: ppoll() waits on the pollfd array
 *   [S3] slot 0 has POLLIN: on_accept appends a slot per client
 *   [S4] POLLIN: on_readable recv()s, then sends back at once
 *   [S5] POLLOUT (asked only while output is pending): on_writable
 *   [S6] EOF, POLLERR/POLLHUP/POLLNVAL: conn_close moves the last slot in
 *   [S7] SIGTERM interrupts ppoll(): close every client, print summary
 *   [S8] after every turn, close_idle: clients idle --idle-timeout seconds;
 *        ppoll's timeout is the time left until the oldest expires
 *
 * Win32: none in the notes, which go from select straight to
 * WSAEventSelect. Windows has the same call as WSAPoll() (Vista and later,
 * same struct pollfd).
 *
 * Try:  ./server -v            then: nc 127.0.0.1 9003 (in two terminals)
 *       ./server -vv           every poll() turn, every byte count
 * gdb:  make gdb M=03   (walkthrough.gdb: break on_accept, on_readable,
 *       on_writable, conn_close; print pfds[0]@nslots)
 */
#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "err.h"
#include "idle.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

#define DEFAULT_PORT 9003
#define DEFAULT_MAX_CLIENTS 1000
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */
#define SLOTS_INITIAL 64        /* pollfd slots; the array doubles as needed */
#define LISTEN_SLOT 0

/* One client, in slot pfds[c->slot] of the array poll() reads. */
struct conn {
    int fd;
    nfds_t slot;                /* index in pfds[] and slot_conns[] */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    struct idle_entry idle;     /* its place in idle_clients */
};

static struct server_opts opts;
static struct stats stats;
static int listen_fd = -1;
static sigset_t wait_mask;      /* ours, stop signals unblocked: setup_stop */

/* The array poll() reads: slot 0 is the listener, slots 1 .. nslots-1 the
 * clients, with no holes (see conn_close). Unlike an fd_set it survives the
 * call: the kernel writes only revents. slot_conns[i] is pfds[i]'s client. */
static struct pollfd *pfds;
static struct conn **slot_conns;
static nfds_t nslots, slots_cap;
static long long accept_paused_until; /* EMFILE: clock_ms() to resume, or 0 */
static struct idle_list idle_clients; /* [S8] least recently active first */

static void setup_stop(void);
static int setup_listener(void);
static void event_loop(void);
static bool on_event(nfds_t i);
static void on_accept(void);
static void conn_open(int fd, const char *peer);
static void on_hangup(struct conn *c, short revents);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static void watch(struct conn *c);
static void conn_close(struct conn *c);
static void close_idle(void);
static void shutdown_all(void);
static bool accepting(void);
static struct timespec *wait_timeout(struct timespec *ts);
static int slots_grow(void);

static const struct model_info model = {
    .program = "03-poll/server",
    .summary = "poll(): one thread, a growing pollfd array compacted on "
               "close",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = 100000,
    .extra = NULL,
    .extra_count = 0,
};

int main(int argc, char **argv)
{
    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("poll", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);

    /* send() to a client that reset the connection must return EPIPE, not
     * kill us with SIGPIPE (we also pass MSG_NOSIGNAL; this covers all). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] SIGINT/SIGTERM set a flag (a handler), and stay blocked except
 * inside ppoll(): see event_loop. wait_mask is the mask to wait with: ours,
 * with both unblocked (even if whoever started us had blocked them). */
static void setup_stop(void)
{
    int rc;

    if (sig_catch_stop() == -1)
        die("sigaction(SIGTERM)");
    if ((rc = sig_block_stop(&wait_mask)) != 0)
        die_code(rc, "pthread_sigmask");
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
}

/* [S1] socket/bind/listen, slot 0 of the array, then the one line on
 * stdout. Nonblocking: a client may reset between poll()'s POLLIN and our
 * accept(); a blocking accept() would then wait for the next client. */
static int setup_listener(void)
{
    int fd = net_listen(opts.host, opts.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    if (slots_grow() == -1)
        die("allocating %d pollfd slots", SLOTS_INITIAL);
    pfds[LISTEN_SLOT] = (struct pollfd){.fd = fd, .events = POLLIN};
    slot_conns[LISTEN_SLOT] = NULL;
    nslots = 1;
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] One turn: set the listener's slot, wait, serve what is ready.
 *
 * Why ppoll() and not poll(): the loop tests the stop flag, then waits.
 * With poll(), a SIGTERM landing between the test and the call would run
 * its handler there, and poll() would sleep on, forever with no timeout,
 * the stop unnoticed. Here the stop signals are blocked everywhere except
 * inside ppoll(), which installs wait_mask and waits in one atomic step: an
 * early signal stays pending until then and interrupts the wait at once. */
static void event_loop(void)
{
    while (!sig_stop_requested()) {
        struct timespec timeout;

        /* events = 0: the slot stays, the listener is not watched. */
        pfds[LISTEN_SLOT].events = accepting() ? POLLIN : 0;
        int ready = ppoll(pfds, nslots, wait_timeout(&timeout), &wait_mask);
        if (ready == -1 && errno == EINTR)
            continue;  /* EINTR: a signal came; the loop tests the flag */
        if (ready == -1 && errno == ENOMEM) {
            back_off("poll");  /* the kernel is short of memory for now */
            continue;
        }
        if (ready == -1)
            die("poll");  /* EFAULT, EINVAL: a bug */
        log_trace("poll: %d ready of %lu slots", ready,
                  (unsigned long)nslots);
        /* ready == 0: a timer ran out (the oldest client's idle
         * deadline, or the EMFILE pause): nobody is ready. */
        if (ready > 0 && (pfds[LISTEN_SLOT].revents & POLLIN))
            on_accept();  /* first: appended slots get revents = 0 */
        for (nfds_t i = LISTEN_SLOT + 1; ready > 0 && i < nslots;)
            if (on_event(i))
                i++;  /* else slot i now holds the former last: again */
        close_idle();
    }
}

/* One client's events, for slot i: the scan. Every slot is looked at,
 * ready or not.
 * Returns false when its client was closed: conn_close moved the last slot
 * into slot i, a client not examined yet, so the caller must look at slot
 * i again. Stepping on (i++) would skip it for this turn: the pitfall of
 * the notes' swap-with-last removal (jicun.liu[qw] = the last; qw++). */
static bool on_event(nfds_t i)
{
    struct conn *c = slot_conns[i];
    short revents = pfds[i].revents;

    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
        on_hangup(c, revents);
        return false;
    }
    if ((revents & POLLIN) && !on_readable(c))
        return false;
    if ((revents & POLLOUT) && !buf_empty(&c->echo))
        return on_writable(c);
    return true;
}

/* [S3] Accepts the clients waiting in the listen backlog, up to
 * ACCEPT_BATCH this turn and -c in all. */
static void on_accept(void)
{
    for (int i = 0; i < ACCEPT_BATCH && accepting(); i++) {
        char peer[ADDR_TEXT_MAX];
        int fd = net_accept(listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC, peer,
                            sizeof(peer));
        if (fd == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;  /* EAGAIN: nobody is waiting any more */
        if (fd == -1 && net_accept_exhausted(errno)) {
            /* EMFILE: out of descriptors. The listener stays readable, so
             * the wait would return at once and accept() fail again: a busy
             * loop (NOTES §7.1). Stop watching it until a client leaves, or
             * for EMFILE_PAUSE_MS, in case no client of ours frees one. */
            warn_errno("accept (pausing %d ms)", EMFILE_PAUSE_MS);
            accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
            return;
        }
        if (fd == -1 && (errno == EINTR || net_accept_transient(errno)))
            continue;  /* one aborted connection: try the next */
        if (fd == -1)
            die("accept");  /* EBADF, EINVAL...: a bug, not a client */
        conn_open(fd, peer);
    }
}

/* [S3] A new client: its conn, a slot at the end of the array (grown if
 * full). */
static void conn_open(int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1 ||
        (nslots == slots_cap && slots_grow() == -1)) {
        warn_errno("accept fd=%d: no memory, closing", fd);
        if (c != NULL)
            buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
        free(c);
        close(fd);
        return;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%d)", fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->slot = nslots++;
    pfds[c->slot] = (struct pollfd){.fd = fd, .events = POLLIN};
    slot_conns[c->slot] = c;
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);
}

/* POLLERR, POLLHUP, POLLNVAL: poll() reports them whether asked or not,
 * and none leaves anything to echo. POLLERR: the connection failed
 * (SO_ERROR says why; a reset discards unread data). POLLHUP: both
 * directions are shut, so nothing we send can arrive (a client's FIN alone
 * is POLLIN and recv() == 0). POLLNVAL: not an open descriptor, a bug here,
 * since conn_close never leaves one in the array. */
static void on_hangup(struct conn *c, short revents)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (revents & POLLNVAL) {
        warn("poll fd=%d: POLLNVAL: not an open descriptor", c->fd);
    } else if (revents & POLLERR) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        log_event("fd=%d POLLERR: %s", c->fd, strerror(err));
    } else {
        log_event("fd=%d POLLHUP: connection gone", c->fd);
    }
    conn_close(c);
}

/* [S4] poll() said POLLIN: one recv() will not block. Then send at
 * once: most of the time the echo leaves in this same turn. Returns false
 * when the client was closed. */
static bool on_readable(struct conn *c)
{
    ssize_t n = buf_fill(&c->echo, c->fd);

    if (n == -1) {
        /* EAGAIN: "readable" can be stale (select(2), BUGS); nonblocking
         * sockets turn that into EAGAIN instead of a stalled server. */
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return true;
        log_event("recv fd=%d: %s", c->fd, strerror(errno));
        conn_close(c);
        return false;
    }
    if (n == 0) {
        c->peer_done = true;  /* FIN: echo what is left, then close */
        log_event("fd=%d half-closed, %zu bytes left to echo", c->fd,
                  buf_len(&c->echo));
    } else {
        idle_touch(&idle_clients, &c->idle, clock_ms());  /* [S8] active */
        log_trace("recv fd=%d %zd bytes", c->fd, n);
    }
    return on_writable(c);
}

/* [S5] Sends what is pending until it is all gone or the socket's send
 * buffer is full. Returns false when the client was closed. */
static bool on_writable(struct conn *c)
{
    while (!buf_empty(&c->echo)) {
        ssize_t sent = buf_drain(&c->echo, c->fd);
        if (sent == -1 && errno == EINTR)
            continue;
        if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;  /* full: POLLOUT tells us when there is room */
        if (sent == -1) {
            log_event("send fd=%d: %s", c->fd, strerror(errno));
            conn_close(c);
            return false;
        }
        stats_echoed(&stats, (unsigned long long)sent);
        idle_touch(&idle_clients, &c->idle, clock_ms());  /* [S8] it reads */
        log_trace("send fd=%d %zd bytes", c->fd, sent);
    }
    if (c->peer_done && buf_empty(&c->echo)) {
        conn_close(c);  /* half-close: everything echoed */
        return false;
    }
    watch(c);
    return true;
}

/* c's slot from its state. POLLIN while the backlog has room (the
 * backpressure: a full client is not read until it drains) and
 * the client may still send. POLLOUT only while output is pending: a
 * socket with room is always writable, so asking idle would end every wait
 * at once. */
static void watch(struct conn *c)
{
    bool want_read = !c->peer_done && !buf_full(&c->echo);
    bool was_reading = pfds[c->slot].events & POLLIN;

    if (!c->peer_done && want_read != was_reading)
        log_event("fd=%d backlog %s", c->fd,
                  want_read ? "drained: reading again" : "full: not reading");
    pfds[c->slot].events = (want_read ? POLLIN : 0) |
                           (buf_empty(&c->echo) ? 0 : POLLOUT);
}

/* [S6] Swap-with-last: the last slot moves into c's, so the array stays
 * dense. No closed descriptor is left in it (poll() would answer POLLNVAL
 * for it at once, every turn: a spin), and no hole (fd = -1) is left to
 * scan past. Then close and free. */
static void conn_close(struct conn *c)
{
    nfds_t last = nslots - 1;

    pfds[c->slot] = pfds[last];
    slot_conns[c->slot] = slot_conns[last];
    slot_conns[c->slot]->slot = c->slot;
    nslots--;
    idle_remove(&c->idle);
    if (close(c->fd) == -1)
        warn_errno("close(fd=%d)", c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    accept_paused_until = 0;  /* a descriptor and a slot are free */
    buf_free(&c->echo);
    free(c);
}

/* [S8] Closes the clients that have been idle --idle-timeout seconds:
 * nothing received, and none of their echo taken. idle_clients is in
 * order of last activity, so only its head can have expired: this looks
 * at the expired ones and one more, not at every client (idle.h). */
static void close_idle(void)
{
    long long now = clock_ms();
    struct conn *c;

    while ((c = idle_expired(&idle_clients, now)) != NULL) {
        log_info("idle fd=%d peer=%s: closed after %d s", c->fd, c->peer,
                 opts.idle_timeout);
        stats_closed_idle(&stats);
        conn_close(c);
    }
}

/* [S7] SIGTERM: close every client (an echo still unsent is dropped). */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    while (nslots > LISTEN_SLOT + 1)
        conn_close(slot_conns[nslots - 1]);
    free(pfds);
    free(slot_conns);
}

/* Accept now? Not at -c (newcomers wait in the listen backlog), nor
 * during an EMFILE pause. */
static bool accepting(void)
{
    if (accept_paused_until != 0 && clock_ms() >= accept_paused_until)
        accept_paused_until = 0;  /* the pause is over: try again */
    return accept_paused_until == 0 &&
           stats_current(&stats) < opts.max_clients;
}

/* [S8] The wait's timeout: until the oldest client would expire, or the
 * end of an EMFILE pause if that comes first (the retry timer); NULL, wait
 * for an event, when there is nothing to time. */
static struct timespec *wait_timeout(struct timespec *ts)
{
    long long now = clock_ms();
    long long ms = idle_next_ms(&idle_clients, now);  /* -1: nobody */

    if (accept_paused_until != 0) {
        long long pause_left = accept_paused_until - now;
        if (pause_left < 0)
            pause_left = 0;
        if (ms == -1 || pause_left < ms)
            ms = pause_left;
    }
    if (ms == -1)
        return NULL;
    *ts = (struct timespec){ms / 1000, ms % 1000 * 1000000L};
    return ts;
}

/* Doubles the slot arrays: poll() has no size cap, so the array has none
 * either (-c bounds the clients). */
static int slots_grow(void)
{
    nfds_t cap = slots_cap != 0 ? slots_cap * 2 : SLOTS_INITIAL;
    struct pollfd *grown = reallocarray(pfds, cap, sizeof(*grown));

    if (grown == NULL)
        return -1;
    pfds = grown;
    struct conn **grown_conns = reallocarray(slot_conns, cap,
                                             sizeof(*grown_conns));
    if (grown_conns == NULL)
        return -1;  /* pfds is larger than slots_cap says: harmless */
    slot_conns = grown_conns;
    slots_cap = cap;
    return 0;
}
