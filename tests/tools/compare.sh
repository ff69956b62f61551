#!/usr/bin/env bash
# tests/tools/compare.sh - `make compare`: every model under the same workloads.
#
# For each workload, for each row (a model in one mode, or a reference
# server on libev or libuv), in turn:
#   [C1] start a fresh release server on a free port (-p 0), pinned to CPU 1;
#   [C2] drive it with `echo-client bench --server-pid`, pinned to CPU 0:
#        bench counts messages over its measured period and samples the
#        server's /proc at that period's two ends (tests/client/sample.h), so
#        server CPU per message divides like by like;
#   [C3] stop the server with SIGTERM and want exit status 0;
#   [C4] keep one line in compare/results.csv.
# Then, when strace is installed, a small fixed run per row counts system
# calls per echoed message [C5]; and at the end the tables [C6], the charts
# [C7] and the issue's targets checked against this run's figures [C8].
#
# Workload-major order: all rows of one workload run close together in
# time, so a neighbour's load on this shared machine shifts them alike and
# the ratios between rows (what the table is for) stay meaningful.
#
# Every wait is bounded (timeout, or a loop with a count), every socket is
# on 127.0.0.1, and a row that cannot run a workload is a table row saying
# why (not built, FD_SETSIZE, failed to start...), never a hang.
#
# Usage: tests/tools/compare.sh [--quick]     (make compare [QUICK=1])
set -euo pipefail

cd "$(dirname "$0")/../.."  # the repository: paths below are from there

BUILD=build/release
CLIENT=$BUILD/tests/echo-client
OUT=compare
LOGS=$OUT/logs
RESULTS=$OUT/results.csv

QUICK=0
if [[ ${1:-} == --quick ]]; then
    QUICK=1
elif [[ $# -gt 0 ]]; then
    echo "usage: tests/tools/compare.sh [--quick]" >&2
    exit 2
fi

# ---------------------------------------------------------------- settings
# Budget (2 cores): about 110 runs of warm-up + measure + ~0.4 s to start,
# stop and sample, plus the 10000-connection runs' connects: the full run
# takes about 8 minutes; quick (48 runs) about 1.5 with the build.
if ((QUICK)); then
    WARMUP=0.2 DURATION=0.7 STRACE_DURATION=0.3
else
    WARMUP=0.5 DURATION=3 STRACE_DURATION=1
fi
BENCH_RAMP_MAX=5   # bench waits at most this long for first echoes
CLIENT_BOUND=0.90  # client CPU / measured seconds at or above: client-bound
SELECT_MAX=1020    # 02-select's FD_SETSIZE (1024) less its own descriptors

# The rows: name | server binary under build/release | its options.
ROWS=(
    "01-blocking/iterative|01-blocking/server|--mode iterative"
    "01-blocking/threads|01-blocking/server|--mode threads"
    "02-select|02-select/server|"
    "03-poll|03-poll/server|"
    "04-epoll-events/level|04-epoll-events/server|"
    "04-epoll-events/edge|04-epoll-events/server|--edge"
    "05-signal-driven|05-signal-driven/server|"
    "06-aio-overlapped/wait|06-aio-overlapped/server|--notify wait"
    "06-aio-overlapped/callback|06-aio-overlapped/server|--notify callback"
    "07-completion-port|07-completion-port/server|"
    "07-completion-port/t2|07-completion-port/server|-t 2"
    "libev|tests/ref/libev-echo|"
    "libuv|tests/ref/libuv-echo|"
)

# The workloads: name | active connections | idle ones | bytes | mode |
# what it shows. The sweep points (and throughput-64B, the 50 point) make
# the charts; quick mode keeps the workloads the targets are judged on, and
# crowd (select's scan).
WORKLOADS=(
    "latency|1|0|64|closed|1 connection, 64 B ping-pong"
    "throughput-64B|50|0|64|closed|50 connections x 64 B, closed loop"
    "throughput-4KiB|50|0|4096|closed|50 connections x 4 KiB, closed loop"
    "crowd|50|950|64|closed|1000 connections, 50 of them active x 64 B"
    "bulk|4|0|65536|stream|4 connections streaming 64 KiB writes"
    "sweep-10|10|0|64|closed|10 connections x 64 B (chart)"
    "sweep-100|100|0|64|closed|100 connections x 64 B (chart)"
    "sweep-1000|1000|0|64|closed|1000 connections x 64 B (chart)"
    "sweep-10000|10000|0|64|closed|10000 connections x 64 B (chart)"
)
QUICK_WORKLOADS=" latency throughput-64B crowd sweep-1000 "

# The strace run: 10 connections x 64 B, every system call counted.
STRACE_CONNS=10

# Pinning: server on CPU 1, load generator on CPU 0, so neither steals the
# other's core (on one CPU they share it and nothing is pinned).
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 1)
    LOAD_PIN=(taskset -c 0)
    PINNING="server on CPU 1, load on CPU 0"
else
    SERVER_PIN=()
    LOAD_PIN=()
    PINNING="one CPU: server and load share it (not pinned)"
fi

# ---------------------------------------------------------------- helpers
progress() { printf '%s\n' "$*" >&2; }

# field LINE N: the Nth |-separated field of a table line.
field() { cut -d'|' -f"$2" <<<"$1"; }

# alive PID: is it running? (A zombie, exited but not yet waited for, is
# not; /proc/PID/stat's state comes after "(comm) ".)
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# calc EXPR: floating-point arithmetic (bash has only integers).
calc() { awk "BEGIN { printf \"%.6g\", ($1) }"; }

# A reason or note goes into one CSV field: no commas, no newlines.
csv_safe() { tr ',\n' '; ' <<<"$1" | sed 's/ *$//'; }

# cpu_ticks: /proc/stat's first line, "steal total" in clock ticks (steal:
# time the hypervisor gave this VM's CPUs to other guests).
cpu_ticks() {
    awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }' \
        /proc/stat
}

