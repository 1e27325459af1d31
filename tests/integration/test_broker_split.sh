#!/usr/bin/env bash
#  Two brokers that cannot see each other, both reachable by everyone,
#  never both serve, and a book with ten copies sells ten.
#
#  The interleaving: the link between the brokers is cut; broker A (the
#  active one) is paused long enough for the nodes to turn to broker B,
#  which takes over; A resumes.  Neither hears the other, so by Binary
#  Star's rules each believes it is the active one.  With the active lease
#  in etcd only the holder serves: the other refuses every request, even
#  the lookup its cache still holds.  Then 100 buys of the ten-copy book
#  by 25 clients at once, half sending to A first and half to B first.
source "$(dirname "$0")/lib.sh"
bs_plan 9
CUT=$BS_TMP/peer-link-cut
bs_start_cluster --brokers 2 --restock-period 0 --broker-args "--test-peer-mute-file $CUT"
bs_use_pair
serves() { one "$(endpoint_of "$1")" --json --attempts 1 --timeout-ms 2000 lookup 9000 2> /dev/null | bs_holds .ok; }

check "the pair settles" bs_wait_pair 20
check "a book with ten copies is added" bs_holds .ok <<< "$(bs --json add-book 9000 systems 'Ten Copies' 5 10)"
a=$(bs_active_broker)
b=$(other_of "$a")
serves "$a" || log "$a did not answer the lookup that fills its cache"

touch "$CUT"
pid=$(bs_pid "$a")
kill -STOP "$pid"
until_true 20 believes_active "$b" || log "$b did not take over"
kill -CONT "$pid"
check "with the link cut, both brokers believe they are active" \
    until_true 10 eval "believes_active $a && believes_active $b"
#  One of them serves once the lease has settled (the paused broker's
#  must run out first, or it may win it back); the other refuses
one_serves() {
    local served=0
    serves "$a" && served=$((served + 1))
    serves "$b" && served=$((served + 1))
    [ "$served" = 1 ]
}
check "...yet only one of them serves (the other refuses, its cache too)" until_true 20 one_serves
both=0
for i in $(seq 20); do
    serves "$a" && serves "$b" && both=$((both + 1))
done
check "...and in twenty samples after, never both" test "$both" = 0

#  25 clients at once, four buys each: each client sends to both brokers,
#  half of them to A first
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
wait "${pids[@]}"
sold=$(cat "$BS_TMP"/buy.* | jq -s '[.[] | select(.ok == true)] | length' 2> /dev/null)
log "$sold of 100 buys acknowledged"
check "100 buys by 25 concurrent clients through both brokers sell exactly ten copies" test "$sold" = 10
check "...the book is sold out, with ten orders for it" \
    eval "bs --json lookup 9000 | bs_holds '.stock == 0' && bs --json orders | bs_holds '[.orders[] | select(.item == 9000)] | length == 10'"
rm -f "$CUT"
check "with the link back, the pair settles again" bs_wait_pair 20
