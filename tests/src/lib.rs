//! Shared helpers for the integration tests: real peers (nngcat, nanocat, pynng), temp paths.
//!
//! * [`require_peer`] finds an installed peer, or prints a skip reason (panics instead when
//!   `SP_REQUIRE_PEERS=1`, as CI sets it).
//! * [`Endpoint`] hands out URLs for tcp (port 0 or a free port), ipc (a short temp path) and
//!   inproc (a unique name).
//! * [`PeerProcess`] runs a peer, collects its output and kills it on drop.
//! * [`wait_until`] / [`wait_for_pipes`] poll a condition with a deadline; tests never sleep to
//!   synchronise.
//! * [`harness`] runs one async test body on every adapter (time limits, waits on async-io
//!   timers, background threads, the sp-blocking shim).
//! * [`tokio_variant`]: tokio with one property changed, for tests of the driver.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sp_transport::SocketCore;

pub mod browser;
pub mod cat;
pub mod certs;
pub mod harness;
pub mod simnet;
pub mod tokio_variant;

/// Default receive timeout for the socket under test; every receive must end by itself.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a peer process may take before it is killed.
pub const PEER_DEADLINE: Duration = Duration::from_secs(20);
/// How long to wait for a connection to come up.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// A typed tokio socket of protocol `P`.
pub type Sock<P> = sp_transport::Socket<sp_tokio::Tokio, P>;

// ---------------------------------------------------------------------------------------------
// Peer discovery

