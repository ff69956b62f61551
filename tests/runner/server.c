/* server.c - server processes for the conformance runner (server.h).
 *
 * A server is started the way a student would, `NN-model/server -p 0`, and
 * its port read from the one line it prints on stdout. It gets its own
 * process group (so what it forks can be cleaned up) and dies with the test
 * that started it (PR_SET_PDEATHSIG), so a test killed by Check's timeout
 * leaves no server behind. Its stderr goes to a file whose tail is printed
 * when a test fails.
 */
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "client/client.h"
#include "opts.h"
#include "scenarios/steps.h"

#define MAX_ARGV         48
#define START_MS         10000 /* until "listening on" */
#define START_WRAPPED_MS 60000 /* valgrind starts slowly */
/* SIGTERM to exit: a server must take at most 2 s (NOTES §1); the bound is
 * wider only so that a slow machine is not mistaken for a hang. */
#define STOP_MS          10000
#define STOP_WRAPPED_MS  60000

/* argv for execvp: $RUNNER_WRAP words (when wrapped), spec->argv, and
 * "-p 0" for a server that announces its port. words holds the copy of
 * RUNNER_WRAP that the pointers point into. */
static int build_argv(const struct server_spec *spec, char *words,
                      size_t words_len, const char **argv)
{
    int n = 0;
    const char *wrap = spec->wrap ? getenv("RUNNER_WRAP") : NULL;

    if (wrap != NULL) {
        char *save = NULL;
        snprintf(words, words_len, "%s", wrap);
        for (char *w = strtok_r(words, " ", &save); w != NULL && n < 16;
             w = strtok_r(NULL, " ", &save))
            argv[n++] = w;
    }
    for (int i = 0; spec->argv[i] != NULL && n < MAX_ARGV - 3; i++)
        argv[n++] = spec->argv[i];
    if (spec->announces) {
        argv[n++] = "-p";
        argv[n++] = "0";
    }
    argv[n] = NULL;
    return n;
}

static void set_limit(int resource, long value)
{
    struct rlimit rl = {.rlim_cur = (rlim_t)value, .rlim_max = (rlim_t)value};

    if (value > 0 && setrlimit(resource, &rl) == -1) {
        /* Only write(2) here: we are in the child between fork and exec. */
        static const char msg[] = "runner: setrlimit failed\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)ignored;
        _exit(127);
    }
}

