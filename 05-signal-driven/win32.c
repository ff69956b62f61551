/* 05-signal-driven/win32.c - readiness by message, in the notes' own API:
 * WSAAsyncSelect posts one window message per socket event, and one
 * GetMessage() loop reads them. The Win32 twin of server.c.
 *
 * Each socket is put in async-select mode: WSAAsyncSelect() names a window
 * of ours (a message-only window: no screen, no desktop needed), a message
 * number of our choosing (WM_SOCKET) and the events we want. Then each
 * readiness event - a client connecting, bytes arriving, room to send
 * again, a close or a reset - posts one WM_SOCKET message whose wParam is
 * the socket and whose lParam holds the event (WSAGETSELECTEVENT) and an
 * error (WSAGETSELECTERROR). The loop takes them one at a time with
 * GetMessage(), and DispatchMessage() hands each to the window procedure,
 * on_message. Unlike a signal, an event is posted once and then not again
 * until the call that re-enables it: recv() for FD_READ, accept() for
 * FD_ACCEPT, a send() that failed with WSAEWOULDBLOCK for FD_WRITE. So a
 * socket has only a few messages queued at a time, and the queue's limit
 * (10000 posted messages per thread on Windows) stays far away: there is
 * no overflow to rescan for, as server.c must.
 *
 *   [S1] setup_messages, setup_stop, setup_listener: the window class and
 *        the message-only window; the stop message; socket/bind/listen,
 *        WSAAsyncSelect(FD_ACCEPT)
 *   [S2] event_loop: GetMessage() takes the next message (Linux: sigwaitinfo)
 *        DispatchMessage() calls on_message, the window procedure; on_event:
 *        wParam is the socket, lParam the event      (Linux: si_fd, si_band)
 *  [S2a] the queue's limit, server.c's overflow: -c keeps us below it
 *   [S3] on_accept: accept until WSAEWOULDBLOCK; conn_open re-selects each
 *        client (it inherited the listener's selection)       (FD_ACCEPT)
 *   [S4] on_readable: recv until WSAEWOULDBLOCK or the backlog is full, echo
 *        as we go                                                (FD_READ)
 *   [S5] on_writable: send the backlog; FD_WRITE comes once there is room
 *        again after a send failed with WSAEWOULDBLOCK          (FD_WRITE)
 *   [S6] conn_close: WSAAsyncSelect(s, window, 0, 0), closesocket
 *        (FD_CLOSE with an error: on_hangup)
 *   [S7] Ctrl-C: the console handler posts WM_STOP; on_stop calls
 *        PostQuitMessage, GetMessage returns 0; shutdown_all
 *   [S8] SetTimer for the oldest client's idle deadline: its WM_TIMER,
 *        on_idle_timer, close_idle         (Linux: a POSIX timer's signal)
 *
 * Linux: fcntl(F_SETOWN_EX, F_SETSIG, O_ASYNC) is WSAAsyncSelect, the
 * thread's queue of pending realtime signals is the window's message queue,
 * si_fd is wParam, si_band is WSAGETSELECTEVENT(lParam), SO_ERROR is
 * WSAGETSELECTERROR(lParam), setitimer/SIGALRM is SetTimer/WM_TIMER (the
 * EMFILE pause), and so is a POSIX timer's signal (the idle timer). A
 * signal is queued for every event, and overflows into SIGIO; a message is
 * posted once per re-enabling call.
 *
 * Try:  make run-win32 M=05 ARGS="-v"      then: nc 127.0.0.1 9005
 *       make run-win32 M=05 ARGS="-vv"     one "message fd=.." line each
 *       diff -u 05-signal-driven/server.c 05-signal-driven/win32.c
 * gdb:  gdb -p <pid of the running twin>, then add-symbol-file
 *       build/win32/05-signal-driven/win32.exe; break on_message, on_accept,
 *       conn_open, on_readable, on_writable, conn_close, on_stop
 *       (README.md, "The Win32 twin").
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h>  /* before windows.h: Winsock 2, not winsock.h */
#include <windows.h>   /* the window, its messages and the timer: user32 */

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

