#!/usr/bin/env bash
#  run.sh - a chaos run: a fresh cluster under load while the fault scripts
#  kill, freeze and flap its nodes; then the faults stop, the replicas
#  converge, and the store is checked against what the load was told.
#
#  Faults run in streams side by side (two by default); each stream runs
#  rounds of every kind once, in an order drawn from the seed.  The scripts
#  decide under one lock and check every process, so at any time each
#  service keeps a serving replica.  With several brokers (two by default)
#  a stream of its own SIGKILLs the active broker every few seconds
#  (kill-broker.sh), once another runs, ready to take the lease over.
#
#  Prints exactly one JSON line on stdout (progress and findings go to
#  stderr) and exits 0 when nothing was lost, doubled, oversold or
#  mispriced (bs_audit, request by request against the load's record), the
#  checker read every replica, no replica diverged or stayed down, no node
#  crashed by itself and every request got a definite answer (the load
#  exited 0); 1 on any violation; 2 on a usage error.
set -u
CHAOS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$CHAOS_DIR/lib.sh"

KINDS_ALL="kill-random kill-primary freeze flap kill-several"
DURATION=${DURATION:-60}
SEED=${SEED:-}
CATALOGS=3
ORDERS=2
CLIENTS=16
MIX=buy:45,lookup:20,search:10,restock:10,set_price:15
KINDS=$KINDS_ALL
PAUSE_MS=300
STREAMS=2
BACKOFF_MAX_MS=400
GIVE_UP_MS=30000
WORK=
KEEP=0
CLUSTER_ARGS=${CHAOS_CLUSTER_ARGS:-}
BROKERS=2
BROKER_KILL_MS=5000
ETCD_FAULT_MS=9000

usage() {
    cat <<EOF
usage: tools/chaos/run.sh [options]
Starts a cluster ($CATALOGS catalog + $ORDERS order nodes, restock period 0, two
brokers) on a free port, drives it with bookstore-load while the fault scripts of
tools/chaos run in rounds of every kind in a seeded random order, keeping a
serving replica of each service at any time, and kill-broker.sh kills the
active broker every few seconds; then stops the faults, waits for the replicas
to converge and the brokers to settle, and checks the store.  Prints one JSON
line; exits 0 when nothing was lost, doubled, oversold, mispriced or diverged, every
replica was read and every request got a definite answer, 1 otherwise, 2 on a
usage error.
  --seconds N        how long the faults and the load run (default: \$DURATION, then 60)
  --seed N           seed of the fault order, the fault scripts and the load
                     (default: \$SEED, then from the clock)
  --catalog N        catalog replicas (default: $CATALOGS)
  --order N          order replicas (default: $ORDERS)
  --clients N        concurrent clients of the load (default: $CLIENTS)
  --mix SPEC         the load's ops and weights (default: $MIX)
  --kinds LIST       fault kinds, comma-separated (default: ${KINDS_ALL// /,})
  --pause-ms N       most time between two faults of a stream, chosen at random
                     (default: $PAUSE_MS)
  --streams N        fault streams running side by side (default: $STREAMS)
  --brokers N        1 to 5 brokers, one active: the holder of the lease in etcd
                     (default: $BROKERS)
  --broker-kill-ms N with several: how often the active broker is SIGKILLed, on
                     average (each wait drawn from half to one and a half times
                     this; 0: never; default: $BROKER_KILL_MS)
  --etcd-fault-ms N  how often the launcher's etcd member is frozen (0.5 to 2 s)
                     or SIGKILLed (restarted by the launcher), on average, in
                     turns (0: never; default: $ETCD_FAULT_MS)
  --backoff-max-ms N the launcher's longest wait before restarting a node
                     (default: $BACKOFF_MAX_MS; given to bookstore-cluster when it has that setting)
  --give-up-ms N     a request with no definite answer this long is a client error
                     (default: $GIVE_UP_MS)
  --cluster-args S   extra arguments for bookstore-cluster (or \$CHAOS_CLUSTER_ARGS)
  --dir DIR          work folder: cluster data and logs, load record, fault log
                     (default: a new folder in /tmp, removed unless the run fails)
  --keep             keep the work folder
Programs come from \$BS_BIN (default: bin/).
EOF
}

die_usage() { echo "run.sh: $* (try --help)" >&2; exit 2; }
progress() { echo "$(chaos_now) chaos: $*" >&2; }
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

while [ $# -gt 0 ]; do
    case $1 in
        --help|-h) usage; exit 0 ;;
        --keep) KEEP=1; shift; continue ;;
    esac
    [ $# -ge 2 ] || die_usage "$1 needs a value, or is unknown"
    case $1 in
        --seconds) DURATION=$2 ;;
        --seed) SEED=$2 ;;
        --catalog) CATALOGS=$2 ;;
        --order) ORDERS=$2 ;;
        --clients) CLIENTS=$2 ;;
        --mix) MIX=$2 ;;
        --kinds) KINDS=${2//,/ } ;;
        --pause-ms) PAUSE_MS=$2 ;;
        --streams) STREAMS=$2 ;;
        --brokers) BROKERS=$2 ;;
        --broker-kill-ms) BROKER_KILL_MS=$2 ;;
        --etcd-fault-ms) ETCD_FAULT_MS=$2 ;;
        --backoff-max-ms) BACKOFF_MAX_MS=$2 ;;
        --give-up-ms) GIVE_UP_MS=$2 ;;
        --cluster-args) CLUSTER_ARGS=$2 ;;
        --dir) WORK=$2 ;;
        *) die_usage "unknown option $1" ;;
    esac
    shift 2
