#!/usr/bin/env bash
#  The store across hosts: the broker and each node in a network namespace
#  of its own, with an address of its own, the way they run on separate
#  machines.
#
#  Topology (every namespace is made here and removed on exit; their names
#  carry this shell's pid, so runs side by side do not meet):
#
#    <p>-sw      a bridge, br0, with one veth port per host below
#    <p>-etcd    10.77.0.5   etcd, the control plane (one member)
#    <p>-broker  10.77.0.1   bookstore-broker (ports chosen apart from its
#                            default layout, so nothing can derive them)
#    <p>-cat1    10.77.0.11  catalog-1     settings: config file + flags
#    <p>-cat2    10.77.0.12  catalog-2     settings: config file + environment
#    <p>-ord1    10.77.0.21  order-1       settings: config file + flags
#    <p>-ord2    10.77.0.22  order-2       settings: config file + environment
#    <p>-web     10.77.0.30  bookstore-gateway
#    <p>-client  10.77.0.100 the CLI, the monitor and curl
#
#  Every node binds tcp://*:5570 and tcp://*:5571, the same ports on every
#  host, and advertises tcp://<its address>:<port>.  No namespace has a
#  route beyond 10.77.0.0/24, so nothing here can reach any other address.
#
#  Checks: search, lookup, buy, orders, status (all alive, in sync, equal
#  digests), the partition map the broker keeps in etcd on its own host, a
#  follower's replication connection to the primary's advertised address,
#  the monitor's feed and the gateway; then the catalog primary is killed
#  with SIGKILL, the store goes on (a new primary, elected in etcd at a
#  higher epoch, buys work), the node is started again by hand in its
#  namespace and rejoins and converges.
#  Then the commands of etc/two-hosts.cfg, as written, on two of the hosts
#  named store-a and store-b (through /etc/netns/<namespace>/hosts, which
#  ip netns exec shows as /etc/hosts).
#
#  Needs root and `ip netns`; otherwise it reports itself skipped.
set -u
BS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$BS_ROOT"
BS_BIN=${BS_BIN:-$BS_ROOT/bin}
FAILED=0
ok()     { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=1; }
log()    { echo "# $*"; }
check() {
    local name=$1; shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}
skip_check() { echo "ok - $1 # SKIP $2"; }
#  The TAP plan: the checks a full run makes (tests/run.sh holds it to it)
PLAN=37
echo "1..$PLAN"
#  This machine cannot make the hosts: every check is skipped, with why
skip() {
    local k
    for ((k = 1; k <= PLAN; k++)); do skip_check "netns check $k of $PLAN" "$*"; done
    exit 0
}

# ---------------------------------------------------------------------------
#  Can this machine do it?

[ "$(id -u)" = 0 ] || skip "needs root to make network namespaces"
command -v ip > /dev/null || skip "no ip command (iproute2)"
command -v jq > /dev/null || skip "no jq"
command -v etcd > /dev/null || skip "no etcd (Debian: etcd-server)"
command -v etcdctl > /dev/null || skip "no etcdctl (Debian: etcd-client)"
P=bsn$$
probe=$P-probe
if ! ip netns add "$probe" 2> /dev/null; then
    skip "ip netns add is not permitted here"
fi
if ! ip -n "$probe" link add probe0 type veth peer name probe1 2> /dev/null \
   || ! ip -n "$probe" link add probebr type bridge 2> /dev/null; then
    ip netns del "$probe" 2> /dev/null
    skip "veth or bridge links are not available in a network namespace"
fi
ip netns del "$probe"

TMP=$(mktemp -d /tmp/bookstore-netns.XXXXXX)
NETNS=()
ETC_NETNS=()        #  /etc/netns/<namespace>: files ip netns exec shows as /etc
declare -A PID=()

