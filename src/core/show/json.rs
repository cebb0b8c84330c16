//! The JSON form of `ethcloud show`, for programs (see [`render_json`] and the schema in
//! `tests/show.schema.json`).
//!
//! Owns the JSON layout only; it reads the node it is given and never changes it, and does
//! no I/O (the request and the socket are the parent module's and `sys::control`'s).

use std::fmt::Write as _;
use std::time::Duration;

use super::{
    connect_states, mac_age, mode, peer_key, route_state, uptime, ControlStats, KernelStates,
    JSON_VERSION, MAX_LISTED,
};
use crate::io::{Device, Socket};
use crate::node::Node;
use crate::status::{counters, drops, first_macs, Header, LoopCounters};
use crate::time::Instant;

/// The JSON form (see the module docs), one object on one line, ending in a newline.
pub fn render_json<S: Socket, D: Device>(
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    control: ControlStats,
    kernel: &KernelStates,
) -> String {
    let mut out = String::new();
    let _ = write!(out, "{{\"version\":{JSON_VERSION},\"device\":");
    json_string(&mut out, &header.device);
    out.push_str(",\"listen\":");
    json_string(&mut out, &header.listen.to_string());
    let _ = write!(
        out,
        ",\"mode\":\"{}\",\"token\":{token},\"token_text\":\"{token}\",\"uptime_secs\":{}",
        mode(node),
        json_secs(uptime(now)),
        token = node.config().token.get(),
    );
    if let Some(sessions) = node.sessions() {
        let _ = write!(
            out,
            ",\"public_key\":\"{}\",\"trusted_keys\":{}",
            sessions.public(),
            sessions.trusted().len()
        );
    }

    out.push_str(",\"public_addrs\":");
    let public = node.relay_table().public_addrs();
    json_array(&mut out, public.iter().rev(), |out, addr| {
        json_string(out, &addr.to_string());
    });

    out.push_str(",\"peers\":");
    let peers = node.peers();
    json_array(
        &mut out,
        peers.iter_verified_first().take(MAX_LISTED),
        |out, (addr, peer)| {
            let t = peer.traffic;
            out.push_str("{\"address\":");
            json_string(out, &addr.to_string());
            let _ = write!(
                out,
                ",\"verified\":{},\"last_heard_secs_ago\":{},\"added_secs_ago\":{},\"macs\":{},\
             \"rx_datagrams\":{},\"rx_bytes\":{},\"tx_datagrams\":{},\"tx_bytes\":{}",
                peer.is_verified,
                json_secs(now.saturating_duration_since(peer.last_seen)),
                json_secs(now.saturating_duration_since(peer.added)),
                node.switch_table().count_for(addr),
                t.rx_datagrams,
                t.rx_bytes,
                t.tx_datagrams,
                t.tx_bytes
            );
            if let Some(state) = kernel.get(&addr) {
                out.push_str(",\"kernel_path\":");
                json_string(out, state);
            }
            if let Some(k) = peer_key(node, now, addr) {
                out.push_str(",\"key\":");
                json_string(out, &k.key);
                out.push_str(",\"key_name\":");
                json_string(out, &k.name);
                if let Some((id, age, sealed, cipher)) = k.session {
                    out.push_str(",\"session\":");
                    json_string(out, &id);
                    let _ = write!(
                        out,
                        ",\"session_age_secs\":{},\"session_sealed\":{sealed},\"session_cipher\":\"{cipher}\"",
                        json_secs(age)
                    );
                }
            }
            out.push('}');
        },
    );
    let _ = write!(out, ",\"peers_total\":{}", peers.len());

    out.push_str(",\"connect\":");
    json_array(&mut out, connect_states(node), |out, (addr, state)| {
        out.push_str("{\"address\":");
        json_string(out, &addr.to_string());
        let _ = write!(out, ",\"state\":\"{state}\"}}");
    });

    out.push_str(",\"relays\":");
    let routes = node.relay_table().routes().take(MAX_LISTED);
    json_array(&mut out, routes, |out, (addr, route)| {
        out.push_str("{\"address\":");
        json_string(out, &addr.to_string());
        out.push_str(",\"via\":");
        json_string(out, &route.via.to_string());
        let _ = write!(
            out,
            ",\"state\":\"{}\",\"since_secs\":{}}}",
            route_state(route),
            json_secs(now.saturating_duration_since(route.since))
        );
    });

    out.push_str(",\"macs\":");
    let (macs, total) = first_macs(node, MAX_LISTED);
    json_array(&mut out, macs.iter(), |out, (vlan, mac, peer, expires)| {
        let _ = write!(out, "{{\"vlan\":{},\"mac\":\"{mac}\",\"peer\":", vlan.get());
        json_string(out, &peer.to_string());
        let _ = write!(
            out,
            ",\"age_secs\":{},\"expires_in_secs\":{}}}",
            json_secs(mac_age(node, now, *expires)),
            json_secs(expires.saturating_duration_since(now))
        );
    });
    let _ = write!(out, ",\"macs_total\":{total}");

    out.push_str(",\"counters\":");
    let loop_and_node = counters(node.stats(), extra)
        .into_iter()
        .map(|(n, v, _)| (n, v));
    let sessions = node
        .sessions()
        .into_iter()
        .flat_map(|sessions| sessions.stats().named())
        .map(|(n, v, _)| (n, v));
    json_counts(
        &mut out,
        loop_and_node.chain(control.named()).chain(sessions),
    );
    out.push_str(",\"drops\":");
    json_counts(&mut out, drops(node.stats()));
    out.push_str("}\n");
    out
}

/// Appends `items` to `out` as a JSON array: each written by `item`, commas between them.
fn json_array<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut item: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item(out, x);
    }
    out.push(']');
}

/// Appends named counts to `out` as a JSON object: `{"name":value,...}`.
fn json_counts<'a>(out: &mut String, counts: impl IntoIterator<Item = (&'a str, u64)>) {
    out.push('{');
    for (i, (name, value)) in counts.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, name);
        let _ = write!(out, ":{value}");
    }
    out.push('}');
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

/// Seconds as a JSON number with millisecond precision: `12.345`.
pub(super) fn json_secs(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}
