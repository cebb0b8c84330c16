#!/usr/bin/env bash
# Scale test with real daemons, as root: sudo scripts/scale.sh [N]   (N defaults to 32)
#
#   underlay 198.18.0.0/16: namespaces <p>h1..<p>hN, each with eth0 on a bridge in <p>sw
#   overlay  198.19.0.0/16: each node's tap ethcloud0 (mtu 1400)
#   bootstrapped as a chain: node k runs `-c` node k-1, and must find the other N-2 itself
#
# Builds ethcloud (release), starts N daemons (token 42, --peer-timeout 60), waits until every
# daemon logs N-1 verified peers, and reports the seconds that took. Then pings 20 random pairs
# across the overlay (a reply proves a direct link: ethcloud never forwards between peers), and
# measures every daemon over an idle window of ~10 s: CPU (utime+stime from /proc/PID/stat),
# RSS (VmRSS and VmHWM from /proc/PID/status) and management bytes sent (from the counters
# SIGUSR1 logs), each as min / median / max. Exits non-zero on any failure. Every wait has a
# deadline; whatever happens, it stops the daemons it started by PID and deletes the namespaces
# it created by name. `scripts/scale.sh 12` is the reduced form CI runs.
#
# Linux keeps one neighbour (ARP/ND) table for all namespaces, capped by gc_thresh3 (default
# 1024). N hosts on one segment need about 2·N² entries (underlay and overlay), so beyond ~25
# hosts ARP fails ("neighbor table overflow" in dmesg, ENOBUFS in ping). The script raises
# gc_thresh2/3 for IPv4 and IPv6 while it runs if they are too low, and puts them back on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-32}"
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 2 ] || [ "$n" -gt 1000 ]; then
    echo "scale.sh: N must be a number from 2 to 1000, not '$n'" >&2
    exit 2
fi

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need_root "$n"
need_tools ip=iproute2 ping=iputils-ping "cc=gcc libc6-dev" sysctl=procps
build_release

prefix="ecsc$$"
switch_ns="${prefix}sw"
token=42
port=3210
pings=20
idle_secs=10
mesh_deadline=$((30 + n)) # seconds; the simulator says a chain of 100 needs 8 s, 12 daemons take ~3 s
logs="$(mktemp -d /tmp/ethcloud-scale.XXXXXX)"
ok=0
restore_sysctls=()

cleanup() {
    stop_pids 5
    [ "$ok" -eq 1 ] || show_logs "$logs" 15 4
    delete_namespaces
    for setting in "${restore_sysctls[@]}"; do sysctl -q -w "$setting" >/dev/null || true; done
    rm -rf "$logs"
}
on_exit cleanup

# Addresses of node k (1-based): 198.18.a.b on the underlay, 198.19.a.b on the overlay.
host_part() { echo "$(($1 / 200)).$(($1 % 200 + 1))"; }
underlay() { echo "198.18.$(host_part "$1")"; }
overlay() { echo "198.19.$(host_part "$1")"; }
ns_of() { echo "${prefix}h$1"; }

# The current verified peer count of node k, from the last "peer ... added/removed (k peers)".
peer_count() {
    local line
    line="$(grep -oE 'peer [^ ]+ (added|removed).*\([0-9]+ peers\)' "$logs/$1.log" | tail -n 1 || true)"
    [[ "$line" =~ \(([0-9]+)\ peers\)$ ]] && echo "${BASH_REMATCH[1]}" || echo 0
}

# min / median / max of the numbers on stdin, with a printf format for each.
summary() {
    sort -g | awk -v fmt="$1" '{ v[NR] = $1 } END {
        if (NR == 0) { print "none"; exit }
        med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf fmt " / " fmt " / " fmt "\n", v[1], med, v[NR] }'
}

need=$((2 * n * n + 1024))
for family in ipv4 ipv6; do
    for k in 2 3; do
        key="net.$family.neigh.default.gc_thresh$k"
        old="$(sysctl -n "$key")"
        if [ "$old" -lt "$need" ]; then
            restore_sysctls+=("$key=$old")
            sysctl -q -w "$key=$need"
        fi
    done
done
[ "${#restore_sysctls[@]}" -eq 0 ] ||
    echo "==> neighbour tables: gc_thresh2/3 raised to $need while the test runs (restored on exit)"

echo "==> $n namespaces on a bridge"
add_bridge "$switch_ns"
for k in $(seq "$n"); do
    bridge_port "$switch_ns" "$(ns_of "$k")" "p$k" "$(underlay "$k")/16"
done

echo "==> starting $n daemons as a chain (node k connects to node k-1)"
start=$SECONDS
for k in $(seq "$n"); do
    args=(-t "$token" -l "0.0.0.0:$port" --peer-timeout 60)
    [ "$k" -gt 1 ] && args+=(-c "$(underlay $((k - 1))):$port")
    # The peer counts are read from the "peer ... added (k peers)" lines, of which a daemon
    # logs at most 120 a minute at info and the rest at debug (LOGGING in the man page): with
    # more nodes than that, the mesh module logs at debug too.
    if [ "$n" -gt 100 ]; then
        ip netns exec "$(ns_of "$k")" env RUST_LOG=info,ethcloud::core::node::mesh=debug \
            "$bin" "${args[@]}" </dev/null >/dev/null 2>"$logs/$k.log" &
    else
        ip netns exec "$(ns_of "$k")" "$bin" "${args[@]}" </dev/null >/dev/null 2>"$logs/$k.log" &
    fi
    pids+=("$!")
