#!/usr/bin/env bash
# Throughput, packet rate, latency and CPU of ethcloud against the kernel's own VXLAN and a
# WireGuard, as root:
#
#   sudo scripts/bench.sh [--quick] [--reps N] [--secs S] [--variant LABEL=ARGS]... [--out FILE]
#                         [--no-wireguard] [--wg-threads N]
#
#   --quick            1 repetition, 2-second runs (a smoke test, about a minute)
#   --reps N           repetitions (default 3); the table shows medians
#   --secs S           seconds per iperf3 run (default 4)
#   --variant L=ARGS   an ethcloud set-up to measure, with extra daemon arguments; repeatable.
#                      In ARGS, {key-file} is a network key made for the run, and {private-key}
#                      and {trusted} are each node's own key and a trust file naming the other
#                      node's public key (made with this build's genkey/pubkey). Default: the
#                      three modes, "ethcloud=" (clear), "keyed=--key-file {key-file}" and
#                      "identity=--private-key {private-key} --trusted {trusted}" (per-node keys).
#                      E.g. --variant ethcloud= --variant no-offload=--no-offload
#                      {1:X} and {2:X} in ARGS stand for X on node 1 (in the namespace that
#                      runs the iperf3 clients) or node 2 only, and for nothing on the other:
#                      e.g. --variant 'mixed={1:--kernel-path}', a kernel path talking to a
#                      node without one.
#                      Rows labelled keyed-no-aegis and identity-no-aegis (the same modes with
#                      --no-aegis) get same-run ratios against keyed and identity.
#   --variant-bin L=PATH  run the executable PATH instead of this tree's build for variant L
#                      (e.g. an older build, to measure a step against it), with the ARGS of a
#                      --variant L=ARGS if one is given, else with none
#   --out FILE         also write the table (markdown) to FILE
#   --latency-only     only ping and UDP ping-pong (quick iterations on latency)
#   --floor            add rows "floor" and "floor-yield": examples/minirelay, a bare
#                      tap<->UDP relay that spins on both fds and does nothing else (the
#                      latency any user-space relay pays for its two extra trips through the
#                      kernel), without and with ethcloud's yield on every empty spin pass;
#                      latency only, next to the variants (given or default)
#   --floor-mode M     with --floor, also a row "floor-M": the relay in mode M, one of its
#                      io_uring modes (uring, uring-spin, uring-defer, sqpoll), busypoll
#                      (SO_BUSY_POLL on its socket) or xdp (an AF_XDP socket for the
#                      underlay); see examples/minirelay. busypoll and xdp get an underlay
#                      veth of their own (198.18.<100+i>.0/24; GRO on for busypoll, so that the
#                      veth has a NAPI context to poll; ethtool is installed if missing), so
#                      that the other rows' underlay stays as it is; repeatable
#   --floor-throughput with --floor, run the throughput tests on the floor rows too (one
#                      frame per system call and no offloads: a yardstick of the relays'
#                      per-frame cost against each other, not against ethcloud)
#   --no-wireguard     leave out the WireGuard rows (else wg, wireguard-go and boringtun-cli
#                      are installed if missing: apt-get wireguard-tools wireguard-go, cargo
#                      install boringtun-cli 0.7.1, once)
#   --wg-threads N     boringtun's worker threads (default 4, boringtun's own default)
#   --udp-rate KPPS    offered rate of the fixed-rate UDP test (default 100 thousand 64-byte
#                      datagrams per second): loss at the same offered rate for every system
#
# Builds release, makes two namespaces joined by one veth (underlay 198.18.50.0/24, MTU 1500),
# and in them a VXLAN (id 4242, UDP 4789, overlay 198.19.50.0/24) and one ethcloud pair per
# variant (overlay 198.19.<100+i>.0/24); every overlay device has MTU 1400. Unless --no-wireguard,
# also two WireGuard tunnels between the same two namespaces, set up with wg: this kernel may
# have no WireGuard module, so they are the user-space ones, row "wg-go" (wireguard-go, the
# WireGuard project's own implementation in Go; overlay 198.19.61.0/24, UDP 51821) and row
# "wg-boringtun" (boringtun-cli, Cloudflare's in Rust; 198.19.60.0/24, UDP 51820), each a
# layer-3 tun with MTU 1420, wg-quick's default for a 1500-byte link. Then, for each
# repetition, it runs the same tests over each of them in turn (interleaved, so drift hits all
# alike): iperf3 TCP with 1 and 4 streams, iperf3 UDP with 64-byte payloads at full speed
# (received packet rate and loss), ping (20 echoes, 10 ms apart) and UDP ping-pong
# (examples/pingpong.rs, 2000 rounds, one-way = RTT/2). CPU is measured over the TCP 1-stream
# run: for ethcloud and WireGuard the two daemons' utime+stime (/proc/PID/stat), and for
# everyone the whole system's busy time (/proc/stat), both in % of one core (2 cores = 200 %);
# the daemons' CPU also over the fixed-rate UDP run (the same work for everyone).
# Below the table: same-run ratios of the modes (identity/clear, identity/keyed,
# identity/WireGuard), each row's TCP 1-stream figure per repetition, the load average, and
# the machine (CPU model, the flags that matter for copies and sums, kernel, mitigation).
# Numbers come only from here, never from a timed test. Every wait has a deadline; on any exit
# it stops what it started by PID and deletes its namespaces by name.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=3
secs=4
pingpong_rounds=2000
variants=()
bins=()
udp_rate=100
out=""
latency_only=0
floor=0
floor_modes=()
floor_throughput=0
wireguard=1
wg_threads=4
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) reps=1; secs=2; pingpong_rounds=1000 ;;
        --reps) reps="$2"; shift ;;
        --secs) secs="$2"; shift ;;
        --variant) variants+=("$2"); shift ;;
        --variant-bin) bins+=("$2"); shift ;;
        --out) out="$2"; shift ;;
        --latency-only) latency_only=1 ;;
        --floor) floor=1 ;;
        --floor-throughput) floor_throughput=1 ;;
        --floor-mode)
            case "$2" in
                uring|uring-spin|uring-defer|sqpoll|busypoll|xdp) floor_modes+=("floor-$2=") ;;
                *) echo "bench.sh: --floor-mode wants uring, uring-spin, uring-defer, sqpoll, busypoll or xdp" >&2; exit 2 ;;
            esac
            shift ;;
        --no-wireguard) wireguard=0 ;;
        --wg-threads) wg_threads="$2"; shift ;;
        --udp-rate) udp_rate="$2"; shift ;;
        -h|--help) sed -n '2,50p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$udp_rate" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "bench.sh: --udp-rate wants 1..999999 (thousand datagrams/s)" >&2; exit 2; }
