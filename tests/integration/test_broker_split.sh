#!/usr/bin/env bash
#  Two brokers, both reachable by everyone, never both serve, and a book
#  with ten copies sells ten.
#
#  The brokers share no link: the lease in etcd alone says which one
#  serves.  The interleaving: broker A (the active one) is paused long
#  enough for its lease to run out and for broker B to take it over; A
#  resumes, its cache still full.  Only the lease holder serves: A refuses
#  every request (not_active, naming B), even the lookup its cache holds.
#  Then 100 buys of the ten-copy book by 25 clients at once, half sending
#  to A first and half to B first, while the brokers are sampled: never
#  do both serve.
source "$(dirname "$0")/lib.sh"
bs_plan 9
bs_start_cluster --brokers 2 --restock-period 0
bs_use_brokers 2
serves() { one "$(endpoint_of "$1")" --json --attempts 1 --timeout-ms 2000 lookup 9000 2> /dev/null | bs_holds .ok; }

check "the brokers settle" bs_wait_brokers 20
check "a book with ten copies is added" bs_holds .ok <<< "$(bs --json add-book 9000 systems 'Ten Copies' 5 10)"
a=$(bs_active_broker)
b=$(other_of "$a")
serves "$a" || log "$a did not answer the lookup that fills its cache"

pid=$(bs_pid "$a")
kill -STOP "$pid"
until_true 20 eval "believes_active $b && serves $b" || log "$b did not take over"
kill -CONT "$pid"
#  One of them serves; the other refuses, naming the active one
one_serves() {
    local served=0
    serves "$a" && served=$((served + 1))
    serves "$b" && served=$((served + 1))
    [ "$served" = 1 ]
}
check "after the pause, only one broker serves (the other refuses, its cache too)" until_true 20 one_serves
out=$(one "$(endpoint_of "$a")" --attempts 1 --timeout-ms 2000 lookup 9000 2>&1)
check "...the resumed broker answers not_active, naming the active one" \
    eval '[[ $out == *not_active* && $out == *"$(endpoint_of "$b")"* ]]'

#  25 clients at once, four buys each: each client sends to both brokers,
#  half of them to A first; meanwhile both brokers are asked, again and
#  again, whether they serve
buyer() {
    local n
    for n in 1 2 3 4; do
        one "$2" --json --attempts 20 --timeout-ms 2000 buy 9000 > "$BS_TMP/buy.$1.$n" 2>&1
    done
}
pids=()
for i in $(seq 1 25); do
    if [ $((i % 2)) = 0 ]; then eps=$EP1,$EP2; else eps=$EP2,$EP1; fi
    buyer "$i" "$eps" &
    pids+=($!)
done
both=0 samples=0
while kill -0 "${pids[@]}" 2> /dev/null || [ $samples -lt 20 ]; do
    sa=no sb=no
    serves "$a" && sa=yes
    serves "$b" && sb=yes
    [ $sa$sb = yesyes ] && both=$((both + 1))
    samples=$((samples + 1))
done
wait "${pids[@]}"
log "$samples samples of both brokers during and after the buys: both served in $both"
check "...never both, in every sample taken during the buys and after" test "$both" = 0
sold=$(cat "$BS_TMP"/buy.* | jq -s '[.[] | select(.ok == true)] | length' 2> /dev/null)
log "$sold of 100 buys acknowledged"
check "100 buys by 25 concurrent clients through both brokers sell exactly ten copies" test "$sold" = 10
check "...the book is sold out, with ten orders for it" \
    eval "bs --json lookup 9000 | bs_holds '.stock == 0' && bs --json orders | bs_holds '[.orders[] | select(.item == 9000)] | length == 10'"
check "the brokers still agree on the active one" bs_wait_brokers 20
