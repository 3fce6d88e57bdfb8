//! The protocol oracle shared by the `protocol` and `roundtrip` fuzz targets
//! and by `tests/stress_protocol.rs` (which includes this file with `#[path]`,
//! so it must use only `std` and `stdws`).
//!
//! Three pieces:
//!
//! * [`reference_decode`]: a deliberately naive receiver written straight from
//!   RFC 6455 and the documented rules of `stdws::proto`. It sees the whole
//!   byte stream at once and decodes it front to back, with no buffers, no
//!   state machine and no incremental UTF-8 validation. It is the oracle the
//!   real, incremental receiver (a `Connection`) is compared with.
//! * [`drive`]: feeds a stream to a real receiver through `read_buf` and
//!   `commit` in the given chunk sizes, checking its invariants after every
//!   call (see [`drive`] for the list); [`drive_with`] hands the chunks over
//!   in place (`Connection::input`) instead, or both ways in turn.
//! * Encoders: [`encode_frame`] (independent of `stdws`, can lie about lengths
//!   and masks) for the protocol target, and [`encode_items`] (through
//!   `stdws`'s own sender, [`Outbound`], exactly as a `Connection` sends) for
//!   the roundtrip property.
//!
//! Chunk lists: a chunk size of `usize::MAX` means "as much as the read buffer
//! takes"; an empty list means that for every read. Sizes are used in turn and
//! the list starts over when it runs out.

use stdws::frame::{OpCode, MAX_HEADER_LEN};
use stdws::mask::apply_mask_reference;
use stdws::proto::__internal::{inbound_memory, READ_BUFFER_MAX};
use stdws::proto::{
    Connection, ControlPayload, Event, MaskKeys, Outbound, Payload, ProtocolError, Role,
};
use stdws::{CloseCode, CloseFrame, Limits, Message};

/// What a receiver makes of a byte stream: its events in order, then the
/// error that failed the connection, if any. A stream that ends mid-frame
/// (or mid-message) without an error is simply `error: None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Every event, in order; an `Event::Close` can only be last.
    pub events: Vec<Event>,
    /// The error that ended the connection.
    pub error: Option<ProtocolError>,
}

/// The most a receiver's read buffer may hold, as `stdws::proto`
/// documents it: the configured `read_buffer_size` (never less than the
/// longest frame header, 14 bytes, so a header always fits), grown under
/// pipelined reads up to `READ_BUFFER_MAX` (64 KiB) if that is larger.
pub fn read_buffer_bound(limits: &Limits) -> usize {
    limits
        .read_buffer_size
        .max(MAX_HEADER_LEN)
        .max(READ_BUFFER_MAX)
}

/// The memory a receiver may hold: its message memory is checked against
/// `max_message_size` exactly (a message buffer must never be over-allocated
/// past the limit), and all of its receiving half's memory against that plus
/// [`read_buffer_bound`]. Nothing else is allowed.
pub fn memory_bound(limits: &Limits) -> usize {
    limits.max_message_size + read_buffer_bound(limits)
}

/// Asserts both memory bounds.
/// What an inflater may hold besides: a 32 KiB window, decoding tables and
/// slack, as the `deflate` module documents.
pub const INFLATE_MEMORY: usize = 64 << 10;

fn check_memory(conn: &Connection, limits: &Limits, extra: usize) {
    let (message, held) = inbound_memory(conn);
    assert!(
        message <= limits.max_message_size,
        "message_memory {message} > max_message_size {}",
        limits.max_message_size
    );
    let bound = memory_bound(limits) + extra;
    assert!(held <= bound, "memory_held {held} > bound {bound}");
}

// ---------------------------------------------------------------------------
// The reference receiver.
// ---------------------------------------------------------------------------

/// Close codes a peer may send (RFC 6455 section 7.4.1, and 3000-4999 for
/// libraries and applications); written out again here rather than calling
/// `CloseCode::is_sendable`, so the oracle does not share the code it checks.
fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// Whether `bytes` contains a byte sequence that no continuation could make
/// valid UTF-8 (a cut-off character at the end is fine).
fn definitely_invalid_utf8(bytes: &[u8]) -> bool {
    matches!(std::str::from_utf8(bytes), Err(e) if e.error_len().is_some())
}

struct RefMessage {
    text: bool,
    data: Vec<u8>,
    frames: usize,
}

