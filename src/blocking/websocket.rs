//! A blocking WebSocket over any `Read + Write` stream.
//!
//! [`WebSocket`] drives the sans-IO [`Protocol`] with a stream: it reads into
//! the protocol's buffer, answers pings and closes as RFC 6455 requires, fails
//! the connection with the right close code, and writes each frame's header
//! and payload with one vectored write.

use super::io::{is_timeout, read_request, read_some, write_all_vectored};
use super::stream::DuplexStream;
use crate::blocking::random::OsRandom;
use crate::error::Error;
use crate::frame::Role;
use crate::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::http::{self, Request};
use crate::limits::Limits;
use crate::mask::apply_mask;
use crate::message::CloseCode;
use crate::message::CloseFrame;
use crate::message::Message;
use crate::message::MessageRef;
use crate::proto::extensions::permessage_deflate::{Compressor, PerMessageDeflate};
use crate::proto::inbound::{Event, Protocol};
use crate::proto::{Expired, Keepalive, SendQueue, TimerAction, Timers};
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest close reason: a control payload of 125 bytes less the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A WebSocket connection over a blocking stream.
///
/// `recv` returns data messages; pings are answered and closes are echoed
/// inside it. After the close handshake `recv` returns `Ok(None)`.
///
/// ```no_run
/// use std::net::TcpListener;
/// use stdws::WebSocket;
/// let listener = TcpListener::bind("127.0.0.1:9001")?;
/// for stream in listener.incoming() {
///     let mut ws = WebSocket::accept(stream?)?;
///     while let Some(msg) = ws.recv()? {
///         ws.send(msg)?;
///     }
/// }
/// # Ok::<(), stdws::Error>(())
/// ```
#[derive(Debug)]
pub struct WebSocket<S> {
    stream: S,
    proto: Protocol,
    out: Outbound,
    /// The peer's close frame, once it arrived (`Some(None)`: it had no code).
    peer_close: Option<Option<CloseFrame>>,
    timers: Timers,
    /// Writes finished by the last tick, if one was under way then: when
    /// that count moves, a write that waited for the peer has finished.
    waiting_write: Option<u64>,
    request: Option<Request>,
    protocol: Option<String>,
}

/// The object-safe part of [`DuplexStream`]: what a [`Sender`] writes to,
/// and shuts down without taking the write lock.
trait Sink: Write + Send + Sync {
    fn shut(&self) -> io::Result<()>;
    fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn unacked_bytes(&self) -> Option<u64>;
    fn wait_room(&self) -> io::Result<()>;
}

impl<T: DuplexStream> Sink for T {
    fn shut(&self) -> io::Result<()> {
        self.shutdown()
    }
    fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_write_timeout(timeout)
    }
    fn unacked_bytes(&self) -> Option<u64> {
        self.unacked()
    }
    fn wait_room(&self) -> io::Result<()> {
        self.wait_for_room()
    }
}

/// A frame (or a batch of fed ones) being written: the stream's write
/// timeout bounds all of it, not each `write` call, so that a peer that
/// takes a trickle cannot hold a writer for ever.
struct Deadline<'a> {
    sink: &'a mut dyn Sink,
    /// The stream's write timeout: the bound on the whole frame.
    limit: Duration,
    /// Counts the bytes written (see [`Shared::written`]).
    written: &'a AtomicU64,
    /// When the frame's time began: at the first write of a large frame,
    /// at the first partial write of a small one (see [`Deadline::call`]).
    start: Option<Instant>,
    /// Write calls so far; the first runs with the stream's own timeout.
    calls: u32,
}

/// Frames from this size on start their clock before the first write.
const TIMED_FRAME: usize = 64 << 10;

impl<'a> Deadline<'a> {
    fn new(sink: &'a mut dyn Sink, limit: Duration, written: &'a AtomicU64) -> Self {
        Deadline {
            sink,
            limit,
            written,
            start: None,
            calls: 0,
        }
    }

