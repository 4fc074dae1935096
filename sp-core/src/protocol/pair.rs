//! PAIR v0, the exclusive one-to-one role (SP-PROTOCOLS.md section 4.1,
//! `rfc/sp-pair-01` in nanomsg/nanomsg). Messages carry no header.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::shared::{PipeSet, RecvQueue};
use crate::protocol::{Event, Input, PipeCloseReason, Protocol, RecvError, SendError, Transmit};
use crate::{Message, PipeId, ProtocolId};

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
/// refused with [`PipeCloseReason::Busy`]; its dialer keeps retrying and takes over once the
/// first peer leaves. Sending applies back-pressure: nothing is ever dropped.
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
/// [`Input::Received`] for the attached pipe; inputs for any other pipe are ignored.
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::Writable`] when the pipe becomes writable; [`Event::ResumeReceiving`] once the
/// queue drains below `recv_buffer`; [`Event::ClosePipe`] for a second or a wrong peer.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Pair {
    /// Holds at most one pipe.
    pipes: PipeSet,
    queue: RecvQueue<Bytes>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Pair {
    /// Creates a PAIR v0 socket core with no pipe.
    pub fn new(config: PairConfig) -> Self {
        Self {
            pipes: PipeSet::default(),
            queue: RecvQueue::new(config.recv_buffer),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Returns true while a peer is attached.
    pub fn is_attached(&self) -> bool {
        !self.pipes.is_empty()
    }
}

impl Protocol for Pair {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::PAIR0
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let was_writable = self.pipes.has_writable();
        match input {
            Input::PipeAdded { pipe, peer } => {
                if peer != self.peer_protocol() {
                    let reason = PipeCloseReason::IncompatiblePeer(peer);
                    self.events.push_back(Event::ClosePipe { pipe, reason });
                } else if self.is_attached() {
                    if !self.pipes.contains(pipe) {
                        let reason = PipeCloseReason::Busy;
                        self.events.push_back(Event::ClosePipe { pipe, reason });
                    }
                } else {
                    self.pipes.insert(pipe);
                }
            }
            Input::PipeRemoved { pipe } => {
                if self.pipes.remove(pipe) {
                    self.queue.forget_pipe(pipe);
                }
            }
            Input::PipeWritable { pipe } => {
                self.pipes.set_writable(pipe);
            }
            Input::Received { pipe, msg } => {
                if self.pipes.contains(pipe) && self.queue.push(pipe, msg.to_contiguous()) {
                    self.events.push_back(Event::Readable);
                }
            }
        }
        if !was_writable && self.pipes.has_writable() {
            self.events.push_back(Event::Writable);
        }
    }

    /// Does nothing: PAIR v0 has no timers.
    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe) && !self.queue.is_paused(pipe)
    }

    /// Queues `msg` for the peer.
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no peer is attached or its pipe is busy; retry after
    /// [`Event::Writable`].
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        let pipe = self.pipes.take_next().ok_or(SendError::WouldBlock)?;
        self.transmits.push_back(Transmit { pipe, msg });
        Ok(())
    }

    /// Takes the oldest queued message. May queue [`Event::ResumeReceiving`].
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (_pipe, body) = self
            .queue
            .pop(&mut self.events)
            .ok_or(RecvError::WouldBlock)?;
        Ok(Message::new(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    #[test]
    fn pair_refuses_second_pipe_and_accepts_it_after_first_leaves() {
        let now = Instant::now();
        let mut pair = Pair::new(PairConfig::default());
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
