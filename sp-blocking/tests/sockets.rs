//! Blocking sockets over inproc, IPC and TCP: message flow, timeouts, close and drop.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use sp_blocking::{Bus, Error, Pair, Pair1, Pub, Pull, Push, Rep, Req, Respondent, Sub, Surveyor};
use support::{url, wait_until, within, Transport, ALL};

fn listen_dial<A, B>(
    t: Transport,
    listener: &sp_blocking::Socket<A>,
    dialer: &sp_blocking::Socket<B>,
) where
    A: sp_transport::SocketCore,
    B: sp_transport::SocketCore,
{
    let bound = listener.listen(url(t)).expect("listen").to_string();
    dialer.dial(&bound).expect("dial");
}

/// `n` REQ/REP round trips over `t`, a REP thread echoing each request; each reply must be
/// its request.
fn echo_round_trips(t: Transport, n: u32) {
    let rep = Rep::new();
    let req = Req::new();
    listen_dial(t, &rep, &req);
    let server = thread::spawn(move || {
        for _ in 0..n {
            let m = rep.recv().expect("rep recv");
            rep.send(m.body).expect("rep send");
        }
    });
    for i in 0..n {
        req.send(i.to_be_bytes().to_vec()).expect("req send");
        let reply = req.recv().expect("req recv");
        assert_eq!(&reply.body[..], i.to_be_bytes(), "{t:?}");
    }
    server.join().unwrap();
}

#[test]
fn req_rep_round_trips_over_every_transport() {
    within(20, || {
        for t in ALL {
            echo_round_trips(t, 100);
        }
    });
}

