//! Blocking drivers: a [`WebSocket`] over any `Read + Write` stream, the
//! [`Sender`] that writes to it from other threads, and the client.

pub mod client;
mod clock;
pub(crate) mod counters;
pub(crate) mod io;
pub(crate) mod random;
mod stream;
mod websocket;

pub(crate) use stream::tcp_unacked;
pub use stream::DuplexStream;
#[cfg(all(target_os = "linux", feature = "event-loop"))] // the event loop
pub(crate) use websocket::{peer_close_code, Queue};
pub use websocket::{Sender, WebSocket};
