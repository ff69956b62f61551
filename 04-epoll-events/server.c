/* 04-epoll-events/server.c - the epoll model: register each socket once
 * with the kernel, then wait for the list of those that are ready.
 *
 * The notes' WSAEventSelect model, Linux style. select and poll hand the
 * kernel every socket every turn and scan them all; epoll keeps the
 * interest list in the kernel (epoll_ctl, once per change) and epoll_wait
 * returns only ready sockets, each with the pointer registered for it
 * (data.ptr: its struct conn). A turn costs what is ready, not what is
 * connected. Level-triggered by default: a socket is reported as long as
 * it is ready, as with poll. --edge asks for edge-triggered: reported when
 * it becomes ready, so we must read until EAGAIN; a read budget per turn
 * and a ready list keep one busy client from starving the others.
 *
 *   [S1] setup_epoll, setup_stop, setup_listener: the set, with a
 *        signalfd and the listener in it
 *   [S2] event_loop: epoll_wait() returns a batch of events
 *   [S3] the listener's event: on_accept, EPOLL_CTL_ADD  (Win32: FD_ACCEPT)
 *   [S4] EPOLLIN: on_readable recv()s, sends back        (Win32: FD_READ)
 *   [S5] EPOLLOUT, armed only while output is pending    (Win32: FD_WRITE)
 *   [S6] EOF, EPOLLERR/EPOLLHUP: conn_close: EPOLL_CTL_DEL, close; the
 *        struct is freed after the batch                 (Win32: FD_CLOSE)
 *   [S7] SIGTERM arrives as data on the signalfd: on_stop; shutdown_all
 *   [S8] the timerfd in the set fires at the oldest client's idle deadline:
 *        on_idle_timer, close_idle                 (Win32: the wait's timeout)
 *
 * Win32: WSACreateEvent + WSAEventSelect(s, ev, FD_READ|FD_CLOSE) is
 * epoll_ctl(ADD); WSAWaitForMultipleEvents is epoll_wait; the event mask
 * WSAEnumNetworkEvents fetches comes with each epoll event; WSASetEvent
 * (waking the wait by hand) is a write to an eventfd in the set. Linux
 * differs: one set holds any number of sockets (no WSA_MAXIMUM_WAIT_EVENTS
 * = 64, no groups of 64 on more threads); one wait set instead of an event
 * object per socket; and epoll hands out ready sockets from a queue, oldest
 * first, where WSAWaitForMultipleEvents returns the lowest signalled index,
 * so the notes' loop in index order lets busy low indexes starve the rest.
 *
 * Try:  ./server -v            then: nc 127.0.0.1 9004 (in two terminals)
 *       ./server --edge -vv    edge-triggered, every event and byte count
 * gdb:  make gdb M=04   (walkthrough.gdb: break on_accept, on_event,
 *       on_readable, on_writable, conn_close, on_stop; print/x events)
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
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

#define DEFAULT_PORT 9004
#define DEFAULT_MAX_CLIENTS 1000
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */
#define MAX_EVENTS 64           /* per epoll_wait: a batch size, no limit */
#define EDGE_READ_BUDGET 16     /* --edge: recv()s per client per turn */

/* One client. epoll hands its address back with each event (data.ptr). */
struct conn {
    int fd;
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    uint32_t armed;             /* the events epoll watches for it now */
    bool readable;              /* --edge: told EPOLLIN, no EAGAIN since */
    bool queued;                /* on the ready list */
    bool dead;                  /* closed: this batch's later events are stale */
    struct conn *next_ready;    /* the ready list */
    struct conn *prev, *next;   /* the open clients, then the graveyard */
    struct idle_entry idle;     /* its place in idle_clients */
};

static struct server_opts opts;
static int edge_triggered;      /* --edge */
static struct stats stats;
static int listen_fd = -1;
static int signal_fd = -1;      /* SIGINT/SIGTERM, read as data */
static int epoll_fd = -1;       /* the set; its interest list is in-kernel */
static int timer_fd = -1;       /* [S8] the idle timer, in the set */
static bool timer_armed;        /* set for the oldest client's deadline */

