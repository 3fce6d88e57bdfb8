//! Deterministic inputs for the deflate tests and benchmark: English-like
//! text, JSON status messages like the BB-400's, structured binary, random
//! (incompressible) and highly repetitive bytes. Same seed, same bytes.
#![allow(dead_code)] // each test crate uses a different part

/// xorshift64*: reproducible noise without dependencies.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "server",
    "client",
    "message",
    "frame",
    "socket",
    "compression",
    "window",
    "connection",
    "device",
    "output",
    "input",
    "protocol",
    "handshake",
    "extension",
    "deflate",
    "stream",
    "buffer",
    "limit",
    "thread",
    "close",
    "ping",
    "network",
    "browser",
    "controller",
    "value",
];

/// English-like text: words of skewed frequency, sentences, paragraphs.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 32);
    let mut sentence = 0;
    while out.len() < len {
        // Skewed: low indices (common words) far more often.
        let i = rng.below(WORDS.len()).min(rng.below(WORDS.len()));
        let word = WORDS[i];
        if sentence == 0 {
            out.push(word.as_bytes()[0].to_ascii_uppercase());
            out.extend_from_slice(&word.as_bytes()[1..]);
        } else {
            out.extend_from_slice(word.as_bytes());
        }
        sentence += 1;
        if sentence > 5 && rng.below(8) == 0 {
            out.extend_from_slice(if rng.below(6) == 0 { b".\n\n" } else { b". " });
            sentence = 0;
        } else if rng.below(12) == 0 {
            out.extend_from_slice(b", ");
        } else {
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

/// One status message as an IO controller broadcasts it.
pub fn json_message(rng: &mut Rng, seq: u64) -> String {
    let bits = |rng: &mut Rng| {
        (0..8)
            .map(|_| if rng.below(4) == 0 { "1" } else { "0" })
            .collect::<Vec<_>>()
            .join(",")
    };
    let inputs = bits(rng);
    let outputs = bits(rng);
    format!(
        r#"{{"device":"bb400-{:02}","seq":{seq},"inputs":[{inputs}],"outputs":[{outputs}],"temperature":{}.{},"uptime":{},"status":"{}"}}"#,
        rng.below(16),
        20 + rng.below(15),
        rng.below(10),
        1_000_000 + seq * 7,
        ["ok", "ok", "ok", "warning"][rng.below(4)]
    )
}

/// JSON status messages, one per line.
pub fn json(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 256);
    let mut seq = 0;
    while out.len() < len {
        out.extend_from_slice(json_message(&mut rng, seq).as_bytes());
        out.push(b'\n');
        seq += 1;
    }
    out.truncate(len);
    out
}

/// Structured binary: records of a counter, small readings and a float.
pub fn binary(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(len + 16);
    let mut counter = 0u32;
    while out.len() < len {
        counter += 1 + rng.below(3) as u32;
        out.extend_from_slice(&counter.to_le_bytes());
        out.extend_from_slice(&(rng.below(1024) as u16).to_le_bytes());
        out.extend_from_slice(&(rng.below(100) as u8).to_le_bytes());
        out.push(0);
        out.extend_from_slice(&(counter as f32 * 0.25).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Random bytes: incompressible.
pub fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| (rng.next() >> 56) as u8).collect()
}

/// A few bytes repeated, with a rare change: long matches and runs.
pub fn repetitive(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let pattern: Vec<u8> = (0..1 + rng.below(12)).map(|_| rng.next() as u8).collect();
    let mut out: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
    for _ in 0..len / 4096 {
        let at = rng.below(len);
        out[at] = rng.next() as u8;
    }
    out
}

/// Makes `len` bytes of one kind from a seed.
pub type Generator = fn(u64, usize) -> Vec<u8>;

/// Every kind, by name.
pub const KINDS: [(&str, Generator); 5] = [
    ("text", text),
    ("json", json),
    ("binary", binary),
    ("random", random),
    ("repetitive", repetitive),
];
