//! What the accept loop, the connections and shutdown share: the
//! registry of live connections and the slots that count toward
//! `max_connections`.

use super::config::{Config, ErrorHook, HttpHook, UpgradeHook};
use super::net::{Addr, Stream};
use super::tls::Wrap;
use crate::blocking::counters::Counters;
use crate::blocking::io::write_all_vectored;
use crate::blocking::Sender;
use crate::error::Error;
use crate::http::{HandshakeError, Response};
use crate::message::CloseCode;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the accept loop, connection threads and shutdown handles share.
pub(crate) struct State {
    pub(crate) stopping: AtomicBool,
    pub(crate) registry: Mutex<Registry>,
    /// Signalled whenever a connection ends.
    pub(crate) ended: Condvar,
    pub(crate) addr: Addr,
    /// What [`Server::stats`](crate::Server::stats) reports.
    pub(crate) counters: Arc<Counters>,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) conns: Conns,
}

/// The live connections by id, in slots reused as connections end. An id
/// is its slot and the slot's generation (`generation << 32 | slot`), so
/// it is never reused while the server runs; a `Vec` of slots and a free
/// list are all the code this needs, where a map brings a hasher and
/// several kilobytes of its own.
pub(crate) struct Conns<T = Conn> {
    slots: Vec<(u32, Option<T>)>,
    /// The empty slots: every slot is either here or holds a connection.
    free: Vec<u32>,
}

impl<T> Default for Conns<T> {
    fn default() -> Self {
        Conns {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Conns<T> {
    /// How many connections are live.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `conn`; returns its id.
    fn insert(&mut self, conn: T) -> u64 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push((0, None));
                // At most `max_connections` slots: a u32 is plenty.
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.1 = Some(conn);
        u64::from(entry.0) << 32 | u64::from(slot)
    }

    /// The connection `id`, while it is live.
    fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.live(id)?.1.as_mut()
    }

    /// Ends `id`: its slot is free for the next connection, under a new
    /// generation.
    fn remove(&mut self, id: u64) {
        if let Some(entry) = self.live(id) {
            *entry = (entry.0.wrapping_add(1), None);
            self.free.push(id as u32);
        }
    }

    /// The slot of `id` (its generation, its connection) while `id` is live.
    fn live(&mut self, id: u64) -> Option<&mut (u32, Option<T>)> {
        self.slots
            .get_mut(id as u32 as usize)
            .filter(|(generation, conn)| u64::from(*generation) == id >> 32 && conn.is_some())
    }

    /// Every live connection.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|(_, conn)| conn.as_ref())
    }
}

/// A live connection, as shutdown reaches it.
pub(crate) enum Conn {
    /// Before the WebSocket: its socket.
    Handshake(Stream),
    /// A WebSocket: closed, or at the end shut down, through its sender.
    Open(Sender),
}

impl Conn {
    /// Ends the connection at once.
    pub(crate) fn shut_down(&self) {
        match self {
            Conn::Handshake(stream) => drop(stream.shutdown(Shutdown::Both)),
            Conn::Open(sender) => sender.shutdown(),
        }
    }
}

impl State {
    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry stays consistent even if a holder panicked.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything a connection needs; `H` is the handler (a closure per
/// client, or the event loop's per-client factory).
pub(crate) struct Ctx<H> {
    pub(crate) config: Config,
    pub(crate) handler: H,
    pub(crate) on_upgrade: Option<Arc<UpgradeHook>>,
    pub(crate) on_http: Option<Arc<HttpHook>>,
    pub(crate) on_error: Option<Arc<ErrorHook>>,
    /// The TLS hook and its deadlines (thread-per-client mode only).
    pub(crate) tls: Option<Box<dyn Wrap>>,
    pub(crate) state: Arc<State>,
}

impl<H> Ctx<H> {
    /// Hands an error to `on_error`; a panic in the hook goes no further.
    /// A refusal (every one is reported, once) is counted by its status.
    pub(crate) fn report(&self, peer: &Addr, error: &Error) {
        if let Error::Handshake(refusal) = error {
            self.state.counters.refused(refusal.status());
        }
        if let Some(hook) = &self.on_error {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(peer, error)));
        }
    }
}

pub(crate) fn wait_until_empty(state: &State, deadline: Instant) -> usize {
    let mut registry = state.registry();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if registry.conns.is_empty() || left.is_zero() {
            return registry.conns.len();
        }
        registry = match state.ended.wait_timeout(registry, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

/// Takes a connection slot, or `None` at the limit.
pub(crate) fn register<H>(ctx: &Ctx<H>, stream: &Stream) -> Option<u64> {
    ctx.state.counters.accepted();
    let mut registry = ctx.state.registry();
    if registry.conns.len() >= ctx.config.max_connections {
        return None;
    }
    Some(registry.conns.insert(Conn::Handshake(stream.clone())))
}

/// A connection in slot `id` is now a WebSocket: shutdown closes it through
/// `sender` (at once, if shutdown began during its handshake).
pub(crate) fn opened(state: &State, id: u64, sender: &Sender) {
    if let Some(conn) = state.registry().conns.get_mut(id) {
        *conn = Conn::Open(sender.clone());
    }
    if state.stopping.load(Ordering::Acquire) {
        let _ = sender.close(CloseCode::GOING_AWAY, "server shutting down");
    }
}

pub(crate) fn deregister(state: &State, id: u64) {
    state.registry().conns.remove(id);
    state.ended.notify_all();
}

/// Answers `503` from the accept thread without reading the request.
pub(crate) fn refuse_busy<H>(ctx: &Ctx<H>, stream: Stream) {
    let error = HandshakeError::TooManyConnections {
        limit: ctx.config.max_connections,
    };
    // A fresh socket's send buffer is empty, so this does not block; the
    // timeout is a guard.
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    respond(&stream, &error.response());
    ctx.report(stream.peer_addr(), &Error::Handshake(error));
}

/// Writes a response, then half-closes so the client sees the end of it.
pub(crate) fn respond(stream: &Stream, response: &Response) {
    let _ = write_all_vectored(&mut stream.clone(), &response.to_bytes(), &[]);
    let _ = stream.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::Conns;

    #[test]
    fn an_ended_connections_id_is_not_reused_with_its_slot() {
        let mut conns = Conns::default();
        let a = conns.insert('a');
        let b = conns.insert('b');
        assert_ne!(a, b);
        conns.remove(a);
        assert_eq!(conns.len(), 1);
        assert_eq!(conns.get_mut(a), None);
        let c = conns.insert('c');
        assert_eq!(c as u32, a as u32, "the slot is reused");
        assert_ne!(c, a, "under a new id");
        conns.remove(a); // the old id ends nothing now
        assert_eq!(conns.get_mut(c), Some(&mut 'c'));
        assert_eq!(conns.len(), 2);
        assert_eq!(conns.values().collect::<String>(), "cb");
    }

    #[test]
    fn removing_twice_or_an_unknown_id_changes_nothing() {
        let mut conns = Conns::default();
        let a = conns.insert(1);
        conns.remove(a);
        conns.remove(a);
        conns.remove(99);
        assert!(conns.is_empty());
        assert_eq!(conns.free.len(), 1);
        let b = conns.insert(2);
        assert_eq!(conns.get_mut(b), Some(&mut 2));
        assert_eq!(conns.len(), 1);
    }
}
