//! Inflate: raw DEFLATE (RFC 1951) in, bytes out, resumable at any byte.
//!
//! [`Inflater::inflate`] takes the compressed bytes of one message in pieces
//! of any size (frames, partial reads) and appends what they decode to into
//! the caller's `Vec<u8>`, which never grows past a hard limit: the check is
//! made before each write, so a small input that would inflate past the
//! limit fails with [`InflateError::OutputLimit`] having allocated at most
//! the limit. [`Inflater::finish_message`] ends the message the way RFC 7692
//! section 7.2.2 says (by appending `00 00 FF FF`) and keeps the last
//! 2^window_bits bytes for the next message unless context takeover is off.
//!
//! Decoding is table driven: a 10-bit primary table for literals and lengths
//! and an 8-bit one for distances, with subtables for longer codes; the bit
//! buffer is refilled 8 bytes at a time. A symbol, with its extra bits and
//! its distance, is decoded whole or not at all, so running out of input
//! never leaves a half-consumed symbol: the state kept between calls is the
//! bit buffer and which part of which block comes next.

use super::huffman::{self, CodeError, DIST_ENOUGH, END, INVALID, LITERAL, LITLEN_ENOUGH};
use super::tables::{
    CODE_LENGTH_ORDER, DIST_BASE, DIST_EXTRA, END_OF_BLOCK, FIXED_DIST_LENGTHS,
    FIXED_LITLEN_LENGTHS, LENGTH_BASE, LENGTH_EXTRA,
};
use super::window::Window;
use super::window_bits::WindowBits;
use alloc::vec::Vec;
use core::fmt;

/// The four bytes every compressed message ends with before the sender
/// strips them (RFC 7692 section 7.2.1), and the receiver puts back.
pub const MESSAGE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Width of the literal/length primary table.
const LITLEN_ROOT: u32 = 10;
/// Width of the distance primary table.
const DIST_ROOT: u32 = 8;
/// Width of the code-length table (code-length codes are at most 7 bits).
const CODELEN_ROOT: u32 = 7;
/// Most bits one literal/length symbol with its distance takes: 15 + 5 + 15 + 13.
const MAX_SYMBOL_BITS: u32 = 48;
/// Most a single output allocation step zero-fills ahead of the data.
const MAX_SLACK: usize = 1 << 20;

/// Why compressed data could not be inflated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InflateError {
    /// A block header with type 3, which RFC 1951 reserves.
    InvalidBlockType,
    /// A stored block whose length's ones' complement is wrong.
    StoredLengthMismatch {
        /// The length field.
        len: u16,
        /// The complement field.
        nlen: u16,
    },
    /// A dynamic block's code lengths do not describe a valid code: too many
    /// codes, an over-subscribed or incomplete code, a repeat with nothing to
    /// repeat or past the end, or no end-of-block code.
    BadCodeLengths(&'static str),
    /// A code that no valid stream contains: literal/length symbol 286 or
    /// 287, distance symbol 30 or 31, or an unused code of an incomplete one.
    InvalidSymbol,
    /// A match reaching back further than the window or than the data
    /// produced so far (the message plus the history kept before it).
    DistanceTooFarBack {
        /// The match's distance.
        distance: usize,
        /// The furthest back a match could reach at that point.
        available: usize,
    },
    /// The inflated message would exceed the limit (close code 1009).
    OutputLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// The message ended inside a block: once `00 00 FF FF` is appended, the
    /// data must end exactly at a block boundary.
    Truncated,
    /// The output buffer lost bytes this message had already produced
    /// between two calls: a caller bug, since matches refer back into them.
    OutputMismatch,
}

impl InflateError {
    /// Whether this is the output limit, which a WebSocket reports with close
    /// code 1009 rather than as invalid data.
    pub fn is_limit(&self) -> bool {
        matches!(self, InflateError::OutputLimit { .. })
    }
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::InvalidBlockType => f.write_str("invalid DEFLATE block type 3"),
            InflateError::StoredLengthMismatch { len, nlen } => write!(
                f,
                "stored block length {len:#06x} does not match its complement {nlen:#06x}"
            ),
            InflateError::BadCodeLengths(why) => write!(f, "invalid Huffman code lengths: {why}"),
            InflateError::InvalidSymbol => f.write_str("invalid Huffman code in compressed data"),
            InflateError::DistanceTooFarBack {
                distance,
                available,
            } => write!(
                f,
                "match distance {distance} reaches back further than the {available} bytes available"
            ),
            InflateError::OutputLimit { limit } => {
                write!(f, "inflated message exceeds {limit} bytes")
            }
            InflateError::Truncated => {
                f.write_str("compressed message does not end at a DEFLATE block boundary")
            }
            InflateError::OutputMismatch => {
                f.write_str("output buffer lost bytes of the message being inflated")
            }
        }
    }
}

impl core::error::Error for InflateError {}

/// Bits of input not yet consumed, least significant first.
///
/// `n` bits are counted; bits above them are either zero or the true next
/// bits of the stream (an 8-byte refill loads more than it counts), so
/// reloading them is harmless.
#[derive(Clone, Copy, Debug, Default)]
struct BitReader {
    buf: u64,
    n: u32,
}

impl BitReader {
    /// Tops the buffer up to at least 56 bits, or takes all the input left.
    #[inline(always)]
    fn refill(&mut self, input: &[u8], pos: &mut usize) {
        if let Some(word) = input.get(*pos..*pos + 8) {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(word);
            self.buf |= u64::from_le_bytes(bytes) << self.n;
            *pos += ((63 - self.n) >> 3) as usize;
            self.n |= 56;
        } else {
            while self.n <= 56 && *pos < input.len() {
                self.buf |= u64::from(input[*pos]) << self.n;
                *pos += 1;
                self.n += 8;
            }
        }
    }

    #[inline(always)]
    fn peek(&self, k: u32) -> u64 {
        self.buf & ((1 << k) - 1)
    }

    #[inline(always)]
    fn consume(&mut self, k: u32) {
        self.buf >>= k;
        self.n -= k;
    }

    #[inline(always)]
    fn take(&mut self, k: u32) -> u64 {
        let v = self.peek(k);
        self.consume(k);
        v
    }

    /// Drops the bits up to the next byte boundary.
    fn align(&mut self) {
        let k = self.n % 8;
        self.consume(k);
    }

