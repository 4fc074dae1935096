//! REQ/REP scenarios from SP-PROTOCOLS.md section 8.3, run in the deterministic simulator.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::{RecvError, SendError};
use sp_core::sim::{Action, App, LinkConfig, LinkId, NodeId, RawPeer, Sim};
use sp_core::{Message, ProtocolId};

const SEED: u64 = 0x5eed_0001;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn req_config(resend: Option<Duration>) -> ReqConfig {
    ReqConfig {
        resend_interval: resend,
        resend_tick: None,
        seed: SEED,
    }
}

/// One REQ (collecting replies) linked to one REP running `rep_app`, connected.
fn req_rep(resend: Option<Duration>, rep_app: App) -> (Sim, NodeId, NodeId, LinkId) {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(resend)), App::Collect);
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), rep_app);
    let link = sim.add_link(req, rep, LinkConfig::default());
    sim.connect(link);
    (sim, req, rep, link)
}

fn bodies(sim: &Sim, node: NodeId) -> Vec<Bytes> {
    sim.received_bodies(node)
}

fn ping_pong() -> App {
    App::Responder(Box::new(|m: &Message| {
        (m.body == "ping").then(|| Bytes::from("pong"))
    }))
}

// Scenario 37.
#[test]
fn req_rep_basic_exchange() {
    let (mut sim, req, rep, _) = req_rep(Some(Duration::from_secs(60)), ping_pong());

    sim.send(req, "ping").unwrap();
    sim.run_until_idle(100);

    let got = &sim.inbox(rep)[0].result;
    let ok = got
        .as_ref()
        .is_ok_and(|m| m.header.is_empty() && m.body == "ping" && m.pipe.is_some());
    sim.check(ok, || format!("rep got {got:?}"));
    assert_eq!(bodies(&sim, req), vec![Bytes::from("pong")]);
    assert_eq!(sim.recv(req), Err(RecvError::BadState));
}

// Scenario 38.
#[test]
fn req_recv_before_send_is_bad_state() {
    let (mut sim, req, _, _) = req_rep(None, App::Manual);

    assert_eq!(sim.recv(req), Err(RecvError::BadState));
}

// Scenario 39.
#[test]
fn rep_send_before_recv_is_bad_state_and_so_is_a_second_reply() {
    let (mut sim, req, rep, _) = req_rep(None, App::Manual);
    assert_eq!(sim.send(rep, "early"), Err(SendError::BadState));

    sim.send(req, "q").unwrap();
    sim.run_until_idle(100);
    assert_eq!(sim.recv(rep).unwrap().body, "q");

    assert_eq!(sim.send(rep, "a1"), Ok(()));
    assert_eq!(sim.send(rep, "a2"), Err(SendError::BadState));
    sim.run_until_idle(100);
    assert_eq!(bodies(&sim, req), vec![Bytes::from("a1")]);
}

// Scenarios 40 and 42.
#[test]
fn req_new_request_cancels_the_old_one() {
    let (mut sim, req, rep, _) = req_rep(Some(Duration::from_secs(60)), App::Manual);
    sim.at(
        ms(0),
        Action::Send {
            node: req,
            body: "abc".into(),
        },
    );
    sim.at(
        ms(100),
        Action::Send {
            node: req,
            body: "def".into(),
        },
    );

    sim.run_until(ms(50));
    assert_eq!(sim.recv(rep).unwrap().body, "abc");
    sim.run_until(ms(150));
    sim.send(rep, "abc-reply").unwrap();
    assert_eq!(sim.recv(rep).unwrap().body, "def");
    // The pipe is busy with the first reply until it is delivered.
    assert_eq!(sim.send(rep, "def-reply"), Err(SendError::WouldBlock));
    sim.run_for(ms(5));
    sim.send(rep, "def-reply").unwrap();
    sim.run_until_idle(100);

    assert_eq!(bodies(&sim, req), vec![Bytes::from("def-reply")]);
    assert!(
        sim.transcript_contains(req, "Received"),
        "the stale reply did arrive"
    );
}

// Scenario 41 (NNG behaviour: the pipe is kicked).
#[test]
fn req_kicks_pipe_on_reply_without_request_id() {
    // A raw REP that answers with a body too short to hold a request ID.
    let garbage = App::Responder(Box::new(|_: &Message| {
        Some(Bytes::from_static(b"\x00\x01"))
    }));
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(None)), App::Collect);
    let raw = sim.add_node("raw-rep", RawPeer::new(ProtocolId::REP), garbage);
    let link = sim.add_link(req, raw, LinkConfig::default());
    sim.connect(link);

    sim.send(req, "ping").unwrap();
    sim.run_until_idle(100);

    assert!(
        sim.transcript_contains(req, "MalformedHeader"),
        "{}",
        sim.transcript_text()
    );
    assert!(!sim.is_connected(link));
    // The request was lost with its pipe and resending is off.
    assert_eq!(sim.inbox(req)[0].result, Err(RecvError::ConnectionReset));
}

