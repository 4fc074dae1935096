//! Interop with pynng (Python bindings around a bundled NNG 1.x): REQ/REP, PUSH/PULL, PAIR v0,
//! PAIR v1, PUB/SUB, SURVEYOR/RESPONDENT and BUS over tcp and ipc, in both directions. Each test
//! runs one small inline Python script that prints every message it receives as `recv <hex>` so
//! payloads are compared byte for byte. Skipped (with a message) when pynng is not importable,
//! unless `SP_REQUIRE_PEERS=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use sp_tests::{
    binary_payload, dial_retrying, encode_hex, parse_hex_lines, require_peer, wait_for_pipes,
    Endpoint, PeerOutput, PeerProcess, Transport, PEER_DEADLINE, RECV_TIMEOUT,
};
use sp_tokio::{Pub, Pull, Push, Rep, Req, Respondent, Sub, Surveyor};

/// argv: ROLE MODE URL COUNT [HEX_PAYLOAD...]
///
/// * req: send each payload, print each reply.
/// * rep: receive and print a request, answer with the next payload; repeat.
/// * push: send each payload.  pull: print COUNT messages.
/// * pair, pair1: send each payload, then print COUNT messages.
/// * pub: once a peer is connected, send each payload.
/// * sub: subscribe to each payload (a topic), then print COUNT messages.
/// * surveyor: once a peer is connected, for each payload send it as a survey and print one
///   response (survey time 5 s).
/// * respondent: receive and print a survey, answer with the next payload; repeat.
/// * bus: once a peer is connected, send each payload, then print COUNT messages.
///
/// PUB and BUS drop what they send while no peer is attached, hence the wait for one. When the
/// script's last act is a send (rep, push, pub, respondent) it waits (up to 10 s) for our side
/// to hang up before exiting, so nothing it queued is lost to an early close.
const SCRIPT: &str = r#"
import os, sys, threading, pynng
role, mode, url, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
payloads = [bytes.fromhex(h) for h in sys.argv[5:]]
cls = dict(req=pynng.Req0, rep=pynng.Rep0, push=pynng.Push0, pull=pynng.Pull0, pair=pynng.Pair0,
           pair1=pynng.Pair1, pub=pynng.Pub0, sub=pynng.Sub0, surveyor=pynng.Surveyor0,
           respondent=pynng.Respondent0, bus=pynng.Bus0)[role]
s = cls(recv_timeout=5000, send_timeout=5000)
if role == "surveyor":
    s.survey_time = 5000
gone = threading.Event()
connected = threading.Event()
s.add_post_pipe_remove_cb(lambda p: gone.set())
s.add_post_pipe_connect_cb(lambda p: connected.set())
if mode == "listen":
    s.listen(url)
else:
    s.dial(url, block=False)
def show(m):
    print("recv", m.hex(), flush=True)
if role in ("pub", "surveyor", "bus"):
    connected.wait(10)
if role in ("req", "surveyor"):
    for p in payloads:
        s.send(p)
        show(s.recv())
elif role in ("rep", "respondent"):
    for p in payloads:
        show(s.recv())
        s.send(p)
elif role in ("push", "pub"):
    for p in payloads:
        s.send(p)
elif role in ("pull", "sub"):
    for t in (payloads if role == "sub" else []):
        s.subscribe(t)
    for _ in range(count):
        show(s.recv())
elif role in ("pair", "pair1", "bus"):
    for p in payloads:
        s.send(p)
    for _ in range(count):
        show(s.recv())
if role in ("rep", "push", "pub", "respondent"):
    gone.wait(10)
print("done", flush=True)
# Exit without closing: pynng 0.8 (NNG 1.11) can panic in its own close while its pipe-removal
# callback still runs ("pthread_mutex_lock: Invalid argument" in nni_task_dispatch). Every
# exchange is over by now; the kernel closes the connections as close would.
os._exit(0)
"#;

fn python() -> Option<PathBuf> {
    require_peer("pynng")
}

fn spawn(
    py: &Path,
    role: &str,
    mode: &str,
    url: &str,
    count: usize,
    payloads: &[Vec<u8>],
) -> PeerProcess {
    let mut cmd = Command::new(py);
    cmd.args(["-c", SCRIPT, role, mode, url, &count.to_string()]);
    cmd.args(payloads.iter().map(|p| encode_hex(p)));
    PeerProcess::spawn(&format!("pynng {role}"), &mut cmd)
}

