/* gdb_tour.c - the runner scenario "gdb-tour": a model's walkthrough.gdb
 * must still work, so the tours cannot rot as the code changes.
 *
 * It runs the server under gdb in batch mode with $tour_batch set (each
 * tour stop then prints its "[tour N]" line and continues), drives one
 * client through it (connect, echo, close), sends the server SIGTERM, and
 * checks that gdb saw every stop: "[tour 1]" .. "[tour N]", N being the
 * number of `break` lines in walkthrough.gdb, and a normal exit.
 *
 * Only against the debug build (runner_scenario.debug_only): the tours
 * print variables that an optimised sanitizer build has optimised out, and
 * LeakSanitizer cannot run under ptrace.
 */
#include "gdb_tour.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/client.h"
#include "paths.h"
#include "scenarios/steps.h"

#define TOUR_START_MS 60000  /* gdb reads the debug info first */
#define TOUR_STOP_MS  60000
#define TOUR_OUTPUT_MAX (256 * 1024)

struct tour_run {
    pid_t gdb_pid;
    int out_fd;          /* gdb's stdout and stderr, merged */
    char *out;           /* everything read so far, NUL-terminated */
    size_t out_len;
};

/* <source root>/<dir>/walkthrough.gdb: the tour sits beside the model's
 * source, also when the server tested is a build/<variant>/ one. */
static int walkthrough_path(const struct run_ctx *ctx, char *out, size_t len)
{
    char root[PATH_MAX];

    if (paths_source_root(root, sizeof(root)) == -1)
        return -1;
    int n = snprintf(out, len, "%s/%s/walkthrough.gdb", root, ctx->v->dir);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

/* How many tour stops the file sets: its lines that begin with "break". */
static int count_breaks(const char *path)
{
    char line[512];
    int count = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "break ", 6) == 0)
            count++;
    fclose(f);
    return count;
}

static int spawn_gdb(const struct run_ctx *ctx, const char *script,
                     struct tour_run *r)
{
    const char *argv[24] = {"gdb", "-q", "-batch", "-nx", "-ex",
                            "set $tour_batch = 1", "-x", script, "-ex", "run",
                            "--args", ctx->binary};
    int argc = 12, p[2];

