#!/usr/bin/env bash
#  CURVE: only listed keys get anything; only admin keys change the
#  catalog; only listed node keys, under their own id, can register
source "$(dirname "$0")/lib.sh"
bs_plan 21
keys=$BS_TMP/keys
out=$("$BS_BIN/bookstore" --json keygen "$keys")
check "keygen writes the certificates" test "$(echo "$out" | jq .written)" = 10
check "...and keeps them when run again" test "$("$BS_BIN/bookstore" --json keygen "$keys" | jq .written)" = 0
check "secret files are private" test "$(stat -c %a "$keys/admins/admin_secret")" = 600
export BS_KEYS=$keys
bs_start_cluster --restock-period 0 --keys "$keys"
sbs() { bs "$@"; }
plain() { "$BS_BIN/bookstore" --endpoint "tcp://127.0.0.1:$BS_PORT" "$@"; }
check "the cluster runs with every node in sync over CURVE" \
    test "$(sbs --json status | jq '[.nodes[] | select(.alive and .insync)] | length')" = 4
check "every process says it speaks CURVE" test "$(grep -c 'CURVE: keys from' "$BS_TMP/cluster.log")" -ge 5
check "a client key may look up" test "$(sbs --json lookup 666 | jq .ok)" = true
check "...and buy" test "$(sbs --json buy 666 | jq .ok)" = true
out=$(sbs --json set-price 666 3); rc=$?
check "a client key may not change a price: forbidden" test "$rc:$(echo "$out" | jq -r .error)" = "1:forbidden"
check "...with a sentence" bash -c "echo '$out' | jq -r .message | grep -q 'may not'"
check "...nor restock" test "$(sbs --json restock 666 3 | jq -r .error)" = forbidden
check "an admin key may" test "$(sbs --cert "$keys/admins/admin" --json set-price 666 3 | jq .cost)" = 3
out=$(plain --json --timeout-ms 300 --attempts 2 lookup 666); rc=$?
check "a client without a key gets nothing" test "$rc:$(echo "$out" | jq -r .error)" = "3:timeout"
"$BS_BIN/bookstore" keygen "$BS_TMP/strangers" > /dev/null
out=$(sbs --cert "$BS_TMP/strangers/clients/client" --json --timeout-ms 300 --attempts 2 lookup 666); rc=$?
check "a client with an unknown key gets nothing" test "$rc:$(echo "$out" | jq -r .error)" = "3:timeout"
check "...and the broker says why" grep -q "refused a CURVE connection.*unknown key" "$BS_TMP/cluster.log"

#  A node whose key is not listed, and a listed node claiming another id
#  rogue ID NAME CERT PORT: a node of our own, beside the cluster's
rogue() {
    "$BS_BIN/bookstore-node" --service catalog --id "$1" --data "$BS_TMP/$2" --keys "$keys" --cert "$3" \
        --broker "tcp://127.0.0.1:$((BS_PORT + 1))" --pub-bind "tcp://127.0.0.1:$4" \
        --sync-bind "tcp://127.0.0.1:$(($4 + 1))" --heartbeat-ms 100 > "$BS_TMP/$2.log" 2>&1 &
    echo $!
}
pid=$(rogue catalog-9 rogue "$BS_TMP/strangers/nodes/catalog-1" $((BS_PORT + 60)))
deadline=$((SECONDS + 10))
until grep -q "refused a CURVE connection.*domain 'nodes'" "$BS_TMP/cluster.log" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
check "an unlisted node key cannot connect to the node port" grep -q "refused a CURVE connection.*domain 'nodes'" "$BS_TMP/cluster.log"
check "...so it is not registered" test "$(sbs --json status | jq '[.nodes[] | select(.id == "catalog-9")] | length')" = 0
kill "$pid"
"$BS_BIN/bookstore" keygen "$keys" nodes/catalog-7 > /dev/null
pid=$(rogue catalog-8 impostor "$keys/nodes/catalog-7" $((BS_PORT + 62)))
deadline=$((SECONDS + 10))
until grep -q "refused READY from 'catalog-8'" "$BS_TMP/cluster.log" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
check "a listed node key cannot register under another node's id" grep -q "refused READY from 'catalog-8'" "$BS_TMP/cluster.log"
check "...so it is not registered" test "$(sbs --json status | jq '[.nodes[] | select(.id == "catalog-8")] | length')" = 0
kill "$pid"; wait "$pid" 2>/dev/null
check "reads and writes still work" test "$(sbs --cert "$keys/admins/admin" --json restock 666 2 | jq .ok)" = true
check "replicas converge over CURVE" bs_wait_converged 20
