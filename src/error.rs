//! The crate's error type: what went wrong and what the peer was told.

use crate::http::ConnectError;
use crate::http::HandshakeError;
use crate::message::CloseCode;
use crate::proto::Expired;
use crate::proto::{ProtocolError, SendError};
use std::{fmt, io};

/// Everything that can go wrong on a WebSocket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The stream failed: reset, timed out, or closed mid-handshake.
    Io(io::Error),
    /// The opening handshake was refused; the HTTP status was sent.
    Handshake(HandshakeError),
    /// A client could not connect: bad URL, refused, or a bad `101`.
    Connect(ConnectError),
    /// The peer broke the protocol; a close frame with the code was sent.
    Protocol(ProtocolError),
    /// The peer closed the TCP connection without a close frame (1006).
    UnexpectedEof,
    /// A close frame was already sent: no more messages can go out.
    Closed,
    /// An argument this API refuses, such as a ping payload over 125 bytes.
    InvalidInput(&'static str),
    /// The peer stayed silent past a deadline; a close (1001) was sent.
    TimedOut(Expired),
}

impl Error {
    /// The close code the connection ended with, where one applies.
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(e) => Some(e.close_code()),
            Error::UnexpectedEof => Some(CloseCode(1006)),
            Error::TimedOut(_) => Some(CloseCode::GOING_AWAY),
            _ => None,
        }
    }

    /// Whether the peer simply went away (hung up, reset, or closed without a
    /// close frame): routine for a server, not worth logging as a fault.
    pub fn is_disconnect(&self) -> bool {
        match self {
            Error::UnexpectedEof => true,
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }

    /// The HTTP status sent for a refused handshake.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Handshake(e) => Some(e.status()),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Handshake(e) => write!(f, "handshake refused: {e}"),
            Error::Connect(e) => write!(f, "connect failed: {e}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::UnexpectedEof => f.write_str(
                "the peer closed the connection without a close frame (close code 1006)",
            ),
            Error::Closed => {
                f.write_str("the WebSocket is closing or closed: nothing more can be sent")
            }
            Error::InvalidInput(what) => write!(f, "invalid input: {what}"),
            Error::TimedOut(why) => write!(f, "timed out: {why} (close code 1001)"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::Connect(e) => Some(e),
            Error::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        Error::Connect(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::InvalidInput(what) => Error::InvalidInput(what),
            _ => Error::Closed,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

/// Lets handlers written with `io::Result` use `?` on this crate's calls.
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::UnexpectedEof => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            Error::Closed => io::Error::new(io::ErrorKind::BrokenPipe, e),
            Error::TimedOut(_) => io::Error::new(io::ErrorKind::TimedOut, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Expired;
    use std::time::Duration;

    #[test]
    fn a_peer_that_hung_up_is_a_disconnect_and_nothing_else_is() {
        for kind in [
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
        ] {
            assert!(Error::Io(kind.into()).is_disconnect(), "{kind:?}");
        }
        assert!(Error::UnexpectedEof.is_disconnect());
        for not in [
            Error::Io(io::ErrorKind::ConnectionRefused.into()),
            Error::Io(io::ErrorKind::TimedOut.into()),
            Error::Closed,
            Error::TimedOut(Expired::ReadTimeout(Duration::from_secs(1))),
            Error::Protocol(ProtocolError::UnmaskedFrame),
            Error::Handshake(HandshakeError::BadKey),
        ] {
            assert!(!not.is_disconnect(), "{not:?}");
        }
    }

    #[test]
    fn converted_to_io_errors_they_keep_their_message_and_get_the_matching_kind() {
        let timed_out = Error::TimedOut(Expired::NoPong(Duration::from_secs(30)));
        let cases = [
            (Error::UnexpectedEof, io::ErrorKind::UnexpectedEof),
            (Error::Closed, io::ErrorKind::BrokenPipe),
            (timed_out, io::ErrorKind::TimedOut),
            (
                Error::Protocol(ProtocolError::UnmaskedFrame),
                io::ErrorKind::InvalidData,
            ),
            (
                Error::Handshake(HandshakeError::MissingHost),
                io::ErrorKind::InvalidData,
            ),
            (
                Error::InvalidInput("close reason over 123 bytes"),
                io::ErrorKind::InvalidData,
            ),
        ];
        for (error, kind) in cases {
            let message = error.to_string();
            let converted = io::Error::from(error);
            assert_eq!(converted.kind(), kind, "{message}");
            assert_eq!(converted.to_string(), message);
        }
        // An I/O error comes back as it was, not wrapped again.
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
        let back = io::Error::from(Error::from(reset));
        assert_eq!(back.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(back.to_string(), "reset by peer");
    }

    #[test]
    fn a_sans_io_protocol_error_converts_with_the_question_mark() {
        use crate::proto::Connection;
        fn poll(conn: &mut Connection) -> Result<bool, Error> {
            Ok(conn.poll()?.is_some())
        }
        let mut conn = Connection::server(crate::Limits::default());
        conn.receive(&[0x81, 0x00]); // unmasked, from a client
        let e = poll(&mut conn).unwrap_err();
        assert!(
            matches!(e, Error::Protocol(ProtocolError::UnmaskedFrame)),
            "{e:?}"
        );
        assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    }
}
