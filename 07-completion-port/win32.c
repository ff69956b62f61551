/* 07-completion-port/win32.c - the completion-port model: worker threads
 * take finished operations off one shared completion queue. Win32 twin.
 *
 * The notes' last model. Nothing here waits for a socket to be *ready*: we
 * post operations (accept, recv, send) and learn when each one is *done*,
 * from one completion queue (Win32's own, which server.c mimics: an I/O
 * completion port) that -t worker threads share. Each completion brings back
 * the notes' two contexts: the per-socket context (struct conn, the
 * completion key) and the per-I/O context (struct cport_io, the OVERLAPPED).
 * Both come from fixed-size pools, and a conn goes back to its pool only
 * when its last operation has completed (a reference count).
 *
 *   [S1] setup_port, setup_stop, setup_listener: the port and the pools,
 *        the console handler, the listener; start_workers: -t workers
 *   [S2] worker_main: GetQueuedCompletionStatus takes one; its handler runs
 *   [S3] accepts_top_up keeps --accepts accepts posted; on_accept_complete:
 *        conn_open associates the socket and posts its one recv
 *   [S4] on_recv_complete: post a send of those bytes (no recv meanwhile)
 *   [S5] on_send_complete: short? send the rest : post the next recv
 *   [S6] 0 bytes, an error or a cancel: conn_done drops the op's reference;
 *        the last reference closes the socket and returns the conn
 *   [S7] Ctrl-C sets main's event; shutdown_all cancels everything,
 *        waits for every completion, posts one quit message per worker
 *   [S8] a worker's GetQueuedCompletionStatus times out at the oldest
 *        client's idle deadline at the latest; close_idle cancels the
 *        idle ones' I/O          (Linux: a timer posted on the port)
 *
 * Linux: server.c, this program on cport.h (io_uring), whose functions
 * mirror these calls one for one (cport_post_recv is WSARecv, cport_get
 * GetQueuedCompletionStatus): diff -u server.c win32.c shows the API.
 *
 * Try:  make run-win32 M=07 ARGS="-v -t 2"   then: nc 127.0.0.1 9007
 *       make run-win32 M=07 ARGS="-vv -t 4"  which worker ran each completion
 *       make run-win32 M=07 ARGS="-c 2 --accepts 1 -v"  a third client waits
 * gdb:  README, "The Win32 twin" (winedbg --gdb: break on_accept_complete,
 *       conn_open, conn_post, on_recv_complete, on_send_complete, conn_done,
 *       conn_close, shutdown_all; p *c, p *io, info threads)
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h> /* before windows.h, which would bring winsock 1 */
#include <mswsock.h>  /* AcceptEx's and GetAcceptExSockaddrs' types, GUIDs */
#include <windows.h>

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

#define DEFAULT_PORT        9007
#define DEFAULT_MAX_CLIENTS 1000
#define MAX_CLIENTS_LIMIT   16000 /* server.c's (io_uring's CQ); IOCP: none */
#define EMFILE_PAUSE_MS     100   /* out of sockets: stop accepting */
#define DEFAULT_ACCEPTS     16    /* the notes: post 10-15 AcceptEx */
#define GET_TIMEOUT_MS      1000  /* a worker's GetQueuedCompletionStatus */
#define DRAIN_TIMEOUT_MS    800   /* shutdown: for the last completions */
#define MSG_QUIT            1     /* the one message main posts (its key) */
/* AcceptEx writes both addresses into its buffer, each in a slot "at least
 * 16 bytes more than the transport's largest address" (the notes' +16). */
#define ACCEPT_ADDR_LEN (sizeof(struct sockaddr_storage) + 16)

/* cport.h's types, written here in Win32 (cport.h is io_uring code): the
 * same names, so that diff shows the calls. What an operation was: */
enum cport_op {
    CPORT_ACCEPT, /* AcceptEx */
    CPORT_RECV,   /* WSARecv */
    CPORT_SEND,   /* WSASend */
    CPORT_TIMER,  /* the EMFILE pause's end, posted by a timer's callback */
};

/* A socket associated with the port, and the key its completions carry. */
struct cport_handle {
    SOCKET fd; /* a handle, 64 bits wide: the logs print it whole,
                  fd=%llu, as every twin does */
    void *key;
    unsigned generation; /* bumped by each association: a new life */
};

/* The per-I/O context (the notes' 单IO数据): an OVERLAPPED and what the
 * operation was. GetQueuedCompletionStatus hands back the OVERLAPPED's
 * address; CONTAINING_RECORD turns it back into this struct. */
struct cport_io {
    OVERLAPPED ov; /* the kernel's while posted: never touch or repost it */
    enum cport_op op;
    struct cport_handle *handle;        /* posted on this socket */
    struct cport_handle *accept_handle; /* ACCEPT: who gets the new socket */
    SOCKET accept_socket;               /* ACCEPT: AcceptEx's sAcceptSocket */
    unsigned generation;                /* handle->generation when posted */
    bool in_flight;                     /* posted, completion not yet taken */
    int error; /* a post that failed at once: see io_posted */
    char addrs[2 * ACCEPT_ADDR_LEN]; /* ACCEPT: local, then peer address */
    HANDLE timer;                    /* TIMER: the timer-queue timer */
};

/* The notes' fixed-size pool (a free-index stack): cport.c's, with a
 * CRITICAL_SECTION, for both kinds of context. */
struct cport_pool {
    char *items;      /* capacity items of item_size bytes, zeroed */
    size_t item_size; /* rounded up to 16 */
    unsigned capacity;
    unsigned *free_index; /* the notes' index array: free items' indexes */
    unsigned free_count;  /* how many; free_index[free_count - 1] is next */
    bool *busy;           /* per item: handed out (catches double returns) */
    CRITICAL_SECTION lock;
};

