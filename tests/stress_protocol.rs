//! A deterministic stress test of the sans-IO receiver (a `Connection`): the `protocol` and
//! `roundtrip` fuzz properties on stable Rust, with no fuzzer.
//!
//! A seeded SplitMix64 generator builds thousands of byte streams: valid and
//! broken frames (reserved opcodes and RSV bits, wrong or missing masks,
//! over-long and lying lengths, fragmentation errors, invalid UTF-8, close
//! frames with good and bad codes and reasons, frames over small limits) mixed
//! with raw noise and cut off at random points, and reads them in random
//! sizes. The checks are the fuzz harness's (`fuzz/src/harness.rs`, included
//! below), so both run the very same properties:
//! * no panic; a reader can always make progress;
//! * `message_memory()` within `max_message_size`, `memory_held()` within
//!   that plus the read buffer's documented maximum;
//! * text is UTF-8; errors close with 1002, 1007 or 1009; after a close or
//!   an error, nothing more, ever;
//! * events and error equal those of a naive whole-stream reference decoder,
//!   for random read sizes and for one big read;
//! * the same chunks handed over in place (`Connection::input`), or in
//!   place and read in turn, give the same events, error and replies;
//! * roundtrip: messages sent by a well-behaved peer (fragmented anywhere,
//!   pings and pongs between fragments, default or exactly-tight limits) come
//!   out unchanged and in order.
//!
//! The run also checks that it reached every `ProtocolError` variant and every
//! kind of event, so a generator that stops producing some case fails loudly.
//! Set `STDWS_STRESS_SEED` to run another seed, `STDWS_STRESS_CASES` for more
//! cases.

#[allow(dead_code)]
#[path = "../fuzz/src/harness.rs"]
mod harness;

use harness::{Control, Item, LenEncoding, Masking};
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use stdws::proto::{Event, ProtocolError, Role};
use stdws::{CloseFrame, Limits, Message};

/// SplitMix64: tiny, seedable, good enough to drive a generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias does not matter here.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn key(&mut self) -> [u8; 4] {
        (self.next() as u32).to_le_bytes()
    }

    /// A payload length: mostly small, sometimes around the 125/126 and
    /// read-buffer boundaries, sometimes a few KiB.
    fn len(&mut self) -> usize {
        match self.below(10) {
            0..=5 => self.below(20),
            6 => self.pick(&[125, 126, 127, 255, 256, 4095, 4096]),
            7 | 8 => self.below(300),
            _ => self.below(5000),
        }
    }

    /// Text with one-, two-, three- and four-byte characters.
    fn text(&mut self, len: usize) -> Vec<u8> {
        const CHARS: [&str; 8] = ["a", "Z", " ", "µ", "ß", "€", "κ", "𝄞"];
        let mut out = String::new();
        while out.len() < len {
            out.push_str(self.pick(&CHARS));
        }
        out.into_bytes()
    }

    /// Text that is broken somewhere: invalid sequences from Autobahn's 6.x
    /// cases, or a character cut off at the end.
    fn bad_text(&mut self, len: usize) -> Vec<u8> {
        const BAD: [&[u8]; 8] = [
            b"\xff",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\x80",
            b"\xce\xba\xe1",
            b"\xf8\x88\x80\x80\x80",
        ];
        let mut text = self.text(len);
        if self.chance(30) {
            text.extend_from_slice(&"€".as_bytes()[..1 + self.below(2)]);
        } else {
            let at = self.below(text.len() + 1);
            let bad = self.pick(&BAD);
            text.splice(at..at, bad.iter().copied());
        }
        text
    }

    fn chunks(&mut self) -> Vec<usize> {
        let n = self.below(6);
        (0..n)
            .map(|_| self.pick(&[1, 2, 3, 7, 13, 64, 200, usize::MAX]))
            .collect()
    }
}

/// Limits small enough that every limit is hit.
fn small_limits(rng: &mut Rng) -> Limits {
    let size = |rng: &mut Rng| match rng.below(4) {
        0 => rng.pick(&[0, 1, 10, 125, 126]),
        1 => rng.below(500),
        _ => rng.below(20_000),
    };
    Limits {
        max_message_size: size(rng),
        max_frame_size: size(rng),
        max_fragments: rng.pick(&[0, 1, 2, 3, 5, 100]),
        read_buffer_size: rng.pick(&[0, 1, 13, 14, 15, 64, 333, 4096]),
        ..Limits::default()
    }
}

