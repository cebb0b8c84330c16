#!/usr/bin/env bash
# Demo: three ethcloud nodes in network namespaces, as root: sudo scripts/demo.sh
#
#   underlay 198.18.0.0/24: namespaces <p>n1, <p>n2, <p>n3 on a bridge in <p>sw
#   overlay  198.19.0.0/24: each node's tap ethcloud0
#   connected as a chain: n2 -c n1, n3 -c n2; the nodes find the rest themselves
#
# Builds ethcloud (release), starts the nodes, waits until n1 and n3 are direct peers, pings
# across the overlay, stops the middle node and pings n1 <-> n3 again. Every wait has a
# deadline. Whatever happens (success, failure, ctrl-C), it stops the daemons it started by
# PID and deletes the namespaces it created by name.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root (sudo scripts/demo.sh)" >&2; exit 1; }

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "demo.sh: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "==> building ethcloud (cargo build --release)"
cargo build --release --quiet
bin="$PWD/target/release/ethcloud"

prefix="ecdemo$$"
switch_ns="${prefix}sw"
token=42
logs="$(mktemp -d /tmp/ethcloud-demo.XXXXXX)"
namespaces=()
pids=()
ok=0

cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 30); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$ok" -ne 1 ]; then
        for log in "$logs"/*.log; do
            [ -e "$log" ] || continue
            echo "----- $(basename "$log") -----"
            cat "$log"
        done
    fi
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$logs"
    echo "==> cleaned up: stopped ${#pids[@]} daemons, deleted ${#namespaces[@]} namespaces"
}
trap cleanup EXIT
trap 'echo "demo.sh: interrupted"; exit 130' INT TERM

die() { echo "demo.sh: FAILED: $*" >&2; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it succeeds.
wait_for() {
    local seconds="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || die "$what (not within ${seconds}s)"
        sleep 0.2
    done
}

add_ns() {
    ip netns add "$1"
    namespaces+=("$1")
    ip -n "$1" link set lo up
}

echo "==> underlay: bridge in $switch_ns, nodes ${prefix}n1..3 on 198.18.0.0/24"
add_ns "$switch_ns"
ip -n "$switch_ns" link add br0 type bridge
ip -n "$switch_ns" link set br0 up
for i in 1 2 3; do
    ns="${prefix}n$i"
    add_ns "$ns"
    ip -n "$ns" link add eth0 type veth peer name "p$i" netns "$switch_ns"
    ip -n "$switch_ns" link set "p$i" master br0 up
    ip -n "$ns" addr add "198.18.0.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
done

start_node() {
    local i="$1"
    shift
    local ns="${prefix}n$i"
    echo "    n$i: ethcloud -t $token $*"
    ip netns exec "$ns" "$bin" -t "$token" "$@" 2>"$logs/n$i.log" &
    pids+=("$!")
    wait_for 10 "n$i created no tap device" ip -n "$ns" link show dev ethcloud0
    ip -n "$ns" link set ethcloud0 mtu 1400 up
    ip -n "$ns" addr add "198.19.0.$i/24" dev ethcloud0
}

echo "==> starting three nodes, chain-connected (token $token, overlay 198.19.0.0/24)"
start_node 1
start_node 2 -c 198.18.0.1:3210
start_node 3 -c 198.18.0.2:3210

echo "==> waiting until n1 and n3, which were never told about each other, are direct peers"
wait_for 30 "n1 never peered with n3" grep -q "peer 198.18.0.3:3210 added" "$logs/n1.log"
wait_for 30 "n3 never peered with n1" grep -q "peer 198.18.0.1:3210 added" "$logs/n3.log"
echo "    n1's log:"
grep -E "started|peer " "$logs/n1.log" | sed 's/^/      /'

ping_over() {
    local from="$1" to="$2"
    wait_for 20 "n$from cannot ping 198.19.0.$to" \
        ip netns exec "${prefix}n$from" ping -n -c1 -W1 "198.19.0.$to"
    ip netns exec "${prefix}n$from" ping -n -c3 -i0.2 -W1 "198.19.0.$to" |
        grep -E "packets transmitted|rtt" | sed "s/^/    n$from -> 198.19.0.$to: /"
}

echo "==> pinging across the overlay"
ping_over 1 2
ping_over 1 3
ping_over 3 1
ping_over 2 3

echo "==> counters of n1 (SIGUSR1)"
kill -USR1 "${pids[0]}"
wait_for 5 "n1 logged no counters" grep -q "stats:" "$logs/n1.log"
grep "stats:" "$logs/n1.log" | tail -1 | sed 's/^.*stats: //' | fold -s -w 90 | sed 's/^/    /'

echo "==> stopping the middle node n2 (SIGTERM): it sends Close to its peers"
kill -TERM "${pids[1]}"
wait_for 10 "n2 did not exit" sh -c "! kill -0 ${pids[1]} 2>/dev/null"
wait_for 10 "n1 did not drop n2" grep -q "peer 198.18.0.2:3210 removed: closed by peer" "$logs/n1.log"
grep "removed" "$logs/n1.log" | sed 's/^/    n1: /'

echo "==> n1 and n3 still reach each other directly"
ping_over 1 3
ping_over 3 1

ok=1
echo "==> demo passed"
