//! `RecvSet`: one wait on the receives of many sockets and contexts, on tokio, smol and
//! sp-blocking, through real sockets (tcp and inproc).
//!
//! Nothing sleeps to synchronise: waits receive or poll pipe counts, and every test body runs
//! under an overall time limit.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use sp_tests::{inproc_url, limited, tcp_url, TEST_BODY_LIMIT as LIMIT};
use sp_transport::Error;

/// 50 REQ contexts keep a request each in flight from one task; a REP socket echoes. Each
/// reply comes back under the key of the context that sent its request, and the next request
/// goes out on that context, five rounds each.
#[tokio::test]
async fn req_contexts_in_one_set_get_their_own_replies() {
    limited(async {
        const N: usize = 50;
        const ROUNDS: usize = 5;
        let rep = sp_tokio::Rep::new();
        let addr = rep.listen(&tcp_url()).await.unwrap();
        let req = sp_tokio::Req::new();
        req.dial(&addr.to_string()).await.unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..N * ROUNDS {
                let request = rep.recv().await.unwrap();
                rep.send(request.body).await.unwrap();
            }
        });

        let contexts: Vec<_> = (0..N).map(|_| req.context().unwrap()).collect();
        let mut set = sp_tokio::RecvSet::new();
        for (i, ctx) in contexts.iter().enumerate() {
            ctx.send(format!("{i} 0")).await.unwrap();
            set.add_context(i, ctx);
        }
        let mut rounds = [0usize; N];
        while !set.is_empty() {
            let (i, reply) = set.recv().await.unwrap();
            assert_eq!(reply.unwrap().body, format!("{i} {}", rounds[i]).as_bytes());
            rounds[i] += 1;
            if rounds[i] == ROUNDS {
                assert!(set.remove(&i));
            } else {
                contexts[i]
                    .send(format!("{i} {}", rounds[i]))
                    .await
                    .unwrap();
            }
        }
        assert_eq!(rounds, [ROUNDS; N]);
        server.await.unwrap();
    })
    .await;
}

/// Three PULL sockets, each fed by its own PUSH: every message arrives once, under the key
/// of the socket it was sent to, and in order per socket.
#[tokio::test]
async fn sockets_in_one_set_deliver_everything_under_their_keys() {
    limited(async {
        const EACH: usize = 200;
        let mut pulls = Vec::new();
        let mut pushes = Vec::new();
        for _ in 0..3 {
            let pull = sp_tokio::Pull::new();
            let addr = pull.listen(&inproc_url("recv-set")).await.unwrap();
            let push = sp_tokio::Push::new();
            push.dial(&addr.to_string()).await.unwrap();
            pulls.push(pull);
            pushes.push(push);
        }
        let mut set = sp_tokio::RecvSet::new();
        for (i, pull) in pulls.iter().enumerate() {
            set.add_socket(i, pull);
        }
        let senders: Vec<_> = pushes
            .into_iter()
            .enumerate()
            .map(|(i, push)| {
                tokio::spawn(async move {
                    for n in 0..EACH {
                        push.send(format!("{i}:{n}")).await.unwrap();
                    }
                    push
                })
            })
            .collect();
        let mut next = [0usize; 3];
        for _ in 0..3 * EACH {
            let (i, msg) = set.recv().await.unwrap();
            assert_eq!(msg.unwrap().body, format!("{i}:{}", next[i]).as_bytes());
            next[i] += 1;
        }
        assert_eq!(next, [EACH; 3]);
        assert!(matches!(set.try_recv(), Err(Error::WouldBlock)));
        for s in senders {
            drop(s.await.unwrap());
        }
    })
    .await;
}

/// Scatter and gather: requests on five REQ contexts, then five receives on the set without
/// removing anyone. A context whose reply was taken has nothing to wait for and is passed
/// over (not reported), a sixth receive fails with `BadState` as nothing is left to wait for,
/// and a request sent on one context afterwards is waited for again.
#[tokio::test]
async fn contexts_that_answered_are_passed_over_until_they_ask_again() {
    limited(async {
        let rep = sp_tokio::Rep::new();
        let addr = rep.listen(inproc_url("gather")).await.unwrap();
        let req = sp_tokio::Req::new();
        req.dial(addr.to_string()).await.unwrap();
        let server = tokio::spawn(async move {
            while let Ok(request) = rep.recv().await {
                if rep.send(request.body).await.is_err() {
                    break;
                }
            }
        });
        let contexts: Vec<_> = (0..5).map(|_| req.context().unwrap()).collect();
        let mut set = sp_tokio::RecvSet::new();
        for (i, ctx) in contexts.iter().enumerate() {
            ctx.send(format!("{i}")).await.unwrap();
            set.add_context(i, ctx);
        }
        let mut seen = HashSet::new();
        for _ in 0..5 {
            let (i, reply) = set.recv().await.unwrap();
            assert_eq!(reply.unwrap().body, format!("{i}").as_bytes());
            assert!(seen.insert(i), "context {i} answered twice");
        }
        assert!(matches!(set.recv().await, Err(Error::BadState)));
        assert_eq!(set.len(), 5, "the members stay");

        contexts[3].send("again").await.unwrap();
        let (i, reply) = set.recv().await.unwrap();
        assert_eq!((i, reply.unwrap().body.as_ref()), (3, &b"again"[..]));
        server.abort();
    })
    .await;
}

