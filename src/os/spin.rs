//! The busy-poll spin's decisions: after traffic, poll on without sleeping for `--busy-poll`;
//! on each pass that finds nothing, yield the processor, or end the spin when the thread was
//! switched out since the last pass; after a quiet pass, yield right after writing a few
//! frames to the device.
//!
//! Owns only the decisions, over instants handed in by the daemon, which owns the clock and
//! makes the system calls (the reads, `epoll_wait`, `sched_yield`); so the policy is tested
//! here with made-up times. Why the spin yields and why it ends when switched out is told at
//! `Daemon`'s `spin` field and in docs/performance.md.

use std::time::{Duration, Instant};

/// While spinning, one pass in this many asks epoll (for the timer and signals); the others
/// try the socket and the tap directly, which saves the `epoll_wait` when a packet is there.
pub const SPIN_EPOLL_EVERY: u32 = 16;

/// A gap this long between two passes of a spin, outside its own yields, means the thread was
/// switched out: another task wanted this processor, and the spin ends. An empty pass takes a
/// few microseconds; a task that takes the processor holds it for at least its own run.
pub const PREEMPTED_GAP: Duration = Duration::from_micros(20);

/// A pass that wrote at most this many frames to the device, while spinning is on, yields
/// right after the writes ([`Spin::yield_after_writing`]).
pub const YIELD_AFTER_WRITING_AT_MOST: u64 = 4;

/// How the loop should look for work on this pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Not spinning: sleep in `epoll_wait` until something is ready.
    Sleep,
    /// Spinning, and this is an epoll pass: `epoll_wait` with a zero timeout.
    PollNow,
    /// Spinning: try the socket and the tap directly, without asking epoll.
    TryDirect,
}

/// What to do after a spinning pass that found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// Call `sched_yield`, then [`Spin::yielded`].
    Yield,
    /// The thread was switched out since the last pass: the spin has ended.
    Preempted,
}

/// The state of the spin.
#[derive(Debug)]
pub struct Spin {
    /// How long to spin after traffic (`--busy-poll`); zero never spins.
    busy_poll: Duration,
    /// Until when the loop polls without sleeping.
    until: Option<Instant>,
    /// Passes since the spin began (0 when not spinning).
    passes: u32,
    /// When the spin's last pass ended: its last traffic, or right after its last yield.
    mark: Instant,
    /// The last pass moved nothing, or the loop slept: traffic now starts an exchange.
    quiet: bool,
}

impl Spin {
    /// A spin of `busy_poll` after traffic, not spinning yet.
    pub fn new(busy_poll: Duration, now: Instant) -> Spin {
        Spin {
            busy_poll,
            until: None,
            passes: 0,
            mark: now,
            quiet: true,
        }
    }

    /// The start of a loop pass at `now`: how to look for work.
    pub fn begin_pass(&mut self, now: Instant) -> Pass {
        if self.until.is_none_or(|until| now >= until) {
            self.until = None;
            self.passes = 0;
            self.quiet = true;
            return Pass::Sleep;
        }
        self.passes = self.passes.wrapping_add(1);
        if self.passes % SPIN_EPOLL_EVERY == 0 {
            Pass::PollNow
        } else {
            Pass::TryDirect
        }
    }

    /// A pass moved packets (it ended at `now`): spin on for `busy_poll` from now.
    pub fn traffic(&mut self, now: Instant) {
        self.quiet = false;
        if self.busy_poll.is_zero() {
            return;
        }
        self.mark = now;
        self.until = Some(now + self.busy_poll);
    }

