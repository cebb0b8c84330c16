//! The event loop: one thread (plus the `--threads` lanes of `lanes.rs`, and a helper thread
//! that reads the tap's drop counter), one epoll set over the tap device, the UDP socket, a
//! timerfd, a signalfd, the control socket and the eventfd the lanes wake it with, driving a
//! [`Node`].
//!
//! Owns the clock the node runs on (elsewhere `std::time` is read only for a keyed session's
//! id, in `keyfiles`, to time the checksum at start-up, in `sys::cpu`, by the spin of
//! `--busy-poll`, and for the OS edges' own deadlines: the UDP queue's GSO pause, the control
//! socket, the stats writer's wait at a stop, the names resolved at start-up), the
//! packet buffer
//! (allocated once), the per-wake-up budget, and what signals mean: SIGINT/SIGTERM shut down
//! cleanly (the node sends `Close` to every peer), SIGUSR1 logs the counters and the status
//! (peers, MAC table), SIGHUP re-reads the key file in keyed mode and hands a changed key to
//! [`Node::rekey`] (key rotation), and with per-node keys re-reads the trust files and hands
//! them to [`Node::set_trusted`] (revocation). It does not touch packet contents: every frame
//! and datagram goes to the node, which counts and logs drops.
//!
//! Batching: datagrams come in with `recvmmsg` (and UDP GRO, if on: one message holds a run of
//! datagrams, cut here by their segment size); a tap opened with a vnet header hands out
//! super-frames, cut here into real frames by `offload::segment`. Sends are queued by the
//! socket and frames to the tap may be held for coalescing: [`Node::flush`] sends and writes
//! them after every receive batch, after every [`FLUSH_AT`] queued datagrams, and at the end
//! of each drain, before the loop sleeps again, so a lone frame is never held back.
//!
//! The parts: this file sets the loop up and runs it (passes, spin, bookkeeping); `drain.rs`
//! is the packet path (the socket and tap drains, super-frames cut into frames); `signals.rs`
//! handles the signals and the SIGHUP reloads; `lanes.rs` runs the `--threads` lanes and
//! hands them the node's views.
//!
//! Busy polling: after traffic the loop spins for `--busy-poll` ([`crate::spin`] decides how
//! each pass looks for work and when the spin ends). A spinning pass that finds nothing
//! yields and starts the next one at once, without the timer, housekeeping and service jobs,
//! which run after every pass that moved packets and every epoll pass.

use crate::kpath::KernelPath;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use log::{debug, info, warn};

use crate::buf::PacketBuf;

use crate::error::Error;
use crate::identity::{IdentityConfig, Seed};
use crate::keyfiles::NodeIdentity;
use crate::node::{Config, IdentitySetup, Node};
use crate::offload::vnet::VNET_HDR_LEN;
use crate::service::Service;
use crate::spin::{Idle, Pass, Spin};
use crate::status::LoopCounters;
use crate::sys::epoll::Poll;
use crate::sys::signal::SignalFd;
use crate::sys::tap::TapDevice;
use crate::sys::timer::Timer;
use crate::sys::udp::{RecvBatch, UdpSocket};
use crate::time::Instant;
use drain::Trouble;
use lanes::Lanes;

mod drain;
mod lanes;
mod signals;

/// Frames read from the tap per wake-up at most, so it cannot starve the socket (the fd stays
/// ready, so level-triggered epoll wakes us again for the rest); the socket's own budget is
/// [`SOCKET_BATCHES`] `recvmmsg` calls.
pub const BUDGET: usize = 64;

/// `recvmmsg` calls per wake-up at most (each up to
/// [`RECV_SLOTS`](crate::sys::udp::RECV_SLOTS) messages).
pub const SOCKET_BATCHES: usize = 4;

/// Queued datagrams at which the tap drain flushes without waiting for its end (a super-frame
/// is a few dozen datagrams: send them while the next one is read).
pub const FLUSH_AT: usize = 32;

/// Bytes of the tap read buffer with a vnet header: the header and a 64 KiB super-frame.
const SUPERFRAME_BUF_LEN: usize = VNET_HDR_LEN + (1 << 16) + 64;

/// The longest each send of the Close messages at exit waits for room in the socket buffer.
pub const LAST_SEND_WAIT: Duration = Duration::from_millis(100);

