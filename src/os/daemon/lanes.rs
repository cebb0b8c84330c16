//! The `--threads` lanes, OS side: one thread per extra queue of a multi-queue tap, each
//! running a [`Lane`] over its queue and a duplicate of the UDP socket, and the hand-over with
//! the loop's thread.
//!
//! Owns the threads, their own small loops (epoll on one queue, up to [`BUDGET`] reads per
//! wake-up, the same super-frame cutting as the loop's) and the three things shared with the
//! loop's thread, none of them touched per frame:
//! - the view: the loop publishes a new [`ForwardView`] when [`Node::forward_generation`]
//!   moved (at most every [`PUBLISH_MIN_GAP`]) and at least every [`PUBLISH_EVERY`] (to carry
//!   refreshed MAC expiries); a lane checks one atomic version per wake-up and takes the
//!   mutex only when it moved;
//! - the counts: each lane hands what it counted to the loop every [`REPORT_EVERY`] and when
//!   it stops; the loop adds them to the node's counters;
//! - a [`Wake`] flag in the loop's epoll set: a lane sets it when what it hands over should
//!   not wait for the loop's next wake-up (peers that need a handshake, or the lane's own
//!   end), since an idle loop sleeps up to a second.
//!
//! Everything else (receiving, learning, control messages, timers, signals) stays on the
//! loop's thread. A lane that fails (its queue gone, its epoll broken) logs one line and
//! ends, and the loop ends the daemon at its next pass ([`Error::LaneEnded`]): flows steered
//! to that queue would otherwise be lost without a word.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use log::{debug, error};

use super::drain::{
    cut_superframe, is_dropped_frame, is_transient, note_dropped_frame, whole_read, Trouble,
};
use super::{Clock, BUDGET, FLUSH_AT, SUPERFRAME_BUF_LEN};
use crate::buf::PacketBuf;
use crate::error::Error;
use crate::lane::{ForwardView, Lane, LaneCounts};
use crate::node::Node;
use crate::sys::epoll::Poll;
use crate::sys::tap::{TapDevice, TapQueue};
use crate::sys::udp::UdpSocket;
use crate::sys::wake::Wake;
use crate::time::Instant;

/// The fewest milliseconds between two views published after changes: a flood of new MACs
/// costs at most this many copies of the table per second.
pub const PUBLISH_MIN_GAP: Duration = Duration::from_millis(20);
/// A view is published at least this often, changed or not (refreshed expiries).
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);
// A lane trusts a view's MAC entries until `VIEW_LAG` past their expiry there: a newer view,
// with the node's refreshes and removals, must come before that.
const _: () = assert!(PUBLISH_EVERY.as_millis() < crate::lane::VIEW_LAG.as_millis());
/// How often a lane hands its counts to the loop.
pub const REPORT_EVERY: Duration = Duration::from_secs(1);
/// The longest a lane sleeps without looking at the stop flag and the view.
const LANE_WAKE: Duration = Duration::from_millis(100);
/// A lane with peers waiting for a handshake hands its counts over at most this often.
const WANTED_HAND_OVER: Duration = Duration::from_millis(20);

/// When the next view is due after one published at `published_at`: [`PUBLISH_MIN_GAP`]
/// later if the node's changed since (a lane learns of a new peer within that gap even when
/// nothing else wakes the loop), else [`PUBLISH_EVERY`] later (the refreshed expiries must
/// reach the lanes within [`crate::lane::VIEW_LAG`], also when the loop sleeps: its
/// housekeeping alone would wake it up to a second late).
fn publish_at(changed: bool, published_at: Instant) -> Instant {
    published_at
        + if changed {
            PUBLISH_MIN_GAP
        } else {
            PUBLISH_EVERY
        }
}

/// What the loop's thread and the lanes share.
struct Shared {
    view: Mutex<Arc<ForwardView>>,
    /// Moves with every view published.
    version: AtomicU64,
    /// Counts handed over by the lanes, not yet added to the node's, each with the lane's
    /// tap reads that could not be cut into frames.
    counts: Mutex<Vec<(LaneCounts, u64)>>,
    stop: AtomicBool,
    /// Set by a lane for the loop: see [`Lanes::wake`].
    wake: Option<Wake>,
    /// The number of a lane that failed (0: none), set before it wakes the loop.
    failed: AtomicUsize,
}

