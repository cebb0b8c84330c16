#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 25 s each), starting from the
# committed corpus in fuzz/corpus/. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
# cargo-fuzz needs nightly-only compiler flags (sanitizers, coverage instrumentation); on a
# stable toolchain RUSTC_BOOTSTRAP=1 enables them for this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-25}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz 0.13.2 (the version scripts/test.sh installs)"
    cargo install --locked --version 0.13.2 cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
# (Listed first: a failing command inside a `for` list would not stop the script, and no
# target at all would pass for a success.)
targets="$(cd fuzz && cargo fuzz list)"
[ -n "$targets" ] || { echo "fuzz: no targets listed" >&2; exit 1; }
log="$(mktemp)"
# New inputs go to a scratch corpus (listed first); the committed one is only read.
scratch="$(mktemp -d)"
trap 'rm -rf "$log" "$scratch"' EXIT
for target in $targets; do
    echo "fuzz: $target for ${secs}s"
    # No sanitizer: the fuzzed code is the pure core, safe Rust, where AddressSanitizer has
    # nothing to find that a panic would not show; without it the targets build faster and
    # run more inputs per second. One input may take at most 10 s (a hang is a failure, not
    # the 20-minute default), and the whole run at most the time asked for plus 10 minutes
    # (the build included).
    mkdir -p "$scratch/$target" "fuzz/corpus/$target"
    status=0
    (cd fuzz && timeout $((secs + 600)) cargo fuzz run --sanitizer none "$target" \
        "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048) >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        if [ "$status" -eq 124 ]; then
            echo "fuzz: $target still running after $((secs + 600)) s, stopped" >&2
        else
            echo "fuzz: $target failed (status $status; a crash's input is under fuzz/artifacts/$target/)" >&2
        fi
        exit 1
    fi
    tail -n 2 "$log"
done
echo "fuzz: all targets ran without a crash"
