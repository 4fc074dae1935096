//! Interop with nanocat (the real nanomsg command-line tool): REQ/REP, PUSH/PULL, PAIR v0,
//! PUB/SUB, SURVEYOR/RESPONDENT and BUS over tcp and ipc, with the peer dialing our listener
//! and with us dialing the peer's listener. nanomsg has no PAIR v1.
//! Skipped (with a message) when nanocat is not installed, unless `SP_REQUIRE_PEERS=1`.

use sp_tests::cat::{self, Cat, CatKind, Mode};
use sp_tests::Transport;

fn peer() -> Option<Cat> {
    Cat::find(CatKind::Nanocat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_req_dials_our_rep_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_req_dials_our_rep(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_dials_nanocat_rep_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_rep_listens_our_req_dials(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_push_dials_our_pull_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_push_dials_our_pull(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_dials_nanocat_pull_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_pull_listens_our_push_dials(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_pair_dials_our_pair_over_tcp() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Tcp, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair_dials_nanocat_pair_over_tcp() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Tcp, Mode::Listen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_req_dials_our_rep_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_req_dials_our_rep(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_req_dials_nanocat_rep_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_rep_listens_our_req_dials(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_push_dials_our_pull_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_push_dials_our_pull(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_push_dials_nanocat_pull_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_pull_listens_our_push_dials(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_pair_dials_our_pair_over_ipc() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Ipc, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pair_dials_nanocat_pair_over_ipc() {
    let Some(p) = peer() else { return };
    cat::pair_exchange(&p, Transport::Ipc, Mode::Listen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_sub_dials_our_pub_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_sub_dials_our_pub(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_dials_nanocat_pub_over_tcp() {
    let Some(p) = peer() else { return };
    cat::our_sub_dials_peer_pub(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_respondent_dials_our_surveyor_over_tcp() {
    let Some(p) = peer() else { return };
    cat::peer_respondent_dials_our_surveyor(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_respondent_dials_nanocat_surveyor_over_tcp() {
    let Some(p) = peer() else { return };
    cat::our_respondent_dials_peer_surveyor(&p, Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_bus_dials_our_bus_over_tcp() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Tcp, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bus_dials_nanocat_bus_over_tcp() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Tcp, Mode::Listen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_sub_dials_our_pub_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_sub_dials_our_pub(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_sub_dials_nanocat_pub_over_ipc() {
    let Some(p) = peer() else { return };
    cat::our_sub_dials_peer_pub(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_respondent_dials_our_surveyor_over_ipc() {
    let Some(p) = peer() else { return };
    cat::peer_respondent_dials_our_surveyor(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_respondent_dials_nanocat_surveyor_over_ipc() {
    let Some(p) = peer() else { return };
    cat::our_respondent_dials_peer_surveyor(&p, Transport::Ipc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanocat_bus_dials_our_bus_over_ipc() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Ipc, Mode::Dial).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_bus_dials_nanocat_bus_over_ipc() {
    let Some(p) = peer() else { return };
    cat::bus_exchange(&p, Transport::Ipc, Mode::Listen).await;
}
