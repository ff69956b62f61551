/* 01-blocking/server.c - the blocking model: accept(), then recv()/send()
 * until the client leaves.
 *
 * The notes' first server: every call waits until it is done. In
 * --mode iterative (the default) the one thread serves one client at a time;
 * everyone else waits in the listen backlog. --mode threads gives each
 * client its own thread (the design the notes warn against: a thread, a
 * stack and two context switches per client, capped here by -c).
 *
 *   [S1] setup_listener: socket, bind, listen        (Win32: the same calls)
 *   [S2] accept() blocks until a client connects     (Win32: accept)
 *   [S3] serve_client: recv() blocks until bytes come (Win32: recv)
 *   [S4]   send() them back, looping on short sends   (Win32: send)
 *   [S5] recv() returns 0: the client left; close     (Win32: closesocket)
 *   [S6] SIGTERM: the handler shutdown()s the blocked sockets; join, free
 *
 * Win32: the notes' WSAStartup/WSACleanup have no counterpart (the socket
 * API is always there); SOCKET is an int; WSAGetLastError() is errno.
 *
 * Try:  ./server -v                    then: nc 127.0.0.1 9001 (twice)
 *       ./server --mode threads -v     both clients are served at once
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
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

#define DEFAULT_PORT 9001
#define DEFAULT_MAX_CLIENTS 1000
#define DEFAULT_TIMEOUT_SECONDS 10
#define THREAD_STACK_BYTES (256 * 1024)
#define EMFILE_PAUSE_MS 100
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
static int timeout_seconds = DEFAULT_TIMEOUT_SECONDS;
static struct stats stats;

/* Threads mode: the slot table, its lock, and an eventfd used as a
 * semaphore that counts free slots (a stop signal also bumps it). */
static struct conn *conns;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int free_slots_fd = -1;

static int setup_listener(void);
static void run_iterative(int listen_fd);
static void setup_threads(void);
static void run_threads(int listen_fd);
static int on_accept(int listen_fd, struct conn *c);
static void serve_client(struct conn *c);
static void conn_close(struct conn *c);
static void *client_thread(void *arg);
static struct conn *take_free_slot(void);
static void release_slot(struct conn *c, enum conn_state state);
static void shutdown_threads(void);

