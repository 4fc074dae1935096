//! [`Raw`]: the raw form of the roles whose raw and cooked sockets behave the same
//! (SP-PROTOCOLS.md section 5.1): PAIR v0, PUSH, PULL and PUB carry no header, so raw mode
//! changes nothing on the wire or in the queues. What it changes is what the socket reports:
//! [`Protocol::is_raw`] is true, which is what devices check before forwarding.
//!
//! The named raw roles are aliases: [`XPair`](crate::protocol::pair::XPair),
//! [`XPush`](crate::protocol::pipeline::XPush), [`XPull`](crate::protocol::pipeline::XPull)
//! and [`XPub`]. The raw roles with a header of their own (XREQ, XREP, XPAIR1, XSUB,
//! XSURVEYOR, XRESPONDENT, XBUS, XSTAR) are separate types in their protocols' modules.

use std::time::Instant;

use crate::protocol::pair::{Pair, PairConfig};
use crate::protocol::pipeline::{Pull, PullConfig, Push, PushConfig};
use crate::protocol::pubsub::{Pub, PubConfig};
use crate::protocol::{ConfigError, Event, Input, Protocol, RecvError, SendError, Transmit};
use crate::stats::CoreStats;
use crate::{Message, PipeId, ProtocolId};

/// Raw PUB: PUB that reports itself raw, so that it can be the sending side of a PUB/SUB
/// forwarder (an [`XSub`](crate::protocol::pubsub::XSub) facing the publishers, this facing
/// the subscribers).
pub type XPub = Raw<Pub>;

/// A cooked core `P` that reports itself raw and otherwise behaves exactly as `P`.
///
/// Only for roles without a header (see the module docs); every [`Protocol`] method but
/// [`Protocol::is_raw`] forwards to `P` unchanged, so `P`'s docs describe the inputs, events
/// and timers. [`Raw::inner`] reaches `P`'s own methods (drop counters and the like).
#[derive(Debug)]
pub struct Raw<P> {
    inner: P,
}

impl<P: Protocol> Raw<P> {
    /// Wraps a core, which from then on reports itself raw.
    pub fn from_core(inner: P) -> Self {
        Self { inner }
    }

    /// Returns the wrapped core.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Returns the wrapped core, for its settings.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }
}

impl Raw<Pair> {
    /// Creates a raw PAIR v0 core with no pipe.
    pub fn new(config: PairConfig) -> Self {
        Self::from_core(Pair::new(config))
    }
}

impl Raw<Push> {
    /// Creates a raw PUSH core with no pipes.
    pub fn new(config: PushConfig) -> Self {
        Self::from_core(Push::new(config))
    }
}

impl Raw<Pull> {
    /// Creates a raw PULL core with no pipes.
    pub fn new(config: PullConfig) -> Self {
        Self::from_core(Pull::new(config))
    }
}

impl Raw<Pub> {
    /// Creates a raw PUB core with no pipes.
    pub fn new(config: PubConfig) -> Self {
        Self::from_core(Pub::new(config))
    }
}

impl<P: Protocol> Protocol for Raw<P> {
    fn protocol(&self) -> ProtocolId {
        self.inner.protocol()
    }

    /// Returns true: this is the raw form of the wrapped role.
    fn is_raw(&self) -> bool {
        true
    }

    fn peer_protocol(&self) -> ProtocolId {
        self.inner.peer_protocol()
    }

    fn handle(&mut self, input: Input, now: Instant) {
        self.inner.handle(input, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    #[inline]
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.inner.poll_transmit()
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.inner.poll_event()
    }

    #[inline]
    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.inner.is_receiving(pipe)
    }

    fn reads_time(&self) -> bool {
        self.inner.reads_time()
    }

    fn send(&mut self, msg: Message, now: Instant) -> Result<(), SendError> {
        self.inner.send(msg, now)
    }

    fn recv(&mut self, now: Instant) -> Result<Message, RecvError> {
        self.inner.recv(now)
    }

    fn is_readable(&self) -> bool {
        self.inner.is_readable()
    }

    #[inline]
    fn is_writable(&self) -> bool {
        self.inner.is_writable()
    }

    fn stats(&self) -> CoreStats {
        self.inner.stats()
    }

    fn recv_buffer(&self) -> Option<usize> {
        self.inner.recv_buffer()
    }

    fn set_recv_buffer(&mut self, len: usize, now: Instant) -> Result<(), ConfigError> {
        self.inner.set_recv_buffer(len, now)
    }

    fn send_buffer(&self) -> Option<usize> {
        self.inner.send_buffer()
    }

    fn set_send_buffer(&mut self, len: usize, now: Instant) -> Result<(), ConfigError> {
        self.inner.set_send_buffer(len, now)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::pair::XPair;
    use crate::protocol::pipeline::{XPull, XPush};
    use crate::protocol::testing::{add, drain_tx, receive};

    #[test]
    fn raw_wrappers_report_raw_and_behave_as_cooked() {
        let now = Instant::now();
        let mut xpair = XPair::new(PairConfig::default());
        assert!(xpair.is_raw() && !xpair.inner().is_raw());
        add(&mut xpair, 1, ProtocolId::PAIR0);
        xpair
            .send(Message::with_header(&b"h"[..], &b"b"[..]), now)
            .unwrap();
        assert_eq!(drain_tx(&mut xpair), vec![(1, "hb".into())]);
        receive(&mut xpair, 1, "in");
        let pipe = crate::PipeId::new(1).unwrap();
        assert_eq!(
            xpair.recv(now).unwrap(),
            Message::from("in").with_pipe(pipe)
        );

        let xpush = XPush::new(PushConfig::default());
        let xpull = XPull::new(PullConfig::default());
        let xpub = XPub::new(PubConfig::default());
        assert!(xpush.is_raw() && xpull.is_raw() && xpub.is_raw());
        assert_eq!(
            (xpush.peer_protocol(), xpub.protocol()),
            (ProtocolId::PULL, ProtocolId::PUB)
        );
    }
}
