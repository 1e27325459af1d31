# shellcheck shell=bash
#  tools/chaos/lib.sh - shared by the fault scripts, the chaos run and the
#  integration tests (sourced, never run).
#
#  Everything here acts on a cluster started by bookstore-cluster, through
#  what the launcher writes (BS_DATA/pids/<id>.pid; a file BS_DATA/hold/<id>
#  keeps a node down) and what the broker reports (`bookstore --json
#  status`).  Signals go only to pids read from pid files, never to
#  processes found by name.  With a Binary Star pair of brokers the status
#  that counts is the active broker's (bs_status finds it); the brokers' ids
#  in its "brokers" list are their pid files' names.
#
#  BS_BIN       the programs (default: bin/ of this checkout)
#  BS_ENDPOINT  the broker's client endpoint, or the pair's, comma-separated
#               (default: BOOKSTORE_ENDPOINT, then tcp://127.0.0.1:5555)
#  BS_DATA      the cluster's data folder (default: BOOKSTORE_DATA, then data)

BS_ROOT=${BS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BS_BIN=${BS_BIN:-$BS_ROOT/bin}
BS_ENDPOINT=${BS_ENDPOINT:-${BOOKSTORE_ENDPOINT:-tcp://127.0.0.1:5555}}
BS_DATA=${BS_DATA:-${BOOKSTORE_DATA:-data}}

#  The CLI against the cluster (the integration tests define their own)
bs() { "$BS_BIN/bookstore" --endpoint "$BS_ENDPOINT" "$@"; }

# ---------------------------------------------------------------------------
#  Cluster helpers (the integration tests use them too)

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

#  The pid of a node (or of a broker), from the launcher's pid file
bs_pid() { cat "$BS_DATA/pids/$1.pid" 2>/dev/null; }

#  bs_status [CLI OPTIONS...]: the active broker's status, as JSON.  With a
#  pair, the CLI may be answered by the passive broker, whose status lists
#  the brokers but no nodes; then the active one it names is asked.  False
#  when no broker answers.
bs_status() {
    local out active
    out=$(bs --json "$@" status 2>/dev/null)
    [ -n "$out" ] || return 1
    if [[ $out != *'"nodes":'* ]]; then
        active=$(jq -r '[.brokers[]? | select(.active) | .endpoint][0] // empty' <<< "$out" 2>/dev/null)
        if [ -n "$active" ]; then
            #  Briefly: the broker named active may be the one just killed
            out=$(bs --endpoint "$active" --json "$@" --timeout-ms 500 --attempts 1 status 2>/dev/null)
            [ -n "$out" ] || return 1
        fi
    fi
    echo "$out"
}

#  bs_active_broker: the id of the broker the pair reports active (empty
#  when none is, or the broker stands alone)
bs_active_broker() {
    bs_status --timeout-ms 1000 --attempts 2 | jq -r '[.brokers[]? | select(.active) | .id][0] // ""' 2>/dev/null
}

#  bs_wait_pair SECONDS: until the pair has one active broker and the other
#  passive, each seen by the active one
bs_wait_pair() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt "$deadline" ]; do
        bs_status --timeout-ms 500 --attempts 1 | jq -e '[.brokers[]?] as $b
            | ($b | length) == 2 and ([$b[] | select(.active)] | length) == 1
              and ([$b[] | select(.state == "passive")] | length) == 1' > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

#  bs_wait_ready N SECONDS: until N nodes are alive and in sync (caught up)
bs_wait_ready() {
    local want=$1 deadline=$((SECONDS + $2)) ready
    while [ $SECONDS -lt "$deadline" ]; do
        ready=$(bs_status --timeout-ms 500 --attempts 1 \
                | jq '[.nodes[]? | select(.alive and .insync)] | length' 2>/dev/null)
        [ "${ready:-0}" -ge "$want" ] && return 0
        sleep 0.1
    done
    return 1
}

#  bs_digests SERVICE: the distinct digests of the service's alive nodes
bs_digests() {
    bs_status | jq -r --arg s "$1" '[.nodes[] | select(.alive and .service == $s) | .digest] | unique | join(" ")'
}

#  bs_wait_converged SECONDS: until every alive replica of each service is
#  in sync and reports the same digest as its peers
bs_wait_converged() {
    local deadline=$((SECONDS + $1)) out
    while [ $SECONDS -lt "$deadline" ]; do
        out=$(bs_status --timeout-ms 1000 --attempts 1)
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

#  The id of the catalog primary, as the broker sees it
bs_catalog_primary() {
    bs_status | jq -r '[.nodes[]? | select(.alive and .service == "catalog" and .role == "primary") | .id][0] // ""'
}

# ---------------------------------------------------------------------------
#  The checker: what the store holds against what the load acknowledged

#  bs_seed_stock FILE: the initial stock of a catalog file (etc/catalog.cfg)
#  as one JSON object, item -> stock
bs_seed_stock() {
    awk -F= '/^[[:space:]]*item[[:space:]]*=/  { gsub(/[^0-9]/, "", $2); item = $2 }
             /^[[:space:]]*stock[[:space:]]*=/ { gsub(/[^0-9]/, "", $2); print item, $2 }' "$1" \
        | jq -R -n -c '[inputs | split(" ") | {key: .[0], value: (.[1] | tonumber)}] | from_entries'
}

#  bs_audit LOAD-JSON INITIAL-JSON [RECORD]: reads every alive replica and
#  checks it against the load's summary (bookstore-load's JSON), the stock
#  before the load (item -> stock) and, when given, the load's record file.
#  Prints one JSON object:
#    lost        acknowledged buys missing from an order replica (with a
#                record: by request id; else by count per item)
#    duplicated  request ids with more than one order on a replica
#    unacked     orders no acknowledged buy accounts for (a buy that took
#                effect although its client was told otherwise)
#    oversold    items whose stock differs, on some catalog replica, from
#                initial + acknowledged restocks - acknowledged buys (writes
#                given up on widen the range), or is negative
#    unreadable  replicas that did not answer
#  and one "# ..." line per finding on stderr.  Returns 1 when any is not 0.
bs_audit() {
    local dir node status rc=0
    dir=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-audit.XXXXXX")
    echo "$1" > "$dir/load.json"
    echo "$2" > "$dir/initial.json"
    if [ -n "${3:-}" ]; then
        awk '$1 == "buy"     { printf "{\"kind\":\"buy\",\"rid\":\"%s\",\"order_id\":\"%s\",\"item\":%s}\n", $2, $3, $4 }
             $1 == "gave_up" { printf "{\"kind\":\"gave_up\",\"op\":\"%s\",\"rid\":\"%s\",\"item\":%s}\n", $2, $3, $4 }' "$3" \
            | jq -s -c . > "$dir/record.json"
    else
        echo null > "$dir/record.json"
    fi
    status=$(bs_status --timeout-ms 2000 --attempts 3)
    echo '[]' > "$dir/catalogs.json"
    echo '[]' > "$dir/orders.json"
    local unreadable=0
    for node in $(echo "$status" | jq -r '.nodes[]? | select(.alive and .service == "catalog") | .id'); do
        if bs --json --timeout-ms 5000 --attempts 3 --node "$node" list > "$dir/one.json" 2>/dev/null \
           && jq -e .ok "$dir/one.json" > /dev/null; then
            jq -c --arg n "$node" '{id: $n, items: .items}' "$dir/one.json" >> "$dir/catalogs.list"
        else
            echo "# $node: cannot list its books" >&2
            unreadable=$((unreadable + 1))
        fi
    done
    for node in $(echo "$status" | jq -r '.nodes[]? | select(.alive and .service == "order") | .id'); do
        if ! bs_orders_of "$node" "$dir" > "$dir/one.json"; then
            echo "# $node: cannot list its orders" >&2
            unreadable=$((unreadable + 1))
        else
            jq -c --arg n "$node" '{id: $n, orders: .}' "$dir/one.json" >> "$dir/orders.list"
        fi
    done
    [ -f "$dir/catalogs.list" ] && jq -s -c . "$dir/catalogs.list" > "$dir/catalogs.json"
    [ -f "$dir/orders.list" ] && jq -s -c . "$dir/orders.list" > "$dir/orders.json"
    jq -n -c --argjson unreadable "$unreadable" \
        --slurpfile load "$dir/load.json" --slurpfile init "$dir/initial.json" \
        --slurpfile record "$dir/record.json" \
        --slurpfile cats "$dir/catalogs.json" --slurpfile ords "$dir/orders.json" '
        #  An object by request id (jq 1.6 builds INDEX in quadratic time)
        def by_rid: map({key: .rid, value: .}) | from_entries;
        ($load[0].items // {}) as $items
        | $init[0] as $init
        | $record[0] as $rec
        #  Stock: every item known before the load or touched by it
        | [ ($init + $items) | keys[] as $k
            | ($items[$k] // {}) as $v
            | (if $v.added then $v.initial else $init[$k] end) as $base
            | select($base != null)
            | ($base + ($v.restocked // 0) - ($v.bought // 0)) as $want
            | $cats[0][] as $c
            | ([$c.items[] | select((.item | tostring) == $k) | .stock][0]) as $stock
            | select($stock == null or $stock < 0
                     or $stock < $want - ($v.uncertain_bought // 0)
                     or $stock > $want + ($v.uncertain_restocked // 0))
            | {item: $k, node: $c.id, stock: $stock, want: $want,
               uncertain: [($v.uncertain_bought // 0), ($v.uncertain_restocked // 0)]} ] as $stock_bad
        #  Orders: one per request id on every replica
        | [ $ords[0][] as $o | $o.orders | group_by(.rid)[] | select(length > 1)
            | {rid: .[0].rid, node: $o.id, copies: length} ] as $dups
        | (if $rec != null then
              ([$rec[] | select(.kind == "buy")] | by_rid) as $acked
              | ([$rec[] | select(.kind == "gave_up" and .op == "buy")] | by_rid) as $unsure
              | [ $ords[0][] as $o | ($o.orders | by_rid) as $have
                  | $acked[] | select(($have[.rid] | not)
                                      or $have[.rid].order_id != .order_id or $have[.rid].item != .item)
                  | {rid, order_id, item, node: $o.id} ] as $lost
              | [ $ords[0][] as $o | $o.orders[]
                  | select(($acked[.rid] | not) and ($unsure[.rid] | not))
                  | {rid, order_id, item, node: $o.id} ] as $unacked
              | {lost: $lost, unacked: $unacked}
           else
              [ $ords[0][] as $o
                | ($o.orders | group_by(.item) | map({key: (.[0].item | tostring), value: length}) | from_entries) as $n
                | ($items | to_entries[]
                   | {item: .key, node: $o.id, orders: ($n[.key] // 0), bought: .value.bought,
                      unsure: (.value.uncertain_bought // 0)}) ] as $per_item
              | {lost: [$per_item[] | select(.orders < .bought)],
                 unacked: [$per_item[] | select(.orders > .bought + .unsure)]}
           end) as $orders
        | {lost: ($orders.lost | map(.rid // .item) | unique | length),
           duplicated: ($dups | map(.rid) | unique | length),
           unacked: ($orders.unacked | map(.rid // .item) | unique | length),
           oversold: ($stock_bad | map(.item) | unique | length),
           unreadable: $unreadable,
           findings: ([$stock_bad[] | "\(.node): item \(.item) has stock \(.stock), want \(.want) (unknown outcomes: \(.uncertain[0]) buys, \(.uncertain[1]) copies restocked)"]
                      + [$dups[] | "\(.node): request \(.rid) has \(.copies) orders"]
                      + [$orders.lost[] | "\(.node): acknowledged buy \(.rid // "") \(.order_id // "") of item \(.item) is missing\(if .orders then " (\(.orders) orders, \(.bought) acknowledged)" else "" end)"]
                      + [$orders.unacked[] | "\(.node): order \(.order_id // "") \(.rid // "") of item \(.item) was never acknowledged\(if .orders then " (\(.orders) orders, \(.bought) acknowledged)" else "" end)"])}' \
        > "$dir/audit.json" || rc=1
    if [ $rc = 0 ]; then
        jq -r '.findings[:50][] | "# " + .' "$dir/audit.json" >&2
        jq -c 'del(.findings)' "$dir/audit.json"
        jq -e '.lost + .duplicated + .unacked + .oversold + .unreadable == 0' "$dir/audit.json" > /dev/null || rc=1
    else
        echo "# the audit could not run" >&2
    fi
    rm -rf "$dir"
    return $rc
}

#  bs_orders_of NODE DIR: every order of an order replica, as one JSON
#  array (the CLI follows the listing's pages).  False when it fails.
bs_orders_of() {
    local node=$1 dir=$2
    bs --json --timeout-ms 5000 --attempts 3 --node "$node" orders > "$dir/all.json" 2>/dev/null || return 1
    jq -e .ok "$dir/all.json" > /dev/null || return 1
    jq -c .orders "$dir/all.json"
}

#  bs_check_accounts LOAD-JSON: on every alive replica, for every item the
#  load touched, initial stock (etc/catalog.cfg) + acked restocks - acked
#  buys = stock, and the orders match the acked buys
bs_check_accounts() {
    bs_audit "$1" "$(bs_seed_stock "$BS_ROOT/etc/catalog.cfg")" > /dev/null
}

# ---------------------------------------------------------------------------
#  The fault scripts' common part

CHAOS_SEED=
CHAOS_WAIT=10
#  A node counts as serving only once its process has run this long (so that
#  the broker has heard from this incarnation, not the one before)
CHAOS_MIN_UP_MS=${CHAOS_MIN_UP_MS:-1000}
#  Nodes stopped by this invocation: never counted as serving
CHAOS_STOPPED=" "
CHAOS_STATUS=

#  A timestamp with milliseconds
chaos_now() { date '+%F %T.%3N'; }

#  chaos_say WORDS: one line describing an action, on stdout
chaos_say() { echo "$(chaos_now) $CHAOS_NAME $*"; }

#  chaos_note WORDS: why nothing was done, or what went wrong, on stderr
chaos_note() { echo "$(chaos_now) $CHAOS_NAME: $*" >&2; }

#  chaos_usage_error WORDS: exits 2
chaos_usage_error() {
    echo "$CHAOS_NAME: $* (try --help)" >&2
    exit 2
}

#  chaos_parse "$@": the options every fault script takes.  The script sets
#  CHAOS_NAME and CHAOS_USAGE (its own lines of --help) and may define
#  chaos_option NAME VALUE, which returns 0 when it took the option.
chaos_parse() {
    while [ $# -gt 0 ]; do
        case $1 in
            --help|-h)
                cat <<EOF
usage: $CHAOS_NAME [options]
$CHAOS_USAGE
common options:
  --data DIR       the cluster's data folder, with pids/ and hold/ (default: \$BOOKSTORE_DATA, then data)
  --endpoint EP    the broker's client endpoint, or a pair's, comma-separated
                   (default: \$BOOKSTORE_ENDPOINT, then tcp://127.0.0.1:5555)
  --seed N         seed of the random choices (default: from the clock; printed with every action)
  --wait SECONDS   how long to wait for a node that may be stopped (default: 10)
Never leaves a service without a serving replica (alive, in sync, up for
${CHAOS_MIN_UP_MS} ms, not frozen, not held).  Prints one line per action, with a
timestamp, on stdout.  Exit codes: 0 done, 1 failed (cluster unreachable, a
node not restarted), 2 usage error, 3 nothing done (no node may be stopped).
EOF
                exit 0 ;;
            --data|--endpoint|--seed|--wait)
                [ $# -ge 2 ] || chaos_usage_error "$1 needs a value"
                case $1 in
                    --data) BS_DATA=$2 ;;
                    --endpoint) BS_ENDPOINT=$2 ;;
                    --seed) CHAOS_SEED=$2 ;;
                    --wait) CHAOS_WAIT=$2 ;;
                esac
                shift 2 ;;
            --*)
                [ $# -ge 2 ] || chaos_usage_error "unknown option $1, or it needs a value"
                declare -F chaos_option > /dev/null && chaos_option "$1" "$2" \
                    || chaos_usage_error "unknown option $1"
                shift 2 ;;
            *)
                chaos_usage_error "unexpected argument '$1'" ;;
        esac
    done
    [ -d "$BS_DATA/pids" ] || chaos_usage_error "no pids/ folder in '$BS_DATA' (give --data)"
    [[ $CHAOS_WAIT =~ ^[0-9]+$ ]] || chaos_usage_error "--wait must be whole seconds"
    if [ -z "$CHAOS_SEED" ]; then
        CHAOS_SEED=$(( ($(date +%s%N) / 1000 + $$) % 1000000000 ))
    fi
    [[ $CHAOS_SEED =~ ^[0-9]+$ ]] || chaos_usage_error "--seed must be a whole number"
    RANDOM=$CHAOS_SEED
}

#  chaos_lock: one fault script decides and signals at a time, so that two
#  running together cannot both take the last replica of a service
chaos_lock() {
    exec 9> "$BS_DATA/chaos.lock"
    flock 9
}
chaos_unlock() { flock -u 9; exec 9>&-; }

#  The (active) broker's view, as of the last chaos_refresh: per node id its
#  service, role, epoch and whether it is alive and in sync; per broker of a
#  pair (CHAOS_BROKERS) its configured role, state (active, passive, ...)
#  and client endpoint
declare -A CHAOS_SERVICE=() CHAOS_ROLE=() CHAOS_EPOCH=() CHAOS_INSYNC=()
declare -A CHAOS_BROKER_ROLE=() CHAOS_BROKER_STATE=() CHAOS_BROKER_ENDPOINT=()
CHAOS_IDS=
CHAOS_BROKERS=
CHAOS_HZ=$(getconf CLK_TCK)

#  The client endpoint of the broker last seen active, kept in a file the
#  fault scripts share, so that each asks it first and a pair whose first
#  broker is passive (or down) costs one call rather than two (or a timeout)
CHAOS_ACTIVE_WRITTEN=
chaos_active_file() { echo "$BS_DATA/chaos-active"; }

#  chaos_status: the active broker's status.  Each broker is asked alone
#  and briefly (a CLI given the list waits out a dead first broker): the one
#  last seen active first, then the others in the list's order, and the one
#  a passive broker names as active; the first status with nodes is it.
#  When no broker answers so, bs_status with the usual patience.
chaos_status() {
    local first out ep passive='' named eps=() more=() tried=' ' i
    first=$(cat "$(chaos_active_file)" 2>/dev/null)
    [ -n "$first" ] && [[ ",$BS_ENDPOINT," == *",$first,"* ]] && eps+=("$first")
    IFS=, read -r -a more <<< "$BS_ENDPOINT"
    eps+=("${more[@]}")
    for ((i = 0; i < ${#eps[@]}; i++)); do
        ep=${eps[$i]}
        [[ $tried == *" $ep "* ]] && continue
        tried="$tried$ep "
        out=$(bs --endpoint "$ep" --json --timeout-ms 300 --attempts 1 status 2>/dev/null)
        if [[ $out == *'"nodes":'* ]]; then
            echo "$out"
            return 0
        fi
        if [[ $out == *'"brokers":'* ]]; then
            passive=$out
            named=$(jq -r '[.brokers[]? | select(.active) | .endpoint][0] // empty' <<< "$out" 2>/dev/null)
            #  Asked next
            [ -n "$named" ] && [[ $tried != *" $named "* ]] && eps=("${eps[@]:0:$((i + 1))}" "$named" "${eps[@]:$((i + 1))}")
        fi
    done
    if [ ${#eps[@]} -gt 1 ] && [ -n "$passive" ]; then
        #  A pair in the middle of a failover: what the passive broker says
        echo "$passive"
        return 0
    fi
    bs_status --timeout-ms 1000 --attempts 3
}

#  chaos_refresh: reads the active broker's view (CHAOS_STATUS and the
#  arrays above); false when no broker answers or it knows no node
chaos_refresh() {
    local kind id service alive insync role epoch state endpoint active_ep='' file
    CHAOS_STATUS=$(chaos_status)
    [ -n "$CHAOS_STATUS" ] || return 1
    CHAOS_BROKER_ROLE=() CHAOS_BROKER_STATE=() CHAOS_BROKER_ENDPOINT=()
    CHAOS_BROKERS=
    CHAOS_SERVICE=() CHAOS_ROLE=() CHAOS_EPOCH=() CHAOS_INSYNC=()
    CHAOS_IDS=
    while read -r kind id service alive insync role epoch; do
        if [ "$kind" = B ]; then
            #  B id role state endpoint
            role=$service state=$alive endpoint=$insync
            CHAOS_BROKER_ROLE[$id]=$role
            CHAOS_BROKER_STATE[$id]=$state
            CHAOS_BROKER_ENDPOINT[$id]=$endpoint
            CHAOS_BROKERS="$CHAOS_BROKERS $id"
            [ "$state" = active ] && active_ep=$endpoint
        else
            CHAOS_SERVICE[$id]=$service
            CHAOS_ROLE[$id]=$role
            CHAOS_EPOCH[$id]=$epoch
            CHAOS_INSYNC[$id]=0
            [ "$alive" = true ] && [ "$insync" = true ] && CHAOS_INSYNC[$id]=1
            CHAOS_IDS="$CHAOS_IDS $id"
        fi
    done < <(echo "$CHAOS_STATUS" | jq -r 'select(.ok)
                 | (.brokers[]? | "B \(.id) \(.role // "-") \(if .active then "active" else (.state // "unknown") end) \(.endpoint // "-")"),
                   (.nodes // [] | sort_by(.id)[]
                    | "N \(.id) \(.service) \(.alive) \(.insync) \(.role // "-") \(.epoch // 0)")' 2>/dev/null)
    #  Only a status with nodes comes from the active broker
    if [ -n "$active_ep" ] && [ -n "$CHAOS_IDS" ] && [ "$active_ep" != "$CHAOS_ACTIVE_WRITTEN" ]; then
        file=$(chaos_active_file)
        echo "$active_ep" > "$file.$$" && mv -f "$file.$$" "$file"
        CHAOS_ACTIVE_WRITTEN=$active_ep
    fi
    [ -n "$CHAOS_IDS" ]
}

#  chaos_answers: chaos_refresh, given a few seconds: a pair in the middle
#  of a failover has, for a moment, no broker that knows the nodes
chaos_answers() {
    local deadline=$((SECONDS + 3))
    until chaos_refresh; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

#  chaos_active_broker: the broker of the pair that reports itself active
chaos_active_broker() {
    local id
    for id in $CHAOS_BROKERS; do
        [ "${CHAOS_BROKER_STATE[$id]}" = active ] && echo "$id" && return 0
    done
    return 1
}

#  chaos_broker_can_stop BROKER: it runs, and the other broker of its pair
#  is ready to take over: it runs, has for CHAOS_MIN_UP_MS, was not stopped
#  by this invocation, and the active broker hears it as passive
chaos_broker_can_stop() {
    local other
    chaos_running "$1" || return 1
    for other in $CHAOS_BROKERS; do
        [ "$other" = "$1" ] && continue
        [[ $CHAOS_STOPPED == *" $other "* ]] && continue
        [ "${CHAOS_BROKER_STATE[$other]}" = passive ] || continue
        chaos_running "$other" && [ "$CHAOS_PUP_MS" -ge "$CHAOS_MIN_UP_MS" ] && return 0
    done
    return 1
}

#  chaos_nodes [SERVICE]: the ids of the replicas the broker knows
chaos_nodes() {
    local id
    for id in $CHAOS_IDS; do
        [ -z "${1:-}" ] || [ "${CHAOS_SERVICE[$id]}" = "$1" ] && echo "$id"
    done
}

#  chaos_service NODE: catalog or order
chaos_service() { echo "${CHAOS_SERVICE[$1]:-}"; }

#  chaos_primary: the catalog primary the broker reports alive, if any
chaos_primary() {
    local id
    for id in $(chaos_nodes catalog); do
        [ "${CHAOS_ROLE[$id]}" = primary ] && [ "${CHAOS_INSYNC[$id]}" = 1 ] && echo "$id" && return 0
    done
    return 1
}

#  chaos_proc PID: sets CHAOS_PSTATE (R, S, D, T, Z, ...) and CHAOS_PUP_MS
#  (how long the process has run); false when there is no such process
chaos_proc() {
    local stat uptime fields
    read -r stat < "/proc/$1/stat" 2>/dev/null || return 1
    read -r uptime _ < /proc/uptime
    read -r -a fields <<< "${stat##*) }"
    CHAOS_PSTATE=${fields[0]}
    #  uptime has two decimals; field 20 here (22 of the file) is the start
    #  time in clock ticks since boot
    CHAOS_PUP_MS=$(( 10#${uptime/./} * 10 - fields[19] * 1000 / CHAOS_HZ ))
}

#  chaos_running NODE: its process runs (not frozen, not dead) and it is not
#  held down
chaos_running() {
    local pid
    pid=$(bs_pid "$1")
    [ -n "$pid" ] || return 1
    [ -e "$BS_DATA/hold/$1" ] && return 1
    chaos_proc "$pid" || return 1
    case $CHAOS_PSTATE in R|S|D) return 0 ;; *) return 1 ;; esac
}

#  chaos_serving NODE: running for CHAOS_MIN_UP_MS at least, alive and in
#  sync for the broker, and not stopped by this invocation
chaos_serving() {
    [[ $CHAOS_STOPPED == *" $1 "* ]] && return 1
    [ "${CHAOS_INSYNC[$1]:-0}" = 1 ] || return 1
    chaos_running "$1" || return 1
    [ "$CHAOS_PUP_MS" -ge "$CHAOS_MIN_UP_MS" ]
}

#  chaos_can_stop NODE: another replica of its service is serving
chaos_can_stop() {
    local service other
    service=$(chaos_service "$1")
    [ -n "$service" ] || return 1
    for other in $(chaos_nodes "$service"); do
        [ "$other" != "$1" ] && chaos_serving "$other" && return 0
    done
    return 1
}

#  chaos_victims [SERVICE]: nodes that run and may be stopped
chaos_victims() {
    local node
    for node in $(chaos_nodes "${1:-}"); do
        [[ $CHAOS_STOPPED == *" $node "* ]] && continue
        chaos_running "$node" && chaos_can_stop "$node" && echo "$node"
    done
}

#  chaos_pick WORDS...: sets CHAOS_CHOSEN to one of them, chosen with the
#  seeded RANDOM (not in a subshell, so that the sequence goes on)
chaos_pick() {
    [ $# -gt 0 ] || return 1
    local all=("$@")
    CHAOS_CHOSEN=${all[$((RANDOM % $#))]}
}

#  chaos_choose [SERVICE]: under the lock, waits up to CHAOS_WAIT seconds for
#  a node that may be stopped and sets CHAOS_CHOSEN to one chosen at random;
#  the lock stays held on success (the caller signals, then unlocks)
chaos_choose() {
    local deadline=$((SECONDS + CHAOS_WAIT)) victims
    while true; do
        chaos_lock
        if chaos_refresh; then
            victims=$(chaos_victims "${1:-}")
            # shellcheck disable=SC2086
            [ -n "$victims" ] && chaos_pick $victims && return 0
        fi
        chaos_unlock
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

#  chaos_signal SIGNAL NODE [WORDS...]: sends the signal to the node's pid
#  (from its pid file) and prints the action; the pid in CHAOS_PID
chaos_signal() {
    local sig=$1 node=$2
    shift 2
    CHAOS_PID=$(bs_pid "$node")
    if [ -z "$CHAOS_PID" ] || ! kill -s "$sig" "$CHAOS_PID" 2>/dev/null; then
        chaos_note "cannot send SIG$sig to $node (pid '${CHAOS_PID}')"
        return 1
    fi
    [ "$sig" = CONT ] || CHAOS_STOPPED="$CHAOS_STOPPED$node "
    chaos_say "SIG$sig $node pid=$CHAOS_PID $* seed=$CHAOS_SEED"
}

#  chaos_fraction TEXT: true when TEXT is a decimal number of seconds
chaos_fraction() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }

#  chaos_ms_text MS: milliseconds as seconds for sleep, e.g. 1.250
chaos_ms_text() { printf '%d.%03d\n' $(($1 / 1000)) $(($1 % 1000)); }
