//! The event loop behind [`Server::run_event_loop`](crate::Server::run_event_loop):
//! every client served from a few threads (one per CPU by default), each
//! waiting on epoll for whichever of its clients is ready. Linux only.
//!
//! A client's request, its answer and its closing phase are a sans-IO
//! [`Lifecycle`], as in the threaded server, driven without blocking: its
//! output handed to the [`Outbox`] (written as far as the socket takes it,
//! ahead of any frame), its reads within the turn's budget, its deadlines
//! at each sweep. An open connection is a sans-IO [`Connection`] instead:
//! the loop reads into the thread's read buffer and lets the connection
//! parse the bytes there (or reads straight into a large message), hands
//! each message to the client's callback, writes what was queued, and at
//! each sweep lets it act on its deadlines.

use super::config::Config;
use super::epoll::{self, Epoll, Event};
use super::lifecycle::{guard, route, settings, Refusal, Route, Upgrade};
use super::net::{Addr, Listener, Stream};
use super::outbox::{self, stopped_reading, Outbox, BACKLOG_HIGH};
use super::registry::{self, Ctx};
use crate::blocking::counters::Counters;
use crate::blocking::{peer_close_code, DuplexStream, Queue, Sender};
use crate::error::Error;
use crate::frame::Role;
use crate::http::serve::{self, Lifecycle};
use crate::http::{Request, Response};
use crate::message::{CloseCode, MessageRef};
#[cfg(feature = "deflate")]
use crate::proto::extensions::permessage_deflate::PerMessageDeflate;
use crate::proto::inbound::Protocol;
use crate::proto::{Connection, Expired, Step, Timeouts};
use crate::Instant;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What a client's messages go to: made per client by the factory.
pub(crate) type OnMessage = Box<dyn FnMut(MessageRef<'_>) -> Result<(), Error>>;
/// Makes the message callback of each new client.
pub(crate) type Factory = dyn Fn(&Request, Sender) -> OnMessage + Send + Sync;

/// The most reads one readiness event gets before other clients' turns.
const READS_PER_TURN: u8 = 16;

/// A loop thread's read buffer: as large as a connection's grows to.
const READ_BUF: usize = 64 << 10;

/// How often each thread looks at deadlines and at a shutdown request.
const TICK: Duration = Duration::from_millis(100);

/// The listener's token; connections count up from 0.
const LISTENER: u64 = u64::MAX;

/// Runs `threads` event-loop threads on `listener` until shutdown.
pub(crate) fn run(
    ctx: Arc<Ctx<Box<Factory>>>,
    listener: Listener,
    threads: usize,
) -> io::Result<()> {
    listener.set_nonblocking()?;
    let listener = Arc::new(listener);
    let mut workers = Vec::new();
    for _ in 0..threads.max(1) {
        let (worker_ctx, listener) = (ctx.clone(), listener.clone());
        let spawned = std::thread::Builder::new()
            .name(ctx.config.thread_name.clone())
            .spawn(move || {
                outbox::on_loop_thread();
                Worker::new(worker_ctx, listener)?.run()
            });
        match spawned {
            Ok(worker) => workers.push(worker),
            // Serve with the threads there are; with none, fail.
            Err(e) if workers.is_empty() => return Err(e),
            Err(e) => ctx.report(&ctx.state.addr, &Error::Io(e)),
        }
    }
    let mut result = Ok(());
    for worker in workers {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(io::Error::other("an event-loop thread panicked")),
        }
    }
    result
}

/// One event-loop thread: its own epoll set and the clients it accepted.
struct Worker {
    ctx: Arc<Ctx<Box<Factory>>>,
    epoll: Arc<Epoll>,
    /// What every connection's outbox shares.
    outboxes: Arc<outbox::Common>,
    /// `None` once shutdown began.
    listener: Option<Arc<Listener>>,
    /// Whether the listener is in the epoll set: out of it for a sweep
    /// after an accept error (out of descriptors, say), rather than spin.
    accepting: bool,
    /// Clients by registry slot, which is their epoll token too.
    conns: HashMap<u64, Conn, BuildHasherDefault<TokenHasher>>,
    /// How often deadlines are looked at: a second, or the shortest
    /// configured deadline if that is shorter.
    sweep_every: Duration,
    next_sweep: Instant,
    /// What open connections read into and parse in place, so that an
    /// idle one holds no read buffer of its own.
    read_buf: Box<[u8]>,
}

