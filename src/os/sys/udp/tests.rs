//! Unit tests of the UDP socket as a whole: address families and translation, dual-stack
//! traffic on loopback, batched sends with and without the offloads, and counting refused
//! datagrams, and the kernel's drop counter.

use std::io;
use std::net::SocketAddr;

use super::*;
use crate::error::Error;
use crate::io::Socket;
use crate::sys::testing::{in_own_netns, run};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn families_follow_the_listen_address() {
    let both = Families {
        ipv4: true,
        ipv6: true,
    };
    assert_eq!(Families::of(&addr("[::]:3210")), both);
    assert!(!Families::of(&addr("0.0.0.0:3210")).ipv6);
    assert!(!Families::of(&addr("[fd00::1]:3210")).ipv4);
    assert!(!Families::of(&addr("[::ffff:198.18.0.1]:3210")).ipv6);
}

#[test]
fn unmap_turns_v4_mapped_into_plain_ipv4() {
    assert_eq!(unmap(addr("[::ffff:198.18.0.1]:7")), addr("198.18.0.1:7"));
    assert_eq!(unmap(addr("[fd00::1]:7")), addr("[fd00::1]:7"));
    assert_eq!(unmap(addr("198.18.0.1:7")), addr("198.18.0.1:7"));
}

#[test]
fn dual_stack_socket_talks_to_ipv4_and_reports_plain_ipv4_senders() {
    let mut v6 = UdpSocket::bind(addr("[::]:0")).unwrap();
    let mut v4 = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    let v6_port = v6.local_addr().unwrap().port();
    let v4_addr = v4.local_addr().unwrap();
    assert_eq!(v4_addr.ip().to_string(), "127.0.0.1");

    v6.send_to(b"ping", v4_addr).unwrap();
    let mut buf = [0u8; 16];
    let (len, from) = recv_blocking(&mut v4, &mut buf);
    assert_eq!(&buf[..len], b"ping");
    assert_eq!(from, addr(&format!("127.0.0.1:{v6_port}")));

    v4.send_to(b"pong", addr(&format!("127.0.0.1:{v6_port}")))
        .unwrap();
    let (len, from) = recv_blocking(&mut v6, &mut buf);
    assert_eq!(&buf[..len], b"pong");
    assert_eq!(
        from, v4_addr,
        "v4-mapped sender must come back as plain IPv4"
    );
}

