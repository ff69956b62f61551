/* 05-signal-driven/server.c - readiness by message: the kernel queues one
 * realtime signal per socket event, and one sigwaitinfo() loop reads them.
 *
 * Each socket is put in signal-driven mode: this thread becomes its owner
 * (F_SETOWN_EX), a realtime signal of our choosing its message (F_SETSIG),
 * and O_ASYNC switches it on. Then each readiness event - a client
 * connecting, bytes arriving, room to send again, a reset - queues one
 * signal whose siginfo names the socket (si_fd) and the event (si_band).
 * The signals are blocked, so none interrupts anything: the loop takes them
 * one at a time with sigwaitinfo(), as a window takes its messages with
 * GetMessage(). The queue is bounded by RLIMIT_SIGPENDING, which counts the
 * pending signals of all processes of the same user: when it is full the
 * kernel raises a plain SIGIO instead ("events were lost"), and the server
 * rescans every socket with poll().
 *
 *   [S1] setup_listener: block the messages; socket/bind/listen; arm O_ASYNC
 *   [S2] event_loop: sigwaitinfo() takes the next message      (GetMessage)
 *   [S3] on_signal: si_fd is the socket, si_band the event (DispatchMessage)
 *   [S4] on_accept: accept until EAGAIN; arm each client; read it once
 *   [S5] on_readable: recv until EAGAIN or the backlog is full, echo as we go
 *   [S6] on_writable: send the backlog; POLLOUT comes when there is room
 *   [S7] on_overflow: SIGIO; drop the queued hints, poll() every socket
 *   [S8] SIGTERM is one more message: leave the loop, close all, exit 0
 *
 * Win32: WSAAsyncSelect(s, hwnd, WM_SOCKET, FD_ACCEPT|FD_READ|FD_WRITE|
 * FD_CLOSE) is fcntl(F_SETOWN_EX, F_SETSIG, O_ASYNC); the window's message
 * queue is this thread's queue of pending signals; wParam is si_fd;
 * WSAGETSELECTEVENT(lParam) is si_band (POLLIN ~ FD_READ and FD_ACCEPT,
 * POLLOUT ~ FD_WRITE, POLLHUP/POLLERR ~ FD_CLOSE); WSAGETSELECTERROR(lParam)
 * is getsockopt(SO_ERROR); WSAAsyncSelect(s, hwnd, 0, 0) is clearing O_ASYNC;
 * SetTimer/WM_TIMER is setitimer/SIGALRM (the EMFILE retry).
 *
 * Try:  ./server -v                      then: nc 127.0.0.1 9005
 *       prlimit --sigpending=8 ./server -v  and 50 clients: overflow
 * gdb:  make gdb M=05   (walkthrough.gdb: break on_signal, on_readable).
 *       gdb never sees the blocked messages, and Ctrl-C stops the server,
 *       not gdb: SIGINT is a message too (see README).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

#define DEFAULT_PORT 9005
#define DEFAULT_MAX_CLIENTS 1000
#define EMFILE_PAUSE_MS 100
#define IO_SIGNAL_OFFSET 1      /* our message: SIGRTMIN + 1 ("SIG35") */
#define FD_TABLE_MAX (1 << 20)  /* conn_by_fd never grows past this */

/* One client, found from a message's si_fd in conn_by_fd. */
struct conn {
    int fd;
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* recv() returned 0: echo the rest, close */
};

static struct server_opts opts;
static struct stats stats;

/* The messages: io_signal carries one socket event, SIGIO says the queue
 * overflowed, SIGALRM is our timer (WM_TIMER), SIGINT/SIGTERM ask us to
 * stop. All are blocked and read only by sigwaitinfo() in event_loop. */
static int io_signal;
static sigset_t messages;

/* Connections by descriptor number: a message's si_fd indexes it. */
static struct conn **conn_by_fd;
static int fd_table_size;

/* Accepting pauses at -c clients, or when accept() runs out of descriptors:
 * -1 while accepting, else the client count at the pause. A client leaving
 * brings the count below it, or (EMFILE) the timer fires: accepting resumes. */
static int accept_paused_at = -1;

static int setup_listener(void);
static void event_loop(int listen_fd);
static void on_signal(int listen_fd, const siginfo_t *si);
static void on_event(int listen_fd, int fd, long band);
static void on_accept(int listen_fd);
static void conn_open(int fd, const char peer[ADDR_TEXT_MAX]);
static const char *async_select(int fd);
static int on_readable(struct conn *c);
static int on_writable(struct conn *c);
static void on_overflow(int listen_fd);
static void conn_close(struct conn *c);
static void shutdown_all(int listen_fd);

