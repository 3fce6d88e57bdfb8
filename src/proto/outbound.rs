//! The sending half of a connection: frames encoded (compressed when
//! negotiated, masked in the client role), the close-sent and broken
//! states, and the bytes waiting to be written.
//!
//! A driver either writes an encoded [`Frame`] straight away (header and
//! payload in one vectored write, the payload uncopied) or queues it; what
//! is queued comes out of [`Outbound::output`] until
//! [`Outbound::advance`] says it was written.

use super::error::{SendError, MAX_CLOSE_REASON};
use super::extensions::Compressor;
use crate::frame::{FrameHeader, OpCode, Role, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::mask::apply_mask;
use crate::message::CloseCode;
use alloc::collections::VecDeque;
use alloc::{boxed::Box, vec::Vec};
use core::fmt;

/// Where a client's masking keys come from (RFC 6455 section 10.3: each
/// must be unpredictable). Tests and fuzzers pass a fixed sequence.
pub trait MaskKeys: Send {
    /// The key for the next frame.
    fn mask_key(&mut self) -> [u8; 4];
}

/// A payload to send: borrowed, or owned so that it can be masked in place
/// and queued without a copy.
#[derive(Debug)]
pub enum Payload<'a> {
    /// The caller keeps the bytes; a queued frame copies them.
    Borrowed(&'a [u8]),
    /// The connection takes the bytes.
    Owned(Vec<u8>),
}

impl Payload<'_> {
    /// The bytes, borrowed or owned.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Payload::Borrowed(b) => b,
            Payload::Owned(b) => b,
        }
    }
}

/// An encoded frame: its header and its payload, ready for one vectored write.
pub struct Frame<'a> {
    head: [u8; MAX_HEADER_LEN],
    head_len: u8,
    body: Payload<'a>,
}

impl Frame<'_> {
    /// The header's bytes.
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    /// The payload, masked and compressed as it goes on the wire.
    pub fn body(&self) -> &[u8] {
        self.body.bytes()
    }

    /// Header and payload bytes together.
    pub fn len(&self) -> usize {
        usize::from(self.head_len) + self.body().len()
    }

    /// Never true: a frame has at least a 2-byte header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("head", &self.head())
            .field("body_len", &self.body().len())
            .finish()
    }
}

/// Where the sending side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Frames may go out; `fragment` is the message being sent in pieces.
    Open { fragment: Option<OpCode> },
    /// Our close frame is queued or written: nothing more goes out.
    Closed,
    /// A frame could not be written whole: nothing more can be written
    /// into the stream, and the only step left is shutting it down.
    Broken,
}

/// Bytes waiting to be written: copied frames in one buffer, and large
/// owned payloads between them, uncopied.
#[derive(Debug, Default)]
struct OutputQueue {
    bytes: Vec<u8>,
    /// How much of `bytes` is written.
    start: usize,
    /// Owned payloads, each written after `bytes[..at]`.
    owned: VecDeque<Owned>,
    /// Bytes waiting in all.
    len: usize,
}

#[derive(Debug)]
struct Owned {
    at: usize,
    data: Vec<u8>,
    written: usize,
}

/// Owned payloads from this size on are queued as they are, not copied.
const OWN_FROM: usize = 1024;

/// Written bytes are dropped from the front of the queue once there are
/// this many and at least as many as wait: the copy costs at most what was
/// written, and the queue holds at most about twice what waits.
const COMPACT_FROM: usize = 4 << 10;

/// Above this, the queue's buffer is not kept once it empties.
const KEEP_QUEUE: usize = 64 << 10;

impl OutputQueue {
    #[inline]
    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// An unmasked frame of at most 125 bytes: its first header byte `b0`.
    #[inline]
    fn push_small(&mut self, b0: u8, body: &[u8]) {
        self.bytes.reserve(2 + body.len());
        self.bytes.extend_from_slice(&[b0, body.len() as u8]);
        self.bytes.extend_from_slice(body);
        self.len += 2 + body.len();
    }

