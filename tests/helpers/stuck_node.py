#!/usr/bin/env python3
"""stuck_node - a node whose loop stops reading its broker socket, and an
echo client, for tests/integration/test_stuck_node.sh.

  node EP SERVICE ID [--fill N]
        registers as node ID of SERVICE (READY with an id, as the
        bookstore's nodes send it) and heartbeats every 100 ms, but reads
        nothing: its queue at the broker fills.  To fill it at once it
        sends N requests (default 50,000) the node socket refuses, each
        answered with an error it leaves unread.  Meanwhile it says READY
        every 100 ms too, as a node that hears DISCONNECT now and then
        would: each READY is a chance for the broker to take it back.
        On SIGUSR1 it starts reading: it answers every REQUEST with its
        body (an echo) and every DISCONNECT with READY, as a node's
        mdpworker does.  Logs one line per event on stderr, flushed.
  client EP SERVICE SECONDS
        sends one request at a time for SECONDS (each waits up to 5 s for
        its answer) and prints {"sent", "answered"} as JSON: answered
        counts replies that carry the request's own body
"""
import json
import os
import signal
import sys
import time

import msgpack
import zmq

MDPC = b"MDPC01"
MDPW = b"MDPW01"
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"

draining = False


def log(text):
    print("stuck_node: %s" % text, file=sys.stderr, flush=True)


def on_usr1(signum, frame):
    global draining
    draining = True


def cmd_node(ep, service, node_id, fill):
    signal.signal(signal.SIGUSR1, on_usr1)
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    #  Small queues on this side, so that the broker's fills soon
    sock.rcvhwm = 10
    sock.rcvbuf = 4096
    sock.connect(ep)
    ready = [b"", MDPW, READY, service.encode(), node_id.encode()]
    sock.send_multipart(ready)
    log("ready")
    refused = [b"", MDPC, service.encode(), msgpack.packb({"op": "ping"})]
    for _ in range(fill):
        if draining:
            break
        sock.send_multipart(refused)
    log("sent %d requests it will not read the answers of" % fill)
    next_beat = 0.0
    answered = 0
    announced = False
    while True:
        now = time.monotonic()
        if now >= next_beat:
            sock.send_multipart([b"", MDPW, HEARTBEAT])
            if not draining:
                sock.send_multipart(ready)
            next_beat = now + 0.1
        if not draining:
            time.sleep(0.02)
            continue
        if not announced:
            log("reading")
            announced = True
        if not sock.poll(20):
            continue
        for _ in range(1000):      # then a heartbeat is due again
            if not sock.poll(0):
                break
            frames = sock.recv_multipart()
            if len(frames) < 3 or frames[1] != MDPW:
                continue
            if frames[2] == REQUEST and len(frames) >= 5:
                sock.send_multipart([b"", MDPW, REPLY, frames[3], b""] + frames[5:])
                answered += 1
                if answered == 1 or answered % 100 == 0:
                    log("answered %d request(s)" % answered)
            elif frames[2] == DISCONNECT:
                sock.send_multipart(ready)
                log("ready again")


def cmd_client(ep, service, seconds):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(ep)
    sent = answered = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent += 1
        body = msgpack.packb({"op": "ping", "rid": os.urandom(16), "n": sent})
        sock.send_multipart([b"", MDPC, service.encode(), body])
        if sock.poll(5000):
            frames = sock.recv_multipart()
            answered += len(frames) == 4 and frames[3] == body
        else:
            break
        time.sleep(0.02)
    print(json.dumps({"sent": sent, "answered": answered}))


def main():
    args = sys.argv[1:]
    if len(args) >= 4 and args[0] == "node":
        fill = int(args[5]) if len(args) >= 6 and args[4] == "--fill" else 50000
        cmd_node(args[1], args[2], args[3], fill)
    elif len(args) == 4 and args[0] == "client":
        cmd_client(args[1], args[2], float(args[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
