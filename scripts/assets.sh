#!/usr/bin/env bash
# The generated files the Debian package ships, kept in dist/ and checked in:
#
#   dist/ethcloud.1                  the man page: pandoc over ethcloud.md (scripts/man.sh)
#   dist/completions/ethcloud.bash   shell completions: `ethcloud --completions SHELL`
#   dist/completions/_ethcloud       (zsh)
#   dist/completions/ethcloud.fish
#
# Usage: scripts/assets.sh           regenerate them from ethcloud.md and the CLI; commit dist/
#        scripts/assets.sh --check   fail if any is stale (run by scripts/test.sh and deb.sh)
#
# Why checked in, and not made by build.rs: `cargo deb` takes its assets from fixed paths,
# while a build script may write only into its OUT_DIR (a hashed directory cargo-deb cannot
# name); the completions come from the clap definitions in src/os/cli, which build.rs cannot
# compile without building the crate a second time; and the man page needs pandoc, which a
# packager should not need for `cargo deb`. Checked-in files make `cargo deb` work from a clean
# checkout with nothing but cargo-deb, and --check keeps them from going stale.
#
# The check compares the man page as rendered (man -l, 80 columns), not byte for byte, so
# that another pandoc version, which writes the same page with other roff markup, does not
# fail it; the completions are compared byte for byte (clap_complete is pinned by Cargo.lock).
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    *) echo "usage: scripts/assets.sh [--check]" >&2; exit 2 ;;
esac

cargo build --release --locked --quiet --bin ethcloud
bin=target/release/ethcloud

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
mkdir -p "$fresh/completions"
bash scripts/man.sh "$fresh/ethcloud.1" >/dev/null
"$bin" --completions bash >"$fresh/completions/ethcloud.bash"
"$bin" --completions zsh >"$fresh/completions/_ethcloud"
"$bin" --completions fish >"$fresh/completions/ethcloud.fish"
files=(ethcloud.1 completions/ethcloud.bash completions/_ethcloud completions/ethcloud.fish)

if [ "$check" -eq 0 ]; then
    mkdir -p dist/completions
    for f in "${files[@]}"; do cp "$fresh/$f" "dist/$f"; done
    echo "assets.sh: wrote ${files[*]/#/dist/}"
    exit 0
fi

render() { MANWIDTH=80 man -l "$1" 2>/dev/null; }
stale=()
for f in "${files[@]}"; do
    if [ ! -f "dist/$f" ]; then
        stale+=("dist/$f (missing)")
    elif [ "$f" = ethcloud.1 ]; then
        diff -u <(render "dist/$f") <(render "$fresh/$f") >&2 || stale+=("dist/$f (from ethcloud.md)")
    else
        diff -u "dist/$f" "$fresh/$f" >&2 || stale+=("dist/$f (from ethcloud --completions)")
    fi
done
if [ "${#stale[@]}" -gt 0 ]; then
    printf 'assets.sh: stale: %s\n' "${stale[@]}" >&2
    echo "assets.sh: run scripts/assets.sh and commit dist/" >&2
    exit 1
fi
echo "assets.sh: dist/ethcloud.1 and dist/completions/ match ethcloud.md and the CLI"