    /// Clears the bits above the counted ones, before input is read directly.
    fn clear_uncounted(&mut self) {
        self.buf &= (1u64 << self.n) - 1;
    }
}

/// Where the decoder is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Next comes a block header.
    Header,
    /// Next come a stored block's LEN and NLEN (byte aligned).
    StoredLen,
    /// Inside a stored block, with this many bytes to copy.
    Stored(usize),
    /// Next come a dynamic block's HLIT, HDIST and HCLEN.
    DynamicCounts,
    /// Reading the code-length code's lengths; this many read.
    CodeLengthLengths(usize),
    /// Reading the literal/length and distance code lengths; this many read.
    CodeLengths(usize),
    /// Inside a fixed (true) or dynamic (false) Huffman block.
    Codes(bool),
    /// A block marked final has ended, at a byte boundary. If the message
    /// goes on, a new stream starts, still with the same history: RFC 7692
    /// section 7.2.3.4 shows a sender following a final block with a sync
    /// flush's empty stored block.
    Done,
}

/// Builds the fixed code's decoding tables into `lit` and `dist`.
fn build_fixed_tables(lit: &mut Vec<u32>, dist: &mut Vec<u32>) {
    // Both codes are complete: building cannot fail.
    let _ = huffman::build_decode_table(
        &FIXED_LITLEN_LENGTHS,
        LITLEN_ROOT,
        litlen_kind,
        false,
        LITLEN_ENOUGH,
        lit,
    );
    let _ = huffman::build_decode_table(
        &FIXED_DIST_LENGTHS,
        DIST_ROOT,
        dist_kind,
        false,
        DIST_ENOUGH,
        dist,
    );
}

/// The fixed code's decoding tables, built once for the whole process.
/// (Without `std` there is no `OnceLock`: each fixed block builds them into
/// the inflater's own tables instead.)
#[cfg(feature = "std")]
fn fixed_tables() -> &'static (Vec<u32>, Vec<u32>) {
    static TABLES: std::sync::OnceLock<(Vec<u32>, Vec<u32>)> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let (mut lit, mut dist) = (Vec::new(), Vec::new());
        build_fixed_tables(&mut lit, &mut dist);
        (lit, dist)
    })
}

fn litlen_kind(sym: usize) -> u32 {
    match sym {
        0..=255 => huffman::kind(sym as u32, LITERAL),
        END_OF_BLOCK => huffman::kind(0, END),
        257..=285 => huffman::kind(
            u32::from(LENGTH_BASE[sym - 257]),
            u32::from(LENGTH_EXTRA[sym - 257]),
        ),
        _ => huffman::kind(0, INVALID),
    }
}

fn dist_kind(sym: usize) -> u32 {
    match sym {
        0..=29 => huffman::kind(u32::from(DIST_BASE[sym]), u32::from(DIST_EXTRA[sym])),
        _ => huffman::kind(0, INVALID),
    }
}

fn code_error(e: CodeError, which: &'static str) -> InflateError {
    InflateError::BadCodeLengths(match (e, which) {
        (CodeError::Oversubscribed, "litlen") => "over-subscribed literal/length code",
        (CodeError::Oversubscribed, "dist") => "over-subscribed distance code",
        (CodeError::Oversubscribed, _) => "over-subscribed code-length code",
        (CodeError::Incomplete, "litlen") => "incomplete literal/length code",
        (CodeError::Incomplete, "dist") => "incomplete distance code",
        (CodeError::Incomplete, _) => "incomplete code-length code",
    })
}

/// The caller's output vector while a call runs: `buf[..pos]` is real output,
/// `buf[pos..]` zero-filled room not yet written (cut off when the call ends).
struct Output<'a> {
    buf: &'a mut Vec<u8>,
    pos: usize,
    /// Where the current message starts in `buf`.
    start: usize,
    limit: usize,
    /// How much room to add when more is needed; doubles each time, so the
    /// zero-filling is linear in the output, not in the number of calls.
    slack: usize,
}

