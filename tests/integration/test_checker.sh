#!/usr/bin/env bash
#  The checker (bs_audit, tools/chaos/lib.sh) fails when the store and the
#  load's record disagree, and when it cannot see the store: a real cluster,
#  written to by bookstore-load with a record, then audited against records
#  doctored by hand (a buy acknowledged but never made, a price acknowledged
#  but not on the replicas, a line missing), against a listing doctored to
#  show a duplicate, after a buy nobody recorded, with the broker frozen and
#  with no order replica alive.
source "$(dirname "$0")/lib.sh"
bs_plan 23
bs_start_cluster --restock-period 0

RECORD=$BS_TMP/record.txt
load=$(bs_load --clients 4 --requests 400 --mix buy:40,restock:15,set_price:25,add_book:10,lookup:10 \
       --seed 7 --record "$RECORD")
check "the load exits 0, every request answered" test $? = 0
check "...recording its price changes and new books too" \
    test "$(grep -c '^set_price ' "$RECORD")" -gt 0 -a "$(grep -c '^add_book ' "$RECORD")" -gt 0
check "the replicas converge" bs_wait_converged 20
INITIAL=$(bs_seed_books "$BS_ROOT/etc/catalog.cfg")

#  audit RECORD LOAD-JSON: bs_audit against this cluster's seed; its JSON
#  in AUDIT, its findings in FINDINGS, its exit code in RC
audit() {
    AUDIT=$(bs_audit "$2" "$INITIAL" "$1" 2> "$BS_TMP/findings.txt")
    RC=$?
    FINDINGS=$(cat "$BS_TMP/findings.txt")
    log "audit: $AUDIT (exit $RC)"
    [ -z "$FINDINGS" ] || echo "$FINDINGS" | head -5
}
#  is FILTER: the last audit printed its JSON, and the filter holds for it
is() { bs_holds "$1" <<< "$AUDIT"; }
rid() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
#  doctored NAME LINE... : a copy of the record with these lines appended
doctored() {
    local file=$BS_TMP/$1.txt
    shift
    cp "$RECORD" "$file"
    printf '%s\n' "$@" >> "$file"
    echo "$file"
}
lines=$(wc -l < "$RECORD")
cost=$(bs --json lookup 666 | jq .cost)
bad=$((cost % 50 + 51))      # a price the load never sets (it sets 1 to 50)

audit "$RECORD" "$load"
check "the store as the load left it passes" eval '[ "$RC" = 0 ] && is ".lost + .duplicated + .unacked + .oversold + .mispriced + .unreadable + .incomplete == 0"'
check "...having read both replicas of each service" is '.read == {"catalog": 2, "order": 2} and .down == 0'

r=$(rid)
audit "$(doctored lost "buy $r o$r 321 $lines")" "$(jq -c '.acked_buys += 1' <<< "$load")"
check "a buy acknowledged but on no replica is lost (exit 1)" eval '[ "$RC" = 1 ] && is ".lost == 1"'

audit "$(doctored price "set_price $(rid) 666 $bad $lines")" "$(jq -c '.ops.set_price.ok += 1' <<< "$load")"
check "a price acknowledged last but on no replica is caught (exit 1)" eval '[ "$RC" = 1 ] && is ".mispriced == 1"'

audit "$(doctored maybe "set_price $(rid) 666 $bad $lines" "gave_up set_price $(rid) 666 0 $cost $lines")" \
      "$(jq -c '.ops.set_price.ok += 1 | .ops.set_price.gave_up += 1' <<< "$load")"
check "...but not when a price change given up on, in flight after it, may have come later" \
    eval '[ "$RC" = 0 ] && is ".mispriced == 0"'

audit "$(doctored before "gave_up set_price $(rid) 666 0 $cost $lines" "set_price $(rid) 666 $bad $((lines + 1))")" \
      "$(jq -c '.ops.set_price.ok += 1 | .ops.set_price.gave_up += 1' <<< "$load")"
