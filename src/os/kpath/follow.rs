//! Following the host's firewall: which peers the kernel path holds back, and when.
//!
//! The programs run before netfilter, so the firewall sees only what goes through the
//! daemon. To keep a rule that blocks a peer from being bypassed for long, the kernel path
//! serves a peer only while datagrams from it come through the firewall to the daemon and
//! datagrams to it are let out:
//!
//! - every [`HEARTBEAT`] the daemon sends each of the node's verified IPv4 peers a heartbeat,
//!   an empty peer list (the seed's message, which asks for no answer), through a raw socket,
//!   which netfilter's OUTPUT chain sees as it sees the daemon's own datagrams: a refusal
//!   (`EPERM`) holds the peer back at once, and the next heartbeat let out ends that. Every
//!   peer gets them, not only those known to run a kernel path, so that a peer which knows
//!   this node runs one (and checks that it hears from it) always hears it, whether or not
//!   this node has learnt the same of that peer. Each peer's heartbeats fall at a phase of
//!   the period of their own, so that they do not all leave at once, and one the kernel could
//!   not take (`EAGAIN`, ...) is tried again a second later. A peer not heard from for
//!   [`SILENT`] gets none until it is heard again;
//! - a peer known to run a kernel path (it marked itself, or sent frames through one) that
//!   the daemon has heard nothing from through its socket for [`QUIET`] (four heartbeats
//!   lost, or dropped by the INPUT chain) is held back until it is heard again. Let go, it is
//!   no longer taken to run a kernel path until it shows it again (a node restarted without
//!   one, whose keepalives come a minute apart, is held back once, not every minute).
//!
//! A peer held back is taken out of the peer map, so both directions of its frames go
//! through the daemon's socket, and the firewall, until neither reason holds. Owns that state
//! and its decisions, on the node's clock; it sends nothing and touches no map (`super`
//! does).

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use crate::time::Instant;

use super::PeerKey;

/// How often each peer is sent a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a peer known to run a kernel path may go unheard before it is held back.
pub const QUIET: Duration = Duration::from_secs(20);
/// When a heartbeat the kernel could not take (not a refusal) is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// A peer not heard from for this long is sent no heartbeats until it is heard again: an
/// address verified by forged datagrams (the clear token is no secret) must not become a
/// target of one datagram every 5 s for the peer timeout. A peer that checks that it hears
/// from this node sends heartbeats itself, and is heard every 5 s.
pub const SILENT: Duration = Duration::from_secs(40);

/// Why a peer is held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Nothing heard from it through the socket for [`QUIET`].
    Quiet,
    /// The firewall refused the last heartbeat to it.
    Refused,
}

/// A verified IPv4 peer of the node.
#[derive(Clone, Copy, Debug)]
struct Entry {
    addr: SocketAddrV4,
    /// The address frames to it leave from (its heartbeats too), once known.
    source: Option<Ipv4Addr>,
    /// It runs a kernel path (marked itself, or sent frames through one): the quiet rule
    /// applies.
    kernel: bool,
    /// The last heartbeat to it was refused.
    refused: bool,
    /// Nothing heard from it for [`QUIET`].
    quiet: bool,
    /// Its hold was told at info (so is its release).
    told: bool,
    /// When its next heartbeat is due: a point of its phase.
    heartbeat_at: Instant,
    /// When a heartbeat the kernel could not take is tried again, if one is.
    retry_at: Option<Instant>,
}

impl Entry {
    fn is_held(&self) -> bool {
        self.refused || self.quiet
    }
}

/// What changed for one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Now held back, for this reason.
    Held(Held),
    /// Neither reason holds any more; `told`: its hold was told at info.
    Released {
        /// The hold was told at info (see [`Follow::told`]).
        told: bool,
    },
}

