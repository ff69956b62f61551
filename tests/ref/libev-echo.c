/* libev-echo.c - a reference echo server on libev, for `make compare` only.
 *
 * Not a model: production event-library code beside the hand-written ones.
 * Same contract as the models: -H/-p/-c, the "listening on" line, a 64 KiB
 * backpressure bound per connection, SIGTERM exit 0.
 */
#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

struct conn {
    ev_io readable, writable;
    struct buf echo;
    int fd;
};

static struct stats stats;
static struct server_opts opts;

static void conn_close(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->readable);
    ev_io_stop(loop, &c->writable);
    close(c->fd);
    buf_free(&c->echo);
    free(c);
    stats_client_closed(&stats);
}

/* Read while there is room, echo what we can, arm write only if needed. */
static void on_io(struct ev_loop *loop, struct conn *c, bool can_read)
{
    ssize_t n = 0;

    if (can_read && !buf_full(&c->echo)) {
        n = buf_fill(&c->echo, c->fd);
        if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
            /* EOF or error: echo what is left (best effort), then close. */
            while (n == 0 && buf_drain(&c->echo, c->fd) > 0)
                ;
            conn_close(loop, c);
            return;
        }
    }
    ssize_t sent = buf_drain(&c->echo, c->fd);
    if (sent > 0)
        stats_echoed(&stats, (unsigned long long)sent);
    else if (sent == -1 && errno != EAGAIN && errno != EINTR) {
        conn_close(loop, c);
        return;
    }
    if (buf_empty(&c->echo))
        ev_io_stop(loop, &c->writable);
    else
        ev_io_start(loop, &c->writable);
    if (buf_full(&c->echo))
        ev_io_stop(loop, &c->readable);
    else
        ev_io_start(loop, &c->readable);
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    on_io(loop, w->data, true);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    on_io(loop, w->data, false);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = net_accept(w->fd, SOCK_NONBLOCK | SOCK_CLOEXEC, NULL, 0);
        if (fd == -1)
            return;  /* EAGAIN, or EMFILE: level-triggered, retried next turn */
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL || buf_init(&c->echo, BUF_DEFAULT_CAP) == -1)
            die("malloc");
        c->fd = fd;
        net_set_nodelay(fd, true);
        ev_io_init(&c->readable, on_readable, fd, EV_READ);
        ev_io_init(&c->writable, on_writable, fd, EV_WRITE);
        c->readable.data = c->writable.data = c;
        ev_io_start(loop, &c->readable);
        stats_client_opened(&stats);
    }
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static const struct model_info model = {
    .program = "tests/ref/libev-echo",
    .summary = "reference echo server on libev (for make compare)",
    .default_port = 9011,
    .default_max_clients = 100000,
    .max_clients_limit = 100000,
};

int main(int argc, char **argv)
{
    struct ev_loop *loop = ev_default_loop(EVBACKEND_EPOLL);
    ev_io listener;
    ev_signal sigterm, sigint;

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("libev", opts.verbose);
    stats_init(&stats);
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");
    int listen_fd = net_listen(opts.host, opts.port, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (listen_fd == -1)
        die("listen on %s port %d", opts.host, opts.port);
    if (net_announce(listen_fd) == -1)
        die("announce");
    ev_io_init(&listener, on_accept, listen_fd, EV_READ);
    ev_io_start(loop, &listener);
    ev_signal_init(&sigterm, on_stop, SIGTERM);
    ev_signal_start(loop, &sigterm);
    ev_signal_init(&sigint, on_stop, SIGINT);
    ev_signal_start(loop, &sigint);
    ev_run(loop, 0);
    close(listen_fd);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}
