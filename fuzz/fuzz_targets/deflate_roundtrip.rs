//! `deflate_roundtrip`: arbitrary messages through the `Deflater` then the
//! `Inflater`, at an arbitrary level, window size and context takeover.
//!
//! Input: level (byte mod 3: fast, default, best), window bits (8 + byte mod
//! 8), a context-takeover bit per message (cycling over 8; 0: reset the
//! deflater first), repeat bits (a message whose bit is set is repeated 1 to
//! 64 times, for long matches and buffer slides, as long as the input's
//! messages stay within two deflater buffers and 4 KiB: `repeat_budget`),
//! then messages, each a little-endian u16 length and that many bytes.
//!
//! Built without comparison tracing (`scripts/fuzz` passes
//! `--no-trace-compares`): 5 times the executions, and as much coverage in a
//! minute as with it.
//!
//! Checked (see `tests/deflate_harness/mod.rs`):
//! * every message comes back unchanged from an inflater that refuses any
//!   distance over 2^window_bits, with the message size as its limit;
//! * a message compressed after a reset also inflates on its own;
//! * the compressed size is at most the input plus 1/8 plus 64 bytes;
//! * the deflater's memory stays within its documented bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/deflate_harness/mod.rs"]
mod deflate_harness;

fuzz_target!(|data: &[u8]| {
    deflate_harness::check_deflate_roundtrip(data);
});
