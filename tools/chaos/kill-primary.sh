#!/usr/bin/env bash
#  kill-primary.sh - SIGKILLs the node the broker reports as the catalog
#  primary, provided another catalog replica is serving (in sync) to take
#  over.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_NAME=kill-primary
CHAOS_USAGE="SIGKILLs the current catalog primary, as the broker reports it (the launcher
restarts it; the broker elects an in-sync follower)."
chaos_parse "$@"

deadline=$((SECONDS + CHAOS_WAIT))
while true; do
    chaos_lock
    if chaos_refresh; then
        primary=$(chaos_primary)
        if [ -n "$primary" ] && chaos_running "$primary" && chaos_can_stop "$primary"; then
            chaos_signal KILL "$primary" "role=primary epoch=${CHAOS_EPOCH[$primary]}"
            rc=$?
            chaos_unlock
            exit $rc
        fi
    fi
    chaos_unlock
    if [ $SECONDS -ge "$deadline" ]; then
        chaos_answers || { chaos_note "the cluster does not answer at $BS_ENDPOINT"; exit 1; }
        chaos_note "no catalog primary may be killed: ${primary:-none is known}${primary:+ has no serving follower to take over}"
        exit 3
    fi
    sleep 0.1
done
