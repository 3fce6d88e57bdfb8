#!/usr/bin/env python3
"""The network fault suite: the echo and io_board examples on broken networks.

    target/venv/bin/python tests/faults/faults.py [--case N]... [--mode threaded|event-loop]

Each case builds its own network (netlab.Net: two namespaces and a veth
pair, torn down afterwards), starts the example in the server namespace in
the given mode, impairs the link, and checks what the clients see and what
the server process holds (/proc/PID: threads, fds, RSS; ss: its sockets).
Every case runs against both server modes: a thread per client, and
--event-loop. Prints one line per case and mode, 'ok' or 'FAILED', with what
was measured and the time it took, then 'faults: N passed, M failed'.

Needs root; elsewhere every case is skipped, with a message saying so.
Standard library only (case 6 runs the FAQ programs, so use the
virtualenv's python, which has their libraries).
"""

import argparse
import base64
import json
import os
import random
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import netlab  # noqa: E402
from netlab import BINARY, CLOSE, LINGER, TEXT, WS, Net, ProtocolError, Server  # noqa: E402

MODES = ["threaded", "event-loop"]
MIB = 1 << 20


class Failed(Exception):
    pass


class Case:
    """One case in one mode: its checks and what it measured."""

    def __init__(self, mode):
        self.mode = mode
        self.failures = []
        self.notes = []

    def check(self, ok, what):
        if not ok:
            self.failures.append(what)
        return ok

    def note(self, text):
        self.notes.append(text)

    def mode_args(self):
        return ["--event-loop"] if self.mode == "event-loop" else []


def example(name):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "examples", name)


def wait_all(threads, timeout):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def settle(server, base, timeout=5.0):
    """Waits for the server's threads and fds to come back to base; returns the seconds or None."""
    return server.wait_until(
        lambda: server.threads() <= base["threads"] and server.fds() <= base["fds"], timeout)


def warm_baseline(net, server, source=None):
    """One client served and gone, then the server's counts: every worker
    thread is up and the allocator has seen a connection."""
    sock = net.connect(server.port, source)
    ws = WS(sock, net.server_ip)
    ws.send_text("warm-up")
    while (m := ws.recv()) is not None and m[0] != TEXT:
        pass
    ws.close()
    sock.close()
    server.wait_until(lambda: not server.connections(), 5)
    return server.counts()


def check_back_to_base(c, server, base, rss_slack_kib=1024, timeout=5.0):
    took = settle(server, base, timeout)
    now = server.counts()
    c.check(took is not None,
            f"server back to its baseline within {timeout:.0f} s: threads {now['threads']} "
            f"(was {base['threads']}), fds {now['fds']} (was {base['fds']})")
    c.check(now["rss_kib"] <= base["rss_kib"] + rss_slack_kib,
            f"RSS back within {rss_slack_kib} KiB of baseline: {now['rss_kib']} KiB (was {base['rss_kib']} KiB)")
    return now


class Echoer:
    """A client echoing small text messages in the background, to show others are served."""

    def __init__(self, net, port, source, every=0.05):
        self.sock = net.connect(port, source)
        self.ws = WS(self.sock, net.server_ip)
        self.every = every
        self.stop = threading.Event()
        self.count = 0
        self.max_rtt = 0.0
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stop.is_set():
                text = f"still here {self.count}"
                start = time.monotonic()
                self.ws.send_text(text)
                got = self.ws.recv()
                if got != (TEXT, text.encode()):
                    raise ProtocolError(f"echo {self.count}: got {got!r:.80}")
                self.max_rtt = max(self.max_rtt, time.monotonic() - start)
                self.count += 1
                self.stop.wait(self.every)
        except Exception as e:  # noqa: BLE001 - reported by the case
            self.error = f"{type(e).__name__}: {e}"

    def finish(self, c, max_rtt=1.0):
        self.stop.set()
        self.thread.join(10)
        c.check(self.error is None, f"the other client kept echoing: {self.error}")
        c.check(self.count > 0, "the other client got echoes")
        c.check(self.max_rtt <= max_rtt,
                f"the other client's echoes took at most {max_rtt} s: slowest {self.max_rtt:.2f} s")
        if self.error is None:
            try:
                self.ws.close()
            except OSError:
                pass
        self.sock.close()
        return f"other client: {self.count} echoes, slowest {self.max_rtt * 1000:.0f} ms"