/// Many threads wait on one connection at once, each on a context of its own, on both sides:
/// every request gets its own answer. (One waiting caller watches a connection at a time and
/// one per core spins; the others sleep until what they wait for is delivered to them.)
#[test]
fn many_threads_on_contexts_of_one_connection_each_get_their_answers() {
    const THREADS: u32 = 48;
    const TRIPS: u32 = 50;
    within(60, || {
        for t in ALL {
            let rep = Rep::new();
            let req = Req::new();
            listen_dial(t, &rep, &req);
            let servers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let ctx = rep.context().expect("rep context");
                    thread::spawn(move || {
                        // Ends when the socket closes.
                        while let Ok(m) = ctx.recv() {
                            let mut answer = m.body.to_vec();
                            answer.reverse();
                            if ctx.send(answer).is_err() {
                                break;
                            }
                        }
                    })
                })
                .collect();
            let clients: Vec<_> = (0..THREADS)
                .map(|c| {
                    let ctx = req.context().expect("req context");
                    thread::spawn(move || {
                        for i in 0..TRIPS {
                            let request = (c * TRIPS + i).to_le_bytes();
                            ctx.send(request.to_vec()).expect("req send");
                            let mut expected = request;
                            expected.reverse();
                            assert_eq!(&ctx.recv().expect("req recv").body[..], expected, "{t:?}");
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            rep.close();
            for s in servers {
                s.join().unwrap();
            }
        }
    });
}

/// Threads blocked in `recv` on one socket take turns (one waits in the socket, the others
/// queue): every message goes to exactly one of them, over every transport.
#[test]
fn threads_blocked_on_one_socket_share_its_messages_without_loss_or_repeat() {
    const THREADS: usize = 8;
    const MESSAGES: u32 = 2_000;
    within(60, || {
        for t in ALL {
            let pull = Pull::new();
            let push = Push::new();
            listen_dial(t, &pull, &push);
            let receivers: Vec<_> = (0..THREADS)
                .map(|_| {
                    let pull = pull.clone();
                    thread::spawn(move || {
                        let mut got = Vec::new();
                        // A one-byte message tells the thread to stop.
                        loop {
                            let m = pull.recv().expect("pull recv");
                            if m.body.len() == 1 {
                                return got;
                            }
                            got.push(u32::from_le_bytes(m.body[..].try_into().unwrap()));
                        }
                    })
                })
                .collect();
            for i in 0..MESSAGES {
                push.send(i.to_le_bytes().to_vec()).expect("push send");
            }
            for _ in 0..THREADS {
                push.send(vec![0u8]).expect("push stop");
            }
            let mut all: Vec<u32> = receivers
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..MESSAGES).collect::<Vec<_>>(), "{t:?}");
        }
    });
}

/// A receive queued behind another thread's keeps its own deadline and zero timeout, and
/// leaves the turn in order: the thread in the socket still gets the next message.
#[test]
fn a_receive_behind_another_threads_keeps_its_own_timeouts() {
    within(20, || {
        let pull = Pull::new();
        let push = Push::new();
        pull.listen("inproc://turns-timeouts").expect("listen");
        push.dial("inproc://turns-timeouts").expect("dial");
        let waiting = {
            let pull = pull.clone();
            thread::spawn(move || pull.recv().map(|m| m.body.to_vec()))
        };
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(matches!(pull.recv_until(deadline), Err(Error::TimedOut)));
        assert!(Instant::now() >= deadline, "returned before its deadline");
        pull.set_recv_timeout(Some(Duration::ZERO));
        assert!(matches!(pull.recv(), Err(Error::WouldBlock)));
        // A deadline it names that passed already: a time-out, not a non-blocking call.
        assert!(matches!(
            pull.recv_until(Instant::now()),
            Err(Error::TimedOut)
        ));
        push.send(b"next".to_vec()).expect("send");
        assert_eq!(waiting.join().unwrap().expect("recv"), b"next");
    });
}

#[test]
fn push_pull_delivers_in_order_over_every_transport() {
    within(20, || {
        for t in ALL {
            let pull = Pull::new();
            let push = Push::new();
            listen_dial(t, &pull, &push);
            let sender = thread::spawn(move || {
                for i in 0..2000u32 {
                    push.send(i.to_be_bytes().to_vec()).expect("push send");
                }
                push.close();
            });
            for i in 0..2000u32 {
                assert_eq!(
                    &pull.recv().expect("pull recv").body[..],
                    i.to_be_bytes(),
                    "{t:?}"
                );
            }
            sender.join().unwrap();
        }
    });
}

#[test]
fn pair_and_pair1_talk_both_ways_over_every_transport() {
    within(20, || {
        for t in ALL {
            let (a, b) = (Pair::new(), Pair::new());
            listen_dial(t, &a, &b);
            a.send("left").unwrap();
            assert_eq!(&b.recv().unwrap().body[..], b"left");
            b.send("right").unwrap();
            assert_eq!(&a.recv().unwrap().body[..], b"right");

            let (a, b) = (Pair1::new(), Pair1::new());
            listen_dial(t, &a, &b);
            b.send("one").unwrap();
            assert_eq!(&a.recv().unwrap().body[..], b"one", "{t:?}");
            a.send("two").unwrap();
            assert_eq!(&b.recv().unwrap().body[..], b"two", "{t:?}");
        }
    });
}

#[test]
fn large_messages_cross_both_ways_at_once() {
    // Both sides write more than the kernel buffers before either reads: writes must not keep
    // the reads from running.
    within(30, || {
        for t in [Transport::Ipc, Transport::Tcp] {
            let (a, b) = (Pair::new(), Pair::new());
            a.set_recv_max_size(0).unwrap();
            b.set_recv_max_size(0).unwrap();
            listen_dial(t, &a, &b);
            let big = vec![7u8; 4 << 20];
            let (a2, b2, big_a, big_b) = (a.clone(), b.clone(), big.clone(), big.clone());
            let ta = thread::spawn(move || {
                for _ in 0..4 {
                    a2.send(big_a.clone()).unwrap();
                }
            });
            let tb = thread::spawn(move || {
                for _ in 0..4 {
                    b2.send(big_b.clone()).unwrap();
                }
            });
            for _ in 0..4 {
                assert_eq!(a.recv().unwrap().body.len(), big.len());
                assert_eq!(b.recv().unwrap().body.len(), big.len());
            }
            ta.join().unwrap();
            tb.join().unwrap();
        }
    });
}

#[test]
fn pull_fair_queues_several_pushers() {
    within(20, || {
        for t in ALL {
            let pull = Pull::new();
            let bound = pull.listen(url(t)).unwrap().to_string();
            let senders: Vec<_> = (0..3u8)
                .map(|k| {
                    let bound = bound.clone();
                    thread::spawn(move || {
                        let push = Push::new();
                        push.dial(&bound).unwrap();
                        for i in 0..200u8 {
                            push.send(vec![k, i]).unwrap();
                        }
                        push.close();
                    })
                })
                .collect();
            let mut next = [0u8; 3];
            for _ in 0..600 {
                let m = pull.recv().unwrap();
                let (k, i) = (m.body[0] as usize, m.body[1]);
                assert_eq!(i, next[k], "{t:?}: messages of one pusher stay in order");
                next[k] += 1;
            }
            for s in senders {
                s.join().unwrap();
            }
        }
    });
}

#[test]
fn recv_times_out_and_zero_timeout_does_not_wait() {
    within(10, || {
        for t in ALL {
            let (pull, push) = (Pull::new(), Push::new());
            listen_dial(t, &pull, &push);
            pull.set_recv_timeout(Some(Duration::from_millis(50)));
            let start = Instant::now();
            assert!(matches!(pull.recv(), Err(Error::TimedOut)), "{t:?}");
            assert!(start.elapsed() >= Duration::from_millis(50));
            pull.set_recv_timeout(Some(Duration::ZERO));
            assert!(matches!(pull.recv(), Err(Error::WouldBlock)));
            assert!(matches!(pull.try_recv(), Err(Error::WouldBlock)));
            // A deadline the caller names times out, even one that passed before the call.
            assert!(pull.recv_until(Instant::now()).unwrap_err().is_timed_out());
            let start = Instant::now();
            let deadline = start + Duration::from_millis(30);
            assert!(pull.recv_until(deadline).unwrap_err().is_timed_out());
            assert!(Instant::now() >= deadline);
            // A message that arrives while waiting ends the wait.
            pull.set_recv_timeout(Some(Duration::from_secs(5)));
            let sender = thread::spawn(move || {
                thread::sleep(Duration::from_millis(30));
                push.send("late").unwrap();
                push
            });
            assert_eq!(&pull.recv().unwrap().body[..], b"late");
            drop(sender.join().unwrap());
        }
    });
}

/// Deadlines shorter than a waiting call's spin (50 µs) and than a millisecond, which the
/// caller keeps itself (no reactor timer): the wait ends at the deadline, never before, on
/// every transport (inproc spins; tcp and ipc sleep in `poll(2)` with a time-out).
#[test]
fn short_deadlines_end_the_wait_at_the_deadline_over_every_transport() {
    within(10, || {
        for t in ALL {
            let (pull, push) = (Pull::new(), Push::new());
            listen_dial(t, &pull, &push);
            for micros in [20, 300, 2_000] {
                let deadline = Instant::now() + Duration::from_micros(micros);
                assert!(
                    pull.recv_until(deadline).unwrap_err().is_timed_out(),
                    "{t:?} {micros} µs"
                );
                assert!(Instant::now() >= deadline, "{t:?}: early, {micros} µs");
            }
            push.send("after").unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            assert_eq!(&pull.recv_until(deadline).unwrap().body[..], b"after");
        }
    });
}

#[test]
fn send_times_out_without_a_peer() {
    within(10, || {
        let push = Push::new();
        push.set_send_timeout(Some(Duration::from_millis(50)));
        let start = Instant::now();
        assert!(push.send("nobody").unwrap_err().is_timed_out());
        assert!(start.elapsed() >= Duration::from_millis(50));
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(push
            .send_until("nobody", deadline)
            .unwrap_err()
            .is_timed_out());
        assert!(push.try_send("nobody").unwrap_err().is_would_block());
    });
}

#[test]
fn close_wakes_a_blocked_recv_with_closed() {
    within(10, || {
        // With no pipe the receiver parks; with one TCP or IPC pipe it reads the pipe itself.
        for t in [
            None,
            Some(Transport::Inproc),
            Some(Transport::Ipc),
            Some(Transport::Tcp),
        ] {
            let (pull, push) = (Pull::new(), Push::new());
            if let Some(t) = t {
                listen_dial(t, &pull, &push);
            }
            let closer = pull.clone();
            let waiter = thread::spawn(move || pull.recv());
            thread::sleep(Duration::from_millis(50));
            let start = Instant::now();
            closer.close();
            assert!(
                matches!(waiter.join().unwrap(), Err(Error::Closed)),
                "{t:?}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{t:?}: close took long"
            );
            assert!(closer.send_any_role("x").is_err());
            assert!(matches!(closer.recv(), Err(Error::Closed)));
        }
    });
}

#[test]
fn close_wakes_a_blocked_send_with_closed() {
    within(10, || {
        let push = Push::new();
        let closer = push.clone();
        let waiter = thread::spawn(move || push.send("nobody takes this"));
        thread::sleep(Duration::from_millis(50));
        closer.close();
        let unsent = waiter.join().unwrap().unwrap_err();
        assert!(matches!(unsent.error(), Error::Closed));
        assert_eq!(
            &unsent.message().body[..],
            b"nobody takes this",
            "handed back"
        );
    });
}

#[test]
fn close_writes_out_what_was_sent() {
    within(20, || {
        for t in ALL {
            let (pull, push) = (Pull::new(), Push::new());
            pull.set_recv_max_size(0).unwrap();
            listen_dial(t, &pull, &push);
            // Enough bytes that the kernel cannot take them all at once: the pipe's writer
            // thread is still writing when close starts.
            let body = vec![1u8; 256 << 10];
            for _ in 0..16 {
                push.send(body.clone()).unwrap();
            }
            push.send("last").unwrap();
            push.close();
            pull.set_recv_timeout(Some(Duration::from_secs(5)));
            for _ in 0..16 {
                assert_eq!(pull.recv().unwrap().body.len(), body.len(), "{t:?}");
            }
            assert_eq!(&pull.recv().unwrap().body[..], b"last", "{t:?}");
        }
    });
}

#[test]
fn close_gives_up_after_the_linger_time() {
    within(10, || {
        // A PULL peer that completes the handshake and then never reads: a message larger than
        // any pair of socket buffers can never be written out, so close waits the linger time
        // and then drops it. (A PULL of ours would still read, just slower, under load.)
        let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = peer.local_addr().unwrap();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let peer = thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = peer.accept().unwrap();
            conn.write_all(&[0, b'S', b'P', 0, 0, 0x51, 0, 0]).unwrap();
            let mut theirs = [0u8; 8];
            conn.read_exact(&mut theirs).unwrap();
            assert_eq!(theirs, [0, b'S', b'P', 0, 0, 0x50, 0, 0], "a PUSH header");
            let _ = hold.recv();
        });
        let push = Push::new();
        push.set_linger(Duration::from_millis(200));
        push.dial(format!("tcp://{addr}")).unwrap();
        push.send(vec![0u8; 64 << 20]).unwrap();
        let start = Instant::now();
        push.close();
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(150), "closed after {took:?}");
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
        drop(release);
        peer.join().unwrap();
    });
}

