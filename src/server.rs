//! The server: one call to bind, one closure per client, each in its own thread.
//!
//! ```no_run
//! use stdws::Server;
//!
//! fn main() -> std::io::Result<()> {
//!     Server::bind("0.0.0.0:8989")?.run(|mut ws| {
//!         while let Some(msg) = ws.recv()? {
//!             ws.send(msg)?;
//!         }
//!         Ok(())
//!     })
//! }
//! ```
//!
//! Plain HTTP requests on the same port go to [`Server::on_http`]; upgrade
//! requests can be vetted by [`Server::on_upgrade`]; errors reach
//! [`Server::on_error`] (the library prints nothing).
//!
//! ## Host and Origin: the default is safe for a device on a LAN
//!
//! A web page on any site can open a WebSocket (or POST a form) to a device
//! on the visitor's LAN. Two checks stop it, on by default for TCP:
//! - **Origin**: a request that carries `Origin` must come from the page the
//!   server itself served (same scheme-less host and port as `Host`), or from
//!   an origin listed in [`Config::allowed_origins`]. Cross-site WebSocket
//!   hijacking gets `403`.
//! - **Host**: `Host` must be an IP address, `localhost`, or a name listed in
//!   [`Config::allowed_hosts`]. A DNS-rebinding page (its own name resolving
//!   to the device) gets `403`. Add the device's DNS or mDNS name to serve it
//!   by name.
//!
//! Unix-socket connections are local and skip both checks.

#[cfg(target_os = "linux")]
use crate::event_loop::{self, Factory};
use crate::extensions::permessage_deflate::{negotiate, DeflateConfig, PerMessageDeflate};
use crate::handshake::{self, HandshakeError, Request, Response};
use crate::protocol::Role;
use crate::socket::{read_request, write_all_vectored, Sender};
use crate::stream::{self, Addr, Listener, Stream};
use crate::timers::Keepalive;
use crate::{CloseCode, Error, Limits, MessageRef, WebSocket};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Everything a [`Server`] can be tuned by; every field has a documented default.
#[derive(Clone, Debug)]
pub struct Config {
    /// Message, frame, fragment and request-head limits. Default: [`Limits::default`].
    pub limits: Limits,
    /// Most connections at once, handshakes included; over it a client gets
    /// `503` and is closed. Default 1024.
    pub max_connections: usize,
    /// Largest plain HTTP request body; over it, `413`. Default 64 KiB.
    pub max_body_size: usize,
    /// Stack size of each connection thread. Default 256 KiB: thousands of
    /// idle clients fit, and only the pages a thread touches use memory.
    pub stack_size: usize,
    /// Time allowed from accept to a complete request head, so that clients
    /// dribbling bytes cannot pin threads; over it, `408`. Default 10 s.
    pub handshake_timeout: Duration,
    /// Longest silence from a client before the connection is closed (1001).
    /// Default `None`: clients that only listen are normal.
    pub read_timeout: Option<Duration>,
    /// Longest a client that reads slowly or not at all may hold up what we
    /// send: a thread per client gives each whole frame this long, however
    /// many writes it takes; the event loop drops a client whose backlog has
    /// not moved for this long. Past it, nothing more is written (a frame
    /// may be cut short) and the connection is shut down. Default 10 s.
    pub write_timeout: Option<Duration>,
    /// Keepalive pings, so dead clients are noticed. Default: a ping after
    /// 30 s of silence, closed if nothing arrives 30 s later.
    pub keepalive: Option<Keepalive>,
    /// How long [`ShutdownHandle::shutdown`] waits for clients to finish
    /// their close handshakes. Default 5 s.
    pub shutdown_timeout: Duration,
    /// Origins allowed besides the server's own, such as
    /// `"http://192.168.1.10:8000"`; `"*"` allows any. Default: none.
    pub allowed_origins: Vec<String>,
    /// Host names allowed besides IP addresses and `localhost`, such as
    /// `"bb400.local"`; `"*"` allows any. Default: none.
    pub allowed_hosts: Vec<String>,
    /// Name of connection threads, as `ps` and debuggers show it. Default `"stdws-conn"`.
    pub thread_name: String,
    /// Threads of [`Server::run_event_loop`]; 0: one per CPU. Default 0.
    pub event_loop_threads: usize,
    /// permessage-deflate (RFC 7692), accepted when a client offers it.
    /// Default `None`: off. With it on, a connection holds up to about 295
    /// KiB more at 15-bit windows (35 KiB at 9 bits): see [`crate::deflate`].
    pub deflate: Option<DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            max_connections: 1024,
            max_body_size: 64 << 10,
            stack_size: 256 << 10,
            handshake_timeout: Duration::from_secs(10),
            read_timeout: None,
            write_timeout: Some(Duration::from_secs(10)),
            keepalive: Some(Keepalive {
                interval: Duration::from_secs(30),
                timeout: Duration::from_secs(30),
            }),
            shutdown_timeout: Duration::from_secs(5),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            thread_name: "stdws-conn".into(),
            event_loop_threads: 0,
            deflate: None,
        }
    }
}