# A --variant-bin whose label no --variant names is measured with no extra arguments.
for entry in "${bins[@]}"; do
    named=0
    for v in "${variants[@]}"; do [ "${v%%=*}" = "${entry%%=*}" ] && named=1; done
    [ "$named" -eq 1 ] || variants+=("${entry%%=*}=")
done
[ "${#variants[@]}" -gt 0 ] ||
    variants=("ethcloud=" "keyed=--key-file {key-file}"
        "identity=--private-key {private-key} --trusted {trusted}")
# The floors come in addition to the variants (given or default), measured first.
[ "${#floor_modes[@]}" -eq 0 ] || [ "$floor" -eq 1 ] || { echo "bench.sh: --floor-mode needs --floor" >&2; exit 2; }
[ "$floor_throughput" -eq 0 ] || [ "$floor" -eq 1 ] || { echo "bench.sh: --floor-throughput needs --floor" >&2; exit 2; }
[ "$floor" -eq 0 ] || variants=("floor=" "floor-yield=" "${floor_modes[@]}" "${variants[@]}")
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_root
need_tools ip=iproute2 ss=iproute2 iperf3=iperf3 ping=iputils-ping python3=python3 "cc=gcc libc6-dev"
[[ " ${floor_modes[*]} " != *" floor-busypoll= "* ]] || need_tools ethtool=ethtool
if [ "$wireguard" -eq 1 ]; then
    need_tools wg=wireguard-tools wireguard-go=wireguard-go
    need_cargo
    need_cargo_tool boringtun-cli boringtun-cli 0.7.1 ||
        die "boringtun-cli could not be installed (or leave WireGuard out: --no-wireguard)"
fi

build_release --bin ethcloud --example pingpong --example minirelay
pingpong="$PWD/target/release/examples/pingpong"

