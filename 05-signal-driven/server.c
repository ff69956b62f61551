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
 *   [S1] setup_messages, setup_stop, setup_listener: block the messages
 *        (SIGINT/SIGTERM among them); socket/bind/listen; arm O_ASYNC
 *   [S2] event_loop: sigwaitinfo() takes the next message      (GetMessage)
 *        on_message, on_event: si_fd is the socket, si_band the event
 *        (DispatchMessage)
 *  [S2a] SIGIO, the queue overflowed: on_overflow drops the queued hints
 *        and poll()s every socket
 *   [S3] on_accept: accept until EAGAIN; conn_open arms each client and
 *        reads it once                                      (Win32: FD_ACCEPT)
 *   [S4] on_readable: recv until EAGAIN or the backlog is full, echo as we
 *        go                                                   (Win32: FD_READ)
 *   [S5] on_writable: send the backlog; POLLOUT comes when there is room
 *                                                            (Win32: FD_WRITE)
 *   [S6] conn_close: O_ASYNC off, close                      (Win32: FD_CLOSE)
 *   [S7] SIGINT/SIGTERM are one more message: on_stop; shutdown_all
 *   [S8] a POSIX timer's signal is one more message, at the oldest client's
 *        idle deadline: on_idle_timer, close_idle          (Win32: WM_TIMER)
 *
 * Win32: WSAAsyncSelect(s, hwnd, WM_SOCKET, FD_ACCEPT|FD_READ|FD_WRITE|
 * FD_CLOSE) is fcntl(F_SETOWN_EX, F_SETSIG, O_ASYNC); the window's message
 * queue is this thread's queue of pending signals; wParam is si_fd;
 * WSAGETSELECTEVENT(lParam) is si_band (POLLIN ~ FD_READ and FD_ACCEPT,
 * POLLOUT ~ FD_WRITE, POLLHUP/POLLERR ~ FD_CLOSE); WSAGETSELECTERROR(lParam)
 * is getsockopt(SO_ERROR); WSAAsyncSelect(s, hwnd, 0, 0) is clearing O_ASYNC;
 * SetTimer/WM_TIMER is setitimer/SIGALRM (the EMFILE retry) and
 * timer_create/timer_settime with a signal of its own (the idle timer).
 *
 * Try:  ./server -v                      then: nc 127.0.0.1 9005
 *       prlimit --sigpending=8 ./server -v  and 50 clients: overflow
 * gdb:  make gdb M=05   (walkthrough.gdb: break on_message, on_accept,
 *       conn_open, on_readable, on_writable, conn_close, on_stop;
 *       by hand: --idle-timeout 5 and break close_idle).
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

#define DEFAULT_PORT 9005
#define DEFAULT_MAX_CLIENTS 1000
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define IO_SIGNAL_OFFSET 1      /* our message: SIGRTMIN + 1 ("SIG35") */
#define TIMER_SIGNAL_OFFSET 2   /* the idle timer's: SIGRTMIN + 2 ("SIG36") */
#define FD_TABLE_MAX (1 << 20)  /* conn_by_fd never grows past this */

/* One client, found from a message's si_fd in conn_by_fd. */
struct conn {
    int fd;
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    struct conn *prev, *next;   /* the open clients */
    struct idle_entry idle;     /* its place in idle_clients */
};

static struct server_opts opts;
static struct stats stats;
static int listen_fd = -1;

/* The messages: io_signal carries one socket event, SIGIO says the queue
 * overflowed, SIGALRM is our timer (WM_TIMER), SIGINT/SIGTERM ask us to
 * stop, timer_signal is the idle timer's. All are blocked and read only by
 * sigwaitinfo() in event_loop. */
static int io_signal;
static int timer_signal;
static sigset_t messages;
static timer_t idle_timer;      /* [S8] raises timer_signal once, when set */
static bool timer_made;         /* idle_timer exists: timer_create worked */
static bool timer_armed;        /* set for the oldest client's deadline */

/* Connections by descriptor number: a message's si_fd indexes it. */
static struct conn **conn_by_fd;
static int fd_table_size;

static struct conn *clients;    /* every open client, for shutdown */

static long long accept_paused_until;  /* EMFILE: clock_ms() to resume, or 0 */
/* on_accept stopped before EAGAIN (-c, EMFILE): clients may wait in the
 * backlog, and no new message will come for them. */
static bool backlog_waiting;
static struct idle_list idle_clients; /* [S8] least recently active first */

