//! Interop scenarios against the command-line peers `nngcat` (NNG) and `nanocat` (nanomsg).
//!
//! Both tools print each received message with `--quoted` (one escaped line per message), take
//! the payload from `--file` (binary-safe) and end on a receive timeout. They differ in flag
//! names (`--req0`/`--req`, `--listen`/`--bind`, `--dial`/`--connect`) and in whether they know
//! `--count` (only nngcat). Every scenario checks payloads byte for byte in both directions
//! where the protocol allows it.

use std::path::PathBuf;
use std::process::Command;

use sp_tokio::{Pull, Push, Rep, Req};

use crate::{
    binary_payload, dial_retrying, parse_quoted_lines, payload_file, wait_for_pipes, Endpoint,
    PeerOutput, PeerProcess, Transport, PEER_DEADLINE, RECV_TIMEOUT,
};

/// Which command-line peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatKind {
    /// NNG's `nngcat`.
    Nngcat,
    /// nanomsg's `nanocat`.
    Nanocat,
}

/// A socket role understood by both tools.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// REQ (v0).
    Req,
    /// REP (v0).
    Rep,
    /// PUSH (v0).
    Push,
    /// PULL (v0).
    Pull,
    /// PAIR v0.
    Pair,
    /// PAIR v1 (nngcat only; nanomsg has no pair1).
    Pair1,
    /// PUB (v0).
    Pub,
    /// SUB (v0).
    Sub,
    /// SURVEYOR (v0).
    Surveyor,
    /// RESPONDENT (v0).
    Respondent,
    /// BUS (v0).
    Bus,
}

/// An installed command-line peer.
#[derive(Clone, Debug)]
pub struct Cat {
    kind: CatKind,
    bin: PathBuf,
}

/// Whether the peer listens or dials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The peer binds the address.
    Listen,
    /// The peer connects to the address.
    Dial,
}

impl Cat {
    /// Finds the tool (see [`crate::require_peer`]); `None` means "skip this test".
    pub fn find(kind: CatKind) -> Option<Self> {
        let name = match kind {
            CatKind::Nngcat => "nngcat",
            CatKind::Nanocat => "nanocat",
        };
        crate::require_peer(name).map(|bin| Self { kind, bin })
    }

    /// The tool's name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            CatKind::Nngcat => "nngcat",
            CatKind::Nanocat => "nanocat",
        }
    }

    fn role_flag(&self, role: Role) -> &'static str {
        match (self.kind, role) {
            (CatKind::Nngcat, Role::Req) => "--req0",
            (CatKind::Nngcat, Role::Rep) => "--rep0",
            (CatKind::Nngcat, Role::Push) => "--push0",
            (CatKind::Nngcat, Role::Pull) => "--pull0",
            (CatKind::Nngcat, Role::Pair) => "--pair0",
            (CatKind::Nngcat, Role::Pair1) => "--pair1",
            (CatKind::Nngcat, Role::Pub) => "--pub0",
            (CatKind::Nngcat, Role::Sub) => "--sub0",
            (CatKind::Nngcat, Role::Surveyor) => "--surveyor0",
            (CatKind::Nngcat, Role::Respondent) => "--respondent0",
            (CatKind::Nngcat, Role::Bus) => "--bus0",
            (CatKind::Nanocat, Role::Pair1) => panic!("nanocat has no pair1"),
            (CatKind::Nanocat, Role::Req) => "--req",
            (CatKind::Nanocat, Role::Rep) => "--rep",
            (CatKind::Nanocat, Role::Push) => "--push",
            (CatKind::Nanocat, Role::Pull) => "--pull",
            (CatKind::Nanocat, Role::Pair) => "--pair",
            (CatKind::Nanocat, Role::Pub) => "--pub",
            (CatKind::Nanocat, Role::Sub) => "--sub",
            (CatKind::Nanocat, Role::Surveyor) => "--surveyor",
            (CatKind::Nanocat, Role::Respondent) => "--respondent",
            (CatKind::Nanocat, Role::Bus) => "--bus",
        }
    }

    /// Builds `tool <role> <--listen|--dial> URL`.
    pub fn command(&self, role: Role, mode: Mode, url: &str) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(self.role_flag(role));
        cmd.arg(match (self.kind, mode) {
            (CatKind::Nngcat, Mode::Listen) => "--listen",
            (CatKind::Nngcat, Mode::Dial) => "--dial",
            (CatKind::Nanocat, Mode::Listen) => "--bind",
            (CatKind::Nanocat, Mode::Dial) => "--connect",
        });
        cmd.arg(url);
        cmd
    }

    /// Adds a stop condition for a receive loop: `--count n` where supported (nngcat), plus a
    /// receive timeout in whole seconds as a safety net (and the only stop for nanocat).
    fn stop_after(&self, cmd: &mut Command, count: usize, timeout_secs: u32) {
        if self.kind == CatKind::Nngcat && count > 0 {
            cmd.args(["--count", &count.to_string()]);
        }
        cmd.args(["--recv-timeout", &timeout_secs.to_string()]);
    }

    fn spawn(&self, what: &str, cmd: &mut Command) -> PeerProcess {
        PeerProcess::spawn(&format!("{} {what}", self.name()), cmd)
    }
}

