//! One WebSocket connection, both directions, without IO: bytes in, events
//! out; sends in, bytes out; deadlines with the time passed in.
//!
//! The RFC's reactions happen inside it: a ping is answered with a pong
//! (between the fragments of a message too), the peer's close is echoed,
//! a protocol error queues a close frame with the right code, data that
//! arrives after our close is dropped, and nothing is read after the
//! peer's close. The driver reads, writes and waits; [`Connection::is_finished`]
//! says when to close TCP.

use super::error::{ProtocolError, SendError};
#[cfg(feature = "deflate")]
use super::extensions::permessage_deflate::PerMessageDeflate;
use super::inbound::{Event, Lent, Protocol};
use super::outbound::{close_payload, MaskKeys, Outbound, Payload};
pub use super::timers::Timeouts;
use super::timers::{Expired, SendQueue, TimerAction, Timers};
use crate::frame::{OpCode, Role};
use crate::instant::Instant;
use crate::limits::Limits;
use crate::message::{CloseCode, CloseFrame, Message, MessageRef};
use alloc::boxed::Box;
use core::time::Duration;

/// Where a connection's sending half lives: in the connection (an
/// [`Outbound`]), or behind a driver's lock so that other threads can send
/// on the connection too.
pub trait Outlet {
    /// Runs `f` on the sending half.
    fn with<R>(&mut self, f: impl FnOnce(&mut Outbound) -> R) -> R;
    /// Looks at the sending half.
    fn peek<R>(&self, f: impl FnOnce(&Outbound) -> R) -> R;
    /// Whether our close frame went out (or the stream broke); asked for
    /// every message received, so it should not take a lock.
    #[inline]
    fn close_sent(&self) -> bool {
        self.peek(Outbound::is_closed)
    }
    /// Bytes waiting to be written.
    fn pending(&self) -> usize {
        self.peek(Outbound::pending)
    }
}

impl Outlet for Outbound {
    #[inline]
    fn with<R>(&mut self, f: impl FnOnce(&mut Outbound) -> R) -> R {
        f(self)
    }
    #[inline]
    fn peek<R>(&self, f: impl FnOnce(&Outbound) -> R) -> R {
        f(self)
    }
}

/// A WebSocket connection as a state machine.
///
/// ```
/// use stdws::proto::{Connection, Event};
/// use stdws::Message;
/// let mut server = Connection::server(Default::default());
/// // RFC 6455 5.7: a masked "Hello", then a ping.
/// server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// server.receive(&[0x89, 0x80, 0, 0, 0, 0]);
/// assert_eq!(server.next_event(), Ok(Some(Event::Message(Message::from("Hello")))));
/// assert!(matches!(server.next_event(), Ok(Some(Event::Ping(_)))));
/// // The pong is already queued.
/// let mut out = [&[][..]; 4];
/// let n = server.output(&mut out);
/// assert_eq!(out[..n].concat(), [0x8a, 0x00]);
/// ```
#[derive(Debug)]
pub struct Connection<O = Outbound> {
    inbound: Protocol,
    outbound: O,
    /// Set with the timeouts, which it keeps: only then is there a time to
    /// start from.
    timers: Option<Timers>,
    /// Bytes arrived since the last [`Connection::handle_timeout`].
    heard: bool,
    /// Bytes written since the last [`Connection::handle_timeout`].
    took: bool,
    /// Bytes written so far, for keepalive's view of the send queue.
    written: u64,
    /// A driver that writes frames itself has one under way.
    writing: bool,
    /// Since when output has waited without any of it being written.
    stalled_since: Option<Instant>,
    /// When a driver's outlet last wrote bytes while output still waited.
    took_at: Option<Instant>,
    /// When our close was first seen queued, for the close timeout.
    close_sent_at: Option<Instant>,
    /// The peer's close frame, once it arrived (`Some(None)`: it had no
    /// code); boxed, as few connections hold one for long.
    peer_close: Option<Box<Option<CloseFrame>>>,
    end: End,
    /// The code of the first failure or expiry: what [`Connection::failure`] reports.
    first_failure: Option<CloseCode>,
}

/// What [`Connection::step`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A data message: [`Connection::message_ref`] lends it.
    Message,
    /// A ping, already answered.
    Ping,
    /// A pong.
    Pong,
    /// The peer's close, already echoed; nothing more is read.
    Close,
    /// More bytes are needed, or nothing more is read.
    Wait,
}

