/* err.c - die/warn, one function per error convention (see err.h). Plain
 * C, shared by the Linux servers and the Win32 twins: where the last error
 * is kept and how it reads are err_text.c's (Linux) or err_text_win32.c's. */
#include "err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"

/* clock_ms() of back_off's last line; shared by every thread (06, 07). */
static _Atomic long long back_off_warned_at;

/* ": ENAME: description" for err, or "" for err == 0. */
static void write_with_code(int err, const char *fmt, va_list ap)
{
    char described[160], suffix[168];

    if (err == 0) {
        log_vwrite(NULL, fmt, ap);
        return;
    }
    snprintf(suffix, sizeof(suffix), ": %s",
             err_describe(err, described, sizeof(described)));
    log_vwrite(suffix, fmt, ap);
}

void die(const char *fmt, ...)
{
    int err = err_last();
    va_list ap;

    va_start(ap, fmt);
    write_with_code(err, fmt, ap);
    va_end(ap);
    exit(EXIT_FAILURE);
}

void die_code(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_with_code(err, fmt, ap);
    va_end(ap);
    exit(EXIT_FAILURE);
}

void warn_errno(const char *fmt, ...)
{
    int err = err_last();
    va_list ap;

    va_start(ap, fmt);
    write_with_code(err, fmt, ap);
    va_end(ap);
    err_set_last(err);
}

void warn_code(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_with_code(err, fmt, ap);
    va_end(ap);
}

void warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(NULL, fmt, ap);
    va_end(ap);
}

void back_off(const char *fmt, ...)
{
    int err = err_last();
    long long now = clock_ms();
    long long last = atomic_load(&back_off_warned_at);

    /* One thread wins the exchange and writes the line; the others, and
     * every call within the next second, only sleep. */
    if (now - last >= BACK_OFF_WARN_MS &&
        atomic_compare_exchange_strong(&back_off_warned_at, &last, now)) {
        char described[160], suffix[200];
        va_list ap;

        snprintf(suffix, sizeof(suffix), ": %s (retrying every %d ms)",
                 err_describe(err, described, sizeof(described)), BACK_OFF_MS);
        va_start(ap, fmt);
        log_vwrite(suffix, fmt, ap);
        va_end(ap);
    }
    clock_pause_ms(BACK_OFF_MS);
    err_set_last(err);
}
