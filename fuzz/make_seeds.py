#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<target>/seed-*, in each target's input format.

The formats are documented in fuzz/src/lib.rs and at the top of each target.
Seeds are small and hand-picked: the RFC 6455 section 5.7 examples, the RFC's
sample handshake, and Autobahn-like cases (fragmentation, pings between
fragments, invalid UTF-8, close frames with valid and invalid codes).
Run from anywhere: python3 fuzz/make_seeds.py
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def mask(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(b0, payload, key=None):
    """A frame with the minimal length form, masked when a key is given."""
    n = len(payload)
    mbit = 0x80 if key else 0
    if n <= 125:
        head = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if key:
        return head + key + mask(payload, key)
    return head + payload


# -- frame_header: raw bytes -------------------------------------------------
fh = {
    "rfc-unmasked-hello": bytes.fromhex("810548656c6c6f"),
    "rfc-masked-hello": bytes.fromhex("818537fa213d7f9f4d5158"),
    "rfc-fragment-1": bytes.fromhex("010348656c"),
    "rfc-fragment-2": bytes.fromhex("80026c6f"),
    "rfc-ping": bytes.fromhex("890548656c6c6f"),
    "rfc-masked-pong": bytes.fromhex("8a8537fa213d7f9f4d5158"),
    "rfc-256-binary": bytes.fromhex("827e0100"),
    "rfc-64k-binary": bytes.fromhex("827f0000000000010000"),
    "masked-64bit": bytes.fromhex("82ff000000000001000001020304"),
    "reserved-opcode": bytes.fromhex("8300"),
    "fragmented-ping": bytes.fromhex("0900"),
    "long-close": bytes.fromhex("887e007e"),
    "length-overflow": bytes.fromhex("827f8000000000000001"),
    "non-minimal-16": bytes.fromhex("827e0005"),
    "non-minimal-64": bytes.fromhex("827f0000000000000100"),
    "rsv-bits": bytes.fromhex("f100"),
}
for name, data in fh.items():
    write("frame_header", name, data)

# -- mask: key, offset u64 LE, alignment u8, chunk list, data ----------------
write("mask", "rfc-hello", KEY + struct.pack("<Q", 0) + b"\x00" + b"\x00" + b"Hello")
write(
    "mask",
    "chunked-unaligned",
    KEY + struct.pack("<Q", 3) + b"\x05" + bytes([3, 1, 7, 0]) + bytes(range(100)),
)
write("mask", "huge-offset", b"\x01\x02\x03\x04" + struct.pack("<Q", 2**64 - 2) + b"\x00\x00" + b"0123456789abcdef")

# -- utf8: split count u8, u16 LE splits, text -------------------------------
def utf8_seed(text, splits=()):
    return bytes([len(splits)]) + b"".join(struct.pack("<H", s) for s in splits) + text


utf8 = {
    "autobahn-6.2-valid": ("Hello-µ@ßöäüàá-UTF-8!!".encode(), (1, 7)),
    "kosme": ("κόσμε".encode(), (1, 2, 3)),
    "four-byte": ("𝄞 €".encode(), (1, 2, 3)),
    "autobahn-6.3-surrogate": (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", (12,)),
    "autobahn-6.4-above-max": (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64", (12,)),
    "overlong-slash": (b"\xc0\xaf", ()),
    "overlong-3": (b"\xe0\x80\xaf", (1,)),
    "truncated": (b"text\xe2\x82", (5,)),
    "lone-continuation": (b"ab\x80cd", ()),
}
for name, (text, splits) in utf8.items():
    write("utf8", name, utf8_seed(text, splits))

# -- handshake: config byte, chunk list, request -----------------------------
SAMPLE = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
write("handshake", "rfc-sample", b"\x00\x00" + SAMPLE)
write("handshake", "rfc-sample-bytewise", b"\x00\x01\x01" + SAMPLE + b"\x81\x85" + KEY)
write("handshake", "version-8", b"\x00\x00" + SAMPLE.replace(b"Version: 13", b"Version: 8"))
write("handshake", "too-many-headers", bytes([3 << 3]) + b"\x00" + SAMPLE)
write("handshake", "head-too-large", bytes([5]) + b"\x02\x10\x20" + SAMPLE)
write("handshake", "post-with-body", b"\x00\x00" + SAMPLE.replace(b"GET", b"POST").replace(b"Origin", b"Content-Length: 5\r\nOrigin"))
write("handshake", "http-1.0", b"\x00\x00GET / HTTP/1.0\r\nHost: a\r\n\r\n")
write("handshake", "tls-hello", b"\x00\x00\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")

# -- protocol: flags, limits, chunk list, stream -----------------------------
def limits(msg=0xFFFF, frm=0xFFFF, frags=0xFF, rbs=4096):
    return struct.pack("<HHBH", msg, frm, frags, rbs)


def proto(stream, client=False, lim=None, chunks=()):
    head = bytes([1 if client else 0]) + (lim or limits())
    return head + bytes([len(chunks)]) + bytes(chunks) + stream


c = lambda b0, p: frame(b0, p, KEY)  # noqa: E731 - a client's frame
write("protocol", "rfc-masked-hello", proto(c(0x81, b"Hello")))
write("protocol", "rfc-client-examples", proto(bytes.fromhex("810548656c6c6f010348656c80026c6f890548656c6c6f827e0100") + bytes(256), client=True))
write("protocol", "fragments-with-pings", proto(c(0x01, b"frag1") + c(0x89, b"ping") + c(0x00, b"frag2") + c(0x8A, b"") + c(0x80, b"frag3"), chunks=(1, 3, 7)))
write("protocol", "invalid-utf8-fragment", proto(c(0x01, "κόσμε".encode()) + c(0x80, b"\xce\xba\xf4\x90\x80\x80")))
write("protocol", "invalid-utf8-whole", proto(c(0x81, b"\xed\xa0\x80")))
write("protocol", "close-1000-reason", proto(c(0x88, struct.pack(">H", 1000) + "bye ✓".encode()) + c(0x81, b"late")))
write("protocol", "close-empty", proto(c(0x88, b"")))
write("protocol", "close-1005", proto(c(0x88, struct.pack(">H", 1005))))
write("protocol", "close-one-byte", proto(c(0x88, b"\x03")))
write("protocol", "close-bad-reason", proto(c(0x88, b"\x03\xe8\xff")))
write("protocol", "unmasked-from-client", proto(frame(0x81, b"Hello")))
write("protocol", "rsv-bits", proto(c(0xC1, b"x")))
write("protocol", "message-limit", proto(c(0x02, b"12345") + c(0x80, b"123456"), lim=limits(msg=10)))
write("protocol", "large-direct-read", proto(c(0x82, bytes(range(256)) * 8), lim=limits(rbs=64)))
write("protocol", "empty-fragments", proto(c(0x01, b"") + c(0x00, b"") + c(0x00, b"") + c(0x80, b""), lim=limits(frags=3)))
# Structured mode: items are tag, b0, spec, [key], payload (see protocol_input).
structured = (
    bytes([0, 0x01, 0x00]) + KEY + bytes([3]) + b"Hel"  # text fragment, masked as required
    + bytes([0, 0x89, 0x00]) + KEY + bytes([1]) + b"p"  # ping between fragments
    + bytes([0, 0x80, 0x04]) + KEY + bytes([2]) + b"lo"  # final fragment, 16-bit length form
    + bytes([0, 0x82, 0x10]) + KEY + struct.pack("<H", 300) + bytes([3]) + b"abcd"  # 300 bytes of "abcd"
    + bytes([0x83]) + b"\x88\x82\x00"  # noise
)
write("protocol", "structured", bytes([2]) + limits() + b"\x02\x05\x00" + structured)

# -- received: split u16 LE, then a protocol input -------------------------
# The split is how many stream bytes arrive with the handshake: for a client,
# mod the stream's length + 1; for a server, past the request head in the
# read that completes it.
def received(split, seed):
    return struct.pack("<H", split) + seed


write("received", "none-early", received(0, proto(c(0x81, b"Hello") + c(0x88, struct.pack(">H", 1000)))))
write("received", "all-early", received(0xFFFF, proto(c(0x81, b"Hello") + c(0x89, b"ping") + c(0x82, bytes(300)))))
write("received", "mid-header", received(1, proto(c(0x81, b"Hello") + c(0x89, b"ping"), chunks=(2, 3))))
write("received", "mid-payload", received(9, proto(c(0x01, b"frag1") + c(0x89, b"ping") + c(0x80, b"frag2"), chunks=(1,))))
write("received", "client-rfc-examples", received(
    7, proto(bytes.fromhex("810548656c6c6f010348656c80026c6f890548656c6c6f") + frame(0x88, struct.pack(">H", 1001) + b"bye"), client=True)))
write("received", "client-large-early", received(
    5000, proto(frame(0x82, bytes(range(256)) * 20) + frame(0x81, b"after"), client=True, lim=limits(rbs=64), chunks=(0, 17))))
write("received", "invalid-utf8-early", received(4, proto(c(0x81, b"\xed\xa0\x80") + c(0x81, b"late"))))
write("received", "error-after-ping", received(8, proto(c(0x89, b"p1") + c(0x89, b"p2") + frame(0x81, b"unmasked"))))
write("received", "limit-early", received(12, proto(c(0x02, b"12345") + c(0x80, b"123456"), lim=limits(msg=10))))

# -- roundtrip: flags, read buffer size, key seed, chunk list, items ---------
def rt(items, flags=0, rbs=0, seed=1, chunks=()):
    return bytes([flags, rbs]) + struct.pack("<Q", seed) + bytes([len(chunks)]) + bytes(chunks) + items


def message(payload, text, splits=(), controls=None):
    out = bytes([0x08 if text else 0x00, len(payload)]) + payload
    out += bytes([len(splits)]) + b"".join(struct.pack("<H", s) for s in splits)
    for i in range(len(splits)):
        ctl = (controls or {}).get(i)
        out += b"\x00" if ctl is None else bytes([1, len(ctl)]) + ctl
    return out


def close(sel, reason):
    return bytes([7]) + struct.pack("<H", sel) + bytes([len(reason)]) + reason


write("roundtrip", "rfc-hello-fragmented-with-ping", rt(message(b"Hello", True, (3,), {0: b"ping"})))
write("roundtrip", "utf8-split-inside-chars", rt(message("κόσμε €𝄞".encode(), True, (1, 3, 3, 12), {1: b"", 2: b"x"}), chunks=(1,)))
write("roundtrip", "binary-and-pings", rt(message(bytes(range(200)), False, (100,)) + bytes([5, 4]) + b"ping" + bytes([6, 0])))
write("roundtrip", "close-with-code", rt(message(b"bye", True) + close(0, "normal ✓".encode())))
write("roundtrip", "client-receiver-tight", rt(message(b"abcdef", False, (2, 4)) + message(b"xyz", True), flags=3, rbs=16, chunks=(2, 5)))
write("roundtrip", "big-repeated", rt(bytes([0x88]) + struct.pack("<H", 5000) + bytes([4]) + "€ab".encode() + b"\x02" + struct.pack("<HH", 7, 4000) + b"\x01\x00\x00", rbs=64, chunks=(0, 17)))