impl Shared {
    /// Wakes the loop's thread, if it sleeps.
    fn wake_loop(&self) {
        if let Some(wake) = &self.wake {
            wake.set();
        }
    }
}

/// The lanes, as the loop's thread sees them.
pub(super) struct Lanes {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The generation of the last view published, and when.
    published: u64,
    published_at: Instant,
    /// Tap reads the lanes could not cut into frames, as handed over so far.
    offload_errors: u64,
    /// The lanes' counts being added to the node's (see [`Lanes::absorb`]); empty between.
    absorbing: Vec<(LaneCounts, u64)>,
}

impl Lanes {
    /// Starts one lane per queue in `queues`, each sending through a duplicate of `socket`,
    /// with the node's current view. No queues: no threads, and every other call is cheap.
    ///
    /// # Errors
    ///
    /// [`Error::Lanes`] if the socket cannot be duplicated or a thread cannot be started.
    pub(super) fn start(
        node: &Node<UdpSocket, TapDevice>,
        queues: Vec<TapQueue>,
        mut clock: Clock,
        vnet_hdr_len: usize,
    ) -> Result<Lanes, Error> {
        let view = if queues.is_empty() {
            ForwardView::empty(node.config().token)
        } else {
            node.forward_view()
        };
        let now = clock.now();
        let published = view.generation;
        let wake = if queues.is_empty() {
            None
        } else {
            Some(Wake::new().map_err(|e| Error::Lanes(format!("cannot make an eventfd: {e}")))?)
        };
        let shared = Arc::new(Shared {
            view: Mutex::new(Arc::new(view)),
            version: AtomicU64::new(0),
            counts: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            wake,
            failed: AtomicUsize::new(0),
        });
        let mut lanes = Lanes {
            shared,
            threads: Vec::new(),
            published,
            published_at: now,
            offload_errors: 0,
            absorbing: Vec::new(),
        };
        for (i, queue) in queues.into_iter().enumerate() {
            let index = i + 1;
            let socket = node
                .socket()
                .try_clone()
                .map_err(|e| Error::Lanes(format!("cannot duplicate the UDP socket: {e}")))?;
            let shared = Arc::clone(&lanes.shared);
            let thread = std::thread::Builder::new()
                .name(format!("ethcloud-lane{index}"))
                .spawn(move || run_lane(index, queue, socket, &shared, clock, vnet_hdr_len))
                .map_err(|e| Error::Lanes(format!("cannot start lane {index}: {e}")))?;
            lanes.threads.push(thread);
        }
        Ok(lanes)
    }

    /// The flag the lanes set to wake the loop's thread (`None` without lanes): the loop
    /// watches it in its epoll set and, when it is set, clears it with [`Lanes::clear_wake`]
    /// and tends the lanes ([`Lanes::tend`]) in the same pass.
    pub(super) fn wake(&self) -> Option<&Wake> {
        self.shared.wake.as_ref()
    }

    /// Clears the flag of [`Lanes::wake`] (the loop then tends the lanes).
    ///
    /// # Errors
    ///
    /// [`Error::Epoll`] if the eventfd cannot be read (it stays readable, and the loop would
    /// spin on it).
    pub(super) fn clear_wake(&self) -> Result<(), Error> {
        if let Some(wake) = &self.shared.wake {
            wake.clear().map_err(Error::Epoll)?;
        }
        Ok(())
    }

    /// How many lanes run besides the loop.
    pub(super) fn len(&self) -> usize {
        self.threads.len()
    }

    /// When the loop must wake up to publish the next view (`None` without lanes): see
    /// [`publish_at`].
    pub(super) fn publish_due(&self, node: &Node<UdpSocket, TapDevice>) -> Option<Instant> {
        (!self.threads.is_empty()).then(|| {
            publish_at(
                node.forward_generation() != self.published,
                self.published_at,
            )
        })
    }

