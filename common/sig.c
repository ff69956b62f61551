/* sig.c - shutdown-signal plumbing (see sig.h). */
#include "sig.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The only mutable globals in common/: what a signal handler needs.
 * stop_flag is a lock-free atomic rather than a volatile sig_atomic_t: the
 * handler may run on any thread that does not block the signal (06's
 * callback threads block none), and volatile orders nothing between
 * threads. A lock-free atomic is safe in a handler too (C11 7.14.1.1). */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "stop_flag must be lock-free");
static atomic_int stop_flag;
static volatile sig_atomic_t wake_fd = -1;
static volatile sig_atomic_t shutdown_fds[SIG_SHUTDOWN_SLOTS] = {-1, -1};

const char sig_stop_words[] = "SIGINT/SIGTERM";

static void on_stop_signal(int signo)
{
    (void)signo;
    int saved_errno = errno;  /* write() below must not disturb errno */
    atomic_store(&stop_flag, 1);
    if (wake_fd != -1) {
        uint64_t one = 1;  /* an eventfd wants 8 bytes; a pipe takes them */
        ssize_t ignored = write(wake_fd, &one, sizeof(one));
        (void)ignored;  /* full pipe or counter: a wake-up is pending anyway */
    }
    for (int i = 0; i < SIG_SHUTDOWN_SLOTS; i++)
        if (shutdown_fds[i] != -1)
            shutdown(shutdown_fds[i], SHUT_RDWR);  /* wakes accept()/recv() */
    errno = saved_errno;
}

int sig_ignore_pipe(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGPIPE, &sa, NULL);
}

int sig_catch_stop(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  /* no SA_RESTART: blocking calls return EINTR */
    if (sigaction(SIGINT, &sa, NULL) == -1)
        return -1;
    return sigaction(SIGTERM, &sa, NULL);
}

void sig_set_wake_fd(int fd) { wake_fd = fd; }

void sig_shutdown_on_stop(int slot, int fd)
{
    if (slot >= 0 && slot < SIG_SHUTDOWN_SLOTS)
        shutdown_fds[slot] = fd;
}

bool sig_stop_requested(void) { return atomic_load(&stop_flag) != 0; }

void sig_request_stop(void) { atomic_store(&stop_flag, 1); }

void sig_stop_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

int sig_block_stop(sigset_t *old)
{
    sigset_t set;

    sig_stop_set(&set);
    return pthread_sigmask(SIG_BLOCK, &set, old);
}