done
started=$(date +%s.%N)
for k in $(seq "$n"); do
    tap_up 20 "$(ns_of "$k")" ethcloud0 "$(overlay "$k")/16" "${pids[$((k - 1))]}" ||
        die "daemon $k created no ethcloud0 in $(ns_of "$k") (exited, or not within 20 s)"
done

echo "==> waiting (at most ${mesh_deadline} s) until every daemon has $((n - 1)) peers"
deadline=$((start + mesh_deadline))
while :; do
    done_count=0
    lowest=$n
    for k in $(seq "$n"); do
        kill -0 "${pids[$((k - 1))]}" 2>/dev/null || die "daemon $k exited"
        c="$(peer_count "$k")"
        [ "$c" -eq $((n - 1)) ] && done_count=$((done_count + 1))
        [ "$c" -lt "$lowest" ] && lowest=$c
    done
    [ "$done_count" -eq "$n" ] && break
    [ "$SECONDS" -lt "$deadline" ] ||
        die "no full mesh after ${mesh_deadline} s: $done_count of $n daemons have all peers, the fewest is $lowest"
    sleep 0.2
done
mesh_secs="$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
echo "full mesh: all $n daemons have $((n - 1)) peers ${mesh_secs} s after the last one started"

echo "==> pinging $pings random pairs across the overlay"
RANDOM=42
failed=0
for _ in $(seq "$pings"); do
    a=$((RANDOM % n + 1))
    b=$((RANDOM % n + 1))
    while [ "$b" -eq "$a" ]; do b=$((RANDOM % n + 1)); done
    if ip netns exec "$(ns_of "$a")" ping -n -q -c 3 -i 0.2 -W 2 "$(overlay "$b")" >/dev/null 2>&1; then
        echo "  node $a -> node $b ($(overlay "$b")): ok"
    else
        echo "  node $a -> node $b ($(overlay "$b")): FAILED"
        failed=$((failed + 1))
    fi
done
[ "$failed" -eq 0 ] || die "$failed of $pings pings failed"

# control_bytes_sent of every daemon, in order, via SIGUSR1 (logged as "stats: ...").
control_bytes() {
    local before=()
    for k in $(seq "$n"); do before+=("$(grep -c 'stats: peers=' "$logs/$k.log" || true)"); done
    for pid in "${pids[@]}"; do kill -USR1 "$pid"; done
    for k in $(seq "$n"); do
        local deadline=$((SECONDS + 5)) line
        while [ "$(grep -c 'stats: peers=' "$logs/$k.log" || true)" -le "${before[$((k - 1))]}" ]; do
            [ "$SECONDS" -lt "$deadline" ] || die "daemon $k logged no stats after SIGUSR1"
            sleep 0.05
        done
        line="$(grep 'stats: peers=' "$logs/$k.log" | tail -n 1)"
        [[ "$line" =~ control_bytes_sent=([0-9]+) ]] || die "no control_bytes_sent in: $line"
        echo "${BASH_REMATCH[1]}"
    done
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

echo "==> idle for ${idle_secs} s: CPU, memory and management traffic per daemon"
mapfile -t bytes0 < <(control_bytes)
[ "${#bytes0[@]}" -eq "$n" ] || die "read the counters of ${#bytes0[@]} of $n daemons"
ticks0=()
for pid in "${pids[@]}"; do ticks0+=("$(cpu_ticks "$pid")"); done
t0=$(date +%s.%N)
sleep "$idle_secs" # a measurement window, not a wait for a condition
ticks1=()
for pid in "${pids[@]}"; do ticks1+=("$(cpu_ticks "$pid")"); done
t1=$(date +%s.%N)
mapfile -t bytes1 < <(control_bytes)
[ "${#bytes1[@]}" -eq "$n" ] || die "read the counters of ${#bytes1[@]} of $n daemons"
elapsed="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
hz="$(getconf CLK_TCK)"

cpu="$(for i in "${!pids[@]}"; do
    awk -v d=$((ticks1[i] - ticks0[i])) -v hz="$hz" -v s="$elapsed" 'BEGIN { print 100 * d / hz / s }'
done | summary '%.2f')"
total_ms="$(for i in "${!pids[@]}"; do
    awk -v t="${ticks1[i]}" -v hz="$hz" 'BEGIN { print 1000 * t / hz }'
done | summary '%.0f')"
rss="$(for pid in "${pids[@]}"; do awk '/^VmRSS:/ { print $2 / 1024 }' "/proc/$pid/status"; done | summary '%.1f')"
hwm="$(for pid in "${pids[@]}"; do awk '/^VmHWM:/ { print $2 / 1024 }' "/proc/$pid/status"; done | summary '%.1f')"
mgmt="$(for i in "${!pids[@]}"; do
    awk -v d=$((bytes1[i] - bytes0[i])) -v s="$elapsed" 'BEGIN { print d / s }'
done | summary '%.0f')"

echo
echo "scale.sh results: $n daemons, chain bootstrap, --peer-timeout 60 (keepalive 15 s)"
echo "  full mesh after:                 ${mesh_secs} s"
echo "  pings across the overlay:        $pings of $pings answered"
echo "  idle CPU per daemon (%):         $cpu   (min / median / max over ${elapsed%.*} s; /proc counts 1/$hz s)"
echo "  CPU time since start (ms):       $total_ms   (bootstrap, pings and idle)"
echo "  VmRSS per daemon (MiB):          $rss"
echo "  VmHWM per daemon (MiB):          $hwm"
echo "  management bytes/s per daemon:   $mgmt   (idle, from SIGUSR1 counters)"
ok=1
echo "scale: 1 passed, 0 failed"