def link_note(net):
    n = net.impairment_counts()
    return (f"link: {n['held']} packets delayed, {n['dropped']} dropped "
            f"({100 * n['dropped'] / max(1, n['held']):.1f} %), {n['duplicated']} duplicated")


# --- case 1 -----------------------------------------------------------------

def message_sizes(rng, n):
    """Sizes 1 B..64 KiB, uniform, with every frame-length boundary among them.
    FAULTS_SIZES=log draws them log-uniform instead (each power-of-two band as
    likely: a fifth of the bytes, for a quick run)."""
    if os.environ.get("FAULTS_SIZES") == "log":
        sizes = [min(65536, max(1, round(2 ** rng.uniform(0, 16)))) for _ in range(n)]
    else:
        sizes = [rng.randint(1, 65536) for _ in range(n)]
    for edge in (1, 125, 126, 127, 65535, 65536):
        sizes[rng.randrange(n)] = edge
    return sizes


def payload(rng, k, size, text):
    """Message k: its sequence number first (as far as it fits), then random bytes."""
    if text:
        body = f"{k:08d}".encode() + base64.b64encode(rng.randbytes(size))
    else:
        body = struct.pack("!I", k) + rng.randbytes(size)
    return body[:size]


def case_lossy_echo(c, clients=20, messages=500):
    """1. A lossy, slow, reordering link: every echo arrives once, in order, byte-exact."""
    with Net("lossy") as net:
        server = Server(net, example("echo"), [f"{net.server_ip}:0", *c.mode_args()])
        net.lossy(delay=40, jitter=10, loss=0.05, reorder=0.10, dup=0.01)
        errors, done, bytes_total = [], [], [0]
        lock = threading.Lock()

        def client(i):
            try:
                rng = random.Random(7919 * i + 1)
                sizes = message_sizes(rng, messages)
                sock = net.connect(server.port, timeout=60)
                ws = WS(sock, net.server_ip)
                sent = []

                def writer():
                    for k, size in enumerate(sizes):
                        text = k % 7 == 3
                        sent.append((TEXT if text else BINARY, payload(rng, k, size, text)))
                        ws.send(*sent[-1])

                w = threading.Thread(target=writer, daemon=True)
                w.start()
                for k in range(messages):
                    got = ws.recv()
                    if got is None or got[0] == "close":
                        raise ProtocolError(f"client {i}: {'EOF' if got is None else f'close {got[1]}'} "
                                            f"after {k} of {messages} echoes")
                    if got != sent[k]:
                        seq = struct.unpack("!I", got[1][:4])[0] if len(got[1]) >= 4 else None
                        raise ProtocolError(
                            f"client {i}: echo {k} is not message {k} ({len(sent[k][1])} B): got "
                            f"{len(got[1])} B, opcode {got[0]}, starting with sequence {seq}")
                w.join()
                ws.send(CLOSE, struct.pack("!H", 1000))
                last = ws.recv()
                if last != ("close", 1000):
                    raise ProtocolError(f"client {i}: after the last echo, expected the close reply, "
                                        f"got {last!r:.60}")
                sock.close()
                with lock:
                    done.append(i)
                    bytes_total[0] += sum(sizes)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

        start = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        finished = wait_all(threads, 150)
        took = time.monotonic() - start
        c.check(finished, f"all clients finished within 150 s ({len(done)} of {clients} done)")
        c.check(not errors, "every echo arrived once, in order, byte-exact: " + "; ".join(errors[:3]))
        c.check(len(done) == clients, f"{len(done)} of {clients} clients completed")
        c.check(server.alive(), "server still running")
        spread = "log-uniform" if os.environ.get("FAULTS_SIZES") == "log" else "uniform"
        c.note(f"{clients} clients x {messages} messages (1 B..64 KiB {spread}, "
               f"{bytes_total[0] / MIB:.1f} MiB each way) echoed in {took:.1f} s")
        c.note(link_note(net))


