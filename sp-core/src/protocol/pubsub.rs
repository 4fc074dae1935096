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
    forward_to_core, refuse_wrong_peer, Broadcast, DropQueue, Overflow, Pushed,
};
use crate::protocol::topic_trie::TopicTrie;
use crate::protocol::{
    ContextError, ContextId, Event, Input, Protocol, RecvError, SendError, Transmit,
};
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

/// Writes the [`Protocol`] methods `send` and `recv` that [`Sub`] and [`XSub`] share.
macro_rules! sub_send_recv {
    () => {
        /// Always fails: SUB cannot send.
        ///
        /// # Errors
        /// [`SendError::NotSupported`].
        fn send(&mut self, _msg: Message, _now: Instant) -> Result<(), SendError> {
            Err(SendError::NotSupported)
        }

        /// Takes the oldest queued message, with an empty header.
        ///
        /// # Errors
        /// [`RecvError::WouldBlock`] when nothing is queued.
        fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
            self.core.recv()
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
    /// ever attached. Messages discarded because no pipe was attached do not count.
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
    fn protocol(&self) -> ProtocolId {
        ProtocolId::PUB
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        // Whatever a SUB sends is read and thrown away.
        let _discarded = self.core.handle(input);
    }

    forward_to_core!();

    /// Gives a copy of `msg`, header and body as given, to every attached pipe: written at
    /// once to idle pipes, queued for busy ones (dropping a full queue's oldest copy).
    ///
    /// # Errors
    /// None: PUB never blocks, and with no pipe the message is discarded.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        self.core.send(&msg, None);
        Ok(())
    }

    /// Always fails: PUB cannot receive.
    ///
    /// # Errors
    /// [`RecvError::NotSupported`].
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        Err(RecvError::NotSupported)
    }
}

/// Settings for [`Sub`] and [`XSub`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubConfig {
    /// How many received messages may wait for [`Protocol::recv`]. Default: 128. 0 counts
    /// as 1.
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
/// Follows SP-PROTOCOLS.md section 4.3 (NNG's `sub0` without contexts). A message matches a
/// topic when its body starts with the topic's bytes; the empty topic matches everything, and
/// with no topic nothing is delivered. Each message is delivered at most once, however many
/// topics match it. Topics live in a radix trie, so matching costs time proportional to the
/// message's matching prefix, not to the number of topics.
///
/// Topics form a set, as in NNG and mangos: subscribing to a topic already present does
/// nothing, and one [`Sub::unsubscribe`] removes it. Unsubscribing also purges queued messages
/// that no remaining topic matches (`test_sub_filter`, mangos `TestSubUnsubscribeDrops`).
///
/// SUB never pauses a pipe and never kicks one because of message content: when the queue of
/// `recv_buffer` messages is full it drops (the oldest queued message with `prefer_new`, else
/// the new one) and counts the loss in [`Sub::dropped`].
///
/// ```text
///  Received on an attached pipe
///      |
///      v                      no
///  [ some topic a prefix? ] -----> dropped (filtered, not counted)
///      | yes
///      v                      no
///  [ queue has room? ] ----------> prefer_new: oldest dropped, new queued; else new dropped
///      | yes                       (counted either way)
///      v
///  queued; Event::Readable if the queue was empty
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than PUB is refused), [`Input::PipeRemoved`]
/// (queued messages stay), [`Input::PipeWritable`] (ignored), [`Input::Received`].
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
    config: SubConfig,
    /// The opened contexts. The default slot is unused: the socket's own topics and queue
    /// are `topics` and `core`, which raw SUB shares.
    contexts: Contexts<SubContext>,
}

/// The topics and queue of one opened SUB context.
#[derive(Debug)]
struct SubContext {
    topics: TopicTrie,
    queue: DropQueue<Bytes>,
}

impl SubContext {
    fn new(config: &SubConfig) -> Self {
        Self {
            topics: TopicTrie::default(),
            queue: DropQueue::new(config.recv_buffer, overflow(config)),
        }
    }
}

