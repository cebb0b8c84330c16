"""Many UDP flows at once, each numbered, to check that every flow arrives whole and in order.

receive PORT FLOWS COUNT TIMEOUT: prints "listening", then "flows ok" once COUNT datagrams of
each of FLOWS flows arrived, each flow's in order; "reordered ..." / "timeout ..." otherwise.
send HOST PORT FLOWS COUNT: FLOWS sockets (one source port each) send COUNT datagrams each,
round-robin, paced (a short pause after each round).
"""
import socket
import sys
import time


def receive(port, flows, count, timeout):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.settimeout(0.5)
    print("listening", flush=True)
    nxt = {}
    done = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            continue
        flow, seq = (int(x) for x in data.split(b" ")[:2])
        expected = nxt.get(flow, 0)
        if seq != expected:
            print(f"reordered or lost: flow {flow} got {seq}, expected {expected}", flush=True)
            return 1
        nxt[flow] = seq + 1
        if seq + 1 == count:
            done += 1
            if done == flows:
                print("flows ok", flush=True)
                return 0
    print(f"timeout: {done} of {flows} flows complete: {sorted(nxt.items())}", flush=True)
    return 1


def send(host, port, flows, count):
    socks = []
    for _ in range(flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        socks.append(s)
    for seq in range(count):
        for flow, s in enumerate(socks):
            s.sendto(f"{flow} {seq} ".encode() + b"x" * 100, (host, port))
        time.sleep(0.002)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "receive":
        sys.exit(receive(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])))
    sys.exit(send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