# --- case 2 -----------------------------------------------------------------

def case_blackhole(c, keepalive=1):
    """2. Blackhole after the first exchange: the server frees the connection in time."""
    with Net("bh") as net:
        server = Server(net, example("echo"),
                        [f"{net.server_ip}:0", "--keepalive", keepalive, *c.mode_args()])

        def exchange(source):
            sock = net.connect(server.port, source)
            ws = WS(sock, net.server_ip)
            ws.send(BINARY, os.urandom(300 << 10))  # buffers grow on both sides
            got = ws.recv()
            if got is None or got[0] != BINARY or len(got[1]) != 300 << 10:
                raise Failed(f"first exchange failed: {got!r:.60}")
            return sock, ws

        # Baseline after the same exchange done cleanly, so allocator state matches.
        sock, ws = exchange(net.client_ip)
        ws.close()
        sock.close()
        server.wait_until(lambda: not server.connections(), 5)
        base = server.counts()

        victim, _ = exchange(net.client_ip)
        net.blackhole(net.client_ip)
        t0 = time.monotonic()
        other = Echoer(net, server.port, net.extra_ips[0], every=0.1)
        # ping after `keepalive` of silence, noticed within a tick (= keepalive),
        # `keepalive` for the pong, a tick again, then the close linger.
        bound = 4 * keepalive + LINGER + 0.5
        freed = server.wait_until(lambda: not server.holds(victim), bound + 5)
        c.check(freed is not None and freed <= bound,
                f"blackholed connection freed within {bound:.1f} s "
                f"(keepalive {keepalive}+{keepalive} s, ticks, {LINGER:.0f} s linger): "
                + (f"{freed:.2f} s" if freed is not None else f"still held after {bound + 5:.1f} s"))
        other_note = other.finish(c)
        now = check_back_to_base(c, server, base)
        c.note(f"freed after {freed:.2f} s (bound {bound:.1f} s)" if freed is not None else "never freed")
        c.note(other_note)
        c.note(f"threads {base['threads']}->{now['threads']}, fds {base['fds']}->{now['fds']}, "
               f"RSS {base['rss_kib']}->{now['rss_kib']} KiB")
        victim.close()


# --- case 3 -----------------------------------------------------------------