/// How the connection ended, once it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Not ended (a close handshake may be under way).
    Running,
    /// The peer broke the protocol; our close says why.
    Failed(CloseCode),
    /// A deadline passed.
    Expired(Expired),
}

impl Connection {
    /// The server end, with `limits` on what the client may send.
    pub fn server(limits: Limits) -> Self {
        Self::from_parts(Protocol::new(Role::Server, limits), Outbound::server())
    }

    /// The client end, masking each frame with a key from `keys`.
    pub fn client(limits: Limits, keys: Box<dyn MaskKeys>) -> Self {
        Self::from_parts(Protocol::new(Role::Client, limits), Outbound::client(keys))
    }
}

impl<O: Outlet> Connection<O> {
    /// A connection from its two halves: for a driver that keeps the
    /// sending half where other threads can reach it.
    pub(crate) fn from_parts(inbound: Protocol, outbound: O) -> Self {
        Connection {
            inbound,
            outbound,
            timers: None,
            heard: false,
            took: false,
            written: 0,
            writing: false,
            stalled_since: None,
            took_at: None,
            close_sent_at: None,
            peer_close: None,
            end: End::Running,
            first_failure: None,
        }
    }

    /// Starts the deadlines at `now`.
    pub fn set_timeouts(&mut self, timeouts: Timeouts, now: Instant) {
        self.timers = Some(Timers::new(timeouts, now));
    }

    /// The timeouts set; all off until [`Connection::set_timeouts`].
    fn timeouts(&self) -> Timeouts {
        self.timers
            .as_ref()
            .map(Timers::timeouts)
            .unwrap_or_default()
    }

