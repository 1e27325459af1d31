#!/usr/bin/env bash
#  Chaos: each fault script of tools/chaos does what it says on a cluster of
#  a broker pair, 3 catalog and 2 order nodes, and never stops a service's
#  last serving replica, nor the active broker without a passive one ready;
#  then a bounded chaos run on a broker pair (tools/chaos/run.sh: at least
#  60 s, every kind of node fault at least 20 times and the active broker
#  killed every few seconds, under load) loses, doubles and oversells
#  nothing, every replica converges, the pair settles and every request gets
#  a definite answer.
#
#  BS_CHAOS_SECONDS and BS_CHAOS_SEED change the run's length and seed.
source "$(dirname "$0")/lib.sh"
CHAOS=$BS_ROOT/tools/chaos
MIN_FAULTS=20
MIN_BROKER_KILLS=5
SECONDS_RUN=${BS_CHAOS_SECONDS:-90}
SEED=${BS_CHAOS_SEED:-$(( ($(date +%s%N) / 1000) % 1000000 ))}

#  chaos SCRIPT ARGS...: a fault script against this test's cluster (its
#  broker pair)
chaos() { "$CHAOS/$1.sh" --data "$BS_DATA" --endpoint "$BS_ENDPOINTS" "${@:2}"; }
#  The process state letter of a pid (T: stopped)
state() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; echo "${s%% *}"; }
#  wait_gone PID SECONDS: until the process no longer exists (reaped)
wait_gone() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.02
    done
    return 1
}
#  wait_state PID STATE SECONDS: until the process is in that state
wait_state() {
    local deadline=$((SECONDS + $3))
    while [ $SECONDS -lt "$deadline" ]; do
        [ "$(state "$1")" = "$2" ] && return 0
        sleep 0.02
    done
    return 1
}
#  The ids named by "SIGKILL <id>" lines
killed() { awk '$4 == "SIGKILL" { print $5 }'; }
#  Every line starts with a timestamp with milliseconds and the script's name
stamped() { echo "$1" | grep -qvE "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} $2 " && return 1; return 0; }
died_count() { grep -c "cluster: $1 died: killed by signal 9 " "$BS_TMP/cluster.log"; }
#  Lines into the test's log, as comments
show() { echo "$1" | sed 's/^/# /'; }
#  jqt FILTER: true when the filter holds for stdin
jqt() { jq -e "$1" > /dev/null; }
#  wait_dead NODE SECONDS: until the active broker reports the node not
#  alive (the passive broker's status lists no nodes)
wait_dead() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        bs_status --timeout-ms 500 --attempts 1 \
            | jq -e --arg n "$1" 'has("nodes") and ([.nodes[] | select(.id == $n and .alive)] | length == 0)' > /dev/null \
            && return 0
        sleep 0.05
    done
    return 1
}

#  The checker catches what it is for: against a store that answers as
#  told (one catalog and one order replica), after a load that acknowledged
#  two buys (r1, r2) and a restock of one copy of item 666 (10 at first)
audit() {
    local stock=$1 orders=$2 extra=${3:-}
    (
        bs() {
            case " $* " in
                *" status "*) echo '{"ok":true,"nodes":[{"id":"catalog-1","service":"catalog","alive":true},
                                     {"id":"order-1","service":"order","alive":true}]}' ;;
                *" list "*) echo "{\"ok\":true,\"items\":[{\"item\":666,\"stock\":$stock}]}" ;;
                *" orders "*) echo "$orders" | tr ' ' '\n' | grep . \
                                  | jq -R -s -c '{ok: true, orders: [split("\n")[] | select(. != "")
                                                  | {rid: ., order_id: ("o-" + .), item: 666}]}' ;;
            esac
        }
        printf 'buy r1 o-r1 666\nbuy r2 o-r2 666\nrestock r3 666 1\n%s' "$extra" > "$BS_TMP/audit-record.txt"
        bs_audit '{"items":{"666":{"bought":2,"restocked":1,"added":false,"initial":0,
                   "uncertain_bought":'"$([ -n "$extra" ] && echo 1 || echo 0)"',"uncertain_restocked":0}}}' \
                 '{"666":10}' "$BS_TMP/audit-record.txt" 2> /dev/null
    )
}
counts() { jq -r '"\(.lost) \(.duplicated) \(.unacked) \(.oversold)"' <<< "$1"; }
check "audit: a store that matches passes" test "$(counts "$(audit 9 "r1 r2")")" = "0 0 0 0"
check "audit: a missing acknowledged buy is lost" test "$(counts "$(audit 9 "r1")")" = "1 0 0 0"
check "audit: two orders for one request id are a duplicate" test "$(counts "$(audit 9 "r1 r1 r2")")" = "0 1 0 0"
check "audit: an order nobody was told of is unacked" test "$(counts "$(audit 9 "r1 r2 r9")")" = "0 0 1 0"
check "audit: a copy too many sold is an oversell" test "$(counts "$(audit 8 "r1 r2")")" = "0 0 0 1"
check "audit: a copy too few sold is caught too" test "$(counts "$(audit 10 "r1 r2")")" = "0 0 0 1"
check "audit: a buy given up on may or may not have happened" \
    test "$(counts "$(audit 8 "r1 r2 r4" "gave_up buy r4 666 0")")" = "0 0 0 0" \
         -a "$(counts "$(audit 9 "r1 r2" "gave_up buy r4 666 0")")" = "0 0 0 0"
