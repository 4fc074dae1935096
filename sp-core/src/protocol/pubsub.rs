//! PUB and SUB, the publish/subscribe roles (SP-PROTOCOLS.md section 4.3; NNG's
//! `src/sp/protocol/pubsub0`), and raw SUB ([`XSub`]). Messages carry no header: subscriptions
//! never travel on the wire, so a PUB sends everything to every SUB and each SUB filters.
//!
//! Raw PUB behaves as cooked PUB in NNG and mangos (SP-PROTOCOLS.md section 5.1): [`XPub`] is
//! [`Pub`] wrapped so that it reports itself raw and can be the sending side of a device.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::context::{readable, Contexts};
use crate::protocol::shared::{
    check_queue_len, forward_to_core, refuse_wrong_peer, Broadcast, DropQueue, Overflow, Pushed,
};
use crate::protocol::topic_trie::TopicTrie;
use crate::protocol::{
    ConfigError, ContextError, ContextId, Event, Input, Protocol, RecvError, SendError, Transmit,
};
use crate::stats::{CoreStats, DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How many messages PUB queues for each busy pipe, as NNG's `send-buffer` for PUB.
pub const DEFAULT_SEND_BUFFER: usize = 16;

/// How many received messages SUB holds for the application, as NNG's `recv-buffer` for SUB.
pub const DEFAULT_RECV_BUFFER: usize = 128;

/// Why [`Sub::unsubscribe`], [`XSub::subscribe`] or [`XSub::unsubscribe`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// The topic is not subscribed (NNG `NNG_ENOENT`, mangos `ErrBadValue`).
    #[error("the topic is not subscribed")]
    UnknownTopic,
    /// No open context has this ID (it was closed).
    #[error("the context is closed")]
    UnknownContext,
    /// Raw SUB does no filtering, so it takes no subscriptions (NNG `NNG_ENOTSUP`, mangos
    /// `ErrBadOption`).
    #[error("raw sub does not filter, so it takes no subscriptions")]
    NotSupported,
}

/// Writes the [`Protocol`] methods that [`Sub`] and [`XSub`] share: `send`, `recv` and the
/// socket queue's length.
macro_rules! sub_send_recv {
    () => {
        /// Always fails: SUB cannot send.
        ///
        /// # Errors
        /// [`SendError::NotSupported`].
        fn send(&mut self, _msg: Message, _now: Instant) -> Result<(), SendError> {
            Err(SendError::NotSupported)
        }

        /// Takes the oldest queued message, with an empty header and [`Message::pipe`] naming
        /// the pipe it came from.
        ///
        /// # Errors
        /// [`RecvError::WouldBlock`] when nothing is queued.
        fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
            self.core.recv()
        }

        fn recv_buffer(&self) -> Option<usize> {
            Some(self.core.queue.capacity())
        }

        /// Returns true while the socket's own queue holds a message (a context's queue is
        /// its own).
        fn is_readable(&self) -> bool {
            self.core.queue.len() > 0
        }
    };
}

/// Settings for [`Pub`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubConfig {
    /// How many messages may wait for each busy pipe; when a pipe's queue is full its oldest
    /// message is dropped. Default: 16. 0 counts as 1.
    pub send_buffer: usize,
}

impl Default for PubConfig {
    fn default() -> Self {
        Self {
            send_buffer: DEFAULT_SEND_BUFFER,
        }
    }
}