#define DEFAULT_PORT 9005
#define DEFAULT_MAX_CLIENTS 1000
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define WM_SOCKET (WM_USER + 1) /* our message, the notes' WM_USER + 1 */
#define WM_STOP (WM_USER + 2)   /* Ctrl-C, posted by the console handler */
#define EMFILE_TIMER 1          /* SetTimer's id for the EMFILE pause */
#define RECHECK_TIMER 2         /* SetTimer's id: accept() once a second */
#define IDLE_TIMER 3            /* SetTimer's id: the idle timer [S8] */
#define ACCEPT_RECHECK_MS 1000
#define CONN_BUCKETS 1024       /* conn_by_fd: a hash table of SOCKETs */
/* Windows queues at most this many posted messages per thread (the
 * USERPostMessageLimit registry value); PostMessage then fails with
 * ERROR_NOT_ENOUGH_QUOTA. A client has one FD_CLOSE at most, and an
 * FD_READ or FD_WRITE only after a call that re-enabled it: rarely more
 * than one of each queued. Three each leaves a tenth of the queue spare. */
#define POSTED_MESSAGE_LIMIT 10000
#define MAX_CLIENTS_LIMIT (POSTED_MESSAGE_LIMIT * 9 / 10 / 3)

/* One client, found from a message's wParam in conn_by_fd. */
struct conn {
    SOCKET fd;
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    struct conn *prev, *next;   /* the open clients */
    struct conn *same_bucket;   /* the next conn in its conn_by_fd bucket */
    struct idle_entry idle;     /* its place in idle_clients */
};

static struct server_opts opts;
static struct stats stats;
static SOCKET listen_fd = INVALID_SOCKET;

/* The window the messages go to. Message-only (parent HWND_MESSAGE): never
 * shown, enumerated or sent broadcasts; it only has a queue - the thread's -
 * and a window procedure. Made and served by the main thread: a window's
 * messages go to the queue of the thread that created it (the console
 * handler's thread only posts WM_STOP to it). */
static HWND window;
static ATOM window_class;

/* Connections by SOCKET. A SOCKET is a handle, not a small number, so it
 * cannot index an array as server.c's conn_by_fd[fd] does: a hash table of
 * chains instead (handle values are multiples of 4). */
static struct conn **conn_by_fd;

static struct conn *clients;    /* every open client, for shutdown */

static long long accept_paused_until;  /* EMFILE: clock_ms() to resume, or 0 */
/* on_accept stopped before WSAEWOULDBLOCK (-c, EMFILE): clients may wait in
 * the backlog, and no new FD_ACCEPT will come for them: only accept()
 * re-enables it. */
static bool backlog_waiting;
static struct idle_list idle_clients; /* [S8] least recently active first */
static bool timer_armed;        /* IDLE_TIMER set for the oldest's deadline */

static void setup_messages(void);
static void setup_stop(void);
static SOCKET setup_listener(void);
static void event_loop(void);
static LRESULT CALLBACK on_message(HWND hwnd, UINT message, WPARAM wparam,
                                   LPARAM lparam);
static bool on_event(SOCKET fd, int event, int error);
static void on_accept(void);
static void conn_open(SOCKET fd, const char *peer);
static bool on_hangup(struct conn *c, int error);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static void conn_close(struct conn *c);
static void on_idle_timer(void);
static void close_idle(void);
static void arm_idle_timer(void);
static void on_stop(void);
static void shutdown_all(void);
static void post_stop(void *unused);
static struct conn **conn_slot(SOCKET fd);
static bool accepting(void);

static const struct model_info model = {
    .program = "05-signal-driven/win32.exe",
    .summary = "WSAAsyncSelect: a window message per socket event, "
               "read by a GetMessage() loop",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = MAX_CLIENTS_LIMIT,
};

int main(int argc, char **argv)
{
    WSADATA wsa;
    int rc;

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("sigio", opts.verbose);  /* server.c's tag: the logs compare */
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);

    /* Every Winsock program starts here: load Winsock 2.2 (the notes'
     * first call). Linux has no such step, and no SIGPIPE to ignore here:
     * a send to a reset peer fails with WSAECONNRESET and nothing else. */
    if ((rc = WSAStartup(MAKEWORD(2, 2), &wsa)) != 0)
        die_code(rc, "WSAStartup");

    setup_messages();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    closesocket(listen_fd);
    stats_print_summary(&stats);
    WSACleanup();
    return EXIT_SUCCESS;
}