/// One frame, valid or broken in some way, as the peer of `role` would
/// (mostly) send it.
fn random_frame(rng: &mut Rng, role: Role, out: &mut Vec<u8>) {
    let opcode: u8 = match rng.below(20) {
        0..=4 => 1,                     // text
        5..=8 => 2,                     // binary
        9..=12 => 0,                    // continuation
        13 | 14 => 9,                   // ping
        15 => 10,                       // pong
        16 | 17 => 8,                   // close
        _ => rng.pick(&[3, 7, 11, 15]), // reserved
    };
    let control = opcode >= 8;
    let fin = if control {
        !rng.chance(5)
    } else {
        rng.chance(60)
    };
    let rsv = if rng.chance(5) { rng.below(8) as u8 } else { 0 };
    let b0 = (u8::from(fin) << 7) | (rsv << 4) | opcode;
    let payload = if opcode == 8 {
        let mut p = Vec::new();
        match rng.below(10) {
            0 => {}
            1 => p.push(rng.next() as u8),
            _ => {
                let code: u16 = rng.pick(&[
                    1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999, 0, 999, 1004, 1005, 1006,
                    1015, 1016, 2999, 5000, 65535,
                ]);
                p.extend_from_slice(&code.to_be_bytes());
                let n = rng.below(20);
                let reason = if rng.chance(85) {
                    rng.text(n)
                } else {
                    rng.bad_text(n)
                };
                p.extend(reason);
            }
        }
        p.truncate(if rng.chance(95) { 125 } else { 200 });
        p
    } else {
        let mut n = rng.len();
        if control && rng.chance(95) {
            n %= 126;
        }
        match rng.below(10) {
            0..=5 => rng.text(n),
            6 => rng.bad_text(n),
            _ => rng.bytes(n),
        }
    };
    let right = role == Role::Server; // whether the frame should be masked
    let masking = match rng.below(20) {
        0 => Masking::None,
        1 => Masking::Masked(rng.key()),
        2 => Masking::KeyOnly(rng.key()),
        _ if right => Masking::Masked(rng.key()),
        _ => Masking::None,
    };
    let len = match rng.below(20) {
        0 => LenEncoding::Force16,
        1 => LenEncoding::Force64,
        2 => LenEncoding::Claim(rng.pick(&[0, 1, 126, 65535, 65536, 1 << 40, 1 << 63, u64::MAX])),
        3 => LenEncoding::Claim(payload.len() as u64 + rng.below(3) as u64),
        _ => LenEncoding::Minimal,
    };
    out.extend(harness::encode_frame(b0, masking, len, &payload));
}

/// What variant an error is, for the coverage check.
fn error_kind(e: &ProtocolError) -> String {
    let debug = match e {
        ProtocolError::Frame(inner) => format!("Frame::{inner:?}"),
        other => format!("{other:?}"),
    };
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn event_kind(e: &Event) -> &'static str {
    match e {
        Event::Message(Message::Text(_)) => "text",
        Event::Message(Message::Binary(_)) => "binary",
        Event::Ping(_) => "ping",
        Event::Pong(_) => "pong",
        Event::Close(Some(_)) => "close with code",
        Event::Close(None) => "close without code",
    }
}

