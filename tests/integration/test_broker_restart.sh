#!/usr/bin/env bash
#  The broker itself is killed under load: the launcher restarts it, the
#  nodes register again, the catalog keeps its primary and epoch, and every
#  client that retried got its answer, with nothing lost, doubled or
#  undone (audited by request id against the load's record)
source "$(dirname "$0")/lib.sh"
bs_plan 11
bs_start_cluster --restock-period 0
RECORD=$BS_TMP/record.txt

status() { bs --json --timeout-ms 500 --attempts 1 status 2>/dev/null; }
primary=$(bs_catalog_primary)
epoch=$(status | jq --arg n "$primary" '.nodes[] | select(.id == $n) | .epoch')
bs_load --clients 8 --requests 3000 --mix buy:60,restock:20,set_price:20 --seed 41 \
    --record "$RECORD" > "$BS_TMP/load.json" &
load=$!
#  Strike once the load is well under way: 300 writes acknowledged
bs_wait_record "$RECORD" 300 30
old=$(bs_pid broker)
kill -KILL "$old"
at_kill=$(bs_record_lines "$RECORD")
running=no
kill -0 "$load" 2> /dev/null && running=yes
check "the launcher restarts the broker" bs_wait_pid_change broker "$old" 10
check "every node registers with the new broker and is in sync" bs_wait_ready 4 20
out=$(status)
check "the catalog keeps its primary" test "$(bs_catalog_primary)" = "$primary"
check "...at its epoch or a later one" \
    test "$(echo "$out" | jq --arg n "$primary" '.nodes[] | select(.id == $n) | .epoch')" -ge "${epoch:-999999}"
check "the load was still running, well under way, when the kill landed" test "$running:$((at_kill >= 300))" = yes:1
wait $load
check "every request got a definite answer across the restart (the load exits 0)" test $? = 0
result=$(cat "$BS_TMP/load.json")
log "load: $(echo "$result" | jq -c 'del(.items)')"
check "...some of them after retrying" test "$(echo "$result" | jq .retries)" -gt 0
check "the replicas converge" bs_wait_converged 30
check "no acknowledged write is lost, doubled or undone on any replica, nothing unacknowledged took effect" \
    bs_check_accounts "$result" "$RECORD"
check "writes work after the restart" test "$(bs --json set-price 846 9 | jq .cost)" = 9
