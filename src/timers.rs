//! Read-silence and keepalive deadlines, without a clock: the caller passes
//! `now`, so every timeout is unit-testable without sleeping.
//!
//! The socket layer sets its read timeout to [`Timers::tick`] once, and calls
//! [`Timers::poll`] whenever a read times out; deadlines are therefore met
//! within one tick, at no cost per read.

use std::time::{Duration, Instant};

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
pub enum Expired {
    /// Nothing arrived for the read timeout.
    ReadTimeout(Duration),
    /// A keepalive ping went unanswered.
    NoPong(Duration),
}

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expired::ReadTimeout(d) => write!(f, "peer sent nothing for {d:?}"),
            Expired::NoPong(d) => write!(f, "no answer to a keepalive ping within {d:?}"),
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
    read_timeout: Option<Duration>,
    keepalive: Option<Keepalive>,
    last_heard: Instant,
    ping_sent: Option<Instant>,
}

impl Timers {
    /// Deadlines starting at `now`; `None` for either disables it.
    pub fn new(read_timeout: Option<Duration>, keepalive: Option<Keepalive>, now: Instant) -> Self {
        Timers {
            read_timeout,
            keepalive,
            last_heard: now,
            ping_sent: None,
        }
    }

    /// Whether any deadline is set.
    pub fn is_active(&self) -> bool {
        self.read_timeout.is_some() || self.keepalive.is_some()
    }

    /// The read timeout the stream should use: the shortest configured duration.
    pub fn tick(&self) -> Option<Duration> {
        let ka = self.keepalive.map(|k| k.interval.min(k.timeout));
        match (self.read_timeout, ka) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|d| d.max(Duration::from_millis(1)))
    }

    /// Bytes arrived from the peer.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.ping_sent = None;
    }

    /// What is due at `now`. Returns [`TimerAction::SendPing`] once per silence.
    pub fn poll(&mut self, now: Instant) -> TimerAction {
        let silent = now.saturating_duration_since(self.last_heard);
        if let Some(limit) = self.read_timeout {
            if silent >= limit {
                return TimerAction::Expire(Expired::ReadTimeout(limit));
            }
        }
        let Some(ka) = self.keepalive else {
            return TimerAction::Wait;
        };
        match self.ping_sent {
            Some(sent) if now.saturating_duration_since(sent) >= ka.timeout => {
                TimerAction::Expire(Expired::NoPong(ka.timeout))
            }
            Some(_) => TimerAction::Wait,
            None if silent >= ka.interval => {
                self.ping_sent = Some(now);
                TimerAction::SendPing
            }
            None => TimerAction::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn read_timeout_expires_after_silence_and_resets_when_heard() {
        let t0 = Instant::now();
        let mut timers = Timers::new(Some(10 * S), None, t0);
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
        let t0 = Instant::now();
        let ka = Keepalive {
            interval: 30 * S,
            timeout: 5 * S,
        };
        let mut timers = Timers::new(None, Some(ka), t0);
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
        let t0 = Instant::now();
        let ka = Keepalive {
            interval: 30 * S,
            timeout: 5 * S,
        };
        let mut timers = Timers::new(None, Some(ka), t0);
        assert_eq!(timers.poll(t0 + 30 * S), TimerAction::SendPing);
        timers.heard(t0 + 32 * S);
        assert_eq!(timers.poll(t0 + 40 * S), TimerAction::Wait);
        assert_eq!(timers.poll(t0 + 62 * S), TimerAction::SendPing);
    }

    #[test]
    fn no_deadlines_means_no_tick() {
        let timers = Timers::new(None, None, Instant::now());
        assert!(!timers.is_active());
        assert_eq!(timers.tick(), None);
    }
}
