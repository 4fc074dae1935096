//! Building blocks shared by the protocol state machines: the ordered pipe set with its
//! round-robin ready list, the bounded receive queue that pauses pipes, the one-peer core of
//! the PAIR versions with its one-pipe slot.

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::backtrace::{split_backtrace, BacktraceError};
use crate::protocol::{ConfigError, Event, Input, PipeCloseReason, RecvError, SendError, Transmit};
use crate::stats::{CoreStats, DropCounts, DropReason, MAX_QUEUE_LEN};
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

    /// Marks `pipe` busy if it is writable. Returns true when it was writable. Roles use it
    /// to stop choosing a pipe that hands back unsent messages ([`Input::Unsent`]): it is
    /// about to be removed.
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

    /// Drops stale ready entries once they outnumber the live ones, keeping the order.
    fn compact(&mut self) {
        if self.ready.len() > 2 * self.writable + 16 {
            let pipes = &self.pipes;
            self.ready
                .retain(|(pipe, generation)| pipes.get(pipe) == Some(&Some(*generation)));
        }
    }
}

/// The messages that dying pipes handed back unsent ([`Input::Unsent`]) to a round-robin role
/// (PUSH, XREQ), oldest first, waiting for another pipe to turn writable.
///
/// They go out before any new send: the owner refuses new messages with `WouldBlock` while
/// this is not empty ([`Returned::is_empty`]) and calls [`Returned::flush`] whenever a pipe may
/// have turned writable. It is bounded without a limit of its own: only what the driver still
/// held can come back, and nothing new is taken while it waits.
#[derive(Debug, Default)]
pub(crate) struct Returned {
    queue: VecDeque<Message>,
}

impl Returned {
    /// Takes a message `pipe` handed back: `pipe` is about to be removed, so it turns busy (no
    /// message goes back to it) and the message joins the tail of the queue. A pipe not in
    /// `pipes` has nothing to hand back; its message is counted in `drops` as
    /// [`DropReason::PipeClosed`].
    pub(crate) fn take(
        &mut self,
        pipes: &mut PipeSet,
        drops: &mut DropCounts,
        pipe: PipeId,
        msg: Message,
    ) {
        if !pipes.contains(pipe) {
            drops.record(DropReason::PipeClosed);
            return;
        }
        pipes.take(pipe);
        self.queue.push_back(msg.with_pipe(None));
    }

    /// Writes the waiting messages, oldest first, to writable pipes taken round-robin from
    /// `pipes`, while both last.
    pub(crate) fn flush(&mut self, pipes: &mut PipeSet, transmits: &mut VecDeque<Transmit>) {
        while !self.queue.is_empty() {
            let Some(pipe) = pipes.take_next() else {
                return;
            };
            if let Some(msg) = self.queue.pop_front() {
                transmits.push_back(Transmit { pipe, msg });
            }
        }
    }

    /// Returns true when no returned message waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Returns how many returned messages wait.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// A bounded FIFO of received items that pauses the pipes feeding it when it fills up.
///
/// When an item arrives and the queue then holds `capacity` items or more, the pipe it came
/// from stops receiving ([`RecvQueue::is_paused`]). Once [`RecvQueue::pop`] brings the queue
/// down to half its capacity, every paused pipe resumes, in the order it was paused, with one
/// [`Event::ResumeReceiving`] each. Items that arrive on a paused pipe anyway (a driver that
/// raced) are still queued: nothing is dropped.
///
/// Why half, not one below full: a pipe resumed at `capacity - 1` delivers one item and
/// pauses again, so an application slower than its peer pays a pause and a resume (a driver
/// task woken, a lock taken) per item. Resumed at half, the pipe delivers up to half the
/// queue in one batch. Memory stays bounded by `capacity` either way.
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

    /// Takes the oldest item and, if the queue drops to half its capacity, queues a
    /// [`Event::ResumeReceiving`] in `events` for each paused pipe.
    pub(crate) fn pop(&mut self, events: &mut VecDeque<Event>) -> Option<(PipeId, T)> {
        let item = self.items.pop_front()?;
        if !self.paused.is_empty() && self.items.len() <= self.capacity / 2 {
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

    /// Returns how many items are queued.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Returns the capacity at which pipes are paused (at least 1).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity (0 counts as 1) and returns how many items were discarded: the
    /// newest ones beyond the new capacity, so what the application receives next is what it
    /// would have received anyway. When the queue is below the new capacity, every paused pipe
    /// resumes with an [`Event::ResumeReceiving`] in `events`, as after a [`RecvQueue::pop`].
    fn set_capacity(&mut self, capacity: usize, events: &mut VecDeque<Event>) -> usize {
        self.capacity = capacity.max(1);
        let excess = self.items.len().saturating_sub(self.capacity);
        self.items.truncate(self.capacity);
        if self.items.len() < self.capacity {
            events.extend(
                self.paused
                    .drain(..)
                    .map(|pipe| Event::ResumeReceiving { pipe }),
            );
        }
        excess
    }

    /// Applies a `recv-buffer` the application set: checks `len` ([`check_queue_len`]),
    /// resizes ([`RecvQueue::set_capacity`], resumes going to `events`) and counts the
    /// discarded items in `drops` as [`DropReason::QueueShrunk`].
    ///
    /// Every role with a pausing receive queue resizes through here, so that the range check,
    /// the resumes and the count cannot drift apart between roles.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`]; nothing changes then.
    pub(crate) fn resize(
        &mut self,
        len: usize,
        events: &mut VecDeque<Event>,
        drops: &mut DropCounts,
    ) -> Result<(), ConfigError> {
        let shrunk = self.set_capacity(check_queue_len(len)?, events);
        drops.add(DropReason::QueueShrunk, shrunk as u64);
        Ok(())
    }
}

/// What an exclusive socket does with a message that arrived on its pipe, decided by the
/// protocol's header rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// Queue this body (header already stripped) for the application.
    Deliver(Bytes),
    /// Discard the message, counted for this reason, and keep the pipe (for example: too many
    /// hops).
    Drop(DropReason),
    /// The message is garbage: close the pipe with [`PipeCloseReason::MalformedHeader`].
    Kick,
}

/// The one pipe of a [`SinglePeer`] and whether it can take a message now: the part of
/// [`PipeSet`] that a core holding at most one pipe uses.
///
/// Why not a `PipeSet`: its map and lazy ready list cost a sending PAIR a map search, a ready
/// entry and a generation per message, as the pipe turns busy with each send and writable
/// again as soon as the driver has queued it (`Input::PipeWritable`).
#[derive(Debug, Default, Clone, Copy)]
struct OnePipe {
    attached: Option<PipeId>,
    writable: bool,
}

impl OnePipe {
    fn contains(&self, pipe: PipeId) -> bool {
        self.attached == Some(pipe)
    }