machine_info() {
    local cpu mem
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "machine: $(uname -srm), ${cpu:-unknown CPU}, $(nproc) CPUs, $mem"
    echo "run: $(date -u '+%Y-%m-%d %H:%M UTC'), $PINNING," \
        "warm-up ${WARMUP} s + ${DURATION} s measured per run$(
            ((QUICK)) && echo ' (QUICK)')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" \
        "(other work on the machine makes every figure noisier)"
}

# ---------------------------------------------------------------- [C1] [C3]
# start_server LOG BINARY [OPTIONS...]: sets SERVER_PID and SERVER_PORT, or
# returns 1 with the reason in WHY. The port comes from the one stdout line,
# "listening on 127.0.0.1:PORT", that every server prints once it listens.
start_server() {
    local log=$1 line="" i
    shift
    : >"$TMP/server.out"
    "${SERVER_PIN[@]}" "$@" -p 0 >"$TMP/server.out" 2>"$log" &
    SERVER_PID=$!
    for ((i = 0; i < 250; i++)); do # at most 5 s
        line=$(head -n1 "$TMP/server.out")
        [[ $line == "listening on "* ]] && break
        alive "$SERVER_PID" || break
        sleep 0.02
    done
    if [[ $line != "listening on "* ]]; then
        WHY="did not start: $(tail -n1 "$log")"
        stop_server
        return 1
    fi
    SERVER_PORT=${line##*:}
}

# signal_and_wait SIG PID: send SIG, then wait at most 5 s for PID to end;
# SIGKILL it if it has not. Returns 1 when it had to be killed.
signal_and_wait() {
    local i
    kill "-$1" "$2" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$2" || return 0
        sleep 0.05
    done
    kill -KILL "$2" 2>/dev/null || true
    return 1
}

# stop_server: SIGTERM, then at most 5 s for the exit (a server shuts down
# within 2 s, NOTES §1). Sets SERVER_EXIT to the exit status, or "hung" (then killed).
stop_server() {
    local rc=0
    if ! signal_and_wait TERM "$SERVER_PID"; then
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_EXIT=hung SERVER_PID=""
        return
    fi
    wait "$SERVER_PID" 2>/dev/null || rc=$?
    SERVER_EXIT=$rc SERVER_PID=""
}

# ---------------------------------------------------------------- [C2]
# run_bench CONNS IDLE SIZE MODE: bench's CSV line in $TMP/bench.csv, its
# stderr in $TMP/bench.err; returns bench's exit status (124: timed out).
run_bench() {
    local args=(bench -c "$1" -i "$2" -s "$3" -w "$WARMUP" -d "$DURATION"
        --csv --server-pid "$SERVER_PID" -p "$SERVER_PORT")
    [[ $4 == stream ]] && args+=(--stream)
    # Bound: warm-up, its wait for first echoes, the run, and 20 s for
    # connecting 10000 sockets and reading 10000 threads' /proc.
    local limit
    limit=$(calc "$WARMUP + $BENCH_RAMP_MAX + $DURATION + 20")
    timeout "$limit" "${LOAD_PIN[@]}" "$CLIENT" "${args[@]}" \
        >"$TMP/bench.csv" 2>"$TMP/bench.err"
}

# skip_reason ROW_NAME BINARY CONNS IDLE WORKLOAD: why this row cannot run
# this workload (empty: it can).
skip_reason() {
    local name=$1 bin=$2 total=$(($3 + $4)) workload=$5
    if [[ ! -x $BUILD/$bin ]]; then
        echo "not built ($BUILD/$bin)"
    elif [[ $name == */iterative && $workload != latency ]]; then
        echo "n/a (one client at a time)"
    elif [[ $name == 02-select ]] && ((total > SELECT_MAX)); then
        echo "n/a (FD_SETSIZE)"
    elif ((total + 64 > NOFILE)); then
        echo "n/a (RLIMIT_NOFILE $NOFILE)"
    fi
    return 0
}

RESULTS_HEADER="workload,model,status,note,conns,idle,size,seconds,messages,\
msgs_per_s,mb_per_s,p50_us,p99_us,p999_us,errors,starved,client_cpu_s,\
client_bound,server_cpu_s,cpu_us_per_msg,vol_cs,invol_cs,threads,\
peak_rss_kib,server_fds,server_exit,syscalls_per_msg"

# record WORKLOAD MODEL STATUS NOTE [the measured fields...]: one CSV line.
record() {
    local workload=$1 model=$2 status=$3 note
    note=$(csv_safe "$4")
    shift 4
    local IFS=,
    echo "$workload,$model,$status,$note,$*" >>"$RESULTS"
}

# record_skip WORKLOAD MODEL STATUS WHY: a line with no figures.
record_skip() {
    local empty
    empty=$(printf ',%.0s' {1..22}) # 23 empty fields after the note
    record "$1" "$2" "$3" "$4" "$empty"
}

# [C4] Turns bench's CSV line into a results line, with the figures derived
# from it: server CPU per message, the client-bound mark, and notes.
record_bench() {
    local workload=$1 model=$2 total=$3 exit=$4 note=""
    local mode conns idle size seconds messages mps mbps p50 p99 p999 errors
    local ccpu starved scpu svcs sivcs sthreads srss sfds
    IFS=, read -r mode conns idle size seconds messages mps mbps p50 p99 p999 \
        errors ccpu starved scpu svcs sivcs sthreads srss sfds \
        <"$TMP/bench.csv"
    local per_msg="" bound=0
    if [[ -n $scpu ]] && ((messages > 0)); then
        per_msg=$(calc "$scpu * 1e6 / $messages")
    fi
    [[ $(calc "$ccpu >= $CLIENT_BOUND * $seconds") == 1 ]] && bound=1
    ((errors > 0)) && note+="$errors connection errors; "
    ((starved > 0)) && note+="$starved starved; "
    [[ -n $sfds ]] && ((sfds < total)) &&
        note+="server held only $sfds descriptors; "
    [[ $exit != 0 ]] && note+="exit $exit after SIGTERM; "
    [[ -z $scpu ]] && note+="server not sampled; "
    record "$workload" "$model" ok "${note%; }" "$conns" "$idle" "$size" \
        "$seconds" "$messages" "$mps" "$mbps" "$p50" "$p99" "$p999" \
        "$errors" "$starved" "$ccpu" "$bound" "$scpu" "$per_msg" "$svcs" \
        "$sivcs" "$sthreads" "$srss" "$sfds" "$exit" ""
    progress "      $mps msgs/s, server ${per_msg:-?} us/msg$(
        ((bound)) && echo ', client-bound')${note:+, ${note%; }}"
}

