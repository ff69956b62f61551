/* libuv-echo.c - a reference echo server on libuv, for `make compare` only.
 *
 * Not a model: production event-library code beside the hand-written ones,
 * so the comparison table has a yardstick. Same contract as the models:
 * -H/-p/-c, the "listening on" line, a 64 KiB backpressure bound per
 * connection (reading stops while that much echo is queued), SIGTERM exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "addr.h"
#include "err.h"
#include "log.h"
#include "opts.h"
#include "sig.h"
#include "stats.h"

#define BACKLOG_BYTES (64 * 1024)
#define READ_CHUNK (16 * 1024)

struct write_req {
    uv_write_t req;
    uv_buf_t buf;
};

static struct stats stats;
static uv_tcp_t listener;
static uv_signal_t sigterm, sigint;

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    buf->base = malloc(READ_CHUNK);
    buf->len = buf->base ? READ_CHUNK : 0;
}

static void on_closed(uv_handle_t *h)
{
    stats_client_closed(&stats);
    free(h);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    uv_stream_t *s = req->handle;

    if (status == 0)
        stats_echoed(&stats, w->buf.len);
    free(w->buf.base);
    free(w);
    /* Backpressure released: read again once the queue has drained. */
    if (status == 0 && !uv_is_closing((uv_handle_t *)s) &&
        uv_stream_get_write_queue_size(s) < BACKLOG_BYTES && uv_is_readable(s))
        uv_read_start(s, on_alloc, on_read);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    if (!uv_is_closing((uv_handle_t *)req->handle))
        uv_close((uv_handle_t *)req->handle, on_closed);
    free(req);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        struct write_req *w = malloc(sizeof(*w));
        if (w == NULL)
            die("malloc");
        w->buf = uv_buf_init(buf->base, (unsigned)n);
        if (uv_write(&w->req, s, &w->buf, 1, on_written) != 0) {
            free(buf->base);
            free(w);
            uv_close((uv_handle_t *)s, on_closed);
            return;
        }
        if (uv_stream_get_write_queue_size(s) >= BACKLOG_BYTES)
            uv_read_stop(s);
        return;
    }
    free(buf->base);
    if (n == UV_EOF) {  /* half-close: queued echoes go out, then close */
        uv_shutdown_t *req = malloc(sizeof(*req));
        if (req != NULL && uv_shutdown(req, s, on_shutdown) == 0)
            return;
        free(req);
    }
    if (n < 0 && !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *client = malloc(sizeof(*client));
    if (client == NULL || uv_tcp_init(server->loop, client) != 0)
        die("uv_tcp_init");
    if (uv_accept(server, (uv_stream_t *)client) != 0) {
        uv_close((uv_handle_t *)client, NULL);  /* never counted: plain free */
        return;
    }
    stats_client_opened(&stats);
    uv_tcp_nodelay(client, 1);
    uv_read_start((uv_stream_t *)client, on_alloc, on_read);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&listener)
        uv_close(h, on_closed);
    else
        uv_close(h, NULL);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_walk(h->loop, close_any, NULL);
}

static const struct model_info model = {
    .program = "tests/ref/libuv-echo",
    .summary = "reference echo server on libuv (for make compare)",
    .default_port = 9010,
    .default_max_clients = 100000,
    .max_clients_limit = 100000,
};

int main(int argc, char **argv)
{
    struct server_opts opts;
    struct sockaddr_storage where;
    char text[ADDR_TEXT_MAX];
    int len = sizeof(where), rc;
    uv_loop_t *loop = uv_default_loop();

    opts_parse_or_exit(argc, argv, &model, &opts);
    log_init("libuv", opts.verbose);
    stats_init(&stats);
    /* libuv writes with plain write(): a client that closes with echo still
     * queued would kill us with SIGPIPE (make compare's bulk run did). */
    if (sig_ignore_pipe() == -1)
        die("sigaction(SIGPIPE)");
    if (strchr(opts.host, ':'))
        rc = uv_ip6_addr(opts.host, opts.port, (struct sockaddr_in6 *)&where);
    else
        rc = uv_ip4_addr(opts.host, opts.port, (struct sockaddr_in *)&where);
    if (rc != 0 || (rc = uv_tcp_init(loop, &listener)) != 0 ||
        (rc = uv_tcp_bind(&listener, (struct sockaddr *)&where, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&listener, SOMAXCONN, on_connection)))
        die_code(-rc, "listen on %s port %d", opts.host, opts.port);
    uv_tcp_getsockname(&listener, (struct sockaddr *)&where, &len);
    addr_format((struct sockaddr *)&where, len, text, sizeof(text));
    printf("listening on %s\n", text);
    fflush(stdout);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_stop_signal, SIGTERM);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigint, on_stop_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    stats_print_summary(&stats);
    return EXIT_SUCCESS;
}