/// Whether the environment insists that every peer is present (CI).
pub fn peers_required() -> bool {
    std::env::var("SP_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Looks `program` up on `PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Finds a real peer: `"nngcat"`, `"nanocat"` (their binaries) or `"pynng"` (the `python3`
/// that can import it).
///
/// When the peer is absent this prints "skipping: ..." and returns `None`, so the caller can
/// return early. With `SP_REQUIRE_PEERS=1` it panics with the same reason instead.
pub fn require_peer(name: &str) -> Option<PathBuf> {
    let found = match name {
        "pynng" => find_in_path("python3").filter(|py| {
            Command::new(py)
                .args(["-c", "import pynng"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }),
        other => find_in_path(other),
    };
    if found.is_none() {
        let install = match name {
            "nngcat" => "apt-get install nng-utils",
            "nanocat" => "apt-get install nanomsg-utils",
            "pynng" => "pip install pynng",
            "chromium" => "apt-get install chromium",
            _ => "see scripts/install-peers.sh",
        };
        let reason =
            format!("skipping: {name} not installed ({install}, or run scripts/install-peers.sh)");
        if peers_required() {
            panic!("SP_REQUIRE_PEERS=1 but {reason}");
        }
        eprintln!("{reason}");
        println!("{reason}");
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Addresses

/// Returns a TCP port that was free a moment ago (bind port 0, read it, drop the listener).
///
/// Prefer letting our side listen on port 0; use this only when the peer must listen.
pub fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A short temporary directory for IPC socket files, removed on drop.
pub struct TempIpcDir {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl TempIpcDir {
    /// Creates the directory under `/tmp` (TMPDIR may be long; `sun_path` is ~108 bytes).
    pub fn new() -> Self {
        let base = if Path::new("/tmp").is_dir() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("sp")
            .tempdir_in(base)
            .expect("create temp dir for ipc sockets");
        Self {
            dir,
            next: AtomicUsize::new(0),
        }
    }

    /// Returns a fresh socket path inside the directory (not created). On Windows, where
    /// `ipc://NAME` is the named pipe `\\.\pipe\NAME`, a unique pipe name (`spXXXX-sN`)
    /// instead: a pipe's name cannot hold the directory's backslashes.
    pub fn path(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if cfg!(windows) {
            let dir = self.dir.path().file_name().unwrap_or_default();
            return PathBuf::from(format!("{}-s{n}", dir.to_string_lossy()));
        }
        let p = self.dir.path().join(format!("s{n}.ipc"));
        assert!(
            p.as_os_str().len() <= 100,
            "ipc path too long: {}",
            p.display()
        );
        p
    }

    /// Returns a fresh `ipc:///abs/path` URL inside the directory (on Windows
    /// `ipc://spXXXX-sN`, see [`TempIpcDir::path`]).
    pub fn url(&self) -> String {
        ipc_url(&self.path())
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TempIpcDir {
    fn default() -> Self {
        Self::new()
    }
}

/// Returns `ipc://` + the absolute path (three slashes in total); on Windows `ipc://` + the
/// pipe's name.
pub fn ipc_url(path: &Path) -> String {
    assert!(
        cfg!(windows) || path.is_absolute(),
        "ipc test paths must be absolute"
    );
    format!("ipc://{}", path.display())
}

/// The raw end of an IPC connection, for tests that play a peer byte by byte: a Unix stream,
/// or on Windows a named-pipe client.
#[cfg(unix)]
pub type RawIpcStream = tokio::net::UnixStream;
/// The raw end of an IPC connection, for tests that play a peer byte by byte: a Unix stream,
/// or on Windows a named-pipe client.
#[cfg(windows)]
pub type RawIpcStream = tokio::net::windows::named_pipe::NamedPipeClient;

/// Connects a [`RawIpcStream`] to the IPC listener of `ipc_url(path)`.
pub async fn raw_ipc_connect(path: &Path) -> std::io::Result<RawIpcStream> {
    #[cfg(unix)]
    return tokio::net::UnixStream::connect(path).await;
    #[cfg(windows)]
    {
        let mut name = std::ffi::OsString::from(r"\\.\pipe\");
        name.push(path.as_os_str());
        tokio::net::windows::named_pipe::ClientOptions::new().open(name)
    }
}

/// Returns a process-unique `inproc://` URL.
pub fn inproc_url(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("inproc://{tag}-{}-{n}", std::process::id())
}

/// Stream transports the interop tests run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `tcp://127.0.0.1:PORT`
    Tcp,
    /// `ipc:///tmp/spXXXX/sN.ipc`
    Ipc,
    /// `inproc://name` (only between our own sockets)
    Inproc,
}

/// Hands out URLs for one test; owns the temp dir of its IPC paths.
pub struct Endpoint {
    transport: Transport,
    ipc: Option<TempIpcDir>,
}

impl Endpoint {
    /// Creates URLs for `transport`.
    pub fn new(transport: Transport) -> Self {
        let ipc = (transport == Transport::Ipc).then(TempIpcDir::new);
        Self { transport, ipc }
    }

    /// A URL for our side to listen on: port 0 for TCP (read the real one from `listen`).
    pub fn our_listen_url(&self) -> String {
        match self.transport {
            Transport::Tcp => "tcp://127.0.0.1:0".to_string(),
            Transport::Ipc => self.ipc.as_ref().expect("ipc dir").url(),
            Transport::Inproc => inproc_url("ep"),
        }
    }

    /// A concrete URL for a peer to listen on (a free port for TCP).
    pub fn peer_listen_url(&self) -> String {
        match self.transport {
            Transport::Tcp => format!("tcp://127.0.0.1:{}", free_tcp_port()),
            _ => self.our_listen_url(),
        }
    }
}

/// Writes `bytes` to a new file in a fresh temp dir; returns (dir guard, path).
pub fn payload_file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("sppl")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("payload.bin");
    std::fs::write(&path, bytes).expect("write payload file");
    (dir, path)
}

/// A binary payload of `len` bytes that covers every byte value (including NUL, 0x80, 0xff).
pub fn binary_payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Peer processes

/// What a finished (or killed) peer left behind.
#[derive(Debug)]
pub struct PeerOutput {
    /// The exit status; `None` when it had to be killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl PeerOutput {
    /// Stdout as lossy text, for messages.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as lossy text, for messages.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Whether the process exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Panics with the full output unless the process exited with status 0.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.success(),
            "{what}: peer did not exit cleanly: {}",
            self.describe()
        );
    }

    /// A one-line summary for assertion messages (long outputs are cut).
    pub fn describe(&self) -> String {
        fn cut(s: String) -> String {
            const MAX: usize = 600;
            if s.len() <= MAX {
                return s;
            }
            let mut end = MAX;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}... ({} bytes in all)", &s[..end], s.len())
        }
        format!(
            "status={:?} stdout={:?} stderr={:?}",
            self.status,
            cut(self.stdout_text()),
            cut(self.stderr_text())
        )
    }
}

/// A running peer. Its output is collected by reader threads; it is killed on drop.
pub struct PeerProcess {
    name: String,
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

fn drain<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

impl PeerProcess {
    /// Starts `cmd` with stdin closed and stdout/stderr captured.
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        Self {
            name: name.to_string(),
            child,
            stdout,
            stderr,
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (asynchronously, by polling) for the process to exit, killing it after
    /// `deadline`; then returns its output.
    pub async fn wait(mut self, deadline: Duration) -> PeerOutput {
        let end = Instant::now() + deadline;
        let mut status = None;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    break;
                }
                Ok(None) if Instant::now() < end => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => break,
            }
        }
        if status.is_none() {
            eprintln!(
                "{}: still running after {deadline:?}, killing it",
                self.name
            );
        }
        self.collect(status)
    }

    /// Kills the process now and returns whatever it had written.
    pub fn kill(mut self) -> PeerOutput {
        let status = self.child.try_wait().ok().flatten();
        self.collect(status)
    }

    fn collect(&mut self, status: Option<ExitStatus>) -> PeerOutput {
        if status.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        PeerOutput {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Wire bytes, written out by hand for raw peers (not by the code under test)

/// The 8-byte SP handshake header a peer of SP type `sp_type` sends.
pub fn sp_header(sp_type: u16) -> [u8; 8] {
    let [hi, lo] = sp_type.to_be_bytes();
    [0x00, b'S', b'P', 0x00, hi, lo, 0x00, 0x00]
}

/// A length prefix in the transport's framing: a u64 big-endian length, behind IPC's 0x01
/// type byte.
pub fn length_prefix(t: Transport, len: u64) -> Vec<u8> {
    let mut v = Vec::new();
    if t == Transport::Ipc {
        v.push(0x01);
    }
    v.extend_from_slice(&len.to_be_bytes());
    v
}

/// `payload` framed as the transport frames a message.
pub fn framed(t: Transport, payload: &[u8]) -> Vec<u8> {
    let mut v = length_prefix(t, payload.len() as u64);
    v.extend_from_slice(payload);
    v
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// The most one test body may take: [`limited`]'s bound.
pub const TEST_BODY_LIMIT: Duration = Duration::from_secs(30);

/// Runs a test body, panicking if it is still running after [`TEST_BODY_LIMIT`].
pub async fn limited(body: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_BODY_LIMIT, body)
        .await
        .expect("test body still running after the limit");
}

/// A `tcp://` URL on 127.0.0.1 with a free port.
pub fn tcp_url() -> String {
    format!("tcp://127.0.0.1:{}", free_tcp_port())
}

/// Polls `cond` every few milliseconds until it holds; panics with `what` after `deadline`.
pub async fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Like [`wait_until`] but returns whether the condition held instead of panicking.
pub async fn poll_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `sock` has at least `n` pipes attached.
pub async fn wait_for_pipes<P: SocketCore>(sock: &Sock<P>, n: usize) {
    wait_until(&format!("{n} pipe(s) attached"), CONNECT_DEADLINE, || {
        sock.pipe_count() >= n
    })
    .await;
}

/// Waits until `sock` has exactly `n` pipes attached.
pub async fn wait_for_pipe_count<P: SocketCore>(sock: &Sock<P>, n: usize) {
    wait_until(
        &format!("exactly {n} pipe(s) attached"),
        CONNECT_DEADLINE,
        || sock.pipe_count() == n,
    )
    .await;
}

/// Sets a fast reconnect back-off (10 ms doubling to 200 ms) and dials `url` in the background;
/// use when the peer may not be listening yet.
pub fn dial_retrying<P: SocketCore>(sock: &Sock<P>, url: &str) {
    sock.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(200));
    sock.dial_nonblocking(url)
        .unwrap_or_else(|e| panic!("dial_nonblocking {url}: {e}"));
}

/// Polls until something accepts TCP connections on `port` (a listening peer is up).
pub async fn wait_for_tcp_listener(port: u16) {
    let end = Instant::now() + CONNECT_DEADLINE;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        assert!(Instant::now() < end, "nothing listens on 127.0.0.1:{port}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls until something accepts IPC connections at `path` (on Windows, the named pipe
/// `ipc://` + `path` names).
pub async fn wait_for_ipc_listener(path: &Path) {
    let end = Instant::now() + CONNECT_DEADLINE;
    loop {
        if raw_ipc_connect(path).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < end,
            "nothing listens on {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Output parsing

/// Parses the `--quoted` output of nngcat / nanocat: one `"..."` line per message, with
/// `\n \r \t \" \\ \xNN` escapes. Panics on anything else.
pub fn parse_quoted_lines(out: &[u8]) -> Vec<Vec<u8>> {
    let mut msgs = Vec::new();
    let mut i = 0;
    while i < out.len() {
        assert_eq!(
            out[i],
            b'"',
            "quoted line must start with '\"' at {i}: {:?}",
            String::from_utf8_lossy(out)
        );
        i += 1;
        let mut msg = Vec::new();
        loop {
            let c = *out.get(i).unwrap_or_else(|| {
                panic!(
                    "unterminated quoted line: {:?}",
                    String::from_utf8_lossy(out)
                )
            });
            i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = out[i];
                    i += 1;
                    match e {
                        b'n' => msg.push(b'\n'),
                        b'r' => msg.push(b'\r'),
                        b't' => msg.push(b'\t'),
                        b'"' => msg.push(b'"'),
                        b'\\' => msg.push(b'\\'),
                        b'x' => {
                            let hex = std::str::from_utf8(&out[i..i + 2]).expect("hex escape");
                            msg.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                            i += 2;
                        }
                        other => panic!("unknown escape \\{}", other as char),
                    }
                }
                other => msg.push(other),
            }
        }
        assert_eq!(
            out.get(i),
            Some(&b'\n'),
            "quoted line must end with a newline"
        );
        i += 1;
        msgs.push(msg);
    }
    msgs
}

/// Parses lines of the form `TAG HEX` (the pynng scripts' output) into the byte strings
/// tagged `tag`.
pub fn parse_hex_lines(out: &[u8], tag: &str) -> Vec<Vec<u8>> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(2, ' ');
            (parts.next() == Some(tag)).then(|| decode_hex(parts.next().unwrap_or("")))
        })
        .collect()
}

/// Decodes lowercase or uppercase hex.
pub fn decode_hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len() & 1 == 0, "odd hex length: {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Encodes bytes as lowercase hex.
pub fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The process's resident set size in bytes, from `/proc/self/status` (Linux only).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Whether `::1` can be bound here (IPv6 may be disabled in containers).
pub fn ipv6_loopback_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

// ---------------------------------------------------------------------------------------------
// Panic watch

static WORKER_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Installs (once per process) a panic hook that counts panics on tokio worker threads, where
/// the library's background tasks (pipes, dialers, listeners) run. Tokio would otherwise
/// swallow such a panic silently. The default hook still prints it.
pub fn watch_worker_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let on_worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("tokio-runtime-worker"));
            if on_worker {
                WORKER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// How many panics [`watch_worker_panics`] has seen on tokio worker threads so far.
pub fn worker_panics() -> usize {
    WORKER_PANICS.load(Ordering::SeqCst)
}

/// Panics if any library task panicked on a worker thread since [`watch_worker_panics`].
pub fn assert_no_worker_panics() {
    assert_eq!(
        worker_panics(),
        0,
        "a background task panicked (see the panic message above)"
    );
}
