/* 07-completion-port/server.c - the completion-port model: worker threads
 * take finished operations off one shared completion queue.
 *
 * The notes' last model. Nothing here waits for a socket to be *ready*: we
 * post operations (accept, recv, send) and learn when each one is *done*,
 * from one completion queue (io_uring, wrapped by cport.c as a Win32-style
 * completion port) that -t worker threads share. Each completion brings back
 * the notes' two contexts: the per-socket context (struct conn, the
 * completion key) and the per-I/O context (struct cport_io, the OVERLAPPED).
 * Both come from fixed-size pools, and a conn goes back to its pool only
 * when its last operation has completed (a reference count).
 *
 *   [S1] main: the port, the pools, the listener, -t workers
 *   [S2] post --accepts accepts, each with a free conn reserved
 *   [S3] a worker: cport_get() takes one completion; its handler runs:
 *   [S4]   accept done: associate the socket, post its one recv
 *   [S5]   recv done:   post a send of those bytes (no recv meanwhile)
 *   [S6]   send done:   short? send the rest : post the next recv
 *   [S7]   0 bytes, an error or a cancel: drop the op's reference; the
 *          last reference closes the socket and returns the conn
 *   [S8] SIGTERM: main cancels everything, waits for every completion,
 *        posts one quit message per worker, joins them
 *
 * Win32: CreateIoCompletionPort (the port, then each socket), CreateThread,
 * AcceptEx, WSARecv, WSASend, GetQueuedCompletionStatus,
 * PostQueuedCompletionStatus; see cport.h for the call-by-call map.
 *
 * Try:  ./server -v -t 2               then: nc 127.0.0.1 9007
 *       ./server -vv -t 4              which worker ran each completion
 *       ./server -c 2 --accepts 1 -v   a third client waits its turn
 * gdb:  make gdb M=07   (walkthrough.gdb: cport_associate, conn_post,
 *       conn_release, conn_done; then break on_recv_complete, p *done, p *c,
 *       info threads, thread apply all bt)
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "cport.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

#define DEFAULT_PORT        9007
#define DEFAULT_MAX_CLIENTS 1000
#define MAX_CLIENTS_LIMIT   16000 /* keeps the CQ under the kernel's 65536 */
#define DEFAULT_ACCEPTS     16    /* the notes: post 10-15 AcceptEx */
#define GET_TIMEOUT_MS      1000  /* a worker's GetQueuedCompletionStatus */
#define EMFILE_RETRY_MS     200
#define DRAIN_TIMEOUT_MS    800
#define MSG_QUIT            1 /* the one message main posts */

/* The per-socket context: the completion key. At most one recv or send is
 * in flight on it at a time; a cancel may join it at shutdown. */
struct conn {
    struct cport_handle handle; /* fd, key (this conn), generation */
    pthread_mutex_t lock;       /* guards refs, closing, handle.fd */
    int refs;                   /* operations posted and not yet handled */
    bool closing;               /* being cancelled: post nothing more */
    struct buf echo;            /* received, not yet echoed (<= 64 KiB) */
    char peer[ADDR_TEXT_MAX];
};

static struct server_opts opts;
static int threads; /* -t; 0 until main sets one per CPU */
static int accepts_target = DEFAULT_ACCEPTS;
static struct stats stats;

static struct cport port;            /* the completion port */
static struct cport_handle listener; /* the listening socket on it */
static struct cport_pool conn_pool;  /* per-socket contexts: -c of them */
static struct cport_pool io_pool;    /* per-I/O contexts: one per op */
static atomic_bool stopping;         /* set once, by main, at shutdown */
static _Thread_local int worker_id;  /* -vv: which worker ran a handler */

/* The accepts in flight (at most --accepts, one reserved conn each), and
 * the pause after EMFILE. All guarded by accept_lock. */
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static int accepts_posted;
static bool accept_paused;
static bool retry_timer_armed;

