//! Context scenarios from SP-PROTOCOLS.md sections 8.2–8.5 (REQ, REP, SURVEYOR, RESPONDENT and
//! SUB contexts), run in the deterministic simulator.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sp_core::protocol::bus::{Bus, BusConfig};
use sp_core::protocol::pair::{Pair, PairConfig};
use sp_core::protocol::pair1::{Pair1, Pair1Config};
use sp_core::protocol::pipeline::{Pull, PullConfig, Push, PushConfig};
use sp_core::protocol::pubsub::{Pub, PubConfig, Sub, SubConfig, SubscribeError, XSub};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::survey::{
    Respondent, RespondentConfig, Surveyor, SurveyorConfig, XRespondent, XRespondentConfig,
    XSurveyor, XSurveyorConfig,
};
use sp_core::protocol::{ContextError, ContextId, Event, Protocol, RecvError, SendError};
use sp_core::sim::{App, LinkConfig, NodeId, RawPeer, Sim};
use sp_core::{Message, ProtocolId};

const SEED: u64 = 0x5eed_c0c0;

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

/// Opens `n` contexts on the core of `node`.
fn open<P: Protocol + 'static>(sim: &mut Sim, node: NodeId, n: usize) -> Vec<ContextId> {
    (0..n)
        .map(|_| {
            sim.with_protocol::<P, _>(node, |core, now| core.open_context(now))
                .unwrap()
        })
        .collect()
}

fn send_on<P: Protocol + 'static>(
    sim: &mut Sim,
    node: NodeId,
    ctx: ContextId,
    body: impl Into<Bytes>,
) -> Result<(), SendError> {
    let msg = Message::new(body.into());
    sim.with_protocol::<P, _>(node, |core, now| core.send_on(ctx, msg, now))
}

fn recv_on<P: Protocol + 'static>(
    sim: &mut Sim,
    node: NodeId,
    ctx: ContextId,
) -> Result<Bytes, RecvError> {
    sim.with_protocol::<P, _>(node, |core, now| core.recv_on(ctx, now))
        .map(|m| m.body)
}

fn readable_logged(sim: &Sim, node: NodeId, ctx: ContextId) -> bool {
    sim.transcript_contains(node, &format!("{:?}", Event::ContextReadable { ctx }))
}

/// A REQ node and a REP node (both driven by the test), connected.
fn req_rep(resend: Option<Duration>, rep_app: App) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(resend)), App::Manual);
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), rep_app);
    let link = sim.add_link(req, rep, LinkConfig::default());
    sim.connect(link);
    (sim, req, rep)
}

/// Runs `n` REQ contexts against `n` REP contexts; the REP contexts answer in `order` (a
/// permutation of `0..n`, indexing the REP contexts). Returns what each REQ context received
/// and what it had sent.
fn many_contexts_round(n: usize, order: &[usize], seed: u64) -> Vec<(Bytes, Bytes)> {
    let mut sim = Sim::new(seed, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(None)), App::Manual);
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), App::Manual);
    let config = LinkConfig {
        capacity: 4,
        jitter: ms(2),
        ..LinkConfig::default()
    };
    let link = sim.add_link(req, rep, config);
    sim.connect(link);
    let req_ctxs = open::<Req>(&mut sim, req, n);
    let rep_ctxs = open::<Rep>(&mut sim, rep, n);
    for &ctx in &rep_ctxs {
        assert_eq!(
            recv_on::<Rep>(&mut sim, rep, ctx),
            Err(RecvError::WouldBlock)
        );
    }
    for (i, &ctx) in req_ctxs.iter().enumerate() {
        send_on::<Req>(&mut sim, req, ctx, format!("request {i}")).unwrap();
    }
    sim.run_until_idle(10_000);

    let mut requests = Vec::new();
    for &ctx in &rep_ctxs {
        sim.check(readable_logged(&sim, rep, ctx), || {
            format!("{ctx} was handed a request")
        });
        requests.push(recv_on::<Rep>(&mut sim, rep, ctx).unwrap());
    }
    for &i in order {
        let mut answer = requests[i].to_vec();
        answer.extend_from_slice(b" answered");
        loop {
            match send_on::<Rep>(&mut sim, rep, rep_ctxs[i], answer.clone()) {
                Ok(()) => break,
                Err(SendError::WouldBlock) => sim.run_for(ms(1)),
                Err(e) => sim.fail(&format!("reply failed: {e}")),
            }
        }
    }
    sim.run_until_idle(10_000);

    req_ctxs
        .iter()
        .enumerate()
        .map(|(i, &ctx)| {
            let got = recv_on::<Req>(&mut sim, req, ctx).unwrap_or_default();
            (got, Bytes::from(format!("request {i}")))
        })
        .collect()
}

