//! Property tests of the text parsers at the OS edge: the command line's values (`--token`,
//! `--listen`, `--connect`, and a whole command line through clap and the checks), the
//! configuration file, key and trust files, and the control socket's request line. For any
//! input none of them panics, and what they refuse comes back as one line; what they accept
//! round-trips with the form the project itself prints.
//!
//! The wire parsers are property-tested in `wire_props.rs` and fuzzed under `fuzz/`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use clap::Parser;
use ethcloud::cli::{parse_listen, parse_peer, parse_token, Args, Host};
use ethcloud::config::{ConfigFile, KEYS};
use ethcloud::crypto::Key;
use ethcloud::error::Error;
use ethcloud::identity::{PublicKey, TrustedKeys};
use ethcloud::show::Request;
use ethcloud::wire::Token;
use proptest::prelude::*;

/// Text that looks like what people type, plus anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-zA-Z.:\\[\\]%_ -]{0,40}",
        "[\\x00-\\x7f]{0,40}",
        any::<String>(),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|ip| IpAddr::V4(Ipv4Addr::from(ip))),
        any::<u128>().prop_map(|ip| IpAddr::V6(Ipv6Addr::from(ip))),
    ]
}

/// DNS-like names: 1 to 4 labels of letters, digits, `-` and `_`, the first not all digits.
fn dns_name() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z_-][a-z0-9_-]{0,20}", 1..5).prop_map(|labels| labels.join("."))
}