/// Decodes `stream` the slow, obvious way; see the module docs.
///
/// Rules, in the order they are checked for each frame (the order the real
/// receiver reports them in, which tests rely on):
/// 1. header bytes as they arrive: reserved opcode, control frame without FIN
///    (both from byte 0), control frame with a length over 125 (byte 1,
///    reported as 126 for the 16- and 64-bit forms), 64-bit length with the
///    top bit set (once the whole header is there);
/// 2. RSV bits, then masking direction (a server needs masked frames, a
///    client unmasked ones);
/// 3. data frames only: frame size, message size (including this frame),
///    continuation rules, fragment count (a message's first frame is never
///    counted against it);
/// 4. payload: text is checked as it arrives (a byte that cannot continue
///    valid UTF-8 fails at once, even in an unfinished frame), an unfinished
///    character at the end of a complete message fails; close payloads must
///    be empty or a sendable code plus a UTF-8 reason.
///
/// Nothing after a close frame or an error is looked at.
pub fn reference_decode(role: Role, limits: &Limits, stream: &[u8]) -> Outcome {
    let mut events = Vec::new();
    let error = reference_decode_into(role, limits, stream, &mut events).err();
    Outcome { events, error }
}

fn reference_decode_into(
    role: Role,
    limits: &Limits,
    mut rest: &[u8],
    events: &mut Vec<Event>,
) -> Result<(), ProtocolError> {
    use stdws::frame::FrameError as F;
    let mut message: Option<RefMessage> = None;
    loop {
        // 1. The header.
        let Some(&b0) = rest.first() else {
            return Ok(());
        };
        let bits = b0 & 0x0f;
        let opcode = match bits {
            0 => OpCode::Continuation,
            1 => OpCode::Text,
            2 => OpCode::Binary,
            8 => OpCode::Close,
            9 => OpCode::Ping,
            10 => OpCode::Pong,
            _ => return Err(F::ReservedOpcode(bits).into()),
        };
        let fin = b0 & 0x80 != 0;
        let control = bits >= 8;
        if control && !fin {
            return Err(F::FragmentedControlFrame.into());
        }
        let Some(&b1) = rest.get(1) else {
            return Ok(());
        };
        let len7 = b1 & 0x7f;
        if control && len7 > 125 {
            return Err(F::ControlFrameTooLong(126).into());
        }
        let masked = b1 & 0x80 != 0;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + ext + if masked { 4 } else { 0 };
        if rest.len() < header_len {
            return Ok(());
        }
        let len = match ext {
            0 => u64::from(len7),
            _ => rest[2..2 + ext]
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        };
        if len >= 1 << 63 {
            return Err(F::LengthOverflow.into());
        }
        let key: Option<[u8; 4]> = masked.then(|| {
            let k = &rest[2 + ext..header_len];
            [k[0], k[1], k[2], k[3]]
        });
        // 2. RSV bits and masking direction.
        let rsv = (b0 >> 4) & 7;
        if rsv != 0 {
            return Err(ProtocolError::ReservedBits(rsv));
        }
        match (role, masked) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        rest = &rest[header_len..];
        let available = rest.len().min(usize::try_from(len).unwrap_or(usize::MAX));
        let mut payload = rest[..available].to_vec();
        if let Some(key) = key {
            apply_mask_reference(&mut payload, key, 0);
        }

        if control {
            // A control frame is delivered only once it is complete.
            if (available as u64) < len {
                return Ok(());
            }
            rest = &rest[available..];
            let payload = ControlPayload::new(&payload).expect("at most 125 bytes");
            match opcode {
                OpCode::Ping => events.push(Event::Ping(payload)),
                OpCode::Pong => events.push(Event::Pong(payload)),
                _ => {
                    let close = match &payload[..] {
                        [] => None,
                        [_] => return Err(ProtocolError::InvalidClosePayload),
                        [hi, lo, reason @ ..] => {
                            let code = u16::from_be_bytes([*hi, *lo]);
                            if !sendable(code) {
                                return Err(ProtocolError::InvalidCloseCode(code));
                            }
                            let reason = String::from_utf8(reason.to_vec())
                                .map_err(|_| ProtocolError::InvalidCloseReason)?;
                            Some(CloseFrame {
                                code: CloseCode(code),
                                reason,
                            })
                        }
                    };
                    events.push(Event::Close(close));
                    return Ok(());
                }
            }
            continue;
        }

        // 3. Data frame rules.
        if len > limits.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooBig {
                size: len,
                limit: limits.max_frame_size,
            });
        }
        let size = message.as_ref().map_or(0, |m| m.data.len() as u64) + len;
        if size > limits.max_message_size as u64 {
            return Err(ProtocolError::MessageTooBig {
                size,
                limit: limits.max_message_size,
            });
        }
        let mut m = match (message.take(), opcode) {
            (None, OpCode::Continuation) => return Err(ProtocolError::UnexpectedContinuation),
            (Some(_), OpCode::Text | OpCode::Binary) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            (Some(mut m), _) => {
                m.frames += 1;
                if m.frames > limits.max_fragments {
                    return Err(ProtocolError::TooManyFragments {
                        limit: limits.max_fragments,
                    });
                }
                m
            }
            (None, opcode) => RefMessage {
                text: opcode == OpCode::Text,
                data: Vec::new(),
                frames: 1,
            },
        };
        // 4. The payload, as far as it arrived.
        m.data.extend_from_slice(&payload);
        if m.text && definitely_invalid_utf8(&m.data) {
            return Err(ProtocolError::InvalidUtf8);
        }
        if (available as u64) < len {
            return Ok(()); // the stream ends inside this frame
        }
        rest = &rest[available..];
        if fin {
            let msg = if m.text {
                Message::Text(String::from_utf8(m.data).map_err(|_| ProtocolError::InvalidUtf8)?)
            } else {
                Message::Binary(m.data)
            };
            events.push(Event::Message(msg));
        } else {
            message = Some(m);
        }
    }
}