def case_stops_reading(c, write_timeout=3, count=12):
    """3. A client that stops reading while 1 MiB echoes go out is dropped in time, cleanly."""
    with Net("stall") as net:
        server = Server(net, example("echo"),
                        [f"{net.server_ip}:0", "--write-timeout", write_timeout, *c.mode_args()])
        base = warm_baseline(net, server)
        other = Echoer(net, server.port, net.extra_ips[0])
        # A never reads again after the 101 and keeps sending 1 MiB messages.
        # B sends two, stops reading for 1.5 x write_timeout, reads 256 KiB
        # (the server has room again, mid-frame), stops for 1.5 x
        # write_timeout again, then reads to the end: the timeout must bound
        # the whole frame, not each write, and nothing may follow a cut frame.
        a = net.connect(server.port, net.client_ip, timeout=write_timeout + 15)
        b = net.connect(server.port, net.client_ip, timeout=write_timeout + 15)
        wa, wb = WS(a, net.server_ip), WS(b, net.server_ip)
        msgs = [random.Random(k).randbytes(MIB) for k in range(count)]
        sent = [0]

        def sender():
            try:
                for m in msgs:
                    a.sendall(netlab.frame(BINARY, m))
                    sent[0] += 1
            except OSError:
                pass

        t0 = time.monotonic()
        threading.Thread(target=sender, daemon=True).start()
        def b_sender():  # blocks once the server stops reading too
            try:
                b.sendall(netlab.frame(BINARY, msgs[0]) + netlab.frame(BINARY, msgs[1]))
            except OSError:
                pass

        threading.Thread(target=b_sender, daemon=True).start()
        b_data = []

        def b_reader():
            time.sleep(max(0.0, t0 + 1.5 * write_timeout - time.monotonic()))  # not reading
            first, end = netlab.read_all(b, 3, limit=256 << 10)
            if end == "limit":
                time.sleep(1.5 * write_timeout)  # not reading again
                rest, end = netlab.read_all(b, 3)
                first += rest
            b_data.append((first, end))

        rb = threading.Thread(target=b_reader, daemon=True)
        rb.start()
        bound = write_timeout + LINGER + 1.0
        released = release_times(server, {"A": a, "B": b}, t0, bound + 25)
        for name in ("A", "B"):
            took = released[name]
            c.check(took is not None and took <= bound,
                    f"{name}: client that stopped reading dropped within {bound:.1f} s (write_timeout "
                    f"{write_timeout} s + {LINGER:.0f} s linger + 1 s): "
                    + (f"{took:.2f} s" if took is not None else f"still held after {bound + 25:.0f} s"))
        dropped = released["A"]
        peak = server.hwm() - base["rss_kib"]
        for name, ws, data_end in (("A (never reads again)", wa, None), ("B (reads again)", wb, b_data)):
            if data_end is None:
                data, end = netlab.read_all(ws.sock, 3)
            else:
                rb.join(write_timeout + 30)
                data, end = data_end[0] if data_end else (b"", "nothing read")
            raw = bytes(ws.buf) + data
            try:
                got = netlab.parse_stream(raw, msgs)
                c.note(f"{name} then read {len(raw)} B: {got['frames']} echo frames"
                       + (f", the last cut at {got['partial_bytes']} B" if got["partial_bytes"] else "")
                       + (f", close {got['close']}" if got["close"] else ", no close frame")
                       + f", then {end}")
            except ProtocolError as e:
                c.check(False, f"what {name} read afterwards is well-formed: {e}")
        limit = 16 * 1024 + 512 + 2 * 1024  # max_message_size + 512 KiB, + 2 MiB of read buffers
        c.check(peak <= limit, f"peak RSS growth within {limit} KiB: {peak} KiB")
        c.note("dropped after: " + ", ".join(
            f"{k} {v:.2f} s" if v is not None else f"{k} never" for k, v in released.items()))
        c.note(f"A sent {sent[0]} of {count} 1 MiB messages; peak RSS +{peak} KiB")
        c.note(other.finish(c))
        a.close()
        b.close()
        check_back_to_base(c, server, base, rss_slack_kib=64 * 1024)


# --- case 4 -----------------------------------------------------------------

def status_json(outputs):
    zeros = ",".join("0" * 8)
    return f'{{"inputs":[{zeros}],"outputs":[{",".join(map(str, outputs))}]}}'.encode()


def unix_post(path, target, body):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n{body}"
              .encode())
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
    s.close()
    return reply.split(b" ", 2)[1] if reply.startswith(b"HTTP/1.1 ") else reply[:40]


class Member:
    """A hub member: reads every status (or stops reading), records what it sees."""

    def __init__(self, net, port, source, reads=True, rcvbuf=None, heartbeat=None):
        self.sock = net.connect(port, source, timeout=60, rcvbuf=rcvbuf)
        self.ws = WS(self.sock, net.server_ip)
        self.got = []
        self.closed_at = None
        self.end = None
        self.stop = threading.Event()
        first = self.ws.recv()  # the status on join
        self.got.append(first)
        if reads:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        if heartbeat:
            threading.Thread(target=self._beat, args=(heartbeat,), daemon=True).start()

    def _beat(self, every):
        """Unsolicited pongs (RFC 6455 5.5.3): heard by the server, never answered."""
        while not self.stop.wait(every):
            try:
                self.ws.send(netlab.PONG, b"")
            except OSError:
                return

    def _read(self):
        try:
            while True:
                m = self.ws.recv()
                if m is None:
                    self.end = "EOF"
                    break
                if m[0] == "close":
                    self.end = f"close {m[1]} {self.ws.close_reason!r}"
                    while self.ws.recv_frame() is not None:
                        pass
                    break
                self.got.append(m)
        except (OSError, ProtocolError) as e:
            self.end = f"{type(e).__name__}: {e}"
        self.closed_at = time.monotonic()