    fn is_empty(&self) -> bool {
        self.attached.is_none()
    }

    /// Attaches `pipe` as writable; the caller checks that none is attached.
    fn insert(&mut self, pipe: PipeId) {
        self.attached = Some(pipe);
        self.writable = true;
    }

    /// Detaches `pipe`. Returns false if it was not the attached one.
    fn remove(&mut self, pipe: PipeId) -> bool {
        if !self.contains(pipe) {
            return false;
        }
        self.attached = None;
        self.writable = false;
        true
    }

    /// Marks the attached `pipe` writable; another pipe is left alone.
    fn set_writable(&mut self, pipe: PipeId) {
        if self.contains(pipe) {
            self.writable = true;
        }
    }

    /// Marks the attached `pipe` busy, as a send to it does.
    fn take(&mut self, pipe: PipeId) {
        if self.contains(pipe) {
            self.writable = false;
        }
    }

    fn has_writable(&self) -> bool {
        self.writable
    }

    /// The attached pipe, marked busy, if it was writable.
    fn take_next(&mut self) -> Option<PipeId> {
        if !self.writable {
            return None;
        }
        self.writable = false;
        self.attached
    }
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
    pipes: OnePipe,
    queue: RecvQueue<Bytes>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: DropCounts,
    /// A caller found the socket not writable (a send refused, or [`SinglePeer::will_take`]
    /// said no) since the last [`Event::Writable`]: only then does the pipe turning writable
    /// queue one. A `Cell` because `will_take` is how `Protocol::is_writable` asks.
    ///
    /// Why: each send makes the pipe busy until the driver has queued the message, so a
    /// sending loop turned it writable again once per message, and each time an event went
    /// through the queue to a driver that had no sender waiting for it.
    writable_wanted: Cell<bool>,
}

impl SinglePeer {
    /// Creates a core with no pipe that accepts peers announcing `peer`.
    pub(crate) fn new(peer: ProtocolId, recv_buffer: usize) -> Self {
        Self {
            peer,
            pipes: OnePipe::default(),
            queue: RecvQueue::new(recv_buffer),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounts::default(),
            writable_wanted: Cell::new(false),
        }
    }

    /// Returns true while a peer is attached.
    pub(crate) fn is_attached(&self) -> bool {
        !self.pipes.is_empty()
    }

    /// Applies a pipe input. `decode` sees every message received on the attached pipe (its
    /// wire bytes are header then body; see [`Input::Received`]) and says what to do with it.
    pub(crate) fn handle(&mut self, input: Input, decode: impl FnOnce(Message) -> Inbound) {
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
            // The one peer is the only pipe there is: nowhere else to send it.
            Input::Unsent { pipe, .. } => {
                self.pipes.take(pipe);
                self.drops.record(DropReason::PipeClosed);
            }
            Input::Received { pipe, msg } if self.pipes.contains(pipe) => {
                match decode(msg) {
                    Inbound::Deliver(body) => {
                        if self.queue.push(pipe, body) {
                            self.events.push_back(Event::Readable);
                        }
                    }
                    Inbound::Drop(reason) => self.drops.record(reason),
                    Inbound::Kick => {
                        let reason = PipeCloseReason::MalformedHeader;
                        self.events.push_back(Event::ClosePipe { pipe, reason });
                        // Forget it now, so nothing more is sent there and its successor
                        // is not refused as a second peer.
                        self.detach(pipe);
                    }
                }
            }
            // A pipe refused as a second peer, or already kicked: its close accounts for it.
            Input::Received { .. } => {}
        }
        if !was_writable && self.pipes.has_writable() && self.writable_wanted.replace(false) {
            self.events.push_back(Event::Writable);
        }
    }

