#!/usr/bin/env bash
#  An operator's unclean election.  When no member of the catalog's stored
#  in-sync set is alive, the partition waits rather than lose acknowledged
#  writes.  `bookstore unclean-election catalog` is the explicit way out: it
#  asks (through etcd, for the current epoch alone) for the most advanced
#  live replica to lead, alone in the in-sync set, and says what is lost.
#
#  The interleaving: the follower dies and leaves the in-sync set; the
#  primary acknowledges a price alone; the primary hangs; the follower
#  comes back.  The catalog waits.  The operator forces the election: the
#  follower leads at the next epoch, the price it never had is gone (as the
#  command said), and when the old primary resumes it follows the new
#  history, its unreplicated tail dropped.
source "$(dirname "$0")/lib.sh"
bs_plan 14
bs_start_cluster --restock-period 0
unclean() { "$BS_BIN/bookstore" --etcd "$(bs_etcd_url)" --json unclean-election "$@"; }

check "etcd holds the catalog's map with both replicas in sync" \
    until_true 15 bs_meta_holds '.primary as $p | .epoch >= 1 and (.insync | length) == 2 and any(.insync[]; . == $p)'
primary=$(bs_meta | jq -r .primary)
epoch=$(bs_meta | jq -r .epoch)
follower=$( [ "$primary" = catalog-1 ] && echo catalog-2 || echo catalog-1 )
cost=$(bs --json lookup 666 | jq .cost)
log "primary $primary at epoch $epoch, follower $follower, cost $cost"

#  With the primary alive, a request elects nobody
out=$(unclean --wait-ms 1500 catalog); rc=$?
check "with the primary alive the request deposes nobody: an error that says why" \
    eval "[ $rc = 3 ] && bs_holds '.error == \"unavailable\" and (.message | test(\"no broker elected\"))' <<< '$out' \
          && bs_meta_holds '.primary == \"$primary\" and .epoch == $epoch'"
check "...and the request is withdrawn, so it cannot fire when the in-sync set is lost later" \
    test "$(etcdctl --endpoints "$(bs_etcd_url)" get --keys-only "$BS_MAP_KEY/unclean" | grep -c unclean)" = 0

#  The follower goes down (held down by the launcher) and leaves the
#  in-sync set; the primary acknowledges a price alone, then hangs; the
#  follower comes back without that price
touch "$BS_DATA/hold/$follower"
kill -KILL "$(bs_pid "$follower")"
check "the dead follower leaves the in-sync set" until_true 15 bs_meta_holds ".insync == [\"$primary\"]"
check "the lone primary acknowledges a price" bs_holds '.ok' <<< "$(bs --json --timeout-ms 5000 set-price 666 77)"
before=$(bs_waits_said)
kill -STOP "$(bs_pid "$primary")"
rm "$BS_DATA/hold/$follower"
check "the catalog waits for its in-sync set instead of electing the follower" \
    until_true 15 eval '[ "$(bs_waits_said)" -gt "$before" ]'
#  Waited out to the broker's own answer (its request timeout, 2 s), so
#  that this write is known dead: one the client merely gave up on could
#  still be carried out by the primary the operator is about to elect
out=$(bs --json --timeout-ms 6000 --attempts 1 set-price 666 5)
log "the write while the catalog waits got: $out"
check "...so writes are not taken (the broker answers unavailable)" bs_holds '(.ok | not) and .error == "unavailable"' <<< "$out"

#  The operator forces the election
out=$(unclean catalog); rc=$?
check "unclean-election elects the live follower at the next epoch" \
    eval "[ $rc = 0 ] && bs_holds '.ok and .primary == \"$follower\" and .epoch == $((epoch + 1)) and .old_epoch == $epoch' <<< '$out'"
check "etcd names it alone in the in-sync set" bs_meta_holds ".primary == \"$follower\" and .insync == [\"$follower\"]"
check "the broker said what is lost" grep -q "unclean election of catalog, as an operator asked: $follower" "$BS_TMP/cluster.log"
check "the price only the old primary held is gone, as the command warned" \
    until_true 10 eval "bs --json --timeout-ms 2000 lookup 666 | bs_holds '.ok and .cost == $cost'"
check "writes are taken again" bs_holds '.ok and .cost == 33' <<< "$(bs --json --timeout-ms 5000 set-price 666 33)"

#  The old primary resumes: it follows the new history
kill -CONT "$(bs_pid "$primary")"
check "the old primary drops its unreplicated tail and follows" \
    until_true 20 eval "bs --json --timeout-ms 2000 --node $primary lookup 666 | bs_holds '.cost == 33'"
