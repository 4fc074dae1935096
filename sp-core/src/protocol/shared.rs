//! Building blocks shared by the protocol state machines: the ordered pipe set with its
//! round-robin ready list, the bounded receive queue that pauses pipes, the one-peer core of
//! the PAIR versions, and the timer table.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::{ConfigError, Event, Input, PipeCloseReason, RecvError, SendError, Transmit};
use crate::{Message, PipeId, ProtocolId};

/// The attached pipes of one socket and which of them can take a message now.
///
/// Writable pipes form a FIFO in the order they became writable. [`PipeSet::take_next`] hands
/// out the front one and marks it busy; [`PipeSet::set_writable`] puts a busy pipe back at the
/// tail. That gives NNG's round-robin over idle pipes (SP-PROTOCOLS.md section 4.5).
///
/// The ready list is lazy: marking a pipe busy or removing it leaves a stale entry behind,
/// recognised by a generation number and skipped later. It is compacted once stale entries
/// dominate, so every operation is amortised `O(log n)`.
#[derive(Debug, Default)]
pub(crate) struct PipeSet {
    /// Attached pipes; the value is the generation of the pipe's ready entry while writable.
    pipes: BTreeMap<PipeId, Option<u64>>,
    /// Ready entries `(pipe, generation)` in the order the pipes became writable.
    ready: VecDeque<(PipeId, u64)>,
    next_gen: u64,
    writable: usize,
}

impl PipeSet {
    /// Returns true when `pipe` is attached.
    pub(crate) fn contains(&self, pipe: PipeId) -> bool {
        self.pipes.contains_key(&pipe)
    }

    /// Attaches `pipe` as writable. Returns false (and changes nothing) if it was attached.
    pub(crate) fn insert(&mut self, pipe: PipeId) -> bool {
        if self.contains(pipe) {
            return false;
        }
        self.pipes.insert(pipe, None);
        self.set_writable(pipe);
        true
    }

