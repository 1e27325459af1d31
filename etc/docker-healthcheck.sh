#!/bin/bash
#  The image's health check: asks the store, through the command-line
#  client, whether this container's process does its job.
#
#    broker   answers a status request on its client port
#    catalog  answers a search sent to it by id through the broker
#    order    answers an orders listing sent to it by id through the broker
#    gateway  answers GET /healthz with 200 (it reached the broker)
#    monitor  its broker answers a status request
#    cluster  the cluster's broker answers a status request
#    etcd     the member answers GET /health with {"health":"true"}
#
#  The role and the flags come from what the entry point recorded; a
#  setting not given as a flag is read from BOOKSTORE_<NAME>, as the
#  programs do.  (Settings that come only from a --config file are not
#  seen: give the endpoints by flag or environment.)
set -u
ROLE_FILE=/tmp/bookstore-role
[ -r "$ROLE_FILE" ] || { echo "no role recorded (the entry point did not start a service)"; exit 1; }
mapfile -t ARGS < "$ROLE_FILE"
ROLE=${ARGS[0]}

#  opt NAME DEFAULT: the flag's value, else the environment's, else DEFAULT
opt() {
    local i var
    for ((i = 1; i < ${#ARGS[@]} - 1; i++)); do
        if [ "${ARGS[$i]}" = "--$1" ]; then
            echo "${ARGS[$((i + 1))]}"
            return
        fi
    done
    var=BOOKSTORE_$(echo "$1" | tr 'a-z-' 'A-Z_')
    echo "${!var:-$2}"
}

#  A bind endpoint as an address to connect to from inside the container
local_endpoint() {
    local ep=$1
    ep=${ep/\/\/\*:/\/\/127.0.0.1:}
    ep=${ep/\/\/0.0.0.0:/\/\/127.0.0.1:}
    echo "$ep"
}

ask() {
    local out
    out=$(bookstore --json --timeout-ms 2000 --attempts 1 "$@" 2>&1)
    case $out in
        '{"ok":true'*) return 0 ;;
        *) echo "${out:0:300}"; return 1 ;;
    esac
}

case $ROLE in
    broker)
        ep=$(opt client-bind "")
        [ -n "$ep" ] || ep="tcp://*:$(opt base-port 5555)"
        ask --endpoint "$(local_endpoint "$ep")" status
        ;;
    catalog|order)
        id=$(opt id "$ROLE-1")
        ep=$(opt broker-clients tcp://127.0.0.1:5555)
        if [ "$ROLE" = catalog ]; then
            ask --endpoint "$ep" --node "$id" search healthcheck
        else
            ask --endpoint "$ep" --node "$id" orders --item 1
        fi
        ;;
    gateway)
        listen=$(opt listen 127.0.0.1:8080)
        host=${listen%:*}
        port=${listen##*:}
        case $host in ''|'*'|0.0.0.0) host=127.0.0.1 ;; '[::]') host=::1 ;; esac
        host=${host#[}
        host=${host%]}
        exec 3<> "/dev/tcp/$host/$port" || exit 1
        printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
        read -r -t 5 status_line <&3 || exit 1
        exec 3<&-
        case $status_line in
            'HTTP/1.'?' 200'*) exit 0 ;;
            *) echo "gateway: $status_line"; exit 1 ;;
        esac
        ;;
    monitor)
        ask --endpoint "$(opt endpoint tcp://127.0.0.1:5555)" status
        ;;
    cluster)
        ask --endpoint "tcp://127.0.0.1:$(opt base-port 5555)" status
        ;;
    etcd)
        exec 3<> /dev/tcp/127.0.0.1/2379 || exit 1
        printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        body=$(timeout 5 cat <&3)
        exec 3<&-
        case $body in
            *'"health":"true"'*) exit 0 ;;
            *) echo "etcd: ${body:0:300}"; exit 1 ;;
        esac
        ;;
    *)
        exit 0
        ;;
esac
