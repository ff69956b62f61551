/* buf.c - the bounded echo buffer (see buf.h). */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int buf_init(struct buf *b, size_t cap)
{
    if (cap == 0) {
        errno = EINVAL;
        return -1;
    }
    b->data = malloc(cap);
    if (b->data == NULL)
        return -1;  /* malloc sets ENOMEM */
    b->cap = cap;
    b->len = 0;
    return 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->len = 0;
}

void buf_commit(struct buf *b, size_t n)
{
    if (n > buf_space(b))
        abort();  /* a caller bug: more bytes than were offered */
    b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n > b->len)
        abort();  /* a caller bug: more bytes than were waiting */
    /* Keep the waiting bytes at data[0]: one contiguous region to send
     * and one to receive into, which is what recv/send and AIO want. */
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

ssize_t buf_fill(struct buf *b, sock_t fd)
{
    if (buf_full(b)) {
        errno = ENOBUFS;
        return -1;
    }
    ssize_t n = recv(fd, buf_tail(b), buf_space(b), 0);
    if (n > 0)
        buf_commit(b, (size_t)n);
    return n;
}

ssize_t buf_drain(struct buf *b, sock_t fd)
{
    if (buf_empty(b))
        return 0;
    /* MSG_NOSIGNAL: a peer that reset the connection gives EPIPE here,
     * not a SIGPIPE that would kill the whole server. */
    ssize_t n = send(fd, buf_head(b), buf_len(b), MSG_NOSIGNAL);
    if (n > 0)
        buf_consume(b, (size_t)n);
    return n;
}
