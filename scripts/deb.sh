#!/usr/bin/env bash
# Builds the Debian package target/debian/ethcloud_*.deb and checks it: the release binary,
# the man page, the systemd units (checked with systemd-analyze verify against the packaged
# binary), an example config and the shell completions.
# `cargo deb` alone builds the same package (the man page and completions are checked in, in
# dist/); this script also checks that they are current (scripts/assets.sh --check) and checks
# the result. Needs cargo-deb (cargo install --locked --version 3.8.0 cargo-deb), pandoc and man (for the check),
# systemd (for systemd-analyze) and dpkg-deb. Usage: scripts/deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { printf 'deb.sh: %s\n' "$*" >&2; exit 1; }
command -v cargo-deb >/dev/null || fail "cargo-deb not found: cargo install --locked --version 3.8.0 cargo-deb"
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found: apt-get install systemd"

cargo build --release --locked
# The man page and completions are checked in (dist/); package them only if they are current.
bash scripts/assets.sh --check
# (Captured whole, so that a failing cargo deb shows why instead of ending the script here.)
out="$(cargo deb --no-build --locked 2>&1)" || fail "cargo deb failed: $out"
deb="$(printf '%s\n' "$out" | tail -n 1)"
[ -f "$deb" ] || fail "cargo deb did not report a package: $out"
echo "deb.sh: built $deb"

# Every expected file is in the package.
listing="$(dpkg-deb -c "$deb")"
for path in \
    ./usr/bin/ethcloud \
    ./usr/share/man/man1/ethcloud.1.gz \
    ./usr/lib/systemd/system/ethcloud@.service \
    ./usr/lib/systemd/system/ethcloud.target \
    ./usr/share/doc/ethcloud/examples/example.toml \
    ./usr/share/doc/ethcloud/copyright \
    ./usr/share/bash-completion/completions/ethcloud \
    ./usr/share/zsh/vendor-completions/_ethcloud \
    ./usr/share/fish/vendor_completions.d/ethcloud.fish; do
    grep -qE " ${path//./\\.}\$" <<<"$listing" || fail "$path is missing from $deb:
$listing"
done
echo "deb.sh: dpkg-deb -c lists every expected file"

# The unit's ExecReload runs /bin/kill, from procps: a dependency, not a given.
depends="$(dpkg-deb -f "$deb" Depends)"
case "$depends" in
*procps*) echo "deb.sh: Depends names procps ($depends)" ;;
*) fail "Depends does not name procps, whose /bin/kill the unit's ExecReload runs: $depends" ;;
esac

# The units as packaged, with the packaged binary, next to the host's own units.
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
mkdir -p "$root/lib/systemd"
cp -a /lib/systemd/system "$root/lib/systemd/"
cp "$root"/usr/lib/systemd/system/ethcloud* "$root/lib/systemd/system/"
# ExecReload runs the system's /bin/kill (procps, a dependency of the package).
mkdir -p "$root/bin"
cp /bin/kill "$root/bin/"
# verify exits 0 on unknown keys and the like, so any output at all is a failure.
out="$(systemd-analyze verify --man=no --root="$root" ethcloud@example.service ethcloud.target 2>&1)" ||
    fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
echo "deb.sh: systemd-analyze verify passes for ethcloud@.service and ethcloud.target"
