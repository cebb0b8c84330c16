//! [`TapDevice`]: a Linux tap interface, opened through `/dev/net/tun`.
//!
//! Owns opening the device, the name rules, and reading and writing whole Ethernet frames.
//! The `TUNSETIFF` ioctl is done by the C helper `c/tapdev.c`, which also reports the name the
//! kernel chose (so a template such as `ethcloud%d` becomes `ethcloud0`). It does not configure
//! addresses or bring the link up: that is the operator's job (`ip link set ... up`).
//!
//! With offloads ([`TapDevice::open_with`]), the device is opened with `IFF_VNET_HDR` and
//! `TUNSETOFFLOAD` (checksum, TSO4/6, USO4/6, each probed, falling back to less): every read
//! then starts with a virtio-net header and may be a 64 KiB super-frame, which the daemon cuts
//! with `offload::segment`; frames written go through an `offload::coalesce::Coalescer` (TCP,
//! and UDP too when the kernel grants USO), and [`Device::flush`] writes what it holds.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::error::Error;
use crate::io::{Device, FlushError};
use crate::offload::coalesce::{partial_checksum, Coalescer, Push};
use crate::offload::flow::queue_of;
use crate::offload::vnet::{VnetHdr, VNET_HDR_LEN};

/// The size of a Linux interface-name buffer, NUL included (`IFNAMSIZ`).
pub const IFNAMSIZ: usize = libc::IFNAMSIZ;

const TUN_PATH: &str = "/dev/net/tun";

extern "C" {
    /// `c/tapdev.c`: `TUNSETIFF` with `IFF_TAP | IFF_NO_PI` (and `IFF_VNET_HDR` if `vnet_hdr`
    /// is non-zero, `IFF_MULTI_QUEUE` if `multi_queue` is) on `fd`, then copies the kernel's
    /// name back into `name`. Returns 0 or `-errno`.
    fn ethcloud_tap_setup(
        fd: c_int,
        name: *mut c_char,
        name_len: usize,
        vnet_hdr: c_int,
        multi_queue: c_int,
    ) -> c_int;
}

/// Which offloads the tap device accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapOffloads {
    /// Frames carry a virtio-net header (`IFF_VNET_HDR`).
    pub vnet_hdr: bool,
    /// The kernel may leave checksums to us (`TUN_F_CSUM`).
    pub checksum: bool,
    /// TCP super-frames (`TUN_F_TSO4 | TUN_F_TSO6`).
    pub tso: bool,
    /// UDP super-frames (`TUN_F_USO4 | TUN_F_USO6`, Linux 6.2+).
    pub uso: bool,
}

impl core::fmt::Display for TapOffloads {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if !self.vnet_hdr {
            return f.write_str("off");
        }
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "vnet header, checksum {}, tso {}, uso {}, coalescing tcp on, udp {}",
            on(self.checksum),
            on(self.tso),
            on(self.uso),
            on(self.uso)
        )
    }
}

/// Checks `name` against the kernel's rules for interface names, so a bad name gets a clear
/// message instead of a bare `EINVAL`.
///
/// A `%d` template (e.g. `ethcloud%d`) is allowed: the kernel replaces it with a number.
///
/// # Errors
///
/// A short reason: empty, too long (the limit is `IFNAMSIZ - 1` = 15 bytes), NUL, `/`, `:` or
/// white space in the name, or `.`/`..`.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("the name is empty")
    } else if name.len() >= IFNAMSIZ {
        Err("longer than 15 bytes, the kernel's IFNAMSIZ limit")
    } else if name.contains('\0') {
        Err("contains a NUL byte")
    } else if name.contains(['/', ':']) || name.contains(char::is_whitespace) {
        Err("contains '/', ':' or white space")
    } else if name.bytes().any(|b| b == 0xa0) {
        // The kernel's isspace() takes byte 0xA0 for white space, and UTF-8 has it inside
        // many characters ('à' is C3 A0, Cyrillic 'Р' D0 A0): TUNSETIFF would say EINVAL.
        Err("contains a byte the kernel takes for white space (0xA0, as in 'à' or 'Р')")
    } else if name.contains(char::is_control) {
        // The kernel would take ESC and the like; the name goes into logs and the status file.
        Err("contains a control character")
    } else if name == "." || name == ".." {
        Err("'.' and '..' are not interface names")
    } else if name.contains('%') && (name.matches('%').count() > 1 || !name.contains("%d")) {
        // The kernel numbers a name with one %d and refuses any other %.
        Err("a '%' other than one '%d' (the kernel's number)")
    } else {
        Ok(())
    }
}

