/* cport.c - a completion port on io_uring (see cport.h for the Win32 map).
 *
 * io_uring is two queues in memory shared with the kernel: we write
 * requests (SQEs) into the submission queue and io_uring_submit() tells the
 * kernel; the kernel writes results (CQEs) into the completion queue and we
 * read them. Each request carries one 64-bit word, user_data, that comes
 * back unchanged in its CQE: that word is how a completion finds its
 * OVERLAPPED (struct cport_io) and, through it, its completion key.
 *
 * liburing's queue functions are not thread-safe: they read and move the
 * queues' head and tail indexes with no lock. Sharing one ring between
 * worker threads therefore takes locks, and how many is a design choice:
 *
 *   sq_lock  one poster at a time: take an SQE, fill it, submit it. Held for
 *            a few instructions and one io_uring_enter() that does not wait.
 *            A worker's posts are submitted in a batch, when it is about to
 *            wait for its next completion: one io_uring_enter() for all the
 *            recvs and sends its handlers posted (posts_deferred).
 *   cq_lock  one completer at a time: the thread holding it sleeps until
 *            the next CQE arrives, copies it out, marks it seen, and lets
 *            go; the other idle workers wait on the mutex behind it. So the
 *            threads take turns at the queue (a "leader/followers" pool), but
 *            they *handle* their completions in parallel.
 *
 * Why two locks and not one: the completer sleeps in the kernel while it
 * holds cq_lock. If that were also the SQ lock, no thread could post a recv
 * or a send until some completion arrived: the port would stall on itself.
 *
 * Why one completer at a time: two threads reading the CQ at once could
 * both take the entry at the head, or advance the head past an entry that
 * neither has read.
 *
 * What IOCP does differently: there the queue lives in the kernel, and
 * GetQueuedCompletionStatus is safe from any thread with no lock of ours.
 * The kernel keeps the waiting threads in a LIFO (the thread that waited
 * last runs first: its stack and cache are warm) and wakes at most
 * `concurrency` of them; when a running worker blocks, it lets another one
 * run. Here the mutex decides who goes next (no LIFO promise), and nothing
 * throttles the workers: concurrency is recorded, and the server simply
 * starts that many threads.
 *
 * Transient refusals (NOTES §7.14): io_uring_enter may fail with EAGAIN
 * ("unable to allocate memory ... wait for some completions and try
 * again") or EBUSY (a CQ overflow not yet flushed). The SQEs then stay in
 * the SQ, nothing is lost, and a later submit sends them. So a post never
 * fails for that: it leaves them there (submit_sq), a thread that posts
 * outside the workers retries after a short sleep (submit_retry), and a
 * worker about to wait keeps reaping completions and retrying every
 * SUBMIT_RETRY_MS (wait_cqe). One line is logged per burst.
 *
 * Two io_uring facts the threads must respect:
 *  - a request's completion work ("task work") runs on the thread that
 *    submitted it, which the kernel interrupts to do so. We set neither
 *    IORING_SETUP_SINGLE_ISSUER nor DEFER_TASKRUN (they promise one
 *    submitting thread) nor COOP_TASKRUN (it lets task work wait until the
 *    thread enters the kernel by itself: a worker asleep on a mutex would
 *    hold up a completion that the leader waits for).
 *  - when a thread exits, io_uring cancels the requests it submitted
 *    (NOTES §7.4). So worker threads live exactly as long as the ring.
 */
#include "cport.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sanitizer/asan_interface.h> /* no-ops unless built with ASan */

#include "clock.h"
#include "err.h"
#include "log.h"

#define SUBMIT_RETRY_MS  1     /* after EAGAIN/EBUSY: try again this soon */
#define SUBMIT_GIVE_UP_MS 5000 /* a non-worker post: then it is not passing */

/* SQEs wait in the SQ from a worker's post until it next waits for a
 * completion (see posts_deferred); when the SQ fills first, claim_sqe
 * submits it. 64 is plenty for one io_uring_enter(). */
#define SQ_ENTRIES 64
#define POOL_ALIGN 16

/* ---- user_data packing: the word that links a CQE to its context.
 *
 *   ...pointer to struct cport_io...  000   an operation (pointers to
 *                                           cport_io are 8-aligned)
 *   ...message...                     001   cport_post_message
 *   0                                 010   cport_cancel_all's own CQE
 */
