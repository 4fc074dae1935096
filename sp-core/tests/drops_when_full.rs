//! `Protocol::drops_when_full` says what a core does with a message received while its receive
//! queue is full: a core that says it drops keeps receiving from the pipe (and counts the
//! loss); one that says it does not pauses the pipe before its queue overflows. A driver
//! relies on it to decide who may deliver a pipe's messages (see the driver's pipe runner).
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

mod common;

use std::time::Instant;

use sp_core::protocol::bus::{Bus, BusConfig, XBus};
use sp_core::protocol::pair::{Pair, PairConfig};
use sp_core::protocol::pair1::{Pair1, Pair1Config, Pair1Poly, XPair1};
use sp_core::protocol::pipeline::{Pull, PullConfig};
use sp_core::protocol::pubsub::{Sub, SubConfig, XSub};
use sp_core::protocol::reqrep::{Rep, RepConfig};
use sp_core::protocol::star::{Star, StarConfig, XStar};
use sp_core::protocol::survey::{Respondent, RespondentConfig, XSurveyor, XSurveyorConfig};
use sp_core::protocol::Protocol;

use common::{add, p, receive};

/// Feeds `core` twice its receive queue's length of `wire` from one pipe, with nobody
/// receiving, and checks what it did against what `drops_when_full` says.
fn check(name: &str, mut core: impl Protocol, wire: &[u8]) {
    let now = Instant::now();
    add(&mut core, 1, now);
    let queue = core.recv_buffer().expect("a receiving core has a queue");
    let mut paused_after = None;
    for n in 1..=2 * queue {
        receive(&mut core, 1, wire, now);
        if !core.is_receiving(p(1)) {
            paused_after = Some(n);
            break;
        }
    }
    let dropped = core.stats().dropped.total();
    if core.drops_when_full() {
        assert_eq!(
            paused_after, None,
            "{name} says it drops, yet paused its pipe"
        );
        assert!(dropped > 0, "{name} says it drops, yet counted no loss");
    } else {
        let n = paused_after.unwrap_or_else(|| panic!("{name} never paused its pipe"));
        assert!(
            n <= queue,
            "{name} paused only after {n} messages, queue {queue}"
        );
        assert_eq!(dropped, 0, "{name} says it pauses, yet dropped");
    }
}

#[test]
fn cores_that_drop_keep_receiving_and_the_others_pause() {
    let hop = [0, 0, 0, 1, b'x'];
    let backtrace = [0x80, 0, 0, 1, b'x'];
    check("PAIR v0", Pair::new(PairConfig::default()), b"x");
    check("PAIR v1", Pair1::new(Pair1Config::default()), &hop);
    check("PAIR v1 raw", XPair1::new(Pair1Config::default()), &hop);
    check("PAIR v1 poly", Pair1Poly::new(Pair1Config::default()), &hop);
    check("PULL", Pull::new(PullConfig::default()), b"x");
    check("REP", Rep::new(RepConfig::default()), &backtrace);
    check(
        "RESPONDENT",
        Respondent::new(RespondentConfig::default()),
        &backtrace,
    );
    check(
        "SURVEYOR raw",
        XSurveyor::new(XSurveyorConfig::default()),
        &backtrace,
    );
    let mut sub = Sub::new(SubConfig::default());
    sub.subscribe(b"");
    check("SUB", sub, b"x");
    check("SUB raw", XSub::new(SubConfig::default()), b"x");
    check("BUS", Bus::new(BusConfig::default()), b"x");
    check("BUS raw", XBus::new(BusConfig::default()), b"x");
    let unrelayed = [0, 0, 0, 0, b'x'];
    check("STAR", Star::new(StarConfig::default()), &unrelayed);
    check("STAR raw", XStar::new(StarConfig::default()), &unrelayed);
}
