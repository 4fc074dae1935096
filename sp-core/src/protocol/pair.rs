//! PAIR v0, the exclusive one-to-one role (SP-PROTOCOLS.md section 4.1,
//! `rfc/sp-pair-01` in nanomsg/nanomsg). Messages carry no header.

use std::time::Instant;

use crate::protocol::shared::{forward_to_single_peer, Inbound, SinglePeer};
use crate::protocol::{Input, Protocol, SendError};
use crate::{Message, ProtocolId};

/// How many received messages PAIR holds before it pauses its pipe.
pub const DEFAULT_RECV_BUFFER: usize = 128;

/// Settings for [`Pair`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairConfig {
    /// How many received messages may wait for [`Protocol::recv`] before the pipe is paused.
    /// Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for PairConfig {
    fn default() -> Self {
        Self {
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The PAIR v0 role (SP type 16): talks to exactly one PAIR v0 peer at a time.
///
/// Follows SP-PROTOCOLS.md section 4.1. A second pipe that arrives while one is attached is
/// refused with [`PipeCloseReason::Busy`](crate::protocol::PipeCloseReason::Busy); its dialer
/// keeps retrying and takes over once the first peer leaves. Sending applies back-pressure:
/// nothing is ever dropped.
///
/// ```text
///                PipeAdded (a PAIR v0 peer)
///  +----------+ -------------------------> +----------+ --+ PipeAdded:
///  | Detached |                            | Attached |   | ClosePipe(Busy)
///  +----------+ <------------------------- +----------+ <-+
///   send: WouldBlock   PipeRemoved          send: Ok when the pipe is writable,
///                      (queued messages     else WouldBlock
///                       stay for recv)
/// ```
///
/// **Inputs.** [`Input::PipeAdded`], [`Input::PipeRemoved`], [`Input::PipeWritable`] and
/// [`Input::Received`] for the attached pipe; inputs for any other pipe are ignored, except
/// [`Input::Unsent`], counted for any pipe.
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::Writable`] when the pipe becomes writable after a `send` or an `is_writable`
/// found it busy or missing; [`Event::ResumeReceiving`] once the queue drains to half of
/// `recv_buffer`; [`Event::ClosePipe`] for a second or a wrong peer.
///
/// **Counters** ([`Protocol::stats`]): PAIR pauses its pipe rather than drop, so the only
/// losses are [`DropReason::QueueShrunk`](crate::stats::DropReason::QueueShrunk), when
/// [`Protocol::set_recv_buffer`] shrinks the queue below what it holds, and
/// [`DropReason::PipeClosed`](crate::stats::DropReason::PipeClosed) for a message its dying
/// pipe handed back unsent ([`Input::Unsent`]: there is no other peer to take it).
///
/// **Timers.** None.
///
/// [`Event::Readable`]: crate::protocol::Event::Readable
/// [`Event::Writable`]: crate::protocol::Event::Writable
/// [`Event::ResumeReceiving`]: crate::protocol::Event::ResumeReceiving
/// [`Event::ClosePipe`]: crate::protocol::Event::ClosePipe
#[derive(Debug)]
pub struct Pair {
    core: SinglePeer,
}

/// Raw PAIR v0: PAIR v0 has no header, so raw and cooked behave the same (SP-PROTOCOLS.md
/// section 5.1); the raw form only reports itself raw, for devices and reflectors.
pub type XPair = crate::protocol::raw::Raw<Pair>;

impl Pair {
    /// Creates a PAIR v0 socket core with no pipe.
    pub fn new(config: PairConfig) -> Self {
        Self {
            core: SinglePeer::new(ProtocolId::PAIR0, config.recv_buffer),
        }
    }

    /// Returns true while a peer is attached.
    pub fn is_attached(&self) -> bool {
        self.core.is_attached()
    }
}

impl Protocol for Pair {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::PAIR0
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        self.core
            .handle(input, |msg| Inbound::Deliver(msg.into_contiguous()));
    }

    /// Queues `msg` for the peer, header and body as given.
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no peer is attached or its pipe is busy; retry after
    /// [`Event::Writable`](crate::protocol::Event::Writable).
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        self.core.send(msg)
    }

    forward_to_single_peer!();
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::{Event, PipeCloseReason};
    use crate::PipeId;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    #[test]
    fn pair_refuses_second_pipe_and_accepts_it_after_first_leaves() {
        let now = Instant::now();
        let mut pair = Pair::new(PairConfig::default());
        assert!(!pair.is_writable());
        pair.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PAIR0,
            },
            now,
        );
        assert_eq!(pair.poll_event(), Some(Event::Writable));
        pair.handle(
            Input::PipeAdded {
                pipe: p(2),
                peer: ProtocolId::PAIR0,
            },
            now,
        );
        assert_eq!(
            pair.poll_event(),
            Some(Event::ClosePipe {
                pipe: p(2),
                reason: PipeCloseReason::Busy
            })
        );
        pair.handle(Input::PipeRemoved { pipe: p(2) }, now);
        assert!(pair.is_attached());
        pair.handle(Input::PipeRemoved { pipe: p(1) }, now);
        assert!(!pair.is_attached());
        pair.handle(
            Input::PipeAdded {
                pipe: p(2),
                peer: ProtocolId::PAIR0,
            },
            now,
        );
        pair.send(Message::from("x"), now).unwrap();
        assert_eq!(pair.poll_transmit().unwrap().pipe, p(2));
    }

    #[test]
    fn pair_refuses_pair_v1_peer() {
        let now = Instant::now();
        let mut pair = Pair::new(PairConfig::default());
        pair.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PAIR1,
            },
            now,
        );
        let reason = PipeCloseReason::IncompatiblePeer(ProtocolId::PAIR1);
        assert_eq!(
            pair.poll_event(),
            Some(Event::ClosePipe { pipe: p(1), reason })
        );
        assert!(!pair.is_attached());
    }

    #[test]
    fn pair_send_blocks_while_pipe_busy() {
        let now = Instant::now();
        let mut pair = Pair::new(PairConfig::default());
        assert_eq!(
            pair.send(Message::from("x"), now),
            Err(SendError::WouldBlock)
        );
        pair.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PAIR0,
            },
            now,
        );
        pair.send(Message::from("x"), now).unwrap();
        assert_eq!(
            pair.send(Message::from("y"), now),
            Err(SendError::WouldBlock)
        );
        pair.handle(Input::PipeWritable { pipe: p(1) }, now);
        pair.send(Message::from("y"), now).unwrap();
        assert_eq!(std::iter::from_fn(|| pair.poll_transmit()).count(), 2);
    }
}