static const struct model_info model = {
    .program = "05-signal-driven/server",
    .summary = "O_ASYNC + F_SETSIG: a realtime signal per socket event, "
               "read by a sigwaitinfo() loop",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = 100000,
};

int main(int argc, char **argv)
{
    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("sigio", opts.verbose);
    stats_init(&stats);

    /* send() to a client that reset the connection must return EPIPE, not
     * kill us with SIGPIPE (we also pass MSG_NOSIGNAL; this covers all). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    struct rlimit nofile;  /* the fd table: as long as the fd limit */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == -1)
        die("getrlimit(RLIMIT_NOFILE)");
    fd_table_size = nofile.rlim_cur > FD_TABLE_MAX ? FD_TABLE_MAX
                                                   : (int)nofile.rlim_cur;
    conn_by_fd = calloc(fd_table_size, sizeof(*conn_by_fd));
    if (conn_by_fd == NULL)
        die("calloc(%d fds)", fd_table_size);

    int listen_fd = setup_listener();
    event_loop(listen_fd);
    shutdown_all(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] Block the messages first: an unblocked realtime signal or SIGIO
 * would kill us (default action: terminate). A threaded server would block
 * them before creating any thread, which inherits the mask. Then
 * socket/bind/listen; the listening socket is armed too (FD_ACCEPT). */