/// What a persistent tap keeps from whoever attached to it before (an earlier run, or
/// another program such as QEMU), set back to what ethcloud reads and writes: with a vnet
/// header, its size ([`VNET_HDR_LEN`]; a program that set 12 would shift every frame by two
/// bytes); without one, no offloads (else the kernel would hand over 64 KiB super-frames,
/// cut to the read buffer without a word). A tap ethcloud creates has both already. The
/// device also keeps a destination filter (`TUNSETTXFILTER`) from before, which would drop
/// frames on their way to us (counted as the tap's own drops, which read as a slow daemon):
/// it is turned off. (A socket filter, `TUNATTACHFILTER`, the device keeps too is never put on
/// our queues: `IFF_NO_PI`, which we attach with, is also `IFF_NOFILTER`. A send buffer size,
/// `TUNSETSNDBUF`, is not given to queues that attach later.)
fn reset_persistent_state(file: &File, vnet_hdr: bool) -> io::Result<()> {
    // `struct tun_filter`'s header: no flags, a count of 0 (no addresses follow), which turns
    // the filter off.
    let no_filter: [u16; 2] = [0, 0];
    // SAFETY: `file` is an open tun fd attached to a tap; TUNSETTXFILTER reads the 4-byte
    // header through the pointer (and no address, the count being 0), which points at
    // `no_filter` for the whole call.
    unsafe { syscall!(ioctl(file.as_raw_fd(), libc::TUNSETTXFILTER, &no_filter)) }?;
    if vnet_hdr {
        let size = libc::c_int::try_from(VNET_HDR_LEN).unwrap_or(10);
        // SAFETY: `file` is an open tun fd attached to a device; TUNSETVNETHDRSZ reads one
        // c_int through the pointer, which points at `size` for the whole call.
        unsafe { syscall!(ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size)) }?;
    } else {
        // SAFETY: `file` is an open tun fd attached to a device; TUNSETOFFLOAD takes the
        // flags by value and touches no memory of ours.
        unsafe {
            syscall!(ioctl(
                file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                c_ulong::from(0u8)
            ))
        }?;
    }
    Ok(())
}

/// An open tap device: whole Ethernet frames in and out, non-blocking.
#[derive(Debug)]
pub struct TapDevice {
    /// The `/dev/net/tun` file, attached to the interface (holds the `OwnedFd`).
    file: File,
    /// The name the kernel gave the interface.
    name: String,
    offloads: TapOffloads,
    /// Holds TCP segments (and UDP datagrams, with USO) on their way to the tap (only with a
    /// vnet header).
    coalescer: Option<Coalescer>,
    /// The node trusts the frames' checksums and we complete them ([`Device::trust_checksums`]):
    /// TCP and UDP frames are written with their checksum left to the kernel.
    completes: bool,
    /// Held frames whose write failed, reported at the next [`Device::flush`].
    failed: u64,
    first_error: Option<io::Error>,
    /// With several queues ([`TapDevice::open_queues`]): the other queues' fds (duplicates of
    /// the lanes' [`TapQueue`]s). Each frame is written through the queue its flow hashes to
    /// ([`queue_of`]), so that the kernel sends the flow's outgoing frames to that queue's
    /// lane; empty with one queue.
    other_queues: Vec<File>,
    /// The other queues for reading, until the lanes take them ([`TapDevice::take_lanes`]).
    lanes: Vec<TapQueue>,
}

/// One more queue of a multi-queue tap, for a `--threads` lane: reads only (every write
/// goes through the [`TapDevice`], which picks the queue).
#[derive(Debug)]
pub struct TapQueue {
    file: File,
}