static void setup_messages(void);
static void setup_stop(void);
static int setup_listener(void);
static void event_loop(void);
static void on_message(const siginfo_t *si);
static bool on_event(int fd, long band);
static void on_accept(void);
static void conn_open(int fd, const char *peer);
static bool on_hangup(struct conn *c, long band);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static void conn_close(struct conn *c);
static void on_idle_timer(void);
static void close_idle(void);
static void on_stop(const siginfo_t *si);
static void shutdown_all(void);
static void on_overflow(void);
static const char *async_select(int fd);
static bool make_idle_timer(void);
static void arm_idle_timer(void);
static bool accepting(void);

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
    idle_init(&idle_clients, opts.idle_timeout);

    /* send() to a client that reset the connection must return EPIPE, not
     * kill us with SIGPIPE (we also pass MSG_NOSIGNAL; this covers all). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    setup_messages();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] The messages, blocked before any socket can raise one: an unblocked
 * realtime signal or SIGIO would kill us (default action: terminate). A
 * threaded server would block them before creating any thread, which
 * inherits the mask. Then the table that turns a message's si_fd into its
 * client: as long as the descriptor limit, so every descriptor has a slot. */
static void setup_messages(void)
{
    io_signal = SIGRTMIN + IO_SIGNAL_OFFSET;  /* SIGRTMIN is glibc's, +1 ours */
    sigemptyset(&messages);
    sigaddset(&messages, SIGIO);
    sigaddset(&messages, SIGALRM);
    sigaddset(&messages, io_signal);
    timer_signal = SIGRTMIN + TIMER_SIGNAL_OFFSET;
    sigaddset(&messages, timer_signal);
    if (sigprocmask(SIG_BLOCK, &messages, NULL) == -1)
        die("sigprocmask(SIG_BLOCK)");
    /* [S8] The idle timer, a POSIX timer whose expiry is a message, made
     * now while our queue is empty (none with --idle-timeout 0). Win32:
     * SetTimer(hwnd, id, ms, NULL), whose WM_TIMER GetMessage returns. */
    if (opts.idle_timeout > 0)
        make_idle_timer();  /* false: arm_idle_timer tries again */

    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == -1)
        die("getrlimit(RLIMIT_NOFILE)");
    fd_table_size = nofile.rlim_cur > FD_TABLE_MAX ? FD_TABLE_MAX
                                                   : (int)nofile.rlim_cur;
    conn_by_fd = calloc(fd_table_size, sizeof(*conn_by_fd));
    if (conn_by_fd == NULL)
        die("calloc(%d fds)", fd_table_size);
}

/* [S1] SIGINT/SIGTERM, read as messages: blocked, so never delivered the
 * usual way, and added to the set sigwaitinfo() waits for. No handler, no
 * flag to test before the wait, so no race with it either. Win32: WM_CLOSE
 * or PostQuitMessage, one more message in the queue GetMessage reads. */
static void setup_stop(void)
{
    sigset_t stop;
    int rc;

    if ((rc = sig_block_stop(NULL)) != 0)
        die_code(rc, "pthread_sigmask");
    sig_stop_set(&stop);
    if (sigorset(&messages, &messages, &stop) == -1)
        die("sigorset");
}

/* [S1] socket/bind/listen, armed for messages, then the one line on stdout
 * (last: a test may count our descriptors as soon as it reads it).
 * Nonblocking: a message is a hint, and a client may reset between its
 * message and our accept(); a blocking accept() would then wait for the
 * next client. */