def release_times(server, socks, since, timeout, out=None, stop=None):
    """{name: seconds after `since` when the server stopped holding that socket, or None}.

    Fills `out` as it goes (for a watcher thread); ends early once `stop` is set."""
    addrs = {name: s.getsockname() for name, s in socks.items()}
    out = {} if out is None else out
    out.update({name: None for name in socks})
    while time.monotonic() - since <= timeout and not (stop and stop.is_set()):
        held = server.connections()
        now = time.monotonic() - since
        for name, addr in addrs.items():
            if out[name] is None and addr not in held:
                out[name] = now
        if all(v is not None for v in out.values()):
            break
        time.sleep(0.05)
    return out


def contiguous_prefix(got, expected):
    """How many of got match expected from the start, and whether all do."""
    n = 0
    for m, want in zip(got, expected):
        if m != (TEXT, want):
            break
        n += 1
    return n, n == len(got)


def case_slow_consumer(c, keep_up=600, flood=6000, keepalive=1):
    """4. Broadcast to a slow member and a stalled one: fast members get all, the others are closed."""
    tmp = tempfile.mkdtemp(prefix="stdws-faults-")
    path = os.path.join(tmp, "io.sock")
    try:
        with Net("slow") as net:
            server = Server(net, example("io_board"),
                            ["--listen", f"{net.server_ip}:0", "--unix", path,
                             "--keepalive", keepalive, *c.mode_args()])  # write timeout 10 s
            slow_ip, stalled_ip = net.extra_ips
            net.rate_limit(slow_ip, 64)
            before = warm_baseline(net, server)
            outputs = [0] * 8
            expected = [status_json(outputs)]
            for i in range(keep_up + flood):
                outputs[i % 8] ^= 1
                expected.append(status_json(outputs))

            fast = [Member(net, server.port, net.client_ip) for _ in range(5)]
            slow = Member(net, server.port, slow_ip)
            c.check(fast[0].got[0] == (TEXT, expected[0]), f"status on join: {fast[0].got[0]!r:.100}")
            state = [0] * 8
            bad = []

            def burst(first, count):
                for i in range(first, first + count):
                    state[i % 8] ^= 1
                    status = unix_post(path, f"/io/outputs/{i % 8}", str(state[i % 8]))
                    if status != b"200":
                        bad.append(status)
                return time.monotonic()

            # A member whose queue overflowed is ended at once, however long
            # its write could still wait: within the close linger and a
            # margin of the flood's end.
            bound = LINGER + 1.5
            # Phase 1: fewer statuses than the slow member's socket buffers
            # hold (34 KB of a 240 KB send buffer), but 4 to 9 s of its
            # 64 kbit/s link (as they are packed), longer than the keepalive
            # interval and pong deadline, so its pong waits behind them. It
            # keeps taking bytes: it must be served, all of them.
            start = time.monotonic()
            keep_up_end = burst(0, keep_up)
            # A status per packet at worst: 57 B + 66 B of headers.
            drain = 2 + keep_up * (len(expected[1]) + 2 + 66) * 8 / 64000 * 1.2
            deadline = keep_up_end + drain
            while len(slow.got) < keep_up + 1 and slow.closed_at is None and time.monotonic() < deadline:
                time.sleep(0.05)
            kept_up = time.monotonic() - keep_up_end
            n, _ = contiguous_prefix(slow.got, expected)
            c.check(n >= keep_up + 1, f"slow member still reading got all {keep_up + 1} states of "
                    f"the first burst: {n} in order after {kept_up:.1f} s, end {slow.end}")
            # Its pong comes once the statuses are through: a close queued
            # behind them (keepalive) would follow them at once.
            server.wait_until(lambda: slow.closed_at is not None, 1.5)
            c.check(slow.closed_at is None and server.holds(slow.sock),
                    f"slow member that kept taking bytes not closed after the first burst: {slow.end}")
            kept_up_end = slow.end

            # Phase 2: a flood the slow member cannot keep up with, and a
            # member that never reads after its first status, with a small
            # receive window (SO_RCVBUF 4 KiB), that sends an unsolicited
            # pong every 0.25 s (so keepalive has no reason to end it): its
            # queue overflows within the flood.
            stalled = Member(net, server.port, stalled_ip, reads=False, rcvbuf=4096, heartbeat=0.25)
            joined = server.counts()
            released, stop_watch = {}, threading.Event()
            flood_start = time.monotonic()
            watch = threading.Thread(target=release_times, daemon=True, args=(
                server, {"slow": slow.sock, "stalled": stalled.sock}, flood_start, 60, released, stop_watch))
            watch.start()
            flood_end = burst(keep_up, flood)
            c.check(not bad, f"every POST answered 200: {bad[:3]}")
            watch.join(flood_end - flood_start + bound + 2)
            stop_watch.set()
            stalled.stop.set()
            slow_t, stalled_t = released.get("slow"), released.get("stalled")
            for name, took in (("slow", slow_t), ("stalled (never reads)", stalled_t)):
                c.check(took is not None and took <= (flood_end - flood_start) + bound,
                        f"{name} member closed within {bound:.1f} s of the flood's end: "
                        + (f"{took - (flood_end - flood_start):.2f} s" if took is not None else "still held"))
            had = len(slow.got)
            # Lift the rate limit: what the slow member still gets comes at once.
            netlab.run("tc", "-n", net.c, "filter", "del", "dev", net.c_if, "parent", "ffff:", check=False)
            # What the orphaned socket still holds may wait out TCP's
            # retransmission backoff after the policer's drops.
            slow.thread.join(30)
            for i, m in enumerate(fast):
                deadline = time.monotonic() + 20
                while len(m.got) < len(expected) and m.closed_at is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                n, _ = contiguous_prefix(m.got, expected)
                c.check(n == len(expected) and len(m.got) == len(expected),
                        f"fast member {i} saw every state in order: {n} of {len(expected)} in order "
                        f"({len(m.got)} received, end {m.end})")
            peak = server.hwm() - before["rss_kib"]
            c.check(peak <= 8 * 1024, f"peak RSS growth within 8 MiB: {peak} KiB")
            n, contiguous = contiguous_prefix(slow.got, expected)
            c.check(contiguous, f"slow member saw a gapless prefix of the states ({n} of {len(slow.got)})")
            c.check(slow.end is not None and "1001" not in slow.end,
                    f"slow member closed as too slow (1008) or shut down, not by keepalive: {slow.end}")
            c.note(f"{keep_up} + {flood} POSTs, the flood in {flood_end - flood_start:.1f} s")
            c.note(f"slow member (64 kbit/s): {min(n, keep_up + 1)} of the first burst's {keep_up + 1} "
                   f"states in {kept_up:.1f} s (then: {kept_up_end or 'still open'}); of the flood, "
                   f"{max(0, had - keep_up - 1)} by the time the server let go "
                   + (f"({slow_t:.2f} s into it)" if slow_t is not None else "(never)")
                   + f", {max(0, len(slow.got) - keep_up - 1)} in all (a gapless prefix: {contiguous}), "
                   f"then {slow.end}")
            data, end = netlab.read_all(stalled.sock, 3)
            try:
                frames = text_frames(bytes(stalled.ws.buf) + data)
                n, contiguous = contiguous_prefix([(TEXT, p) for p, _ in frames if p is not None],
                                                  expected[keep_up + 1:])
                closes = [code for p, code in frames if p is None]
                c.check(contiguous, f"stalled member's stream: a gapless prefix of the states ({n})")
                c.check(not closes or closes == [1008],
                        f"stalled member closed with 1008 or shut down: close frames {closes}")
                c.note(f"stalled member (never reads, 4 KiB window): let go "
                       + (f"{stalled_t:.2f} s" if stalled_t is not None else "never")
                       + f" into the flood; then read {n} more states, "
                       + (f"close {closes[0]}" if closes else "no close frame") + f", {end}")
            except ProtocolError as e:
                c.check(False, f"stalled member's stream is well-formed: {e}")
            c.note(f"peak RSS +{peak} KiB; threads {before['threads']} -> {joined['threads']} with 7 members")
            for m in fast:
                try:
                    m.ws.close()
                except OSError:
                    pass
                m.sock.close()
            slow.sock.close()
            stalled.sock.close()
            check_back_to_base(c, server, before, rss_slack_kib=8 * 1024)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def text_frames(data):
    """[(payload or None, close code or None)] of a raw stream; a cut final frame is dropped."""
    out, off = [], 0
    while off + 2 <= len(data):
        start = off
        b0, b1 = data[off], data[off + 1]
        if b1 & 0x80 or b0 & 0x70 or (b0 & 0x0F) not in (TEXT, CLOSE, netlab.PING):
            raise ProtocolError(f"bad frame header {data[off:off + 2].hex()} at offset {start}")
        if out and out[-1][0] is None:
            raise ProtocolError(f"bytes after the close frame at offset {start}")
        n, off = b1 & 0x7F, off + 2
        if n >= 126:
            width = 2 if n == 126 else 8
            if off + width > len(data):
                break
            n = int.from_bytes(data[off:off + width], "big")
            off += width
        if off + n > len(data):
            # Cut short: what arrived must still look like a status.
            if (b0 & 0x0F) == TEXT and not b'{"inputs":['.startswith(data[off:off + 11][:n]):
                raise ProtocolError(f"cut frame at offset {start} is not a status")
            break
        body = data[off:off + n]
        if (b0 & 0x0F) == TEXT:
            out.append((body, None))
        elif (b0 & 0x0F) == CLOSE:
            out.append((None, int.from_bytes(body[:2], "big") if n >= 2 else 1005))
        off += n
    return out


