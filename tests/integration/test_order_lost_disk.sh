#!/usr/bin/env bash
#  An order node that comes back on an empty disk starts a new partition
#  of its own; its old one, which only it could lead, never has a primary
#  again.  It must still fill its copy of that old partition from the peer
#  that holds it (the broker's source: the most advanced replica holding
#  it whole, never the emptied node itself), become ready for reads, list
#  every order bought before it lost its disk, and take buys again.
source "$(dirname "$0")/lib.sh"
bs_plan 6
bs_start_cluster --restock-period 0 --catalog 1 --order 2
ITEM=321
count_on() { bs --json --timeout-ms 2000 --attempts 1 --node "$1" orders --item "$ITEM" | jq '.orders | length'; }
both_list() { [ "$(count_on order-1)" = "$1" ] && [ "$(count_on order-2)" = "$1" ]; }

acked=0
for i in 1 2 3; do
    [ "$(bs --json --node order-1 buy "$ITEM" | jq .ok)" = true ] && acked=$((acked + 1))
done
check "three buys through order-1 are acknowledged, and both order nodes list them" \
    eval '[ "$acked" = 3 ] && until_true 15 both_list 3'

#  order-1 dies and loses its disk; the launcher restarts it empty
touch "$BS_DATA/hold/order-1"
pid=$(bs_pid order-1)
kill -KILL "$pid"
while kill -0 "$pid" 2> /dev/null; do sleep 0.05; done
rm -rf "${BS_DATA:?}/order-1"
rm "$BS_DATA/hold/order-1"
check "order-1 comes back on an empty disk and is ready for reads (every node in sync)" \
    eval 'bs_wait_pid_change order-1 "$pid" 20 && bs_wait_ready 3 30'
check "...and lists the orders bought before it lost its disk" until_true 15 both_list 3
check "a buy through order-1 is acknowledged again" test "$(bs --json --node order-1 buy "$ITEM" | jq .ok)" = true
check "the replicas converge, both order nodes with the four orders" \
    eval 'bs_wait_converged 30 && until_true 15 both_list 4'
