//! What `ethcloud show` prints: the daemon's answer to a request on its control socket, in
//! the spirit of `wg show`: the interface (device, listen address, mode, uptime), each peer
//! (address, verified or not, last heard, datagrams and bytes each way), the `--connect`
//! addresses, the addresses reached through a relay, the MAC table per VLAN, and the counters.
//!
//! Owns the request syntax ([`Request::parse`]) and the rendering ([`answer`], [`render_text`],
//! [`render_json`]). Pure: it reads a `&Node` and returns a `String`, does no I/O and reads no
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
//!            "tx_datagrams":15,"tx_bytes":2345}],
//!  "peers_total":1,
//!  "connect":[{"address":"198.18.0.2:3210","state":"peer"}],
//!  "relays":[{"address":"198.18.0.3:40000","via":"198.18.0.1:3210","state":"active",
//!             "since_secs":3.0}],
//!  "macs":[{"vlan":0,"mac":"02:ec:00:00:00:02","peer":"198.18.0.2:3210","age_secs":1.0,
//!           "expires_in_secs":299.0}],
//!  "macs_total":1,
//!  "counters":{"frames_from_device":12,...},
//!  "drops":{"malformed":0,...}}
//! ```
//!
//! At most [`MAX_LISTED`] peers and as many MAC entries are listed (the `*_total` fields and a
//! text line say how many there are), so an answer stays small enough for one write.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use crate::io::{Device, Socket};
use crate::node::Node;
use crate::status::{counters, drops, Header, LoopCounters};
use crate::time::Instant;
use crate::wire::ethernet::{Mac, VlanId};

/// `active` or `superseded`.
fn route_state(route: &crate::relay::Route) -> &'static str {
    match route.state {
        crate::relay::RouteState::Active => "active",
        crate::relay::RouteState::Superseded(_) => "superseded",
    }
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
    /// Clients dropped because their answer did not fit into the socket buffer.
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

/// The answer to `request`; `control` are the control socket's own counters.
pub fn answer<S: Socket, D: Device>(
    request: Request,
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    control: ControlStats,
) -> String {
    match request {
        Request::Text => render_text(header, now, node, extra, control),
        Request::Json => render_json(header, now, node, extra, control),
    }
}

