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

mod config;
#[cfg(all(target_os = "linux", feature = "event-loop"))]
mod epoll;
#[cfg(all(target_os = "linux", feature = "event-loop"))]
mod event_loop;
pub mod hub;
mod lifecycle;
mod net;
#[cfg(all(target_os = "linux", feature = "event-loop"))]
mod outbox;
mod registry;
mod stats;
mod threaded;
mod tls;

pub use config::{Accept, Config};
pub use net::{Addr, Stream};
pub use stats::Stats;

use crate::blocking::{Sender, WebSocket};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::message::CloseCode;
#[cfg(feature = "event-loop")]
use crate::message::MessageRef;
use config::{ErrorHook, Handler, HttpHook, UpgradeHook};
#[cfg(all(target_os = "linux", feature = "event-loop"))]
use event_loop::Factory;
use net::Listener;
use registry::{wait_until_empty, Ctx, State};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A WebSocket server on a TCP or Unix listener, one thread per client.
pub struct Server {
    listener: Listener,
    config: Config,
    on_upgrade: Option<Arc<UpgradeHook>>,
    on_http: Option<Arc<HttpHook>>,
    on_error: Option<Arc<ErrorHook>>,
    tls: Option<Box<dyn tls::Wrap>>,
    state: Arc<State>,
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
            tls: None,
            state: Arc::new(State {
                stopping: AtomicBool::new(false),
                registry: Mutex::default(),
                ended: Condvar::new(),
                addr,
                counters: Arc::default(),
            }),
        }
    }

    /// Replaces the configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Vets each upgrade request before the `101`: return `Err(response)` to
    /// refuse (say `Response::status(401)`), or pick a subprotocol. A panic
    /// in it is answered with `500` and reported to `on_error`.
    pub fn on_upgrade(
        mut self,
        hook: impl Fn(&Request) -> Result<Accept, Response> + Send + Sync + 'static,
    ) -> Self {
        self.on_upgrade = Some(Arc::new(hook));
        self
    }

    /// Answers plain HTTP requests (those without `Upgrade: websocket`) on
    /// the same port, such as the page that opens the WebSocket. Without
    /// this hook they get `400`; a panic in it is answered with `500` and
    /// reported to `on_error`.
    pub fn on_http(mut self, hook: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        self.on_http = Some(Arc::new(hook));
        self
    }

    /// Receives every error: refused handshakes, failed connections, errors
    /// the handler returns, and panics in it or in a hook (as an
    /// [`Error::Io`] saying "a callback panicked").
    pub fn on_error(mut self, hook: impl Fn(&Addr, &Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// Serves `https://` and `wss://`: `hook` turns each accepted TCP
    /// connection into the stream the request is read from, such as
    /// rustls' `StreamOwned` (the library takes no TLS dependency; see
    /// `examples/tls/`). Thread-per-client mode ([`Server::run`]) only:
    /// [`Server::run_event_loop`] fails at once with a server that has it.
    ///
    /// - [`Config::handshake_timeout`] covers the TLS handshake too: a
    ///   client that has not completed it and its request head in time is
    ///   shut down, however slowly it sends.
    /// - An error or a panic in `hook` ends that connection alone, and
    ///   reaches [`Server::on_error`].
    /// - Unix-socket connections are local, and served without it.
    /// - Reads and writes take turns through the stream (TLS has one state
    ///   for both), but a read waits for the socket without holding it, so
    ///   a [`Sender`] is not held up by a client that says nothing. The
    ///   stream must keep what it read when a read times out, and return
    ///   all it holds decrypted when the buffer is large enough, as rustls
    ///   and OpenSSL do. A connection holds a second descriptor for the
    ///   socket.
    ///
    /// ```ignore
    /// let tls = Arc::new(rustls::ServerConfig::builder()
    ///     .with_no_client_auth()
    ///     .with_single_cert(certs, key)?);
    /// Server::bind("0.0.0.0:8443")?
    ///     .tls(move |tcp| {
    ///         let conn = rustls::ServerConnection::new(tls.clone()).map_err(io::Error::other)?;
    ///         Ok(rustls::StreamOwned::new(conn, tcp))
    ///     })
    ///     .run(|mut ws| { /* as over ws:// */ Ok(()) })
    /// ```
    pub fn tls<S>(
        mut self,
        hook: impl Fn(TcpStream) -> io::Result<S> + Send + Sync + 'static,
    ) -> Self
    where
        S: Read + Write + Send + 'static,
    {
        self.tls = Some(Box::new(tls::Tls::new(Box::new(move |tcp| {
            hook(tcp).map(|s| Box::new(s) as Box<dyn net::ReadWrite>)
        }))));
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Addr {
        self.state.addr.clone()
    }

    /// What the server has counted so far (see [`Stats`]); once it runs,
    /// ask a [`ShutdownHandle`] or the [`Running`] server.
    pub fn stats(&self) -> Stats {
        Stats::of(&self.state)
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
    ///
    /// Once `handler` returns, the connection is closed if it is not yet:
    /// with 1000 after `Ok`, with 1011 after an `Err`, which goes to
    /// `on_error` (an error that only says the client went away, see
    /// [`Error::is_disconnect`], gets 1000). A panic in `handler` is caught
    /// and ends its client alone, as an error does: close 1011, reported to
    /// `on_error`. (The default panic hook still prints the panic's message.)
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
            tls: self.tls,
            state: self.state,
        });
        threaded::run(ctx, self.listener)
    }

    /// Serves every client from a few event-loop threads (one per CPU, or
    /// [`Config::event_loop_threads`]) instead of a thread each. Linux only:
    /// elsewhere it fails at once with [`io::ErrorKind::Unsupported`]. Needs
    /// the `event-loop` feature (on by default).
    ///
    /// `factory` runs once per client, after the handshake, with the request
    /// and a [`Sender`]; it returns the callback that gets each of the
    /// client's messages, borrowed in place. Pings, pongs, closes, limits,
    /// timeouts, the HTTP hooks and shutdown work as with [`Server::run`],
    /// and so does the end of a client whose factory or callback fails or
    /// panics: close 1011, reported to `on_error`.
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
    #[cfg(feature = "event-loop")]
    pub fn run_event_loop<F, H>(self, factory: F) -> io::Result<()>
    where
        F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
        H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
    {
        if self.tls.is_some() {
            return Err(tls_unsupported());
        }
        #[cfg(not(target_os = "linux"))]
        {
            drop(factory);
            Err(event_loop_unsupported())
        }
        #[cfg(target_os = "linux")]
        self.run_epoll(factory)
    }

    #[cfg(all(target_os = "linux", feature = "event-loop"))]
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
            tls: None,
            state: self.state,
        });
        event_loop::run(ctx, self.listener, threads)
    }

    /// [`Server::run_event_loop`] on a background thread; the returned handle
    /// stops it. Off Linux it fails at once, as `run_event_loop` does.
    #[cfg(feature = "event-loop")]
    pub fn spawn_event_loop<F, H>(self, factory: F) -> io::Result<Running>
    where
        F: Fn(&Request, Sender) -> H + Send + Sync + 'static,
        H: FnMut(MessageRef<'_>) -> Result<(), Error> + 'static,
    {
        if cfg!(not(target_os = "linux")) {
            return Err(event_loop_unsupported());
        }
        if self.tls.is_some() {
            return Err(tls_unsupported());
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
#[cfg(feature = "event-loop")]
fn event_loop_unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the event loop needs Linux (epoll); on this platform serve with Server::run, a thread per client",
    )
}

/// What [`Server::run_event_loop`] answers a server with a TLS hook.
#[cfg(feature = "event-loop")]
fn tls_unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "the TLS hook needs a thread per client (Server::run): the event loop reads every socket without blocking into one buffer, and a TLS stream made by the hook blocks; terminate TLS in front of it (nginx), or serve with Server::run",
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

    /// What the server has counted so far: see [`Stats`].
    pub fn stats(&self) -> Stats {
        self.handle.stats()
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

    /// What the server has counted so far: see [`Stats`].
    pub fn stats(&self) -> Stats {
        Stats::of(&self.state)
    }

    /// Stops accepting, sends close 1001 to every WebSocket client, waits up
    /// to the configured shutdown timeout for their threads to finish, then
    /// shuts down the connections that remain. Returns how many were still
    /// running at the deadline (0: every client closed cleanly).
    pub fn shutdown(&self) -> usize {
        let state = &self.state;
        state.stopping.store(true, Ordering::Release);
        net::wake(&state.addr);
        let senders: Vec<Sender> = state
            .registry()
            .conns
            .values()
            .filter_map(|c| match c {
                registry::Conn::Open(sender) => Some(sender.clone()),
                registry::Conn::Handshake(_) => None,
            })
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
                conn.shut_down();
            }
            // Their reads fail at once; give the threads a moment to end.
            wait_until_empty(state, Instant::now() + Duration::from_secs(1));
        }
        left
    }
}
