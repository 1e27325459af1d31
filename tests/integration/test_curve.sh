#!/usr/bin/env bash
#  CURVE: only listed keys get anything; only admin keys change the
#  catalog; only listed node keys, under their own id, can register
source "$(dirname "$0")/lib.sh"
bs_plan 28
keys=$BS_TMP/keys
out=$("$BS_BIN/bookstore" --json keygen "$keys")
check "keygen writes the certificates" test "$(echo "$out" | jq .written)" = 10
check "...and keeps them when run again" test "$("$BS_BIN/bookstore" --json keygen "$keys" | jq .written)" = 0
check "secret files are private" test "$(stat -c %a "$keys/admins/admin_secret")" = 600
#  A listed node key for the impostor below, made before the cluster starts
#  (each process is given a view of the directory as it was at start)
"$BS_BIN/bookstore" keygen "$keys" nodes/catalog-7 > /dev/null
export BS_KEYS=$keys
bs_start_cluster --restock-period 0 --keys "$keys"
sbs() { bs "$@"; }
plain() { "$BS_BIN/bookstore" --endpoint "tcp://127.0.0.1:$BS_PORT" "$@"; }
check "the cluster runs with every node in sync over CURVE" \
    test "$(sbs --json status | jq '[.nodes[] | select(.alive and .insync)] | length')" = 4
check "every process says it speaks CURVE" test "$(grep -c 'CURVE: keys from' "$BS_TMP/cluster.log")" -ge 5
#  etcd's node registry holds each node's public key as the keys directory
#  lists it
public_key() { sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$keys/nodes/$1"; }
registry_keys_ok() {
    local id got
    for id in catalog-1 catalog-2 order-1 order-2; do
        got=$(etcdctl --endpoints "$(bs_etcd_url)" --command-timeout 2s get --print-value-only \
              "/bookstore/default/nodes/$id" 2> /dev/null | jq -r '.service + " " + .key')
        [ -n "$(public_key "$id")" ] && [ "$got" = "${id%-*} $(public_key "$id")" ] \
            || { echo "# registry for $id: '$got'"; return 1; }
    done
}
check "etcd's node registry names each node's service and public key" until_true 10 registry_keys_ok

#  Each process reads its own view of the keys: the public certificates and
#  its own secret alone.  views_ok: every broker, node and gateway runs
#  with --keys <data>/keys/<its name>, where the only secret is its own.
own_secret() {
    case $1 in
        broker*) echo broker_secret ;;
        gateway) echo admins/gateway_secret ;;
        *) echo "nodes/$1_secret" ;;
    esac
}
views_ok() {
    local file name pid dir secrets n=0
    for file in "$BS_DATA"/pids/*.pid; do
        name=$(basename "$file" .pid)
        case $name in bookstore-cluster|etcd) continue ;; esac
        pid=$(cat "$file")
        dir=$(tr '\0' '\n' < "/proc/$pid/cmdline" | grep -A1 -x -- --keys | tail -n 1)
        [ "$dir" = "$BS_DATA/keys/$name" ] || { echo "$name runs with keys '$dir'"; return 1; }
        secrets=$(cd "$dir" && find . -name '*_secret' | sed 's|^\./||')
        [ "$secrets" = "$(own_secret "$name")" ] || { echo "$name can read: $secrets"; return 1; }
        n=$((n + 1))
    done
    [ "$n" -ge 5 ] || { echo "only $n processes checked"; return 1; }
}
check "each process can read its own secret key alone" views_ok
check "...and its view is private" test "$(stat -c %a "$BS_DATA/keys/catalog-1")" = 700
out=$("$BS_BIN/bookstore" --json keys-export "$keys" nodes/catalog-99 "$BS_TMP/view"); rc=$?
check "keys-export of a name without a secret: an error, a sentence and nothing written" \
    test "$rc:$(echo "$out" | jq -r .error):$(test -e "$BS_TMP/view" && echo made)" = "2:bad_value:"
check "...with the sentence" bash -c "echo '$out' | jq -r .message | grep -q 'no secret key for nodes/catalog-99'"
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
pid=$(rogue catalog-8 impostor "$keys/nodes/catalog-7" $((BS_PORT + 62)))
deadline=$((SECONDS + 10))
until grep -q "refused READY from 'catalog-8'" "$BS_TMP/cluster.log" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
check "a listed node key cannot register under another node's id" grep -q "refused READY from 'catalog-8'" "$BS_TMP/cluster.log"
check "...so it is not registered" test "$(sbs --json status | jq '[.nodes[] | select(.id == "catalog-8")] | length')" = 0
kill "$pid"; wait "$pid" 2>/dev/null
#  order-3's key (listed, unused) under its own id, as a catalog node
pid=$(rogue order-3 misfit "$keys/nodes/order-3" $((BS_PORT + 64)))
deadline=$((SECONDS + 10))
until grep -q "refused READY from 'order-3' for catalog" "$BS_TMP/cluster.log" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
check "an order node's key cannot register as a catalog node" grep -q "refused READY from 'order-3' for catalog" "$BS_TMP/cluster.log"
check "...so it is not registered" test "$(sbs --json status | jq '[.nodes[] | select(.id == "order-3")] | length')" = 0
kill "$pid"; wait "$pid" 2>/dev/null
check "reads and writes still work" test "$(sbs --cert "$keys/admins/admin" --json restock 666 2 | jq .ok)" = true
check "replicas converge over CURVE" bs_wait_converged 20
