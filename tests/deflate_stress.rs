//! The fuzz targets' properties (`tests/deflate_harness`) on stable Rust,
//! with seeded random inputs: arbitrary bytes, valid streams with bits
//! flipped, and random messages round-tripped through both codecs.

mod deflate_corpus;
mod deflate_harness;

use deflate_corpus::{Rng, KINDS};
use deflate_harness::{check_deflate_roundtrip, check_inflate};
use stdws::deflate::{Deflater, Level, WindowBits};

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next() as u8).collect()
}

/// An input for `check_inflate` whose messages are these compressed bytes.
fn inflate_input(header: [u8; 4], messages: &[Vec<u8>]) -> Vec<u8> {
    let mut data = header.to_vec();
    for m in messages {
        data.extend_from_slice(&(m.len() as u16).to_le_bytes());
        data.extend_from_slice(m);
    }
    data
}

#[test]
fn arbitrary_bytes_never_break_the_inflater() {
    let mut rng = Rng::new(1);
    for _ in 0..3000 {
        let len = rng.below(300);
        check_inflate(&random_bytes(&mut rng, len));
    }
}

#[test]
fn corrupted_streams_never_break_the_inflater() {
    let mut rng = Rng::new(2);
    for round in 0..1500 {
        let (_, make) = KINDS[round % KINDS.len()];
        let level = [Level::Fast, Level::Default, Level::Best][round % 3];
        let mut deflater = Deflater::new(level, WindowBits::MAX);
        let mut messages = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let len = rng.below(3000);
            let mut m = Vec::new();
            deflater.compress_message(&make(rng.next(), len), &mut m);
            m.truncate(60_000);
            // Flip a few bits, or cut it short.
            for _ in 0..rng.below(4) {
                if !m.is_empty() {
                    let at = rng.below(m.len());
                    m[at] ^= 1 << rng.below(8);
                }
            }
            if rng.below(5) == 0 {
                let len = rng.below(m.len() + 1);
                m.truncate(len);
            }
            messages.push(m);
        }
        let header = [15, rng.next() as u8, rng.next() as u8, rng.next() as u8];
        check_inflate(&inflate_input(header, &messages));
    }
}

#[test]
fn random_messages_round_trip() {
    let mut rng = Rng::new(3);
    for round in 0..400 {
        let mut data = random_bytes(&mut rng, 4).to_vec();
        for _ in 0..1 + rng.below(5) {
            let (_, make) = KINDS[rng.below(KINDS.len())];
            let len = if round % 10 == 0 {
                rng.below(60_000)
            } else {
                rng.below(2000)
            };
            let m = make(rng.next(), len);
            data.extend_from_slice(&(m.len() as u16).to_le_bytes());
            data.extend_from_slice(&m);
        }
        check_deflate_roundtrip(&data);
    }
    for _ in 0..2000 {
        let len = rng.below(400);
        check_deflate_roundtrip(&random_bytes(&mut rng, len));
    }
}
