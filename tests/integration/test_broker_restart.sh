#!/usr/bin/env bash
#  The broker itself is killed under load: the launcher restarts it, the
#  nodes register again, the catalog keeps its primary and epoch, and every
#  client that retried got its answer, with nothing lost or doubled
source "$(dirname "$0")/lib.sh"
bs_start_cluster --restock-period 0

status() { bs --json --timeout-ms 500 --attempts 1 status 2>/dev/null; }
primary=$(bs_catalog_primary)
epoch=$(status | jq --arg n "$primary" '.nodes[] | select(.id == $n) | .epoch')
bs_load 8 3000 buy:60,restock:20,set_price:20 41 > "$BS_TMP/load.json" &
load=$!
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    seq=$(status | jq --arg n "$primary" '.nodes[] | select(.id == $n) | .seq')
    [ "${seq:-0}" -gt 300 ] && break
    sleep 0.05
done
old=$(bs_pid broker)
kill -KILL "$old"
check "the launcher restarts the broker" bs_wait_pid_change broker "$old" 10
check "every node registers with the new broker and is in sync" bs_wait_ready 4 20
out=$(status)
check "the catalog keeps its primary" test "$(bs_catalog_primary)" = "$primary"
check "...at its epoch or a later one" \
    test "$(echo "$out" | jq --arg n "$primary" '.nodes[] | select(.id == $n) | .epoch')" -ge "$epoch"
wait $load
result=$(cat "$BS_TMP/load.json")
log "load: $(echo "$result" | jq -c 'del(.items)')"
check "every request got a definite answer across the restart" test "$(echo "$result" | jq .gave_up)" = 0
check "...some of them after retrying" test "$(echo "$result" | jq .retries)" -gt 0
check "the replicas converge" bs_wait_converged 30
check "no acknowledged buy is lost or doubled: stock and orders match on every replica" bs_check_accounts "$result"
check "writes work after the restart" test "$(bs --json set-price 846 9 | jq .cost)" = 9