/* Returns 0, or -1 with ERROR_NOT_ENOUGH_MEMORY in GetLastError(). */
static int cport_pool_init(struct cport_pool *pool, unsigned capacity,
                           size_t item_size)
{
    memset(pool, 0, sizeof(*pool));
    pool->item_size = (item_size + 15) / 16 * 16;
    pool->capacity = capacity;
    pool->items = calloc(capacity, pool->item_size);
    pool->free_index = calloc(capacity, sizeof(*pool->free_index));
    pool->busy = calloc(capacity, sizeof(*pool->busy));
    if (pool->items == NULL || pool->free_index == NULL || pool->busy == NULL) {
        free(pool->items);
        free(pool->free_index);
        free(pool->busy);
        SetLastError(ERROR_NOT_ENOUGH_MEMORY);
        return -1;
    }
    InitializeCriticalSection(&pool->lock);
    /* All free; item 0 on top of the stack, so it is handed out first. */
    for (unsigned i = 0; i < capacity; i++)
        pool->free_index[i] = capacity - 1 - i;
    pool->free_count = capacity;
    return 0;
}

static void *cport_pool_item(struct cport_pool *pool, unsigned index)
{
    assert(index < pool->capacity);
    return pool->items + (size_t)index * pool->item_size;
}

static unsigned cport_pool_index(const struct cport_pool *pool,
                                 const void *item)
{
    size_t offset = (size_t)((const char *)item - pool->items);
    assert(offset % pool->item_size == 0);
    assert(offset / pool->item_size < pool->capacity);
    return (unsigned)(offset / pool->item_size);
}

/* The notes' GetIdleEle: a free item, or NULL when the pool is empty. */
static void *cport_pool_get(struct cport_pool *pool)
{
    void *item = NULL;

    EnterCriticalSection(&pool->lock);
    if (pool->free_count > 0) {
        unsigned i = pool->free_index[--pool->free_count];
        assert(!pool->busy[i]);
        pool->busy[i] = true;
        item = cport_pool_item(pool, i);
    }
    LeaveCriticalSection(&pool->lock);
    return item;
}

/* The notes' BusytoIdle. A double return is a bug: abort with a message. */
static void cport_pool_put(struct cport_pool *pool, void *item)
{
    unsigned i = cport_pool_index(pool, item);

    EnterCriticalSection(&pool->lock);
    if (!pool->busy[i]) {
        /* The notes' bug: two threads each decided they were the last to
         * use this context. A reference count makes it impossible. */
        warn("cport_pool_put: item %u returned twice (double return)", i);
        abort();
    }
    pool->busy[i] = false;
    pool->free_index[pool->free_count++] = i;
    LeaveCriticalSection(&pool->lock);
}

/* fn on every handed-out item, with the pool locked (none returned
 * meanwhile: fn must not get from or put to this pool). */
static void cport_pool_for_each_busy(struct cport_pool *pool,
                                     void (*fn)(void *item))
{
    EnterCriticalSection(&pool->lock);
    for (unsigned i = 0; i < pool->capacity; i++)
        if (pool->busy[i])
            fn(cport_pool_item(pool, i));
    LeaveCriticalSection(&pool->lock);
}

/* cleanup (may be NULL) on every item, then frees the pool. Returns how
 * many items were still handed out (0 after a clean shutdown). */
static unsigned cport_pool_destroy(struct cport_pool *pool,
                                   void (*cleanup)(void *item))
{
    unsigned busy = 0;

    if (pool->items != NULL && pool->busy != NULL) {
        for (unsigned i = 0; i < pool->capacity; i++) {
            busy += pool->busy[i];
            if (cleanup != NULL)
                cleanup(cport_pool_item(pool, i));
        }
    }
    DeleteCriticalSection(&pool->lock);
    free(pool->items);
    free(pool->free_index);
    free(pool->busy);
    memset(pool, 0, sizeof(*pool));
    return busy;
}

/* The per-socket context: the completion key. At most one recv or send is
 * in flight on it at a time, with the per-I/O context io (the OVERLAPPED,
 * from io_pool: the same one from the accept to the last recv). */
struct conn {
    struct cport_handle handle; /* fd, key (this conn), generation */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;       /* received, not yet echoed (<= 64 KiB) */
    struct cport_io *io;   /* its accept's, then its recv's or send's */
    CRITICAL_SECTION lock; /* guards refs, closing, handle.fd */
    int refs;              /* operations posted and not yet handled */
    bool closing;          /* being cancelled: post nothing more */
    struct idle_entry idle; /* its place in idle_clients (idle_lock) */
};

static struct server_opts opts;
static int threads; /* -t; 0 until main sets one per CPU */
static int accepts_target = DEFAULT_ACCEPTS; /* --accepts */
static struct stats stats;
static SOCKET listen_fd = INVALID_SOCKET;
static HANDLE port;                  /* the completion port */
static struct cport_handle listener; /* listen_fd, associated with it */
static LPFN_ACCEPTEX accept_ex;      /* AcceptEx, asked of the provider */
static LPFN_GETACCEPTEXSOCKADDRS get_accept_ex_sockaddrs; /* likewise */
static int listen_family;           /* AcceptEx's sockets must match it */
static struct cport_pool conn_pool; /* per-socket contexts: -c of them */
static struct cport_pool io_pool;   /* per-I/O contexts: one per op */
static HANDLE *workers;             /* -t of them, all on the port */
static _Thread_local int worker_id; /* -vv: which worker ran a handler */
static atomic_bool stopping;        /* set once, by main, at shutdown */
static HANDLE stop_event;     /* set by the console handler: main's wake-up */
static atomic_uint in_flight; /* posted, completion not yet taken */
static HANDLE idle_event;     /* shutdown: set when in_flight drops to 0 */
static HANDLE timer_queue;    /* the EMFILE pause's timer, and its thread */

/* The accepts in flight (at most --accepts, one reserved conn each), and
 * the pause after EMFILE. All guarded by accept_lock. */
static CRITICAL_SECTION accept_lock; /* InitializeCriticalSection: setup_port */
static int accepts_posted;
static long long accept_paused_until; /* EMFILE: clock_ms() to resume, or 0 */
static bool pause_timer_posted; /* its end is a completion still to come */