# run_one WORKLOAD_LINE ROW_LINE: [C1]..[C4] for one cell of the tables.
run_one() {
    local workload name bin opts conns idle size mode why log
    workload=$(field "$1" 1) conns=$(field "$1" 2) idle=$(field "$1" 3)
    size=$(field "$1" 4) mode=$(field "$1" 5)
    name=$(field "$2" 1) bin=$(field "$2" 2) opts=$(field "$2" 3)
    why=$(skip_reason "$name" "$bin" "$conns" "$idle" "$workload")
    if [[ -n $why ]]; then
        record_skip "$workload" "$name" skipped "$why"
        progress "      $why"
        return
    fi
    log=$LOGS/$workload-${name//\//-}.err
    # -c: exactly the workload's connections, so that servers sizing their
    # pools by -c (06's helper threads, 07's contexts) are not charged for
    # capacity nobody uses (and 06's limit of 10000 still admits the sweep).
    # shellcheck disable=SC2086 # opts is a list of words
    if ! start_server "$log" "$BUILD/$bin" -c $((conns + idle)) $opts; then
        record_skip "$workload" "$name" failed "$WHY"
        progress "      failed: $WHY"
        return
    fi
    local rc=0
    run_bench "$conns" "$idle" "$size" "$mode" || rc=$?
    stop_server
    if [[ ! -s $TMP/bench.csv ]]; then
        why="bench $( ((rc == 124)) && echo 'timed out' ||
            echo "failed: $(tail -n1 "$TMP/bench.err")")"
        [[ $SERVER_EXIT != 0 ]] && why+="; server exit $SERVER_EXIT"
        record_skip "$workload" "$name" failed "$why"
        progress "      $why (logs: $log)"
        return
    fi
    record_bench "$workload" "$name" $((conns + idle)) "$SERVER_EXIT"
}