// ---------------------------------------------------------------------------
// Driving the real receiver.
// ---------------------------------------------------------------------------

/// After a close or an error: nothing more, ever. Checked several times, with
/// bytes offered in between (read, copied and lent), because "forever" is the
/// property.
fn assert_closed_forever(conn: &mut Connection) {
    for _ in 0..3 {
        assert!(!conn.wants_read(), "reading after a close or an error");
        assert_eq!(conn.next_event(), Ok(None), "event after close/error");
        assert!(conn.read_buf().is_empty(), "read_buf not empty when closed");
        conn.commit(0);
        let mut frame = [0x81, 0x80, 0, 0, 0, 0];
        assert_eq!(conn.receive(&frame), 0, "received when closed");
        assert_eq!(conn.input(&mut frame).poll(), Ok(None), "input when closed");
    }
}

/// Checks one event on its own: what every event must satisfy whatever the input.
fn check_event(event: &Event) {
    match event {
        Event::Message(Message::Text(s)) => {
            // `String` promises this; the check documents the property and
            // would catch a `from_utf8_unchecked` sneaking in.
            assert!(std::str::from_utf8(s.as_bytes()).is_ok());
        }
        Event::Message(Message::Binary(_)) => {}
        Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
        Event::Close(Some(frame)) => {
            assert!(sendable(frame.code.0), "close code {}", frame.code);
            assert!(frame.reason.len() <= 123, "close reason too long");
        }
        Event::Close(None) => {}
    }
}

/// Checks an error on its own: its close code, and its close frame.
fn check_error(error: &ProtocolError) {
    let code = error.close_code().0;
    assert!(
        matches!(code, 1002 | 1007 | 1009),
        "{error:?} closes with {code}"
    );
    let frame = error.close_frame();
    assert_eq!(frame.code.0, code);
    assert!(frame.reason.len() <= 123);
}

/// How a driver hands the receiver its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// `read_buf` and `commit`: read straight into the connection's buffers.
    ReadBuf,
    /// `input`: each chunk in a buffer of the caller's, parsed in place.
    InPlace,
    /// The two in turn, chunk by chunk, starting in place.
    Mixed,
}

/// Masking keys for a client receiver's own frames (pongs, close replies).
struct FixedKeys;

impl MaskKeys for FixedKeys {
    fn mask_key(&mut self) -> [u8; 4] {
        [0x11, 0x22, 0x33, 0x44]
    }
}

/// A receiver for `role`: a [`Connection`], as users have it.
pub fn receiver(role: Role, limits: Limits) -> Connection {
    match role {
        Role::Server => Connection::server(limits),
        Role::Client => Connection::client(limits, Box::new(FixedKeys)),
    }
}