cleanup() {
    local name pid i alive
    #  Stop what we started (by pid), politely first
    for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2> /dev/null; done
    for ((i = 0; i < 100; i++)); do
        alive=0
        for name in "${!PID[@]}"; do kill -0 "${PID[$name]}" 2> /dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for name in "${!PID[@]}"; do kill -KILL "${PID[$name]}" 2> /dev/null; done
    for name in "${!PID[@]}"; do wait "${PID[$name]}" 2> /dev/null; done
    for name in "${NETNS[@]}"; do ip netns del "$name" 2> /dev/null; done
    for name in "${ETC_NETNS[@]}"; do rm -rf "$name"; done
    if [ "$FAILED" = 0 ]; then rm -rf "$TMP"; else echo "# kept $TMP"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

# ---------------------------------------------------------------------------
#  The network

SW=$P-sw
NET=10.77.0
declare -A ADDR=([etcd]=$NET.5 [broker]=$NET.1 [cat1]=$NET.11 [cat2]=$NET.12 [ord1]=$NET.21 [ord2]=$NET.22
                 [web]=$NET.30 [client]=$NET.100)
HOSTS=(etcd broker cat1 cat2 ord1 ord2 web client)

make_net() {
    ip netns add "$SW" || return 1
    NETNS+=("$SW")
    ip -n "$SW" link add br0 type bridge || return 1
    ip -n "$SW" link set br0 up || return 1
    local h ns
    for h in "${HOSTS[@]}"; do
        ns=$P-$h
        ip netns add "$ns" || return 1
        NETNS+=("$ns")
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2> /dev/null
        ip -n "$SW" link add "p-$h" type veth peer name eth0 netns "$ns" || return 1
        ip -n "$SW" link set "p-$h" master br0 up || return 1
        ip -n "$ns" link set lo up || return 1
        ip -n "$ns" addr add "${ADDR[$h]}/24" dev eth0 || return 1
        ip -n "$ns" link set eth0 up || return 1
    done
}
if make_net; then
    ok "made ${#HOSTS[@]} hosts on a bridge ($NET.0/24)"
else
    not_ok "made the network namespaces"
    exit 1
fi

#  on HOST COMMAND...: runs a command on a host
on() { local h=$1; shift; ip netns exec "$P-$h" "$@"; }

# ---------------------------------------------------------------------------
#  The cluster: one config file for every host (as a real deployment would
#  copy it), per-node settings by flag or environment

B=${ADDR[broker]}
CLIENT_PORT=5555 NODE_PORT=6001 INVAL_PORT=6502 FEED_PORT=7003
ETCD=http://${ADDR[etcd]}:2379
cat > "$TMP/cluster.cfg" <<EOF
#  The test cluster: broker at $B, ports apart from the default layout;
#  plain mode across hosts, so broker and nodes are told --insecure
broker
    client-bind = "tcp://*:$CLIENT_PORT"
    node-bind = "tcp://*:$NODE_PORT"
    invalidate-bind = "tcp://*:$INVAL_PORT"
    feed-bind = "tcp://*:$FEED_PORT"
    insecure = 1
    heartbeat-ms = 100
    liveness = 10
    etcd = "$ETCD"
    cluster = "netns"
node
    broker = "tcp://$B:$NODE_PORT"
    broker-clients = "tcp://$B:$CLIENT_PORT"
    invalidate = "tcp://$B:$INVAL_PORT"
    pub-bind = "tcp://*:5570"
    sync-bind = "tcp://*:5571"
    insecure = 1
    heartbeat-ms = 100
    liveness = 10
    restock-period = 0
    seed = "$BS_ROOT/etc/catalog.cfg"
gateway
    endpoint = "tcp://$B:$CLIENT_PORT"
    listen = "${ADDR[web]}:8080"
monitor
    endpoint = "tcp://$B:$CLIENT_PORT"
    feed = "tcp://$B:$FEED_PORT"
client
    endpoint = "tcp://$B:$CLIENT_PORT"
EOF
CFG=$TMP/cluster.cfg

#  start NAME HOST: starts a process on its host, in the background; PID
#  holds the program's own pid (ip netns exec and env exec it)
start() {
    local name=$1 h=$2 a=${ADDR[$2]} cmd
    case $name in
        etcd)
            local peer=http://$a:2380
            cmd=(etcd --name etcd --data-dir "$TMP/etcd" --listen-client-urls "$ETCD"
                 --advertise-client-urls "$ETCD" --listen-peer-urls "$peer"
                 --initial-advertise-peer-urls "$peer" --initial-cluster "etcd=$peer"
                 --logger zap --log-level warn) ;;
        broker)
            cmd=("$BS_BIN/bookstore-broker" --config "$CFG") ;;
        gateway)
            cmd=("$BS_BIN/bookstore-gateway" --config "$CFG") ;;
        catalog-1|order-1)
            #  Advertised endpoints by flag
            cmd=("$BS_BIN/bookstore-node" --config "$CFG" --service "${name%-*}" --id "$name"
                 --data "$TMP/$name" --pub-endpoint "tcp://$a:5570" --sync-endpoint "tcp://$a:5571") ;;
        catalog-2|order-2)
            #  ... and by environment
            cmd=(env BOOKSTORE_SERVICE="${name%-*}" BOOKSTORE_ID="$name" BOOKSTORE_DATA="$TMP/$name"
                 BOOKSTORE_PUB_ENDPOINT="tcp://$a:5570" BOOKSTORE_SYNC_ENDPOINT="tcp://$a:5571"
                 "$BS_BIN/bookstore-node" --config "$CFG") ;;
    esac
    ip netns exec "$P-$h" "${cmd[@]}" >> "$TMP/$name.log" 2>&1 &
    PID[$name]=$!
    HOST_OF[$name]=$h
}
declare -A HOST_OF=()

