/* 06-aio-overlapped/win32.c - overlapped I/O: post a recv or a send, go on,
 * and be told when it is done. The Win32 twin of server.c, in the notes'
 * own API (重叠I/O).
 *
 * Each client has one request in flight at a time, described by a
 * WSAOVERLAPPED (server.c: a struct aiocb): a WSARecv into its echo
 * buffer, then a WSASend of what came, then the next WSARecv. Both return
 * at once (WSA_IO_PENDING); the kernel does the I/O meanwhile, and its end
 * is reported one of two ways:
 *   --notify wait      the OVERLAPPED's hEvent is signalled: waiter threads
 *                      sleep in WSAWaitForMultipleEvents(), 64 events at
 *                      most each, then ask WSAGetOverlappedResult()
 *   --notify callback  Winsock calls on_callback(), the completion routine,
 *                      as an APC on the thread that posted the request
 *                      (main), when that thread waits alertably
 * The main thread accepts, as in server.c, but as the notes' overlapped
 * server does: one AcceptEx posted at a time, whose hEvent is one of the
 * two events of main's wait (Linux: poll() and accept()).
 *
 *   [S1] setup_overlapped, setup_stop, setup_listener: the waiter threads,
 *        one per group of 63 clients (wait), a wake-up event for main,
 *        the listener and its AcceptEx event
 *   [S2] event_loop: the main thread waits for its two events (alertably
 *        in callback mode: the completion routines run there);
 *        worker_main: a waiter sleeps over its group's hEvents (wait)
 *   [S3] accept_post, on_accept: an AcceptEx completed; conn_open: the
 *        client's first recv                            (Linux: aio_read)
 *   [S4] on_complete: WSAGetOverlappedResult (Linux: aio_error, aio_return),
 *        then on_recv_complete posts the send of what came
 *   [S5] on_send_complete: short? send the rest : post the next recv
 *   [S6] 0 bytes or an error: conn_close, with nothing in flight
 *   [S7] Ctrl-C: shutdown_all: CancelIoEx every socket, wait for every
 *        completion (WSA_OPERATION_ABORTED), stop the waiters, free
 *   [S8] main's wait times out at the oldest client's idle deadline:
 *        close_idle shuts it down and cancels its request, and the
 *        completion closes it  (Linux: aio_suspend's timeout in wait mode,
 *        poll()'s in callback mode)
 *
 * Here the model is what the notes describe: the kernel completes the
 * request, and no thread is blocked on an idle client. Linux (server.c,
 * NOTES §7.2) has glibc run each request on a helper thread doing a
 * blocking read() or write(), a thread per idle client. What costs here
 * is the wait: 64 events per WSAWaitForMultipleEvents call, hence groups
 * (wait mode); and a completion routine runs only on the thread that
 * posted its request, only in that thread's alertable waits (callback).
 *
 * Try:  make run-win32 M=06 ARGS="-v"       then: nc 127.0.0.1 9006
 *       make run-win32 M=06 ARGS="--notify callback -vv"
 *       diff -u 06-aio-overlapped/server.c 06-aio-overlapped/win32.c
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h>
#include <mswsock.h>  /* AcceptEx (the notes: Mswsock.lib, -lmswsock here) */

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

#define DEFAULT_PORT 9006
#define DEFAULT_MAX_CLIENTS 1000
#define MAX_CLIENTS_LIMIT 10000  /* wait mode: 159 waiter threads */
#define EMFILE_PAUSE_MS 100     /* out of sockets: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */
/* AcceptEx writes each address into this much room: at least 16 bytes
 * more than the largest address (the notes: sizeof(sockaddr_in) + 16). */
#define ACCEPT_ADDR_LEN (sizeof(struct sockaddr_storage) + 16)
/* A waiter's events: its own wake-up, then one hEvent per client. */
#define GROUP_CLIENTS (WSA_MAXIMUM_WAIT_EVENTS - 1)
#define SHUTDOWN_WAIT_MS 5000   /* for the last completions at Ctrl-C */

enum notify { NOTIFY_WAIT, NOTIFY_CALLBACK };
enum op_kind { OP_NONE, OP_RECV, OP_SEND };

struct group;

/* One client: the notes' per-socket data, with its per-I/O data (op). */
struct conn {
    SOCKET fd;                  /* overlapped I/O ignores blocking mode */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    WSAOVERLAPPED op;           /* Linux: the struct aiocb of its request */
    WSAEVENT event;             /* wait mode: op.hEvent; callback: none */
    DWORD flags;                /* WSARecv's in/out flags: Winsock's until
                                   the request completes, like op */
    enum op_kind in_flight;     /* which request Winsock has now, or OP_NONE */
    CRITICAL_SECTION lock;      /* held by whoever posts or completes */
    struct group *group;        /* wait mode: whose waiter watches it */
    int slot;                   /* and its place in that group */
    struct conn *prev, *next;   /* the open clients */
    struct idle_entry idle;     /* its place in idle_clients (idle_lock) */
};

/* --notify wait: up to GROUP_CLIENTS clients and the thread that waits for
 * their hEvents. The notes' jicun[20] of 64 sockets and events, with their
 * advice: one thread per group. */
struct group {
    HANDLE thread;
    WSAEVENT wake;              /* WSASetEvent: the list must change */
    struct conn *slots[GROUP_CLIENTS];
    int count;                  /* clients in slots[] */
};

