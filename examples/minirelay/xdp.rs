//! The AF_XDP variant of the floor relay (see the crate doc): the UDP underlay taken away from
//! the kernel's IP stack. An XDP program on the underlay interface hands every IPv4 UDP
//! datagram to the relay's port straight to an AF_XDP socket (everything else passes to the
//! kernel as before); the relay reads the datagram out of its own memory area (the UMEM) with no
//! system call, writes the payload to the tap, and sends by writing Ethernet, IPv4 and UDP
//! headers itself in front of a frame read from the tap and kicking the socket's send ring.
//!
//! Made for the benchmark's veth only: copy mode (a veth has no zero-copy), queue 0 (a veth has
//! one), no ARP (the peer's MAC is given), IPv4 without options, UDP checksum 0 (allowed for
//! IPv4). The program and the socket go away with the process (the XDP program is attached
//! through a BPF link, which the kernel detaches when its last fd closes).

use std::error::Error;
use std::ffi::CString;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::setsockopt;

use ethcloud::io::Device;
use ethcloud::offload::checksum;
use ethcloud::sys::tap::TapDevice;

/// After a packet, spin this long before sleeping (ethcloud's default `--busy-poll`).
const SPIN: Duration = Duration::from_micros(50);
/// UMEM chunks: the first half is posted for receiving, the second half is for sending.
const FRAMES: u32 = 256;
const FRAME_SIZE: u32 = 4096;
/// Entries of each of the four rings (a power of two).
const RING: u32 = 128;
/// Ethernet (14) + IPv4 without options (20) + UDP (8).
const HEADERS: usize = 42;

// bpf(2) commands, map and program types, attach type, helper.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;

