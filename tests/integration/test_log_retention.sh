#!/usr/bin/env bash
#  Log retention: every node keeps the newest --log-keep entries of each
#  partition's log and deletes older ones; a follower that fell further
#  behind than the log reaches catches up from a snapshot instead
source "$(dirname "$0")/lib.sh"
bs_plan 12
KEEP=500
RECORD=$BS_TMP/record.txt
bs_start_cluster --restock-period 0 --node-args "--log-keep $KEEP"

#  log_entries NODE: entries of the node's log database, every partition
#  it holds (read-only, beside the running node)
log_entries() { mdb_stat -s log "$BS_DATA/$1" 2>/dev/null | sed -n 's/^ *Entries: //p'; }
log_is() { [ "$(log_entries "$1")" = "$2" ]; }
log_at_most() { local n; n=$(log_entries "$1"); [ -n "$n" ] && [ "$n" -le "$2" ]; }
#  snapshots NODE: snapshots of the catalog the node has loaded
snapshots() { grep -c "$1: snapshot of catalog loaded" "$BS_TMP/cluster.log"; }
snapshots_above() { [ "$(snapshots "$1")" -gt "$2" ]; }


primary=$(bs_catalog_primary)
follower=$(bs --json status | jq -r '[.nodes[] | select(.service == "catalog" and .role == "follower") | .id][0]')
touch "$BS_DATA/hold/$follower"
kill -KILL "$(bs_pid "$follower")"
check "the broker notices the killed follower" bs_wait_dead "$follower" 10
load=$(bs_load --clients 8 --requests 3000 --mix buy:30,set_price:35,restock:35 --seed 21 --record "$RECORD")
rc=$?
log "load (exit $rc): $(echo "$load" | jq -c '{requests, refused, gave_up, retries, failovers, errors}' 2>/dev/null)"
check "3000 writes succeed while a catalog follower is down (the load exits 0, nothing refused)" \
    test "$rc:$(echo "$load" | jq .refused)" = 0:0
seq=$(bs --json --node "$primary" lookup 321 | jq .seq)
log "the catalog's head is at seq $seq"
check "the catalog primary's log is trimmed to the newest $KEEP entries" \
    until_true 10 log_is "$primary" "$KEEP"
#  Each order node holds its own partition and the other's
check "each order node's log keeps at most $KEEP entries of each of its 2 partitions" \
    until_true 10 eval 'log_at_most order-1 $((2 * KEEP)) && log_at_most order-2 $((2 * KEEP))'
check "the orders and books outlive the log entries that wrote them (audited by request id)" \
    eval 'bs_wait_converged 20 && bs_check_accounts "$load" "$RECORD"'

loaded=$(snapshots "$follower")
rm "$BS_DATA/hold/$follower"
check "the follower that missed more than the log keeps comes back" bs_wait_ready "$BS_NODES" 30
check "...from a snapshot" until_true 10 snapshots_above "$follower" "$loaded"
check "...and converges" bs_wait_converged 20
check "...with every acknowledged write, and nothing else" bs_check_accounts "$load" "$RECORD"
check "...and trims its own log too" until_true 10 log_at_most "$follower" "$KEEP"

check "every process is still running" bs_all_running
bs_stop_cluster
