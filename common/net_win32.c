/* net_win32.c - net.h in Winsock, for the Win32 twins (NN-model/win32.c).
 *
 * The same functions as net.c, line for line where Winsock allows; where it
 * differs, the comment says how. Failure is INVALID_SOCKET (or -1) with the
 * reason in WSAGetLastError(), never in errno. The caller has run
 * WSAStartup() (the twins do it in main, as the notes do).
 */
#include "net.h"

#include <stdio.h>
#include <string.h>

#include "addr.h"

bool net_is_numeric_host(const char *text)
{
    unsigned char addr[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, text, addr) == 1 ||
           inet_pton(AF_INET6, text, addr) == 1;
}

sock_t net_socket(const char *host, int port, bool passive, int flags,
                  struct sockaddr_storage *addr, socklen_t *addr_len)
{
    struct addrinfo hints, *ai = NULL;
    char service[16];

    if (flags != 0) {  /* no SOCK_NONBLOCK/SOCK_CLOEXEC in Winsock */
        WSASetLastError(WSAEINVAL);
        return INVALID_SOCKET;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (passive)
        hints.ai_flags |= AI_PASSIVE;
    snprintf(service, sizeof(service), "%d", port);
    /* Winsock's getaddrinfo returns a WSA error code (EAI_NONAME is
     * WSAHOST_NOT_FOUND): no mapping needed, only passing it on. */
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        WSASetLastError(rc);
        return INVALID_SOCKET;
    }
    /* socket() makes an overlapped-capable socket: WSARecv/WSASend with an
     * OVERLAPPED and the completion port work on it (WSASocket with
     * WSA_FLAG_OVERLAPPED says the same thing out loud). */
    SOCKET s = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    int saved = WSAGetLastError();
    if (s != INVALID_SOCKET) {
        memcpy(addr, ai->ai_addr, ai->ai_addrlen);
        *addr_len = (socklen_t)ai->ai_addrlen;
    }
    freeaddrinfo(ai);
    WSASetLastError(saved);
    return s;
}

/* A failed set-up step: close the socket but keep the step's error. */
static sock_t close_keeping_error(SOCKET s)
{
    int saved = WSAGetLastError();

    closesocket(s);
    WSASetLastError(saved);
    return INVALID_SOCKET;
}

sock_t net_listen(const char *host, int port, int flags)
{
    struct sockaddr_storage ss;
    socklen_t len;
    BOOL one = TRUE;
    SOCKET s = net_socket(host, port, true, flags, &ss, &len);

    if (s == INVALID_SOCKET)
        return INVALID_SOCKET;
    /* Not SO_REUSEADDR: on Windows it lets a second program bind the same
     * port and steal its connections. SO_EXCLUSIVEADDRUSE is the Windows
     * server's choice: nobody else may bind this port while we hold it. */
    if (setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one,
                   sizeof(one)) == SOCKET_ERROR ||
        bind(s, (struct sockaddr *)&ss, len) == SOCKET_ERROR ||
        listen(s, NET_BACKLOG) == SOCKET_ERROR)
        return close_keeping_error(s);
    return s;
}

int net_announce(sock_t listen_fd)
{
    char where[ADDR_TEXT_MAX];

    if (addr_local(listen_fd, where, sizeof(where)) == -1)
        return -1;
    /* The one line on stdout; tests read the port from it, so flush now. */
    if (printf("listening on %s\n", where) < 0 || fflush(stdout) == EOF)
        return -1;
    return 0;
}

sock_t net_accept(sock_t listen_fd, int flags, char *peer, size_t peer_len)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (flags != 0) {
        WSASetLastError(WSAEINVAL);
        return INVALID_SOCKET;
    }
    /* Unlike accept4, the new socket inherits the listener's properties:
     * nonblocking mode, and the WSAEventSelect/WSAAsyncSelect events
     * (a twin that selects on the listener re-selects the new socket). */
    SOCKET s = accept(listen_fd, (struct sockaddr *)&ss, &len);
    if (s == INVALID_SOCKET)
        return INVALID_SOCKET;
    if (peer != NULL && addr_format((struct sockaddr *)&ss, len, peer,
                                    peer_len) == -1)
        snprintf(peer, peer_len, "?");
    return s;
}

bool net_accept_exhausted(int err)
{
    /* Winsock's EMFILE (no socket handles left) and ENOBUFS (no buffer
     * space: the usual way Windows says "out of memory" here); and the
     * Win32 codes an AcceptEx completion reports for the same thing (Wine
     * fails one whose socket it cannot make with ERROR_TOO_MANY_OPEN_FILES,
     * measured for 07's twin). */
    return err == WSAEMFILE || err == WSAENOBUFS ||
           err == ERROR_TOO_MANY_OPEN_FILES ||
           err == ERROR_NO_SYSTEM_RESOURCES || err == ERROR_NOT_ENOUGH_MEMORY;
}

bool net_accept_transient(int err)
{
    /* accept() on Windows reports a connection that was reset before it
     * was taken: that one client is gone, the next may be fine. */
    return err == WSAECONNRESET || err == WSAECONNABORTED ||
           err == WSAENETDOWN || err == WSAEHOSTUNREACH ||
           err == WSAENETUNREACH;
}

int net_set_nonblock(sock_t fd, bool on)
{
    u_long mode = on;  /* like fcntl(O_NONBLOCK) */

    return ioctlsocket(fd, FIONBIO, &mode) == SOCKET_ERROR ? -1 : 0;
}

int net_set_nodelay(sock_t fd, bool on)
{
    BOOL value = on;

    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&value,
                      sizeof(value)) == SOCKET_ERROR ? -1 : 0;
}

int net_set_oobinline(sock_t fd)
{
    BOOL one = TRUE;

    return setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, (const char *)&one,
                      sizeof(one)) == SOCKET_ERROR ? -1 : 0;
}

int net_set_timeouts(sock_t fd, int millis)
{
    DWORD value = (DWORD)millis;  /* Winsock: a DWORD of milliseconds,
                                     not a struct timeval */

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, (const char *)&value,
                   sizeof(value)) == SOCKET_ERROR)
        return -1;
    return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, (const char *)&value,
                      sizeof(value)) == SOCKET_ERROR ? -1 : 0;
}
