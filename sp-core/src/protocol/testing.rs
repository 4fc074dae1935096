//! Helpers for the protocol modules' unit tests.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::Instant;

use bytes::Bytes;

use crate::protocol::{Event, Input, Protocol};
use crate::{Message, PipeId, ProtocolId};

/// Returns pipe `n`.
pub(crate) fn p(n: u32) -> PipeId {
    PipeId::new(n).expect("tests use valid pipe ids")
}

/// Attaches pipe `pipe` with a peer announcing `peer`.
pub(crate) fn add(proto: &mut impl Protocol, pipe: u32, peer: ProtocolId) {
    let pipe = p(pipe);
    proto.handle(Input::PipeAdded { pipe, peer }, Instant::now());
}

/// Feeds `body` as a message received on `pipe`.
pub(crate) fn receive(proto: &mut impl Protocol, pipe: u32, body: &'static str) {
    let msg = Message::from(body);
    proto.handle(Input::Received { pipe: p(pipe), msg }, Instant::now());
}

/// Takes every pending transmit as `(pipe, wire bytes)`.
pub(crate) fn drain_tx(proto: &mut impl Protocol) -> Vec<(u32, Bytes)> {
    std::iter::from_fn(|| proto.poll_transmit())
        .map(|t| (t.pipe.get(), t.msg.to_contiguous()))
        .collect()
}

/// Takes every pending event.
pub(crate) fn drain_ev(proto: &mut impl Protocol) -> Vec<Event> {
    std::iter::from_fn(|| proto.poll_event()).collect()
}
