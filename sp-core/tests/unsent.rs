//! Messages a dying pipe never wrote, handed back to the core with [`Input::Unsent`] right
//! before [`Input::PipeRemoved`]: PUSH and raw REQ re-route them, REQ resends its outstanding
//! request at once (exactly once), every other role counts them as
//! [`DropReason::PipeClosed`], and so does every role for a pipe it does not know.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::bus::{Bus, BusConfig, XBus};
use sp_core::protocol::pair::{Pair, PairConfig, XPair};
use sp_core::protocol::pair1::{Pair1, Pair1Config, Pair1Poly, XPair1};
use sp_core::protocol::pipeline::{Pull, PullConfig, Push, PushConfig, XPull, XPush};
use sp_core::protocol::pubsub::{Pub, PubConfig, Sub, SubConfig, XPub, XSub};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::reqrep_raw::{XRep, XRepConfig, XReq, XReqConfig};
use sp_core::protocol::star::{Star, StarConfig, XStar};
use sp_core::protocol::survey::{
    Respondent, RespondentConfig, Surveyor, SurveyorConfig, XRespondent, XRespondentConfig,
    XSurveyor, XSurveyorConfig,
};
use sp_core::protocol::{ContextId, Event, Input, Protocol, RecvError, SendError, Transmit};
use sp_core::sim::{Action, App, LinkConfig, LinkId, NodeId, Sim};
use sp_core::stats::{CoreStats, DropReason};
use sp_core::Message;

mod common;
use common::*;

const SEED: u64 = 0x5eed_0b5e;

/// A link whose one-way latency is `latency_ms` and that holds up to `capacity` messages in
/// flight per direction before the sender's pipe turns busy.
fn link(latency_ms: u64, capacity: usize) -> LinkConfig {
    LinkConfig {
        latency: ms(latency_ms),
        capacity,
        ..LinkConfig::default()
    }
}

fn bodies(names: &[&str]) -> Vec<Bytes> {
    names.iter().map(|n| Bytes::from(n.to_string())).collect()
}

/// The bodies `node` transmitted after the transcript's first line containing `after`, in
/// transmit order.
fn transmitted_after(sim: &Sim, node: NodeId, after: &str) -> Vec<Bytes> {
    let transcript = sim.transcript();
    let start = transcript
        .iter()
        .position(|(_, _, line)| line.contains(after))
        .expect("the marker is in the transcript");
    transcript[start..]
        .iter()
        .filter(|(_, n, line)| *n == node && line.starts_with("tx "))
        .map(|(_, _, line)| {
            let quoted = line
                .rsplit(' ')
                .next()
                .expect("a tx line ends with the body");
            // `b"m0"` -> `m0`
            let inner = quoted.trim_start_matches('b').trim_matches('"');
            Bytes::from(inner.to_string())
        })
        .collect()
}

/// How many messages `node` transmitted, over the whole run.
fn transmit_count(sim: &Sim, node: NodeId) -> usize {
    sim.transcript()
        .iter()
        .filter(|(_, n, line)| *n == node && line.starts_with("tx "))
        .count()
}

fn stats_of<P: Protocol + 'static>(sim: &Sim, node: NodeId) -> CoreStats {
    sim.protocol::<P>(node).expect("node holds P").stats()
}

fn no_drops(stats: &CoreStats) -> bool {
    stats.dropped.total() == 0
}

// ---------------------------------------------------------------------------------------
// PUSH
// ---------------------------------------------------------------------------------------

