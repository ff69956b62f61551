/* 03-poll/win32.c - the poll model in Winsock: the Win32 twin of server.c.
 * One thread hands WSAPoll() an array of (socket, events wanted) slots,
 * then serves the slots marked ready.
 *
 * The notes go from select straight to WSAEventSelect, but Windows has
 * poll() too: WSAPoll() (Vista and later), with the same struct pollfd
 * (WSAPOLLFD: a SOCKET, events, revents) and the same POLL* names. The
 * kernel answers in revents, so the array survives the call; no FD_SETSIZE.
 * What remains of select's cost remains too: every turn hands over the
 * whole array, and every slot is scanned. Same shape as poll(2), three
 * differences this server meets (tested under Wine 8.0; see the README):
 *   - POLLHUP means "the client sent FIN", not "both directions are shut",
 *     and no events mask turns it off: on_event, park.
 *   - Nothing interrupts WSAPoll(): no signal, no EINTR, no ppoll(), and
 *     only sockets in the array (no pipe, no eventfd). Ctrl-C wakes it with
 *     a datagram on a socket pair of our own, in slot 0: setup_stop.
 *   - A socket that is not open gets POLLNVAL, and under Wine the wait goes
 *     on (not counted as ready); Linux answers POLLNVAL at once.
 *
 *   [S1] setup_stop: a UDP socket pair, slot 0; setup_listener: slot 1
 *   [S2] event_loop: WSAPoll() waits on the WSAPOLLFD array (Linux: ppoll)
 *   [S3] slot 1 has POLLRDNORM: on_accept appends a slot per client
 *   [S4] POLLRDNORM, or POLLHUP (the FIN): on_readable recv()s, sends back
 *   [S5] POLLWRNORM (asked only while output is pending): on_writable
 *   [S6] EOF, POLLERR/POLLNVAL: conn_close moves the last slot in
 *   [S7] Ctrl-C: on_stop's datagram ends WSAPoll(); close every client
 *   [S8] after every turn, close_idle: clients idle --idle-timeout seconds;
 *        WSAPoll's timeout is the time left until the oldest expires
 *
 * Linux: ppoll() over int descriptors, the listener in slot 0, SIGTERM
 * unblocked only inside the wait, and POLLHUP closes the client at once.
 *
 * Try:  make run-win32 M=03 ARGS="-v"    then: nc 127.0.0.1 9003 (twice)
 *       make run-win32 M=03 ARGS="-vv"   every WSAPoll() turn, every byte
 *       diff -u 03-poll/server.c 03-poll/win32.c
 * gdb:  WINEPREFIX=$PWD/build/wine winedbg --gdb build/win32/03-poll/win32.exe
 *       then: break conn_close, continue, print pfds[0]@nslots (README)
 */
#include <stdbool.h>
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

#define DEFAULT_PORT 9003
#define DEFAULT_MAX_CLIENTS 1000
#define EMFILE_PAUSE_MS 100     /* out of sockets: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */
#define SLOTS_INITIAL 64        /* pollfd slots; the array doubles as needed */
#define PARK_MS 20              /* a parked slot's retry: see park() */
#define WAKE_SLOT 0             /* Ctrl-C's datagram arrives here */
#define LISTEN_SLOT 1

/* One client, in slot pfds[c->slot] of the array WSAPoll() reads. */
struct conn {
    SOCKET fd;
    ULONG slot;                 /* index in pfds[] and slot_conns[] */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    struct idle_entry idle;     /* its place in idle_clients */
};

static struct server_opts opts;
static struct stats stats;
static SOCKET listen_fd = INVALID_SOCKET;
static SOCKET wake_rx = INVALID_SOCKET; /* in slot 0: setup_stop */
static SOCKET wake_tx = INVALID_SOCKET; /* on_stop sends on it */

/* The array WSAPoll() reads: slot 0 is the wake-up socket, slot 1 the
 * listener, slots 2 .. nslots-1 the clients, with no holes (see
 * conn_close). Unlike an fd_set it survives the call: WSAPoll() writes
 * only revents. slot_conns[i] is pfds[i]'s client. The count is a ULONG
 * (Linux: nfds_t). */
static WSAPOLLFD *pfds;
static struct conn **slot_conns;
static ULONG nslots, slots_cap;
static long long accept_paused_until; /* EMFILE: clock_ms() to resume, or 0 */
static struct idle_list idle_clients; /* [S8] least recently active first */
static long long parked_until;  /* clock_ms() to put parked slots back, or 0 */

