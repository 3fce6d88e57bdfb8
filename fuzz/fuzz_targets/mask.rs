//! `mask`: the word-at-a-time `apply_mask` against its byte-at-a-time
//! definition.
//!
//! Masking runs over every payload byte a peer sends, so the fast path must be
//! exactly the definition for every length (short and long paths, every
//! tail), every start alignment of the slice, every key and every offset
//! (payloads are unmasked piece by piece as reads arrive).
//!
//! Input: key (4 bytes), offset (u64 LE, any value), alignment (u8 mod 64:
//! the data starts that many bytes into its buffer, so every position
//! relative to a cache line and to the vector width is reached), a chunk
//! list, then the data. Buffers of 256 bytes and more take the wide
//! (AVX2/AVX-512 where the CPU has them) path.
//!
//! Checked:
//! * `apply_mask` == `apply_mask_reference` == the formula
//!   `byte[i] ^ key[(offset + i) mod 4]` (computed without overflow);
//! * applying in chunks, each at its running offset, equals applying once;
//! * masking twice restores the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stdws::mask::{apply_mask, apply_mask_reference};
use stdws_fuzz::{chunk_list, Cursor};

fuzz_target!(|input: &[u8]| {
    let mut c = Cursor::new(input);
    let key: [u8; 4] = c.array();
    let offset = c.u64() as usize;
    let align = usize::from(c.u8() % 64);
    let chunks = chunk_list(&mut c);
    let data = c.rest();

    // The formula, index by index; `(offset + i) mod 4` without overflow.
    let expected: Vec<u8> = data
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[(offset % 4 + i % 4) % 4])
        .collect();

    let mut buf = vec![0u8; align + data.len()];
    buf[align..].copy_from_slice(data);
    apply_mask(&mut buf[align..], key, offset);
    assert_eq!(buf[align..], expected[..], "apply_mask");

    let mut slow = data.to_vec();
    apply_mask_reference(&mut slow, key, offset);
    assert_eq!(slow, expected, "apply_mask_reference");

    // In chunks, each at its offset into the payload.
    let mut pieces = vec![0u8; align + data.len()];
    pieces[align..].copy_from_slice(data);
    let piece = &mut pieces[align..];
    let mut sizes = chunks.iter().copied().cycle();
    let mut pos = 0;
    while pos < piece.len() {
        let n = sizes.next().unwrap_or(usize::MAX).min(piece.len() - pos);
        apply_mask(&mut piece[pos..pos + n], key, offset.wrapping_add(pos));
        pos += n;
    }
    assert_eq!(piece[..], expected[..], "chunked apply_mask");

    apply_mask(&mut buf[align..], key, offset);
    assert_eq!(&buf[align..], data, "masking twice");
});