/// PUSH with three PULLs. Pipe A's queue holds k messages when it dies: each comes back and
/// goes to B or C exactly once, in the order they were first sent, before a send made after
/// the death, and nothing is counted as dropped.
#[test]
fn push_reroutes_unsent_messages_to_the_other_pipes_in_order() {
    const K: usize = 6;
    let mut sim = Sim::new(SEED, Instant::now());
    let push = sim.add_node("push", Push::new(PushConfig::default()), App::Manual);
    let pulls: Vec<NodeId> = ["pull-a", "pull-b", "pull-c"]
        .iter()
        .map(|name| sim.add_node(name, Pull::new(PullConfig::default()), App::Collect))
        .collect();
    // A is slow and deep: its k messages are all still in flight when it dies.
    let a = sim.add_link(push, pulls[0], link(50, 16));
    let b = sim.add_link(push, pulls[1], link(1, 1));
    let c = sim.add_link(push, pulls[2], link(1, 1));

    sim.connect(a);
    let sent: Vec<String> = (0..K).map(|i| format!("m{i}")).collect();
    for body in &sent {
        sim.send(push, body.clone()).unwrap();
    }
    sim.connect(b);
    sim.connect(c);
    sim.check(stats_of::<Push>(&sim, push).send_queued == 0, || {
        "nothing waits before the death".into()
    });

    sim.disconnect_returning_unsent(a);
    // B and C each took one returned message; the rest wait for them, ahead of new sends.
    sim.check(stats_of::<Push>(&sim, push).send_queued == K - 2, || {
        format!("{:?}", stats_of::<Push>(&sim, push))
    });
    assert_eq!(sim.send(push, "refused"), Err(SendError::WouldBlock));
    sim.at(
        sim.elapsed(),
        Action::SendBlocking {
            node: push,
            body: "new".into(),
        },
    );
    sim.run_until_idle(1_000);

    let refs: Vec<&str> = sent.iter().map(String::as_str).collect();
    let mut expected_order = bodies(&refs);
    expected_order.push(Bytes::from("new"));
    assert_eq!(
        transmitted_after(&sim, push, "returned unsent"),
        expected_order,
        "returned messages go out in order, before the new send"
    );
    assert!(
        sim.received_bodies(pulls[0]).is_empty(),
        "A never wrote them"
    );
    let at_b = sim.received_bodies(pulls[1]);
    let at_c = sim.received_bodies(pulls[2]);
    assert!(
        !at_b.is_empty() && !at_c.is_empty(),
        "both B and C took some"
    );
    // Each PULL sees its share in the original order, and together they saw each exactly once.
    for got in [&at_b, &at_c] {
        let positions: Vec<usize> = got
            .iter()
            .map(|m| expected_order.iter().position(|e| e == m).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "order: {got:?}");
    }
    let mut all: Vec<Bytes> = at_b.iter().chain(&at_c).cloned().collect();
    all.sort();
    let mut want = expected_order.clone();
    want.sort();
    assert_eq!(all, want, "every message delivered exactly once");

    let stats = stats_of::<Push>(&sim, push);
    assert!(no_drops(&stats), "{stats:?}");
    assert_eq!(stats.send_queued, 0);
    assert!(sim.transcript_contains(push, "in Unsent"));
}

/// PUSH with one pipe that dies holding k messages keeps them (no pipe is left); a pipe that
/// attaches later gets them first, then the sends that waited.
#[test]
fn push_keeps_unsent_messages_without_pipes_and_sends_them_first_to_a_new_pipe() {
    const K: usize = 4;
    let mut sim = Sim::new(SEED, Instant::now());
    let push = sim.add_node("push", XPush::new(PushConfig::default()), App::Manual);
    let old = sim.add_node("pull-old", Pull::new(PullConfig::default()), App::Collect);
    let new = sim.add_node("pull-new", Pull::new(PullConfig::default()), App::Collect);
    let a = sim.add_link(push, old, link(50, 16));
    let b = sim.add_link(push, new, link(1, 1));

    sim.connect(a);
    let sent: Vec<String> = (0..K).map(|i| format!("m{i}")).collect();
    for body in &sent {
        sim.send(push, body.clone()).unwrap();
    }
    sim.disconnect_returning_unsent(a);
    sim.run_until_idle(100);

    let stats = stats_of::<XPush>(&sim, push);
    assert_eq!(stats.send_queued, K, "kept while no pipe is attached");
    assert!(no_drops(&stats), "{stats:?}");
    assert_eq!(sim.send(push, "refused"), Err(SendError::WouldBlock));
    for body in ["n1", "n2"] {
        sim.at(
            sim.elapsed(),
            Action::SendBlocking {
                node: push,
                body: body.into(),
            },
        );
    }
    sim.run_until(sim.elapsed() + ms(10));
    assert!(sim.received_bodies(new).is_empty(), "no pipe yet");

    sim.connect(b);
    sim.run_until_idle(1_000);

    let mut want: Vec<&str> = sent.iter().map(String::as_str).collect();
    want.extend(["n1", "n2"]);
    assert_eq!(sim.received_bodies(new), bodies(&want));
    assert!(sim.received_bodies(old).is_empty());
    let stats = stats_of::<XPush>(&sim, push);
    assert!(no_drops(&stats) && stats.send_queued == 0, "{stats:?}");
}

