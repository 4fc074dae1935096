//! Memory follows the bytes a peer sends, never the length it claims.
//!
//! Many hostile connections each make themselves a pipe (an SP handshake, a TLS handshake, a
//! WebSocket upgrade), send a frame header claiming just under the receive limit (1 MiB),
//! then nothing more. Before, each such pipe reserved and zero-filled the claimed size at once
//! (1000 connections: about 1 GiB). Now each may hold at most about twice what it sent plus
//! the pipe's read buffer (64 KiB at the very most; a quiet pipe's starts at 4 KiB), on top of
//! what a pipe costs before it reads anything: over TCP, TLS and WebSocket (IPC pipes read
//! through the same code as TCP ones). The tests measure the process's resident memory.
//!
//! Its own test binary, so that no other test's memory moves the measurement.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sp_tests::certs::pki;
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

/// A PULL socket listening at `url` on its own runtime, with one well-behaved peer already
/// attached (so that the runtime's and socket's one-time allocations are not counted against
/// the hostile ones), and the resident size measured after it.
struct Target {
    rt: tokio::runtime::Runtime,
    pull: sp_tokio::Pull,
    addr: std::net::SocketAddr,
    _warm: Peer,
    before: u64,
    hostile: Vec<Peer>,
}

impl Target {
    /// `greet` makes a fresh connection a pipe (the SP handshake, a WebSocket upgrade, a TLS
    /// handshake).
    fn new(url: &str, recv_max_size: Option<usize>, greet: fn(TcpStream) -> Peer) -> Self {
        Self::with(url, recv_max_size, None, greet)
    }

    fn with(
        url: &str,
        recv_max_size: Option<usize>,
        tls: Option<sp_tokio::TlsConfig>,
        greet: fn(TcpStream) -> Peer,
    ) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let pull = rt.block_on(async { sp_tokio::Pull::new() });
        if let Some(max) = recv_max_size {
            pull.set_recv_max_size(max).expect("receive limit");
        }
        if let Some(tls) = tls {
            pull.set_tls(tls);
        }
        let addr = pull
            .listener(url)
            .and_then(|l| l.start())
            .expect("listen")
            .socket_addr()
            .expect("an ip address");
        let warm = greet(TcpStream::connect(addr).expect("connect"));
        wait_for_pipes(&pull, 1);
        let before = settled_rss(Duration::from_secs(2));
        Self {
            rt,
            pull,
            addr,
            _warm: warm,
            before,
            hostile: Vec::new(),
        }
    }

    /// Opens `n` connections and hands each to `attack`.
    fn attack(&mut self, n: usize, attack: impl Fn(TcpStream) -> Peer) {
        for _ in 0..n {
            let s = TcpStream::connect(self.addr).expect("connect");
            self.hostile.push(attack(s));
        }
        wait_for_pipes(&self.pull, n + 1);
    }

    /// What each hostile connection added to the resident size, once it holds still.
    fn per_connection(&self) -> u64 {
        let after = settled_rss(Duration::from_secs(5));
        after.saturating_sub(self.before) / self.hostile.len() as u64
    }

    fn close(self) {
        // Nothing the hostile peers sent was a whole message.
        assert_eq!(self.pull.stats().msgs_received, 0);
        drop(self.hostile);
        self.rt.block_on(self.pull.close());
    }
}

/// A connected peer of ours, kept open while the memory is measured.
type Peer = Box<dyn Write>;

/// PUSH's SP handshake (protocol 0x50).
fn sp_handshake(mut s: impl Write + 'static) -> Peer {
    s.write_all(&[0, b'S', b'P', 0, 0, 0x50, 0, 0])
        .expect("handshake");
    Box::new(s)
}

/// The handshake, then a frame header claiming `claim` bytes, then `sent` bytes of it.
fn hostile_sp(s: impl Write + 'static, claim: u64, sent: usize) -> Peer {
    let mut s = sp_handshake(s);
    let mut bytes = claim.to_be_bytes().to_vec();
    bytes.resize(bytes.len() + sent, 0x5a);
    s.write_all(&bytes).expect("hostile bytes");
    s.flush().expect("hostile bytes");
    s
}

#[test]
fn length_claims_cost_what_was_sent_not_what_was_claimed() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = connections();
    let mut target = Target::new("tcp://127.0.0.1:0", None, sp_handshake);
    // A frame header claiming 1 MiB - 16 bytes (just under the default limit), and nothing.
    target.attack(n, |s| hostile_sp(s, (1 << 20) - 16, 0));
    let per_pipe = target.per_connection();
    println!("{n} hostile connections: {per_pipe} bytes each (limit {PER_PIPE_LIMIT})");
    assert!(
        per_pipe <= PER_PIPE_LIMIT,
        "each hostile pipe costs {per_pipe} bytes, more than {PER_PIPE_LIMIT}"
    );
    // Every one of them is still a pipe (nothing was refused).
    assert_eq!(target.pull.stats().pipes_open, n + 1);
    target.close();
}

