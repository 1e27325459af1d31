# shellcheck shell=bash
#  tools/chaos/lib.sh - shared by the fault scripts, the chaos run and the
#  integration tests (sourced, never run).
#
#  Everything here acts on a cluster started by bookstore-cluster, through
#  what the launcher writes (BS_DATA/pids/<id>.pid; a file BS_DATA/hold/<id>
#  keeps a node down) and what the broker reports (`bookstore --json
#  status`).  Signals go only to pids read from pid files, never to
#  processes found by name.  With several brokers the status that counts is
#  the active broker's (bs_status finds it); the brokers' ids in "brokers"
#  lists are their pid files' names.
#
#  BS_BIN       the programs (default: bin/ of this checkout)
#  BS_ENDPOINT  the broker's client endpoint, or the brokers', comma-separated
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

#  bs_holds FILTER [FILE]: the JSON on stdin (or in FILE) holds for the jq
#  filter.  Empty input fails: jq -e alone exits 0 when it reads nothing,
#  as when the program that should have answered printed nothing.
bs_holds() {
    if [ $# -ge 2 ]; then
        [ -s "$2" ] && jq -e "$1" "$2" > /dev/null 2>&1
    else
        local in
        in=$(cat)
        [ -n "$in" ] && jq -e "$1" <<< "$in" > /dev/null 2>&1
    fi
}

#  The pid of a node (or of a broker), from the launcher's pid file
bs_pid() { cat "$BS_DATA/pids/$1.pid" 2>/dev/null; }

#  bs_status [CLI OPTIONS...]: the active broker's status, as JSON.  With
#  several brokers, the CLI may be answered by one that does not serve,
#  whose status lists the brokers but no nodes; then the active one it
#  names is asked.  False when no broker answers.
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

#  bs_active_broker: the id of the broker reported active (empty when none
#  is)
bs_active_broker() {
    bs_status --timeout-ms 1000 --attempts 2 | jq -r '[.brokers[]? | select(.active) | .id][0] // ""' 2>/dev/null
}

#  bs_brokers_agree: every broker of the endpoint list (BS_ENDPOINTS, else
#  BS_ENDPOINT; the i-th is "broker-i", as the launcher names them), asked
#  itself, answers, and all name the same one broker active (the holder of
#  the active lease: itself, or the one etcd names).  One broker: it says
#  it is active.
bs_brokers_agree() {
    local eps ep i=0 out named=
    IFS=, read -ra eps <<< "${BS_ENDPOINTS:-$BS_ENDPOINT}"
    if [ ${#eps[@]} -lt 2 ]; then
        bs_status --timeout-ms 500 --attempts 1 | bs_holds '.brokers[0].active'
        return
    fi
    for ep in "${eps[@]}"; do
        i=$((i + 1))
        out=$("$BS_BIN/bookstore" --endpoint "$ep" ${BS_KEYS:+--keys "$BS_KEYS"} --json --attempts 1 \
              --timeout-ms 500 --node "broker-$i" status 2> /dev/null) || return 1
        named+=$(jq -r '[.brokers[]? | select(.active) | .id] | join(",")' <<< "$out")$'\n'
    done
    [ "$(sort -u <<< "$named" | grep -c .)" = 1 ] && ! grep -q '^$\|,' <<< "${named%$'\n'}"
}

#  bs_wait_brokers SECONDS: until the brokers agree (bs_brokers_agree)
bs_wait_brokers() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt "$deadline" ]; do
        bs_brokers_agree && return 0
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

#  bs_seed_books FILE: the books of a catalog file (etc/catalog.cfg) as one
#  JSON object, item -> {stock, cost}
bs_seed_books() {
    awk -F= '/^[[:space:]]*book[[:space:]]*$/ { if (item != "") print item, stock, cost; item = ""; stock = ""; cost = "" }
             /^[[:space:]]*item[[:space:]]*=/  { gsub(/[^0-9]/, "", $2); item = $2 }
             /^[[:space:]]*stock[[:space:]]*=/ { gsub(/[^0-9]/, "", $2); stock = $2 }
             /^[[:space:]]*cost[[:space:]]*=/  { gsub(/[^0-9]/, "", $2); cost = $2 }
             END { if (item != "") print item, stock, cost }' "$1" \
        | jq -R -n -c '[inputs | split(" ") | {key: .[0], value: {stock: (.[1] | tonumber), cost: (.[2] | tonumber)}}]
                       | from_entries'
}

#  bs_books_now: the books the store holds now (through the broker), in the
#  same form; false when it does not answer
bs_books_now() {
    local out
    out=$(bs --json --timeout-ms 5000 --attempts 3 list 2> /dev/null)
    bs_holds .ok <<< "$out" || return 1
    jq -c '[.items[] | {key: (.item | tostring), value: {stock, cost}}] | from_entries' <<< "$out"
}

#  bs_audit LOAD-JSON INITIAL-JSON RECORD: reads every alive replica and
#  checks it, request by request, against the load's record (the file of
#  bookstore-load --record; its format is in tools/load.c) and the books
#  before the load (INITIAL-JSON: item -> {stock, cost}, as bs_seed_books
#  or bs_books_now print; a bare number is a stock with any price).  The
#  load's summary (LOAD-JSON) is checked against the record: a record that
#  lacks lines the summary counts cannot be trusted.
#
#  The store, seen through the broker's status (one call, whose nodes are
#  the replicas read), must hold on every replica:
#    - one order per acknowledged buy, with its order id and item; no other
#      order but for buys given up on (which may or may not have happened);
#    - per book, initial (or add_book's) stock + acknowledged restocks -
#      acknowledged buys, widened by the copies of writes given up on;
#    - per book, a price some write may have left last: with L the last
#      acknowledged price change (set_price or add_book) in the order the
#      answers came, any acknowledged or given-up price change answered (or
#      given up on) after L was sent, L included.  Writes of one book from
#      different clients overlap: one answered after L was sent may have
#      been applied after L, one answered before L was sent cannot.  With
#      no acknowledged change, the initial price or any given-up change.
#    - every book the load acknowledged adding, and no book nobody did.
#  Prints one JSON object:
#    lost        acknowledged writes missing on a replica (buys by request
#                id; added books)
#    duplicated  request ids with more than one order on a replica
#    unacked     orders, and books, nothing acknowledged or given up on
#                accounts for (a write took effect although its client was
#                told it failed)
#    oversold    books whose stock is out of the range above, or negative
#    mispriced   books whose price no write can explain
#    unreadable  replicas that should have been read and were not: the
#                status went unanswered, an alive replica did not answer
#                its listing, or a service had no alive replica at all
#    incomplete  1 when the record is malformed or disagrees with the
#                load's summary
#    read        replicas read, per service ({"catalog":N,"order":M})
#    down        replicas the status lists as not alive
#  and one "# ..." line per finding on stderr.  Returns 0 when all of
#  lost..incomplete are 0, else 1; 2 (printing nothing) without a record.
bs_audit() {
    local dir node status rc=0 unreadable=0 service answered=1
    if [ -z "${3:-}" ] || [ ! -r "$3" ]; then
        echo "# bs_audit: no record '${3:-}' (bookstore-load --record FILE): nothing to audit by request id" >&2
        return 2
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/bookstore-audit.XXXXXX")
    if bs_holds 'type == "object" and .requests != null' <<< "$1"; then
        jq -c . <<< "$1" > "$dir/load.json"
    else
        echo "# the load's summary is not its JSON object: the record cannot be checked against it" >&2
        echo null > "$dir/load.json"
    fi
    bs_holds 'type == "object"' <<< "$2" && jq -c . <<< "$2" > "$dir/initial.json" || {
        echo "# the initial books are not a JSON object" >&2
        rm -rf "$dir"
        return 2
    }
    #  Each line, checked field by field, with its position (answer order)
    awk 'function num(s) { return s ~ /^-?[0-9]+$/ }
         function rid(s) { return length(s) == 32 && s ~ /^[0-9a-f]+$/ }
         { at = NR - 1 }
         $1 == "buy" && NF == 5 && rid($2) && $3 ~ /^[0-9A-Za-z_-]+$/ && num($4) && num($5) {
             printf "{\"k\":\"buy\",\"rid\":\"%s\",\"order_id\":\"%s\",\"item\":%s,\"sent\":%s,\"at\":%d}\n", $2, $3, $4, $5, at; next }
         $1 == "restock" && NF == 5 && rid($2) && num($3) && num($4) && num($5) {
             printf "{\"k\":\"restock\",\"rid\":\"%s\",\"item\":%s,\"count\":%s,\"sent\":%s,\"at\":%d}\n", $2, $3, $4, $5, at; next }
         $1 == "set_price" && NF == 5 && rid($2) && num($3) && num($4) && num($5) {
             printf "{\"k\":\"set_price\",\"rid\":\"%s\",\"item\":%s,\"cost\":%s,\"sent\":%s,\"at\":%d}\n", $2, $3, $4, $5, at; next }
         $1 == "add_book" && NF == 6 && rid($2) && num($3) && num($4) && num($5) && num($6) {
             printf "{\"k\":\"add_book\",\"rid\":\"%s\",\"item\":%s,\"cost\":%s,\"count\":%s,\"sent\":%s,\"at\":%d}\n", $2, $3, $4, $5, $6, at; next }
         $1 == "gave_up" && NF == 7 && $2 ~ /^(buy|restock|set_price|add_book)$/ && rid($3) && num($4) && num($5) && num($6) && num($7) {
             printf "{\"k\":\"gave_up\",\"op\":\"%s\",\"rid\":\"%s\",\"item\":%s,\"count\":%s,\"cost\":%s,\"sent\":%s,\"at\":%d}\n", $2, $3, $4, $5, $6, $7, at; next }
         { printf "{\"k\":\"bad\",\"line\":%d}\n", NR }' "$3" | jq -s -c . > "$dir/record.json"
    echo '[]' > "$dir/catalogs.json"
    echo '[]' > "$dir/orders.json"
    #  One status: the replicas it lists alive are the ones to read
    status=$(bs_status --timeout-ms 2000 --attempts 3)
    if ! bs_holds '.ok and (.nodes | type == "array")' <<< "$status"; then
        echo "# the broker did not answer a status request with its nodes: no replica could be read" >&2
        unreadable=$((unreadable + 1))
        answered=0
        status='{"nodes":[]}'
    fi
    for node in $(jq -r '.nodes[] | select(.alive and .service == "catalog") | .id' <<< "$status"); do
        if bs --json --timeout-ms 5000 --attempts 3 --node "$node" list > "$dir/one.json" 2>/dev/null \
           && bs_holds '.ok and (.items | type == "array")' "$dir/one.json"; then
            jq -c --arg n "$node" '{id: $n, items: .items}' "$dir/one.json" >> "$dir/catalogs.list"
        else
            echo "# $node: alive, but did not list its books" >&2
            unreadable=$((unreadable + 1))
        fi
    done
    for node in $(jq -r '.nodes[] | select(.alive and .service == "order") | .id' <<< "$status"); do
        if ! bs_orders_of "$node" "$dir" > "$dir/one.json"; then
            echo "# $node: alive, but did not list its orders" >&2
            unreadable=$((unreadable + 1))
        else
            jq -c --arg n "$node" '{id: $n, orders: .}' "$dir/one.json" >> "$dir/orders.list"
        fi
    done
    [ -f "$dir/catalogs.list" ] && jq -s -c . "$dir/catalogs.list" > "$dir/catalogs.json"
    [ -f "$dir/orders.list" ] && jq -s -c . "$dir/orders.list" > "$dir/orders.json"
    for service in catalog order; do
        if [ "$answered" = 1 ] && [ "$(jq length "$dir/${service}s.json")" = 0 ]; then
            echo "# no $service replica could be read: nothing to check the $service side against" >&2
            unreadable=$((unreadable + 1))
        fi
    done
    jq -n -c --argjson unreadable "$unreadable" --argjson status "$status" \
        --slurpfile load "$dir/load.json" --slurpfile init "$dir/initial.json" \
        --slurpfile record "$dir/record.json" \
        --slurpfile cats "$dir/catalogs.json" --slurpfile ords "$dir/orders.json" '
        #  An object by request id (jq 1.6 builds INDEX in quadratic time)
        def by_rid: map({key: .rid, value: .}) | from_entries;
        def sum(f): map(f) | add // 0;
        $load[0] as $load | $init[0] as $init | $record[0] as $rec | $cats[0] as $cats | $ords[0] as $ords
        #  The record against the summary
        | ($rec | map(select(.k == "bad")) | map("line \(.line) of the record is malformed")) as $bad
        | (if $load == null then ["no summary of the load to check the record against"]
           else [ [ ["buy", "acknowledged buys", ($load.acked_buys // 0)],
                  ["restock", "acknowledged restocks", ($load.acked_restocks // 0)],
                  ["set_price", "acknowledged price changes", ($load.ops.set_price.ok // 0)],
                  ["add_book", "acknowledged new books", ($load.ops.add_book.ok // 0)],
                  ["gave_up", "writes given up on",
                   ([$load.ops // {} | to_entries[] | select(.key | IN("buy", "restock", "set_price", "add_book"))
                     | .value.gave_up] | add // 0)] ][]
                | . as [$k, $what, $want]
                | ($rec | map(select(.k == $k)) | length) as $got
                | select($got != $want)
                | "the record has \($got) lines \($k), the load counted \($want) \($what)" ]
           end) as $mismatch
        | ($rec | map(select(.k == "buy")) | by_rid) as $acked
        | ($rec | map(select(.k == "gave_up" and .op == "buy")) | by_rid) as $unsure
        #  What each book should be, from the initial books and the record
        | ($rec | map(select(.k != "bad")) | group_by(.item) | map({key: (.[0].item | tostring), value: .}) | from_entries) as $by_item
        | ([$init | keys[]] + [$by_item | keys[]] + [$cats[].items[].item | tostring] | unique) as $all
        | [ $all[] as $k
            | ($by_item[$k] // []) as $w
            | ($init[$k] | if type == "number" then {stock: ., cost: null} else . end) as $i
            | ($w | map(select(.k == "add_book")) | last) as $added
            | ($w | map(select(.k == "gave_up" and .op == "add_book")) | last) as $maybe_added
            | (if $added then {stock: $added.count, cost: $added.cost, must: true}
               elif $i then {stock: $i.stock, cost: $i.cost, must: true}
               elif $maybe_added then {stock: $maybe_added.count, cost: $maybe_added.cost, must: false}
               else null end) as $base
            | ($w | map(select(.k == "set_price" or .k == "add_book"))) as $prices
            | ($w | map(select(.k == "gave_up" and (.op == "set_price" or .op == "add_book")))) as $maybe_prices
            | (if ($prices | length) > 0 then
                  ($prices | max_by(.at)) as $last
                  | [($prices + $maybe_prices)[] | select(.at >= $last.sent) | .cost]
               elif $base and $base.cost != null then [$base.cost] + [$maybe_prices[].cost]
               else null end) as $costs
            | {item: $k, base: $base, costs: ($costs | if . then unique else . end),
               want: (if $base then $base.stock + ($w | map(select(.k == "restock")) | sum(.count))
                                  - ($w | map(select(.k == "buy")) | length) else null end),
               less: ($w | map(select(.k == "gave_up" and .op == "buy")) | length),
               more: ($w | map(select(.k == "gave_up" and .op == "restock")) | sum(.count))} ] as $model
        | [ $cats[] as $c
            | ($c.items | map({key: (.item | tostring), value: .}) | from_entries) as $has
            | $model[] | . as $m | ($has[$m.item]) as $b
            | if $b == null then
                  (if $m.base and $m.base.must then {kind: "lost", item: $m.item, node: $c.id,
                       text: "\($c.id): book \($m.item) is missing"} else empty end)
              elif $m.base == null then
                  {kind: "unacked", item: $m.item, node: $c.id,
                   text: "\($c.id): book \($m.item) was never added by an acknowledged or uncertain write"}
              else
                  (if $b.stock < 0 or $b.stock < $m.want - $m.less or $b.stock > $m.want + $m.more then
                      {kind: "oversold", item: $m.item, node: $c.id,
                       text: "\($c.id): book \($m.item) has stock \($b.stock), want \($m.want) (unknown outcomes: \($m.less) buys, \($m.more) copies restocked)"}
                   else empty end),
                  (if $m.costs != null and ($m.costs | index([$b.cost]) | not) then
                      {kind: "mispriced", item: $m.item, node: $c.id,
                       text: "\($c.id): book \($m.item) costs \($b.cost), want one of \($m.costs)"}
                   else empty end)
              end ] as $books
        #  Orders: one per request id on every replica, each acknowledged
        | [ $ords[] as $o | $o.orders | group_by(.rid)[] | select(length > 1)
            | {rid: .[0].rid, node: $o.id, copies: length} ] as $dups
        | [ $ords[] as $o | ($o.orders | by_rid) as $have
            | $acked[] | select(($have[.rid] | not)
                                or $have[.rid].order_id != .order_id or $have[.rid].item != .item)
            | {rid, order_id, item, node: $o.id} ] as $lost
        | [ $ords[] as $o | $o.orders[]
            | select(($acked[.rid] | not) and ($unsure[.rid] | not))
            | {rid, order_id, item, node: $o.id} ] as $unacked
        | {lost: (($lost | map(.rid) | unique | length)
                  + ($books | map(select(.kind == "lost") | .item) | unique | length)),
           duplicated: ($dups | map(.rid) | unique | length),
           unacked: (($unacked | map(.rid) | unique | length)
                     + ($books | map(select(.kind == "unacked") | .item) | unique | length)),
           oversold: ($books | map(select(.kind == "oversold") | .item) | unique | length),
           mispriced: ($books | map(select(.kind == "mispriced") | .item) | unique | length),
           unreadable: $unreadable,
           incomplete: (if ($bad + $mismatch | length) > 0 then 1 else 0 end),
           read: {catalog: ($cats | length), order: ($ords | length)},
           down: ([$status.nodes[] | select(.alive | not)] | length),
           findings: ($bad + $mismatch + [$books[].text]
                      + [$dups[] | "\(.node): request \(.rid) has \(.copies) orders"]
                      + [$lost[] | "\(.node): acknowledged buy \(.rid) \(.order_id) of item \(.item) is missing"]
                      + [$unacked[] | "\(.node): order \(.order_id) \(.rid) of item \(.item) was never acknowledged"])}' \
        > "$dir/audit.json" || rc=1
    if [ $rc = 0 ]; then
        jq -r '.findings[:50][] | "# " + .' "$dir/audit.json" >&2
        jq -c 'del(.findings)' "$dir/audit.json"
        bs_holds '.lost + .duplicated + .unacked + .oversold + .mispriced + .unreadable + .incomplete == 0' \
            "$dir/audit.json" || rc=1
    else
        echo "# the audit could not run" >&2
    fi
    rm -rf "$dir"
    return $rc
}

#  bs_record_lines FILE: the lines of a load's record so far (0 before it
#  exists); the load writes one per write answered or given up on
bs_record_lines() {
    if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi
}

#  bs_wait_record FILE N SECONDS: until the load's record holds N lines,
#  that is, N writes were answered: evidence that a load is under way
bs_wait_record() {
    local deadline=$((SECONDS + $3))
    while [ "$(bs_record_lines "$1")" -lt "$2" ]; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

#  bs_join_loads OUT-RECORD SUMMARY RECORD [SUMMARY RECORD]...: loads run
#  one after another (never side by side), as one history for bs_audit:
#  writes their records, in order, into OUT-RECORD (each line's SENT
#  shifted by the lines before its record, since every write of a later
#  load began after the earlier load ended) and prints the summaries'
#  counts, summed, as one summary
bs_join_loads() {
    local out=$1 offset=0 lines summaries=()
    shift
    : > "$out" || return 1
    while [ $# -ge 2 ]; do
        summaries+=("$1")
        [ -f "$2" ] || { echo "# bs_join_loads: no record $2" >&2; return 1; }
        awk -v off="$offset" '{ $NF = $NF + off; print }' "$2" >> "$out"
        lines=$(bs_record_lines "$2")
        offset=$((offset + lines))
        shift 2
    done
    printf '%s\n' "${summaries[@]}" | jq -s -c '
        reduce .[] as $l ({requests: 0, acked_buys: 0, acked_restocks: 0, refused: 0, gave_up: 0, ops: {}};
            .requests += $l.requests | .acked_buys += $l.acked_buys | .acked_restocks += $l.acked_restocks
            | .refused += $l.refused | .gave_up += $l.gave_up
            | reduce ($l.ops | to_entries[]) as $o (.;
                .ops[$o.key].ok += $o.value.ok | .ops[$o.key].refused += $o.value.refused
                | .ops[$o.key].gave_up += $o.value.gave_up))'
}

#  bs_orders_of NODE DIR: every order of an order replica, as one JSON
#  array (the CLI follows the listing's pages).  False when it fails.
bs_orders_of() {
    local node=$1 dir=$2
    bs --json --timeout-ms 5000 --attempts 3 --node "$node" orders > "$dir/all.json" 2>/dev/null || return 1
    bs_holds '.ok and (.orders | type == "array")' "$dir/all.json" || return 1
    jq -c .orders "$dir/all.json"
}

#  bs_check_accounts LOAD-JSON RECORD: bs_audit of a cluster seeded from
#  etc/catalog.cfg and written to by that load alone; its findings on
#  stderr.  A record is required: counts alone cannot tell a lost buy from
#  one that took effect although its client was told it failed.
bs_check_accounts() {
    if [ $# -ne 2 ]; then
        echo "# bs_check_accounts needs the load's summary and its record (bookstore-load --record)" >&2
        return 2
    fi
    bs_audit "$1" "$(bs_seed_books "$BS_ROOT/etc/catalog.cfg")" "$2" > /dev/null
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
  --endpoint EP    the broker's client endpoint, or several brokers', comma-separated
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
#  service, role, epoch and whether it is alive and in sync; per broker it
#  lists (CHAOS_BROKERS) its state (active, standby) and client endpoint
declare -A CHAOS_SERVICE=() CHAOS_ROLE=() CHAOS_EPOCH=() CHAOS_INSYNC=()
declare -A CHAOS_BROKER_ROLE=() CHAOS_BROKER_STATE=() CHAOS_BROKER_ENDPOINT=()
CHAOS_IDS=
CHAOS_BROKERS=
CHAOS_HZ=$(getconf CLK_TCK)

#  The client endpoint of the broker last seen active, kept in a file the
#  fault scripts share, so that each asks it first and brokers whose first
#  is standing by (or down) costs one call rather than two (or a timeout)
CHAOS_ACTIVE_WRITTEN=
chaos_active_file() { echo "$BS_DATA/chaos-active"; }

#  chaos_status: the active broker's status.  Each broker is asked alone
#  and briefly (a CLI given the list waits out a dead first broker): the one
#  last seen active first, then the others in the list's order, and the one
#  a standby broker names as active; the first status with nodes is it.
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
        #  Brokers in the middle of a failover: what a standby broker says
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

#  chaos_answers: chaos_refresh, given a few seconds: brokers in the middle
#  of a failover has, for a moment, no broker that knows the nodes
chaos_answers() {
    local deadline=$((SECONDS + 3))
    until chaos_refresh; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

#  chaos_active_broker: the broker that reports itself active
chaos_active_broker() {
    local id
    for id in $CHAOS_BROKERS; do
        [ "${CHAOS_BROKER_STATE[$id]}" = active ] && echo "$id" && return 0
    done
    return 1
}

#  chaos_broker_can_stop BROKER: it runs, and another broker (by the
#  launcher's pid files, broker-<i>.pid) is ready to take the active lease
#  over: it runs, has for CHAOS_MIN_UP_MS, and was not stopped by this
#  invocation
chaos_broker_can_stop() {
    local other file
    chaos_running "$1" || return 1
    for file in "$BS_DATA"/pids/broker-*.pid; do
        other=$(basename "$file" .pid)
        [ "$other" = "$1" ] && continue
        [[ $CHAOS_STOPPED == *" $other "* ]] && continue
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
