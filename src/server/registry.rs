//! What the accept loop, the connections and shutdown share: the
//! registry of live connections and the slots that count toward
//! `max_connections`.

use super::config::{Config, ErrorHook, HttpHook, UpgradeHook};
use super::net::{Addr, Stream};
use super::tls::Tls;
use crate::blocking::counters::Counters;
use crate::blocking::io::write_all_vectored;
use crate::blocking::Sender;
use crate::error::Error;
use crate::http::{HandshakeError, Response};
use crate::message::CloseCode;
use std::collections::HashMap;
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
    next_id: u64,
    pub(crate) conns: HashMap<u64, Conn>,
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
    pub(crate) tls: Option<Tls>,
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
    let id = registry.next_id;
    registry.next_id += 1;
    registry.conns.insert(id, Conn::Handshake(stream.clone()));
    Some(id)
}

/// A connection in slot `id` is now a WebSocket: shutdown closes it through
/// `sender` (at once, if shutdown began during its handshake).
pub(crate) fn opened(state: &State, id: u64, sender: &Sender) {
    if let Some(conn) = state.registry().conns.get_mut(&id) {
        *conn = Conn::Open(sender.clone());
    }
    if state.stopping.load(Ordering::Acquire) {
        let _ = sender.close(CloseCode::GOING_AWAY, "server shutting down");
    }
}

pub(crate) fn deregister(state: &State, id: u64) {
    state.registry().conns.remove(&id);
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