# ---------------------------------------------------------------- [C5]
# strace_attach PID: attaches `strace -f -c` to every thread of the server
# and waits (at most 5 s) until it is tracing. Sets STRACE_PID.
strace_attach() {
    local i
    strace -f -c -o "$TMP/strace.txt" -p "$1" 2>"$TMP/strace.err" &
    STRACE_PID=$!
    for ((i = 0; i < 250; i++)); do
        grep -q 'TracerPid:[[:space:]]*[1-9]' "/proc/$1/status" 2>/dev/null &&
            return 0
        alive "$STRACE_PID" || break
        sleep 0.02
    done
    WHY="strace could not attach: $(tail -n1 "$TMP/strace.err")"
    strace_detach
    return 1
}

# strace_detach: SIGINT makes strace detach and write its summary.
strace_detach() {
    signal_and_wait INT "$STRACE_PID" || true
    wait "$STRACE_PID" 2>/dev/null || true
    STRACE_PID=""
}

# strace_count MESSAGES: from strace -c's table (the calls column is the
# 4th; the name is last), "TOTAL_PER_MSG|name per-msg, name per-msg, ..."
# with the three most frequent calls.
strace_count() {
    awk -v msgs="$1" '
        $4 ~ /^[0-9]+$/ && NF >= 5 && $NF != "total" {
            calls[$NF] = $4; total += $4
        }
        END {
            n = 0
            for (c in calls) order[++n] = c
            for (i = 1; i <= n; i++)          # a small sort, by count
                for (j = i + 1; j <= n; j++)
                    if (calls[order[j]] > calls[order[i]]) {
                        t = order[i]; order[i] = order[j]; order[j] = t
                    }
            top = ""
            for (i = 1; i <= n && i <= 3; i++)
                top = top sprintf("%s%s %.2f", i > 1 ? " " : "", order[i],
                                  calls[order[i]] / msgs)
            printf "%.2f|%s\n", total / msgs, top
        }' "$TMP/strace.txt"
}