/// What [`Server::on_upgrade`] agrees to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accept {
    /// The subprotocol chosen from [`Request::protocols`], if any.
    pub protocol: Option<String>,
}

impl Accept {
    /// Accepts with a subprotocol.
    pub fn with_protocol(protocol: &str) -> Self {
        Accept {
            protocol: Some(protocol.into()),
        }
    }
}

type Handler = dyn Fn(WebSocket<Stream>) -> Result<(), Error> + Send + Sync;
type UpgradeHook = dyn Fn(&Request) -> Result<Accept, Response> + Send + Sync;
pub(crate) type HttpHook = dyn Fn(&Request) -> Response + Send + Sync;
type ErrorHook = dyn Fn(&Addr, &Error) + Send + Sync;

/// A WebSocket server on a TCP or Unix listener, one thread per client.
pub struct Server {
    listener: Listener,
    config: Config,
    on_upgrade: Option<Arc<UpgradeHook>>,
    on_http: Option<Arc<HttpHook>>,
    on_error: Option<Arc<ErrorHook>>,
    state: Arc<State>,
}

/// What the accept loop, connection threads and shutdown handles share.
pub(crate) struct State {
    pub(crate) stopping: AtomicBool,
    registry: Mutex<Registry>,
    /// Signalled whenever a connection ends.
    ended: Condvar,
    pub(crate) addr: Addr,
}

#[derive(Default)]
pub(crate) struct Registry {
    next_id: u64,
    pub(crate) conns: HashMap<u64, Conn>,
}

/// A live connection, as shutdown sees it.
pub(crate) struct Conn {
    stream: Stream,
    /// Set once the WebSocket handshake is done.
    pub(crate) sender: Option<Sender>,
}

impl State {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry stays consistent even if a holder panicked.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything a connection needs; `H` is the handler (a closure per
/// client, or the event loop's per-client factory).
pub(crate) struct Ctx<H> {
    pub(crate) config: Config,
    pub(crate) handler: H,
    on_upgrade: Option<Arc<UpgradeHook>>,
    on_http: Option<Arc<HttpHook>>,
    on_error: Option<Arc<ErrorHook>>,
    pub(crate) state: Arc<State>,
}

impl<H> Ctx<H> {
    /// Hands an error to `on_error`; a panic in the hook goes no further.
    pub(crate) fn report(&self, peer: &Addr, error: &Error) {
        if let Some(hook) = &self.on_error {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(peer, error)));
        }
    }
}

