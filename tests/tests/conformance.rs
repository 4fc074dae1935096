//! The adapter conformance suite: the same scenarios, written once, run against every adapter
//! (STYLE.md section 5), over inproc, ipc and tcp.
//!
//! `conformance_suite!(module, adapter, run)` expands every scenario for one adapter:
//! `adapter` is a path to a module that names the typed sockets (`Socket<P>`, `Req`, `Rep`,
//! `Push`, `Pull`, `Pair`, `Pair1`) with the async API of `sp_transport::Socket`, and `run`
//! drives an async test body to completion (`tokio::runtime::Runtime::block_on`,
//! `smol::block_on`). Each scenario becomes three tests, `module::{tcp,ipc,inproc}::name`.
//!
//! The scenario bodies only await socket calls and the runtime-neutral helpers below (async-io
//! timers, plain threads), so an adapter with blocking calls joins with a shim module whose
//! `async fn`s run each blocking call inline, and one more `conformance_suite!` line: see
//! `sp_tests::harness::blocking_shim` for sp-blocking.
//!
//! The mixed-adapter tests at the bottom connect tokio and smol sockets in one process (a tokio
//! runtime on its own thread, smol's global executor) over real sockets.
//!
//! No scenario sleeps to synchronise: waits poll an event (pipe counts) or receive with a
//! timeout. Every body also runs under an overall time limit.

use std::time::Duration;

use sp_tests::harness::{background, run_blocking, run_smol, run_tokio, wait_for, with_limit};
use sp_tests::{binary_payload, Endpoint, TempIpcDir, Transport};

/// Receive and send timeout for calls that must succeed.
const T: Duration = Duration::from_secs(2);
/// How long to wait for something that must not happen.
const SHORT: Duration = Duration::from_millis(200);
/// The most any one test body may take.
const LIMIT: Duration = Duration::from_secs(20);

/// Lists the scenarios once; `with_scenarios!(m!(args))` calls `m!(args; scenario, ...)`.
macro_rules! with_scenarios {
    ($m:ident!($($args:tt)*)) => {
        $m!($($args)*;
            req_rep_exchange_both_ways,
            push_pull_exchange_both_ways,
            pair0_exchange_both_ways,
            pair1_exchange_both_ways,
            zero_length_messages_arrive_empty,
            one_mib_messages_arrive_intact,
            req_recv_before_send_is_bad_state,
            rep_send_before_recv_is_bad_state,
            req_resends_when_its_rep_connection_drops,
            push_round_robins_over_three_pulls,
            pull_fair_queues_two_pushes,
            pair_serves_one_peer_at_a_time,
            recv_timeout_gives_timed_out,
            close_wakes_a_blocked_recv_with_closed,
            close_flushes_sent_messages,
            sockets_report_readiness,
        );
    };
}

/// One `#[test]` per scenario for one transport.
macro_rules! transport_tests {
    ($module:ident, $transport:ident; $($scenario:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $scenario() {
                    super::run(super::$scenario(super::Transport::$transport));
                }
            )*
        }
    };
}

