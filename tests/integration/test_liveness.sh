#!/usr/bin/env bash
#  Failure detection, timed by the broker's own events on its feed: a node
#  killed with SIGKILL is declared dead because its connection closed, well
#  within the liveness window; a frozen one (SIGSTOP) for missed heartbeats,
#  not before the window (heartbeat x liveness) has nearly passed and not
#  long after; and both come back.  The bounds derive from the configured
#  heartbeat and liveness, with slack for slow (sanitizer) builds on a busy
#  machine; the measured times are in the log.
source "$(dirname "$0")/lib.sh"
bs_plan 11
HB=250
LIVENESS=3
WINDOW=$((HB * LIVENESS))
bs_start_cluster --restock-period 0 --heartbeat-ms $HB --liveness $LIVENESS

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

#  why NODE AFTER-MS: the message of the node's first dead event since then
why() {
    jq -r --arg n "$1" --argjson after "$2" \
        'select(.kind == "dead" and .id == $n and .time >= $after) | .message' "$events" 2>/dev/null | head -n 1
}

worst=0; closed=0; back=0
for node in order-1 catalog-2 order-2 catalog-1 order-1; do
    pid=$(bs_pid "$node")
    t0=$(now_ms)
    kill -KILL "$pid"
    t=$(wait_event dead "$node" "$t0") || t=$((t0 + 99999))
    reason=$(why "$node" "$t0")
    log "$node killed: declared dead after $((t - t0)) ms ($reason)"
    [ $((t - t0)) -gt "$worst" ] && worst=$((t - t0))
    [[ $reason == *"its connection closed"* ]] && closed=$((closed + 1))
    bs_wait_pid_change "$node" "$pid" 10 && bs_wait_ready 4 20 && back=$((back + 1))
done
check "a killed node is declared dead because its connection closed (5 of 5: $closed)" test "$closed" = 5
check "...within twice the liveness window of ${WINDOW} ms (worst of 5: $worst ms)" test "$worst" -lt $((2 * WINDOW))
check "every killed node is restarted and back in sync (5 of 5: $back)" test "$back" = 5

#  A frozen node's last heartbeat came at most one period before it froze,
#  so it is silent for at least (liveness - 1) periods when it is declared
#  dead (a little less allowed for a late heartbeat); and the broker checks
#  expiries when they come, so it is declared dead about when the window
#  has passed (twice that allowed)
least=99999; worst=0; missed=0; thawed=0
for node in catalog-1 order-2 catalog-2; do
    pid=$(bs_pid "$node")
    t0=$(now_ms)
    kill -STOP "$pid"
    t=$(wait_event dead "$node" "$t0") || t=$((t0 + 99999))
    kill -CONT "$pid"
    reason=$(why "$node" "$t0")
    log "$node frozen: declared dead after $((t - t0)) ms ($reason)"
    [ $((t - t0)) -gt "$worst" ] && worst=$((t - t0))
    [ $((t - t0)) -lt "$least" ] && least=$((t - t0))
    [[ $reason == *"missed heartbeats"* ]] && missed=$((missed + 1))
    wait_event joined "$node" "$t" > /dev/null && thawed=$((thawed + 1))
    bs_wait_ready 4 20
done
check "a frozen node is declared dead for missed heartbeats (3 of 3: $missed)" test "$missed" = 3
check "...not before (liveness - 1) heartbeats of silence, less a late one's slack ($((HB * (LIVENESS - 1) * 8 / 10)) ms; least of 3: $least ms)" \
    test "$least" -ge $((HB * (LIVENESS - 1) * 8 / 10))
check "...within twice the window plus a period ($((2 * (WINDOW + HB))) ms; worst of 3: $worst ms)" \
    test "$worst" -lt $((2 * (WINDOW + HB)))
check "every thawed node registers again (3 of 3: $thawed)" test "$thawed" = 3
check "the feed reported the new catalog primary" \
    test "$(jq -s '[.[] | select(.kind == "elected")] | length' "$events")" -gt 1
check "the cluster converges" bs_wait_converged 20
check "every process is still running" bs_all_running
