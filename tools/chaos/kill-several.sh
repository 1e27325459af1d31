#!/usr/bin/env bash
#  kill-several.sh - SIGKILLs several replicas in a row, each chosen at
#  random among those whose loss still leaves every service a serving
#  replica.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_NAME=kill-several
CHAOS_USAGE="SIGKILLs several nodes one after another (the launcher restarts them).
  --count K        how many (default: 2)
  --gap-ms G       most time between two kills, chosen at random (default: 200)"
COUNT=2
GAP_MS=200
chaos_option() {
    case $1 in
        --count) COUNT=$2 ;;
        --gap-ms) GAP_MS=$2 ;;
        *) return 1 ;;
    esac
}
chaos_parse "$@"
[[ $COUNT =~ ^[0-9]+$ ]] && [ "$COUNT" -ge 1 ] || chaos_usage_error "--count must be a whole number from 1"
[[ $GAP_MS =~ ^[0-9]+$ ]] || chaos_usage_error "--gap-ms must be whole milliseconds"

for ((i = 1; i <= COUNT; i++)); do
    if ! chaos_choose; then
        chaos_answers || { chaos_note "the cluster does not answer at $BS_ENDPOINT"; exit 1; }
        chaos_note "killed $((i - 1)) of $COUNT: no other node may be killed without leaving a service without a serving replica"
        exit 3
    fi
    chaos_signal KILL "$CHAOS_CHOSEN" "several=$i/$COUNT role=${CHAOS_ROLE[$CHAOS_CHOSEN]}" || { chaos_unlock; exit 1; }
    chaos_unlock
    if [ "$i" -lt "$COUNT" ] && [ "$GAP_MS" -gt 0 ]; then
        sleep "$(chaos_ms_text $((RANDOM % (GAP_MS + 1))))"
    fi
done
