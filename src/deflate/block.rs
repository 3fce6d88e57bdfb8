//! Writing DEFLATE blocks: the bit writer, and the choice between a stored,
//! a fixed-Huffman and a dynamic-Huffman block for the symbols LZ77 found
//! (whichever is smallest, as zlib chooses).

use super::huffman::{canonical_codes, code_lengths, MAX_BITS};
use super::tables::{
    dist_symbol, CODE_LENGTH_ORDER, DIST_BASE, DIST_CODES, DIST_EXTRA, END_OF_BLOCK,
    FIXED_DIST_LENGTHS, FIXED_LITLEN_LENGTHS, LENGTH_BASE, LENGTH_EXTRA, LENGTH_SYMBOL,
    LITLEN_CODES, MIN_MATCH,
};
use alloc::vec::Vec;

/// Appends bits to a `Vec<u8>`, least significant first.
pub(crate) struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    bits: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, bits: 0, n: 0 }
    }

    /// Writes the low `count` bits of `value` (`count` at most 32).
    #[inline(always)]
    pub(crate) fn put(&mut self, value: u32, count: u32) {
        debug_assert!(count <= 32 && u64::from(value) < 1u64 << count);
        self.bits |= u64::from(value) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.out
                .extend_from_slice(&(self.bits as u32).to_le_bytes());
            self.bits >>= 32;
            self.n -= 32;
        }
    }

    /// Pads with zero bits to a byte boundary and writes out every whole byte.
    pub(crate) fn align(&mut self) {
        self.n = self.n.next_multiple_of(8);
        while self.n > 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.n -= 8;
        }
    }

    /// Bits written since the last byte boundary.
    pub(crate) fn bit_offset(&self) -> u32 {
        self.n % 8
    }

    /// The output, once the last bits are aligned and written.
    pub(crate) fn into_inner(mut self) -> &'a mut Vec<u8> {
        self.align();
        self.out
    }

    /// Writes bytes after [`BitWriter::align`].
    pub(crate) fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(self.n, 0);
        self.out.extend_from_slice(bytes);
    }
}

/// A match or a literal, packed: `distance << 8 | (length - 3)`, or a
/// literal byte with distance 0.
pub(crate) fn match_symbol(length: usize, distance: usize) -> u32 {
    (distance as u32) << 8 | (length - MIN_MATCH) as u32
}

/// The symbols of one block and how often each code occurs.
pub(crate) struct BlockSymbols<'a> {
    pub(crate) syms: &'a [u32],
    pub(crate) litlen_freq: &'a [u32; LITLEN_CODES],
    pub(crate) dist_freq: &'a [u32; DIST_CODES],
    /// The bytes the symbols stand for, for a stored block, if still at hand.
    pub(crate) raw: Option<&'a [u8]>,
}

struct Code<const N: usize> {
    lens: [u8; N],
    codes: [u16; N],
}

impl<const N: usize> Code<N> {
    fn from_lengths(lens: [u8; N]) -> Self {
        let mut codes = [0; N];
        canonical_codes(&lens, &mut codes);
        Code { lens, codes }
    }
}

fn build_fixed_codes() -> (Code<288>, Code<32>) {
    (
        Code::from_lengths(FIXED_LITLEN_LENGTHS),
        Code::from_lengths(FIXED_DIST_LENGTHS),
    )
}

/// The fixed codes, built once for the whole process.
#[cfg(feature = "std")]
fn fixed_codes() -> &'static (Code<288>, Code<32>) {
    static CODES: std::sync::OnceLock<(Code<288>, Code<32>)> = std::sync::OnceLock::new();
    CODES.get_or_init(build_fixed_codes)
}

/// Without `std` (no `OnceLock`), built for each block: a few hundred
/// instructions beside the block's own encoding.
#[cfg(not(feature = "std"))]
fn fixed_codes() -> (Code<288>, Code<32>) {
    build_fixed_codes()
}

/// Bits the symbols take with these code lengths, extra bits included.
fn data_bits(block: &BlockSymbols, litlen: &[u8], dist: &[u8]) -> u64 {
    let mut bits = u64::from(litlen[END_OF_BLOCK]);
    for (sym, &f) in block.litlen_freq.iter().enumerate() {
        let extra = if sym > END_OF_BLOCK {
            LENGTH_EXTRA[sym - 257]
        } else {
            0
        };
        bits += u64::from(f) * u64::from(litlen[sym] + extra);
    }
    for (sym, &f) in block.dist_freq.iter().enumerate() {
        bits += u64::from(f) * u64::from(dist[sym] + DIST_EXTRA[sym]);
    }
    bits
}

