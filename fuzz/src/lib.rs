//! Shared code for the `stdws` fuzz targets.
//!
//! The structure-aware targets read their input with [`Cursor`], a tiny
//! hand-written byte format, rather than `#[derive(Arbitrary)]`: the formats
//! are documented next to each decoder below, so seed files can be plain wire
//! bytes (the RFC 6455 examples, the handshake sample) written by
//! `fuzz/make_seeds.py`, and seeds cannot rot when `arbitrary` changes how it
//! lays out its input. Every decoder accepts every input: a short input just
//! reads as zeros.

pub mod harness;
pub mod pair;

use harness::{to_text, truncate_str, Control, Item, LenEncoding, Masking};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use stdws::frame::OpCode;
use stdws::proto::{MaskKeys, Outbound, Payload};
use stdws::Role;
use stdws::{CloseFrame, Limits};

/// The longest payload made by repeating a pattern: over the default read
/// buffer (4096), so payloads are also read straight into their message, yet
/// small enough to keep a few thousand executions a second.
pub const MAX_PATTERN_PAYLOAD: usize = 10_000;

/// Structured inputs stop adding frames or messages once the stream carries
/// this many payload bytes: a few hundred input bytes of repeated patterns
/// could otherwise make megabytes, read a byte at a time, and slow every
/// target down to a crawl for no new coverage.
pub const MAX_STREAM_PAYLOAD: usize = 64 * 1024;

/// Reads fixed-size fields from the front of the fuzz input.
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { data }
    }

    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// The next byte, 0 past the end.
    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    /// Two bytes, little-endian, zero-padded.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    /// Eight bytes, little-endian, zero-padded.
    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let b = self.bytes(N);
        out[..b.len()].copy_from_slice(b);
        out
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// A chunk list: a count byte (taken mod 16), then one byte per chunk size;
/// size 0 means "as much as fits" (`usize::MAX`). `[0x00]` (or an empty
/// input) is the empty list: every read takes as much as fits.
pub fn chunk_list(c: &mut Cursor) -> Vec<usize> {
    let n = c.u8() % 16;
    (0..n)
        .map(|_| match c.u8() {
            0 => usize::MAX,
            s => usize::from(s),
        })
        .collect()
}

/// The split points of a `len`-byte input: a count byte (mod 16), then a
/// `u16` per split, taken mod `len + 1`; sorted, repeats allowed.
pub fn split_list(c: &mut Cursor, len: usize) -> Vec<usize> {
    let n = c.u8() % 16;
    let mut splits: Vec<usize> = (0..n).map(|_| usize::from(c.u16()) % (len + 1)).collect();
    splits.sort_unstable();
    splits
}

/// Input of the `protocol` target.
#[derive(Clone, Debug)]
pub struct ProtocolInput {
    /// The receiver's role.
    pub role: Role,
    /// Small limits, so every limit is reachable.
    pub limits: Limits,
    /// Read sizes.
    pub chunks: Vec<usize>,
    /// The bytes from the peer.
    pub stream: Vec<u8>,
}

