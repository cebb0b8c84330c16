//! Unit tests of the command line as a whole: clap's parsing, the checks, the config file
//! under the command line, and the conversions of [`Settings`]. Behaviour that needs the
//! binary or a tap device is tested in `tests/cli.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;
use log::LevelFilter;

use super::*;
use crate::config::ConfigFile;
use crate::error::Error;
use crate::status::StatsFormat;
use crate::sys::udp::Families;
use crate::wire::Token;

fn args(list: &[&str]) -> Result<Args, clap::Error> {
    Args::try_parse_from(std::iter::once("ethcloud").chain(list.iter().copied()))
}

fn check(list: &[&str]) -> Result<Settings, Error> {
    args(list).unwrap().check()
}

fn usage_error(list: &[&str]) -> String {
    let err = check(list).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    err.to_string()
}

#[test]
fn defaults_match_the_spec() {
    let s = check(&[]).unwrap();
    assert_eq!(s.device, "ethcloud%d");
    assert_eq!(s.listen, "0.0.0.0:3210".parse().unwrap());
    assert_eq!(s.token, Token::new(0).unwrap());
    assert!(s.connect.is_empty());
    assert_eq!(s.peer_timeout, Duration::from_secs(1800));
    assert_eq!(s.mac_timeout, Duration::from_secs(300));
    assert_eq!(s.log_level, LevelFilter::Info);
    assert!(s.offload);
    assert!(!check(&["--no-offload"]).unwrap().offload);
    assert_eq!(
        check(&[]).unwrap().busy_poll,
        Duration::from_micros(DEFAULT_BUSY_POLL_USECS)
    );
    assert!(check(&["--busy-poll", "0"]).unwrap().busy_poll.is_zero());
    assert!(check(&["--busy-poll", "100001"]).is_err());
}

#[test]
fn short_and_long_options_are_the_specs() {
    let s = check(&[
        "-d",
        "vpn0",
        "-l",
        "[::]:4000",
        "-t",
        "134",
        "-c",
        "198.18.0.2:3210",
        "-c",
        "[fd00::2]:3210",
        "--peer-timeout",
        "60",
        "--mac-timeout",
        "30",
        "-v",
    ])
    .unwrap();
    assert_eq!(s.device, "vpn0");
    assert_eq!(s.listen, "[::]:4000".parse().unwrap());
    assert_eq!(s.token.get(), 134);
    assert_eq!(s.connect.len(), 2);
    assert_eq!(s.peer_timeout, Duration::from_secs(60));
    assert_eq!(s.mac_timeout, Duration::from_secs(30));
    assert_eq!(s.log_level, LevelFilter::Debug);
    let long = check(&[
        "--device",
        "vpn0",
        "--listen",
        "[::]:4000",
        "--token",
        "134",
        "--connect",
        "198.18.0.2:3210",
        "--quiet",
    ])
    .unwrap();
    assert_eq!(long.log_level, LevelFilter::Error);
    assert_eq!(long.token.get(), 134);
}

