//! `inflate`: the DEFLATE `Inflater` fed arbitrary compressed messages in
//! arbitrary pieces, with a small arbitrary output limit.
//!
//! Input: window bits (8 + byte mod 8), limit (one of 0, 1, 7, 100, 1000,
//! 4096, 65536, 1 MiB), flags (bit 0: no context takeover; bits 1-3: the
//! largest piece size, 1 to unbounded), a seed for the piece sizes, then
//! messages, each a little-endian u16 length and that many bytes.
//!
//! Checked (see `tests/deflate_harness/mod.rs`, which `tests/deflate_stress.rs`
//! also runs on stable):
//! * no panic, no endless loop;
//! * the output never exceeds the limit, in length or in capacity;
//! * the inflater holds at most its window plus 16 KiB of tables;
//! * fed in pieces, every message gives exactly what it gives fed whole: the
//!   same bytes, or the same error;
//! * after an error, every call fails until a reset.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/deflate_harness/mod.rs"]
mod deflate_harness;

fuzz_target!(|data: &[u8]| {
    deflate_harness::check_inflate(data);
});
