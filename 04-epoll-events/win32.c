/* 04-epoll-events/win32.c - the event-select model in Winsock, the notes'
 * own API: the Win32 twin of server.c. An event object per socket, bound
 * to it once, then a wait for any of them to be signalled.
 *
 * The notes' WSAEventSelect model (事件选择). WSACreateEvent makes an event
 * object per socket; WSAEventSelect(s, ev, FD_READ|FD_WRITE|FD_CLOSE)
 * binds them (once: Winsock watches from then on and sets the event when
 * one of those network events happens); WSAWaitForMultipleEvents waits
 * for any event of an array and returns the LOWEST signalled index;
 * WSAEnumNetworkEvents says which FD_* happened and resets the event.
 * Linux's epoll keeps the same split (register once, wait for many) with
 * one set instead of an event per socket. Three things epoll does not
 * make us do, this file does:
 *   - groups of 64: one wait takes at most WSA_MAXIMUM_WAIT_EVENTS = 64
 *     handles, so clients are spread over groups and the loop waits on
 *     each group in turn, with a short timeout while more than one group
 *     is in use (the notes' 一组一组; see event_loop for the trade-off);
 *   - fairness: after the lowest signalled index, a zero-timeout wait on
 *     the events after it finds the others, so busy low indexes cannot
 *     starve high ones (the notes' 优化 2);
 *   - the re-enabling rules: an FD_* is reported once, and again only
 *     after the call that consumes it (recv for FD_READ, accept for
 *     FD_ACCEPT, a send that failed with WSAEWOULDBLOCK for FD_WRITE);
 *     FD_CLOSE comes once. That is edge-triggered already, which is why
 *     --edge has no meaning here and is refused.
 *
 *   [S1] setup_events, setup_stop, setup_listener: groups of 64 events,
 *        the stop event in every group, the listener's in group 0
 *   [S2] event_loop: WSAWaitForMultipleEvents on each group in turn;
 *        wait_group: the lowest signalled index, then the rest
 *   [S3] FD_ACCEPT: on_accept, conn_open: WSACreateEvent + WSAEventSelect
 *                                                  (Linux: EPOLL_CTL_ADD)
 *   [S4] FD_READ: on_readable recv()s, sends back  (Linux: EPOLLIN)
 *   [S5] FD_WRITE, after a send failed with WSAEWOULDBLOCK: on_writable
 *                                                  (Linux: EPOLLOUT)
 *   [S6] FD_CLOSE, errors: conn_close: closesocket, WSACloseEvent, out
 *        of its group                  (Linux: EPOLL_CTL_DEL, close)
 *   [S7] Ctrl-C: the console handler's thread sets the stop event
 *        (WSASetEvent), present in every group: on_stop; shutdown_all
 *   [S8] after every round, close_idle; each wait's timeout is at most
 *        the time left until the oldest client expires  (Linux: a timerfd)
 *
 * Linux (server.c): epoll_create1 is one set for every socket, with no
 * 64 limit, no groups and no timeout to share; epoll_wait hands out ready
 * sockets oldest first with their masks, where here the mask needs a
 * second call (WSAEnumNetworkEvents); SIGTERM is read from a signalfd,
 * where here a console handler thread sets an event by hand.
 *
 * Try:  make run-win32 M=04 ARGS="-v"   then: nc 127.0.0.1 9004
 *       make run-win32 M=04 ARGS="-vv"  every wait, event mask and byte count
 *       diff -u 04-epoll-events/server.c 04-epoll-events/win32.c
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#define EMFILE_PAUSE_MS 100     /* out of sockets: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */
/* One wait takes at most WSA_MAXIMUM_WAIT_EVENTS (64) handles; slot 0 of
 * every group is the stop event, so a group holds 63 sockets. */
#define GROUP_SLOTS (WSA_MAXIMUM_WAIT_EVENTS - 1)
#define MAX_GROUPS 64           /* -c at most 64 * 63 - 1 (the listener) */
/* With more than one group in use, a quiet round waits this long on each
 * group: an event in another group waits at most (groups in use) * this. */