/// A stream for a failure message, cut short if long.
fn hex(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(512).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 512 { "..." } else { "" };
    format!("({} bytes) {shown}{more}", bytes.len())
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Cases per run. Debug builds run fewer (the same properties, ~10x slower
/// code); CI runs the release build.
fn cases() -> u64 {
    let default = if cfg!(debug_assertions) {
        40_000
    } else {
        80_000
    };
    env_or("STDWS_STRESS_CASES", default)
}

#[test]
fn random_streams_keep_every_protocol_invariant() {
    let seed = env_or("STDWS_STRESS_SEED", 0x5eed_0001);
    let mut rng = Rng(seed);
    let mut errors = BTreeSet::new();
    let mut events = BTreeSet::new();
    for case in 0..cases() {
        let role = if rng.chance(50) {
            Role::Server
        } else {
            Role::Client
        };
        let limits = small_limits(&mut rng);
        let mut stream = Vec::new();
        for _ in 0..rng.below(12) {
            if rng.chance(8) {
                let n = 1 + rng.below(20);
                stream.extend(rng.bytes(n));
            } else {
                random_frame(&mut rng, role, &mut stream);
            }
        }
        if rng.chance(20) {
            stream.truncate(rng.below(stream.len() + 1));
        }
        let chunks = rng.chunks();
        let context = format!("seed {seed:#x} case {case}: {role:?} {limits:?} chunks {chunks:?}");
        let outcome =
            std::panic::catch_unwind(|| harness::check_protocol(role, limits, &stream, &chunks))
                .unwrap_or_else(|_| panic!("{context}\nstream {}", hex(&stream)));
        if let Some(e) = &outcome.error {
            errors.insert(error_kind(e));
        }
        events.extend(outcome.events.iter().map(event_kind));
    }
    let all_errors = [
        "ExpectedContinuation",
        "Frame::ControlFrameTooLong",
        "Frame::FragmentedControlFrame",
        "Frame::LengthOverflow",
        "Frame::ReservedOpcode",
        "FrameTooBig",
        "InvalidCloseCode",
        "InvalidClosePayload",
        "InvalidCloseReason",
        "InvalidUtf8",
        "MaskedFrame",
        "MessageTooBig",
        "ReservedBits",
        "TooManyFragments",
        "UnexpectedContinuation",
        "UnmaskedFrame",
    ];
    let missing: Vec<_> = all_errors
        .iter()
        .filter(|e| !errors.contains(**e))
        .collect();
    assert!(missing.is_empty(), "errors never produced: {missing:?}");
    assert_eq!(events.len(), 6, "event kinds produced: {events:?}");
}

/// A message as a well-behaved peer sends it: fragmented at random points,
/// with pings and pongs between some fragments.
fn random_message(rng: &mut Rng) -> Item {
    let text = rng.chance(50);
    let n = if rng.chance(10) {
        rng.below(20_000)
    } else {
        rng.len()
    };
    let payload = if text { rng.text(n) } else { rng.bytes(n) };
    let mut splits: Vec<usize> = (0..rng.below(6))
        .map(|_| rng.below(payload.len() + 1))
        .collect();
    splits.sort_unstable();
    let mut between = Vec::new();
    for i in 0..splits.len() {
        if rng.chance(40) {
            between.push((i, random_control(rng)));
        }
    }
    Item::Message {
        text,
        payload,
        splits,
        between,
    }
}

fn random_control(rng: &mut Rng) -> Control {
    let n = rng.below(126);
    let payload = rng.bytes(n);
    if rng.chance(50) {
        Control::Ping(payload)
    } else {
        Control::Pong(payload)
    }
}

#[test]
fn random_messages_roundtrip() {
    let seed = env_or("STDWS_STRESS_SEED", 0x5eed_0002);
    let mut rng = Rng(seed);
    for case in 0..cases() / 4 {
        let mut items = Vec::new();
        for _ in 0..1 + rng.below(6) {
            items.push(if rng.chance(80) {
                random_message(&mut rng)
            } else {
                Item::Control(random_control(&mut rng))
            });
        }
        if rng.chance(20) {
            let reason_len = rng.below(40);
            let reason = String::from_utf8(rng.text(reason_len)).unwrap();
            items.push(Item::Close(rng.chance(80).then(|| CloseFrame {
                code: harness::sendable_code(rng.next() as u16),
                reason: harness::truncate_str(&reason, 123),
            })));
        }
        let receiver = if rng.chance(70) {
            Role::Server
        } else {
            Role::Client
        };
        let read_buffer_size = rng.pick(&[1, 14, 100, 4096]);
        let limits = if rng.chance(50) {
            harness::tight_limits(&items, read_buffer_size)
        } else {
            Limits {
                read_buffer_size,
                ..Limits::default()
            }
        };
        let chunks = rng.chunks();
        let key_seed = rng.next();
        let mut keys = Rng(key_seed);
        let context =
            format!("seed {seed:#x} case {case}: {receiver:?} {limits:?} chunks {chunks:?}");
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            harness::check_roundtrip(receiver, limits, &items, &mut || keys.key(), &chunks);
        }))
        .unwrap_or_else(|_| panic!("{context}\nitems {items:?}\nkey seed {key_seed}"));
    }
}

