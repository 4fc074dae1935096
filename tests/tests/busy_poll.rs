//! Receives that read their connection themselves before they sleep
//! (`sp_transport::set_busy_poll_limit`), on tokio, smol and sp-blocking: what they receive is
//! the same with polling off, at its default and long, over tcp and ipc; a peer that closes
//! while a receive polls costs only its pipe; and large frames arrive whole. (On tokio's paused
//! clock a polling receive still times out at its virtual deadline:
//! `sp-tokio/tests/paused_clock.rs`. That a receive reads through the direct reader at all:
//! `busy_poll_direct.rs`.)
//!
//! The limit is process-wide, and the tests of this file run at once: each holds whatever
//! limit is set meanwhile, since none of them depends on it.

use std::time::Duration;

use sp_tests::harness::{blocking_shim, run_blocking, run_smol, run_tokio, wait_for, with_limit};

/// How long a test body may take in all.
const LIMIT: Duration = Duration::from_secs(30);
/// Receive and send timeout for calls that must succeed.
const T: Duration = Duration::from_secs(5);

macro_rules! busy_poll_suite {
    ($module:ident, $adapter:ident, $run:path) => {
        mod $module {
            use super::*;
            use $adapter as sp;

            fn run(body: impl std::future::Future<Output = ()>) {
                $run(with_limit(LIMIT, body))
            }

            /// `rounds` request/reply round trips between a REQ and a REP over `url`.
            async fn round_trips(url: &str, rounds: u32) {
                let rep = sp::Rep::new();
                rep.set_recv_timeout(Some(T));
                let listener = rep.listen(url).await.expect("listen");
                let req = sp::Req::new();
                req.set_recv_timeout(Some(T));
                req.dial(&listener).await.expect("dial");
                let server = sp_tests::harness::background(async move {
                    for _ in 0..rounds {
                        let request = rep.recv().await.expect("request");
                        let mut reply = b"re: ".to_vec();
                        reply.extend_from_slice(&request.body);
                        rep.send(reply).await.expect("reply");
                    }
                    rep
                });
                for n in 0..rounds {
                    let request = format!("request {n}");
                    req.send(request.clone()).await.expect("send");
                    let reply = req.recv().await.expect("reply");
                    assert_eq!(&reply.body[..], format!("re: {request}").as_bytes());
                }
                drop(server.join().expect("the server finished"));
            }

            #[test]
            fn round_trips_are_the_same_with_polling_off_at_its_default_and_long() {
                run(async {
                    for limit in [
                        Duration::ZERO,
                        sp::DEFAULT_BUSY_POLL,
                        Duration::from_millis(5),
                    ] {
                        sp::set_busy_poll_limit(limit);
                        round_trips("tcp://127.0.0.1:0", 300).await;
                        let dir = tempfile::tempdir().expect("temporary directory");
                        let ipc = format!("ipc://{}", dir.path().join("busy.sock").display());
                        round_trips(&ipc, 300).await;
                    }
                    sp::set_busy_poll_limit(sp::DEFAULT_BUSY_POLL);
                })
            }

            /// Three threads receiving on one PULL (one of them polls, the others sleep) get
            /// every message once between them.
            #[test]
            fn receivers_sharing_a_socket_get_every_message_once() {
                run(async {
                    const COUNT: u32 = 600;
                    let pull = sp::Pull::new();
                    let listener = pull.listen("tcp://127.0.0.1:0").await.expect("listen");
                    let push = sp::Push::new();
                    push.set_send_timeout(Some(T));
                    push.dial(&listener).await.expect("dial");
                    let receivers: Vec<_> = (0..3)
                        .map(|_| {
                            let pull = pull.clone();
                            sp_tests::harness::background(async move {
                                pull.set_recv_timeout(Some(Duration::from_secs(2)));
                                let mut got = Vec::new();
                                while let Ok(msg) = pull.recv().await {
                                    got.push(u32::from_be_bytes(
                                        msg.body[..].try_into().expect("a number"),
                                    ));
                                }
                                got
                            })
                        })
                        .collect();
                    for i in 0..COUNT {
                        push.send(i.to_be_bytes().to_vec()).await.expect("send");
                    }
                    let mut all: Vec<u32> = receivers
                        .into_iter()
                        .flat_map(|r| r.join().expect("a receiver finished"))
                        .collect();
                    all.sort_unstable();
                    assert_eq!(all, (0..COUNT).collect::<Vec<_>>());
                })
            }

            /// A peer that closes while its PAIR peer's receive polls the connection ends
            /// that pipe; the receive goes on waiting (for a new peer) until its timeout.
            #[test]
            fn a_peer_that_closes_while_a_receive_polls_ends_only_its_pipe() {
                run(async {
                    let ours = sp::Pair::new();
                    let listener = ours.listen("tcp://127.0.0.1:0").await.expect("listen");
                    let theirs = sp::Pair::new();
                    theirs.set_send_timeout(Some(T));
                    theirs.dial(&listener).await.expect("dial");
                    theirs.send("first").await.expect("send");
                    ours.set_recv_timeout(Some(T));
                    assert_eq!(&ours.recv().await.expect("first").body[..], b"first");

                    let receiver = {
                        let ours = ours.clone();
                        sp_tests::harness::background(async move {
                            ours.set_recv_timeout(Some(Duration::from_millis(300)));
                            ours.recv().await
                        })
                    };
                    theirs.close().await;
                    let outcome = receiver.join().expect("the receive returned");
                    assert!(
                        matches!(outcome, Err(sp::Error::TimedOut)),
                        "expected a timeout, got {outcome:?}"
                    );
                    wait_for("the closed peer's pipe to go", T, || {
                        ours.stats().pipes_open == 0
                    })
                    .await;
                    assert_eq!(ours.stats().pipes_detached, 1);
                })
            }

            /// Messages larger than any read arrive whole and in order when the receiver
            /// finds its queue empty between them and reads the connection itself.
            #[test]
            fn large_messages_arrive_whole_in_order() {
                run(async {
                    const SIZE: usize = 200 * 1024;
                    const COUNT: u8 = 40;
                    let pull = sp::Pull::new();
                    pull.set_recv_timeout(Some(T));
                    let listener = pull.listen("tcp://127.0.0.1:0").await.expect("listen");
                    let push = sp::Push::new();
                    push.set_send_timeout(Some(T));
                    push.dial(&listener).await.expect("dial");
                    let sender = sp_tests::harness::background(async move {
                        for i in 0..COUNT {
                            push.send(vec![i; SIZE]).await.expect("send");
                        }
                        push
                    });
                    for i in 0..COUNT {
                        let msg = pull.recv().await.expect("message");
                        assert_eq!(msg.body.len(), SIZE);
                        assert!(
                            msg.body.iter().all(|&b| b == i),
                            "message {i} arrived mixed"
                        );
                    }
                    drop(sender.join().expect("the sender finished"));
                })
            }
        }
    };
}

busy_poll_suite!(tokio_adapter, sp_tokio, run_tokio);
busy_poll_suite!(smol_adapter, sp_smol, run_smol);
busy_poll_suite!(blocking_adapter, blocking_shim, run_blocking);

/// A socket read as a `Stream` polls its connection like `recv`, with a window per item.
#[test]
fn a_socket_read_as_a_stream_gets_every_reply() {
    use futures_util::StreamExt;
    run_tokio(with_limit(LIMIT, async {
        let rep = sp_tokio::Rep::new();
        let listener = rep.listen("tcp://127.0.0.1:0").await.expect("listen");
        let mut req = sp_tokio::Req::new();
        req.dial(&listener).await.expect("dial");
        let server = sp_tests::harness::background(async move {
            for _ in 0..200 {
                let request = rep.recv().await.expect("request");
                rep.send(request.body).await.expect("reply");
            }
            rep
        });
        for n in 0..200u32 {
            req.send(n.to_be_bytes().to_vec()).await.expect("send");
            let reply = req.next().await.expect("a reply").expect("reply");
            assert_eq!(&reply.body[..], n.to_be_bytes());
        }
        drop(server.join().expect("the server finished"));
    }))
}
