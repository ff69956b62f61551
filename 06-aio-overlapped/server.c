/* 06-aio-overlapped/server.c - overlapped I/O: post a read or a write, go on,
 * and be told when it is done.
 *
 * Each client has one request in flight at a time, described by a struct
 * aiocb (the notes' WSAOVERLAPPED): a read into its echo buffer, then a
 * write of what came, then the next read. aio_read/aio_write return at
 * once; the request runs meanwhile, and its end is reported one of two ways:
 *   --notify wait      a waiter thread sleeps in aio_suspend() over every
 *                      outstanding aiocb (WSAWaitForMultipleEvents on the
 *                      hEvents), then asks each one aio_error()/aio_return()
 *   --notify callback  glibc calls on_callback() on a thread of its own for
 *                      each finished request (SIGEV_THREAD: the completion
 *                      routine - but not run as an APC; see [S6])
 * POSIX AIO has no AcceptEx: the main thread accepts, as in the notes.
 *
 *   [S1] setup_aio: size glibc's helper-thread pool to -c (aio_init)
 *   [S2] event_loop: the main thread accepts (poll on the listener)
 *   [S3] conn_open: a new client's first request: post_read (WSARecv)
 *   [S4] waiter_main: aio_suspend until one finishes  (--notify wait)
 *   [S5] conn_complete: aio_error, aio_return  (WSAGetOverlappedResult)
 *   [S6] on_callback: the same, on glibc's thread  (--notify callback)
 *   [S7] on_read_complete: post_write (WSASend) / on_write_complete: read
 *   [S8] SIGTERM: shutdown(2) every socket, wait for every completion, free
 *
 * Linux differs here more than anywhere (PITFALLS 2, 3, 10, 11): glibc runs
 * each request on a helper thread doing a blocking read() or write(), so an
 * idle client holds a thread as long as it stays idle; requests on one
 * descriptor run one after another, so a write posted behind a pending read
 * would wait for the client's next bytes - which never come, since the
 * client waits for its echo. Hence one request per client at a time.
 *
 * Try:  ./server -v                      then: nc 127.0.0.1 9006
 *       ./server --notify callback -vv   one glibc thread per completion
 *       grep Threads /proc/$(pgrep -n server)/status   (with idle clients)
 * gdb:  make gdb M=06   (walkthrough.gdb: break post_read, conn_complete).
 */
#include <aio.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
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

#define DEFAULT_PORT 9006
#define DEFAULT_MAX_CLIENTS 1000
#define MAX_CLIENTS_LIMIT 10000  /* one helper thread per client */
#define EMFILE_PAUSE_MS 100
#define HELPER_IDLE_SECONDS 1    /* an idle helper thread leaves after this */
#define SHUTDOWN_WAIT_MS 5000    /* for the last completions at SIGTERM */

enum notify { NOTIFY_WAIT, NOTIFY_CALLBACK };
enum op_kind { OP_NONE, OP_READ, OP_WRITE };

/* One client: the per-socket data, with its two per-I/O contexts. */
struct conn {
    int fd;                     /* a blocking socket: the helper blocks */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes read, not yet written back */
    struct aiocb read_op;       /* Win32: the WSAOVERLAPPED of WSARecv */
    struct aiocb write_op;      /* Win32: the WSAOVERLAPPED of WSASend */
    enum op_kind in_flight;     /* which one glibc has now; OP_NONE: none */
    pthread_mutex_t lock;       /* held by whoever posts or completes */
    struct conn *prev, *next;   /* the clients list */
};

static struct server_opts opts;
static int notify = NOTIFY_WAIT;
static struct stats stats;

/* Every client, for the waiter's scan and for shutdown. clients_changed is
 * signalled when a client leaves or a callback returns. */
static struct conn *clients;
static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clients_changed = PTHREAD_COND_INITIALIZER;
static int callbacks_running;   /* on_callback()s not yet returned */

/* Wakes the main thread: the SIGTERM handler, or a client leaving (a slot
 * is free again). An eventfd, polled beside the listener. */
static int main_wake_fd = -1;

/* --notify wait: the waiter thread, and its own wake-up. aio_suspend can
 * wait only for aiocbs, so a read on an eventfd stays posted: main writes
 * the eventfd when the list must change (the notes' extra event). */
