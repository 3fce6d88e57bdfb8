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
    // The key as it stands at `buf[0]`: rotated by the offset into it
    // (through little-endian both ways, so on any target).
    let turn = 8 * (offset % 4) as u32;
    let key = u32::from_le_bytes(key).rotate_right(turn).to_le_bytes();
    #[cfg(all(feature = "simd", target_arch = "x86_64", not(miri)))]
    if buf.len() >= 256 {
        return simd::apply_mask_wide(buf, key);
    }
    apply_mask_blocks(buf, key);
}

/// Masks `buf` with `key` starting at key byte 0: bytes up to a 64-byte
/// boundary, so that wide stores never straddle cache lines (that halves
/// their speed), then [`apply_mask_blocks`].
#[cfg(any(test, all(feature = "simd", target_arch = "x86_64", not(miri))))]
#[inline(always)]
fn apply_mask_aligned(buf: &mut [u8], key: [u8; 4]) {
    let head_len = buf.as_ptr().align_offset(64).min(buf.len());
    let (head, body) = buf.split_at_mut(head_len);
    // Up to 63 bytes: in words, not one at a time (that loop cost more
    // than the whole of a 1 KiB payload's aligned body).
    apply_mask_blocks(head, key);
    let o = head_len % 4;
    apply_mask_blocks(
        body,
        [key[o], key[(o + 1) % 4], key[(o + 2) % 4], key[(o + 3) % 4]],
    );
}

/// Masks `buf` with `key` starting at key byte 0: 128-byte blocks, then
/// 16-byte ones, against a key pattern (vectorised at whatever width the
/// target allows), then 8-byte words, then bytes.
#[inline(always)]
fn apply_mask_blocks(buf: &mut [u8], key: [u8; 4]) {
    let (blocks, rest) = buf.as_chunks_mut::<128>();
    if !blocks.is_empty() {
        let mut pattern = [0u8; 128];
        for (i, p) in pattern.iter_mut().enumerate() {
            *p = key[i % 4];
        }
        for block in blocks {
            for (b, p) in block.iter_mut().zip(&pattern) {
                *b ^= p;
            }
        }
    }
    // Small JSON messages: one 16-byte vector at a time.
    let wide = u128::from(u32::from_ne_bytes(key)) * 0x1_0000_0001_0000_0001_0000_0001;
    let (blocks, rest) = rest.as_chunks_mut::<16>();
    for block in blocks {
        *block = (u128::from_ne_bytes(*block) ^ wide).to_ne_bytes();
    }
    // Each block covered a multiple of 4 bytes, so `rest` starts at key[0].
    let wide = u64::from(u32::from_ne_bytes(key)) * 0x1_0000_0001;
    let (words, tail) = rest.as_chunks_mut::<8>();
    for word in words {
        *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
    }
    for (b, k) in tail.iter_mut().zip(wide.to_ne_bytes()) {
        *b ^= k;
    }
}

/// The same loop compiled for wider vectors than the portable x86-64
/// baseline (SSE2), chosen at run time.
///
/// `benches/micro.rs` is the proof that this pays: on an AVX-512 machine, in-place
/// unmasking of 16 KiB goes from 0.6x to 1.1x the speed of `memcpy`; the
/// portable build cannot use more than 16-byte vectors however the loop is written.
#[cfg(all(feature = "simd", target_arch = "x86_64", not(miri)))]
mod simd {
    use super::apply_mask_aligned;

    #[target_feature(enable = "avx512f,avx512bw")]
    fn avx512(buf: &mut [u8], key: [u8; 4]) {
        apply_mask_aligned(buf, key)
    }

    #[target_feature(enable = "avx2")]
    fn avx2(buf: &mut [u8], key: [u8; 4]) {
        apply_mask_aligned(buf, key)
    }

    /// The wide paths this CPU can run, as safe functions, for tests.
    #[cfg(test)]
    #[allow(unsafe_code)]
    pub(super) fn detected() -> Vec<super::MaskPath> {
        let mut paths: Vec<super::MaskPath> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: called only on a CPU with the features, checked above.
            paths.push(("avx512", |b, k| unsafe { avx512(b, k) }));
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            paths.push(("avx2", |b, k| unsafe { avx2(b, k) }));
        }
        paths
    }

    #[allow(unsafe_code)]
    pub(super) fn apply_mask_wide(buf: &mut [u8], key: [u8; 4]) {
        // SAFETY: both functions are safe code; `unsafe` is only needed to
        // call code compiled for CPU features, and each call is guarded by
        // the run-time check that this CPU has them.
        if std::arch::is_x86_feature_detected!("avx512bw") {
            unsafe { avx512(buf, key) }
        } else if std::arch::is_x86_feature_detected!("avx2") {
            unsafe { avx2(buf, key) }
        } else {
            apply_mask_aligned(buf, key)
        }
    }
}

/// A masking path by name, for tests that run each one.
#[cfg(test)]
type MaskPath = (&'static str, fn(&mut [u8], [u8; 4]));

/// The byte-at-a-time definition of masking: the reference the fast path is
/// tested against.
#[inline]
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
    fn wide_paths_match_reference_for_long_unaligned_buffers() {
        let key = [0x9a, 0x01, 0xfe, 0x42];
        let source: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
        for start in 0..4 {
            for len in [255, 256, 257, 300, 1000, 4093] {
                for offset in 0..8 {
                    let mut fast = source[start..start + len].to_vec();
                    let mut slow = fast.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask_reference(&mut slow, key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    /// Each path explicitly, whatever this CPU would dispatch to.
    #[test]
    fn every_unmask_path_matches_the_reference() {
        let key = [0x9a, 0x01, 0xfe, 0x42];
        let source: Vec<u8> = (0..3000u32).map(|i| (i * 31 + 7) as u8).collect();
        for start in 0..5 {
            for len in [0, 1, 63, 64, 127, 128, 129, 255, 1000, 2995] {
                let mut slow = source[start..start + len].to_vec();
                apply_mask_reference(&mut slow, key, 0);
                #[cfg_attr(
                    not(all(feature = "simd", target_arch = "x86_64", not(miri))),
                    allow(unused_mut)
                )]
                let mut paths: Vec<MaskPath> = vec![
                    ("blocks", apply_mask_blocks),
                    ("aligned", apply_mask_aligned),
                ];
                #[cfg(all(feature = "simd", target_arch = "x86_64", not(miri)))]
                paths.extend(simd::detected());
                for (name, path) in paths {
                    let mut fast = source[start..start + len].to_vec();
                    path(&mut fast, key);
                    assert_eq!(fast, slow, "{name}: start {start} len {len}");
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
