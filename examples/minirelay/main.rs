//! The latency floor of any user-space L2 relay, a helper of `scripts/bench.sh --floor`.
//!
//! `minirelay TAP LISTEN PEER SECS [yield]` opens the tap device TAP (no offloads), binds a UDP
//! socket to LISTEN and, for SECS seconds, relays: every frame read from the tap is sent whole
//! to PEER, every datagram received is written whole to the tap. After a packet it polls both
//! fds without sleeping for 50 µs (ethcloud's default `--busy-poll`), then sleeps in epoll.
//! With `yield`, a pass that found nothing calls `sched_yield`, as ethcloud's spin does (the
//! same policy, so the floor and ethcloud differ only in the work done per packet); without
//! it, it never yields. No protocol, no header, no table, no batching. What it measures is the
//! cost of the two extra trips through the kernel that every user-space VPN pays (tap read and
//! UDP send, UDP receive and tap write), against which ethcloud's own latency can be judged.
//! Not a VPN: no token, no checks; for the benchmark's namespaces only.
//!
//! Issue #14 asked whether io_uring lowers the floor itself. The last argument may instead be
//! one of these, the same relay with its reads and sends made through an io_uring (crate
//! `io-uring`; a read posted on the tap and a receive on the socket at all times, each
//! completion answered by a send or a write and the read posted again, in one
//! `io_uring_enter` that submits both and waits for the next completion):
//! - `uring`: always waits in `io_uring_enter` (one system call per packet and relay, where
//!   the epoll relay makes two to three);
//! - `uring-spin`: after a packet, spins for 50 µs on the completion ring in user space with
//!   no system call at all (`IORING_SETUP_COOP_TASKRUN` and `TASKRUN_FLAG`: the kernel flags
//!   pending work in the ring instead of interrupting the task), yielding on empty passes;
//! - `uring-defer`: as `uring-spin`, with the completion work deferred to the relay's next
//!   `io_uring_enter` (`IORING_SETUP_DEFER_TASKRUN` and `SINGLE_ISSUER`);
//! - `sqpoll`: `IORING_SETUP_SQPOLL`, a kernel thread that takes the submissions, so a
//!   spinning relay makes no system call to send either; it spins like `uring-spin`.
//!
//! Two more modes try what else the kernel offers for the floor (issue #14):
//! - `busypoll`: the `yield` relay with `SO_BUSY_POLL` (50 µs) and `SO_PREFER_BUSY_POLL` on
//!   its socket, so that every receive that finds the socket empty first runs the underlay
//!   device's NAPI poll in the relay's own context. A veth has a NAPI context only with GRO on
//!   (or an XDP program), which `bench.sh` arranges for this row on an underlay of its own.
//! - `xdp IFACE PEER_MAC`: the `yield` relay with the UDP underlay replaced by an AF_XDP
//!   socket on IFACE (`xdp.rs`): no IP or UDP layer in the kernel on either side and no system
//!   call to receive; the relay writes the Ethernet, IPv4 and UDP headers itself.
//!
//! `scripts/bench.sh --floor --floor-mode M` adds the relay in mode M as a row `floor-M`; the
//! results and why none was adopted are in docs/performance.md, "io_uring for the floor".

use std::env;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use ethcloud::io::Device;
use ethcloud::sys::epoll::Poll;
use ethcloud::sys::tap::TapDevice;

mod uring;
mod xdp;

const SPIN: Duration = Duration::from_micros(50);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("minirelay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `SO_BUSY_POLL` of 50 µs and `SO_PREFER_BUSY_POLL` on `socket` (root may raise them above
/// the `net.core.busy_read` sysctl).
fn busy_poll(socket: &UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    for (name, value) in [(libc::SO_BUSY_POLL, 50), (libc::SO_PREFER_BUSY_POLL, 1)] {
        let value: libc::c_int = value;
        setsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, name, &value)?;
    }
    Ok(())
}

