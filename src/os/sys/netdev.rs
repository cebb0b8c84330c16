//! Interface settings by name: the MTU and the up flag, through the classic `SIOC[GS]IFMTU` and
//! `SIOC[GS]IFFLAGS` ioctls on a throw-away datagram socket; the interface's transmit drop
//! counter, over rtnetlink ([`LinkCounters`], read on a thread of its own by
//! [`TapDropsReader`]) or from `/proc/net/dev` of the daemon's network namespace; and whether
//! a tun or tap device has a queue attached ([`tap_in_use`], which `tap` asks before a
//! multi-queue attach); the route to an address ([`route_to`]); and whether interfaces,
//! addresses or routes changed ([`ChangeWatch`]).
//!
//! Owns those ioctls (and `SIOCGIFINDEX`; `SIOCGIFNAME` through `if_indextoname`), the
//! `ifreq` they use, and the one `RTM_GETLINK`
//! request these read. It does not create or delete interfaces
//! (that is `tap`) and sets no addresses or routes (that is the operator's `--ifup` command).
//! Changing an interface needs `CAP_NET_ADMIN` in its network namespace; reading does not.

use std::ffi::c_char;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::tap::{check_name, IFNAMSIZ};

/// An `ifreq` for `name`, everything else zero.
fn request(name: &str) -> io::Result<libc::ifreq> {
    check_name(name).map_err(|reason| io::Error::new(io::ErrorKind::InvalidInput, reason))?;
    // SAFETY: `ifreq` is plain old data (a name array and a union of integers, sockaddrs and a
    // pointer); all zeroes is a valid value of every field.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    // `check_name` proved `name.len() < IFNAMSIZ`, so the last byte stays NUL.
    for (slot, byte) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = c_char::from_ne_bytes([byte]);
    }
    debug_assert!(name.len() < IFNAMSIZ);
    Ok(req)
}

/// A datagram socket to issue interface ioctls on: AF_INET, or AF_INET6 on a host without IPv4.
fn control_socket() -> io::Result<OwnedFd> {
    let flags = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
    // SAFETY: socket() takes no pointers; the result is checked by `syscall!`.
    let raw = unsafe { syscall!(socket(libc::AF_INET, flags, 0)) }.or_else(|e| {
        if e.raw_os_error() == Some(libc::EAFNOSUPPORT) {
            // SAFETY: as above.
            unsafe { syscall!(socket(libc::AF_INET6, flags, 0)) }
        } else {
            Err(e)
        }
    })?;
    // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Issues `request` with `req` on a fresh control socket.
fn ioctl(request: libc::Ioctl, req: &mut libc::ifreq) -> io::Result<()> {
    let socket = control_socket()?;
    // SAFETY: `socket` is an open socket we own for the duration of the call; every request
    // used in this module reads or writes one `ifreq`, and `req` is a valid, exclusive one.
    unsafe { syscall!(ioctl(socket.as_raw_fd(), request, req as *mut libc::ifreq)) }?;
    Ok(())
}

/// The MTU of interface `name`.
///
/// # Errors
///
/// The OS error of `SIOCGIFMTU` (e.g. `ENODEV` if there is no such interface), or
/// `InvalidInput` for a name the kernel would refuse.
pub fn mtu(name: &str) -> io::Result<u32> {
    let mut req = request(name)?;
    ioctl(libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel stored the MTU in `ifru_mtu`.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative MTU"))
}

/// Sets the MTU of interface `name`, unless it has that MTU already (so that a user who
/// owns a persistent tap, without `CAP_NET_ADMIN`, can use it as it is).
///
/// # Errors
///
/// The OS error of `SIOCSIFMTU` (`EPERM` without `CAP_NET_ADMIN`, `EINVAL` for an MTU the
/// device does not take), or `InvalidInput` for a bad name or an MTU above `i32::MAX`.
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    if self::mtu(name).ok() == Some(mtu) {
        return Ok(());
    }
    let mut req = request(name)?;
    req.ifr_ifru.ifru_mtu = libc::c_int::try_from(mtu)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "MTU too large"))?;
    ioctl(libc::SIOCSIFMTU, &mut req)
}

/// Whether interface `name` is administratively up (`IFF_UP`).
///
/// # Errors
///
/// The OS error of `SIOCGIFFLAGS`, or `InvalidInput` for a bad name.
pub fn is_up(name: &str) -> io::Result<bool> {
    Ok(flags(name)? & up_flag() != 0)
}

/// Brings interface `name` up (sets `IFF_UP`, keeps every other flag).
///
/// # Errors
///
/// The OS error of `SIOCGIFFLAGS` or `SIOCSIFFLAGS` (`EPERM` without `CAP_NET_ADMIN`), or
/// `InvalidInput` for a bad name.
pub fn set_up(name: &str) -> io::Result<()> {
    let current = flags(name)?;
    if current & up_flag() != 0 {
        return Ok(());
    }
    let mut req = request(name)?;
    req.ifr_ifru.ifru_flags = current | up_flag();
    ioctl(libc::SIOCSIFFLAGS, &mut req)
}

