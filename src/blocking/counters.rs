//! What a server counts as it runs: connections, refusals, closes, and the
//! messages and bytes its connections carry. The server reads a snapshot
//! ([`Server::stats`](crate::Server::stats)); its WebSockets and
//! [`Sender`](crate::Sender)s count into it.
//!
//! A message costs two relaxed atomic adds, on a cache line of its
//! direction's own. Refusals and closes come once per connection, so
//! they are counted under a lock, by code.

use crate::message::CloseCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// Messages and the bytes of their payloads, one direction.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Flow {
    pub(crate) messages: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl Flow {
    #[inline]
    fn count(&self, len: usize) {
        self.messages.fetch_add(1, Relaxed);
        self.bytes.fetch_add(len as u64, Relaxed);
    }
}

/// A count per code: HTTP statuses, close codes, in the order first seen.
/// Its keys are `u16`s, and close codes are only those the protocol lets
/// through (1000–1014, 3000–4999), so it stays small: a list is searched
/// faster than a map is, in a fraction of a map's code.
pub(crate) type ByCode = Vec<(u16, u64)>;

/// The server's counters; see the module's doc.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: Flow,
    pub(crate) sent: Flow,
    pub(crate) accepted: AtomicU64,
    pub(crate) hub_dropped: AtomicU64,
    pub(crate) refused: Mutex<ByCode>,
    pub(crate) closes_sent: Mutex<ByCode>,
    pub(crate) closes_received: Mutex<ByCode>,
}

impl Counters {
    /// A data message of `len` bytes was handed to the application.
    #[inline]
    pub(crate) fn received(&self, len: usize) {
        self.received.count(len);
    }

    /// A data message of `len` bytes was sent (or queued to be).
    #[inline]
    pub(crate) fn sent(&self, len: usize) {
        self.sent.count(len);
    }

    /// A TCP connection was accepted.
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Relaxed);
    }

    /// A hub dropped a member that did not keep up.
    pub(crate) fn hub_dropped(&self) {
        self.hub_dropped.fetch_add(1, Relaxed);
    }

    /// A request was refused with `status`.
    pub(crate) fn refused(&self, status: u16) {
        add(&self.refused, status);
    }

    /// Our close frame, with `code`, went out on a connection.
    pub(crate) fn close_sent(&self, code: CloseCode) {
        add(&self.closes_sent, code.0);
    }

    /// The peer's close frame, with `code`, was read.
    pub(crate) fn close_received(&self, code: CloseCode) {
        add(&self.closes_received, code.0);
    }
}

/// One more for `code`.
fn add(map: &Mutex<ByCode>, code: u16) {
    let mut counts = lock(map);
    match counts.iter_mut().find(|(c, _)| *c == code) {
        Some((_, n)) => *n += 1,
        None => counts.push((code, 1)),
    }
}

/// A map stays consistent even if a holder panicked.
pub(crate) fn lock(map: &Mutex<ByCode>) -> MutexGuard<'_, ByCode> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}