    /// After a pass: publishes a new view if the node's changed (and [`PUBLISH_MIN_GAP`]
    /// passed) or [`PUBLISH_EVERY`] passed, and adds the counts the lanes handed over.
    ///
    /// # Errors
    ///
    /// [`Error::LaneEnded`] when a lane's thread has ended (it logged why). The loop holds
    /// a duplicate of every queue's fd for its writes, so the queue stays attached and the
    /// kernel keeps steering flows to it: nobody would read them, and the daemon must stop
    /// (a service manager restarts it) rather than lose those flows without a word.
    pub(super) fn tend(
        &mut self,
        now: Instant,
        node: &mut Node<UdpSocket, TapDevice>,
    ) -> Result<(), Error> {
        if self.threads.is_empty() {
            return Ok(());
        }
        if let Some(index) = self.ended() {
            return Err(Error::LaneEnded { index });
        }
        let changed = node.forward_generation() != self.published;
        if now >= publish_at(changed, self.published_at) {
            let view = node.forward_view();
            self.published = view.generation;
            self.published_at = now;
            *self
                .shared
                .view
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(view);
            self.shared.version.fetch_add(1, Ordering::Release);
        }
        self.absorb(now, node);
        Ok(())
    }

    /// The number of the first lane that has ended or is ending, if one has (while running, a
    /// lane ends only when it fails; at the stop, [`Lanes::stop`] ends them all). A lane that
    /// fails says so in `Shared::failed` before it wakes the loop, since its thread may still
    /// be winding down when the loop looks.
    fn ended(&self) -> Option<usize> {
        match self.shared.failed.load(Ordering::Acquire) {
            0 => self
                .threads
                .iter()
                .position(JoinHandle::is_finished)
                .map(|i| i + 1),
            index => Some(index),
        }
    }

    /// Adds the counts the lanes handed over to the node's counters. The lock is held only
    /// to take them (swapped with an empty list that keeps its room): the node's work with
    /// them, handshakes included, never keeps a lane from handing over.
    pub(super) fn absorb(&mut self, now: Instant, node: &mut Node<UdpSocket, TapDevice>) {
        self.absorb_as(now, node, false);
    }

    /// [`Lanes::absorb`], or at a stop, where no handshake starts (see
    /// [`Node::absorb_lane_at_stop`]).
    fn absorb_as(&mut self, now: Instant, node: &mut Node<UdpSocket, TapDevice>, stopping: bool) {
        {
            let mut counts = self
                .shared
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut *counts, &mut self.absorbing);
        }
        for (c, offload_errors) in self.absorbing.drain(..) {
            if stopping {
                node.absorb_lane_at_stop(now, &c);
            } else {
                node.absorb_lane(now, &c);
            }
            self.offload_errors = self.offload_errors.saturating_add(offload_errors);
        }
    }

    /// Tap reads the lanes could not cut into frames (added to the loop's own
    /// `offload_errors` in the status).
    pub(super) fn offload_errors(&self) -> u64 {
        self.offload_errors
    }

    /// Stops every lane and waits for it; their last counts go to the node.
    pub(super) fn stop(&mut self, now: Instant, node: &mut Node<UdpSocket, TapDevice>) {
        self.join();
        // Counts only: no handshake starts on the way out.
        self.absorb_as(now, node, true);
    }

    /// Sets the stop flag and waits for every lane (each notices within [`LANE_WAKE`]).
    fn join(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                error!("a lane thread panicked");
            }
        }
    }
}

impl Drop for Lanes {
    /// The loop ended without [`Lanes::stop`] (an error): the lanes end with it.
    fn drop(&mut self) {
        self.join();
    }
}