static struct conn *clients;    /* every open client, for shutdown */
/* --edge: clients whose read budget ran out before EAGAIN. No new edge
 * comes for the bytes they still hold: we remember them ourselves. */
static struct conn *ready_head, *ready_tail;
/* Closed during this batch. A later event of the same batch may still
 * carry their address, so they are freed only once the batch is done. */
static struct conn *graveyard;
static uint32_t listen_armed;   /* EPOLLIN while accepting, else 0 */
static long long accept_paused_until; /* EMFILE: clock_ms() to resume, or 0 */
static struct idle_list idle_clients; /* [S8] least recently active first */

static void setup_epoll(void);
static void setup_stop(void);
static int setup_listener(void);
static void event_loop(void);
static bool on_event(struct conn *c, uint32_t events);
static void on_accept(void);
static void conn_open(int fd, const char *peer);
static void on_hangup(struct conn *c, uint32_t events);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static bool watch(struct conn *c);
static void conn_close(struct conn *c);
static void on_idle_timer(void);
static void close_idle(void);
static void on_stop(void);
static void shutdown_all(void);
static void ready_push(struct conn *c);
static void run_ready_list(void);
static void free_graveyard(void);
static void watch_listener(void);
static void arm_idle_timer(void);
static bool accepting(void);
static int wait_timeout(void);

static const struct model_opt model_opts[] = {
    {.name = "edge", .kind = OPT_FLAG, .value = &edge_triggered,
     .help = "edge-triggered (EPOLLET), read budget per turn; default: level"},
};

static const struct model_info model = {
    .program = "04-epoll-events/server",
    .summary = "epoll: one thread, sockets registered once, data.ptr per "
               "client, --edge for edge-triggered",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = 100000,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("epoll", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);

    /* send() to a client that reset the connection must return EPIPE, not
     * kill us with SIGPIPE (we also pass MSG_NOSIGNAL; this covers all). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    setup_epoll();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] The set: one for every socket, and a timerfd for the idle timer.
 * A timer that is a descriptor waits in the same set as the sockets, so
 * epoll_wait needs no timeout of its own: the kernel's timer makes the
 * timerfd readable at the deadline, and the loop sees one more event. */
static void setup_epoll(void)
{
    /* Win32: WSACreateEvent, but once for every socket, not once each */
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd == -1)
        die("epoll_create1");
    /* [S8] Win32: CreateWaitableTimer, a timer that is a waitable handle */
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd == -1)
        die("timerfd_create");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &timer_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, timer_fd, &ev) == -1)
        die("epoll_ctl(ADD, timerfd)");
}

/* [S1] SIGINT/SIGTERM, read as data: blocked, so never delivered the usual
 * way, and a signalfd in the set becomes readable when one is pending.
 * No handler, no flag to test before the wait, so no race with it either.
 * Win32: WSASetEvent wakes a WSAWaitForMultipleEvents by hand; here that
 * would be an eventfd in the set, written to. A signalfd is the same idea
 * for signals. Level-triggered: a signal is read once, whatever the mode. */
static void setup_stop(void)
{
    sigset_t stop;
    int rc;

    if ((rc = sig_block_stop(NULL)) != 0)
        die_code(rc, "pthread_sigmask");
    sig_stop_set(&stop);
    signal_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd == -1)
        die("signalfd");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &signal_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &ev) == -1)
        die("epoll_ctl(ADD, signalfd)");
}

/* [S1] socket/bind/listen, into the set, then the one line on stdout
 * (last: a test may count our descriptors as soon as it reads it).
 * Nonblocking: a client may reset between epoll's EPOLLIN and our
 * accept(); a blocking accept() would then wait for the next client. */
