/* 01-blocking/win32.c - the blocking model in Winsock, the notes' own API:
 * the Win32 twin of server.c. accept(), then recv()/send() until the
 * client leaves.
 *
 * The notes' first server: every call waits until it is done. In
 * --mode iterative (the default) the one thread serves one client at a time;
 * everyone else waits in the listen backlog. --mode threads gives each
 * client its own thread (the notes' CreateThread; the design they warn
 * against: a thread, a stack and two context switches per client, capped
 * here by -c).
 *
 *   [S1] setup_conns, setup_stop, setup_listener: socket, bind, listen
 *   [S2] event_loop: accept() blocks until a client connects  (Linux: accept4)
 *   [S3] on_accept: the client's socket, with its idle timeout
 *   [S4] serve_client: recv() blocks until bytes come        (Linux: recv)
 *   [S5]   send() them back, looping on short sends          (Linux: send)
 *   [S6] recv() returns 0: the client left; conn_close      (Linux: close)
 *   [S7] Ctrl-C: on_stop closesocket()s the listener and cancels the
 *        clients' blocked calls; shutdown_all waits for the threads, frees
 *   [S8] recv() or send() waited --idle-timeout s for a byte: the socket's
 *        timeout fails it with WSAETIMEDOUT; close_idle     (Linux: EAGAIN)
 *
 * Linux: no WSAStartup/WSACleanup (the socket API is always there); a
 * socket is an int fd and WSAGetLastError() is errno; pthreads, a mutex and
 * an eventfd stand for CreateThread, the CRITICAL_SECTION and the
 * semaphore; and the stop is a signal whose handler interrupts one of our
 * threads, where Ctrl-C here runs a handler on a thread of its own.
 *
 * Try:  make run-win32 M=01 ARGS="-v"     then: nc 127.0.0.1 9001 (twice)
 *       make run-win32 M=01 ARGS="--mode threads -v"  both served at once
 *       make run-win32 M=01 ARGS="-v --idle-timeout 3"  a silent nc: 3 s
 *       diff -u 01-blocking/server.c 01-blocking/win32.c
 * gdb:  winedbg --gdb build/win32/01-blocking/win32.exe (README, "The Win32
 *       twin"): break on_accept, serve_client
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* <windows.h> comes in through sock.h's <winsock2.h>, which must be
 * included first (windows.h alone would pull in Winsock 1's winsock.h). */
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
#define EMFILE_PAUSE_MS 100     /* out of sockets: stop accepting */

enum mode { MODE_ITERATIVE, MODE_THREADS };
enum conn_state { CONN_FREE, CONN_SERVING, CONN_FINISHED };

/* One client. In threads mode, one of these per slot of -c. */
struct conn {
    enum conn_state state;      /* guarded by table_lock (on_stop reads it) */
    SOCKET fd;                  /* set under table_lock (on_stop reads it) */
    char peer[ADDR_TEXT_MAX];
    struct buf echo;            /* bytes received, not yet sent back */
    HANDLE thread;              /* Linux: pthread_t; a handle, closed once
                                   the thread has been waited for */
};

static struct server_opts opts;
static int mode = MODE_ITERATIVE;
static struct stats stats;
static SOCKET listen_fd = INVALID_SOCKET;
/* The listener as the stop sees it: on_stop closes it and sets this to
 * INVALID_SOCKET (guarded by table_lock). listen_fd, the main thread's
 * copy, is never written after start-up. */
static SOCKET listen_to_close = INVALID_SOCKET;

/* The clients: one slot in iterative mode, -c in threads mode, with a
 * lock, and a semaphore that counts free slots (the stop also bumps it). */
static struct conn *conns;
static int nconns;
static CRITICAL_SECTION table_lock;
static HANDLE free_slots;
/* Ctrl-C's handler thread sets stop_done when on_stop has finished, so
 * that shutdown_all frees nothing it still uses; stop_seen makes a second
 * Ctrl-C do nothing. */
static HANDLE stop_done;
static atomic_bool stop_seen;

