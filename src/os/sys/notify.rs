//! The systemd notification protocol (`sd_notify(3)`), for `Type=notify` units: one datagram
//! such as `READY=1` to the Unix socket named in `$NOTIFY_SOCKET`.
//!
//! Owns reading `$NOTIFY_SOCKET` (a path, or an abstract socket when it starts with `@`) and
//! sending the datagram. It decides nothing about *when* to notify: `main` sends [`READY`]
//! once the tap is up and the socket bound, and [`STOPPING`] when the daemon shuts down.
//! Without `$NOTIFY_SOCKET` (not run by systemd) every call is a no-op.

use std::ffi::OsString;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for a `Type=notify` service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// Start-up is finished: the service is ready.
pub const READY: &str = "READY=1";
/// The service is shutting down.
pub const STOPPING: &str = "STOPPING=1";

/// Sends `state` (e.g. [`READY`], or `STATUS=...`) to the socket in `$NOTIFY_SOCKET`.
/// Returns `false` when the variable is unset, i.e. nobody is listening.
///
/// # Errors
///
/// `InvalidInput` for a variable that is not an absolute path or `@name`; the OS error of
/// the socket or the send.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET) {
        None => Ok(false),
        Some(target) => notify_to(&target, state).map(|()| true),
    }
}

/// Sends `state` to `target`, written like `$NOTIFY_SOCKET`.
///
/// # Errors
///
/// As [`notify`].
pub fn notify_to(target: &OsString, state: &str) -> io::Result<()> {
    let bytes = target.as_bytes();
    let addr = match bytes.split_first() {
        Some((b'@', name)) => SocketAddr::from_abstract_name(name)?,
        Some((b'/', _)) => SocketAddr::from_pathname(target)?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "$NOTIFY_SOCKET is neither an absolute path nor an @abstract name",
            ))
        }
    };
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(state.as_bytes(), &addr)?;
    if sent == state.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short send to $NOTIFY_SOCKET",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("ethcloud-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        // (A failed send fails the test; it must not wait for good.)
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        notify_to(&path.clone().into_os_string(), READY).unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn at_sign_means_an_abstract_socket() {
        let name = format!("ethcloud-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        notify_to(&OsString::from(format!("@{name}")), STOPPING).unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn relative_path_is_refused() {
        let err = notify_to(&OsString::from("notify.sock"), READY).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
