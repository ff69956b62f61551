/* sig.h - shutdown-signal plumbing (SIGINT/SIGTERM) and SIGPIPE.
 *
 * Win32: SetConsoleCtrlHandler in the notes; here sigaction(2).
 *
 * A model picks the delivery that fits its loop:
 *   - a handler that only sets a flag, installed without SA_RESTART so that
 *     blocking calls return EINTR (sig_catch_stop + sig_stop_requested);
 *   - optionally also a write to a wake-up fd (pipe or eventfd) that the
 *     handler pokes, for loops that wait on descriptors (sig_set_wake_fd);
 *   - or the signals blocked and read as data: signalfd, sigwaitinfo
 *     (sig_stop_set + sig_block_stop).
 *
 * sig_win32.c, for the Win32 twins: Ctrl-C, Ctrl-Break and closing the
 * console reach a handler set with SetConsoleCtrlHandler (Wine turns SIGINT
 * into Ctrl-C; its SIGTERM kills the process without a handler). Windows
 * runs that handler on a thread of its own, not inside a signal, so it may
 * call anything: sig_on_stop() names what it calls to wake the server
 * (WSASetEvent, closesocket, PostMessage, PostQueuedCompletionStatus).
 */
#ifndef COMMON_SIG_H
#define COMMON_SIG_H

#include <stdbool.h>
#ifndef _WIN32
#include <signal.h>
#endif

/* SIG_IGN for SIGPIPE: a send to a reset peer returns EPIPE instead of
 * killing the process (send with MSG_NOSIGNAL does the same per call).
 * Win32 has no SIGPIPE: there it does nothing and returns 0. */
int sig_ignore_pipe(void);

/* Installs the flag-setting handler for SIGINT and SIGTERM, without
 * SA_RESTART. Returns 0 or -1 with errno. (Win32: the console control
 * handler; -1 with the reason in GetLastError().) */
int sig_catch_stop(void);

/* What stops a server, for --help: "SIGINT/SIGTERM" here; for a twin,
 * "Ctrl-C (SIGINT under Wine)". */
extern const char sig_stop_words[];

/* Has SIGINT or SIGTERM arrived? (async-signal-safe read of the flag) */
bool sig_stop_requested(void);

/* Marks a stop as requested, as if the signal had come (loops that read
 * signals as data, e.g. signalfd, record it here). */
void sig_request_stop(void);

#ifdef _WIN32
/* Win32: after the flag is set, the handler calls wake(arg) on its own
 * thread. Set before sig_catch_stop(). */
void sig_on_stop(void (*wake)(void *arg), void *arg);
#else
/* Also write 8 bytes (an eventfd count of 1) to fd from the handler;
 * -1 turns it off. Set before sig_catch_stop(). */
void sig_set_wake_fd(int fd);

/* Also shutdown(fd, SHUT_RDWR) from the handler, for up to
 * SIG_SHUTDOWN_SLOTS descriptors (slot 0, 1; fd -1 clears a slot). This is
 * how a blocking server wakes a thread blocked in accept() or recv():
 * close() would not wake it (close(2)), shutdown() does, and shutdown() is
 * async-signal-safe. A signal that lands just before the blocking call is
 * not lost either: the call then fails at once. */
#define SIG_SHUTDOWN_SLOTS 2
void sig_shutdown_on_stop(int slot, int fd);

/* Fills set with SIGINT and SIGTERM. */
void sig_stop_set(sigset_t *set);

/* Blocks SIGINT and SIGTERM in the calling thread (threads created later
 * inherit the mask); old (may be NULL) receives the previous mask.
 * Returns 0 or an error code (pthread_sigmask convention). */
int sig_block_stop(sigset_t *old);
#endif

#endif
