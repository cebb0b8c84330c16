//! The kernel path's two programs, written as BPF instructions (no compiler needed at build
//! or run time): `encap` on the tap's egress and `decap` on the underlay's ingress. What they
//! do, and the map layouts they share with the daemon, are in the module doc of
//! [`crate::kpath`]; this file only spells them out.
//!
//! Stack layout (offsets from the frame pointer r10), the same in both programs:
//! - `HDR` (-66 .. -3, 64 bytes): outer Ethernet (14), IPv4 without options (20), UDP (8),
//!   the 7-byte token and the switch byte (8), the frame's own Ethernet header (14);
//! - `MAC_KEY` (-80, 8 bytes): a key of the MAC map;
//! - `PEER_KEY` (-88, 8 bytes): a key of the peer map.

use super::{FLAGS_ENCAP, HDR_ROOM};

// Offsets in the stack (from r10).
const HDR: i16 = -66;
const IP: i16 = HDR + 14; // -52
const UDP: i16 = IP + 20; // -32
const SHIM: i16 = UDP + 8; // -24
const INNER: i16 = SHIM + 8; // -16
const MAC_KEY: i16 = -80;
const PEER_KEY: i16 = -88;

const LOCAL_KEY: i16 = -92;
/// The first 8 bytes of a super-frame's own IP header (-104, 8 bytes).
const INNER_IP: i16 = -104;

// Fields of `struct __sk_buff`.
const SKB_LEN: i16 = 0;
const SKB_PKT_TYPE: i16 = 4;
const SKB_PROTOCOL: i16 = 16;
const SKB_VLAN_PRESENT: i16 = 20;
const SKB_IFINDEX: i16 = 40;
const SKB_GSO_SIZE: i16 = 176;

// Fields of a peer map value (see `crate::kpath`'s `PEER_VALUE`).
const PV_IFINDEX: i16 = 0;
const PV_LOCAL: i16 = 4;
const PV_TX_FRAMES: i16 = 8;
const PV_TX_BYTES: i16 = 16;
const PV_RX_FRAMES: i16 = 24;
const PV_RX_BYTES: i16 = 32;
/// Non-zero once the peer's daemon sent us a control message with a UDP checksum of 0: its
/// kernel path takes frames (such a daemon sends without checksums), so its `decap` takes our
/// frames, and our super-frames whole.
const PV_KERNEL_PEER: i16 = 40;
// Fields of a MAC map value.
const MV_PEER: i16 = 0;
const MV_SEEN_AT: i16 = 8;
/// How often at most `decap` writes a MAC entry's last-seen time (1 s).
const SEEN_EVERY_NS: u64 = 1_000_000_000;

// Helpers.
const MAP_LOOKUP: i32 = 1;
const KTIME_GET_NS: i32 = 5;
const SKB_STORE_BYTES: i32 = 9;
const REDIRECT: i32 = 23;
const SKB_LOAD_BYTES: i32 = 26;
const CSUM_DIFF: i32 = 28;
const SKB_ADJUST_ROOM: i32 = 50;
const REDIRECT_NEIGH: i32 = 152;

/// `BPF_ADJ_ROOM_MAC`.
const ADJ_ROOM_MAC: i32 = 1;
/// `BPF_F_ADJ_ROOM_FIXED_GSO`.
const FIXED_GSO: i32 = 1;
/// `BPF_F_INGRESS` for `bpf_redirect`.
const F_INGRESS: i32 = 1;
/// `TCX_NEXT` (`TC_ACT_UNSPEC`): the packet goes on as if this program had not run: to the
/// programs and filters after it, then to the daemon or the stack. (`TC_ACT_OK`, 0, would
/// end the chain there.)
const ACT_NEXT: i32 = -1;
/// `TC_ACT_SHOT`: dropped.
const ACT_SHOT: i32 = 2;

/// `PACKET_HOST`: a packet addressed to this host's MAC.
const PACKET_HOST: i32 = 0;

