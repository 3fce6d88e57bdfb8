//! The result of parsing input that may be incomplete.

/// The result of parsing input that may be incomplete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsed; the value.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Partial,
}