/// Messages covering the edge sizes: empty, tiny, binary, and larger than one TCP segment.
fn payloads() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"ping".to_vec(),
        binary_payload(300, 1),
        binary_payload(30_000, 2),
    ]
}

/// The same without the empty message, for messages pynng must receive: pynng 0.9.0's
/// `recv()` raises "cannot use unpack() on <cdata 'char *' NULL>" on a zero-length message
/// (a pynng bug; NNG itself delivers it), so only the pynng-to-us direction covers empty.
fn payloads_for_pynng() -> Vec<Vec<u8>> {
    payloads().into_iter().filter(|p| !p.is_empty()).collect()
}

fn check_received(out: &PeerOutput, expected: &[Vec<u8>]) {
    out.assert_success("pynng script");
    assert_eq!(
        parse_hex_lines(&out.stdout, "recv"),
        expected,
        "pynng received: {}",
        out.describe()
    );
}

async fn pynng_req_dials_our_rep(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let rep = Rep::new();
    rep.set_recv_timeout(Some(RECV_TIMEOUT));
    rep.set_send_timeout(Some(RECV_TIMEOUT));
    let url = rep.listen(&ep.our_listen_url()).await.unwrap().to_string();
    let requests = payloads();
    let proc = spawn(&py, "req", "dial", &url, 0, &requests);
    let mut replies = Vec::new();
    for r in &requests {
        let got = rep.recv().await.expect("our REP receives");
        assert!(got.header.is_empty());
        assert_eq!(&got.body[..], &r[..]);
        let mut reply = b"re:".to_vec();
        reply.extend_from_slice(r);
        rep.send(reply.clone()).await.expect("our REP replies");
        replies.push(reply);
    }
    check_received(&proc.wait(PEER_DEADLINE).await, &replies);
}

async fn our_req_dials_pynng_rep(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let replies: Vec<Vec<u8>> = payloads().into_iter().rev().collect();
    let mut requests = payloads_for_pynng();
    requests.push(b"one more".to_vec());
    let proc = spawn(&py, "rep", "listen", &url, 0, &replies);
    let req = Req::new();
    req.set_recv_timeout(Some(RECV_TIMEOUT));
    req.set_send_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&req, &url);
    for (q, a) in requests.iter().zip(&replies) {
        req.send(q.clone()).await.expect("our REQ sends");
        let got = req.recv().await.expect("our REQ receives the reply");
        assert_eq!(&got.body[..], &a[..]);
    }
    req.close().await;
    check_received(&proc.wait(PEER_DEADLINE).await, &requests);
}

async fn pynng_push_dials_our_pull(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let pull = Pull::new();
    pull.set_recv_timeout(Some(RECV_TIMEOUT));
    let url = pull.listen(&ep.our_listen_url()).await.unwrap().to_string();
    let msgs = payloads();
    let proc = spawn(&py, "push", "dial", &url, 0, &msgs);
    for m in &msgs {
        let got = pull.recv().await.expect("our PULL receives");
        assert_eq!(&got.body[..], &m[..]);
    }
    pull.close().await;
    check_received(&proc.wait(PEER_DEADLINE).await, &[]);
}

async fn our_push_dials_pynng_pull(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let msgs = payloads_for_pynng();
    let proc = spawn(&py, "pull", "listen", &url, msgs.len(), &[]);
    let push = Push::new();
    push.set_send_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&push, &url);
    wait_for_pipes(&push, 1).await;
    for m in &msgs {
        push.send(m.clone()).await.expect("our PUSH sends");
    }
    let out = proc.wait(PEER_DEADLINE).await;
    drop(push);
    check_received(&out, &msgs);
}

async fn pair_with_pynng(t: Transport, pynng_listens: bool) {
    pair_like_with_pynng::<sp_core::protocol::pair::Pair>(t, pynng_listens, "pair").await;
}