static const struct model_opt model_opts[] = {
    {"mode", 0, OPT_CHOICE, "iterative|threads", "iterative|threads", 0, 0,
     "iterative: one client at a time (default); threads: one thread each",
     &mode},
    {"timeout", 0, OPT_INT, "SECONDS", NULL, 1, 3600,
     "drop a client idle (or not reading) this long (default 10)",
     &timeout_seconds},
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
    if (sig_catch_stop() == -1)
        die("sigaction(SIGTERM)");

    if (mode == MODE_THREADS)
        setup_threads();
    int listen_fd = setup_listener();
    if (mode == MODE_ITERATIVE)
        run_iterative(listen_fd);
    else
        run_threads(listen_fd);

    sig_shutdown_on_stop(SLOT_LISTEN, -1);
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] socket/bind/listen, then the one line on stdout. */
static int setup_listener(void)
{
    int listen_fd = net_listen(opts.host, opts.port, SOCK_CLOEXEC);
    if (listen_fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    /* A stop signal shuts this socket down, which makes a blocked (or
     * about to block) accept() fail at once: no race with the flag. */
    sig_shutdown_on_stop(SLOT_LISTEN, listen_fd);
    if (net_announce(listen_fd) == -1)
        die("announce");
    return listen_fd;
}

/* The notes' first model: accept one client, serve it to the end, repeat.
 * Everyone else waits in the listen backlog meanwhile. */
static void run_iterative(int listen_fd)
{
    struct conn c = {.fd = -1};

    if (buf_init(&c.echo, BUF_DEFAULT_CAP) == -1)
        die("buf_init");
    while (!sig_stop_requested()) {
        if (on_accept(listen_fd, &c) == -1)
            continue;
        /* From here a stop signal shuts the client's socket too, so a
         * blocked recv() returns 0 at once. Set before testing the flag. */
        sig_shutdown_on_stop(SLOT_CLIENT, c.fd);
        if (!sig_stop_requested())
            serve_client(&c);
        sig_shutdown_on_stop(SLOT_CLIENT, -1);
        conn_close(&c);
    }
    buf_free(&c.echo);
}

/* [S2] Blocks in accept(). Returns 0 with c->fd set, or -1 to loop again
 * (a signal, a transient error, or a pause for lack of descriptors). */
static int on_accept(int listen_fd, struct conn *c)
{
    c->fd = net_accept(listen_fd, SOCK_CLOEXEC, c->peer, sizeof(c->peer));
    if (c->fd == -1) {
        if (sig_stop_requested() || errno == EINTR)
            return -1;  /* EINTR: a signal; the loop re-checks the flag */
        if (net_accept_exhausted(errno)) {
            /* EMFILE: out of descriptors. Retrying at once would spin
             * (PITFALLS 1); only a leaving client frees one, so wait a
             * little and leave the newcomers in the listen backlog. */
            warn_errno("accept (pausing %d ms)", EMFILE_PAUSE_MS);
            struct timespec pause = {0, EMFILE_PAUSE_MS * 1000000L};
            nanosleep(&pause, NULL);  /* EINTR: the loop re-checks */
            return -1;
        }
        if (!net_accept_transient(errno))
            die("accept");  /* EBADF, EINVAL...: a bug, not a client */
        warn_errno("accept");
        return -1;
    }
    /* The idle timeout: without it one silent client (or one that never
     * reads its echo) would hold the iterative server forever. */
    if (net_set_timeouts(c->fd, timeout_seconds * 1000) == -1)
        warn_errno("setsockopt(SO_RCVTIMEO, fd=%d)", c->fd);
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    return 0;
}

/* [S3]-[S5] Echo until the client leaves: recv what is there (up to the
 * buffer's bound), send all of it back, repeat. Waiting in send() is the
 * backpressure: we read no more until the client takes its echo. */
static void serve_client(struct conn *c)
{
    for (;;) {
        ssize_t n = buf_fill(&c->echo, c->fd);       /* [S3] blocks */
        if (n == 0)
            return;  /* [S5] orderly close (or our own stop shutdown) */
        if (n == -1) {
            if (errno == EINTR && !sig_stop_requested())
                continue;  /* a signal we do not stop for: recv again */
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                log_event("fd=%d idle for %d s: closing", c->fd,
                          timeout_seconds);
            else if (errno != EINTR)
                log_event("recv fd=%d: %s", c->fd, strerror(errno));
            return;
        }
        log_trace("recv fd=%d %zd bytes", c->fd, n);
        while (!buf_empty(&c->echo)) {               /* [S4] */
            ssize_t sent = buf_drain(&c->echo, c->fd);
            if (sent == -1 && errno == EINTR && !sig_stop_requested())
                continue;
            if (sent == -1) {
                log_event("send fd=%d: %s", c->fd,
                          errno == EAGAIN ? "client not reading (timeout)"
                                          : strerror(errno));
                return;
            }
            stats_echoed(&stats, (unsigned long long)sent);
            log_trace("send fd=%d %zd bytes", c->fd, sent);
        }
    }
}

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

/* --mode threads, set-up: the slot table and its free-slot counter. Done
 * before the listening line, so the server is whole when it says so. */
static void setup_threads(void)
{
    conns = calloc(opts.max_clients, sizeof(*conns));
    if (conns == NULL)
        die("calloc(%d conns)", opts.max_clients);
    for (int i = 0; i < opts.max_clients; i++)
        conns[i].fd = -1;
    /* EFD_SEMAPHORE: each read() takes one free slot and blocks at zero. */
    free_slots_fd = eventfd(opts.max_clients, EFD_SEMAPHORE | EFD_CLOEXEC);
    if (free_slots_fd == -1)
        die("eventfd");
    sig_set_wake_fd(free_slots_fd);  /* a stop signal also wakes the wait */
}

/* --mode threads: this thread only accepts; each client gets a thread
 * running the same serve_client() as the iterative loop. */
static void run_threads(int listen_fd)
{
    pthread_attr_t attr;
    int rc;

    if ((rc = pthread_attr_init(&attr)) != 0 ||
        (rc = pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES)) != 0)
        die_code(rc, "pthread_attr");

    while (!sig_stop_requested()) {
        struct conn *c = take_free_slot();           /* waits at -c */
        if (c == NULL)
            continue;  /* woken by a stop signal: the loop ends */
        if (on_accept(listen_fd, c) == -1) {
            release_slot(c, CONN_FREE);
            continue;
        }
        /* Signals stay with this thread: client threads inherit a mask
         * that blocks them, so a stop interrupts only accept(). */
        sigset_t old;
        sig_block_stop(&old);
        rc = pthread_create(&c->thread, &attr, client_thread, c);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            /* EAGAIN: out of threads. Refuse this client, keep the rest. */
            warn_code(rc, "pthread_create (closing fd=%d)", c->fd);
            conn_close(c);
            release_slot(c, CONN_FREE);
        }
    }
    pthread_attr_destroy(&attr);
    shutdown_threads();
}

static void *client_thread(void *arg)
{
    struct conn *c = arg;

    serve_client(c);
    pthread_mutex_lock(&table_lock);
    conn_close(c);
    pthread_mutex_unlock(&table_lock);
    release_slot(c, CONN_FINISHED);  /* joined by whoever takes it next */
    return NULL;
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

/* Waits until fewer than -c clients are served, then returns a slot, or
 * NULL when a stop signal woke the wait. */
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
    for (int i = 0; i < opts.max_clients && found == NULL; i++) {
        if (conns[i].state == CONN_SERVING)
            continue;
        found = &conns[i];
        if (found->state == CONN_FINISHED)
            pthread_join(found->thread, NULL);  /* it has returned already */
        found->state = CONN_SERVING;
    }
    pthread_mutex_unlock(&table_lock);
    assert(found != NULL);  /* the eventfd counted a free slot */
    if (found->echo.data == NULL && buf_init(&found->echo, BUF_DEFAULT_CAP))
        die("buf_init");
    return found;
}

/* [S6] close() would not wake a thread blocked in recv() (close(2)), but
 * shutdown() does: recv() returns 0 and the thread finishes normally. */
static void shutdown_threads(void)
{
    pthread_mutex_lock(&table_lock);
    for (int i = 0; i < opts.max_clients; i++)
        if (conns[i].state == CONN_SERVING && conns[i].fd != -1)
            shutdown(conns[i].fd, SHUT_RDWR);  /* ENOTCONN if reset: fine */
    pthread_mutex_unlock(&table_lock);
    for (int i = 0; i < opts.max_clients; i++) {
        /* Read the state under the lock: its thread may be setting it to
         * FINISHED right now (TSan reports the race otherwise). */
        pthread_mutex_lock(&table_lock);
        bool has_thread = conns[i].state != CONN_FREE;
        pthread_mutex_unlock(&table_lock);
        if (has_thread)
            pthread_join(conns[i].thread, NULL);
        buf_free(&conns[i].echo);
    }
    free(conns);
    sig_set_wake_fd(-1);
    close(free_slots_fd);
}
