//! Following the host's firewall: which peers the kernel path holds back, and when.
//!
//! The programs run before netfilter, so the firewall sees only what goes through the
//! daemon. To keep a rule that blocks a peer from being bypassed for long, the kernel path
//! serves a peer only while datagrams from it come through the firewall to the daemon and
//! datagrams to it are let out:
//!
//! - every [`HEARTBEAT`] the daemon sends each peer known to run a kernel path a Get peer
//!   list (the seed's message) through a raw socket, which netfilter's OUTPUT chain sees as
//!   it sees the daemon's own datagrams: a refusal (`EPERM`) holds the peer back at once, and
//!   the next heartbeat let out lets it go again;
//! - such a peer that the daemon has heard nothing from through its socket for [`QUIET`]
//!   (four heartbeats and their answers lost, or refused by the INPUT chain) is held back
//!   until it is heard again.
//!
//! A peer held back is taken out of the peer map, so both directions of its frames go
//! through the daemon's socket, and the firewall, until it is let go. Owns that state and its
//! decisions, on the node's clock; it sends nothing and touches no map (`super` does).

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
    held: Option<Held>,
}

/// What changed for one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Now held back, for this reason.
    Held(Held),
    /// Let go again.
    Released,
}

/// The peers known to run a kernel path, and which of them are held back.
#[derive(Debug, Default)]
pub struct Follow {
    peers: BTreeMap<PeerKey, KernelPeer>,
    heartbeat_at: Instant,
}

impl Follow {
    /// `key` (at `addr`, its frames leaving from `source`) runs a kernel path: it marked
    /// itself, or sent frames through one.
    pub fn note(&mut self, key: PeerKey, addr: SocketAddrV4, source: Ipv4Addr) {
        let entry = self.peers.entry(key).or_insert(KernelPeer {
            addr,
            source,
            held: None,
        });
        entry.addr = addr;
        entry.source = source;
    }

    /// `key` is no longer a peer of the node.
    #[cfg(test)]
    pub fn forget(&mut self, key: &PeerKey) {
        self.peers.remove(key);
    }

    /// Keeps only the peers for which `keep` holds (the node's IPv4 peers).
    pub fn retain(&mut self, keep: impl Fn(&PeerKey) -> bool) {
        self.peers.retain(|key, _| keep(key));
    }

    /// Whether `key` is held back (and must stay out of the peer map).
    pub fn is_held(&self, key: &PeerKey) -> bool {
        self.peers.get(key).is_some_and(|p| p.held.is_some())
    }

    /// Holds back each peer not heard from within [`QUIET`] before `now` (by `last_heard`,
    /// the node's time of the last datagram from it through the socket), and lets go those
    /// held for that and heard since; returns what changed.
    pub fn check_quiet(
        &mut self,
        now: Instant,
        last_heard: impl Fn(SocketAddrV4) -> Option<Instant>,
    ) -> Vec<(PeerKey, SocketAddrV4, Change)> {
        let mut out = Vec::new();
        for (key, peer) in &mut self.peers {
            let quiet =
                last_heard(peer.addr).is_none_or(|at| now.saturating_duration_since(at) > QUIET);
            match (peer.held, quiet) {
                (None, true) => {
                    peer.held = Some(Held::Quiet);
                    out.push((*key, peer.addr, Change::Held(Held::Quiet)));
                }
                (Some(Held::Quiet), false) => {
                    peer.held = None;
                    out.push((*key, peer.addr, Change::Released));
                }
                _ => {}
            }
        }
        out
    }

    /// If a round of heartbeats is due at `now`: the peers to send one to, as (key, address,
    /// source address); the next round is then [`HEARTBEAT`] later.
    pub fn heartbeats(&mut self, now: Instant) -> Vec<(PeerKey, SocketAddrV4, Ipv4Addr)> {
        if now < self.heartbeat_at {
            return Vec::new();
        }
        self.heartbeat_at = now + HEARTBEAT;
        self.peers
            .iter()
            .map(|(key, p)| (*key, p.addr, p.source))
            .collect()
    }

    /// What sending a heartbeat to `key` gave: a refusal by the firewall (`EPERM`) holds it
    /// back, a heartbeat let out lets go one held for a refusal (another error changes
    /// nothing).
    pub fn sent(&mut self, key: &PeerKey, result: &io::Result<()>) -> Option<Change> {
        let peer = self.peers.get_mut(key)?;
        let refused = matches!(result, Err(e) if e.raw_os_error() == Some(libc::EPERM));
        match (peer.held, result.is_ok(), refused) {
            (held, _, true) if held != Some(Held::Refused) => {
                peer.held = Some(Held::Refused);
                Some(Change::Held(Held::Refused))
            }
            (Some(Held::Refused), true, _) => {
                peer.held = None;
                Some(Change::Released)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: PeerKey = [198, 18, 0, 2, 0x0c, 0x8a, 0, 0];

    fn follow() -> (Follow, SocketAddrV4) {
        let addr: SocketAddrV4 = "198.18.0.2:3210".parse().unwrap();
        let mut f = Follow::default();
        f.note(KEY, addr, Ipv4Addr::new(198, 18, 0, 1));
        (f, addr)
    }

    #[test]
    fn a_peer_unheard_for_longer_than_quiet_is_held_until_heard_again() {
        let (mut f, addr) = follow();
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
        let (mut f, _) = follow();
        let t = Instant::from_secs(10);
        assert_eq!(f.heartbeats(t).len(), 1);
        // The next round only 5 s later.
        assert!(f.heartbeats(t + Duration::from_secs(4)).is_empty());
        assert_eq!(f.heartbeats(t + HEARTBEAT).len(), 1);
        let refused = Err(io::Error::from_raw_os_error(libc::EPERM));
        let full = Err(io::Error::from_raw_os_error(libc::EAGAIN));
        assert_eq!(f.sent(&KEY, &full), None);
        assert!(!f.is_held(&KEY));
        assert_eq!(f.sent(&KEY, &refused), Some(Change::Held(Held::Refused)));
        assert_eq!(f.sent(&KEY, &refused), None);
        assert!(f.is_held(&KEY));
        // Heard from (the INPUT chain lets it in) does not let it go: only sending does.
        assert!(f
            .check_quiet(Instant::from_secs(20), |_| Some(Instant::from_secs(20)))
            .is_empty());
        assert!(f.is_held(&KEY));
        assert_eq!(f.sent(&KEY, &Ok(())), Some(Change::Released));
        assert!(!f.is_held(&KEY));
        // A forgotten peer is sent nothing.
        f.forget(&KEY);
        assert!(f.heartbeats(Instant::from_secs(100)).is_empty());
    }
}