impl Server {
    /// Listens on a TCP address.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Server> {
        Ok(Self::from_tcp(TcpListener::bind(addr)?))
    }

    /// Listens on a Unix socket path, replacing a stale socket file left by
    /// a server that is no longer running. Off Unix it fails with
    /// [`io::ErrorKind::Unsupported`].
    pub fn bind_unix(path: impl AsRef<Path>) -> io::Result<Server> {
        let path = path.as_ref();
        #[cfg(unix)]
        {
            if path.exists() && std::os::unix::net::UnixStream::connect(path).is_err() {
                std::fs::remove_file(path)?;
            }
            Ok(Self::from_unix(UnixListener::bind(path)?, path))
        }
        #[cfg(not(unix))]
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{}: Unix sockets are not available on this platform",
                path.display()
            ),
        ))
    }

    /// Serves on a TCP listener the caller bound.
    pub fn from_tcp(listener: TcpListener) -> Server {
        Self::new(Listener::Tcp(listener))
    }

    /// Serves on a Unix listener the caller bound at `path`. Unix only.
    #[cfg(unix)]
    pub fn from_unix(listener: UnixListener, path: impl Into<PathBuf>) -> Server {
        Self::new(Listener::Unix(listener, path.into()))
    }

    fn new(listener: Listener) -> Server {
        let addr = listener.local_addr().unwrap_or(Addr::Unix(None));
        Server {
            listener,
            config: Config::default(),
            on_upgrade: None,
            on_http: None,
            on_error: None,
            state: Arc::new(State {
                stopping: AtomicBool::new(false),
                registry: Mutex::default(),
                ended: Condvar::new(),
                addr,
            }),
        }
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Vets each upgrade request before the `101`: return `Err(response)` to
    /// refuse (say `Response::status(401)`), or pick a subprotocol.
    pub fn on_upgrade(
        mut self,
        hook: impl Fn(&Request) -> Result<Accept, Response> + Send + Sync + 'static,
    ) -> Self {
        self.on_upgrade = Some(Arc::new(hook));
        self
    }

    /// Answers plain HTTP requests (those without `Upgrade: websocket`) on
    /// the same port, such as the page that opens the WebSocket. Without
    /// this hook they get `400`.
    pub fn on_http(mut self, hook: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        self.on_http = Some(Arc::new(hook));
        self
    }

    /// Receives every error: refused handshakes, failed connections, and
    /// errors the handler returns.
    pub fn on_error(mut self, hook: impl Fn(&Addr, &Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Addr {
        self.state.addr.clone()
    }

    /// A handle that stops the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            state: self.state.clone(),
            timeout: self.config.shutdown_timeout,
        }
    }

    /// Serves until [`ShutdownHandle::shutdown`] is called, running `handler`
    /// in a new thread for each WebSocket client.
    pub fn run(
        self,
        handler: impl Fn(WebSocket<Stream>) -> Result<(), Error> + Send + Sync + 'static,
    ) -> io::Result<()> {
        let ctx = Arc::new(Ctx {
            config: self.config,
            handler: Box::new(handler) as Box<Handler>,
            on_upgrade: self.on_upgrade,
            on_http: self.on_http,
            on_error: self.on_error,
            state: self.state,
        });
        let state = &ctx.state;
        loop {
            let accepted = self.listener.accept();
            if state.stopping.load(Ordering::Acquire) {
                return Ok(());
            }
            let stream = match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    ctx.report(&state.addr, &Error::Io(e));
                    // Out of descriptors, say: back off rather than spin.
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let Some(id) = register(&ctx, &stream) else {
                refuse_busy(&ctx, stream);
                continue;
            };
            let thread_ctx = ctx.clone();
            let spawned = thread::Builder::new()
                .name(ctx.config.thread_name.clone())
                .stack_size(ctx.config.stack_size)
                .spawn(move || serve(thread_ctx, id, stream));
            if let Err(e) = spawned {
                deregister(state, id);
                ctx.report(&state.addr, &Error::Io(e));
            }
        }
    }

    /// Serves every client from a few event-loop threads (one per CPU, or
    /// [`Config::event_loop_threads`]) instead of a thread each. Linux only:
    /// elsewhere it fails at once with [`io::ErrorKind::Unsupported`].
    ///
    /// `factory` runs once per client, after the handshake, with the request
    /// and a [`Sender`]; it returns the callback that gets each of the
    /// client's messages, borrowed in place. Pings, pongs, closes, limits,
    /// timeouts, the HTTP hooks and shutdown work as with [`Server::run`].
    /// Callbacks run on the event-loop thread, so one that blocks stalls
    /// that thread's other clients: hand long work (and
    /// [`ShutdownHandle::shutdown`], which waits for clients) to another
    /// thread, which can answer through a clone of the `Sender`.
    ///
    /// ```no_run
    /// use stdws::{MessageRef, Server};
    ///
    /// fn main() -> std::io::Result<()> {
    ///     Server::bind("0.0.0.0:8989")?.run_event_loop(|_request, tx| {
    ///         move |msg: MessageRef<'_>| tx.send_ref(msg)
    ///     })
    /// }
    /// ```
    pub fn run_event_loop<F, H>(self, factory: F) -> io::Result<()>
    where
        F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
        H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
    {
        #[cfg(not(target_os = "linux"))]
        {
            drop(factory);
            Err(event_loop_unsupported())
        }
        #[cfg(target_os = "linux")]
        self.run_epoll(factory)
    }

    #[cfg(target_os = "linux")]
    fn run_epoll<F, H>(self, factory: F) -> io::Result<()>
    where
        F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
        H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
    {
        let threads = match self.config.event_loop_threads {
            0 => thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let factory: Box<Factory> = Box::new(move |request: &Request, tx: Sender| {
            Box::new(factory(request, tx)) as event_loop::OnMessage
        });
        let ctx = Arc::new(Ctx {
            config: self.config,
            handler: factory,
            on_upgrade: self.on_upgrade,
            on_http: self.on_http,
            on_error: self.on_error,
            state: self.state,
        });
        event_loop::run(ctx, self.listener, threads)
    }

    /// [`Server::run_event_loop`] on a background thread; the returned handle
    /// stops it. Off Linux it fails at once, as `run_event_loop` does.
    pub fn spawn_event_loop<F, H>(self, factory: F) -> io::Result<Running>
    where
        F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
        H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
    {
        if cfg!(not(target_os = "linux")) {
            return Err(event_loop_unsupported());
        }
        self.spawn_as("stdws-loop", move |server| server.run_event_loop(factory))
    }

    /// Serves on a background thread; the returned handle stops it.
    pub fn spawn(
        self,
        handler: impl Fn(WebSocket<Stream>) -> Result<(), Error> + Send + Sync + 'static,
    ) -> io::Result<Running> {
        self.spawn_as("stdws-accept", move |server| server.run(handler))
    }

    /// Runs `serve` with this server on a thread named `name`.
    fn spawn_as(
        self,
        name: &str,
        serve: impl FnOnce(Server) -> io::Result<()> + Send + 'static,
    ) -> io::Result<Running> {
        let handle = self.shutdown_handle();
        let addr = self.local_addr();
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || serve(self))?;
        Ok(Running {
            handle,
            addr,
            thread: Some(thread),
        })
    }
}