/// Members take turns: a member with a hundred messages queued does not keep another's one
/// message waiting behind them.
#[tokio::test]
async fn a_busy_member_does_not_starve_the_others() {
    limited(async {
        let (busy, quiet) = (sp_tokio::Pull::new(), sp_tokio::Pull::new());
        let (to_busy, to_quiet) = (sp_tokio::Push::new(), sp_tokio::Push::new());
        to_busy
            .dial(busy.listen(inproc_url("busy")).await.unwrap().to_string())
            .await
            .unwrap();
        to_quiet
            .dial(quiet.listen(inproc_url("quiet")).await.unwrap().to_string())
            .await
            .unwrap();
        for n in 0..100 {
            to_busy.send(format!("busy {n}")).await.unwrap();
        }
        to_quiet.send("quiet").await.unwrap();
        // Both queues hold their messages before the set first looks (a PULL's queue takes
        // 128; the rest of the busy one's waits in its pipe).
        while busy.stats().recv_queued < 100 || !quiet.is_readable() {
            tokio::task::yield_now().await;
        }
        let mut set = sp_tokio::RecvSet::new();
        set.add_socket("busy", &busy);
        set.add_socket("quiet", &quiet);
        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(set.recv().await.unwrap().0);
        }
        assert!(
            order.contains(&"quiet"),
            "the quiet member waited: {order:?}"
        );
    })
    .await;
}

