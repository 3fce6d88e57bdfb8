"""The fault suite's tools: private networks, impairments, a server process,
and a raw WebSocket client whose reading the test controls.

Standard library only. Needs root (network namespaces, iptables, tc).

A `Net` is two network namespaces joined by a veth pair: the server side
(10.77.N.1) and the client side (10.77.N.2, plus .3 and .4 for clients that
are impaired differently). Nothing else is in them. `Net.socket()` makes a
TCP socket inside the client namespace (setns on the calling thread for the
socket() call only), so the test itself runs in the root namespace and
reads /proc of the server freely.

Impairments, each on packets crossing the veth:
  - `lossy()`: delay and reorder by nfq_delay.py on an NFQUEUE, loss by
    `iptables -m statistic -j DROP`, duplicates by `-j TEE`. Each direction
    is impaired where it arrives (the client→server direction on the
    server namespace's ingress, the server→client direction on the client's):
    a packet held on the sender's own egress still counts against that
    socket's TCP Small Queues budget, which throttles a flow to about two
    packets per delay (measured 0.13 MiB/s at 40 ms), a limit no real link
    has. Duplicates are made on egress (TEE holds nothing), towards the peer.
  - `blackhole(addr)`: every packet to or from a client address dropped.
  - `rate_limit(addr, kbit)`: an htb class on an IFB device that the client
    side's ingress is redirected to, for packets to `addr`.
  - `reset(addr)`: `ss -K` kills the client side's sockets on `addr` (RST).
"""

import base64
import ctypes
import hashlib
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "stdwsf"  # every namespace this suite makes starts with it
CLONE_NEWNET = 0x40000000
LINGER = 2.0  # the server's close linger (src/server.rs, src/event_loop.rs)

_libc = ctypes.CDLL(None, use_errno=True)


def run(*cmd, ns=None, check=True, timeout=20):
    """Runs a command (in namespace ns), returns its stdout; raises with stderr."""
    cmd = [str(c) for c in cmd]
    if ns:
        cmd = ["ip", "netns", "exec", ns] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def namespaces():
    return [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]


def delete_namespace(name):
    """Kills whatever still runs in it, then deletes it (its veth end goes with it)."""
    for pid in run("ip", "netns", "pids", name, check=False).split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    run("ip", "netns", "delete", name, check=False)


def clean_stale():
    """Removes namespaces and veth ends left by an earlier run that died."""
    stale = [n for n in namespaces() if n.startswith(PREFIX + "-")]
    for name in stale:
        delete_namespace(name)
    for line in run("ip", "-o", "link", "show").splitlines():
        m = re.match(r"\d+: (sf\d+x\d+[sc])[@:]", line)
        if m:
            run("ip", "link", "delete", m.group(1), check=False)
    return stale


