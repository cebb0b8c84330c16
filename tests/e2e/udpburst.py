#!/usr/bin/env python3
"""Numbered UDP datagrams for the end-to-end tests (python3 standard library only).

  udpburst.py receive PORT SECONDS COUNT:SIZE[,COUNT:SIZE...]
      Binds [::]:PORT (IPv4 too) and expects the bursts in that order: datagram n carries
      n (4 bytes, big-endian) and then SIZE - 4 bytes derived from n. Prints "burst K ok"
      after each whole burst and "done" after the last; on a datagram out of order or
      changed prints "error: ..." and exits 1; at the deadline prints "timeout at N" and
      exits 2.
  udpburst.py send HOST PORT FIRST COUNT SIZE
      Sends datagrams FIRST .. FIRST+COUNT-1 of SIZE bytes to HOST:PORT, back to back.
"""
import socket
import sys
import time


def datagram(n, size):
    body = bytes((n * 7 + i) % 251 for i in range(size - 4))
    return n.to_bytes(4, "big") + body


def receive(port, seconds, spec):
    bursts = [tuple(int(x) for x in b.split(":")) for b in spec.split(",")]
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("::", port))
    print("listening", flush=True)
    deadline = time.monotonic() + seconds
    n = 0
    for k, (count, size) in enumerate(bursts):
        for _ in range(count):
            left = deadline - time.monotonic()
            if left <= 0:
                print(f"timeout at {n}", flush=True)
                sys.exit(2)
            s.settimeout(left)
            try:
                got = s.recv(65536)
            except socket.timeout:
                print(f"timeout at {n}", flush=True)
                sys.exit(2)
            want = datagram(n, size)
            if got != want:
                seq = int.from_bytes(got[:4], "big") if len(got) >= 4 else None
                print(f"error: expected datagram {n} of {size} bytes, got {len(got)} bytes "
                      f"numbered {seq}", flush=True)
                sys.exit(1)
            n += 1
        print(f"burst {k} ok", flush=True)
    print("done", flush=True)


def send(host, port, first, count, size):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    for n in range(first, first + count):
        s.sendto(datagram(n, size), (host, port))


if __name__ == "__main__":
    if sys.argv[1] == "receive":
        receive(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        send(sys.argv[2], int(sys.argv[3]), *(int(x) for x in sys.argv[4:7]))
