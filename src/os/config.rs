//! The configuration file (`--config FILE`): TOML, one key per long option, e.g.
//!
//! ```toml
//! device = "vpn0"
//! listen = "[::]:3210"
//! token = 7
//! connect = ["vpn.example.org:3210", "198.18.0.1:3210"]
//! peer-timeout = 1800
//! ifup = "ip addr add 198.19.0.1/24 dev $IFNAME"
//! ```
//!
//! Owns reading the file, the TOML syntax, the set of keys and their types, and turning any
//! TOML or type error into one line that names the key and the line. It does not check values
//! (a token that is too large, a listen address without a port): `cli` checks file and command
//! line with the same rules, and reports a bad file value with its key and line from
//! [`ConfigFile::line_of`]. It does not merge either: `cli` does, the command line winning.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::de::DeTable;

use crate::error::Error;
use crate::status::StatsFormat;

/// Where operators keep one file per network; the systemd unit `ethcloud@NAME` reads
/// `/etc/ethcloud/NAME.toml`.
pub const CONFIG_DIR: &str = "/etc/ethcloud";

/// Every key the file may hold: the long options, less `--config`, `--completions`, `--help`
/// and `--version`.
pub const KEYS: [&str; 33] = [
    "device",
    "listen",
    "token",
    "connect",
    "peer-timeout",
    "mac-timeout",
    "verbose",
    "quiet",
    "max-peers",
    "max-macs",
    "max-macs-per-peer",
    "broadcast-limit",
    "user",
    "group",
    "ifup",
    "ifdown",
    "mtu",
    "stats-file",
    "stats-interval",
    "stats-format",
    "no-offload",
    "key-file",
    "busy-poll",
    "threads",
    "private-key",
    "trusted",
    "rekey-after",
    "keepalive",
    "control-socket",
    "no-relay",
    "relay-rate",
    "no-aegis",
    "kernel-path",
];

