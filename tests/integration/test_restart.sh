#!/usr/bin/env bash
#  A node killed with SIGKILL is restarted by the launcher with its data
source "$(dirname "$0")/lib.sh"
bs_start_cluster --restock-period 0

bs --json buy 846 > /dev/null
bs --json set-price 846 9 > /dev/null
before=$(bs --json orders | jq -c '[.orders[].order_id]')

for node in catalog-1 order-1; do
    old=$(bs_pid $node)
    kill -KILL "$old"
    check "the launcher restarts $node after SIGKILL" bs_wait_pid_change $node "$old" 10
done
check "every node is alive and in sync again" bs_wait_ready 4 15
check "the catalog kept its changes" test "$(bs --json lookup 846 | jq -c '[.cost,.stock]')" = "[9,14]"
check "the order node kept its orders" test "$(bs --json orders | jq -c '[.orders[].order_id]')" = "$before"
out=$(bs --json buy 846)
check "buying works after the restart" test "$(echo "$out" | jq .ok)" = true
check "new order ids do not repeat old ones" test "$(bs --json orders | jq '[.orders[].order_id] | unique | length')" = 2
check "the replicas converge" bs_wait_converged 15
grep -q "order-1 died: killed by signal 9" "$BS_TMP/cluster.log"
check "the launcher logged why the node died" test $? = 0
