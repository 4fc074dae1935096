//! Core counters ([`Protocol::stats`]): every drop path of every role counted under its exact
//! reason and no other, REQ resends and SURVEYOR timeouts, queue depths, resizable queues and
//! the pipe a received message names ([`Message::pipe`]).
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::bus::{Bus, BusConfig, XBus};
use sp_core::protocol::pair::{Pair, PairConfig, XPair};
use sp_core::protocol::pair1::{Pair1, Pair1Config, Pair1Poly, XPair1};
use sp_core::protocol::pipeline::{Pull, PullConfig, Push, PushConfig, XPull};
use sp_core::protocol::pubsub::{Pub, PubConfig, Sub, SubConfig, XPub, XSub};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::reqrep_raw::{XRep, XRepConfig, XReq, XReqConfig};
use sp_core::protocol::star::{Star, StarConfig, XStar};
use sp_core::protocol::survey::{
    Respondent, RespondentConfig, Surveyor, SurveyorConfig, XRespondent, XRespondentConfig,
    XSurveyor, XSurveyorConfig,
};
use sp_core::protocol::{ConfigError, Event, Input, Protocol, RecvError, Transmit};
use sp_core::sim::{Action, App, LinkConfig, Sim};
use sp_core::stats::{CoreStats, DropReason, MAX_QUEUE_LEN};
use sp_core::Message;

mod common;
use common::*;

const SEED: u64 = 0x5eed_57a7;

/// Receives until `WouldBlock`, keeping the bodies.
fn recv_bodies(proto: &mut impl Protocol, now: Instant) -> Vec<Bytes> {
    std::iter::from_fn(|| proto.recv(now).ok())
        .map(|m| m.body)
        .collect()
}

/// Asserts that `stats` counts exactly `expected` drops (every other reason 0) and that the
/// total is their sum.
#[track_caller]
fn assert_drops(stats: &CoreStats, expected: &[(DropReason, u64)]) {
    for reason in DropReason::ALL {
        let want = expected
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n);
        assert_eq!(
            stats.dropped.get(reason),
            want,
            "{reason} in {:?}",
            stats.dropped
        );
    }
    let sum: u64 = expected.iter().map(|(_, n)| n).sum();
    assert_eq!(stats.dropped.total(), sum, "{:?}", stats.dropped);
}

/// A wire message with a request (or survey) ID `id` in front of `body`.
fn with_id(id: u32, body: &[u8]) -> Vec<u8> {
    let mut wire = (0x8000_0000 | id).to_be_bytes().to_vec();
    wire.extend_from_slice(body);
    wire
}

/// Answers the request or survey `tx` carried with `body`, on the pipe it went out on.
fn answer(proto: &mut impl Protocol, tx: &Transmit, body: &'static str, now: Instant) {
    let msg = Message::with_header(tx.msg.header.clone(), body);
    proto.handle(Input::Received { pipe: tx.pipe, msg }, now);
}

// ---- PUB, PUSH ----

#[test]
fn pub_full_queue_counts_send_queue_full() {
    let now = Instant::now();
    let mut publisher = Pub::new(PubConfig { send_buffer: 2 });
    add(&mut publisher, 1, now);

    for body in ["0", "1", "2", "3", "4"] {
        publisher.send(Message::from(body), now).unwrap();
    }

    let stats = publisher.stats();
    assert_drops(&stats, &[(DropReason::SendQueueFull, 2)]);
    assert_eq!(publisher.dropped(), 2);
    assert_eq!(stats.send_queued, 2);
    assert_eq!(stats.recv_queued, 0);
}

#[test]
fn pub_counts_copies_queued_for_a_closed_pipe_and_data_from_sub() {
    let now = Instant::now();
    let mut publisher = XPub::new(PubConfig::default());
    add(&mut publisher, 1, now);
    add(&mut publisher, 2, now);
    for body in ["a", "b", "c"] {
        publisher.send(Message::from(body), now).unwrap();
    }
    receive(&mut publisher, 2, b"noise", now);

    publisher.handle(Input::PipeRemoved { pipe: p(1) }, now);

    let stats = publisher.stats();
    assert_drops(
        &stats,
        &[(DropReason::PipeClosed, 2), (DropReason::Unexpected, 1)],
    );
    assert_eq!(stats.send_queued, 2, "pipe 2 still holds b and c");
}

#[test]
fn pub_send_with_no_pipe_is_not_a_drop() {
    let now = Instant::now();
    let mut publisher = Pub::new(PubConfig::default());
    publisher.send(Message::from("nobody"), now).unwrap();
    assert_drops(&publisher.stats(), &[]);
}

#[test]
fn push_counts_data_from_pull_as_unexpected() {
    let now = Instant::now();
    let mut push = Push::new(PushConfig::default());
    add(&mut push, 1, now);
    receive(&mut push, 1, b"noise", now);
    receive(
        &mut push,
        9,
        b"unknown pipe: its close accounts for it",
        now,
    );

    assert_drops(&push.stats(), &[(DropReason::Unexpected, 1)]);
}

// ---- SUB, XSUB ----

#[test]
fn sub_counts_messages_matching_no_topic() {
    let now = Instant::now();
    let mut sub = Sub::new(SubConfig::default());
    sub.subscribe(b"a");
    add(&mut sub, 1, now);

    for body in ["a1", "b1", "c1", "a2"] {
        receive(&mut sub, 1, body.as_bytes(), now);
    }

    let stats = sub.stats();
    assert_drops(&stats, &[(DropReason::NoSubscription, 2)]);
    assert_eq!(stats.recv_queued, 2);
    assert_eq!(recv_bodies(&mut sub, now), vec!["a1", "a2"]);
}

