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
 *   [S1] setup_port, setup_stop, setup_listener: the port and the pools,
 *        the stop signals blocked, the listener; start_workers: -t workers
 *   [S2] worker_main: cport_get() takes one completion; its handler runs
 *   [S3] accepts_top_up keeps --accepts accepts posted; on_accept_complete:
 *        conn_open associates the socket and posts its one recv
 *   [S4] on_recv_complete: post a send of those bytes (no recv meanwhile)
 *   [S5] on_send_complete: short? send the rest : post the next recv
 *   [S6] 0 bytes, an error or a cancel: conn_done drops the op's reference;
 *        the last reference closes the socket and returns the conn
 *   [S7] SIGTERM ends main's sigsuspend; shutdown_all cancels everything,
 *        waits for every completion, posts one quit message per worker
 *   [S8] a timer posted on the port completes at the oldest client's idle
 *        deadline: on_idle_timer, close_idle cancels the idle ones' I/O
 *
 * Win32: CreateIoCompletionPort (the port, then each socket), CreateThread,
 * AcceptEx, WSARecv, WSASend, GetQueuedCompletionStatus,
 * PostQueuedCompletionStatus; see cport.h for the call-by-call map.
 *
 * Try:  ./server -v -t 2               then: nc 127.0.0.1 9007
 *       ./server -vv -t 4              which worker ran each completion
 *       ./server -c 2 --accepts 1 -v   a third client waits its turn
 * gdb:  make gdb M=07   (walkthrough.gdb: break on_accept_complete,
 *       conn_open, conn_post, on_recv_complete, on_send_complete, conn_done,
 *       conn_close, shutdown_all; p *done, p *c, info threads)
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "clock.h"
#include "cport.h"
#include "err.h"
#include "idle.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

#define DEFAULT_PORT        9007
#define DEFAULT_MAX_CLIENTS 1000
#define MAX_CLIENTS_LIMIT   16000 /* keeps the CQ under the kernel's 65536 */
#define EMFILE_PAUSE_MS     100   /* out of descriptors: stop accepting */
#define DEFAULT_ACCEPTS     16    /* the notes: post 10-15 AcceptEx */
#define GET_TIMEOUT_MS      1000  /* a worker's GetQueuedCompletionStatus */
#define DRAIN_TIMEOUT_MS    800   /* shutdown: for the last completions */
#define MSG_QUIT            1     /* the one message main posts */

/* The per-socket context: the completion key. At most one recv or send is
 * in flight on it at a time, with the per-I/O context io (the OVERLAPPED,
 * from io_pool: the same one from the accept to the last recv); a cancel,
 * with one of its own, may join it at shutdown. */
struct conn {
    struct cport_handle handle; /* fd, key (this conn), generation */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;      /* received, not yet echoed (<= 64 KiB) */
    struct cport_io *io;  /* its accept's, then its recv's or send's */
    pthread_mutex_t lock; /* guards refs, closing, handle.fd */
    int refs;             /* operations posted and not yet handled */
    bool closing;         /* being cancelled: post nothing more */
    struct idle_entry idle; /* its place in idle_clients (idle_lock) */
};

static struct server_opts opts;
static int threads; /* -t; 0 until main sets one per CPU */
static int accepts_target = DEFAULT_ACCEPTS; /* --accepts */
static struct stats stats;
static int listen_fd = -1;
static struct cport port;            /* the completion port */
static struct cport_handle listener; /* listen_fd, associated with it */
static struct cport_pool conn_pool;  /* per-socket contexts: -c of them */
static struct cport_pool io_pool;    /* per-I/O contexts: one per op */
static pthread_t *workers;           /* -t of them, all on the port */
static _Thread_local int worker_id;  /* -vv: which worker ran a handler */
static atomic_bool stopping;         /* set once, by main, at shutdown */
static sigset_t wait_mask; /* main's mask before setup_stop: sigsuspend's */

/* The accepts in flight (at most --accepts, one reserved conn each), and
 * the pause after EMFILE. All guarded by accept_lock. */
static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;
static int accepts_posted;
static long long accept_paused_until; /* EMFILE: clock_ms() to resume, or 0 */
static bool pause_timer_posted; /* its end is a completion still to come */