/// Directly on the core: a returned message turns the dying pipe busy, waits for a writable
/// pipe, blocks new sends meanwhile, and `Writable` comes only once it went out.
#[test]
fn push_returned_message_waits_for_a_pipe_and_holds_back_new_sends() {
    let now = Instant::now();
    let mut push = Push::new(PushConfig::default());
    add(&mut push, 1, now);
    add(&mut push, 2, now);
    drain_ev(&mut push);
    push.send(Message::new("a"), now).unwrap();
    push.send(Message::new("b"), now).unwrap();
    let txs = drain_tx(&mut push);
    assert_eq!(pipes_of(&txs), vec![1, 2]);

    // Pipe 1 reported writable (its driver queue has room), then dies with "a" unwritten.
    writable(&mut push, 1, now);
    drain_ev(&mut push);
    unsent(&mut push, txs[0].clone(), now);
    assert!(
        drain_tx(&mut push).is_empty(),
        "never back to the dying pipe"
    );
    removed(&mut push, 1, now);
    assert_eq!(push.stats().send_queued, 1);
    assert_eq!(
        push.send(Message::new("c"), now),
        Err(SendError::WouldBlock)
    );
    assert!(drain_ev(&mut push).is_empty());

    writable(&mut push, 2, now);
    let txs = drain_tx(&mut push);
    assert_eq!(txs.len(), 1);
    assert_eq!((txs[0].pipe, &txs[0].msg.body[..]), (p(2), &b"a"[..]));
    assert!(drain_ev(&mut push).is_empty(), "pipe 2 is busy again");
    writable(&mut push, 2, now);
    assert_eq!(drain_ev(&mut push), vec![Event::Writable]);
    push.send(Message::new("c"), now).unwrap();
    assert!(no_drops(&push.stats()));
}

// ---------------------------------------------------------------------------------------
// Raw REQ
// ---------------------------------------------------------------------------------------

/// Raw REQ round-robins requests, so it re-routes a returned one like PUSH, header and body
/// unchanged.
#[test]
fn xreq_reroutes_unsent_messages_unchanged() {
    let now = Instant::now();
    let mut xreq = XReq::new(XReqConfig::default());
    add(&mut xreq, 1, now);
    add(&mut xreq, 2, now);
    let m1 = Message::with_header(&[0x80, 0, 0, 7][..], &b"one"[..]);
    let m2 = Message::with_header(&[0x80, 0, 0, 8][..], &b"two"[..]);
    xreq.send(m1.clone(), now).unwrap();
    xreq.send(m2, now).unwrap();
    let txs = drain_tx(&mut xreq);
    assert_eq!(pipes_of(&txs), vec![1, 2]);
    drain_ev(&mut xreq);

    unsent(&mut xreq, txs[0].clone(), now);
    removed(&mut xreq, 1, now);
    let m3 = Message::with_header(&[0x80, 0, 0, 9][..], &b"three"[..]);
    assert_eq!(xreq.send(m3.clone(), now), Err(SendError::WouldBlock));
    writable(&mut xreq, 2, now);
    let txs = drain_tx(&mut xreq);
    assert_eq!(
        txs,
        vec![Transmit {
            pipe: p(2),
            msg: m1
        }]
    );
    writable(&mut xreq, 2, now);
    assert_eq!(drain_ev(&mut xreq), vec![Event::Writable]);
    xreq.send(m3, now).unwrap();
    let stats = xreq.stats();
    assert!(no_drops(&stats) && stats.send_queued == 0, "{stats:?}");
}

// ---------------------------------------------------------------------------------------
// REQ
// ---------------------------------------------------------------------------------------

