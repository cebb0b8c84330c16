//! The io_uring variants of the floor relay (see the crate doc): the same relay, one packet
//! per buffer, with the reads, receives, sends and writes made through one io_uring.

use std::error::Error;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use ethcloud::sys::tap::TapDevice;

/// How the relay waits for completions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Always in `io_uring_enter`.
    Wait,
    /// Spins on the completion ring after a packet (no system call while spinning).
    Spin,
    /// As `Spin`, with the completion work deferred to the next `io_uring_enter`
    /// (`IORING_SETUP_DEFER_TASKRUN`).
    Defer,
    /// As `Spin`, with a kernel thread taking the submissions.
    SqPoll,
}

/// After a packet, spin this long before sleeping (ethcloud's default `--busy-poll`).
const SPIN: Duration = Duration::from_micros(50);
/// Buffers per direction: one being read into, the others waiting for their send or write.
const BUFS: usize = 8;
const BUF_LEN: usize = 65_536;

const TAP_READ: u64 = 0;
const SOCK_RECV: u64 = 1;
const SEND: u64 = 2;
const TAP_WRITE: u64 = 3;

fn tag(kind: u64, index: usize) -> u64 {
    kind << 32 | index as u64
}

/// The buffers of one direction and which of them are free.
struct Pool {
    bufs: Vec<Box<[u8]>>,
    free: Vec<bool>,
    /// A read is to be posted as soon as a buffer is free.
    waiting: bool,
}

impl Pool {
    fn new() -> Pool {
        Pool {
            bufs: (0..BUFS)
                .map(|_| vec![0u8; BUF_LEN].into_boxed_slice())
                .collect(),
            free: vec![true; BUFS],
            waiting: false,
        }
    }

    fn take(&mut self) -> Option<usize> {
        let index = self.free.iter().position(|&f| f)?;
        self.free[index] = false;
        Some(index)
    }
}

