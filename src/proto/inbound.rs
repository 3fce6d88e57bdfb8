//! The WebSocket protocol without IO (RFC 6455 sections 5 to 7): bytes in;
//! messages, pings, pongs and closes out.
//!
//! The caller reads from its stream into [`Protocol::read_buf`], reports how
//! many bytes arrived with [`Protocol::commit`], then takes events from
//! [`Protocol::poll`] until it returns `Ok(None)` ("need more bytes"); or it
//! hands over bytes in a buffer of its own with [`Protocol::poll_lent`].
//! Payload bytes are unmasked and checked as soon as they arrive, so invalid
//! UTF-8 fails a connection at once, even inside a frame that has not ended.
//! A large payload is read straight into the message it belongs to: no copy.
//! [`Connection`](super::Connection) wraps it; its docs have examples.

use super::control::ControlPayload;
use super::error::ProtocolError;
use crate::frame::Role;
use crate::frame::{self, FrameHeader, OpCode};
use crate::limits::Limits;
use crate::mask::apply_mask;
use crate::message::CloseCode;
use crate::message::CloseFrame;
use crate::message::Message;
use crate::message::MessageRef;
use crate::proto::extensions::{Decompressor, InflateError};
use crate::status::Status;
use crate::utf8::Utf8Validator;
use alloc::{borrow::ToOwned, boxed::Box, string::String, vec, vec::Vec};

/// What the peer sent. `M` is the message: owned ([`Message`]) from
/// [`Connection::next_event`](super::Connection::next_event), `()` from
/// [`Connection::poll`](super::Connection::poll) (then fetch it with
/// [`Connection::message_ref`](super::Connection::message_ref) or
/// [`Connection::take_message`](super::Connection::take_message)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<M = Message> {
    /// A complete text or binary message.
    Message(M),
    /// A ping; answer with a pong carrying the same payload.
    Ping(ControlPayload),
    /// A pong.
    Pong(ControlPayload),
    /// The peer's close frame, `None` if it carried no status code. Nothing
    /// follows it: the protocol is closed.
    Close(Option<CloseFrame>),
}

impl Event<()> {
    /// The event with its message taken by `take`; `None` if there was none.
    pub(crate) fn owned(self, take: impl FnOnce() -> Option<Message>) -> Option<Event> {
        Some(match self {
            Event::Message(()) => Event::Message(take()?),
            Event::Ping(p) => Event::Ping(p),
            Event::Pong(p) => Event::Pong(p),
            Event::Close(f) => Event::Close(f),
        })
    }
}

/// Where the receiver is inside the byte stream. Variants carry what they
/// need, such as the fragmented message in progress.
#[derive(Clone, Debug)]
enum State {
    /// Between frames.
    Header { partial: Option<Partial> },
    /// A single-frame message small enough to wait for in the read buffer,
    /// where it is unmasked in place as it arrives: no copy.
    Inline {
        text: bool,
        len: usize,
        /// Bytes already unmasked (and checked, if text).
        checked: usize,
        mask: Option<[u8; 4]>,
        utf8: Utf8Validator,
    },
    /// Inside a data frame whose payload is appended to the assembly buffer.
    Data { partial: Partial, frame: DataFrame },
    /// Inside a control frame's payload (kept in `Protocol::control`),
    /// perhaps between two fragments.
    Control {
        partial: Option<Partial>,
        opcode: OpCode,
        mask: Option<[u8; 4]>,
        received: usize,
    },
    /// A fault no event could report when it was found (a message read
    /// straight into its buffer grew past its limit): the next poll does.
    Failed(ProtocolError),
    /// A close frame arrived or the connection failed: nothing more is read.
    Closed,
}

/// Progress through a data frame's payload.
#[derive(Clone, Copy, Debug)]
struct DataFrame {
    remaining: u64,
    mask: Option<[u8; 4]>,
    offset: usize,
    fin: bool,
}

/// A message being assembled from several frames, or from one large frame.
#[derive(Clone, Copy, Debug)]
struct Partial {
    text: bool,
    /// permessage-deflate: the frames carry compressed bytes (RSV1 was set).
    compressed: bool,
    utf8: Utf8Validator,
    frames: usize,
}

/// Where the message that [`Protocol::poll`] reported lies.
#[derive(Clone, Copy, Debug)]
enum Ready {
    /// In the read buffer.
    Inline { at: usize, len: usize, text: bool },
    /// The first `filled` bytes of the assembly buffer.
    Assembled { text: bool },
    /// In the caller's buffer given to [`Protocol::poll_lent`].
    Lent { at: usize, len: usize, text: bool },
}

/// The buffer fragmented and large messages are assembled in. It is reused
/// from message to message and kept initialised up to its length, so reuse
/// costs no zeroing; `filled` bytes are the message so far.
#[derive(Clone, Debug, Default)]
struct Assembly {
    bytes: Vec<u8>,
    filled: usize,
}

impl Assembly {
    /// Makes room for `more` bytes after `filled`, growing geometrically but
    /// never past `limit`, so capacity stays within the message limit.
    fn reserve(&mut self, more: usize, limit: usize) {
        let need = self.filled + more;
        if need > self.bytes.len() {
            let capacity = need.max(2 * self.bytes.len()).min(limit.max(need));
            self.bytes.reserve_exact(capacity - self.bytes.len());
            self.bytes.resize(need, 0);
        }
    }

    /// Unmasks and checks the `n` payload bytes now in place after `filled`.
    fn take(
        &mut self,
        partial: &mut Partial,
        frame: &mut DataFrame,
        n: usize,
    ) -> Result<(), ProtocolError> {
        let n = n.min(frame.remaining as usize);
        let chunk = &mut self.bytes[self.filled..self.filled + n];
        if let Some(key) = frame.mask {
            apply_mask(chunk, key, frame.offset);
        }
        // A text message that arrives whole is checked once, when it
        // completes; one that arrives in pieces is checked piece by piece.
        let arrives_whole = frame.fin && self.filled == 0 && n as u64 == frame.remaining;
        if partial.text && !arrives_whole {
            partial
                .utf8
                .feed(chunk)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.filled += n;
        frame.offset += n;
        frame.remaining -= n as u64;
        Ok(())
    }
}

/// Bytes read but not yet parsed. Once events are drained it holds at most
/// part of a header, or part of one small frame waiting to complete.
///
/// It starts at [`IDLE_READ_BUFFER`] (or the configured size, if smaller).
/// The first read that fills it takes it to the configured size, and each
/// one after that doubles it, up to [`READ_BUFFER_MAX`] (a large message,
/// pipelined traffic: fewer system calls). It returns to the idle size when
/// the connection goes idle, so that thousands of idle connections each
/// hold half a KiB while they wait. Fed only through
/// [`Protocol::poll_lent`], it holds just a frame's unparsed tail, and
/// nothing between frames.
#[derive(Clone, Debug)]
struct ReadBuffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
    /// The configured size: the smallest, and the limit for in-place messages.
    size: usize,
    /// The size to have at the next reallocation.
    target: usize,
}

/// What an idle connection's read buffer holds while it waits: a small
/// message's frame fits.
const IDLE_READ_BUFFER: usize = 512;

/// The most the read buffer grows to under pipelined traffic (or the
/// configured size, if larger). With `max_message_size`, it bounds what a
/// receiver holds.
pub const READ_BUFFER_MAX: usize = 64 << 10;

