#!/usr/bin/env bash
#  An order primary publishes a batch's entries before its own commit, so a
#  follower may hold an order the primary never stored.  order-1's data is
#  on a small tmpfs of the test's own (needs root); the disk fills, and a
#  buy through order-1 fails at its commit after order-2 got the entry.
#  The buy is answered `unavailable` (the catalog took the copy: retry with
#  the same rid); order-1 leads its partition again only at a new epoch;
#  order-2's copy of that partition then differs from order-1's, is
#  replaced by a snapshot, and the order only order-2 held is re-recorded
#  in order-2's own partition, so that both order nodes end with the same
#  orders, and the retry answers that order without taking another copy.
source "$(dirname "$0")/lib.sh"
bs_plan 11
if [ "$(id -u)" != 0 ] || ! mnt_probe=$(mktemp -d) || ! mount -t tmpfs -o size=1m tmpfs "$mnt_probe" 2>/dev/null; then
    bs_skip_rest "storage faults need root and tmpfs mounts"
fi
umount "$mnt_probe"; rmdir "$mnt_probe"
mnt=$BS_TMP/cluster/order-1
mkdir -p "$mnt"
mount -t tmpfs -o size=8m tmpfs "$mnt"
trap 'bs_stop_cluster; umount "$mnt" 2>/dev/null; bs_cleanup' EXIT
bs_start_cluster --catalog 1 --order 2 --restock-period 0 --no-gateway
ITEM=321
rid() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
buy() { bs --json --attempts 1 --node order-1 --rid "$1" buy "$ITEM"; }
stock() { bs --json lookup "$ITEM" | jq .stock; }
#  The epoch order-1 reports for its own partition
epoch() { bs_status | jq -r '[.nodes[] | select(.id == "order-1" and .alive) | .epoch][0] // 0'; }
#  count_on NODE: how many orders of the item the node lists
count_on() { bs --json --node "$1" orders --item "$ITEM" | jq '.orders | length'; }
both_list() { [ "$(count_on order-1)" = "$1" ] && [ "$(count_on order-2)" = "$1" ]; }
said() { grep -q "order-2: re-recorded 3 records" "$BS_TMP/cluster.log"; }

check "a buy through order-1 is acknowledged" test "$(buy "$(rid)" | jq .ok)" = true
until_true 10 both_list 1
stock0=$(stock)
epoch0=$(epoch)

#  Fill order-1's disk until a buy fails
dd if=/dev/zero of="$mnt/filler" bs=64k 2> /dev/null
failed="" lost=""
for i in $(seq 300); do
    r=$(rid)
    out=$(buy "$r")
    if [ "$(echo "$out" | jq .ok)" != true ]; then
        failed=$out lost=$r
        break
    fi
done
log "the failed buy: $failed"
check "on a full disk a buy through order-1 fails with error unavailable" \
    test "$(echo "$failed" | jq -r .error)" = unavailable
check "...saying the copy is reserved: retry with the same rid" \
    grep -q "retry with the same rid" <<< "$(echo "$failed" | jq -r .message)"
check "order-1 stays up" bs_all_running
rm "$mnt/filler"
#  Every buy before the failure was acknowledged: they and the lost one
#  are the copies taken since
bought=$((i - 1))

#  With room again, order-1 takes buys again, at a new epoch
again=$(rid)
ok_again() { [ "$(buy "$again" | jq .ok)" = true ]; }
check "with room again, a new buy through order-1 is acknowledged" until_true 20 ok_again
check "...and order-1 leads its partition at a higher epoch than before" test "$(epoch)" -gt "$epoch0"
check "order-2 re-records the order that only it held" until_true 20 said
check "both order nodes list every order, the failed buy's too" until_true 20 both_list $((1 + bought + 2))
check "the replicas converge: their digests agree" bs_wait_converged 30
retry=$(buy "$lost")
check "retrying the failed buy with its rid answers its order and takes no other copy" \
    test "$(echo "$retry" | jq .ok)" = true -a "$(stock)" = $((stock0 - bought - 2))