    /// Returns the next message to write, if any.
    #[inline]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Returns the next event, if any.
    #[inline]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Returns true while `pipe` is the attached pipe and the receive queue has room.
    #[inline]
    pub(crate) fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe) && !self.queue.is_paused(pipe)
    }

    /// Returns true when [`SinglePeer::send`] would take a message now: the peer's pipe is
    /// writable. A no asks for the [`Event::Writable`] that ends it.
    #[inline]
    pub(crate) fn will_take(&self) -> bool {
        let writable = self.pipes.has_writable();
        if !writable {
            self.writable_wanted.set(true);
        }
        writable
    }

    /// Queues `msg`'s header and body, unchanged, for the peer (its [`Message::pipe`] is
    /// ignored: there is only one peer).
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no peer is attached or its pipe is busy.
    pub(crate) fn send(&mut self, msg: Message) -> Result<(), SendError> {
        let Some(pipe) = self.pipes.take_next() else {
            self.writable_wanted.set(true);
            return Err(SendError::WouldBlock);
        };
        let msg = msg.with_pipe(None);
        self.transmits.push_back(Transmit { pipe, msg });
        Ok(())
    }

    /// Takes the oldest queued body as a message with an empty header and [`Message::pipe`]
    /// naming the pipe it came from. May queue [`Event::ResumeReceiving`].
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    pub(crate) fn recv(&mut self) -> Result<Message, RecvError> {
        let (pipe, body) = self
            .queue
            .pop(&mut self.events)
            .ok_or(RecvError::WouldBlock)?;
        Ok(Message::new(body).with_pipe(pipe))
    }

    /// Returns the receive queue length.
    pub(crate) fn recv_buffer(&self) -> usize {
        self.queue.capacity()
    }

    /// Resizes the receive queue; see [`Protocol::set_recv_buffer`](crate::protocol::Protocol::set_recv_buffer).
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`].
    pub(crate) fn set_recv_buffer(&mut self, len: usize) -> Result<(), ConfigError> {
        self.queue.resize(len, &mut self.events, &mut self.drops)
    }

    /// Returns the counters: drops by the header rules and by resizing, and the queue depth.
    pub(crate) fn stats(&self) -> CoreStats {
        CoreStats {
            dropped: self.drops,
            recv_queued: self.queue.len(),
            ..CoreStats::default()
        }
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
        $crate::protocol::shared::forward_to_core!();
        $crate::protocol::shared::forward_queue_to_core!();

        /// Returns true while the peer's pipe is writable: `send` then fails for no message.
        #[inline]
        fn will_take(&self, _msg: &$crate::Message) -> bool {
            self.core.will_take()
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

/// Writes the counter and receive-queue [`Protocol`](crate::protocol::Protocol) methods of a
/// role whose field `core` keeps its counters and its pausing receive queue: a [`SinglePeer`]
/// (PAIR v0, PAIR v1) or a [`BacktraceCore`] (XREP, XRESPONDENT, XSURVEYOR). The core has
/// `stats`, `recv_buffer` and `set_recv_buffer` methods of those names.
macro_rules! forward_queue_to_core {
    () => {
        fn stats(&self) -> $crate::stats::CoreStats {
            self.core.stats()
        }

        fn recv_buffer(&self) -> Option<usize> {
            Some(self.core.recv_buffer())
        }

        /// Resizes the receive queue. Shrinking drops the newest messages beyond the new
        /// length; growing resumes any pipe paused by a full queue.
        ///
        /// # Errors
        /// [`ConfigError::QueueLenOutOfRange`](crate::protocol::ConfigError::QueueLenOutOfRange)
        /// above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
        fn set_recv_buffer(
            &mut self,
            len: usize,
            _now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::ConfigError> {
            self.core.set_recv_buffer(len)
        }
    };
}
pub(crate) use forward_queue_to_core;

/// Writes the counter and receive-queue [`Protocol`](crate::protocol::Protocol) methods of a
/// role that keeps its pausing receive queue in its own fields `queue` (a [`RecvQueue`]),
/// `events` (a `VecDeque<Event>`, where resumes go) and `drops` (its [`DropCounts`]), and no
/// send queue: PULL. `recv_queue_methods!(no_stats)` leaves `stats` to the caller (XREQ, which
/// also reports the messages handed back by dying pipes).
macro_rules! recv_queue_methods {
    () => {
        fn stats(&self) -> $crate::stats::CoreStats {
            $crate::stats::CoreStats {
                dropped: self.drops,
                recv_queued: self.queue.len(),
                ..$crate::stats::CoreStats::default()
            }
        }

        $crate::protocol::shared::recv_queue_methods!(no_stats);
    };
    (no_stats) => {
        fn recv_buffer(&self) -> Option<usize> {
            Some(self.queue.capacity())
        }

        /// Resizes the receive queue. Shrinking drops the newest messages beyond the new
        /// length; growing resumes the pipes paused by a full queue.
        ///
        /// # Errors
        /// [`ConfigError::QueueLenOutOfRange`](crate::protocol::ConfigError::QueueLenOutOfRange)
        /// above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
        fn set_recv_buffer(
            &mut self,
            len: usize,
            _now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::ConfigError> {
            self.queue.resize(len, &mut self.events, &mut self.drops)
        }
    };
}
pub(crate) use recv_queue_methods;

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

/// Checks a maximum hop count (TTL) set by the application: `1..=255`.
///
/// # Errors
/// [`ConfigError::MaxTtlOutOfRange`] for 0.
pub(crate) fn check_max_ttl(max_ttl: u8) -> Result<u8, ConfigError> {
    if max_ttl == 0 {
        return Err(ConfigError::MaxTtlOutOfRange(max_ttl));
    }
    Ok(max_ttl)
}

/// Checks a queue length set by the application, `0..=`[`MAX_QUEUE_LEN`] as NNG's
/// `recv-buffer` and `send-buffer`, and returns the capacity it stands for (0 counts as 1).
///
/// # Errors
/// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`].
pub(crate) fn check_queue_len(len: usize) -> Result<usize, ConfigError> {
    if len > MAX_QUEUE_LEN {
        return Err(ConfigError::QueueLenOutOfRange(len));
    }
    Ok(len.max(1))
}

/// Returns `now + interval`, or `None` (never) when that does not fit in an [`Instant`].
pub(crate) fn deadline_after(now: Instant, interval: std::time::Duration) -> Option<Instant> {
    now.checked_add(interval)
}

/// Which item a full [`DropQueue`] gives up to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Discard the oldest queued item and queue the new one (NNG's PUB, SUB with prefer-new).
    DropOldest,
    /// Discard the new item (NNG's BUS, SUB without prefer-new).
    DropNewest,
}

/// What [`DropQueue::push`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued into an empty queue: a receiving owner emits [`Event::Readable`].
    First,
    /// Queued behind other items.
    Queued,
    /// The queue was full, so one item (the oldest or the new one, per [`Overflow`]) was
    /// discarded and counted.
    Dropped,
}