impl Worker {
    fn new(ctx: Arc<Ctx<Box<Factory>>>, listener: Arc<Listener>) -> io::Result<Worker> {
        let epoll = Arc::new(Epoll::new()?);
        epoll.add(&*listener, epoll::READABLE | epoll::EXCLUSIVE, LISTENER)?;
        let config = &ctx.config;
        let keepalive = config.keepalive.map(|k| k.interval.min(k.timeout));
        let sweep_every = [
            Some(config.handshake_timeout),
            config.read_timeout,
            keepalive,
            config.write_timeout,
        ]
        .into_iter()
        .flatten()
        .fold(Duration::from_secs(1), Duration::min)
        .max(Duration::from_millis(10));
        let outboxes = Arc::new(outbox::Common {
            epoll: epoll.clone(),
            cap: config.limits.max_message_size + 2 * BACKLOG_HIGH,
            wait: config.write_timeout,
            counters: ctx.state.counters.clone(),
        });
        Ok(Worker {
            ctx,
            epoll,
            outboxes,
            listener: Some(listener),
            accepting: true,
            conns: HashMap::default(),
            sweep_every,
            next_sweep: Instant::now(),
            read_buf: vec![0; READ_BUF].into_boxed_slice(),
        })
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = vec![Event::default(); 256];
        loop {
            let n = self.epoll.wait(&mut events, TICK)?;
            let now = Instant::now();
            for event in &events[..n] {
                match event.token() {
                    LISTENER => self.accept(now),
                    token => self.on_event(token, event.events(), now),
                }
            }
            if now >= self.next_sweep {
                self.sweep(now);
                self.next_sweep = now + self.sweep_every;
            }
            if self.ctx.state.stopping.load(Ordering::Acquire) {
                if let Some(listener) = self.listener.take() {
                    if self.accepting {
                        let _ = self.epoll.delete(&*listener);
                    }
                }
                if self.conns.is_empty() {
                    return Ok(());
                }
            }
        }
    }

    fn accept(&mut self, now: Instant) {
        let Some(listener) = &self.listener else {
            return;
        };
        let config = &self.ctx.config;
        // A few at a time, so that the other threads take their share.
        for _ in 0..16 {
            let stream = match listener.accept() {
                Ok(stream) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.ctx.report(&self.ctx.state.addr, &Error::Io(e));
                    // Out of descriptors, say: leave the listener until the
                    // next sweep rather than spin on it (or sleep, which
                    // would stall this thread's clients).
                    self.accepting = self.epoll.delete(&**listener).is_err();
                    return;
                }
            };
            if self.ctx.state.stopping.load(Ordering::Acquire) {
                return;
            }
            let Some(slot) = registry::register(&self.ctx, &stream) else {
                registry::refuse_busy(&self.ctx, stream);
                continue;
            };
            // The slot is unique among the server's connections: it is
            // the epoll token too.
            let token = slot;
            let setup = stream
                .set_nonblocking()
                .and_then(|()| stream.set_nodelay())
                .and_then(|()| self.epoll.add(&stream, epoll::READABLE, token));
            if let Err(e) = setup {
                registry::deregister(&self.ctx.state, slot);
                self.ctx.report(stream.peer_addr(), &Error::Io(e));
                continue;
            }
            let outbox = Outbox::new(stream, token, self.outboxes.clone());
            let conn = Conn {
                io: Io {
                    outbox,
                    reads: Cell::new(0),
                },
                phase: Phase::life(Lifecycle::new(settings(config), now)),
            };
            self.conns.insert(token, conn);
        }
    }

    fn on_event(&mut self, token: u64, events: u32, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if events & (epoll::WRITABLE | epoll::ERROR_OR_HANGUP) != 0 {
            if let Err(e) = conn.io.outbox.write_pending() {
                self.ctx.report(conn.io.peer(), &Error::Io(e));
                self.drop_conn(token);
                return;
            }
        }
        if events & (epoll::READABLE | epoll::ERROR_OR_HANGUP) != 0 {
            conn.io.reads.set(READS_PER_TURN);
        }
        if let Phase::Open(open) = &mut conn.phase {
            open.active = true;
        }
        if !conn.advance(&self.ctx, token, now, &mut self.read_buf) {
            self.drop_conn(token);
        }
    }

    /// Deadlines: handshakes that take too long, keepalive pings, silent
    /// clients, stalled writes, lingering closes; in one pass, every
    /// `sweep_every`.
    fn sweep(&mut self, now: Instant) {
        if let (false, Some(listener)) = (self.accepting, &self.listener) {
            let interest = epoll::READABLE | epoll::EXCLUSIVE;
            self.accepting = self.epoll.add(&**listener, interest, LISTENER).is_ok();
        }
        let mut ended = Vec::new();
        for (&token, conn) in &mut self.conns {
            if !conn.on_tick(&self.ctx, token, now, &mut self.read_buf) {
                ended.push(token);
            }
        }
        for token in ended {
            self.drop_conn(token);
        }
    }

    fn drop_conn(&mut self, token: u64) {
        if let Some(conn) = self.conns.remove(&token) {
            // Senders kept elsewhere hold the descriptor open: make sure the
            // client sees the end now, and that they fail from now on.
            conn.io.outbox.end();
            if let Some(code) = conn.io.outbox.close_code() {
                self.ctx.state.counters.close_sent(code);
            }
            let _ = self.epoll.delete(conn.io.stream());
            registry::deregister(&self.ctx.state, token);
        }
    }
}