#[test]
fn sub_unsubscribe_counts_purged_messages_as_no_subscription() {
    let now = Instant::now();
    let mut sub = Sub::new(SubConfig::default());
    sub.subscribe(b"a");
    sub.subscribe(b"b");
    add(&mut sub, 1, now);
    for body in ["a1", "b1", "a2"] {
        receive(&mut sub, 1, body.as_bytes(), now);
    }

    sub.unsubscribe(b"a").unwrap();

    assert_drops(&sub.stats(), &[(DropReason::NoSubscription, 2)]);
    assert_eq!(sub.dropped(), 0, "dropped() counts full-queue drops only");
    assert_eq!(recv_bodies(&mut sub, now), vec!["b1"]);
}

#[test]
fn sub_full_queue_counts_recv_queue_full_with_either_prefer_new() {
    for (prefer_new, kept) in [(true, ["4", "5"]), (false, ["1", "2"])] {
        let now = Instant::now();
        let mut sub = Sub::new(SubConfig {
            recv_buffer: 2,
            prefer_new,
        });
        sub.subscribe(b"");
        add(&mut sub, 1, now);

        for body in ["1", "2", "3", "4", "5"] {
            receive(&mut sub, 1, body.as_bytes(), now);
        }

        assert_drops(&sub.stats(), &[(DropReason::RecvQueueFull, 3)]);
        assert_eq!(sub.dropped(), 3);
        assert_eq!(recv_bodies(&mut sub, now), kept, "prefer_new {prefer_new}");
    }
}

#[test]
fn sub_prefer_new_changes_while_running() {
    let now = Instant::now();
    let mut sub = Sub::new(SubConfig {
        recv_buffer: 1,
        prefer_new: true,
    });
    sub.subscribe(b"");
    let ctx = sub.open_context(now).unwrap();
    sub.subscribe_on(ctx, b"").unwrap();
    add(&mut sub, 1, now);
    assert!(sub.prefer_new());

    receive(&mut sub, 1, b"1", now);
    receive(&mut sub, 1, b"2", now);
    sub.set_prefer_new(false);
    receive(&mut sub, 1, b"3", now);

    assert!(!sub.prefer_new());
    assert_drops(&sub.stats(), &[(DropReason::RecvQueueFull, 4)]);
    assert_eq!(recv_bodies(&mut sub, now), vec!["2"]);
    assert_eq!(sub.recv_on(ctx, now).unwrap().body, "2");
    assert_eq!(sub.context_dropped(ctx), Ok(2));
}

#[test]
fn xsub_prefer_new_changes_while_running() {
    let now = Instant::now();
    let mut xsub = XSub::new(SubConfig {
        recv_buffer: 1,
        prefer_new: false,
    });
    add(&mut xsub, 1, now);
    receive(&mut xsub, 1, b"1", now);
    receive(&mut xsub, 1, b"2", now);
    xsub.set_prefer_new(true);
    receive(&mut xsub, 1, b"3", now);

    assert!(xsub.prefer_new());
    assert_drops(&xsub.stats(), &[(DropReason::RecvQueueFull, 2)]);
    assert_eq!(xsub.dropped(), 2);
    assert_eq!(recv_bodies(&mut xsub, now), vec!["3"]);
}

#[test]
fn sub_message_only_a_context_wants_is_not_a_no_subscription_drop() {
    let now = Instant::now();
    let mut sub = Sub::new(SubConfig::default());
    let ctx = sub.open_context(now).unwrap();
    sub.subscribe_on(ctx, b"c").unwrap();
    add(&mut sub, 1, now);

    receive(&mut sub, 1, b"c1", now);
    receive(&mut sub, 1, b"x1", now);

    let stats = sub.stats();
    assert_drops(&stats, &[(DropReason::NoSubscription, 1)]);
    assert_eq!(stats.recv_queued, 1);
    let got = sub.recv_on(ctx, now).unwrap();
    assert_eq!((got.body, got.pipe), (Bytes::from("c1"), Some(p(1))));
}

#[test]
fn sub_closing_a_context_counts_its_queued_messages() {
    let now = Instant::now();
    let mut sub = Sub::new(SubConfig::default());
    let ctx = sub.open_context(now).unwrap();
    sub.subscribe_on(ctx, b"").unwrap();
    add(&mut sub, 1, now);
    for body in ["1", "2", "3"] {
        receive(&mut sub, 1, body.as_bytes(), now);
    }
    sub.recv_on(ctx, now).unwrap();

    sub.close_context(ctx, now).unwrap();

    let stats = sub.stats();
    assert_drops(
        &stats,
        &[
            // The socket itself has no topic, so every message matched the context alone.
            (DropReason::ContextClosed, 2),
        ],
    );
    assert_eq!(stats.recv_queued, 0);
}

// ---- TTL ----