/* [S1] The window the messages go to: a window class (the window procedure
 * is its point), then a message-only window of that class. Nothing to block
 * first, unlike server.c's signals: a message waits in the queue until
 * GetMessage() takes it, and kills nobody. Then the table that turns a
 * message's wParam into its client. */
static void setup_messages(void)
{
    WNDCLASSEXA wc = {
        .cbSize = sizeof(wc),
        .lpfnWndProc = on_message,  /* DispatchMessage calls it */
        .hInstance = GetModuleHandle(NULL),
        .lpszClassName = "echo-05",
    };

    window_class = RegisterClassExA(&wc);
    if (window_class == 0)
        die("RegisterClassEx");
    /* HWND_MESSAGE as the parent: a message-only window. No size, no
     * style, no title matter; the notes create a visible one only to
     * TextOut what happens. */
    window = CreateWindowExA(0, wc.lpszClassName, "", 0, 0, 0, 0, 0,
                             HWND_MESSAGE, NULL, wc.hInstance, NULL);
    if (window == NULL)
        die("CreateWindowEx(HWND_MESSAGE)");

    conn_by_fd = calloc(CONN_BUCKETS, sizeof(*conn_by_fd));
    if (conn_by_fd == NULL)
        die("calloc(%d buckets)", CONN_BUCKETS);
}

/* [S1] Ctrl-C, read as a message. Windows runs the console handler on a
 * thread of its own; it sets the stop flag, then calls post_stop, which
 * posts WM_STOP to our window: one more message in the queue GetMessage
 * reads, handled by on_stop on this thread, as server.c's SIGINT is.
 * (Wine turns SIGINT into Ctrl-C; its SIGTERM kills without a handler.) */
static void setup_stop(void)
{
    sig_on_stop(post_stop, NULL);
    if (sig_catch_stop() == -1)
        die("SetConsoleCtrlHandler");
}

/* [S1] socket/bind/listen, selected for FD_ACCEPT, then the one line on
 * stdout (last: a test may connect as soon as it reads it). Nonblocking:
 * WSAAsyncSelect sets that by itself (server.c asks SOCK_NONBLOCK). A
 * message is still a hint: a client may reset between its FD_ACCEPT and
 * our accept(). */
static SOCKET setup_listener(void)
{
    SOCKET fd = net_listen(opts.host, opts.port, 0);
    if (fd == INVALID_SOCKET)
        die("listen on %s port %d", opts.host, opts.port);
    /* Linux: fcntl(F_SETOWN_EX, F_SETSIG, O_ASYNC) */
    if (WSAAsyncSelect(fd, window, WM_SOCKET, FD_ACCEPT) == SOCKET_ERROR)
        die("WSAAsyncSelect(listen fd=%llu)", (unsigned long long)fd);
    /* And accept() once a second whatever FD_ACCEPT says: Wine 8.0 can
     * lose it for good (NOTES §7.13), and an accept() that succeeds
     * re-arms it. On Windows this finds nobody waiting. No Linux
     * counterpart: a queued signal is not lost that way. */
    if (SetTimer(window, RECHECK_TIMER, ACCEPT_RECHECK_MS, NULL) == 0)
        die("SetTimer");
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] The message loop, the notes' own. A window's queue is FIFO for the
 * messages posted to it, SetTimer's WM_TIMER comes only when nothing is
 * posted, and WM_QUIT (PostQuitMessage, from on_stop) only once no posted
 * message is left: GetMessage then returns 0 and the loop ends. No
 * TranslateMessage: it makes WM_CHAR from keys, and we have no keys. */
