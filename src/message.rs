//! What travels over a WebSocket: data messages and close frames.

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use core::fmt;

/// A complete data message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message; always valid UTF-8.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

impl Message {
    /// The message borrowed, as [`WebSocket::recv_ref`](crate::WebSocket::recv_ref) gives it.
    pub fn as_ref(&self) -> MessageRef<'_> {
        self.into()
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_ref().as_bytes()
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        self.as_ref().as_text()
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload, taken out of the message.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(s) => s.into_bytes(),
            Message::Binary(b) => b,
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(s.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(b)
    }
}

impl From<&[u8]> for Message {
    fn from(b: &[u8]) -> Self {
        Message::Binary(b.to_vec())
    }
}

/// A data message borrowed from a connection's buffers: what
/// [`WebSocket::recv_ref`](crate::WebSocket::recv_ref) returns, without a
/// copy or an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageRef<'a> {
    /// A text message; always valid UTF-8.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> MessageRef<'a> {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            MessageRef::Text(s) => s.as_bytes(),
            MessageRef::Binary(b) => b,
        }
    }

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&'a str> {
        match self {
            MessageRef::Text(s) => Some(s),
            MessageRef::Binary(_) => None,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An owned copy.
    pub fn to_message(&self) -> Message {
        match self {
            MessageRef::Text(s) => Message::Text((*s).to_owned()),
            MessageRef::Binary(b) => Message::Binary(b.to_vec()),
        }
    }
}

impl<'a> From<&'a Message> for MessageRef<'a> {
    fn from(msg: &'a Message) -> Self {
        match msg {
            Message::Text(s) => MessageRef::Text(s),
            Message::Binary(b) => MessageRef::Binary(b),
        }
    }
}

impl<'a> From<&'a str> for MessageRef<'a> {
    fn from(s: &'a str) -> Self {
        MessageRef::Text(s)
    }
}

impl<'a> From<&'a [u8]> for MessageRef<'a> {
    fn from(b: &'a [u8]) -> Self {
        MessageRef::Binary(b)
    }
}

/// A close status code (RFC 6455 section 7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is shutting down or the page is navigating away.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a message type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: data inconsistent with its type, such as invalid UTF-8 in text.
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a message or frame over the size limit.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1005: a close frame without a code. Never sent as a code; it names
    /// the empty close where a code is expected (RFC 6455 7.1.5).
    pub const NO_STATUS: CloseCode = CloseCode(1005);

    /// Whether the code may appear in a close frame on the wire: 1000-1003,
    /// 1007-1014 and 3000-4999. 1004-1006 and 1015 are reserved or local only.
    ///
    /// ```
    /// use stdws::CloseCode;
    /// assert!(CloseCode(1000).is_sendable() && CloseCode(4999).is_sendable());
    /// assert!(!CloseCode(1005).is_sendable() && !CloseCode(2000).is_sendable());
    /// ```
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The status code and reason of a close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// Why the connection is closing.
    pub code: CloseCode,
    /// A short human-readable reason; at most 123 bytes of UTF-8 on the wire.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with an empty reason.
    pub fn new(code: CloseCode) -> Self {
        CloseFrame {
            code,
            reason: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reports_its_kind_payload_and_length() {
        let text = Message::from("héllo");
        assert_eq!(text.as_text(), Some("héllo"));
        assert_eq!(text.as_bytes(), "héllo".as_bytes());
        assert_eq!((text.len(), text.is_empty()), (6, false));
        let binary = Message::from(&[0u8, 159, 146, 150][..]);
        assert_eq!(binary, Message::Binary(vec![0, 159, 146, 150]));
        assert_eq!(
            binary.as_text(),
            None,
            "binary is never text, valid UTF-8 or not"
        );
        assert!(Message::from(Vec::new()).is_empty());
        assert!(Message::from(String::new()).is_empty());
    }

    #[test]
    fn a_borrowed_message_matches_the_owned_one_and_copies_back_to_it() {
        for owned in [Message::from("text"), Message::from(vec![1, 2, 3])] {
            let borrowed = owned.as_ref();
            assert_eq!(borrowed.as_bytes(), owned.as_bytes());
            assert_eq!(borrowed.as_text(), owned.as_text());
            assert_eq!((borrowed.len(), borrowed.is_empty()), (owned.len(), false));
            assert_eq!(borrowed.to_message(), owned);
        }
        assert_eq!(MessageRef::from("a"), MessageRef::Text("a"));
        assert_eq!(MessageRef::from(&b"a"[..]), MessageRef::Binary(b"a"));
        assert_eq!(MessageRef::from(&b"a"[..]).as_text(), None);
        assert!(MessageRef::from("").is_empty());
    }

    #[test]
    fn a_close_frame_made_from_a_code_has_no_reason() {
        let frame = CloseFrame::new(CloseCode::GOING_AWAY);
        assert_eq!(frame.code, CloseCode(1001));
        assert_eq!(frame.reason, "");
        assert_eq!(frame.code.to_string(), "1001");
    }
}
