//! Counters: what crossed the node and what was dropped, and why.
//!
//! Owns the counters and their names only. The node increments them; the daemon and tests read
//! them. Plain `u64`s, no atomics: one thread owns a node.

use core::fmt;

use crate::wire;

/// Why a packet was not delivered. Every drop has exactly one reason and one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The datagram's token is not ours.
    WrongToken,
    /// The datagram could not be parsed.
    Malformed(wire::Error),
    /// The datagram claims to come from one of our own addresses.
    FromSelf,
    /// A message from a new address while the peer table is full.
    PeerTableFull,
    /// A frame from the device that is not a valid Ethernet frame.
    BadDeviceFrame,
    /// A frame from the device with no peer to send it to.
    NoPeers,
    /// The device refused a frame (queue full or error).
    DeviceWrite,
    /// A broadcast or multicast frame over its source's rate limit (`broadcast_limit`).
    BroadcastLimit,
    /// Keyed mode: a datagram that is not sealed with our key (or was altered).
    Unauthenticated,
    /// Keyed mode: a sealed datagram seen before (or from a forgotten old session).
    Replayed,
    /// A relay message that is not allowed: from or to a peer that did not announce relaying,
    /// from an unverified peer, to an address that is not a peer, or with relaying off.
    RelayRefused,
    /// A frame to relay over the relay rate limit (`relay_rate`).
    RelayRateLimited,
    /// A relayed frame from a node we now reach directly (a duplicate).
    RelaySuperseded,
    /// Per-node keys: a relayed frame from a node whose key its relay has not named yet, or
    /// named as one we do not trust.
    RelayUnverified,
    /// A datagram from a source no node can be reached at (port 0, or an unspecified,
    /// multicast or broadcast address): nothing could be sent back.
    BadSource,
}

impl DropReason {
    /// Number of distinct counters.
    pub const COUNT: usize = 18;

    /// Every counter index with its name, in a fixed order.
    pub const NAMES: [&'static str; DropReason::COUNT] = [
        "wrong_token",
        "truncated",
        "unknown_kind",
        "frame_too_short",
        "truncated_vlan_tag",
        "from_self",
        "peer_table_full",
        "bad_device_frame",
        "no_peers",
        "device_write",
        "broadcast_limit",
        "unauthenticated",
        "replayed",
        "relay_refused",
        "relay_rate_limited",
        "relay_superseded",
        "relay_unverified",
        "bad_source",
    ];

    /// The counter index of this reason.
    pub const fn index(self) -> usize {
        match self {
            DropReason::WrongToken => 0,
            DropReason::Malformed(wire::Error::Truncated) => 1,
            DropReason::Malformed(wire::Error::UnknownKind(_)) => 2,
            DropReason::Malformed(wire::Error::FrameTooShort) => 3,
            DropReason::Malformed(wire::Error::TruncatedVlanTag) => 4,
            DropReason::FromSelf => 5,
            DropReason::PeerTableFull => 6,
            DropReason::BadDeviceFrame => 7,
            DropReason::NoPeers => 8,
            DropReason::DeviceWrite => 9,
            DropReason::BroadcastLimit => 10,
            DropReason::Unauthenticated => 11,
            DropReason::Replayed => 12,
            DropReason::RelayRefused => 13,
            DropReason::RelayRateLimited => 14,
            DropReason::RelaySuperseded => 15,
            DropReason::RelayUnverified => 16,
            DropReason::BadSource => 17,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropReason::WrongToken => f.write_str("wrong token"),
            DropReason::Malformed(e) => write!(f, "malformed: {e}"),
            DropReason::FromSelf => f.write_str("sent from our own address"),
            DropReason::PeerTableFull => f.write_str("peer table full"),
            DropReason::BadDeviceFrame => f.write_str("invalid frame from the device"),
            DropReason::NoPeers => f.write_str("no peers to send to"),
            DropReason::DeviceWrite => f.write_str("device write failed"),
            DropReason::BroadcastLimit => f.write_str("broadcast rate limit"),
            DropReason::Unauthenticated => f.write_str("not sealed with our key"),
            DropReason::Replayed => f.write_str("replayed"),
            DropReason::RelayRefused => f.write_str("relaying not allowed"),
            DropReason::RelayRateLimited => f.write_str("relay rate limit"),
            DropReason::RelaySuperseded => f.write_str("relayed copy of a direct path"),
            DropReason::RelayUnverified => {
                f.write_str("relayed from a key not checked or not trusted")
            }
            DropReason::BadSource => f.write_str("from an address nothing can be sent to"),
        }
    }
}

