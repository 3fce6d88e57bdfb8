//! Deflate: LZ77 with hash chains over a sliding buffer, then Huffman blocks.
//!
//! The message is copied into a buffer of up to 64 KiB that holds the window
//! (the last 2^window_bits - 1 bytes, kept across messages with context
//! takeover) and the bytes still to compress. Every position is hashed on
//! its next three bytes into `head`, and `prev` chains positions with the
//! same hash, so a match search walks back through earlier occurrences,
//! nearest first, up to the level's chain length. When the buffer fills, it
//! slides: the window moves to the front and hash entries are rebased.
//!
//! [`Level::Fast`] takes the first long-enough match greedily; the other
//! levels evaluate lazily, as zlib does: a match is only taken if the next
//! position does not start a longer one. Symbols accumulate into blocks of at
//! most 16 Ki symbols, each written as whichever of stored, fixed or dynamic
//! Huffman is smallest.

use super::block::{match_symbol, write_block, write_stored, BitWriter, BlockSymbols};
use super::tables::{dist_symbol, DIST_CODES, LENGTH_SYMBOL, LITLEN_CODES, MAX_MATCH, MIN_MATCH};
use super::window_bits::WindowBits;
use alloc::{vec, vec::Vec};

/// How hard the deflater looks for matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Level {
    /// Greedy matching with short hash chains (zlib's level 1): several
    /// times faster than `Default`, somewhat larger output.
    Fast,
    /// Lazy matching with moderate chains (zlib's level 6).
    #[default]
    Default,
    /// Lazy matching with long chains (zlib's level 9): smallest output, slowest.
    Best,
}

/// The search parameters of a level, as in zlib's configuration table.
#[derive(Clone, Copy, Debug)]
struct Params {
    /// Most hash-chain entries examined per search.
    chain: u32,
    /// A previous match this long quarters the chain for the next search.
    good: usize,
    /// Lazy: no further search after a match this long. Greedy: the longest
    /// match whose positions are all inserted into the hash chains.
    lazy: usize,
    /// A match this long ends the search.
    nice: usize,
    greedy: bool,
}

impl Level {
    fn params(self) -> Params {
        match self {
            Level::Fast => Params {
                chain: 4,
                good: 4,
                lazy: 4,
                nice: 8,
                greedy: true,
            },
            Level::Default => Params {
                chain: 128,
                good: 8,
                lazy: 16,
                nice: 128,
                greedy: false,
            },
            Level::Best => Params {
                chain: 4096,
                good: 32,
                lazy: 258,
                nice: 258,
                greedy: false,
            },
        }
    }
}

/// Bytes a match search may look ahead: a full match and the next hash.
const MIN_LOOKAHEAD: usize = MAX_MATCH + MIN_MATCH + 1;
/// Lazy levels drop 3-byte matches further back than this: their distance
/// code costs more than three literals would.
const TOO_FAR: usize = 4096;

/// Compresses messages one after another into raw DEFLATE, each ending with
/// a sync flush whose `00 00 FF FF` is stripped (RFC 7692 section 7.2.1).
///
/// ```
/// use stdws::deflate::{Deflater, Level, WindowBits};
/// let mut deflater = Deflater::new(Level::Default, WindowBits::MAX);
/// let mut out = Vec::new();
/// deflater.compress_message(b"Hello", &mut out);
/// // RFC 7692 7.2.3.1.
/// assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
/// out.clear();
/// deflater.compress_message(b"Hello", &mut out);
/// // The second "Hello" is one match reaching back into the first: 4 bytes
/// // (zlib, in RFC 7692 7.2.3.2, needs 5: it cannot refer to its very first byte).
/// assert_eq!(out, [0x02, 0x13, 0x00, 0x00]);
/// ```
///
/// Memory (see the [module docs](super)): a buffer of min(64 KiB,
/// max(4 W, 8 KiB)), 2 W of hash chains, 2^clamp(bits, 10, 15) hash heads of
/// 2 bytes and a symbol buffer of 4 bytes per symbol (up to 16 Ki), all
/// allocated on the first message: 256 KiB at 15 bits.
#[derive(Clone, Debug)]
pub struct Deflater {
    params: Params,
    /// Largest distance emitted: 2^bits - 1.
    max_distance: usize,
    window_mask: usize,
    hash_bits: u32,
    buf_size: usize,
    sym_cap: usize,