impl Output<'_> {
    /// Makes room for `need` more bytes, failing if that passes the limit.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, need: usize) -> Result<(), InflateError> {
        let end = self.pos.saturating_add(need);
        if end > self.limit {
            return Err(InflateError::OutputLimit { limit: self.limit });
        }
        let target = end.max(self.pos.saturating_add(self.slack)).min(self.limit);
        self.slack = (self.slack * 2).min(MAX_SLACK);
        if target > self.buf.capacity() {
            // Geometric growth, as Vec's own, but never past the limit.
            let capacity = target
                .max(self.buf.capacity().saturating_mul(2))
                .min(self.limit);
            self.buf.reserve_exact(capacity - self.buf.len());
        }
        self.buf.resize(target, 0);
        Ok(())
    }

    #[inline(always)]
    fn push(&mut self, byte: u8) -> Result<(), InflateError> {
        if self.pos == self.buf.len() {
            self.grow(1)?;
        }
        self.buf[self.pos] = byte;
        self.pos += 1;
        Ok(())
    }

    /// Appends `bytes`; past the limit, the part that fits and then the
    /// error, as [`Output::match_over_limit`] does for matches.
    fn extend(&mut self, bytes: &[u8]) -> Result<(), InflateError> {
        let fits = self.room_to_limit();
        if bytes.len() > fits {
            self.extend(&bytes[..fits])?;
            return Err(InflateError::OutputLimit { limit: self.limit });
        }
        if self.buf.len() - self.pos < bytes.len() {
            self.grow(bytes.len())?;
        }
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
        Ok(())
    }

    /// Copies `length` bytes from `distance` back, after checking that the
    /// distance is within the window and the data produced.
    #[inline(always)]
    fn copy_match(
        &mut self,
        distance: usize,
        length: usize,
        window: &Window,
        max_distance: usize,
    ) -> Result<(), InflateError> {
        if length > self.room_to_limit() {
            return self.match_over_limit(distance, window, max_distance);
        }
        let produced = self.pos - self.start;
        if distance > produced || distance > max_distance {
            return self.copy_from_window(distance, length, window, max_distance);
        }
        if self.buf.len() - self.pos < length + 16 {
            self.grow(length + 16).or_else(|_| self.grow(length))?;
        }
        let src = self.pos - distance;
        if distance >= 16 && self.buf.len() - self.pos >= length + 16 {
            // 16 bytes at a time, possibly past the end of the match (into
            // room not yet written); each chunk reads only bytes already
            // written since the distance is at least 16.
            let mut i = 0;
            while i < length {
                let mut chunk = [0; 16];
                chunk.copy_from_slice(&self.buf[src + i..src + i + 16]);
                self.buf[self.pos + i..self.pos + i + 16].copy_from_slice(&chunk);
                i += 16;
            }
            self.pos += length;
        } else {
            self.copy_within_output(src, length);
        }
        Ok(())
    }

    /// How many more bytes the limit allows.
    #[inline(always)]
    fn room_to_limit(&self) -> usize {
        self.limit.saturating_sub(self.pos)
    }

    /// A match that passes the limit: the part that fits is output before
    /// the error, as it would be had the input come in smaller pieces, so
    /// that the caller sees (and checks) the same bytes however it is read.
    #[cold]
    #[inline(never)]
    fn match_over_limit(
        &mut self,
        distance: usize,
        window: &Window,
        max_distance: usize,
    ) -> Result<(), InflateError> {
        let fits = self.room_to_limit();
        self.copy_match(distance, fits, window, max_distance)?;
        Err(InflateError::OutputLimit { limit: self.limit })
    }

    /// Copies `length` bytes from `src` to the end, repeating the pattern
    /// when they overlap (as LZ77 means it); the room must be there.
    fn copy_within_output(&mut self, src: usize, length: usize) {
        let distance = self.pos - src;
        if distance == 1 {
            let byte = self.buf[src];
            self.buf[self.pos..self.pos + length].fill(byte);
        } else {
            // Each copy doubles the repeated span: O(log) copies.
            let mut done = 0;
            while done < length {
                let n = (distance + done).min(length - done);
                self.buf.copy_within(src..src + n, self.pos + done);
                done += n;
            }
        }
        self.pos += length;
    }

    /// A match that starts in the history kept from earlier messages.
    #[cold]
    #[inline(never)]
    fn copy_from_window(
        &mut self,
        distance: usize,
        length: usize,
        window: &Window,
        max_distance: usize,
    ) -> Result<(), InflateError> {
        let produced = self.pos - self.start;
        let available = (produced + window.len()).min(max_distance);
        if distance > available {
            return Err(InflateError::DistanceTooFarBack {
                distance,
                available,
            });
        }
        if self.buf.len() - self.pos < length {
            self.grow(length)?;
        }
        let back = distance - produced;
        let from_window = back.min(length);
        window.copy_to(back, &mut self.buf[self.pos..self.pos + from_window]);
        self.pos += from_window;
        if length > from_window {
            // The rest starts at the message's first byte.
            self.copy_within_output(self.start, length - from_window);
        }
        Ok(())
    }
}

/// Decodes one message's compressed data after another, keeping the LZ77
/// window between them (context takeover) unless told not to.
///
/// ```
/// use stdws::deflate::{Inflater, WindowBits};
/// let mut inflater = Inflater::new(WindowBits::MAX);
/// let mut out = Vec::new();
/// // RFC 7692 7.2.3.1: "Hello", compressed and with the tail stripped.
/// inflater.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 1024).unwrap();
/// inflater.finish_message(&mut out, 1024).unwrap();
/// assert_eq!(out, b"Hello");
/// // 7.2.3.2: the same message again, now a reference into the window.
/// let mut again = Vec::new();
/// inflater.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut again, 1024).unwrap();
/// inflater.finish_message(&mut again, 1024).unwrap();
/// assert_eq!(again, b"Hello");
/// ```
///
/// Memory: the window, 2^window_bits bytes, allocated when the first message
/// ends with context takeover on (never with it off), plus about 7 KiB of
/// decoding tables. The fixed code's tables are shared by every inflater.
#[derive(Clone, Debug)]
pub struct Inflater {
    max_distance: usize,
    context_takeover: bool,
    state: State,
    /// The last block header had BFINAL set.
    last: bool,
    bits: BitReader,
    window: Window,
    /// Bytes the current message has produced so far (at the end of the output).
    produced: usize,
    hlit: usize,
    hdist: usize,
    hclen: usize,
    lens: [u8; 320],
    codelen_table: Vec<u32>,
    litlen_table: Vec<u32>,
    dist_table: Vec<u32>,
    /// Errors are final: every later call gives the same one.
    failed: Option<InflateError>,
}

impl Inflater {
    /// An inflater for data compressed with a window of at most
    /// 2^`window_bits` bytes: matches reaching further back are errors, and
    /// that much history is kept between messages.
    pub fn new(window_bits: WindowBits) -> Self {
        Inflater {
            max_distance: window_bits.size(),
            context_takeover: true,
            state: State::Header,
            last: false,
            bits: BitReader::default(),
            window: Window::new(window_bits.size()),
            produced: 0,
            hlit: 0,
            hdist: 0,
            hclen: 0,
            lens: [0; 320],
            codelen_table: Vec::new(),
            litlen_table: Vec::new(),
            dist_table: Vec::new(),
            failed: None,
        }
    }

    /// Whether the history of one message is kept for the next (the default).
    /// Off, each message is inflated on its own, as when the peer agreed to
    /// `*_no_context_takeover`, and no window memory is ever allocated.
    pub fn set_context_takeover(&mut self, keep: bool) {
        self.context_takeover = keep;
        if !keep {
            self.window.clear();
        }
    }

    /// Forgets everything: the history, any message in progress and any
    /// error. Keeps the allocations.
    pub fn reset(&mut self) {
        self.window.clear();
        self.state = State::Header;
        self.bits = BitReader::default();
        self.produced = 0;
        self.failed = None;
    }

    /// Bytes of memory this inflater holds now (the output is the caller's).
    pub fn memory_held(&self) -> usize {
        self.window.capacity()
            + 4 * (self.codelen_table.capacity()
                + self.litlen_table.capacity()
                + self.dist_table.capacity())
            + core::mem::size_of::<Self>()
    }