/// Two bytes as a 16-bit load from memory shows them (the host's byte order).
const fn ne16(bytes: [u8; 2]) -> i32 {
    u16::from_ne_bytes(bytes) as i32
}
/// A 16-bit value in network order, as a 16-bit load shows it (and as
/// `__sk_buff.protocol` holds an EtherType).
const fn be16(value: u16) -> i32 {
    ne16(value.to_be_bytes())
}
const ETH_IPV4: i32 = be16(0x0800);
const ETH_IPV6: i32 = be16(0x86dd);

// Registers.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;
const FP: u8 = 10;

/// Where a jump goes: a number of instructions ahead, a label further on, or one of the two
/// exits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum To {
    Ahead(i16),
    Label(u8),
    Pass,
    Drop,
}

/// A program being written: instructions, the jumps to patch at the end, and where the
/// labels are.
#[derive(Default)]
struct Asm {
    insns: Vec<u64>,
    exits: Vec<(usize, To)>,
    labels: Vec<(u8, usize)>,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from((dst & 0xf) | (src & 0xf) << 4) << 8
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> &mut Asm {
        self.insns.push(insn(code, dst, src, off, imm));
        self
    }
    fn mov(&mut self, dst: u8, src: u8) -> &mut Asm {
        self.op(0xbf, dst, src, 0, 0)
    }
    fn movk(&mut self, dst: u8, imm: i32) -> &mut Asm {
        self.op(0xb7, dst, 0, 0, imm)
    }
    fn addk(&mut self, dst: u8, imm: i32) -> &mut Asm {
        self.op(0x07, dst, 0, 0, imm)
    }
    fn add(&mut self, dst: u8, src: u8) -> &mut Asm {
        self.op(0x0f, dst, src, 0, 0)
    }
    fn and(&mut self, dst: u8, src: u8) -> &mut Asm {
        self.op(0x5f, dst, src, 0, 0)
    }
    fn andk(&mut self, dst: u8, imm: i32) -> &mut Asm {
        self.op(0x57, dst, 0, 0, imm)
    }
    fn xork(&mut self, dst: u8, imm: i32) -> &mut Asm {
        self.op(0xa7, dst, 0, 0, imm)
    }
    fn rshk(&mut self, dst: u8, imm: i32) -> &mut Asm {
        self.op(0x77, dst, 0, 0, imm)
    }
    /// dst = htobe16(dst)
    fn be16(&mut self, dst: u8) -> &mut Asm {
        self.op(0xdc, dst, 0, 0, 16)
    }
    /// 64-bit immediate (two instruction slots).
    fn lddw(&mut self, dst: u8, imm: u64) -> &mut Asm {
        self.op(0x18, dst, 0, 0, imm as u32 as i32);
        self.op(0, 0, 0, 0, (imm >> 32) as u32 as i32)
    }
    /// dst = the map with fd `fd` (`BPF_PSEUDO_MAP_FD`).
    fn ld_map(&mut self, dst: u8, fd: i32) -> &mut Asm {
        self.op(0x18, dst, 1, 0, fd);
        self.op(0, 0, 0, 0, 0)
    }
    fn ldxb(&mut self, dst: u8, src: u8, off: i16) -> &mut Asm {
        self.op(0x71, dst, src, off, 0)
    }
    fn ldxh(&mut self, dst: u8, src: u8, off: i16) -> &mut Asm {
        self.op(0x69, dst, src, off, 0)
    }
    fn ldxw(&mut self, dst: u8, src: u8, off: i16) -> &mut Asm {
        self.op(0x61, dst, src, off, 0)
    }
    fn ldxdw(&mut self, dst: u8, src: u8, off: i16) -> &mut Asm {
        self.op(0x79, dst, src, off, 0)
    }
    fn stxh(&mut self, dst: u8, off: i16, src: u8) -> &mut Asm {
        self.op(0x6b, dst, src, off, 0)
    }
    fn stxw(&mut self, dst: u8, off: i16, src: u8) -> &mut Asm {
        self.op(0x63, dst, src, off, 0)
    }
    fn stxdw(&mut self, dst: u8, off: i16, src: u8) -> &mut Asm {
        self.op(0x7b, dst, src, off, 0)
    }
    fn sth(&mut self, dst: u8, off: i16, imm: i32) -> &mut Asm {
        self.op(0x6a, dst, 0, off, imm)
    }
    fn stdw(&mut self, dst: u8, off: i16, imm: i32) -> &mut Asm {
        self.op(0x7a, dst, 0, off, imm)
    }
    /// *(u64 *)(dst + off) += src, atomically.
    fn atomic_add(&mut self, dst: u8, off: i16, src: u8) -> &mut Asm {
        self.op(0xdb, dst, src, off, 0)
    }
    fn call(&mut self, helper: i32) -> &mut Asm {
        self.op(0x85, 0, 0, 0, helper)
    }
    fn exit(&mut self) -> &mut Asm {
        self.op(0x95, 0, 0, 0, 0)
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: To) -> &mut Asm {
        match to {
            To::Ahead(n) => self.op(code, dst, src, n, imm),
            exit => {
                self.exits.push((self.insns.len(), exit));
                self.op(code, dst, src, 0, imm)
            }
        }
    }
    fn jeqk(&mut self, dst: u8, imm: i32, to: To) -> &mut Asm {
        self.jump(0x15, dst, 0, imm, to)
    }
    fn jnek(&mut self, dst: u8, imm: i32, to: To) -> &mut Asm {
        self.jump(0x55, dst, 0, imm, to)
    }
    fn jlek(&mut self, dst: u8, imm: i32, to: To) -> &mut Asm {
        self.jump(0xb5, dst, 0, imm, to)
    }
    fn jne(&mut self, dst: u8, src: u8, to: To) -> &mut Asm {
        self.jump(0x5d, dst, src, 0, to)
    }
    fn jgt(&mut self, dst: u8, src: u8, to: To) -> &mut Asm {
        self.jump(0x2d, dst, src, 0, to)
    }
    fn ja(&mut self, to: To) -> &mut Asm {
        self.jump(0x05, 0, 0, 0, to)
    }
    /// r(dst) = the stack address fp + off.
    fn stack_ptr(&mut self, dst: u8, off: i16) -> &mut Asm {
        self.mov(dst, FP).addk(dst, i32::from(off))
    }
    /// Copies 6 bytes (a MAC address) from the stack at `from` to the stack at `to`, two
    /// bytes at a time (both 2-aligned), through r2.
    fn copy_mac(&mut self, from: i16, to: i16) -> &mut Asm {
        for i in 0..3 {
            self.ldxh(R2, FP, from + 2 * i).stxh(FP, to + 2 * i, R2);
        }
        self
    }
    /// Marks the place of label `n` (the next instruction).
    fn label(&mut self, n: u8) -> &mut Asm {
        self.labels.push((n, self.insns.len()));
        self
    }