/// What the connection queued (pongs, close frames), taken out as a driver
/// writes it.
fn take_output(conn: &mut Connection, replies: &mut Vec<u8>) {
    while conn.pending_output() > 0 {
        let mut slices = [&[][..]; 4];
        let n = conn.output(&mut slices);
        let before = replies.len();
        for slice in &slices[..n] {
            replies.extend_from_slice(slice);
        }
        assert!(
            replies.len() > before,
            "output gave nothing with bytes pending"
        );
        conn.advance_output(replies.len() - before);
    }
}

/// How taking events ended.
enum After {
    /// More bytes are needed.
    More,
    /// The peer's close arrived, or the connection failed.
    End(Option<ProtocolError>),
}

/// Takes events from `next` until it wants more bytes or the connection
/// ends, checking each.
fn take_events(
    events: &mut Vec<Event>,
    mut next: impl FnMut() -> Result<Option<Event>, ProtocolError>,
) -> After {
    loop {
        match next() {
            Ok(Some(event)) => {
                check_event(&event);
                let closing = matches!(event, Event::Close(_));
                events.push(event);
                if closing {
                    return After::End(None);
                }
            }
            Ok(None) => return After::More,
            Err(error) => {
                check_error(&error);
                return After::End(Some(error));
            }
        }
    }
}

/// What a real receiver made of a stream: the [`Outcome`], and the bytes
/// it queued in reply (pongs, the close echo or the failure's close frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Driven {
    /// The events and the error.
    pub outcome: Outcome,
    /// Every byte it queued to send.
    pub replies: Vec<u8>,
}

/// Feeds `stream` to a fresh receiver through `read_buf`/`commit`, reading
/// at most `chunks[i]` bytes each time, and takes every event.
///
/// Invariants asserted on the way:
/// * no panic (implicitly);
/// * `message_memory` never exceeds `max_message_size` and the receiving
///   half's memory never exceeds [`memory_bound`], checked after every call;
/// * once `next_event` returns `Ok(None)` on an open connection, `read_buf`
///   is not empty (a reader can always make progress: no deadlock);
/// * every event passes `check_event` (text is UTF-8, control payloads fit);
/// * every error's close code is 1002, 1007 or 1009, and its close frame
///   carries that code and a reason that fits a control frame;
/// * after an `Event::Close` or an error the connection reads nothing more:
///   no event, an empty `read_buf`, `receive` and `input` take nothing.
pub fn drive(role: Role, limits: Limits, stream: &[u8], chunks: &[usize]) -> Outcome {
    drive_protocol(receiver(role, limits), limits, 0, stream, chunks)
}

/// [`drive`] for a receiver prepared by the caller, such as one with
/// permessage-deflate enabled; `extra` is the memory it may hold beyond
/// [`memory_bound`] ([`INFLATE_MEMORY`] for an inflater).
pub fn drive_protocol(
    conn: Connection,
    limits: Limits,
    extra: usize,
    stream: &[u8],
    chunks: &[usize],
) -> Outcome {
    drive_with(conn, limits, extra, &[], stream, chunks, Feed::ReadBuf).outcome
}

/// [`drive_protocol`] with the bytes handed over as `feed` says, after
/// `received` (bytes that came with the handshake) handed over in place.
pub fn drive_with(
    mut conn: Connection,
    limits: Limits,
    extra: usize,
    received: &[u8],
    stream: &[u8],
    chunks: &[usize],
    feed: Feed,
) -> Driven {
    let mut events = Vec::new();
    let mut replies = Vec::new();
    let mut pos = 0;
    let mut next_chunk = chunks.iter().copied().cycle();
    let mut in_place = feed != Feed::ReadBuf;
    let mut lent = Some(received.to_vec()).filter(|r| !r.is_empty());
    loop {
        let after = match lent.take() {
            // Bytes in a buffer of ours, lent to the connection.
            Some(mut piece) => {
                let mut input = conn.input(&mut piece);
                let after = take_events(&mut events, || input.next_event());
                drop(input);
                check_memory(&conn, &limits, extra);
                after
            }
            // Take every event the bytes read so far make.
            None => take_events(&mut events, || {
                let event = conn.next_event();
                check_memory(&conn, &limits, extra);
                event
            }),
        };
        take_output(&mut conn, &mut replies);
        if let After::End(error) = after {
            assert_closed_forever(&mut conn);
            take_output(&mut conn, &mut replies);
            check_memory(&conn, &limits, extra);
            return Driven {
                outcome: Outcome { events, error },
                replies,
            };
        }
        assert!(conn.wants_read(), "closed without a close event or error");
        if pos == stream.len() {
            return Driven {
                outcome: Outcome {
                    events,
                    error: None,
                },
                replies,
            };
        }
        let want = next_chunk.next().unwrap_or(usize::MAX).max(1);
        if in_place {
            // The next chunk, lent in place on the next turn.
            let n = want.min(stream.len() - pos);
            lent = Some(stream[pos..pos + n].to_vec());
            pos += n;
        } else {
            // Read the next chunk.
            let buf = conn.read_buf();
            assert!(!buf.is_empty(), "no room to read after draining events");
            let n = buf.len().min(want).min(stream.len() - pos);
            buf[..n].copy_from_slice(&stream[pos..pos + n]);
            conn.commit(n);
            pos += n;
            check_memory(&conn, &limits, extra);
        }
        if feed == Feed::Mixed {
            in_place = !in_place;
        }
    }
}