/// A dynamic block's codes and its header, run-length coded.
struct Dynamic {
    litlen: Code<LITLEN_CODES>,
    dist: Code<DIST_CODES>,
    codelen: Code<19>,
    hlit: usize,
    hdist: usize,
    hclen: usize,
    /// Code-length symbols with their extra bits' value.
    rle: [(u8, u8); LITLEN_CODES + DIST_CODES],
    rle_len: usize,
    header_bits: u64,
}

impl Dynamic {
    fn new(block: &BlockSymbols) -> Self {
        let mut litlen_freq = *block.litlen_freq;
        litlen_freq[END_OF_BLOCK] = 1;
        let mut litlen_lens = [0; LITLEN_CODES];
        code_lengths(&litlen_freq, MAX_BITS, &mut litlen_lens);
        let mut dist_lens = [0; DIST_CODES];
        code_lengths(block.dist_freq, MAX_BITS, &mut dist_lens);
        // As zlib does: at least two distance codes, so that no decoder sees
        // an empty or one-code distance code.
        match dist_lens.iter().filter(|&&l| l != 0).count() {
            0 => {
                dist_lens[0] = 1;
                dist_lens[1] = 1;
            }
            1 => {
                let other = usize::from(dist_lens[0] != 0);
                dist_lens[other] = 1;
            }
            _ => {}
        }
        let hlit = (257..=LITLEN_CODES)
            .rev()
            .find(|&n| litlen_lens[n - 1] != 0)
            .unwrap_or(257);
        let hdist = (1..=DIST_CODES)
            .rev()
            .find(|&n| dist_lens[n - 1] != 0)
            .unwrap_or(1);

        // Run-length code the lengths (RFC 1951 3.2.7).
        let mut all = [0u8; LITLEN_CODES + DIST_CODES];
        all[..hlit].copy_from_slice(&litlen_lens[..hlit]);
        all[hlit..hlit + hdist].copy_from_slice(&dist_lens[..hdist]);
        let all = &all[..hlit + hdist];
        let mut rle = [(0u8, 0u8); LITLEN_CODES + DIST_CODES];
        let mut rle_len = 0;
        let mut push = |sym: u8, extra: u8| {
            rle[rle_len] = (sym, extra);
            rle_len += 1;
        };
        let mut i = 0;
        while i < all.len() {
            let value = all[i];
            let run = all[i..].iter().take_while(|&&v| v == value).count();
            i += run;
            let mut left = run;
            if value == 0 {
                while left >= 11 {
                    let n = left.min(138);
                    push(18, (n - 11) as u8);
                    left -= n;
                }
                if left >= 3 {
                    push(17, (left - 3) as u8);
                    left = 0;
                }
            } else {
                push(value, 0);
                left -= 1;
                while left >= 3 {
                    let n = left.min(6);
                    push(16, (n - 3) as u8);
                    left -= n;
                }
            }
            for _ in 0..left {
                push(value, 0);
            }
        }
        let mut codelen_freq = [0u32; 19];
        for &(sym, _) in &rle[..rle_len] {
            codelen_freq[usize::from(sym)] += 1;
        }
        let mut codelen_lens = [0; 19];
        code_lengths(&codelen_freq, 7, &mut codelen_lens);
        let hclen = (4..=19)
            .rev()
            .find(|&n| codelen_lens[CODE_LENGTH_ORDER[n - 1]] != 0)
            .unwrap_or(4);
        let mut header_bits = 5 + 5 + 4 + 3 * hclen as u64;
        for (sym, &f) in codelen_freq.iter().enumerate() {
            let extra = match sym {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => 0,
            };
            header_bits += u64::from(f) * (u64::from(codelen_lens[sym]) + extra);
        }
        Dynamic {
            litlen: Code::from_lengths(litlen_lens),
            dist: Code::from_lengths(dist_lens),
            codelen: Code::from_lengths(codelen_lens),
            hlit,
            hdist,
            hclen,
            rle,
            rle_len,
            header_bits,
        }
    }