/// What [`Server::run_event_loop`] answers off Linux.
fn event_loop_unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the event loop needs Linux (epoll); on this platform serve with Server::run, a thread per client",
    )
}

/// A server running on a background thread ([`Server::spawn`]).
pub struct Running {
    handle: ShutdownHandle,
    addr: Addr,
    thread: Option<thread::JoinHandle<io::Result<()>>>,
}

impl Running {
    /// The address the server listens on.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// A handle that stops the server.
    pub fn handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Stops the server as [`ShutdownHandle::shutdown`] does and waits for
    /// its accept thread; returns the connections still running at the deadline.
    pub fn shutdown(mut self) -> usize {
        let left = self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        left
    }
}

/// Stops a server: see [`ShutdownHandle::shutdown`].
#[derive(Clone)]
pub struct ShutdownHandle {
    state: Arc<State>,
    timeout: Duration,
}

impl ShutdownHandle {
    /// Connections open right now, handshakes included.
    pub fn connections(&self) -> usize {
        self.state.registry().conns.len()
    }

    /// Stops accepting, sends close 1001 to every WebSocket client, waits up
    /// to the configured shutdown timeout for their threads to finish, then
    /// shuts down the connections that remain. Returns how many were still
    /// running at the deadline (0: every client closed cleanly).
    pub fn shutdown(&self) -> usize {
        let state = &self.state;
        state.stopping.store(true, Ordering::Release);
        stream::wake(&state.addr);
        let senders: Vec<Sender> = state
            .registry()
            .conns
            .values()
            .filter_map(|c| c.sender.clone())
            .collect();
        // On its own thread, so that a client that does not read cannot hold
        // this one past the deadline.
        let _ = thread::Builder::new()
            .name("stdws-closer".into())
            .stack_size(64 << 10)
            .spawn(move || {
                for sender in senders {
                    let _ = sender.close(CloseCode::GOING_AWAY, "server shutting down");
                }
            });
        let left = wait_until_empty(state, Instant::now() + self.timeout);
        if left > 0 {
            for conn in state.registry().conns.values() {
                let _ = conn.stream.shutdown(Shutdown::Both);
            }
            // Their reads fail at once; give the threads a moment to end.
            wait_until_empty(state, Instant::now() + Duration::from_secs(1));
        }
        left
    }
}

