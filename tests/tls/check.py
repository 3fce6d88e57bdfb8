"""wss:// and https:// from examples/tls, as Python clients use them.

    python tests/tls/check.py PATH/TO/stdws-tls

Starts the example on a free port with its self-signed certificate and a
2-second handshake timeout, then checks:
- a `websockets` client trusting that certificate echoes text and binary;
- the io_board status and REST API over https;
- a client that stalls mid-TLS-handshake, and one that sends its
  ClientHello a byte at a time, are both dropped at the deadline.
"""
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

from websockets.sync.client import connect

TIMEOUT = 2.0  # the example's --handshake-timeout


def start(binary):
    proc = subprocess.Popen(
        [binary, "127.0.0.1:0", "--handshake-timeout", str(TIMEOUT)],
        stdout=subprocess.PIPE, text=True)
    cert = port = None
    deadline = time.time() + 30
    while port is None and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"stdws-tls exited with {proc.wait()}")
        if m := re.search(r"certificate (\S+)", line):
            cert = m.group(1)
        if m := re.search(r"listening on https://127\.0\.0\.1:(\d+)/", line):
            port = int(m.group(1))
    assert cert and port, "no certificate or listening line"
    return proc, cert, port


def check_echo(port, ctx):
    with connect(f"wss://localhost:{port}/echo", ssl=ctx) as ws:
        ws.send("hello over wss ✓")
        assert ws.recv(timeout=5) == "hello over wss ✓"
        payload = bytes(range(256)) * 400  # 102,400 bytes, many TLS records
        ws.send(payload)
        assert ws.recv(timeout=5) == payload
    print("ok: websockets echoes text and binary over wss://, certificate verified")


def check_board(port, ctx):
    with connect(f"wss://127.0.0.1:{port}/", ssl=ctx) as ws:
        assert ws.recv(timeout=5) == '{"inputs":[0,0,0,0,0,0,0,0],"outputs":[0,0,0,0,0,0,0,0]}'
        ws.send("[1,0,1,0,0,0,0,1]")
        assert ws.recv(timeout=5) == '{"inputs":[0,0,0,0,0,0,0,0],"outputs":[1,0,1,0,0,0,0,1]}'
    with urllib.request.urlopen(f"https://localhost:{port}/io/outputs", context=ctx, timeout=5) as r:
        assert r.read() == b"[1,0,1,0,0,0,0,1]"
    print("ok: io_board's WebSocket and REST API over wss:// and https://")


def client_hello():
    """The ClientHello Python's TLS would send."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def dropped_after(port, send):
    """Seconds from connect until the server drops a client that `send`s."""
    s = socket.create_connection(("127.0.0.1", port))
    start = time.time()
    s.settimeout(0.1)
    try:
        for chunk in send:
            s.sendall(chunk)
            try:
                if s.recv(1024) == b"":
                    return time.time() - start
            except socket.timeout:
                pass
        while time.time() - start < 30:
            try:
                if s.recv(1024) == b"":
                    return time.time() - start
            except socket.timeout:
                pass
    except (ConnectionResetError, BrokenPipeError):
        return time.time() - start
    finally:
        s.close()
    raise AssertionError("still connected after 30 s")


def check_slow_handshakes(port):
    hello = client_hello()
    stalled = dropped_after(port, [hello[: len(hello) // 2]])
    assert TIMEOUT - 0.1 <= stalled <= TIMEOUT + 1.5, stalled
    print(f"ok: a client stalled mid-TLS-handshake is dropped after {stalled:.2f} s (deadline {TIMEOUT} s)")
    trickled = dropped_after(port, [bytes([b]) for b in hello])  # 0.1 s a byte
    assert TIMEOUT - 0.1 <= trickled <= TIMEOUT + 1.5, trickled
    print(f"ok: a ClientHello sent a byte at a time is dropped after {trickled:.2f} s")


def main():
    proc, cert, port = start(sys.argv[1])
    try:
        ctx = ssl.create_default_context(cafile=cert)
        check_echo(port, ctx)
        check_board(port, ctx)
        check_slow_handshakes(port)
        check_echo(port, ctx)  # the server is still serving
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
