#!/usr/bin/env bash
#  bench/run.sh - the standard benchmark suite (make bench).
#
#  1. A bare ZeroMQ ping-pong between two processes: the baseline every
#     latency is compared with, since absolute times vary between machines.
#  2. A fresh local cluster (2 catalog + 2 order replicas) as it ships, with
#     the broker's cache on: every workload at 1 client and at 100 clients,
#     on the bench's own books.
#  3. A fresh cluster with the cache off, so that reads reach the catalog
#     replicas: lookup-cold and search on the seed catalog (7 books), then on
#     a catalog of 1,000,000 books, at 1 and 100 clients.
#  4. HTTP: wrk against the gateway's cached lookup (GET /lookup/666) and
#     against nginx serving the same JSON from a file, side by side in the
#     same run, reported as a ratio.
#  5. Flood: on a fresh cluster, one client's cached lookups alone, then
#     while another client sends searches flat out and never reads; the
#     broker's peak resident memory during the flood.
#  Results go to bench/results.md: the machine, a table with every latency
#  also as a multiple of the ping-pong p50, and the targets; for each
#  write-path target not met, what limits it (from the nodes' profiles) and
#  the next lever.  Sections "## Note: ..." at the end of the old file
#  (measured by hand) are kept.
#
#  BENCH_SECONDS  seconds measured per run (default 10)
#  BENCH_WARMUP   seconds of warm-up per run (default 2)
#  BENCH_CATALOG  books in the large catalog (default 1000000)
#  BENCH_OUT      the results file (default bench/results.md)
#  BENCH_PARTS    which parts run: "store" (1 to 3), "http" (4), "flood" (5);
#                 default all three
#  BS_BIN         the programs (default bin)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_SECONDS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
BIG=${BENCH_CATALOG:-1000000}
PARTS=${BENCH_PARTS:-store http flood}
OUT=${BENCH_OUT:-$ROOT/bench/results.md}
export BS_BIN=${BS_BIN:-$ROOT/bin}
SEED_ITEMS=666,321,768,546,684,499,846
#  What was measured, and how busy the machine was when it began
COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

for program in bookstore-bench bookstore-cluster bookstore-broker bookstore-node bookstore; do
    if [ ! -x "$BS_BIN/$program" ]; then
        echo "bench/run.sh: $BS_BIN/$program is missing: run make first" >&2
        exit 2
    fi
done