/* [S8] The clients in order of last activity, and the idle timer (the
 * per-I/O context of the timer in flight, or NULL), guarded by idle_lock.
 * Any worker touches the list, so it has a lock of its own; it is taken
 * first when another is nested under it (idle_lock -> c->lock), and alone
 * everywhere else. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct idle_list idle_clients; /* [S8] least recently active first */
static struct cport_io *idle_timer_io;

static void setup_port(void);
static void setup_stop(void);
static int setup_listener(void);
static void start_workers(void);
static void *worker_main(void *arg);
static void accepts_top_up(void);
static bool on_accept_complete(struct conn *c, int error, int fd);
static bool conn_open(struct conn *c, int fd);
static bool conn_post(struct conn *c, enum cport_op op);
static bool on_recv_complete(struct conn *c, int error, size_t bytes);
static bool on_send_complete(struct conn *c, int error, size_t bytes);
static void conn_done(struct conn *c, const char *what, int error);
static void conn_release(struct conn *c);
static void conn_close(struct conn *c);
static void conn_free(void *item);
static void shutdown_all(void);
static void conn_cancel(void *item);
static bool on_idle_timer(struct cport_completion *done);
static void close_idle(void);
static void arm_idle_timer(void);
static void idle_touch_locked(struct conn *c);
static void on_cancel_complete(struct cport_completion *done);
static void accept_finished(int error);
static void on_pause_timer(struct cport_completion *done);
static struct cport_io *io_get(void);
static bool accepting(void);

static const struct model_opt model_opts[] = {
    {.name = "threads",
     .short_name = 't',
     .kind = OPT_INT,
     .arg_name = "N",
     .min = 1,
     .max = 256,
     .help = "worker threads sharing the port (default: one per usable "
             "CPU)",
     .value = &threads},
    {.name = "accepts",
     .kind = OPT_INT,
     .arg_name = "K",
     .min = 1,
     .max = 1024,
     .help = "accepts kept posted (default 16; the notes advise 10-15)",
     .value = &accepts_target},
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
    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("iocp", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);
    if (threads == 0) {
        /* Win32: GetSystemInfo -> dwNumberOfProcessors. The CPUs this
         * process may run on, not all the machine's: under taskset -c 1 a
         * second worker would only fight the first for cq_lock. */
        cpu_set_t allowed;
        if (sched_getaffinity(0, sizeof(allowed), &allowed) == -1)
            die("sched_getaffinity");
        threads = CPU_COUNT(&allowed) > 0 ? CPU_COUNT(&allowed) : 1;
    }

    /* IORING_OP_SEND never raises SIGPIPE (NOTES §7.9); this covers the
     * rest, should anyone add a write(). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    setup_port();
    setup_stop();
    listen_fd = setup_listener();
    start_workers();
    accepts_top_up();
    /* The notes' main waits for "quit"; ours for a signal. sigsuspend
     * unblocks the signals and sleeps in one step, so one cannot slip in
     * between the test and the sleep. It always returns -1 (EINTR). */
    while (!sig_stop_requested())
        sigsuspend(&wait_mask);
    shutdown_all();
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}

/* [S1] The port and the two pools, sized so that the completion queue
 * holds every operation that can be in flight at once: per client one
 * recv or send, plus a cancel at shutdown; the accepts; the EMFILE timer;
 * the idle timer; the listener's cancel; one quit message per worker. */