    /// Detaches `pipe`. Returns false if it was not attached.
    pub(crate) fn remove(&mut self, pipe: PipeId) -> bool {
        match self.pipes.remove(&pipe) {
            Some(state) => {
                if state.is_some() {
                    self.writable -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Marks an attached pipe writable and queues it at the tail of the ready list.
    ///
    /// Returns true when the pipe was attached and busy. Unknown and already writable pipes
    /// are left alone.
    pub(crate) fn set_writable(&mut self, pipe: PipeId) -> bool {
        let Some(state) = self.pipes.get_mut(&pipe) else {
            return false;
        };
        if state.is_some() {
            return false;
        }
        let generation = self.next_gen;
        self.next_gen += 1;
        *state = Some(generation);
        self.ready.push_back((pipe, generation));
        self.writable += 1;
        self.compact();
        true
    }

    /// Returns true when at least one pipe is writable.
    pub(crate) fn has_writable(&self) -> bool {
        self.writable > 0
    }

    /// Marks the writable pipe that became writable earliest busy, and returns it.
    pub(crate) fn take_next(&mut self) -> Option<PipeId> {
        while let Some((pipe, generation)) = self.ready.pop_front() {
            if let Some(state) = self.pipes.get_mut(&pipe) {
                if *state == Some(generation) {
                    *state = None;
                    self.writable -= 1;
                    return Some(pipe);
                }
            }
        }
        None
    }

    /// Marks `pipe` busy if it is writable. Returns true when it was writable.
    pub(crate) fn take(&mut self, pipe: PipeId) -> bool {
        match self.pipes.get_mut(&pipe) {
            Some(state @ Some(_)) => {
                *state = None;
                self.writable -= 1;
                true
            }
            _ => false,
        }
    }

    /// Returns true when no pipe is attached.
    pub(crate) fn is_empty(&self) -> bool {
        self.pipes.is_empty()
    }

    /// Drops stale ready entries once they outnumber the live ones, keeping the order.
    fn compact(&mut self) {
        if self.ready.len() > 2 * self.writable + 16 {
            let pipes = &self.pipes;
            self.ready
                .retain(|(pipe, generation)| pipes.get(pipe) == Some(&Some(*generation)));
        }
    }
}

/// A bounded FIFO of received items that pauses the pipes feeding it when it fills up.
///
/// When an item arrives and the queue then holds `capacity` items or more, the pipe it came
/// from stops receiving ([`RecvQueue::is_paused`]). Once [`RecvQueue::pop`] brings the queue
/// below `capacity` again, every paused pipe resumes, in the order it was paused, with one
/// [`Event::ResumeReceiving`] each. Items that arrive on a paused pipe anyway (a driver that
/// raced) are still queued: nothing is dropped.
#[derive(Debug)]
pub(crate) struct RecvQueue<T> {
    items: VecDeque<(PipeId, T)>,
    capacity: usize,
    paused: Vec<PipeId>,
}

impl<T> RecvQueue<T> {
    /// Creates a queue that pauses pipes at `capacity` items; 0 counts as 1.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            paused: Vec::new(),
        }
    }

    /// Queues `item` from `pipe`, pausing `pipe` if the queue is now full.
    ///
    /// Returns true when the queue was empty before, i.e. when the owner should emit
    /// [`Event::Readable`].
    pub(crate) fn push(&mut self, pipe: PipeId, item: T) -> bool {
        let was_empty = self.items.is_empty();
        self.items.push_back((pipe, item));
        if self.items.len() >= self.capacity && !self.paused.contains(&pipe) {
            self.paused.push(pipe);
        }
        was_empty
    }

    /// Takes the oldest item and, if the queue drops below capacity, queues a
    /// [`Event::ResumeReceiving`] in `events` for each paused pipe.
    pub(crate) fn pop(&mut self, events: &mut VecDeque<Event>) -> Option<(PipeId, T)> {
        let item = self.items.pop_front()?;
        if self.items.len() < self.capacity {
            events.extend(
                self.paused
                    .drain(..)
                    .map(|pipe| Event::ResumeReceiving { pipe }),
            );
        }
        Some(item)
    }

    /// Returns true when `pipe` was paused and has not been resumed.
    pub(crate) fn is_paused(&self, pipe: PipeId) -> bool {
        self.paused.contains(&pipe)
    }

    /// Forgets a pipe that went away, so it is not resumed later. Its queued items stay.
    pub(crate) fn forget_pipe(&mut self, pipe: PipeId) {
        self.paused.retain(|p| *p != pipe);
    }
}

/// What an exclusive socket does with a message that arrived on its pipe, decided by the
/// protocol's header rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// Queue this body (header already stripped) for the application.
    Deliver(Bytes),
    /// Discard the message and keep the pipe (for example: too many hops).
    Drop,
    /// The message is garbage: close the pipe with [`PipeCloseReason::MalformedHeader`].
    Kick,
}

/// The exclusive one-peer core that PAIR v0 and PAIR v1 share (SP-PROTOCOLS.md sections 4.1
/// and 4.2): at most one pipe, a second one refused with [`PipeCloseReason::Busy`], sends that
/// block while the pipe is busy, and a [`RecvQueue`] that pauses the pipe when full.
///
/// The owner supplies the header rules: [`SinglePeer::handle`] takes a decoder for received
/// bodies, and [`SinglePeer::send`] writes the message exactly as given.
#[derive(Debug)]
pub(crate) struct SinglePeer {
    /// The one protocol a peer must announce.
    peer: ProtocolId,
    /// Holds at most one pipe.
    pipes: PipeSet,
    queue: RecvQueue<Bytes>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl SinglePeer {
    /// Creates a core with no pipe that accepts peers announcing `peer`.
    pub(crate) fn new(peer: ProtocolId, recv_buffer: usize) -> Self {
        Self {
            peer,
            pipes: PipeSet::default(),
            queue: RecvQueue::new(recv_buffer),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Returns true while a peer is attached.
    pub(crate) fn is_attached(&self) -> bool {
        !self.pipes.is_empty()
    }

    /// Applies a pipe input. `decode` sees the body of every message received on the attached
    /// pipe and says what to do with it.
    pub(crate) fn handle(&mut self, input: Input, decode: impl FnOnce(Bytes) -> Inbound) {
        let was_writable = self.pipes.has_writable();
        match input {
            Input::PipeAdded { pipe, peer } => {
                if refuse_wrong_peer(self.peer, pipe, peer, &mut self.events) {
                } else if self.is_attached() {
                    if !self.pipes.contains(pipe) {
                        let reason = PipeCloseReason::Busy;
                        self.events.push_back(Event::ClosePipe { pipe, reason });
                    }
                } else {
                    self.pipes.insert(pipe);
                }
            }
            Input::PipeRemoved { pipe } => self.detach(pipe),
            Input::PipeWritable { pipe } => {
                self.pipes.set_writable(pipe);
            }
            Input::Received { pipe, msg } if self.pipes.contains(pipe) => {
                match decode(msg.to_contiguous()) {
                    Inbound::Deliver(body) => {
                        if self.queue.push(pipe, body) {
                            self.events.push_back(Event::Readable);
                        }
                    }
                    Inbound::Drop => {}
                    Inbound::Kick => {
                        let reason = PipeCloseReason::MalformedHeader;
                        self.events.push_back(Event::ClosePipe { pipe, reason });
                        // Forget it now, so nothing more is sent there and its successor
                        // is not refused as a second peer.
                        self.detach(pipe);
                    }
                }
            }
            Input::Received { .. } => {}
        }
        if !was_writable && self.pipes.has_writable() {
            self.events.push_back(Event::Writable);
        }
    }

    /// Returns the next message to write, if any.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Returns the next event, if any.
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Returns true while `pipe` is the attached pipe and the receive queue has room.
    pub(crate) fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe) && !self.queue.is_paused(pipe)
    }

    /// Queues `msg`, unchanged, for the peer.
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no peer is attached or its pipe is busy.
    pub(crate) fn send(&mut self, msg: Message) -> Result<(), SendError> {
        let pipe = self.pipes.take_next().ok_or(SendError::WouldBlock)?;
        self.transmits.push_back(Transmit { pipe, msg });
        Ok(())
    }

    /// Takes the oldest queued body as a message with an empty header. May queue
    /// [`Event::ResumeReceiving`].
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    pub(crate) fn recv(&mut self) -> Result<Message, RecvError> {
        let (_pipe, body) = self
            .queue
            .pop(&mut self.events)
            .ok_or(RecvError::WouldBlock)?;
        Ok(Message::new(body))
    }

    /// Forgets `pipe` if it is the attached one. Messages it delivered stay queued.
    fn detach(&mut self, pipe: PipeId) {
        if self.pipes.remove(pipe) {
            self.queue.forget_pipe(pipe);
        }
    }
}

/// Writes the [`Protocol`](crate::protocol::Protocol) methods an exclusive socket forwards
/// unchanged to its [`SinglePeer`] field `core`. The caller writes `protocol`, `handle` and
/// `send`, where the versions differ.
macro_rules! forward_to_single_peer {
    () => {
        /// Does nothing: PAIR has no timers.
        fn handle_timeout(&mut self, _now: ::std::time::Instant) {}

        fn poll_transmit(&mut self) -> Option<$crate::protocol::Transmit> {
            self.core.poll_transmit()
        }

        fn poll_event(&mut self) -> Option<$crate::protocol::Event> {
            self.core.poll_event()
        }

        fn poll_timeout(&self) -> Option<::std::time::Instant> {
            None
        }

        fn is_receiving(&self, pipe: $crate::PipeId) -> bool {
            self.core.is_receiving(pipe)
        }

        /// Takes the oldest queued message, header stripped. May queue
        /// [`Event::ResumeReceiving`](crate::protocol::Event::ResumeReceiving).
        ///
        /// # Errors
        /// [`RecvError::WouldBlock`](crate::protocol::RecvError::WouldBlock) when nothing is
        /// queued.
        fn recv(
            &mut self,
            _now: ::std::time::Instant,
        ) -> Result<$crate::Message, $crate::protocol::RecvError> {
            self.core.recv()
        }
    };
}
pub(crate) use forward_to_single_peer;

/// Checks a maximum hop count (TTL) set by the application: `1..=255`.
///
/// # Errors
/// [`ConfigError::MaxTtlOutOfRange`] for 0.
/// Queues a `ClosePipe` for a peer whose protocol is not `expected`. Returns true when the
/// pipe was refused, so that the caller ignores it from then on.
pub(crate) fn refuse_wrong_peer(
    expected: ProtocolId,
    pipe: PipeId,
    peer: ProtocolId,
    events: &mut VecDeque<Event>,
) -> bool {
    if peer == expected {
        return false;
    }
    let reason = PipeCloseReason::IncompatiblePeer(peer);
    events.push_back(Event::ClosePipe { pipe, reason });
    true
}

pub(crate) fn check_max_ttl(max_ttl: u8) -> Result<u8, ConfigError> {
    if max_ttl == 0 {
        return Err(ConfigError::MaxTtlOutOfRange(max_ttl));
    }
    Ok(max_ttl)
}

/// A fixed table of `N` optional deadlines, indexed by a protocol's timer enum.
///
/// [`TimerTable::earliest`] is what `poll_timeout` returns; [`TimerTable::take_expired`] is what
/// `handle_timeout` fires, which makes an early call a no-op.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerTable<const N: usize> {
    deadlines: [Option<Instant>; N],
}

impl<const N: usize> TimerTable<N> {
    /// Creates a table with every timer disarmed.
    pub(crate) const fn new() -> Self {
        Self {
            deadlines: [None; N],
        }
    }

