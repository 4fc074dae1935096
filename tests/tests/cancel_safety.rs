//! Cancel safety, in each async adapter (tokio and smol): futures raced against timers in a
//! `select`, and futures dropped half-way, lose and duplicate nothing, on sockets and contexts.
//!
//! Every race here is `smol::future::or`, whose losing future is dropped at once, exactly as
//! `tokio::select!` drops its losing branches.

use std::time::Duration;

use smol::Timer;
use sp_tests::harness::{run_smol, run_tokio, wait_for, with_limit};

/// How long a test body may take in all.
const LIMIT: Duration = Duration::from_secs(30);
/// Receive and send timeout for calls that must succeed.
const T: Duration = Duration::from_secs(5);
/// How many numbered messages the stream tests move.
const COUNT: u32 = 2_000;

/// Races `fut` against a timer of `d`: `Some(output)` if it won, `None` if it was dropped.
async fn race<F: std::future::Future>(fut: F, d: Duration) -> Option<F::Output> {
    smol::future::or(async { Some(fut.await) }, async {
        Timer::after(d).await;
        None
    })
    .await
}

fn numbered(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

fn number(body: &[u8]) -> u32 {
    u32::from_be_bytes(body.try_into().expect("a 4-byte number"))
}

macro_rules! cancel_suite {
    ($module:ident, $adapter:ident, $run:path) => {
        mod $module {
            use super::*;
            use $adapter as sp;

            fn run(body: impl std::future::Future<Output = ()>) {
                $run(with_limit(LIMIT, body))
            }

            /// A PULL over tcp, its PUSH peer connected, and `lose_first` (receive
            /// attempted while nothing is sent yet, sure to lose its race and be cancelled);
            /// then a thread that sends `COUNT` numbered messages, returning the PUSH.
            async fn pull_fed_in_background(
                lose_first: impl AsyncFnOnce(&sp::Pull),
            ) -> (sp::Pull, std::thread::JoinHandle<sp::Push>) {
                let pull = sp::Pull::new();
                let listener = pull.listen("tcp://127.0.0.1:0").await.expect("listen");
                let push = sp::Push::new();
                push.set_send_timeout(Some(T));
                push.dial(&listener).await.expect("dial");
                lose_first(&pull).await;
                let sender = sp_tests::harness::background(async move {
                    for i in 0..COUNT {
                        push.send(numbered(i)).await.expect("send");
                    }
                    push
                });
                (pull, sender)
            }

            /// A PULL listening on `url` with a receive queue of one message, and a PUSH
            /// connected to it with a pipe queue of one: sends soon wait for room.
            async fn one_message_queues(url: &str) -> (sp::Pull, sp::Push) {
                let pull = sp::Pull::new();
                pull.set_recv_buffer(1).expect("a one-message queue");
                pull.set_recv_timeout(Some(T));
                let listener = pull.listen(url).await.expect("listen");
                let push = sp::Push::new();
                push.set_send_buffer(1).expect("a one-message pipe queue");
                push.dial(&listener).await.expect("dial");
                (pull, push)
            }

            /// Receives the rest of `n` numbered messages after those `received` already, and
            /// checks that each arrived once, in order, and that the PUSH sent `n`.
            async fn assert_sent_once_in_order(
                pull: &sp::Pull,
                push: &sp::Push,
                mut received: Vec<u32>,
                n: u32,
            ) {
                while received.len() < n as usize {
                    received.push(number(&pull.recv().await.expect("recv").body));
                }
                assert_eq!(received, (0..n).collect::<Vec<_>>(), "once each, in order");
                assert!(pull.try_recv().is_err(), "no duplicate behind the last");
                assert_eq!(push.stats().msgs_sent, u64::from(n));
            }

            /// Every message received exactly once, and nothing behind the last.
            fn assert_all_received_once(
                pull: &sp::Pull,
                sender: std::thread::JoinHandle<sp::Push>,
            ) {
                let push = sender.join().expect("sender");
                assert_eq!(pull.stats().msgs_received, u64::from(COUNT));
                assert!(pull.try_recv().is_err(), "nothing extra");
                drop(push);
            }

            #[test]
            fn recv_raced_against_a_timer_loses_and_duplicates_nothing() {
                run(async {
                    // Nothing is sent yet, so the first receive is sure to lose its race and
                    // be cancelled; how many of the receives below lose depends on timing.
                    let (pull, sender) = pull_fed_in_background(async |pull: &sp::Pull| {
                        assert!(
                            race(pull.recv(), Duration::from_micros(50)).await.is_none(),
                            "a receive with nothing sent yet completed"
                        );
                    })
                    .await;
                    let (mut next, mut lost_races) = (0u32, 1u32);
                    while next < COUNT {
                        // Most receives lose to the 50 µs timer while nothing is queued yet.
                        match race(pull.recv(), Duration::from_micros(50)).await {
                            Some(msg) => {
                                let got = number(&msg.expect("recv").body);
                                assert_eq!(got, next, "in order, none lost, none twice");
                                next += 1;
                            }
                            None => lost_races += 1,
                        }
                    }
                    println!("{lost_races} receives lost their race and were cancelled");
                    assert_all_received_once(&pull, sender);
                });
            }

            #[test]
            fn recv_many_raced_against_a_timer_loses_and_duplicates_nothing() {
                run(async {
                    let (pull, sender) = pull_fed_in_background(async |pull: &sp::Pull| {
                        let mut buf = Vec::new();
                        let lost = race(pull.recv_many(&mut buf, 16), Duration::from_micros(50));
                        assert!(
                            lost.await.is_none(),
                            "a receive with nothing sent completed"
                        );
                        assert!(buf.is_empty());
                    })
                    .await;
                    let (mut next, mut lost_races, mut batches) = (0u32, 1u32, 0u32);
                    let mut buf = Vec::new();
                    while next < COUNT {
                        buf.clear();
                        match race(pull.recv_many(&mut buf, 16), Duration::from_micros(50)).await {
                            Some(n) => {
                                let n = n.expect("recv_many");
                                assert!((1..=16).contains(&n), "1 to 16 messages, not {n}");
                                assert_eq!(buf.len(), n);
                                for msg in &buf {
                                    assert_eq!(number(&msg.body), next, "in order, none lost");
                                    next += 1;
                                }
                                batches += 1;
                            }
                            None => {
                                assert!(buf.is_empty(), "a cancelled call appended nothing");
                                lost_races += 1;
                            }
                        }
                    }
                    println!("{batches} batches; {lost_races} calls lost their race");
                    assert_all_received_once(&pull, sender);
                });
            }

            #[test]
            fn send_raced_against_a_timer_sends_each_message_once() {
                run(async {
                    let (pull, push) =
                        one_message_queues(concat!("inproc://cancel-send-", stringify!($module)))
                            .await;
                    // Send with a very short patience: a send that loses its race sent
                    // nothing, so the same message is offered again until one wins.
                    let (mut i, mut cancelled) = (0u32, 0u32);
                    let mut received = Vec::new();
                    while i < 200 {
                        match race(push.send(numbered(i)), Duration::from_micros(20)).await {
                            Some(res) => {
                                res.expect("send");
                                i += 1;
                            }
                            None => {
                                cancelled += 1;
                                // Let the reader make room now and then.
                                if let Ok(m) = pull.try_recv() {
                                    received.push(number(&m.body));
                                }
                            }
                        }
                    }
                    assert_sent_once_in_order(&pull, &push, received, 200).await;
                    assert!(cancelled > 0, "the race never cancelled a send");
                });
            }

            #[test]
            fn send_many_raced_against_a_timer_sends_each_message_once() {
                run(async {
                    let (pull, push) = one_message_queues(concat!(
                        "inproc://cancel-send-many-",
                        stringify!($module)
                    ))
                    .await;
                    let mut msgs: Vec<sp_transport::Message> =
                        (0..200).map(|i| numbered(i).into()).collect();
                    let (mut cancelled, mut received) = (0u32, Vec::new());
                    while !msgs.is_empty() {
                        let before = msgs.len();
                        match race(push.send_many(&mut msgs), Duration::from_micros(20)).await {
                            Some(res) => {
                                let n = res.expect("send_many");
                                assert!(n >= 1 && msgs.len() == before - n);
                            }
                            None => {
                                assert_eq!(msgs.len(), before, "a cancelled call sent nothing");
                                cancelled += 1;
                                if let Ok(m) = pull.try_recv() {
                                    received.push(number(&m.body));
                                }
                            }
                        }
                    }
                    assert_sent_once_in_order(&pull, &push, received, 200).await;
                    assert!(cancelled > 0, "the race never cancelled a send");
                });
            }

            #[test]
            fn a_dropped_context_receive_hands_its_request_to_the_next_context() {
                run(async {
                    let rep = sp::Rep::new();
                    let listener = rep.listen("tcp://127.0.0.1:0").await.expect("listen");
                    let req = sp::Req::new();
                    req.set_recv_timeout(Some(T));
                    req.dial(&listener).await.expect("dial");
                    let first = rep.context().expect("context");
                    let second = rep.context().expect("context");
                    second.set_recv_timeout(Some(T));
                    // The first context waits; the request is handed to it...
                    let mut waiting = Box::pin(first.recv());
                    assert!(
                        race(waiting.as_mut(), Duration::from_millis(1))
                            .await
                            .is_none(),
                        "nothing has been asked yet"
                    );
                    let asker = sp_tests::harness::background(async move {
                        let reply = req.request(b"question").await;
                        (req, reply)
                    });
                    wait_for("the request to reach REP", T, || {
                        rep.pipes().iter().any(|p| p.stats().msgs_in == 1)
                    })
                    .await;
                    // ...and its receive is dropped before the context took the message.
                    drop(waiting);
                    let request = second.recv().await.expect("the second context gets it");
                    assert_eq!(&request.body[..], b"question");
                    second.send(request.body).await.expect("reply");
                    let (req, reply) = asker.join().expect("asker");
                    assert_eq!(&reply.expect("reply").body[..], b"question");
                    assert_eq!(rep.stats().msgs_received, 1, "delivered once");
                    assert_eq!(req.stats().msgs_received, 1);
                });
            }

            #[test]
            fn an_abandoned_request_never_delivers_its_late_reply() {
                run(async {
                    let rep = sp::Rep::new();
                    rep.set_recv_timeout(Some(T));
                    let listener = rep
                        .listen(concat!("inproc://cancel-request-", stringify!($module)))
                        .await
                        .expect("listen");
                    let req = sp::Req::new();
                    req.set_recv_timeout(Some(T));
                    req.dial(&listener).await.expect("dial");
                    // The request loses its race: the caller gave up on it.
                    let abandoned = race(req.request(b"old"), Duration::from_millis(20)).await;
                    assert!(abandoned.is_none(), "nobody answered in time");
                    let old = rep.recv().await.expect("the old request arrived");
                    rep.send(old.body).await.expect("a late reply");
                    // The next request gets its own reply, never the late one.
                    let asker = sp_tests::harness::background(async move {
                        let reply = req.request(b"new").await;
                        (req, reply)
                    });
                    let new = rep.recv().await.expect("the new request");
                    assert_eq!(&new.body[..], b"new");
                    rep.send(new.body).await.expect("reply");
                    let (req, reply) = asker.join().expect("asker");
                    assert_eq!(&reply.expect("reply").body[..], b"new");
                    let dropped = req.stats().dropped;
                    assert_eq!(dropped.total(), 1, "the late reply is counted: {dropped:?}");
                });
            }

            /// Receives of many threads waiting on one socket: each message reaches exactly
            /// one of them, also after a waiting receive was cancelled.
            #[test]
            fn receives_queued_on_one_socket_share_its_messages_and_survive_a_cancel() {
                const RECEIVERS: usize = 8;
                run(async {
                    let pull = sp::Pull::new();
                    pull.listen(concat!("inproc://turns-", stringify!($module)))
                        .await
                        .expect("listen");
                    let push = sp::Push::new();
                    push.set_send_timeout(Some(T));
                    push.dial(concat!("inproc://turns-", stringify!($module)))
                        .await
                        .expect("dial");
                    let receivers: Vec<_> = (0..RECEIVERS)
                        .map(|_| {
                            let pull = pull.clone();
                            sp_tests::harness::background(async move {
                                let mut got = Vec::new();
                                // A one-byte message tells the receiver to stop.
                                loop {
                                    let msg = pull.recv().await.expect("recv");
                                    if msg.body.len() == 1 {
                                        return got;
                                    }
                                    got.push(number(&msg.body));
                                }
                            })
                        })
                        .collect();
                    // Waits among the others (or before them), then is cancelled: a wake-up
                    // meant for it must not be lost.
                    assert!(race(pull.recv(), Duration::from_micros(50)).await.is_none());
                    for i in 0..COUNT {
                        push.send(numbered(i)).await.expect("send");
                    }
                    for _ in 0..RECEIVERS {
                        push.send(vec![0u8]).await.expect("send a stop");
                    }
                    let mut all: Vec<u32> = receivers
                        .into_iter()
                        .flat_map(|r| r.join().expect("receiver"))
                        .collect();
                    all.sort_unstable();
                    assert_eq!(all, (0..COUNT).collect::<Vec<_>>());
                });
            }

            /// A receive kept but not polled after its wake-up does not hold up the other
            /// receives on the socket: a scheme that wakes one receive per message must hand
            /// the next message to another.
            #[test]
            fn a_receive_kept_but_not_polled_does_not_hold_up_the_others() {
                run(async {
                    let pull = sp::Pull::new();
                    pull.listen(concat!("inproc://unpolled-", stringify!($module)))
                        .await
                        .expect("listen");
                    let push = sp::Push::new();
                    push.set_send_timeout(Some(T));
                    push.dial(concat!("inproc://unpolled-", stringify!($module)))
                        .await
                        .expect("dial");
                    let kept = pull.recv();
                    futures_util::pin_mut!(kept);
                    assert!(smol::future::poll_once(kept.as_mut()).await.is_none());
                    let other = {
                        let pull = pull.clone();
                        sp_tests::harness::background(async move {
                            number(&pull.recv().await.expect("recv").body)
                        })
                    };
                    // Sent one at a time: each is a delivery of its own.
                    push.send(numbered(1)).await.expect("send");
                    push.send(numbered(2)).await.expect("send");
                    // Waited for without blocking this thread, which `kept` belongs to.
                    wait_for("the other receive", T, || other.is_finished()).await;
                    let got = other.join().expect("the other receive");
                    let kept_got = number(&kept.await.expect("recv").body);
                    let mut both = [got, kept_got];
                    both.sort_unstable();
                    assert_eq!(both, [1, 2]);
                });
            }

            #[test]
            fn a_stream_raced_against_a_timer_loses_nothing() {
                use futures_util::StreamExt;
                run(async {
                    let mut pull = sp::Pull::new();
                    pull.listen(concat!("inproc://cancel-stream-", stringify!($module)))
                        .await
                        .expect("listen");
                    let push = sp::Push::new();
                    push.set_send_timeout(Some(T));
                    push.dial(concat!("inproc://cancel-stream-", stringify!($module)))
                        .await
                        .expect("dial");
                    let sender = sp_tests::harness::background(async move {
                        for i in 0..COUNT {
                            push.send(numbered(i)).await.expect("send");
                        }
                        push
                    });
                    let mut next = 0u32;
                    while next < COUNT {
                        if let Some(item) = race(pull.next(), Duration::from_micros(50)).await {
                            let msg = item.expect("open").expect("recv");
                            assert_eq!(number(&msg.body), next);
                            next += 1;
                        }
                    }
                    drop(sender.join().expect("sender"));
                });
            }
        }
    };
}

cancel_suite!(tokio_adapter, sp_tokio, run_tokio);
cancel_suite!(smol_adapter, sp_smol, run_smol);