/* In the child: plumbing, limits, a clean signal state, then exec. */
static void exec_server(const struct server_spec *spec, const char **argv,
                        int out_fd, int err_fd, pid_t parent)
{
    sigset_t none;

    setpgid(0, 0);
    /* Die with the test process; then make sure it had not died already. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
        _exit(127);
    if (dup2(out_fd, STDOUT_FILENO) == -1 || dup2(err_fd, STDERR_FILENO) == -1)
        _exit(127);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd == -1 || dup2(null_fd, STDIN_FILENO) == -1)
        _exit(127);
    /* Check's pipes and our sockets must not count against the server's
     * RLIMIT_NOFILE or keep connections open. */
    close_range(3, ~0U, 0);
    set_limit(RLIMIT_NOFILE, spec->nofile);
    set_limit(RLIMIT_SIGPENDING, spec->sigpending);
    /* SIG_IGN survives exec: the runner ignores SIGPIPE, but a server must
     * be tested with the default (deadly) SIGPIPE it would have in a shell. */
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[0], (char *const *)argv);
    dprintf(STDERR_FILENO, "runner: execvp %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Reads the whole stderr file (at most len - 1 bytes, the last ones). */
static size_t read_stderr(const struct server *s, char *out, size_t len)
{
    int fd = open(s->stderr_path, O_RDONLY | O_CLOEXEC);
    size_t have = 0;

    out[0] = '\0';
    if (fd == -1)
        return 0;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)(len - 1) ? size - (off_t)(len - 1) : 0;
    if (size == -1 || lseek(fd, from, SEEK_SET) == -1) {
        close(fd);
        return 0;
    }
    while (have < len - 1) {
        ssize_t n = read(fd, out + have, len - 1 - have);
        if (n == -1 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    out[have] = '\0';
    close(fd);
    return have;
}

bool server_stderr_has(const struct server *s, const char *needle)
{
    static char text[1 << 20]; /* tests run one at a time, in their own fork */

    read_stderr(s, text, sizeof(text));
    return strstr(text, needle) != NULL;
}

void server_stderr_tail(const struct server *s, int lines, FILE *out)
{
    char text[8192];
    size_t len = read_stderr(s, text, sizeof(text));
    const char *p = text + len;

    if (len == 0) {
        fprintf(out, "    (the server wrote nothing to stderr)\n");
        return;
    }
    if (len > 0 && p[-1] == '\n')
        p--;
    while (p > text && lines > 0)
        if (*--p == '\n')
            lines--;
    if (*p == '\n')
        p++;
    fprintf(out, "    --- tail of the server's stderr ---\n");
    for (const char *line = p; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        fprintf(out, "    | %.*s\n", (int)n, line);
        line += n + (line[n] == '\n');
    }
}

/* "listening on 127.0.0.1:9002" or "listening on [::1]:9002" -> host, port */
static int parse_listening(const char *line, struct server *s)
{
    const char *at = strstr(line, "listening on ");
    const char *colon = strrchr(line, ':');
    long port;

    if (at == NULL || colon == NULL)
        return -1;
    at += strlen("listening on ");
    if (colon <= at)
        return -1;
    size_t host_len = (size_t)(colon - at);
    if (*at == '[' && host_len >= 2 && colon[-1] == ']') {
        at++;
        host_len -= 2;
    }
    if (host_len >= sizeof(s->host) ||
        opts_parse_long(colon + 1, 1, 65535, &port) == -1)
        return -1;
    memcpy(s->host, at, host_len);
    s->host[host_len] = '\0';
    s->port = (int)port;
    return 0;
}

/* The wineserver of $WINEPREFIX (`make test-win32` starts one for the
 * whole run with `wineserver -p`): it holds a Linux descriptor for each
 * socket of a Win32 twin, so the catalogue's descriptor-leak checks count
 * its /proc/PID/fd. Tests run one at a time, so the only Wine process
 * with sockets is the twin under test. Returns 0 if there is none. */
static pid_t find_wineserver(void)
{
    const char *prefix = getenv("WINEPREFIX");
    char want[PATH_MAX + 16], path[64], env[16384];
    DIR *proc = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;

    if (prefix == NULL || proc == NULL) {
        if (proc != NULL)
            closedir(proc);
        return 0;
    }
    snprintf(want, sizeof(want), "WINEPREFIX=%s", prefix);
    while (found == 0 && (e = readdir(proc)) != NULL) {
        long pid = strtol(e->d_name, NULL, 10);
        char comm[32] = "";
        snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
        int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        ssize_t n = fd != -1 ? read(fd, comm, sizeof(comm) - 1) : -1;
        if (fd != -1)
            close(fd);
        if (n <= 0 || strncmp(comm, "wineserver", 10) != 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        n = fd != -1 ? read(fd, env, sizeof(env) - 1) : -1;
        if (fd != -1)
            close(fd);
        for (ssize_t at = 0; n > 0 && at < n; at += strlen(env + at) + 1) {
            env[n] = '\0';
            if (strcmp(env + at, want) == 0)
                found = (pid_t)pid;
        }
    }
    closedir(proc);
    return found;
}

/* Has the server exited? Reaps it (once) and gives its wait status. */
static bool server_exited(struct server *s, int *status)
{
    if (!s->reaped && waitpid(s->pid, &s->wait_status, WNOHANG) == s->pid)
        s->reaped = true;
    *status = s->wait_status;
    return s->reaped;
}

/* SIGKILL and reap: for a server that hangs or failed to start. */
static void server_kill(struct server *s)
{
    if (s->reaped)
        return; /* its pid may belong to someone else by now */
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, &s->wait_status, 0) == -1 && errno == EINTR)
        ;
    s->reaped = true;
}

/* Why a server that exited before listening did so: SKIP when it says the
 * model is unavailable here (exit 1, "unavailable" on stderr), else FAIL. */
static enum outcome start_refused(struct server *s, int status, char *why,
                                  size_t why_len)
{
    char text[4096];

    read_stderr(s, text, sizeof(text));
    char *line = strstr(text, "unavailable");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && line != NULL) {
        while (line > text && line[-1] != '\n')
            line--;
        line[strcspn(line, "\n")] = '\0';
        return skip_with(why, why_len, "%s", line);
    }
    server_stderr_tail(s, 10, stderr);
    if (WIFSIGNALED(status))
        return fail_with(why, why_len,
                         "the server died of signal %d (%s) before "
                         "listening",
                         WTERMSIG(status), strsignal(WTERMSIG(status)));
    return fail_with(why, why_len,
                     "the server exited with status %d before "
                     "listening",
                     WEXITSTATUS(status));
}

