//! PUSH and PULL, the pipeline roles (SP-PROTOCOLS.md section 4.5,
//! `rfc/sp-pipeline-01` in nanomsg/nanomsg). Messages carry no header.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::shared::{
    recv_queue_methods, refuse_wrong_peer, PipeSet, RecvQueue, Returned,
};
use crate::protocol::{Event, Input, Protocol, RecvError, SendError, Transmit};
use crate::stats::{CoreStats, DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How many received messages PULL holds before it pauses the pipes that feed it.
pub const DEFAULT_RECV_BUFFER: usize = 128;

/// Settings for [`Push`]. PUSH has no settings yet; the type exists so that adding one is not
/// a breaking change for callers that use `PushConfig::default()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushConfig {}

/// The PUSH role (SP type 80): hands each message to exactly one PULL peer, round-robin.
///
/// Follows SP-PROTOCOLS.md section 4.5. A message goes to the pipe at the front of the ready
/// list, which then turns busy; it rejoins the tail once [`Input::PipeWritable`] reports it
/// idle again. With three idle PULLs, messages 1, 2, 3 go to pull 1, 2, 3.
///
/// ```text
///            send: to the first writable pipe, which turns busy
///  +-------+ ------------------------------------> +---------+
///  | Ready |                                       | Blocked | (no writable pipe:
///  +-------+ <------------------------------------ +---------+  send -> WouldBlock)
///   ^    |   PipeAdded / PipeWritable: Event::Writable
///   +----+ send while another pipe is writable
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than PULL is refused), [`Input::PipeRemoved`]
/// (a message already written to it is lost: pipeline has no end-to-end reliability),
/// [`Input::PipeWritable`], [`Input::Received`] (discarded; the pipe stays),
/// [`Input::Unsent`] (a message the dying pipe never wrote: re-routed, see below).
///
/// **Returned messages.** What a dying pipe hands back unsent goes to the next writable pipe
/// (never the dying one), in the order it came back. While some of it waits for a pipe (none is
/// writable, or none is attached, as NNG's PUSH keeps its send queue with no peer), it goes
/// out first as pipes turn writable or attach, and [`Protocol::send`] returns `WouldBlock`, so
/// a new message never overtakes a returned one. That wait is bounded: only messages the
/// driver still held can come back, and nothing new is taken meanwhile.
///
/// **Events.** [`Event::Writable`] when `send` may succeed again: a pipe becomes writable while
/// none was and no returned message waits; [`Event::ClosePipe`] for a wrong peer.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::Unexpected`] for data a PULL sent,
/// [`DropReason::PipeClosed`] for a message handed back by a pipe PUSH does not know.
/// `send_queued` counts the returned messages waiting for a pipe; otherwise PUSH holds no
/// queue of its own: a message it took is the driver's.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Push {
    pipes: PipeSet,
    /// Messages dying pipes handed back, waiting for a writable pipe.
    returned: Returned,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: DropCounts,
}

/// Raw PUSH: the same as PUSH, which has no header (SP-PROTOCOLS.md section 5.1), but
/// reporting itself raw so that it can be the sending side of a pipeline device.
pub type XPush = crate::protocol::raw::Raw<Push>;

impl Push {
    /// Creates a PUSH socket core with no pipes.
    pub fn new(config: PushConfig) -> Self {
        let PushConfig {} = config;
        Self {
            pipes: PipeSet::default(),
            returned: Returned::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounts::default(),
        }
    }

    /// Returns true when [`Protocol::send`] would take a message now.
    fn can_send(&self) -> bool {
        self.returned.is_empty() && self.pipes.has_writable()
    }
}

