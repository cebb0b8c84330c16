//! Following the host's firewall: which peers the kernel path holds back, and when.
//!
//! The programs run before netfilter, so the firewall sees only what goes through the
//! daemon. To keep a rule that blocks a peer from being bypassed for long, the kernel path
//! serves a peer only while datagrams from it come through the firewall to the daemon and
//! datagrams to it are let out:
//!
//! - every [`HEARTBEAT`] the daemon sends each peer known to run a kernel path an empty peer
//!   list (the seed's message, which asks for no answer) through a raw socket, which
//!   netfilter's OUTPUT chain sees as it sees the daemon's own datagrams: a refusal (`EPERM`)
//!   holds the peer back at once, and the next heartbeat let out ends that; each peer's
//!   heartbeats have a phase of their own within the period, so that they do not all leave
//!   at once, and one the kernel could not take (`EAGAIN`, ...) is tried again a second
//!   later;
//! - such a peer that the daemon has heard nothing from through its socket for [`QUIET`]
//!   (its own heartbeats, four of them, lost, or dropped by the INPUT chain) is held back
//!   until it is heard again.
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

/// How often each peer known to run a kernel path is sent a heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long a peer known to run a kernel path may go unheard before it is held back.
pub const QUIET: Duration = Duration::from_secs(20);
/// When a heartbeat the kernel could not take (not a refusal) is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Why a peer is held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Nothing heard from it through the socket for [`QUIET`].
    Quiet,
    /// The firewall refused the last heartbeat to it.
    Refused,
}

/// A peer known to run a kernel path.
#[derive(Clone, Copy, Debug)]
struct KernelPeer {
    addr: SocketAddrV4,
    /// The address frames to it leave from (the heartbeats too).
    source: Ipv4Addr,
    /// The last heartbeat to it was refused.
    refused: bool,
    /// Nothing heard from it for [`QUIET`].
    quiet: bool,
    /// When its next heartbeat is due.
    heartbeat_at: Instant,
}

impl KernelPeer {
    fn is_held(&self) -> bool {
        self.refused || self.quiet
    }
}

/// What changed for one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Now held back, for this reason.
    Held(Held),
    /// Neither reason holds any more.
    Released,
}

