#!/usr/bin/env bash
#  The gateway's guards with their defaults: a sequential client on loopback
#  (the original's test client: search, lookup, buy, 200 times) is never
#  rate-limited; one address holding many half-sent requests, or dribbling
#  its headers, cannot keep another address from being served, and the
#  header deadline closes its connections; an admin token file that is a
#  symbolic link is refused by the launcher and by the gateway.  The gateway
#  runs four event loops: the limits hold across them, and every one answers.
source "$(dirname "$0")/lib.sh"
bs_plan 11

bs_start_cluster --restock-period 0 --gateway-args "--header-timeout 3 --loops 4"
GW_PORT=$((BS_PORT + 80))
GW=http://127.0.0.1:$GW_PORT
until_true 30 test "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$GW/healthz")" = 200
bs --json restock 666 1000 > /dev/null

#  ---- The original's sequential client, default settings
python3 - "$GW_PORT" > "$BS_TMP/sequential" <<'PY'
import http.client, sys
port = int(sys.argv[1])
codes = {}
for i in range(200):
    for path in ("/search/distributed_systems", "/lookup/666", "/buy/666"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        key = "429" if r.status == 429 else str(r.status)
        codes[key] = codes.get(key, 0) + 1
        c.close()
print(" ".join("%s:%d" % kv for kv in sorted(codes.items())))
PY
log "sequential client, 600 requests: $(cat "$BS_TMP/sequential")"
check "a sequential client (search, lookup, buy, 200 times) with the default settings is never rate-limited" \
    test "$(cat "$BS_TMP/sequential")" = "200:600"

#  ---- Connections land on the four loops as the kernel spreads them: 40
#  kept-alive connections at once, five lookups each, are all answered (a
#  loop that did not serve would leave about a quarter of them hanging)
python3 - "$GW_PORT" > "$BS_TMP/spread" <<'PY'
import http.client, sys, threading
port = int(sys.argv[1])
codes = []
def client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(5):
        try:
            c.request("GET", "/lookup/666")
            r = c.getresponse()
            r.read()
            codes.append(r.status)
        except OSError:
            codes.append(0)
    c.close()
threads = [threading.Thread(target=client) for _ in range(40)]
for t in threads: t.start()
for t in threads: t.join()
print("%d %d" % (len(codes), codes.count(200)))
PY
log "40 connections at once, 5 lookups each: $(cat "$BS_TMP/spread") (answered, 200)"
check "with four loops, 40 connections at once are all served: 200 lookups, 200 answered 200" \
    test "$(cat "$BS_TMP/spread")" = "200 200"

#  ---- Many half-sent requests from one address (127.0.0.2), some of them
#  dribbling a byte a second, as a slow-loris attack would
cat > "$BS_TMP/attack.py" <<'PY'
import socket, sys, time
port, count, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for i in range(count):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    except OSError:
        pass
    s.setblocking(False)
    socks.append(s)
def closed(s):
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
time.sleep(1)
refused = sum(closed(s) for s in socks)
open(ready, "w").write("%d\n" % refused)
start = time.time()
open_socks = [s for s in socks if not closed(s)]
while open_socks and time.time() - start < 30:
    time.sleep(0.5)
    for s in open_socks[:10]:               # a few dribble a header byte
        try:
            s.send(b"X")
        except OSError:
            pass
    open_socks = [s for s in open_socks if not closed(s)]
print("%d %d %.1f" % (refused, len(open_socks), time.time() - start))
PY
python3 "$BS_TMP/attack.py" "$GW_PORT" 300 "$BS_TMP/attack.ready" > "$BS_TMP/attack.out" 2>&1 &
attacker=$!
until_true 20 test -s "$BS_TMP/attack.ready"
refused=$(cat "$BS_TMP/attack.ready")
log "300 half-sent connections from 127.0.0.2: $refused refused at once"
check "one address holds at most --max-connections-per-address (256) connections: the rest are refused" \
    test "$refused" -ge 44
code=$(curl -s -m 5 --interface 127.0.0.1 -o /dev/null -w '%{http_code}' "$GW/healthz")
check "meanwhile another address is served: /healthz answers 200" test "$code" = 200
code=$(curl -s -m 5 --interface 127.0.0.1 -o /dev/null -w '%{http_code}' "$GW/lookup/666")
check "...and a lookup too" test "$code" = 200
wait "$attacker"
read -r _ left seconds < "$BS_TMP/attack.out"
log "the attacker's connections: $left still open after $seconds s"
check "the header deadline (3 s) closed every half-sent connection, the dribbling ones too" \
    test "${left:-x}" = 0
check "...within a few seconds of it" awk -v s="${seconds:-99}" 'BEGIN { exit !(s <= 8) }'
check "the address may connect again once its connections are gone" \
    test "$(curl -s -m 5 --interface 127.0.0.2 -o /dev/null -w '%{http_code}' "$GW/healthz")" = 200

#  ---- An admin token file that is a symbolic link is never used
mkdir -p "$BS_TMP/planted"
echo "0123456789abcdef0123456789abcdef" > "$BS_TMP/planted/elsewhere"
ln -s "$BS_TMP/planted/elsewhere" "$BS_TMP/planted/admin-token"
"$BS_BIN/bookstore-cluster" --data "$BS_TMP/planted/data" --base-port $((BS_PORT + 200)) \
    --admin-token-file "$BS_TMP/planted/admin-token" > "$BS_TMP/planted.log" 2>&1 &
launcher=$!
until_true 20 bash -c "! kill -0 $launcher 2> /dev/null"
if kill -0 "$launcher" 2> /dev/null; then
    kill -TERM "$launcher"
    status=running
else
    wait "$launcher"
    status=$?
fi
check "the launcher refuses an admin token path that is a symbolic link, and says so" \
    test "$status:$(grep -c 'symbolic link' "$BS_TMP/planted.log")" = 1:1
ln -s "$BS_TMP/planted/absent" "$BS_TMP/planted/dangling"
"$BS_BIN/bookstore-cluster" --data "$BS_TMP/planted/data2" --base-port $((BS_PORT + 200)) \
    --admin-token-file "$BS_TMP/planted/dangling" > "$BS_TMP/planted2.log" 2>&1 &
launcher=$!
until_true 20 bash -c "! kill -0 $launcher 2> /dev/null"
kill -0 "$launcher" 2> /dev/null && kill -TERM "$launcher"
wait "$launcher"
"$BS_BIN/bookstore-gateway" --listen 127.0.0.1:0 --admin-token-file "$BS_TMP/planted/admin-token" \
    > "$BS_TMP/planted3.log" 2>&1
status=$?
check "no token was written through a dangling link, and the gateway itself refuses to read through one" \
    test "$(test -e "$BS_TMP/planted/absent" && echo written || echo none):$status:$(grep -c 'symbolic link' "$BS_TMP/planted3.log")" = none:2:1

bs_stop_cluster