a="ecbench$$a"
b="ecbench$$b"
work="$(mktemp -d /tmp/ethcloud-bench.XXXXXX)"
results="$work/results.tsv"

wg_devs=()
cleanup() {
    stop_pids 3
    delete_namespaces
    local dev
    for dev in "${wg_devs[@]}"; do rm -f "/var/run/wireguard/$dev.sock"; done
    echo "(logs in $work)"
}
on_exit cleanup

echo "==> namespaces $a, $b over one veth"
veth_pair "$a" 198.18.50.1/24 "$b" 198.18.50.2/24

echo "==> keys in $work: a network key (keyed), a key pair per node (identity)"
(
    umask 077
    python3 -c 'import secrets; print(secrets.token_hex(32))' >"$work/network.key"
    for side in 1 2; do "$bin" genkey >"$work/node$side.key"; done
)
for side in 1 2; do "$bin" pubkey <"$work/node$side.key" >"$work/node$side.pub"; done
echo "$(cat "$work/node2.pub") node2" >"$work/trusted1"
echo "$(cat "$work/node1.pub") node1" >"$work/trusted2"

echo "==> vxlan (overlay 198.19.50.0/24, mtu 1400)"
for side in 1 2; do
    ns=$a; other=2
    [ "$side" = 2 ] && { ns=$b; other=1; }
    ip -n "$ns" link add vx0 type vxlan id 4242 local "198.18.50.$side" \
        remote "198.18.50.$other" dstport 4789 dev eth0
    ip -n "$ns" link set vx0 mtu "$overlay_mtu" up
    ip -n "$ns" addr add "198.19.50.$side/24" dev vx0
done

# systems: "label|server ip in b|pid list (ethcloud only)"
systems=("vxlan|198.19.50.2|")
index=0
for variant in "${variants[@]}"; do
    index=$((index + 1))
    label="${variant%%=*}"
    extra="${variant#*=}"
    # 198.19.101-249: one /24 per system (at most 149 of them; 198.19.50, 60 and 61 are the
    # VXLAN's and the WireGuards').
    [ "$index" -le 149 ] || die "at most 149 systems in one run"
    net="198.19.$((100 + index))"
    port=$((3210 + index))
    tap="ecb$index"
    vbin="$bin"
    for entry in "${bins[@]}"; do
        [ "${entry%%=*}" = "$label" ] && vbin="${entry#*=}"
    done
    echo "==> $label: $vbin $extra (overlay $net.0/24, tap $tap, port $port)"
    vpids=""
    # The relay's underlay: the shared veth, or for busypoll and xdp one of its own.
    underlay="198.18.50"
    if [[ "$label" = floor-busypoll || "$label" = floor-xdp ]]; then
        underlay="198.18.$((100 + index))"
        ul="ul$index"
        ip -n "$a" link add "$ul" type veth peer name "$ul" netns "$b"
        for side in 1 2; do
            ns=$a; [ "$side" = 2 ] && ns=$b
            ip -n "$ns" addr add "$underlay.$side/24" dev "$ul"
            ip -n "$ns" link set "$ul" up
            [ "$label" = floor-xdp ] || ip netns exec "$ns" ethtool -K "$ul" gro on >/dev/null
        done
    fi
    for side in 1 2; do
        ns=$a; other=2
        [ "$side" = 2 ] && { ns=$b; other=1; }
        if [ "$floor" -eq 1 ] && [[ "$label" = floor || "$label" = floor-* ]]; then
            relay_mode=""  # none, or a mode of --floor-mode
            [ "$label" = floor ] || relay_mode="${label#floor-}"
            # The xdp relay writes its own Ethernet headers: it is given the peer's MAC.
            if [ "$label" = floor-xdp ]; then
                other_ns=$b; [ "$side" = 2 ] && other_ns=$a
                relay_mode="xdp $ul $(ip netns exec "$other_ns" cat "/sys/class/net/$ul/address")"
            fi
            # shellcheck disable=SC2086
            ip netns exec "$ns" "$PWD/target/release/examples/minirelay" "$tap" \
                "$underlay.$side:$port" "$underlay.$other:$port" 3600 $relay_mode 2>"$work/$label-$side.log" &
        else
            # This side's files in place of {key-file}, {private-key}, {trusted}.
            args="${extra//"{key-file}"/$work/network.key}"
            args="${args//"{private-key}"/$work/node$side.key}"
            args="${args//"{trusted}"/$work/trusted$side}"
            # {1:X} and {2:X}: X on that side only.
            args=$(sed -E "s/\{$side:([^}]*)\}/\1/g; s/\{[12]:[^}]*\}//g" <<<"$args")
            # shellcheck disable=SC2086
            ip netns exec "$ns" "$vbin" -d "$tap" -l "198.18.50.$side:$port" -t "$((4000 + index))" \
                -c "198.18.50.$other:$port" $args 2>"$work/$label-$side.log" &
        fi
        pid=$!
        pids+=("$pid")
        vpids="$vpids $pid"
        tap_up 10 "$ns" "$tap" "$net.$side/24" "$pid" ||
            { cat "$work/$label-$side.log"; die "no tap $tap in $ns"; }
    done
    wait_for 20 ip netns exec "$a" ping -c1 -W1 "$net.2" ||
        { cat "$work/$label-"*.log; die "$label overlay does not ping"; }
    systems+=("$label|$net.2|$vpids")
