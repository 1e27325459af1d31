#!/bin/sh
#  The image's entry point: the first word chooses the role, the rest are
#  that program's flags (settings may also come from BOOKSTORE_<NAME>
#  environment variables or a --config file; see each program's --help).
#
#    broker  [flags]   bookstore-broker
#    catalog [flags]   bookstore-node --service catalog
#    order   [flags]   bookstore-node --service order
#    gateway [flags]   bookstore-gateway
#    monitor [flags]   bookstore-monitor
#    cli     [args]    bookstore (the command-line client)
#    cluster [flags]   bookstore-cluster: a whole cluster in one container
#    etcd    [flags]   an etcd member of the control plane (etcd-server)
#    help              this text
#  Anything else is run as a command.
#
#  Defaults that suit a container, used only when neither a flag nor the
#  environment gives the setting:
#    nodes and cluster  data in /data (the volume)
#    nodes              replication endpoints advertised under the
#                       container's host name, tcp://<hostname>:5570 and
#                       :5571 (other hosts cannot reach 127.0.0.1); give
#                       --pub-endpoint/--sync-endpoint when others know the
#                       node under another name
#    gateway            listens on every address, port 8080
#    etcd               one member named after the container's host name,
#                       data in /data/etcd, clients on :2379 and peers on
#                       :2380 of every address, advertised under the host
#                       name, a cluster of itself alone; for several members
#                       set ETCD_INITIAL_CLUSTER (and ETCD_NAME where the
#                       host name is not the member's name): etcd reads its
#                       ETCD_<FLAG> variables, and a default here is used
#                       only where neither variable nor flag is given
set -e

usage() {
    sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,2\}//'
}

#  given NAME ARGS...: true when --NAME is among the flags or BOOKSTORE_NAME
#  is set
given() {
    name=$1
    shift
    var=BOOKSTORE_$(echo "$name" | tr 'a-z-' 'A-Z_')
    eval "[ -n \"\${$var:-}\" ]" && return 0
    for arg in "$@"; do
        [ "$arg" = "--$name" ] && return 0
    done
    return 1
}

#  The port of a bind endpoint given by flag or environment, else DEFAULT
bind_port() {
    name=$1 fallback=$2
    shift 2
    value=
    var=BOOKSTORE_$(echo "$name" | tr 'a-z-' 'A-Z_')
    eval "value=\${$var:-}"
    while [ $# -gt 0 ]; do
        if [ "$1" = "--$name" ] && [ $# -gt 1 ]; then
            value=$2
        fi
        shift
    done
    if [ -n "$value" ]; then echo "${value##*:}"; else echo "$fallback"; fi
}

role=${1:-help}
[ $# -gt 0 ] && shift
host=$(cat /proc/sys/kernel/hostname 2>/dev/null || echo localhost)
case $role in
    broker)
        set -- bookstore-broker "$@"
        ;;
    catalog|order)
        given data "$@" || export BOOKSTORE_DATA=/data
        given pub-endpoint "$@" \
            || export BOOKSTORE_PUB_ENDPOINT="tcp://$host:$(bind_port pub-bind 5570 "$@")"
        given sync-endpoint "$@" \
            || export BOOKSTORE_SYNC_ENDPOINT="tcp://$host:$(bind_port sync-bind 5571 "$@")"
        set -- bookstore-node --service "$role" "$@"
        ;;
    gateway)
        given listen "$@" || export BOOKSTORE_LISTEN=0.0.0.0:8080
        set -- bookstore-gateway "$@"
        ;;
    monitor)
        set -- bookstore-monitor "$@"
        ;;
    cli|bookstore)
        exec bookstore "$@"
        ;;
    cluster)
        given data "$@" || export BOOKSTORE_DATA=/data
        set -- bookstore-cluster "$@"
        ;;
    etcd)
        #  etcd refuses a flag that shadows its own ETCD_ variable, so each
        #  default goes in only where neither the variable nor the flag is
        #  given.  etcd_default VARIABLE FLAG VALUE
        flags=" $*"
        defaults=
        etcd_default() {
            eval "value=\${ETCD_$1:-}"
            [ -n "$value" ] && return 0
            case $flags in *" --$2"*) return 0 ;; esac
            defaults="$defaults --$2=$3"
        }
        name=${ETCD_NAME:-$host}
        etcd_default NAME name "$name"
        etcd_default DATA_DIR data-dir /data/etcd
        etcd_default LISTEN_CLIENT_URLS listen-client-urls http://0.0.0.0:2379
        etcd_default ADVERTISE_CLIENT_URLS advertise-client-urls "http://$host:2379"
        etcd_default LISTEN_PEER_URLS listen-peer-urls http://0.0.0.0:2380
        etcd_default INITIAL_ADVERTISE_PEER_URLS initial-advertise-peer-urls "http://$host:2380"
        etcd_default INITIAL_CLUSTER initial-cluster "$name=http://$host:2380"
        # shellcheck disable=SC2086
        set -- etcd $defaults "$@"
        ;;
    help|-h|--help)
        usage
        exit 0
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
#  What the health check needs to know: the role and its flags, one per line
{
    echo "$role"
    for arg in "$@"; do echo "$arg"; done
} > /tmp/bookstore-role 2>/dev/null || true
exec "$@"
