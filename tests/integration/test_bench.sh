#!/usr/bin/env bash
#  The benchmark tool: short runs of a few workloads print one complete JSON
#  object with operations, no errors and ordered percentiles; bad arguments
#  exit 2 and an unreachable cluster exits 3.  Nothing here is timed.
source "$(dirname "$0")/lib.sh"
bs_plan 72
bs_start_cluster --restock-period 0

BENCH_ERR=$BS_TMP/bench.err
#  jq as a condition: its answer decides, nothing is printed
jqe() { jq -e "$@" > /dev/null; }
bench() {
    "$BS_BIN/bookstore-bench" --endpoint "tcp://127.0.0.1:$BS_PORT" --seconds 1 --warmup 0.3 --json "$@" 2>> "$BENCH_ERR"
}

#  check_run NAME WORKLOAD CLIENTS [more options]: the run exits 0 and its
#  JSON holds every key, some operations, no errors, ordered percentiles
check_run() {
    local name=$1 workload=$2 clients=$3 out rc
    shift 3
    out=$(bench --workload "$workload" --clients "$clients" "$@"); rc=$?
    check "$name: exit 0" test "$rc" = 0
    if echo "$out" | jq -e -s --arg w "$workload" --argjson c "$clients" '
          length == 1 and (.[0] | . as $r
            | (["workload","clients","seconds","ops","ops_per_s","p50_us","p90_us","p99_us","p999_us","max_us","errors"]
               | all(. as $k | $r | has($k)))
            and .workload == $w and .clients == $c)' > /dev/null; then
        ok "$name: one JSON object with every key"
    else
        not_ok "$name: one JSON object with every key (got: $out)"
    fi
    check "$name: some operations were measured" jqe '.ops > 0 and .ops_per_s > 0 and .seconds > 0' <<< "$out"
    check "$name: no errors" jqe '.errors == 0 and .timeouts == 0' <<< "$out"
    jqe '.errors == 0 and .timeouts == 0' <<< "$out" \
        || log "$name: $(jq -c 'with_entries(select(.key | test("error|timeout|retr")))' <<< "$out" 2> /dev/null)"
    check "$name: p50 <= p90 <= p99 <= p99.9 <= max" \
        jqe '.p50_us > 0 and .p50_us <= .p90_us and .p90_us <= .p99_us and .p99_us <= .p999_us and .p999_us <= .max_us' <<< "$out"
}

check_run "pingpong" pingpong 1
check_run "pingpong, 10 clients" pingpong 10
check_run "lookup-hot" lookup-hot 1
check_run "lookup-cold, 5 clients" lookup-cold 5
check_run "buy, 4 clients" buy 4
check_run "write-mix, 4 clients" write-mix 4
check_run "mixed on the seed books, 3 clients" mixed 3 --items 666,321,768
check_run "search of the seed topics" search 2 --items 666,321,768,546,684,499,846
check_run "lookup-hot open loop" lookup-hot 50 --rate 300

#  Every buy is its own request: one order per copy taken, on every replica
bs_wait_converged 30
orders() { bs --json --node "$1" orders --item 1000002 | jq '.orders | length'; }
order_nodes="order-1 order-2"
declare -A orders_before
for node in $order_nodes; do orders_before[$node]=$(orders "$node"); done
before=$(bs --json lookup 1000002 | jq .stock)
out=$(bench --workload buy --clients 4 --items 1000002)
check "buys of the bench's books never run out of stock" jqe '.out_of_stock == 0 and .ops > 0' <<< "$out"
check "a bench book holds a huge stock" test "$(bs --json lookup 1000001 | jq '.stock > 400000000')" = true
check "replicas converge after the bench's buys" bs_wait_converged 30
sold=$((before - $(bs --json lookup 1000002 | jq .stock)))
counts=""
for node in $order_nodes; do counts="$counts $node:$(( $(orders "$node") - orders_before[$node] ))"; done
check "every order node holds one order per copy the bench bought ($sold; got$counts)" \
    test "$counts" = " order-1:$sold order-2:$sold"

out=$(bench load-catalog 300 --clients 50)
check "load-catalog: every book is added or already there" \
    jqe '.workload == "load-catalog" and .added + .existing == 300 and .errors == 0' <<< "$out"
check "load-catalog: the last book exists" test "$(bs --json lookup 1000300 | jq -r .title)" = "Bench book 001000300"
check "load-catalog: eight books to a topic" test "$(bs --json search bench-000036 | jq '.items | length')" = 8
check_run "lookup-cold over the loaded catalog" lookup-cold 3 --catalog-size 300

check "replicas converge after the bench's writes" bs_wait_converged 30

#  Bad arguments: exit 2, with a JSON error under --json
expect_exit() {
    local name=$1 want=$2 rc
    shift 2
    "$BS_BIN/bookstore-bench" "$@" > "$BS_TMP/out.json" 2>> "$BENCH_ERR"; rc=$?
    check "$name: exit $want" test "$rc" = "$want"
}
expect_exit "no workload" 2 --endpoint "tcp://127.0.0.1:$BS_PORT"
expect_exit "an unknown workload" 2 --workload frobnicate
expect_exit "zero clients" 2 --workload lookup-hot --clients 0
expect_exit "a non-numeric duration" 2 --workload lookup-hot --seconds soon
expect_exit "an unknown option" 2 --workload lookup-hot --bogus 1
expect_exit "a bad item range" 2 --workload lookup-cold --items 9-3
expect_exit "a topic over its length limit" 2 --workload search --topics "$(printf 'x%.0s' {1..70})"
expect_exit "a bad item range, JSON" 2 --workload lookup-cold --items 0 --json
check "a usage error under --json prints a JSON error" jqe '.ok == false and .error == "usage" and (.message | length > 0)' "$BS_TMP/out.json"
expect_exit "an unreachable cluster" 3 --workload lookup-hot --json --seconds 1 \
    --endpoint "tcp://127.0.0.1:$((BS_PORT + 9))"
check "an unreachable cluster under --json prints a JSON error" jqe '.ok == false and .error == "timeout"' "$BS_TMP/out.json"
expect_exit "an item the store does not have" 1 --workload lookup-cold --items 5 \
    --endpoint "tcp://127.0.0.1:$BS_PORT"

if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$BENCH_ERR"; then
    not_ok "no sanitizer reports from the bench"
    grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$BENCH_ERR" | head -60
else
    ok "no sanitizer reports from the bench"
fi