static pthread_t waiter;
static int waiter_wake_fd = -1;
static struct aiocb wake_op;
static uint64_t wake_count;     /* wake_op's buffer */
static atomic_bool stopping;

/* Threads before any of ours or glibc's: 1, or 2 under a sanitizer that
 * runs a thread of its own. Shutdown waits until only these are left. */
static int threads_at_start;

static void setup_aio(void);
static int setup_listener(void);
static void event_loop(int listen_fd);
static bool on_accept(int listen_fd);
static void conn_open(int fd, const char peer[ADDR_TEXT_MAX]);
static void set_notify(struct aiocb *op, struct conn *c);
static int post_read(struct conn *c);
static int post_write(struct conn *c);
static void *waiter_main(void *arg);
static int collect_in_flight(const struct aiocb **list);
static void wake_waiter(void);
static bool conn_complete(struct conn *c);
static void on_callback(union sigval value);
static bool on_read_complete(struct conn *c, int err, ssize_t n);
static bool on_write_complete(struct conn *c, int err, ssize_t n);
static void conn_close(struct conn *c);
static void shutdown_all(int listen_fd);
static void wait_for_helpers(void);
static int count_threads(void);

static const struct model_opt model_opts[] = {
    {"notify", 0, OPT_CHOICE, "wait|callback", "wait|callback", 0, 0,
     "wait: aio_suspend in a waiter thread (default); callback: "
     "SIGEV_THREAD", &notify},
};

