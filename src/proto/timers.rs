//! Read-silence and keepalive deadlines, without a clock: the caller passes
//! `now`, so every timeout is unit-testable without sleeping.
//!
//! The socket layer sets its read timeout to [`Timers::tick`] once, and calls
//! [`Timers::poll`] whenever a read times out; deadlines are therefore met
//! within one tick, at no cost per read.
//!
//! A late pong is not always a dead peer: on a slow link the ping waits
//! behind everything sent before it. [`Timers::poll_sending`] takes what the
//! driver knows of the send queue (bytes written, and bytes the peer's TCP
//! has not acknowledged yet) and gives a ping that waits behind data one
//! more tick: a peer that acknowledged bytes meanwhile is alive.

use crate::instant::Instant;
use core::time::Duration;

/// The deadlines a [`Connection`](super::Connection) keeps; every one is off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest silence from the peer before the connection is closed (1001).
    pub read: Option<Duration>,
    /// Keepalive pings, and how long to wait for the answer.
    pub keepalive: Option<Keepalive>,
    /// How long to wait for the peer's close after ours.
    pub close: Option<Duration>,
    /// Longest time what we send may wait without the peer taking any of it.
    pub write: Option<Duration>,
}

/// Keepalive pings: after `interval` without hearing from the peer, send a
/// ping; if nothing arrives within `timeout` after it, the peer is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before a ping goes out.
    pub interval: Duration,
    /// How long to wait for any bytes (the pong, usually) after the ping.
    pub timeout: Duration,
}

/// Which deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expired {
    /// Nothing arrived for the read timeout.
    ReadTimeout(Duration),
    /// A keepalive ping went unanswered.
    NoPong(Duration),
    /// Our close frame went out and the peer's did not come back in time.
    CloseTimeout(Duration),
    /// What we send has waited this long without the peer taking any of it.
    SendStalled(Duration),
}

impl core::fmt::Display for Expired {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Expired::ReadTimeout(d) => write!(f, "peer sent nothing for {}", Span(d)),
            Expired::NoPong(d) => write!(f, "no answer to a keepalive ping within {}", Span(d)),
            Expired::CloseTimeout(d) => {
                write!(f, "no answer to our close frame within {}", Span(d))
            }
            Expired::SendStalled(d) => {
                write!(f, "the peer took none of what we sent for {}", Span(d))
            }
        }
    }
}

/// A timeout as a message shows it, as `Duration`'s `Debug` would for
/// whole milliseconds (`2s`, `1.5s`, `300ms`) in a fraction of its code.
pub(crate) struct Span(pub(crate) Duration);

impl core::fmt::Display for Span {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match (self.0.as_secs(), self.0.subsec_millis()) {
            (0, ms) => write!(f, "{ms}ms"),
            (s, 0) => write!(f, "{s}s"),
            (s, mut ms) => {
                let mut width = 3;
                while ms % 10 == 0 {
                    ms /= 10;
                    width -= 1;
                }
                write!(f, "{s}.{ms:0width$}s")
            }
        }
    }
}

/// What the connection should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// Nothing is due.
    Wait,
    /// Send a keepalive ping.
    SendPing,
    /// Give up on the peer.
    Expire(Expired),
}

/// The deadlines of one connection.
#[derive(Clone, Debug)]
pub struct Timers {
    timeouts: Timeouts,
    last_heard: Instant,
    ping_sent: Option<Instant>,
    /// Bytes written before the ping went out.
    written_at_ping: u64,
    /// At a pong deadline with data still ahead of the ping: how much of
    /// what we wrote the peer had acknowledged.
    acked_at_deadline: Option<u64>,
}

/// What a driver knows of its send queue at a pong deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendQueue {
    /// Bytes written to the connection so far (any fixed origin).
    pub written: u64,
    /// Of those, bytes the peer has not acknowledged; `None` where the
    /// platform cannot tell.
    pub unacked: Option<u64>,
}

impl Timers {
    /// Deadlines starting at `now`: the read timeout and keepalive of
    /// `timeouts` (it keeps the others for its connection).
    pub fn new(timeouts: Timeouts, now: Instant) -> Self {
        Timers {
            timeouts,
            last_heard: now,
            ping_sent: None,
            written_at_ping: 0,
            acked_at_deadline: None,
        }
    }

