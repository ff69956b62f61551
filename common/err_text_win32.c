/* err_text_win32.c - the platform half of err.h for the Win32 twins.
 *
 * Windows' error convention: a failed call leaves its reason in
 * GetLastError() (WSAGetLastError() for Winsock, the same per-thread
 * value), not in errno, so that is what die() and warn_errno() report.
 * die_code() takes a code a call returned (WSAStartup) or reported
 * (GetQueuedCompletionStatus's error for one I/O). Messages read as on
 * Linux, name first:
 *     [select] bind: WSAEADDRINUSE: Address already in use
 */
#include "err.h"

#include <stdio.h>
#include <string.h>
#include <winsock2.h>  /* before windows.h: the WSA codes */
#include <windows.h>


/* The codes a server meets, by name (FormatMessage gives no names) and
 * with a short text for when FormatMessage has none: Wine's has none for
 * most WSA codes. */
static const struct {
    int code;
    const char *name;
    const char *text;
} names[] = {
    {WSAEINTR, "WSAEINTR", "Interrupted function call"},
    {WSAEBADF, "WSAEBADF", "File handle is not valid"},
    {WSAEACCES, "WSAEACCES", "Permission denied"},
    {WSAEFAULT, "WSAEFAULT", "Bad address"},
    {WSAEINVAL, "WSAEINVAL", "Invalid argument"},
    {WSAEMFILE, "WSAEMFILE", "Too many open sockets"},
    {WSAEWOULDBLOCK, "WSAEWOULDBLOCK", "Resource temporarily unavailable"},
    {WSAEINPROGRESS, "WSAEINPROGRESS", "Operation now in progress"},
    {WSAEALREADY, "WSAEALREADY", "Operation already in progress"},
    {WSAENOTSOCK, "WSAENOTSOCK", "Socket operation on nonsocket"},
    {WSAEMSGSIZE, "WSAEMSGSIZE", "Message too long"},
    {WSAEAFNOSUPPORT, "WSAEAFNOSUPPORT",
     "Address family not supported by protocol family"},
    {WSAEADDRINUSE, "WSAEADDRINUSE", "Address already in use"},
    {WSAEADDRNOTAVAIL, "WSAEADDRNOTAVAIL", "Cannot assign requested address"},
    {WSAENETDOWN, "WSAENETDOWN", "Network is down"},
    {WSAENETUNREACH, "WSAENETUNREACH", "Network is unreachable"},
    {WSAENETRESET, "WSAENETRESET", "Network dropped connection on reset"},
    {WSAECONNABORTED, "WSAECONNABORTED", "Software caused connection abort"},
    {WSAECONNRESET, "WSAECONNRESET", "Connection reset by peer"},
    {WSAENOBUFS, "WSAENOBUFS", "No buffer space available"},
    {WSAEISCONN, "WSAEISCONN", "Socket is already connected"},
    {WSAENOTCONN, "WSAENOTCONN", "Socket is not connected"},
    {WSAESHUTDOWN, "WSAESHUTDOWN", "Cannot send after socket shutdown"},
    {WSAETIMEDOUT, "WSAETIMEDOUT", "Connection timed out"},
    {WSAECONNREFUSED, "WSAECONNREFUSED", "Connection refused"},
    {WSAEHOSTUNREACH, "WSAEHOSTUNREACH", "No route to host"},
    {WSASYSNOTREADY, "WSASYSNOTREADY", "Network subsystem is unavailable"},
    {WSAVERNOTSUPPORTED, "WSAVERNOTSUPPORTED", "Winsock version out of range"},
    {WSANOTINITIALISED, "WSANOTINITIALISED", "WSAStartup has not been called"},
    {WSAHOST_NOT_FOUND, "WSAHOST_NOT_FOUND", "Host not found"},
    {WSA_IO_PENDING, "WSA_IO_PENDING",
     "Overlapped operations will complete later"},
    {WSA_IO_INCOMPLETE, "WSA_IO_INCOMPLETE",
     "Overlapped I/O event object not in signaled state"},
    {WSA_OPERATION_ABORTED, "WSA_OPERATION_ABORTED",
     "The I/O operation has been aborted"},
    {ERROR_TOO_MANY_OPEN_FILES, "ERROR_TOO_MANY_OPEN_FILES",
     "The system cannot open the file"},
    {ERROR_NO_SYSTEM_RESOURCES, "ERROR_NO_SYSTEM_RESOURCES",
     "Insufficient system resources exist to complete the requested service"},
    {ERROR_ACCESS_DENIED, "ERROR_ACCESS_DENIED", "Access is denied"},
    {ERROR_INVALID_HANDLE, "ERROR_INVALID_HANDLE", "The handle is invalid"},
    {ERROR_NOT_ENOUGH_MEMORY, "ERROR_NOT_ENOUGH_MEMORY", "Not enough memory"},
    {ERROR_NETNAME_DELETED, "ERROR_NETNAME_DELETED",
     "The specified network name is no longer available"},
    {ERROR_INVALID_PARAMETER, "ERROR_INVALID_PARAMETER",
     "The parameter is incorrect"},
    {WAIT_TIMEOUT, "WAIT_TIMEOUT", "The wait operation timed out"},
    {ERROR_ABANDONED_WAIT_0, "ERROR_ABANDONED_WAIT_0",
     "The I/O completion port was closed"},
    {ERROR_NOT_FOUND, "ERROR_NOT_FOUND", "Element not found"},
    {ERROR_CONNECTION_ABORTED, "ERROR_CONNECTION_ABORTED",
     "The connection was aborted by the local system"},
    {ERROR_INVALID_WINDOW_HANDLE, "ERROR_INVALID_WINDOW_HANDLE",
     "Invalid window handle"},
};

const char *err_describe(int err, char *out, unsigned long len)
{
    char text[256], number[24];
    const char *name = NULL, *fallback = "(no description)";

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].code == err) {
            name = names[i].name;
            fallback = names[i].text;
        }
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
    snprintf(out, len, "%s: %s", name, n > 0 ? text : fallback);
    return out;
}

int err_last(void) { return (int)GetLastError(); }

void err_set_last(int err) { SetLastError((DWORD)err); }
