#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 25 s each), starting from the
# committed corpus in fuzz/corpus/. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# cargo-fuzz needs nightly-only compiler flags (sanitizers, coverage instrumentation); on a
# stable toolchain RUSTC_BOOTSTRAP=1 enables them for this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-25}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
for target in $(cd fuzz && cargo fuzz list); do
    echo "fuzz: $target for ${secs}s"
    # No sanitizer: the fuzzed code is the pure core, safe Rust, where AddressSanitizer has
    # nothing to find that a panic would not show; without it the targets build faster and
    # run more inputs per second.
    (cd fuzz && cargo fuzz run --sanitizer none "$target" -- -max_total_time="$secs" \
        -rss_limit_mb=2048 2>&1 | tail -n 2)
done
echo "fuzz: all targets ran without a crash"
