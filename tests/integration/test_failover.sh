#!/usr/bin/env bash
#  Three replicas of each service.  The catalog primary is killed during a
#  stream of writes: an in-sync follower takes over at a higher epoch, no
#  acknowledged write is lost, doubled or undone (audited by request id
#  against the load's record), and the old primary returns as a follower
#  and converges.
source "$(dirname "$0")/lib.sh"
bs_plan 12
bs_start_cluster --catalog 3 --order 3 --restock-period 0
RECORD=$BS_TMP/record.txt

old=$(bs_catalog_primary)
old_epoch=$(bs --json status | jq --arg n "$old" '.nodes[] | select(.id == $n) | .epoch')
bs_load --clients 12 --requests 3000 --mix buy:70,restock:20,set_price:10 --seed 31 \
    --record "$RECORD" > "$BS_TMP/load.json" &
load_pid=$!
#  Strike once the load is well under way: 300 writes acknowledged
bs_wait_record "$RECORD" 300 30
touch "$BS_DATA/hold/$old"
kill -KILL "$(bs_pid "$old")"
at_kill=$(bs_record_lines "$RECORD")
running=no
kill -0 "$load_pid" 2> /dev/null && running=yes
log "the primary $old was killed with $at_kill writes acknowledged; the load was running: $running"
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
check "...at a higher epoch" test "${new_epoch:-0}" -gt "${old_epoch:-999999}"
check "the load was still running, well under way, when the kill landed" test "$running:$((at_kill >= 300))" = yes:1
wait $load_pid
check "every request got a definite answer across the failover (the load exits 0)" test $? = 0
load=$(cat "$BS_TMP/load.json")
check "...and writes were acknowledged after the kill" test "$(bs_record_lines "$RECORD")" -gt "$at_kill"
check "the surviving replicas converge" bs_wait_converged 30
check "no acknowledged write is lost, doubled or undone on any replica, nothing unacknowledged took effect" \
    bs_check_accounts "$load" "$RECORD"

rm "$BS_DATA/hold/$old"
check "the old primary returns" bs_wait_ready 6 30
check "...as a follower" test "$(bs --json status | jq -r --arg n "$old" '.nodes[] | select(.id == $n) | .role')" = follower
check "...and converges with the new primary" bs_wait_converged 30
check "the audit still passes with the old primary back" bs_check_accounts "$load" "$RECORD"