static int setup_listener(void)
{
    int fd = net_listen(opts.host, opts.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    /* Win32: WSAAsyncSelect(listen, hwnd, WM_SOCKET, FD_ACCEPT) */
    const char *failed = async_select(fd);
    if (failed != NULL)
        die("%s(listen fd=%d)", failed, fd);
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] The message loop. Unlike a window's FIFO queue, pending signals come
 * lowest number first: SIGINT, SIGTERM and SIGIO overtake queued socket
 * events, so a stop or an overflow is seen at once. */
static void event_loop(void)
{
    siginfo_t si;

    while (!sig_stop_requested()) {
        /* A client left, or the timer (WM_TIMER) ended an EMFILE pause: the
         * backlog may hold clients for whom no new message will come. */
        if (backlog_waiting && accepting()) {
            backlog_waiting = false;  /* on_accept sets it again if need be */
            on_accept();
        }
        arm_idle_timer();
        /* Win32: GetMessage - wait for this thread's next message */
        int sig = sigwaitinfo(&messages, &si);
        if (sig == -1 && errno == EINTR)
            continue;  /* EINTR: woken by a signal outside the set (gdb) */
        if (sig == -1)
            die("sigwaitinfo");
        if (sig == SIGINT || sig == SIGTERM)
            on_stop(&si);
        else if (sig == SIGIO)
            on_overflow();  /* the queue overflowed: [S2a] */
        else if (sig == SIGALRM)
            accept_paused_until = 0;  /* WM_TIMER: the EMFILE pause is over */
        else if (sig == timer_signal)
            on_idle_timer();  /* WM_TIMER: the idle timer */
        else
            on_message(&si);
    }
}

/* Win32: DispatchMessage - the window procedure's WM_SOCKET case.
 * From the kernel si_code is POLL_IN, POLL_OUT, POLL_ERR or POLL_HUP;
 * kill -35 from a shell gives SI_USER (<= 0) and no socket. */
static void on_message(const siginfo_t *si)
{
    if (si->si_code <= 0)
        return;
    log_trace("message fd=%d band=%#lx%s%s%s%s", si->si_fd, si->si_band,
              si->si_band & POLLIN ? " POLLIN" : "",
              si->si_band & POLLOUT ? " POLLOUT" : "",
              si->si_band & POLLHUP ? " POLLHUP" : "",
              si->si_band & POLLERR ? " POLLERR" : "");
    on_event(si->si_fd, si->si_band);
}

/* One socket event, from a message or the poll() rescan: a hint, not a
 * promise. Signals are queued per event, not per socket, and outlive
 * close(): the fd may be handled already, closed, or a new client under a
 * reused number, and siginfo has no room for a generation count to tell.
 * So every handler reads or sends until EAGAIN; "nothing there" is normal.
 * Returns false when there is no client (any more) under fd. */
static bool on_event(int fd, long band)
{
    if (fd == listen_fd) {                    /* Win32: FD_ACCEPT */
        if (!backlog_waiting)
            on_accept();  /* else stopped: event_loop calls it again */
        return true;
    }
    struct conn *c = (fd >= 0 && fd < fd_table_size) ? conn_by_fd[fd] : NULL;
    if (c == NULL) {
        log_trace("message fd=%d: no such client (closed already)", fd);
        return false;
    }
    if ((band & (POLLERR | POLLHUP)) && !on_hangup(c, band))  /* FD_CLOSE */
        return false;
    /* Any message may mean room to send: try a pending echo (FD_WRITE).
     * Then read, unless the backlog is still full (backpressure). */
    if (!on_writable(c))
        return false;
    return on_readable(c);
}

/* [S3] Accepts the clients waiting in the listen backlog, until EAGAIN or
 * -c: one message may stand for several connections (or none: a stale
 * hint). Messages are edge-like: stopped before EAGAIN, at -c or in an
 * EMFILE pause, we leave clients in the backlog that no new message will
 * announce, so backlog_waiting asks event_loop to call us again. For the
 * same reason there is no ACCEPT_BATCH per turn as in 04: a batch cut short
 * would leave clients that nothing announces while the loop sleeps. */
static void on_accept(void)
{
    while (accepting()) {
        char peer[ADDR_TEXT_MAX];
        int fd = net_accept(listen_fd, SOCK_NONBLOCK | SOCK_CLOEXEC, peer,
                            sizeof(peer));
        if (fd == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;  /* EAGAIN: nobody is waiting any more */
        if (fd == -1 && net_accept_exhausted(errno)) {
            /* EMFILE: out of descriptors. Retrying at once would spin
             * (NOTES §7.1). Resume when one of ours leaves, or when a
             * one-shot timer fires, in case none of ours ever does. */
            warn_errno("accept (pausing %d ms)", EMFILE_PAUSE_MS);
            accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
            /* Win32: SetTimer - a WM_TIMER message (SIGALRM) comes later */
            struct itimerval once = {.it_value = {0, EMFILE_PAUSE_MS * 1000}};
            if (setitimer(ITIMER_REAL, &once, NULL) == -1)
                die("setitimer");
            backlog_waiting = true;
            return;
        }
        if (fd == -1 && (errno == EINTR || net_accept_transient(errno)))
            continue;  /* one aborted connection: try the next */
        if (fd == -1)
            die("accept");  /* EBADF, EINVAL...: a bug, not a client */
        conn_open(fd, peer);
    }
    /* -c reached: newcomers wait in the listen backlog */
    log_event("%d clients: not accepting until one leaves",
              stats_current(&stats));
    backlog_waiting = true;
}

/* [S3] A new client: armed for messages, into the table and the list,
 * then read once. */
static void conn_open(int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("accept fd=%d: no memory, closing", fd);
        goto fail;
    }
    if (fd >= fd_table_size) {  /* the limit was raised while we ran */
        warn("accept: fd=%d beyond the fd table: closing", fd);
        goto fail;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%d)", fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    /* Win32: WSAAsyncSelect(c, hwnd, WM_SOCKET, FD_READ|FD_WRITE|FD_CLOSE) */
    const char *failed = async_select(fd);
    if (failed != NULL) {
        warn_errno("%s(fd=%d): closing", failed, fd);
        goto fail;
    }
    conn_by_fd[fd] = c;
    c->next = clients;
    if (clients != NULL)
        clients->prev = c;
    clients = c;
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);
    /* Bytes that came before O_ASYNC was set raised no signal (NOTES
     * §7.6) and none will come for them: read now. (Winsock posts FD_WRITE
     * after accept; Linux sends nothing until something happens.) */
    on_readable(c);
    return;
fail:
    if (c != NULL)
        buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
    free(c);
    close(fd);
}

