//! Misbehaving peers against OUR listeners (spec 2.1, 2.2, 2.3, 8.1 #1, #2, #5, #7, #8), with
//! raw tokio sockets playing the bad peer over tcp and ipc.
//!
//! For every case: the raw connection is closed by us (a read returns EOF or an error within a
//! deadline) where the spec says so, nothing from the bad peer is delivered, the listener keeps
//! serving a well-behaved peer (our own REQ or PUSH), and no background task panics.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sp_tests::RawIpcStream;
use sp_tests::{
    assert_no_worker_panics, framed, length_prefix, resident_bytes, sp_header, watch_worker_panics,
    TempIpcDir, Transport,
};
use sp_tokio::{Pull, Push, Rep, Req};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long we give our side to close a bad connection. Well below the handshake timeout,
/// which the listeners here set to 30 s, so a close is caused by the bad bytes themselves.
const CLOSE_DEADLINE: Duration = Duration::from_secs(3);
const LONG_HANDSHAKE: Duration = Duration::from_secs(30);
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

const REQ_TYPE: u16 = 0x30;
const REP_TYPE: u16 = 0x31;
const PUSH_TYPE: u16 = 0x50;
const PULL_TYPE: u16 = 0x51;

/// Where our listener is, and how a raw peer reaches it.
struct Target {
    transport: Transport,
    url: String,
    port: Option<u16>,
    path: Option<PathBuf>,
    _dir: Option<TempIpcDir>,
}

impl Target {
    async fn listen<P: sp_transport::SocketCore>(sock: &sp_tests::Sock<P>, t: Transport) -> Self {
        sock.set_handshake_timeout(LONG_HANDSHAKE).unwrap();
        match t {
            Transport::Tcp => {
                let url = sock.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
                let port = url.rsplit(':').next().unwrap().parse().unwrap();
                Self {
                    transport: t,
                    url,
                    port: Some(port),
                    path: None,
                    _dir: None,
                }
            }
            Transport::Ipc => {
                let dir = TempIpcDir::new();
                let path = dir.path();
                let url = sock
                    .listen(&sp_tests::ipc_url(&path))
                    .await
                    .unwrap()
                    .to_string();
                Self {
                    transport: t,
                    url,
                    port: None,
                    path: Some(path),
                    _dir: Some(dir),
                }
            }
            Transport::Inproc => unreachable!("no raw bytes over inproc"),
        }
    }

    async fn raw(&self) -> Raw {
        match self.transport {
            Transport::Tcp => {
                let s = TcpStream::connect(("127.0.0.1", self.port.unwrap()))
                    .await
                    .unwrap();
                s.set_nodelay(true).unwrap();
                Raw::Tcp(s)
            }
            _ => Raw::Unix(
                sp_tests::raw_ipc_connect(self.path.as_ref().unwrap())
                    .await
                    .unwrap(),
            ),
        }
    }

    /// A raw connection that has completed a valid handshake as `sp_type`, having read the
    /// listener's header (`expect_type`).
    async fn raw_handshaken(&self, sp_type: u16, expect_type: u16) -> Raw {
        let mut raw = self.raw().await;
        raw.write(&sp_header(sp_type)).await;
        let mut got = [0u8; 8];
        tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut got))
            .await
            .expect("listener sends its header promptly")
            .expect("read listener header");
        assert_eq!(got, sp_header(expect_type), "listener's handshake bytes");
        raw
    }
}

/// The misbehaving peer's end of a connection.
enum Raw {
    Tcp(TcpStream),
    /// A Unix socket; on Windows a named pipe.
    Unix(RawIpcStream),
}

impl Raw {
    /// Writes, ignoring errors: the listener may already have hung up, which is fine.
    async fn write(&mut self, bytes: &[u8]) {
        let _ = match self {
            Raw::Tcp(s) => s.write_all(bytes).await,
            Raw::Unix(s) => s.write_all(bytes).await,
        };
    }

    /// Half-closes: the listener sees EOF but we can still read.
    async fn shutdown_write(&mut self) {
        let _ = match self {
            Raw::Tcp(s) => s.shutdown().await,
            Raw::Unix(s) => s.shutdown().await,
        };
    }

    async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.read_exact(buf).await,
            Raw::Unix(s) => s.read_exact(buf).await,
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Raw::Tcp(s) => s.read(buf).await,
            Raw::Unix(s) => s.read(buf).await,
        }
    }

    /// Reads until the listener closes the connection (EOF or reset). Returns what it sent;
    /// panics if the connection is still open after `within`.
    async fn expect_closed(&mut self, within: Duration, case: &str) -> Vec<u8> {
        let end = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.read(&mut buf)).await {
                Err(_) => panic!("{case}: our listener did not close the connection within {within:?} (read so far: {got:02x?})"),
                Ok(Ok(0)) | Ok(Err(_)) => return got,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Asserts the connection stays open (no EOF, no data) for `window`.
    async fn expect_open(&mut self, window: Duration, case: &str) {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(window, self.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0)) => panic!("{case}: our listener closed a connection it should keep"),
            Ok(Ok(n)) => panic!("{case}: unexpected bytes {:02x?}", &buf[..n]),
            Ok(Err(e)) => panic!("{case}: connection failed: {e}"),
        }
    }
}

/// A well-behaved REQ exchanges `tag` with `rep`; the request must be the next thing REP
/// delivers, which also proves nothing from a bad peer was delivered before it.
async fn rep_still_serves(rep: &Rep, url: &str, tag: &str) {
    let req = Req::new();
    req.set_recv_timeout(Some(RECV_TIMEOUT));
    req.set_send_timeout(Some(RECV_TIMEOUT));
    req.dial(url)
        .await
        .unwrap_or_else(|e| panic!("{tag}: good REQ cannot dial after bad peer: {e}"));
    req.send(tag.as_bytes().to_vec()).await.unwrap();
    let got = rep
        .recv()
        .await
        .unwrap_or_else(|e| panic!("{tag}: REP did not deliver the good request: {e}"));
    assert_eq!(
        &got.body[..],
        tag.as_bytes(),
        "{tag}: REP delivered something else first"
    );
    rep.send(got.body).await.unwrap();
    let back = req
        .recv()
        .await
        .unwrap_or_else(|e| panic!("{tag}: good REQ got no reply: {e}"));
    assert_eq!(&back.body[..], tag.as_bytes());
    req.close().await;
}

