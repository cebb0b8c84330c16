//! Signals and what they mean: SIGINT/SIGTERM end the loop cleanly, SIGUSR1 logs the counters
//! and the status, SIGHUP reads the key file again (keyed mode) or the trust files (per-node
//! keys), and has the node's own addresses read again (on the service's thread).
//!
//! Owns the reaction to each signal; the signalfd itself is `sys::signal`'s, and reading key
//! and trust files is `keyfiles`'.

use log::{error, info, warn};

use super::{Daemon, Exit};
use crate::error::Error;
use crate::keyfiles::{new_session, read_key, NodeIdentity};
use crate::node::{Keyed, Node, Rekey, KEY_GRACE, KEY_ROLLOVER};
use crate::sys::signal::Signal;
use crate::sys::tap::TapDevice;
use crate::sys::udp::UdpSocket;
use crate::time::Instant;

impl Daemon {
    /// SIGHUP: re-reads the key file (same path, same parsing as at start-up) and starts a key
    /// rotation if the key changed. A failure is logged at error level and counted
    /// (`reloads_failed`); the key in use stays.
    fn reload_key(&mut self, now: Instant) {
        if let Some(identity) = &mut self.identity {
            if !reload_trusted(&mut self.node, identity, now) {
                self.stats.reloads_failed = self.stats.reloads_failed.saturating_add(1);
            }
            return;
        }
        let Some(path) = &self.key_file else {
            info!("SIGHUP: not in keyed mode, nothing to reload");
            return;
        };
        let key_and_session = read_key(path, self.token).and_then(|key| Ok((key, new_session()?)));
        let (key, session) = match key_and_session {
            Ok(pair) => pair,
            Err(e) => {
                self.stats.reloads_failed = self.stats.reloads_failed.saturating_add(1);
                error!("SIGHUP: {e}; keeping the key in use, no key rotation");
                return;
            }
        };
        match self.node.rekey(now, Keyed { key, session }) {
            Rekey::Started => {}
            Rekey::Unchanged => info!(
                "SIGHUP: the key in {} is unchanged; nothing to do",
                path.display()
            ),
            Rekey::Busy => {
                // Not taken: counted, as any key that could not be used (peers that move on
                // to it would cut this node off once they retire the key it keeps).
                self.stats.reloads_failed = self.stats.reloads_failed.saturating_add(1);
                error!(
                    "SIGHUP: a key rotation is under way (it takes {} s); the key in {} is \
                     ignored, send SIGHUP again once the log says it is done",
                    (KEY_ROLLOVER + KEY_GRACE).as_secs(),
                    path.display()
                );
            }
            Rekey::NotKeyed => info!("SIGHUP: not in keyed mode, nothing to reload"),
            Rekey::Reused => {
                self.stats.reloads_failed = self.stats.reloads_failed.saturating_add(1);
                error!(
                    "SIGHUP: the key in {} is one this node used before; datagrams recorded \
                     under it would open again, so it is refused (keeping the key in use): \
                     make a new key",
                    path.display()
                );
            }
        }
    }

    /// SIGUSR1's lines: the counters (the lanes', `--threads`, added) and the status.
    pub(super) fn log_on_request(&mut self, now: Instant) {
        self.read_kernel_counters();
        if let Some(kernel_path) = &mut self.kernel_path {
            kernel_path.collect(&mut self.node);
        }
        let counters = self.loop_counters();
        info!(
            target: crate::logging::ON_REQUEST,
            "stats: peers={} {} {counters}",
            self.node.peer_count(),
            self.node.stats(),
        );
        self.service.log_status(now, &self.node, counters);
    }

    /// Handles every pending signal; `Some` when the loop must end.
    pub(super) fn on_signals(&mut self, now: Instant) -> Result<Option<Exit>, Error> {
        while let Some(signal) = self.signals.read().map_err(Error::Signal)? {
            match signal {
                Signal::Interrupt | Signal::Terminate => {
                    info!("shutting down ({signal})");
                    self.send_closes(now);
                    return Ok(Some(Exit::Signal));
                }
                // Logged at the end of this pass, once what the lanes handed over is in
                // (`Daemon::after_pass`), as `show` answers.
                Signal::User1 => self.status_asked = true,
                Signal::Hangup => {
                    self.service.read_own_addrs_again(now);
                    self.reload_key(now);
                }
            }
        }
        Ok(None)
    }
}

/// SIGHUP in identity mode: reads the `--trusted` files again and hands the new set to the
/// node, which drops the sessions of keys no longer in it at once. A failure is logged at
/// error level (no key is revoked: the set in use stays) and returns false. The private key
/// is read only at start-up.
fn reload_trusted(
    node: &mut Node<UdpSocket, TapDevice>,
    identity: &mut NodeIdentity,
    now: Instant,
) -> bool {
    match crate::keyfiles::read_trusted(&identity.trusted_paths) {
        Ok(trusted) => {
            let before = identity.peer_keys();
            identity.trusted = trusted.clone();
            let after = identity.peer_keys();
            let cut = node.set_trusted(now, trusted);
            info!(
                "SIGHUP: trusted keys read again: {after} (were {before}); {cut} peer addresses \
                 cut off"
            );
            if after == 0 && before > 0 {
                warn!(
                    "SIGHUP: --trusted names no key but this node's own now, so no node is \
                     accepted (if a file was \
                     read while it was being rewritten, write a new file and mv it into place, \
                     then send SIGHUP again)"
                );
            }
            true
        }
        Err(e) => {
            error!(
                "SIGHUP: {e}; keeping the trusted keys in use: no key was revoked (fix the \
                 files and send SIGHUP again)"
            );
            false
        }
    }
}
