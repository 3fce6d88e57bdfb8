//! Canonical Huffman codes (RFC 1951 section 3.2.2), both ways: decoding
//! tables built from code lengths, and length-limited code lengths built from
//! symbol frequencies.
//!
//! A decoding table is a flat `Vec<u32>`: a primary table indexed by the next
//! `root` bits of input (least significant bit first, as DEFLATE packs them),
//! followed by subtables for the few codes longer than `root`. Each entry is
//! `value << 16 | flags << 8 | length`, where `length` is the total number of
//! bits the symbol's code takes and `flags` says what the entry is:
//!
//! | flags | entry | value |
//! | --- | --- | --- |
//! | `0..=13` | a length or distance symbol with that many extra bits | its base |
//! | [`LITERAL`] | a literal (or a code-length symbol) | the byte (symbol) |
//! | [`END`] | end of block | |
//! | [`INVALID`] | a code no valid stream uses | |
//! | [`LINK`]` \| n` | the first `root` bits of longer codes: an `n`-bit subtable | its offset |

use alloc::vec::Vec;

/// Longest code DEFLATE allows.
pub(crate) const MAX_BITS: usize = 15;

/// Flags of a literal entry.
pub(crate) const LITERAL: u32 = 0x40;
/// Flags of the end-of-block entry.
pub(crate) const END: u32 = 0x20;
/// Flags of an entry no valid stream reaches.
pub(crate) const INVALID: u32 = 0x10;
/// Flags of a link to a subtable (or'ed with its index width).
pub(crate) const LINK: u32 = 0x80;

/// What a decoding table entry means, without its length: `value << 16 | flags << 8`.
#[inline]
pub(crate) const fn kind(value: u32, flags: u32) -> u32 {
    value << 16 | flags << 8
}

/// Looks up the symbol whose code starts at the low bits of `bits`; follows a
/// link to a subtable. The entry's length may exceed the bits actually
/// available: the caller checks before consuming.
#[inline(always)]
pub(crate) fn lookup(table: &[u32], root: u32, bits: u64) -> u32 {
    let entry = table[(bits & ((1 << root) - 1)) as usize];
    if entry & (LINK << 8) == 0 {
        return entry;
    }
    let sub = (entry >> 8) & 0xf;
    let index = (entry >> 16) as usize + ((bits >> root) & ((1 << sub) - 1)) as usize;
    table[index]
}

/// Why a set of code lengths does not describe a usable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CodeError {
    /// More codes than the lengths can hold (the Kraft sum exceeds one).
    Oversubscribed,
    /// Codes left unused, other than the one case DEFLATE allows.
    Incomplete,
}

/// How many codes have each length (index 0, unused symbols, is zeroed).
/// Four interleaved histograms: incrementing one counter over and over (most
/// lengths are equal) would wait on its own store each time.
fn length_counts(lens: &[u8]) -> [u16; MAX_BITS + 1] {
    let mut counts = [[0u16; 16]; 4];
    let mut chunks = lens.chunks_exact(4);
    for c in &mut chunks {
        for (k, &len) in c.iter().enumerate() {
            counts[k][usize::from(len & 15)] += 1;
        }
    }
    for &len in chunks.remainder() {
        counts[0][usize::from(len & 15)] += 1;
    }
    let mut count = [0u16; MAX_BITS + 1];
    for (l, c) in count.iter_mut().enumerate().skip(1) {
        *c = counts[0][l] + counts[1][l] + counts[2][l] + counts[3][l];
    }
    count
}

/// Most entries a literal/length table with a 10-bit root can need, with
/// its subtables (`enough 288 10 15`, from zlib's `examples/enough.c`).
pub(crate) const LITLEN_ENOUGH: usize = 1334;
/// Most entries a distance table with an 8-bit root can need (`enough 32 8 15`).
pub(crate) const DIST_ENOUGH: usize = 402;

