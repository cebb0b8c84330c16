//! What the scheduler did to this thread: its involuntary context switches
//! (`getrusage(RUSAGE_THREAD)`), which tell the busy-poll spin that another task wanted its
//! processor.
//!
//! Owns the one syscall; the policy (when to stop spinning) is the daemon's.

use std::io;
use std::mem;

/// Involuntary context switches of the calling thread so far: how often the scheduler took the
/// processor away while the thread was still runnable (preemption, or a `sched_yield` that
/// handed it to another task). It only grows; compare two readings.
///
/// # Errors
///
/// The OS error of `getrusage` (none is expected: the arguments are always valid).
// HOT PATH
pub fn involuntary_switches() -> io::Result<u64> {
    // SAFETY: `rusage` is a plain C struct of integers and `timeval`s; all zeroes is valid.
    let mut usage: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage` for the duration of the call, and
    // RUSAGE_THREAD (Linux 2.6.26+) asks for the calling thread only.
    syscall!(getrusage(libc::RUSAGE_THREAD, &mut usage))?;
    Ok(u64::try_from(usage.ru_nivcsw).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn involuntary_switches_never_go_back() {
        let a = involuntary_switches().unwrap();
        for _ in 0..100 {
            std::thread::yield_now();
        }
        let b = involuntary_switches().unwrap();
        assert!(b >= a);
    }
}
