//! The way out for a frame read from the device, decided in one place for both of the places
//! that send such frames: the node's own thread ([`Node::on_frame`](crate::node::Node::on_frame))
//! and the `--threads` lanes ([`Lane::on_frame`](crate::lane::Lane::on_frame)).
//!
//! Owns the order of the decisions and what is counted: the destination (the broadcast limit
//! for a multicast frame, the MAC table for a unicast one), "nobody to send to", the relay
//! routes first (before the frame is sealed in place for the direct peers), the header, then
//! one seal for every receiver (keyed mode) or one per receiver (per-node keys). A frame is
//! counted as unicast or flooded once it is decided and sealed (keyed mode), or once it is
//! decided (per-node keys, where a peer without a session is counted as well, and a frame sent
//! through a relay).
//!
//! What each step reads and where each datagram goes belong to the caller, through
//! `Outbound`: the node answers from its own tables and sessions, a lane from its snapshot
//! of them. This module must not know which of the two it serves, send anything but the one
//! frame, or learn anything.

use std::net::SocketAddr;

use log::debug;

use crate::buf::{PacketBuf, HEADROOM, SWITCH_AT};
use crate::crypto::Sealer;
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::wire::{emit_header, Frame, Kind, Mac, Token, VlanId, HEADER_LEN, MAX_FRAME_LEN};

/// How the datagrams of frames are sealed.
#[derive(Clone, Copy)]
pub(crate) enum Sealing<'a> {
    /// The seed's clear protocol.
    Clear,
    /// Keyed mode: one sealer for every peer (its counter shared by all who seal with it).
    Keyed(&'a Sealer),
    /// Per-node keys: each peer's own session
    /// ([`Outbound::seal_and_send`], [`Outbound::seal_and_send_to_all`]).
    PerPeer,
}

/// What forwarding a frame needs from the one who sends it. Every method is on the hot path:
/// none may allocate.
pub(crate) trait Outbound {
    /// The network's token.
    fn token(&self) -> Token;
    /// Whether a multicast or broadcast frame from the device may go out at `now` (the
    /// broadcast limit, which this counts against; always true without one).
    fn allow_broadcast(&mut self, now: Instant) -> bool;
    /// The peer behind `dst` on `vlan`, if known at `now`.
    fn lookup(&self, now: Instant, vlan: VlanId, dst: Mac) -> Option<SocketAddr>;
    /// Whether there is any verified peer to flood to.
    fn has_peers(&self) -> bool;
    /// Whether any relay route is active (only then are the two `relay` methods called).
    fn relaying(&self) -> bool;
    /// Sends `frame` to `peer` through the relaying peer of its active route, if it has one;
    /// returns whether it had.
    fn relay_to(&mut self, now: Instant, peer: SocketAddr, frame: &[u8]) -> bool;
    /// Sends `frame` to every address reached through a relay.
    fn relay_to_all(&mut self, now: Instant, frame: &[u8]);
    /// How frames are sealed.
    fn sealing(&self) -> Sealing<'_>;
    /// The counters.
    fn stats(&mut self) -> &mut Stats;
    /// Sends a finished datagram to `peer` (counted for it).
    fn send(&mut self, peer: SocketAddr, datagram: &[u8]);
    /// Sends a finished datagram to every verified peer.
    fn send_to_all(&mut self, datagram: &[u8]);
    /// Per-node keys: seals the clear datagram in `bytes` (its switch byte at [`SWITCH_AT`],
    /// `inner_len` bytes from there) in place with `peer`'s session and sends it; without a
    /// live session, counts it and asks for a handshake instead.
    fn seal_and_send(&mut self, now: Instant, peer: SocketAddr, bytes: &mut [u8], inner_len: usize);
    /// Per-node keys: for every verified peer, seals a copy of the clear datagram `clear`
    /// (token first, as at [`HEADROOM`] in a packet buffer) with that peer's session, and
    /// sends it.
    ///
    /// # Errors
    ///
    /// [`DropReason::BadDeviceFrame`] if `clear` does not fit the copy.
    fn seal_and_send_to_all(&mut self, now: Instant, clear: &[u8]) -> Result<(), DropReason>;
}