impl Protocol for Push {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::PUSH
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let could_send = self.can_send();
        match input {
            Input::PipeAdded { pipe, peer } => {
                if refuse_wrong_peer(self.peer_protocol(), pipe, peer, &mut self.events) {
                    return;
                }
                self.pipes.insert(pipe);
            }
            Input::PipeRemoved { pipe } => {
                self.pipes.remove(pipe);
            }
            Input::PipeWritable { pipe } => {
                self.pipes.set_writable(pipe);
            }
            // NNG and mangos read and discard whatever a PULL sends.
            Input::Received { pipe, .. } => {
                if self.pipes.contains(pipe) {
                    self.drops.record(DropReason::Unexpected);
                }
            }
            Input::Unsent { pipe, msg } => {
                self.returned
                    .take(&mut self.pipes, &mut self.drops, pipe, msg);
            }
        }
        self.returned.flush(&mut self.pipes, &mut self.transmits);
        if !could_send && self.can_send() {
            self.events.push_back(Event::Writable);
        }
    }

    /// Does nothing: PUSH has no timers.
    fn handle_timeout(&mut self, _now: Instant) {}

    #[inline]
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    #[inline]
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe)
    }

    /// Returns true when `send` would take a message now: nothing returned by a closed pipe
    /// waits to go first, and a pipe is writable.
    #[inline]
    fn will_take(&self, _msg: &Message) -> bool {
        self.returned.is_empty() && self.pipes.has_writable()
    }

    /// Queues `msg` for the first pipe on the ready list ([`Message::pipe`] is ignored).
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no pipe is writable, or messages handed back by a dying
    /// pipe still wait for one; retry after [`Event::Writable`].
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        if !self.returned.is_empty() {
            return Err(SendError::WouldBlock);
        }
        let pipe = self.pipes.take_next().ok_or(SendError::WouldBlock)?;
        let msg = msg.with_pipe(None);
        self.transmits.push_back(Transmit { pipe, msg });
        Ok(())
    }

    /// Always fails: PUSH cannot receive.
    ///
    /// # Errors
    /// [`RecvError::NotSupported`].
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        Err(RecvError::NotSupported)
    }

    /// Returns the counters; `send_queued` counts the returned messages waiting for a pipe.
    fn stats(&self) -> CoreStats {
        CoreStats {
            dropped: self.drops,
            send_queued: self.returned.len(),
            ..CoreStats::default()
        }
    }
}

/// Settings for [`Pull`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullConfig {
    /// How many received messages may wait for [`Protocol::recv`] before the pipes feeding
    /// them are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The PULL role (SP type 81): fair-queues messages from every PUSH peer.
///
/// Follows SP-PROTOCOLS.md section 4.5. Messages wait in one FIFO in arrival order. When it
/// holds `recv_buffer` messages, each pipe that delivers another one is paused until the
/// queue drains, so a slow consumer throttles every pusher and none is starved.
///
/// ```text
///             Received (queue below recv_buffer)
///  +-----------+ ----------------------------+
///  | Receiving | <---------------------------+          (per pipe)
///  +-----------+ -----------------------> +--------+
///        ^   Received fills the queue     | Paused |
///        +------------------------------- +--------+
///          recv drains to recv_buffer / 2: Event::ResumeReceiving
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than PUSH is refused), [`Input::PipeRemoved`]
/// (messages already queued stay), [`Input::PipeWritable`] (ignored), [`Input::Received`],
/// [`Input::Unsent`] (PULL sends nothing, but one is counted as [`DropReason::PipeClosed`]).
///
/// **Events.** [`Event::Readable`] when the queue stops being empty;
/// [`Event::ResumeReceiving`]; [`Event::ClosePipe`] for a wrong peer.
///
/// **Counters** ([`Protocol::stats`]): PULL pauses pipes rather than drop, so the only loss is
/// [`DropReason::QueueShrunk`], when [`Protocol::set_recv_buffer`] shrinks the queue (and
/// [`DropReason::PipeClosed`] for an [`Input::Unsent`], which no driver feeds a PULL).
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Pull {
    pipes: PipeSet,
    queue: RecvQueue<Bytes>,
    events: VecDeque<Event>,
    drops: DropCounts,
}

/// Raw PULL: the same as PULL, which has no header (SP-PROTOCOLS.md section 5.1), but
/// reporting itself raw so that it can be the receiving side of a pipeline device.
pub type XPull = crate::protocol::raw::Raw<Pull>;

impl Pull {
    /// Creates a PULL socket core with no pipes.
    pub fn new(config: PullConfig) -> Self {
        Self {
            pipes: PipeSet::default(),
            queue: RecvQueue::new(config.recv_buffer),
            events: VecDeque::new(),
            drops: DropCounts::default(),
        }
    }
}