#define GROUP_SLICE_MS 10
#define ACCEPT_RECHECK_MS 1000  /* accept() anyway, this often: see
                                   watch_listener */

/* One client. A SOCKET is a handle, not a small number: the conn knows
 * its group and its index there, where epoll hands back data.ptr. */
struct conn {
    SOCKET fd;
    WSAEVENT event;             /* its own event object (WSACreateEvent) */
    struct group *group;        /* the group its event waits in */
    DWORD slot;                 /* its index in group->events[] */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    bool reading;               /* the backlog has room: recv() on FD_READ */
    bool readable;              /* an FD_READ/FD_CLOSE not answered by recv() */
    bool fd_close_seen;         /* FD_CLOSE came (once): read until recv() = 0 */
    struct conn *prev, *next;   /* the open clients */
    struct idle_entry idle;     /* its place in idle_clients */
};

/* Up to 64 events for one WSAWaitForMultipleEvents, and whose they are. */
struct group {
    DWORD count;                /* events[0 .. count) are in use */
    WSAEVENT events[WSA_MAXIMUM_WAIT_EVENTS]; /* [0]: stop_event; group 0's
                                                 [1]: the listener's */
    struct conn *conns[WSA_MAXIMUM_WAIT_EVENTS]; /* NULL for those two */
};

static struct server_opts opts;
static int edge_triggered;      /* --edge: refused (no Win32 meaning) */
static struct stats stats;
static SOCKET listen_fd = INVALID_SOCKET;
static WSAEVENT listen_event = WSA_INVALID_EVENT; /* FD_ACCEPT */
static WSAEVENT stop_event = WSA_INVALID_EVENT;   /* set by Ctrl-C */
static struct group *groups;    /* group_count groups, enough for -c */
static int group_count;

static struct conn *clients;    /* every open client, for shutdown */
static bool listen_armed;       /* FD_ACCEPT will come: the last one was
                                   answered with accept() */
static long long accept_paused_until; /* EMFILE: clock_ms() to resume, or 0 */
static struct idle_list idle_clients; /* [S8] least recently active first */

static void setup_events(void);
static void setup_stop(void);
static SOCKET setup_listener(void);
static void event_loop(void);
static bool wait_group(struct group *g, DWORD timeout);
static bool on_event(struct conn *c);
static void on_accept(void);
static void conn_open(SOCKET fd, const char *peer);
static void on_hangup(struct conn *c, int err);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static void watch(struct conn *c);
static void conn_close(struct conn *c);
static void close_idle(void);
static void on_stop(void);
static void shutdown_all(void);
static bool group_add(struct conn *c);
static void group_remove(struct conn *c);
static void wake_loop(void *arg);
static void watch_listener(void);
static bool accepting(void);
static DWORD wait_timeout(bool busy, int waiting);

static const struct model_opt model_opts[] = {
    {.name = "edge", .kind = OPT_FLAG, .value = &edge_triggered,
     .help = "Linux only (EPOLLET): refused here, WSAEventSelect is "
             "edge-like already"},
};

