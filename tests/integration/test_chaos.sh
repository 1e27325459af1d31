#!/usr/bin/env bash
#  Chaos: each fault script of tools/chaos does what it says on a cluster of
#  two brokers, 3 catalog and 2 order nodes, and never stops a service's
#  last serving replica, nor the active broker without another one ready;
#  then a bounded chaos run on two brokers (tools/chaos/run.sh: at least
#  60 s, every kind of node fault landing again and again, the active
#  broker killed every few seconds and etcd frozen or killed every nine or
#  so, under load) loses, doubles, oversells
#  and misprices nothing (audited request by request against the load's
#  record), every replica converges and is read, the brokers settle and every
#  request gets a definite answer.  (The checker's own failures are shown
#  in test_checker.)
#
#  BS_CHAOS_SECONDS and BS_CHAOS_SEED change the run's length and seed.
source "$(dirname "$0")/lib.sh"
bs_plan 81
CHAOS=$BS_ROOT/tools/chaos
SECONDS_RUN=${BS_CHAOS_SECONDS:-90}
SEED=${BS_CHAOS_SEED:-$(( ($(date +%s%N) / 1000) % 1000000 ))}

#  chaos SCRIPT ARGS...: a fault script against this test's cluster (both
#  its brokers)
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
#  jqt FILTER: true when the filter holds for stdin (which is not empty)
jqt() { bs_holds "$1"; }
#  wait_dead NODE SECONDS: until the active broker reports the node not
#  alive (a standby broker's status lists no live nodes)
wait_dead() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt "$deadline" ]; do
        bs_status --timeout-ms 500 --attempts 1 \
            | bs_holds "has(\"nodes\") and ([.nodes[] | select(.id == \"$1\" and .alive)] | length == 0)" \
            && return 0
        sleep 0.05
    done
    return 1
}

bs_start_cluster --catalog 3 --order 2 --restock-period 0 --brokers 2
BS_ENDPOINTS=tcp://127.0.0.1:$BS_PORT,tcp://127.0.0.1:$((BS_PORT + 5))
check "the brokers settle: one active, named so by both" bs_wait_brokers 20

#  The load: for a duration, with a record of what was acknowledged
"$BS_BIN/bookstore-load" --help > /dev/null 2>&1; check "bookstore-load --help exits 0" test $? = 0
"$BS_BIN/bookstore-load" 4 2> /dev/null; check "...missing arguments are a usage error (exit 2)" test $? = 2
"$BS_BIN/bookstore-load" --requests 5 --mix decrement:1 2> /dev/null
check "...and so is an op it may not send (exit 2)" test $? = 2
load=$(bs_load --seconds 2 --clients 4 --mix buy:50,lookup:20,restock:15,set_price:15 --seed 9 \
       --record "$BS_TMP/record.txt")
check "bookstore-load --seconds 2 exits 0" test $? = 0
show "$(echo "$load" | jq -c 'del(.items)')"
#  It stops issuing after 2 s and then waits for the answers due, none of
#  which took longer than its slowest request
check "...runs about that long" \
    jqt '.requests > 0 and .seconds >= 2 and .seconds <= 2 + .max_latency_ms / 1000 + 0.5' <<< "$load"
check "...writes one line per acknowledged buy, restock and price change" \
    test "$(grep -c '^buy ' "$BS_TMP/record.txt")" = "$(jq .acked_buys <<< "$load")" \
         -a "$(grep -c '^restock ' "$BS_TMP/record.txt")" = "$(jq .acked_restocks <<< "$load")" \
         -a "$(grep -c '^set_price ' "$BS_TMP/record.txt")" = "$(jq .ops.set_price.ok <<< "$load")" \
         -a "$(jq .acked_buys <<< "$load")" -gt 0
check "...each buy with its rid and the order id made from it (its time prefix, never its random part)" \
    awk '$1 == "buy" && !(length($2) == 32 && length($3) == 33 && substr($3, 1, 13) == "o" substr($2, 1, 12) \
                          && index($3, substr($2, 13)) == 0) { bad = 1 } END { exit bad }' "$BS_TMP/record.txt"
check "...and reports latency percentiles" jqt '.p50_latency_ms <= .p99_latency_ms and .p99_latency_ms <= .max_latency_ms' <<< "$load"
check "the store matches what it acknowledged" bs_wait_converged 20
audit=$(bs_audit "$load" "$(bs_seed_books "$BS_ROOT/etc/catalog.cfg")" "$BS_TMP/record.txt")
check "...to the last copy, order and price, on every replica" \
    eval '[ $? = 0 ] && jqt ".read == {\"catalog\": 3, \"order\": 2}" <<< "$audit"'
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
began=$(date +%s%3N)
chaos freeze --node "$follower" --seconds 1.5 --seed 3 > "$BS_TMP/freeze.out" &
freezer=$!
check "freeze stops the node's process" wait_state "$pid" T 5
wait $freezer
rc=$?
ended=$(date +%s%3N)
check "...exits 0" test $rc = 0
out=$(cat "$BS_TMP/freeze.out")
show "$out"
check "...prints SIGSTOP then SIGCONT lines with timestamps" \
    test "$(echo "$out" | awk '{ print $4 }' | tr '\n' ' ')" = "SIGSTOP SIGCONT " -a "$(stamped "$out" freeze && echo y)" = y
