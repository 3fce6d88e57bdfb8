//! A blocking WebSocket over any `Read + Write` stream.
//!
//! [`WebSocket`] drives the sans-IO [`Connection`] with a stream: it reads
//! into the connection's buffer, hands the bytes to it, writes what it
//! queues (pongs, close echoes, the close that fails a connection), and
//! writes each frame it sends with one vectored write, the payload uncopied.
//! The RFC's rules live in the connection; this file only does IO.

use super::counters::Counters;
use super::io::{is_timeout, read_request, read_some, write_all_vectored};
use super::random::OsRandom;
use super::stream::DuplexStream;
use crate::error::Error;
use crate::frame::{OpCode, Role, MAX_HEADER_LEN};
use crate::http::{self, Request};
use crate::limits::Limits;
use crate::message::{CloseCode, CloseFrame, Message, MessageRef};
#[cfg(feature = "deflate")]
use crate::proto::extensions::permessage_deflate::PerMessageDeflate;
use crate::proto::inbound::Protocol;
use crate::proto::Span;
use crate::proto::Step;
use crate::proto::{
    close_payload, opcode_of, Connection, Frame, Keepalive, MaskKeys, Outbound, Outlet, Payload,
    Timeouts,
};
use crate::Instant;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, IoSlice, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Boxed: moving a `WebSocket` (into the handler, into a closure) then
    /// copies a few words, not the connection, and the connection thread's
    /// stack stays a page smaller.
    conn: Box<Connection<Out>>,
    /// Whether a deadline is set: then reads time out every tick.
    ticking: bool,
    /// The read timeout a server's reader gets once our close is out, so
    /// that the close timeout is met (see `WebSocket::set_server_timeouts`).
    close_tick: Option<Duration>,
    request: Option<Request>,
    protocol: Option<String>,
    /// A server's counters, which its messages and closes count into.
    counters: Option<Arc<Counters>>,
}

/// The object-safe part of [`DuplexStream`]: what a [`Sender`] writes to,
/// and shuts down without taking the write lock.
trait Sink: Write + Send + Sync {
    fn shut(&self) -> io::Result<()>;
    fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    fn unacked_bytes(&self) -> Option<u64>;
}