/// A frame read from the device into `buf.read_room()[..len]`: counted as such, sent with
/// [`forward`], and if it cannot go, counted as a drop with its reason and logged at debug.
/// What [`Node::on_frame`](crate::node::Node::on_frame) and
/// [`Lane::on_frame`](crate::lane::Lane::on_frame) both do.
///
/// # Errors
///
/// As [`forward`]; the drop is already counted.
// HOT PATH
pub(crate) fn from_device<O: Outbound>(
    out: &mut O,
    now: Instant,
    buf: &mut PacketBuf,
    len: usize,
) -> Result<(), DropReason> {
    let stats = out.stats();
    stats.frames_from_device += 1;
    stats.bytes_from_device += len as u64;
    let result = forward(out, now, buf, len);
    if let Err(reason) = result {
        out.stats().count_drop(reason);
        debug!("dropped a {len}-byte frame from the device: {reason}");
    }
    result
}

/// Sends the frame read into `buf.read_room()[..len]` to the peer owning its destination, or
/// to every verified peer and every relayed address, through `out`. The header (and the seal)
/// is written around the frame in place.
///
/// # Errors
///
/// [`DropReason::BadDeviceFrame`] for a frame without a whole Ethernet header, one longer
/// than [`MAX_FRAME_LEN`] (read into [`PacketBuf::read_room`], one byte longer: the tap's MTU
/// was raised past what a datagram holds), or one that cannot be sealed, [`DropReason::BroadcastLimit`] over the broadcast limit,
/// [`DropReason::NoPeers`] when there is nobody to send to. The caller counts them.
// HOT PATH
pub(crate) fn forward<O: Outbound>(
    out: &mut O,
    now: Instant,
    buf: &mut PacketBuf,
    len: usize,
) -> Result<(), DropReason> {
    if len > MAX_FRAME_LEN {
        return Err(DropReason::BadDeviceFrame);
    }
    let (dst, vlan) = match Frame::new_checked(buf.frame(len)) {
        Ok(frame) => (frame.dst(), frame.vlan()),
        Err(_) => return Err(DropReason::BadDeviceFrame),
    };
    let target = if dst.is_multicast() {
        if !out.allow_broadcast(now) {
            return Err(DropReason::BroadcastLimit);
        }
        None
    } else {
        out.lookup(now, vlan, dst)
    };
    if target.is_none() && !out.has_peers() {
        return Err(DropReason::NoPeers);
    }
    if out.relaying() {
        // Through a relay, before the frame is sealed in place for the direct peers.
        match target {
            Some(peer) => {
                if out.relay_to(now, peer, buf.frame(len)) {
                    out.stats().frames_unicast += 1;
                    return Ok(());
                }
            }
            None => out.relay_to_all(now, buf.frame(len)),
        }
    }
    let token = out.token();
    if emit_header(token, Kind::Frame, buf.header_and_frame_mut(len)).is_err() {
        return Err(DropReason::BadDeviceFrame);
    }
    let clear = HEADROOM..HEADROOM + HEADER_LEN + len;
    let range = match out.sealing() {
        Sealing::Clear => clear,
        Sealing::Keyed(sealer) => sealer
            .seal(token, buf.bytes_mut(), SWITCH_AT, 1 + len)
            .map_err(|_| DropReason::BadDeviceFrame)?,
        Sealing::PerPeer => {
            // Sealed for each receiver with its own session: in place for one, in a copy per
            // peer for a flood.
            count(out.stats(), target);
            return match target {
                Some(peer) => {
                    out.seal_and_send(now, peer, buf.bytes_mut(), 1 + len);
                    Ok(())
                }
                None => {
                    let clear = buf.bytes().get(clear).ok_or(DropReason::BadDeviceFrame)?;
                    out.seal_and_send_to_all(now, clear)
                }
            };
        }
    };
    count(out.stats(), target);
    let datagram: &[u8] = buf.bytes().get(range).unwrap_or_default();
    match target {
        Some(peer) => out.send(peer, datagram),
        None => out.send_to_all(datagram),
    }
    Ok(())
}

