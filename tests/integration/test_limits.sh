#!/usr/bin/env bash
#  A client that floods the broker is refused (overloaded) alone: another
#  client is served meanwhile, and nothing crashes
source "$(dirname "$0")/lib.sh"
bs_plan 6
bs_start_cluster --restock-period 0 --no-gateway --broker-args "--max-per-client 20 --cache-entries 0"

#  One client keeps 100 requests outstanding for 3 s, against a limit of 20
"$BS_HELPERS/probe" "tcp://127.0.0.1:$BS_PORT" "tcp://127.0.0.1:$((BS_PORT + 1))" flood > "$BS_TMP/flood.json" &
flood=$!
served=0
for i in $(seq 20); do
    [ "$(bs --json --attempts 1 --timeout-ms 2000 lookup 666 | jq .ok)" = true ] && served=$((served + 1))
done
wait $flood
out=$(cat "$BS_TMP/flood.json")
log "flood: $out"
check "another client is served all along the flood (20 of 20 lookups)" test "$served" = 20
check "every request of the flooding client is answered" test "$(echo "$out" | jq '.sent == .answered')" = true
check "...those past its limit with error overloaded and a sentence" test "$(echo "$out" | jq .overloaded)" -gt 0
check "...the others served" test "$(echo "$out" | jq '.ok > 0 and .ok + .overloaded == .answered')" = true
check "every process is still running" bs_all_running