static const struct model_info model = {
    .program = "06-aio-overlapped/server",
    .summary = "POSIX AIO: an aiocb per request, completion by aio_suspend "
               "or SIGEV_THREAD",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = MAX_CLIENTS_LIMIT,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("aio", opts.verbose);
    stats_init(&stats);

    /* A helper thread's write() to a reset client gets EPIPE (glibc's
     * helpers block every signal); SIG_IGN makes sure of it. */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");
    /* SIGTERM by a handler, not sigwait(): glibc starts callback threads
     * with no signal blocked (PITFALLS 10), so the signal may land on one
     * of them; a handler runs wherever it lands and wakes the main thread. */
    main_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (main_wake_fd == -1)
        die("eventfd");
    sig_set_wake_fd(main_wake_fd);
    if (sig_catch_stop() == -1)
        die("sigaction(SIGTERM)");

    setup_aio();
    int listen_fd = setup_listener();
    event_loop(listen_fd);
    shutdown_all(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] glibc's AIO is a pool of helper threads, each doing one blocking
 * read() or write() at a time. A client waiting for input holds one, so
 * the pool must hold -c of them (+1 for the waiter's wake_op), or idle
 * clients would starve the rest (PITFALLS 2). aio_init must come before
 * the first request. In wait mode the waiter starts here too, with the stop
 * signals blocked: they are the main thread's business. */
static void setup_aio(void)
{
    struct aioinit init = {
        .aio_threads = opts.max_clients + 1,
        .aio_num = opts.max_clients + 1,
        .aio_idle_time = HELPER_IDLE_SECONDS,
    };
    threads_at_start = count_threads();
    aio_init(&init);  /* returns nothing: glibc takes what it can */
    log_event("aio_init: up to %d helper threads (-c %d, one per client)",
              init.aio_threads, opts.max_clients);
    if (notify != NOTIFY_WAIT)
        return;

    waiter_wake_fd = eventfd(0, EFD_CLOEXEC);  /* blocking: a helper waits */
    if (waiter_wake_fd == -1)
        die("eventfd");
    sigset_t old;
    int rc = sig_block_stop(&old);
    if (rc != 0)
        die_code(rc, "pthread_sigmask");
    rc = pthread_create(&waiter, NULL, waiter_main, NULL);
    if (rc != 0)
        die_code(rc, "pthread_create(waiter)");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* socket/bind/listen, then the one line on stdout. The listener is
 * non-blocking (we accept until EAGAIN); client sockets are blocking. */
static int setup_listener(void)
{
    int listen_fd = net_listen(opts.host, opts.port,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (listen_fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    if (net_announce(listen_fd) == -1)
        die("announce");
    return listen_fd;
}

/* [S2] The main thread only accepts. It polls the listener while there is
 * room for a client, and the wake-up eventfd always: a client leaving or
 * SIGTERM. Out of descriptors, it stops watching the listener for a while
 * (retrying at once would spin: PITFALLS 1). */
static void event_loop(int listen_fd)
{
    bool paused = false;  /* by EMFILE, for EMFILE_PAUSE_MS */

    while (!sig_stop_requested()) {
        bool room = stats_current(&stats) < opts.max_clients;
        struct pollfd fds[2] = {
            {.fd = main_wake_fd, .events = POLLIN},
            {.fd = listen_fd, .events = (room && !paused) ? POLLIN : 0},
        };
        int ready = poll(fds, 2, paused ? EMFILE_PAUSE_MS : -1);
        if (ready == -1 && errno == EINTR)
            continue;  /* EINTR: the SIGTERM handler ran on this thread */
        if (ready == -1)
            die("poll");
        paused = false;  /* timed out, or woken: try accepting again */
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            if (read(main_wake_fd, &count, sizeof(count)) == -1 &&
                errno != EAGAIN)
                die("read(eventfd)");
        }
        if (fds[1].revents & POLLIN)
            paused = on_accept(listen_fd);
    }
    log_event("stop requested: shutting down");
}

/* Accept every client the backlog holds, up to -c. Returns true when
 * accept() ran out of descriptors (the loop then pauses). */
static bool on_accept(int listen_fd)
{
    char peer[ADDR_TEXT_MAX];

    while (stats_current(&stats) < opts.max_clients) {
        /* No SOCK_NONBLOCK: glibc's helper must block in read() until
         * bytes come; on a non-blocking socket the request would end at
         * once with EAGAIN. */
        int fd = net_accept(listen_fd, SOCK_CLOEXEC, peer, sizeof(peer));
        if (fd != -1) {
            conn_open(fd, peer);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return false;  /* EAGAIN: the backlog is empty */
        if (errno == EINTR)
            continue;      /* EINTR: the handler ran; the loop re-checks */
        if (net_accept_exhausted(errno)) {
            warn_errno("accept (pausing %d ms)", EMFILE_PAUSE_MS);
            return true;
        }
        if (!net_accept_transient(errno))
            die("accept");  /* EBADF, EINVAL...: a bug, not a client */
        warn_errno("accept");
    }
    log_event("%d clients: not accepting until one leaves",
              stats_current(&stats));
    return false;
}

/* [S3] A new client: into the list, then its first read is posted. From
 * aio_read() on, the completion may be handled on another thread at any
 * moment: c->lock keeps that thread waiting until we are done with c. */
static void conn_open(int fd, const char peer[ADDR_TEXT_MAX])
{
    struct conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("malloc(conn fd=%d): closing", fd);
        free(c);
        close(fd);
        return;
    }
    if ((rc = pthread_mutex_init(&c->lock, NULL)) != 0)
        die_code(rc, "pthread_mutex_init");
    c->fd = fd;
    memcpy(c->peer, peer, sizeof(c->peer));
    pthread_mutex_lock(&clients_lock);
    c->next = clients;
    if (clients != NULL)
        clients->prev = c;
    clients = c;
    pthread_mutex_unlock(&clients_lock);
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);

    pthread_mutex_lock(&c->lock);
    rc = post_read(c);
    pthread_mutex_unlock(&c->lock);
    if (rc == -1)
        conn_close(c);  /* nothing in flight: no completion will come */
    else if (notify == NOTIFY_WAIT)
        wake_waiter();  /* its list must now include this read */
}

/* How the request's end is reported: nothing (the waiter asks), or a call
 * to on_callback() on a new thread. Either way sival_ptr leads back from
 * the aiocb to its conn, as the notes' per-I/O data leads to its socket. */
static void set_notify(struct aiocb *op, struct conn *c)
{
    op->aio_sigevent.sigev_value.sival_ptr = c;
    if (notify == NOTIFY_WAIT) {
        op->aio_sigevent.sigev_notify = SIGEV_NONE;
        return;
    }
    op->aio_sigevent.sigev_notify = SIGEV_THREAD;
    op->aio_sigevent.sigev_notify_function = on_callback;
    op->aio_sigevent.sigev_notify_attributes = NULL;  /* default thread */
}

/* Win32: WSARecv(s, &wsabuf, 1, ..., &overlapped, NULL) - returns at once
 * (WSA_IO_PENDING); the read fills the free part of the echo buffer. From
 * here until its completion the buffer and the aiocb are glibc's: neither
 * may be touched, moved or freed (PITFALLS 3). With c->lock held. */
static int post_read(struct conn *c)
{
    memset(&c->read_op, 0, sizeof(c->read_op));
    c->read_op.aio_fildes = c->fd;
    c->read_op.aio_buf = buf_tail(&c->echo);
    c->read_op.aio_nbytes = buf_space(&c->echo);
    set_notify(&c->read_op, c);
    c->in_flight = OP_READ;
    if (aio_read(&c->read_op) == -1) {
        /* EAGAIN: glibc could not queue it (no thread, no memory) */
        warn_errno("aio_read(fd=%d): closing", c->fd);
        c->in_flight = OP_NONE;
        return -1;
    }
    log_trace("post read fd=%d %zu bytes", c->fd, c->read_op.aio_nbytes);
    return 0;
}

/* Win32: WSASend(s, &wsabuf, 1, ..., &overlapped, NULL) - the bytes
 * waiting in the echo buffer. No read is in flight now: glibc runs the
 * requests of one descriptor in order, and this write would wait behind a
 * read until the client sent more (PITFALLS 2). With c->lock held. */
static int post_write(struct conn *c)
{
    memset(&c->write_op, 0, sizeof(c->write_op));
    c->write_op.aio_fildes = c->fd;
    c->write_op.aio_buf = buf_head(&c->echo);
    c->write_op.aio_nbytes = buf_len(&c->echo);
    set_notify(&c->write_op, c);
    c->in_flight = OP_WRITE;
    if (aio_write(&c->write_op) == -1) {
        warn_errno("aio_write(fd=%d): closing", c->fd);
        c->in_flight = OP_NONE;
        return -1;
    }
    log_trace("post write fd=%d %zu bytes", c->fd, c->write_op.aio_nbytes);
    return 0;
}

/* [S4] --notify wait: the notes' worker thread. Win32:
 * WSAWaitForMultipleEvents(n, events, FALSE, WSA_INFINITE, FALSE), then
 * WSAGetOverlappedResult on each. aio_suspend() returns when any request
 * of the list has finished, but says not which: we ask every one. There is
 * no 64-entry limit, but the list is rebuilt and scanned every turn: the
 * cost grows with the clients, as select's does. */
static void *waiter_main(void *arg)
{
    const struct aiocb **list = calloc(opts.max_clients + 1, sizeof(*list));
    (void)arg;

    if (list == NULL)
        die("calloc(%d aiocb pointers)", opts.max_clients + 1);
    memset(&wake_op, 0, sizeof(wake_op));
    wake_op.aio_fildes = waiter_wake_fd;
    wake_op.aio_buf = &wake_count;
    wake_op.aio_nbytes = sizeof(wake_count);
    wake_op.aio_sigevent.sigev_notify = SIGEV_NONE;
    if (aio_read(&wake_op) == -1)
        die("aio_read(wake eventfd)");

    for (;;) {
        int n = collect_in_flight(list);
        while (aio_suspend(list, n, NULL) == -1)
            if (errno != EINTR)  /* EINTR: a signal; nothing finished */
                die("aio_suspend(%d requests)", n);
        log_trace("aio_suspend: woke over %d requests", n);
        for (int i = 1; i < n; i++) {
            struct conn *c = list[i]->aio_sigevent.sigev_value.sival_ptr;
            pthread_mutex_lock(&c->lock);
            bool finished = conn_complete(c);
            pthread_mutex_unlock(&c->lock);
            if (finished)
                conn_close(c);
        }
        if (aio_error(&wake_op) == EINPROGRESS)
            continue;
        (void)aio_return(&wake_op);  /* the eventfd's count: not needed */
        if (atomic_load(&stopping))
            break;  /* every client is gone: see shutdown_all */
        if (aio_read(&wake_op) == -1)
            die("aio_read(wake eventfd)");
    }
    free(list);
    return NULL;
}

/* The waiter's list: wake_op first, then each client's request in flight.
 * A client between requests has none (in conn_open, or being closed). */
static int collect_in_flight(const struct aiocb **list)
{
    int n = 0;

    list[n++] = &wake_op;
    pthread_mutex_lock(&clients_lock);
    for (struct conn *c = clients; c != NULL; c = c->next) {
        pthread_mutex_lock(&c->lock);
        if (c->in_flight == OP_READ)
            list[n++] = &c->read_op;
        else if (c->in_flight == OP_WRITE)
            list[n++] = &c->write_op;
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_unlock(&clients_lock);
    return n;  /* at most -c + 1: main accepts only below -c */
}

/* Win32: WSASetEvent on the extra event: the waiter's list must change. */
static void wake_waiter(void)
{
    uint64_t one = 1;

    if (write(waiter_wake_fd, &one, sizeof(one)) == -1)
        die("write(eventfd)");
}

/* [S5] Has c's request finished, and how? With c->lock held. Returns true
 * when c must be closed (then nothing is in flight for it any more). */
static bool conn_complete(struct conn *c)
{
    enum op_kind kind = c->in_flight;
    struct aiocb *op = kind == OP_READ ? &c->read_op : &c->write_op;

    if (kind == OP_NONE)
        return false;
    /* Win32: WSAGetOverlappedResult(fWait=FALSE) failing with
     * WSA_IO_INCOMPLETE; the notes' Internal == 0x103 (STATUS_PENDING) */
    int err = aio_error(op);
    if (err == EINPROGRESS)
        return false;
    /* Win32: WSAGetOverlappedResult's byte count. Exactly once per
     * request: it hands glibc's record of the request back. */
    ssize_t n = aio_return(op);
    c->in_flight = OP_NONE;
    log_trace("%s done fd=%d: %zd bytes%s%s", kind == OP_READ ? "read"
              : "write", c->fd, n, err ? ", " : "", err ? strerror(err) : "");
    if (kind == OP_READ)
        return on_read_complete(c, err, n);
    return on_write_complete(c, err, n);
}

/* [S6] --notify callback: glibc starts a new thread for each finished
 * request and calls this there (SIGEV_THREAD). Win32's completion routine
 * runs as an APC on the thread that posted the request, only when that
 * thread waits alertably (SleepEx, WSAWaitForMultipleEvents(..., TRUE)):
 * one thread, at moments it chooses. Here callbacks for different clients
 * run at the same time, on threads we never created: hence c->lock, and
 * the count that lets shutdown_all wait for the last of them. */
static void on_callback(union sigval value)
{
    struct conn *c = value.sival_ptr;

    pthread_mutex_lock(&clients_lock);
    callbacks_running++;
    pthread_mutex_unlock(&clients_lock);

    pthread_mutex_lock(&c->lock);
    bool finished = conn_complete(c);
    pthread_mutex_unlock(&c->lock);
    if (finished)
        conn_close(c);  /* its last completion: no callback will follow */

    pthread_mutex_lock(&clients_lock);
    callbacks_running--;
    pthread_cond_broadcast(&clients_changed);
    pthread_mutex_unlock(&clients_lock);
}

/* [S7] A read finished: n bytes are in the echo buffer (0: the client left;
 * the buffer was empty, so all is echoed). Post their write. */
static bool on_read_complete(struct conn *c, int err, ssize_t n)
{
    if (err != 0) {
        log_event("read fd=%d: %s", c->fd, strerror(err));
        return true;
    }
    if (n == 0)
        return true;  /* the client shut down its side */
    buf_commit(&c->echo, (size_t)n);
    return post_write(c) == -1;
}

/* A write finished: n bytes went back. A short write posts the rest; an
 * empty buffer posts the next read. Waiting for this write before reading
 * again is the backpressure: at most one buffer per client is held. */
static bool on_write_complete(struct conn *c, int err, ssize_t n)
{
    if (err != 0) {  /* EPIPE, ECONNRESET: the client went away */
        log_event("write fd=%d: %s", c->fd, strerror(err));
        return true;
    }
    stats_echoed(&stats, (unsigned long long)n);
    buf_consume(&c->echo, (size_t)n);
    if (!buf_empty(&c->echo))
        return post_write(c) == -1;
    return post_read(c) == -1;
}

/* Only with nothing in flight: glibc no longer holds c's buffer or aiocbs.
 * Out of the list first, so that shutdown_all never shuts down a closed
 * (or reused) descriptor number. */
static void conn_close(struct conn *c)
{
    pthread_mutex_lock(&clients_lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_cond_broadcast(&clients_changed);
    pthread_mutex_unlock(&clients_lock);

    if (close(c->fd) == -1)  /* Win32: closesocket */
        warn_errno("close(fd=%d)", c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    pthread_mutex_destroy(&c->lock);
    buf_free(&c->echo);
    free(c);
    if (now == opts.max_clients - 1) {  /* a slot is free: accept again */
        uint64_t one = 1;
        if (write(main_wake_fd, &one, sizeof(one)) == -1)
            warn_errno("write(eventfd)");
    }
}

/* [S8] close() would not end a read a helper thread is blocked in, and
 * its completion would later land in freed memory (PITFALLS 3). Win32:
 * CancelIo - aio_cancel() here, which for a socket read already running
 * answers AIO_NOTCANCELED. shutdown(2) does end it: the read returns 0,
 * the write EPIPE, and each completion closes its client as usual. Then
 * we wait for every one, stop the waiter, and let glibc's threads go. */
static void shutdown_all(int listen_fd)
{
    struct timespec deadline;
    int rc = 0;

    if (close(listen_fd) == -1)
        warn_errno("close(listen fd=%d)", listen_fd);
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += SHUTDOWN_WAIT_MS / 1000;

    pthread_mutex_lock(&clients_lock);
    for (struct conn *c = clients; c != NULL; c = c->next) {
        int cancel = aio_cancel(c->fd, NULL);
        log_trace("aio_cancel(fd=%d): %s", c->fd,
                  cancel == AIO_NOTCANCELED ? "AIO_NOTCANCELED"
                  : cancel == AIO_CANCELED  ? "AIO_CANCELED"
                                            : "AIO_ALLDONE or error");
        shutdown(c->fd, SHUT_RDWR);  /* ENOTCONN after a reset: fine */
    }
    while ((clients != NULL || callbacks_running > 0) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&clients_changed, &clients_lock,
                                    &deadline);
    pthread_mutex_unlock(&clients_lock);
    if (rc == ETIMEDOUT)  /* a completion never came: freeing is unsafe */
        die_code(rc, "shutdown: requests still in flight after %d ms",
                 SHUTDOWN_WAIT_MS);

    if (notify == NOTIFY_WAIT) {
        atomic_store(&stopping, true);
        wake_waiter();  /* its wake_op completes; it sees stopping */
        if ((rc = pthread_join(waiter, NULL)) != 0)
            die_code(rc, "pthread_join(waiter)");
        close(waiter_wake_fd);
    }
    wait_for_helpers();
    sig_set_wake_fd(-1);
    close(main_wake_fd);
}

/* glibc has no call that ends its helper threads: an idle one leaves
 * after aio_idle_time (and a callback thread just after its callback).
 * Exiting before they have gone leaves their stacks to valgrind as
 * "possibly lost" (PITFALLS 11), so wait, bounded, until only the threads
 * of the start are left. */
static void wait_for_helpers(void)
{
    const struct timespec tick = {0, 20 * 1000 * 1000};
    int threads = count_threads();

    for (int waited_ms = 0; threads > threads_at_start &&
                            waited_ms < (HELPER_IDLE_SECONDS + 2) * 1000;
         waited_ms += 20) {
        nanosleep(&tick, NULL);  /* EINTR: just look again sooner */
        threads = count_threads();
    }
    if (threads > threads_at_start)
        warn("%d helper threads still running at exit",
             threads - threads_at_start);
}

/* /proc/self/task holds one entry per thread of this process. */
static int count_threads(void)
{
    DIR *tasks = opendir("/proc/self/task");
    int threads = 0;

    if (tasks == NULL) {
        warn_errno("opendir(/proc/self/task)");
        return 0;  /* then nothing is waited for */
    }
    for (struct dirent *e; (e = readdir(tasks)) != NULL;)
        threads += e->d_name[0] != '.';
    closedir(tasks);
    return threads;
}