/// The full protocol property: the real receiver, fed `stream` in `chunks`
/// and also all at once, keeps its invariants ([`drive`]) and agrees exactly
/// with [`reference_decode`]: same events, same error. So the outcome cannot
/// depend on how the bytes were split into reads. Handed the same chunks in
/// place (`Connection::input`), or in place and read in turn, it gives the
/// same events, error and replies as through `read_buf`/`commit`.
pub fn check_protocol(role: Role, limits: Limits, stream: &[u8], chunks: &[usize]) -> Outcome {
    let expected = reference_decode(role, &limits, stream);
    let driven = |feed| drive_with(receiver(role, limits), limits, 0, &[], stream, chunks, feed);
    let read = driven(Feed::ReadBuf);
    assert_eq!(
        read.outcome, expected,
        "chunked decode differs from the reference"
    );
    for feed in [Feed::InPlace, Feed::Mixed] {
        assert_eq!(driven(feed), read, "{feed:?} differs from read_buf/commit");
    }
    if !chunks.is_empty() {
        let whole = drive(role, limits, stream, &[]);
        assert_eq!(whole, expected, "whole decode differs from the reference");
    }
    expected
}

// ---------------------------------------------------------------------------
// Encoders.
// ---------------------------------------------------------------------------

/// How a test frame writes its payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenEncoding {
    /// The shortest form, as RFC 6455 requires of senders.
    Minimal,
    /// Always the 16-bit form (126), truncating lengths over 65535.
    Force16,
    /// Always the 64-bit form (127).
    Force64,
    /// The shortest form for this length, whatever the payload really is.
    Claim(u64),
}

/// How a test frame is masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masking {
    /// No mask bit, payload as is.
    None,
    /// Mask bit and key, payload XORed with the key: a correct masked frame.
    Masked([u8; 4]),
    /// Mask bit and key, but the payload left unmasked: garbage after unmasking.
    KeyOnly([u8; 4]),
}

/// Encodes a frame by hand, independently of `stdws::frame`: first byte
/// `b0` verbatim (FIN, RSV, any opcode, reserved ones too), then the length
/// as told, then the mask, then the payload.
pub fn encode_frame(b0: u8, masking: Masking, len: LenEncoding, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let mask_bit = if masking == Masking::None { 0 } else { 0x80 };
    let value = match len {
        LenEncoding::Claim(n) => n,
        _ => payload.len() as u64,
    };
    let form = match len {
        LenEncoding::Force16 => 126,
        LenEncoding::Force64 => 127,
        _ if value <= 125 => value as u8,
        _ if value <= 0xffff => 126,
        _ => 127,
    };
    out.push(mask_bit | form);
    match form {
        126 => out.extend_from_slice(&(value as u16).to_be_bytes()),
        127 => out.extend_from_slice(&value.to_be_bytes()),
        _ => {}
    }
    let mut body = payload.to_vec();
    match masking {
        Masking::None => {}
        Masking::Masked(key) => {
            out.extend_from_slice(&key);
            apply_mask_reference(&mut body, key, 0);
        }
        Masking::KeyOnly(key) => out.extend_from_slice(&key),
    }
    out.extend_from_slice(&body);
    out
}

