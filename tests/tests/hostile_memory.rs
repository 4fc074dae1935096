//! Memory follows the bytes a peer sends, never the length it claims.
//!
//! Many hostile connections each send a valid SP handshake and a frame header claiming just
//! under the receive limit (1 MiB), then nothing more. Before, each such pipe reserved and
//! zero-filled the claimed size at once (1000 connections: about 1 GiB). Now each may hold at
//! most about twice what it sent plus the pipe's read buffer (64 KiB at the very most; a quiet
//! pipe's starts at 4 KiB), on top of what a pipe costs before it reads anything. The test
//! measures the process's resident memory.
//!
//! Its own test binary, so that no other test's memory moves the measurement.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sp_tests::resident_bytes;

/// The tests measure the whole process's memory, so they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What any pipe costs before it reads a byte (its task, queue, handle, socket registration;
/// about 9 KiB measured), allowed on top of the target below.
const PIPE_ITSELF: u64 = 16 * 1024;
/// The target per hostile connection: twice what it sent plus 64 KiB (the largest read
/// buffer), plus the pipe itself.
const PER_PIPE_LIMIT: u64 = 2 * 16 + 64 * 1024 + PIPE_ITSELF;

/// How many connections the file-descriptor limit allows (two descriptors each, both ends in
/// this process), at most 1000.
fn connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024);
    ((soft.saturating_sub(200)) / 2).min(1000)
}

/// Samples the resident size until it holds still (three samples 20 ms apart within 1 %),
/// so that every pipe has read what it was sent; gives up waiting after `deadline`.
fn settled_rss(deadline: Duration) -> u64 {
    let end = Instant::now() + deadline;
    let mut last = resident_bytes().expect("/proc/self/status");
    let mut still = 0;
    while Instant::now() < end && still < 3 {
        std::thread::sleep(Duration::from_millis(20));
        let now = resident_bytes().expect("/proc/self/status");
        still = if now.abs_diff(last) * 100 <= last {
            still + 1
        } else {
            0
        };
        last = now;
    }
    last
}

#[test]
fn length_claims_cost_what_was_sent_not_what_was_claimed() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = connections();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let pull = rt.block_on(async { sp_tokio::Pull::new() });
    let listener_addr = pull
        .listener("tcp://127.0.0.1:0")
        .and_then(|l| l.start())
        .expect("listen")
        .socket_addr()
        .expect("an ip address");
    // Warm up: one well-behaved connection, so that the runtime's and socket's one-time
    // allocations are not counted against the hostile ones.
    let mut warm = TcpStream::connect(listener_addr).expect("connect");
    warm.write_all(&[0, b'S', b'P', 0, 0, 0x50, 0, 0])
        .expect("handshake");
    wait_for_pipes(&pull, 1);
    let before = settled_rss(Duration::from_secs(2));

    // PUSH's handshake (protocol 0x50), then a TCP frame header claiming 1 MiB - 16 bytes.
    let claim = (1u64 << 20) - 16;
    let mut hostile = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(listener_addr).expect("connect");
        let mut bytes = vec![0, b'S', b'P', 0, 0, 0x50, 0, 0];
        bytes.extend_from_slice(&claim.to_be_bytes());
        s.write_all(&bytes).expect("hostile bytes");
        hostile.push(s);
    }
    wait_for_pipes(&pull, n + 1);
    let after = settled_rss(Duration::from_secs(5));
    let per_pipe = after.saturating_sub(before) / n as u64;
    println!(
        "{n} hostile connections: resident {} KiB -> {} KiB, {per_pipe} bytes each \
         (limit {PER_PIPE_LIMIT})",
        before / 1024,
        after / 1024
    );
    assert!(
        per_pipe <= PER_PIPE_LIMIT,
        "each hostile pipe costs {per_pipe} bytes, more than {PER_PIPE_LIMIT}"
    );
    // Every one of them is still a pipe (nothing was refused), and nothing was delivered.
    assert_eq!(pull.stats().pipes_open, n + 1);
    assert_eq!(pull.stats().msgs_received, 0);
    drop(hostile);
    drop(warm);
    rt.block_on(pull.close());
}

#[test]
fn unlimited_size_still_grows_with_the_bytes_sent() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // No receive limit: peers claim 1 GiB and send 81 KiB of it. Each pipe may hold about twice
    // what it was sent plus its read buffer, not the claim (before: 1.1 MiB each).
    const N: usize = 100;
    const SENT: usize = 81 * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let pull = rt.block_on(async { sp_tokio::Pull::new() });
    pull.set_recv_max_size(0).expect("unlimited");
    let listener_addr = pull
        .listener("tcp://127.0.0.1:0")
        .and_then(|l| l.start())
        .expect("listen")
        .socket_addr()
        .expect("an ip address");
    let mut warm = TcpStream::connect(listener_addr).expect("connect");
    warm.write_all(&[0, b'S', b'P', 0, 0, 0x50, 0, 0])
        .expect("handshake");
    wait_for_pipes(&pull, 1);
    let before = settled_rss(Duration::from_secs(2));
    let mut hostile = Vec::with_capacity(N);
    for _ in 0..N {
        let mut s = TcpStream::connect(listener_addr).expect("connect");
        let mut bytes = vec![0, b'S', b'P', 0, 0, 0x50, 0, 0];
        bytes.extend_from_slice(&(1u64 << 30).to_be_bytes());
        bytes.resize(bytes.len() + SENT, 0x5a);
        s.write_all(&bytes).expect("hostile bytes");
        hostile.push(s);
    }
    wait_for_pipes(&pull, N + 1);
    let after = settled_rss(Duration::from_secs(5));
    let per_pipe = after.saturating_sub(before) / N as u64;
    let limit = 2 * (SENT as u64 + 16) + 64 * 1024 + PIPE_ITSELF;
    println!("{N} peers claiming 1 GiB, sending 81 KiB: {per_pipe} bytes each (limit {limit})");
    assert!(
        per_pipe <= limit,
        "each pipe costs {per_pipe} bytes, more than {limit}"
    );
    assert_eq!(pull.stats().msgs_received, 0);
    drop(hostile);
    drop(warm);
    rt.block_on(pull.close());
}

fn wait_for_pipes(pull: &sp_tokio::Pull, n: usize) {
    let end = Instant::now() + Duration::from_secs(30);
    while pull.stats().pipes_open < n {
        assert!(
            Instant::now() < end,
            "only {} of {n} pipes attached",
            pull.stats().pipes_open
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
