//! An event-loop connection's sending half: one [`Outbound`] behind a lock
//! that the loop and the connection's [`Sender`](crate::Sender)s share.
//! Frames are queued whole (so they never interleave) and written to the
//! nonblocking socket as far as it takes them; the rest waits in the
//! outbound's queue while epoll watches for room.

use super::epoll::{self, Epoll};
use super::net::Stream;
use crate::blocking::counters::Counters;
use crate::blocking::Queue;
use crate::error::Error;
use crate::frame::OpCode;
use crate::message::CloseCode;
use crate::proto::{Outbound, Outlet, Payload};
use crate::Instant;
use std::cell::Cell;
use std::fmt;
use std::io::{self, IoSlice, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Over this many bytes waiting for a client, its connection is not read
/// until they drain: a client that sends but does not read is held here.
pub(crate) const BACKLOG_HIGH: usize = 256 << 10;

/// A send from the callback of the connection it goes to is written with
/// the loop's write after the callbacks, unless this many bytes wait.
const WRITE_AT: usize = 64 << 10;

/// Slices per vectored write.
const SLICES: usize = 8;

/// Frames from this size on are written as soon as they are sent when
/// nothing waits, straight from the caller's payload: the socket takes
/// much of them, and only the rest is copied into the queue. (Smaller ones
/// are queued, to go out together after the callbacks.)
const DIRECT_FROM: usize = 64 << 10;

/// Which thread a send runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Thread {
    /// Not an event loop's: a send may wait for room.
    Other,
    /// An event loop's, whose sends never wait; delivering the messages of
    /// the connection whose [`Outbox`] is at this address (0: none).
    Loop(usize),
}

thread_local! {
    static THREAD: Cell<Thread> = const { Cell::new(Thread::Other) };
}

/// Marks this thread as an event loop's: its sends never wait.
pub(crate) fn on_loop_thread() {
    THREAD.with(|t| t.set(Thread::Loop(0)));
}

/// Runs `f`, which delivers `outbox`'s connection's messages: what their
/// callbacks send it is written after them, in one write.
pub(crate) fn delivering<R>(outbox: &Outbox, f: impl FnOnce() -> R) -> R {
    THREAD.with(|t| t.set(Thread::Loop(outbox.address())));
    let result = f();
    THREAD.with(|t| t.set(Thread::Loop(0)));
    result
}

/// The sending half, shared; see the module's doc.
pub(crate) struct Outbox {
    state: Mutex<State>,
    /// Signalled when the output drains or the connection ends: what a
    /// send on another thread waits for.
    room: Condvar,
    /// Whether nothing more goes out (our close is queued, a write failed,
    /// or the connection ended); set under the lock, read without it.
    closed: AtomicBool,
    /// Bytes waiting, as of the last change under the lock.
    pending: AtomicUsize,
    stream: Stream,
    token: u64,
    common: Arc<Common>,
}

/// What the outboxes of one loop thread share.
#[derive(Debug)]
pub(crate) struct Common {
    pub(crate) epoll: Arc<Epoll>,
    /// The most bytes that may wait; past it the client is dropped.
    pub(crate) cap: usize,
    /// How long a send on another thread waits for room: the write timeout.
    pub(crate) wait: Option<Duration>,
    /// The server's counters, which sent messages count into.
    pub(crate) counters: Arc<Counters>,
}

