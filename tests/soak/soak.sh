#!/usr/bin/env bash
#  tests/soak/soak.sh - a long run under mixed load, for leaks and memory
#  that does not stay flat.
#
#  Starts a cluster of the AddressSanitizer/LeakSanitizer build (two catalog
#  and two order replicas and the HTTP gateway, on free ports in a temporary
#  folder) and drives it for SOAK_SECONDS: bookstore-bench's `mixed` (a
#  search, a lookup and a buy per operation) and `write-mix` (buys,
#  restocks, price changes) workloads at moderate open-loop rates, and the
#  gateway with curl (reads, buys, price changes with the admin token).
#  Every SOAK_SAMPLE seconds it records each process's resident memory
#  (/proc/PID/status: VmRSS, and RssAnon, the heap and stacks, apart from the
#  pages of LMDB's memory map, which grow with the data).  At the end it
#  stops the load, stops the cluster with SIGTERM through the launcher (so
#  every process exits normally and LeakSanitizer checks it), and reports:
#
#  - leaks and other sanitizer reports in the cluster's log;
#  - processes that died during the run, or did not exit with status 0;
#  - RssAnon per process at the start, the middle and the end, and its
#    growth from the end of the warm-up (SOAK_WARMUP seconds, default a
#    fifth of the run) to the end;
#  - load errors (failed operations reported by the bench), and nodes the
#    broker declared dead and elections (no failure, but they explain a
#    bump in memory).
#
#  It prints a table, then one JSON line, and exits 1 when a leak or any
#  other sanitizer report was found, a process died or exited badly, or a
#  process's RssAnon grew after the warm-up by more than SOAK_GROWTH_PCT
#  percent (10) plus SOAK_GROWTH_KB (8192): memory must stay flat.
#
#  SOAK_SECONDS  length of the load (600)
#  SOAK_RATE     mixed operations per second (100; write-mix runs at a fifth)
#  SOAK_HTTP     gateway requests per second (4)
#  SOAK_SAMPLE   seconds between memory samples (10)
#  BS_BIN        programs to run (default build/asan/bin, made by make asan)
#  SOAK_KEEP=1   keep the work folder (always kept when the soak fails)
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BS_BIN:-$ROOT/build/asan/bin}
DURATION=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE:-100}
HTTP_RATE=${SOAK_HTTP:-4}
SAMPLE=${SOAK_SAMPLE:-10}
WARMUP=${SOAK_WARMUP:-$((DURATION / 5))}
GROWTH_PCT=${SOAK_GROWTH_PCT:-10}
GROWTH_KB=${SOAK_GROWTH_KB:-8192}
source "$ROOT/tools/chaos/lib.sh"

for program in bookstore-cluster bookstore-broker bookstore-node bookstore-gateway bookstore-bench bookstore; do
    [ -x "$BIN/$program" ] || { echo "soak: no $BIN/$program (make asan builds them)" >&2; exit 2; }
done
command -v jq > /dev/null && command -v curl > /dev/null || { echo "soak: needs jq and curl" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-soak.XXXXXX")
DATA=$WORK/cluster
PORT=$(bs_free_port) || { echo "soak: no free port" >&2; exit 2; }
ENDPOINT=tcp://127.0.0.1:$PORT
GW=http://127.0.0.1:$((PORT + 80))
#  LeakSanitizer checks each process as it exits; ASan's quarantine of freed
#  memory is kept small, or it would show as growth until it is full
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=8:malloc_context_size=20}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
CLUSTER_PID=
LOAD_PIDS=()
FAILED=0

say() { echo "# $*"; }