/// Five REQ contexts resending every 100 ms with `tick` send one request each, 3 ms apart,
/// to a raw REP that never answers. Returns the distinct instants at which the REQ core's
/// timer fired in the first 150 ms, and how many requests the REP got.
fn resend_timeouts_of_five_contexts(tick: Option<Duration>) -> (Vec<Duration>, usize) {
    let mut sim = Sim::new(SEED, Instant::now());
    let config = ReqConfig {
        resend_tick: tick,
        ..req_config(Some(ms(100)))
    };
    let req = sim.add_node("req", Req::new(config), App::Manual);
    let raw = sim.add_node("raw-rep", RawPeer::new(ProtocolId::REP), App::Collect);
    let link = sim.add_link(req, raw, LinkConfig::default());
    sim.connect(link);
    let ctxs = open::<Req>(&mut sim, req, 5);

    for (i, &ctx) in ctxs.iter().enumerate() {
        sim.run_until(ms(3 * i as u64));
        send_on::<Req>(&mut sim, req, ctx, format!("r{i}")).unwrap();
    }
    sim.run_until(ms(150));

    let mut timeouts: Vec<Duration> = sim
        .transcript()
        .iter()
        .filter(|(_, node, line)| *node == req && line == "timeout")
        .map(|(at, _, _)| *at)
        .collect();
    timeouts.dedup();
    (timeouts, sim.received_bodies(raw).len())
}

// Scenario 30: the resend tick makes the contexts' resends share deadlines.
#[test]
fn req_contexts_resend_tick_coalesces_resend_deadlines() {
    let (timeouts, requests) = resend_timeouts_of_five_contexts(Some(ms(30)));

    assert_eq!(requests, 10, "every context resent its request once");
    assert_eq!(timeouts, vec![ms(120)], "one wake-up for five resends");
}

#[test]
fn req_contexts_without_resend_tick_each_time_out_on_their_own() {
    let (timeouts, requests) = resend_timeouts_of_five_contexts(None);

    assert_eq!(requests, 10, "every context resent its request once");
    assert_eq!(timeouts, vec![ms(100), ms(103), ms(106), ms(109), ms(112)]);
}

// Scenario 49, with 100 contexts on each side.
#[test]
fn req_context_many_outstanding_requests() {
    let order: Vec<usize> = (0..100).rev().collect();
    for (got, sent) in many_contexts_round(100, &order, SEED) {
        assert_eq!(got, Bytes::from([&sent[..], b" answered"].concat()));
    }
}

// Scenario 49: contexts send before any peer exists; the requests go out once one connects.
#[test]
fn req_context_sends_queue_until_a_peer_connects() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(None)), App::Manual);
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), App::Collect);
    let link = sim.add_link(req, rep, LinkConfig::default());
    let ctxs = open::<Req>(&mut sim, req, 3);
    for (i, &ctx) in ctxs.iter().enumerate() {
        assert_eq!(send_on::<Req>(&mut sim, req, ctx, format!("r{i}")), Ok(()));
    }
    sim.run_until_idle(100);
    assert!(sim.received_bodies(rep).is_empty());

    sim.connect(link);
    sim.run_until_idle(100);

    assert_eq!(
        sim.received_bodies(rep),
        vec![Bytes::from("r0"), Bytes::from("r1"), Bytes::from("r2")]
    );
}

// Scenarios 40, 47 and 48 on a context.
#[test]
fn req_two_sends_on_one_context_cancels_first() {
    let (mut sim, req, rep) = req_rep(None, App::prefix_responder("re:"));
    let ctx = open::<Req>(&mut sim, req, 1)[0];

    send_on::<Req>(&mut sim, req, ctx, "abc").unwrap();
    assert_eq!(
        recv_on::<Req>(&mut sim, req, ctx),
        Err(RecvError::WouldBlock)
    );
    send_on::<Req>(&mut sim, req, ctx, "def").unwrap();

    assert!(
        readable_logged(&sim, req, ctx),
        "the waiting receive is woken"
    );
    assert_eq!(recv_on::<Req>(&mut sim, req, ctx), Err(RecvError::Canceled));
    sim.run_until_idle(100);
    assert_eq!(
        sim.received_bodies(rep),
        vec![Bytes::from("abc"), Bytes::from("def")],
        "both requests went out"
    );
    assert_eq!(
        recv_on::<Req>(&mut sim, req, ctx),
        Ok(Bytes::from("re:def"))
    );
    assert_eq!(recv_on::<Req>(&mut sim, req, ctx), Err(RecvError::BadState));
}