impl TapQueue {
    /// Reads one frame (or, with a vnet header, one super-frame) into `buf`, as
    /// [`TapDevice::read`] does.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when no frame is waiting; any other OS error as is.
    // HOT PATH
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl AsFd for TapQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl TapDevice {
    /// Creates (or attaches to) the tap device `name`; `%d` in the name lets the kernel pick
    /// the number. The fd is opened `O_RDWR | O_NONBLOCK | O_CLOEXEC`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDeviceName`] if [`check_name`] rejects `name`, or [`Error::OpenTap`]
    /// if `/dev/net/tun` cannot be opened or the kernel refuses the device (e.g. no
    /// `CAP_NET_ADMIN`).
    pub fn open(name: &str) -> Result<TapDevice, Error> {
        Self::open_with(name, false)
    }

    /// Like [`TapDevice::open`]; with `offload`, also asks for a virtio-net header and the
    /// checksum, TSO and USO offloads, taking what the kernel grants (see
    /// [`TapDevice::offloads`]). A kernel that refuses the header gets a plain tap.
    ///
    /// # Errors
    ///
    /// As [`TapDevice::open`].
    pub fn open_with(name: &str, offload: bool) -> Result<TapDevice, Error> {
        Self::open_offload(name, offload, false)
    }

    /// Like [`TapDevice::open_with`], with `queues` queues (`IFF_MULTI_QUEUE`) if more than
    /// one: the device reads from the first and writes through all of them, and the
    /// `queues - 1` others wait in [`TapDevice::take_lanes`] for the lanes to read from. With
    /// one queue this is [`TapDevice::open_with`].
    ///
    /// # Errors
    ///
    /// As [`TapDevice::open`]; a device that exists already without `IFF_MULTI_QUEUE` (or
    /// with it, asked for one queue) is refused by the kernel with `EINVAL`. A multi-queue tap
    /// that another program has a queue of open is refused with `EBUSY`, as the kernel refuses
    /// a single-queue one: the kernel would add our queues to it, and both programs would get
    /// a share of each other's frames (and we would rewrite the settings the device shares).
    pub fn open_queues(name: &str, offload: bool, queues: usize) -> Result<TapDevice, Error> {
        // (Each queue attaches to the same device, whose header size and offloads the first
        // one set: see `reset_persistent_state`.)
        if queues <= 1 {
            return Self::open_with(name, offload);
        }
        match super::netdev::tap_in_use(name) {
            Ok(false) => {}
            Ok(true) => {
                return Err(Error::OpenTap {
                    name: name.to_owned(),
                    source: io::Error::from_raw_os_error(libc::EBUSY),
                })
            }
            // Not known (a sandbox without netlink): the kernel's own checks only.
            Err(e) => log::debug!("cannot tell whether {name} is in use: {e}"),
        }
        let mut tap = Self::open_offload(name, offload, true)?;
        let vnet_hdr = tap.offloads.vnet_hdr;
        for _ in 1..queues {
            let (file, _) = attach(&tap.name, vnet_hdr, true)?;
            let writer = file.try_clone().map_err(|source| Error::OpenTap {
                name: tap.name.clone(),
                source,
            })?;
            tap.other_queues.push(writer);
            tap.lanes.push(TapQueue { file });
        }
        Ok(tap)
    }

    /// The queues opened for lanes by [`TapDevice::open_queues`] (once; empty after).
    pub fn take_lanes(&mut self) -> Vec<TapQueue> {
        std::mem::take(&mut self.lanes)
    }

    fn open_offload(name: &str, offload: bool, multi_queue: bool) -> Result<TapDevice, Error> {
        if offload {
            if let Ok(mut tap) = Self::open_flags(name, true, multi_queue) {
                tap.offloads = tap.probe_offloads();
                // UDP super-frames are only written to a tap that takes them (USO).
                tap.coalescer = Some(if tap.offloads.uso {
                    Coalescer::with_udp()
                } else {
                    Coalescer::new()
                });
                return Ok(tap);
            }
        }
        Self::open_flags(name, false, multi_queue)
    }

    /// Asks for the most offloads the kernel grants: everything, then without USO, then
    /// none (the vnet header stays; it is then just zeroes).
    fn probe_offloads(&self) -> TapOffloads {
        let csum = libc::TUN_F_CSUM;
        let tso = libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
        let uso = libc::TUN_F_USO4 | libc::TUN_F_USO6;
        for (flags, offloads) in [
            (
                csum | tso | uso,
                TapOffloads {
                    vnet_hdr: true,
                    checksum: true,
                    tso: true,
                    uso: true,
                },
            ),
            (
                csum | tso,
                TapOffloads {
                    vnet_hdr: true,
                    checksum: true,
                    tso: true,
                    uso: false,
                },
            ),
            (
                0,
                TapOffloads {
                    vnet_hdr: true,
                    ..TapOffloads::default()
                },
            ),
        ] {
            // SAFETY: `file` is an open tun fd attached to a device; TUNSETOFFLOAD takes the
            // flags by value and touches no memory of ours.
            if unsafe {
                syscall!(ioctl(
                    self.file.as_raw_fd(),
                    libc::TUNSETOFFLOAD,
                    c_ulong::from(flags)
                ))
            }
            .is_ok()
            {
                return offloads;
            }
        }
        TapOffloads {
            vnet_hdr: true,
            ..TapOffloads::default()
        }
    }

    fn open_flags(name: &str, vnet_hdr: bool, multi_queue: bool) -> Result<TapDevice, Error> {
        let (file, real_name) = attach(name, vnet_hdr, multi_queue)?;
        reset_persistent_state(&file, vnet_hdr).map_err(|source| Error::OpenTap {
            name: real_name.clone(),
            source,
        })?;
        Ok(TapDevice {
            file,
            name: real_name,
            offloads: TapOffloads {
                vnet_hdr,
                ..TapOffloads::default()
            },
            coalescer: None,
            completes: false,
            failed: 0,
            first_error: None,
            other_queues: Vec::new(),
            lanes: Vec::new(),
        })
    }

    /// The offloads in force.
    pub fn offloads(&self) -> TapOffloads {
        self.offloads
    }

    /// Bytes of virtio-net header in front of every frame read: [`VNET_HDR_LEN`] or 0.
    pub fn vnet_hdr_len(&self) -> usize {
        if self.offloads.vnet_hdr {
            VNET_HDR_LEN
        } else {
            0
        }
    }

    /// Writes what the coalescer holds; a failure is remembered for [`Device::flush`].
    // HOT PATH
    fn write_held(&mut self) {
        let Some(coalescer) = self.coalescer.as_mut() else {
            return;
        };
        let count = coalescer.held() as u64;
        let Some((hdr, frame)) = coalescer.take() else {
            return;
        };
        if let Err(e) = write_vnet(
            queue_for(&self.file, &self.other_queues, frame),
            &hdr,
            &[frame],
        ) {
            self.remember(count, e);
        }
    }

    fn remember(&mut self, count: u64, error: io::Error) {
        self.failed += count;
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }

    /// The interface name the kernel chose (never a `%d` template).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame into `buf` and returns its length. A frame longer than `buf` is cut.
    /// With a vnet header ([`TapDevice::vnet_hdr_len`] > 0), `buf` starts with that header
    /// and the frame may be a super-frame of up to 64 KiB.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when no frame is waiting; any other OS error as is.
    // HOT PATH
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

/// Opens `/dev/net/tun` and attaches it to the tap `name` with the given flags; returns the
/// file and the name the kernel chose.
fn attach(name: &str, vnet_hdr: bool, multi_queue: bool) -> Result<(File, String), Error> {
    check_name(name).map_err(|reason| Error::InvalidDeviceName {
        name: name.to_owned(),
        reason,
    })?;
    let open_error = |source| Error::OpenTap {
        name: name.to_owned(),
        source,
    };
    // std opens with O_CLOEXEC and returns the fd already owned by the `File`.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(TUN_PATH)
        .map_err(open_error)?;

    let mut buf = [0 as c_char; IFNAMSIZ];
    for (slot, byte) in buf.iter_mut().zip(name.bytes()) {
        *slot = c_char::from_ne_bytes([byte]);
    }
    // SAFETY: `file` owns an open /dev/net/tun fd for the duration of the call; `buf` is
    // a writable buffer of exactly `buf.len()` == IFNAMSIZ bytes, NUL-terminated because
    // `check_name` proved `name.len() < IFNAMSIZ` and the buffer started zeroed.
    let rc = unsafe {
        ethcloud_tap_setup(
            file.as_raw_fd(),
            buf.as_mut_ptr(),
            buf.len(),
            c_int::from(vnet_hdr),
            c_int::from(multi_queue),
        )
    };
    if rc < 0 {
        let errno = rc.checked_neg().unwrap_or(libc::EINVAL);
        return Err(open_error(io::Error::from_raw_os_error(errno)));
    }
    let bytes = buf.map(|c| c.to_ne_bytes()[0]);
    let real_name = CStr::from_bytes_until_nul(&bytes)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
    Ok((file, real_name))
}

/// Writes the virtio-net header `hdr` and behind it the frame made of `parts` (one to three
/// slices, in order), in one `writev`.
// HOT PATH
fn write_vnet(fd: BorrowedFd<'_>, hdr: &VnetHdr, parts: &[&[u8]]) -> io::Result<()> {
    let head = hdr.to_bytes();
    let iovec = |b: &[u8]| libc::iovec {
        iov_base: b.as_ptr().cast_mut().cast::<c_void>(),
        iov_len: b.len(),
    };
    let mut iov = [iovec(&head), iovec(&[]), iovec(&[]), iovec(&[])];
    let count = 1 + parts.len();
    let slots = iov.get_mut(1..count).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a frame in more than three parts",
        )
    })?;
    for (slot, part) in slots.iter_mut().zip(parts) {
        *slot = iovec(part);
    }
    let len = head.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    // SAFETY: `fd` is an open tun fd borrowed for the call; the first `count` (at most four)
    // iovecs of `iov` point to `head` and the parts, all alive and of the given lengths for
    // the whole call, and writev only reads them.
    let written = unsafe { syscall!(writev(fd.as_raw_fd(), iov.as_ptr(), count as libc::c_int)) }?;
    if usize::try_from(written).ok() == Some(len) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short write to the tap device",
        ))
    }
}