    /// Input bytes: the window, then what is still to compress.
    buf: Vec<u8>,
    /// Bytes of `buf` in use.
    filled: usize,
    /// The next position to compress.
    cur: usize,
    /// Positions before this are not to be referred to (after a reset).
    history_start: usize,
    /// The first byte of the block being collected, if still in the buffer
    /// (a block can span a slide; it then cannot be stored, only coded).
    block_start: Option<usize>,
    /// The next position to enter into the hash chains.
    ins: usize,
    /// How far the buffer has slid in all: `prev` is indexed by absolute
    /// position, so that slides need not be multiples of the window.
    base: usize,
    /// The most recent position with each hash (0: none).
    head: Vec<u16>,
    /// Previous position with the same hash, by absolute position mod W.
    prev: Vec<u16>,

    syms: Vec<u32>,
    litlen_freq: [u32; LITLEN_CODES],
    dist_freq: [u32; DIST_CODES],

    /// Lazy matching: position `cur - 1` is decided next, with this match.
    pending: bool,
    pending_len: usize,
    pending_dist: usize,
}

impl Deflater {
    /// A deflater whose matches reach back less than 2^`window_bits` bytes.
    pub fn new(level: Level, window_bits: WindowBits) -> Self {
        let window = window_bits.size();
        let buf_size = (4 * window).clamp(8 << 10, 64 << 10);
        Deflater {
            params: level.params(),
            max_distance: window - 1,
            window_mask: window - 1,
            hash_bits: u32::from(window_bits.get()).clamp(10, 15),
            buf_size,
            sym_cap: (buf_size / 2).min(16 << 10),
            buf: Vec::new(),
            filled: 0,
            cur: 0,
            history_start: 0,
            block_start: Some(0),
            ins: 0,
            base: 0,
            head: Vec::new(),
            prev: Vec::new(),
            syms: Vec::new(),
            litlen_freq: [0; LITLEN_CODES],
            dist_freq: [0; DIST_CODES],
            pending: false,
            pending_len: 0,
            pending_dist: 0,
        }
    }

    /// Forgets the history: the next message refers to nothing before it
    /// (`*_no_context_takeover`). Cheap: nothing is cleared, positions before
    /// this point are simply never matched.
    pub fn reset(&mut self) {
        self.history_start = self.cur;
    }

    /// Bytes of memory this deflater holds now.
    pub fn memory_held(&self) -> usize {
        self.buf.capacity()
            + 2 * (self.head.capacity() + self.prev.capacity())
            + 4 * self.syms.capacity()
            + core::mem::size_of::<Self>()
    }