// Scenario 48: a receive that gave up is not canceled by a later send.
#[test]
fn req_context_send_after_abandoned_recv_does_not_cancel() {
    let (mut sim, req, _rep) = req_rep(None, App::prefix_responder("re:"));
    let ctx = open::<Req>(&mut sim, req, 1)[0];
    send_on::<Req>(&mut sim, req, ctx, "abc").unwrap();
    assert_eq!(
        recv_on::<Req>(&mut sim, req, ctx),
        Err(RecvError::WouldBlock)
    );
    sim.with_protocol::<Req, _>(req, |core, now| core.cancel_recv(ctx, now));

    send_on::<Req>(&mut sim, req, ctx, "def").unwrap();
    sim.run_until_idle(100);

    assert_eq!(
        recv_on::<Req>(&mut sim, req, ctx),
        Ok(Bytes::from("re:def"))
    );
}

#[test]
fn req_context_double_recv_is_bad_state() {
    let (mut sim, req, _rep) = req_rep(None, App::Manual);
    let ctx = open::<Req>(&mut sim, req, 1)[0];
    assert_eq!(recv_on::<Req>(&mut sim, req, ctx), Err(RecvError::BadState));
    send_on::<Req>(&mut sim, req, ctx, "x").unwrap();

    assert_eq!(
        recv_on::<Req>(&mut sim, req, ctx),
        Err(RecvError::WouldBlock)
    );
    assert_eq!(recv_on::<Req>(&mut sim, req, ctx), Err(RecvError::BadState));
    sim.with_protocol::<Req, _>(req, |core, now| core.cancel_recv(ctx, now));
    assert_eq!(
        recv_on::<Req>(&mut sim, req, ctx),
        Err(RecvError::WouldBlock)
    );
}

// Scenario 43 per context: each context resends on its own interval.
#[test]
fn req_context_resend_interval_per_context() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node("req", Req::new(req_config(Some(ms(10)))), App::Manual);
    let rep = sim.add_node("rep", RawPeer::new(ProtocolId::REP), App::Collect);
    let config = LinkConfig {
        capacity: 8,
        ..LinkConfig::default()
    };
    let link = sim.add_link(req, rep, config);
    sim.connect(link);
    let ctxs = open::<Req>(&mut sim, req, 2);
    let interval = sim.with_protocol::<Req, _>(req, |core, _| {
        core.set_context_resend_interval(ctxs[1], Some(ms(40)))
            .unwrap();
        (
            core.context_resend_interval(ctxs[0]),
            core.context_resend_interval(ctxs[1]),
        )
    });
    assert_eq!(
        interval,
        (Ok(Some(ms(10))), Ok(Some(ms(40)))),
        "inherited, then set"
    );

    send_on::<Req>(&mut sim, req, ctxs[0], "fast").unwrap();
    send_on::<Req>(&mut sim, req, ctxs[1], "slow").unwrap();
    sim.run_until(ms(45));

    let seen = |body: &str| {
        sim.received_bodies(rep)
            .iter()
            .filter(|m| m.ends_with(body.as_bytes()))
            .count()
    };
    assert_eq!(seen("fast"), 5, "sent at 0, resent at 10, 20, 30, 40 ms");
    assert_eq!(seen("slow"), 2, "sent at 0, resent at 40 ms");
}

#[test]
fn req_context_close_drops_its_request() {
    let (mut sim, req, rep) = req_rep(None, App::Manual);
    let ctx = open::<Req>(&mut sim, req, 1)[0];
    send_on::<Req>(&mut sim, req, ctx, "x").unwrap();
    sim.run_until_idle(100);
    sim.with_protocol::<Req, _>(req, |core, now| core.close_context(ctx, now))
        .unwrap();

    assert_eq!(
        sim.with_protocol::<Req, _>(req, |core, now| core.close_context(ctx, now)),
        Err(ContextError::UnknownContext)
    );
    assert_eq!(
        send_on::<Req>(&mut sim, req, ctx, "y"),
        Err(SendError::UnknownContext)
    );
    assert_eq!(
        recv_on::<Req>(&mut sim, req, ctx),
        Err(RecvError::UnknownContext)
    );
    // A reply to the closed context's request finds nobody and is dropped.
    assert_eq!(sim.recv(rep).unwrap().body, "x");
    sim.send(rep, "late").unwrap();
    sim.run_until_idle(100);
    assert!(sim.transcript_contains(req, "Received"));
    assert_eq!(sim.recv(req), Err(RecvError::BadState));
}

