/* addr.h - socket addresses as text: "127.0.0.1:53412" or "[::1]:53412". */
#ifndef COMMON_ADDR_H
#define COMMON_ADDR_H

#include <stddef.h>

#include "sock.h"

/* Enough for "[ffff:ffff:...:255.255.255.255]:65535" and a NUL. */
#define ADDR_TEXT_MAX 64

/* Formats sa into out (ADDR_TEXT_MAX bytes are always enough).
 * Returns 0, or -1 with errno = EAFNOSUPPORT / ENOSPC. */
int addr_format(const struct sockaddr *sa, socklen_t len, char *out,
                size_t out_len);

/* The local (sock) or remote (peer) address of fd, formatted. */
int addr_local(sock_t fd, char *out, size_t out_len);
int addr_peer(sock_t fd, char *out, size_t out_len);

/* The port of a bound socket, or -1 with errno set. */
int addr_local_port(sock_t fd);

#endif
