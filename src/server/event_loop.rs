//! The event loop behind [`Server::run_event_loop`](crate::Server::run_event_loop):
//! every client served from a few threads (one per CPU by default), each
//! waiting on epoll for whichever of its clients is ready. Linux only.
//!
//! A connection is a [`WebSocket`] over a [`Queued`] stream: reads that
//! would block end a turn instead of blocking, and writes never block, so
//! the WebSocket layer's close, ping and error handling runs unchanged.

use super::config::HttpHook;
use super::epoll::{self, Epoll, Event};
use super::lifecycle::{route, Refusal, Route};
use super::net::{Listener, Stream};
use super::registry::{self, Ctx};
use crate::blocking::DuplexStream;
use crate::blocking::Sender;
use crate::blocking::WebSocket;
use crate::error::Error;
use crate::frame::Role;
use crate::http::{HandshakeError, HeadScanner, Request};
use crate::message::CloseCode;
use crate::message::MessageRef;
use crate::proto::{SendQueue, TimerAction, Timers};
use crate::status::Status;
use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a client's messages go to: made per client by the factory.
pub(crate) type OnMessage = Box<dyn FnMut(MessageRef<'_>) -> Result<(), Error>>;
/// Makes the message callback of each new client.
pub(crate) type Factory = dyn Fn(&Request, Sender) -> OnMessage + Send + Sync;

/// Over this many bytes waiting for a client, its connection is not read
/// until they drain: a client that sends but does not read is held here.
pub(crate) const BACKLOG_HIGH: usize = 256 << 10;

/// Sent bytes are cut from the front of a backlog once this many pile up.
const COMPACT_AT: usize = 64 << 10;

/// The most reads one readiness event gets before other clients' turns.
const READS_PER_TURN: u8 = 16;

/// How often each thread looks at deadlines and at a shutdown request.
const TICK: Duration = Duration::from_millis(100);

/// How long a closing connection waits for the client's end of the TCP close.
const LINGER: Duration = Duration::from_secs(2);

/// The listener's token; connections count up from 0.
const LISTENER: u64 = u64::MAX;

thread_local! {
    /// Set on event-loop threads, whose writes must never wait.
    static ON_LOOP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

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
                ON_LOOP.with(|on| on.set(true));
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
    conns: HashMap<u64, Conn>,
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
        let timers = Timers::new(config.read_timeout, config.keepalive, Instant::now());
        let sweep_every = [Some(config.handshake_timeout), timers.tick()]
            .into_iter()
            .flatten()
            .fold(Duration::from_secs(1), Duration::min)
            .max(Duration::from_millis(10));
        Ok(Worker {
            ctx,
            epoll,
            listener: Some(listener),
            accepting: true,
            conns: HashMap::new(),
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
        let backlog_cap = self.ctx.config.limits.max_message_size + 2 * BACKLOG_HIGH;
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
            let conn = Conn {
                queued: Queued::new(
                    stream,
                    self.epoll.clone(),
                    token,
                    backlog_cap,
                    self.ctx.config.write_timeout,
                ),
                phase: Phase::Head {
                    buf: Vec::new(),
                    scanner: HeadScanner::new(self.ctx.config.limits.max_head_size),
                    deadline: now + self.ctx.config.handshake_timeout,
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
            if let Err(e) = conn.queued.drain() {
                self.ctx
                    .report(conn.queued.stream.peer_addr(), &Error::Io(e));
                self.drop_conn(token);
                return;
            }
        }
        if events & (epoll::READABLE | epoll::ERROR_OR_HANGUP) != 0 {
            conn.queued
                .inner
                .reads
                .store(READS_PER_TURN, Ordering::Relaxed);
        }
        // A client that sends, or takes what we send, is alive: while a
        // large backlog drains it is not read, and must not time out.
        if let Phase::Open(open) = &mut conn.phase {
            open.timers.heard(now);
            open.active = true;
        }
        if !conn.advance(&self.ctx, now) {
            self.drop_conn(token);
        }
    }

    /// Deadlines: handshakes that take too long, keepalive pings, silent
    /// clients, lingering closes; in one pass, every `sweep_every`.
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
            let _ = self.epoll.delete(&conn.queued.stream);
            // Senders kept elsewhere hold the descriptor open: make sure the
            // client sees the end now.
            let _ = conn.queued.close();
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

/// One client of a worker.
struct Conn {
    queued: Queued,
    phase: Phase,
    /// The server registry's slot (counts toward `max_connections`).
    slot: u64,
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
    /// still going out; `client_done` once the client's end arrived.
    Closing {
        linger_until: Option<Instant>,
        client_done: bool,
    },
}

struct Open {
    ws: WebSocket<Queued>,
    sender: Sender,
    on_message: OnMessage,
    timers: Timers,
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
                } => match read_head(&mut self.queued, buf, scanner) {
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
                    match read_more(&mut self.queued, body, want) {
                        Ok(true) => continue,
                        Ok(false) => return true,
                        Err(e) => self.fail_handshake(ctx, e),
                    }
                }
                Phase::Open(open) => match open.drive() {
                    Ok(true) => return true,
                    Ok(false) => CLOSING,
                    Err(e) => {
                        ctx.report(self.queued.stream.peer_addr(), &e);
                        CLOSING
                    }
                },
                Phase::Closing {
                    linger_until,
                    client_done,
                } => {
                    let drained = self.queued.is_drained();
                    if linger_until.is_none() && drained {
                        *linger_until = Some(now + LINGER);
                        let _ = self.queued.stream.shutdown(Shutdown::Write);
                    }
                    if *client_done {
                        return !drained; // both ends are done once ours is out
                    }
                    // Discard what the client still sends, until its end.
                    let mut sink = [0u8; 2048];
                    return loop {
                        match self.queued.read(&mut sink) {
                            Ok(0) if drained => break false,
                            Ok(0) => {
                                // Its end came first: finish sending, and stop
                                // watching a socket that stays readable at EOF.
                                *client_done = true;
                                break self.queued.stop_reading().is_ok();
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
        let is_unix = self.queued.stream.is_unix();
        let route = match guard(|| route(ctx, &request, is_unix)) {
            Ok(route) => route,
            Err(e) => return self.fail(ctx, e),
        };
        match route {
            Err(Refusal::Error(e)) => self.refuse(ctx, e),
            Err(Refusal::Hook(response)) => {
                let _ = self.queued.write_all(&response.to_bytes());
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
                    let _ = self.queued.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
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
                if self.queued.write_all(&upgrade.response).is_err() {
                    return CLOSING;
                }
                let limits = ctx.config.limits;
                let mut ws = WebSocket::from_raw(self.queued.clone(), Role::Server, limits, &rest);
                if let Some(deflate) = upgrade.deflate {
                    ws.enable_deflate_boxed(deflate);
                }
                ws.set_handshake(Some(request), upgrade.protocol);
                let sender = match ws.sender() {
                    Ok(sender) => sender,
                    Err(_) => return CLOSING,
                };
                registry::opened(&ctx.state, self.slot, &sender);
                let Some(request) = ws.request() else {
                    return CLOSING;
                };
                let on_message = match guard(|| (ctx.handler)(request, sender.clone())) {
                    Ok(on_message) => on_message,
                    Err(e) => {
                        let _ = sender.close(CloseCode::INTERNAL_ERROR, "");
                        ctx.report(self.queued.stream.peer_addr(), &e);
                        return CLOSING;
                    }
                };
                Phase::Open(Box::new(Open {
                    ws,
                    sender,
                    on_message,
                    timers: Timers::new(ctx.config.read_timeout, ctx.config.keepalive, now),
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
                Ok(response) => drop(self.queued.write_all(&response.to_bytes())),
                Err(e) => return self.fail(ctx, e),
            }
        }
        CLOSING
    }

    fn fail_handshake(&mut self, ctx: &Ctx<Box<Factory>>, e: Error) -> Phase {
        match e {
            Error::Handshake(e) => self.refuse(ctx, e),
            e => {
                ctx.report(self.queued.stream.peer_addr(), &e);
                CLOSING
            }
        }
    }

    /// A hook panicked: answer `500` and report it.
    fn fail(&mut self, ctx: &Ctx<Box<Factory>>, e: Error) -> Phase {
        let _ = self
            .queued
            .write_all(&crate::Response::status(500).to_bytes());
        ctx.report(self.queued.stream.peer_addr(), &e);
        CLOSING
    }

    /// Answers a refused request with its status and reports it.
    fn refuse(&mut self, ctx: &Ctx<Box<Factory>>, e: HandshakeError) -> Phase {
        let _ = self.queued.write_all(&e.response().to_bytes());
        ctx.report(self.queued.stream.peer_addr(), &Error::Handshake(e));
        CLOSING
    }

    /// The periodic check (every `Worker::sweep_every`); `false` ends the connection.
    fn on_tick(&mut self, ctx: &Ctx<Box<Factory>>, now: Instant) -> bool {
        if self.queued.stalled(ctx.config.write_timeout, now) {
            let e = io::Error::new(io::ErrorKind::TimedOut, "client stopped reading");
            ctx.report(self.queued.stream.peer_addr(), &Error::Io(e));
            return false;
        }
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
                    open.ws.shrink();
                }
                let written = self.queued.inner.written.load(Ordering::Relaxed);
                match open
                    .timers
                    .poll_sending(now, written, || self.queued.send_queue())
                {
                    TimerAction::Wait => true,
                    TimerAction::SendPing => {
                        let _ = open.sender.ping(&[]);
                        true
                    }
                    TimerAction::Expire(why) => {
                        let _ = open.sender.close(CloseCode::GOING_AWAY, "timeout");
                        ctx.report(self.queued.stream.peer_addr(), &Error::TimedOut(why));
                        self.phase = CLOSING;
                        self.advance(ctx, now)
                    }
                }
            }
            // Still sending: the stall check above bounds it.
            Phase::Closing { linger_until, .. } => linger_until.is_none_or(|t| now < t),
        }
    }
}

impl Open {
    /// Delivers every message that has arrived; `Ok(true)` when it waits
    /// for more, `Ok(false)` once the close handshake is done.
    fn drive(&mut self) -> Result<bool, Error> {
        loop {
            match self.ws.recv_ref() {
                Ok(Some(msg)) => {
                    let on_message = &mut self.on_message;
                    if let Err(e) = guard(|| on_message(msg)).and_then(|sent| sent) {
                        // The callback gave up on this client: close it.
                        let _ = self.sender.close(CloseCode::INTERNAL_ERROR, "");
                        return Err(e);
                    }
                }
                Ok(None) => return Ok(false),
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) => return Err(e),
            }
        }
    }
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
};

/// Reads what is there of a request head; `Some(len)` once it is complete.
fn read_head(
    queued: &mut Queued,
    buf: &mut Vec<u8>,
    scanner: &mut HeadScanner,
) -> Result<Option<usize>, Error> {
    loop {
        let filled = buf.len();
        let want = filled.clamp(1024, 16 << 10);
        if !read_more(queued, buf, want)? && buf.len() == filled {
            return Ok(None);
        }
        if let Status::Complete(len) = scanner.scan(buf)? {
            return Ok(Some(len));
        }
    }
}

/// Reads up to `want` more bytes onto `buf`; `Ok(true)` when all came, or
/// `Ok(false)` when the socket had fewer.
fn read_more(queued: &mut Queued, buf: &mut Vec<u8>, want: usize) -> Result<bool, Error> {
    if want == 0 {
        return Ok(true);
    }
    let filled = buf.len();
    buf.resize(filled + want, 0);
    let result = queued.read(&mut buf[filled..]);
    let n = *result.as_ref().unwrap_or(&0);
    buf.truncate(filled + n);
    match result {
        Ok(0) => Err(Error::UnexpectedEof),
        Ok(n) => Ok(n == want),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(Error::Io(e)),
    }
}

/// A nonblocking connection whose writes never block: what the socket does
/// not take waits in a backlog, sent when epoll reports room. Clones (the
/// [`Sender`]s) share the backlog, so any thread may write.
#[derive(Clone)]
pub(crate) struct Queued {
    stream: Stream,
    inner: Arc<Shared>,
}

struct Shared {
    backlog: Mutex<Backlog>,
    /// Signalled when the backlog drains or the connection ends: what a
    /// sender on another thread waits for.
    room: Condvar,
    /// The most bytes the backlog may hold; past it the client is dropped.
    cap: usize,
    /// How long a sender on another thread waits for room: the write timeout.
    wait: Option<Duration>,
    /// Reads left in this turn; when 0, reads report `WouldBlock`.
    reads: AtomicU8,
    /// The backlog's length as of its last change, readable without the lock.
    waiting: AtomicUsize,
    /// Bytes the socket has taken, for keepalive's view of the send queue.
    written: AtomicU64,
    epoll: Arc<Epoll>,
    token: u64,
}

#[derive(Default)]
struct Backlog {
    bytes: Vec<u8>,
    /// How much of `bytes` has been sent.
    sent: usize,
    /// The epoll interest last set.
    interest: u32,
    /// When the client last took bytes, while some wait.
    stalled_since: Option<Instant>,
    /// Cleared when nothing more is to be read from the client.
    reading: bool,
    /// Senders on other threads waiting for room.
    waiters: usize,
    /// Set when the connection ends: waiting senders give up.
    closed: bool,
}

impl Backlog {
    fn len(&self) -> usize {
        self.bytes.len() - self.sent
    }
}

impl Queued {
    fn new(
        stream: Stream,
        epoll: Arc<Epoll>,
        token: u64,
        cap: usize,
        wait: Option<Duration>,
    ) -> Queued {
        Queued {
            stream,
            inner: Arc::new(Shared {
                room: Condvar::new(),
                cap,
                wait,
                backlog: Mutex::new(Backlog {
                    interest: epoll::READABLE,
                    reading: true,
                    ..Backlog::default()
                }),
                reads: AtomicU8::new(0),
                waiting: AtomicUsize::new(0),
                written: AtomicU64::new(0),
                epoll,
                token,
            }),
        }
    }

    fn backlog(&self) -> MutexGuard<'_, Backlog> {
        self.inner.backlog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether bytes have waited for the client longer than `timeout`.
    fn stalled(&self, timeout: Option<Duration>, now: Instant) -> bool {
        match (self.backlog().stalled_since, timeout) {
            (Some(since), Some(timeout)) => now.saturating_duration_since(since) >= timeout,
            _ => false,
        }
    }

    fn is_drained(&self) -> bool {
        self.inner.waiting.load(Ordering::Relaxed) == 0
    }

    /// Sends what the backlog holds, as far as the socket takes it.
    fn drain(&self) -> io::Result<()> {
        let mut backlog = self.backlog();
        while backlog.len() > 0 {
            let from = backlog.sent;
            match (&mut &self.stream).write(&backlog.bytes[from..]) {
                Ok(n) => {
                    backlog.sent += n;
                    backlog.stalled_since = Some(Instant::now());
                    self.took(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if backlog.waiters > 0 && backlog.len() == 0 {
            self.inner.room.notify_all();
        }
        if backlog.len() == 0 {
            backlog.stalled_since = None;
            backlog.bytes.clear();
            backlog.sent = 0;
            if backlog.bytes.capacity() > BACKLOG_HIGH {
                backlog.bytes = Vec::new();
            }
        } else if backlog.sent >= COMPACT_AT {
            // Sent bytes go, or a client that reads slowly but forever would
            // grow the buffer without bound.
            let sent = std::mem::take(&mut backlog.sent);
            backlog.bytes.drain(..sent);
        }
        self.rearm(&mut backlog)
    }

    /// A sender on another thread (a hub's writer, say) waits while bytes
    /// wait for the client, as a blocking write waits for room in the
    /// socket, for at most the write timeout: so its own queue shows that
    /// the client is slow. An event-loop thread never waits.
    fn wait_for_room(&self) -> io::Result<()> {
        if self.inner.waiting.load(Ordering::Relaxed) == 0 || ON_LOOP.with(|on| on.get()) {
            return Ok(());
        }
        let deadline = self.inner.wait.map(|w| Instant::now() + w);
        let mut backlog = self.backlog();
        backlog.waiters += 1;
        let result = loop {
            if backlog.closed {
                break Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the connection was closed",
                ));
            }
            if backlog.len() == 0 {
                break Ok(());
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                break Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading",
                ));
            }
            backlog = match self.inner.room.wait_timeout(backlog, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        };
        backlog.waiters -= 1;
        result
    }

    /// Ends the connection for good: a shutdown, and waiting senders let go.
    fn close(&self) -> io::Result<()> {
        self.backlog().closed = true;
        self.inner.room.notify_all();
        self.stream.shutdown(Shutdown::Both)
    }

    /// Counts bytes the socket took (under the backlog's lock).
    fn took(&self, n: usize) {
        let written = &self.inner.written;
        written.store(
            written.load(Ordering::Relaxed) + n as u64,
            Ordering::Relaxed,
        );
    }

    /// What keepalive sees of the send queue.
    fn send_queue(&self) -> SendQueue {
        SendQueue {
            written: self.inner.written.load(Ordering::Relaxed),
            unacked: self.stream.unacked(),
        }
    }

    /// Stops watching for input: the client has nothing more to send.
    fn stop_reading(&self) -> io::Result<()> {
        let mut backlog = self.backlog();
        backlog.reading = false;
        self.rearm(&mut backlog)
    }

    /// Watches for room while bytes wait, and stops reading while too many do.
    fn rearm(&self, backlog: &mut Backlog) -> io::Result<()> {
        self.inner.waiting.store(backlog.len(), Ordering::Relaxed);
        let mut interest = 0;
        if backlog.reading && backlog.len() <= BACKLOG_HIGH {
            interest |= epoll::READABLE;
        }
        if backlog.len() > 0 {
            interest |= epoll::WRITABLE;
        }
        if interest != backlog.interest {
            backlog.interest = interest;
            self.inner
                .epoll
                .modify(&self.stream, interest, self.inner.token)?;
        }
        Ok(())
    }
}

impl Read for Queued {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.inner.reads.load(Ordering::Relaxed);
        if left == 0 || self.inner.waiting.load(Ordering::Relaxed) > BACKLOG_HIGH {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let result = (&mut &self.stream).read(buf);
        // A read that did not fill the buffer emptied the socket: the next
        // readiness event says when there is more.
        let more = matches!(result, Ok(n) if n == buf.len() && n > 0);
        self.inner
            .reads
            .store(if more { left - 1 } else { 0 }, Ordering::Relaxed);
        result
    }
}

impl Write for Queued {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Takes everything: what the socket does not, the backlog does.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let mut backlog = self.backlog();
        let mut sent = 0;
        if backlog.len() == 0 {
            let mut stream = &self.stream;
            let result = match bufs {
                [one] => stream.write(one),
                _ => stream.write_vectored(bufs),
            };
            sent = match result {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    0
                }
                Err(e) => return Err(e),
            };
            self.took(sent);
        }
        if sent < total {
            if backlog.len() + (total - sent) > self.inner.cap {
                // As a blocking write would time out: the client is gone or stuck.
                let _ = self.stream.shutdown(Shutdown::Both);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("client fell more than {} bytes behind", self.inner.cap),
                ));
            }
            if backlog.len() == 0 {
                backlog.stalled_since = Some(Instant::now());
            }
            let mut skip = sent;
            for buf in bufs {
                let take = skip.min(buf.len());
                skip -= take;
                backlog.bytes.extend_from_slice(&buf[take..]);
            }
            self.rearm(&mut backlog)?;
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DuplexStream for Queued {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(self.clone())
    }
    fn shutdown(&self) -> io::Result<()> {
        self.close()
    }
    fn wait_for_room(&self) -> io::Result<()> {
        Queued::wait_for_room(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    /// A `Queued` over the server end of a loopback connection, and the client end.
    fn queued_pair() -> (Queued, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = Stream::from(listener.accept().unwrap().0);
        stream.set_nonblocking().unwrap();
        let epoll = Arc::new(Epoll::new().unwrap());
        epoll.add(&stream, epoll::READABLE, 1).unwrap();
        (Queued::new(stream, epoll, 1, 64 << 20, None), client)
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets and epoll")]
    fn a_backlog_that_never_empties_does_not_keep_what_was_sent() {
        let (mut queued, mut client) = queued_pair();
        let chunk = vec![1u8; 256 << 10];
        // Fill the socket buffers (megabytes, once tuned), then 16 MiB more.
        while queued.inner.waiting.load(Ordering::Relaxed) < (16 << 20) {
            queued.write_all(&chunk).unwrap();
        }
        // A client that reads steadily but more slowly than it is written
        // to: the backlog never empties, while megabytes go through it.
        let mut buf = vec![0u8; 128 << 10];
        for _ in 0..32 {
            client.read_exact(&mut buf).unwrap();
            queued.drain().unwrap();
            queued.write_all(&chunk).unwrap();
            let backlog = queued.backlog();
            assert!(backlog.len() > 0, "the backlog was meant to stay busy");
            assert!(
                backlog.bytes.len() < backlog.len() + COMPACT_AT,
                "{} bytes kept for {} waiting",
                backlog.bytes.len(),
                backlog.len()
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "sockets and epoll")]
    fn past_the_cap_a_write_fails_and_shuts_the_connection() {
        let (mut queued, mut client) = queued_pair();
        let chunk = vec![2u8; 1 << 20];
        let error = loop {
            if let Err(e) = queued.write_all(&chunk) {
                break e;
            }
        };
        assert!(error.to_string().contains("fell more than"), "{error}");
        // The client gets what was sent, then the end.
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut sink = Vec::new();
        assert!(client.read_to_end(&mut sink).is_ok() || !sink.is_empty());
    }
}