/// A bounded FIFO that never pushes back: when full it discards by its [`Overflow`] rule and
/// counts the loss. It is the lossy counterpart of [`RecvQueue`] for the roles that must neither
/// block a sender nor pause a pipe (PUB, SUB, BUS).
///
/// Its own counter only serves per-queue figures ([`Pub::dropped_on`] and the like); the owner
/// counts each [`Pushed::Dropped`] in its [`DropCounts`] with the reason that fits the queue.
///
/// [`Pub::dropped_on`]: crate::protocol::pubsub::Pub::dropped_on
#[derive(Debug)]
pub(crate) struct DropQueue<T> {
    items: VecDeque<T>,
    capacity: usize,
    overflow: Overflow,
    dropped: u64,
}

impl<T> DropQueue<T> {
    /// Creates a queue holding at most `capacity` items; 0 counts as 1.
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        Self {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            overflow,
            dropped: 0,
        }
    }

    /// Queues `item`, discarding one item first if the queue is full.
    pub(crate) fn push(&mut self, item: T) -> Pushed {
        if self.items.len() < self.capacity {
            let was_empty = self.items.is_empty();
            self.items.push_back(item);
            return if was_empty {
                Pushed::First
            } else {
                Pushed::Queued
            };
        }
        self.dropped += 1;
        if self.overflow == Overflow::DropOldest {
            self.items.pop_front();
            self.items.push_back(item);
        }
        Pushed::Dropped
    }

    /// Takes the oldest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// Keeps only the items for which `keep` returns true, in order, and returns how many were
    /// removed. They are not counted in [`DropQueue::dropped`]; the owner counts them.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) -> usize {
        let before = self.items.len();
        self.items.retain(keep);
        before - self.items.len()
    }

    /// Returns how many items a full queue has discarded so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Returns how many items are queued.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Returns the most items the queue holds (at least 1).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Changes the capacity (0 counts as 1) and returns how many items were discarded: the
    /// newest ones beyond the new capacity. They are not counted in [`DropQueue::dropped`].
    pub(crate) fn set_capacity(&mut self, capacity: usize) -> usize {
        self.capacity = capacity.max(1);
        let excess = self.items.len().saturating_sub(self.capacity);
        self.items.truncate(self.capacity);
        excess
    }

    /// Applies a `recv-buffer` the application set: checks `len` ([`check_queue_len`]),
    /// resizes ([`DropQueue::set_capacity`]) and counts the discarded items in `drops` as
    /// [`DropReason::QueueShrunk`]. The lossy counterpart of [`RecvQueue::resize`]: nothing is
    /// paused, so there is nothing to resume.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`]; nothing changes then.
    pub(crate) fn resize(&mut self, len: usize, drops: &mut DropCounts) -> Result<(), ConfigError> {
        let shrunk = self.set_capacity(check_queue_len(len)?);
        drops.add(DropReason::QueueShrunk, shrunk as u64);
        Ok(())
    }

    /// Changes which item a full queue gives up from the next push on.
    pub(crate) fn set_overflow(&mut self, overflow: Overflow) {
        self.overflow = overflow;
    }
}

/// The pipes and send side of the broadcasting roles, PUB and BUS (SP-PROTOCOLS.md sections
/// 4.3 and 4.7): every attached pipe gets its own copy of each message and its own bounded
/// [`DropQueue`] of copies waiting for it.
///
/// A copy goes straight to a writable pipe, which then turns busy. A busy pipe's copy waits in
/// that pipe's queue, and a full queue discards by its [`Overflow`] rule. Each
/// [`Input::PipeWritable`] writes the next waiting copy. Sending therefore never blocks, and a
/// slow pipe loses messages without holding up the others. Pipes are served in `PipeId` order.
///
/// Every copy lost on the way out is counted in [`Broadcast::drops`]: a full queue
/// ([`DropReason::SendQueueFull`]), a queue shrunk by [`Broadcast::resize`]
/// ([`DropReason::QueueShrunk`]), copies still queued when the driver removes the pipe or
/// handed back unsent by the driver ([`DropReason::PipeClosed`]) and a [`Broadcast::send_to`] for a pipe that is not attached
/// ([`DropReason::NoRoute`]). Copies queued for a pipe the owner kicks are not counted: the
/// core chose to close that pipe. A broadcast with no pipe attached loses nothing either: it
/// reached every peer there was.
#[derive(Debug)]
pub(crate) struct Broadcast {
    /// The one protocol a peer must announce.
    peer: ProtocolId,
    capacity: usize,
    overflow: Overflow,
    pipes: BTreeMap<PipeId, Outbox>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Copies lost on the way out, including those of pipes that have gone away, and what the
    /// owner counts through [`Broadcast::record`].
    drops: DropCounts,
}

/// One pipe's side of a [`Broadcast`].
#[derive(Debug)]
struct Outbox {
    /// The pipe may take a message now.
    writable: bool,
    /// Copies waiting for the pipe to become writable.
    queue: DropQueue<Message>,
}

impl Broadcast {
    /// Creates a send side with no pipes that accepts peers announcing `peer` and queues up to
    /// `capacity` copies per busy pipe (0 counts as 1).
    pub(crate) fn new(peer: ProtocolId, capacity: usize, overflow: Overflow) -> Self {
        Self {
            peer,
            capacity,
            overflow,
            pipes: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounts::default(),
        }
    }