    /// Appends `input` compressed to `out`: DEFLATE blocks, then an empty
    /// stored block without its `00 00 FF FF`. With context takeover (unless
    /// [`Deflater::reset`] is called between messages) the next message may
    /// refer back into this one, so the peer must inflate them in order.
    pub fn compress_message(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.buf.is_empty() {
            self.buf = vec![0; self.buf_size];
            self.head = vec![0; 1 << self.hash_bits];
            self.prev = vec![0; self.window_mask + 1];
            self.syms = Vec::with_capacity(self.sym_cap);
            // Position 0 stands for "none" in the hash chains: start at 1.
            self.filled = 1;
            self.cur = 1;
            self.history_start = 1;
            self.block_start = Some(1);
            self.ins = 1;
        }
        let mut w = BitWriter::new(out);
        let mut rest = input;
        loop {
            if self.filled == self.buf_size {
                self.slide();
            }
            let n = rest.len().min(self.buf_size - self.filled);
            self.buf[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
            let last = rest.is_empty();
            let end = if last {
                self.filled
            } else {
                self.filled - MIN_LOOKAHEAD
            };
            if self.params.greedy {
                self.run_greedy(end, &mut w);
            } else {
                self.run_lazy(end, &mut w);
            }
            if last {
                break;
            }
        }
        if self.pending {
            // The last run went to the end of the input, where a pending
            // match is always taken: a match needs three bytes, so the loop
            // goes on past its start. Only a literal can still wait.
            debug_assert!(self.pending_len < MIN_MATCH);
            self.pending = false;
            self.emit_literal(self.buf[self.cur - 1]);
        }
        self.flush_block(&mut w);
        write_stored(&mut w, &[]);
        // Strip the empty stored block's LEN and NLEN: they are the four
        // bytes just written.
        let out = w.into_inner();
        out.truncate(out.len() - 4);
    }

    /// Moves the last W bytes before `cur`, and what follows, to the front.
    fn slide(&mut self) {
        // Compression stopped at most MIN_LOOKAHEAD before the end of a full
        // buffer of at least 4 W (and 8 KiB): more than W bytes go.
        let amount = self.cur.saturating_sub(self.max_distance + 1);
        debug_assert!(amount > MIN_LOOKAHEAD);
        self.buf.copy_within(amount..self.filled, 0);
        self.filled -= amount;
        self.cur -= amount;
        self.block_start = self.block_start.and_then(|b| b.checked_sub(amount));
        self.ins = self.ins.saturating_sub(amount);
        self.history_start = self.history_start.saturating_sub(amount);
        self.base = self.base.wrapping_add(amount);
        let amount = amount as u16; // < 64 Ki: the buffer is at most 64 KiB
        for entry in self.head.iter_mut().chain(self.prev.iter_mut()) {
            *entry = entry.saturating_sub(amount);
        }
    }

    #[inline(always)]
    fn hash(&self, pos: usize) -> usize {
        let b = &self.buf[pos..pos + 3];
        let v = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
        (v.wrapping_mul(0x9e37_79b1) >> (32 - self.hash_bits)) as usize
    }

    /// Enters `pos` into its hash chain; gives the previous head (0: none).
    #[inline(always)]
    fn insert(&mut self, pos: usize) -> usize {
        let h = self.hash(pos);
        let candidate = self.head[h];
        self.prev[self.base.wrapping_add(pos) & self.window_mask] = candidate;
        self.head[h] = pos as u16;
        usize::from(candidate)
    }

    /// Enters every position before `end` not yet entered that has three
    /// bytes after it.
    #[inline(always)]
    fn insert_until(&mut self, end: usize) {
        let end = end.min(self.filled.saturating_sub(MIN_MATCH - 1));
        while self.ins < end {
            self.insert(self.ins);
            self.ins += 1;
        }
    }

    /// The longest match at `cur` longer than `better_than`, walking the
    /// chain from `candidate`; `(0, 0)` if none.
    fn longest_match(
        &self,
        cur: usize,
        mut candidate: usize,
        better_than: usize,
    ) -> (usize, usize) {
        let max_len = MAX_MATCH.min(self.filled - cur);
        if max_len <= better_than {
            return (0, 0);
        }
        let nice = self.params.nice.min(max_len);
        let lowest = cur
            .saturating_sub(self.max_distance)
            .max(self.history_start)
            .max(1);
        let mut chain = self.params.chain;
        if better_than >= self.params.good {
            chain >>= 2;
        }
        let buf = &self.buf[..self.filled];
        let (mut best_len, mut best_dist) = (better_than, 0);
        while candidate >= lowest && candidate < cur && chain > 0 {
            // Cheap tests first, as zlib does: the two bytes that end a longer
            // match, then the first two (chains also hold hash collisions).
            if read_u16(buf, candidate + best_len - 1) == read_u16(buf, cur + best_len - 1)
                && read_u16(buf, candidate) == read_u16(buf, cur)
            {
                let len = match_length(buf, candidate, cur, max_len);
                if len > best_len {
                    best_len = len;
                    best_dist = cur - candidate;
                    if len >= nice {
                        break;
                    }
                }
            }
            let next = usize::from(self.prev[self.base.wrapping_add(candidate) & self.window_mask]);
            if next >= candidate {
                break;
            }
            candidate = next;
            chain -= 1;
        }
        if best_dist == 0 {
            (0, 0)
        } else {
            (best_len, best_dist)
        }
    }

    /// Greedy matching up to `end`.
    fn run_greedy(&mut self, end: usize, w: &mut BitWriter) {
        while self.cur < end {
            let cur = self.cur;
            self.insert_until(cur);
            let (mut len, mut dist) = (0, 0);
            if cur + MIN_MATCH <= self.filled {
                let candidate = self.insert(cur);
                self.ins = cur + 1;
                if candidate != 0 {
                    (len, dist) = self.longest_match(cur, candidate, MIN_MATCH - 1);
                }
            }
            if len >= MIN_MATCH {
                self.emit_match(len, dist);
                if len > self.params.lazy {
                    self.ins = cur + len; // long match: skip entering its positions
                }
                self.cur = cur + len;
            } else {
                self.emit_literal(self.buf[cur]);
                self.cur = cur + 1;
            }
            if self.syms.len() >= self.sym_cap {
                self.flush_block(w);
            }
        }
    }

    /// Lazy matching up to `end`.
    fn run_lazy(&mut self, end: usize, w: &mut BitWriter) {
        while self.cur < end {
            let cur = self.cur;
            self.insert_until(cur);
            let (mut len, mut dist) = (0, 0);
            if cur + MIN_MATCH <= self.filled {
                let candidate = self.insert(cur);
                self.ins = cur + 1;
                let previous = if self.pending { self.pending_len } else { 0 };
                if candidate != 0 && previous < self.params.lazy {
                    (len, dist) = self.longest_match(cur, candidate, previous.max(MIN_MATCH - 1));
                    if len == MIN_MATCH && dist > TOO_FAR {
                        len = 0;
                    }
                }
            }
            if self.pending && self.pending_len >= MIN_MATCH && len <= self.pending_len {
                // The match at cur - 1 is at least as good: take it.
                self.emit_match(self.pending_len, self.pending_dist);
                self.cur = cur - 1 + self.pending_len;
                self.pending = false;
            } else {
                if self.pending {
                    self.emit_literal(self.buf[cur - 1]);
                }
                self.pending = true;
                self.pending_len = len;
                self.pending_dist = dist;
                self.cur = cur + 1;
            }
            if self.syms.len() >= self.sym_cap {
                self.flush_block(w);
            }
        }
    }

    #[inline(always)]
    fn emit_literal(&mut self, byte: u8) {
        self.syms.push(u32::from(byte));
        self.litlen_freq[usize::from(byte)] += 1;
    }

    #[inline(always)]
    fn emit_match(&mut self, len: usize, dist: usize) {
        debug_assert!((MIN_MATCH..=MAX_MATCH).contains(&len) && dist <= self.max_distance);
        self.syms.push(match_symbol(len, dist));
        self.litlen_freq[257 + usize::from(LENGTH_SYMBOL[len - MIN_MATCH])] += 1;
        self.dist_freq[dist_symbol(dist)] += 1;
    }

    /// Writes the symbols collected so far as a block.
    fn flush_block(&mut self, w: &mut BitWriter) {
        let end = self.cur - usize::from(self.pending);
        if self.syms.is_empty() {
            return;
        }
        write_block(
            w,
            &BlockSymbols {
                syms: &self.syms,
                litlen_freq: &self.litlen_freq,
                dist_freq: &self.dist_freq,
                raw: self.block_start.map(|start| &self.buf[start..end]),
            },
        );
        self.syms.clear();
        self.litlen_freq = [0; LITLEN_CODES];
        self.dist_freq = [0; DIST_CODES];
        self.block_start = Some(end);
    }
}

/// How many bytes from `a` and `b` (`a < b`) agree, up to `max`.
#[inline(always)]
fn match_length(buf: &[u8], a: usize, b: usize, max: usize) -> usize {
    let mut i = 0;
    while i + 8 <= max {
        let x = read_u64(buf, a + i) ^ read_u64(buf, b + i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < max && buf[a + i] == buf[b + i] {
        i += 1;
    }
    i
}

#[inline(always)]
fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

#[inline(always)]
fn read_u64(buf: &[u8], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::Inflater;

    const LEVELS: [Level; 3] = [Level::Fast, Level::Default, Level::Best];

    /// xorshift64*: reproducible noise without dependencies.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    fn words(seed: u64, len: usize) -> Vec<u8> {
        const WORDS: [&str; 12] = [
            "the ",
            "socket ",
            "frame ",
            "of ",
            "and ",
            "message ",
            "window ",
            "to ",
            "compress ",
            "a ",
            "deflate ",
            "server ",
        ];
        let mut out = Vec::with_capacity(len + 16);
        for r in noise(seed, len) {
            if out.len() >= len {
                break;
            }
            out.extend_from_slice(WORDS[usize::from(r) % WORDS.len()].as_bytes());
        }
        out.truncate(len);
        out
    }

    fn messages() -> Vec<Vec<u8>> {
        vec![
            Vec::new(),
            b"a".to_vec(),
            b"Hello".to_vec(),
            words(1, 3000),
            noise(2, 5000),
            vec![0; 70_000],
            words(3, 200_000),
            noise(4, 100_000).repeat(2),
            b"Hello".to_vec(),
            Vec::new(),
        ]
    }

    fn inflate(inflater: &mut Inflater, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        inflater.inflate(data, &mut out, 1 << 24).unwrap();
        inflater.finish_message(&mut out, 1 << 24).unwrap();
        out
    }

    #[test]
    fn round_trips_at_every_level_and_window_with_context_takeover() {
        for level in LEVELS {
            for bits in 8..=15 {
                let bits = WindowBits::new(bits).unwrap();
                let mut deflater = Deflater::new(level, bits);
                // The inflater refuses any distance over 2^bits.
                let mut inflater = Inflater::new(bits);
                for (i, m) in messages().iter().enumerate() {
                    let mut out = Vec::new();
                    deflater.compress_message(m, &mut out);
                    assert_eq!(&inflate(&mut inflater, &out), m, "{level:?} {bits:?} #{i}");
                }
            }
        }
    }

    #[test]
    fn after_a_reset_each_message_inflates_on_its_own() {
        for level in LEVELS {
            let mut deflater = Deflater::new(level, WindowBits::MAX);
            for m in messages() {
                deflater.reset();
                let mut out = Vec::new();
                deflater.compress_message(&m, &mut out);
                assert_eq!(inflate(&mut Inflater::new(WindowBits::MAX), &out), m);
            }
        }
    }

    #[test]
    fn context_takeover_makes_a_repeated_message_tiny_and_reset_forgets() {
        let m = words(9, 2000);
        let mut deflater = Deflater::new(Level::Default, WindowBits::MAX);
        let (mut first, mut second, mut third) = (Vec::new(), Vec::new(), Vec::new());
        deflater.compress_message(&m, &mut first);
        deflater.compress_message(&m, &mut second);
        deflater.reset();
        deflater.compress_message(&m, &mut third);
        // Eight 258-byte matches reaching 2000 back.
        assert!(second.len() < 30, "{}", second.len());
        assert_eq!(third, first);
    }

    #[test]
    fn never_refers_further_back_than_its_window() {
        // A 300-byte pattern repeats: a 256-byte window cannot see it, 512 can.
        let data = noise(5, 300).repeat(50);
        let sizes: Vec<usize> = [8, 9]
            .into_iter()
            .map(|bits| {
                let bits = WindowBits::new(bits).unwrap();
                let mut out = Vec::new();
                Deflater::new(Level::Best, bits).compress_message(&data, &mut out);
                assert_eq!(inflate(&mut Inflater::new(bits), &out), data);
                out.len()
            })
            .collect();
        assert!(sizes[0] > data.len() * 9 / 10, "{sizes:?}");
        assert!(sizes[1] < data.len() / 10, "{sizes:?}");
    }

    #[test]
    fn incompressible_data_costs_five_bytes_per_stored_block() {
        for level in LEVELS {
            let data = noise(6, 300_000);
            let mut out = Vec::new();
            Deflater::new(level, WindowBits::MAX).compress_message(&data, &mut out);
            assert!(
                out.len() <= data.len() + 5 * 20 + 1,
                "{level:?}: {}",
                out.len()
            );
        }
    }

    #[test]
    fn default_compresses_text_better_than_fast() {
        let data = words(7, 100_000);
        let size = |level| {
            let mut out = Vec::new();
            Deflater::new(level, WindowBits::MAX).compress_message(&data, &mut out);
            out.len()
        };
        let (fast, default, best) = (size(Level::Fast), size(Level::Default), size(Level::Best));
        assert!(best <= default && default < fast, "{fast} {default} {best}");
        assert!(fast < data.len() / 2);
    }

    #[test]
    fn memory_is_bounded_by_the_window_as_documented() {
        for bits in 8..=15u8 {
            let w = 1usize << bits;
            let buffer = (4 * w).clamp(8 << 10, 64 << 10);
            let documented =
                buffer + 2 * (1 << bits.clamp(10, 15)) + 2 * w + 4 * (buffer / 2).min(16 << 10);
            let mut deflater = Deflater::new(Level::Default, WindowBits::new(bits).unwrap());
            assert_eq!(
                deflater.memory_held(),
                core::mem::size_of::<Deflater>(),
                "nothing allocated before the first message"
            );
            deflater.compress_message(&words(8, 1 << 20), &mut Vec::new());
            let held = deflater.memory_held() - core::mem::size_of::<Deflater>();
            assert_eq!(held, documented, "{bits} bits");
        }
        let mut deflater = Deflater::new(Level::Fast, WindowBits::MAX);
        deflater.compress_message(b"x", &mut Vec::new());
        assert!(deflater.memory_held() <= (256 << 10) + 2048);
    }
}
