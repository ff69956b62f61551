/* err.c - die/warn, one function per error convention (see err.h). */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

const char *err_describe(int err, char *out, unsigned long len)
{
    const char *name = strerrorname_np(err);  /* "EAGAIN", glibc >= 2.32 */
    char text[128];

    snprintf(out, len, "%s: %s", name != NULL ? name : "E?",
             strerror_r(err, text, sizeof(text)));
    return out;
}

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
    int err = errno;
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
    int err = errno;
    va_list ap;

    va_start(ap, fmt);
    write_with_code(err, fmt, ap);
    va_end(ap);
    errno = err;
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
