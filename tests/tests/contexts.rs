//! Contexts through real sockets (SP-PROTOCOLS.md sections 4.3–4.6 "Contexts", scenarios 35,
//! 47–49, 52, 66 and 73): many requests, surveys and subscriptions in flight on one socket,
//! on tokio over tcp and inproc, and on smol and sp-blocking.
//!
//! Nothing sleeps to synchronise: waits poll pipe counts or receive with a timeout, and every
//! test body runs under an overall time limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sp_tests::{inproc_url, limited, tcp_url, wait_until};

/// Receive and send timeout for calls that must succeed.
const T: Duration = Duration::from_secs(5);

/// 100 REQ contexts with their requests outstanding at once, against 100 REP contexts that
/// hold every reply until all 100 requests have arrived (scenario 49).
async fn req_rep_hundred_contexts(url: String) {
    const N: usize = 100;
    let rep = sp_tokio::Rep::new();
    let addr = rep.listen(&url).await.unwrap();
    let req = sp_tokio::Req::new();
    req.dial(&addr.to_string()).await.unwrap();

    let all_arrived = Arc::new(tokio::sync::Barrier::new(N));
    let mut servers = Vec::new();
    for _ in 0..N {
        let ctx = rep.context().unwrap();
        ctx.set_recv_timeout(Some(T));
        let all_arrived = all_arrived.clone();
        servers.push(tokio::spawn(async move {
            let request = ctx.recv().await.unwrap();
            all_arrived.wait().await;
            let mut reply = request.body.to_vec();
            reply.extend_from_slice(b" answered");
            ctx.send(reply).await.unwrap();
        }));
    }
    let mut clients = Vec::new();
    for i in 0..N {
        let ctx = req.context().unwrap();
        ctx.set_recv_timeout(Some(T));
        clients.push(tokio::spawn(async move {
            let request = format!("request {i}");
            ctx.send(request.clone().into_bytes()).await.unwrap();
            let reply = ctx.recv().await.unwrap();
            assert_eq!(reply.body, format!("{request} answered").as_bytes());
        }));
    }
    for task in servers.into_iter().chain(clients) {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_rep_hundred_contexts_tcp() {
    limited(req_rep_hundred_contexts(tcp_url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_rep_hundred_contexts_inproc() {
    limited(req_rep_hundred_contexts(inproc_url("ctx-hundred"))).await;
}

// Scenarios 47 and 48: a new send on a context fails the receive waiting on it.
#[tokio::test]
async fn req_context_new_send_cancels_waiting_recv() {
    limited(async {
        let rep = sp_tokio::Rep::new();
        let addr = rep.listen(&inproc_url("ctx-cancel")).await.unwrap();
        let req = sp_tokio::Req::new();
        req.dial(&addr.to_string()).await.unwrap();
        let ctx = req.context().unwrap();
        ctx.set_recv_timeout(Some(T));

        ctx.send("abc").await.unwrap();
        let (waiting, ()) = tokio::join!(ctx.recv(), async {
            // Waits until the first request is at the REP, so the receive above waits.
            let abc = rep.recv().await.unwrap();
            assert_eq!(abc.body, "abc");
            ctx.send("def").await.unwrap();
        });
        assert!(waiting.unwrap_err().is_canceled());

        rep.send("abc answered").await.unwrap();
        let def = rep.recv().await.unwrap();
        rep.send([&def.body[..], b" answered"].concat())
            .await
            .unwrap();
        assert_eq!(ctx.recv().await.unwrap().body, "def answered");
        assert!(ctx.try_recv().unwrap_err().is_bad_state());
    })
    .await;
}

// Scenario 52 and 50: a second receive on one REP context is refused; closing the socket ends
// the first.
#[tokio::test]
async fn rep_context_double_recv_is_bad_state() {
    limited(async {
        let rep = sp_tokio::Rep::new();
        rep.listen(&inproc_url("ctx-double")).await.unwrap();
        let ctx = rep.context().unwrap();

        let (first, ()) = tokio::join!(ctx.recv(), async {
            let second = ctx.recv_until(Instant::now() + T).await;
            assert!(second.unwrap_err().is_bad_state());
            rep.close_now();
        });
        assert!(first.unwrap_err().is_closed());
        assert!(rep.context().unwrap_err().is_closed());
    })
    .await;
}

// Scenario 35 (contexts are refused where they make no sense: PAIR, PUSH, PULL, PUB, BUS) is
// a compile-time guarantee now: `context()` exists only for `ContextRole` (REQ, REP, SURVEYOR,
// RESPONDENT, SUB). The adapter crates check it with `compile_fail` doc tests.

// Scenario 66: overlapping surveys on contexts each collect only their own answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveyor_contexts_collect_their_own_responses() {
    limited(async {
        let surveyor = sp_tokio::Surveyor::new();
        let addr = surveyor.listen(&tcp_url()).await.unwrap();
        let mut respondents = Vec::new();
        for tag in ["r1", "r2"] {
            let resp = sp_tokio::Respondent::new();
            resp.dial(&addr.to_string()).await.unwrap();
            let answering = resp.clone();
            tokio::spawn(async move {
                while let Ok(survey) = answering.recv().await {
                    let answer = [&survey.body[..], b":", tag.as_bytes()].concat();
                    if answering.send(answer).await.is_err() {
                        break;
                    }
                }
            });
            respondents.push(resp);
        }
        wait_until("two respondents", T, || surveyor.pipe_count() == 2).await;

        let mut surveys = Vec::new();
        for name in ["s1", "s2", "s3"] {
            let ctx = surveyor.context().unwrap();
            ctx.set_survey_time(Duration::from_secs(3)).unwrap();
            assert_eq!(ctx.survey_time(), Some(Duration::from_secs(3)));
            ctx.set_recv_timeout(Some(T));
            surveys.push(tokio::spawn(async move {
                ctx.send(name).await.unwrap();
                let mut got = vec![
                    ctx.recv().await.unwrap().body,
                    ctx.recv().await.unwrap().body,
                ];
                got.sort();
                assert_eq!(got, [format!("{name}:r1"), format!("{name}:r2")]);
            }));
        }
        for survey in surveys {
            survey.await.unwrap();
        }
        drop(respondents);
    })
    .await;
}

// Scenario 73: SUB contexts with different subscriptions and their own queues.
#[tokio::test]
async fn sub_contexts_filter_independently() {
    limited(async {
        let publisher = sp_tokio::Pub::new();
        let addr = publisher.listen(&tcp_url()).await.unwrap();
        let sub = sp_tokio::Sub::new();
        let apples = sub.context().unwrap();
        let all = sub.context().unwrap();
        apples.subscribe(b"apple").unwrap();
        all.subscribe(b"").unwrap();
        assert!(apples.unsubscribe(b"pear").is_err());
        sub.dial(&addr.to_string()).await.unwrap();
        wait_until("the subscriber", T, || publisher.pipe_count() == 1).await;

        for body in ["apple 1", "pear 1", "apple 2"] {
            publisher.send(body).await.unwrap();
        }
        let deadline = Instant::now() + T;
        assert_eq!(apples.recv_until(deadline).await.unwrap().body, "apple 1");
        assert_eq!(apples.recv_until(deadline).await.unwrap().body, "apple 2");
        for want in ["apple 1", "pear 1", "apple 2"] {
            assert_eq!(all.recv_until(deadline).await.unwrap().body, want);
        }
        assert!(apples.try_recv().unwrap_err().is_would_block());
        assert!(
            sub.try_recv().unwrap_err().is_would_block(),
            "the socket subscribed to nothing"
        );
    })
    .await;
}

#[test]
fn req_rep_contexts_on_smol() {
    smol::block_on(async {
        let url = inproc_url("ctx-smol");
        let rep = sp_smol::Rep::new();
        rep.listen(&url).await.unwrap();
        let req = sp_smol::Req::new();
        req.dial(&url).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let ctx = rep.context().unwrap();
            tasks.push(smol::spawn(async move {
                let request = ctx.recv_until(Instant::now() + T).await.unwrap();
                ctx.send(request.body).await.unwrap();
            }));
        }
        for i in 0..10 {
            let ctx = req.context().unwrap();
            tasks.push(smol::spawn(async move {
                ctx.send(format!("smol {i}").into_bytes()).await.unwrap();
                let reply = ctx.recv_until(Instant::now() + T).await.unwrap();
                assert_eq!(reply.body, format!("smol {i}").as_bytes());
            }));
        }
        for task in tasks {
            task.await;
        }
    });
}

#[test]
fn req_rep_contexts_on_blocking_threads() {
    let rep = sp_blocking::Rep::new();
    let addr = rep.listen(tcp_url()).unwrap();
    let req = sp_blocking::Req::new();
    req.dial(addr.to_string()).unwrap();
    let mut threads = Vec::new();
    for _ in 0..8 {
        let ctx = rep.context().unwrap();
        ctx.set_recv_timeout(Some(T));
        threads.push(std::thread::spawn(move || {
            let request = ctx.recv().unwrap();
            ctx.send([&request.body[..], b"!"].concat()).unwrap();
        }));
    }
    for i in 0..8 {
        let ctx = req.context().unwrap();
        ctx.set_recv_timeout(Some(T));
        ctx.set_resend_interval(Some(Duration::from_secs(1)))
            .unwrap();
        threads.push(std::thread::spawn(move || {
            ctx.send(format!("blocking {i}").into_bytes()).unwrap();
            assert_eq!(
                ctx.recv().unwrap().body,
                format!("blocking {i}!").as_bytes()
            );
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    let ctx = req.context().unwrap();
    assert!(ctx.try_recv().unwrap_err().is_bad_state());
    // A context keeps its socket open; closing the socket ends the context too.
    req.close();
    assert!(ctx.try_send("after close").unwrap_err().is_closed());
}

/// A context starts with its socket's timeouts and then keeps its own: setting one on the
/// context leaves the socket's and other contexts' alone, and a zero receive timeout does not
/// wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_timeouts_start_from_the_socket_and_stay_their_own() {
    let rep = sp_tokio::Rep::new();
    rep.set_recv_timeout(Some(Duration::from_millis(750)));
    let a = rep.context().unwrap();
    let b = rep.context().unwrap();
    assert_eq!(a.recv_timeout(), Some(Duration::from_millis(750)));
    assert_eq!(a.send_timeout(), None);
    a.set_recv_timeout(Some(Duration::ZERO));
    a.set_send_timeout(Some(Duration::from_secs(86_400 * 365 * 1000)));
    assert_eq!(a.recv_timeout(), Some(Duration::ZERO));
    assert!(a
        .send_timeout()
        .is_some_and(|t| t > Duration::from_secs(86_400 * 365 * 500)));
    assert_eq!(b.recv_timeout(), Some(Duration::from_millis(750)));
    assert_eq!(rep.recv_timeout(), Some(Duration::from_millis(750)));
    // WouldBlock, not TimedOut: a zero timeout makes the receive non-blocking.
    let e = a.recv().await.expect_err("nothing to receive");
    assert!(e.is_would_block(), "{e:?}");
    b.set_recv_timeout(None);
    assert_eq!(b.recv_timeout(), None);
}

/// A deadline the caller names (`*_until`) ends in `TimedOut` once it has passed, even when it
/// had passed before the call's first attempt (a deadline a few microseconds away, on a busy
/// machine); only a zero timeout option makes a call non-blocking (`WouldBlock`). Sockets,
/// contexts, readiness waits and `RecvSet` alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_deadline_that_passed_before_the_call_times_out() {
    limited(async {
        let pull = sp_tokio::Pull::new();
        let e = pull.recv_until(Instant::now()).await.unwrap_err();
        assert!(e.is_timed_out(), "recv_until: {e:?}");
        let e = pull.readable_until(Instant::now()).await.unwrap_err();
        assert!(e.is_timed_out(), "readable_until: {e:?}");
        let mut set = sp_tokio::RecvSet::new();
        set.add_socket(0, &pull);
        let e = set.recv_until(Instant::now()).await.unwrap_err();
        assert!(e.is_timed_out(), "RecvSet::recv_until: {e:?}");

        let push = sp_tokio::Push::new();
        let unsent = push
            .send_until("no peer", Instant::now())
            .await
            .unwrap_err();
        assert!(unsent.error().is_timed_out(), "send_until: {unsent:?}");

        let rep = sp_tokio::Rep::new();
        let ctx = rep.context().unwrap();
        let e = ctx.recv_until(Instant::now()).await.unwrap_err();
        assert!(e.is_timed_out(), "Context::recv_until: {e:?}");

        // The timeout options: zero is a non-blocking call.
        pull.set_recv_timeout(Some(Duration::ZERO));
        assert!(pull.recv().await.unwrap_err().is_would_block());
        push.set_send_timeout(Some(Duration::ZERO));
        assert!(push
            .send("no peer")
            .await
            .unwrap_err()
            .error()
            .is_would_block());
    })
    .await;
}