impl ReadBuffer {
    #[inline]
    fn filled(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Marks `n` bytes parsed. They stay where they are until the next
    /// read, so a message delivered in place remains valid until then.
    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// The size it waits at while idle: [`IDLE_READ_BUFFER`], or the
    /// configured size if smaller.
    fn idle_size(&self) -> usize {
        IDLE_READ_BUFFER.min(self.size)
    }

    /// The next size up: the configured size from the idle one, then
    /// double, up to [`READ_BUFFER_MAX`] (or the configured size, if larger).
    fn grow(&mut self) {
        self.target = match self.target < self.size {
            true => self.size,
            false => (self.target * 2).min(READ_BUFFER_MAX.max(self.size)),
        };
    }

    #[inline]
    fn spare(&mut self) -> &mut [u8] {
        // Empty at its size (the usual read between messages): all of it.
        if self.start == self.end && self.bytes.len() == self.target && self.target > 0 {
            self.start = 0;
            self.end = 0;
            return &mut self.bytes;
        }
        self.spare_general()
    }

    /// [`ReadBuffer::spare`] when it must be reset, resized or compacted.
    fn spare_general(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.bytes.len() != self.target {
                // Empty: resize for free (grow for traffic, or shrink back
                // after bytes read with the handshake or a busy spell).
                self.bytes = Vec::new();
            }
        }
        if self.bytes.is_empty() {
            self.bytes = vec![0; self.target];
        }
        if self.end == self.bytes.len() {
            if self.start > 0 {
                self.bytes.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.bytes.len() {
                // Full of one frame's start (a frame's tail kept from a
                // caller's buffer is sized to fit it): room for the rest.
                if self.target <= self.bytes.len() {
                    self.grow();
                }
                // A tail over the configured size (a frame's header and
                // payload may be): room for its rest, which is smaller.
                let len = self.bytes.len();
                self.bytes
                    .resize(self.target.max(len + len.min(self.size)), 0);
            }
        }
        &mut self.bytes[self.end..]
    }

    /// Appends bytes from a caller's buffer, growing to fit them exactly:
    /// they are the tail of a frame, or what a caller left unparsed.
    fn append(&mut self, more: &[u8]) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.start > 0 && self.end + more.len() > self.bytes.len() {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let need = self.end + more.len();
        if need > self.bytes.len() {
            self.bytes.reserve_exact(need - self.bytes.len());
            self.bytes.resize(need, 0);
        }
        self.bytes[self.end..need].copy_from_slice(more);
        self.end = need;
    }

    /// Gives the memory back; only when empty.
    fn release(&mut self) {
        *self = ReadBuffer {
            bytes: Vec::new(),
            start: 0,
            end: 0,
            ..*self
        };
    }
}

/// Where a parsing step reads from: the receiver's own read buffer
/// ([`Own`]), or a caller's buffer ([`Lent`]). Each method gets the read
/// buffer too, so that parsing the own one compiles to plain field access.
/// Payloads are unmasked where they lie.
trait Window {
    /// The bytes not parsed yet.
    fn filled<'a>(&'a self, own: &'a ReadBuffer) -> &'a [u8];
    /// Where they start in [`Window::bytes`].
    fn start(&self, own: &ReadBuffer) -> usize;
    /// All of the buffer, for unmasking in place.
    fn bytes<'a>(&'a mut self, own: &'a mut ReadBuffer) -> &'a mut [u8];
    /// Marks `n` bytes parsed. They stay where they are, so a message
    /// delivered in place remains valid until the next read.
    fn consume(&mut self, own: &mut ReadBuffer, n: usize);
    /// Where a message found in place in this window lies.
    fn ready(at: usize, len: usize, text: bool) -> Ready;
}

/// The receiver's own read buffer.
struct Own;

impl Window for Own {
    #[inline(always)]
    fn filled<'a>(&'a self, own: &'a ReadBuffer) -> &'a [u8] {
        own.filled()
    }
    #[inline(always)]
    fn start(&self, own: &ReadBuffer) -> usize {
        own.start
    }
    #[inline(always)]
    fn bytes<'a>(&'a mut self, own: &'a mut ReadBuffer) -> &'a mut [u8] {
        &mut own.bytes
    }
    #[inline(always)]
    fn consume(&mut self, own: &mut ReadBuffer, n: usize) {
        own.consume(n);
    }
    #[inline(always)]
    fn ready(at: usize, len: usize, text: bool) -> Ready {
        Ready::Inline { at, len, text }
    }
}

/// Bytes in a caller's buffer, parsed in place from `start` on; see
/// [`Protocol::poll_lent`].
#[derive(Debug)]
pub(crate) struct Lent<'b> {
    bytes: &'b mut [u8],
    start: usize,
}

impl<'b> Lent<'b> {
    pub(crate) fn new(bytes: &'b mut [u8]) -> Self {
        Lent { bytes, start: 0 }
    }

    /// The whole buffer: what a message lent from it is found in.
    #[inline]
    pub(crate) fn all(&self) -> &[u8] {
        self.bytes
    }

    /// The bytes not parsed yet.
    #[inline]
    fn rest(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

impl Window for Lent<'_> {
    #[inline(always)]
    fn filled<'a>(&'a self, _: &'a ReadBuffer) -> &'a [u8] {
        self.rest()
    }
    #[inline(always)]
    fn start(&self, _: &ReadBuffer) -> usize {
        self.start
    }
    #[inline(always)]
    fn bytes<'a>(&'a mut self, _: &'a mut ReadBuffer) -> &'a mut [u8] {
        self.bytes
    }
    #[inline(always)]
    fn consume(&mut self, _: &mut ReadBuffer, n: usize) {
        self.start += n;
    }
    #[inline(always)]
    fn ready(at: usize, len: usize, text: bool) -> Ready {
        Ready::Lent { at, len, text }
    }
}

/// Which buffer the last [`Protocol::read_buf`] handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadTarget {
    Buffer,
    Assembly,
}

/// The receiving side of a WebSocket connection as a state machine.
///
/// Sending needs no state beyond "has a close been sent", which the socket
/// layer keeps; frames are encoded with [`FrameHeader::encode`].
#[derive(Clone, Debug)]
pub struct Protocol {
    role: Role,
    limits: Limits,
    buf: ReadBuffer,
    assembly: Assembly,
    state: State,
    /// The payload of the last control frame received, boxed: an idle
    /// connection holds none ([`Protocol::shrink`] frees it).
    control: Option<Box<ControlPayload>>,
    /// permessage-deflate, when negotiated.
    inflate: Option<Box<Decompressor>>,
    ready: Option<Ready>,
    target: ReadTarget,
}

/// The most a single read straight into the assembly buffer asks for.
const DIRECT_READ_CHUNK: usize = 64 << 10;

/// Above this, the assembly buffer is not kept for the next message unless
/// that one needs it too.
const KEEP_ASSEMBLY: usize = 64 << 10;