    /// One write call of `len` bytes, within what is left of the frame's time.
    #[inline]
    fn call(
        &mut self,
        len: usize,
        write: impl FnOnce(&mut dyn Sink) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.calls > 0 || len >= TIMED_FRAME {
            self.start_or_shorten()?;
        }
        self.calls += 1;
        match write(self.sink) {
            Ok(n) => {
                // Only the lock holder counts, so a load and a store suffice.
                let written = self.written;
                written.store(
                    written.load(Ordering::Relaxed) + n as u64,
                    Ordering::Relaxed,
                );
                Ok(n)
            }
            Err(e) if is_timeout(&e) => Err(write_timed_out(self.limit)),
            Err(e) => Err(e),
        }
    }

    /// A blocking socket takes everything unless its timeout fires, so a
    /// write after a partial one is rare, and only it gets a shorter
    /// timeout. Only a large frame reads the clock before its first write:
    /// a small one (most messages, where a clock read would show) starts
    /// its clock at its first partial write, so it gets at most twice the
    /// timeout.
    #[cold]
    fn start_or_shorten(&mut self) -> io::Result<()> {
        let limit = self.limit;
        let Some(start) = self.start else {
            self.start = Some(Instant::now());
            return Ok(());
        };
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(write_timed_out(limit));
        }
        self.sink.set_timeout(Some(left))
    }
}

impl Write for Deadline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.call(buf.len(), |sink| sink.write(buf))
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.call(len, |sink| sink.write_vectored(bufs))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        if self.calls > 1 {
            // Back to the full timeout for the next frame.
            let _ = self.sink.set_timeout(Some(self.limit));
        }
    }
}

/// The error for a frame the peer did not take within `limit`.
fn write_timed_out(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the peer took too long to read: a frame was not sent within the write timeout ({limit:?})"),
    )
}

/// Where frames go.
#[derive(Debug)]
enum Outbound {
    /// To the WebSocket's own stream; no other thread sends.
    Own { close_sent: bool, out: Outgoing },
    /// Through a lock shared with [`Sender`]s.
    Shared(Arc<Shared>),
}

/// The sending side shared between a WebSocket and its [`Sender`]s.
struct Shared {
    /// Held for the whole of each frame, so frames never interleave.
    out: Mutex<SharedOut>,
    /// Set (under `out`) when a close frame has gone out, or a frame could
    /// not be written whole; after it, nothing more goes out.
    close_sent: AtomicBool,
    /// Set (under `out`) while fed frames wait; lets readers skip the lock.
    pending: AtomicBool,
    /// A second handle, to shut the stream down while a writer is blocked on it.
    shutter: Box<dyn Sink>,
    /// The bound on each whole frame: the stream's write timeout.
    write_timeout: Option<Duration>,
    /// Twice the frames written, plus one while a frame is being written
    /// (perhaps waiting for the peer to take bytes): how keepalive sees a
    /// peer take bytes that waited for room. Changed under `out`.
    writes: AtomicU64,
    /// Bytes written, for keepalive's view of the send queue. Changed under `out`.
    written: AtomicU64,
}