class Net:
    """Two namespaces and a veth pair, torn down by close() (or `with`)."""

    counter = 0

    def __init__(self, tag):
        Net.counter += 1
        n = Net.counter
        self.n = n
        pid = os.getpid() % 100000
        self.s = f"{PREFIX}-{pid}-{n}-{tag}-s"
        self.c = f"{PREFIX}-{pid}-{n}-{tag}-c"
        self.s_if = f"sf{pid}x{n}s"
        self.c_if = f"sf{pid}x{n}c"
        self.server_ip = f"10.77.{n}.1"
        self.client_ip = f"10.77.{n}.2"
        self.extra_ips = [f"10.77.{n}.3", f"10.77.{n}.4"]
        self.procs = []
        self.ifb = None
        try:
            self._up()
        except BaseException:
            self.close()
            raise

    def _up(self):
        run("ip", "netns", "add", self.s)
        run("ip", "netns", "add", self.c)
        run("ip", "link", "add", self.s_if, "type", "veth", "peer", "name", self.c_if)
        run("ip", "link", "set", self.s_if, "netns", self.s)
        run("ip", "link", "set", self.c_if, "netns", self.c)
        run("ip", "-n", self.s, "addr", "add", f"{self.server_ip}/24", "dev", self.s_if)
        run("ip", "-n", self.c, "addr", "add", f"{self.client_ip}/24", "dev", self.c_if)
        for ip in self.extra_ips:
            run("ip", "-n", self.c, "addr", "add", f"{ip}/24", "dev", self.c_if)
        for ns, dev in ((self.s, self.s_if), (self.c, self.c_if)):
            # One TCP segment per packet, so loss and duplicates hit
            # segments, not 64 KiB GSO bursts.
            run("ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1", check=False)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        delete_namespace(self.s)
        delete_namespace(self.c)
        run("ip", "link", "delete", self.s_if, check=False)

    # --- sockets in the client namespace -----------------------------------

    def socket(self, source=None, rcvbuf=None):
        """A TCP socket made in the client namespace, bound to source if given."""
        me = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.c}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into the client namespace")
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                if _libc.setns(me, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(me)
            os.close(target)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            sock.bind((source, 0))
        return sock

    def connect(self, port, source=None, timeout=10, rcvbuf=None):
        sock = self.socket(source, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((self.server_ip, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    # --- impairments ---------------------------------------------------------

    def ipt(self, ns, *rule):
        run("iptables", "-w", *rule, ns=ns)

    def lossy(self, delay=40, jitter=10, loss=0.05, reorder=0.10, dup=0.01, seed=None):
        """Delay +- jitter ms and reorder (nfq_delay.py), loss and duplicates, both ways."""
        seed = random.randrange(1 << 30) if seed is None else seed
        for i, (ns, dev, peer) in enumerate(
            ((self.s, self.s_if, self.client_ip), (self.c, self.c_if, self.server_ip))
        ):
            queue = 0
            p = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-u", os.path.join(HERE, "nfq_delay.py"),
                 "--queue", str(queue), "--delay", str(delay), "--jitter", str(jitter),
                 "--reorder", str(reorder), "--seed", str(seed + i)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            self.procs.append(p)
            line = p.stdout.readline()
            if "nfq: ready" not in line:
                raise RuntimeError(f"nfq_delay.py in {ns}: {line}{p.stdout.read() if p.poll() is not None else ''}")
            threading.Thread(target=p.stdout.read, daemon=True).start()
            # Arriving packets: held (delay, reorder), then a loss draw.
            self.ipt(ns, "-t", "mangle", "-A", "PREROUTING", "-i", dev, "-j", "NFQUEUE", "--queue-num", queue)
            if loss:
                self.ipt(ns, "-A", "INPUT", "-i", dev, "-m", "statistic", "--mode", "random",
                         "--probability", loss, "-j", "DROP")
            if dup:
                self.ipt(ns, "-t", "mangle", "-A", "OUTPUT", "-o", dev, "-m", "statistic",
                         "--mode", "random", "--probability", dup, "-j", "TEE", "--gateway", peer)

    def impairment_counts(self):
        """Packets held (delay/reorder), dropped and duplicated so far, both ways."""
        total = {"held": 0, "dropped": 0, "duplicated": 0}
        for ns in (self.s, self.c):
            for table, chain, target, kind in (("mangle", "PREROUTING", "NFQUEUE", "held"),
                                               ("filter", "INPUT", "DROP", "dropped"),
                                               ("mangle", "OUTPUT", "TEE", "duplicated")):
                out = run("iptables", "-w", "-t", table, "-L", chain, "-v", "-x", "-n", ns=ns)
                for line in out.splitlines()[2:]:
                    f = line.split()
                    if len(f) > 2 and f[2] == target and (target == "NFQUEUE" or "statistic" in line):
                        total[kind] += int(f[0])
        return total

    def blackhole(self, addr):
        """Drops every packet to and from a client-side address, from now on (no FIN, no RST)."""
        self.ipt(self.c, "-I", "INPUT", "-d", addr, "-j", "DROP")
        self.ipt(self.c, "-I", "OUTPUT", "-s", addr, "-j", "DROP")

    def rate_limit(self, addr, kbit):
        """Shapes what arrives for a client-side address to kbit/s (htb on an IFB)."""
        self.ifb = f"sf{os.getpid() % 100000}x{self.n}i"
        run("ip", "-n", self.c, "link", "add", self.ifb, "type", "ifb")
        run("ip", "-n", self.c, "link", "set", self.ifb, "up")
        run("tc", "-n", self.c, "qdisc", "add", "dev", self.c_if, "handle", "ffff:", "ingress")
        run("tc", "-n", self.c, "filter", "add", "dev", self.c_if, "parent", "ffff:", "protocol", "ip",
            "u32", "match", "ip", "dst", f"{addr}/32", "action", "mirred", "egress", "redirect",
            "dev", self.ifb)
        run("tc", "-n", self.c, "qdisc", "add", "dev", self.ifb, "root", "handle", "1:", "htb", "default", "10")
        run("tc", "-n", self.c, "class", "add", "dev", self.ifb, "parent", "1:", "classid", "1:10",
            "htb", "rate", f"{kbit}kbit", "ceil", f"{kbit}kbit")

    def reset(self, addr):
        """Kills the client side's TCP sockets on addr: each sends an RST."""
        run("ss", "-K", "-t", "src", addr, ns=self.c)


class Server:
    """An example binary run in the server namespace."""

    def __init__(self, net, binary, args, log_lines=200):
        self.net = net
        cmd = ["ip", "netns", "exec", net.s, binary] + [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        net.procs.append(self.proc)
        self.pid = self.proc.pid  # ip netns exec execs the binary
        self.lines = []
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            m = re.search(r"listening on http://[^/]*:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.wait(timeout=5)
            raise RuntimeError(f"{os.path.basename(binary)} {' '.join(map(str, args))} did not start "
                               f"(exit {self.proc.returncode}): " + " | ".join(self.lines[:3]))
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stdout:
            if len(self.lines) < 1000:
                self.lines.append(line.rstrip("\n"))

    def alive(self):
        return self.proc.poll() is None

    def threads(self):
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def status(self, key):
        """A /proc/PID/status value in KiB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def rss(self):
        return self.status("VmRSS")

    def hwm(self):
        return self.status("VmHWM")

    def connections(self):
        """{(peer ip, peer port): state} of the TCP sockets the server process holds open."""
        out = run("ss", "-tnpH", "state", "all", ns=self.net.s)
        held = {}
        for line in out.splitlines():
            if f"pid={self.pid}," not in line:
                continue
            f = line.split()
            peer = f[4]
            if peer.endswith(":*"):
                continue  # the listener
            ip, port = peer.rsplit(":", 1)
            held[(ip, int(port))] = f[0]
        return held

    def holds(self, sock):
        """Whether the server still holds the connection whose client end is sock."""
        ip, port = sock.getsockname()
        return (ip, port) in self.connections()

    def wait_until(self, predicate, timeout, step=0.05):
        """Polls predicate() until it holds; returns the seconds it took, or None."""
        start = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                return None
            time.sleep(step)

    def counts(self):
        return {"threads": self.threads(), "fds": self.fds(), "rss_kib": self.rss()}


# --- a raw WebSocket client ---------------------------------------------------

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def mask(data, key):
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def frame(opcode, payload, fin=True, masked=True):
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if masked else 0
    if n < 126:
        head.append(bit | n)
    elif n < 1 << 16:
        head.append(bit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(bit | 127)
        head += struct.pack("!Q", n)
    if not masked:
        return bytes(head) + payload
    key = os.urandom(4)
    return bytes(head) + key + mask(payload, key)


class ProtocolError(Exception):
    pass


class WS:
    """A client connection: handshake, frames in and out, pings answered."""

    def __init__(self, sock, host="localhost", path="/"):
        self.sock = sock
        self.buf = bytearray()
        self.wlock = threading.Lock()
        self.close_code = None
        self.close_reason = None
        key = base64.b64encode(os.urandom(16))
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        sock.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            data = sock.recv(4096)
            if not data:
                raise ProtocolError("connection closed during the handshake")
            self.buf += data
        end = self.buf.index(b"\r\n\r\n") + 4
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end]
        if not head.startswith("HTTP/1.1 101"):
            raise ProtocolError("handshake refused: " + head.splitlines()[0])
        headers = {}
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise ProtocolError("bad Sec-WebSocket-Accept: " + repr(headers.get("sec-websocket-accept")))

    def send(self, opcode, payload):
        data = frame(opcode, payload)
        with self.wlock:
            self.sock.sendall(data)

    def send_text(self, text):
        self.send(TEXT, text.encode())

    def _fill(self, need):
        while len(self.buf) < need:
            data = self.sock.recv(1 << 18)
            if not data:
                return False
            self.buf += data
        return True

    def recv_frame(self):
        """(fin, opcode, payload), or None at EOF."""
        if not self._fill(2):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise ProtocolError("masked frame from the server")
        if b0 & 0x70:
            raise ProtocolError(f"reserved bits set: {b0:#x}")
        n, off = b1 & 0x7F, 2
        if n == 126:
            if not self._fill(4):
                return None
            (n,) = struct.unpack_from("!H", self.buf, 2)
            off = 4
        elif n == 127:
            if not self._fill(10):
                return None
            (n,) = struct.unpack_from("!Q", self.buf, 2)
            off = 10
        if not self._fill(off + n):
            return None
        payload = bytes(self.buf[off:off + n])
        del self.buf[:off + n]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv(self):
        """The next message as (opcode, payload); ('close', code) once closed; None at EOF.

        Pings are answered; a close is answered and recorded."""
        parts, kind = [], None
        while True:
            f = self.recv_frame()
            if f is None:
                return None
            fin, op, payload = f
            if op == PING:
                try:
                    self.send(PONG, payload)
                except OSError:
                    pass
                continue
            if op == PONG:
                continue
            if op == CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_reason = payload[2:].decode("utf-8", "replace")
                try:
                    self.send(CLOSE, payload[:2])
                except OSError:
                    pass
                return ("close", self.close_code)
            if op in (TEXT, BINARY):
                if kind is not None:
                    raise ProtocolError("new data frame inside a fragmented message")
                kind = op
            elif op != 0:
                raise ProtocolError(f"unknown opcode {op}")
            elif kind is None:
                raise ProtocolError("continuation without a message")
            parts.append(payload)
            if fin:
                return (kind, b"".join(parts))

    def close(self, code=1000):
        """Sends a close, waits for the server's, then EOF; returns the server's close code."""
        self.send(CLOSE, struct.pack("!H", code))
        while True:
            m = self.recv()
            if m is None:
                return self.close_code
            if m[0] == "close":
                # Our close went first; the server's answers it: wait for EOF.
                while self.recv_frame() is not None:
                    pass
                return self.close_code


def parse_stream(data, expected):
    """Checks a raw server→client byte stream: whole frames, one after another.

    expected: the payloads the binary frames must carry, in order. A final
    frame cut short by EOF is accepted if what did arrive matches. Returns a
    summary dict; raises ProtocolError with the offset on anything else."""
    off, k, pings, close = 0, 0, 0, None
    partial = 0
    while off < len(data):
        start = off
        if close is not None:
            raise ProtocolError(f"{len(data) - off} bytes after the close frame at offset {start}")
        if len(data) - off < 2:
            partial = len(data) - off
            break
        b0, b1 = data[off], data[off + 1]
        if b1 & 0x80 or b0 & 0x70:
            raise ProtocolError(f"bad frame header {data[off:off + 2].hex()} at offset {start}")
        n, off = b1 & 0x7F, off + 2
        width = {126: 2, 127: 8}.get(n, 0)
        if len(data) - off < width:
            partial = len(data) - start
            break
        if width:
            n = int.from_bytes(data[off:off + width], "big")
            off += width
        op = b0 & 0x0F
        payload = data[off:off + n]
        if op == BINARY:
            if k >= len(expected):
                raise ProtocolError(f"binary frame {k} at offset {start}: more echoes than messages sent")
            want = expected[k]
            if n != len(want):
                raise ProtocolError(f"binary frame {k} at offset {start}: {n} bytes, sent {len(want)}")
            if payload != want[:len(payload)]:
                at = next(i for i in range(len(payload)) if payload[i] != want[i])
                what = ""
                if payload[at] & 0x7F in (0x08, 0x09, 0x0A, 0x02):
                    what = f": a frame header ({payload[at:at + 2].hex()}) written inside this frame"
                raise ProtocolError(
                    f"binary frame {k} ({n} bytes) at stream offset {start}: payload differs "
                    f"at byte {at} of {len(payload)} received (got {payload[at:at + 8].hex()}, "
                    f"sent {want[at:at + 8].hex()}){what}")
            if len(payload) < n:
                partial = len(payload)
                k += 1
                break
            k += 1
        elif op == PING:
            pings += 1
        elif op == CLOSE:
            if len(payload) < n:
                partial = len(payload)
                break
            close = int.from_bytes(payload[:2], "big") if n >= 2 else 1005
        else:
            raise ProtocolError(f"unexpected opcode {op} at offset {start}")
        off += n
    return {"frames": k, "pings": pings, "close": close, "partial_bytes": partial}


def read_all(sock, timeout, limit=None):
    """Everything the socket still gives until EOF, a reset or timeout seconds
    of quiet (or until limit bytes: end 'limit'); returns (bytes, how it ended)."""
    sock.settimeout(timeout)
    chunks, end, got = [], "eof", 0
    while True:
        if limit is not None and got >= limit:
            end = "limit"
            break
        try:
            data = sock.recv(1 << 20 if limit is None else min(1 << 20, limit - got))
        except socket.timeout:
            end = "timeout"
            break
        except ConnectionResetError:
            end = "reset"
            break
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks), end


def set_linger_zero(sock):
    """close() will send an RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