    /// A frame: its header (the first `n` bytes of `head`), then `body`.
    #[inline]
    fn push_frame(&mut self, head: &[u8; MAX_HEADER_LEN], n: usize, body: &[u8]) {
        let at = self.bytes.len();
        self.bytes.reserve(MAX_HEADER_LEN + body.len());
        // The whole array (a copy of fixed size, not a call), cut to the header.
        self.bytes.extend_from_slice(head);
        self.bytes.truncate(at + n);
        self.bytes.extend_from_slice(body);
        self.len += n + body.len();
    }

    fn push_owned(&mut self, data: Vec<u8>) {
        self.len += data.len();
        self.owned.push_back(Owned {
            at: self.bytes.len(),
            data,
            written: 0,
        });
    }

    /// Fills `out` with the next slices to write, in order; returns how many.
    #[inline]
    fn slices<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        if self.owned.is_empty() {
            // The usual case: copied frames only, one slice.
            if self.start == self.bytes.len() || out.is_empty() {
                return 0;
            }
            out[0] = &self.bytes[self.start..];
            return 1;
        }
        let mut n = 0;
        let mut from = self.start;
        for owned in &self.owned {
            if owned.at > from {
                if n == out.len() {
                    return n;
                }
                out[n] = &self.bytes[from..owned.at];
                n += 1;
            }
            if n == out.len() {
                return n;
            }
            out[n] = &owned.data[owned.written..];
            n += 1;
            from = owned.at.max(from);
        }
        if n < out.len() && from < self.bytes.len() {
            out[n] = &self.bytes[from..];
            n += 1;
        }
        n
    }

    #[inline]
    fn advance(&mut self, n: usize) {
        if !self.owned.is_empty() {
            return self.advance_owned(n);
        }
        let n = n.min(self.len);
        self.len -= n;
        self.start += n;
        if self.len == 0 {
            self.clear();
        } else if self.start >= COMPACT_FROM.max(self.len) {
            self.compact();
        }
    }

    /// [`OutputQueue::advance`] past owned payloads.
    fn advance_owned(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let limit = self.owned.front().map_or(self.bytes.len(), |o| o.at);
            let inline = (limit - self.start).min(n);
            self.start += inline;
            n -= inline;
            if n == 0 {
                break;
            }
            if let Some(owned) = self.owned.front_mut() {
                let take = (owned.data.len() - owned.written).min(n);
                owned.written += take;
                n -= take;
                if owned.written == owned.data.len() {
                    self.owned.pop_front();
                }
            }
        }
        // An owned payload fully behind `start` with nothing left of it.
        while self
            .owned
            .front()
            .is_some_and(|o| o.at <= self.start && o.written == o.data.len())
        {
            self.owned.pop_front();
        }
        if self.len == 0 {
            self.clear();
        } else if self.start >= COMPACT_FROM.max(self.len) {
            self.compact();
        }
    }

    /// Drops written bytes from the front, so that a queue that never
    /// quite empties (a peer reading steadily but behind) does not keep
    /// everything it ever sent.
    #[cold]
    fn compact(&mut self) {
        let start = core::mem::take(&mut self.start);
        self.bytes.drain(..start);
        for owned in &mut self.owned {
            owned.at -= start;
        }
    }

    #[inline]
    fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
        self.len = 0;
        if !self.owned.is_empty() {
            self.owned.clear();
        }
        if self.bytes.capacity() > KEEP_QUEUE {
            self.shrink();
        }
    }

    #[cold]
    fn shrink(&mut self) {
        self.bytes = Vec::new();
    }
}

/// The sending side of a WebSocket connection as a state machine.
pub struct Outbound {
    role: Role,
    state: State,
    keys: Option<Box<dyn MaskKeys>>,
    deflate: Option<Box<Compressor>>,
    queue: OutputQueue,
    /// The code of the close frame queued ([`CloseCode::NO_STATUS`] for an
    /// empty one), kept when a write fails after it.
    close_code: Option<CloseCode>,
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("pending", &self.queue.len)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// A sender for a server; its frames are not masked.
    pub fn server() -> Self {
        Self::new(Role::Server, None)
    }

