//! XOR masking of frame payloads (RFC 6455 section 5.3).
//!
//! Masking is its own inverse, so one function masks and unmasks. It works in
//! place, eight bytes at a time (which the compiler turns into SIMD), in safe code.

/// XORs `buf` with `key`, as if `buf` started `offset` bytes into the payload.
///
/// `offset` lets a payload that arrives in pieces be unmasked piece by piece.
///
/// ```
/// let mut data = *b"Hello";
/// stdws::mask::apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// stdws::mask::apply_mask(&mut data[..2], [0x37, 0xfa, 0x21, 0x3d], 0);
/// stdws::mask::apply_mask(&mut data[2..], [0x37, 0xfa, 0x21, 0x3d], 2);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    if buf.len() < 8 {
        // Short payloads (pings, tiny JSON) skip the word setup.
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
        return;
    }
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let (words, tail) = buf.as_chunks_mut::<8>();
    for word in words {
        *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
    }
    // The words covered a multiple of 4 bytes, so the tail starts at key[0].
    for (i, b) in tail.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The byte-at-a-time definition of masking; the reference the fast path is tested against.
pub fn apply_mask_reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        // `offset % 4` first: `offset + i` can overflow for any offset.
        *b ^= key[(offset % 4 + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_for_every_length_offset_and_alignment() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let source: Vec<u8> = (0..200u32).map(|i| (i * 7 + 3) as u8).collect();
        for start in 0..8 {
            for len in 0..100 {
                for offset in 0..4 {
                    let mut fast = source[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask_reference(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        let mut data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let original = data.clone();
        apply_mask(&mut data, [1, 2, 3, 4], 3);
        assert_ne!(data, original);
        apply_mask(&mut data, [1, 2, 3, 4], 3);
        assert_eq!(data, original);
    }

    #[test]
    fn rfc_example_masked_hello() {
        // RFC 6455 section 5.7: masked "Hello" with key 37 fa 21 3d.
        let mut data = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&data, b"Hello");
    }
}
