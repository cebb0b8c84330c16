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

use crate::identity::keys::is_unshowable;

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

/// Reports a panic in one line on standard error, `prefix` before it (`<3>` for the journal,
/// so `journalctl -p err` shows it), instead of the standard library's two lines, which the
/// journal filed at info. Where `RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` asks for one (as
/// `std::backtrace::Backtrace::capture` reads them), the backtrace follows, each line with
/// the same prefix. The release build aborts after the hook (`panic = "abort"`): under the
/// unit, systemd restarts it.
pub fn install_panic_hook(prefix: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let where_ = info.location().map(|l| (l.file(), l.line(), l.column()));
        let line = panic_line(prefix, thread.name(), where_, message);
        let mut err = std::io::stderr().lock();
        // Nothing to be done about a standard error that is closed or full.
        let _ = err.write_all(line.as_bytes());
        let trace = std::backtrace::Backtrace::capture();
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            for line in trace.to_string().lines() {
                let _ = writeln!(err, "{prefix}{line}");
            }
        }
    }));
}

/// The line [`install_panic_hook`] writes: the thread, the place in the source (file, line,
/// column) and the message, if it has them.
fn panic_line(
    prefix: &str,
    thread: Option<&str>,
    location: Option<(&str, u32, u32)>,
    message: Option<&str>,
) -> String {
    let thread = thread.unwrap_or("<unnamed>");
    let at = location.map_or_else(
        || "an unknown place".to_owned(),
        |(file, line, column)| format!("{file}:{line}:{column}"),
    );
    // (One line: a newline becomes " / ", any other character that must not reach a log
    // line or a terminal as it is, such as a carriage return or ESC, becomes '?'.)
    let message: String = message
        .unwrap_or("(no message)")
        .replace('\n', " / ")
        .chars()
        .map(|c| if is_unshowable(c) { '?' } else { c })
        .collect();
    format!(
        "{prefix}ethcloud: internal error (a bug; please report it): thread '{thread}' \
         panicked at {at}: {message}\n"
    )
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
    fn a_panic_line_names_thread_place_and_message_in_one_line() {
        assert_eq!(
            panic_line(
                "<3>",
                Some("lane 1"),
                Some(("src/x.rs", 7, 9)),
                Some("a\nb")
            ),
            "<3>ethcloud: internal error (a bug; please report it): thread 'lane 1' panicked \
             at src/x.rs:7:9: a / b\n"
        );
        // Nothing that drives a terminal or breaks the line gets through.
        assert_eq!(
            panic_line("", None, None, Some("a\rb\x1b[2J\u{202e}c")),
            "ethcloud: internal error (a bug; please report it): thread '<unnamed>' panicked \
             at an unknown place: a?b?[2J?c\n"
        );
        assert_eq!(
            panic_line("", None, None, None),
            "ethcloud: internal error (a bug; please report it): thread '<unnamed>' panicked \
             at an unknown place: (no message)\n"
        );
    }

    /// The hook itself, in a child process (this test run again, told to panic), whose
    /// standard error is a file that `JOURNAL_STREAM` names, as under the unit.
    #[test]
    fn a_panic_reaches_the_journal_as_one_error_line() {
        const CHILD: &str = "ETHCLOUD_TEST_PANIC_CHILD";
        if std::env::var_os(CHILD).is_some() {
            install_panic_hook(error_prefix());
            let n = 7;
            panic!("boom {n}");
        }
        let dir = std::env::temp_dir().join(format!("ethcloud-panic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stderr");
        let file = std::fs::File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "os::logging::tests::a_panic_reaches_the_journal_as_one_error_line",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .env_remove("RUST_BACKTRACE")
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!status.success(), "the child did not panic: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("boom")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].starts_with(
                "<3>ethcloud: internal error (a bug; please report it): thread \
                 'os::logging::tests::a_panic_reaches_the_journal_as_one_error_line' \
                 panicked at src/os/logging.rs:"
            ),
            "{text}"
        );
        assert!(lines[0].ends_with(": boom 7"), "{text}");
        assert!(
            !text.contains("note: run with"),
            "the standard hook ran too: {text}"
        );
    }

    /// With a backtrace asked for, every line of it carries the prefix too (the journal would
    /// file it at info otherwise).
    #[test]
    fn a_backtrace_follows_with_the_same_prefix() {
        const CHILD: &str = "ETHCLOUD_TEST_PANIC_CHILD_TRACE";
        if std::env::var_os(CHILD).is_some() {
            install_panic_hook("<3>");
            panic!("traced");
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "os::logging::tests::a_backtrace_follows_with_the_same_prefix",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUST_LIB_BACKTRACE")
            .stdout(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        let from = text.find("<3>ethcloud: internal error").expect(&text);
        let lines: Vec<&str> = text[from..].lines().collect();
        assert!(lines.len() > 3, "no backtrace: {text}");
        assert!(lines.iter().all(|l| l.starts_with("<3>")), "{text}");
    }

    #[test]
    fn the_binary_installs_the_hook_before_anything_else() {
        let main = include_str!("../main.rs");
        let (_, body) = main.split_once("fn main() -> ExitCode {").unwrap();
        let first = body
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("//"))
            .unwrap();
        assert!(
            first.starts_with("ethcloud::os::logging::install_panic_hook("),
            "{first}"
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