struct SharedOut {
    sink: Box<dyn Sink>,
    out: Outgoing,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("close_sent", &self.close_sent.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SharedOut> {
        // A writer that panicked mid-frame poisoned nothing we rely on: the
        // close flag still guards the stream.
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, opcode: OpCode, payload: Payload<'_>, flush: bool) -> Result<(), Error> {
        if self.write_timeout.is_none() {
            // Perhaps a stream that buffers (the event loop's): wait for
            // room before the lock, so that no other writer waits on us.
            if let Err(e) = self.shutter.wait_room() {
                self.close_sent.store(true, Ordering::Release);
                let _ = self.shutter.shut();
                return Err(e.into());
            }
        }
        let mut guard = self.lock();
        if self.close_sent.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if opcode == OpCode::Close {
            self.close_sent.store(true, Ordering::Release);
        }
        let SharedOut { sink, out } = &mut *guard;
        let result = match self.write_timeout {
            Some(limit) => self.timed(limit, |w| out.frame(w, opcode, payload, flush), sink),
            None => out.frame(sink, opcode, payload, flush),
        };
        self.after_write(out, result)
    }

    fn flush(&self) -> Result<(), Error> {
        if !self.pending.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut guard = self.lock();
        let SharedOut { sink, out } = &mut *guard;
        let result = match self.write_timeout {
            Some(limit) => self.timed(limit, |w| out.flush(w), sink),
            None => out.flush(sink),
        };
        self.after_write(out, result)
    }

    /// Writes through a [`Deadline`], counted for keepalive: a stream with
    /// a write timeout blocks, and this is how the reader sees it wait.
    #[inline]
    fn timed(
        &self,
        limit: Duration,
        write: impl FnOnce(&mut Deadline<'_>) -> Result<(), Error>,
        sink: &mut Box<dyn Sink>,
    ) -> Result<(), Error> {
        self.count_write(); // odd: under way
        let result = write(&mut Deadline::new(&mut **sink, limit, &self.written));
        self.count_write(); // even again: done
        result
    }

    /// A write that failed may have left part of a frame on the wire:
    /// nothing more can be written into the stream, so it is shut down.
    fn after_write(&self, out: &Outgoing, result: Result<(), Error>) -> Result<(), Error> {
        self.pending.store(out.has_pending(), Ordering::Release);
        if result.is_err() {
            self.close_sent.store(true, Ordering::Release);
            let _ = self.shutter.shut();
        }
        result
    }

    /// Counts a write's start or end (under `out`: a load and a store suffice).
    #[inline]
    fn count_write(&self) {
        let writes = self.writes.load(Ordering::Relaxed);
        self.writes.store(writes.wrapping_add(1), Ordering::Relaxed);
    }

    /// Whether a write is under way, and a count that moves with each one.
    fn write_progress(&self) -> (bool, u64) {
        let writes = self.writes.load(Ordering::Relaxed);
        (writes % 2 == 1, writes)
    }
}

/// A cloneable handle that sends on a connection from any thread.
///
/// Frames from a `Sender` and from the [`WebSocket`] never interleave; after
/// a close frame from either, sending fails with [`Error::Closed`]. A send
/// blocks while the peer does not read, for at most the stream's write
/// timeout (the server sets one).
#[derive(Clone, Debug)]
pub struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// Sends a message.
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        let opcode = opcode_of(&msg);
        self.shared
            .send(opcode, Payload::Owned(msg.into_bytes()), true)
    }

    /// Sends a text message from a borrowed string.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.shared
            .send(OpCode::Text, Payload::Borrowed(text.as_bytes()), true)
    }

    /// Sends a binary message from a borrowed slice.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.shared
            .send(OpCode::Binary, Payload::Borrowed(data), true)
    }

    /// Sends a borrowed message, such as one from [`WebSocket::recv_ref`]
    /// or a broadcast shared by every client.
    pub fn send_ref<'m>(&self, msg: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        let msg = msg.into();
        self.shared
            .send(opcode_of(msg), Payload::Borrowed(msg.as_bytes()), true)
    }

    /// Queues a message to go out with the next flush, so that replies to
    /// pipelined requests leave in one write instead of one each.
    ///
    /// Queued frames go out at the latest when the connection's own `recv`
    /// is about to wait for input, when the queue passes 64 KiB, or on the
    /// next `send` or [`Sender::flush`]. From another thread, call `flush`.
    pub fn feed<'m>(&self, msg: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        let msg = msg.into();
        self.shared
            .send(opcode_of(msg), Payload::Borrowed(msg.as_bytes()), false)
    }

    /// Writes every queued message now.
    pub fn flush(&self) -> Result<(), Error> {
        self.shared.flush()
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        check_control(payload)?;
        self.shared
            .send(OpCode::Ping, Payload::Borrowed(payload), true)
    }

    /// Sends a close frame. The connection's reader sees the peer's reply and
    /// ends; closing twice is a no-op.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let payload = close_payload(code, reason)?;
        match self
            .shared
            .send(OpCode::Close, Payload::Borrowed(&payload), true)
        {
            Err(Error::Closed) => Ok(()),
            other => other,
        }
    }

    /// Whether a close frame has gone out on this connection.
    pub fn is_closed(&self) -> bool {
        self.shared.close_sent.load(Ordering::Acquire)
    }

    /// Shuts the connection down at once, without a close frame: the reader
    /// wakes up and the peer sees the TCP connection end.
    pub fn shutdown(&self) {
        self.shared.close_sent.store(true, Ordering::Release);
        // Not under the lock: its holder may be blocked writing to a stalled
        // peer, and the shutdown is what unblocks it.
        let _ = self.shared.shutter.shut();
    }
}