static void setup_stop(void);
static SOCKET setup_listener(void);
static void event_loop(void);
static bool on_event(ULONG i);
static void on_accept(void);
static void conn_open(SOCKET fd, const char *peer);
static void on_hangup(struct conn *c, short revents);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static void watch(struct conn *c);
static void park(struct conn *c);
static void unpark_all(void);
static void conn_close(struct conn *c);
static void close_idle(void);
static void on_stop(void *arg);
static void shutdown_all(void);
static bool accepting(void);
static int wait_timeout(void);
static int slots_grow(void);

static const struct model_info model = {
    .program = "03-poll/win32.exe",
    .summary = "Winsock WSAPoll(): one thread, a growing WSAPOLLFD array "
               "compacted on close",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = 100000,
    .extra = NULL,
    .extra_count = 0,
};

int main(int argc, char **argv)
{
    WSADATA wsa;
    int rc;

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("poll", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);

    /* Every Winsock program starts here: load Winsock 2.2 (the notes'
     * first call). Linux has no such step, and Winsock no SIGPIPE to
     * ignore: a send to a reset peer just fails (WSAECONNRESET). */
    if ((rc = WSAStartup(MAKEWORD(2, 2), &wsa)) != 0)
        die_code(rc, "WSAStartup");

    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    closesocket(listen_fd);
    stats_print_summary(&stats);
    WSACleanup();
    return EXIT_SUCCESS;
}

/* [S1] Ctrl-C runs the console control handler on a thread of its own
 * (sig_win32.c): it sets the stop flag, then calls on_stop. On Linux the
 * signal itself ends the wait: ppoll() fails with EINTR. WSAPoll() has no
 * EINTR and takes nothing but sockets, so the wake-up must be a socket:
 * the "self-pipe" made of sockets, as Windows programs do. wake_rx sits in
 * slot 0 asking POLLIN; on_stop sends one datagram to it through wake_tx,
 * and WSAPoll() returns. No race either: the flag is set before the
 * datagram is sent, and a datagram sent before the wait is still queued
 * when WSAPoll() looks (what Linux needs ppoll()'s atomic mask for).
 *
 * Why a UDP pair: no listen, no accept, no third socket; each end is
 * connect()ed to the other, and a connected UDP socket takes datagrams
 * from its peer only (not from another program on this host). A TCP
 * pair would work as well and take more steps. A WSAPoll() timeout that
 * wakes every few hundred ms to test the flag works too (02's twin does
 * that with select()), but it spends a turn on nothing, over and over. */
static void setup_stop(void)
{
    struct sockaddr_in rx_addr = {.sin_family = AF_INET}, tx_addr;
    int len = sizeof(rx_addr);

    rx_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  /* port 0: any */
    wake_rx = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    wake_tx = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    if (wake_rx == INVALID_SOCKET || wake_tx == INVALID_SOCKET)
        die("socket(AF_INET, SOCK_DGRAM)");
    if (bind(wake_rx, (struct sockaddr *)&rx_addr, len) == SOCKET_ERROR ||
        getsockname(wake_rx, (struct sockaddr *)&rx_addr, &len) ==
            SOCKET_ERROR ||
        connect(wake_tx, (struct sockaddr *)&rx_addr, len) == SOCKET_ERROR)
        die("wake-up socket: bind/connect to 127.0.0.1");
    len = sizeof(tx_addr);  /* connect() bound wake_tx: where is it? */
    if (getsockname(wake_tx, (struct sockaddr *)&tx_addr, &len) ==
            SOCKET_ERROR ||
        connect(wake_rx, (struct sockaddr *)&tx_addr, len) == SOCKET_ERROR)
        die("wake-up socket: connect back");
    if (slots_grow() == -1)
        die("allocating %d pollfd slots", SLOTS_INITIAL);
    pfds[WAKE_SLOT] = (WSAPOLLFD){.fd = wake_rx, .events = POLLIN};
    slot_conns[WAKE_SLOT] = NULL;
    nslots = 1;
    sig_on_stop(on_stop, NULL);
    if (sig_catch_stop() == -1)
        die("SetConsoleCtrlHandler");
}