/// A well-behaved PUSH delivers `tag` to `pull`, and it is the next message PULL delivers.
async fn pull_still_serves(pull: &Pull, url: &str, tag: &str) {
    let push = Push::new();
    push.set_send_timeout(Some(RECV_TIMEOUT));
    push.dial(url)
        .await
        .unwrap_or_else(|e| panic!("{tag}: good PUSH cannot dial after bad peer: {e}"));
    push.send(tag.as_bytes().to_vec()).await.unwrap();
    let got = pull
        .recv()
        .await
        .unwrap_or_else(|e| panic!("{tag}: PULL did not deliver the good message: {e}"));
    assert_eq!(
        &got.body[..],
        tag.as_bytes(),
        "{tag}: PULL delivered something else first"
    );
    push.close().await;
}

fn assert_nothing_pending<P: sp_transport::RecvRole>(sock: &sp_tests::Sock<P>, case: &str) {
    match sock.try_recv() {
        Err(e) if e.is_would_block() => {}
        Ok(m) => panic!("{case}: delivered a message from the bad peer: {m:?}"),
        Err(e) => panic!("{case}: unexpected recv error {e}"),
    }
}

/// Our REP and a good REQ that stays connected through all bad cases.
struct RepUnderAttack {
    rep: Rep,
    target: Target,
    resident: Req,
}

impl RepUnderAttack {
    async fn new(t: Transport) -> Self {
        watch_worker_panics();
        let rep = Rep::new();
        rep.set_recv_timeout(Some(RECV_TIMEOUT));
        rep.set_send_timeout(Some(RECV_TIMEOUT));
        let target = Target::listen(&rep, t).await;
        let resident = Req::new();
        resident.set_recv_timeout(Some(RECV_TIMEOUT));
        resident.set_send_timeout(Some(RECV_TIMEOUT));
        resident
            .dial(&target.url)
            .await
            .expect("resident REQ dials");
        Self {
            rep,
            target,
            resident,
        }
    }

    /// The resident REQ (connected before the bad peer) and a new one both still work.
    async fn check_serving(&self, case: &str) {
        assert_nothing_pending(&self.rep, case);
        let tag = format!("resident after {case}");
        self.resident.send(tag.clone().into_bytes()).await.unwrap();
        let got = self
            .rep
            .recv()
            .await
            .unwrap_or_else(|e| panic!("{case}: resident request lost: {e}"));
        assert_eq!(
            &got.body[..],
            tag.as_bytes(),
            "{case}: REP delivered something else first"
        );
        self.rep.send(got.body).await.unwrap();
        assert_eq!(
            &self.resident.recv().await.unwrap().body[..],
            tag.as_bytes()
        );
        rep_still_serves(
            &self.rep,
            &self.target.url,
            &format!("new peer after {case}"),
        )
        .await;
        assert_no_worker_panics();
    }
}

// ---------------------------------------------------------------------------------------------
// Handshake (spec 2.1, 8.1 #2)

async fn truncated_handshakes(t: Transport) {
    let s = RepUnderAttack::new(t).await;
    let good = sp_header(REQ_TYPE);
    for n in 0..8 {
        let case = format!("handshake truncated to {n} bytes then EOF");
        let mut raw = s.target.raw().await;
        raw.write(&good[..n]).await;
        raw.shutdown_write().await;
        let got = raw.expect_closed(CLOSE_DEADLINE, &case).await;
        assert!(
            sp_header(REP_TYPE).starts_with(&got),
            "{case}: we sent {got:02x?}, not our header"
        );
        s.check_serving(&case).await;
    }
}

async fn malformed_handshakes(t: Transport) {
    let s = RepUnderAttack::new(t).await;
    let cases: Vec<(&str, [u8; 8])> = vec![
        ("bad byte 0", [0x01, b'S', b'P', 0, 0, 0x30, 0, 0]),
        ("bad magic 'x' at 1", [0, b'x', b'P', 0, 0, 0x30, 0, 0]),
        ("bad magic 'x' at 2", [0, b'S', b'x', 0, 0, 0x30, 0, 0]),
        ("version 2", [0, b'S', b'P', 2, 0, 0x30, 0, 0]),
        ("reserved byte 7 = 1", [0, b'S', b'P', 0, 0, 0x30, 0, 1]),
        ("reserved byte 6 = 1", [0, b'S', b'P', 0, 0, 0x30, 1, 0]),
        ("all zero", [0; 8]),
        ("HTTP request line", *b"GET / HT"),
        ("wrong peer type PUB", sp_header(0x20)),
        ("wrong peer type REP", sp_header(REP_TYPE)),
        ("wrong peer type PAIR v1", sp_header(0x11)),
        ("wrong peer type PUSH", sp_header(PUSH_TYPE)),
        ("unknown type 0xffff", sp_header(0xffff)),
    ];
    for (case, bytes) in cases {
        let mut raw = s.target.raw().await;
        raw.write(&bytes).await;
        // No half-close: the listener must hang up because of the bytes alone.
        let got = raw.expect_closed(CLOSE_DEADLINE, case).await;
        assert!(
            sp_header(REP_TYPE).starts_with(&got),
            "{case}: we sent {got:02x?}"
        );
        s.check_serving(case).await;
    }
}