    /// Inflates the next piece of the current message's compressed data,
    /// appending the output to `out`, which never grows past `limit` bytes
    /// (length and capacity): over it, [`InflateError::OutputLimit`].
    ///
    /// Pieces may be split anywhere; every byte given is consumed. Between
    /// the calls for one message `out` must keep what they appended (matches
    /// refer back into it). Once this returns an error, so does every call
    /// until [`Inflater::reset`].
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if out.len() < self.produced {
            return self.fail(InflateError::OutputMismatch);
        }
        let start = out.len() - self.produced;
        let mut output = Output {
            pos: out.len(),
            buf: out,
            start,
            limit,
            slack: input
                .len()
                .saturating_mul(4)
                .saturating_add(64)
                .min(MAX_SLACK),
        };
        let result = self.run(input, &mut output);
        let end = output.pos;
        out.truncate(end);
        self.produced = end - start;
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Ends the current message: inflates the `00 00 FF FF` tail RFC 7692
    /// strips (unless the message ended right after a block marked final, as
    /// a sender flushing with `BFINAL` may do), checks that the data ended at
    /// a block boundary, and keeps the message's last bytes as history for
    /// the next one (with context takeover on).
    pub fn finish_message(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        if self.state != State::Done {
            self.inflate(&MESSAGE_TAIL, out, limit)?;
        }
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let at_boundary = match self.state {
            State::Done => true,
            State::Header => self.bits.n == 0,
            _ => false,
        };
        if !at_boundary {
            return self.fail(InflateError::Truncated);
        }
        if out.len() < self.produced {
            return self.fail(InflateError::OutputMismatch);
        }
        if self.context_takeover {
            self.window.push(&out[out.len() - self.produced..]);
        }
        self.produced = 0;
        self.state = State::Header;
        self.bits = BitReader::default();
        Ok(())
    }

    fn fail(&mut self, e: InflateError) -> Result<(), InflateError> {
        self.failed = Some(e.clone());
        Err(e)
    }

    /// Runs the state machine until the input is used up (`Ok`) or an error.
    fn run(&mut self, input: &[u8], out: &mut Output) -> Result<(), InflateError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Header => {
                    self.bits.refill(input, &mut pos);
                    if self.bits.n < 3 {
                        return Ok(());
                    }
                    let header = self.bits.take(3);
                    self.last = header & 1 == 1;
                    self.state = match header >> 1 {
                        0 => {
                            self.bits.align();
                            State::StoredLen
                        }
                        #[cfg(feature = "std")]
                        1 => State::Codes(true),
                        #[cfg(not(feature = "std"))]
                        1 => {
                            build_fixed_tables(&mut self.litlen_table, &mut self.dist_table);
                            State::Codes(false)
                        }
                        2 => State::DynamicCounts,
                        _ => return Err(InflateError::InvalidBlockType),
                    };
                }
                State::StoredLen => {
                    self.bits.refill(input, &mut pos);
                    if self.bits.n < 32 {
                        return Ok(());
                    }
                    let v = self.bits.take(32);
                    let (len, nlen) = (v as u16, (v >> 16) as u16);
                    if len != !nlen {
                        return Err(InflateError::StoredLengthMismatch { len, nlen });
                    }
                    self.state = State::Stored(usize::from(len));
                }
                State::Stored(mut remaining) => {
                    // Whole bytes still in the bit buffer first, then the input.
                    while remaining > 0 && self.bits.n >= 8 {
                        out.push(self.bits.take(8) as u8)?;
                        remaining -= 1;
                    }
                    if remaining > 0 {
                        self.bits.clear_uncounted();
                        let n = remaining.min(input.len() - pos);
                        out.extend(&input[pos..pos + n])?;
                        pos += n;
                        remaining -= n;
                    }
                    if remaining > 0 {
                        self.state = State::Stored(remaining);
                        return Ok(());
                    }
                    self.end_block();
                }
                State::DynamicCounts => {
                    self.bits.refill(input, &mut pos);
                    if self.bits.n < 14 {
                        return Ok(());
                    }
                    let v = self.bits.take(14) as usize;
                    self.hlit = 257 + (v & 0x1f);
                    self.hdist = 1 + ((v >> 5) & 0x1f);
                    self.hclen = 4 + (v >> 10);
                    if self.hlit > 286 || self.hdist > 30 {
                        return Err(InflateError::BadCodeLengths(
                            "more than 286 literal/length or 30 distance codes",
                        ));
                    }
                    self.lens[..19].fill(0);
                    self.state = State::CodeLengthLengths(0);
                }
                State::CodeLengthLengths(mut i) => {
                    while i < self.hclen {
                        self.bits.refill(input, &mut pos);
                        if self.bits.n < 3 {
                            self.state = State::CodeLengthLengths(i);
                            return Ok(());
                        }
                        self.lens[CODE_LENGTH_ORDER[i]] = self.bits.take(3) as u8;
                        i += 1;
                    }
                    huffman::build_decode_table(
                        &self.lens[..19],
                        CODELEN_ROOT,
                        |sym| huffman::kind(sym as u32, LITERAL),
                        false,
                        1 << CODELEN_ROOT,
                        &mut self.codelen_table,
                    )
                    .map_err(|e| code_error(e, "codelen"))?;
                    self.state = State::CodeLengths(0);
                }
                State::CodeLengths(i) => {
                    let done = self.read_code_lengths(i, input, &mut pos)?;
                    if !done {
                        return Ok(());
                    }
                    self.build_tables()?;
                    self.state = State::Codes(false);
                }
                State::Codes(fixed) => {
                    let (litlen, dist) = match fixed {
                        #[cfg(feature = "std")]
                        true => {
                            let tables = fixed_tables();
                            (&tables.0[..], &tables.1[..])
                        }
                        _ => (&self.litlen_table[..], &self.dist_table[..]),
                    };
                    let ended = decode_codes(
                        litlen,
                        dist,
                        &mut self.bits,
                        input,
                        &mut pos,
                        out,
                        &self.window,
                        self.max_distance,
                    )?;
                    if !ended {
                        return Ok(());
                    }
                    self.end_block();
                }
                State::Done => {
                    if self.bits.n == 0 && pos == input.len() {
                        return Ok(());
                    }
                    self.state = State::Header;
                }
            }
        }
    }

    fn end_block(&mut self) {
        self.state = if self.last {
            self.bits.align();
            State::Done
        } else {
            State::Header
        };
    }

    /// Reads code lengths from index `i`; `Ok(false)` when the input ran out
    /// (the state records how far it got).
    fn read_code_lengths(
        &mut self,
        mut i: usize,
        input: &[u8],
        pos: &mut usize,
    ) -> Result<bool, InflateError> {
        let total = self.hlit + self.hdist;
        while i < total {
            self.bits.refill(input, pos);
            let entry = huffman::lookup(&self.codelen_table, CODELEN_ROOT, self.bits.buf);
            let len = entry & 0xff;
            let sym = (entry >> 16) as usize;
            let extra = match sym {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => 0,
            };
            if self.bits.n < len + extra {
                self.state = State::CodeLengths(i);
                return Ok(false);
            }
            self.bits.consume(len);
            let x = self.bits.take(extra) as usize;
            let (value, count) = match sym {
                0..=15 => (sym as u8, 1),
                16 if i == 0 => {
                    return Err(InflateError::BadCodeLengths(
                        "repeat of the previous length at the start",
                    ))
                }
                16 => (self.lens[i - 1], 3 + x),
                17 => (0, 3 + x),
                _ => (0, 11 + x),
            };
            if i + count > total {
                return Err(InflateError::BadCodeLengths(
                    "code length repeat past the last code",
                ));
            }
            self.lens[i..i + count].fill(value);
            i += count;
        }
        Ok(true)
    }

    fn build_tables(&mut self) -> Result<(), InflateError> {
        let (hlit, hdist) = (self.hlit, self.hdist);
        if self.lens[END_OF_BLOCK] == 0 {
            return Err(InflateError::BadCodeLengths("no end-of-block code"));
        }
        huffman::build_decode_table(
            &self.lens[..hlit],
            LITLEN_ROOT,
            litlen_kind,
            true,
            LITLEN_ENOUGH,
            &mut self.litlen_table,
        )
        .map_err(|e| code_error(e, "litlen"))?;
        huffman::build_decode_table(
            &self.lens[hlit..hlit + hdist],
            DIST_ROOT,
            dist_kind,
            true,
            DIST_ENOUGH,
            &mut self.dist_table,
        )
        .map_err(|e| code_error(e, "dist"))
    }
}