/* [S8] The clients in order of last activity, guarded by idle_lock: any
 * worker touches the list. Taken first when another is nested under it
 * (idle_lock -> c->lock), and alone everywhere else. */
static CRITICAL_SECTION idle_lock;
static struct idle_list idle_clients; /* [S8] least recently active first */

static void setup_port(void);
static void setup_stop(void);
static void wake_main(void *arg);
static SOCKET setup_listener(void);
static void start_workers(void);
static DWORD WINAPI worker_main(LPVOID arg);
static void accepts_top_up(void);
static bool on_accept_complete(struct conn *c, int error, SOCKET fd);
static bool conn_open(struct conn *c, SOCKET fd);
static bool conn_post(struct conn *c, enum cport_op op);
static bool on_recv_complete(struct conn *c, int error, DWORD bytes);
static bool on_send_complete(struct conn *c, int error, DWORD bytes);
static void conn_done(struct conn *c, const char *what, int error);
static void conn_release(struct conn *c);
static void conn_close(struct conn *c);
static void conn_free(void *item);
static void shutdown_all(void);
static void conn_cancel(void *item);
static void close_idle(void);
static DWORD get_timeout(void);
static void idle_touch_locked(struct conn *c);
static void accept_finished(int error);
static VOID CALLBACK pause_timer_fired(PVOID arg, BOOLEAN timed_out);
static void on_pause_timer(struct cport_io *io);
static struct cport_io *io_get(void);
static void io_start(struct cport_io *io, enum cport_op op,
                     struct cport_handle *handle);
static void io_posted(struct cport_io *io, void *key, bool ok);
static void io_taken(struct cport_io *io);
static bool wait_idle(int timeout_ms);
static bool accepting(void);

static const struct model_opt model_opts[] = {
    {.name = "threads",
     .short_name = 't',
     .kind = OPT_INT,
     .arg_name = "N",
     .min = 1,
     .max = 256,
     .help = "worker threads sharing the port (default: one per "
             "processor)",
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
    .program = "07-completion-port/win32",
    .summary = "an I/O completion port shared by a pool of workers",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = MAX_CLIENTS_LIMIT,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    WSADATA wsa;
    int rc;

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("iocp", opts.verbose);
    stats_init(&stats);
    idle_init(&idle_clients, opts.idle_timeout);
    /* The notes' first call: load Winsock 2.2 (Linux has nothing to load).
     * It returns its error; WSAGetLastError needs a loaded Winsock. */
    if ((rc = WSAStartup(MAKEWORD(2, 2), &wsa)) != 0)
        die_code(rc, "WSAStartup");
    if (threads == 0) {
        /* The notes' GetSystemInfo -> dwNumberOfProcessors: every
         * processor of the machine. (server.c counts the CPUs the process
         * may run on, sched_getaffinity: GetProcessAffinityMask here.) */
        SYSTEM_INFO info;
        GetSystemInfo(&info);
        threads =
            info.dwNumberOfProcessors > 0 ? (int)info.dwNumberOfProcessors : 1;
    }

    /* Winsock has no SIGPIPE: a send to a reset peer just fails. This does
     * nothing here (common/sig_win32.c); kept so that main reads as every
     * model's. */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");

    setup_port();
    setup_stop();
    /* The workers before the listener (server.c: after): under Wine each
     * thread holds descriptors of its own (its pipes to wineserver), and a
     * test counts ours as soon as it reads the "listening on" line. */
    start_workers();
    listen_fd = setup_listener();
    /* The notes' main parks in while (1) Sleep(1000); ours sleeps on an
     * event that the console handler sets. A Ctrl-C between the test and
     * the wait is not lost: the event stays set until a wait takes it. */
    while (!sig_stop_requested())
        if (WaitForSingleObject(stop_event, INFINITE) == WAIT_FAILED)
            die("WaitForSingleObject(stop)");
    shutdown_all();
    if (closesocket(listen_fd) == SOCKET_ERROR)
        warn_errno("closesocket(listener)");
    stats_print_summary(&stats);
    WSACleanup();
    return EXIT_SUCCESS;
}

/* [S1] The port and the two pools, sized for every operation that can be
 * in flight at once: per client one recv or send (the accepts use their
 * conn's), and the EMFILE timer. Unlike io_uring's CQ the port's queue has
 * no size to choose: the kernel queues whatever completes. */
static void setup_port(void)
{
    unsigned ios = (unsigned)opts.max_clients + 1;

    /* Win32: CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, N): a
     * new port on which at most N workers run at once. The kernel enforces
     * it: a worker that blocks lets another one run, and the waiting
     * workers are woken last-in first-out. */
    port =
        CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, (DWORD)threads);
    if (port == NULL)
        die("CreateIoCompletionPort");
    /* Auto-reset: each SetEvent wakes one wait_idle, then it is clear. */
    idle_event = CreateEvent(NULL, FALSE, FALSE, NULL);
    if (idle_event == NULL)
        die("CreateEvent(idle)");
    /* A timer queue of our own, whose thread starts now: once sockets run
     * out, a new thread may not be had either. (Under Wine, with wineserver
     * out of descriptors, the default queue, started on first use, failed:
     * CreateTimerQueueTimer gave ERROR_NOT_ENOUGH_MEMORY.) */
    timer_queue = CreateTimerQueue();
    if (timer_queue == NULL)
        die("CreateTimerQueue");
    InitializeCriticalSection(&accept_lock);
    InitializeCriticalSection(&idle_lock);
    if (cport_pool_init(&conn_pool, (unsigned)opts.max_clients,
                        sizeof(struct conn)) == -1)
        die("conn pool (%d)", opts.max_clients);
    if (cport_pool_init(&io_pool, ios, sizeof(struct cport_io)) == -1)
        die("io pool (%u)", ios);
    for (int i = 0; i < opts.max_clients; i++) {
        struct conn *c = cport_pool_item(&conn_pool, (unsigned)i);
        c->handle.fd = INVALID_SOCKET;
        c->handle.key = c; /* an accept's completion finds its conn here */
        InitializeCriticalSection(&c->lock);
    }
    log_event("port: %u per-I/O contexts, %d workers, %d accepts", ios, threads,
              accepts_target);
}