impl<T: DuplexStream> Sink for T {
    fn shut(&self) -> io::Result<()> {
        self.shutdown()
    }
    fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_write_timeout(timeout)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        DuplexStream::set_read_timeout(self, timeout)
    }
    fn unacked_bytes(&self) -> Option<u64> {
        self.unacked()
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
    /// A deadline for a batch of which `calls` writes were already made.
    fn new(sink: &'a mut dyn Sink, limit: Duration, written: &'a AtomicU64, calls: u32) -> Self {
        Deadline {
            sink,
            limit,
            written,
            start: None,
            calls,
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
        let n = write(self.sink).map_err(|e| timed_out_as(e, self.limit))?;
        count_bytes(self.written, n);
        Ok(n)
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

/// Counts `n` bytes written (see [`Shared::written`]). Only the lock
/// holder counts, so a load and a store suffice.
#[inline]
fn count_bytes(written: &AtomicU64, n: usize) {
    written.store(
        written.load(Ordering::Relaxed) + n as u64,
        Ordering::Relaxed,
    );
}

/// A write error, with a timeout reported as the frame's write timeout.
fn timed_out_as(e: io::Error, limit: Duration) -> io::Error {
    match is_timeout(&e) {
        true => write_timed_out(limit),
        false => e,
    }
}

/// The error for a frame the peer did not take within `limit`.
fn write_timed_out(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the peer took too long to read: a frame was not sent within the write timeout ({})",
            Span(limit)
        ),
    )
}

/// Where a WebSocket's frames go.
#[derive(Debug)]
enum Out {
    /// To its own stream; no other thread sends.
    Own(Outbound),
    /// Through a lock shared with [`Sender`]s.
    Shared(Arc<Shared>),
}

impl Outlet for Out {
    #[inline]
    fn with<R>(&mut self, f: impl FnOnce(&mut Outbound) -> R) -> R {
        match self {
            Out::Own(out) => f(out),
            Out::Shared(shared) => {
                let mut guard = shared.lock();
                let result = f(&mut guard.out);
                shared.mirror(&guard.out);
                result
            }
        }
    }

    fn peek<R>(&self, f: impl FnOnce(&Outbound) -> R) -> R {
        match self {
            Out::Own(out) => f(out),
            Out::Shared(shared) => f(&shared.lock().out),
        }
    }

    #[inline]
    fn close_sent(&self) -> bool {
        match self {
            Out::Own(out) => out.is_closed(),
            Out::Shared(shared) => shared.close_sent.load(Ordering::Acquire),
        }
    }

    /// Without the lock: a writer blocked on a stalled peer holds it.
    fn pending(&self) -> usize {
        match self {
            Out::Own(out) => out.pending(),
            Out::Shared(shared) => shared.pending.load(Ordering::Acquire).into(),
        }
    }
}

/// A client's masking keys, from the process's keyed PRF (see
/// [`OsRandom`]). Should the OS have given no randomness at all (then the
/// client's handshake nonce already failed), keys come from a fixed-key
/// hash of a counter and the clock rather than a panic.
struct OsKeys(OsRandom, u64);

impl MaskKeys for OsKeys {
    fn mask_key(&mut self) -> [u8; 4] {
        self.0.mask_key().unwrap_or_else(|_| {
            self.1 += 1;
            let mut h = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().build_hasher();
            h.write_u64(self.1);
            h.write_u128(std::time::Instant::now().elapsed().as_nanos());
            (h.finish() as u32).to_le_bytes()
        })
    }
}

/// The sending side shared between a WebSocket and its [`Sender`]s.
struct Shared {
    /// Held for the whole of each frame, so frames never interleave.
    out: Mutex<SharedOut>,
    /// Mirrors the outbound's "closed" (under `out`), and is set by
    /// [`Sender::shutdown`] without it; after it, nothing more goes out.
    close_sent: AtomicBool,
    /// Set (under `out`) while queued frames wait; lets readers skip the lock.
    pending: AtomicBool,
    /// The reader delivered a message with nothing after it in its buffer:
    /// the next frame fed goes out at once, since nothing could join it
    /// before the reader's flush. Saves that flush its lock.
    reply_now: AtomicBool,
    /// A second handle, to shut the stream down while a writer is blocked on it.
    shutter: Box<dyn Sink>,
    /// The bound on each whole frame: the stream's write timeout.
    write_timeout: Option<Duration>,
    /// Twice the frames written, plus one while a frame is being written
    /// (perhaps waiting for the peer to take bytes): how keepalive sees a
    /// write under way. Changed under `out`.
    writes: AtomicU64,
    /// Bytes written, for keepalive's view of the send queue. Changed under `out`.
    written: AtomicU64,
    /// The server's counters, which sent messages count into.
    counters: Option<Arc<Counters>>,
    /// The read timeout once our close is out (see `WebSocket::set_server_timeouts`).
    close_tick: Option<Duration>,
}

struct SharedOut {
    sink: Box<dyn Sink>,
    out: Outbound,
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
        // outbound's state still guards the stream.
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the outbound's state for readers that skip the lock.
    #[inline]
    fn mirror(&self, out: &Outbound) {
        self.pending.store(out.pending() > 0, Ordering::Release);
        if out.is_closed() && !self.close_sent.load(Ordering::Relaxed) {
            self.close_out();
        }
    }

    /// Our close is out: the reader's next wait ends in time to drop a peer
    /// that does not answer (a read already blocked keeps its own timeout).
    #[cold]
    #[inline(never)]
    fn close_out(&self) {
        if !self.close_sent.swap(true, Ordering::AcqRel) {
            if let Some(tick) = self.close_tick {
                let _ = self.shutter.set_read_timeout(Some(tick));
            }
        }
    }

    fn send(&self, opcode: OpCode, payload: Payload<'_>, flush: bool) -> Result<(), Error> {
        let mut guard = self.lock();
        if self.close_sent.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let SharedOut { sink, out } = &mut *guard;
        let len = payload.bytes().len();
        let result = if !flush && len <= FEED_FRAME_MAX {
            // Fed: it waits in the queue for the next flush, unless the
            // queue is full. Only a write is timed.
            match out.send(opcode, payload, true) {
                Ok(()) if out.pending() >= FEED_FLUSH_AT || self.take_reply_now() => {
                    self.write_out(out, sink)
                }
                queued => queued.map_err(Error::from),
            }
        } else {
            match self.write_timeout {
                Some(limit) => self.timed(limit, 0, |w| write_frame(out, w, opcode, payload), sink),
                None => write_frame(out, sink, opcode, payload),
            }
        };
        if let (Some(counters), Ok(()), false) = (&self.counters, &result, opcode.is_control()) {
            counters.sent(len);
        }
        self.after_write(out, result)
    }

    /// Whether a frame fed now goes out at once (see `reply_now`); once.
    #[inline]
    fn take_reply_now(&self) -> bool {
        let now = self.reply_now.load(Ordering::Relaxed);
        if now {
            self.reply_now.store(false, Ordering::Relaxed);
        }
        now
    }

    /// Writes what is queued: fed frames, and the connection's own replies.
    #[inline]
    fn flush(&self) -> Result<(), Error> {
        if !self.pending.load(Ordering::Acquire) {
            return Ok(());
        }
        self.flush_queued()
    }

    fn flush_queued(&self) -> Result<(), Error> {
        let mut guard = self.lock();
        let SharedOut { sink, out } = &mut *guard;
        let result = self.write_out(out, sink);
        self.after_write(out, result)
    }

    /// Writes what `out` has queued, within the write timeout.
    #[inline]
    fn write_out(&self, out: &mut Outbound, sink: &mut Box<dyn Sink>) -> Result<(), Error> {
        let Some(limit) = self.write_timeout else {
            return flush_out(out, sink);
        };
        let mut calls = 0;
        if let Some(bytes) = out
            .contiguous()
            .filter(|b| (1..TIMED_FRAME).contains(&b.len()))
        {
            // Most flushes: a few small frames in one piece, which one write
            // takes whole. A first write needs no clock (see Deadline::call).
            let len = bytes.len();
            self.count_write(); // odd: under way
            let result = sink.write(bytes);
            self.count_write(); // even again: done
            match result {
                Ok(0) => return Err(failed(out, io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    count_bytes(&self.written, n);
                    out.advance(n);
                    if n == len {
                        return flush_stream(out, &mut **sink);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(out, timed_out_as(e, limit))),
            }
            calls = 1;
        }
        self.timed(limit, calls, |w| flush_out(out, w), sink)
    }

    /// Writes through a [`Deadline`] (`calls` writes of the batch already
    /// made), counted for keepalive: a stream with a write timeout blocks,
    /// and this is how the reader sees it wait.
    #[inline]
    fn timed(
        &self,
        limit: Duration,
        calls: u32,
        write: impl FnOnce(&mut Deadline<'_>) -> Result<(), Error>,
        sink: &mut Box<dyn Sink>,
    ) -> Result<(), Error> {
        self.count_write(); // odd: under way
        let result = write(&mut Deadline::new(&mut **sink, limit, &self.written, calls));
        self.count_write(); // even again: done
        result
    }

    /// A write that failed may have left part of a frame on the wire:
    /// nothing more can be written into the stream, so it is shut down.
    fn after_write(&self, out: &Outbound, result: Result<(), Error>) -> Result<(), Error> {
        self.mirror(out);
        if out.is_broken() {
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
}

/// The sending half of a connection that a nonblocking driver (the event
/// loop) runs: a [`Sender`] queues whole frames in it, and it writes what
/// the socket takes.
pub(crate) trait Queue: fmt::Debug + Send + Sync {
    /// Queues a frame; with `flush`, it goes out as soon as the socket
    /// takes it. Past the driver's bound on what may wait, it fails.
    fn send(&self, opcode: OpCode, payload: Payload<'_>, flush: bool) -> Result<(), Error>;
    /// Writes what is queued, as far as the socket takes it.
    fn flush(&self) -> Result<(), Error>;
    /// Whether nothing more goes out: our close is queued, or the
    /// connection ended.
    fn is_closed(&self) -> bool;
    /// Ends the connection at once, without a close frame.
    fn shutdown(&self);
    /// The server's counters.
    fn counters(&self) -> Option<&Counters>;
    /// The code of our close frame, once one was queued.
    fn close_code(&self) -> Option<CloseCode>;
}

/// A cloneable handle that sends on a connection from any thread.
///
/// Frames from a `Sender` and from the [`WebSocket`] never interleave; after
/// a close frame from either, sending fails with [`Error::Closed`]. A send
/// blocks while the peer does not read, for at most the stream's write
/// timeout (the server sets one).
#[derive(Clone, Debug)]
pub struct Sender {
    via: Via,
}

/// Where a [`Sender`]'s frames go.
#[derive(Clone, Debug)]
enum Via {
    /// Straight to a blocking stream, under the lock its WebSocket shares.
    Stream(Arc<Shared>),
    /// Into a nonblocking driver's queue.
    Queue(Arc<dyn Queue>),
}

impl Sender {
    /// A sender into a nonblocking driver's queue.
    #[cfg_attr(
        not(all(target_os = "linux", feature = "event-loop")),
        allow(dead_code)
    )] // the event loop
    pub(crate) fn queued(queue: Arc<dyn Queue>) -> Sender {
        Sender {
            via: Via::Queue(queue),
        }
    }

    #[inline]
    fn frame(&self, opcode: OpCode, payload: Payload<'_>, flush: bool) -> Result<(), Error> {
        match &self.via {
            Via::Stream(shared) => shared.send(opcode, payload, flush),
            Via::Queue(queue) => queue.send(opcode, payload, flush),
        }
    }

    /// Sends a message.
    pub fn send(&self, msg: impl Into<Message>) -> Result<(), Error> {
        let msg = msg.into();
        let opcode = opcode_of(&msg);
        self.frame(opcode, Payload::Owned(msg.into_bytes()), true)
    }

    /// Sends a text message from a borrowed string.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.frame(OpCode::Text, Payload::Borrowed(text.as_bytes()), true)
    }

    /// Sends a binary message from a borrowed slice.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), Error> {
        self.frame(OpCode::Binary, Payload::Borrowed(data), true)
    }

    /// Sends a borrowed message, such as one from [`WebSocket::recv_ref`]
    /// or a broadcast shared by every client.
    pub fn send_ref<'m>(&self, msg: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        let msg = msg.into();
        self.frame(opcode_of(msg), Payload::Borrowed(msg.as_bytes()), true)
    }

    /// Queues a message to go out with the next flush, so that replies to
    /// pipelined requests leave in one write instead of one each.
    ///
    /// Queued frames go out at the latest when the connection's own `recv`
    /// is about to wait for input, when the queue passes 64 KiB, or on the
    /// next `send` or [`Sender::flush`]. From another thread, call `flush`.
    /// A reply fed to the last message its `recv` had read goes out at once,
    /// with what waits: nothing could join it before that wait.
    pub fn feed<'m>(&self, msg: impl Into<MessageRef<'m>>) -> Result<(), Error> {
        let msg = msg.into();
        self.frame(opcode_of(msg), Payload::Borrowed(msg.as_bytes()), false)
    }

    /// Writes every queued message now.
    pub fn flush(&self) -> Result<(), Error> {
        match &self.via {
            Via::Stream(shared) => shared.flush(),
            Via::Queue(queue) => queue.flush(),
        }
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn ping(&self, payload: &[u8]) -> Result<(), Error> {
        self.frame(OpCode::Ping, Payload::Borrowed(payload), true)
    }

    /// Sends a close frame. The connection's reader sees the peer's reply and
    /// ends; closing twice is a no-op.
    pub fn close(&self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let payload = close_payload(code, reason)?;
        match self.frame(OpCode::Close, Payload::Borrowed(&payload), true) {
            Err(Error::Closed) => Ok(()),
            other => other,
        }
    }

    /// Whether a close frame has gone out on this connection.
    pub fn is_closed(&self) -> bool {
        match &self.via {
            Via::Stream(shared) => shared.close_sent.load(Ordering::Acquire),
            Via::Queue(queue) => queue.is_closed(),
        }
    }

    /// The server's counters, on a server's connection.
    pub(crate) fn counters(&self) -> Option<&Counters> {
        match &self.via {
            Via::Stream(shared) => shared.counters.as_deref(),
            Via::Queue(queue) => queue.counters(),
        }
    }

    /// The code of our close frame, once one was queued on this connection.
    pub(crate) fn close_code(&self) -> Option<CloseCode> {
        match &self.via {
            Via::Stream(shared) => shared.lock().out.close_code(),
            Via::Queue(queue) => queue.close_code(),
        }
    }

    /// Shuts the connection down at once, without a close frame: the reader
    /// wakes up and the peer sees the TCP connection end.
    pub fn shutdown(&self) {
        match &self.via {
            Via::Stream(shared) => {
                shared.close_sent.store(true, Ordering::Release);
                // Not under the lock: its holder may be blocked writing to a
                // stalled peer, and the shutdown is what unblocks it.
                let _ = shared.shutter.shut();
            }
            Via::Queue(queue) => queue.shutdown(),
        }
    }
}

/// The code of the peer's close frame, once it came:
/// [`CloseCode::NO_STATUS`] if it had none.
pub(crate) fn peer_close_code<O: Outlet>(conn: &Connection<O>) -> CloseCode {
    match conn.peer_close_frame() {
        Some(Some(frame)) => frame.code,
        _ => CloseCode::NO_STATUS,
    }
}

/// Frames up to this size are copied into the queue when fed; larger ones
/// flush the queue and go out by themselves.
const FEED_FRAME_MAX: usize = 16 << 10;

/// The queue is flushed when it reaches this size.
const FEED_FLUSH_AT: usize = 64 << 10;

/// Payloads up to this size are copied next to their header and written with
/// one plain `write`; larger ones go out with one vectored write, uncopied.
const SMALL_FRAME: usize = 256;

/// Encodes one frame and writes it: straight to the stream, payload
/// uncopied, when nothing waits; after what waits otherwise (a small frame
/// joins the queue, and goes out with it). A write that fails leaves the
/// outbound broken.
fn write_frame<W: Write + ?Sized>(
    out: &mut Outbound,
    stream: &mut W,
    opcode: OpCode,
    payload: Payload<'_>,
) -> Result<(), Error> {
    let len = payload.bytes().len();
    let queued = out.pending() > 0;
    if len <= FEED_FRAME_MAX && queued {
        out.send(opcode, payload, true)?;
        return flush_out(out, stream);
    }
    let frame = out.encode(opcode, payload, true)?;
    if queued {
        flush_out(out, stream)?;
    }
    let result = write_whole(stream, &frame);
    if result.is_err() {
        out.write_failed();
    }
    Ok(result?)
}

fn write_whole<W: Write + ?Sized>(stream: &mut W, frame: &Frame<'_>) -> io::Result<()> {
    let (head, body) = (frame.head(), frame.body());
    if body.len() <= SMALL_FRAME {
        // A small frame costs less copied into one buffer than described
        // to the kernel as two.
        let mut bytes = [0u8; MAX_HEADER_LEN + SMALL_FRAME];
        bytes[..head.len()].copy_from_slice(head);
        bytes[head.len()..frame.len()].copy_from_slice(body);
        write_all_vectored(stream, &bytes[..frame.len()], &[])
    } else {
        write_all_vectored(stream, head, body)
    }
}

/// Writes everything the outbound has queued, with vectored writes. Not
/// inlined: the callers' usual paths dispatch to it or skip it.
#[inline(never)]
fn flush_out<W: Write + ?Sized>(out: &mut Outbound, stream: &mut W) -> Result<(), Error> {
    while out.pending() > 0 {
        let result = match out.contiguous() {
            Some(bytes) => stream.write(bytes),
            None => {
                let mut slices = [&[][..]; 4];
                let n = out.output(&mut slices);
                let io = slices.map(IoSlice::new);
                stream.write_vectored(&io[..n])
            }
        };
        match result {
            Ok(0) => return Err(failed(out, io::ErrorKind::WriteZero.into())),
            Ok(n) => out.advance(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(failed(out, e)),
        }
    }
    flush_stream(out, stream)
}

/// Flushes what `stream` itself buffers (TLS records) once `out` is written.
#[inline]
fn flush_stream<W: Write + ?Sized>(out: &mut Outbound, stream: &mut W) -> Result<(), Error> {
    stream.flush().map_err(|e| failed(out, e))
}

/// A write that failed or was cut short: nothing more can follow it.
fn failed(out: &mut Outbound, e: io::Error) -> Error {
    out.write_failed();
    e.into()
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
                let mut ws = Self::server(stream, limits, &rest);
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
        match role {
            Role::Server => Self::server(stream, limits, received),
            Role::Client => {
                let outbound = Outbound::client(Box::new(OsKeys(OsRandom::new(), 0)));
                Self::with_outbound(stream, role, limits, received, outbound)
            }
        }
    }

    /// [`from_raw`](Self::from_raw) for the server's side: a server's
    /// binary need not carry the client's mask-key source.
    pub(crate) fn server(stream: S, limits: Limits, received: &[u8]) -> Self {
        Self::with_outbound(stream, Role::Server, limits, received, Outbound::server())
    }

    fn with_outbound(
        stream: S,
        role: Role,
        limits: Limits,
        received: &[u8],
        outbound: Outbound,
    ) -> Self {
        let inbound = Protocol::with_received(role, limits, received);
        WebSocket {
            stream,
            conn: Box::new(Connection::from_parts(inbound, Out::Own(outbound))),
            ticking: false,
            close_tick: None,
            request: None,
            protocol: None,
            counters: None,
        }
    }

    /// Receives the next data message; `Ok(None)` once the connection closed cleanly.
    ///
    /// Pings are answered with pongs and a close frame is echoed here. On a
    /// protocol error the connection is failed with the matching close code
    /// (1002, 1007 or 1009) and the error returned.
    #[inline]
    pub fn recv(&mut self) -> Result<Option<Message>, Error> {
        if !self.next_message()? {
            return Ok(None);
        }
        let msg = self.conn.take_message();
        if let (Some(counters), Some(msg)) = (&self.counters, &msg) {
            counters.received(msg.len());
        }
        Ok(msg)
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
        if !self.next_message()? {
            return Ok(None);
        }
        let msg = self.conn.message_ref();
        if let (Some(counters), Some(msg)) = (&self.counters, msg) {
            counters.received(msg.len());
        }
        Ok(msg)
    }

    /// Reads until a data message is ready (`true`) or the connection has
    /// closed cleanly (`false`); what the connection queues in reply
    /// (pongs, the close echo) is written on the way.
    fn next_message(&mut self) -> Result<bool, Error> {
        loop {
            match self.conn.step() {
                Ok(Step::Message) => {
                    let drained = self.conn.is_drained();
                    if let Out::Shared(shared) = self.conn.outlet() {
                        shared.reply_now.store(drained, Ordering::Relaxed);
                    }
                    return Ok(true);
                }
                Ok(Step::Ping) => self.flush_out()?,
                Ok(Step::Pong) => {}
                Ok(Step::Close) => {
                    if let Some(counters) = &self.counters {
                        counters.close_received(peer_close_code(&self.conn));
                    }
                    self.flush_out()?;
                    return Ok(false);
                }
                Ok(Step::Wait) if !self.conn.wants_read() => return Ok(false),
                Ok(Step::Wait) => {
                    // About to wait for input: what was queued goes out first.
                    self.flush_out()?;
                    let n = match read_some(&mut self.stream, self.conn.read_buf()) {
                        Ok(n) => n,
                        Err(e) if is_timeout(&e) && (self.ticking || self.conn.close_sent()) => {
                            self.on_tick()?;
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if n == 0 {
                        // After our close, the peer may just hang up.
                        return match self.conn.close_sent() {
                            true => Ok(false),
                            false => Err(Error::UnexpectedEof),
                        };
                    }
                    // The next tick counts these bytes as a sign of life:
                    // no clock read per message.
                    self.conn.commit(n);
                }
                Err(e) => {
                    // Best effort: the peer may not be listening any more.
                    let _ = self.flush_out();
                    return Err(Error::Protocol(e));
                }
            }
        }
    }

    /// A read timed out: the connection's deadlines decide (a keepalive
    /// ping, or the end).
    fn on_tick(&mut self) -> Result<(), Error> {
        // Quiet for a tick: give back buffers grown for large messages.
        self.conn.shrink();
        let now = Instant::now();
        let expired = match self.conn.outlet() {
            Out::Shared(shared) => {
                let shared = shared.clone();
                let writing = shared.writes.load(Ordering::Relaxed) % 2 == 1;
                let written = shared.written.load(Ordering::Relaxed);
                self.conn.wrote(written, writing, now);
                self.conn
                    .handle_timeout_with(now, || shared.shutter.unacked_bytes())
            }
            Out::Own(_) => self.conn.handle_timeout(now),
        };
        match expired {
            None => self.flush_out(),
            Some(why) => {
                let _ = self.flush_out(); // the close, best effort
                Err(Error::TimedOut(why))
            }
        }
    }

    /// Writes what the connection queued.
    #[inline]
    fn flush_out(&mut self) -> Result<(), Error> {
        match self.conn.outlet() {
            Out::Shared(shared) => shared.flush(),
            Out::Own(out) => flush_out(out, &mut self.stream),
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
        let timeouts = Timeouts {
            read: read_timeout,
            keepalive,
            ..Timeouts::default()
        };
        self.conn.set_timeouts(timeouts, Instant::now());
        self.ticking = read_timeout.is_some() || keepalive.is_some();
        self.conn.tick()
    }

    /// A server's deadlines: [`WebSocket::set_timeouts`]' and how long the
    /// peer has to answer our close. Reads keep the returned tick (the
    /// close timeout does not wake idle connections); once our close is
    /// out, from here or a [`Sender`], the next read waits at most half the
    /// close timeout, so the peer is dropped within 1.5 times it.
    pub(crate) fn set_server_timeouts(
        &mut self,
        read_timeout: Option<Duration>,
        keepalive: Option<Keepalive>,
        close: Option<Duration>,
    ) -> Option<Duration> {
        let tick = self.set_timeouts(read_timeout, keepalive);
        let timeouts = Timeouts {
            read: read_timeout,
            keepalive,
            close,
            ..Timeouts::default()
        };
        self.conn.set_timeouts(timeouts, Instant::now());
        self.close_tick = close.map(|c| {
            let half = (c / 2).max(Duration::from_millis(1));
            tick.map_or(half, |t| t.min(half))
        });
        tick
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
        self.conn.peer_close_frame()
    }

    /// Whether the connection is closed for receiving: the peer's close arrived or it failed.
    pub fn is_closed(&self) -> bool {
        !self.conn.wants_read()
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
    /// are sent compressed. Call it before [`WebSocket::sender`]. Feature
    /// `deflate`.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, deflate: PerMessageDeflate) {
        self.conn.enable_deflate(deflate);
    }

    /// [`WebSocket::enable_deflate`] from a box, in a frame of its own, so
    /// that callers' frames hold no room for the codec's kilobytes.
    #[cfg(feature = "deflate")]
    #[inline(never)]
    pub(crate) fn enable_deflate_boxed(&mut self, deflate: Box<PerMessageDeflate>) {
        self.enable_deflate(*deflate);
    }

    /// Counts this server connection's messages and closes into `counters`;
    /// before [`WebSocket::sender`].
    pub(crate) fn count_into(&mut self, counters: Arc<Counters>) {
        self.counters = Some(counters);
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

    /// Sends one frame unless a close already went out ([`Error::Closed`]).
    fn send_frame(&mut self, opcode: OpCode, payload: Payload<'_>) -> Result<(), Error> {
        match self.conn.outlet() {
            Out::Shared(shared) => shared.send(opcode, payload, true),
            Out::Own(out) => write_frame(out, &mut self.stream, opcode, payload),
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
        if let Out::Shared(shared) = self.conn.outlet() {
            return Ok(Sender {
                via: Via::Stream(shared.clone()),
            });
        }
        let sink = self.stream.try_clone()?;
        let shutter = self.stream.try_clone()?;
        let write_timeout = self.stream.write_timeout()?;
        let outlet = self.conn.outlet();
        let Out::Own(out) = std::mem::replace(outlet, Out::Own(Outbound::server())) else {
            unreachable!("checked above")
        };
        let shared = Arc::new(Shared {
            close_sent: AtomicBool::new(out.is_closed()),
            pending: AtomicBool::new(out.pending() > 0),
            reply_now: AtomicBool::new(false),
            out: Mutex::new(SharedOut {
                sink: Box::new(sink),
                out,
            }),
            write_timeout,
            shutter: Box::new(shutter),
            writes: AtomicU64::new(0),
            written: AtomicU64::new(0),
            counters: self.counters.clone(),
            close_tick: self.close_tick,
        });
        *outlet = Out::Shared(shared.clone());
        Ok(Sender {
            via: Via::Stream(shared),
        })
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
