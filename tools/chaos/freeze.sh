#!/usr/bin/env bash
#  freeze.sh - SIGSTOPs a replica for some seconds, then SIGCONTs it: a node
#  that hangs without closing its connections.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_NAME=freeze
CHAOS_USAGE="SIGSTOPs a node for a while, then SIGCONTs it.
  --seconds N      how long it stays frozen, e.g. 0.5 (default: 1)
  --node ID        this node (default: one chosen at random)
  --service S      a node of this service: catalog or order"
FREEZE=1
NODE=
SERVICE=
chaos_option() {
    case $1 in
        --seconds) FREEZE=$2 ;;
        --node) NODE=$2 ;;
        --service) SERVICE=$2 ;;
        *) return 1 ;;
    esac
}
chaos_parse "$@"
chaos_fraction "$FREEZE" || chaos_usage_error "--seconds must be a number of seconds, e.g. 0.5"
case $SERVICE in ""|catalog|order) ;; *) chaos_usage_error "--service is catalog or order" ;; esac

if [ -n "$NODE" ]; then
    deadline=$((SECONDS + CHAOS_WAIT))
    while true; do
        chaos_lock
        chaos_refresh && chaos_running "$NODE" && chaos_can_stop "$NODE" && break
        chaos_unlock
        if [ $SECONDS -ge "$deadline" ]; then
            chaos_note "$NODE may not be frozen: it is not running, or it is its service's last serving replica"
            exit 3
        fi
        sleep 0.1
    done
    CHAOS_CHOSEN=$NODE
elif ! chaos_choose "$SERVICE"; then
    chaos_answers || { chaos_note "the cluster does not answer at $BS_ENDPOINT"; exit 1; }
    chaos_note "no node may be frozen: it would leave a service without a serving replica"
    exit 3
fi
chaos_signal STOP "$CHAOS_CHOSEN" "for=${FREEZE}s role=${CHAOS_ROLE[$CHAOS_CHOSEN]}" || { chaos_unlock; exit 1; }
frozen=$CHAOS_PID
thaw() {
    [ -n "$frozen" ] || return
    kill -s CONT "$frozen" 2>/dev/null && chaos_say "SIGCONT $CHAOS_CHOSEN pid=$frozen seed=$CHAOS_SEED"
    frozen=
}
trap thaw EXIT
trap 'exit 130' INT TERM
chaos_unlock
sleep "$FREEZE" &
wait $!
thaw