done
is_count "$DURATION" && [ "$DURATION" -ge 1 ] || die_usage "--seconds must be a whole number from 1"
[ -z "$SEED" ] && SEED=$(( ($(date +%s%N) / 1000 + $$) % 1000000000 ))
is_count "$SEED" || die_usage "--seed must be a whole number"
is_count "$CATALOGS" && [ "$CATALOGS" -ge 2 ] || die_usage "--catalog must be at least 2 (one may be stopped)"
is_count "$ORDERS" && [ "$ORDERS" -ge 2 ] || die_usage "--order must be at least 2 (one may be stopped)"
is_count "$CLIENTS" && [ "$CLIENTS" -ge 1 ] || die_usage "--clients must be a whole number from 1"
is_count "$PAUSE_MS" || die_usage "--pause-ms must be whole milliseconds"
is_count "$STREAMS" && [ "$STREAMS" -ge 1 ] || die_usage "--streams must be a whole number from 1"
is_count "$BACKOFF_MAX_MS" || die_usage "--backoff-max-ms must be whole milliseconds"
[[ $BROKERS =~ ^[1-5]$ ]] || die_usage "--brokers must be 1 to 5"
is_count "$BROKER_KILL_MS" || die_usage "--broker-kill-ms must be whole milliseconds"
is_count "$ETCD_FAULT_MS" || die_usage "--etcd-fault-ms must be whole milliseconds"
[ "$BROKER_KILL_MS" = 0 ] || [ "$BROKER_KILL_MS" -ge 500 ] || die_usage "--broker-kill-ms must be 0 or at least 500"
is_count "$GIVE_UP_MS" || die_usage "--give-up-ms must be whole milliseconds"
for kind in $KINDS; do
    [[ " $KINDS_ALL " == *" $kind "* ]] || die_usage "no fault kind '$kind' (kinds: ${KINDS_ALL// /,})"
done
[ -n "$KINDS" ] || die_usage "--kinds names no kind"
for prog in bookstore bookstore-cluster bookstore-broker bookstore-node bookstore-load; do
    [ -x "$BS_BIN/$prog" ] || die_usage "no $BS_BIN/$prog (build first, or set BS_BIN)"
done

if [ -n "$WORK" ]; then
    #  A cluster left there would start with old data: nothing would add up
    [ -e "$WORK/cluster" ] && die_usage "$WORK already holds a cluster; give a new folder"
    mkdir -p "$WORK" || die_usage "cannot create $WORK"
    WORK=$(cd "$WORK" && pwd)
else
    WORK=$(mktemp -d /tmp/bookstore-chaos.XXXXXX)
fi
BS_DATA=$WORK/cluster
LAUNCHER=
LOAD=
STREAM_PIDS=
FAILED=1