impl Drop for Worker {
    /// However the thread ends, its clients are closed and their slots freed.
    fn drop(&mut self) {
        let tokens: Vec<u64> = self.conns.keys().copied().collect();
        for token in tokens {
            self.drop_conn(token);
        }
    }
}

/// What a connection reads into the loop's buffer after a read straight
/// into a message: the next is likely as large, and once its header is in,
/// its payload is read straight into it too instead of copied from here.
const AFTER_LARGE: usize = 4 << 10;

/// Hashes a worker's tokens: counters it hands out itself, so a multiply
/// spreads them well enough, without SipHash's defence against chosen keys.
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// One client of a worker.
struct Conn {
    io: Io,
    phase: Phase,
}

/// A client's socket, through its sending half.
struct Io {
    outbox: Arc<Outbox>,
    /// Reads left in this turn: [`READS_PER_TURN`] per readiness event.
    reads: Cell<u8>,
}

impl Io {
    /// Reads from the socket within this turn's budget: `None` once it is
    /// spent, while too many bytes wait for the client, or when the socket
    /// has nothing (an error value per turn would cost more than the read's
    /// bookkeeping).
    #[inline]
    fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let left = self.reads.get();
        if left == 0 || self.outbox.pending() > BACKLOG_HIGH {
            return Ok(None);
        }
        let result = (&mut self.stream()).read(buf);
        // A read that did not fill the buffer emptied the socket: the next
        // readiness event says when there is more.
        let more = matches!(result, Ok(n) if n == buf.len() && n > 0);
        self.reads.set(if more { left - 1 } else { 0 });
        match result {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn stream(&self) -> &Stream {
        self.outbox.stream()
    }

    fn peer(&self) -> &Addr {
        self.stream().peer_addr()
    }

    /// Hands what `life` queued (a response, `100 Continue`, the `101`) to
    /// the outbox, ahead of any frame: it writes what the socket takes and
    /// keeps the rest, watching for room, as it does for frames.
    fn hand_over(&self, life: &mut Lifecycle) {
        let output = life.output();
        if output.is_empty() {
            return;
        }
        let n = output.len();
        match self.outbox.queue_bytes(output) {
            Ok(()) => life.advance_output(n),
            Err(_) => life.write_failed(),
        }
    }

    /// Reports why the request was refused, once the answer `life` queued
    /// for it is on its way.
    fn refused(&self, ctx: &Ctx<Box<Factory>>, life: &mut Lifecycle, e: Error) {
        self.hand_over(life);
        ctx.report(self.peer(), &e);
    }

    /// A hook panicked: the client gets `500`, and the panic is reported.
    fn answer_500(&self, ctx: &Ctx<Box<Factory>>, life: &mut Lifecycle, panicked: Error) {
        life.respond(&Response::status(500));
        ctx.state.counters.refused(500);
        self.refused(ctx, life, panicked);
    }
}

/// Where a connection is in its life.
enum Phase {
    /// The [`Lifecycle`] drives: the request and its answer or the `101`,
    /// or, after them or the WebSocket, the closing phase and the linger.
    Life(Box<Life>),
    /// Speaking WebSocket; an open connection keeps no lifecycle.
    Open(Box<Open>),
}

/// A connection's lifecycle, boxed so that a connection's entry stays small.
struct Life {
    life: Lifecycle,
    /// How much of our output the client had taken at the last sweep, and
    /// since when (for the write timeout).
    taken: Option<(u64, Instant)>,
}

impl Phase {
    fn life(life: Lifecycle) -> Phase {
        Phase::Life(Box::new(Life { life, taken: None }))
    }

