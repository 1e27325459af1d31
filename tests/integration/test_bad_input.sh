#!/usr/bin/env bash
#  Bad input gets an error with a code and a sentence, changes nothing, and
#  crashes nothing
source "$(dirname "$0")/lib.sh"
bs_start_cluster --restock-period 0

probe() { "$BS_HELPERS/probe" "tcp://127.0.0.1:$BS_PORT" "tcp://127.0.0.1:$((BS_PORT + 1))" "$1"; }
snapshot() { bs --json search distributed_systems; bs --json search graduate_school; bs --json orders; }
before=$(snapshot)

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
check "no bad input changed any data" test "$(snapshot)" = "$before"
check "every process is still running" bs_all_running
check "no node was declared dead" test "$(bs --json status | jq '[.nodes[] | select(.alive | not)] | length')" = 0