/// A REQ linked to two REPs that answer `re:` + the request; the first link is slow.
fn req_two_reps(resend: Option<Duration>) -> (Sim, NodeId, [NodeId; 2], [LinkId; 2]) {
    let mut sim = Sim::new(SEED, Instant::now());
    let config = ReqConfig {
        resend_interval: resend,
        resend_tick: None,
        seed: SEED,
    };
    let req = sim.add_node("req", Req::new(config), App::Collect);
    let rep_a = sim.add_node(
        "rep-a",
        Rep::new(RepConfig::default()),
        App::prefix_responder("re:"),
    );
    let rep_b = sim.add_node(
        "rep-b",
        Rep::new(RepConfig::default()),
        App::prefix_responder("re:"),
    );
    let a = sim.add_link(req, rep_a, link(50, 16));
    let b = sim.add_link(req, rep_b, link(1, 1));
    (sim, req, [rep_a, rep_b], [a, b])
}

/// The request still in the dead pipe's queue is resent at once on the other pipe, long
/// before the resend timer, and exactly once: the `PipeRemoved` that follows the `Unsent`
/// does not send it a second time.
#[test]
fn req_resends_an_unsent_request_at_once_on_the_other_pipe_exactly_once() {
    let (mut sim, req, [rep_a, rep_b], [a, b]) = req_two_reps(Some(Duration::from_secs(60)));
    sim.connect(a);
    sim.send(req, "hello").unwrap();
    // A reported writable again at once (room in its queue) and is ahead of B in the ready
    // list: the resend must skip it all the same.
    sim.connect(b);
    sim.run_until(ms(10));
    assert!(
        sim.received_bodies(rep_a).is_empty(),
        "still in flight on A"
    );

    sim.disconnect_returning_unsent(a);
    sim.run_until(ms(500));

    assert!(sim.received_bodies(rep_a).is_empty());
    assert_eq!(sim.received_bodies(rep_b), bodies(&["hello"]));
    assert_eq!(sim.received_bodies(req), bodies(&["re:hello"]));
    let answered_at = sim.inbox(req)[0].at;
    assert!(
        answered_at < ms(20),
        "resent at once, answered at {answered_at:?}"
    );
    assert_eq!(transmit_count(&sim, req), 2, "the original and one resend");
    let stats = stats_of::<Req>(&sim, req);
    assert_eq!(stats.resends, 1);
    assert!(no_drops(&stats), "{stats:?}");
    assert_eq!(sim.recv(req), Err(RecvError::BadState), "one reply only");
}

/// With resending off a lost pipe fails the request, but a request its pipe never wrote was
/// seen by no peer: it goes to the other pipe instead of failing.
#[test]
fn req_without_resend_reroutes_an_unsent_request_instead_of_failing_it() {
    let (mut sim, req, [rep_a, rep_b], [a, b]) = req_two_reps(None);
    sim.connect(a);
    sim.send(req, "hello").unwrap();
    sim.connect(b);
    sim.disconnect_returning_unsent(a);
    sim.run_until_idle(1_000);

    assert!(sim.received_bodies(rep_a).is_empty());
    assert_eq!(sim.received_bodies(rep_b), bodies(&["hello"]));
    assert_eq!(sim.received_bodies(req), bodies(&["re:hello"]));
    assert!(sim.inbox(req).iter().all(|e| e.result.is_ok()), "no reset");
    let stats = stats_of::<Req>(&sim, req);
    assert_eq!(stats.resends, 1);
    assert!(no_drops(&stats), "{stats:?}");
}