#  Free ports, starting and stopping clusters by their pids: the same
#  helpers as the integration tests
source "$ROOT/tests/integration/lib.sh"
#  The flood and the client measured beside it are ours to stop too, on
#  any exit (lib.sh's bs_cleanup stops the cluster)
FLOOD_PID=
VICTIM_PID=
bench_cleanup() {
    [ -n "$FLOOD_PID" ] && kill -KILL "$FLOOD_PID" 2> /dev/null
    [ -n "$VICTIM_PID" ] && kill -KILL "$VICTIM_PID" 2> /dev/null
    bs_cleanup
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
RESULTS=$BS_TMP/results.jsonl
: > "$RESULTS"
FAILED=0

say() { echo "bench: $*" >&2; }

#  record CATALOG CACHE ARGS...: runs the bench and keeps its JSON with the
#  catalog and cache it ran against
record() {
    local catalog=$1 cache=$2 out rc
    shift 2
    say "$* (catalog $catalog, cache $cache)"
    out=$("$BS_BIN/bookstore-bench" --seconds "$RUN_SECONDS" --warmup "$WARMUP" --json "$@"); rc=$?
    if [ "$rc" -ne 0 ] || ! echo "$out" | jq -e .ok > /dev/null 2>&1; then
        say "  failed (exit $rc): $out"
        FAILED=1
        jq -n -c --arg args "$*" --arg catalog "$catalog" --arg cache "$cache" --argjson rc "$rc" \
            '{failed: true, args: $args, catalog: $catalog, cache: $cache, rc: $rc}' >> "$RESULTS"
        return
    fi
    echo "$out" | jq -c --arg catalog "$catalog" --arg cache "$cache" '. + {catalog: $catalog, cache: $cache}' \
        | tee -a "$RESULTS" | jq -r '"  \(.ops_per_s | round) ops/s, p50 \(.p50_us) us, p99 \(.p99_us) us, errors \(.errors)"' >&2
}

#  The store alone is measured: no HTTP gateway beside it, where the
#  launcher would start one
CLUSTER_ARGS=()
if "$BS_BIN/bookstore-cluster" --help 2>&1 | grep -q -- '--no-gateway'; then
    CLUSTER_ARGS+=(--no-gateway)
fi

#  start_cluster [launcher options]: a fresh cluster, default heartbeats, room
#  in LMDB for a million books
start_cluster() {
    rm -rf "$BS_TMP/cluster"
    bs_start_cluster --catalog 2 --order 2 --restock-period 0 --heartbeat-ms 250 --liveness 3 \
        --node-args "--map-size-mb 16384 --profile-seconds $PROFILE_SECONDS" "${CLUSTER_ARGS[@]}" "$@" >&2
    EP=tcp://127.0.0.1:$BS_PORT
    say "cluster on port $BS_PORT $*"
}

stop_cluster() { bs_stop_cluster > /dev/null; }

#  Every node logs where its event loop spent each PROFILE_SECONDS
#  (--profile-seconds); profile TITLE WORKLOAD CLIENTS keeps, for each node,
#  the last period that ended before now, i.e. inside the run just finished:
#  as text in PROFILES, for the report, and as one JSON line in
#  PROFILES_JSON, for the lines that say what limits an unmet target
PROFILE_SECONDS=3
PROFILES=$BS_TMP/profiles.txt
PROFILES_JSON=$BS_TMP/profiles.jsonl
: > "$PROFILES"
: > "$PROFILES_JSON"
#  CPU_MARK: /proc/stat's cpu line when the run began; profile prints what
#  the machine's CPUs did since (the whole cluster and the bench share them)
CPU_MARK=
profile() {
    local until cpu nodes
    until=$(date '+%y-%m-%d %H:%M:%S')
    #  user system softirq iowait idle, in percent
    cpu=$(echo "$CPU_MARK" "$(head -1 /proc/stat)" | awk '{
            n = (NF - 2) / 2          # two "cpu" lines side by side
            for (i = 2; i <= n + 1; i++) { d[i] = $(i + n + 1) - $i; total += d[i] }
            if (total > 0)
                printf "%.0f %.0f %.0f %.0f %.0f\n", 100 * (d[2] + d[3]) / total, 100 * d[4] / total,
                       100 * d[8] / total, 100 * d[6] / total, 100 * d[5] / total }')
    #  one line a node: "order-1 3.0 s: wait 24.4% (1458) commit 56.8% (953) ..."
    nodes=$(awk -v until="$until" '
            / profile of / && ($3 " " $4) <= until { node = $5; sub(/:$/, "", node); last[node] = $0 }
            END { for (node in last) { line = last[node]; sub(/.* profile of /, "", line); print node, line } }' \
            "$BS_TMP/cluster.log" | sort)
    {
        echo "$1:"
        [ -n "$cpu" ] && echo "$cpu" | awk '{ printf "  CPUs: user %s%%, system %s%%, softirq %s%%, iowait %s%%, idle %s%%\n", $1, $2, $3, $4, $5 }'
        [ -n "$nodes" ] && echo "$nodes" | awk '{ node = $1; $1 = ""; sub(/^ /, ""); printf "  %-10s %s\n", node, $0 }'
    } >> "$PROFILES"
    #  {"workload", "clients", "cpu": {"user", ...}, "nodes": [{"node",
    #  "seconds", "phases": {"wait": {"pct", "n"}, ...}}]}
    echo "$nodes" | awk '
        NF >= 3 { printf "%s{\"node\":\"%s\",\"seconds\":%s,\"phases\":{", sep, $1, $2; sep = ","
                  psep = ""
                  for (i = 4; i + 2 <= NF; i += 3) {
                      pct = $(i + 1); sub(/%$/, "", pct); n = $(i + 2); gsub(/[()]/, "", n)
                      printf "%s\"%s\":{\"pct\":%s,\"n\":%s}", psep, $i, pct, n; psep = "," }
                  printf "}}" }' \
        | jq -c -s -R --arg workload "$2" --argjson clients "$3" --arg cpu "$cpu" '
            {workload: $workload, clients: $clients,
             cpu: ($cpu | split(" ") | if length == 5 then map(tonumber) | {user: .[0], system: .[1], softirq: .[2], iowait: .[3], idle: .[4]} else null end),
             nodes: ("[" + . + "]" | fromjson)}' >> "$PROFILES_JSON"
}

if [[ " $PARTS " == *" store "* ]]; then
say "ping-pong baseline"
record - - --workload pingpong --clients 1
record - - --workload pingpong --clients 100

start_cluster
for workload in lookup-hot lookup-cold search buy mixed write-mix; do
    for clients in 1 100; do
        CPU_MARK=$(head -1 /proc/stat)
        record 64 on --endpoint "$EP" --workload "$workload" --clients "$clients"
        #  the write path: buy at both, the mixes at 100 clients
        if [ "$workload" = buy ] || { [ "$clients" = 100 ] && [[ $workload =~ ^(mixed|write-mix)$ ]]; }; then
            profile "$workload, $clients client(s)" "$workload" "$clients"
        fi
    done
done
stop_cluster

start_cluster --broker-args "--cache-entries 0"
for workload in lookup-cold search; do
    for clients in 1 100; do
        record "7 (seed)" off --endpoint "$EP" --workload "$workload" --clients "$clients" --items "$SEED_ITEMS"
    done
done
say "loading $BIG books"
out=$("$BS_BIN/bookstore-bench" --endpoint "$EP" --json --clients 1000 load-catalog "$BIG")
if echo "$out" | jq -e .ok > /dev/null 2>&1; then
    echo "$out" | jq -c --arg catalog "$BIG" '. + {catalog: $catalog, cache: "off"}' >> "$RESULTS"
else
    say "  loading failed: $out"
    FAILED=1
fi
for workload in lookup-cold search; do
    for clients in 1 100; do
        record "$BIG" off --endpoint "$EP" --workload "$workload" --clients "$clients" --catalog-size "$BIG"
    done
done
stop_cluster
fi

#  --------------------------------------------------------------------------
#  HTTP: the gateway's cached lookup against nginx serving the same bytes
#  from a file, each with wrk at HTTP_CONNECTIONS connections, one after the
#  other on the same machine

HTTP_CONNECTIONS=${BENCH_HTTP_CONNECTIONS:-50}
HTTP=$BS_TMP/http.jsonl
: > "$HTTP"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

#  wrk_json NAME URL: one wrk run as a JSON line in $HTTP
wrk_json() {
    local name=$1 url=$2
    say "wrk $name: $url ($HTTP_CONNECTIONS connections)"
    wrk -t2 -c "$HTTP_CONNECTIONS" -d "${WARMUP}s" "$url" > /dev/null 2>&1
    wrk -t2 -c "$HTTP_CONNECTIONS" -d "${RUN_SECONDS}s" --latency "$url" > "$BS_TMP/wrk-$name.txt" 2>&1
    awk -v name="$name" -v conns="$HTTP_CONNECTIONS" '
        function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
        $1 == "50%" { p50 = us($2) } $1 == "90%" { p90 = us($2) } $1 == "99%" { p99 = us($2) }
        $1 == "Requests/sec:" { rate = $2 }
        /Non-2xx/ { errors += $NF }
        /Socket errors/ { for (i = 4; i <= NF; i += 2) { v = $i; sub(/,/, "", v); errors += v } }
        END { printf "{\"server\":\"%s\",\"connections\":%d,\"rps\":%.0f,\"p50_us\":%.0f,\"p90_us\":%.0f,\"p99_us\":%.0f,\"errors\":%d}\n",
                     name, conns, rate, p50, p90, p99, errors + 0 }' "$BS_TMP/wrk-$name.txt" | tee -a "$HTTP" >&2
}

if [[ " $PARTS " != *" http "* ]]; then
    :
elif command -v wrk > /dev/null && [ -x "$NGINX" ] && [ -x "$BS_BIN/bookstore-gateway" ]; then
    start_cluster
    GW_PORT=$(bs_free_port)
    "$BS_BIN/bookstore-gateway" --listen "127.0.0.1:$GW_PORT" --endpoint "$EP" > "$BS_TMP/gateway.log" 2>&1 &
    GW_PID=$!
    until_true 20 curl -sf -m 2 -o "$BS_TMP/lookup.json" "http://127.0.0.1:$GW_PORT/lookup/666"
    #  nginx on a free port, its files and pid in the temporary folder
    NGINX_PORT=$(bs_free_port)
    mkdir -p "$BS_TMP/nginx"
    cp "$BS_TMP/lookup.json" "$BS_TMP/nginx/lookup.json"
    #  (as root its workers would otherwise run as a user who cannot read
    #  the temporary folder)
    NGINX_USER=
    [ "$(id -u)" = 0 ] && NGINX_USER="user root root;"
    cat > "$BS_TMP/nginx/nginx.conf" <<CONF
$NGINX_USER
worker_processes auto;
daemon off;
pid $BS_TMP/nginx/nginx.pid;
error_log $BS_TMP/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $BS_TMP/nginx/body;
    proxy_temp_path $BS_TMP/nginx/proxy;
    fastcgi_temp_path $BS_TMP/nginx/fastcgi;
    uwsgi_temp_path $BS_TMP/nginx/uwsgi;
    scgi_temp_path $BS_TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { root $BS_TMP/nginx; default_type application/json; try_files /lookup.json =404; }
    }
}
CONF
    "$NGINX" -p "$BS_TMP/nginx" -c "$BS_TMP/nginx/nginx.conf" > "$BS_TMP/nginx/stdout" 2>&1 &
    NGINX_PID=$!
    if until_true 20 curl -sf -m 2 -o /dev/null "http://127.0.0.1:$NGINX_PORT/lookup/666"; then
        wrk_json nginx "http://127.0.0.1:$NGINX_PORT/lookup/666"
        wrk_json gateway "http://127.0.0.1:$GW_PORT/lookup/666"
    else
        say "nginx did not start: $(cat "$BS_TMP/nginx/error.log" "$BS_TMP/nginx/stdout" 2>/dev/null | tail -3)"
        FAILED=1
    fi
    kill -TERM "$NGINX_PID" "$GW_PID" 2> /dev/null
    wait "$NGINX_PID" "$GW_PID" 2> /dev/null
    stop_cluster
