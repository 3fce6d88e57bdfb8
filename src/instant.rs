//! A point on a monotonic clock, as the sans-IO layers see time.
//!
//! Those layers never read a clock: the driver passes the time in. It is a
//! plain count from an origin the driver picks (boot, the process start, a
//! test's zero), so that a device without `std::time` can drive them too.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time: how long after the driver's origin it is.
///
/// The driver picks the origin once and measures every instant it passes
/// in from it; only differences between instants mean anything.
///
/// ```
/// use std::time::Duration;
/// use stdws::Instant;
///
/// let start = Instant::from_duration(Duration::from_millis(1500));
/// let later = start + Duration::from_secs(2);
/// assert_eq!(later.saturating_duration_since(start), Duration::from_secs(2));
/// assert_eq!(start.saturating_duration_since(later), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The origin itself.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Instant(since_origin)
    }

    /// The instant `ms` milliseconds after the origin (a device's tick count).
    pub const fn from_millis(ms: u64) -> Self {
        Instant(Duration::from_millis(ms))
    }

    /// How long after the origin this is.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + d`, or `None` past the end of time.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }

    /// `self - d`, or `None` before the origin.
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        self.0.checked_sub(d).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the end of time: a deadline that far away never comes.
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// As [`Instant::saturating_duration_since`].
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}