    /// Ends the program with the two exits and patches the jumps to them and to the labels
    /// (a jump to a label never set goes to pass).
    fn finish(mut self) -> Vec<u64> {
        let pass = self.insns.len();
        self.movk(R0, ACT_NEXT).exit();
        let drop = self.insns.len();
        self.movk(R0, ACT_SHOT).exit();
        for (at, to) in std::mem::take(&mut self.exits) {
            let target = match to {
                To::Drop => drop,
                To::Label(n) => self
                    .labels
                    .iter()
                    .find(|(m, _)| *m == n)
                    .map_or(pass, |(_, i)| *i),
                _ => pass,
            };
            let off = i16::try_from(target - at - 1).unwrap_or(i16::MAX);
            if let Some(word) = self.insns.get_mut(at) {
                *word = (*word & !(0xffff << 16)) | u64::from(off as u16) << 16;
            }
        }
        self.insns
    }
}

/// The token and the frame's switch byte (0) as the 8 bytes after the UDP header, read as
/// one 64-bit word (with a token of seven 0xff bytes: the mask of the token).
pub(super) fn shim_word(token: [u8; 7]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..7].copy_from_slice(&token);
    u64::from_ne_bytes(bytes)
}

/// The tap's egress program: an untagged IPv4 or IPv6 frame to a unicast MAC the MAC map
/// places behind a peer the peer map holds (with an interface learnt) is wrapped in the
/// frame packet (outer IPv4 and UDP from `port` to the peer's, the token, switch byte 0) and
/// sent out of that interface (`bpf_redirect_neigh`: the kernel routes it and fills in the
/// Ethernet addresses). Anything else goes on to the daemon, unchanged.
pub(super) fn encap(macs: i32, peers: i32, port: u16, token: [u8; 7]) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R6, R1)
        .ldxw(R2, R6, SKB_PROTOCOL)
        .jeqk(R2, ETH_IPV4, To::Ahead(1))
        .jnek(R2, ETH_IPV6, To::Pass)
        .ldxw(R2, R6, SKB_VLAN_PRESENT)
        .jnek(R2, 0, To::Pass)
        // The frame's Ethernet header, to the inner part of HDR.
        .mov(R1, R6)
        .movk(R2, 0)
        .stack_ptr(R3, INNER)
        .movk(R4, 14)
        .call(SKB_LOAD_BYTES)
        .jnek(R0, 0, To::Pass)
        // Group destinations (broadcast, multicast) are flooded by the daemon.
        .ldxb(R2, FP, INNER)
        .andk(R2, 1)
        .jnek(R2, 0, To::Pass)
        .copy_mac(INNER, MAC_KEY)
        .sth(FP, MAC_KEY + 6, 0)
        .ld_map(R1, macs)
        .stack_ptr(R2, MAC_KEY)
        .call(MAP_LOOKUP)
        .jeqk(R0, 0, To::Pass)
        .ldxdw(R2, R0, MV_PEER)
        .stxdw(FP, PEER_KEY, R2)
        .ld_map(R1, peers)
        .stack_ptr(R2, PEER_KEY)
        .call(MAP_LOOKUP)
        .jeqk(R0, 0, To::Pass)
        .mov(R7, R0)
        .ldxw(R8, R7, PV_IFINDEX)
        // Only to a peer with a kernel path: anyone else may not complete the checksums the
        // kernel left partial (over a veth), nor take a super-frame whole.
        .ldxdw(R2, R7, PV_KERNEL_PEER)
        .jeqk(R2, 0, To::Pass)
        .ldxw(R9, R6, SKB_LEN)
        // Room for the outer headers between the frame's Ethernet header and its payload;
        // the kernel marks the packet as UDP-tunnelled, so that a super-frame is cut into
        // datagrams, each with these headers, wherever it has to be.
        .mov(R1, R6)
        .movk(R2, HDR_ROOM)
        .movk(R3, ADJ_ROOM_MAC)
        .lddw(R4, FLAGS_ENCAP)
        .call(SKB_ADJUST_ROOM)
        .jnek(R0, 0, To::Pass)
        // Outer Ethernet: addresses left to bpf_redirect_neigh, EtherType IPv4.
        .sth(FP, HDR, 0)
        .stdw(FP, HDR + 2, 0)
        .sth(FP, HDR + 10, 0)
        .sth(FP, HDR + 12, ETH_IPV4)
        // IPv4: version 4, 5 words, length, no id, don't fragment, TTL 64, UDP.
        .sth(FP, IP, ne16([0x45, 0]))
        .mov(R2, R9)
        .addk(R2, 36)
        .jlek(R2, 0xffff, To::Ahead(1))
        .movk(R2, 0xffff)
        .be16(R2)
        .stxh(FP, IP + 2, R2)
        .sth(FP, IP + 4, 0)
        .sth(FP, IP + 6, be16(0x4000))
        .sth(FP, IP + 8, ne16([64, 17]))
        .sth(FP, IP + 10, 0)
        .ldxw(R2, R7, PV_LOCAL)
        .stxw(FP, IP + 12, R2)
        .ldxw(R2, FP, PEER_KEY)
        .stxw(FP, IP + 16, R2)
        .movk(R1, 0)
        .movk(R2, 0)
        .stack_ptr(R3, IP)
        .movk(R4, 20)
        .movk(R5, 0)
        .call(CSUM_DIFF)
        .mov(R2, R0)
        .rshk(R2, 16)
        .andk(R0, 0xffff)
        .add(R0, R2)
        .mov(R2, R0)
        .rshk(R2, 16)
        .andk(R0, 0xffff)
        .add(R0, R2)
        .xork(R0, 0xffff)
        .andk(R0, 0xffff)
        .stxh(FP, IP + 10, R0)
        // UDP: our port to the peer's, length, no checksum (allowed over IPv4).
        .sth(FP, UDP, be16(port))
        .ldxh(R2, FP, PEER_KEY + 4)
        .stxh(FP, UDP + 2, R2)
        .mov(R2, R9)
        .addk(R2, 16)
        .jlek(R2, 0xffff, To::Ahead(1))
        .movk(R2, 0xffff)
        .be16(R2)
        .stxh(FP, UDP + 4, R2)
        .sth(FP, UDP + 6, 0)
        .lddw(R2, shim_word(token))
        .stxdw(FP, SHIM, R2)
        .mov(R1, R6)
        .movk(R2, 0)
        .stack_ptr(R3, HDR)
        .movk(R4, 64)
        .movk(R5, 0)
        .call(SKB_STORE_BYTES)
        .jnek(R0, 0, To::Drop)
        .movk(R2, 1)
        .atomic_add(R7, PV_TX_FRAMES, R2)
        .atomic_add(R7, PV_TX_BYTES, R9)
        .mov(R1, R8)
        .movk(R2, 0)
        .movk(R3, 0)
        .movk(R4, 0)
        .call(REDIRECT_NEIGH)
        .exit();
    a.finish()
}