/// The context variant: two contexts' requests sit in the dead pipe's queue; both are resent
/// at once (the second as soon as the other pipe frees up), each exactly once, and each
/// context gets its own reply.
#[test]
fn req_contexts_resend_unsent_requests_at_once_exactly_once() {
    let (mut sim, req, [rep_a, rep_b], [a, b]) = req_two_reps(Some(Duration::from_secs(60)));
    sim.connect(a);
    let ctxs: Vec<ContextId> = (0..2)
        .map(|_| {
            sim.with_protocol::<Req, _>(req, |core, now| core.open_context(now))
                .unwrap()
        })
        .collect();
    for (ctx, body) in ctxs.iter().zip(["one", "two"]) {
        let msg = Message::new(body);
        sim.with_protocol::<Req, _>(req, |core, now| core.send_on(*ctx, msg, now))
            .unwrap();
    }
    sim.connect(b);
    assert_eq!(transmit_count(&sim, req), 2, "both went to A");

    sim.disconnect_returning_unsent(a);
    sim.run_until(ms(500));

    assert!(sim.received_bodies(rep_a).is_empty());
    assert_eq!(sim.received_bodies(rep_b), bodies(&["one", "two"]));
    for (ctx, want) in ctxs.iter().zip(["re:one", "re:two"]) {
        let got = sim.with_protocol::<Req, _>(req, |core, now| core.recv_on(*ctx, now));
        assert_eq!(got.map(|m| m.body), Ok(Bytes::from(want)));
    }
    assert_eq!(transmit_count(&sim, req), 4, "two originals, two resends");
    let stats = stats_of::<Req>(&sim, req);
    assert_eq!(stats.resends, 2);
    assert!(no_drops(&stats), "{stats:?}");
}

/// A returned copy that is no longer the outstanding request on that pipe is counted, not
/// sent: one replaced by a newer request, and one the resend timer already sent elsewhere.
#[test]
fn req_counts_stale_unsent_copies_as_pipe_closed() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig {
        resend_interval: Some(Duration::from_secs(1)),
        resend_tick: None,
        seed: SEED,
    });
    add(&mut req, 1, now);
    add(&mut req, 2, now);
    add(&mut req, 3, now);

    // Replaced: "a" went to pipe 1, "b" replaced it on pipe 2.
    req.send(Message::new("a"), now).unwrap();
    req.send(Message::new("b"), now).unwrap();
    let txs = drain_tx(&mut req);
    assert_eq!(pipes_of(&txs), vec![1, 2]);
    unsent(&mut req, txs[0].clone(), now);
    removed(&mut req, 1, now);
    assert!(drain_tx(&mut req).is_empty());
    assert_eq!(req.stats().dropped.get(DropReason::PipeClosed), 1);
    assert_eq!(req.stats().resends, 0);

    // Already resent: the timer moved "b" from pipe 2 to pipe 3; pipe 2 then returns it.
    let later = now + Duration::from_secs(1);
    req.handle_timeout(later);
    let resent = drain_tx(&mut req);
    assert_eq!(pipes_of(&resent), vec![3]);
    unsent(&mut req, txs[1].clone(), later);
    removed(&mut req, 2, later);
    assert!(drain_tx(&mut req).is_empty());
    let stats = req.stats();
    assert_eq!(stats.dropped.get(DropReason::PipeClosed), 2);
    assert_eq!(stats.dropped.total(), 2, "{stats:?}");
    assert_eq!(stats.resends, 1, "the timer's resend only");
    assert_eq!(req.request_id().map(|id| id.to_bytes().to_vec()), {
        Some(resent[0].msg.header.to_vec())
    });
}

// ---------------------------------------------------------------------------------------
// Counted roles
// ---------------------------------------------------------------------------------------

/// A survey was for that respondent alone: the copy its pipe never wrote is counted.
#[test]
fn surveyor_counts_an_unsent_survey_as_pipe_closed() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surveyor = sim.add_node(
        "surveyor",
        Surveyor::new(SurveyorConfig {
            survey_time: Duration::from_secs(1),
            ..SurveyorConfig::default()
        }),
        App::Collect,
    );
    let resp_a = sim.add_node(
        "resp-a",
        Respondent::new(RespondentConfig::default()),
        App::prefix_responder("ra:"),
    );
    let resp_b = sim.add_node(
        "resp-b",
        Respondent::new(RespondentConfig::default()),
        App::prefix_responder("rb:"),
    );
    let a = sim.add_link(surveyor, resp_a, link(50, 16));
    let b = sim.add_link(surveyor, resp_b, link(1, 1));
    sim.connect(a);
    sim.connect(b);
    sim.send(surveyor, "poll").unwrap();
    sim.disconnect_returning_unsent(a);
    sim.run_until(ms(500));

    assert!(sim.received_bodies(resp_a).is_empty());
    assert_eq!(sim.received_bodies(surveyor), bodies(&["rb:poll"]));
    let stats = stats_of::<Surveyor>(&sim, surveyor);
    assert_eq!(stats.dropped.get(DropReason::PipeClosed), 1);
    assert_eq!(stats.dropped.total(), 1, "{stats:?}");
    assert_eq!(transmit_count(&sim, surveyor), 2, "no survey is sent again");
}

