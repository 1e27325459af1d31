#!/usr/bin/env bash
#  test_broker_ha - a Binary Star pair of brokers.
#
#  One broker is active, the other passive and says so to clients.  Killing
#  the active broker under load: the backup takes over, every acknowledged
#  buy is there once, nothing is oversold, the replicas agree, and the old
#  broker comes back as the backup.  Two brokers that cannot see each other
#  (both reachable by everyone) never both serve writes.
. "$(dirname "$0")/lib.sh"
bs_plan 26

CUT=$BS_TMP/peer-link-cut
#  No periodic restocks: the audit accounts for every copy
bs_start_cluster --brokers 2 --restock-period 0 --broker-args "--test-peer-mute-file $CUT"
bs_use_pair
#  brokers ENDPOINT: that broker's own view of the pair ("broker@<id>", as
#  a plain status goes to the active one), "id:state ..." sorted
brokers() {
    local id=broker-1
    [ "$1" = "$EP2" ] && id=broker-2
    one "$1" --json --attempts 1 --timeout-ms 2000 --node "$id" status | jq -r '[.brokers[] | "\(.id):\(.state)"] | sort | join(" ")'
}
#  wait_brokers ENDPOINT WANT SECONDS
wait_brokers() {
    local deadline=$((SECONDS + $3)) got=
    while [ $SECONDS -lt "$deadline" ]; do
        got=$(brokers "$1")
        [ "$got" = "$2" ] && return 0
        sleep 0.1
    done
    log "$1 sees: $got (want $2)"
    return 1
}

#  ---- The pair
check "broker-1 is active and broker-2 passive, as both see it" \
    eval 'wait_brokers "$EP1" "broker-1:active broker-2:passive" 10 && wait_brokers "$EP2" "broker-1:active broker-2:passive" 10'
check "bookstore status --json lists both brokers with endpoint and active" \
    test "$(bs --json status | jq -c '[.brokers[] | {id, endpoint, active}] | sort_by(.id)')" \
       = "[{\"id\":\"broker-1\",\"endpoint\":\"$EP1\",\"active\":true},{\"id\":\"broker-2\",\"endpoint\":\"$EP2\",\"active\":false}]"
out=$(one "$EP2" --attempts 1 lookup 321 2>&1)
check "a client of the passive broker alone is told not_active, with the active one's endpoint" \
    eval '[[ $out == *not_active* && $out == *"$EP1"* ]]'
check "a client listing the passive broker first is served all the same" \
    test "$(one "$EP2,$EP1" --json lookup 321 | jq .item)" = 321
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
#  through the pair (sent to a catalog replica: the new active broker's
#  cache is cold) until one is answered
bs_wait_record "$RECORD" 200 20
#  The launcher holds the killed broker down until the backup has taken
#  over (restarted at once, the primary would simply take its role back)
victim=$(bs_pid broker-1)
touch "$BS_DATA/hold/broker-1"
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
[ -n "$resumed" ] && log "service resumed $((resumed - killed)) ms after the kill (a lookup through the pair)"
check "broker-2 took over" wait_brokers "$EP2" "broker-1:silent broker-2:active" 20
wait "$load_pid"
check "the load got a definite answer for every request (it exits 0)" test $? = 0
load=$(cat "$BS_TMP/load.json")
log "load: $(echo "$load" | jq -c '{requests, acked_buys, refused, retries, gave_up, max_latency_ms, p99_latency_ms}')"
check "...and writes were acknowledged after the kill" test "$(bs_record_lines "$RECORD")" -gt "$at_kill"
check "the load's only errors were books out of stock" \
    test "$(echo "$load" | jq -c '.errors | del(.out_of_stock)')" = '{}'
rm "$BS_DATA/hold/broker-1"
log "the longest any request of the load waited (writes included): $(echo "$load" | jq .max_latency_ms) ms"
check "the replicas converge" bs_wait_converged 20
audit=$(bs_audit "$load" "$initial" "$RECORD" 2> "$BS_TMP/audit.log")
rc=$?
log "audit: $audit"
check "no acknowledged write lost, none doubled, none unacknowledged, nothing oversold or mispriced" \
    eval '[ $rc = 0 ] && bs_holds ".read == {\"catalog\": 2, \"order\": 2}" <<< "$audit"'
[ "$BS_FAILED" = 0 ] || sed 's/^/#   /' "$BS_TMP/audit.log" | head -20
check "the old broker came back (restarted by the launcher) as the backup" \
    eval 'bs_wait_pid_change broker-1 "$victim" 20 && wait_brokers "$EP1" "broker-1:passive broker-2:active" 20'
epoch=$(bs --json status | jq '[.nodes[] | select(.service == "catalog" and .role == "primary") | .epoch][0]')
log "catalog epoch after the takeover: $epoch"

#  ---- The brokers cannot see each other, but everyone sees both
bs restock 666 50 > /dev/null
touch "$CUT"
check "with the peer link cut, each broker says its peer is silent" \
    eval 'wait_brokers "$EP1" "broker-1:passive broker-2:silent" 10 && wait_brokers "$EP2" "broker-1:silent broker-2:active" 10'
#  Writes sent to each broker alone, for longer than a takeover would take
ok1=0 ok2=0
for i in 1 2 3; do
    one "$EP1" --json --attempts 1 --timeout-ms 3000 buy 666 2> /dev/null | bs_holds .ok && ok1=$((ok1 + 1))
    one "$EP2" --json --attempts 1 --timeout-ms 3000 buy 666 2> /dev/null | bs_holds .ok && ok2=$((ok2 + 1))
done
log "buys served during the cut: broker-1 $ok1 of 3, broker-2 $ok2 of 3"
check "during the cut, at most one broker serves writes" test $((ok1 > 0 ? 1 : 0)) -eq 0 -o $((ok2 > 0 ? 1 : 0)) -eq 0
check "...and the store goes on serving through the active one" test "$ok2" = 3
out=$(one "$EP1" --json --attempts 1 --timeout-ms 3000 set-price 666 77 2>&1)
check "an admin write sent to the passive broker is not served" eval '! echo "$out" | jq -e .ok > /dev/null 2>&1'
check "no node went over to the passive broker" \
    test "$(one "$EP1" --json --node broker-1 status | jq '[.nodes[]? | select(.alive)] | length')" = 0
check "only one broker says it is active" \
    test "$( (one "$EP1" --json --node broker-1 status; one "$EP2" --json --node broker-2 status) \
             | jq -s '[.[] | .brokers[0] | select(.active)] | length')" = 1

rm -f "$CUT"
check "with the link back, broker-2 stays active and broker-1 passive" \
    eval 'wait_brokers "$EP1" "broker-1:passive broker-2:active" 10 && wait_brokers "$EP2" "broker-1:passive broker-2:active" 10'
check "a client of broker-1 alone is told not_active again" \
    eval '[[ $(one "$EP1" --attempts 1 lookup 321 2>&1) == *not_active* ]]'
check "...a plain status too (the active broker's view is the store's)" \
    eval '[[ $(one "$EP1" --attempts 1 status 2>&1) == *not_active* ]]'
check "the replicas converge" bs_wait_converged 20

check "every process is still running" bs_all_running
