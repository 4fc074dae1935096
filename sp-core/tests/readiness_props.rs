//! `Protocol::is_readable` and `Protocol::is_writable` (SP-PROTOCOLS.md scenario 36,
//! "Pollability"), as properties of every role: whatever pipes came, went, filled up and
//! drained, whatever arrived and whatever time passed, a core that says it is writable does
//! not answer the next send with `WouldBlock`, one that says it is not fails that send, and
//! the same for readable and the next receive. A driver parks a task on these answers: a
//! wrong "not ready" would leave it waiting with the operation possible.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

mod common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
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
use sp_core::protocol::{Protocol, RecvError, SendError};
use sp_core::Message;

use common::{add, drain_tx, p, receive, writable, Taken};

/// One step of the driver and the application around the core.
#[derive(Clone, Debug)]
enum Step {
    /// A pipe (1..=3) finishes its handshake.
    Add(u32),
    /// A pipe goes away, handing back what it had not written.
    Remove(u32),
    /// A pipe has room again.
    Writable(u32),
    /// The driver takes what the core emitted.
    Drain,
    /// A message arrives on a pipe: these wire bytes, or (`None`) the last message the core
    /// sent on that pipe echoed back, which is a reply to a request or a survey.
    Receive(u32, Option<Vec<u8>>),
    /// The application sends, with this header (raw roles read it).
    Send(Vec<u8>),
    /// The application receives.
    Recv,
    /// Time passes by this many milliseconds, and the core's timers run.
    Wait(u64),
}

fn header() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(vec![0, 0, 0, 0]),
        Just(vec![0, 0, 0, 1]),
        Just(vec![0x80, 0, 0, 1]),
        proptest::collection::vec(any::<u8>(), 0..9),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..=3).prop_map(Step::Add),
        (1u32..=3).prop_map(Step::Remove),
        (1u32..=3).prop_map(Step::Writable),
        Just(Step::Drain),
        (
            1u32..=3,
            prop_oneof![
                Just(None),
                // A request or survey with a body: a well-formed one for REP and RESPONDENT.
                header().prop_map(|mut h| {
                    h.extend_from_slice(b"wire");
                    Some(h)
                }),
            ]
        )
            .prop_map(|(pipe, wire)| Step::Receive(pipe, wire)),
        header().prop_map(Step::Send),
        Just(Step::Recv),
        (0u64..3000).prop_map(Step::Wait),
    ]
}

