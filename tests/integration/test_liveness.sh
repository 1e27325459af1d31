#!/usr/bin/env bash
#  Failure detection, timed by the broker's own events on its feed: a node
#  killed with SIGKILL is declared dead within 100 ms (its connection
#  closes), a frozen one (SIGSTOP) within 1 s (missed heartbeats at the
#  default 250 ms x 3), and both come back
source "$(dirname "$0")/lib.sh"
bs_start_cluster --restock-period 0 --heartbeat-ms 250 --liveness 3

events=$BS_TMP/events.jsonl
"$BS_BIN/bookstore-monitor" --endpoint "tcp://127.0.0.1:$BS_PORT" --events --json > "$events" &
monitor=$!
trap 'kill $monitor 2>/dev/null; bs_cleanup' EXIT
#  The feed is live once the monitor sees a status snapshot
"$BS_BIN/bookstore-monitor" --endpoint "tcp://127.0.0.1:$BS_PORT" --once --json > /dev/null

now_ms() { date +%s%3N; }
#  wait_event KIND NODE AFTER-MS: prints the time of the first such event
wait_event() {
    local deadline=$((SECONDS + 10)) t
    while [ $SECONDS -lt $deadline ]; do
        t=$(jq -r --arg k "$1" --arg n "$2" --argjson after "$3" \
              'select(.kind == $k and .id == $n and .time >= $after) | .time' "$events" 2>/dev/null | head -n 1)
        [ -n "$t" ] && { echo "$t"; return 0; }
        sleep 0.02
    done
    return 1
}

worst=0
for node in order-1 catalog-2 order-2 catalog-1 order-1; do
    pid=$(bs_pid "$node")
    t0=$(now_ms)
    kill -KILL "$pid"
    t=$(wait_event dead "$node" "$t0") || t=$((t0 + 99999))
    log "$node killed: declared dead after $((t - t0)) ms"
    [ $((t - t0)) -gt "$worst" ] && worst=$((t - t0))
    bs_wait_pid_change "$node" "$pid" 10
    bs_wait_ready 4 20
done
check "a killed node is declared dead within 100 ms (worst of 5: $worst ms)" test "$worst" -lt 100
check "every node is back and in sync after the kills" bs_wait_ready 4 20

worst=0
for node in catalog-1 order-2 catalog-2; do
    pid=$(bs_pid "$node")
    t0=$(now_ms)
    kill -STOP "$pid"
    t=$(wait_event dead "$node" "$t0") || t=$((t0 + 99999))
    kill -CONT "$pid"
    log "$node frozen: declared dead after $((t - t0)) ms"
    [ $((t - t0)) -gt "$worst" ] && worst=$((t - t0))
    check "a thawed $node registers again" wait_event joined "$node" "$t"
    bs_wait_ready 4 20
done
check "a frozen node is declared dead within 1 s (worst of 3: $worst ms)" test "$worst" -lt 1000
check "the feed reported the new catalog primary" \
    test "$(jq -s '[.[] | select(.kind == "elected")] | length' "$events")" -gt 1
check "the cluster converges" bs_wait_converged 20
check "every process is still running" bs_all_running
