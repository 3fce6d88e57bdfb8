#!/usr/bin/env python3
"""Runs the two BB-400 FAQ programs against the io_board example, as a test.

    target/venv/bin/python tests/python/run.py [--example target/release/examples/io_board]

Starts io_board on a free TCP port and on a Unix socket in a temporary
directory, then:
  1. runs bb400_websocket.py (websocket-client's WebSocketApp), which sets all
     outputs to 0 on open and prints the outputs from every message;
  2. runs bb400_unixsocket.py (requests_unixsocket), which GETs /io/outputs and
     /io/outputs/N and POSTs 0 or 1 to each /io/outputs/N;
  3. checks what both printed, that the outputs set over the Unix socket are
     visible over HTTP and reached the WebSocket program as broadcasts, and
     that the WebSocket program ends cleanly on Ctrl+C (SIGINT), as the FAQ
     says to stop it.
Prints 'python: N passed, M failed' last; exits 1 if anything failed.
Uses only the standard library itself; the FAQ programs run with this
interpreter, so run it with the virtualenv's python (scripts/setup makes it).
"""

import argparse
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NAMES = ["Light", "Modem", "Motor", "Pump", "Sensor", "Fan", "Printer", "Buzzer"]
TIMEOUT = 10.0

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok     " if ok else "FAILED ") + name)
    if not ok and detail:
        print("       " + str(detail).replace("\n", "\n       "))
    return ok


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket (the runner's own, independent of requests)."""

    def __init__(self, path):
        super().__init__("localhost", timeout=TIMEOUT)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.unix_path)


class SocketHTTPConnection(http.client.HTTPConnection):
    """http.client over a socket that a function connects (in another network namespace)."""

    def __init__(self, host, connect):
        super().__init__(host, timeout=TIMEOUT)
        self.connect_socket = connect

    def connect(self):
        self.sock = self.connect_socket()


def request(conn, method, path, body=None):
    conn.request(method, path, body=body)
    response = conn.getresponse()
    data = response.read().decode()
    conn.close()
    return response.status, data


class Program:
    """A child process whose output lines are collected as they come."""

    def __init__(self, args):
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Ctrl+C must reach it even if this runner was started in the
            # background, where SIGINT is ignored and that is inherited.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.lines = []
        self.queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, predicate, timeout=TIMEOUT):
        """Collects lines until predicate(lines) holds; returns whether it did."""
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return predicate(self.lines)
            self.lines.append(line)
        return True

    def output(self):
        return "\n".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def printed_outputs(lines):
    """The outputs of each status block bb400_websocket.py printed, as lists of 0/1."""
    blocks, current = [], {}
    for line in lines:
        m = re.match(r"^(\w+): (on|off)$", line)
        if m and m.group(1) in NAMES:
            current[m.group(1)] = 1 if m.group(2) == "on" else 0
            if len(current) == len(NAMES):
                blocks.append([current[n] for n in NAMES])
                current = {}
    return blocks


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--example", default=os.path.join(target, "release", "examples", "io_board")
    )
    args = parser.parse_args()
    if not os.access(args.example, os.X_OK):
        sys.exit(f"no io_board binary at {args.example}: cargo build --release --examples")

    tmp = tempfile.mkdtemp(prefix="stdws-python-")
    sock = os.path.join(tmp, "bb-io.sock")
    server = Program([args.example, "--listen", "127.0.0.1:0", "--unix", sock])
    try:
        if not server.wait_for(lambda ls: any("listening" in l for l in ls)):
            check("io_board starts", False, server.output())
            return
        addr = re.search(r"http://([^/]+)/", server.lines[-1]).group(1)
        run_programs(addr, sock)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run_programs(addr, sock, ws_prefix=(), tcp_socket=None):
    """Both FAQ programs against an io_board serving TCP at addr and the Unix
    socket sock. The network fault suite runs the WebSocket program in another
    network namespace: ws_prefix goes before its command line, and
    tcp_socket() connects this runner's own TCP requests there."""
    ws_program = None
    try:
        unix = lambda: UnixHTTPConnection(sock)
        tcp = lambda: (
            SocketHTTPConnection(addr, tcp_socket)
            if tcp_socket
            else http.client.HTTPConnection(addr, timeout=TIMEOUT)
        )

        # Outputs all on, so that the FAQ program's reset to 0 shows.
        status, _ = request(unix(), "POST", "/io/outputs", "[1,1,1,1,1,1,1,1]")
        check("POST /io/outputs over the Unix socket sets all outputs", status == 200)

        ws_program = Program(
            [*ws_prefix, sys.executable, "-u", os.path.join(HERE, "bb400_websocket.py"), f"ws://{addr}"]
        )
        got_two = ws_program.wait_for(lambda ls: len(printed_outputs(ls)) >= 2)
        blocks = printed_outputs(ws_program.lines)
        check(
            "websocket program prints the outputs on connect, then all off after its reset",
            got_two
            and "Connected to WebSocket server setting all outputs off/open/0" in ws_program.lines
            and blocks[:2] == [[1] * 8, [0] * 8],
            ws_program.output(),
        )
        status, body = request(unix(), "GET", "/io/outputs")
        check(
            "the websocket program's [0,0,0,0,0,0,0,0] set the outputs",
            (status, body) == (200, "[0,0,0,0,0,0,0,0]"),
            (status, body),
        )

        unix_program = subprocess.run(
            [sys.executable, os.path.join(HERE, "bb400_unixsocket.py"), sock],
            capture_output=True,
            text=True,
            timeout=60,
        )
        out = unix_program.stdout
        expected = (
            "Current IO status is: \n[0, 0, 0, 0, 0, 0, 0, 0]\n"
            + "".join(f"DIO{i}: 0\n" for i in range(8))
        )
        check(
            "unixsocket program GETs /io/outputs and /io/outputs/N",
            unix_program.returncode == 0 and out.startswith(expected),
            out + unix_program.stderr,
        )
        check(
            "unixsocket program POSTs each output and reads the new status",
            out.count("<Response [200]>") == 8
            and "New IO status is as follows: \n[0, 1, 0, 1, 1, 0, 0, 1]\n" in out,
            out + unix_program.stderr,
        )
        new = [0, 1, 0, 1, 1, 0, 0, 1]
        status, body = request(tcp(), "GET", "/io/outputs")
        check(
            "the outputs it set are visible over HTTP on the TCP port",
            (status, json.loads(body)) == (200, new),
            (status, body),
        )
        # Four of the eight POSTs change a line; each change is broadcast.
        got_all = ws_program.wait_for(lambda ls: len(printed_outputs(ls)) >= 6)
        blocks = printed_outputs(ws_program.lines)
        check(
            "the websocket program received each change as a broadcast",
            got_all
            and blocks[2:] == [
                [0, 1, 0, 0, 0, 0, 0, 0],
                [0, 1, 0, 1, 0, 0, 0, 0],
                [0, 1, 0, 1, 1, 0, 0, 0],
                new,
            ],
            ws_program.output(),
        )

        ws_program.proc.send_signal(signal.SIGINT)
        try:
            code = ws_program.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        ws_program.wait_for(lambda ls: False, timeout=0.5)  # the rest of its output
        check(
            "websocket program closes and exits cleanly on Ctrl+C",
            code == 0 and "##### closed websocket connection #####" in ws_program.lines,
            f"exit code {code}\n" + ws_program.output(),
        )
    finally:
        if ws_program:
            ws_program.stop()


if __name__ == "__main__":
    started = time.monotonic()
    main()
    failed = results.count(False)
    print(f"({time.monotonic() - started:.1f} s)")
    print(f"python: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)