/* POLLERR: the connection failed, and SO_ERROR says why (a reset discards
 * unread data). Win32: WSAGETSELECTERROR(lParam), FD_CLOSE with an error.
 * Reading SO_ERROR clears it: 0 means a recv() or send() took it already,
 * and the client goes on. POLLHUP: both directions are shut, so nothing we
 * send can arrive (a client's FIN alone is POLLIN and recv() == 0), as in
 * 03 and 04. Returns false when the client was closed. */
static bool on_hangup(struct conn *c, long band)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (band & POLLERR) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
            err = errno;
        if (err == 0)
            return true;
        log_event("fd=%d POLLERR: %s", c->fd, strerror(err));
    } else {
        log_event("fd=%d POLLHUP: connection gone", c->fd);
    }
    conn_close(c);
    return false;
}

/* [S4] FD_READ: recv until EAGAIN, echoing as we go: a new message comes
 * only for bytes that arrive later. Stops at a full backlog; on_event
 * calls us again once it drains, as no message will come for the bytes
 * still waiting in the kernel. Returns false when the client was closed. */
static bool on_readable(struct conn *c)
{
    while (!c->peer_done && !buf_full(&c->echo)) {
        ssize_t n = buf_fill(&c->echo, c->fd);
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;  /* EAGAIN: all read; wait for the next message */
        if (n == -1 && errno == EINTR)
            continue;  /* EINTR: a signal outside the set; recv again */
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
            idle_touch(&idle_clients, &c->idle, clock_ms());  /* [S8] */
            log_trace("recv fd=%d %zd bytes", c->fd, n);
        }
        if (!on_writable(c))
            return false;
        if (buf_full(&c->echo))
            log_event("fd=%d backlog full: not reading until it drains",
                      c->fd);
    }
    return true;
}

/* [S5] FD_WRITE: sends what is pending until it is all gone or send() says
 * EAGAIN; then the kernel sends a POLLOUT message once there is room again,
 * and on_event reads again if the backlog was full. Returns false when the
 * client was closed. */