/// Builds the decoding table of the code with these lengths (0 = unused)
/// into `table`, with a primary table of `root` bits; `kind_of(symbol)` gives
/// each symbol's entry (see [`kind`]). `enough` is the most entries the
/// table can need, reserved at once so that it is allocated once, exactly.
///
/// An incomplete code is refused unless `allow_incomplete` and it has at
/// most one code, of one bit: zlib's rule, which DEFLATE encoders rely on for
/// blocks with a single distance (or none). Unused codes decode as
/// [`INVALID`], with the primary table's width as their length so that the
/// error is only reported once those bits have really arrived.
pub(crate) fn build_decode_table(
    lens: &[u8],
    root: u32,
    kind_of: impl Fn(usize) -> u32,
    allow_incomplete: bool,
    enough: usize,
    table: &mut Vec<u32>,
) -> Result<(), CodeError> {
    let count = length_counts(lens);
    let max = (1..=MAX_BITS).rev().find(|&l| count[l] != 0).unwrap_or(0);
    let codes: u16 = count.iter().sum();
    let mut left: i32 = 1;
    for &c in &count[1..] {
        left = (left << 1) - i32::from(c);
        if left < 0 {
            return Err(CodeError::Oversubscribed);
        }
    }
    if left > 0 && !(allow_incomplete && codes <= 1 && max <= 1) {
        return Err(CodeError::Incomplete);
    }

    // The first canonical code of each length (MSB first).
    let mut next_code = [0u32; MAX_BITS + 2];
    let mut code = 0u32;
    for len in 1..=MAX_BITS {
        code = (code + u32::from(count[len - 1])) << 1;
        next_code[len] = code;
    }
    // Symbols ordered by (length, symbol): canonical code order.
    let mut offset = [0usize; MAX_BITS + 2];
    for len in 1..=MAX_BITS {
        offset[len + 1] = offset[len] + usize::from(count[len]);
    }
    let mut sorted = [0u16; 320];
    for (sym, &len) in lens.iter().enumerate() {
        if len != 0 {
            sorted[offset[usize::from(len)]] = sym as u16;
            offset[usize::from(len)] += 1;
        }
    }
    // Codes not yet placed, per length: sizes the subtables.
    let mut remaining = count;
    let next_entry = |sym: usize, next_code: &mut [u32; MAX_BITS + 2]| {
        let len = usize::from(lens[sym]);
        let code = next_code[len];
        next_code[len] += 1;
        let reversed = (code.reverse_bits() >> (32 - len)) as usize;
        (reversed, kind_of(sym) | len as u32)
    };

    // The primary table, length by length: the codes of length `len` go into
    // the first 2^len entries, which are then copied to double them (the bit
    // after the code does not matter). Entries no code reaches stay INVALID.
    let root_size = 1usize << root;
    table.truncate(root_size);
    if table.len() < root_size {
        table.reserve_exact(enough.saturating_sub(table.len()));
        table.resize(root_size, 0);
    }
    table[0] = kind(0, INVALID) | root;
    table[1] = kind(0, INVALID) | root;
    let sorted = &sorted[..usize::from(codes)];
    let mut next = 0;
    let short = remaining.iter_mut().enumerate().take(root as usize + 1);
    for (len, left) in short.skip(1) {
        while next < sorted.len() && usize::from(lens[usize::from(sorted[next])]) == len {
            let (reversed, entry) = next_entry(usize::from(sorted[next]), &mut next_code);
            table[reversed] = entry;
            *left -= 1;
            next += 1;
        }
        if len < root as usize {
            table.copy_within(0..1 << len, 1 << len);
        }
    }

    // Longer codes: the first `root` bits lead to a subtable.
    for &sym in &sorted[next..] {
        let sym = usize::from(sym);
        let len = usize::from(lens[sym]);
        let (reversed, entry) = next_entry(sym, &mut next_code);
        let prefix = reversed & (root_size - 1);
        let link = table[prefix];
        let (start, sub) = if link & (LINK << 8) != 0 {
            ((link >> 16) as usize, (link >> 8) & 0xf)
        } else {
            // A new prefix: its subtable is as wide as the longest code
            // that shares it needs (zlib's way of sizing them).
            let mut sub = len - root as usize;
            let mut room = 1i32 << sub;
            while sub + (root as usize) < max {
                room -= i32::from(remaining[sub + root as usize]);
                if room <= 0 {
                    break;
                }
                sub += 1;
                room <<= 1;
            }
            let start = table.len();
            let sub = sub as u32;
            table.resize(start + (1 << sub), kind(0, INVALID) | (root + sub));
            table[prefix] = kind(start as u32, LINK | sub) | root;
            (start, sub)
        };
        let rest = reversed >> root;
        let step = 1 << (len - root as usize);
        for slot in table[start..start + (1 << sub)]
            .iter_mut()
            .skip(rest)
            .step_by(step)
        {
            *slot = entry;
        }
        remaining[len] -= 1;
    }
    Ok(())
}

