//! [`Lane`]: one more worker's share of the packet path (`--threads`): frames read from one
//! queue of a multi-queue tap, sent to the peers that own their destinations, in the seed's
//! clear protocol, sealed with the network key, or sealed per peer (per-node keys).
//!
//! Owns the forwarding decision away from the node's thread. A lane reads a [`ForwardView`],
//! a read-only snapshot of what the node knows (the MAC table, the verified peers, the token,
//! the broadcast limit, the sealers and the active relay routes), which the
//! node's thread takes with [`Node::forward_view`](crate::node::Node::forward_view)
//! whenever [`Node::forward_generation`](crate::node::Node::forward_generation) moved, and keeps its own counters and broadcast
//! limit, handed back to the node with [`Lane::take_counts`] and [`Node::absorb_lane`](crate::node::Node::absorb_lane).
//!
//! What a lane does is what [`Node::on_frame`](crate::node::Node::on_frame) does for a frame:
//! both call `outbound::forward`, the lane answering its questions from the view,
//! so the same header goes to the same peer, byte for byte on the wire but for the counters:
//! unicast to the peer the MAC table names (through its relay if it has an active route), or
//! a flood to every verified peer and every relayed address; sealed with the node's own
//! sealers (the network key's, or the current session of each peer's key), whose counters the
//! node and all lanes share (atomics), so a receiver sees one sender session. What it must not
//! do: touch the node, its peer table, its MAC table or its sessions, send anything but
//! frames, or learn anything. Everything else (receiving, learning, control messages,
//! handshakes) stays on the node's thread; a frame to a peer with no live session is dropped
//! and counted, and the peer handed back to the node, which starts the handshake.
//!
//! The snapshot may be late by one publication: a frame to a MAC learned since is flooded
//! (as any unknown destination is), and a peer removed since may get a frame or two. The
//! daemon publishes a new view soon after every change (see `daemon::lanes`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use log::debug;

use crate::buf::{PacketBuf, BUF_LEN, SWITCH_AT};
use crate::crypto::{self, Sealer};
use crate::identity::session::may_seal;
use crate::io::Socket;
use crate::limit::RateLimiter;
use crate::node::tx::Tx;
use crate::outbound::{self, Outbound, Sealing};
use crate::stats::{DropReason, Stats};
use crate::switch::MacView;
use crate::time::Instant;
use crate::wire::relay::{emit_relayed, RELAY_TO};
use crate::wire::{self, Mac, Token, VlanId, TOKEN_LEN};

/// Where a relayed frame is written in a lane's relay buffer: room for the seal in front.
const RELAY_AT: usize = crypto::FRONT_LEN - TOKEN_LEN;
/// A lane's relay buffer: the largest datagram with its seal around it.
const RELAY_BUF_LEN: usize = RELAY_AT + wire::MAX_DATAGRAM_LEN + crypto::TAG_LEN;
/// The most peers a lane hands back per report as wanting a handshake.
const MAX_WANTED: usize = 16;

/// Per-node keys: the sealer of each peer's current session, as a lane needs them.
#[derive(Clone, Debug, Default)]
pub struct PeerSealers {
    /// (address, the current session's sealer, the time from which it seals nothing more),
    /// in address order.
    pub(crate) sealers: Vec<(SocketAddr, Arc<Sealer>, Instant)>,
    /// A session seals nothing once it sealed this many packets.
    pub(crate) max_messages: u64,
}

impl PeerSealers {
    /// The sealer for `peer`, if its session is live at `now`. // HOT PATH
    fn get(&self, peer: SocketAddr, now: Instant) -> Option<&Sealer> {
        let i = self.sealers.binary_search_by_key(&peer, |e| e.0).ok()?;
        let (_, sealer, until) = self.sealers.get(i)?;
        may_seal(sealer, *until, self.max_messages, now).then_some(&**sealer)
    }

    /// How many peers have a session.
    pub fn len(&self) -> usize {
        self.sealers.len()
    }

    /// True when no peer has a session.
    pub fn is_empty(&self) -> bool {
        self.sealers.is_empty()
    }
}

/// A read-only snapshot of what a lane needs to forward frames: taken by
/// [`Node::forward_view`](crate::node::Node::forward_view), shared by every lane behind an [`Arc`].
#[derive(Clone, Debug)]
pub struct ForwardView {
    /// [`Node::forward_generation`](crate::node::Node::forward_generation) when the view was taken.
    pub generation: u64,
    pub(crate) token: Token,
    /// The verified peers: who a flood goes to, and who may get unicast frames.
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) macs: MacView,
    pub(crate) broadcast_limit: Option<u64>,
    /// Keyed mode: the node's sealer (its counter shared by the node and every lane).
    pub(crate) sealer: Option<Arc<Sealer>>,
    /// Per-node keys: each peer's current sending session.
    pub(crate) per_peer: Option<PeerSealers>,
    /// Sealed modes: the active relay routes, (address, relaying peer), in address order.
    pub(crate) relays: Vec<(SocketAddr, SocketAddr)>,
}