    /// A sender for a client, masking each frame with a key from `keys`.
    pub fn client(keys: Box<dyn MaskKeys>) -> Self {
        Self::new(Role::Client, Some(keys))
    }

    fn new(role: Role, keys: Option<Box<dyn MaskKeys>>) -> Self {
        Outbound {
            role,
            state: State::Open { fragment: None },
            keys,
            deflate: None,
            queue: OutputQueue::default(),
            close_code: None,
        }
    }

    /// Compresses data messages over the threshold, as permessage-deflate
    /// negotiated.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, compressor: Compressor) {
        self.deflate = Some(Box::new(compressor));
    }

    /// Encodes one frame, checking it against the state: nothing after our
    /// close or a failed write, continuations only inside a fragmented
    /// message, control payloads of at most 125 bytes. A close frame moves
    /// the state to closed. The frame must then be written or queued.
    pub fn encode<'a>(
        &mut self,
        opcode: OpCode,
        payload: Payload<'a>,
        fin: bool,
    ) -> Result<Frame<'a>, SendError> {
        let fragment = match self.state {
            State::Open { fragment } => fragment,
            State::Closed => return Err(SendError::Closed),
            State::Broken => return Err(SendError::Broken),
        };
        let whole_data = fragment.is_none() && fin;
        match opcode {
            _ if opcode.is_control() => {
                if !fin {
                    return Err(SendError::InvalidInput(
                        "control frames cannot be fragmented",
                    ));
                }
                if payload.bytes().len() > MAX_CONTROL_PAYLOAD {
                    return Err(SendError::InvalidInput(
                        "control frame payload over 125 bytes",
                    ));
                }
                if opcode == OpCode::Close {
                    self.closing(payload.bytes());
                }
            }
            OpCode::Continuation if fragment.is_none() => {
                return Err(SendError::InvalidInput(
                    "a continuation frame needs a fragmented message to continue",
                ))
            }
            OpCode::Continuation => {
                if fin {
                    self.state = State::Open { fragment: None };
                }
            }
            _ if fragment.is_some() => {
                return Err(SendError::InvalidInput(
                    "a new message cannot start before the fragmented one ends",
                ))
            }
            _ => {
                if !fin {
                    self.state = State::Open {
                        fragment: Some(opcode),
                    };
                }
            }
        }
        // Compress a whole data message first (RSV1 marks it), then mask.
        let mut rsv = 0;
        let mut body = payload;
        if let (Some(deflate), true, false) = (&mut self.deflate, whole_data, opcode.is_control()) {
            let mut compressed = Vec::new();
            if deflate.compress(body.bytes(), &mut compressed) {
                rsv = 0b100;
                body = Payload::Owned(compressed);
            }
        }
        let mask = match &mut self.keys {
            None => None,
            Some(keys) => {
                let key = keys.mask_key();
                let mut owned = match body {
                    Payload::Borrowed(b) => b.to_vec(),
                    Payload::Owned(b) => b,
                };
                apply_mask(&mut owned, key, 0);
                body = Payload::Owned(owned);
                Some(key)
            }
        };
        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len: body.bytes().len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head) as u8;
        Ok(Frame {
            head,
            head_len,
            body,
        })
    }

    /// Queues what of `frame` was not written yet (`written` bytes were).
    /// A large owned payload is queued as it is; other bytes are copied.
    #[inline]
    pub fn queue(&mut self, frame: Frame<'_>, written: usize) {
        if self.state == State::Broken {
            return;
        }
        let head = frame.head();
        let skip_head = written.min(head.len());
        self.queue.push(&head[skip_head..]);
        let skip = written - skip_head;
        match frame.body {
            Payload::Owned(data) if skip == 0 && data.len() >= OWN_FROM => {
                self.queue.push_owned(data)
            }
            body => self
                .queue
                .push(&body.bytes()[skip.min(body.bytes().len())..]),
        }
    }

    /// Queues bytes as they are, not as a frame: a server's HTTP response,
    /// ahead of the frames sent after it.
    pub fn queue_bytes(&mut self, bytes: &[u8]) {
        if self.state != State::Broken {
            self.queue.push(bytes);
        }
    }

    /// Encodes a frame and queues it.
    #[inline]
    pub fn send(
        &mut self,
        opcode: OpCode,
        payload: Payload<'_>,
        fin: bool,
    ) -> Result<(), SendError> {
        if let Payload::Borrowed(bytes) = payload {
            let data = matches!(opcode, OpCode::Text | OpCode::Binary);
            if fin && data && bytes.len() <= MAX_CONTROL_PAYLOAD && self.plain(opcode) {
                // Most frames: a small whole message, behind a 2-byte header.
                self.queue.push_small(0x80 | opcode.bits(), bytes);
                return Ok(());
            }
            if fin && self.plain(opcode) && bytes.len() <= OWN_FROM {
                return self.queue_plain(opcode, bytes);
            }
        }
        self.send_general(opcode, payload, fin)
    }

    /// [`Outbound::send`] for any frame: encoded, then queued.
    fn send_general(
        &mut self,
        opcode: OpCode,
        payload: Payload<'_>,
        fin: bool,
    ) -> Result<(), SendError> {
        let frame = self.encode(opcode, payload, fin)?;
        self.queue(frame, 0);
        Ok(())
    }

    /// Whether a whole frame with `opcode` goes out as it is: a server's,
    /// open, not inside a fragmented message, and not to be compressed.
    #[inline]
    fn plain(&self, opcode: OpCode) -> bool {
        self.keys.is_none()
            && self.state == State::Open { fragment: None }
            && (self.deflate.is_none() || opcode.is_control())
    }

    /// [`Outbound::send`] for a [`Outbound::plain`] frame: its header and
    /// payload straight into the queue.
    #[inline]
    fn queue_plain(&mut self, opcode: OpCode, bytes: &[u8]) -> Result<(), SendError> {
        if opcode.is_control() {
            if bytes.len() > MAX_CONTROL_PAYLOAD {
                return Err(SendError::InvalidInput(
                    "control frame payload over 125 bytes",
                ));
            }
            if opcode == OpCode::Close {
                self.closing(bytes);
            }
        } else if opcode == OpCode::Continuation {
            return Err(SendError::InvalidInput(
                "a continuation frame needs a fragmented message to continue",
            ));
        }
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: bytes.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        self.queue.push_frame(&head, n, bytes);
        Ok(())
    }

    /// A close frame with `payload` is going out: nothing more follows it.
    #[cold]
    fn closing(&mut self, payload: &[u8]) {
        self.state = State::Closed;
        self.close_code = Some(match payload {
            [hi, lo, ..] => CloseCode(u16::from_be_bytes([*hi, *lo])),
            _ => CloseCode::NO_STATUS,
        });
    }

    /// The code of the close frame we queued, once one was:
    /// [`CloseCode::NO_STATUS`] if it had none. A write that fails later
    /// does not change it.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.close_code
    }

    /// Queues a close frame with `code` and `reason` (at most 123 bytes).
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let payload = close_payload(code, reason)?;
        self.send(OpCode::Close, Payload::Borrowed(&payload), true)
    }

    /// The bytes waiting to be written, as up to `out.len()` slices in
    /// order (for one vectored write); returns how many were filled.
    #[inline]
    pub fn output<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        self.queue.slices(out)
    }

    /// The bytes waiting to be written when they are in one piece (no large
    /// owned payload among them): the usual case, for one plain write.
    #[inline]
    pub fn contiguous(&self) -> Option<&[u8]> {
        let q = &self.queue;
        q.owned.is_empty().then(|| &q.bytes[q.start..])
    }

    /// Bytes waiting to be written: the connection's backpressure.
    #[inline]
    pub fn pending(&self) -> usize {
        self.queue.len
    }

    /// Gives back the queue's buffer while nothing waits; for an idle connection.
    pub fn shrink(&mut self) {
        if self.queue.len == 0 {
            self.queue = OutputQueue::default();
        }
    }

    /// Records that the first `n` bytes of the output were written.
    #[inline]
    pub fn advance(&mut self, n: usize) {
        self.queue.advance(n);
    }

    /// A write failed or was cut short: part of a frame may be on the wire,
    /// so nothing more can follow it. What was queued is dropped.
    pub fn write_failed(&mut self) {
        self.state = State::Broken;
        self.queue.clear();
    }

    /// Whether our close frame is queued or written (or the stream broke):
    /// no more frames go out.
    #[inline]
    pub fn is_closed(&self) -> bool {
        !matches!(self.state, State::Open { .. })
    }

    /// Whether a write failed part way; the stream can only be shut down.
    #[inline]
    pub fn is_broken(&self) -> bool {
        self.state == State::Broken
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Bytes held: the queue's buffers and the compressor's state.
    pub fn memory_held(&self) -> usize {
        let owned: usize = self.queue.owned.iter().map(|o| o.data.capacity()).sum();
        let deflate = self.deflate.as_ref().map_or(0, |d| d.memory_held());
        self.queue.bytes.capacity() + owned + deflate
    }
}