done

# WireGuard in user space: each implementation makes tun $dev and its UAPI socket
# /var/run/wireguard/$dev.sock (the names are global, hence the PID in them), which wg talks to.
# wg_up LABEL NET PORT: one WireGuard pair of implementation LABEL (wg-go or wg-boringtun),
# overlay NET.0/24, UDP PORT.
wg_mtu=1420
wg_up() {
    local label=$1 net=$2 port=$3 side ns other dev pid vpids=""
    for side in 1 2; do
        ns=$a; other=2
        [ "$side" = 2 ] && { ns=$b; other=1; }
        dev="ecw${label:3:1}$$n$side" # ecwg<pid>n1 for wg-go, ecwb<pid>n1 for wg-boringtun
        wg_devs+=("$dev")
        case "$label" in
            wg-go)
                # -f: stay in the foreground (our child, stopped by PID like the others).
                ip netns exec "$ns" wireguard-go -f "$dev" >"$work/$label-$side.log" 2>&1 & ;;
            wg-boringtun)
                ip netns exec "$ns" boringtun-cli "$dev" --foreground --disable-drop-privileges \
                    --threads "$wg_threads" --verbosity error >"$work/$label-$side.log" 2>&1 & ;;
        esac
        pid=$!
        pids+=("$pid")
        vpids="$vpids $pid"
        wait_for --pid "$pid" 10 test -S "/var/run/wireguard/$dev.sock" ||
            { cat "$work/$label-$side.log"; die "$label made no $dev in $ns"; }
        ip netns exec "$ns" wg set "$dev" private-key "$work/wg$side.key" listen-port "$port" \
            peer "$(wg pubkey <"$work/wg$other.key")" endpoint "198.18.50.$other:$port" \
            allowed-ips "$net.$other/32"
        ip -n "$ns" addr add "$net.$side/24" dev "$dev"
        ip -n "$ns" link set "$dev" mtu "$wg_mtu" up
    done
    wait_for 20 ip netns exec "$a" ping -c1 -W1 "$net.2" ||
        { cat "$work/$label-"*.log; die "$label overlay does not ping"; }
    systems+=("$label|$net.2|$vpids")
}
wg_note=""
if [ "$wireguard" -eq 1 ]; then
    (
        umask 077
        for side in 1 2; do wg genkey >"$work/wg$side.key"; done
    )
    go_version="$(wireguard-go --version | head -1)"
    echo "==> wg-go: WireGuard in user space, $go_version, the WireGuard project's own" \
        "(overlay 198.19.61.0/24, L3 tun, mtu $wg_mtu, port 51821)"
    wg_up wg-go 198.19.61 51821
    echo "==> wg-boringtun: WireGuard in user space, $(boringtun-cli --version) with" \
        "$wg_threads threads (overlay 198.19.60.0/24, L3 tun, mtu $wg_mtu, port 51820)"
    wg_up wg-boringtun 198.19.60 51820
    wg_note="wg-go: $go_version (Go, the WireGuard project's own user-space implementation; \
layer 3, tun MTU $wg_mtu); wg-boringtun: $(boringtun-cli --version), $wg_threads threads \
(layer 3, tun MTU $wg_mtu); both in user space, not the kernel's WireGuard"
fi
wait_or_die 20 "vxlan overlay does not ping" ip netns exec "$a" ping -c1 -W1 198.19.50.2

