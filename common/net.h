/* net.h - TCP sockets for servers and for the test client.
 *
 * Library style: each function returns -1 with errno set and never exits.
 * net_win32.c is the same API in Winsock, for the Win32 twins: a socket is
 * a SOCKET (sock.h), failure is INVALID_SOCKET or -1 with the reason in
 * WSAGetLastError(), and flags must be 0 (Winsock has no SOCK_NONBLOCK or
 * SOCK_CLOEXEC: nonblocking is net_set_nonblock, i.e. ioctlsocket FIONBIO).
 * Hosts are numeric addresses (127.0.0.1, ::1, ::, 0.0.0.0): no DNS, so a
 * teaching run never waits on a resolver. A host that is not one gives
 * EINVAL (the option parser rejects it before that).
 */
#ifndef COMMON_NET_H
#define COMMON_NET_H

#include <stdbool.h>

#include "sock.h"

#define NET_BACKLOG SOMAXCONN

/* A TCP socket for host:port and the address to bind() or connect() it to:
 * getaddrinfo (numeric host and port only), then socket() of the address's
 * family. passive: the address is for bind() (AI_PASSIVE); flags:
 * SOCK_NONBLOCK and/or SOCK_CLOEXEC. Returns the socket, the address in
 * *addr and its length in *addr_len. */
sock_t net_socket(const char *host, int port, bool passive, int flags,
                  struct sockaddr_storage *addr, socklen_t *addr_len);

/* socket + SO_REUSEADDR + bind + listen on host:port (IPv4 or IPv6).
 * flags: SOCK_NONBLOCK and/or SOCK_CLOEXEC. Returns the listening fd. */
sock_t net_listen(const char *host, int port, int flags);

/* Prints the contract line "listening on 127.0.0.1:9002" (IPv6:
 * "listening on [::1]:9002") on stdout and flushes it: tests wait for it. */
int net_announce(sock_t listen_fd);

/* accept4 with flags (SOCK_NONBLOCK/SOCK_CLOEXEC); peer (may be NULL)
 * receives the formatted peer address. EINTR is returned to the caller,
 * who decides whether a signal means "stop". */
sock_t net_accept(sock_t listen_fd, int flags, char *peer,
                  size_t peer_len);

/* Is this accept() errno "out of descriptors or memory"? Then the server
 * must stop accepting until a slot frees: retrying at once would spin
 * (NOTES §7.1). */
bool net_accept_exhausted(int err);

/* Is this accept() errno about one aborted connection only (ECONNABORTED,
 * EPROTO, network errors per accept(2))? Then just try the next one. */
bool net_accept_transient(int err);

/* Connect to host:port (blocking connect, then flags applied: O_NONBLOCK if
 * SOCK_NONBLOCK is given). For the test client, which runs on Linux only:
 * net_win32.c has neither this nor net_connect_finish. */
int net_connect(const char *host, int port, int flags);

/* A connect() that did not finish at once (EINPROGRESS on a nonblocking
 * socket, EINTR on a blocking one) goes on in the background: wait until
 * the socket is writable, at most timeout_ms (-1: no limit; ETIMEDOUT
 * then), and return its outcome from SO_ERROR: 0, or -1 with errno. */
int net_connect_finish(int fd, int timeout_ms);

int net_set_nonblock(sock_t fd, bool on);
int net_set_nodelay(sock_t fd, bool on);
/* SO_OOBINLINE: urgent (out-of-band) bytes stay in line and are read like
 * the rest. Without it, recv() skips the urgent byte, and an echo server
 * would silently drop a byte the client sent. Every server sets it on
 * every client socket. */
int net_set_oobinline(sock_t fd);
/* SO_RCVTIMEO and SO_SNDTIMEO, in milliseconds (0 = wait forever). */
int net_set_timeouts(sock_t fd, int millis);

/* Is text a numeric IPv4 or IPv6 address? */
bool net_is_numeric_host(const char *text);

#endif