static void setup_conns(void);
static void setup_stop(void);
static SOCKET setup_listener(void);
static void event_loop(void);
static void on_accept(struct conn *c);
static void serve_client(struct conn *c);
static void conn_close(struct conn *c);
static void close_idle(struct conn *c);
static void start_worker(struct conn *c);
static DWORD WINAPI worker_main(LPVOID arg);
static void on_stop(void *arg);
static void stop_blocking_calls(void);
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
    .program = "01-blocking/win32.exe",
    .summary = "blocking Winsock accept/recv/send, iterative or a thread "
               "per client",
    .default_port = DEFAULT_PORT,
    .default_max_clients = DEFAULT_MAX_CLIENTS,
    .max_clients_limit = 100000,
    .extra = model_opts,
    .extra_count = sizeof(model_opts) / sizeof(model_opts[0]),
};

int main(int argc, char **argv)
{
    WSADATA wsa;
    int rc;

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("blocking", opts.verbose);
    stats_init(&stats);

    /* Load Winsock 2.2, and check the version we got, as the notes do:
     * the DLL answers with the version it will speak in wsa.wVersion
     * (major in the low byte). Linux needs neither: sockets are system
     * calls. No SIGPIPE to ignore either: a send to a reset peer fails
     * with WSAECONNRESET, and nothing else happens. */
    if ((rc = WSAStartup(MAKEWORD(2, 2), &wsa)) != 0)
        die_code(rc, "WSAStartup");
    if (LOBYTE(wsa.wVersion) != 2 || HIBYTE(wsa.wVersion) != 2)
        die_code(WSAVERNOTSUPPORTED, "WSAStartup: version %d.%d",
                 LOBYTE(wsa.wVersion), HIBYTE(wsa.wVersion));

    setup_conns();
    setup_stop();
    listen_fd = setup_listener();
    event_loop();
    shutdown_all();  /* the listener is closed already: by the stop */
    stats_print_summary(&stats);
    WSACleanup();
    return EXIT_SUCCESS;
}

/* [S1] The slot table and its free-slot counter. Done before the listening
 * line, so the server is whole when it says so. */
static void setup_conns(void)
{
    nconns = mode == MODE_THREADS ? opts.max_clients : 1;
    conns = calloc(nconns, sizeof(*conns));
    if (conns == NULL)
        die_code(ERROR_NOT_ENOUGH_MEMORY, "calloc(%d conns)", nconns);
    for (int i = 0; i < nconns; i++)
        conns[i].fd = INVALID_SOCKET;
    /* A CRITICAL_SECTION has no static initialiser (Linux:
     * PTHREAD_MUTEX_INITIALIZER): set it up before any thread can use it.
     * Unlike a default pthread mutex it is recursive: its owner may enter
     * it again (and must leave it as many times). */
    InitializeCriticalSection(&table_lock);
    /* A semaphore: each WaitForSingleObject takes one free slot and blocks
     * at zero; ReleaseSemaphore gives one back (Linux: an eventfd with
     * EFD_SEMAPHORE). Its maximum leaves room for on_stop's extra count. */
    free_slots = CreateSemaphore(NULL, nconns, nconns + 1, NULL);
    if (free_slots == NULL)
        die("CreateSemaphore");
}

/* [S1] Ctrl-C runs a console control handler (sig_win32.c) that sets the
 * stop flag and then calls on_stop. Windows starts a thread of its own for
 * it, so on_stop is ordinary code: it may take table_lock, walk the table
 * and close sockets. Linux's signal handler interrupts one of our threads
 * and may do only async-signal-safe things (set a flag, shutdown(), write
 * an eventfd), hence its slots of sockets to shut down. */
static void setup_stop(void)
{
    /* A manual-reset event, unset: once set it stays set. */
    stop_done = CreateEvent(NULL, TRUE, FALSE, NULL);
    if (stop_done == NULL)
        die("CreateEvent");
    sig_on_stop(on_stop, NULL);
    if (sig_catch_stop() == -1)
        die("SetConsoleCtrlHandler");
}