/// How often the kernel's drop counters of the socket and the tap are read for the status.
const KERNEL_COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// The longest the loop sleeps, whatever the node's deadline (a safety net; the node's own
/// deadline is never more than about a second away).
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

const TOKEN_DEVICE: u64 = 0;
const TOKEN_SOCKET: u64 = 1;
const TOKEN_TIMER: u64 = 2;
const TOKEN_SIGNAL: u64 = 3;
const TOKEN_CONTROL: u64 = 4;
const TOKEN_LANES: u64 = 5;

/// The clock as the core sees it: milliseconds since the daemon started, counting the time
/// the machine was suspended (`CLOCK_BOOTTIME`, as WireGuard's timers do). A session, a peer
/// or a relay route must not outlive its time in the world because the host slept: a peer
/// that ended our session on its own clock would drop all we send until our renewal.
///
/// The spinning passes time themselves with std's `Instant` (`CLOCK_MONOTONIC`, which stops
/// during a suspend) and take the core's time from it with [`Clock::at`]: that adds the time
/// spent asleep as of the last [`Clock::now`], which reads both clocks. So the core's time
/// never goes back, and catches up with a suspend at the next full pass.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: std::time::Instant,
    /// `CLOCK_BOOTTIME` at the start.
    boot_start: Duration,
    /// How long the machine was suspended since the start, as of the last `now` (never less).
    asleep: Duration,
}

impl Clock {
    /// Starts the clock at zero.
    pub fn start() -> Clock {
        Clock {
            boot_start: crate::sys::timer::boottime(),
            start: std::time::Instant::now(),
            asleep: Duration::ZERO,
        }
    }

    /// Milliseconds since [`Clock::start`], suspended time included.
    pub fn now(&mut self) -> Instant {
        // Boot time first: the monotonic reading is the later one, so a preemption between
        // the two makes the time asleep look shorter, never longer.
        let boot = crate::sys::timer::boottime().saturating_sub(self.boot_start);
        let mono = std::time::Instant::now();
        self.asleep = asleep(
            self.asleep,
            boot,
            mono.saturating_duration_since(self.start),
        );
        self.at(mono)
    }

    /// The core's time at `instant`, read from the std clock since the last [`Clock::now`]
    /// (milliseconds since [`Clock::start`], zero before it, plus the time asleep then).
    pub fn at(&self, instant: std::time::Instant) -> Instant {
        let since = instant.saturating_duration_since(self.start) + self.asleep;
        Instant::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The time the machine was suspended, from `boot` and `mono`, the time since the start on
/// the clock that counts it and on the one that does not; never less than `before`.
fn asleep(before: Duration, boot: Duration, mono: Duration) -> Duration {
    before.max(boot.saturating_sub(mono))
}

/// Why the loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGINT or SIGTERM arrived; `Close` was sent to every peer.
    Signal,
}

/// Counters of the loop itself (the node keeps its own [`crate::stats::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Receive errors on the UDP socket that were ignored: a lack of memory, or an ICMP error
    /// such as `ECONNREFUSED` (which the kernel reports to an unconnected socket such as ours
    /// only with `IP_RECVERR`, never set: kept for safety).
    pub socket_errors: u64,
    /// Super-frames from the tap that could not be segmented (or checksummed) and were dropped.
    pub offload_errors: u64,
    /// The UDP socket's kernel drop counter (receive buffer full), kept past its 32-bit wrap
    /// (`udp::Widened`).
    pub udp_receive_overflows: u64,
    /// The tap device's transmit drops (its queue to us full), as last read.
    pub tap_queue_drops: u64,
    /// Spins ended early because the scheduler preempted them for another task.
    pub busy_poll_yields: u64,
    /// Tap super-frames cut with their checksums left partial for the receiving peer.
    pub partial_checksum_superframes: u64,
    /// SIGHUPs whose key or trust files could not be read or used (nothing was changed).
    pub reloads_failed: u64,
    /// Yields right after writing a request or reply to the tap (`Spin::yield_after_writing`).
    pub busy_poll_write_yields: u64,
}

