#!/usr/bin/env bash
#  A node with no peer to catch up from keeps every acknowledged write
#  across SIGKILL: one catalog and one order node, each killed right after
#  its writes are acknowledged, and read back from that node itself
source "$(dirname "$0")/lib.sh"
bs_plan 12
bs_start_cluster --restock-period 0 --catalog 1 --order 1

book() { bs --json --node catalog-1 lookup "$1" | jq -c '[.item, .title, .cost, .stock]'; }
orders() { bs --json --node order-1 orders | jq -c '[.orders[] | {order_id, item, cost, status}]'; }
seed_846=$(bs --json lookup 846 | jq .stock)
seed_666=$(bs --json lookup 666 | jq .stock)

#  Catalog writes, acknowledged, then SIGKILL without a pause
buy1=$(bs --json buy 846)
r1=$(bs --json set-price 321 55 | jq .ok)
r2=$(bs --json restock 666 3 | jq .ok)
r3=$(bs --json add-book 5150 cooking "Kept Across Restarts" 12 6 | jq .ok)
old=$(bs_pid catalog-1)
kill -KILL "$old"
check "buy, set-price, restock and add-book were acknowledged" \
    test "$(jq .ok <<< "$buy1"):$r1:$r2:$r3" = "true:true:true:true"
check "the launcher restarts catalog-1 after SIGKILL" bs_wait_pid_change catalog-1 "$old" 10
check "catalog-1 serves again" bs_wait_ready 2 15
check "catalog-1 kept the buy's stock" test "$(bs --json --node catalog-1 lookup 846 | jq .stock)" = $((seed_846 - 1))
check "...the new price" test "$(bs --json --node catalog-1 lookup 321 | jq .cost)" = 55
check "...the restock" test "$(bs --json --node catalog-1 lookup 666 | jq .stock)" = $((seed_666 + 3))
check "...and the added book" \
    test "$(book 5150):$(bs --json --node catalog-1 search cooking | jq -c '[.items[].item]')" = '[5150,"Kept Across Restarts",12,6]:[5150]'

#  An order, acknowledged, then SIGKILL of the order node without a pause
buy2=$(bs --json buy 321)
old=$(bs_pid order-1)
kill -KILL "$old"
expected=$(jq -sc '[.[] | {order_id, item, cost, status: "paid"}] | sort_by(.order_id)' \
    <<< "$buy1$buy2")
check "the launcher restarts order-1 after SIGKILL" bs_wait_pid_change order-1 "$old" 10
check "order-1 serves again" bs_wait_ready 2 15
got=$(orders)
log "order-1 holds $got; expected $expected"
check "order-1 holds both acknowledged orders, each once" test "$(jq -c 'sort_by(.order_id)' <<< "$got")" = "$expected"
buy3=$(bs --json buy 846)
check "a buy after both restarts gets an order id of its own" \
    test "$(jq .ok <<< "$buy3"):$(orders | jq -c '[length, ([.[].order_id] | unique | length)]')" = "true:[3,3]"
