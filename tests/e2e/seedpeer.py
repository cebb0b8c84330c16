#!/usr/bin/env python3
"""A minimal ethcloud peer that speaks only the seed's protocol, for tests/e2e_seed_interop.rs.

    seedpeer.py run BIND_IP PORT TOKEN DAEMON_IP:PORT MAC MARKER LISTED_IP:PORT WINDOW SECONDS CLOSE_FILE
    seedpeer.py watch BIND_IP PORT TOKEN DAEMON_IP:PORT SECONDS
    seedpeer.py selftest

It knows the four messages of NETWORK PROTOCOL (ethcloud.md, and the seed's spec) and
nothing else: Frame (switch 0), Peer list (1), Get peer list (2), Close (3), each after the
7-byte token (the low 56 bits, big-endian). It is STRICT about what it receives, stricter
than the spec asks of a receiver, because it checks what a sender puts on the wire:

* the datagram comes from DAEMON_IP:PORT and is at least 8 bytes long;
* its token is TOKEN and its switch byte is 0, 1, 2 or 3;
* Frame: at least 14 bytes of Ethernet after the header (18 if it has an 802.1Q tag:
  addresses, tag and the EtherType after it, as ethcloud's own parser asks);
* Peer list: both counts and exactly that many entries, no byte after the last one;
* Get peer list and Close: exactly 8 bytes.

Anything else is a violation (a switch byte above 3, such as a relay message's 0x10..0x12,
also counts as bad_switch).

`run` binds BIND_IP:PORT, prints `ready`, asks DAEMON for its peer list (again every second
until a peer list came back), answers each Get peer list with a one-entry peer list naming
LISTED_IP:PORT, sends an empty peer list every 2 s as keep-alive, and every second broadcasts
one Ethernet frame from MAC with EtherType 0x88b5 and the payload `MARKER-N` NUL-padded to
64 bytes (as rawframe.py builds its frames). It prints one line per received datagram:

    rx frame len=N dst=MAC src=MAC vid=VID|none type=TTTT marker=TEXT|- hex=HEX
    rx peerlist len=N v4=ADDR:PORT,... v6=[ADDR]:PORT,...
    rx getpeers len=8
    rx close len=8
    violation REASON len=N from=ADDR hex=HEX

(frames of type 88b5, tagged or not, with their whole datagram in hex, others with the
first 64 bytes),
`window-over` once WINDOW seconds have passed since `ready`, then, once the file CLOSE_FILE
exists, sends the daemon a Close (`sent-close`) and goes on as before; when the daemon sends Close
or SECONDS have passed (or on SIGTERM) one line

    summary received=N frames=F peerlists=P getpeers=G close=C violations=V bad_switch=B

`watch` is the address a `run` peer lists: it binds BIND_IP:PORT, prints `ready`, never
sends anything, and prints the same `rx` and `violation` lines for what arrives, for SECONDS
(or until SIGTERM). A seed node that learns the address may only ask it for its peer list.

`selftest` feeds the same receiving code crafted good and bad datagrams and prints
`selftest ok checks=N` (exit 0), or each check that failed (exit 1).
"""

import ipaddress
import os
import signal
import socket
import struct
import sys
import time

HEADER = 8
ETH_MIN = 14
V4_ENTRY = 6
V6_ENTRY = 18
FRAME, PEER_LIST, GET_PEER_LIST, CLOSE = 0, 1, 2, 3
KINDS = {FRAME: "frame", PEER_LIST: "peerlist", GET_PEER_LIST: "getpeers", CLOSE: "close"}
TEST_ETHERTYPE = b"\x88\xb5"
TPID_8021Q = b"\x81\x00"
BROADCAST = b"\xff" * 6
SHOWN_BYTES = 64


class Violation(Exception):
    """A datagram that is not exactly one of the seed's four messages."""


def token_bytes(token):
    """The 7-byte token field: the low 56 bits of the token, most significant byte first."""
    return (int(token) & ((1 << 56) - 1)).to_bytes(7, "big")


def mac_bytes(text):
    raw = bytes(int(part, 16) for part in text.split(":"))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text}")
    return raw


def mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