/// Expands the suite for one adapter; see the file docs.
macro_rules! conformance_suite {
    ($module:ident, $adapter:path, $run:path) => {
        mod $module {
            use std::time::{Duration, Instant};

            use sp_transport::{RecvRole, SendRole, SocketCore};
            use $adapter as sp;

            // The shared helpers, and whatever `$adapter` and `$run` name at the invocation.
            use super::*;

            fn run(body: impl std::future::Future<Output = ()>) {
                $run(with_limit(LIMIT, body))
            }

            // -------------------------------------------------------------------------------
            // Helpers

            fn timeouts<P: SocketCore>(s: &sp::Socket<P>, d: Duration) {
                s.set_recv_timeout(Some(d));
                s.set_send_timeout(Some(d));
            }

            /// Opens a socket with the suite's timeouts.
            fn open<P: SocketCore>() -> sp::Socket<P> {
                let s = sp::Socket::<P>::new();
                timeouts(&s, T);
                s
            }

            /// Listens on a fresh address of the endpoint's transport; returns the URL to dial.
            async fn listen<P: SocketCore>(s: &sp::Socket<P>, ep: &Endpoint) -> String {
                s.listen(&ep.our_listen_url())
                    .await
                    .expect("listen")
                    .to_string()
            }

            /// `listener` listens, `dialer` dials; returns once both have the pipe.
            async fn connect<P: SocketCore, Q: SocketCore>(
                listener: &sp::Socket<P>,
                dialer: &sp::Socket<Q>,
                ep: &Endpoint,
            ) -> String {
                let url = listen(listener, ep).await;
                let before = listener.pipe_count();
                dialer.dial(&url).await.expect("dial");
                wait_for("the listener's pipe", T, || listener.pipe_count() > before).await;
                url
            }

            /// Opens two sockets of `P` and connects them (the first listens).
            async fn pair_of<P: SocketCore>(ep: &Endpoint) -> (sp::Socket<P>, sp::Socket<P>) {
                let (a, b) = (open::<P>(), open::<P>());
                connect(&a, &b, ep).await;
                (a, b)
            }

            async fn recv_body<P: RecvRole>(s: &sp::Socket<P>, what: &str) -> Vec<u8> {
                match s.recv().await {
                    Ok(m) => m.body.to_vec(),
                    Err(e) => panic!("{what}: {e}"),
                }
            }

            // -------------------------------------------------------------------------------
            // Basic exchanges

            /// REQ/REP: requests and replies with binary payloads, with either side listening.
            async fn req_rep_exchange_both_ways(t: Transport) {
                for req_listens in [false, true] {
                    let ep = Endpoint::new(t);
                    let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                    if req_listens {
                        connect(&req, &rep, &ep).await;
                    } else {
                        connect(&rep, &req, &ep).await;
                    }
                    for i in 0..3u8 {
                        let request = binary_payload(100 + usize::from(i), i);
                        req.send(request.clone()).await.expect("REQ sends");
                        let got = rep.recv().await.expect("REP receives");
                        assert!(got.header.is_empty(), "REP shows no backtrace in the body");
                        assert_eq!(got.body, request);
                        let reply = binary_payload(300, i.wrapping_add(7));
                        rep.send(reply.clone()).await.expect("REP replies");
                        assert_eq!(recv_body(&req, "REQ receives its reply").await, reply);
                    }
                }
            }

            /// PUSH/PULL: messages arrive in order, with either side listening.
            async fn push_pull_exchange_both_ways(t: Transport) {
                for push_listens in [false, true] {
                    let ep = Endpoint::new(t);
                    let (push, pull): (sp::Push, sp::Pull) = (open(), open());
                    if push_listens {
                        connect(&push, &pull, &ep).await;
                    } else {
                        connect(&pull, &push, &ep).await;
                    }
                    let sent: Vec<Vec<u8>> = (0..5u8).map(|i| binary_payload(64, i)).collect();
                    for body in &sent {
                        push.send(body.clone()).await.expect("PUSH sends");
                    }
                    for body in &sent {
                        assert_eq!(&recv_body(&pull, "PULL receives").await, body);
                    }
                }
            }

            /// PAIR (either version): messages both ways, with either side listening.
            async fn pair_exchange<P: SendRole + RecvRole>(t: Transport) {
                for i in 0..2u8 {
                    let (left, right) = pair_of::<P>(&Endpoint::new(t)).await;
                    let (a, b) = if i == 0 {
                        (&left, &right)
                    } else {
                        (&right, &left)
                    };
                    for round in 0..3u8 {
                        let there = binary_payload(80, round);
                        a.send(there.clone()).await.expect("PAIR sends");
                        assert_eq!(recv_body(b, "PAIR receives").await, there);
                        let back = binary_payload(90, round.wrapping_add(50));
                        b.send(back.clone()).await.expect("PAIR answers");
                        assert_eq!(recv_body(a, "PAIR receives the answer").await, back);
                    }
                }
            }

            async fn pair0_exchange_both_ways(t: Transport) {
                pair_exchange::<sp_core::protocol::pair::Pair>(t).await;
            }

            async fn pair1_exchange_both_ways(t: Transport) {
                pair_exchange::<sp_core::protocol::pair1::Pair1>(t).await;
            }

            /// Empty messages arrive as empty messages, on every protocol, both ways.
            async fn zero_length_messages_arrive_empty(t: Transport) {
                let ep = Endpoint::new(t);
                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                connect(&rep, &req, &ep).await;
                req.send(Vec::new()).await.unwrap();
                assert!(recv_body(&rep, "REP receives").await.is_empty());
                rep.send(Vec::new()).await.unwrap();
                assert!(recv_body(&req, "REQ receives").await.is_empty());

                let (push, pull): (sp::Push, sp::Pull) = (open(), open());
                connect(&pull, &push, &ep).await;
                push.send(Vec::new()).await.unwrap();
                push.send("after").await.unwrap();
                assert!(recv_body(&pull, "PULL receives").await.is_empty());
                assert_eq!(recv_body(&pull, "PULL receives").await, b"after");

                empty_both_ways::<sp_core::protocol::pair::Pair>(&ep).await;
                empty_both_ways::<sp_core::protocol::pair1::Pair1>(&ep).await;
            }

            async fn empty_both_ways<P: SendRole + RecvRole>(ep: &Endpoint) {
                let (a, b) = pair_of::<P>(ep).await;
                a.send(Vec::new()).await.unwrap();
                assert!(recv_body(&b, "PAIR receives").await.is_empty());
                b.send(Vec::new()).await.unwrap();
                assert!(recv_body(&a, "PAIR receives").await.is_empty());
            }

            /// A 1 MiB body (above the default limit once headers are added) arrives intact
            /// both ways when the receivers raise their limit.
            async fn one_mib_messages_arrive_intact(t: Transport) {
                const MIB: usize = 1 << 20;
                let ep = Endpoint::new(t);
                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                req.set_recv_max_size(2 * MIB).unwrap();
                rep.set_recv_max_size(2 * MIB).unwrap();
                connect(&rep, &req, &ep).await;
                let request = binary_payload(MIB, 3);
                req.send(request.clone()).await.unwrap();
                assert!(recv_body(&rep, "REP receives 1 MiB").await == request);
                let reply = binary_payload(MIB, 9);
                rep.send(reply.clone()).await.unwrap();
                assert!(recv_body(&req, "REQ receives 1 MiB").await == reply);

                let (a, b): (sp::Pair1, sp::Pair1) = (open(), open());
                a.set_recv_max_size(2 * MIB).unwrap();
                b.set_recv_max_size(2 * MIB).unwrap();
                connect(&a, &b, &ep).await;
                a.send(request.clone()).await.unwrap();
                assert!(recv_body(&b, "PAIR1 receives 1 MiB").await == request);
                b.send(reply.clone()).await.unwrap();
                assert!(recv_body(&a, "PAIR1 receives 1 MiB").await == reply);
            }

            // -------------------------------------------------------------------------------
            // REQ/REP state and resend

            async fn req_recv_before_send_is_bad_state(t: Transport) {
                let ep = Endpoint::new(t);
                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                connect(&rep, &req, &ep).await;
                let e = req
                    .recv()
                    .await
                    .expect_err("REQ has no request outstanding");
                assert!(e.is_bad_state(), "REQ recv before send: {e:?}");
                // The socket still works afterwards.
                req.send("ok").await.unwrap();
                assert_eq!(recv_body(&rep, "REP receives").await, b"ok");
            }

            /// A readiness wait looks once more at its deadline, so one that was never woken
            /// still succeeds then: it must have ended before, by the socket's event.
            fn woken_before(deadline: Instant, what: &str) {
                assert!(
                    Instant::now() < deadline,
                    "{what}: only the deadline ended the wait, no event woke it"
                );
            }

            /// Scenario 36: a REQ is not writable before it connects and is afterwards; a REP
            /// is readable once a request is queued and writable while it holds one; a REQ
            /// is readable once the reply came; a PUB is always writable; a SUB becomes
            /// readable when a message is queued. Waiting takes nothing.
            async fn sockets_report_readiness(t: Transport) {
                let ep = Endpoint::new(t);
                let within = |d: Duration| Instant::now() + d;
                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                assert!(!req.is_writable(), "a REQ with no pipe");
                let e = req.writable_until(within(SHORT)).await.unwrap_err();
                assert!(e.is_timed_out(), "a REQ with no pipe: {e:?}");
                connect(&rep, &req, &ep).await;
                let deadline = within(T);
                req.writable_until(deadline).await.expect("a connected REQ");
                woken_before(deadline, "a connected REQ");
                assert!(!req.is_readable(), "a REQ with no request out");
                assert!(!rep.is_readable() && !rep.is_writable(), "an idle REP");
                req.send("ping").await.unwrap();
                let deadline = within(T);
                rep.readable_until(deadline)
                    .await
                    .expect("the request arrives");
                woken_before(deadline, "the request arrives");
                assert!(rep.is_readable(), "waiting took nothing");
                assert_eq!(recv_body(&rep, "REP receives").await, b"ping");
                assert!(!rep.is_readable(), "the request was taken");
                rep.writable_until(within(T))
                    .await
                    .expect("a REP holding a request");
                rep.send("pong").await.unwrap();
                assert!(!rep.is_writable(), "the request was answered");
                let deadline = within(T);
                req.readable_until(deadline)
                    .await
                    .expect("the reply arrives");
                woken_before(deadline, "the reply arrives");
                assert_eq!(recv_body(&req, "REQ receives").await, b"pong");
                assert!(!req.is_readable(), "the reply was taken");

                let (publisher, sub): (sp::Pub, sp::Sub) = (open(), open());
                assert!(publisher.is_writable(), "a PUB with no pipe");
                sub.subscribe(b"");
                connect(&publisher, &sub, &ep).await;
                assert!(!sub.is_readable(), "nothing sent yet");
                publisher.send("news").await.unwrap();
                let deadline = within(T);
                sub.readable_until(deadline)
                    .await
                    .expect("the message arrives");
                woken_before(deadline, "the message arrives");
                assert!(sub.is_readable());
                assert_eq!(recv_body(&sub, "SUB receives").await, b"news");
            }

            async fn rep_send_before_recv_is_bad_state(t: Transport) {
                let ep = Endpoint::new(t);
                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                connect(&rep, &req, &ep).await;
                let e = rep
                    .send("nobody asked")
                    .await
                    .expect_err("REP has no request");
                assert!(e.is_bad_state(), "REP send before recv: {e:?}");
                req.send("ask").await.unwrap();
                assert_eq!(recv_body(&rep, "REP receives").await, b"ask");
                rep.send("answer").await.unwrap();
                assert_eq!(recv_body(&req, "REQ receives").await, b"answer");
                let e = rep.send("twice").await.expect_err("one reply per request");
                assert!(e.is_bad_state(), "REP second send: {e:?}");
            }

            /// The REP holding a request goes away: REQ resends it at once to the other REP.
            /// The resend interval (10 s) is far beyond the receive timeout, so the request can
            /// only arrive in time through the resend on connection loss.
            async fn req_resends_when_its_rep_connection_drops(t: Transport) {
                let ep = Endpoint::new(t);
                let req: sp::Req = open();
                req.with_core(|core, _| core.set_resend_interval(Some(Duration::from_secs(10))));
                let first: sp::Rep = open();
                let url = connect(&req, &first, &ep).await;
                wait_for("REQ's pipe", T, || req.pipe_count() == 1).await;
                req.send("survive").await.unwrap();
                assert_eq!(recv_body(&first, "first REP receives").await, b"survive");

                let second: sp::Rep = open();
                second.dial(&url).await.expect("second REP dials");
                wait_for("REQ's second pipe", T, || req.pipe_count() == 2).await;
                first.close().await;
                drop(first);
                let started = Instant::now();
                assert_eq!(
                    recv_body(&second, "the request is resent to the second REP").await,
                    b"survive"
                );
                assert!(started.elapsed() < Duration::from_secs(2));
                second.send("made it").await.unwrap();
                assert_eq!(recv_body(&req, "REQ receives the reply").await, b"made it");
            }

            // -------------------------------------------------------------------------------
            // Pipeline distribution

            async fn push_round_robins_over_three_pulls(t: Transport) {
                let ep = Endpoint::new(t);
                let push: sp::Push = open();
                let url = listen(&push, &ep).await;
                let pulls: Vec<sp::Pull> = (0..3).map(|_| open()).collect();
                for p in &pulls {
                    p.dial(&url).await.expect("PULL dials");
                }
                wait_for("three pipes", T, || push.pipe_count() == 3).await;
                let mut seen = Vec::new();
                for round in 0..3 {
                    for n in 0..3 {
                        push.send(format!("{round}.{n}").into_bytes())
                            .await
                            .unwrap();
                    }
                    // Each PULL gets exactly one message of each round.
                    for (i, p) in pulls.iter().enumerate() {
                        let body = recv_body(p, &format!("PULL {i}, round {round}")).await;
                        seen.push(String::from_utf8(body).unwrap());
                    }
                }
                for p in &pulls {
                    p.set_recv_timeout(Some(SHORT));
                    let e = p.recv().await.expect_err("no PULL gets a fourth message");
                    assert!(e.is_timed_out(), "{e:?}");
                }
                seen.sort();
                let mut want: Vec<String> = (0..3)
                    .flat_map(|r| (0..3).map(move |n| format!("{r}.{n}")))
                    .collect();
                want.sort();
                assert_eq!(seen, want);
            }

            /// One PUSH floods; a second PUSH's messages still get through long before the
            /// flood has drained, and each sender's messages keep their order.
            ///
            /// A pipe task yields after the core pauses its pipe, so the other pipe gets its turn
            /// within a few receive buffers (128 messages each) of flood; 130–345 were seen on
            /// the three adapters. The bound leaves room for a loaded machine.
            async fn pull_fair_queues_two_pushes(t: Transport) {
                const FLOOD: usize = 20_000;
                let ep = Endpoint::new(t);
                let pull: sp::Pull = open();
                let url = listen(&pull, &ep).await;
                let (flooder, other): (sp::Push, sp::Push) = (open(), open());
                flooder.dial(&url).await.unwrap();
                other.dial(&url).await.unwrap();
                wait_for("two pipes", T, || pull.pipe_count() == 2).await;
                let flood = background(async move {
                    for i in 0..FLOOD {
                        let mut body = format!("a{i:05}").into_bytes();
                        body.resize(64, b'.');
                        flooder.send(body).await.expect("the flooding PUSH sends");
                    }
                    flooder
                });
                // The flood has started once its first message is here; now the other speaks.
                let first = recv_body(&pull, "PULL receives the flood").await;
                assert!(first.starts_with(b"a00000"));
                for i in 0..5 {
                    other.send(format!("b{i}").into_bytes()).await.unwrap();
                }
                let (mut next_a, mut next_b) = (1, 0);
                while next_b < 5 {
                    let body = recv_body(&pull, "PULL receives").await;
                    if body.starts_with(b"a") {
                        assert!(body.starts_with(format!("a{next_a:05}").as_bytes()));
                        next_a += 1;
                    } else {
                        assert_eq!(body, format!("b{next_b}").into_bytes());
                        next_b += 1;
                    }
                }
                // Unfair queueing would put the second PUSH behind the whole flood. Fair
                // queueing lets it in after a few receive buffers (130–345 messages on an idle
                // machine), but on a loaded one the threads that carry its messages may wait
                // for a CPU while the flood keeps flowing, so the bound leaves room for that.
                assert!(
                    next_a < FLOOD / 4,
                    "the second PUSH waited behind {next_a} flood messages"
                );
                while next_a < FLOOD {
                    let body = recv_body(&pull, "PULL drains the flood").await;
                    assert!(body.starts_with(format!("a{next_a:05}").as_bytes()));
                    next_a += 1;
                }
                flood.join().expect("flood thread");
            }

            // -------------------------------------------------------------------------------
            // PAIR exclusivity

            /// While one peer is attached a second dialer is not served; once the first
            /// leaves, the (redialing) second takes over.
            async fn pair_exclusive<P: SendRole + RecvRole>(t: Transport) {
                let ep = Endpoint::new(t);
                let server = open::<P>();
                let first = open::<P>();
                let url = connect(&server, &first, &ep).await;
                wait_for("the first peer's pipe", T, || first.pipe_count() == 1).await;

                let second = open::<P>();
                second.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50));
                second.dial_nonblocking(&url).unwrap();
                server.send("to first").await.unwrap();
                assert_eq!(recv_body(&first, "first receives").await, b"to first");
                first.send("from first").await.unwrap();
                assert_eq!(recv_body(&server, "server receives").await, b"from first");
                second.set_recv_timeout(Some(SHORT));
                let r = second.recv().await;
                assert!(
                    r.as_ref().is_err_and(|e| e.is_timed_out()),
                    "second got {r:?}"
                );
                // The second's redials (every 10-50 ms) did not displace the first.
                server.send("still first").await.unwrap();
                assert_eq!(recv_body(&first, "first receives").await, b"still first");

                first.close().await;
                drop(first);
                // A message the second hands to a connection the server refuses is lost, so
                // keep offering until one gets through.
                let end = Instant::now() + T;
                server.set_recv_timeout(Some(Duration::from_millis(50)));
                second.set_send_timeout(Some(Duration::from_millis(50)));
                let mut k = 0;
                loop {
                    k += 1;
                    let _ = second.send(format!("from second #{k}").into_bytes()).await;
                    match server.recv().await {
                        Ok(m) => {
                            assert!(m.body.starts_with(b"from second #"), "server got {m:?}");
                            break;
                        }
                        Err(e) if e.is_timed_out() && Instant::now() < end => {}
                        Err(e) => panic!("the second PAIR never took over: {e}"),
                    }
                }
                timeouts(&server, T);
                timeouts(&second, T);
                server.send("to second").await.unwrap();
                assert_eq!(recv_body(&second, "second receives").await, b"to second");
                assert_eq!(server.pipe_count(), 1);
            }

            async fn pair_serves_one_peer_at_a_time(t: Transport) {
                pair_exclusive::<sp_core::protocol::pair::Pair>(t).await;
                pair_exclusive::<sp_core::protocol::pair1::Pair1>(t).await;
            }

            // -------------------------------------------------------------------------------
            // Timeouts and closing

            /// Waits for `recv` to time out on a connected socket with nothing to receive.
            async fn expect_timeout<P: RecvRole>(s: &sp::Socket<P>, what: &str) {
                let timeout = Duration::from_millis(100);
                s.set_recv_timeout(Some(timeout));
                let started = Instant::now();
                let e = s.recv().await.expect_err(what);
                let waited = started.elapsed();
                assert!(e.is_timed_out(), "{what}: {e:?}");
                assert!(waited >= timeout, "{what}: gave up after {waited:?}");
                assert!(waited < T, "{what}: took {waited:?}");
            }

            async fn recv_timeout_gives_timed_out(t: Transport) {
                let ep = Endpoint::new(t);
                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                connect(&rep, &req, &ep).await;
                expect_timeout(&rep, "REP with no request").await;
                req.send("unanswered").await.unwrap();
                expect_timeout(&req, "REQ with no reply").await;

                let (push, pull): (sp::Push, sp::Pull) = (open(), open());
                connect(&pull, &push, &ep).await;
                expect_timeout(&pull, "PULL with nothing sent").await;

                let (a, _b) = pair_of::<sp_core::protocol::pair::Pair>(&ep).await;
                expect_timeout(&a, "PAIR with nothing sent").await;
                let (_a, b) = pair_of::<sp_core::protocol::pair1::Pair1>(&ep).await;
                expect_timeout(&b, "PAIR1 with nothing sent").await;
            }

            /// A `recv` blocked with a long timeout ends with `Closed` when another thread
            /// closes the socket.
            async fn closed_while_blocked<P: RecvRole>(s: sp::Socket<P>, what: &str) {
                let closer = s.clone();
                s.set_recv_timeout(Some(Duration::from_secs(10)));
                let started = Instant::now();
                // The delay only makes it likely that recv is already waiting; closing before
                // it waits must give `Closed` just the same.
                let thread = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    closer.close_now();
                });
                let e = s.recv().await.expect_err(what);
                assert!(e.is_closed(), "{what}: {e:?}");
                assert!(
                    started.elapsed() < T,
                    "{what}: woke after {:?}",
                    started.elapsed()
                );
                thread.join().unwrap();
            }

            async fn close_wakes_a_blocked_recv_with_closed(t: Transport) {
                let ep = Endpoint::new(t);
                let (push, pull): (sp::Push, sp::Pull) = (open(), open());
                connect(&pull, &push, &ep).await;
                closed_while_blocked(pull, "PULL").await;

                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                connect(&rep, &req, &ep).await;
                closed_while_blocked(rep, "REP").await;

                let (_a, b) = pair_of::<sp_core::protocol::pair::Pair>(&ep).await;
                closed_while_blocked(b, "PAIR").await;
                let (a, _b) = pair_of::<sp_core::protocol::pair1::Pair1>(&ep).await;
                closed_while_blocked(a, "PAIR1").await;
            }

            /// Messages sent right before `close().await` all reach the peer.
            ///
            /// They fit in PULL's receive queue (128), so the flush does not depend on the
            /// application receiving meanwhile: over inproc, messages still queued once the
            /// linger time (1 s) has passed are dropped.
            async fn close_flushes_sent_messages(t: Transport) {
                const COUNT: usize = 100;
                let ep = Endpoint::new(t);
                let (push, pull): (sp::Push, sp::Pull) = (open(), open());
                connect(&pull, &push, &ep).await;
                for i in 0..COUNT {
                    let mut body = format!("{i:04}").into_bytes();
                    body.resize(1024, b'.');
                    push.send(body).await.unwrap();
                }
                push.close().await;
                drop(push);
                for i in 0..COUNT {
                    let body = recv_body(&pull, "PULL receives what was sent before close").await;
                    assert!(body.starts_with(format!("{i:04}").as_bytes()));
                }

                // A REP's last reply leaves too.
                let (req, rep): (sp::Req, sp::Rep) = (open(), open());
                connect(&rep, &req, &ep).await;
                req.send("last question").await.unwrap();
                assert_eq!(recv_body(&rep, "REP receives").await, b"last question");
                rep.send("last answer").await.unwrap();
                rep.close().await;
                drop(rep);
                assert_eq!(recv_body(&req, "REQ receives").await, b"last answer");
            }

            with_scenarios!(transport_tests!(tcp, Tcp));
            with_scenarios!(transport_tests!(ipc, Ipc));
            with_scenarios!(transport_tests!(inproc, Inproc));
        }
    };
}

