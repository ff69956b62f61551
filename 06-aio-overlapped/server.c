/* 06-aio-overlapped/server.c - overlapped I/O: post a recv or a send, go on,
 * and be told when it is done.
 *
 * Each client has one request in flight at a time, described by a struct
 * aiocb (the notes' WSAOVERLAPPED): a recv into its echo buffer, then a
 * send of what came, then the next recv. aio_read/aio_write return at
 * once; the request runs meanwhile, and its end is reported one of two ways:
 *   --notify wait      a waiter thread sleeps in aio_suspend() over every
 *                      outstanding aiocb (WSAWaitForMultipleEvents on the
 *                      hEvents), then asks each one aio_error()/aio_return()
 *   --notify callback  glibc calls on_callback() on a thread of its own for
 *                      each finished request (SIGEV_THREAD: the completion
 *                      routine - but not run as an APC; see on_callback)
 * POSIX AIO has no AcceptEx: the main thread accepts, as in the notes.
 *
 *   [S1] setup_aio, setup_stop, setup_listener: glibc's helper-thread pool
 *        sized to -c (aio_init), the waiter, a wake-up eventfd for main
 *   [S2] event_loop: the main thread polls the listener and its eventfd;
 *        worker_main: the waiter sleeps in aio_suspend()  (--notify wait)
 *   [S3] on_accept, conn_open: the client's first recv    (Win32: WSARecv)
 *   [S4] on_complete: aio_error, aio_return (WSAGetOverlappedResult), then
 *        on_recv_complete posts the send of what came    (Win32: WSASend)
 *   [S5] on_send_complete: short? send the rest : post the next recv
 *   [S6] 0 bytes or an error: conn_close, with nothing in flight
 *   [S7] SIGTERM: shutdown_all: shutdown(2) every socket, wait for every
 *        completion, stop the waiter and glibc's threads, free
 *   [S8] the oldest client's idle deadline ends a wait: aio_suspend's
 *        timeout (wait), main's poll() timeout (callback); close_idle
 *        shutdown(2)s the client, and its completion closes it
 *
 * Linux differs here more than anywhere (NOTES §7.2, §7.3, §7.10, §7.11):
 * glibc runs each request on a helper thread doing a blocking read() or
 * write(), so an idle client holds a thread as long as it stays idle;
 * requests on one descriptor run one after another, so a send posted
 * behind a pending recv would wait for the client's next bytes - which
 * never come, since the client waits for its echo. Hence one request per
 * client at a time.
 *
 * Try:  ./server -v                      then: nc 127.0.0.1 9006
 *       ./server --notify callback -vv   one glibc thread per completion
 *       grep Threads /proc/$(pgrep -n server)/status   (with idle clients)
 * gdb:  make gdb M=06   (walkthrough.gdb: break conn_post, on_complete,
 *       on_send_complete, conn_close, shutdown_all; info threads)
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
#define MAX_CLIENTS_LIMIT 10000  /* one helper thread per client */
#define EMFILE_PAUSE_MS 100     /* out of descriptors: stop accepting */
#define ACCEPT_BATCH 64         /* accepts per turn: a flood waits its turn */
#define HELPER_IDLE_SECONDS 1   /* an idle helper thread leaves after this */
#define HELPERS_WAIT_MS 3000    /* for glibc's idle helpers to leave */
#define SHUTDOWN_WAIT_MS 5000   /* for the last completions at SIGTERM */

enum notify { NOTIFY_WAIT, NOTIFY_CALLBACK };
enum op_kind { OP_NONE, OP_RECV, OP_SEND };

/* One client: the notes' per-socket data, with its per-I/O data (op). */
struct conn {
    int fd;                     /* a blocking socket: the helper blocks */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    struct aiocb op;            /* Win32: the WSAOVERLAPPED of its request */
    enum op_kind in_flight;     /* which request glibc has now, or OP_NONE */
    pthread_mutex_t lock;       /* held by whoever posts or completes */
    struct conn *prev, *next;   /* the open clients */
    struct idle_entry idle;     /* its place in idle_clients (idle_lock) */
};

static struct server_opts opts;
static int notify = NOTIFY_WAIT;  /* --notify */
static struct stats stats;
static int listen_fd = -1;
/* Wakes the main thread: the SIGTERM handler, or a client leaving (a slot,
 * a descriptor free again). An eventfd, polled beside the listener. */
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

/* Every client, for the waiter's scan and for shutdown. clients_changed is
 * signalled when a client leaves or a callback returns. */