#[test]
fn xrep_counts_requests_over_the_ttl() {
    let now = Instant::now();
    let mut xrep = XRep::new(XRepConfig {
        max_ttl: 2,
        ..XRepConfig::default()
    });
    add(&mut xrep, 1, now);
    // Three words: two hops and the request ID.
    receive(&mut xrep, 1, b"\0\0\0\x01\0\0\0\x02\x80\0\0\x01over", now);
    receive(&mut xrep, 1, b"\0\0\0\x01\x80\0\0\x02ok", now);

    assert_drops(&xrep.stats(), &[(DropReason::TtlExceeded, 1)]);
    assert_eq!(recv_bodies(&mut xrep, now), vec!["ok"]);
}

#[test]
fn xrespondent_counts_surveys_over_the_ttl() {
    let now = Instant::now();
    let mut x = XRespondent::new(XRespondentConfig {
        max_ttl: 1,
        ..XRespondentConfig::default()
    });
    add(&mut x, 1, now);
    receive(&mut x, 1, b"\0\0\0\x07\x80\0\0\x01over", now);
    receive(&mut x, 1, b"\0\0\0\x07\0\0\0\x08\x80\0\0\x01over", now);
    receive(&mut x, 1, b"\x80\0\0\x02ok", now);

    assert_drops(&x.stats(), &[(DropReason::TtlExceeded, 2)]);
}

#[test]
fn rep_and_respondent_count_requests_over_the_ttl() {
    let now = Instant::now();
    let mut rep = Rep::new(RepConfig {
        max_ttl: 1,
        ..RepConfig::default()
    });
    let mut resp = Respondent::new(RespondentConfig {
        max_ttl: 1,
        ..RespondentConfig::default()
    });
    add(&mut rep, 1, now);
    add(&mut resp, 1, now);
    receive(&mut rep, 1, b"\0\0\0\x07\x80\0\0\x01over", now);
    receive(&mut resp, 1, b"\0\0\0\x07\x80\0\0\x01over", now);

    assert_drops(&rep.stats(), &[(DropReason::TtlExceeded, 1)]);
    assert_drops(&resp.stats(), &[(DropReason::TtlExceeded, 1)]);
}

#[test]
fn pair1_counts_messages_over_the_ttl_and_not_the_garbage_it_kicks() {
    let now = Instant::now();
    let mut pair = Pair1::new(Pair1Config {
        max_ttl: 3,
        ..Pair1Config::default()
    });
    add(&mut pair, 1, now);
    receive(&mut pair, 1, b"\0\0\0\x04over", now);
    receive(&mut pair, 1, b"\0\0\0\x03ok", now);
    receive(&mut pair, 1, b"\x01", now);

    assert_drops(&pair.stats(), &[(DropReason::TtlExceeded, 1)]);
    assert!(drain_ev(&mut pair).contains(&Event::ClosePipe {
        pipe: p(1),
        reason: sp_core::protocol::PipeCloseReason::MalformedHeader,
    }));
}

#[test]
fn xpair1_and_poly_count_messages_over_the_ttl() {
    let now = Instant::now();
    let config = Pair1Config {
        max_ttl: 2,
        ..Pair1Config::default()
    };
    let mut xpair = XPair1::new(config.clone());
    let mut poly = Pair1Poly::new(config);
    add(&mut xpair, 1, now);
    add(&mut poly, 1, now);
    receive(&mut xpair, 1, b"\0\0\0\x03over", now);
    receive(&mut poly, 1, b"\0\0\0\x03over", now);

    assert_drops(&xpair.stats(), &[(DropReason::TtlExceeded, 1)]);
    assert_drops(&poly.stats(), &[(DropReason::TtlExceeded, 1)]);
}

#[test]
fn star_counts_ttl_and_malformed_headers_on_receive() {
    let now = Instant::now();
    let mut star = Star::new(StarConfig {
        max_ttl: 2,
        ..StarConfig::default()
    });
    add(&mut star, 1, now);
    receive(&mut star, 1, b"\0\0\0\x02at ttl", now);
    receive(&mut star, 1, b"\0\0", now);
    receive(&mut star, 1, b"\x01\0\0\x01reserved", now);
    receive(&mut star, 1, b"\0\0\0\x01ok", now);

    assert_drops(
        &star.stats(),
        &[
            (DropReason::TtlExceeded, 1),
            (DropReason::MalformedHeader, 2),
        ],
    );
    assert_eq!(star.ttl_dropped(), 1);
    assert!(star.is_receiving(p(1)), "STAR keeps the pipe");
}

#[test]
fn xstar_counts_sends_without_a_hop_word() {
    let now = Instant::now();
    let mut xstar = XStar::new(StarConfig::default());
    add(&mut xstar, 1, now);
    for header in [&b""[..], b"\0\0\0", b"\0\0\0\0\0"] {
        xstar.send(Message::with_header(header, "m"), now).unwrap();
    }
    assert_drops(&xstar.stats(), &[(DropReason::MalformedHeader, 3)]);
}

#[test]
fn star_full_queues_count_on_both_sides() {
    let now = Instant::now();
    let mut star = Star::new(StarConfig {
        send_buffer: 1,
        recv_buffer: 1,
        ..StarConfig::default()
    });
    add(&mut star, 1, now);
    add(&mut star, 2, now);
    // Each received message is relayed to the other pipe: 1 written, 1 queued, 1 dropped.
    for _ in 0..3 {
        receive(&mut star, 1, b"\0\0\0\x01m", now);
    }

    let stats = star.stats();
    assert_drops(
        &stats,
        &[
            (DropReason::SendQueueFull, 1),
            (DropReason::RecvQueueFull, 2),
        ],
    );
    assert_eq!((stats.send_queued, stats.recv_queued), (1, 1));
    assert_eq!(star.recv_dropped(), 2);
}