/// The fd to write `frame` through: `first` with one queue, else the queue its flow hashes
/// to among `first` and `others`.
// HOT PATH
fn queue_for<'a>(first: &'a File, others: &'a [File], frame: &[u8]) -> BorrowedFd<'a> {
    if others.is_empty() {
        return first.as_fd();
    }
    match queue_of(frame, others.len() + 1).checked_sub(1) {
        Some(i) => others.get(i).map_or(first.as_fd(), AsFd::as_fd),
        None => first.as_fd(),
    }
}

/// Writes `frame` as is (no vnet header) to `fd`; returns how many bytes the kernel took.
// HOT PATH
fn write_plain(fd: BorrowedFd<'_>, frame: &[u8]) -> io::Result<usize> {
    // SAFETY: `fd` is an open tun fd borrowed for the call; `frame` is alive and of the given
    // length for the whole call, and write only reads it.
    let written = unsafe {
        syscall!(write(
            fd.as_raw_fd(),
            frame.as_ptr().cast::<c_void>(),
            frame.len()
        ))
    }?;
    Ok(usize::try_from(written).unwrap_or(0))
}

impl Device for TapDevice {
    /// Writes one frame; the kernel takes it whole or not at all. With offloads, a TCP
    /// segment (or, with USO, a UDP datagram) may be held for coalescing until the next
    /// [`Device::flush`]; any other frame is written at once (after what is held, so the
    /// order is kept).
    // HOT PATH
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        if self.offloads.vnet_hdr {
            if let Some(coalescer) = self.coalescer.as_mut() {
                match coalescer.push(frame) {
                    Push::Held => return Ok(()),
                    Push::Rejected => {}
                    Push::FlushFirst => {
                        self.write_held();
                        if let Some(coalescer) = self.coalescer.as_mut() {
                            if coalescer.push(frame) == Push::Held {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            let fd = queue_for(&self.file, &self.other_queues, frame);
            if let Some(partial) = self.completes.then(|| partial_checksum(frame)).flatten() {
                // Its checksum may have been left partial by the peer (Hello flag 0x20).
                let (head, tail) = frame.split_at(partial.field);
                let field = partial.pseudo.to_be_bytes();
                let rest = tail.get(2..).unwrap_or_default();
                return write_vnet(fd, &partial.hdr, &[head, &field, rest]);
            }
            return write_vnet(fd, &VnetHdr::default(), &[frame]);
        }
        let written = write_plain(queue_for(&self.file, &self.other_queues, frame), frame)?;
        if written == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to the tap device",
            ))
        }
    }

    /// Sets the coalescer's trust ([`Coalescer::trust_checksums`]), if there is one.
    /// With a vnet header: the coalescer trusts the checksums ([`Coalescer::trust_checksums`])
    /// and lone TCP and UDP frames are written with their checksum left to the kernel, so this
    /// device completes checksums (true). Without one, nothing changes (false).
    fn trust_checksums(&mut self, on: bool) -> bool {
        let Some(coalescer) = self.coalescer.as_mut() else {
            return false;
        };
        coalescer.trust_checksums(on);
        self.completes = on;
        on
    }

    /// Writes the coalesced super-frame, if any, and reports held frames whose write failed.
    // HOT PATH
    fn flush(&mut self) -> Result<(), FlushError> {
        self.write_held();
        match self.first_error.take() {
            None => Ok(()),
            Some(error) => Err(FlushError {
                dropped: core::mem::take(&mut self.failed),
                // (Frames to the tap: counted as one kind of drop whatever the error.)
                would_block: 0,
                // (Frames to the tap: no byte counter to correct.)
                dropped_bytes: 0,
                error,
            }),
        }
    }
}

impl AsFd for TapDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for TapDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_name_accepts_template_and_15_bytes() {
        assert_eq!(check_name("ethcloud%d"), Ok(()));
        assert_eq!(check_name("abcdefghijklmno"), Ok(()));
    }