/// The keys the daemon is given besides the node's [`Config`], with where they came from, to
/// be read again on SIGHUP.
#[derive(Debug, Default)]
pub struct KeySources {
    /// The keyed mode's key file (`None` without keyed mode).
    pub key_file: Option<PathBuf>,
    /// Identity mode: renew sessions this often (`--rekey-after`; `None` for the default).
    pub rekey_after: Option<Duration>,
    /// The per-node identity as loaded at start-up, with its paths (`None` without per-node
    /// keys).
    pub identity: Option<NodeIdentity>,
}

/// How frames move besides the node's own forwarding.
#[derive(Debug, Default)]
pub struct Paths {
    /// `--busy-poll`: after traffic, keep polling for this long.
    pub busy_poll: Duration,
    /// `--kernel-path`: the maps and programs that carry frames to and from direct peers
    /// (`None` without it, or when the kernel refused it).
    pub kernel_path: Option<KernelPath>,
}

/// Builds a [`Node`] over `socket` and `device` and runs it until `signals` reports SIGINT or
/// SIGTERM, polling `service` (stats file, re-resolved names) after each wake-up. Create
/// `signals` as early as possible (it blocks the signals), so that a signal sent during
/// start-up is handled here instead of killing the process. `keys` holds the keyed mode's
/// key file, re-read on SIGHUP, and the per-node identity. The tap's other queues
/// ([`TapDevice::take_lanes`], `--threads`) get a lane each.
///
/// # Errors
///
/// [`Error::Epoll`], [`Error::Signal`] or [`Error::Timer`] if the loop cannot be set up or
/// waited on; [`Error::DeviceRead`] if the tap device fails for good (e.g. it was deleted);
/// [`Error::SocketRecv`] if the socket fails with anything but a transient or ICMP error;
/// [`Error::Lanes`] if a `--threads` lane cannot be started, [`Error::LaneEnded`] if one ends;
/// [`Error::Random`] if the kernel gives no random bytes (per-node keys, at start).
pub fn run(
    config: Config,
    socket: UdpSocket,
    device: TapDevice,
    signals: SignalFd,
    service: Service,
    paths: Paths,
    keys: KeySources,
) -> Result<Exit, Error> {
    let Paths {
        busy_poll,
        kernel_path,
    } = paths;
    let KeySources {
        key_file,
        identity,
        rekey_after,
    } = keys;
    let mut config = config;
    let mut clock = Clock::start();
    if let Some(identity) = &identity {
        // (The seed is on the heap: the moves below leave no copy of it on this stack.)
        let mut seed = Seed::default();
        crate::sys::random::fill(&mut seed.0[..]).map_err(Error::Random)?;
        let mut setup = IdentityConfig::new(clock.now(), wall_nanos(), seed);
        if let Some(rekey_after) = rekey_after {
            setup.rekey_after = rekey_after;
        }
        info!(
            "per-node keys: public key {}, {} trusted keys besides its own; sessions renewed \
             every {} s",
            identity.secret.public_key(),
            identity.peer_keys(),
            setup.rekey_after.as_secs()
        );
        config.identity = Some(IdentitySetup {
            secret: identity.secret.clone(),
            trusted: identity.trusted.clone(),
            config: setup,
        });
    }
    let mut socket = socket;
    socket.enable_batching();
    let mut device = device;
    let queues = device.take_lanes();
    let checksum = crate::sys::cpu::install_fast_checksum();
    info!(
        "offloads: tap {}; udp {}; checksum {checksum}",
        device.offloads(),
        socket.offloads()
    );
    let vnet_hdr_len = device.vnet_hdr_len();
    let superframe_len = if vnet_hdr_len > 0 {
        SUPERFRAME_BUF_LEN
    } else {
        0
    };
    let timer = Timer::new().map_err(Error::Timer)?;
    let poll = Poll::new().map_err(Error::Epoll)?;
    poll.register(device.as_fd(), TOKEN_DEVICE)
        .and_then(|()| poll.register(socket.as_fd(), TOKEN_SOCKET))
        .and_then(|()| poll.register(timer.as_fd(), TOKEN_TIMER))
        .and_then(|()| poll.register(signals.as_fd(), TOKEN_SIGNAL))
        .and_then(|()| match service.control_fd() {
            Some(fd) => poll.register(fd, TOKEN_CONTROL),
            None => Ok(()),
        })
        .map_err(Error::Epoll)?;

    let token = config.token;
    let mut node = Node::new(config, socket, device, clock.now());
    // Before the first datagram is opened (keyed mode caps its floor at this clock).
    node.set_wall_clock(clock.now(), wall_nanos());
    let lanes = Lanes::start(&node, queues, clock, vnet_hdr_len)?;
    if let Some(wake) = lanes.wake() {
        poll.register(wake.as_fd(), TOKEN_LANES)
            .map_err(Error::Epoll)?;
    }
    if lanes.len() > 0 {
        info!(
            "threads: {} (the loop and {} lanes, one tap queue each)",
            lanes.len() + 1,
            lanes.len()
        );
    }
    // (After the signals are blocked, so the thread has them blocked too.)
    let tap_drops = crate::sys::netdev::TapDropsReader::start(node.device().name())
        .map_err(|e| {
            warn!("cannot start a thread to read the tap's drop counter ({e}): reading it here");
        })
        .ok();
    Daemon {
        lanes,
        kernel_path,
        status_asked: false,
        node,
        poll,
        timer,
        signals,
        clock,
        buf: PacketBuf::new(),
        rx: RecvBatch::new(),
        superframe: vec![0u8; superframe_len].into_boxed_slice(),
        vnet_hdr_len,
        stats: LoopStats::default(),
        recv_trouble: Trouble::default(),
        read_trouble: Trouble::default(),
        spin: Spin::new(busy_poll, std::time::Instant::now()),
        kernel_counters_at: Instant::ZERO,
        tap_drops,
        udp_drops: crate::sys::udp::Widened::default(),
        armed_for: None,
        service,
        key_file,
        identity,
        token,
    }
    .run()
}