// ---- Raw REP, RESPONDENT routing ----

#[test]
fn xrep_counts_replies_to_gone_pipes_and_without_pipe_word() {
    let now = Instant::now();
    let mut xrep = XRep::new(XRepConfig::default());
    add(&mut xrep, 5, now);
    receive(&mut xrep, 5, b"\x80\0\0\x09hi", now);
    let request = xrep.recv(now).unwrap();

    xrep.handle(Input::PipeRemoved { pipe: p(5) }, now);
    xrep.send(Message::with_header(request.header, "late"), now)
        .unwrap();
    xrep.send(Message::with_header(&b"\0\0"[..], "short"), now)
        .unwrap();
    xrep.send(
        Message::with_header(&b"\x80\0\0\x01"[..], "id, no pipe"),
        now,
    )
    .unwrap();

    assert_drops(
        &xrep.stats(),
        &[(DropReason::NoRoute, 1), (DropReason::MalformedHeader, 2)],
    );
    assert!(drain_tx(&mut xrep).is_empty());
}

#[test]
fn xrespondent_counts_full_pipe_queue_and_closed_pipe() {
    let now = Instant::now();
    let mut x = XRespondent::new(XRespondentConfig::default());
    add(&mut x, 1, now);
    let header = &b"\0\0\0\x01\x80\0\0\x01"[..];
    for _ in 0..5 {
        x.send(Message::with_header(header, "r"), now).unwrap();
    }
    // One written, two queued (XRESPONDENT_PIPE_QUEUE_LEN), two dropped.
    assert_eq!(x.stats().send_queued, 2);

    x.handle(Input::PipeRemoved { pipe: p(1) }, now);

    assert_drops(
        &x.stats(),
        &[(DropReason::SendQueueFull, 2), (DropReason::PipeClosed, 2)],
    );
    assert_eq!(x.dropped_sends(), 2);
}

#[test]
fn rep_reply_to_a_gone_pipe_counts_no_route() {
    let now = Instant::now();
    let mut rep = Rep::new(RepConfig::default());
    add(&mut rep, 1, now);
    receive(&mut rep, 1, b"\x80\0\0\x01q", now);
    rep.recv(now).unwrap();
    rep.handle(Input::PipeRemoved { pipe: p(1) }, now);

    assert_eq!(rep.send(Message::from("a"), now), Ok(()));

    assert_drops(&rep.stats(), &[(DropReason::NoRoute, 1)]);
}

// ---- REQ ----

#[test]
fn req_reply_with_an_old_id_after_a_new_request_is_stale() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig::default());
    add(&mut req, 1, now);
    req.send(Message::from("first"), now).unwrap();
    let first = drain_tx(&mut req).remove(0);
    writable(&mut req, 1, now);
    req.send(Message::from("second"), now).unwrap();
    let second = drain_tx(&mut req).remove(0);

    answer(&mut req, &first, "old", now);
    answer(&mut req, &second, "new", now);
    answer(&mut req, &second, "repeated", now);
    receive(&mut req, 1, &with_id(0x1234, b"unknown"), now);

    assert_drops(&req.stats(), &[(DropReason::StaleReply, 3)]);
    let got = req.recv(now).unwrap();
    assert_eq!((got.body, got.pipe), (Bytes::from("new"), Some(p(1))));
}

#[test]
fn req_unread_reply_replaced_by_a_new_send_is_stale() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig::default());
    add(&mut req, 1, now);
    req.send(Message::from("q"), now).unwrap();
    let tx = drain_tx(&mut req).remove(0);
    writable(&mut req, 1, now);
    answer(&mut req, &tx, "unread", now);
    assert_eq!(req.stats().recv_queued, 1);

    req.send(Message::from("next"), now).unwrap();

    let stats = req.stats();
    assert_drops(&stats, &[(DropReason::StaleReply, 1)]);
    assert_eq!(stats.recv_queued, 0);
}

#[test]
fn req_context_request_replaced_before_any_pipe_took_it() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig::default());
    let ctx = req.open_context(now).unwrap();
    req.send_on(ctx, Message::from("a"), now).unwrap();
    assert_eq!(req.stats().send_queued, 1);

    req.send_on(ctx, Message::from("b"), now).unwrap();
    assert_drops(&req.stats(), &[(DropReason::Replaced, 1)]);

    req.close_context(ctx, now).unwrap();
    let stats = req.stats();
    assert_drops(
        &stats,
        &[(DropReason::Replaced, 1), (DropReason::ContextClosed, 1)],
    );
    assert_eq!(stats.send_queued, 0);
}

#[test]
fn req_closing_a_context_with_an_unread_reply_counts_context_closed() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig::default());
    add(&mut req, 1, now);
    let ctx = req.open_context(now).unwrap();
    req.send_on(ctx, Message::from("q"), now).unwrap();
    let tx = drain_tx(&mut req).remove(0);
    answer(&mut req, &tx, "unread", now);

    req.close_context(ctx, now).unwrap();

    assert_drops(&req.stats(), &[(DropReason::ContextClosed, 1)]);
}

#[test]
fn req_cancelling_a_written_request_is_not_a_drop() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig::default());
    add(&mut req, 1, now);
    let ctx = req.open_context(now).unwrap();
    req.send_on(ctx, Message::from("a"), now).unwrap();
    req.send_on(ctx, Message::from("b"), now).unwrap();
    assert_eq!(drain_tx(&mut req).len(), 1, "a went out, b waits");

    req.close_context(ctx, now).unwrap();

    assert_drops(&req.stats(), &[(DropReason::ContextClosed, 1)]);
}

