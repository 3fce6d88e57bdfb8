//! TLS from the server's hook ([`Server::tls`](super::Server::tls)): each
//! accepted TCP stream wrapped before its request is read, and the
//! handshake deadline kept while a TLS library reads on its own.

use super::net::{ReadWrite, Stream};
use crate::error::Error;
use crate::http::HandshakeError;
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The hook: a TCP stream in, any stream over it out.
pub(crate) type Hook = dyn Fn(TcpStream) -> io::Result<Box<dyn ReadWrite>> + Send + Sync;

/// Wraps each accepted stream before its request is read. A server holds
/// it as a trait object made in [`Server::tls`](super::Server::tls), so a
/// server without TLS carries none of this module's code but [`Watch`].
pub(crate) trait Wrap: Send + Sync {
    /// Wraps an accepted stream with the hook; a Unix stream is served as
    /// it is. From now until [`Watch::done`], the connection is shut down
    /// once `timeout` has passed: a TLS library reads the socket as long as
    /// bytes trickle in, so only another thread can keep the deadline.
    fn wrap(
        &self,
        stream: &Stream,
        timeout: Duration,
        max_watched: usize,
    ) -> (Watch, Result<Stream, Error>);
}

/// What a server with a TLS hook shares between its connections.
pub(crate) struct Tls {
    hook: Box<Hook>,
    deadlines: Arc<Deadlines>,
}

impl Tls {
    pub(crate) fn new(hook: Box<Hook>) -> Tls {
        Tls {
            hook,
            deadlines: Arc::default(),
        }
    }
}

impl Wrap for Tls {
    fn wrap(
        &self,
        stream: &Stream,
        timeout: Duration,
        max_watched: usize,
    ) -> (Watch, Result<Stream, Error>) {
        let watch = self.deadlines.watch(stream, timeout, max_watched);
        let tcp = match stream.tcp_handle() {
            None => return (watch, Ok(stream.clone())),
            Some(Err(e)) => return (watch, Err(e.into())),
            Some(Ok(tcp)) => tcp,
        };
        // For a hook that shakes hands at once; reads past the hook set their own.
        let timeouts = tcp
            .set_read_timeout(Some(timeout))
            .and_then(|()| tcp.set_write_timeout(Some(timeout)));
        let wrapped = match timeouts {
            Err(e) => Err(e.into()),
            // A panic is this client's error alone, as in the other hooks.
            Ok(()) => match panic::catch_unwind(AssertUnwindSafe(|| (self.hook)(tcp))) {
                Ok(Ok(wrapper)) => Ok(stream.wrapped(wrapper)),
                Ok(Err(e)) => Err(Error::Io(io::Error::new(
                    e.kind(),
                    format!("the TLS hook failed: {e}"),
                ))),
                Err(_) => Err(Error::Io(io::Error::other("a callback panicked"))),
            },
        };
        (watch, wrapped)
    }
}

/// How long past the deadline the watch waits: a client that is not
/// stuck inside the TLS library gets its `408` from the lifecycle first.
const GRACE: Duration = Duration::from_millis(250);

/// Connections whose TLS handshake and request head are not done, oldest
/// first, and whether a thread is watching them.
#[derive(Default)]
struct Deadlines {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<(Instant, Arc<Pending>)>,
    watching: bool,
}

/// One connection being watched: its socket until it is done or expired.
struct Pending {
    stream: Mutex<Option<Stream>>,
    expired: AtomicBool,
}

impl Pending {
    fn take(&self) -> Option<Stream> {
        self.stream.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn is_done(&self) -> bool {
        self.stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }
}

impl Deadlines {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches `stream` until `timeout` from now. The queue holds at most
    /// about twice `max_watched` entries: past that, those done are dropped.
    fn watch(self: &Arc<Self>, stream: &Stream, timeout: Duration, max_watched: usize) -> Watch {
        let pending = Arc::new(Pending {
            stream: Mutex::new(Some(stream.clone())),
            expired: Default::default(),
        });
        let mut queue = self.lock();
        if queue.pending.len() >= max_watched.saturating_mul(2).max(16) {
            queue.pending.retain(|(_, p)| !p.is_done());
        }
        // Taken under the lock, so the queue stays in deadline order.
        let deadline = Instant::now() + timeout + GRACE;
        queue.pending.push_back((deadline, pending.clone()));
        if !queue.watching {
            let deadlines = self.clone();
            let spawned = thread::Builder::new()
                .name("stdws-tls-deadline".into())
                .stack_size(64 << 10)
                .spawn(move || deadlines.keep());
            // Without the thread, the socket timeouts still stop a silent client.
            queue.watching = spawned.is_ok();
        }
        Watch(pending)
    }

    /// The watching thread: shuts down each connection still pending at its
    /// deadline; ends when none is left.
    fn keep(&self) {
        loop {
            let wait = {
                let mut queue = self.lock();
                while queue.pending.front().is_some_and(|(_, p)| p.is_done()) {
                    queue.pending.pop_front();
                }
                let Some((deadline, _)) = queue.pending.front() else {
                    queue.watching = false;
                    return;
                };
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    if let Some((_, pending)) = queue.pending.pop_front() {
                        if let Some(stream) = pending.take() {
                            pending.expired.store(true, Ordering::Release);
                            let _ = stream.shutdown(Shutdown::Both);
                        }
                    }
                    continue;
                }
                left
            };
            thread::sleep(wait);
        }
    }
}

/// A connection's place under the deadline; dropping it is [`Watch::done`].
pub(crate) struct Watch(Arc<Pending>);

impl Watch {
    /// The request head is complete: the deadline no longer applies.
    pub(crate) fn done(&self) {
        drop(self.0.take());
    }

    /// `error`, or the handshake timeout if the deadline ended the connection.
    pub(crate) fn explain(&self, error: Error) -> Error {
        match self.0.expired.load(Ordering::Acquire) {
            true => Error::Handshake(HandshakeError::Timeout),
            false => error,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.done();
    }
}
