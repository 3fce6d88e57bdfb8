//! The std clock for the sans-IO core's [`Instant`]: std's monotonic clock,
//! counted from the first time this process asked for the time.

use crate::Instant;
use std::sync::OnceLock;

/// The std instant all of this process's [`Instant`]s count from.
fn origin() -> std::time::Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// Reading the clock, for drivers that have `std` (feature `std`).
impl Instant {
    /// Now, on std's monotonic clock.
    ///
    /// ```
    /// let start = stdws::Instant::now();
    /// assert!(stdws::Instant::now() >= start);
    /// ```
    pub fn now() -> Instant {
        Instant::from_duration(origin().elapsed())
    }

    /// How long ago this was.
    pub fn elapsed(self) -> std::time::Duration {
        Instant::now().saturating_duration_since(self)
    }

    /// The same moment as a `std::time::Instant`, to sleep or wait until it.
    pub fn to_std(self) -> std::time::Instant {
        origin() + self.since_origin()
    }
}