/// The node's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames read from the device.
    pub frames_from_device: u64,
    /// Bytes of those frames.
    pub bytes_from_device: u64,
    /// Frames written to the device.
    pub frames_to_device: u64,
    /// Bytes of those frames.
    pub bytes_to_device: u64,
    /// Device frames sent to exactly one peer (destination known).
    pub frames_unicast: u64,
    /// Device frames sent to every peer (destination unknown, broadcast or multicast).
    pub frames_flooded: u64,
    /// Datagrams received, valid or not.
    pub datagrams_received: u64,
    /// Bytes of those datagrams.
    pub bytes_received: u64,
    /// Datagrams handed to the socket successfully.
    pub datagrams_sent: u64,
    /// Bytes of those datagrams.
    pub bytes_sent: u64,
    /// Management datagrams (peer lists, get-peers, close) sent.
    pub control_sent: u64,
    /// Bytes of those management datagrams.
    pub control_bytes_sent: u64,
    /// Sends that failed because the socket buffer was full.
    pub send_would_block: u64,
    /// Sends that failed for any other reason.
    pub send_errors: u64,
    /// MAC entries that moved from one peer to another.
    pub mac_moves: u64,
    /// MAC entries not learned because a table cap was reached.
    pub macs_refused: u64,
    /// Peer-list entries ignored (own, unspecified, multicast, port 0, unreachable family, a
    /// remote peer's loopback addresses).
    pub peer_entries_ignored: u64,
    /// Addresses not queued for contact because the queue was full.
    pub contacts_refused: u64,
    /// Replies held back: to messages from unverified peers (by the per-address rate limit,
    /// or with a network key by the Challenge rules), and to verified peers' requests for the
    /// whole peer list (by its limits). Each reply counts: one Challenge from an unverified
    /// address can hold back two (its Echo and our own Challenge).
    pub replies_limited: u64,
    /// Frames we sent through a relay (RelayTo).
    pub relay_frames_sent: u64,
    /// Frames that reached us through a relay (RelayedFrom), counted before they are delivered
    /// (so also those the broadcast limit or a failed tap write then drops).
    pub relay_frames_received: u64,
    /// Frames we passed on as a relay for two of our peers.
    pub relayed_for_others: u64,
    /// Dropped packets, indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
}

impl Stats {
    /// Counts one drop.
    pub fn count_drop(&mut self, reason: DropReason) {
        if let Some(c) = self.drops.get_mut(reason.index()) {
            *c = c.saturating_add(1);
        }
    }

    /// The drop counter for `reason`.
    pub fn drops_of(&self, reason: DropReason) -> u64 {
        self.drops.get(reason.index()).copied().unwrap_or(0)
    }