    /// Applies the pipe lifecycle inputs: `PipeAdded` (a wrong peer is refused), `PipeRemoved`
    /// (copies waiting for it are discarded, counted as [`DropReason::PipeClosed`]),
    /// `PipeWritable` and `Unsent` (counted as [`DropReason::PipeClosed`]: a copy is its
    /// pipe's alone). Returns the pipe and contiguous wire bytes of a message received on an
    /// attached pipe, for the owner to deliver or discard.
    pub(crate) fn handle(&mut self, input: Input) -> Option<(PipeId, Bytes)> {
        match input {
            Input::PipeAdded { pipe, peer } => {
                if !refuse_wrong_peer(self.peer, pipe, peer, &mut self.events) {
                    let queue = DropQueue::new(self.capacity, self.overflow);
                    let outbox = Outbox {
                        writable: true,
                        queue,
                    };
                    self.pipes.entry(pipe).or_insert(outbox);
                }
            }
            Input::PipeRemoved { pipe } => {
                if let Some(outbox) = self.pipes.remove(&pipe) {
                    let lost = outbox.queue.len() as u64;
                    self.drops.add(DropReason::PipeClosed, lost);
                }
            }
            Input::PipeWritable { pipe } => {
                if let Some(outbox) = self.pipes.get_mut(&pipe) {
                    match outbox.queue.pop() {
                        Some(msg) => self.transmits.push_back(Transmit { pipe, msg }),
                        None => outbox.writable = true,
                    }
                }
            }
            Input::Received { pipe, msg } => {
                if self.pipes.contains_key(&pipe) {
                    return Some((pipe, msg.into_contiguous()));
                }
            }
            // A copy (or a unicast) was for that pipe alone. The pipe is about to go: write
            // nothing more to it, so that what is still sent for it waits in its queue and is
            // counted when it is removed.
            Input::Unsent { pipe, .. } => {
                if let Some(outbox) = self.pipes.get_mut(&pipe) {
                    outbox.writable = false;
                }
                self.drops.record(DropReason::PipeClosed);
            }
        }
        None
    }

    /// Gives `msg` to every attached pipe except `skip`: a copy to each but the last, which
    /// gets `msg` itself. Why: a copy shares the payload, and counting that share is two
    /// atomic operations on the payload's counter, the copy's and the original's drop; a
    /// publisher with one subscriber made a copy per message only to drop the original.
    pub(crate) fn send(&mut self, mut msg: Message, skip: Option<PipeId>) {
        let Self {
            pipes,
            transmits,
            drops,
            ..
        } = self;
        let mut targets = pipes
            .iter_mut()
            .filter(|(pipe, _)| Some(**pipe) != skip)
            .peekable();
        while let Some((&pipe, outbox)) = targets.next() {
            let msg = if targets.peek().is_some() {
                msg.clone()
            } else {
                std::mem::take(&mut msg)
            };
            if outbox.writable {
                outbox.writable = false;
                transmits.push_back(Transmit { pipe, msg });
            } else if outbox.queue.push(msg) == Pushed::Dropped {
                drops.record(DropReason::SendQueueFull);
            }
        }
    }

    /// Returns the per-pipe queue length (at least 1).
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.max(1)
    }

    /// Applies a `send-buffer` the application set: checks `len` ([`check_queue_len`]) and
    /// makes it the per-pipe queue length of every attached pipe and of pipes attached later.
    /// Copies beyond the new length, newest first, are discarded and counted as
    /// [`DropReason::QueueShrunk`]. Sending never blocks, so growing wakes nobody.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`]; nothing changes then.
    pub(crate) fn resize(&mut self, len: usize) -> Result<(), ConfigError> {
        let capacity = check_queue_len(len)?;
        self.capacity = capacity;
        let mut shrunk = 0;
        for outbox in self.pipes.values_mut() {
            shrunk += outbox.queue.set_capacity(capacity);
        }
        self.drops.add(DropReason::QueueShrunk, shrunk as u64);
        Ok(())
    }

    /// Returns how many copies wait in the per-pipe queues.
    pub(crate) fn queued(&self) -> usize {
        self.pipes.values().map(|outbox| outbox.queue.len()).sum()
    }

    /// Returns the copies lost on the way out, by reason.
    pub(crate) fn drops(&self) -> &DropCounts {
        &self.drops
    }

    /// Returns the counters of a role whose send side this is: the owner's own `recv_drops`
    /// merged with the copies lost on the way out, the owner's `recv_queued` and the copies
    /// waiting in the per-pipe queues. Every owner (BUS, STAR, polyamorous PAIR v1, SURVEYOR,
    /// the backtrace roles) keeps its other losses in a [`DropCounts`] of its own, so this is
    /// the one place where the two halves are added up.
    pub(crate) fn stats(&self, recv_drops: &DropCounts, recv_queued: usize) -> CoreStats {
        let mut dropped = *recv_drops;
        dropped.merge(&self.drops);
        CoreStats {
            dropped,
            recv_queued,
            send_queued: self.queued(),
            ..CoreStats::default()
        }
    }

    /// Queues an event for the owner (for example [`Event::Readable`]).
    pub(crate) fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Returns the owner's event queue, for a [`RecvQueue`] of the owner's to queue its
    /// [`Event::ResumeReceiving`] into ([`RecvQueue::pop`], [`RecvQueue::resize`]).
    pub(crate) fn events_mut(&mut self) -> &mut VecDeque<Event> {
        &mut self.events
    }

    /// Returns the next message to write, if any.
    #[inline]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Returns the next event, if any.
    #[inline]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Returns true when `pipe` is attached: broadcasting roles read every pipe and drop
    /// rather than pause.
    #[inline]
    pub(crate) fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains_key(&pipe)
    }

    /// Returns how many copies full per-pipe queues have discarded, over every pipe ever
    /// attached.
    pub(crate) fn dropped(&self) -> u64 {
        self.drops.get(DropReason::SendQueueFull)
    }

    /// Returns how many copies `pipe`'s full queue has discarded, or `None` when `pipe` is not
    /// attached.
    pub(crate) fn dropped_on(&self, pipe: PipeId) -> Option<u64> {
        self.pipes.get(&pipe).map(|outbox| outbox.queue.dropped())
    }
}

