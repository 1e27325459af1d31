#!/usr/bin/env bash
#  An order node leads its own partition at a new epoch each start, so that
#  a replica can tell a tail the owner lost from the owner's history.
#  order-1 is killed with SIGKILL and restarted by the launcher three times
#  under a stream of buys: after each start the epoch it reports is
#  strictly higher than before, every acknowledged buy is present once on
#  every order replica (audited by request id against the load's record),
#  and the replicas' digests agree.
source "$(dirname "$0")/lib.sh"
bs_plan 8
bs_start_cluster --catalog 2 --order 3 --restock-period 0
RECORD=$BS_TMP/record.txt

#  The epoch an alive node reports (for an order node: its own partition's)
epoch_of() {
    bs_status --timeout-ms 1000 --attempts 1 \
        | jq -r --arg n "$1" '[.nodes[] | select(.id == $n and .alive) | .epoch][0] // 0' 2>/dev/null
}
#  higher_than NODE EPOCH: the node reports an epoch above EPOCH
higher_than() { local e; e=$(epoch_of "$1"); [ "${e:-0}" -gt "$2" ]; }

bs_load --clients 8 --requests 2500 --mix buy:85,restock:15 --seed 47 \
    --record "$RECORD" > "$BS_TMP/load.json" &
load_pid=$!
check "the load is under way: 200 writes acknowledged" bs_wait_record "$RECORD" 200 30

epochs=$(epoch_of order-1)
rising=yes
at_kill=0
for round in 1 2 3; do
    before=$(epoch_of order-1)
    old=$(bs_pid order-1)
    kill -KILL "$old"
    at_kill=$(bs_record_lines "$RECORD")
    bs_wait_pid_change order-1 "$old" 10 || rising=no
    until_true 20 higher_than order-1 "$before" || rising=no
    epochs="$epochs $(epoch_of order-1)"
    #  Some more writes under way before the next kill
    bs_wait_record "$RECORD" $((at_kill + 150)) 30
done
log "order-1's epochs, start after start: $epochs"
check "after each of 3 restarts order-1 leads its partition at a strictly higher epoch" test "$rising" = yes
check "order-1 serves again" bs_wait_ready 5 30
wait $load_pid
check "every request got a definite answer across the restarts (the load exits 0)" test $? = 0
load=$(cat "$BS_TMP/load.json")
check "...and writes were acknowledged after the last restart" test "$(bs_record_lines "$RECORD")" -gt "$at_kill"
check "every replica converges: the order replicas' digests agree" bs_wait_converged 30
check "every acknowledged buy is present once on every order replica, nothing unacknowledged took effect" \
    bs_check_accounts "$load" "$RECORD"
