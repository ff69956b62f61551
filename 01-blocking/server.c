/* 01-blocking/server.c - the blocking model: accept(), then recv()/send()
 * until the client leaves.
 *
 * The notes' first server: every call waits until it is done. In
 * --mode iterative (the default) the one thread serves one client at a time;
 * everyone else waits in the listen backlog. --mode threads gives each
 * client its own thread (the design the notes warn against: a thread, a
 * stack and two context switches per client, capped here by -c).
 *
 *   [S1] setup_conns, setup_stop, setup_listener: socket, bind, listen
 *   [S2] event_loop: accept() blocks until a client connects  (Win32: accept)
 *   [S3] on_accept: the client's socket, with its idle timeout
 *   [S4] serve_client: recv() blocks until bytes come        (Win32: recv)
 *   [S5]   send() them back, looping on short sends          (Win32: send)
 *   [S6] recv() returns 0: the client left; conn_close   (Win32: closesocket)
 *   [S7] SIGTERM: the handler shutdown()s the blocked sockets; shutdown_all
 *        joins the threads and frees
 *   [S8] recv() or send() waited --idle-timeout s for a byte: the kernel's
 *        socket timeout fails it with EAGAIN; close_idle    (Win32: the same)
 *
 * Win32: the notes' WSAStartup/WSACleanup have no counterpart (the socket
 * API is always there); SOCKET is an int; WSAGetLastError() is errno.
 *
 * Try:  ./server -v                    then: nc 127.0.0.1 9001 (twice)
 *       ./server --mode threads -v     both clients are served at once
 *       ./server -v --idle-timeout 3   a silent nc is closed after 3 s
 * gdb:  make gdb M=01   (walkthrough.gdb: break on_accept, serve_client)
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

#define DEFAULT_PORT 9001
#define DEFAULT_MAX_CLIENTS 1000
#define THREAD_STACK_BYTES (256 * 1024)
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define SLOT_LISTEN 0           /* sig_shutdown_on_stop slots */
#define SLOT_CLIENT 1

enum mode { MODE_ITERATIVE, MODE_THREADS };
enum conn_state { CONN_FREE, CONN_SERVING, CONN_FINISHED };

/* One client. In threads mode, one of these per slot of -c. */
struct conn {
    enum conn_state state;      /* guarded by table_lock in threads mode */
    int fd;
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    pthread_t thread;
};

static struct server_opts opts;
static int mode = MODE_ITERATIVE;
static struct stats stats;
static int listen_fd = -1;

/* The clients: one slot in iterative mode, -c in threads mode, with a
 * lock, and an eventfd used as a semaphore that counts free slots (a stop
 * signal also bumps it). */
static struct conn *conns;
static int nconns;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int free_slots_fd = -1;

static void setup_conns(void);
static void setup_stop(void);
static int setup_listener(void);
static void event_loop(void);
static void on_accept(struct conn *c);
static void serve_client(struct conn *c);
static void conn_close(struct conn *c);
static void close_idle(struct conn *c);
static void start_worker(struct conn *c);
static void *worker_main(void *arg);
static void shutdown_all(void);
static struct conn *take_free_slot(void);
static void release_slot(struct conn *c, enum conn_state state);

static const struct model_opt model_opts[] = {
    {.name = "mode",
     .kind = OPT_CHOICE,
     .arg_name = "iterative|threads",
     .choices = "iterative|threads",
     .help = "iterative: one client at a time (default); threads: one "
             "thread each",
     .value = &mode},
};

