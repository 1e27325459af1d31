#!/usr/bin/env bash
#  The store's functions end to end: search, lookup, buy, orders, price,
#  restock, add-book, status, exit codes and JSON shapes.
source "$(dirname "$0")/lib.sh"
bs_plan 26
bs_start_cluster --restock-period 0

titles=$(bs --json search distributed_systems | jq -r '[.items[].title] | sort | join("|")')
check "search distributed_systems lists its three titles" \
    test "$titles" = "How to finish Project 3 on time|How to get a good grade in 677 in 20 minutes a day|RPCs for Dummies"
titles=$(bs --json search graduate_school | jq -r '[.items[].item] | sort | join(",")')
check "search graduate_school lists its four items" test "$titles" = "546,684,768,846"
check "search of an unknown topic is empty" test "$(bs --json search astrology | jq '.items | length')" = 0

out=$(bs --json lookup 321)
check "lookup returns cost and stock" test "$(echo "$out" | jq -c '[.item,.cost,.stock,.topic]')" = '[321,5,8,"distributed_systems"]'

out=$(bs --json buy 768)
check "buy succeeds with an order id" test "$(echo "$out" | jq -r '.ok and (.order_id | length > 0) and .item == 768')" = true
order_id=$(echo "$out" | jq -r .order_id)
check "buy decrements the stock" test "$(bs --json lookup 768 | jq .stock)" = 11
check "the order is recorded" test "$(bs --json orders --item 768 | jq -r '[.orders[].order_id] | join(",")')" = "$order_id"

bs --json set-price 768 21 > /dev/null
check "set-price changes the price" test "$(bs --json lookup 768 | jq .cost)" = 21
bs --json restock 768 4 > /dev/null
check "restock adds copies" test "$(bs --json lookup 768 | jq .stock)" = 15
bs --json add-book 9001 cooking "Cooking in C" 3 2 > /dev/null
check "add-book makes the book searchable" test "$(bs --json search cooking | jq -r '.items[0].title')" = "Cooking in C"
out=$(bs --json add-book 9001 cooking "Again" 3 2); rc=$?
check "add-book of an existing item is refused (exit 1)" test "$rc:$(echo "$out" | jq -r .error)" = "1:exists"

out=$(bs --json lookup 5); rc=$?
check "lookup of an unknown item: exit 1, unknown_item" test "$rc:$(echo "$out" | jq -r .error)" = "1:unknown_item"
out=$(bs --json buy abc); rc=$?
check "a non-numeric item is a usage error (exit 2)" test "$rc:$(echo "$out" | jq -r .ok)" = "2:false"
bs --json frobnicate > /dev/null 2>&1
check "an unknown command is a usage error (exit 2)" test $? = 2
out=$("$BS_BIN/bookstore" --endpoint "tcp://127.0.0.1:$((BS_PORT + 9))" --json --timeout-ms 200 --attempts 2 lookup 666); rc=$?
check "an unreachable cluster: exit 3 with a JSON error" test "$rc:$(echo "$out" | jq -r .error)" = "3:timeout"

out=$(bs --json status)
check "status lists two catalog and two order nodes alive" \
    test "$(echo "$out" | jq -r '[.nodes[] | select(.alive) | .service] | sort | join(",")')" = "catalog,catalog,order,order"
check "status shows one catalog primary and one follower" \
    test "$(echo "$out" | jq -r '[.nodes[] | select(.service == "catalog") | .role] | sort | join(",")')" = "follower,primary"

#  Ten copies of 666: eleven buys give ten orders and one out_of_stock
succ=0; oos=0
for i in $(seq 11); do
    out=$(bs --json buy 666)
    case $(echo "$out" | jq -r 'if .ok then "ok" else .error end') in
        ok) succ=$((succ + 1)) ;;
        out_of_stock) oos=$((oos + 1)) ;;
    esac
done
check "11 buys of a 10-copy book: 10 succeed, 1 is out of stock" test "$succ:$oos" = "10:1"
check "its stock is 0" test "$(bs --json lookup 666 | jq .stock)" = 0
check "10 orders for it are recorded" test "$(bs --json orders --item 666 | jq '.orders | length')" = 10
#  Listings come in pages; the CLI follows them all, by order id (oldest
#  first: its rids start with the time)
all=$(bs --json orders --item 666 | jq -c '[.orders[].order_id]')
check "in pages of 3 the CLI lists the same 10 orders, in the same order" \
    test "$(bs --json --page 3 orders --item 666 | jq -c '[.orders[].order_id]')" = "$all"
check "...by order id" test "$(echo "$all" | jq -c 'sort')" = "$all"
check "...and does not say 'more' once it has them all" \
    test "$(bs --json --page 3 orders --item 666 | jq 'has("more")')" = false
check "a page size out of range is a bad value (exit 2)" \
    sh -c '"$0" --endpoint "$1" --page 0 orders > /dev/null 2>&1; test $? = 2' "$BS_BIN/bookstore" "tcp://127.0.0.1:$BS_PORT"
bs --json buy 666 > /dev/null
check "buying a sold-out book exits 1" test $? = 1