audit 9 "r1 r2" > /dev/null
check "audit: exits 0 when all is well" test $? = 0
audit 9 "r1" > /dev/null
check "audit: exits 1 on a violation" test $? = 1

bs_start_cluster --catalog 3 --order 2 --restock-period 0 --brokers 2
BS_ENDPOINTS=tcp://127.0.0.1:$BS_PORT,tcp://127.0.0.1:$((BS_PORT + 5))
check "the broker pair settles: one active, one passive" bs_wait_pair 20

#  The load: for a duration, with a record of what was acknowledged
"$BS_BIN/bookstore-load" --help > /dev/null 2>&1; check "bookstore-load --help exits 0" test $? = 0
"$BS_BIN/bookstore-load" 4 2> /dev/null; check "...missing arguments are a usage error (exit 2)" test $? = 2
"$BS_BIN/bookstore-load" --requests 5 --mix decrement:1 2> /dev/null
check "...and so is an op it may not send (exit 2)" test $? = 2
load=$(bs_load --seconds 2 --clients 4 --mix buy:60,lookup:20,restock:20 --seed 9 --record "$BS_TMP/record.txt")
check "bookstore-load --seconds 2 exits 0" test $? = 0
show "$(echo "$load" | jq -c 'del(.items)')"
check "...runs about that long" jqt '.seconds >= 2 and .seconds < 10 and .requests > 0' <<< "$load"
check "...writes one line per acknowledged buy and restock" \
    test "$(grep -c '^buy ' "$BS_TMP/record.txt")" = "$(jq .acked_buys <<< "$load")" \
         -a "$(grep -c '^restock ' "$BS_TMP/record.txt")" = "$(jq .acked_restocks <<< "$load")"
check "...each buy with its rid and the order id made from it" \
    awk '$1 == "buy" && !(length($2) == 32 && "o" $2 == $3) { bad = 1 } END { exit bad }' "$BS_TMP/record.txt"
check "...and reports latency percentiles" jqt '.p50_latency_ms <= .p99_latency_ms and .p99_latency_ms <= .max_latency_ms' <<< "$load"
check "the store matches what it acknowledged" bs_wait_converged 20
audit=$(bs_audit "$load" "$(bs_seed_stock "$BS_ROOT/etc/catalog.cfg")" "$BS_TMP/record.txt")
check "...to the last copy and order" test $? = 0
show "$audit"

#  Usage
chaos kill-random --help > "$BS_TMP/help.txt" 2>&1
check "--help prints the options and exits 0" \
    test $? = 0 -a "$(grep -c -- '--data\|--endpoint\|--seed' "$BS_TMP/help.txt")" -ge 3
chaos kill-random --bogus 1 2> /dev/null; check "an unknown option is a usage error (exit 2)" test $? = 2
chaos freeze --seconds soon 2> /dev/null; check "a bad value is a usage error (exit 2)" test $? = 2
"$CHAOS/kill-primary.sh" --data "$BS_TMP/nowhere" 2> /dev/null
check "a data folder without pid files is a usage error (exit 2)" test $? = 2

#  kill-primary: the node the broker reports as primary, by its pid file
primary=$(bs_catalog_primary)
pid=$(bs_pid "$primary")
out=$(chaos kill-primary --seed 1)
check "kill-primary exits 0" test $? = 0
show "$out"
check "...and prints one line, with a timestamp in milliseconds" stamped "$out" kill-primary
check "...naming the primary the broker reported and its pid" \
    grep -q " SIGKILL $primary pid=$pid role=primary" <<< "$out"
