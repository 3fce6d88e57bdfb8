//! The payload of a control frame, kept inline.

use crate::frame::MAX_CONTROL_PAYLOAD;
use core::fmt;
use core::ops::Deref;

/// The payload of a ping, pong or close: at most 125 bytes, kept inline.
#[derive(Clone, Copy)]
pub struct ControlPayload {
    pub(crate) bytes: [u8; MAX_CONTROL_PAYLOAD],
    pub(crate) len: u8,
}

impl ControlPayload {
    /// A payload from `bytes`, or `None` if it is over 125 bytes.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut p = ControlPayload {
            bytes: [0; MAX_CONTROL_PAYLOAD],
            len: u8::try_from(bytes.len()).ok()?,
        };
        p.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(p)
    }
}

/// No payload.
impl Default for ControlPayload {
    fn default() -> Self {
        ControlPayload {
            bytes: [0; MAX_CONTROL_PAYLOAD],
            len: 0,
        }
    }
}

impl Deref for ControlPayload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl PartialEq for ControlPayload {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for ControlPayload {}

impl fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlPayload({:?})", &**self)
    }
}