// Scenario 52.
#[test]
fn rep_context_double_recv_is_bad_state() {
    let (mut sim, _req, rep) = req_rep(None, App::Manual);
    let ctx = open::<Rep>(&mut sim, rep, 1)[0];

    assert_eq!(
        recv_on::<Rep>(&mut sim, rep, ctx),
        Err(RecvError::WouldBlock)
    );
    assert_eq!(recv_on::<Rep>(&mut sim, rep, ctx), Err(RecvError::BadState));

    sim.with_protocol::<Rep, _>(rep, |core, now| core.close_context(ctx, now))
        .unwrap();
    assert_eq!(
        recv_on::<Rep>(&mut sim, rep, ctx),
        Err(RecvError::UnknownContext)
    );
}

// Scenario 39 on a context, and scenario 49's "each REQ context gets its own reply".
#[test]
fn rep_context_answers_one_request_at_a_time() {
    let (mut sim, req, rep) = req_rep(None, App::Manual);
    let ctx = open::<Rep>(&mut sim, rep, 1)[0];
    assert_eq!(
        send_on::<Rep>(&mut sim, rep, ctx, "x"),
        Err(SendError::BadState)
    );
    sim.send(req, "ping").unwrap();
    sim.run_until_idle(100);

    assert_eq!(recv_on::<Rep>(&mut sim, rep, ctx), Ok(Bytes::from("ping")));
    assert_eq!(
        sim.recv(rep),
        Err(RecvError::WouldBlock),
        "the context took it"
    );
    send_on::<Rep>(&mut sim, rep, ctx, "pong").unwrap();
    assert_eq!(
        send_on::<Rep>(&mut sim, rep, ctx, "again"),
        Err(SendError::BadState)
    );
    sim.run_until_idle(100);

    assert_eq!(sim.recv(req).unwrap().body, "pong");
}

// Contexts fair-share the requests: a context that gives up hands its request on.
#[test]
fn rep_context_that_gives_up_hands_its_request_to_the_next() {
    let (mut sim, req, rep) = req_rep(None, App::Manual);
    let ctxs = open::<Rep>(&mut sim, rep, 2);
    for &ctx in &ctxs {
        assert_eq!(
            recv_on::<Rep>(&mut sim, rep, ctx),
            Err(RecvError::WouldBlock)
        );
    }
    sim.send(req, "ping").unwrap();
    sim.run_until_idle(100);
    assert!(
        readable_logged(&sim, rep, ctxs[0]),
        "the longest waiting gets it"
    );
    assert!(!readable_logged(&sim, rep, ctxs[1]));

    sim.with_protocol::<Rep, _>(rep, |core, now| core.cancel_recv(ctxs[0], now));

    assert!(readable_logged(&sim, rep, ctxs[1]));
    assert_eq!(
        recv_on::<Rep>(&mut sim, rep, ctxs[1]),
        Ok(Bytes::from("ping"))
    );
    send_on::<Rep>(&mut sim, rep, ctxs[1], "pong").unwrap();
    sim.run_until_idle(100);
    assert_eq!(sim.recv(req).unwrap().body, "pong");
}

