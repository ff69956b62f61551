/* bench.h - `echo-client bench`: a closed-loop load generator.
 *
 * N connections each send an S-byte message and wait for its whole echo
 * before sending the next (closed loop: the server's speed sets the pace),
 * for D seconds after a warm-up of W seconds. One epoll loop drives them all,
 * so the client itself costs little and is the same for every model. Every
 * echoed byte is checked against the pattern stream of its connection.
 *
 * --stream: each connection keeps writing S-byte blocks while reading (bulk
 * throughput; a window of unechoed bytes keeps the client's memory small);
 * a "message" is then S echoed bytes and latency is not measured.
 *
 * Results: messages/s, MB/s (10^6 bytes echoed per second), latency p50,
 * p99, p99.9 (log-bucketed histogram, see histogram.h), errors (connections
 * that failed: reset, early close, wrong byte), and the client's own CPU
 * seconds over the measured period (getrusage).
 */
#ifndef TESTS_BENCH_H
#define TESTS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "histogram.h"

struct bench_opts {
    const char *host;
    int port;
    int conns;      /* active connections (-c) */
    int idle;       /* extra connections that only stay open (-i) */
    size_t size;    /* message or block size in bytes (-s) */
    double seconds; /* measured duration (-d) */
    double warmup;  /* unmeasured start (-w) */
    bool stream;    /* --stream */
    bool csv;       /* --csv: one machine-readable line */
};

struct bench_result {
    uint64_t messages;        /* completed in the measured period */
    uint64_t bytes;           /* echoed bytes received in the measured period */
    double seconds;           /* the measured period, as it really was */
    double cpu_seconds;       /* this process's user+system time in it */
    uint64_t errors;          /* connections that failed */
    struct histogram latency; /* nanoseconds, per message (not --stream) */
};

/* The CSV columns, in order (also printed by --help). */
#define BENCH_CSV_COLUMNS                                                      \
    "mode,conns,idle,size,seconds,messages,msgs_per_s,mb_per_s,p50_us,"        \
    "p99_us,p999_us,errors,client_cpu_s"

void bench_defaults(struct bench_opts *o);

/* Connects, runs, and fills *r. Returns 0, or -1 when the run could not
 * start (a connect failed; the reason is on stderr). */
int bench_run(const struct bench_opts *o, struct bench_result *r);

/* The human-readable report, or the one CSV line with o->csv. */
void bench_print(const struct bench_opts *o, const struct bench_result *r,
                 FILE *out);

#endif