static struct server_opts opts;
static int notify = NOTIFY_WAIT;  /* --notify */
static struct stats stats;
static SOCKET listen_fd = INVALID_SOCKET;
/* The one AcceptEx in flight (the notes' hanshu1): the socket it accepts
 * into (INVALID_SOCKET: none posted), its OVERLAPPED, whose hEvent is
 * accept_event, and the room for the two addresses it writes. Winsock's,
 * like a client's op and buffer, until it completes. */
static int listen_family;       /* the accept socket's must match */
static SOCKET accept_fd = INVALID_SOCKET;
static WSAOVERLAPPED accept_op;
static WSAEVENT accept_event = WSA_INVALID_EVENT;
static char accept_buf[2 * ACCEPT_ADDR_LEN];
/* Wakes the main thread: the Ctrl-C handler, or a client leaving (a slot,
 * a socket free again). Linux: an eventfd, polled beside the listener. */
static WSAEVENT main_wake = WSA_INVALID_EVENT;

/* --notify wait: the waiter threads, one per group (-c / 63 of them). */
static struct group *groups;
static int group_count;
/* Ctrl-C: conn_post posts nothing more; a waiter whose group is empty
 * leaves. */
static atomic_bool stopping;

/* Every client, for the waiters' groups and for shutdown. conn_close
 * signals main_wake when a client leaves. */
static struct conn *clients;
static CRITICAL_SECTION clients_lock;
/* EMFILE: clock_ms() to resume, or 0. Atomic: conn_close ends the pause
 * on the thread that completes, while main reads it. */
static atomic_llong accept_paused_until;
/* [S8] Touched by whichever thread completes a request (a waiter, or main
 * in callback mode), added to by main: a lock of its own, taken last
 * (inside c->lock) and never with another taken under it. Main keeps time
 * in both modes (server.c: its one waiter does in wait mode). */
static struct idle_list idle_clients; /* [S8] least recently active first */
static CRITICAL_SECTION idle_lock;

static void setup_overlapped(void);
static void setup_stop(void);
static SOCKET setup_listener(void);
static void event_loop(void);
static DWORD WINAPI worker_main(LPVOID arg);
static DWORD collect_in_flight(struct group *g, WSAEVENT *events,
                               struct conn **list);
static void wake_waiter(struct group *g);
static void group_join(struct conn *c);
static void group_leave(struct conn *c);
static void accept_post(void);
static void on_accept(void);
static bool accept_failed(int err, const char *call);
static void conn_open(SOCKET fd, const char *peer);
static bool conn_post(struct conn *c, enum op_kind op);
static bool on_complete(struct conn *c);
static void CALLBACK on_callback(DWORD error, DWORD bytes,
                                 LPWSAOVERLAPPED ov, DWORD flags);
static bool on_recv_complete(struct conn *c, int error, size_t bytes);
static bool on_send_complete(struct conn *c, int error, size_t bytes);
static void conn_done(struct conn *c, const char *what, int error);
static void conn_close(struct conn *c);
static void close_idle(void);
static void idle_touch_locked(struct conn *c);
static long long idle_wait_ms(void);
static void shutdown_all(void);
static void stop_waiters(void);
static void wake_main(void *arg);
static bool accepting(void);
static DWORD wait_timeout(void);

static const struct model_opt model_opts[] = {
    {.name = "notify",
     .kind = OPT_CHOICE,
     .arg_name = "wait|callback",
     .choices = "wait|callback",
     .help = "wait: WSAWaitForMultipleEvents in waiter threads, 63 "
             "clients each (default); callback: completion routines",
     .value = &notify},
};

static const struct model_info model = {
    .program = "06-aio-overlapped/win32.exe",
    .summary = "Winsock overlapped I/O: a WSAOVERLAPPED per request, "
               "completion by event or completion routine",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = MAX_CLIENTS_LIMIT,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    WSADATA wsa;
    int rc;

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("aio", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);

    /* Every Winsock program starts here: load Winsock 2.2 (the notes'
     * first call). Linux has no such step, and ignores SIGPIPE here
     * instead: Winsock has no SIGPIPE (a send to a reset peer fails). */
    if ((rc = WSAStartup(MAKEWORD(2, 2), &wsa)) != 0)
        die_code(rc, "WSAStartup");

    setup_overlapped();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    closesocket(listen_fd);
    WSACloseEvent(accept_event);
    stats_print_summary(&stats);
    WSACleanup();
    return EXIT_SUCCESS;
}

/* [S1] No pool to size: the kernel completes an overlapped request
 * itself, with no thread blocked on it (server.c: aio_init, a glibc helper
 * thread per client). What is bounded is the wait: WSAWaitForMultipleEvents
 * takes at most WSA_MAXIMUM_WAIT_EVENTS (64) events; 65 fail with
 * WSA_INVALID_PARAMETER (NOTES §7.13). The many-idle scenario holds 900
 * clients, so wait mode splits them into groups of GROUP_CLIENTS (63),
 * each with a waiter thread whose 64th event is its own wake-up: -c 1000
 * makes 16 groups, all started here. Callback mode has no such limit: a
 * completion routine needs no event, and main waits for two. */
