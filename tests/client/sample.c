/* sample.c - what a server spent over bench's measured period (sample.h). */
#include "sample.h"

#include <stdlib.h>
#include <string.h>

static void see_threads(struct server_sample *s)
{
    struct proc_status st;

    if (proc_read_status(s->pid, &st) == 0 && st.threads > s->threads)
        s->threads = st.threads;
}

int sample_begin(struct server_sample *s, pid_t pid, uint64_t now_ns)
{
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    s->tasks_at_start_count = proc_read_task_ctxt(pid, &s->tasks_at_start);
    if (s->tasks_at_start_count == -1)
        goto fail;
    see_threads(s);
    s->next_tick_ns = now_ns + SAMPLE_TICK_MS * 1000000ull;
    if (proc_cpu_seconds(pid, &s->cpu_at_start) == -1)
        goto fail;
    return 0;
fail:
    sample_free(s);
    s->pid = 0; /* not sampled: tick and end do nothing */
    return -1;
}

void sample_tick(struct server_sample *s, uint64_t now_ns)
{
    if (s->pid == 0 || now_ns < s->next_tick_ns)
        return;
    see_threads(s);
    s->next_tick_ns = now_ns + SAMPLE_TICK_MS * 1000000ull;
}

int sample_end(struct server_sample *s)
{
    struct proc_task_ctxt *tasks;
    struct proc_status st;
    double cpu;

    if (s->pid == 0)
        return 0;
    if (proc_cpu_seconds(s->pid, &cpu) == -1)
        return -1;
    int count = proc_read_task_ctxt(s->pid, &tasks);
    if (count == -1)
        return -1;
    proc_task_ctxt_delta(s->tasks_at_start, s->tasks_at_start_count, tasks,
                         count, &s->voluntary_ctxt, &s->involuntary_ctxt);
    free(tasks);
    if (proc_read_status(s->pid, &st) == -1)
        return -1;
    if (st.threads > s->threads)
        s->threads = st.threads;
    s->cpu_seconds = cpu - s->cpu_at_start;
    s->peak_rss_kib = st.hwm_kib;
    s->fds = proc_fd_count(s->pid);
    s->valid = s->fds >= 0;
    return s->valid ? 0 : -1;
}

void sample_free(struct server_sample *s)
{
    free(s->tasks_at_start);
    s->tasks_at_start = NULL;
}