echo "==> servers in $b (iperf3, pingpong)"
ip netns exec "$b" iperf3 -s -p 5201 >"$work/iperf3-server.log" 2>&1 &
pids+=("$!")
ip netns exec "$b" "$pingpong" server 0.0.0.0:7000 600 >/dev/null 2>&1 &
pids+=("$!")
wait_for 10 ip netns exec "$b" ss -Hltn 'sport = :5201' || true
wait_for 10 bash -c "ip netns exec $b ss -Hltn 'sport = :5201' | grep -q 5201"

# Sum of utime+stime (clock ticks) over the given PIDs.
proc_ticks() {
    local total=0 pid fields
    for pid in "$@"; do
        fields=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        # after "comm) ": field 3 is state, so utime (14) and stime (15) are words 12 and 13
        total=$((total + $(echo "$fields" | awk '{print $12 + $13}')))
    done
    echo "$total"
}
# Busy (non-idle, non-iowait) ticks of the whole system.
system_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; }

iperf() {
    local label=$1 ip=$2; shift 2
    local json="$work/$label-$RANDOM.json"
    if ! timeout $((secs + 15)) ip netns exec "$a" iperf3 -c "$ip" -p 5201 -t "$secs" -J "$@" >"$json"; then
        echo "  iperf3 $* to $ip failed" >&2
        return 1
    fi
    echo "$json"
}

# Received Gb/s of an iperf3 TCP report; fails, saying why, when the report has none (iperf3
# can exit 0 with an "error" member and no totals).
tcp_gbps() {
    python3 - "$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
try:
    print(report["end"]["sum_received"]["bits_per_second"] / 1e9)
except (KeyError, TypeError):
    print(f"  iperf3 TCP gave no result: {report.get('error', 'no end.sum_received')}", file=sys.stderr)
    sys.exit(1)
PY
}

run_throughput() {
    local label=$1 ip=$2 json gbps t0 b0 p0 t1 b1 p1 ticks vpids
    read -ra vpids <<<"$3" # the daemons' PIDs (none for vxlan)
    ticks=$(getconf CLK_TCK)
    # TCP, 1 stream, with CPU.
    t0=$(date +%s.%N); b0=$(system_busy); p0=$(proc_ticks "${vpids[@]}")
    if json=$(iperf "$label" "$ip"); then
        t1=$(date +%s.%N); b1=$(system_busy); p1=$(proc_ticks "${vpids[@]}")
        gbps=$(tcp_gbps "$json") && record "$label" tcp1_gbps "$gbps"
        record "$label" sys_cpu "$(python3 -c "print(100*($b1-$b0)/$ticks/($t1-$t0))")"
        [ "${#vpids[@]}" -gt 0 ] && record "$label" vpn_cpu "$(python3 -c "print(100*($p1-$p0)/$ticks/($t1-$t0))")"
    fi
    # TCP, 4 streams.
    if json=$(iperf "$label" "$ip" -P 4); then
        gbps=$(tcp_gbps "$json") && record "$label" tcp4_gbps "$gbps"
    fi
    # UDP, 64-byte payloads, unlimited rate: received packets per second and loss.
    if json=$(iperf "$label" "$ip" -u -b 0 -l 64); then
        udp_result "$json" "$label" full >>"$results"
    fi
    # UDP, 64-byte payloads at a fixed offered rate, the same for every system: loss. (At full
    # speed the offered rate differs: VXLAN encapsulates in the sender's own system call, so
    # the sender slows to what it forwards, while a tap accepts whatever comes and drops the
    # rest; at the same offered rate the losses compare.)
    t0=$(date +%s.%N); p0=$(proc_ticks "${vpids[@]}")
    if json=$(iperf "$label" "$ip" -u -b "$((udp_rate * 1000 * 64 * 8))" -l 64); then
        t1=$(date +%s.%N); p1=$(proc_ticks "${vpids[@]}")
        udp_result "$json" "$label" fixed >>"$results"
        if [ "${#vpids[@]}" -gt 0 ]; then
            record "$label" vpn_cpu_udp "$(python3 -c "print(100*($p1-$p0)/$ticks/($t1-$t0))")"
        fi
    fi
}