static void setup_overlapped(void)
{
    InitializeCriticalSection(&clients_lock);  /* cannot fail (Vista on) */
    InitializeCriticalSection(&idle_lock);
    if (notify != NOTIFY_WAIT) {
        log_event("completion routines: on the main thread, in its "
                  "alertable waits (-c %d)", opts.max_clients);
        return;
    }
    group_count = (opts.max_clients + GROUP_CLIENTS - 1) / GROUP_CLIENTS;
    groups = calloc(group_count, sizeof(*groups));
    if (groups == NULL)
        die_code(ERROR_NOT_ENOUGH_MEMORY, "calloc(%d groups)", group_count);
    for (int i = 0; i < group_count; i++) {
        groups[i].wake = WSACreateEvent();  /* manual-reset, not signalled */
        if (groups[i].wake == WSA_INVALID_EVENT)
            die("WSACreateEvent");
        /* Linux: pthread_create. A DWORD WINAPI start routine, and a
         * HANDLE to wait for and close. */
        groups[i].thread = CreateThread(NULL, 0, worker_main, &groups[i], 0,
                                        NULL);
        if (groups[i].thread == NULL)
            die("CreateThread(waiter %d)", i);
    }
    log_event("WSAWaitForMultipleEvents: %d waiter threads, %d clients each "
              "(-c %d)", group_count, GROUP_CLIENTS, opts.max_clients);
}

/* [S1] Ctrl-C (Wine turns SIGINT into it) runs the console control
 * handler on a thread Windows starts for it (common/sig_win32.c): it sets
 * the stop flag, then calls wake_main there, which signals main_wake, one
 * of the two events of main's wait. Linux needs a signal handler writing
 * an eventfd; this is an ordinary thread, so WSASetEvent will do. */
static void setup_stop(void)
{
    main_wake = WSACreateEvent();  /* manual-reset: main resets it */
    if (main_wake == WSA_INVALID_EVENT)
        die("WSACreateEvent");
    sig_on_stop(wake_main, NULL);
    if (sig_catch_stop() == -1)
        die("SetConsoleCtrlHandler");
}

/* [S1] socket/bind/listen, then the one line on stdout (last: a test may
 * count our sockets as soon as it reads it; under Wine it counts
 * wineserver's descriptors, one per socket, NOTES §7.13). So the first
 * AcceptEx, whose socket stays with us, is posted before it. The listener
 * stays blocking: it is never accept()ed on, only handed to AcceptEx
 * (server.c's is nonblocking for its accept() loop). Its family is the
 * one AcceptEx's sockets must have; accept_event is the hEvent of every
 * AcceptEx. */
static SOCKET setup_listener(void)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    SOCKET fd = net_listen(opts.host, opts.port, 0);
    if (fd == INVALID_SOCKET)
        die("listen on %s port %d", opts.host, opts.port);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == SOCKET_ERROR)
        die("getsockname");
    listen_family = ss.ss_family;
    accept_event = WSACreateEvent();
    if (accept_event == WSA_INVALID_EVENT)
        die("WSACreateEvent");
    listen_fd = fd;  /* accept_post's, before main stores it too */
    accept_post();
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] The main thread accepts, and in callback mode runs every
 * completion routine. It waits for main_wake always, and for the AcceptEx
 * it has posted while accepting(): Ctrl-C, or a client leaving (a slot
 * free, an EMFILE pause over). Linux: poll() over the eventfd and the
 * listener. At -c or in a pause no AcceptEx is posted, and newcomers wait
 * in the listen backlog. In callback mode the wait is alertable
 * (fAlertable = TRUE): it runs the completion routines queued to this
 * thread, then returns WSA_WAIT_IO_COMPLETION instead of an event. In
 * both modes it is the one thread whose wait keeps time [S8]. */
static void event_loop(void)
{
    BOOL alertable = notify == NOTIFY_CALLBACK;

    while (!sig_stop_requested()) {
        if (accept_fd == INVALID_SOCKET && accepting())
            accept_post();
        WSAEVENT events[2] = {main_wake, accept_event};
        DWORD ready = WSAWaitForMultipleEvents(
            accept_fd != INVALID_SOCKET ? 2 : 1, events, FALSE,
            wait_timeout(), alertable);
        if (ready == WSA_WAIT_FAILED)
            die("WSAWaitForMultipleEvents");
        close_idle();  /* [S8] whatever ended the wait */
        if (ready == WSA_WAIT_IO_COMPLETION)
            continue;  /* completion routines ran (callback mode) */
        if (ready == WSA_WAIT_TIMEOUT)
            continue;  /* an EMFILE pause or an idle deadline */
        /* Manual-reset events: signalled until reset (an eventfd until
         * read). Reset before the result is read, never after: see
         * worker_main. */
        if (!WSAResetEvent(events[ready - WSA_WAIT_EVENT_0]))
            die("WSAResetEvent");
        if (ready == WSA_WAIT_EVENT_0 + 1)
            on_accept();
    }
}

/* [S2a] --notify wait: a waiter, the notes' worker thread, one per group.
 * server.c's waiter calls aio_suspend() over every request, with no limit
 * on their number. Here WSAWaitForMultipleEvents(n, events, FALSE,
 * WSA_INFINITE, FALSE) takes at most 64: the group's wake event, then the
 * hEvent of each of its clients with a request in flight. It returns the
 * lowest signalled index only; serving just that one lets low indexes win
 * every time and high ones starve (the notes' pitfall). So every request
 * from there on is asked (WSA_IO_INCOMPLETE: still running). The list is
 * rebuilt and scanned every turn, as server.c's is, but it holds at most
 * 63 clients: the group, not -c, bounds the cost of a turn. [S8] No
 * timeout: server.c's one waiter gives aio_suspend the oldest deadline,
 * but here -c / 63 waiters would all wake at that one deadline (16 at
 * -c 1000) and find nobody of theirs; main's wait keeps time once. */