enum ud_tag { UD_IO = 0, UD_MESSAGE = 1, UD_INTERNAL = 2 };
#define UD_TAG_BITS 3
#define UD_TAG_MASK 7u

_Static_assert(_Alignof(struct cport_io) >= 8,
               "user_data keeps a tag in the low 3 bits of a cport_io *");

static uint64_t ud_from_io(struct cport_io *io)
{
    return (uint64_t)(uintptr_t)io | UD_IO;
}

static uint64_t ud_from_message(unsigned message)
{
    return ((uint64_t)message << UD_TAG_BITS) | UD_MESSAGE;
}

static enum ud_tag ud_tag(uint64_t user_data)
{
    return (enum ud_tag)(user_data & UD_TAG_MASK);
}

static struct cport_io *ud_to_io(uint64_t user_data)
{
    return (struct cport_io *)(uintptr_t)(user_data & ~(uint64_t)UD_TAG_MASK);
}

static unsigned ud_to_message(uint64_t user_data)
{
    return (unsigned)(user_data >> UD_TAG_BITS);
}

/* ---- the port */

int cport_create(struct cport *port, unsigned max_in_flight,
                 unsigned concurrency)
{
    struct io_uring_params params;
    pthread_condattr_t attr;

    memset(port, 0, sizeof(*port));
    memset(&params, 0, sizeof(params));
    /* Size the CQ for every operation that can be in flight, twice over.
     * A full CQ is not fatal on modern kernels (IORING_FEAT_NODROP keeps the
     * overflow in kernel memory), but it is slow and, on older ones, lossy:
     * never needing it is the simple guarantee. CLAMP: past the kernel's
     * largest CQ (65536), take that one, still larger than max_in_flight
     * for any -c the server accepts. */
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = 2 * max_in_flight;
    if (params.cq_entries < 2 * SQ_ENTRIES)
        params.cq_entries = 2 * SQ_ENTRIES; /* the kernel wants CQ >= SQ */
    int rc = io_uring_queue_init_params(SQ_ENTRIES, &port->ring, &params);
    if (rc < 0)
        return rc; /* -EPERM, -ENOSYS: io_uring refused (NOTES §7.12) */
    port->cq_entries = params.cq_entries;
    /* Win32: 0 means one running thread per CPU. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    port->concurrency =
        concurrency > 0 ? concurrency : (unsigned)(cpus > 0 ? cpus : 1);
    atomic_init(&port->in_flight, 0);
    pthread_mutex_init(&port->sq_lock, NULL);
    pthread_mutex_init(&port->cq_lock, NULL);
    pthread_mutex_init(&port->idle_lock, NULL);
    /* cport_wait_idle measures its timeout on the monotonic clock. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&port->idle, &attr);
    pthread_condattr_destroy(&attr);
    return 0;
}

void cport_destroy(struct cport *port)
{
    /* Win32: CloseHandle(port). Requests still in flight would be
     * cancelled by the kernel here; the server has waited for them all. */
    io_uring_queue_exit(&port->ring);
    pthread_mutex_destroy(&port->sq_lock);
    pthread_mutex_destroy(&port->cq_lock);
    pthread_mutex_destroy(&port->idle_lock);
    pthread_cond_destroy(&port->idle);
}

void cport_associate(struct cport *port, struct cport_handle *handle, int fd,
                     void *key)
{
    (void)port; /* nothing to tell the kernel: see struct cport_handle */
    handle->fd = fd;
    handle->key = key;
    handle->generation++;
}

/* ---- posting: sq_lock, an SQE, submit */

/* Returns an SQE with sq_lock held (submit_locked() releases it), or NULL
 * with the lock released. */
static int submit_sq(struct cport *port);

static struct io_uring_sqe *claim_sqe(struct cport *port)
{
    long long give_up = clock_ms() + SUBMIT_GIVE_UP_MS;