impl Protocol for Pull {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::PULL
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        match input {
            Input::PipeAdded { pipe, peer } => {
                if refuse_wrong_peer(self.peer_protocol(), pipe, peer, &mut self.events) {
                    return;
                }
                self.pipes.insert(pipe);
            }
            Input::PipeRemoved { pipe } => {
                if self.pipes.remove(pipe) {
                    self.queue.forget_pipe(pipe);
                }
            }
            Input::PipeWritable { .. } => {}
            Input::Received { pipe, msg } => {
                if self.pipes.contains(pipe) && self.queue.push(pipe, msg.into_contiguous()) {
                    self.events.push_back(Event::Readable);
                }
            }
            // PULL never sends, so a driver has nothing to hand back; count it anyway.
            Input::Unsent { .. } => self.drops.record(DropReason::PipeClosed),
        }
    }

    /// Does nothing: PULL has no timers.
    fn handle_timeout(&mut self, _now: Instant) {}

    #[inline]
    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    #[inline]
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe) && !self.queue.is_paused(pipe)
    }

    /// Always fails: PULL cannot send.
    ///
    /// # Errors
    /// [`SendError::NotSupported`].
    fn send(&mut self, _msg: Message, _now: Instant) -> Result<(), SendError> {
        Err(SendError::NotSupported)
    }

    /// Takes the oldest queued message, with [`Message::pipe`] naming the pipe it came from.
    /// May queue [`Event::ResumeReceiving`].
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (pipe, body) = self
            .queue
            .pop(&mut self.events)
            .ok_or(RecvError::WouldBlock)?;
        Ok(Message::new(body).with_pipe(pipe))
    }

    recv_queue_methods!();
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    #[test]
    fn push_round_robins_over_idle_pipes() {
        let now = Instant::now();
        let mut push = Push::new(PushConfig::default());
        for n in 1..=3 {
            push.handle(
                Input::PipeAdded {
                    pipe: p(n),
                    peer: ProtocolId::PULL,
                },
                now,
            );
        }
        assert_eq!(push.poll_event(), Some(Event::Writable));
        assert_eq!(push.poll_event(), None);
        for body in ["one", "two", "three"] {
            push.send(Message::from(body), now).unwrap();
        }
        assert_eq!(
            push.send(Message::from("four"), now),
            Err(SendError::WouldBlock)
        );
        let pipes: Vec<_> = std::iter::from_fn(|| push.poll_transmit())
            .map(|t| t.pipe)
            .collect();
        assert_eq!(pipes, vec![p(1), p(2), p(3)]);
        push.handle(Input::PipeWritable { pipe: p(2) }, now);
        assert_eq!(push.poll_event(), Some(Event::Writable));
        push.send(Message::from("four"), now).unwrap();
        assert_eq!(push.poll_transmit().unwrap().pipe, p(2));
    }

    #[test]
    fn push_recv_is_not_supported_and_pull_send_is_not_supported() {
        let now = Instant::now();
        assert_eq!(
            Push::new(PushConfig::default()).recv(now),
            Err(RecvError::NotSupported)
        );
        let mut pull = Pull::new(PullConfig::default());
        assert_eq!(
            pull.send(Message::from("x"), now),
            Err(SendError::NotSupported)
        );
    }

    #[test]
    fn pull_pauses_pipes_when_queue_is_full() {
        let now = Instant::now();
        let mut pull = Pull::new(PullConfig { recv_buffer: 1 });
        pull.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PUSH,
            },
            now,
        );
        pull.handle(
            Input::Received {
                pipe: p(1),
                msg: Message::from("a"),
            },
            now,
        );
        assert_eq!(pull.poll_event(), Some(Event::Readable));
        assert!(!pull.is_receiving(p(1)));
        assert_eq!(pull.recv(now).unwrap().body, "a");
        assert_eq!(
            pull.poll_event(),
            Some(Event::ResumeReceiving { pipe: p(1) })
        );
        assert!(pull.is_receiving(p(1)));
        assert_eq!(pull.recv(now), Err(RecvError::WouldBlock));
    }
}