static DWORD WINAPI worker_main(LPVOID arg)
{
    struct group *g = arg;
    WSAEVENT events[WSA_MAXIMUM_WAIT_EVENTS];
    struct conn *list[WSA_MAXIMUM_WAIT_EVENTS];

    for (;;) {
        DWORD n = collect_in_flight(g, events, list);
        DWORD ready =
            WSAWaitForMultipleEvents(n, events, FALSE, WSA_INFINITE, FALSE);
        if (ready == WSA_WAIT_FAILED)
            die("WSAWaitForMultipleEvents(%lu events)", n);
        DWORD first = ready - WSA_WAIT_EVENT_0;
        log_trace("WSAWaitForMultipleEvents: event %lu of %lu", first, n);
        /* Reset the event that woke us before reading its result. A
         * request whose result was taken early, found by the scan below
         * before its event was set, sets it late, while the next request
         * is in flight; left set, it would end every wait at once: a spin
         * until that request completes. Resetting first is safe: Windows
         * (and Wine) write the result before they set the event. */
        if (!WSAResetEvent(events[first]))
            die("WSAResetEvent");
        for (DWORD i = first > 0 ? first : 1; i < n; i++)
            on_complete(list[i]);  /* may close list[i]: not used again */
        if (first != 0)
            continue;
        /* The wake event: a new client (the next list has it), or stop. */
        EnterCriticalSection(&clients_lock);
        bool done = atomic_load(&stopping) && g->count == 0;
        LeaveCriticalSection(&clients_lock);
        if (done)
            break;  /* every client of the group is gone: shutdown_all */
    }
    return 0;
}

/* The waiter's list: its wake event first, then the hEvent of each client
 * of its group with a request in flight. A client between requests has
 * none (in conn_open, or being closed). */
static DWORD collect_in_flight(struct group *g, WSAEVENT *events,
                               struct conn **list)
{
    DWORD n = 0;

    events[n] = g->wake;
    list[n++] = NULL;
    EnterCriticalSection(&clients_lock);
    for (int i = 0; i < GROUP_CLIENTS; i++) {
        struct conn *c = g->slots[i];
        if (c == NULL)
            continue;
        EnterCriticalSection(&c->lock);
        if (c->in_flight != OP_NONE) {
            events[n] = c->event;
            list[n++] = c;
        }
        LeaveCriticalSection(&c->lock);
    }
    LeaveCriticalSection(&clients_lock);
    return n;  /* at most 64: GROUP_CLIENTS clients and the wake event */
}

/* WSASetEvent on the waiter's extra event: its list must change. */
static void wake_waiter(struct group *g)
{
    if (!WSASetEvent(g->wake))
        die("WSASetEvent");
}

/* Into the first group with room (the notes: for (m = 0; m < 20; m++) if
 * (jicun[m].shuzi < 64) ...). Below -c there always is one. With
 * clients_lock held. */
static void group_join(struct conn *c)
{
    struct group *g = groups;

    while (g->count == GROUP_CLIENTS)
        g++;
    for (c->slot = 0; g->slots[c->slot] != NULL; c->slot++)
        ;
    g->slots[c->slot] = c;
    g->count++;
    c->group = g;
}

/* Out of its group: the waiter leaves it out of its next list. With
 * clients_lock held. */
static void group_leave(struct conn *c)
{
    c->group->slots[c->slot] = NULL;
    c->group->count--;
}

/* [S3] Posts the one AcceptEx (the notes' hanshu1): Winsock accepts the
 * next client into accept_fd, a socket made here first (accept() makes it
 * itself), and signals accept_event. No receive buffer (the notes'
 * dwReceiveDataLength 0): with one, AcceptEx would wait for the client's
 * first bytes too, and a client that connects and says nothing would hold
 * up every accept. Returns with an AcceptEx in flight, or with none and a
 * pause begun (out of sockets). An AcceptEx that completes at once (a
 * client was waiting) is reported through accept_event all the same. Why
 * not server.c's loop of accept() calls, on FD_ACCEPT (WSAEventSelect)?
 * Under Wine that event was lost at times, for good (README, "Where Wine
 * differs"). */
static void accept_post(void)
{
    DWORD bytes;  /* set only if it completes at once: not used */

    do {
        accept_fd = socket(listen_family, SOCK_STREAM, IPPROTO_TCP);
        if (accept_fd == INVALID_SOCKET) {
            accept_failed(WSAGetLastError(), "socket");
            return;
        }
        memset(&accept_op, 0, sizeof(accept_op));
        accept_op.hEvent = accept_event;
        if (!WSAResetEvent(accept_event))
            die("WSAResetEvent");
        if (AcceptEx(listen_fd, accept_fd, accept_buf, 0, ACCEPT_ADDR_LEN,
                     ACCEPT_ADDR_LEN, &bytes, &accept_op) ||
            WSAGetLastError() == ERROR_IO_PENDING)
            return;  /* in flight: accept_event says when it is done */
        int err = WSAGetLastError();  /* failed at once: no completion */
        closesocket(accept_fd);
        accept_fd = INVALID_SOCKET;
        if (accept_failed(err, "AcceptEx"))
            return;
    } while (true);  /* a client reset in the backlog: post again */
}

/* [S3] The AcceptEx has completed: the new client, then the next AcceptEx,
 * which completes at once while clients wait in the listen backlog. Up
 * to ACCEPT_BATCH this turn and -c in all. */
