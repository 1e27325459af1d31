#!/usr/bin/env bash
#  Entries lost on the way (every 7th is not published) are fetched back
source "$(dirname "$0")/lib.sh"
bs_plan 5
bs_start_cluster --restock-period 0 --node-args "--drop-every 7"

load=$(bs_load --clients 8 --requests 1000 --mix buy:40,set_price:30,restock:30 --seed 21 --record "$BS_TMP/record.txt")
check "writes succeed while entries go missing (the load exits 0)" test $? = 0
check "followers fetch the missing entries and converge" bs_wait_converged 20
check "every replica holds every acknowledged write, by request id, and nothing else" \
    bs_check_accounts "$load" "$BS_TMP/record.txt"
check "followers did notice gaps" grep -q "fetches catalog from" "$BS_TMP/cluster.log"