    for (;;) {
        pthread_mutex_lock(&port->sq_lock);
        struct io_uring_sqe *sqe = io_uring_get_sqe(&port->ring);
        /* SQ full: workers' deferred posts filled it, or the kernel
         * refused them for a moment. Push them to the kernel, try again. */
        if (sqe == NULL && submit_sq(port) >= 0)
            sqe = io_uring_get_sqe(&port->ring);
        if (sqe != NULL)
            return sqe;
        pthread_mutex_unlock(&port->sq_lock);
        if (clock_ms() >= give_up)
            return NULL;
        clock_pause_ms(SUBMIT_RETRY_MS); /* a signal: try again sooner */
    }
}

/* Batching: a worker's posts wait in the SQ until it is about to wait
 * itself, and then go to the kernel in one io_uring_enter() with whatever
 * else has gathered there (cport_get calls flush_sq). Set by cport_get on
 * the thread it returns a completion to, so only workers defer: main's
 * posts (cancels at shutdown, quit messages) are submitted at once. */
static _Thread_local bool posts_deferred;

/* io_uring_submit with sq_lock held. Returns 0 when the SQ is empty, 1
 * when SQEs still wait in it because the kernel refused them for now
 * (EAGAIN, EBUSY: see the top of this file), or another -errno. */
static int submit_sq(struct cport *port)
{
    int rc;

    do {
        rc = io_uring_submit(&port->ring);
    } while (rc == -EINTR); /* EINTR: a signal; the SQEs are still queued */
    if (rc == -EAGAIN || rc == -EBUSY) {
        if (!atomic_exchange(&port->kernel_busy, true))
            warn_code(-rc, "io_uring_enter: posts wait in the SQ, retrying");
        return 1;
    }
    if (rc < 0)
        return rc;
    if (atomic_exchange(&port->kernel_busy, false))
        log_event("io_uring_enter: submitting again");
    return io_uring_sq_ready(&port->ring) > 0 ? 1 : 0;
}

/* A post from outside the workers (main, at shutdown) whose submit was
 * refused for now: nobody else may submit it soon, so retry here, sleeping
 * SUBMIT_RETRY_MS between tries, without holding sq_lock meanwhile (the
 * workers go on posting and reaping). 0 once submitted, or -errno. */
static int submit_retry(struct cport *port)
{
    long long give_up = clock_ms() + SUBMIT_GIVE_UP_MS;
    int rc = 1;

    while (rc == 1 && clock_ms() < give_up) {
        clock_pause_ms(SUBMIT_RETRY_MS); /* a signal: try again sooner */
        pthread_mutex_lock(&port->sq_lock);
        rc = submit_sq(port);
        pthread_mutex_unlock(&port->sq_lock);
    }
    return rc == 1 ? -EAGAIN : rc;
}

static int submit_locked(struct cport *port, struct io_uring_sqe *sqe,
                         uint64_t user_data)
{
    io_uring_sqe_set_data64(sqe, user_data);
    /* Count it before the kernel can complete it. The release pairs with
     * the acquire in cport_get: TSan cannot see the kernel, so this is
     * what tells it that whatever the poster wrote (the io, the buffer's
     * bookkeeping) happens before the completer reads it. */
    atomic_fetch_add_explicit(&port->in_flight, 1, memory_order_release);
    int rc = posts_deferred ? 0 : submit_sq(port);
    pthread_mutex_unlock(&port->sq_lock);
    return rc == 1 ? submit_retry(port) : rc;
}

/* Hands the SQEs that wait in the SQ to the kernel. Every thread that may
 * sleep in cport_get calls it first: the completion it waits for, or the
 * one the thread ahead of it waits for, may need one of them. Returns as
 * submit_sq: 1 when some are still waiting (the kernel refused them). */
static int flush_sq(struct cport *port)
{
    int rc = 0;

    pthread_mutex_lock(&port->sq_lock);
    if (io_uring_sq_ready(&port->ring) > 0)
        rc = submit_sq(port);
    pthread_mutex_unlock(&port->sq_lock);
    return rc;
}

static int post_io(struct cport *port, struct io_uring_sqe *sqe,
                   struct cport_io *io, enum cport_op op,
                   struct cport_handle *handle)
{
    io->op = op;
    io->handle = handle;
    io->generation = handle != NULL ? handle->generation : 0;
    assert(!io->in_flight); /* an OVERLAPPED is posted once at a time */
    io->in_flight = true;
    return submit_locked(port, sqe, ud_from_io(io));
}

