//! The WebSocket protocol without IO (RFC 6455 sections 5 to 7, RFC 7692):
//! bytes in, events out; sends in, bytes out; deadlines with the time
//! passed in. No sockets, threads or clock: any IO can drive it.

mod connection;
mod control;
mod error;
pub mod extensions;
pub(crate) mod inbound;
mod outbound;
mod timers;

pub use crate::frame::Role;
pub use crate::instant::Instant;
#[cfg(feature = "std")]
pub(crate) use connection::{opcode_of, Step};
pub use connection::{Connection, Input, Outlet, Timeouts};
pub use control::ControlPayload;
pub use error::{ProtocolError, SendError, MAX_CLOSE_REASON};
pub use inbound::Event;
#[cfg(feature = "std")]
pub(crate) use outbound::close_payload;
pub use outbound::{Frame, MaskKeys, Outbound, Payload};
#[cfg(feature = "std")]
pub(crate) use timers::Span;
pub use timers::{Expired, Keepalive};

/// Not part of the API: hooks for the crate's own fuzz targets and tests,
/// which may change or go away in any release.
#[doc(hidden)]
pub mod __internal {
    pub use super::inbound::READ_BUFFER_MAX;

    /// What a connection's receiving half holds: the bytes kept for
    /// assembling messages (never over `max_message_size`), and all of its
    /// bytes (that, the read buffer and an inflater).
    pub fn inbound_memory<O: super::Outlet>(conn: &super::Connection<O>) -> (usize, usize) {
        conn.inbound_memory()
    }
}
