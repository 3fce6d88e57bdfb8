//! [`Stats`]: what a running server has counted since it started.

use super::registry::State;
use crate::blocking::counters::lock;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

/// What a server has counted since it started, in both modes: a snapshot
/// from [`Server::stats`](crate::Server::stats),
/// [`ShutdownHandle::stats`](crate::ShutdownHandle::stats) or
/// [`Running::stats`](crate::Running::stats).
///
/// Counting costs two relaxed atomic adds per message and no lock; the
/// fields are read one by one, so a snapshot taken while clients send may
/// be a message apart between fields. Unix-socket connections count too.
///
/// ```no_run
/// let server = stdws::Server::bind("127.0.0.1:8989")?;
/// let handle = server.shutdown_handle();
/// let running = server.spawn(|mut ws| {
///     while let Some(msg) = ws.recv()? {
///         ws.send(msg)?;
///     }
///     Ok(())
/// })?;
/// let stats = handle.stats();
/// println!("{} open, {} messages in", stats.connections_open, stats.messages_in);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections open now: TCP or Unix connections holding a slot toward
    /// [`Config::max_connections`](crate::Config::max_connections), from
    /// accept to the end of their closing phase, handshakes and plain HTTP
    /// requests included.
    pub connections_open: u64,
    /// Connections accepted in all, those refused with `503` included.
    pub connections_accepted: u64,
    /// Requests refused, by the HTTP status of the answer: `400` malformed
    /// or not a valid upgrade, `403` Host or Origin policy, `408` head (or
    /// TLS handshake) not in time, `411` and `413` a body without a length
    /// or over the limit, `426` an unsupported WebSocket version, `431`
    /// head too large, `503` at the connection limit, `500` a hook that
    /// panicked, and whatever [`Server::on_upgrade`](crate::Server::on_upgrade)
    /// refused with. Only statuses that occurred are present; the answers
    /// of [`Server::on_http`](crate::Server::on_http) are not refusals.
    pub refused: BTreeMap<u16, u64>,
    /// Close frames the server sent, by code: the handler's or a
    /// [`Sender`](crate::Sender)'s, the echo of a client's close, 1002,
    /// 1007 and 1009 for a client that broke the protocol, 1001 at
    /// shutdown, 1008 from a hub, 1000 or 1011 once a handler returned.
    /// 1005 counts an empty close frame. Counted as each connection ends.
    pub closes_sent: BTreeMap<u16, u64>,
    /// Close frames read from clients, by code (1005: without a code). A
    /// close the application did not read (a thread-per-client handler
    /// that returned without reading on) is not counted.
    pub closes_received: BTreeMap<u16, u64>,
    /// Data messages handed to the application (text and binary, however
    /// fragmented; not pings, pongs or closes).
    pub messages_in: u64,
    /// Data messages the application sent or queued, a hub's broadcasts
    /// included (one per member).
    pub messages_out: u64,
    /// The payload bytes of `messages_in`, after decompression.
    pub bytes_in: u64,
    /// The payload bytes of `messages_out`, before compression.
    pub bytes_out: u64,
    /// Hub members dropped for falling behind their queue's limit (close
    /// 1008, or the connection shut down mid-frame); see [`Hub`](crate::hub::Hub).
    pub hub_dropped: u64,
}

impl Stats {
    /// A snapshot of `state`'s counters.
    pub(crate) fn of(state: &State) -> Stats {
        let c = &state.counters;
        let map = |m| lock(m).iter().copied().collect();
        Stats {
            connections_open: state.registry().conns.len() as u64,
            connections_accepted: c.accepted.load(Relaxed),
            refused: map(&c.refused),
            closes_sent: map(&c.closes_sent),
            closes_received: map(&c.closes_received),
            messages_in: c.received.messages.load(Relaxed),
            messages_out: c.sent.messages.load(Relaxed),
            bytes_in: c.received.bytes.load(Relaxed),
            bytes_out: c.sent.bytes.load(Relaxed),
            hub_dropped: c.hub_dropped.load(Relaxed),
        }
    }
}
