/* buf.h - a bounded echo buffer: the bytes received but not yet echoed.
 *
 * The bound is the backpressure of NOTES §1: when buf_full(), a server
 * stops reading from that client until its echo drains. Bytes sit in
 * data[0 .. len); new bytes go after them; buf_consume() moves the rest down
 * (a memmove of at most BUF_DEFAULT_CAP bytes: simple, and cheap next to a
 * system call). Two styles of use:
 *
 *   readiness models:  buf_fill(b, fd)  / buf_drain(b, fd)  (one call each)
 *   completion models: buf_tail()/buf_space() -> post a read -> buf_commit(n)
 *                      buf_head()/buf_len()   -> post a write -> buf_consume(n)
 */
#ifndef COMMON_BUF_H
#define COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sock.h"

#define BUF_DEFAULT_CAP (64 * 1024)

struct buf {
    char *data;
    size_t cap;  /* the backpressure bound */
    size_t len;  /* bytes waiting to be echoed: data[0 .. len) */
};

/* Allocates cap bytes. Returns 0, or -1 with errno = ENOMEM / EINVAL. */
int buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);

static inline size_t buf_len(const struct buf *b) { return b->len; }
static inline size_t buf_space(const struct buf *b) { return b->cap - b->len; }
static inline bool buf_empty(const struct buf *b) { return b->len == 0; }
static inline bool buf_full(const struct buf *b) { return b->len == b->cap; }
static inline char *buf_head(struct buf *b) { return b->data; }
static inline char *buf_tail(struct buf *b) { return b->data + b->len; }

/* n bytes were written at buf_tail(): they now wait to be echoed. */
void buf_commit(struct buf *b, size_t n);
/* n bytes from buf_head() were sent: forget them. */
void buf_consume(struct buf *b, size_t n);

/* One recv() into the free space. Returns bytes read (> 0), 0 at end of
 * stream, or -1 with errno (EAGAIN, EINTR, ECONNRESET...). Full buffer:
 * -1 with errno = ENOBUFS (the caller should not have asked). On Win32 the
 * reason of a failed recv() is WSAGetLastError() (WSAEWOULDBLOCK...). */
ssize_t buf_fill(struct buf *b, sock_t fd);

/* One send(MSG_NOSIGNAL) of the waiting bytes. Returns bytes sent (may be
 * short), or -1 with errno (EAGAIN, EINTR, EPIPE...). Empty: returns 0. */
ssize_t buf_drain(struct buf *b, sock_t fd);

#endif