#[test]
fn empty_socket_reports_would_block() {
    let mut socket = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    let err = socket.recv_from(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn receive_drops_count_datagrams_that_found_the_buffer_full() {
    let receiver = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    assert_eq!(receiver.receive_drops().unwrap(), 0);
    let to = receiver.local_addr().unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Nobody reads: each 1-byte datagram costs the buffer far more than a byte (its skb), so
    // even a 4 MiB buffer overflows long before 100 000 of them.
    let mut sent = 0u64;
    for _ in 0..100_000 {
        if sender.send_to(&[0x55], to).is_ok() {
            sent += 1;
        }
        if sent % 1000 == 0 && receiver.receive_drops().unwrap() > 0 {
            break;
        }
    }
    let drops = u64::from(receiver.receive_drops().unwrap());
    assert!(drops > 0 && drops <= sent, "{drops} drops of {sent}");
}

#[test]
fn a_32_bit_counter_read_now_and_then_keeps_growing_past_its_wrap() {
    let mut count = Widened::default();
    assert_eq!(count.update(0xffff_fff0), 0xffff_fff0);
    assert_eq!(count.update(0xffff_fff8), 0xffff_fff8);
    // The kernel's counter wrapped: the total goes on.
    assert_eq!(count.update(0x10), 0x1_0000_0010);
    assert_eq!(count.update(0x10), 0x1_0000_0010);
    assert_eq!(count.update(0x20), 0x1_0000_0020);
}

#[test]
fn bind_to_foreign_address_fails_with_context() {
    let err = UdpSocket::bind(addr("198.18.255.254:3210")).unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err}");
}

/// Receives with `recv_batch` until `count` datagrams arrived (cut by segment size).
fn recv_datagrams(socket: &mut UdpSocket, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
    recv_datagrams_into(socket, &mut RecvBatch::new(), count)
}

/// [`recv_datagrams`] through `batch`.
fn recv_datagrams_into(
    socket: &mut UdpSocket,
    batch: &mut RecvBatch,
    count: usize,
) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut got = Vec::new();
    for _ in 0..1000 {
        match socket.recv_batch(batch) {
            Ok(n) => {
                for i in 0..n {
                    let (from, bytes, segment_len) = batch.get(i).unwrap();
                    for d in bytes.chunks(segment_len) {
                        got.push((from, d.to_vec()));
                    }
                }
                if got.len() >= count {
                    return got;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => panic!("recv_batch failed: {e}"),
        }
    }
    panic!("only {} of {count} datagrams within a second", got.len());
}

#[test]
fn batched_sends_with_gso_arrive_as_the_same_datagrams_with_and_without_gro() {
    let mut tx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    tx.enable_batching();
    let offloads = tx.enable_offloads();
    let mut with_gro = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    with_gro.enable_offloads();
    let mut without = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    let from = tx.local_addr().unwrap();
    let mut want = Vec::new();
    for i in 0..10u8 {
        want.push(vec![i; 1000]);
    }
    want.push(vec![10; 333]);
    for rx in [&mut with_gro, &mut without] {
        let to = rx.local_addr().unwrap();
        for d in &want {
            tx.send_to(d, to).unwrap();
        }
        assert_eq!(tx.queued(), want.len(), "{offloads}");
        tx.flush().unwrap();
        assert_eq!(tx.queued(), 0);
        let got = recv_datagrams(rx, want.len());
        assert_eq!(got.len(), want.len());
        for ((f, d), w) in got.iter().zip(&want) {
            assert_eq!(*f, from);
            assert_eq!(d, w);
        }
    }
}

#[test]
fn a_socket_and_its_receive_batch_may_move_to_another_thread() {
    // The kept message headers hold raw pointers; a worker thread must still be able to own
    // a socket and its batch (checked at compile time, and used once).
    fn is_send<T: Send>(_: &T) {}
    let mut tx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    tx.enable_batching();
    let batch = RecvBatch::new();
    is_send(&tx);
    is_send(&batch);
    let rx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    let to = rx.local_addr().unwrap();
    let worker = std::thread::spawn(move || {
        let (mut rx, mut batch) = (rx, batch);
        recv_datagrams_into(&mut rx, &mut batch, 1)
    });
    tx.send_to(&[7u8; 50], to).unwrap();
    tx.flush().unwrap();
    let got = worker.join().unwrap();
    assert_eq!(got, vec![(tx.local_addr().unwrap(), vec![7u8; 50])]);
}

#[test]
fn a_flush_after_a_gso_run_sends_its_lone_datagram_whole() {
    // The message headers are kept between flushes: a lone datagram after a GSO run must
    // not go out with the run's segment size (it would arrive cut in three).
    let mut tx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    tx.enable_batching();
    tx.enable_offloads();
    let mut rx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    let to = rx.local_addr().unwrap();
    let run: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100]).collect();
    for d in &run {
        tx.send_to(d, to).unwrap();
    }
    tx.flush().unwrap();
    let lone = vec![9u8; 300];
    tx.send_to(&lone, to).unwrap();
    tx.flush().unwrap();
    let got = recv_datagrams(&mut rx, run.len() + 1);
    let sizes: Vec<usize> = got.iter().map(|(_, d)| d.len()).collect();
    assert_eq!(sizes, [100, 100, 100, 100, 100, 300]);
    assert_eq!(got[5].1, lone);
}