/// The values a config file sets; `None` where it says nothing. Types only: the values are
/// checked by `cli`, exactly like the options of the same name.
#[derive(Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileValues {
    /// `--device`.
    pub device: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--token`: a number, or a string of digits.
    #[serde(default, deserialize_with = "number_or_string")]
    pub token: Option<String>,
    /// `--connect`, as an array of `host:port` strings.
    pub connect: Option<Vec<String>>,
    /// `--peer-timeout`, seconds.
    pub peer_timeout: Option<u64>,
    /// `--mac-timeout`, seconds.
    pub mac_timeout: Option<u64>,
    /// `--verbose`.
    pub verbose: Option<bool>,
    /// `--quiet`.
    pub quiet: Option<bool>,
    /// `--max-peers`.
    pub max_peers: Option<usize>,
    /// `--max-macs`.
    pub max_macs: Option<usize>,
    /// `--max-macs-per-peer`.
    pub max_macs_per_peer: Option<usize>,
    /// `--broadcast-limit`, frames per second.
    pub broadcast_limit: Option<u64>,
    /// `--user` (a name, or a number as a string or an integer).
    #[serde(default, deserialize_with = "number_or_string")]
    pub user: Option<String>,
    /// `--group` (as `user`).
    #[serde(default, deserialize_with = "number_or_string")]
    pub group: Option<String>,
    /// `--ifup`.
    pub ifup: Option<String>,
    /// `--ifdown`.
    pub ifdown: Option<String>,
    /// `--mtu`.
    pub mtu: Option<u32>,
    /// `--stats-file`.
    pub stats_file: Option<PathBuf>,
    /// `--stats-interval`, seconds.
    pub stats_interval: Option<u64>,
    /// `--stats-format`.
    pub stats_format: Option<StatsFormat>,
    /// `--no-offload`.
    pub no_offload: Option<bool>,
    /// `--key-file`.
    pub key_file: Option<std::path::PathBuf>,
    /// `--busy-poll`, microseconds.
    pub busy_poll: Option<u64>,
    /// `--threads`.
    pub threads: Option<u64>,
    /// `--private-key`.
    pub private_key: Option<PathBuf>,
    /// `--trusted`: one path, or an array of paths.
    #[serde(default, deserialize_with = "path_or_paths")]
    pub trusted: Option<Vec<PathBuf>>,
    /// `--rekey-after`, seconds.
    pub rekey_after: Option<u64>,
    /// `--keepalive`, seconds.
    pub keepalive: Option<u64>,
    /// `--control-socket`.
    pub control_socket: Option<PathBuf>,
    /// `--no-relay`.
    pub no_relay: Option<bool>,
    /// `--no-aegis`.
    pub no_aegis: Option<bool>,
    /// `--kernel-path`.
    pub kernel_path: Option<bool>,
    /// `--relay-rate`, Mbit/s.
    pub relay_rate: Option<u64>,
}

/// A parsed config file: its values and the line of each key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The path it was read from, for messages.
    pub path: PathBuf,
    /// The values.
    pub values: FileValues,
    /// The 1-based line of each key present.
    lines: BTreeMap<String, usize>,
}

/// The longest configuration file [`ConfigFile::read`] accepts, in bytes.
pub const MAX_CONFIG_LEN: u64 = 1 << 20;

impl ConfigFile {
    /// Reads and parses `path`.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigRead`] if the file cannot be read or is longer than [`MAX_CONFIG_LEN`]
    /// (a path to something endless must not grow memory); [`Error::ConfigMode`] if a user
    /// other than root and the one ethcloud started as owns it, or one may write to it (its
    /// group, unless root's; anyone); [`Error::ConfigParse`] if it is not
    /// UTF-8; else as [`ConfigFile::parse`].
    pub fn read(path: &Path) -> Result<ConfigFile, Error> {
        use std::io::Read;
        let mut bytes = Vec::new();
        let mut mode_refused = None;
        crate::keyfiles::open_for_reading(path)
            .and_then(|file| {
                let meta = file.metadata()?;
                if let Some(reason) = writable_by_others(&meta) {
                    mode_refused = Some(reason);
                    return Ok((true, 0));
                }
                let regular = meta.is_file();
                let len = file.take(MAX_CONFIG_LEN + 1).read_to_end(&mut bytes)?;
                Ok((regular, len))
            })
            .and_then(|(regular, len)| {
                if len as u64 > MAX_CONFIG_LEN {
                    Err(std::io::Error::other(format!(
                        "longer than {MAX_CONFIG_LEN} bytes"
                    )))
                } else if len == 0 && !regular {
                    // A FIFO whose writer is not there (yet): starting on the defaults
                    // instead of the settings meant for us would be worse than stopping.
                    Err(std::io::Error::other(
                        "not a regular file, and nothing to read from it",
                    ))
                } else {
                    Ok(())
                }
            })
            .map_err(|source| Error::ConfigRead {
                path: path.to_owned(),
                source,
            })?;
        if let Some(reason) = mode_refused {
            return Err(Error::ConfigMode {
                path: path.to_owned(),
                reason,
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let line = e
                .as_bytes()
                .get(..at)
                .map_or(1, |b| b.iter().filter(|&&c| c == b'\n').count() + 1);
            Error::ConfigParse {
                path: path.to_owned(),
                line,
                key: None,
                message: "not UTF-8 text".to_owned(),
            }
        })?;
        ConfigFile::parse(path, &text)
    }

    /// Parses `text`; `path` is only used in messages.
    ///
    /// # Errors
    ///
    /// [`Error::ConfigParse`] with the line (and the key, when there is one) for invalid TOML,
    /// a key that is not in [`KEYS`], or a value of the wrong type.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, Error> {
        let parse_error = |line, key: Option<&str>, message: String| Error::ConfigParse {
            path: path.to_owned(),
            line,
            key: key.map(str::to_owned),
            message,
        };
        // First the syntax alone, which keeps the position of every key and value.
        let table = DeTable::parse(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_at(text, span.start));
            let key = text
                .lines()
                .nth(line.saturating_sub(1))
                .and_then(key_of_line);
            parse_error(line, key, one_line(e.message()))
        })?;
        let mut entries: Vec<(String, usize, std::ops::Range<usize>)> = Vec::new();
        for (key, value) in table.get_ref().iter() {
            let name: &str = key.get_ref();
            let line = line_at(text, key.span().start);
            if !KEYS.contains(&name) {
                return Err(parse_error(
                    line,
                    Some(&shown_key(name)),
                    format!(
                        "unknown key (the keys are the long options: {})",
                        KEYS.join(", ")
                    ),
                ));
            }
            entries.push((name.to_owned(), line, key.span().start..value.span().end));
        }
        // Then the types; a type error's position tells which key it is about.
        let values: FileValues = toml::from_str(text).map_err(|e| {
            let at = e.span().map_or(0, |span| span.start);
            let key = entries.iter().find(|(_, _, span)| span.contains(&at));
            match key {
                Some((name, line, _)) => parse_error(*line, Some(name), one_line(e.message())),
                None => parse_error(line_at(text, at), None, one_line(e.message())),
            }
        })?;
        let lines = entries
            .into_iter()
            .map(|(name, line, _)| (name, line))
            .collect();
        Ok(ConfigFile {
            path: path.to_owned(),
            values,
            lines,
        })
    }

    /// The 1-based line of `key`, if the file has it.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.lines.get(key).copied()
    }
}