/// Decodes a `protocol` input:
///
/// ```text
/// flags u8           bit 0: receiver is a client (else a server)
///                    bit 1: structured stream (else the rest is raw wire bytes)
/// max_message_size   u16 LE
/// max_frame_size     u16 LE
/// max_fragments      u8
/// read_buffer_size   u16 LE
/// chunk list         see chunk_list
/// stream             raw bytes, or items until the input ends (or the stream
///                    reaches MAX_STREAM_PAYLOAD bytes):
///   tag u8: bit 7 set: noise, (tag & 0x7f) raw bytes follow
///           bit 6 set (bit 7 clear): a frame from stdws's own sender
///             (`Outbound::encode`, masked as the receiver requires, state
///             kept across the stream: fragments, closed after a close):
///             b0 u8 (FIN bit 7, opcode bits 0-3, RSV ignored), spec u8 (only
///             bit 4, the payload form, as below), a 4-byte key when the
///             receiver is a server, the payload; an invalid opcode, or a
///             frame the sender refuses (a continuation with nothing to
///             continue, a control frame over 125 bytes, anything after its
///             close), is written by hand instead, minimal and masked as
///             required
///           else a frame: b0 u8 (FIN, RSV, opcode verbatim), spec u8:
///             bits 0-1 masking: 0 as the receiver requires, 1 masked,
///                      2 unmasked, 3 mask bit and key but payload not XORed
///             bits 2-3 length: 0 minimal, 1 16-bit form, 2 64-bit form,
///                      3 claim the u16 that follows whatever the payload
///             bit 4    payload is a u16 length (mod 10,000) + a pattern
///                      (u8 length mod 8, +1) repeated, else u8 length + bytes
///             then a 4-byte key when the frame is masked
/// ```
pub fn protocol_input(data: &[u8]) -> ProtocolInput {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let role = if flags & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let limits = Limits {
        max_message_size: usize::from(c.u16()),
        max_frame_size: usize::from(c.u16()),
        max_fragments: usize::from(c.u8()),
        read_buffer_size: usize::from(c.u16()),
        ..Limits::default()
    };
    let chunks = chunk_list(&mut c);
    let stream = if flags & 2 == 0 {
        c.rest().to_vec()
    } else {
        let mut stream = Vec::new();
        let mut sender = EncoderPeer::new(role);
        while !c.is_empty() && stream.len() < MAX_STREAM_PAYLOAD {
            let tag = c.u8();
            if tag & 0x80 != 0 {
                stream.extend_from_slice(c.bytes(usize::from(tag & 0x7f)));
                continue;
            }
            let b0 = c.u8();
            let spec = c.u8();
            if tag & 0x40 != 0 {
                let key: [u8; 4] = if role == Role::Server {
                    c.array()
                } else {
                    [0; 4]
                };
                let payload = fuzzed_payload(&mut c, spec);
                sender.frame(&mut stream, b0, key, &payload);
                continue;
            }
            let masked = match spec & 3 {
                0 => role == Role::Server,
                1 | 3 => true,
                _ => false,
            };
            let key: [u8; 4] = if masked { c.array() } else { [0; 4] };
            let masking = match (masked, spec & 3) {
                (false, _) => Masking::None,
                (true, 3) => Masking::KeyOnly(key),
                (true, _) => Masking::Masked(key),
            };
            let len = match (spec >> 2) & 3 {
                0 => LenEncoding::Minimal,
                1 => LenEncoding::Force16,
                2 => LenEncoding::Force64,
                _ => LenEncoding::Claim(u64::from(c.u16())),
            };
            let payload = fuzzed_payload(&mut c, spec);
            stream.extend(harness::encode_frame(b0, masking, len, &payload));
        }
        stream
    };
    ProtocolInput {
        role,
        limits,
        chunks,
        stream,
    }
}

/// A `protocol` frame's payload: with bit 4 of `spec`, a u16 length (mod
/// 10,000) and a pattern (u8 length mod 8, +1) repeated; else a u8 length
/// and that many bytes.
fn fuzzed_payload(c: &mut Cursor, spec: u8) -> Vec<u8> {
    if spec & 0x10 != 0 {
        let n = usize::from(c.u16()) % MAX_PATTERN_PAYLOAD;
        let pattern_len = usize::from(c.u8() % 8) + 1;
        let pattern = c.bytes(pattern_len);
        if pattern.is_empty() {
            vec![0; n]
        } else {
            pattern.iter().copied().cycle().take(n).collect()
        }
    } else {
        let n = usize::from(c.u8());
        c.bytes(n).to_vec()
    }
}

/// The key the next frame of an [`EncoderPeer`] is masked with, set from
/// the input before each frame (`MaskKeys` must be `'static` and `Send`).
struct NextKey(Arc<AtomicU32>);

impl MaskKeys for NextKey {
    fn mask_key(&mut self) -> [u8; 4] {
        self.0.load(Ordering::Relaxed).to_le_bytes()
    }
}

/// The peer of a `protocol` receiver, sending through `stdws`'s own encoder.
struct EncoderPeer {
    outbound: Outbound,
    key: Arc<AtomicU32>,
    role: Role,
}

impl EncoderPeer {
    /// The sender that talks to a receiver in `role`.
    fn new(role: Role) -> Self {
        let key = Arc::new(AtomicU32::new(0));
        let outbound = match role {
            Role::Server => Outbound::client(Box::new(NextKey(key.clone()))),
            Role::Client => Outbound::server(),
        };
        EncoderPeer {
            outbound,
            key,
            role,
        }
    }

    /// Appends a frame: `Outbound::encode`'s if it takes it, else by hand.
    fn frame(&mut self, stream: &mut Vec<u8>, b0: u8, key: [u8; 4], payload: &[u8]) {
        self.key.store(u32::from_le_bytes(key), Ordering::Relaxed);
        let fin = b0 & 0x80 != 0;
        let encoded = OpCode::from_bits(b0 & 0x0f).ok_or(()).and_then(|op| {
            self.outbound
                .encode(op, Payload::Borrowed(payload), fin)
                .map_err(drop)
        });
        match encoded {
            Ok(frame) => {
                stream.extend_from_slice(frame.head());
                stream.extend_from_slice(frame.body());
            }
            Err(()) => {
                let masking = match self.role {
                    Role::Server => Masking::Masked(key),
                    Role::Client => Masking::None,
                };
                let b0 = b0 & 0x8f;
                stream.extend(harness::encode_frame(
                    b0,
                    masking,
                    LenEncoding::Minimal,
                    payload,
                ));
            }
        }
    }
}