check "...which is gone" wait_gone "$pid" 5
check "...and was killed by SIGKILL" grep -q "cluster: $primary died: killed by signal 9 " "$BS_TMP/cluster.log"
new=""
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    new=$(bs_catalog_primary)
    [ -n "$new" ] && [ "$new" != "$primary" ] && break
    sleep 0.05
done
check "...and another replica became primary" test -n "$new" -a "$new" != "$primary"
check "the cluster recovers" bs_wait_ready 5 30

#  kill-random: one node of the service asked for
out=$(chaos kill-random --service order --seed 2)
check "kill-random exits 0" test $? = 0
show "$out"
victim=$(echo "$out" | killed)
pid=$(echo "$out" | sed -n 's/.* pid=\([0-9]*\).*/\1/p')
check "...and kills one order node" test "$(echo "$victim" | wc -w)" = 1 -a "${victim%%-*}" = order
check "...whose process is gone" wait_gone "$pid" 5
check "...and the launcher restarts it" bs_wait_pid_change "$victim" "$pid" 10
check "the cluster recovers" bs_wait_ready 5 30

#  freeze: SIGSTOP for the time asked, then SIGCONT, same process
follower=$(bs_status | jq -r '[.nodes[] | select(.service == "catalog" and .role == "follower") | .id][0]')
pid=$(bs_pid "$follower")
chaos freeze --node "$follower" --seconds 1.5 --seed 3 > "$BS_TMP/freeze.out" &
freezer=$!
check "freeze stops the node's process" wait_state "$pid" T 5
wait $freezer
check "...exits 0" test $? = 0
out=$(cat "$BS_TMP/freeze.out")
show "$out"
check "...prints SIGSTOP then SIGCONT lines with timestamps" \
    test "$(echo "$out" | awk '{ print $4 }' | tr '\n' ' ')" = "SIGSTOP SIGCONT " -a "$(stamped "$out" freeze && echo y)" = y
stop_at=$(date -d "$(echo "$out" | sed -n 1p | cut -c1-23)" +%s%3N)
cont_at=$(date -d "$(echo "$out" | sed -n 2p | cut -c1-23)" +%s%3N)
check "...1.5 s apart" test $((cont_at - stop_at)) -ge 1500 -a $((cont_at - stop_at)) -lt 3000
check "...and the same process runs again" test "$(bs_pid "$follower")" = "$pid" -a "$(state "$pid")" != T
check "the cluster recovers" bs_wait_ready 5 30

#  flap: the same node killed three times, each time after its restart
before=$(died_count order-1)
out=$(chaos flap --node order-1 --times 3 --up-ms 200 --seed 4)
check "flap exits 0" test $? = 0
show "$out"
check "...kills order-1 three times" test "$(echo "$out" | killed | sort | uniq -c | awk '{ print $1, $2 }')" = "3 order-1"
check "...each a different process" test "$(echo "$out" | sed -n 's/.*SIGKILL.* pid=\([0-9]*\).*/\1/p' | sort -u | wc -l)" = 3
check "...waiting for every restart" test "$(echo "$out" | grep -c ' restarted order-1 ')" = 3
check "...as the launcher saw" test $(( $(died_count order-1) - before )) -ge 3
check "...and leaves it running" kill -0 "$(bs_pid order-1)"
check "the cluster recovers" bs_wait_ready 5 30

#  kill-several: three distinct nodes, never every replica of a service
out=$(chaos kill-several --count 3 --gap-ms 100 --seed 5)
check "kill-several exits 0" test $? = 0
show "$out"
check "...kills three distinct nodes" test "$(echo "$out" | killed | sort -u | wc -l)" = 3
check "...leaving a catalog and an order replica" \
    test "$(echo "$out" | killed | grep -c catalog)" -le 2 -a "$(echo "$out" | killed | grep -c order)" -le 1
check "the cluster recovers" bs_wait_ready 5 30

#  kill-broker: the active broker of the pair, by its pid file, held down
#  long enough (1.5 s, over the nodes' liveness window of 1 s) for the other
#  to take over
active=$(bs_active_broker)
pid=$(bs_pid "$active")
out=$(chaos kill-broker --down-ms 1500 --seed 9)
check "kill-broker exits 0" test $? = 0
show "$out"
check "...and prints its lines with a timestamp in milliseconds" stamped "$out" kill-broker
check "...naming the active broker the pair reported and its pid" \
    grep -q " SIGKILL $active pid=$pid role=[a-z]* state=active " <<< "$out"