check "...nor spares one given up on before the acknowledged one was sent" \
    eval '[ "$RC" = 1 ] && is ".mispriced == 1"'

audit "$(doctored restock "restock $(rid) 768 5 $lines")" "$(jq -c '.acked_restocks += 1' <<< "$load")"
check "stock short of an acknowledged restock is caught (exit 1)" eval '[ "$RC" = 1 ] && is ".oversold == 1"'

grep -v "^$(grep '^buy ' "$RECORD" | tail -n 1)\$" "$RECORD" > "$BS_TMP/short.txt"
audit "$BS_TMP/short.txt" "$load"
check "a record short of a line the load's summary counts is incomplete (exit 1)" \
    eval '[ "$RC" = 1 ] && is ".incomplete == 1 and .unacked == 1"'

#  A listing that shows one order twice, on each order replica
AUDIT=$(
    bs() {
        if [[ " $* " == *" orders "* ]]; then
            "$BS_BIN/bookstore" --endpoint "tcp://127.0.0.1:$BS_PORT" "$@" | jq -c '.orders += [.orders[0]]'
        else
            "$BS_BIN/bookstore" --endpoint "tcp://127.0.0.1:$BS_PORT" "$@"
        fi
    }
    bs_audit "$load" "$INITIAL" "$RECORD" 2> /dev/null
)
RC=$?
log "audit: $AUDIT (exit $RC)"
check "an order listed twice for one request id is a duplicate (exit 1)" eval '[ "$RC" = 1 ] && is ".duplicated == 1"'

#  A buy nobody recorded, of a book the load left in stock (it may have
#  sold out any one of them)
r=$(rid)
item=$(for i in $(jq -r 'keys[]' <<< "$INITIAL"); do bs --json lookup "$i" | jq -r 'select(.stock > 0) | .item'; done | head -1)
out=$(bs --json --rid "$r" buy "${item:-321}")
check "a buy outside the load is acknowledged, and the replicas converge" \
    eval 'bs_holds .ok <<< "$out" && bs_wait_converged 20'
audit "$RECORD" "$load"
check "an order nobody acknowledged to the load is unacked (exit 1)" eval '[ "$RC" = 1 ] && is ".unacked == 1"'
audit "$(doctored unsure "gave_up buy $r ${item:-321} 0 0 $lines")" "$(jq -c '.ops.buy.gave_up += 1' <<< "$load")"
check "...but passes as a buy given up on, which may have happened" eval '[ "$RC" = 0 ]'

bs_audit "$load" "$INITIAL" > /dev/null 2>&1; r=$?
bs_check_accounts "$load" > /dev/null 2>&1
check "the checker refuses to run without a record (exit 2)" test "$r:$?" = "2:2"

#  A broker that does not answer: nothing was read, so nothing passes
broker=$(bs_pid broker)
kill -STOP "$broker"
audit "$RECORD" "$load"
kill -CONT "$broker"
check "with the broker frozen the audit fails: unreadable (exit 1)" \
    eval '[ "$RC" = 1 ] && is ".unreadable >= 1 and .read == {\"catalog\": 0, \"order\": 0}"'
check "...saying the status went unanswered" grep -q 'did not answer a status request' <<< "$FINDINGS"
check "the cluster recovers" bs_wait_ready 4 30

#  No order replica alive: the order side cannot be judged
for node in order-1 order-2; do
    touch "$BS_DATA/hold/$node"
    kill -KILL "$(bs_pid "$node")"
done
check "the broker sees both order nodes dead" eval 'bs_wait_dead order-1 10 && bs_wait_dead order-2 10'
audit "$RECORD" "$load"
check "with no order replica alive the audit fails: unreadable (exit 1)" \
    eval '[ "$RC" = 1 ] && is ".unreadable >= 1 and .read.order == 0 and .down == 2"'
check "...saying no order replica could be read" grep -q 'no order replica could be read' <<< "$FINDINGS"