static void setup_port(void);
static int setup_listener(void);
static pthread_t *start_workers(void);
static void *event_loop(void *arg);
static void accepts_top_up(void);
static void accept_finished(int error);
static void on_accept(struct cport_completion *done);
static void on_recv_complete(struct cport_completion *done);
static void on_send_complete(struct cport_completion *done);
static void on_cancel_complete(struct cport_completion *done);
static void on_retry_timer(struct cport_completion *done);
static bool conn_post(struct conn *c, struct cport_io *io, enum cport_op op);
static void conn_done(struct conn *c, struct cport_io *io, const char *what,
                      int error);
static void conn_release(struct conn *c);
static void conn_close(struct conn *c);
static void conn_cancel(void *item);
static void shutdown_server(pthread_t *workers);

static const struct model_opt model_opts[] = {
    {"threads", 't', OPT_INT, "N", NULL, 1, 256,
     "worker threads sharing the port (default: one per usable CPU)", &threads},
    {"accepts", 0, OPT_INT, "K", NULL, 1, 1024,
     "accepts kept posted (default 16; the notes advise 10-15)",
     &accepts_target},
};

static const struct model_info model = {
    .program = "07-completion-port/server",
    .summary = "a completion port (io_uring) shared by a pool of workers",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = MAX_CLIENTS_LIMIT,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    sigset_t old_mask;

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("iocp", opts.verbose);
    stats_init(&stats);
    if (threads == 0) {
        /* Win32: GetSystemInfo -> dwNumberOfProcessors. The CPUs this
         * process may run on, not all the machine's: under taskset -c 1 a
         * second worker would only fight the first for cq_lock. */
        cpu_set_t allowed;
        if (sched_getaffinity(0, sizeof(allowed), &allowed) == -1)
            die("sched_getaffinity");
        threads = CPU_COUNT(&allowed) > 0 ? CPU_COUNT(&allowed) : 1;
    }
    /* IORING_OP_SEND never raises SIGPIPE (PITFALLS 9); this covers the
     * rest, should anyone add a write(). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");
    if (sig_catch_stop() == -1)
        die("sigaction(SIGTERM)");
    /* Workers inherit this mask: only main takes SIGINT/SIGTERM. */
    int rc = sig_block_stop(&old_mask);
    if (rc != 0)
        die_code(rc, "pthread_sigmask");

    setup_port(); /* [S1] */
    int listen_fd = setup_listener();
    pthread_t *workers = start_workers();
    accepts_top_up(); /* [S2] */

    /* The notes' main waits for "quit"; ours for a signal. sigsuspend
     * unblocks the signals and sleeps in one step, so one cannot slip in
     * between the test and the sleep. It always returns -1 (EINTR). */
    while (!sig_stop_requested())
        sigsuspend(&old_mask);
    shutdown_server(workers); /* [S8] */
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] The port and the two pools, sized so that the completion queue
 * holds every operation that can be in flight at once: per client one
 * recv or send, plus a cancel at shutdown; the accepts; the EMFILE timer;
 * the listener's cancel; one quit message per worker. */
static void setup_port(void)
{
    unsigned ios =
        2 * (unsigned)opts.max_clients + (unsigned)accepts_target + 2;
    unsigned in_flight = ios + (unsigned)threads + 1;
    char why[160];

    /* Win32: CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, N) */
    int rc = cport_create(&port, in_flight, (unsigned)threads);
    if (rc == -EPERM || rc == -ENOSYS) {
        /* A sysctl or a container's seccomp profile (PITFALLS 12). */
        log_info("io_uring_queue_init_params: %s (io_uring unavailable here)",
                 err_describe(-rc, why, sizeof(why)));
        exit(EXIT_FAILURE);
    }
    if (rc < 0)
        die_code(-rc, "io_uring_queue_init_params");
    if (cport_pool_init(&conn_pool, (unsigned)opts.max_clients,
                        sizeof(struct conn)) == -1)
        die("conn pool (%d)", opts.max_clients);
    if (cport_pool_init(&io_pool, ios, sizeof(struct cport_io)) == -1)
        die("io pool (%u)", ios);
    for (int i = 0; i < opts.max_clients; i++) {
        struct conn *c = cport_pool_item(&conn_pool, (unsigned)i);
        c->handle.fd = -1;
        c->handle.key = c; /* an accept's completion finds its conn here */
        pthread_mutex_init(&c->lock, NULL);
    }
    log_event("port: %u CQ entries, %d workers, %d accepts", port.cq_entries,
              threads, accepts_target);
}

