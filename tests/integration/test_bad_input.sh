#!/usr/bin/env bash
#  Bad input gets an error with a code and a sentence, changes nothing, and
#  crashes nothing
source "$(dirname "$0")/lib.sh"
bs_plan 24
bs_start_cluster --restock-period 0

probe() { "$BS_HELPERS/probe" "tcp://127.0.0.1:$BS_PORT" "tcp://127.0.0.1:$((BS_PORT + 1))" "$1"; }
#  What each replica holds, asked of each replica itself (--node bypasses
#  the broker's cache, so a change made without an invalidation shows):
#  its digest, its catalog or its orders
replicas() {
    bs --json status | jq -c '[.nodes[] | {id, digest}] | sort_by(.id)'
    local n
    for n in catalog-1 catalog-2; do
        bs --json --node $n search distributed_systems | jq -c '.items'
        bs --json --node $n search graduate_school | jq -c '.items'
    done
    for n in order-1 order-2; do bs --json --node $n orders | jq -c '.orders'; done
}
#  One order, so that the order nodes hold something that could change
bs --json buy 846 > /dev/null
bs_wait_converged 15
before=$(replicas)
seqs() { bs --json status | jq -c '[.nodes[] | {id, seq}] | sort_by(.id)'; }
seqs_before=$(seqs)

expect() {
    local case=$1 code=$2 out
    out=$(probe "$case")
    if [ "$(echo "$out" | jq -r '.ok == false and (.message | length > 0)')" = true ] \
       && [ "$(echo "$out" | jq -r .error)" = "$code" ]; then
        ok "$case: error $code with a sentence"
    else
        not_ok "$case: error $code with a sentence (got: $out)"
    fi
}
expect malformed-msgpack bad_msgpack
expect not-a-map         bad_msgpack
expect frame-count       bad_frame
expect extra-frames      bad_frame
expect wrong-header      bad_frame
expect unknown-service   unknown_service
expect unknown-op        unknown_op
expect wrong-service-op  unknown_op
expect wrong-type        bad_field
expect negative-count    bad_field
expect absurd-count      bad_field
expect negative-price    bad_field
expect unknown-item      unknown_item
expect long-title        bad_field
expect long-topic        bad_field
expect oversized         too_large
out=$(probe node-garbage)
check "garbage on the node port is dropped and the broker keeps serving" test "$(echo "$out" | jq .ok)" = true

out=$(probe bad-node-ids)
check "a node id that is not plain text cannot register" \
    test "$(echo "$out" | jq '[.nodes[] | select(.id | test("bad"))] | length')" = 0
check "...nor a second node under a live node's id" \
    test "$(echo "$out" | jq '[.nodes[] | select(.id == "catalog-1")] | length')" = 1
after=$(replicas)
log "before: $before"
[ "$after" = "$before" ] || log "after: $after"
check "no bad input changed any replica's digest, catalog or orders" test "$after" = "$before"
#  The one well-formed write the data refuses (set_price of an unknown item)
#  is logged, so that a retry with its rid gets the same refusal: each
#  catalog replica's seq moves by one; nothing else reaches any log
#  (a follower applies it a moment after the primary: wait up to 10 s)
expected=$(jq -c 'map(if (.id | startswith("catalog")) then .seq += 1 else . end)' <<< "$seqs_before")
deadline=$((SECONDS + 10))
until [ "$(seqs)" = "$expected" ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
log "seqs before: $seqs_before; after: $(seqs)"
check "only the remembered refusal moved the logs: catalogs one entry on, order nodes unchanged" \
    test "$(seqs)" = "$expected"
check "every process is still running" bs_all_running
check "no node was declared dead" test "$(bs --json status | jq '[.nodes[] | select(.alive | not)] | length')" = 0
