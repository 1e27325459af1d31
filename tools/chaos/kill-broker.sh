#!/usr/bin/env bash
#  kill-broker.sh - SIGKILLs the active broker (the holder of the active
#  lease in etcd), as status reports it (`bookstore status`: its "brokers"
#  list, whose ids are the brokers' pid file names), provided another
#  broker runs, ready to take the lease over.  With --down-ms the killed
#  broker is held down that long (a hold file), so that another one takes
#  over instead of the killed one coming back first.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_NAME=kill-broker
CHAOS_USAGE="SIGKILLs the active broker (the launcher restarts it, and it comes back without
serving; another broker takes the lease and the nodes move to it).  Give every
broker's client endpoint, comma-separated, as --endpoint.
  --down-ms M      keep the killed broker down this long before the launcher may
                   restart it (default: 0, restarted at once)"
DOWN_MS=0
chaos_option() { case $1 in --down-ms) DOWN_MS=$2 ;; *) return 1 ;; esac; }
chaos_parse "$@"
[[ $DOWN_MS =~ ^[0-9]+$ ]] || chaos_usage_error "--down-ms must be whole milliseconds"

HOLD=
#  Whatever happens, a broker held down by this script is let go
release() {
    [ -n "$HOLD" ] || return 0
    rm -f "$HOLD"
    HOLD=
}
trap release EXIT
trap 'exit 130' INT TERM

deadline=$((SECONDS + CHAOS_WAIT))
active=
while true; do
    chaos_lock
    if chaos_refresh; then
        active=$(chaos_active_broker)
        if [ -n "$active" ] && chaos_broker_can_stop "$active"; then
            #  Held before it dies, so the launcher cannot restart it first
            if [ "$DOWN_MS" -gt 0 ]; then
                HOLD=$BS_DATA/hold/$active
                touch "$HOLD"
            fi
            words=(state=active "endpoint=${CHAOS_BROKER_ENDPOINT[$active]}")
            [ "$DOWN_MS" -gt 0 ] && words+=("down=${DOWN_MS}ms")
            chaos_signal KILL "$active" "${words[@]}"
            rc=$?
            chaos_unlock
            if [ $rc = 0 ] && [ -n "$HOLD" ]; then
                killed_pid=$CHAOS_PID
                sleep "$(chaos_ms_text "$DOWN_MS")" &
                wait $!
                release
                chaos_say "released $active pid=$killed_pid after=${DOWN_MS}ms seed=$CHAOS_SEED"
            fi
            exit $rc
        fi
    fi
    chaos_unlock
    if [ $SECONDS -ge "$deadline" ]; then
        chaos_answers || { chaos_note "the cluster does not answer at $BS_ENDPOINT"; exit 1; }
        if ! ls "$BS_DATA"/pids/broker-*.pid > /dev/null 2>&1; then
            chaos_note "the cluster has one broker alone"
        elif [ -z "$active" ]; then
            chaos_note "no broker is active"
        else
            chaos_note "$active may not be killed: no other broker runs, ready to take over"
        fi
        exit 3
    fi
    sleep 0.1
done
