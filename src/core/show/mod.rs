//! What `ethcloud show` prints: the daemon's answer to a request on its control socket, in
//! the spirit of `wg show`: the interface (device, listen address, mode, uptime), each peer
//! (address, verified or not, last heard, datagrams and bytes each way), the `--connect`
//! addresses, the addresses reached through a relay, the MAC table per VLAN, and the counters.
//!
//! Owns the request syntax ([`Request::parse`]) and the rendering ([`answer`]; the text form in
//! `text.rs`, [`render_text`]; the JSON form in `json.rs`, [`render_json`]). Pure: it reads a `&Node` and returns a `String`, does no I/O and reads no
//! clock; `sys::control` moves the bytes. It runs off the packet path (once per request), so
//! it may allocate.
//!
//! The JSON form is written by hand and is stable: keys are only ever added (its `version`
//! changes if one is removed or changes meaning). Every string goes through [`json_string`].
//! Its schema is `tests/show.schema.json`:
//!
//! ```text
//! {"version":1,"device":"ethcloud0","listen":"0.0.0.0:3210","mode":"clear","token":7,
//!  "uptime_secs":12.345,"public_addrs":["198.18.0.2:3210"],
//!  "peers":[{"address":"198.18.0.2:3210","verified":true,"last_heard_secs_ago":0.4,
//!            "added_secs_ago":12.0,"macs":1,"rx_datagrams":12,"rx_bytes":1234,
//!            "tx_datagrams":15,"tx_bytes":2345,"kernel_path":"on"}],
//!  "peers_total":1,
//!  "connect":[{"address":"198.18.0.2:3210","state":"peer"}],
//!  "relays":[{"address":"198.18.0.3:40000","via":"198.18.0.1:3210","state":"active",
//!             "since_secs":3.0}],
//!  "macs":[{"vlan":0,"mac":"02:ec:00:00:00:02","peer":"198.18.0.2:3210","age_secs":1.0,
//!           "expires_in_secs":299.0}],
//!  "macs_total":1,
//!  "counters":{"frames_from_device":12,...},
//!  "drops":{"wrong_token":0,...}}
//! ```
//!
//! At most [`MAX_LISTED`] peers (the verified ones first, so that unverified addresses, which
//! anyone who knows the token can make, never push them out) and as many MAC entries are
//! listed (the `*_total` fields and a text line say how many there are), so an answer stays
//! small enough for one write.

use std::net::SocketAddr;
use std::time::Duration;

use crate::crypto::Cipher;
use crate::io::{Device, Socket};
use crate::node::Node;
use crate::status::{Header, LoopCounters};
use crate::time::Instant;

mod json;
#[cfg(test)]
mod tests;
mod text;

pub use json::{json_string, render_json};
pub use text::render_text;

/// `active`, `superseded`, `checking` or `refused`.
fn route_state(route: &crate::relay::Route) -> &'static str {
    match route.state {
        crate::relay::RouteState::Active => "active",
        crate::relay::RouteState::Superseded(_) => "superseded",
        crate::relay::RouteState::Checking => "checking",
        crate::relay::RouteState::Refused(_) => "refused",
    }
}

/// What the kernel path (`--kernel-path`, an OS edge: `crate::kpath`) does for each peer it
/// knows, for `show`: one of [`KERNEL_STATES`]' names. Empty without a kernel path.
pub type KernelStates = std::collections::BTreeMap<SocketAddr, &'static str>;

/// The kernel path's states of a peer, as `show json` gives them, with what the text form
/// says of each.
pub const KERNEL_STATES: [(&str, &str); 6] = [
    ("on", "on"),
    (
        "unmarked",
        "frames to it go through the daemon (it has shown no kernel path that takes them)",
    ),
    (
        "held-refused",
        "held back: the firewall refuses datagrams to it",
    ),
    ("held-unheard", "held back: nothing heard from it for 20 s"),
    ("no-route", "not used: no route the kernel path can take"),
    (
        "aside",
        "stepped aside: this host has a firewall, or the daemon cannot tell (see its log; \
         --kernel-path to use it anyway)",
    ),
];

/// What the text form says of the kernel path state `state`.
fn kernel_state_text(state: &str) -> &str {
    KERNEL_STATES
        .iter()
        .find(|(name, _)| *name == state)
        .map_or(state, |(_, text)| text)
}

/// The version of the JSON form.
pub const JSON_VERSION: u32 = 1;

/// The most peers, and the most MAC entries, one answer lists.
pub const MAX_LISTED: usize = 1024;

