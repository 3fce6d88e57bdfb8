//! The opening handshake (RFC 6455 section 4) and the server's side of a
//! connection around it, without IO.
//!
//! [`HeadScanner`] finds the end of a request head in bytes that arrive in
//! pieces, looking at each byte once. [`Request::parse`] reads the head in one
//! pass; [`check_upgrade`] applies the rules of section 4.2.1 and gives the
//! `Sec-WebSocket-Accept` value or the HTTP status to refuse with.
//! [`serve::Lifecycle`] is one server connection from the request head to the
//! linger after the close, for any driver, blocking or not.

pub(crate) mod base64;
mod head;
pub mod serve;

pub use head::{
    accept_key, check_upgrade, reason_phrase, response_101, ConnectError, HandshakeError,
    HeadScanner, Headers, Request, Response, ResponseHead,
};