/// Writes the counter and queue [`Protocol`](crate::protocol::Protocol) methods of a lossy
/// broadcasting role, BUS or STAR (`$role` names it in the docs): its field `core` holds the
/// send side `fanout` (a [`Broadcast`]), the receive queue `queue` (a [`DropQueue`]) and
/// `drops`, the [`DropCounts`] of every loss `fanout` does not count. Neither role pauses a
/// pipe or blocks a sender, so both queues resize the same way and growing wakes nothing.
macro_rules! broadcast_queue_methods {
    ($role:literal) => {
        fn stats(&self) -> $crate::stats::CoreStats {
            self.core
                .fanout
                .stats(&self.core.drops, self.core.queue.len())
        }

        fn recv_buffer(&self) -> Option<usize> {
            Some(self.core.queue.capacity())
        }

        /// Resizes the receive queue. Shrinking drops the newest messages beyond the new
        #[doc = concat!(" length. ", $role, " never pauses a pipe, so growing resumes nothing.")]
        ///
        /// # Errors
        /// [`ConfigError::QueueLenOutOfRange`](crate::protocol::ConfigError::QueueLenOutOfRange)
        /// above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
        fn set_recv_buffer(
            &mut self,
            len: usize,
            _now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::ConfigError> {
            self.core.queue.resize(len, &mut self.core.drops)
        }

        fn send_buffer(&self) -> Option<usize> {
            Some(self.core.fanout.capacity())
        }

        /// Resizes every pipe's send queue, and those of pipes attached later. Shrinking drops
        /// the newest messages beyond the new length. Sending never blocks, so growing wakes
        /// nobody.
        ///
        /// # Errors
        /// [`ConfigError::QueueLenOutOfRange`](crate::protocol::ConfigError::QueueLenOutOfRange)
        /// above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
        fn set_send_buffer(
            &mut self,
            len: usize,
            _now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::ConfigError> {
            self.core.fanout.resize(len)
        }
    };
}
pub(crate) use broadcast_queue_methods;

/// Writes the [`Protocol`](crate::protocol::Protocol) methods of a socket without timers that
/// forwards its outputs and pipe state to a field `core` with `poll_transmit`, `poll_event` and
/// `is_receiving` methods. The caller writes `protocol`, `handle`, `send` and `recv`.
macro_rules! forward_to_core {
    () => {
        /// Does nothing: this protocol has no timers.
        fn handle_timeout(&mut self, _now: ::std::time::Instant) {}

        #[inline]
        fn poll_transmit(&mut self) -> Option<$crate::protocol::Transmit> {
            self.core.poll_transmit()
        }

        #[inline]
        fn poll_event(&mut self) -> Option<$crate::protocol::Event> {
            self.core.poll_event()
        }

        #[inline]
        fn poll_timeout(&self) -> Option<::std::time::Instant> {
            None
        }

        #[inline]
        fn is_receiving(&self, pipe: $crate::PipeId) -> bool {
            self.core.is_receiving(pipe)
        }
    };
}
pub(crate) use forward_to_core;

/// The raw REP-side roles (XREP, XRESPONDENT), which differ only in their protocol: for a
/// `$ty` holding `core: BacktraceCore`, the TTL and drop-count methods and the whole
/// [`Protocol`](crate::protocol::Protocol) impl. A received `$msg` gets the ID of the pipe it
/// arrived on pushed onto its backtrace; a sent `$reply` is routed by (and loses) its first
/// header word, and dropped when that names no attached pipe or the pipe's queue is full.
macro_rules! raw_replier {
    ($ty:ident, $proto:expr, $msg:literal, $reply:literal) => {
        impl $ty {
            #[doc = concat!("Sets the most backtrace words an accepted ", $msg, " may carry.")]
            ///
            /// # Errors
            /// [`ConfigError::MaxTtlOutOfRange`] for 0.
            pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
                self.core.set_max_ttl(max_ttl)
            }

            #[doc = concat!("Returns the most backtrace words an accepted ", $msg, " may carry.")]
            pub fn max_ttl(&self) -> u8 {
                self.core.max_ttl()
            }

            #[doc = concat!("Returns how many ", $reply, "s were dropped because their pipe's queue was full. ")]
            /// Messages for unknown pipes or without a pipe word are counted under their own
            /// reasons in [`Protocol::stats`].
            pub fn dropped_sends(&self) -> u64 {
                self.core.pipes.dropped()
            }
        }

        impl Protocol for $ty {
            /// Returns false: this core has no timers and reads no `now` it is given.
            fn reads_time(&self) -> bool {
                false
            }

            fn protocol(&self) -> ProtocolId {
                $proto
            }

            fn is_raw(&self) -> bool {
                true
            }

            /// Applies a pipe input; see the type docs for what each input does.
            fn handle(&mut self, input: Input, _now: Instant) {
                self.core.handle(input, None);
            }

            $crate::protocol::shared::forward_to_core!();
            $crate::protocol::shared::forward_queue_to_core!();

            /// Returns true: a reply never waits (one that cannot be routed is dropped).
            #[inline]
            fn is_writable(&self) -> bool {
                true
            }

            /// Sends `msg` to the pipe named by its first header word, without that word
            /// ([`Message::pipe`] is ignored).
            ///
            /// # Errors
            /// Never: a message that cannot be routed, or finds its pipe's queue full, is
            /// dropped and counted (no pipe word: [`DropReason::MalformedHeader`]; a pipe that
            /// is gone: [`DropReason::NoRoute`]; a full queue:
            /// [`DropReason::SendQueueFull`]).
            ///
            /// [`DropReason::MalformedHeader`]: crate::stats::DropReason::MalformedHeader
            /// [`DropReason::NoRoute`]: crate::stats::DropReason::NoRoute
            /// [`DropReason::SendQueueFull`]: crate::stats::DropReason::SendQueueFull
            fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
                let Message {
                    mut header, body, ..
                } = msg;
                match $crate::backtrace::pop_pipe_word(&mut header).and_then(PipeId::new) {
                    Some(pipe) => {
                        self.core
                            .pipes
                            .send_to(pipe, Message::with_header(header, body));
                    }
                    // Shorter than a word, or a request ID where the pipe word belongs: the
                    // header names no route at all.
                    None => self
                        .core
                        .pipes
                        .record($crate::stats::DropReason::MalformedHeader),
                }
                Ok(())
            }

            /// Takes the oldest message with `[pipe it arrived on, backtrace...]` as its header
            /// and that pipe in [`Message::pipe`].
            ///
            /// # Errors
            /// [`RecvError::WouldBlock`] when nothing is queued.
            fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
                let (pipe, mut header, body) = self.core.pop().ok_or(RecvError::WouldBlock)?;
                $crate::backtrace::push_pipe_word(&mut header, pipe);
                Ok(Message::with_header(header, body).with_pipe(pipe))
            }
        }
    };
}
pub(crate) use raw_replier;