    /// Whether to yield right after the socket's datagrams made the node write `written`
    /// frames to the device: yes for a few (at most [`YIELD_AFTER_WRITING_AT_MOST`]) after a
    /// quiet pass (or a sleep), while spinning is on.
    ///
    /// A frame written to the tap wakes the application waiting for it, often on this very
    /// processor. A task that yields as often as the spin does keeps being picked anew, and
    /// the scheduler protects a freshly picked task's slice from wake-up preemption (EEVDF's
    /// run-to-parity), so the woken application would wait for the spin's next idle yield:
    /// a tap read, the pass's housekeeping and the next pass's two reads later. Yielding at
    /// once lets a reply be on its way by the time the loop reads the tap. Only for a few
    /// frames after a quiet pass (a request, a reply): a burst, or frames in the middle of
    /// traffic, are a stream, whose reader gets its turn at the spin's next idle yield, and a
    /// yield there is one more system call in the busiest loop. A non-spinning node sleeps in
    /// epoll right after and needs no yield.
    pub fn yield_after_writing(&self, written: u64) -> bool {
        self.quiet
            && !self.busy_poll.is_zero()
            && (1..=YIELD_AFTER_WRITING_AT_MOST).contains(&written)
    }

    /// A spinning pass found nothing at `now`: yield, or end the spin if the time since the
    /// last pass, outside our own yields, shows that the thread was switched out.
    pub fn idle(&mut self, now: Instant) -> Idle {
        self.quiet = true;
        if now.saturating_duration_since(self.mark) > PREEMPTED_GAP {
            self.until = None;
            self.passes = 0;
            Idle::Preempted
        } else {
            Idle::Yield
        }
    }

    /// The yield asked for by [`Spin::idle`] returned at `now`: time spent in it (another
    /// task of our group ran: the yield worked) does not count as being switched out.
    pub fn yielded(&mut self, now: Instant) {
        self.mark = now;
    }

