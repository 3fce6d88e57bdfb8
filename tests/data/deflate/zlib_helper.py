#!/usr/bin/env python3
"""zlib's side of tests/deflate_zlib.rs: raw DEFLATE with RFC 7692 framing.

Usage: zlib_helper.py MANIFEST

Each line of MANIFEST is a command; file names are relative to its directory.

  compress LEVEL WBITS STRATEGY TAKEOVER FILE...
      Compresses each FILE as one message with
      zlib.compressobj(LEVEL, DEFLATED, -WBITS, 8, STRATEGY), ends it with
      Z_SYNC_FLUSH and strips the 00 00 FF FF tail (RFC 7692 7.2.1), into
      FILE.z. TAKEOVER 1: one compressor for all the files in order (context
      takeover); 0: a fresh one per file.

  decompress WBITS TAKEOVER FILE...
      Appends 00 00 FF FF to each FILE (RFC 7692 7.2.2) and inflates it with
      zlib.decompressobj(-WBITS), in one call per message, into FILE.out.
      TAKEOVER 1: one decompressor for all the files in order; 0: one each.

Prints "ok" when every command succeeded; exits non-zero otherwise.
"""
import os
import sys
import zlib

TAIL = b"\x00\x00\xff\xff"


def compress(base, level, wbits, strategy, takeover, files):
    c = None
    for name in files:
        if c is None or not takeover:
            c = zlib.compressobj(level, zlib.DEFLATED, -wbits, 8, strategy)
        with open(os.path.join(base, name), "rb") as f:
            data = f.read()
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        if not out.endswith(TAIL):
            sys.exit(f"{name}: zlib output does not end with 00 00 ff ff")
        with open(os.path.join(base, name + ".z"), "wb") as f:
            f.write(out[:-4])


def decompress(base, wbits, takeover, files):
    d = None
    for name in files:
        if d is None or not takeover:
            d = zlib.decompressobj(-wbits)
        with open(os.path.join(base, name), "rb") as f:
            data = f.read()
        try:
            out = d.decompress(data + TAIL)
        except zlib.error as e:
            sys.exit(f"{name}: zlib cannot inflate it: {e}")
        if d.unconsumed_tail or d.unused_data:
            sys.exit(f"{name}: zlib left input unused")
        with open(os.path.join(base, name + ".out"), "wb") as f:
            f.write(out)


def main():
    manifest = sys.argv[1]
    base = os.path.dirname(manifest)
    with open(manifest) as f:
        for line in f:
            cmd, *args = line.split()
            if cmd == "compress":
                level, wbits, strategy, takeover = map(int, args[:4])
                compress(base, level, wbits, strategy, takeover == 1, args[4:])
            elif cmd == "decompress":
                wbits, takeover = map(int, args[:2])
                decompress(base, wbits, takeover == 1, args[2:])
            else:
                sys.exit(f"unknown command {cmd!r}")
    print("ok")


if __name__ == "__main__":
    main()