#[test]
fn verbose_with_quiet_is_a_clap_conflict() {
    let err = args(&["-v", "-q"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn non_numeric_timeout_is_a_clap_error() {
    let err = args(&["--peer-timeout", "soon"]).unwrap_err();
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn token_of_2_pow_56_is_rejected_naming_the_limit() {
    let text = usage_error(&["-t", "72057594037927936"]);
    assert!(text.contains("too large"), "{text}");
    assert!(text.contains("72057594037927935"), "{text}");
    assert_eq!(
        check(&["-t", "72057594037927935"]).unwrap().token,
        Token::MAX
    );
}

#[test]
fn token_beyond_u64_is_too_large() {
    let text = usage_error(&["-t", "99999999999999999999999"]);
    assert!(text.contains("too large"), "{text}");
}

#[test]
fn token_not_a_number_is_rejected() {
    for bad in ["abc", "", "-1", "1e3", " 1", "0x10"] {
        let text = usage_error(&[&format!("--token={bad}")]);
        assert!(text.contains("not a decimal number"), "{bad:?}: {text}");
    }
}

#[test]
fn listen_without_valid_port_is_rejected() {
    for (bad, why) in [
        ("0.0.0.0", "missing port"),
        ("0.0.0.0:", "missing port"),
        ("[::]", "missing port"),
        ("0.0.0.0:99999", "above 65535"),
        ("0.0.0.0:http", "not a number"),
        (":3210", "missing host"),
        ("::1:3210", "brackets"),
        ("localhost:3210", "IP address"),
        ("[nonsense]:3210", "IPv6"),
        ("[fe80::1]:3210", "link-local"),
        ("224.1.2.3:3210", "multicast or broadcast"),
        ("255.255.255.255:3210", "multicast or broadcast"),
        ("[ff05::1]:3210", "multicast or broadcast"),
        ("[::ffff:239.1.1.1]:3210", "multicast or broadcast"),
    ] {
        let text = usage_error(&["-l", bad]);
        assert!(text.contains(why), "{bad:?}: {text}");
        assert!(text.starts_with("invalid listen address"), "{text}");
    }
}

#[test]
fn listen_accepts_ipv4_ipv6_and_port_0() {
    assert_eq!(
        check(&["-l", "[fd00::1]:0"]).unwrap().listen,
        "[fd00::1]:0".parse().unwrap()
    );
    assert_eq!(
        check(&["-l", "127.0.0.1:3210"]).unwrap().listen,
        "127.0.0.1:3210".parse().unwrap()
    );
    for any in ["0.0.0.0:0", "[::]:3210", "198.18.255.255:3210"] {
        assert_eq!(check(&["-l", any]).unwrap().listen, any.parse().unwrap());
    }
}

#[test]
fn connect_without_valid_port_is_rejected() {
    for (bad, why) in [
        ("198.18.0.2", "missing port"),
        ("198.18.0.2:0", "port 0"),
        ("198.18.0.2:65536", "above 65535"),
        ("[fd00::2]", "missing port"),
        ("fd00::2:3210", "brackets"),
        ("bad host:3210", "neither"),
        ("a..b:3210", "neither"),
        ("[fe80::2]:3210", "link-local"),
        ("[fe80::2%eth0]:3210", "not an IPv6 address"),
    ] {
        let text = usage_error(&["-l", "[::]:3210", "-c", bad]);
        assert!(text.contains(why), "{bad:?}: {text}");
        assert!(text.starts_with("invalid peer address"), "{text}");
    }
}

#[test]
fn connect_accepts_ipv4_bracketed_ipv6_and_names() {
    let s = check(&[
        "-l",
        "[::]:3210",
        "-c",
        "198.18.0.2:1",
        "-c",
        "[fd00::2]:2",
        "-c",
        "peer-1.example:3",
    ])
    .unwrap();
    assert_eq!(s.connect[0].host, Host::Ip("198.18.0.2".parse().unwrap()));
    assert_eq!(s.connect[1].host, Host::Ip("fd00::2".parse().unwrap()));
    assert_eq!(s.connect[2].host, Host::Name("peer-1.example".to_owned()));
    assert_eq!(s.connect[2].port, 3);
}

#[test]
fn connect_ipv6_peer_from_ipv4_socket_is_rejected() {
    let text = usage_error(&["-l", "0.0.0.0:3210", "-c", "[fd00::2]:3210"]);
    assert!(text.contains("reaches only IPv4"), "{text}");
    // A socket on an IPv4-mapped address reaches IPv4 peers only, and is named so.
    let text = usage_error(&["-l", "[::ffff:198.18.0.1]:3210", "-c", "[fd00::2]:3210"]);
    assert!(
        text.contains("is IPv6 but the socket on [::ffff:198.18.0.1]:3210 reaches only IPv4"),
        "{text}"
    );
}

/// An address no node can be at is a usage error, as one of the wrong family is (it only
/// warned at run time, and the daemon ran without that peer).
#[test]
fn a_connect_address_no_node_can_be_at_is_rejected() {
    for bad in ["0.0.0.0:3210", "224.0.0.1:3210", "255.255.255.255:3210"] {
        let text = usage_error(&["-c", bad]);
        assert!(
            text.contains("unspecified, multicast, broadcast or IPv4-compatible"),
            "{bad}: {text}"
        );
        assert!(text.contains(bad), "{bad}: {text}");
    }
    for bad in ["[::]:3210", "[ff02::1]:3210", "[::198.18.0.2]:3210"] {
        let text = usage_error(&["-l", "[::]:3210", "-c", bad]);
        assert!(
            text.contains("unspecified, multicast, broadcast or IPv4-compatible"),
            "{bad}: {text}"
        );
    }
    assert!(check(&["-c", "198.18.0.255:3210"]).is_ok());
}

#[test]
fn device_name_of_16_bytes_or_more_is_rejected() {
    let text = usage_error(&["-d", "abcdefghijklmnop"]);
    assert!(text.contains("IFNAMSIZ"), "{text}");
    usage_error(&["-d", "a-name-of-20-chars!!"]);
    usage_error(&["-d", ""]);
    assert_eq!(
        check(&["-d", "abcdefghijklmno"]).unwrap().device,
        "abcdefghijklmno"
    );
}

#[test]
fn zero_timeouts_are_rejected() {
    let text = usage_error(&["--peer-timeout", "0"]);
    assert!(text.contains("--peer-timeout"), "{text}");
    // One second leaves no keepalive that is at least 1 s and at most half of it.
    let text = usage_error(&["--peer-timeout", "1"]);
    assert!(
        text.contains("invalid --peer-timeout: must be at least 2 seconds"),
        "{text}"
    );
    assert_eq!(
        check(&["--peer-timeout", "2"]).unwrap().peer_timeout,
        Duration::from_secs(2)
    );
    let text = usage_error(&["--mac-timeout", "0"]);
    assert!(text.contains("--mac-timeout"), "{text}");
    assert_eq!(
        check(&["--mac-timeout", "1"]).unwrap().mac_timeout,
        Duration::from_secs(1)
    );
}

/// A timeout past 136 years is refused, on the command line and in the file: "never" in
/// practice, while a MAC table entry's age is worked back from a deadline that must not
/// saturate (at 1e18 s it did: every MAC showed as ages old, and none as seen just now).
#[test]
fn timeouts_past_136_years_are_refused() {
    for option in ["--peer-timeout", "--mac-timeout", "--stats-interval"] {
        let text = usage_error(&[option, "4294967296"]);
        assert!(
            text.contains(&format!(
                "invalid {option}: must be at most 4294967295 seconds (136 years)"
            )),
            "{text}"
        );
        assert!(check(&[option, "4294967295"]).is_ok(), "{option}");
    }
    let err = check_file(&[], "mac-timeout = 1000000000000000000\n").unwrap_err();
    assert!(err.to_string().contains("at most 4294967295"), "{err}");
}

#[test]
fn literal_peers_resolve_without_dns_and_v4_mapped_becomes_ipv4() {
    let s = check(&[
        "-l",
        "[::]:3210",
        "-c",
        "[::ffff:198.18.0.2]:3210",
        "-c",
        "198.18.0.2:3210",
        "-c",
        "[fd00::2]:3210",
    ])
    .unwrap();
    let addrs = s.resolve_peers().unwrap();
    assert_eq!(
        addrs,
        [
            "198.18.0.2:3210".parse().unwrap(),
            "[fd00::2]:3210".parse().unwrap()
        ]
    );
}

#[test]
fn a_v4_mapped_peer_is_the_ipv4_address_it_maps_for_the_family_check_too() {
    // An IPv4 socket reaches it...
    let s = check(&["-l", "0.0.0.0:3210", "-c", "[::ffff:198.18.0.2]:3210"]).unwrap();
    assert_eq!(
        s.resolve_peers().unwrap(),
        ["198.18.0.2:3210".parse().unwrap()]
    );
    // ... and an IPv6-only one does not, which is said at once (exit status 2), not at
    // start-up.
    let err = usage_error(&["-l", "[fd00::1]:3210", "-c", "[::ffff:198.18.0.2]:3210"]);
    assert!(err.contains("198.18.0.2:3210"), "{err}");
}

#[test]
fn localhost_resolves_to_the_listen_family() {
    let s = check(&["-l", "0.0.0.0:3210", "-c", "localhost:3210"]).unwrap();
    let addrs = s.resolve_peers().unwrap();
    assert_eq!(addrs, ["127.0.0.1:3210".parse().unwrap()]);
}

#[test]
fn node_config_carries_the_checked_values() {
    let s = check(&["-t", "7", "--peer-timeout", "9", "--mac-timeout", "8"]).unwrap();
    let families = Families::of(&s.listen);
    let peer: SocketAddr = "198.18.0.2:3210".parse().unwrap();
    let own: SocketAddr = "198.18.0.1:3210".parse().unwrap();
    let config = s.node_config(vec![peer], vec![own], families);
    assert_eq!(config.token.get(), 7);
    assert_eq!(config.peer_timeout, Duration::from_secs(9));
    assert_eq!(config.mac_timeout, Duration::from_secs(8));
    assert_eq!(config.connect, [peer]);
    assert_eq!(config.own_addrs, [own]);
    assert!(config.accepts_ipv4 && !config.accepts_ipv6);
}

fn file(text: &str) -> ConfigFile {
    ConfigFile::parse(std::path::Path::new("/etc/ethcloud/vpn0.toml"), text).unwrap()
}

fn check_file(list: &[&str], text: &str) -> Result<Settings, Error> {
    args(list).unwrap().check_with(Some(&file(text)))
}

const FILE: &str = r#"
device = "vpn0"
listen = "[::]:4000"
token = 134
connect = ["198.18.0.2:3210", "[fd00::2]:3210"]
peer-timeout = 60
quiet = true
max-peers = 10
broadcast-limit = 100
mtu = 1400
user = "65534"
stats-file = "/run/ethcloud/vpn0/stats"
stats-format = "prometheus"
"#;

#[test]
fn config_file_values_apply_where_the_command_line_is_silent() {
    let s = check_file(&[], FILE).unwrap();
    assert_eq!(s.device, "vpn0");
    assert_eq!(s.listen, "[::]:4000".parse().unwrap());
    assert_eq!(s.token.get(), 134);
    assert_eq!(s.connect.len(), 2);
    assert_eq!(s.peer_timeout, Duration::from_secs(60));
    assert_eq!(s.mac_timeout, Duration::from_secs(300), "default");
    assert_eq!(s.log_level, LevelFilter::Error);
    assert_eq!(s.max_peers, 10);
    assert_eq!(s.broadcast_limit, Some(100));
    assert_eq!(s.mtu, 1400);
    assert_eq!(s.user.as_deref(), Some("65534"));
    assert_eq!(s.stats_format, StatsFormat::Prometheus);
    assert_eq!(s.stats_interval, Duration::from_secs(10), "default");
}

#[test]
fn command_line_overrides_the_config_file() {
    let s = check_file(
        &[
            "-d",
            "vpn9",
            "-t",
            "9",
            "-c",
            "198.18.0.9:3210",
            "--peer-timeout",
            "5",
            "-v",
            "--mtu",
            "1300",
            "--stats-format",
            "text",
        ],
        FILE,
    )
    .unwrap();
    assert_eq!(s.device, "vpn9");
    assert_eq!(s.token.get(), 9);
    assert_eq!(s.connect.len(), 1, "-c replaces the file's list");
    assert_eq!(s.connect[0].text, "198.18.0.9:3210");
    assert_eq!(s.peer_timeout, Duration::from_secs(5));
    assert_eq!(s.log_level, LevelFilter::Debug, "-v beats quiet = true");
    assert_eq!(s.mtu, 1300);
    assert_eq!(s.stats_format, StatsFormat::Text);
    assert_eq!(s.listen, "[::]:4000".parse().unwrap(), "not overridden");
}

#[test]
fn a_user_or_group_the_system_does_not_know_is_blamed_on_its_line() {
    let err = check_file(&[], "token = 1\nuser = \"ethcloud-no-such-user\"\n").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().starts_with(
            "config file /etc/ethcloud/vpn0.toml, line 2: key user: invalid --user \
             \"ethcloud-no-such-user\": no such user"
        ),
        "{err}"
    );
    let err = check_file(
        &[],
        "user = \"root\"\n\ngroup = \"ethcloud-no-such-group\"\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("line 3: key group: "), "{err}");
    let text = usage_error(&["--user", "ethcloud-no-such-user"]);
    assert!(text.contains("ethcloud-no-such-user"), "{text}");
}

#[test]
fn path_options_no_file_can_have_are_refused_naming_the_option_or_the_line() {
    // (clap refuses an empty value on the command line itself.)
    let err = check_file(&[], "stats-file = \"\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("line 1: key stats-file: invalid --stats-file: the path is empty"),
        "{err}"
    );
    let long = format!("/run/{}.sock", "x".repeat(100));
    let text = usage_error(&["--control-socket", &long]);
    assert!(
        text.contains("invalid --control-socket: a socket's path must be at most 107 bytes"),
        "{text}"
    );
    // On the command line a relative path is the caller's; in a file it is refused.
    assert!(check(&["--stats-file", "stats.txt"]).is_ok());
    let err = check_file(&[], "token = 1\ncontrol-socket = \"vpn0.sock\"\n").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "config file /etc/ethcloud/vpn0.toml, line 2: key control-socket: invalid \
         --control-socket: a path in a config file must be absolute"
    );
    // The key and trust paths too (they worked by hand from /etc/ethcloud and failed under
    // the unit, whose working directory is /).
    for (line, key) in [
        ("key-file = \"vpn0.psk\"", "key-file"),
        ("private-key = \"vpn0.key\"", "private-key"),
        (
            "private-key = \"/k\"\ntrusted = [\"/t\", \"vpn0.trusted.d\"]",
            "trusted",
        ),
    ] {
        let err = check_file(&[], &format!("{line}\n")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "key {key}: invalid --{key}: a path in a config file must be absolute"
            )),
            "{text}"
        );
    }
    assert!(check(&["--key-file", "vpn0.psk"]).is_ok());
    let err = check_file(&[], "stats-file = \"/run/a\\u0000b\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("line 1: key stats-file: invalid --stats-file: the path holds a NUL byte"),
        "{err}"
    );
    assert!(check_file(
        &[],
        "control-socket = \"/run/ethcloud/vpn0/control.sock\"\n"
    )
    .is_ok());
}

/// A hook that could not run as written is refused at the start, not when the device exists:
/// a config file with Windows line ends leaves a carriage return in each line of a multi-line
/// command, and a NUL byte cannot reach `sh -c`.
#[test]
fn hook_commands_with_a_carriage_return_or_a_nul_byte_are_refused() {
    let crlf = "token = 1\r\nifup = \"\"\"\r\nip link set $IFNAME up\r\n\"\"\"\r\n";
    let err = check_file(&[], crlf).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains(
            "line 2: key ifup: invalid --ifup: the command holds a carriage return (save the \
             config file with Unix line ends)"
        ),
        "{err}"
    );
    let err = check_file(&[], "ifdown = \"true\\u0000\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("line 1: key ifdown: invalid --ifdown: the command holds a NUL byte"),
        "{err}"
    );
    let text = usage_error(&["--ifup", "true\r"]);
    assert!(
        text.contains("invalid --ifup: the command holds a carriage return"),
        "{text}"
    );
    // The same commands with Unix line ends are taken.
    let lf = crlf.replace("\r\n", "\n");
    assert!(check_file(&[], &lf).is_ok());
    assert!(check(&["--ifup", "ip link set $IFNAME up", "--ifdown", "true"]).is_ok());
}