fn check_messages(peer: &Cat, what: &str, out: &PeerOutput, expected: &[Vec<u8>]) {
    let got = parse_quoted_lines(&out.stdout);
    assert_eq!(
        got,
        expected,
        "{} {what}: printed messages differ ({})",
        peer.name(),
        out.describe()
    );
}

fn request_payloads() -> Vec<Vec<u8>> {
    vec![
        b"ping".to_vec(),
        binary_payload(300, 7),
        b"with \"quotes\"\tand\\tabs\n".to_vec(),
    ]
}

/// Listens with `sock` on a fresh URL from `ep`; returns the URL a peer should dial.
async fn listen_url<P: sp_transport::SocketCore>(sock: &crate::Sock<P>, ep: &Endpoint) -> String {
    sock.listen(&ep.our_listen_url())
        .await
        .expect("our listen")
        .to_string()
}

/// The peer's REQ dials our REP, once per request (each run sends one request and prints
/// the one reply); our REP checks each request and answers with a derived reply.
pub async fn peer_req_dials_our_rep(peer: &Cat, t: Transport) {
    let ep = Endpoint::new(t);
    let rep = Rep::new();
    rep.set_recv_timeout(Some(RECV_TIMEOUT));
    rep.set_send_timeout(Some(RECV_TIMEOUT));
    let url = listen_url(&rep, &ep).await;
    for request in request_payloads() {
        let (_dir, file) = payload_file(&request);
        let mut cmd = peer.command(Role::Req, Mode::Dial, &url);
        cmd.arg("--file").arg(&file).arg("--quoted");
        peer.stop_after(&mut cmd, 0, 5);
        let proc = peer.spawn("req", &mut cmd);
        let got = rep
            .recv()
            .await
            .expect("our REP receives the peer's request");
        assert!(
            got.header.is_empty(),
            "cooked REP must not expose the backtrace"
        );
        assert_eq!(&got.body[..], &request[..], "request body differs");
        let mut reply = b"reply to ".to_vec();
        reply.extend_from_slice(&request);
        rep.send(reply.clone()).await.expect("our REP replies");
        let out = proc.wait(PEER_DEADLINE).await;
        out.assert_success("peer REQ");
        check_messages(peer, "REQ", &out, &[reply]);
    }
}

/// The peer's REP listens and answers every request with one fixed payload; our REQ dials it
/// and sends several requests, each checked on both sides.
pub async fn peer_rep_listens_our_req_dials(peer: &Cat, t: Transport) {
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let reply = binary_payload(200, 3);
    let (_dir, file) = payload_file(&reply);
    let requests = request_payloads();
    let mut cmd = peer.command(Role::Rep, Mode::Listen, &url);
    cmd.arg("--file").arg(&file).arg("--quoted");
    peer.stop_after(&mut cmd, requests.len(), 2);
    let proc = peer.spawn("rep", &mut cmd);

    let req = Req::new();
    req.set_recv_timeout(Some(RECV_TIMEOUT));
    req.set_send_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&req, &url);
    wait_for_pipes(&req, 1).await;
    for request in &requests {
        req.send(request.clone()).await.expect("our REQ sends");
        let got = req.recv().await.expect("our REQ receives the peer's reply");
        assert!(
            got.header.is_empty(),
            "cooked REQ must strip the request id"
        );
        assert_eq!(&got.body[..], &reply[..], "reply body differs");
    }
    let out = proc.wait(PEER_DEADLINE).await;
    // nanocat's REP ends by a receive timeout, which it reports with exit status 3.
    check_messages(peer, "REP", &out, &requests);
}

