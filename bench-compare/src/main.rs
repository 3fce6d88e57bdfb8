//! In-memory decoding, stdws against tungstenite, in one process: a buffer of
//! masked client frames through the server side into messages.
//!
//! Target (issue 6): at least 3x tungstenite's `read` in messages/s at 64 B,
//! and in GB/s at 16 KiB and 1 MiB.

#[path = "../../benches/common/frames.rs"]
mod frames;
#[path = "../../benches/common/harness.rs"]
mod harness;

use frames::{client_messages, stdws_decode, stdws_decode_ref, stdws_steady, Cycle, Replay};
use harness::Harness;
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};

fn tungstenite_decode(data: &[u8], count: usize) -> usize {
    let config = WebSocketConfig::default()
        .max_frame_size(None)
        .max_message_size(None);
    let mut ws = WebSocket::from_raw_socket(Replay { data }, Role::Server, Some(config));
    for _ in 0..count {
        std::hint::black_box(ws.read().unwrap());
    }
    count
}

/// tungstenite on `data` replayed for ever, as [`stdws_steady`].
fn tungstenite_steady(data: &[u8]) -> WebSocket<Cycle<'_>> {
    let config = WebSocketConfig::default()
        .max_frame_size(None)
        .max_message_size(None);
    WebSocket::from_raw_socket(Cycle { data, at: 0 }, Role::Server, Some(config))
}

fn main() {
    let h = Harness::from_args();
    for (size, count) in [(64, 20_000), (1024, 4096), (16 << 10, 256), (1 << 20, 8)] {
        let data = client_messages(size, count);
        let owned = h.messages("decode-stdws-recv", size, count, || {
            assert_eq!(stdws_decode(&data), count);
        });
        let borrowed = h.messages("decode-stdws-recv_ref", size, count, || {
            assert_eq!(stdws_decode_ref(&data), count);
        });
        let theirs = h.messages("decode-tungstenite-read", size, count, || {
            assert_eq!(tungstenite_decode(&data, count), count);
        });
        // The same, on one connection that stays open: what a busy client
        // costs once its buffers have grown (above, each batch pays for a
        // fresh connection's: at 1 MiB, zeroing and faulting in its buffer).
        let mut ws = stdws_steady(&data);
        let steady = h.messages("decode-stdws-recv_ref-steady", size, count, || {
            for _ in 0..count {
                std::hint::black_box(ws.recv_ref().unwrap());
            }
        });
        let mut tws = tungstenite_steady(&data);
        let theirs_steady = h.messages("decode-tungstenite-read-steady", size, count, || {
            for _ in 0..count {
                std::hint::black_box(tws.read().unwrap());
            }
        });
        // The floor for any decoder reading from a stream: copy each payload
        // out of the source, unmask it; no parsing, no state.
        let mut out = vec![0u8; size];
        let frame_len = data.len() / count;
        let floor = h.messages("decode-floor-memcpy+unmask", size, count, || {
            for frame in data.chunks(frame_len) {
                out.copy_from_slice(&frame[frame_len - size..]);
                stdws::mask::apply_mask(&mut out, [1, 2, 3, 4], 0);
                std::hint::black_box(&out);
            }
        });
        // The ratio to the floor, with their samples alternating: steadier
        // than the ratio of two medians taken a second apart.
        let floor_once = |out: &mut Vec<u8>| {
            for frame in data.chunks(frame_len) {
                out.copy_from_slice(&frame[frame_len - size..]);
                stdws::mask::apply_mask(out, [1, 2, 3, 4], 0);
                std::hint::black_box(&*out);
            }
        };
        let (r, lo, hi) = h.ratio(
            || {
                for _ in 0..count {
                    std::hint::black_box(ws.recv_ref().unwrap());
                }
            },
            || floor_once(&mut out),
        );
        println!(
            "floor size={size}, steady, interleaved: recv_ref reaches {:.0}% of it ({:.0}..{:.0}%)",
            100.0 * r,
            100.0 * lo,
            100.0 * hi
        );
        let gb = |rate: f64| rate * size as f64 / 1e9;
        println!(
            "floor size={size}, steady: recv_ref reaches {:.0}% of it, tungstenite {:.0}%  (GB/s: recv_ref {:.3}, tungstenite {:.3})",
            100.0 * steady / floor,
            100.0 * theirs_steady / floor,
            gb(steady),
            gb(theirs_steady)
        );
        println!(
            "floor size={size}: memcpy+unmask {:.3} GB/s; recv_ref reaches {:.0}% of it, tungstenite {:.0}%",
            gb(floor),
            100.0 * borrowed / floor,
            100.0 * theirs / floor
        );
        println!(
            "ratio decode size={size}: recv_ref/tungstenite {:.2}, recv/tungstenite {:.2}  (GB/s: recv_ref {:.3}, recv {:.3}, tungstenite {:.3})",
            borrowed / theirs,
            owned / theirs,
            gb(borrowed),
            gb(owned),
            gb(theirs)
        );
    }
}
