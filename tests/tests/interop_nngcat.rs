//! Interop with nngcat (the real NNG 1.x command-line tool): REQ/REP, PUSH/PULL, PAIR v0, PAIR v1,
//! PUB/SUB, SURVEYOR/RESPONDENT and BUS over tcp and ipc, with the peer dialing our listener
//! and with us dialing the peer's listener.
//! Skipped (with a message) when nngcat is not installed, unless `SP_REQUIRE_PEERS=1`.

use sp_tests::cat::{self, Cat, CatKind, Mode, Role};
use sp_tests::{
    binary_payload, dial_retrying, parse_quoted_lines, payload_file, wait_for_pipe_count,
    wait_for_pipes, Endpoint, PeerProcess, Transport, PEER_DEADLINE, RECV_TIMEOUT,
};

use sp_tokio::{Pull, Push};

fn peer() -> Option<Cat> {
    Cat::find(CatKind::Nngcat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_req_dials_our_rep_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_req_dials_our_rep(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_dials_nngcat_rep_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_rep_listens_our_req_dials(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_push_dials_our_pull_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_push_dials_our_pull(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_dials_nngcat_pull_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_pull_listens_our_push_dials(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_pair_dials_our_pair_over_tcp() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Tcp, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair_dials_nngcat_pair_over_tcp() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Tcp, Mode::Listen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_req_dials_our_rep_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_req_dials_our_rep(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_dials_nngcat_rep_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_rep_listens_our_req_dials(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_push_dials_our_pull_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_push_dials_our_pull(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_dials_nngcat_pull_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_pull_listens_our_push_dials(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_pair_dials_our_pair_over_ipc() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Ipc, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair_dials_nngcat_pair_over_ipc() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Ipc, Mode::Listen).await;
}

/// NNG's PULL with `--recv-maxsz 5` (spec 8.7 #94, 8.1 #7): our 3- and 5-byte messages are
/// printed, our 6-byte one is refused (NNG drops that connection), and a later sender still
/// gets through. Each message comes from its own PUSH socket so the drop hits only one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_recv_maxsz_drops_only_our_oversized_message() {
    let Some(p) = peer() else { return };
    let url = Endpoint::new(Transport::Tcp).peer_listen_url();
    let mut cmd = p.command(Role::Pull, Mode::Listen, &url);
    cmd.args([
        "--recv-maxsz",
        "5",
        "--quoted",
        "--count",
        "3",
        "--recv-timeout",
        "5",
    ]);
    let proc = PeerProcess::spawn("nngcat pull", &mut cmd);
    let mut pushes = Vec::new();
    for m in ["one", "55555", "666666", "88888"] {
        let push = Push::new();
        push.set_send_timeout(Some(RECV_TIMEOUT));
        dial_retrying(&push, &url);
        wait_for_pipes(&push, 1).await;
        push.send(m).await.expect("our PUSH sends");
        pushes.push(push);
    }
    let out = proc.wait(PEER_DEADLINE).await;
    out.assert_success("nngcat pull");
    let mut got = parse_quoted_lines(&out.stdout);
    got.sort();
    assert_eq!(
        got,
        vec![b"55555".to_vec(), b"88888".to_vec(), b"one".to_vec()],
        "{}",
        out.describe()
    );
}

/// A 2 MiB message from nngcat arrives intact at our PULL (limit raised to 4 MiB).
async fn nngcat_pushes_large_message(t: Transport) {
    let Some(p) = peer() else { return };
    let ep = Endpoint::new(t);
    let pull = Pull::new();
    pull.set_recv_timeout(Some(RECV_TIMEOUT));
    pull.set_recv_max_size(4 << 20).unwrap();
    let url = pull.listen(&ep.our_listen_url()).await.unwrap().to_string();
    let big = binary_payload(2 << 20, 13);
    let (_dir, file) = payload_file(&big);
    let mut cmd = p.command(Role::Push, Mode::Dial, &url);
    cmd.arg("--file").arg(&file);
    let proc = PeerProcess::spawn("nngcat push", &mut cmd);
    let got = pull.recv().await.expect("our PULL receives 2 MiB");
    assert_eq!(got.body.len(), big.len());
    assert!(got.body[..] == big[..], "2 MiB body differs");
    proc.wait(PEER_DEADLINE).await.assert_success("nngcat push");
}

/// A 2 MiB message from our PUSH arrives intact at nngcat's PULL (printed raw).
async fn nngcat_pulls_large_message(t: Transport) {
    let Some(p) = peer() else { return };
    let ep = Endpoint::new(t);
    let url = ep.peer_listen_url();
    let mut cmd = p.command(Role::Pull, Mode::Listen, &url);
    cmd.args([
        "--recv-maxsz",
        "8388608",
        "--raw",
        "--count",
        "1",
        "--recv-timeout",
        "5",
    ]);
    let proc = PeerProcess::spawn("nngcat pull", &mut cmd);
    let push = Push::new();
    push.set_send_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&push, &url);
    wait_for_pipes(&push, 1).await;
    let big = binary_payload(2 << 20, 17);
    push.send(big.clone()).await.expect("our PUSH sends 2 MiB");
    let out = proc.wait(PEER_DEADLINE).await;
    drop(push);
    assert!(
        out.success(),
        "nngcat pull: status={:?} stderr={}",
        out.status,
        out.stderr_text()
    );
    assert_eq!(out.stdout.len(), big.len());
    assert!(out.stdout == big, "2 MiB body printed by nngcat differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_push_sends_2mib_to_our_pull_over_tcp() {
    nngcat_pushes_large_message(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_push_sends_2mib_to_our_pull_over_ipc() {
    nngcat_pushes_large_message(Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_sends_2mib_to_nngcat_pull_over_tcp() {
    nngcat_pulls_large_message(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_sends_2mib_to_nngcat_pull_over_ipc() {
    nngcat_pulls_large_message(Transport::Ipc).await;
}

/// Our REQ keeps its dialer alive across an NNG REP restart on the same port (spec 8.1 #14
/// with a real peer): the first REP answers once and exits, a second one takes the port, and
/// our next request reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_redials_after_nngcat_rep_restarts() {
    let Some(p) = peer() else { return };
    let url = Endpoint::new(Transport::Tcp).peer_listen_url();
    let req = sp_tokio::Req::new();
    req.set_recv_timeout(Some(RECV_TIMEOUT));
    req.set_send_timeout(Some(RECV_TIMEOUT));
    dial_retrying(&req, &url);
    for (round, reply) in ["first rep", "second rep"].into_iter().enumerate() {
        let mut cmd = p.command(Role::Rep, Mode::Listen, &url);
        cmd.args([
            "--data",
            reply,
            "--quoted",
            "--count",
            "1",
            "--recv-timeout",
            "5",
        ]);
        let proc = PeerProcess::spawn("nngcat rep", &mut cmd);
        let request = format!("request {round}").into_bytes();
        req.send(request.clone()).await.expect("our REQ sends");
        let got = req
            .recv()
            .await
            .unwrap_or_else(|e| panic!("round {round}: no reply: {e}"));
        assert_eq!(&got.body[..], reply.as_bytes());
        let out = proc.wait(PEER_DEADLINE).await;
        out.assert_success("nngcat rep");
        assert_eq!(parse_quoted_lines(&out.stdout), vec![request]);
        wait_for_pipe_count(&req, 0).await;
    }
}

/// Our PUSH round-robins over three NNG PULLs (spec 8.6 #76 with real peers): six messages,
/// two each, nothing lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_round_robins_over_three_nngcat_pulls() {
    let Some(p) = peer() else { return };
    let push = Push::new();
    push.set_send_timeout(Some(RECV_TIMEOUT));
    let mut procs = Vec::new();
    for _ in 0..3 {
        let url = Endpoint::new(Transport::Tcp).peer_listen_url();
        let mut cmd = p.command(Role::Pull, Mode::Listen, &url);
        cmd.args(["--quoted", "--count", "2", "--recv-timeout", "5"]);
        procs.push(PeerProcess::spawn("nngcat pull", &mut cmd));
        dial_retrying(&push, &url);
    }
    wait_for_pipes(&push, 3).await;
    let msgs: Vec<Vec<u8>> = (0..6)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    for m in &msgs {
        push.send(m.clone()).await.expect("our PUSH sends");
    }
    let mut all = Vec::new();
    for proc in procs {
        let out = proc.wait(PEER_DEADLINE).await;
        out.assert_success("nngcat pull");
        let got = parse_quoted_lines(&out.stdout);
        assert_eq!(
            got.len(),
            2,
            "each PULL gets exactly two: {}",
            out.describe()
        );
        all.extend(got);
    }
    all.sort();
    assert_eq!(all, msgs);
}

// PAIR v1 (nanomsg has none): the NNG side puts a hop-count word on every message, which our
// cooked PAIR1 must strip on receive and add on send.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_pair1_dials_our_pair1_over_tcp() {
    let Some(p) = peer() else { return };
    cat::pair_exchange_as::<sp_core::protocol::pair1::Pair1>(
        &p,
        Transport::Tcp,
        Mode::Dial,
        Role::Pair1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_pair1_dials_our_pair1_over_ipc() {
    let Some(p) = peer() else { return };
    cat::pair_exchange_as::<sp_core::protocol::pair1::Pair1>(
        &p,
        Transport::Ipc,
        Mode::Dial,
        Role::Pair1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair1_dials_nngcat_pair1_over_tcp() {
    let Some(p) = peer() else { return };
    cat::pair_exchange_as::<sp_core::protocol::pair1::Pair1>(
        &p,
        Transport::Tcp,
        Mode::Listen,
        Role::Pair1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair1_dials_nngcat_pair1_over_ipc() {
    let Some(p) = peer() else { return };
    cat::pair_exchange_as::<sp_core::protocol::pair1::Pair1>(
        &p,
        Transport::Ipc,
        Mode::Listen,
        Role::Pair1,
    )
    .await;
}

/// Spec 8.1 #4 with a real peer: NNG's PAIR1 and our PAIR v0 never exchange a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_pair1_and_our_pair0_never_talk() {
    let Some(p) = peer() else { return };
    let pair = sp_tokio::Pair::new();
    pair.set_recv_timeout(Some(std::time::Duration::from_millis(1500)));
    let url = pair.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut cmd = p.command(Role::Pair1, Mode::Dial, &url);
    cmd.args([
        "--data",
        "from pair1",
        "--quoted",
        "--send-timeout",
        "1",
        "--recv-timeout",
        "1",
    ]);
    let proc = PeerProcess::spawn("nngcat pair1", &mut cmd);
    let r = pair.recv().await;
    assert!(
        r.as_ref().is_err_and(|e| e.is_timed_out()),
        "PAIR0 received from PAIR1: {r:?}"
    );
    assert_eq!(pair.pipe_count(), 0, "PAIR0 kept a pipe to a PAIR1 peer");
    let out = proc.kill();
    assert!(
        out.stdout.is_empty(),
        "PAIR1 peer received something: {}",
        out.describe()
    );
}

// ---- PUB/SUB, SURVEYOR/RESPONDENT, BUS over tcp and ipc (scenarios in sp_tests::cat) ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_sub_dials_our_pub_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_sub_dials_our_pub(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_sub_dials_our_pub_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_sub_dials_our_pub(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_dials_nngcat_pub_over_tcp() {
    let Some(p) = peer() else { return };
    cat::our_sub_dials_peer_pub(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_dials_nngcat_pub_over_ipc() {
    let Some(p) = peer() else { return };
    cat::our_sub_dials_peer_pub(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_respondent_dials_our_surveyor_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_respondent_dials_our_surveyor(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_respondent_dials_our_surveyor_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_respondent_dials_our_surveyor(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_respondent_dials_nngcat_surveyor_over_tcp() {
    let Some(p) = peer() else { return };
    cat::our_respondent_dials_peer_surveyor(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_respondent_dials_nngcat_surveyor_over_ipc() {
    let Some(p) = peer() else { return };
    cat::our_respondent_dials_peer_surveyor(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_bus_dials_our_bus_over_tcp() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Tcp, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nngcat_bus_dials_our_bus_over_ipc() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Ipc, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bus_dials_nngcat_bus_over_tcp() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Tcp, Mode::Listen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bus_dials_nngcat_bus_over_ipc() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Ipc, Mode::Listen).await;
}
