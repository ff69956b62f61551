/* addr.c - socket addresses as text (see addr.h). */
#include "addr.h"

#include <errno.h>
#include <stdio.h>
#ifndef _WIN32
#include <arpa/inet.h>   /* inet_ntop; Winsock has it in ws2tcpip.h (sock.h) */
#include <netinet/in.h>
#endif

int addr_format(const struct sockaddr *sa, socklen_t len, char *out,
                size_t out_len)
{
    char host[INET6_ADDRSTRLEN];
    int n;

    /* (size_t): Winsock's socklen_t is a signed int. */
    if (sa->sa_family == AF_INET &&
        (size_t)len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        n = snprintf(out, out_len, "%s:%u", host, ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6 &&
               (size_t)len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        /* Brackets, so the port's colon is not read as part of the address. */
        n = snprintf(out, out_len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (n < 0 || (size_t)n >= out_len) {
        errno = ENOSPC;
        return -1;
    }
    return 0;
}

int addr_local(sock_t fd, char *out, size_t out_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    return addr_format((struct sockaddr *)&ss, len, out, out_len);
}

int addr_peer(sock_t fd, char *out, size_t out_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    return addr_format((struct sockaddr *)&ss, len, out, out_len);
}

int addr_local_port(sock_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    errno = EAFNOSUPPORT;
    return -1;
}