/// Input of the `roundtrip` target.
#[derive(Clone, Debug)]
pub struct RoundtripInput {
    /// The receiver's role (the sender masks when it is a server).
    pub receiver: Role,
    /// Default limits, or limits exactly as tight as the messages allow.
    pub limits: Limits,
    /// Seed of the masking keys.
    pub key_seed: u64,
    /// Read sizes.
    pub chunks: Vec<usize>,
    /// What the peer sends.
    pub items: Vec<Item>,
}

/// A ping or a pong from the input: a length byte (mod 126) and that many bytes.
fn control(c: &mut Cursor, ping: bool) -> Control {
    let n = usize::from(c.u8() % 126);
    let payload = c.bytes(n).to_vec();
    if ping {
        Control::Ping(payload)
    } else {
        Control::Pong(payload)
    }
}

/// Decodes a `roundtrip` input:
///
/// ```text
/// flags u8           bit 0: receiver is a client (frames unmasked), else a
///                    server (frames masked); bit 1: tight limits (exactly
///                    the largest message, frame and fragment count), else
///                    the defaults
/// read_buffer_size   u8 (0: the default 4096)
/// key seed           u64 LE (masking keys come from a SplitMix64 stream)
/// chunk list         see chunk_list
/// items until the input ends (or MAX_STREAM_PAYLOAD bytes of messages), tag
/// u8, by tag % 8:
///   0-4  a message: bit 3 of tag: text (bytes turned into UTF-8 lossily);
///        bit 7 of tag: u16 length (mod 10,000) + pattern (u8 length mod 8,
///        +1) repeated, else u8 length + bytes; then a split list (see split_list) and per
///        split a control byte: 0 none, else ping (odd) or pong (even)
///        between those fragments, as for tags 5 and 6
///   5, 6 a ping, a pong: u8 length (mod 126), bytes
///   7    a close: u16 LE selects a sendable code, u8 length (mod 124) +
///        bytes for the reason (lossy UTF-8, cut to 123 bytes); 0xffff: no
///        code; the stream ends there
/// ```
pub fn roundtrip_input(data: &[u8]) -> RoundtripInput {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let receiver = if flags & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let read_buffer_size = match c.u8() {
        0 => Limits::default().read_buffer_size,
        n => usize::from(n),
    };
    let key_seed = c.u64();
    let chunks = chunk_list(&mut c);
    let mut items = Vec::new();
    let mut total = 0;
    while !c.is_empty() && total < MAX_STREAM_PAYLOAD {
        let tag = c.u8();
        match tag % 8 {
            0..=4 => {
                let raw = if tag & 0x80 != 0 {
                    let n = usize::from(c.u16()) % MAX_PATTERN_PAYLOAD;
                    let pattern_len = usize::from(c.u8() % 8) + 1;
                    let pattern = c.bytes(pattern_len);
                    if pattern.is_empty() {
                        vec![b'x'; n]
                    } else {
                        pattern.iter().copied().cycle().take(n).collect()
                    }
                } else {
                    let n = usize::from(c.u8());
                    c.bytes(n).to_vec()
                };
                let text = tag & 8 != 0;
                let payload = if text { to_text(&raw) } else { raw };
                total += payload.len();
                let splits = split_list(&mut c, payload.len());
                let mut between = Vec::new();
                for i in 0..splits.len() {
                    let ctl = c.u8();
                    if ctl != 0 {
                        between.push((i, control(&mut c, ctl % 2 == 1)));
                    }
                }
                items.push(Item::Message {
                    text,
                    payload,
                    splits,
                    between,
                });
            }
            5 | 6 => items.push(Item::Control(control(&mut c, tag % 8 == 5))),
            _ => {
                let sel = c.u16();
                let n = usize::from(c.u8() % 124);
                let reason = String::from_utf8_lossy(c.bytes(n)).into_owned();
                items.push(Item::Close((sel != 0xffff).then(|| CloseFrame {
                    code: harness::sendable_code(sel),
                    reason: truncate_str(&reason, 123),
                })));
                break;
            }
        }
    }
    let limits = if flags & 2 != 0 {
        harness::tight_limits(&items, read_buffer_size)
    } else {
        Limits {
            read_buffer_size,
            ..Limits::default()
        }
    };
    RoundtripInput {
        receiver,
        limits,
        key_seed,
        chunks,
        items,
    }
}

/// SplitMix64: masking keys for the roundtrip target from a seed in the input.
pub fn key_stream(seed: u64) -> impl FnMut() -> [u8; 4] {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z as u32).to_le_bytes()
    }
}