static bool on_writable(struct conn *c)
{
    while (!buf_empty(&c->echo)) {
        ssize_t sent = buf_drain(&c->echo, c->fd);
        if (sent == -1 && errno == EINTR)
            continue;
        if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;  /* full: a POLLOUT message (FD_WRITE) will come */
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
    return true;
}

/* [S6] Win32: WSAAsyncSelect(s, hwnd, 0, 0), then closesocket. Clearing
 * O_ASYNC stops new messages; those already queued stay (NOTES §7.6) and
 * reach on_event later, which finds no client, or a new one: both
 * harmless. So the conn can be freed at once. */
static void conn_close(struct conn *c)
{
    if (fcntl(c->fd, F_SETFL, O_NONBLOCK) == -1)  /* O_ASYNC off */
        warn_errno("fcntl(F_SETFL, fd=%d)", c->fd);
    if (close(c->fd) == -1)
        warn_errno("close(fd=%d)", c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    accept_paused_until = 0;  /* a descriptor and a slot are free */
    conn_by_fd[c->fd] = NULL;
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

/* [S8] WM_TIMER: the idle timer's message. The oldest client's deadline
 * has come (or, if it was touched since, the deadline it had then): close
 * whoever has expired; the loop re-arms the timer for the new oldest. Its
 * signal number is above io_signal, and pending signals come lowest number
 * first, so under a flood of socket messages the timer waits its turn:
 * as Windows makes WM_TIMER only when the queue has nothing else. The
 * kernel keeps a queue entry for each POSIX timer, so a full signal queue
 * (RLIMIT_SIGPENDING) never loses it. */
static void on_idle_timer(void)
{
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
        log_info("idle fd=%d peer=%s: closed after %d s", c->fd, c->peer,
                 opts.idle_timeout);
        stats_closed_idle(&stats);
        conn_close(c);
    }
}

/* [S7] SIGINT/SIGTERM, one more message: the loop ends after it. */
static void on_stop(const siginfo_t *si)
{
    log_event("signal %d from pid %d: shutting down", si->si_signo,
              (int)si->si_pid);
    sig_request_stop();
}

/* [S7] Close every client (an echo still unsent is dropped), then the
 * table; the listener's O_ASYNC goes off too (main closes it). Signals
 * still queued for them die with the process: nothing to drain. */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    while (clients != NULL)
        conn_close(clients);
    free(conn_by_fd);
    if (timer_made && timer_delete(idle_timer) == -1)  /* Win32: KillTimer */
        warn_errno("timer_delete");
    if (fcntl(listen_fd, F_SETFL, O_NONBLOCK) == -1)
        warn_errno("fcntl(F_SETFL, listen fd=%d)", listen_fd);
}

/* [S2a] SIGIO: the realtime queue was full and the kernel raised SIGIO
 * instead: some events are lost, we do not know which (TLPI 63.3.2). The
 * signals still queued are stale hints now, so drop them, then ask poll()
 * about every socket and handle what it reports as if it were a message. */
static void on_overflow(void)
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

    struct pollfd *set;
    while ((set = calloc(stats_current(&stats) + 1, sizeof(*set))) == NULL)
        back_off("calloc(%d pollfd)", stats_current(&stats) + 1);
    set[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
    for (struct conn *c = clients; c != NULL; c = c->next) {
        set[n].fd = c->fd;  /* POLLOUT only while an echo waits to be sent */
        set[n++].events = POLLIN | (buf_empty(&c->echo) ? 0 : POLLOUT);
    }
    while (poll(set, n, 0) == -1) {
        if (errno == ENOMEM)
            back_off("poll(%d fds)", n);  /* short of memory for now */
        else if (errno != EINTR)
            die("poll(%d fds)", n);  /* EFAULT, EINVAL: a bug */
    }
    for (int i = 0; i < n; i++)
        if (set[i].revents != 0)
            on_event(set[i].fd, set[i].revents);
    free(set);
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

/* [S8] Makes the idle timer. timer_create reserves the queue entry its
 * expiry will use (so a full queue never loses it), from the budget the
 * socket signals share: RLIMIT_SIGPENDING, counted for every process of
 * the user. When other processes have spent it: EAGAIN. That is no more a
 * reason to die than a full queue is later (SIGIO): we run without the
 * timer, idle clients stay, and arm_idle_timer tries again every turn.
 * Returns false while there is no timer. No Win32 counterpart: SetTimer
 * makes its timer each time, and reserves nothing. */
static bool make_idle_timer(void)
{
    static bool warned;  /* once per run of failures, not once per turn */
    struct sigevent expiry = {.sigev_notify = SIGEV_SIGNAL,
                              .sigev_signo = timer_signal};

    if (timer_create(CLOCK_MONOTONIC, &expiry, &idle_timer) == 0) {
        if (warned)
            log_info("timer_create: the idle timer is made at last");
        timer_made = true;
        return true;
    }
    if (errno == EINVAL)
        die("timer_create");  /* a bad clock or signal: a bug */
    if (!warned)  /* EAGAIN (the queue), ENOMEM: a condition */
        warn_errno("timer_create (no idle timeouts until it works)");
    warned = true;
    return false;
}

/* [S8] Arms the idle timer for the oldest client's deadline, unless it is
 * armed already. While armed, the oldest deadline can only have moved
 * later (a touch, a close, a newcomer at the tail), so the timer fires on
 * time or early; early, close_idle finds nobody and this re-arms it: one
 * timer_settime per expiry, not one per message. One-shot, absolute, on
 * CLOCK_MONOTONIC, the clock clock_ms() reads. Why not a periodic tick
 * (say every second, closing whoever has expired)? It would wake an idle
 * server every second and close up to a second late; this one wakes only
 * when someone may be due, and never with --idle-timeout 0. */
static void arm_idle_timer(void)
{
    if (timer_armed)
        return;
    long long now = clock_ms();
    long long left = idle_next_ms(&idle_clients, now);  /* -1: nobody */
    if (left == -1)
        return;
    if (!timer_made && !make_idle_timer())
        return;  /* the queue is still full: try again next turn */
    long long at = now + left;
    struct itimerspec when = {
        .it_value = {at / 1000, at % 1000 * 1000000L}};
    if (timer_settime(idle_timer, TIMER_ABSTIME, &when, NULL) == -1)
        die("timer_settime");
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