#[test]
fn flush_counts_datagrams_the_kernel_refuses() {
    let mut tx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    tx.enable_batching();
    // Port 0 cannot be sent to: every datagram fails, and the flush says how many.
    for len in [1, 20, 300] {
        tx.send_to(&vec![7; len], addr("127.0.0.1:0")).unwrap();
    }
    let err = tx.flush().unwrap_err();
    assert_eq!((err.dropped, err.dropped_bytes), (3, 321), "{}", err.error);
    assert_eq!(err.would_block, 0, "refused, not for want of room");
    // ... and to whom, for the peers' counters.
    let mut failed = Vec::new();
    tx.drain_failed(&mut |to, datagrams, bytes| failed.push((to, datagrams, bytes)));
    let to = addr("127.0.0.1:0");
    assert_eq!(failed, [(to, 1, 1), (to, 1, 20), (to, 1, 300)]);
    assert!(tx.flush().is_ok(), "the failure is reported once");
    tx.drain_failed(&mut |to, _, _| panic!("{to} again"));
    // More than the queue holds between two flushes: the queue sends (and fails) on its own
    // on the way; every failure is still there for the flush's caller.
    for _ in 0..SEND_QUEUE_DATAGRAMS + 1 {
        tx.send_to(&[7; 10], to).unwrap();
    }
    let err = tx.flush().unwrap_err();
    assert_eq!(err.dropped, SEND_QUEUE_DATAGRAMS as u64 + 1);
    let mut datagrams = 0;
    tx.drain_failed(&mut |_, n, _| datagrams += n);
    assert_eq!(
        datagrams, SEND_QUEUE_DATAGRAMS as u64,
        "recorded up to the reserved room"
    );
}

fn recv_blocking(socket: &mut UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    for _ in 0..1000 {
        match socket.recv_from(buf) {
            Ok(r) => return r,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => panic!("recv failed: {e}"),
        }
    }
    panic!("nothing received within a second");
}

/// In a network namespace of its own (call it inside `in_own_netns`): a loopback with an MTU
/// of 1300, over which every GSO run of 1400-byte datagrams is refused; a sender with GSO on,
/// a receiver and its address. `None` where the kernel refuses UDP GSO altogether.
fn gso_refusing_loopback() -> Option<(UdpSocket, UdpSocket, SocketAddr)> {
    run("ip link set lo mtu 1300 up");
    let mut tx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    tx.enable_batching();
    if !tx.enable_offloads().gso {
        return None;
    }
    let rx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    let to = rx.local_addr().unwrap();
    Some((tx, rx, to))
}

#[test]
#[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
fn a_gso_run_the_kernel_refuses_goes_out_datagram_by_datagram_and_gso_stays_on() {
    // In a network namespace of its own whose loopback has an MTU of 1300, a run of
    // 1400-byte datagrams is refused as GSO (each segment above the path MTU) and sent one
    // by one (fragmented); GSO stays on, since the reason is that destination's.
    let result = in_own_netns(|| {
        let (mut tx, mut rx, to) = gso_refusing_loopback()?;
        let want: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1400]).collect();
        for round in 0..2 {
            for d in &want {
                tx.send_to(d, to).unwrap();
            }
            let flushed = tx.flush();
            assert!(flushed.is_ok(), "round {round}: {flushed:?}");
        }
        let got = recv_datagrams(&mut rx, 2 * want.len());
        Some((got, want, tx.offloads().gso))
    });
    let Some((got, want, gso)) = result else {
        crate::sys::testing::skip("the kernel refuses UDP GSO");
        return;
    };
    let data: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
    assert_eq!(data, [want.clone(), want].concat());
    assert!(
        gso,
        "GSO turned off for every destination by one destination's refusal"
    );
}

/// Queues `runs` runs of two datagrams to `to`, 1400 and 1500 bytes long in turn (a larger
/// datagram starts a new GSO run); returns how many datagrams.
fn queue_short_runs(tx: &mut UdpSocket, to: SocketAddr, runs: usize) -> usize {
    for i in 0..runs {
        let len = 1400 + 100 * (i % 2);
        for _ in 0..2 {
            tx.send_to(&vec![(i % 251) as u8; len], to).unwrap();
        }
    }
    2 * runs
}