#[test]
fn req_counts_timer_and_lost_pipe_resends_for_every_context() {
    let mut sim = Sim::new(SEED, Instant::now());
    let req = sim.add_node(
        "req",
        Req::new(ReqConfig {
            resend_interval: Some(ms(100)),
            resend_tick: None,
            seed: 3,
        }),
        App::Manual,
    );
    // A REP that never answers.
    let rep = sim.add_node("rep", Rep::new(RepConfig::default()), App::Manual);
    let link = sim.add_link(req, rep, LinkConfig::default());
    sim.connect(link);
    sim.send(req, "default").unwrap();
    sim.with_protocol(req, |r: &mut Req, now| {
        let ctx = r.open_context(now).unwrap();
        r.send_on(ctx, Message::from("context"), now).unwrap();
    });
    // Timers fire near 100, 200 and 300 ms for each; the reconnect resends both once more.
    sim.at(ms(350), Action::Disconnect(link));
    sim.at(ms(360), Action::Connect(link));
    sim.run_until(ms(400));

    let stats = sim.protocol::<Req>(req).unwrap().stats();
    assert_eq!(stats.resends, 8);
    assert_drops(&stats, &[]);
}

// ---- SURVEYOR ----

fn surveyor(survey_time: Duration) -> Surveyor {
    Surveyor::new(SurveyorConfig {
        survey_time,
        seed: 11,
        ..SurveyorConfig::default()
    })
}

#[test]
fn surveyor_counts_responses_to_replaced_surveys_as_stale() {
    let now = Instant::now();
    let mut surv = surveyor(Duration::from_secs(1));
    add(&mut surv, 1, now);
    surv.send(Message::from("first"), now).unwrap();
    let first = drain_tx(&mut surv).remove(0);
    writable(&mut surv, 1, now);
    answer(&mut surv, &first, "queued", now);

    surv.send(Message::from("second"), now).unwrap();
    let second = drain_tx(&mut surv).remove(0);
    answer(&mut surv, &first, "late", now);
    receive(&mut surv, 1, &with_id(0x4321, b"unknown"), now);
    answer(&mut surv, &second, "fresh", now);

    assert_drops(&surv.stats(), &[(DropReason::StaleReply, 3)]);
    let got = surv.recv(now).unwrap();
    assert_eq!((got.body, got.pipe), (Bytes::from("fresh"), Some(p(1))));
}

#[test]
fn surveyor_counts_unread_and_late_responses_as_survey_expired() {
    let now = Instant::now();
    let deadline = now + ms(10);
    let mut surv = surveyor(ms(10));
    add(&mut surv, 1, now);
    surv.send(Message::from("q"), now).unwrap();
    let tx = drain_tx(&mut surv).remove(0);
    writable(&mut surv, 1, now);
    answer(&mut surv, &tx, "unread", now);
    answer(&mut surv, &tx, "unread too", now);

    surv.handle_timeout(deadline);
    answer(&mut surv, &tx, "late", deadline);
    // A newer survey does not make the expired one's late responses stale.
    surv.send(Message::from("next"), deadline).unwrap();
    answer(&mut surv, &tx, "later", deadline);

    let stats = surv.stats();
    assert_drops(&stats, &[(DropReason::SurveyExpired, 4)]);
    assert_eq!(stats.survey_timeouts, 1);
}

#[test]
fn surveyor_counts_every_survey_timeout_contexts_included() {
    let now = Instant::now();
    let mut surv = surveyor(ms(10));
    add(&mut surv, 1, now);
    let ctx = surv.open_context(now).unwrap();

    surv.send(Message::from("a"), now).unwrap();
    surv.send_on(ctx, Message::from("b"), now).unwrap();
    surv.handle_timeout(now + ms(10));
    // Noticed by a receive rather than the timer.
    surv.send(Message::from("c"), now + ms(10)).unwrap();
    assert_eq!(surv.recv(now + ms(20)), Err(RecvError::SurveyExpired));
    // Replaced before its deadline: not a timeout.
    surv.send_on(ctx, Message::from("d"), now + ms(20)).unwrap();
    surv.send_on(ctx, Message::from("e"), now + ms(25)).unwrap();

    let stats = surv.stats();
    assert_eq!(stats.survey_timeouts, 3);
    assert_drops(&stats, &[]);
}

#[test]
fn surveyor_counts_responses_beyond_its_queue_and_on_closed_contexts() {
    let now = Instant::now();
    let mut surv = Surveyor::new(SurveyorConfig {
        recv_buffer: 2,
        ..SurveyorConfig::default()
    });
    add(&mut surv, 1, now);
    let ctx = surv.open_context(now).unwrap();
    surv.send_on(ctx, Message::from("q"), now).unwrap();
    let tx = drain_tx(&mut surv).remove(0);
    for body in ["1", "2", "3"] {
        answer(&mut surv, &tx, body, now);
    }
    assert_eq!(surv.stats().recv_queued, 2);

    surv.close_context(ctx, now).unwrap();
    answer(&mut surv, &tx, "after close", now);

    assert_drops(
        &surv.stats(),
        &[
            (DropReason::RecvQueueFull, 1),
            (DropReason::ContextClosed, 2),
            (DropReason::StaleReply, 1),
        ],
    );
}