#  The CLI, from the client's host: its endpoint from the config file
bs() { on client "$BS_BIN/bookstore" --config "$CFG" "$@"; }
status() { bs --json --timeout-ms 1000 --attempts 1 status 2> /dev/null; }

#  wait_for SECONDS JQ-FILTER: until the broker's status satisfies the filter
wait_for() {
    local deadline=$((SECONDS + $1)) out
    while [ $SECONDS -lt "$deadline" ]; do
        out=$(status)
        [ -n "$out" ] && echo "$out" | jq -e "$2" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$out" | jq -c '[.nodes[]? | {id, alive, role, insync, lag, digest}]' 2> /dev/null | sed 's/^/# last status: /'
    return 1
}
CONVERGED='[.nodes[] | select(.alive)] as $n
    | ($n | length) == 4 and ($n | all(.insync and .lag == 0))
      and ([$n[] | select(.service == "catalog") | .digest] | unique | length) == 1
      and ([$n[] | select(.service == "order") | .digest] | unique | length) == 1'

#  The partition map as etcd holds it, read from the client host
meta() {
    on client etcdctl --endpoints "$ETCD" --command-timeout 2s get --print-value-only \
        /bookstore/netns/partitions/catalog 2> /dev/null
}
#  meta_holds SECONDS JQ-FILTER: until the map satisfies the filter
meta_holds() {
    local deadline=$((SECONDS + $1)) out
    while [ $SECONDS -lt "$deadline" ]; do
        out=$(meta)
        [ -n "$out" ] && echo "$out" | jq -e "$2" > /dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "# last map: $out"
    return 1
}

start etcd etcd
check "etcd answers on its own host" \
    bash -c 'for i in $(seq 100); do ip netns exec "$1" etcdctl --endpoints "$2" --command-timeout 1s \
             endpoint health > /dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1' _ "$P-client" "$ETCD"
start broker broker
start catalog-1 cat1
start catalog-2 cat2
start order-1 ord1
start order-2 ord2
start gateway web

check "broker and four nodes on five hosts: all alive and in sync" \
    wait_for 30 '[.nodes[]? | select(.alive and .insync)] | length == 4'

# ---------------------------------------------------------------------------
#  The store's functions, from another host

titles=$(bs --json search distributed_systems | jq -r '[.items[].title] | sort | join("|")')
check "search from the client host lists the topic's three titles" \
    test "$titles" = "How to finish Project 3 on time|How to get a good grade in 677 in 20 minutes a day|RPCs for Dummies"
out=$(bs --json lookup 321)
check "lookup returns cost and stock" test "$(echo "$out" | jq -c '[.item,.cost,.stock]')" = '[321,5,8]'
out=$(bs --json buy 321)
check "buy succeeds with an order id" test "$(echo "$out" | jq -r '.ok and (.order_id | length > 0)')" = true
order_id=$(echo "$out" | jq -r .order_id)
check "the buy took a copy" test "$(bs --json lookup 321 | jq .stock)" = 7
check "the order is listed" test "$(bs --json orders --item 321 | jq -r '[.orders[].order_id] | join(",")')" = "$order_id"
for i in 1 2 3; do bs --json buy 768 > /dev/null; done
bs --json restock 768 5 > /dev/null
check "replicas converge: all in sync, equal digests per service" wait_for 20 "$CONVERGED"
out=$(status)
check "status: one catalog primary and one follower" \
    test "$(echo "$out" | jq -r '[.nodes[] | select(.service == "catalog") | .role] | sort | join(",")')" = "follower,primary"
