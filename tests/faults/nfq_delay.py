#!/usr/bin/env python3
"""Delays and reorders packets from an iptables NFQUEUE, in userspace.

    nfq_delay.py --queue N [--delay MS] [--jitter MS] [--reorder FRACTION] [--seed S]

Speaks the nfnetlink_queue protocol over an AF_NETLINK socket (standard
library only): binds queue N in copy-packet mode (only the first bytes are
copied: the verdict needs just the packet id), then, for each packet, holds
its verdict:
  - most packets are released DELAY +- JITTER ms after they arrived, in
    arrival order (a packet never leaves before one that came earlier, as on
    a real link with a variable queueing delay);
  - a fraction REORDER of them skip the queue: released after a short delay
    (0..DELAY/4 ms), so they overtake the packets held before them.
Verdicts are NF_ACCEPT, so the packet goes on to the next table's hook
(where the loss and duplicate rules are). Prints 'nfq: ready' once bound,
and counts on SIGTERM/exit. Must run in the network namespace whose queue it
serves (ip netns exec NS nfq_delay.py ...), as root.
"""

import argparse
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQNL_COPY_PACKET = 2
NF_ACCEPT = 1
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NLMSG_DONE = 3
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5


def attr(kind, payload):
    """One netlink attribute, padded to 4 bytes."""
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


def message(kind, queue, attrs, seq=0, flags=NLM_F_REQUEST):
    """nlmsghdr + nfgenmsg (AF_UNSPEC, version 0, queue number big-endian) + attrs."""
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def verdict(queue, packet_id, what=NF_ACCEPT):
    return message(NFQNL_MSG_VERDICT, queue, [attr(NFQA_VERDICT_HDR, struct.pack("!II", what, packet_id))])


def parse_attrs(data):
    attrs, off = {}, 0
    while off + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, off)
        if length < 4:
            break
        attrs[kind & 0x7FFF] = data[off + 4 : off + length]
        off += (length + 3) & ~3
    return attrs


def configure(sock, queue, maxlen):
    """Binds the queue, copy-packet mode (64 bytes), a long queue; checks each ACK."""
    requests = [
        [attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_UNBIND, socket.AF_INET))],
        [attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET))],
        [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 64, NFQNL_COPY_PACKET))],
        [attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))],
    ]
    for seq, attrs in enumerate(requests, 1):
        sock.send(message(NFQNL_MSG_CONFIG, queue, attrs, seq, NLM_F_REQUEST | NLM_F_ACK))
        while True:
            reply = sock.recv(65536)
            length, kind, _, rseq, _ = struct.unpack_from("=IHHII", reply)
            if kind == NLMSG_ERROR and rseq == seq:
                (err,) = struct.unpack_from("=i", reply, 16)
                # UNBIND of a queue nobody holds fails harmlessly.
                if err and seq != 1:
                    sys.exit(f"nfq: config step {seq} failed: {os.strerror(-err)}")
                break


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queue", type=int, required=True)
    p.add_argument("--delay", type=float, default=40.0, help="ms")
    p.add_argument("--jitter", type=float, default=10.0, help="ms, uniform +-")
    p.add_argument("--reorder", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--maxlen", type=int, default=65536)
    args = p.parse_args()
    rng = random.Random(args.seed)

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    configure(sock, args.queue, args.maxlen)
    sock.setblocking(False)

    counts = {"packets": 0, "reordered": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("nfq: ready", flush=True)

    held = []  # heap of (release time, arrival number, packet id)
    last_in_order = 0.0  # release time of the latest in-order packet
    arrivals = 0
    delay, jitter = args.delay / 1000, args.jitter / 1000
    while not stop:
        now = time.monotonic()
        timeout = max(0.0, held[0][0] - now) if held else 0.5
        try:
            readable, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        if readable:
            now = time.monotonic()
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                except InterruptedError:
                    continue
                off = 0
                while off + 16 <= len(data):
                    length, kind, _, _, _ = struct.unpack_from("=IHHII", data, off)
                    if length < 16:
                        break
                    if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                        hdr = parse_attrs(data[off + 20 : off + length]).get(NFQA_PACKET_HDR)
                        if hdr:
                            (packet_id,) = struct.unpack_from("!I", hdr)
                            arrivals += 1
                            if rng.random() < args.reorder:
                                release = now + rng.uniform(0, delay / 4)
                                counts["reordered"] += 1
                            else:
                                release = max(last_in_order, now + rng.uniform(delay - jitter, delay + jitter))
                                last_in_order = release
                            heapq.heappush(held, (release, arrivals, packet_id))
                    off += (length + 3) & ~3
        now = time.monotonic()
        out = []
        while held and held[0][0] <= now:
            _, _, packet_id = heapq.heappop(held)
            out.append(verdict(args.queue, packet_id))
            counts["packets"] += 1
        # Several verdicts per datagram; a datagram stays well under 64 KiB.
        for i in range(0, len(out), 512):
            try:
                sock.send(b"".join(out[i : i + 512]))
            except OSError as e:
                print(f"nfq: verdict failed: {e}", file=sys.stderr, flush=True)
    for _, _, packet_id in held:  # let what is still held go
        try:
            sock.send(verdict(args.queue, packet_id))
        except OSError:
            pass
    print(f"nfq: {counts['packets']} packets, {counts['reordered']} reordered", flush=True)


if __name__ == "__main__":
    main()