/// The longest request line, in bytes, newline included.
pub const MAX_REQUEST_LEN: usize = 256;

/// Counters of the control socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlStats {
    /// Requests answered (errors included).
    pub answered: u64,
    /// Clients turned away because `sys::control::MAX_CLIENTS` were waiting.
    pub refused: u64,
    /// Clients dropped because their request did not come within `sys::control::REQUEST_DEADLINE`.
    pub timed_out: u64,
    /// Clients that hung up (or whose connection failed) before their request was whole.
    pub hung_up: u64,
    /// Clients dropped while answered: they read nothing of it for
    /// `sys::control::ANSWER_DEADLINE`, or hung up before it was all written.
    pub dropped_answers: u64,
}

/// What a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `show`: the text form.
    Text,
    /// `show json`: the JSON form.
    Json,
}

impl Request {
    /// Parses one request line (without or with its `\n` / `\r\n`; spaces around words are
    /// ignored).
    ///
    /// # Errors
    ///
    /// The answer to send back, `error: unknown request "..."`, for anything else.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let text = String::from_utf8_lossy(line);
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        match words.as_slice() {
            ["show"] => Ok(Request::Text),
            ["show", "json"] => Ok(Request::Json),
            _ => {
                let shown: String = text
                    .trim_end_matches(['\r', '\n'])
                    .chars()
                    .take(64)
                    .collect();
                Err(format!(
                    "error: unknown request {shown:?} (the requests are \"show\" and \"show json\")\n"
                ))
            }
        }
    }
}

/// The answer to `request`; `control` are the control socket's own counters, `kernel` the
/// kernel path's peer states.
pub fn answer<S: Socket, D: Device>(
    request: Request,
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    control: ControlStats,
    kernel: &KernelStates,
) -> String {
    match request {
        Request::Text => render_text(header, now, node, extra, control, kernel),
        Request::Json => render_json(header, now, node, extra, control, kernel),
    }
}

impl ControlStats {
    /// The counters as (name, value), in a fixed order.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("control_answered", self.answered),
            ("control_refused", self.refused),
            ("control_timed_out", self.timed_out),
            ("control_hung_up", self.hung_up),
            ("control_dropped_answers", self.dropped_answers),
        ]
    }
}

/// `clear`, `keyed` or `per-node-keys`.
fn mode<S: Socket, D: Device>(node: &Node<S, D>) -> &'static str {
    if node.sessions().is_some() {
        "per-node-keys"
    } else if node.config().keyed.is_some() {
        "keyed"
    } else {
        "clear"
    }
}

/// Per-node keys: the key behind `addr` with its name, and its current session (id in hex,
/// age, packets sealed, the cipher it seals with), if any.
struct PeerKey {
    key: String,
    name: String,
    session: Option<(String, Duration, u64, Cipher)>,
}

fn peer_key<S: Socket, D: Device>(
    node: &Node<S, D>,
    now: Instant,
    addr: SocketAddr,
) -> Option<PeerKey> {
    let sessions = node.sessions()?;
    let key = sessions.key_of(addr)?;
    let cipher = sessions.current_cipher(&key);
    let session = sessions
        .current_session(&key)
        .zip(cipher)
        .map(|((id, made, sealed), cipher)| {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            (hex, now.saturating_duration_since(made), sealed, cipher)
        });
    Some(PeerKey {
        key: key.to_string(),
        name: sessions.trusted().name(&key).unwrap_or("").to_owned(),
        session,
    })
}

/// Each `--connect` address with `peer`, `trying` or `waiting`.
fn connect_states<'a, S: Socket, D: Device>(
    node: &'a Node<S, D>,
) -> impl Iterator<Item = (SocketAddr, &'static str)> + 'a {
    node.config().connect.iter().map(move |addr| {
        let state = if node.is_peer(*addr) {
            "peer"
        } else if node.contacts().get(*addr).is_some() {
            "trying"
        } else {
            "waiting"
        };
        (*addr, state)
    })
}

/// Time since the entry expiring at `expires` was last seen (`--mac-timeout` minus what is left).
fn mac_age<S: Socket, D: Device>(node: &Node<S, D>, now: Instant, expires: Instant) -> Duration {
    node.config()
        .mac_timeout
        .saturating_sub(expires.saturating_duration_since(now))
}

/// Time since the daemon started (the node's clock starts at zero then).
fn uptime(now: Instant) -> Duration {
    now.saturating_duration_since(Instant::ZERO)
}

/// `12.3s`.
fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}