/* [S1] Ctrl-C (Wine turns SIGINT into one) runs the console control
 * handler on a thread of its own, which Windows starts for it: it sets the
 * flag, then calls wake_main. No signal reaches a worker, so there is no
 * mask to set before they start (server.c blocks SIGINT/SIGTERM here and
 * takes them in main's sigsuspend). */
static void setup_stop(void)
{
    /* Never closed: the handler may still call wake_main until exit. */
    stop_event = CreateEvent(NULL, FALSE, FALSE, NULL);
    if (stop_event == NULL)
        die("CreateEvent(stop)");
    sig_on_stop(wake_main, NULL);
    if (sig_catch_stop() == -1)
        die("SetConsoleCtrlHandler");
}

/* On the console handler's thread, after the flag is set: wake main. */
static void wake_main(void *arg)
{
    (void)arg;
    if (!SetEvent(stop_event))
        warn_errno("SetEvent(stop)");
}

/* [S1] socket/bind/listen, associated with the port, then the one line on
 * stdout (last: a test may count our descriptors as soon as it reads it).
 * Blocking: we never call accept() ourselves; the port does (AcceptEx). */
static SOCKET setup_listener(void)
{
    GUID accept_ex_id = WSAID_ACCEPTEX;
    GUID sockaddrs_id = WSAID_GETACCEPTEXSOCKADDRS;
    struct sockaddr_storage local;
    int local_len = sizeof(local);
    DWORD got;

    SOCKET fd = net_listen(opts.host, opts.port, 0);
    if (fd == INVALID_SOCKET)
        die("listen on %s port %d", opts.host, opts.port);
    /* AcceptEx and GetAcceptExSockaddrs are Microsoft's extensions, not
     * Winsock 2 calls: the notes fetch their addresses from the socket's
     * provider once, rather than call mswsock.dll's stubs, which look them
     * up on every call. (io_uring's accept is an opcode: nothing to fetch.) */
    if (WSAIoctl(fd, SIO_GET_EXTENSION_FUNCTION_POINTER, &accept_ex_id,
                 sizeof(accept_ex_id), &accept_ex, sizeof(accept_ex), &got,
                 NULL, NULL) == SOCKET_ERROR)
        die("WSAIoctl(WSAID_ACCEPTEX)");
    if (WSAIoctl(fd, SIO_GET_EXTENSION_FUNCTION_POINTER, &sockaddrs_id,
                 sizeof(sockaddrs_id), &get_accept_ex_sockaddrs,
                 sizeof(get_accept_ex_sockaddrs), &got, NULL,
                 NULL) == SOCKET_ERROR)
        die("WSAIoctl(WSAID_GETACCEPTEXSOCKADDRS)");
    /* AcceptEx takes a socket made in advance, of the listener's family. */
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) == SOCKET_ERROR)
        die("getsockname(listener)");
    listen_family = local.ss_family;
    /* Win32: CreateIoCompletionPort(listen socket, port, key, 0): the
     * AcceptEx completions come to the port with the listener's key. */
    if (CreateIoCompletionPort((HANDLE)fd, port, (ULONG_PTR)&listener, 0) ==
        NULL)
        die("CreateIoCompletionPort(listener)");
    listener.fd = fd;
    listener.key = &listener;
    /* The K AcceptEx go out before the line (server.c: after it). Each
     * holds a socket made in advance, and the line says "ready": a test
     * counts the server's sockets from the moment it reads it. */
    listen_fd = fd;
    accepts_top_up();
    if (net_announce(fd) == -1)
        die("announce");
    return fd;
}

/* [S1] -t workers on the one port. */
static void start_workers(void)
{
    workers = calloc((size_t)threads, sizeof(*workers));
    if (workers == NULL)
        die("calloc(%d threads)", threads);
    for (int i = 0; i < threads; i++) {
        /* Win32: CreateThread(NULL, 0, ThreadProc, arg, 0, NULL): default
         * security and stack (1 MiB reserved), running at once. */
        workers[i] = CreateThread(NULL, 0, worker_main,
                                  (LPVOID)(intptr_t)(i + 1), 0, NULL);
        if (workers[i] == NULL)
            die("CreateThread(worker %d)", i + 1);
    }
}

/* [S2] A worker: the notes' ThreadProc. One completion at a time off the
 * shared queue, its handler, again; main's quit message ends it. The
 * handlers of one client take what GetQueuedCompletionStatus returns: the
 * key (the conn), the error and the byte count. Their bool (false: this
 * completion ended the conn) is for their own flow: a worker touches no
 * conn after its handler, since another worker may own it by then. */
static DWORD WINAPI worker_main(LPVOID arg)
{
    DWORD bytes;
    ULONG_PTR key;
    OVERLAPPED *ov;

    worker_id = (int)(intptr_t)arg;
    for (;;) {
        /* Win32 itself. TRUE: an operation succeeded (or a message came:
         * no OVERLAPPED). FALSE with an OVERLAPPED: an operation failed,
         * and GetLastError() says why (ERROR_NETNAME_DELETED, 64: the peer
         * reset; ERROR_OPERATION_ABORTED: cancelled). FALSE without one:
         * no completion at all (WAIT_TIMEOUT, or the port is gone). */
        BOOL ok =
            GetQueuedCompletionStatus(port, &bytes, &key, &ov, get_timeout());
        int error = ok ? 0 : (int)GetLastError();
        close_idle(); /* whether it timed out or not: a busy port may never */
        if (ov == NULL && error == WAIT_TIMEOUT)
            continue; /* nothing finished: an idle deadline, or a second */
        if (ov == NULL && error != 0)
            die_code(error, "GetQueuedCompletionStatus");
        if (ov == NULL && key == MSG_QUIT)
            break;
        if (ov == NULL)
            continue; /* a message we do not know: none yet */
        struct cport_io *io = CONTAINING_RECORD(ov, struct cport_io, ov);
        if (error == 0)
            error = io->error; /* a post that failed at once (io_posted) */
        io_taken(io);
        switch (io->op) {
        case CPORT_ACCEPT: /* the key is the listener's; the conn, the io's */
            on_accept_complete(io->accept_handle->key, error,
                               io->accept_socket);
            break;
        case CPORT_RECV:
            on_recv_complete((struct conn *)key, error, bytes);
            break;
        case CPORT_SEND:
            on_send_complete((struct conn *)key, error, bytes);
            break;
        case CPORT_TIMER:
            on_pause_timer(io);
            break;
        }
    }
    log_event("worker %d: quit", worker_id);
    return 0;
}