/// Why a configuration file that others may write to is refused, if it is: it names commands
/// that run as root (`ifup`, `ifdown`) and the keys to trust. Writable by its group is
/// refused too, unless the group is root's.
fn writable_by_others(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if let Some(reason) =
        crate::sys::files::foreign_owner(meta, "make the daemon run commands as root")
    {
        return Some(reason);
    }
    let mode = meta.permissions().mode();
    let who = if mode & 0o002 != 0 {
        "any user"
    } else if mode & 0o020 != 0 && meta.gid() != 0 {
        "its group"
    } else {
        return None;
    };
    Some(format!(
        "writable by {who} (mode {:04o}), who could make the daemon run commands as root: run \
         `chmod go-w` on it",
        mode & 0o7777
    ))
}

/// The 1-based line holding byte `offset` of `text`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    let before = text.get(..end).unwrap_or(text);
    before.bytes().filter(|b| *b == b'\n').count() + 1
}

/// The key a `key = value` line assigns to, if the line looks like one.
fn key_of_line(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    is_bare_key(key).then_some(key)
}

/// Whether `key` is written as TOML's bare keys are: ASCII letters, digits, `-` and `_`.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A key from the file as an error message shows it: as written if it is a bare key, else
/// quoted with its special characters escaped (a quoted key may hold a line break, and the
/// message must stay one line).
fn shown_key(key: &str) -> String {
    if is_bare_key(key) {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Folds a possibly multi-line message into one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `token = 7` and `token = "7"` both work (and `user = 1000`, `user = "1000"`); the digits
/// are checked by `cli`.
fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct TokenVisitor;
    impl Visitor<'_> for TokenVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or a string")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
    }
    d.deserialize_any(TokenVisitor)
}