/// A payload to send: borrowed, or owned so that a client can mask it in place.
enum Payload<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

fn opcode_of<'m>(msg: impl Into<MessageRef<'m>>) -> OpCode {
    match msg.into() {
        MessageRef::Text(_) => OpCode::Text,
        MessageRef::Binary(_) => OpCode::Binary,
    }
}

fn check_control(payload: &[u8]) -> Result<(), Error> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(Error::InvalidInput("control frame payload over 125 bytes"));
    }
    Ok(())
}

/// A close frame's payload: the code, then the reason.
fn close_payload(code: CloseCode, reason: &str) -> Result<Vec<u8>, Error> {
    if !code.is_sendable() {
        return Err(Error::InvalidInput("close code not allowed on the wire"));
    }
    if reason.len() > MAX_CLOSE_REASON {
        return Err(Error::InvalidInput("close reason over 123 bytes"));
    }
    let mut payload = code.0.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    Ok(payload)
}

/// The sending side's state: masking keys (client role) and frames fed but
/// not yet flushed.
#[derive(Debug, Default)]
struct Outgoing {
    rng: Option<Box<OsRandom>>,
    pending: Vec<u8>,
    /// permessage-deflate, when negotiated: compresses in wire order.
    deflate: Option<Box<Compressor>>,
}

/// Frames up to this size are copied into the queue when fed; larger ones
/// flush the queue and go out by themselves.
const FEED_FRAME_MAX: usize = 16 << 10;

/// The queue is flushed when it reaches this size.
const FEED_FLUSH_AT: usize = 64 << 10;

/// Payloads up to this size are copied next to their header and written with
/// one plain `write`; larger ones go out with one vectored write, uncopied.
const SMALL_FRAME: usize = 256;

impl Outgoing {
    fn for_role(role: Role) -> Self {
        Outgoing {
            rng: (role == Role::Client).then(|| Box::new(OsRandom::new())),
            pending: Vec::new(),
            deflate: None,
        }
    }

    fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes one complete frame (after anything queued), or with `flush`
    /// false queues it. A server's payload is written straight from
    /// `payload`; a client's is masked with a fresh key (in place when owned).
    fn frame<W: Write + ?Sized>(
        &mut self,
        stream: &mut W,
        opcode: OpCode,
        payload: Payload<'_>,
        flush: bool,
    ) -> Result<(), Error> {
        // Compress a data message first (RSV1 marks it), then mask.
        let mut rsv = 0;
        let payload = match (&mut self.deflate, opcode, payload) {
            (Some(deflate), OpCode::Text | OpCode::Binary, payload) => {
                let mut compressed = Vec::new();
                let original = match &payload {
                    Payload::Borrowed(b) => b,
                    Payload::Owned(b) => &b[..],
                };
                if deflate.compress(original, &mut compressed) {
                    rsv = 0b100;
                    Payload::Owned(compressed)
                } else {
                    payload
                }
            }
            (_, _, payload) => payload,
        };
        let (mask, masked);
        let bytes = match (&mut self.rng, payload) {
            (None, Payload::Borrowed(b)) => {
                mask = None;
                b
            }
            (None, Payload::Owned(b)) => {
                mask = None;
                masked = b;
                &masked[..]
            }
            (Some(rng), payload) => {
                let key = rng.mask_key()?;
                let mut owned = match payload {
                    Payload::Borrowed(b) => b.to_vec(),
                    Payload::Owned(b) => b,
                };
                apply_mask(&mut owned, key, 0);
                mask = Some(key);
                masked = owned;
                &masked[..]
            }
        };
        let header = FrameHeader {
            fin: true,
            rsv,
            opcode,
            mask,
            payload_len: bytes.len() as u64,
        };
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut head);
        let (head, queued) = (&head[..n], self.has_pending());
        if bytes.len() <= FEED_FRAME_MAX && (queued || !flush) {
            self.pending.extend_from_slice(head);
            self.pending.extend_from_slice(bytes);
            if flush || self.pending.len() >= FEED_FLUSH_AT {
                self.flush(stream)?;
            }
            return Ok(());
        }
        if queued {
            self.flush(stream)?;
        }
        if bytes.len() <= SMALL_FRAME {
            // A small frame costs less copied into one buffer than described
            // to the kernel as two.
            let mut frame = [0u8; MAX_HEADER_LEN + SMALL_FRAME];
            frame[..n].copy_from_slice(head);
            frame[n..n + bytes.len()].copy_from_slice(bytes);
            write_all_vectored(stream, &frame[..n + bytes.len()], &[])?;
        } else {
            write_all_vectored(stream, head, bytes)?;
        }
        Ok(())
    }

    /// Writes every queued frame with one write.
    fn flush<W: Write + ?Sized>(&mut self, stream: &mut W) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = write_all_vectored(stream, &self.pending, &[]);
        self.pending.clear();
        if self.pending.capacity() > FEED_FLUSH_AT {
            // Do not keep a large queue for an idle connection.
            self.pending = Vec::new();
        }
        Ok(result?)
    }
}