static void event_loop(void)
{
    MSG msg;

    for (;;) {
        /* A client left, or WM_TIMER ended an EMFILE pause: the backlog
         * may hold clients for whom no new FD_ACCEPT will come. */
        if (backlog_waiting && accepting()) {
            backlog_waiting = false;  /* on_accept sets it again if need be */
            on_accept();
        }
        arm_idle_timer();
        /* Linux: sigwaitinfo - wait for this thread's next message */
        int got = GetMessage(&msg, NULL, 0, 0);
        if (got == -1)
            die("GetMessage");
        if (got == 0)
            break;  /* WM_QUIT: on_stop's PostQuitMessage */
        DispatchMessage(&msg);  /* calls on_message, the window procedure */
    }
}

/* The window procedure: DispatchMessage calls it with each message. Linux:
 * server.c's event_loop tells SIGINT, SIGIO, SIGALRM and the socket signal
 * apart by number; here the message number does it.
 *
 * [S2a] No overflow case. server.c's queue of realtime signals holds
 * RLIMIT_SIGPENDING for the whole user and overflows into SIGIO, after
 * which it rescans every socket with poll(). A window's queue holds
 * POSTED_MESSAGE_LIMIT (10000) posted messages per thread; past that,
 * PostMessage fails with ERROR_NOT_ENOUGH_QUOTA and Winsock has no SIGIO
 * to say an event was lost: the socket would wait forever, since its event
 * is not posted again before its re-enabling call. So the twin prevents it
 * instead: an event is posted once per re-enabling call, a client rarely
 * has more than three messages queued (POSTED_MESSAGE_LIMIT's comment), and
 * -c is capped at MAX_CLIENTS_LIMIT (3000). (Re-issuing WSAAsyncSelect on
 * a socket would be the rescan: it posts a message for each condition
 * already true.) Under Wine 8.0 the limit does not exist: 20000 posts
 * to one window all went through (README). */
static LRESULT CALLBACK on_message(HWND hwnd, UINT message, WPARAM wparam,
                                   LPARAM lparam)
{
    switch (message) {
    case WM_SOCKET: {
        /* Stopping (the console handler sets the flag, then posts
         * WM_STOP): WM_QUIT waits for an empty queue, so handle nothing
         * more. A message left unhandled re-enables nothing (no recv, no
         * accept), so no new one follows it, and the queue drains. Asking
         * for WM_QUIT again costs nothing, and ends the loop even if
         * WM_STOP could not be posted (post_stop). */
        if (sig_stop_requested()) {
            PostQuitMessage(0);
            return 0;
        }
        int event = WSAGETSELECTEVENT(lparam);  /* LOWORD: FD_READ... */
        int error = WSAGETSELECTERROR(lparam);  /* HIWORD: a WSA code */
        log_trace("message fd=%llu event=%#x%s%s%s%s error=%d",
                  (unsigned long long)wparam, event,
                  event & FD_ACCEPT ? " FD_ACCEPT" : "",
                  event & FD_READ ? " FD_READ" : "",
                  event & FD_WRITE ? " FD_WRITE" : "",
                  event & FD_CLOSE ? " FD_CLOSE" : "", error);
        on_event((SOCKET)wparam, event, error);
        return 0;
    }
    case WM_TIMER:  /* wparam: which SetTimer timer */
        if (wparam == RECHECK_TIMER) {  /* see setup_listener */
            backlog_waiting = !sig_stop_requested();
            return 0;
        }
        if (wparam == IDLE_TIMER) {
            on_idle_timer();
            return 0;
        }
        /* The EMFILE pause is over (SIGALRM). A SetTimer timer fires every
         * EMFILE_PAUSE_MS until killed: killing it at the first WM_TIMER
         * makes it setitimer's one-shot. */
        if (!KillTimer(hwnd, EMFILE_TIMER))
            warn_errno("KillTimer");
        accept_paused_until = 0;
        return 0;
    case WM_STOP:  /* Ctrl-C (SIGINT, SIGTERM) */
        on_stop();
        return 0;
    default:
        return DefWindowProcA(hwnd, message, wparam, lparam);
    }
}

/* One socket event, from a message: a hint, not a promise. The socket may
 * be handled already (a stale FD_READ: every recv() that leaves bytes
 * behind posts one more), closed (messages queued before closesocket stay
 * queued), or a new client under a reused handle value. So every handler
 * reads or sends until WSAEWOULDBLOCK; "nothing there" is normal, and that
 * failing call is what re-enables the event. Returns false when there is
 * no client (any more) under fd. */