/// `trusted = "/etc/ethcloud/trusted"` and `trusted = ["a", "b"]` both work.
fn path_or_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<PathBuf>>, D::Error> {
    struct PathsVisitor;
    impl<'de> Visitor<'de> for PathsVisitor {
        type Value = Option<Vec<PathBuf>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a path or an array of paths")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![PathBuf::from(v)]))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut paths = Vec::new();
            while let Some(path) = seq.next_element::<PathBuf>()? {
                paths.push(path);
            }
            Ok(Some(paths))
        }
    }
    d.deserialize_any(PathsVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, Error> {
        ConfigFile::parse(Path::new("/etc/ethcloud/test.toml"), text)
    }

    fn parse_error(text: &str) -> String {
        let err = parse(text).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        let line = err.to_string();
        assert!(!line.contains('\n'), "{line}");
        line
    }

    #[test]
    fn a_config_file_past_the_bound_is_refused_unread() {
        let dir = std::env::temp_dir().join(format!("ethcloud-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let huge = dir.join("huge.toml");
        let mut text = String::from("token = 7\n");
        text.push_str(&"#".repeat(usize::try_from(MAX_CONFIG_LEN).unwrap()));
        std::fs::write(&huge, text).unwrap();
        let err = ConfigFile::read(&huge).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        let small = dir.join("small.toml");
        std::fs::write(&small, "token = 7\n").unwrap();
        assert!(ConfigFile::read(&small).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_key_is_accepted_with_its_type() {
        let text = r#"
device = "vpn0"
listen = "[::]:3210"
token = 7
connect = ["198.18.0.1:3210", "peer.example:3210"]
peer-timeout = 60
mac-timeout = 30
verbose = true
quiet = false
max-peers = 10
max-macs = 100
max-macs-per-peer = 20
broadcast-limit = 50
user = "nobody"
group = "nogroup"
ifup = "ip addr add 198.19.0.1/24 dev $IFNAME"
ifdown = "true"
mtu = 1400
stats-file = "/run/ethcloud/vpn0/stats"
stats-interval = 5
stats-format = "prometheus"
no-offload = true
key-file = "/etc/ethcloud/vpn0.key"
busy-poll = 0
private-key = "/etc/ethcloud/vpn0.private"
trusted = ["/etc/ethcloud/vpn0.trusted", "/etc/ethcloud/vpn0.trusted.d"]
control-socket = "/run/ethcloud/vpn0.sock"
rekey-after = 60
keepalive = 20
no-relay = true
relay-rate = 10
no-aegis = true
threads = 2
kernel-path = true
"#;
        let file = parse(text).unwrap();
        let v = &file.values;
        assert_eq!(v.device.as_deref(), Some("vpn0"));
        assert_eq!(v.token.as_deref(), Some("7"));
        assert_eq!(v.connect.as_ref().map(Vec::len), Some(2));
        assert_eq!(v.max_macs_per_peer, Some(20));
        assert_eq!(v.stats_format, Some(StatsFormat::Prometheus));
        assert_eq!(v.mtu, Some(1400));
        for key in KEYS {
            assert!(
                file.line_of(key).is_some(),
                "{key} is in KEYS but not tested"
            );
        }
        assert_eq!(file.line_of("device"), Some(2));
        assert_eq!(file.line_of("stats-format"), Some(21));
        assert_eq!(v.no_offload, Some(true));
        assert_eq!((v.no_relay, v.relay_rate), (Some(true), Some(10)));
        assert_eq!(v.no_aegis, Some(true));
        assert_eq!(v.threads, Some(2));
        assert_eq!(v.kernel_path, Some(true));
        assert_eq!(
            v.key_file.as_deref(),
            Some(std::path::Path::new("/etc/ethcloud/vpn0.key"))
        );
        assert_eq!(
            v.private_key.as_deref(),
            Some(Path::new("/etc/ethcloud/vpn0.private"))
        );
        assert_eq!(
            v.trusted,
            Some(vec![
                PathBuf::from("/etc/ethcloud/vpn0.trusted"),
                PathBuf::from("/etc/ethcloud/vpn0.trusted.d")
            ])
        );
    }

    #[test]
    fn trusted_is_a_path_or_an_array_of_paths() {
        let file = parse("trusted = \"/etc/ethcloud/trusted.d\"\n").unwrap();
        assert_eq!(
            file.values.trusted,
            Some(vec![PathBuf::from("/etc/ethcloud/trusted.d")])
        );
        let file = parse("trusted = []\n").unwrap();
        assert_eq!(file.values.trusted, Some(Vec::new()));
        let text = parse_error("token = 1\ntrusted = 5\n");
        assert!(text.contains("line 2: key trusted: "), "{text}");
        assert!(text.contains("a path or an array of paths"), "{text}");
        let text = parse_error("trusted = [\"a\", 5]\n");
        assert!(text.contains("line 1: key trusted: "), "{text}");
    }

    #[test]
    fn an_error_at_the_end_of_the_file_names_its_last_line() {
        for (text, line) in [
            ("token = [\n", 1),
            ("token = 7\nmtu = [\n", 2),
            ("token = 7\nmtu = [\n\n\n", 2),
            ("token = \"7", 1),
            ("token =\n", 1),
            ("token = 7\n[\n", 2),
            ("token = 7\nmtu\n", 2),
            ("token = 7\n\"mtu\n", 2),
        ] {
            let err = parse_error(text);
            assert!(err.contains(&format!("line {line}:")), "{text:?}: {err}");
        }
    }

    #[test]
    fn shipped_example_is_valid() {
        let example = include_str!("../../dist/example.toml");
        let file = parse(example).unwrap();
        assert_eq!(file.values.token.as_deref(), Some("7"));
        // The control socket stays in root's directory: the stats file's, the unit's
        // /run/ethcloud/NAME, is the one the example tells to give to `user`.
        let socket = file
            .values
            .control_socket
            .expect("the example sets control-socket");
        assert_eq!(socket.parent(), Some(Path::new("/run/ethcloud")));
        let stats = file.values.stats_file.expect("the example sets stats-file");
        assert_ne!(stats.parent(), socket.parent());
    }

    #[test]
    fn empty_file_sets_nothing() {
        assert_eq!(parse("# nothing\n").unwrap().values, FileValues::default());
    }

    #[test]
    fn a_config_file_others_may_write_or_that_is_not_text_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ethcloud-config-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("vpn0.toml");
        std::fs::write(&file, "token = 7\nifup = \"true\"\n").unwrap();
        let mode = |m: u32| {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(m)).unwrap();
            ConfigFile::read(&file)
        };
        assert!(mode(0o644).is_ok());
        assert!(mode(0o600).is_ok());
        let err = mode(0o646).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        let err = err.to_string();
        assert!(
            err.starts_with(&format!(
                "config file {}: writable by any user (mode 0646)",
                file.display()
            )),
            "{err}"
        );
        assert!(err.contains("chmod go-w"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // Writable by its group: refused unless that is root's group (as here, as root).
        use std::os::unix::fs::MetadataExt;
        let root_group = std::fs::metadata(&file).unwrap().gid() == 0;
        assert_eq!(mode(0o664).is_ok(), root_group);
        // Owned by another user (who could write it whatever its mode): refused, as root.
        if crate::sys::privdrop::current_ids().1 == 0 {
            std::os::unix::fs::chown(&file, Some(1000), None).unwrap();
            let err = mode(0o644).unwrap_err().to_string();
            assert!(err.contains("owned by uid 1000"), "{err}");
            std::os::unix::fs::chown(&file, Some(0), None).unwrap();
        }
        std::fs::write(&file, b"token = 7\n# caf\xe9\n").unwrap();
        let err = mode(0o644).unwrap_err().to_string();
        assert!(err.contains("line 2: not UTF-8 text"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn user_and_group_may_be_numbers() {
        let file = parse("user = 1000\ngroup = \"1000\"\n").unwrap();
        assert_eq!(file.values.user.as_deref(), Some("1000"));
        assert_eq!(file.values.group.as_deref(), Some("1000"));
        let text = parse_error("user = true\n");
        assert!(text.contains("line 1: key user: "), "{text}");
    }

    #[test]
    fn token_may_be_a_string_of_digits() {
        let file = parse("token = \"134\"\n").unwrap();
        assert_eq!(file.values.token.as_deref(), Some("134"));
    }

    #[test]
    fn unknown_key_names_the_key_and_the_line() {
        let text = parse_error("device = \"vpn0\"\n\npeer_timeout = 5\n");
        assert!(
            text.starts_with("config file /etc/ethcloud/test.toml, line 3: key peer_timeout: "),
            "{text}"
        );
        assert!(text.contains("unknown key"), "{text}");
        assert!(text.contains("peer-timeout"), "{text}");
    }

    #[test]
    fn a_quoted_unknown_key_is_shown_escaped_on_one_line() {
        let text = parse_error("token = 1\n\"dev\\nice\" = 2\n");
        assert!(
            text.contains("line 2: key \"dev\\nice\": unknown key"),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn a_table_is_an_unknown_key() {
        let text = parse_error("token = 1\n[network]\ndevice = \"x\"\n");
        assert!(text.contains("line 2: key network: unknown key"), "{text}");
    }

    #[test]
    fn value_of_the_wrong_type_names_the_key_and_the_line() {
        let text = parse_error("device = \"vpn0\"\npeer-timeout = \"soon\"\n");
        assert!(text.contains("line 2: key peer-timeout: "), "{text}");
        assert!(text.contains("invalid type"), "{text}");
        let text = parse_error("mtu = -5\n");
        assert!(text.contains("line 1: key mtu: "), "{text}");
        let text = parse_error("stats-format = \"xml\"\n");
        assert!(text.contains("line 1: key stats-format: "), "{text}");
        assert!(text.contains("prometheus"), "{text}");
    }

    #[test]
    fn wrong_element_in_a_multi_line_array_names_the_array_key() {
        let text = parse_error("token = 1\nconnect = [\n  \"198.18.0.1:1\",\n  5,\n]\n");
        assert!(text.contains("line 2: key connect: "), "{text}");
    }

    #[test]
    fn bad_syntax_names_the_line() {
        let text = parse_error("device = \"vpn0\"\nlisten = \n");
        assert!(
            text.starts_with("config file /etc/ethcloud/test.toml, line 2: key listen: "),
            "{text}"
        );
        let text = parse_error("device = \"vpn0\"\n\"unterminated\n");
        assert!(text.contains("line 2: "), "{text}");
        let text = parse_error("device = \"vpn0\"\ndevice = \"vpn1\"\n");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn missing_file_is_a_config_error() {
        let err = ConfigFile::read(Path::new("/nonexistent/ethcloud.toml")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .starts_with("cannot read config file /nonexistent/ethcloud.toml: "),
            "{err}"
        );
    }
}
