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

# -- pair: flags, key seed, [deflate], [limits], [timeouts], operations -----
# See the module docs of fuzz/src/pair.rs. An op byte is (kind << 1) | side,
# side 0 the client, 1 the server.
CLIENT, SERVER = 0, 1


def pair(ops, flags=0, seed=7, deflate=b"", climits=b"", slimits=b"", ctimeouts=b"", stimeouts=b""):
    assert bool(flags & 1) == bool(deflate) and bool(flags & 2) == bool(climits)
    assert bool(flags & 4) == bool(slimits) and bool(flags & 8) == bool(ctimeouts)
    assert bool(flags & 16) == bool(stimeouts)
    return bytes([flags]) + struct.pack("<Q", seed) + deflate + climits + slimits + ctimeouts + stimeouts + b"".join(ops)


def op(kind, side, *fields):
    return bytes([(kind << 1) | side]) + b"".join(fields)


def small(data):  # a u8-length payload
    assert len(data) < 256
    return bytes([len(data)]) + data


def pattern(n, unit):  # a u16-length pattern payload: n bytes of unit (1 to 8 bytes) repeated
    assert 1 <= len(unit) <= 8 and n < 10000
    return struct.pack("<H", n) + bytes([len(unit) - 1]) + unit


def whole(side, data, text=False, api=0, pat=None):
    sub = api | (4 if text else 0) | (8 if pat else 0)
    return op(0, side, bytes([sub]), pattern(*pat) if pat else small(data))


def first_fragment(side, data, split, text=False, pat=None):
    sub = (4 if text else 0) | (8 if pat else 0)
    return op(2, side, bytes([sub]), pattern(*pat) if pat else small(data), struct.pack("<H", split))


def next_fragment(side, k, last=False):
    return op(3, side, bytes([1 if last else 0]), struct.pack("<H", k))


def ping(side, data):
    return op(4, side, small(data))


def pong(side, data):
    return op(5, side, small(data))


def close(side, sel, reason=b""):  # sel: sendable_code(sel): 0-3 1000-1003, 4-11 1007-1014, 12- 3000-
    assert len(reason) < 125
    return op(6, side, struct.pack("<H", sel), small(reason))


def move(side, limit=0, slices=8, read_buf=False, drain=True, cap=0):
    o = (slices - 1) | (8 if read_buf else 0) | (16 if drain else 0) | (cap << 5)
    return op(7, side, struct.pack("<H", limit), bytes([o]))


def events(side, api=0, n=0):
    return op(10, side, bytes([api | (n << 2)]))


def time(side, mode, amount):
    return op(11, side, bytes([mode]), struct.pack("<H", amount))


def direct(side, kind, data, w, owned=False):
    return op(12, side, bytes([kind | (8 if owned else 0)]), small(data), struct.pack("<H", w))


SETTLE = op(14, 0)
# 5 timeouts: read, keepalive interval, keepalive timeout, close, write (x 10 ms).
def timeouts(read=0, interval=0, timeout=0, close=0, write=0):
    return bytes([read, interval, timeout, close, write])


def plimits(msg, frm, frags, rbs=0):
    return struct.pack("<HHBB", msg, frm, frags, rbs)


# Text payloads go through text_from (pair.rs): bytes over 0x7f become
# characters of every UTF-8 length, so any bytes make valid text.
KAPPA = "κόσμε".encode()
write("pair", "hello-both-ways", pair([
    whole(CLIENT, "Hello €".encode(), text=True),
    whole(SERVER, bytes(range(10)), api=2),
    whole(CLIENT, b"ref", text=True, api=1),
    move(CLIENT), move(SERVER), SETTLE]))
write("pair", "fragments-with-pings-bytewise", pair([
    first_fragment(CLIENT, KAPPA + "€𝄞".encode(), 3, text=True),  # cut inside a character
    ping(CLIENT, b"are you there"),
    next_fragment(CLIENT, 5),
    pong(CLIENT, b""),
    next_fragment(CLIENT, 0, last=True),
    first_fragment(SERVER, b"", 100, pat=(300, bytes(range(5)))),
    ping(SERVER, b"p"),
    next_fragment(SERVER, 0, last=True),
] + [move(CLIENT, limit=1, slices=2, read_buf=True, drain=i % 3 == 0) for i in range(40)]
  + [move(SERVER, limit=7, slices=3) for _ in range(50)] + [SETTLE]))
write("pair", "close-handshake-with-reason", pair([
    whole(SERVER, b"last words", text=True),
    close(SERVER, 12 + 1000, b"bye!"),  # 4000
    whole(SERVER, b"too late"),  # refused: Closed
    move(SERVER), events(CLIENT, api=1), move(CLIENT), events(SERVER, api=3)], flags=0))
write("pair", "simultaneous-close", pair([
    close(CLIENT, 0, b"client"), close(SERVER, 1, b"server"), SETTLE]))
