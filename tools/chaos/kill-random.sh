#!/usr/bin/env bash
#  kill-random.sh - SIGKILLs one replica chosen at random; the launcher
#  restarts it.  Never the last serving replica of its service.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHAOS_NAME=kill-random
CHAOS_USAGE="SIGKILLs a catalog or order node chosen at random (the launcher restarts it).
  --service S      only a node of this service: catalog or order"
SERVICE=
chaos_option() { case $1 in --service) SERVICE=$2 ;; *) return 1 ;; esac; }
chaos_parse "$@"
case $SERVICE in ""|catalog|order) ;; *) chaos_usage_error "--service is catalog or order" ;; esac

if ! chaos_choose "$SERVICE"; then
    chaos_answers || { chaos_note "the cluster does not answer at $BS_ENDPOINT"; exit 1; }
    chaos_note "no ${SERVICE:-catalog or order} node may be killed: it would leave a service without a serving replica"
    exit 3
fi
chaos_signal KILL "$CHAOS_CHOSEN" "role=${CHAOS_ROLE[$CHAOS_CHOSEN]}"
rc=$?
chaos_unlock
exit $rc
