#!/usr/bin/env bash
#  flap.sh - kills one replica again and again: each time the launcher has
#  restarted it, it is SIGKILLed anew, a node that keeps crashing while it
#  catches up.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_NAME=flap
CHAOS_USAGE="SIGKILLs a node, waits for the launcher to restart it, and repeats.
  --times K        how many kills (default: 3)
  --up-ms M        most time the restarted node runs before the next kill, chosen at
                   random (default: 500)
  --node ID        this node (default: one chosen at random)
  --service S      a node of this service: catalog or order
Waits for the last restart before it exits."
TIMES=3
UP_MS=500
NODE=
SERVICE=
chaos_option() {
    case $1 in
        --times) TIMES=$2 ;;
        --up-ms) UP_MS=$2 ;;
        --node) NODE=$2 ;;
        --service) SERVICE=$2 ;;
        *) return 1 ;;
    esac
}
chaos_parse "$@"
[[ $TIMES =~ ^[0-9]+$ ]] && [ "$TIMES" -ge 1 ] || chaos_usage_error "--times must be a whole number from 1"
[[ $UP_MS =~ ^[0-9]+$ ]] || chaos_usage_error "--up-ms must be whole milliseconds"
case $SERVICE in ""|catalog|order) ;; *) chaos_usage_error "--service is catalog or order" ;; esac

#  may_kill NODE: under the lock, waits for NODE to run with another replica
#  of its service serving; the lock stays held on success
may_kill() {
    local deadline=$((SECONDS + CHAOS_WAIT))
    while true; do
        chaos_lock
        chaos_refresh && chaos_running "$1" && chaos_can_stop "$1" && return 0
        chaos_unlock
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

if [ -z "$NODE" ]; then
    if ! chaos_choose "$SERVICE"; then
        chaos_answers || { chaos_note "the cluster does not answer at $BS_ENDPOINT"; exit 1; }
        chaos_note "no node may be killed: it would leave a service without a serving replica"
        exit 3
    fi
    NODE=$CHAOS_CHOSEN
elif ! may_kill "$NODE"; then
    chaos_note "$NODE may not be killed: it is not running, or it is its service's last serving replica"
    exit 3
fi
#  The lock is held here
for ((i = 1; i <= TIMES; i++)); do
    if [ "$i" -gt 1 ] && ! may_kill "$NODE"; then
        chaos_note "stopped after $((i - 1)) kill(s): $NODE may not be killed again now"
        exit 3
    fi
    chaos_signal KILL "$NODE" "flap=$i/$TIMES" || { chaos_unlock; exit 1; }
    chaos_unlock
    killed_at=$(date +%s%3N)
    if ! bs_wait_pid_change "$NODE" "$CHAOS_PID" $((30 + CHAOS_WAIT)); then
        chaos_note "$NODE was not restarted (is it held?)"
        exit 1
    fi
    chaos_say "restarted $NODE pid=$(bs_pid "$NODE") after=$(( $(date +%s%3N) - killed_at ))ms"
    if [ "$i" -lt "$TIMES" ] && [ "$UP_MS" -gt 0 ]; then
        sleep "$(chaos_ms_text $((RANDOM % (UP_MS + 1))))"
    fi
done