// Scenario 42.
#[test]
fn req_drops_reply_with_stale_id_and_keeps_pipe() {
    let stale = App::Responder(Box::new(|m: &Message| {
        let mut reply = m.body.to_vec();
        reply[3] ^= 1; // a different request ID
        Some(reply.into())
    }));
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(None)), App::Collect);
    let raw = sim.add_node("raw-rep", RawPeer::new(ProtocolId::REP), stale);
    let link = sim.add_link(req, raw, LinkConfig::default());
    sim.connect(link);

    sim.send(req, "ping").unwrap();
    sim.run_until_idle(100);

    assert!(sim.inbox(req).is_empty());
    assert!(sim.is_connected(link));
    assert_eq!(sim.recv(req), Err(RecvError::WouldBlock));
}

// Scenario 43.
#[test]
fn req_resends_same_request_id_on_timer() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(Some(ms(10)))), App::Collect);
    let raw = sim.add_node("raw-rep", RawPeer::new(ProtocolId::REP), App::Collect);
    let link = sim.add_link(req, raw, LinkConfig::default());
    sim.connect(link);

    sim.send(req, "ping").unwrap();
    sim.run_until(ms(25));

    let copies = bodies(&sim, raw);
    sim.check(copies.len() >= 2, || {
        format!("only {} copies", copies.len())
    });
    sim.check(copies.iter().all(|c| c == &copies[0]), || {
        format!("copies differ: {copies:?}")
    });
    let mut reply = copies[1][..4].to_vec();
    reply.extend_from_slice(b"pong");
    sim.send(raw, reply).unwrap();
    sim.run_for(ms(5));
    assert_eq!(bodies(&sim, req), vec![Bytes::from("pong")]);
    assert_eq!(sim.protocol::<Req>(req).unwrap().request_id(), None);
}

/// The virtual times at which `node` wrote a message whose body ends with `body`.
fn writes_of(sim: &Sim, node: NodeId, body: &str) -> Vec<Duration> {
    let needle = format!("{body:?}");
    sim.transcript()
        .iter()
        .filter(|(_, n, line)| *n == node && line.starts_with("tx ") && line.ends_with(&needle))
        .map(|(at, _, _)| *at)
        .collect()
}

/// A REQ resending every 100 ms with `tick`, linked to a raw REP that never answers. It sends
/// "first" at 0 ms, which anchors a tick grid at 0 ms, and "second" at 47 ms; returns when
/// "second" was written over 400 ms.
fn second_request_writes(tick: Option<Duration>) -> Vec<Duration> {
    let mut sim = Sim::new(SEED, Instant::now());
    let config = ReqConfig {
        resend_interval: Some(ms(100)),
        resend_tick: tick,
        seed: SEED,
    };
    let req = sim.add_node("req", Req::new(config), App::Collect);
    let raw = sim.add_node("raw-rep", RawPeer::new(ProtocolId::REP), App::Collect);
    let link = sim.add_link(req, raw, LinkConfig::default());
    sim.connect(link);

    sim.send(req, "first").unwrap();
    sim.at(
        ms(47),
        Action::Send {
            node: req,
            body: "second".into(),
        },
    );
    sim.run_until(ms(400));

    writes_of(&sim, req, "second")
}

// Scenario 30 (NNG's resend tick).
#[test]
fn req_resend_tick_resends_at_the_first_tick_after_the_interval() {
    let tick = ms(30);

    let writes = second_request_writes(Some(tick));

    assert_eq!(writes, vec![ms(47), ms(150), ms(270), ms(390)]);
    for pair in writes.windows(2) {
        let (sent, resent) = (pair[0], pair[1]);
        assert!(resent >= sent + ms(100), "resent early: {writes:?}");
        assert!(resent < sent + ms(100) + tick, "resent late: {writes:?}");
        assert_eq!(
            resent.as_nanos() % tick.as_nanos(),
            0,
            "off the grid: {writes:?}"
        );
    }
}

#[test]
fn req_without_resend_tick_resends_exactly_at_the_deadline() {
    let writes = second_request_writes(None);

    assert_eq!(writes, vec![ms(47), ms(147), ms(247), ms(347)]);
}

