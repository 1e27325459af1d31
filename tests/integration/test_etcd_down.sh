#!/usr/bin/env bash
#  etcd out of reach, then back.  The active broker serves only while it
#  can prove its lease: with etcd frozen it stops within the lease (2 s)
#  and answers every request with an error that names etcd, its cache
#  included, and changes nothing; when etcd answers again the store serves
#  again by itself, with what was acknowledged before intact.
source "$(dirname "$0")/lib.sh"
bs_plan 7
bs_start_cluster --restock-period 0
check "a price change is acknowledged with etcd up" \
    eval 'bs --json set-price 321 41 | bs_holds ".ok and .cost == 41"'
bs --json lookup 321 > /dev/null            #  now in the broker's cache

etcd=$(cat "$BS_DATA/pids/etcd.pid")
kill -STOP "$etcd"
trap 'kill -CONT "$etcd" 2> /dev/null; bs_cleanup' EXIT
refused() { bs --json --timeout-ms 500 --attempts 1 lookup 321 2> /dev/null | bs_holds '(.ok | not)'; }
check "with etcd frozen, the broker stops serving within its lease (a cached lookup refused)" until_true 6 refused
out=$(bs --json --timeout-ms 1000 --attempts 1 lookup 321 2> /dev/null)
log "a lookup while etcd is frozen: $out"
check "...with an error that names etcd" bs_holds '(.ok | not) and (.message | test("etcd"))' <<< "$out"
out=$(bs --json --timeout-ms 1000 --attempts 1 set-price 321 99 2> /dev/null)
check "...and a write is refused too" bs_holds '(.ok | not)' <<< "$out"

kill -CONT "$etcd"
check "etcd back: lookups are answered again, by themselves" \
    until_true 15 eval 'bs --json --timeout-ms 500 --attempts 1 lookup 321 2> /dev/null | bs_holds ".ok"'
check "...with the price acknowledged before, not the refused one" \
    eval 'bs --json lookup 321 | bs_holds ".cost == 41"'
