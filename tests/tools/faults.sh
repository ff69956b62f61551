#!/usr/bin/env bash
# tests/tools/faults.sh - `make faults`: every Linux row while the kernel
# "fails" the way it really can after start-up (NOTES §7.14).
#
# strace -e inject makes chosen system calls return an error without
# running them. For each row, two runs, each:
#   [F1] start the debug server under `strace -f` with the row's faults:
#        accept4 fails with a pending network error (ECONNABORTED, retried
#        at once) every 4th call in the first run, with ENOBUFS (out of
#        memory: the accept pause) every 50th in the second; every second
#        call of the row's recv, send and wait calls fails with EINTR, from
#        the 10th on (the dynamic loader read()s libc before main); 07's
#        io_uring_enter fails with EAGAIN
#        ("wait for some completions and try again") in the first run and
#        EBUSY (completion queue overflow not yet flushed) in the second;
#        in the second run the select and poll waits fail with ENOMEM
#        ("unable to allocate memory for internal tables") every 5th call
#        instead of EINTR, and the server must say it is retrying;
#   [F2] run the client's whole suite against it (an iterative row: the
#        scenarios that need no second client served at once);
#   [F3] SIGINT: want exit 0 within 10 s and the summary line, and count
#        the injected errors in strace's log: a run that injected none
#        proves nothing, and fails.
# Every wait is bounded; traffic stays on 127.0.0.1.
#
# Usage: tests/tools/faults.sh [MODEL]    (make faults [MODEL=02])
set -euo pipefail

cd "$(dirname "$0")/../.."  # the repository: paths below are from there

CLIENT=tests/echo-client
OUT=build/faults
SUITE_TIMEOUT=300  # seconds for one suite run, strace's slowdown included

# The rows: name | server and options | the calls that get EINTR (besides
# accept4, which gets the run's accept error; 07 accepts inside io_uring)
# | the waits that get ENOMEM instead in the second run (select and poll
# may fail so; epoll_wait, sigwaitinfo and aio_suspend may not).
# 06's recv and send are glibc's AIO helper threads' pread/read and
# pwrite/write; its waiter sleeps in aio_suspend, a futex inside glibc:
# not injected, because glibc aborts ("The futex facility returned an
# unexpected error code") on an EINTR the kernel never returns for a
# FUTEX_WAKE, and strace cannot tell the two operations apart.
ROWS=(
    "01-blocking/iterative|01-blocking/server --mode iterative|recvfrom,sendto"
    "01-blocking/threads|01-blocking/server --mode threads|recvfrom,sendto"
    "02-select|02-select/server|recvfrom,sendto,pselect6|pselect6"
    "03-poll|03-poll/server|recvfrom,sendto,poll,ppoll|ppoll"
    "04-epoll-events/level|04-epoll-events/server|recvfrom,sendto,epoll_wait,epoll_pwait,read"
    "04-epoll-events/edge|04-epoll-events/server --edge|recvfrom,sendto,epoll_wait,epoll_pwait,read"
    "05-signal-driven|05-signal-driven/server|recvfrom,sendto,rt_sigtimedwait,poll,ppoll"
    "06-aio-overlapped/wait|06-aio-overlapped/server --notify wait|read,pread64,pwrite64,poll|poll"
    "06-aio-overlapped/callback|06-aio-overlapped/server --notify callback|read,pread64,pwrite64,poll|poll"
    "07-completion-port/t1|07-completion-port/server -t 1||poll"
    "07-completion-port/t2|07-completion-port/server -t 2||poll"
)
# The scenarios an iterative server cannot pass (it serves one client at a
# time): the runner checks serialization for those instead.
CONCURRENT=" concurrent-clients slow-reader slowloris many-idle "

FILTER=${1:-}
failures=0 runs=0

field() { cut -d'|' -f"$2" <<<"$1"; }

# faults_for ROW RUN: strace's -e options for that run.
faults_for() {
    local row=$1 run=$2 calls accept_fault uring_err short_of_memory=""
    calls=$(field "$row" 3)
    if ((run == 2)); then
        short_of_memory=$(field "$row" 4)
        # Those get ENOMEM, not EINTR: strace takes one fault per call.
        calls=$(tr ',' '\n' <<<"$calls" |
                grep -vxF -f <(tr ',' '\n' <<<"$short_of_memory") |
                paste -sd, - || true)
    fi
    # ENOBUFS pauses accepting for 100 ms (NOTES §3, one EMFILE pause): every
    # 50th accept, or many-idle's 900 connects would wait 20 s in the backlog.
    if ((run == 1)); then
        accept_fault=ECONNABORTED:when=3+4 uring_err=EAGAIN
    else
        accept_fault=ENOBUFS:when=10+50 uring_err=EBUSY
    fi
    local trace=accept4 opts=(-e "inject=accept4:error=$accept_fault")
    if [[ -n $calls ]]; then
        trace+=",$calls"
        opts+=(-e "inject=$calls:error=EINTR:when=10+2")
    fi
    if [[ -n $short_of_memory ]]; then
        trace+=",$short_of_memory"
        opts+=(-e "inject=$short_of_memory:error=ENOMEM:when=10+5")
    fi
    if [[ $(field "$row" 1) == 07-* ]]; then
        trace+=",io_uring_enter"
        opts+=(-e "inject=io_uring_enter:error=$uring_err:when=5+3")
    fi
    printf '%s\n' -e "trace=$trace" "${opts[@]}"
}