/// A compressed data message as a permessage-deflate peer sends it: the
/// payload deflated on its own (no back-references to other messages),
/// fragmented at random points with RSV1 on the first fragment; sometimes
/// corrupted. Returns the message as the receiver should deliver it, if the
/// stream carries it intact.
#[cfg(feature = "deflate")]
fn compressed_message(rng: &mut Rng, role: Role, out: &mut Vec<u8>) -> Option<Message> {
    use stdws::deflate::{Deflater, Level, WindowBits};
    let text = rng.chance(60);
    let n = rng.len();
    let payload = match (text, rng.below(10)) {
        (true, 0) => rng.bad_text(n),
        (true, _) => rng.text(n),
        (false, _) => rng.bytes(n),
    };
    let mut compressed = Vec::new();
    Deflater::new(Level::Fast, WindowBits::MAX).compress_message(&payload, &mut compressed);
    let corrupt = rng.chance(15) && !compressed.is_empty();
    if corrupt {
        let at = rng.below(compressed.len());
        compressed[at] ^= 1 << rng.below(8);
    }
    let pieces = 1 + rng.below(4);
    let mut cuts: Vec<usize> = (1..pieces)
        .map(|_| rng.below(compressed.len() + 1))
        .collect();
    cuts.sort_unstable();
    cuts.push(compressed.len());
    let mut from = 0;
    for (i, &to) in cuts.iter().enumerate() {
        let fin = i + 1 == cuts.len();
        let opcode = match (i, text) {
            (0, true) => 1,
            (0, false) => 2,
            _ => 0,
        };
        let rsv1 = if i == 0 { 0x40 } else { 0 };
        let masking = match role {
            Role::Server => Masking::Masked(rng.key()),
            Role::Client => Masking::None,
        };
        let b0 = (u8::from(fin) << 7) | rsv1 | opcode;
        out.extend(harness::encode_frame(
            b0,
            masking,
            LenEncoding::Minimal,
            &compressed[from..to],
        ));
        from = to;
    }
    let valid = !corrupt && (!text || std::str::from_utf8(&payload).is_ok());
    valid.then(|| match text {
        true => Message::Text(String::from_utf8(payload).unwrap_or_default()),
        false => Message::Binary(payload),
    })
}

#[cfg(feature = "deflate")]
#[test]
fn random_streams_with_deflate_keep_every_invariant_however_read() {
    use stdws::proto::extensions::permessage_deflate::{
        AgreedParams, DeflateConfig, PerMessageDeflate,
    };
    let seed = env_or("STDWS_STRESS_SEED", 0x5eed_0003);
    let mut rng = Rng(seed);
    let mut delivered = 0;
    for case in 0..cases() / 8 {
        let role = if rng.chance(50) {
            Role::Server
        } else {
            Role::Client
        };
        // Room for every intact message (at most 4 fragments); small read buffers.
        let limits = Limits {
            max_message_size: 1 << 16,
            max_frame_size: 1 << 16,
            max_fragments: 4,
            ..small_limits(&mut rng)
        };
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        let mut intact = true;
        for _ in 0..1 + rng.below(4) {
            if rng.chance(20) {
                random_frame(&mut rng, role, &mut stream);
                intact = false;
            } else {
                match compressed_message(&mut rng, role, &mut stream) {
                    Some(m) => expected.push(Event::Message(m)),
                    None => intact = false,
                }
            }
        }
        let chunks = rng.chunks();
        let deflating = || {
            let mut conn = harness::receiver(role, limits);
            conn.enable_deflate(PerMessageDeflate::new(
                role,
                &AgreedParams::default(),
                &DeflateConfig::default(),
            ));
            conn
        };
        let context = format!("seed {seed:#x} case {case}: {role:?} {limits:?} chunks {chunks:?}");
        let (chunked, whole) = std::panic::catch_unwind(|| {
            let extra = harness::INFLATE_MEMORY;
            (
                harness::drive_protocol(deflating(), limits, extra, &stream, &chunks),
                harness::drive_protocol(deflating(), limits, extra, &stream, &[]),
            )
        })
        .unwrap_or_else(|_| panic!("{context}\nstream {}", hex(&stream)));
        assert_eq!(
            chunked, whole,
            "{context}: the outcome depends on the reads"
        );
        if intact {
            assert_eq!(whole.events, expected, "{context}");
            assert_eq!(whole.error, None, "{context}");
            delivered += expected.len();
        }
    }
    assert!(
        delivered > 100,
        "only {delivered} compressed messages came through intact"
    );
}