# strace_one ROW_LINE: one small fixed run with every system call counted.
# Messages are the server's own count (its shutdown line's bytes echoed,
# divided by the message size): every echo of this server's life happened
# while strace was attached. Connection set-up calls (10 accepts...) are
# included and negligible against thousands of messages.
strace_one() {
    local name bin opts log
    name=$(field "$1" 1) bin=$(field "$1" 2) opts=$(field "$1" 3)
    local why
    why=$(skip_reason "$name" "$bin" "$STRACE_CONNS" 0 syscalls)
    if [[ -n $why ]]; then
        record_skip syscalls "$name" skipped "$why"
        progress "      $why"
        return
    fi
    log=$LOGS/syscalls-${name//\//-}.err
    # shellcheck disable=SC2086 # opts is a list of words
    if ! start_server "$log" "$BUILD/$bin" -c "$STRACE_CONNS" $opts; then
        record_skip syscalls "$name" failed "$WHY"
        return
    fi
    if ! strace_attach "$SERVER_PID"; then
        stop_server
        record_skip syscalls "$name" failed "$WHY"
        progress "      $WHY"
        return
    fi
    local rc=0 saved_duration=$DURATION
    DURATION=$STRACE_DURATION
    run_bench "$STRACE_CONNS" 0 64 closed || rc=$?
    DURATION=$saved_duration
    strace_detach
    stop_server
    local bytes messages counted
    bytes=$(grep -o '[0-9]* bytes echoed' "$log" | tail -n1 | cut -d' ' -f1)
    messages=$((${bytes:-0} / 64))
    if ((rc != 0 || messages == 0)) || [[ ! -s $TMP/strace.txt ]]; then
        record_skip syscalls "$name" failed \
            "strace run failed (bench exit $rc; $messages messages)"
        progress "      strace run failed (logs: $log)"
        return
    fi
    counted=$(strace_count "$messages")
    record syscalls "$name" ok "${counted#*|}" "$STRACE_CONNS" 0 64 "" \
        "$messages" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" "" \
        "$SERVER_EXIT" "${counted%%|*}"
    progress "      ${counted%%|*} syscalls/msg (${counted#*|})"
}

# ---------------------------------------------------------------- [C6]
# print_table WORKLOAD_LINE: the workload's rows from results.csv.
print_table() {
    local workload desc
    workload=$(field "$1" 1) desc=$(field "$1" 6)
    grep -q "^$workload," "$RESULTS" || return 0
    echo
    echo "== $workload: $desc"
    awk -F, -v w="$workload" -v stream="$([[ $(field "$1" 5) == stream ]] &&
        echo 1 || echo 0)" '
        BEGIN {
            printf "%-27s %8s %7s %7s %7s %8s %4s %4s %6s %6s %5s %7s  %s\n",
                "model", "msgs/s", "MB/s", "p50 us", "p99 us", "CPU us/m",
                "srv%", "cli%", "vcs/m", "ivcs/m", "thr", "RSS MiB", "note"
        }
        $1 != w { next }
        $3 != "ok" {
            printf "%-27s %s\n", $2, ($3 == "skipped" ? "" : $3 ": ") $4
            next
        }
        {
            m = $9 > 0 ? $9 : 1
            lat50 = stream ? "-" : sprintf("%.0f", $12)
            lat99 = stream ? "-" : sprintf("%.0f", $13)
            cpu = $20 == "" ? "?" : sprintf("%.2f", $20)
            srv = $19 == "" ? "?" : sprintf("%.0f", 100 * $19 / $8)
            printf "%-27s %8.0f %7.2f %7s %7s %8s %4s %4.0f %6.3f %6.3f %5s " \
                "%7.1f  %s%s\n", $2, $10, $11, lat50, lat99, cpu, srv,
                100 * $17 / $8, $21 / m, $22 / m, $23, $24 / 1024,
                $18 == 1 ? "* " : "", $4
        }' "$RESULTS"
}