def parse_addr(text):
    """`198.18.0.1:3210` or `[fd00::1]:3210` -> (ip, port)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def encode_peer_list(token, entries):
    """A peer list message naming `entries`, each (ip, port)."""
    v4 = [(ipaddress.ip_address(ip), port) for ip, port in entries if ":" not in ip]
    v6 = [(ipaddress.ip_address(ip), port) for ip, port in entries if ":" in ip]
    body = bytes([len(v4)]) + b"".join(ip.packed + struct.pack("!H", port) for ip, port in v4)
    body += bytes([len(v6)]) + b"".join(ip.packed + struct.pack("!H", port) for ip, port in v6)
    return token_bytes(token) + bytes([PEER_LIST]) + body


def encode_frame(token, dst, src, marker):
    frame = dst + src + TEST_ETHERTYPE + marker.encode() + b"\0"
    return token_bytes(token) + bytes([FRAME]) + frame.ljust(64, b"\0")


def classify(data, token):
    """(kind, detail) for a datagram that is exactly one seed message; raises Violation."""
    if len(data) < HEADER:
        raise Violation("short")
    if data[:7] != token_bytes(token):
        raise Violation("wrong_token")
    switch = data[7]
    body = data[HEADER:]
    if switch == FRAME:
        if len(body) < ETH_MIN:
            raise Violation("frame_too_short")
        ethertype, offset, vid = body[12:14], 14, "none"
        if ethertype == TPID_8021Q:
            if len(body) < 18:
                raise Violation("truncated_vlan_tag")
            vid = str(struct.unpack("!H", body[14:16])[0] & 0x0FFF)
            ethertype, offset = body[16:18], 18
        if ethertype == TEST_ETHERTYPE:
            marker = body[offset:].split(b"\0")[0].decode(errors="replace") or "-"
            shown = data
        else:
            marker = "-"
            shown = data[:SHOWN_BYTES]
        detail = (f"dst={mac_text(body[0:6])} src={mac_text(body[6:12])} vid={vid} "
                  f"type={ethertype.hex()} marker={marker} hex={shown.hex()}")
        return "frame", detail
    if switch == PEER_LIST:
        if len(body) < 1:
            raise Violation("peerlist_no_n4")
        n4 = body[0]
        at = 1 + n4 * V4_ENTRY
        if len(body) < at:
            raise Violation("peerlist_truncated_v4")
        if len(body) == at:
            raise Violation("peerlist_no_n6")
        n6 = body[at]
        end = at + 1 + n6 * V6_ENTRY
        if len(body) < end:
            raise Violation("peerlist_truncated_v6")
        if len(body) != end:
            raise Violation("peerlist_trailing_bytes")
        v4 = []
        for i in range(n4):
            entry = body[1 + i * V4_ENTRY:1 + (i + 1) * V4_ENTRY]
            v4.append(f"{ipaddress.IPv4Address(entry[:4])}:{struct.unpack('!H', entry[4:])[0]}")
        v6 = []
        for i in range(n6):
            entry = body[at + 1 + i * V6_ENTRY:at + 1 + (i + 1) * V6_ENTRY]
            v6.append(f"[{ipaddress.IPv6Address(entry[:16])}]:{struct.unpack('!H', entry[16:])[0]}")
        return "peerlist", f"v4={','.join(v4)} v6={','.join(v6)}"
    if switch in (GET_PEER_LIST, CLOSE):
        if body:
            raise Violation(f"{KINDS[switch]}_trailing_bytes")
        return KINDS[switch], ""
    raise Violation(f"bad_switch_{switch:#04x}")


class Peer:
    """What the seed peer received, and how it answers."""

    def __init__(self, token, daemon, send, listed):
        self.token = token
        self.daemon = daemon
        self.send = send
        self.listed = listed
        self.counts = {"received": 0, "frame": 0, "peerlist": 0, "getpeers": 0, "close": 0,
                       "violations": 0, "bad_switch": 0}

    def handle(self, data, source):
        """Checks and counts one datagram, answers it; returns its kind or "violation"."""
        self.counts["received"] += 1
        try:
            if source != self.daemon:
                raise Violation("unexpected_source")
            kind, detail = classify(data, self.token)
        except Violation as why:
            self.counts["violations"] += 1
            if len(data) >= HEADER and data[7] > CLOSE:
                self.counts["bad_switch"] += 1
            print(f"violation {why} len={len(data)} from={source[0]}:{source[1]} "
                  f"hex={data[:SHOWN_BYTES].hex()}", flush=True)
            return "violation"
        self.counts[kind] += 1
        print(f"rx {kind} len={len(data)} {detail}".rstrip(), flush=True)
        if kind == "getpeers":
            self.send(encode_peer_list(self.token, self.listed))
        return kind

    def summary(self):
        c = self.counts
        return (f"summary received={c['received']} frames={c['frame']} "
                f"peerlists={c['peerlist']} getpeers={c['getpeers']} close={c['close']} "
                f"violations={c['violations']} bad_switch={c['bad_switch']}")


def run(bind_ip, port, token, daemon, mac, marker, listed, window, seconds, close_file):
    family = socket.AF_INET6 if ":" in bind_ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((bind_ip, int(port)))
    daemon_ip, daemon_port = parse_addr(daemon)
    daemon_addr = (daemon_ip, daemon_port)
    token = int(token)
    src = mac_bytes(mac)

    def send(message):
        sock.sendto(message, daemon_addr)

    peer = Peer(token, daemon_addr, send, [parse_addr(listed)])

    def stop(_signum, _frame):
        print(peer.summary(), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"ready bound={bind_ip}:{port}", flush=True)
    start = time.monotonic()
    deadline = start + float(seconds)
    window_end = start + float(window)
    window_told = False
    close_sent = False
    next_ask = next_keepalive = next_frame = start
    sent_frames = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if not window_told and now >= window_end:
            print("window-over", flush=True)
            window_told = True
        if window_told and not close_sent and os.path.exists(close_file):
            # Then, once the test says so, it says Close, as a seed node that stops does, and
            # goes on as if it had started again: a node that asks it for its list gets one.
            send(token_bytes(token) + bytes([CLOSE]))
            print("sent-close", flush=True)
            close_sent = True
        if peer.counts["peerlist"] == 0 and now >= next_ask:
            send(token_bytes(token) + bytes([GET_PEER_LIST]))
            next_ask = now + 1.0
        if now >= next_keepalive:
            send(encode_peer_list(token, []))
            next_keepalive = now + 2.0
        if now >= next_frame:
            sent_frames += 1
            send(encode_frame(token, BROADCAST, src, f"{marker}-{sent_frames}"))
            next_frame = now + 1.0
        wake = min(deadline, next_keepalive, next_frame)
        if peer.counts["peerlist"] == 0:
            wake = min(wake, next_ask)
        if not window_told:
            wake = min(wake, window_end)
        sock.settimeout(max(0.01, wake - now))
        try:
            data, source = sock.recvfrom(65535)
        except socket.timeout:
            continue
        if peer.handle(data, source[:2]) == "close":
            break
    print(peer.summary(), flush=True)


def watch(bind_ip, port, token, daemon, seconds):
    family = socket.AF_INET6 if ":" in bind_ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((bind_ip, int(port)))
    peer = Peer(int(token), parse_addr(daemon), lambda _message: None, [])

    def stop(_signum, _frame):
        print(peer.summary(), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"ready bound={bind_ip}:{port}", flush=True)
    deadline = time.monotonic() + float(seconds)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            data, source = sock.recvfrom(65535)
        except socket.timeout:
            break
        peer.handle(data, source[:2])
    print(peer.summary(), flush=True)


def selftest():
    token = 134
    daemon = ("198.18.0.1", 3210)
    sent = []
    peer = Peer(token, daemon, sent.append, [("198.18.0.99", 3210)])
    frame = encode_frame(token, BROADCAST, mac_bytes("02:ec:00:00:00:01"), "selftest")
    tagged = frame[:HEADER + 12] + TPID_8021Q + b"\x00\x0a" + frame[HEADER + 12:HEADER + 60]
    good = [
        ("get peer list (man page)", bytes.fromhex("0000000000008602"), "getpeers"),
        ("close", bytes.fromhex("0000000000008603"), "close"),
        ("empty peer list (man page)", bytes.fromhex("00000000000086010000"), "peerlist"),
        ("peer list v4+v6 (man page)", bytes.fromhex(
            "0000000000008601" "01" "c6120001" "0c8a" "01"
            "fd000000000000000000000000000002" "0c8a"), "peerlist"),
        ("broadcast test frame", frame, "frame"),
        ("bare 14-byte frame", token_bytes(token) + b"\0" + BROADCAST * 2 + b"\x08\x06",
         "frame"),
        ("tagged test frame", tagged, "frame"),
    ]
    bad = [
        ("7 bytes", bytes.fromhex("00000000000086"), "short"),
        ("wrong token", bytes.fromhex("0000000000008702"), "wrong_token"),
        ("Hello 0x10", bytes.fromhex("00000000000086100105"), "bad_switch_0x10"),
        ("RelayTo 0x11", token_bytes(token) + b"\x11\x04\xc6\x12\x00\x02\x0c\x8a" + frame[8:],
         "bad_switch_0x11"),
        ("RelayedFrom 0x12", token_bytes(token) + b"\x12" + frame[8:], "bad_switch_0x12"),
        ("switch 4", bytes.fromhex("0000000000008604"), "bad_switch_0x04"),
        ("frame of 13 bytes", frame[:HEADER + 13], "frame_too_short"),
        ("tagged frame of 17 bytes", tagged[:HEADER + 17], "truncated_vlan_tag"),
        ("close with 2 trailing bytes (man page)", bytes.fromhex("0000000000008603abcd"),
         "close_trailing_bytes"),
        ("get peer list with a trailing byte", bytes.fromhex("000000000000860200"),
         "getpeers_trailing_bytes"),
        ("peer list without n6", bytes.fromhex("000000000000860100"), "peerlist_no_n6"),
        ("peer list n4=1, 5 entry bytes", bytes.fromhex("000000000000860101c61200010c"),
         "peerlist_truncated_v4"),
        ("peer list n6=1, no entry", bytes.fromhex("00000000000086010001"),
         "peerlist_truncated_v6"),
        ("peer list with a trailing byte", bytes.fromhex("0000000000008601000000"),
         "peerlist_trailing_bytes"),
    ]
    failures = []
    checks = 0
    for name, data, want in good:
        checks += 1
        got = peer.handle(data, daemon)
        if got != want:
            failures.append(f"{name}: got {got}, want {want}")
    for name, data, want in bad:
        checks += 1
        try:
            classify(data, token)
            failures.append(f"{name}: accepted, want violation {want}")
        except Violation as why:
            if str(why) != want:
                failures.append(f"{name}: violation {why}, want {want}")
        if peer.handle(data, daemon) != "violation":
            failures.append(f"{name}: handle() did not count a violation")
    checks += 1
    if peer.handle(bytes.fromhex("0000000000008602"), ("198.18.0.3", 3210)) != "violation":
        failures.append("a datagram from another address was not a violation")
    # The counters the summary line reports.
    want = {"received": len(good) + len(bad) + 1, "frame": 3, "peerlist": 2, "getpeers": 1,
            "close": 1, "violations": len(bad) + 1, "bad_switch": 4}
    checks += 1
    if peer.counts != want:
        failures.append(f"counts {peer.counts}, want {want}")
    # The answer to the one good get peer list: a peer list naming 198.18.0.99:3210.
    checks += 1
    answer = bytes.fromhex("0000000000008601" "01" "c6120063" "0c8a" "00")
    if sent != [answer]:
        failures.append(f"answers {[s.hex() for s in sent]}, want [{answer.hex()}]")
    checks += 1
    if token_bytes(0x02030405060708) != bytes.fromhex("02030405060708") or \
            token_bytes((1 << 56) - 1) != b"\xff" * 7:
        failures.append("token encoding")
    print(peer.summary(), flush=True)
    if failures:
        for failure in failures:
            print(f"selftest FAILED: {failure}", flush=True)
        sys.exit(1)
    print(f"selftest ok checks={checks}", flush=True)


def main(argv):
    if len(argv) == 12 and argv[1] == "run":
        run(*argv[2:])
    elif len(argv) == 7 and argv[1] == "watch":
        watch(*argv[2:])
    elif len(argv) == 2 and argv[1] == "selftest":
        selftest()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