    /// A lifecycle's closing phase, once the WebSocket has finished.
    fn closing(config: &Config) -> Phase {
        Phase::life(Lifecycle::closing(settings(config)))
    }
}

/// What a lifecycle's turn ends with.
enum Turn {
    /// Waiting for the socket (bytes, or room for ours) or a deadline.
    Wait,
    /// The upgrade was accepted: the WebSocket is open.
    Open(Box<Open>),
    /// Nothing is left to do: close the socket.
    End,
}

struct Open {
    conn: Connection<Arc<Outbox>>,
    on_message: OnMessage,
    /// Whether anything happened since the last sweep.
    active: bool,
    /// Whether the connection holds bytes whose events are still to be
    /// taken: those that came after the head, until the first turn.
    held: bool,
    /// Whether the last read went straight into a message.
    large: bool,
}

impl Conn {
    /// Does whatever the bytes that arrived allow; `false` ends the connection.
    /// `buf` is the loop's read buffer.
    fn advance(
        &mut self,
        ctx: &Ctx<Box<Factory>>,
        slot: u64,
        now: Instant,
        buf: &mut [u8],
    ) -> bool {
        // Once per message: an open connection delivering, inline.
        if self.deliver(ctx, buf) {
            return true;
        }
        self.step_phases(ctx, slot, now, buf)
    }

    /// [`Conn::advance`] through the phases: the HTTP side, the upgrade,
    /// the closing.
    #[inline(never)]
    fn step_phases(
        &mut self,
        ctx: &Ctx<Box<Factory>>,
        slot: u64,
        now: Instant,
        buf: &mut [u8],
    ) -> bool {
        loop {
            match &mut self.phase {
                Phase::Life(l) => match drive(ctx, &self.io, &mut l.life, slot, now) {
                    Turn::Wait => return true,
                    Turn::Open(open) => self.phase = Phase::Open(open),
                    Turn::End => return false,
                },
                Phase::Open(_) => {
                    if self.deliver(ctx, buf) {
                        return true;
                    }
                }
            }
        }
    }

    /// An open connection: delivers what arrived and writes what that
    /// queued; `false` if it is not open, or once it moved to the closing
    /// phase instead.
    #[inline(always)]
    fn deliver(&mut self, ctx: &Ctx<Box<Factory>>, buf: &mut [u8]) -> bool {
        let Phase::Open(open) = &mut self.phase else {
            return false;
        };
        let result = outbox::delivering(&self.io.outbox, || {
            open.drive(&self.io, buf, &ctx.state.counters)
        });
        // What the callbacks and the connection queued, in one write.
        let written = self.io.outbox.write_pending().map_err(Error::Io);
        match result.and_then(|open| written.map(|()| open)) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => ctx.report(self.io.peer(), &e),
        }
        self.phase = Phase::closing(&ctx.config);
        false
    }

    /// The periodic check (every `Worker::sweep_every`); `false` ends the connection.
    fn on_tick(
        &mut self,
        ctx: &Ctx<Box<Factory>>,
        slot: u64,
        now: Instant,
        buf: &mut [u8],
    ) -> bool {
        match &mut self.phase {
            Phase::Open(open) => {
                // Quiet since the last sweep: give back buffers grown for
                // large messages.
                if !std::mem::take(&mut open.active) {
                    open.conn.shrink();
                } else {
                    // An empty send queue gives its buffer back at each
                    // sweep, busy or not: a pong or a reply now and then
                    // does not keep one per connection.
                    self.io.outbox.shrink();
                }
                let (written, at) = self.io.outbox.written();
                open.conn.output_written(written, at);
                let stream = self.io.stream();
                match open.conn.handle_timeout_with(now, || stream.unacked()) {
                    // A keepalive ping may be queued; a write that fails
                    // shows as the end of the stream.
                    None => drop(self.io.outbox.write_pending()),
                    Some(Expired::SendStalled(_)) => {
                        self.io.outbox.stalled();
                        ctx.report(self.io.peer(), &stopped_reading());
                        return false;
                    }
                    Some(why) => {
                        ctx.report(self.io.peer(), &Error::TimedOut(why));
                        self.phase = Phase::closing(&ctx.config);
                        return self.advance(ctx, slot, now, buf);
                    }
                }
                true
            }
            Phase::Life(l) => {
                let Life { life, taken } = &mut **l;
                // Still sending: nothing taken for the write timeout ends it.
                if self.io.outbox.pending() == 0 {
                    *taken = None;
                } else {
                    let (written, at) = self.io.outbox.written();
                    match *taken {
                        Some((at, since)) if at == written => {
                            let limit = ctx.config.write_timeout;
                            if limit
                                .is_some_and(|limit| now.saturating_duration_since(since) >= limit)
                            {
                                self.io.outbox.stalled();
                                ctx.report(self.io.peer(), &stopped_reading());
                                return false;
                            }
                        }
                        _ => *taken = Some((written, at.unwrap_or(now))),
                    }
                }
                // Its deadlines: `408` for a slow request, the linger's end.
                if life.poll_timeout().is_none_or(|deadline| now < deadline) {
                    return true;
                }
                if let Err(e) = life.handle_timeout(now) {
                    self.io.refused(ctx, life, e.into());
                }
                self.advance(ctx, slot, now, buf)
            }
        }
    }
}