conformance_suite!(tokio_adapter, sp_tokio, run_tokio);
conformance_suite!(smol_adapter, sp_smol, run_smol);
conformance_suite!(
    blocking_adapter,
    sp_tests::harness::blocking_shim,
    run_blocking
);

// ---------------------------------------------------------------------------------------------
// Mixed adapters: tokio and smol sockets talking over real sockets in one process

mod mixed {
    use sp_transport::{RecvRole, SendRole, SocketCore};

    use super::{binary_payload, with_limit, TempIpcDir, LIMIT, T};

    type TokioSocket<P> = sp_transport::Socket<sp_tokio::Tokio, P>;
    type SmolSocket<P> = sp_transport::Socket<sp_smol::Smol, P>;

    /// A tokio runtime whose one worker thread runs the tokio sockets' tasks.
    fn tokio_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("start a tokio runtime")
    }

    fn tokio_socket<P: SocketCore>(rt: &tokio::runtime::Runtime) -> TokioSocket<P> {
        let s = TokioSocket::<P>::with_runtime(sp_tokio::Tokio::new(rt.handle().clone()));
        s.set_recv_timeout(Some(T));
        s.set_send_timeout(Some(T));
        s
    }

    fn smol_socket<P: SocketCore>() -> SmolSocket<P> {
        let s = SmolSocket::<P>::new();
        s.set_recv_timeout(Some(T));
        s.set_send_timeout(Some(T));
        s
    }

    /// The test body runs in `smol::block_on`; the tokio side's calls run as tokio tasks
    /// (tokio's IO types need its runtime), awaited from smol through their join handles.
    #[test]
    fn tokio_req_and_smol_rep_over_tcp() {
        let rt = tokio_runtime();
        smol::block_on(with_limit(LIMIT, async {
            let rep: sp_smol::Rep = smol_socket();
            let url = rep.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
            let req: sp_tokio::Req = tokio_socket(&rt);
            let client = rt.spawn(async move {
                req.dial(&url).await?;
                let mut replies = Vec::new();
                for i in 0..3u8 {
                    req.send(binary_payload(200, i)).await?;
                    replies.push(req.recv().await?.body.to_vec());
                }
                Ok::<_, sp_tokio::Error>(replies)
            });
            for i in 0..3u8 {
                let m = rep.recv().await.expect("smol REP receives from tokio REQ");
                assert_eq!(m.body, binary_payload(200, i));
                let mut reply = b"re: ".to_vec();
                reply.extend_from_slice(&m.body[..8]);
                rep.send(reply).await.unwrap();
            }
            let replies = client.await.expect("tokio task").expect("tokio REQ");
            for (i, r) in replies.iter().enumerate() {
                assert_eq!(&r[..4], b"re: ");
                assert_eq!(r[4..], binary_payload(200, i as u8)[..8]);
            }
        }));
    }

    #[test]
    fn smol_push_to_tokio_pull_over_ipc() {
        const COUNT: usize = 50;
        let rt = tokio_runtime();
        let dir = TempIpcDir::new();
        let url = dir.url();
        let pull: sp_tokio::Pull = tokio_socket(&rt);
        rt.block_on(pull.listen(&url)).expect("tokio PULL listens");
        smol::block_on(with_limit(LIMIT, async {
            let receiver = rt.spawn(async move {
                let mut got = Vec::new();
                for _ in 0..COUNT {
                    got.push(pull.recv().await?.body.to_vec());
                }
                Ok::<_, sp_tokio::Error>(got)
            });
            let push: sp_smol::Push = smol_socket();
            push.dial(&url).await.expect("smol PUSH dials");
            for i in 0..COUNT {
                push.send(binary_payload(500, i as u8)).await.unwrap();
            }
            let got = receiver.await.expect("tokio task").expect("tokio PULL");
            for (i, body) in got.iter().enumerate() {
                assert_eq!(*body, binary_payload(500, i as u8), "message {i}");
            }
            push.close().await;
        }));
    }

    /// PAIR (either version) between the runtimes: tokio dials, smol listens.
    fn pair_between_runtimes<P: SendRole + RecvRole>() {
        let rt = tokio_runtime();
        smol::block_on(with_limit(LIMIT, async {
            let server: SmolSocket<P> = smol_socket();
            let url = server
                .listen("tcp://127.0.0.1:0")
                .await
                .unwrap()
                .to_string();
            let client: TokioSocket<P> = tokio_socket(&rt);
            let peer = rt.spawn(async move {
                client.dial(&url).await?;
                client.send("from tokio").await?;
                let answer = client.recv().await?.body.to_vec();
                // Stay until the smol side has read what we sent last.
                let bye = client.recv().await?.body.to_vec();
                Ok::<_, sp_tokio::Error>((answer, bye))
            });
            let m = server.recv().await.expect("smol PAIR receives");
            assert_eq!(m.body, &b"from tokio"[..]);
            server.send("from smol").await.unwrap();
            server.send("bye").await.unwrap();
            let (answer, bye) = peer.await.expect("tokio task").expect("tokio PAIR");
            assert_eq!(answer, b"from smol");
            assert_eq!(bye, b"bye");
        }));
    }

    #[test]
    fn tokio_pair_and_smol_pair_over_tcp() {
        pair_between_runtimes::<sp_core::protocol::pair::Pair>();
    }

    #[test]
    fn tokio_pair1_and_smol_pair1_over_tcp() {
        pair_between_runtimes::<sp_core::protocol::pair1::Pair1>();
    }
}
