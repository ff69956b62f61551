/* cport.h - a completion port on io_uring: the notes' IOCP, call for call.
 *
 *   Win32 (the notes)                       here
 *   CreateIoCompletionPort(INVALID_HANDLE,  cport_create(port, max_in_flight,
 *       NULL, 0, concurrency)                   concurrency)
 *   CreateIoCompletionPort(socket, port,    cport_associate(port, handle,
 *       key, 0)                                 fd, key)
 *   AcceptEx(listen, accept_socket, ...,    cport_post_accept(port, listener,
 *       &overlapped)                            io, accept_handle)
 *   WSARecv(socket, &wsabuf, ..., &ov)      cport_post_recv(port, handle, io,
 *                                               buf, len)
 *   WSASend(socket, &wsabuf, ..., &ov)      cport_post_send(port, handle, io,
 *                                               buf, len)
 *   CancelIoEx(socket, NULL)                cport_post_cancel(port, handle, io)
 *   GetQueuedCompletionStatus(port, &bytes, cport_get(port, &done, timeout_ms)
 *       &key, &overlapped, timeout)
 *   PostQueuedCompletionStatus(port, ...)   cport_post_message(port, message)
 *   CloseHandle(port)                       cport_destroy(port)
 *
 * The per-socket context is the completion key (what the caller passes to
 * cport_associate); the per-I/O context is struct cport_io, the OVERLAPPED:
 * it must stay valid, untouched, from the post until cport_get hands it back.
 *
 * One io_uring, one completion queue, shared by any number of worker
 * threads: every function here may be called from any thread. How the
 * sharing is made safe is explained at the top of cport.c.
 *
 * Also here: the notes' fixed-size pool (a free-index stack), used for both
 * kinds of context, so that no context is malloc'd per client or per call.
 */
#ifndef CPORT_H
#define CPORT_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* What an operation was; it comes back in the completion. */
enum cport_op {
    CPORT_ACCEPT, /* AcceptEx */
    CPORT_RECV,   /* WSARecv */
    CPORT_SEND,   /* WSASend */
    CPORT_CANCEL, /* CancelIoEx: cancel everything in flight on a socket */
    CPORT_TIMER,  /* a timer whose expiry is a completion (no Win32 twin
                     on the port itself) */
};

/* A socket associated with the port (what CreateIoCompletionPort(socket,
 * port, key, 0) records). io_uring needs no per-socket registration, so
 * associating is only remembering: every completion for an operation posted
 * on this handle carries this key. */
struct cport_handle {
    int fd;
    void *key;           /* the completion key: the per-socket context */
    unsigned generation; /* bumped by each cport_associate: a new life */
};

/* The per-I/O context: the OVERLAPPED. */
struct cport_io {
    enum cport_op op;
    struct cport_handle *handle;        /* posted on this socket */
    struct cport_handle *accept_handle; /* ACCEPT: who gets the new socket
                                           (AcceptEx's sAcceptSocket) */
    unsigned generation; /* handle->generation when posted: a completion
                            carrying an older one is stale */
    bool in_flight;      /* posted, completion not yet taken */
    void *buf;           /* RECV/SEND: the WSABUF */
    size_t len;
    struct sockaddr_storage peer; /* ACCEPT: the client's address */
    socklen_t peer_len;
    struct __kernel_timespec timeout; /* TIMER */
};

/* The out-parameters of GetQueuedCompletionStatus, in one struct. */
struct cport_completion {
    struct cport_io *io; /* lpOverlapped; NULL for a posted message */
    void *key;           /* lpCompletionKey (NULL for messages, timers) */
    size_t bytes;        /* lpNumberOfBytesTransferred (RECV, SEND) */
    int fd;              /* ACCEPT: the new socket */
    int error;           /* 0, or the errno (GetLastError) */
    unsigned message;    /* what cport_post_message sent, when io is NULL */
};

/* The port. Fields are the module's; they are here so that gdb and the
 * reader can see them ("p port" in the gdb tour). */
struct cport {
    struct io_uring ring;
    unsigned concurrency;      /* CreateIoCompletionPort's last argument */
    unsigned cq_entries;       /* what the kernel gave us */
    pthread_mutex_t sq_lock;   /* one poster at a time (see cport.c) */
    pthread_mutex_t cq_lock;   /* one completer at a time (see cport.c) */
    atomic_uint in_flight;     /* posted, completion not yet taken */
    atomic_bool kernel_busy;   /* io_uring_enter said EAGAIN/EBUSY last time:
                                  the posts wait in the SQ (logged once) */
    pthread_mutex_t idle_lock; /* with idle: cport_wait_idle sleeps here */
    pthread_cond_t idle;
};

/* Creates the port: an io_uring whose completion queue holds max_in_flight
 * entries at least (twice that, in fact). The caller must never have more
 * operations in flight than that. concurrency 0 means "as many as there are
 * CPUs" (as in Win32); see cport.c for what it does and does not do here.
 * Returns 0 or -errno: -EPERM / -ENOSYS mean that io_uring is unavailable
 * here (a sysctl, a container's seccomp profile, an old kernel). */
