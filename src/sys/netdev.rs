//! Interface settings by name: the MTU and the up flag, through the classic `SIOC[GS]IFMTU` and
//! `SIOC[GS]IFFLAGS` ioctls on a throw-away datagram socket.
//!
//! Owns those four ioctls and the `ifreq` they use. It does not create or delete interfaces
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
    let raw = syscall!(socket(libc::AF_INET, flags, 0)).or_else(|e| {
        if e.raw_os_error() == Some(libc::EAFNOSUPPORT) {
            // SAFETY: as above.
            syscall!(socket(libc::AF_INET6, flags, 0))
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
    syscall!(ioctl(socket.as_raw_fd(), request, req as *mut libc::ifreq))?;
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

/// Sets the MTU of interface `name`.
///
/// # Errors
///
/// The OS error of `SIOCSIFMTU` (`EPERM` without `CAP_NET_ADMIN`, `EINVAL` for an MTU the
/// device does not take), or `InvalidInput` for a bad name or an MTU above `i32::MAX`.
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_up_with_a_readable_mtu() {
        assert!(is_up("lo").unwrap());
        assert!(mtu("lo").unwrap() >= 1280);
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