/// Gives each symbol its code, bit-reversed so that it can be written least
/// significant bit first; `codes[s]` is meaningless where `lens[s]` is 0.
pub(crate) fn canonical_codes(lens: &[u8], codes: &mut [u16]) {
    let count = length_counts(lens);
    let mut next_code = [0u32; MAX_BITS + 1];
    let mut code = 0u32;
    for len in 1..=MAX_BITS {
        code = (code + u32::from(count[len - 1])) << 1;
        next_code[len] = code;
    }
    for (sym, &len) in lens.iter().enumerate() {
        if len != 0 {
            let len = usize::from(len);
            codes[sym] = (next_code[len].reverse_bits() >> (32 - len)) as u16;
            next_code[len] += 1;
        }
    }
}

/// Computes Huffman code lengths for `freqs`, none longer than `max_len`,
/// into `lens` (0 for symbols that never occur).
///
/// An optimal Huffman tree is built with the two-queue method over the
/// sorted frequencies; if it is too deep, the lengths are brought within
/// `max_len` the way miniz does (clamp, then rebalance until the Kraft sum is
/// one), and handed out again with the shortest codes to the most frequent
/// symbols. A single used symbol gets a one-bit code.
pub(crate) fn code_lengths(freqs: &[u32], max_len: usize, lens: &mut [u8]) {
    const MAX_SYMBOLS: usize = 288;
    debug_assert!(freqs.len() <= MAX_SYMBOLS && (1 << max_len) >= freqs.len());
    lens.fill(0);
    // Leaves packed as frequency << 16 | symbol: sorting them sorts by
    // frequency, then symbol.
    let mut leaves = [0u64; MAX_SYMBOLS];
    let mut n = 0;
    for (sym, &f) in freqs.iter().enumerate() {
        if f > 0 {
            leaves[n] = u64::from(f) << 16 | sym as u64;
            n += 1;
        }
    }
    let symbol = |leaf: u64| usize::from(leaf as u16);
    match n {
        0 => return,
        1 => {
            lens[symbol(leaves[0])] = 1;
            return;
        }
        _ => {}
    }
    let leaves = &mut leaves[..n];
    leaves.sort_unstable();

    // Nodes 0..n are the leaves in ascending weight; internal nodes follow
    // in the order they are made, which is also ascending weight.
    let mut weight = [0u32; 2 * MAX_SYMBOLS];
    let mut parent = [0u16; 2 * MAX_SYMBOLS];
    for (w, &leaf) in weight.iter_mut().zip(leaves.iter()) {
        *w = (leaf >> 16) as u32;
    }
    let (mut next_leaf, mut next_internal, mut made) = (0, n, n);
    for _ in 0..n - 1 {
        let mut pick = || {
            if next_leaf < n
                && (next_internal >= made || weight[next_leaf] <= weight[next_internal])
            {
                next_leaf += 1;
                next_leaf - 1
            } else {
                next_internal += 1;
                next_internal - 1
            }
        };
        let (a, b) = (pick(), pick());
        weight[made] = weight[a].saturating_add(weight[b]);
        parent[a] = made as u16;
        parent[b] = made as u16;
        made += 1;
    }
    // Parents come after their children, so one backward pass gives depths.
    let root = made - 1;
    let mut depth = [0u16; 2 * MAX_SYMBOLS];
    for node in (0..root).rev() {
        depth[node] = depth[usize::from(parent[node])] + 1;
    }
    let mut bl_count = [0u32; MAX_BITS + 1];
    for &d in &depth[..n] {
        bl_count[usize::from(d).min(max_len)] += 1;
    }
    // Clamping made the Kraft sum exceed one: move leaves down until it is one.
    let mut total: u32 = (1..=max_len).map(|l| bl_count[l] << (max_len - l)).sum();
    while total > 1 << max_len {
        bl_count[max_len] -= 1;
        if let Some(l) = (1..max_len).rev().find(|&l| bl_count[l] != 0) {
            bl_count[l] -= 1;
            bl_count[l + 1] += 2;
        }
        total -= 1;
    }
    // Longest codes to the rarest symbols.
    let mut leaf = leaves.iter();
    for len in (1..=max_len).rev() {
        for _ in 0..bl_count[len] {
            if let Some(&l) = leaf.next() {
                lens[symbol(l)] = len as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraft(lens: &[u8], max: usize) -> u64 {
        lens.iter()
            .filter(|&&l| l != 0)
            .map(|&l| 1u64 << (max - usize::from(l)))
            .sum()
    }

    #[test]
    fn code_lengths_are_complete_and_within_the_limit() {
        // Fibonacci frequencies make the deepest possible Huffman trees.
        let mut fib = vec![1u32, 1];
        while fib.len() < 30 {
            let n = fib[fib.len() - 1] + fib[fib.len() - 2];
            fib.push(n);
        }
        for max in [7, 9, 15] {
            let mut lens = vec![0; fib.len()];
            code_lengths(&fib, max, &mut lens);
            assert!(lens.iter().all(|&l| l >= 1 && usize::from(l) <= max));
            assert_eq!(kraft(&lens, max), 1 << max, "max {max}");
            // More frequent never has a longer code.
            for i in 1..fib.len() {
                assert!(lens[i] <= lens[i - 1]);
            }
        }
    }

    #[test]
    fn code_lengths_handle_zero_one_and_two_symbols() {
        let mut lens = [9u8; 5];
        code_lengths(&[0, 0, 0, 0, 0], 15, &mut lens);
        assert_eq!(lens, [0; 5]);
        code_lengths(&[0, 0, 7, 0, 0], 15, &mut lens);
        assert_eq!(lens, [0, 0, 1, 0, 0]);
        code_lengths(&[1, 0, 1000, 0, 0], 15, &mut lens);
        assert_eq!(lens, [1, 0, 1, 0, 0]);
    }

    #[test]
    fn code_lengths_of_a_flat_distribution_are_balanced() {
        let freqs = [5u32; 256];
        let mut lens = [0u8; 256];
        code_lengths(&freqs, 15, &mut lens);
        assert!(lens.iter().all(|&l| l == 8));
    }

    #[test]
    fn canonical_codes_match_rfc_1951_example() {
        // RFC 1951 3.2.2: lengths (3, 3, 3, 3, 3, 2, 4, 4) give codes
        // 010 011 100 101 110 00 1110 1111.
        let lens = [3, 3, 3, 3, 3, 2, 4, 4];
        let mut codes = [0u16; 8];
        canonical_codes(&lens, &mut codes);
        let expected = [0b010, 0b011, 0b100, 0b101, 0b110, 0b00, 0b1110, 0b1111];
        for i in 0..8 {
            let rev = (u32::from(expected[i] as u16).reverse_bits() >> (32 - lens[i])) as u16;
            assert_eq!(codes[i], rev, "symbol {i}");
        }
    }

    #[test]
    fn decode_table_decodes_every_code_including_long_ones() {
        let mut fib = vec![1u32, 1];
        while fib.len() < 24 {
            let n = fib[fib.len() - 1] + fib[fib.len() - 2];
            fib.push(n);
        }
        let mut lens = vec![0; fib.len()];
        code_lengths(&fib, 15, &mut lens);
        assert_eq!(lens.iter().max(), Some(&15));
        let mut codes = vec![0u16; lens.len()];
        canonical_codes(&lens, &mut codes);
        let mut table = Vec::new();
        build_decode_table(&lens, 6, |s| kind(s as u32, LITERAL), false, 64, &mut table).unwrap();
        for sym in 0..lens.len() {
            // Garbage above the code must not matter.
            let bits = u64::from(codes[sym]) | 0xdead_beef << lens[sym];
            let e = lookup(&table, 6, bits);
            assert_eq!(e >> 16, sym as u32);
            assert_eq!(e & 0xff, u32::from(lens[sym]));
        }
    }

    #[test]
    fn decode_table_refuses_oversubscribed_and_incomplete_codes() {
        let mut table = Vec::new();
        let lit = |s: usize| kind(s as u32, LITERAL);
        assert_eq!(
            build_decode_table(&[1, 1, 1], 9, lit, true, 512, &mut table),
            Err(CodeError::Oversubscribed)
        );
        assert_eq!(
            build_decode_table(&[2, 2, 2], 9, lit, true, 512, &mut table),
            Err(CodeError::Incomplete)
        );
        assert_eq!(
            build_decode_table(&[0, 2], 9, lit, true, 512, &mut table),
            Err(CodeError::Incomplete)
        );
        // One code of one bit, or none, is allowed when asked.
        assert_eq!(
            build_decode_table(&[0, 1], 9, lit, true, 512, &mut table),
            Ok(())
        );
        assert_eq!(lookup(&table, 9, 0) >> 16, 1);
        assert_eq!((lookup(&table, 9, 1) >> 8) & 0xff, INVALID);
        assert_eq!(
            build_decode_table(&[0, 0], 9, lit, true, 512, &mut table),
            Ok(())
        );
        assert_eq!(
            build_decode_table(&[0, 1], 9, lit, false, 512, &mut table),
            Err(CodeError::Incomplete)
        );
    }
}