int cport_post_accept(struct cport *port, struct cport_handle *listener,
                      struct cport_io *io, struct cport_handle *accept_handle)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    /* Win32: AcceptEx - the accept waits in the kernel, not in a thread.
     * Linux creates the new socket itself, so there is no accept socket to
     * pass; accept_handle says whose it will be. */
    io->accept_handle = accept_handle;
    io->peer_len = sizeof(io->peer);
    io_uring_prep_accept(sqe, listener->fd, (struct sockaddr *)&io->peer,
                         &io->peer_len, SOCK_CLOEXEC);
    return post_io(port, sqe, io, CPORT_ACCEPT, listener);
}

int cport_post_recv(struct cport *port, struct cport_handle *handle,
                    struct cport_io *io, void *buf, size_t len)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    /* Win32: WSARecv with an OVERLAPPED - the kernel fills buf later. */
    io->buf = buf;
    io->len = len;
    io_uring_prep_recv(sqe, handle->fd, buf, len, 0);
    return post_io(port, sqe, io, CPORT_RECV, handle);
}

int cport_post_send(struct cport *port, struct cport_handle *handle,
                    struct cport_io *io, const void *buf, size_t len)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    /* Win32: WSASend. IORING_OP_SEND, not IORING_OP_WRITE: SEND implies
     * MSG_NOSIGNAL, WRITE on a reset socket raises SIGPIPE (NOTES §7.9). */
    io->buf = (void *)buf;
    io->len = len;
    io_uring_prep_send(sqe, handle->fd, buf, len, MSG_NOSIGNAL);
    return post_io(port, sqe, io, CPORT_SEND, handle);
}

int cport_post_cancel(struct cport *port, struct cport_handle *handle,
                      struct cport_io *io)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    /* Win32: CancelIoEx(socket, NULL). close() alone would cancel nothing:
     * an io_uring request holds its own reference to the file (NOTES §7.3). */
    io_uring_prep_cancel_fd(sqe, handle->fd, IORING_ASYNC_CANCEL_ALL);
    return post_io(port, sqe, io, CPORT_CANCEL, handle);
}

int cport_post_timer(struct cport *port, struct cport_io *io, unsigned millis)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    io->timeout.tv_sec = millis / 1000;
    io->timeout.tv_nsec = (long long)(millis % 1000) * 1000000;
    io_uring_prep_timeout(sqe, &io->timeout, 0, 0);
    return post_io(port, sqe, io, CPORT_TIMER, NULL);
}

int cport_cancel_timer(struct cport *port, struct cport_io *timer)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    /* Win32: CancelWaitableTimer. IORING_OP_TIMEOUT_REMOVE finds the timer
     * by its user_data; if it has fired already, this one gets -ENOENT,
     * which nobody needs to see. */
    io_uring_prep_timeout_remove(sqe, ud_from_io(timer), 0);
    return submit_locked(port, sqe, UD_INTERNAL);
}

int cport_post_message(struct cport *port, unsigned message)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    /* Win32: PostQueuedCompletionStatus. A NOP completes at once; its
     * user_data carries the message to whichever worker takes it. */
    io_uring_prep_nop(sqe);
    return submit_locked(port, sqe, ud_from_message(message));
}

