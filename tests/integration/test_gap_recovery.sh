#!/usr/bin/env bash
#  Entries lost on the way (every 7th is not published) are fetched back
source "$(dirname "$0")/lib.sh"
bs_start_cluster --restock-period 0 --node-args "--drop-every 7"

load=$(bs_load 8 1000 buy:40,set_price:30,restock:30 21)
check "writes succeed while entries go missing" test "$(echo "$load" | jq .gave_up)" = 0
check "followers fetch the missing entries and converge" bs_wait_converged 20
check "stock and orders match the acknowledged writes on every replica" bs_check_accounts "$load"
check "followers did notice gaps" grep -q "fetches catalog from" "$BS_TMP/cluster.log"
