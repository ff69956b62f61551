/* procfs.c - what /proc says about a server process (see procfs.h). */
#include "procfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Looks for "Name:\t  value" at the start of a line; 0 when found. */
static int status_field(const char *text, const char *name, long *value)
{
    size_t name_len = strlen(name);

    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, name, name_len) == 0 && line[name_len] == ':') {
            char *end;
            errno = 0;
            *value = strtol(line + name_len + 1, &end, 10);
            return (errno != 0 || end == line + name_len + 1) ? -1 : 0;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return -1;
}

int proc_parse_status(const char *text, struct proc_status *out)
{
    memset(out, 0, sizeof(*out));
    if (status_field(text, "Threads", &out->threads) == -1) {
        errno = EINVAL;
        return -1;
    }
    /* A zombie or kernel thread has no VmRSS line: that reads as 0. */
    status_field(text, "VmRSS", &out->rss_kib);
    status_field(text, "VmHWM", &out->hwm_kib);
    status_field(text, "voluntary_ctxt_switches", &out->voluntary_ctxt);
    status_field(text, "nonvoluntary_ctxt_switches", &out->involuntary_ctxt);
    return 0;
}

int proc_parse_stat(const char *text, char *state, unsigned long long *ticks)
{
    unsigned long long utime, stime;
    const char *p = strrchr(text, ')');

    /* After "pid (comm)": field 3 is the state, 14 utime, 15 stime. */
    if (p == NULL || sscanf(p + 1,
                            " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                            "%*u %llu %llu",
                            state, &utime, &stime) != 3) {
        errno = EINVAL;
        return -1;
    }
    *ticks = utime + stime;
    return 0;
}

/* Reads /proc/PID/NAME whole into out (NUL-terminated). */
static int read_proc_file(pid_t pid, const char *name, char *out, size_t len)
{
    char path[64];
    size_t have = 0;
    int saved;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    while (have < len - 1) {
        ssize_t n = read(fd, out + have, len - 1 - have);
        if (n == 0)
            break;
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            goto fail;
        have += (size_t)n;
    }
    out[have] = '\0';
    close(fd);
    return 0;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Reads and parses a status file: "status" or "task/TID/status". */
static int read_proc_status_file(pid_t pid, const char *name,
                                 struct proc_status *out)
{
    char text[8192];

    if (read_proc_file(pid, name, text, sizeof(text)) == -1)
        return -1;
    return proc_parse_status(text, out);
}

int proc_read_status(pid_t pid, struct proc_status *out)
{
    return read_proc_status_file(pid, "status", out);
}

int proc_cpu_seconds(pid_t pid, double *seconds)
{
    char text[2048], state;
    unsigned long long ticks;
    long hz = sysconf(_SC_CLK_TCK);

    if (hz <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (read_proc_file(pid, "stat", text, sizeof(text)) == -1 ||
        proc_parse_stat(text, &state, &ticks) == -1)
        return -1;
    *seconds = (double)ticks / (double)hz;
    return 0;
}

static int by_tid(const void *a, const void *b)
{
    const struct proc_task_ctxt *x = a, *y = b;

    return (x->tid > y->tid) - (x->tid < y->tid);
}

/* One thread's counters; 0, or -1 when it has gone (or is not there). */
static int read_task(pid_t pid, pid_t tid, struct proc_task_ctxt *out)
{
    char name[64];
    struct proc_status st;

    snprintf(name, sizeof(name), "task/%d/status", (int)tid);
    if (read_proc_status_file(pid, name, &st) == -1)
        return -1;
    out->tid = tid;
    out->voluntary = st.voluntary_ctxt;
    out->involuntary = st.involuntary_ctxt;
    return 0;
}

int proc_read_task_ctxt(pid_t pid, struct proc_task_ctxt **out)
{
    char path[64];
    struct dirent *entry;
    struct proc_task_ctxt *tasks = NULL;
    int count = 0, room = 0;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return -1;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (count == room) {
            room = room == 0 ? 64 : 2 * room;
            struct proc_task_ctxt *more =
                realloc(tasks, (size_t)room * sizeof(*tasks));
            if (more == NULL)
                goto fail;
            tasks = more;
        }
        /* A thread may exit between readdir and open: skip it. */
        if (read_task(pid, (pid_t)atoi(entry->d_name), &tasks[count]) == 0)
            count++;
    }
    closedir(dir);
    qsort(tasks, (size_t)count, sizeof(*tasks), by_tid);
    *out = tasks;
    return count;
fail:
    closedir(dir);
    free(tasks);
    errno = ENOMEM;
    return -1;
}

void proc_task_ctxt_delta(const struct proc_task_ctxt *before, int n_before,
                          const struct proc_task_ctxt *after, int n_after,
                          long *voluntary, long *involuntary)
{
    *voluntary = *involuntary = 0;
    for (int i = 0; i < n_after; i++) {
        const struct proc_task_ctxt *was = bsearch(
            &after[i], before, (size_t)n_before, sizeof(*before), by_tid);
        *voluntary += after[i].voluntary - (was ? was->voluntary : 0);
        *involuntary += after[i].involuntary - (was ? was->involuntary : 0);
    }
}

int proc_fd_count(pid_t pid)
{
    char path[64];
    struct dirent *entry;
    int count = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return -1;
    errno = 0;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            count++;
    int saved = errno; /* readdir: NULL with errno set is an error */
    closedir(dir);
    if (saved != 0) {
        errno = saved;
        return -1;
    }
    return count;
}

bool proc_alive(pid_t pid)
{
    char text[2048], state;
    unsigned long long ticks;

    if (read_proc_file(pid, "stat", text, sizeof(text)) == -1 ||
        proc_parse_stat(text, &state, &ticks) == -1)
        return false;
    return state != 'Z' && state != 'X';
}