#[test]
#[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
fn gso_pauses_at_once_within_the_flush_that_reaches_the_limit() {
    // As above (loopback MTU 1300: every GSO run refused), one flush holds many short runs
    // (1400, 1400, then 1500, 1500, ...: a larger datagram starts a new run). The refusal that
    // reaches the limit pauses GSO for the rest of that flush too: no run after it is tried
    // as GSO (and refused, and logged again), and every datagram still arrives.
    const RUNS: usize = 3 * super::send::GSO_REFUSALS_BEFORE_PAUSE as usize;
    let result = in_own_netns(|| {
        let (mut tx, mut rx, to) = gso_refusing_loopback()?;
        let sent = queue_short_runs(&mut tx, to, RUNS);
        let flushed = tx.flush();
        assert!(flushed.is_ok(), "{flushed:?}");
        let refusals = tx.gso_refusals();
        let got = recv_datagrams(&mut rx, sent);
        Some((refusals, got.len(), sent))
    });
    let Some((refusals, got, sent)) = result else {
        crate::sys::testing::skip("the kernel refuses UDP GSO");
        return;
    };
    assert_eq!(
        refusals,
        super::send::GSO_REFUSALS_BEFORE_PAUSE,
        "GSO runs tried after the pause began"
    );
    assert_eq!(got, sent);
}

#[test]
#[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
fn gso_refused_again_after_a_pause_pauses_twice_as_long_without_an_info_line() {
    // Every GSO run refused (as above), for good: an underlay without checksum offload, an
    // MTU below the segments. The first pause is logged at info and lasts GSO_PAUSE; once it
    // ends and GSO is refused as often again, the next pause is not logged at info (it was,
    // every 10 s, for as long as the cause stayed) and lasts twice as long, and so on.
    use super::send::{GSO_PAUSE, GSO_REFUSALS_BEFORE_PAUSE};
    let result = in_own_netns(|| {
        let (mut tx, mut rx, to) = gso_refusing_loopback()?;
        let mut after = Vec::new();
        for _ in 0..3 {
            let sent = queue_short_runs(&mut tx, to, 2 * GSO_REFUSALS_BEFORE_PAUSE as usize);
            let flushed = tx.flush();
            assert!(flushed.is_ok(), "{flushed:?}");
            assert_eq!(recv_datagrams(&mut rx, sent).len(), sent);
            after.push(tx.end_gso_pause());
        }
        Some(after)
    });
    let Some(after) = result else {
        crate::sys::testing::skip("the kernel refuses UDP GSO");
        return;
    };
    assert_eq!(
        after,
        vec![(GSO_PAUSE * 2, 1), (GSO_PAUSE * 4, 1), (GSO_PAUSE * 8, 1)],
        "(the next pause's length, pauses logged at info) after each flush"
    );
}

#[test]
#[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
fn the_last_sends_wait_for_room_in_a_socket_buffer_a_flood_filled() {
    // In a network namespace of its own, datagrams to 198.18.5.2 leave through a veth whose
    // token bucket (10 Mb/s) holds them: the socket's buffer fills, and a send fails with
    // EAGAIN, as the Close messages at exit did after a flood. Made to wait, the last
    // datagram goes out.
    let flushed = in_own_netns(|| {
        run("ip link add v0 type veth peer name v1");
        run("ip addr add 198.18.5.1/24 dev v0");
        run("ip link set v0 up");
        run("ip link set v1 up");
        run("ip neigh add 198.18.5.2 lladdr 02:00:00:00:00:02 dev v0");
        run("tc qdisc add dev v0 root tbf rate 10mbit burst 10kb limit 100mb");
        let mut tx = UdpSocket::bind(addr("198.18.5.1:0")).unwrap();
        tx.enable_batching();
        let to = addr("198.18.5.2:9");
        let big = vec![0u8; 60_000];
        // Fill the buffer until a send fails; then a small datagram fails at once too (tried
        // again, boundedly, in the rare case that the bucket freed room just between).
        let mut refused = false;
        for _ in 0..5 {
            let mut full = false;
            for _ in 0..2_000 {
                tx.send_to(&big, to).unwrap();
                if let Err(e) = tx.flush() {
                    assert_eq!(e.error.kind(), io::ErrorKind::WouldBlock, "{e:?}");
                    assert_eq!(e.would_block, e.dropped, "{e:?}");
                    full = true;
                    break;
                }
            }
            assert!(full, "the socket buffer never filled");
            tx.send_to(&[3; 8], to).unwrap();
            if tx.flush().is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "a small datagram always found room at once");
        // Made to wait, it goes out (the bucket frees a 60 KB datagram every 48 ms).
        tx.block_for_last_sends(std::time::Duration::from_millis(500))
            .unwrap();
        tx.send_to(&[3; 8], to).unwrap();
        tx.flush()
    });
    assert!(flushed.is_ok(), "{flushed:?}");
}