static void setup_port(void)
{
    unsigned ios =
        2 * (unsigned)opts.max_clients + (unsigned)accepts_target + 3;
    unsigned in_flight = ios + (unsigned)threads + 1;
    char why[160];
    int rc;

    /* Win32: CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, N) */
    rc = cport_create(&port, in_flight, (unsigned)threads);
    if (rc == -EPERM || rc == -ENOSYS) {
        /* A sysctl or a container's seccomp profile (NOTES §7.12). */
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

/* [S1] SIGINT/SIGTERM run a handler that sets a flag, and are blocked here,
 * before any worker starts: threads inherit the mask, so the signals are
 * never delivered on a worker. Only main takes them, in the one call that
 * unblocks them, its sigsuspend(&wait_mask). */
static void setup_stop(void)
{
    int rc;

    if (sig_catch_stop() == -1)
        die("sigaction(SIGTERM)");
    if ((rc = sig_block_stop(&wait_mask)) != 0)
        die_code(rc, "pthread_sigmask");
}

/* [S1] socket/bind/listen, associated with the port, then the one line on
 * stdout (last: a test may count our descriptors as soon as it reads it).
 * Blocking: we never call accept() ourselves; the port does (AcceptEx). */
static int setup_listener(void)
{
    int fd = net_listen(opts.host, opts.port, SOCK_CLOEXEC);
    if (fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    /* Win32: CreateIoCompletionPort(listen socket, port, key, 0) */
    cport_associate(&port, &listener, fd, &listener);
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S1] -t workers on the one port; each inherits main's blocked signals. */
static void start_workers(void)
{
    workers = calloc((size_t)threads, sizeof(*workers));
    if (workers == NULL)
        die("calloc(%d threads)", threads);
    for (int i = 0; i < threads; i++) {
        /* Win32: CreateThread(NULL, 0, ThreadProc, port, 0, NULL) */
        int rc = pthread_create(&workers[i], NULL, worker_main,
                                (void *)(intptr_t)(i + 1));
        if (rc != 0)
            die_code(rc, "pthread_create(worker %d)", i + 1);
    }
}

/* [S2] A worker: the notes' ThreadProc. One completion at a time off the
 * shared queue, its handler, again; main's quit message ends it. The
 * handlers of one client take what GetQueuedCompletionStatus returns: the
 * key (the conn), the error and the byte count. Their bool (false: this
 * completion ended the conn) is for their own flow: a worker touches no
 * conn after its handler, since another worker may own it by then. */
static void *worker_main(void *arg)
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
        case CPORT_ACCEPT: /* the key is the listener's; the conn, the io's */
            on_accept_complete(done.io->accept_handle->key, done.error,
                               done.fd);
            break;
        case CPORT_RECV:
            on_recv_complete(done.key, done.error, done.bytes);
            break;
        case CPORT_SEND:
            on_send_complete(done.key, done.error, done.bytes);
            break;
        case CPORT_CANCEL:
            on_cancel_complete(&done);
            break;
        case CPORT_TIMER: /* the idle timer's, or the EMFILE pause's */
            if (!on_idle_timer(&done))
                on_pause_timer(&done);
            break;
        }
    }
    log_event("worker %d: quit", worker_id);
    return NULL;
}

/* [S3] Keeps --accepts accepts posted, each with a free conn reserved for
 * its client (the notes' AcceptEx with a socket from the pool). With no
 * conn free (-c reached) nothing is posted: newcomers wait in the listen
 * backlog until conn_close frees one (the notes' queue when the pool is
 * empty). */
static void accepts_top_up(void)
{
    pthread_mutex_lock(&accept_lock);
    while (accepting() && accepts_posted < accepts_target) {
        struct conn *c = cport_pool_get(&conn_pool);
        if (c == NULL)
            break;
        pthread_mutex_lock(&c->lock);
        c->refs = 1; /* the accept's reference */
        c->closing = false;
        c->io = io_get();
        pthread_mutex_unlock(&c->lock);
        /* Win32: AcceptEx(listen, accept socket, ..., &ov). cport rides
         * out the kernel's passing refusals (EAGAIN, EBUSY: it retries);
         * a post fails only if they last 5 s on end, or for a bug. The SQE
         * may then still be in the ring, so no context can safely be
         * reused: fatal. */
        int rc = cport_post_accept(&port, &listener, c->io, &c->handle);
        if (rc < 0)
            die_code(-rc, "cport_post_accept");
        accepts_posted++;
    }
    pthread_mutex_unlock(&accept_lock);
}

/* [S3] An accept finished: c is the conn reserved when it was posted, fd
 * the new socket. c takes it, and c->io, the accept's, becomes the
 * connection's one recv. Returns false when this completion ended the conn
 * (a failed or cancelled accept, or one too late for shutdown). */
static bool on_accept_complete(struct conn *c, int error, int fd)
{
    accept_finished(error);
    if (error != 0 && error != ECANCELED && !net_accept_exhausted(error))
        warn_code(error, "accept"); /* transient: carry on */
    bool open = error == 0 && conn_open(c, fd);
    if (open)
        conn_release(c); /* the accept's reference; the recv holds one */
    else
        conn_done(c, "accept", ECANCELED);
    accepts_top_up(); /* the notes: post another AcceptEx at once */
    return open;
}

