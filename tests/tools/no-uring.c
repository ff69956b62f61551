/* no-uring.c - run a program where io_uring is refused (tests/tool-no-uring).
 *
 *   tests/tool-no-uring PROGRAM [ARGS...]
 *
 * Installs a seccomp filter that makes io_uring_setup(2) fail with EPERM,
 * then execs PROGRAM. That is what a machine with the sysctl
 * kernel.io_uring_disabled set, or a container under Docker's default
 * seccomp profile (moby#46762), does to a program (NOTES §7.12). The
 * runner's "uring-refused" scenario runs 07-completion-port/server under
 * it; as RUNNER_WRAP it runs a whole row that way (the rows then show up
 * as skipped, with the server's reason).
 *
 * A seccomp filter is a small classic-BPF program the kernel runs on every
 * system call: it sees struct seccomp_data (the architecture and the call
 * number) and returns a verdict. Ours: on this architecture, io_uring_setup
 * gets SECCOMP_RET_ERRNO | EPERM; everything else is allowed. The filter
 * is inherited across execve, and PR_SET_NO_NEW_PRIVS (required to install
 * one without CAP_SYS_ADMIN) makes sure the exec'd program cannot shed it.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

/* The architecture whose system call numbers the filter compares: a
 * number means a different call on another ABI, so check it first. */
#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define FILTER_ARCH AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define FILTER_ARCH AUDIT_ARCH_RISCV64
#else
#error "tool-no-uring: add this architecture's AUDIT_ARCH_* value"
#endif

int main(int argc, char **argv)
{
    struct sock_filter filter[] = {
        /* [0] A = arch; not ours: allow (another ABI's numbers differ) */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* [3] A = system call number; io_uring_setup: EPERM */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K,
                 SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {
        .len = sizeof(filter) / sizeof(filter[0]),
        .filter = filter,
    };

    log_init("no-uring", 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
        die("prctl(PR_SET_NO_NEW_PRIVS)");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == -1)
        die("prctl(PR_SET_SECCOMP)");
    execvp(argv[1], argv + 1);
    die("execvp(%s)", argv[1]);
}