/// The PUB role (SP type 32), cooked and raw: gives a copy of every message to every SUB peer.
///
/// Follows SP-PROTOCOLS.md section 4.3 with NNG's queueing. [`Protocol::send`] never blocks
/// and always succeeds: with no pipe the message is discarded (`test_pub_send_no_pipes`); an
/// idle pipe gets its copy at once and turns busy; a busy pipe's copy waits in that pipe's
/// queue of `send_buffer` messages. When that queue is full, the **oldest** waiting copy is
/// dropped for that pipe alone and counted ([`Pub::dropped`], [`Pub::dropped_on`]), as NNG does
/// (mangos drops the new one instead; SP-PROTOCOLS.md section 9 item 10). A stalled subscriber
/// thus sees the newest messages once it recovers and never slows the others down.
///
/// The message goes out as given, header included: PUB has no header of its own, which is why
/// raw PUB ([`XPub`]) only wraps this type.
///
/// ```text
///  per pipe:
///             PipeAdded     send: copy written, pipe turns busy
///  (no pipe) ----------> +------+ --------------------------------> +------+ --+ send: copy
///                        | Idle |                                   | Busy |   | queued (full:
///                        +------+ <-------------------------------- +------+ <-+ oldest dropped,
///                                  PipeWritable, nothing queued      |    ^      counted)
///                                                                    +----+
///                                       PipeWritable, copies queued: the oldest is written
/// ```
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::SendQueueFull`] for each copy a full
/// queue gave up, [`DropReason::QueueShrunk`] for copies discarded by
/// [`Protocol::set_send_buffer`], [`DropReason::PipeClosed`] for copies still queued when
/// their pipe went away or handed back unsent by the driver ([`Input::Unsent`]: a copy was
/// that subscriber's alone), [`DropReason::Unexpected`] for data a SUB sent. A message sent with
/// no pipe attached is not a drop: it reached every subscriber there was.
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than SUB is refused), [`Input::PipeRemoved`]
/// (copies still queued for it are discarded), [`Input::PipeWritable`], [`Input::Received`]:
/// discarded and the pipe kept, as mangos does. NNG kicks a SUB that sends data
/// (SP-PROTOCOLS.md section 9 item 4); a SUB never sends any, so only a broken peer can tell
/// the difference, and discarding costs nothing.
///
/// **Events.** [`Event::ClosePipe`] for a wrong peer. Never [`Event::Writable`]: sending never
/// returns `WouldBlock`.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Pub {
    core: Broadcast,
}

/// Raw PUB: identical to cooked PUB in NNG and mangos (SP-PROTOCOLS.md section 5.1), but
/// reporting itself raw (see [`crate::protocol::raw`]).
pub type XPub = crate::protocol::raw::XPub;

impl Pub {
    /// Creates a PUB socket core with no pipes.
    pub fn new(config: PubConfig) -> Self {
        Self {
            core: Broadcast::new(ProtocolId::SUB, config.send_buffer, Overflow::DropOldest),
        }
    }

    /// Returns how many messages full per-pipe queues have dropped, summed over every pipe
    /// ever attached: [`DropReason::SendQueueFull`] in [`Protocol::stats`]. Messages
    /// discarded because no pipe was attached do not count.
    pub fn dropped(&self) -> u64 {
        self.core.dropped()
    }

    /// Returns how many messages `pipe`'s full queue has dropped, or `None` when `pipe` is not
    /// attached.
    pub fn dropped_on(&self, pipe: PipeId) -> Option<u64> {
        self.core.dropped_on(pipe)
    }
}

impl Protocol for Pub {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::PUB
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        // Whatever a SUB sends is read, counted and thrown away.
        if self.core.handle(input).is_some() {
            self.core.record(DropReason::Unexpected);
        }
    }

    forward_to_core!();

    /// Gives a copy of `msg`, header and body as given, to every attached pipe: written at
    /// once to idle pipes, queued for busy ones (dropping a full queue's oldest copy).
    /// [`Message::pipe`] is ignored.
    ///
    /// # Errors
    /// None: PUB never blocks, and with no pipe the message is discarded.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        self.core.send(msg.with_pipe(None), None);
        Ok(())
    }

    /// Returns true: a PUB send never fails (a subscriber with a full queue loses a copy).
    #[inline]
    fn will_take(&self, _msg: &Message) -> bool {
        true
    }

    /// Always fails: PUB cannot receive.
    ///
    /// # Errors
    /// [`RecvError::NotSupported`].
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        Err(RecvError::NotSupported)
    }

    fn stats(&self) -> CoreStats {
        CoreStats {
            dropped: *self.core.drops(),
            send_queued: self.core.queued(),
            ..CoreStats::default()
        }
    }

    fn send_buffer(&self) -> Option<usize> {
        Some(self.core.capacity())
    }

    /// Resizes every pipe's queue, and those of pipes attached later. Shrinking drops the
    /// newest copies beyond the new length. Sending never blocks, so growing wakes nobody.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
    fn set_send_buffer(&mut self, len: usize, _now: Instant) -> Result<(), ConfigError> {
        self.core.resize(len)
    }
}

/// Settings for [`Sub`] and [`XSub`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubConfig {
    /// How many received messages may wait for [`Protocol::recv`]. Default: 128. 0 counts
    /// as 1. Contexts get a queue of the same length.
    pub recv_buffer: usize,
    /// What a full receive queue gives up: `true` drops the oldest queued message to make room
    /// for the new one, `false` drops the new one. Default: `true`, like NNG's `sub:prefnew`
    /// (mangos always drops the oldest).
    pub prefer_new: bool,
}

impl Default for SubConfig {
    fn default() -> Self {
        Self {
            recv_buffer: DEFAULT_RECV_BUFFER,
            prefer_new: true,
        }
    }
}

/// The cooked SUB role (SP type 33): receives from every PUB peer the messages that match one
/// of its topics.
///
/// Follows SP-PROTOCOLS.md section 4.3 (NNG's `sub0`). A message matches a topic when its body
/// starts with the topic's bytes; the empty topic matches everything, and with no topic nothing
/// is delivered. Each message is delivered at most once, however many topics match it. Topics
/// live in a radix trie, so matching costs time proportional to the message's matching prefix,
/// not to the number of topics.
///
/// Topics form a set, as in NNG and mangos: subscribing to a topic already present does
/// nothing, and one [`Sub::unsubscribe`] removes it. Unsubscribing also purges queued messages
/// that no remaining topic matches (`test_sub_filter`, mangos `TestSubUnsubscribeDrops`).
///
/// SUB never pauses a pipe and never kicks one because of message content: when the queue of
/// `recv_buffer` messages is full it drops (the oldest queued message with `prefer_new`, else
/// the new one) and counts the loss in [`Sub::dropped`]. Both settings can change while the
/// socket runs ([`Protocol::set_recv_buffer`], [`Sub::set_prefer_new`]).
///
/// ```text
///  Received on an attached pipe
///      |
///      v                      no
///  [ some topic a prefix? ] -----> dropped, counted as NoSubscription (unless a context's
///      | yes                       topic matches it)
///      v                      no
///  [ queue has room? ] ----------> prefer_new: oldest dropped, new queued; else new dropped
///      | yes                       (counted as RecvQueueFull either way)
///      v
///  queued; Event::Readable if the queue was empty
/// ```
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::NoSubscription`] for a message that
/// matches no topic of the socket nor of any context, and for each message an unsubscribe
/// purges; [`DropReason::RecvQueueFull`] for each message a full queue (the socket's or a
/// context's) gives up; [`DropReason::QueueShrunk`] and [`DropReason::ContextClosed`] for
/// messages discarded by resizing the queues and by closing a context.
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than PUB is refused), [`Input::PipeRemoved`]
/// (queued messages stay), [`Input::PipeWritable`] (ignored), [`Input::Received`],
/// [`Input::Unsent`] (SUB sends nothing, but one is counted as [`DropReason::PipeClosed`]).
///
/// **Events.** [`Event::Readable`] when the queue stops being empty; [`Event::ClosePipe`] for a
/// wrong peer.
///
/// **Contexts.** [`Protocol::open_context`] adds a context with its own topics (none at first)
/// and its own queue of `recv_buffer` messages with the socket's overflow rule. Every message
/// received is offered to the socket's own topics and to every context independently
/// (`test_sub_multi_context`), and [`Event::ContextReadable`] names each context whose queue
/// stopped being empty. [`Sub::subscribe_on`] and [`Sub::unsubscribe_on`] manage a context's
/// topics. Any number of receives may wait on one context.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Sub {
    core: SubCore,
    topics: TopicTrie,
    /// The opened contexts. The default slot is unused: the socket's own topics and queue
    /// are `topics` and `core`, which raw SUB shares.
    contexts: Contexts<SubContext>,
    /// Messages dropped from the contexts' queues (the socket's own are in `core`).
    context_drops: DropCounts,
}

/// The topics and queue of one opened SUB context.
#[derive(Debug)]
struct SubContext {
    topics: TopicTrie,
    queue: DropQueue<(PipeId, Bytes)>,
}

impl SubContext {
    fn new(recv_buffer: usize, overflow: Overflow) -> Self {
        Self {
            topics: TopicTrie::default(),
            queue: DropQueue::new(recv_buffer, overflow),
        }
    }
}

impl Sub {
    /// Creates a SUB socket core with no pipes and no topics.
    pub fn new(config: SubConfig) -> Self {
        let core = SubCore::new(&config);
        Self {
            contexts: Contexts::new(SubContext::new(config.recv_buffer, core.overflow())),
            core,
            topics: TopicTrie::default(),
            context_drops: DropCounts::default(),
        }
    }

    /// Adds `topic` to context `ctx`, as [`Sub::subscribe`] does for the socket.
    ///
    /// # Errors
    /// [`SubscribeError::UnknownContext`] when `ctx` is not open.
    pub fn subscribe_on(&mut self, ctx: ContextId, topic: &[u8]) -> Result<(), SubscribeError> {
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| SubscribeError::UnknownContext)?;
        state.topics.insert(topic);
        Ok(())
    }

    /// Removes `topic` from context `ctx` and purges its queue, as [`Sub::unsubscribe`] does
    /// for the socket.
    ///
    /// # Errors
    /// [`SubscribeError::UnknownContext`] when `ctx` is not open,
    /// [`SubscribeError::UnknownTopic`] when `topic` is not subscribed there.
    pub fn unsubscribe_on(&mut self, ctx: ContextId, topic: &[u8]) -> Result<(), SubscribeError> {
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| SubscribeError::UnknownContext)?;
        if !state.topics.remove(topic) {
            return Err(SubscribeError::UnknownTopic);
        }
        let topics = &state.topics;
        let purged = state.queue.retain(|(_, body)| topics.matches(body));
        self.context_drops
            .add(DropReason::NoSubscription, purged as u64);
        Ok(())
    }

    /// Returns how many matching messages context `ctx`'s full queue has dropped.
    ///
    /// # Errors
    /// [`SubscribeError::UnknownContext`] when `ctx` is not open.
    pub fn context_dropped(&mut self, ctx: ContextId) -> Result<u64, SubscribeError> {
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| SubscribeError::UnknownContext)?;
        Ok(state.queue.dropped())
    }

    /// Adds `topic` (the bytes are copied). Subscribing to a topic already present does
    /// nothing. Takes effect for messages received from now on.
    pub fn subscribe(&mut self, topic: &[u8]) {
        self.topics.insert(topic);
    }

    /// Removes `topic`, then discards queued messages that no remaining topic matches (they
    /// count as [`DropReason::NoSubscription`], not in [`Sub::dropped`]).
    ///
    /// # Errors
    /// [`SubscribeError::UnknownTopic`] when `topic` is not subscribed.
    pub fn unsubscribe(&mut self, topic: &[u8]) -> Result<(), SubscribeError> {
        if !self.topics.remove(topic) {
            return Err(SubscribeError::UnknownTopic);
        }
        let topics = &self.topics;
        let purged = self.core.queue.retain(|(_, body)| topics.matches(body));
        self.core
            .drops
            .add(DropReason::NoSubscription, purged as u64);
        Ok(())
    }

    /// Returns true when `topic` itself is subscribed.
    pub fn is_subscribed(&self, topic: &[u8]) -> bool {
        self.topics.contains(topic)
    }

    /// Returns the number of subscribed topics.
    pub fn subscription_count(&self) -> usize {
        self.topics.len()
    }

    /// Returns how many matching messages the socket's full receive queue has dropped: its
    /// share of [`DropReason::RecvQueueFull`] in [`Protocol::stats`] (contexts' queues are in
    /// [`Sub::context_dropped`]).
    pub fn dropped(&self) -> u64 {
        self.core.drops.get(DropReason::RecvQueueFull)
    }

    /// Sets what a full receive queue gives up from now on (NNG's `sub:prefnew`), for the
    /// socket's queue, every open context's and those opened later: `true` the oldest queued
    /// message, `false` the new one.
    pub fn set_prefer_new(&mut self, prefer_new: bool) {
        self.core.set_prefer_new(prefer_new);
        let overflow = self.core.overflow();
        for (_, state) in self.contexts.iter_mut() {
            state.queue.set_overflow(overflow);
        }
    }

    /// Returns true when a full receive queue drops its oldest message rather than the new one.
    pub fn prefer_new(&self) -> bool {
        self.core.prefer_new
    }
}

impl Protocol for Sub {
    fn drops_when_full(&self) -> bool {
        true
    }

    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::SUB
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let topics = &self.topics;
        let for_contexts = self.contexts.open_count() > 0;
        let Some((pipe, body, mut matched)) =
            self.core
                .handle(input, |body| topics.matches(body), for_contexts)
        else {
            return;
        };
        // The default slot stands for the socket, whose topics were checked above. Without
        // open contexts there is nothing more to visit: the chained iterator's set-up alone
        // was a fifth of what a SUB's core spent on a message.
        if for_contexts {
            for (key, state) in self.contexts.iter_mut().skip(1) {
                if !state.topics.matches(&body) {
                    continue;
                }
                matched = true;
                match state.queue.push((pipe, body.clone())) {
                    Pushed::First => self.core.events.push_back(readable(key)),
                    Pushed::Queued => {}
                    Pushed::Dropped => self.context_drops.record(DropReason::RecvQueueFull),
                }
            }
        }
        if !matched {
            self.core.drops.record(DropReason::NoSubscription);
        }
    }

    forward_to_core!();
    sub_send_recv!();

    /// Resizes the socket's queue, every open context's and those of contexts opened later.
    /// Shrinking drops the newest messages beyond the new length. SUB never pauses a pipe, so
    /// growing resumes nothing.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
    fn set_recv_buffer(&mut self, len: usize, _now: Instant) -> Result<(), ConfigError> {
        let len = check_queue_len(len)?;
        self.core.set_recv_buffer(len);
        let mut shrunk = 0;
        for (_, state) in self.contexts.iter_mut() {
            shrunk += state.queue.set_capacity(len);
        }
        self.context_drops
            .add(DropReason::QueueShrunk, shrunk as u64);
        Ok(())
    }

    fn stats(&self) -> CoreStats {
        let mut stats = self.core.stats();
        stats.dropped.merge(&self.context_drops);
        stats.recv_queued += self
            .contexts
            .iter()
            .skip(1)
            .map(|(_, state)| state.queue.len())
            .sum::<usize>();
        stats
    }

    /// Opens a context with no topics and an empty queue.
    fn open_context(&mut self, _now: Instant) -> Result<ContextId, ContextError> {
        let state = SubContext::new(self.core.queue.capacity(), self.core.overflow());
        Ok(self.contexts.open(state))
    }

    /// Closes `ctx`; its queued messages are gone, counted as [`DropReason::ContextClosed`].
    fn close_context(&mut self, ctx: ContextId, _now: Instant) -> Result<(), ContextError> {
        let closed = self
            .contexts
            .close(ctx)
            .ok_or(ContextError::UnknownContext)?;
        self.context_drops
            .add(DropReason::ContextClosed, closed.queue.len() as u64);
        Ok(())
    }

    /// Always fails: SUB cannot send.
    ///
    /// # Errors
    /// [`SendError::NotSupported`].
    fn send_on(&mut self, _ctx: ContextId, _msg: Message, _now: Instant) -> Result<(), SendError> {
        Err(SendError::NotSupported)
    }

    /// Takes the oldest message queued for `ctx`, with [`Message::pipe`] naming the pipe it
    /// came from.
    ///
    /// # Errors
    /// [`RecvError::UnknownContext`] when `ctx` is not open, [`RecvError::WouldBlock`] when
    /// nothing is queued.
    fn recv_on(&mut self, ctx: ContextId, _now: Instant) -> Result<Message, RecvError> {
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| RecvError::UnknownContext)?;
        state
            .queue
            .pop()
            .map(|(pipe, body)| Message::new(body).with_pipe(pipe))
            .ok_or(RecvError::WouldBlock)
    }
}

/// The raw SUB role (SP type 33, NNG's `xsub0`): [`Sub`] without filtering.
///
/// Follows SP-PROTOCOLS.md sections 4.3 ("Raw mode") and 5.1 with NNG's and mangos' behaviour:
/// every message from every PUB peer is delivered, so a PUB/SUB forwarder built from `XSub`
/// and [`XPub`] needs no subscription. [`XSub::subscribe`] and [`XSub::unsubscribe`] are
/// refused with [`SubscribeError::NotSupported`] (`test_xsub_subscribe_option`, mangos
/// `TestXSubCannotSubscribe`). nanomsg's XSUB filters instead; this type does not follow it.
///
/// The receive queue works as in [`Sub`]: it never pauses a pipe, and when full it drops by
/// [`SubConfig::prefer_new`] (NNG's XSUB drops the new message, mangos the oldest), which
/// [`XSub::set_prefer_new`] changes while the socket runs.
///
/// ```text
///  Received on an attached pipe --> [ room? ] -- yes --> queued; Event::Readable if it was empty
///                                       | no
///                                       +--> prefer_new: drop oldest, queue it; else drop it
/// ```
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::RecvQueueFull`] and
/// [`DropReason::QueueShrunk`].
///
/// **Inputs.** As [`Sub`]. **Events.** As [`Sub`]. **Timers.** None.
#[derive(Debug)]
pub struct XSub {
    core: SubCore,
}

impl XSub {
    /// Creates a raw SUB socket core with no pipes.
    pub fn new(config: SubConfig) -> Self {
        Self {
            core: SubCore::new(&config),
        }
    }

    /// Always fails: raw SUB does not filter.
    ///
    /// # Errors
    /// [`SubscribeError::NotSupported`].
    pub fn subscribe(&mut self, _topic: &[u8]) -> Result<(), SubscribeError> {
        Err(SubscribeError::NotSupported)
    }

    /// Always fails: raw SUB does not filter.
    ///
    /// # Errors
    /// [`SubscribeError::NotSupported`].
    pub fn unsubscribe(&mut self, _topic: &[u8]) -> Result<(), SubscribeError> {
        Err(SubscribeError::NotSupported)
    }

    /// Returns how many messages a full receive queue has dropped:
    /// [`DropReason::RecvQueueFull`] in [`Protocol::stats`].
    pub fn dropped(&self) -> u64 {
        self.core.drops.get(DropReason::RecvQueueFull)
    }

    /// Sets what a full receive queue gives up from now on: `true` the oldest queued message,
    /// `false` the new one.
    pub fn set_prefer_new(&mut self, prefer_new: bool) {
        self.core.set_prefer_new(prefer_new);
    }

    /// Returns true when a full receive queue drops its oldest message rather than the new one.
    pub fn prefer_new(&self) -> bool {
        self.core.prefer_new
    }
}

impl Protocol for XSub {
    fn drops_when_full(&self) -> bool {
        true
    }

    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::SUB
    }

    fn is_raw(&self) -> bool {
        true
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        self.core.handle(input, |_| true, false);
    }

    forward_to_core!();
    sub_send_recv!();

    /// Resizes the receive queue. Shrinking drops the newest messages beyond the new length.
    /// XSUB never pauses a pipe, so growing resumes nothing.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
    fn set_recv_buffer(&mut self, len: usize, _now: Instant) -> Result<(), ConfigError> {
        self.core.set_recv_buffer(check_queue_len(len)?);
        Ok(())
    }

    fn stats(&self) -> CoreStats {
        self.core.stats()
    }
}

/// The receive side that [`Sub`] and [`XSub`] share: attached PUB pipes and a lossy queue.
#[derive(Debug)]
struct SubCore {
    pipes: BTreeSet<PipeId>,
    queue: DropQueue<(PipeId, Bytes)>,
    prefer_new: bool,
    events: VecDeque<Event>,
    /// Messages dropped on the way to the socket's own queue, or from it.
    drops: DropCounts,
}

impl SubCore {
    fn new(config: &SubConfig) -> Self {
        let overflow = overflow(config.prefer_new);
        Self {
            pipes: BTreeSet::new(),
            queue: DropQueue::new(config.recv_buffer, overflow),
            prefer_new: config.prefer_new,
            events: VecDeque::new(),
            drops: DropCounts::default(),
        }
    }

    /// Applies a pipe input; a received body is queued when `wanted` says so. Returns a
    /// message received on an attached pipe, queued or not, as `(pipe, body, wanted)`, for
    /// contexts to filter; without `for_contexts` (no context is open), the body returned is
    /// empty and a queued body is the received one, not a copy.
    ///
    /// Why not always a copy: the copy shares the received batch's buffer, and counting that
    /// share (and dropping the unused original) was two atomic operations per message on a
    /// counter that the receiving application's thread also updates.
    fn handle(
        &mut self,
        input: Input,
        wanted: impl FnOnce(&[u8]) -> bool,
        for_contexts: bool,
    ) -> Option<(PipeId, Bytes, bool)> {
        match input {
            Input::PipeAdded { pipe, peer } => {
                if !refuse_wrong_peer(ProtocolId::PUB, pipe, peer, &mut self.events) {
                    self.pipes.insert(pipe);
                }
            }
            Input::PipeRemoved { pipe } => {
                self.pipes.remove(&pipe);
            }
            Input::PipeWritable { .. } => {}
            // SUB never sends, so a driver has nothing to hand back; count it anyway.
            Input::Unsent { .. } => self.drops.record(DropReason::PipeClosed),
            Input::Received { pipe, msg } => {
                // A refused pipe's data is not counted: its close accounts for it.
                if !self.pipes.contains(&pipe) {
                    return None;
                }
                let mut body = msg.into_contiguous();
                let wanted = wanted(&body);
                if wanted {
                    let queued = if for_contexts {
                        body.clone()
                    } else {
                        std::mem::take(&mut body)
                    };
                    match self.queue.push((pipe, queued)) {
                        Pushed::First => self.events.push_back(Event::Readable),
                        Pushed::Queued => {}
                        Pushed::Dropped => self.drops.record(DropReason::RecvQueueFull),
                    }
                }
                return Some((pipe, body, wanted));
            }
        }
        None
    }

    fn recv(&mut self) -> Result<Message, RecvError> {
        self.queue
            .pop()
            .map(|(pipe, body)| Message::new(body).with_pipe(pipe))
            .ok_or(RecvError::WouldBlock)
    }

    /// Resizes the queue to `len` (already checked), counting what shrinking discards.
    fn set_recv_buffer(&mut self, len: usize) {
        let shrunk = self.queue.set_capacity(len);
        self.drops.add(DropReason::QueueShrunk, shrunk as u64);
    }

    fn set_prefer_new(&mut self, prefer_new: bool) {
        self.prefer_new = prefer_new;
        self.queue.set_overflow(overflow(prefer_new));
    }

    /// Returns what a full queue gives up under the current `prefer_new`.
    fn overflow(&self) -> Overflow {
        overflow(self.prefer_new)
    }

    fn stats(&self) -> CoreStats {
        CoreStats {
            dropped: self.drops,
            recv_queued: self.queue.len(),
            ..CoreStats::default()
        }
    }

    #[inline]
    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// SUB drops rather than pauses, so it reads every attached pipe.
    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(&pipe)
    }
}

/// Returns what a full receive queue gives up under `prefer_new`.
fn overflow(prefer_new: bool) -> Overflow {
    if prefer_new {
        Overflow::DropOldest
    } else {
        Overflow::DropNewest
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::testing::{add, drain_ev, drain_tx, p, receive};
    use crate::protocol::PipeCloseReason;

    fn recv_all(proto: &mut impl Protocol) -> Vec<Bytes> {
        std::iter::from_fn(|| proto.recv(Instant::now()).ok())
            .map(|m| m.body)
            .collect()
    }

    #[test]
    fn pub_writes_idle_pipes_at_once_and_queues_for_busy_ones() {
        let now = Instant::now();
        let mut publisher = Pub::new(PubConfig::default());
        add(&mut publisher, 2, ProtocolId::SUB);
        add(&mut publisher, 1, ProtocolId::SUB);

        publisher.send(Message::from("a"), now).unwrap();
        publisher.send(Message::from("b"), now).unwrap();

        assert_eq!(
            drain_tx(&mut publisher),
            vec![(1, "a".into()), (2, "a".into())]
        );
        publisher.handle(Input::PipeWritable { pipe: p(2) }, now);
        assert_eq!(drain_tx(&mut publisher), vec![(2, "b".into())]);
        publisher.handle(Input::PipeWritable { pipe: p(2) }, now);
        assert!(drain_tx(&mut publisher).is_empty());
        assert!(
            drain_ev(&mut publisher).is_empty(),
            "no Writable: never blocks"
        );
    }

    #[test]
    fn pub_full_queue_drops_oldest_for_that_pipe_only() {
        let now = Instant::now();
        let mut publisher = Pub::new(PubConfig { send_buffer: 2 });
        add(&mut publisher, 1, ProtocolId::SUB);
        add(&mut publisher, 2, ProtocolId::SUB);
        publisher.send(Message::from("0"), now).unwrap();
        drain_tx(&mut publisher);
        publisher.handle(Input::PipeWritable { pipe: p(2) }, now);

        for body in ["1", "2", "3", "4"] {
            publisher.send(Message::from(body), now).unwrap();
        }

        assert_eq!(publisher.dropped(), 3);
        assert_eq!(publisher.dropped_on(p(1)), Some(2));
        assert_eq!(publisher.dropped_on(p(2)), Some(1));
        assert_eq!(publisher.dropped_on(p(3)), None);
        let mut got = Vec::new();
        for _ in 0..4 {
            publisher.handle(Input::PipeWritable { pipe: p(1) }, now);
            got.extend(drain_tx(&mut publisher).into_iter().filter(|t| t.0 == 1));
        }
        assert_eq!(got, vec![(1, "3".into()), (1, "4".into())]);
        publisher.handle(Input::PipeRemoved { pipe: p(1) }, now);
        assert_eq!(publisher.dropped(), 3, "the total outlives the pipe");
    }

    #[test]
    fn pub_without_pipes_discards_and_refuses_wrong_peer() {
        let now = Instant::now();
        let mut publisher = Pub::new(PubConfig::default());
        publisher.send(Message::from("nobody"), now).unwrap();
        add(&mut publisher, 1, ProtocolId::PUB);
        let reason = PipeCloseReason::IncompatiblePeer(ProtocolId::PUB);
        assert_eq!(
            drain_ev(&mut publisher),
            vec![Event::ClosePipe { pipe: p(1), reason }]
        );
        publisher.send(Message::from("still nobody"), now).unwrap();
        assert!(drain_tx(&mut publisher).is_empty());
        assert_eq!(publisher.dropped(), 0);
    }

    #[test]
    fn pub_discards_data_from_sub_and_cannot_receive() {
        let now = Instant::now();
        let mut publisher = Pub::new(PubConfig::default());
        add(&mut publisher, 1, ProtocolId::SUB);
        receive(&mut publisher, 1, "noise");
        assert!(drain_ev(&mut publisher).is_empty());
        assert!(publisher.is_receiving(p(1)));
        assert_eq!(publisher.recv(now), Err(RecvError::NotSupported));
    }

    #[test]
    fn pub_sends_header_and_body_as_given() {
        let now = Instant::now();
        let mut publisher = Pub::new(PubConfig::default());
        add(&mut publisher, 1, ProtocolId::SUB);
        publisher
            .send(Message::with_header(&b"hd"[..], &b"body"[..]), now)
            .unwrap();
        assert_eq!(drain_tx(&mut publisher), vec![(1, "hdbody".into())]);
    }

    #[test]
    fn sub_delivers_once_per_message_whatever_matches() {
        let mut sub = Sub::new(SubConfig::default());
        add(&mut sub, 1, ProtocolId::PUB);
        sub.subscribe(b"");
        sub.subscribe(b"a");
        sub.subscribe(b"ab");
        receive(&mut sub, 1, "abc");
        assert_eq!(drain_ev(&mut sub), vec![Event::Readable]);
        assert_eq!(recv_all(&mut sub), vec![Bytes::from("abc")]);
    }

    #[test]
    fn sub_subscribing_twice_is_one_topic() {
        let mut sub = Sub::new(SubConfig::default());
        sub.subscribe(b"t");
        sub.subscribe(b"t");
        assert_eq!(sub.subscription_count(), 1);
        assert_eq!(sub.unsubscribe(b"t"), Ok(()));
        assert!(!sub.is_subscribed(b"t"));
        assert_eq!(sub.unsubscribe(b"t"), Err(SubscribeError::UnknownTopic));
    }

    #[test]
    fn sub_unsubscribe_purges_queued_messages_no_topic_matches() {
        let mut sub = Sub::new(SubConfig::default());
        add(&mut sub, 1, ProtocolId::PUB);
        sub.subscribe(b"a");
        sub.subscribe(b"ab");
        sub.subscribe(b"b");
        for body in ["a1", "ab1", "b1"] {
            receive(&mut sub, 1, body);
        }
        sub.unsubscribe(b"a").unwrap();
        assert_eq!(recv_all(&mut sub), vec![Bytes::from("ab1"), "b1".into()]);
        assert_eq!(sub.dropped(), 0);
    }

    #[test]
    fn sub_full_queue_follows_prefer_new() {
        for (prefer_new, expected) in [(true, ["2", "3"]), (false, ["1", "2"])] {
            let mut sub = Sub::new(SubConfig {
                recv_buffer: 2,
                prefer_new,
            });
            add(&mut sub, 1, ProtocolId::PUB);
            sub.subscribe(b"");
            for body in ["1", "2", "3"] {
                receive(&mut sub, 1, body);
            }
            assert!(sub.is_receiving(p(1)), "SUB never pauses");
            assert_eq!(sub.dropped(), 1);
            assert_eq!(
                recv_all(&mut sub),
                expected.map(Bytes::from),
                "{prefer_new}"
            );
        }
    }

    #[test]
    fn sub_ignores_unknown_pipes_and_refuses_non_pub() {
        let now = Instant::now();
        let mut sub = Sub::new(SubConfig::default());
        sub.subscribe(b"");
        add(&mut sub, 1, ProtocolId::SUB);
        receive(&mut sub, 1, "x");
        let reason = PipeCloseReason::IncompatiblePeer(ProtocolId::SUB);
        assert_eq!(
            drain_ev(&mut sub),
            vec![Event::ClosePipe { pipe: p(1), reason }]
        );
        assert_eq!(sub.recv(now), Err(RecvError::WouldBlock));
        assert_eq!(
            sub.send(Message::from("x"), now),
            Err(SendError::NotSupported)
        );
    }

    #[test]
    fn xsub_delivers_everything_and_refuses_topics() {
        let now = Instant::now();
        let mut xsub = XSub::new(SubConfig::default());
        add(&mut xsub, 1, ProtocolId::PUB);
        assert_eq!(xsub.subscribe(b"a"), Err(SubscribeError::NotSupported));
        assert_eq!(xsub.unsubscribe(b"a"), Err(SubscribeError::NotSupported));
        receive(&mut xsub, 1, "anything");
        receive(&mut xsub, 1, "");
        assert_eq!(drain_ev(&mut xsub), vec![Event::Readable]);
        let msg = xsub.recv(now).unwrap();
        assert!(msg.header.is_empty());
        assert_eq!(msg.body, "anything");
        assert_eq!(recv_all(&mut xsub), vec![Bytes::new()]);
        assert_eq!(
            xsub.send(Message::from("x"), now),
            Err(SendError::NotSupported)
        );
    }
}