#[test]
fn a_message_goes_out_while_its_sender_waits_on_something_else() {
    within(20, || {
        // A send returns with its message queued and its pipe's writer left to the pool.
        // The sender then blocks outside sp-blocking and the peer is a plain TCP socket, so
        // no caller of ours is there to run the writer: the pool's workers must.
        let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = peer.local_addr().unwrap();
        let (got, report) = std::sync::mpsc::channel::<Vec<u8>>();
        let peer = thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = peer.accept().unwrap();
            conn.write_all(&[0, b'S', b'P', 0, 0, 0x51, 0, 0]).unwrap();
            let mut theirs = [0u8; 8];
            conn.read_exact(&mut theirs).unwrap();
            for _ in 0..2 {
                let mut len = [0u8; 8];
                conn.read_exact(&mut len).unwrap();
                let mut body = vec![0u8; u64::from_be_bytes(len) as usize];
                conn.read_exact(&mut body).unwrap();
                got.send(body).unwrap();
            }
        });
        let push = Push::new();
        push.dial(format!("tcp://{addr}")).unwrap();
        // The first send may wait for the connection; the second finds it up and returns at
        // once.
        push.send("one").unwrap();
        assert_eq!(report.recv().unwrap(), b"one");
        push.send("two").unwrap();
        let second = report.recv_timeout(Duration::from_secs(10));
        assert_eq!(second.as_deref(), Ok(&b"two"[..]), "written by the pool");
        peer.join().unwrap();
    });
}