static bool on_event(SOCKET fd, int event, int error)
{
    if (fd == listen_fd) {                    /* FD_ACCEPT */
        /* An error here (WSAENETDOWN) changes nothing: accept() says what
         * is wrong, and only calling it re-enables FD_ACCEPT. (The notes
         * break out on any error: FD_ACCEPT would then never come again.) */
        if (!backlog_waiting)
            on_accept();  /* else stopped: event_loop calls it again */
        return true;
    }
    struct conn *c = *conn_slot(fd);
    if (c == NULL) {
        log_trace("message fd=%llu: no such client (closed already)",
                  (unsigned long long)fd);
        return false;
    }
    if ((event & FD_CLOSE) && !on_hangup(c, error))
        return false;
    /* Any message may mean room to send: try a pending echo (FD_WRITE).
     * Then read, unless the backlog is still full (backpressure). */
    if (!on_writable(c))
        return false;
    return on_readable(c);
}

/* [S3] Accepts the clients waiting in the listen backlog, until
 * WSAEWOULDBLOCK or -c: one FD_ACCEPT may stand for several connections
 * (Winsock posts the next only after an accept() call) or none (a stale
 * hint). Stopped before WSAEWOULDBLOCK, at -c or in an EMFILE pause, we do
 * not call accept(), so FD_ACCEPT is not re-enabled and no message will
 * come for the clients in the backlog: backlog_waiting asks event_loop to
 * call us again when a slot frees. (Forgetting that is the classic
 * WSAAsyncSelect server that stops accepting, with no error at all.) */
static void on_accept(void)
{
    while (accepting()) {
        char peer[ADDR_TEXT_MAX];
        SOCKET fd = net_accept(listen_fd, 0, peer, sizeof(peer));
        int err = fd == INVALID_SOCKET ? WSAGetLastError() : 0;
        if (err == WSAEWOULDBLOCK)
            return;  /* WSAEWOULDBLOCK: nobody is waiting any more */
        if (err != 0 && net_accept_exhausted(err)) {
            /* WSAEMFILE/WSAENOBUFS: out of sockets or memory. Retrying at
             * once would spin (NOTES §7.1). Resume when one of ours leaves,
             * or when a one-shot timer fires, in case none of ours ever
             * does. (Windows re-enables FD_ACCEPT even after a failed
             * accept(); Wine does not: the next FD_ACCEPT waits for an
             * accept() that succeeds. Calling it again ourselves works on
             * both.) */
            warn_code(err, "accept (pausing %d ms)", EMFILE_PAUSE_MS);
            accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
            /* Linux: setitimer - a SIGALRM message comes later. Here a
             * WM_TIMER message, handled by on_message. */
            if (SetTimer(window, EMFILE_TIMER, EMFILE_PAUSE_MS, NULL) == 0)
                die("SetTimer");
            backlog_waiting = true;
            return;
        }
        if (err != 0 && (err == WSAEINTR || net_accept_transient(err)))
            continue;  /* one aborted connection: try the next */
        /* WSAENOTSOCK, WSAEINVAL (no listen()): a bug. Wine 8.0 also says
         * WSAEINVAL when its wineserver runs out of file descriptors
         * (README), so there, and only under Wine, that ends the twin. */
        if (err != 0)
            die_code(err, "accept");
        conn_open(fd, peer);
    }
    /* -c reached: newcomers wait in the listen backlog */
    log_event("%d clients: not accepting until one leaves",
              stats_current(&stats));
    backlog_waiting = true;
}

/* [S3] A new client: re-selected for its own events, into the table and
 * the list. The accepted socket inherited the listener's selection
 * (FD_ACCEPT, WM_SOCKET, nonblocking), which says nothing about reading
 * it: WSAAsyncSelect again replaces it. No read now, unlike server.c:
 * WSAAsyncSelect posts FD_READ at once if bytes are already there, and
 * FD_WRITE as the socket can send. */