    /// Arms timer `index` at `deadline`, or disarms it with `None`.
    pub(crate) fn set(&mut self, index: usize, deadline: Option<Instant>) {
        self.deadlines[index] = deadline;
    }

    /// Returns the earliest armed deadline.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms timer `index` and returns true if it was armed and due at `now`.
    pub(crate) fn take_expired(&mut self, index: usize, now: Instant) -> bool {
        match self.deadlines[index] {
            Some(deadline) if deadline <= now => {
                self.deadlines[index] = None;
                true
            }
            _ => false,
        }
    }
}

/// Returns `now + interval`, or `None` (never) when that does not fit in an [`Instant`].
pub(crate) fn deadline_after(now: Instant, interval: std::time::Duration) -> Option<Instant> {
    now.checked_add(interval)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use std::time::Duration;

    use super::*;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    #[test]
    fn ready_list_round_robins_in_writable_order() {
        let mut set = PipeSet::default();
        for n in [3, 1, 2] {
            assert!(set.insert(p(n)));
        }
        assert!(!set.insert(p(1)));
        assert_eq!(set.take_next(), Some(p(3)));
        assert_eq!(set.take_next(), Some(p(1)));
        assert!(set.set_writable(p(3)));
        assert!(!set.set_writable(p(3)));
        assert_eq!(set.take_next(), Some(p(2)));
        assert_eq!(set.take_next(), Some(p(3)));
        assert_eq!(set.take_next(), None);
        assert!(!set.has_writable());
    }

    #[test]
    fn ready_list_skips_removed_and_taken_pipes() {
        let mut set = PipeSet::default();
        set.insert(p(1));
        set.insert(p(2));
        set.insert(p(3));
        assert!(set.remove(p(1)));
        assert!(set.take(p(2)));
        assert!(!set.take(p(2)));
        assert!(set.set_writable(p(2)));
        assert_eq!(set.take_next(), Some(p(3)));
        assert_eq!(set.take_next(), Some(p(2)));
        assert!(!set.set_writable(p(1)), "removed pipes stay unknown");
    }

    #[test]
    fn ready_list_compaction_keeps_order() {
        let mut set = PipeSet::default();
        set.insert(p(1));
        set.insert(p(2));
        for _ in 0..100 {
            assert!(set.take(p(1)));
            assert!(set.set_writable(p(1)));
        }
        assert!(set.ready.len() <= 2 * 2 + 16 + 1);
        assert_eq!(set.take_next(), Some(p(2)));
        assert_eq!(set.take_next(), Some(p(1)));
    }

    #[test]
    fn recv_queue_pauses_when_full_and_resumes_in_order() {
        let mut q = RecvQueue::new(2);
        let mut events = VecDeque::new();
        assert!(q.push(p(1), "a"));
        assert!(!q.is_paused(p(1)));
        assert!(!q.push(p(2), "b"));
        assert!(q.is_paused(p(2)));
        q.push(p(1), "c");
        assert!(q.is_paused(p(1)));
        assert_eq!(q.pop(&mut events), Some((p(1), "a")));
        assert!(events.is_empty(), "still at capacity");
        assert_eq!(q.pop(&mut events), Some((p(2), "b")));
        assert_eq!(
            Vec::from(events),
            vec![
                Event::ResumeReceiving { pipe: p(2) },
                Event::ResumeReceiving { pipe: p(1) }
            ]
        );
        assert!(!q.is_paused(p(1)));
    }

    #[test]
    fn recv_queue_with_zero_capacity_holds_one() {
        let mut q = RecvQueue::new(0);
        let mut events = VecDeque::new();
        q.push(p(1), ());
        assert!(q.is_paused(p(1)));
        q.pop(&mut events);
        assert_eq!(
            Vec::from(events),
            vec![Event::ResumeReceiving { pipe: p(1) }]
        );
    }

    #[test]
    fn timer_table_fires_only_when_due() {
        let t0 = Instant::now();
        let mut timers = TimerTable::<2>::new();
        timers.set(0, Some(t0 + Duration::from_secs(2)));
        timers.set(1, Some(t0 + Duration::from_secs(1)));
        assert_eq!(timers.earliest(), Some(t0 + Duration::from_secs(1)));
        assert!(!timers.take_expired(0, t0 + Duration::from_secs(1)));
        assert!(timers.take_expired(1, t0 + Duration::from_secs(1)));
        assert_eq!(timers.earliest(), Some(t0 + Duration::from_secs(2)));
    }
}
