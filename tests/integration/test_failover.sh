#!/usr/bin/env bash
#  Three replicas of each service.  The catalog primary is killed during a
#  stream of buys: an in-sync follower takes over at a higher epoch, no
#  acknowledged buy is lost or doubled, and the old primary returns as a
#  follower and converges.
source "$(dirname "$0")/lib.sh"
bs_start_cluster --catalog 3 --order 3 --restock-period 0

old=$(bs_catalog_primary)
old_epoch=$(bs --json status | jq --arg n "$old" '.nodes[] | select(.id == $n) | .epoch')
bs_load 12 3000 buy:70,restock:20,set_price:10 31 > "$BS_TMP/load.json" &
load_pid=$!
#  Strike once the load is well under way
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    seq=$(bs --json status | jq --arg n "$old" '.nodes[] | select(.id == $n) | .seq')
    [ "${seq:-0}" -gt 400 ] && break
    sleep 0.05
done
touch "$BS_DATA/hold/$old"
kill -KILL "$(bs_pid "$old")"
#  The broker names the new primary at once; the node reports the epoch it
#  took over at with its next heartbeat
new=""; new_epoch=0
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    new=$(bs_catalog_primary)
    if [ -n "$new" ] && [ "$new" != "$old" ]; then
        new_epoch=$(bs --json status | jq --arg n "$new" '.nodes[] | select(.id == $n) | .epoch')
        [ "${new_epoch:-0}" -gt "$old_epoch" ] && break
    fi
    sleep 0.05
done
check "a follower is promoted when the primary is killed" test -n "$new" -a "$new" != "$old"
check "...at a higher epoch" test "${new_epoch:-0}" -gt "$old_epoch"
wait $load_pid
load=$(cat "$BS_TMP/load.json")
check "every buy got a definite answer across the failover" test "$(echo "$load" | jq .gave_up)" = 0
check "the surviving replicas converge" bs_wait_converged 30
check "no acknowledged buy is lost or doubled: stock and orders match on every replica" bs_check_accounts "$load"

rm "$BS_DATA/hold/$old"
check "the old primary returns" bs_wait_ready 6 30
check "...as a follower" test "$(bs --json status | jq -r --arg n "$old" '.nodes[] | select(.id == $n) | .role')" = follower
check "...and converges with the new primary" bs_wait_converged 30
check "accounts still match with the old primary back" bs_check_accounts "$load"
