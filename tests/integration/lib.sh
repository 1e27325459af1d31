#  lib.sh - shared helpers for the integration tests (sourced).
#
#  Each test starts its own cluster on free ports in a temporary directory,
#  prints "ok - name" / "not ok - name" lines, and cleans up on exit: it
#  kills the pids it started (from the launcher and its pid files), never by
#  process name.

BS_BIN=${BS_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/bin}
BS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
#  Test helper programs (probe, ...): tests/run.sh points this at the
#  variant under test
BS_HELPERS=${BS_HELPERS:-$BS_ROOT/build/release/tests}
BS_TMP=$(mktemp -d /tmp/bookstore-it.XXXXXX)
BS_CLUSTER_PID=
BS_FAILED=0

ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; BS_FAILED=1; }
log()    { echo "# $*"; }

#  check NAME COMMAND...: ok when the command succeeds
check() {
    local name=$1; shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

#  A base port with the next 100 ports free (broker, two per node, and the
#  HTTP gateway at base + 80), below the kernel's range of ephemeral ports so
#  that no client connection can take one of them between a node's restarts
bs_free_port() {
    local port tries=0 used
    used=$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -un)
    while [ $tries -lt 200 ]; do
        port=$(( 10000 + (RANDOM * 7 + $$ * 13 + tries * 100) % 22000 ))
        port=$(( port - port % 100 ))
        if ! echo "$used" | awk -v lo="$port" -v hi=$((port + 100)) '$1 >= lo && $1 < hi { found = 1 } END { exit !found }'; then
            echo "$port"
            return 0
        fi
        tries=$((tries + 1))
    done
    return 1
}

#  The CLI against this test's cluster
#  (BS_KEYS: the keys directory of a CURVE cluster)
bs() { "$BS_BIN/bookstore" --endpoint "tcp://127.0.0.1:$BS_PORT" ${BS_KEYS:+--keys "$BS_KEYS"} "$@"; }