/// Everything the loop owns.
struct Daemon {
    node: Node<UdpSocket, TapDevice>,
    /// The `--threads` lanes (none by default).
    lanes: Lanes,
    /// `--kernel-path`: the maps and programs that carry frames to and from direct peers.
    kernel_path: Option<KernelPath>,
    /// A SIGUSR1 came: its lines are logged once this pass has taken what the lanes handed
    /// over, as `show`'s answer is (see `Daemon::log_on_request`).
    status_asked: bool,
    poll: Poll,
    timer: Timer,
    signals: SignalFd,
    clock: Clock,
    buf: PacketBuf,
    /// Receive slots for `recvmmsg`.
    rx: RecvBatch,
    /// Tap reads land here when the tap has a vnet header (empty otherwise).
    superframe: Box<[u8]>,
    /// Bytes of vnet header in front of each tap read (0 without offloads).
    vnet_hdr_len: usize,
    stats: LoopStats,
    /// Transient failures of the socket's receives and of the tap's reads (warned once each).
    recv_trouble: Trouble,
    read_trouble: Trouble,
    /// When the timer is set to fire, if it is armed.
    armed_for: Option<Instant>,
    /// The periodic jobs besides forwarding (stats file, re-resolved `--connect` names).
    service: Service,
    /// The busy-poll spin ([`crate::spin`]). After traffic, keep polling without sleeping
    /// for `--busy-poll`: the next packet of a conversation then finds the loop awake instead
    /// of paying a wake-up. A pass tries the socket and the tap directly (epoll only every
    /// [`SPIN_EPOLL_EVERY`](crate::spin::SPIN_EPOLL_EVERY) passes), and an empty pass yields
    /// the core: a task woken by our last packet (on a small machine, the very application
    /// waiting for it) then runs at once instead of waiting for the spin. A pass that wrote a
    /// few frames to the tap after a quiet pass yields right after the writes
    /// ([`Spin::yield_after_writing`]), not only at the next empty pass.
    ///
    /// The spin only pays while this processor has nothing else to do. `sched_yield` cannot
    /// be relied on to say so: it only yields to tasks of the same scheduling group, and a
    /// daemon started in its own session (its own autogroup) or in its own cgroup (a systemd
    /// service) is alone in its group, so there it yields to nobody and the spin holds the
    /// processor until the scheduler preempts it. So each empty pass also asks whether the
    /// thread was switched out since the last pass (a gap longer than
    /// [`PREEMPTED_GAP`](crate::spin::PREEMPTED_GAP) outside its own `sched_yield`, read from
    /// the clock): if so, another task wanted this processor and could not get it by our
    /// yield, the spin ends and the loop sleeps in epoll until the next packet, which starts a
    /// new spin. (A hold-off after such a spin, 10 ms without spinning, was measured and
    /// rejected: it doubled the ping-pong latency under load and bought no throughput; see
    /// docs/performance.md, issue #16.)
    spin: Spin,
    /// When the kernel's drop counters are read next.
    kernel_counters_at: Instant,
    /// The thread that reads the tap's drop counter (`None` if it could not be started: the
    /// counter is then read here).
    tap_drops: Option<crate::sys::netdev::TapDropsReader>,
    /// The socket's drop counter (32 bits in the kernel) as a running total.
    udp_drops: crate::sys::udp::Widened,
    /// The keyed mode's key file, re-read on SIGHUP.
    key_file: Option<PathBuf>,
    /// The network's token (salts a passphrase key).
    token: crate::wire::Token,
    /// The per-node identity and the paths it was read from (`--private-key`, `--trusted`):
    /// the trusted keys are read again on SIGHUP.
    identity: Option<NodeIdentity>,
}