/* socket/bind/listen, then the one line on stdout. */
static int setup_listener(void)
{
    int listen_fd = net_listen(opts.host, opts.port, SOCK_CLOEXEC);
    if (listen_fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    /* Win32: CreateIoCompletionPort(listen socket, port, key, 0) */
    cport_associate(&port, &listener, listen_fd, &listener);
    if (net_announce(listen_fd) == -1)
        die("announce");
    return listen_fd;
}

static pthread_t *start_workers(void)
{
    pthread_t *workers = calloc((size_t)threads, sizeof(*workers));
    if (workers == NULL)
        die("calloc(%d threads)", threads);
    for (int i = 0; i < threads; i++) {
        /* Win32: CreateThread(NULL, 0, ThreadProc, port, 0, NULL) */
        int rc = pthread_create(&workers[i], NULL, event_loop,
                                (void *)(intptr_t)(i + 1));
        if (rc != 0)
            die_code(rc, "pthread_create(worker %d)", i + 1);
    }
    return workers;
}

/* The per-I/O pool is sized for every operation in flight (setup_port),
 * so running dry is a bug in that sum, not a client's doing. */
static struct cport_io *io_get(void)
{
    struct cport_io *io = cport_pool_get(&io_pool);
    if (io == NULL)
        die("per-I/O pool empty (%u): setup_port's sum is wrong",
            io_pool.capacity);
    return io;
}

/* [S3] A worker: the notes' ThreadProc. One completion at a time off the
 * shared queue, its handler, again; main's quit message ends it. */
static void *event_loop(void *arg)
{
    struct cport_completion done;

    worker_id = (int)(intptr_t)arg;
    for (;;) {
        /* Win32: GetQueuedCompletionStatus(port, &bytes, &key, &ov, 1000) */
        int rc = cport_get(&port, &done, GET_TIMEOUT_MS);
        if (rc == -ETIME)
            continue; /* WAIT_TIMEOUT: nothing finished for a second */
        if (rc < 0)
            die_code(-rc, "cport_get");
        if (done.io == NULL && done.message == MSG_QUIT)
            break;
        if (done.io == NULL)
            continue; /* a message we do not know: none yet */
        switch (done.io->op) {
        case CPORT_ACCEPT:
            on_accept(&done);
            break;
        case CPORT_RECV:
            on_recv_complete(&done);
            break;
        case CPORT_SEND:
            on_send_complete(&done);
            break;
        case CPORT_CANCEL:
            on_cancel_complete(&done);
            break;
        case CPORT_TIMER:
            on_retry_timer(&done);
            break;
        }
    }
    log_event("worker %d: quit", worker_id);
    return NULL;
}

/* [S2] Keeps --accepts accepts posted, each with a free conn reserved for
 * its client (the notes' AcceptEx with a socket from the pool). With no
 * conn free (-c reached) nothing is posted: newcomers wait in the listen
 * backlog until conn_close frees one (the notes' queue when the pool is
 * empty). */
static void accepts_top_up(void)
{
    pthread_mutex_lock(&accept_lock);
    while (!accept_paused && !atomic_load(&stopping) &&
           accepts_posted < accepts_target) {
        struct conn *c = cport_pool_get(&conn_pool);
        if (c == NULL)
            break;
        pthread_mutex_lock(&c->lock);
        c->refs = 1; /* the accept's reference */
        c->closing = false;
        pthread_mutex_unlock(&c->lock);
        /* Win32: AcceptEx(listen, accept socket, ..., &ov). A post only
         * fails if the kernel is out of memory: the SQE may then still be
         * in the ring, so no context can safely be reused. Fatal. */
        int rc = cport_post_accept(&port, &listener, io_get(), &c->handle);
        if (rc < 0)
            die_code(-rc, "cport_post_accept");
        accepts_posted++;
    }
    pthread_mutex_unlock(&accept_lock);
}

/* One accept fewer in flight. Out of descriptors (EMFILE/ENFILE): the
 * connection stays in the backlog, and an accept posted now would fail at
 * once, again and again (PITFALLS 1). So pause until a client leaves or a
 * timer - itself a posted operation - fires. */
static void accept_finished(int error)
{
    pthread_mutex_lock(&accept_lock);
    accepts_posted--;
    if (net_accept_exhausted(error) && !accept_paused) {
        accept_paused = true;
        warn_code(error, "accept (pausing %d ms or until a client leaves)",
                  EMFILE_RETRY_MS);
    }
    if (accept_paused && !retry_timer_armed && !atomic_load(&stopping)) {
        retry_timer_armed = true;
        int rc = cport_post_timer(&port, io_get(), EMFILE_RETRY_MS);
        if (rc < 0)
            die_code(-rc, "cport_post_timer");
    }
    pthread_mutex_unlock(&accept_lock);
}

/* [S4] An accept finished. Its key is the listener's; the conn reserved
 * when it was posted takes the new socket, and the accept's io becomes the
 * connection's one recv. */
static void on_accept(struct cport_completion *done)
{
    struct cport_io *io = done->io;
    struct conn *c = io->accept_handle->key;

    accept_finished(done->error);
    if (done->error == 0 && c->echo.data == NULL &&
        buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("buf_init (closing fd=%d)", done->fd);
        close(done->fd);
        done->error = ENOMEM;
    }
    if (done->error != 0) {
        if (done->error != ECANCELED && !net_accept_exhausted(done->error))
            warn_code(done->error, "accept"); /* transient: carry on */
        conn_done(c, io, "accept", ECANCELED);
        accepts_top_up();
        return;
    }
    if (addr_format((struct sockaddr *)&io->peer, io->peer_len, c->peer,
                    sizeof(c->peer)) == -1)
        snprintf(c->peer, sizeof(c->peer), "?");
    pthread_mutex_lock(&c->lock);
    bool late = atomic_load(&stopping);
    /* Win32: CreateIoCompletionPort(socket, port, (ULONG_PTR)c, 0) */
    if (!late)
        cport_associate(&port, &c->handle, done->fd, c);
    pthread_mutex_unlock(&c->lock);
    if (late) {
        close(done->fd); /* shutdown has begun: too late for this one */
    } else {
        int now = stats_client_opened(&stats);
        log_event("accept fd=%d peer=%s clients=%d (worker %d)", done->fd,
                  c->peer, now, worker_id);
    }
    if (!late && conn_post(c, io, CPORT_RECV))
        conn_release(c); /* the accept's reference; the recv holds one */
    else
        conn_done(c, io, "accept", ECANCELED);
    accepts_top_up(); /* the notes: post another AcceptEx at once */
}

/* [S5] A recv finished: its bytes are in c->echo. Echo them.
 * Backpressure: a conn has one operation in flight, so no recv is posted
 * until this echo is all sent; the buffer (64 KiB) is the most one recv
 * takes. A client that does not read its echo stalls its own send; the
 * kernel's socket buffers fill, and its sending blocks. Nothing grows. */
static void on_recv_complete(struct cport_completion *done)
{
    struct conn *c = done->key;
    struct cport_io *io = done->io;

    assert(io->generation == c->handle.generation); /* never stale */
    if (done->error != 0 || done->bytes == 0) {
        conn_done(c, io, "recv", done->error); /* [S7] */
        return;
    }
    log_trace("recv fd=%d %zu bytes (worker %d)", c->handle.fd, done->bytes,
              worker_id);
    buf_commit(&c->echo, done->bytes);
    /* From conn_post on, another worker may own io and c->echo. */
    if (conn_post(c, io, CPORT_SEND))
        conn_release(c); /* this recv's reference; the send holds one */
    else
        conn_done(c, io, "recv", ECANCELED); /* shutdown is cancelling c */
}

/* [S6] A send finished. A short send is normal: post the rest. All of it
 * sent: post the next recv. */
static void on_send_complete(struct cport_completion *done)
{
    struct conn *c = done->key;
    struct cport_io *io = done->io;

    assert(io->generation == c->handle.generation);
    if (done->error != 0) {
        conn_done(c, io, "send", done->error); /* [S7] */
        return;
    }
    log_trace("send fd=%d %zu bytes (worker %d)", c->handle.fd, done->bytes,
              worker_id);
    stats_echoed(&stats, done->bytes);
    buf_consume(&c->echo, done->bytes);
    if (!buf_empty(&c->echo))
        log_trace("short send fd=%d: %zu bytes to go", c->handle.fd,
                  buf_len(&c->echo));
    if (conn_post(c, io, buf_empty(&c->echo) ? CPORT_RECV : CPORT_SEND))
        conn_release(c); /* this send's reference */
    else
        conn_done(c, io, "send", ECANCELED);
}

/* A cancel finished (bytes = how many operations it found). */
static void on_cancel_complete(struct cport_completion *done)
{
    log_trace("cancel fd=%d: %zu cancelled (worker %d)", done->io->handle->fd,
              done->bytes, worker_id);
    assert(done->io->generation == done->io->handle->generation);
    cport_pool_put(&io_pool, done->io);
    if (done->key != &listener)
        conn_release(done->key); /* the cancel's own reference */
}

/* The EMFILE pause is over: accept again. */
static void on_retry_timer(struct cport_completion *done)
{
    cport_pool_put(&io_pool, done->io);
    pthread_mutex_lock(&accept_lock);
    retry_timer_armed = false;
    accept_paused = false;
    pthread_mutex_unlock(&accept_lock);
    accepts_top_up();
}

/* Posts io's next operation on c, with a reference for it, unless c is
 * being cancelled. Under c->lock, so a cancel (conn_cancel) either comes
 * after the post and finds it, or came before and we see closing. Returns
 * false when refused: io is then still the caller's. */
static bool conn_post(struct conn *c, struct cport_io *io, enum cport_op op)
{
    int rc = 0;

    pthread_mutex_lock(&c->lock);
    bool ok = !c->closing && !atomic_load(&stopping);
    if (ok)
        c->refs++;
    if (ok && op == CPORT_RECV) /* Win32: WSARecv(s, &wsabuf, 1, .., &ov) */
        rc = cport_post_recv(&port, &c->handle, io, buf_tail(&c->echo),
                             buf_space(&c->echo));
    else if (ok) /* Win32: WSASend(s, &wsabuf, 1, .., &ov) */
        rc = cport_post_send(&port, &c->handle, io, buf_head(&c->echo),
                             buf_len(&c->echo));
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        die_code(-rc, "cport_post (fd=%d)", c->handle.fd);
    return ok;
}

/* [S7] This completion ends the conn's chain of operations: 0 bytes (the
 * client left, or shut down its side, and all it sent was echoed), an
 * error, or a cancel. Its io goes back to the pool, its reference too. */
static void conn_done(struct conn *c, struct cport_io *io, const char *what,
                      int error)
{
    if (error == 0)
        log_event("%s fd=%d: the client left", what, c->handle.fd);
    else if (error != ECANCELED) /* ECONNRESET, EPIPE: the notes' error 64,
                                    ERROR_NETNAME_DELETED (peer vanished) */
        log_event("%s fd=%d: %s", what, c->handle.fd, strerror(error));
    cport_pool_put(&io_pool, io);
    conn_release(c);
}

/* Drops one reference. Completions of one conn may be handled on several
 * workers at once (a cancelled recv and the cancel itself; a send's
 * completion while the recv's handler is still finishing): whichever drops
 * the last reference, and only that one, closes the conn. */
static void conn_release(struct conn *c)
{
    pthread_mutex_lock(&c->lock);
    assert(c->refs > 0);
    int left = --c->refs;
    pthread_mutex_unlock(&c->lock);
    if (left == 0)
        conn_close(c);
}

/* The last reference is gone: nothing is in flight on this socket, so
 * closing it and reusing c are safe (PITFALLS 3: close() would not have
 * stopped an operation in flight). */
static void conn_close(struct conn *c)
{
    pthread_mutex_lock(&c->lock);
    int fd = c->handle.fd;
    c->handle.fd = -1;
    pthread_mutex_unlock(&c->lock);
    if (fd != -1) { /* -1: reserved for an accept that did not happen */
        if (close(fd) == -1)
            warn_errno("close(fd=%d)", fd);
        int now = stats_client_closed(&stats);
        log_event("close fd=%d peer=%s clients=%d", fd, c->peer, now);
    }
    c->echo.len = 0; /* a reset client may leave unsent bytes behind */
    cport_pool_put(&conn_pool, c);
    if (fd != -1) { /* a client left: a descriptor is free again */
        pthread_mutex_lock(&accept_lock);
        accept_paused = false;
        pthread_mutex_unlock(&accept_lock);
    }
    accepts_top_up(); /* a conn is free: the queued accept goes out */
}

/* Shutdown, for each conn in use: the notes' clearSocket. Mark it closing
 * and cancel what it has in flight; the cancel holds its own reference. */
static void conn_cancel(void *item)
{
    struct conn *c = item;

    pthread_mutex_lock(&c->lock);
    if (c->refs > 0 && c->handle.fd != -1 && !c->closing) {
        c->closing = true;
        c->refs++;
        /* Win32: CancelIoEx(socket, NULL) */
        int rc = cport_post_cancel(&port, &c->handle, io_get());
        if (rc < 0)
            die_code(-rc, "cport_post_cancel");
    }
    pthread_mutex_unlock(&c->lock);
}

static void conn_free(void *item)
{
    struct conn *c = item;

    buf_free(&c->echo);
    pthread_mutex_destroy(&c->lock);
}

/* [S8] The notes' exit: stop posting, cancel everything in flight, wait for
 * every completion (contexts are freed only then), then wake each worker
 * with a quit message and join it, and only then close the port: a worker
 * that exited early would take its requests with it (PITFALLS 4). */
static void shutdown_server(pthread_t *workers)
{
    log_event("shutdown: cancelling every operation in flight");
    pthread_mutex_lock(&accept_lock);
    atomic_store(&stopping, true); /* no new accept, recv or send */
    int rc = cport_post_cancel(&port, &listener, io_get());
    pthread_mutex_unlock(&accept_lock);
    if (rc < 0)
        die_code(-rc, "cport_post_cancel(listener)");
    cport_pool_for_each_busy(&conn_pool, conn_cancel);
    if (cport_wait_idle(&port, DRAIN_TIMEOUT_MS) == -ETIMEDOUT) {
        warn("shutdown: completions missing after %d ms: cancelling all",
             DRAIN_TIMEOUT_MS);
        if ((rc = cport_cancel_all(&port)) < 0)
            die_code(-rc, "cport_cancel_all");
        if (cport_wait_idle(&port, DRAIN_TIMEOUT_MS) == -ETIMEDOUT)
            warn("shutdown: completions still missing; going on");
    }
    for (int i = 0; i < threads; i++) {
        /* Win32: PostQueuedCompletionStatus(port, 0, 0, NULL) - "quit" */
        if ((rc = cport_post_message(&port, MSG_QUIT)) < 0)
            die_code(-rc, "cport_post_message");
    }
    for (int i = 0; i < threads; i++)
        if ((rc = pthread_join(workers[i], NULL)) != 0)
            die_code(rc, "pthread_join(worker %d)", i + 1);
    free(workers);
    unsigned left = cport_pool_destroy(&conn_pool, conn_free) +
                    cport_pool_destroy(&io_pool, NULL);
    if (left > 0)
        warn("shutdown: %u contexts were still in use", left);
    cport_destroy(&port); /* Win32: CloseHandle(port) */
}
