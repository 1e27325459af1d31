#!/usr/bin/env bash
#  A standard 7/MDP worker, written from the spec alone (tests/mdp/
#  mdp_worker.py, an echo), offers a service the broker's allow-list names:
#  it stays registered at the spec's 2.5 s heartbeat while a standard
#  client gets every answer for 30 s and the bookstore keeps serving; it is
#  sent nothing of the bookstore's own; a service outside the list is
#  refused; a worker that stops leaves status within its liveness.  A broker
#  alone in plain mode with services "*" takes a worker of any service.
# timeout: 240
source "$(dirname "$0")/lib.sh"
bs_plan 22
PY=
for p in python3 /usr/bin/python3; do
    "$p" -c 'import zmq, msgpack' 2> /dev/null && { PY=$p; break; }
done
[ -n "$PY" ] || bs_skip_rest "needs python3 with pyzmq and msgpack"

#  Under CURVE a worker presents a node key, as nodes do
keys=$BS_TMP/keys
"$BS_BIN/bookstore" keygen "$keys" nodes/echo-1 nodes/echo-2 nodes/nope > /dev/null
export BS_KEYS=$keys
bs_start_cluster --restock-period 0 --keys "$keys" --broker-args "--services catalog,order,echo,audit"

WORKERS=()
#  stop PID...: kills workers this test started, and reaps them
stop() { local p; for p in "$@"; do kill -KILL "$p" 2> /dev/null; wait "$p" 2> /dev/null; done; }
stop_workers() { stop "${WORKERS[@]}"; }
trap 'stop_workers; stop $ALONE; bs_cleanup' EXIT
ALONE=
#  worker NAME SERVICE: starts a standard worker with key nodes/NAME, its
#  log in $BS_TMP/NAME.log; $! is its pid
worker() {
    "$PY" "$BS_ROOT/tests/mdp/mdp_worker.py" --keys "$keys" --cert "$keys/nodes/$1" \
        "tcp://127.0.0.1:$((BS_PORT + 1))" "$2" 2> "$BS_TMP/$1.log" &
    WORKERS+=($!)
}
mdp() { "$PY" "$BS_ROOT/tests/mdp/mdp_client.py" --keys "$keys" "tcp://127.0.0.1:$BS_PORT" "$@"; }
holds() { [ -n "$2" ] && jq -e "$1" <<< "$2" > /dev/null 2>&1; }
#  workers_of SERVICE: the alive workers of a service status lists
#  (while the broker is not up yet, status has no nodes: empty output)
workers_of() {
    bs --json --timeout-ms 1000 status 2> /dev/null \
        | jq "[.nodes[] | select(.service == \"$1\" and .alive)] | length" 2> /dev/null
}
none_of() {
    [ "$(bs --json --timeout-ms 1000 status 2> /dev/null \
         | jq "[.nodes[] | select(.service == \"$1\")] | length" 2> /dev/null)" = 0 ]
}
one_of() { [ "$(workers_of "$1")" = 1 ]; }

worker echo-1 echo
echo1=$!
check "a standard worker of service echo registers: status lists it alive" until_true 15 one_of echo

#  30 s of requests, two a second at most, each answered with its own body, at the
#  worker's 2.5 s heartbeat (the nodes here are held to 100 ms x 10)
sent=0 echoed=0 lookups=0 answered=0
end=$((SECONDS + 32))
while [ $SECONDS -lt $end ]; do
    sent=$((sent + 1))
    out=$(mdp --timeout-ms 3000 echo "{\"op\": \"ping\", \"n\": $sent}")
    holds ".service == \"echo\" and .reply.n == $sent and .reply.op == \"ping\" and .reply.rid == .sent" "$out" \
        && echoed=$((echoed + 1))
    lookups=$((lookups + 1))
    bs --json lookup 666 2> /dev/null | jq -e '.item == 666' > /dev/null && answered=$((answered + 1))
    sleep 0.5
done
log "echo: $echoed of $sent answered; bookstore lookups: $answered of $lookups"
check "for 30 s the standard client gets every echo answered with its own body" \
    test "$sent" -ge 10 -a "$echoed" = "$sent"
check "...while the bookstore answers every lookup" test "$answered" = "$lookups"
check "the worker registered once and was never told DISCONNECT (its 2.5 s heartbeats keep it alive)" \
    test "$(grep -c 'ready:' "$BS_TMP/echo-1.log"):$(grep -c 'disconnect' "$BS_TMP/echo-1.log")" = "1:0"
check "...and it was sent no bookstore command (no ASSIGN)" bs_no_line 'invalid command' "$BS_TMP/echo-1.log"
check "...and it heard the broker's heartbeats throughout (it never took the broker for gone)" \
    bs_no_line 'reconnect:' "$BS_TMP/echo-1.log"

#  A body of several frames comes back as it went, in order
frames=$("$PY" - "$BS_ROOT/tests/mdp" "$keys" "tcp://127.0.0.1:$BS_PORT" << 'EOF'
import os, sys
sys.path.insert(0, sys.argv[1])
import zmq
from mdp_client import read_key
keys, endpoint = sys.argv[2], sys.argv[3]
s = zmq.Context.instance().socket(zmq.DEALER)
s.linger = 0
s.curve_serverkey = read_key(os.path.join(keys, "broker"), "public-key")
cert = os.path.join(keys, "clients", "client_secret")
s.curve_publickey, s.curve_secretkey = read_key(cert, "public-key"), read_key(cert, "secret-key")
s.connect(endpoint)
s.send_multipart([b"", b"MDPC01", b"echo", b"one", b"", b"three"])
print(s.recv_multipart() if s.poll(5000) else "none")
EOF
)
check "a request of three body frames is answered [empty, MDPC01, echo, the same three frames]" \
    test "$frames" = "[b'', b'MDPC01', b'echo', b'one', b'', b'three']"

#  Outside the allow-list, and a bookstore service: refused, with a reason
worker nope nope
stranger=$!
check "a worker of a service outside the allow-list is told DISCONNECT" \
    until_true 10 grep -q 'disconnect' "$BS_TMP/nope.log"
check "...the broker logs why, and status lists no worker of it" \
    test "$(grep -c "refused READY: service 'nope' is not offered" "$BS_TMP/cluster.log" | tr -d ' ')" != 0 -a \
         "$(workers_of nope)" = 0
out=$(mdp --timeout-ms 3000 nope '{"op": "ping"}')
check "...and a client asking for it gets unknown_service" holds '.reply.error == "unknown_service"' "$out"
stop "$stranger"
worker echo-2 catalog
check "a standard worker offering the bookstore's catalog service is refused too" \
    until_true 10 grep -q "refused READY: service 'catalog' takes bookstore nodes only" "$BS_TMP/cluster.log"
stop $!
#  A key offers only the service it is named after: echo-2's key offering
#  audit (allowed by the broker) is refused, and so is a node's key
worker echo-2 audit
check "a standard worker whose key is named for another service (echo-2 offering audit) is refused" \
    until_true 10 grep -q "refused READY: a standard worker's key must be named 'audit' or 'audit-...', not 'echo-2'" \
    "$BS_TMP/cluster.log"
stop $!
"$PY" "$BS_ROOT/tests/mdp/mdp_worker.py" --keys "$keys" --cert "$keys/nodes/catalog-1" \
    "tcp://127.0.0.1:$((BS_PORT + 1))" audit 2> "$BS_TMP/node-key.log" &
WORKERS+=($!)
node_key_refused() { grep -q "key must be named 'audit' or 'audit-...', not 'catalog-1'" "$BS_TMP/cluster.log"; }
check "...and so is a worker presenting a catalog node's key, with audit left with no worker" \
    eval 'until_true 10 node_key_refused && test "$(workers_of audit)" = 0'
stop $!

#  A worker gone: killed (its connection closes), or frozen (silent past
#  its liveness, 3 x 2.5 s): it leaves status
stop "$echo1"
check "a killed worker leaves status at once (well within its 7.5 s liveness)" until_true 8 none_of echo
worker echo-2 echo
echo2=$!
until_true 15 one_of echo
kill -STOP "$echo2"
check "a frozen worker leaves status once silent past its liveness (7.5 s)" until_true 15 none_of echo
stop "$echo2"
out=$(mdp --timeout-ms 5000 echo '{"op": "ping"}')
check "with no worker left, echo requests get unavailable after the request timeout" \
    holds '.reply.error == "unavailable" and .reply.rid == .sent' "$out"
check "the bookstore's nodes are all alive throughout" \
    test "$(bs --json status | jq '[.nodes[] | select(.alive and (.service == "catalog" or .service == "order"))] | length')" = 4

#  A broker alone, plain (loopback), any service allowed
stop_workers
bs_stop_cluster
port=$(bs_free_port)
"$BS_BIN/bookstore-broker" --base-port "$port" --services '*' > "$BS_TMP/alone.log" 2>&1 &
ALONE=$!
unset BS_KEYS
BS_PORT=$port
"$PY" "$BS_ROOT/tests/mdp/mdp_worker.py" "tcp://127.0.0.1:$((port + 1))" anything 2> "$BS_TMP/anything.log" &
WORKERS+=($!)
check "with services '*', a plain worker of any service registers" until_true 15 one_of anything
out=$("$PY" "$BS_ROOT/tests/mdp/mdp_client.py" --timeout-ms 3000 "tcp://127.0.0.1:$port" anything '{"op": "ping", "n": 7}')
check "...and serves a standard client" holds '.service == "anything" and .reply.n == 7 and .reply.rid == .sent' "$out"
"$PY" "$BS_ROOT/tests/mdp/mdp_worker.py" "tcp://127.0.0.1:$((port + 1))" broker 2> "$BS_TMP/broker-worker.log" &
WORKERS+=($!)
check "...but not the broker's own service 'broker'" \
    until_true 10 grep -q "refused READY: service 'broker' is not offered" "$BS_TMP/alone.log"
stop_workers
kill -TERM "$ALONE"
wait "$ALONE"
ALONE=
check "the broker alone stops cleanly, with no sanitizer report" \
    bs_no_line 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$BS_TMP/alone.log"
