/* err.h - error reporting, one function per error convention (as in TLPI).
 *
 * Messages read "[tag] what: ENAME: description", e.g.
 *     [epoll] epoll_ctl(ADD, fd=7): EBADF: Bad file descriptor
 *
 *   die(fmt, ...)            errno-style failure; exits 1.
 *   die_code(err, fmt, ...)  a call that returns its error code (pthread_*,
 *                            aio_error, liburing's -errno); exits 1.
 *   warn_errno(fmt, ...)     like die() but carries on (one client failed).
 *   warn_code(err, fmt, ...) like die_code() but carries on.
 *   warn(fmt, ...)           a plain warning, no errno.
 *   back_off(fmt, ...)       a passing failure, not a bug: the kernel or
 *                            the C library is short of memory or threads
 *                            for now (select's ENOMEM, aio_read's EAGAIN).
 *                            Warns, at most one line a second however
 *                            often it is called, then sleeps BACK_OFF_MS,
 *                            so the caller's retry neither spins nor
 *                            floods the log. The caller then tries again.
 *
 * die() is a real function, so "break die" in gdb stops on every fatal path.
 */
#ifndef COMMON_ERR_H
#define COMMON_ERR_H

void die(const char *fmt, ...)
    __attribute__((format(gnu_printf, 1, 2), noreturn));
void die_code(int err, const char *fmt, ...)
    __attribute__((format(gnu_printf, 2, 3), noreturn));
void warn_errno(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));
void warn_code(int err, const char *fmt, ...)
    __attribute__((format(gnu_printf, 2, 3)));
void warn(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));
void back_off(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));

enum {
    BACK_OFF_MS = 10,        /* back_off's sleep before the retry */
    BACK_OFF_WARN_MS = 1000, /* at most one back_off line this often */
};

/* The platform half (err_text.c; err_text_win32.c for the twins). */
/* "EAGAIN: Resource temporarily unavailable" into out; returns out.
 * Win32: "WSAECONNRESET: Connection reset by peer". */
const char *err_describe(int err, char *out, unsigned long len);
/* The calling thread's last error: errno; Win32: GetLastError(). */
int err_last(void);
void err_set_last(int err);

#endif
