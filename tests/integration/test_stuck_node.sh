#!/usr/bin/env bash
#  A node that stops reading its broker socket while it goes on
#  heartbeating and saying READY (its loop is busy; its queue at the broker
#  fills): the broker's send to it fails (EAGAIN), it is declared dead and
#  held out, 1 s, then 2 s, 4 s...: its READYs do not bring it back in a
#  loop of register, send, fail, dead.  Another worker of the service
#  answers every request meanwhile.  Once the node reads again it is back
#  in service within its hold and answers requests.
# timeout: 120
source "$(dirname "$0")/lib.sh"
bs_plan 9
PY=/usr/bin/python3
"$PY" -c 'import zmq, msgpack' 2> /dev/null || PY=python3
"$PY" -c 'import zmq, msgpack' 2> /dev/null || bs_skip_rest "needs python3 with pyzmq and msgpack"
STUCK="$BS_ROOT/tests/helpers/stuck_node.py"

PIDS=()
stop() { local p; for p in "$@"; do kill -KILL "$p" 2> /dev/null; wait "$p" 2> /dev/null; done; }
trap 'stop "${PIDS[@]}"; stop $BROKER; bs_cleanup' EXIT

#  A broker alone, plain, serving the standard service echo; nodes are held
#  to 100 ms x 10.  --max-inflight 100: a node's queue holds 1,100 messages.
port=$(bs_free_port) || { not_ok "found a free port"; exit 1; }
BS_PORT=$port
"$BS_BIN/bookstore-broker" --base-port "$port" --services echo --heartbeat-ms 100 --liveness 10 \
    --max-inflight 100 > "$BS_TMP/broker.log" 2>&1 &
BROKER=$!
nodes="tcp://127.0.0.1:$((port + 1))"
alive() {
    bs --json --timeout-ms 1000 --attempts 1 status 2> /dev/null \
        | jq -e --arg id "$1" '[.nodes[] | select(.id == $id and .alive)] | length == 1' > /dev/null 2>&1
}
echo_workers() {
    bs --json --timeout-ms 1000 --attempts 1 status 2> /dev/null \
        | jq '[.nodes[] | select(.service == "echo" and .alive)] | length' 2> /dev/null
}
one_worker() { [ "$(echo_workers)" = 1 ]; }
deaths() { grep -c "stuck-1 declared dead" "$BS_TMP/broker.log"; }
joins() { grep -c "stuck-1 joined" "$BS_TMP/broker.log"; }
#  cpu: the broker's CPU time so far, in clock ticks
cpu() { awk '{ print $14 + $15 }' "/proc/$BROKER/stat"; }

"$PY" "$BS_ROOT/tests/mdp/mdp_worker.py" "$nodes" echo 2> "$BS_TMP/good.log" &
PIDS+=($!)
check "a standard echo worker registers" until_true 20 one_worker

"$PY" "$STUCK" node "$nodes" echo stuck-1 2> "$BS_TMP/stuck.log" &
STUCK_PID=$!
PIDS+=($STUCK_PID)
check "a node that does not read is declared dead once its queue is full" \
    until_true 30 grep -q "stuck-1 declared dead: unreachable: its queue is full" "$BS_TMP/broker.log"

#  5 s with the node stuck, saying READY every 100 ms, while a client asks
deaths_before=$(deaths) joins_before=$(joins) cpu_before=$(cpu)
out=$("$PY" "$STUCK" client "tcp://127.0.0.1:$port" echo 5)
deaths_during=$(($(deaths) - deaths_before)) joins_during=$(($(joins) - joins_before))
cpu_during=$(($(cpu) - cpu_before)) hz=$(getconf CLK_TCK)
log "in 5 s: $deaths_during death(s), $joins_during registration(s), broker CPU $cpu_during/$((5 * hz)) ticks; client: $out"
check "in 5 s stuck, saying READY 50 times, the node is registered again at most 3 times (held 1, 2, 4 s)" \
    test "$joins_during" -le 3
check "...and declared dead at most 3 times (not once per READY)" test "$deaths_during" -le 3
check "...and the broker's loop was busy for less than half of it" test "$cpu_during" -lt $((5 * hz / 2))
check "...while a client's requests are all answered (by the other worker)" \
    eval 'jq -e ".sent >= 20 and .answered == .sent" <<< "$out" > /dev/null'

#  The node reads again: it is taken back within its hold and serves.  A
#  request for echo@stuck-1 waits for that node (up to the request
#  timeout, 2 s) and is answered by it alone.
kill -USR1 "$STUCK_PID"
answers_itself() {
    "$PY" "$STUCK" client "tcp://127.0.0.1:$port" echo@stuck-1 0.1 | jq -e '.answered == .sent' > /dev/null
}
check "once the node reads again it is registered and answers requests within its hold (at most 30 s)" \
    until_true 40 answers_itself
out=$("$PY" "$STUCK" client "tcp://127.0.0.1:$port" echo 2)
check "...status lists it alive, and a client's requests are all answered" \
    eval 'alive stuck-1 && jq -e ".sent >= 10 and .answered == .sent" <<< "$out" > /dev/null'

stop "${PIDS[@]}"
PIDS=()
kill -TERM "$BROKER"
wait "$BROKER"
BROKER=
check "the broker stops cleanly, with no sanitizer report" \
    bs_no_line 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$BS_TMP/broker.log"