#[test]
fn dropping_sockets_never_hangs() {
    within(10, || {
        for t in ALL {
            // Dropped while a peer's recv is blocked, while queues are full, and mid-dial.
            let (rep, req) = (Rep::new(), Req::new());
            listen_dial(t, &rep, &req);
            req.send("unanswered").unwrap();
            drop(rep);
            drop(req);

            let (pull, push) = (Pull::new(), Push::new());
            listen_dial(t, &pull, &push);
            push.set_send_timeout(Some(Duration::from_millis(100)));
            while push.send(vec![0u8; 64 << 10]).is_ok() {}
            drop(push);
            drop(pull);

            let dialer = Req::new();
            dialer.dial_nonblocking(url(t).replace(":0", ":1")).unwrap();
            drop(dialer);
        }
    });
}

#[test]
fn dialer_reconnects_after_the_listener_restarts() {
    within(20, || {
        for t in [Transport::Ipc, Transport::Tcp] {
            let first = Pull::new();
            let bound = first.listen(url(t)).unwrap().to_string();
            let push = Push::new();
            push.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(50));
            push.dial(&bound).unwrap();
            push.send("one").unwrap();
            assert_eq!(&first.recv().unwrap().body[..], b"one");
            first.close();
            // A message sent before PUSH notices the hang-up is lost with the connection.
            wait_until("push notices the hang-up", || push.pipe_count() == 0);

            let second = Pull::new();
            second
                .listen(&bound)
                .expect("the address is free again after close");
            wait_until("push reconnects", || push.pipe_count() == 1);
            push.send("two").unwrap();
            second.set_recv_timeout(Some(Duration::from_secs(5)));
            assert_eq!(&second.recv().unwrap().body[..], b"two", "{t:?}");
        }
    });
}

