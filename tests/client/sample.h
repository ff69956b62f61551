/* sample.h - what a server spent over bench's measured period, from /proc.
 *
 * `echo-client bench --server-pid PID` calls sample_begin as the measured
 * period starts, sample_tick while it runs, and sample_end as it stops,
 * before any connection closes (a thread per client is still there to be
 * counted). The figures then cover the same period as the messages bench
 * counted, so "server CPU per message" divides like by like.
 *
 * What is counted, and what is not:
 *   cpu_seconds   utime+stime of the whole process (/proc/PID/stat); the
 *                 kernel adds an exiting thread's time to its process, so
 *                 this is complete. It is counted in clock ticks (10 ms), so
 *                 a period should last seconds, not milliseconds;
 *   *_ctxt        voluntary and involuntary context switches, per thread
 *                 (/proc/PID/task/TID/status), each thread's end value minus
 *                 its start value. A thread that exits within the period
 *                 takes its counts with it, so where threads come and go
 *                 (06's SIGEV_THREAD callbacks) this is a lower bound;
 *   threads       the most seen: at both ends and every SAMPLE_TICK_MS
 *                 (a per-event thread lives too briefly for two samples);
 *   peak_rss_kib  VmHWM at the end: the peak since the server started;
 *   fds           descriptors the server holds at the end: how many of the
 *                 client's connections it really took.
 *
 * Library style: -1 with errno set, never exits.
 */
#ifndef TESTS_CLIENT_SAMPLE_H
#define TESTS_CLIENT_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "procfs.h"

#define SAMPLE_TICK_MS 100

struct server_sample {
    pid_t pid;
    bool valid; /* sample_end succeeded: the figures below mean something */
    double cpu_seconds;
    long voluntary_ctxt;
    long involuntary_ctxt;
    long threads;
    long peak_rss_kib;
    int fds;
    /* The start, kept until sample_end. */
    double cpu_at_start;
    struct proc_task_ctxt *tasks_at_start;
    int tasks_at_start_count;
    uint64_t next_tick_ns;
};

/* Reads the start. The slow part (every thread's status) comes first and
 * the CPU time last, so the CPU figure is taken right at the caller's
 * start mark. Returns 0, or -1 (the server has gone): then s->pid is 0 and
 * sample_tick and sample_end do nothing. */
int sample_begin(struct server_sample *s, pid_t pid, uint64_t now_ns);

/* Cheap: looks at the thread count once per SAMPLE_TICK_MS. */
void sample_tick(struct server_sample *s, uint64_t now_ns);

/* Reads the end: CPU time first (right at the caller's end mark), then the
 * rest, and sets s->valid. Returns 0 (also when not sampling), or -1. */
int sample_end(struct server_sample *s);

void sample_free(struct server_sample *s);

#endif