static struct conn *clients;
static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t clients_changed = PTHREAD_COND_INITIALIZER;
static int callbacks_running;   /* on_callback()s not yet returned */
/* EMFILE: clock_ms() to resume, or 0. Atomic: conn_close ends the pause
 * on the thread that completes, while main reads it. */
static atomic_llong accept_paused_until;
/* [S8] Touched by whichever thread completes a request, added to by main:
 * a lock of its own, taken last and alone (never with another held under
 * it), so it adds no lock order to clients_lock -> c->lock. The thread
 * that keeps time: the waiter (wait), main (callback). */
static struct idle_list idle_clients; /* [S8] least recently active first */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;

static void setup_aio(void);
static void setup_stop(void);
static int setup_listener(void);
static void event_loop(void);
static void *worker_main(void *arg);
static int collect_in_flight(const struct aiocb **list);
static void wake_waiter(void);
static void on_accept(void);
static void conn_open(int fd, const char *peer);
static bool conn_post(struct conn *c, enum op_kind op);
static bool on_complete(struct conn *c);
static void on_callback(union sigval value);
static bool on_recv_complete(struct conn *c, int error, size_t bytes);
static bool on_send_complete(struct conn *c, int error, size_t bytes);
static void conn_done(struct conn *c, const char *what, int error);
static void conn_close(struct conn *c);
static void close_idle(void);
static void idle_touch_locked(struct conn *c);
static long long idle_wait_ms(void);
static const struct timespec *suspend_timeout(struct timespec *ts);
static void shutdown_all(void);
static void wait_for_helpers(void);
static int count_threads(void);
static bool accepting(void);
static int wait_timeout(void);