int cport_cancel_all(struct cport *port)
{
    struct io_uring_sqe *sqe = claim_sqe(port);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_cancel64(sqe, 0,
                           IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    return submit_locked(port, sqe, UD_INTERNAL);
}

/* ---- completing: cq_lock, one CQE */

/* Sleeps until the ring has a CQE for us (0), or for timeout_ms (-ETIME).
 * The ring's descriptor polls readable when a CQE is queued, so a plain
 * poll() does the waiting. (io_uring_wait_cqe would wait in io_uring_enter
 * instead; valgrind does not know that call can block, and holds its one
 * big lock through it: every other thread of the process stops.) */
static int wait_cqe(struct cport *port, int timeout_ms,
                    struct io_uring_cqe **cqe)
{
    struct pollfd pfd = {.fd = port->ring.ring_fd, .events = POLLIN};
    long long deadline = timeout_ms < 0 ? -1 : clock_ms() + timeout_ms;

    for (;;) {
        /* peek: no system call when a CQE is there already (it does enter
         * the kernel to flush an overflowed CQ, which ours never is). */
        int rc = io_uring_peek_cqe(&port->ring, cqe);
        if (rc != -EAGAIN)
            return rc;
        int waiting = flush_sq(port); /* about to sleep: posts go first */
        if (waiting < 0)
            return waiting;
        if (io_uring_peek_cqe(&port->ring, cqe) == 0)
            return 0;  /* the submit completed something inline */
        long long left = deadline < 0 ? -1 : deadline - clock_ms();
        if (deadline >= 0 && left <= 0)
            return -ETIME;
        /* Posts refused for now (waiting == 1): sleep only a moment, reap
         * what completes meanwhile, and submit them again. */
        if (waiting == 1 && (left < 0 || left > SUBMIT_RETRY_MS))
            left = SUBMIT_RETRY_MS;
        if (poll(&pfd, 1, (int)left) == -1) {
            if (errno == ENOMEM)
                back_off("poll(ring fd)"); /* short of memory for now */
            else if (errno != EINTR)
                return -errno; /* EINTR: a signal; look again */
        }
    }
}

/* One CQE's user_data and result, taken off the queue under cq_lock. */
static int take_cqe(struct cport *port, int timeout_ms, uint64_t *user_data,
                    int *res)
{
    struct io_uring_cqe *cqe;

    int rc = wait_cqe(port, timeout_ms, &cqe);
    if (rc < 0)
        return rc; /* -ETIME: the time ran out */
    /* No multishot requests here, so every CQE is its request's last
     * (NOTES §7.5: a multishot one would need IORING_CQE_F_MORE checked). */
    assert(!(cqe->flags & IORING_CQE_F_MORE));
    *user_data = io_uring_cqe_get_data64(cqe);
    *res = cqe->res;
    io_uring_cqe_seen(&port->ring, cqe); /* the slot is the kernel's again */
    /* acq_rel: acquire pairs with submit_locked's release (see there). */
    if (atomic_fetch_sub_explicit(&port->in_flight, 1, memory_order_acq_rel) ==
        1) {
        pthread_mutex_lock(&port->idle_lock);
        pthread_cond_broadcast(&port->idle);
        pthread_mutex_unlock(&port->idle_lock);
    }
    return 0;
}

int cport_get(struct cport *port, struct cport_completion *done, int timeout_ms)
{
    uint64_t user_data;
    int res, rc;

    /* Win32: GetQueuedCompletionStatus. The lock is the queue of waiting
     * workers; the one holding it is the one the kernel will wake. A
     * worker that has to queue behind it submits its posts first: the
     * leader may be waiting for exactly one of them, asleep, and would not
     * see them before its timeout. So if the kernel refuses them for now,
     * the follower retries until they are in (submit_retry). */
    if (pthread_mutex_trylock(&port->cq_lock) != 0) {
        if ((rc = flush_sq(port)) == 1)
            rc = submit_retry(port);
        if (rc < 0)
            return rc;
        pthread_mutex_lock(&port->cq_lock);
    }
    do {
        rc = take_cqe(port, timeout_ms, &user_data, &res);
    } while (rc == 0 && ud_tag(user_data) == UD_INTERNAL);
    pthread_mutex_unlock(&port->cq_lock);
    if (rc < 0)
        return rc;
    posts_deferred = true; /* this thread is a worker: batch its posts */

    memset(done, 0, sizeof(*done));
    if (ud_tag(user_data) == UD_MESSAGE) {
        done->message = ud_to_message(user_data);
        return 0;
    }
    struct cport_io *io = ud_to_io(user_data);
    assert(io->in_flight); /* one CQE per post: never two for one io */
    io->in_flight = false;
    done->io = io;
    done->key = io->handle != NULL ? io->handle->key : NULL;
    if (res < 0)
        done->error = -res; /* the kernel's -errno: GetLastError() */
    else if (io->op == CPORT_ACCEPT)
        done->fd = res;
    else
        done->bytes = (size_t)res;
    return 0;
}

int cport_wait_idle(struct cport *port, int timeout_ms)
{
    struct timespec deadline;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&port->idle_lock);
    while (atomic_load(&port->in_flight) > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&port->idle, &port->idle_lock, &deadline);
    bool idle = atomic_load(&port->in_flight) == 0;
    pthread_mutex_unlock(&port->idle_lock);
    return idle ? 0 : -ETIMEDOUT;
}

