//! Interop over `tls+tcp://`, `ws://` and `wss://` with nngcat (NNG 1.5, Mbed TLS), pynng
//! (NNG 1.11) and nanocat (nanomsg 1.1, `ws://` only): REQ/REP, PUSH/PULL, PUB/SUB and PAIR,
//! each with the peer listening and with the peer dialing, payloads checked byte for byte.
//!
//! Certificates come from [`sp_tests::certs`]: the peer gets PEM files, we get the same PKI
//! in memory. Peers dial `localhost` (Mbed TLS 2 matches names but not IP addresses against a
//! certificate); we dial `127.0.0.1` (rustls checks IP subject names). nanomsg's ws listener
//! refuses a URL with a path, so it listens on (and we dial) the bare `host:port`.
//!
//! Skipped (with a message) when a peer is not installed, unless `SP_REQUIRE_PEERS=1`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use sp_tests::certs::pki;
use sp_tests::{
    binary_payload, dial_retrying, encode_hex, free_tcp_port, parse_hex_lines, parse_quoted_lines,
    require_peer, wait_for_pipes, PeerOutput, PeerProcess, PEER_DEADLINE, RECV_TIMEOUT,
};
use sp_tokio::{Pair, Pub, Pull, Push, Rep, Req, Sub, TlsConfig};
use sp_transport::{SendRole, SocketCore};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Tls,
    Ws,
    Wss,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Tls => "tls+tcp",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    fn secure(self) -> bool {
        self != Scheme::Ws
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Nngcat,
    Nanocat,
    Pynng,
}

struct Peer {
    kind: Kind,
    bin: PathBuf,
}

impl Peer {
    fn find(kind: Kind) -> Option<Self> {
        let name = match kind {
            Kind::Nngcat => "nngcat",
            Kind::Nanocat => "nanocat",
            Kind::Pynng => "pynng",
        };
        require_peer(name).map(|bin| Self { kind, bin })
    }

    /// The path part of URLs (nanomsg's ws listener refuses paths).
    fn path(&self, scheme: Scheme) -> &'static str {
        match (self.kind, scheme) {
            (_, Scheme::Tls) => "",
            (Kind::Nanocat, _) => "",
            _ => "/sp/interop",
        }
    }
}

/// What the peer does in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    /// Sends its payload once per receive, printing what it got (req, rep, pair).
    Exchange,
    /// Sends its payload (repeatedly for pub and pair, which may send before a peer is up).
    Send,
    /// Prints `count` received messages.
    Recv,
}

/// pynng runner: argv ROLE MODE URL COUNT ACT HEX_PAYLOAD CA CERT KEY.
const PYNNG_SCRIPT: &str = r#"
import os, sys, time, threading, pynng
role, mode, url, count, act, payload, ca, cert, key = sys.argv[1:10]
count = int(count)
payload = bytes.fromhex(payload)
cls = dict(req=pynng.Req0, rep=pynng.Rep0, push=pynng.Push0, pull=pynng.Pull0, pub=pynng.Pub0,
           sub=pynng.Sub0, pair=pynng.Pair0)[role]
s = cls(recv_timeout=5000, send_timeout=5000)
if url.startswith("tls+tcp") or url.startswith("wss"):
    if mode == "listen":
        cfg = pynng.TLSConfig(pynng.TLSConfig.MODE_SERVER, own_cert_string=open(cert).read(),
                              own_key_string=open(key).read())
    else:
        cfg = pynng.TLSConfig(pynng.TLSConfig.MODE_CLIENT, ca_string=open(ca).read(),
                              server_name="localhost")
    s.tls_config = cfg
if role == "sub":
    s.subscribe(b"")
gone = threading.Event()
s.add_post_pipe_remove_cb(lambda p: gone.set())
if mode == "listen":
    s.listen(url)
else:
    s.dial(url, block=False)
def show(m):
    print("recv", m.hex(), flush=True)
if role == "req":
    s.send(payload)
    show(s.recv())
elif role == "rep":
    show(s.recv())
    s.send(payload)
    gone.wait(10)
