//! Interop scenarios against the command-line peers `nngcat` (NNG) and `nanocat` (nanomsg).
//!
//! Both tools print each received message with `--quoted` (one escaped line per message), take
//! the payload from `--file` (binary-safe) and end on a receive timeout. They differ in flag
//! names (`--req0`/`--req`, `--listen`/`--bind`, `--dial`/`--connect`) and in whether they know
//! `--count` (only nngcat). Every scenario checks payloads byte for byte in both directions
//! where the protocol allows it.

use std::path::PathBuf;
use std::process::Command;

use std::time::Duration;

use sp_tokio::{Bus, Pub, Pull, Push, Rep, Req, Respondent, Sub, Surveyor};

use crate::{
    binary_payload, dial_retrying, parse_quoted_lines, payload_file, wait_for_pipe_count,
    wait_for_pipes, Endpoint, PeerOutput, PeerProcess, Transport, PEER_DEADLINE, RECV_TIMEOUT,
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

    /// Makes a sending peer repeat its message, because it may send before our side is
    /// connected: nngcat every second (whole seconds only), at most `max` times; nanocat every
    /// `nanocat_interval` seconds until it is killed (it has no `--count`).
    fn send_repeatedly(&self, cmd: &mut Command, max: usize, nanocat_interval: &str) {
        match self.kind {
            CatKind::Nngcat => cmd.args(["--interval", "1", "--count", &max.to_string()]),
            CatKind::Nanocat => cmd.args(["--interval", nanocat_interval]),
        };
    }

    /// Waits for a peer that stops by itself; nanocat's receive loops end on a receive timeout,
    /// which it reports with a non-zero status, so only nngcat's status is checked.
    async fn finish(&self, what: &str, proc: PeerProcess) -> PeerOutput {
        let out = proc.wait(PEER_DEADLINE).await;
        if self.kind == CatKind::Nngcat {
            out.assert_success(what);
        }
        out
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
pub async fn pair_exchange_as<P: sp_transport::SendRole + sp_transport::RecvRole>(
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

// ---- PUB/SUB ----

/// The peer's SUB (topic `match`) dials our PUB: of four messages it prints exactly the two
/// that start with the topic. SUB filters locally, so once our PUB sees the connection nothing
/// can be lost to a subscription race; and since a pipe keeps its order, `other` and `mat`
/// (each sent before a matching message) would have been printed if the filter let them by.
pub async fn peer_sub_dials_our_pub(peer: &Cat, t: Transport) {
    let ep = Endpoint::new(t);
    let publisher = Pub::new();
    let url = listen_url(&publisher, &ep).await;
    let mut cmd = peer.command(Role::Sub, Mode::Dial, &url);
    cmd.args(["--subscribe", "match", "--quoted"]);
    peer.stop_after(&mut cmd, 2, 2);
    let proc = peer.spawn("sub", &mut cmd);
    wait_for_pipes(&publisher, 1).await;
    let first = b"match \x00one".to_vec();
    let mut second = b"matched two ".to_vec();
    second.extend(binary_payload(200, 5));
    for m in [
        b"other".to_vec(),
        first.clone(),
        b"mat".to_vec(),
        second.clone(),
    ] {
        publisher.send(m).await.expect("our PUB sends");
    }
    let out = peer.finish("peer SUB", proc).await;
    check_messages(peer, "SUB", &out, &[first, second]);
}

/// Our SUB dials the peer's PUB, which repeats one message. A peer PUB has only one payload,
/// so the non-matching and the matching message come from two publishers in turn:
///
/// 1. The first publisher repeats `skip me`. Our SUB, subscribed to everything, receives one
///    copy (the path works), then swaps its topic for `match`. A second SUB that joins only
///    now receives a copy too, so the publisher has sent our SUB at least one copy since the
///    swap. The publisher is then stopped; once our SUB has seen that connection close, every
///    copy it sent has been through the filter (a pipe delivers its frames before its end).
/// 2. A second publisher repeats a message starting with `match`: it must be the very next
///    message our SUB delivers, so no `skip me` got past the filter.
pub async fn our_sub_dials_peer_pub(peer: &Cat, t: Transport) {
    let ep = Endpoint::new(t);
    let sub = Sub::new();
    sub.set_recv_timeout(Some(RECV_TIMEOUT));
    sub.subscribe(b"");

    let skip = b"skip me".to_vec();
    let url = ep.peer_listen_url();
    let mut cmd = peer.command(Role::Pub, Mode::Listen, &url);
    cmd.arg("--data").arg("skip me");
    peer.send_repeatedly(&mut cmd, 20, "0.2");
    let skipper = peer.spawn("pub", &mut cmd);
    dial_retrying(&sub, &url);
    let got = sub
        .recv()
        .await
        .expect("our SUB receives the first publisher");
    assert!(got.header.is_empty());
    assert_eq!(&got.body[..], &skip[..]);
    sub.unsubscribe(b"").expect("unsubscribe the empty topic");
    sub.subscribe(b"match");
    let observer = Sub::new();
    observer.set_recv_timeout(Some(RECV_TIMEOUT));
    observer.subscribe(b"");
    dial_retrying(&observer, &url);
    let got = observer
        .recv()
        .await
        .expect("a SUB joining later receives the first publisher too");
    assert_eq!(&got.body[..], &skip[..]);
    drop(skipper.kill());
    wait_for_pipe_count(&sub, 0).await;
    observer.close().await;

    let mut matching = b"match me ".to_vec();
    matching.extend(binary_payload(300, 8));
    let (_dir, file) = payload_file(&matching);
    let url = ep.peer_listen_url();
    let mut cmd = peer.command(Role::Pub, Mode::Listen, &url);
    cmd.arg("--file").arg(&file);
    peer.send_repeatedly(&mut cmd, 20, "0.2");
    let matcher = peer.spawn("pub", &mut cmd);
    dial_retrying(&sub, &url);
    let got = sub
        .recv()
        .await
        .expect("our SUB receives the matching publisher");
    assert_eq!(
        &got.body[..],
        &matching[..],
        "a non-matching message got through, or the matching one differs"
    );
    drop(matcher.kill());
}

// ---- SURVEYOR/RESPONDENT ----

/// The peer's RESPONDENT dials our SURVEYOR and answers our survey; both payloads are checked.
pub async fn peer_respondent_dials_our_surveyor(peer: &Cat, t: Transport) {
    let ep = Endpoint::new(t);
    let surveyor = Surveyor::new();
    surveyor.set_survey_time(RECV_TIMEOUT);
    assert_eq!(surveyor.survey_time(), RECV_TIMEOUT);
    let url = listen_url(&surveyor, &ep).await;
    let answer = binary_payload(100, 9);
    let (_dir, file) = payload_file(&answer);
    let mut cmd = peer.command(Role::Respondent, Mode::Dial, &url);
    cmd.arg("--file").arg(&file).arg("--quoted");
    peer.stop_after(&mut cmd, 1, 2);
    let proc = peer.spawn("respondent", &mut cmd);
    wait_for_pipes(&surveyor, 1).await;
    let survey = b"what is \"up\"?".to_vec();
    surveyor
        .send(survey.clone())
        .await
        .expect("our SURVEYOR sends");
    let got = surveyor
        .recv()
        .await
        .expect("our SURVEYOR receives the response");
    assert!(
        got.header.is_empty(),
        "cooked SURVEYOR strips the survey id"
    );
    assert_eq!(&got.body[..], &answer[..], "response body differs");
    let out = peer.finish("peer RESPONDENT", proc).await;
    check_messages(peer, "RESPONDENT", &out, &[survey]);
}

/// The peer's SURVEYOR listens and surveys repeatedly; our RESPONDENT dials it and answers
/// three surveys, and the peer prints our answers. nngcat stops after its third survey;
/// nanocat is stopped once we have its third survey, by which time the windows of the first
/// two (each closes before the next survey goes out) have printed our answers to them.
pub async fn our_respondent_dials_peer_surveyor(peer: &Cat, t: Transport) {
    const SURVEYS: usize = 3;
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let mut cmd = peer.command(Role::Surveyor, Mode::Listen, &url);
    cmd.args(["--data", "survey says", "--quoted"]);
    peer.send_repeatedly(&mut cmd, SURVEYS, "0.5");
    let proc = peer.spawn("surveyor", &mut cmd);
    let resp = Respondent::new();
    resp.set_recv_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&resp, &url);
    wait_for_pipes(&resp, 1).await;
    let answer = b"our \x01answer".to_vec();
    let mut answered = 0;
    while answered < SURVEYS {
        let Ok(survey) = resp.recv().await else { break };
        assert!(survey.header.is_empty());
        assert_eq!(&survey.body[..], b"survey says");
        resp.send(answer.clone())
            .await
            .expect("our RESPONDENT answers");
        answered += 1;
        // nngcat sends a fixed number of surveys; if we joined late, fewer reach us.
        resp.set_recv_timeout(Some(Duration::from_secs(2)));
    }
    assert!(answered >= 1, "no survey arrived");
    let out = match peer.kind {
        CatKind::Nngcat => peer.finish("peer SURVEYOR", proc).await,
        CatKind::Nanocat => proc.kill(),
    };
    let printed = parse_quoted_lines(&out.stdout);
    assert!(
        !printed.is_empty(),
        "{} printed no answer: {}",
        peer.name(),
        out.describe()
    );
    assert!(printed.iter().all(|m| *m == answer), "{}", out.describe());
}

// ---- BUS ----

/// Our BUS and the peer's BUS swap messages both ways; `peer_mode` says who listens. A BUS
/// drops what it sends while it has no peer, so each direction uses its own peer process:
///
/// 1. The peer repeats one message until we have it, and is then stopped.
/// 2. A receive-only peer prints the two messages we send once the connection is up (what we
///    write after the handshake reaches the peer after its own side of the handshake).
pub async fn bus_exchange(peer: &Cat, t: Transport, peer_mode: Mode) {
    let ep = Endpoint::new(t);
    let from_peer = binary_payload(64, 21);
    let (_dir, file) = payload_file(&from_peer);
    let bus = Bus::new();
    bus.set_recv_timeout(Some(RECV_TIMEOUT));
    let url = bus_url(&bus, &ep, peer_mode).await;
    let mut cmd = peer.command(Role::Bus, peer_mode, &url);
    cmd.arg("--file").arg(&file);
    peer.send_repeatedly(&mut cmd, 20, "0.2");
    let sender = peer.spawn("bus", &mut cmd);
    if peer_mode == Mode::Listen {
        dial_retrying(&bus, &url);
    }
    let got = bus
        .recv()
        .await
        .expect("our BUS receives the peer's message");
    assert!(got.header.is_empty());
    assert_eq!(&got.body[..], &from_peer[..], "BUS body from peer differs");
    drop(sender.kill());
    bus.close().await;

    let bus = Bus::new();
    let url = bus_url(&bus, &ep, peer_mode).await;
    let mut cmd = peer.command(Role::Bus, peer_mode, &url);
    cmd.arg("--quoted");
    let to_peer = vec![b"bus first".to_vec(), binary_payload(1000, 4)];
    peer.stop_after(&mut cmd, to_peer.len(), 2);
    let receiver = peer.spawn("bus", &mut cmd);
    if peer_mode == Mode::Listen {
        dial_retrying(&bus, &url);
    }
    wait_for_pipes(&bus, 1).await;
    for m in &to_peer {
        bus.send(m.clone()).await.expect("our BUS sends");
    }
    let out = peer.finish("peer BUS", receiver).await;
    check_messages(peer, "BUS", &out, &to_peer);
    drop(bus);
}

/// Where a BUS exchange meets: our listener's URL, or a fresh one for the peer to listen on.
async fn bus_url(bus: &Bus, ep: &Endpoint, peer_mode: Mode) -> String {
    match peer_mode {
        Mode::Dial => listen_url(bus, ep).await,
        Mode::Listen => ep.peer_listen_url(),
    }
}
