//! The event loop behind [`Server::run_event_loop`](crate::Server::run_event_loop):
//! every client served from a few threads (one per CPU by default), each
//! waiting on epoll for whichever of its clients is ready. Linux only.
//!
//! An open connection is a sans-IO [`Connection`] and its nonblocking
//! socket: the loop reads into the connection, hands each message to the
//! client's callback, writes what was queued (see [`Outbox`]), and at each
//! sweep lets the connection act on its deadlines.

use super::config::{Config, HttpHook};
use super::epoll::{self, Epoll, Event};
use super::lifecycle::{route, Refusal, Route};
use super::net::{Addr, Listener, Stream};
use super::outbox::{self, Outbox, BACKLOG_HIGH};
use super::registry::{self, Ctx};
use crate::blocking::{DuplexStream, Sender};
use crate::error::Error;
use crate::frame::Role;
use crate::http::{HandshakeError, HeadScanner, Request};
use crate::message::{CloseCode, MessageRef};
use crate::proto::extensions::permessage_deflate::PerMessageDeflate;
use crate::proto::inbound::Protocol;
use crate::proto::{Connection, Expired, Step, Timeouts};
use crate::status::Status;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read};
use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a client's messages go to: made per client by the factory.
pub(crate) type OnMessage = Box<dyn FnMut(MessageRef<'_>) -> Result<(), Error>>;
/// Makes the message callback of each new client.
pub(crate) type Factory = dyn Fn(&Request, Sender) -> OnMessage + Send + Sync;

/// The most reads one readiness event gets before other clients' turns.
const READS_PER_TURN: u8 = 16;

/// How often each thread looks at deadlines and at a shutdown request.
const TICK: Duration = Duration::from_millis(100);

/// How long a closing connection waits for the client's end of the TCP close.
const LINGER: Duration = Duration::from_secs(2);

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
    /// `None` once shutdown began.
    listener: Option<Arc<Listener>>,
    /// Whether the listener is in the epoll set: out of it for a sweep
    /// after an accept error (out of descriptors, say), rather than spin.
    accepting: bool,
    conns: HashMap<u64, Conn, BuildHasherDefault<TokenHasher>>,
    next_token: u64,
    /// How often deadlines are looked at: a second, or the shortest
    /// configured deadline if that is shorter.
    sweep_every: Duration,
    next_sweep: Instant,
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
        Ok(Worker {
            ctx,
            epoll,
            listener: Some(listener),
            accepting: true,
            conns: HashMap::default(),
            next_token: 0,
            sweep_every,
            next_sweep: Instant::now(),
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
        let cap = config.limits.max_message_size + 2 * BACKLOG_HIGH;
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
            let token = self.next_token;
            self.next_token += 1;
            let setup = stream
                .set_nonblocking()
                .and_then(|()| stream.set_nodelay())
                .and_then(|()| self.epoll.add(&stream, epoll::READABLE, token));
            if let Err(e) = setup {
                registry::deregister(&self.ctx.state, slot);
                self.ctx.report(stream.peer_addr(), &Error::Io(e));
                continue;
            }
            let outbox = Outbox::new(
                stream.clone(),
                self.epoll.clone(),
                token,
                cap,
                config.write_timeout,
            );
            let conn = Conn {
                io: Io {
                    stream,
                    outbox,
                    reads: Cell::new(0),
                },
                phase: Phase::Head {
                    buf: Vec::new(),
                    scanner: HeadScanner::new(config.limits.max_head_size),
                    deadline: now + config.handshake_timeout,
                },
                slot,
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
        if !conn.advance(&self.ctx, now) {
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
            if !conn.on_tick(&self.ctx, now) {
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
            let _ = self.epoll.delete(&conn.io.stream);
            registry::deregister(&self.ctx.state, conn.slot);
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
    /// The server registry's slot (counts toward `max_connections`).
    slot: u64,
}

/// A client's socket and its sending half.
struct Io {
    stream: Stream,
    outbox: Arc<Outbox>,
    /// Reads left in this turn: [`READS_PER_TURN`] per readiness event.
    reads: Cell<u8>,
}

impl Io {
    /// Reads from the socket within this turn's budget: `WouldBlock` once
    /// it is spent, or while too many bytes wait for the client.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.reads.get();
        if left == 0 || self.outbox.pending() > BACKLOG_HIGH {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let result = (&mut &self.stream).read(buf);
        // A read that did not fill the buffer emptied the socket: the next
        // readiness event says when there is more.
        let more = matches!(result, Ok(n) if n == buf.len() && n > 0);
        self.reads.set(if more { left - 1 } else { 0 });
        result
    }

    /// Queues an HTTP response (best effort: the client may be gone).
    fn respond(&self, bytes: &[u8]) {
        let _ = self.outbox.queue_bytes(bytes);
    }

    fn peer(&self) -> &Addr {
        self.stream.peer_addr()
    }
}

/// Where a connection is in its life.
enum Phase {
    /// Reading the request head; it is scanned once, as it arrives.
    Head {
        buf: Vec<u8>,
        scanner: HeadScanner,
        deadline: Instant,
    },
    /// Reading a plain HTTP request's body (`len` bytes) for `on_http`.
    Body {
        on_http: Arc<HttpHook>,
        request: Request,
        body: Vec<u8>,
        len: usize,
        deadline: Instant,
    },
    /// Speaking WebSocket.
    Open(Box<Open>),
    /// The last bytes are queued: once they are out, half-close and read
    /// until the client closes too (for [`LINGER`] at most), so that they
    /// are not lost to a reset. `linger_until` is `None` while they are
    /// still going out; `client_done` once the client's end arrived;
    /// `taken` is how much of our output the client had taken at the last
    /// sweep, and since when (for the write timeout).
    Closing {
        linger_until: Option<Instant>,
        client_done: bool,
        taken: Option<(u64, Instant)>,
    },
}

struct Open {
    conn: Connection<Arc<Outbox>>,
    sender: Sender,
    on_message: OnMessage,
    /// Whether anything happened since the last sweep.
    active: bool,
}

impl Conn {
    /// Does whatever the bytes that arrived allow; `false` ends the connection.
    fn advance(&mut self, ctx: &Ctx<Box<Factory>>, now: Instant) -> bool {
        loop {
            let next = match &mut self.phase {
                Phase::Head {
                    buf,
                    scanner,
                    deadline,
                } => match read_head(&self.io, buf, scanner) {
                    Ok(None) => return true,
                    Ok(Some(len)) => {
                        let deadline = *deadline;
                        let head = std::mem::take(buf);
                        self.on_head(ctx, head, len, deadline, now)
                    }
                    Err(e) => self.fail_handshake(ctx, e),
                },
                Phase::Body { body, len, .. } if body.len() == *len => self.respond_http(ctx),
                Phase::Body { body, len, .. } => {
                    // In pieces, so that a body trickling in is not zeroed whole each time.
                    let want = (*len - body.len()).min(64 << 10);
                    match read_more(&self.io, body, want) {
                        Ok(true) => continue,
                        Ok(false) => return true,
                        Err(e) => self.fail_handshake(ctx, e),
                    }
                }
                Phase::Open(open) => {
                    let result = outbox::delivering(&self.io.outbox, || open.drive(&self.io));
                    // What the callbacks and the connection queued, in one write.
                    let written = self.io.outbox.write_pending().map_err(Error::Io);
                    match result.and_then(|open| written.map(|()| open)) {
                        Ok(true) => return true,
                        Ok(false) => CLOSING,
                        Err(e) => {
                            ctx.report(self.io.peer(), &e);
                            CLOSING
                        }
                    }
                }
                Phase::Closing {
                    linger_until,
                    client_done,
                    ..
                } => {
                    // What was queued last (a timeout's close, say) goes out first.
                    if self.io.outbox.write_pending().is_err() {
                        return false;
                    }
                    let drained = self.io.outbox.pending() == 0;
                    if linger_until.is_none() && drained {
                        *linger_until = Some(now + LINGER);
                        let _ = self.io.stream.shutdown(Shutdown::Write);
                    }
                    if *client_done {
                        return !drained; // both ends are done once ours is out
                    }
                    // Discard what the client still sends, until its end.
                    let mut sink = [0u8; 2048];
                    return loop {
                        match self.io.read(&mut sink) {
                            Ok(0) if drained => break false,
                            Ok(0) => {
                                // Its end came first: finish sending, and stop
                                // watching a socket that stays readable at EOF.
                                *client_done = true;
                                break self.io.outbox.stop_reading().is_ok();
                            }
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                            Err(_) => break false,
                        }
                    };
                }
            };
            self.phase = next;
        }
    }

    fn on_head(
        &mut self,
        ctx: &Ctx<Box<Factory>>,
        mut head: Vec<u8>,
        len: usize,
        deadline: Instant,
        now: Instant,
    ) -> Phase {
        let request = match Request::parse(&head[..len], ctx.config.limits.max_headers) {
            Ok(request) => request,
            Err(e) => return self.refuse(ctx, e),
        };
        let rest = head.split_off(len);
        let is_unix = self.io.stream.is_unix();
        let route = match guard(|| route(ctx, &request, is_unix)) {
            Ok(route) => route,
            Err(e) => return self.fail(ctx, e),
        };
        match route {
            Err(Refusal::Error(e)) => self.refuse(ctx, e),
            Err(Refusal::Hook(response)) => {
                self.io.respond(&response.to_bytes());
                CLOSING
            }
            Ok(Route::Http(on_http)) => {
                let len = match request.content_length() {
                    Ok(len) if len > ctx.config.max_body_size => {
                        let limit = ctx.config.max_body_size;
                        return self.refuse(ctx, HandshakeError::BodyTooLarge { limit });
                    }
                    Ok(len) => len,
                    Err(e) => return self.refuse(ctx, e),
                };
                if rest.len() < len && request.headers().has_token("expect", "100-continue") {
                    self.io.respond(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
                let mut body = Vec::with_capacity(len);
                body.extend_from_slice(&rest[..rest.len().min(len)]);
                Phase::Body {
                    on_http: on_http.clone(),
                    request,
                    body,
                    len,
                    deadline,
                }
            }
            Ok(Route::Upgrade(upgrade)) => {
                if self.io.outbox.queue_bytes(&upgrade.response).is_err() {
                    return CLOSING;
                }
                let inbound = Protocol::with_received(Role::Server, ctx.config.limits, &rest);
                let mut conn = Connection::from_parts(inbound, self.io.outbox.clone());
                if let Some(deflate) = upgrade.deflate {
                    enable_deflate(&mut conn, deflate);
                }
                conn.set_timeouts(timeouts(&ctx.config), now);
                let sender = Sender::queued(self.io.outbox.clone());
                registry::opened(&ctx.state, self.slot, &sender);
                let on_message = match guard(|| (ctx.handler)(&request, sender.clone())) {
                    Ok(on_message) => on_message,
                    Err(e) => {
                        let _ = sender.close(CloseCode::INTERNAL_ERROR, "");
                        ctx.report(self.io.peer(), &e);
                        return CLOSING;
                    }
                };
                Phase::Open(Box::new(Open {
                    conn,
                    sender,
                    on_message,
                    active: true,
                }))
            }
        }
    }

    /// The body is complete: answer with `on_http`.
    fn respond_http(&mut self, ctx: &Ctx<Box<Factory>>) -> Phase {
        if let Phase::Body {
            on_http,
            mut request,
            body,
            ..
        } = std::mem::replace(&mut self.phase, CLOSING)
        {
            request.set_body(body);
            match guard(|| on_http(&request)) {
                Ok(response) => self.io.respond(&response.to_bytes()),
                Err(e) => return self.fail(ctx, e),
            }
        }
        CLOSING
    }

    fn fail_handshake(&mut self, ctx: &Ctx<Box<Factory>>, e: Error) -> Phase {
        match e {
            Error::Handshake(e) => self.refuse(ctx, e),
            e => {
                ctx.report(self.io.peer(), &e);
                CLOSING
            }
        }
    }

    /// A hook panicked: answer `500` and report it.
    fn fail(&mut self, ctx: &Ctx<Box<Factory>>, e: Error) -> Phase {
        self.io.respond(&crate::Response::status(500).to_bytes());
        ctx.report(self.io.peer(), &e);
        CLOSING
    }

    /// Answers a refused request with its status and reports it.
    fn refuse(&mut self, ctx: &Ctx<Box<Factory>>, e: HandshakeError) -> Phase {
        self.io.respond(&e.response().to_bytes());
        ctx.report(self.io.peer(), &Error::Handshake(e));
        CLOSING
    }

    /// The periodic check (every `Worker::sweep_every`); `false` ends the connection.
    fn on_tick(&mut self, ctx: &Ctx<Box<Factory>>, now: Instant) -> bool {
        match &mut self.phase {
            Phase::Head { deadline, .. } | Phase::Body { deadline, .. } if now >= *deadline => {
                self.phase = self.refuse(ctx, HandshakeError::Timeout);
                self.advance(ctx, now)
            }
            Phase::Head { .. } | Phase::Body { .. } => true,
            Phase::Open(open) => {
                // Quiet since the last sweep: give back buffers grown for
                // large messages.
                if !std::mem::take(&mut open.active) {
                    open.conn.shrink();
                }
                open.conn.output_written(self.io.outbox.written());
                let stream = &self.io.stream;
                match open.conn.handle_timeout_with(now, || stream.unacked()) {
                    // A keepalive ping may be queued; a write that fails
                    // shows as the end of the stream.
                    None => drop(self.io.outbox.write_pending()),
                    Some(Expired::SendStalled(_)) => {
                        ctx.report(self.io.peer(), &stopped_reading());
                        return false;
                    }
                    Some(why) => {
                        ctx.report(self.io.peer(), &Error::TimedOut(why));
                        self.phase = CLOSING;
                        return self.advance(ctx, now);
                    }
                }
                true
            }
            Phase::Closing {
                linger_until,
                taken,
                ..
            } => {
                // Still sending: nothing taken for the write timeout ends it.
                if self.io.outbox.pending() == 0 {
                    *taken = None;
                } else {
                    let written = self.io.outbox.written();
                    match *taken {
                        Some((at, since)) if at == written => {
                            let limit = ctx.config.write_timeout;
                            if limit.is_some_and(|limit| now - since >= limit) {
                                ctx.report(self.io.peer(), &stopped_reading());
                                return false;
                            }
                        }
                        _ => *taken = Some((written, now)),
                    }
                }
                linger_until.is_none_or(|t| now < t)
            }
        }
    }
}

impl Open {
    /// Delivers every message that has arrived, reading as this turn
    /// allows; `Ok(true)` when it waits for more, `Ok(false)` once nothing
    /// more is read (the close handshake is done, or the client hung up
    /// after our close).
    fn drive(&mut self, io: &Io) -> Result<bool, Error> {
        loop {
            match self.conn.step() {
                Ok(Step::Message) => {
                    let Some(msg) = self.conn.message_ref() else {
                        continue;
                    };
                    let on_message = &mut self.on_message;
                    if let Err(e) = guard(|| on_message(msg)).and_then(|sent| sent) {
                        // The callback gave up on this client: close it.
                        let _ = self.sender.close(CloseCode::INTERNAL_ERROR, "");
                        return Err(e);
                    }
                }
                Ok(Step::Ping | Step::Pong | Step::Close) => {}
                Ok(Step::Wait) if !self.conn.wants_read() => return Ok(false),
                Ok(Step::Wait) => match io.read(self.conn.read_buf()) {
                    // After our close, the client may just hang up.
                    Ok(0) if self.conn.close_sent() => return Ok(false),
                    Ok(0) => return Err(Error::UnexpectedEof),
                    Ok(n) => self.conn.commit(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Io(e)),
                },
                Err(e) => return Err(Error::Protocol(e)),
            }
        }
    }
}

/// The connection's deadlines, from the server's configuration.
fn timeouts(config: &Config) -> Timeouts {
    Timeouts {
        read: config.read_timeout,
        keepalive: config.keepalive,
        close: None,
        write: config.write_timeout,
    }
}

/// Turns on permessage-deflate, in a frame of its own, so that the
/// loop's frames hold no room for the codec's kilobytes.
#[inline(never)]
fn enable_deflate(conn: &mut Connection<Arc<Outbox>>, deflate: Box<PerMessageDeflate>) {
    conn.enable_deflate(*deflate);
}

/// What a client that took none of our output for the write timeout is
/// dropped with.
fn stopped_reading() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        "client stopped reading",
    ))
}

/// Runs a user callback or hook; a panic in it becomes an error for its
/// client alone, not the end of the thread that serves the others.
fn guard<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    panic::catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| Error::Io(io::Error::other("a callback panicked")))
}

/// A connection whose last bytes are queued.
const CLOSING: Phase = Phase::Closing {
    linger_until: None,
    client_done: false,
    taken: None,
};

/// Reads what is there of a request head; `Some(len)` once it is complete.
fn read_head(
    io: &Io,
    buf: &mut Vec<u8>,
    scanner: &mut HeadScanner,
) -> Result<Option<usize>, Error> {
    loop {
        let filled = buf.len();
        let want = filled.clamp(1024, 16 << 10);
        if !read_more(io, buf, want)? && buf.len() == filled {
            return Ok(None);
        }
        if let Status::Complete(len) = scanner.scan(buf)? {
            return Ok(Some(len));
        }
    }
}

/// Reads up to `want` more bytes onto `buf`; `Ok(true)` when all came, or
/// `Ok(false)` when the socket had fewer.
fn read_more(io: &Io, buf: &mut Vec<u8>, want: usize) -> Result<bool, Error> {
    if want == 0 {
        return Ok(true);
    }
    let filled = buf.len();
    buf.resize(filled + want, 0);
    let result = io.read(&mut buf[filled..]);
    let n = *result.as_ref().unwrap_or(&0);
    buf.truncate(filled + n);
    match result {
        Ok(0) => Err(Error::UnexpectedEof),
        Ok(n) => Ok(n == want),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(Error::Io(e)),
    }
}
