//! The node's side of the `--threads` lanes ([`crate::lane`]): the snapshot they forward with
//! and taking back what they counted (and, with per-node keys, the handshakes they need). It must not be called per frame: a view is a copy of the
//! MAC table.

use std::net::SocketAddr;
use std::sync::Arc;

use super::Node;
use crate::io::{Device, Socket};
use crate::lane::{ForwardView, LaneCounts, PeerSealers};
use crate::time::Instant;

impl<S: Socket, D: Device> Node<S, D> {
    /// A snapshot for the `--threads` lanes ([`crate::lane`]). In the sealed modes the view
    /// shares the node's sealers (keyed: the one sealer; per-node keys: each peer's current
    /// session), so the lanes seal in the node's sessions with the counters the node uses
    /// too, and carries the active relay routes.
    pub fn forward_view(&self) -> ForwardView {
        let mut relays = Vec::new();
        self.relay
            .for_each_active(|addr, via| relays.push((addr, via)));
        let per_peer = self.sessions.as_ref().map(|sessions| {
            let mut sealers = Vec::new();
            sessions.for_each_sending(|addr, sealer, until| {
                sealers.push((addr, Arc::clone(sealer), until));
            });
            sealers.sort_unstable_by_key(|entry| entry.0);
            PeerSealers {
                sealers,
                max_messages: sessions.max_messages(),
            }
        });
        ForwardView {
            generation: self.forward_generation(),
            token: self.config.token,
            peers: self.peers.verified_addrs().collect(),
            macs: self.switch.view(),
            broadcast_limit: self.config.broadcast_limit,
            sealer: self.frame_sealer().map(Arc::clone),
            per_peer,
            relays,
        }
    }

    /// A number that moves whenever what [`Node::forward_view`] would show changes (a MAC
    /// entry added, moved or removed, a peer verified or removed, a relay route made or
    /// ended, the sealer replaced by a key rotation, a peer's session made, renewed or
    /// dropped). Refreshed MAC entries do not move it: their new expiry reaches the lanes
    /// with the next view taken anyway.
    pub fn forward_generation(&self) -> u64 {
        self.switch
            .changes()
            .wrapping_add(self.peers.verified_changes())
            .wrapping_add(self.relay.changes())
            .wrapping_add(self.sealer_changes)
            .wrapping_add(self.sessions.as_ref().map_or(0, |s| s.changes()))
    }

    /// Adds what a lane counted to the node's counters and to the peers' traffic; with
    /// per-node keys, starts the handshakes the lane found missing with peers still verified.
    pub fn absorb_lane(&mut self, now: Instant, counts: &LaneCounts) {
        self.absorb_lane_at_stop(now, counts);
        if let Some(sessions) = &mut self.sessions {
            // Only verified peers without a session now: a lane's view may be up to 20 ms
            // behind, and name one the node has removed since (timed out, or its key revoked),
            // where a handshake must not start (for an address no key is bound to, that would
            // be a round of probes), or one whose session was made since (a handshake would
            // replace it at once).
            for &peer in &counts.wanted {
                if self.peers.is_verified(peer) && !sessions.can_seal(now, peer) {
                    sessions.want(now, peer);
                }
            }
        }
        if !counts.wanted.is_empty() {
            self.flush_handshakes(now);
        }
    }

    /// Adds what the kernel path ([`crate::kpath`], an OS edge) moved for `peer` since it
    /// was last asked to the peer's traffic counters: `sent` and `received` are (packets,
    /// bytes), a super-frame counted once.
    pub fn count_kernel_path(&mut self, peer: SocketAddr, sent: (u64, u64), received: (u64, u64)) {
        self.peers.count_sent_many(peer, sent.0, sent.1);
        self.peers.count_received_many(peer, received.0, received.1);
    }

    /// When the node last received a valid datagram from `peer` through its socket, if it
    /// is a peer (the kernel path's frames do not count: see [`crate::kpath`]).
    pub fn last_heard(&self, peer: SocketAddr) -> Option<Instant> {
        self.peers.get(peer).map(|p| p.last_seen)
    }