/// Single-pipe routing for the roles that use a [`Broadcast`] as their pipe set without only
/// broadcasting: the REP-side roles (REP, RESPONDENT, XRESPONDENT) send each reply to one
/// chosen pipe, and every backtrace role kicks pipes that send garbage.
impl Broadcast {
    /// Returns true when `pipe` is attached.
    pub(crate) fn contains(&self, pipe: PipeId) -> bool {
        self.pipes.contains_key(&pipe)
    }

    /// Returns true when `pipe` is attached and can take a message now (nothing waits for it).
    pub(crate) fn is_idle(&self, pipe: PipeId) -> bool {
        self.pipes.get(&pipe).is_some_and(|outbox| outbox.writable)
    }

    /// Writes `msg` to `pipe` if it is attached and idle; otherwise hands `msg` back. Cooked
    /// replies use this to apply back-pressure instead of queueing.
    pub(crate) fn write_if_idle(&mut self, pipe: PipeId, msg: Message) -> Result<(), Message> {
        match self.pipes.get_mut(&pipe) {
            Some(outbox) if outbox.writable => {
                outbox.writable = false;
                self.transmits.push_back(Transmit { pipe, msg });
                Ok(())
            }
            _ => Err(msg),
        }
    }

    /// Gives `msg` to `pipe` alone: written now if the pipe is idle, else queued, else (queue
    /// full) discarded and counted like a broadcast copy. Returns false, discarding `msg` and
    /// counting it as [`DropReason::NoRoute`], when `pipe` is not attached.
    pub(crate) fn send_to(&mut self, pipe: PipeId, msg: Message) -> bool {
        let Err(msg) = self.write_if_idle(pipe, msg) else {
            return true;
        };
        let Some(outbox) = self.pipes.get_mut(&pipe) else {
            self.drops.record(DropReason::NoRoute);
            return false;
        };
        if outbox.queue.push(msg) == Pushed::Dropped {
            self.drops.record(DropReason::SendQueueFull);
        }
        true
    }

    /// Counts one message the owner dropped for `reason` (a unicast with no pipe to go to,
    /// data from a peer the role does not read), so that a socket keeps all its counts here.
    pub(crate) fn record(&mut self, reason: DropReason) {
        self.drops.record(reason);
    }

    /// Asks the driver to close `pipe` for sending garbage, and forgets it at once so that
    /// nothing more is sent there.
    pub(crate) fn kick(&mut self, pipe: PipeId) {
        let reason = PipeCloseReason::MalformedHeader;
        self.events.push_back(Event::ClosePipe { pipe, reason });
        self.pipes.remove(&pipe);
    }
}

/// The REP-side machinery that REP, RESPONDENT and the raw roles XRESPONDENT and XSURVEYOR
/// share (SP-PROTOCOLS.md sections 4.4.3, 4.6 and 5.1): the attached pipes, the backtrace
/// parser with its TTL and garbage rules, and the receive queue that pauses pipes.
///
/// A received message has its backtrace moved into a header with [`split_backtrace`]. More
/// than `max_ttl` words drops the message (counted as [`DropReason::TtlExceeded`]) and keeps
/// the pipe, since devices produce such traffic legitimately; a body that ends before the
/// bottom word kicks the pipe (NNG's behaviour). What is sent, and how, is up to the owner: a
/// cooked reply along a saved backtrace ([`CookedReplier`]), or a raw message routed by its
/// first header word or broadcast, through [`Self::pipes`].
///
/// [`CookedReplier`]: crate::protocol::replier::CookedReplier
#[derive(Debug)]
pub(crate) struct BacktraceCore {
    max_ttl: u8,
    /// The attached pipes, their send queues and the pending outputs.
    pub(crate) pipes: Broadcast,
    /// Received `(backtrace, body)` pairs waiting for the application.
    queue: RecvQueue<(Bytes, Bytes)>,
    /// Received messages dropped (over the TTL, or by shrinking the queue).
    drops: DropCounts,
}

impl BacktraceCore {
    /// Creates a core with no pipes that accepts peers announcing `peer`. `max_ttl` 0 counts
    /// as 1. `send_queue` is the per-pipe queue length for [`Broadcast::send_to`] and
    /// [`Broadcast::send`]; a full queue drops the new message, as in NNG.
    pub(crate) fn new(
        peer: ProtocolId,
        max_ttl: u8,
        recv_buffer: usize,
        send_queue: usize,
    ) -> Self {
        Self {
            max_ttl: max_ttl.max(1),
            pipes: Broadcast::new(peer, send_queue, Overflow::DropNewest),
            queue: RecvQueue::new(recv_buffer),
            drops: DropCounts::default(),
        }
    }