else
    say "wrk, nginx or the gateway missing (make deps): no HTTP rows"
fi

#  --------------------------------------------------------------------------
#  Flood: one client (tests/rogue/rogue.py flood) sends cached searches flat
#  out and never reads.  Another client's cached lookups (bookstore-bench,
#  1 client, item 666) are measured alone, then during the flood; the
#  broker's VmRSS is sampled from the flood's start to its end.

FLOOD=$BS_TMP/flood.json
FLOOD_TOPIC=distributed_systems
#  the flood outlasts the measured client's warm-up and run (the report
#  says if it did not)
FLOOD_SECONDS=$((WARMUP + RUN_SECONDS + 5))
#  the system's python has python3-zmq and python3-msgpack, another first
#  in PATH may not
PY=/usr/bin/python3
"$PY" -c 'import zmq, msgpack' 2> /dev/null || PY=python3

#  VICTIM: the measured client, run as "${VICTIM[@]}" --endpoint "$EP"
#  (directly, so that its pid is the one $! gives)
VICTIM=("$BS_BIN/bookstore-bench" --workload lookup-hot --clients 1 --items 666 --hot 1
        --seconds "$RUN_SECONDS" --warmup "$WARMUP" --json)
#  victim_result FILE: its JSON on one line, or nothing when it failed
victim_result() { jq -c 'select(.ok == true)' "$1" 2> /dev/null; }
evictions() {
    "$BS_BIN/bookstore" --endpoint "$EP" --json --attempts 1 --timeout-ms 2000 status 2> /dev/null \
        | jq '.evictions // 0' 2> /dev/null
}
#  sample_rss: keeps the broker's largest VmRSS (kB) seen in RSS_PEAK
#  With the shell's own read: a process started ten times a second beside
#  the measured client took the CPU from it (its p99 tripled)
sample_rss() {
    local key kb rest
    while read -r key kb rest; do
        [ "$key" = VmRSS: ] && [ "$kb" -gt "$RSS_PEAK" ] && RSS_PEAK=$kb
    done < "/proc/$BROKER_PID/status" 2> /dev/null
    return 0
}
#  flood_running: the broker has dropped replies the flooder did not read
flood_running() {
    local n
    sample_rss
    n=$(evictions)
    [ -n "$n" ] && [ "$n" -gt "$EVICTIONS_BEFORE" ]
}

