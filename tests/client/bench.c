/* bench.c - `echo-client bench`: a closed-loop load generator (bench.h).
 *
 * The loop, in steps:
 *   [B1] connect every connection (bounded), start its first message;
 *   [B2] epoll_wait until a socket is ready or the next phase begins;
 *   [B3] readable: read, check each byte against the pattern, and when a
 *        message is complete record its latency and send the next one;
 *   [B4] writable: send what is still owed (EPOLLOUT is armed only then);
 *   [B5] once warmed up (time, and every connection echoed once) start
 *        counting and sample the server; at the end sample it again, stop
 *        and report.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "err.h"

#define BENCH_IO_CHUNK    (64 * 1024)
#define BENCH_CONNECT_MS  5000
#define STREAM_WINDOW_MIN (256 * 1024) /* --stream: unechoed bytes allowed */

struct bench_conn {
    int fd;
    int id;
    uint64_t sent;          /* pattern offset of the next byte to send */
    uint64_t received;      /* pattern offset of the next byte expected */
    uint64_t owed;          /* pattern offset up to which we must send */
    uint64_t started_ns;    /* when the current message started */
    uint64_t done;          /* messages completed, warm-up included */
    uint64_t done_at_start; /* done when the measured period began */
    bool want_out;          /* EPOLLOUT armed */
    bool dead;
};

struct bench {
    const struct bench_opts *opts;
    struct bench_conn *conns;
    int *idle_fds;
    int epoll_fd;
    int alive;
    int served; /* connections that have had their first echo */
    bool measuring;
    struct bench_result *result;
};

void bench_defaults(struct bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->conns = 1;
    o->size = 64;
    o->seconds = 5;
    o->warmup = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
        abort(); /* only for a bad clock id: a bug */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) == -1)
        return 0; /* cannot fail for RUSAGE_SELF; report 0 rather than die */
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t stream_window(const struct bench_opts *o)
{
    uint64_t window = 4 * (uint64_t)o->size;

    return window < STREAM_WINDOW_MIN ? STREAM_WINDOW_MIN : window;
}

/* Arms or disarms EPOLLOUT: only while bytes are owed (a level-triggered
 * EPOLLOUT on an idle socket would wake the loop for nothing). */