/// Our PAIR (v0 or v1) or BUS, by core `P`, and pynng's `role` swap messages both ways: pynng
/// sends first (a BUS script once it is connected), then prints what we send back.
async fn pair_like_with_pynng<P: sp_transport::SendRole + sp_transport::RecvRole>(
    t: Transport,
    pynng_listens: bool,
    role: &str,
) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let pair = sp_tests::Sock::<P>::new();
    pair.set_recv_timeout(Some(RECV_TIMEOUT));
    pair.set_send_timeout(Some(RECV_TIMEOUT));
    let from_peer = payloads();
    let to_peer: Vec<Vec<u8>> = vec![binary_payload(5000, 9), b"bye".to_vec()];
    let proc = if pynng_listens {
        let url = ep.peer_listen_url();
        let proc = spawn(&py, role, "listen", &url, to_peer.len(), &from_peer);
        dial_retrying(&pair, &url);
        proc
    } else {
        let url = pair.listen(&ep.our_listen_url()).await.unwrap().to_string();
        spawn(&py, role, "dial", &url, to_peer.len(), &from_peer)
    };
    for m in &from_peer {
        let got = pair.recv().await.expect("our PAIR receives");
        assert_eq!(&got.body[..], &m[..]);
    }
    for m in &to_peer {
        pair.send(m.clone()).await.expect("our PAIR sends");
    }
    // The script's last act is receiving, so it exits by itself; keep our socket open until then.
    let out = proc.wait(PEER_DEADLINE).await;
    pair.close().await;
    check_received(&out, &to_peer);
}

/// pynng's SUB (topic `match`) dials our PUB and prints two messages: of the four we publish,
/// exactly the two that start with the topic. Each non-matching one is sent before a matching
/// one on the same pipe, so it would have been printed first had the filter let it by.
async fn pynng_sub_dials_our_pub(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let publisher = Pub::new();
    let url = publisher
        .listen(&ep.our_listen_url())
        .await
        .unwrap()
        .to_string();
    let proc = spawn(&py, "sub", "dial", &url, 2, &[b"match".to_vec()]);
    wait_for_pipes(&publisher, 1).await;
    let (skip, matching) = pubsub_payloads();
    for (s, m) in skip.iter().zip(&matching) {
        publisher.send(s.clone()).await.expect("our PUB sends");
        publisher.send(m.clone()).await.expect("our PUB sends");
    }
    let out = proc.wait(PEER_DEADLINE).await;
    publisher.close().await;
    check_received(&out, &matching);
}

/// pynng's PUB listens and, once we are connected, publishes a non-matching and a matching
/// message twice over; our SUB (topic `match`) delivers exactly the matching ones, in order.
async fn our_sub_dials_pynng_pub(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let (skip, matching) = pubsub_payloads();
    let sent: Vec<Vec<u8>> = skip
        .iter()
        .zip(&matching)
        .flat_map(|(s, m)| [s.clone(), m.clone()])
        .collect();
    let proc = spawn(&py, "pub", "listen", &url, 0, &sent);
    let sub = Sub::new();
    sub.set_recv_timeout(Some(RECV_TIMEOUT));
    sub.subscribe(b"match");
    dial_retrying(&sub, &url);
    for m in &matching {
        let got = sub
            .recv()
            .await
            .expect("our SUB receives a matching message");
        assert!(got.header.is_empty());
        assert_eq!(
            &got.body[..],
            &m[..],
            "a non-matching message got through, or a matching one differs"
        );
    }
    sub.close().await;
    check_received(&proc.wait(PEER_DEADLINE).await, &[]);
}

/// Non-matching and matching messages for topic `match`: a prefix of the topic, a message
/// that differs in its last topic byte, and binary bodies after the topic.
fn pubsub_payloads() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut long = b"match".to_vec();
    long.extend(binary_payload(30_000, 3));
    (
        vec![b"mat".to_vec(), b"matcX and more".to_vec()],
        vec![b"match \x00\xff".to_vec(), long],
    )
}

/// pynng's RESPONDENT dials our SURVEYOR and answers each of our surveys with the next of its
/// payloads; both sides check every message.
async fn pynng_respondent_dials_our_surveyor(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let surveyor = Surveyor::new();
    surveyor.set_survey_time(RECV_TIMEOUT);
    let url = surveyor
        .listen(&ep.our_listen_url())
        .await
        .unwrap()
        .to_string();
    let answers = payloads();
    let surveys = payloads_for_pynng();
    let proc = spawn(
        &py,
        "respondent",
        "dial",
        &url,
        0,
        &answers[..surveys.len()],
    );
    wait_for_pipes(&surveyor, 1).await;
    for (survey, answer) in surveys.iter().zip(&answers) {
        surveyor
            .send(survey.clone())
            .await
            .expect("our SURVEYOR sends");
        let got = surveyor
            .recv()
            .await
            .expect("our SURVEYOR receives the response");
        assert!(got.header.is_empty());
        assert_eq!(&got.body[..], &answer[..], "response body differs");
    }
    surveyor.close().await;
    check_received(&proc.wait(PEER_DEADLINE).await, &surveys);
}