static void conn_open(SOCKET fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn("accept fd=%llu: no memory, closing", (unsigned long long)fd);
        goto fail;
    }
    /* An urgent byte stays in line and is echoed like the rest (FD_READ);
     * otherwise it would be FD_OOB, which we do not ask for. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%llu)",
                   (unsigned long long)fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    /* Linux: fcntl(F_SETOWN_EX, F_SETSIG, O_ASYNC) */
    if (WSAAsyncSelect(fd, window, WM_SOCKET,
                       FD_READ | FD_WRITE | FD_CLOSE) == SOCKET_ERROR) {
        warn_errno("WSAAsyncSelect(fd=%llu): closing",
                   (unsigned long long)fd);
        goto fail;
    }
    *conn_slot(fd) = c;  /* the NULL link at the end of its bucket's chain */
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
    if (c != NULL)
        buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
    free(c);
    closesocket(fd);
}

/* FD_CLOSE: the connection is closing. With an error in lParam
 * (WSAGETSELECTERROR: WSAECONNRESET, WSAECONNABORTED) it failed, and the
 * client goes. Linux: POLLERR and SO_ERROR. With none the client sent FIN:
 * bytes sent before it may still be unread (Winsock's own advice is to
 * check), so on_event reads on, until recv() returns 0. (Wine 8.0 posts a
 * reset as FD_CLOSE with no error, and recv() then returns 0 as for a FIN:
 * only send() says WSAECONNRESET. Either way the client is closed.)
 * Returns false when the client was closed. */
static bool on_hangup(struct conn *c, int error)
{
    char why[300];

    if (error == 0)
        return true;
    log_event("fd=%llu FD_CLOSE: %s", (unsigned long long)c->fd,
              err_describe(error, why, sizeof(why)));
    conn_close(c);
    return false;
}

/* [S4] FD_READ: recv until WSAEWOULDBLOCK, echoing as we go. Each recv()
 * re-enables FD_READ, so Winsock posts a new one if bytes remain after it
 * or arrive later. Stops at a full backlog: no recv(), so no FD_READ
 * either; on_event calls us again once the echo drains (FD_WRITE). Returns
 * false when the client was closed. */
static bool on_readable(struct conn *c)
{
    char why[300];

    while (!c->peer_done && !buf_full(&c->echo)) {
        ssize_t n = buf_fill(&c->echo, c->fd);
        int err = n == SOCKET_ERROR ? WSAGetLastError() : 0;
        if (err == WSAEWOULDBLOCK)
            break;  /* all read; wait for the next FD_READ */
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
        if (buf_full(&c->echo))
            log_event("fd=%llu backlog full: not reading until it drains",
                      (unsigned long long)c->fd);
    }
    return true;
}

/* [S5] FD_WRITE: sends what is pending until it is all gone or send() says
 * WSAEWOULDBLOCK. Only that failure re-enables FD_WRITE: Winsock posts it
 * once there is room again, and on_event then drains and reads again if
 * the backlog was full. (A send that succeeds posts nothing: an idle
 * client costs no messages.) Returns false when the client was closed. */
