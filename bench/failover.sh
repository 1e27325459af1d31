#!/usr/bin/env bash
#  failover.sh - how long the store is unanswered when the active broker is
#  killed: starts a cluster of N brokers (default 3), then, ROUNDS times
#  (default 5), kill -9s the broker holding the active lease and times
#  until a lookup through the client endpoint list is answered again.
#  Prints each time and the median, in milliseconds.  Then, as many
#  times, kill -9s the catalog primary (as etcd names it) and times until
#  a price change is acknowledged again.
#
#  usage: bench/failover.sh [BROKERS] [ROUNDS]     (run from the repository,
#  after make bins; BS_BIN overrides bin/; LEASE_SECONDS=N passes the
#  brokers --lease-seconds N)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BS_BIN:-$ROOT/bin}
BROKERS=${1:-3}
ROUNDS=${2:-5}
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1] // 100 * 100 % 50000 + 10000)')
DATA=$TMP/cluster
mkdir -p "$DATA/hold"
LEASE_ARGS=()
[ -n "${LEASE_SECONDS:-}" ] && LEASE_ARGS=(--broker-args "--lease-seconds $LEASE_SECONDS")
"$BIN/bookstore-cluster" --data "$DATA" --base-port "$PORT" --brokers "$BROKERS" --seed "$ROOT/etc/catalog.cfg" \
    --bin-dir "$BIN" --no-gateway "${LEASE_ARGS[@]}" > "$TMP/cluster.log" 2>&1 &
CLUSTER=$!
trap 'kill -TERM $CLUSTER 2> /dev/null; wait $CLUSTER 2> /dev/null; [ -n "${KEEP_LOG:-}" ] && cp "$TMP/cluster.log" "$KEEP_LOG"; rm -rf "$TMP"' EXIT
ENDPOINTS=
for ((i = 0; i < BROKERS; i++)); do ENDPOINTS=$ENDPOINTS${i:+,}tcp://127.0.0.1:$((PORT + 5 * i)); done
ENDPOINTS=${ENDPOINTS#,}
lookup() { "$BIN/bookstore" --endpoint "$ENDPOINTS" --json --timeout-ms 300 --attempts 4 lookup 321 2> /dev/null \
    | jq -e .ok > /dev/null 2>&1; }
#  The active broker's id, as etcd names it
active() { etcdctl --endpoints "http://127.0.0.1:$((PORT + 90))" get --print-value-only /bookstore/default/active \
    2> /dev/null | jq -r .id; }
deadline=$((SECONDS + 60))
until lookup; do [ $SECONDS -lt $deadline ] || { echo "the cluster did not start"; exit 1; }; sleep 0.2; done
times=()
for ((r = 1; r <= ROUNDS; r++)); do
    sleep 3                     #  let the cluster settle between rounds
    id=$(active)
    pid=$(cat "$DATA/pids/$id.pid")
    touch "$DATA/hold/$id"      #  kept down until the round ends
    kill -KILL "$pid"
    t0=$(date +%s%3N)
    until lookup; do :; done
    t1=$(date +%s%3N)
    times+=($((t1 - t0)))
    echo "round $r: killed $id, lookups answered again after $((t1 - t0)) ms (now active: $(active))"
    rm -f "$DATA/hold/$id"
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "median of $ROUNDS: ${sorted[$((ROUNDS / 2))]} ms (brokers: $BROKERS)"

#  The catalog primary: from its death to the next acknowledged write
write() { "$BIN/bookstore" --endpoint "$ENDPOINTS" --json --timeout-ms 300 --attempts 1 set-price 321 "$1" 2> /dev/null \
    | jq -e .ok > /dev/null 2>&1; }
primary() { etcdctl --endpoints "http://127.0.0.1:$((PORT + 90))" get --print-value-only \
    /bookstore/default/partitions/catalog 2> /dev/null | jq -r .primary; }
times=()
for ((r = 1; r <= ROUNDS; r++)); do
    sleep 3
    deadline=$((SECONDS + 30))
    until write 5; do [ $SECONDS -lt $deadline ] || { echo "writes did not resume"; exit 1; }; sleep 0.2; done
    id=$(primary)
    pid=$(cat "$DATA/pids/$id.pid")
    kill -KILL "$pid"           #  the launcher restarts it; it comes back a follower
    t0=$(date +%s%3N)
    until write $((r + 5)); do :; done
    t1=$(date +%s%3N)
    times+=($((t1 - t0)))
    echo "round $r: killed catalog primary $id, writes acknowledged again after $((t1 - t0)) ms (now primary: $(primary))"
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "median of $ROUNDS: ${sorted[$((ROUNDS / 2))]} ms (catalog primary killed)"