first_primary=$(echo "$out" | jq -r '[.nodes[] | select(.service == "catalog" and .role == "primary") | .id][0]')
check "etcd on its own host holds the map: $first_primary primary, both in sync" \
    meta_holds 10 ".primary == \"$first_primary\" and .epoch >= 1 and (.insync | length) == 2"
first_epoch=$(meta | jq .epoch)

#  Each node reads its copy: asked one by one, they agree
for id in catalog-1 catalog-2; do
    check "$id answers a pinned lookup with the new stock" \
        test "$(bs --json --node "$id" lookup 768 | jq .stock)" = 14
done
for id in order-1 order-2; do
    check "$id holds the four orders" test "$(bs --json --node "$id" orders | jq '.orders | length')" = 4
done

#  Replication uses the advertised addresses: the follower is connected to
#  the primary's host on its log port
primary=$(status | jq -r '[.nodes[] | select(.service == "catalog" and .role == "primary") | .id][0]')
follower=$([ "$primary" = catalog-1 ] && echo catalog-2 || echo catalog-1)
paddr=${ADDR[${HOST_OF[$primary]}]}
conns=$(on "${HOST_OF[$follower]}" ss -Htn state established "( dport = :5570 or dport = :5571 )" 2> /dev/null)
check "$follower is connected to $primary at its advertised address $paddr" \
    grep -q "$paddr:557[01]" <<< "$conns"
check "the follower holds no loopback replication connection" \
    test -z "$(grep '127.0.0.1:557' <<< "$conns")"

#  The monitor, on the client host, reads the broker's feed on its own port
out=$(on client timeout 10 "$BS_BIN/bookstore-monitor" --config "$CFG" --once --json 2> /dev/null)
check "the monitor reads the feed from another host" \
    test "$(echo "$out" | jq '[.nodes[]? | select(.alive)] | length' 2> /dev/null)" = 4

#  The gateway, on its own host, serves the client host
if command -v curl > /dev/null; then
    http() { on client curl -s -m 5 "$@"; }
    deadline=$((SECONDS + 10))
    until code=$(http -o /dev/null -w '%{http_code}' "http://${ADDR[web]}:8080/healthz"); [ "$code" = 200 ] \
          || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
    check "the gateway answers /healthz from another host" test "$code" = 200
    check "the gateway looks up a book through the broker" \
        test "$(http "http://${ADDR[web]}:8080/books/321" | jq .stock)" = 7
else
    skip_check "the gateway answers /healthz from another host" "curl is missing"
    skip_check "the gateway looks up a book through the broker" "curl is missing"
fi

# ---------------------------------------------------------------------------
#  Kill and recover: SIGKILL the catalog primary's process

victim=$primary
vhost=${HOST_OF[$victim]}
log "killing $victim (pid ${PID[$victim]}) on ${ADDR[$vhost]}"
kill -KILL "${PID[$victim]}"
wait "${PID[$victim]}" 2> /dev/null
unset "PID[$victim]"
check "the broker declares $victim dead" \
    wait_for 10 "[.nodes[] | select(.id == \"$victim\" and .alive)] | length == 0"
check "$follower is elected catalog primary" \
    wait_for 15 "[.nodes[] | select(.id == \"$follower\" and .alive and .role == \"primary\")] | length == 1"
check "the election is in etcd: $follower primary at an epoch above $first_epoch" \
    meta_holds 10 ".primary == \"$follower\" and .epoch > $first_epoch"
out=$(bs --json buy 321)
check "buys go on without $victim" test "$(echo "$out" | jq -r .ok)" = true
check "lookups go on without $victim" test "$(bs --json lookup 321 | jq .stock)" = 6
bs --json set-price 321 6 > /dev/null
check "catalog writes go on without $victim" test "$(bs --json lookup 321 | jq .cost)" = 6