// Scenario 44.
#[test]
fn req_resends_at_once_to_new_peer_after_pipe_closes() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node(
        "req",
        Req::new(req_config(Some(Duration::from_secs(60)))),
        App::Collect,
    );
    let rep1 = sim.add_node("rep1", RawPeer::new(ProtocolId::REP), App::Collect);
    let echo_id = App::Responder(Box::new(|m: &Message| {
        let mut reply = m.body[..4].to_vec();
        reply.extend_from_slice(b"pong");
        Some(reply.into())
    }));
    let rep2 = sim.add_node("rep2", RawPeer::new(ProtocolId::REP), echo_id);
    let link1 = sim.add_link(req, rep1, LinkConfig::default());
    let link2 = sim.add_link(req, rep2, LinkConfig::default());
    sim.connect(link1);

    sim.send(req, "ping").unwrap();
    sim.at(ms(10), Action::Disconnect(link1));
    sim.at(ms(20), Action::Connect(link2));
    sim.run_until(ms(100));

    let first = bodies(&sim, rep1);
    let second = bodies(&sim, rep2);
    assert_eq!(first.len(), 1);
    assert_eq!(second, first, "same request, same ID");
    assert_eq!(bodies(&sim, req), vec![Bytes::from("pong")]);
    assert!(sim.inbox(req)[0].at < ms(30));
}

#[test]
fn req_resends_when_pipe_closes() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node(
        "req",
        Req::new(req_config(Some(Duration::from_secs(60)))),
        App::Collect,
    );
    let rep1 = sim.add_node("rep1", Rep::new(RepConfig::default()), App::Collect);
    let rep2 = sim.add_node("rep2", Rep::new(RepConfig::default()), ping_pong());
    let link1 = sim.add_link(req, rep1, LinkConfig::default());
    let link2 = sim.add_link(req, rep2, LinkConfig::default());
    sim.connect(link1);
    sim.connect(link2);

    sim.send(req, "ping").unwrap();
    sim.run_until(ms(10));
    assert_eq!(bodies(&sim, rep1), vec![Bytes::from("ping")]);
    assert!(bodies(&sim, rep2).is_empty());
    sim.disconnect(link1);
    sim.run_until(ms(20));

    assert_eq!(bodies(&sim, rep2), vec![Bytes::from("ping")]);
    assert_eq!(bodies(&sim, req), vec![Bytes::from("pong")]);
}

// Scenario 45.
#[test]
fn req_without_resend_reports_connection_reset_on_disconnect() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(None)), App::Collect);
    let rep1 = sim.add_node("rep1", Rep::new(RepConfig::default()), App::Collect);
    let rep2 = sim.add_node("rep2", Rep::new(RepConfig::default()), App::Collect);
    let link1 = sim.add_link(req, rep1, LinkConfig::default());
    let link2 = sim.add_link(req, rep2, LinkConfig::default());
    sim.connect(link1);
    sim.connect(link2);

    sim.send(req, "ping").unwrap();
    sim.run_until(ms(10));
    assert_eq!(bodies(&sim, rep1).len(), 1);
    sim.disconnect(link1);
    sim.run_until(ms(100));

    assert_eq!(sim.inbox(req).len(), 1);
    assert_eq!(sim.inbox(req)[0].result, Err(RecvError::ConnectionReset));
    assert!(bodies(&sim, rep2).is_empty());
    assert_eq!(sim.recv(req), Err(RecvError::BadState));
}

// Scenario 46.
#[test]
fn req_send_waits_for_a_peer() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node(
        "req",
        Req::new(req_config(Some(Duration::from_secs(60)))),
        App::Collect,
    );
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), ping_pong());
    let link = sim.add_link(req, rep, LinkConfig::default());

    assert_eq!(sim.send(req, "ping"), Err(SendError::WouldBlock));
    sim.at(
        ms(0),
        Action::SendBlocking {
            node: req,
            body: "ping".into(),
        },
    );
    sim.at(ms(50), Action::Connect(link));
    sim.run_until_idle(100);

    assert_eq!(bodies(&sim, req), vec![Bytes::from("pong")]);
    assert!(sim.inbox(req)[0].at >= ms(50));
}

#[test]
fn req_round_robins_requests_over_reps() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(None)), App::Collect);
    let reps: Vec<NodeId> = (0..3)
        .map(|i| {
            sim.add_node(
                &format!("rep{i}"),
                Rep::new(RepConfig::default()),
                App::prefix_responder("re:"),
            )
        })
        .collect();
    for &rep in &reps {
        let link = sim.add_link(req, rep, LinkConfig::default());
        sim.connect(link);
    }

    for i in 0..6u64 {
        sim.at(
            ms(10 * i),
            Action::Send {
                node: req,
                body: format!("q{i}").into(),
            },
        );
    }
    sim.run_until_idle(1000);

    for (i, &rep) in reps.iter().enumerate() {
        let expected: Vec<Bytes> = [i, i + 3]
            .iter()
            .map(|n| Bytes::from(format!("q{n}")))
            .collect();
        assert_eq!(bodies(&sim, rep), expected, "{}", sim.name(rep));
    }
    assert_eq!(bodies(&sim, req).len(), 6);
}