    /// Turns on permessage-deflate as the handshake agreed.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, deflate: PerMessageDeflate) {
        let (compressor, decompressor) = deflate.split();
        self.inbound.enable_deflate(decompressor);
        self.outbound.with(|o| o.enable_deflate(compressor));
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.inbound.role()
    }

    // ---- bytes in ----------------------------------------------------

    /// Where the next bytes from the peer should be read into: no copy.
    /// Take every event first ([`Connection::poll`] until `Ok(None)`);
    /// only then is there always room. Empty once nothing more is read.
    #[inline]
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.inbound.read_buf()
    }

    /// Whether [`Connection::read_buf`] offers room in the message being
    /// received (a large frame's payload, read there uncopied) rather than
    /// a read buffer: a driver that reads into a buffer of its own for
    /// [`Connection::input`] reads there instead, then. Allocates nothing.
    #[inline]
    pub fn reads_into_message(&self) -> bool {
        self.inbound.reads_into_message()
    }

    /// Records that `n` bytes were read into [`Connection::read_buf`].
    #[inline]
    pub fn commit(&mut self, n: usize) {
        self.heard |= n > 0;
        self.inbound.commit(n);
    }

    /// Copies bytes read into a buffer of the caller's into the connection,
    /// as many as fit; returns how many. Call it again with the rest after
    /// taking the events. [`Connection::input`] parses them in place instead.
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let n = self.inbound.feed(bytes);
        self.heard |= n > 0;
        n
    }

    /// Hands the connection bytes that sit in a buffer of the caller's (a
    /// loop-wide read buffer, say), to be parsed where they lie: the
    /// returned [`Input`] gives the events, as [`Connection::poll`] does,
    /// with small messages lent straight from `bytes` (unmasked there).
    /// When it is dropped, only what is left unparsed (the start of a frame)
    /// is copied into the connection; between frames it holds no read buffer.
    ///
    /// ```
    /// use stdws::proto::{Connection, Event};
    /// use stdws::MessageRef;
    /// let mut server = Connection::server(Default::default());
    /// // One read into a loop-wide buffer: a masked "Hello" (RFC 6455 5.7),
    /// // then the first 3 bytes of a ping's 6-byte header.
    /// let mut buf = [0u8; 4096];
    /// let wire = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0x89, 0x80, 0];
    /// buf[..wire.len()].copy_from_slice(&wire);
    /// let mut input = server.input(&mut buf[..wire.len()]);
    /// assert_eq!(input.poll(), Ok(Some(Event::Message(()))));
    /// assert_eq!(input.message_ref(), Some(MessageRef::Text("Hello"))); // in `buf`
    /// assert_eq!(input.poll(), Ok(None));
    /// drop(input); // the connection keeps the 3 bytes
    ///
    /// let mut buf = [0u8; 3]; // the next read: the rest of the ping
    /// let mut input = server.input(&mut buf);
    /// assert!(matches!(input.poll(), Ok(Some(Event::Ping(_))))); // answered
    /// assert_eq!(input.poll(), Ok(None));
    /// drop(input);
    /// let mut out = [&[][..]; 4];
    /// let n = server.output(&mut out);
    /// assert_eq!(out[..n].concat(), [0x8a, 0x00]); // the pong
    /// assert!(server.memory_held() < 64); // its queue, and no read buffer
    /// ```
    pub fn input<'c, 'b>(&'c mut self, bytes: &'b mut [u8]) -> Input<'c, 'b, O> {
        self.heard |= !bytes.is_empty();
        Input {
            conn: self,
            lent: Lent::new(bytes),
        }
    }

    /// Bytes from the peer arrived at `now`: it is alive. A driver that
    /// knows the time calls it after [`Connection::commit`]; otherwise the
    /// next [`Connection::handle_timeout`] counts them (a tick late at most).
    #[inline]
    pub fn heard(&mut self, now: Instant) {
        self.heard = false;
        if let Some(timers) = &mut self.timers {
            timers.heard(now);
        }
    }

    /// Whether more bytes from the peer are wanted: neither its close
    /// arrived nor the connection failed.
    #[inline]
    pub fn wants_read(&self) -> bool {
        !self.inbound.is_closed()
    }

    // ---- events out ----------------------------------------------------

    /// The next event, reacting as RFC 6455 requires; for a message,
    /// [`Connection::message_ref`] lends it and [`Connection::take_message`]
    /// takes it. `Ok(None)`: more bytes are needed (or nothing more is read).
    ///
    /// An error fails the connection: the close frame with its code is
    /// queued, and nothing more is read.
    pub fn poll(&mut self) -> Result<Option<Event<()>>, ProtocolError> {
        let step = self.step()?;
        Ok(self.event_of(step))
    }

    /// The event a [`Step`] reports.
    #[inline]
    fn event_of(&self, step: Step) -> Option<Event<()>> {
        Some(match step {
            Step::Wait => return None,
            Step::Message => Event::Message(()),
            Step::Ping => Event::Ping(self.inbound.control()),
            Step::Pong => Event::Pong(self.inbound.control()),
            Step::Close => Event::Close(self.peer_close.as_deref().cloned().flatten()),
        })
    }

    /// [`Connection::poll`] without copying a control payload out: what a
    /// driver needs to know. The reactions happen here.
    #[inline]
    pub(crate) fn step(&mut self) -> Result<Step, ProtocolError> {
        self.step_with(Protocol::poll)
    }

    /// [`Connection::step`] with the receiver polled by `poll`: from the
    /// read buffer, or from a caller's buffer ([`Input`]).
    #[inline(always)]
    fn step_with(
        &mut self,
        mut poll: impl FnMut(&mut Protocol) -> Result<Option<Event<()>>, ProtocolError>,
    ) -> Result<Step, ProtocolError> {
        loop {
            return match poll(&mut self.inbound) {
                // Data after our close frame is read but not delivered (RFC 6455 1.4).
                Ok(Some(Event::Message(()))) if self.outbound.close_sent() => continue,
                Ok(Some(Event::Message(()))) => Ok(Step::Message),
                Ok(Some(Event::Ping(payload))) => {
                    // Closing: no pong needed.
                    let _ = self.send_frame(OpCode::Pong, &payload);
                    Ok(Step::Ping)
                }
                Ok(Some(Event::Pong(_))) => Ok(Step::Pong),
                Ok(Some(Event::Close(frame))) => {
                    self.on_close(frame);
                    Ok(Step::Close)
                }
                Ok(None) => Ok(Step::Wait),
                Err(e) => Err(self.fail(e)),
            };
        }
    }

    /// The peer's close: echo its status code, as RFC 6455 5.5.1 suggests.
    #[cold]
    fn on_close(&mut self, frame: Option<CloseFrame>) {
        let code = frame.as_ref().map(|f| f.code.0.to_be_bytes());
        let _ = self.send_frame(OpCode::Close, code.as_ref().map_or(&[], |c| &c[..]));
        self.peer_close = Some(Box::new(frame));
    }

    /// The message the last [`Connection::poll`] reported, lent in place.
    #[inline]
    pub fn message_ref(&self) -> Option<MessageRef<'_>> {
        self.inbound.message_ref()
    }

    /// Takes the message the last [`Connection::poll`] reported.
    #[inline]
    pub fn take_message(&mut self) -> Option<Message> {
        self.inbound.take_message()
    }

    /// [`Connection::poll`] with the message owned.
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        Ok(match self.poll()? {
            None => None,
            Some(event) => event.owned(|| self.take_message()),
        })
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        let frame = e.close_frame();
        if let Ok(payload) = close_payload(frame.code, &frame.reason) {
            let _ = self.send_frame(OpCode::Close, &payload);
        }
        self.end = End::Failed(frame.code);
        self.first_failure.get_or_insert(frame.code);
        e
    }

    /// The peer's close frame, once one arrived; the inner `None` means it
    /// had no status code.
    pub fn peer_close_frame(&self) -> Option<Option<&CloseFrame>> {
        self.peer_close.as_deref().map(Option::as_ref)
    }

    // ---- sends in --------------------------------------------------------

    /// Queues a message; an owned payload is not copied.
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), SendError> {
        let msg = msg.into();
        let opcode = opcode_of(&msg);
        self.outbound
            .with(|o| o.send(opcode, Payload::Owned(msg.into_bytes()), true))
    }

    /// Queues a borrowed message (copied into the output).
    pub fn send_ref<'m>(&mut self, msg: impl Into<MessageRef<'m>>) -> Result<(), SendError> {
        let msg = msg.into();
        self.send_frame(opcode_of(msg), msg.as_bytes())
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), SendError> {
        self.send_frame(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), SendError> {
        self.send_frame(OpCode::Binary, data)
    }

    /// Queues one fragment of a message: the first with `opcode` Text or
    /// Binary, the rest with Continuation; `fin` on the last. Pings, pongs
    /// and closes may go between fragments. Fragments are not compressed.
    pub fn send_fragment(
        &mut self,
        opcode: OpCode,
        data: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        if opcode.is_control() {
            return Err(SendError::InvalidInput(
                "control frames cannot be fragmented",
            ));
        }
        self.outbound
            .with(|o| o.send(opcode, Payload::Borrowed(data), fin))
    }

    /// Queues a ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame(OpCode::Ping, payload)
    }

    /// Queues an unsolicited pong with up to 125 bytes of payload.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame(OpCode::Pong, payload)
    }

    /// Starts the close handshake (or answers the peer's close); closing
    /// twice is a no-op. Keep reading until [`Connection::is_finished`].
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        match self.outbound.with(|o| o.close(code, reason)) {
            Err(SendError::Closed) => Ok(()),
            other => other,
        }
    }

    fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), SendError> {
        self.outbound
            .with(|o| o.send(opcode, Payload::Borrowed(payload), true))
    }

    /// The sending half, for a driver that writes frames itself.
    pub fn outlet(&mut self) -> &mut O {
        &mut self.outbound
    }

    /// Tells keepalive about frames a driver writes itself, outside the
    /// connection's output: the bytes written so far, and whether a write
    /// is under way (then a late pong may be waiting behind it, and only
    /// the write's own deadline can end the connection).
    pub fn wrote(&mut self, written: u64, writing: bool, now: Instant) {
        if written != self.written && self.writing {
            // A write that was under way has finished: the peer took bytes.
            self.heard(now);
        }
        self.written = written;
        self.writing = writing;
    }

    /// For a driver whose sending half writes its own output (an [`Outlet`]
    /// shared with other threads): `written` bytes of output are written
    /// so far, in all, the last of them at `at` if output still waited
    /// then (the write deadline runs from there, not from this call). The
    /// write deadline and keepalive count them as [`Connection::advance_output`] does.
    pub fn output_written(&mut self, written: u64, at: Option<Instant>) {
        if written != self.written {
            self.took = true;
            self.took_at = at;
        }
        self.written = written;
    }

    // ---- time ----------------------------------------------------------------

    /// The shortest configured deadline: how often a driver that polls
    /// (rather than waiting for [`Connection::poll_timeout`]) should call
    /// [`Connection::handle_timeout`]. Deadlines are met within one tick.
    pub fn tick(&self) -> Option<Duration> {
        let timers = self.timers.as_ref().and_then(Timers::tick);
        [timers, self.timeouts().close, self.timeouts().write]
            .into_iter()
            .flatten()
            .min()
            .map(|d| d.max(Duration::from_millis(1)))
    }

    /// When [`Connection::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let write = self
            .stalled_since
            .zip(self.timeouts().write)
            .map(|(s, d)| s + d);
        let close = self
            .close_sent_at
            .zip(self.timeouts().close)
            .map(|(s, d)| s + d);
        let timers = self.timers.as_ref().and_then(Timers::next_deadline);
        [timers, write, close].into_iter().flatten().min()
    }

    /// Acts on the deadlines at `now`: sends a keepalive ping, or ends the
    /// connection (a close 1001 is queued, where one can still go out) and
    /// says which deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Expired> {
        self.handle_timeout_with(now, || None)
    }

    /// [`Connection::handle_timeout`] for a driver that can tell how many
    /// written bytes the peer has not acknowledged (TCP on Linux): a late
    /// pong that waits behind data the peer is still taking is forgiven.
    /// `unacked` is asked only at a pong deadline.
    pub fn handle_timeout_with(
        &mut self,
        now: Instant,
        unacked: impl FnOnce() -> Option<u64>,
    ) -> Option<Expired> {
        if let End::Expired(why) = self.end {
            return Some(why);
        }
        let pending = self.outbound.pending() > 0;
        if core::mem::take(&mut self.heard) {
            self.heard(now);
        }
        if core::mem::take(&mut self.took) {
            // The peer took bytes that waited: it is alive.
            if self.stalled_since.is_some() {
                self.heard(now);
            }
            let at = self.took_at.take().unwrap_or(now);
            self.stalled_since = pending.then_some(at);
        } else if !pending {
            self.stalled_since = None;
        } else if self.stalled_since.is_none() {
            self.stalled_since = Some(now);
        }
        let why = self.expired_at(now, unacked)?;
        self.end = End::Expired(why);
        self.first_failure.get_or_insert(CloseCode::GOING_AWAY);
        match why {
            // Nothing can be written: shut down at once.
            Expired::SendStalled(_) => self.outbound.with(Outbound::write_failed),
            _ => {
                if let Ok(payload) = close_payload(CloseCode::GOING_AWAY, "timeout") {
                    let _ = self.send_frame(OpCode::Close, &payload);
                }
            }
        }
        Some(why)
    }

    fn expired_at(
        &mut self,
        now: Instant,
        unacked: impl FnOnce() -> Option<u64>,
    ) -> Option<Expired> {
        if let (Some(since), Some(limit)) = (self.stalled_since, self.timeouts().write) {
            if now.saturating_duration_since(since) >= limit {
                return Some(Expired::SendStalled(limit));
            }
        }
        if self.outbound.close_sent() && self.peer_close.is_none() {
            let at = *self.close_sent_at.get_or_insert(now);
            if let Some(limit) = self.timeouts().close {
                if now.saturating_duration_since(at) >= limit {
                    return Some(Expired::CloseTimeout(limit));
                }
            }
        }
        let written = self.written;
        let queue = || SendQueue {
            written,
            unacked: unacked(),
        };
        let Some(timers) = &mut self.timers else {
            return None;
        };
        let writing = self.writing || self.outbound.pending() > 0;
        match timers.poll_sending(now, written, queue) {
            TimerAction::Wait => None,
            // The pong may be waiting behind what is being written: the
            // write's own deadline decides.
            TimerAction::Expire(Expired::NoPong(_)) if writing => None,
            TimerAction::SendPing => {
                // While closing, the "ping" only starts the wait for the reply.
                let _ = self.send_frame(OpCode::Ping, &[]);
                None
            }
            TimerAction::Expire(why) => Some(why),
        }
    }

    // ---- the end ---------------------------------------------------------------

    /// Whether the connection is over and TCP should be closed (after a
    /// linger, by a server): both close frames went, or it failed or timed
    /// out and its last bytes are written, or a write broke it.
    pub fn is_finished(&self) -> bool {
        let (broken, closed, pending) = self
            .outbound
            .peek(|o| (o.is_broken(), o.is_closed(), o.pending()));
        let done = match self.end {
            End::Running => self.peer_close.is_some() && closed,
            End::Failed(_) | End::Expired(_) => true,
        };
        broken || (done && pending == 0)
    }

    /// Whether our close frame is queued or written: nothing more can be sent.
    pub fn close_sent(&self) -> bool {
        self.outbound.close_sent()
    }

    /// The close code the connection failed or timed out with, if it did:
    /// the first of them, should both happen.
    pub fn failure(&self) -> Option<CloseCode> {
        self.first_failure
    }

    /// Bytes this connection holds now: buffers, assembly, queue, codec.
    pub fn memory_held(&self) -> usize {
        self.inbound.memory_held() + self.outbound.peek(Outbound::memory_held)
    }

    /// Whether every byte read so far has been parsed: [`Connection::poll`]
    /// has nothing more before the next read. A driver that holds replies
    /// back to write them together can write them once this holds.
    #[inline]
    pub fn is_drained(&self) -> bool {
        self.inbound.is_drained()
    }

    /// The receiving half's memory: for assembling messages, and in all.
    pub(crate) fn inbound_memory(&self) -> (usize, usize) {
        (self.inbound.message_memory(), self.inbound.memory_held())
    }

    /// Gives back buffers grown for large messages, and the send queue's
    /// while it is empty; for an idle connection.
    pub fn shrink(&mut self) {
        self.inbound.shrink();
        self.outbound.with(Outbound::shrink);
    }
}