/// A lane's thread: reads its queue, forwards each frame with the current view, hands over
/// its counts now and then, until the stop flag is set or its queue fails.
fn run_lane(
    index: usize,
    mut queue: TapQueue,
    mut socket: UdpSocket,
    shared: &Shared,
    mut clock: Clock,
    vnet_hdr_len: usize,
) {
    // However the lane ends before the stop (an error, or a panic where panics unwind: the
    // tests' builds; the release build aborts), the loop hears of it now.
    let _ended = EndGuard { index, shared };
    let mut poll = match Poll::new().and_then(|poll| {
        poll.register(std::os::fd::AsFd::as_fd(&queue), 0)?;
        Ok(poll)
    }) {
        Ok(poll) => poll,
        Err(e) => {
            error!("lane {index}: cannot set up epoll: {e}; this lane stops");
            return;
        }
    };
    socket.enable_batching();
    let mut version = shared.version.load(Ordering::Acquire);
    let view = Arc::clone(&shared.view.lock().unwrap_or_else(PoisonError::into_inner));
    let mut lane = Lane::new(socket, view, clock.now());
    let mut buf = PacketBuf::new();
    let mut superframe = vec![
        0u8;
        if vnet_hdr_len > 0 {
            SUPERFRAME_BUF_LEN
        } else {
            0
        }
    ];
    let mut report_at = clock.now() + REPORT_EVERY;
    let mut handed_at = clock.now();
    // Tap reads that could not be cut into frames, since the last hand-over and in all.
    let mut offload_errors = 0u64;
    let mut offload_errors_total = 0u64;
    let mut forwarded = 0u64;
    let mut trouble = Trouble::default();
    debug!("lane {index} started");
    while !shared.stop.load(Ordering::Acquire) {
        // While a peer waits for a handshake, awake in time to hand it over.
        let wake = if lane.wants_handshakes() {
            WANTED_HAND_OVER
        } else {
            LANE_WAKE
        };
        if let Err(e) = poll.wait(Some(wake)) {
            if e.kind() != io::ErrorKind::Interrupted {
                error!("lane {index}: epoll failed: {e}; this lane stops");
                break;
            }
        }
        let now = clock.now();
        let current = shared.version.load(Ordering::Acquire);
        if current != version {
            version = current;
            let view = Arc::clone(&shared.view.lock().unwrap_or_else(PoisonError::into_inner));
            lane.set_view(view);
        }
        if !drain_queue(
            &mut queue,
            &mut lane,
            &mut buf,
            &mut superframe,
            now,
            &mut offload_errors,
            &mut trouble,
            index,
        ) {
            break;
        }
        lane.flush();
        // A peer that needs a handshake is handed over soon (the node starts it), not with
        // the next regular report up to a second later.
        let early = lane.wants_handshakes() && now >= handed_at + WANTED_HAND_OVER;
        lane.warn_again_if_due(now);
        if now >= report_at || early {
            report_at = now + REPORT_EVERY;
            handed_at = now;
            offload_errors_total += offload_errors;
            forwarded += hand_over(shared, &mut lane, std::mem::take(&mut offload_errors));
            if early {
                // The loop may sleep for up to a second: the handshakes should not wait.
                shared.wake_loop();
            }
        }
    }
    lane.flush();
    offload_errors_total += offload_errors;
    forwarded += hand_over(shared, &mut lane, offload_errors);

    debug!(
        "lane {index} stopped after {forwarded} frames from the device \
         ({offload_errors_total} tap reads that could not be cut into frames)"
    );
}

/// Tells the loop when a lane's thread ends other than by the stop flag (a failure, a panic):
/// the lane's number in `Shared::failed`, then a wake-up, so that the loop ends the daemon
/// (see [`Lanes::tend`]) at once rather than at its next wake-up.
struct EndGuard<'a> {
    index: usize,
    shared: &'a Shared,
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        if !self.shared.stop.load(Ordering::Acquire) {
            let _ = self.shared.failed.compare_exchange(
                0,
                self.index,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            self.shared.wake_loop();
        }
    }
}