fn set_blocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on a file descriptor this process owns, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `peer` as a `sockaddr_storage` and its length, for `sendmsg`.
fn sockaddr(peer: SocketAddr) -> (Box<libc::sockaddr_storage>, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid (AF_UNSPEC) value.
    let mut storage: Box<libc::sockaddr_storage> = Box::new(unsafe { std::mem::zeroed() });
    let len = match peer {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut *storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            unsafe { std::ptr::write(std::ptr::from_mut(&mut *storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Queues `entry`, submitting what is queued first if the submission ring is full.
fn push(ring: &mut IoUring, entry: squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: every buffer, iovec and msghdr an entry points to lives in `run`'s pools and
        // vectors, which are neither freed nor moved until it returns, and a buffer is reused
        // only after its operation completed.
        if unsafe { ring.submission().push(&entry) }.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

/// Posts a read of kind `kind` (`TAP_READ` or `SOCK_RECV`) on `fd` into a free buffer of
/// `pool`, or notes that one is waiting for a buffer.
fn post_read(ring: &mut IoUring, pool: &mut Pool, fd: i32, kind: u64) -> io::Result<()> {
    let Some(i) = pool.take() else {
        pool.waiting = true;
        return Ok(());
    };
    let (buf, len) = (pool.bufs[i].as_mut_ptr(), BUF_LEN as u32);
    let entry = if kind == TAP_READ {
        opcode::Read::new(types::Fd(fd), buf, len).build()
    } else {
        opcode::Recv::new(types::Fd(fd), buf, len).build()
    };
    push(ring, entry.user_data(tag(kind, i)))
}

/// Frees buffer `i` of `pool` after its send or write, and posts the read waiting for it.
fn release(ring: &mut IoUring, pool: &mut Pool, i: usize, fd: i32, kind: u64) -> io::Result<()> {
    pool.free[i] = true;
    if pool.waiting {
        pool.waiting = false;
        return post_read(ring, pool, fd, kind);
    }
    Ok(())
}

/// Relays until `deadline`, waiting as `mode` says.
pub fn run(
    tap: &TapDevice,
    socket: &UdpSocket,
    peer: SocketAddr,
    deadline: Instant,
    mode: Mode,
) -> Result<(), Box<dyn Error>> {
    let (tap_fd, sock_fd) = (tap.as_raw_fd(), socket.as_raw_fd());
    // With O_NONBLOCK, io_uring hands back EAGAIN instead of waiting for readiness.
    set_blocking(tap_fd)?;
    set_blocking(sock_fd)?;
    let mut builder = IoUring::<squeue::Entry, cqueue::Entry>::builder();
    match mode {
        Mode::Wait => {}
        Mode::Spin => {
            builder.setup_coop_taskrun().setup_taskrun_flag();
        }
        Mode::Defer => {
            builder
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag();
        }
        Mode::SqPoll => {
            builder.setup_sqpoll(1000);
        }
    }
    let mut ring = builder.build(64)?;

    let mut from_tap = Pool::new();
    let mut from_socket = Pool::new();
    let (name, name_len) = sockaddr(peer);
    // One iovec and msghdr per tap buffer, allocated once: the kernel reads them at submission.
    let mut iovecs: Vec<libc::iovec> = from_tap
        .bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 0,
        })
        .collect();
    let msgs: Vec<libc::msghdr> = (0..BUFS)
        .map(|i| {
            // SAFETY: an all-zero msghdr is valid; the fields used are set below.
            let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
            m.msg_name = std::ptr::from_ref(&*name).cast_mut().cast();
            m.msg_namelen = name_len;
            m.msg_iov = &mut iovecs[i];
            m.msg_iovlen = 1;
            m
        })
        .collect();

    post_read(&mut ring, &mut from_tap, tap_fd, TAP_READ)?;
    post_read(&mut ring, &mut from_socket, sock_fd, SOCK_RECV)?;

    let timeout = types::Timespec::new().sec(1);
    let wait_args = types::SubmitArgs::new().timespec(&timeout);
    let mut done: Vec<(u64, i32)> = Vec::with_capacity(64);
    let mut last_packet = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        let spinning = mode != Mode::Wait && now.duration_since(last_packet) <= SPIN;
        if spinning {
            // With SQPOLL, `submit` makes a system call only to wake the sleeping thread;
            // otherwise only if there is something to submit or work the kernel flagged.
            let sq = ring.submission();
            if mode == Mode::SqPoll || !sq.is_empty() || sq.taskrun() || sq.cq_overflow() {
                drop(sq);
                ring.submit()?;
            }
        } else {
            match ring.submitter().submit_with_args(1, &wait_args) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ETIME) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        done.clear();
        done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        let mut moved = false;
        for &(data, result) in &done {
            let (kind, i) = (data >> 32, (data & 0xffff_ffff) as usize);
            match kind {
                TAP_READ => {
                    if result > 0 {
                        moved = true;
                        iovecs[i].iov_len = result as usize;
                        push(
                            &mut ring,
                            opcode::SendMsg::new(types::Fd(sock_fd), &msgs[i])
                                .build()
                                .user_data(tag(SEND, i)),
                        )?;
                    } else {
                        from_tap.free[i] = true;
                        if result < 0 && -result != libc::EAGAIN && -result != libc::EINTR {
                            return Err(io::Error::from_raw_os_error(-result).into());
                        }
                    }
                    post_read(&mut ring, &mut from_tap, tap_fd, TAP_READ)?;
                }
                SEND => release(&mut ring, &mut from_tap, i, tap_fd, TAP_READ)?,
                SOCK_RECV => {
                    if result > 0 {
                        moved = true;
                        push(
                            &mut ring,
                            opcode::Write::new(
                                types::Fd(tap_fd),
                                from_socket.bufs[i].as_ptr(),
                                result as u32,
                            )
                            .build()
                            .user_data(tag(TAP_WRITE, i)),
                        )?;
                    } else {
                        // Errors from ICMP about earlier sends, or an empty datagram.
                        from_socket.free[i] = true;
                    }
                    post_read(&mut ring, &mut from_socket, sock_fd, SOCK_RECV)?;
                }
                _ => release(&mut ring, &mut from_socket, i, sock_fd, SOCK_RECV)?,
            }
        }
        if moved {
            last_packet = now;
        } else if spinning {
            std::thread::yield_now();
        }
    }
}