impl Connection {
    /// The bytes waiting to be written, as up to `out.len()` slices in
    /// order, for one vectored write; returns how many were filled.
    pub fn output<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        self.outbound.output(out)
    }

    /// Bytes waiting to be written: the backpressure to watch.
    pub fn pending_output(&self) -> usize {
        self.outbound.pending()
    }

    /// Records that the first `n` bytes of the output were written.
    pub fn advance_output(&mut self, n: usize) {
        self.took |= n > 0;
        self.written += n as u64;
        self.outbound.advance(n);
    }

    /// A write failed or was cut short: nothing more is written, and the
    /// only step left is shutting the stream down.
    pub fn write_failed(&mut self) {
        self.outbound.write_failed();
    }
}

/// Bytes lent by the caller, being parsed in place: from
/// [`Connection::input`]. Take its events with [`Input::poll`] until
/// `Ok(None)`; the RFC's reactions (pongs, the close echo, the close frame
/// of a failure) are queued on the connection as they are found. A message
/// is lent until the next poll or the end of the guard. Dropping it keeps
/// what is left unparsed, every byte, for the next input or read.
#[derive(Debug)]
pub struct Input<'c, 'b, O: Outlet = Outbound> {
    conn: &'c mut Connection<O>,
    lent: Lent<'b>,
}