static int setup_listener(void)
{
    int fd = net_listen(opts.host, opts.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    /* Win32: WSAEventSelect(listen, event, FD_ACCEPT). Level-triggered
     * even with --edge: accept() is bounded by -c and ACCEPT_BATCH. */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) == -1)
        die("epoll_ctl(ADD, listener)");
    listen_armed = EPOLLIN;
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] One turn: wait for a batch of events and handle each, then serve
 * the ready list (--edge), then free what this batch closed. */
static void event_loop(void)
{
    struct epoll_event events[MAX_EVENTS];

    while (!sig_stop_requested()) {
        watch_listener();
        /* Win32: WSAWaitForMultipleEvents — but only ready ones return */
        int n = epoll_wait(epoll_fd, events, MAX_EVENTS, wait_timeout());
        if (n == -1 && errno == EINTR)
            continue;  /* EINTR: stopped and resumed (gdb, SIGCONT) */
        if (n == -1)
            die("epoll_wait");
        log_trace("epoll_wait: %d events", n);
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;  /* what we registered */
            if (ptr == &listen_fd)
                on_accept();
            else if (ptr == &signal_fd)
                on_stop();
            else if (ptr == &timer_fd)
                on_idle_timer();
            else
                on_event(ptr, events[i].events);
        }
        run_ready_list();
        free_graveyard();  /* no event of this batch is left to use them */
        arm_idle_timer();
    }
}

/* One client's events: a hangup, input, room to send. events is what
 * WSAEnumNetworkEvents fetches with a second call on Windows; epoll
 * delivers it with the event. Returns false when the client was closed. */
static bool on_event(struct conn *c, uint32_t events)
{
    if (c->dead)
        return false;  /* closed earlier in this batch: stale, not freed */
    log_trace("event fd=%d events=%#x", c->fd, events);
    if (events & (EPOLLERR | EPOLLHUP)) {
        on_hangup(c, events);
        return false;
    }
    if (events & EPOLLIN) {                   /* Win32: FD_READ */
        c->readable = true;
        if (edge_triggered)
            ready_push(c);  /* read in run_ready_list, a budget at a time */
        else if (!on_readable(c))
            return false;
    }
    if ((events & EPOLLOUT) && !buf_empty(&c->echo))  /* Win32: FD_WRITE */
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

/* [S3] A new client: its conn, registered with data.ptr = the conn. */
static void conn_open(int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("accept fd=%d: no memory, closing", fd);
        goto fail;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%d)", fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->armed = EPOLLIN | (edge_triggered ? EPOLLET : 0);
    struct epoll_event ev = {.events = c->armed, .data.ptr = c};
    /* Win32: WSACreateEvent + WSAEventSelect(c, ev, FD_READ | FD_CLOSE) */
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) == -1) {
        warn_errno("epoll_ctl(ADD, fd=%d): closing", fd);
        goto fail;
    }
    c->next = clients;
    if (clients != NULL)
        clients->prev = c;
    clients = c;
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);
    return;
fail:
    if (c != NULL)
        buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
    free(c);
    close(fd);
}

/* EPOLLERR, EPOLLHUP: reported whether asked or not, and neither leaves
 * anything to echo. EPOLLERR: the connection failed (SO_ERROR says why; a
 * reset discards unread data). EPOLLHUP: both directions are shut, so
 * nothing we send can arrive (a client's FIN alone is EPOLLIN and
 * recv() == 0). (Win32: FD_CLOSE with iErrorCode[FD_CLOSE_BIT] set.) */
static void on_hangup(struct conn *c, uint32_t events)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (events & EPOLLERR) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        log_event("fd=%d EPOLLERR: %s", c->fd, strerror(err));
    } else {
        log_event("fd=%d EPOLLHUP: connection gone", c->fd);
    }
    conn_close(c);
}