async fn garbage_with_bad_handshake_is_not_read_as_frames(t: Transport) {
    // A wrong-type header followed by a perfectly valid request frame: nothing may come of it.
    let s = RepUnderAttack::new(t).await;
    let mut raw = s.target.raw().await;
    let mut bytes = sp_header(0x20).to_vec();
    bytes.extend(framed(t, &[0x80, 0, 0, 1, b'b', b'a', b'd']));
    raw.write(&bytes).await;
    raw.expect_closed(CLOSE_DEADLINE, "PUB header then a request frame")
        .await;
    s.check_serving("PUB header then a request frame").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_handshakes_are_closed_and_listener_keeps_serving_over_tcp() {
    truncated_handshakes(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_handshakes_are_closed_and_listener_keeps_serving_over_ipc() {
    truncated_handshakes(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_handshakes_are_refused_at_once_over_tcp() {
    malformed_handshakes(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_handshakes_are_refused_at_once_over_ipc() {
    malformed_handshakes(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_after_a_wrong_peer_type_are_never_delivered_over_tcp() {
    garbage_with_bad_handshake_is_not_read_as_frames(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_after_a_wrong_peer_type_are_never_delivered_over_ipc() {
    garbage_with_bad_handshake_is_not_read_as_frames(Transport::Ipc).await;
}

/// A peer that connects and never completes its header is dropped after the handshake
/// timeout (spec 2.1: "Enforce a handshake timeout"), and does not block other peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_dropped_after_the_handshake_timeout() {
    watch_worker_panics();
    let rep = Rep::new();
    rep.set_recv_timeout(Some(RECV_TIMEOUT));
    rep.set_handshake_timeout(Duration::from_millis(300))
        .unwrap();
    let url = rep.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut silent = Raw::Tcp(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let mut partial = Raw::Tcp(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    partial.write(&sp_header(REQ_TYPE)[..5]).await;
    // While both stall, a good peer is served.
    rep_still_serves(&rep, &url, "good peer while two stall").await;
    let start = Instant::now();
    silent.expect_closed(CLOSE_DEADLINE, "silent peer").await;
    partial
        .expect_closed(CLOSE_DEADLINE, "peer stalled after 5 header bytes")
        .await;
    assert!(start.elapsed() < CLOSE_DEADLINE);
    rep_still_serves(&rep, &url, "good peer after the stalled ones").await;
    assert_no_worker_panics();
}

/// Many half-open connections do not stop the listener from accepting good peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_stalled_connections_do_not_block_good_peers() {
    watch_worker_panics();
    let rep = Rep::new();
    rep.set_recv_timeout(Some(RECV_TIMEOUT));
    let target = Target::listen(&rep, Transport::Tcp).await;
    let mut stalled = Vec::new();
    for _ in 0..50 {
        stalled.push(target.raw().await);
    }
    rep_still_serves(&rep, &target.url, "good peer among 50 stalled").await;
    drop(stalled);
    assert_no_worker_panics();
}

// ---------------------------------------------------------------------------------------------
// Garbage after a valid handshake (spec 2.2, 2.3, 8.1 #5, #8)

/// Our PULL, plus a good PUSH that stays connected through the bad cases.
struct PullUnderAttack {
    pull: Pull,
    target: Target,
    resident: Push,
}

impl PullUnderAttack {
    async fn new(t: Transport, max: Option<usize>) -> Self {
        watch_worker_panics();
        let pull = Pull::new();
        pull.set_recv_timeout(Some(RECV_TIMEOUT));
        if let Some(max) = max {
            pull.set_recv_max_size(max).unwrap();
        }
        let target = Target::listen(&pull, t).await;
        let resident = Push::new();
        resident.set_send_timeout(Some(RECV_TIMEOUT));
        resident
            .dial(&target.url)
            .await
            .expect("resident PUSH dials");
        Self {
            pull,
            target,
            resident,
        }
    }

    async fn check_serving(&self, case: &str) {
        assert_nothing_pending(&self.pull, case);
        let tag = format!("resident after {case}");
        self.resident.send(tag.clone().into_bytes()).await.unwrap();
        let got = self
            .pull
            .recv()
            .await
            .unwrap_or_else(|e| panic!("{case}: resident message lost: {e}"));
        assert_eq!(
            &got.body[..],
            tag.as_bytes(),
            "{case}: PULL delivered something else first"
        );
        pull_still_serves(
            &self.pull,
            &self.target.url,
            &format!("new peer after {case}"),
        )
        .await;
        assert_no_worker_panics();
    }

    async fn handshaken(&self) -> Raw {
        self.target.raw_handshaken(PUSH_TYPE, PULL_TYPE).await
    }
}

/// Cases that end with EOF from the bad peer (truncated frames): we must close our side.
async fn truncated_frames(t: Transport) {
    let s = PullUnderAttack::new(t, None).await;
    let mut ten_then_two = length_prefix(t, 10);
    ten_then_two.extend_from_slice(b"ab");
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("no frame at all".into(), vec![]),
        ("length of 10 then 2 bytes".into(), ten_then_two),
    ];
    match t {
        Transport::Ipc => {
            cases.push(("[0x01]".into(), vec![0x01]));
            cases.push(("01 80".into(), vec![0x01, 0x80]));
            cases.push(("01 00 00 00 01".into(), vec![0x01, 0, 0, 0, 1]));
        }
        _ => {
            cases.push(("[0x80]".into(), vec![0x80]));
            cases.push(("00 00 00 01".into(), vec![0, 0, 0, 1]));
        }
    }
    for (case, bytes) in cases {
        let mut raw = s.handshaken().await;
        raw.write(&bytes).await;
        raw.shutdown_write().await;
        let got = raw.expect_closed(CLOSE_DEADLINE, &case).await;
        assert!(got.is_empty(), "{case}: PULL sent {got:02x?}");
        s.check_serving(&case).await;
    }
}

/// Length claims that must be refused as soon as the prefix is complete, without waiting for
/// (or allocating) the payload: the bad peer never half-closes, so only the prefix can have
/// made us hang up. A decoder that tried to allocate 2^63 bytes would abort the process.
async fn refused_length_claims(t: Transport) {
    let s = PullUnderAttack::new(t, Some(100)).await;
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("length 2^63".into(), length_prefix(t, 1 << 63)),
        (
            "reserved length bits 10 00 .. 00".into(),
            length_prefix(t, 0x1000_0000_0000_0000),
        ),
        ("length 2^60".into(), length_prefix(t, 1 << 60)),
        ("length u64::MAX".into(), length_prefix(t, u64::MAX)),
        (
            "length 150 above the limit of 100".into(),
            length_prefix(t, 150),
        ),
        (
            "length 101 just above the limit".into(),
            length_prefix(t, 101),
        ),
    ];
    if t == Transport::Ipc {
        let mut bad_type = vec![0x02];
        bad_type.extend_from_slice(&3u64.to_be_bytes());
        bad_type.extend_from_slice(b"abc");
        cases.push(("IPC type byte 0x02 with a valid frame".into(), bad_type));
        cases.push(("IPC type byte 0x00".into(), vec![0x00; 12]));
        cases.push(("IPC type byte 0x02 alone".into(), vec![0x02]));
    }
    for (case, bytes) in cases {
        let mut raw = s.handshaken().await;
        raw.write(&bytes).await;
        let got = raw.expect_closed(CLOSE_DEADLINE, &case).await;
        assert!(got.is_empty(), "{case}: PULL sent {got:02x?}");
        s.check_serving(&case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_after_handshake_are_dropped_over_tcp() {
    truncated_frames(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_after_handshake_are_dropped_over_ipc() {
    truncated_frames(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_length_claims_close_the_connection_at_once_over_tcp() {
    refused_length_claims(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_length_claims_and_ipc_type_bytes_close_the_connection_at_once_over_ipc() {
    refused_length_claims(Transport::Ipc).await;
}

/// Spec 8.1 #7 with a raw peer: limit 100, a 95-byte and a 100-byte message arrive intact, a
/// 150-byte claim closes the connection before any payload is sent and nothing arrives.
async fn recv_max_raw(t: Transport) {
    let s = PullUnderAttack::new(t, Some(100)).await;
    let mut raw = s.handshaken().await;
    let m95: Vec<u8> = (0..95u8).collect();
    let m100: Vec<u8> = (0..100u8).rev().collect();
    raw.write(&framed(t, &m95)).await;
    raw.write(&framed(t, &m100)).await;
    assert_eq!(
        &s.pull.recv().await.expect("95-byte message").body[..],
        &m95[..]
    );
    assert_eq!(
        &s.pull.recv().await.expect("100-byte message").body[..],
        &m100[..]
    );
    raw.expect_open(Duration::from_millis(100), "after two acceptable frames")
        .await;
    raw.write(&length_prefix(t, 150)).await;
    raw.expect_closed(CLOSE_DEADLINE, "150-byte claim").await;
    s.check_serving("150-byte claim").await;
}

/// Spec 8.1 #7 end to end with our own PUSH: limit 100 on the listener, 95 bytes arrive, 150
/// do not (the receive times out), and the sender's reconnect then carries traffic again.
async fn recv_max_end_to_end(t: Transport) {
    watch_worker_panics();
    let pull = Pull::new();
    pull.set_recv_max_size(100).unwrap();
    let target = Target::listen(&pull, t).await;
    let push = Push::new();
    push.set_send_timeout(Some(RECV_TIMEOUT));
    push.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100));
    push.dial(&target.url).await.unwrap();
    pull.set_recv_timeout(Some(RECV_TIMEOUT));
    push.send(vec![7u8; 95]).await.unwrap();
    assert_eq!(pull.recv().await.expect("95 bytes arrive").body.len(), 95);
    push.send(vec![8u8; 150]).await.unwrap();
    pull.set_recv_timeout(Some(Duration::from_millis(500)));
    let err = pull.recv().await.expect_err("150 bytes must not arrive");
    assert!(err.is_timed_out(), "expected a timeout, got {err}");
    // The listener closed that connection; the dialer reconnects and traffic resumes.
    pull.set_recv_timeout(Some(RECV_TIMEOUT));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        push.send(vec![9u8; 95]).await.unwrap();
        pull.set_recv_timeout(Some(Duration::from_millis(200)));
        match pull.recv().await {
            Ok(m) => {
                assert_eq!(&m.body[..], &[9u8; 95][..]);
                break;
            }
            Err(e) if e.is_timed_out() && Instant::now() < deadline => continue,
            Err(e) => panic!("traffic did not resume after the oversize drop: {e}"),
        }
    }
    assert_no_worker_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_max_100_accepts_95_and_closes_on_a_150_claim_over_tcp() {
    recv_max_raw(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_max_100_accepts_95_and_closes_on_a_150_claim_over_ipc() {
    recv_max_raw(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_max_100_drops_our_own_150_byte_message_over_tcp() {
    recv_max_end_to_end(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_max_100_drops_our_own_150_byte_message_over_ipc() {
    recv_max_end_to_end(Transport::Ipc).await;
}

/// With the limit off (0 = unlimited), a claim of 2^59 bytes (below the always-refused 2^60)
/// followed by a trickle of data must not make us reserve memory for the claim: resident
/// memory stays within a small bound, and other peers are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_recv_max_does_not_preallocate_a_huge_claim() {
    let s = PullUnderAttack::new(Transport::Tcp, Some(0)).await;
    let before = resident_bytes();
    let mut raw = s.handshaken().await;
    raw.write(&length_prefix(Transport::Tcp, 1 << 59)).await;
    raw.write(&[0x55; 64 * 1024]).await;
    s.check_serving("claim of 2^59 with the limit off").await;
    if let (Some(b), Some(a)) = (before, resident_bytes()) {
        let grown = a.saturating_sub(b);
        assert!(
            grown < 256 << 20,
            "resident memory grew by {grown} bytes for a 64 KiB trickle"
        );
    }
    raw.expect_open(Duration::from_millis(50), "huge claim, unlimited")
        .await;
    drop(raw);
}

/// A valid header and first frame written in one segment, and a frame dribbled one byte at a
/// time, are both delivered intact (the handshake must not eat frame bytes).
async fn coalesced_and_dribbled(t: Transport) {
    let s = PullUnderAttack::new(t, None).await;
    let mut raw = s.target.raw().await;
    let mut bytes = sp_header(PUSH_TYPE).to_vec();
    bytes.extend(framed(t, b"first frame in the handshake segment"));
    bytes.extend(framed(t, b""));
    bytes.extend(framed(t, b"third"));
    raw.write(&bytes).await;
    assert_eq!(
        &s.pull.recv().await.unwrap().body[..],
        b"first frame in the handshake segment"
    );
    assert_eq!(&s.pull.recv().await.unwrap().body[..], b"");
    assert_eq!(&s.pull.recv().await.unwrap().body[..], b"third");
    for b in framed(t, b"dribbled") {
        raw.write(&[b]).await;
    }
    assert_eq!(&s.pull.recv().await.unwrap().body[..], b"dribbled");
    s.check_serving("coalesced and dribbled frames").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_frames_in_one_segment_or_dribbled_arrive_intact_over_tcp() {
    coalesced_and_dribbled(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_frames_in_one_segment_or_dribbled_arrive_intact_over_ipc() {
    coalesced_and_dribbled(Transport::Ipc).await;
}

// ---------------------------------------------------------------------------------------------
// Protocol-level garbage from a raw REQ (spec 4.4.3, 8.3 #51)

/// A raw REQ sends a request with no bottom-of-stack word (and one shorter than a word):
/// REP delivers nothing (NNG kicks, mangos drops: either is fine), keeps serving, and a valid
/// request on a fresh raw connection gets a reply carrying its request id on the wire.
async fn rep_garbage_and_wire_reply(t: Transport) {
    let s = RepUnderAttack::new(t).await;
    for (case, payload) in [
        (
            "request without a bottom-of-stack word",
            vec![0, 0, 0, 1, 0, 0, 0, 2],
        ),
        ("request shorter than one word", vec![0x80, 0]),
        ("empty request", vec![]),
    ] {
        let mut raw = s.target.raw_handshaken(REQ_TYPE, REP_TYPE).await;
        raw.write(&framed(t, &payload)).await;
        s.rep.set_recv_timeout(Some(Duration::from_millis(300)));
        let r = s.rep.recv().await;
        s.rep.set_recv_timeout(Some(RECV_TIMEOUT));
        assert!(
            r.as_ref().is_err_and(|e| e.is_timed_out()),
            "{case}: REP delivered {r:?}"
        );
        drop(raw);
        s.check_serving(case).await;
    }
    // A valid raw request: the reply echoes the id word, then the body.
    let mut raw = s.target.raw_handshaken(REQ_TYPE, REP_TYPE).await;
    raw.write(&framed(t, &[0x80, 0x12, 0x34, 0x56, b'h', b'i']))
        .await;
    let got = s.rep.recv().await.expect("valid raw request is delivered");
    assert_eq!(&got.body[..], b"hi");
    s.rep.send("ok").await.unwrap();
    let want = framed(t, &[0x80, 0x12, 0x34, 0x56, b'o', b'k']);
    let mut buf = vec![0u8; want.len()];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut buf))
        .await
        .expect("reply in time")
        .unwrap();
    assert_eq!(buf, want, "REP reply bytes on the wire");
    assert_no_worker_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_ignores_requests_without_a_request_id_over_tcp() {
    rep_garbage_and_wire_reply(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_ignores_requests_without_a_request_id_over_ipc() {
    rep_garbage_and_wire_reply(Transport::Ipc).await;
}

// ---------------------------------------------------------------------------------------------
// What our dialer puts on the wire (spec 8.1 #1, 8.3 #41, #42)

/// A raw listener accepts our REQ's dial: the first bytes are exactly our 8-byte header, and
/// nothing else comes before the raw side answers. After that the request frame carries a
/// 4-byte id with bit 31 set; a reply with a stale id or with no id is ignored, and the reply
/// with the right id completes the request.
async fn good_handshake_bytes(t: Transport) {
    watch_worker_panics();
    let dir = TempIpcDir::new();
    let req = Req::new();
    req.set_recv_timeout(Some(RECV_TIMEOUT));
    req.set_send_timeout(Some(RECV_TIMEOUT));
    req.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100));
    let mut raw = match t {
        Transport::Tcp => {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            req.dial_nonblocking(format!("tcp://{}", l.local_addr().unwrap()))
                .unwrap();
            let (s, _) = tokio::time::timeout(CLOSE_DEADLINE, l.accept())
                .await
                .unwrap()
                .unwrap();
            Raw::Tcp(s)
        }
        #[cfg(not(unix))]
        _ => {
            drop(dir);
            unreachable!("the raw ipc listener is a Unix socket")
        }
        #[cfg(unix)]
        _ => {
            let path = dir.path();
            let l = tokio::net::UnixListener::bind(&path).unwrap();
            req.dial_nonblocking(sp_tests::ipc_url(&path)).unwrap();
            let (s, _) = tokio::time::timeout(CLOSE_DEADLINE, l.accept())
                .await
                .unwrap()
                .unwrap();
            Raw::Unix(s)
        }
    };
    let mut hdr = [0u8; 8];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut hdr))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        hdr,
        [0x00, 0x53, 0x50, 0x00, 0x00, 0x30, 0x00, 0x00],
        "REQ handshake bytes"
    );
    // Queue a request before the handshake completes: it must not be written yet.
    let sender = {
        let req = req.clone();
        tokio::spawn(async move { req.send("hi").await })
    };
    raw.expect_open(Duration::from_millis(150), "before the peer's header")
        .await;
    raw.write(&sp_header(REP_TYPE)).await;
    let plen = if t == Transport::Ipc { 9 } else { 8 };
    let mut buf = vec![0u8; plen + 6];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    sender.await.unwrap().expect("REQ send completes");
    assert_eq!(
        &buf[..plen],
        &length_prefix(t, 6)[..],
        "request frame prefix"
    );
    let id = &buf[plen..plen + 4];
    assert!(
        id[0] & 0x80 != 0,
        "request id must have bit 31 set: {id:02x?}"
    );
    assert_eq!(&buf[plen + 4..], b"hi");
    let mut stale = id.to_vec();
    stale[3] ^= 0x01;
    stale.extend_from_slice(b"stale");
    let mut good = id.to_vec();
    good.extend_from_slice(b"ok");
    raw.write(&framed(t, &stale)).await;
    raw.write(&framed(t, &good)).await;
    let reply = req.recv().await.expect("REQ receives the matching reply");
    assert!(reply.header.is_empty());
    assert_eq!(&reply.body[..], b"ok", "stale reply must be dropped");
    assert_no_worker_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_sends_exact_handshake_and_request_bytes_over_tcp() {
    good_handshake_bytes(Transport::Tcp).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_sends_exact_handshake_and_request_bytes_over_ipc() {
    good_handshake_bytes(Transport::Ipc).await;
}

/// A reply with no request id (shorter than a word) never reaches the application (8.3 #41).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_ignores_a_reply_without_a_request_id() {
    watch_worker_panics();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("tcp://{}", l.local_addr().unwrap());
    let req = Req::new();
    req.set_recv_timeout(Some(Duration::from_millis(400)));
    req.dial_nonblocking(&url).unwrap();
    let (s, _) = l.accept().await.unwrap();
    let mut raw = Raw::Tcp(s);
    raw.write(&sp_header(REP_TYPE)).await;
    let mut hdr = [0u8; 8];
    raw.read_exact(&mut hdr).await.unwrap();
    req.send("q").await.unwrap();
    let mut buf = [0u8; 13];
    raw.read_exact(&mut buf).await.unwrap();
    raw.write(&framed(Transport::Tcp, b"ok")).await;
    let r = req.recv().await;
    assert!(
        r.as_ref().is_err_and(|e| e.is_timed_out()),
        "a 2-byte reply was delivered: {r:?}"
    );
    assert_no_worker_panics();
}

/// Accepts one raw connection from our dialing socket on a fresh tcp port, answers the
/// handshake as `peer_type` and returns the stream after checking our header (`our_type`).
async fn raw_peer_for<P: sp_transport::SocketCore>(
    sock: &sp_tests::Sock<P>,
    our_type: u16,
    peer_type: u16,
) -> Raw {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sock.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100));
    sock.dial_nonblocking(format!("tcp://{}", l.local_addr().unwrap()))
        .unwrap();
    let (s, _) = tokio::time::timeout(CLOSE_DEADLINE, l.accept())
        .await
        .unwrap()
        .unwrap();
    let mut raw = Raw::Tcp(s);
    let mut hdr = [0u8; 8];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut hdr))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hdr, sp_header(our_type), "our handshake bytes");
    raw.write(&sp_header(peer_type)).await;
    raw
}

async fn read_frame(raw: &mut Raw) -> Vec<u8> {
    let mut len = [0u8; 8];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut len))
        .await
        .expect("a frame in time")
        .unwrap();
    let len = u64::from_be_bytes(len) as usize;
    assert!(len < 1 << 20, "implausible frame length {len}");
    let mut payload = vec![0u8; len];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut payload))
        .await
        .unwrap()
        .unwrap();
    payload
}

/// 8.3 #43: with a resend interval, an unanswered request goes out again with the SAME id,
/// and answering the copy completes the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_resends_an_unanswered_request_with_the_same_id() {
    watch_worker_panics();
    let req = Req::new();
    req.set_recv_timeout(Some(RECV_TIMEOUT));
    req.set_send_timeout(Some(RECV_TIMEOUT));
    req.set_resend_interval(Some(Duration::from_millis(100)));
    let mut raw = raw_peer_for(&req, REQ_TYPE, REP_TYPE).await;
    req.send("again").await.unwrap();
    let first = read_frame(&mut raw).await;
    let t0 = Instant::now();
    let second = read_frame(&mut raw).await;
    let gap = t0.elapsed();
    assert_eq!(
        first, second,
        "a resend must repeat the request byte for byte (same id)"
    );
    assert_eq!(&first[4..], b"again");
    assert!(first[0] & 0x80 != 0);
    assert!(
        gap >= Duration::from_millis(50),
        "resent after only {gap:?}"
    );
    let mut reply = first[..4].to_vec();
    reply.extend_from_slice(b"done");
    raw.write(&framed(Transport::Tcp, &reply)).await;
    assert_eq!(
        &req.recv().await.expect("reply to the resent request").body[..],
        b"done"
    );
    // The next request uses a different id.
    req.send("next").await.unwrap();
    let next = loop {
        let f = read_frame(&mut raw).await;
        if f[4..] != b"again"[..] {
            break f;
        }
    };
    assert_eq!(&next[4..], b"next");
    assert_ne!(next[..4], first[..4], "a new request must get a new id");
    assert_no_worker_panics();
}

/// What our PUSH and PAIR put on the wire: their 8-byte header, then plain length-prefixed
/// bodies with no SP header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_and_pair_send_exact_handshake_and_frame_bytes() {
    watch_worker_panics();
    let push = Push::new();
    push.set_send_timeout(Some(RECV_TIMEOUT));
    let mut raw = raw_peer_for(&push, PUSH_TYPE, PULL_TYPE).await;
    push.send("abc").await.unwrap();
    push.send(Vec::<u8>::new()).await.unwrap();
    let mut buf = [0u8; 19];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &buf[..],
        &[0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0, 0, 0, 0, 0]
    );

    let pair = sp_tokio::Pair::new();
    pair.set_send_timeout(Some(RECV_TIMEOUT));
    pair.set_recv_timeout(Some(RECV_TIMEOUT));
    let mut raw = raw_peer_for(&pair, 0x10, 0x10).await;
    pair.send("xy").await.unwrap();
    assert_eq!(read_frame(&mut raw).await, b"xy");
    raw.write(&framed(Transport::Tcp, b"back")).await;
    assert_eq!(&pair.recv().await.unwrap().body[..], b"back");
    assert_no_worker_panics();
}

// ---------------------------------------------------------------------------------------------
// Protocol-level garbage for SURVEYOR, REP, PAIR v1 and PUB (spec 4.2, 4.3, 4.4.3, 4.6, 9 #4)

const PAIR1_TYPE: u16 = 0x11;
const PUB_TYPE: u16 = 0x20;
const SUB_TYPE: u16 = 0x21;
const SURVEYOR_TYPE: u16 = 0x62;
const RESPONDENT_TYPE: u16 = 0x63;

/// Reads one frame in `t`'s framing (IPC's type byte included) and returns its payload.
async fn read_frame_on(raw: &mut Raw, t: Transport) -> Vec<u8> {
    let mut head = vec![0u8; length_prefix(t, 0).len()];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut head))
        .await
        .expect("a frame in time")
        .expect("read a frame header");
    let len_bytes: [u8; 8] = head[head.len() - 8..].try_into().unwrap();
    let len = u64::from_be_bytes(len_bytes) as usize;
    assert!(len < 1 << 20, "implausible frame length {len}");
    let mut payload = vec![0u8; len];
    tokio::time::timeout(CLOSE_DEADLINE, raw.read_exact(&mut payload))
        .await
        .expect("a frame body in time")
        .expect("read a frame body");
    payload
}

/// Our SURVEYOR kicks a respondent whose response is shorter than the 4-byte survey ID, as
/// NNG does (the sp-core surveyor follows NNG here; mangos would drop the response). The
/// garbage is never delivered, the survey stays live, and a well-behaved respondent connected
/// beside it is still answered, during that survey and the next. A response with a stale ID
/// is dropped without a kick, and a valid raw response after it is delivered.
async fn surveyor_kicks_short_responses(t: Transport) {
    watch_worker_panics();
    let surveyor = sp_tokio::Surveyor::new();
    surveyor.set_survey_time(RECV_TIMEOUT);
    surveyor.set_recv_timeout(Some(RECV_TIMEOUT));
    let target = Target::listen(&surveyor, t).await;
    let resident = sp_tokio::Respondent::new();
    resident.set_recv_timeout(Some(RECV_TIMEOUT));
    resident.dial(&target.url).await.expect("resident dials");
    sp_tests::wait_for_pipe_count(&surveyor, 1).await;

    for (round, garbage) in [&[0x80u8, 0x00][..], &[0x80, 0, 0], &[]]
        .into_iter()
        .enumerate()
    {
        let case = format!("response of {} bytes", garbage.len());
        let mut raw = target.raw_handshaken(RESPONDENT_TYPE, SURVEYOR_TYPE).await;
        sp_tests::wait_for_pipe_count(&surveyor, 2).await;
        let survey = format!("survey {round}");
        surveyor.send(survey.clone().into_bytes()).await.unwrap();
        let got = read_frame_on(&mut raw, t).await;
        assert!(got[0] & 0x80 != 0, "{case}: survey id must have bit 31 set");
        assert_eq!(&got[4..], survey.as_bytes(), "{case}: survey bytes");
        raw.write(&framed(t, garbage)).await;
        raw.expect_closed(CLOSE_DEADLINE, &case).await;
        sp_tests::wait_for_pipe_count(&surveyor, 1).await;
        // The resident still answers this survey, and its answer is the first one delivered.
        let asked = resident.recv().await.expect("resident receives the survey");
        assert_eq!(&asked.body[..], survey.as_bytes());
        let answer = format!("{case}: resident answer");
        resident.send(answer.clone().into_bytes()).await.unwrap();
        let got = surveyor
            .recv()
            .await
            .unwrap_or_else(|e| panic!("{case}: resident answer lost: {e}"));
        assert_eq!(
            &got.body[..],
            answer.as_bytes(),
            "{case}: SURVEYOR delivered something else first"
        );
        assert_no_worker_panics();
    }

    // A stale ID is dropped without closing the pipe; a correct response after it arrives.
    let mut raw = target.raw_handshaken(RESPONDENT_TYPE, SURVEYOR_TYPE).await;
    sp_tests::wait_for_pipe_count(&surveyor, 2).await;
    surveyor.send("last survey").await.unwrap();
    let got = read_frame_on(&mut raw, t).await;
    let mut stale = got[..4].to_vec();
    stale[3] ^= 0x01;
    stale.extend_from_slice(b"stale");
    let mut good = got[..4].to_vec();
    good.extend_from_slice(b"raw answer");
    raw.write(&framed(t, &stale)).await;
    raw.write(&framed(t, &good)).await;
    let delivered = surveyor.recv().await.expect("the valid raw response");
    assert_eq!(
        &delivered.body[..],
        b"raw answer",
        "stale response delivered"
    );
    assert_eq!(
        surveyor.pipe_count(),
        2,
        "a stale ID must not kick the pipe"
    );
    let asked = resident
        .recv()
        .await
        .expect("resident receives the last survey");
    assert_eq!(&asked.body[..], b"last survey");
    resident.send("resident last").await.unwrap();
    assert_eq!(
        &surveyor.recv().await.expect("resident answer").body[..],
        b"resident last"
    );
    assert_no_worker_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveyor_kicks_a_response_shorter_than_a_survey_id_over_tcp() {
    surveyor_kicks_short_responses(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveyor_kicks_a_response_shorter_than_a_survey_id_over_ipc() {
    surveyor_kicks_short_responses(Transport::Ipc).await;
}

/// Our REP kicks a raw REQ whose request has no end-of-backtrace word (NNG's behaviour, which
/// the sp-core REP implements): the connection is closed without the bad peer half-closing,
/// nothing is delivered, and both the resident REQ and a new one are still served.
async fn rep_kicks_requests_without_a_bottom_word(t: Transport) {
    let s = RepUnderAttack::new(t).await;
    for (case, payload) in [
        (
            "two hop words and no request id",
            vec![0, 0, 0, 1, 0, 0, 0, 2],
        ),
        (
            "one hop word then a partial word",
            vec![0, 0, 0, 7, 0x80, 0],
        ),
        ("a partial word", vec![0x80, 0, 0]),
        ("an empty request", vec![]),
    ] {
        let mut raw = s.target.raw_handshaken(REQ_TYPE, REP_TYPE).await;
        raw.write(&framed(t, &payload)).await;
        raw.expect_closed(CLOSE_DEADLINE, case).await;
        s.check_serving(case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_kicks_a_request_without_a_bottom_of_stack_word_over_tcp() {
    rep_kicks_requests_without_a_bottom_word(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_kicks_a_request_without_a_bottom_of_stack_word_over_ipc() {
    rep_kicks_requests_without_a_bottom_word(Transport::Ipc).await;
}

/// Our PAIR v1 follows NNG's receive rules (spec 4.2): a hop word above 0xFF (`0x1000`, as in
/// `test_poly_recv_garbage`, and `0x100`) or a body shorter than the word kicks the pipe; a
/// hop count above the TTL is dropped without a kick. After each kick the socket takes a new
/// peer, and a well-behaved PAIR1 still exchanges messages both ways.
async fn pair1_hop_word_garbage(t: Transport) {
    watch_worker_panics();
    let pair = sp_tokio::Pair1::new();
    pair.set_recv_timeout(Some(RECV_TIMEOUT));
    pair.set_send_timeout(Some(RECV_TIMEOUT));
    let target = Target::listen(&pair, t).await;

    // Over the TTL (default 8): dropped, pipe kept; the next valid message is delivered, and a
    // reply carries NNG's first-hop word.
    let mut raw = target.raw_handshaken(PAIR1_TYPE, PAIR1_TYPE).await;
    raw.write(&framed(t, &[0, 0, 0, 9, b'f', b'a', b'r'])).await;
    raw.write(&framed(t, &[0, 0, 0, 1, b'o', b'k'])).await;
    let got = pair
        .recv()
        .await
        .expect("the valid message after an over-TTL one");
    assert_eq!(&got.body[..], b"ok", "an over-TTL message was delivered");
    pair.send("back").await.unwrap();
    assert_eq!(read_frame_on(&mut raw, t).await, b"\x00\x00\x00\x01back");

    for (case, payload) in [
        ("hop word 0x1000", vec![0, 0, 0x10, 0, b'x']),
        ("hop word 0x100", vec![0, 0, 1, 0, b'y']),
        ("hop word 0xFFFFFFFF", vec![0xff; 4]),
        ("a body shorter than the hop word", vec![0, 0, 1]),
        ("an empty body", vec![]),
    ] {
        if case != "hop word 0x1000" {
            raw = target.raw_handshaken(PAIR1_TYPE, PAIR1_TYPE).await;
        }
        raw.write(&framed(t, &payload)).await;
        raw.expect_closed(CLOSE_DEADLINE, case).await;
        sp_tests::wait_for_pipe_count(&pair, 0).await;
        assert_nothing_pending(&pair, case);
        assert_no_worker_panics();
    }

    let good = sp_tokio::Pair1::new();
    good.set_recv_timeout(Some(RECV_TIMEOUT));
    good.set_send_timeout(Some(RECV_TIMEOUT));
    good.dial(&target.url).await.expect("a good PAIR1 dials");
    good.send("hello").await.unwrap();
    assert_eq!(
        &pair.recv().await.expect("good peer's message").body[..],
        b"hello"
    );
    pair.send("hi").await.unwrap();
    assert_eq!(&good.recv().await.expect("our reply").body[..], b"hi");
    assert_no_worker_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair1_kicks_a_bad_hop_word_and_drops_over_ttl_over_tcp() {
    pair1_hop_word_garbage(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair1_kicks_a_bad_hop_word_and_drops_over_ttl_over_ipc() {
    pair1_hop_word_garbage(Transport::Ipc).await;
}

/// A raw SUB sends data to our PUB. The sp-core PUB discards it and keeps the pipe (mangos'
/// choice; NNG would kick), so the raw SUB still receives what is published next; a resident
/// SUB and a new one keep receiving throughout. Once the raw SUB half-closes and its pipe is
/// gone, everything it sent has been through the PUB core.
async fn pub_ignores_data_from_subscribers(t: Transport) {
    watch_worker_panics();
    let publisher = sp_tokio::Pub::new();
    let target = Target::listen(&publisher, t).await;
    let resident = sp_tokio::Sub::new();
    resident.set_recv_timeout(Some(RECV_TIMEOUT));
    resident.subscribe(b"");
    resident
        .dial(&target.url)
        .await
        .expect("resident SUB dials");
    sp_tests::wait_for_pipe_count(&publisher, 1).await;

    let mut raw = target.raw_handshaken(SUB_TYPE, PUB_TYPE).await;
    sp_tests::wait_for_pipe_count(&publisher, 2).await;
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80, 0, 0, 1],
        b"subscribe me".to_vec(),
        vec![0x5a; 10_000],
    ];
    for (round, g) in garbage.iter().enumerate() {
        raw.write(&framed(t, g)).await;
        let msg = format!("published after garbage {round}");
        publisher.send(msg.clone().into_bytes()).await.unwrap();
        assert_eq!(
            &resident
                .recv()
                .await
                .expect("resident SUB keeps receiving")
                .body[..],
            msg.as_bytes()
        );
        assert_eq!(
            read_frame_on(&mut raw, t).await,
            msg.as_bytes(),
            "the raw SUB's pipe was dropped or skipped"
        );
    }
    raw.write(&framed(t, b"last words")).await;
    raw.shutdown_write().await;
    sp_tests::wait_for_pipe_count(&publisher, 1).await;
    raw.expect_closed(CLOSE_DEADLINE, "raw SUB after its half-close")
        .await;

    publisher.send("after the raw SUB left").await.unwrap();
    assert_eq!(
        &resident.recv().await.expect("resident SUB").body[..],
        b"after the raw SUB left"
    );
    let newcomer = sp_tokio::Sub::new();
    newcomer.set_recv_timeout(Some(RECV_TIMEOUT));
    newcomer.subscribe(b"");
    newcomer.dial(&target.url).await.expect("a new SUB dials");
    sp_tests::wait_for_pipe_count(&publisher, 2).await;
    publisher.send("to everyone").await.unwrap();
    assert_eq!(&newcomer.recv().await.unwrap().body[..], b"to everyone");
    assert_eq!(&resident.recv().await.unwrap().body[..], b"to everyone");
    assert_no_worker_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_ignores_data_from_a_subscriber_and_keeps_publishing_over_tcp() {
    pub_ignores_data_from_subscribers(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_ignores_data_from_a_subscriber_and_keeps_publishing_over_ipc() {
    pub_ignores_data_from_subscribers(Transport::Ipc).await;
}
