/* 02-select/win32.c - the select model in Winsock, the notes' own API: the
 * Win32 twin of server.c. One thread asks select() which sockets are
 * ready, then serves exactly those.
 *
 * The notes' second server: instead of blocking in accept() or recv(), hand
 * Winsock sets of sockets and ask "which of these can I use without
 * waiting?". One thread serves every client; the sockets are nonblocking,
 * so a call that would still wait fails with WSAEWOULDBLOCK instead. A
 * Winsock fd_set is not a bitmap but an array: fd_count SOCKETs in
 * fd_array[FD_SETSIZE]. FD_SETSIZE bounds how MANY sockets a set holds,
 * not their values, and it is 64 unless raised before <winsock2.h>: we
 * raise it to 1024, so -c's default is FD_SETSIZE - 1 (the listener takes
 * one place). Given a larger -c, the twin closes a client the sets have no
 * room for, with a log line, as server.c does with a descriptor numbered
 * FD_SETSIZE or more.
 *
 *   [S1] setup_stop; setup_listener: socket, bind, listen   (Linux: the same)
 *   [S2] event_loop: copy the master sets, select() waits   (Linux: pselect)
 *   [S3] listening socket readable: on_accept, FD_SET        (Linux: accept4)
 *   [S4] client readable: on_readable recv()s, sends back    (Linux: recv)
 *   [S5] client with output pending writable: on_writable    (Linux: send)
 *   [S6] EOF, error, except set: conn_close, FD_CLR          (Linux: close)
 *   [S7] Ctrl-C: the loop sees the flag, closes every client, summary
 *   [S8] after every turn, close_idle: clients idle --idle-timeout seconds;
 *        select's timeval is at most the time left until the oldest expires
 *
 * Linux: pselect(nfds, ...) over bitmaps indexed by descriptor number,
 * FD_SETSIZE fixed at 1024 and bounding the *number*. Here select(0, ...):
 * Windows ignores nfds, and FD_ISSET walks the array.
 *
 * Try:  make run-win32 M=02 ARGS="-v"   then: nc 127.0.0.1 9002
 *       diff -u 02-select/server.c 02-select/win32.c
 */

/* Winsock reads FD_SETSIZE when <winsock2.h> is first included (by sock.h,
 * through the headers below), so it must be defined before any of them.
 * Linux cannot do this: its fd_set is a bitmap of exactly 1024 bits built
 * into the kernel's select(), and a larger FD_SETSIZE would only make
 * FD_SET write past what the kernel reads (NOTES §7.8). Winsock's select()
 * takes the count from fd_count, so any array size works. */
#define FD_SETSIZE 1024

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

#define DEFAULT_PORT 9002
#define DEFAULT_MAX_CLIENTS (FD_SETSIZE - 1) /* the listener takes one */
#define SELECT_TIMEOUT_MS 1000  /* the notes' timeout (they wait 3 s) */
#define EMFILE_PAUSE_MS 100     /* out of sockets: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */

/* One client. A SOCKET is a handle, not a small number, so it cannot index
 * an array as server.c's conns[fd] does: clients[] is a dense table and
 * each conn knows its place in it. */
struct conn {
    SOCKET fd;
    int slot;                   /* its index in clients[] */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    bool peer_done;             /* the client sent FIN: echo the rest, close */
    struct idle_entry idle;     /* its place in idle_clients */
};

static struct server_opts opts;
static struct stats stats;
static SOCKET listen_fd = INVALID_SOCKET;

/* What we want watched. select() overwrites the sets it is given, so every
 * turn works on copies of these (the notes' "temporary" fd_set b = a). */
static fd_set read_master;      /* clients with room in their backlog */
static fd_set write_master;     /* clients with output pending */
static struct conn *clients[FD_SETSIZE];
static int client_count;
static long long accept_paused_until; /* out of sockets: clock_ms() to resume */
static struct idle_list idle_clients; /* [S8] least recently active first */

static void setup_stop(void);
static SOCKET setup_listener(void);
static void event_loop(void);
static bool on_event(struct conn *c, fd_set *readfds, fd_set *writefds,
                     fd_set *exceptfds);
static void on_accept(void);
static void conn_open(SOCKET fd, const char *peer);
static bool on_exception(struct conn *c);
static bool on_readable(struct conn *c);
static bool on_writable(struct conn *c);
static void watch(struct conn *c);
static void conn_close(struct conn *c);
static void close_idle(void);
static void shutdown_all(void);
static bool accepting(void);
static struct timeval wait_timeout(void);