#[test]
fn bad_config_value_names_the_file_the_key_and_the_line() {
    let err = check_file(&[], "device = \"vpn0\"\n\npeer-timeout = 0\n").unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        "config file /etc/ethcloud/vpn0.toml, line 3: key peer-timeout: \
         invalid --peer-timeout: must be at least 2 seconds"
    );
    let err = check_file(&[], "token = 72057594037927936\n").unwrap_err();
    assert!(
        err.to_string().contains("line 1: key token: invalid token"),
        "{err}"
    );
    let err = check_file(&[], "connect = [\"198.18.0.1\"]\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("key connect: invalid peer address"),
        "{err}"
    );
    let err = check_file(&[], "max-macs = 0\n").unwrap_err();
    assert!(
        err.to_string().contains("key max-macs: invalid --max-macs"),
        "{err}"
    );
}

#[test]
fn bad_config_value_overridden_on_the_command_line_is_no_error() {
    let s = check_file(&["--peer-timeout", "7"], "peer-timeout = 0\n").unwrap();
    assert_eq!(s.peer_timeout, Duration::from_secs(7));
}

#[test]
fn bad_command_line_value_is_not_blamed_on_the_file() {
    let err = check_file(&["--mtu", "20"], "mtu = 1400\n").unwrap_err();
    assert!(err.to_string().starts_with("invalid --mtu 20"), "{err}");
}