# The result lines of an iperf3 UDP report: at full speed ("full") the received rate and the
# loss, at the fixed rate ("fixed") the loss; nothing, saying why, when the report has none.
udp_result() {
    python3 - "$@" <<'PY'
import json, sys
path, label, mode = sys.argv[1:4]
report = json.load(open(path))
s = report.get("end", {}).get("sum")
if not s or "packets" not in s:
    print(f"  iperf3 UDP gave no result: {report.get('error', 'no end.sum')}", file=sys.stderr)
    sys.exit(0)
if mode == "full":
    got = s["packets"] - s["lost_packets"]
    print(f"{label}\tudp64_kpps\t{got / s['seconds'] / 1e3}")
    print(f"{label}\tudp64_loss\t{s['lost_percent']}")
else:
    print(f"{label}\tudp64_fixed_loss\t{s['lost_percent']}")
PY
}

run_latency() {
    local label=$1 ip=$2 rtt pp
    # ping: 20 echoes 10 ms apart, average RTT.
    rtt=$(timeout 20 ip netns exec "$a" ping -n -q -c 20 -i 0.01 -W 1 "$ip" |
        awk -F'/' '/^rtt/{print $5}') || true
    if [ -n "$rtt" ]; then
        record "$label" ping_rtt_us "$(python3 -c "print($rtt*1000)")"
    fi
    # UDP ping-pong, one-way latency.
    pp=$(timeout 60 ip netns exec "$a" "$pingpong" client "$ip:7000" "$pingpong_rounds") || true
    pp="${pp##*median_us=}"
    # (An `if`: a bare `[ ] && ...` as the last command would return 1 when the ping-pong
    # printed nothing, and set -e would end the whole bench without a word.)
    if [ -n "$pp" ]; then
        record "$label" pingpong_us "${pp%%[!0-9.]*}"
    else
        echo "bench.sh: $label: no ping-pong result" >&2
    fi
}

run_tests() {
    # The floors are latency yardsticks (no offloads, one packet per system call): their
    # throughput says nothing against ethcloud, so it is measured only with --floor-throughput.
    [ "$latency_only" -eq 1 ] || { [[ "$1" = floor || "$1" = floor-* ]] && [ "$floor_throughput" -eq 0 ]; } ||
        run_throughput "$@"
    run_latency "$@"
}

: >"$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq "$reps"); do
    for system in "${systems[@]}"; do
        IFS='|' read -r label ip vpids <<<"$system"
        echo "==> repetition $rep/$reps: $label"
        run_tests "$label" "$ip" "$vpids"
    done
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)

echo
# The machine, because the ratios depend on it: copies cost much more where the CPU has no
# fast `rep movsb` (erms, fsrm), and the kernel's mitigations tax every system call.
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has_flags=""
for flag in erms fsrm avx2 avx512f vaes; do
    [[ "$cpu_flags" == *" $flag "* ]] && has_flags="$has_flags $flag"
done
machine="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') \
(family $(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), \
model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), \
$(grep -m1 '^cpu MHz' /proc/cpuinfo | cut -d: -f2 | tr -d ' ' | cut -d. -f1) MHz), \
$(nproc) cores; flags:${has_flags:- none of erms fsrm avx2 avx512f vaes}; kernel $(uname -r); \
retbleed: $(cat /sys/devices/system/cpu/vulnerabilities/retbleed 2>/dev/null || echo unknown)"
python3 - "$results" "$reps" "$secs" "$out" "$load_start" "$load_end" "$wg_note" "$udp_rate" \
    "$machine" <<'EOF'
import statistics, sys
from collections import defaultdict
path, reps, secs, out, load_start, load_end, wg_note, udp_rate, machine = sys.argv[1:10]
data = defaultdict(lambda: defaultdict(list))
order = []
for line in open(path):
    label, metric, value = line.rstrip("\n").split("\t")
    if label not in order:
        order.append(label)
    data[label][metric].append(float(value))
cols = [("tcp1_gbps", "TCP 1 stream Gb/s", 2), ("tcp4_gbps", "TCP 4 streams Gb/s", 2),
        ("udp64_kpps", "UDP 64 B kpps", 0), ("udp64_loss", "UDP 64 B loss %", 1),
        ("udp64_fixed_loss", f"UDP 64 B loss % at {udp_rate} kpps", 1),
        ("ping_rtt_us", "ping RTT µs", 0), ("pingpong_us", "UDP one-way µs", 1),
        ("vpn_cpu", "VPN CPU % (TCP 1)", 0), ("sys_cpu", "system CPU % (TCP 1)", 0),
        ("vpn_cpu_udp", f"VPN CPU % (UDP 64 B at {udp_rate} kpps)", 0)]