/// setsockopt(2) of `value` (a plain C value of its own size) at `level`/`name` on `fd`.
fn setsockopt<T>(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live `T` of the size given; the kernel only reads it.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// What `SO_INCOMING_NAPI_ID` says of the last datagram `socket` received: the NAPI context
/// that busy polling polls (0: none, so `SO_BUSY_POLL` has nothing to do).
fn napi_id(socket: &UdpSocket) -> String {
    use std::os::fd::AsRawFd;
    let mut id: libc::c_uint = 0;
    let mut len = std::mem::size_of::<libc::c_uint>() as libc::socklen_t;
    // SAFETY: `id` and `len` are live and `len` is `id`'s size.
    let ret = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_INCOMING_NAPI_ID,
            (&mut id as *mut libc::c_uint).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        format!("SO_INCOMING_NAPI_ID: {}", io::Error::last_os_error())
    } else if id == 0 {
        "the socket has no NAPI context to poll (NAPI id 0)".to_string()
    } else {
        format!("polling the NAPI context {id} of the underlay")
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = env::args().skip(1).collect();
    let (tap, listen, peer, secs, mode) =
        match args.as_slice() {
            [tap, listen, peer, secs] => (tap, listen, peer, secs, ""),
            [tap, listen, peer, secs, mode] => (tap, listen, peer, secs, mode.as_str()),
            [tap, listen, peer, secs, mode, iface, peer_mac] if mode == "xdp" => {
                let deadline = Instant::now() + Duration::from_secs(secs.parse()?);
                let mut tap = TapDevice::open_with(tap, false)?;
                return xdp::run(&mut tap, iface, listen.parse()?, peer.parse()?, peer_mac, deadline);
            }
            _ => return Err(
                "usage: minirelay TAP LISTEN PEER SECS [yield|busypoll|uring|uring-spin|uring-defer|sqpoll|xdp IFACE PEER_MAC]"
                    .into(),
            ),
        };
    let peer: SocketAddr = peer.parse()?;
    let deadline = Instant::now() + Duration::from_secs(secs.parse()?);
    let mut tap = TapDevice::open_with(tap, false)?;
    let socket = UdpSocket::bind(listen.parse::<SocketAddr>()?)?;
    socket.set_nonblocking(true)?;
    let yields = match mode {
        "" => false,
        "yield" => true,
        "busypoll" => {
            busy_poll(&socket)?;
            true
        }
        "uring" => return uring::run(&tap, &socket, peer, deadline, uring::Mode::Wait),
        "uring-spin" => return uring::run(&tap, &socket, peer, deadline, uring::Mode::Spin),
        "uring-defer" => return uring::run(&tap, &socket, peer, deadline, uring::Mode::Defer),
        "sqpoll" => return uring::run(&tap, &socket, peer, deadline, uring::Mode::SqPoll),
        other => return Err(format!("unknown mode {other}").into()),
    };
    let mut poll = Poll::new()?;
    poll.register(tap.as_fd(), 0)?;
    poll.register(socket.as_fd(), 1)?;
    let mut buf = vec![0u8; 65_536];
    let mut last_packet = Instant::now();
    // busypoll: the NAPI context the socket polls is reported once, after the first datagram.
    let mut napi_reported = mode != "busypoll";
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        if now.duration_since(last_packet) > SPIN {
            poll.wait(Some(Duration::from_secs(1)))?.for_each(drop);
        }
        let mut moved = false;
        match tap.read(&mut buf) {
            Ok(len) => {
                let _ = socket.send_to(&buf[..len], peer);
                last_packet = Instant::now();
                moved = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
        match socket.recv(&mut buf) {
            Ok(len) => {
                let _ = tap.write_frame(&buf[..len]);
                last_packet = Instant::now();
                moved = true;
                if !napi_reported {
                    napi_reported = true;
                    eprintln!("minirelay: busypoll: {}", napi_id(&socket));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e.into()),
        }
        if yields && !moved {
            std::thread::yield_now();
        }
    }
}
