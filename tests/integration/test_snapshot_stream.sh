#!/usr/bin/env bash
#  A catalog primary sending a large snapshot keeps heartbeating and taking
#  writes meanwhile.
#
#  Two catalog replicas hold a catalog of 15,000 books added by clients
#  (some 45,000 records: each book, its topic's index, its reply).  The
#  follower is stopped, its store wiped, and it returns empty: it fetches
#  from nothing and gets a snapshot of every record.  Meanwhile a client
#  keeps writing, one write at a time with a 1 s deadline and no retry.
#  A primary that sent the snapshot in one go kept its loop busy for
#  seconds under the sanitizers: it missed its heartbeats, the broker
#  declared it dead, and the writes waited.  It now sends it a part per
#  turn of its loop, and the follower loads a part per turn of its own.
source "$(dirname "$0")/lib.sh"
bs_plan 7
books=15000
bs_start_cluster --catalog 2 --order 1 --restock-period 0

summary=$(bs_load --clients 16 --requests $books --mix add_book:1)
log "adding books: $(echo "$summary" | jq -c '{requests, refused, gave_up, seconds}')"
check "a long catalog is added and replicated" \
    eval 'echo "$summary" | bs_holds ".requests == $books and .refused == 0 and .gave_up == 0" && bs_wait_converged 60'
primary=$(bs_catalog_primary)
follower=$(bs_status | jq -r --arg p "$primary" \
    '[.nodes[] | select(.service == "catalog" and .id != $p) | .id][0] // ""')
log "primary $primary, follower $follower"

#  The follower comes back empty: a snapshot of the whole catalog
touch "$BS_DATA/hold/$follower"
kill -KILL "$(bs_pid "$follower")"
bs_wait_dead "$follower" 10
rm -rf "${BS_DATA:?}/$follower"
rm "$BS_DATA/hold/$follower"

#  Writes, one at a time, until the follower is back in sync
writes=0 failed=0 ready=no
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
    if [ "$(bs --json --attempts 1 --timeout-ms 1000 set-price 321 $((writes % 50 + 1)) | jq .ok)" != true ]; then
        failed=$((failed + 1))
    fi
    writes=$((writes + 1))
    if grep -q "$primary: sent a snapshot of catalog to $follower" "$BS_TMP/cluster.log" && bs_wait_ready 3 1; then
        ready=yes
        break
    fi
done
log "$writes write(s) while $follower loaded its snapshot, $failed not acknowledged within 1 s"
check "the empty follower gets its snapshot and is in sync again" test $ready = yes
check "every write was acknowledged meanwhile" test $failed = 0
check "the primary was never declared dead" bs_no_line "broker: $primary declared dead" "$BS_TMP/cluster.log"
sent=$(grep -o "$primary: sent a snapshot of catalog to $follower ([0-9]* records in [0-9]* parts" \
       "$BS_TMP/cluster.log" | tail -n 1)
log "${sent:-no snapshot sent}"
parts=$(echo "$sent" | sed -n 's/.* in \([0-9]*\) parts$/\1/p')
check "the snapshot went out in many parts" test "${parts:-0}" -ge 10
check "the replicas converge" bs_wait_converged 30