/// A `union bpf_attr`, as raw bytes (every command's fields are written at their offsets).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, at: usize, value: u32) -> &mut Attr {
        self.0[at..at + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }
    fn u64(&mut self, at: usize, value: u64) -> &mut Attr {
        self.0[at..at + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<RawFd> {
    // SAFETY: `attr` is a valid, writable 128-byte `bpf_attr` for the whole call; the kernel
    // reads and writes only within the size given.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as RawFd)
    }
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// One BPF instruction: opcode, destination and source registers, offset, immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(dst | src << 4) << 8
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

/// The XDP program: IPv4 (no options) UDP to `port` goes to the AF_XDP socket in slot 0 of
/// `map`, everything else to the kernel.
fn program(map: RawFd, port: u16) -> Vec<u64> {
    const LDXW: u8 = 0x61; // dst = *(u32 *)(src + off)
    const LDXH: u8 = 0x69;
    const LDXB: u8 = 0x71;
    const MOVX: u8 = 0xbf; // dst = src
    const MOVK: u8 = 0xb7; // dst = imm
    const ADDK: u8 = 0x07; // dst += imm
    const JGTX: u8 = 0x2d; // if dst > src goto +off
    const JNEK: u8 = 0x55; // if dst != imm goto +off
    const LDDW: u8 = 0x18; // dst = 64-bit immediate (two instructions)
    const CALL: u8 = 0x85;
    const EXIT: u8 = 0x95;
    const PASS: i16 = i16::MAX; // patched below: jump to the final "return XDP_PASS"
    let mut p = vec![
        insn(LDXW, 2, 1, 0, 0), // r2 = ctx->data
        insn(LDXW, 3, 1, 4, 0), // r3 = ctx->data_end
        insn(MOVX, 4, 2, 0, 0),
        insn(ADDK, 4, 0, 0, HEADERS as i32),
        insn(JGTX, 4, 3, PASS, 0),                            // too short
        insn(LDXH, 5, 2, 12, 0),                              // EtherType (network order)
        insn(JNEK, 5, 0, PASS, 0x0008),                       // 0x0800 read little-endian
        insn(LDXB, 5, 2, 14, 0),                              // version and header length
        insn(JNEK, 5, 0, PASS, 0x45),                         // IPv4, no options
        insn(LDXB, 5, 2, 23, 0),                              // protocol
        insn(JNEK, 5, 0, PASS, 17),                           // UDP
        insn(LDXH, 5, 2, 36, 0),                              // destination port
        insn(JNEK, 5, 0, PASS, i32::from(port.swap_bytes())), // ours
        insn(LDDW, 1, 1, 0, map),                             // r1 = the map (BPF_PSEUDO_MAP_FD)
        0,
        insn(MOVK, 2, 0, 0, 0),        // key 0
        insn(MOVK, 3, 0, 0, XDP_PASS), // if the slot is empty: pass
        insn(CALL, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(EXIT, 0, 0, 0, 0),
    ];
    let pass = p.len();
    p.push(insn(MOVK, 0, 0, 0, XDP_PASS));
    p.push(insn(EXIT, 0, 0, 0, 0));
    // Only the jumps to "pass" carry the offset PASS.
    for (i, word) in p.iter_mut().enumerate() {
        if (*word >> 16) as u16 == PASS as u16 {
            let off = (pass - i - 1) as u16;
            *word = (*word & !(0xffff << 16)) | u64::from(off) << 16;
        }
    }
    p
}

/// Loads the program, attaches it to `ifindex` and returns (map, link): the socket goes into
/// the map, and the link keeps the program attached until it is closed.
fn attach(ifindex: u32, port: u16) -> Result<(OwnedFd, OwnedFd), Box<dyn Error>> {
    let map = owned(
        bpf(
            BPF_MAP_CREATE,
            Attr::new()
                .u32(0, BPF_MAP_TYPE_XSKMAP)
                .u32(4, 4)
                .u32(8, 4)
                .u32(12, 1),
        )
        .map_err(|e| format!("BPF_MAP_CREATE: {e}"))?,
    );
    let insns = program(map.as_raw_fd(), port);
    let license = CString::new("Dual MIT/GPL")?;
    let mut log = vec![0u8; 65_536];
    let prog = bpf(
        BPF_PROG_LOAD,
        Attr::new()
            .u32(0, BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .u32(24, 1)
            .u32(28, log.len() as u32)
            .u64(32, log.as_mut_ptr() as u64)
            .u32(68, BPF_XDP),
    )
    .map_err(|e| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(0);
        format!(
            "BPF_PROG_LOAD: {e}: {}",
            String::from_utf8_lossy(&log[..end])
        )
    })?;
    let prog = owned(prog);
    let link = owned(
        bpf(
            BPF_LINK_CREATE,
            Attr::new()
                .u32(0, prog.as_raw_fd() as u32)
                .u32(4, ifindex)
                .u32(8, BPF_XDP),
        )
        .map_err(|e| format!("BPF_LINK_CREATE: {e}"))?,
    );
    Ok((map, link))
}

/// One of the four rings shared with the kernel: producer and consumer indexes and the
/// entries, in memory mapped from the socket.
struct Ring {
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    entries: *mut u8,
    /// Bytes per entry: 8 (fill, completion) or 16 (receive, send).
    width: usize,
}

impl Ring {
    /// Maps ring `offset` of `fd`, described by `off`.
    fn map(fd: RawFd, off: &libc::xdp_ring_offset, offset: u64, width: usize) -> io::Result<Ring> {
        let len = off.desc as usize + RING as usize * width;
        // SAFETY: a fresh shared mapping of the ring the kernel set up at `offset` on `fd`,
        // `len` bytes as its offsets say; never unmapped (the process ends with it).
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                offset as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        // SAFETY: the offsets are within the mapping (the kernel gave them for this size), and
        // the indexes are 4-byte aligned u32s the kernel also reads and writes atomically.
        unsafe {
            Ok(Ring {
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                entries: base.add(off.desc as usize),
                width,
            })
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping, aligned (see `map`).
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as `producer`.
        unsafe { &*self.consumer }
    }

    fn entry(&self, index: u32) -> *mut u8 {
        // SAFETY: `index & (RING - 1)` is below the ring's entry count, within the mapping.
        unsafe { self.entries.add((index & (RING - 1)) as usize * self.width) }
    }

    /// As the producer (fill, send): appends an entry if there is room.
    fn push(&self, write: impl FnOnce(*mut u8)) -> bool {
        let prod = self.producer().load(Ordering::Relaxed);
        let cons = self.consumer().load(Ordering::Acquire);
        if prod.wrapping_sub(cons) >= RING {
            return false;
        }
        write(self.entry(prod));
        self.producer()
            .store(prod.wrapping_add(1), Ordering::Release);
        true
    }

    /// As the consumer (receive, completion): takes the next entry if there is one.
    fn pop<T>(&self, read: impl FnOnce(*mut u8) -> T) -> Option<T> {
        let cons = self.consumer().load(Ordering::Relaxed);
        let prod = self.producer().load(Ordering::Acquire);
        if cons == prod {
            return None;
        }
        let value = read(self.entry(cons));
        self.consumer()
            .store(cons.wrapping_add(1), Ordering::Release);
        Some(value)
    }
}

fn mac(text: &str) -> Result<[u8; 6], Box<dyn Error>> {
    let parts: Vec<u8> = text
        .trim()
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()?;
    parts
        .try_into()
        .map_err(|_| format!("not a MAC address: {text}").into())
}

/// Relays between `tap` and the AF_XDP socket on `iface` until `deadline` (the same spin,
/// yield and sleep policy as the epoll relay's `yield` mode).
pub fn run(
    tap: &mut TapDevice,
    iface: &str,
    local: SocketAddrV4,
    peer: SocketAddrV4,
    peer_mac: &str,
    deadline: Instant,
) -> Result<(), Box<dyn Error>> {
    let peer_mac = mac(peer_mac)?;
    let own_mac = mac(&std::fs::read_to_string(format!(
        "/sys/class/net/{iface}/address"
    ))?)?;
    let name = CString::new(iface)?;
    // SAFETY: `name` is a NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("no interface {iface}").into());
    }

    // SAFETY: plain socket(2).
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(format!("AF_XDP socket: {}", io::Error::last_os_error()).into());
    }
    let xsk = owned(fd);
    let fd = xsk.as_raw_fd();
    let umem_len = (FRAMES * FRAME_SIZE) as usize;
    // SAFETY: a fresh private anonymous mapping, never unmapped (the process ends with it).
    let umem = unsafe {
        libc::mmap(
            ptr::null_mut(),
            umem_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    if umem == libc::MAP_FAILED {
        return Err(io::Error::last_os_error().into());
    }
    let umem = umem.cast::<u8>();
    let reg = libc::xdp_umem_reg {
        addr: umem as u64,
        len: umem_len as u64,
        chunk_size: FRAME_SIZE,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    setsockopt(fd, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
        .map_err(|e| format!("XDP_UMEM_REG: {e}"))?;
    for ring in [
        libc::XDP_UMEM_FILL_RING,
        libc::XDP_UMEM_COMPLETION_RING,
        libc::XDP_RX_RING,
        libc::XDP_TX_RING,
    ] {
        setsockopt(fd, libc::SOL_XDP, ring, &RING).map_err(|e| format!("ring size: {e}"))?;
    }
    // SAFETY: an all-zero `xdp_mmap_offsets` is valid; it is filled by getsockopt below.
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: `off` and `len` are live and `len` is `off`'s size.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            (&mut off as *mut libc::xdp_mmap_offsets).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(format!("XDP_MMAP_OFFSETS: {}", io::Error::last_os_error()).into());
    }
    let fill = Ring::map(fd, &off.fr, libc::XDP_UMEM_PGOFF_FILL_RING, 8)?;
    let completion = Ring::map(fd, &off.cr, libc::XDP_UMEM_PGOFF_COMPLETION_RING, 8)?;
    let rx = Ring::map(fd, &off.rx, libc::XDP_PGOFF_RX_RING as u64, 16)?;
    let tx = Ring::map(fd, &off.tx, libc::XDP_PGOFF_TX_RING as u64, 16)?;

    // The first half of the chunks waits in the fill ring for received datagrams.
    for i in 0..FRAMES / 2 {
        let addr = u64::from(i * FRAME_SIZE);
        // SAFETY: a fill entry is one u64, within the ring (see `Ring::entry`).
        fill.push(|e| unsafe { e.cast::<u64>().write(addr) });
    }
    let mut free_tx: Vec<u64> = (FRAMES / 2..FRAMES)
        .map(|i| u64::from(i * FRAME_SIZE))
        .collect();

    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_COPY,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: 0,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: `sa` is a live sockaddr_xdp of the size given.
    let ret = unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_xdp).cast(),
            std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(format!("bind AF_XDP to {iface}: {}", io::Error::last_os_error()).into());
    }
    let (map, _link) = attach(ifindex, local.port())?;
    let key: u32 = 0;
    let value: u32 = fd as u32;
    bpf(
        BPF_MAP_UPDATE_ELEM,
        Attr::new()
            .u32(0, map.as_raw_fd() as u32)
            .u64(8, &key as *const u32 as u64)
            .u64(16, &value as *const u32 as u64),
    )
    .map_err(|e| format!("BPF_MAP_UPDATE_ELEM: {e}"))?;

    // The headers of every datagram sent; only the lengths and the IPv4 checksum change.
    let mut headers = [0u8; HEADERS];
    headers[0..6].copy_from_slice(&peer_mac);
    headers[6..12].copy_from_slice(&own_mac);
    headers[12..14].copy_from_slice(&[0x08, 0x00]);
    headers[14] = 0x45;
    headers[20] = 0x40; // don't fragment
    headers[22] = 64; // TTL
    headers[23] = 17; // UDP
    headers[26..30].copy_from_slice(&local.ip().octets());
    headers[30..34].copy_from_slice(&peer.ip().octets());
    headers[34..36].copy_from_slice(&local.port().to_be_bytes());
    headers[36..38].copy_from_slice(&peer.port().to_be_bytes());
    let from: Ipv4Addr = *peer.ip();

    let mut fds = [
        libc::pollfd {
            fd: tap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let mut last_packet = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        if now.duration_since(last_packet) > SPIN {
            // SAFETY: `fds` is a live array of two pollfds.
            unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
        }
        let mut moved = false;
        // Sent chunks the kernel is done with.
        // SAFETY: a completion entry is one u64 address, within the ring.
        while let Some(addr) = completion.pop(|e| unsafe { e.cast::<u64>().read() }) {
            free_tx.push(addr);
        }
        // Received datagrams: payload to the tap, chunk back to the fill ring.
        // SAFETY: a receive entry is an `xdp_desc`, within the ring.
        while let Some(desc) = rx.pop(|e| unsafe { e.cast::<libc::xdp_desc>().read() }) {
            let start = desc.addr as usize;
            let end = start + desc.len as usize;
            if end <= umem_len && desc.len as usize >= HEADERS {
                // SAFETY: [start, end) is within the UMEM (checked), which the kernel wrote
                // before publishing the entry and does not touch until it is in the fill ring.
                let frame = unsafe { std::slice::from_raw_parts(umem.add(start), end - start) };
                if frame[26..30] == from.octets() {
                    let udp_len = usize::from(u16::from_be_bytes([frame[38], frame[39]]));
                    let payload_end = (34 + udp_len).min(frame.len());
                    if payload_end > HEADERS {
                        let _ = tap.write_frame(&frame[HEADERS..payload_end]);
                    }
                }
            }
            let chunk = desc.addr - desc.addr % u64::from(FRAME_SIZE);
            // SAFETY: a fill entry is one u64, within the ring.
            fill.push(|e| unsafe { e.cast::<u64>().write(chunk) });
            last_packet = Instant::now();
            moved = true;
        }
        // A frame from the tap: read it behind the headers in a free chunk and send it.
        if let Some(&addr) = free_tx.last() {
            // SAFETY: the chunk at `addr` is ours (not in any ring) and FRAME_SIZE long.
            let chunk = unsafe {
                std::slice::from_raw_parts_mut(umem.add(addr as usize), FRAME_SIZE as usize)
            };
            match tap.read(&mut chunk[HEADERS..]) {
                Ok(len) => {
                    chunk[..HEADERS].copy_from_slice(&headers);
                    let ip_len = (20 + 8 + len) as u16;
                    chunk[16..18].copy_from_slice(&ip_len.to_be_bytes());
                    let sum = checksum::finish(checksum::add(0, &chunk[14..34]));
                    chunk[24..26].copy_from_slice(&sum.to_be_bytes());
                    chunk[38..40].copy_from_slice(&(8 + len as u16).to_be_bytes());
                    let desc = libc::xdp_desc {
                        addr,
                        len: (HEADERS + len) as u32,
                        options: 0,
                    };
                    // SAFETY: a send entry is an `xdp_desc`, within the ring.
                    if tx.push(|e| unsafe { e.cast::<libc::xdp_desc>().write(desc) }) {
                        free_tx.pop();
                        // SAFETY: the kick: a sendto with no data, which makes the kernel
                        // take the send ring (copy mode always needs it).
                        unsafe {
                            libc::sendto(fd, ptr::null(), 0, libc::MSG_DONTWAIT, ptr::null(), 0)
                        };
                    }
                    last_packet = Instant::now();
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !moved {
            std::thread::yield_now();
        }
    }
}