    /// The loop's own bookkeeping after a pass (flushing what the pass queued, housekeeping,
    /// the periodic jobs) ended at `now`: that time does not count as being switched out
    /// either, so the next quiet pass measures its gap from here.
    pub fn own_work_done(&mut self, now: Instant) {
        self.mark = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn sleeps_until_traffic_and_spins_for_busy_poll_after_it() {
        let t0 = Instant::now();
        let mut spin = Spin::new(50 * US, t0);
        assert_eq!(spin.begin_pass(t0), Pass::Sleep);
        spin.traffic(t0);
        assert_eq!(spin.begin_pass(t0 + US), Pass::TryDirect);
        // Traffic again at 40 µs: the spin now lasts until 90 µs.
        spin.traffic(t0 + 40 * US);
        assert_eq!(spin.begin_pass(t0 + 89 * US), Pass::TryDirect);
        assert_eq!(spin.begin_pass(t0 + 90 * US), Pass::Sleep);
        assert_eq!(spin.begin_pass(t0 + 91 * US), Pass::Sleep);
    }

    #[test]
    fn yields_after_writing_a_few_frames_but_not_a_burst_nor_nothing() {
        let t0 = Instant::now();
        let mut spin = Spin::new(50 * US, t0);
        assert!(!spin.yield_after_writing(0));
        assert!(spin.yield_after_writing(1));
        assert!(spin.yield_after_writing(YIELD_AFTER_WRITING_AT_MOST));
        assert!(!spin.yield_after_writing(YIELD_AFTER_WRITING_AT_MOST + 1));
        assert!(!spin.yield_after_writing(u64::MAX));
        // In the middle of traffic: no yield, until a pass finds nothing.
        spin.traffic(t0);
        assert_eq!(spin.begin_pass(t0 + US), Pass::TryDirect);
        assert!(!spin.yield_after_writing(1));
        assert_eq!(spin.idle(t0 + 2 * US), Idle::Yield);
        spin.yielded(t0 + 3 * US);
        assert_eq!(spin.begin_pass(t0 + 4 * US), Pass::TryDirect);
        assert!(spin.yield_after_writing(1));
        // After traffic the spin ends and the loop sleeps: the next packet starts afresh.
        spin.traffic(t0 + 5 * US);
        assert_eq!(spin.begin_pass(t0 + 100 * US), Pass::Sleep);
        assert!(spin.yield_after_writing(2));
        let off = Spin::new(Duration::ZERO, t0);
        assert!(!off.yield_after_writing(1));
    }

    #[test]
    fn zero_busy_poll_never_spins() {
        let t0 = Instant::now();
        let mut spin = Spin::new(Duration::ZERO, t0);
        spin.traffic(t0);
        assert_eq!(spin.begin_pass(t0), Pass::Sleep);
    }

    #[test]
    fn every_sixteenth_spinning_pass_asks_epoll() {
        let t0 = Instant::now();
        let mut spin = Spin::new(Duration::from_secs(1), t0);
        spin.traffic(t0);
        let kinds: Vec<Pass> = (1..=32).map(|i| spin.begin_pass(t0 + i * US)).collect();
        let polls: Vec<usize> = (0..kinds.len())
            .filter(|&i| kinds[i] == Pass::PollNow)
            .collect();
        assert_eq!(polls, vec![15, 31]);
        assert!(kinds
            .iter()
            .all(|k| matches!(k, Pass::PollNow | Pass::TryDirect)));
    }

    #[test]
    fn empty_passes_yield_while_the_gaps_are_short() {
        let t0 = Instant::now();
        let mut spin = Spin::new(50 * US, t0);
        spin.traffic(t0);
        let mut now = t0;
        for _ in 0..10 {
            now += 3 * US;
            assert_eq!(spin.begin_pass(now), Pass::TryDirect);
            assert_eq!(spin.idle(now), Idle::Yield);
            spin.yielded(now);
        }
    }

    #[test]
    fn a_long_yield_is_not_a_preemption() {
        let t0 = Instant::now();
        let mut spin = Spin::new(50 * US, t0);
        spin.traffic(t0);
        assert_eq!(spin.idle(t0 + 2 * US), Idle::Yield);
        // Another task of our group ran for 30 µs inside our yield: the yield worked.
        spin.yielded(t0 + 32 * US);
        assert_eq!(spin.begin_pass(t0 + 34 * US), Pass::TryDirect);
        assert_eq!(spin.idle(t0 + 34 * US), Idle::Yield);
    }

    #[test]
    fn the_loops_own_bookkeeping_after_traffic_is_not_a_preemption() {
        let t0 = Instant::now();
        let mut spin = Spin::new(50 * US, t0);
        // Traffic at t0, then 30 µs of flushing and housekeeping of our own.
        spin.traffic(t0);
        spin.own_work_done(t0 + 30 * US);
        assert_eq!(spin.begin_pass(t0 + 31 * US), Pass::TryDirect);
        assert_eq!(spin.idle(t0 + 32 * US), Idle::Yield, "still spinning");
        // Without it the same gap reads as being switched out.
        let mut spin = Spin::new(50 * US, t0);
        spin.traffic(t0);
        assert_eq!(spin.idle(t0 + 32 * US), Idle::Preempted);
    }

    #[test]
    fn a_gap_outside_the_yield_ends_the_spin_until_the_next_traffic() {
        let t0 = Instant::now();
        let mut spin = Spin::new(50 * US, t0);
        spin.traffic(t0);
        assert_eq!(spin.idle(t0 + 2 * US), Idle::Yield);
        spin.yielded(t0 + 3 * US);
        // Switched out for 25 µs between the yield and the next pass's reads.
        assert_eq!(spin.idle(t0 + 28 * US), Idle::Preempted);
        assert_eq!(spin.begin_pass(t0 + 29 * US), Pass::Sleep);
        // The next packet starts a new spin, measured from then.
        spin.traffic(t0 + 500 * US);
        assert_eq!(spin.begin_pass(t0 + 501 * US), Pass::TryDirect);
        assert_eq!(spin.idle(t0 + 503 * US), Idle::Yield);
    }

    #[test]
    fn a_gap_of_exactly_the_limit_is_not_a_preemption() {
        let t0 = Instant::now();
        let mut spin = Spin::new(50 * US, t0);
        spin.traffic(t0);
        assert_eq!(spin.idle(t0 + PREEMPTED_GAP), Idle::Yield);
        spin.yielded(t0 + PREEMPTED_GAP);
        assert_eq!(
            spin.idle(t0 + PREEMPTED_GAP + PREEMPTED_GAP + US),
            Idle::Preempted
        );
    }
}