// A reply that waits for a busy pipe wakes its context alone.
#[test]
fn rep_context_blocked_reply_wakes_when_the_pipe_frees() {
    let (mut sim, req, rep) = req_rep(None, App::Manual);
    let ctxs = open::<Rep>(&mut sim, rep, 2);
    let req_ctxs = open::<Req>(&mut sim, req, 2);
    for (i, &ctx) in req_ctxs.iter().enumerate() {
        send_on::<Req>(&mut sim, req, ctx, format!("q{i}")).unwrap();
    }
    sim.run_until_idle(100);
    let first = recv_on::<Rep>(&mut sim, rep, ctxs[0]).unwrap();
    let second = recv_on::<Rep>(&mut sim, rep, ctxs[1]).unwrap();
    send_on::<Rep>(&mut sim, rep, ctxs[0], first).unwrap();
    assert_eq!(
        send_on::<Rep>(&mut sim, rep, ctxs[1], second.clone()),
        Err(SendError::WouldBlock)
    );
    sim.run_for(ms(2));

    assert!(sim.transcript_contains(
        rep,
        &format!("{:?}", Event::ContextWritable { ctx: ctxs[1] })
    ));
    send_on::<Rep>(&mut sim, rep, ctxs[1], second).unwrap();
    sim.run_until_idle(100);
    for (i, &ctx) in req_ctxs.iter().enumerate() {
        assert_eq!(
            recv_on::<Req>(&mut sim, req, ctx),
            Ok(Bytes::from(format!("q{i}")))
        );
    }
}

// Scenario 64/65 contexts: RESPONDENT contexts behave as REP's.
#[test]
fn respondent_context_answers_its_own_survey() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv_config = SurveyorConfig {
        seed: SEED,
        ..SurveyorConfig::default()
    };
    let surv = sim.add_node("surv", Surveyor::new(surv_config), App::Collect);
    let resp = sim.add_node(
        "resp",
        Respondent::new(RespondentConfig::default()),
        App::Manual,
    );
    let link = sim.add_link(surv, resp, LinkConfig::default());
    sim.connect(link);
    let ctxs = open::<Respondent>(&mut sim, resp, 2);
    assert_eq!(
        send_on::<Respondent>(&mut sim, resp, ctxs[0], "x"),
        Err(SendError::BadState)
    );
    for &ctx in &ctxs {
        assert_eq!(
            recv_on::<Respondent>(&mut sim, resp, ctx),
            Err(RecvError::WouldBlock)
        );
    }
    assert_eq!(
        recv_on::<Respondent>(&mut sim, resp, ctxs[0]),
        Err(RecvError::BadState)
    );

    sim.send(surv, "who").unwrap();
    sim.run_until(ms(10));

    assert_eq!(
        recv_on::<Respondent>(&mut sim, resp, ctxs[0]),
        Ok(Bytes::from("who"))
    );
    send_on::<Respondent>(&mut sim, resp, ctxs[0], "me").unwrap();
    sim.run_until(ms(20));
    assert_eq!(sim.received_bodies(surv), vec![Bytes::from("me")]);
}

fn surveyor_with_respondents(survey_time: Duration, n: usize) -> (Sim, NodeId, Vec<NodeId>) {
    let mut sim = Sim::new(SEED, Instant::now());
    let config = SurveyorConfig {
        survey_time,
        seed: SEED,
        ..SurveyorConfig::default()
    };
    let surv = sim.add_node("surv", Surveyor::new(config), App::Manual);
    let resps = (0..n)
        .map(|i| {
            let node = sim.add_node(
                &format!("resp{i}"),
                Respondent::new(RespondentConfig::default()),
                App::prefix_responder(if i == 0 { "a:" } else { "b:" }),
            );
            let config = LinkConfig {
                capacity: 4,
                latency: ms(1 + i as u64),
                ..LinkConfig::default()
            };
            let link = sim.add_link(surv, node, config);
            sim.connect(link);
            node
        })
        .collect();
    (sim, surv, resps)
}

fn drain_ctx<P: Protocol + 'static>(sim: &mut Sim, node: NodeId, ctx: ContextId) -> Vec<Bytes> {
    std::iter::from_fn(|| recv_on::<P>(sim, node, ctx).ok()).collect()
}

// Scenario 66.
#[test]
fn surveyor_context_multi() {
    let (mut sim, surv, _resps) = surveyor_with_respondents(ms(100), 2);
    let ctxs = open::<Surveyor>(&mut sim, surv, 2);

    send_on::<Surveyor>(&mut sim, surv, ctxs[0], "one").unwrap();
    send_on::<Surveyor>(&mut sim, surv, ctxs[1], "two").unwrap();
    sim.run_until(ms(50));

    let mut first = drain_ctx::<Surveyor>(&mut sim, surv, ctxs[0]);
    let mut second = drain_ctx::<Surveyor>(&mut sim, surv, ctxs[1]);
    first.sort();
    second.sort();
    assert_eq!(first, vec![Bytes::from("a:one"), Bytes::from("b:one")]);
    assert_eq!(second, vec![Bytes::from("a:two"), Bytes::from("b:two")]);
    let ids = sim.with_protocol::<Surveyor, _>(surv, |core, _| {
        (
            core.context_survey_id(ctxs[0]),
            core.context_survey_id(ctxs[1]),
        )
    });
    assert!(
        ids.0.is_some() && ids.0 != ids.1,
        "each survey has its own ID"
    );
    assert_eq!(
        sim.recv(surv),
        Err(RecvError::BadState),
        "the socket sent nothing"
    );
}