impl Protocol {
    /// A receiver for the given end of the connection.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self::with_received(role, limits, &[])
    }

    /// A receiver that starts with bytes already read from the stream, such
    /// as frames that arrived with the handshake; none of them is lost, however many.
    pub fn with_received(role: Role, limits: Limits, received: &[u8]) -> Self {
        // Never less than a frame header, or leftovers ending inside one
        // would leave no room to read the rest.
        let size = limits.read_buffer_size.max(frame::MAX_HEADER_LEN);
        let idle = IDLE_READ_BUFFER.min(size);
        let mut bytes = Vec::new();
        if !received.is_empty() {
            bytes = received.to_vec();
            bytes.resize(received.len().max(idle), 0);
        }
        Protocol {
            role,
            limits,
            buf: ReadBuffer {
                bytes,
                start: 0,
                end: received.len(),
                size,
                target: idle,
            },
            assembly: Assembly::default(),
            state: State::Header { partial: None },
            control: None,
            inflate: None,
            ready: None,
            target: ReadTarget::Buffer,
        }
    }

    /// Accepts compressed messages (RSV1), as permessage-deflate negotiated.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, decompressor: Decompressor) {
        self.inflate = Some(Box::new(decompressor));
    }

    /// The payload of the last control frame received.
    pub(crate) fn control(&self) -> ControlPayload {
        self.control.as_deref().copied().unwrap_or_default()
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether a close frame arrived or the connection failed; nothing more will be read.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Where the next bytes from the peer should be read into.
    ///
    /// Call [`Protocol::poll`] until it returns `Ok(None)` first: only then
    /// is there always room. Empty once the protocol is closed. A message
    /// from the last poll is released.
    #[inline]
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.target = ReadTarget::Buffer;
        self.ready = None;
        if self.is_closed() {
            return &mut [];
        }
        if let Some(n) = self.direct_read() {
            // A large payload: read it straight into the assembly buffer,
            // which was sized for the whole frame when its header arrived.
            self.target = ReadTarget::Assembly;
            let a = &mut self.assembly;
            return &mut a.bytes[a.filled..a.filled + n];
        }
        self.buf.spare()
    }

    /// How much of a large payload [`Protocol::read_buf`] would offer
    /// straight in its message, if that is what it offers: at most 64 KiB
    /// at a time, so that each piece is unmasked while still in cache.
    #[inline]
    fn direct_read(&self) -> Option<usize> {
        match &self.state {
            State::Data { partial, frame }
                if self.is_drained()
                    && frame.remaining >= self.buf.size as u64
                    && !partial.compressed =>
            {
                Some((frame.remaining as usize).min(DIRECT_READ_CHUNK))
            }
            _ => None,
        }
    }

    /// Whether every byte read so far has been parsed: nothing more can
    /// come out of [`Protocol::poll`] before the next read.
    #[inline]
    pub fn is_drained(&self) -> bool {
        self.buf.start == self.buf.end
    }

    /// Whether [`Protocol::read_buf`] would offer room in the message being
    /// received (a large frame's payload) rather than the read buffer.
    #[inline]
    pub fn reads_into_message(&self) -> bool {
        self.direct_read().is_some()
    }

    /// Records that `n` bytes were written into the slice from the last [`Protocol::read_buf`].
    #[inline]
    pub fn commit(&mut self, n: usize) {
        match (self.target, &mut self.state) {
            (ReadTarget::Assembly, State::Data { partial, frame }) => {
                if let Err(e) = self.assembly.take(partial, frame, n) {
                    self.state = State::Failed(e);
                }
            }
            _ => {
                let buf = &mut self.buf;
                if buf.end + n >= buf.bytes.len() {
                    // The read filled the buffer: more is probably waiting
                    // (or a frame to deliver in place is larger than it).
                    buf.grow();
                }
                buf.end = (buf.end + n).min(buf.bytes.len());
            }
        }
        self.target = ReadTarget::Buffer;
    }

    /// Copies as much of `bytes` as fits into the read buffer; returns how
    /// much. A convenience for tests and fuzzers.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let dst = self.read_buf();
        let n = dst.len().min(bytes.len());
        dst[..n].copy_from_slice(&bytes[..n]);
        self.commit(n);
        n
    }

    /// Bytes this receiver holds right now: [`Protocol::message_memory`]
    /// plus its read buffer (at most [`READ_BUFFER_MAX`], or the configured
    /// size if larger, once handshake leftovers are drained).
    pub fn memory_held(&self) -> usize {
        let inflate = self.inflate.as_ref().map_or(0, |d| d.memory_held());
        self.buf.bytes.capacity() + self.message_memory() + inflate
    }

    /// Bytes held for assembling messages: never more than `max_message_size`.
    pub fn message_memory(&self) -> usize {
        self.assembly.bytes.capacity()
    }

    /// Frees buffers grown for large messages or busy spells (the read
    /// buffer shrinks before the next read); call it when the connection is idle.
    pub fn shrink(&mut self) {
        let assembling = matches!(
            self.state,
            State::Data { .. }
                | State::Header { partial: Some(_) }
                | State::Control {
                    partial: Some(_),
                    ..
                }
        );
        if !assembling && self.ready.is_none() {
            self.assembly = Assembly::default();
        }
        self.drop_control();
        self.buf.target = self.buf.idle_size();
    }

    /// Frees the last control frame's payload unless one is being received.
    #[cold]
    fn drop_control(&mut self) {
        if !matches!(self.state, State::Control { .. }) {
            self.control = None;
        }
    }

    /// The next event from the bytes received so far, with the message
    /// owned; `Ok(None)` means more bytes are needed (or the protocol is closed).
    ///
    /// An error fails the connection: send its [`ProtocolError::close_frame`]
    /// and close. The protocol is closed afterwards.
    #[cfg(test)]
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        Ok(match self.poll()? {
            None => None,
            Some(event) => event.owned(|| self.take_message()),
        })
    }

    /// Advances to the next event; for a message, [`Protocol::message_ref`]
    /// borrows it and [`Protocol::take_message`] takes it, until the next
    /// poll or read. `Ok(None)` means more bytes are needed (or closed).
    #[inline]
    pub fn poll(&mut self) -> Result<Option<Event<()>>, ProtocolError> {
        self.ready = None;
        // Between frames, the usual cases inline: nothing left to parse (the
        // poll after a read's last message), or a small whole frame.
        if let State::Header { partial: None } = self.state {
            if self.is_drained() {
                return Ok(None);
            }
            if let Some((head, len)) = self.small_frame(&Own) {
                return self.take_small_frame(&mut Own, head, len);
            }
        }
        self.poll_general()
    }

    /// [`Protocol::poll`] past its fast path.
    fn poll_general(&mut self) -> Result<Option<Event<()>>, ProtocolError> {
        let result = match &self.state {
            State::Failed(e) => Err(e.clone()),
            _ => self.step(&mut Own),
        };
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    /// [`Protocol::poll`] on bytes in a caller's buffer, parsed (and
    /// unmasked) where they lie. Bytes this receiver already holds come
    /// first, topped up from `lent` with only what their frame still needs.
    /// A message found in `lent` is lent from it: pass the same buffer to
    /// [`Protocol::message_in`]. End with [`Protocol::finish_lent`].
    #[inline]
    pub(crate) fn poll_lent(
        &mut self,
        lent: &mut Lent<'_>,
    ) -> Result<Option<Event<()>>, ProtocolError> {
        self.target = ReadTarget::Buffer;
        self.ready = None;
        // Between frames with nothing of ours held, the usual cases inline:
        // nothing left in `lent`, or a small whole frame there.
        if let (State::Header { partial: None }, true) = (&self.state, self.is_drained()) {
            if lent.rest().is_empty() {
                return Ok(None);
            }
            if let Some((head, len)) = self.small_frame(lent) {
                return self.take_small_frame(lent, head, len);
            }
        }
        self.poll_lent_general(lent)
    }

    /// [`Protocol::poll_lent`] past its fast path.
    fn poll_lent_general(
        &mut self,
        lent: &mut Lent<'_>,
    ) -> Result<Option<Event<()>>, ProtocolError> {
        let result = match &self.state {
            State::Failed(e) => Err(e.clone()),
            _ => self.step_lent(lent),
        };
        if result.is_err() {
            self.state = State::Closed;
        }
        result
    }

    fn step_lent(&mut self, lent: &mut Lent<'_>) -> Result<Option<Event<()>>, ProtocolError> {
        while self.buf.start < self.buf.end {
            if let Some(event) = self.poll()? {
                return Ok(Some(event));
            }
            if self.is_closed() || lent.rest().is_empty() {
                return Ok(None);
            }
            // Complete the frame begun here: copy only what it needs.
            let n = self.wanted().min(lent.rest().len());
            self.buf.append(&lent.rest()[..n]);
            lent.start += n;
        }
        self.step(lent)
    }

    /// How many more bytes the frame begun in the read buffer needs before
    /// it can be parsed further (at least one).
    fn wanted(&self) -> usize {
        let have = self.buf.end - self.buf.start;
        let need = match &self.state {
            State::Header { .. } => header_len(self.buf.filled()),
            State::Inline { len, .. } => *len,
            _ => 0,
        };
        need.saturating_sub(have).max(1)
    }

    /// Ends a run of [`Protocol::poll_lent`]: what `lent` holds unparsed (a
    /// frame's tail, once events are drained) is copied into the read buffer,
    /// which is freed if that leaves it empty. The last message is released.
    #[inline]
    pub(crate) fn finish_lent(&mut self, lent: &Lent<'_>) {
        self.ready = None;
        if !self.is_closed() && !lent.rest().is_empty() {
            self.buf.append(lent.rest());
        }
        if self.is_closed() || self.is_drained() {
            self.buf.release();
            if self.control.is_some() {
                self.drop_control();
            }
        }
    }

    /// The message the last [`Protocol::poll`] reported, borrowed in place.
    #[inline]
    pub fn message_ref(&self) -> Option<MessageRef<'_>> {
        self.message_in(&[])
    }

    /// The message the last poll reported, `lent` being the caller's buffer
    /// given to [`Protocol::poll_lent`] (empty otherwise).
    #[inline]
    pub(crate) fn message_in<'a>(&'a self, lent: &'a [u8]) -> Option<MessageRef<'a>> {
        let (bytes, text) = match self.ready? {
            Ready::Inline { at, len, text } => (&self.buf.bytes[at..at + len], text),
            Ready::Assembled { text } => (&self.assembly.bytes[..self.assembly.filled], text),
            Ready::Lent { at, len, text } => (lent.get(at..at + len)?, text),
        };
        Some(match text {
            // Checked when the message completed, so this cannot fail.
            true => core::str::from_utf8(bytes).map_or(MessageRef::Binary(bytes), MessageRef::Text),
            false => MessageRef::Binary(bytes),
        })
    }

    /// Takes the message the last [`Protocol::poll`] reported. An assembled
    /// message is moved out, not copied.
    pub fn take_message(&mut self) -> Option<Message> {
        self.take_in(&[])
    }

    /// [`Protocol::take_message`], `lent` as for [`Protocol::message_in`].
    pub(crate) fn take_in(&mut self, lent: &[u8]) -> Option<Message> {
        let (bytes, text) = match self.ready.take()? {
            Ready::Inline { at, len, text } => (self.buf.bytes[at..at + len].to_vec(), text),
            Ready::Lent { at, len, text } => (lent.get(at..at + len)?.to_vec(), text),
            Ready::Assembled { text } => {
                let mut bytes = core::mem::take(&mut self.assembly.bytes);
                bytes.truncate(self.assembly.filled);
                self.assembly.filled = 0;
                (bytes, text)
            }
        };
        Some(match text {
            // Checked when the message completed, so this cannot fail.
            true => String::from_utf8(bytes)
                .map_or_else(|e| Message::Binary(e.into_bytes()), Message::Text),
            false => Message::Binary(bytes),
        })
    }

    /// Parses `w` up to the next event.
    fn step<W: Window>(&mut self, w: &mut W) -> Result<Option<Event<()>>, ProtocolError> {
        if let State::Header { partial: None } = self.state {
            if let Some((head, len)) = self.small_frame(w) {
                return self.take_small_frame(w, head, len);
            }
        }
        loop {
            // The state is updated in place; it changes variant only at frame
            // boundaries. On an error, `poll` closes the protocol.
            match &mut self.state {
                State::Failed(_) | State::Closed => return Ok(None),
                State::Header { partial } => {
                    let (header, len) = match frame::parse(w.filled(&self.buf))? {
                        Status::Partial => return Ok(None),
                        Status::Complete(parsed) => parsed,
                    };
                    let partial = partial.take();
                    w.consume(&mut self.buf, len);
                    let next = self.begin_frame::<W>(header, partial)?;
                    if let State::Inline {
                        text, len, mask, ..
                    } = next
                    {
                        if w.filled(&self.buf).len() >= len {
                            // The whole frame is here (the common case):
                            // deliver it without a detour through the state.
                            let at = w.start(&self.buf);
                            if let Some(key) = mask {
                                apply_mask(&mut w.bytes(&mut self.buf)[at..at + len], key, 0);
                            }
                            w.consume(&mut self.buf, len);
                            check_text(text, &w.bytes(&mut self.buf)[at..at + len])?;
                            self.ready = Some(W::ready(at, len, text));
                            return Ok(Some(Event::Message(())));
                        }
                    }
                    self.state = next;
                }
                State::Inline {
                    text,
                    len,
                    checked,
                    mask,
                    utf8,
                } => {
                    let (text, len) = (*text, *len);
                    let have = w.filled(&self.buf).len().min(len);
                    if have > *checked {
                        let at = w.start(&self.buf);
                        let chunk = &mut w.bytes(&mut self.buf)[at + *checked..at + have];
                        if let Some(key) = mask {
                            apply_mask(chunk, *key, *checked);
                        }
                        // Whole: checked once below. In pieces: checked as they come.
                        if text && !(*checked == 0 && have == len) {
                            utf8.feed(chunk).map_err(|_| ProtocolError::InvalidUtf8)?;
                        }
                        *checked = have;
                    }
                    if have < len {
                        return Ok(None);
                    }
                    let at = w.start(&self.buf);
                    w.consume(&mut self.buf, len);
                    check_text(text, &w.bytes(&mut self.buf)[at..at + len])?;
                    self.state = State::Header { partial: None };
                    self.ready = Some(W::ready(at, len, text));
                    return Ok(Some(Event::Message(())));
                }
                State::Data { partial, frame } if frame.remaining == 0 => {
                    let partial = *partial;
                    if frame.fin {
                        if partial.compressed {
                            self.finish_inflate(partial)?;
                        }
                        let a = &self.assembly;
                        check_text(partial.text, &a.bytes[..a.filled])?;
                        self.state = State::Header { partial: None };
                        self.ready = Some(Ready::Assembled { text: partial.text });
                        return Ok(Some(Event::Message(())));
                    }
                    self.state = State::Header {
                        partial: Some(partial),
                    };
                }
                State::Data { partial, frame } => {
                    let n = (w.filled(&self.buf).len() as u64).min(frame.remaining) as usize;
                    if n == 0 {
                        return Ok(None);
                    }
                    let a = &mut self.assembly;
                    if partial.compressed {
                        // Unmask in the read buffer, inflate into the message.
                        let at = w.start(&self.buf);
                        let chunk = &mut w.bytes(&mut self.buf)[at..at + n];
                        if let Some(key) = frame.mask {
                            apply_mask(chunk, key, frame.offset);
                        }
                        let inflate = self.inflate.as_deref_mut();
                        inflate_into(inflate, partial, a, chunk, self.limits.max_message_size)?;
                        frame.offset += n;
                        frame.remaining -= n as u64;
                    } else {
                        a.bytes[a.filled..a.filled + n].copy_from_slice(&w.filled(&self.buf)[..n]);
                        a.take(partial, frame, n)?;
                    }
                    w.consume(&mut self.buf, n);
                }
                State::Control {
                    partial,
                    opcode,
                    mask,
                    received,
                } => {
                    let payload = self.control.get_or_insert_with(Default::default);
                    let want = usize::from(payload.len) - *received;
                    let n = w.filled(&self.buf).len().min(want);
                    payload.bytes[*received..*received + n]
                        .copy_from_slice(&w.filled(&self.buf)[..n]);
                    w.consume(&mut self.buf, n);
                    *received += n;
                    if n < want {
                        return Ok(None);
                    }
                    if let Some(key) = mask {
                        apply_mask(&mut payload.bytes[..*received], *key, 0);
                    }
                    let payload = **payload;
                    let event = match opcode {
                        OpCode::Ping => Event::Ping(payload),
                        OpCode::Pong => Event::Pong(payload),
                        _ => {
                            // Nothing is read after a close.
                            self.state = State::Closed;
                            return parse_close(&payload).map(|f| Some(Event::Close(f)));
                        }
                    };
                    self.state = State::Header { partial: *partial };
                    return Ok(Some(event));
                }
            }
        }
    }

    /// Where the payload and how long, if the bytes not parsed yet start with a
    /// whole unfragmented text or binary frame small enough to stay in it,
    /// masked as the role requires and with no RSV bit: most frames. Such a
    /// frame passes every check [`Protocol::begin_frame`] would make, so
    /// [`Protocol::take_small_frame`] skips the general path.
    #[inline]
    fn small_frame<W: Window>(&self, w: &W) -> Option<(usize, usize)> {
        let filled = w.filled(&self.buf);
        let &[b0, b1, ..] = filled else {
            return None;
        };
        let masked = self.role == Role::Server;
        if !matches!(b0, 0x81 | 0x82) || (b1 & 0x80 != 0) != masked {
            return None;
        }
        let (at, len) = match b1 & 0x7f {
            126 => match filled {
                [_, _, hi, lo, ..] => (4, usize::from(u16::from_be_bytes([*hi, *lo]))),
                _ => return None,
            },
            127 => return None,
            len => (2, usize::from(len)),
        };
        let at = at + 4 * usize::from(masked);
        let limits = &self.limits;
        let fits = len <= limits.max_frame_size;
        (fits && len <= limits.max_message_size && filled.len() >= at + len).then_some((at, len))
    }

    /// Delivers the frame [`Protocol::small_frame`] found, unmasked in place;
    /// text that is not UTF-8 closes the protocol, as [`Protocol::poll`] would.
    #[inline]
    fn take_small_frame<W: Window>(
        &mut self,
        w: &mut W,
        head: usize,
        len: usize,
    ) -> Result<Option<Event<()>>, ProtocolError> {
        let start = w.start(&self.buf);
        let server = self.role == Role::Server;
        let bytes = w.bytes(&mut self.buf);
        let (text, at) = (bytes[start] == 0x81, start + head);
        if server {
            let k = &bytes[at - 4..at];
            let key = [k[0], k[1], k[2], k[3]];
            apply_mask(&mut bytes[at..at + len], key, 0);
        }
        if let Err(e) = check_text(text, &bytes[at..at + len]) {
            self.state = State::Closed;
            return Err(e);
        }
        w.consume(&mut self.buf, head + len);
        self.ready = Some(W::ready(at, len, text));
        Ok(Some(Event::Message(())))
    }

    /// Checks a frame header against the connection's state and limits, makes
    /// room for its payload, and gives the state that receives it.
    ///
    /// Generic over the window only to have one copy per window, each with
    /// a single caller: then it is inlined into the parsing loop, which
    /// saves the hot path a call (the read path's instruction count).
    #[allow(clippy::extra_unused_type_parameters)]
    fn begin_frame<W: Window>(
        &mut self,
        h: FrameHeader,
        partial: Option<Partial>,
    ) -> Result<State, ProtocolError> {
        // RSV1 means "compressed" on the first frame of a data message, and
        // only when permessage-deflate was negotiated (RFC 7692 section 6).
        let first_data = partial.is_none() && matches!(h.opcode, OpCode::Text | OpCode::Binary);
        let compressed = h.rsv == 0b100 && first_data && self.inflate.is_some();
        if h.rsv != 0 && !compressed {
            return Err(ProtocolError::ReservedBits(h.rsv));
        }
        match (self.role, h.mask) {
            (Role::Server, None) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, Some(_)) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        if h.opcode.is_control() {
            let payload = self.control.get_or_insert_with(Default::default);
            payload.len = h.payload_len as u8; // at most 125: checked by frame::parse
            return Ok(State::Control {
                partial,
                opcode: h.opcode,
                mask: h.mask,
                received: 0,
            });
        }
        let limits = &self.limits;
        if h.payload_len > limits.max_frame_size as u64 {
            return Err(ProtocolError::FrameTooBig {
                size: h.payload_len,
                limit: limits.max_frame_size,
            });
        }
        let filled = if partial.is_some() {
            self.assembly.filled
        } else {
            0
        };
        let size = filled as u64 + h.payload_len;
        // A compressed message's limit is on what it inflates to: checked
        // by the inflater as the message grows.
        let inflating = compressed || partial.is_some_and(|p| p.compressed);
        if size > limits.max_message_size as u64 && !inflating {
            return Err(ProtocolError::MessageTooBig {
                size,
                limit: limits.max_message_size,
            });
        }
        let len = h.payload_len as usize; // at most max_frame_size, a usize
        let partial = match (partial, h.opcode) {
            (None, OpCode::Continuation) => return Err(ProtocolError::UnexpectedContinuation),
            (Some(_), OpCode::Text | OpCode::Binary) => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            (Some(mut p), _) => {
                p.frames += 1;
                if p.frames > limits.max_fragments {
                    return Err(ProtocolError::TooManyFragments {
                        limit: limits.max_fragments,
                    });
                }
                p
            }
            (None, opcode) => {
                let text = opcode == OpCode::Text;
                if h.fin && len <= self.buf.size && !compressed {
                    // Small and whole: wait for it in the read buffer.
                    return Ok(State::Inline {
                        text,
                        len,
                        checked: 0,
                        mask: h.mask,
                        utf8: Utf8Validator::new(),
                    });
                }
                // A new message: reuse the assembly buffer unless it is
                // large and this message is much smaller.
                self.assembly.filled = 0;
                if self.assembly.bytes.len() > KEEP_ASSEMBLY && len < self.assembly.bytes.len() / 4
                {
                    self.assembly = Assembly::default();
                }
                if compressed {
                    // The inflater appends: the buffer's length is the message so far.
                    self.assembly.bytes.clear();
                }
                Partial {
                    text,
                    compressed,
                    utf8: Utf8Validator::new(),
                    frames: 1,
                }
            }
        };
        if !partial.compressed {
            self.assembly.reserve(len, limits.max_message_size);
            if len > READ_BUFFER_MAX {
                // Read straight into the message: a read buffer grown for
                // it would only hold more of its payload to copy twice.
                self.buf.target = self.buf.size;
            }
        }
        Ok(State::Data {
            partial,
            frame: DataFrame {
                remaining: h.payload_len,
                mask: h.mask,
                offset: 0,
                fin: h.fin,
            },
        })
    }
}