/// Where in the heartbeat period `key`'s heartbeats fall: spread by its bytes, the same for
/// it every time.
fn phase(key: &PeerKey) -> Duration {
    let mixed = key.iter().fold(0u64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    Duration::from_millis(mixed % period_ms())
}

fn period_ms() -> u64 {
    u64::try_from(HEARTBEAT.as_millis()).unwrap_or(5000)
}

/// The node's verified IPv4 peers, which of them run a kernel path, and which are held back.
#[derive(Debug, Default)]
pub struct Follow {
    peers: BTreeMap<PeerKey, Entry>,
}

impl Follow {
    /// The node's verified IPv4 peers are now `view`: new ones are added (their first
    /// heartbeat at their phase from `now`), gone ones forgotten.
    pub fn sync_view(&mut self, now: Instant, view: &BTreeMap<PeerKey, SocketAddrV4>) {
        self.peers.retain(|key, _| view.contains_key(key));
        for (key, &addr) in view {
            self.peers.entry(*key).or_insert(Entry {
                addr,
                source: None,
                kernel: false,
                refused: false,
                quiet: false,
                told: false,
                heartbeat_at: now + phase(key),
                retry_at: None,
            });
        }
    }

    /// The peer `key`'s frames leave from `source`; with `kernel`, it runs a kernel path (it
    /// marked itself, or sent frames through one).
    pub fn note(&mut self, key: &PeerKey, source: Ipv4Addr, kernel: bool) {
        if let Some(entry) = self.peers.get_mut(key) {
            entry.source = Some(source);
            entry.kernel |= kernel;
        }
    }

    /// Forgets `key` (a peer removed and added again): the next [`Follow::sync_view`] takes
    /// it as new.
    pub fn forget(&mut self, key: &PeerKey) {
        self.peers.remove(key);
    }

    /// The hold of `key` was told at info (its release will be too).
    pub fn told(&mut self, key: &PeerKey) {
        if let Some(entry) = self.peers.get_mut(key) {
            entry.told = true;
        }
    }

    /// Whether `key` is held back (and must stay out of the peer map).
    pub fn is_held(&self, key: &PeerKey) -> bool {
        self.peers.get(key).is_some_and(Entry::is_held)
    }

    /// The peers held back, with their address and why (refused first, if both).
    pub fn held(&self) -> impl Iterator<Item = (SocketAddrV4, Held)> + '_ {
        self.peers.values().filter_map(|p| {
            if p.refused {
                Some((p.addr, Held::Refused))
            } else if p.quiet {
                Some((p.addr, Held::Quiet))
            } else {
                None
            }
        })
    }

    /// Marks quiet each peer known to run a kernel path not heard from within [`QUIET`]
    /// before `now` (by `last_heard`, the node's time of the last datagram from it through
    /// the socket), and not quiet those heard since; returns the peers held back or let go by
    /// that.
    pub fn check_quiet(
        &mut self,
        now: Instant,
        last_heard: impl Fn(SocketAddrV4) -> Option<Instant>,
    ) -> Vec<(PeerKey, SocketAddrV4, Change)> {
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            // (A peer the node no longer has is not quiet: it is gone, and goes from here
            // with the next view.)
            let quiet = peer.kernel
                && last_heard(peer.addr)
                    .is_some_and(|at| now.saturating_duration_since(at) > QUIET);
            if quiet == peer.quiet {
                continue;
            }
            let was_held = peer.is_held();
            peer.quiet = quiet;
            if let Some(change) = Self::change(peer, was_held, Held::Quiet) {
                out.push((*key, peer.addr, change));
            }
        }
        out
    }

    /// What `peer`'s hold did, now that one of its reasons moved (`why`, if it is now held):
    /// let go, it is no longer taken to run a kernel path until it shows it again.
    fn change(peer: &mut Entry, was_held: bool, why: Held) -> Option<Change> {
        match (was_held, peer.is_held()) {
            (false, true) => Some(Change::Held(why)),
            (true, false) => {
                let told = std::mem::take(&mut peer.told);
                peer.kernel = false;
                Some(Change::Released { told })
            }
            _ => None,
        }
    }

    /// The peers whose heartbeat is due at `now`, as (key, address, source address if known);
    /// each is due again at its next point of its phase. Skipped this time: a peer not heard
    /// from (by `last_heard`) within [`SILENT`], and with `needs_source` (the heartbeats
    /// carry a checksum, which covers the source address) one whose source is not known yet.
    pub fn heartbeats(
        &mut self,
        now: Instant,
        needs_source: bool,
        last_heard: impl Fn(SocketAddrV4) -> Option<Instant>,
    ) -> Vec<(PeerKey, SocketAddrV4, Option<Ipv4Addr>)> {
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            let retry = peer.retry_at.is_some_and(|at| at <= now);
            if peer.heartbeat_at > now && !retry {
                continue;
            }
            peer.retry_at = None;
            if peer.heartbeat_at <= now {
                // The next point of its phase after `now` (a late pass may have left it
                // behind): the phases keep apart.
                let behind = now.saturating_duration_since(peer.heartbeat_at).as_millis();
                let periods = u64::try_from(behind).unwrap_or(u64::MAX) / period_ms() + 1;
                let ahead = periods.saturating_mul(period_ms());
                peer.heartbeat_at += Duration::from_millis(ahead);
            }
            let heard =
                last_heard(peer.addr).is_some_and(|at| now.saturating_duration_since(at) <= SILENT);
            if heard && (!needs_source || peer.source.is_some()) {
                out.push((*key, peer.addr, peer.source));
            }
        }
        out
    }

    /// What sending a heartbeat to `key` at `now` gave: a refusal by the firewall (`EPERM`)
    /// holds it back, a heartbeat let out ends that; another error (the kernel could not
    /// take it now) changes nothing, and it is tried again a second later.
    pub fn sent(&mut self, now: Instant, key: &PeerKey, result: &io::Result<()>) -> Option<Change> {
        let peer = self.peers.get_mut(key)?;
        let refused = match result {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => true,
            Err(_) => {
                peer.retry_at = Some(now + RETRY);
                return None;
            }
        };
        if refused == peer.refused {
            return None;
        }
        let was_held = peer.is_held();
        peer.refused = refused;
        Self::change(peer, was_held, Held::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: PeerKey = [198, 18, 0, 2, 0x0c, 0x8a, 0, 0];

    /// Every peer heard from just now (whatever the time asked about).
    fn heard(_: SocketAddrV4) -> Option<Instant> {
        Some(Instant::from_secs(1 << 40))
    }

    fn addr() -> SocketAddrV4 {
        "198.18.0.2:3210".parse().unwrap()
    }

    /// A Follow with the one peer KEY, added at `now`; `kernel`: known to run a kernel path.
    fn follow(now: Instant, kernel: bool) -> Follow {
        let mut f = Follow::default();
        f.sync_view(now, &BTreeMap::from([(KEY, addr())]));
        f.note(&KEY, Ipv4Addr::new(198, 18, 0, 1), kernel);
        f
    }

    #[test]
    fn a_kernel_peer_unheard_for_longer_than_quiet_is_held_until_heard_again() {
        let mut f = follow(Instant::ZERO, true);
        let heard_at = Instant::from_secs(100);
        let at = |s: u64| Instant::from_secs(s);
        // 20 s after the last datagram: still served; 21 s: held.
        assert!(f.check_quiet(at(120), |_| Some(heard_at)).is_empty());
        assert!(!f.is_held(&KEY));
        assert_eq!(
            f.check_quiet(at(121), |_| Some(heard_at)),
            [(KEY, addr(), Change::Held(Held::Quiet))]
        );
        assert!(f.is_held(&KEY));
        f.told(&KEY);
        // Told once only.
        assert!(f.check_quiet(at(122), |_| Some(heard_at)).is_empty());
        // Heard again: let go (told, as its hold was).
        assert_eq!(
            f.check_quiet(at(130), |_| Some(at(129))),
            [(KEY, addr(), Change::Released { told: true })]
        );
        assert!(!f.is_held(&KEY));
        // Let go, it is no longer taken to run a kernel path: quiet again, it is not held
        // (a node restarted without one) until it shows one again.
        assert!(f.check_quiet(at(200), |_| Some(at(129))).is_empty());
        f.note(&KEY, Ipv4Addr::new(198, 18, 0, 1), true);
        assert_eq!(f.check_quiet(at(200), |_| Some(at(129))).len(), 1);
        // A peer the node no longer has (a Close, say) is not quiet: it is gone, not
        // blocked, and no hold is told for it.
        let mut f = follow(Instant::ZERO, true);
        assert!(f.check_quiet(at(500), |_| None).is_empty());
    }

    #[test]
    fn a_peer_not_known_to_run_a_kernel_path_is_never_held_for_quiet() {
        let mut f = follow(Instant::ZERO, false);
        assert!(f.check_quiet(Instant::from_secs(1000), |_| None).is_empty());
        assert!(!f.is_held(&KEY));
        // But it is sent heartbeats.
        assert_eq!(f.heartbeats(Instant::from_secs(10), false, heard).len(), 1);
    }

    #[test]
    fn a_refused_heartbeat_holds_the_peer_and_one_let_out_lets_it_go() {
        let t = Instant::from_secs(10);
        let mut f = follow(t, true);
        // The first heartbeat at the peer's phase, within the period; then every 5 s.
        let first = t + phase(&KEY);
        assert!(phase(&KEY) < HEARTBEAT);
        assert!(first == t || f.heartbeats(t, false, heard).is_empty());
        assert_eq!(f.heartbeats(first, false, heard).len(), 1);
        assert!(f
            .heartbeats(first + Duration::from_secs(4), false, heard)
            .is_empty());
        assert_eq!(f.heartbeats(first + HEARTBEAT, false, heard).len(), 1);
        let now = first + HEARTBEAT;
        let refused = Err(io::Error::from_raw_os_error(libc::EPERM));
        let full = Err(io::Error::from_raw_os_error(libc::EAGAIN));
        // Not taken now: no hold, and tried again a second later, off its phase once.
        assert_eq!(f.sent(now, &KEY, &full), None);
        assert!(!f.is_held(&KEY));
        assert!(f
            .heartbeats(now + Duration::from_millis(500), false, heard)
            .is_empty());
        assert_eq!(f.heartbeats(now + RETRY, false, heard).len(), 1);
        assert!(f
            .heartbeats(now + Duration::from_millis(4999), false, heard)
            .is_empty());
        assert_eq!(f.heartbeats(now + HEARTBEAT, false, heard).len(), 1);
        assert_eq!(
            f.sent(now, &KEY, &refused),
            Some(Change::Held(Held::Refused))
        );
        assert_eq!(f.sent(now, &KEY, &refused), None);
        assert!(f.is_held(&KEY));
        // Heard from (the INPUT chain lets it in) does not let it go: only sending does.
        assert!(f.check_quiet(now, |_| Some(now)).is_empty());
        assert!(f.is_held(&KEY));
        assert_eq!(
            f.sent(now, &KEY, &Ok(())),
            Some(Change::Released { told: false })
        );
        assert!(!f.is_held(&KEY));
        // A peer no longer in the view is sent nothing.
        f.sync_view(now, &BTreeMap::new());
        assert!(f
            .heartbeats(Instant::from_secs(1000), false, heard)
            .is_empty());
    }

    #[test]
    fn held_for_both_reasons_it_is_let_go_only_when_neither_holds() {
        let now = Instant::from_secs(100);
        let mut f = follow(now, true);
        let refused = Err(io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(
            f.sent(now, &KEY, &refused),
            Some(Change::Held(Held::Refused))
        );
        // Quiet too: no second hold line.
        let later = now + QUIET + Duration::from_secs(1);
        assert!(f.check_quiet(later, |_| Some(now)).is_empty());
        // Let out again, but still quiet: still held.
        assert_eq!(f.sent(later, &KEY, &Ok(())), None);
        assert!(f.is_held(&KEY));
        // Heard: let go.
        assert_eq!(
            f.check_quiet(later, |_| Some(later)),
            [(KEY, addr(), Change::Released { told: false })]
        );
    }

    #[test]
    fn without_a_known_source_a_checksummed_heartbeat_waits() {
        let mut f = Follow::default();
        f.sync_view(Instant::ZERO, &BTreeMap::from([(KEY, addr())]));
        let t = Instant::from_secs(10);
        assert!(f.heartbeats(t, true, heard).is_empty());
        assert_eq!(
            f.heartbeats(t + HEARTBEAT, false, heard),
            [(KEY, addr(), None)]
        );
    }

    #[test]
    fn heartbeats_of_many_peers_spread_over_the_period_and_stay_spread() {
        let mut f = Follow::default();
        let t = Instant::from_secs(10);
        let view: BTreeMap<PeerKey, SocketAddrV4> = (0..=255u8)
            .map(|i| {
                let key = [198, 18, 1, i, 0x0c, 0x8a, 0, 0];
                (key, SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, i), 3210))
            })
            .collect();
        f.sync_view(t, &view);
        // Passes 0.9 to 1.4 s apart, for about an hour: no pass of the last twenty sends
        // more than its share of the period and a margin (a pass d seconds after the last
        // one: 256 d / 5 peers), nor fewer.
        let mut now = t;
        let mut last = Vec::new();
        for pass in 0..3000u64 {
            let gap = 900 + (pass * 397) % 500;
            now += Duration::from_millis(gap);
            let n = f.heartbeats(now, false, heard).len();
            last.push((gap, n));
        }
        for &(gap, n) in &last[last.len() - 20..] {
            let share = 256 * gap as usize / 5000;
            assert!(n <= share + 25 && n + 25 >= share, "{gap} ms: {n} peers");
        }
    }
}

#[cfg(test)]
mod silent_tests {
    use super::*;

    #[test]
    fn a_peer_unheard_for_longer_than_silent_gets_no_heartbeats_until_heard() {
        // An address verified by forged datagrams, then silent: heartbeats stop after
        // SILENT, for the rest of the peer timeout, and start again once it is heard.
        let key: PeerKey = [198, 18, 0, 9, 0x0c, 0x8a, 0, 0];
        let addr: SocketAddrV4 = "198.18.0.9:3210".parse().unwrap();
        let mut f = Follow::default();
        let t0 = Instant::from_secs(100);
        f.sync_view(t0, &BTreeMap::from([(key, addr)]));
        let mut sent = 0;
        let mut now = t0;
        for _ in 0..600 {
            now += Duration::from_secs(1);
            sent += f.heartbeats(now, false, |_| Some(t0)).len();
        }
        // 40 s of heartbeats, one every 5 s, then none for the remaining 560 s.
        assert!((7..=9).contains(&sent), "{sent} heartbeats in 10 minutes");
        now += Duration::from_secs(5);
        assert_eq!(f.heartbeats(now, false, |_| Some(now)).len(), 1);
    }
}