/// Where in the heartbeat period `key`'s heartbeats fall: spread by its bytes, the same for
/// it every time.
fn phase(key: &PeerKey) -> Duration {
    let mixed = key.iter().fold(0u64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let period = u64::try_from(HEARTBEAT.as_millis()).unwrap_or(5000);
    Duration::from_millis(mixed % period)
}

/// The peers known to run a kernel path, and which of them are held back.
#[derive(Debug, Default)]
pub struct Follow {
    peers: BTreeMap<PeerKey, KernelPeer>,
}

impl Follow {
    /// `key` (at `addr`, its frames leaving from `source`) runs a kernel path: it marked
    /// itself, or sent frames through one. Its first heartbeat goes at its phase.
    pub fn note(&mut self, now: Instant, key: PeerKey, addr: SocketAddrV4, source: Ipv4Addr) {
        let entry = self.peers.entry(key).or_insert(KernelPeer {
            addr,
            source,
            refused: false,
            quiet: false,
            heartbeat_at: now + phase(&key),
        });
        entry.addr = addr;
        entry.source = source;
    }

    /// Keeps only the peers for which `keep` holds (the node's IPv4 peers).
    pub fn retain(&mut self, keep: impl Fn(&PeerKey) -> bool) {
        self.peers.retain(|key, _| keep(key));
    }

    /// Whether `key` is held back (and must stay out of the peer map).
    pub fn is_held(&self, key: &PeerKey) -> bool {
        self.peers.get(key).is_some_and(KernelPeer::is_held)
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

    /// Marks quiet each peer not heard from within [`QUIET`] before `now` (by `last_heard`,
    /// the node's time of the last datagram from it through the socket), and not quiet those
    /// heard since; returns the peers held back or let go by that.
    pub fn check_quiet(
        &mut self,
        now: Instant,
        last_heard: impl Fn(SocketAddrV4) -> Option<Instant>,
    ) -> Vec<(PeerKey, SocketAddrV4, Change)> {
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            let quiet =
                last_heard(peer.addr).is_none_or(|at| now.saturating_duration_since(at) > QUIET);
            if quiet == peer.quiet {
                continue;
            }
            let was_held = peer.is_held();
            peer.quiet = quiet;
            match (was_held, peer.is_held()) {
                (false, true) => out.push((*key, peer.addr, Change::Held(Held::Quiet))),
                (true, false) => out.push((*key, peer.addr, Change::Released)),
                _ => {}
            }
        }
        out
    }

    /// The peers whose heartbeat is due at `now`, as (key, address, source address); each
    /// is due again [`HEARTBEAT`] later (see [`Follow::sent`]).
    pub fn heartbeats(&mut self, now: Instant) -> Vec<(PeerKey, SocketAddrV4, Ipv4Addr)> {
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            if peer.heartbeat_at <= now {
                peer.heartbeat_at = now + HEARTBEAT;
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
                peer.heartbeat_at = now + RETRY;
                return None;
            }
        };
        if refused == peer.refused {
            return None;
        }
        let was_held = peer.is_held();
        peer.refused = refused;
        match (was_held, peer.is_held()) {
            (false, true) => Some(Change::Held(Held::Refused)),
            (true, false) => Some(Change::Released),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: PeerKey = [198, 18, 0, 2, 0x0c, 0x8a, 0, 0];

    fn follow(now: Instant) -> (Follow, SocketAddrV4) {
        let addr: SocketAddrV4 = "198.18.0.2:3210".parse().unwrap();
        let mut f = Follow::default();
        f.note(now, KEY, addr, Ipv4Addr::new(198, 18, 0, 1));
        (f, addr)
    }

    #[test]
    fn a_peer_unheard_for_longer_than_quiet_is_held_until_heard_again() {
        let (mut f, addr) = follow(Instant::ZERO);
        let heard_at = Instant::from_secs(100);
        let at = |s: u64| Instant::from_secs(s);
        // 20 s after the last datagram: still served; 21 s: held.
        assert!(f.check_quiet(at(120), |_| Some(heard_at)).is_empty());
        assert!(!f.is_held(&KEY));
        assert_eq!(
            f.check_quiet(at(121), |_| Some(heard_at)),
            [(KEY, addr, Change::Held(Held::Quiet))]
        );
        assert!(f.is_held(&KEY));
        // Told once only.
        assert!(f.check_quiet(at(122), |_| Some(heard_at)).is_empty());
        // Heard again: let go.
        assert_eq!(
            f.check_quiet(at(130), |_| Some(at(129))),
            [(KEY, addr, Change::Released)]
        );
        assert!(!f.is_held(&KEY));
        // A peer the node no longer has is quiet.
        assert_eq!(f.check_quiet(at(131), |_| None).len(), 1);
    }

    #[test]
    fn a_refused_heartbeat_holds_the_peer_and_one_let_out_lets_it_go() {
        let t = Instant::from_secs(10);
        let (mut f, _) = follow(t);
        // The first heartbeat at the peer's phase, within the period; then every 5 s.
        let first = t + phase(&KEY);
        assert!(phase(&KEY) < HEARTBEAT);
        assert!(first == t || f.heartbeats(t).is_empty());
        assert_eq!(f.heartbeats(first).len(), 1);
        assert!(f.heartbeats(first + Duration::from_secs(4)).is_empty());
        assert_eq!(f.heartbeats(first + HEARTBEAT).len(), 1);
        let now = first + HEARTBEAT;
        let refused = Err(io::Error::from_raw_os_error(libc::EPERM));
        let full = Err(io::Error::from_raw_os_error(libc::EAGAIN));
        // Not taken now: no hold, and tried again a second later.
        assert_eq!(f.sent(now, &KEY, &full), None);
        assert!(!f.is_held(&KEY));
        assert!(f.heartbeats(now + Duration::from_millis(500)).is_empty());
        assert_eq!(f.heartbeats(now + RETRY).len(), 1);
        assert_eq!(
            f.sent(now, &KEY, &refused),
            Some(Change::Held(Held::Refused))
        );
        assert_eq!(f.sent(now, &KEY, &refused), None);
        assert!(f.is_held(&KEY));
        // Heard from (the INPUT chain lets it in) does not let it go: only sending does.
        assert!(f.check_quiet(now, |_| Some(now)).is_empty());
        assert!(f.is_held(&KEY));
        assert_eq!(f.sent(now, &KEY, &Ok(())), Some(Change::Released));
        assert!(!f.is_held(&KEY));
        // A peer no longer in the view is sent nothing.
        f.retain(|_| false);
        assert!(f.heartbeats(Instant::from_secs(1000)).is_empty());
    }

    #[test]
    fn held_for_both_reasons_it_is_let_go_only_when_neither_holds() {
        let now = Instant::from_secs(100);
        let (mut f, addr) = follow(now);
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
            [(KEY, addr, Change::Released)]
        );
    }

    #[test]
    fn heartbeats_of_many_peers_spread_over_the_period() {
        let mut f = Follow::default();
        let t = Instant::from_secs(10);
        for i in 0..=255u8 {
            let key = [198, 18, 1, i, 0x0c, 0x8a, 0, 0];
            let addr = SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, i), 3210);
            f.note(t, key, addr, Ipv4Addr::new(198, 18, 0, 1));
        }
        // In each second of the period, between a tenth and a third of them.
        let mut total = 0;
        for s in 0..5 {
            let n = f
                .heartbeats(t + Duration::from_millis(999 + 1000 * s))
                .len();
            assert!((25..=86).contains(&n), "second {s}: {n}");
            total += n;
        }
        assert_eq!(total, 256);
    }
}
