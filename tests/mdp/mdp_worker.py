#!/usr/bin/env python3
"""A standard 7/MDP worker (https://rfc.zeromq.org/spec/7/), written from the
spec alone, as a stranger to the project would: it offers one service and
answers every request with the request's own body frames (an echo).

MDP/Worker: every command is [empty] "MDPW01" command-byte, then
  READY       0x01  service name                       worker -> broker
  REQUEST     0x02  client address, empty, body...     broker -> worker
  REPLY       0x03  client address, empty, body...     worker -> broker
  HEARTBEAT   0x04  (nothing)                          both ways
  DISCONNECT  0x05  (nothing)                          both ways

Heartbeats as the spec's reference worker has them: one every
HEARTBEAT_INTERVAL (2500 ms); the broker is taken as gone after LIVENESS
(3) intervals without a word from it, and the worker reconnects (a new
socket, a new READY) after RECONNECT (2500 ms).  A DISCONNECT from the
broker is a refusal: no further command goes on that connection, and the
worker reconnects after RECONNECT.

Command line:

  mdp_worker.py [options] ENDPOINT SERVICE

Logs one line per event on stderr ("ready", "request", "disconnect",
"reconnect"), flushed at once, so that a test can wait for them.  Stops on
SIGTERM or SIGINT, saying DISCONNECT to the broker first.
"""
import argparse
import os
import signal
import sys
import time

import zmq

MDPW = b"MDPW01"
READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"


def read_key(path, name):
    """A Z85 key from a CZMQ certificate file"""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith(name + " ="):
                return line.split("=", 1)[1].strip().strip('"').encode()
    raise ValueError("no %s in %s" % (name, path))


def log(text):
    print("mdp_worker: %s" % text, file=sys.stderr, flush=True)


class MdpWorker:
    def __init__(self, endpoint, service, heartbeat_ms, liveness, reconnect_ms, keys=None, cert=None):
        self.ctx = zmq.Context.instance()
        self.endpoint = endpoint
        self.service = service.encode()
        self.heartbeat_ms = heartbeat_ms
        self.liveness = liveness
        self.reconnect_ms = reconnect_ms
        self.keys = keys
        self.cert = cert
        self.socket = None
        self.served = 0

    def send(self, command, *frames):
        self.socket.send_multipart([b"", MDPW, command] + list(frames))

    def connect(self):
        if self.socket:
            self.socket.close(0)
        self.socket = self.ctx.socket(zmq.DEALER)
        self.socket.linger = 0
        if self.keys:
            self.socket.curve_serverkey = read_key(os.path.join(self.keys, "broker"), "public-key")
            self.socket.curve_publickey = read_key(self.cert + "_secret", "public-key")
            self.socket.curve_secretkey = read_key(self.cert + "_secret", "secret-key")
        self.socket.connect(self.endpoint)
        self.send(READY, self.service)
        log("ready: offered service %s" % self.service.decode())
        self.broker_expiry = time.monotonic() + self.liveness * self.heartbeat_ms / 1000
        self.heartbeat_at = time.monotonic() + self.heartbeat_ms / 1000

    def run(self, stopping):
        self.connect()
        while not stopping():
            if self.socket.poll(self.heartbeat_ms):
                frames = self.socket.recv_multipart()
                self.broker_expiry = time.monotonic() + self.liveness * self.heartbeat_ms / 1000
                if len(frames) < 3 or frames[0] != b"" or frames[1] != MDPW:
                    log("dropped a message that is not MDPW01 (%d frames)" % len(frames))
                    continue
                command = frames[2]
                if command == REQUEST and len(frames) >= 6 and frames[4] == b"":
                    #  The reply carries the client address back, then the body
                    self.send(REPLY, frames[3], b"", *frames[5:])
                    self.served += 1
                    log("request %d answered (%d body frames)" % (self.served, len(frames) - 5))
                elif command == HEARTBEAT:
                    pass
                elif command == DISCONNECT:
                    log("disconnect: the broker refused or dropped this worker; reconnecting in %d ms"
                        % self.reconnect_ms)
                    time.sleep(self.reconnect_ms / 1000)
                    self.connect()
                    continue
                else:
                    log("dropped an invalid command %r" % command)
            elif time.monotonic() > self.broker_expiry:
                log("reconnect: the broker was silent for %d heartbeats" % self.liveness)
                time.sleep(self.reconnect_ms / 1000)
                self.connect()
                continue
            if time.monotonic() >= self.heartbeat_at:
                self.send(HEARTBEAT)
                self.heartbeat_at = time.monotonic() + self.heartbeat_ms / 1000
        self.send(DISCONNECT)
        self.socket.close(100)
        log("stopped after %d requests" % self.served)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heartbeat-ms", type=int, default=2500, help="heartbeat interval")
    parser.add_argument("--liveness", type=int, default=3, help="silent intervals before the broker is gone")
    parser.add_argument("--reconnect-ms", type=int, default=2500, help="pause before reconnecting")
    parser.add_argument("--keys", help="keys directory: speak CURVE")
    parser.add_argument("--cert", help="the worker's certificate (required with --keys)")
    parser.add_argument("endpoint")
    parser.add_argument("service")
    args = parser.parse_args()
    if args.keys and not args.cert:
        parser.error("--keys takes --cert, the worker's certificate")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    worker = MdpWorker(args.endpoint, args.service, args.heartbeat_ms, args.liveness, args.reconnect_ms,
                       args.keys, args.cert)
    worker.run(lambda: bool(stop))
    return 0


if __name__ == "__main__":
    sys.exit(main())