/* Reads stdout until the "listening on" line, bounded. */
static enum outcome wait_announced(struct server *s, long long deadline,
                                   char *why, size_t why_len)
{
    char line[256];
    size_t have = 0;
    int status;

    while (memchr(line, '\n', have) == NULL) {
        if (have == sizeof(line) - 1)
            return fail_with(why, why_len,
                             "no newline in the server's first "
                             "%zu bytes of stdout",
                             have);
        if (client_wait(s->stdout_fd, POLLIN, deadline) == -1)
            return fail_with(why, why_len,
                             "no \"listening on\" line from the "
                             "server: %s",
                             errname(errno));
        ssize_t n = read(s->stdout_fd, line + have, sizeof(line) - 1 - have);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return fail_with(why, why_len, "read(server stdout): %s",
                             errname(errno));
        if (n == 0) { /* stdout closed: it exited (or closed it) */
            while (!server_exited(s, &status) && client_remaining_ms(deadline))
                client_sleep_ms(10);
            return start_refused(s, status, why, why_len);
        }
        have += (size_t)n;
    }
    line[have] = '\0';
    line[strcspn(line, "\n")] = '\0';
    if (parse_listening(line, s) == -1)
        return fail_with(why, why_len,
                         "the server's first line is not "
                         "\"listening on HOST:PORT\": \"%s\"",
                         line);
    return OUTCOME_PASS;
}

/* socat cannot say which port it got: try to connect until it works. */
static enum outcome wait_connectable(struct server *s, long long deadline,
                                     char *why, size_t why_len)
{
    int status;

    snprintf(s->host, sizeof(s->host), "127.0.0.1");
    while (client_remaining_ms(deadline) > 0) {
        int fd = client_connect(s->host, s->port, 200);
        if (fd != -1) {
            close(fd);
            return OUTCOME_PASS;
        }
        if (server_exited(s, &status))
            return start_refused(s, status, why, why_len);
        client_sleep_ms(20);
    }
    return fail_with(why, why_len,
                     "the server did not accept a connection on "
                     "port %d within %d s",
                     s->port, START_MS / 1000);
}

/* The stdout pipe and the stderr file of a server about to start. */
static int open_outputs(struct server *s, int pipe_fds[2])
{
    snprintf(s->stderr_path, sizeof(s->stderr_path),
             "/tmp/server-stderr-XXXXXX");
    int err_fd = mkostemp(s->stderr_path, O_CLOEXEC);
    if (err_fd == -1)
        return -1;
    if (pipe2(pipe_fds, O_CLOEXEC) == -1) {
        int saved = errno;
        close(err_fd);
        unlink(s->stderr_path);
        errno = saved;
        return -1;
    }
    return err_fd;
}

