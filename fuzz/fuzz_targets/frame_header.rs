//! `frame_header`: arbitrary bytes into `stdws::frame::parse`.
//!
//! The parser is the first thing to see a peer's bytes, so it must give an
//! answer for every input (a header, "need more", or an error), never panic,
//! and give the same answer however much of the header has arrived.
//!
//! Checked for the raw input:
//! * `parse` looks at no more than `MAX_HEADER_LEN` bytes: trailing bytes
//!   never change its answer;
//! * a complete header's length is what its first two bytes announce, and
//!   every field matches its bits (independently decoded here); control
//!   frames are final and at most 125 bytes; lengths fit in 63 bits;
//! * every proper prefix of a complete header is `Partial`; every prefix of
//!   an invalid one is `Partial` or the very same error, and the error shows
//!   up exactly at the byte that decides it (byte 0 for reserved opcodes and
//!   fragmented control frames, byte 1 for long control frames, the end of the
//!   header for a 64-bit length with its top bit set);
//! * `FrameHeader::encode` of a parsed header parses back to the same header;
//!   it reproduces the input bytes when the input used the minimal length
//!   encoding, and is strictly shorter when it did not.
//!
//! Checked for a header built from the same bytes (structure-aware half):
//! `encode` writes the minimal length form and `parse` reads it back intact.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws::frame::{parse, FrameError, FrameHeader, OpCode, MAX_HEADER_LEN};
use stdws::Status;
use stdws_fuzz::Cursor;

/// Header length from the first two bytes alone: 2, plus 2 or 8 bytes of
/// extended length, plus 4 of mask.
fn announced_len(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

fn check_raw(data: &[u8]) {
    let result = parse(data);
    let window = &data[..data.len().min(MAX_HEADER_LEN)];
    assert_eq!(parse(window), result, "parse read past MAX_HEADER_LEN");

    match result {
        Ok(Status::Complete((h, n))) => {
            let (b0, b1) = (data[0], data[1]);
            assert_eq!(n, announced_len(b1));
            assert!(n <= MAX_HEADER_LEN && n <= data.len());
            assert_eq!(h.fin, b0 & 0x80 != 0);
            assert_eq!(h.rsv, (b0 >> 4) & 7);
            assert_eq!(h.opcode.bits(), b0 & 0x0f);
            assert_eq!(OpCode::from_bits(b0 & 0x0f), Some(h.opcode));
            assert_eq!(h.mask.is_some(), b1 & 0x80 != 0);
            if let Some(key) = h.mask {
                assert_eq!(key[..], data[n - 4..n]);
            }
            let len = match b1 & 0x7f {
                126 => u64::from(u16::from_be_bytes([data[2], data[3]])),
                127 => u64::from_be_bytes(data[2..10].try_into().unwrap()),
                short => u64::from(short),
            };
            assert_eq!(h.payload_len, len);
            assert!(h.payload_len < 1 << 63);
            if h.opcode.is_control() {
                assert!(h.fin && h.payload_len <= 125);
            }
            for k in 0..n {
                assert_eq!(parse(&data[..k]), Ok(Status::Partial), "prefix {k}");
            }
            assert_eq!(parse(&data[..n]), result, "bytes after the header mattered");

            let mut out = [0; MAX_HEADER_LEN];
            let m = h.encode(&mut out);
            assert_eq!(parse(&out[..m]), Ok(Status::Complete((h, m))));
            let minimal = match b1 & 0x7f {
                126 => len > 125,
                127 => len > 0xffff,
                _ => true,
            };
            if minimal {
                assert_eq!(out[..m], data[..n], "re-encoding changed the bytes");
            } else {
                assert!(m < n, "non-minimal input, but encode was not shorter");
            }
        }
        Ok(Status::Partial) => {
            assert!(data.len() < MAX_HEADER_LEN);
            if data.len() >= 2 {
                assert!(data.len() < announced_len(data[1]));
            }
            for k in 0..data.len() {
                assert_eq!(parse(&data[..k]), Ok(Status::Partial), "prefix {k}");
            }
        }
        Err(e) => {
            // The shortest prefix that errs, and every longer one, give `e`.
            let mut first = None;
            for k in 0..=window.len() {
                match parse(&data[..k]) {
                    Ok(Status::Partial) => assert!(first.is_none(), "Partial after an error"),
                    Err(e2) => {
                        assert_eq!(e2, e, "prefix {k} gives another error");
                        first.get_or_insert(k);
                    }
                    Ok(Status::Complete(_)) => {
                        panic!("prefix {k} of an invalid header is complete")
                    }
                }
            }
            let first = first.unwrap();
            let b0 = data[0];
            match e {
                FrameError::ReservedOpcode(op) => {
                    assert_eq!((first, op), (1, b0 & 0x0f));
                    assert_eq!(OpCode::from_bits(op), None);
                }
                FrameError::FragmentedControlFrame => {
                    assert_eq!(first, 1);
                    assert!(b0 & 0x08 != 0 && b0 & 0x80 == 0);
                }
                FrameError::ControlFrameTooLong(n) => {
                    assert_eq!((first, n), (2, 126));
                    assert!(b0 & 0x08 != 0 && data[1] & 0x7f > 125);
                }
                FrameError::LengthOverflow => {
                    assert_eq!(first, announced_len(data[1]));
                    assert!(data[1] & 0x7f == 127 && data[2] & 0x80 != 0);
                }
                // `FrameError` is `#[non_exhaustive]`: a new variant needs a
                // rule here.
                other => panic!("an error this target has no rule for: {other:?}"),
            }
        }
    }
}

fn check_encode(data: &[u8]) {
    const OPCODES: [OpCode; 6] = [
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ];
    let mut c = Cursor::new(data);
    let b = c.u8();
    let opcode = OPCODES[usize::from(b % 6)];
    let masked = b & 0x08 != 0;
    // A random shift reaches every length class: 7-bit, 16-bit and 64-bit.
    let shift = c.u8() % 64;
    let mut payload_len = (c.u64() >> shift) & (u64::MAX >> 1);
    if opcode.is_control() {
        payload_len %= 126;
    }
    let header = FrameHeader {
        fin: opcode.is_control() || b & 0x80 != 0,
        rsv: (b >> 4) & 7,
        opcode,
        mask: masked.then(|| c.array()),
        payload_len,
    };
    let mut out = [0; MAX_HEADER_LEN];
    let n = header.encode(&mut out);
    let ext = match payload_len {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    assert_eq!(
        n,
        2 + ext + if masked { 4 } else { 0 },
        "not the minimal form"
    );
    assert_eq!(parse(&out[..n]), Ok(Status::Complete((header, n))));
}

fuzz_target!(|data: &[u8]| {
    check_raw(data);
    check_encode(data);
});