#[test]
fn default_mtu_leaves_room_for_the_underlay_headers() {
    assert_eq!(check(&[]).unwrap().mtu, 1450);
    assert_eq!(check(&["-l", "[::]:3210"]).unwrap().mtu, 1430);
    assert_eq!(check(&["-l", "[fd00::1]:3210"]).unwrap().mtu, 1430);
    assert_eq!(
        check(&["-l", "[::ffff:198.18.0.1]:3210"]).unwrap().mtu,
        1450
    );
    assert_eq!(ETHCLOUD_HEADER_LEN as usize, crate::wire::HEADER_LEN);
    assert_eq!(
        FRAME_HEADER_LEN as usize,
        crate::wire::ethernet::ETHERNET_HEADER_LEN
    );
    let tagged = crate::wire::ethernet::TAGGED_HEADER_LEN;
    assert_eq!(MAX_MTU as usize + tagged, crate::wire::MAX_FRAME_LEN);
}

#[test]
fn more_than_1024_connect_addresses_are_a_usage_error() {
    let many: Vec<String> = (0..=MAX_CONNECT)
        .map(|i| format!("198.18.{}.{}:3210", i / 250, i % 250 + 1))
        .collect();
    let mut args: Vec<&str> = Vec::new();
    for a in &many[..MAX_CONNECT] {
        args.extend(["-c", a.as_str()]);
    }
    assert_eq!(check(&args).unwrap().connect.len(), MAX_CONNECT);
    args.extend(["-c", many[MAX_CONNECT].as_str()]);
    let text = usage_error(&args);
    assert!(text.contains("more than 1024 --connect"), "{text}");
}