if [[ " $PARTS " != *" flood "* ]]; then
    :
elif ! "$PY" -c 'import zmq, msgpack' 2> /dev/null; then
    say "python3-zmq or python3-msgpack missing: no flood rows"
else
    start_cluster
    BROKER_PID=$(cat "$BS_DATA/pids/broker.pid")
    say "flood: one client's cached lookups alone"
    "${VICTIM[@]}" --endpoint "$EP" > "$BS_TMP/victim-alone.json"
    NORMAL=$(victim_result "$BS_TMP/victim-alone.json")
    RSS_PEAK=0
    sample_rss
    RSS_BEFORE=$RSS_PEAK
    EVICTIONS_BEFORE=$(evictions)
    EVICTIONS_BEFORE=${EVICTIONS_BEFORE:-0}
    say "flood: $FLOOD_SECONDS s of searches that are never read, from another client"
    "$PY" "$ROOT/tests/rogue/rogue.py" flood "$EP" "$FLOOD_SECONDS" "$FLOOD_TOPIC" \
        > "$BS_TMP/flood-sent.json" 2> "$BS_TMP/flood.err" &
    FLOOD_PID=$!
    FLOOD_STARTED=$SECONDS
    #  The measured client starts once the flood is under way
    STARTED_ON="the first evictions"
    if ! until_true 10 flood_running; then
        STARTED_ON="10 s without evictions"
        say "flood: no evictions within 10 s; measuring anyway"
    fi
    STARTED_AFTER=$((SECONDS - FLOOD_STARTED))
    say "flood: the same lookups during the flood"
    "${VICTIM[@]}" --endpoint "$EP" > "$BS_TMP/victim-flood.json" &
    VICTIM_PID=$!
    while kill -0 "$VICTIM_PID" 2> /dev/null; do sample_rss; sleep 0.5; done
    wait "$VICTIM_PID"
    VICTIM_PID=
    COVERED=true
    kill -0 "$FLOOD_PID" 2> /dev/null || { COVERED=false; say "flood: it ended before the measured client did"; }
    DURING=$(victim_result "$BS_TMP/victim-flood.json")
    #  The flood ends by itself (its count is printed then); it is killed
    #  if it overruns
    while kill -0 "$FLOOD_PID" 2> /dev/null && [ $SECONDS -lt $((FLOOD_STARTED + FLOOD_SECONDS + 10)) ]; do
        sample_rss
        sleep 0.1
    done
    kill -KILL "$FLOOD_PID" 2> /dev/null
    wait "$FLOOD_PID" 2> /dev/null
    FLOOD_PID=
    EVICTIONS_AFTER=$(evictions)
    SENT=$(jq '.sent' "$BS_TMP/flood-sent.json" 2> /dev/null)
    stop_cluster
    [ -n "$NORMAL" ] && [ -n "$DURING" ] || FAILED=1
    jq -n -c --argjson normal "${NORMAL:-null}" --argjson during "${DURING:-null}" \
        --argjson sent "${SENT:-null}" \
        --argjson evictions "${EVICTIONS_AFTER:-null}" --argjson rss_before "$RSS_BEFORE" --argjson rss_peak "$RSS_PEAK" \
        --argjson seconds "$FLOOD_SECONDS" --arg topic "$FLOOD_TOPIC" --arg started_on "$STARTED_ON" \
        --argjson started_after "$STARTED_AFTER" --argjson covered "$COVERED" \
        '{normal: $normal, during: $during, sent: $sent, evictions: $evictions, rss_before_kb: $rss_before,
          rss_peak_kb: $rss_peak, seconds: $seconds, topic: $topic, started_on: $started_on,
          started_after_s: $started_after, covered: $covered}' | tee "$FLOOD" >&2