static const struct model_info model = {
    .program = "04-epoll-events/win32.exe",
    .summary = "WSAEventSelect: one thread, an event per socket, "
               "WSAWaitForMultipleEvents on groups of 64",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = MAX_GROUPS * GROUP_SLOTS - 1,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    WSADATA wsa;
    int rc;

    opts_parse_or_exit(argc, argv, &model, &opts);
    /* --edge asks epoll for edge-triggered events. Winsock's FD_* events
     * are edge-like by design (reported once, re-enabled by the call that
     * consumes them) and there is no level-triggered mode to switch from,
     * so the option would change nothing: say so rather than ignore it. */
    if (edge_triggered) {
        fprintf(stderr, "%s: --edge has no Win32 meaning: WSAEventSelect "
                "events are edge-like already (each FD_* is re-enabled by "
                "the call that consumes it)\n", model.program);
        opts_usage(&model, stderr);
        return 2;
    }
    log_init("epoll", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);

    /* Every Winsock program starts here: load Winsock 2.2 (the notes'
     * first call). Linux has no such step: sockets are system calls.
     * No SIGPIPE to ignore either: a send to a reset peer fails with
     * WSAECONNRESET and nothing else happens. */
    if ((rc = WSAStartup(MAKEWORD(2, 2), &wsa)) != 0)
        die_code(rc, "WSAStartup");

    setup_events();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    closesocket(listen_fd);
    stats_print_summary(&stats);
    WSACleanup();
    return EXIT_SUCCESS;
}

/* [S1] The groups (Linux: setup_epoll, one set for every socket). A wait
 * takes at most 64 handles (WSA_MAXIMUM_WAIT_EVENTS; 65 fail with
 * WSA_INVALID_PARAMETER), so the events live in groups of 64, as many as
 * -c clients and the listener need. The notes' struct of two arrays of 64
 * (sockets, events), times 20 for more clients. */
static void setup_events(void)
{
    group_count = (opts.max_clients + 1 + GROUP_SLOTS - 1) / GROUP_SLOTS;
    groups = calloc((size_t)group_count, sizeof(*groups));
    if (groups == NULL)
        die_code(ERROR_NOT_ENOUGH_MEMORY, "calloc(%d groups)", group_count);
}

/* [S1] Ctrl-C runs a console control handler on a thread of its own
 * (common/sig_win32.c); it sets the stop flag, then calls wake_loop, which
 * sets stop_event by hand: WSASetEvent, the notes' way to wake a
 * WSAWaitForMultipleEvents. The event is manual-reset and nobody resets
 * it, so it stays signalled: it sits in slot 0 of every group, and every
 * group's wait returns at once from then on, whichever the loop is in.
 * (Linux: SIGINT/SIGTERM blocked and read from a signalfd in the set; an
 * eventfd written to would be the exact counterpart of WSASetEvent.) */
static void setup_stop(void)
{
    stop_event = WSACreateEvent();  /* manual-reset, not signalled */
    if (stop_event == WSA_INVALID_EVENT)
        die("WSACreateEvent(stop)");
    for (int i = 0; i < group_count; i++) {
        groups[i].events[0] = stop_event;
        groups[i].count = 1;
    }
    sig_on_stop(wake_loop, stop_event);
    if (sig_catch_stop() == -1)
        die("SetConsoleCtrlHandler");
}

/* [S1] socket/bind/listen, its event in group 0, then the one line on
 * stdout. Nonblocking: a client may reset between FD_ACCEPT and our
 * accept(); a blocking accept() would then wait for the next client.
 * WSAEventSelect makes the socket nonblocking by itself (server.c asks
 * SOCK_NONBLOCK), and accept() passes that on, with the selection. */
static SOCKET setup_listener(void)
{
    SOCKET fd = net_listen(opts.host, opts.port, 0);
    if (fd == INVALID_SOCKET)
        die("listen on %s port %d", opts.host, opts.port);
    listen_event = WSACreateEvent();
    if (listen_event == WSA_INVALID_EVENT)
        die("WSACreateEvent(listener)");
    /* Linux: epoll_ctl(ADD, listener, EPOLLIN) */
    if (WSAEventSelect(fd, listen_event, FD_ACCEPT) == SOCKET_ERROR)
        die("WSAEventSelect(listener, FD_ACCEPT)");
    groups[0].events[1] = listen_event;
    groups[0].conns[1] = NULL;
    groups[0].count = 2;
    listen_armed = true;
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] One turn: wait on each group in use, in order, and serve what it
 * signals. One group (up to 62 clients): the wait blocks, as epoll_wait
 * does. Several: a blocking wait on one group would not see the others
 * (the notes' WSA_INFINITE stalls every group behind a quiet one; their
 * "0 also works" spins at full CPU while all is quiet). So a quiet round
 * waits GROUP_SLICE_MS on each group, and after a round that found
 * events, 0 (poll every group, sleep nowhere) until a round finds none.
 * The cost: an event may wait (groups in use) * GROUP_SLICE_MS, and an
 * idle server wakes every slice. The notes' other way, a thread per
 * group each in a blocking wait, has no such delay, but needs locks
 * around accept, -c and the client list, and a way to wake a thread
 * whose group changed; this twin keeps server.c's single thread.
 * (Linux: one epoll_wait covers every socket: none of this.) */
