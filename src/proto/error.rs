//! Why a connection fails: what the peer did wrong and the close code that
//! says so, and why a send is refused.

#[cfg(feature = "deflate")]
use crate::deflate::InflateError;
use crate::frame::{FrameError, MAX_CONTROL_PAYLOAD};
use crate::message::{CloseCode, CloseFrame};
use alloc::string::ToString;
use core::fmt;

/// The longest close reason: a control payload of 125 bytes less the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Why the peer's bytes break the protocol, and the close code that says so.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An invalid frame header (1002).
    Frame(FrameError),
    /// RSV bits set without an extension that defines them (1002).
    ReservedBits(u8),
    /// A client sent a frame without a mask (1002).
    UnmaskedFrame,
    /// A server sent a masked frame (1002).
    MaskedFrame,
    /// A continuation frame with no message to continue (1002).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished (1002).
    ExpectedContinuation,
    /// A text message that is not valid UTF-8 (1007).
    InvalidUtf8,
    /// A close frame whose reason is not valid UTF-8 (1007).
    InvalidCloseReason,
    /// A close frame with a one-byte payload (1002).
    InvalidClosePayload,
    /// A close code that must not be sent (1002).
    InvalidCloseCode(u16),
    /// A frame over `max_frame_size` (1009).
    FrameTooBig {
        /// The frame's payload length.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A message over `max_message_size` (1009).
    MessageTooBig {
        /// The message's length so far, this frame included.
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// A message in more frames than `max_fragments` (1009).
    TooManyFragments {
        /// The limit.
        limit: usize,
    },
    /// A compressed message that does not inflate (1007).
    #[cfg(feature = "deflate")]
    BadCompression(InflateError),
}

impl ProtocolError {
    /// The close code this error fails the connection with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCloseReason => {
                CloseCode::INVALID_DATA
            }
            #[cfg(feature = "deflate")]
            ProtocolError::BadCompression(_) => CloseCode::INVALID_DATA,
            ProtocolError::FrameTooBig { .. }
            | ProtocolError::MessageTooBig { .. }
            | ProtocolError::TooManyFragments { .. } => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// The close frame this error sends; the reason is this error's message.
    pub fn close_frame(&self) -> CloseFrame {
        let mut reason = self.to_string();
        reason.truncate(MAX_CLOSE_REASON); // ASCII: any cut is a char boundary
        CloseFrame {
            code: self.close_code(),
            reason,
        }
    }
}

impl From<FrameError> for ProtocolError {
    fn from(e: FrameError) -> Self {
        ProtocolError::Frame(e)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Frame(e) => write!(f, "{e}"),
            ProtocolError::ReservedBits(bits) => {
                write!(
                    f,
                    "RSV bits {bits:#05b} set but no extension was negotiated"
                )
            }
            ProtocolError::UnmaskedFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedFrame => f.write_str("server frame is masked"),
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame without a message to continue")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new message started before the fragmented one ended")
            }
            ProtocolError::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            ProtocolError::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            ProtocolError::InvalidClosePayload => f.write_str("close frame payload of 1 byte"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::FrameTooBig { size, limit } => {
                write!(f, "frame of {size} bytes exceeds the limit of {limit}")
            }
            ProtocolError::MessageTooBig { size, limit } => {
                write!(f, "message of {size} bytes exceeds the limit of {limit}")
            }
            ProtocolError::TooManyFragments { limit } => {
                write!(f, "message split into more than {limit} frames")
            }
            #[cfg(feature = "deflate")]
            ProtocolError::BadCompression(e) => write!(f, "compressed message: {e}"),
        }?;
        write!(f, " (close code {})", self.close_code())
    }
}

impl core::error::Error for ProtocolError {}

/// Why a frame cannot be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// Our close frame has gone out: nothing more can be sent.
    Closed,
    /// A frame could not be written whole, so nothing more can follow it;
    /// the only step left is shutting the stream down.
    Broken,
    /// An argument the protocol refuses, such as a ping payload over 125 bytes.
    InvalidInput(&'static str),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => {
                f.write_str("the WebSocket is closing or closed: nothing more can be sent")
            }
            SendError::Broken => f.write_str(
                "a frame could not be written whole: nothing more can be sent on this connection",
            ),
            SendError::InvalidInput(what) => write!(f, "invalid input: {what}"),
        }
    }
}

impl core::error::Error for SendError {}
