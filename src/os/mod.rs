//! The OS edges: what connects the pure core to a real machine.
//!
//! The tap device, the UDP socket, epoll, signals, timers and the control socket (`sys`, the
//! only `unsafe` code), the loop that reads the real clock and drives the node (`daemon`), the
//! periodic service jobs (`service`), the `--kernel-path` programs and maps (`kpath`),
//! ifup/ifdown hooks (`hook`), the command line and the
//! config file (`cli`, `config`), resolving `--connect` names (`resolve`), key files
//! (`keyfiles`), the logger and the journal's priorities (`logging`), the busy-poll spin's
//! decisions (`spin`) and the start-up errors (`error`).
//! Built only with the `os` feature (the default). Nothing in `crate::core` may use it.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod error;
pub mod hook;
pub mod keyfiles;
pub mod kpath;
pub mod logging;
pub mod resolve;
pub mod service;
pub mod spin;
pub mod sys;
