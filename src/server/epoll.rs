//! epoll(7), the one system interface the event loop needs that std does
//! not wrap: three calls into the C library std already links, no crate.
//!
//! This is the crate's second `unsafe` block, proven by benchmark: with a
//! thread per client every 32-byte echo costs a thread wake-up, and the
//! event loop ([`crate::server::Server::run_event_loop`]) that epoll allows
//! serves many clients per wake-up (see BENCHMARKS.md, scenario b).
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The fd has bytes to read (or a listener has a connection waiting).
pub(crate) const READABLE: u32 = 0x001;
/// The fd's send buffer has room.
pub(crate) const WRITABLE: u32 = 0x004;
/// An error or a hang-up: always reported, whatever the interest.
pub(crate) const ERROR_OR_HANGUP: u32 = 0x008 | 0x010;
/// Wake one waiter, not all, when several epoll sets watch one listener.
pub(crate) const EXCLUSIVE: u32 = 1 << 28;

/// `O_CLOEXEC`, which differs on SPARC.
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const EPOLL_CLOEXEC: c_int = 0o2000000;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const EPOLL_CLOEXEC: c_int = 0x400000;
const EPOLL_CTL_ADD: c_int = 1;
const EPOLL_CTL_DEL: c_int = 2;
const EPOLL_CTL_MOD: c_int = 3;

/// `struct epoll_event`: packed on x86-64 only, as the kernel declares it.
#[cfg_attr(target_arch = "x86_64", repr(C, packed))]
#[cfg_attr(not(target_arch = "x86_64"), repr(C))]
#[derive(Clone, Copy, Default)]
pub(crate) struct Event {
    events: u32,
    token: u64,
}

impl Event {
    /// What happened: [`READABLE`], [`WRITABLE`], [`ERROR_OR_HANGUP`] bits.
    pub(crate) fn events(&self) -> u32 {
        self.events
    }

    /// The token the fd was registered with.
    pub(crate) fn token(&self) -> u64 {
        self.token
    }
}

extern "C" {
    fn epoll_create1(flags: c_int) -> c_int;
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut Event) -> c_int;
    fn epoll_wait(epfd: c_int, events: *mut Event, maxevents: c_int, timeout: c_int) -> c_int;
}

fn check(ret: c_int) -> io::Result<c_int> {
    match ret {
        -1 => Err(io::Error::last_os_error()),
        n => Ok(n),
    }
}

/// An epoll instance: a set of watched fds, each with a token.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; a new fd or -1.
        let fd = check(unsafe { epoll_create1(EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ctl(&self, op: c_int, fd: RawFd, interest: u32, token: u64) -> io::Result<()> {
        let mut event = Event {
            events: interest,
            token,
        };
        // SAFETY: `event` is a valid `epoll_event` for the call's duration;
        // the kernel copies it and keeps no pointer.
        check(unsafe { epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }

    /// Watches `fd` for `interest`, reporting it with `token`.
    pub(crate) fn add(&self, fd: &impl AsRawFd, interest: u32, token: u64) -> io::Result<()> {
        self.ctl(EPOLL_CTL_ADD, fd.as_raw_fd(), interest, token)
    }

    /// Changes what `fd` is watched for.
    pub(crate) fn modify(&self, fd: &impl AsRawFd, interest: u32, token: u64) -> io::Result<()> {
        self.ctl(EPOLL_CTL_MOD, fd.as_raw_fd(), interest, token)
    }

    /// Stops watching `fd`.
    pub(crate) fn delete(&self, fd: &impl AsRawFd) -> io::Result<()> {
        self.ctl(EPOLL_CTL_DEL, fd.as_raw_fd(), 0, 0)
    }

    /// Waits up to `timeout` for events and fills `events` from the front;
    /// returns how many. A signal ends the wait early with 0.
    pub(crate) fn wait(&self, events: &mut [Event], timeout: Duration) -> io::Result<usize> {
        let max = events.len().min(c_int::MAX as usize) as c_int;
        let ms = timeout.as_millis().min(c_int::MAX as u128) as c_int;
        // SAFETY: the kernel writes at most `max` events into `events`,
        // which has that many; `Event` is plain data, valid for any bits.
        match check(unsafe { epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, ms) }) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    const SHORT: Duration = Duration::from_millis(50);

    fn wait(epoll: &Epoll) -> Vec<(u32, u64)> {
        let mut events = [Event::default(); 8];
        let n = epoll.wait(&mut events, SHORT).unwrap();
        events[..n]
            .iter()
            .map(|e| (e.events(), e.token()))
            .collect()
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri does not run foreign functions")]
    fn reports_a_readable_fd_with_its_token() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let epoll = Epoll::new().unwrap();
        epoll.add(&b, READABLE, 7).unwrap();
        assert!(wait(&epoll).is_empty(), "nothing written yet");
        a.write_all(b"x").unwrap();
        assert_eq!(wait(&epoll), vec![(READABLE, 7)]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri does not run foreign functions")]
    fn modify_changes_interest_and_delete_stops_reports() {
        let (_a, b) = UnixStream::pair().unwrap();
        let epoll = Epoll::new().unwrap();
        epoll.add(&b, READABLE, 1).unwrap();
        assert!(wait(&epoll).is_empty());
        epoll.modify(&b, READABLE | WRITABLE, 2).unwrap();
        assert_eq!(wait(&epoll), vec![(WRITABLE, 2)]);
        epoll.delete(&b).unwrap();
        assert!(wait(&epoll).is_empty());
        assert!(epoll.delete(&b).is_err(), "deleting twice is an error");
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri does not run foreign functions")]
    fn reports_a_hangup_without_asking() {
        let (a, b) = UnixStream::pair().unwrap();
        let epoll = Epoll::new().unwrap();
        epoll.add(&b, 0, 3).unwrap();
        drop(a);
        let events = wait(&epoll);
        assert_eq!(events.len(), 1);
        assert_ne!(events[0].0 & ERROR_OR_HANGUP, 0);
        assert_eq!(events[0].1, 3);
    }
}