#[test]
fn surveyor_counts_survey_copies_a_full_pipe_queue_drops() {
    let now = Instant::now();
    let mut surv = surveyor(Duration::from_secs(1));
    add(&mut surv, 1, now);
    for _ in 0..12 {
        surv.send(Message::from("q"), now).unwrap();
    }
    // One written, eight queued (SURVEYOR_PIPE_QUEUE_LEN), three dropped.
    let stats = surv.stats();
    assert_drops(&stats, &[(DropReason::SendQueueFull, 3)]);
    assert_eq!(stats.send_queued, 8);
    assert_eq!(surv.dropped_surveys(), 3);
}

// ---- BUS, Pair1Poly ----

#[test]
fn bus_counts_full_queues_on_both_sides() {
    let now = Instant::now();
    let mut bus = Bus::new(BusConfig {
        send_buffer: 1,
        recv_buffer: 1,
    });
    add(&mut bus, 1, now);
    for body in ["a", "b", "c"] {
        bus.send(Message::from(body), now).unwrap();
    }
    receive(&mut bus, 1, b"x", now);
    receive(&mut bus, 1, b"y", now);

    assert_drops(
        &bus.stats(),
        &[
            (DropReason::SendQueueFull, 1),
            (DropReason::RecvQueueFull, 1),
        ],
    );
    assert_eq!((bus.dropped(), bus.recv_dropped()), (1, 1));
}

#[test]
fn poly_counts_sends_without_a_route_and_full_queues() {
    let now = Instant::now();
    let mut poly = Pair1Poly::new(Pair1Config::default());
    poly.send(Message::from("no pipe at all"), now).unwrap();
    add(&mut poly, 1, now);
    poly.send(Message::from("gone").with_pipe(p(9)), now)
        .unwrap();
    for _ in 0..4 {
        poly.send(Message::from("m").with_pipe(p(1)), now).unwrap();
    }

    let stats = poly.stats();
    assert_drops(
        &stats,
        &[(DropReason::NoRoute, 2), (DropReason::SendQueueFull, 1)],
    );
    assert_eq!(stats.send_queued, 2);
    assert_eq!(poly.dropped_sends(), 1);
}

// ---- Resizing queues ----

#[test]
fn shrinking_pull_queue_drops_the_newest_and_growing_resumes_the_pipe() {
    let now = Instant::now();
    let mut pull = Pull::new(PullConfig { recv_buffer: 4 });
    add(&mut pull, 1, now);
    for body in ["1", "2", "3", "4"] {
        receive(&mut pull, 1, body.as_bytes(), now);
    }
    assert!(!pull.is_receiving(p(1)), "full: paused");
    drain_ev(&mut pull);

    pull.set_recv_buffer(2, now).unwrap();
    assert_eq!(pull.recv_buffer(), Some(2));
    assert_drops(&pull.stats(), &[(DropReason::QueueShrunk, 2)]);
    assert!(drain_ev(&mut pull).is_empty(), "still full");
    assert!(!pull.is_receiving(p(1)));

    pull.set_recv_buffer(8, now).unwrap();
    assert_eq!(
        drain_ev(&mut pull),
        vec![Event::ResumeReceiving { pipe: p(1) }]
    );
    assert!(pull.is_receiving(p(1)));
    assert_eq!(recv_bodies(&mut pull, now), vec!["1", "2"]);
    assert_eq!(pull.stats().recv_queued, 0);
}

#[test]
fn growing_rep_queue_resumes_every_paused_pipe() {
    let now = Instant::now();
    let mut rep = Rep::new(RepConfig {
        recv_buffer: 1,
        ..RepConfig::default()
    });
    add(&mut rep, 1, now);
    add(&mut rep, 2, now);
    receive(&mut rep, 1, b"\x80\0\0\x01a", now);
    receive(&mut rep, 2, b"\x80\0\0\x02b", now);
    drain_ev(&mut rep);
    assert!(!rep.is_receiving(p(1)) && !rep.is_receiving(p(2)));

    rep.set_recv_buffer(3, now).unwrap();

    assert_eq!(
        drain_ev(&mut rep),
        vec![
            Event::ResumeReceiving { pipe: p(1) },
            Event::ResumeReceiving { pipe: p(2) },
        ]
    );
    assert_drops(&rep.stats(), &[]);
    assert_eq!(rep.stats().recv_queued, 2);
}

#[test]
fn shrinking_pair_queue_counts_queue_shrunk() {
    let now = Instant::now();
    let mut pair = XPair::new(PairConfig::default());
    add(&mut pair, 1, now);
    for body in ["1", "2", "3"] {
        receive(&mut pair, 1, body.as_bytes(), now);
    }
    pair.set_recv_buffer(0, now).unwrap();

    assert_eq!(pair.recv_buffer(), Some(1), "0 counts as 1");
    assert_drops(&pair.stats(), &[(DropReason::QueueShrunk, 2)]);
    assert_eq!(recv_bodies(&mut pair, now), vec!["1"]);
}