/// Runs `steps` on `core`; fails at the first send or receive whose readiness the core
/// misreported.
fn check(mut core: impl Protocol, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut now = Instant::now();
    let mut taken = Taken::default();
    let name = core.protocol();
    for step in steps {
        match step {
            Step::Add(pipe) => add(&mut core, *pipe, now),
            Step::Remove(pipe) => taken.remove(&mut core, *pipe, now),
            Step::Writable(pipe) => taken.writable(&mut core, *pipe, now),
            Step::Drain => taken.drain(&mut core),
            Step::Receive(pipe, wire) => {
                let echo = || {
                    taken
                        .0
                        .iter()
                        .rev()
                        .find(|tx| tx.pipe == p(*pipe))
                        .map(|tx| {
                            let mut wire = tx.msg.header.to_vec();
                            wire.extend_from_slice(&tx.msg.body);
                            wire
                        })
                };
                if let Some(wire) = wire.clone().or_else(echo) {
                    if core.is_receiving(p(*pipe)) {
                        receive(&mut core, *pipe, &wire, now);
                    }
                }
            }
            Step::Send(header) => {
                let ready = core.is_writable();
                let msg = Message::with_header(header.clone(), b"body".to_vec());
                let result = core.send(msg, now);
                if ready {
                    prop_assert!(
                        result != Err(SendError::WouldBlock),
                        "{name} said it was writable and the send would block"
                    );
                } else {
                    prop_assert!(
                        result.is_err(),
                        "{name} said it was not writable and the send went through"
                    );
                }
            }
            Step::Recv => {
                let ready = core.is_readable();
                let result = core.recv(now);
                if ready {
                    prop_assert!(
                        matches!(
                            result,
                            Ok(_) | Err(RecvError::ConnectionReset | RecvError::SurveyExpired)
                        ),
                        "{name} said it was readable and the receive gave {result:?}"
                    );
                } else {
                    prop_assert!(
                        matches!(
                            result,
                            Err(RecvError::WouldBlock
                                | RecvError::BadState
                                | RecvError::NotSupported)
                        ),
                        "{name} said it was not readable and the receive gave {result:?}"
                    );
                }
            }
            Step::Wait(ms) => {
                now += Duration::from_millis(*ms);
                core.handle_timeout(now);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_role_reports_its_readiness_exactly(
        steps in proptest::collection::vec(step(), 0..60)
    ) {
        check(Pair::new(PairConfig::default()), &steps)?;
        check(XPair::new(PairConfig::default()), &steps)?;
        check(Pair1::new(Pair1Config::default()), &steps)?;
        check(XPair1::new(Pair1Config::default()), &steps)?;
        check(Pair1Poly::new(Pair1Config::default()), &steps)?;
        check(Push::new(PushConfig::default()), &steps)?;
        check(XPush::new(PushConfig::default()), &steps)?;
        check(Pull::new(PullConfig::default()), &steps)?;
        check(XPull::new(PullConfig::default()), &steps)?;
        check(Pub::new(PubConfig::default()), &steps)?;
        check(XPub::new(PubConfig::default()), &steps)?;
        let mut sub = Sub::new(SubConfig::default());
        sub.subscribe(b"");
        check(sub, &steps)?;
        check(XSub::new(SubConfig::default()), &steps)?;
        check(Req::new(ReqConfig::default()), &steps)?;
        check(Rep::new(RepConfig::default()), &steps)?;
        check(XReq::new(XReqConfig::default()), &steps)?;
        check(XRep::new(XRepConfig::default()), &steps)?;
        check(Surveyor::new(SurveyorConfig::default()), &steps)?;
        check(Respondent::new(RespondentConfig::default()), &steps)?;
        check(XSurveyor::new(XSurveyorConfig::default()), &steps)?;
        check(XRespondent::new(XRespondentConfig::default()), &steps)?;
        check(Bus::new(BusConfig::default()), &steps)?;
        check(XBus::new(BusConfig::default()), &steps)?;
        check(Star::new(StarConfig::default()), &steps)?;
        check(XStar::new(StarConfig::default()), &steps)?;
    }
}

/// Scenario 36 as NNG's and mangos' tests state it: a REQ is not writable before it
/// connects, is writable afterwards, and stops being writable while its pipe is busy; a PUB
/// is always writable; a SUB becomes readable when a message is queued.
#[test]
fn scenario_36_pollability() {
    let now = Instant::now();
    let mut req = Req::new(ReqConfig::default());
    assert!(!req.is_writable(), "a REQ with no pipe");
    assert!(!req.is_readable(), "a REQ with no request out");
    add(&mut req, 1, now);
    assert!(req.is_writable(), "a REQ with an idle pipe");
    req.send(Message::new(b"ping".to_vec()), now).unwrap();
    assert!(!req.is_writable(), "a REQ whose one pipe is busy");
    let request = drain_tx(&mut req).pop().unwrap();
    assert!(!req.is_readable(), "the reply has not come");
    let mut reply = request.msg.header.to_vec();
    reply.extend_from_slice(b"pong");
    receive(&mut req, 1, &reply, now);
    assert!(req.is_readable(), "the reply came");
    writable(&mut req, 1, now);
    assert!(req.is_writable(), "the pipe is idle again");

    let publisher = Pub::new(PubConfig::default());
    assert!(publisher.is_writable(), "a PUB with no pipe");
    assert!(!publisher.is_readable());

    let mut sub = Sub::new(SubConfig::default());
    sub.subscribe(b"");
    assert!(!sub.is_writable());
    add(&mut sub, 1, now);
    assert!(!sub.is_readable(), "nothing queued");
    receive(&mut sub, 1, b"news", now);
    assert!(sub.is_readable(), "a message queued");
    sub.recv(now).unwrap();
    assert!(!sub.is_readable(), "the queue is empty again");
}