enum outcome server_start(struct server *s, const struct server_spec *spec,
                          char *why, size_t why_len)
{
    const char *argv[MAX_ARGV];
    char words[512];
    int out[2];
    pid_t parent = getpid();

    memset(s, 0, sizeof(*s));
    s->stdout_fd = -1;
    s->wrapped = spec->wrap && getenv("RUNNER_WRAP") != NULL;
    s->third_party = !spec->announces;
    s->port = spec->port;
    s->stop_signal = spec->win32 ? SIGINT : SIGTERM;
    if (spec->win32 && (s->sockets_pid = find_wineserver()) == 0)
        return fail_with(why, why_len,
                         "no wineserver runs for WINEPREFIX=%s: run the "
                         "twins through `make test-win32`",
                         getenv("WINEPREFIX") ? getenv("WINEPREFIX") : "");
    build_argv(spec, words, sizeof(words), argv);
    int err_fd = open_outputs(s, out);
    if (err_fd == -1)
        return fail_with(why, why_len, "mkostemp/pipe2: %s", errname(errno));
    s->pid = fork();
    if (s->pid == 0)
        exec_server(spec, argv, out[1], err_fd, parent);
    int fork_errno = errno;
    close(out[1]);
    close(err_fd);
    s->stdout_fd = out[0];
    if (s->pid == -1) {
        server_release(s);
        return fail_with(why, why_len, "fork: %s", errname(fork_errno));
    }
    long long deadline =
        client_deadline(s->wrapped ? START_WRAPPED_MS : START_MS);
    enum outcome o = spec->announces
                         ? wait_announced(s, deadline, why, why_len)
                         : wait_connectable(s, deadline, why, why_len);
    if (o != OUTCOME_PASS) {
        server_kill(s);
        server_release(s);
    }
    return o;
}

/* Waits for the server to exit, at most ms; false if it did not. */
static bool wait_exit(struct server *s, int ms, int *status)
{
    long long deadline = client_deadline(ms);

    while (!server_exited(s, status)) {
        if (client_remaining_ms(deadline) == 0)
            return false;
        client_sleep_ms(5);
    }
    return true;
}

static enum outcome judge_exit(const struct server *s, int status, char *why,
                               size_t why_len)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return OUTCOME_PASS;
    /* socat ends with exit 143 or the signal itself: both are fine. */
    if (s->third_party &&
        ((WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) ||
         (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM)))
        return OUTCOME_PASS;
    if (WIFSIGNALED(status))
        return fail_with(why, why_len, "the server died of signal %d (%s)",
                         WTERMSIG(status), strsignal(WTERMSIG(status)));
    if (s->wrapped && WEXITSTATUS(status) == 99)
        return fail_with(why, why_len,
                         "valgrind reported errors or leaks (exit "
                         "99): see the server's stderr");
    return fail_with(why, why_len,
                     "the server exited with status %d after "
                     "%s (expected 0)",
                     WEXITSTATUS(status), sigabbrev_np(s->stop_signal));
}

enum outcome server_stop(struct server *s, char *why, size_t why_len)
{
    int status = 0, ms = s->wrapped ? STOP_WRAPPED_MS : STOP_MS;
    enum outcome o;

    if (server_exited(s, &status)) {
        char how[256] = "with status 0";
        judge_exit(s, status, how, sizeof(how));
        return fail_with(why, why_len,
                         "the server had already exited before "
                         "SIG%s (%s)",
                         sigabbrev_np(s->stop_signal), how);
    }
    if (kill(s->pid, s->stop_signal) == -1)
        return fail_with(why, why_len, "kill(SIG%s): %s",
                         sigabbrev_np(s->stop_signal), errname(errno));
    if (wait_exit(s, ms, &status)) {
        o = judge_exit(s, status, why, why_len);
    } else {
        server_kill(s);
        o = fail_with(why, why_len,
                      "the server did not exit within %d s of "
                      "SIG%s (killed)",
                      ms / 1000, sigabbrev_np(s->stop_signal));
    }
    /* Whatever it forked (socat's per-connection children) goes too. */
    if (killpg(s->pid, SIGKILL) == -1 && errno != ESRCH)
        return fail_with(why, why_len, "killpg: %s", errname(errno));
    return o;
}