/* [S1] socket/bind/listen, then the one line on stdout. Flags 0: Winsock
 * has no SOCK_CLOEXEC, a handle goes to a child only if CreateProcess is
 * asked to pass handles on. */
static SOCKET setup_listener(void)
{
    SOCKET fd = net_listen(opts.host, opts.port, 0);
    if (fd == INVALID_SOCKET)
        die("listen on %s port %d", opts.host, opts.port);
    /* A stop closes this socket (on_stop), which makes a blocked (or
     * about to block) accept() fail at once. */
    EnterCriticalSection(&table_lock);
    listen_to_close = fd;
    LeaveCriticalSection(&table_lock);
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
            continue;  /* woken by the stop: the loop ends */
        on_accept(c);
        if (c->fd == INVALID_SOCKET) {
            release_slot(c, CONN_FREE);
            continue;
        }
        if (mode == MODE_THREADS) {
            start_worker(c);
            continue;
        }
        /* on_accept set c->fd under table_lock before this test: a stop
         * either finds the socket there (and cancels its calls) or has set
         * the flag before we test it. */
        if (!sig_stop_requested())
            serve_client(c);
        conn_close(c);
        release_slot(c, CONN_FREE);
    }
}

/* [S3] Blocks in accept(). Sets c->fd to the client, or to INVALID_SOCKET
 * to loop again (the stop, a transient error, or a pause for lack of
 * sockets). */
static void on_accept(struct conn *c)
{
    SOCKET fd = net_accept(listen_fd, 0, c->peer, sizeof(c->peer));
    int err = fd == INVALID_SOCKET ? WSAGetLastError() : 0;

    /* Under the lock: on_stop, on the handler's thread, reads c->fd. */
    EnterCriticalSection(&table_lock);
    c->fd = fd;
    LeaveCriticalSection(&table_lock);
    if (c->fd == INVALID_SOCKET) {
        /* The stop closed the listener. Wine fails the blocked accept()
         * with WSA_OPERATION_ABORTED; WSAEINTR is Winsock's code for a
         * cancelled blocking call. We test the flag, not the code. No
         * signal ever interrupts accept() (Linux: EINTR). */
        if (sig_stop_requested() || err == WSAEINTR)
            return;
        if (net_accept_exhausted(err)) {
            /* WSAEMFILE/WSAENOBUFS: out of sockets or memory. Retrying at
             * once would spin (NOTES §7.1); only a leaving client frees
             * one, so wait a little and leave the newcomers in the listen
             * backlog. clock_pause_ms is Sleep(ms) here
             * (common/clock_win32.c), nanosleep on Linux. */
            warn_code(err, "accept (pausing %d ms)", EMFILE_PAUSE_MS);
            clock_pause_ms(EMFILE_PAUSE_MS);
            return;
        }
        if (!net_accept_transient(err))
            die_code(err, "accept");  /* WSAENOTSOCK...: a bug */
        warn_code(err, "accept");
        return;
    }
    /* An urgent byte stays in line and is echoed like the rest. */
    if (net_set_oobinline(c->fd) == -1)
        warn_errno("setsockopt(SO_OOBINLINE, fd=%llu)",
                   (unsigned long long)c->fd);
    /* [S8] The idle timeout: without it one silent client (or one that
     * never reads its echo) would hold the iterative server forever. The
     * kernel times each blocked recv() and send(), so no timer and no list
     * of our own. Winsock takes a DWORD of milliseconds (net_win32.c),
     * Linux a struct timeval. --idle-timeout 0 sets nothing: the options
     * stay 0, "no timeout", to both. (Linux: the calls fail with EAGAIN.) */
    if (opts.idle_timeout > 0 &&
        net_set_timeouts(c->fd, opts.idle_timeout * 1000) == -1)
        warn_errno("setsockopt(SO_RCVTIMEO/SO_SNDTIMEO, fd=%llu)",
                   (unsigned long long)c->fd);
    int now = stats_client_opened(&stats);
    log_event("accept fd=%llu peer=%s clients=%d", (unsigned long long)c->fd,
              c->peer, now);
}