// Scenario 31.
#[test]
fn survey_time_per_context() {
    let (mut sim, surv, _resps) = surveyor_with_respondents(ms(50), 1);
    let first = open::<Surveyor>(&mut sim, surv, 1)[0];
    sim.with_protocol::<Surveyor, _>(surv, |core, _| core.set_survey_time(ms(200)));
    let second = open::<Surveyor>(&mut sim, surv, 1)[0];
    let times = sim.with_protocol::<Surveyor, _>(surv, |core, _| {
        core.set_context_survey_time(first, ms(100)).unwrap();
        (
            core.context_survey_time(first),
            core.context_survey_time(second),
            core.survey_time(),
        )
    });
    assert_eq!(
        times,
        (Ok(ms(100)), Ok(ms(200)), ms(200)),
        "set, inherited, socket"
    );

    send_on::<Surveyor>(&mut sim, surv, first, "q1").unwrap();
    send_on::<Surveyor>(&mut sim, surv, second, "q2").unwrap();
    sim.run_until(ms(99));
    assert_eq!(
        drain_ctx::<Surveyor>(&mut sim, surv, first),
        vec![Bytes::from("a:q1")]
    );
    assert_eq!(
        recv_on::<Surveyor>(&mut sim, surv, first),
        Err(RecvError::WouldBlock)
    );
    sim.run_until(ms(100));
    assert!(
        readable_logged(&sim, surv, first),
        "expiry wakes the context"
    );
    assert_eq!(
        recv_on::<Surveyor>(&mut sim, surv, first),
        Err(RecvError::SurveyExpired)
    );
    assert_eq!(
        recv_on::<Surveyor>(&mut sim, surv, first),
        Err(RecvError::BadState)
    );
    assert_eq!(
        drain_ctx::<Surveyor>(&mut sim, surv, second),
        vec![Bytes::from("a:q2")]
    );
    sim.run_until(ms(200));
    assert_eq!(
        recv_on::<Surveyor>(&mut sim, surv, second),
        Err(RecvError::SurveyExpired)
    );
}

// Scenario 60 on a context: the waiting receive is canceled, only new answers arrive.
#[test]
fn surveyor_context_new_survey_cancels_waiting_recv() {
    let (mut sim, surv, _resps) = surveyor_with_respondents(ms(100), 1);
    let ctx = open::<Surveyor>(&mut sim, surv, 1)[0];
    send_on::<Surveyor>(&mut sim, surv, ctx, "abc").unwrap();
    assert_eq!(
        recv_on::<Surveyor>(&mut sim, surv, ctx),
        Err(RecvError::WouldBlock)
    );
    send_on::<Surveyor>(&mut sim, surv, ctx, "def").unwrap();

    assert_eq!(
        recv_on::<Surveyor>(&mut sim, surv, ctx),
        Err(RecvError::Canceled)
    );
    sim.run_until(ms(50));
    assert_eq!(
        drain_ctx::<Surveyor>(&mut sim, surv, ctx),
        vec![Bytes::from("a:def")]
    );
}