/// Per-node keys: puts a fresh copy of the clear datagram `clear` at [`HEADROOM`] in `flood`
/// (each seal encrypts its copy in place, so every peer of a flood needs one) and returns the
/// length from the switch byte that a seal at [`SWITCH_AT`] covers.
///
/// # Errors
///
/// [`DropReason::BadDeviceFrame`] if `clear` does not fit in `flood` (or is shorter than a
/// token).
// HOT PATH
pub(crate) fn refill(flood: &mut [u8], clear: &[u8]) -> Result<usize, DropReason> {
    let copy = flood
        .get_mut(HEADROOM..HEADROOM + clear.len())
        .ok_or(DropReason::BadDeviceFrame)?;
    copy.copy_from_slice(clear);
    clear
        .len()
        .checked_sub(SWITCH_AT - HEADROOM)
        .ok_or(DropReason::BadDeviceFrame)
}

/// Counts a frame that goes out as unicast (to `target`) or flooded (no target).
fn count(stats: &mut Stats, target: Option<SocketAddr>) {
    match target {
        Some(_) => stats.frames_unicast += 1,
        None => stats.frames_flooded += 1,
    }
}

#[cfg(test)]
mod tests {
    //! The decision procedure against a scripted [`Outbound`] that records what it is asked,
    //! so the order of the steps (relays before the seal, the count after it) is checked on
    //! its own, apart from the node and the lanes that answer it in real use.

    use super::*;
    use crate::crypto::{Key, Opener};
    use crate::wire::TOKEN_LEN;