print_syscalls_table() {
    grep -q '^syscalls,' "$RESULTS" || return 0
    echo
    echo "== syscalls: strace -f -c, $STRACE_CONNS connections x 64 B," \
        "${STRACE_DURATION} s (slowed by strace: count calls, not time)"
    awk -F, '
        BEGIN { printf "%-27s %9s %9s  %s\n", "model", "messages",
                "calls/msg", "most frequent, per message" }
        $1 != "syscalls" { next }
        $3 != "ok" {
            printf "%-27s %s\n", $2, ($3 == "skipped" ? "" : $3 ": ") $4
            next
        }
        { printf "%-27s %9d %9.2f  %s\n", $2, $9, $27, $4 }' "$RESULTS"
}

print_legend() {
    cat <<EOF

How to read these tables (README.md, "Reading make compare"):
  msgs/s, MB/s   echoed messages (or 64 KiB blocks, bulk) and 10^6 bytes per second
  p50/p99 us     round-trip latency of one message, from bench's histogram
  CPU us/m       server CPU (user+system, all threads) per message: the
                 steadiest figure on a shared 2-core machine
  srv% cli%      CPU the server / the load generator used, per second of the run:
                 msgs/s measures a model only where one of them is near 100;
                 both well below means the machine's other work took the CPUs
  vcs/m ivcs/m   the server's voluntary / involuntary context switches per message
  thr, RSS MiB   the server's most threads, and its peak RSS (VmHWM)
  *              client-bound: bench used >= ${CLIENT_BOUND/0./}% of its CPU, so msgs/s
                 is the load generator's limit, not the server's; compare CPU us/m
  starved N      N connections completed no message in the measured period
  07-completion-port runs its default -t, one worker per CPU it may run on:
  pinned to one CPU, one worker; /t2 runs two workers sharing the port on that
  one CPU, to show what sharing the completion queue costs (its locks).
EOF
}

# ---------------------------------------------------------------- [C7]
# The sweep: msgs/s and server CPU per message against connections, one
# line per row, from the sweep points and throughput-64B (the 50 point).
plot_charts() {
    if ! command -v gnuplot >/dev/null; then
        progress "compare: gnuplot not installed: no charts"
        return
    fi
    local data=$OUT/sweep.dat plots_tp="" plots_cpu="" index=0 name style
    # 13 rows want 13 colours (gnuplot's default cycle has 8); the
    # reference servers are dashed, so they read as the yardstick.
    local colours=(9400d3 009e73 56b4e9 e69f00 f0e442 0072b2 d55e00 cc79a7
        000000 808000 8b4513 2f4f4f 696969)
    : >"$data"
    for row in "${ROWS[@]}"; do
        name=$(field "$row" 1)
        awk -F, -v m="$name" '$2 == m && $3 == "ok" && $6 == 0 && $7 == 64 &&
            ($1 == "throughput-64B" || $1 ~ /^sweep-/) {
                print $5, $10, $20 }' "$RESULTS" | sort -n >"$TMP/points"
        [[ -s $TMP/points ]] || continue
        { echo "# $name"; cat "$TMP/points"; printf '\n\n'; } >>"$data"
        style="with linespoints lw 2 lc rgb '#${colours[index % 13]}'"
        [[ $name == lib* ]] && style+=" dashtype 2"
        plots_tp+="${plots_tp:+, }'$data' index $index using 1:2 $style"
        plots_tp+=" title '$name'"
        plots_cpu+="${plots_cpu:+, }'$data' index $index using 1:3 $style"
        plots_cpu+=" title '$name'"
        index=$((index + 1))
    done
    if ((index == 0)); then
        return
    fi
    # pngcairo draws smoother lines; gnuplot-nox may have only png (libgd).
    # CPU per message is drawn on a log scale: 06's rows cost ten times the
    # others', and a linear axis would flatten every other line.
    local terminal=png
    gnuplot -e 'set terminal' 2>&1 | grep -qw pngcairo && terminal=pngcairo
    gnuplot <<EOF
set terminal $terminal size 1000,600 noenhanced
set logscale x
set xlabel 'connections (each a closed loop of 64-byte messages)'
set grid
set key outside right top
set output '$OUT/throughput.png'
set title 'make compare: echoed messages per second'
set ylabel 'messages/s'
set yrange [0:*]
plot $plots_tp
set output '$OUT/cpu.png'
set title 'make compare: server CPU per message (lower is better)'
set ylabel 'server CPU microseconds per message (log scale)'
set logscale y
set yrange [*:*]
plot $plots_cpu
EOF
    progress "compare: charts in $OUT/throughput.png and $OUT/cpu.png"
}