static void event_loop(void)
{
    bool busy = false;  /* the last round found events */

    while (!sig_stop_requested()) {
        int waiting = 0;  /* groups in use: group 0, and any with clients */

        watch_listener();
        for (int i = 0; i < group_count; i++)
            if (i == 0 || groups[i].count > 1)
                waiting++;
        bool found = false;
        for (int i = 0; i < group_count && !sig_stop_requested(); i++)
            if (i == 0 || groups[i].count > 1)
                found |= wait_group(&groups[i], wait_timeout(busy, waiting));
        busy = found;
        close_idle();
    }
}

/* [S2a] One group: WSAWaitForMultipleEvents returns the LOWEST signalled
 * index, so handling only that one would serve a busy low index on every
 * call and starve the high ones. After it, the notes wait on each later
 * event alone with a zero timeout (优化 2); here one zero-timeout wait on
 * all the events after it returns the next signalled one: a call per
 * ready socket, not per socket. Events below it that fire meanwhile wait
 * for the next turn. Returns whether anything was signalled. */
static bool wait_group(struct group *g, DWORD timeout)
{
    DWORD first = 0;
    bool found = false;

    while (first < g->count) {
        /* fWaitAll FALSE: any one; fAlertable FALSE: no completion
         * routines (those are 06's). Linux: epoll_wait — but only the
         * ready ones come back, all at once, each with its mask. */
        DWORD rc = WSAWaitForMultipleEvents(g->count - first,
                                            &g->events[first], FALSE,
                                            timeout, FALSE);
        if (rc == WSA_WAIT_FAILED)
            die("WSAWaitForMultipleEvents");
        if (rc == WSA_WAIT_TIMEOUT)
            break;  /* nothing (more) signalled in this group */
        DWORD i = first + (rc - WSA_WAIT_EVENT_0);  /* index = rc - base */
        log_trace("WSAWaitForMultipleEvents: group %d index %lu of %lu",
                  (int)(g - groups), (unsigned long)i,
                  (unsigned long)g->count);
        found = true;
        timeout = 0;  /* the re-check: what is signalled now, no waiting */
        if (i == 0) {
            on_stop();
            break;
        }
        if (g->conns[i] == NULL)
            on_accept();  /* the listener's event */
        else if (!on_event(g->conns[i])) {
            first = i;  /* closed: the group's last event moved into slot i */
            continue;
        }
        first = i + 1;
    }
    return found;
}

/* One client's events. WSAEnumNetworkEvents fetches which FD_* happened
 * (and their error codes) and resets the event object: the second call
 * epoll spares us, as it delivers the mask with the event. Returns false
 * when the client was closed. */
