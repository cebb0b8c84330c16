#!/usr/bin/env bash
# Builds the man page ethcloud.1 from ethcloud.md with pandoc (Debian package "pandoc").
# Usage: scripts/man.sh [OUTPUT]   (default: ethcloud.1 in the repository root)
# View it with: man -l ethcloud.1
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-ethcloud.1}"
if ! command -v pandoc >/dev/null; then
    echo "man.sh: pandoc not found; install it with: apt-get install pandoc" >&2
    exit 1
fi
pandoc --standalone --from markdown --to man ethcloud.md --output "$out"
# Check that it renders: groff must not complain, and the NAME section must be there.
warnings="$(MANWIDTH=80 man --warnings -l "$out" 2>&1 >/dev/null || true)"
if [ -n "$warnings" ]; then
    echo "man.sh: $out renders with warnings:" >&2
    echo "$warnings" >&2
    exit 1
fi
MANWIDTH=80 man -l "$out" 2>/dev/null | grep -q '^NAME' || { echo "man.sh: $out has no NAME section" >&2; exit 1; }
echo "man.sh: wrote $out"