/* [S3] A new client: the reserved conn takes the socket, and its first
 * recv is posted with c->io, the accept's per-I/O context. Returns false
 * when it could not be opened (no memory, or shutdown has begun): c->io
 * and the accept's reference are then still the caller's. */
static bool conn_open(struct conn *c, int fd)
{
    if (c->echo.data == NULL && buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn_errno("accept fd=%d: no memory, closing", fd);
        close(fd);
        return false;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%d)", fd);
    if (addr_format((struct sockaddr *)&c->io->peer, c->io->peer_len, c->peer,
                    sizeof(c->peer)) == -1)
        snprintf(c->peer, sizeof(c->peer), "?");
    pthread_mutex_lock(&c->lock);
    bool late = atomic_load(&stopping);
    /* Win32: CreateIoCompletionPort(socket, port, (ULONG_PTR)c, 0) */
    if (!late)
        cport_associate(&port, &c->handle, fd, c);
    pthread_mutex_unlock(&c->lock);
    if (late) {
        close(fd); /* shutdown has begun: too late for this one */
        return false;
    }
    int now = stats_client_opened(&stats);
    log_event("accept fd=%d peer=%s clients=%d", fd, c->peer, now);
    pthread_mutex_lock(&idle_lock);
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    arm_idle_timer();
    pthread_mutex_unlock(&idle_lock);
    return conn_post(c, CPORT_RECV);
}

/* Posts c's next operation with c->io, and a reference for it, unless c
 * is being cancelled. Under c->lock, so a cancel (conn_cancel) either
 * comes after the post and finds it, or came before and we see closing.
 * Returns false when refused: c->io is then still the caller's. */