/// A receive on the set that is dropped before it completes takes nothing: REP contexts in a
/// set, polled once at a time and dropped while pending, still get each of 40 requests
/// exactly once.
#[tokio::test]
async fn a_dropped_receive_on_the_set_loses_nothing() {
    limited(async {
        const N: usize = 40;
        let rep = sp_tokio::Rep::new();
        let addr = rep.listen(&tcp_url()).await.unwrap();
        let req = sp_tokio::Req::new();
        req.dial(&addr.to_string()).await.unwrap();
        let rep_contexts: Vec<_> = (0..4).map(|_| rep.context().unwrap()).collect();
        let mut set = sp_tokio::RecvSet::new();
        for (i, ctx) in rep_contexts.iter().enumerate() {
            set.add_context(i, ctx);
        }
        let clients: Vec<_> = (0..N)
            .map(|n| {
                let ctx = req.context().unwrap();
                tokio::spawn(async move {
                    ctx.send(format!("request {n}")).await.unwrap();
                    ctx.recv().await.unwrap().body
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut dropped_while_pending = 0;
        while seen.len() < N {
            // One poll, then the future is dropped: a cancelled receive whenever it is pending.
            match set.recv().now_or_never() {
                Some(got) => {
                    let (i, request) = got.unwrap();
                    let request = request.unwrap();
                    assert!(seen.insert(request.body.clone()), "delivered twice");
                    rep_contexts[i].send(request.body).await.unwrap();
                }
                None => {
                    dropped_while_pending += 1;
                    tokio::task::yield_now().await;
                }
            }
        }
        assert!(dropped_while_pending > 0, "no receive was ever cancelled");
        for (n, client) in clients.into_iter().enumerate() {
            assert_eq!(client.await.unwrap(), format!("request {n}").as_bytes());
        }
    })
    .await;
}

/// An empty set has nothing to wait for; a deadline ends a wait on a quiet set; a closed
/// context reports it once under its key and leaves; as a stream, the set ends once empty.
#[tokio::test(start_paused = true)]
async fn empty_quiet_and_closed_members() {
    let mut set = sp_tokio::RecvSet::<u8>::new();
    assert!(matches!(set.recv().await, Err(Error::BadState)));

    let sub = sp_tokio::Sub::new();
    let ctx = sub.context().unwrap();
    set.add_context(7, &ctx);
    set.add_socket(8, &sub);
    assert_eq!(set.len(), 2);
    let deadline = tokio::time::Instant::now().into_std() + Duration::from_secs(3600);
    assert!(matches!(
        set.recv_until(deadline).await,
        Err(Error::TimedOut)
    ));

    ctx.close();
    let (key, result) = set.recv().await.unwrap();
    assert!(matches!((key, result), (7, Err(Error::Closed))));
    assert_eq!(set.len(), 1);

    sub.close().await;
    assert!(matches!(set.next().await, Some((8, Err(Error::Closed)))));
    assert!(set.next().await.is_none());
}

/// smol: SUB sockets of one PUB in a set each get every message.
#[test]
fn smol_subscribers_in_one_set() {
    smol::block_on(async {
        let publisher = sp_smol::Pub::new();
        let addr = publisher.listen(&tcp_url()).await.unwrap();
        let subs: Vec<_> = (0..3).map(|_| sp_smol::Sub::new()).collect();
        let mut set = sp_smol::RecvSet::new();
        for (i, sub) in subs.iter().enumerate() {
            sub.subscribe(b"");
            sub.dial(&addr.to_string()).await.unwrap();
            set.add_socket(i, sub);
        }
        // A SUB may join after the first sends: repeat a warm-up until each SUB has one.
        let mut warm = HashSet::new();
        while warm.len() < 3 {
            publisher.send("warm-up").await.unwrap();
            while let Ok((i, _)) = set.try_recv() {
                warm.insert(i);
            }
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        while set.try_recv().is_ok() {}
        for n in 0..10 {
            publisher.send(format!("{n}")).await.unwrap();
        }
        let mut got = [0usize; 3];
        let deadline = Instant::now() + LIMIT;
        while got.iter().sum::<usize>() < 30 {
            let (i, msg) = set.recv_until(deadline).await.unwrap();
            let body = msg.unwrap().body;
            if body != "warm-up".as_bytes() {
                assert_eq!(body, format!("{}", got[i]).as_bytes());
                got[i] += 1;
            }
        }
        assert_eq!(got, [10; 3]);
    });
}

/// sp-blocking: one thread serves 20 REP contexts through a set while one thread keeps 20 REQ
/// contexts in flight through another; a deadline on a quiet set times out.
#[test]
fn blocking_one_thread_per_side() {
    const N: usize = 20;
    let rep = sp_blocking::Rep::new();
    let addr = rep.listen(tcp_url()).unwrap();
    let req = sp_blocking::Req::new();
    req.dial(addr.to_string()).unwrap();
    let servers: Vec<_> = (0..N).map(|_| rep.context().unwrap()).collect();
    let server = std::thread::spawn(move || {
        let mut set = sp_blocking::RecvSet::new();
        for (i, ctx) in servers.iter().enumerate() {
            set.add_context(i, ctx);
        }
        let mut served = 0;
        let deadline = Instant::now() + LIMIT;
        while served < N * 3 {
            let (i, request) = set.recv_until(deadline).unwrap();
            servers[i].send(request.unwrap().body).unwrap();
            served += 1;
        }
        let quiet = set.recv_until(Instant::now() + Duration::from_millis(20));
        assert!(matches!(quiet, Err(Error::TimedOut)));
    });
    let clients: Vec<_> = (0..N).map(|_| req.context().unwrap()).collect();
    let mut set = sp_blocking::RecvSet::new();
    let mut rounds = [0usize; N];
    for (i, ctx) in clients.iter().enumerate() {
        ctx.send(format!("{i} 0")).unwrap();
        set.add_context(i, ctx);
    }
    let deadline = Instant::now() + LIMIT;
    while !set.is_empty() {
        let (i, reply) = set.recv_until(deadline).unwrap();
        assert_eq!(reply.unwrap().body, format!("{i} {}", rounds[i]).as_bytes());
        rounds[i] += 1;
        if rounds[i] == 3 {
            set.remove(&i);
        } else {
            clients[i].send(format!("{i} {}", rounds[i])).unwrap();
        }
    }
    server.join().unwrap();
}

/// sp-blocking: a set returns what a member has ready, even when the deadline has passed
/// (the attempt comes before the deadline is looked at); with nothing ready, a passed
/// deadline times out and a zero-wait `try_recv` says "would block"; an empty set is a bad
/// state.
#[test]
fn blocking_set_takes_what_is_ready_before_looking_at_its_deadline() {
    let url = inproc_url("recv-set-ready-before-deadline");
    let pull = sp_blocking::Pull::new();
    pull.listen(&url).unwrap();
    let push = sp_blocking::Push::new();
    push.dial(&url).unwrap();
    let mut set = sp_blocking::RecvSet::new();
    assert!(matches!(set.recv(), Err(Error::BadState)), "an empty set");
    set.add_socket("pull", &pull);
    push.send("queued").unwrap();
    // Wait for the message without a deadline, then put one back behind it.
    let (key, first) = set.recv().unwrap();
    assert_eq!((key, &first.unwrap().body[..]), ("pull", &b"queued"[..]));
    push.send("ready").unwrap();
    pull.readable_until(Instant::now() + LIMIT).unwrap();
    let passed = Instant::now() - Duration::from_millis(1);
    let (key, ready) = set.recv_until(passed).unwrap();
    assert_eq!((key, &ready.unwrap().body[..]), ("pull", &b"ready"[..]));
    assert!(matches!(set.recv_until(passed), Err(Error::TimedOut)));
    assert!(matches!(set.try_recv(), Err(Error::WouldBlock)));
}