/// Drives `life` as far as the socket and the bytes that arrived allow:
/// its output through the outbox, the route and the hooks when it asks,
/// the upgrade, the closing phase. Not inlined: [`Conn::advance`] runs once
/// per message, and the HTTP side's spills would cost every call.
#[inline(never)]
fn drive(ctx: &Ctx<Box<Factory>>, io: &Io, life: &mut Lifecycle, slot: u64, now: Instant) -> Turn {
    loop {
        io.hand_over(life);
        match life.poll() {
            serve::Step::Read => match io.read(life.read_buf()) {
                Ok(Some(0)) => {
                    if life.receive_eof().is_err() {
                        ctx.report(io.peer(), &Error::UnexpectedEof);
                    }
                }
                Ok(Some(n)) => {
                    if let Err(e) = life.commit(n) {
                        io.refused(ctx, life, e.into());
                    }
                }
                Ok(None) => return Turn::Wait,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The socket is gone, as at its end; reported if the
                    // request was not complete, not while lingering.
                    if life.receive_eof().is_err() {
                        ctx.report(io.peer(), &Error::Io(e));
                    }
                    return Turn::End;
                }
            },
            serve::Step::Route(request) => {
                match guard(|| route(ctx, request, io.stream().is_unix())) {
                    Ok(Ok(Route::Http(_))) => {
                        if let Err(e) = life.read_body() {
                            io.refused(ctx, life, e.into());
                        }
                    }
                    Ok(Ok(Route::Upgrade(upgrade))) => {
                        if let Some(open) = open(ctx, io, life, *upgrade, slot, now) {
                            return Turn::Open(open);
                        }
                    }
                    Ok(Err(Refusal::Error(e))) => {
                        life.refuse(&e);
                        io.refused(ctx, life, e.into());
                    }
                    Ok(Err(Refusal::Hook(response))) => {
                        ctx.state.counters.refused(response.status_code());
                        life.respond(&response);
                    }
                    Err(panicked) => io.answer_500(ctx, life, panicked),
                }
            }
            serve::Step::Answer(request) => match &ctx.on_http {
                // Only a hook's route reads a body.
                None => life.close(),
                Some(hook) => match guard(|| hook(request)) {
                    Ok(response) => life.respond(&response),
                    Err(panicked) => io.answer_500(ctx, life, panicked),
                },
            },
            // Neither comes: the output was handed over, and `open` took the WebSocket.
            serve::Step::Write => return Turn::Wait,
            serve::Step::Open => life.close(),
            serve::Step::ShutdownWrite => {
                // What was queued last (a timeout's close, say) goes out first.
                if io.outbox.write_pending().is_err() {
                    return Turn::End;
                }
                if io.outbox.pending() > 0 {
                    // Not read meanwhile: what the client sends, or its
                    // end, would only wake the loop until the linger.
                    return match io.outbox.set_reading(false) {
                        Ok(()) => Turn::Wait,
                        Err(_) => Turn::End,
                    };
                }
                let _ = io.stream().shutdown(Shutdown::Write);
                life.write_shut(now);
                if life.poll() == serve::Step::Read && io.outbox.set_reading(true).is_err() {
                    return Turn::End;
                }
            }
            serve::Step::Finished => return Turn::End,
        }
    }
}