    #[test]
    fn check_name_rejects_16_bytes_empty_nul_slash_space_and_dots() {
        assert!(check_name("abcdefghijklmnop").is_err());
        assert!(check_name("eth\u{1b}[2J").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("eth\0").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a:1").is_err());
        assert!(check_name("..").is_err());
        // 15 bytes, but 16 once UTF-8 is counted: bytes matter, not characters.
        assert!(check_name("ééééééééx").is_err());
        // Byte 0xA0 is white space to the kernel.
        assert!(check_name("vpnà").is_err());
        assert!(check_name("Р%d").is_err());
        assert!(check_name("vpné").is_ok());
    }

    #[test]
    fn open_rejects_bad_name_before_touching_the_kernel() {
        let err = TapDevice::open("a-name-of-20-chars!!").unwrap_err();
        assert!(matches!(err, Error::InvalidDeviceName { .. }), "{err}");
    }

    #[test]
    fn check_name_takes_one_percent_d_and_no_other_percent() {
        for bad in ["a%s", "a%d%d", "100%", "%%d"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(check_name("%dnet"), Ok(()));
    }

    /// Makes the tap whose fd is `fd` persistent (it outlives its last fd), or not.
    fn persist(fd: std::os::fd::RawFd, on: bool) {
        // SAFETY: `fd` is an open tun fd attached to a device; the flag is passed by value
        // and the ioctl touches no memory of ours.
        unsafe { syscall!(ioctl(fd, libc::TUNSETPERSIST, c_ulong::from(on))) }.unwrap();
    }

    #[test]
    #[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
    fn a_persistent_tap_another_program_left_with_a_12_byte_header_is_set_back_to_10() {
        let (vnet_hdr, size) = crate::sys::testing::in_own_netns(|| {
            // What QEMU does with a tap: a 12-byte header (with num_buffers), kept as the
            // tap is made persistent.
            let (file, _) = attach("ecvt0", true, false).unwrap();
            let twelve: c_int = 12;
            // SAFETY: an open tun fd attached to a device; the ioctl reads one c_int.
            unsafe { syscall!(ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &twelve)) }.unwrap();
            persist(file.as_raw_fd(), true);
            drop(file);
            let header = |tap: &TapDevice| {
                let mut size: c_int = 0;
                // SAFETY: an open tun fd attached to a device; the ioctl writes one c_int
                // through the pointer, which points at `size` for the whole call.
                unsafe { syscall!(ioctl(tap.as_raw_fd(), libc::TUNGETVNETHDRSZ, &mut size)) }
                    .unwrap();
                size
            };
            let tap = TapDevice::open_with("ecvt0", true).unwrap();
            let size = header(&tap);
            // The device goes when this last fd closes.
            persist(tap.as_raw_fd(), false);
            (tap.offloads().vnet_hdr, size)
        });
        assert!(vnet_hdr);
        assert_eq!(size, 10);
    }

    /// A persistent tap another program left with a destination filter (frames to one MAC
    /// only) and a socket filter that drops everything: the first is turned off and the
    /// second never reaches our queue, so frames to any MAC reach us.
    #[test]
    #[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
    fn a_persistent_tap_another_program_left_with_filters_delivers_every_frame() {
        let read = crate::sys::testing::in_own_netns(|| {
            use crate::sys::testing::run;
            let (file, _) = attach("ectf0", true, false).unwrap();
            // `struct tun_filter` (flags 0, count 1, in the host's byte order) with one
            // address, not the neighbour's below.
            let mut filter = [0u8; 10];
            filter[2..4].copy_from_slice(&1u16.to_ne_bytes());
            filter[4..].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
            // SAFETY: an open tun fd attached to a tap; the ioctl reads the 4-byte header
            // and the one address it counts, all in `filter`.
            unsafe { syscall!(ioctl(file.as_raw_fd(), libc::TUNSETTXFILTER, &filter)) }.unwrap();
            // A classic BPF program of one instruction: return 0 (drop).
            let mut drop_all = [libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0,
            }];
            let program = libc::sock_fprog {
                len: 1,
                filter: drop_all.as_mut_ptr(),
            };
            // SAFETY: as above; the ioctl reads the `sock_fprog` and the one instruction it
            // points at, both alive for the call.
            unsafe { syscall!(ioctl(file.as_raw_fd(), libc::TUNATTACHFILTER, &program)) }.unwrap();
            persist(file.as_raw_fd(), true);
            drop(file);
            let mut tap = TapDevice::open_with("ectf0", true).unwrap();
            run("ip link set ectf0 addrgenmode none");
            run("ip link set ectf0 up");
            run("ip addr add 198.18.78.1/24 dev ectf0");
            run("ip neigh add 198.18.78.2 lladdr 02:00:00:00:00:02 dev ectf0");
            let socket = std::net::UdpSocket::bind("198.18.78.1:0").unwrap();
            socket.send_to(&[7u8; 64], "198.18.78.2:9").unwrap();
            let mut buf = vec![0u8; 70_000];
            let start = std::time::Instant::now();
            let read = loop {
                match tap.read(&mut buf) {
                    Ok(len) => break Some(len),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                if start.elapsed() > std::time::Duration::from_secs(5) {
                    break None;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            };
            persist(tap.as_raw_fd(), false);
            read
        });
        assert!(
            read.is_some(),
            "the frame to 02:00:00:00:00:02 was filtered out"
        );
    }

    /// A multi-queue tap: a second daemon (or any program) asking for queues of one that is in
    /// use is refused as a single-queue one would be (the kernel would add its queues to the
    /// first one's device); one whose queues were all closed, left persistent, is taken.
    #[test]
    #[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
    fn a_multi_queue_tap_in_use_is_refused_and_an_idle_one_taken() {
        let (busy_down, busy_up, idle) = crate::sys::testing::in_own_netns(|| {
            let first = TapDevice::open_queues("ecmq0", true, 2).unwrap();
            // Down (as made) or up: its count of attached queues says it.
            let busy_down = TapDevice::open_queues("ecmq0", true, 2).err();
            crate::sys::testing::run("ip link set ecmq0 up");
            // With its carrier turned off by hand: the count of queues still tells.
            crate::sys::testing::run("ip link set ecmq0 carrier off");
            let busy_up = TapDevice::open_queues("ecmq0", true, 3).err();
            persist(first.as_raw_fd(), true);
            drop(first);
            // (A child that another test thread is spawning holds copies of the queues'
            // descriptors until its exec: for those microseconds the tap is in use.)
            let start = std::time::Instant::now();
            let again = loop {
                let again = TapDevice::open_queues("ecmq0", true, 2).map(|t| t.name().to_owned());
                let busy = matches!(&again, Err(Error::OpenTap { source, .. })
                    if source.raw_os_error() == Some(libc::EBUSY));
                if !busy || start.elapsed() > std::time::Duration::from_secs(5) {
                    break again;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            };
            crate::sys::testing::run("ip link del ecmq0");
            (busy_down, busy_up, again)
        });
        for err in [busy_down, busy_up] {
            match err {
                Some(Error::OpenTap { source, .. }) => {
                    assert_eq!(source.raw_os_error(), Some(libc::EBUSY), "{source}");
                }
                other => panic!("a tap in use taken: {other:?}"),
            }
        }
        assert_eq!(idle.as_deref().ok(), Some("ecmq0"), "{idle:?}");
    }

    /// A frame longer than a datagram holds (the tap's MTU raised by hand, no offloads): a tap
    /// read copies what the buffer takes and returns that, so read into a room of exactly
    /// `MAX_FRAME_LEN` it came back cut to a length that looked whole and was forwarded; the
    /// daemon's room (`PacketBuf::read_room`) is one byte longer, and it comes back too long,
    /// which `forward` drops as `bad_device_frame`.
    #[test]
    #[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
    fn a_frame_longer_than_a_datagram_holds_reads_back_too_long_not_cut_to_fit() {
        use crate::buf::PacketBuf;
        use crate::wire::MAX_FRAME_LEN;
        let (cut, read) = crate::sys::testing::in_own_netns(|| {
            use crate::sys::testing::run;
            let mut tap = TapDevice::open_with("ecbig0", false).unwrap();
            run("ip link set ecbig0 addrgenmode none");
            run("ip link set ecbig0 mtu 65521");
            run("ip link set ecbig0 up");
            // Two frames of 65,535 bytes (a 14-byte header and 65,521 bytes), sent on the
            // device through a packet socket, so that they come out of our end of the tap.
            let send = "import socket; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); \
                        s.bind(('ecbig0', 0)); \
                        f = bytes.fromhex('02000000000202000000000188b5') + bytes(65521); \
                        [s.send(f) for _ in range(2)]";
            let ok = std::process::Command::new("python3")
                .args(["-c", send])
                .status()
                .unwrap();
            assert!(ok.success(), "python3: {ok}");
            let mut reads = Vec::new();
            let mut room = vec![0u8; MAX_FRAME_LEN];
            let mut buf = PacketBuf::new();
            let start = std::time::Instant::now();
            while reads.len() < 2 && start.elapsed() < std::time::Duration::from_secs(5) {
                let into = if reads.is_empty() {
                    &mut room[..]
                } else {
                    buf.read_room()
                };
                match tap.read(into) {
                    Ok(len) => reads.push(len),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            (reads.first().copied(), reads.get(1).copied())
        });
        assert_eq!(cut, Some(MAX_FRAME_LEN), "the kernel cuts to the buffer");
        assert_eq!(
            read,
            Some(MAX_FRAME_LEN + 1),
            "one byte too long in the read room"
        );
    }

    #[test]
    #[ignore = "needs root + netns; .ci/run passes --include-ignored"]
    fn open_template_reads_back_the_kernels_name() {
        // In a namespace of its own: the device never shows on the test host.
        let name = crate::sys::testing::in_own_netns(|| {
            TapDevice::open("ecltest%d").unwrap().name().to_owned()
        });
        assert!(name.starts_with("ecltest"), "{name}");
        assert!(!name.contains('%'), "{name}");
    }
}
