//! Where log lines go and how they look: `env_logger` on standard error, with a timestamp and
//! the level in brackets on a terminal or in a file, or, when standard error is the systemd
//! journal's stream (as under the unit in `dist/`), each line prefixed with its syslog
//! priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug) and no timestamp, which the
//! journal adds itself. Without the prefix the journal files every line at info, and
//! `journalctl -p warning` showed nothing.
//!
//! Owns the logger's set-up and the fatal line's prefix ([`error_prefix`]); which lines are
//! logged, and at which level, is each module's.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use log::{Level, LevelFilter};

/// The target of the lines an operator asked for (SIGUSR1's counters and status): logged at
/// info, and shown also under `-q`, which otherwise shows errors only.
pub const ON_REQUEST: &str = "ethcloud::on_request";

/// The syslog priority the journal reads from a `<N>` prefix.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Whether `journal_stream`, the value of `JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd
/// for a unit whose output goes to the journal), names the file with `dev` and `ino`.
pub fn names_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    journal_stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

/// Whether standard error is the journal's stream: `JOURNAL_STREAM` names it (a child that
/// inherited the variable but writes elsewhere, a shell started from the unit, does not
/// count).
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(stream) = stream.to_str() else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| names_stream(stream, m.dev(), m.ino()))
}

/// What goes before `ethcloud: ...`, the line a fatal error ends the process with: `<3>`
/// for the journal, nothing elsewhere.
pub fn error_prefix() -> &'static str {
    if stderr_is_journal() {
        "<3>"
    } else {
        ""
    }
}

/// Installs the logger: `level` (and info for [`ON_REQUEST`] whatever `level` is), or
/// `RUST_LOG` instead when it is set; the journal's format when standard error is the
/// journal's stream.
pub fn init(level: LevelFilter) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level);
    if std::env::var_os("RUST_LOG").is_some() {
        builder.parse_default_env();
    } else {
        builder.filter_module(ON_REQUEST, level.max(LevelFilter::Info));
    }
    if stderr_is_journal() {
        builder.format(write_journal_line);
    }
    builder.init();
}

/// One line for the journal: `<priority>LEVEL target: message`.
pub fn write_journal_line(out: &mut impl Write, record: &log::Record<'_>) -> std::io::Result<()> {
    writeln!(
        out,
        "<{}>{:<5} {}: {}",
        priority(record.level()),
        record.level(),
        record.target(),
        record.args()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_has_its_syslog_priority() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Debug), 7);
        assert_eq!(priority(Level::Trace), 7);
    }

    #[test]
    fn a_journal_line_starts_with_its_priority_and_has_no_timestamp() {
        let mut out = Vec::new();
        write_journal_line(
            &mut out,
            &log::Record::builder()
                .level(Level::Warn)
                .target("ethcloud::core::node::mesh")
                .args(format_args!("peer {} removed", 7))
                .build(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<4>WARN  ethcloud::core::node::mesh: peer 7 removed\n"
        );
    }

    #[test]
    fn journal_stream_must_name_the_very_file() {
        assert!(names_stream("8:123456", 8, 123_456));
        assert!(!names_stream("8:123456", 8, 123_457));
        assert!(!names_stream("9:123456", 8, 123_456));
        for bad in ["", ":", "8", "8:", ":1", "x:1", "8:1:2", "-8:1", " 8:1"] {
            assert!(!names_stream(bad, 8, 1), "{bad:?}");
        }
    }
}