/* [S1] socket/bind/listen, slot 1 of the array, then the one line on
 * stdout. Nonblocking: a client may reset between WSAPoll()'s POLLRDNORM
 * and our accept(); a blocking accept() would then wait for the next
 * client. Winsock has no SOCK_NONBLOCK: ioctlsocket(FIONBIO) afterwards. */
static SOCKET setup_listener(void)
{
    SOCKET fd = net_listen(opts.host, opts.port, 0);
    if (fd == INVALID_SOCKET)
        die("listen on %s port %d", opts.host, opts.port);
    if (net_set_nonblock(fd, true) == -1)  /* ioctlsocket(FIONBIO) */
        die("ioctlsocket(FIONBIO)");
    pfds[LISTEN_SLOT] = (WSAPOLLFD){.fd = fd, .events = POLLIN};
    slot_conns[LISTEN_SLOT] = NULL;
    nslots = 2;
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] One turn: set the listener's slot, wait, serve what is ready.
 *
 * WSAPoll() and not ppoll(): there is no signal mask to install, and no
 * need for one. The loop tests the stop flag, then waits; a Ctrl-C that
 * lands between the two has already queued its datagram in slot 0, so the
 * wait ends at once. The timeout is in milliseconds, -1 for none, as with
 * poll(2). POLLIN is POLLRDNORM | POLLRDBAND here, and WSAPoll() answers
 * POLLRDNORM: the tests below use masks, so both spellings work. */
static void event_loop(void)
{
    while (!sig_stop_requested()) {
        /* events = 0: the slot stays, the listener is not watched. */
        pfds[LISTEN_SLOT].events = accepting() ? POLLIN : 0;
        if (parked_until != 0 && clock_ms() >= parked_until)
            unpark_all();
        int ready = WSAPoll(pfds, nslots, wait_timeout());
        if (ready == SOCKET_ERROR)
            die("WSAPoll");  /* WSAENOBUFS, or a bug (WSAEFAULT, WSAEINVAL) */
        log_trace("poll: %d ready of %lu slots", ready,
                  (unsigned long)nslots);
        if (ready > 0 && pfds[WAKE_SLOT].revents != 0)
            continue;  /* on_stop's datagram: the loop tests the flag */
        /* ready == 0: a timer ran out (the oldest client's idle deadline,
         * the EMFILE retry, parked slots): nobody is ready. */
        if (ready > 0 && (pfds[LISTEN_SLOT].revents & POLLIN))
            on_accept();  /* first: appended slots get revents = 0 */
        for (ULONG i = LISTEN_SLOT + 1; ready > 0 && i < nslots;)
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
 * the notes' swap-with-last removal (jicun.liu[qw] = the last; qw++).
 *
 * POLLHUP is where WSAPoll() parts from poll(2). Linux sets it when both
 * directions are shut, and server.c closes at once. Windows sets it when
 * the connection "was either disconnected or aborted" (MSDN), which
 * includes a client's FIN after shutdown(SHUT_WR), the half-close: closing
 * then would drop the echo still owed. Under Wine (tested) a FIN gives
 * POLLHUP instead of POLLRDNORM once the bytes before it have been read,
 * asked or not, on every call; a reset gives POLLERR | POLLHUP. So here
 * POLLERR means "gone", and POLLHUP alone means "read to the end": recv()
 * returns what is left, then 0, and on_readable takes that as any EOF. */
static bool on_event(ULONG i)
{
    struct conn *c = slot_conns[i];
    short revents = pfds[i].revents;
    bool reading = pfds[i].events & POLLIN;

    if (pfds[i].fd == INVALID_SOCKET)
        return true;  /* parked: WSAPoll() skipped it (see park) */
    if (revents & (POLLERR | POLLNVAL)) {
        on_hangup(c, revents);
        return false;
    }
    if ((revents & (POLLIN | POLLHUP)) && reading && !on_readable(c))
        return false;
    if ((revents & POLLOUT) && !buf_empty(&c->echo))
        return on_writable(c);
    if ((revents & POLLHUP) && !reading)
        park(c);  /* FIN, not reading, no room to send: nothing to do */
    return true;
}

/* [S3] Accepts the clients waiting in the listen backlog, up to
 * ACCEPT_BATCH this turn and -c in all. */
static void on_accept(void)
{
    for (int i = 0; i < ACCEPT_BATCH && accepting(); i++) {
        char peer[ADDR_TEXT_MAX], why[300];
        SOCKET fd = net_accept(listen_fd, 0, peer, sizeof(peer));
        int err = fd == INVALID_SOCKET ? WSAGetLastError() : 0;
        if (err == WSAEWOULDBLOCK)
            return;  /* nobody is waiting any more */
        if (err != 0 && net_accept_exhausted(err)) {
            /* WSAEMFILE/WSAENOBUFS: out of sockets or memory. The listener
             * stays readable, so the wait would return at once and accept()
             * fail again: a busy loop (NOTES §7.1). Stop watching it until
             * a client leaves, or for EMFILE_PAUSE_MS, in case no client of
             * ours frees one. */
            warn("accept (pausing %d ms): %s", EMFILE_PAUSE_MS,
                 err_describe(err, why, sizeof(why)));
            accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
            return;
        }
        if (err != 0 && (err == WSAEINTR || net_accept_transient(err)))
            continue;  /* one aborted connection: try the next */
        if (err != 0)
            die_code(err, "accept");  /* WSAENOTSOCK...: a bug */
        conn_open(fd, peer);
    }
}

/* [S3] A new client: its conn, a slot at the end of the array (grown if
 * full). The socket inherits the listener's nonblocking mode (accept4's
 * SOCK_NONBLOCK on Linux). */
static void conn_open(SOCKET fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1 ||
        (nslots == slots_cap && slots_grow() == -1)) {
        warn("accept fd=%llu: no memory, closing", (unsigned long long)fd);
        if (c != NULL)
            buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
        free(c);
        closesocket(fd);
        return;
    }
    /* An urgent byte stays in line and is echoed like the rest. We never
     * ask POLLPRI: MSDN says Microsoft's provider does not support it
     * (Wine accepts it, tested). */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%llu)",
                   (unsigned long long)fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->slot = nslots++;
    pfds[c->slot] = (WSAPOLLFD){.fd = fd, .events = POLLIN};
    slot_conns[c->slot] = c;
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    int now = stats_client_opened(&stats);
    log_event("accept fd=%llu peer=%s clients=%d", (unsigned long long)fd,
              c->peer, now);
}