static const struct model_info model = {
    .program = "01-blocking/server",
    .summary = "blocking accept/recv/send, iterative or a thread per client",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = 100000,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("blocking", opts.verbose);
    stats_init(&stats);

    /* send() to a client that reset the connection must return EPIPE, not
     * kill us with SIGPIPE (we also pass MSG_NOSIGNAL; this covers all). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    setup_conns();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] The slot table and its free-slot counter. Done before the listening
 * line, so the server is whole when it says so. */
static void setup_conns(void)
{
    nconns = mode == MODE_THREADS ? opts.max_clients : 1;
    conns = calloc(nconns, sizeof(*conns));
    if (conns == NULL)
        die("calloc(%d conns)", nconns);
    for (int i = 0; i < nconns; i++)
        conns[i].fd = -1;
    /* EFD_SEMAPHORE: each read() takes one free slot and blocks at zero. */
    free_slots_fd = eventfd(nconns, EFD_SEMAPHORE | EFD_CLOEXEC);
    if (free_slots_fd == -1)
        die("eventfd");
}

/* [S1] SIGINT/SIGTERM run a handler that sets a flag, without SA_RESTART,
 * so a blocked call returns EINTR; and it shutdown()s the sockets we block
 * on (setup_listener, event_loop), which makes a blocked (or about to
 * block) accept() or recv() return at once: no race with the flag. */
static void setup_stop(void)
{
    sig_set_wake_fd(free_slots_fd);  /* also wakes take_free_slot's read */
    if (sig_catch_stop() == -1)
        die("sigaction(SIGTERM)");
}

/* [S1] socket/bind/listen, then the one line on stdout. */
static int setup_listener(void)
{
    int fd = net_listen(opts.host, opts.port, SOCK_CLOEXEC);
    if (fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    /* A stop signal shuts this socket down, which makes a blocked (or
     * about to block) accept() fail at once: no race with the flag. */
    sig_shutdown_on_stop(SLOT_LISTEN, fd);
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] The wait is the accept() itself (on_accept): this thread blocks
 * there until a client comes. Iterative, the notes' first model: serve
 * that client to the end, then accept the next; everyone else waits in the
 * listen backlog meanwhile. Threads: hand the client to a thread of its
 * own and accept the next, once a slot is free (take_free_slot waits at
 * -c). */
static void event_loop(void)
{
    while (!sig_stop_requested()) {
        struct conn *c = take_free_slot();
        if (c == NULL)
            continue;  /* woken by a stop signal: the loop ends */
        on_accept(c);
        if (c->fd == -1) {
            release_slot(c, CONN_FREE);
            continue;
        }
        if (mode == MODE_THREADS) {
            start_worker(c);
            continue;
        }
        /* From here a stop signal shuts the client's socket too, so a
         * blocked recv() returns 0 at once. Set before testing the flag. */
        sig_shutdown_on_stop(SLOT_CLIENT, c->fd);
        if (!sig_stop_requested())
            serve_client(c);
        sig_shutdown_on_stop(SLOT_CLIENT, -1);
        conn_close(c);
        release_slot(c, CONN_FREE);
    }
}

/* [S3] Blocks in accept(). Sets c->fd to the client, or to -1 to loop
 * again (a signal, a transient error, or a pause for lack of descriptors). */
static void on_accept(struct conn *c)
{
    c->fd = net_accept(listen_fd, SOCK_CLOEXEC, c->peer, sizeof(c->peer));
    if (c->fd == -1) {
        if (sig_stop_requested() || errno == EINTR)
            return;  /* EINTR: a signal; the loop re-checks the flag */
        if (net_accept_exhausted(errno)) {
            /* EMFILE: out of descriptors. Retrying at once would spin
             * (NOTES §7.1); only a leaving client frees one, so wait a
             * little and leave the newcomers in the listen backlog. */
            warn_errno("accept (pausing %d ms)", EMFILE_PAUSE_MS);
            clock_pause_ms(EMFILE_PAUSE_MS);  /* a signal: the loop re-checks */
            return;
        }
        if (!net_accept_transient(errno))
            die("accept");  /* EBADF, EINVAL...: a bug, not a client */
        warn_errno("accept");
        return;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(c->fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%d)", c->fd);
    /* [S8] The idle timeout: without it one silent client (or one that
     * never reads its echo) would hold the iterative server forever. The
     * kernel times each blocked recv() and send() (SO_RCVTIMEO,
     * SO_SNDTIMEO), so this model needs no timer and no list of its own:
     * one thread per client, one timer per call. --idle-timeout 0 sets
     * nothing: the options stay 0, "no timeout", and the calls block for
     * as long as it takes. (Win32: the same two options, a DWORD of ms;
     * the calls fail with WSAETIMEDOUT.) */
    if (opts.idle_timeout > 0 &&
        net_set_timeouts(c->fd, opts.idle_timeout * 1000) == -1)
        warn_errno("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO, fd=%d)", c->fd);
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", c->fd, c->peer, now);
}

/* Echo until the client leaves: recv what is there (up to the buffer's
 * bound), send all of it back, repeat. Waiting in send() is the
 * backpressure: we read no more until the client takes its echo. */
static void serve_client(struct conn *c)
{
    for (;;) {
        ssize_t n = buf_fill(&c->echo, c->fd);       /* [S4] blocks */
        if (n == 0)
            return;  /* the client left (or our own stop shutdown) */
        if (n == -1) {
            if (errno == EINTR && !sig_stop_requested())
                continue;  /* a signal we do not stop for: recv again */
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                close_idle(c);  /* nothing came: the timeout */
            else if (errno != EINTR)
                log_event("recv fd=%d: %s", c->fd, strerror(errno));
            return;
        }
        log_trace("recv fd=%d %zd bytes", c->fd, n);
        while (!buf_empty(&c->echo)) {               /* [S5] */
            ssize_t sent = buf_drain(&c->echo, c->fd);
            if (sent == -1 && errno == EINTR && !sig_stop_requested())
                continue;
            if (sent == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                close_idle(c);  /* none of the echo taken: the timeout */
                return;
            }
            if (sent == -1) {
                log_event("send fd=%d: %s", c->fd, strerror(errno));
                return;
            }
            stats_echoed(&stats, (unsigned long long)sent);
            log_trace("send fd=%d %zd bytes", c->fd, sent);
        }
    }
}

/* [S6] recv() returned 0 (the client left), an error, or the timeout. */
static void conn_close(struct conn *c)
{
    if (c->fd == -1)
        return;
    if (close(c->fd) == -1)
        warn_errno("close(fd=%d)", c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    c->fd = -1;
    c->echo.len = 0;  /* a reset client may leave unsent bytes behind */
}

/* [S8] recv() waited --idle-timeout seconds and nothing came, or send()
 * did and the client took none of its echo: the socket's timeout ran out
 * and the call failed with EAGAIN. A send() that moved some bytes before
 * the timeout returns that count instead; only the next one fails. */
static void close_idle(struct conn *c)
{
    log_info("idle fd=%d peer=%s: closed after %d s", c->fd, c->peer,
             opts.idle_timeout);
    stats_closed_idle(&stats);
    conn_close(c);
}

/* --mode threads: the client's own thread runs the same serve_client() as
 * the iterative loop. Signals stay with the main thread: the worker
 * inherits a mask that blocks them, so a stop interrupts only accept(). */
static void start_worker(struct conn *c)
{
    pthread_attr_t attr;
    sigset_t old;
    int rc;

    if ((rc = pthread_attr_init(&attr)) != 0 ||
        (rc = pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES)) != 0)
        die_code(rc, "pthread_attr");
    sig_block_stop(&old);
    /* Win32: CreateThread(NULL, 0, ThreadProc, c, 0, NULL) */
    rc = pthread_create(&c->thread, &attr, worker_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        /* EAGAIN: out of threads. Refuse this client, keep the rest. */
        warn_code(rc, "pthread_create (closing fd=%d)", c->fd);
        conn_close(c);
        release_slot(c, CONN_FREE);
    }
}

static void *worker_main(void *arg)
{
    struct conn *c = arg;

    serve_client(c);
    pthread_mutex_lock(&table_lock);
    conn_close(c);
    pthread_mutex_unlock(&table_lock);
    release_slot(c, CONN_FINISHED);  /* joined by whoever takes it next */
    return NULL;
}

/* [S7] close() would not wake a thread blocked in recv() (close(2)), but
 * shutdown() does: recv() returns 0 and the thread finishes normally. */
static void shutdown_all(void)
{
    sig_shutdown_on_stop(SLOT_LISTEN, -1);
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < nconns; i++)
        if (conns[i].state == CONN_SERVING && conns[i].fd != -1)
            shutdown(conns[i].fd, SHUT_RDWR);  /* ENOTCONN if reset: fine */
    pthread_mutex_unlock(&table_lock);
    for (int i = 0; i < nconns; i++) {
        /* Read the state under the lock: its thread may be setting it to
         * FINISHED right now (TSan reports the race otherwise). */
        pthread_mutex_lock(&table_lock);
        bool has_thread = conns[i].state != CONN_FREE &&
                          mode == MODE_THREADS;
        pthread_mutex_unlock(&table_lock);
        if (has_thread)
            pthread_join(conns[i].thread, NULL);
        buf_free(&conns[i].echo);
    }
    free(conns);
    sig_set_wake_fd(-1);
    close(free_slots_fd);
}

/* Marks the slot free (or finished, to be joined) and counts it free. */
static void release_slot(struct conn *c, enum conn_state state)
{
    uint64_t one = 1;

    pthread_mutex_lock(&table_lock);
    c->state = state;
    pthread_mutex_unlock(&table_lock);
    if (write(free_slots_fd, &one, sizeof(one)) == -1)
        warn_errno("write(eventfd)");  /* only on a counter overflow */
}

/* Waits until a slot is free (fewer than -c clients in threads mode; the
 * one slot in iterative mode always is), then returns it, or NULL when a
 * stop signal woke the wait or its buffer could not be had for now. */
static struct conn *take_free_slot(void)
{
    uint64_t count;

    if (read(free_slots_fd, &count, sizeof(count)) == -1) {
        if (errno != EINTR)
            die("read(eventfd)");
        return NULL;
    }
    if (sig_stop_requested())
        return NULL;  /* the handler's wake-up, or a slot: either way, stop */
    pthread_mutex_lock(&table_lock);
    struct conn *found = NULL;
    for (int i = 0; i < nconns && found == NULL; i++) {
        if (conns[i].state == CONN_SERVING)
            continue;
        found = &conns[i];
        if (found->state == CONN_FINISHED)
            pthread_join(found->thread, NULL);  /* it has returned already */
        found->state = CONN_SERVING;
    }
    pthread_mutex_unlock(&table_lock);
    assert(found != NULL);  /* the eventfd counted a free slot */
    if (found->echo.data == NULL && buf_init(&found->echo, BUF_DEFAULT_CAP)) {
        /* ENOMEM: short of memory for now. The newcomer waits in the
         * listen backlog; the caller's loop asks for a slot again. */
        back_off("malloc(echo buffer)");
        release_slot(found, CONN_FREE);
        return NULL;
    }
    return found;
}