static bool conn_post(struct conn *c, enum cport_op op)
{
    int rc;

    pthread_mutex_lock(&c->lock);
    if (c->closing || atomic_load(&stopping)) {
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    c->refs++;
    if (op == CPORT_RECV) /* Win32: WSARecv(s, &wsabuf, 1, .., &ov) */
        rc = cport_post_recv(&port, &c->handle, c->io, buf_tail(&c->echo),
                             buf_space(&c->echo));
    else /* Win32: WSASend(s, &wsabuf, 1, .., &ov) */
        rc = cport_post_send(&port, &c->handle, c->io, buf_head(&c->echo),
                             buf_len(&c->echo));
    pthread_mutex_unlock(&c->lock);
    if (rc < 0)
        die_code(-rc, "cport_post (fd=%d)", c->handle.fd);
    return true;
}

/* [S4] A recv finished: its bytes are in c->echo. Echo them.
 * Backpressure: a conn has one operation in flight, so no recv is posted
 * until this echo is all sent; the buffer (64 KiB) is the most one recv
 * takes. A client that does not read its echo stalls its own send; the
 * kernel's socket buffers fill, and its sending blocks. Nothing grows.
 * Returns false when this completion ended the conn. */
static bool on_recv_complete(struct conn *c, int error, size_t bytes)
{
    assert(c->io->generation == c->handle.generation); /* never stale */
    if (error != 0 || bytes == 0) {
        conn_done(c, "recv", error);
        return false;
    }
    log_trace("recv fd=%d %zu bytes (worker %d)", c->handle.fd, bytes,
              worker_id);
    buf_commit(&c->echo, bytes);
    idle_touch_locked(c); /* [S8] active */
    /* From conn_post on, another worker may own c->io and c->echo. */
    if (!conn_post(c, CPORT_SEND)) {
        conn_done(c, "recv", ECANCELED); /* shutdown is cancelling c */
        return false;
    }
    conn_release(c); /* this recv's reference; the send holds one */
    return true;
}

/* [S5] A send finished. A short send is normal: post the rest. All of it
 * sent: post the next recv. Returns false when this completion ended the
 * conn. */
static bool on_send_complete(struct conn *c, int error, size_t bytes)
{
    assert(c->io->generation == c->handle.generation);
    if (error != 0) {
        conn_done(c, "send", error);
        return false;
    }
    log_trace("send fd=%d %zu bytes (worker %d)", c->handle.fd, bytes,
              worker_id);
    stats_echoed(&stats, bytes);
    if (bytes > 0)
        idle_touch_locked(c); /* [S8] it reads */
    buf_consume(&c->echo, bytes);
    if (!buf_empty(&c->echo))
        log_trace("short send fd=%d: %zu bytes to go", c->handle.fd,
                  buf_len(&c->echo));
    if (!conn_post(c, buf_empty(&c->echo) ? CPORT_RECV : CPORT_SEND)) {
        conn_done(c, "send", ECANCELED);
        return false;
    }
    conn_release(c); /* this send's reference */
    return true;
}

/* [S6] This completion ends the conn's chain of operations: 0 bytes (the
 * client left, or shut down its side, and all it sent was echoed), an
 * error, or a cancel. c->io goes back to the pool, its reference too. */
static void conn_done(struct conn *c, const char *what, int error)
{
    if (error == 0)
        log_event("%s fd=%d: the client left", what, c->handle.fd);
    else if (error != ECANCELED) /* ECONNRESET, EPIPE: the notes' error 64,
                                    ERROR_NETNAME_DELETED (peer vanished) */
        log_event("%s fd=%d: %s", what, c->handle.fd, strerror(error));
    cport_pool_put(&io_pool, c->io);
    c->io = NULL; /* from here on, only a cancel may still complete on c */
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

/* [S6] The last reference is gone: nothing is in flight on this socket, so
 * closing it and reusing c are safe (NOTES §7.3: close() would not have
 * stopped an operation in flight). */
static void conn_close(struct conn *c)
{
    pthread_mutex_lock(&idle_lock); /* first: close_idle may be at c */
    idle_remove(&c->idle);
    pthread_mutex_unlock(&idle_lock);
    pthread_mutex_lock(&c->lock);
    int fd = c->handle.fd;
    c->handle.fd = -1;
    pthread_mutex_unlock(&c->lock);
    if (fd != -1) { /* -1: reserved for an accept that did not happen */
        if (close(fd) == -1) /* Win32: closesocket */
            warn_errno("close(fd=%d)", fd);
        int now = stats_client_closed(&stats);
        log_event("close fd=%d peer=%s clients=%d", fd, c->peer, now);
    }
    c->echo.len = 0; /* a reset client may leave unsent bytes behind */
    cport_pool_put(&conn_pool, c);
    if (fd != -1) { /* a client left: a descriptor is free again */
        pthread_mutex_lock(&accept_lock);
        accept_paused_until = 0;
        pthread_mutex_unlock(&accept_lock);
    }
    accepts_top_up(); /* a conn is free: the queued accept goes out */
}

/* At exit (shutdown_all), for every conn of the pool: what it holds. */
static void conn_free(void *item)
{
    struct conn *c = item;

    pthread_mutex_destroy(&c->lock);
    buf_free(&c->echo);
}

/* [S7] The notes' exit: stop posting, cancel everything in flight, wait for
 * every completion (contexts are freed only then), then wake each worker
 * with a quit message and join it, and only then close the port: a worker
 * that exited early would take its requests with it (NOTES §7.4). */
static void shutdown_all(void)
{
    int rc = 0;

    log_event("shutdown: closing %d clients", stats_current(&stats));
    pthread_mutex_lock(&accept_lock);
    atomic_store(&stopping, true); /* no new accept, recv or send */
    /* Win32: CancelIoEx(listen socket, NULL): the accepts in flight */
    rc = cport_post_cancel(&port, &listener, io_get());
    pthread_mutex_unlock(&accept_lock);
    if (rc < 0)
        die_code(-rc, "cport_post_cancel(listener)");
    pthread_mutex_lock(&idle_lock); /* stopping is set: no timer after it */
    if (idle_timer_io != NULL && (rc = cport_cancel_timer(&port,
                                                          idle_timer_io)) < 0)
        die_code(-rc, "cport_cancel_timer(idle)");
    pthread_mutex_unlock(&idle_lock);
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

/* [S8] A timer completed: if it is the idle timer (false otherwise), the
 * oldest client's deadline has come, or the deadline it had when the timer
 * was posted: close whoever has expired, and post the timer again for the
 * new oldest. ECANCELED: shutdown cancelled it. Win32: the notes' third
 * way to notice a dead client, "an operation that completes with a
 * timeout error"; their twin waits in GetQueuedCompletionStatus with a
 * timeout instead (WAIT_TIMEOUT). */
static bool on_idle_timer(struct cport_completion *done)
{
    pthread_mutex_lock(&idle_lock);
    if (done->io != idle_timer_io) {
        pthread_mutex_unlock(&idle_lock);
        return false;
    }
    cport_pool_put(&io_pool, done->io);
    idle_timer_io = NULL;
    if (!atomic_load(&stopping)) {
        close_idle();
        arm_idle_timer();
    }
    pthread_mutex_unlock(&idle_lock);
    return true;
}

/* [S8] With idle_lock held: the clients idle --idle-timeout seconds. Out
 * of the list, then their operation in flight is cancelled as at shutdown
 * (CancelIoEx): its completion (ECANCELED) ends the chain, and the last
 * reference closes the conn. conn_close takes it out of the list under
 * idle_lock before anything else, so each conn seen here is still open. */
static void close_idle(void)
{
    long long now = clock_ms();
    struct conn *c;

    while ((c = idle_expired(&idle_clients, now)) != NULL) {
        idle_remove(&c->idle);
        log_info("idle fd=%d peer=%s: closed after %d s", c->handle.fd,
                 c->peer, opts.idle_timeout);
        stats_closed_idle(&stats);
        conn_cancel(c);
    }
}

/* [S8] With idle_lock held: posts the idle timer for the oldest client's
 * deadline, unless one is in flight. While it is, the oldest deadline can
 * only move later (a touch, a close, a newcomer at the tail): the timer
 * completes on time or early, and early, close_idle finds nobody and this
 * posts it again. One timer per expiry, not one per message, and none at
 * all with --idle-timeout 0 or no client. */
static void arm_idle_timer(void)
{
    if (idle_timer_io != NULL || atomic_load(&stopping))
        return;
    long long left = idle_next_ms(&idle_clients, clock_ms());
    if (left == -1)
        return;
    idle_timer_io = io_get();
    int rc = cport_post_timer(&port, idle_timer_io,
                              left > 0 ? (unsigned)left : 1);
    if (rc < 0)
        die_code(-rc, "cport_post_timer(idle)");
}

/* [S8] Bytes moved on c: it becomes the newest. */
static void idle_touch_locked(struct conn *c)
{
    pthread_mutex_lock(&idle_lock);
    idle_touch(&idle_clients, &c->idle, clock_ms());
    pthread_mutex_unlock(&idle_lock);
}

/* One accept fewer in flight. Out of descriptors (EMFILE/ENFILE): the
 * connection stays in the backlog, and an accept posted now would fail at
 * once, again and again (NOTES §7.1). So pause until a client leaves
 * (conn_close) or a timer - itself a posted operation - fires. The io
 * pool holds one timer: a second pause waits for the timer in flight. */
static void accept_finished(int error)
{
    pthread_mutex_lock(&accept_lock);
    accepts_posted--;
    if (net_accept_exhausted(error) && accept_paused_until == 0) {
        warn_code(error, "accept (pausing %d ms or until a client leaves)",
                  EMFILE_PAUSE_MS);
        accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
    }
    if (accept_paused_until != 0 && !pause_timer_posted &&
        !atomic_load(&stopping)) {
        pause_timer_posted = true;
        int rc = cport_post_timer(&port, io_get(), EMFILE_PAUSE_MS);
        if (rc < 0)
            die_code(-rc, "cport_post_timer");
    }
    pthread_mutex_unlock(&accept_lock);
}

/* The EMFILE pause is over: accept again. */
static void on_pause_timer(struct cport_completion *done)
{
    cport_pool_put(&io_pool, done->io);
    pthread_mutex_lock(&accept_lock);
    pause_timer_posted = false;
    accept_paused_until = 0;
    pthread_mutex_unlock(&accept_lock);
    accepts_top_up();
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

/* Post accepts now? Not during an EMFILE pause, nor once shutdown has
 * begun. (-c is the conn pool: with none free, nothing is posted.) With
 * accept_lock held. */
static bool accepting(void)
{
    if (accept_paused_until != 0 && clock_ms() >= accept_paused_until)
        accept_paused_until = 0; /* the pause is over: try again */
    return accept_paused_until == 0 && !atomic_load(&stopping);
}
