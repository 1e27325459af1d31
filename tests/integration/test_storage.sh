#!/usr/bin/env bash
#  Storage faults: a full disk and a read-only data directory fail writes
#  with a clear error, change nothing, and reads go on; a corrupt or foreign
#  data directory is refused at start.  The catalog keeps its data on a
#  small tmpfs of the test's own (needs root).
source "$(dirname "$0")/lib.sh"
bs_plan 18
if [ "$(id -u)" != 0 ] || ! mnt_probe=$(mktemp -d) || ! mount -t tmpfs -o size=1m tmpfs "$mnt_probe" 2>/dev/null; then
    bs_skip_rest "storage faults need root and tmpfs mounts"
fi
umount "$mnt_probe"; rmdir "$mnt_probe"
mnt=$BS_TMP/cluster/catalog-1
mkdir -p "$mnt"
mount -t tmpfs -o size=8m tmpfs "$mnt"
trap 'bs_stop_cluster; umount "$mnt" 2>/dev/null; bs_cleanup' EXIT
bs_start_cluster --catalog 1 --order 1 --restock-period 0 --no-gateway
node() { bs --json --node catalog-1 "$@"; }
#  says REPLY TEXT: the reply's message contains the text
says() { echo "$1" | jq -r .message | grep -q "$2"; }

#  A full disk
cost=$(node lookup 321 | jq .cost)
dd if=/dev/zero of="$mnt/filler" bs=64k 2> /dev/null
failed=""
for i in $(seq 200); do
    out=$(bs --json --attempts 1 set-price 321 $((i % 90 + 1)))
    if [ "$(echo "$out" | jq .ok)" = true ]; then
        cost=$(echo "$out" | jq .cost)
    else
        failed=$out
        break
    fi
done
check "on a full disk a write fails with error storage" test "$(echo "$failed" | jq -r .error)" = storage
check "...saying the disk is full" says "$failed" 'disk is full'
check "...and changes nothing" test "$(node lookup 321 | jq .cost)" = "$cost"
check "reads go on" test "$(node search distributed_systems | jq '.items | length')" = 3
check "the node stays up" bs_all_running
rm "$mnt/filler"
check "with room again, writes succeed" test "$(bs --json set-price 321 44 | jq .cost)" = 44

#  A read-only data directory
bs_stop_cluster
mount -o remount,ro "$mnt"
bs_start_cluster --catalog 1 --order 1 --restock-period 0 --no-gateway
out=$(bs --json --attempts 1 set-price 321 45)
check "on a read-only directory a write fails with error storage" test "$(echo "$out" | jq -r .error)" = storage
check "...saying the directory is read-only" says "$out" 'read-only'
check "reads serve the data it holds" test "$(node lookup 321 | jq .cost)" = 44
check "the node stays up" bs_all_running
bs_stop_cluster
mount -o remount,rw "$mnt"

#  A data directory that belongs to another node, and a corrupt one
out=$("$BS_BIN/bookstore-node" --service catalog --id catalog-2 --data "$mnt" \
        --broker "tcp://127.0.0.1:$((BS_PORT + 1))" --pub-bind "tcp://127.0.0.1:$((BS_PORT + 70))" \
        --sync-bind "tcp://127.0.0.1:$((BS_PORT + 71))" 2>&1); rc=$?
check "a node started on another node's directory refuses to start" test "$rc" -ne 0
check "...saying whose it is" grep -q 'belongs to catalog catalog-1' <<< "$out"
mkdir -p "$BS_TMP/corrupt"
head -c 65536 /dev/urandom > "$BS_TMP/corrupt/data.mdb"
out=$("$BS_BIN/bookstore-node" --service catalog --id catalog-3 --data "$BS_TMP/corrupt" \
        --broker "tcp://127.0.0.1:$((BS_PORT + 1))" --pub-bind "tcp://127.0.0.1:$((BS_PORT + 72))" \
        --sync-bind "tcp://127.0.0.1:$((BS_PORT + 73))" 2>&1); rc=$?
check "a corrupt data directory is refused at start" test "$rc" -ne 0
check "...with a message saying so" grep -q 'corrupt or foreign store' <<< "$out"

#  An order node's id too long for its partition's name (id + 7) is
#  refused with a sentence before anything is created, never cut short
long_id=order-$(printf 'x%.0s' $(seq 60))
out=$("$BS_BIN/bookstore-node" --service order --id "$long_id" --data "$BS_TMP/long" \
        --broker "tcp://127.0.0.1:$((BS_PORT + 1))" --pub-bind "tcp://127.0.0.1:$((BS_PORT + 74))" \
        --sync-bind "tcp://127.0.0.1:$((BS_PORT + 75))" 2>&1); rc=$?
check "an id too long for the wire is refused at start (exit 2)" test "$rc" -eq 2
check "...saying how long an id may be, and creating no data" \
    bash -c '[[ "$1" == *"--id must be 1 to 57 letters"* ]] && [ ! -e "$2" ]' _ "$out" "$BS_TMP/long"
