//! The unit tests of `ethcloud show`: request parsing, and both forms.

use super::json::json_secs;
use super::*;
use crate::status::test_io::{node_with_a_peer, PEER_MAC};

fn header(device: &str) -> Header {
    Header {
        device: device.to_owned(),
        listen: "0.0.0.0:3210".parse().unwrap(),
    }
}

/// The text form for device ethcloud0, with no loop or control counters.
fn text_of<S: crate::io::Socket, D: crate::io::Device>(
    node: &crate::node::Node<S, D>,
    now: crate::time::Instant,
) -> String {
    text_with(node, now, &KernelStates::new())
}

/// The JSON form, as [`text_of`].
fn json_of<S: crate::io::Socket, D: crate::io::Device>(
    node: &crate::node::Node<S, D>,
    now: crate::time::Instant,
) -> String {
    json_with(node, now, &KernelStates::new())
}

/// [`text_of`] with the kernel path's states `kernel`.
fn text_with<S: crate::io::Socket, D: crate::io::Device>(
    node: &crate::node::Node<S, D>,
    now: crate::time::Instant,
    kernel: &KernelStates,
) -> String {
    render_text(
        &header("ethcloud0"),
        now,
        node,
        LoopCounters::default(),
        ControlStats::default(),
        kernel,
    )
}

/// [`json_of`] with the kernel path's states `kernel`.
fn json_with<S: crate::io::Socket, D: crate::io::Device>(
    node: &crate::node::Node<S, D>,
    now: crate::time::Instant,
    kernel: &KernelStates,
) -> String {
    render_json(
        &header("ethcloud0"),
        now,
        node,
        LoopCounters::default(),
        ControlStats::default(),
        kernel,
    )
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
    // The longest answer: 64 characters shown, each escaped as `\u{10ffff}` (708 bytes, within
    // the bound the fuzz target and the property test use).
    let worst = Request::parse("\u{10ffff}".repeat(100).as_bytes()).unwrap_err();
    assert_eq!(worst.len(), 708, "{worst}");
    assert!(worst.len() <= 100 + 64 * 10);
    assert_eq!(worst.matches('\n').count(), 1);
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
        partial_checksum_superframes: 0,
        busy_poll_write_yields: 0,
        reloads_failed: 0,
        ..LoopCounters::default()
    };
    let text = render_text(
        &header("ethcloud0"),
        now,
        &node,
        extra,
        ControlStats::default(),
        &KernelStates::new(),
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
        lines.contains(&"  transfer: 2 datagrams (78 bytes) received, 0 datagrams (0 bytes) sent"),
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
    let text = text_of(&node, now);
    assert!(
        text.contains("  transfer: 2 datagrams (78 bytes) received, 2 datagrams (136 bytes) sent"),
        "{text}"
    );
    let json = json_of(&node, now);
    assert!(
        json.contains("\"rx_datagrams\":2,\"rx_bytes\":78,\"tx_datagrams\":2,\"tx_bytes\":136}"),
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
        &KernelStates::new(),
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
        "\"token\":7,\"token_text\":\"7\",",
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
fn with_per_node_keys_both_forms_show_the_public_key_and_how_many_keys_are_trusted() {
    use crate::identity::{IdentityConfig, SecretKey, TrustedKeys};
    use crate::node::{Config, IdentitySetup, Node};
    use crate::status::test_io::{NullDevice, NullSocket};
    let secret = SecretKey::from_random([5; 32]);
    let public = secret.public_key();
    let mut trusted = TrustedKeys::new();
    trusted.insert(SecretKey::from_random([6; 32]).public_key(), "b");
    trusted.insert(SecretKey::from_random([7; 32]).public_key(), "c");
    let mut config = Config::new(crate::wire::Token::new(7).unwrap());
    config.identity = Some(IdentitySetup {
        secret,
        trusted,
        config: IdentityConfig::new(crate::time::Instant::ZERO, 1, 5),
    });
    let node = Node::new(config, NullSocket, NullDevice, crate::time::Instant::ZERO);
    let now = crate::time::Instant::from_secs(1);
    let text = text_of(&node, now);
    assert!(
        text.contains(&format!("  public key: {public}\n")),
        "{text}"
    );
    assert!(text.contains("  trusted keys: 2\n"), "{text}");
    let json = json_of(&node, now);
    assert!(
        json.contains(&format!(
            ",\"uptime_secs\":1.000,\"public_key\":\"{public}\",\"trusted_keys\":2,"
        )),
        "{json}"
    );
    // Neither in the other modes.
    let (clear, now) = node_with_a_peer();
    assert!(!json_of(&clear, now).contains("public_key"));
    assert!(!text_of(&clear, now).contains("public key"));
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

#[test]
fn verified_peers_are_listed_before_any_number_of_unverified_addresses() {
    let (mut node, now) = node_with_a_peer();
    let token = node.config().token;
    let mut get = [0u8; 8];
    crate::wire::emit_control(token, crate::wire::Kind::GetPeers, &mut get).unwrap();
    // More unverified addresses than are listed, all before the verified peer in address
    // order (198.18.0.1 against its 198.18.0.2).
    for port in 1..=u16::try_from(MAX_LISTED + 50).unwrap() {
        let stranger = std::net::SocketAddr::from(([198, 18, 0, 1], port));
        let _ = node.on_datagram(now, stranger, &mut get.clone());
    }
    assert_eq!(node.peers().len(), MAX_LISTED + 51);
    let text = text_of(&node, now);
    let first = text.find("\npeer: ").expect("peers listed");
    assert!(
        text[first..].starts_with("\npeer: 198.18.0.2:3210\n  state: verified"),
        "{}",
        &text[first..first + 80]
    );
    assert!(text.contains("peers: 51 more not listed"), "{text}");
    let json = json_of(&node, now);
    assert!(
        json.contains("\"peers\":[{\"address\":\"198.18.0.2:3210\",\"verified\":true"),
        "{}",
        &json[..400]
    );
}

#[test]
fn the_kernel_path_state_of_a_peer_is_shown_when_there_is_one() {
    let (node, now) = node_with_a_peer();
    let peer: SocketAddr = crate::status::test_io::PEER.parse().unwrap();
    assert!(!text_of(&node, now).contains("kernel path"));
    assert!(!json_of(&node, now).contains("\"kernel_path\":"));
    for (state, text) in KERNEL_STATES {
        let kernel = KernelStates::from([(peer, state)]);
        let shown = text_with(&node, now, &kernel);
        assert!(
            shown.contains(&format!("\n  kernel path: {text}\n")),
            "{shown}"
        );
        let json = json_with(&node, now, &kernel);
        assert!(
            json.contains(&format!(",\"kernel_path\":\"{state}\"")),
            "{json}"
        );
    }
}
