/* err_win32.c - err.h for the Win32 twins.
 *
 * The same functions, in Windows' error convention: a failed call leaves
 * its reason in GetLastError() (WSAGetLastError() for Winsock, the same
 * per-thread value), not in errno, so die() and warn_errno() read that.
 * die_code() takes a code a call returned (WSAStartup) or reported
 * (GetQueuedCompletionStatus's error for one I/O). Messages read as on
 * Linux, name first:
 *     [select] bind: WSAEADDRINUSE: Only one usage of each socket address ...
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h>  /* before windows.h: the WSA codes */
#include <windows.h>

#include "log.h"

/* The names FormatMessage does not give: the codes a server meets. */
static const struct {
    int code;
    const char *name;
} names[] = {
    {WSAEINTR, "WSAEINTR"},
    {WSAEBADF, "WSAEBADF"},
    {WSAEACCES, "WSAEACCES"},
    {WSAEFAULT, "WSAEFAULT"},
    {WSAEINVAL, "WSAEINVAL"},
    {WSAEMFILE, "WSAEMFILE"},
    {WSAEWOULDBLOCK, "WSAEWOULDBLOCK"},
    {WSAEINPROGRESS, "WSAEINPROGRESS"},
    {WSAEALREADY, "WSAEALREADY"},
    {WSAENOTSOCK, "WSAENOTSOCK"},
    {WSAEMSGSIZE, "WSAEMSGSIZE"},
    {WSAEAFNOSUPPORT, "WSAEAFNOSUPPORT"},
    {WSAEADDRINUSE, "WSAEADDRINUSE"},
    {WSAEADDRNOTAVAIL, "WSAEADDRNOTAVAIL"},
    {WSAENETDOWN, "WSAENETDOWN"},
    {WSAENETUNREACH, "WSAENETUNREACH"},
    {WSAENETRESET, "WSAENETRESET"},
    {WSAECONNABORTED, "WSAECONNABORTED"},
    {WSAECONNRESET, "WSAECONNRESET"},
    {WSAENOBUFS, "WSAENOBUFS"},
    {WSAEISCONN, "WSAEISCONN"},
    {WSAENOTCONN, "WSAENOTCONN"},
    {WSAESHUTDOWN, "WSAESHUTDOWN"},
    {WSAETIMEDOUT, "WSAETIMEDOUT"},
    {WSAECONNREFUSED, "WSAECONNREFUSED"},
    {WSAEHOSTUNREACH, "WSAEHOSTUNREACH"},
    {WSASYSNOTREADY, "WSASYSNOTREADY"},
    {WSAVERNOTSUPPORTED, "WSAVERNOTSUPPORTED"},
    {WSANOTINITIALISED, "WSANOTINITIALISED"},
    {WSAHOST_NOT_FOUND, "WSAHOST_NOT_FOUND"},
    {WSA_IO_PENDING, "WSA_IO_PENDING"},
    {WSA_IO_INCOMPLETE, "WSA_IO_INCOMPLETE"},
    {WSA_OPERATION_ABORTED, "WSA_OPERATION_ABORTED"},
    {ERROR_ACCESS_DENIED, "ERROR_ACCESS_DENIED"},
    {ERROR_INVALID_HANDLE, "ERROR_INVALID_HANDLE"},
    {ERROR_NOT_ENOUGH_MEMORY, "ERROR_NOT_ENOUGH_MEMORY"},
    {ERROR_NETNAME_DELETED, "ERROR_NETNAME_DELETED"},
    {ERROR_INVALID_PARAMETER, "ERROR_INVALID_PARAMETER"},
    {WAIT_TIMEOUT, "WAIT_TIMEOUT"},
    {ERROR_ABANDONED_WAIT_0, "ERROR_ABANDONED_WAIT_0"},
    {ERROR_NOT_FOUND, "ERROR_NOT_FOUND"},
    {ERROR_CONNECTION_ABORTED, "ERROR_CONNECTION_ABORTED"},
    {ERROR_INVALID_WINDOW_HANDLE, "ERROR_INVALID_WINDOW_HANDLE"},
};

const char *err_describe(int err, char *out, unsigned long len)
{
    char text[256], number[24];
    const char *name = NULL;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].code == err)
            name = names[i].name;
    if (name == NULL) {
        snprintf(number, sizeof(number), "error %d", err);
        name = number;
    }
    /* The system's own sentence for the code, as strerror() gives one. */
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
                                 FORMAT_MESSAGE_IGNORE_INSERTS,
                             NULL, (DWORD)err, 0, text, sizeof(text), NULL);
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n' ||
                     text[n - 1] == ' ' || text[n - 1] == '.'))
        n--;  /* it ends in ".\r\n"; our lines end with the text */
    text[n] = '\0';
    snprintf(out, len, "%s: %s", name, n > 0 ? text : "(no description)");
    return out;
}

/* ": NAME: description" for err, or "" for err == 0. */
static void write_with_code(int err, const char *fmt, va_list ap)
{
    char described[300], suffix[308];

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
    int err = (int)GetLastError();
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
    int err = (int)GetLastError();
    va_list ap;

    va_start(ap, fmt);
    write_with_code(err, fmt, ap);
    va_end(ap);
    SetLastError((DWORD)err);
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