/// Accepts the upgrade: the `101` goes out, then the WebSocket is a
/// [`Connection`] over the outbox, starting with the bytes after the head;
/// `None` when the closing phase follows instead.
fn open(
    ctx: &Ctx<Box<Factory>>,
    io: &Io,
    life: &mut Lifecycle,
    upgrade: Upgrade,
    slot: u64,
    now: Instant,
) -> Option<Box<Open>> {
    let (request, rest) = life.upgrade(upgrade.response)?;
    io.hand_over(life);
    if life.poll() != serve::Step::Open {
        return None; // the write failed
    }
    let inbound = Protocol::with_received(Role::Server, ctx.config.limits, &rest);
    let mut conn = Connection::from_parts(inbound, io.outbox.clone());
    #[cfg(feature = "deflate")]
    if let Some(deflate) = upgrade.deflate {
        enable_deflate(&mut conn, deflate);
    }
    conn.set_timeouts(timeouts(&ctx.config), now);
    let sender = Sender::queued(io.outbox.clone());
    registry::opened(&ctx.state, slot, &sender);
    match guard(|| (ctx.handler)(&request, sender.clone())) {
        Ok(on_message) => Some(Box::new(Open {
            conn,
            on_message,
            active: true,
            held: true,
            large: false,
        })),
        Err(e) => {
            let _ = sender.close(CloseCode::INTERNAL_ERROR, "");
            ctx.report(io.peer(), &e);
            life.close();
            None
        }
    }
}

impl Open {
    /// Delivers every message that has arrived, reading as this turn
    /// allows (into the loop's `buf`, parsed in place, or straight into a
    /// large message when the connection offers room there); `Ok(true)`
    /// when it waits for more, `Ok(false)` once nothing more is read (the
    /// close handshake is done, or the client hung up after our close).
    fn drive(&mut self, io: &Io, buf: &mut [u8], counters: &Counters) -> Result<bool, Error> {
        loop {
            let mut n = 0;
            if !std::mem::take(&mut self.held) {
                if !self.conn.wants_read() {
                    return Ok(false);
                }
                let direct = self.conn.reads_into_message();
                let room = match direct {
                    true => self.conn.read_buf(),
                    false => {
                        // After a large message, a short read: the next one's
                        // header, and little of its payload to copy.
                        let len = match self.large {
                            true => AFTER_LARGE.min(buf.len()),
                            false => buf.len(),
                        };
                        &mut buf[..len]
                    }
                };
                n = match io.read(room) {
                    // After our close, the client may just hang up.
                    Ok(Some(0)) if self.conn.close_sent() => return Ok(false),
                    Ok(Some(0)) => return Err(Error::UnexpectedEof),
                    Ok(Some(n)) => n,
                    Ok(None) => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::Io(e)),
                };
                self.large = direct;
                if direct {
                    self.conn.commit(n);
                    n = 0;
                }
            }
            // Parsed in place, after what the connection holds.
            let mut input = self.conn.input(&mut buf[..n]);
            loop {
                match input.step().map_err(Error::Protocol)? {
                    Step::Message => {
                        let Some(msg) = input.message_ref() else {
                            continue;
                        };
                        counters.received(msg.len());
                        let on_message = &mut self.on_message;
                        if let Err(e) = guard(|| on_message(msg)).and_then(|sent| sent) {
                            // The callback gave up on this client: close it.
                            let _ = Sender::queued(io.outbox.clone())
                                .close(CloseCode::INTERNAL_ERROR, "");
                            return Err(e);
                        }
                    }
                    Step::Close => counters.close_received(peer_close_code(input.connection())),
                    Step::Ping | Step::Pong => {}
                    Step::Wait => break,
                }
            }
        }
    }
}

/// The connection's deadlines, from the server's configuration.
fn timeouts(config: &Config) -> Timeouts {
    Timeouts {
        read: config.read_timeout,
        keepalive: config.keepalive,
        close: config.close_timeout,
        write: config.write_timeout,
    }
}

/// Turns on permessage-deflate, in a frame of its own, so that the
/// loop's frames hold no room for the codec's kilobytes.
#[inline(never)]
#[cfg(feature = "deflate")]
fn enable_deflate(conn: &mut Connection<Arc<Outbox>>, deflate: Box<PerMessageDeflate>) {
    conn.enable_deflate(*deflate);
}