/* Echo until the client leaves: recv what is there (up to the buffer's
 * bound), send all of it back, repeat. Waiting in send() is the
 * backpressure: we read no more until the client takes its echo. No
 * signal interrupts a Winsock call, so there is no EINTR to retry. */
static void serve_client(struct conn *c)
{
    char why[300];

    for (;;) {
        ssize_t n = buf_fill(&c->echo, c->fd);       /* [S4] blocks */
        if (n == 0)
            return;  /* the client left */
        if (n == SOCKET_ERROR) {
            int err = WSAGetLastError();
            /* The timeout is WSAETIMEDOUT (Linux: EAGAIN). Microsoft's
             * setsockopt page: once a send or receive has timed out, the
             * socket's state is indeterminate and it should not be used
             * (the operation may be cancelled just as it completes, and
             * data lost). So we close it, as Linux 01 does; send's
             * timeout below too. */
            if (err == WSAETIMEDOUT)
                close_idle(c);  /* nothing came: the timeout */
            else if (!sig_stop_requested())  /* the stop's own cancel */
                log_event("recv fd=%llu: %s", (unsigned long long)c->fd,
                          err_describe(err, why, sizeof(why)));
            return;
        }
        log_trace("recv fd=%llu %zd bytes", (unsigned long long)c->fd, n);
        while (!buf_empty(&c->echo)) {               /* [S5] */
            ssize_t sent = buf_drain(&c->echo, c->fd);
            int err = sent == SOCKET_ERROR ? WSAGetLastError() : 0;
            if (err == WSAETIMEDOUT) {
                close_idle(c);  /* none of the echo taken: the timeout */
                return;
            }
            if (err != 0) {
                log_event("send fd=%llu: %s", (unsigned long long)c->fd,
                          err_describe(err, why, sizeof(why)));
                return;
            }
            stats_echoed(&stats, (unsigned long long)sent);
            log_trace("send fd=%llu %zd bytes", (unsigned long long)c->fd,
                      sent);
        }
    }
}

/* [S6] recv() returned 0 (the client left), an error, or the timeout.
 * Under table_lock, in both modes: on_stop may be at this socket right
 * now, and once c->fd is INVALID_SOCKET it leaves it alone, so it never
 * touches a handle we have closed (whose value Windows may give out
 * again). */
static void conn_close(struct conn *c)
{
    EnterCriticalSection(&table_lock);
    if (c->fd != INVALID_SOCKET) {
        if (closesocket(c->fd) == SOCKET_ERROR)
            warn_errno("closesocket(fd=%llu)", (unsigned long long)c->fd);
        int now = stats_client_closed(&stats);
        log_event("close fd=%llu peer=%s clients=%d",
                  (unsigned long long)c->fd, c->peer, now);
        c->fd = INVALID_SOCKET;
        c->echo.len = 0;  /* a reset client may leave unsent bytes behind */
    }
    LeaveCriticalSection(&table_lock);
}

/* [S8] recv() waited --idle-timeout seconds and nothing came, or send()
 * did and the client could not take its echo: the socket's timeout ran out
 * (WSAETIMEDOUT). Winsock documents no partial count for a blocking send()
 * that timed out, only the failure, after which the socket is not to be
 * used (Linux: a send() that moved some bytes returns that count; only the
 * next one fails). Either way, closing is all that is left to do. */
static void close_idle(struct conn *c)
{
    log_info("idle fd=%llu peer=%s: closed after %d s",
             (unsigned long long)c->fd, c->peer, opts.idle_timeout);
    stats_closed_idle(&stats);
    conn_close(c);
}

/* --mode threads: the client's own thread runs the same serve_client() as
 * the iterative loop. No signal mask to set (Linux blocks SIGINT/SIGTERM
 * in its workers so a stop lands on the acceptor): Ctrl-C interrupts no
 * thread, it brings its own. */