#  bs_start_cluster [launcher options]: starts a cluster and waits until the
#  broker reports every node alive
bs_start_cluster() {
    BS_PORT=$(bs_free_port) || { not_ok "found a free port"; exit 1; }
    BS_DATA=$BS_TMP/cluster
    mkdir -p "$BS_DATA"
    "$BS_BIN/bookstore-cluster" --data "$BS_DATA" --base-port "$BS_PORT" \
        --seed "$BS_ROOT/etc/catalog.cfg" --bin-dir "$BS_BIN" --heartbeat-ms 100 --liveness 10 "$@" \
        > "$BS_TMP/cluster.log" 2>&1 &
    BS_CLUSTER_PID=$!
    local catalogs=2 orders=2 args=("$@") i
    for ((i = 0; i < ${#args[@]}; i++)); do
        [ "${args[$i]}" = --catalog ] && catalogs=${args[$((i + 1))]}
        [ "${args[$i]}" = --order ] && orders=${args[$((i + 1))]}
    done
    BS_NODES=$((catalogs + orders))
    if ! bs_wait_ready "$BS_NODES" 30; then
        not_ok "cluster started on port $BS_PORT"
        tail -n 40 "$BS_TMP/cluster.log"
        exit 1
    fi
}

#  bs_wait_alive N SECONDS: until N nodes are alive
bs_wait_alive() {
    local want=$1 deadline=$((SECONDS + $2)) alive
    while [ $SECONDS -lt "$deadline" ]; do
        alive=$(bs --json --timeout-ms 500 --attempts 1 status 2>/dev/null \
                | jq '[.nodes[]? | select(.alive)] | length' 2>/dev/null)
        [ "${alive:-0}" -ge "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

#  The pid of a node, from the launcher's pid file
bs_pid() { cat "$BS_DATA/pids/$1.pid" 2>/dev/null; }

#  bs_wait_ready N SECONDS: until N nodes are alive and in sync (caught up)
bs_wait_ready() {
    local want=$1 deadline=$((SECONDS + $2)) ready
    while [ $SECONDS -lt "$deadline" ]; do
        ready=$(bs --json --timeout-ms 500 --attempts 1 status 2>/dev/null \
                | jq '[.nodes[]? | select(.alive and .insync)] | length' 2>/dev/null)
        [ "${ready:-0}" -ge "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

#  bs_digests SERVICE: the distinct digests of the service's alive nodes
bs_digests() {
    bs --json status | jq -r --arg s "$1" '[.nodes[] | select(.alive and .service == $s) | .digest] | unique | join(" ")'
}

#  bs_wait_converged SECONDS: until every alive replica of each service is
#  in sync and reports the same digest as its peers
bs_wait_converged() {
    local deadline=$((SECONDS + $1)) out
    while [ $SECONDS -lt "$deadline" ]; do
        out=$(bs --json --timeout-ms 1000 --attempts 1 status 2>/dev/null)
        if [ -n "$out" ] && echo "$out" | jq -e '
              [.nodes[] | select(.alive)] as $n
              | ($n | all(.insync and .lag == 0))
                and ([$n[] | select(.service == "catalog") | .digest] | unique | length) == 1
                and ([$n[] | select(.service == "order") | .digest] | unique | length) == 1' > /dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

#  bs_wait_pid_change NODE OLDPID SECONDS: until the launcher restarted it
bs_wait_pid_change() {
    local deadline=$((SECONDS + $3)) pid
    while [ $SECONDS -lt "$deadline" ]; do
        pid=$(bs_pid "$1")
        [ -n "$pid" ] && [ "$pid" != "$2" ] && kill -0 "$pid" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

#  Every process of the cluster is still running
bs_all_running() {
    local f
    kill -0 "$BS_CLUSTER_PID" 2>/dev/null || return 1
    for f in "$BS_DATA"/pids/*.pid; do
        kill -0 "$(cat "$f")" 2>/dev/null || return 1
    done
}

#  Stops the cluster and checks that no sanitizer complained in its logs
bs_stop_cluster() {
    [ -n "$BS_CLUSTER_PID" ] || return 0
    local pids f i
    pids=$(cat "$BS_DATA"/pids/*.pid 2>/dev/null)
    kill -TERM "$BS_CLUSTER_PID" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$BS_CLUSTER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BS_CLUSTER_PID" 2>/dev/null
    for f in $pids; do kill -KILL "$f" 2>/dev/null; done
    wait "$BS_CLUSTER_PID" 2>/dev/null
    BS_CLUSTER_PID=
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$BS_TMP/cluster.log"; then
        not_ok "no sanitizer reports in the cluster's logs"
        grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$BS_TMP/cluster.log" | head -60
    else
        ok "no sanitizer reports in the cluster's logs"
    fi
}

bs_cleanup() {
    bs_stop_cluster
    if [ "$BS_FAILED" = 0 ]; then rm -rf "$BS_TMP"; else echo "# kept $BS_TMP"; fi
}
trap bs_cleanup EXIT

#  Drives the cluster with the load helper; prints its JSON summary
bs_load() { "$BS_HELPERS/load" "tcp://127.0.0.1:$BS_PORT" "$@"; }

#  The id of the catalog primary, as the broker sees it
bs_catalog_primary() {
    bs --json status | jq -r '[.nodes[] | select(.alive and .service == "catalog" and .role == "primary") | .id][0] // ""'
}

#  bs_wait_dead NODE SECONDS: until the broker reports the node not alive
bs_wait_dead() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        bs --json --timeout-ms 500 --attempts 1 status 2>/dev/null \
            | jq -e --arg n "$1" '[.nodes[] | select(.id == $n and .alive)] | length == 0' > /dev/null && return 0
        sleep 0.05
    done
    return 1
}

#  bs_check_accounts LOAD-JSON: on every alive replica, for every item the
#  load touched, initial stock + acked restocks - acked buys = stock, and
#  the number of orders equals the acked buys
bs_check_accounts() {
    local load=$BS_TMP/accounts-load.json node bad=0
    local initial='{"666":10,"321":8,"768":12,"546":10,"684":6,"499":10,"846":15}'
    echo "$1" > "$load"
    for node in $(bs --json status | jq -r '.nodes[] | select(.alive and .service == "catalog") | .id'); do
        bs --json --node "$node" list > "$BS_TMP/accounts-books.json"
        if ! jq -e -n --slurpfile load "$load" --slurpfile books "$BS_TMP/accounts-books.json" --argjson init "$initial" '
              [$load[0].items | to_entries[] | .key as $k | .value as $v
               | ($books[0].items[] | select((.item | tostring) == $k) | .stock) as $stock
               | ((if $v.added then $v.initial else $init[$k] end) + $v.restocked - $v.bought) as $want
               | select($stock != $want)] | length == 0' > /dev/null; then
            echo "# $node: stock does not match the acknowledged buys and restocks"
            bad=1
        fi
    done
    for node in $(bs --json status | jq -r '.nodes[] | select(.alive and .service == "order") | .id'); do
        bs --json --node "$node" orders > "$BS_TMP/accounts-orders.json"
        if ! jq -e -n --slurpfile load "$load" --slurpfile orders "$BS_TMP/accounts-orders.json" '
              ($orders[0].orders | group_by(.item) | map({key: (.[0].item | tostring), value: length}) | from_entries) as $n
              | [$load[0].items | to_entries[] | select(.value.bought != ($n[.key] // 0))] | length == 0' > /dev/null; then
            echo "# $node: orders do not match the acknowledged buys"
            bad=1
        fi
        if ! jq -e '(.orders | map(.rid) | unique | length) == (.orders | length)' "$BS_TMP/accounts-orders.json" > /dev/null; then
            echo "# $node: a request id has more than one order"
            bad=1
        fi
    done
    return $bad
}