// Scenario 73.
#[test]
fn sub_multi_context() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = sim.add_node("pub", Pub::new(PubConfig::default()), App::Manual);
    let sub = sim.add_node("sub", Sub::new(SubConfig::default()), App::Manual);
    let link = sim.add_link(
        publisher,
        sub,
        LinkConfig {
            capacity: 16,
            ..LinkConfig::default()
        },
    );
    sim.connect(link);
    let ctxs = open::<Sub>(&mut sim, sub, 2);
    sim.with_protocol::<Sub, _>(sub, |core, _| {
        core.subscribe_on(ctxs[0], b"abc").unwrap();
        core.subscribe_on(ctxs[1], b"").unwrap();
        core.subscribe_on(ctxs[1], b"abc").unwrap();
        assert_eq!(
            core.unsubscribe_on(ctxs[0], b"xyz"),
            Err(SubscribeError::UnknownTopic)
        );
    });

    for body in ["abc1", "def", "abc2"] {
        sim.send(publisher, body).unwrap();
    }
    sim.run_until_idle(100);

    assert_eq!(
        drain_ctx::<Sub>(&mut sim, sub, ctxs[0]),
        vec![Bytes::from("abc1"), Bytes::from("abc2")]
    );
    assert_eq!(
        drain_ctx::<Sub>(&mut sim, sub, ctxs[1]),
        vec![Bytes::from("abc1"), Bytes::from("def"), Bytes::from("abc2")],
        "delivered once however many topics match"
    );
    assert_eq!(
        sim.recv(sub),
        Err(RecvError::WouldBlock),
        "the socket subscribed to nothing"
    );
    assert_eq!(
        send_on::<Sub>(&mut sim, sub, ctxs[0], "x"),
        Err(SendError::NotSupported)
    );

    sim.with_protocol::<Sub, _>(sub, |core, now| core.close_context(ctxs[0], now))
        .unwrap();
    assert_eq!(
        sim.with_protocol::<Sub, _>(sub, |core, _| core.subscribe_on(ctxs[0], b"a")),
        Err(SubscribeError::UnknownContext)
    );
}

// Scenario 73: each context's queue holds `recv_buffer` messages, independently.
#[test]
fn sub_context_queues_overflow_independently() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = sim.add_node("pub", Pub::new(PubConfig::default()), App::Manual);
    let config = SubConfig {
        recv_buffer: 2,
        prefer_new: true,
    };
    let sub = sim.add_node("sub", Sub::new(config), App::Manual);
    let link = sim.add_link(publisher, sub, LinkConfig::default());
    sim.connect(link);
    let ctxs = open::<Sub>(&mut sim, sub, 2);
    sim.with_protocol::<Sub, _>(sub, |core, _| {
        core.subscribe_on(ctxs[0], b"").unwrap();
        core.subscribe_on(ctxs[1], b"").unwrap();
    });
    sim.send(publisher, "one").unwrap();
    sim.run_until_idle(100);
    assert_eq!(
        recv_on::<Sub>(&mut sim, sub, ctxs[1]),
        Ok(Bytes::from("one"))
    );
    for body in ["two", "three"] {
        sim.send(publisher, body).unwrap();
        sim.run_until_idle(100);
    }

    assert_eq!(
        drain_ctx::<Sub>(&mut sim, sub, ctxs[0]),
        vec![Bytes::from("two"), Bytes::from("three")],
        "the oldest was dropped"
    );
    assert_eq!(
        drain_ctx::<Sub>(&mut sim, sub, ctxs[1]),
        vec![Bytes::from("two"), Bytes::from("three")]
    );
    let dropped = sim.with_protocol::<Sub, _>(sub, |core, _| {
        (core.context_dropped(ctxs[0]), core.context_dropped(ctxs[1]))
    });
    assert_eq!(dropped, (Ok(1), Ok(0)));
}

// Scenario 35.
#[test]
fn contexts_are_not_supported_where_they_make_no_sense() {
    let now = Instant::now();
    let mut cores: Vec<(&str, Box<dyn Protocol>)> = vec![
        ("pair", Box::new(Pair::new(PairConfig::default()))),
        ("pair1", Box::new(Pair1::new(Pair1Config::default()))),
        ("push", Box::new(Push::new(PushConfig::default()))),
        ("pull", Box::new(Pull::new(PullConfig::default()))),
        ("pub", Box::new(Pub::new(PubConfig::default()))),
        ("bus", Box::new(Bus::new(BusConfig::default()))),
        ("xsub", Box::new(XSub::new(SubConfig::default()))),
        (
            "xsurveyor",
            Box::new(XSurveyor::new(XSurveyorConfig::default())),
        ),
        (
            "xrespondent",
            Box::new(XRespondent::new(XRespondentConfig::default())),
        ),
    ];
    for (name, core) in &mut cores {
        assert_eq!(
            core.open_context(now),
            Err(ContextError::NotSupported),
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With N contexts on each side and replies in any order, every reply reaches exactly the
    /// REQ context that sent its request.
    #[test]
    fn each_reply_reaches_its_own_context(
        (n, order) in (1usize..24).prop_flat_map(|n| {
            (Just(n), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        }),
        seed in any::<u64>(),
    ) {
        for (got, sent) in many_contexts_round(n, &order, seed) {
            prop_assert_eq!(got, Bytes::from([&sent[..], b" answered"].concat()));
        }
    }
}
