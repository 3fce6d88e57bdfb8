//! # stdws
//!
//! An RFC 6455 WebSocket server, client and framing library on the standard
//! library alone (plus `sha1_smol` and `base64`): blocking IO, a thread per
//! client, no async runtime.
//!
//! ## A server in ten lines
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
//! Each client runs the closure in its own thread; [`Server::run_event_loop`]
//! serves many busy clients from one thread per CPU instead. Plain HTTP on the same
//! port, upgrade vetting, limits, timeouts, broadcasts ([`hub::Hub`]) and
//! shutdown are on [`Server`] and [`Config`]; [`client::connect`] is the
//! client; [`WebSocket`] works over any `Read + Write` stream.
//!
//! ## Layers
//!
//! Bytes flow up; each layer calls only the ones below it.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`server`], [`hub`], [`stream`] | accept loop (TCP and Unix), a thread per client or an epoll event loop (Linux), limits, timeouts, shutdown, HTTP fallback, broadcast |
//! | [`socket`], [`client`] | [`WebSocket`]: blocking `recv`/`send` over any stream; [`Sender`]; the client handshake |
//! | [`protocol`], [`timers`] | sans-IO state machines: bytes in, messages, pings, pongs, closes out; deadlines with time passed in |
//! | [`handshake`] | HTTP/1.1 request heads, the upgrade rules, responses |
//! | [`frame`], [`mask`], [`utf8`] | pure functions over byte slices |
// Two unsafe blocks, each proven by benchmark: `mask::simd` (a CPU-feature
// dispatch) and `epoll` (the event loop's three system calls).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod deflate;
#[cfg(target_os = "linux")]
mod epoll;
mod error;
#[cfg(target_os = "linux")]
mod event_loop;
pub mod extensions;
pub mod frame;
pub mod handshake;
pub mod hub;
mod limits;
pub mod mask;
mod message;
pub mod protocol;
pub mod random;
pub mod server;
pub mod socket;
pub mod stream;
pub mod timers;
pub mod utf8;

pub use error::Error;
pub use handshake::{Request, Response};
pub use limits::Limits;
pub use message::{CloseCode, CloseFrame, Message, MessageRef};
pub use server::{Accept, Config, Running, Server, ShutdownHandle};
pub use socket::{DuplexStream, Sender, WebSocket};
pub use stream::{Addr, Stream};
pub use timers::Keepalive;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The result of parsing input that may be incomplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsed; the value.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Partial,
}
