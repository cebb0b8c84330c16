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

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need_root
need_tools ip=iproute2 ping=iputils-ping "cc=gcc libc6-dev"
build_release

prefix="ecdemo$$"
switch_ns="${prefix}sw"
token=42
logs="$(mktemp -d /tmp/ethcloud-demo.XXXXXX)"
ok=0

cleanup() {
    stop_pids 3
    [ "$ok" -eq 1 ] || show_logs "$logs"
    delete_namespaces
    rm -rf "$logs"
}
on_exit cleanup

echo "==> underlay: bridge in $switch_ns, nodes ${prefix}n1..3 on 198.18.0.0/24"
add_bridge "$switch_ns"
for i in 1 2 3; do
    bridge_port "$switch_ns" "${prefix}n$i" "p$i" "198.18.0.$i/24"
done

start_node() {
    local i="$1"
    shift
    local ns="${prefix}n$i"
    echo "    n$i: ethcloud -t $token $*"
    ip netns exec "$ns" "$bin" -t "$token" "$@" 2>"$logs/n$i.log" &
    pids+=("$!")
    tap_up 10 "$ns" ethcloud0 "198.19.0.$i/24" "$!" || die "n$i created no tap device (not within 10s)"
}

echo "==> starting three nodes, chain-connected (token $token, overlay 198.19.0.0/24)"
start_node 1
start_node 2 -c 198.18.0.1:3210
start_node 3 -c 198.18.0.2:3210

echo "==> waiting until n1 and n3, which were never told about each other, are direct peers"
wait_or_die 30 "n1 never peered with n3" grep -q "peer 198.18.0.3:3210 added" "$logs/n1.log"
wait_or_die 30 "n3 never peered with n1" grep -q "peer 198.18.0.1:3210 added" "$logs/n3.log"
echo "    n1's log:"
grep -E "started|peer " "$logs/n1.log" | sed 's/^/      /'

ping_over() {
    local from="$1" to="$2"
    wait_or_die 20 "n$from cannot ping 198.19.0.$to" \
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
wait_or_die 5 "n1 logged no counters" grep -q "stats:" "$logs/n1.log"
grep "stats:" "$logs/n1.log" | tail -1 | sed 's/^.*stats: //' | fold -s -w 90 | sed 's/^/    /'

echo "==> stopping the middle node n2 (SIGTERM): it sends Close to its peers"
kill -TERM "${pids[1]}"
wait_or_die 10 "n2 did not exit" sh -c "! kill -0 ${pids[1]} 2>/dev/null"
wait_or_die 10 "n1 did not drop n2" grep -q "peer 198.18.0.2:3210 removed: closed by peer" "$logs/n1.log"
grep "removed" "$logs/n1.log" | sed 's/^/    n1: /'

echo "==> n1 and n3 still reach each other directly"
ping_over 1 3
ping_over 3 1

ok=1
echo "==> demo passed"
