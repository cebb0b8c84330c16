//! The man page against the code: every config-file key, every counter of the SIGUSR1 line
//! and every drop reason that the code knows is named in the section of `ethcloud.md` that
//! documents it. A key, counter or reason added to the code without a word in the man page
//! fails here.

use ethcloud::config::KEYS;
use ethcloud::stats::{DropReason, Stats};

const MAN_PAGE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ethcloud.md"));

/// The text of the top-level section `# NAME` of the man page, up to the next one.
fn section(name: &str) -> &'static str {
    let heading = format!("\n# {name}\n");
    let Some(start) = MAN_PAGE.find(&heading) else {
        panic!("the man page has no section {name}");
    };
    let body = &MAN_PAGE[start + heading.len()..];
    let end = body.find("\n# ").unwrap_or(body.len());
    &body[..end]
}

/// The names in `names` that `text` does not set in bold (`**name**`).
fn missing<'a>(text: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|name| !text.contains(&format!("**{name}**")))
        .collect()
}

#[test]
fn every_config_key_is_listed_under_configuration_file() {
    let gaps = missing(section("CONFIGURATION FILE"), KEYS);
    assert!(
        gaps.is_empty(),
        "keys missing from CONFIGURATION FILE: {gaps:?}"
    );
}

#[test]
fn every_drop_reason_is_explained_under_logging() {
    let gaps = missing(section("LOGGING"), DropReason::NAMES);
    assert!(
        gaps.is_empty(),
        "drop reasons missing from LOGGING: {gaps:?}"
    );
}

#[test]
fn every_counter_of_the_stats_line_is_named_under_logging() {
    // The node's part of the SIGUSR1 line, with every counter at zero (drops are printed
    // only where non-zero, and are checked above).
    let line = Stats::default().to_string();
    let names: Vec<&str> = line
        .split_whitespace()
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(names.len() > 10, "{line}");
    // The daemon's own counters, which the SIGUSR1 line adds around the node's (the same
    // list that renders them there).
    let extra = ethcloud::status::loop_counters(Default::default());
    let daemon: Vec<&str> = std::iter::once("peers")
        .chain(extra.iter().map(|(name, _, _)| *name))
        .collect();
    assert_eq!(daemon.len(), 14, "{daemon:?}");
    let logging = section("LOGGING");
    let gaps = missing(logging, names.iter().copied().chain(daemon));
    assert!(gaps.is_empty(), "counters missing from LOGGING: {gaps:?}");
}

#[test]
fn every_long_option_is_described_under_options() {
    use clap::CommandFactory;
    let command = ethcloud::cli::Args::command();
    let options = section("OPTIONS");
    let names: Vec<String> = command
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|long| !matches!(*long, "help" | "version"))
        .map(str::to_owned)
        .collect();
    assert!(names.len() > 20, "{names:?}");
    let gaps: Vec<&String> = names
        .iter()
        .filter(|long| !options.contains(&format!("**\\--{long}**")))
        .collect();
    assert!(gaps.is_empty(), "options missing from OPTIONS: {gaps:?}");
}