/// pynng's SURVEYOR listens and, once we are connected, sends its surveys one at a time; our
/// RESPONDENT answers each with a payload pynng prints.
async fn our_respondent_dials_pynng_surveyor(t: Transport) {
    let Some(py) = python() else { return };
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let surveys = payloads();
    let answers: Vec<Vec<u8>> = payloads_for_pynng().into_iter().rev().collect();
    let proc = spawn(
        &py,
        "surveyor",
        "listen",
        &url,
        0,
        &surveys[..answers.len()],
    );
    let resp = Respondent::new();
    resp.set_recv_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&resp, &url);
    for (survey, answer) in surveys.iter().zip(&answers) {
        let got = resp.recv().await.expect("our RESPONDENT receives a survey");
        assert!(got.header.is_empty());
        assert_eq!(&got.body[..], &survey[..], "survey body differs");
        resp.send(answer.clone())
            .await
            .expect("our RESPONDENT answers");
    }
    let out = proc.wait(PEER_DEADLINE).await;
    resp.close().await;
    check_received(&out, &answers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_req_dials_our_rep_over_tcp() {
    pynng_req_dials_our_rep(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_req_dials_our_rep_over_ipc() {
    pynng_req_dials_our_rep(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_dials_pynng_rep_over_tcp() {
    our_req_dials_pynng_rep(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_dials_pynng_rep_over_ipc() {
    our_req_dials_pynng_rep(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_push_dials_our_pull_over_tcp() {
    pynng_push_dials_our_pull(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_push_dials_our_pull_over_ipc() {
    pynng_push_dials_our_pull(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_dials_pynng_pull_over_tcp() {
    our_push_dials_pynng_pull(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_dials_pynng_pull_over_ipc() {
    our_push_dials_pynng_pull(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_pair_dials_our_pair_over_tcp() {
    pair_with_pynng(Transport::Tcp, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_pair_dials_our_pair_over_ipc() {
    pair_with_pynng(Transport::Ipc, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair_dials_pynng_pair_over_tcp() {
    pair_with_pynng(Transport::Tcp, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair_dials_pynng_pair_over_ipc() {
    pair_with_pynng(Transport::Ipc, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_pair1_dials_our_pair1_over_tcp() {
    pair_like_with_pynng::<sp_core::protocol::pair1::Pair1>(Transport::Tcp, false, "pair1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair1_dials_pynng_pair1_over_tcp() {
    pair_like_with_pynng::<sp_core::protocol::pair1::Pair1>(Transport::Tcp, true, "pair1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_pair1_dials_our_pair1_over_ipc() {
    pair_like_with_pynng::<sp_core::protocol::pair1::Pair1>(Transport::Ipc, false, "pair1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair1_dials_pynng_pair1_over_ipc() {
    pair_like_with_pynng::<sp_core::protocol::pair1::Pair1>(Transport::Ipc, true, "pair1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_sub_dials_our_pub_over_tcp() {
    pynng_sub_dials_our_pub(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_dials_pynng_pub_over_tcp() {
    our_sub_dials_pynng_pub(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_respondent_dials_our_surveyor_over_tcp() {
    pynng_respondent_dials_our_surveyor(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_respondent_dials_pynng_surveyor_over_tcp() {
    our_respondent_dials_pynng_surveyor(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_bus_dials_our_bus_over_tcp() {
    pair_like_with_pynng::<sp_core::protocol::bus::Bus>(Transport::Tcp, false, "bus").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bus_dials_pynng_bus_over_tcp() {
    pair_like_with_pynng::<sp_core::protocol::bus::Bus>(Transport::Tcp, true, "bus").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_sub_dials_our_pub_over_ipc() {
    pynng_sub_dials_our_pub(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_dials_pynng_pub_over_ipc() {
    our_sub_dials_pynng_pub(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_respondent_dials_our_surveyor_over_ipc() {
    pynng_respondent_dials_our_surveyor(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_respondent_dials_pynng_surveyor_over_ipc() {
    our_respondent_dials_pynng_surveyor(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pynng_bus_dials_our_bus_over_ipc() {
    pair_like_with_pynng::<sp_core::protocol::bus::Bus>(Transport::Ipc, false, "bus").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bus_dials_pynng_bus_over_ipc() {
    pair_like_with_pynng::<sp_core::protocol::bus::Bus>(Transport::Ipc, true, "bus").await;
}