impl<S: Read + Write> WebSocket<S> {
    /// Performs the server side of the opening handshake with default limits.
    ///
    /// A bad request is answered with its HTTP status (400, 426 or 431) and
    /// returned as [`Error::Handshake`].
    pub fn accept(stream: S) -> Result<Self, Error> {
        Self::accept_with_limits(stream, Limits::default())
    }

    /// [`WebSocket::accept`] with the given limits.
    pub fn accept_with_limits(mut stream: S, limits: Limits) -> Result<Self, Error> {
        let result = read_request(&mut stream, &limits)
            .and_then(|(req, rest)| Ok((http::check_upgrade(&req)?, req, rest)));
        match result {
            Ok((accept, req, rest)) => {
                write_all_vectored(&mut stream, &http::response_101(&accept, None, None), &[])?;
                let mut ws = Self::from_raw(stream, Role::Server, limits, &rest);
                ws.request = Some(req);
                Ok(ws)
            }
            Err(Error::Handshake(e)) => {
                // Best effort: the client may already be gone.
                let _ = write_all_vectored(&mut stream, &e.response().to_bytes(), &[]);
                Err(Error::Handshake(e))
            }
            Err(e) => Err(e),
        }
    }

    /// Wraps a stream whose handshake is done. `received` holds bytes that
    /// were read past the handshake; they are the start of the frame stream.
    pub fn from_raw(stream: S, role: Role, limits: Limits, received: &[u8]) -> Self {
        let proto = Protocol::with_received(role, limits, received);
        WebSocket {
            stream,
            proto,
            out: Outbound::Own {
                close_sent: false,
                out: Outgoing::for_role(role),
            },
            peer_close: None,
            timers: Timers::new(None, None, Instant::now()),
            waiting_write: None,
            request: None,
            protocol: None,
        }
    }

