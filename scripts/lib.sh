# shellcheck shell=bash
# The namespace plumbing shared by the scripts that run real ethcloud daemons (demo.sh,
# bench.sh, scale.sh): checks for root and tools, the release build, network namespaces,
# veths, a bridge, tap set-up, waits with a deadline, and clean-up on every exit (test.sh
# uses need_tools). Sourced, never run, from the repository root:
#
#   cd "$(dirname "$0")/.."
#   . scripts/lib.sh
#
# A script records what it starts in two arrays, so that clean-up undoes exactly that and
# touches nothing else on the machine (other runs, other users' namespaces):
#
#   pids        processes it started in the background (pids+=("$!")): stopped by PID
#   namespaces  namespaces it created (add_ns adds them): deleted by name
#
# on_exit FUNCTION installs the traps: FUNCTION runs once on any exit (success, failure, or
# ctrl-C/SIGTERM, which exit 130) and calls stop_pids and delete_namespaces, with whatever the
# script has to do in between (show logs, put sysctls back).

lib_name="${0##*/}"
# Debian keeps sysctl, nft and conntrack in /usr/sbin, which a user's PATH carried through
# sudo (as the README shows for Rust installed per user) lacks: the tests run them too.
for lib_dir in /usr/local/sbin /usr/sbin /sbin; do
    case ":$PATH:" in *":$lib_dir:"*) ;; *) PATH="$PATH:$lib_dir" ;; esac
done
export PATH
pids=()
namespaces=()
lib_cleanup=""
# The overlay MTU every script gives the taps (and bench.sh its VXLAN): 1400 leaves room for
# the underlay's headers on a 1500-byte link.
overlay_mtu=1400

die() {
    echo "$lib_name: FAILED: $*" >&2
    exit 1
}

# need_root [ARGS]: exits unless run as root (namespaces and /dev/net/tun need it).
need_root() {
    [ "$(id -u)" -eq 0 ] || {
        echo "$lib_name: run as root (sudo scripts/$lib_name${1:+ $1})" >&2
        exit 1
    }
}

# need_tools COMMAND=PACKAGES...: installs (apt-get) the Debian packages of every COMMAND that
# is not on PATH, e.g. need_tools ip=iproute2 "cc=gcc libc6-dev".
need_tools() {
    local spec missing=()
    for spec in "$@"; do
        command -v "${spec%%=*}" >/dev/null 2>&1 && continue
        # shellcheck disable=SC2206 # PACKAGES is a space-separated list
        missing+=(${spec#*=})
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "$lib_name: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_cargo_tool COMMAND CRATE VERSION: cargo install --locked CRATE at VERSION (into
# ~/.cargo/bin, once) unless COMMAND is already on PATH or there; puts ~/.cargo/bin on PATH
# (sudo may have dropped it). A version known to build here, not whatever is newest: a
# release that needs a newer Rust than Debian's would break the scripts overnight.
need_cargo_tool() {
    local cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    case ":$PATH:" in *":$cargo_bin:"*) ;; *) PATH="$PATH:$cargo_bin" ;; esac
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "$lib_name: installing $2 $3 (cargo install --locked, once; a few minutes)"
    if ! cargo install --locked --quiet --version "$3" "$2"; then
        # Its lock file may name crates that want a newer Rust than this one (Debian's own
        # 1.85): once more, resolving afresh to versions this Rust builds.
        echo "$lib_name: again without its lock file, with crates this Rust builds"
        CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback \
            cargo install --quiet --version "$3" "$2" || return 1
    fi
    command -v "$1" >/dev/null 2>&1
}

# build_release [CARGO ARGS]: cargo build --release; sets bin to the ethcloud binary.
build_release() {
    need_cargo
    echo "==> building ethcloud (cargo build --release${1:+ $*})"
    cargo build --release --quiet "$@"
    # shellcheck disable=SC2034 # read by the sourcing script
    bin="$PWD/target/release/ethcloud"
}

# need_cargo: exits with a way out unless cargo is on PATH (sudo leaves out a user's ~/.cargo/bin).
need_cargo() {
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) \
first; if it is installed for your user, pass it through sudo: sudo env \"PATH=\$PATH\" \
\"RUSTUP_HOME=\$HOME/.rustup\" \"CARGO_HOME=\$HOME/.cargo\" scripts/$lib_name"
}

# on_exit FUNCTION: runs FUNCTION once when the script exits, however it exits.
on_exit() {
    lib_cleanup="$1"
    trap lib_exit EXIT
    trap 'echo "$lib_name: interrupted" >&2; exit 130' INT TERM
}
lib_exit() {
    trap - EXIT INT TERM
    "$lib_cleanup"
    give_back_files
}