/* [S4] Reads while there is data and room, each read sent back at once.
 * Level-triggered: one recv() per event; epoll reports the rest next turn.
 * --edge: until EAGAIN, but at most EDGE_READ_BUDGET recv()s this turn
 * (the caller queues c again if data may be left). Returns false when the
 * client was closed. */
static bool on_readable(struct conn *c)
{
    int budget = edge_triggered ? EDGE_READ_BUDGET : 1;

    while (!c->peer_done && !buf_full(&c->echo)) {
        if (budget-- == 0)
            return true;  /* level: epoll reports the rest next turn;
                             --edge: c->readable stays set, c is queued */
        ssize_t n = buf_fill(&c->echo, c->fd);
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;  /* drained: the next edge will tell */
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
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
        if (!on_writable(c))
            return false;
    }
    c->readable = false;  /* EAGAIN, FIN, or a full backlog (see watch) */
    return true;
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
            break;  /* full: EPOLLOUT tells us when there is room */
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
    return watch(c);
}

/* c's interest from its state; EPOLL_CTL_MOD only when it changes (Win32:
 * WSAEventSelect again, with the new FD_* mask). EPOLLIN while the backlog
 * has room (backpressure: a full client is not read until it drains) and
 * the client may still send; EPOLLOUT
 * only while output is pending (with room a socket is always writable).
 *
 * --edge, the lost-edge trap: bytes that arrived while EPOLLIN was off
 * raised their edge then; none will come again. EPOLL_CTL_MOD re-checks
 * the socket and queues an event if it is ready now, which saves them.
 * Leaving EPOLLIN on while full and just not reading would lose them: a
 * client that has sent all and waits for its echo would wait forever.
 * Returns false when c was closed. */
static bool watch(struct conn *c)
{
    uint32_t want = edge_triggered ? EPOLLET : 0;

    if (!c->peer_done && !buf_full(&c->echo))
        want |= EPOLLIN;
    if (!buf_empty(&c->echo))
        want |= EPOLLOUT;
    if (want == c->armed)
        return true;
    if (!c->peer_done && (want & EPOLLIN) != (c->armed & EPOLLIN))
        log_event("fd=%d backlog %s", c->fd, (want & EPOLLIN)
                  ? "drained: reading again" : "full: not reading");
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
        warn_errno("epoll_ctl(MOD, fd=%d): closing", c->fd);
        conn_close(c);
        return false;
    }
    c->armed = want;
    return true;
}

/* [S6] EPOLL_CTL_DEL before close(): close() takes a descriptor out of the
 * set only once no other reference to its socket is left (a dup(), a
 * fork()); till then epoll would report a descriptor we no longer have.
 * (Win32: WSAEventSelect(s, ev, 0), WSACloseEvent, closesocket.) The conn
 * is not freed yet: the ready list may still hold it, and an event further
 * down this batch would carry its address if handling one client ever
 * closed another (an idle timeout would). It is marked dead, put in the
 * graveyard, and freed once the batch is done. */
static void conn_close(struct conn *c)
{
    if (epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL) == -1)
        warn_errno("epoll_ctl(DEL, fd=%d)", c->fd);
    if (close(c->fd) == -1)
        warn_errno("close(fd=%d)", c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    accept_paused_until = 0;  /* a descriptor and a slot are free */
    idle_remove(&c->idle);
    c->dead = true;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = graveyard;
    graveyard = c;
}

/* [S8] The timerfd fired: the oldest client's deadline has come (or, if
 * it was touched since, the deadline it had then). Read the expiry count
 * (a timerfd stays readable until read), then close whoever has expired;
 * the loop re-arms the timer for the new oldest. */
static void on_idle_timer(void)
{
    uint64_t expirations;

    if (read(timer_fd, &expirations, sizeof(expirations)) == -1 &&
        errno != EAGAIN && errno != EINTR)
        die("read(timerfd)");  /* EAGAIN: already read; EINTR: next turn */
    timer_armed = false;
    close_idle();
}

