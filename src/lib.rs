//! # stdws
//!
//! An RFC 6455 WebSocket server, client and framing library on the standard
//! library alone (plus `sha1_smol` and `base64`): blocking IO, a thread per
//! client, no async runtime.
//!
//! ## Layers
//!
//! Bytes flow up; each layer calls only the ones below it.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`socket`] | [`WebSocket`]: blocking `recv`/`send` over any `Read + Write` stream |
//! | [`protocol`] | sans-IO state machine: bytes in, messages, pings, pongs, closes out |
//! | [`handshake`] | HTTP/1.1 upgrade request parsing and responses |
//! | [`frame`], [`mask`], [`utf8`] | pure functions over byte slices |
//!
//! ## Echo server
//!
//! ```no_run
//! use std::net::TcpListener;
//! use stdws::WebSocket;
//!
//! fn main() -> Result<(), stdws::Error> {
//!     let listener = TcpListener::bind("127.0.0.1:9001")?;
//!     for stream in listener.incoming() {
//!         let stream = stream?;
//!         std::thread::spawn(move || -> Result<(), stdws::Error> {
//!             let mut ws = WebSocket::accept(stream)?;
//!             while let Some(msg) = ws.recv()? {
//!                 ws.send(msg)?;
//!             }
//!             Ok(())
//!         });
//!     }
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod error;
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
pub use message::{CloseCode, CloseFrame, Message};
pub use server::{Accept, Config, Running, Server, ShutdownHandle};
pub use socket::{DuplexStream, Sender, WebSocket};
pub use stream::{Addr, Stream};
pub use timers::Keepalive;

/// The result of parsing input that may be incomplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsed; the value.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Partial,
}