static bool on_event(struct conn *c)
{
    WSANETWORKEVENTS ne;

    if (WSAEnumNetworkEvents(c->fd, c->event, &ne) == SOCKET_ERROR) {
        warn_errno("WSAEnumNetworkEvents(fd=%llu): closing",
                   (unsigned long long)c->fd);
        conn_close(c);
        return false;
    }
    long events = ne.lNetworkEvents;
    log_trace("event fd=%llu events=%#lx", (unsigned long long)c->fd,
              (unsigned long)events);
    /* An error comes per event bit (iErrorCode[FD_*_BIT]), not per socket
     * (Linux: EPOLLERR, then SO_ERROR). On Windows a reset is FD_CLOSE
     * with WSAECONNRESET or WSAECONNABORTED; Wine 8 reports it as a plain
     * FD_CLOSE, and recv() then returns 0: it reads as a FIN (README). */
    int err = (events & FD_CLOSE) ? ne.iErrorCode[FD_CLOSE_BIT] : 0;
    if (err == 0 && (events & FD_READ))
        err = ne.iErrorCode[FD_READ_BIT];
    if (err == 0 && (events & FD_WRITE))
        err = ne.iErrorCode[FD_WRITE_BIT];
    if (err != 0) {
        on_hangup(c, err);
        return false;
    }
    if (events & FD_CLOSE)
        c->fd_close_seen = true;  /* the FIN, after the last byte: once */
    if (events & (FD_READ | FD_CLOSE))  /* Linux: EPOLLIN */
        c->readable = true;  /* answered by recv() below, or owed */
    /* FD_WRITE first: room to send drains the backlog, so that a client
     * that was too full to read (the backpressure) is read again below.
     * FD_WRITE comes once after accept (nothing to send then) and then
     * only after a send failed with WSAEWOULDBLOCK. Linux: EPOLLOUT. */
    if ((events & FD_WRITE) && !buf_empty(&c->echo) && !on_writable(c))
        return false;
    if (c->readable)
        return on_readable(c);
    return true;
}

/* [S3] Accepts the clients waiting in the listen backlog, up to
 * ACCEPT_BATCH this turn and -c in all. FD_ACCEPT is re-enabled by
 * accept(): a listener we stop accepting on falls silent by itself, and
 * watch_listener calls us again when accepting is back. */
static void on_accept(void)
{
    WSANETWORKEVENTS ne;
    char why[300];

    /* Resets the listener's event, which is manual-reset: left set, every
     * wait of group 0 would return at once. */
    if (WSAEnumNetworkEvents(listen_fd, listen_event, &ne) == SOCKET_ERROR)
        die("WSAEnumNetworkEvents(listener)");
    log_trace("listener events=%#lx", (unsigned long)ne.lNetworkEvents);
    /* An FD_ACCEPT not answered by an accept() call is not reported again:
     * at -c, or paused, it stays unanswered until watch_listener. */
    listen_armed = accepting();
    for (int i = 0; i < ACCEPT_BATCH && accepting(); i++) {
        char peer[ADDR_TEXT_MAX];
        SOCKET fd = net_accept(listen_fd, 0, peer, sizeof(peer));
        int err = fd == INVALID_SOCKET ? WSAGetLastError() : 0;
        if (err == WSAEWOULDBLOCK)
            return;  /* nobody is waiting any more */
        if (err != 0 && net_accept_exhausted(err)) {
            /* WSAEMFILE/WSAENOBUFS: out of sockets or memory. Retrying at
             * once would fail again: a busy loop (NOTES §7.1). Stop
             * accepting until a client leaves, or for EMFILE_PAUSE_MS,
             * in case no client of ours frees one (wait_timeout). Whether
             * a failed accept() re-enables FD_ACCEPT or not, the next one
             * comes from watch_listener. */
            warn("accept (pausing %d ms): %s", EMFILE_PAUSE_MS,
                 err_describe(err, why, sizeof(why)));
            accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
            listen_armed = false;
            return;
        }
        if (err != 0 && (err == WSAEINTR || net_accept_transient(err)))
            continue;  /* one aborted connection: try the next */
        if (err != 0)
            die_code(err, "accept");  /* WSAENOTSOCK...: a bug */
        conn_open(fd, peer);
    }
}

/* [S3] A new client: its event, selected for FD_READ|FD_WRITE|FD_CLOSE,
 * in the first group with room (Linux: EPOLL_CTL_ADD, data.ptr = c). */