write("pair", "message-dropped-after-our-close", pair([
    whole(CLIENT, b"in flight"), ping(CLIENT, b"still answered? no"),
    close(SERVER, 0), move(CLIENT), events(SERVER), SETTLE]))
write("pair", "deflate-both-ways", pair([
    whole(CLIENT, b"", text=True, pat=(5000, b"compress")),
    whole(SERVER, b"", text=True, pat=(3000, "€uro ".encode())),
    whole(CLIENT, b"short", text=True),  # under the threshold: not compressed
    whole(CLIENT, b"", pat=(2000, bytes(range(7)))),
    first_fragment(CLIENT, bytes(100), 50), next_fragment(CLIENT, 0, last=True),  # fragments: never compressed
    direct(SERVER, 0, b"a direct frame long enough to be compressed by the server", 9),
    SETTLE], flags=1, deflate=bytes([0x01, 0x07, 0x01, 0x07])))
write("pair", "deflate-small-windows-no-takeover", pair([
    whole(CLIENT, b"", pat=(4000, b"abcabcad")), whole(CLIENT, b"", pat=(4000, b"abcabcad")),
    whole(SERVER, b"", text=True, pat=(4000, b"xyz")),
    SETTLE], flags=1, deflate=bytes([0x80 | 0x20 | 0x01, 0x01 | (1 << 3), 0x40 | 0x02 | (1 << 2), 0x01])))
write("pair", "server-limit-1009", pair([
    whole(CLIENT, b"fits"), whole(CLIENT, bytes(200)), whole(CLIENT, b"never read"),
    SETTLE], flags=4, slimits=plimits(100, 0xFFFF, 255)))
write("pair", "client-fragment-limits", pair([
    first_fragment(SERVER, bytes(30), 10), ping(SERVER, b"between"),
    next_fragment(SERVER, 10), next_fragment(SERVER, 0, last=True),  # 3 frames: max_fragments 2
    SETTLE], flags=2, climits=plimits(1000, 1000, 2, 16)))
write("pair", "keepalive-ping-and-pong", pair([
    time(SERVER, 0, 299), time(SERVER, 0, 1),  # 300 ms: the ping
    SETTLE,
    time(SERVER, 1, 0),  # to the next deadline
    SETTLE], flags=16 | 32, stimeouts=timeouts(interval=30, timeout=10)))
write("pair", "keepalive-no-pong-1001", pair([
    time(SERVER, 1, 0),  # the ping
    move(SERVER),  # the client gets it, its pong never moves
    time(SERVER, 1 | 0x80, 0), time(SERVER, 1, 0),  # just before, then at, the deadline
    SETTLE], flags=16, stimeouts=timeouts(interval=30, timeout=10)))
write("pair", "close-timeout", pair([
    close(CLIENT, 0), move(CLIENT, drain=False),  # the server never answers: its events wait
    time(CLIENT, 0, 100), time(CLIENT, 1, 0), SETTLE], flags=8, ctimeouts=timeouts(close=20)))
write("pair", "write-stall-breaks", pair([
    whole(SERVER, b"", pat=(6000, b"big")), move(SERVER, limit=10),
    time(SERVER, 0 | 4, 100), time(SERVER, 0 | 4, 200), time(SERVER, 0 | 4, 300),  # write timeout 250 ms
    SETTLE], flags=16, stimeouts=timeouts(write=25)))
write("pair", "read-timeout-drops-later-data", pair([
    time(CLIENT, 0, 150), whole(SERVER, b"late but delivered"), SETTLE],
    flags=8 | 32, ctimeouts=timeouts(read=10)))
write("pair", "direct-writes-and-refusals", pair([
    direct(CLIENT, 1, b"direct binary", 5, owned=True),
    direct(CLIENT, 2, b"direct ping", 3),
    SETTLE,
    next_fragment(CLIENT, 0),  # a continuation with nothing to continue: refused
    op(4, SERVER, bytes([126]), bytes(126)),  # a 126-byte ping: refused
    close(SERVER, 0xfffe),  # 1005: refused
    close(SERVER, 0xffff),  # a close without a code
    SETTLE]))
write("pair", "deflate-inflated-over-limit", pair([
    whole(CLIENT, b"", text=True, pat=(1000, b"12345678")),  # exactly the limit: fine
    whole(CLIENT, b"", text=True, pat=(5000, b"12345678")),  # inflates past it: 1009
    SETTLE], flags=1 | 4, deflate=bytes([0x01, 0x07, 0x01, 0x07]), slimits=plimits(1000, 1000, 4)))
write("pair", "tight-limits-exactly-met", pair([
    whole(CLIENT, b"", pat=(300, b"x")),
    first_fragment(SERVER, b"", 100, pat=(300, b"y")), next_fragment(SERVER, 100), next_fragment(SERVER, 0, last=True),
    SETTLE], flags=2 | 4, climits=plimits(300, 100, 3, 14), slimits=plimits(300, 300, 1, 20)))