fi

#  --------------------------------------------------------------------------
#  The report

machine() {
    local cpu mem
    cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
    [ -n "$cpu" ] || cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "| CPUs (nproc) | $(nproc) |"
    echo "| CPU model | $cpu |"
    echo "| memory | $mem |"
    echo "| kernel | $(uname -sr) |"
    echo "| system | $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}") |"
    local virt hypervisor
    virt=$(systemd-detect-virt 2>/dev/null)
    hypervisor=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor: *//p' | head -1)
    echo "| virtualisation | ${virt:-none}${hypervisor:+ (hypervisor: $hypervisor)} |"
    echo "| load average at the start | $LOAD_AT_START (1, 5, 15 minutes) |"
    echo "| commit | $COMMIT |"
    echo "| date | $STARTED |"
    echo "| each run | ${RUN_SECONDS} s measured after ${WARMUP} s of warm-up |"
}

#  jq helpers shared by the tables: $pp is the ping-pong p50 at 1 client
JQ_LIB='
def r1: (. * 10 | round) / 10;
def us: if . >= 100 then (round | tostring) else (r1 | tostring) end;
def x($pp): if $pp > 0 then "\(. / $pp | r1)x" else "-" end;
def cell($pp): "\(us) (\(x($pp)))";
def rate: round | tostring | [scan("[0-9]{1,3}(?=(?:[0-9]{3})*$)")] | join(",");
def find($w; $c; $cat): [.[] | select(.failed != true and .workload == $w and .clients == $c and .catalog == $cat)][0];
#  The targets of the write path, on the bench books: {what, measured, met,
#  workload, clients, kind}; met is null when the run is missing
def write_targets($all; $pp):
  def rates($r; $unit): if $r == null then "-" else "\($r.ops_per_s | rate) \($unit)/s, p99 \($r.p99_us | us) us" end;
  ($all | find("buy"; 1; "64")) as $b1 | ($all | find("buy"; 100; "64")) as $b100
  | ($all | find("mixed"; 100; "64")) as $m100 | ($all | find("write-mix"; 100; "64")) as $w100
  | [{workload: "buy", clients: 1, kind: "latency", label: "buy, 1 client",
      what: "buy, 1 client: p50 <= 14x ping-pong",
      measured: (if $b1 == null then "-" else "\($b1.p50_us | us) us = \($b1.p50_us | x($pp))" end),
      met: (if $b1 == null or $pp == 0 then null else $b1.p50_us <= 14 * $pp end)},
     {workload: "buy", clients: 100, kind: "rate", label: "buy, 100 clients",
      what: "buy, 100 clients: >= 10,000 buys/s, p99 <= 15 ms", measured: rates($b100; "buys"),
      met: (if $b100 == null then null else $b100.ops_per_s >= 10000 and $b100.p99_us <= 15000 end)},
     {workload: "mixed", clients: 100, kind: "rate", label: "mixed, 100 clients",
      what: "mixed, 100 clients: >= 9,000 operations/s, p99 <= 20 ms", measured: rates($m100; "operations"),
      met: (if $m100 == null then null else $m100.ops_per_s >= 9000 and $m100.p99_us <= 20000 end)},
     {workload: "write-mix", clients: 100, kind: "rate", label: "write-mix, 100 clients",
      what: "write-mix, 100 clients: >= 12,000 operations/s",
      measured: (if $w100 == null then "-" else "\($w100.ops_per_s | rate) operations/s" end),
      met: (if $w100 == null then null else $w100.ops_per_s >= 12000 end)}];
