#!/usr/bin/env bash
#  The broker's cache: hot reads never reach a node, every write is seen by
#  the next read, no read is ever older than an acknowledged write, and a
#  write whose invalidation the broker does not acknowledge changes nothing
source "$(dirname "$0")/lib.sh"
bs_plan 28
mute=$BS_TMP/mute-invalidations
bs_start_cluster --restock-period 0 --broker-args "--test-mute-file $mute"

node_requests() { bs --json status | jq '[.nodes[].requests] | add'; }
cache() { bs --json status | jq -r ".cache.$1"; }
#  same A B: A is a real answer (not empty, not null) and B equals it, so
#  that two failed requests never compare equal
same() { [ -n "$1" ] && [[ $1 != *null* ]] && [ "$1" = "$2" ]; }

first=$(bs --json lookup 666)
before=$(node_requests)
hits=$(cache hits)
second=$(bs --json lookup 666)
check "a second lookup is served without any node seeing a request" same "$before" "$(node_requests)"
check "...as a cache hit" test "$(cache hits)" = $((hits + 1))
check "...with the same answer" \
    same "$(echo "$first" | jq -c 'select(.ok) | del(.rid)')" "$(echo "$second" | jq -c 'del(.rid)')"
bs --json search graduate_school > /dev/null
before=$(node_requests)
bs --json search graduate_school > /dev/null
check "a repeated search is served from the cache too" same "$before" "$(node_requests)"
check "reads of one replica (--node) bypass the cache" \
    test "$(bs --json --node catalog-1 lookup 666 | jq .ok):$(node_requests)" = "true:$((before + 1))"

stock=$(echo "$first" | jq .stock)
bs --json buy 666 > /dev/null
check "after a buy the next lookup shows the new stock" test "$(bs --json lookup 666 | jq .stock)" = $((stock - 1))
check "...and so does the next search" \
    test "$(bs --json search distributed_systems | jq '.items[] | select(.item == 666) | .stock')" = $((stock - 1))
bs --json set-price 666 42 > /dev/null
check "after set-price the next lookup shows the new price" test "$(bs --json lookup 666 | jq .cost)" = 42
bs --json restock 666 3 > /dev/null
check "after a restock the next lookup shows the new stock" test "$(bs --json lookup 666 | jq .stock)" = $((stock + 2))
bs --json search cooking > /dev/null
bs --json add-book 5150 cooking "Cooking with Caches" 9 4 > /dev/null
check "after add-book the next search of its topic lists it" \
    test "$(bs --json search cooking | jq -r '[.items[].title] | join(",")')" = "Cooking with Caches"
check "the cache counts its invalidations" test "$(cache invalidations)" -gt 0

#  Concurrent writers and readers: no read older than an acknowledged write
out=$("$BS_HELPERS/stale_check" "tcp://127.0.0.1:$BS_PORT" 20 4 4 7)
log "stale_check: $out"
check "20 s of concurrent writes and reads: no stale read" test "$(echo "$out" | jq .stale)" = 0
check "...over many checked reads and writes" test "$(echo "$out" | jq '.checked > 1000 and .writes > 100')" = true
check "...served mostly from the cache" test "$(cache hits)" -gt 1000

#  The broker stops acknowledging invalidations: writes fail, nothing changes
#  (the broker looks at the switch every heartbeat and logs when it flips)
touch "$mute"
deadline=$((SECONDS + 10))
until grep -q "invalidations unanswered" "$BS_TMP/cluster.log" || [ $SECONDS -ge $deadline ]; do
    sleep 0.05
done
check "the broker notices that invalidations go unanswered" grep -q "invalidations unanswered" "$BS_TMP/cluster.log"
check "the replicas have converged before the writes" bs_wait_converged 20
#  Each catalog replica's digest and applied seq, by id
catalogs() { bs --json status | jq -c '[.nodes[] | select(.service == "catalog") | {id, seq, digest}] | sort_by(.id)'; }
replicas=$(catalogs)
log "catalog replicas: $replicas"
cost=$(bs --json --node catalog-1 lookup 321 | jq .cost)
out=$(bs --json --attempts 1 set-price 321 77); rc=$?
check "with invalidations unanswered a price change fails" test "$(echo "$out" | jq -r .error):$rc" = "not_invalidated:1"
check "...with a sentence saying why" bash -c "echo '$out' | jq -r .message | grep -q 'invalidation'"
out=$(bs --json --attempts 1 restock 321 5)
check "...so does a restock" test "$(echo "$out" | jq -r .error)" = not_invalidated
out=$(bs --json --attempts 1 add-book 5151 cooking "Never Added" 1 1)
check "...and an add-book" test "$(echo "$out" | jq -r .error)" = not_invalidated
out=$(bs --json --attempts 1 buy 321)
check "...and a buy" test "$(echo "$out" | jq -r .ok)" = false
check "no catalog replica changed its digest or moved its log" \
    test "$(jq 'length == 2 and all(.digest | test("^[0-9a-f]{16}$"))' <<< "$replicas"):$(catalogs)" = "true:$replicas"
check "...and each replica still has the price it had ($cost)" \
    same "$cost:$cost" "$(bs --json --node catalog-1 lookup 321 | jq .cost):$(bs --json --node catalog-2 lookup 321 | jq .cost)"
check "reads through the broker still work, with that price" same "$cost" "$(bs --json lookup 321 | jq .cost)"
rm "$mute"
deadline=$((SECONDS + 10))
until grep -q "invalidations answered again" "$BS_TMP/cluster.log" || [ $SECONDS -ge $deadline ]; do
    sleep 0.05
done
check "the broker notices that invalidations are answered again" \
    grep -q "invalidations answered again" "$BS_TMP/cluster.log"
out=$(bs --json --attempts 1 set-price 321 78)
check "writes succeed again once invalidations are answered" \
    test "$(jq .ok <<< "$out"):$(bs --json lookup 321 | jq .cost)" = "true:78"
check "every process is still running" bs_all_running
