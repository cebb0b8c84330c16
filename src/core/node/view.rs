//! The node's side of the `--threads` lanes ([`crate::lane`]): the snapshot they forward with
//! and taking back what they counted. It must not be called per frame: a view is a copy of the
//! MAC table.

use std::sync::Arc;

use super::Node;
use crate::io::{Device, Socket};
use crate::lane::{ForwardView, LaneCounts};

impl<S: Socket, D: Device> Node<S, D> {
    /// A snapshot for the `--threads` lanes ([`crate::lane`]), or `None` with per-node keys
    /// (each peer's session seals its own frames, and sessions stay on the node's thread).
    /// In keyed mode the view shares the node's sealer (one session, one counter for all
    /// threads) and carries the active relay routes.
    pub fn forward_view(&self) -> Option<ForwardView> {
        if self.sessions.is_some() {
            return None;
        }
        let mut relays = Vec::new();
        self.relay
            .for_each_active(|addr, via| relays.push((addr, via)));
        Some(ForwardView {
            generation: self.forward_generation(),
            token: self.config.token,
            peers: self.peers.verified_addrs().collect(),
            macs: self.switch.view(),
            broadcast_limit: self.config.broadcast_limit,
            sealer: self.crypto.as_ref().map(|(sealer, _)| Arc::clone(sealer)),
            relays,
        })
    }

    /// A number that moves whenever what [`Node::forward_view`] would show changes (a MAC
    /// entry added, moved or removed, a peer verified or removed, a relay route made or
    /// ended, the sealer replaced by a key rotation). Refreshed MAC entries do not move it:
    /// their new expiry reaches the lanes with the next view taken anyway.
    pub fn forward_generation(&self) -> u64 {
        self.switch
            .changes()
            .wrapping_add(self.peers.verified_changes())
            .wrapping_add(self.relay.changes())
            .wrapping_add(self.sealer_changes)
    }

    /// Adds what a lane counted to the node's counters and to the peers' traffic.
    pub fn absorb_lane(&mut self, counts: &LaneCounts) {
        self.stats.add(&counts.stats);
        for &(peer, datagrams, bytes) in &counts.sent {
            self.peers.count_sent_many(peer, datagrams, bytes);
        }
    }
}