int cport_create(struct cport *port, unsigned max_in_flight,
                 unsigned concurrency);
/* io_uring_queue_exit. Every worker thread must have been joined. */
void cport_destroy(struct cport *port);

/* Associates fd with the port: handle now stands for fd, and completions
 * of operations posted on it carry key. Bumps handle->generation. */
void cport_associate(struct cport *port, struct cport_handle *handle, int fd,
                     void *key);

/* Posts an operation; its completion comes out of cport_get(). io is the
 * caller's until then only in the sense that it must stay allocated: the
 * kernel may write into it (ACCEPT's peer) and into buf (RECV) meanwhile.
 * A failing operation (a bad fd, a reset peer) is not a failing post: its
 * error comes back in the completion. On a worker (a thread cport_get has
 * returned a completion to) the post reaches the kernel when that thread
 * next calls cport_get, batched with its others, and returns 0; a failed
 * submit then comes out of cport_get. On any other thread it is submitted
 * at once: returns 0, or -errno if io_uring_submit failed (the kernel is
 * out of memory: with the completion queue sized by cport_create, nothing
 * else can make it fail). */
int cport_post_accept(struct cport *port, struct cport_handle *listener,
                      struct cport_io *io, struct cport_handle *accept_handle);
int cport_post_recv(struct cport *port, struct cport_handle *handle,
                    struct cport_io *io, void *buf, size_t len);
int cport_post_send(struct cport *port, struct cport_handle *handle,
                    struct cport_io *io, const void *buf, size_t len);
/* Cancels every operation in flight on handle's socket: each completes
 * with error ECANCELED (or with its own result, if it was finishing). The
 * cancel's own completion has bytes = how many it found. */
int cport_post_cancel(struct cport *port, struct cport_handle *handle,
                      struct cport_io *io);
/* A completion (error ETIME) after millis milliseconds. */
int cport_post_timer(struct cport *port, struct cport_io *io, unsigned millis);
/* Cancels a timer posted with cport_post_timer: it completes with error
 * ECANCELED (or ETIME, if it was firing anyway). The cancel's own
 * completion is consumed inside cport_get. */
int cport_cancel_timer(struct cport *port, struct cport_io *timer);
/* PostQueuedCompletionStatus: a completion with io == NULL and this
 * message, e.g. "quit" for one worker. */
int cport_post_message(struct cport *port, unsigned message);
/* Cancels every operation in flight on the port (the last resort of a
 * shutdown); its own completion is consumed inside cport_get. */
int cport_cancel_all(struct cport *port);

/* GetQueuedCompletionStatus: waits up to timeout_ms (-1: forever) for one
 * completion and fills *done. Before it can sleep it submits the posts this
 * thread (and any other worker) left batched in the SQ. Returns 0, -ETIME
 * when the time ran out (WAIT_TIMEOUT), or another -errno: from poll() on
 * the ring, or from io_uring_submit of those batched posts. */
int cport_get(struct cport *port, struct cport_completion *done,
              int timeout_ms);

/* Waits up to timeout_ms until every posted operation's completion has been
 * taken by cport_get. Returns 0, or -ETIMEDOUT. */
int cport_wait_idle(struct cport *port, int timeout_ms);

/* ---- the notes' pool: fixed-size, a stack of free indexes, thread-safe */

struct cport_pool {
    char *items;      /* capacity items of item_size bytes, zeroed */
    size_t item_size; /* rounded up to 16 (alignment, ASan poisoning) */
    unsigned capacity;
    unsigned *free_index; /* the notes' index array: free items' indexes */
    unsigned free_count;  /* how many; free_index[free_count - 1] is next */
    bool *busy;           /* per item: handed out (catches double returns) */
    pthread_mutex_t lock;
};

/* Returns 0 or -1 with errno = ENOMEM. Items start zeroed and free; the
 * caller may initialise them all (cport_pool_item) before the first get. */
int cport_pool_init(struct cport_pool *pool, unsigned capacity,
                    size_t item_size);
/* The notes' GetIdleEle: a free item, or NULL when the pool is empty. An
 * item comes back as it was returned (not zeroed). */
void *cport_pool_get(struct cport_pool *pool);
/* The notes' BusytoIdle. Returning an item that is not handed out (the
 * notes' double return) is a bug: it aborts with a message. */
void cport_pool_put(struct cport_pool *pool, void *item);
void *cport_pool_item(struct cport_pool *pool, unsigned index);
unsigned cport_pool_index(const struct cport_pool *pool, const void *item);
/* Calls fn on every handed-out item, with the pool locked (so none is
 * returned meanwhile: fn must not get from or put to this pool). */
void cport_pool_for_each_busy(struct cport_pool *pool, void (*fn)(void *item));
/* Calls cleanup (may be NULL) on every item, frees the pool. Returns how
 * many items were still handed out (0 after a clean shutdown). */
unsigned cport_pool_destroy(struct cport_pool *pool,
                            void (*cleanup)(void *item));

#endif