static void conn_open(SOCKET fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn("accept fd=%llu: no memory, closing", (unsigned long long)fd);
        goto fail;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%llu)",
                   (unsigned long long)fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    /* One event object per socket (the notes: release it, or the kernel
     * object leaks). Linux has nothing to create per client. */
    c->event = WSACreateEvent();
    if (c->event == WSA_INVALID_EVENT) {
        warn_errno("WSACreateEvent(fd=%llu): closing",
                   (unsigned long long)fd);
        goto fail;
    }
    /* accept() hands the new socket the listener's selection: FD_ACCEPT on
     * the listener's event. Select it again, with its own event and mask:
     * that replaces the inherited one. */
    if (WSAEventSelect(fd, c->event, FD_READ | FD_WRITE | FD_CLOSE) ==
        SOCKET_ERROR) {
        warn_errno("WSAEventSelect(fd=%llu): closing", (unsigned long long)fd);
        goto fail;
    }
    if (!group_add(c)) {  /* cannot happen: groups are sized for -c */
        warn("fd=%llu: no free slot in any group, closing",
             (unsigned long long)fd);
        goto fail;
    }
    c->reading = true;
    c->next = clients;
    if (clients != NULL)
        clients->prev = c;
    clients = c;
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    int now = stats_client_opened(&stats);
    log_event("accept fd=%llu peer=%s clients=%d", (unsigned long long)fd,
              c->peer, now);
    return;
fail:
    if (c != NULL && c->event != WSA_INVALID_EVENT)
        WSACloseEvent(c->event);
    if (c != NULL)
        buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
    free(c);
    closesocket(fd);
}

/* FD_CLOSE (or FD_READ/FD_WRITE) with an error code: a reset
 * (WSAECONNRESET), an abort (WSAECONNABORTED), the network gone. Nothing
 * is left to echo: a reset discards unread data, and nothing we send can
 * arrive. (Linux: EPOLLERR with SO_ERROR, or EPOLLHUP.) */
static void on_hangup(struct conn *c, int err)
{
    char why[300];

    log_event("fd=%llu FD_CLOSE: %s", (unsigned long long)c->fd,
              err_describe(err, why, sizeof(why)));
    conn_close(c);
}

/* [S4] FD_READ: one recv(), sent back at once, as the notes do. recv()
 * re-enables FD_READ: if bytes are left, Winsock records FD_READ again and
 * sets the event, so the rest comes next turn (like level-triggered
 * epoll). FD_CLOSE comes once, after the last byte: then read until
 * recv() says 0, as Windows asks. Returns false when the client was
 * closed. */
static bool on_readable(struct conn *c)
{
    int budget = c->fd_close_seen ? INT_MAX : 1;
    char why[300];

    while (!c->peer_done && !buf_full(&c->echo)) {
        if (budget-- == 0)
            break;  /* re-enabled: FD_READ comes again while bytes are left */
        ssize_t n = buf_fill(&c->echo, c->fd);
        int err = n == SOCKET_ERROR ? WSAGetLastError() : 0;
        if (err == WSAEWOULDBLOCK)
            break;  /* a stale FD_READ: nothing lost, and re-enabled */
        if (err != 0) {
            log_event("recv fd=%llu: %s", (unsigned long long)c->fd,
                      err_describe(err, why, sizeof(why)));
            conn_close(c);
            return false;
        }
        if (n == 0) {
            c->peer_done = true;  /* FIN: echo what is left, then close */
            log_event("fd=%llu half-closed, %zu bytes left to echo",
                      (unsigned long long)c->fd, buf_len(&c->echo));
        } else {
            idle_touch(&idle_clients, &c->idle, clock_ms());  /* [S8] */
            log_trace("recv fd=%llu %zd bytes", (unsigned long long)c->fd, n);
        }
        if (!on_writable(c))
            return false;
    }
    /* A full backlog leaves the FD_READ (or FD_CLOSE) we were told of
     * unanswered, and Winsock will not repeat it before a recv(): owe one
     * for when the backlog drains (on_event, after FD_WRITE). */
    c->readable = !c->peer_done && buf_full(&c->echo);
    return true;
}