/* ---- the pool (the notes' free-index stack) */

int cport_pool_init(struct cport_pool *pool, unsigned capacity,
                    size_t item_size)
{
    memset(pool, 0, sizeof(*pool));
    pthread_mutex_init(&pool->lock, NULL);
    pool->item_size = (item_size + POOL_ALIGN - 1) / POOL_ALIGN * POOL_ALIGN;
    pool->capacity = capacity;
    pool->items = calloc(capacity, pool->item_size);
    pool->free_index = calloc(capacity, sizeof(*pool->free_index));
    pool->busy = calloc(capacity, sizeof(*pool->busy));
    if (pool->items == NULL || pool->free_index == NULL || pool->busy == NULL) {
        cport_pool_destroy(pool, NULL);
        errno = ENOMEM;
        return -1;
    }
    /* All free; item 0 on top of the stack, so it is handed out first. */
    for (unsigned i = 0; i < capacity; i++)
        pool->free_index[i] = capacity - 1 - i;
    pool->free_count = capacity;
    return 0;
}

void *cport_pool_item(struct cport_pool *pool, unsigned index)
{
    assert(index < pool->capacity);
    return pool->items + (size_t)index * pool->item_size;
}

unsigned cport_pool_index(const struct cport_pool *pool, const void *item)
{
    size_t offset = (size_t)((const char *)item - pool->items);
    assert(offset % pool->item_size == 0);
    assert(offset / pool->item_size < pool->capacity);
    return (unsigned)(offset / pool->item_size);
}

void *cport_pool_get(struct cport_pool *pool)
{
    void *item = NULL;

    pthread_mutex_lock(&pool->lock);
    if (pool->free_count > 0) {
        unsigned i = pool->free_index[--pool->free_count];
        assert(!pool->busy[i]);
        pool->busy[i] = true;
        item = cport_pool_item(pool, i);
        ASAN_UNPOISON_MEMORY_REGION(item, pool->item_size);
    }
    pthread_mutex_unlock(&pool->lock);
    return item;
}

void cport_pool_put(struct cport_pool *pool, void *item)
{
    unsigned i = cport_pool_index(pool, item);

    pthread_mutex_lock(&pool->lock);
    if (!pool->busy[i]) {
        /* The notes' bug: two threads each decided they were the last to
         * use this context. A reference count makes it impossible. */
        warn("cport_pool_put: item %u returned twice (double return)", i);
        abort();
    }
    pool->busy[i] = false;
    /* Under ASan, touching a returned item is now an error report: the
     * kernel's writes stay invisible to ASan (NOTES §7.11), ours do not. */
    ASAN_POISON_MEMORY_REGION(item, pool->item_size);
    pool->free_index[pool->free_count++] = i;
    pthread_mutex_unlock(&pool->lock);
}

void cport_pool_for_each_busy(struct cport_pool *pool, void (*fn)(void *item))
{
    pthread_mutex_lock(&pool->lock);
    for (unsigned i = 0; i < pool->capacity; i++)
        if (pool->busy[i])
            fn(cport_pool_item(pool, i));
    pthread_mutex_unlock(&pool->lock);
}

unsigned cport_pool_destroy(struct cport_pool *pool,
                            void (*cleanup)(void *item))
{
    unsigned busy = 0;

    if (pool->items != NULL && pool->busy != NULL) {
        ASAN_UNPOISON_MEMORY_REGION(pool->items,
                                    pool->capacity * pool->item_size);
        for (unsigned i = 0; i < pool->capacity; i++) {
            busy += pool->busy[i];
            if (cleanup != NULL)
                cleanup(cport_pool_item(pool, i));
        }
    }
    pthread_mutex_destroy(&pool->lock);
    free(pool->items);
    free(pool->free_index);
    free(pool->busy);
    memset(pool, 0, sizeof(*pool));
    return busy;
}
