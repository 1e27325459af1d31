#!/usr/bin/env bash
#  A request retried with the same request id takes effect once
source "$(dirname "$0")/lib.sh"
bs_plan 11
bs_start_cluster --restock-period 0

rid=0123456789abcdef0123456789abcdef
first=$(bs --json --rid $rid buy 321)
second=$(bs --json --rid $rid buy 321)
check "a retried buy returns the first result" \
    eval 'bs_holds ".ok and (.order_id | type == \"string\")" <<< "$first" && [ "$(jq -r .order_id <<< "$first")" = "$(jq -r .order_id <<< "$second")" ]'
check "...and takes one copy" test "$(bs --json lookup 321 | jq .stock)" = 7
check "...and records one order" test "$(bs --json orders --item 321 | jq '.orders | length')" = 1

rid2=fedcba9876543210fedcba9876543210
bs --json --rid $rid2 restock 321 5 > /dev/null
bs --json --rid $rid2 restock 321 5 > /dev/null
check "a retried restock adds its copies once" test "$(bs --json lookup 321 | jq .stock)" = 12

#  Several copies of the same buy in flight at once
rid3=00000000000000000000000000000abc
pids=()
for i in $(seq 8); do
    bs --json --rid $rid3 buy 499 > "$BS_TMP/same-$i.json" &
    pids+=($!)
done
wait "${pids[@]}"
check "8 simultaneous copies of one buy all succeed" test "$(cat "$BS_TMP"/same-*.json | jq -s '[.[] | select(.ok)] | length')" = 8
check "...with one order id" test "$(cat "$BS_TMP"/same-*.json | jq -s -c '[.[].order_id] | [length, (unique | length), (map(type) | unique)]')" = '[8,1,["string"]]'
check "...taking one copy" test "$(bs --json lookup 499 | jq .stock)" = 9

#  A buy that reuses the request id of another write takes no copy
rid4=0000000000000000000000000000beef
bs --json --rid $rid4 restock 846 1 > /dev/null
stock=$(bs --json lookup 846 | jq .stock)
out=$(bs --json --rid $rid4 buy 846)
check "a buy reusing another write's request id is refused: bad_field" test "$(echo "$out" | jq -r .error)" = bad_field
check "...saying the id was used" bash -c "echo '$out' | jq -r .message | grep -q 'already used'"
check "...and takes no copy" test "$(bs --json lookup 846 | jq .stock)" = "$stock"
