#!/usr/bin/env python3
"""A standard 7/MDP client (https://rfc.zeromq.org/spec/7/), written from the
spec and schema/PROTOCOL.md alone, as a stranger to the project would.

MDP/Client: a request is [empty] "MDPC01" service body, and so is the reply;
a REQ socket adds and strips the empty frame itself, a DEALER must send it.
As the Guide's mdcliapi does, a reply whose header is not "MDPC01" or whose
service frame is not the service asked is a protocol violation.

Bodies are one msgpack map (PROTOCOL.md, "Bodies"); every request carries a
16-byte rid (the Unix time in milliseconds, big-endian, in the first 6
bytes, 10 random bytes after it).

Command line (one JSON line on stdout per reply):

  mdp_client.py [options] ENDPOINT SERVICE BODY...

  BODY is a JSON object.  Its keys are sent in the order given, duplicates
  included; a string "hex:..." is sent as bytes.  A fresh rid is added
  unless the body has one or --no-rid is given.  Several BODYs are sent at
  once on a DEALER (pipelined) and each reply is matched to its request by
  its rid; with one BODY the socket is a REQ unless --dealer.

  Output: {"service", "ms", "sent", "reply"}: the service asked, the
  milliseconds since the requests left, the rid of the request the reply
  answers, and the reply (bytes as hex).  Exit status:
  0 a reply came for every request; 2 a reply broke the protocol (wrong
  header, wrong service, a rid that names no request); 3 no reply in time.
"""
import argparse
import json
import os
import sys
import time

import msgpack
import zmq

MDPC = b"MDPC01"


class ProtocolError(Exception):
    pass


def new_rid():
    """Time first, then randomness: the layout PROTOCOL.md recommends"""
    return int(time.time() * 1000).to_bytes(6, "big") + os.urandom(10)


def pack_pairs(pairs):
    """A msgpack map from (key, value) pairs, in order, duplicates kept"""
    n = len(pairs)
    if n < 16:
        out = bytes([0x80 | n])
    else:
        out = b"\xde" + n.to_bytes(2, "big")
    for key, value in pairs:
        out += msgpack.packb(key) + msgpack.packb(value, use_bin_type=True)
    return out


def read_key(path, name):
    """A Z85 key from a CZMQ certificate file"""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(name + " ="):
                return line.split("=", 1)[1].strip().strip('"').encode()
    raise ValueError("no %s in %s" % (name, path))


class MdpClient:
    """One broker connection.  keys: a keys directory (CURVE), cert: the
    client's certificate in it (default clients/client)"""

    def __init__(self, endpoint, dealer=False, keys=None, cert=None):
        self.ctx = zmq.Context.instance()
        self.dealer = dealer
        self.socket = self.ctx.socket(zmq.DEALER if dealer else zmq.REQ)
        self.socket.linger = 0
        if keys:
            cert = cert or os.path.join(keys, "clients", "client")
            self.socket.curve_serverkey = read_key(os.path.join(keys, "broker"), "public-key")
            self.socket.curve_publickey = read_key(cert + "_secret", "public-key")
            self.socket.curve_secretkey = read_key(cert + "_secret", "secret-key")
        self.socket.connect(endpoint)

    def send(self, service, body):
        frames = [MDPC, service.encode(), body]
        if self.dealer:
            frames.insert(0, b"")
        self.socket.send_multipart(frames)

    def recv(self, service, timeout_ms):
        """The next reply's body; checks the envelope as the spec says"""
        if not self.socket.poll(timeout_ms):
            return None
        frames = self.socket.recv_multipart()
        if self.dealer:
            if not frames or frames[0] != b"":
                raise ProtocolError("the reply does not start with an empty frame")
            frames = frames[1:]
        if len(frames) < 3:
            raise ProtocolError("the reply has %d frames, at least 3 expected" % len(frames))
        if frames[0] != MDPC:
            raise ProtocolError("the reply's header is %r, not MDPC01" % frames[0])
        if frames[1] != service.encode():
            raise ProtocolError("the reply names service %r, the request asked %r" % (frames[1], service))
        if len(frames) != 3:
            raise ProtocolError("the reply has %d body frames, one expected" % (len(frames) - 2))
        return frames[2]


def printable(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable(v) for v in value]
    return value


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dealer", action="store_true", help="use a DEALER socket")
    parser.add_argument("--timeout-ms", type=int, default=5000, help="how long to wait for each reply")
    parser.add_argument("--no-rid", action="store_true", help="send no rid")
    parser.add_argument("--keys", help="keys directory: speak CURVE")
    parser.add_argument("--cert", help="the client's certificate (default KEYS/clients/client)")
    parser.add_argument("endpoint")
    parser.add_argument("service")
    parser.add_argument("bodies", nargs="+", metavar="BODY")
    args = parser.parse_args()

    requests = []
    for text in args.bodies:
        pairs = json.loads(text, object_pairs_hook=list)
        pairs = [(k, bytes.fromhex(v[4:]) if isinstance(v, str) and v.startswith("hex:") else v)
                 for k, v in pairs]
        if not args.no_rid and not any(k == "rid" for k, _ in pairs):
            pairs.append(("rid", new_rid()))
        rid = next((v for k, v in pairs if k == "rid"), None)
        requests.append((rid, pack_pairs(pairs)))

    client = MdpClient(args.endpoint, args.dealer or len(requests) > 1, args.keys, args.cert)
    start = time.monotonic()
    for _, body in requests:
        client.send(args.service, body)
    waiting = {rid.hex() if isinstance(rid, bytes) else None: rid for rid, _ in requests}
    try:
        for _ in requests:
            body = client.recv(args.service, args.timeout_ms)
            if body is None:
                print("mdp_client: no reply within %d ms" % args.timeout_ms, file=sys.stderr)
                return 3
            reply = msgpack.unpackb(body, raw=False)
            rid = reply.get("rid") if isinstance(reply, dict) else None
            key = rid.hex() if isinstance(rid, bytes) else None
            if len(requests) > 1 and key not in waiting:
                raise ProtocolError("a reply carries rid %r, which names no request waiting" % key)
            if len(requests) > 1:
                sent = waiting.pop(key)
            else:
                sent = requests[0][0]
            print(json.dumps({"service": args.service, "ms": int((time.monotonic() - start) * 1000),
                              "sent": printable(sent), "reply": printable(reply)}))
    except ProtocolError as e:
        print("mdp_client: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
