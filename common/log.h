/* log.h - tagged, levelled logging to stderr.
 *
 * Every line a server writes to stderr starts with its model's tag:
 *     [select] accept fd=7 peer=127.0.0.1:53412 clients=3
 * stdout is kept for the single "listening on ..." line (see net.h).
 *
 * Each line is formatted into a local buffer and written with one write(2),
 * so lines from several threads never interleave mid-line.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>

enum log_level {
    LOG_QUIET = 0,   /* default: errors, warnings and the shutdown summary */
    LOG_EVENTS = 1,  /* -v: accept, close, backpressure, shutdown steps */
    LOG_TRACE = 2,   /* -vv: every readiness event or completion, with bytes */
};

/* The format attributes say gnu_printf, not printf: on Linux the two are
 * one, but for mingw-w64 (the Win32 twins) "printf" means the Microsoft
 * runtime's, which knows no %zu or %lld. The twins are built with
 * __USE_MINGW_ANSI_STDIO=1, so their printf family is the C99 one. */

/* Set once in main(), before any thread starts; read-only afterwards. */
void log_init(const char *tag, int verbosity);
const char *log_tag(void);
int log_enabled(enum log_level level);

/* Always printed. */
void log_info(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));
/* Printed with -v or more. */
void log_event(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));
/* Printed with -vv. */
void log_trace(const char *fmt, ...) __attribute__((format(gnu_printf, 1, 2)));

/* The one writer the others share: "[tag] " + message + suffix + "\n". */
void log_vwrite(const char *suffix, const char *fmt, va_list ap);

#endif