impl Protocol {
    /// Ends a compressed message: the inflater's last output, then its length.
    fn finish_inflate(&mut self, mut partial: Partial) -> Result<(), ProtocolError> {
        let a = &mut self.assembly;
        let Some(inflate) = self.inflate.as_deref_mut() else {
            return Ok(());
        };
        let before = a.bytes.len();
        let result = inflate.finish_message(&mut a.bytes, self.limits.max_message_size);
        a.filled = a.bytes.len();
        check_inflated(&mut partial, &a.bytes[before..])?;
        result.map_err(inflate_error)
    }
}

/// Inflates a piece of a compressed message into the assembly buffer and
/// checks the new text as it comes.
fn inflate_into(
    inflate: Option<&mut Decompressor>,
    partial: &mut Partial,
    a: &mut Assembly,
    compressed: &[u8],
    limit: usize,
) -> Result<(), ProtocolError> {
    let Some(inflate) = inflate else {
        return Ok(());
    };
    let before = a.bytes.len();
    let result = inflate.decompress(compressed, &mut a.bytes, limit);
    a.filled = a.bytes.len();
    check_inflated(partial, &a.bytes[before..])?;
    result.map_err(inflate_error)
}

/// Checks newly inflated text. It runs before an inflate error is reported:
/// text produced before the error comes first in the stream, so the outcome
/// does not depend on how the compressed bytes were read.
fn check_inflated(partial: &mut Partial, new: &[u8]) -> Result<(), ProtocolError> {
    if partial.text {
        partial
            .utf8
            .feed(new)
            .map_err(|_| ProtocolError::InvalidUtf8)?;
    }
    Ok(())
}