/// A close frame's payload: the code, then the reason.
pub(crate) fn close_payload(code: CloseCode, reason: &str) -> Result<Vec<u8>, SendError> {
    if !code.is_sendable() {
        return Err(SendError::InvalidInput(
            "close code not allowed on the wire",
        ));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(SendError::InvalidInput("close reason over 123 bytes"));
    }
    let mut payload = code.0.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same key each time: deterministic frames.
    pub(crate) struct FixedKey(pub [u8; 4]);
    impl MaskKeys for FixedKey {
        fn mask_key(&mut self) -> [u8; 4] {
            self.0
        }
    }

    fn drain(out: &mut Outbound, step: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while out.pending() > 0 {
            let mut slices = [&[][..]; 4];
            let n = out.output(&mut slices);
            let all: Vec<u8> = slices[..n].concat();
            let take = all.len().min(step);
            wire.extend_from_slice(&all[..take]);
            out.advance(take);
        }
        wire
    }

    #[test]
    fn queued_frames_come_out_in_order_however_they_are_written() {
        for step in [1, 3, 7, 100, 5000, usize::MAX] {
            let mut out = Outbound::server();
            out.send(OpCode::Text, Payload::Borrowed(b"one"), true)
                .unwrap();
            out.send(OpCode::Binary, Payload::Owned(vec![7; 2000]), true)
                .unwrap();
            out.send(OpCode::Ping, Payload::Borrowed(b"p"), true)
                .unwrap();
            out.send(OpCode::Binary, Payload::Owned(vec![8; 1500]), true)
                .unwrap();
            let mut expected = vec![0x81, 3];
            expected.extend_from_slice(b"one");
            expected.extend_from_slice(&[0x82, 126, 0x07, 0xd0]);
            expected.extend_from_slice(&[7; 2000]);
            expected.extend_from_slice(&[0x89, 1, b'p']);
            expected.extend_from_slice(&[0x82, 126, 0x05, 0xdc]);
            expected.extend_from_slice(&[8; 1500]);
            assert_eq!(out.pending(), expected.len());
            assert_eq!(drain(&mut out, step), expected, "step {step}");
            assert_eq!(out.pending(), 0);
        }
    }

    #[test]
    fn a_partly_written_frame_queues_only_its_rest() {
        let mut out = Outbound::server();
        let frame = out
            .encode(OpCode::Binary, Payload::Borrowed(&[1, 2, 3, 4]), true)
            .unwrap();
        out.queue(frame, 3);
        assert_eq!(drain(&mut out, usize::MAX), [2, 3, 4]);
    }

    #[test]
    fn a_client_masks_with_the_key_it_was_given() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = Outbound::client(Box::new(FixedKey(key)));
        out.send(OpCode::Text, Payload::Borrowed(b"Hello"), true)
            .unwrap();
        // RFC 6455 section 5.7.
        assert_eq!(
            drain(&mut out, usize::MAX),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn nothing_goes_out_after_the_close_or_a_failed_write() {
        let mut out = Outbound::server();
        out.close(CloseCode::NORMAL, "bye").unwrap();
        assert!(out.is_closed());
        let late = out.send(OpCode::Text, Payload::Borrowed(b"x"), true);
        assert_eq!(late, Err(SendError::Closed));
        let mut out = Outbound::server();
        out.send(OpCode::Text, Payload::Borrowed(b"x"), true)
            .unwrap();
        out.write_failed();
        assert_eq!(out.pending(), 0);
        assert_eq!(
            out.send(OpCode::Ping, Payload::Borrowed(b""), true),
            Err(SendError::Broken)
        );
        assert!(out.is_broken());
    }

    #[test]
    fn remembers_the_code_of_the_close_it_queued_through_any_path() {
        let mut out = Outbound::server();
        assert_eq!(out.close_code(), None);
        out.send(OpCode::Text, Payload::Borrowed(b"data"), true)
            .unwrap();
        assert_eq!(out.close_code(), None);
        out.close(CloseCode(4001), "app").unwrap();
        assert_eq!(out.close_code(), Some(CloseCode(4001)));
        // A failed write later does not lose it.
        out.write_failed();
        assert_eq!(out.close_code(), Some(CloseCode(4001)));
        // An empty close (a plain frame, or one encoded for a client).
        let mut out = Outbound::server();
        out.send(OpCode::Close, Payload::Borrowed(b""), true)
            .unwrap();
        assert_eq!(out.close_code(), Some(CloseCode::NO_STATUS));
        let mut out = Outbound::client(Box::new(FixedKey([1, 2, 3, 4])));
        out.send(OpCode::Close, Payload::Owned(vec![0x03, 0xe9]), true)
            .unwrap();
        assert_eq!(out.close_code(), Some(CloseCode::GOING_AWAY));
    }

    #[test]
    fn fragments_follow_the_rules_and_controls_may_come_between() {
        let mut out = Outbound::server();
        let cont = out.send(OpCode::Continuation, Payload::Borrowed(b"x"), true);
        assert!(matches!(cont, Err(SendError::InvalidInput(_))));
        out.send(OpCode::Text, Payload::Borrowed(b"He"), false)
            .unwrap();
        let interleaved = out.send(OpCode::Binary, Payload::Borrowed(b"x"), true);
        assert!(matches!(interleaved, Err(SendError::InvalidInput(_))));
        out.send(OpCode::Ping, Payload::Borrowed(b""), true)
            .unwrap();
        out.send(OpCode::Continuation, Payload::Borrowed(b"llo"), true)
            .unwrap();
        out.send(OpCode::Text, Payload::Borrowed(b"next"), true)
            .unwrap();
        let wire = drain(&mut out, usize::MAX);
        assert_eq!(&wire[..4], &[0x01, 2, b'H', b'e']);
        assert_eq!(&wire[4..6], &[0x89, 0]);
        assert_eq!(&wire[6..11], &[0x80, 3, b'l', b'l', b'o']);
        assert_eq!(&wire[11..13], &[0x81, 4]);
    }

    #[test]
    fn refuses_long_control_payloads_and_bad_close_codes() {
        let mut out = Outbound::server();
        let long = out.send(OpCode::Ping, Payload::Borrowed(&[0; 126]), true);
        assert!(matches!(long, Err(SendError::InvalidInput(_))));
        assert!(out.close(CloseCode(1005), "").is_err());
        assert!(out.close(CloseCode::NORMAL, &"x".repeat(124)).is_err());
        assert!(!out.is_closed());
    }
}