# --- case 5 -----------------------------------------------------------------

def case_resets(c, per_kind=50, keepalive=1, handshake_timeout=2):
    """5. 200 connections send half a handshake or half a frame, then vanish."""
    with Net("rst") as net:
        server = Server(net, example("echo"),
                        [f"{net.server_ip}:0", "--keepalive", keepalive,
                         "--handshake-timeout", handshake_timeout, *c.mode_args()])
        silent_ip, killed_ip = net.extra_ips
        base = warm_baseline(net, server)
        half_head = (f"GET / HTTP/1.1\r\nHost: {net.server_ip}\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Ke").encode()

        def half(source, handshake):
            sock = net.connect(server.port, source)
            if handshake:
                sock.sendall(half_head)
            else:
                WS(sock, net.server_ip)
                sock.sendall(netlab.frame(BINARY, os.urandom(1000))[:500])
            return sock

        groups = {}  # name -> (sockets, how they vanish)
        for name, source, how in (("RST by SO_LINGER 0", net.client_ip, "linger"),
                                  ("RST by ss -K", killed_ip, "kill"),
                                  ("silent (blackholed)", silent_ip, "silent")):
            socks = [half(source, k % 2 == 0) for k in range(per_kind * (2 if how == "linger" else 1))]
            groups[name] = (socks, [s.getsockname() for s in socks], how)
        held = server.connections()
        total = sum(len(s) for s, _, _ in groups.values())
        c.check(all(a in held for _, addrs, _ in groups.values() for a in addrs),
                f"all {total} half-open connections held by the server before they vanish")
        peak = server.counts()
        t0 = time.monotonic()
        for name, (socks, addrs, how) in groups.items():
            if how == "linger":
                for s in socks:
                    netlab.set_linger_zero(s)
                    s.close()
            elif how == "kill":
                net.reset(killed_ip)
            else:
                net.blackhole(silent_ip)
                for s in socks:
                    s.close()  # the FIN is dropped too
        freed = {}
        silent_bound = max(handshake_timeout + 1, 4 * keepalive) + LINGER + 1.0
        for name, (socks, addrs, how) in groups.items():
            bound = 1.5 if how != "silent" else silent_bound
            took = server.wait_until(lambda: not (set(addrs) & set(server.connections())), bound + 10,
                                     step=0.02)
            left = time.monotonic() - t0 if took is not None else None
            freed[name] = left
            c.check(left is not None and left <= bound,
                    f"{len(addrs)} connections {name} freed within {bound:.1f} s: "
                    + (f"{left:.2f} s" if left is not None else "some still held"))
        now = check_back_to_base(c, server, base, rss_slack_kib=4 * 1024)
        c.note(f"{total} connections; held threads {peak['threads']}, fds {peak['fds']}; freed: "
               + ", ".join(f"{k} {v:.2f} s" if v is not None else f"{k} never" for k, v in freed.items()))
        c.note(f"back to threads {now['threads']} (base {base['threads']}), fds {now['fds']} "
               f"(base {base['fds']})")