impl Daemon {
    /// Runs the loop until a signal ends it. When it fails instead (the tap deleted, a lane
    /// ended, ...), the peers are still sent their Close messages, as at SIGTERM, so that
    /// they stop sending here at once rather than after the peer timeout (a send that fails
    /// too is only counted).
    fn run(mut self) -> Result<Exit, Error> {
        let result = self.serve();
        if result.is_err() {
            let now = self.clock.now();
            self.send_closes(now);
        }
        result
    }

    /// The end of the loop: stops the lanes (nothing is sent after the Close messages), then
    /// sends every peer its Close, each send waiting up to [`LAST_SEND_WAIT`] for room in a
    /// socket buffer that a flood may have filled.
    fn send_closes(&mut self, now: Instant) {
        self.lanes.stop(now, &mut self.node);
        // A SIGUSR1 read in the same batch as a SIGTERM (signalfd hands out the lower number
        // first: a SIGUSR1 pending with a SIGINT is not read at all) still gets its lines,
        // with the lanes' last counts in.
        if std::mem::take(&mut self.status_asked) {
            self.log_on_request(now);
        }
        if let Err(e) = self.node.socket().block_for_last_sends(LAST_SEND_WAIT) {
            debug!("cannot make the socket wait for room for the Close messages: {e}");
        }
        self.node.shutdown(now);
        // The Close messages are queued: send them before leaving.
        self.node.flush();
    }

    fn serve(&mut self) -> Result<Exit, Error> {
        let mut ready = [false; 6];
        // When the last pass ended (std clock): the next pass starts from it, so a spinning
        // pass reads the clock only after its reads and after its yield.
        let mut pass_end = std::time::Instant::now();
        loop {
            let pass = self.spin.begin_pass(pass_end);
            if pass == Pass::TryDirect {
                // Spinning: try both packet fds straight away (an empty try is one cheap
                // syscall each). A pass that finds nothing yields and goes on to the next
                // at once, without the bookkeeping: it queued nothing, and the epoll pass
                // every `SPIN_EPOLL_EVERY` sees the timer, signals and the control socket.
                let now = self.clock.at(pass_end);
                let from_socket = self.drain_socket_and_yield(now)?;
                let from_device = self.drain_device(now)?;
                pass_end = std::time::Instant::now();
                if from_socket || from_device {
                    self.spin.traffic(pass_end);
                    self.after_pass(now, false, false)?;
                    pass_end = std::time::Instant::now();
                    self.spin.own_work_done(pass_end);
                } else {
                    pass_end = self.idle_spin_pass(pass_end);
                }
                continue;
            }

            let now = self.clock.now();
            // Re-arm only when the timer would fire too late (or already fired): saves a
            // syscall per wake-up under load. Firing early is harmless.
            let mut target = self.node.next_deadline().min(now + MAX_SLEEP);
            if let Some(publish) = self.lanes.publish_due(&self.node) {
                target = target.min(publish);
            }
            if let Some(kernel_path) = &self.kernel_path {
                target = target.min(kernel_path.due(&self.node));
            }
            if self
                .armed_for
                .is_none_or(|armed| target < armed || armed <= now)
            {
                let sleep = target.saturating_duration_since(now);
                self.timer.arm(sleep).map_err(Error::Timer)?;
                self.armed_for = Some(target);
            }

            ready.fill(false);
            let timeout = (pass == Pass::PollNow).then_some(Duration::ZERO);
            for token in self.poll.wait(timeout).map_err(Error::Epoll)? {
                if let Some(flag) = usize::try_from(token).ok().and_then(|i| ready.get_mut(i)) {
                    *flag = true;
                }
            }
            // (`ready` is indexed by token: device, socket, timer, signal, control, lanes.)
            let [device, socket, timer, signal, control, lanes] = ready;
            if lanes {
                // What they handed over is taken by `after_pass` below.
                self.lanes.clear_wake()?;
            }

            let now = self.clock.now();
            if signal {
                if let Some(exit) = self.on_signals(now)? {
                    return Ok(exit);
                }
            }
            let mut traffic = false;
            if socket {
                traffic |= self.drain_socket_and_yield(now)?;
            }
            if device {
                traffic |= self.drain_device(now)?;
            }
            pass_end = std::time::Instant::now();
            if traffic {
                self.spin.traffic(pass_end);
            } else if pass == Pass::PollNow {
                pass_end = self.idle_spin_pass(pass_end);
            }
            self.after_pass(now, timer, control)?;
            if pass == Pass::PollNow || traffic {
                pass_end = std::time::Instant::now();
                self.spin.own_work_done(pass_end);
            }
        }
    }