# suite_for ROW PORT: the client's suite, whole or (iterative) in parts.
suite_for() {
    local row=$1 port=$2 name status=0
    if [[ $(field "$row" 1) != */iterative ]]; then
        timeout "$SUITE_TIMEOUT" "$CLIENT" suite -p "$port"
        return
    fi
    for name in $("$CLIENT" --help 2>&1 | sed -n '/^scenarios:/,$p' | tail -n +2); do
        [[ $CONCURRENT == *" $name "* ]] && continue
        timeout "$SUITE_TIMEOUT" "$CLIENT" suite --only "$name" -p "$port" ||
            status=1
    done
    return $status
}

# run_one ROW RUN: [F1]-[F3]; returns 0 iff the run passed.
run_one() {
    local row=$1 run=$2 name log pid server port="" i
    name=$(field "$row" 1)
    log=$OUT/${name//\//-}.run$run
    read -r -a server <<<"$(field "$row" 2)"
    mapfile -t faults < <(faults_for "$row" "$run")
    echo "== $name run $run: ${faults[*]}"
    # [F1] only what it needs: no stdin, stdout and stderr to files.
    strace -f -qq -o "$log.strace" "${faults[@]}" "${server[@]}" -p 0 \
        </dev/null >"$log.out" 2>"$log.err" &
    pid=$!
    for ((i = 0; i < 100; i++)); do  # at most 10 s to listen
        port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log.out")
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $port ]]; then
        echo "FAIL $name run $run: no listening line; stderr:"
        tail -n 5 "$log.err" | sed 's/^/    /'
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 1
    fi
    # [F2]
    local suite_status=0
    suite_for "$row" "$port" >"$log.suite" 2>&1 || suite_status=$?
    # [F3] SIGINT to the server itself (strace's child), then its status,
    # which strace exits with.
    local server_pid
    server_pid=$(pgrep -P "$pid" | head -n 1 || true)
    [[ -n $server_pid ]] && kill -INT "$server_pid"
    local exit_status=0
    if ! timeout 10 tail --pid="$pid" -f /dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        exit_status=timeout
    fi
    [[ $exit_status == timeout ]] || { wait "$pid" || exit_status=$?; }
    local injected
    injected=$(grep -c 'INJECTED' "$log.strace" || true)
    local problems=()
    ((suite_status == 0)) || problems+=("the suite failed: $(grep -E '^FAIL' "$log.suite" | head -n 3 | tr '\n' ' ')")
    [[ $exit_status == 0 ]] || problems+=("exit status $exit_status, not 0")
    grep -q 'shutdown:' "$log.err" || problems+=("no summary line")
    ((injected > 0)) || problems+=("nothing was injected")
    if ((run == 2)) && [[ -n $(field "$row" 4) ]]; then
        grep -q 'ENOMEM.*retrying every' "$log.err" ||
            problems+=("no 'retrying' line for ENOMEM")
    fi
    if ((${#problems[@]})); then
        echo "FAIL $name run $run ($injected errors injected): ${problems[*]}"
        echo "    server's stderr (last lines):"
        tail -n 5 "$log.err" | sed 's/^/    /'
        return 1
    fi
    echo "ok   $name run $run: $(grep -c '^PASS' "$log.suite") scenarios passed," \
        "$injected errors injected, exit 0"
}

main() {
    mkdir -p "$OUT"
    command -v strace >/dev/null || { echo "faults: strace is not installed" >&2; exit 1; }
    local row run
    for row in "${ROWS[@]}"; do
        [[ -z $FILTER || $(field "$row" 1) == "$FILTER"* ]] || continue
        for run in 1 2; do
            runs=$((runs + 1))
            run_one "$row" "$run" || failures=$((failures + 1))
        done
    done
    if ((runs == 0)); then
        echo "faults: no row matches '$FILTER'" >&2
        exit 2
    fi
    echo "faults: $((runs - failures)) of $runs runs passed (logs in $OUT/)"
    ((failures == 0))
}

main