impl ControlStats {
    /// The counters as (name, value), in a fixed order.
    pub fn named(&self) -> [(&'static str, u64); 4] {
        [
            ("control_answered", self.answered),
            ("control_refused", self.refused),
            ("control_timed_out", self.timed_out),
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
/// age, packets sealed), if any.
struct PeerKey {
    key: String,
    name: String,
    session: Option<(String, Duration, u64)>,
}

fn peer_key<S: Socket, D: Device>(
    node: &Node<S, D>,
    now: Instant,
    addr: SocketAddr,
) -> Option<PeerKey> {
    let sessions = node.sessions()?;
    let key = sessions.key_of(addr)?;
    let session = sessions.current_session(&key).map(|(id, made, sealed)| {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        (hex, now.saturating_duration_since(made), sealed)
    });
    Some(PeerKey {
        key: key.to_string(),
        name: sessions.trusted().name(&key).unwrap_or("").to_owned(),
        session,
    })
}

/// The text form, for people:
///
/// ```text
/// interface: ethcloud0
///   listening on: 0.0.0.0:3210
///   mode: clear
///   token: 7
///   uptime: 12.3s
///
/// peer: 198.18.0.2:3210
///   state: verified
///   last heard: 0.4s ago
///   transfer: 12 datagrams (1234 bytes) received, 15 datagrams (2345 bytes) sent
///   macs: 1
///
/// connect: 198.18.0.2:3210 (peer)
///
/// mac table: 1 entries
///   vlan 0:
///     02:ec:00:00:00:02 at 198.18.0.2:3210, age 1.0s
///
/// counters:
///   frames_from_device: 12
///   ...
///   drops: wrong_token 1
/// ```
pub fn render_text<S: Socket, D: Device>(
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    control: ControlStats,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "interface: {}", header.device);
    let _ = writeln!(out, "  listening on: {}", header.listen);
    let _ = writeln!(out, "  mode: {}", mode(node));
    if let Some(sessions) = node.sessions() {
        let _ = writeln!(out, "  public key: {}", sessions.public());
        let _ = writeln!(out, "  trusted keys: {}", sessions.trusted().len());
    }
    let public = node.relay_table().public_addrs();
    if !public.is_empty() {
        let list: Vec<String> = public.iter().rev().map(ToString::to_string).collect();
        let _ = writeln!(out, "  seen by peers at: {}", list.join(", "));
    }
    let _ = writeln!(out, "  token: {}", node.config().token);
    let _ = writeln!(out, "  uptime: {}", secs(uptime(now)));

    let peers = node.peers();
    for (addr, peer) in peers.iter().take(MAX_LISTED) {
        let t = peer.traffic;
        let _ = writeln!(out);
        let _ = writeln!(out, "peer: {addr}");
        let state = if peer.is_verified {
            "verified"
        } else {
            "unverified"
        };
        let _ = writeln!(out, "  state: {state}");
        let _ = writeln!(
            out,
            "  last heard: {} ago",
            secs(now.saturating_duration_since(peer.last_seen))
        );
        let _ = writeln!(
            out,
            "  transfer: {} datagrams ({} bytes) received, {} datagrams ({} bytes) sent",
            t.rx_datagrams, t.rx_bytes, t.tx_datagrams, t.tx_bytes
        );
        let _ = writeln!(out, "  macs: {}", node.switch_table().count_for(addr));
        if let Some(k) = peer_key(node, now, addr) {
            let _ = writeln!(out, "  key: {} ({})", k.key, k.name);
            if let Some((id, age, sealed)) = k.session {
                let _ = writeln!(
                    out,
                    "  session: {id}, made {} ago, {sealed} packets sealed",
                    secs(age)
                );
            }
        }
    }
    if peers.len() > MAX_LISTED {
        let _ = writeln!(out);
        let _ = writeln!(out, "peers: {} more not listed", peers.len() - MAX_LISTED);
    }

    if !node.config().connect.is_empty() {
        let _ = writeln!(out);
    }
    for (addr, state) in connect_states(node) {
        let _ = writeln!(out, "connect: {addr} ({state})");
    }

    for (addr, route) in node.relay_table().routes().take(MAX_LISTED) {
        let _ = writeln!(out);
        let _ = writeln!(out, "relay: {addr} via {}", route.via);
        let _ = writeln!(out, "  state: {}", route_state(route));
        let _ = writeln!(
            out,
            "  since: {} ago",
            secs(now.saturating_duration_since(route.since))
        );
    }

    let macs = sorted_macs(node);
    let _ = writeln!(out);
    let _ = writeln!(out, "mac table: {} entries", macs.len());
    let mut vlan_shown = None;
    for (vlan, mac, peer, expires) in macs.iter().take(MAX_LISTED) {
        if vlan_shown != Some(*vlan) {
            let _ = writeln!(out, "  vlan {}:", vlan.get());
            vlan_shown = Some(*vlan);
        }
        let _ = writeln!(
            out,
            "    {mac} at {peer}, age {}",
            secs(mac_age(node, now, *expires))
        );
    }
    if macs.len() > MAX_LISTED {
        let _ = writeln!(out, "  ... {} more not listed", macs.len() - MAX_LISTED);
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "counters:");
    for (name, value, _) in counters(node.stats(), extra) {
        let _ = writeln!(out, "  {name}: {value}");
    }
    for (name, value) in control.named() {
        let _ = writeln!(out, "  {name}: {value}");
    }
    if let Some(sessions) = node.sessions() {
        for (name, value, _) in sessions.stats().named() {
            let _ = writeln!(out, "  {name}: {value}");
        }
    }
    let nonzero: Vec<String> = drops(node.stats())
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if nonzero.is_empty() {
        let _ = writeln!(out, "  drops: none");
    } else {
        let _ = writeln!(out, "  drops: {}", nonzero.join(", "));
    }
    out
}

/// The JSON form (see the module docs), one object on one line, ending in a newline.
pub fn render_json<S: Socket, D: Device>(
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    control: ControlStats,
) -> String {
    let mut out = String::new();
    let _ = write!(out, "{{\"version\":{JSON_VERSION},\"device\":");
    json_string(&mut out, &header.device);
    out.push_str(",\"listen\":");
    json_string(&mut out, &header.listen.to_string());
    let _ = write!(
        out,
        ",\"mode\":\"{}\",\"token\":{},\"uptime_secs\":{}",
        mode(node),
        node.config().token.get(),
        json_secs(uptime(now))
    );

    out.push_str(",\"public_addrs\":[");
    for (i, addr) in node.relay_table().public_addrs().iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, &addr.to_string());
    }
    out.push(']');
    out.push_str(",\"peers\":[");
    let peers = node.peers();
    for (i, (addr, peer)) in peers.iter().take(MAX_LISTED).enumerate() {
        let t = peer.traffic;
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"address\":");
        json_string(&mut out, &addr.to_string());
        let _ = write!(
            out,
            ",\"verified\":{},\"last_heard_secs_ago\":{},\"added_secs_ago\":{},\"macs\":{},\
             \"rx_datagrams\":{},\"rx_bytes\":{},\"tx_datagrams\":{},\"tx_bytes\":{}}}",
            peer.is_verified,
            json_secs(now.saturating_duration_since(peer.last_seen)),
            json_secs(now.saturating_duration_since(peer.added)),
            node.switch_table().count_for(addr),
            t.rx_datagrams,
            t.rx_bytes,
            t.tx_datagrams,
            t.tx_bytes
        );
        if let Some(k) = peer_key(node, now, addr) {
            // Reopen the peer object for the per-node key fields.
            out.pop();
            out.push_str(",\"key\":");
            json_string(&mut out, &k.key);
            out.push_str(",\"key_name\":");
            json_string(&mut out, &k.name);
            if let Some((id, age, sealed)) = k.session {
                out.push_str(",\"session\":");
                json_string(&mut out, &id);
                let _ = write!(
                    out,
                    ",\"session_age_secs\":{},\"session_sealed\":{sealed}",
                    json_secs(age)
                );
            }
            out.push('}');
        }
    }
    let _ = write!(out, "],\"peers_total\":{}", peers.len());

