#!/usr/bin/env bash
#  etcd.sh - a fault of the control plane: SIGSTOPs the cluster's etcd
#  member for a while (a consensus store that hangs without closing its
#  connections), or SIGKILLs it (the launcher restarts it from its data
#  folder).  Only the launcher's own member (DIR/pids/etcd.pid) is touched.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_NAME=etcd
CHAOS_USAGE="SIGSTOPs the launcher's etcd member for a while, or SIGKILLs it.
  --mode M         freeze (default) or kill
  --seconds N      how long it stays frozen, e.g. 1.5 (default: 1)"
MODE=freeze
FREEZE=1
chaos_option() {
    case $1 in
        --mode) MODE=$2 ;;
        --seconds) FREEZE=$2 ;;
        *) return 1 ;;
    esac
}
chaos_parse "$@"
case $MODE in freeze|kill) ;; *) chaos_usage_error "--mode is freeze or kill" ;; esac
chaos_fraction "$FREEZE" || chaos_usage_error "--seconds must be a number of seconds, e.g. 1.5"

pid=$(cat "$BS_DATA/pids/etcd.pid" 2> /dev/null)
if [ -z "$pid" ] || ! kill -0 "$pid" 2> /dev/null; then
    chaos_note "no running etcd member of the launcher's in $BS_DATA (an etcd of its own, given with --etcd, is not touched)"
    exit 3
fi
if [ "$MODE" = kill ]; then
    kill -s KILL "$pid" || exit 1
    chaos_say "SIGKILL etcd pid=$pid seed=$CHAOS_SEED"
    deadline=$((SECONDS + CHAOS_WAIT))
    while [ $SECONDS -lt "$deadline" ]; do
        now=$(cat "$BS_DATA/pids/etcd.pid" 2> /dev/null)
        if [ -n "$now" ] && [ "$now" != "$pid" ] && kill -0 "$now" 2> /dev/null; then
            chaos_say "restarted etcd pid=$now"
            exit 0
        fi
        sleep 0.05
    done
    chaos_note "the launcher did not restart etcd within $CHAOS_WAIT s"
    exit 1
fi
kill -s STOP "$pid" || exit 1
chaos_say "SIGSTOP etcd pid=$pid for=${FREEZE}s seed=$CHAOS_SEED"
frozen=$pid
thaw() {
    [ -n "$frozen" ] || return
    kill -s CONT "$frozen" 2> /dev/null && chaos_say "SIGCONT etcd pid=$frozen seed=$CHAOS_SEED"
    frozen=
}
trap thaw EXIT
trap 'exit 130' INT TERM
sleep "$FREEZE" &
wait $!
thaw