#[test]
fn mtu_out_of_range_is_rejected() {
    usage_error(&["--mtu", "67"]);
    usage_error(&["--mtu", "65482"]);
    assert_eq!(check(&["--mtu", "68"]).unwrap().mtu, 68);
    assert_eq!(check(&["--mtu", "65481"]).unwrap().mtu, 65481);
    // Sealed, a full frame grows by the seal's 41 bytes and must still fit one datagram.
    let sealed_max = MAX_MTU - crate::crypto::OVERHEAD as u32;
    assert_eq!(sealed_max, 65440);
    usage_error(&["--key-file", "k", "--mtu", "65441"]);
    usage_error(&["--private-key", "p", "--trusted", "t", "--mtu", "65441"]);
    assert_eq!(
        check(&["--key-file", "k", "--mtu", "65440"]).unwrap().mtu,
        65440
    );
    let datagram = sealed_max as usize
        + crate::wire::ethernet::TAGGED_HEADER_LEN
        + crate::wire::HEADER_LEN
        + crate::crypto::OVERHEAD;
    assert_eq!(datagram, 65_507, "the largest UDP payload over IPv4");
}

#[test]
fn caps_and_broadcast_limit_reach_the_node_config() {
    let s = check(&[
        "--max-peers",
        "3",
        "--max-macs",
        "4",
        "--max-macs-per-peer",
        "2",
        "--broadcast-limit",
        "50",
    ])
    .unwrap();
    let config = s.node_config(vec![], vec![], Families::of(&s.listen));
    assert_eq!(config.max_peers, 3);
    assert_eq!(config.max_macs, 4);
    assert_eq!(config.max_macs_per_peer, 2);
    assert_eq!(config.broadcast_limit, Some(50));
    let defaults = check(&[]).unwrap();
    assert_eq!(defaults.max_peers, 4096);
    assert_eq!(defaults.max_macs, 65536);
    assert_eq!(defaults.max_macs_per_peer, 4096);
    assert_eq!(defaults.broadcast_limit, None);
}