impl ForwardView {
    /// A view with no peers and no MACs: every frame is dropped as "no peers" until the
    /// first real view arrives.
    pub fn empty(token: Token) -> ForwardView {
        ForwardView {
            generation: 0,
            token,
            peers: Vec::new(),
            macs: MacView::default(),
            broadcast_limit: None,
            sealer: None,
            per_peer: None,
            relays: Vec::new(),
        }
    }

    /// The verified peers in the view.
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// Entries of the MAC table in the view.
    pub fn macs(&self) -> usize {
        self.macs.len()
    }

    /// Whether frames are sealed (keyed mode or per-node keys).
    pub fn is_sealed(&self) -> bool {
        self.sealer.is_some() || self.per_peer.is_some()
    }

    /// Per-node keys: the peers' sending sessions.
    pub fn per_peer(&self) -> Option<&PeerSealers> {
        self.per_peer.as_ref()
    }

    /// The active relay routes, (address, relaying peer).
    pub fn relays(&self) -> &[(SocketAddr, SocketAddr)] {
        &self.relays
    }

    /// The relaying peer of the active route to `addr`, if any. // HOT PATH
    fn route(&self, addr: SocketAddr) -> Option<SocketAddr> {
        if self.relays.is_empty() {
            return None;
        }
        self.relays
            .binary_search_by_key(&addr, |&(a, _)| a)
            .ok()
            .and_then(|i| self.relays.get(i))
            .map(|&(_, via)| via)
    }
}

/// What a lane counted since its last [`Lane::take_counts`]: its share of the node's
/// counters, and what it sent to each peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaneCounts {
    /// Counters in the node's terms (frames from the device, unicast, flooded, sent, drops).
    pub stats: Stats,
    /// (peer, datagrams, bytes) sent to each peer, for the peers' traffic counters.
    pub sent: Vec<(SocketAddr, u64, u64)>,
    /// Per-node keys: datagrams not sent for want of a live session with their peer.
    pub no_session: u64,
    /// Per-node keys: the peers those were for (at most 16), for the node to start
    /// handshakes with.
    pub wanted: Vec<SocketAddr>,
}

/// One lane: forwards frames with the snapshot it was given, through its own socket.
pub struct Lane<S> {
    tx: Tx<S>,
    view: Arc<ForwardView>,
    stats: Stats,
    broadcasts: RateLimiter,
    /// (datagrams, bytes) sent to each peer since the last [`Lane::take_counts`]; room for
    /// every peer of the view is reserved when the view is set, so counting never allocates.
    sent: HashMap<SocketAddr, (u64, u64)>,
    /// Where a frame to a relayed address is wrapped and sealed; allocated with the first
    /// view that has relay routes.
    relay_buf: Box<[u8]>,
    /// Per-node keys: where a flooded datagram is copied and sealed for each peer; allocated
    /// with the first such view.
    flood_buf: Box<[u8]>,
    /// Per-node keys: what could not be sealed since the last [`Lane::take_counts`].
    no_session: u64,
    wanted: Vec<SocketAddr>,
}

impl<S: Socket> Lane<S> {
    /// A lane that sends through `socket` and forwards with `view`.
    pub fn new(socket: S, view: Arc<ForwardView>, now: Instant) -> Lane<S> {
        let mut lane = Lane {
            tx: Tx { socket, warned: 0 },
            broadcasts: RateLimiter::new(now, view.broadcast_limit.unwrap_or(u64::MAX)),
            view: Arc::new(ForwardView::empty(view.token)),
            stats: Stats::default(),
            sent: HashMap::new(),
            relay_buf: Box::default(),
            flood_buf: Box::default(),
            no_session: 0,
            wanted: Vec::with_capacity(MAX_WANTED),
        };
        lane.set_view(view);
        lane
    }

    /// The view in use.
    pub fn view(&self) -> &Arc<ForwardView> {
        &self.view
    }

    /// Forwards with `view` from now on (this may allocate room for the per-peer counts and
    /// the relay buffer: call it when the view changed, not per frame).
    pub fn set_view(&mut self, view: Arc<ForwardView>) {
        self.sent.reserve(view.peers.len() + view.relays.len());
        if !view.relays.is_empty() && self.relay_buf.is_empty() {
            self.relay_buf = vec![0u8; RELAY_BUF_LEN].into_boxed_slice();
        }
        if view.per_peer.is_some() && self.flood_buf.is_empty() {
            self.flood_buf = vec![0u8; BUF_LEN].into_boxed_slice();
        }
        self.view = view;
    }

