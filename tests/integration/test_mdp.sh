#!/usr/bin/env bash
#  A standard 7/MDP client, written from the spec and PROTOCOL.md alone
#  (tests/mdp/mdp_client.py), gets the documented answer to every kind of
#  request: every reply names the service asked, errors are readable,
#  immediate when nothing can change them, and carry the request's rid, and
#  a malformed request gets the same answer whether the cache holds its key
source "$(dirname "$0")/lib.sh"
bs_plan 25
PY=
for p in python3 /usr/bin/python3; do
    "$p" -c 'import zmq, msgpack' 2> /dev/null && { PY=$p; break; }
done
[ -n "$PY" ] || bs_skip_rest "needs python3 with pyzmq and msgpack"

keys=$BS_TMP/keys
"$BS_BIN/bookstore" keygen "$keys" > /dev/null
export BS_KEYS=$keys
bs_start_cluster --restock-period 0 --keys "$keys"

#  mdp [client options] SERVICE BODY...: one JSON line per reply
mdp() { "$PY" "$BS_ROOT/tests/mdp/mdp_client.py" --keys "$keys" "tcp://127.0.0.1:$BS_PORT" "$@"; }
#  holds FILTER JSON: the reply (a JSON line) satisfies the jq filter
holds() { [ -n "$2" ] && jq -e "$1" <<< "$2" > /dev/null 2>&1; }
#  error SERVICE BODY: the code of the error a standard client reads
error() { mdp "$@" | jq -r '.reply | select(.ok == false) | .error'; }

#  Every documented request kind, and its documented answer
out=$(mdp catalog '{"op": "lookup", "item": 666}')
check "lookup: the book, with the request's rid, from service catalog" \
    holds '.service == "catalog" and .reply.ok and .reply.rid == .sent and .reply.item == 666
           and (.reply | has("title") and has("topic") and has("cost") and has("stock") and has("version") and has("seq"))' "$out"
out=$(mdp catalog '{"op": "search", "topic": "distributed_systems"}')
check "search: the topic's books" \
    holds '.reply.ok and .reply.rid == .sent and .reply.topic == "distributed_systems"
           and ([.reply.items[].item] | index(666) != null)' "$out"
out=$(mdp catalog '{"op": "list"}')
check "list: every book" holds '.reply.ok and .reply.rid == .sent and (.reply.items | length) >= 7' "$out"
out=$(mdp order '{"op": "buy", "item": 666}')
order=$(jq -r '.reply.order_id' <<< "$out")
check "buy: an order whose id is o, the rid's time and a digest, never the rid itself" \
    holds '.reply.ok and .reply.rid == .sent and (.sent as $rid | .reply.order_id | test("^o[0-9a-f]{32}$") and startswith("o" + $rid[0:12]) and (contains($rid[12:]) | not)) and .reply.item == 666' "$out"
rid=$(jq -r .sent <<< "$out")
out=$(mdp order "{\"op\": \"buy\", \"item\": 846, \"rid\": \"hex:$rid\"}")
check "a buy of another item under a used rid: the first buy's answer" \
    holds "(.reply.ok and .reply.order_id == \"$order\" and .reply.item == 666)" "$out"
out=$(mdp order '{"op": "orders", "item": 666}')
check "orders: the book's orders, the buy among them" \
    holds "(.reply.ok and ([.reply.orders[].order_id] | index(\"$order\") != null) and (.reply.more | type) == \"boolean\")" "$out"
out=$(mdp broker '{"op": "status"}')
check "status: the nodes and the broker" \
    holds '.reply.ok and .reply.rid == .sent and ([.reply.nodes[] | select(.alive)] | length) == 4
           and .reply.brokers[0].id == "broker"' "$out"
out=$(mdp catalog '{"op": "set_price", "item": 666, "cost": 42}')
check "set_price with a client key: forbidden, with a sentence and the rid" \
    holds '.reply.ok == false and .reply.error == "forbidden" and (.reply.message | length) > 0 and .reply.rid == .sent' "$out"
out=$(mdp --cert "$keys/admins/admin" catalog '{"op": "set_price", "item": 666, "cost": 42}')
check "...and done for an admin key" holds '.reply.ok and .reply.cost == 42' "$out"
out=$(mdp order '{"op": "lookup", "item": 666}')
check "an op of another service: unknown_op, with the rid" \
    holds '.service == "order" and .reply.error == "unknown_op" and .reply.rid == .sent' "$out"

