//! Time as the core sees it: a monotonic [`Instant`] counted in milliseconds from an arbitrary
//! origin, plus [`std::time::Duration`] for spans.
//!
//! Owns only the arithmetic. Nothing here reads a clock: the daemon turns `CLOCK_BOOTTIME`
//! (suspended time included; `daemon::Clock`) into an [`Instant`] at each pass, and the
//! simulator advances a fake one. The core therefore behaves identically under both (on
//! one CPU: which ciphers it seals with depends on the CPU's AES instructions, see `crypto`).

use core::fmt;
use core::ops::{Add, AddAssign};
use std::time::Duration;

/// A point in time, in milliseconds since an origin chosen by whoever drives the core.
///
/// Arithmetic saturates instead of overflowing, so no input can make it panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    millis: u64,
}

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant { millis: 0 };
    /// A point so far away that it is never reached; used for "no deadline".
    pub const FAR_FUTURE: Instant = Instant { millis: u64::MAX };

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant { millis }
    }

    /// An instant `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(earlier.millis))
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant {
            millis: self.millis.saturating_add(duration_millis(rhs)),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.millis / 1000, self.millis % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_add_saturates_instead_of_overflowing() {
        assert_eq!(
            Instant::FAR_FUTURE + Duration::from_secs(1),
            Instant::FAR_FUTURE
        );
        assert_eq!(Instant::ZERO + Duration::MAX, Instant::FAR_FUTURE);
    }

    #[test]
    fn instant_duration_since_later_is_zero() {
        let a = Instant::from_secs(5);
        let b = Instant::from_secs(7);
        assert_eq!(b.saturating_duration_since(a), Duration::from_secs(2));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }

    #[test]
    fn instant_displays_seconds_with_millis() {
        assert_eq!(Instant::from_millis(12_034).to_string(), "12.034s");
    }
}
