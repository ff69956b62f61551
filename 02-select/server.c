/* 02-select/server.c - the select model: one thread asks select() which
 * sockets are ready, then serves exactly those.
 *
 * The notes' second server: instead of blocking in accept() or recv(), hand
 * the kernel sets of descriptors and ask "which of these can I use without
 * waiting?". One thread serves every client; the sockets are nonblocking,
 * so a call that would still wait returns EAGAIN instead. An fd_set is a
 * bitmap of FD_SETSIZE (1024) bits indexed by descriptor number: a socket
 * numbered 1024 or more cannot be watched at all, so this model serves at
 * most about 1020 clients, and that inherent limit is -c's default.
 *
 *   [S1] setup_stop; setup_listener: socket, bind, listen   (Win32: the same)
 *   [S2] event_loop: copy the master sets, pselect() waits  (Win32: select)
 *   [S3] listening socket readable: on_accept, FD_SET        (Win32: accept)
 *   [S4] client readable: on_readable recv()s, sends back    (Win32: recv)
 *   [S5] client with output pending writable: on_writable    (Win32: send)
 *   [S6] EOF, error, except set: conn_close, FD_CLR  (Win32: closesocket)
 *   [S7] SIGTERM interrupts pselect(): close every client, print summary
 *   [S8] after every turn, close_idle: clients idle --idle-timeout seconds;
 *        the wait's timeout is the time left until the oldest expires
 *
 * Win32: select(0, &readfds, &writefds, &exceptfds, &timeout). Windows'
 * fd_set is an array of at most FD_SETSIZE = 64 SOCKETs plus a count (a
 * #define before <winsock2.h> raises it), walked as fd_array[0..fd_count).
 * Linux's is a bitmap, FD_SETSIZE is fixed at 1024 and bounds the descriptor
 * *number*, and we walk it with FD_ISSET for 0 .. nfds-1. Windows ignores
 * nfds; Linux needs the highest descriptor + 1.
 *
 * Try:  ./server -v            then: nc 127.0.0.1 9002 (in two terminals)
 *       ./server -vv           every select() turn, every byte count
 * gdb:  make gdb M=02   (walkthrough.gdb: break on_accept, on_readable,
 *       on_writable, conn_close; print/x read_master.fds_bits[0])
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
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

#define DEFAULT_PORT 9002
#define OWN_FDS 4               /* stdin, stdout, stderr, the listener */
#define DEFAULT_MAX_CLIENTS (FD_SETSIZE - OWN_FDS)
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */

/* One client, found by its descriptor number: conns[fd]. */
struct conn {
    int fd;
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    struct idle_entry idle;     /* its place in idle_clients */
};

static struct server_opts opts;
static struct stats stats;
static int listen_fd = -1;
static sigset_t wait_mask;      /* ours, stop signals unblocked: setup_stop */

/* What we want watched. select() overwrites the sets it is given, so every
 * turn works on copies of these (the notes' "temporary" fd_set b = a). */
static fd_set read_master;      /* clients with room in their backlog */
static fd_set write_master;     /* clients with output pending */
static struct conn *conns[FD_SETSIZE];
static int max_fd = -1;         /* highest client descriptor, or -1 */
static long long accept_paused_until; /* EMFILE: clock_ms() to resume, or 0 */
static struct idle_list idle_clients; /* [S8] least recently active first */

static void setup_stop(void);
static int setup_listener(void);
static void event_loop(void);
static bool on_event(int fd, fd_set *readfds, fd_set *writefds,
                     fd_set *exceptfds);
static void on_accept(void);
static void conn_open(int fd, const char *peer);
static bool on_exception(struct conn *c);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static void watch(struct conn *c);
static void conn_close(struct conn *c);
static void close_idle(void);
static void shutdown_all(void);
static bool accepting(void);
static struct timespec *wait_timeout(struct timespec *timeout);

static const struct model_info model = {
    .program = "02-select/server",
    .summary = "select(): one thread, fd_sets copied every turn, "
               "descriptors below FD_SETSIZE only",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = 100000,
    .extra = NULL,
    .extra_count = 0,
};

