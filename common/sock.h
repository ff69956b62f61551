/* sock.h - which socket API common/ is built for, said in one place.
 *
 * Linux: a socket is a file descriptor, an int; -1 on failure, the reason
 * in errno. Win32 (the twins, NN-model/win32.c, built with mingw-w64): a
 * socket is a SOCKET, a kernel handle (64 bits wide on Win64, so it does
 * not fit an int); INVALID_SOCKET on failure, the reason from
 * WSAGetLastError(). common/'s socket functions take a sock_t, so one
 * header serves both; a model writes int or SOCKET, as its own API does.
 */
#ifndef COMMON_SOCK_H
#define COMMON_SOCK_H

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET sock_t;
/* Winsock has no SIGPIPE: a send to a reset peer fails with WSAECONNRESET
 * and nothing else happens, so there is nothing for this flag to turn off. */
#define MSG_NOSIGNAL 0
#else
#include <sys/socket.h>
typedef int sock_t;
#endif

#endif