    /// Sets the most backtrace words an accepted message may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub(crate) fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.max_ttl = check_max_ttl(max_ttl)?;
        Ok(())
    }

    /// Returns the most backtrace words an accepted message may carry.
    pub(crate) fn max_ttl(&self) -> u8 {
        self.max_ttl
    }

    /// Applies a pipe input. Queues [`Event::Writable`] when `watched` (the pipe a blocked
    /// cooked reply waits for) turns idle or goes away, since the reply can then go out or
    /// "succeed" by being dropped.
    pub(crate) fn handle(&mut self, input: Input, watched: Option<PipeId>) {
        let was_idle = watched.is_some_and(|pipe| self.pipes.is_idle(pipe));
        let was_attached = watched.is_some_and(|pipe| self.pipes.contains(pipe));
        if let Input::PipeRemoved { pipe } = input {
            self.queue.forget_pipe(pipe);
        }
        if let Some((pipe, mut body)) = self.pipes.handle(input) {
            match split_backtrace(&mut body, self.max_ttl) {
                Ok(backtrace) => {
                    if self.queue.push(pipe, (backtrace, body)) {
                        self.pipes.push_event(Event::Readable);
                    }
                }
                // Over-hopped messages can come from legitimate devices: drop, keep the pipe.
                Err(BacktraceError::TooManyHops { .. }) => {
                    self.drops.record(DropReason::TtlExceeded);
                }
                Err(BacktraceError::NoBottom) => {
                    self.pipes.kick(pipe);
                    self.queue.forget_pipe(pipe);
                }
            }
        }
        if let Some(pipe) = watched {
            let freed = !was_idle && self.pipes.is_idle(pipe);
            let gone = was_attached && !self.pipes.contains(pipe);
            if freed || gone {
                self.pipes.push_event(Event::Writable);
            }
        }
    }

    /// Returns the next message to write, if any.
    #[inline]
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pipes.poll_transmit()
    }

    /// Returns the next event, if any.
    #[inline]
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.pipes.poll_event()
    }

    /// Returns true while `pipe` is attached and not paused by a full receive queue.
    #[inline]
    pub(crate) fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe) && !self.queue.is_paused(pipe)
    }

    /// Takes the oldest received message as `(pipe, backtrace, body)`. May queue
    /// [`Event::ResumeReceiving`].
    pub(crate) fn pop(&mut self) -> Option<(PipeId, Bytes, Bytes)> {
        let (pipe, (backtrace, body)) = self.queue.pop(self.pipes.events_mut())?;
        Some((pipe, backtrace, body))
    }

    /// Returns the receive queue length.
    pub(crate) fn recv_buffer(&self) -> usize {
        self.queue.capacity()
    }

    /// Resizes the receive queue; see
    /// [`Protocol::set_recv_buffer`](crate::protocol::Protocol::set_recv_buffer).
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`].
    pub(crate) fn set_recv_buffer(&mut self, len: usize) -> Result<(), ConfigError> {
        self.queue
            .resize(len, self.pipes.events_mut(), &mut self.drops)
    }

    /// Returns the counters: every drop on the way in and out, and both queue depths.
    pub(crate) fn stats(&self) -> CoreStats {
        self.pipes.stats(&self.drops, self.queue.len())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {

    use super::*;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    #[test]
    fn one_pipe_is_busy_from_a_send_until_its_pipe_is_writable_and_ignores_others() {
        let mut one = OnePipe::default();
        assert!(one.is_empty() && one.take_next().is_none());
        one.insert(p(4));
        assert!(one.contains(p(4)) && one.has_writable());
        assert_eq!(one.take_next(), Some(p(4)));
        assert_eq!(one.take_next(), None, "busy until the driver says writable");
        one.set_writable(p(5));
        assert!(
            !one.has_writable(),
            "another pipe's writable says nothing of ours"
        );
        one.set_writable(p(4));
        one.take(p(5));
        assert!(
            one.has_writable(),
            "nor does a send's failure on another pipe"
        );
        one.take(p(4));
        assert!(!one.has_writable());
        assert!(!one.remove(p(5)));
        assert!(one.remove(p(4)));
        assert!(one.is_empty() && !one.has_writable());
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
}

#[cfg(test)]
mod routing_tests {
    use super::*;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    fn attached(capacity: usize, pipes: &[u32]) -> Broadcast {
        let mut set = Broadcast::new(ProtocolId::SURVEYOR, capacity, Overflow::DropNewest);
        for &n in pipes {
            let input = Input::PipeAdded {
                pipe: p(n),
                peer: ProtocolId::SURVEYOR,
            };
            set.handle(input);
        }
        set
    }

    fn drain(set: &mut Broadcast) -> Vec<(PipeId, Bytes)> {
        std::iter::from_fn(|| set.poll_transmit())
            .map(|tx| (tx.pipe, tx.msg.body))
            .collect()
    }

    #[test]
    fn send_to_writes_idle_queues_busy_and_drops_when_full() {
        let mut set = attached(2, &[1, 2]);
        for body in ["a", "b", "c", "d"] {
            assert!(set.send_to(p(1), Message::new(body)));
        }
        assert!(!set.send_to(p(9), Message::new("x")), "unknown pipe");
        assert_eq!(drain(&mut set), vec![(p(1), Bytes::from("a"))]);
        assert_eq!(set.dropped(), 1, "d found the queue full");
        assert!(set.is_idle(p(2)) && !set.is_idle(p(1)));
        set.handle(Input::PipeWritable { pipe: p(1) });
        assert_eq!(drain(&mut set), vec![(p(1), Bytes::from("b"))]);
    }

    #[test]
    fn write_if_idle_hands_back_for_busy_and_unknown_pipes() {
        let mut set = attached(2, &[1]);
        assert!(set.write_if_idle(p(1), Message::new("a")).is_ok());
        assert_eq!(
            set.write_if_idle(p(1), Message::new("b")),
            Err(Message::new("b"))
        );
        assert!(set.write_if_idle(p(2), Message::new("c")).is_err());
        assert_eq!(drain(&mut set).len(), 1);
    }

    #[test]
    fn kick_closes_and_forgets_the_pipe() {
        let mut set = attached(2, &[1]);
        set.kick(p(1));
        assert!(!set.contains(p(1)));
        assert_eq!(
            set.poll_event(),
            Some(Event::ClosePipe {
                pipe: p(1),
                reason: PipeCloseReason::MalformedHeader
            })
        );
    }
}
