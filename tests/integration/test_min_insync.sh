#!/usr/bin/env bash
#  With min-insync 2, writes are refused while only the primary is in sync,
#  and nothing changes; reads go on
source "$(dirname "$0")/lib.sh"
bs_plan 10
bs_start_cluster --restock-period 0 --node-args "--min-insync 2"

check "writes succeed while both catalog replicas are in sync" test "$(bs --json set-price 321 6 | jq .ok)" = true
follower=$(bs --json status | jq -r '[.nodes[] | select(.service == "catalog" and .role == "follower") | .id][0]')
touch "$BS_DATA/hold/$follower"
kill -KILL "$(bs_pid "$follower")"
check "the broker notices the killed follower" bs_wait_dead "$follower" 10
#  The primary stops counting the follower once the broker confirms it left
deadline=$((SECONDS + 10))
while [ $SECONDS -lt $deadline ]; do
    out=$(bs --json --attempts 1 set-price 321 9); rc=$?
    [ "$(echo "$out" | jq -r .error)" = unavailable ] && break
    sleep 0.1
done
check "a write is refused with 'unavailable' when too few replicas are in sync" \
    test "$(echo "$out" | jq -r .error):$rc" = "unavailable:3"
check "...with a sentence saying why" eval '[[ $(echo "$out" | jq -r .message) == *"in sync"* ]]'
before=$(bs --json lookup 321 | jq .cost)
out=$(bs --json --attempts 1 set-price 321 11)
check "another write is refused" test "$(echo "$out" | jq -r .error)" = unavailable
check "...and changes nothing" eval '[[ $before =~ ^[0-9]+$ && $(bs --json lookup 321 | jq .cost) == "$before" ]]'
check "reads still work" test "$(bs --json lookup 321 | jq .ok)" = true
rm "$BS_DATA/hold/$follower"
check "the follower comes back in sync" bs_wait_ready 4 20
check "writes resume when the follower is back in sync" test "$(bs --json set-price 321 9 | jq .cost)" = 9