/// Reads up to [`BUDGET`] frames (or super-frames) from the queue and forwards them. Returns
/// false when the queue failed for good.
// HOT PATH
#[allow(clippy::too_many_arguments)] // the lane's loop state, lent for one call
fn drain_queue(
    queue: &mut TapQueue,
    lane: &mut Lane<UdpSocket>,
    buf: &mut PacketBuf,
    superframe: &mut [u8],
    now: Instant,
    offload_errors: &mut u64,
    trouble: &mut Trouble,
    index: usize,
) -> bool {
    for i in 0..BUDGET {
        let with_vnet = !superframe.is_empty();
        let room = if with_vnet {
            &mut superframe[..]
        } else {
            buf.read_room()
        };
        match queue.read(room) {
            Ok(len) => {
                trouble.over();
                if with_vnet {
                    // Lanes always send complete checksums (their view does not carry the
                    // peers' partial-checksum flags). A read that filled the buffer is
                    // dropped (`whole_read`).
                    let result = whole_read(superframe, len).and_then(|packet| {
                        cut_superframe(packet, buf, false, |buf, frame_len| {
                            // A drop is counted and logged by the lane itself.
                            let _ = lane.on_frame(now, buf, frame_len);
                        })
                    });
                    if let Err(e) = result {
                        *offload_errors += 1;
                        debug!("lane {index}: dropped a {len}-byte read from the tap: {e}");
                    }
                } else {
                    let _ = lane.on_frame(now, buf, len);
                }
                if i == 0 || lane.socket().queued() >= FLUSH_AT {
                    lane.flush();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_transient(&e) => {
                trouble.failed("a lane's tap read", &e);
                break;
            }
            Err(e) if is_dropped_frame(&e) => {
                *offload_errors += 1;
                note_dropped_frame("a lane's tap read", &e);
            }
            Err(e) => {
                error!("lane {index}: tap read failed: {e}; this lane stops");
                return false;
            }
        }
    }
    true
}

/// Hands what the lane counted (and its `offload_errors`) to the loop's thread; returns how
/// many frames from the device that was.
fn hand_over(shared: &Shared, lane: &mut Lane<UdpSocket>, offload_errors: u64) -> u64 {
    let counts = lane.take_counts();
    let frames = counts.stats.frames_from_device;
    let mut pending = shared.counts.lock().unwrap_or_else(PoisonError::into_inner);
    push_counts(&mut pending, counts, offload_errors);
    frames
}

/// Adds one hand-over to those waiting. A loop that does not take them (held up in a read of
/// a file system that hangs) must not make them pile up: past [`MAX_PENDING_HANDOVERS`] they
/// are merged into the last one.
fn push_counts(pending: &mut Vec<(LaneCounts, u64)>, counts: LaneCounts, offload_errors: u64) {
    let full = pending.len() >= MAX_PENDING_HANDOVERS;
    match pending.last_mut() {
        Some((last, errors)) if full => {
            last.merge(counts);
            *errors = errors.saturating_add(offload_errors);
        }
        _ => pending.push((counts, offload_errors)),
    }
}

/// The most hand-overs waiting for the loop's thread (the lanes hand over about once a
/// second each, and at most every 20 ms with per-node keys wanting handshakes).
const MAX_PENDING_HANDOVERS: usize = 64;

#[cfg(test)]
mod tests {
    use std::time::Instant as StdInstant;

    use super::*;
    use crate::wire::Token;

    /// Hand-overs the loop does not take stay at most [`MAX_PENDING_HANDOVERS`], and nothing
    /// counted is lost: a thousand of them, each with a frame, a datagram to one of two peers
    /// and a wanted peer, sum up as they were.
    #[test]
    fn hand_overs_the_loop_does_not_take_are_merged_not_piled_up() {
        let (p, q): (std::net::SocketAddr, std::net::SocketAddr) = (
            "198.18.0.2:3210".parse().unwrap(),
            "198.18.0.3:3210".parse().unwrap(),
        );
        let mut pending = Vec::new();
        for i in 0..1000u64 {
            let peer = if i % 2 == 0 { p } else { q };
            let mut counts = LaneCounts::default();
            counts.stats.frames_from_device = 1;
            counts.sent = vec![(peer, 1, 100)];
            counts.no_session = 2;
            counts.wanted = vec![peer];
            push_counts(&mut pending, counts, 3);
        }
        assert_eq!(pending.len(), MAX_PENDING_HANDOVERS);
        let frames: u64 = pending
            .iter()
            .map(|(c, _)| c.stats.frames_from_device)
            .sum();
        let errors: u64 = pending.iter().map(|(_, e)| e).sum();
        let no_session: u64 = pending.iter().map(|(c, _)| c.no_session).sum();
        let sent: u64 = pending.iter().flat_map(|(c, _)| &c.sent).map(|s| s.1).sum();
        let bytes: u64 = pending.iter().flat_map(|(c, _)| &c.sent).map(|s| s.2).sum();
        assert_eq!(
            (frames, errors, no_session, sent, bytes),
            (1000, 3000, 2000, 1000, 100_000)
        );
        let (last, _) = pending.last().unwrap();
        assert_eq!(last.sent.len(), 2, "per peer, not per hand-over");
        assert_eq!(last.wanted.len(), 2);
    }

    /// `Lanes` over the given threads, as `Lanes::start` would hold them.
    fn lanes(shared: Arc<Shared>, threads: Vec<JoinHandle<()>>) -> Lanes {
        Lanes {
            shared,
            threads,
            published: 0,
            published_at: Instant::ZERO,
            offload_errors: 0,
            absorbing: Vec::new(),
        }
    }

    fn shared() -> Arc<Shared> {
        let token = Token::new(7).expect("a valid token");
        Arc::new(Shared {
            view: Mutex::new(Arc::new(ForwardView::empty(token))),
            version: AtomicU64::new(0),
            counts: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            wake: None,
            failed: AtomicUsize::new(0),
        })
    }

    /// A thread that runs until the stop flag is set, as a lane does.
    fn running(shared: &Arc<Shared>) -> JoinHandle<()> {
        let shared = Arc::clone(shared);
        std::thread::spawn(move || {
            let deadline = StdInstant::now() + Duration::from_secs(30);
            while !shared.stop.load(Ordering::Acquire) && StdInstant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    }

    #[test]
    fn a_lane_that_ended_is_named_and_ends_the_daemon() {
        let shared = shared();
        let first = running(&shared);
        let second = std::thread::spawn(|| {});
        let mut lanes = lanes(Arc::clone(&shared), vec![first, second]);
        let deadline = StdInstant::now() + Duration::from_secs(10);
        while lanes.ended().is_none() && StdInstant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(lanes.ended(), Some(2), "the second lane (queue 2) ended");
        let err = Error::LaneEnded { index: 2 };
        assert_eq!(
            err.to_string(),
            "--threads lane 2 stopped (see the error before); stopping, because the flows \
             on its tap queue would be lost"
        );
        assert!(!err.is_usage());
        // Stopping sets the flag and joins the lane still running.
        lanes.join();
        assert!(lanes.threads.is_empty());
    }

    #[test]
    fn a_lane_that_fails_says_so_and_wakes_the_loop_before_its_thread_is_gone() {
        let token = Token::new(7).expect("a valid token");
        let signalled = Arc::new(Shared {
            view: Mutex::new(Arc::new(ForwardView::empty(token))),
            version: AtomicU64::new(0),
            counts: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            wake: Some(Wake::new().expect("an eventfd")),
            failed: AtomicUsize::new(0),
        });
        // A lane thread that fails (or panics) and is still winding down: `ended` names it
        // already, and the flag is set for the loop's epoll.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let lane = {
            let signalled = Arc::clone(&signalled);
            std::thread::spawn(move || {
                drop(EndGuard {
                    index: 2,
                    shared: &signalled,
                });
                let _ = wait.recv_timeout(Duration::from_secs(30));
            })
        };
        let mut lanes = lanes(Arc::clone(&signalled), vec![running(&signalled), lane]);
        let deadline = StdInstant::now() + Duration::from_secs(10);
        while lanes.ended().is_none() && StdInstant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(lanes.ended(), Some(2));
        assert!(
            !lanes.threads[1].is_finished(),
            "named before its thread ended"
        );
        let wake = signalled.wake.as_ref().expect("a wake flag");
        assert!(wake.clear().expect("clear"), "the loop was woken");
        assert!(lanes.clear_wake().is_ok());
        release.send(()).expect("the lane waits");
        lanes.join();
        // A lane that ends at the stop says nothing.
        let quiet = shared();
        quiet.stop.store(true, Ordering::Release);
        drop(EndGuard {
            index: 1,
            shared: &quiet,
        });
        assert_eq!(quiet.failed.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_view_is_due_soon_after_a_change_and_a_second_after_the_last_without_one() {
        let at = Instant::from_secs(5);
        assert_eq!(publish_at(true, at), at + PUBLISH_MIN_GAP);
        // Also with nothing changed: the loop wakes for it, or its housekeeping could leave
        // the lanes' expiries two seconds old.
        assert_eq!(publish_at(false, at), at + PUBLISH_EVERY);
        assert!(PUBLISH_EVERY < crate::lane::VIEW_LAG);
    }

    #[test]
    fn lanes_that_run_are_not_reported() {
        let shared = shared();
        let mut lanes = lanes(
            Arc::clone(&shared),
            vec![running(&shared), running(&shared)],
        );
        assert_eq!(lanes.ended(), None);
        lanes.join();
    }
}
