//! The host's own IP addresses, from `getifaddrs(3)`.
//!
//! Owns walking the C list and freeing it, and [`own_addrs`], which turns the addresses into
//! the node's own (each local IP of the listen address's families, with the listen port), so
//! the node can recognise itself in peer lists.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// The list returned by `getifaddrs`, freed on drop.
struct IfAddrs {
    head: *mut libc::ifaddrs,
}

impl Drop for IfAddrs {
    fn drop(&mut self) {
        // SAFETY: `head` came from a successful getifaddrs() and is freed exactly once, here.
        unsafe { libc::freeifaddrs(self.head) };
    }
}

/// Every IPv4 and IPv6 address configured on the host's interfaces, loopback included,
/// sorted and without duplicates. IPv6 link-local addresses keep their scope (interface)
/// id in the returned [`SocketAddr`] (port 0).
///
/// # Errors
///
/// The OS error of `getifaddrs`.
pub fn local_addrs() -> io::Result<Vec<SocketAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `head` is a valid place for getifaddrs() to store the list pointer.
    unsafe { syscall!(getifaddrs(&mut head)) }?;
    let list = IfAddrs { head };

    let mut addrs = Vec::new();
    let mut cursor: *const libc::ifaddrs = list.head;
    // SAFETY: `cursor` walks the list getifaddrs() built; each node stays valid until
    // `list` is dropped at the end of this function, after the walk.
    while let Some(entry) = unsafe { cursor.as_ref() } {
        cursor = entry.ifa_next;
        // SAFETY: `ifa_addr` is null or points to a sockaddr inside the same list.
        let Some(sa) = (unsafe { entry.ifa_addr.as_ref() }) else {
            continue;
        };
        match libc::c_int::from(sa.sa_family) {
            libc::AF_INET => {
                // SAFETY: the family is AF_INET, so the sockaddr is a `sockaddr_in`.
                let sin = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                addrs.push(SocketAddr::new(IpAddr::V4(ip), 0));
            }
            libc::AF_INET6 => {
                // SAFETY: the family is AF_INET6, so the sockaddr is a `sockaddr_in6`.
                let sin6 = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                let scope_id = if ip.is_unicast_link_local() {
                    sin6.sin6_scope_id
                } else {
                    0
                };
                addrs.push(SocketAddr::V6(SocketAddrV6::new(ip, 0, 0, scope_id)));
            }
            _ => {}
        }
    }
    drop(list);
    addrs.sort_unstable();
    addrs.dedup();
    Ok(addrs)
}

/// The addresses the node is reachable at: each local IP of the listen address's families
/// with the listen port when the listen IP is unspecified (`0.0.0.0` reaches IPv4 only,
/// `[::]` both), else just `listen` itself.
///
/// # Errors
///
/// The OS error of `getifaddrs` (only asked when the listen IP is unspecified).
pub fn own_addrs(listen: SocketAddr) -> io::Result<Vec<SocketAddr>> {
    if !listen.ip().is_unspecified() {
        return Ok(vec![listen]);
    }
    let with_v6 = listen.is_ipv6();
    let mut addrs: Vec<SocketAddr> = local_addrs()?
        .into_iter()
        .filter(|a| with_v6 || a.is_ipv4())
        .map(|mut a| {
            a.set_port(listen.port());
            a
        })
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addrs_include_loopback() {
        let addrs = local_addrs().unwrap();
        assert!(addrs.contains(&"127.0.0.1:0".parse().unwrap()), "{addrs:?}");
    }

    #[test]
    fn own_addrs_of_unspecified_ipv4_are_local_ipv4_with_listen_port() {
        let addrs = own_addrs("0.0.0.0:3210".parse().unwrap()).unwrap();
        assert!(
            addrs.contains(&"127.0.0.1:3210".parse().unwrap()),
            "{addrs:?}"
        );
        assert!(
            addrs.iter().all(|a| a.is_ipv4() && a.port() == 3210),
            "{addrs:?}"
        );
    }

    #[test]
    fn own_addrs_of_specific_address_is_just_that_address() {
        let listen: SocketAddr = "[fd00::7]:3210".parse().unwrap();
        assert_eq!(own_addrs(listen).unwrap(), vec![listen]);
    }
}