    /// Sends the frame read into `buf.frame_room()[..len]` to the peer owning its
    /// destination, or to every verified peer, as [`Node::on_frame`](crate::node::Node::on_frame) does in the clear and
    /// keyed modes. The header (and the seal) is written around the frame in place. // HOT PATH
    ///
    /// # Errors
    ///
    /// [`DropReason::BadDeviceFrame`] for a frame without a whole Ethernet header (or one
    /// that cannot be sealed), [`DropReason::BroadcastLimit`] over the broadcast limit,
    /// [`DropReason::NoPeers`] when there is nobody to send to. All are already counted.
    pub fn on_frame(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
    ) -> Result<(), DropReason> {
        self.stats.frames_from_device += 1;
        self.stats.bytes_from_device += len as u64;
        let result = outbound::forward(self, now, buf, len);
        if let Err(reason) = result {
            self.stats.count_drop(reason);
            debug!("dropped a {len}-byte frame from the device: {reason}");
        }
        result
    }

    /// Sends what the socket queued (see [`Node::flush`](crate::node::Node::flush)). // HOT PATH
    pub fn flush(&mut self) {
        self.tx.flush(&mut self.stats);
    }

    /// Takes what was counted since the last call, for [`Node::absorb_lane`](crate::node::Node::absorb_lane) (allocates
    /// the per-peer list: call it now and then, not per frame).
    pub fn take_counts(&mut self) -> LaneCounts {
        let sent = self
            .sent
            .drain()
            .map(|(peer, (datagrams, bytes))| (peer, datagrams, bytes))
            .collect();
        self.sent
            .reserve(self.view.peers.len() + self.view.relays.len());
        let wanted = std::mem::replace(&mut self.wanted, Vec::with_capacity(MAX_WANTED));
        LaneCounts {
            stats: std::mem::take(&mut self.stats),
            sent,
            no_session: std::mem::take(&mut self.no_session),
            wanted,
        }
    }

    /// The socket (how many datagrams it holds queued, for the daemon).
    pub fn socket(&self) -> &S {
        &self.tx.socket
    }
}

impl<S> Lane<S> {
    /// The lane split into its view, its relay and flood buffers, and its sending side.
    fn parts(&mut self) -> (&ForwardView, &mut [u8], &mut [u8], Out<'_, S>) {
        let Lane {
            tx,
            view,
            stats,
            broadcasts: _,
            sent,
            relay_buf,
            flood_buf,
            no_session,
            wanted,
        } = self;
        let out = Out {
            tx,
            stats,
            sent,
            no_session,
            wanted,
        };
        (view, relay_buf, flood_buf, out)
    }
}

/// A lane's answers to `outbound::forward`: its snapshot of the node's tables, its own
/// broadcast limit and counters, the shared sealers. // HOT PATH
impl<S: Socket> Outbound for Lane<S> {
    fn token(&self) -> Token {
        self.view.token
    }

    fn allow_broadcast(&mut self, now: Instant) -> bool {
        self.broadcasts.allow_within(now, self.view.broadcast_limit)
    }

    fn lookup(&self, now: Instant, vlan: VlanId, dst: Mac) -> Option<SocketAddr> {
        self.view.macs.lookup(now, vlan, dst)
    }

    fn has_peers(&self) -> bool {
        !self.view.peers.is_empty()
    }

    fn relaying(&self) -> bool {
        !self.view.relays.is_empty()
    }

    fn relay_to(&mut self, now: Instant, peer: SocketAddr, frame: &[u8]) -> bool {
        let (view, relay_buf, _, mut out) = self.parts();
        let Some(via) = view.route(peer) else {
            return false;
        };
        out.send_relayed(view, now, relay_buf, via, peer, frame);
        true
    }

    fn relay_to_all(&mut self, now: Instant, frame: &[u8]) {
        let (view, relay_buf, _, mut out) = self.parts();
        for &(addr, via) in &view.relays {
            out.send_relayed(view, now, relay_buf, via, addr, frame);
        }
    }

    fn sealing(&self) -> Sealing<'_> {
        match (&self.view.sealer, &self.view.per_peer) {
            (Some(sealer), _) => Sealing::Keyed(sealer),
            (None, Some(_)) => Sealing::PerPeer,
            (None, None) => Sealing::Clear,
        }
    }

    fn stats(&mut self) -> &mut Stats {
        &mut self.stats
    }

    fn send(&mut self, peer: SocketAddr, datagram: &[u8]) {
        self.parts().3.send(peer, datagram);
    }

    fn send_to_all(&mut self, datagram: &[u8]) {
        let (view, _, _, mut out) = self.parts();
        view.peers.iter().for_each(|&peer| out.send(peer, datagram));
    }

    fn seal_and_send(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        bytes: &mut [u8],
        inner_len: usize,
    ) {
        let (view, _, _, mut out) = self.parts();
        out.seal_and_send(view, now, peer, bytes, inner_len);
    }

    fn seal_and_send_to_all(&mut self, now: Instant, clear: &[u8]) -> Result<(), DropReason> {
        let (view, _, flood_buf, mut out) = self.parts();
        for &peer in &view.peers {
            let inner_len = outbound::refill(flood_buf, clear)?;
            out.seal_and_send(view, now, peer, flood_buf, inner_len);
        }
        Ok(())
    }
}