    out.push_str(",\"connect\":[");
    for (i, (addr, state)) in connect_states(node).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"address\":");
        json_string(&mut out, &addr.to_string());
        let _ = write!(out, ",\"state\":\"{state}\"}}");
    }

    out.push_str("],\"relays\":[");
    for (i, (addr, route)) in node.relay_table().routes().take(MAX_LISTED).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"address\":");
        json_string(&mut out, &addr.to_string());
        out.push_str(",\"via\":");
        json_string(&mut out, &route.via.to_string());
        let _ = write!(
            out,
            ",\"state\":\"{}\",\"since_secs\":{}}}",
            route_state(route),
            json_secs(now.saturating_duration_since(route.since))
        );
    }

    out.push_str("],\"macs\":[");
    let macs = sorted_macs(node);
    for (i, (vlan, mac, peer, expires)) in macs.iter().take(MAX_LISTED).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"vlan\":{},\"mac\":\"{mac}\",\"peer\":", vlan.get());
        json_string(&mut out, &peer.to_string());
        let _ = write!(
            out,
            ",\"age_secs\":{},\"expires_in_secs\":{}}}",
            json_secs(mac_age(node, now, *expires)),
            json_secs(expires.saturating_duration_since(now))
        );
    }
    let _ = write!(out, "],\"macs_total\":{}", macs.len());

    out.push_str(",\"counters\":{");
    for (i, (name, value, _)) in counters(node.stats(), extra).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, name);
        let _ = write!(out, ":{value}");
    }
    for (name, value) in control.named() {
        out.push(',');
        json_string(&mut out, name);
        let _ = write!(out, ":{value}");
    }
    if let Some(sessions) = node.sessions() {
        for (name, value, _) in sessions.stats().named() {
            out.push(',');
            json_string(&mut out, name);
            let _ = write!(out, ":{value}");
        }
    }
    out.push_str("},\"drops\":{");
    for (i, (reason, value)) in drops(node.stats()).enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, reason);
        let _ = write!(out, ":{value}");
    }
    out.push_str("}}\n");
    out
}

/// Appends `s` to `out` as a JSON string: quoted, with `"` and `\` escaped, the control
/// characters as `\n`, `\r`, `\t`, `\b`, `\f` or `\u00XX`; everything else as it is (UTF-8).
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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

