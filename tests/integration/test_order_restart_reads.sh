#!/usr/bin/env bash
#  An order node that restarts is not read from until it holds what was
#  acknowledged while it was down.
#
#  order-1 is held down while five buys are acknowledged (all written by
#  order-2, in its partition).  Then order-1 comes back under a stream of
#  order listings through the broker.  At start its copy of order-2's
#  partition has no role yet: a node that counted only the partitions it
#  had been told about said READY at once, the broker sent it listings
#  before its next heartbeat, and they missed the five orders.  A node is
#  ready only once every partition it holds has a role and has caught up.
source "$(dirname "$0")/lib.sh"
bs_plan 7
#  Slow heartbeats: the node's status, READY's included, stands until the
#  next one, so a READY sent too early is believed for a second
bs_start_cluster --catalog 1 --order 2 --restock-period 0 --heartbeat-ms 1000 --liveness 3

touch "$BS_DATA/hold/order-1"
kill -KILL "$(bs_pid order-1)"
check "the broker notices order-1 killed" bs_wait_dead order-1 15
ids=()
for i in 1 2 3 4 5; do
    id=$(bs --json buy 321 | jq -r '.order_id // empty')
    [ -n "$id" ] && ids+=("$id")
done
check "five buys are acknowledged while order-1 is down" test ${#ids[@]} = 5
want=$(printf '%s\n' "${ids[@]}" | jq -R . | jq -sc .)
served() { bs --json status | jq --arg n "$1" '[.nodes[] | select(.id == $n) | .requests][0] // 0'; }
served_before=$(served order-1)

#  Four readers list the orders through the broker, each line the number
#  of the five acknowledged orders a listing holds, until told to stop
STOP=$BS_TMP/stop
reader() {
    while [ ! -e "$STOP" ]; do
        bs --json --attempts 1 orders 2>/dev/null \
            | jq --argjson want "$want" '[.orders[]?.order_id] as $got | [$want[] | select(. as $w | $got | index($w))] | length'
    done > "$BS_TMP/reads.$1"
}
pids=()
for r in 1 2 3 4; do reader "$r" & pids+=($!); done
rm "$BS_DATA/hold/order-1"
check "order-1 returns and gets in sync" bs_wait_ready 3 30
#  Listings go on for a while after order-1 is back in the broker's map
deadline=$((SECONDS + 3))
while [ $SECONDS -lt $deadline ]; do sleep 0.2; done
touch "$STOP"
wait "${pids[@]}"
reads=$(cat "$BS_TMP"/reads.* | wc -l)
short=$(cat "$BS_TMP"/reads.* | grep -cvx 5)
log "$reads listings, $short of them short of the five acknowledged orders"
check "many listings ran across the restart" test "$reads" -ge 20
check "order-1 answered some of them" test "$(served order-1)" -gt "${served_before:-0}"
check "no listing missed an acknowledged buy" test "$short" = 0