#[test]
fn options_and_protocol_setters_apply() {
    let req = Req::new();
    req.set_resend_interval(Some(Duration::from_millis(250)));
    assert_eq!(req.resend_interval(), Some(Duration::from_millis(250)));
    assert!(Rep::new().set_max_ttl(0).is_err());
    assert!(Rep::new().set_max_ttl(4).is_ok());
    assert!(Pair1::new().set_max_ttl(0).is_err());
    let pair = Pair::new();
    pair.set_tcp_nodelay(false);
    pair.set_handshake_timeout(Duration::from_secs(1)).unwrap();
    assert!(pair.set_handshake_timeout(Duration::ZERO).is_err());
    assert!(pair.set_recv_max_size(usize::MAX).is_err());
    assert!(!pair.options().endpoint.tcp.nodelay);
    assert_eq!(pair.pipe_count(), 0);
    assert!(Push::new()
        .recv_any_role()
        .unwrap_err()
        .to_string()
        .contains("not supported"));
}

#[test]
fn req_resends_when_its_peer_goes_away() {
    within(20, || {
        let (rep_a, rep_b, req) = (Rep::new(), Rep::new(), Req::new());
        let a = rep_a.listen(url(Transport::Tcp)).unwrap().to_string();
        req.dial(&a).unwrap();
        req.send("question").unwrap();
        assert_eq!(&rep_a.recv().unwrap().body[..], b"question");
        // The REP that got the request goes away; a second REP appears; REQ asks it again.
        let b = rep_b.listen(url(Transport::Tcp)).unwrap().to_string();
        req.dial(&b).unwrap();
        rep_a.close();
        let m = rep_b.recv().unwrap();
        rep_b.send(m.body).unwrap();
        assert_eq!(&req.recv().unwrap().body[..], b"question");
    });
}