// Scenario 51 (NNG behaviour: the pipe is kicked).
#[test]
fn rep_kicks_pipe_on_request_without_bottom_word() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw-req", RawPeer::new(ProtocolId::REQ), App::Manual);
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), App::Collect);
    let link = sim.add_link(raw, rep, LinkConfig::default());
    sim.connect(link);

    sim.send(raw, Bytes::from_static(b"\x00\x00\x00\x01abc"))
        .unwrap();
    sim.run_until_idle(100);

    assert!(sim.inbox(rep).is_empty());
    assert!(sim.transcript_contains(rep, "MalformedHeader"));
    assert!(!sim.is_connected(link));
}

#[test]
fn rep_drops_requests_over_ttl_and_keeps_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw-req", RawPeer::new(ProtocolId::REQ), App::Manual);
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), App::Collect);
    let link = sim.add_link(raw, rep, LinkConfig::default());
    sim.connect(link);
    let stack = |words: usize| {
        let mut out: Vec<u8> = (1..words as u32).flat_map(u32::to_be_bytes).collect();
        out.extend_from_slice(&0x8000_0001u32.to_be_bytes());
        out.extend_from_slice(format!("{words}-words").as_bytes());
        Bytes::from(out)
    };

    sim.at(
        ms(0),
        Action::SendBlocking {
            node: raw,
            body: stack(9),
        },
    );
    sim.at(
        ms(0),
        Action::SendBlocking {
            node: raw,
            body: stack(8),
        },
    );
    sim.run_until_idle(100);

    assert_eq!(bodies(&sim, rep), vec![Bytes::from("8-words")]);
    assert!(sim.is_connected(link));
}

// Scenario 52, as far as a sans-IO core goes: a receive with nothing queued never disturbs the
// saved request.
#[test]
fn rep_recv_with_nothing_queued_keeps_saved_request() {
    let (mut sim, req, rep, _) = req_rep(None, App::Manual);
    sim.send(req, "q").unwrap();
    sim.run_until_idle(100);

    assert_eq!(sim.recv(rep).unwrap().body, "q");
    assert_eq!(sim.recv(rep), Err(RecvError::WouldBlock));
    sim.send(rep, "a").unwrap();
    sim.run_until_idle(100);

    assert_eq!(bodies(&sim, req), vec![Bytes::from("a")]);
}

// Scenario 53.
#[test]
fn rep_reply_after_requester_left_reports_success() {
    let (mut sim, req, rep, link) = req_rep(None, App::Manual);
    sim.send(req, "q").unwrap();
    sim.run_until_idle(100);
    assert_eq!(sim.recv(rep).unwrap().body, "q");
    sim.disconnect(link);

    assert_eq!(sim.send(rep, "late"), Ok(()));
    assert_eq!(sim.send(rep, "again"), Err(SendError::BadState));
    assert!(!sim.transcript_contains(rep, "tx "));
}

#[test]
fn rep_refuses_incompatible_peer() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("push", RawPeer::new(ProtocolId::PUSH), App::Manual);
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), App::Collect);
    let link = sim.add_link(raw, rep, LinkConfig::default());

    sim.connect(link);

    assert!(sim.transcript_contains(rep, "IncompatiblePeer"));
    assert!(!sim.is_connected(link));
}

#[test]
fn rep_answers_each_requester_on_its_own_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let rep = sim.add_node(
        "rep",
        Rep::new(RepConfig {
            recv_buffer: 1,
            ..RepConfig::default()
        }),
        App::prefix_responder("re:"),
    );
    let reqs: Vec<NodeId> = (0..4)
        .map(|i| {
            let config = ReqConfig {
                resend_interval: None,
                resend_tick: None,
                seed: i,
            };
            sim.add_node(&format!("req{i}"), Req::new(config), App::Collect)
        })
        .collect();
    for (i, &req) in reqs.iter().enumerate() {
        let link = sim.add_link(
            req,
            rep,
            LinkConfig {
                latency: ms(1 + i as u64),
                ..LinkConfig::default()
            },
        );
        sim.connect(link);
    }

    for (i, &req) in reqs.iter().enumerate() {
        sim.send(req, format!("from{i}")).unwrap();
    }
    sim.run_until_idle(1000);

    for (i, &req) in reqs.iter().enumerate() {
        assert_eq!(bodies(&sim, req), vec![Bytes::from(format!("re:from{i}"))]);
    }
}