elif act == "send" and role in ("pub", "pair"):
    end = time.time() + 10
    while time.time() < end and not gone.is_set():
        try:
            s.send(payload)
        except pynng.exceptions.Timeout:
            pass
        time.sleep(0.1)
elif act == "send":
    s.send(payload)
    gone.wait(10)
else:
    for _ in range(count):
        show(s.recv())
print("done", flush=True)
# Exit without closing: pynng 0.8 (NNG 1.11) can panic in its own close while its pipe-removal
# callback still runs ("pthread_mutex_lock: Invalid argument" in nni_task_dispatch). Every
# exchange is over by now; the kernel closes the connections as close would.
os._exit(0)
"#;

impl Peer {
    /// Spawns the peer as `role` listening on or dialing `url`.
    fn spawn(&self, role: &str, listen: bool, url: &str, act: Act, payload: &[u8]) -> PeerProcess {
        let p = pki();
        let mut cmd = Command::new(&self.bin);
        match self.kind {
            Kind::Pynng => {
                cmd.args(["-c", PYNNG_SCRIPT, role]);
                cmd.arg(if listen { "listen" } else { "dial" });
                cmd.args([url, "1"]);
                cmd.arg(match act {
                    Act::Send => "send",
                    Act::Recv => "recv",
                    Act::Exchange => "exchange",
                });
                cmd.arg(encode_hex(payload));
                cmd.arg(&p.ca_file)
                    .arg(&p.server.cert_file)
                    .arg(&p.server.key_file);
            }
            Kind::Nngcat | Kind::Nanocat => {
                let nng = self.kind == Kind::Nngcat;
                cmd.arg(format!("--{role}{}", if nng { "0" } else { "" }));
                cmd.arg(match (nng, listen) {
                    (true, true) => "--listen",
                    (true, false) => "--dial",
                    (false, true) => "--bind",
                    (false, false) => "--connect",
                });
                cmd.arg(url);
                if url.starts_with("tls+tcp") || url.starts_with("wss") {
                    if listen {
                        cmd.arg("--cert").arg(&p.server.combined_file);
                    } else {
                        cmd.arg("--cacert").arg(&p.ca_file);
                    }
                }
                if role == "sub" {
                    cmd.args(["--subscribe", ""]);
                }
                if act != Act::Recv {
                    cmd.arg("--file").arg(payload_path(payload));
                }
                if act == Act::Send && matches!(role, "pub" | "pair") {
                    if nng {
                        cmd.args(["--interval", "1", "--count", "8"]);
                    } else {
                        cmd.args(["--interval", "0.3"]);
                    }
                }
                if act != Act::Send {
                    cmd.arg("--quoted");
                    // nngcat's REQ ends after its one reply by itself; with --count it may
                    // fail computing the next wait ("Cannot set recv timeout").
                    if nng && role != "req" {
                        cmd.args(["--count", "1"]);
                    }
                    cmd.args(["--recv-timeout", "5"]);
                }
            }
        }
        let name = format!("{:?} {role}", self.kind);
        PeerProcess::spawn(&name, &mut cmd)
    }

    /// The messages the peer printed.
    fn printed(&self, out: &PeerOutput) -> Vec<Vec<u8>> {
        match self.kind {
            Kind::Pynng => parse_hex_lines(&out.stdout, "recv"),
            _ => parse_quoted_lines(&out.stdout),
        }
    }
}