/* [S5] Sends what is pending until it is all gone or the socket's send
 * buffer is full. Returns false when the client was closed. */
static bool on_writable(struct conn *c)
{
    char why[300];

    while (!buf_empty(&c->echo)) {
        ssize_t sent = buf_drain(&c->echo, c->fd);
        int err = sent == SOCKET_ERROR ? WSAGetLastError() : 0;
        if (err == WSAEWOULDBLOCK)
            break;  /* full: this failure arms FD_WRITE for when there is room */
        if (err != 0) {
            log_event("send fd=%llu: %s", (unsigned long long)c->fd,
                      err_describe(err, why, sizeof(why)));
            conn_close(c);
            return false;
        }
        stats_echoed(&stats, (unsigned long long)sent);
        idle_touch(&idle_clients, &c->idle, clock_ms());  /* [S8] it reads */
        log_trace("send fd=%llu %zd bytes", (unsigned long long)c->fd, sent);
    }
    if (c->peer_done && buf_empty(&c->echo)) {
        conn_close(c);  /* half-close: everything echoed */
        return false;
    }
    watch(c);
    return true;
}

/* c's reading state from its backlog. Read while the backlog has room
 * (backpressure: a full client is not read until it drains) and the
 * client may still send. server.c changes the epoll interest
 * (EPOLL_CTL_MOD); here the selection never changes, FD_READ|FD_WRITE|
 * FD_CLOSE from conn_open to conn_close, because the re-enabling rules do
 * that work: an FD_READ we do not answer with recv() is not reported
 * again, so not reading is enough to stop, and one recv() (on_event, once
 * FD_WRITE drained the backlog) starts again. FD_WRITE needs no switching
 * off while idle: it only fires after a send failed with WSAEWOULDBLOCK,
 * where epoll's level-triggered EPOLLOUT would fire on every turn.
 * (Calling WSAEventSelect again would also work on Windows, which records
 * an event already pending at once; Wine does not re-report an event
 * already reported, so the twin does not rely on it.) */
static void watch(struct conn *c)
{
    bool want = !c->peer_done && !buf_full(&c->echo);

    if (!c->peer_done && want != c->reading)
        log_event("fd=%llu backlog %s", (unsigned long long)c->fd,
                  want ? "drained: reading again" : "full: not reading");
    c->reading = want;
}

/* [S6] closesocket() cancels the socket's event selection; the event
 * object is ours to close (the notes: WSACloseEvent, or the kernel object
 * leaks). Out of its group first: the group's last event takes its slot,
 * and wait_group looks at that slot again. (Linux: EPOLL_CTL_DEL, close.)
 * Freed at once: no batch holds its address, as epoll's does in
 * server.c, so there is no graveyard. */
static void conn_close(struct conn *c)
{
    group_remove(c);
    if (closesocket(c->fd) == SOCKET_ERROR)
        warn_errno("closesocket(fd=%llu)", (unsigned long long)c->fd);
    if (!WSACloseEvent(c->event))
        warn_errno("WSACloseEvent(fd=%llu)", (unsigned long long)c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%llu peer=%s clients=%d", (unsigned long long)c->fd,
              c->peer, now);
    accept_paused_until = 0;  /* a socket and a slot are free */
    idle_remove(&c->idle);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
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
        log_info("idle fd=%llu peer=%s: closed after %d s",
                 (unsigned long long)c->fd, c->peer, opts.idle_timeout);
        stats_closed_idle(&stats);
        conn_close(c);
    }
}

/* [S7] The stop event (slot 0 of every group) is signalled: wake_loop set
 * it from the console handler's thread, after the stop flag. It stays set,
 * so the rest of this round returns at once; the loop then ends. */
static void on_stop(void)
{
    log_trace("stop event signalled");
    sig_request_stop();  /* set already by the handler: the event says so */
}