def med(label, key):
    v = data[label].get(key)
    return statistics.median(v) if v else None
def fmt(x, d):
    return "-" if x is None else f"{x:.{d}f}"
lines = [f"medians of {reps} repetition(s), {secs} s per iperf3 run; CPU in % of one core (2 cores = 200 %)", "",
         "| system | " + " | ".join(c[1] for c in cols) + " |",
         "|---|" + "---:|" * len(cols)]
for label in order:
    lines.append(f"| {label} | " + " | ".join(fmt(med(label, k), d) for k, _, d in cols) + " |")
base = "vxlan"
for label in order:
    if label == base:
        continue
    r = []
    for k, _, _ in cols[:3] + cols[5:7]:
        x, y = med(label, k), med(base, k)
        r.append("-" if x is None or not y else f"{x / y:.2f}")
    lines.append(f"| {label}/vxlan | {r[0]}× | {r[1]}× | {r[2]}× | | | {r[3]}× | {r[4]}× | | | |")
# The modes against each other (issue #12: identity ≥ 0.8 × clear on TCP 1 stream).
pairs = [(x, y, t) for x, y, t in [
    ("identity", "ethcloud", "≥ 0.8× on TCP 1 stream"), ("identity", "keyed", ""),
    ("identity", "identity-no-aegis", "AEGIS-128L against AES-128-GCM"),
    ("identity", "wg-go", "≥ 1× WireGuard (#14; here its own user-space one)"),
    ("identity", "wg-boringtun", ""), ("keyed", "ethcloud", "≥ 0.9× on TCP 1 stream (#14)"),
    ("keyed", "keyed-no-aegis", "AEGIS-128L against AES-256-GCM"), ("ethcloud", "wg-go", ""),
    ("ethcloud", "wg-boringtun", "")]
    if x in data and y in data]
if pairs:
    # Also the median of the per-repetition ratios: the two ran seconds apart in each
    # repetition, so drift in the machine's load cancels better than in a ratio of medians.
    lines += ["", "| same-run ratio (of medians) | TCP 1 stream | TCP 4 streams | UDP 64 B rate "
              "| TCP 1 stream, median of per-repetition ratios | target |",
              "|---|---:|---:|---:|---:|---|"]
    for x, y, target in pairs:
        r = []
        for k in ("tcp1_gbps", "tcp4_gbps", "udp64_kpps"):
            a, b = med(x, k), med(y, k)
            r.append("-" if a is None or not b else f"{a / b:.2f}×")
        a, b = data[x].get("tcp1_gbps", []), data[y].get("tcp1_gbps", [])
        paired = [p / q for p, q in zip(a, b) if q] if len(a) == len(b) else []
        r.append(f"{statistics.median(paired):.2f}×" if paired else "-")
        lines.append(f"| {x}/{y} | " + " | ".join(r) + f" | {target} |")
# Latency against the bare relay floors (issue #14: one-way ≤ 1.15× the floor).
floors = [f for f in ("floor", "floor-yield") if med(f, "pingpong_us")]
if floors:
    lines += ["", "| UDP one-way latency, same run | " + " | ".join(f"× {f}" for f in floors) + " |",
              "|---|" + "---:|" * len(floors)]
    for label in order:
        if label in ("vxlan", "floor", "floor-yield") or not med(label, "pingpong_us"):
            continue
        lines.append(f"| {label} | " + " | ".join(
            f"{med(label, 'pingpong_us') / med(f, 'pingpong_us'):.2f}×" for f in floors) + " |")
lines.append("")
for label in order:
    v = data[label].get("tcp1_gbps")
    if v:
        lines.append(f"- TCP 1 stream Gb/s per repetition, {label}: " + ", ".join(f"{x:.2f}" for x in v))
if wg_note:
    lines.append("- " + wg_note)
lines.append(f"- load average (1, 5, 15 min) at the start of the measurements: {load_start}; at the end: {load_end}")
lines.append(f"- machine: {machine}")
text = "\n".join(lines)
print(text)
if out:
    open(out, "w").write(text + "\n")
EOF
