//! The pure core: everything an ethcloud node decides, with no I/O of its own.
//!
//! Wire formats (`wire`), the MAC table (`switch`), the peer table and its timers (`peers`),
//! the node's behaviour (`node`), a frame's way out of the device (`outbound`, shared by the
//! node and the `--threads` lanes, `lane`), relay routes (`relay`), sealing and replay windows
//! (`crypto`), per-node keys and their sessions (`identity`), segmentation and coalescing
//! (`offload`), and the status text (`status`, `show`), with the traits the OS edges implement (`io`), the injected clock
//! (`time`), counters (`stats`), rate limits (`limit`) and packet buffers (`buf`).
//!
//! It must not touch the OS: no `libc`, no sockets, no files, no real clock, no threads. The
//! build checks it: this tree compiles without the `os` feature, which alone brings libc, clap
//! and the config parser (`cargo clippy --lib --no-default-features` in `scripts/test.sh`).
//! The simulator in `tests/` and the benchmarks drive it with in-memory sockets and devices.

pub mod buf;
pub mod crypto;
pub mod identity;
pub mod io;
pub mod lane;
pub mod limit;
pub mod node;
pub mod offload;
pub mod outbound;
pub mod peers;
pub mod relay;
pub mod show;
pub mod stats;
pub mod status;
pub mod switch;
pub mod time;
pub mod wire;
