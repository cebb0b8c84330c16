#!/usr/bin/env python3
"""Abuse traffic for the hardening tests (tests/e2e_hardening.rs). Bounded: every mode sends a
fixed count and returns.

    flood.py frames IFACE COUNT
        COUNT Ethernet frames out of IFACE (AF_PACKET), each with a fresh random unicast source
        MAC and one fixed unknown unicast destination, 60-byte payload.
    flood.py datagrams TARGET_IP PORT TOKEN COUNT SRC_IP [SRC_IP ...]
        COUNT UDP datagrams to TARGET_IP:PORT, round-robin from sockets bound to each SRC_IP
        (a fresh source port per socket), each starting with the 7-byte big-endian TOKEN, then
        a switch byte 0..4 and a random body of 0..1500 random bytes.
    flood.py getpeers TARGET_IP PORT TOKEN COUNT SRC_IP
        COUNT "get peer list" messages from one fresh socket on SRC_IP, then listens 2 s and
        prints `sent=BYTES received=BYTES replies=N`.

    flood.py sniff IFACE SECONDS HEXPATTERN
        Prints `ready`, then captures for SECONDS and prints `udp=N matches=M`: how many
        IPv4 UDP packets to or from port 3210 it saw, and how many contained the pattern.

Prints one summary line; exits 0.
"""

import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def frames(iface, count):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    frame = bytearray(b"\x02\xee\xee\xee\xee\x01" + b"\x00" * 6 + b"\x88\xb5" + b"flood" * 12)
    rand = os.urandom(6 * count)
    sent = 0
    errors = 0
    for i in range(count):
        src = bytearray(rand[6 * i : 6 * i + 6])
        src[0] = (src[0] & 0xFC) | 0x02  # unicast, locally administered
        frame[6:12] = src
        try:
            s.send(frame)
            sent += 1
        except OSError:
            errors += 1  # tap queue full: the kernel drops, we go on
    print(f"frames sent={sent} errors={errors}")


def datagrams(target, port, token, count, sources):
    socks = []
    for src in sources:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append(s)
    head = struct.pack(">Q", token)[1:]
    rng = random.Random(0xE7C1)
    sent = 0
    errors = 0
    for i in range(count):
        body = os.urandom(rng.randrange(0, 1501))
        packet = head + bytes([rng.randrange(0, 5)]) + body
        try:
            socks[i % len(socks)].sendto(packet, (target, port))
            sent += 1
        except OSError:
            errors += 1
            time.sleep(0.0005)
    print(f"datagrams sent={sent} errors={errors}")


def getpeers(target, port, token, count, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    request = struct.pack(">Q", token)[1:] + b"\x02"
    for _ in range(count):
        s.sendto(request, (target, port))
    received = 0
    replies = 0
    s.settimeout(0.2)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            data, _ = s.recvfrom(65536)
        except socket.timeout:
            continue
        received += len(data)
        replies += 1
    print(f"sent={count * len(request)} received={received} replies={replies}")


def sniff(iface, seconds, pattern):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(0.2)
    print("ready", flush=True)
    udp = matches = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if len(data) < 42 or data[12:14] != b"\x08\x00" or data[23] != 17:
            continue
        ihl = (data[14] & 0x0F) * 4
        sport, dport = struct.unpack(">HH", data[14 + ihl : 18 + ihl])
        if 3210 not in (sport, dport):
            continue
        udp += 1
        if pattern in data[14 + ihl + 8 :]:
            matches += 1
    print(f"udp={udp} matches={matches}", flush=True)


def main(argv):
    mode = argv[1]
    if mode == "frames":
        frames(argv[2], int(argv[3]))
    elif mode == "datagrams":
        datagrams(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6:])
    elif mode == "sniff":
        sniff(argv[2], float(argv[3]), bytes.fromhex(argv[4]))
    elif mode == "getpeers":
        getpeers(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), argv[6])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