/// A socket buffer the kernel took smaller than asked (capped at `net.core.rmem_max` when the
/// process may not force it) is found, to be logged; one it took whole is not.
#[test]
fn a_socket_buffer_smaller_than_asked_for_is_found() {
    use std::os::fd::AsFd;
    let socket = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
    let fd = socket.socket.as_fd();
    let forced = socket::short_buffers(fd)
        .iter()
        .all(|(what, ..)| *what != "receive");
    // The plain option, as a process without CAP_NET_ADMIN gets it, capped here at 4096.
    socket::set_int_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096).unwrap();
    let short = socket::short_buffers(fd);
    assert!(
        short.iter().any(|(what, got, sysctl)| *what == "receive"
            && *got < 2 * SOCKET_BUF_LEN
            && *sysctl == "rmem_max"),
        "{short:?}"
    );
    if may_force_buffers() {
        assert!(
            forced,
            "the receive buffer forced to {SOCKET_BUF_LEN} bytes"
        );
    }
}

/// Whether this process may pass `net.core.rmem_max` (`SO_RCVBUFFORCE` works: root with
/// `CAP_NET_ADMIN` in the host's namespace, not root in a user namespace's container).
fn may_force_buffers() -> bool {
    use std::os::fd::AsFd;
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket::set_int_option(
        probe.as_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        1 << 20,
    )
    .is_ok()
}

/// An `IPPROTO_UDP` raw socket (non-blocking) that gets a copy of every UDP datagram the
/// host receives, for [`udp_headers_to`].
fn udp_sniffer() -> std::net::UdpSocket {
    use std::os::fd::FromRawFd;
    // SAFETY: socket() takes plain integers and returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP) };
    assert!(fd >= 0, "raw socket: {}", io::Error::last_os_error());
    // SAFETY: `fd` was just returned by socket(), is open, and nothing else owns it.
    let sniff = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
    sniff.set_nonblocking(true).unwrap();
    sniff
}

/// A batching socket bound to `bind` whose control messages go through a raw socket of its
/// own, without checksums (as with the kernel path).
fn with_raw_control(bind: &str) -> UdpSocket {
    let mut tx = UdpSocket::bind(addr(bind)).unwrap();
    tx.enable_batching();
    let raw = RawControl::for_socket(tx.local_addr().unwrap()).unwrap();
    tx.send_control_without_checksums(raw);
    tx
}