#[cfg(not(feature = "deflate"))]
fn inflate_error(e: InflateError) -> ProtocolError {
    match e {}
}

#[cfg(feature = "deflate")]
fn inflate_error(e: InflateError) -> ProtocolError {
    match e {
        InflateError::OutputLimit { limit } => ProtocolError::MessageTooBig {
            size: limit as u64 + 1,
            limit,
        },
        other => ProtocolError::BadCompression(other),
    }
}

/// How long the frame header starting `bytes` is, as far as its first two
/// bytes tell (two until they are there).
fn header_len(bytes: &[u8]) -> usize {
    let Some(&b1) = bytes.get(1) else {
        return 2;
    };
    let len_bytes = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + len_bytes + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Checks a completed text message (fragments were checked as they came;
/// this also catches a message that ends inside a character).
#[inline]
fn check_text(text: bool, bytes: &[u8]) -> Result<(), ProtocolError> {
    match text {
        true => check_utf8(bytes),
        false => Ok(()),
    }
}

fn check_utf8(bytes: &[u8]) -> Result<(), ProtocolError> {
    core::str::from_utf8(bytes).map_or(Err(ProtocolError::InvalidUtf8), |_| Ok(()))
}

/// Reads a close frame's status code and reason.
fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::InvalidClosePayload),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = core::str::from_utf8(reason)
                .map_err(|_| ProtocolError::InvalidCloseReason)?
                .to_owned();
            Ok(Some(CloseFrame { code, reason }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameError;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A frame as a client sends it: masked with `KEY`.
    fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            opcode: OpCode::from_bits(b0 & 0xf).unwrap(),
            mask: Some(KEY),
            payload_len: payload.len() as u64,
        };
        let mut out = [0; frame::MAX_HEADER_LEN];
        let n = header.encode(&mut out);
        let mut bytes = out[..n].to_vec();
        let mut body = payload.to_vec();
        apply_mask(&mut body, KEY, 0);
        bytes.extend_from_slice(&body);
        bytes
    }

    fn server() -> Protocol {
        Protocol::new(Role::Server, Limits::default())
    }

    /// Feeds all of `bytes`, draining events as it goes; stops at the first error.
    fn run(proto: &mut Protocol, bytes: &[u8]) -> Result<Vec<Event>, ProtocolError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        loop {
            while let Some(event) = proto.next_event()? {
                events.push(event);
            }
            if rest.is_empty() || proto.is_closed() {
                return Ok(events);
            }
            let n = proto.feed(rest);
            assert!(n > 0, "no room to read while open");
            rest = &rest[n..];
        }
    }

    fn run_in_pieces(bytes: &[u8], piece: usize) -> Result<Vec<Event>, ProtocolError> {
        let mut proto = server();
        let mut events = Vec::new();
        for chunk in bytes.chunks(piece) {
            events.extend(run(&mut proto, chunk)?);
        }
        Ok(events)
    }

    fn text(s: &str) -> Event {
        Event::Message(Message::Text(s.into()))
    }

    #[test]
    fn decodes_rfc_masked_hello() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(run(&mut server(), &bytes), Ok(vec![text("Hello")]));
    }

    #[test]
    fn client_decodes_rfc_unmasked_and_fragmented_hello() {
        let mut client = Protocol::new(Role::Client, Limits::default());
        let bytes = [
            0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f, // "Hello"
            0x01, 0x03, 0x48, 0x65, 0x6c, // "Hel"
            0x80, 0x02, 0x6c, 0x6f, // "lo"
        ];
        assert_eq!(
            run(&mut client, &bytes),
            Ok(vec![text("Hello"), text("Hello")])
        );
    }

    #[test]
    fn decodes_the_same_whatever_the_read_sizes() {
        let mut bytes = client_frame(0x01, "Hel".as_bytes());
        bytes.extend(client_frame(0x89, b"ping!"));
        bytes.extend(client_frame(0x80, "lo €".as_bytes()));
        bytes.extend(client_frame(0x82, &[7; 300]));
        bytes.extend(client_frame(0x82, &[]));
        let expected = vec![
            Event::Ping(ControlPayload::new(b"ping!").unwrap()),
            text("Hello €"),
            Event::Message(Message::Binary(vec![7; 300])),
            Event::Message(Message::Binary(vec![])),
        ];
        for piece in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(
                run_in_pieces(&bytes, piece),
                Ok(expected.clone()),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn an_idle_connection_holds_half_a_kib_and_a_larger_frame_grows_the_buffer_in_any_reads() {
        // Idle after the handshake: the small buffer.
        let mut proto = server();
        proto.read_buf();
        assert_eq!(proto.memory_held(), IDLE_READ_BUFFER);
        // A frame over that size but under read_buffer_size (delivered in
        // place), in reads of every size (fed in place from a caller's
        // buffer: connection/input_tests.rs, `mixed_stream`).
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let mut bytes = client_frame(0x82, &payload);
        bytes.extend(client_frame(0x81, b"after"));
        let expected = vec![Event::Message(Message::Binary(payload)), text("after")];
        for piece in [1, 100, 511, 512, 513, 4096] {
            assert_eq!(
                run_in_pieces(&bytes, piece),
                Ok(expected.clone()),
                "piece {piece}"
            );
        }
        // Quiet again: back to the small buffer.
        let mut proto = server();
        run(&mut proto, &bytes).unwrap();
        proto.shrink();
        proto.read_buf();
        assert_eq!(proto.memory_held(), IDLE_READ_BUFFER);
    }

    #[test]
    fn reads_large_payloads_straight_into_the_message() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = client_frame(0x82, &payload);
        let mut proto = server();
        let events = run(&mut proto, &bytes).unwrap();
        assert_eq!(events, vec![Event::Message(Message::Binary(payload))]);
        // The read buffer stayed small (it grew only while reads filled
        // it before the header was parsed): the payload went into the message.
        let held = proto.memory_held();
        assert!(held <= Limits::default().read_buffer_size, "{held}");
    }

    #[test]
    fn keeps_every_byte_received_with_the_handshake_then_shrinks_back() {
        let mut bytes = Vec::new();
        for i in 0..100u8 {
            bytes.extend(client_frame(0x82, &[i; 100]));
        }
        let mut proto = Protocol::with_received(Role::Server, Limits::default(), &bytes);
        let events = run(&mut proto, &[]).unwrap();
        assert_eq!(events.len(), 100);
        assert_eq!(events[99], Event::Message(Message::Binary(vec![99; 100])));
        // Before the next read, the buffer goes back to its configured size.
        proto.read_buf();
        assert!(proto.memory_held() <= Limits::default().read_buffer_size);
    }

    #[test]
    fn message_ref_borrows_small_messages_in_place_and_large_ones_from_the_assembly() {
        let mut proto = server();
        let mut bytes = client_frame(0x81, "small €".as_bytes());
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        bytes.extend(client_frame(0x02, &big[..6000]));
        bytes.extend(client_frame(0x89, b"ping"));
        bytes.extend(client_frame(0x80, &big[6000..]));
        let mut rest = &bytes[..];
        let mut seen = Vec::new();
        loop {
            while let Some(event) = proto.poll().unwrap() {
                match event {
                    Event::Message(()) => seen.push(proto.message_ref().unwrap().to_message()),
                    Event::Ping(p) => assert_eq!(&*p, b"ping"),
                    other => panic!("{other:?}"),
                }
            }
            if rest.is_empty() {
                break;
            }
            let n = proto.feed(rest);
            rest = &rest[n..];
        }
        assert_eq!(
            seen,
            vec![Message::Text("small €".into()), Message::Binary(big)]
        );
        // The assembly buffer is kept for the next message, and freed by shrink().
        assert!(proto.memory_held() >= 10_000);
        proto.shrink();
        proto.read_buf(); // the read buffer shrinks before the next read
        assert!(proto.memory_held() <= Limits::default().read_buffer_size);
    }

    #[test]
    fn a_small_text_frame_arriving_in_pieces_is_checked_as_it_comes() {
        let bytes = client_frame(0x81, b"ok \xff and more");
        let mut proto = server();
        assert_eq!(run(&mut proto, &bytes[..6 + 3]), Ok(vec![]));
        assert_eq!(
            run(&mut proto, &bytes[6 + 3..6 + 4]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn take_message_moves_an_assembled_message_out() {
        let payload = vec![5u8; 50_000];
        let mut proto = server();
        let events = run(&mut proto, &client_frame(0x82, &payload)).unwrap();
        assert_eq!(events, vec![Event::Message(Message::Binary(payload))]);
        assert!(
            proto.message_ref().is_none(),
            "taken: nothing left to borrow"
        );
    }

    #[test]
    fn rejects_unmasked_client_frames_with_1002() {
        let err = run(&mut server(), &[0x81, 0x00]).unwrap_err();
        assert_eq!(err, ProtocolError::UnmaskedFrame);
        assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn rejects_masked_server_frames_with_1002() {
        let mut client = Protocol::new(Role::Client, Limits::default());
        let err = run(&mut client, &client_frame(0x81, b"x")).unwrap_err();
        assert_eq!(err, ProtocolError::MaskedFrame);
    }

    #[test]
    fn rejects_rsv_bits_with_1002() {
        for b0 in [0xc1, 0xa1, 0x91, 0xf9] {
            let err = run(&mut server(), &client_frame(b0, b"x")).unwrap_err();
            assert_eq!(err, ProtocolError::ReservedBits((b0 >> 4) & 7));
            assert_eq!(err.close_code().0, 1002);
        }
    }

    #[test]
    fn rejects_continuation_without_a_message_with_1002() {
        let err = run(&mut server(), &client_frame(0x80, b"x")).unwrap_err();
        assert_eq!(err, ProtocolError::UnexpectedContinuation);
    }

    #[test]
    fn rejects_a_new_message_inside_a_fragmented_one_with_1002() {
        let mut bytes = client_frame(0x01, b"a");
        bytes.extend(client_frame(0x81, b"b"));
        let err = run(&mut server(), &bytes).unwrap_err();
        assert_eq!(err, ProtocolError::ExpectedContinuation);
    }

    #[test]
    fn rejects_fragmented_ping_with_1002() {
        let err = run(&mut server(), &client_frame(0x09, b"x")).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::Frame(FrameError::FragmentedControlFrame)
        );
        assert_eq!(err.close_code().0, 1002);
    }

    #[test]
    fn answers_pings_between_fragments() {
        let mut bytes = client_frame(0x01, b"frag1");
        bytes.extend(client_frame(0x89, b"p"));
        bytes.extend(client_frame(0x80, b"frag2"));
        let events = run(&mut server(), &bytes).unwrap();
        assert_eq!(
            events,
            vec![
                Event::Ping(ControlPayload::new(b"p").unwrap()),
                text("frag1frag2")
            ]
        );
    }

    #[test]
    fn fails_fast_on_invalid_utf8_inside_an_unfinished_frame() {
        // Autobahn 6.4.3: the invalid byte arrives; the rest of the frame never does.
        let payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64";
        let bytes = client_frame(0x81, payload);
        let mut proto = server();
        let upto = 6 + 13; // header + bytes through 0xf4 0x90
        assert_eq!(run(&mut proto, &bytes[..upto - 1]), Ok(vec![]));
        assert_eq!(
            run(&mut proto, &bytes[upto - 1..upto]),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn fails_fast_on_invalid_utf8_in_a_fragment_before_the_message_ends() {
        let mut bytes = client_frame(0x01, b"ok");
        bytes.extend(client_frame(0x00, b"\xff"));
        let err = run(&mut server(), &bytes).unwrap_err();
        assert_eq!(
            (err.clone(), err.close_code().0),
            (ProtocolError::InvalidUtf8, 1007)
        );
    }

    #[test]
    fn rejects_a_text_message_ending_inside_a_character_with_1007() {
        let bytes = client_frame(0x81, b"a\xe2\x82");
        assert_eq!(run(&mut server(), &bytes), Err(ProtocolError::InvalidUtf8));
        let mut split = client_frame(0x01, b"a\xe2");
        split.extend(client_frame(0x80, b"\x82"));
        assert_eq!(run(&mut server(), &split), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn accepts_a_character_split_across_fragments() {
        let mut bytes = client_frame(0x01, b"\xe2\x82");
        bytes.extend(client_frame(0x80, b"\xac"));
        assert_eq!(run(&mut server(), &bytes), Ok(vec![text("€")]));
    }

    #[test]
    fn close_frames_are_validated() {
        let close = |payload: &[u8]| run(&mut server(), &client_frame(0x88, payload));
        assert_eq!(close(&[]), Ok(vec![Event::Close(None)]));
        assert_eq!(close(&[0x03]), Err(ProtocolError::InvalidClosePayload));
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let err = close(&code.to_be_bytes()).unwrap_err();
            assert_eq!(err, ProtocolError::InvalidCloseCode(code));
            assert_eq!(err.close_code().0, 1002);
        }
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 3999, 4000, 4999,
        ] {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice("bye ✓".as_bytes());
            let expected = CloseFrame {
                code: CloseCode(code),
                reason: "bye ✓".into(),
            };
            assert_eq!(close(&payload), Ok(vec![Event::Close(Some(expected))]));
        }
        let err = close(&[0x03, 0xe8, 0xff]).unwrap_err();
        assert_eq!(
            (err.clone(), err.close_code().0),
            (ProtocolError::InvalidCloseReason, 1007)
        );
    }

    #[test]
    fn nothing_is_delivered_after_a_close() {
        let mut bytes = client_frame(0x88, &1000u16.to_be_bytes());
        bytes.extend(client_frame(0x81, b"late"));
        let mut proto = server();
        let events = run(&mut proto, &bytes).unwrap();
        assert_eq!(events.len(), 1);
        assert!(proto.is_closed());
        assert!(proto.read_buf().is_empty());
        assert_eq!(proto.next_event(), Ok(None));
    }

    #[test]
    fn rejects_frames_over_the_limit_before_allocating() {
        let limits = Limits {
            max_frame_size: 1000,
            ..Limits::default()
        };
        let mut proto = Protocol::new(Role::Server, limits);
        // A header announcing 2^62 bytes: rejected from the header alone.
        let header = [0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let err = run(&mut proto, &header).unwrap_err();
        assert_eq!(err.close_code().0, 1009);
        assert!(proto.memory_held() <= limits.read_buffer_size);
    }

    #[test]
    fn rejects_messages_over_the_limit_with_1009() {
        let limits = Limits {
            max_message_size: 10,
            ..Limits::default()
        };
        let mut ok = client_frame(0x02, &[1; 5]);
        ok.extend(client_frame(0x80, &[2; 5]));
        assert!(run(&mut Protocol::new(Role::Server, limits), &ok).is_ok());
        let mut over = client_frame(0x02, &[1; 5]);
        over.extend(client_frame(0x80, &[2; 6]));
        let err = run(&mut Protocol::new(Role::Server, limits), &over).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::MessageTooBig {
                size: 11,
                limit: 10
            }
        );
    }

    #[test]
    fn small_whole_frames_get_every_check_the_general_path_makes() {
        // Each arrives whole in one read, which is the small-frame fast path's case.
        let tight = Limits {
            max_message_size: 4,
            max_frame_size: 4,
            ..Limits::default()
        };
        let err = run(
            &mut Protocol::new(Role::Server, tight),
            &client_frame(0x82, &[1; 5]),
        );
        assert!(
            matches!(err, Err(ProtocolError::FrameTooBig { size: 5, .. })),
            "{err:?}"
        );
        let cases: [(Vec<u8>, u16); 4] = [
            (client_frame(0xc1, b"hi"), 1002),         // RSV1 without deflate
            (client_frame(0x81, &[0xff, 0xfe]), 1007), // not UTF-8
            (vec![0x81, 0x02, b'h', b'i'], 1002),      // unmasked, to a server
            (client_frame(0x80, b"hi"), 1002),         // a continuation of nothing
        ];
        for (bytes, code) in cases {
            let err = run(&mut server(), &bytes).unwrap_err();
            assert_eq!(err.close_frame().code.0, code, "{err}");
        }
        // With a 16-bit length too.
        let long = Limits {
            max_frame_size: 299,
            ..Limits::default()
        };
        let err = run(
            &mut Protocol::new(Role::Server, long),
            &client_frame(0x82, &[1; 300]),
        );
        assert!(
            matches!(err, Err(ProtocolError::FrameTooBig { size: 300, .. })),
            "{err:?}"
        );
        let ok = run(&mut server(), &client_frame(0x82, &[1; 300])).unwrap();
        assert_eq!(ok, [Event::Message(Message::Binary(vec![1; 300]))]);
        // A client gets unmasked frames, and refuses masked ones.
        let mut client = Protocol::new(Role::Client, Limits::default());
        assert_eq!(
            run(&mut client, &[0x82, 0x01, 7]).unwrap(),
            [Event::Message(Message::Binary(vec![7]))]
        );
        let err = run(
            &mut Protocol::new(Role::Client, Limits::default()),
            &client_frame(0x82, &[7]),
        );
        assert_eq!(err, Err(ProtocolError::MaskedFrame));
        // Two whole frames in one read come out one at a time, both in place.
        let mut two = client_frame(0x81, b"one");
        two.extend(client_frame(0x82, b"two"));
        let mut proto = server();
        proto.feed(&two);
        assert!(matches!(proto.poll(), Ok(Some(Event::Message(())))));
        assert_eq!(proto.message_ref(), Some(MessageRef::Text("one")));
        assert!(matches!(proto.poll(), Ok(Some(Event::Message(())))));
        assert_eq!(proto.message_ref(), Some(MessageRef::Binary(b"two")));
        assert_eq!(proto.poll(), Ok(None));
    }

    #[test]
    fn counts_empty_fragments_against_the_fragment_limit() {
        let limits = Limits {
            max_fragments: 3,
            ..Limits::default()
        };
        let mut bytes = client_frame(0x01, b"");
        bytes.extend(client_frame(0x00, b""));
        bytes.extend(client_frame(0x00, b""));
        bytes.extend(client_frame(0x00, b""));
        let err = run(&mut Protocol::new(Role::Server, limits), &bytes).unwrap_err();
        assert_eq!(err, ProtocolError::TooManyFragments { limit: 3 });
        assert_eq!(err.close_code().0, 1009);
    }

    #[test]
    fn after_an_error_the_protocol_is_closed() {
        let mut proto = server();
        assert!(run(&mut proto, &[0x81, 0x00]).is_err());
        assert!(proto.is_closed());
        assert_eq!(proto.next_event(), Ok(None));
    }

    #[test]
    fn error_messages_name_the_close_code() {
        assert_eq!(
            ProtocolError::InvalidUtf8.to_string(),
            "text message is not valid UTF-8 (close code 1007)"
        );
    }

    /// Feeds `bytes` and collects each message, borrowed then copied.
    fn messages_of(proto: &mut Protocol, bytes: &[u8]) -> Vec<Message> {
        let mut rest = bytes;
        let mut seen = Vec::new();
        loop {
            while let Some(event) = proto.poll().unwrap() {
                assert!(matches!(event, Event::Message(())), "{event:?}");
                seen.push(proto.message_ref().unwrap().to_message());
            }
            if rest.is_empty() {
                return seen;
            }
            let n = proto.feed(rest);
            rest = &rest[n..];
        }
    }

    #[test]
    fn a_much_smaller_message_after_a_large_one_gives_the_large_buffer_back() {
        let mut proto = server();
        // Over the 64 KiB kept for the next message, and fragmented, so
        // that both messages are assembled rather than read in place.
        let big = vec![7u8; 80 << 10];
        let mut bytes = client_frame(0x02, &big[..40 << 10]);
        bytes.extend(client_frame(0x80, &big[40 << 10..]));
        assert_eq!(messages_of(&mut proto, &bytes), [Message::Binary(big)]);
        assert!(proto.message_memory() >= 80 << 10);
        let mut bytes = client_frame(0x01, b"sm");
        bytes.extend(client_frame(0x80, b"all"));
        assert_eq!(messages_of(&mut proto, &bytes), [Message::from("small")]);
        let held = proto.message_memory();
        assert!(
            held <= KEEP_ASSEMBLY,
            "{held} bytes kept for a 5-byte message"
        );
    }

    #[test]
    fn a_protocol_knows_its_role() {
        assert_eq!(server().role(), Role::Server);
        assert_eq!(
            Protocol::new(Role::Client, Limits::default()).role(),
            Role::Client
        );
    }

    #[test]
    fn a_control_payload_shows_its_bytes_and_refuses_over_125() {
        let payload = ControlPayload::new(b"hi").unwrap();
        assert_eq!(format!("{payload:?}"), "ControlPayload([104, 105])");
        assert!(ControlPayload::new(&[0; 125]).is_some());
        assert!(ControlPayload::new(&[0; 126]).is_none());
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn a_message_that_does_not_inflate_fails_with_1007_and_says_so() {
        let e = ProtocolError::BadCompression(InflateError::Truncated);
        assert_eq!(e.close_code(), CloseCode::INVALID_DATA);
        let text = e.to_string();
        assert!(text.starts_with("compressed message: "), "{text}");
        assert!(text.contains("block boundary"), "{text}");
        assert!(text.ends_with("(close code 1007)"), "{text}");
        assert_eq!(e.close_frame().reason, text);
    }
}