    fn write_header(&self, w: &mut BitWriter) {
        w.put((self.hlit - 257) as u32, 5);
        w.put((self.hdist - 1) as u32, 5);
        w.put((self.hclen - 4) as u32, 4);
        for &sym in &CODE_LENGTH_ORDER[..self.hclen] {
            w.put(u32::from(self.codelen.lens[sym]), 3);
        }
        for &(sym, extra) in &self.rle[..self.rle_len] {
            let s = usize::from(sym);
            w.put(
                u32::from(self.codelen.codes[s]),
                u32::from(self.codelen.lens[s]),
            );
            match sym {
                16 => w.put(u32::from(extra), 2),
                17 => w.put(u32::from(extra), 3),
                18 => w.put(u32::from(extra), 7),
                _ => {}
            }
        }
    }
}

/// Writes the symbols with the given codes, then the end-of-block code.
fn write_symbols(
    w: &mut BitWriter,
    syms: &[u32],
    (litlen_lens, litlen_codes): (&[u8], &[u16]),
    (dist_lens, dist_codes): (&[u8], &[u16]),
) {
    for &s in syms {
        let distance = (s >> 8) as usize;
        if distance == 0 {
            let lit = (s & 0xff) as usize;
            w.put(u32::from(litlen_codes[lit]), u32::from(litlen_lens[lit]));
            continue;
        }
        let length = (s & 0xff) as usize; // minus 3
        let lsym = usize::from(LENGTH_SYMBOL[length]);
        let lextra = u32::from(LENGTH_EXTRA[lsym]);
        let lvalue = (length + MIN_MATCH - usize::from(LENGTH_BASE[lsym])) as u32;
        let llen = u32::from(litlen_lens[257 + lsym]);
        w.put(
            u32::from(litlen_codes[257 + lsym]) | lvalue << llen,
            llen + lextra,
        );
        let dsym = dist_symbol(distance);
        let dextra = u32::from(DIST_EXTRA[dsym]);
        let dvalue = (distance - usize::from(DIST_BASE[dsym])) as u32;
        let dlen = u32::from(dist_lens[dsym]);
        w.put(u32::from(dist_codes[dsym]) | dvalue << dlen, dlen + dextra);
    }
    w.put(
        u32::from(litlen_codes[END_OF_BLOCK]),
        u32::from(litlen_lens[END_OF_BLOCK]),
    );
}

/// Writes one non-final block holding `block`: stored, fixed or dynamic,
/// whichever is smallest.
pub(crate) fn write_block(w: &mut BitWriter, block: &BlockSymbols) {
    let dynamic = Dynamic::new(block);
    let dynamic_bits =
        3 + dynamic.header_bits + data_bits(block, &dynamic.litlen.lens, &dynamic.dist.lens);
    let (fixed_litlen, fixed_dist) = fixed_codes();
    let fixed_bits = 3 + data_bits(block, &fixed_litlen.lens, &fixed_dist.lens);
    let stored_bits = block.raw.map_or(u64::MAX, |raw| {
        let chunks = raw.len().div_ceil(0xffff).max(1) as u64;
        let first_pad = u64::from((8 - (w.bit_offset() + 3) % 8) % 8);
        8 * raw.len() as u64 + chunks * (3 + 32) + first_pad + 5 * (chunks - 1)
    });

    if let Some(raw) = block
        .raw
        .filter(|_| stored_bits <= fixed_bits.min(dynamic_bits))
    {
        write_stored(w, raw);
    } else if fixed_bits <= dynamic_bits {
        w.put(0b010, 3);
        write_symbols(
            w,
            block.syms,
            (&fixed_litlen.lens, &fixed_litlen.codes),
            (&fixed_dist.lens, &fixed_dist.codes),
        );
    } else {
        w.put(0b100, 3);
        dynamic.write_header(w);
        write_symbols(
            w,
            block.syms,
            (&dynamic.litlen.lens, &dynamic.litlen.codes),
            (&dynamic.dist.lens, &dynamic.dist.codes),
        );
    }
}

/// Writes `raw` as stored blocks of at most 65,535 bytes (one empty block if
/// `raw` is empty: the sync-flush marker).
pub(crate) fn write_stored(w: &mut BitWriter, raw: &[u8]) {
    let mut chunks = raw.chunks(0xffff);
    let first = chunks.next().unwrap_or(&[]);
    for chunk in core::iter::once(first).chain(chunks) {
        w.put(0b000, 3);
        w.align();
        let len = chunk.len() as u16;
        w.put(u32::from(len) | u32::from(!len) << 16, 32);
        w.write_bytes(chunk);
    }
}