stop_at=$(date -d "$(echo "$out" | sed -n 1p | cut -c1-23)" +%s%3N)
cont_at=$(date -d "$(echo "$out" | sed -n 2p | cut -c1-23)" +%s%3N)
#  At least the time asked; at most the script's own run (the SIGCONT is its
#  last act)
check "...1.5 s apart, the SIGCONT sent before the script ended" \
    test $((cont_at - stop_at)) -ge 1500 -a "$cont_at" -ge "$began" -a "$cont_at" -le "$ended"
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

#  kill-broker: the active broker, by its pid file, held down long enough
#  for the other to take over (3 s: its 2 s lease runs out in etcd, plus
#  etcd's expiry check; back sooner, it could win the key again itself)
active=$(bs_active_broker)
pid=$(bs_pid "$active")
out=$(chaos kill-broker --down-ms 3000 --seed 9)
check "kill-broker exits 0" test $? = 0
show "$out"
check "...and prints its lines with a timestamp in milliseconds" stamped "$out" kill-broker
check "...naming the active broker status reported and its pid" \
    grep -q " SIGKILL $active pid=$pid state=active " <<< "$out"
check "...which is gone" wait_gone "$pid" 5
check "...and was killed by SIGKILL" grep -q "cluster: $active died: killed by signal 9 " "$BS_TMP/cluster.log"
check "...and let go after 3 s" grep -q " released $active pid=$pid after=3000ms " <<< "$out"
new=""
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    new=$(bs_active_broker)
    [ -n "$new" ] && [ "$new" != "$active" ] && break
    sleep 0.05
done
check "...and the other broker took over" test -n "$new" -a "$new" != "$active"
check "...while the killed one comes back, naming the new one active" bs_wait_brokers 30
check "the cluster recovers" bs_wait_ready 5 30
#  Without another broker ready to take over, the active one is not killed
other=$(other_of "$new")
touch "$BS_DATA/hold/$other"
kill -KILL "$(bs_pid "$other")"
pid=$(bs_pid "$new")
out=$(chaos kill-broker --wait 1 --seed 10 2> /dev/null)
check "kill-broker will not kill the active broker while the other is down (exit 3)" test $? = 3 -a -z "$out"
check "...and it still runs" test "$(bs_pid "$new")" = "$pid"
rm -f "$BS_DATA/hold/$other"
check "the brokers settle again" bs_wait_brokers 30

#  The last serving replica of a service is never stopped
touch "$BS_DATA/hold/order-2"
kill -KILL "$(bs_pid order-2)"
check "the broker sees order-2 dead, held down" wait_dead order-2 10
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
check "...on two brokers" test "$(field brokers)" = 2
#  How many faults fit in the run depends on the machine (each waits for
#  the last one's node to serve again): each kind must land, and most tries
#  of each must find a node to stop rather than give up
landed() {
    bs_holds "(.faults_by_kind[\"$1\"] // 0) as \$done | (.faults_skipped[\"$1\"] // 0) as \$skipped
              | \$done >= 1 and \$done >= \$skipped" <<< "$result"
}
check "...with every kind of node fault landing, most tries of each" \
    eval 'landed kill-random && landed kill-primary && landed freeze && landed flap && landed kill-several'
check "...and the active broker killed, most tries" landed kill-broker
check "...and etcd frozen or killed, every try" \
    bs_holds '(.faults_by_kind.etcd // 0) >= 1 and (.faults_skipped.etcd // 0) == 0 and (.faults_failed.etcd // 0) == 0' <<< "$result"
check "...under load: more requests answered than faults" \
    jqt '.requests > .faults and .acked_buys > 0' <<< "$result"
check "nothing lost, doubled, unacknowledged, oversold or mispriced" \
    jqt '[.lost, .duplicated, .unacked_orders, .oversold, .mispriced] == [0, 0, 0, 0, 0]' <<< "$result"
check "...by a checker that read every replica, from a complete record" \
    jqt '.unreadable == 0 and .record_incomplete == 0 and .read == {"catalog": 3, "order": 2} and .down == 0' <<< "$result"
check "every request got a definite answer (the load exited 0)" jqt '.client_errors == 0 and .load_exit == 0' <<< "$result"
check "no replica diverged" jqt '.divergent == 0' <<< "$result"
check "no node crashed by itself, no sanitizer report" jqt '.crashes == 0 and .sanitizer_reports == 0' <<< "$result"
check "every replica converged" test "$(field converged)" = true
check "the brokers settled, all naming one active" test "$(field pair_settled)" = true
check "the run exits 0" test "$rc" = 0