    /// Receives the next data message; `Ok(None)` once the connection closed cleanly.
    ///
    /// Pings are answered with pongs and a close frame is echoed here. On a
    /// protocol error the connection is failed with the matching close code
    /// (1002, 1007 or 1009) and the error returned.
    #[inline]
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        Ok(match self.next_message()? {
            true => self.proto.take_message(),
            false => None,
        })
    }

    /// Like [`WebSocket::recv`], but the message is borrowed from the
    /// connection's buffers: no copy and no allocation. It lives until the
    /// next call; to answer it, use a [`Sender`] (`ws.sender()`).
    ///
    /// ```no_run
    /// # fn handler(mut ws: stdws::WebSocket<stdws::Stream>) -> Result<(), stdws::Error> {
    /// let tx = ws.sender()?;
    /// while let Some(msg) = ws.recv_ref()? {
    ///     tx.send_ref(msg)?; // echo, copying nothing
    /// }
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn recv_ref(&mut self) -> Result<Option<MessageRef<'_>>, Error> {
        Ok(match self.next_message()? {
            true => self.proto.message_ref(),
            false => None,
        })
    }

    /// Reads until a data message is ready (`true`) or the connection has
    /// closed cleanly (`false`), answering pings and closes on the way.
    fn next_message(&mut self) -> Result<bool, Error> {
        loop {
            match self.proto.poll() {
                Ok(Some(Event::Message(()))) => {
                    // Data after our close frame is read but not delivered (RFC 6455 1.4).
                    if !self.close_sent() {
                        return Ok(true);
                    }
                }
                Ok(Some(Event::Ping(payload))) => {
                    match self.send_frame(OpCode::Pong, Payload::Borrowed(&payload)) {
                        Err(Error::Closed) => {} // closing: no pong needed
                        other => other?,
                    }
                }
                Ok(Some(Event::Pong(_))) => {}
                Ok(Some(Event::Close(frame))) => {
                    // Echo the status code, as RFC 6455 5.5.1 suggests.
                    let reply = frame
                        .as_ref()
                        .map_or(Vec::new(), |f| f.code.0.to_be_bytes().to_vec());
                    match self.send_frame(OpCode::Close, Payload::Owned(reply)) {
                        Err(Error::Closed) => {} // our close went first
                        other => other?,
                    }
                    self.peer_close = Some(frame);
                    return Ok(false);
                }
                Ok(None) if self.proto.is_closed() => return Ok(false),
                Ok(None) => {
                    // About to wait for input: what was fed goes out first.
                    self.flush_fed()?;
                    let n = match read_some(&mut self.stream, self.proto.read_buf()) {
                        Ok(n) => n,
                        Err(e) if is_timeout(&e) && self.timers.is_active() => {
                            self.on_tick()?;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if n == 0 {
                        // After our close, the peer may just hang up.
                        return match self.close_sent() {
                            true => Ok(false),
                            false => Err(Error::UnexpectedEof),
                        };
                    }
                    if self.timers.is_active() {
                        self.timers.heard(Instant::now());
                    }
                    self.proto.commit(n);
                }
                Err(e) => {
                    // Best effort: the peer may not be listening any more.
                    let frame = e.close_frame();
                    if let Ok(payload) = close_payload(frame.code, &frame.reason) {
                        let _ = self.send_frame(OpCode::Close, Payload::Owned(payload));
                    }
                    return Err(Error::Protocol(e));
                }
            }
        }
    }

    /// A read timed out: send a keepalive ping or give up, as the timers say.
    fn on_tick(&mut self) -> Result<(), Error> {
        // Quiet for a tick: give back buffers grown for large messages.
        self.proto.shrink();
        let now = Instant::now();
        let (writing, writes) = match &self.out {
            Outbound::Shared(shared) => shared.write_progress(),
            Outbound::Own { .. } => (false, 0),
        };
        if self.waiting_write.is_some_and(|w| w != writes) {
            // A write under way a tick ago has finished: the peer took
            // bytes, so it is alive, even if its pong waits behind them.
            self.timers.heard(now);
        }
        self.waiting_write = writing.then_some(writes);
        let action = match &self.out {
            Outbound::Shared(shared) => {
                let written = shared.written.load(Ordering::Relaxed);
                self.timers.poll_sending(now, written, || SendQueue {
                    written: shared.written.load(Ordering::Relaxed),
                    unacked: shared.shutter.unacked_bytes(),
                })
            }
            Outbound::Own { .. } => self.timers.poll(now),
        };
        let action = match action {
            // The pong may be waiting behind the frame a writer is sending:
            // decide once that write ends, taken or timed out.
            TimerAction::Expire(Expired::NoPong(_)) if writing => TimerAction::Wait,
            action => action,
        };
        match action {
            TimerAction::Wait => Ok(()),
            // While closing, the "ping" only starts the wait for the reply.
            TimerAction::SendPing => match self.send_frame(OpCode::Ping, Payload::Borrowed(&[])) {
                Err(Error::Closed) => Ok(()),
                other => other,
            },
            TimerAction::Expire(why) => {
                if let Ok(payload) = close_payload(CloseCode::GOING_AWAY, "timeout") {
                    let _ = self.send_frame(OpCode::Close, Payload::Owned(payload));
                }
                Err(Error::TimedOut(why))
            }
        }
    }

    /// Sets the read-silence and keepalive deadlines (see [`Keepalive`]).
    ///
    /// They act when a read times out, so the stream needs a read timeout of
    /// at most the returned tick; the server sets it. Deadlines are met
    /// within one tick.
    pub fn set_timeouts(
        &mut self,
        read_timeout: Option<Duration>,
        keepalive: Option<Keepalive>,
    ) -> Option<Duration> {
        self.timers = Timers::new(read_timeout, keepalive, Instant::now());
        self.timers.tick()
    }

    /// Sends a message.
    ///
    /// A client masks the payload in place (no copy) before sending.
    pub fn send(&mut self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        let opcode = opcode_of(&msg);
        self.send_frame(opcode, Payload::Owned(msg.into_bytes()))
    }

    /// Sends a text message from a borrowed string.
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send_frame(OpCode::Text, Payload::Borrowed(text.as_bytes()))
    }

    /// Sends a borrowed message.
    pub fn send_ref<'m>(&mut self, msg: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        let msg = msg.into();
        self.send_frame(opcode_of(msg), Payload::Borrowed(msg.as_bytes()))
    }

    /// Sends a binary message from a borrowed slice.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send_frame(OpCode::Binary, Payload::Borrowed(data))
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        check_control(payload)?;
        self.send_frame(OpCode::Ping, Payload::Borrowed(payload))
    }

    /// Starts the close handshake; keep calling [`WebSocket::recv`] until it
    /// returns `Ok(None)` to receive the peer's reply. Closing twice is a no-op.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let payload = close_payload(code, reason)?;
        match self.send_frame(OpCode::Close, Payload::Owned(payload)) {
            Err(Error::Closed) => Ok(()),
            other => other,
        }
    }

    /// The peer's close frame, once one arrived; the inner `None` means it had no status code.
    pub fn peer_close_frame(&self) -> Option<Option<&CloseFrame>> {
        self.peer_close.as_ref().map(Option::as_ref)
    }

    /// Whether the connection is closed for receiving: the peer's close arrived or it failed.
    pub fn is_closed(&self) -> bool {
        self.proto.is_closed()
    }

    /// The upgrade request this server-side connection was accepted with.
    pub fn request(&self) -> Option<&Request> {
        self.request.as_ref()
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Turns on permessage-deflate as the handshake agreed: compressed
    /// messages (RSV1) are accepted, and data messages over the threshold
    /// are sent compressed. Call it before [`WebSocket::sender`].
    pub fn enable_deflate(&mut self, deflate: PerMessageDeflate) {
        let (compressor, decompressor) = deflate.split();
        self.proto.enable_deflate(decompressor);
        match &mut self.out {
            Outbound::Own { out, .. } => out.deflate = Some(Box::new(compressor)),
            Outbound::Shared(shared) => shared.lock().out.deflate = Some(Box::new(compressor)),
        }
    }

    /// [`WebSocket::enable_deflate`] from a box, in a frame of its own, so
    /// that callers' frames hold no room for the codec's kilobytes.
    #[inline(never)]
    pub(crate) fn enable_deflate_boxed(&mut self, deflate: Box<PerMessageDeflate>) {
        self.enable_deflate(*deflate);
    }

    /// Gives back buffers grown for large messages; for an idle connection.
    #[cfg(target_os = "linux")] // the event loop
    pub(crate) fn shrink(&mut self) {
        self.proto.shrink();
    }

    /// Records the handshake this connection came from.
    pub(crate) fn set_handshake(&mut self, request: Option<Request>, protocol: Option<String>) {
        self.request = request;
        self.protocol = protocol;
    }

    /// The underlying stream, for timeouts and addresses.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The underlying stream, mutably. Reading or writing it directly breaks the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Takes the stream back, for example to shut it down.
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn close_sent(&self) -> bool {
        match &self.out {
            Outbound::Own { close_sent, .. } => *close_sent,
            Outbound::Shared(shared) => shared.close_sent.load(Ordering::Acquire),
        }
    }

    /// Sends one frame unless a close already went out ([`Error::Closed`]).
    fn send_frame(&mut self, opcode: OpCode, payload: Payload<'_>) -> Result<(), Error> {
        match &mut self.out {
            Outbound::Shared(shared) => shared.send(opcode, payload, true),
            Outbound::Own {
                close_sent: true, ..
            } => Err(Error::Closed),
            Outbound::Own { close_sent, out } => {
                *close_sent = opcode == OpCode::Close;
                let result = out.frame(&mut self.stream, opcode, payload, true);
                // Part of a frame may be on the wire: nothing more can follow it.
                *close_sent |= result.is_err();
                result
            }
        }
    }

    /// Writes frames fed through a [`Sender`] before waiting for input.
    fn flush_fed(&mut self) -> Result<(), Error> {
        match &mut self.out {
            Outbound::Shared(shared) => shared.flush(),
            Outbound::Own { close_sent, out } => {
                let result = out.flush(&mut self.stream);
                *close_sent |= result.is_err();
                result
            }
        }
    }
}