log "starting $victim again on ${ADDR[$vhost]} with its data"
start "$victim" "$vhost"
check "$victim rejoins" wait_for 20 "[.nodes[] | select(.id == \"$victim\" and .alive and .insync)] | length == 1"
check "after the restart every replica converges" wait_for 20 "$CONVERGED"
check "$victim has the writes made while it was down" \
    test "$(bs --json --node "$victim" lookup 321 | jq -c '[.stock,.cost]')" = '[6,6]'

# ---------------------------------------------------------------------------
#  The two-host example of etc/two-hosts.cfg, as written: its commands, run
#  on two of these hosts that answer to the names store-a and store-b

stop_all() {
    local name
    for name in "${!PID[@]}"; do kill -TERM "${PID[$name]}" 2> /dev/null; done
    for name in "${!PID[@]}"; do wait "${PID[$name]}" 2> /dev/null; done
    PID=()
}
stop_all
ok "stopped the cluster"

declare -A NAMED=([store-a]=broker [store-b]=cat2)
for h in broker cat2 client; do
    mkdir -p "/etc/netns/$P-$h"
    ETC_NETNS+=("/etc/netns/$P-$h")
    printf '127.0.0.1 localhost\n%s store-a\n%s store-b\n' "${ADDR[broker]}" "${ADDR[cat2]}" \
        > "/etc/netns/$P-$h/hosts"
done
#  The example's commands, continuation lines joined; "anywhere$" lines are
#  the client's
awk '/^#   [a-z-]+\$ bin\// { line = $0; sub(/^#   /, "", line); cont = (line ~ /\\$/)
                           sub(/ *\\$/, "", line); cmd = line; if (!cont) print cmd; next }
     cont { line = $0; sub(/^# */, "", line); cont = (line ~ /\\$/)
            sub(/ *\\$/, "", line); cmd = cmd " " line; if (!cont) print cmd }' \
    "$BS_ROOT/etc/two-hosts.cfg" > "$TMP/two-hosts.commands"
mkdir -p "$TMP/two/data"
n=0
while read -r -a words; do
    where=${words[0]%\$}
    [ "$where" = anywhere ] && continue
    prog=${words[1]#bin/}
    args=("${words[@]:2}")
    for ((k = 0; k < ${#args[@]}; k++)); do
        [ "${args[$k]}" = --config ] && args[$((k + 1))]=$BS_ROOT/${args[$((k + 1))]}
        [ "${args[$k]}" = --data ] && args[$((k + 1))]=$TMP/two/${args[$((k + 1))]}
    done
    n=$((n + 1))
    #  From the checkout, where the example's seed path points
    (cd "$BS_ROOT" && exec ip netns exec "$P-${NAMED[$where]}" "$BS_BIN/$prog" "${args[@]}") \
        >> "$TMP/two-$n-$prog.log" 2>&1 &
    PID[two-$n]=$!
done < "$TMP/two-hosts.commands"
check "etc/two-hosts.cfg names six programs to start" test "$n" = 6

CFG=$BS_ROOT/etc/two-hosts.cfg
check "the two-host example: four nodes alive and in sync (the client reaches store-a by name)" \
    wait_for 30 '[.nodes[]? | select(.alive and .insync)] | length == 4'
out=$(bs --json buy 666)
check "the two-host example: a buy succeeds" test "$(echo "$out" | jq -r .ok)" = true
check "the two-host example: replicas converge" wait_for 20 "$CONVERGED"
check "the two-host example: order-2 on store-b has the order" \
    test "$(bs --json --node order-2 orders | jq '.orders | length')" = 1
if command -v curl > /dev/null; then
    deadline=$((SECONDS + 10))
    until code=$(on client curl -s -m 5 -o /dev/null -w '%{http_code}' "http://store-a:8080/healthz"); \
          [ "$code" = 200 ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
    check "the two-host example: the gateway on store-a answers" test "$code" = 200
else
    skip_check "the two-host example: the gateway on store-a answers" "curl is missing"
fi

# ---------------------------------------------------------------------------
#  Stop everything and read the logs

stop_all
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMP"/*.log; then
    not_ok "no sanitizer reports in the logs"
    grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TMP"/*.log | head -60
else
    ok "no sanitizer reports in the logs"
fi
if [ "$FAILED" != 0 ]; then
    for f in "$TMP"/*.log; do echo "---- $f"; tail -n 15 "$f"; done
fi
exit "$FAILED"
