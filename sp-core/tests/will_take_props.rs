//! `Protocol::will_take`'s promise, as a property: whatever pipes came, went, filled up and
//! drained before, a core that says it will take a message takes it (`send` returns `Ok`);
//! and the same of `Protocol::will_take_on` for a context's send (`send_on`).
//! A driver relies on it to hand over the message itself instead of a copy: a broken promise
//! would lose the caller's message.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

mod common;

use std::time::Instant;

use proptest::prelude::*;
use sp_core::protocol::bus::{Bus, BusConfig, XBus};
use sp_core::protocol::pair::{Pair, PairConfig, XPair};
use sp_core::protocol::pair1::{Pair1, Pair1Config, XPair1};
use sp_core::protocol::pipeline::{Push, PushConfig, XPush};
use sp_core::protocol::pubsub::{Pub, PubConfig, XPub};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::survey::{Respondent, RespondentConfig, Surveyor, SurveyorConfig};
use sp_core::protocol::{ContextId, Protocol};
use sp_core::Message;

use common::{add, receive, Taken};

/// One step of the driver around the core.
#[derive(Clone, Debug)]
enum Step {
    /// A pipe (1..=3) finishes its handshake.
    Add(u32),
    /// A pipe goes away, handing back what it had not written.
    Remove(u32),
    /// A pipe has room again.
    Writable(u32),
    /// The driver takes what the core emitted (and later reports the pipes writable).
    Drain,
    /// The application sends a message with this header (raw roles read it).
    Send(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..=3).prop_map(Step::Add),
        (1u32..=3).prop_map(Step::Remove),
        (1u32..=3).prop_map(Step::Writable),
        Just(Step::Drain),
        // Headers of 0, 4 and 8 bytes: valid and invalid ones for the raw roles.
        prop_oneof![
            Just(Vec::new()),
            Just(vec![0, 0, 0, 1]),
            Just(vec![0x80, 0, 0, 1]),
            proptest::collection::vec(any::<u8>(), 0..9),
        ]
        .prop_map(Step::Send),
    ]
}

