//! Broadcast to every connected client without ever blocking on a slow one.
//!
//! Each member of a [`Hub`] has a bounded queue and a small writer thread
//! that drains it. [`Hub::broadcast`] only appends to queues (one shared copy
//! of the message for all of them), so it returns at once. A member whose
//! queue is full is dropped from the hub, its queue freed, and its
//! connection ended at once: a client that cannot keep up is not allowed to
//! grow memory. If its writer is between frames, the client gets a close
//! **1008** (policy violation: "too slow") and then the end of the TCP
//! stream. If the writer is stuck in the middle of a frame, no close frame
//! can follow, so the connection is shut down there: the client reads what
//! was already on its way, the frame cut short, then the end of the stream.
//!
//! ```no_run
//! use stdws::{hub::Hub, Server};
//! let hub = Hub::new();
//! let clients = hub.clone();
//! std::thread::spawn(move || loop {
//!     clients.broadcast(r#"{"tick":1}"#);
//!     std::thread::sleep(std::time::Duration::from_secs(1));
//! });
//! Server::bind("0.0.0.0:8989")?.run(move |mut ws| {
//!     // The greeting first, then every broadcast; leaves the hub when dropped.
//!     let _member = hub.join_with(ws.sender()?, r#"{"hello":1}"#)?;
//!     while ws.recv()?.is_some() {}
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::blocking::Sender;
use crate::message::CloseCode;
use crate::message::Message;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

/// A set of connections that receive every broadcast.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    members: Mutex<HashMap<u64, Arc<Member>>>,
    next_id: AtomicU64,
    max_messages: usize,
    max_bytes: usize,
}

/// One member's queue, shared by the hub and the member's writer thread.
struct Member {
    queue: Mutex<Queue>,
    ready: Condvar,
    sender: Sender,
}

struct Queue {
    items: VecDeque<Arc<Message>>,
    bytes: usize,
    state: MemberState,
    /// Set while the writer thread is sending a message.
    writing: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberState {
    Open,
    /// The queue overflowed: close the connection with 1008.
    TooSlow,
    /// The member left: stop.
    Left,
}

impl Inner {
    /// Queues `msg` for one member; a member over its limits is marked too
    /// slow and its queue freed. Returns whether the member is still open.
    fn enqueue(&self, member: &Member, msg: &Arc<Message>) -> bool {
        let mut queue = lock(&member.queue);
        if queue.state != MemberState::Open {
            return false;
        }
        let fits =
            queue.items.len() < self.max_messages && queue.bytes + msg.len() <= self.max_bytes;
        if fits {
            queue.bytes += msg.len();
            queue.items.push_back(msg.clone());
        } else {
            queue.state = MemberState::TooSlow;
            if let Some(counters) = member.sender.counters() {
                counters.hub_dropped();
            }
            queue.items.clear();
            queue.bytes = 0;
            if queue.writing {
                // The writer is stuck mid-frame, behind a full queue: no
                // close frame can follow that frame, so end the connection
                // here (this also unblocks the writer).
                member.sender.shutdown();
            }
        }
        member.ready.notify_one();
        fits
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Queues stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl Hub {
    /// A hub whose members may each have 64 messages or 4 MiB queued.
    pub fn new() -> Self {
        Self::with_limits(64, 4 << 20)
    }

    /// A hub whose members may each have at most `max_messages` messages and
    /// `max_bytes` bytes waiting to be sent before they are closed as too slow.
    pub fn with_limits(max_messages: usize, max_bytes: usize) -> Self {
        Hub {
            inner: Arc::new(Inner {
                members: Mutex::default(),
                next_id: AtomicU64::new(0),
                max_messages,
                max_bytes,
            }),
        }
    }

    /// Adds a connection; it receives broadcasts until the returned
    /// [`Membership`] is dropped or the connection closes.
    pub fn join(&self, sender: Sender) -> io::Result<Membership> {
        self.add(sender, None)
    }

    /// [`Hub::join`], with `first` queued before any broadcast the member
    /// gets: the current state, say, so that no change comes before it.
    pub fn join_with(&self, sender: Sender, first: impl Into<Message>) -> io::Result<Membership> {
        self.add(sender, Some(Arc::new(first.into())))
    }

    fn add(&self, sender: Sender, first: Option<Arc<Message>>) -> io::Result<Membership> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let member = Arc::new(Member {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                state: MemberState::Open,
                writing: false,
            }),
            ready: Condvar::new(),
            sender,
        });
        if let Some(first) = &first {
            self.inner.enqueue(&member, first);
        }
        // A member before its writer runs: once `first` is out, no broadcast
        // can miss it (broadcasts queue under this lock, after `first`).
        lock(&self.inner.members).insert(id, member.clone());
        let writer_member = member.clone();
        let spawned = thread::Builder::new()
            .name("stdws-hub".into())
            .stack_size(64 << 10)
            .spawn(move || drain(&writer_member));
        if let Err(e) = spawned {
            lock(&self.inner.members).remove(&id);
            return Err(e);
        }
        Ok(Membership {
            hub: self.clone(),
            id,
            member,
        })
    }

    /// Queues `msg` for every member and returns how many got it. Never
    /// blocks on a client; members that are too slow are closed instead.
    pub fn broadcast(&self, msg: impl Into<Message>) -> usize {
        let msg = Arc::new(msg.into());
        let mut members = lock(&self.inner.members);
        members.retain(|_, member| self.inner.enqueue(member, &msg));
        members.len()
    }

    /// How many members the hub has.
    pub fn len(&self) -> usize {
        lock(&self.inner.members).len()
    }

    /// Whether the hub has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A connection's place in a [`Hub`]; dropping it leaves the hub.
pub struct Membership {
    hub: Hub,
    id: u64,
    member: Arc<Member>,
}

impl Membership {
    /// Queues a message for this member alone, in order with broadcasts
    /// (a broadcast that raced with it may come first: to greet a new
    /// member, use [`Hub::join_with`]). Returns `false` if the member was
    /// closed as too slow.
    pub fn send(&self, msg: impl Into<Message>) -> bool {
        self.hub.inner.enqueue(&self.member, &Arc::new(msg.into()))
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        lock(&self.hub.inner.members).remove(&self.id);
        let mut queue = lock(&self.member.queue);
        if queue.state == MemberState::Open {
            queue.state = MemberState::Left;
        }
        queue.items.clear();
        self.member.ready.notify_one();
    }
}

/// A member's writer thread: sends queued messages until the member leaves,
/// overflows, or its connection fails.
fn drain(member: &Member) {
    let sender = &member.sender;
    loop {
        let msg = {
            let mut queue = lock(&member.queue);
            queue.writing = false;
            while queue.items.is_empty() && queue.state == MemberState::Open {
                queue = member.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
            match (queue.state, queue.items.pop_front()) {
                (MemberState::Left, _) => return,
                (MemberState::TooSlow, _) => break,
                (MemberState::Open, None) => continue,
                (MemberState::Open, Some(msg)) => {
                    queue.bytes -= msg.len();
                    queue.writing = true;
                    msg
                }
            }
        };
        if sender.send_ref(msg.as_ref()).is_err() {
            // Closed, or broken (and then already shut down): nothing more
            // can go out.
            lock(&member.queue).state = MemberState::Left;
            return;
        }
    }
    // Between frames: the client can be told why.
    let _ = sender.close(
        CloseCode::POLICY_VIOLATION,
        "too slow: broadcast queue full",
    );
    sender.shutdown();
}
