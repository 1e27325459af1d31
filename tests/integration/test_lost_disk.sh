#!/usr/bin/env bash
#  A replica that comes back with an empty disk is never elected in place
#  of the data it lost.
#
#  The interleavings this guards, both with the two catalog replicas in
#  sync and a price change acknowledged by both:
#    1. the broker and both replicas die; the follower's disk is lost and
#       it comes back alone with the broker.  It is in the in-sync set etcd
#       holds, so a controller that trusted names would elect it, and the
#       empty replica would lead (and the acknowledged price be gone when
#       the other one followed).
#    2. all three die again; now the primary's disk is lost and it comes
#       back alone, under the name etcd holds as primary.  A controller
#       that kept "the live primary" by name would hand it the role.
#  Each time the catalog must wait for the replica that holds the data,
#  elect it when it returns, and the emptied one must be refilled from it.
#  A node reports whether it holds a partition whole (a store's identity
#  and a "fresh" mark that survives restarts); etcd records the store its
#  primary was elected with.
source "$(dirname "$0")/lib.sh"
bs_plan 17
bs_start_cluster --restock-period 0 --catalog 2 --order 1

other() { [ "$1" = catalog-1 ] && echo catalog-2 || echo catalog-1; }
cost_on() { bs --json --timeout-ms 2000 --attempts 1 --node "$1" lookup 666 | bs_holds ".cost == $2"; }
alive() { bs_status --timeout-ms 500 --attempts 1 | bs_holds "[.nodes[] | select(.id == \"$1\" and .alive)] | length == 1"; }
primary_is() {
    bs_status --timeout-ms 500 --attempts 1 \
        | bs_holds "[.nodes[] | select(.id == \"$1\" and .alive and .role == \"primary\")] | length == 1"
}
no_primary() {
    bs_status --timeout-ms 500 --attempts 1 \
        | bs_holds '[.nodes[] | select(.service == "catalog" and .role == "primary")] | length == 0'
}

#  Kills the broker and both catalog replicas and keeps them down (hold
#  files): etcd's map stays as it was, both replicas in sync, for the
#  broker that starts next
kill_all() {
    local pids pid id
    pids="$(bs_pid broker) $(bs_pid catalog-1) $(bs_pid catalog-2)"
    for id in broker catalog-1 catalog-2; do touch "$BS_DATA/hold/$id"; done
    kill -KILL $pids
    for pid in $pids; do
        while kill -0 "$pid" 2> /dev/null; do sleep 0.05; done
    done
}

check "etcd holds the catalog with both replicas in sync" \
    until_true 15 bs_meta_holds '.epoch >= 1 and (.insync | length) == 2 and (.primary_store > 0)'
primary=$(bs_meta | jq -r .primary)
follower=$(other "$primary")
out=$(bs --json --timeout-ms 5000 set-price 666 77)
check "both replicas acknowledge a price change" \
    eval 'bs_holds .ok <<< "$out" && until_true 10 cost_on "$follower" 77'
epoch=$(bs_meta | jq -r .epoch)
log "primary $primary at epoch $epoch, follower $follower"

#  1. The follower's disk is lost
kill_all
check "etcd still holds both replicas in sync" \
    bs_meta_holds ".primary == \"$primary\" and .epoch == $epoch and (.insync | length) == 2"
rm -rf "${BS_DATA:?}/$follower"
rm "$BS_DATA/hold/broker" "$BS_DATA/hold/$follower"
check "the broker and the emptied follower come back" until_true 20 alive "$follower"
check "the broker waits for the replica that holds the data instead of electing it" \
    until_true 15 eval '[ "$(bs_waits_said)" -gt 0 ]'
check "...so etcd still names the old primary at the same epoch" \
    bs_meta_holds ".primary == \"$primary\" and .epoch == $epoch"
check "...and no node is catalog primary meanwhile" no_primary
rm "$BS_DATA/hold/$primary"
check "the primary returns and leads again" until_true 20 primary_is "$primary"
check "...with the acknowledged price" until_true 10 cost_on "$primary" 77
check "the emptied follower is refilled and holds the price" until_true 20 cost_on "$follower" 77

#  2. The primary's disk is lost
check "the refilled follower rejoins the in-sync set" until_true 20 bs_meta_holds '(.insync | length) == 2'
epoch=$(bs_meta | jq -r .epoch)
before=$(bs_waits_said)
kill_all
rm -rf "${BS_DATA:?}/$primary"
rm "$BS_DATA/hold/broker" "$BS_DATA/hold/$primary"
check "the emptied primary comes back alone, under the name etcd holds" until_true 20 alive "$primary"
check "the broker does not hand it the role: it waits" until_true 15 eval '[ "$(bs_waits_said)" -gt "$before" ]'
check "...and no node is catalog primary meanwhile" no_primary
rm "$BS_DATA/hold/$follower"
check "the follower, which holds the data, is elected" until_true 20 primary_is "$follower"
check "...with the acknowledged price, on both replicas" \
    eval 'until_true 10 cost_on "$follower" 77 && until_true 20 cost_on "$primary" 77'