    const NOW: Instant = Instant::from_secs(100);

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, i], 3210))
    }

    fn token() -> Token {
        Token::new(7).expect("small token")
    }

    /// What the procedure asked the double to do, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Event {
        RelayTo(SocketAddr, Vec<u8>),
        RelayToAll(Vec<u8>),
        Send(SocketAddr, Vec<u8>),
        SendToAll(Vec<u8>),
        /// Per-node keys: the clear datagram (token, switch byte, frame) handed over.
        SealAndSend(SocketAddr, Vec<u8>),
        SealAndSendToAll(Vec<u8>),
    }

    #[derive(Default)]
    struct Script {
        peers: Vec<SocketAddr>,
        /// The peer any unicast destination is behind.
        owner: Option<SocketAddr>,
        refuse_broadcasts: bool,
        /// (address, relaying peer).
        routes: Vec<(SocketAddr, SocketAddr)>,
        sealer: Option<Sealer>,
        per_peer: bool,
        stats: Stats,
        events: Vec<Event>,
    }

    impl Outbound for Script {
        fn token(&self) -> Token {
            token()
        }
        fn allow_broadcast(&mut self, _now: Instant) -> bool {
            !self.refuse_broadcasts
        }
        fn lookup(&self, _now: Instant, _vlan: VlanId, _dst: Mac) -> Option<SocketAddr> {
            self.owner
        }
        fn has_peers(&self) -> bool {
            !self.peers.is_empty()
        }
        fn relaying(&self) -> bool {
            !self.routes.is_empty()
        }
        fn relay_to(&mut self, _now: Instant, peer: SocketAddr, frame: &[u8]) -> bool {
            let routed = self.routes.iter().any(|&(a, _)| a == peer);
            if routed {
                self.events.push(Event::RelayTo(peer, frame.to_vec()));
            }
            routed
        }
        fn relay_to_all(&mut self, _now: Instant, frame: &[u8]) {
            self.events.push(Event::RelayToAll(frame.to_vec()));
        }
        fn sealing(&self) -> Sealing<'_> {
            match (&self.sealer, self.per_peer) {
                (Some(sealer), _) => Sealing::Keyed(sealer),
                (None, true) => Sealing::PerPeer,
                (None, false) => Sealing::Clear,
            }
        }
        fn stats(&mut self) -> &mut Stats {
            &mut self.stats
        }
        fn send(&mut self, peer: SocketAddr, datagram: &[u8]) {
            self.events.push(Event::Send(peer, datagram.to_vec()));
        }
        fn send_to_all(&mut self, datagram: &[u8]) {
            self.events.push(Event::SendToAll(datagram.to_vec()));
        }
        fn seal_and_send(
            &mut self,
            _now: Instant,
            peer: SocketAddr,
            bytes: &mut [u8],
            inner_len: usize,
        ) {
            let clear = bytes[SWITCH_AT - TOKEN_LEN..SWITCH_AT + inner_len].to_vec();
            self.events.push(Event::SealAndSend(peer, clear));
        }
        fn seal_and_send_to_all(&mut self, _now: Instant, clear: &[u8]) -> Result<(), DropReason> {
            self.events.push(Event::SealAndSendToAll(clear.to_vec()));
            Ok(())
        }
    }

    /// A frame to `dst` from a fixed unicast source, `len` bytes.
    fn frame(dst: [u8; 6], len: usize) -> Vec<u8> {
        let mut f = vec![0x5a; len];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    }

    const UNICAST: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const BROADCAST: [u8; 6] = [0xff; 6];

    /// The clear datagram of `frame`: token, switch byte 0, the frame.
    fn clear(frame: &[u8]) -> Vec<u8> {
        let mut d = token().to_bytes().to_vec();
        d.push(Kind::Frame as u8);
        d.extend_from_slice(frame);
        d
    }

    fn run(script: &mut Script, frame: &[u8]) -> Result<(), DropReason> {
        let mut buf = PacketBuf::new();
        buf.frame_room()[..frame.len()].copy_from_slice(frame);
        forward(script, NOW, &mut buf, frame.len())
    }

    #[test]
    fn a_frame_shorter_than_an_ethernet_header_is_refused_before_any_question() {
        let mut s = Script {
            peers: vec![addr(2)],
            ..Script::default()
        };
        assert_eq!(run(&mut s, &[0xff; 13]), Err(DropReason::BadDeviceFrame));
        assert_eq!(s.events, []);
        assert_eq!(s.stats, Stats::default());
    }

    #[test]
    fn a_frame_longer_than_max_frame_len_is_refused_not_sent_cut() {
        let mut s = Script {
            peers: vec![addr(2)],
            ..Script::default()
        };
        let mut buf = PacketBuf::new();
        buf.read_room().fill(0xff);
        let len = MAX_FRAME_LEN + 1;
        assert_eq!(
            forward(&mut s, NOW, &mut buf, len),
            Err(DropReason::BadDeviceFrame)
        );
        assert_eq!(s.events, []);
        assert_eq!(forward(&mut s, NOW, &mut buf, MAX_FRAME_LEN), Ok(()));
    }

    #[test]
    fn in_the_clear_a_known_destination_gets_one_datagram_and_the_rest_is_flooded() {
        let mut s = Script {
            peers: vec![addr(2), addr(3)],
            owner: Some(addr(3)),
            ..Script::default()
        };
        let (uni, bcast) = (frame(UNICAST, 60), frame(BROADCAST, 60));
        run(&mut s, &uni).expect("sent");
        run(&mut s, &bcast).expect("flooded");
        s.owner = None;
        run(&mut s, &uni).expect("flooded, unknown");
        assert_eq!(
            s.events,
            [
                Event::Send(addr(3), clear(&uni)),
                Event::SendToAll(clear(&bcast)),
                Event::SendToAll(clear(&uni)),
            ]
        );
        assert_eq!((s.stats.frames_unicast, s.stats.frames_flooded), (1, 2));
    }

    #[test]
    fn over_the_broadcast_limit_or_with_nobody_to_send_to_nothing_goes() {
        let mut s = Script {
            peers: vec![addr(2)],
            refuse_broadcasts: true,
            ..Script::default()
        };
        assert_eq!(
            run(&mut s, &frame(BROADCAST, 60)),
            Err(DropReason::BroadcastLimit)
        );
        // A unicast is not a broadcast: it is flooded.
        run(&mut s, &frame(UNICAST, 60)).expect("flooded");
        s.peers.clear();
        s.refuse_broadcasts = false;
        assert_eq!(run(&mut s, &frame(UNICAST, 60)), Err(DropReason::NoPeers));
        assert_eq!(run(&mut s, &frame(BROADCAST, 60)), Err(DropReason::NoPeers));
        // A destination whose owner is known still goes, verified peers or not (a lane's
        // view may be one publication late).
        s.owner = Some(addr(4));
        run(&mut s, &frame(UNICAST, 60)).expect("sent");
        assert_eq!(s.events.len(), 2, "{:?}", s.events);
        assert_eq!((s.stats.frames_unicast, s.stats.frames_flooded), (1, 1));
    }

    #[test]
    fn relays_get_the_clear_frame_before_the_seal_and_a_relayed_unicast_goes_only_there() {
        let key = Key::from_bytes([0x42; 32]);
        let session = [7u8; 16];
        let mut s = Script {
            peers: vec![addr(2)],
            owner: Some(addr(9)),
            routes: vec![(addr(9), addr(2))],
            sealer: Some(Sealer::new(&key, session)),
            ..Script::default()
        };
        let (uni, bcast) = (frame(UNICAST, 100), frame(BROADCAST, 100));
        run(&mut s, &uni).expect("relayed");
        run(&mut s, &bcast).expect("flooded");
        assert_eq!(s.events.len(), 3, "{:?}", s.events);
        assert_eq!(s.events[0], Event::RelayTo(addr(9), uni));
        // A flood goes to the relayed addresses first, with the frame still clear...
        assert_eq!(s.events[1], Event::RelayToAll(bcast.clone()));
        // ...then, sealed once, to the direct peers; it opens to the clear datagram.
        let Event::SendToAll(sealed) = &s.events[2] else {
            panic!("a flood to the peers: {:?}", s.events[2]);
        };
        let mut sealed = sealed.clone();
        assert_ne!(sealed, clear(&bcast));
        let mut opener = Opener::new(&key, 16);
        let range = opener.open(&mut sealed).expect("opens");
        assert_eq!(sealed[range], clear(&bcast)[..]);
        assert_eq!((s.stats.frames_unicast, s.stats.frames_flooded), (1, 1));
    }

    #[test]
    fn with_per_node_keys_each_peer_s_seal_gets_the_clear_datagram_already_counted() {
        let mut s = Script {
            peers: vec![addr(2), addr(3)],
            owner: Some(addr(3)),
            per_peer: true,
            ..Script::default()
        };
        let (uni, bcast) = (frame(UNICAST, 1400), frame(BROADCAST, 1400));
        run(&mut s, &uni).expect("sealed for one");
        run(&mut s, &bcast).expect("sealed for each");
        assert_eq!(
            s.events,
            [
                Event::SealAndSend(addr(3), clear(&uni)),
                Event::SealAndSendToAll(clear(&bcast)),
            ]
        );
        assert_eq!((s.stats.frames_unicast, s.stats.frames_flooded), (1, 1));
    }

    #[test]
    fn a_flood_copy_is_refilled_whole_each_time_and_refused_when_it_does_not_fit() {
        let mut flood = vec![0u8; 256];
        let datagram = clear(&frame(BROADCAST, 60));
        // A seal scribbled over the last copy: the next one is whole again.
        flood[HEADROOM..HEADROOM + 20].fill(0xee);
        let inner_len = refill(&mut flood, &datagram).expect("fits");
        assert_eq!(flood[HEADROOM..HEADROOM + datagram.len()], datagram[..]);
        assert_eq!(inner_len, 1 + 60, "the switch byte and the frame");
        assert_eq!(SWITCH_AT - TOKEN_LEN, HEADROOM);
        let mut small = vec![0u8; HEADROOM + 10];
        assert_eq!(
            refill(&mut small, &datagram),
            Err(DropReason::BadDeviceFrame)
        );
        assert_eq!(
            refill(&mut flood, &datagram[..3]),
            Err(DropReason::BadDeviceFrame),
            "shorter than a token"
        );
    }
}