/// One thing a well-behaved peer sends, for the roundtrip property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A data message. `text` payloads must be valid UTF-8.
    Message {
        /// Text or binary.
        text: bool,
        /// The whole message.
        payload: Vec<u8>,
        /// Where fragments end: sorted offsets into `payload`, anywhere
        /// (inside a character too); a repeated offset makes an empty fragment.
        splits: Vec<usize>,
        /// Control frames sent between fragments: `(i, c)` goes right after
        /// fragment `i` (only `i < splits.len()` is between fragments).
        between: Vec<(usize, Control)>,
    },
    /// A ping or pong between messages.
    Control(Control),
    /// A valid close frame; nothing is expected after it.
    Close(Option<CloseFrame>),
}

/// A ping or a pong with at most 125 bytes of payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
}

/// Masking keys handed to an [`Outbound`] in order. `MaskKeys` must be
/// `'static`, so they are drawn from the caller's key source up front, one
/// per frame, in the order the frames go out (as the hand-written encoder
/// this replaced drew them).
struct KeyList(std::vec::IntoIter<[u8; 4]>);

impl MaskKeys for KeyList {
    fn mask_key(&mut self) -> [u8; 4] {
        self.0.next().expect("a key was drawn for every frame")
    }
}

/// How many frames [`encode_items`] sends for `items`.
fn frame_count(items: &[Item]) -> usize {
    let mut n = 0;
    for item in items {
        match item {
            Item::Message {
                splits, between, ..
            } => {
                n += splits.len() + 1;
                n += between.iter().filter(|(i, _)| *i < splits.len()).count();
            }
            Item::Control(_) => n += 1,
            Item::Close(_) => return n + 1,
        }
    }
    n
}

/// Encodes one frame with `stdws`'s own sender, [`Outbound::encode`], and
/// writes it out as a driver's direct vectored write would: header, then body.
/// `owned` picks the payload form (owned payloads are masked in place).
fn send_frame(
    out: &mut Vec<u8>,
    sender: &mut Outbound,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    owned: bool,
) {
    let payload = if owned {
        Payload::Owned(payload.to_vec())
    } else {
        Payload::Borrowed(payload)
    };
    let frame = sender
        .encode(opcode, payload, fin)
        .unwrap_or_else(|e| panic!("Outbound refused a well-formed {opcode:?} frame: {e}"));
    assert_eq!(frame.len(), frame.head().len() + frame.body().len());
    out.extend_from_slice(frame.head());
    out.extend_from_slice(frame.body());
}

/// Everything queued in `sender`, taken through `output` and `advance` a
/// few slices at a time, the way a driver writes its queue.
fn drain_queue(out: &mut Vec<u8>, sender: &mut Outbound) {
    while sender.pending() > 0 {
        let mut slices = [&[][..]; 3];
        let n = sender.output(&mut slices);
        let bytes = slices[..n].concat();
        assert!(!bytes.is_empty(), "output gave nothing with bytes pending");
        out.extend_from_slice(&bytes);
        sender.advance(bytes.len());
    }
}

fn send_control(
    out: &mut Vec<u8>,
    expected: &mut Vec<Event>,
    sender: &mut Outbound,
    control: &Control,
) {
    let (opcode, payload) = match control {
        Control::Ping(p) => (OpCode::Ping, p),
        Control::Pong(p) => (OpCode::Pong, p),
    };
    let payload = &payload[..payload.len().min(125)];
    send_frame(out, sender, true, opcode, payload, false);
    let p = ControlPayload::new(payload).expect("at most 125 bytes");
    expected.push(match control {
        Control::Ping(_) => Event::Ping(p),
        Control::Pong(_) => Event::Pong(p),
    });
}

