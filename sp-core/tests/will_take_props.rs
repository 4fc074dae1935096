//! `Protocol::will_take`'s promise, as a property: whatever pipes came, went, filled up and
//! drained before, a core that says it will take a message takes it (`send` returns `Ok`).
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
use sp_core::protocol::Protocol;
use sp_core::Message;

use common::{add, Taken};

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