/* [S3] Keeps --accepts accepts posted, each with a free conn reserved for
 * its client (the notes' AcceptEx with a socket from the pool). With no
 * conn free (-c reached) nothing is posted: newcomers wait in the listen
 * backlog until conn_close frees one (the notes' queue when the pool is
 * empty). */
static void accepts_top_up(void)
{
    DWORD got;

    EnterCriticalSection(&accept_lock);
    while (accepting() && accepts_posted < accepts_target) {
        struct conn *c = cport_pool_get(&conn_pool);
        if (c == NULL)
            break;
        EnterCriticalSection(&c->lock);
        c->refs = 1; /* the accept's reference */
        c->closing = false;
        c->io = io_get();
        LeaveCriticalSection(&c->lock);
        struct cport_io *io = c->io;
        io_start(io, CPORT_ACCEPT, &listener);
        io->accept_handle = &c->handle;
        /* AcceptEx takes the client's socket ready-made (Linux's accept
         * makes it): here is where Windows runs out of sockets, WSAEMFILE
         * or WSAENOBUFS. io_posted then reports the failure as this
         * accept's completion, which starts the pause, as on Linux. */
        io->accept_socket =
            WSASocket(listen_family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
        /* Win32: AcceptEx(listen, accept socket, buf, 0, ..., &ov). 0
         * bytes of data: complete at the connection, not at its first
         * bytes (a client that sends nothing would never be accepted). */
        bool ok = io->accept_socket != INVALID_SOCKET &&
                  accept_ex(listen_fd, io->accept_socket, io->addrs, 0,
                            ACCEPT_ADDR_LEN, ACCEPT_ADDR_LEN, &got, &io->ov);
        io_posted(io, &listener, ok);
        accepts_posted++;
    }
    LeaveCriticalSection(&accept_lock);
}

/* [S3] An accept finished: c is the conn reserved when it was posted, fd
 * the socket made for it. c takes it, and c->io, the accept's, becomes the
 * connection's one recv. Returns false when this completion ended the conn
 * (a failed or cancelled accept, or one too late for shutdown). */
static bool on_accept_complete(struct conn *c, int error, SOCKET fd)
{
    accept_finished(error);
    if (error != 0 && error != ERROR_OPERATION_ABORTED &&
        !net_accept_exhausted(error))
        warn_code(error, "accept"); /* transient: carry on */
    if (error != 0 && fd != INVALID_SOCKET)
        closesocket(fd); /* made in advance; no client came for it */
    bool open = error == 0 && conn_open(c, fd);
    if (open)
        conn_release(c); /* the accept's reference; the recv holds one */
    else
        conn_done(c, "accept", ERROR_OPERATION_ABORTED);
    accepts_top_up(); /* the notes: post another AcceptEx at once */
    return open;
}

/* [S3] A new client: the reserved conn takes the socket, and its first
 * recv is posted with c->io, the accept's per-I/O context. Returns false
 * when it could not be opened (no memory, or shutdown has begun): c->io
 * and the accept's reference are then still the caller's. */
static bool conn_open(struct conn *c, SOCKET fd)
{
    struct sockaddr *local, *peer;
    int local_len, peer_len;

    if (c->echo.data == NULL && buf_init(&c->echo, BUF_DEFAULT_CAP) == -1) {
        warn("accept fd=%llu: no memory, closing", (unsigned long long)fd);
        closesocket(fd);
        return false;
    }
    /* Win32 only: AcceptEx's socket is not yet a full accepted socket.
     * This copies the listener's state into it; without it getpeername,
     * shutdown and some setsockopt calls fail (WSAENOTCONN). */
    if (setsockopt(fd, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
                   (const char *)&listen_fd,
                   sizeof(listen_fd)) == SOCKET_ERROR) {
        warn_errno("setsockopt(SO_UPDATE_ACCEPT_CONTEXT, fd=%llu)",
                   (unsigned long long)fd);
        closesocket(fd);
        return false;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%llu)", (unsigned long long)fd);
    /* Win32: the peer's address is in AcceptEx's buffer, in the
     * provider's layout: GetAcceptExSockaddrs finds it there. */
    get_accept_ex_sockaddrs(c->io->addrs, 0, ACCEPT_ADDR_LEN, ACCEPT_ADDR_LEN,
                            &local, &local_len, &peer, &peer_len);
    if (addr_format(peer, peer_len, c->peer, sizeof(c->peer)) == -1)
        snprintf(c->peer, sizeof(c->peer), "?");
    EnterCriticalSection(&c->lock);
    bool late = atomic_load(&stopping);
    /* Win32: CreateIoCompletionPort(socket, port, (ULONG_PTR)c, 0) */
    bool associated =
        !late && CreateIoCompletionPort((HANDLE)fd, port, (ULONG_PTR)c, 0);
    if (associated) {
        c->handle.fd = fd;
        c->handle.generation++;
    }
    LeaveCriticalSection(&c->lock);
    if (!associated) {
        if (!late)
            warn_errno("CreateIoCompletionPort(fd=%llu)",
                       (unsigned long long)fd);
        closesocket(fd); /* shutdown has begun: too late for this one */
        return false;
    }
    int now = stats_client_opened(&stats);
    log_event("accept fd=%llu peer=%s clients=%d", (unsigned long long)fd,
              c->peer, now);
    EnterCriticalSection(&idle_lock);
    idle_add(&idle_clients, &c->idle, c, clock_ms());
    LeaveCriticalSection(&idle_lock);
    return conn_post(c, CPORT_RECV);
}

/* Posts c's next operation with c->io, and a reference for it, unless c
 * is being cancelled. Under c->lock, so a cancel (conn_cancel) either
 * comes after the post and finds it, or came before and we see closing.
 * Returns false when refused: c->io is then still the caller's. */
static bool conn_post(struct conn *c, enum cport_op op)
{
    struct cport_io *io; /* c->io: once posted, it may change under us */
    WSABUF wsabuf;       /* on the stack: Winsock copies it (not the bytes) */
    DWORD flags = 0;
    int rc;

    EnterCriticalSection(&c->lock);
    if (c->closing || atomic_load(&stopping)) {
        LeaveCriticalSection(&c->lock);
        return false;
    }
    c->refs++;
    io = c->io;
    io_start(io, op, &c->handle);
    if (op == CPORT_RECV) { /* Win32: WSARecv(s, &wsabuf, 1, .., &ov) */
        wsabuf.buf = buf_tail(&c->echo);
        wsabuf.len = (ULONG)buf_space(&c->echo);
        rc = WSARecv(c->handle.fd, &wsabuf, 1, NULL, &flags, &io->ov, NULL);
    } else { /* Win32: WSASend(s, &wsabuf, 1, .., &ov) */
        wsabuf.buf = buf_head(&c->echo);
        wsabuf.len = (ULONG)buf_len(&c->echo);
        rc = WSASend(c->handle.fd, &wsabuf, 1, NULL, 0, &io->ov, NULL);
    }
    io_posted(io, c, rc == 0);
    LeaveCriticalSection(&c->lock);
    return true;
}

/* [S4] A recv finished: its bytes are in c->echo. Echo them.
 * Backpressure: a conn has one operation in flight, so no recv is posted
 * until this echo is all sent; the buffer (64 KiB) is the most one recv
 * takes. A client that does not read its echo stalls its own send; the
 * kernel's socket buffers fill, and its sending blocks. Nothing grows.
 * Returns false when this completion ended the conn. */
static bool on_recv_complete(struct conn *c, int error, DWORD bytes)
{
    assert(c->io->generation == c->handle.generation); /* never stale */
    if (error != 0 || bytes == 0) {
        conn_done(c, "recv", error);
        return false;
    }
    log_trace("recv fd=%llu %lu bytes (worker %d)",
              (unsigned long long)c->handle.fd, bytes, worker_id);
    buf_commit(&c->echo, bytes);
    idle_touch_locked(c); /* [S8] active */
    /* From conn_post on, another worker may own c->io and c->echo. */
    if (!conn_post(c, CPORT_SEND)) {
        conn_done(c, "recv", ERROR_OPERATION_ABORTED); /* shutdown */
        return false;
    }
    conn_release(c); /* this recv's reference; the send holds one */
    return true;
}

/* [S5] A send finished. A short send is normal: post the rest. All of it
 * sent: post the next recv. Returns false when this completion ended the
 * conn. */
static bool on_send_complete(struct conn *c, int error, DWORD bytes)
{
    assert(c->io->generation == c->handle.generation);
    if (error != 0) {
        conn_done(c, "send", error);
        return false;
    }
    log_trace("send fd=%llu %lu bytes (worker %d)",
              (unsigned long long)c->handle.fd, bytes, worker_id);
    stats_echoed(&stats, bytes);
    if (bytes > 0)
        idle_touch_locked(c); /* [S8] it reads */
    buf_consume(&c->echo, bytes);
    if (!buf_empty(&c->echo))
        log_trace("short send fd=%llu: %lu bytes to go",
                  (unsigned long long)c->handle.fd,
                  (unsigned long)buf_len(&c->echo));
    if (!conn_post(c, buf_empty(&c->echo) ? CPORT_RECV : CPORT_SEND)) {
        conn_done(c, "send", ERROR_OPERATION_ABORTED);
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
    char why[300];

    if (error == 0)
        log_event("%s fd=%llu: the client left", what,
                  (unsigned long long)c->handle.fd);
    else if (error != ERROR_OPERATION_ABORTED) /* the notes' error 64,
                         ERROR_NETNAME_DELETED: the peer vanished */
        log_event("%s fd=%llu: %s", what, (unsigned long long)c->handle.fd,
                  err_describe(error, why, sizeof(why)));
    cport_pool_put(&io_pool, c->io);
    c->io = NULL; /* from here on, nothing is in flight on c */
    conn_release(c);
}

/* Drops one reference. Completions of one conn may be handled on several
 * workers at once (a send's completion while the recv's handler is still
 * finishing): whichever drops the last reference, and only that one,
 * closes the conn. */
static void conn_release(struct conn *c)
{
    EnterCriticalSection(&c->lock);
    assert(c->refs > 0);
    int left = --c->refs;
    LeaveCriticalSection(&c->lock);
    if (left == 0)
        conn_close(c);
}

/* [S6] The last reference is gone: nothing is in flight on this socket, so
 * closing it and reusing c are safe (closesocket would cancel what was in
 * flight, but its completion would still come, to a reused context). */
static void conn_close(struct conn *c)
{
    EnterCriticalSection(&idle_lock); /* first: close_idle may be at c */
    idle_remove(&c->idle);
    LeaveCriticalSection(&idle_lock);
    EnterCriticalSection(&c->lock);
    SOCKET fd = c->handle.fd;
    c->handle.fd = INVALID_SOCKET;
    LeaveCriticalSection(&c->lock);
    if (fd != INVALID_SOCKET) { /* none: reserved for an accept that did
                                   not happen */
        if (closesocket(fd) == SOCKET_ERROR)
            warn_errno("closesocket(fd=%llu)", (unsigned long long)fd);
        int now = stats_client_closed(&stats);
        log_event("close fd=%llu peer=%s clients=%d", (unsigned long long)fd,
                  c->peer, now);
    }
    c->echo.len = 0; /* a reset client may leave unsent bytes behind */
    cport_pool_put(&conn_pool, c);
    if (fd != INVALID_SOCKET) { /* a client left: a socket is free again */
        EnterCriticalSection(&accept_lock);
        accept_paused_until = 0;
        LeaveCriticalSection(&accept_lock);
    }
    accepts_top_up(); /* a conn is free: the queued accept goes out */
}

/* At exit (shutdown_all), for every conn of the pool: what it holds. */
static void conn_free(void *item)
{
    struct conn *c = item;

    DeleteCriticalSection(&c->lock);
    buf_free(&c->echo);
}

/* [S7] The notes' exit: stop posting, cancel everything in flight, wait for
 * every completion (contexts are freed only then), then wake each worker
 * with a quit message and join it, and only then close the port. */
static void shutdown_all(void)
{
    log_event("shutdown: closing %d clients", stats_current(&stats));
    EnterCriticalSection(&accept_lock);
    atomic_store(&stopping, true); /* no new accept, recv or send */
    /* Win32: CancelIoEx(listen socket, NULL): the accepts in flight */
    if (!CancelIoEx((HANDLE)listen_fd, NULL) &&
        GetLastError() != ERROR_NOT_FOUND)
        die("CancelIoEx(listener)");
    LeaveCriticalSection(&accept_lock);
    cport_pool_for_each_busy(&conn_pool, conn_cancel);
    if (!wait_idle(DRAIN_TIMEOUT_MS)) {
        /* IOCP has no "cancel everything on the port" (io_uring's
         * IORING_ASYNC_CANCEL_ANY): closing the sockets would cancel
         * their operations, but the contexts they name are ours still. */
        warn("shutdown: %u completions missing after %d ms; going on",
             atomic_load(&in_flight), DRAIN_TIMEOUT_MS);
    }
    for (int i = 0; i < threads; i++) {
        /* Win32: PostQueuedCompletionStatus(port, 0, key, NULL): "quit" */
        if (!PostQueuedCompletionStatus(port, 0, MSG_QUIT, NULL))
            die("PostQueuedCompletionStatus");
    }
    for (int i = 0; i < threads; i++) {
        if (WaitForSingleObject(workers[i], INFINITE) != WAIT_OBJECT_0)
            die("WaitForSingleObject(worker %d)", i + 1);
        CloseHandle(workers[i]);
    }
    free(workers);
    unsigned left = cport_pool_destroy(&conn_pool, conn_free) +
                    cport_pool_destroy(&io_pool, NULL);
    if (left > 0)
        warn("shutdown: %u contexts were still in use", left);
    DeleteCriticalSection(&accept_lock);
    DeleteCriticalSection(&idle_lock);
    /* INVALID_HANDLE_VALUE: once its callbacks have returned (none runs:
     * the timer's completion, if any, was awaited above). */
    if (!DeleteTimerQueueEx(timer_queue, INVALID_HANDLE_VALUE))
        warn_errno("DeleteTimerQueueEx");
    CloseHandle(idle_event);
    CloseHandle(port); /* Win32: CloseHandle(port) */
}

/* Shutdown, for each conn in use: the notes' clearSocket. Mark it closing
 * and cancel what it has in flight. */
static void conn_cancel(void *item)
{
    struct conn *c = item;

    EnterCriticalSection(&c->lock);
    if (c->refs > 0 && c->handle.fd != INVALID_SOCKET && !c->closing) {
        c->closing = true;
        /* Win32: CancelIoEx(socket, NULL): every operation on the socket,
         * whichever thread posted it, completes with
         * ERROR_OPERATION_ABORTED (or its own result, if it was
         * finishing). The cancel itself is synchronous and has no
         * completion, so no reference of its own (io_uring's cancel is an
         * operation, with both). ERROR_NOT_FOUND: nothing in flight; the
         * handler of its completion will see closing and post nothing. */
        if (!CancelIoEx((HANDLE)c->handle.fd, NULL) &&
            GetLastError() != ERROR_NOT_FOUND)
            die("CancelIoEx(fd=%llu)", (unsigned long long)c->handle.fd);
    }
    LeaveCriticalSection(&c->lock);
}

/* [S8] After every GetQueuedCompletionStatus, on whichever worker: the
 * clients idle --idle-timeout seconds. Out of the list, then their
 * operation in flight is cancelled as at shutdown (CancelIoEx): its
 * completion (ERROR_OPERATION_ABORTED) ends the chain, and the last
 * reference closes the conn. conn_close takes it out of the list under
 * idle_lock before anything else, so each conn seen here is still open.
 * The notes' third way to notice a dead client is "an operation that
 * completes with a timeout error"; Winsock has no such operation, so the
 * twin uses the wait's timeout. (Linux: a timer posted on the port.) */
static void close_idle(void)
{
    long long now = clock_ms();
    struct conn *c;

    EnterCriticalSection(&idle_lock);
    while ((c = idle_expired(&idle_clients, now)) != NULL) {
        idle_remove(&c->idle);
        log_info("idle fd=%llu peer=%s: closed after %d s",
                 (unsigned long long)c->handle.fd, c->peer,
                 opts.idle_timeout);
        stats_closed_idle(&stats);
        conn_cancel(c);
    }
    LeaveCriticalSection(&idle_lock);
}

/* [S8] A worker's wait: GET_TIMEOUT_MS, or less when the oldest client
 * expires sooner (GetQueuedCompletionStatus' dwMilliseconds: WAIT_TIMEOUT
 * is then the idle timer). */
static DWORD get_timeout(void)
{
    EnterCriticalSection(&idle_lock);
    long long ms = idle_next_ms(&idle_clients, clock_ms());  /* -1: nobody */
    LeaveCriticalSection(&idle_lock);
    return ms == -1 || ms > GET_TIMEOUT_MS ? GET_TIMEOUT_MS : (DWORD)ms;
}

/* [S8] Bytes moved on c: it becomes the newest. */
static void idle_touch_locked(struct conn *c)
{
    EnterCriticalSection(&idle_lock);
    idle_touch(&idle_clients, &c->idle, clock_ms());
    LeaveCriticalSection(&idle_lock);
}

/* One accept fewer in flight. Out of sockets (WSAEMFILE/WSAENOBUFS): an
 * accept posted now would fail at once, again and again (NOTES §7.1). So
 * pause until a client leaves (conn_close) or a timer fires, whose
 * callback posts the end of the pause to the port. The io pool holds one
 * timer: a second pause waits for the timer in flight. */
static void accept_finished(int error)
{
    EnterCriticalSection(&accept_lock);
    accepts_posted--;
    if (net_accept_exhausted(error) && accept_paused_until == 0) {
        warn_code(error, "accept (pausing %d ms or until a client leaves)",
                  EMFILE_PAUSE_MS);
        accept_paused_until = clock_ms() + EMFILE_PAUSE_MS;
    }
    if (accept_paused_until != 0 && !pause_timer_posted &&
        !atomic_load(&stopping)) {
        pause_timer_posted = true;
        struct cport_io *io = io_get();
        io_start(io, CPORT_TIMER, NULL);
        /* Win32: a timer-queue timer, once, after EMFILE_PAUSE_MS. Its
         * callback runs on the queue's own thread (WT_EXECUTEINTIMERTHREAD;
         * it only posts), not on a pool thread started when it fires: out
         * of descriptors, Wine could not start one, and the pause never
         * ended. */
        if (!CreateTimerQueueTimer(
                &io->timer, timer_queue, pause_timer_fired, io, EMFILE_PAUSE_MS,
                0, WT_EXECUTEONLYONCE | WT_EXECUTEINTIMERTHREAD))
            die("CreateTimerQueueTimer");
    }
    LeaveCriticalSection(&accept_lock);
}

/* The timer's callback: the end of the pause becomes a completion. */
static VOID CALLBACK pause_timer_fired(PVOID arg, BOOLEAN timed_out)
{
    struct cport_io *io = arg;

    (void)timed_out;
    if (!PostQueuedCompletionStatus(port, 0, 0, &io->ov))
        die("PostQueuedCompletionStatus(timer)");
}

/* The EMFILE pause is over: accept again. */
static void on_pause_timer(struct cport_io *io)
{
    /* INVALID_HANDLE_VALUE: return once the callback has returned, so
     * that the timer is gone before its io goes back to the pool. */
    if (!DeleteTimerQueueTimer(timer_queue, io->timer, INVALID_HANDLE_VALUE))
        warn_errno("DeleteTimerQueueTimer");
    cport_pool_put(&io_pool, io);
    EnterCriticalSection(&accept_lock);
    pause_timer_posted = false;
    accept_paused_until = 0;
    LeaveCriticalSection(&accept_lock);
    accepts_top_up();
}

/* The per-I/O pool is sized for every operation in flight (setup_port),
 * so running dry is a bug in that sum, not a client's doing. */
static struct cport_io *io_get(void)
{
    struct cport_io *io = cport_pool_get(&io_pool);
    if (io == NULL)
        die_code(0, "per-I/O pool empty (%u): setup_port's sum is wrong",
                 io_pool.capacity);
    return io;
}

/* Before a post: the OVERLAPPED zeroed (the kernel keeps its state in it:
 * a used one is not reposted as it is), the operation recorded, and one
 * more operation counted in flight, before its completion can come. */
static void io_start(struct cport_io *io, enum cport_op op,
                     struct cport_handle *handle)
{
    assert(!io->in_flight); /* an OVERLAPPED is posted once at a time */
    memset(&io->ov, 0, sizeof(io->ov));
    io->op = op;
    io->handle = handle;
    io->generation = handle != NULL ? handle->generation : 0;
    io->error = 0;
    io->in_flight = true;
    atomic_fetch_add(&in_flight, 1);
}

/* After AcceptEx, WSARecv or WSASend: done at once (ok) or pending
 * (WSA_IO_PENDING), its completion will come to the port. Failed at once,
 * none will: Windows queues one only for an operation it started. So we
 * queue one ourselves, with the error in io: a failed operation (a reset
 * peer, no socket left) then comes out of GetQueuedCompletionStatus like
 * any other, as cport.h promises on Linux, and takes the same path. */
static void io_posted(struct cport_io *io, void *key, bool ok)
{
    int error = ok ? 0 : WSAGetLastError();

    if (error == 0 || error == WSA_IO_PENDING)
        return; /* the io is the kernel's now: do not touch it */
    io->error = error;
    if (!PostQueuedCompletionStatus(port, 0, (ULONG_PTR)key, &io->ov))
        die("PostQueuedCompletionStatus");
}

/* A completion was taken: one operation fewer in flight. At shutdown, the
 * last one wakes wait_idle (IOCP keeps no such count: we do). */
static void io_taken(struct cport_io *io)
{
    assert(io->in_flight); /* one completion per post */
    io->in_flight = false;
    if (atomic_fetch_sub(&in_flight, 1) == 1 && atomic_load(&stopping) &&
        !SetEvent(idle_event))
        die("SetEvent(idle)");
}

/* Waits up to timeout_ms until every posted operation's completion has
 * been taken. Only after stopping is set, when in_flight can only fall. */
static bool wait_idle(int timeout_ms)
{
    long long deadline = clock_ms() + timeout_ms;

    while (atomic_load(&in_flight) > 0) {
        long long left = deadline - clock_ms();
        if (left <= 0)
            return false;
        if (WaitForSingleObject(idle_event, (DWORD)left) == WAIT_FAILED)
            die("WaitForSingleObject(idle)");
    }
    return true;
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
