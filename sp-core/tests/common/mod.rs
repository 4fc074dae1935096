//! Helpers shared by the core-level integration tests (`stats.rs`, `unsent.rs`): driving one
//! core by hand, pipe by pipe.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use sp_core::protocol::{Event, Input, Protocol, Transmit};
use sp_core::{Message, PipeId};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn p(n: u32) -> PipeId {
    PipeId::new(n).expect("tests use valid pipe ids")
}

/// Attaches pipe `pipe` with a peer of the protocol the core expects.
pub fn add(proto: &mut impl Protocol, pipe: u32, now: Instant) {
    let peer = proto.peer_protocol();
    proto.handle(
        Input::PipeAdded {
            pipe: p(pipe),
            peer,
        },
        now,
    );
}

/// Feeds `wire` (header still in the body) as a message received on `pipe`.
pub fn receive(proto: &mut impl Protocol, pipe: u32, wire: &[u8], now: Instant) {
    let msg = Message::new(wire.to_vec());
    proto.handle(Input::Received { pipe: p(pipe), msg }, now);
}

pub fn writable(proto: &mut impl Protocol, pipe: u32, now: Instant) {
    proto.handle(Input::PipeWritable { pipe: p(pipe) }, now);
}

pub fn drain_tx(proto: &mut impl Protocol) -> Vec<Transmit> {
    std::iter::from_fn(|| proto.poll_transmit()).collect()
}

pub fn drain_ev(proto: &mut impl Protocol) -> Vec<Event> {
    std::iter::from_fn(|| proto.poll_event()).collect()
}

/// What a driver took from a core and has not written yet, per pipe: the property tests'
/// model of the per-pipe write queues.
#[derive(Default)]
pub struct Taken(pub Vec<Transmit>);

impl Taken {
    /// Pipe `pipe` goes away: what was taken for it and never written goes back first
    /// ([`Input::Unsent`], in order), then [`Input::PipeRemoved`].
    pub fn remove(&mut self, proto: &mut impl Protocol, pipe: u32, now: Instant) {
        for tx in self.0.iter().filter(|tx| tx.pipe == p(pipe)) {
            proto.handle(
                Input::Unsent {
                    pipe: tx.pipe,
                    msg: tx.msg.clone(),
                },
                now,
            );
        }
        self.0.retain(|tx| tx.pipe != p(pipe));
        proto.handle(Input::PipeRemoved { pipe: p(pipe) }, now);
    }

    /// Pipe `pipe` wrote what it was given and has room again.
    pub fn writable(&mut self, proto: &mut impl Protocol, pipe: u32, now: Instant) {
        self.0.retain(|tx| tx.pipe != p(pipe));
        writable(proto, pipe, now);
    }

    /// Takes what the core emitted, and drops its events.
    pub fn drain(&mut self, proto: &mut impl Protocol) {
        self.0.extend(drain_tx(proto));
        drain_ev(proto);
    }
}
