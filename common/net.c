/* net.c - TCP sockets for servers and the test client (see net.h). */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "clock.h"

bool net_is_numeric_host(const char *text)
{
    unsigned char addr[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, text, addr) == 1 ||
           inet_pton(AF_INET6, text, addr) == 1;
}

/* The one place that resolves: net_listen, net_connect and the test client
 * all come here, so "numeric hosts only" and the getaddrinfo error mapping
 * cannot drift apart. The address is copied out before freeaddrinfo(), so
 * callers have nothing to free: on a later failure they only close the fd. */
sock_t net_socket(const char *host, int port, bool passive, int flags,
                  struct sockaddr_storage *addr, socklen_t *addr_len)
{
    struct addrinfo hints, *ai = NULL;
    char service[16];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (passive)
        hints.ai_flags |= AI_PASSIVE;
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        /* EAI_* codes are not errno values: map them, library style. */
        if (rc != EAI_SYSTEM)
            errno = rc == EAI_MEMORY ? ENOMEM : EINVAL;
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | flags, ai->ai_protocol);
    int saved = errno;
    if (fd != -1) {
        memcpy(addr, ai->ai_addr, ai->ai_addrlen);
        *addr_len = ai->ai_addrlen;
    }
    freeaddrinfo(ai);
    errno = saved;
    return fd;
}

/* A failed set-up step: close the socket but keep the step's errno. */
static int close_keeping_errno(int fd)
{
    int saved = errno;

    close(fd);
    errno = saved;
    return -1;
}

sock_t net_listen(const char *host, int port, int flags)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;
    int fd = net_socket(host, port, true, flags, &ss, &len);

    if (fd == -1)
        return -1;
    /* SO_REUSEADDR: restart the server at once, even while connections of
     * the previous run sit in TIME_WAIT (Winsock's SO_REUSEADDR differs: it
     * lets two live sockets share a port, which Linux refuses). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(fd, (struct sockaddr *)&ss, len) == -1 ||
        listen(fd, NET_BACKLOG) == -1)
        return close_keeping_errno(fd);
    return fd;
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

sock_t net_accept(sock_t listen_fd, int flags, char *peer,
                  size_t peer_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, flags);

    if (fd == -1)
        return -1;
    if (peer != NULL && addr_format((struct sockaddr *)&ss, len, peer,
                                    peer_len) == -1)
        snprintf(peer, peer_len, "?");
    return fd;
}

bool net_accept_exhausted(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

bool net_accept_transient(int err)
{
    /* accept(2): "Linux accept() passes already-pending network errors on
     * the new socket as an error code from accept()" - retry on these. */
    switch (err) {
    case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT:
    case EHOSTDOWN: case ENONET: case EHOSTUNREACH: case EOPNOTSUPP:
    case ENETUNREACH: case EPERM:
        return true;
    default:
        return false;
    }
}

int net_connect_finish(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    long long deadline = clock_ms() + timeout_ms;
    int err = 0;
    socklen_t len = sizeof(err);

    for (;;) {
        int wait_ms = -1;  /* no limit */
        if (timeout_ms >= 0) {
            long long left = deadline - clock_ms();
            wait_ms = left > 0 ? (int)left : 0;
        }
        int n = poll(&pfd, 1, wait_ms);  /* EINTR: wait for what is left */
        if (n > 0)
            break;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
        return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

int net_connect(const char *host, int port, int flags)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd = net_socket(host, port, false, flags & SOCK_CLOEXEC, &ss, &len);

    if (fd == -1)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) == -1 &&
        (errno != EINTR || net_connect_finish(fd, -1) == -1))
        return close_keeping_errno(fd);
    if ((flags & SOCK_NONBLOCK) && net_set_nonblock(fd, true) == -1)
        return close_keeping_errno(fd);
    return fd;
}

int net_set_nonblock(sock_t fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl == -1)
        return -1;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl);
}

int net_set_nodelay(sock_t fd, bool on)
{
    int value = on;

    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value));
}

int net_set_oobinline(sock_t fd)
{
    int one = 1;

    return setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
}

int net_set_timeouts(sock_t fd, int millis)
{
    struct timeval tv = {.tv_sec = millis / 1000,
                         .tv_usec = (millis % 1000) * 1000};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
        return -1;
    return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}