/* Closes the clients that have been idle --idle-timeout seconds:
 * nothing received, and none of their echo taken. idle_clients is in
 * order of last activity, so only its head can have expired: this looks
 * at the expired ones and one more, not at every client (idle.h). A
 * client closed here may have an event further down this batch: conn_close
 * leaves it in the graveyard, marked dead, until the batch is done. */
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

/* [S7] SIGINT/SIGTERM, read as data: the loop ends after this batch. */
static void on_stop(void)
{
    struct signalfd_siginfo si;
    ssize_t n = read(signal_fd, &si, sizeof(si));

    if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return;  /* nothing pending after all, or read next turn */
    if (n != (ssize_t)sizeof(si))
        die("read(signalfd)");
    log_event("signal %u from pid %u: shutting down", si.ssi_signo,
              si.ssi_pid);
    sig_request_stop();
}

/* [S7] Close every client (an echo still unsent is dropped), then free. */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    while (clients != NULL)
        conn_close(clients);
    ready_head = ready_tail = NULL;
    free_graveyard();
    close(signal_fd);
    close(timer_fd);
    close(epoll_fd);
}

/* --edge: c goes to the back of the ready list (once). */
static void ready_push(struct conn *c)
{
    if (c->queued)
        return;
    c->queued = true;
    c->next_ready = NULL;
    if (ready_tail != NULL)
        ready_tail->next_ready = c;
    else
        ready_head = c;
    ready_tail = c;
}

/* --edge: one budget of reads for each client on the ready list, in order.
 * A client with data left after its budget goes to the back for the next
 * turn, so everyone else is served first; meanwhile epoll_wait does not
 * sleep (wait_timeout) but still collects new events. */
static void run_ready_list(void)
{
    struct conn *c = ready_head;

    ready_head = ready_tail = NULL;
    while (c != NULL) {
        struct conn *next = c->next_ready;
        c->queued = false;
        if (!c->dead && on_readable(c) && c->readable)
            ready_push(c);
        c = next;
    }
}

static void free_graveyard(void)
{
    while (graveyard != NULL) {
        struct conn *c = graveyard;
        graveyard = c->next;
        buf_free(&c->echo);
        free(c);
    }
}

/* The listener is watched only while we accept (Win32: WSAEventSelect
 * with FD_ACCEPT, or with 0 to stop). */
static void watch_listener(void)
{
    uint32_t want = accepting() ? EPOLLIN : 0;

    if (want == listen_armed)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = &listen_fd};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &ev) == -1)
        die("epoll_ctl(MOD, listener)");
    listen_armed = want;
}

/* [S8] Arms the timerfd for the oldest client's deadline, unless it is
 * armed already. While armed, the oldest deadline can only have moved
 * later (a touch, a close, a newcomer at the tail), so the timer fires on
 * time or early; early, close_idle finds nobody and this re-arms it. One
 * timerfd_settime per expiry, not one per message. Absolute time on
 * CLOCK_MONOTONIC, the clock clock_ms() reads. (Win32: SetWaitableTimer.) */
static void arm_idle_timer(void)
{
    if (timer_armed)
        return;
    long long now = clock_ms();
    long long left = idle_next_ms(&idle_clients, now);  /* -1: nobody */
    if (left == -1)
        return;
    long long at = now + left;
    struct itimerspec when = {
        .it_value = {at / 1000, at % 1000 * 1000000L}};  /* one-shot */
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &when, NULL) == -1)
        die("timerfd_settime");
    timer_armed = true;
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

/* The wait's timeout in ms: 0 while the ready list holds clients (serve
 * them, but collect new events first), the end of an EMFILE pause (the
 * retry timer), or -1: wait for an event. */
static int wait_timeout(void)
{
    if (ready_head != NULL)
        return 0;
    if (accept_paused_until == 0)
        return -1;
    long long ms = accept_paused_until - clock_ms();
    return ms > 0 ? (int)ms : 0;
}
