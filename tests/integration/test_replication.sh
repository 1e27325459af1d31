#!/usr/bin/env bash
#  Replication with 2 catalog and 2 order replicas: convergence under
#  concurrent writes, catch-up after a kill, a snapshot for an empty
#  replica, no oversell across replicas
source "$(dirname "$0")/lib.sh"
bs_start_cluster --restock-period 0

#  1. Convergence: 2000 mixed writes from 16 concurrent clients
load=$(bs_load 16 2000 buy:50,set_price:15,restock:20,add_book:15 11)
check "2000 mixed writes all got definite answers" test "$(echo "$load" | jq .gave_up)" = 0
check "every replica of each partition reports the same digest" bs_wait_converged 20
check "stock and orders match the acknowledged writes on every replica" bs_check_accounts "$load"
#  With nothing lost on the way, no in-sync follower had cause to fetch (a
#  fetch takes it out of the in-sync set, and writes wait for the broker to
#  confirm the smaller set)
check "...and no follower dropped out of sync to fetch meanwhile" \
    bs_no_line "fetches .*: out of sync" "$BS_TMP/cluster.log"

#  2. Catch-up: a follower misses 5000 writes and catches up from the log
follower=$(bs --json status | jq -r '[.nodes[] | select(.service == "catalog" and .role == "follower") | .id][0]')
touch "$BS_DATA/hold/$follower"
kill -KILL "$(bs_pid "$follower")"
check "the broker notices the killed follower" bs_wait_dead "$follower" 10
load2=$(bs_load 16 5000 set_price:50,restock:50 12)
check "5000 writes succeed while a follower is down" test "$(echo "$load2" | jq '.gave_up + .refused')" = 0
primary_seq=$(bs --json status | jq '[.nodes[] | select(.service == "catalog" and .role == "primary") | .seq][0]')
snapshots_before=$(grep -c "$follower: receiving a snapshot" "$BS_TMP/cluster.log")
rm "$BS_DATA/hold/$follower"
#  Until it has caught up the follower is not in sync, so it gets no reads.
#  The seq in the status is the follower's last heartbeat's, which may lag
#  the primary's word that it is in sync: so the follower itself is asked,
#  the moment it is seen in sync, how far it has applied.
early=0
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ]; do
    row=$(bs --json status | jq -c --arg n "$follower" '.nodes[] | select(.id == $n and .alive)')
    [ -z "$row" ] && { sleep 0.05; continue; }
    if [ "$(echo "$row" | jq .insync)" = true ]; then
        applied=$(bs --json --node "$follower" lookup 321 | jq .seq)
        log "in sync; the follower has applied $applied of $primary_seq"
        [ "$applied" -lt "$primary_seq" ] && early=1
        break
    fi
    sleep 0.05
done
check "the restarted follower comes back in sync" test "$(echo "$row" | jq .insync)" = true
check "...and is not in sync (serving reads) before it has every entry" test "$early" = 0
check "...having caught up from the log, not a snapshot" \
    test "$(grep -c "$follower: receiving a snapshot" "$BS_TMP/cluster.log")" = "$snapshots_before"
check "...and converges with the primary" bs_wait_converged 20

#  3. An empty replica gets a snapshot and converges
touch "$BS_DATA/hold/$follower"
kill -KILL "$(bs_pid "$follower")"
bs_wait_dead "$follower" 10
rm -rf "${BS_DATA:?}/$follower"
bs_load 4 200 set_price:50,restock:50 13 > /dev/null
rm "$BS_DATA/hold/$follower"
check "a replica started with an empty data directory comes back" bs_wait_ready "$BS_NODES" 30
check "...after receiving a snapshot" grep -q "$follower: snapshot of catalog loaded" "$BS_TMP/cluster.log"
check "...and converges" bs_wait_converged 20

#  7. No oversell across replicas: 100 concurrent buys of a 10-copy book
bs --json add-book 4242 oversell "Ten copies only" 7 10 > /dev/null
pids=()
for i in $(seq 100); do
    bs --json buy 4242 > "$BS_TMP/buy-$i.json" 2>/dev/null &
    pids+=($!)
done
wait "${pids[@]}"
check "100 concurrent buys of 10 copies over 2 order nodes: exactly 10 succeed" \
    test "$(cat "$BS_TMP"/buy-*.json | jq -s '[.[] | select(.ok)] | length')" = 10
check "buys were spread over both order nodes" \
    test "$(bs --json status | jq '[.nodes[] | select(.service == "order" and .requests > 0)] | length')" = 2
bs_wait_converged 20
for node in $(bs --json status | jq -r '.nodes[] | select(.service == "catalog") | .id'); do
    check "stock is 0 on $node" test "$(bs --json --node "$node" lookup 4242 | jq .stock)" = 0
done
for node in $(bs --json status | jq -r '.nodes[] | select(.service == "order") | .id'); do
    check "10 orders on $node" test "$(bs --json --node "$node" orders --item 4242 | jq '.orders | length')" = 10
done
