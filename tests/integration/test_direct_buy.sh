#!/usr/bin/env bash
#  Order nodes send a buy's decrement to the catalog primary's sync socket
#  directly: buys succeed without the broker routing a decrement; a primary
#  killed under a buy load loses, doubles and oversells nothing; under
#  CURVE only order nodes may send there, and only "decrement"; with the
#  direct path switched off buys go through the broker as before.
source "$(dirname "$0")/lib.sh"
bs_plan 21
PY=/usr/bin/python3
"$PY" -c 'import zmq, msgpack' 2> /dev/null || PY=python3

#  What the broker's status says the catalog nodes served, in all
catalog_served() { bs --json status | jq '[.nodes[] | select(.service == "catalog") | .requests] | add'; }
#  buys N ITEM: buys N copies one after another; prints how many succeeded
buys() {
    local i n=0
    for ((i = 0; i < $1; i++)); do
        [ "$(bs --json buy "$2" | jq .ok)" = true ] && n=$((n + 1))
    done
    echo "$n"
}
stock() { bs --json lookup "$1" | jq .stock; }
#  The sync endpoint a node says it serves on (its start-up line)
sync_of() { sed -n "s/.*$1: catalog node serving from .*sync on \([^;]*\);.*/\1/p" "$BS_TMP/cluster.log" | tail -n 1; }
said_direct() { grep -q "$1.*buyer: the catalog primary is $2 at epoch .*directly" "$BS_TMP/cluster.log"; }

#  --------------------------------------------------------------------------
#  The direct path, and a primary killed under a buy load
bs_start_cluster --catalog 3 --order 2 --restock-period 0
primary=$(bs_catalog_primary)
check "order nodes learn the catalog primary's sync socket from the broker" \
    until_true 10 eval 'said_direct order-1 "$primary" && said_direct order-2 "$primary"'
RECORD=$BS_TMP/record.txt
bs_load --clients 12 --requests 2400 --mix buy:80,restock:20 --seed 7 --record "$RECORD" > "$BS_TMP/load.json" &
load_pid=$!
bs_wait_record "$RECORD" 300 30
touch "$BS_DATA/hold/$primary"
kill -KILL "$(bs_pid "$primary")"
at_kill=$(bs_record_lines "$RECORD")
log "the catalog primary $primary was killed with $at_kill writes acknowledged"
new=""
deadline=$((SECONDS + 20))
until [ -n "$new" ] && [ "$new" != "$primary" ] || [ $SECONDS -ge $deadline ]; do
    new=$(bs_catalog_primary); sleep 0.05
done
check "order nodes move their direct path to the new primary" \
    until_true 20 eval 'said_direct order-1 "$new" && said_direct order-2 "$new"'
wait $load_pid
check "every buy got a definite answer across the failover (the load exits 0)" test $? = 0
check "...and writes were acknowledged after the kill" test "$(bs_record_lines "$RECORD")" -gt "$at_kill"
check "the surviving replicas converge" bs_wait_converged 30
check "no buy is lost or doubled and no book oversold, on any replica" \
    bs_check_accounts "$(cat "$BS_TMP/load.json")" "$RECORD"
bs --json restock 321 40 > /dev/null
before_stock=$(stock 321)
before=$(catalog_served)
check "20 buys succeed" test "$(buys 20 321)" = 20
check "...and the broker routed none of their decrements to the catalog" test "$(catalog_served)" = "$before"
check "...taking 20 copies" test "$(stock 321)" = "$((before_stock - 20))"

bs_stop_cluster

#  --------------------------------------------------------------------------
#  CURVE: only order nodes may send to the sync socket, and only decrement
keys=$BS_TMP/keys
"$BS_BIN/bookstore" keygen "$keys" > /dev/null
export BS_KEYS=$keys
bs_start_cluster --restock-period 0 --keys "$keys"
primary=$(bs_catalog_primary)
bs --cert "$keys/admins/admin" --json restock 321 10 > /dev/null
before=$(catalog_served)
check "over CURVE, buys succeed without the broker routing their decrements" \
    test "$(buys 5 321):$(catalog_served)" = "5:$before"
cat > "$BS_TMP/direct.py" <<'EOF'
#  direct.py ENDPOINT SERVER-CERT CLIENT-SECRET ROUTING-ID OP ITEM: sends
#  one direct request and prints the answer as JSON, or "no-answer"
import json, os, sys, zmq, msgpack
def key(path, which):
    for line in open(path):
        line = line.strip()
        if line.startswith(which + " = "):
            return line.split('"')[1].encode()
endpoint, server, client, routing_id, op, item = sys.argv[1:7]
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.linger = 0
sock.curve_serverkey = key(server, "public-key")
sock.curve_publickey = key(client, "public-key")
sock.curve_secretkey = key(client, "secret-key")
sock.identity = routing_id.encode()
sock.connect(endpoint)
request = {"op": op, "rid": os.urandom(16), "item": int(item)}
if op == "restock":
    request["count"] = 5
sock.send_multipart([b"Q", msgpack.packb(request)])
if sock.poll(2000):
    frames = sock.recv_multipart()
    reply = msgpack.unpackb(frames[-1], raw=False)
    reply.pop("rid", None)
    print(json.dumps(reply))
else:
    print("no-answer")
EOF
sync=$(sync_of "$primary")
direct() { "$PY" "$BS_TMP/direct.py" "$sync" "$keys/nodes/$primary" "$1" "$2" "$3" 666; }
stock_before=$(stock 666)
out=$(direct "$keys/nodes/catalog-2_secret" catalog-2 decrement)
check "a catalog node's key sending decrement to the primary's sync socket is refused: forbidden" \
    test "$(echo "$out" | jq -r .error)" = forbidden
check "...with a sentence" eval 'jq -r .message <<< "$out" | grep -q "only order nodes"'
out=$(direct "$keys/clients/client_secret" client decrement)
check "a client's key gets no answer there" test "$out" = no-answer
out=$(direct "$keys/nodes/order-3_secret" order-3 restock)
check "an order node's key may send decrement alone: restock is refused, unknown_op" \
    test "$(echo "$out" | jq -r .error)" = unknown_op
check "...and nothing changed" test "$(stock 666)" = "$stock_before"
check "...and the catalog counts the refusals" grep -q "$primary: refused a direct request.*refused so far" "$BS_TMP/cluster.log"
bs_stop_cluster
unset BS_KEYS

#  --------------------------------------------------------------------------
#  The direct path off: buys go through the broker
bs_start_cluster --restock-period 0 --node-args "--direct-buys 0"
bs --json restock 321 10 > /dev/null
before=$(catalog_served)
check "with the direct path off, buys succeed" test "$(buys 5 321)" = 5
check "...through the broker, which routed their decrements" test "$(catalog_served)" = "$((before + 5))"
bs_stop_cluster