/* POLLERR and POLLNVAL: WSAPoll() reports them whether asked or not, and
 * neither leaves anything to echo. POLLERR (with POLLHUP): the connection
 * was reset or aborted. Windows keeps SO_ERROR for a failed connect(), and
 * after a reset it may well read 0 (under Wine it does, tested): then the
 * flag itself is the news. POLLNVAL: not an open socket, a bug here, since
 * conn_close never leaves one in the array. */
static void on_hangup(struct conn *c, short revents)
{
    int err = 0, len = sizeof(err);
    char why[300];

    if (revents & POLLNVAL) {
        warn("poll fd=%llu: POLLNVAL: not an open socket",
             (unsigned long long)c->fd);
    } else {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) ==
            SOCKET_ERROR)
            err = WSAGetLastError();
        log_event("fd=%llu POLLERR: %s", (unsigned long long)c->fd,
                  err != 0 ? err_describe(err, why, sizeof(why))
                           : "connection reset or aborted (SO_ERROR 0)");
    }
    conn_close(c);
}

/* [S4] WSAPoll() said POLLRDNORM (or POLLHUP: the FIN, see on_event): one
 * recv() will not block. Then send at once: most of the time the echo
 * leaves in this same turn. Returns false when the client was closed. */
static bool on_readable(struct conn *c)
{
    ssize_t n = buf_fill(&c->echo, c->fd);
    char why[300];

    if (n == SOCKET_ERROR) {
        int err = WSAGetLastError();
        if (err == WSAEWOULDBLOCK)
            return true;  /* "readable" was stale: nothing lost */
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
    return on_writable(c);
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
            break;  /* full: POLLWRNORM tells us when there is room */
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
        log_event("fd=%llu backlog %s", (unsigned long long)c->fd,
                  want_read ? "drained: reading again" : "full: not reading");
    pfds[c->slot].events = (want_read ? POLLIN : 0) |
                           (buf_empty(&c->echo) ? 0 : POLLOUT);
}

/* POLLHUP cannot be turned off: events = 0 does not stop it, and it stays
 * set (Wine, tested: after recv() returned 0 too). A client that sent FIN
 * and does not read its echo leaves us nothing to do (not reading; send
 * buffer full), yet every WSAPoll() would return at once with its POLLHUP:
 * a busy loop for as long as the client likes. So its slot is parked: the
 * socket is set to INVALID_SOCKET, a negative value that WSAPoll() skips
 * (MSDN; poll(2) skips fd = -1 alike), and put back PARK_MS later, when a
 * POLLWRNORM (room at last) or another POLLHUP says what to do. The slot
 * and its conn stay; c->fd keeps the socket. Wine writes POLLNVAL into a
 * skipped slot's revents, without counting it or ending the wait (tested):
 * on_event looks at the fd first. */
static void park(struct conn *c)
{
    pfds[c->slot].fd = INVALID_SOCKET;
    if (parked_until == 0)
        parked_until = clock_ms() + PARK_MS;
    log_trace("fd=%llu POLLHUP, nothing to read, no room to send: "
              "parked %d ms", (unsigned long long)c->fd, PARK_MS);
}

/* The parked slots' time is up: their sockets go back into the array. */
static void unpark_all(void)
{
    for (ULONG i = LISTEN_SLOT + 1; i < nslots; i++)
        pfds[i].fd = slot_conns[i]->fd;
    parked_until = 0;
}

/* [S6] Swap-with-last: the last slot moves into c's, so the array stays
 * dense. No closed socket is left in it: Linux's poll() would answer
 * POLLNVAL for it at once, every turn (a spin); under Wine WSAPoll() marks
 * it POLLNVAL and waits on (tested), but the next accept() may get the
 * same handle value back, and the stale slot would then watch the new
 * client's socket a second time. And no hole is left to scan past. Then
 * closesocket and free. */
static void conn_close(struct conn *c)
{
    ULONG last = nslots - 1;

    pfds[c->slot] = pfds[last];
    slot_conns[c->slot] = slot_conns[last];
    slot_conns[c->slot]->slot = c->slot;
    nslots--;
    idle_remove(&c->idle);
    if (closesocket(c->fd) == SOCKET_ERROR)
        warn_errno("closesocket(fd=%llu)", (unsigned long long)c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%llu peer=%s clients=%d", (unsigned long long)c->fd,
              c->peer, now);
    accept_paused_until = 0;  /* a socket and a slot are free */
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

/* [S7] The console handler's thread, after it set the stop flag: one
 * datagram to slot 0 ends the WSAPoll() the main thread is in. Any thread
 * may send on a socket; a handler on Linux could call only
 * async-signal-safe functions, here anything goes. A second Ctrl-C during
 * the shutdown may find wake_tx closed: its send fails, harmlessly. */
static void on_stop(void *arg)
{
    (void)arg;
    if (send(wake_tx, "!", 1, 0) == SOCKET_ERROR)
        warn_errno("send(wake-up socket)");
}

/* [S7] Ctrl-C: close every client (an echo still unsent is dropped), then
 * the wake-up pair. */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    while (nslots > LISTEN_SLOT + 1)
        conn_close(slot_conns[nslots - 1]);
    closesocket(wake_rx);
    closesocket(wake_tx);
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

/* [S8] The wait's timeout in milliseconds: -1 (wait for an event), or
 * the oldest client's idle deadline, the end of an EMFILE pause or of the
 * parked slots' time, whichever comes first (the timers). */
static int wait_timeout(void)
{
    long long now = clock_ms();
    long long until = accept_paused_until;
    long long idle_left = idle_next_ms(&idle_clients, now);  /* -1: nobody */

    if (parked_until != 0 && (until == 0 || parked_until < until))
        until = parked_until;
    if (idle_left != -1 && (until == 0 || now + idle_left < until))
        until = now + idle_left;
    if (until == 0)
        return -1;
    long long ms = until - now;
    return ms < 0 ? 0 : (int)ms;
}

/* Doubles the slot arrays: WSAPoll() has no size cap, so the array has
 * none either (-c bounds the clients). realloc, as mingw's C library has
 * no reallocarray; -c (at most 100000) keeps cap * size far from
 * overflowing. */
static int slots_grow(void)
{
    ULONG cap = slots_cap != 0 ? slots_cap * 2 : SLOTS_INITIAL;
    WSAPOLLFD *grown = realloc(pfds, cap * sizeof(*grown));

    if (grown == NULL)
        return -1;
    pfds = grown;
    struct conn **grown_conns = realloc(slot_conns,
                                        cap * sizeof(*grown_conns));
    if (grown_conns == NULL)
        return -1;  /* pfds is larger than slots_cap says: harmless */
    slot_conns = grown_conns;
    slots_cap = cap;
    return 0;
}