int main(int argc, char **argv)
{
    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("select", opts.verbose);
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
 * inside pselect(): see event_loop. wait_mask is the mask to wait with: ours,
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

/* [S1] socket/bind/listen, then the one line on stdout. Nonblocking: a
 * client may reset between select()'s "readable" and our accept(); a
 * blocking accept() would then wait for the next client, and hold all. */
static int setup_listener(void)
{
    int fd = net_listen(opts.host, opts.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    if (fd >= FD_SETSIZE)
        die_code(EMFILE, "listening fd=%d is not below FD_SETSIZE", fd);
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] One turn: copy the master sets, wait, serve what is ready.
 *
 * Why pselect() and not select(): the loop tests the stop flag, then
 * waits. With select(), a SIGTERM landing between the test and the call
 * would run its handler there, and select() would sleep on, its full
 * timeout or forever, with the stop unnoticed. Here the stop signals are
 * blocked everywhere except inside pselect(), which installs wait_mask and
 * waits in one atomic step: an early signal stays pending until then and
 * interrupts the wait at once (EINTR). */
static void event_loop(void)
{
    while (!sig_stop_requested()) {
        fd_set readfds = read_master;   /* fd sets are not reusable after */
        fd_set writefds = write_master; /* select(): it leaves only the */
        fd_set exceptfds = read_master; /* ready bits. Copy every turn. */
        int nfds = (max_fd > listen_fd ? max_fd : listen_fd) + 1;

        if (accepting())
            FD_SET(listen_fd, &readfds);
        struct timespec timeout;
        /* Plain select() would also rewrite its struct timeval on Linux
         * (to the time left): that too must be rebuilt every turn. */
        int ready = pselect(nfds, &readfds, &writefds, &exceptfds,
                            wait_timeout(&timeout), &wait_mask);
        if (ready == -1 && errno == EINTR)
            continue;  /* EINTR: a signal came; the loop tests the flag */
        if (ready == -1 && errno == ENOMEM) {
            back_off("select");  /* the kernel is short of memory for now */
            continue;
        }
        if (ready == -1)
            die("select");  /* EBADF: a closed fd left in a set (a bug) */
        log_trace("select: %d ready below nfds=%d", ready, nfds);
        /* ready == 0: the timeout, nobody is ready; but someone may have
         * been idle too long, which close_idle() will see. */
        if (ready > 0 && FD_ISSET(listen_fd, &readfds))
            on_accept();  /* first: new fds then carry no stale bits */
        for (int fd = 0; ready > 0 && fd < nfds; fd++)
            on_event(fd, &readfds, &writefds, &exceptfds);
        close_idle();
    }
}

/* One descriptor's events: the FD_ISSET walk. Every number below nfds is
 * tested, ready or not: the cost of select() grows with the highest
 * descriptor, not with the number of ready ones. (Win32: the notes walk
 * fd_array[0 .. fd_count), the SOCKETs select() left in the set.) */
static bool on_event(int fd, fd_set *readfds, fd_set *writefds,
                     fd_set *exceptfds)
{
    struct conn *c = conns[fd];

    if (c == NULL)
        return false;  /* the listener, a free number, or closed */
    if (FD_ISSET(fd, exceptfds) && !on_exception(c))
        return false;
    if (FD_ISSET(fd, readfds) && !on_readable(c))
        return false;
    if (FD_ISSET(fd, writefds) && !buf_empty(&c->echo))
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
        /* FD_SET(fd >= FD_SETSIZE) writes past the bitmap: undefined
         * behaviour that ASan can miss (NOTES §7.8). Never let it in. */
        if (fd >= FD_SETSIZE) {
            warn("accept fd=%d peer=%s: not below FD_SETSIZE (%d), select "
                 "cannot watch it: closing", fd, peer, FD_SETSIZE);
            close(fd);
            continue;
        }
        conn_open(fd, peer);
    }
}

/* [S3] A new client: its conn, its bit in read_master. */
static void conn_open(int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("accept fd=%d: no memory, closing", fd);
        if (c != NULL)
            buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
        free(c);
        close(fd);
        return;
    }
    /* An urgent byte stays in line and is echoed like the rest; otherwise
     * it would sit in exceptfds unread, every turn: a spin. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%d)", fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    conns[fd] = c;
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    if (fd > max_fd)
        max_fd = fd;
    FD_SET(fd, &read_master);   /* Win32: FD_SET(c, &a) in the notes */
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);
}

/* exceptfds. On Windows it reports a failed connect() and out-of-band data;
 * on Linux only TCP urgent data: a pending error makes a socket *readable*
 * and recv() returns it. We still ask SO_ERROR, as the notes do. Returns
 * false when the client was closed. */
static bool on_exception(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        err = errno;
    if (err == 0) {
        log_trace("except fd=%d: urgent data, echoed in line", c->fd);
        return true;
    }
    log_event("except fd=%d: %s", c->fd, strerror(err));
    conn_close(c);
    return false;
}

/* [S4] select() said readable: one recv() will not block. Then send at
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
            break;  /* full: writefds tells us when there is room */
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

/* The master sets from c's state. Read while the backlog has room (the
 * backpressure: a full client is not read until it drains) and
 * the client may still send. Write only while output is pending: a socket
 * with room is always writable, so watching it idle would end every wait
 * at once. */
static void watch(struct conn *c)
{
    bool want_read = !c->peer_done && !buf_full(&c->echo);
    bool was_reading = FD_ISSET(c->fd, &read_master);

    if (!c->peer_done && want_read != was_reading)
        log_event("fd=%d backlog %s", c->fd,
                  want_read ? "drained: reading again" : "full: not reading");
    if (want_read)
        FD_SET(c->fd, &read_master);
    else
        FD_CLR(c->fd, &read_master);
    if (!buf_empty(&c->echo))
        FD_SET(c->fd, &write_master);
    else
        FD_CLR(c->fd, &write_master);
}

/* [S6] Out of the master sets first: a closed descriptor left in a set
 * makes select() fail with EBADF. (Win32: the notes save the SOCKET before
 * FD_CLR, which shifts fd_array; a bitmap moves nothing.) */
static void conn_close(struct conn *c)
{
    FD_CLR(c->fd, &read_master);
    FD_CLR(c->fd, &write_master);
    conns[c->fd] = NULL;
    idle_remove(&c->idle);
    while (max_fd >= 0 && conns[max_fd] == NULL)
        max_fd--;  /* nfds shrinks with the highest descriptor */
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
    for (int fd = max_fd; fd >= 0; fd--)
        if (conns[fd] != NULL)
            conn_close(conns[fd]);
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
 * for ever, when there is nothing to time. The notes wake every 3 s
 * whatever happens; a timeout computed from the next deadline lets an
 * idle server sleep, and still closes a client on time. */
static struct timespec *wait_timeout(struct timespec *timeout)
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
    *timeout = (struct timespec){ms / 1000, ms % 1000 * 1000000L};
    return timeout;
}