/* [S7] Close every client (an echo still unsent is dropped), then free. */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    while (clients != NULL)
        conn_close(clients);
    if (!WSACloseEvent(listen_event))
        warn_errno("WSACloseEvent(listener)");
    if (!WSACloseEvent(stop_event))
        warn_errno("WSACloseEvent(stop)");
    free(groups);
}

/* c's event into the first group with room: earlier groups fill first,
 * so few groups are in use and the rounds stay short. */
static bool group_add(struct conn *c)
{
    for (int i = 0; i < group_count; i++) {
        struct group *g = &groups[i];
        if (g->count == WSA_MAXIMUM_WAIT_EVENTS)
            continue;
        g->events[g->count] = c->event;
        g->conns[g->count] = c;
        c->group = g;
        c->slot = g->count++;
        return true;
    }
    return false;
}

/* c's event out of its group: the group's last event takes its slot (the
 * notes do the same: "the last one is copied in, no shifting"). */
static void group_remove(struct conn *c)
{
    struct group *g = c->group;
    DWORD last = --g->count;

    if (c->slot != last) {
        g->events[c->slot] = g->events[last];
        g->conns[c->slot] = g->conns[last];
        g->conns[c->slot]->slot = c->slot;
    }
    g->events[last] = NULL;
    g->conns[last] = NULL;
}

/* The console handler's wake-up, on its own thread (Windows runs a
 * handler on a new thread, not inside a signal, so it may call anything):
 * WSASetEvent wakes whichever group's wait the loop is in. */
static void wake_loop(void *arg)
{
    log_event("console control event: shutting down");
    if (!WSASetEvent((WSAEVENT)arg))
        warn_errno("WSASetEvent(stop)");
}

/* Accepting again after -c or an EMFILE pause (Linux: EPOLL_CTL_MOD of
 * the listener, EPOLLIN or 0). The FD_ACCEPT that came meanwhile was left
 * unanswered, and Winsock will not report it again before an accept()
 * call: make one now, which takes whoever waits and re-enables FD_ACCEPT.
 * (WSAEventSelect(listener, ev, 0) and then FD_ACCEPT again would record a
 * pending FD_ACCEPT at once on Windows, but not under Wine: see watch.) */
static void watch_listener(void)
{
    static long long last_try;  /* clock_ms() of the last accept() round */
    long long now = clock_ms();

    /* And once a second whatever FD_ACCEPT says: Wine 8.0 can lose it for
     * good (NOTES §7.13; a failed accept() does not re-enable it there), and
     * an accept() that succeeds re-arms it. On Windows this finds nobody
     * waiting, since FD_ACCEPT would have said so. */
    if (accepting() && (!listen_armed || now - last_try >= ACCEPT_RECHECK_MS)) {
        last_try = now;
        on_accept();
    }
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

/* [S8] One group's wait, in ms: with one group in use, ACCEPT_RECHECK_MS
 * (Linux waits for ever; see watch_listener); with several, 0 after a
 * busy round and GROUP_SLICE_MS after a quiet one (event_loop); never past
 * the end of an EMFILE pause (the retry timer), nor past the oldest
 * client's idle deadline: the notes' dwTimeout, WSA_WAIT_TIMEOUT then
 * being the idle timer. On Windows a timeout is rounded up to the timer tick,
 * 15.6 ms by default, so a slice there is at least that. */
static DWORD wait_timeout(bool busy, int waiting)
{
    long long ms = waiting == 1 ? ACCEPT_RECHECK_MS : busy ? 0 : GROUP_SLICE_MS;
    long long idle_left = idle_next_ms(&idle_clients, clock_ms());

    if (idle_left != -1 && idle_left < ms)
        ms = idle_left;
    if (accept_paused_until != 0) {
        long long left = accept_paused_until - clock_ms();
        if (left < 0)
            left = 0;
        if (left < ms)
            ms = left;
    }
    return (DWORD)ms;
}
