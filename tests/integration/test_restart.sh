#!/usr/bin/env bash
#  A node killed with SIGKILL is restarted by the launcher with its data:
#  every read below asks the restarted node itself (--node), not whichever
#  replica the broker picks
source "$(dirname "$0")/lib.sh"
bs_plan 13
bs_start_cluster --restock-period 0

bs --json buy 846 > /dev/null
bs --json buy 321 > /dev/null
bs --json set-price 846 9 > /dev/null
#  The whole order list as order-1 holds it: ids, rids, items, costs,
#  statuses; duplicates would show as extra entries
orders_of() { bs --json --node "$1" orders | jq -c '[.orders[] | {order_id, rid, item, cost, status}]'; }
catalog_of() { bs --json --node "$1" lookup 846 | jq -c '[.cost, .stock]'; }
bs_wait_converged 15
orders_before=$(orders_of order-1)
catalog_before=$(catalog_of catalog-1)
log "order-1 holds $orders_before; catalog-1 has 846 at $catalog_before"
check "before the kills order-1 holds both orders" test "$(jq length <<< "$orders_before")" = 2
check "...and catalog-1 the new price and stock" test "$catalog_before" = "[9,14]"

for node in catalog-1 order-1; do
    old=$(bs_pid $node)
    kill -KILL "$old"
    check "the launcher restarts $node after SIGKILL" bs_wait_pid_change $node "$old" 10
done
check "every node is alive and in sync again" bs_wait_ready 4 15
check "the restarted catalog-1 kept its changes" test "$(catalog_of catalog-1)" = "$catalog_before"
check "the restarted order-1 holds the same orders, each once" test "$(orders_of order-1)" = "$orders_before"
out=$(bs --json buy 846)
check "buying works after the restart" test "$(echo "$out" | jq .ok)" = true
new_id=$(jq -r .order_id <<< "$out")
after=$(orders_of order-1)
check "the new order is listed once and the old ones are unchanged" \
    test "$(jq -c --arg id "$new_id" '[.[] | select(.order_id == $id)] | length' <<< "$after"):$(jq -c \
        --arg id "$new_id" 'map(select(.order_id != $id))' <<< "$after")" = "1:$orders_before"
check "new order ids do not repeat old ones" \
    test "$(jq '[.[].order_id] | unique | length' <<< "$after")" = 3
check "the replicas converge" bs_wait_converged 15
grep -q "order-1 died: killed by signal 9" "$BS_TMP/cluster.log"
check "the launcher logged why the node died" test $? = 0
