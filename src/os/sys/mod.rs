//! The operating-system edges: tap device, UDP socket, epoll, signalfd, timerfd, the control
//! socket of `ethcloud show`, local addresses, interface MTU, flags and drop counters and
//! whether a tap is in use, whether the host has a firewall, systemd
//! notification, dropping privileges, the OS random source, the clock that counts suspended
//! time, the CPU's vector instructions for the checksum.
//!
//! Owns every `unsafe` block and every libc call of the crate (this is the only module with
//! `#![allow(unsafe_code)]`; the lint setting covers its submodules). Most libc calls go
//! through `syscall!`; the others (the `_r` user lookups, `setfsuid`/`setfsgid`, `freeifaddrs`, which do
//! not report failure as -1 and `errno`, and `clock_gettime` and the raw `capget`/`capset`,
//! which do) check their own result; every
//! `unsafe` block starts with a `// SAFETY:` comment, and every file
//! descriptor is held in an [`std::os::fd::OwnedFd`] (or a type wrapping one) from the moment it
//! exists, so no error path can leak it. Nothing here knows the protocol: the core (`node`)
//! sees these types only through the traits in `crate::io`.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

/// Calls `libc::$fn(args..)` and turns the C convention "negative return value plus `errno`"
/// into an [`std::io::Result`] holding the non-negative return value.
///
/// The macro holds no `unsafe` block of its own: the libc call is unsafe, so every call site
/// has to be written `unsafe { syscall!(..) }`, with a `// SAFETY:` comment right above it
/// that says why the arguments are valid. The compiler refuses a call site without it.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        let res = libc::$fn($($arg, )*);
        if res < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub mod bpf;
pub mod control;
pub mod cpu;
pub mod epoll;
pub mod files;
pub mod firewall;
pub mod ifaddrs;
pub mod netdev;
pub mod notify;
pub mod privdrop;
pub mod random;
pub mod signal;
pub mod tap;
pub mod timer;
pub mod udp;
pub mod wake;

#[cfg(test)]
pub(crate) mod testing;