/// REP: a reply its requester's pipe never wrote has nowhere else to go.
#[test]
fn rep_counts_an_unsent_reply_as_pipe_closed() {
    let now = Instant::now();
    let mut rep = Rep::new(RepConfig::default());
    add(&mut rep, 1, now);
    receive(&mut rep, 1, &[0x80, 0, 0, 1, b'q'], now);
    assert_eq!(rep.recv(now).unwrap().body, "q");
    rep.send(Message::new("answer"), now).unwrap();
    let txs = drain_tx(&mut rep);
    assert_eq!(pipes_of(&txs), vec![1]);
    unsent(&mut rep, txs[0].clone(), now);
    removed(&mut rep, 1, now);
    assert!(drain_tx(&mut rep).is_empty());
    let stats = rep.stats();
    assert_eq!(stats.dropped.get(DropReason::PipeClosed), 1);
    assert_eq!(stats.dropped.total(), 1, "{stats:?}");
}

/// PUB: each returned copy counts once, on top of the copies still queued in the core for the
/// same pipe; the other subscriber's pipe is untouched.
#[test]
fn pub_counts_unsent_copies_and_its_own_queued_ones_as_pipe_closed() {
    let now = Instant::now();
    let mut publisher = Pub::new(PubConfig::default());
    add(&mut publisher, 1, now);
    add(&mut publisher, 2, now);
    // m1 and m2 written to pipe 1 (its driver queue had room), m3 and m4 queued in the core.
    publisher.send(Message::new("m1"), now).unwrap();
    writable(&mut publisher, 1, now);
    publisher.send(Message::new("m2"), now).unwrap();
    publisher.send(Message::new("m3"), now).unwrap();
    publisher.send(Message::new("m4"), now).unwrap();
    let to_pipe_1: Vec<Transmit> = drain_tx(&mut publisher)
        .into_iter()
        .filter(|tx| tx.pipe == p(1))
        .collect();
    assert_eq!(to_pipe_1.len(), 2);
    for tx in to_pipe_1 {
        unsent(&mut publisher, tx, now);
    }
    removed(&mut publisher, 1, now);
    let stats = publisher.stats();
    assert_eq!(
        stats.dropped.get(DropReason::PipeClosed),
        4,
        "2 returned + 2 queued"
    );
    assert_eq!(stats.dropped.total(), 4, "{stats:?}");
    writable(&mut publisher, 2, now);
    assert_eq!(
        pipes_of(&drain_tx(&mut publisher)),
        vec![2],
        "pipe 2 goes on"
    );
}

/// BUS: each returned copy counts once.
#[test]
fn bus_counts_each_unsent_copy_as_pipe_closed() {
    let now = Instant::now();
    let mut bus = Bus::new(BusConfig::default());
    add(&mut bus, 1, now);
    add(&mut bus, 2, now);
    let mut returned = Vec::new();
    for body in ["x1", "x2", "x3"] {
        bus.send(Message::new(body), now).unwrap();
        returned.extend(drain_tx(&mut bus).into_iter().filter(|tx| tx.pipe == p(1)));
        writable(&mut bus, 1, now);
        writable(&mut bus, 2, now);
    }
    assert_eq!(returned.len(), 3);
    for tx in returned {
        unsent(&mut bus, tx, now);
    }
    removed(&mut bus, 1, now);
    assert!(drain_tx(&mut bus).is_empty());
    let stats = bus.stats();
    assert_eq!(stats.dropped.get(DropReason::PipeClosed), 3);
    assert_eq!(stats.dropped.total(), 3, "{stats:?}");
}

