#!/usr/bin/env bash
#  100 shoppers buy a 10-copy book at the same moment: exactly 10 succeed
source "$(dirname "$0")/lib.sh"
bs_plan 6
bs_start_cluster --restock-period 0

mkdir -p "$BS_TMP/buys"
pids=()
for i in $(seq 100); do
    bs --json buy 666 > "$BS_TMP/buys/$i.json" 2>/dev/null &
    pids+=($!)
done
wait "${pids[@]}"
succ=$(cat "$BS_TMP"/buys/*.json | jq -s '[.[] | select(.ok)] | length')
oos=$(cat "$BS_TMP"/buys/*.json | jq -s '[.[] | select(.error == "out_of_stock")] | length')
check "100 concurrent buys of 10 copies: exactly 10 succeed" test "$succ" = 10
check "the other 90 are told out_of_stock" test "$oos" = 90
check "stock is 0, never negative" test "$(bs --json lookup 666 | jq .stock)" = 0
check "exactly 10 orders are recorded" test "$(bs --json orders --item 666 | jq '.orders | length')" = 10
ids=$(cat "$BS_TMP"/buys/*.json | jq -s -r '[.[] | select(.ok) | .order_id] | sort | join(",")')
recorded=$(bs --json orders --item 666 | jq -r '[.orders[].order_id] | sort | join(",")')
check "the recorded orders are the acknowledged ones" test -n "$ids" -a "$ids" = "$recorded"