#[test]
fn shrinking_sub_queues_counts_queue_shrunk_for_socket_and_contexts() {
    let now = Instant::now();
    let mut sub = Sub::new(SubConfig::default());
    sub.subscribe(b"");
    let ctx = sub.open_context(now).unwrap();
    sub.subscribe_on(ctx, b"").unwrap();
    add(&mut sub, 1, now);
    for body in ["1", "2", "3"] {
        receive(&mut sub, 1, body.as_bytes(), now);
    }

    sub.set_recv_buffer(1, now).unwrap();
    let later = sub.open_context(now).unwrap();
    sub.subscribe_on(later, b"").unwrap();
    receive(&mut sub, 1, b"4", now);

    let stats = sub.stats();
    // prefer_new: "4" replaces "1" in both old queues; the new context queues it.
    assert_drops(
        &stats,
        &[(DropReason::QueueShrunk, 4), (DropReason::RecvQueueFull, 2)],
    );
    assert_eq!(stats.recv_queued, 3);
    assert_eq!(sub.recv_buffer(), Some(1));
}

#[test]
fn shrinking_send_queues_counts_queue_shrunk() {
    let now = Instant::now();
    let mut publisher = Pub::new(PubConfig::default());
    let mut bus = XBus::new(BusConfig::default());
    add(&mut publisher, 1, now);
    add(&mut bus, 1, now);
    for body in ["0", "1", "2", "3", "4"] {
        publisher.send(Message::from(body), now).unwrap();
        bus.send(Message::from(body), now).unwrap();
    }

    publisher.set_send_buffer(1, now).unwrap();
    bus.set_send_buffer(2, now).unwrap();
    add(&mut publisher, 2, now);
    publisher.send(Message::from("5"), now).unwrap();
    publisher.send(Message::from("6"), now).unwrap();

    assert_eq!(publisher.send_buffer(), Some(1));
    // Pipe 1 drops 1..=3 when shrunk, then 4 and 5 for newer ones; new pipe 2 queues one.
    assert_drops(
        &publisher.stats(),
        &[(DropReason::QueueShrunk, 3), (DropReason::SendQueueFull, 2)],
    );
    assert_eq!(publisher.stats().send_queued, 2);
    assert_drops(&bus.stats(), &[(DropReason::QueueShrunk, 2)]);
    writable(&mut publisher, 1, now);
    let tx = drain_tx(&mut publisher);
    assert_eq!(
        tx.last().map(|t| t.msg.body.clone()),
        Some(Bytes::from("6"))
    );
}

#[test]
fn shrinking_surveyor_queue_counts_queue_shrunk() {
    let now = Instant::now();
    let mut surv = surveyor(Duration::from_secs(1));
    add(&mut surv, 1, now);
    surv.send(Message::from("q"), now).unwrap();
    let tx = drain_tx(&mut surv).remove(0);
    for body in ["1", "2", "3"] {
        answer(&mut surv, &tx, body, now);
    }

    surv.set_recv_buffer(1, now).unwrap();
    answer(&mut surv, &tx, "4", now);

    assert_drops(
        &surv.stats(),
        &[(DropReason::QueueShrunk, 2), (DropReason::RecvQueueFull, 1)],
    );
    assert_eq!(recv_bodies(&mut surv, now), vec!["1"]);
}

#[test]
fn queue_lengths_out_of_range_are_refused_and_leave_the_setting() {
    let now = Instant::now();
    let too_long = MAX_QUEUE_LEN + 1;
    let refused = Err(ConfigError::QueueLenOutOfRange(too_long));
    let mut roles: Vec<Box<dyn Protocol>> = vec![
        Box::new(Pull::new(PullConfig::default())),
        Box::new(XPull::new(PullConfig::default())),
        Box::new(Sub::new(SubConfig::default())),
        Box::new(XSub::new(SubConfig::default())),
        Box::new(Rep::new(RepConfig::default())),
        Box::new(XReq::new(XReqConfig::default())),
        Box::new(XRep::new(XRepConfig::default())),
        Box::new(Surveyor::new(SurveyorConfig::default())),
        Box::new(XSurveyor::new(XSurveyorConfig::default())),
        Box::new(Respondent::new(RespondentConfig::default())),
        Box::new(XRespondent::new(XRespondentConfig::default())),
        Box::new(Pair::new(PairConfig::default())),
        Box::new(Pair1::new(Pair1Config::default())),
        Box::new(XPair1::new(Pair1Config::default())),
        Box::new(Pair1Poly::new(Pair1Config::default())),
        Box::new(Bus::new(BusConfig::default())),
        Box::new(Star::new(StarConfig::default())),
    ];
    for role in &mut roles {
        let before = role.recv_buffer();
        assert!(
            before.is_some(),
            "{:?} has a receive queue",
            role.protocol()
        );
        assert_eq!(role.set_recv_buffer(too_long, now), refused);
        assert_eq!(role.recv_buffer(), before);
        assert_eq!(role.set_recv_buffer(MAX_QUEUE_LEN, now), Ok(()));
        assert_eq!(role.recv_buffer(), Some(MAX_QUEUE_LEN));
    }

    let mut senders: Vec<Box<dyn Protocol>> = vec![
        Box::new(Pub::new(PubConfig::default())),
        Box::new(XPub::new(PubConfig::default())),
        Box::new(Bus::new(BusConfig::default())),
        Box::new(XBus::new(BusConfig::default())),
        Box::new(Star::new(StarConfig::default())),
        Box::new(XStar::new(StarConfig::default())),
        Box::new(Pair1Poly::new(Pair1Config::default())),
    ];
    for role in &mut senders {
        let before = role.send_buffer();
        assert_eq!(role.set_send_buffer(too_long, now), refused);
        assert_eq!(role.send_buffer(), before);
        assert_eq!(role.set_send_buffer(0, now), Ok(()));
        assert_eq!(role.send_buffer(), Some(1));
    }

    let mut push = Push::new(PushConfig::default());
    let mut req = Req::new(ReqConfig::default());
    assert_eq!(push.recv_buffer(), None);
    assert_eq!(push.set_recv_buffer(1, now), Err(ConfigError::NotSupported));
    assert_eq!(req.set_recv_buffer(1, now), Err(ConfigError::NotSupported));
    assert_eq!(push.set_send_buffer(1, now), Err(ConfigError::NotSupported));
}

