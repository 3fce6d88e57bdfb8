#!/usr/bin/env python3
"""Writes seeds for the `inflate` and `deflate_roundtrip` targets into
CORPUS/<target>/seed-*, in the formats documented at the top of each
target: zlib streams (from tests/data/deflate/zlib_vectors.txt and made here
with Python's zlib) behind a header, and a few plain messages.

Usage: python3 make_deflate_seeds.py CORPUS   (normally fuzz/corpus)
"""
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ROOT = None  # set from the command line
VECTORS = os.path.join(REPO, "tests", "data", "deflate", "zlib_vectors.txt")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def messages(ms):
    return b"".join(struct.pack("<H", len(m)) + m for m in ms)


def zlib_messages(ms, level=6, wbits=15, strategy=zlib.Z_DEFAULT_STRATEGY):
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits, 8, strategy)
    return [(c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH))[:-4] for m in ms]


def main():
    n = 0
    vector, wbits, compressed, plain = None, 15, [], []

    def flush():
        nonlocal n
        if vector is None:
            return
        # window bits, limit 1 MiB, takeover, pieces of up to 64 bytes; seed
        write("inflate", vector, bytes([wbits - 8, 7, 4 << 1, 1]) + messages(compressed))
        write("deflate_roundtrip", vector, bytes([n % 3, wbits - 8, 0xFF, 0x03]) + messages(plain))
        n += 1

    with open(VECTORS) as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "vector":
                flush()
                vector, wbits, compressed, plain = parts[1], int(parts[2]), [], []
            elif parts and parts[0] == "message":
                plain.append(b"" if parts[1] == "-" else bytes.fromhex(parts[1]))
                compressed.append(bytes.fromhex(parts[2]))
    flush()
    # RFC 7692 7.2.3 examples, byte by byte.
    rfc = [bytes.fromhex(h) for h in (
        "f248cdc9c90700", "0005 00faff48656c6c6f00".replace(" ", ""),
        "f348cdc9c9070000", "f2480500000000ffffcac9c90700")]
    write("inflate", "rfc7692", bytes([7, 7, 0, 1]) + messages(rfc))
    # A small limit against a repetitive stream: the limit path.
    write("inflate", "limit", bytes([7, 3, 8 << 1, 5]) + messages(zlib_messages([b"a" * 60000])))
    # No context takeover, small window.
    write("inflate", "window9", bytes([1, 6, 1 | (3 << 1), 9]) +
          messages(zlib_messages([b"abcdefgh" * 200, b"xyz" * 300], 9, 9)))
    write("deflate_roundtrip", "repeats", bytes([1, 7, 0x55, 0xC7]) +
          messages([b"hello world ", bytes(range(256)), b"", b"\x00" * 1000]))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    ROOT = sys.argv[1]
    main()