    /// When `peer` became a peer, if it is one: a peer removed and added again (after its
    /// Close, say) has a new time.
    pub fn peer_added(&self, peer: SocketAddr) -> Option<Instant> {
        self.peers.get(peer).map(|p| p.added)
    }

    /// Asks `to` for its peer list now (the seed's Get peer list, which every node answers):
    /// the kernel path ([`crate::kpath`]) asks each peer it starts to serve, so that both
    /// ends' kernel paths learn of each other from the request and its answer.
    pub fn ask_peer_list(&mut self, to: SocketAddr) {
        self.send_control(to, crate::wire::Kind::GetPeers);
    }

    /// Sends `to` the seed's Close, and keeps it as a peer. A peer in the clear protocol
    /// removes this node at once and asks it again, so that it is a peer again a round trip
    /// later: the kernel path ([`crate::kpath`]) does this as it stands aside, so that
    /// peers whose kernel paths took this node for one that takes frames drop that mark.
    pub fn close_and_stay(&mut self, to: SocketAddr) {
        self.send_control(to, crate::wire::Kind::Close);
    }

    /// The kernel path ([`crate::kpath`]) put frames from `mac` behind `peer` into the tap:
    /// refreshes the untagged entry, as a frame through the daemon would, if it is still
    /// behind that verified peer. It never learns or moves an entry: what it read may be up
    /// to a sync old, and the node may have moved the MAC since (a move is seen through the
    /// daemon, where the kernel path hands such frames).
    pub fn seen_by_kernel_path(&mut self, now: Instant, peer: SocketAddr, mac: crate::wire::Mac) {
        let vlan = crate::wire::VlanId::UNTAGGED;
        if self.peers.is_verified(peer) && self.switch.lookup(now, vlan, mac) == Some(peer) {
            let _ = self.switch.learn_through(now, vlan, mac, peer, peer);
        }
    }

    /// The lanes' last counts at a stop: counted, but no handshake starts (its initiation
    /// would go out just before the Close, and leave the peer a session nobody completes).
    /// [`Node::absorb_lane`] counts through it too.
    pub fn absorb_lane_at_stop(&mut self, now: Instant, counts: &LaneCounts) {
        self.now = now;
        self.stats.add(&counts.stats);
        for &(peer, datagrams, bytes) in &counts.sent {
            self.peers.count_sent_many(peer, datagrams, bytes);
        }
        if let Some(sessions) = &mut self.sessions {
            sessions.count_no_session(counts.no_session);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use crate::status::test_io::{node_with_a_peer, PEER, PEER_MAC};
    use crate::time::Instant;
    use crate::wire::{Mac, VlanId};

    #[test]
    fn the_kernel_path_refreshes_entries_and_never_learns_or_moves_one() {
        let (mut node, _) = node_with_a_peer();
        let peer: SocketAddr = PEER.parse().unwrap();
        let other: SocketAddr = "198.18.0.9:3210".parse().unwrap();
        let vlan = VlanId::UNTAGGED;
        // Learnt at 0.2 s with the default 300 s timeout; refreshed at 250 s it lives on.
        let later = Instant::from_secs(250);
        node.seen_by_kernel_path(later, peer, Mac(PEER_MAC));
        let at = Instant::from_secs(400);
        assert_eq!(node.switch.lookup(at, vlan, Mac(PEER_MAC)), Some(peer));
        // A MAC the node does not have behind that peer is not learnt.
        let new = Mac([2, 0, 0, 0, 0, 0x42]);
        node.seen_by_kernel_path(later, peer, new);
        assert_eq!(node.switch.lookup(later, vlan, new), None);
        // Nor is an entry moved to another address.
        node.seen_by_kernel_path(later, other, Mac(PEER_MAC));
        assert_eq!(node.switch.lookup(later, vlan, Mac(PEER_MAC)), Some(peer));
    }
}