fn wait_until_empty(state: &State, deadline: Instant) -> usize {
    let mut registry = state.registry();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if registry.conns.is_empty() || left.is_zero() {
            return registry.conns.len();
        }
        registry = match state.ended.wait_timeout(registry, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

/// Takes a connection slot, or `None` at the limit.
pub(crate) fn register<H>(ctx: &Ctx<H>, stream: &Stream) -> Option<u64> {
    let mut registry = ctx.state.registry();
    if registry.conns.len() >= ctx.config.max_connections {
        return None;
    }
    let id = registry.next_id;
    registry.next_id += 1;
    registry.conns.insert(
        id,
        Conn {
            stream: stream.clone(),
            sender: None,
        },
    );
    Some(id)
}

/// A connection in slot `id` is now a WebSocket: shutdown closes it through
/// `sender` (at once, if shutdown began during its handshake).
pub(crate) fn opened(state: &State, id: u64, sender: &Sender) {
    if let Some(conn) = state.registry().conns.get_mut(&id) {
        conn.sender = Some(sender.clone());
    }
    if state.stopping.load(Ordering::Acquire) {
        let _ = sender.close(CloseCode::GOING_AWAY, "server shutting down");
    }
}

pub(crate) fn deregister(state: &State, id: u64) {
    state.registry().conns.remove(&id);
    state.ended.notify_all();
}

/// Frees the connection's slot when its thread ends, however it ends.
struct Slot<'a> {
    state: &'a State,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        deregister(self.state, self.id);
    }
}

/// Answers `503` from the accept thread without reading the request.
pub(crate) fn refuse_busy<H>(ctx: &Ctx<H>, stream: Stream) {
    let error = HandshakeError::TooManyConnections {
        limit: ctx.config.max_connections,
    };
    // A fresh socket's send buffer is empty, so this does not block; the
    // timeout is a guard.
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    respond(&stream, &error.response());
    ctx.report(stream.peer_addr(), &Error::Handshake(error));
}

/// Writes a response, then half-closes so the client sees the end of it.
fn respond(stream: &Stream, response: &Response) {
    let _ = write_all_vectored(&mut stream.clone(), &response.to_bytes(), &[]);
    let _ = stream.shutdown(Shutdown::Write);
}

/// A connection thread: serve, report, close.
fn serve(ctx: Arc<Ctx<Box<Handler>>>, id: u64, stream: Stream) {
    let _slot = Slot {
        state: &ctx.state,
        id,
    };
    if let Err(e) = serve_connection(&ctx, id, &stream) {
        ctx.report(stream.peer_addr(), &e);
    }
    linger_close(&stream);
}

/// Closes the way RFC 6455 7.1.1 and HTTP want: half-close, then read what
/// the client still sends until it closes too (briefly), so that our last
/// bytes are not destroyed by a reset.
fn linger_close(stream: &Stream) {
    const LINGER: Duration = Duration::from_secs(2);
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 2048];
    let mut reader = stream.clone();
    for _ in 0..512 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Reads with one deadline over all reads: the handshake timeout.
