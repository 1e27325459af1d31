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
#  Cluster helpers and the checker, shared with the chaos tools:
#  bs_free_port, bs_pid, bs_wait_ready, bs_wait_converged, bs_digests,
#  bs_wait_pid_change, bs_catalog_primary, bs_audit, bs_check_accounts
source "$BS_ROOT/tools/chaos/lib.sh"

#  BS_RAN counts the checks printed by this shell (not by subshells), for
#  bs_skip_rest
BS_PLAN=
BS_RAN=0
ok()     { echo "ok - $*"; BS_RAN=$((BS_RAN + 1)); }
not_ok() { echo "not ok - $*"; BS_FAILED=1; BS_RAN=$((BS_RAN + 1)); }
log()    { echo "# $*"; }

#  bs_plan N: the TAP plan, printed first: this script runs exactly N checks
#  (ok / not ok lines, including the sanitizer check each bs_stop_cluster
#  prints).  tests/run.sh fails a script that runs fewer or more.
bs_plan() { BS_PLAN=$1; echo "1..$1"; }

#  skip NAME REASON: a check that could not run here; counted as skipped
skip_check() { echo "ok - $1 # SKIP $2"; BS_RAN=$((BS_RAN + 1)); }

#  bs_skip_rest REASON: the rest of the script cannot run here (a missing
#  tool, no root): reports each planned check not yet run as skipped, with
#  the reason, and exits.  Call it before any cluster starts.
bs_skip_rest() {
    local i n=$((BS_PLAN - BS_RAN))
    for ((i = 1; i <= n; i++)); do
        skip_check "$(basename "$0" .sh) check $((BS_RAN + 1)) of $BS_PLAN" "$1"
    done
    exit 0
}

#  check NAME COMMAND...: ok when the command succeeds
check() {
    local name=$1; shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

#  until_true SECONDS COMMAND...: polls the command (every 0.1 s) until it
#  succeeds; false when it has not within the time
until_true() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

#  bs_no_line PATTERN FILE: no line of FILE matches PATTERN (grep -E)
bs_no_line() { ! grep -qE "$1" "$2"; }

#  The CLI against this test's cluster
#  (BS_KEYS: the keys directory of a CURVE cluster)
#  (BS_ENDPOINTS: the brokers, comma-separated, when there are several)
bs() { "$BS_BIN/bookstore" --endpoint "${BS_ENDPOINTS:-tcp://127.0.0.1:$BS_PORT}" ${BS_KEYS:+--keys "$BS_KEYS"} "$@"; }

#  bs_start_cluster [launcher options]: starts a cluster and waits until the
#  broker reports every node alive (with --brokers N above 1, the active
#  broker, BS_ENDPOINTS naming them all: bs_use_brokers)
bs_start_cluster() {
    BS_PORT=$(bs_free_port) || { not_ok "found a free port"; exit 1; }
    BS_DATA=$BS_TMP/cluster
    mkdir -p "$BS_DATA"
    "$BS_BIN/bookstore-cluster" --data "$BS_DATA" --base-port "$BS_PORT" \
        --seed "$BS_ROOT/etc/catalog.cfg" --bin-dir "$BS_BIN" --heartbeat-ms 100 --liveness 10 "$@" \
        > "$BS_TMP/cluster.log" 2>&1 &
    BS_CLUSTER_PID=$!
    local catalogs=2 orders=2 brokers=1 args=("$@") i
    for ((i = 0; i < ${#args[@]}; i++)); do
        [ "${args[$i]}" = --catalog ] && catalogs=${args[$((i + 1))]}
        [ "${args[$i]}" = --order ] && orders=${args[$((i + 1))]}
        [ "${args[$i]}" = --brokers ] && brokers=${args[$((i + 1))]}
    done
    [ "$brokers" -gt 1 ] && bs_use_brokers "$brokers"
    BS_NODES=$((catalogs + orders))
    if ! bs_wait_ready "$BS_NODES" 30; then
        not_ok "cluster started on port $BS_PORT"
        tail -n 40 "$BS_TMP/cluster.log"
        exit 1
    fi
}

#  The control plane of a cluster bs_start_cluster started: its etcd's URL
#  (the launcher's member, base port + 90), the catalog's map as etcd holds
#  it (JSON, or nothing), whether the map passes a jq filter, and how often
#  the broker has said the catalog waits for its in-sync set
BS_MAP_KEY=/bookstore/default/partitions/catalog
bs_etcd_url() { echo "http://127.0.0.1:$((BS_PORT + 90))"; }
bs_meta() { etcdctl --endpoints "$(bs_etcd_url)" --command-timeout 2s get --print-value-only "$BS_MAP_KEY" 2> /dev/null; }
bs_meta_holds() { bs_meta | bs_holds "$1"; }
bs_waits_said() { grep -c "no live member of the in-sync set of catalog" "$BS_TMP/cluster.log"; }

#  Several brokers (after bs_start_cluster --brokers N): EP1 ... EPN, each
#  broker's client endpoint (broker-i's at base port + 5 (i - 1)), and
#  BS_ENDPOINTS all of them, for every later call
bs_use_brokers() {
    local i
    BS_ENDPOINTS=
    for ((i = 1; i <= $1; i++)); do
        printf -v "EP$i" '%s' "tcp://127.0.0.1:$((BS_PORT + 5 * (i - 1)))"
        BS_ENDPOINTS+=${BS_ENDPOINTS:+,}tcp://127.0.0.1:$((BS_PORT + 5 * (i - 1)))
    done
}
#  one ENDPOINTS ARGS...: the CLI against those brokers only
one() { local ep=$1; shift; "$BS_BIN/bookstore" --endpoint "$ep" "$@"; }
#  endpoint_of broker-i: its client endpoint
endpoint_of() { local v=EP${1#broker-}; echo "${!v}"; }
#  other_of ID: with two brokers, the other one
other_of() { [ "$1" = broker-1 ] && echo broker-2 || echo broker-1; }
#  believes_active ID: that broker's own status says it is the active one
believes_active() {
    one "$(endpoint_of "$1")" --json --attempts 1 --timeout-ms 500 --node "$1" status 2> /dev/null \
        | bs_holds "[.brokers[] | select(.id == \"$1\" and .active)] | length == 1"
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

#  Drives the cluster with bookstore-load (CLIENTS REQUESTS MIX [SEED] or
#  its options); prints its JSON summary
bs_load() { "$BS_BIN/bookstore-load" --endpoint "${BS_ENDPOINTS:-tcp://127.0.0.1:$BS_PORT}" "$@"; }

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
