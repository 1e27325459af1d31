#!/usr/bin/env bash
#  The heartbeat monitor: events as JSON lines, one JSON snapshot, plain
#  text when not on a terminal, and the live table on a terminal (tmux)
source "$(dirname "$0")/lib.sh"
bs_plan 15
bs_start_cluster --restock-period 0 --no-gateway

monitor() { "$BS_BIN/bookstore-monitor" --endpoint "tcp://127.0.0.1:$BS_PORT" "$@"; }
events=$BS_TMP/events.jsonl
#  The binary itself, not the function, so that $! is the monitor's pid
"$BS_BIN/bookstore-monitor" --endpoint "tcp://127.0.0.1:$BS_PORT" --events --json > "$events" &
watcher=$!
trap 'kill $watcher 2>/dev/null; [ -n "${TMUX_SOCKET:-}" ] && tmux -S "$TMUX_SOCKET" kill-server 2>/dev/null; bs_cleanup' EXIT

snapshot=$(monitor --once --json)
check "--once --json prints one snapshot with every node" \
    test "$(echo "$snapshot" | jq '[.nodes[] | select(.alive)] | length')" = 4
check "...with the cache's counters" test "$(echo "$snapshot" | jq '.cache | has("hits") and has("capacity")')" = true
check "...and each node's role, epoch, seq, lag and silence" \
    test "$(echo "$snapshot" | jq '[.nodes[] | has("role") and has("epoch") and has("seq") and has("lag") and has("age")] | all')" = true

#  event NODE KIND: the event shows up on the feed
event() {
    local deadline=$((SECONDS + 10))
    while [ $SECONDS -lt $deadline ]; do
        jq -e -s --arg n "$1" --arg k "$2" 'any(.[]; .id == $n and .kind == $k)' "$events" > /dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}
pid=$(bs_pid order-2)
kill -KILL "$pid"
check "--events --json reports the killed node declared dead" event order-2 dead
bs_wait_pid_change order-2 "$pid" 10
check "...and back when it restarts" event order-2 joined
check "...and in sync again" event order-2 caught_up

plain=$(monitor --seconds 2)
check "without a terminal it prints plain tables" bash -c "echo '$plain' | grep -q '^NODE .*SERVICE .*ROLE'"
check "...with a row per node" test "$(echo "$plain" | grep -cE '^(catalog|order)-[12] ')" -ge 4
check "...and no terminal escapes" bash -c "! echo '$plain' | grep -q $'\\033'"

if command -v tmux > /dev/null; then
    TMUX_SOCKET=$BS_TMP/tmux.sock
    tmux -S "$TMUX_SOCKET" new-session -d -x 160 -y 40 \
        "$BS_BIN/bookstore-monitor --endpoint tcp://127.0.0.1:$BS_PORT"
    screen=""
    deadline=$((SECONDS + 10))
    while [ $SECONDS -lt $deadline ]; do
        screen=$(tmux -S "$TMUX_SOCKET" capture-pane -p)
        echo "$screen" | grep -q 'EVENTS' && break
        sleep 0.1
    done
    echo "$screen" > "$BS_TMP/monitor-screen.txt"
    check "on a terminal it shows the live table" bash -c "grep -q 'hit rate' '$BS_TMP/monitor-screen.txt'"
    check "...with every node" test "$(grep -cE '(catalog|order)-[12] ' "$BS_TMP/monitor-screen.txt")" -ge 4
    check "...and the event feed" grep -q 'EVENTS' "$BS_TMP/monitor-screen.txt"
else
    skip_check "on a terminal it shows the live table" "tmux is not installed"
    skip_check "...with every node" "tmux is not installed"
    skip_check "...and the event feed" "tmux is not installed"
fi
out=$("$BS_BIN/bookstore-monitor" --endpoint "tcp://127.0.0.1:$((BS_PORT + 7))" --once --json --timeout-ms 300); rc=$?
check "no feed: --once exits 3 with a JSON error" test "$rc:$(echo "$out" | jq -r .error)" = "3:timeout"
monitor --once --events > /dev/null 2>&1
check "contradictory flags are a usage error" test $? = 2