# ---------------------------------------------------------------- [C8]
# The issue's targets, as ratios within this run.
print_targets() {
    local order="" row
    for row in "${ROWS[@]}"; do
        order+="$(field "$row" 1) "
    done
    echo
    echo "Targets (issue 6), ratios within this run:"
    awk -F, -v order="$order" '
        $3 == "ok" { mps[$1, $2] = $10; cpu[$1, $2] = $20; p50[$1, $2] = $12
                     seen[$2] = 1 }
        function have(w, m) { return ((w, m) in cpu) && cpu[w, m] != "" }
        function verdict(ok, text) {
            printf "  %-4s %s\n", ok ? "ok" : "MISS", text
            misses += !ok
        }
        function vs_ref(w, m, ref, cpu_x, mps_x) {
            if (!have(w, m) || !have(w, ref)) {
                printf "  n/a  %s %s vs %s: not measured\n", w, m, ref
                return
            }
            if (cpu_x > 0)
                verdict(cpu[w, m] <= cpu_x * cpu[w, ref],
                    sprintf("%s %s CPU/msg: %.2f us = %.2f x %s %.2f " \
                        "(target <= %.1f)", w, m, cpu[w, m],
                        cpu[w, m] / cpu[w, ref], ref, cpu[w, ref], cpu_x))
            if (mps_x > 0)
                verdict(mps[w, m] >= mps_x * mps[w, ref],
                    sprintf("%s %s msgs/s: %.0f = %.2f x %s %.0f " \
                        "(target >= %.1f)", w, m, mps[w, m],
                        mps[w, m] / mps[w, ref], ref, mps[w, ref], mps_x))
        }
        function beats(w, m, ref) {
            if (!have(w, m) || !have(w, ref)) return
            verdict(cpu[w, m] < cpu[w, ref] && mps[w, m] > mps[w, ref],
                sprintf("%s %s beats %s: CPU/msg %.2f < %.2f us and " \
                    "%.0f > %.0f msgs/s", w, m, ref, cpu[w, m], cpu[w, ref],
                    mps[w, m], mps[w, ref]))
        }
        END {
            split("04-epoll-events/level 04-epoll-events/edge " \
                  "07-completion-port", fast, " ")
            split("throughput-64B sweep-1000", loads, " ")
            for (l = 1; l in loads; l++)
                for (f = 1; f in fast; f++) {
                    vs_ref(loads[l], fast[f], "libev", 1.1, 0.9)
                    beats(loads[l], fast[f], "libuv")
                }
            split("01-blocking/threads 02-select 03-poll", slow, " ")
            for (s = 1; s in slow; s++)
                vs_ref("throughput-64B", slow[s], "04-epoll-events/level",
                    1.5, 0)
            # Latency: the models (01..07, not the reference rows) in
            # table order; the best of them sets the bar; AIO is exempt.
            n = split(order, rows, " ")
            best = ""
            for (i = 1; i <= n; i++)
                if (rows[i] ~ /^0[1-7]-/ && have("latency", rows[i]) &&
                    (best == "" || p50["latency", rows[i]] < p50["latency", best]))
                    best = rows[i]
            for (i = 1; i <= n; i++) {
                m = rows[i]
                if (m !~ /^0[1-7]-/ || m ~ /^06-/ || !have("latency", m))
                    continue
                verdict(p50["latency", m] <= 1.2 * p50["latency", best],
                    sprintf("latency %s p50: %.1f us = %.2f x that of the best " \
                        "model (%s, %.1f; target <= 1.2)", m,
                        p50["latency", m],
                        p50["latency", m] / p50["latency", best], best,
                        p50["latency", best]))
            }
            printf "  %d missed\n", misses
        }' "$RESULTS"
}