static void on_accept(void)
{
    for (int i = 0; i < ACCEPT_BATCH && accept_fd != INVALID_SOCKET; i++) {
        char peer[ADDR_TEXT_MAX];
        struct sockaddr *local, *remote;
        int local_len, remote_len;
        DWORD bytes, flags;

        int err = WSAGetOverlappedResult(listen_fd, &accept_op, &bytes, FALSE,
                                         &flags) ? 0 : WSAGetLastError();
        if (err == WSA_IO_INCOMPLETE)
            return;  /* nobody is waiting any more */
        SOCKET fd = accept_fd;
        accept_fd = INVALID_SOCKET;  /* op and buffer are ours again */
        if (err != 0) {
            closesocket(fd);
            if (accept_failed(err, "AcceptEx"))
                return;  /* a pause: nothing posted */
        } else {
            /* The accepted socket takes the listener's properties only
             * now (accept() does it itself): getpeername, shutdown... */
            if (setsockopt(fd, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
                           (const char *)&listen_fd,
                           sizeof(listen_fd)) == SOCKET_ERROR)
                warn_errno("setsockopt(SO_UPDATE_ACCEPT_CONTEXT, fd=%llu)",
                           (unsigned long long)fd);
            /* The two addresses AcceptEx wrote into accept_buf. */
            GetAcceptExSockaddrs(accept_buf, 0, ACCEPT_ADDR_LEN,
                                 ACCEPT_ADDR_LEN, &local, &local_len, &remote,
                                 &remote_len);
            if (addr_format(remote, remote_len, peer, sizeof(peer)) == -1)
                snprintf(peer, sizeof(peer), "?");
            conn_open(fd, peer);
        }
        if (accepting())
            accept_post();
    }
}

/* A socket() or AcceptEx that failed: server.c's accept() errors. Returns
 * true when accepting stops for now (a pause), false to post again. */
static bool accept_failed(int err, const char *call)
{
    char why[300];

    if (net_accept_exhausted(err)) {
        /* WSAEMFILE/WSAENOBUFS: out of sockets or memory. Posting again
         * would fail again at once: a busy loop (NOTES §7.1). Post nothing
         * until a client leaves, or for EMFILE_PAUSE_MS, in case no client
         * of ours frees one. */
        warn("%s (pausing %d ms): %s", call, EMFILE_PAUSE_MS,
             err_describe(err, why, sizeof(why)));
        accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
        return true;
    }
    /* A client that reset in the backlog: ERROR_NETNAME_DELETED (64). */
    if (err == ERROR_NETNAME_DELETED || net_accept_transient(err))
        return false;  /* one aborted connection: try the next */
    die_code(err, "%s", call);  /* WSAENOTSOCK...: a bug */
}

/* [S3] A new client: into the list (and a group), then its first recv is
 * posted. In wait mode, from WSARecv() on, the completion may be handled
 * on its waiter at any moment: c->lock keeps that thread waiting until we
 * are done with c. */
static void conn_open(SOCKET fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));
    struct group *g = NULL;

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn("accept fd=%llu: no memory, closing", (unsigned long long)fd);
        goto fail;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%llu)",
                   (unsigned long long)fd);
    if (notify == NOTIFY_WAIT &&
        (c->event = WSACreateEvent()) == WSA_INVALID_EVENT) {
        warn_errno("WSACreateEvent(fd=%llu): closing", (unsigned long long)fd);
        goto fail;
    }
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    InitializeCriticalSection(&c->lock);
    EnterCriticalSection(&clients_lock);
    c->next = clients;
    if (clients != NULL)
        clients->prev = c;
    clients = c;
    if (notify == NOTIFY_WAIT)
        group_join(c);
    g = c->group;  /* c may be gone once its recv is posted */
    LeaveCriticalSection(&clients_lock);
    EnterCriticalSection(&idle_lock);
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    LeaveCriticalSection(&idle_lock);
    int now = stats_client_opened(&stats);
    log_event("accept fd=%llu peer=%s clients=%d", (unsigned long long)fd,
              c->peer, now);

    EnterCriticalSection(&c->lock);
    bool posted = conn_post(c, OP_RECV);
    LeaveCriticalSection(&c->lock);
    if (!posted)
        conn_close(c);  /* nothing in flight: no completion will come */
    else if (notify == NOTIFY_WAIT)
        wake_waiter(g);  /* its list must now include this recv */
    return;
fail:
    if (c != NULL && c->event != WSA_INVALID_EVENT)
        WSACloseEvent(c->event);
    if (c != NULL)
        buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
    free(c);
    closesocket(fd);
}

/* Posts c's next request, which returns at once: WSA_IO_PENDING, or 0 if
 * it completed already, whose completion is reported all the same (event
 * or routine). A recv into the free part of the echo buffer, or a send of
 * the bytes it holds. From here until its completion the buffer and the
 * OVERLAPPED are Winsock's: neither may be touched, moved or freed (NOTES
 * §7.3). One at a time: Windows would take a send beside a pending recv
 * (glibc would run it after the recv: NOTES §7.2), but one request and
 * one buffer per client is the backpressure, as in server.c. With c->lock
 * held. Returns false when nothing is in flight: Winsock failed it at once
 * (a reset client: no completion follows), or shutdown_all has begun. */