#  Every reply carries exactly the service frame of its request (the client
#  exits 2 on any other)
out=$(mdp catalog@catalog-1 '{"op": "lookup", "item": 666}')
check "catalog@catalog-1: the reply names catalog@catalog-1" holds '.reply.ok and .reply.item == 666' "$out"
out=$(mdp broker@broker '{"op": "status"}')
check "broker@broker: the reply names broker@broker" holds '.reply.ok and (.reply.nodes | length) == 4' "$out"
out=$(mdp --timeout-ms 1500 nosuch '{"op": "lookup", "item": 666}')
check "an unknown service: unknown_service, readable, with the rid" \
    holds '.reply.error == "unknown_service" and .reply.rid == .sent' "$out"

#  A node that does not exist is an error at once (the client waits less
#  than the broker's request timeout); a known node that is down is not
out=$(mdp --timeout-ms 1500 catalog@nobody '{"op": "lookup", "item": 666}')
check "catalog@nobody: unknown_node at once, with a sentence and the rid" \
    holds '.reply.error == "unknown_node" and (.reply.message | length) > 0 and .reply.rid == .sent' "$out"
out=$(mdp --timeout-ms 1500 order@catalog-1 '{"op": "orders"}')
check "order@catalog-1 (a node of another service): unknown_node" holds '.reply.error == "unknown_node"' "$out"

#  Validation errors carry the rid, so that a pipelining client can match them
out=$(mdp catalog '{"op": "lookup", "item": 0}')
check "a lookup of item 0: bad_field, with the rid" holds '.reply.error == "bad_field" and .reply.rid == .sent' "$out"
out=$(mdp catalog '{"op": "lookup", "item": "666"}')
check "a field of the wrong type: bad_field, with the rid" \
    holds '.reply.error == "bad_field" and .reply.rid == .sent' "$out"
out=$(mdp --dealer order '{"op": "buy", "item": 666}' '{"op": "buy", "item": -3}' '{"op": "orders", "limit": 0}' \
          '{"op": "buy", "item": 666, "cost": 1}' '{"op": "buy"}')
check "five requests pipelined on a DEALER, four of them bad: each reply matched to its request by rid" \
    test "$(jq -r '.reply.error // "ok"' <<< "$out" | sort | tr '\n' ' ')" = "bad_field bad_field bad_field missing_field ok "

#  The same malformed request gets the same answer on a cache hit and a miss
mdp catalog '{"op": "lookup", "item": 666}' > /dev/null
hits=$(bs --json status | jq .cache.hits)
mdp catalog '{"op": "lookup", "item": 666}' > /dev/null
check "item 666 is in the cache" test "$(bs --json status | jq .cache.hits)" = $((hits + 1))
check "a lookup with a field it does not take: bad_field on a hit and on a miss" \
    test "$(error catalog '{"op": "lookup", "item": 666, "topic": "x"}'):$(error catalog '{"op": "lookup", "item": 4711, "topic": "x"}')" \
    = "bad_field:bad_field"
check "a lookup with a duplicate key: bad_field on a hit and on a miss" \
    test "$(error catalog '{"op": "lookup", "item": 666, "item": 666}'):$(error catalog '{"op": "lookup", "item": 4711, "item": 4711}')" \
    = "bad_field:bad_field"
mdp catalog '{"op": "search", "topic": "distributed_systems"}' > /dev/null
check "a search with a field it does not take: bad_field on a hit and on a miss" \
    test "$(error catalog '{"op": "search", "topic": "distributed_systems", "item": 1}'):$(error catalog '{"op": "search", "topic": "nothing_here", "item": 1}')" \
    = "bad_field:bad_field"

#  The CLI's status, for people: each node's role, epoch, seq, lag and
#  whether it is in sync, as the monitor shows them
out=$(bs status)
check "bookstore status shows each node's role, epoch, seq, lag and in-sync" \
    test "$(grep -cE '^(catalog|order)-[0-9]+ +(catalog|order) +(primary|follower) +yes +[0-9]+ +[0-9]+ +[0-9]+ +yes ' <<< "$out"):$(head -1 <<< "$out" | tr -s ' ')" \
    = "4:NODE SERVICE ROLE ALIVE EPOCH SEQ LAG IN-SYNC INFLIGHT SERVED"

#  A known node that is down: the request waits for it, then unavailable
node=$(bs_pid catalog-2)
kill -STOP "$node"
bs_wait_dead catalog-2 20
out=$(mdp --timeout-ms 10000 catalog@catalog-2 '{"op": "lookup", "item": 666}')
kill -CONT "$node"
check "catalog@catalog-2 while it is down: unavailable, as before" \
    holds '.reply.error == "unavailable" and .reply.rid == .sent' "$out"
