#!/usr/bin/env bash
#  A paused active broker never answers from a stale cache.
#
#  The interleaving this guards: broker-1 is active and has lookup 666 in
#  its cache; it is paused (SIGSTOP); its lease runs out in etcd and
#  broker-2 takes the lease, keeping the same catalog primary and epoch,
#  so no invalidation ever reaches broker-1; a price change is
#  acknowledged through broker-2; a lookup is sent to broker-1, and
#  broker-1 resumes.  Had broker-1 gone on believing itself active, it
#  would answer that lookup from its cache, with the price from before the
#  acknowledged change.  A broker serves only while it can prove its lease
#  valid on its own clock, and one paused past the lease refuses.  Twenty
#  rounds, the two brokers taking turns.
source "$(dirname "$0")/lib.sh"
bs_plan 6
bs_start_cluster --brokers 2 --restock-period 0
bs_use_brokers 2
#  serves ID: that broker, asked alone, answers a lookup
serves() {
    one "$(endpoint_of "$1")" --json --attempts 1 --timeout-ms 1000 lookup 666 2> /dev/null | bs_holds .ok
}

check "the brokers settle: one active, named so by both" bs_wait_brokers 20
stale=0 refused=0 fresh=0 unacked=0 rounds=0
for round in $(seq 1 20); do
    active=$(bs_active_broker)
    [ -n "$active" ] || { bs_wait_brokers 20; active=$(bs_active_broker); }
    other=$(other_of "$active")
    price=$((20 + round))
    #  The active broker caches the lookup
    one "$(endpoint_of "$active")" --json --attempts 3 --timeout-ms 2000 lookup 666 > /dev/null 2>&1
    pid=$(bs_pid "$active")
    kill -STOP "$pid"
    #  The other takes the lease once the paused broker's has run out in
    #  etcd, and serves
    if ! until_true 20 eval "believes_active $other && serves $other"; then
        kill -CONT "$pid"
        log "round $round: $other did not take over"
        continue
    fi
    out=$(one "$(endpoint_of "$other")" --json --attempts 10 --timeout-ms 2000 set-price 666 "$price" 2>&1)
    bs_holds .ok <<< "$out" || { unacked=$((unacked + 1)); log "round $round: set-price: $out"; }
    #  A lookup that starts after the acknowledgement, sent to the paused
    #  broker (it waits in its socket), which then resumes.  Its client is
    #  given a moment to send before the resume, so that the lookup is
    #  usually queued; the guarantee holds either way.
    one "$(endpoint_of "$active")" --json --attempts 1 --timeout-ms 5000 lookup 666 > "$BS_TMP/late.json" 2>&1 &
    client=$!
    sleep 0.2
    kill -CONT "$pid"
    wait "$client"
    if bs_holds .ok < "$BS_TMP/late.json"; then
        if bs_holds ".cost == $price" < "$BS_TMP/late.json"; then
            fresh=$((fresh + 1))
        else
            stale=$((stale + 1))
            log "round $round: $active answered $(cat "$BS_TMP/late.json") after cost $price was acknowledged"
        fi
    else
        refused=$((refused + 1))
    fi
    rounds=$((rounds + 1))
    bs_wait_brokers 20 || log "round $round: the brokers did not settle again"
done
log "$rounds rounds: $fresh answered with the new price, $refused refused, $stale stale"
check "twenty rounds of pause, takeover, write and resume ran" test "$rounds" = 20
check "every price change through the new active broker was acknowledged" test "$unacked" = 0
check "no lookup that started after an acknowledged price change returned an older price" test "$stale" = 0
check "the resumed broker refused rather than answer (the brokers still work)" \
    eval "[ $((refused + fresh)) = 20 ] && bs --json lookup 666 | bs_holds '.cost == 40'"
