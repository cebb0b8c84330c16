#!/usr/bin/env python3
"""Send or capture raw Ethernet frames on an interface (AF_PACKET), for tests/e2e_netns.rs.

    rawframe.py send IFACE DST_MAC SRC_MAC VID|none MARKER
    rawframe.py capture IFACE SECONDS
    rawframe.py udpsums IFACE PORT SECONDS

Test frames carry EtherType 0x88b5 (IEEE local experimental) and a text marker as payload.
`send` writes one frame, with an 802.1Q tag (TPID 0x8100) unless VID is `none`.
`capture` prints `ready`, then one line per received test frame until SECONDS have passed:

    frame MARKER vid=VID|none src=SRC dst=DST

The kernel may move a received 802.1Q tag out of the bytes into packet metadata, so the tag
is read from PACKET_AUXDATA (tp_vlan_tci, TP_STATUS_VLAN_VALID) as well as from the bytes.

`udpsums` prints `ready`, then, for each IPv4 UDP datagram IFACE receives from port PORT
until SECONDS have passed, its switch byte (the byte after the 7-byte token) and its UDP
checksum (0: none):

    switch=SWITCH checksum=CHECKSUM
"""

import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
IPPROTO_UDP = 17
TEST_ETHERTYPE = b"\x88\xb5"
TPID_8021Q = b"\x81\x00"
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_VLAN_VALID = 1 << 4
PACKET_OUTGOING = 4
AUXDATA_LEN = 20  # struct tpacket_auxdata: u32 x3, u16 x4


def mac_bytes(text):
    return bytes(int(part, 16) for part in text.split(":"))


def mac_text(raw):
    return ":".join(f"{b:02x}" for b in raw)


def send(iface, dst, src, vid, marker):
    frame = mac_bytes(dst) + mac_bytes(src)
    if vid != "none":
        frame += TPID_8021Q + struct.pack("!H", int(vid) & 0x0FFF)
    frame += TEST_ETHERTYPE + marker.encode() + b"\0"
    frame = frame.ljust(64, b"\0")
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, 0))
        sock.send(frame)


def received(sock, seconds):
    """What `sock` receives for `seconds`: (data, ancillary, flags, addr) each."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sock.settimeout(left)
        try:
            got = sock.recvmsg(65535, socket.CMSG_SPACE(AUXDATA_LEN))
        except socket.timeout:
            return
        yield got


def capture(iface, seconds):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    print("ready", flush=True)
    for data, ancillary, _flags, addr in received(sock, seconds):
        if addr[2] == PACKET_OUTGOING or len(data) < 14:
            continue
        vid = None
        for level, kind, cdata in ancillary:
            if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= AUXDATA_LEN:
                status, _, _, _, _, tci, _tpid = struct.unpack("IIIHHHH", cdata[:AUXDATA_LEN])
                if status & TP_STATUS_VLAN_VALID:
                    vid = tci & 0x0FFF
        ethertype, offset = data[12:14], 14
        if ethertype == TPID_8021Q and len(data) >= 18:
            vid = struct.unpack("!H", data[14:16])[0] & 0x0FFF
            ethertype, offset = data[16:18], 18
        if ethertype != TEST_ETHERTYPE:
            continue
        marker = data[offset:].split(b"\0")[0].decode(errors="replace")
        shown = "none" if vid is None else str(vid)
        print(f"frame {marker} vid={shown} src={mac_text(data[6:12])} dst={mac_text(data[0:6])}",
              flush=True)


def udpsums(iface, port, seconds):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sock.bind((iface, 0))
    print("ready", flush=True)
    for data, _ancillary, _flags, addr in received(sock, seconds):
        if addr[2] == PACKET_OUTGOING or len(data) < 20 or data[9] != IPPROTO_UDP:
            continue
        ihl = (data[0] & 15) * 4
        if len(data) < ihl + 16:
            continue
        sport, _dport, _length, checksum = struct.unpack("!HHHH", data[ihl:ihl + 8])
        if sport == port:
            print(f"switch={data[ihl + 15]} checksum={checksum}", flush=True)


def main(argv):
    if len(argv) == 7 and argv[1] == "send":
        send(*argv[2:])
    elif len(argv) == 4 and argv[1] == "capture":
        capture(argv[2], float(argv[3]))
    elif len(argv) == 5 and argv[1] == "udpsums":
        udpsums(argv[2], int(argv[3]), float(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