struct State {
    out: Outbound,
    /// Bytes the socket took, in all.
    written: u64,
    /// When the socket last took bytes while more waited.
    took_at: Option<Instant>,
    /// The epoll interest last set.
    interest: u32,
    /// Cleared while nothing is to be read from the client.
    reading: bool,
    /// Sends on other threads waiting for room.
    waiters: u32,
    /// Set when the loop dropped the connection: sends fail.
    ended: bool,
    /// Set when it was dropped because the client stopped reading: sends
    /// fail saying so, as they would had their own wait run out first.
    stalled: bool,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("pending", &self.pending())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The sending half of `stream`, registered in `common`'s epoll as
    /// `token` with [`epoll::READABLE`].
    pub(crate) fn new(stream: Stream, token: u64, common: Arc<Common>) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(State {
                out: Outbound::server(),
                written: 0,
                took_at: None,
                interest: epoll::READABLE,
                reading: true,
                waiters: 0,
                ended: false,
                stalled: false,
            }),
            room: Condvar::new(),
            closed: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            stream,
            token,
            common,
        })
    }

    /// The client's socket.
    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Gives back the send queue's buffer while nothing waits in it.
    pub(crate) fn shrink(&self) {
        self.lock().out.shrink();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A sender that panicked left the outbound consistent: its state
        // still guards the stream.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn address(&self) -> usize {
        self as *const Outbox as usize
    }

    /// Bytes waiting to be written.
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Bytes the socket took, in all, and when it last took some while
    /// more waited (the start of the wait for what is left).
    pub(crate) fn written(&self) -> (u64, Option<Instant>) {
        let state = self.lock();
        (state.written, state.took_at)
    }

    /// Writes bytes that are not a frame (an HTTP response), queueing what
    /// the socket does not take. Nothing waits before a response, and a
    /// fresh socket takes it whole, so an idle connection keeps no queue
    /// buffer for its `101`.
    pub(crate) fn queue_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        let mut written = 0;
        if state.out.pending() == 0 && !state.out.is_broken() {
            written = self.write_now(&mut state, bytes, &[])?;
        }
        state.out.queue_bytes(&bytes[written..]);
        self.write(&mut state)
    }

    /// Writes what waits, as far as the socket takes it.
    #[inline]
    pub(crate) fn write_pending(&self) -> io::Result<()> {
        if self.pending() == 0 {
            return Ok(());
        }
        self.write(&mut self.lock())
    }

    /// Watches for input, or stops: while the last bytes of a closing
    /// connection go out, what the client sends waits for the linger.
    pub(crate) fn set_reading(&self, reading: bool) -> io::Result<()> {
        let mut state = self.lock();
        state.reading = reading;
        self.rearm(&mut state)
    }

    /// The loop found the client stopped reading (the write deadline
    /// passed): waiting and later sends fail with [`stopped_reading`].
    pub(crate) fn stalled(&self) {
        self.lock().stalled = true;
    }

    /// Ends the connection for good: waiting senders let go, later sends
    /// fail with [`Error::Closed`] (or [`stopped_reading`]), and the socket
    /// is shut down.
    pub(crate) fn end(&self) {
        let mut state = self.lock();
        state.ended = true;
        state.out.write_failed();
        self.mirror(&state);
        self.room.notify_all();
        drop(state);
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Writes what waits until the socket is full, then watches for room.
    fn write(&self, state: &mut State) -> io::Result<()> {
        let before = state.written;
        while state.out.pending() > 0 {
            let (result, offered) = match state.out.contiguous() {
                // The usual case: one piece, one plain write.
                Some(bytes) => ((&self.stream).write(bytes), bytes.len()),
                None => {
                    let mut slices = [&[][..]; SLICES];
                    let n = state.out.output(&mut slices);
                    let offered = slices[..n].iter().map(|s| s.len()).sum();
                    let io = slices.map(IoSlice::new);
                    ((&self.stream).write_vectored(&io[..n]), offered)
                }
            };
            match result {
                Ok(0) => return Err(self.fail(state, io::ErrorKind::WriteZero.into())),
                Ok(took) => {
                    state.out.advance(took);
                    state.written += took as u64;
                    if took < offered {
                        break; // the socket is full
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(state, e)),
            }
        }
        if state.out.pending() > 0 && state.written != before {
            // Only when bytes are left waiting: no clock read per message.
            state.took_at = Some(Instant::now());
        }
        if state.waiters > 0 && state.out.pending() == 0 {
            self.room.notify_all();
        }
        self.rearm(state)
    }

    /// Writes what the socket takes of `head` then `body`, when nothing
    /// waits before them; returns how many bytes that was.
    fn write_now(&self, state: &mut State, head: &[u8], body: &[u8]) -> io::Result<usize> {
        loop {
            let io = [IoSlice::new(head), IoSlice::new(body)];
            return match (&self.stream).write_vectored(&io) {
                Ok(0) => Err(self.fail(state, io::ErrorKind::WriteZero.into())),
                Ok(took) => {
                    state.written += took as u64;
                    if took < head.len() + body.len() {
                        state.took_at = Some(Instant::now());
                    }
                    Ok(took)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(self.fail(state, e)),
            };
        }
    }

    /// Nothing more can be written: a frame may be cut short on the wire.
    fn fail(&self, state: &mut State, e: io::Error) -> io::Error {
        state.out.write_failed();
        self.mirror(state);
        self.room.notify_all();
        let _ = self.stream.shutdown(Shutdown::Both);
        e
    }

    /// Watches for room while bytes wait, stops reading while too many
    /// do, and publishes the state for readers that skip the lock.
    fn rearm(&self, state: &mut State) -> io::Result<()> {
        self.mirror(state);
        let pending = state.out.pending();
        let mut interest = 0;
        if state.reading && pending <= BACKLOG_HIGH {
            interest |= epoll::READABLE;
        }
        if pending > 0 {
            interest |= epoll::WRITABLE;
        }
        if interest != state.interest && !state.ended {
            state.interest = interest;
            self.common
                .epoll
                .modify(&self.stream, interest, self.token)?;
        }
        Ok(())
    }

    #[inline]
    fn mirror(&self, state: &State) {
        self.pending.store(state.out.pending(), Ordering::Release);
        if state.out.is_closed() || state.ended {
            self.closed.store(true, Ordering::Release);
        }
    }

    /// A send on another thread waits while bytes wait for the client, as
    /// a blocking write waits for room in the socket, for at most the
    /// write timeout: so a hub's queue shows that the client is slow.
    fn wait_for_room(&self) -> Result<(), Error> {
        let deadline = self.common.wait.map(|w| Instant::now() + w);
        let mut state = self.lock();
        state.waiters += 1;
        let result = loop {
            if state.stalled {
                break Err(stopped_reading());
            }
            if state.ended || state.out.is_broken() {
                break Err(Error::Closed);
            }
            if state.out.pending() == 0 {
                break Ok(());
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                state.stalled = true;
                let _ = self.fail(&mut state, io::ErrorKind::TimedOut.into());
                break Err(stopped_reading());
            }
            state = match self.room.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        };
        state.waiters -= 1;
        result
    }
}

impl Queue for Outbox {
    fn send(&self, opcode: OpCode, payload: Payload<'_>, flush: bool) -> Result<(), Error> {
        let thread = THREAD.with(Cell::get);
        if thread == Thread::Other && self.pending() > 0 {
            self.wait_for_room()?;
        }
        let mut state = self.lock();
        if state.stalled {
            return Err(stopped_reading());
        }
        if state.ended {
            return Err(Error::Closed);
        }
        let len = payload.bytes().len();
        if len >= DIRECT_FROM && state.out.pending() == 0 {
            let frame = state.out.encode(opcode, payload, true)?;
            let written = self.write_now(&mut state, frame.head(), frame.body())?;
            state.out.queue(frame, written);
            self.write(&mut state)?;
        } else {
            state.out.send(opcode, payload, true)?;
            // A callback's reply goes out with the loop's write after the
            // callbacks; a fed frame with the next flush; unless many wait.
            let later = !flush || thread == Thread::Loop(self.address());
            if !later || state.out.pending() >= WRITE_AT {
                self.write(&mut state)?;
            } else {
                self.mirror(&state);
            }
        }
        if !opcode.is_control() {
            self.common.counters.sent(len);
        }
        if state.out.pending() > self.common.cap {
            // As a blocking write would time out: the client is gone or stuck.
            let e = io::Error::new(
                io::ErrorKind::TimedOut,
                format!("client fell more than {} bytes behind", self.common.cap),
            );
            return Err(Error::Io(self.fail(&mut state, e)));
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        Ok(self.write_pending()?)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn shutdown(&self) {
        let mut state = self.lock();
        let _ = self.fail(&mut state, io::ErrorKind::BrokenPipe.into());
    }

    fn counters(&self) -> Option<&Counters> {
        Some(&self.common.counters)
    }

    fn close_code(&self) -> Option<CloseCode> {
        self.lock().out.close_code()
    }
}

/// Why a client that took nothing for the write timeout was dropped.
pub(crate) fn stopped_reading() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "client stopped reading",
    ))
}

/// The loop's connection sends its reactions (pongs, close echoes, pings)
/// through the same outbox; the loop writes them after each turn.
impl Outlet for Arc<Outbox> {
    #[inline]
    fn with<R>(&mut self, f: impl FnOnce(&mut Outbound) -> R) -> R {
        let mut state = self.lock();
        let result = f(&mut state.out);
        self.mirror(&state);
        result
    }

    fn peek<R>(&self, f: impl FnOnce(&Outbound) -> R) -> R {
        f(&self.lock().out)
    }

    #[inline]
    fn close_sent(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    #[inline]
    fn pending(&self) -> usize {
        Outbox::pending(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    /// An outbox over the server end of a loopback connection (at most
    /// `cap` bytes waiting), and the client end. The test thread counts as
    /// a loop's, so sends never wait.
    fn outbox_pair(cap: usize) -> (Arc<Outbox>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = Stream::from(listener.accept().unwrap().0);
        stream.set_nonblocking().unwrap();
        let epoll = Arc::new(Epoll::new().unwrap());
        epoll.add(&stream, epoll::READABLE, 1).unwrap();
        on_loop_thread();
        (
            Outbox::new(
                stream,
                1,
                Arc::new(Common {
                    epoll,
                    cap,
                    wait: None,
                    counters: Arc::default(),
                }),
            ),
            client,
        )
    }

    fn send(outbox: &Outbox, chunk: &[u8]) -> Result<(), Error> {
        outbox.send(OpCode::Binary, Payload::Borrowed(chunk), true)
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets and epoll")]
    fn a_client_that_reads_steadily_but_behind_does_not_make_the_server_keep_what_was_sent() {
        let (outbox, mut client) = outbox_pair(64 << 20);
        // Fill the socket buffers, then more than they can grow to
        // (tcp_wmem and tcp_rmem allow a few MiB each) while the client reads.
        let chunk = vec![1u8; 136 << 10];
        while outbox.pending() < 16 << 20 {
            send(&outbox, &chunk).unwrap();
        }
        // A client that reads steadily but more slowly than it is written
        // to: output never stops waiting, while 128 MiB go through it (far
        // more than the bound below: keeping what was sent would fail it).
        // What it holds follows the most that waited (a queue's capacity
        // is sized by its peak), not what went through.
        let mut buf = vec![0u8; 128 << 10];
        let mut peak = outbox.pending();
        for _ in 0..1024 {
            client.read_exact(&mut buf).unwrap();
            outbox.write_pending().unwrap();
            send(&outbox, &chunk).unwrap();
            let pending = outbox.pending();
            peak = peak.max(pending);
            let held = outbox.lock().out.memory_held();
            assert!(pending > 0, "output was meant to keep waiting");
            assert!(
                held < 4 * peak + (1 << 20),
                "{held} bytes held for at most {peak} waiting ({pending} now)"
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets and epoll")]
    fn a_response_the_socket_takes_whole_leaves_no_queue_buffer_behind() {
        let (outbox, mut client) = outbox_pair(1 << 20);
        let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        outbox.queue_bytes(response).unwrap();
        assert_eq!(outbox.pending(), 0);
        assert_eq!(
            outbox.lock().out.memory_held(),
            0,
            "an idle connection's queue"
        );
        assert_eq!(outbox.written().0, response.len() as u64);
        let mut got = vec![0u8; response.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, response);
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets and epoll")]
    fn large_frames_written_straight_and_small_ones_queued_arrive_whole_and_in_order() {
        let (outbox, mut client) = outbox_pair(64 << 20);
        // The client does not read yet: the large frames fill the socket,
        // and what it does not take waits behind them.
        let sizes = [100, 1 << 20, 200, 3 << 20, 50, 70 << 10];
        for (i, &size) in sizes.iter().enumerate() {
            send(&outbox, &vec![i as u8; size]).unwrap();
        }
        assert!(
            outbox.pending() > 0,
            "the socket took everything: no queue tested"
        );
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got
        });
        while outbox.pending() > 0 {
            outbox.write_pending().unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        outbox.end();
        let got = reader.join().unwrap();
        let mut at = 0;
        for (i, &size) in sizes.iter().enumerate() {
            assert_eq!(got[at], 0x82, "frame {i}");
            let (len, head) = match got[at + 1] {
                126 => (
                    usize::from(u16::from_be_bytes([got[at + 2], got[at + 3]])),
                    4,
                ),
                127 => (
                    u64::from_be_bytes(got[at + 2..at + 10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (usize::from(n), 2),
            };
            assert_eq!(len, size, "frame {i}");
            let body = &got[at + head..at + head + len];
            assert!(body.iter().all(|&b| b == i as u8), "frame {i}'s payload");
            at += head + len;
        }
        assert_eq!(at, got.len(), "nothing after the frames");
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets and epoll")]
    fn past_the_cap_a_send_fails_and_the_client_gets_what_was_sent_then_the_end() {
        let (outbox, mut client) = outbox_pair(1 << 20);
        let chunk = vec![2u8; 64 << 10];
        let error = loop {
            if let Err(e) = send(&outbox, &chunk) {
                break e;
            }
        };
        assert!(error.to_string().contains("fell more than"), "{error}");
        assert!(matches!(send(&outbox, b"late"), Err(Error::Closed)));
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        // Whole frames as far as they went, then the end of the stream.
        assert!(got.len() > chunk.len(), "{} bytes", got.len());
        assert_eq!(&got[..4], &[0x82, 127, 0, 0]);
    }
}