/// Runs `steps` on `core`; fails at the first send that `will_take` promised and `send`
/// refused.
fn check(mut core: impl Protocol, steps: &[Step]) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let mut taken = Taken::default();
    for step in steps {
        match step {
            Step::Add(pipe) => add(&mut core, *pipe, now),
            Step::Remove(pipe) => taken.remove(&mut core, *pipe, now),
            Step::Writable(pipe) => taken.writable(&mut core, *pipe, now),
            Step::Drain => taken.drain(&mut core),
            Step::Send(header) => {
                let msg = Message::with_header(header.clone(), b"body".to_vec());
                if core.will_take(&msg) {
                    let result = core.send(msg, now);
                    prop_assert!(
                        result.is_ok(),
                        "{} said it would take a message and refused it: {result:?}",
                        core.protocol()
                    );
                } else {
                    let _ = core.send(msg, now);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_core_that_will_take_a_message_takes_it(
        steps in proptest::collection::vec(step(), 0..60)
    ) {
        check(Pair::new(PairConfig::default()), &steps)?;
        check(XPair::new(PairConfig::default()), &steps)?;
        check(Pair1::new(Pair1Config::default()), &steps)?;
        check(XPair1::new(Pair1Config::default()), &steps)?;
        check(Push::new(PushConfig::default()), &steps)?;
        check(XPush::new(PushConfig::default()), &steps)?;
        check(Pub::new(PubConfig::default()), &steps)?;
        check(XPub::new(PubConfig::default()), &steps)?;
        check(Bus::new(BusConfig::default()), &steps)?;
        check(XBus::new(BusConfig::default()), &steps)?;
    }
}

/// The roles whose sends are on the hot path say they will take a message when they will:
/// a PUB and a BUS always, PAIR and PUSH while a peer's pipe is writable.
#[test]
fn the_hot_roles_promise_what_they_can() {
    let now = Instant::now();
    let msg = Message::new(b"body".to_vec());
    assert!(Pub::new(PubConfig::default()).will_take(&msg));
    assert!(Bus::new(BusConfig::default()).will_take(&msg));
    let mut pair1 = Pair1::new(Pair1Config::default());
    assert!(!pair1.will_take(&msg), "no peer yet");
    add(&mut pair1, 1, now);
    assert!(pair1.will_take(&msg), "a writable peer");
    pair1
        .send(msg.clone(), now)
        .expect("a send to a writable peer");
    assert!(!pair1.will_take(&msg), "the peer's pipe is busy");
    let mut push = Push::new(PushConfig::default());
    add(&mut push, 1, now);
    assert!(push.will_take(&msg));
}

/// One step of the driver and the application around a core with contexts.
#[derive(Clone, Debug)]
enum CtxStep {
    /// A pipe (1..=2) finishes its handshake.
    Add(u32),
    /// A pipe goes away, handing back what it had not written.
    Remove(u32),
    /// A pipe has room again.
    Writable(u32),
    /// The driver takes what the core emitted.
    Drain,
    /// A request (or survey, or reply) arrives on a pipe under this request ID.
    Arrive(u32, u32),
    /// The application receives on the socket (`None`) or on context 0 or 1.
    Recv(Option<usize>),
    /// The application sends on the socket (`None`) or on context 0 or 1.
    Send(Option<usize>),
    /// The application closes context 0 or 1 and opens a new one in its place.
    Reopen(usize),
}

fn ctx_step() -> impl Strategy<Value = CtxStep> {
    let which = prop_oneof![Just(None), (0usize..2).prop_map(Some)];
    prop_oneof![
        (1u32..=2).prop_map(CtxStep::Add),
        (1u32..=2).prop_map(CtxStep::Remove),
        (1u32..=2).prop_map(CtxStep::Writable),
        Just(CtxStep::Drain),
        // IDs near the ones a REQ or SURVEYOR core issues first, so that some replies match.
        ((1u32..=2), (0u32..4)).prop_map(|(pipe, id)| CtxStep::Arrive(pipe, id)),
        which.clone().prop_map(CtxStep::Recv),
        which.prop_map(CtxStep::Send),
        (0usize..2).prop_map(CtxStep::Reopen),
    ]
}

/// Runs `steps` on `core` with two contexts; fails at the first send that `will_take` or
/// `will_take_on` promised and `send` or `send_on` refused.
fn check_contexts(mut core: impl Protocol, steps: &[CtxStep]) -> Result<(), TestCaseError> {
    let now = Instant::now();
    let mut taken = Taken::default();
    let mut contexts: Vec<ContextId> = (0..2)
        .map(|_| core.open_context(now).expect("a role with contexts"))
        .collect();
    // A REQ or SURVEYOR core issues IDs from a seed; the first request's ID, read off the
    // wire, lets arriving replies match it now and then.
    let mut first_id: Option<u32> = None;
    for step in steps {
        match step {
            CtxStep::Add(pipe) => add(&mut core, *pipe, now),
            CtxStep::Remove(pipe) => taken.remove(&mut core, *pipe, now),
            CtxStep::Writable(pipe) => taken.writable(&mut core, *pipe, now),
            CtxStep::Drain => {
                let before = taken.0.len();
                taken.drain(&mut core);
                if first_id.is_none() {
                    first_id = taken.0[before..].iter().find_map(|tx| {
                        let wire = tx.msg.to_contiguous();
                        wire.get(..4)
                            .map(|id| u32::from_be_bytes(id.try_into().expect("4 bytes")))
                    });
                }
            }
            CtxStep::Arrive(pipe, offset) => {
                let id = first_id.unwrap_or(0x8000_0000).wrapping_add(*offset) | 0x8000_0000;
                let mut wire = id.to_be_bytes().to_vec();
                wire.extend_from_slice(b"body");
                receive(&mut core, *pipe, &wire, now);
            }
            CtxStep::Recv(None) => {
                let _ = core.recv(now);
            }
            CtxStep::Recv(Some(i)) => {
                let _ = core.recv_on(contexts[*i], now);
            }
            CtxStep::Send(which) => {
                let msg = Message::new(b"body".to_vec());
                let (promised, result) = match which {
                    None => {
                        let promised = core.will_take(&msg);
                        (promised, core.send(msg, now))
                    }
                    Some(i) => {
                        let promised = core.will_take_on(contexts[*i], &msg);
                        (promised, core.send_on(contexts[*i], msg, now))
                    }
                };
                prop_assert!(
                    !promised || result.is_ok(),
                    "{} said it would take a message on {which:?} and refused it: {result:?}",
                    core.protocol()
                );
            }
            CtxStep::Reopen(i) => {
                let _ = core.close_context(contexts[*i], now);
                contexts[*i] = core.open_context(now).expect("a role with contexts");
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn a_core_that_will_take_a_message_on_a_context_takes_it(
        steps in proptest::collection::vec(ctx_step(), 0..60)
    ) {
        check_contexts(Req::new(ReqConfig::default()), &steps)?;
        check_contexts(Rep::new(RepConfig::default()), &steps)?;
        check_contexts(Surveyor::new(SurveyorConfig::default()), &steps)?;
        check_contexts(Respondent::new(RespondentConfig::default()), &steps)?;
    }
}

/// The request/reply roles promise what they can: a REQ context always, a REP context once
/// it holds a request whose pipe is idle, and not while that pipe is busy.
#[test]
fn the_request_reply_roles_promise_what_they_can() {
    let now = Instant::now();
    let msg = Message::new(b"body".to_vec());
    let mut req = Req::new(ReqConfig::default());
    let ctx = req.open_context(now).expect("REQ has contexts");
    assert!(
        req.will_take_on(ctx, &msg),
        "a REQ context queues any request"
    );
    assert!(
        !req.will_take(&msg),
        "the socket's own send waits for a pipe"
    );
    add(&mut req, 1, now);
    assert!(req.will_take(&msg), "a writable pipe");

    let mut rep = Rep::new(RepConfig::default());
    let (a, b) = (
        rep.open_context(now).expect("REP has contexts"),
        rep.open_context(now).expect("REP has contexts"),
    );
    assert!(!rep.will_take_on(a, &msg), "nothing to answer");
    add(&mut rep, 1, now);
    receive(&mut rep, 1, &[0x80, 0, 0, 1, b'x'], now);
    receive(&mut rep, 1, &[0x80, 0, 0, 2, b'y'], now);
    rep.recv_on(a, now).expect("the first request");
    rep.recv_on(b, now).expect("the second request");
    assert!(rep.will_take_on(a, &msg), "a request and an idle pipe");
    rep.send_on(a, msg.clone(), now).expect("the first reply");
    assert!(
        !rep.will_take_on(b, &msg),
        "the pipe is busy with the first reply"
    );
    assert!(!rep.will_take_on(a, &msg), "answered already");
}