#[test]
fn zero_caps_are_rejected() {
    for option in [
        "--max-peers",
        "--max-macs",
        "--max-macs-per-peer",
        "--broadcast-limit",
    ] {
        let text = usage_error(&[option, "0"]);
        assert!(text.contains(option), "{text}");
    }
    usage_error(&["--stats-interval", "0"]);
}

#[test]
fn group_without_user_is_rejected() {
    let text = usage_error(&["--group", "65534"]);
    assert!(text.contains("--group needs --user"), "{text}");
    // (Numbers: they resolve whether or not the system names them.)
    assert!(check(&["--user", "65534", "--group", "65534"]).is_ok());
}

#[test]
fn resolve_each_keeps_every_value_with_its_address() {
    let s = check(&["-c", "127.0.0.1:1", "-c", "localhost:1"]).unwrap();
    let each: Vec<_> = s
        .resolve_each()
        .into_iter()
        .map(|(peer, result)| (peer, Some(result.unwrap())))
        .collect();
    assert_eq!(each.len(), 2);
    assert_eq!(unique_addrs(&each), ["127.0.0.1:1".parse().unwrap()]);
}

#[test]
fn key_tools_are_subcommands_and_leave_the_daemon_usage_alone() {
    assert_eq!(args(&["genkey"]).unwrap().command, Some(Command::Genkey));
    assert_eq!(args(&["pubkey"]).unwrap().command, Some(Command::Pubkey));
    let daemon = args(&["-t", "7", "-c", "198.18.0.1:3210"]).unwrap();
    assert_eq!(daemon.command, None);
    assert!(daemon.check().is_ok());
    // Daemon options and a key tool do not mix.
    for list in [
        &["-t", "7", "genkey"][..],
        &["genkey", "-t", "7"],
        &["--private-key", "k", "pubkey"],
    ] {
        let err = args(list).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{list:?}: {err}");
    }
    assert_eq!(
        args(&["frobnicate"]).unwrap_err().kind(),
        ErrorKind::InvalidSubcommand
    );
    assert_eq!(args(&["genkey", "extra"]).unwrap_err().exit_code(), 2);
}

#[test]
fn private_key_and_trusted_reach_the_settings() {
    let s = check(&[
        "--private-key",
        "/etc/ethcloud/vpn0.key",
        "--trusted",
        "/etc/ethcloud/vpn0.trusted",
        "--trusted",
        "/etc/ethcloud/vpn0.trusted.d",
    ])
    .unwrap();
    assert_eq!(
        s.private_key.as_deref(),
        Some(std::path::Path::new("/etc/ethcloud/vpn0.key"))
    );
    assert_eq!(
        s.trusted,
        [
            std::path::PathBuf::from("/etc/ethcloud/vpn0.trusted"),
            std::path::PathBuf::from("/etc/ethcloud/vpn0.trusted.d"),
        ]
    );
    assert_eq!(s.key_file, None);
    let plain = check(&[]).unwrap();
    assert_eq!((plain.private_key, plain.trusted.len()), (None, 0));
}

