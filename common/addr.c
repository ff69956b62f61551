/* addr.c - socket addresses as text (see addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

int addr_format(const struct sockaddr *sa, socklen_t len, char *out,
                size_t out_len)
{
    char host[INET6_ADDRSTRLEN];
    int n;

    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        n = snprintf(out, out_len, "%s:%u", host, ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6 &&
               len >= sizeof(struct sockaddr_in6)) {
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

int addr_local(int fd, char *out, size_t out_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    return addr_format((struct sockaddr *)&ss, len, out, out_len);
}

int addr_peer(int fd, char *out, size_t out_len)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    return addr_format((struct sockaddr *)&ss, len, out, out_len);
}

int addr_local_port(int fd)
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