static int setup_listener(void)
{
    io_signal = SIGRTMIN + IO_SIGNAL_OFFSET;  /* SIGRTMIN is glibc's, +1 ours */
    sig_stop_set(&messages);
    sigaddset(&messages, SIGIO);
    sigaddset(&messages, SIGALRM);
    sigaddset(&messages, io_signal);
    if (sigprocmask(SIG_BLOCK, &messages, NULL) == -1)
        die("sigprocmask(SIG_BLOCK)");

    int listen_fd = net_listen(opts.host, opts.port,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (listen_fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    const char *failed = async_select(listen_fd);
    if (failed != NULL)
        die("%s(listen fd=%d)", failed, listen_fd);
    if (net_announce(listen_fd) == -1)
        die("announce");
    return listen_fd;
}

/* [S2] The message loop. Unlike a window's FIFO queue, pending signals come
 * lowest number first: SIGINT, SIGTERM and SIGIO overtake queued socket
 * events, so a stop or an overflow is seen at once. */
static void event_loop(int listen_fd)
{
    siginfo_t si;

    for (;;) {
        /* Win32: GetMessage - wait for this thread's next message */
        int sig = sigwaitinfo(&messages, &si);
        if (sig == -1) {
            if (errno != EINTR)
                die("sigwaitinfo");
            continue;  /* EINTR: woken by a signal outside the set (gdb) */
        }
        if (sig == SIGINT || sig == SIGTERM) {
            log_event("%s: shutting down",                 /* [S8] */
                      sig == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
        if (sig == SIGIO)
            on_overflow(listen_fd);                       /* [S7] */
        else if (sig != SIGALRM)
            on_signal(listen_fd, &si);                    /* [S3] */
        /* A client left, or the timer (WM_TIMER) fired: the backlog may
         * hold clients for whom no new message will come: accept them. */
        if (accept_paused_at != -1 &&
            (sig == SIGALRM || stats_current(&stats) < accept_paused_at)) {
            accept_paused_at = -1;
            on_accept(listen_fd);
        }
    }
}

/* [S3] Win32: DispatchMessage - the window procedure's WM_SOCKET case.
 * From the kernel si_code is POLL_IN, POLL_OUT, POLL_ERR or POLL_HUP;
 * kill -35 from a shell gives SI_USER (<= 0) and no socket. */
static void on_signal(int listen_fd, const siginfo_t *si)
{
    if (si->si_code <= 0)
        return;
    log_trace("message fd=%d band=%#lx%s%s%s%s", si->si_fd, si->si_band,
              si->si_band & POLLIN ? " POLLIN" : "",
              si->si_band & POLLOUT ? " POLLOUT" : "",
              si->si_band & POLLHUP ? " POLLHUP" : "",
              si->si_band & POLLERR ? " POLLERR" : "");
    on_event(listen_fd, si->si_fd, si->si_band);
}

/* One socket event, from a message or the poll() rescan: a hint, not a
 * promise. Signals are queued per event, not per socket, and outlive
 * close(): the fd may be handled already, closed, or a new client under a
 * reused number, and siginfo has no room for a generation count to tell.
 * So every handler reads or sends until EAGAIN; "nothing there" is normal. */
static void on_event(int listen_fd, int fd, long band)
{
    if (fd == listen_fd) {                  /* FD_ACCEPT */
        if (accept_paused_at == -1)
            on_accept(listen_fd);           /* paused: the backlog holds them */
        return;
    }
    struct conn *c = (fd >= 0 && fd < fd_table_size) ? conn_by_fd[fd] : NULL;
    if (c == NULL) {
        log_trace("message fd=%d: no such client (closed already)", fd);
        return;
    }
    if (band & POLLERR) {                   /* FD_CLOSE with an error */
        int err = 0;
        socklen_t len = sizeof(err);
        /* Win32: WSAGETSELECTERROR(lParam) - the error behind the event */
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        if (err != 0) {
            log_event("fd=%d: %s", fd, strerror(err));
            conn_close(c);
            return;
        }
    }
    /* Any message may mean room to send: try a pending echo (FD_WRITE).
     * Then read, unless the backlog is still full (backpressure). */
    if (on_writable(c) == -1)
        return;
    on_readable(c);
}

/* [S4] Accept every client the backlog holds: one message may stand for
 * several connections (or none: a stale hint). */
static void on_accept(int listen_fd)
{
    char peer[ADDR_TEXT_MAX];

    while (stats_current(&stats) < opts.max_clients) {
        int fd = net_accept(listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC, peer,
                            sizeof(peer));
        if (fd != -1) {
            conn_open(fd, peer);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;  /* EAGAIN: the backlog is empty; wait for a message */
        if (errno == EINTR)
            continue;  /* EINTR: a signal outside the set; try again */
        if (net_accept_exhausted(errno)) {
            /* EMFILE: out of descriptors. Retrying at once would spin
             * (PITFALLS 1). Resume when one of ours leaves, or when a
             * one-shot timer fires, in case none of ours ever does. */
            warn_errno("accept (pausing %d ms)", EMFILE_PAUSE_MS);
            accept_paused_at = stats_current(&stats);
            /* Win32: SetTimer - a WM_TIMER message (SIGALRM) comes later */
            struct itimerval once = {.it_value = {0, EMFILE_PAUSE_MS * 1000}};
            if (setitimer(ITIMER_REAL, &once, NULL) == -1)
                die("setitimer");
            return;
        }
        if (!net_accept_transient(errno))
            die("accept");  /* EBADF, EINVAL...: a bug, not a client */
        warn_errno("accept");
    }
    /* -c reached: newcomers wait in the listen backlog */
    accept_paused_at = stats_current(&stats);
    log_event("%d clients: not accepting until one leaves", accept_paused_at);
}

/* A new client: into the table, armed for messages, then read once. */
static void conn_open(int fd, const char peer[ADDR_TEXT_MAX])
{
    struct conn *c;
    const char *failed;

    if (fd >= fd_table_size) {  /* the limit was raised while we ran */
        warn("accept: fd=%d beyond the fd table: closing", fd);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("malloc(conn fd=%d): closing", fd);
        free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    memcpy(c->peer, peer, sizeof(c->peer));
    conn_by_fd[fd] = c;
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);
    if ((failed = async_select(fd)) != NULL) {
        warn_errno("%s(fd=%d): closing", failed, fd);
        conn_close(c);
        return;
    }
    /* Bytes that came before O_ASYNC was set raised no signal (PITFALLS
     * 6) and none will come for them: read now. (Winsock posts FD_WRITE
     * after accept; Linux sends nothing until something happens.) */
    on_readable(c);
}

/* Win32: WSAAsyncSelect(s, hwnd, WM_SOCKET, FD_READ|FD_WRITE|FD_CLOSE)
 * Returns NULL, or the failed call's name (errno set). Owner and signal
 * first, then O_ASYNC: the first event already goes to the right place. */
static const char *async_select(int fd)
{
    /* F_OWNER_TID: this thread, as a window belongs to the thread that made
     * it. F_SETOWN(getpid()) would do for one thread; with more, any thread
     * that does not block the signal could take it. */
    struct f_owner_ex owner = {.type = F_OWNER_TID, .pid = gettid()};

    if (fcntl(fd, F_SETOWN_EX, &owner) == -1)
        return "fcntl(F_SETOWN_EX)";
    /* F_SETSIG: our realtime signal, queued once per event with si_fd and
     * si_band (the default, a bare SIGIO, carries neither and never queues
     * more than one). */
    if (fcntl(fd, F_SETSIG, io_signal) == -1)
        return "fcntl(F_SETSIG)";
    if (fcntl(fd, F_SETFL, O_NONBLOCK | O_ASYNC) == -1)
        return "fcntl(F_SETFL, O_ASYNC)";
    return NULL;
}

/* [S5] FD_READ: recv until EAGAIN, echoing as we go: a new message comes
 * only for bytes that arrive later. Stops at a full backlog; on_event
 * calls us again once it drains, as no message will come for the bytes
 * still waiting in the kernel. Returns -1 when the client was closed. */
static int on_readable(struct conn *c)
{
    while (!buf_full(&c->echo) && !c->peer_done) {
        ssize_t n = buf_fill(&c->echo, c->fd);
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;  /* EAGAIN: all read; wait for the next message */
        if (n == -1 && errno == EINTR)
            continue;  /* EINTR: a signal outside the set; recv again */
        if (n == -1) {
            log_event("recv fd=%d: %s", c->fd, strerror(errno));
            conn_close(c);
            return -1;
        }
        if (n == 0)
            c->peer_done = true;  /* half-close: echo the rest, then close */
        log_trace("recv fd=%d %zd bytes", c->fd, n);
        if (on_writable(c) == -1)
            return -1;
        if (buf_full(&c->echo))
            log_event("fd=%d backlog full: not reading until it drains",
                      c->fd);
    }
    return 0;
}

/* [S6] FD_WRITE: send the backlog until it is empty or send() says EAGAIN;
 * then the kernel sends a POLLOUT message once there is room again, and
 * on_event reads again if the backlog was full. A half-closed client is
 * closed once its echo is complete. Returns -1 when it was closed. */
static int on_writable(struct conn *c)
{
    while (!buf_empty(&c->echo)) {
        ssize_t sent = buf_drain(&c->echo, c->fd);
        if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;  /* socket buffer full: FD_WRITE will come */
        if (sent == -1 && errno == EINTR)
            continue;
        if (sent == -1) {
            log_event("send fd=%d: %s", c->fd, strerror(errno));
            conn_close(c);
            return -1;
        }
        stats_echoed(&stats, (unsigned long long)sent);
        log_trace("send fd=%d %zd bytes", c->fd, sent);
    }
    if (c->peer_done) {
        conn_close(c);  /* FD_CLOSE: everything is echoed */
        return -1;
    }
    return 0;
}

/* [S7] The realtime queue was full and the kernel raised SIGIO instead:
 * some events are lost, we do not know which (TLPI 63.3.2). The signals
 * still queued are stale hints now, so drop them, then ask poll() about
 * every socket and handle what it reports as if it were a message. */
static void on_overflow(int listen_fd)
{
    const struct timespec no_wait = {0, 0};
    sigset_t io_only;
    int dropped = 0, n = 0;

    sigemptyset(&io_only);
    sigaddset(&io_only, io_signal);
    while (sigtimedwait(&io_only, NULL, &no_wait) == io_signal)
        dropped++;
    if (errno != EAGAIN && errno != EINTR)
        die("sigtimedwait");
    log_event("signal queue overflow: rescanning (%d queued dropped)",
              dropped);

    struct pollfd *set = calloc(stats_current(&stats) + 1, sizeof(*set));
    if (set == NULL)
        die("calloc(%d pollfd)", stats_current(&stats) + 1);
    set[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    for (int fd = 0; fd < fd_table_size; fd++) {
        struct conn *c = conn_by_fd[fd];
        if (c == NULL)
            continue;
        set[n].fd = fd;  /* POLLOUT only while an echo waits to be sent */
        set[n++].events = POLLIN | (buf_empty(&c->echo) ? 0 : POLLOUT);
    }
    while (poll(set, n, 0) == -1)
        if (errno != EINTR)
            die("poll(%d fds)", n);
    for (int i = 0; i < n; i++)
        if (set[i].revents != 0)
            on_event(listen_fd, set[i].fd, set[i].revents);
    free(set);
}

/* Win32: WSAAsyncSelect(s, hwnd, 0, 0), then closesocket. Clearing O_ASYNC
 * stops new messages; those already queued stay (PITFALLS 6) and reach
 * on_event later, which finds no client, or a new one: both harmless. */
static void conn_close(struct conn *c)
{
    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) == -1)  /* O_ASYNC off */
        warn_errno("fcntl(F_SETFL, fd=%d)", c->fd);
    if (close(c->fd) == -1)
        warn_errno("close(fd=%d)", c->fd);
    conn_by_fd[c->fd] = NULL;
    int now = stats_client_closed(&stats);
    log_event("close fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    buf_free(&c->echo);
    free(c);
}

/* [S8] Close every client and the listener. Signals still queued for them
 * die with the process: nothing to drain. */
static void shutdown_all(int listen_fd)
{
    for (int fd = 0; fd < fd_table_size; fd++)
        if (conn_by_fd[fd] != NULL)
            conn_close(conn_by_fd[fd]);
    free(conn_by_fd);
    if (fcntl(listen_fd, F_SETFL, O_NONBLOCK) == -1)
        warn_errno("fcntl(F_SETFL, listen fd=%d)", listen_fd);
    if (close(listen_fd) == -1)
        warn_errno("close(listen fd=%d)", listen_fd);
}