static const struct model_info model = {
    .program = "02-select/win32.exe",
    .summary = "Winsock select(): one thread, fd_sets copied every turn, "
               "at most FD_SETSIZE sockets a set",
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
    log_init("select", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);

    /* Every Winsock program starts here: load Winsock 2.2 (the notes'
     * first call). Linux has no such step: sockets are system calls. */
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

/* [S1] Ctrl-C runs a console control handler on a thread of its own; it
 * sets the stop flag. Winsock's select() is not interrupted by it (there
 * is no EINTR, and no pselect to make the test-and-wait atomic), so the
 * loop notices the flag when select() returns: within SELECT_TIMEOUT_MS,
 * inside NOTES §1's 2 seconds. (Waking it at once would need a socket in
 * the set to poke: 03's twin shows that.) */
static void setup_stop(void)
{
    if (sig_catch_stop() == -1)
        die("SetConsoleCtrlHandler");
}

/* [S1] socket/bind/listen, then the one line on stdout. Nonblocking: a
 * client may reset between select()'s "readable" and our accept(); a
 * blocking accept() would then wait for the next client, and hold all. */
static SOCKET setup_listener(void)
{
    SOCKET fd = net_listen(opts.host, opts.port, 0);
    if (fd == INVALID_SOCKET)
        die("listen on %s port %d", opts.host, opts.port);
    if (net_set_nonblock(fd, true) == -1)  /* ioctlsocket(FIONBIO) */
        die("ioctlsocket(FIONBIO)");
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] One turn: copy the master sets, wait, serve what is ready. */
static void event_loop(void)
{
    while (!sig_stop_requested()) {
        fd_set readfds = read_master;   /* fd sets are not reusable after */
        fd_set writefds = write_master; /* select(): it leaves only the */
        fd_set exceptfds = read_master; /* ready sockets. Copy every turn. */

        if (accepting())
            FD_SET(listen_fd, &readfds);
        struct timeval timeout = wait_timeout();
        /* Winsock refuses three empty sets (WSAEINVAL) where Linux would
         * simply sleep: during an EMFILE pause with no client, wait the
         * timeout out with Sleep instead. */
        if (readfds.fd_count == 0 && writefds.fd_count == 0) {
            Sleep((DWORD)(timeout.tv_sec * 1000 + timeout.tv_usec / 1000));
            continue;  /* (nobody to time out either: no client) */
        }
        /* The first argument, nfds, is ignored: kept for Berkeley
         * compatibility. Each set carries its own count. */
        int ready = select(0, &readfds, &writefds, &exceptfds, &timeout);
        if (ready == SOCKET_ERROR)
            die("select");  /* WSAENOTSOCK: a closed socket left in a set */
        log_trace("select: %d ready of %d clients", ready, client_count);
        /* ready == 0: the timeout, nobody is ready; but someone may have
         * been idle too long, which close_idle() will see. */
        if (ready > 0 && FD_ISSET(listen_fd, &readfds))
            on_accept();  /* first: new sockets then carry no stale state */
        /* Downward: conn_close moves the last client into the freed place,
         * and that one has had its turn already. */
        for (int i = client_count - 1; ready > 0 && i >= 0; i--)
            on_event(clients[i], &readfds, &writefds, &exceptfds);
        close_idle();
    }
}

/* One client's events. FD_ISSET walks the set's array, which select() has
 * cut down to the ready sockets: the notes walk fd_array[0 .. fd_count)
 * directly, which finds the same sockets. (Linux: every number below nfds
 * is tested, ready or not.) */
static bool on_event(struct conn *c, fd_set *readfds, fd_set *writefds,
                     fd_set *exceptfds)
{
    if (FD_ISSET(c->fd, exceptfds) && !on_exception(c))
        return false;
    if (FD_ISSET(c->fd, readfds) && !on_readable(c))
        return false;
    if (FD_ISSET(c->fd, writefds) && !buf_empty(&c->echo))
        return on_writable(c);
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
             * stays readable, so select() would return at once and accept()
             * fail again: a busy loop (NOTES §7.1). Stop watching it until
             * a client leaves, or for EMFILE_PAUSE_MS. */
            warn("accept (pausing %d ms): %s", EMFILE_PAUSE_MS,
                 err_describe(err, why, sizeof(why)));
            accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
            return;
        }
        if (err != 0 && (err == WSAEINTR || net_accept_transient(err)))
            continue;  /* one aborted connection: try the next */
        if (err != 0)
            die_code(err, "accept");  /* WSAENOTSOCK...: a bug */
        /* A SOCKET of any value fits an array entry: here FD_SETSIZE
         * bounds the count. A full array silently ignores FD_SET (NOTES
         * §7.13), which would leave the client unwatched for ever. Never
         * let it in. */
        if (client_count == FD_SETSIZE - 1) {
            warn("accept fd=%llu peer=%s: the sets hold FD_SETSIZE (%d) "
                 "sockets, select cannot watch it: closing",
                 (unsigned long long)fd, peer, FD_SETSIZE);
            closesocket(fd);
            continue;
        }
        conn_open(fd, peer);
    }
}