    /// The timeouts it was made with.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The read timeout the stream should use: the shortest configured duration.
    pub fn tick(&self) -> Option<Duration> {
        let ka = self.timeouts.keepalive.map(|k| k.interval.min(k.timeout));
        match (self.timeouts.read, ka) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|d| d.max(Duration::from_millis(1)))
    }

    /// The next instant at which [`Timers::poll`] may have something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let read = self.timeouts.read.map(|d| self.last_heard + d);
        let keepalive = self.timeouts.keepalive.map(|ka| match self.ping_sent {
            Some(sent) => sent + ka.timeout,
            None => self.last_heard + ka.interval,
        });
        match (read, keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Bytes arrived from the peer.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_sent = None;
        self.acked_at_deadline = None;
    }

    /// What is due at `now`. Returns [`TimerAction::SendPing`] once per silence.
    #[cfg(test)]
    pub fn poll(&mut self, now: Instant) -> TimerAction {
        self.poll_sending(now, 0, || SendQueue {
            written: 0,
            unacked: None,
        })
    }

    /// [`Timers::poll`] for a driver that can see its send queue: `written`
    /// is the bytes written so far, and `queue` is asked only at a pong
    /// deadline. A deadline that finds data the peer has not acknowledged
    /// ahead of the ping waits one more tick; if the peer acknowledged more
    /// meanwhile, it is heard from, else it expires.
    pub fn poll_sending(
        &mut self,
        now: Instant,
        written: u64,
        queue: impl FnOnce() -> SendQueue,
    ) -> TimerAction {
        let silent = now.saturating_duration_since(self.last_heard);
        if let Some(limit) = self.timeouts.read {
            if silent >= limit {
                return TimerAction::Expire(Expired::ReadTimeout(limit));
            }
        }
        let Some(ka) = self.timeouts.keepalive else {
            return TimerAction::Wait;
        };
        match self.ping_sent {
            Some(sent) if now.saturating_duration_since(sent) >= ka.timeout => {
                self.late_pong(now, ka.timeout, queue())
            }
            Some(_) => TimerAction::Wait,
            None if silent >= ka.interval => {
                self.ping_sent = Some(now);
                self.written_at_ping = written;
                TimerAction::SendPing
            }
            None => TimerAction::Wait,
        }
    }

    /// The pong deadline passed: expire, or give a ping stuck behind data
    /// until the next tick to see whether the peer takes any of it.
    fn late_pong(&mut self, now: Instant, timeout: Duration, queue: SendQueue) -> TimerAction {
        let expire = TimerAction::Expire(Expired::NoPong(timeout));
        let Some(unacked) = queue.unacked else {
            return expire;
        };
        let acked = queue.written.saturating_sub(unacked);
        match self.acked_at_deadline {
            // Only the ping and what followed it are unacknowledged: nothing
            // held it up.
            None if unacked <= queue.written.saturating_sub(self.written_at_ping) => expire,
            None => {
                self.acked_at_deadline = Some(acked);
                TimerAction::Wait
            }
            Some(before) if acked > before => {
                // Taking our bytes: alive. Ping again after the interval.
                self.heard(now);
                TimerAction::Wait
            }
            Some(_) => expire,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn timeouts(read: Option<Duration>, keepalive: Option<Keepalive>) -> Timeouts {
        Timeouts {
            read,
            keepalive,
            ..Timeouts::default()
        }
    }

    #[test]
    fn read_timeout_expires_after_silence_and_resets_when_heard() {
        let t0 = crate::test_origin();
        let mut timers = Timers::new(timeouts(Some(10 * S), None), t0);
        assert_eq!(timers.tick(), Some(10 * S));
        assert_eq!(timers.poll(t0 + 9 * S), TimerAction::Wait);
        timers.heard(t0 + 9 * S);
        assert_eq!(timers.poll(t0 + 18 * S), TimerAction::Wait);
        assert_eq!(
            timers.poll(t0 + 19 * S),
            TimerAction::Expire(Expired::ReadTimeout(10 * S))
        );
    }

    #[test]
    fn keepalive_pings_once_then_expires_without_an_answer() {
        let t0 = crate::test_origin();
        let ka = Keepalive {
            interval: 30 * S,
            timeout: 5 * S,
        };
        let mut timers = Timers::new(timeouts(None, Some(ka)), t0);
        assert_eq!(timers.tick(), Some(5 * S));
        assert_eq!(timers.poll(t0 + 29 * S), TimerAction::Wait);
        assert_eq!(timers.poll(t0 + 30 * S), TimerAction::SendPing);
        assert_eq!(timers.poll(t0 + 31 * S), TimerAction::Wait);
        assert_eq!(
            timers.poll(t0 + 35 * S),
            TimerAction::Expire(Expired::NoPong(5 * S))
        );
    }

    #[test]
    fn an_answer_to_the_ping_keeps_the_connection() {
        let t0 = crate::test_origin();
        let ka = Keepalive {
            interval: 30 * S,
            timeout: 5 * S,
        };
        let mut timers = Timers::new(timeouts(None, Some(ka)), t0);
        assert_eq!(timers.poll(t0 + 30 * S), TimerAction::SendPing);
        timers.heard(t0 + 32 * S);
        assert_eq!(timers.poll(t0 + 40 * S), TimerAction::Wait);
        assert_eq!(timers.poll(t0 + 62 * S), TimerAction::SendPing);
    }

    fn ka(interval: Duration, timeout: Duration) -> Keepalive {
        Keepalive { interval, timeout }
    }

    fn queue(written: u64, unacked: u64) -> impl FnOnce() -> SendQueue {
        move || SendQueue {
            written,
            unacked: Some(unacked),
        }
    }

    #[test]
    fn a_late_pong_behind_data_the_peer_is_taking_is_forgiven() {
        let t0 = crate::test_origin();
        let mut timers = Timers::new(timeouts(None, Some(ka(30 * S, 5 * S))), t0);
        // 1 MB written, 900 kB of it still unacknowledged when the ping goes.
        assert_eq!(
            timers.poll_sending(t0 + 30 * S, 1_000_000, queue(0, 0)),
            TimerAction::SendPing
        );
        // The deadline: the ping (2 bytes) still waits behind 800 kB.
        let at_deadline = queue(1_000_002, 800_002);
        assert_eq!(
            timers.poll_sending(t0 + 35 * S, 1_000_002, at_deadline),
            TimerAction::Wait
        );
        // A tick later the peer has acknowledged 100 kB more: alive.
        let later = queue(1_000_002, 700_002);
        assert_eq!(
            timers.poll_sending(t0 + 40 * S, 1_000_002, later),
            TimerAction::Wait
        );
        // And the silence starts again from there.
        assert_eq!(
            timers.poll_sending(t0 + 69 * S, 1_000_002, queue(0, 0)),
            TimerAction::Wait
        );
        assert_eq!(
            timers.poll_sending(t0 + 70 * S, 1_000_002, queue(0, 0)),
            TimerAction::SendPing
        );
    }

    #[test]
    fn a_late_pong_behind_data_nobody_takes_expires_a_tick_later() {
        let t0 = crate::test_origin();
        let mut timers = Timers::new(timeouts(None, Some(ka(30 * S, 5 * S))), t0);
        assert_eq!(
            timers.poll_sending(t0 + 30 * S, 5_000, queue(0, 0)),
            TimerAction::SendPing
        );
        assert_eq!(
            timers.poll_sending(t0 + 35 * S, 5_002, queue(5_002, 3_002)),
            TimerAction::Wait
        );
        assert_eq!(
            timers.poll_sending(t0 + 40 * S, 5_002, queue(5_002, 3_002)),
            TimerAction::Expire(Expired::NoPong(5 * S))
        );
    }

    #[test]
    fn a_late_pong_with_nothing_ahead_of_the_ping_expires_at_once() {
        let t0 = crate::test_origin();
        let mut timers = Timers::new(timeouts(None, Some(ka(30 * S, 5 * S))), t0);
        assert_eq!(
            timers.poll_sending(t0 + 30 * S, 5_000, queue(0, 0)),
            TimerAction::SendPing
        );
        // Everything before the ping was acknowledged; the ping and a
        // later 100-byte message were not: a dead peer, or a dead link.
        assert_eq!(
            timers.poll_sending(t0 + 35 * S, 5_102, queue(5_102, 102)),
            TimerAction::Expire(Expired::NoPong(5 * S))
        );
        // Where the platform cannot tell, a late pong expires as before.
        let mut timers = Timers::new(timeouts(None, Some(ka(30 * S, 5 * S))), t0);
        assert_eq!(timers.poll(t0 + 30 * S), TimerAction::SendPing);
        let unknown = || SendQueue {
            written: 9_000,
            unacked: None,
        };
        assert_eq!(
            timers.poll_sending(t0 + 35 * S, 9_000, unknown),
            TimerAction::Expire(Expired::NoPong(5 * S))
        );
    }

    #[test]
    fn no_deadlines_means_no_tick() {
        let timers = Timers::new(timeouts(None, None), crate::test_origin());
        assert_eq!(timers.tick(), None);
    }

    #[test]
    fn the_tick_is_the_shortest_deadline_of_both() {
        let ka = Keepalive {
            interval: 30 * S,
            timeout: 20 * S,
        };
        let both = |read| Timers::new(timeouts(Some(read), Some(ka)), crate::test_origin()).tick();
        assert_eq!(both(10 * S), Some(10 * S));
        assert_eq!(both(60 * S), Some(20 * S));
        // A zero timeout still ticks, rather than spinning or blocking.
        assert_eq!(both(Duration::ZERO), Some(Duration::from_millis(1)));
    }

    #[test]
    fn expiry_says_which_deadline_passed_and_how_long_it_was() {
        assert_eq!(
            Expired::ReadTimeout(10 * S).to_string(),
            "peer sent nothing for 10s"
        );
        assert_eq!(
            Expired::NoPong(Duration::from_millis(1500)).to_string(),
            "no answer to a keepalive ping within 1.5s"
        );
        // As Duration's Debug writes whole milliseconds.
        for ms in [1, 300, 1000, 1250, 2005, 60_000, 90_100] {
            let d = Duration::from_millis(ms);
            assert_eq!(Span(d).to_string(), format!("{d:?}"), "{ms}");
        }
    }
}