#  Lets every frozen node go, then stops what this run started: the load,
#  the fault script under way, the launcher (which stops its nodes) and any
#  node left, by the pids in the pid files
cleanup() {
    local f pid i
    trap - EXIT INT TERM
    for f in "$BS_DATA"/pids/*.pid; do
        [ -f "$f" ] && kill -s CONT "$(cat "$f")" 2>/dev/null
    done
    # shellcheck disable=SC2086
    [ -n "$STREAM_PIDS" ] && kill -s TERM $STREAM_PIDS 2>/dev/null
    [ -n "$LOAD" ] && kill -s KILL "$LOAD" 2>/dev/null
    if [ -n "$LAUNCHER" ]; then
        local pids
        pids=$(cat "$BS_DATA"/pids/*.pid 2>/dev/null)
        kill -s TERM "$LAUNCHER" 2>/dev/null
        for ((i = 0; i < 150; i++)); do
            kill -0 "$LAUNCHER" 2>/dev/null || break
            sleep 0.1
        done
        kill -s KILL "$LAUNCHER" 2>/dev/null
        for pid in $pids; do kill -s KILL "$pid" 2>/dev/null; done
        wait "$LAUNCHER" 2>/dev/null
    fi
    if [ "$FAILED" = 0 ] && [ "$KEEP" = 0 ]; then
        rm -rf "$WORK"
    else
        echo "# chaos: work folder kept: $WORK" >&2
    fi
}
#  fail WHY [CODE]: the run could not be carried out; still one JSON line
fail() {
    progress "$1"
    jq -n -c --arg e "$1" --argjson seed "$SEED" '{error: $e, seed: $seed}'
    exit "${2:-1}"
}
trap cleanup EXIT
trap 'fail interrupted 130' INT TERM

# ---------------------------------------------------------------------------
#  1. A fresh cluster
BS_PORT=$(bs_free_port) || fail "no free port range found"
BS_ENDPOINT=tcp://127.0.0.1:$BS_PORT
mkdir -p "$BS_DATA"
launcher_args=(--data "$BS_DATA" --base-port "$BS_PORT" --catalog "$CATALOGS" --order "$ORDERS"
               --restock-period 0 --heartbeat-ms 100 --liveness 5
               --seed "$BS_ROOT/etc/catalog.cfg" --bin-dir "$BS_BIN")
launcher_help=$("$BS_BIN/bookstore-cluster" --help 2>&1)
#  Several brokers: broker-i's client port is base + 5 (i - 1), and every
#  client (the CLI, the load, the checker) gets every endpoint, broker-1's
#  first
if [ "$BROKERS" -gt 1 ]; then
    grep -q -- --brokers <<< "$launcher_help" || fail "bookstore-cluster has no --brokers: it cannot start several brokers" 2
    launcher_args+=(--brokers "$BROKERS")
    for ((i = 2; i <= BROKERS; i++)); do BS_ENDPOINT+=,tcp://127.0.0.1:$((BS_PORT + 5 * (i - 1))); done
fi
#  The HTTP gateway plays no part here
grep -q -- --no-gateway <<< "$launcher_help" && launcher_args+=(--no-gateway)
#  Nodes die every few seconds here: a restart backoff that grows to
#  seconds would keep them down for most of the run
if grep -q -- --backoff-max-ms <<< "$launcher_help"; then
    launcher_args+=(--backoff-max-ms "$BACKOFF_MAX_MS")
else
    progress "bookstore-cluster has no --backoff-max-ms: restarts back off up to its own maximum, and fewer faults fit in the run"
fi
# shellcheck disable=SC2206
[ -n "$CLUSTER_ARGS" ] && launcher_args+=($CLUSTER_ARGS)
progress "seed $SEED; starting $BROKERS broker(s), $CATALOGS catalog + $ORDERS order nodes on port $BS_PORT in $WORK"
"$BS_BIN/bookstore-cluster" "${launcher_args[@]}" > "$WORK/cluster.log" 2>&1 &
LAUNCHER=$!
NODES=$((CATALOGS + ORDERS))
bs_wait_ready "$NODES" 60 || fail "the cluster did not start (see $WORK/cluster.log)"
if [ "$BROKERS" -gt 1 ]; then
    bs_wait_brokers 60 || fail "the brokers did not settle on one active (see $WORK/cluster.log)"
fi
initial=$(bs_books_now) || fail "cannot read the initial catalog"
echo "$initial" > "$WORK/initial.json"

# ---------------------------------------------------------------------------
#  2. Load and faults, for DURATION seconds
"$BS_BIN/bookstore-load" --endpoint "$BS_ENDPOINT" --clients "$CLIENTS" --seconds "$DURATION" \
    --mix "$MIX" --seed "$SEED" --record "$WORK/record.txt" --give-up-ms "$GIVE_UP_MS" \
    > "$WORK/load.json" 2> "$WORK/load.err" &
LOAD=$!
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }
end_ms=$(( $(now_ms) + DURATION * 1000 ))
: > "$WORK/faults.log"
: > "$WORK/results.txt"

#  fault_stream N: runs fault scripts until the end, in rounds of every
#  kind once in a seeded random order; appends "kind exit-code" lines to
#  results.txt.  Streams run side by side; the scripts' lock and their
#  checks of every process keep a serving replica of each service.
fault_stream() {
    local round=() kind left args rc i j tmp child=
    trap '[ -n "$child" ] && kill -s TERM "$child" 2>/dev/null; exit 0' TERM
    RANDOM=$((SEED + 7919 * $1))
    while [ "$(now_ms)" -lt "$end_ms" ]; do
        if [ ${#round[@]} -eq 0 ]; then
            read -r -a round <<< "$KINDS"
            for ((i = ${#round[@]} - 1; i > 0; i--)); do
                j=$((RANDOM % (i + 1)))
                tmp=${round[i]}; round[i]=${round[j]}; round[j]=$tmp
            done
        fi
        kind=${round[0]}
        round=("${round[@]:1}")
        left=$(( (end_ms - $(now_ms)) / 1000 ))
        args=(--data "$BS_DATA" --endpoint "$BS_ENDPOINT" --seed "$RANDOM" --wait $((left < 5? left: 5)))
        case $kind in
            freeze) args+=(--seconds "$(chaos_ms_text $((200 + RANDOM % 1001)))") ;;
            flap) args+=(--times 2) ;;
            kill-several) args+=(--count $((2 + RANDOM % 2))) ;;
        esac
        "$CHAOS_DIR/$kind.sh" "${args[@]}" > >(tee -a "$WORK/faults.log" >&2) 2>> "$WORK/faults.log" &
        child=$!
        wait "$child"
        rc=$?
        child=
        echo "$kind $rc" >> "$WORK/results.txt"
        [ "$rc" = 0 ] || [ "$rc" = 3 ] || progress "$kind failed (exit $rc)"
        [ "$PAUSE_MS" -gt 0 ] && sleep "$(chaos_ms_text $((RANDOM % (PAUSE_MS + 1))))"
    done
}

#  broker_stream: SIGKILLs the active broker every
#  BROKER_KILL_MS on average (each wait drawn from half to one and a half
#  times that) until the end; appends "kill-broker exit-code" lines to
#  results.txt.  The script waits for another broker to run, ready, so
#  the brokers are never left without one to take over.  Two
#  kills in three keep the killed broker down for 600 to 1500 ms, longer
#  than the nodes' liveness window (500 ms here), so that the other broker
#  takes over; the third kind is back within the launcher's backoff and
#  may become active again before the nodes move (a broker that restarts).
broker_stream() {
    local rc left wait_ms down_ms child=
    trap '[ -n "$child" ] && kill -s TERM "$child" 2>/dev/null; exit 0' TERM
    RANDOM=$((SEED + 104729))
    while true; do
        wait_ms=$((BROKER_KILL_MS / 2 + (RANDOM * 32768 + RANDOM) % (BROKER_KILL_MS + 1)))
        down_ms=$((RANDOM % 3 == 0? 0: 600 + RANDOM % 901))
        [ $(( $(now_ms) + wait_ms + down_ms )) -lt "$end_ms" ] || break
        sleep "$(chaos_ms_text "$wait_ms")" &
        child=$!
        wait "$child"
        left=$(( (end_ms - $(now_ms)) / 1000 ))
        "$CHAOS_DIR/kill-broker.sh" --data "$BS_DATA" --endpoint "$BS_ENDPOINT" --seed "$RANDOM" \
            --wait $((left < 5? left: 5)) --down-ms "$down_ms" \
            > >(tee -a "$WORK/faults.log" >&2) 2>> "$WORK/faults.log" &
        child=$!
        wait "$child"
        rc=$?
        child=
        echo "kill-broker $rc" >> "$WORK/results.txt"
        [ "$rc" = 0 ] || [ "$rc" = 3 ] || progress "kill-broker failed (exit $rc)"
    done
}

#  etcd_stream: freezes (0.5 to 2 s) or SIGKILLs, in turns, the launcher's
#  etcd member every ETCD_FAULT_MS on average until the end; appends "etcd
#  exit-code" lines to results.txt.  While etcd does not answer, the
#  active broker serves until its lease's validity runs out, then refuses
#  (the load retries); no election or in-sync change is made meanwhile.
etcd_stream() {
    local rc wait_ms mode args child= turn=0
    trap '[ -n "$child" ] && kill -s TERM "$child" 2>/dev/null; exit 0' TERM
    RANDOM=$((SEED + 15485863))
    while true; do
        wait_ms=$((ETCD_FAULT_MS / 2 + (RANDOM * 32768 + RANDOM) % (ETCD_FAULT_MS + 1)))
        [ $(( $(now_ms) + wait_ms + 2000 )) -lt "$end_ms" ] || break
        sleep "$(chaos_ms_text "$wait_ms")" &
        child=$!
        wait "$child"
        turn=$((turn + 1))
        if [ $((turn % 2)) = 1 ]; then
            args=(--mode freeze --seconds "$(chaos_ms_text $((500 + RANDOM % 1501)))")
        else
            args=(--mode kill)
        fi
        "$CHAOS_DIR/etcd.sh" --data "$BS_DATA" --endpoint "$BS_ENDPOINT" --seed "$RANDOM" --wait 5 "${args[@]}" \
            > >(tee -a "$WORK/faults.log" >&2) 2>> "$WORK/faults.log" &
        child=$!
        wait "$child"
        rc=$?
        child=
        echo "etcd $rc" >> "$WORK/results.txt"
        [ "$rc" = 0 ] || [ "$rc" = 3 ] || progress "etcd fault failed (exit $rc)"
    done
}

RUN_KINDS=$KINDS
[ "$BROKERS" -gt 1 ] && [ "$BROKER_KILL_MS" -gt 0 ] && RUN_KINDS="$KINDS kill-broker"
ETCD_FAULTS=no
[ "$ETCD_FAULT_MS" -gt 0 ] && [ -s "$BS_DATA/pids/etcd.pid" ] && ETCD_FAULTS=yes
[ "$ETCD_FAULTS" = yes ] && RUN_KINDS="$RUN_KINDS etcd"
progress "load and faults for $DURATION s (kinds: $RUN_KINDS; $STREAMS stream(s)$([[ " $RUN_KINDS " == *" kill-broker "* ]] && echo "; the active broker killed every ${BROKER_KILL_MS} ms or so")$([ "$ETCD_FAULTS" = yes ] && echo "; etcd frozen or killed every ${ETCD_FAULT_MS} ms or so"))"
for ((s = 1; s <= STREAMS; s++)); do
    fault_stream "$s" &
    STREAM_PIDS="$STREAM_PIDS $!"
done
if [[ " $RUN_KINDS " == *" kill-broker "* ]]; then
    broker_stream &
    STREAM_PIDS="$STREAM_PIDS $!"
fi
if [ "$ETCD_FAULTS" = yes ]; then
    etcd_stream &
    STREAM_PIDS="$STREAM_PIDS $!"
fi
# shellcheck disable=SC2086
wait $STREAM_PIDS
STREAM_PIDS=
#  Per kind: done (exit 0), skipped (3: no node could be stopped) and
#  failed (any other exit: a node not restarted, the cluster unreachable)
declare -A done_by_kind skipped_by_kind failed_by_kind
for kind in $RUN_KINDS; do
    done_by_kind[$kind]=$(awk -v k="$kind" '$1 == k && $2 == 0' "$WORK/results.txt" | wc -l)
    skipped_by_kind[$kind]=$(awk -v k="$kind" '$1 == k && $2 == 3' "$WORK/results.txt" | wc -l)
    failed_by_kind[$kind]=$(awk -v k="$kind" '$1 == k && $2 != 0 && $2 != 3' "$WORK/results.txt" | wc -l)
done

# ---------------------------------------------------------------------------
#  3. Faults stop: no node held down or frozen; the load finishes
rm -f "$BS_DATA"/hold/*
for f in "$BS_DATA"/pids/*.pid; do kill -s CONT "$(cat "$f")" 2>/dev/null; done
progress "faults stopped; waiting for the load's last answers"
wait "$LOAD"
load_rc=$?
LOAD=
load=$(cat "$WORK/load.json")
[ -n "$load" ] || fail "the load printed nothing (exit $load_rc; see $WORK/load.err)"

# ---------------------------------------------------------------------------
#  4. Convergence: every node back, in sync, equal digests per service
progress "waiting for every node to come back and the replicas to converge"
converged=true
bs_wait_ready "$NODES" 60 || converged=false
bs_wait_converged 60 || converged=false
#  Several brokers settle with one active, named so by all
pair_ok=true
if [ "$BROKERS" -gt 1 ]; then
    bs_wait_brokers 30 || pair_ok=false
    [ "$pair_ok" = true ] || progress "the brokers did not settle: $(bs_status --timeout-ms 1000 --attempts 2 | jq -c '.brokers')"
fi
status=$(bs_status --timeout-ms 2000 --attempts 3) || fail "the broker does not answer"
echo "$status" > "$WORK/status.json"
#  Replicas whose digest is not their service's most common one
divergent=$(echo "$status" | jq '[.nodes[]? | select(.alive)] | group_by(.service)
    | map(length - (group_by(.digest) | map(length) | max)) | add // 0')
[ "$converged" = true ] || progress "the replicas did not converge: $(echo "$status" | jq -c '[.nodes[] | {id, alive, insync, lag, seq, digest}]')"

# ---------------------------------------------------------------------------
#  5. The checks
audit=$(bs_audit "$load" "$initial" "$WORK/record.txt" 2> "$WORK/audit.log")
cat "$WORK/audit.log" >&2
[ -n "$audit" ] || audit='{"lost":-1,"duplicated":-1,"unacked":-1,"oversold":-1,"mispriced":-1,"unreadable":-1,
                          "incomplete":-1,"read":{"catalog":0,"order":0}}'
#  Replicas down: every one the audit did not read, by the audit's own
#  status call (a replica left out of it counts as down)
down=$(echo "$audit" | jq --argjson n "$NODES" '$n - .read.catalog - .read.order')
#  A node that died of anything but our SIGKILL crashed by itself; sanitizer
#  reports are bugs as well
crashes=$(grep -E 'cluster: [a-z0-9-]+ died: ' "$WORK/cluster.log" | grep -cv 'killed by signal 9 ')
sanitizer=$(grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$WORK/cluster.log")
faults=0
by_kind="{}"
for kind in $RUN_KINDS; do
    faults=$((faults + done_by_kind[$kind]))
    by_kind=$(echo "$by_kind" | jq -c --arg k "$kind" --argjson n "${done_by_kind[$kind]}" '. + {($k): $n}')
done
skipped="{}"
failed="{}"
for kind in $RUN_KINDS; do
    skipped=$(echo "$skipped" | jq -c --arg k "$kind" --argjson n "${skipped_by_kind[$kind]}" \
        'if $n > 0 then . + {($k): $n} else . end')
    failed=$(echo "$failed" | jq -c --arg k "$kind" --argjson n "${failed_by_kind[$kind]}" \
        'if $n > 0 then . + {($k): $n} else . end')
done
result=$(jq -n -c --argjson seconds "$DURATION" --argjson seed "$SEED" --argjson faults "$faults" \
    --argjson by_kind "$by_kind" --argjson skipped "$skipped" --argjson failed "$failed" \
    --argjson load "$load" --argjson audit "$audit" \
    --argjson divergent "$divergent" --argjson down "$down" --argjson converged "$converged" \
    --argjson crashes "$crashes" --argjson sanitizer "$sanitizer" --argjson load_exit "$load_rc" \
    --argjson brokers "$BROKERS" --argjson pair_ok "$pair_ok" '
    {seconds: $seconds, seed: $seed, brokers: $brokers, faults: $faults, faults_by_kind: $by_kind,
     faults_skipped: $skipped, faults_failed: $failed, pair_settled: $pair_ok,
     requests: $load.requests, acked_buys: $load.acked_buys,
     lost: $audit.lost, duplicated: $audit.duplicated, unacked_orders: $audit.unacked,
     oversold: $audit.oversold, mispriced: $audit.mispriced, divergent: $divergent, down: $down,
     converged: $converged, unreadable: $audit.unreadable, record_incomplete: $audit.incomplete,
     read: $audit.read, crashes: $crashes, sanitizer_reports: $sanitizer,
     client_errors: $load.gave_up, load_exit: $load_exit, max_latency_ms: $load.max_latency_ms,
     p99_latency_ms: $load.p99_latency_ms, retries: $load.retries}')
echo "$result" > "$WORK/result.json"
if echo "$result" | bs_holds '.lost == 0 and .duplicated == 0 and .unacked_orders == 0 and .oversold == 0
        and .mispriced == 0 and .divergent == 0 and .down == 0 and .converged and .pair_settled
        and .unreadable == 0 and .record_incomplete == 0 and .crashes == 0 and .sanitizer_reports == 0
        and .client_errors == 0 and .load_exit == 0'; then
    FAILED=0
fi
echo "$result"
exit $FAILED