fn one_line(text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!text.is_empty(), "an empty message");
    prop_assert!(!text.contains(['\n', '\r']), "more than one line: {text:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn token_accepts_exactly_the_decimal_numbers_up_to_the_max(s in text()) {
        let expected = (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
            .filter(|&v| v <= Token::MAX.get());
        match parse_token(&s) {
            Ok(token) => prop_assert_eq!(Some(token.get()), expected),
            Err(e) => {
                prop_assert_eq!(expected, None);
                one_line(&e.to_string())?;
            }
        }
    }

    #[test]
    fn every_token_round_trips_through_its_decimal_form(t in 0..=Token::MAX.get()) {
        prop_assert_eq!(parse_token(&t.to_string()).map(Token::get).ok(), Some(t));
    }

    #[test]
    fn listen_and_peer_never_panic_and_refuse_in_one_line(s in text()) {
        match parse_listen(&s) {
            Ok(addr) => prop_assert_eq!(parse_listen(&addr.to_string()).ok(), Some(addr)),
            Err(e) => one_line(&e.to_string())?,
        }
        match parse_peer(&s) {
            Ok(peer) => {
                prop_assert!(peer.port != 0);
                prop_assert_eq!(&peer.text, &s);
            }
            Err(e) => one_line(&e.to_string())?,
        }
    }

    #[test]
    fn addresses_round_trip_through_their_printed_form(ip in ip(), port in any::<u16>()) {
        let addr = SocketAddr::new(ip, port);
        let text = addr.to_string();
        // (A link-local address needs an interface, which neither option takes; a socket
        // bound to a multicast or broadcast address would hear no answer.)
        let link_local = ethcloud::peers::unscoped_link_local(addr);
        let group = match ip.to_canonical() {
            IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
            IpAddr::V6(v6) => v6.is_multicast(),
        };
        prop_assert_eq!(parse_listen(&text).ok(), (!link_local && !group).then_some(addr));
        match parse_peer(&text) {
            Ok(peer) => {
                prop_assert!(port != 0 && !link_local);
                prop_assert_eq!(peer.host, Host::Ip(ip));
                prop_assert_eq!(peer.port, port);
            }
            Err(e) => {
                prop_assert!(port == 0 || link_local, "{}", e);
                one_line(&e.to_string())?;
            }
        }
    }

    #[test]
    fn dns_names_with_a_port_are_peers(name in dns_name(), port in 1..=u16::MAX) {
        prop_assume!(name.parse::<Ipv4Addr>().is_err());
        let peer = parse_peer(&format!("{name}:{port}"));
        prop_assert!(peer.is_ok(), "{:?}", peer.err().map(|e| e.to_string()));
        if let Ok(peer) = peer {
            prop_assert_eq!(peer.host, Host::Name(name));
            prop_assert_eq!(peer.port, port);
        }
    }

    #[test]
    fn public_keys_round_trip_and_other_text_is_refused(bytes in any::<[u8; 32]>(), s in text()) {
        let key = PublicKey(bytes);
        prop_assert_eq!(PublicKey::from_text(&key.to_string()), Ok(key));
        prop_assert_eq!(PublicKey::from_text(&format!(" {key}\n")), Ok(key));
        if let Ok(parsed) = PublicKey::from_text(&s) {
            // Only the canonical form of some key is accepted.
            prop_assert_eq!(parsed.to_string(), s.trim());
        }
    }

    #[test]
    fn trust_files_keep_every_key_and_name_the_first_bad_line(
        // (Keys that key pairs make: a trust file refuses the others, points of small order
        // and encodings X25519 never writes, half of all random byte strings.)
        entries in proptest::collection::vec((
            any::<[u8; 32]>().prop_map(|b| ethcloud::identity::SecretKey::from_random(b).public_key().0),
            proptest::option::of("[a-z][a-z0-9-]{0,12}"),
        ), 0..20),
        comments in proptest::collection::vec(any::<bool>(), 20),
        bad in proptest::option::of((0usize..20, text())),
    ) {
        let mut lines = Vec::new();
        for (i, (bytes, name)) in entries.iter().enumerate() {
            if comments[i] {
                lines.push("# a comment".to_owned());
            }
            let key = PublicKey(*bytes);
            lines.push(match name {
                Some(name) => format!("{key}\t{name}"),
                None => format!("  {key}  "),
            });
        }
        // A line that is not a key, a comment or blank, inserted somewhere.
        let bad = bad.and_then(|(at, line)| {
            let line = line.lines().next().unwrap_or("").trim().to_owned();
            let first = line.split_whitespace().next().unwrap_or("");
            (!line.is_empty() && !line.starts_with('#') && PublicKey::from_text(first).is_err())
                .then(|| (at.min(lines.len()), line))
        });
        if let Some((at, line)) = &bad {
            lines.insert(*at, line.clone());
        }
        let mut trusted = TrustedKeys::new();
        let result = trusted.add_contents(&lines.join("\n"), "file");
        match bad {
            Some((at, _)) => {
                let err = result.err();
                prop_assert_eq!(err.as_ref().map(|e| e.line), Some(at + 1));
                if let Some(err) = err {
                    one_line(&err.to_string())?;
                }
            }
            None => {
                prop_assert!(result.is_ok(), "{:?}", result);
                for (bytes, name) in &entries {
                    let key = PublicKey(*bytes);
                    prop_assert!(trusted.contains(&key));
                    // A key listed twice keeps its last name.
                    let last = entries.iter().rev().find(|(b, _)| b == bytes).map(|(_, n)| n);
                    if last == Some(name) {
                        prop_assert_eq!(trusted.name(&key), Some(name.as_deref().unwrap_or("file")));
                    }
                }
            }
        }
    }

    #[test]
    fn any_trust_file_text_parses_or_names_a_line(s in text()) {
        let mut trusted = TrustedKeys::new();
        if let Err(e) = trusted.add_contents(&s, "file") {
            prop_assert!(e.line >= 1 && e.line <= s.lines().count());
            one_line(&e.to_string())?;
        }
    }

    #[test]
    fn network_key_files_raw_and_hex(bytes in any::<[u8; 32]>(), upper in any::<bool>(), newline in any::<bool>()) {
        let token = Token::new(7).unwrap_or(Token::MAX);
        let raw = Key::from_file_contents(&bytes, token);
        prop_assert!(raw.is_ok());
        let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if upper {
            hex = hex.to_uppercase();
        }
        if newline {
            hex.push('\n');
        }
        let from_hex = Key::from_file_contents(hex.as_bytes(), token);
        prop_assert!(from_hex.is_ok());
        // A raw key and the hex form of the same bytes are the same key.
        if let (Ok(raw), Ok(from_hex)) = (raw, from_hex) {
            prop_assert!(raw == from_hex);
        }
    }

    #[test]
    fn control_requests_are_two_and_anything_else_gets_a_bounded_answer(
        line in proptest::collection::vec(any::<u8>(), 0..300),
        pad in "[ \t]{0,3}",
        json in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        match Request::parse(&line) {
            Ok(_) => {
                let words: Vec<&[u8]> = line
                    .split(|b| b.is_ascii_whitespace())
                    .filter(|w| !w.is_empty())
                    .collect();
                prop_assert!(words == [b"show".as_slice()] || words == [b"show".as_slice(), b"json"]);
            }
            Err(answer) => {
                prop_assert!(answer.starts_with("error: unknown request"));
                prop_assert!(answer.ends_with('\n'));
                one_line(answer.trim_end_matches('\n'))?;
                // At most 64 characters of the request, each escaped in at most 10 bytes
                // (`\u{10ffff}`): 64 such characters give 708 bytes, so 512 was too low.
                prop_assert!(answer.len() <= 100 + 64 * 10, "answer of {} bytes", answer.len());
            }
        }
        let request = format!(
            "{pad}show{pad}{}{}",
            if json { " json" } else { "" },
            if crlf { "\r\n" } else { "\n" }
        );
        let expected = if json { Request::Json } else { Request::Text };
        prop_assert_eq!(Request::parse(request.as_bytes()), Ok(expected));
    }

    #[test]
    fn config_files_parse_or_fail_in_one_line_naming_a_line(s in prop_oneof![
        text(),
        // A quoted key may hold any character, a line break too.
        "[a-z\n\t\x01 -]{1,12}".prop_map(|k| format!("{k:?} = 1\n")),
    ]) {
        if let Err(e) = ConfigFile::parse(Path::new("/etc/ethcloud/x.toml"), &s) {
            one_line(&e.to_string())?;
            // The line named is one of the file's (the last one for an error at its end).
            let Error::ConfigParse { line, .. } = e else {
                return Err(TestCaseError::fail(format!("not a ConfigParse error: {e}")));
            };
            let lines = s.lines().count().max(1);
            prop_assert!((1..=lines).contains(&line), "line {} of {} in {:?}", line, lines, s);
        }
    }

    #[test]
    fn config_values_of_any_type_never_panic_the_checks(
        key in proptest::sample::select(KEYS.to_vec()),
        value in prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            text().prop_map(|s| format!("{s:?}")),
            Just("true".to_owned()),
            Just("[\"198.18.0.1:3210\", 5]".to_owned()),
            Just("1.5".to_owned()),
        ],
    ) {
        let text = format!("{key} = {value}\n");
        match ConfigFile::parse(Path::new("/etc/ethcloud/x.toml"), &text) {
            Ok(file) => {
                let args = Args::try_parse_from(["ethcloud"]);
                prop_assert!(args.is_ok());
                if let Ok(args) = args {
                    if let Err(e) = args.check_with(Some(&file)) {
                        let shown = e.to_string();
                        one_line(&shown)?;
                        prop_assert!(shown.contains("line 1"), "{}", shown);
                    }
                }
            }
            Err(e) => one_line(&e.to_string())?,
        }
    }

    #[test]
    fn any_command_line_is_parsed_and_checked_or_refused_in_one_line(
        words in proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(vec![
                    "-d", "-l", "-t", "-c", "--peer-timeout", "--mac-timeout", "--mtu",
                    "--max-peers", "--max-macs", "--threads", "--busy-poll", "--keepalive",
                    "--stats-interval", "--user", "--group", "-v", "-q", "--no-offload",
                    "--key-file", "--private-key", "--trusted", "--rekey-after",
                ]).prop_map(str::to_owned),
                text(),
                any::<u64>().prop_map(|v| v.to_string()),
            ],
            0..8,
        ),
    ) {
        match Args::try_parse_from(std::iter::once("ethcloud".to_owned()).chain(words)) {
            // clap's own messages (usage, help) are several lines by design; they only must
            // not panic.
            Err(_) => {}
            Ok(args) => {
                if args.config.is_none() {
                    if let Err(e) = args.check() {
                        one_line(&e.to_string())?;
                        prop_assert_eq!(e.exit_code(), 2, "{}", e);
                    }
                }
            }
        }
    }
}