    for (int i = 0; ctx->v->args[i] != NULL && argc < 20; i++)
        argv[argc++] = ctx->v->args[i];
    argv[argc++] = "-p";
    argv[argc++] = "0";
    argv[argc] = NULL;
    if (pipe2(p, O_CLOEXEC) == -1)
        return -1;
    r->gdb_pid = fork();
    if (r->gdb_pid == -1)
        return -1;
    if (r->gdb_pid == 0) {
        int null_fd = open("/dev/null", O_RDONLY);
        setpgid(0, 0);  /* the runner's signals stay ours */
        signal(SIGPIPE, SIG_DFL);
        dup2(null_fd, STDIN_FILENO);
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        execvp("gdb", (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    r->out_fd = p[0];
    return 0;
}

/* Reads what gdb printed until needle shows up or gdb closes its output
 * (needle NULL: until then). Returns 0 when found (or at the end, for
 * NULL), -1 on timeout or an early end. */
static int read_until(struct tour_run *r, const char *needle, int timeout_ms)
{
    long long deadline = client_deadline(timeout_ms);

    while (needle == NULL || strstr(r->out, needle) == NULL) {
        if (client_wait(r->out_fd, POLLIN, deadline) == -1)
            return -1;
        size_t room = TOUR_OUTPUT_MAX - 1 - r->out_len;
        char sink[4096];
        ssize_t n = read(r->out_fd, room ? r->out + r->out_len : sink,
                         room ? room : sizeof(sink));
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            return needle == NULL ? 0 : -1;
        if (room) {
            r->out_len += (size_t)n;
            r->out[r->out_len] = '\0';
        }
    }
    return 0;
}

/* The listening line is whole once a newline follows it; gdb may print it
 * in pieces, so read a little more until then (bounded). */
static bool listening_line_complete(struct tour_run *r)
{
    long long deadline = client_deadline(TOUR_START_MS);

    while (strchr(strstr(r->out, "listening on "), '\n') == NULL) {
        if (client_remaining_ms(deadline) <= 0 ||
            client_wait(r->out_fd, POLLIN, deadline) == -1)
            return false;
        ssize_t n = read(r->out_fd, r->out + r->out_len,
                         TOUR_OUTPUT_MAX - 1 - r->out_len);
        if (n <= 0)
            return false;
        r->out_len += (size_t)n;
        r->out[r->out_len] = '\0';
    }
    return true;
}

/* The server is gdb's only child: /proc/GDB/task/GDB/children. */
static pid_t inferior_pid(pid_t gdb_pid)
{
    char path[64];
    long pid = -1;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", gdb_pid,
             gdb_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    fclose(f);
    return (pid_t)pid;
}

/* One client: connect to the port in the listening line, echo, close. */
static enum outcome drive_one_client(struct tour_run *r, char *why,
                                     size_t why_len)
{
    char host[64];
    int port;
    const char *at = strstr(r->out, "listening on ");

    if (at == NULL || sscanf(at, "listening on %63s", host) != 1)
        return fail_with(why, why_len, "no listening line under gdb");
    char *colon = strrchr(host, ':');
    port = colon ? atoi(colon + 1) : 0;
    *colon = '\0';
    if (host[0] == '[') {  /* "[::1]" -> "::1" */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    int fd = client_connect(host, port, TOUR_START_MS);
    if (fd == -1)
        return fail_with(why, why_len, "connect under gdb: %s",
                         errname(errno));
    enum outcome o = echo_once(fd, 0, 7, 64, TOUR_START_MS, why, why_len);
    close(fd);
    return o;
}

/* Every "[tour k]" for k = 1..stops, and the server's normal exit. */
static enum outcome check_output(const struct tour_run *r, int stops,
                                 char *why, size_t why_len)
{
    char mark[32];

    for (int k = 1; k <= stops; k++) {
        snprintf(mark, sizeof(mark), "[tour %d]", k);
        if (strstr(r->out, mark) == NULL)
            return fail_with(why, why_len, "tour stop %d of %d never "
                             "reached: walkthrough.gdb no longer matches "
                             "the code", k, stops);
    }
    if (strstr(r->out, "exited normally") == NULL)
        return fail_with(why, why_len, "the server did not exit normally "
                         "under gdb");
    return OUTCOME_PASS;
}

/* A model that cannot run here (io_uring refused) exits 1 before listening
 * with "unavailable" on stderr; under gdb as under server_start() that is
 * a SKIP with that line, not a failure. */
static bool unavailable_here(const struct tour_run *r, char *why,
                             size_t why_len)
{
    const char *line = strstr(r->out, "unavailable");

    if (line == NULL || strstr(r->out, "listening on ") != NULL ||
        strstr(r->out, "exited with code 01") == NULL)
        return false;
    while (line > r->out && line[-1] != '\n')
        line--;
    skip_with(why, why_len, "%.*s", (int)strcspn(line, "\n"), line);
    return true;
}

/* Waits for gdb to end, judges what it printed, prints the tail on a
 * failure, and frees everything. */
static enum outcome finish(struct tour_run *r, enum outcome o, int stops,
                           char *why, size_t why_len)
{
    int status = 0;

    if (read_until(r, NULL, TOUR_STOP_MS) == -1 && o == OUTCOME_PASS)
        o = fail_with(why, why_len, "gdb did not finish within %d s",
                      TOUR_STOP_MS / 1000);
    kill(-r->gdb_pid, SIGKILL);  /* whatever is left of it */
    waitpid(r->gdb_pid, &status, 0);
    if (o == OUTCOME_FAIL && unavailable_here(r, why, why_len))
        o = OUTCOME_SKIP;
    /* A break on a function that no longer exists stops the script in
     * batch mode; say so plainly rather than how the run then failed. */
    const char *stale = strstr(r->out, "not defined.");
    if (stale != NULL) {
        const char *line = stale;
        while (line > r->out && line[-1] != '\n')
            line--;
        o = fail_with(why, why_len, "walkthrough.gdb is stale: %.*s",
                      (int)(stale - line) + 12, line);
    }
    if (o == OUTCOME_PASS)
        o = check_output(r, stops, why, why_len);
    if (o == OUTCOME_FAIL) {
        const char *tail = r->out_len > 1500 ? r->out + r->out_len - 1500
                                             : r->out;
        fprintf(stderr, "    --- tail of gdb's output ---\n%s\n", tail);
    }
    close(r->out_fd);
    free(r->out);
    return o;
}

enum outcome runner_gdb_tour(const struct run_ctx *ctx, char *why,
                             size_t why_len)
{
    char script[PATH_MAX];
    struct tour_run r = {.out = calloc(1, TOUR_OUTPUT_MAX)};

    if (r.out == NULL)
        return fail_with(why, why_len, "calloc: out of memory");
    int stops = walkthrough_path(ctx, script, sizeof(script)) == 0
                    ? count_breaks(script) : -1;
    if (stops <= 0) {
        free(r.out);
        return fail_with(why, why_len, "no walkthrough.gdb with break "
                         "lines for %s", ctx->v->dir);
    }
    if (spawn_gdb(ctx, script, &r) == -1) {
        free(r.out);
        return fail_with(why, why_len, "starting gdb: %s", errname(errno));
    }
    enum outcome o = OUTCOME_PASS;
    if (read_until(&r, "listening on ", TOUR_START_MS) == -1 ||
        !listening_line_complete(&r))
        o = fail_with(why, why_len, "no listening line under gdb");
    if (o == OUTCOME_PASS)
        o = drive_one_client(&r, why, why_len);
    pid_t server = inferior_pid(r.gdb_pid);
    if (server > 0)
        kill(server, SIGTERM);  /* the tour's last stop: the shutdown */
    else if (o == OUTCOME_PASS)
        o = fail_with(why, why_len, "cannot find the server under gdb");
    return finish(&r, o, stops, why, why_len);
}