impl<S: DuplexStream> WebSocket<S> {
    /// A handle that sends on this connection from other threads.
    ///
    /// The first call takes a second handle to the stream
    /// ([`DuplexStream::try_clone`]); from then on every frame, this
    /// WebSocket's own included, goes out under one lock.
    pub fn sender(&mut self) -> Result<Sender, Error> {
        if let Outbound::Shared(shared) = &self.out {
            return Ok(Sender {
                shared: shared.clone(),
            });
        }
        let sink = self.stream.try_clone()?;
        let shutter = self.stream.try_clone()?;
        let Outbound::Own { close_sent, out } = std::mem::replace(
            &mut self.out,
            Outbound::Own {
                close_sent: true,
                out: Outgoing::default(),
            },
        ) else {
            unreachable!("checked above")
        };
        let shared = Arc::new(Shared {
            out: Mutex::new(SharedOut {
                sink: Box::new(sink),
                out,
            }),
            close_sent: AtomicBool::new(close_sent),
            pending: AtomicBool::new(false),
            write_timeout: self.stream.write_timeout()?,
            shutter: Box::new(shutter),
            writes: AtomicU64::new(0),
            written: AtomicU64::new(0),
        });
        self.out = Outbound::Shared(shared.clone());
        Ok(Sender { shared })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that reads `input`, and whose writes take at most `room`
    /// bytes in all, then nothing (`Ok(0)`), or fail with `fail` if set.
    #[derive(Debug)]
    struct Scripted {
        input: io::Cursor<Vec<u8>>,
        room: usize,
        written: Vec<u8>,
        fail: Option<io::ErrorKind>,
    }

    impl Scripted {
        fn new(input: &[u8], room: usize) -> Self {
            Scripted {
                input: io::Cursor::new(input.to_vec()),
                room,
                written: Vec::new(),
                fail: None,
            }
        }
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(kind) = self.fail {
                return Err(kind.into());
            }
            let n = buf.len().min(self.room - self.written.len());
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stream_that_stops_taking_bytes_fails_the_write_instead_of_spinning() {
        let mut roomy = Scripted::new(b"", 8);
        write_all_vectored(&mut roomy, b"head", b"body").unwrap();
        assert_eq!(roomy.written, b"headbody");
        // The header is cut short, then the stream takes nothing more.
        let mut stream = Scripted::new(b"", 2);
        let e = write_all_vectored(&mut stream, b"head", b"body").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        assert_eq!(stream.written, b"he");
    }

    #[test]
    fn after_a_frame_fails_part_way_nothing_more_is_sent() {
        let mut ws = WebSocket::from_raw(
            Scripted::new(b"", 100),
            Role::Server,
            Limits::default(),
            &[],
        );
        let error = ws.send_binary(&[7; 1000]).unwrap_err();
        assert!(
            matches!(&error, Error::Io(e) if e.kind() == io::ErrorKind::WriteZero),
            "{error:?}"
        );
        // What went out is a frame's start: no other frame may follow it.
        assert!(matches!(ws.send_text("next"), Err(Error::Closed)));
        assert!(matches!(ws.ping(b""), Err(Error::Closed)));
        assert_eq!(ws.get_ref().written.len(), 100);
    }

    #[test]
    fn accept_reports_a_client_gone_before_the_101_as_an_io_error() {
        let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut stream = Scripted::new(request, 0);
        stream.fail = Some(io::ErrorKind::BrokenPipe);
        let error = WebSocket::accept(stream).unwrap_err();
        assert!(
            matches!(&error, Error::Io(e) if e.kind() == io::ErrorKind::BrokenPipe),
            "{error:?}"
        );
        assert!(error.is_disconnect());
    }
}