struct DeadlineReader {
    stream: Stream,
    deadline: Instant,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Sends the refusal for a handshake error and hands the error back.
fn refuse(stream: &Stream, error: HandshakeError) -> Error {
    respond(stream, &error.response());
    Error::Handshake(error)
}

fn serve_connection(ctx: &Ctx<Box<Handler>>, id: u64, stream: &Stream) -> Result<(), Error> {
    let Some(mut ws) = handshake(ctx, stream)? else {
        return Ok(()); // a plain HTTP request or a refusal, answered
    };
    let sender = ws.sender()?;
    opened(&ctx.state, id, &sender);
    let result = (ctx.handler)(ws);
    // A handler that returns without closing still ends the connection cleanly.
    let _ = sender.close(CloseCode::NORMAL, "");
    result
}

/// Reads the request and answers it: `Some` WebSocket once upgraded, `None`
/// once a plain HTTP request or a refusal was answered.
///
/// Not inlined: its temporaries (an extension's state is kilobytes) stay
/// off the stack while the handler runs, which is a page of memory per
/// connection thread.
#[inline(never)]
fn handshake(ctx: &Ctx<Box<Handler>>, stream: &Stream) -> Result<Option<WebSocket<Stream>>, Error> {
    let config = &ctx.config;
    stream.set_nodelay()?;
    stream.set_write_timeout(config.write_timeout)?;
    let mut reader = DeadlineReader {
        stream: stream.clone(),
        deadline: Instant::now() + config.handshake_timeout,
    };
    let (mut request, rest) = match read_request(&mut reader, &config.limits) {
        Ok(parsed) => parsed,
        Err(Error::Handshake(e)) => return Err(refuse(stream, e)),
        Err(Error::Io(e)) if is_timeout(&e) => return Err(refuse(stream, HandshakeError::Timeout)),
        Err(e) => return Err(e),
    };
    let upgrade = match route(ctx, &request, stream.is_unix()) {
        Ok(Route::Upgrade(upgrade)) => upgrade,
        Ok(Route::Http(on_http)) => {
            let body = match read_body(&mut reader, &request, rest, config.max_body_size) {
                Ok(body) => body,
                Err(Error::Handshake(e)) => return Err(refuse(stream, e)),
                Err(Error::Io(e)) if is_timeout(&e) => {
                    return Err(refuse(stream, HandshakeError::Timeout))
                }
                Err(e) => return Err(e),
            };
            request.set_body(body);
            respond(stream, &on_http(&request));
            return Ok(None);
        }
        Err(Refusal::Error(e)) => return Err(refuse(stream, e)),
        Err(Refusal::Hook(response)) => {
            respond(stream, &response);
            return Ok(None);
        }
    };
    write_all_vectored(&mut stream.clone(), &upgrade.response, &[])?;
    let mut ws = WebSocket::from_raw(stream.clone(), Role::Server, config.limits, &rest);
    if let Some(deflate) = upgrade.deflate {
        ws.enable_deflate_boxed(deflate);
    }
    let tick = ws.set_timeouts(config.read_timeout, config.keepalive);
    stream.set_read_timeout(tick)?;
    ws.set_handshake(Some(request), upgrade.protocol);
    Ok(Some(ws))
}

/// permessage-deflate as the client offered it, if it did, and the answer.
///
/// Not inlined, and boxed: the codec's state is kilobytes, and a caller's
/// stack frame would otherwise reserve (and touch) room for it on every
/// connection, compressed or not.
#[inline(never)]
fn negotiate_deflate(
    cfg: &DeflateConfig,
    request: &Request,
) -> Option<(Box<PerMessageDeflate>, String)> {
    let offers = request.headers().get_all("sec-websocket-extensions");
    let (agreed, answer) = negotiate(offers, cfg)?;
    Some((
        Box::new(PerMessageDeflate::new(Role::Server, &agreed, cfg)),
        answer,
    ))
}

/// Where a request goes once its head is complete.
pub(crate) enum Route<'a> {
    /// A plain HTTP request, for this hook once its body is read.
    Http(&'a Arc<HttpHook>),
    /// A WebSocket upgrade that was accepted.
    Upgrade(Box<Upgrade>),
}

/// An accepted upgrade: the `101` to send, and what it agreed.
pub(crate) struct Upgrade {
    pub(crate) response: Vec<u8>,
    pub(crate) protocol: Option<String>,
    pub(crate) deflate: Option<Box<PerMessageDeflate>>,
}

/// Why a request is turned away.
pub(crate) enum Refusal {
    /// The request broke a rule; answer with its status.
    Error(HandshakeError),
    /// [`Server::on_upgrade`] refused it with this response.
    Hook(Response),
}

/// Decides what a complete request head gets: Host and Origin checks (TCP
/// only), the upgrade rules, the hooks and the extension negotiation.
/// Pure: both the threaded server and the event loop call it.
pub(crate) fn route<'a, H>(
    ctx: &'a Ctx<H>,
    request: &Request,
    is_unix: bool,
) -> Result<Route<'a>, Refusal> {
    let config = &ctx.config;
    if !is_unix {
        check_host_and_origin(config, request).map_err(Refusal::Error)?;
    }
    if !request.is_websocket_upgrade() {
        return match &ctx.on_http {
            Some(on_http) => Ok(Route::Http(on_http)),
            None => Err(Refusal::Error(HandshakeError::NotWebSocketUpgrade)),
        };
    }
    let accept_key = handshake::check_upgrade(request).map_err(Refusal::Error)?;
    let protocol = match &ctx.on_upgrade {
        None => None,
        Some(hook) => hook(request).map_err(Refusal::Hook)?.protocol,
    };
    let deflate = config
        .deflate
        .as_ref()
        .and_then(|cfg| negotiate_deflate(cfg, request));
    let answer = deflate.as_ref().map(|(_, answer)| answer.as_str());
    Ok(Route::Upgrade(Box::new(Upgrade {
        response: handshake::response_101(&accept_key, protocol.as_deref(), answer),
        protocol,
        deflate: deflate.map(|(deflate, _)| deflate),
    })))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads a plain request's body: `rest` (bytes that came with the head), then