# --- case 6 -----------------------------------------------------------------

def case_faq_programs(c):
    """6. The BB-400 FAQ's two Python programs, the WebSocket one over the lossy link."""
    import run as faq

    tmp = tempfile.mkdtemp(prefix="stdws-faults-")
    path = os.path.join(tmp, "bb-io.sock")
    try:
        with Net("faq") as net:
            server = Server(net, example("io_board"),
                            ["--listen", f"{net.server_ip}:0", "--unix", path, *c.mode_args()])
            net.lossy(delay=40, jitter=10, loss=0.05, reorder=0.10, dup=0.01)
            faq.results.clear()
            faq.run_programs(f"{net.server_ip}:{server.port}", path,
                             ws_prefix=["ip", "netns", "exec", net.c],
                             tcp_socket=lambda: net.connect(server.port))
            failed = faq.results.count(False)
            c.check(faq.results and not failed,
                    f"FAQ programs: {len(faq.results) - failed} checks passed, {failed} failed")
            c.note(f"{len(faq.results)} FAQ checks")
            c.note(link_note(net))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


CASES = {
    1: ("every echo arrives once, in order, byte-exact over a lossy, slow, reordering link",
        case_lossy_echo),
    2: ("a blackholed connection is freed within keepalive, pong deadline and close linger",
        case_blackhole),
    3: ("a client that stops reading is dropped within the write timeout, its stream whole",
        case_stops_reading),
    4: ("broadcast: fast members get every state, slow and stalled ones are closed as too slow",
        case_slow_consumer),
    5: ("half-sent handshakes and frames that vanish leave no thread or fd behind",
        case_resets),
    6: ("the BB-400 FAQ programs work with the WebSocket one over a lossy link",
        case_faq_programs),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=int, action="append", choices=sorted(CASES))
    parser.add_argument("--mode", action="append", choices=MODES)
    args = parser.parse_args()
    cases = args.case or sorted(CASES)
    modes = args.mode or MODES
    total = len(cases) * len(modes)
    if os.geteuid() != 0:
        print("faults: skipped: the network fault suite needs root (network namespaces, "
              "iptables, tc); run it as root, as CI does")
        print(f"faults: 0 passed, 0 failed, {total} skipped")
        return 0
    for tool in ("ip", "iptables", "tc", "ss"):
        if not shutil.which(tool):
            print(f"faults: {tool} is missing: scripts/setup installs it (iproute2, iptables)")
            print(f"faults: 0 passed, {total} failed")
            return 1
    for name in ("echo", "io_board"):
        if not os.access(example(name), os.X_OK):
            print(f"faults: no {example(name)}: cargo build --release --examples")
            return 1
    stale = netlab.clean_stale()
    if stale:
        print(f"faults: removed {len(stale)} namespaces left by an earlier run")
    passed = failed = 0
    suite_start = time.monotonic()
    for n in cases:
        name, func = CASES[n]
        for mode in modes:
            c = Case(mode)
            start = time.monotonic()
            try:
                func(c)
            except Exception as e:  # noqa: BLE001 - a case that broke is a failed case
                c.failures.append(f"{type(e).__name__}: {e}")
                if os.environ.get("FAULTS_TRACE"):
                    traceback.print_exc()
            took = time.monotonic() - start
            ok = not c.failures
            passed += ok
            failed += not ok
            print(f"{'ok    ' if ok else 'FAILED'} case {n} {name} [{mode}] ({took:.1f} s): "
                  + "; ".join(c.notes), flush=True)
            for f in c.failures:
                print(f"         failed: {f}", flush=True)
    print(f"faults: total {time.monotonic() - suite_start:.1f} s")
    print(f"faults: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