#[test]
fn private_key_conflicts_with_key_file_and_needs_trusted() {
    let text = usage_error(&["--private-key", "a", "--trusted", "t", "--key-file", "b"]);
    assert!(
        text.starts_with("--private-key cannot be combined with --key-file"),
        "{text}"
    );
    let text = usage_error(&["--private-key", "a"]);
    assert!(text.starts_with("--private-key needs --trusted"), "{text}");
    let text = usage_error(&["--trusted", "t"]);
    assert!(text.starts_with("--trusted needs --private-key"), "{text}");
    // Across the command line and the file: the file's key is named.
    let err = check_file(
        &["--private-key", "a", "--trusted", "t"],
        "token = 1\nkey-file = \"/etc/ethcloud/vpn0.psk\"\n",
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().starts_with(
            "config file /etc/ethcloud/vpn0.toml, line 2: key key-file: \
             --private-key cannot be combined with --key-file"
        ),
        "{err}"
    );
    let err = check_file(&[], "private-key = \"/etc/ethcloud/a.key\"\ntrusted = []\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("line 1: key private-key: --private-key needs --trusted"),
        "{err}"
    );
}

#[test]
fn private_key_and_trusted_come_from_the_file_and_the_command_line_wins() {
    let text = "private-key = \"/etc/ethcloud/a.key\"\ntrusted = \"/etc/ethcloud/t\"\n";
    let s = check_file(&[], text).unwrap();
    assert_eq!(
        s.private_key.as_deref(),
        Some(std::path::Path::new("/etc/ethcloud/a.key"))
    );
    assert_eq!(s.trusted, [std::path::PathBuf::from("/etc/ethcloud/t")]);
    let s = check_file(&["--trusted", "u", "--trusted", "v"], text).unwrap();
    assert_eq!(
        s.trusted,
        [std::path::PathBuf::from("u"), std::path::PathBuf::from("v")]
    );
}

#[test]
fn private_key_leaves_the_same_mtu_room_as_key_file() {
    let keyed = check(&["--key-file", "k"]).unwrap().mtu;
    let per_node = check(&["--private-key", "k", "--trusted", "t"])
        .unwrap()
        .mtu;
    assert_eq!(per_node, keyed);
    assert_eq!(
        per_node,
        1450 - u32::try_from(crate::crypto::OVERHEAD).unwrap()
    );
    let v6 = check(&["-l", "[::]:3210", "--private-key", "k", "--trusted", "t"]).unwrap();
    assert_eq!(v6.mtu, 1389);
    let given = check(&["--mtu", "1300", "--private-key", "k", "--trusted", "t"]).unwrap();
    assert_eq!(given.mtu, 1300);
}

#[test]
fn show_subcommand_takes_a_device_json_and_a_socket() {
    let parsed = args(&["show", "vpn0", "--json", "--socket", "/tmp/x.sock"]).unwrap();
    assert_eq!(
        parsed.command,
        Some(Command::Show(ShowArgs {
            device: Some("vpn0".to_owned()),
            json: true,
            config: None,
            socket: Some("/tmp/x.sock".into()),
        }))
    );
    let parsed = args(&["show"]).unwrap();
    assert_eq!(
        parsed.command,
        Some(Command::Show(ShowArgs {
            device: None,
            json: false,
            config: None,
            socket: None,
        }))
    );
    // The daemon's command line has no subcommand.
    assert_eq!(args(&["-t", "7"]).unwrap().command, None);
    let settings = check(&["--control-socket", "/run/x.sock"]).unwrap();
    assert_eq!(settings.control_socket, Some("/run/x.sock".into()));
    assert_eq!(check(&[]).unwrap().control_socket, None);
}

#[test]
fn relay_is_on_by_default_and_its_rate_is_checked() {
    let s = check(&[]).unwrap();
    assert!(s.relay);
    assert_eq!(s.relay_rate, 100 * 1_000_000 / 8);
    let s = check(&["--no-relay", "--relay-rate", "0"]).unwrap();
    assert!(!s.relay);
    assert_eq!(s.relay_rate, 0);
    assert!(check(&["--relay-rate", "100000"]).is_ok());
    let err = check(&["--relay-rate", "100001"]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--relay-rate must be at most 100000"),
        "{err}"
    );
    let config = s.node_config(
        Vec::new(),
        Vec::new(),
        crate::sys::udp::Families::of(&s.listen),
    );
    assert!(!config.relay);
}