static bool on_writable(struct conn *c)
{
    char why[300];

    while (!buf_empty(&c->echo)) {
        ssize_t sent = buf_drain(&c->echo, c->fd);
        int err = sent == SOCKET_ERROR ? WSAGetLastError() : 0;
        if (err == WSAEWOULDBLOCK)
            break;  /* full: an FD_WRITE message will come */
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
    return true;
}

/* [S6] WSAAsyncSelect(s, window, 0, 0), the notes' cancel, then
 * closesocket (which would cancel it too). New messages stop; those
 * already queued stay, and reach on_event later, which finds no client, or
 * a new one under the reused handle value: both harmless. So the conn can
 * be freed at once. Linux: O_ASYNC off, close. */
static void conn_close(struct conn *c)
{
    if (WSAAsyncSelect(c->fd, window, 0, 0) == SOCKET_ERROR)
        warn_errno("WSAAsyncSelect(fd=%llu, 0)", (unsigned long long)c->fd);
    if (closesocket(c->fd) == SOCKET_ERROR)
        warn_errno("closesocket(fd=%llu)", (unsigned long long)c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%llu peer=%s clients=%d", (unsigned long long)c->fd,
              c->peer, now);
    accept_paused_until = 0;  /* a socket and a slot are free */
    *conn_slot(c->fd) = c->same_bucket;
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

/* [S8] WM_TIMER from IDLE_TIMER: the oldest client's deadline has come
 * (or, if it was touched since, the deadline it had then). A SetTimer
 * timer repeats until killed: killed here, it is a one-shot, and the loop
 * sets it again for the new oldest. WM_TIMER is made only when the queue
 * has nothing else: a flood of socket messages comes first. Linux: the
 * POSIX timer's realtime signal, numbered after the socket signal. */
static void on_idle_timer(void)
{
    if (!KillTimer(window, IDLE_TIMER))
        warn_errno("KillTimer");
    timer_armed = false;
    close_idle();
}

/* Closes the clients that have been idle --idle-timeout seconds:
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

/* [S7] WM_STOP, one more message: ask for WM_QUIT, which ends the loop.
 * PostQuitMessage is the documented way (posting WM_QUIT is not); the
 * console handler cannot call it, since it marks the calling thread's
 * queue, and the handler runs on a thread of its own. Linux: the signal's
 * sender is in si_pid; a console event has none. */
static void on_stop(void)
{
    log_event("console control event (WM_STOP): shutting down");
    PostQuitMessage(0);
}

/* [S7] Close every client (an echo still unsent is dropped), then the
 * table; the listener's selection is cancelled (main closes it), and the
 * window and its class go: DestroyWindow also kills its timer and drops
 * the messages still queued for it. */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    while (clients != NULL)
        conn_close(clients);
    free(conn_by_fd);
    /* Linux: timer_delete. (DestroyWindow below would kill it too.) */
    if (timer_armed && !KillTimer(window, IDLE_TIMER))
        warn_errno("KillTimer");
    if (WSAAsyncSelect(listen_fd, window, 0, 0) == SOCKET_ERROR)
        warn_errno("WSAAsyncSelect(listen fd=%llu, 0)",
                   (unsigned long long)listen_fd);
    if (!DestroyWindow(window))
        warn_errno("DestroyWindow");
    if (!UnregisterClassA(MAKEINTATOM(window_class), GetModuleHandle(NULL)))
        warn_errno("UnregisterClass");
}

/* [S8] Sets IDLE_TIMER for the oldest client's deadline, unless it is
 * set already. While set, the oldest deadline can only move later (a
 * touch, a close, a newcomer at the tail): WM_TIMER comes on time or
 * early, and early, close_idle finds nobody and this sets it again. One
 * SetTimer per expiry, not one per message. (Linux: timer_settime.) */
static void arm_idle_timer(void)
{
    if (timer_armed)
        return;
    long long left = idle_next_ms(&idle_clients, clock_ms());
    if (left == -1)
        return;
    if (SetTimer(window, IDLE_TIMER, left > 0 ? (UINT)left : 1, NULL) == 0)
        die("SetTimer");
    timer_armed = true;
}

/* The console handler's wake-up, on the handler's thread (sig_win32.c): it
 * posts WM_STOP to our window. PostMessage may be called from any thread;
 * the message lands in the window thread's queue. Why not
 * PostThreadMessage(main thread, WM_QUIT)? It works, and is FIFO, but a
 * posted WM_QUIT is what the documentation tells us not to do, and a
 * thread message reaches no window procedure, so on_stop would move into
 * the loop. If the post fails (a full queue on Windows, or the window is
 * gone at exit), the flag is still set: the next WM_SOCKET asks for
 * WM_QUIT instead (on_message). */
static void post_stop(void *unused)
{
    (void)unused;
    if (!PostMessage(window, WM_STOP, 0, 0))
        warn_errno("PostMessage(WM_STOP)");
}

/* Where fd's conn is in conn_by_fd, or where it would go: the link that
 * points at it (or the NULL at the end of its chain). */
static struct conn **conn_slot(SOCKET fd)
{
    struct conn **link = &conn_by_fd[(fd / 4) % CONN_BUCKETS];

    while (*link != NULL && (*link)->fd != fd)
        link = &(*link)->same_bucket;
    return link;
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
