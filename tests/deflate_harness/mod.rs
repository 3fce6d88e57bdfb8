//! Properties of the DEFLATE codec, checked on arbitrary bytes: shared by the
//! fuzz targets (`fuzz_pending/`) and `tests/deflate_stress.rs`, which runs
//! them on stable with a seeded generator. Uses only `std` and `stdws`.
//!
//! [`check_inflate`]: arbitrary compressed input, in arbitrary pieces, never
//! panics, never makes the output exceed the limit (length or capacity),
//! keeps the inflater's own memory within its window and tables, and gives
//! exactly what inflating each message in one piece gives: the output and
//! the same error, if any.
//!
//! [`check_deflate_roundtrip`]: arbitrary messages, levels, window bits and
//! context takeover: deflate then inflate (strict about the window) gives
//! every message back, a message compressed after a reset inflates on its
//! own, and compressed output is never much larger than its input.
#![allow(dead_code)]

use stdws::deflate::{Deflater, InflateError, Inflater, Level, WindowBits};

/// Reads header bytes off the front of the input, zero once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// The rest, cut into messages: each a little-endian u16 length (cut at
    /// the end of the input) then that many bytes.
    fn messages(&mut self) -> Vec<&[u8]> {
        let mut messages = Vec::new();
        while !self.0.is_empty() {
            let len = usize::from(u16::from_le_bytes([self.byte(), self.byte()]));
            let (message, rest) = self.0.split_at(len.min(self.0.len()));
            messages.push(message);
            self.0 = rest;
        }
        messages
    }
}

/// Piece sizes from a tiny generator seeded by the input.
struct Pieces(u32, usize);

impl Pieces {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        1 + self.0 as usize % self.1
    }
}

const LIMITS: [usize; 8] = [0, 1, 7, 100, 1000, 4096, 65536, 1 << 20];

fn window_bits(b: u8) -> WindowBits {
    WindowBits::new(8 + b % 8).unwrap_or(WindowBits::MAX)
}

/// Inflates the messages with each fed whole, then finished; stops at the
/// first error (which fails a connection).
fn inflate_whole(
    bits: WindowBits,
    takeover: bool,
    messages: &[&[u8]],
    limit: usize,
) -> Vec<Result<Vec<u8>, InflateError>> {
    let mut inflater = Inflater::new(bits);
    inflater.set_context_takeover(takeover);
    let mut results = Vec::new();
    for m in messages {
        let mut out = Vec::new();
        let r = inflater
            .inflate(m, &mut out, limit)
            .and_then(|()| inflater.finish_message(&mut out, limit));
        let failed = r.is_err();
        results.push(r.map(|()| out));
        if failed {
            break;
        }
    }
    results
}

/// Header: window bits, limit, context takeover and piece size; then the
/// messages' compressed bytes.
pub fn check_inflate(data: &[u8]) {
    let mut input = Input(data);
    let bits = window_bits(input.byte());
    let limit = LIMITS[usize::from(input.byte() % 8)];
    let flags = input.byte();
    let takeover = flags & 1 == 0;
    let max_piece = [1, 2, 3, 8, 64, 1000, 1 << 16, usize::MAX >> 1][usize::from(flags >> 1) % 8];
    let seed = u32::from(input.byte()) | 1;
    let messages = input.messages();

    let expected = inflate_whole(bits, takeover, &messages, limit);
    let mut pieces = Pieces(seed, max_piece);
    let mut inflater = Inflater::new(bits);
    inflater.set_context_takeover(takeover);
    let tables = 16 << 10;
    for (m, expected) in messages.iter().zip(&expected) {
        let mut out = Vec::new();
        let mut rest = *m;
        let mut result = Ok(());
        while !rest.is_empty() && result.is_ok() {
            let n = pieces.next().min(rest.len());
            result = inflater.inflate(&rest[..n], &mut out, limit);
            rest = &rest[n..];
            assert!(
                out.len() <= limit && out.capacity() <= limit.max(8),
                "over the limit"
            );
        }
        let result = result.and_then(|()| inflater.finish_message(&mut out, limit));
        assert!(
            out.len() <= limit && out.capacity() <= limit.max(8),
            "over the limit"
        );
        assert!(
            inflater.memory_held() <= bits.size() + tables,
            "inflater memory"
        );
        match (result, expected) {
            (Ok(()), Ok(whole)) => assert!(&out == whole, "pieces and whole differ"),
            (Err(e), Err(whole)) => {
                assert_eq!(&e, whole, "different errors");
                // Errors are final until a reset.
                assert!(inflater
                    .inflate(b"\x03\x00", &mut Vec::new(), limit)
                    .is_err());
                return;
            }
            (r, whole) => panic!(
                "pieces gave {r:?}, whole gave {:?}",
                whole.as_ref().map(Vec::len)
            ),
        }
    }
}