impl<O: Outlet> Input<'_, '_, O> {
    /// The next event, as [`Connection::poll`] gives it.
    pub fn poll(&mut self) -> Result<Option<Event<()>>, ProtocolError> {
        let step = self.step()?;
        Ok(self.conn.event_of(step))
    }

    /// [`Input::poll`] without copying a control payload out, as
    /// [`Connection::step`].
    #[inline]
    pub(crate) fn step(&mut self) -> Result<Step, ProtocolError> {
        let lent = &mut self.lent;
        self.conn.step_with(|inbound| inbound.poll_lent(lent))
    }

    /// The message the last [`Input::poll`] reported: a small one straight
    /// from the caller's buffer, a large or fragmented one from the assembly.
    #[inline]
    pub fn message_ref(&self) -> Option<MessageRef<'_>> {
        self.conn.inbound.message_in(self.lent.all())
    }

    /// Takes the message the last [`Input::poll`] reported (one lent from
    /// the caller's buffer is copied).
    pub fn take_message(&mut self) -> Option<Message> {
        self.conn.inbound.take_in(self.lent.all())
    }

    /// [`Input::poll`] with the message owned.
    pub fn next_event(&mut self) -> Result<Option<Event>, ProtocolError> {
        Ok(match self.poll()? {
            None => None,
            Some(event) => event.owned(|| self.take_message()),
        })
    }

    /// The connection, to send on between events. Its own bytes-in methods
    /// must wait for the end of this guard, or bytes would go out of order.
    pub fn connection(&mut self) -> &mut Connection<O> {
        self.conn
    }
}

impl<O: Outlet> Drop for Input<'_, '_, O> {
    fn drop(&mut self) {
        self.conn.inbound.finish_lent(&self.lent);
    }
}

/// The opcode a message goes out with.
pub(crate) fn opcode_of<'m>(msg: impl Into<MessageRef<'m>>) -> OpCode {
    match msg.into() {
        MessageRef::Text(_) => OpCode::Text,
        MessageRef::Binary(_) => OpCode::Binary,
    }
}

/// A ping or pong payload, for tests.
#[cfg(test)]
fn payload(bytes: &[u8]) -> super::control::ControlPayload {
    super::control::ControlPayload::new(bytes).unwrap()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod input_tests;