#[test]
fn pub_sub_filters_by_topic_over_every_transport() {
    within(20, || {
        for t in ALL {
            let sub = Sub::new();
            let publisher = Pub::new();
            sub.subscribe(b"keep");
            assert!(matches!(
                sub.unsubscribe(b"never"),
                Err(Error::UnknownTopic)
            ));
            listen_dial(t, &sub, &publisher);
            wait_until("pub connected", || publisher.pipe_count() == 1);
            for m in ["drop 1", "keep 1", "kee", "keep 2"] {
                publisher.send(m).expect("pub send");
            }
            sub.set_recv_timeout(Some(Duration::from_secs(5)));
            assert_eq!(&sub.recv().expect("sub recv").body[..], b"keep 1", "{t:?}");
            assert_eq!(&sub.recv().expect("sub recv").body[..], b"keep 2", "{t:?}");
            sub.unsubscribe(b"keep").expect("unsubscribe");
            sub.set_recv_timeout(Some(Duration::from_millis(50)));
            assert!(sub.recv().unwrap_err().is_timed_out());
        }
    });
}

#[test]
fn surveys_are_answered_and_then_end_over_every_transport() {
    within(20, || {
        for t in ALL {
            let surveyor = Surveyor::new();
            let resp = Respondent::new();
            assert!(resp.set_max_ttl(0).is_err());
            surveyor.set_survey_time(Duration::from_millis(500));
            assert_eq!(surveyor.survey_time(), Duration::from_millis(500));
            listen_dial(t, &surveyor, &resp);
            wait_until("surveyor connected", || surveyor.pipe_count() == 1);
            surveyor.send("question").expect("survey send");
            let survey = resp.recv().expect("respondent recv");
            assert_eq!(&survey.body[..], b"question", "{t:?}");
            resp.send("answer").expect("respondent send");
            assert_eq!(&surveyor.recv().expect("response").body[..], b"answer");
            // The survey's end shows as a timeout.
            assert!(surveyor.recv().unwrap_err().is_timed_out(), "{t:?}");
        }
    });
}

#[test]
fn bus_talks_both_ways_over_every_transport() {
    within(20, || {
        for t in ALL {
            let a = Bus::new();
            let b = Bus::new();
            listen_dial(t, &a, &b);
            wait_until("bus connected", || {
                a.pipe_count() == 1 && b.pipe_count() == 1
            });
            a.set_recv_timeout(Some(Duration::from_secs(5)));
            b.set_recv_timeout(Some(Duration::from_secs(5)));
            a.send("from a").expect("a send");
            b.send("from b").expect("b send");
            assert_eq!(&b.recv().expect("b recv").body[..], b"from a", "{t:?}");
            assert_eq!(&a.recv().expect("a recv").body[..], b"from b", "{t:?}");
        }
    });
}

/// The busy-poll limit reads back what was set (capped at 1 s), and REQ/REP round trips over
/// tcp complete with polling turned off as with it on (it changes how a call waits, never
/// what it gets).
#[test]
fn round_trips_complete_with_busy_polling_off_and_on() {
    within(20, || {
        let default = sp_blocking::busy_poll_limit();
        assert_eq!(default, Duration::from_micros(20), "the documented default");
        sp_blocking::set_busy_poll_limit(Duration::from_secs(5));
        assert_eq!(
            sp_blocking::busy_poll_limit(),
            Duration::from_secs(1),
            "capped"
        );
        for limit in [Duration::ZERO, default] {
            sp_blocking::set_busy_poll_limit(limit);
            assert_eq!(sp_blocking::busy_poll_limit(), limit);
            echo_round_trips(Transport::Tcp, 50);
        }
    });
}