static void start_worker(struct conn *c)
{
    /* The notes' call, with server.c's stack size. With
     * STACK_SIZE_PARAM_IS_A_RESERVATION, dwStackSize is the address space
     * reserved (committed page by page as it is touched), as
     * pthread_attr_setstacksize's size is; without it, the size committed
     * at once. Microsoft advises _beginthreadex for a thread that uses
     * the C runtime; mingw-w64 links the runtime as a DLL (msvcrt.dll),
     * which sets up its per-thread data on first use and frees it when the
     * thread ends, so CreateThread is safe here. */
    c->thread = CreateThread(NULL, THREAD_STACK_BYTES, worker_main, c,
                             STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (c->thread == NULL) {
        /* Out of memory for a stack. Refuse this client, keep the rest. */
        warn_errno("CreateThread (closing fd=%llu)",
                   (unsigned long long)c->fd);
        conn_close(c);
        release_slot(c, CONN_FREE);
    }
}

/* The notes' ThreadProc signature, DWORD WINAPI f(LPVOID); Linux's start
 * routine returns a void * instead. */
static DWORD WINAPI worker_main(LPVOID arg)
{
    struct conn *c = arg;

    serve_client(c);
    conn_close(c);
    release_slot(c, CONN_FINISHED);  /* waited for by whoever takes it next */
    return 0;
}

/* [S7] Ctrl-C, on the handler's thread, after the stop flag is set. Wakes
 * every blocked call (stop_blocking_calls) and take_free_slot's wait,
 * then says it is done. A second Ctrl-C finds stop_seen set and returns:
 * by then shutdown_all may be freeing what the first one used. */
static void on_stop(void *arg)
{
    (void)arg;
    if (atomic_exchange(&stop_seen, true))
        return;
    stop_blocking_calls();
    /* One more count wakes a wait for a slot, as a slot coming free would
     * (Linux: the handler writes the eventfd). */
    if (!ReleaseSemaphore(free_slots, 1, NULL))
        warn_errno("ReleaseSemaphore");
    if (!SetEvent(stop_done))
        warn_errno("SetEvent");
}

/* [S7] Makes every blocked call return, measured under Wine 8.0:
 *  - accept(): closesocket() the listener. shutdown() is for a connected
 *    socket: on a listening one it fails with WSAENOTCONN (Microsoft's
 *    shutdown page lists that error; Wine does the same) and accept()
 *    stays blocked. closesocket() makes it fail at once. (Linux is the
 *    other way round: shutdown() wakes accept(), close() does not.)
 *  - recv()/send() of a client: shutdown(SD_BOTH), then CancelIoEx().
 *    Neither alone is enough: shutdown() does not wake a call already
 *    blocked, but makes every later one fail at once (WSAESHUTDOWN);
 *    CancelIoEx() ends the blocked one (WSA_OPERATION_ABORTED). A call
 *    either started before the shutdown(), and is cancelled, or after,
 *    and fails. closesocket() would wake a blocked recv() but, under Wine,
 *    not a blocked send() (a slow reader's thread would wait out its
 *    --idle-timeout), and it would free the handle while the client's thread
 *    still uses it: that thread closes its own socket (conn_close).
 * Under table_lock: conn_close and on_accept change c->fd under it. */
static void stop_blocking_calls(void)
{
    EnterCriticalSection(&table_lock);
    if (listen_to_close != INVALID_SOCKET) {
        if (closesocket(listen_to_close) == SOCKET_ERROR)
            warn_errno("closesocket(listener)");
        listen_to_close = INVALID_SOCKET;
    }
    for (int i = 0; i < nconns; i++) {
        SOCKET fd = conns[i].fd;
        if (conns[i].state != CONN_SERVING || fd == INVALID_SOCKET)
            continue;
        shutdown(fd, SD_BOTH);  /* WSAENOTCONN if reset: fine */
        /* A SOCKET is a kernel handle: CancelIoEx takes it as a HANDLE.
         * NULL: every operation on it, of any thread. ERROR_NOT_FOUND:
         * nothing was blocked. */
        if (!CancelIoEx((HANDLE)fd, NULL) &&
            GetLastError() != ERROR_NOT_FOUND)
            warn_errno("CancelIoEx(fd=%llu)", (unsigned long long)fd);
    }
    LeaveCriticalSection(&table_lock);
}

/* [S7] After the loop: wake the clients once more, wait for every thread
 * to end, free. */
static void shutdown_all(void)
{
    /* The loop ended because the handler set the flag, but on_stop may
     * still be running on the handler's thread: wait for it before
     * freeing what it uses. (Linux's handler runs on our thread and has
     * returned before the loop sees the flag.) */
    if (WaitForSingleObject(stop_done, INFINITE) != WAIT_OBJECT_0)
        die("WaitForSingleObject(stop_done)");
    /* A client accepted just before the stop closed the listener may have
     * got its thread after on_stop looked: wake it too. */
    stop_blocking_calls();
    for (int i = 0; i < nconns; i++) {
        /* Read the state under the lock: its thread may be setting it to
         * FINISHED right now. */
        EnterCriticalSection(&table_lock);
        bool has_thread = conns[i].state != CONN_FREE &&
                          mode == MODE_THREADS;
        LeaveCriticalSection(&table_lock);
        /* Linux: pthread_join. Here: wait on the thread's handle (it is
         * signalled when the thread ends), then close the handle. */
        if (has_thread) {
            if (WaitForSingleObject(conns[i].thread, INFINITE) !=
                WAIT_OBJECT_0)
                die("WaitForSingleObject(thread)");
            if (!CloseHandle(conns[i].thread))
                warn_errno("CloseHandle(thread)");
        }
        buf_free(&conns[i].echo);
    }
    free(conns);
    DeleteCriticalSection(&table_lock);
    if (!CloseHandle(free_slots))
        warn_errno("CloseHandle(free_slots)");
    if (!CloseHandle(stop_done))
        warn_errno("CloseHandle(stop_done)");
}

/* Marks the slot free (or finished, to be waited for) and counts it
 * free. */
static void release_slot(struct conn *c, enum conn_state state)
{
    EnterCriticalSection(&table_lock);
    c->state = state;
    LeaveCriticalSection(&table_lock);
    if (!ReleaseSemaphore(free_slots, 1, NULL))
        warn_errno("ReleaseSemaphore");  /* only past its maximum: a bug */
}

/* Waits until a slot is free (fewer than -c clients in threads mode; the
 * one slot in iterative mode always is), then returns it, or NULL when the
 * stop woke the wait or its buffer could not be had for now. */
static struct conn *take_free_slot(void)
{
    /* Takes one count; blocks while there is none (Linux: read() of the
     * eventfd). No EINTR: nothing interrupts the wait but its handle. */
    if (WaitForSingleObject(free_slots, INFINITE) != WAIT_OBJECT_0)
        die("WaitForSingleObject(free_slots)");
    if (sig_stop_requested())
        return NULL;  /* the stop's count, or a slot: either way, stop */
    EnterCriticalSection(&table_lock);
    struct conn *found = NULL;
    for (int i = 0; i < nconns && found == NULL; i++) {
        if (conns[i].state == CONN_SERVING)
            continue;
        found = &conns[i];
        if (found->state == CONN_FINISHED) {
            /* It has released its slot: it is ending, or has ended. */
            if (WaitForSingleObject(found->thread, INFINITE) != WAIT_OBJECT_0)
                die("WaitForSingleObject(thread)");
            if (!CloseHandle(found->thread))
                warn_errno("CloseHandle(thread)");
        }
        found->state = CONN_SERVING;
    }
    LeaveCriticalSection(&table_lock);
    assert(found != NULL);  /* the semaphore counted a free slot */
    if (found->echo.data == NULL && buf_init(&found->echo, BUF_DEFAULT_CAP)) {
        /* Short of memory for now: the newcomer waits in the listen
         * backlog; the caller's loop asks for a slot again. */
        err_set_last(ERROR_NOT_ENOUGH_MEMORY);  /* malloc sets only errno */
        back_off("malloc(echo buffer)");
        release_slot(found, CONN_FREE);
        return NULL;
    }
    return found;
}
