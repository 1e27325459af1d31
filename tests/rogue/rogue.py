#!/usr/bin/env python3
"""rogue - attackers against a bookstore cluster, for tests/integration/test_rogue.sh.

Each command plays one attack and prints one JSON line saying what it got;
the test script asserts on that and on the cluster's own state.

  client EP OP ITEM [--cert CERT --server SERVERCERT]
        one request (op, item) on a broker's client port, as a client
        would send it; prints the reply (or {"timeout": true})
  takeover EP ID SERVICE SECONDS --cert CERT --server SERVERCERT
        a node connection with the routing id ID (another node's), saying
        READY as ID and heartbeating; answers every request it gets with a
        forged ok reply; prints how many requests it got
  forge EP SECONDS --cert CERT --server SERVERCERT
        an unregistered node connection that sends REPLY frames with made-up
        tokens; prints how many it sent
  ack EP ID PARTITION EPOCH --cert CERT --server SERVERCERT
        a follower calling itself ID that acks PARTITION far ahead on a
        primary's sync socket
  flood EP SECONDS TOPIC
        a client that sends searches (cached, and the largest catalog
        replies) flat out and never reads; prints how many it sent
"""
import json
import os
import re
import sys
import time

import msgpack
import zmq

MDPC = b"MDPC01"
MDPW = b"MDPW01"
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"


def load_cert(path):
    """(public, secret) of a czmq certificate: its _secret file has both"""
    keys = {}
    with open(path + "_secret") as f:
        for line in f:
            m = re.match(r'\s*(public|secret)-key\s*=\s*"(.*)"', line)
            if m:
                keys[m.group(1)] = m.group(2).encode()
    return keys["public"], keys["secret"]


def server_key(path):
    with open(path) as f:
        for line in f:
            m = re.match(r'\s*public-key\s*=\s*"(.*)"', line)
            if m:
                return m.group(1).encode()
    raise SystemExit("no public key in " + path)


def socket(ctx, kind, args, identity=None):
    sock = ctx.socket(kind)
    sock.linger = 0
    sock.sndhwm = 0 if kind == zmq.DEALER else 1000
    if identity:
        sock.identity = identity.encode()
    if args.get("cert"):
        sock.curve_publickey, sock.curve_secretkey = load_cert(args["cert"])
        sock.curve_serverkey = server_key(args["server"])
    return sock


def options(argv):
    positional, named = [], {}
    i = 0
    while i < len(argv):
        if argv[i].startswith("--"):
            named[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            positional.append(argv[i])
            i += 1
    return positional, named


def body(op, **fields):
    fields["op"] = op
    fields["rid"] = os.urandom(16)
    return msgpack.packb(fields, use_bin_type=True)


def cmd_client(ctx, pos, named):
    ep, op, item = pos[0], pos[1], int(pos[2])
    sock = socket(ctx, zmq.DEALER, named)
    sock.connect(ep)
    service = b"catalog" if op in ("lookup", "decrement", "restock", "set_price") else b"order"
    sock.send_multipart([b"", MDPC, service, body(op, item=item, count=1) if op == "restock"
                         else body(op, item=item)])
    if sock.poll(2000):
        frames = sock.recv_multipart()
        print(json.dumps(msgpack.unpackb(frames[-1], raw=False), default=repr))
    else:
        print(json.dumps({"timeout": True}))


def status_body(node_id, service):
    return msgpack.packb({"op": "node_status", "id": node_id, "service": service, "partitions": [],
                          "ready": True}, use_bin_type=True)


def cmd_takeover(ctx, pos, named):
    ep, node_id, service, seconds = pos[0], pos[1], pos[2], float(pos[3])
    sock = socket(ctx, zmq.DEALER, named, identity=node_id)
    sock.connect(ep)
    sock.send_multipart([b"", MDPW, HEARTBEAT, status_body(node_id, service)])
    sock.send_multipart([b"", MDPW, READY, service.encode(), node_id.encode(), status_body(node_id, service)])
    got, answered = 0, 0
    deadline = time.time() + seconds
    next_beat = 0
    while time.time() < deadline:
        if time.time() >= next_beat:
            sock.send_multipart([b"", MDPW, HEARTBEAT, status_body(node_id, service)])
            next_beat = time.time() + 0.05
        if not sock.poll(20):
            continue
        frames = sock.recv_multipart()
        if len(frames) >= 6 and frames[2] == REQUEST:
            got += 1
            token = frames[3]
            forged = msgpack.packb({"ok": True, "item": 666, "title": "FORGED", "topic": "forged",
                                    "cost": 1, "stock": 424242}, use_bin_type=True)
            sock.send_multipart([b"", MDPW, REPLY, token, b"", forged])
            answered += 1
    print(json.dumps({"requests": got, "answered": answered}))


def cmd_forge(ctx, pos, named):
    ep, seconds = pos[0], float(pos[1])
    sock = socket(ctx, zmq.DEALER, named)
    sock.connect(ep)
    forged = msgpack.packb({"ok": True, "item": 666, "title": "FORGED", "topic": "forged", "cost": 1,
                            "stock": 424242}, use_bin_type=True)
    sent = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        #  slot index, generation, incarnation: the first slots, low
        #  generations, and an incarnation we cannot know
        for index in range(4):
            for gen in range(1, 4):
                token = index.to_bytes(4, "little") + gen.to_bytes(4, "little") + os.urandom(8)
                sock.send_multipart([b"", MDPW, REPLY, token, b"", forged])
                sent += 1
        time.sleep(0.01)
    print(json.dumps({"sent": sent}))


def cmd_ack(ctx, pos, named):
    ep, node_id, partition, epoch = pos[0], pos[1], pos[2], int(pos[3])
    sock = socket(ctx, zmq.DEALER, named, identity=node_id)
    sock.connect(ep)
    for _ in range(20):
        sock.send(msgpack.packb({"op": "ack", "partition": partition, "epoch": epoch, "seq": 10 ** 12,
                                 "id": node_id}, use_bin_type=True))
        time.sleep(0.05)
    print(json.dumps({"sent": 20}))


def cmd_flood(ctx, pos, named):
    ep, seconds, topic = pos[0], float(pos[1]), pos[2]
    sock = socket(ctx, zmq.DEALER, named)
    sock.sndhwm = 1000
    sock.rcvhwm = 1000      #  what we never read stays in the broker's queues
    sock.connect(ep)
    #  One body for every request: a cached reply echoes its rid, and the
    #  flood goes as fast as this process can send
    request = body("search", topic=topic)
    sent = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        for _ in range(1000):
            try:
                sock.send(b"", zmq.SNDMORE | zmq.NOBLOCK)
                sock.send(MDPC, zmq.SNDMORE)
                sock.send(b"catalog", zmq.SNDMORE)
                sock.send(request)
                sent += 1
            except zmq.Again:
                time.sleep(0.001)
                break
    print(json.dumps({"sent": sent}))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    pos, named = options(sys.argv[2:])
    ctx = zmq.Context()
    {"client": cmd_client, "takeover": cmd_takeover, "forge": cmd_forge, "ack": cmd_ack,
     "flood": cmd_flood}[sys.argv[1]](ctx, pos, named)
    ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
