#!/usr/bin/env bash
#  Replication with 2 catalog and 2 order replicas: convergence under
#  concurrent writes, catch-up after a kill, a snapshot for an empty
#  replica, no oversell across replicas; after each, every replica holds
#  every acknowledged write (audited by request id against the loads'
#  records) and nothing else
source "$(dirname "$0")/lib.sh"
bs_plan 23
bs_start_cluster --restock-period 0

#  1. Convergence: 2000 mixed writes from 16 concurrent clients
load=$(bs_load --clients 16 --requests 2000 --mix buy:50,set_price:15,restock:20,add_book:15 --seed 11 \
       --record "$BS_TMP/record1.txt")
check "2000 mixed writes all got definite answers (the load exits 0)" test $? = 0
check "every replica of each partition reports the same digest" bs_wait_converged 20
check "every replica holds every acknowledged write, by request id, and nothing else" \
    bs_check_accounts "$load" "$BS_TMP/record1.txt"
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
load2=$(bs_load --clients 16 --requests 5000 --mix set_price:50,restock:50 --seed 12 --record "$BS_TMP/record2.txt")
check "5000 writes succeed while a follower is down (the load exits 0, nothing refused)" \
    test "$?:$(echo "$load2" | jq .refused)" = 0:0
primary_seq=$(bs --json status | jq '[.nodes[] | select(.service == "catalog" and .role == "primary") | .seq][0]')
snapshots_before=$(grep -c "$follower: receiving a snapshot" "$BS_TMP/cluster.log")
rm "$BS_DATA/hold/$follower"
#  Until it has caught up the follower is not in sync, so it gets no reads.
#  The seq in the status is the follower's last heartbeat's, which may lag
#  the primary's word that it is in sync: so the follower itself is asked,
#  the moment it is seen in sync, how far it has applied.
early=unknown
row=
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ]; do
    row=$(bs --json status | jq -c --arg n "$follower" '.nodes[] | select(.id == $n and .alive)')
    [ -z "$row" ] && { sleep 0.05; continue; }
    if [ "$(echo "$row" | jq .insync)" = true ]; then
        applied=$(bs --json --node "$follower" lookup 321 | jq .seq)
        log "in sync; the follower has applied $applied of $primary_seq"
        if [[ $applied =~ ^[0-9]+$ && $primary_seq =~ ^[0-9]+$ ]]; then
            early=$(( applied < primary_seq ))
        fi
        break
    fi
    sleep 0.05
done
check "the restarted follower comes back in sync" test "$(echo "$row" | jq .insync)" = true
check "...and is not in sync (serving reads) before it has every entry" test "$early" = 0
check "...having caught up from the log, not a snapshot" \
    test "$(grep -c "$follower: receiving a snapshot" "$BS_TMP/cluster.log")" = "$snapshots_before"
check "...and converges with the primary" bs_wait_converged 20
loads=$(bs_join_loads "$BS_TMP/record12.txt" "$load" "$BS_TMP/record1.txt" "$load2" "$BS_TMP/record2.txt")
check "...holding every write acknowledged before and while it was down" \
    bs_check_accounts "$loads" "$BS_TMP/record12.txt"

#  3. An empty replica gets a snapshot and converges
touch "$BS_DATA/hold/$follower"
kill -KILL "$(bs_pid "$follower")"
check "the broker notices the follower killed again" bs_wait_dead "$follower" 10
rm -rf "${BS_DATA:?}/$follower"
load3=$(bs_load --clients 4 --requests 200 --mix set_price:50,restock:50 --seed 13 --record "$BS_TMP/record3.txt")
check "200 more writes succeed meanwhile (the load exits 0)" test $? = 0
rm "$BS_DATA/hold/$follower"
check "a replica started with an empty data directory comes back" bs_wait_ready "$BS_NODES" 30
check "...after receiving a snapshot" grep -q "$follower: snapshot of catalog loaded" "$BS_TMP/cluster.log"
check "...and converges" bs_wait_converged 20
loads=$(bs_join_loads "$BS_TMP/record123.txt" "$load" "$BS_TMP/record1.txt" "$load2" "$BS_TMP/record2.txt" \
                      "$load3" "$BS_TMP/record3.txt")
check "...holding every acknowledged write of the three loads" bs_check_accounts "$loads" "$BS_TMP/record123.txt"

#  7. No oversell across replicas: 100 concurrent buys of a 10-copy book,
#  from clients of their own (the broker balances each buy to the order
#  node with the fewest requests outstanding)
bs --json add-book 4242 oversell "Ten copies only" 7 10 > /dev/null
served() { bs --json status | jq -r '[.nodes[] | select(.service == "order") | "\(.id) \(.requests)"] | sort | .[]'; }
before=$(served)
pids=()
for i in $(seq 100); do
    bs --json buy 4242 > "$BS_TMP/buy-$i.json" 2>/dev/null &
    pids+=($!)
done
wait "${pids[@]}"
after=$(served)
log "order nodes' requests before: $(echo $before); after: $(echo $after)"
check "100 concurrent buys of 10 copies over 2 order nodes: exactly 10 succeed" \
    test "$(cat "$BS_TMP"/buy-*.json | jq -s '[.[] | select(.ok)] | length')" = 10
#  Each order node served some of the buys.  The counter is per
#  registration: a node that registered again meanwhile (declared dead
#  under load, then back) counts from zero, and all it counts came after
#  the first reading
check "buys were spread over both order nodes" \
    test "$(join <(echo "$before") <(echo "$after") \
            | awk '{ served = $3 >= $2? $3 - $2: $3 } served > 0 { n++ } END { print n + 0 }')" = 2
check "the replicas converge" bs_wait_converged 20
per_node() {        # per_node SERVICE COMMAND...: "node:result ..." for the service's two replicas
    local service=$1 node
    shift
    for node in "$service-1" "$service-2"; do echo -n "$node:$("$@" "$node") "; done
}
stock_of() { bs --json --node "$1" lookup 4242 | jq -c .stock; }
orders_of() { bs --json --node "$1" orders --item 4242 | jq -r '[.orders[]?.order_id] | sort | join(",")'; }
acked=$(cat "$BS_TMP"/buy-*.json | jq -s -r '[.[] | select(.ok) | .order_id] | sort | join(",")')
check "stock is 0 on both catalog replicas" test "$(per_node catalog stock_of)" = "catalog-1:0 catalog-2:0 "
check "both order replicas hold the 10 acknowledged orders, and no other" \
    test "$(per_node order orders_of)" = "order-1:$acked order-2:$acked " -a "$(echo "$acked" | tr ',' '\n' | grep -c .)" = 10