impl Sub {
    /// Creates a SUB socket core with no pipes and no topics.
    pub fn new(config: SubConfig) -> Self {
        Self {
            core: SubCore::new(&config),
            topics: TopicTrie::default(),
            contexts: Contexts::new(SubContext::new(&config)),
            config,
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
        state.queue.retain(|body| topics.matches(body));
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
    /// are not counted in [`Sub::dropped`]).
    ///
    /// # Errors
    /// [`SubscribeError::UnknownTopic`] when `topic` is not subscribed.
    pub fn unsubscribe(&mut self, topic: &[u8]) -> Result<(), SubscribeError> {
        if !self.topics.remove(topic) {
            return Err(SubscribeError::UnknownTopic);
        }
        let topics = &self.topics;
        self.core.queue.retain(|body| topics.matches(body));
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

    /// Returns how many matching messages a full receive queue has dropped.
    pub fn dropped(&self) -> u64 {
        self.core.queue.dropped()
    }
}

impl Protocol for Sub {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::SUB
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let topics = &self.topics;
        let Some(body) = self.core.handle(input, |body| topics.matches(body)) else {
            return;
        };
        if self.contexts.open_count() == 0 {
            return;
        }
        for (key, state) in self.contexts.iter_mut().skip(1) {
            if state.topics.matches(&body) && state.queue.push(body.clone()) == Pushed::First {
                self.core.events.push_back(readable(key));
            }
        }
    }

    forward_to_core!();
    sub_send_recv!();

    /// Opens a context with no topics and an empty queue.
    fn open_context(&mut self, _now: Instant) -> Result<ContextId, ContextError> {
        Ok(self.contexts.open(SubContext::new(&self.config)))
    }

    /// Closes `ctx`; its queued messages are gone.
    fn close_context(&mut self, ctx: ContextId, _now: Instant) -> Result<(), ContextError> {
        self.contexts
            .close(ctx)
            .map(drop)
            .ok_or(ContextError::UnknownContext)
    }

    /// Always fails: SUB cannot send.
    ///
    /// # Errors
    /// [`SendError::NotSupported`].
    fn send_on(&mut self, _ctx: ContextId, _msg: Message, _now: Instant) -> Result<(), SendError> {
        Err(SendError::NotSupported)
    }

    /// Takes the oldest message queued for `ctx`.
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
            .map(Message::new)
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
/// [`SubConfig::prefer_new`] (NNG's XSUB drops the new message, mangos the oldest).
///
/// ```text
///  Received on an attached pipe --> [ room? ] -- yes --> queued; Event::Readable if it was empty
///                                       | no
///                                       +--> prefer_new: drop oldest, queue it; else drop it
/// ```
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

    /// Returns how many messages a full receive queue has dropped.
    pub fn dropped(&self) -> u64 {
        self.core.queue.dropped()
    }
}

impl Protocol for XSub {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::SUB
    }

    fn is_raw(&self) -> bool {
        true
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        self.core.handle(input, |_| true);
    }

    forward_to_core!();
    sub_send_recv!();
}

/// The receive side that [`Sub`] and [`XSub`] share: attached PUB pipes and a lossy queue.
#[derive(Debug)]
struct SubCore {
    pipes: BTreeSet<PipeId>,
    queue: DropQueue<Bytes>,
    events: VecDeque<Event>,
}

impl SubCore {
    fn new(config: &SubConfig) -> Self {
        let overflow = overflow(config);
        Self {
            pipes: BTreeSet::new(),
            queue: DropQueue::new(config.recv_buffer, overflow),
            events: VecDeque::new(),
        }
    }

    /// Applies a pipe input; a received body is queued when `wanted` says so. Returns the body
    /// of a message received on an attached pipe, queued or not, for contexts to filter.
    fn handle(&mut self, input: Input, wanted: impl FnOnce(&[u8]) -> bool) -> Option<Bytes> {
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
            Input::Received { pipe, msg } => {
                if !self.pipes.contains(&pipe) {
                    return None;
                }
                let body = msg.to_contiguous();
                if wanted(&body) && self.queue.push(body.clone()) == Pushed::First {
                    self.events.push_back(Event::Readable);
                }
                return Some(body);
            }
        }
        None
    }

    fn recv(&mut self) -> Result<Message, RecvError> {
        self.queue
            .pop()
            .map(Message::new)
            .ok_or(RecvError::WouldBlock)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        None
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// SUB drops rather than pauses, so it reads every attached pipe.
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(&pipe)
    }
}

/// Returns what a full receive queue gives up under `config`'s `prefer_new`.
fn overflow(config: &SubConfig) -> Overflow {
    if config.prefer_new {
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