/// Several peer PUSH runs dial our PULL, one message each; our PULL gets them in order.
pub async fn peer_push_dials_our_pull(peer: &Cat, t: Transport) {
    let ep = Endpoint::new(t);
    let pull = Pull::new();
    pull.set_recv_timeout(Some(RECV_TIMEOUT));
    let url = listen_url(&pull, &ep).await;
    for msg in request_payloads() {
        let (_dir, file) = payload_file(&msg);
        let mut cmd = peer.command(Role::Push, Mode::Dial, &url);
        cmd.arg("--file").arg(&file);
        let proc = peer.spawn("push", &mut cmd);
        let got = pull
            .recv()
            .await
            .expect("our PULL receives the pushed message");
        assert!(got.header.is_empty());
        assert_eq!(&got.body[..], &msg[..], "pushed body differs");
        proc.wait(PEER_DEADLINE).await.assert_success("peer PUSH");
    }
}

/// The peer's PULL listens; our PUSH dials it and sends several messages, which the peer
/// prints in order.
pub async fn peer_pull_listens_our_push_dials(peer: &Cat, t: Transport) {
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let msgs = request_payloads();
    let mut cmd = peer.command(Role::Pull, Mode::Listen, &url);
    cmd.arg("--quoted");
    peer.stop_after(&mut cmd, msgs.len(), 2);
    let proc = peer.spawn("pull", &mut cmd);

    let push = Push::new();
    push.set_send_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&push, &url);
    wait_for_pipes(&push, 1).await;
    for m in &msgs {
        push.send(m.clone()).await.expect("our PUSH sends");
    }
    // Keep our socket open until the peer has printed everything.
    let out = proc.wait(PEER_DEADLINE).await;
    check_messages(peer, "PULL", &out, &msgs);
    drop(push);
}

/// Our PAIR and the peer's PAIR swap messages both ways. `peer_mode` says who listens.
pub async fn pair_exchange(peer: &Cat, t: Transport, peer_mode: Mode) {
    pair_exchange_as::<sp_core::protocol::pair::Pair>(peer, t, peer_mode, Role::Pair).await;
}

/// [`pair_exchange`] with our socket of core `P` against the peer's `role` (PAIR v0 or v1).
pub async fn pair_exchange_as<P: sp_transport::SocketCore>(
    peer: &Cat,
    t: Transport,
    peer_mode: Mode,
    role: Role,
) {
    let ep = Endpoint::new(t);
    let pair = crate::Sock::<P>::new();
    pair.set_recv_timeout(Some(RECV_TIMEOUT));
    pair.set_send_timeout(Some(RECV_TIMEOUT));
    let from_peer = binary_payload(64, 11);
    let (_dir, file) = payload_file(&from_peer);
    let url = match peer_mode {
        Mode::Dial => listen_url(&pair, &ep).await,
        Mode::Listen => ep.peer_listen_url(),
    };
    let mut cmd = peer.command(role, peer_mode, &url);
    // With data, PAIR sends once and then prints what arrives until a receive times out.
    cmd.arg("--file").arg(&file).arg("--quoted");
    peer.stop_after(&mut cmd, 0, 2);
    let proc = peer.spawn("pair", &mut cmd);
    if peer_mode == Mode::Listen {
        dial_retrying(&pair, &url);
    }
    let got = pair
        .recv()
        .await
        .expect("our PAIR receives the peer's message");
    assert!(got.header.is_empty());
    assert_eq!(&got.body[..], &from_peer[..], "PAIR body from peer differs");
    let to_peer = vec![b"first".to_vec(), binary_payload(1000, 5)];
    for m in &to_peer {
        pair.send(m.clone()).await.expect("our PAIR sends");
    }
    let out = proc.wait(PEER_DEADLINE).await;
    check_messages(peer, "PAIR", &out, &to_peer);
    drop(pair);
}
