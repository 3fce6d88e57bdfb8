//! Micro benchmarks of the sans-IO layers and in-memory decoding:
//! `cargo bench --bench micro [-- --quick]`.
//!
//! Targets (issue 6): in-place unmasking at least as fast as `memcpy` of the
//! same buffer at 16 KiB and 1 MiB, and never slower than a byte loop at 1 to
//! 16 bytes. Decoding against tungstenite lives in `bench-compare/`.

#[path = "common/frames.rs"]
mod frames;
#[path = "common/harness.rs"]
mod harness;

use harness::{keep, Harness};
use stdws::mask::{apply_mask, apply_mask_reference};

const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

fn main() {
    let h = Harness::from_args();

    for size in [16 << 10, 1 << 20] {
        let src = vec![0xa5u8; size];
        let mut buf = vec![0u8; size];
        let copy = h.bytes("memcpy", size, || {
            buf.copy_from_slice(keep(&src));
            keep(&buf);
        });
        let fast = h.bytes("unmask", size, || apply_mask(keep(&mut buf), KEY, 0));
        h.bytes("unmask-byte-loop", size, || {
            apply_mask_reference(keep(&mut buf), KEY, 0)
        });
        println!("ratio unmask/memcpy size={size} {:.2}", fast / copy);
    }
    // Short payloads: per call, so the setup cost shows.
    for size in 1..=16 {
        let mut buf = [0u8; 16];
        let calls = 1000;
        let fast = h.bytes("unmask-short", size * calls, || {
            for i in 0..calls {
                apply_mask(keep(&mut buf[..size]), KEY, i);
            }
        });
        let slow = h.bytes("unmask-short-byte-loop", size * calls, || {
            for i in 0..calls {
                apply_mask_reference(keep(&mut buf[..size]), KEY, i);
            }
        });
        println!("ratio unmask/byte-loop size={size} {:.2}", fast / slow);
    }

    let headers: [&[u8]; 4] = [
        &[0x81, 0x05],
        &[0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4],
        &[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4],
        &[0x89, 0x85, 1, 2, 3, 4],
    ];
    h.messages("header-parse", 0, headers.len(), || {
        for hdr in headers {
            keep(stdws::frame::parse(keep(hdr)).ok());
        }
    });

    let ascii =
        "{\"inputs\":[0,1,0,0,1,0,0,0],\"outputs\":[1,1,0,0,0,0,0,0]} ".repeat(16 << 10 >> 6);
    let mixed = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 € ".repeat(16 << 10 >> 6);
    for (name, text) in [("ascii", &ascii), ("mixed", &mixed)] {
        let bytes = text.as_bytes();
        h.bytes(&format!("utf8-incremental-{name}"), bytes.len(), || {
            let mut v = stdws::utf8::Utf8Validator::new();
            for chunk in bytes.chunks(4096) {
                keep(v.feed(keep(chunk)).is_ok());
            }
            keep(v.finish().is_ok());
        });
        h.bytes(&format!("utf8-std-{name}"), bytes.len(), || {
            keep(std::str::from_utf8(keep(bytes)).is_ok());
        });
    }

    for (size, count) in [(64, 20_000), (16 << 10, 256), (1 << 20, 8)] {
        let data = frames::client_messages(size, count);
        let rate = h.messages("decode-stdws-recv", size, count, || {
            assert_eq!(frames::stdws_decode(&data), count);
        });
        println!(
            "decode-stdws-recv size={size} gb_per_s={:.3}",
            rate * size as f64 / 1e9
        );
        let rate = h.messages("decode-stdws-recv_ref", size, count, || {
            assert_eq!(frames::stdws_decode_ref(&data), count);
        });
        println!(
            "decode-stdws-recv_ref size={size} gb_per_s={:.3}",
            rate * size as f64 / 1e9
        );
    }
}