/// Decodes symbols of a Huffman block until its end (`Ok(true)`) or until
/// the input runs out (`Ok(false)`, the symbol in progress unconsumed).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn decode_codes(
    litlen: &[u32],
    dist: &[u32],
    bits: &mut BitReader,
    input: &[u8],
    pos: &mut usize,
    out: &mut Output,
    window: &Window,
    max_distance: usize,
) -> Result<bool, InflateError> {
    let mask = |k: u32| (1u64 << k) - 1;
    loop {
        bits.refill(input, pos);
        debug_assert!(bits.n >= MAX_SYMBOL_BITS || *pos == input.len());
        let entry = huffman::lookup(litlen, LITLEN_ROOT, bits.buf);
        let len = entry & 0xff;
        let flags = (entry >> 8) & 0xff;
        if flags == LITERAL {
            if len > bits.n {
                return Ok(false);
            }
            bits.consume(len);
            out.push((entry >> 16) as u8)?;
            continue;
        }
        if flags < INVALID {
            // A length symbol; its extra bits, then the distance, all at once.
            let need = len + flags;
            if need > bits.n {
                return Ok(false);
            }
            let length = (entry >> 16) as usize + ((bits.buf >> len) & mask(flags)) as usize;
            let rest = bits.buf >> need;
            let d = huffman::lookup(dist, DIST_ROOT, rest);
            let dlen = d & 0xff;
            let dflags = (d >> 8) & 0xff;
            if dflags >= INVALID {
                if need + dlen > bits.n {
                    return Ok(false);
                }
                return Err(InflateError::InvalidSymbol);
            }
            let total = need + dlen + dflags;
            if total > bits.n {
                return Ok(false);
            }
            let distance = (d >> 16) as usize + ((rest >> dlen) & mask(dflags)) as usize;
            bits.consume(total);
            out.copy_match(distance, length, window, max_distance)?;
            continue;
        }
        if len > bits.n {
            return Ok(false);
        }
        bits.consume(len);
        if flags == END {
            return Ok(true);
        }
        return Err(InflateError::InvalidSymbol);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::tables::{dist_symbol, LENGTH_SYMBOL, MIN_MATCH};

    const LIMIT: usize = 1 << 20;

    /// A DEFLATE stream written bit by bit, for hand-made (and broken) input.
    #[derive(Default)]
    struct Bits {
        bytes: Vec<u8>,
        n: usize,
    }

    impl Bits {
        fn bit(&mut self, b: bool) {
            if self.n.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if b {
                *self.bytes.last_mut().unwrap() |= 1 << (self.n % 8);
            }
            self.n += 1;
        }
        /// A number, least significant bit first.
        fn put(&mut self, value: u32, count: u32) -> &mut Self {
            (0..count).for_each(|i| self.bit((value >> i) & 1 == 1));
            self
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u32, len: u32) -> &mut Self {
            (0..len).rev().for_each(|i| self.bit((code >> i) & 1 == 1));
            self
        }
        fn align(&mut self) -> &mut Self {
            self.n = self.n.next_multiple_of(8);
            self
        }
        fn raw(&mut self, data: &[u8]) -> &mut Self {
            assert_eq!(self.n % 8, 0);
            self.bytes.extend_from_slice(data);
            self.n += 8 * data.len();
            self
        }
        fn stored(&mut self, data: &[u8]) -> &mut Self {
            let len = data.len() as u32;
            self.put(0, 3)
                .align()
                .put(len, 16)
                .put(!len & 0xffff, 16)
                .raw(data)
        }
        fn fixed_header(&mut self) -> &mut Self {
            self.put(0b010, 3)
        }
        /// A symbol of the fixed literal/length code.
        fn sym(&mut self, s: u32) -> &mut Self {
            match s {
                0..=143 => self.code(0x30 + s, 8),
                144..=255 => self.code(0x190 + s - 144, 9),
                256..=279 => self.code(s - 256, 7),
                _ => self.code(0xc0 + s - 280, 8),
            }
        }
        fn lits(&mut self, data: &[u8]) -> &mut Self {
            data.iter().for_each(|&b| {
                self.sym(u32::from(b));
            });
            self
        }
        /// A match in a fixed block.
        fn copy(&mut self, length: usize, distance: usize) -> &mut Self {
            let l = usize::from(LENGTH_SYMBOL[length - MIN_MATCH]);
            self.sym(257 + l as u32).put(
                (length - usize::from(LENGTH_BASE[l])) as u32,
                u32::from(LENGTH_EXTRA[l]),
            );
            let d = dist_symbol(distance);
            self.code(d as u32, 5).put(
                (distance - usize::from(DIST_BASE[d])) as u32,
                u32::from(DIST_EXTRA[d]),
            )
        }
        fn end(&mut self) -> &mut Self {
            self.sym(256)
        }
        /// The bytes a sender sends: a sync flush with its tail stripped.
        fn message(&mut self) -> Vec<u8> {
            self.put(0, 3).align();
            core::mem::take(&mut self.bytes)
        }
    }

    fn inflate_with(inflater: &mut Inflater, pieces: &[&[u8]]) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        for piece in pieces {
            inflater.inflate(piece, &mut out, LIMIT)?;
        }
        inflater.finish_message(&mut out, LIMIT)?;
        Ok(out)
    }

    fn inflate(data: &[u8]) -> Result<Vec<u8>, InflateError> {
        inflate_with(&mut Inflater::new(WindowBits::MAX), &[data])
    }

    /// zlib level 9 output (a dynamic block) for `DYNAMIC_TEXT`.
    const DYNAMIC_TEXT: &[u8] = b"Compression is the feature users of the Rust WebSocket crates have asked for longest. \
The DEFLATE codec is written here, in safe Rust, in its own module that knows nothing of WebSockets. \
Inflate: stored, fixed-Huffman and dynamic-Huffman blocks; a sliding window of up to 32 KiB.";
    const DYNAMIC: [u8; 196] = [
        0x3c, 0x8e, 0xb1, 0x4e, 0x03, 0x31, 0x10, 0x44, 0x7f, 0x65, 0x3e, 0x20, 0x5c, 0x01, 0x1d,
        0x54, 0x01, 0x82, 0x40, 0x50, 0x85, 0x48, 0xd4, 0xce, 0x79, 0x9d, 0x5b, 0x9d, 0x6f, 0x37,
        0xf2, 0xae, 0x31, 0xfc, 0x3d, 0xbe, 0x20, 0xa5, 0x9c, 0x91, 0xe6, 0xcd, 0x7b, 0xd2, 0xe5,
        0x5c, 0xc8, 0x8c, 0x55, 0xc0, 0x06, 0x9f, 0x08, 0x89, 0x82, 0xd7, 0x42, 0xa8, 0x46, 0xc5,
        0xa0, 0xe9, 0x52, 0xee, 0xab, 0x39, 0xbe, 0xe8, 0xf8, 0xa9, 0xe3, 0x4c, 0x8e, 0xb1, 0x04,
        0x27, 0xc3, 0x14, 0xbe, 0x09, 0xc1, 0x66, 0x8a, 0x48, 0x5a, 0x90, 0x55, 0x4e, 0x64, 0x3e,
        0xe0, 0xd0, 0x17, 0xcf, 0xbb, 0x97, 0x8f, 0xed, 0x61, 0x87, 0x51, 0x23, 0x8d, 0x2b, 0xbb,
        0x15, 0x76, 0x27, 0xc1, 0x44, 0x85, 0x36, 0x60, 0x81, 0x85, 0xf4, 0x0f, 0xbe, 0x24, 0xf6,
        0x7e, 0xd6, 0x04, 0x8b, 0xc6, 0x9a, 0xa9, 0x9f, 0x06, 0xc7, 0x2c, 0xda, 0x0c, 0xa2, 0x3e,
        0xb1, 0x9c, 0x56, 0x95, 0xab, 0x81, 0x0d, 0x78, 0x93, 0x94, 0xbb, 0xc5, 0x3d, 0xcc, 0xb5,
        0x50, 0xdc, 0x20, 0xf1, 0x0f, 0xc5, 0x9b, 0xd7, 0x9a, 0xd2, 0x12, 0x04, 0x41, 0x22, 0xe2,
        0xaf, 0x84, 0x85, 0xc7, 0x6b, 0x77, 0xcc, 0x7d, 0x6c, 0x0f, 0x08, 0xb0, 0xcc, 0x71, 0x65,
        0x36, 0x96, 0xa8, 0x6d, 0x45, 0xd7, 0x33, 0x5c, 0x71, 0x77, 0x8b, 0x77, 0x7e, 0x1c, 0xfe,
        0x00,
    ];

    #[test]
    fn inflates_the_rfc_7692_examples() {
        // 7.2.3.1 fixed block; 7.2.3.3 stored block; 7.2.3.4 final block
        // then the empty stored block's first byte; 7.2.3.5 two blocks.
        let hello: [&[u8]; 4] = [
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ];
        for data in hello {
            assert_eq!(inflate(data).unwrap(), b"Hello", "{data:02x?}");
        }
        // 7.2.3.2: the second message refers back into the first.
        let mut inflater = Inflater::new(WindowBits::MAX);
        assert_eq!(inflate_with(&mut inflater, &[hello[0]]).unwrap(), b"Hello");
        assert_eq!(
            inflate_with(&mut inflater, &[&[0xf2, 0x00, 0x11, 0x00, 0x00]]).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn inflates_a_dynamic_block_from_zlib() {
        assert_eq!((DYNAMIC[0] >> 1) & 3, 2, "a dynamic block");
        assert_eq!(inflate(&DYNAMIC).unwrap(), DYNAMIC_TEXT);
    }

    #[test]
    fn a_message_may_end_with_a_final_block_and_the_next_still_refers_back() {
        // zlib's Z_FINISH output, tail not stripped: nothing follows the final block.
        let mut inflater = Inflater::new(WindowBits::MAX);
        let hello = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_with(&mut inflater, &[&hello]).unwrap(), b"Hello");
        let again = Bits::default().fixed_header().copy(5, 5).end().message();
        assert_eq!(inflate_with(&mut inflater, &[&again]).unwrap(), b"Hello");
        // A block after a final block in the same message starts a new stream.
        let mut two = hello.to_vec();
        two.extend(
            Bits::default()
                .fixed_header()
                .lits(b" world")
                .end()
                .message(),
        );
        assert_eq!(inflate(&two).unwrap(), b"Hello world");
    }

    #[test]
    fn copies_overlapping_matches_as_repeats() {
        let cases: [(&[u8], usize, usize, &[u8]); 4] = [
            (b"a", 10, 1, b"aaaaaaaaaaa"),
            (b"ab", 7, 2, b"ababababa"),
            (b"abc", 258, 3, &b"abc".repeat(87)[..261]),
            (b"0123456789abcdefghij", 50, 17, b""),
        ];
        for (lits, length, distance, expected) in cases {
            let data = Bits::default()
                .fixed_header()
                .lits(lits)
                .copy(length, distance)
                .end()
                .message();
            let mut naive = lits.to_vec();
            for _ in 0..length {
                naive.push(naive[naive.len() - distance]);
            }
            if !expected.is_empty() {
                assert_eq!(naive, expected);
            }
            assert_eq!(
                inflate(&data).unwrap(),
                naive,
                "length {length} distance {distance}"
            );
        }
    }

    #[test]
    fn matches_may_reach_exactly_to_the_window_and_no_further() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let bits = WindowBits::new(9).unwrap();
        // Within one message.
        for (distance, ok) in [(512, true), (513, false)] {
            let m = Bits::default()
                .stored(&data)
                .fixed_header()
                .copy(10, distance)
                .end()
                .message();
            let result = inflate_with(&mut Inflater::new(bits), &[&m]);
            assert_eq!(result.is_ok(), ok, "distance {distance}");
            if !ok {
                assert_eq!(
                    result,
                    Err(InflateError::DistanceTooFarBack {
                        distance,
                        available: 512
                    })
                );
            }
        }
        // Into the previous message, through the kept window.
        for (distance, ok) in [(512, true), (513, false)] {
            let mut inflater = Inflater::new(bits);
            let first = Bits::default().stored(&data).message();
            assert_eq!(inflate_with(&mut inflater, &[&first]).unwrap(), data);
            let second = Bits::default()
                .fixed_header()
                .copy(10, distance)
                .end()
                .message();
            let result = inflate_with(&mut inflater, &[&second]);
            assert_eq!(result.is_ok(), ok, "distance {distance}");
            if ok {
                assert_eq!(result.unwrap(), &data[2000 - 512..2000 - 502]);
            }
        }
    }

    #[test]
    fn a_match_may_span_the_window_and_the_message() {
        let mut inflater = Inflater::new(WindowBits::MAX);
        let first = Bits::default().stored(b"0123456789").message();
        inflate_with(&mut inflater, &[&first]).unwrap();
        // "ab", then 20 bytes from 5 back: "789ab" repeated.
        let second = Bits::default()
            .fixed_header()
            .lits(b"ab")
            .copy(20, 5)
            .end()
            .message();
        assert_eq!(
            inflate_with(&mut inflater, &[&second]).unwrap(),
            b"ab789ab789ab789ab789ab"
        );
    }

    #[test]
    fn a_match_before_any_output_is_refused() {
        let data = Bits::default().fixed_header().copy(3, 1).end().message();
        assert_eq!(
            inflate(&data),
            Err(InflateError::DistanceTooFarBack {
                distance: 1,
                available: 0
            })
        );
    }

    #[test]
    fn without_context_takeover_each_message_stands_alone() {
        let first = Bits::default().stored(b"Hello").message();
        let second = Bits::default().fixed_header().copy(5, 5).end().message();
        let far = Err(InflateError::DistanceTooFarBack {
            distance: 5,
            available: 0,
        });
        let mut inflater = Inflater::new(WindowBits::MAX);
        inflater.set_context_takeover(false);
        inflate_with(&mut inflater, &[&first]).unwrap();
        assert_eq!(inflate_with(&mut inflater, &[&second]), far);
        assert_eq!(inflater.window.capacity(), 0, "no window allocated");
        let mut inflater = Inflater::new(WindowBits::MAX);
        inflate_with(&mut inflater, &[&first]).unwrap();
        inflater.reset();
        assert_eq!(inflate_with(&mut inflater, &[&second]), far);
    }

    #[test]
    fn refuses_block_type_3_and_bad_stored_lengths() {
        assert_eq!(inflate(&[0x06]), Err(InflateError::InvalidBlockType));
        assert_eq!(
            inflate(&[0x00, 0x05, 0x00, 0xfb, 0xff, 1, 2, 3, 4, 5]),
            Err(InflateError::StoredLengthMismatch {
                len: 5,
                nlen: 0xfffb
            })
        );
    }

    #[test]
    fn refuses_symbols_no_valid_stream_has() {
        for sym in [286, 287] {
            let data = Bits::default()
                .fixed_header()
                .lits(b"ab")
                .sym(sym)
                .message();
            assert_eq!(inflate(&data), Err(InflateError::InvalidSymbol), "{sym}");
        }
        for dist in [30, 31] {
            let data = Bits::default()
                .fixed_header()
                .lits(b"ab")
                .sym(257)
                .code(dist, 5)
                .end()
                .message();
            assert_eq!(inflate(&data), Err(InflateError::InvalidSymbol), "{dist}");
        }
    }

    /// A dynamic block header with these code-length code lengths (in
    /// `CODE_LENGTH_ORDER`) and HLIT, HDIST.
    fn dynamic(hlit: u32, hdist: u32, codelen_lens: &[u32]) -> Bits {
        let mut b = Bits::default();
        b.put(0b100, 3)
            .put(hlit - 257, 5)
            .put(hdist - 1, 5)
            .put(codelen_lens.len() as u32 - 4, 4);
        codelen_lens.iter().for_each(|&l| {
            b.put(l, 3);
        });
        b
    }

    #[test]
    fn refuses_every_kind_of_bad_code_lengths() {
        let bad = |data: &[u8]| match inflate(data) {
            Err(InflateError::BadCodeLengths(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(bad(&dynamic(287, 1, &[0; 4]).message()).contains("286"));
        assert!(bad(&dynamic(257, 31, &[0; 4]).message()).contains("30 distance"));
        assert!(bad(&dynamic(257, 1, &[1; 19]).message()).contains("over-subscribed code-length"));
        assert!(bad(&dynamic(257, 1, &[0, 0, 0, 1]).message()).contains("incomplete code-length"));
        // Code-length code {0: "0", 16: "1"}; a repeat first.
        assert!(bad(&dynamic(257, 1, &[1, 0, 0, 1])
            .code(1, 1)
            .put(0, 2)
            .message())
        .contains("at the start"));
        // {0: "0", 18: "1"}: 2 × 138 zeros for 258 lengths.
        let zeros = |b: &mut Bits, n: u32| {
            b.code(1, 1).put(n - 11, 7);
        };
        let mut b = dynamic(257, 1, &[0, 0, 1, 1]);
        zeros(&mut b, 138);
        zeros(&mut b, 138);
        assert!(bad(&b.message()).contains("past the last"));
        let mut b = dynamic(257, 1, &[0, 0, 1, 1]);
        zeros(&mut b, 138);
        zeros(&mut b, 120);
        assert!(bad(&b.message()).contains("end-of-block"));
        // {1: "0", 17: "10", 18: "11"} (order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1).
        let mut lens = [0; 18];
        lens[1] = 2;
        lens[2] = 2;
        lens[17] = 1;
        let mut b = dynamic(257, 1, &lens);
        b.code(0, 1).code(0, 1).code(0, 1); // three codes of one bit
        b.code(3, 2).put(127, 7).code(3, 2).put(104, 7); // 253 zeros
        b.code(0, 1).code(0, 1); // end of block and the one distance
        assert!(bad(&b.message()).contains("over-subscribed literal/length"));
    }

    #[test]
    fn stops_at_the_limit_with_what_fits_before_allocating_past_it() {
        let data = Bits::default()
            .fixed_header()
            .lits(b"x")
            .copy(258, 1)
            .copy(258, 1)
            .end()
            .message();
        let mut out = Vec::new();
        let mut inflater = Inflater::new(WindowBits::MAX);
        inflater.inflate(&data, &mut out, 517).unwrap();
        inflater.finish_message(&mut out, 517).unwrap();
        assert_eq!(out.len(), 517);
        for limit in [0, 1, 258, 516] {
            let mut out = Vec::new();
            let mut inflater = Inflater::new(WindowBits::MAX);
            let result = inflater.inflate(&data, &mut out, limit);
            assert_eq!(result, Err(InflateError::OutputLimit { limit }));
            assert!(result.unwrap_err().is_limit());
            assert!(out.capacity() <= limit.max(1), "limit {limit}");
            // What fits comes out first, as it would in smaller pieces.
            assert_eq!(out, vec![b'x'; limit], "limit {limit}");
            // The error sticks.
            assert!(inflater.inflate(&[], &mut out, LIMIT).is_err());
            inflater.reset();
            assert_eq!(inflate_with(&mut inflater, &[&data]).unwrap().len(), 517);
        }
    }

    #[test]
    fn a_message_cut_inside_a_block_is_truncated() {
        let whole = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        for cut in 1..6 {
            assert_eq!(
                inflate(&whole[..cut]),
                Err(InflateError::Truncated),
                "{cut}"
            );
        }
        // An empty payload is not a valid compressed message either.
        assert_eq!(inflate(&[]), Err(InflateError::Truncated));
    }

    #[test]
    fn losing_the_output_between_pieces_is_reported() {
        let mut inflater = Inflater::new(WindowBits::MAX);
        let mut out = Vec::new();
        inflater.inflate(&DYNAMIC[..100], &mut out, LIMIT).unwrap();
        assert!(!out.is_empty());
        out.clear();
        assert_eq!(
            inflater.inflate(&DYNAMIC[100..], &mut out, LIMIT),
            Err(InflateError::OutputMismatch)
        );
    }

    /// Every vector inflates the same split at every byte, and byte by byte.
    #[test]
    fn inflates_the_same_whatever_the_pieces() {
        let long = Bits::default()
            .stored(&[7; 300])
            .fixed_header()
            .lits(b"abcdefgh")
            .copy(100, 3)
            .copy(258, 300)
            .end()
            .stored(b"more")
            .message();
        let vectors: [&[u8]; 4] = [
            &DYNAMIC,
            &long,
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
        ];
        for data in vectors {
            let expected = inflate(data).unwrap();
            for split in 0..=data.len() {
                let (a, b) = data.split_at(split);
                let mut inflater = Inflater::new(WindowBits::MAX);
                assert_eq!(inflate_with(&mut inflater, &[a, b]).unwrap(), expected);
            }
            let bytes: Vec<&[u8]> = data.chunks(1).collect();
            assert_eq!(
                inflate_with(&mut Inflater::new(WindowBits::MAX), &bytes).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let e = InflateError::DistanceTooFarBack {
            distance: 600,
            available: 512,
        };
        assert_eq!(
            e.to_string(),
            "match distance 600 reaches back further than the 512 bytes available"
        );
        assert_eq!(
            InflateError::OutputLimit { limit: 10 }.to_string(),
            "inflated message exceeds 10 bytes"
        );
    }

    #[test]
    fn an_output_buffer_that_lost_a_finished_messages_bytes_is_caught_and_the_failure_sticks() {
        // One final stored block: the message is done before finish_message.
        let mut data = vec![0x01, 0x05, 0x00, 0xfa, 0xff];
        data.extend_from_slice(b"hello");
        let mut inflater = Inflater::new(WindowBits::MAX);
        let mut out = Vec::new();
        inflater.inflate(&data, &mut out, LIMIT).unwrap();
        assert_eq!(out, b"hello");
        out.clear(); // a caller bug: the history the window keeps is gone
        let e = inflater.finish_message(&mut out, LIMIT).unwrap_err();
        assert_eq!(e, InflateError::OutputMismatch);
        assert_eq!(
            e.to_string(),
            "output buffer lost bytes of the message being inflated"
        );
        // Every later call fails the same way, until a reset.
        assert_eq!(
            inflater.finish_message(&mut out, LIMIT),
            Err(InflateError::OutputMismatch)
        );
        assert_eq!(
            inflater.inflate(&data, &mut out, LIMIT),
            Err(InflateError::OutputMismatch)
        );
        inflater.reset();
        inflater.inflate(&data, &mut out, LIMIT).unwrap();
        inflater.finish_message(&mut out, LIMIT).unwrap();
        assert_eq!(out, b"hello");
    }
}