check "...which is gone" wait_gone "$pid" 5
check "...and was killed by SIGKILL" grep -q "cluster: $active died: killed by signal 9 " "$BS_TMP/cluster.log"
check "...and let go after 1.5 s" grep -q " released $active pid=$pid after=1500ms " <<< "$out"
new=""
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    new=$(bs_active_broker)
    [ -n "$new" ] && [ "$new" != "$active" ] && break
    sleep 0.05
done
check "...and the other broker took over" test -n "$new" -a "$new" != "$active"
check "...while the killed one comes back passive" bs_wait_pair 30
check "the cluster recovers" bs_wait_ready 5 30
#  Without a passive broker ready to take over, the active one is not killed
other=$(bs_status | jq -r --arg a "$new" '[.brokers[] | select(.id != $a) | .id][0]')
touch "$BS_DATA/hold/$other"
kill -KILL "$(bs_pid "$other")"
pid=$(bs_pid "$new")
out=$(chaos kill-broker --wait 1 --seed 10 2> /dev/null)
check "kill-broker will not kill the active broker while the other is down (exit 3)" test $? = 3 -a -z "$out"
check "...and it still runs" test "$(bs_pid "$new")" = "$pid"
rm -f "$BS_DATA/hold/$other"
check "the pair settles again" bs_wait_pair 30

#  The last serving replica of a service is never stopped
touch "$BS_DATA/hold/order-2"
kill -KILL "$(bs_pid order-2)"
wait_dead order-2 10
pid=$(bs_pid order-1)
chaos kill-random --service order --wait 1 --seed 6 > /dev/null 2>&1
check "kill-random will not kill the last order replica (exit 3)" test $? = 3
chaos freeze --node order-1 --wait 1 --seed 6 > /dev/null 2>&1
check "freeze will not freeze it (exit 3)" test $? = 3
chaos flap --service order --wait 1 --seed 6 > /dev/null 2>&1
check "flap will not flap it (exit 3)" test $? = 3
check "...and it still runs" test "$(bs_pid order-1)" = "$pid" -a "$(state "$pid")" != T
primary=$(bs_catalog_primary)
pid=$(bs_pid "$primary")
for node in $(bs_status | jq -r '.nodes[] | select(.service == "catalog" and .role == "follower") | .id'); do
    touch "$BS_DATA/hold/$node"
    kill -KILL "$(bs_pid "$node")"
done
chaos kill-primary --wait 1 --seed 7 > /dev/null 2>&1
check "kill-primary will not kill a primary without an in-sync follower (exit 3)" test $? = 3
out=$(chaos kill-several --count 2 --wait 1 --seed 8 2> /dev/null)
check "kill-several finds nothing to kill (exit 3)" test $? = 3 -a -z "$out"
check "...and the primary still runs" test "$(bs_pid "$primary")" = "$pid"
rm -f "$BS_DATA"/hold/*
check "the cluster recovers" bs_wait_ready 5 30
bs_stop_cluster

#  The chaos run
log "chaos run: $SECONDS_RUN s, seed $SEED"
result=$("$CHAOS/run.sh" --seconds "$SECONDS_RUN" --seed "$SEED" --dir "$BS_TMP/chaos" 2> "$BS_TMP/chaos.err")
rc=$?
show "$result"
grep -E '^# |chaos: ' "$BS_TMP/chaos.err" | sed 's/^\([^#]\)/# \1/' | tail -n 40
field() { echo "$result" | jq -r ".$1 // \"missing\""; }
check "the chaos run completes and prints one JSON line" test "$(echo "$result" | jq -e -s 'length == 1 and (.[0].error | not)' 2> /dev/null)" = true
check "...lasting at least 60 s" test "$(field seconds)" -ge 60
check "...on a broker pair" test "$(field brokers)" = 2
for kind in kill-random kill-primary freeze flap kill-several; do
    check "...with at least $MIN_FAULTS faults of kind $kind" test "$(echo "$result" | jq ".faults_by_kind[\"$kind\"] // 0")" -ge $MIN_FAULTS
done
check "...and the active broker killed at least $MIN_BROKER_KILLS times" \
    test "$(echo "$result" | jq '.faults_by_kind["kill-broker"] // 0')" -ge $MIN_BROKER_KILLS
check "...and thousands of requests" test "$(field requests)" -ge 1000
for what in lost duplicated unacked_orders oversold divergent down client_errors crashes sanitizer_reports unreadable; do
    check "$what = 0" test "$(field "$what")" = 0
done
check "every replica converged" test "$(field converged)" = true
check "the broker pair settled: one active, one passive" test "$(field pair_settled)" = true
check "the run exits 0" test "$rc" = 0