fn flags(name: &str) -> io::Result<libc::c_short> {
    let mut req = request(name)?;
    ioctl(libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the kernel stored the flags in `ifru_flags`.
    Ok(unsafe { req.ifr_ifru.ifru_flags })
}

/// `IFF_UP` as the `c_short` the `ifreq` holds (it is 1, so it always fits).
fn up_flag() -> libc::c_short {
    libc::c_short::try_from(libc::IFF_UP).unwrap_or(1)
}

/// The index of interface `name`.
///
/// # Errors
///
/// The OS error of `SIOCGIFINDEX` (`ENODEV` if there is no such interface), or `InvalidInput`
/// for a name the kernel would refuse.
fn index(name: &str) -> io::Result<i32> {
    let mut req = request(name)?;
    ioctl(libc::SIOCGIFINDEX, &mut req)?;
    // SAFETY: SIOCGIFINDEX succeeded, so the kernel stored the index in `ifru_ifindex`.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

/// The index of interface `name`, as the kernel path attaches to it.
///
/// # Errors
///
/// As for the index itself (`ENODEV` if there is no such interface).
pub fn ifindex(name: &str) -> io::Result<u32> {
    let i = index(name)?;
    u32::try_from(i).map_err(|_| io::Error::other("negative interface index"))
}

/// Whether interface `name` is an Ethernet interface (`ARPHRD_ETHER`, from `SIOCGIFHWADDR`).
///
/// # Errors
///
/// The OS error of `SIOCGIFHWADDR`.
pub fn is_ethernet(name: &str) -> io::Result<bool> {
    let mut req = request(name)?;
    ioctl(libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel stored the address in `ifru_hwaddr`.
    let family = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    Ok(family == libc::ARPHRD_ETHER)
}

/// The names and indexes of this network namespace's interfaces (`if_nameindex`), in index
/// order.
///
/// # Errors
///
/// The OS error of `if_nameindex`.
pub fn interfaces() -> io::Result<Vec<(String, u32)>> {
    // SAFETY: no arguments; the list returned is freed below with `if_freenameindex`.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut names = Vec::new();
    let mut at = list;
    loop {
        // SAFETY: `at` points into the array `if_nameindex` returned, which ends with an
        // entry whose index is 0 and name null; we stop there.
        let entry = unsafe { &*at };
        if entry.if_index == 0 || entry.if_name.is_null() {
            break;
        }
        // SAFETY: `if_name` is a NUL-terminated string owned by the list, alive until freed.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.if_name) };
        names.push((name.to_string_lossy().into_owned(), entry.if_index));
        // SAFETY: not the last entry, so the next one is inside the array.
        at = unsafe { at.add(1) };
    }
    // SAFETY: `list` came from `if_nameindex` and is freed once.
    unsafe { libc::if_freenameindex(list) };
    Ok(names)
}

/// The name of the interface with index `index` in this network namespace, or `None` if
/// there is none (`if_indextoname`, one `SIOCGIFNAME`: unlike a list of every interface, it
/// cannot miss one because others come and go meanwhile).
///
/// # Errors
///
/// The OS error other than "no such interface".
pub fn name_of_index(index: u32) -> io::Result<Option<String>> {
    let mut name = [0 as c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` is valid for writes of IF_NAMESIZE bytes, as if_indextoname requires;
    // it writes a NUL-terminated name there or returns null.
    let got = unsafe { libc::if_indextoname(index, name.as_mut_ptr()) };
    if got.is_null() {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENXIO | libc::ENODEV) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: if_indextoname succeeded, so `name` holds a NUL-terminated string.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    Ok(Some(name.to_string_lossy().into_owned()))
}

/// Where the kernel routes IPv4 packets to one destination, as `ip route get` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The interface they leave through.
    pub oif: u32,
    /// The source address the kernel would pick, if the route has one.
    pub prefsrc: Option<std::net::Ipv4Addr>,
    /// The route's MTU (a path MTU learnt, or one set on the route), if it has one.
    pub mtu: Option<u32>,
}

/// Bytes of an `rtmsg`.
const RTMSG_LEN: usize = 12;
/// `RTA_DST`, `RTA_OIF`, `RTA_PREFSRC`, `RTA_METRICS` and, inside the last, `RTAX_MTU`.
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_PREFSRC: u16 = 7;
const RTA_METRICS: u16 = 8;
const RTAX_MTU: u16 = 2;
/// `RTN_UNICAST`: a route to a host elsewhere (not local, not a blackhole).
const RTN_UNICAST: u8 = 1;

/// Asks the kernel (`RTM_GETROUTE`) where it routes packets to `dst`. `Ok(None)` when the
/// route is not a unicast one (a local address, a blackhole, unreachable).
///
/// # Errors
///
/// The OS error of the netlink socket, or the kernel's error answer (`ENETUNREACH` when
/// nothing routes there).
pub fn route_to(dst: std::net::Ipv4Addr) -> io::Result<Option<Route>> {
    const ASK_LEN: usize = NLMSG_HDR_LEN + RTMSG_LEN + 8;
    let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    // SAFETY: socket() takes no pointers; the result is checked by `syscall!`.
    let raw = unsafe { syscall!(socket(libc::AF_NETLINK, flags, libc::NETLINK_ROUTE)) }?;
    // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let seq: u32 = 1;
    let mut ask = [0u8; ASK_LEN];
    ask[0..4].copy_from_slice(&(ASK_LEN as u32).to_ne_bytes());
    ask[4..6].copy_from_slice(&libc::RTM_GETROUTE.to_ne_bytes());
    ask[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    ask[8..12].copy_from_slice(&seq.to_ne_bytes());
    // rtmsg: family AF_INET, a /32 destination.
    ask[NLMSG_HDR_LEN] = libc::AF_INET as u8;
    ask[NLMSG_HDR_LEN + 1] = 32;
    let attr = NLMSG_HDR_LEN + RTMSG_LEN;
    ask[attr..attr + 2].copy_from_slice(&8u16.to_ne_bytes());
    ask[attr + 2..attr + 4].copy_from_slice(&RTA_DST.to_ne_bytes());
    ask[attr + 4..attr + 8].copy_from_slice(&dst.octets());
    // SAFETY: the fd is open; `ask` is valid for its length, which the kernel only reads.
    unsafe { syscall!(send(socket.as_raw_fd(), ask.as_ptr().cast(), ask.len(), 0)) }?;
    let mut answer = vec![0u8; 8192];
    // SAFETY: the fd is open; `answer` is valid for writes of its length. The kernel answers
    // while the request is sent.
    let n = unsafe {
        syscall!(recv(
            socket.as_raw_fd(),
            answer.as_mut_ptr().cast(),
            answer.len(),
            libc::MSG_DONTWAIT
        ))
    }?;
    let got = answer
        .get(..usize::try_from(n).unwrap_or(0))
        .unwrap_or_default();
    match parse_route_answer(got, seq) {
        Some(Ok(route)) => Ok(route),
        Some(Err(errno)) => Err(io::Error::from_raw_os_error(errno)),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no RTM_NEWROUTE answer",
        )),
    }
}

/// In `buf`, the answer to route request `seq`: the route if it is a unicast one, `None`
/// inside if it is not, or the kernel's error (a positive errno); `None` if `buf` holds no
/// answer to that request.
fn parse_route_answer(buf: &[u8], seq: u32) -> Option<Result<Option<Route>, i32>> {
    let msg = match find_answer(buf, seq, |kind, _| kind == libc::RTM_NEWROUTE)? {
        Ok(msg) => msg,
        Err(errno) => return Some(Err(errno)),
    };
    if *msg.get(NLMSG_HDR_LEN + 7)? != RTN_UNICAST {
        return Some(Ok(None));
    }
    let mut route = Route {
        oif: 0,
        prefsrc: None,
        mtu: None,
    };
    for (k, v) in attributes(msg.get(NLMSG_HDR_LEN + RTMSG_LEN..)?) {
        match k {
            RTA_OIF => route.oif = u32_at(v, 0).unwrap_or(0),
            RTA_PREFSRC => {
                route.prefsrc = v
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(std::net::Ipv4Addr::from);
            }
            RTA_METRICS => {
                for (mk, mv) in attributes(v) {
                    if mk == RTAX_MTU {
                        route.mtu = u32_at(mv, 0).filter(|m| *m > 0);
                    }
                }
            }
            _ => {}
        }
    }
    Some(Ok((route.oif != 0).then_some(route)))
}

/// The MTU of the interface with index `index`.
///
/// # Errors
///
/// The OS error of `SIOCGIFNAME` or `SIOCGIFMTU`.
pub fn mtu_of_index(index: u32) -> io::Result<u32> {
    // SAFETY: ifreq is plain old data; all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    req.ifr_ifru.ifru_ifindex = i32::try_from(index).map_err(|_| io::Error::other("bad index"))?;
    ioctl(libc::SIOCGIFNAME, &mut req)?;
    ioctl(libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel stored the MTU in `ifru_mtu`.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))
}

/// Bytes of a netlink message header.
pub(super) const NLMSG_HDR_LEN: usize = 16;
/// Bytes of an `ifinfomsg`.
const IFINFOMSG_LEN: usize = 16;
/// Where `tx_dropped` lies in a `struct rtnl_link_stats64` (its eighth `u64`).
const STATS64_TX_DROPPED_AT: usize = 56;
/// The receive buffer of [`LinkCounters`]: one link's `RTM_NEWLINK` is a few KiB.
const LINK_ANSWER_ROOM: usize = 32 * 1024;

/// One interface's counters, asked of the kernel over rtnetlink (`RTM_GETLINK` by index):
/// that interface's alone, where `/proc/net/dev` makes the kernel gather and print the
/// counters of every interface of the namespace (thousands on a host of containers, once a
/// second, on the thread that forwards). The socket and the buffer are made once.
#[derive(Debug)]
pub struct LinkCounters {
    socket: OwnedFd,
    index: i32,
    seq: u32,
    answer: Box<[u8]>,
}

impl LinkCounters {
    /// A reader of the counters of interface `name`.
    ///
    /// # Errors
    ///
    /// The OS error of finding the interface's index or of opening the netlink socket (a
    /// sandbox may forbid `AF_NETLINK`).
    pub fn open(name: &str) -> io::Result<LinkCounters> {
        let index = index(name)?;
        let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: socket() takes no pointers; the result is checked by `syscall!`.
        let raw = unsafe { syscall!(socket(libc::AF_NETLINK, flags, libc::NETLINK_ROUTE)) }?;
        Ok(LinkCounters {
            // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
            socket: unsafe { OwnedFd::from_raw_fd(raw) },
            index,
            seq: 0,
            answer: vec![0u8; LINK_ANSWER_ROOM].into_boxed_slice(),
        })
    }

    /// The interface's transmit drops, as [`tx_dropped`] reads them. The kernel answers while
    /// the request is sent, so the answer is read without waiting.
    ///
    /// # Errors
    ///
    /// The OS error of sending or receiving, the kernel's error answer (`ENODEV` once the
    /// interface is gone), or `InvalidData` for an answer without the counters.
    pub fn tx_dropped(&mut self) -> io::Result<u64> {
        self.ask()?.tx_dropped.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no RTM_NEWLINK answer with the link's counters",
            )
        })
    }

    /// What the kernel says of the link now (see [`LinkAnswer`]).
    fn ask(&mut self) -> io::Result<LinkAnswer> {
        self.seq = self.seq.wrapping_add(1);
        const ASK_LEN: usize = NLMSG_HDR_LEN + IFINFOMSG_LEN;
        let mut ask = [0u8; ASK_LEN];
        ask[0..4].copy_from_slice(&(ASK_LEN as u32).to_ne_bytes());
        ask[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
        ask[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        ask[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // ifinfomsg: family AF_UNSPEC, the index at bytes 4..8.
        ask[NLMSG_HDR_LEN + 4..NLMSG_HDR_LEN + 8].copy_from_slice(&self.index.to_ne_bytes());
        // SAFETY: the fd is open; `ask` is valid for its length, which the kernel only reads.
        // An unconnected netlink socket sends to the kernel.
        unsafe {
            syscall!(send(
                self.socket.as_raw_fd(),
                ask.as_ptr().cast(),
                ask.len(),
                0
            ))
        }?;
        // Answers to earlier requests that were not read (none, normally) come first.
        for _ in 0..4 {
            // SAFETY: the fd is open; `answer` is valid for writes of its length.
            let n = unsafe {
                syscall!(recv(
                    self.socket.as_raw_fd(),
                    self.answer.as_mut_ptr().cast(),
                    self.answer.len(),
                    libc::MSG_DONTWAIT
                ))
            }?;
            let got = self
                .answer
                .get(..usize::try_from(n).unwrap_or(0))
                .unwrap_or_default();
            match parse_link_answer(got, self.seq, self.index) {
                Some(Ok(answer)) => return Ok(answer),
                Some(Err(errno)) => return Err(io::Error::from_raw_os_error(errno)),
                None => {}
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no RTM_NEWLINK answer for the link",
        ))
    }
}

/// Whether `name` is a tun or tap device that some program has a queue of open: a
/// multi-queue device's link information counts its attached queues, enabled and disabled
/// (`IFLA_TUN_NUM_QUEUES`, `IFLA_TUN_NUM_DISABLED_QUEUES`); where those are missing, the
/// carrier tells, which the kernel keeps on while a queue is attached (a program may turn it
/// off by hand, though). `Ok(false)` for no such interface, or one of another kind. A program
/// that attaches between this and our own attach is not seen.
///
/// # Errors
///
/// The OS error of the netlink socket or request (a sandbox may forbid `AF_NETLINK`), or
/// `InvalidData` for an answer without the attributes.
pub fn tap_in_use(name: &str) -> io::Result<bool> {
    let mut link = match LinkCounters::open(name) {
        Ok(link) => link,
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(false),
        Err(e) => return Err(e),
    };
    let answer = link.ask()?;
    Ok(answer.is_tun
        && match answer.tun_queues {
            Some(queues) => queues > 0,
            None => answer.carrier == Some(true),
        })
}

/// Whether interface `name` forwards what it receives elsewhere: it is the port of a bridge
/// or a member of a bond (it has a master), or IPv4 or IPv6 forwarding is on for it.
///
/// # Errors
///
/// The OS error of asking rtnetlink, or of reading the forwarding sysctls.
pub fn forwards(name: &str) -> io::Result<bool> {
    let master = LinkCounters::open(name)?.ask()?.master;
    // (A host without IPv6 has no such file: no forwarding there. Every interface has the
    // IPv4 one: without it, the interface is gone or was renamed meanwhile, an error.)
    let sysctl = |family: &str| match std::fs::read_to_string(format!(
        "/proc/sys/net/{family}/conf/{name}/forwarding"
    )) {
        Ok(s) => Ok(s.trim() != "0"),
        Err(e) if e.kind() == io::ErrorKind::NotFound && family == "ipv6" => Ok(false),
        Err(e) => Err(e),
    };
    Ok(master.is_some() || sysctl("ipv4")? || sysctl("ipv6")?)
}

/// `IFLA_TUN_NUM_QUEUES` in a tun device's `IFLA_INFO_DATA` (`linux/if_link.h`; the kernel
/// fills it for a multi-queue device only), and `IFLA_TUN_NUM_DISABLED_QUEUES` after it.
const IFLA_TUN_NUM_QUEUES: u16 = 8;
const IFLA_TUN_NUM_DISABLED_QUEUES: u16 = 9;

/// What [`parse_link_answer`] takes from a link's `RTM_NEWLINK`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LinkAnswer {
    /// The transmit drops (`IFLA_STATS64`).
    tx_dropped: Option<u64>,
    /// Whether the carrier is on (`IFLA_CARRIER`).
    carrier: Option<bool>,
    /// Whether it is a tun or tap device (`IFLA_LINKINFO`'s `IFLA_INFO_KIND` is "tun").
    is_tun: bool,
    /// A multi-queue tun device's attached queues, enabled and disabled together.
    tun_queues: Option<u32>,
    /// The index of its master (a bridge, a bond), if it has one (`IFLA_MASTER`).
    master: Option<u32>,
}

/// Reads the transmit drops of tap `name` on a thread of its own, once a second (over
/// rtnetlink, or from `/proc/net/dev` where that fails), so that the forwarding thread never
/// waits on the kernel for them: `RTM_GETLINK` takes the kernel's RTNL lock, which a busy host
/// of containers may hold for a long time, and `/proc/net/dev` prints every interface of the
/// namespace. The thread ends at the next read after this is dropped.
#[derive(Debug)]
pub struct TapDropsReader {
    latest: std::sync::Arc<std::sync::atomic::AtomicU64>,
    _stop: std::sync::mpsc::Sender<()>,
}

impl TapDropsReader {
    /// Starts the thread for tap `name`.
    ///
    /// # Errors
    ///
    /// The OS error of starting a thread.
    pub fn start(name: &str) -> io::Result<TapDropsReader> {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::mpsc::RecvTimeoutError;
        let latest = std::sync::Arc::new(AtomicU64::new(0));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (name, shared) = (name.to_owned(), latest.clone());
        std::thread::Builder::new()
            .name("tap-counters".to_owned())
            .spawn(move || {
                let mut link = LinkCounters::open(&name).map_err(|e| {
                    log::debug!("cannot ask rtnetlink for {name}'s counters ({e}): reading /proc/net/dev");
                });
                loop {
                    let drops = match &mut link {
                        Ok(counters) => counters.tx_dropped().or_else(|e| {
                            log::debug!("rtnetlink did not give {name}'s counters ({e}): reading /proc/net/dev");
                            link = Err(());
                            tx_dropped(&name)
                        }),
                        Err(()) => tx_dropped(&name),
                    };
                    match drops {
                        Ok(drops) => shared.store(drops, Ordering::Relaxed),
                        Err(e) => log::debug!("cannot read {name}'s drop counter: {e}"),
                    }
                    match stopped.recv_timeout(std::time::Duration::from_secs(1)) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })?;
        Ok(TapDropsReader {
            latest,
            _stop: stop,
        })
    }

    /// The drops last read (0 before the first read).
    pub fn latest(&self) -> u64 {
        self.latest.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Most notifications [`ChangeWatch::changed`] reads in one call (what is left is read at
/// the next).
const CHANGES_PER_CALL: usize = 4096;

/// The legacy group bits of `RTNLGRP_IPV4_NETCONF` (24) and `RTNLGRP_IPV6_NETCONF` (25),
/// which announce an interface's forwarding turned on or off (`RTM_NEWNETCONF`; also a few
/// other per-interface settings, and a new interface, which only bring a check forward).
const RTMGRP_IPV4_NETCONF: u32 = 1 << (24 - 1);
const RTMGRP_IPV6_NETCONF: u32 = 1 << (25 - 1);

/// Tells whether this network namespace's interfaces, IPv4 addresses, IPv4 routes or IPv4
/// routing rules changed, or an interface's IPv4 or IPv6 forwarding: an rtnetlink socket in
/// the groups that announce them (`RTMGRP_LINK`, `RTMGRP_IPV4_IFADDR`, `RTMGRP_IPV4_ROUTE`,
/// `RTMGRP_IPV4_RULE`, and the two netconf groups), read without waiting. Joining them needs no
/// privilege. The notifications are counted, not read: what changed is asked again by the
/// caller.
#[derive(Debug)]
pub struct ChangeWatch {
    socket: OwnedFd,
}

impl ChangeWatch {
    /// Joins the groups.
    ///
    /// # Errors
    ///
    /// The OS error of opening or binding the netlink socket.
    pub fn open() -> io::Result<ChangeWatch> {
        let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        // SAFETY: socket() takes no pointers; the result is checked by `syscall!`.
        let raw = unsafe { syscall!(socket(libc::AF_NETLINK, flags, libc::NETLINK_ROUTE)) }?;
        // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
        let socket = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; all zeroes is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        addr.nl_groups = (libc::RTMGRP_LINK
            | libc::RTMGRP_IPV4_IFADDR
            | libc::RTMGRP_IPV4_ROUTE
            | libc::RTMGRP_IPV4_RULE) as u32
            | RTMGRP_IPV4_NETCONF
            | RTMGRP_IPV6_NETCONF;
        let addr_ptr: *const libc::sockaddr_nl = &addr;
        // SAFETY: the fd is open; `addr_ptr` points to a live sockaddr_nl of the length
        // given, which the kernel only reads.
        unsafe {
            syscall!(bind(
                socket.as_raw_fd(),
                addr_ptr.cast(),
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t
            ))
        }?;
        Ok(ChangeWatch { socket })
    }

    /// Whether a notification came since the last call (or some were lost: the socket's
    /// buffer overflowed, `ENOBUFS`). Never waits; reads at most 4096
    /// notifications, each cut to a few bytes. An error other than "nothing more" counts as
    /// a change, so that the caller asks again rather than miss one.
    pub fn changed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        let mut any = false;
        for _ in 0..CHANGES_PER_CALL {
            // SAFETY: the fd is open; `buf` is valid for writes of its length (a longer
            // message is cut, the rest of it discarded, as for any datagram).
            let n = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n >= 0 {
                any = true;
                continue;
            }
            match io::Error::last_os_error().kind() {
                io::ErrorKind::WouldBlock => return any,
                io::ErrorKind::Interrupted => {}
                _ => return true,
            }
        }
        any
    }
}

/// In the netlink messages `buf`, the first answer to request `seq` that `wanted` takes (by
/// its type and whole message), or the kernel's error answer to it (a positive errno);
/// `None` if `buf` holds neither.
fn find_answer(
    buf: &[u8],
    seq: u32,
    wanted: impl Fn(u16, &[u8]) -> bool,
) -> Option<Result<&[u8], i32>> {
    let mut at = 0;
    while let Some(len) = u32_at(buf, at).map(|l| l as usize) {
        let msg = buf.get(at..at.checked_add(len)?)?;
        if len < NLMSG_HDR_LEN {
            return None;
        }
        let kind = u16_at(msg, 4)?;
        if u32_at(msg, 8)? == seq {
            if kind == libc::NLMSG_ERROR as u16 {
                let code = i32::from_ne_bytes(u32_at(msg, NLMSG_HDR_LEN)?.to_ne_bytes());
                return Some(Err(code
                    .checked_neg()
                    .filter(|e| *e > 0)
                    .unwrap_or(libc::EIO)));
            }
            if wanted(kind, msg) {
                return Some(Ok(msg));
            }
        }
        at += (len + 3) & !3;
    }
    None
}

pub(super) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|x| u16::from_ne_bytes([x[0], x[1]]))
}

pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
}

/// In the netlink messages `buf`, the answer to request `seq` about link `index`: its transmit
/// attributes ([`LinkAnswer`]), or the kernel's error (a positive errno); `None` if `buf` holds
/// no answer to that request.
fn parse_link_answer(buf: &[u8], seq: u32, index: i32) -> Option<Result<LinkAnswer, i32>> {
    let is_ours = |kind: u16, msg: &[u8]| {
        kind == libc::RTM_NEWLINK
            && u32_at(msg, NLMSG_HDR_LEN + 4).map(|i| i32::from_ne_bytes(i.to_ne_bytes()))
                == Some(index)
    };
    Some(
        find_answer(buf, seq, is_ours)?
            .map(|msg| link_answer(msg.get(NLMSG_HDR_LEN + IFINFOMSG_LEN..).unwrap_or_default())),
    )
}

/// What an `RTM_NEWLINK` answer's attributes (`attrs`, past its `ifinfomsg`) say.
fn link_answer(attrs: &[u8]) -> LinkAnswer {
    let mut answer = LinkAnswer::default();
    for (kind, value) in attributes(attrs) {
        match kind {
            libc::IFLA_STATS64 => {
                let at = STATS64_TX_DROPPED_AT;
                answer.tx_dropped = value
                    .get(at..at + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_ne_bytes);
            }
            libc::IFLA_CARRIER => answer.carrier = value.first().map(|c| *c != 0),
            libc::IFLA_MASTER => answer.master = u32_at(value, 0).filter(|m| *m != 0),
            libc::IFLA_LINKINFO => {
                for (k, v) in attributes(value) {
                    match k {
                        libc::IFLA_INFO_KIND => {
                            answer.is_tun = v.split(|b| *b == 0).next() == Some(b"tun".as_slice());
                        }
                        libc::IFLA_INFO_DATA => answer.tun_queues = tun_queues(v),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    answer
}

/// The attached queues, enabled and disabled, that a tun device's `IFLA_INFO_DATA` counts, if
/// it counts them.
fn tun_queues(data: &[u8]) -> Option<u32> {
    let u32_of = |v: &[u8]| v.get(..4)?.try_into().ok().map(u32::from_ne_bytes);
    let (mut enabled, mut disabled) = (None, None);
    for (kind, value) in attributes(data) {
        match kind {
            IFLA_TUN_NUM_QUEUES => enabled = u32_of(value),
            IFLA_TUN_NUM_DISABLED_QUEUES => disabled = u32_of(value),
            _ => {}
        }
    }
    Some(enabled?.saturating_add(disabled.unwrap_or(0)))
}

/// The netlink attributes in `buf` (type without its two flag bits, value), up to the first
/// one that is cut short.
pub(super) fn attributes(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> + '_ {
    let mut at = 0usize;
    core::iter::from_fn(move || {
        let head = buf.get(at..at + 4)?;
        let len = usize::from(u16::from_ne_bytes([head[0], head[1]]));
        let kind = u16::from_ne_bytes([head[2], head[3]]) & 0x3fff;
        let value = buf.get(at + 4..at.checked_add(len)?).filter(|_| len >= 4)?;
        at += (len + 3) & !3;
        Some((kind, value))
    })
}

/// Frames the kernel dropped on their way out of interface `name` since it was created (the
/// `drop` column under "Transmit" in `/proc/net/dev`). For a tap device "transmit" is the
/// kernel handing frames to the daemon: these are frames that found the device's queue
/// (`txqueuelen` frames) full because the daemon did not read fast enough. A file read: call
/// it now and then, not per packet.
///
/// # Errors
///
/// The I/O error of reading `/proc/net/dev`, or `NotFound` if it has no line for `name`.
pub fn tx_dropped(name: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/net/dev")?;
    parse_tx_dropped(&text, name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no counters for {name} in /proc/net/dev"),
        )
    })
}

/// The transmit `drop` column of `name`'s line in the text of `/proc/net/dev`: after
/// `name:`, eight receive columns, then transmit bytes, packets, errs, drop.
fn parse_tx_dropped(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (iface, counters) = line.split_once(':')?;
        if iface.trim() != name {
            return None;
        }
        counters.split_whitespace().nth(11)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testing::{nl_attr, nl_message};

    #[test]
    fn loopback_is_up_with_a_readable_mtu() {
        assert!(is_up("lo").unwrap());
        assert!(mtu("lo").unwrap() >= 1280);
    }

    #[test]
    fn tx_drops_are_the_twelfth_counter_of_the_device_line() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n\
            bntap0: 4164184 63083 0 1 0 0 0 0 5248875787 761169 0 93581 0 0 0 0\n";
        assert_eq!(parse_tx_dropped(text, "bntap0"), Some(93_581));
        assert_eq!(parse_tx_dropped(text, "lo"), Some(0));
        assert_eq!(parse_tx_dropped(text, "bntap"), None);
        assert!(tx_dropped("lo").is_ok());
        assert_eq!(
            tx_dropped("ecl-nosuchdev").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    /// One netlink message to build: (type, seq, index, attributes as (type, data)).
    type Message<'a> = (u16, u32, i32, &'a [(u16, Vec<u8>)]);

    /// A netlink buffer of `messages`.
    fn netlink(messages: &[Message<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, seq, index, attrs) in messages {
            // ifinfomsg: the index at 4.
            let mut body = vec![0u8; IFINFOMSG_LEN];
            body[4..8].copy_from_slice(&index.to_ne_bytes());
            for (attr, data) in attrs.iter() {
                body.extend(nl_attr(*attr, data));
            }
            out.extend(nl_message(*kind, *seq, &body));
        }
        out
    }

    /// An `RTM_NEWROUTE` answer (seq 9) of route type `rtm_type` with `attrs`.
    fn route_answer(rtm_type: u8, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        // rtmsg: the family first, the route type at 7.
        let mut body = vec![0u8; RTMSG_LEN];
        body[0] = libc::AF_INET as u8;
        body[7] = rtm_type;
        for (attr, data) in attrs {
            body.extend(nl_attr(*attr, data));
        }
        nl_message(libc::RTM_NEWROUTE, 9, &body)
    }

    #[test]
    fn a_route_answer_gives_interface_source_and_mtu_of_unicast_routes_only() {
        let mut metrics = Vec::new();
        metrics.extend_from_slice(&8u16.to_ne_bytes());
        metrics.extend_from_slice(&RTAX_MTU.to_ne_bytes());
        metrics.extend_from_slice(&1400u32.to_ne_bytes());
        let attrs = [
            (RTA_OIF, 3u32.to_ne_bytes().to_vec()),
            (RTA_PREFSRC, vec![198, 18, 0, 1]),
            (RTA_METRICS, metrics),
        ];
        let route = Route {
            oif: 3,
            prefsrc: Some(std::net::Ipv4Addr::new(198, 18, 0, 1)),
            mtu: Some(1400),
        };
        let buf = route_answer(RTN_UNICAST, &attrs);
        assert_eq!(parse_route_answer(&buf, 9), Some(Ok(Some(route))));
        // Another request's answer, a cut answer: none.
        assert_eq!(parse_route_answer(&buf, 8), None);
        assert_eq!(parse_route_answer(&buf[..buf.len() - 1], 9), None);
        // A local route (RTN_LOCAL, 2) or one without an interface: not for the kernel path.
        assert_eq!(
            parse_route_answer(&route_answer(2, &attrs), 9),
            Some(Ok(None))
        );
        assert_eq!(
            parse_route_answer(&route_answer(RTN_UNICAST, &attrs[1..]), 9),
            Some(Ok(None))
        );
        // Every prefix of the answer parses without a panic.
        for end in 0..buf.len() {
            let _ = parse_route_answer(&buf[..end], 9);
        }
    }

    #[test]
    fn a_route_to_loopback_is_not_for_the_kernel_path() {
        assert_eq!(route_to(std::net::Ipv4Addr::LOCALHOST).unwrap(), None);
    }

    #[test]
    fn a_link_answer_gives_the_eighth_counter_of_its_stats64() {
        let mut stats = vec![0u8; 200];
        stats[STATS64_TX_DROPPED_AT..STATS64_TX_DROPPED_AT + 8]
            .copy_from_slice(&93_581u64.to_ne_bytes());
        let name = (libc::IFLA_IFNAME, b"tap0\0".to_vec());
        let answer = [name.clone(), (libc::IFLA_STATS64, stats.clone())];
        let buf = netlink(&[(libc::RTM_NEWLINK, 7, 4, &answer)]);
        let drops = |buf: &[u8], seq, index| {
            parse_link_answer(buf, seq, index).map(|r| r.map(|a| a.tx_dropped))
        };
        assert_eq!(drops(&buf, 7, 4), Some(Ok(Some(93_581))));
        // Another request's answer, another link, a message cut short: not this one.
        assert_eq!(drops(&buf, 8, 4), None);
        assert_eq!(drops(&buf, 7, 5), None);
        assert_eq!(drops(&buf[..buf.len() - 1], 7, 4), None);
        // An earlier answer first, then ours.
        let two = [netlink(&[(libc::RTM_NEWLINK, 6, 4, &answer)]), buf.clone()].concat();
        assert_eq!(drops(&two, 7, 4), Some(Ok(Some(93_581))));
        // No counters in it; the kernel's error.
        let bare = netlink(&[(libc::RTM_NEWLINK, 7, 4, std::slice::from_ref(&name))]);
        assert_eq!(drops(&bare, 7, 4), Some(Ok(None)));
        // The carrier, and the kind inside the link info (a nested attribute).
        let mut info = Vec::new();
        let kind: &[u8] = b"tun\0";
        info.extend_from_slice(&((4 + kind.len()) as u16).to_ne_bytes());
        info.extend_from_slice(&libc::IFLA_INFO_KIND.to_ne_bytes());
        info.extend_from_slice(kind);
        let tap = [
            name.clone(),
            (libc::IFLA_CARRIER, vec![1]),
            (libc::IFLA_LINKINFO, info),
            (libc::IFLA_MASTER, 9u32.to_ne_bytes().to_vec()),
        ];
        let got = parse_link_answer(&netlink(&[(libc::RTM_NEWLINK, 7, 4, &tap)]), 7, 4);
        let expected = LinkAnswer {
            tx_dropped: None,
            carrier: Some(true),
            is_tun: true,
            tun_queues: None,
            master: Some(9),
        };
        assert_eq!(got, Some(Ok(expected)));
        // A multi-queue tap's link data counts its queues: they tell, whatever the carrier.
        let attr = |kind: u16, value: &[u8]| {
            let mut a = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
            a.extend_from_slice(&kind.to_ne_bytes());
            a.extend_from_slice(value);
            a
        };
        let data = [
            attr(IFLA_TUN_NUM_QUEUES, &2u32.to_ne_bytes()),
            attr(IFLA_TUN_NUM_DISABLED_QUEUES, &1u32.to_ne_bytes()),
        ]
        .concat();
        let info = [
            attr(libc::IFLA_INFO_KIND, b"tun\0"),
            attr(libc::IFLA_INFO_DATA, &data),
        ]
        .concat();
        let multi = [
            name.clone(),
            (libc::IFLA_CARRIER, vec![0]),
            (libc::IFLA_LINKINFO, info),
        ];
        let got = parse_link_answer(&netlink(&[(libc::RTM_NEWLINK, 7, 4, &multi)]), 7, 4);
        assert_eq!(got.and_then(Result::ok).and_then(|a| a.tun_queues), Some(3));
        let veth = [name, (libc::IFLA_CARRIER, vec![1])];
        let got = parse_link_answer(&netlink(&[(libc::RTM_NEWLINK, 7, 4, &veth)]), 7, 4);
        assert_eq!(got.and_then(Result::ok).map(|a| a.is_tun), Some(false));
        let mut error = netlink(&[(libc::NLMSG_ERROR as u16, 7, 0, &[])]);
        error[NLMSG_HDR_LEN..NLMSG_HDR_LEN + 4].copy_from_slice(&(-libc::ENODEV).to_ne_bytes());
        assert_eq!(parse_link_answer(&error, 7, 4), Some(Err(libc::ENODEV)));
        // Garbage never panics.
        for len in 0..buf.len() {
            let _ = parse_link_answer(&buf[..len], 7, 4);
        }
    }

    #[test]
    #[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
    fn link_counters_and_the_reader_thread_read_a_tap_s_transmit_drops() {
        let (asked, listed) = crate::sys::testing::in_own_netns(|| {
            use crate::sys::testing::run;
            // Attached, and nobody reads: what does not fit its queue is dropped.
            let _tap = crate::sys::tap::TapDevice::open("ecdrop0").unwrap();
            run("ip link set lo up");
            // (No IPv6 address: its DAD and MLD packets would add drops at random times.)
            run("ip link set ecdrop0 addrgenmode none");
            run("ip link set ecdrop0 up");
            run("ip addr add 198.18.77.1/24 dev ecdrop0");
            run("ip neigh add 198.18.77.2 lladdr 02:00:00:00:00:02 dev ecdrop0");
            let socket = std::net::UdpSocket::bind("198.18.77.1:0").unwrap();
            for _ in 0..3000 {
                let _ = socket.send_to(&[0u8; 64], "198.18.77.2:9");
            }
            let asked = LinkCounters::open("ecdrop0").unwrap().tx_dropped().unwrap();
            // (This thread's namespace: /proc/net is the process's, the main thread's.)
            let text = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
            // The reader thread (started here, in this namespace) gets the same.
            let reader = TapDropsReader::start("ecdrop0").unwrap();
            let start = std::time::Instant::now();
            while reader.latest() != asked {
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(5),
                    "{}",
                    reader.latest()
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            (asked, parse_tx_dropped(&text, "ecdrop0").unwrap())
        });
        assert!(asked > 0, "no drops to read");
        assert_eq!(asked, listed);
    }

    #[test]
    #[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
    fn the_change_watch_tells_of_links_addresses_and_routes_and_of_nothing_else() {
        let seen = crate::sys::testing::in_own_netns(|| {
            use crate::sys::testing::run;
            let mut watch = ChangeWatch::open().unwrap();
            let mut seen = vec![watch.changed()];
            // Asking changes nothing.
            let _ = interfaces().unwrap();
            let _ = route_to(std::net::Ipv4Addr::new(198, 18, 0, 1));
            seen.push(watch.changed());
            run("ip link add ecw0 type veth peer name ecw1");
            // (No IPv6 addresses, whose duplicate address detection would end at a random
            // time.)
            run("ip link set ecw0 addrgenmode none");
            run("ip link set ecw1 addrgenmode none");
            seen.push(watch.changed());
            seen.push(watch.changed());
            run("ip link set ecw1 up");
            run("ip link set ecw0 up");
            let start = std::time::Instant::now();
            while flags("ecw0").unwrap() & libc::IFF_RUNNING as libc::c_short == 0 {
                assert!(start.elapsed() < std::time::Duration::from_secs(5));
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            seen.push(watch.changed());
            run("ip addr add 198.18.91.1/24 dev ecw0");
            seen.push(watch.changed());
            run("ip route add 198.18.92.0/24 via 198.18.91.2");
            seen.push(watch.changed());
            run("ip rule add to 198.18.93.0/24 table 7");
            seen.push(watch.changed());
            // (This thread's namespace: /proc/sys/net is the opener's.)
            for family in ["ipv4", "ipv6"] {
                let path = format!("/proc/sys/net/{family}/conf/ecw0/forwarding");
                std::fs::write(&path, "1").unwrap();
                seen.push(watch.changed());
            }
            run("ip link del ecw0");
            seen.push(watch.changed());
            seen
        });
        assert_eq!(
            seen,
            [false, false, true, false, true, true, true, true, true, true, true]
        );
    }

    #[test]
    fn missing_interface_is_enodev() {
        let err = mtu("ecl-nosuchdev").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
    }

    #[test]
    fn bad_name_is_refused_before_any_ioctl() {
        let err = set_mtu("a-name-of-20-chars!!", 1400).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