/// The most bytes the messages of one `check_deflate_roundtrip` input come
/// to once repeated: twice the deflater's buffer for the window
/// (min(64 KiB, max(4 W, 8 KiB)), see `Deflater`) plus 4 KiB, enough for
/// two buffer slides at every window size, in one message or across
/// several. Uncapped, a 3 KiB input could ask for 192 KiB per message, and
/// as the time is linear in the bytes (under the fuzzer's instrumentation,
/// about 0.5 us a byte), the target managed under 100 executions a second.
pub fn repeat_budget(bits: WindowBits) -> usize {
    2 * (4 * bits.size()).clamp(8 << 10, 64 << 10) + (4 << 10)
}

/// Header: level, window bits, a context-takeover bit per message (cycling),
/// a repeat count per message; then the messages. Repeats stop at
/// [`repeat_budget`]: a message is repeated only as often as fits in what is
/// left of it (at least once, so every input byte is still compressed).
pub fn check_deflate_roundtrip(data: &[u8]) {
    let mut input = Input(data);
    let level = [Level::Fast, Level::Default, Level::Best][usize::from(input.byte() % 3)];
    let bits = window_bits(input.byte());
    let takeover_bits = input.byte();
    let repeats = input.byte();
    let mut budget = repeat_budget(bits);
    let messages: Vec<Vec<u8>> = input
        .messages()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            // Some messages repeated, for long matches and buffer slides.
            let asked = if (repeats >> (i % 8)) & 1 == 1 {
                1 + usize::from(repeats % 64)
            } else {
                1
            };
            let times = asked.min(budget / m.len().max(1)).max(1);
            budget = budget.saturating_sub(m.len() * times);
            m.repeat(times)
        })
        .collect();

    let mut deflater = Deflater::new(level, bits);
    let mut inflater = Inflater::new(bits); // refuses distances over 2^bits
    for (i, m) in messages.iter().enumerate() {
        let takeover = (takeover_bits >> (i % 8)) & 1 == 1;
        if !takeover {
            deflater.reset();
        }
        let mut compressed = Vec::new();
        deflater.compress_message(m, &mut compressed);
        assert!(
            compressed.len() <= m.len() + m.len() / 8 + 64,
            "{} bytes compressed to {}",
            m.len(),
            compressed.len()
        );
        let mut out = Vec::new();
        inflater.inflate(&compressed, &mut out, m.len()).unwrap();
        inflater.finish_message(&mut out, m.len()).unwrap();
        assert!(&out == m, "round trip differs: message {i}");
        if !takeover {
            let mut alone = Inflater::new(bits);
            let mut out = Vec::new();
            alone.inflate(&compressed, &mut out, m.len()).unwrap();
            alone.finish_message(&mut out, m.len()).unwrap();
            assert!(&out == m, "message {i} after a reset needs history");
        }
    }
    let allowed = 4 * bits.size() + (64 << 10) + 2 * (32 << 10) + (64 << 10) + 4096;
    assert!(deflater.memory_held() <= allowed.max(300 << 10));
}
