#!/usr/bin/env bash
#  test_broker_ha - several brokers, one active: the holder of the active
#  lease in etcd.
#
#  Two brokers: one is active, the other says so to clients (not_active,
#  naming it).  Killing the active broker under load: the other takes the
#  lease, every acknowledged buy is there once, nothing is oversold, the
#  replicas agree, and the old broker comes back without serving.  Three
#  brokers: the active one is killed, then its successor; the third takes
#  over and serves.
. "$(dirname "$0")/lib.sh"
bs_plan 25

#  No periodic restocks: the audit accounts for every copy
bs_start_cluster --brokers 2 --restock-period 0

#  ---- Two brokers
check "one broker is active, and both name it" bs_wait_brokers 20
active=$(bs_active_broker)
standby=$(other_of "$active")
check "bookstore status --json lists the active broker with its endpoint" \
    test "$(bs --json status | jq -c '[.brokers[] | select(.active) | {id, endpoint}]')" \
       = "[{\"id\":\"$active\",\"endpoint\":\"$(endpoint_of "$active")\"}]"
out=$(one "$(endpoint_of "$standby")" --attempts 1 lookup 321 2>&1)
check "a client of the standby broker alone is told not_active, with the active one's endpoint" \
    eval '[[ $out == *not_active* && $out == *"$(endpoint_of "$active")"* ]]'
check "a client listing the standby broker first is served all the same" \
    test "$(one "$(endpoint_of "$standby"),$(endpoint_of "$active")" --json lookup 321 | jq .item)" = 321
check "every node serves through the active broker" \
    test "$(bs --json status | jq '[.nodes[] | select(.alive)] | length')" = "$BS_NODES"

#  ---- Killing the active broker under load
initial=$(bs_books_now)
RECORD=$BS_TMP/record.txt
"$BS_BIN/bookstore-load" --endpoint "$BS_ENDPOINTS" --clients 8 --seconds 8 \
    --mix buy:60,lookup:20,restock:10,set_price:10 --seed 41 --record "$RECORD" \
    --attempt-ms 500 > "$BS_TMP/load.json" 2> "$BS_TMP/load.log" &
load_pid=$!
#  Once the load has 200 writes acknowledged, the kill; then lookups
#  through both brokers (sent to a catalog replica: the new active
#  broker's cache is cold) until one is answered
bs_wait_record "$RECORD" 200 20
#  The launcher holds the killed broker down until the other has taken
#  over
victim=$(bs_pid "$active")
touch "$BS_DATA/hold/$active"
kill -KILL "$victim"
killed=$(date +%s%3N)
at_kill=$(bs_record_lines "$RECORD")
running=no
kill -0 "$load_pid" 2> /dev/null && running=yes
check "the active broker was killed under load: running, 200 writes acknowledged" \
    test "$running:$((at_kill >= 200))" = yes:1
resumed=
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    if bs --json --timeout-ms 300 --attempts 4 lookup 321 2> /dev/null | bs_holds .ok; then
        resumed=$(date +%s%3N)
        break
    fi
done
check "after the active broker is killed, the store answers again" test -n "$resumed"
[ -n "$resumed" ] && log "service resumed $((resumed - killed)) ms after the kill (a lookup through both brokers)"
check "$standby took over" until_true 20 believes_active "$standby"
wait "$load_pid"
check "the load got a definite answer for every request (it exits 0)" test $? = 0
load=$(cat "$BS_TMP/load.json")
log "load: $(echo "$load" | jq -c '{requests, acked_buys, refused, retries, gave_up, max_latency_ms, p99_latency_ms}')"
check "...and writes were acknowledged after the kill" test "$(bs_record_lines "$RECORD")" -gt "$at_kill"
check "the load's only errors were books out of stock" \
    test "$(echo "$load" | jq -c '.errors | del(.out_of_stock)')" = '{}'
rm "$BS_DATA/hold/$active"
log "the longest any request of the load waited (writes included): $(echo "$load" | jq .max_latency_ms) ms"
check "the replicas converge" bs_wait_converged 20
audit=$(bs_audit "$load" "$initial" "$RECORD" 2> "$BS_TMP/audit.log")
rc=$?
log "audit: $audit"
check "no acknowledged write lost, none doubled, none unacknowledged, nothing oversold or mispriced" \
    eval '[ $rc = 0 ] && bs_holds ".read == {\"catalog\": 2, \"order\": 2}" <<< "$audit"'
[ "$BS_FAILED" = 0 ] || sed 's/^/#   /' "$BS_TMP/audit.log" | head -20
check "the old broker came back (restarted by the launcher) without serving, and both name $standby" \
    eval 'bs_wait_pid_change "$active" "$victim" 20 && bs_wait_brokers 20 && test "$(bs_active_broker)" = "$standby"'
check "a client of the old broker alone is told not_active" \
    eval '[[ $(one "$(endpoint_of "$active")" --attempts 1 lookup 321 2>&1) == *not_active* ]]'
check "...a plain status too (the active broker's view is the store's)" \
    eval '[[ $(one "$(endpoint_of "$active")" --attempts 1 status 2>&1) == *not_active* ]]'
bs_stop_cluster
mv "$BS_TMP/cluster" "$BS_TMP/cluster-of-two"
mv "$BS_TMP/cluster.log" "$BS_TMP/cluster-of-two.log"

#  ---- Three brokers: the active one killed twice in a row
bs_start_cluster --brokers 3 --restock-period 0
check "three brokers: one is active, and all three name it" bs_wait_brokers 20
#  registered: the brokers etcd lists under brokers/ (each record is bound
#  to its broker's lease), as sorted ids
registered() {
    etcdctl --endpoints "$(bs_etcd_url)" --command-timeout 2s get --prefix --print-value-only \
        /bookstore/default/brokers/ 2> /dev/null | jq -sr 'map(select(.endpoint | startswith("tcp://127.0.0.1:")) | .id) | sort | join(",")'
}
check "etcd lists the three brokers, each with its endpoint" \
    eval 'until_true 10 eval "[ \"\$(registered)\" = broker-1,broker-2,broker-3 ]"'
#  kill_active: SIGKILLs the active broker, held down; prints its id once
#  the store answers again through the endpoint list
kill_active() {
    local id
    id=$(bs_active_broker)
    [ -n "$id" ] || return 1
    touch "$BS_DATA/hold/$id"
    kill -KILL "$(bs_pid "$id")"
    until_true 20 eval 'bs --json --timeout-ms 300 --attempts 4 lookup 321 2> /dev/null | bs_holds .ok' || return 1
    echo "$id"
}
first=$(kill_active)
check "the active broker ($first) is killed, and the store answers again" test -n "$first"
second=$(kill_active)
check "its successor ($second) is killed too, and the store answers again" \
    eval '[ -n "$second" ] && [ "$second" != "$first" ]'
check "...and the two killed ones leave the list as their leases run out" \
    eval 'until_true 10 eval "[ \"\$(registered)\" = \"$(printf "%s\n" broker-1 broker-2 broker-3 | grep -vx -e "$first" -e "$second")\" ]"'
third=
for id in broker-1 broker-2 broker-3; do [ "$id" != "$first" ] && [ "$id" != "$second" ] && third=$id; done
check "the third broker ($third) took over and serves writes" \
    eval 'until_true 10 believes_active "$third" && bs --json buy 321 | bs_holds .ok'
rm -f "$BS_DATA/hold/$first" "$BS_DATA/hold/$second"
check "the killed brokers come back and all three name $third active" \
    eval 'until_true 20 eval "bs_brokers_agree && test \$(bs_active_broker) = $third"'