# give_back_files: run as root (sudo) in a clone another user owns, hands back to that user
# what the run made as root in it (target/, fuzz/'s build and corpus) and in a CARGO_HOME or
# RUSTUP_HOME of theirs passed through sudo (cargo-deb, cargo-fuzz, the crates downloaded),
# so that their own cargo runs afterwards are not refused. Nothing to do in a clone of
# root's (CI's).
give_back_files() {
    local owner dir
    for dir in target fuzz/target fuzz/corpus fuzz/artifacts "${CARGO_HOME:-}" "${RUSTUP_HOME:-}"; do
        if [ -z "$dir" ] || [ ! -d "$dir" ]; then continue; fi
        case "$dir" in
        /*) owner="$(stat -c %u:%g "$dir")" ;; # a home of its own: its owner's
        *) owner="$(stat -c %u:%g .)" ;;
        esac
        [ "${owner%%:*}" != 0 ] || continue
        # (-execdir: each chown names a file in the directory it runs in, so a directory on
        # the way swapped for a symlink meanwhile cannot send it elsewhere.)
        find "$dir" -user 0 -execdir chown -h "$owner" {} + 2>/dev/null || true
    done
}

# stop_pids [SECONDS]: SIGTERM to every process in pids, SIGKILL to those still alive after
# SECONDS (default 3), then reaps them.
stop_pids() {
    local tries=$((${1:-3} * 10)) pid alive
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq "$tries"); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}

# delete_namespaces: deletes every namespace in namespaces and says what clean-up did.
delete_namespaces() {
    local ns
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    echo "==> cleaned up: stopped ${#pids[@]} processes, deleted ${#namespaces[@]} namespaces"
}

# show_logs DIR [LINES [FILES]]: prints DIR/*.log (whole, or the last LINES lines of the first
# FILES of them), for a run that failed.
show_logs() {
    local dir="$1" lines="${2:-}" files="${3:-1000}" shown=0 log
    for log in "$dir"/*.log; do
        [ -e "$log" ] || continue
        [ "$shown" -lt "$files" ] || break
        if [ -z "$lines" ]; then
            echo "----- $(basename "$log") -----"
            cat "$log"
        else
            echo "----- last lines of $(basename "$log") -----"
            tail -n "$lines" "$log"
        fi
        shown=$((shown + 1))
    done
}

# wait_for [--pid PID] SECONDS COMMAND...: runs COMMAND (quietly) every 0.1 s until it
# succeeds. Returns 1 if it has not within SECONDS, and 2 at once if PID has exited.
wait_for() {
    local pid=""
    if [ "$1" = --pid ]; then
        pid="$2"
        shift 2
    fi
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || return 2
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# wait_or_die SECONDS WHAT COMMAND...: wait_for, and die "WHAT (not within SECONDS s)" if not.
wait_or_die() {
    local seconds="$1" what="$2"
    shift 2
    wait_for "$seconds" "$@" || die "$what (not within ${seconds}s)"
}

# add_ns NAME: creates namespace NAME (recorded for clean-up) with its loopback up.
add_ns() {
    # Recorded first: an interrupt during the add still finds it (deleting one that was not
    # made fails quietly).
    namespaces+=("$1")
    ip netns add "$1"
    ip -n "$1" link set lo up
}

# add_bridge NS: creates namespace NS holding bridge br0, the underlay's switch.
add_bridge() {
    add_ns "$1"
    ip -n "$1" link add br0 type bridge
    ip -n "$1" link set br0 up
}

# bridge_port SWITCH NS PORT ADDRESS/PREFIX: creates namespace NS whose eth0 (ADDRESS) is a
# veth plugged into br0 of namespace SWITCH as PORT.
bridge_port() {
    local switch="$1" ns="$2" port="$3" address="$4"
    add_ns "$ns"
    ip -n "$ns" link add eth0 type veth peer name "$port" netns "$switch"
    ip -n "$switch" link set "$port" master br0 up
    ip -n "$ns" addr add "$address" dev eth0
    ip -n "$ns" link set eth0 up
}

# veth_pair NS_A ADDRESS_A NS_B ADDRESS_B: creates both namespaces, joined by one veth (eth0
# on each side) with the given ADDRESS/PREFIX.
veth_pair() {
    add_ns "$1"
    add_ns "$3"
    ip -n "$1" link add eth0 type veth peer name eth0 netns "$3"
    ip -n "$1" addr add "$2" dev eth0
    ip -n "$3" addr add "$4" dev eth0
    ip -n "$1" link set eth0 up
    ip -n "$3" link set eth0 up
}

# tap_up SECONDS NS DEVICE ADDRESS/PREFIX [PID]: waits (at most SECONDS; not after PID, the
# daemon making it, has exited) until tap DEVICE exists in NS, then brings it up with the
# overlay MTU and ADDRESS. Returns non-zero if the tap never came.
tap_up() {
    local seconds="$1" ns="$2" dev="$3" address="$4" pid="${5:-}"
    wait_for ${pid:+--pid "$pid"} "$seconds" ip -n "$ns" link show dev "$dev" || return
    ip -n "$ns" link set "$dev" mtu "$overlay_mtu" up
    ip -n "$ns" addr add "$address" dev "$dev"
}