/// Encodes `items` as a peer of `receiver` sends them, with `stdws`'s own
/// sender ([`Outbound`]: a client's, masking with keys from `keys`, when the
/// receiver is a server) and gives the byte stream and the events the
/// receiver must produce, in order. Frames go out through
/// [`Outbound::encode`] (header and body written directly), a close with a
/// code through [`Outbound::close`] and the send queue. Nothing after a close
/// is sent.
pub fn encode_items(
    receiver: Role,
    items: &[Item],
    keys: &mut dyn FnMut() -> [u8; 4],
) -> (Vec<u8>, Vec<Event>) {
    let mut sender = match receiver {
        Role::Server => {
            let keys: Vec<[u8; 4]> = (0..frame_count(items)).map(|_| keys()).collect();
            Outbound::client(Box::new(KeyList(keys.into_iter())))
        }
        Role::Client => Outbound::server(),
    };
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for item in items {
        match item {
            Item::Message {
                text,
                payload,
                splits,
                between,
            } => {
                let mut bounds: Vec<usize> = splits.iter().map(|&s| s.min(payload.len())).collect();
                bounds.sort_unstable();
                bounds.push(payload.len());
                let mut start = 0;
                for (i, &end) in bounds.iter().enumerate() {
                    let opcode = match (i, text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continuation,
                    };
                    let last = i + 1 == bounds.len();
                    let fragment = &payload[start..end];
                    send_frame(&mut out, &mut sender, last, opcode, fragment, i % 2 == 1);
                    start = end;
                    if !last {
                        for (_, c) in between.iter().filter(|(after, _)| *after == i) {
                            send_control(&mut out, &mut expected, &mut sender, c);
                        }
                    }
                }
                expected.push(Event::Message(if *text {
                    Message::Text(String::from_utf8(payload.clone()).expect("text is UTF-8"))
                } else {
                    Message::Binary(payload.clone())
                }));
            }
            Item::Control(c) => send_control(&mut out, &mut expected, &mut sender, c),
            Item::Close(frame) => {
                match frame {
                    Some(f) => {
                        sender
                            .close(f.code, &f.reason)
                            .unwrap_or_else(|e| panic!("Outbound refused close {f:?}: {e}"));
                        drain_queue(&mut out, &mut sender);
                    }
                    None => send_frame(&mut out, &mut sender, true, OpCode::Close, &[], false),
                }
                assert!(sender.is_closed());
                expected.push(Event::Close(frame.clone()));
                break;
            }
        }
    }
    (out, expected)
}

/// The largest message, the largest frame payload and the most fragments any
/// message in `items` has: limits exactly this tight must still accept them.
pub fn tight_limits(items: &[Item], read_buffer_size: usize) -> Limits {
    let mut limits = Limits {
        max_message_size: 0,
        max_frame_size: 0,
        max_fragments: 1,
        read_buffer_size,
        ..Limits::default()
    };
    for item in items {
        if let Item::Message {
            payload, splits, ..
        } = item
        {
            let mut bounds: Vec<usize> = splits.iter().map(|&s| s.min(payload.len())).collect();
            bounds.sort_unstable();
            bounds.push(payload.len());
            let mut start = 0;
            for &end in &bounds {
                limits.max_frame_size = limits.max_frame_size.max(end - start);
                start = end;
            }
            limits.max_message_size = limits.max_message_size.max(payload.len());
            limits.max_fragments = limits.max_fragments.max(bounds.len());
        }
    }
    limits
}

/// The roundtrip property: what a well-behaved peer sends comes out the same,
/// in the same order, pings and pongs between fragments included, whatever
/// the read sizes; and the reference decoder agrees.
pub fn check_roundtrip(
    receiver: Role,
    limits: Limits,
    items: &[Item],
    keys: &mut dyn FnMut() -> [u8; 4],
    chunks: &[usize],
) {
    let (stream, expected) = encode_items(receiver, items, keys);
    let outcome = check_protocol(receiver, limits, &stream, chunks);
    assert_eq!(
        outcome,
        Outcome {
            events: expected,
            error: None
        },
        "roundtrip lost or changed a message"
    );
}

/// Turns arbitrary bytes into text: invalid sequences become U+FFFD, so the
/// text has multi-byte characters that splits can cut.
pub fn to_text(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes).into_owned().into_bytes()
}

/// The sendable close code nearest below `n`'s position in the sendable
/// ranges: maps any `u16` onto a code a peer may send.
pub fn sendable_code(n: u16) -> CloseCode {
    const RANGES: [(u16, u16); 3] = [(1000, 1003), (1007, 1014), (3000, 4999)];
    let total: u16 = RANGES.iter().map(|(a, b)| b - a + 1).sum();
    let mut i = n % total;
    for (a, b) in RANGES {
        if i <= b - a {
            return CloseCode(a + i);
        }
        i -= b - a + 1;
    }
    unreachable!()
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub fn truncate_str(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