static int conn_watch(struct bench *b, struct bench_conn *c, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0),
                             .data.ptr = c};

    if (c->want_out == want_out)
        return 0;
    c->want_out = want_out;
    return epoll_ctl(b->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_fail(struct bench *b, struct bench_conn *c, const char *what,
                      int err)
{
    if (err != 0)
        warn_code(err, "bench: connection %d: %s", c->id, what);
    else
        warn("bench: connection %d: %s", c->id, what);
    b->result->errors++;
    /* close() removes the socket from the epoll set as well. */
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    b->alive--;
}

/* [B4] Sends pattern bytes up to c->owed; EAGAIN leaves EPOLLOUT armed. */
static void conn_send(struct bench *b, struct bench_conn *c)
{
    char block[BENCH_IO_CHUNK];

    while (c->sent < c->owed) {
        uint64_t left = c->owed - c->sent;
        size_t len = left < sizeof(block) ? (size_t)left : sizeof(block);
        pattern_fill((uint64_t)c->id, c->sent, block, len);
        ssize_t n = send(c->fd, block, len, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (uint64_t)n;
        } else if (n == -1 && errno == EINTR) {
            continue;
        } else if (n == -1 && errno == EAGAIN) {
            break;
        } else {
            conn_fail(b, c, "send", errno);
            return;
        }
    }
    if (conn_watch(b, c, c->sent < c->owed) == -1)
        conn_fail(b, c, "epoll_ctl(MOD)", errno);
}

/* Owes the next message (closed loop) or tops up the window (stream). */
static void conn_next(struct bench *b, struct bench_conn *c)
{
    if (b->opts->stream)
        c->owed = c->received + stream_window(b->opts);
    else
        c->owed = c->received + b->opts->size;
    c->started_ns = now_ns();
    conn_send(b, c);
}

/* n more messages of c are complete. */
static void conn_completed(struct bench *b, struct bench_conn *c, uint64_t n)
{
    if (n == 0)
        return;
    if (c->done == 0)
        b->served++;
    c->done += n;
    if (b->measuring)
        b->result->messages += n;
}

/* [B3] n echoed bytes arrived: check them and move the connection on.
 * Returns false when the connection failed. */
static bool conn_got(struct bench *b, struct bench_conn *c, const char *data,
                     size_t n)
{
    const struct bench_opts *o = b->opts;

    if (n > c->sent - c->received) {
        conn_fail(b, c, "the server sent back more bytes than it got", 0);
        return false;
    }
    long long bad = pattern_check((uint64_t)c->id, c->received, data, n);
    if (bad >= 0) {
        char what[96];
        snprintf(what, sizeof(what), "echo differs at byte %llu",
                 (unsigned long long)(c->received + (uint64_t)bad));
        conn_fail(b, c, what, 0);
        return false;
    }
    uint64_t before = c->received;
    c->received += n;
    if (b->measuring)
        b->result->bytes += n;
    if (o->stream) {
        conn_completed(b, c, c->received / o->size - before / o->size);
        conn_next(b, c);
    } else if (c->received == c->owed) {
        if (b->measuring)
            hist_record(&b->result->latency, now_ns() - c->started_ns);
        conn_completed(b, c, 1);
        conn_next(b, c);
    }
    return !c->dead;
}

/* One recv() per wake-up: epoll is level-triggered, so what is left wakes
 * us again, and a fast stream cannot keep the loop from seeing the clock. */
static void conn_recv(struct bench *b, struct bench_conn *c)
{
    char block[BENCH_IO_CHUNK];
    ssize_t n = recv(c->fd, block, sizeof(block), 0);

    if (n > 0)
        conn_got(b, c, block, (size_t)n);
    else if (n == 0)
        conn_fail(b, c, "the server closed the connection", 0);
    else if (errno != EAGAIN && errno != EINTR)
        conn_fail(b, c, "recv", errno);
}

/* [B1] Connects the active and idle connections and starts the messages. */
static int bench_connect(struct bench *b)
{
    const struct bench_opts *o = b->opts;

    for (int i = 0; i < o->idle; i++) {
        b->idle_fds[i] = client_connect(o->host, o->port, BENCH_CONNECT_MS);
        if (b->idle_fds[i] == -1) {
            warn_errno("bench: connect of idle connection %d", i);
            return -1;
        }
    }
    for (int i = 0; i < o->conns; i++) {
        struct bench_conn *c = &b->conns[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        c->id = i;
        c->fd = client_connect(o->host, o->port, BENCH_CONNECT_MS);
        if (c->fd == -1) {
            warn_errno("bench: connect of connection %d", i);
            return -1;
        }
        if (epoll_ctl(b->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
            warn_errno("bench: epoll_ctl(ADD, fd=%d)", c->fd);
            return -1;
        }
        b->alive++;
    }
    for (int i = 0; i < o->conns; i++)
        if (!b->conns[i].dead)
            conn_next(b, &b->conns[i]);
    return 0;
}

static void bench_dispatch(struct bench *b, const struct epoll_event *ev)
{
    struct bench_conn *c = ev->data.ptr;

    if (c->dead)
        return;
    if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_recv(b, c);
    if (!c->dead && (ev->events & EPOLLOUT))
        conn_send(b, c);
}

/* Is the warm-up over? Its time is up and every live connection has had
 * an echo, or the first echoes have been waited for long enough. */
static bool warmed_up(const struct bench *b, uint64_t now, uint64_t warm_at)
{
    uint64_t ramp_max = (uint64_t)BENCH_RAMP_MAX_S * 1000000000u;

    return now >= warm_at &&
           (b->served >= b->alive || now >= warm_at + ramp_max);
}

/* [B5] Warm-up over: count from here. The server is sampled before the
 * clock is read, so both figures start at the same moment. */
static uint64_t bench_start_measuring(struct bench *b, uint64_t started)
{
    pid_t pid = b->opts->server_pid;

    if (pid != 0 && sample_begin(&b->result->server, pid, now_ns()) == -1)
        warn_errno("bench: sampling server pid %d", (int)pid);
    for (int i = 0; i < b->opts->conns; i++)
        b->conns[i].done_at_start = b->conns[i].done;
    b->measuring = true;
    uint64_t now = now_ns();
    b->result->warmup_seconds = (double)(now - started) / 1e9;
    return now;
}

/* The end: the clock and our CPU first, then the server (which reads
 * every thread's status: slow with 10000 threads, and not ours to count). */
static void bench_stop_measuring(struct bench *b, uint64_t measured_from,
                                 double cpu_before)
{
    struct bench_result *r = b->result;

    r->seconds = (double)(now_ns() - measured_from) / 1e9;
    r->cpu_seconds = cpu_seconds() - cpu_before;
    for (int i = 0; i < b->opts->conns; i++)
        if (b->conns[i].done == b->conns[i].done_at_start)
            r->starved++;
    if (sample_end(&r->server) == -1)
        warn_errno("bench: sampling server pid %d", (int)r->server.pid);
    sample_free(&r->server);
}

/* [B2]..[B5] Runs until the end of the measured period. */
static int bench_loop(struct bench *b)
{
    struct epoll_event events[256];
    uint64_t start = now_ns(), warm_at, end_at = 0, measured_from = start;
    double cpu_before = 0;

    warm_at = start + (uint64_t)(b->opts->warmup * 1e9);
    for (;;) {
        uint64_t now = now_ns();
        if (!b->measuring && warmed_up(b, now, warm_at)) {
            measured_from = bench_start_measuring(b, start);
            cpu_before = cpu_seconds();
            end_at = measured_from + (uint64_t)(b->opts->seconds * 1e9);
            now = measured_from;
        }
        if ((b->measuring && now >= end_at) || b->alive == 0)
            break;
        if (b->measuring)
            sample_tick(&b->result->server, now);
        /* Wake at the next phase, or every 10 ms while the warm-up waits
         * for first echoes (and the thread count is sampled). */
        uint64_t next = b->measuring ? end_at : warm_at;
        int timeout = next > now ? (int)((next - now) / 1000000) + 1 : 10;
        if (b->measuring && timeout > SAMPLE_TICK_MS)
            timeout = SAMPLE_TICK_MS;
        int n = epoll_wait(b->epoll_fd, events, 256, timeout);
        if (n == -1 && errno != EINTR) {
            warn_errno("bench: epoll_wait");
            return -1;
        }
        for (int i = 0; i < n; i++)
            bench_dispatch(b, &events[i]);
    }
    if (!b->measuring) { /* every connection failed in the warm-up */
        measured_from = bench_start_measuring(b, start);
        cpu_before = cpu_seconds();
    }
    bench_stop_measuring(b, measured_from, cpu_before);
    return 0;
}

static void bench_free(struct bench *b)
{
    for (int i = 0; b->conns != NULL && i < b->opts->conns; i++)
        if (b->conns[i].fd >= 0)
            close(b->conns[i].fd);
    for (int i = 0; b->idle_fds != NULL && i < b->opts->idle; i++)
        if (b->idle_fds[i] >= 0)
            close(b->idle_fds[i]);
    if (b->epoll_fd >= 0)
        close(b->epoll_fd);
    free(b->conns);
    free(b->idle_fds);
}

int bench_run(const struct bench_opts *o, struct bench_result *r)
{
    struct bench b = {.opts = o, .result = r, .epoll_fd = -1};
    int rc = -1;

    memset(r, 0, sizeof(*r));
    hist_init(&r->latency);
    b.conns = calloc((size_t)o->conns, sizeof(*b.conns));
    b.idle_fds = calloc((size_t)o->idle + 1, sizeof(*b.idle_fds));
    if (b.conns == NULL || b.idle_fds == NULL) {
        warn("bench: calloc: out of memory");
        goto done;
    }
    for (int i = 0; i < o->conns; i++)
        b.conns[i].fd = -1;
    for (int i = 0; i < o->idle; i++)
        b.idle_fds[i] = -1;
    b.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (b.epoll_fd == -1) {
        warn_errno("bench: epoll_create1");
        goto done;
    }
    if (bench_connect(&b) == 0)
        rc = bench_loop(&b);
done:
    bench_free(&b);
    return rc;
}

static double per_second(uint64_t count, double seconds)
{
    return seconds > 0 ? (double)count / seconds : 0;
}

/* The server's columns: empty when it was not sampled. */
static void print_server_csv(const struct server_sample *s, FILE *out)
{
    if (!s->valid) {
        fprintf(out, ",,,,,,\n");
        return;
    }
    fprintf(out, ",%.3f,%ld,%ld,%ld,%ld,%d\n", s->cpu_seconds,
            s->voluntary_ctxt, s->involuntary_ctxt, s->threads, s->peak_rss_kib,
            s->fds);
}

static void print_server(const struct bench_result *r, FILE *out)
{
    const struct server_sample *s = &r->server;

    if (!s->valid)
        return;
    fprintf(out, "  server     pid %d: CPU %.3f s", (int)s->pid,
            s->cpu_seconds);
    if (r->messages > 0)
        fprintf(out, " (%.2f us per message)",
                s->cpu_seconds * 1e6 / (double)r->messages);
    fprintf(out,
            "\n             context switches %ld voluntary, %ld "
            "involuntary\n"
            "             %ld threads at most, peak RSS %ld KiB, %d "
            "descriptors\n",
            s->voluntary_ctxt, s->involuntary_ctxt, s->threads, s->peak_rss_kib,
            s->fds);
}

void bench_print(const struct bench_opts *o, const struct bench_result *r,
                 FILE *out)
{
    double p50 = hist_percentile(&r->latency, 0.50) / 1e3;
    double p99 = hist_percentile(&r->latency, 0.99) / 1e3;
    double p999 = hist_percentile(&r->latency, 0.999) / 1e3;
    double mbps = per_second(r->bytes, r->seconds) / 1e6;

    if (o->csv) {
        fprintf(out,
                "%s,%d,%d,%zu,%.3f,%llu,%.1f,%.3f,%.1f,%.1f,%.1f,%llu,"
                "%.3f,%llu",
                o->stream ? "stream" : "closed", o->conns, o->idle, o->size,
                r->seconds, (unsigned long long)r->messages,
                per_second(r->messages, r->seconds), mbps, p50, p99, p999,
                (unsigned long long)r->errors, r->cpu_seconds,
                (unsigned long long)r->starved);
        print_server_csv(&r->server, out);
        return;
    }
    fprintf(out,
            "bench: %d connections (+%d idle), %zu-byte %s, %.2f s "
            "measured after %.2f s warm-up\n",
            o->conns, o->idle, o->size,
            o->stream ? "blocks streamed" : "messages, closed loop", r->seconds,
            r->warmup_seconds);
    fprintf(out, "  messages   %llu (%.1f/s)\n",
            (unsigned long long)r->messages,
            per_second(r->messages, r->seconds));
    fprintf(out, "  throughput %.3f MB/s echoed\n", mbps);
    if (!o->stream)
        fprintf(out, "  latency    p50 %.1f us, p99 %.1f us, p99.9 %.1f us\n",
                p50, p99, p999);
    fprintf(out, "  errors     %llu\n  starved    %llu\n  client CPU %.3f s\n",
            (unsigned long long)r->errors, (unsigned long long)r->starved,
            r->cpu_seconds);
    print_server(r, out);
}