/// The underlay's ingress program. It takes an IPv4 datagram only if all of these hold:
/// addressed to this host (`PACKET_HOST`, no VLAN tag left on it, the destination address
/// one of `locals`), no IP options, not a fragment, to `port`, with a UDP checksum of 0 (what
/// a kernel path sends; a checksummed datagram goes through the kernel's UDP input, which
/// checks it), with our token, from a peer the peer map holds, on the interface the route to
/// it leaves through. A control message such as that marks the peer as one whose kernel path
/// takes frames, and goes on to the daemon. A frame packet is taken if its IP and UDP lengths
/// are those of the packet (a super-frame only with `take_super`, and only if its frame's own
/// IP length covers it all: one a kernel path on this host sent whole across a veth, not a
/// run of datagrams the kernel merged), and it holds an untagged IPv4 or IPv6 frame to a
/// unicast MAC, from a MAC the MAC map places behind that same peer. Then the outer headers
/// come off, the frame goes into the tap as if the daemon had written it, and the MAC entry
/// notes when (for the daemon, which refreshes its own entry from it). Anything else goes on
/// to the programs after this one, then to the kernel's UDP socket and the daemon,
/// unchanged.
#[allow(clippy::too_many_arguments)]
pub(super) fn decap(
    macs: i32,
    peers: i32,
    locals: i32,
    port: u16,
    token: [u8; 7],
    tap: u32,
    take_super: bool,
) -> Vec<u64> {
    let mut a = Asm::default();
    a.mov(R6, R1)
        .ldxw(R2, R6, SKB_PKT_TYPE)
        .jnek(R2, PACKET_HOST, To::Pass)
        .ldxw(R2, R6, SKB_VLAN_PRESENT)
        .jnek(R2, 0, To::Pass)
        // R9 = 1 for a super-frame (see below); none when this node takes none.
        .movk(R9, 0)
        .ldxw(R2, R6, SKB_GSO_SIZE)
        .jeqk(R2, 0, To::Ahead(2))
        .jeqk(R9, i32::from(take_super), To::Pass)
        .movk(R9, 1)
        .ldxw(R2, R6, SKB_PROTOCOL)
        .jnek(R2, ETH_IPV4, To::Pass)
        // The headers up to the switch byte (a control message may be shorter than a frame's
        // headers).
        .mov(R1, R6)
        .movk(R2, 0)
        .stack_ptr(R3, HDR)
        .movk(R4, HDR_ROOM)
        .call(SKB_LOAD_BYTES)
        .jnek(R0, 0, To::Pass)
        .ldxb(R2, FP, IP)
        .jnek(R2, 0x45, To::Pass)
        .ldxb(R2, FP, IP + 9)
        .jnek(R2, 17, To::Pass)
        // More fragments, or a fragment offset.
        .ldxh(R2, FP, IP + 6)
        .andk(R2, be16(0x3fff))
        .jnek(R2, 0, To::Pass)
        .ldxh(R2, FP, UDP + 2)
        .jnek(R2, be16(port), To::Pass)
        .ldxh(R2, FP, UDP + 6)
        .jnek(R2, 0, To::Pass)
        // For one of our addresses.
        .ldxw(R2, FP, IP + 16)
        .stxw(FP, LOCAL_KEY, R2)
        .ld_map(R1, locals)
        .stack_ptr(R2, LOCAL_KEY)
        .call(MAP_LOOKUP)
        .jeqk(R0, 0, To::Pass)
        // Our token (any message: the daemon's keepalives mark a kernel peer too).
        .ldxdw(R2, FP, SHIM)
        .lddw(R3, shim_word([0xff; 7]))
        .and(R2, R3)
        .lddw(R3, shim_word(token))
        .jne(R2, R3, To::Pass)
        // The sender, as a peer map key.
        .ldxw(R2, FP, IP + 12)
        .stxw(FP, PEER_KEY, R2)
        .ldxh(R2, FP, UDP)
        .stxh(FP, PEER_KEY + 4, R2)
        .sth(FP, PEER_KEY + 6, 0)
        .ld_map(R1, peers)
        .stack_ptr(R2, PEER_KEY)
        .call(MAP_LOOKUP)
        .jeqk(R0, 0, To::Pass)
        .mov(R7, R0)
        // From the interface the route to the peer leaves through, as a strict reverse
        // path filter would have it (a datagram with the peer's address that comes in
        // elsewhere is the daemon's, and the kernel's rp_filter, to judge).
        .ldxw(R2, R6, SKB_IFINDEX)
        .ldxw(R3, R7, PV_IFINDEX)
        .jne(R2, R3, To::Pass)
        // A control message without a checksum: from the daemon of a peer whose kernel path
        // takes frames (a frame without one only says that the peer sends through a kernel
        // path). Marked, and left to the daemon.
        .ldxb(R2, FP, SHIM + 7)
        .jeqk(R2, 0, To::Ahead(2))
        .stdw(R7, PV_KERNEL_PEER, 1)
        .ja(To::Pass)
        // A frame packet: IP length = the packet's past the Ethernet header, UDP length =
        // past the IP header (a super-frame's may say less: at most 65535).
        .jnek(R9, 0, To::Ahead(9))
        .ldxw(R3, R6, SKB_LEN)
        .ldxh(R2, FP, IP + 2)
        .be16(R2)
        .addk(R2, 14)
        .jne(R2, R3, To::Pass)
        .ldxh(R2, FP, UDP + 4)
        .be16(R2)
        .addk(R2, 34)
        .jne(R2, R3, To::Pass)
        // The frame's Ethernet header.
        .mov(R1, R6)
        .movk(R2, HDR_ROOM)
        .stack_ptr(R3, INNER)
        .movk(R4, 14)
        .call(SKB_LOAD_BYTES)
        .jnek(R0, 0, To::Pass)
        // Group destinations go to the daemon (its --broadcast-limit).
        .ldxb(R2, FP, INNER)
        .andk(R2, 1)
        .jnek(R2, 0, To::Pass)
        .ldxh(R2, FP, INNER + 12)
        .jeqk(R2, ETH_IPV4, To::Ahead(1))
        .jnek(R2, ETH_IPV6, To::Pass)
        // A super-frame is one packet only if the frame's own IP length says so: one that a
        // kernel path on this host sent whole, across a veth. A run of datagrams the kernel
        // merged (its first frame's length is its own) is the daemon's.
        .jeqk(R9, 0, To::Label(0))
        .mov(R1, R6)
        .movk(R2, 64)
        .stack_ptr(R3, INNER_IP)
        .movk(R4, 8)
        .call(SKB_LOAD_BYTES)
        .jnek(R0, 0, To::Pass)
        .ldxw(R3, R6, SKB_LEN)
        .ldxh(R2, FP, INNER + 12)
        .jnek(R2, ETH_IPV4, To::Ahead(4))
        .ldxh(R2, FP, INNER_IP + 2)
        .be16(R2)
        .addk(R2, 64)
        .ja(To::Ahead(3))
        .ldxh(R2, FP, INNER_IP + 4)
        .be16(R2)
        .addk(R2, 64 + 40)
        .jne(R2, R3, To::Pass)
        .label(0)
        .copy_mac(INNER + 6, MAC_KEY)
        .sth(FP, MAC_KEY + 6, 0)
        .ld_map(R1, macs)
        .stack_ptr(R2, MAC_KEY)
        .call(MAP_LOOKUP)
        .jeqk(R0, 0, To::Pass)
        .mov(R8, R0)
        .ldxdw(R2, R8, MV_PEER)
        .ldxdw(R3, FP, PEER_KEY)
        .jne(R2, R3, To::Pass)
        // When the MAC was last seen, for the daemon (written at most once a second).
        .call(KTIME_GET_NS)
        .ldxdw(R2, R8, MV_SEEN_AT)
        .lddw(R3, SEEN_EVERY_NS)
        .add(R2, R3)
        .jgt(R2, R0, To::Ahead(1))
        .stxdw(R8, MV_SEEN_AT, R0)
        .ldxw(R9, R6, SKB_LEN)
        .addk(R9, -HDR_ROOM)
        .mov(R1, R6)
        .movk(R2, -HDR_ROOM)
        .movk(R3, ADJ_ROOM_MAC)
        .movk(R4, FIXED_GSO)
        .call(SKB_ADJUST_ROOM)
        .jnek(R0, 0, To::Pass)
        .mov(R1, R6)
        .movk(R2, 0)
        .stack_ptr(R3, INNER)
        .movk(R4, 14)
        .movk(R5, 0)
        .call(SKB_STORE_BYTES)
        .jnek(R0, 0, To::Drop)
        .movk(R2, 1)
        .atomic_add(R7, PV_RX_FRAMES, R2)
        .atomic_add(R7, PV_RX_BYTES, R9)
        .movk(R1, tap as i32)
        .movk(R2, F_INGRESS)
        .call(REDIRECT)
        .exit();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jumps_in_range(p: &[u64]) {
        for (i, &w) in p.iter().enumerate() {
            let code = (w & 0xff) as u8;
            // Conditional and unconditional jumps (class JMP, not call or exit).
            if code & 0x07 == 0x05 && code != 0x85 && code != 0x95 {
                let off = ((w >> 16) & 0xffff) as u16 as i16;
                let target = i as i64 + 1 + i64::from(off);
                assert!(
                    (0..p.len() as i64).contains(&target),
                    "jump at {i} to {target} of {}",
                    p.len()
                );
            }
        }
    }

    #[test]
    fn both_programs_end_in_exits_and_jump_inside() {
        let token = [0, 0, 0, 0, 0, 0, 1];
        for p in [
            encap(3, 4, 3210, token),
            decap(3, 4, 5, 3210, token, 7, true),
        ] {
            jumps_in_range(&p);
            assert_eq!(p.last().map(|w| w & 0xff), Some(0x95));
            assert!(p.len() < 200);
        }
    }

    #[test]
    fn the_shim_word_is_the_token_then_a_zero_switch_byte() {
        let w = shim_word([1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(w.to_ne_bytes(), [1, 2, 3, 4, 5, 6, 7, 0]);
    }

    #[test]
    fn a_jump_to_pass_lands_on_return_ok() {
        let p = decap(3, 4, 5, 3210, [0; 7], 7, true);
        // The third instruction jumps to pass when the packet is not for this host.
        let w = p[2];
        let off = ((w >> 16) & 0xffff) as u16 as i16;
        let target = (3 + off) as usize;
        assert_eq!(p[target] & 0xff, 0xb7, "mov r0, imm");
        assert_eq!((p[target] >> 32) as i32, ACT_NEXT);
    }
}
