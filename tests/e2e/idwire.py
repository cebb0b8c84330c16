#!/usr/bin/env python3
"""Underlay and tap captures for the identity-mode tests (tests/e2e_identity.rs), on raw
AF_PACKET sockets. Bounded: every mode returns after its SECONDS (or one frame).

    idwire.py watch IFACE SECONDS PORT
        Prints `ready`, captures for SECONDS and prints
        `in_from_port=N out_initiations=M out_to_port=K in_sources=ADDR,ADDR`: the UDP
        packets (IPv4 or IPv6) that arrived from source port PORT, the handshake initiations
        (136 bytes, type byte 0x90 after the 7-byte token; several in one packet when the
        sender used UDP GSO) sent to port PORT, every packet sent to port PORT, and the source
        addresses of what arrived.
    idwire.py grab IFACE SECONDS PORT MINLEN OUTFILE
        Prints `ready`, then waits up to SECONDS for the first arriving IPv4 UDP datagram from
        source port PORT that is sealed (byte 0x80 to 0x84 after the token) with a UDP payload
        of at least MINLEN bytes; writes the whole Ethernet frame as hex to OUTFILE and prints
        `grabbed bytes=N marker=0xMM session=HEX` (or `grabbed none`).
    idwire.py inject IFACE HEXFILE
        Sends the Ethernet frame in HEXFILE out of IFACE, its UDP checksum recomputed (a frame
        captured on a veth may carry a partial, offloaded checksum); prints `injected bytes=N`.
    idwire.py match IFACE SECONDS HEXPATTERN
        Prints `ready`, then `match` for each arriving frame that contains HEXPATTERN, until
        SECONDS have passed; then `done matches=N`.
"""

import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
TOKEN_LEN = 7


def raw(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    return s


def udp_of(data):
    """(src_ip, sport, dport, payload, ip_offset) of an IPv4/IPv6 UDP frame, or None."""
    if len(data) < 14:
        return None
    ethertype = data[12:14]
    if ethertype == b"\x08\x00" and len(data) >= 34 and data[23] == 17:
        ihl = (data[14] & 0x0F) * 4
        at = 14 + ihl
        if len(data) < at + 8:
            return None
        sport, dport = struct.unpack(">HH", data[at : at + 4])
        total = struct.unpack(">H", data[16:18])[0]
        src = socket.inet_ntop(socket.AF_INET, data[26:30])
        return src, sport, dport, data[at + 8 : 14 + total], 14
    if ethertype == b"\x86\xdd" and len(data) >= 62 and data[20] == 17:
        at = 54
        sport, dport = struct.unpack(">HH", data[at : at + 4])
        total = struct.unpack(">H", data[18:20])[0]
        src = socket.inet_ntop(socket.AF_INET6, data[22:38])
        return src, sport, dport, data[at + 8 : 54 + total], 14
    return None


def frames(sock, seconds):
    """Yields (data, outgoing) until SECONDS have passed."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sock.settimeout(min(left, 0.2))
        try:
            data, addr = sock.recvfrom(65535)
        except socket.timeout:
            continue
        yield data, addr[2] == PACKET_OUTGOING


def initiations_in(payload):
    """Handshake initiations in a UDP payload. A sender using UDP GSO hands the kernel several
    datagrams of one size at once, and a capture on the sending side sees them as one packet:
    the payloads back to back (the UDP length field is not the segments')."""
    if not payload or len(payload) % 136:
        return 0
    chunks = [payload[i : i + 136] for i in range(0, len(payload), 136)]
    if all(c[TOKEN_LEN] == 0x90 for c in chunks):
        return len(chunks)
    return 0


def watch(iface, seconds, port):
    sock = raw(iface)
    print("ready", flush=True)
    arrived = initiations = sent = 0
    sources = set()
    for data, outgoing in frames(sock, seconds):
        udp = udp_of(data)
        if udp is None:
            continue
        src, sport, dport, payload, _ = udp
        if outgoing and dport == port:
            sent += 1
            initiations += initiations_in(payload)
        elif not outgoing and sport == port:
            arrived += 1
            sources.add(src)
    print(
        f"in_from_port={arrived} out_initiations={initiations} out_to_port={sent} "
        f"in_sources={','.join(sorted(sources)) or '-'}",
        flush=True,
    )


def grab(iface, seconds, port, minlen, outfile):
    sock = raw(iface)
    print("ready", flush=True)
    for data, outgoing in frames(sock, seconds):
        udp = udp_of(data)
        if outgoing or udp is None or data[12:14] != b"\x08\x00":
            continue
        _, sport, _, payload, _ = udp
        if sport != port or len(payload) < max(minlen, TOKEN_LEN + 17):
            continue
        marker = payload[TOKEN_LEN]
        if marker not in (0x80, 0x81, 0x82, 0x83, 0x84):
            continue
        total = struct.unpack(">H", data[16:18])[0]
        frame = data[: 14 + total]
        with open(outfile, "w") as f:
            f.write(frame.hex())
        session = payload[TOKEN_LEN + 1 : TOKEN_LEN + 17].hex()
        print(f"grabbed bytes={len(frame)} marker={marker:#04x} session={session}", flush=True)
        return
    print("grabbed none", flush=True)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def inject(iface, hexfile):
    with open(hexfile) as f:
        frame = bytearray(bytes.fromhex(f.read().strip()))
    ihl = (frame[14] & 0x0F) * 4
    at = 14 + ihl
    ulen = struct.unpack(">H", frame[at + 4 : at + 6])[0]
    frame[at + 6 : at + 8] = b"\0\0"
    pseudo = bytes(frame[26:34]) + struct.pack(">BBH", 0, 17, ulen)
    value = checksum(pseudo + bytes(frame[at : at + ulen])) or 0xFFFF
    frame[at + 6 : at + 8] = struct.pack(">H", value)
    with raw(iface) as sock:
        sock.send(bytes(frame))
    print(f"injected bytes={len(frame)}", flush=True)


def match(iface, seconds, pattern):
    sock = raw(iface)
    print("ready", flush=True)
    matches = 0
    for data, outgoing in frames(sock, seconds):
        if not outgoing and pattern in data:
            matches += 1
            print("match", flush=True)
    print(f"done matches={matches}", flush=True)


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "watch" and len(argv) == 5:
        watch(argv[2], float(argv[3]), int(argv[4]))
    elif mode == "grab" and len(argv) == 7:
        grab(argv[2], float(argv[3]), int(argv[4]), int(argv[5]), argv[6])
    elif mode == "inject" and len(argv) == 4:
        inject(argv[2], argv[3])
    elif mode == "match" and len(argv) == 5:
        match(argv[2], float(argv[3]), bytes.fromhex(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
