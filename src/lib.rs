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
//! Bytes flow up; each layer calls only the ones below it (ARCHITECTURE.md
//! has the picture, and where each rule of RFC 6455 lives).
//!
//! | layer | modules | what it does |
//! | --- | --- | --- |
//! | server | [`Server`], [`Config`], [`hub`] | accept loop (TCP and Unix), a thread per client or an epoll event loop (Linux), limits, timeouts, shutdown, HTTP fallback, broadcast |
//! | blocking | [`WebSocket`], [`Sender`], [`client`] | blocking `recv`/`send` over any stream; the client handshake |
//! | sans-IO | [`proto`], [`http`] | [`Connection`]: both directions of a WebSocket as a state machine, deadlines with the time passed in; HTTP heads, the upgrade, and a server connection's life around it ([`http::serve`]) |
//! | pure | [`frame`], [`mask`], [`utf8`], [`deflate`] | functions and a codec over byte slices |
//!
//! ## Two connections talking in memory
//!
//! [`Connection`] has no IO: bytes in, events out; sends in, bytes out. A
//! mio or tokio loop, or a device without an OS, drives it the same way the
//! crate's own drivers do.
//!
//! ```
//! use stdws::proto::{Connection, Event, MaskKeys};
//! use stdws::{CloseCode, Limits, Message};
//!
//! struct Keys(u32); // a client's masking keys; real ones must be unpredictable
//! impl MaskKeys for Keys {
//!     fn mask_key(&mut self) -> [u8; 4] {
//!         self.0 = self.0.wrapping_mul(2_654_435_761).wrapping_add(1);
//!         self.0.to_be_bytes()
//!     }
//! }
//!
//! /// Moves what `from` has to send into `to`.
//! fn wire(from: &mut Connection, to: &mut Connection) {
//!     let mut slices = [&[][..]; 8];
//!     let n = from.output(&mut slices);
//!     let bytes = slices[..n].concat();
//!     from.advance_output(bytes.len());
//!     let mut rest = &bytes[..];
//!     while !rest.is_empty() {
//!         let took = to.receive(rest);
//!         rest = &rest[took..];
//!     }
//! }
//!
//! let mut client = Connection::client(Limits::default(), Box::new(Keys(1)));
//! let mut server = Connection::server(Limits::default());
//! client.send_text("hello")?;
//! client.ping(b"?")?;
//! wire(&mut client, &mut server);
//! assert_eq!(server.next_event()?, Some(Event::Message(Message::from("hello"))));
//! assert!(matches!(server.next_event()?, Some(Event::Ping(p)) if &*p == b"?"));
//! wire(&mut server, &mut client); // the pong, queued by the server itself
//! assert!(matches!(client.next_event()?, Some(Event::Pong(p)) if &*p == b"?"));
//!
//! server.close(CloseCode::NORMAL, "bye")?;
//! wire(&mut server, &mut client);
//! assert!(matches!(client.next_event()?, Some(Event::Close(Some(f))) if f.reason == "bye"));
//! wire(&mut client, &mut server); // the client echoed the close
//! assert!(matches!(server.next_event()?, Some(Event::Close(_))));
//! assert!(server.is_finished() && client.is_finished());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// Two unsafe blocks, each proven by benchmark: `mask::simd` (a CPU-feature
// dispatch) and `server::epoll` (the event loop's three system calls).
#![deny(unsafe_code)]
#![warn(missing_docs)]

// Layer 1: pure functions and a codec over byte slices.
pub mod deflate;
pub mod frame;
mod limits;
pub mod mask;
mod message;
mod status;
pub mod utf8;
// Layer 2: sans-IO state machines (no sockets, threads or clock).
pub mod http;
pub mod proto;
// Layer 3: blocking drivers; layer 4: the server.
mod blocking;
mod error;
mod server;

pub use blocking::client;
pub use blocking::{DuplexStream, Sender, WebSocket};
pub use error::Error;
pub use frame::Role;
pub use http::{Request, Response};
pub use limits::Limits;
pub use message::{CloseCode, CloseFrame, Message, MessageRef};
pub use proto::extensions::permessage_deflate::DeflateConfig;
pub use proto::{Connection, Keepalive};
pub use server::hub;
pub use server::{Accept, Addr, Config, Running, Server, ShutdownHandle, Stream};
pub use status::Status;

/// An origin for virtual time in the sans-IO layers' unit tests: those
/// layers never read the clock, but an `Instant` can only come from it.
#[cfg(test)]
pub(crate) fn test_origin() -> std::time::Instant {
    std::time::Instant::now()
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