static bool conn_post(struct conn *c, enum op_kind op)
{
    WSABUF wsabuf;  /* Winsock copies it: it may live on the stack */
    int rc;

    if (atomic_load(&stopping)) {  /* a cancel is not sticky: see S7 */
        log_trace("post fd=%llu: shutting down", (unsigned long long)c->fd);
        return false;
    }
    memset(&c->op, 0, sizeof(c->op));
    /* How its end is reported: wait mode, the hEvent is signalled (reset
     * it first: WSACreateEvent makes manual-reset events, the notes'
     * WSAResetEvent); the waiter knows c from its list. Callback mode,
     * on_callback is queued to this thread, hEvent is not used, and the
     * routine finds c from &c->op (Linux: sival_ptr = c). */
    c->op.hEvent = c->event;
    if (c->event != WSA_INVALID_EVENT && !WSAResetEvent(c->event))
        die("WSAResetEvent");
    LPWSAOVERLAPPED_COMPLETION_ROUTINE routine =
        notify == NOTIFY_CALLBACK ? on_callback : NULL;
    if (op == OP_RECV) {  /* Linux: aio_read(&c->op) */
        wsabuf.buf = buf_tail(&c->echo);
        wsabuf.len = (ULONG)buf_space(&c->echo);
        c->flags = 0;
        rc = WSARecv(c->fd, &wsabuf, 1, NULL, &c->flags, &c->op, routine);
    } else {  /* Linux: aio_write(&c->op) */
        wsabuf.buf = buf_head(&c->echo);
        wsabuf.len = (ULONG)buf_len(&c->echo);
        rc = WSASend(c->fd, &wsabuf, 1, NULL, 0, &c->op, routine);
    }
    int err = rc == SOCKET_ERROR ? WSAGetLastError() : 0;
    if (err != 0 && err != WSA_IO_PENDING) {
        conn_done(c, op == OP_RECV ? "recv" : "send", err);
        return false;
    }
    c->in_flight = op;
    log_trace("post %s fd=%llu %lu bytes", op == OP_RECV ? "recv" : "send",
              (unsigned long long)c->fd, wsabuf.len);
    return true;
}

/* [S4] Has c's request finished, and how? A waiter asks every request
 * from the signalled one on; a completion routine, the one that finished.
 * Under c->lock: in wait mode a completion handled on a waiter waits
 * until main is done with c (conn_open, shutdown_all). Returns false when
 * c was closed (its request ended it). */
static bool on_complete(struct conn *c)
{
    DWORD bytes = 0, flags = 0;
    bool alive = true;

    EnterCriticalSection(&c->lock);
    enum op_kind op = c->in_flight;
    /* fWait = FALSE: fails with WSA_IO_INCOMPLETE while the request runs
     * (the notes' Internal == 0x103, STATUS_PENDING; Linux: aio_error()
     * == EINPROGRESS). Done: the byte count and the error at once (Linux:
     * aio_return). It frees nothing, unlike aio_return, but from here the
     * OVERLAPPED and the buffer are ours again. */
    BOOL ok = op != OP_NONE &&
              WSAGetOverlappedResult(c->fd, &c->op, &bytes, FALSE, &flags);
    int error = ok ? 0 : op == OP_NONE ? WSA_IO_INCOMPLETE : WSAGetLastError();
    if (error != WSA_IO_INCOMPLETE) {
        c->in_flight = OP_NONE;
        alive = op == OP_RECV ? on_recv_complete(c, error, bytes)
                              : on_send_complete(c, error, bytes);
    }
    LeaveCriticalSection(&c->lock);
    if (!alive)
        conn_close(c);  /* nothing in flight: no completion will follow */
    return alive;
}

/* --notify callback: the completion routine (the notes' huidiao). Winsock
 * queues it as an APC to the thread that posted the request, and runs it
 * only when that thread waits alertably: SleepEx, or
 * WSAWaitForMultipleEvents(..., TRUE), which then returns
 * WSA_WAIT_IO_COMPLETION. Here that thread is always main: conn_open
 * posts the first recv, and each routine posts the next request from
 * inside itself, on main. So routines never run beside each other or
 * beside main's own code: one thread, at moments it chooses. server.c's
 * SIGEV_THREAD callbacks run at once, on new threads, concurrently: hence
 * its callbacks_running count, which is not needed here. The routine is
 * given the error and the byte count (the notes use them); on_complete
 * asks WSAGetOverlappedResult, which gives the same, so that both modes
 * take a result in one place. CONTAINING_RECORD leads from the OVERLAPPED
 * back to its conn (the notes: lpOverlapped - &chongdie[0], an index). */
static void CALLBACK on_callback(DWORD error, DWORD bytes,
                                 LPWSAOVERLAPPED ov, DWORD flags)
{
    struct conn *c = CONTAINING_RECORD(ov, struct conn, op);

    (void)flags;
    log_trace("completion routine fd=%llu: error %lu, %lu bytes",
              (unsigned long long)c->fd, error, bytes);
    on_complete(c);
}

/* [S4] A recv finished: its bytes are in the echo buffer. 0 bytes: the
 * client shut down its side, and all it sent was echoed (a recv is posted
 * only with an empty buffer). Else post the send of those bytes. Returns
 * false when the client is finished (an error, or 0 bytes). */
static bool on_recv_complete(struct conn *c, int error, size_t bytes)
{
    if (error != 0 || bytes == 0) {
        conn_done(c, "recv", error);
        return false;
    }
    log_trace("recv fd=%llu %zu bytes", (unsigned long long)c->fd, bytes);
    idle_touch_locked(c);  /* [S8] active */
    buf_commit(&c->echo, bytes);
    return conn_post(c, OP_SEND);
}