/// Reads the UDP headers of up to `count` IPv4 datagrams to port `port` from `raw` (an
/// `IPPROTO_UDP` raw socket, which gets a copy of every UDP datagram the host receives),
/// within a second: (source port, checksum field, payload's byte at [`crate::wire::TOKEN_LEN`]).
fn udp_headers_to(raw: &std::net::UdpSocket, port: u16, count: usize) -> Vec<(u16, u16, u8)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 70_000];
    for _ in 0..1000 {
        if got.len() >= count || std::time::Instant::now() >= deadline {
            break;
        }
        match raw.recv(&mut buf) {
            Ok(n) => {
                let packet = &buf[..n];
                let ihl = usize::from(packet[0] & 0x0f) * 4;
                let udp = &packet[ihl..];
                let be = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
                if be(2) == port {
                    got.push((be(0), be(6), udp[8 + crate::wire::TOKEN_LEN]));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("raw recv: {e}"),
        }
    }
    got
}

#[test]
#[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
fn with_raw_control_only_control_messages_go_without_a_checksum() {
    // `--kernel-path`: control messages to IPv4 peers leave through the raw socket with a
    // UDP checksum of 0 and the UDP socket's port, after what the UDP socket had queued;
    // frames, and a control message too long for the raw socket, keep their checksum; and the
    // UDP socket keeps GSO. The receiver gets every one, byte for byte.
    let (headers, got, gso) = in_own_netns(|| {
        run("ip link set lo up");
        let sniff = udp_sniffer();
        let mut tx = with_raw_control("0.0.0.0:0");
        tx.enable_offloads();
        let mut rx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        let to = rx.local_addr().unwrap();
        let token = [1, 2, 3, 4, 5, 6, 7];
        let control = [&token[..], &[2]].concat();
        let frame = [&token[..], &[0], &[0xab; 60]].concat();
        let long = [&token[..], &[1], &[0xcd; super::RAW_MAX_PAYLOAD]].concat();
        tx.send_control_to(&control, to).unwrap();
        tx.send_to(&frame, to).unwrap();
        tx.send_control_to(&long, to).unwrap();
        tx.flush().unwrap();
        let headers = udp_headers_to(&sniff, to.port(), 3);
        let got = recv_datagrams(&mut rx, 3);
        let port = tx.local_addr().unwrap().port();
        (
            headers
                .into_iter()
                .map(|(from, sum, switch)| (from == port, sum == 0, switch))
                .collect::<Vec<_>>(),
            got.into_iter().map(|(_, d)| d).collect::<Vec<_>>(),
            tx.offloads().gso,
        )
    });
    // (from the socket's port, checksum 0, switch byte), in the order they left: the
    // control message queued for the raw socket goes after the UDP socket's queue (so a
    // Close never overtakes the frames before it).
    assert_eq!(
        headers,
        [(true, false, 0), (true, false, 1), (true, true, 2)]
    );
    assert_eq!(got.len(), 3);
    assert!(got.iter().any(|d| d.len() == 8 && d[7] == 2));
    assert!(got.iter().any(|d| d.len() == 68 && d[7] == 0));
    assert!(got
        .iter()
        .any(|d| d.len() == 8 + super::RAW_MAX_PAYLOAD && d[7] == 1));
    assert!(gso, "UDP GSO went off");
}

#[test]
#[ignore = "needs root (a network namespace of its own) and nft; .ci/run passes --include-ignored"]
fn a_control_message_the_firewall_refuses_is_counted_as_not_sent() {
    // `--kernel-path`: a control message whose raw send the OUTPUT chain refuses goes through
    // the UDP socket, which the chain refuses too; the flush reports it (the node counts it
    // in send_errors), as it would any datagram of the queue.
    let flushed = in_own_netns(|| {
        run("ip link set lo up");
        let mut tx = with_raw_control("127.0.0.1:0");
        let rx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        let to = rx.local_addr().unwrap();
        run("nft add table inet ecfw");
        run("nft add chain inet ecfw out { type filter hook output priority 0 ; }");
        run(&format!(
            "nft add rule inet ecfw out udp dport {} drop",
            to.port()
        ));
        let control = [1, 2, 3, 4, 5, 6, 7, 2];
        tx.send_control_to(&control, to).unwrap();
        let flushed = tx.flush();
        let mut failed = Vec::new();
        tx.drain_failed(&mut |to, n, bytes| failed.push((to, n, bytes)));
        (
            flushed.map_err(|e| (e.dropped, e.dropped_bytes)),
            failed,
            to,
        )
    });
    let (flushed, failed, to) = flushed;
    assert_eq!(flushed, Err((1, 8)));
    assert_eq!(failed, [(to, 1, 8)]);
}

#[test]
#[ignore = "needs root (a network namespace of its own); .ci/run passes --include-ignored"]
fn more_control_messages_than_the_raw_queue_holds_all_go_without_a_checksum() {
    // A pass that sends more control messages than the raw queue holds (keepalives to many
    // peers, say): the full queue is sent first, and every one still goes without a
    // checksum.
    const COUNT: usize = super::raw::RAW_QUEUE + 6;
    let headers = in_own_netns(|| {
        run("ip link set lo up");
        let sniff = udp_sniffer();
        let mut tx = with_raw_control("127.0.0.1:0");
        let rx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        let to = rx.local_addr().unwrap();
        for i in 0..COUNT {
            let message = [1, 2, 3, 4, 5, 6, 7, 1, 0, 0, i as u8];
            tx.send_control_to(&message, to).unwrap();
        }
        tx.flush().unwrap();
        udp_headers_to(&sniff, to.port(), COUNT)
    });
    assert_eq!(headers.len(), COUNT);
    assert!(headers.iter().all(|&(_, sum, _)| sum == 0), "{headers:?}");
}