/// the remainder of `Content-Length`.
fn read_body(
    reader: &mut DeadlineReader,
    request: &Request,
    mut rest: Vec<u8>,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let len = request.content_length()?;
    if len > limit {
        return Err(HandshakeError::BodyTooLarge { limit }.into());
    }
    if rest.len() < len && request.headers().has_token("expect", "100-continue") {
        reader.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let have = rest.len().min(len);
    rest.resize(len, 0);
    reader
        .read_exact(&mut rest[have..])
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::UnexpectedEof,
            _ => Error::Io(e),
        })?;
    Ok(rest)
}

/// `host` without a port: `[::1]:80` gives `::1`, `a.b:80` gives `a.b`.
fn host_name(host: &str) -> &str {
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn host_allowed(allowed: &[String], host: &str) -> bool {
    let name = host_name(host);
    let local =
        name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost");
    name.parse::<IpAddr>().is_ok()
        || local
        || allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(name) || a.eq_ignore_ascii_case(host))
}

/// Whether `origin` may use this server: listed, or the same host and port as `host`.
fn origin_allowed(allowed: &[String], origin: &str, host: &str) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false; // "null" and other opaque origins
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return false,
    };
    let strip = |a: &str| {
        a.strip_suffix(default_port)
            .unwrap_or(a)
            .to_ascii_lowercase()
    };
    strip(authority.trim_end_matches('/')) == strip(host)
}

fn check_host_and_origin(config: &Config, request: &Request) -> Result<(), HandshakeError> {
    // No Host at all is malformed (400, from the upgrade check) or HTTP/1.0;
    // browsers always send one, so there is nothing to rebind.
    let Some(host) = request.header("host") else {
        return Ok(());
    };
    if !host_allowed(&config.allowed_hosts, host) {
        return Err(HandshakeError::Forbidden(format!(
            "host {host:?} is not allowed (add it to Config::allowed_hosts)"
        )));
    }
    if let Some(origin) = request.header("origin") {
        if !origin_allowed(&config.allowed_origins, origin, host) {
            return Err(HandshakeError::Forbidden(format!(
                "origin {origin:?} is not allowed (add it to Config::allowed_origins)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hosts_default_to_ip_addresses_and_localhost() {
        for host in [
            "127.0.0.1:8989",
            "192.168.1.50",
            "[::1]:80",
            "localhost:9",
            "car.localhost",
        ] {
            assert!(host_allowed(&[], host), "{host}");
        }
        for host in ["evil.example", "evil.example:8989", "", "bb400.local"] {
            assert!(!host_allowed(&[], host), "{host}");
        }
        assert!(host_allowed(&strings(&["bb400.local"]), "BB400.local:8989"));
        assert!(host_allowed(&strings(&["*"]), "anything"));
    }

    #[test]
    fn origins_default_to_the_same_host_and_port() {
        assert!(origin_allowed(
            &[],
            "http://192.168.1.50:8989",
            "192.168.1.50:8989"
        ));
        assert!(origin_allowed(&[], "http://device", "device:80"));
        assert!(origin_allowed(&[], "https://device:443", "device"));
        assert!(!origin_allowed(
            &[],
            "http://evil.example",
            "192.168.1.50:8989"
        ));
        assert!(!origin_allowed(
            &[],
            "http://192.168.1.50:8000",
            "192.168.1.50:8989"
        ));
        assert!(!origin_allowed(&[], "null", "192.168.1.50:8989"));
        // Only web schemes can be the server's own page.
        assert!(!origin_allowed(
            &[],
            "chrome-extension://192.168.1.50:8989",
            "192.168.1.50:8989"
        ));
        assert!(!origin_allowed(&[], "file://", ""));
        let listed = strings(&["http://192.168.1.10:8000"]);
        assert!(origin_allowed(
            &listed,
            "http://192.168.1.10:8000",
            "192.168.1.50:8989"
        ));
    }
}