#[test]
fn unlimited_size_still_grows_with_the_bytes_sent() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // No receive limit: peers claim 1 GiB and send 81 KiB of it. Each pipe may hold about twice
    // what it was sent plus its read buffer, not the claim (before: 1.1 MiB each).
    const N: usize = 100;
    const SENT: usize = 81 * 1024;
    let mut target = Target::new("tcp://127.0.0.1:0", Some(0), sp_handshake);
    target.attack(N, |s| hostile_sp(s, 1 << 30, SENT));
    let per_pipe = target.per_connection();
    let limit = 2 * (SENT as u64 + 16) + 64 * 1024 + PIPE_ITSELF;
    println!("{N} peers claiming 1 GiB, sending 81 KiB: {per_pipe} bytes each (limit {limit})");
    assert!(
        per_pipe <= limit,
        "each pipe costs {per_pipe} bytes, more than {limit}"
    );
    target.close();
}

/// A PUSH client's WebSocket upgrade request (it names the protocol it wants to reach: PULL).
fn ws_upgrade_request() -> Vec<u8> {
    b"GET /sp HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: pull.sp.nanomsg.org\r\n\r\n"
        .to_vec()
}

/// Upgrades `s` (waiting for the server's answer, as RFC 6455 asks a client to), then sends
/// a masked binary frame header whose 64-bit length claims `claim` bytes, and `sent` bytes
/// of it.
fn hostile_ws(s: TcpStream, claim: u64, sent: usize) -> Peer {
    let mut s = ws_upgrade(s);
    let mut bytes = vec![0x82, 0x80 | 127];
    bytes.extend_from_slice(&claim.to_be_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4]);
    bytes.resize(bytes.len() + sent, 0x5a);
    s.write_all(&bytes).expect("hostile bytes");
    s
}

/// Sends the upgrade request and waits for the server's answer, as RFC 6455 asks a client
/// to before it sends a frame.
fn ws_upgrade(mut s: TcpStream) -> Peer {
    use std::io::Read;
    s.write_all(&ws_upgrade_request()).expect("upgrade");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte)
            .expect("the server's upgrade answer");
        answer.push(byte[0]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 101"), "upgrade refused");
    Box::new(s)
}

#[test]
fn websocket_length_claims_cost_what_was_sent() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Each peer upgrades, then claims a frame just under the 1 MiB limit and sends 16 bytes
    // of it. tungstenite reserves the claimed length at the frame header, but only as
    // address space: the pages it touches are what arrived plus its 32 KiB read window.
    let n = connections();
    let mut target = Target::new("ws://127.0.0.1:0/sp", None, ws_upgrade);
    target.attack(n, |s| hostile_ws(s, (1 << 20) - 1024, 16));
    let per_pipe = target.per_connection();
    // A WebSocket pipe itself costs more than a TCP one: the HTTP upgrade's buffers and
    // tungstenite's state; allowed as a second PIPE_ITSELF.
    let limit = PER_PIPE_LIMIT + PIPE_ITSELF;
    println!("{n} hostile WebSocket connections: {per_pipe} bytes each (limit {limit})");
    assert!(
        per_pipe <= limit,
        "each hostile WebSocket pipe costs {per_pipe} bytes, more than {limit}"
    );
    target.close();
}

/// A TLS client (trusting the test CA) over `s`, its handshake done.
fn tls_client(s: TcpStream) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use std::sync::{Arc, OnceLock};
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::pem::PemObject::from_pem_slice(pki().ca_pem.as_bytes())
            .expect("the test CA");
        roots.add(ca).expect("the test CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config.clone(), name).expect("tls client");
    let mut tls = rustls::StreamOwned::new(conn, s);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).expect("tls handshake");
    }
    tls
}

fn server_tls() -> sp_tokio::TlsConfig {
    let p = pki();
    sp_tokio::TlsConfig::builder()
        .cert_key_pem(p.server.cert_pem.clone(), p.server.key_pem.clone())
        .build()
        .expect("server tls")
}

#[test]
fn tls_length_claims_cost_what_was_sent() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The same claim as over TCP, inside TLS records. rustls keeps a record's worth of
    // buffers for each connection on top of the pipe, allowed as a second PIPE_ITSELF plus
    // its 16 KiB record buffer.
    let n = connections().min(400);
    let mut target = Target::with("tls+tcp://127.0.0.1:0", None, Some(server_tls()), |s| {
        sp_handshake(tls_client(s))
    });
    target.attack(n, |s| hostile_sp(tls_client(s), (1 << 20) - 16, 0));
    let per_pipe = target.per_connection();
    let limit = PER_PIPE_LIMIT + PIPE_ITSELF + 16 * 1024;
    println!("{n} hostile TLS connections: {per_pipe} bytes each (limit {limit})");
    assert!(
        per_pipe <= limit,
        "each hostile TLS pipe costs {per_pipe} bytes, more than {limit}"
    );
    target.close();
}

fn wait_for_pipes(pull: &sp_tokio::Pull, n: usize) {
    let end = Instant::now() + Duration::from_secs(30);
    while pull.stats().pipes_open < n {
        assert!(
            Instant::now() < end,
            "only {} of {n} pipes attached; {:?}",
            pull.stats().pipes_open,
            pull.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