static const struct model_opt model_opts[] = {
    {.name = "notify",
     .kind = OPT_CHOICE,
     .arg_name = "wait|callback",
     .choices = "wait|callback",
     .help = "wait: aio_suspend in a waiter thread (default); callback: "
             "SIGEV_THREAD",
     .value = &notify},
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
    idle_init(&idle_clients, opts.idle_timeout);

    /* A helper thread's write() to a reset client gets EPIPE (glibc's
     * helpers block every signal); SIG_IGN makes sure of it. */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    setup_aio();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] glibc's AIO is a pool of helper threads, each doing one blocking
 * read() or write() at a time. A client waiting for input holds one, so
 * the pool must hold -c of them (+1 for the waiter's wake_op), or idle
 * clients would starve the rest (NOTES §7.2). aio_init must come before
 * the first request. In wait mode the waiter starts here too. */
static void setup_aio(void)
{
    struct aioinit init = {
        .aio_threads = opts.max_clients + 1,
        .aio_num = opts.max_clients + 1,
        .aio_idle_time = HELPER_IDLE_SECONDS,
    };
    int rc;

    threads_at_start = count_threads();
    aio_init(&init);  /* returns nothing: glibc takes what it can */
    log_event("aio_init: up to %d helper threads (-c %d, one per client)",
              init.aio_threads, opts.max_clients);
    if (notify != NOTIFY_WAIT)
        return;
    waiter_wake_fd = eventfd(0, EFD_CLOEXEC);  /* blocking: a helper waits */
    if (waiter_wake_fd == -1)
        die("eventfd");
    if ((rc = pthread_create(&waiter, NULL, worker_main, NULL)) != 0)
        die_code(rc, "pthread_create(waiter)");
}

/* [S1] SIGINT/SIGTERM by a handler, not sigwait(): glibc starts callback
 * threads with every signal unblocked (NOTES §7.10), so the signal may land
 * on one of them (or on the waiter). A handler runs wherever it lands: it
 * sets the stop flag and writes main_wake_fd, which the main thread polls
 * beside the listener.
 * Win32: WSASetEvent on one more event in the WSAWaitForMultipleEvents set;
 * an eventfd written to is the same idea. */
static void setup_stop(void)
{
    main_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (main_wake_fd == -1)
        die("eventfd");
    sig_set_wake_fd(main_wake_fd);
    if (sig_catch_stop() == -1)
        die("sigaction(SIGTERM)");
}

/* [S1] socket/bind/listen, then the one line on stdout (last: a test may
 * count our descriptors as soon as it reads it). Nonblocking: a client may
 * reset between poll()'s POLLIN and our accept(); a blocking accept()
 * would then wait for the next client. */
static int setup_listener(void)
{
    int fd = net_listen(opts.host, opts.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S2] The main thread only accepts. It polls the listener while
 * accepting(), and its eventfd always: SIGTERM, or a client leaving (a
 * slot free, an EMFILE pause over). Win32: WSAWaitForMultipleEvents over
 * the listener's FD_ACCEPT event and the one WSASetEvent signals. In
 * callback mode it is the one thread that waits, so it keeps time [S8]. */
static void event_loop(void)
{
    uint64_t count;

    while (!sig_stop_requested()) {
        struct pollfd fds[2] = {
            {.fd = main_wake_fd, .events = POLLIN},
            {.fd = listen_fd, .events = accepting() ? POLLIN : 0},
        };
        int ready = poll(fds, 2, wait_timeout());
        if (ready == -1 && errno == EINTR)
            continue;  /* EINTR: the SIGTERM handler ran on this thread */
        if (ready == -1 && errno == ENOMEM) {
            back_off("poll");  /* the kernel is short of memory for now */
            continue;
        }
        if (ready == -1)
            die("poll");  /* EFAULT, EINVAL: a bug */
        if ((fds[0].revents & POLLIN) &&
            read(main_wake_fd, &count, sizeof(count)) == -1 &&
            errno != EAGAIN && errno != EINTR)
            die("read(eventfd)");  /* EINTR: still readable next turn */
        if (fds[1].revents & POLLIN)
            on_accept();
        if (notify == NOTIFY_CALLBACK)
            close_idle();  /* [S8] the waiter does it in wait mode */
    }
}

/* [S2a] --notify wait: the notes' worker thread. Win32:
 * WSAWaitForMultipleEvents(n, events, FALSE, dwTimeout, FALSE), then
 * WSAGetOverlappedResult on each. aio_suspend() returns when any request
 * of the list has finished, but says not which: we ask every one. There is
 * no 64-entry limit, but the list is rebuilt and scanned every turn: the
 * cost grows with the clients, as select's does. [S8] Its timeout is the
 * idle timer: it fails with EAGAIN at the oldest client's deadline. */
static void *worker_main(void *arg)
{
    const struct aiocb **list = calloc(opts.max_clients + 1, sizeof(*list));
    struct timespec timeout;
    (void)arg;

    if (list == NULL)
        die("calloc(%d aiocb pointers)", opts.max_clients + 1);
    wake_op.aio_fildes = waiter_wake_fd;
    wake_op.aio_buf = &wake_count;
    wake_op.aio_nbytes = sizeof(wake_count);
    wake_op.aio_sigevent.sigev_notify = SIGEV_NONE;
    if (aio_read(&wake_op) == -1)
        die("aio_read(wake eventfd)");

    for (;;) {
        int n = collect_in_flight(list);
        /* EAGAIN: the timeout [S8]; EINTR: a signal. Nothing finished:
         * the asking below finds nothing, close_idle may. */
        if (aio_suspend(list, n, suspend_timeout(&timeout)) == -1 &&
            errno != EAGAIN && errno != EINTR)
            die("aio_suspend(%d requests)", n);
        log_trace("aio_suspend: woke over %d requests", n);
        for (int i = 1; i < n; i++)  /* sival_ptr: the request's conn */
            on_complete(list[i]->aio_sigevent.sigev_value.sival_ptr);
        close_idle();  /* every turn, not on EAGAIN only: see S8 */
        if (aio_error(&wake_op) == EINPROGRESS)
            continue;
        (void)aio_return(&wake_op);  /* the eventfd's count: not needed */
        if (atomic_load(&stopping))
            break;  /* every client is gone: see shutdown_all */
        /* EAGAIN: glibc is short of threads or memory for now. Without
         * this request nobody could wake us: retry until it is posted. */
        while (aio_read(&wake_op) == -1) {
            if (errno != EAGAIN)
                die("aio_read(wake eventfd)");  /* EBADF, EINVAL: a bug */
            back_off("aio_read(wake eventfd)");
        }
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
        if (c->in_flight != OP_NONE)
            list[n++] = &c->op;
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

/* [S3] Accepts the clients waiting in the listen backlog, up to
 * ACCEPT_BATCH this turn and -c in all. */
static void on_accept(void)
{
    for (int i = 0; i < ACCEPT_BATCH && accepting(); i++) {
        char peer[ADDR_TEXT_MAX];
        /* No SOCK_NONBLOCK: glibc's helper must block in read() until
         * bytes come; on a non-blocking socket the request would end at
         * once with EAGAIN. */
        int fd = net_accept(listen_fd, SOCK_CLOEXEC, peer, sizeof(peer));
        if (fd == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;  /* EAGAIN: nobody is waiting any more */
        if (fd == -1 && net_accept_exhausted(errno)) {
            /* EMFILE: out of descriptors. The listener stays readable, so
             * the wait would return at once and accept() fail again: a busy
             * loop (NOTES §7.1). Stop watching it until a client leaves, or
             * for EMFILE_PAUSE_MS, in case no client of ours frees one. */
            warn_errno("accept (pausing %d ms)", EMFILE_PAUSE_MS);
            accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
            return;
        }
        if (fd == -1 && (errno == EINTR || net_accept_transient(errno)))
            continue;  /* one aborted connection: try the next */
        if (fd == -1)
            die("accept");  /* EBADF, EINVAL...: a bug, not a client */
        conn_open(fd, peer);
    }
}

/* [S3] A new client: into the list, then its first recv is posted. From
 * aio_read() on, the completion may be handled on another thread at any
 * moment: c->lock keeps that thread waiting until we are done with c. */
static void conn_open(int fd, const char *peer)
{
    struct conn *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("accept fd=%d: no memory, closing", fd);
        goto fail;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%d)", fd);
    c->fd = fd;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    if ((rc = pthread_mutex_init(&c->lock, NULL)) != 0)
        die_code(rc, "pthread_mutex_init");
    pthread_mutex_lock(&clients_lock);
    c->next = clients;
    if (clients != NULL)
        clients->prev = c;
    clients = c;
    pthread_mutex_unlock(&clients_lock);
    pthread_mutex_lock(&idle_lock);
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    pthread_mutex_unlock(&idle_lock);
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);

    pthread_mutex_lock(&c->lock);
    bool posted = conn_post(c, OP_RECV);
    pthread_mutex_unlock(&c->lock);
    if (!posted)
        conn_close(c);  /* nothing in flight: no completion will come */
    else if (notify == NOTIFY_WAIT)
        wake_waiter();  /* its list must now include this recv */
    return;
fail:
    if (c != NULL)
        buf_free(&c->echo);  /* calloc'd: free(NULL) if not set up */
    free(c);
    close(fd);
}

/* Posts c's next request, which returns at once (Win32: WSA_IO_PENDING):
 * a recv into the free part of the echo buffer, or a send of the bytes it
 * holds. From here until its completion the buffer and the aiocb are
 * glibc's: neither may be touched, moved or freed (NOTES §7.3). One at a
 * time: glibc runs the requests of one descriptor in order, so a send
 * queued behind a recv would wait until the client sent more (NOTES §7.2).
 * With c->lock held. Returns false when glibc refused it (EAGAIN: no
 * thread, no memory): nothing is in flight then. */
static bool conn_post(struct conn *c, enum op_kind op)
{
    int rc;

    memset(&c->op, 0, sizeof(c->op));
    c->op.aio_fildes = c->fd;
    /* How its end is reported: not at all (the waiter asks), or by a call
     * to on_callback() on a new thread (SIGEV_NONE ignores the function).
     * sival_ptr leads back to c, as the notes' per-I/O data leads to its
     * socket. */
    c->op.aio_sigevent.sigev_notify =
        notify == NOTIFY_CALLBACK ? SIGEV_THREAD : SIGEV_NONE;
    c->op.aio_sigevent.sigev_notify_function = on_callback;
    c->op.aio_sigevent.sigev_value.sival_ptr = c;
    if (op == OP_RECV) {  /* Win32: WSARecv(s, &wsabuf, 1, .., &ov, NULL) */
        c->op.aio_buf = buf_tail(&c->echo);
        c->op.aio_nbytes = buf_space(&c->echo);
        rc = aio_read(&c->op);
    } else {  /* Win32: WSASend(s, &wsabuf, 1, .., &ov, NULL) */
        c->op.aio_buf = buf_head(&c->echo);
        c->op.aio_nbytes = buf_len(&c->echo);
        rc = aio_write(&c->op);
    }
    if (rc == -1) {
        warn_errno("aio_%s(fd=%d): closing", op == OP_RECV ? "read" : "write",
                   c->fd);
        return false;
    }
    c->in_flight = op;
    log_trace("post %s fd=%d %zu bytes", op == OP_RECV ? "recv" : "send",
              c->fd, c->op.aio_nbytes);
    return true;
}

/* [S4] Has c's request finished, and how? The waiter asks every request
 * of its list; a callback, the one that finished. Under c->lock: a
 * completion handled on another thread waits until we are done with c.
 * Returns false when c was closed (its request ended it). */
static bool on_complete(struct conn *c)
{
    bool alive = true;

    pthread_mutex_lock(&c->lock);
    enum op_kind op = c->in_flight;
    /* Win32: WSAGetOverlappedResult(fWait=FALSE) failing with
     * WSA_IO_INCOMPLETE; the notes' Internal == 0x103 (STATUS_PENDING) */
    int error = op == OP_NONE ? EINPROGRESS : aio_error(&c->op);
    if (error != EINPROGRESS) {
        /* Win32: WSAGetOverlappedResult's byte count. Exactly once per
         * request: it hands glibc's record of the request back. */
        ssize_t n = aio_return(&c->op);  /* -1 with an error */
        size_t bytes = error == 0 ? (size_t)n : 0;
        c->in_flight = OP_NONE;
        alive = op == OP_RECV ? on_recv_complete(c, error, bytes)
                              : on_send_complete(c, error, bytes);
    }
    pthread_mutex_unlock(&c->lock);
    if (!alive)
        conn_close(c);  /* nothing in flight: no completion will follow */
    return alive;
}

/* --notify callback: glibc starts a new thread for each finished request
 * and calls this there (SIGEV_THREAD). Win32's completion routine runs as
 * an APC on the thread that posted the request, only when that thread
 * waits alertably (SleepEx, WSAWaitForMultipleEvents(..., TRUE)): one
 * thread, at moments it chooses. Here callbacks for different clients run
 * at the same time, on threads we never created: hence c->lock, and the
 * count that lets shutdown_all wait for the last of them. */
static void on_callback(union sigval value)
{
    pthread_mutex_lock(&clients_lock);
    callbacks_running++;
    pthread_mutex_unlock(&clients_lock);
    on_complete(value.sival_ptr);  /* sival_ptr: the request's conn */
    pthread_mutex_lock(&clients_lock);
    callbacks_running--;
    pthread_cond_broadcast(&clients_changed);
    pthread_mutex_unlock(&clients_lock);
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
    log_trace("recv fd=%d %zu bytes", c->fd, bytes);
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
    log_trace("send fd=%d %zu bytes", c->fd, bytes);
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
    if (error == 0)
        log_event("%s fd=%d: the client left", what, c->fd);
    else  /* ECONNRESET, EPIPE: the notes' error 64 (peer vanished) */
        log_event("%s fd=%d: %s", what, c->fd, strerror(error));
}

/* Only with nothing in flight: glibc no longer holds c's buffer or
 * aiocb (close() would not have ended a request: NOTES §7.3). Out of the
 * list first, so that shutdown_all never shuts down a closed (or reused)
 * descriptor number. Then main is woken: it may have stopped watching the
 * listener, at -c or in an EMFILE pause. */
static void conn_close(struct conn *c)
{
    uint64_t one = 1;

    pthread_mutex_lock(&clients_lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_cond_broadcast(&clients_changed);
    pthread_mutex_unlock(&clients_lock);
    /* Out of the idle list before close(): close_idle, holding idle_lock,
     * may be about to shutdown() this descriptor. */
    pthread_mutex_lock(&idle_lock);
    idle_remove(&c->idle);
    pthread_mutex_unlock(&idle_lock);

    if (close(c->fd) == -1)  /* Win32: closesocket */
        warn_errno("close(fd=%d)", c->fd);
    int now = stats_client_closed(&stats);
    log_event("close fd=%d peer=%s clients=%d", c->fd, c->peer, now);
    accept_paused_until = 0;  /* a descriptor and a slot are free */
    if (write(main_wake_fd, &one, sizeof(one)) == -1)  /* Win32: WSASetEvent */
        warn_errno("write(eventfd)");
    pthread_mutex_destroy(&c->lock);
    buf_free(&c->echo);
    free(c);
}

/* [S8] On the thread that keeps time, after each of its waits (the
 * waiter's aio_suspend, or main's poll in callback mode): the clients idle
 * --idle-timeout seconds. Their request is in flight, on a helper thread
 * blocked in read() or write(), and only its completion may close the
 * client (NOTES §7.3): shutdown(2) ends that read or write, as at
 * SIGTERM, and the completion closes the client as usual. Taken out of the
 * list here, so the loop moves on (and a late touch does not put it back);
 * conn_close takes it out under idle_lock
 * before close(), so the descriptor is still this client's while we hold
 * the lock. (Win32: CancelIoEx, then the completion with
 * ERROR_OPERATION_ABORTED.) */
static void close_idle(void)
{
    long long now = clock_ms();
    struct conn *c;

    pthread_mutex_lock(&idle_lock);
    while ((c = idle_expired(&idle_clients, now)) != NULL) {
        idle_remove(&c->idle);
        log_info("idle fd=%d peer=%s: closed after %d s", c->fd, c->peer,
                 opts.idle_timeout);
        stats_closed_idle(&stats);
        shutdown(c->fd, SHUT_RDWR);  /* ENOTCONN after a reset: fine */
    }
    pthread_mutex_unlock(&idle_lock);
}

/* [S8] Bytes moved on c: it becomes the newest (the callers hold c->lock;
 * idle_lock comes last). */
static void idle_touch_locked(struct conn *c)
{
    pthread_mutex_lock(&idle_lock);
    idle_touch(&idle_clients, &c->idle, clock_ms());
    pthread_mutex_unlock(&idle_lock);
}

/* [S8] ms until the oldest client expires (0: it has), or -1: nobody can
 * (no clients, or --idle-timeout 0). A look at the list's head: no scan. */
static long long idle_wait_ms(void)
{
    pthread_mutex_lock(&idle_lock);
    long long ms = idle_next_ms(&idle_clients, clock_ms());
    pthread_mutex_unlock(&idle_lock);
    return ms;
}

/* [S8] aio_suspend's timeout: a relative struct timespec until the oldest
 * deadline, or NULL to wait for a completion only (Win32: dwTimeout, or
 * WSA_INFINITE). A timeout says only "nothing finished for so long": while
 * requests keep finishing, aio_suspend returns 0 and may never fail with
 * EAGAIN, so worker_main calls close_idle after every turn, whatever ended
 * it (as 02 does after every select). The touches are the waiter's own
 * (it handles every completion); main only adds clients, whose deadlines
 * come last, and wakes the waiter for each: the timeout is recomputed
 * every turn, and is never later than the oldest deadline. */
static const struct timespec *suspend_timeout(struct timespec *ts)
{
    long long ms = idle_wait_ms();

    if (ms == -1)
        return NULL;
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = ms % 1000 * 1000000;
    return ts;
}

/* [S7] close() would not end a recv a helper thread is blocked in, and
 * its completion would later land in freed memory (NOTES §7.3). Win32:
 * CancelIo - aio_cancel() here, which for a socket read already running
 * answers AIO_NOTCANCELED. shutdown(2) does end it: the read returns 0,
 * the write EPIPE, and each completion closes its client as usual. Then
 * we wait for every one, stop the waiter, and let glibc's threads go. */
static void shutdown_all(void)
{
    struct timespec deadline;
    int rc = 0;

    log_event("shutdown: closing %d clients", stats_current(&stats));
    pthread_mutex_lock(&clients_lock);
    for (struct conn *c = clients; c != NULL; c = c->next) {
        if (aio_cancel(c->fd, NULL) == AIO_NOTCANCELED)  /* Win32: CancelIo */
            log_trace("aio_cancel(fd=%d): AIO_NOTCANCELED", c->fd);
        shutdown(c->fd, SHUT_RDWR);  /* ENOTCONN after a reset: fine */
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += SHUTDOWN_WAIT_MS / 1000;
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
 * "possibly lost" (NOTES §7.11), so wait, bounded, until only the threads
 * of the start are left. */
static void wait_for_helpers(void)
{
    for (int ms = 0; count_threads() > threads_at_start && ms < HELPERS_WAIT_MS;
         ms += 20)
        clock_pause_ms(20);  /* a signal: just look again sooner */
    if (count_threads() > threads_at_start)
        warn("glibc's helper threads still running at exit");
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
    while (readdir(tasks) != NULL)
        threads++;
    closedir(tasks);
    return threads - 2;  /* "." and ".." */
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

/* [S8] main's poll() timeout in ms: in callback mode until the oldest
 * client would expire (main keeps time there: glibc's callback threads
 * come and go), or the end of an EMFILE pause if that comes first (the
 * retry timer), or -1: wait for an event. Touches on other threads only
 * move the oldest deadline later: poll() then returns early, and
 * close_idle finds nobody. */
static int wait_timeout(void)
{
    long long now = clock_ms();
    long long paused_until = accept_paused_until;
    long long ms = notify == NOTIFY_CALLBACK ? idle_wait_ms() : -1;

    if (paused_until != 0) {
        long long pause_left = paused_until > now ? paused_until - now : 0;
        if (ms == -1 || pause_left < ms)
            ms = pause_left;
    }
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}