/* [S5] A send finished: its bytes went back. A short send is normal: post
 * the rest. All of it sent: post the next recv. Waiting for this send
 * before receiving again is the backpressure: at most one buffer per
 * client is held. Returns false when the client is finished. */
static bool on_send_complete(struct conn *c, int error, size_t bytes)
{
    if (error != 0) {
        conn_done(c, "send", error);
        return false;
    }
    log_trace("send fd=%llu %zu bytes", (unsigned long long)c->fd, bytes);
    stats_echoed(&stats, bytes);
    if (bytes > 0)
        idle_touch_locked(c);  /* [S8] it reads */
    buf_consume(&c->echo, bytes);
    return conn_post(c, buf_empty(&c->echo) ? OP_RECV : OP_SEND);
}

/* [S6] This completion ends the client's chain of requests: 0 bytes (the
 * client left, or shut down its side, and all it sent was echoed) or an
 * error. Its caller closes it, once c->lock is released. */
static void conn_done(struct conn *c, const char *what, int error)
{
    char why[300];

    if (error == 0)
        log_event("%s fd=%llu: the client left", what,
                  (unsigned long long)c->fd);
    else  /* WSAECONNRESET: the notes' 10054; WSA_OPERATION_ABORTED: S7 */
        log_event("%s fd=%llu: %s", what, (unsigned long long)c->fd,
                  err_describe(error, why, sizeof(why)));
}

/* Only with nothing in flight: Winsock no longer holds c's buffer or
 * OVERLAPPED. Out of the list and its group first, so that shutdown_all
 * never cancels on a closed (or reused) handle. Then main is woken: it
 * may have stopped posting AcceptEx, at -c or in an EMFILE pause, or be
 * waiting in shutdown_all for the last client. */