/// A lane's sending side: the socket and the counters.
struct Out<'a, S> {
    tx: &'a mut Tx<S>,
    stats: &'a mut Stats,
    sent: &'a mut HashMap<SocketAddr, (u64, u64)>,
    no_session: &'a mut u64,
    wanted: &'a mut Vec<SocketAddr>,
}

impl<S: Socket> Out<'_, S> {
    /// Sends one datagram and counts it for `peer`. // HOT PATH
    fn send(&mut self, peer: SocketAddr, datagram: &[u8]) {
        if self.tx.send(self.stats, peer, datagram, false) {
            // Never allocates: room for every peer of the view was reserved.
            let count = self.sent.entry(peer).or_insert((0, 0));
            count.0 += 1;
            count.1 += datagram.len() as u64;
        }
    }

    /// The sealer for datagrams to `peer` in `view`: `None` in the clear protocol, and `Err`
    /// with per-node keys when `peer` has no live session at `now` (counted, and `peer` noted
    /// for a handshake). // HOT PATH
    fn sealer_for<'v>(
        &mut self,
        view: &'v ForwardView,
        now: Instant,
        peer: SocketAddr,
    ) -> Result<Option<&'v Sealer>, ()> {
        match (&view.sealer, &view.per_peer) {
            (Some(sealer), _) => Ok(Some(sealer)),
            (None, None) => Ok(None),
            (None, Some(per_peer)) => match per_peer.get(peer, now) {
                Some(sealer) => Ok(Some(sealer)),
                None => {
                    *self.no_session += 1;
                    if self.wanted.len() < MAX_WANTED && !self.wanted.contains(&peer) {
                        // Never allocates: the capacity is MAX_WANTED.
                        self.wanted.push(peer);
                    }
                    Err(())
                }
            },
        }
    }

    /// Per-node keys: seals the clear datagram whose switch byte is at [`SWITCH_AT`] in
    /// `bytes` (`inner_len` bytes from it) for `peer` in place and sends it. // HOT PATH
    fn seal_and_send(
        &mut self,
        view: &ForwardView,
        now: Instant,
        peer: SocketAddr,
        bytes: &mut [u8],
        inner_len: usize,
    ) {
        let range = match self.sealer_for(view, now, peer) {
            Ok(Some(sealer)) => sealer.seal(view.token, bytes, SWITCH_AT, inner_len).ok(),
            Ok(None) => Some(SWITCH_AT - TOKEN_LEN..SWITCH_AT + inner_len),
            Err(()) => None,
        };
        if let Some(datagram) = range.and_then(|r| bytes.get(r)) {
            self.send(peer, datagram);
        }
    }

    /// Sends `frame` to `to` through the relaying peer `via`, wrapped and sealed in `buf`
    /// as the node's own relayed frames are (man page: RELAYING).
    fn send_relayed(
        &mut self,
        view: &ForwardView,
        now: Instant,
        buf: &mut [u8],
        via: SocketAddr,
        to: SocketAddr,
        frame: &[u8],
    ) {
        let Some(out) = buf.get_mut(RELAY_AT..) else {
            return;
        };
        let len = match emit_relayed(view.token, RELAY_TO, to, frame, out) {
            Ok(len) => len,
            Err(e) => {
                self.stats.send_errors += 1;
                debug!("cannot relay a {}-byte frame to {to}: {e}", frame.len());
                return;
            }
        };
        self.stats.relay_frames_sent += 1;
        let sealed = match self.sealer_for(view, now, via) {
            Ok(Some(sealer)) => sealer.seal(
                view.token,
                buf,
                RELAY_AT + TOKEN_LEN,
                len.saturating_sub(TOKEN_LEN),
            ),
            // Relaying exists only in the sealed modes.
            Ok(None) | Err(()) => return,
        };
        match sealed {
            Ok(range) => {
                if let Some(datagram) = buf.get(range) {
                    self.send(via, datagram);
                }
            }
            Err(e) => {
                self.stats.send_errors += 1;
                debug!("cannot seal a message to {via}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::io::Device;
    use crate::node::{Config, Node};
    use crate::stats::DropReason;
    use crate::wire::{self, Kind};

    /// Keeps every datagram sent, with its address.
    #[derive(Default)]
    struct Recorder(Vec<(SocketAddr, Vec<u8>)>);
    impl Socket for Recorder {
        fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
            self.0.push((to, datagram.to_vec()));
            Ok(())
        }
    }

    #[derive(Default)]
    struct Sink;
    impl Device for Sink {
        fn write_frame(&mut self, _frame: &[u8]) -> io::Result<()> {
            Ok(())
        }
    }

    fn peer(i: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, i], 3210))
    }

    fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
        let mut f = vec![0x5a; len];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    }

    /// A node in the clear protocol with `peers` verified peers; the first one has sent us a
    /// frame from `remote` (so the MAC table knows it).
    fn node_with_peers(peers: u8, remote: [u8; 6], now: Instant) -> Node<Recorder, Sink> {
        let token = Token::new(7).unwrap();
        let mut node = Node::new(Config::new(token), Recorder::default(), Sink, Instant::ZERO);
        let mut get = [0u8; 8];
        wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
        let mut answer = [0u8; 10];
        let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
        for i in 1..=peers {
            node.on_datagram(now, peer(i), &mut get.clone()).unwrap();
            node.on_datagram(now, peer(i), &mut answer[..answer_len])
                .unwrap();
        }
        let mut incoming = vec![0u8; 200];
        let len =
            wire::emit_frame(token, &frame([2, 0, 0, 0, 0, 1], remote, 60), &mut incoming).unwrap();
        node.on_datagram(now, peer(1), &mut incoming[..len])
            .unwrap();
        node
    }

    fn send_through_node(
        node: &mut Node<Recorder, Sink>,
        now: Instant,
        f: &[u8],
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        node.socket_mut().0.clear();
        let mut buf = PacketBuf::new();
        buf.frame_room()[..f.len()].copy_from_slice(f);
        let _ = node.on_frame(now, &mut buf, f.len());
        let mut sent = std::mem::take(&mut node.socket_mut().0);
        sent.sort();
        sent
    }

    fn send_through_lane(
        lane: &mut Lane<Recorder>,
        now: Instant,
        f: &[u8],
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        lane.tx.socket.0.clear();
        let mut buf = PacketBuf::new();
        buf.frame_room()[..f.len()].copy_from_slice(f);
        let _ = lane.on_frame(now, &mut buf, f.len());
        let mut sent = std::mem::take(&mut lane.tx.socket.0);
        sent.sort();
        sent
    }

    #[test]
    fn a_lane_sends_what_the_node_sends_byte_for_byte_unicast_flood_and_broadcast() {
        let now = Instant::from_secs(1);
        let remote = [2, 0, 0, 0, 0, 2];
        let mut node = node_with_peers(3, remote, now);
        let view = Arc::new(node.forward_view());
        assert_eq!(view.peers().len(), 3);
        assert_eq!(view.macs(), 1);
        let mut lane = Lane::new(Recorder::default(), view, now);
        let local = [2, 0, 0, 0, 0, 1];
        for f in [
            frame(remote, local, 1400),                 // known: unicast to peer 1
            frame([2, 0, 0, 0, 0, 9], local, 60),       // unknown: flooded
            frame([0xff; 6], local, 342),               // broadcast: flooded
            frame([0x33, 0x33, 0, 0, 0, 1], local, 86), // multicast: flooded
        ] {
            let by_node = send_through_node(&mut node, now, &f);
            let by_lane = send_through_lane(&mut lane, now, &f);
            assert!(!by_node.is_empty());
            assert_eq!(by_lane, by_node);
        }
        assert_eq!(
            send_through_lane(&mut lane, now, &frame(remote, local, 100))
                .iter()
                .map(|(to, _)| *to)
                .collect::<Vec<_>>(),
            vec![peer(1)]
        );
        // A frame too short for an Ethernet header is dropped and counted, as by the node.
        let mut buf = PacketBuf::new();
        assert_eq!(
            lane.on_frame(now, &mut buf, 10),
            Err(DropReason::BadDeviceFrame)
        );
        // The MAC entry expires in the view as in the table.
        let later = now + node.config().mac_timeout;
        let sent = send_through_lane(&mut lane, later, &frame(remote, local, 100));
        assert_eq!(sent.len(), 3, "an expired entry floods");
    }

    /// The MACs the property below draws from: `mac(i)` is a unicast address.
    fn mac(i: u8) -> [u8; 6] {
        [2, 0, 0, 0, 1, i]
    }

    /// A frame of `len` bytes (cut at `len` even inside its header) from `src` to `dst`,
    /// tagged with `vlan` if given.
    fn tagged(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, len: usize) -> Vec<u8> {
        let mut f = vec![0x5a; len.max(18)];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        match vlan {
            Some(vid) => {
                f[12..14].copy_from_slice(&[0x81, 0x00]);
                f[14..16].copy_from_slice(&vid.to_be_bytes());
                f[16..18].copy_from_slice(&[0x08, 0x00]);
            }
            None => f[12..14].copy_from_slice(&[0x08, 0x00]),
        }
        f.truncate(len);
        f
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Whatever the node learned and whatever comes from the device (known, unknown,
        /// broadcast or multicast destinations, tagged or not, any length, a broadcast limit
        /// or none), a lane fed the node's view sends the very datagrams the node sends, to the
        /// same peers, and counts the same: both go through `outbound::forward`.
        #[test]
        fn a_lane_sends_and_counts_what_the_node_does_for_any_frame(
            learned in proptest::collection::vec((1u8..4, 0u8..6, proptest::option::of(1u16..4)), 0..10),
            frames in proptest::collection::vec(
                (0u8..4, 0u8..8, proptest::option::of(1u16..4), 0usize..1515), 1..20),
            limit in proptest::option::of(1u64..4),
        ) {
            let now = Instant::from_secs(1);
            let token = Token::new(7).unwrap();
            let mut config = Config::new(token);
            config.broadcast_limit = limit;
            let mut node = Node::new(config, Recorder::default(), Sink, Instant::ZERO);
            let mut get = [0u8; 8];
            wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
            let mut answer = [0u8; 10];
            let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
            for i in 1..=3 {
                node.on_datagram(now, peer(i), &mut get.clone()).unwrap();
                node.on_datagram(now, peer(i), &mut answer[..answer_len]).unwrap();
            }
            // MACs learned behind the peers, on VLANs or not (a MAC may move between peers).
            let mut incoming = vec![0u8; 200];
            for &(from, m, vlan) in &learned {
                let f = tagged([2, 0, 0, 0, 0, 1], mac(m), vlan, 60);
                let len = wire::emit_frame(token, &f, &mut incoming).unwrap();
                let _ = node.on_datagram(now, peer(from), &mut incoming[..len]);
            }
            let mut lane = Lane::new(Recorder::default(), Arc::new(node.forward_view()), now);
            let before = node.stats().clone();
            let local = [2, 0, 0, 0, 0, 1];
            for &(kind, m, vlan, len) in &frames {
                let dst = match kind {
                    0 => mac(m),                       // learned (on some VLAN) or not
                    1 => [0xff; 6],                    // broadcast
                    2 => [0x01, 0x00, 0x5e, 0, 0, m],  // multicast
                    _ => [2, 0, 0, 0, 2, m],           // never learned
                };
                let f = tagged(dst, local, vlan, len);
                let by_node = send_through_node(&mut node, now, &f);
                let by_lane = send_through_lane(&mut lane, now, &f);
                proptest::prop_assert_eq!(by_lane, by_node);
            }
            let counts = lane.take_counts().stats;
            let node_stats = node.stats();
            proptest::prop_assert_eq!(
                counts.frames_unicast, node_stats.frames_unicast - before.frames_unicast);
            proptest::prop_assert_eq!(
                counts.frames_flooded, node_stats.frames_flooded - before.frames_flooded);
            proptest::prop_assert_eq!(
                counts.datagrams_sent, node_stats.datagrams_sent - before.datagrams_sent);
            proptest::prop_assert_eq!(
                counts.total_drops(), node_stats.total_drops() - before.total_drops());
            proptest::prop_assert_eq!(counts.frames_from_device, frames.len() as u64);
        }
    }

    #[test]
    fn counts_go_back_to_the_node_and_the_generation_moves_with_what_the_view_shows() {
        let now = Instant::from_secs(1);
        let remote = [2, 0, 0, 0, 0, 2];
        let mut node = node_with_peers(2, remote, now);
        let generation = node.forward_generation();
        let view = Arc::new(node.forward_view());
        assert_eq!(view.generation, generation);
        let mut lane = Lane::new(Recorder::default(), view, now);
        let local = [2, 0, 0, 0, 0, 1];
        send_through_lane(&mut lane, now, &frame(remote, local, 100)); // 1 datagram
        send_through_lane(&mut lane, now, &frame([0xff; 6], local, 100)); // 2 datagrams
        let counts = lane.take_counts();
        assert_eq!(counts.stats.frames_from_device, 2);
        assert_eq!(counts.stats.datagrams_sent, 3);
        let mut sent = counts.sent.clone();
        sent.sort();
        assert_eq!(sent, vec![(peer(1), 2, 216), (peer(2), 1, 108)]);
        assert_eq!(lane.take_counts(), LaneCounts::default());

        let before = node.stats().clone();
        let traffic_before = node.peers().get(peer(1)).unwrap().traffic;
        node.absorb_lane(&counts);
        assert_eq!(
            node.stats().frames_from_device,
            before.frames_from_device + 2
        );
        assert_eq!(node.stats().datagrams_sent, before.datagrams_sent + 3);
        let traffic = node.peers().get(peer(1)).unwrap().traffic;
        assert_eq!(traffic.tx_datagrams, traffic_before.tx_datagrams + 2);
        assert_eq!(traffic.tx_bytes, traffic_before.tx_bytes + 216);

        // Refreshing a MAC does not move the generation; a new MAC and a new peer do.
        let token = node.config().token;
        let mut incoming = vec![0u8; 200];
        let len = wire::emit_frame(token, &frame(local, remote, 60), &mut incoming).unwrap();
        node.on_datagram(now, peer(1), &mut incoming[..len])
            .unwrap();
        assert_eq!(node.forward_generation(), generation);
        let len =
            wire::emit_frame(token, &frame(local, [2, 0, 0, 0, 0, 3], 60), &mut incoming).unwrap();
        node.on_datagram(now, peer(2), &mut incoming[..len])
            .unwrap();
        assert_ne!(node.forward_generation(), generation);
        let view = Arc::new(node.forward_view());
        lane.set_view(view);
        let sent = send_through_lane(&mut lane, now, &frame([2, 0, 0, 0, 0, 3], local, 100));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, peer(2));
    }

    /// A keyed node with `peers` verified peers that sealed their datagrams with `remote`;
    /// the first one has sent us a frame from `mac`.
    fn keyed_node_with_peers(
        peers: u8,
        mac: [u8; 6],
        remote: &Sealer,
        now: Instant,
    ) -> Node<Recorder, Sink> {
        let token = Token::new(7).unwrap();
        let mut config = Config::new(token);
        config.keyed = Some(crate::node::Keyed {
            key: crate::crypto::Key::from_bytes([9; 32]),
            session: [1; crypto::SESSION_LEN],
        });
        let mut node = Node::new(config, Recorder::default(), Sink, Instant::ZERO);
        let seal = |clear: &[u8]| {
            let inner = clear.len() - TOKEN_LEN;
            let mut buf = vec![0u8; crypto::FRONT_LEN + inner + crypto::TAG_LEN];
            buf[crypto::FRONT_LEN..crypto::FRONT_LEN + inner].copy_from_slice(&clear[TOKEN_LEN..]);
            let range = remote
                .seal(token, &mut buf, crypto::FRONT_LEN, inner)
                .unwrap();
            buf[range].to_vec()
        };
        let mut get = [0u8; 8];
        wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
        let mut answer = [0u8; 10];
        let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
        for i in 1..=peers {
            node.on_datagram(now, peer(i), &mut seal(&get)).unwrap();
            node.on_datagram(now, peer(i), &mut seal(&answer[..answer_len]))
                .unwrap();
        }
        let mut incoming = vec![0u8; 200];
        let len =
            wire::emit_frame(token, &frame([2, 0, 0, 0, 0, 1], mac, 60), &mut incoming).unwrap();
        node.on_datagram(now, peer(1), &mut seal(&incoming[..len]))
            .unwrap();
        assert_eq!(node.peers().verified_len(), usize::from(peers));
        node
    }

    /// Opens `sent` with the network key of [`keyed_node_with_peers`]: (to, session,
    /// counter, opened bytes) each.
    fn open_all(sent: &[(SocketAddr, Vec<u8>)]) -> Vec<(SocketAddr, Vec<u8>, u64, Vec<u8>)> {
        sent.iter()
            .map(|(to, sealed)| {
                // One opener each: a flood sends one sealed datagram to every peer.
                let mut opener = crypto::Opener::new(&crate::crypto::Key::from_bytes([9; 32]), 1);
                let session = sealed[TOKEN_LEN + 1..TOKEN_LEN + 1 + crypto::SESSION_LEN].to_vec();
                let at = TOKEN_LEN + 1 + crypto::SESSION_LEN;
                let counter = u64::from_be_bytes(sealed[at..at + 8].try_into().unwrap());
                let mut buf = sealed.clone();
                let range = opener.open(&mut buf).expect("a lane's datagram opens");
                (*to, session, counter, buf[range].to_vec())
            })
            .collect()
    }

    #[test]
    fn a_keyed_lane_seals_what_the_node_seals_in_the_node_s_session_with_counters_of_its_own() {
        let now = Instant::from_secs(1);
        let mac = [2, 0, 0, 0, 0, 2];
        let remote = Sealer::new(&crate::crypto::Key::from_bytes([9; 32]), [2; 16]);
        let mut node = keyed_node_with_peers(3, mac, &remote, now);
        let view = Arc::new(node.forward_view());
        assert!(view.is_sealed());
        let mut lane = Lane::new(Recorder::default(), view, now);
        let local = [2, 0, 0, 0, 0, 1];
        let mut counters = Vec::new();
        for f in [
            frame(mac, local, 1400),                    // known: unicast to peer 1
            frame([2, 0, 0, 0, 0, 9], local, 60),       // unknown: flooded
            frame([0xff; 6], local, 342),               // broadcast: flooded
            frame([0x33, 0x33, 0, 0, 0, 1], local, 86), // multicast: flooded
        ] {
            let by_node = open_all(&send_through_node(&mut node, now, &f));
            let by_lane = open_all(&send_through_lane(&mut lane, now, &f));
            assert!(!by_node.is_empty());
            assert_eq!(by_lane.len(), by_node.len());
            for (n, l) in by_node.iter().zip(&by_lane) {
                assert_eq!(l.0, n.0, "same receiver");
                assert_eq!(l.1, n.1, "the node's one session");
                assert_eq!(l.1, vec![1; crypto::SESSION_LEN]);
                assert_eq!(l.3, n.3, "same clear datagram");
                assert!(l.3.ends_with(&f), "the frame itself");
            }
            // A flood is one sealed datagram (one counter) sent to every peer.
            for sent in [&by_node, &by_lane] {
                assert!(sent.iter().all(|d| d.2 == sent[0].2));
                counters.push(sent[0].2);
            }
        }
        let all = counters.len();
        counters.sort_unstable();
        counters.dedup();
        assert_eq!(counters.len(), all, "no counter used twice");
        assert_eq!(all, 8);
    }

    #[test]
    fn a_sealer_shared_by_threads_never_uses_a_counter_twice() {
        let sealer = Arc::new(Sealer::new(
            &crate::crypto::Key::from_bytes([9; 32]),
            [3; 16],
        ));
        let token = Token::new(7).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let sealer = Arc::clone(&sealer);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    (0..2000)
                        .map(|_| {
                            let range = sealer.seal(token, &mut buf, crypto::FRONT_LEN, 8).unwrap();
                            let at = range.start + TOKEN_LEN + 1 + crypto::SESSION_LEN;
                            u64::from_be_bytes(buf[at..at + 8].try_into().unwrap())
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..8000).collect::<Vec<u64>>());
        assert_eq!(sealer.sealed(), 8000);
    }

    #[test]
    fn with_per_node_keys_a_peer_without_a_session_is_counted_and_handed_back_for_a_handshake() {
        use crate::identity::{IdentityConfig, SecretKey, TrustedKeys};
        let token = Token::new(7).unwrap();
        let mut config = Config::new(token);
        let mut trusted = TrustedKeys::new();
        trusted.insert(SecretKey::from_random([6; 32]).public_key(), "other");
        config.identity = Some(crate::node::IdentitySetup {
            secret: SecretKey::from_random([5; 32]),
            trusted,
            config: IdentityConfig::new(Instant::ZERO, 1, 5),
        });
        let now = Instant::from_secs(1);
        let mut node = Node::new(config, Recorder::default(), Sink, Instant::ZERO);
        let view = node.forward_view();
        assert!(view.is_sealed());
        assert_eq!(view.per_peer().map(PeerSealers::len), Some(0));

        // A verified peer with no session (it expired, say): nothing is sent to it.
        let view = ForwardView {
            peers: vec![peer(1)],
            ..view
        };
        let mut lane = Lane::new(Recorder::default(), Arc::new(view), now);
        for f in [
            frame([0xff; 6], [2, 0, 0, 0, 0, 1], 60),
            frame([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1], 60),
        ] {
            assert!(send_through_lane(&mut lane, now, &f).is_empty());
        }
        let counts = lane.take_counts();
        assert_eq!(counts.no_session, 2);
        assert_eq!(counts.wanted, vec![peer(1)], "once");
        assert_eq!(counts.stats.frames_flooded, 2);
        assert_eq!(counts.stats.datagrams_sent, 0);

        // The node counts them and starts a handshake with the peer at once.
        node.socket_mut().0.clear();
        node.absorb_lane(&counts);
        assert_eq!(node.sessions().map(|s| s.stats().no_session), Some(2));
        let sent = std::mem::take(&mut node.socket_mut().0);
        assert_eq!(sent.len(), 1, "one initiation: {sent:?}");
        assert_eq!(sent[0].0, peer(1));

        // An empty view sends nothing at all.
        let mut lane = Lane::new(
            Recorder::default(),
            Arc::new(ForwardView::empty(token)),
            now,
        );
        let mut buf = PacketBuf::new();
        let f = frame([0xff; 6], [2, 0, 0, 0, 0, 1], 60);
        buf.frame_room()[..f.len()].copy_from_slice(&f);
        assert_eq!(
            lane.on_frame(now, &mut buf, f.len()),
            Err(DropReason::NoPeers)
        );
        assert!(lane.tx.socket.0.is_empty());
        assert_eq!(lane.take_counts().stats.drops_of(DropReason::NoPeers), 1);
    }
}
