#!/usr/bin/env bash
#  The catalog's map (epoch, primary, in-sync set) lives in etcd, and a
#  broker that restarts reads it rather than relearning it from the nodes.
#
#  The interleaving this guards: a follower hangs and leaves the in-sync
#  set; the primary acknowledges a price change alone (min-insync 1); then
#  the primary hangs while the broker restarts.  A fresh broker that knew
#  no in-sync set would elect the follower, and the acknowledged price
#  would be lost when the old primary came back and was told to follow.
#  With the map in etcd, the follower is never elected while it is out of
#  sync: the partition waits for a member of the stored in-sync set, and
#  the price survives.
source "$(dirname "$0")/lib.sh"
bs_plan 16
bs_start_cluster --restock-period 0

#  The catalog's map as etcd holds it (JSON), or nothing

check "etcd holds the catalog's map with both replicas in sync" \
    until_true 15 bs_meta_holds '.primary as $p | .epoch >= 1 and (.insync | length) == 2 and any(.insync[]; . == $p)'
primary=$(bs_meta | jq -r .primary)
epoch=$(bs_meta | jq -r .epoch)
follower=$( [ "$primary" = catalog-1 ] && echo catalog-2 || echo catalog-1 )
log "primary $primary at epoch $epoch, follower $follower"

#  1. The follower hangs: the in-sync set shrinks in etcd before the
#  primary acknowledges anything without it
kill -STOP "$(bs_pid "$follower")"
check "the hung follower leaves the in-sync set in etcd" \
    until_true 15 bs_meta_holds ".insync == [\"$primary\"] and .epoch == $epoch"
out=$(bs --json --timeout-ms 5000 set-price 666 77)
check "the lone primary acknowledges a price change" bs_holds '.ok' <<< "$out"

#  2. The primary hangs too, and the broker restarts (the launcher brings
#  it back); the follower resumes and registers with the new broker
kill -STOP "$(bs_pid "$primary")"
before=$(bs_waits_said)
broker=$(bs_pid broker)
kill -KILL "$broker"
check "the launcher restarts the broker" bs_wait_pid_change broker "$broker" 10
kill -CONT "$(bs_pid "$follower")"
check "the new broker sees the follower alive" \
    until_true 15 eval "bs_status --timeout-ms 500 --attempts 1 | bs_holds '[.nodes[] | select(.id == \"$follower\" and .alive)] | length == 1'"
check "...and waits for a member of the stored in-sync set instead of electing it" \
    until_true 15 eval '[ "$(bs_waits_said)" -gt "$before" ]'
check "etcd still names the old primary at the same epoch" bs_meta_holds ".primary == \"$primary\" and .epoch == $epoch"
check "...and names no catalog primary meanwhile" \
    eval "bs_status --timeout-ms 500 --attempts 1 | bs_holds '[.nodes[] | select(.service == \"catalog\" and .role == \"primary\")] | length == 0'"

#  3. The old primary resumes: it keeps its role, and the acknowledged
#  price is there
kill -CONT "$(bs_pid "$primary")"
check "the old primary is primary again, at the same epoch" \
    until_true 20 eval "bs_status --timeout-ms 500 --attempts 1 | bs_holds '[.nodes[] | select(.id == \"$primary\" and .alive and .role == \"primary\")] | length == 1'"
check "the acknowledged price survived the restart" \
    until_true 10 eval "bs --json --timeout-ms 2000 lookup 666 | bs_holds '.cost == 77'"
check "the follower rejoins the in-sync set in etcd" \
    until_true 20 bs_meta_holds ".primary == \"$primary\" and (.insync | length) == 2"
check "...and holds the price itself" \
    until_true 10 eval "bs --json --timeout-ms 2000 --node $follower lookup 666 | bs_holds '.cost == 77'"
check "status shows the map as etcd holds it" \
    eval "bs --json status | bs_holds '.store == \"/bookstore/default/\" and .control[0].partition == \"catalog\"
          and .control[0].primary == \"$primary\" and .control[0].epoch == $epoch
          and (.control[0].isr | split(\",\") | sort) == ([\"catalog-1\", \"catalog-2\"])'"
check "the feed told of the in-sync changes" grep -q "in-sync set of catalog in etcd: $primary " "$BS_TMP/cluster.log"
#  The node registry: every node that registered, with its service (plain
#  mode: no key), in etcd, through the broker's restart
registry() {
    etcdctl --endpoints "$(bs_etcd_url)" --command-timeout 2s get --prefix --print-value-only \
        /bookstore/default/nodes/ 2> /dev/null | jq -sc 'sort_by(.id)'
}
check "etcd's node registry lists the four nodes with their services" \
    until_true 10 eval "registry | bs_holds '. == [{\"id\":\"catalog-1\",\"key\":\"\",\"service\":\"catalog\"},
        {\"id\":\"catalog-2\",\"key\":\"\",\"service\":\"catalog\"},{\"id\":\"order-1\",\"key\":\"\",\"service\":\"order\"},
        {\"id\":\"order-2\",\"key\":\"\",\"service\":\"order\"}]'"
