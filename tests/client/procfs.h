/* procfs.h - what /proc says about a server process (by pid).
 *
 * The scenarios use these to check what a client cannot see from outside:
 * memory (slow-reader's bounded backlog), descriptors (no leak after clients
 * leave), CPU time (no busy loop on EMFILE); `bench --server-pid` samples the
 * same figures, and each thread's context switches, around its measured
 * period. The parsers take text, so the unit tests feed them fixed samples;
 * the readers open the files.
 *
 * Library style: -1 with errno set, never exits.
 */
#ifndef TESTS_CLIENT_PROCFS_H
#define TESTS_CLIENT_PROCFS_H

#include <stdbool.h>
#include <sys/types.h>

/* From /proc/PID/status. */
struct proc_status {
    long rss_kib;          /* VmRSS */
    long hwm_kib;          /* VmHWM: the peak RSS since the process started */
    long threads;          /* Threads */
    long voluntary_ctxt;   /* voluntary_ctxt_switches */
    long involuntary_ctxt; /* nonvoluntary_ctxt_switches */
};

/* Parses the text of /proc/PID/status. A field that is absent (VmRSS of a
 * zombie) reads as 0; Threads must be there. Returns 0, or -1 with EINVAL. */
int proc_parse_status(const char *text, struct proc_status *out);

/* Parses the text of /proc/PID/stat: the state letter and utime+stime in
 * clock ticks. comm (field 2) may hold spaces and parentheses, so fields are
 * counted from the last ')'. Returns 0, or -1 with errno = EINVAL. */
int proc_parse_stat(const char *text, char *state, unsigned long long *ticks);

/* The readers. */
int proc_read_status(pid_t pid, struct proc_status *out);
/* utime + stime, in seconds. */
int proc_cpu_seconds(pid_t pid, double *seconds);
/* One thread's context-switch counters (/proc/PID/task/TID/status). */
struct proc_task_ctxt {
    pid_t tid;
    long voluntary;   /* it blocked: waited for I/O, a lock, a wake-up */
    long involuntary; /* the scheduler took the CPU from it */
};

/* The counters of every live thread of pid, in *out (malloc'd, sorted by
 * tid; the caller frees it). The kernel keeps these per thread: when a
 * thread exits its counts are gone from /proc (only the process itself sees
 * them, through getrusage). Returns the number of threads, or -1. */
int proc_read_task_ctxt(pid_t pid, struct proc_task_ctxt **out);

/* What the threads of after[] did since before[]: each thread's end value
 * minus its start value (0 for a thread born in between). Threads that
 * exited in between are not counted, so this is a lower bound when threads
 * come and go. */
void proc_task_ctxt_delta(const struct proc_task_ctxt *before, int n_before,
                          const struct proc_task_ctxt *after, int n_after,
                          long *voluntary, long *involuntary);

/* Entries of /proc/PID/fd: the process's open descriptors. */
int proc_fd_count(pid_t pid);
/* Is pid a live process (exists and is not a zombie)? */
bool proc_alive(pid_t pid);

#endif