    /// The end of a pass that moved packets or asked epoll: the timer, the node's
    /// housekeeping, the kernel's counters, the service jobs and `ethcloud show` clients,
    /// then whatever is still queued or held goes out before the loop sleeps.
    fn after_pass(&mut self, now: Instant, timer: bool, control: bool) -> Result<(), Error> {
        if timer {
            self.timer.clear().map_err(Error::Timer)?;
        }
        if now >= self.node.next_deadline() {
            self.node.housekeep(now);
        }
        self.lanes.tend(now, &mut self.node)?;
        if let Some(kernel_path) = &mut self.kernel_path {
            kernel_path.tend(now, &mut self.node);
        }
        if std::mem::take(&mut self.status_asked) {
            self.log_on_request(now);
        }
        if now >= self.kernel_counters_at {
            self.kernel_counters_at = now + KERNEL_COUNTERS_EVERY;
            self.read_kernel_counters();
            // Handshake timestamps follow the wall clock, should it be set while we run.
            self.node.set_wall_clock(now, wall_nanos());
            // Per-node keys: fresh random bytes for the node's generator of ephemeral keys
            // each second, so that two copies of one process (a virtual machine's snapshot
            // restored twice) draw the same keys for a second at most, and a copy of the
            // generator's state tells nothing a second later (see `Node::reseed`).
            if self.identity.is_some() {
                // (A `Seed`: wiped when it goes.)
                let mut fresh = Seed::default();
                match crate::sys::random::fill(&mut fresh.0[..]) {
                    Ok(()) => self.node.reseed(&fresh.0),
                    Err(e) => warn!("cannot read random bytes to reseed the handshakes' keys: {e}"),
                }
            }
        }
        let counters = self.loop_counters();
        self.service.poll(now, &mut self.node, counters);
        // `ethcloud show` clients (never blocks).
        let wake = (&self.poll, TOKEN_CONTROL, control);
        let kernel_path = self.kernel_path.as_ref();
        self.service
            .serve_control(now, wake, &self.node, counters, || {
                kernel_path.map(KernelPath::peer_states).unwrap_or_default()
            });
        self.node.flush();
        Ok(())
    }

    /// [`Daemon::drain_socket`], then a yield if it wrote a few frames to the device
    /// ([`Spin::yield_after_writing`]: the application they woke runs now). Returns whether
    /// anything came.
    fn drain_socket_and_yield(&mut self, now: Instant) -> Result<bool, Error> {
        let drained = self.drain_socket(now)?;
        if self.spin.yield_after_writing(drained.written) {
            self.stats.busy_poll_write_yields = self.stats.busy_poll_write_yields.wrapping_add(1);
            std::thread::yield_now();
        }
        Ok(drained.traffic)
    }

