//! Interface settings by name: the MTU and the up flag, through the classic `SIOC[GS]IFMTU` and
//! `SIOC[GS]IFFLAGS` ioctls on a throw-away datagram socket; and the interface's transmit drop
//! counter, from `/proc/net/dev` of the daemon's network namespace.
//!
//! Owns those four ioctls, the `ifreq` they use, and reading that one counter. It does not create or delete interfaces
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