/// The MAC table sorted by VLAN, then MAC.
fn sorted_macs<S: Socket, D: Device>(node: &Node<S, D>) -> Vec<(VlanId, Mac, SocketAddr, Instant)> {
    let mut macs: Vec<_> = node.switch_table().iter().collect();
    macs.sort_unstable_by_key(|(vlan, mac, _, _)| (*vlan, mac.0));
    macs
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

/// Seconds as a JSON number with millisecond precision: `12.345`.
fn json_secs(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::test_io::{node_with_a_peer, PEER_MAC};

    fn header(device: &str) -> Header {
        Header {
            device: device.to_owned(),
            listen: "0.0.0.0:3210".parse().unwrap(),
        }
    }

    #[test]
    fn requests_parse_and_anything_else_is_an_error_line() {
        assert_eq!(Request::parse(b"show\n"), Ok(Request::Text));
        assert_eq!(Request::parse(b"show"), Ok(Request::Text));
        assert_eq!(Request::parse(b" show  json\r\n"), Ok(Request::Json));
        let err = Request::parse(b"shwo\n").unwrap_err();
        assert!(err.starts_with("error: unknown request \"shwo\""), "{err}");
        assert!(err.ends_with('\n'));
        let err = Request::parse(b"show\x1b[2J\n").unwrap_err();
        assert!(
            !err.contains('\x1b'),
            "control characters are escaped: {err:?}"
        );
        assert!(Request::parse(b"").is_err());
        assert!(Request::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn text_shows_the_peer_its_traffic_the_mac_and_the_counters() {
        let (node, now) = node_with_a_peer();
        let extra = LoopCounters {
            socket_errors: 4,
            offload_errors: 0,
            udp_receive_overflows: 0,
            tap_queue_drops: 0,
            busy_poll_yields: 0,
        };
        let text = render_text(
            &header("ethcloud0"),
            now,
            &node,
            extra,
            ControlStats::default(),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "interface: ethcloud0");
        for expected in [
            "  listening on: 0.0.0.0:3210",
            "  mode: clear",
            "  token: 7",
            "  uptime: 1.2s",
            "peer: 198.18.0.2:3210",
            "  state: verified",
            "  last heard: 1.0s ago",
            "  macs: 1",
            "connect: 198.18.0.2:3210 (peer)",
            "mac table: 1 entries",
            "  vlan 0:",
            "    02:ec:00:00:00:02 at 198.18.0.2:3210, age 1.0s",
            "  frames_to_device: 1",
            "  socket_errors: 4",
            "  drops: wrong_token 1",
        ] {
            assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
        }
        // Two valid datagrams came from the peer (the foreign one does not count).
        assert!(
            lines.contains(
                &"  transfer: 2 datagrams (78 bytes) received, 0 datagrams (0 bytes) sent"
            ),
            "{text}"
        );
    }

    #[test]
    fn sent_frames_are_counted_per_peer_unicast_and_flooded() {
        let (mut node, now) = node_with_a_peer();
        let mut buf = crate::buf::PacketBuf::new();
        for dst in [PEER_MAC, [0xff; 6]] {
            let room = buf.frame_room();
            room[..60].fill(0);
            room[..6].copy_from_slice(&dst);
            room[6..12].copy_from_slice(&[0x02, 0xec, 0, 0, 0, 0x01]);
            node.on_frame(now, &mut buf, 60).unwrap();
        }
        let text = render_text(
            &header("ethcloud0"),
            now,
            &node,
            LoopCounters::default(),
            ControlStats::default(),
        );
        assert!(
            text.contains(
                "  transfer: 2 datagrams (78 bytes) received, 2 datagrams (136 bytes) sent"
            ),
            "{text}"
        );
        let json = render_json(
            &header("ethcloud0"),
            now,
            &node,
            LoopCounters::default(),
            ControlStats::default(),
        );
        assert!(
            json.contains(
                "\"rx_datagrams\":2,\"rx_bytes\":78,\"tx_datagrams\":2,\"tx_bytes\":136}"
            ),
            "{json}"
        );
    }

    #[test]
    fn json_has_every_key_and_escapes_the_device_name() {
        let (node, now) = node_with_a_peer();
        let json = render_json(
            &header("we\"ird\\\n"),
            now,
            &node,
            LoopCounters::default(),
            ControlStats::default(),
        );
        assert!(
            json.ends_with("}\n") && !json.trim_end().contains('\n'),
            "{json}"
        );
        assert!(
            json.starts_with("{\"version\":1,\"device\":\"we\\\"ird\\\\\\n\""),
            "{json}"
        );
        for expected in [
            "\"listen\":\"0.0.0.0:3210\"",
            "\"mode\":\"clear\"",
            "\"token\":7",
            "\"uptime_secs\":1.200",
            "\"peers\":[{\"address\":\"198.18.0.2:3210\",\"verified\":true,\"last_heard_secs_ago\":1.000",
            "\"rx_datagrams\":2,",
            "\"peers_total\":1",
            "\"connect\":[{\"address\":\"198.18.0.2:3210\",\"state\":\"peer\"}]",
            "\"macs\":[{\"vlan\":0,\"mac\":\"02:ec:00:00:00:02\",\"peer\":\"198.18.0.2:3210\",\"age_secs\":1.000,\"expires_in_secs\":299.000}]",
            "\"macs_total\":1",
            "\"frames_to_device\":1",
            "\"wrong_token\":1",
        ] {
            assert!(json.contains(expected), "no {expected} in {json}");
        }
        // Balanced brackets outside strings: a cheap structural check (the end-to-end test
        // validates the JSON against the schema).
        let (mut depth, mut in_string, mut escaped) = (0i32, false, false);
        for c in json.chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (true, false, '"') | (false, _, '"') => in_string = !in_string,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0);
        }
        assert_eq!((depth, in_string), (0, false));
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_control_characters() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\re\tf\u{1}g\u{7f}h\u{8}\u{c}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u007fh\\b\\fé\"");
    }

    #[test]
    fn seconds_are_json_numbers_with_milliseconds() {
        assert_eq!(json_secs(Duration::from_millis(12_345)), "12.345");
        assert_eq!(json_secs(Duration::ZERO), "0.000");
    }
}