    /// A spinning pass that found nothing, at `now`: yield and poll again, or, if the
    /// scheduler took this processor away since the last pass (see the `spin` field and
    /// [`crate::spin`]), let the spin end. Returns when the pass ended (after the yield).
    fn idle_spin_pass(&mut self, now: std::time::Instant) -> std::time::Instant {
        match self.spin.idle(now) {
            Idle::Yield => {
                // Hands the processor to a task of our own scheduling group, if one is runnable.
                std::thread::yield_now();
                let end = std::time::Instant::now();
                self.spin.yielded(end);
                end
            }
            Idle::Preempted => {
                self.stats.busy_poll_yields = self.stats.busy_poll_yields.saturating_add(1);
                now
            }
        }
    }

    /// Reads the kernel's drop counters of the socket and the tap, about once a second: a
    /// `getsockopt`, and the last value the tap's reader thread got (it asks rtnetlink, which
    /// may wait on the kernel's RTNL lock, or reads `/proc/net/dev`). A failure keeps the
    /// last value.
    fn read_kernel_counters(&mut self) {
        match self.node.socket().receive_drops() {
            Ok(drops) => self.stats.udp_receive_overflows = self.udp_drops.update(drops),
            Err(e) => debug!("cannot read the UDP socket's drop counter: {e}"),
        }
        match &self.tap_drops {
            Some(reader) => self.stats.tap_queue_drops = reader.latest(),
            None => match crate::sys::netdev::tx_dropped(self.node.device().name()) {
                Ok(drops) => self.stats.tap_queue_drops = drops,
                Err(e) => debug!("cannot read the tap's drop counter: {e}"),
            },
        }
    }

    /// The loop's own counters, for the status snapshot.
    fn loop_counters(&self) -> LoopCounters {
        let kernel = self
            .kernel_path
            .as_ref()
            .map(KernelPath::totals)
            .unwrap_or_default();
        LoopCounters {
            socket_errors: self.stats.socket_errors,
            offload_errors: self
                .stats
                .offload_errors
                .saturating_add(self.lanes.offload_errors()),
            udp_receive_overflows: self.stats.udp_receive_overflows,
            tap_queue_drops: self.stats.tap_queue_drops,
            busy_poll_yields: self.stats.busy_poll_yields,
            partial_checksum_superframes: self.stats.partial_checksum_superframes,
            busy_poll_write_yields: self.stats.busy_poll_write_yields,
            reloads_failed: self.stats.reloads_failed,
            kernel_path_sent: kernel.sent.0,
            kernel_path_bytes_sent: kernel.sent.1,
            kernel_path_received: kernel.received.0,
            kernel_path_bytes_received: kernel.received.1,
            kernel_path_map_errors: kernel.map_errors,
        }
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
fn wall_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_at_an_earlier_reading_is_its_millisecond_and_zero_before_the_start() {
        let clock = Clock::start();
        let later = clock.start + Duration::from_micros(12_345_678);
        assert_eq!(clock.at(later), Instant::from_millis(12_345));
        assert_eq!(clock.at(clock.start), Instant::ZERO);
        if let Some(before) = clock.start.checked_sub(Duration::from_secs(1)) {
            assert_eq!(clock.at(before), Instant::ZERO);
        }
    }

    /// A suspend of ten minutes moves the core's time ten minutes on, at the next full
    /// reading and at every spinning pass after it; a reading that looks like less time asleep
    /// (a preemption between the two reads) never takes any back.
    #[test]
    fn time_asleep_counts_and_never_goes_back() {
        let s = Duration::from_secs;
        assert_eq!(asleep(Duration::ZERO, s(5), s(5)), Duration::ZERO);
        let after_suspend = asleep(Duration::ZERO, s(605), s(5));
        assert_eq!(after_suspend, s(600));
        assert_eq!(
            asleep(after_suspend, s(606), s(6) + Duration::from_millis(3)),
            s(600)
        );
        assert_eq!(asleep(after_suspend, s(1206), s(6)), s(1200));
        let mut clock = Clock::start();
        clock.asleep = s(600);
        let later = clock.start + Duration::from_millis(1500);
        assert_eq!(clock.at(later), Instant::from_millis(601_500));
        assert!(clock.now() >= Instant::from_millis(600_000));
    }

    #[test]
    fn clock_starts_near_zero_and_never_goes_back() {
        let mut clock = Clock::start();
        let a = clock.now();
        let b = clock.now();
        assert!(a.as_millis() < 1000);
        assert!(b >= a);
    }
}