    /// All drops together.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Adds every counter of `other` to ours (a `--threads` lane's counters, see
    /// [`crate::lane`]).
    pub fn add(&mut self, other: &Stats) {
        let Stats {
            frames_from_device,
            bytes_from_device,
            frames_to_device,
            bytes_to_device,
            frames_unicast,
            frames_flooded,
            datagrams_received,
            bytes_received,
            datagrams_sent,
            bytes_sent,
            control_sent,
            control_bytes_sent,
            send_would_block,
            send_errors,
            mac_moves,
            macs_refused,
            peer_entries_ignored,
            contacts_refused,
            replies_limited,
            relay_frames_sent,
            relay_frames_received,
            relayed_for_others,
            drops,
        } = other;
        for (ours, theirs) in [
            (&mut self.frames_from_device, frames_from_device),
            (&mut self.bytes_from_device, bytes_from_device),
            (&mut self.frames_to_device, frames_to_device),
            (&mut self.bytes_to_device, bytes_to_device),
            (&mut self.frames_unicast, frames_unicast),
            (&mut self.frames_flooded, frames_flooded),
            (&mut self.datagrams_received, datagrams_received),
            (&mut self.bytes_received, bytes_received),
            (&mut self.datagrams_sent, datagrams_sent),
            (&mut self.bytes_sent, bytes_sent),
            (&mut self.control_sent, control_sent),
            (&mut self.control_bytes_sent, control_bytes_sent),
            (&mut self.send_would_block, send_would_block),
            (&mut self.send_errors, send_errors),
            (&mut self.mac_moves, mac_moves),
            (&mut self.macs_refused, macs_refused),
            (&mut self.peer_entries_ignored, peer_entries_ignored),
            (&mut self.contacts_refused, contacts_refused),
            (&mut self.replies_limited, replies_limited),
            (&mut self.relay_frames_sent, relay_frames_sent),
            (&mut self.relay_frames_received, relay_frames_received),
            (&mut self.relayed_for_others, relayed_for_others),
        ] {
            *ours = ours.saturating_add(*theirs);
        }
        for (ours, theirs) in self.drops.iter_mut().zip(drops) {
            *ours = ours.saturating_add(*theirs);
        }
    }
}

impl fmt::Display for Stats {
    /// One line, `name=value` pairs, drops only where non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "frames_from_device={} bytes_from_device={} frames_to_device={} bytes_to_device={} \
             unicast={} flooded={} datagrams_received={} bytes_received={} datagrams_sent={} \
             bytes_sent={} control_sent={} control_bytes_sent={} send_would_block={} send_errors={} \
             mac_moves={} macs_refused={} peer_entries_ignored={} contacts_refused={} \
             replies_limited={} relay_frames_sent={} relay_frames_received={} \
             relayed_for_others={}",
            self.frames_from_device,
            self.bytes_from_device,
            self.frames_to_device,
            self.bytes_to_device,
            self.frames_unicast,
            self.frames_flooded,
            self.datagrams_received,
            self.bytes_received,
            self.datagrams_sent,
            self.bytes_sent,
            self.control_sent,
            self.control_bytes_sent,
            self.send_would_block,
            self.send_errors,
            self.mac_moves,
            self.macs_refused,
            self.peer_entries_ignored,
            self.contacts_refused,
            self.replies_limited,
            self.relay_frames_sent,
            self.relay_frames_received,
            self.relayed_for_others,
        )?;
        for (name, count) in DropReason::NAMES.iter().zip(self.drops.iter()) {
            if *count > 0 {
                write!(f, " drop_{name}={count}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_indices_are_distinct_and_named() {
        let all = [
            DropReason::WrongToken,
            DropReason::Malformed(wire::Error::Truncated),
            DropReason::Malformed(wire::Error::UnknownKind(9)),
            DropReason::Malformed(wire::Error::FrameTooShort),
            DropReason::Malformed(wire::Error::TruncatedVlanTag),
            DropReason::FromSelf,
            DropReason::PeerTableFull,
            DropReason::BadDeviceFrame,
            DropReason::NoPeers,
            DropReason::DeviceWrite,
            DropReason::BroadcastLimit,
            DropReason::Unauthenticated,
            DropReason::Replayed,
            DropReason::RelayRefused,
            DropReason::RelayRateLimited,
            DropReason::RelaySuperseded,
            DropReason::RelayUnverified,
            DropReason::BadSource,
        ];
        let mut seen = [false; DropReason::COUNT];
        for r in all {
            assert!(!seen[r.index()], "{r} shares an index");
            seen[r.index()] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn stats_display_lists_nonzero_drops_only() {
        let mut s = Stats::default();
        s.count_drop(DropReason::WrongToken);
        s.count_drop(DropReason::WrongToken);
        let line = s.to_string();
        assert!(line.contains("drop_wrong_token=2"));
        assert!(!line.contains("drop_truncated"));
        assert_eq!(s.total_drops(), 2);
        assert_eq!(s.drops_of(DropReason::WrongToken), 2);
    }
}