#[test]
fn keepalive_is_optional_and_at_most_half_the_peer_timeout() {
    assert_eq!(check(&[]).unwrap().keepalive, None);
    assert_eq!(
        check(&["--keepalive", "15"]).unwrap().keepalive,
        Some(Duration::from_secs(15))
    );
    assert!(check(&["--keepalive", "0"]).is_err());
    assert!(check(&["--keepalive", "900"]).is_ok());
    assert!(check(&["--keepalive", "901"]).is_err());
    let err = check(&["--keepalive", "40", "--peer-timeout", "60"]).unwrap_err();
    assert!(err.to_string().contains("half of --peer-timeout"), "{err}");
    let s = check(&["--keepalive", "20", "--peer-timeout", "60"]).unwrap();
    let config = s.node_config(
        Vec::new(),
        Vec::new(),
        crate::sys::udp::Families::of(&s.listen),
    );
    assert_eq!(config.keepalive, Some(Duration::from_secs(20)));
}

#[test]
fn the_kernel_path_is_automatic_by_default_and_clear_mode_only() {
    use crate::cli::KernelPathMode::{Auto, Off, On};
    assert_eq!(check(&[]).unwrap().kernel_path, Auto);
    assert_eq!(check(&["--kernel-path"]).unwrap().kernel_path, On);
    assert_eq!(check(&["--no-kernel-path"]).unwrap().kernel_path, Off);
    let err = args(&["--kernel-path", "--no-kernel-path"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    // The sealed modes have none, and need not say so.
    assert_eq!(check(&["--key-file", "/k"]).unwrap().kernel_path, Off);
    assert_eq!(
        check(&["--private-key", "/k", "--trusted", "/t"])
            .unwrap()
            .kernel_path,
        Off
    );
    for sealed in [
        &["--key-file", "/k"][..],
        &["--private-key", "/k", "--trusted", "/t"][..],
    ] {
        let mut list = vec!["--kernel-path"];
        list.extend_from_slice(sealed);
        let err = usage_error(&list);
        assert!(
            err.contains("--kernel-path carries clear frames only"),
            "{list:?}: {err}"
        );
    }
}

#[test]
fn threads_default_to_one_are_bounded_and_work_in_every_mode() {
    assert_eq!(check(&[]).unwrap().threads, 1);
    assert_eq!(check(&["--threads", "2"]).unwrap().threads, 2);
    assert_eq!(check(&["--threads", "16"]).unwrap().threads, 16);
    for bad in ["0", "17"] {
        let err = usage_error(&["--threads", bad]);
        assert_eq!(
            err,
            format!("invalid --threads {bad}: must be between 1 and 16")
        );
    }
    assert!(args(&["--threads", "-1"]).is_err());
    for sealed in [
        &["--key-file", "/k"][..],
        &["--private-key", "/k", "--trusted", "/t"][..],
    ] {
        let mut list = vec!["--threads", "4"];
        list.extend_from_slice(sealed);
        assert_eq!(check(&list).unwrap().threads, 4, "{list:?}");
    }
}

#[test]
fn an_address_the_resolver_would_read_the_old_way_is_refused_not_resolved() {
    for bad in [
        "010.0.0.1",
        "3232235777",
        "198.18.1",
        "0x7f.1",
        "0x7f000001",
        "1.2.3.0x4",
        "0X1",
        "198.18.0.256",
        "1.2.3.4.",
    ] {
        let text = usage_error(&["-c", &format!("{bad}:3210")]);
        assert!(text.contains("not an IPv4 address"), "{bad}: {text}");
        let text = usage_error(&["-l", &format!("{bad}:3210")]);
        assert!(text.contains("not an IPv4 address"), "{bad}: {text}");
    }
    // Names are still names, digits and all.
    for good in ["peer1.example", "198-18-0-1.example", "host42", "a.b"] {
        assert!(check(&["-c", &format!("{good}:3210")]).is_ok(), "{good}");
    }
}

#[test]
fn the_sealed_modes_options_without_a_key_are_named_as_unused() {
    let s = check(&["--relay-rate", "10", "--no-aegis", "--rekey-after", "60"]).unwrap();
    assert_eq!(s.unused, ["--no-aegis", "--relay-rate", "--rekey-after"]);
    let s = check(&["--no-relay", "--key-file", "/k", "--rekey-after", "60"]).unwrap();
    assert_eq!(s.unused, ["--rekey-after"]);
    assert!(check(&[]).unwrap().unused.is_empty());
    // The stats file's options without one.
    let s = check(&["--stats-interval", "5", "--stats-format", "prometheus"]).unwrap();
    assert_eq!(s.unused, ["--stats-interval", "--stats-format"]);
    let s = check(&["--stats-file", "/run/s", "--stats-format", "prometheus"]).unwrap();
    assert!(s.unused.is_empty(), "{:?}", s.unused);
}