#  On an early exit: stop the load and the cluster (the pids we started,
#  and the children the launcher's pid files name)
cleanup() {
    local pid i
    for pid in "${LOAD_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    [ -n "$CLUSTER_PID" ] || return 0
    local children
    children=$(cat "$DATA"/pids/*.pid 2>/dev/null)
    kill -TERM "$CLUSTER_PID" 2>/dev/null
    for ((i = 0; i < 150; i++)); do
        kill -0 "$CLUSTER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$CLUSTER_PID" 2>/dev/null
    for pid in $children; do kill -KILL "$pid" 2>/dev/null; done
    say "interrupted; kept $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "soak: ${DURATION}s of load (mixed at ${RATE}/s, write-mix at $((RATE / 5 > 0? RATE / 5: 1))/s, HTTP at ${HTTP_RATE}/s), memory every ${SAMPLE}s, warm-up ${WARMUP}s; work in $WORK"
mkdir -p "$DATA"
"$BIN/bookstore-cluster" --data "$DATA" --base-port "$PORT" --bin-dir "$BIN" --seed "$ROOT/etc/catalog.cfg" \
    --catalog 2 --order 2 --restock-period 0 > "$WORK/cluster.log" 2>&1 &
CLUSTER_PID=$!
BS_ENDPOINT=$ENDPOINT
export BS_DATA=$DATA
if ! bs_wait_ready 4 60; then
    say "the cluster did not start"
    tail -n 30 "$WORK/cluster.log"
    exit 1
fi
deadline=$((SECONDS + 30))
until [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$GW/healthz")" = 200 ] || [ $SECONDS -ge $deadline ]; do
    sleep 0.5
done
TOKEN=$(cat "$DATA/admin-token")

#  The processes to watch: the launcher and every child, by pid file
declare -A PIDS=()
PIDS[cluster]=$CLUSTER_PID
for f in "$DATA"/pids/*.pid; do
    name=$(basename "$f" .pid)
    [ "$name" = bookstore-cluster ] || PIDS[$name]=$(cat "$f")
done
NAMES=$(printf '%s\n' "${!PIDS[@]}" | sort)

#  The load: the bench adds its books first (a short closed-loop run)
"$BIN/bookstore-bench" --endpoint "$ENDPOINT" --workload lookup-hot --seconds 1 --warmup 0 --json \
    > "$WORK/bench-prepare.json" 2> "$WORK/bench-prepare.err"
"$BIN/bookstore-bench" --endpoint "$ENDPOINT" --workload mixed --rate "$RATE" --seconds "$DURATION" \
    --warmup 0 --json > "$WORK/bench-mixed.json" 2> "$WORK/bench-mixed.err" &
LOAD_PIDS+=($!)
write_rate=$((RATE / 5 > 0? RATE / 5: 1))
"$BIN/bookstore-bench" --endpoint "$ENDPOINT" --workload write-mix --rate "$write_rate" --seconds "$DURATION" \
    --warmup 0 --seed 2 --json > "$WORK/bench-write.json" 2> "$WORK/bench-write.err" &
LOAD_PIDS+=($!)
#  The gateway: a read, a buy, a price change in turn
(
    items=(666 321 768 546 684 846 499)
    n=0 end=$((SECONDS + DURATION))
    while [ $SECONDS -lt $end ]; do
        item=${items[$((n % ${#items[@]}))]}
        case $((n % 4)) in
            0) code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$GW/books/$item") ;;
            1) code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$GW/books?topic=graduate_school") ;;
            2) code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' --json "{\"item\": $item}" "$GW/orders") ;;
            3) code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
                      --json "{\"cost\": $((n % 20 + 1))}" "$GW/books/$item/price") ;;
        esac
        echo "$code"
        n=$((n + 1))
        sleep "$(awk -v r="$HTTP_RATE" 'BEGIN { printf "%.3f", 1 / r }')"
    done
) > "$WORK/http.codes" 2>&1 &
LOAD_PIDS+=($!)

#  Memory samples: seconds, process, pid, VmRSS, RssAnon, RssFile (kB)
sample() {
    local at=$1 name pid
    for name in $NAMES; do
        pid=${PIDS[$name]}
        if [ -r "/proc/$pid/status" ]; then
            awk -v t="$at" -v n="$name" -v p="$pid" '
                /^VmRSS:/ { v = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
                END { print t, n, p, v, a, f }' "/proc/$pid/status"
        else
            echo "$at $name $pid - - -"
        fi
    done >> "$WORK/memory.txt"
}
start=$SECONDS
next=0
while [ $((SECONDS - start)) -lt "$DURATION" ]; do
    now=$((SECONDS - start))
    if [ "$now" -ge "$next" ]; then
        sample "$now"
        next=$((next + SAMPLE))
    fi
    #  Children the launcher restarted have new pids: a crash
    for name in $NAMES; do
        [ "$name" = cluster ] && continue
        current=$(cat "$DATA/pids/$name.pid" 2>/dev/null)
        if [ -n "$current" ] && [ "$current" != "${PIDS[$name]}" ]; then
            say "$name restarted (pid ${PIDS[$name]} -> $current)"
            echo "$name" >> "$WORK/restarted"
            PIDS[$name]=$current
        fi
    done
    sleep 1
done
sample "$DURATION"
for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
LOAD_PIDS=()

#  Stop cleanly: SIGTERM to the launcher, which stops every child with
#  SIGTERM (LeakSanitizer runs as each exits)
kill -TERM "$CLUSTER_PID"
stop_deadline=$((SECONDS + 60))
while kill -0 "$CLUSTER_PID" 2>/dev/null && [ $SECONDS -lt $stop_deadline ]; do sleep 0.2; done
if kill -0 "$CLUSTER_PID" 2>/dev/null; then
    say "the launcher did not stop within 60 s"
    FAILED=1
fi
wait "$CLUSTER_PID" 2>/dev/null
launcher_rc=$?
CLUSTER_PID=

#  ---- The report
leaks=$(grep -c 'ERROR: LeakSanitizer' "$WORK/cluster.log")
reports=$(grep -cE 'ERROR: AddressSanitizer|runtime error:' "$WORK/cluster.log")
leaked_bytes=$(grep -oE 'SUMMARY: AddressSanitizer: [0-9]+ byte' "$WORK/cluster.log" | awk '{ s += $3 } END { print s + 0 }')
#  etcd is not ours: it ends on SIGTERM by the signal itself, after a clean
#  shutdown
bad_exits=$(grep -E 'cluster: .* stopped \(' "$WORK/cluster.log" | grep -v 'cluster: etcd stopped' \
    | grep -vc 'exited with status 0')
killed=$(grep -c 'did not stop in time' "$WORK/cluster.log")
died=$(grep -c ' died: ' "$WORK/cluster.log")
restarted=$(sort -u "$WORK/restarted" 2>/dev/null | wc -l)
#  Not failures, but they explain a bump in memory: nodes the broker
#  declared dead (a stall of the machine, say) and the elections after
declared_dead=$(grep -c 'declared dead' "$WORK/cluster.log")
elections=$(grep -c 'broker: elected' "$WORK/cluster.log")
[ "$leaks" -eq 0 ] && [ "$reports" -eq 0 ] || FAILED=1
[ "$bad_exits" -eq 0 ] && [ "$killed" -eq 0 ] && [ "$died" -eq 0 ] && [ "$launcher_rc" -eq 0 ] || FAILED=1

#  RssAnon at the first sample, the middle, the last, and at the warm-up's end
middle=$(( (DURATION / 2) / SAMPLE * SAMPLE ))
warm=$(( (WARMUP + SAMPLE - 1) / SAMPLE * SAMPLE ))
[ "$warm" -lt "$DURATION" ] || warm=0
#  (a table on stdout, one JSON object per process in memory.json, and the
#  number that grew too much in grew)
say "RssAnon (kB) at the start, the middle and the end; growth from the warm-up's end (${warm}s)"
printf '# %-11s %8s %10s %10s %10s %10s %10s %10s\n' process pid start middle end warm growth vmrss_end
awk -v mid="$middle" -v warm="$warm" -v last="$DURATION" -v pct="$GROWTH_PCT" -v kb="$GROWTH_KB" \
    -v json="$WORK/memory.json" -v count="$WORK/grew" '
    $5 == "-" { next }
    #  Samples land a second or so late on a busy machine: each mark
    #  takes the first sample at or after it
    { if (!($2 in first)) { first [$2] = $5; pid [$2] = $3 }
      if ($1 >= mid && !($2 in m)) m [$2] = $5
      if ($1 >= warm && !($2 in w)) w [$2] = $5
      if ($1 == last) { e [$2] = $5; r [$2] = $4 } }
    END {
        grew = 0
        for (p in first) {
            growth = e [p] - w [p]
            #  A process with no sample after the warm-up, or none at the
            #  end, cannot be shown flat: that fails too
            bad = (!(p in e) || !(p in w) || growth > w [p] * pct / 100 + kb)
            grew += bad
            printf "# %-11s %8s %10s %10s %10s %10s %10s %10s%s\n", p, pid [p], first [p], m [p], e [p], w [p], growth, r [p], bad? "  GREW": ""
            printf "{\"process\":\"%s\",\"start_kb\":%d,\"middle_kb\":%d,\"end_kb\":%d,\"warm_kb\":%d,\"growth_kb\":%d,\"vmrss_end_kb\":%d}\n", p, first [p], m [p], e [p], w [p], growth, r [p] > json
        }
        print grew > count
    }' "$WORK/memory.txt" | sort
memory_json=$(jq -cs 'map({(.process): del(.process)}) | add // {}' "$WORK/memory.json" 2>/dev/null || echo '{}')
grew=$(cat "$WORK/grew" 2>/dev/null || echo 0)
[ "$grew" -eq 0 ] || FAILED=1

ops() { jq -r "$1 // 0" "$2" 2>/dev/null || echo 0; }
mixed_ops=$(ops .ops "$WORK/bench-mixed.json")
mixed_errors=$(ops '(.errors + .timeouts)' "$WORK/bench-mixed.json")
write_ops=$(ops .ops "$WORK/bench-write.json")
write_errors=$(ops '(.errors + .timeouts)' "$WORK/bench-write.json")
http_total=$(wc -l < "$WORK/http.codes")
http_errors=$(grep -cvE '^(200|201|409)$' "$WORK/http.codes")

if [ "$leaks" -gt 0 ] || [ "$reports" -gt 0 ]; then
    say "sanitizer reports in $WORK/cluster.log:"
    grep -E -A 12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$WORK/cluster.log" | head -60
fi
[ "$grew" -eq 0 ] || say "memory grew after the warm-up in $grew process(es) (more than ${GROWTH_PCT}% + ${GROWTH_KB} kB)"
[ "$died" -eq 0 ] || grep ' died: ' "$WORK/cluster.log" | head -5
[ "$bad_exits" -eq 0 ] || grep -E 'cluster: .* stopped \(' "$WORK/cluster.log" | grep -v 'cluster: etcd stopped' \
    | grep -v 'exited with status 0' | head -5
jq -cn --argjson seconds "$DURATION" --argjson leaks "$leaks" --argjson leaked_bytes "$leaked_bytes" \
    --argjson sanitizer_reports "$reports" --argjson died "$died" --argjson restarted "$restarted" \
    --argjson bad_exits "$bad_exits" --argjson killed "$killed" --argjson grew "$grew" \
    --argjson declared_dead "$declared_dead" --argjson elections "$elections" \
    --argjson mixed_ops "$mixed_ops" --argjson mixed_errors "$mixed_errors" \
    --argjson write_ops "$write_ops" --argjson write_errors "$write_errors" \
    --argjson http_requests "$http_total" --argjson http_errors "$http_errors" \
    --argjson memory "$memory_json" --argjson passed "$((1 - FAILED))" \
    '{seconds: $seconds, passed: ($passed == 1), leaks: $leaks, leaked_bytes: $leaked_bytes,
      sanitizer_reports: $sanitizer_reports, died: $died, restarted: $restarted, bad_exits: $bad_exits,
      killed: $killed, memory_grew: $grew, declared_dead: $declared_dead, elections: $elections,
      mixed_ops: $mixed_ops, mixed_errors: $mixed_errors,
      write_ops: $write_ops, write_errors: $write_errors, http_requests: $http_requests,
      http_errors: $http_errors, rss_anon: $memory}'
if [ "$FAILED" -ne 0 ] || [ "${SOAK_KEEP:-0}" = 1 ]; then
    say "kept $WORK"
else
    rm -rf "$WORK"
fi
exit "$FAILED"