/* [S3] A new client: its conn, its entry in read_master. The socket
 * inherits the listener's nonblocking mode (accept4's SOCK_NONBLOCK on
 * Linux). */
static void conn_open(SOCKET fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn("accept fd=%llu: no memory, closing", (unsigned long long)fd);
        if (c != NULL)
            buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
        free(c);
        closesocket(fd);
        return;
    }
    /* An urgent byte stays in line and is echoed like the rest; otherwise
     * it would sit in exceptfds unread, every turn: a spin. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%llu)",
                   (unsigned long long)fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->slot = client_count;
    clients[client_count++] = c;
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    FD_SET(fd, &read_master);   /* the notes: FD_SET(c, &a) */
    int now = stats_client_opened(&stats);
    log_event("accept fd=%llu peer=%s clients=%d", (unsigned long long)fd,
              c->peer, now);
}

/* exceptfds. On Windows it reports a failed connect() and out-of-band data
 * (which SO_OOBINLINE keeps in line instead). We still ask SO_ERROR, as
 * the notes do. Returns false when the client was closed. */
static bool on_exception(struct conn *c)
{
    int err = 0, len = sizeof(err);
    char why[300];

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len) ==
        SOCKET_ERROR)
        err = WSAGetLastError();
    if (err == 0) {
        log_trace("except fd=%llu: urgent data, echoed in line",
                  (unsigned long long)c->fd);
        return true;
    }
    log_event("except fd=%llu: %s", (unsigned long long)c->fd,
              err_describe(err, why, sizeof(why)));
    conn_close(c);
    return false;
}

/* [S4] select() said readable: one recv() will not block. Then send at
 * once: most of the time the echo leaves in this same turn. Returns false
 * when the client was closed. */
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
        idle_touch(&idle_clients, &c->idle, clock_ms());  /* [S8] active */
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
            break;  /* full: writefds tells us when there is room */
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

/* The master sets from c's state. Read while the backlog has room (the
 * backpressure: a full client is not read until it drains) and
 * the client may still send. Write only while output is pending: a socket
 * with room is always writable, so watching it idle would end every wait
 * at once. FD_SET on Windows appends only if the socket is not there yet;
 * FD_CLR removes it and shifts the rest of the array down. */
static void watch(struct conn *c)
{
    bool want_read = !c->peer_done && !buf_full(&c->echo);
    bool was_reading = FD_ISSET(c->fd, &read_master);

    if (!c->peer_done && want_read != was_reading)
        log_event("fd=%llu backlog %s", (unsigned long long)c->fd,
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

/* [S6] Out of the master sets first: a closed socket left in a set makes
 * select() fail with WSAENOTSOCK. (The notes save the SOCKET before
 * FD_CLR, which shifts fd_array under their loop; we walk clients[].) */
static void conn_close(struct conn *c)
{
    FD_CLR(c->fd, &read_master);
    FD_CLR(c->fd, &write_master);
    clients[c->slot] = clients[--client_count];  /* the last takes its place */
    clients[c->slot]->slot = c->slot;
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

/* [S7] Ctrl-C: close every client (an echo still unsent is dropped). */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    while (client_count > 0)
        conn_close(clients[client_count - 1]);
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

/* [S8] The wait's timeout, select's timeval: the notes' tick (Ctrl-C is
 * noticed at the latest then), or sooner the time left until the oldest
 * client would expire or an EMFILE pause ends (the retry timer). Winsock
 * never rewrites it (Linux's select() does, to the time left). */
static struct timeval wait_timeout(void)
{
    long long now = clock_ms();
    long long ms = SELECT_TIMEOUT_MS;
    long long idle_left = idle_next_ms(&idle_clients, now);  /* -1: nobody */

    if (idle_left != -1 && idle_left < ms)
        ms = idle_left;
    if (accept_paused_until != 0 && accept_paused_until - now < ms)
        ms = accept_paused_until - now;
    if (ms < 0)
        ms = 0;
    return (struct timeval){(long)(ms / 1000), (long)(ms % 1000 * 1000)};
}