# ---------------------------------------------------------------- main
SERVER_PID="" STRACE_PID="" TMP=""

# On any exit (an error, ^C): no server or strace left running.
cleanup() {
    [[ -n $STRACE_PID ]] && kill -KILL "$STRACE_PID" 2>/dev/null
    [[ -n $SERVER_PID ]] && kill -KILL "$SERVER_PID" 2>/dev/null
    [[ -n $TMP ]] && rm -rf "$TMP"
    return 0
}

main() {
    local started=$SECONDS ticks_at_start
    ticks_at_start=$(cpu_ticks)
    if [[ ! -x $CLIENT ]]; then
        echo "compare: $CLIENT is not built (run make compare)" >&2
        exit 1
    fi
    mkdir -p "$OUT" "$LOGS"
    TMP=$(mktemp -d)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    # 10000 connections need 10000 descriptors in the server and in the
    # client: raise the soft limit to the hard one (inherited by both).
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    NOFILE=$(ulimit -n)
    [[ $NOFILE == unlimited ]] && NOFILE=1048576
    echo "$RESULTS_HEADER" >"$RESULTS"
    machine_info | tee "$OUT/machine.txt"

    local workloads=() row line
    for line in "${WORKLOADS[@]}"; do
        if ((!QUICK)) || [[ $QUICK_WORKLOADS == *" $(field "$line" 1) "* ]]; then
            workloads+=("$line")
        fi
    done
    local have_strace=0
    command -v strace >/dev/null && have_strace=1
    local total=$(((${#workloads[@]} + have_strace) * ${#ROWS[@]})) n=0
    for row in "${ROWS[@]}"; do
        [[ -x $BUILD/$(field "$row" 2) ]] ||
            progress "compare: $(field "$row" 1): $BUILD/$(field "$row" 2)" \
                "is not built: its rows say so"
    done

    for line in "${workloads[@]}"; do
        for row in "${ROWS[@]}"; do
            n=$((n + 1))
            progress "[$n/$total] $(field "$row" 1) $(field "$line" 1)" \
                "($((SECONDS - started)) s)"
            run_one "$line" "$row"
        done
    done
    if ((have_strace)); then
        for row in "${ROWS[@]}"; do
            n=$((n + 1))
            progress "[$n/$total] $(field "$row" 1) syscalls (strace)" \
                "($((SECONDS - started)) s)"
            strace_one "$row"
        done
    else
        progress "compare: strace not installed: no syscalls table"
    fi

    {
        for line in "${workloads[@]}"; do
            print_table "$line"
        done
        print_syscalls_table
        print_legend
        print_targets
        echo
        echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg);" \
            "CPU steal (the hypervisor's other guests) during the run:" \
            "$(cpu_ticks | awk -v s="$ticks_at_start" '{ split(s, a, " ")
                printf "%.1f%%", 100 * ($1 - a[1]) / ($2 - a[2] + 1) }');" \
            "whole run $((SECONDS - started)) s"
    } | tee "$OUT/tables.txt"
    plot_charts
    progress "compare: $RESULTS, $OUT/tables.txt, server logs in $LOGS/"
}

main