#  What a profile (a line of PROFILES_JSON) says limits a run: the node with
#  the least wait, its largest phase, the batch size of its commits
def ms($ph; $secs): if $ph.n > 0 then "\($ph.pct / 100 * $secs / $ph.n * 1000 * 100 | round / 100) ms" else "-" end;
def busiest($p):
  ($p.nodes | min_by(.phases.wait.pct)) as $b
  | ($b.phases | to_entries | map(select(.key != "wait" and .key != "writes")) | max_by(.value.pct)) as $top
  | ($b.phases.commit.n // 0) as $commits | ($b.phases.writes.n // 0) as $writes
  | (if $writes > 0 and $commits > 0 then "\($commits | rate) durable commits\(if $b.node | startswith("order") then ", its commits as the other partition'"'"'s follower included," else "" end) for \($writes | rate) writes: \($writes / $commits | r1) writes a commit"
     elif $commits > 0 then "\($commits | rate) durable commits, all of entries from its primary"
     else "no durable commits" end) as $batch
  | {node: $b.node, top: $top.key, top_pct: $top.value.pct,
     text: ("the busiest node is \($b.node), idle \($b.phases.wait.pct | round)% (wait), \($top.key) \($top.value.pct | round)% of its time"
            + (if $top.key == "commit" then " (\($batch))"
               else " (commit \(($b.phases.commit.pct // 0) | round)%: \($batch))" end))};
def cpus($p): if $p.cpu == null then "CPUs: not measured"
  else "CPUs: user \($p.cpu.user)%, system \($p.cpu.system)%, softirq \($p.cpu.softirq)%, iowait \($p.cpu.iowait)%, idle \($p.cpu.idle)%" end;
