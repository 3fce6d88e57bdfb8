//! The fixed tables of RFC 1951 section 3.2.5 and 3.2.6.

/// Shortest match DEFLATE can code.
pub(crate) const MIN_MATCH: usize = 3;
/// Longest match DEFLATE can code.
pub(crate) const MAX_MATCH: usize = 258;
/// Symbols of the literal/length alphabet that may appear in a block (286
/// and 287 take part in the fixed code but are invalid).
pub(crate) const LITLEN_CODES: usize = 286;
/// Symbols of the distance alphabet that may appear (30 and 31 are invalid).
pub(crate) const DIST_CODES: usize = 30;
/// The end-of-block symbol.
pub(crate) const END_OF_BLOCK: usize = 256;

/// Base length of length symbols 257..=285.
pub(crate) const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
/// Extra bits of length symbols 257..=285.
pub(crate) const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Base distance of distance symbols 0..=29.
pub(crate) const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
/// Extra bits of distance symbols 0..=29.
pub(crate) const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which a dynamic block sends the code-length code's lengths.
pub(crate) const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Length symbol (0-based, add 257) of each match length minus 3.
pub(crate) const LENGTH_SYMBOL: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 29 {
        let start = LENGTH_BASE[code] as usize - MIN_MATCH;
        let count = 1usize << LENGTH_EXTRA[code];
        let mut i = 0;
        while i < count && start + i < 256 {
            table[start + i] = code as u8;
            i += 1;
        }
        code += 1;
    }
    // 258 has its own symbol (285), not 284 with all extra bits set.
    table[255] = 28;
    table
};

/// The distance symbol of a distance in 1..=32768.
#[inline]
pub(crate) fn dist_symbol(distance: usize) -> usize {
    let d = distance - 1;
    if d < 4 {
        d
    } else {
        let top = (usize::BITS - 1 - d.leading_zeros()) as usize; // index of the highest set bit, >= 2
        2 * top + ((d >> (top - 1)) & 1)
    }
}

/// Code lengths of the fixed literal/length code (RFC 1951 3.2.6).
pub(crate) const FIXED_LITLEN_LENGTHS: [u8; 288] = {
    let mut lens = [0u8; 288];
    let mut i = 0;
    while i < 288 {
        lens[i] = match i {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
        i += 1;
    }
    lens
};

/// Code lengths of the fixed distance code: 5 bits for all 32 symbols.
pub(crate) const FIXED_DIST_LENGTHS: [u8; 32] = [5; 32];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_symbols_cover_every_length_with_the_right_base() {
        for len in MIN_MATCH..=MAX_MATCH {
            let sym = LENGTH_SYMBOL[len - MIN_MATCH] as usize;
            let base = LENGTH_BASE[sym] as usize;
            assert!(base <= len, "length {len}");
            assert!(len - base < 1 << LENGTH_EXTRA[sym], "length {len}");
        }
        assert_eq!(LENGTH_SYMBOL[258 - MIN_MATCH], 28);
    }

    #[test]
    fn distance_symbols_cover_every_distance_with_the_right_base() {
        for d in 1..=32768 {
            let sym = dist_symbol(d);
            let base = DIST_BASE[sym] as usize;
            assert!(base <= d && d - base < 1 << DIST_EXTRA[sym], "distance {d}");
        }
    }
}