static void conn_close(struct conn *c)
{
    EnterCriticalSection(&clients_lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (notify == NOTIFY_WAIT)
        group_leave(c);
    LeaveCriticalSection(&clients_lock);
    /* Out of the idle list before closesocket(): close_idle, holding
     * idle_lock, may be about to cancel on this handle. */
    EnterCriticalSection(&idle_lock);
    idle_remove(&c->idle);
    LeaveCriticalSection(&idle_lock);

    if (closesocket(c->fd) == SOCKET_ERROR)  /* Linux: close */
        warn_errno("closesocket(fd=%llu)", (unsigned long long)c->fd);
    if (c->event != WSA_INVALID_EVENT && !WSACloseEvent(c->event))
        warn_errno("WSACloseEvent(fd=%llu)", (unsigned long long)c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%llu peer=%s clients=%d", (unsigned long long)c->fd,
              c->peer, now);
    accept_paused_until = 0;  /* a socket and a slot are free */
    if (!WSASetEvent(main_wake))  /* Linux: write(eventfd) */
        warn_errno("WSASetEvent");
    DeleteCriticalSection(&c->lock);
    buf_free(&c->echo);
    free(c);
}

/* [S8] On the main thread, after every wait (server.c: on the thread that
 * keeps time, its waiter in wait mode): the clients idle
 * --idle-timeout seconds. Their request is in flight and only its
 * completion may close the client: shutdown(SD_BOTH) makes every later
 * request fail at once (WSAESHUTDOWN), and CancelIoEx ends the one in
 * flight (WSA_OPERATION_ABORTED); its completion closes the client as
 * usual. Both, because neither alone is enough: a cancel is not sticky (a
 * completion being handled right now may post the next request), and
 * shutdown() does not end a request already running. Out of the list
 * here, so the loop moves on (a late touch does not put it back);
 * conn_close takes it out under idle_lock before closesocket(), so the
 * handle is still this client's while we hold the lock. Linux: shutdown(2)
 * alone, which ends a helper thread's read() too. */
static void close_idle(void)
{
    long long now = clock_ms();
    struct conn *c;

    EnterCriticalSection(&idle_lock);
    while ((c = idle_expired(&idle_clients, now)) != NULL) {
        idle_remove(&c->idle);
        log_info("idle fd=%llu peer=%s: closed after %d s",
                 (unsigned long long)c->fd, c->peer, opts.idle_timeout);
        stats_closed_idle(&stats);
        shutdown(c->fd, SD_BOTH);  /* WSAENOTCONN after a reset: fine */
        if (!CancelIoEx((HANDLE)c->fd, NULL) &&
            GetLastError() != ERROR_NOT_FOUND)  /* nothing in flight */
            warn_errno("CancelIoEx(fd=%llu)", (unsigned long long)c->fd);
    }
    LeaveCriticalSection(&idle_lock);
}

/* [S8] Bytes moved on c: it becomes the newest (the callers hold c->lock;
 * idle_lock comes last). */
static void idle_touch_locked(struct conn *c)
{
    EnterCriticalSection(&idle_lock);
    idle_touch(&idle_clients, &c->idle, clock_ms());
    LeaveCriticalSection(&idle_lock);
}

/* [S8] ms until the oldest client expires (0: it has), or -1: nobody can
 * (no clients, or --idle-timeout 0). A look at the list's head: no scan. */
static long long idle_wait_ms(void)
{
    EnterCriticalSection(&idle_lock);
    long long ms = idle_next_ms(&idle_clients, clock_ms());
    LeaveCriticalSection(&idle_lock);
    return ms;
}

/* [S7] A request in flight must complete before its OVERLAPPED and buffer
 * are freed: the kernel writes into them until then. closesocket() would
 * end it too, but would free the handle that WSAGetOverlappedResult still
 * takes. So CancelIoEx: every request on the socket completes at once
 * with WSA_OPERATION_ABORTED (ERROR_OPERATION_ABORTED, 995), and that
 * completion closes its client as usual (Microsoft: a socket whose
 * requests were cancelled is not to be used again, only closed). Not
 * CancelIo: it cancels only the calling thread's requests, and in wait
 * mode the waiters posted most of them. Linux: aio_cancel answers
 * AIO_NOTCANCELED for a socket read, and shutdown(2) ends it instead
 * (NOTES §7.3). Unlike shutdown(2), a cancel is not sticky: a request
 * posted after it would run on. So stopping is set first, and the cancel
 * is made under c->lock, as every post is: a request is either posted
 * before (and cancelled) or refused. Then we wait for every completion;
 * in callback mode the routines run on main, in this wait, so it is
 * alertable. Then the waiters may go. */
static void shutdown_all(void)
{
    long long deadline = clock_ms() + SHUTDOWN_WAIT_MS;
    BOOL alertable = notify == NOTIFY_CALLBACK;
    bool empty;

    log_event("shutdown: closing %d clients", stats_current(&stats));
    /* The AcceptEx in flight first, by the same rule: it may write into
     * accept_buf and accept_op until it completes (aborted, or with a
     * client, closed unserved). accept_event says when. */
    if (accept_fd != INVALID_SOCKET) {
        if (!CancelIoEx((HANDLE)listen_fd, &accept_op) &&
            GetLastError() != ERROR_NOT_FOUND)
            warn_errno("CancelIoEx(AcceptEx)");
        if (WSAWaitForMultipleEvents(1, &accept_event, FALSE, SHUTDOWN_WAIT_MS,
                                     FALSE) != WSA_WAIT_EVENT_0)
            die_code(WAIT_TIMEOUT, "shutdown: AcceptEx still in flight");
        closesocket(accept_fd);
        accept_fd = INVALID_SOCKET;
    }
    atomic_store(&stopping, true);
    EnterCriticalSection(&clients_lock);
    for (struct conn *c = clients; c != NULL; c = c->next) {
        EnterCriticalSection(&c->lock);
        /* ERROR_NOT_FOUND: it has just completed; its completion comes. */
        if (c->in_flight != OP_NONE && !CancelIoEx((HANDLE)c->fd, &c->op) &&
            GetLastError() != ERROR_NOT_FOUND)
            warn_errno("CancelIoEx(fd=%llu)", (unsigned long long)c->fd);
        LeaveCriticalSection(&c->lock);
    }
    LeaveCriticalSection(&clients_lock);

    for (;;) {
        EnterCriticalSection(&clients_lock);
        empty = clients == NULL;
        LeaveCriticalSection(&clients_lock);
        long long left = deadline - clock_ms();
        if (empty || left <= 0)
            break;
        DWORD rc = WSAWaitForMultipleEvents(1, &main_wake, FALSE, (DWORD)left,
                                            alertable);
        if (rc == WSA_WAIT_FAILED)
            die("WSAWaitForMultipleEvents");
        if (rc == WSA_WAIT_EVENT_0 && !WSAResetEvent(main_wake))
            die("WSAResetEvent");
    }
    if (!empty)  /* a completion never came: freeing is unsafe */
        die_code(WAIT_TIMEOUT, "shutdown: requests still in flight after "
                               "%d ms", SHUTDOWN_WAIT_MS);

    if (notify == NOTIFY_WAIT)
        stop_waiters();
    sig_on_stop(NULL, NULL);
    WSACloseEvent(main_wake);
    DeleteCriticalSection(&clients_lock);
    DeleteCriticalSection(&idle_lock);
}

/* Wakes every waiter (each sees stopping and its empty group, and
 * returns) and waits for each thread's end. Not before every client is
 * gone: Windows cancels the requests a thread posted when that thread
 * exits (WSASend's documentation), as io_uring does (NOTES §7.4). One
 * WaitForSingleObject each: WaitForMultipleObjects has the 64 limit too. */
static void stop_waiters(void)
{
    for (int i = 0; i < group_count; i++)
        wake_waiter(&groups[i]);
    for (int i = 0; i < group_count; i++) {
        if (WaitForSingleObject(groups[i].thread, INFINITE) != WAIT_OBJECT_0)
            die("WaitForSingleObject(waiter %d)", i);  /* pthread_join */
        CloseHandle(groups[i].thread);
        WSACloseEvent(groups[i].wake);
    }
    free(groups);
    groups = NULL;
}

/* The console control handler's wake-up, on its own thread. */
static void wake_main(void *arg)
{
    (void)arg;
    WSASetEvent(main_wake);  /* nowhere to report a failure */
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

/* [S8] main's dwTimeout in ms: until the oldest client would expire, in
 * both modes (server.c: in callback mode; its waiter's aio_suspend keeps
 * time in wait mode), or the end of an EMFILE pause if that comes first
 * (the retry timer), or WSA_INFINITE: wait for an event. In callback mode
 * this is the alertable wait's timeout. Touches on other threads only move
 * the oldest deadline later: the wait then ends early, and close_idle
 * finds nobody. */
static DWORD wait_timeout(void)
{
    long long now = clock_ms();
    long long paused_until = accept_paused_until;
    long long ms = idle_wait_ms();

    if (paused_until != 0) {
        long long pause_left = paused_until > now ? paused_until - now : 0;
        if (ms == -1 || pause_left < ms)
            ms = pause_left;
    }
    return ms == -1 ? WSA_INFINITE : (DWORD)ms;
}
