//! # stdws
//!
//! An RFC 6455 WebSocket server, client and framing library on the standard
//! library alone (plus `sha1_smol`): blocking IO, a thread per client, no
//! async runtime.
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
//! ## Features
//!
//! All on by default. Code behind a feature is not compiled without it.
//!
//! | feature | what it brings |
//! | --- | --- |
//! | `std` | the blocking [`WebSocket`], [`Sender`], `client`, [`Server`], `hub`; threads, sockets, and the clock ([`Instant::now`]) |
//! | `deflate` | permessage-deflate (RFC 7692) and its codec, `deflate`; about 68 KB of code |
//! | `simd` (needs `std`) | the run-time-dispatched AVX2/AVX-512 unmask on x86-64: one `unsafe` block |
//! | `event-loop` (needs `std`) | `Server::run_event_loop`, Linux epoll: the other `unsafe` block |
//!
//! Without `std` the crate is `no_std` + `alloc` (it builds for
//! `thumbv7em-none-eabihf`): [`frame`], [`mask`], [`utf8`], the HTTP heads
//! and upgrade in [`http`] with [`http::serve::Lifecycle`], and the sans-IO
//! [`Connection`], with time passed in as an [`Instant`] counted from the
//! device's own origin. Without `simd` and `event-loop`, unsafe code is
//! forbidden crate-wide.
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
// Without `std`, the crate is a no_std + alloc core (layers 1 and 2).
#![cfg_attr(not(any(feature = "std", test)), no_std)]
// Two unsafe blocks, each proven by benchmark and each behind its feature:
// `mask::simd` (`simd`, a CPU-feature dispatch) and `server::epoll`
// (`event-loop`, the event loop's three system calls). Without both, no
// unsafe code is compiled at all.
#![cfg_attr(
    not(any(feature = "simd", feature = "event-loop")),
    forbid(unsafe_code)
)]
#![cfg_attr(any(feature = "simd", feature = "event-loop"), deny(unsafe_code))]
#![warn(missing_docs)]

extern crate alloc;

// Layer 1: pure functions and a codec over byte slices.
#[cfg(feature = "deflate")]
pub mod deflate;
pub mod frame;
mod instant;
mod limits;
pub mod mask;
mod message;
mod status;
pub mod utf8;
// Layer 2: sans-IO state machines (no sockets, threads or clock).
pub mod http;
pub mod proto;
// Layer 3: blocking drivers; layer 4: the server.
#[cfg(feature = "std")]
mod blocking;
#[cfg(feature = "std")]
mod error;
#[cfg(feature = "std")]
mod server;

#[cfg(feature = "std")]
pub use blocking::client;
#[cfg(feature = "std")]
pub use blocking::{DuplexStream, Sender, WebSocket};
#[cfg(feature = "std")]
pub use error::Error;
pub use frame::Role;
pub use http::{Request, Response};
pub use limits::Limits;
pub use message::{CloseCode, CloseFrame, Message, MessageRef};
#[cfg(feature = "deflate")]
pub use proto::extensions::permessage_deflate::DeflateConfig;
pub use proto::{Connection, Instant, Keepalive};
#[cfg(feature = "std")]
pub use server::hub;
#[cfg(feature = "std")]
pub use server::{Accept, Addr, Config, Running, Server, ShutdownHandle, Stats, Stream};
pub use status::Status;

/// Where virtual time starts in the sans-IO layers' unit tests: an hour
/// past the origin, as a driver's clock would be once running.
#[cfg(test)]
pub(crate) fn test_origin() -> proto::Instant {
    proto::Instant::from_duration(core::time::Duration::from_secs(3600))
}

/// The README's examples, compiled as doc tests (they use every feature).
#[cfg(all(doctest, feature = "deflate", feature = "event-loop"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