/// Every role that does not re-route counts each returned message once as
/// [`DropReason::PipeClosed`], sends nothing again, and counts one for a pipe it does not
/// know as well.
#[test]
fn every_other_role_counts_each_unsent_message_as_pipe_closed() {
    fn check(name: &str, mut proto: impl Protocol) {
        let now = Instant::now();
        add(&mut proto, 1, now);
        drain_tx(&mut proto);
        let before = proto.stats().dropped.total();
        for body in ["u1", "u2"] {
            let msg = Message::new(body);
            proto.handle(Input::Unsent { pipe: p(1), msg }, now);
        }
        let msg = Message::new("stray");
        proto.handle(Input::Unsent { pipe: p(9), msg }, now);
        removed(&mut proto, 1, now);
        assert!(
            drain_tx(&mut proto).is_empty(),
            "{name} sent something again"
        );
        let stats = proto.stats();
        assert_eq!(
            stats.dropped.get(DropReason::PipeClosed),
            3,
            "{name}: {stats:?}"
        );
        assert_eq!(stats.dropped.total(), before + 3, "{name}: {stats:?}");
    }
    check("rep", Rep::new(RepConfig::default()));
    check("xrep", XRep::new(XRepConfig::default()));
    check("respondent", Respondent::new(RespondentConfig::default()));
    check(
        "xrespondent",
        XRespondent::new(XRespondentConfig::default()),
    );
    check("surveyor", Surveyor::new(SurveyorConfig::default()));
    check("xsurveyor", XSurveyor::new(XSurveyorConfig::default()));
    check("pub", Pub::new(PubConfig::default()));
    check("xpub", XPub::new(PubConfig::default()));
    check("sub", Sub::new(SubConfig::default()));
    check("xsub", XSub::new(SubConfig::default()));
    check("bus", Bus::new(BusConfig::default()));
    check("xbus", XBus::new(BusConfig::default()));
    check("pair", Pair::new(PairConfig::default()));
    check("xpair", XPair::new(PairConfig::default()));
    check("pair1", Pair1::new(Pair1Config::default()));
    check("xpair1", XPair1::new(Pair1Config::default()));
    check("pair1-poly", Pair1Poly::new(Pair1Config::default()));
    check("star", Star::new(StarConfig::default()));
    check("xstar", XStar::new(StarConfig::default()));
    check("pull", Pull::new(PullConfig::default()));
    check("xpull", XPull::new(PullConfig::default()));
}

/// PUSH, raw PUSH, raw REQ and REQ re-route only what a pipe they know hands back; an
/// `Unsent` for any other pipe is counted and sends nothing.
#[test]
fn rerouting_roles_count_unsent_for_an_unknown_pipe() {
    fn check(name: &str, mut proto: impl Protocol) {
        let now = Instant::now();
        add(&mut proto, 1, now);
        let msg = Message::with_header(&[0x80, 0, 0, 1][..], &b"stray"[..]);
        proto.handle(Input::Unsent { pipe: p(9), msg }, now);
        assert!(drain_tx(&mut proto).is_empty(), "{name} sent it");
        let stats = proto.stats();
        assert_eq!(
            stats.dropped.get(DropReason::PipeClosed),
            1,
            "{name}: {stats:?}"
        );
        assert_eq!(stats.dropped.total(), 1, "{name}: {stats:?}");
        assert_eq!(stats.send_queued, 0, "{name}: {stats:?}");
        assert_eq!(stats.resends, 0, "{name}: {stats:?}");
    }
    check("push", Push::new(PushConfig::default()));
    check("xpush", XPush::new(PushConfig::default()));
    check("xreq", XReq::new(XReqConfig::default()));
    check("req", Req::new(ReqConfig::default()));
}

// ---------------------------------------------------------------------------------------
// Helpers for driving a core directly
// ---------------------------------------------------------------------------------------

fn removed(proto: &mut impl Protocol, pipe: u32, now: Instant) {
    proto.handle(Input::PipeRemoved { pipe: p(pipe) }, now);
}

/// Hands `tx` back as never written, as a driver does when its pipe dies.
fn unsent(proto: &mut impl Protocol, tx: Transmit, now: Instant) {
    let Transmit { pipe, msg } = tx;
    proto.handle(Input::Unsent { pipe, msg }, now);
}

fn pipes_of(txs: &[Transmit]) -> Vec<u32> {
    txs.iter().map(|tx| tx.pipe.get()).collect()
}
