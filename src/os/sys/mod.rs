//! The operating-system edges: tap device, UDP socket, epoll, signalfd, timerfd, the control
//! socket of `ethcloud show`, local addresses, interface MTU, flags and drop counters, systemd
//! notification, dropping privileges, the thread's context switches, the CPU's vector
//! instructions for the checksum.
//!
//! Owns every `unsafe` block and every libc call of the crate (this is the only module with
//! `#![allow(unsafe_code)]`; the lint setting covers its submodules). Every libc call goes
//! through `syscall!`, every `unsafe` block starts with a `// SAFETY:` comment, and every file
//! descriptor is held in an [`std::os::fd::OwnedFd`] (or a type wrapping one) from the moment it
//! exists, so no error path can leak it. Nothing here knows the protocol: the core (`node`)
//! sees these types only through the traits in `crate::io`.

#![allow(unsafe_code)]

/// Calls `libc::$fn(args..)` and turns the C convention "negative return value plus `errno`"
/// into an [`std::io::Result`] holding the non-negative return value.
///
/// The `unsafe` block lives inside the macro; every call site states why its arguments are
/// valid in a `// SAFETY:` comment right above it.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        // SAFETY: the caller documents, at the call site, why the arguments are valid for
        // this libc function.
        let res = unsafe { libc::$fn($($arg, )*) };
        if res < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub mod control;
pub mod cpu;
pub mod epoll;
pub mod files;
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