#  per_entry($p): the mean time of a durable commit on each node, and of the
#  invalidation round trip of the catalog primary
def per_entry($p):
  "a durable commit took " + ([$p.nodes[] | select((.phases.commit.n // 0) > 0) | "\(ms(.phases.commit; .seconds)) on \(.node)"] | join(", "))
  + ([$p.nodes[] | select((.node | startswith("catalog")) and (.phases.invalidate.n // 0) > 0)
      | ", the invalidation round trip \(ms(.phases.invalidate; .seconds)) on \(.node)"] | join(""));
'

{
    echo "# Benchmark results"
    echo
    echo "Written by \`make bench\` (bench/run.sh).  Every latency is in microseconds,"
    echo "followed by its multiple of the ping-pong p50 measured in the same run: a"
    echo "bare ZeroMQ request/reply round trip between two processes on this machine,"
    echo "which is what absolute times should be read against."
    echo
    echo "## Machine"
    echo
    echo "| | |"
    echo "|---|---|"
    machine
    echo
    echo "## Results"
    echo
    echo "Closed loop: each client has one operation outstanding.  An operation of"
    echo "\`mixed\` is a search, a lookup and a buy of one book in a row.  \`catalog\`"
    echo "64 is the bench's own books (8 to a topic, huge stocks); the cache is the"
    echo "broker's cache of lookups and searches.  A search answers 3 or 4 books on"
    echo "the seed catalog and 8 on the bench's books."
    echo
    jq -s -r "$JQ_LIB"'
        ([.[] | select(.workload == "pingpong" and .clients == 1)][0].p50_us // 0) as $pp
        | "ping-pong p50: \($pp) us", "",
          "| workload | catalog | cache | clients | ops/s | p50 | p90 | p99 | p99.9 | max | errors |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
          (.[] | if .failed then "| \(.args) | \(.catalog) | \(.cache) | | failed (exit \(.rc)) | | | | | | |"
                 else "| \(.workload) | \(.catalog) | \(.cache) | \(.clients) | \(.ops_per_s | rate) | \(.p50_us | cell($pp)) | \(.p90_us | cell($pp)) | \(.p99_us | cell($pp)) | \(.p999_us | cell($pp)) | \(.max_us | cell($pp)) | \(.errors)\(if .out_of_stock > 0 then " (+\(.out_of_stock) out of stock)" else "" end) |"
                 end)' "$RESULTS"
    echo
    echo "## Targets"
    echo
    echo "For this 2-core machine class with the whole cluster on one box.  The"
    echo "3-process chain (client, broker, worker) is not measured here: its"
    echo "reference, 180 us against a 78 us round trip, makes the lookup-cold target"
    echo "about 3.5 times the ping-pong p50."
    echo
    jq -s -r "$JQ_LIB"'
        ([.[] | select(.workload == "pingpong" and .clients == 1)][0].p50_us // 0) as $pp
        | . as $all
        | def row($what; $measured; $ok): "| \($what) | \($measured) | \(if $ok == null then "not measured" elif $ok then "yes" else "**no**" end) |";
          def get($w; $c; $cat): $all | find($w; $c; $cat);
          def p50x($r): if $r == null then "not measured" else "\($r.p50_us | us) us = \($r.p50_us | x($pp))" end;
          def ratio($a; $b): if $a == null or $b == null then null else ($a.p50_us / $b.p50_us) end;
          "| target | measured | met |",
          "|---|---|---|",
          (get("lookup-hot"; 1; "64") as $r | row("lookup-hot, 1 client: p50 <= 1.3x ping-pong"; p50x($r);
              if $r == null or $pp == 0 then null else $r.p50_us <= 1.3 * $pp end)),
          (get("lookup-hot"; 100; "64") as $r | row("lookup-hot, 100 clients: >= 150,000 ops/s";
              if $r == null then "-" else "\($r.ops_per_s | rate) ops/s" end;
              if $r == null then null else $r.ops_per_s >= 150000 end)),
          (get("lookup-cold"; 1; "7 (seed)") as $r | row("lookup-cold (cache off), 1 client: p50 <= 1.5x the 3-process chain (about 3.5x ping-pong)";
              p50x($r); if $r == null or $pp == 0 then null else $r.p50_us <= 1.5 * 180 / 78 * $pp end)),
          (write_targets($all; $pp)[] | row(.what; .measured; .met)),
          ((["search", "lookup-cold"][] ) as $w | (1, 100) as $c
           | ([$all[] | select(.failed != true and .workload == $w and .clients == $c and .cache == "off" and .catalog != "7 (seed)")][0]) as $big
           | get($w; $c; "7 (seed)") as $small
           | row("\($w) (cache off), \($c) client(s): p50 at \($big.catalog // "the large catalog") books <= 2x at 7 books";
                 if $big == null or $small == null then "-" else "\($big.p50_us | us) us against \($small.p50_us | us) us: \(ratio($big; $small) | r1)x" end;
                 ratio($big; $small) as $q | if $q == null then null else $q <= 2 end))' "$RESULTS"
    #  Under the table, for each write-path target not met: what limits it,
    #  from the nodes' profiles of that run, and the next lever
    jq -s -r --slurpfile profiles "$PROFILES_JSON" "$JQ_LIB"'
        ([.[] | select(.workload == "pingpong" and .clients == 1)][0].p50_us // 0) as $pp
        | [write_targets(.; $pp)[] | select(.met == false)] as $unmet
        | if $unmet == [] then empty else
          "",
          "What limits each write-path target not met, from the profile of its run",
          "(\"Where the time of a write goes\" below), and the next lever:",
          "",
          ($unmet[] | . as $t
           | ([$profiles[] | select(.workload == $t.workload and .clients == $t.clients and (.nodes | length) > 0)][0]) as $p
           | if $p == null then "- \($t.label): no profile of this run." else
             busiest($p) as $b
             | "- \($t.label): \($b.text); \(cpus($p))."
               + (if $t.kind == "latency" then
                    "  On average \(per_entry($p)).  A buy waits for two durable commits in a row"
                    + " (the catalog primary'"'"'s, then the order primary'"'"'s, each overlapped with its"
                    + " followers'"'"'), the catalog'"'"'s invalidation round trip and about ten one-way"
                    + " hops.  Next lever: one durable commit per buy (the buy acknowledged once the"
                    + " catalog'"'"'s grant is durable, the order recorded after it, which needs a way to"
                    + " recover unrecorded grants from the catalog: a design decision); see"
                    + " docs/ARCHITECTURE.md, \"One buy, hop by hop\"."
                  else
                    (if $b.top == "commit" then
                       "  Next lever: a commit that keeps batching while an fsync is in flight (a writer"
                       + " thread), so that writes arriving during an fsync join the next batch at once."
                     else "" end)
                    + (if $p.cpu != null and $p.cpu.idle < 10 then
                         "  The CPUs are saturated (idle \($p.cpu.idle)%): next lever, fewer system calls"
                         + " per buy (fewer hops)."
                       else "" end)
                    + (if $b.top != "commit" and ($p.cpu == null or $p.cpu.idle >= 10) then
                         "  Neither a commit nor the CPUs dominate: no lever named for \($b.top)."
                       else "" end)
                  end) end)
          end' "$RESULTS"
    echo
    jq -s -r "$JQ_LIB"'
        [.[] | select(.workload == "load-catalog")][0] as $l
        | if $l == null then empty else
          "Loading the \($l.catalog)-book catalog (add_book, replicated, \($l.clients) requests outstanding): \($l.ops_per_s | rate) books/s, p50 \($l.p50_us | us) us, p99 \($l.p99_us | us) us." end' "$RESULTS"
    echo
    echo "## HTTP"
    echo
    echo "wrk (2 threads, $HTTP_CONNECTIONS connections, keep-alive) against the gateway's"
    echo "\`GET /lookup/666\` (answered from the broker's cache) and against nginx-light"
    echo "serving the same JSON from a file, one after the other in this run on the"
    echo "same machine, with the cluster running beside both."
    echo
    if [ -s "$HTTP" ]; then
        jq -s -r "$JQ_LIB"'
            ([.[] | select(.server == "nginx")][0]) as $n | ([.[] | select(.server == "gateway")][0]) as $g
            | "| server | connections | requests/s | p50 | p90 | p99 | errors |",
              "|---|---:|---:|---:|---:|---:|---:|",
              (.[] | "| \(.server) | \(.connections) | \(.rps | rate) | \(.p50_us | us) us | \(.p90_us | us) us | \(.p99_us | us) us | \(.errors) |"),
              "",
              (if $n != null and $g != null and $n.rps > 0 then
                 "The gateway served \($g.rps / $n.rps * 100 | round)% of nginx'"'"'s rate.",
                 "",
                 "| target | measured | met |",
                 "|---|---|---|",
                 "| gateway cached lookup >= 0.5x nginx static file | \($g.rps / $n.rps * 100 | round / 100)x (\($g.rps | rate) against \($n.rps | rate) requests/s) | \(if $g.rps >= 0.5 * $n.rps then "yes" else "**no**" end) |",
                 "| gateway p99 < 5 ms at \($g.connections) connections | \($g.p99_us | us) us | \(if $g.p99_us < 5000 then "yes" else "**no**" end) |"
               else empty end)' "$HTTP"
    else
        echo "Not measured (wrk or nginx missing)."
    fi
    echo
    echo "## A client that never reads"
    echo
    if [ -s "$FLOOD" ]; then
        jq -r "$JQ_LIB"'
            def mb: "\(. / 1024 | round) MB";
            def lat($r; f): if $r == null then "failed" else "\($r | f | us) us" end;
            .normal as $n | .during as $d
            | (if $n == null or $d == null or $n.p99_us <= 0 then null else $d.p99_us / $n.p99_us end) as $q
            | "One client (`tests/rogue/rogue.py flood`) sends cached searches of",
              "`\(.topic)` flat out for \(.seconds) s and never reads its replies, on a fresh",
              "cluster (cache on, seed catalog).  Another client (bookstore-bench, 1 client,",
              "lookups of item 666, answered from the cache) is measured alone, then",
              "during the flood, started on \(.started_on), \(.started_after_s) s after the flood began",
              "\(if .covered then "" else "(**the flood ended before this client did**) " end)and measured like the other runs.",
              "The broker'"'"'s VmRSS is sampled (every 0.5 s while the other client runs, 0.1 s otherwise) from the flood'"'"'s start to its end.",
              "",
              "| the other client | alone | during the flood |",
              "|---|---:|---:|",
              "| lookups/s | \($n.ops_per_s // 0 | rate) | \($d.ops_per_s // 0 | rate) |",
              "| p50 | \(lat($n; .p50_us)) | \(lat($d; .p50_us)) |",
              "| p99 | \(lat($n; .p99_us)) | \(lat($d; .p99_us)) |",
              "| max | \(lat($n; .max_us)) | \(lat($d; .max_us)) |",
              "| errors | \($n.errors // "-") | \($d.errors // "-") |",
              "",
              "| the flood | |",
              "|---|---:|",
              "| p99 during / alone | \(if $q == null then "-" else "\($q | r1)x" end) |",
              "| broker VmRSS before | \(.rss_before_kb | mb) |",
              "| broker VmRSS, peak during | \(.rss_peak_kb | mb) |",
              "| requests the flood sent | \(if .sent == null then "-" else (.sent | rate) end) |",
              "| replies the broker dropped (`evictions`) | \(if .evictions == null then "-" else (.evictions | rate) end) |",
              "",
              "| target | measured | met |",
              "|---|---|---|",
              "| another client'"'"'s p99 during a flood <= 2x normal | \(if $q == null then "-" else "\($q | r1)x (\($d.p99_us | us) us against \($n.p99_us | us) us)" end) | \(if $q == null then "not measured" elif $q <= 2 then "yes" else "**no**" end) |",
              "| broker resident < 200 MB during a flood | peak \(.rss_peak_kb | mb) | \(if .rss_peak_kb > 0 and .rss_peak_kb < 200 * 1024 then "yes" else "**no**" end) |"' "$FLOOD"
    else
        echo "Not measured in this run."
    fi
    echo
    echo "## Where the time of a write goes"
    echo
    echo "Every node ran with \`--profile-seconds $PROFILE_SECONDS\`: it logs the share of wall-clock"
    echo "time its event loop spent in each phase, with the number of times it"
    echo "entered it.  \`wait\` is idle in poll; \`commit\` is LMDB's durable commit"
    echo "(the fsync included; a follower's commits of received entries too);"
    echo "\`invalidate\` is the catalog primary's round trip to the broker's cache"
    echo "before it commits; \`writes\` counts the writes executed.  One buy is four"
    echo "durable commits: the catalog primary's and its follower's at once (the"
    echo "primary publishes before its own commit), then the order node's own"
    echo "partition and its follower's, in a row.  Below, the last period of each"
    echo "node inside the buy runs and the mixed and write-mix runs at 100 clients,"
    echo "with the machine's CPU time over the whole run."
    echo
    echo '```'
    cat "$PROFILES"
    echo '```'
    echo
    echo "<details><summary>Raw results (one JSON object per run)</summary>"
    echo
    echo '```'
    cat "$RESULTS"
    echo '```'
    echo
    echo "</details>"
    #  Notes measured by hand (a "## Note:" section to the end of the
    #  file, such as the simulator's speed) outlive the regeneration
    [ -f "$OUT" ] && sed -n '/^## Note:/,$p' "$OUT" | sed '1s/^/\n/'
} > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
say "results in $OUT"
[ "$FAILED" = 0 ]
