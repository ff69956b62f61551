/* bench.h - `echo-client bench`: a closed-loop load generator.
 *
 * N connections each send an S-byte message and wait for its whole echo
 * before sending the next (closed loop: the server's speed sets the pace),
 * for D seconds after a warm-up. One epoll loop drives them all,
 * so the client itself costs little and is the same for every model. Every
 * echoed byte is checked against the pattern stream of its connection.
 *
 * --stream: each connection keeps writing S-byte blocks while reading (bulk
 * throughput; a window of unechoed bytes keeps the client's memory small);
 * a "message" is then S echoed bytes and latency is not measured.
 *
 * The warm-up lasts W seconds and then, if need be, until every connection
 * has had its first echo (at most BENCH_RAMP_MAX_S more): a server that is
 * slow to accept 10000 clients would otherwise be measured while it ramps
 * up. A connection that completes no message in the measured period is
 * counted as starved.
 *
 * --server-pid PID: bench also samples the server's /proc around the
 * measured period (sample.h): its CPU time, context switches, threads, peak
 * RSS and descriptors, over exactly the period the messages were counted in.
 *
 * Results: messages/s, MB/s (10^6 bytes echoed per second), latency p50,
 * p99, p99.9 (log-bucketed histogram, see histogram.h), errors (connections
 * that failed: reset, early close, wrong byte), and the client's own CPU
 * seconds over the measured period (getrusage).
 */
#ifndef TESTS_CLIENT_BENCH_H
#define TESTS_CLIENT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "histogram.h"
#include "sample.h"

#define BENCH_RAMP_MAX_S 5 /* the most the warm-up waits for first echoes */

struct bench_opts {
    const char *host;
    int port;
    int conns;        /* active connections (-c) */
    int idle;         /* extra connections that only stay open (-i) */
    size_t size;      /* message or block size in bytes (-s) */
    double seconds;   /* measured duration (-d) */
    double warmup;    /* unmeasured start (-w) */
    bool stream;      /* --stream */
    bool csv;         /* --csv: one machine-readable line */
    pid_t server_pid; /* --server-pid: sample it (0 = do not) */
};

struct bench_result {
    uint64_t messages;     /* completed in the measured period */
    uint64_t bytes;        /* echoed bytes received in the measured period */
    double warmup_seconds; /* the warm-up, as it really was */
    double seconds;        /* the measured period, as it really was */
    double cpu_seconds;    /* this process's user+system time in it */
    uint64_t errors;       /* connections that failed */
    uint64_t starved;      /* connections with no message measured */
    struct server_sample server; /* --server-pid; .valid when sampled */
    struct histogram latency;    /* nanoseconds, per message (not --stream) */
};

/* The CSV columns, in order (also printed by --help). The server_ ones are
 * empty without --server-pid. */
#define BENCH_CSV_COLUMNS                                                      \
    "mode,conns,idle,size,seconds,messages,msgs_per_s,mb_per_s,p50_us,"        \
    "p99_us,p999_us,errors,client_cpu_s,starved,server_cpu_s,server_vol_cs,"   \
    "server_invol_cs,server_threads,server_peak_rss_kib,server_fds"

void bench_defaults(struct bench_opts *o);

/* Connects, runs, and fills *r. Returns 0, or -1 when the run could not
 * start (a connect failed; the reason is on stderr). */
int bench_run(const struct bench_opts *o, struct bench_result *r);

/* The human-readable report, or the one CSV line with o->csv. */
void bench_print(const struct bench_opts *o, const struct bench_result *r,
                 FILE *out);

#endif