/// Writes `payload` to a new file in a directory that lives as long as the test process.
fn payload_path(payload: &[u8]) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let path = dir
        .path()
        .join(format!("payload-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, payload).expect("write payload");
    path
}

fn server_tls() -> TlsConfig {
    let p = pki();
    TlsConfig::builder()
        .cert_key_pem(p.server.cert_pem.clone(), p.server.key_pem.clone())
        .build()
        .unwrap()
}

fn client_tls() -> TlsConfig {
    TlsConfig::builder()
        .ca_pem(pki().ca_pem.clone())
        .build()
        .unwrap()
}

/// Sets up our socket for `scheme` and listens; returns the URL for the peer to dial.
async fn our_listener<P: SocketCore>(
    sock: &sp_tests::Sock<P>,
    peer: &Peer,
    scheme: Scheme,
) -> String {
    sock.set_recv_timeout(Some(RECV_TIMEOUT));
    sock.set_send_timeout(Some(RECV_TIMEOUT));
    sock.set_tls(server_tls());
    let bound = sock
        .listen(&format!(
            "{}://127.0.0.1:0{}",
            scheme.name(),
            peer.path(scheme)
        ))
        .await
        .expect("our listen");
    let (_, port) = bound.address().host_port().expect("tcp-based");
    format!("{}://localhost:{port}{}", scheme.name(), peer.path(scheme))
}

/// Picks a port for the peer to listen on; returns (peer's URL, our URL to dial).
fn peer_listener<P: SocketCore>(
    sock: &sp_tests::Sock<P>,
    peer: &Peer,
    scheme: Scheme,
) -> (String, String) {
    sock.set_recv_timeout(Some(RECV_TIMEOUT));
    sock.set_send_timeout(Some(RECV_TIMEOUT));
    if scheme.secure() {
        sock.set_tls(client_tls());
    }
    let port = free_tcp_port();
    let url = format!("{}://127.0.0.1:{port}{}", scheme.name(), peer.path(scheme));
    (url.clone(), url)
}

fn payload(tag: u8) -> Vec<u8> {
    let mut p = format!("interop {tag}: ").into_bytes();
    p.extend(binary_payload(1400, tag));
    p
}

async fn finish(peer: &Peer, proc: PeerProcess, what: &str) -> PeerOutput {
    let out = proc.wait(PEER_DEADLINE).await;
    if peer.kind != Kind::Nanocat {
        // nanocat ends its receive loops by timing out, which it reports as a failure.
        out.assert_success(what);
    }
    out
}

async fn peer_req_our_rep(peer: &Peer, scheme: Scheme) {
    let rep = Rep::new();
    let url = our_listener(&rep, peer, scheme).await;
    let (request, reply) = (payload(1), payload(2));
    let proc = peer.spawn("req", false, &url, Act::Exchange, &request);
    let got = rep.recv().await.expect("our REP receives");
    assert_eq!(got.body.as_ref(), request.as_slice());
    rep.send(reply.clone()).await.expect("our REP replies");
    let out = finish(peer, proc, "peer REQ").await;
    assert_eq!(peer.printed(&out), [reply], "{}", out.describe());
}

async fn our_req_peer_rep(peer: &Peer, scheme: Scheme) {
    let req = Req::new();
    let (peer_url, url) = peer_listener(&req, peer, scheme);
    let (request, reply) = (payload(3), payload(4));
    let proc = peer.spawn("rep", true, &peer_url, Act::Exchange, &reply);
    dial_retrying(&req, &url);
    wait_for_pipes(&req, 1).await;
    req.send(request.clone()).await.expect("our REQ sends");
    let got = req.recv().await.expect("our REQ receives the reply");
    assert_eq!(got.body.as_ref(), reply.as_slice());
    req.close().await;
    let out = finish(peer, proc, "peer REP").await;
    assert_eq!(peer.printed(&out), [request], "{}", out.describe());
}

async fn peer_push_our_pull(peer: &Peer, scheme: Scheme) {
    let pull = Pull::new();
    let url = our_listener(&pull, peer, scheme).await;
    let msg = payload(5);
    let proc = peer.spawn("push", false, &url, Act::Send, &msg);
    let got = pull.recv().await.expect("our PULL receives");
    assert_eq!(got.body.as_ref(), msg.as_slice());
    pull.close().await;
    finish(peer, proc, "peer PUSH").await;
}

async fn our_push_peer_pull(peer: &Peer, scheme: Scheme) {
    let push = Push::new();
    let (peer_url, url) = peer_listener(&push, peer, scheme);
    let msg = payload(6);
    let proc = peer.spawn("pull", true, &peer_url, Act::Recv, &[]);
    dial_retrying(&push, &url);
    wait_for_pipes(&push, 1).await;
    push.send(msg.clone()).await.expect("our PUSH sends");
    let out = finish(peer, proc, "peer PULL").await;
    assert_eq!(peer.printed(&out), [msg], "{}", out.describe());
}

/// Sends `msg` every 50 ms until the peer process ends (a PUB drops what it sends before the
/// subscriber's pipe is up, so one send is not enough), then returns the peer's output.
async fn send_until_peer_ends<P: SendRole>(
    sock: &sp_tests::Sock<P>,
    mut proc: PeerProcess,
    msg: &[u8],
) -> PeerProcess {
    let end = Instant::now() + PEER_DEADLINE;
    while proc.is_running() && Instant::now() < end {
        let _ = sock.send(msg.to_vec()).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proc
}

async fn peer_sub_our_pub(peer: &Peer, scheme: Scheme) {
    let publ = Pub::new();
    let url = our_listener(&publ, peer, scheme).await;
    let msg = payload(7);
    let proc = peer.spawn("sub", false, &url, Act::Recv, &[]);
    wait_for_pipes(&publ, 1).await;
    let proc = send_until_peer_ends(&publ, proc, &msg).await;
    let out = finish(peer, proc, "peer SUB").await;
    let printed = peer.printed(&out);
    assert!(!printed.is_empty(), "{}", out.describe());
    assert!(printed.iter().all(|m| *m == msg), "{}", out.describe());
}

async fn our_sub_peer_pub(peer: &Peer, scheme: Scheme) {
    let sub = Sub::new();
    sub.subscribe(b"interop");
    let (peer_url, url) = peer_listener(&sub, peer, scheme);
    let msg = payload(8);
    let proc = peer.spawn("pub", true, &peer_url, Act::Send, &msg);
    dial_retrying(&sub, &url);
    let got = sub.recv().await.expect("our SUB receives");
    assert_eq!(got.body.as_ref(), msg.as_slice());
    sub.close().await;
    let _ = proc.kill();
}

async fn peer_pair_dials_and_sends(peer: &Peer, scheme: Scheme) {
    let pair = Pair::new();
    let url = our_listener(&pair, peer, scheme).await;
    let msg = payload(9);
    let proc = peer.spawn("pair", false, &url, Act::Send, &msg);
    let got = pair.recv().await.expect("our PAIR receives");
    assert_eq!(got.body.as_ref(), msg.as_slice());
    pair.close().await;
    let _ = proc.kill();
}

async fn peer_pair_listens_and_receives(peer: &Peer, scheme: Scheme) {
    let pair = Pair::new();
    let (peer_url, url) = peer_listener(&pair, peer, scheme);
    let msg = payload(10);
    let proc = peer.spawn("pair", true, &peer_url, Act::Recv, &[]);
    dial_retrying(&pair, &url);
    wait_for_pipes(&pair, 1).await;
    pair.send(msg.clone()).await.expect("our PAIR sends");
    let out = finish(peer, proc, "peer PAIR").await;
    assert_eq!(peer.printed(&out), [msg], "{}", out.describe());
}

macro_rules! interop {
    ($($module:ident: $kind:expr, $scheme:expr;)*) => {$(
        mod $module {
            use super::*;

            async fn run(f: impl AsyncFnOnce(&Peer, Scheme)) {
                let Some(peer) = Peer::find($kind) else { return };
                f(&peer, $scheme).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn peer_req_dials_our_rep() { run(peer_req_our_rep).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn our_req_dials_peer_rep() { run(our_req_peer_rep).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn peer_push_dials_our_pull() { run(peer_push_our_pull).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn our_push_dials_peer_pull() { run(our_push_peer_pull).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn peer_sub_dials_our_pub() { run(peer_sub_our_pub).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn our_sub_dials_peer_pub() { run(our_sub_peer_pub).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn peer_pair_dials_our_pair() { run(peer_pair_dials_and_sends).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn our_pair_dials_peer_pair() { run(peer_pair_listens_and_receives).await }
        }
    )*};
}

interop! {
    nngcat_tls: Kind::Nngcat, Scheme::Tls;
    nngcat_ws: Kind::Nngcat, Scheme::Ws;
    nngcat_wss: Kind::Nngcat, Scheme::Wss;
    pynng_tls: Kind::Pynng, Scheme::Tls;
    pynng_ws: Kind::Pynng, Scheme::Ws;
    pynng_wss: Kind::Pynng, Scheme::Wss;
    nanocat_ws: Kind::Nanocat, Scheme::Ws;
}