// ---- Message::pipe on receive ----

/// Feeds `wire` on pipe 7 of `proto` and returns what `recv` gives.
fn received_on_7(mut proto: impl Protocol, wire: &[u8]) -> Message {
    let now = Instant::now();
    add(&mut proto, 7, now);
    receive(&mut proto, 7, wire, now);
    proto.recv(now).expect("the message was queued")
}

#[test]
fn every_receiving_role_names_the_pipe_a_message_came_from() {
    let mut sub = Sub::new(SubConfig::default());
    sub.subscribe(b"");
    let got = [
        (
            "pull",
            received_on_7(Pull::new(PullConfig::default()), b"x"),
        ),
        (
            "xpull",
            received_on_7(XPull::new(PullConfig::default()), b"x"),
        ),
        (
            "pair",
            received_on_7(Pair::new(PairConfig::default()), b"x"),
        ),
        (
            "xpair",
            received_on_7(XPair::new(PairConfig::default()), b"x"),
        ),
        (
            "pair1",
            received_on_7(Pair1::new(Pair1Config::default()), b"\0\0\0\x01x"),
        ),
        (
            "xpair1",
            received_on_7(XPair1::new(Pair1Config::default()), b"\0\0\0\x01x"),
        ),
        (
            "pair1 poly",
            received_on_7(Pair1Poly::new(Pair1Config::default()), b"\0\0\0\x01x"),
        ),
        ("sub", received_on_7(sub, b"x")),
        ("xsub", received_on_7(XSub::new(SubConfig::default()), b"x")),
        ("bus", received_on_7(Bus::new(BusConfig::default()), b"x")),
        ("xbus", received_on_7(XBus::new(BusConfig::default()), b"x")),
        (
            "star",
            received_on_7(Star::new(StarConfig::default()), b"\0\0\0\x01x"),
        ),
        (
            "xstar",
            received_on_7(XStar::new(StarConfig::default()), b"\0\0\0\x01x"),
        ),
        (
            "rep",
            received_on_7(Rep::new(RepConfig::default()), b"\x80\0\0\x01x"),
        ),
        (
            "xrep",
            received_on_7(XRep::new(XRepConfig::default()), b"\x80\0\0\x01x"),
        ),
        (
            "xreq",
            received_on_7(XReq::new(XReqConfig::default()), b"\x80\0\0\x01x"),
        ),
        (
            "respondent",
            received_on_7(
                Respondent::new(RespondentConfig::default()),
                b"\x80\0\0\x01x",
            ),
        ),
        (
            "xrespondent",
            received_on_7(
                XRespondent::new(XRespondentConfig::default()),
                b"\x80\0\0\x01x",
            ),
        ),
        (
            "xsurveyor",
            received_on_7(XSurveyor::new(XSurveyorConfig::default()), b"\x80\0\0\x01x"),
        ),
    ];
    for (role, msg) in got {
        assert_eq!(msg.pipe, Some(p(7)), "{role}");
        assert_eq!(msg.body, "x", "{role}");
    }
}

#[test]
fn req_and_surveyor_name_the_pipe_a_reply_came_from() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig::default());
    let mut surv = surveyor(Duration::from_secs(1));
    for n in [3, 4] {
        add(&mut req, n, now);
        add(&mut surv, n, now);
    }
    let ctx = req.open_context(now).unwrap();
    req.send(Message::from("a"), now).unwrap();
    req.send_on(ctx, Message::from("b"), now).unwrap();
    surv.send(Message::from("s"), now).unwrap();
    let req_tx = drain_tx(&mut req);
    let surv_tx = drain_tx(&mut surv);

    answer(&mut req, &req_tx[0], "ra", now);
    answer(&mut req, &req_tx[1], "rb", now);
    answer(&mut surv, &surv_tx[1], "from 4", now);

    assert_eq!(req.recv(now).unwrap().pipe, Some(req_tx[0].pipe));
    assert_eq!(req.recv_on(ctx, now).unwrap().pipe, Some(req_tx[1].pipe));
    assert_eq!(surv.recv(now).unwrap().pipe, Some(p(4)));
}

#[test]
fn a_device_forwarding_received_messages_does_not_leak_their_pipe() {
    let now = Instant::now();
    let mut xsub = XSub::new(SubConfig::default());
    let mut xpub = XPub::new(PubConfig::default());
    add(&mut xsub, 7, now);
    add(&mut xpub, 1, now);
    receive(&mut xsub, 7, b"news", now);

    let msg = xsub.recv(now).unwrap();
    assert_eq!(msg.pipe, Some(p(7)));
    xpub.send(msg, now).unwrap();

    let tx = drain_tx(&mut xpub);
    assert_eq!(tx.len(), 1);
    assert_eq!((tx[0].pipe, tx[0].msg.pipe), (p(1), None));
}