void server_release(struct server *s)
{
    if (s->stdout_fd >= 0)
        close(s->stdout_fd);
    s->stdout_fd = -1;
    if (s->stderr_path[0] != '\0')
        unlink(s->stderr_path);
    s->stderr_path[0] = '\0';
}

struct target server_target(const struct server *s)
{
    return (struct target){.host = s->host,
                           .port = s->port,
                           .server_pid = s->pid,
                           .sockets_pid = s->sockets_pid};
}

int runner_free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

    if (fd == -1)
        return -1;
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
        port = addr_local_port(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return port;
}

/* A third-party row's command, with each "%d" replaced by the port. */
static void third_party_argv(const struct variant *v, int port,
                             char storage[][160], const char **argv)
{
    int n = 0;

    for (; n < VARIANT_ARGS && v->args[n] != NULL; n++) {
        const char *mark = strstr(v->args[n], "%d");
        if (mark == NULL) {
            argv[n] = v->args[n];
            continue;
        }
        snprintf(storage[n], sizeof(storage[n]), "%.*s%d%s",
                 (int)(mark - v->args[n]), v->args[n], port, mark + 2);
        argv[n] = storage[n];
    }
    argv[n] = NULL;
}

/* binary (a twin: wine binary), the row's options, then extra_args. */
static void model_argv(const struct run_ctx *ctx, const char *const *extra_args,
                       const char **argv)
{
    int n = 0;

    if (ctx->v->win32)
        argv[n++] = "wine";
    argv[n++] = ctx->binary;
    for (int i = 0; i < VARIANT_ARGS && ctx->v->args[i] != NULL; i++)
        argv[n++] = ctx->v->args[i];
    for (int i = 0;
         extra_args != NULL && extra_args[i] != NULL && n < MAX_ARGV - 4; i++)
        argv[n++] = extra_args[i];
    argv[n] = NULL;
}

enum outcome runner_start(const struct run_ctx *ctx, struct server *s,
                          const char *const *extra_args,
                          const struct runner_limits *limits, char *why,
                          size_t why_len)
{
    const char *argv[MAX_ARGV];
    char storage[VARIANT_ARGS][160];
    struct server_spec spec = {.argv = argv,
                               .announces = true,
                               .wrap = ctx->wrap,
                               .win32 = ctx->v->win32};

    if (limits != NULL) {
        spec.nofile = limits->nofile;
        spec.sigpending = limits->sigpending;
    }
    if (ctx->v->dir != NULL) {
        model_argv(ctx, extra_args, argv);
        return server_start(s, &spec, why, why_len);
    }
    spec.announces = false;
    spec.port = runner_free_port();
    if (spec.port == -1)
        return fail_with(why, why_len, "finding a free port: %s",
                         errname(errno));
    third_party_argv(ctx->v, spec.port, storage, argv);
    return server_start(s, &spec, why, why_len);
}

enum outcome runner_finish(struct server *s, enum outcome o, char *why,
                           size_t why_len)
{
    char stop_why[512] = "";
    enum outcome stopped = server_stop(s, stop_why, sizeof(stop_why));

    if (stopped != OUTCOME_PASS) {
        size_t len = strlen(why);
        if (o == OUTCOME_FAIL && len + 3 < why_len)
            snprintf(why + len, why_len - len, "; %s", stop_why);
        else
            snprintf(why, why_len, "%s", stop_why);
        o = OUTCOME_FAIL;
    }
    if (o == OUTCOME_FAIL)
        server_stderr_tail(s, 15, stderr);
    server_release(s);
    return o;
}
