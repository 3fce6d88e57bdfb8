//! Raw DEFLATE (RFC 1951): an inflater and a deflater in safe Rust, with no
//! IO and no dependencies.
//!
//! This module knows nothing of WebSockets: [`crate::proto::extensions`] builds
//! permessage-deflate (RFC 7692) on it. It works on whole messages, the unit
//! RFC 7692 compresses:
//!
//! - [`Deflater::compress_message`] appends one message's compressed bytes,
//!   ending with an empty stored block whose `00 00 FF FF` is stripped (a sync
//!   flush, RFC 7692 section 7.2.1).
//! - [`Inflater::inflate`] takes a message's compressed bytes in pieces of any
//!   size, into a `Vec<u8>` that never grows past a limit, and
//!   [`Inflater::finish_message`] ends it.
//!
//! Both keep their LZ77 window from one message to the next (context
//! takeover) unless reset, and both take the window size as [`WindowBits`]:
//! the deflater never emits a distance over `2^bits - 1`, and the inflater
//! refuses one over `2^bits`.
//!
//! ```
//! use stdws::deflate::{Deflater, Inflater, Level, WindowBits};
//! let (mut deflater, mut inflater) =
//!     (Deflater::new(Level::Default, WindowBits::MAX), Inflater::new(WindowBits::MAX));
//! for message in [&b"{\"inputs\":[0,0,1,0]}"[..], b"{\"inputs\":[0,1,1,0]}"] {
//!     let mut compressed = Vec::new();
//!     deflater.compress_message(message, &mut compressed);
//!     let mut out = Vec::new();
//!     inflater.inflate(&compressed, &mut out, 1 << 20).unwrap();
//!     inflater.finish_message(&mut out, 1 << 20).unwrap();
//!     assert_eq!(out, message);
//! }
//! ```
//!
//! # Memory
//!
//! Per direction, allocated on first use and then kept (W = 2^window_bits):
//!
//! | part | bytes | at 15 bits (the default) | at 9 bits |
//! | --- | --- | --- | --- |
//! | inflater window (only with context takeover) | W | 32 KiB | 512 B |
//! | inflater tables (fixed-code tables shared process-wide) | about 7 KiB | 7 KiB | 7 KiB |
//! | deflater buffer | min(64 KiB, max(4 W, 8 KiB)) | 64 KiB | 8 KiB |
//! | deflater hash heads | 2 · 2^clamp(bits, 10, 15) | 64 KiB | 2 KiB |
//! | deflater hash chains | 2 W | 64 KiB | 1 KiB |
//! | deflater symbol buffer | 4 · min(16 Ki, buffer / 2) | 64 KiB | 16 KiB |
//!
//! So a connection compressing both ways at 15 bits holds about 295 KiB
//! (256 KiB deflater, 39 KiB inflater), and at 9 bits about 35 KiB, plus the
//! messages themselves, which the limits bound: the inflater's output never
//! exceeds the limit it is given. [`Deflater::memory_held`] and
//! [`Inflater::memory_held`] give the figures for a live instance.

#![forbid(unsafe_code)]

mod block;
mod deflater;
mod huffman;
mod inflater;
mod tables;
mod window;
mod window_bits;

pub use deflater::{Deflater, Level};
pub use inflater::{InflateError, Inflater, MESSAGE_TAIL};
pub use window_bits::WindowBits;
