//! The shared [`Protocol`] trait, its inputs and outputs, and the per-protocol state machines.
//!
//! Every socket role is a sans-IO state machine. The driver that owns it (in `sp-transport`, or
//! the simulator in tests) follows one loop:
//!
//! 1. Apply exactly one input: [`Protocol::handle`], [`Protocol::handle_timeout`], or an
//!    application command ([`Protocol::send`] / [`Protocol::recv`]).
//! 2. Drain [`Protocol::poll_transmit`] and [`Protocol::poll_event`] until both return `None`.
//! 3. Read [`Protocol::poll_timeout`] and sleep until that deadline, pipe readiness or an
//!    application command, whichever comes first.
//! 4. On waking, read the clock once, pass it as `now`, and go back to step 1.
//!
//! ## Pipe readiness contract
//!
//! * A pipe is *writable* right after [`Input::PipeAdded`]. Once the core emits a [`Transmit`]
//!   for a pipe, it treats that pipe as busy until the driver reports [`Input::PipeWritable`].
//!   A driver with room in its per-pipe queue may report that at once, which keeps the socket
//!   moving while the pipe's writer batches frames into one vectored write.
//! * A pipe is *receiving* while [`Protocol::is_receiving`] says so. A driver stops feeding
//!   frames from a pipe that is not receiving, and resumes when [`Event::ResumeReceiving`]
//!   names it. That is how a slow consumer throttles its peers through TCP.
//! * The driver feeds [`Input::PipeRemoved`] for every pipe that goes away, including pipes the
//!   core asked it to close with [`Event::ClosePipe`]. A core forgets a pipe as soon as it emits
//!   `ClosePipe` for it, ignores inputs for pipes it does not know, and reports unknown pipes as
//!   not receiving.
//! * Messages the core handed out for a pipe that dies before they were written come back:
//!   right before `PipeRemoved` for that pipe, the driver feeds one [`Input::Unsent`] per
//!   [`Transmit`] it took for the pipe and never wrote to the connection, in the order the core
//!   emitted them. The core treats each as a transmit that never happened: it re-routes the
//!   message (PUSH, raw PUSH, raw REQ), sends it again at once (REQ's outstanding request) or
//!   counts it as [`DropReason::PipeClosed`](crate::stats::DropReason::PipeClosed). So every
//!   message a core emitted is either written by the driver or accounted for by the core.
//!
//! ## Application readiness contract
//!
//! [`Event::Readable`] and [`Event::Writable`] are edge-triggered: a core emits them when
//! `recv` or `send` may have gone from `WouldBlock` to something else (a receive queue turned
//! non-empty, the set of writable pipes turned non-empty, a saved request's pipe freed up).
//! A caller therefore retries until it sees `WouldBlock` again before it waits, and registers
//! its wake-up in the same critical section as the attempt that returned `WouldBlock`. A core
//! may leave out an `Event::Writable` that no caller asked for: one whose `send` returned
//! `WouldBlock`, or whose `is_writable` or `will_take` returned false, since the last one
//! (PAIR does, whose pipe turns busy and writable again with every message sent).
//!
//! ## Contexts
//!
//! Cooked REQ, REP, SURVEYOR, RESPONDENT and SUB can run many operations at once on one socket,
//! each on its own [`ContextId`] ([`Protocol::open_context`], [`Protocol::send_on`],
//! [`Protocol::recv_on`]); see [`context`]. The socket's own `send` and `recv` keep acting on
//! the default context, unchanged. Every other role refuses contexts with
//! [`ContextError::NotSupported`] through the trait's default methods.
//!
//! Wake-ups stay targeted: [`Event::ContextReadable`] and [`Event::ContextWritable`] name the one
//! context whose `recv_on` or `send_on` may have stopped returning `WouldBlock`, with the same
//! edge-triggered contract as above, per context. [`Event::Readable`] and [`Event::Writable`]
//! concern the default context only. A driver keeps one readiness flag and one waiter list per
//! context.
//!
//! A `recv_on` that returns `WouldBlock` *registers a waiting receive* on the context: the core
//! may hand a message to it directly (REP and RESPONDENT share their requests out among the
//! waiting contexts in the order they started waiting), fail it with [`RecvError::Canceled`]
//! when a newer send replaces the request it waited for (REQ, SURVEYOR), and refuse a second
//! receive while one waits with [`RecvError::BadState`] (REQ, REP, RESPONDENT). So after
//! `WouldBlock` the driver calls `recv_on` for that context again only once the context was
//! named by `ContextReadable`, and calls [`Protocol::cancel_recv`] when the waiting receive
//! gives up (a timeout, a dropped future) so that whatever was handed to it goes to the next
//! waiting context.

use std::time::Instant;

use crate::stats::CoreStats;
use crate::{Message, PipeId, ProtocolId};

pub mod bus;
pub mod context;
pub mod pair;
pub mod pair1;
pub mod pipeline;
pub mod pubsub;
pub mod raw;
mod replier;
pub mod reqrep;
pub mod reqrep_raw;
mod shared;
pub mod star;
pub mod survey;
#[cfg(test)]
mod testing;
mod topic_trie;

pub use context::{ContextError, ContextId};

/// What happened to a pipe or arrived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A pipe finished its handshake with a peer of type `peer` and may carry messages.
    PipeAdded {
        /// The new pipe.
        pipe: PipeId,
        /// The protocol the peer announced in its handshake.
        peer: ProtocolId,
    },
    /// A pipe closed, for whatever reason. What the driver still held for it was handed back
    /// just before with [`Input::Unsent`].
    PipeRemoved {
        /// The pipe that went away.
        pipe: PipeId,
    },
    /// The pipe can take another message (see the readiness contract above).
    PipeWritable {
        /// The pipe that has room again.
        pipe: PipeId,
    },
    /// A whole message arrived on a pipe. Its wire bytes are the header followed by the body:
    /// the protocol parses its control words from their front. A stream pipe delivers an
    /// empty header (everything is in the body); an inproc pipe hands over the sending core's
    /// header as its own buffer, which a core may read in place when it is exactly the words
    /// it strips (PAIR v1's hop count) instead of joining the two
    /// ([`Message::into_contiguous`]).
    Received {
        /// The pipe it came from.
        pipe: PipeId,
        /// The message: header, then body, as on the wire.
        msg: Message,
    },
    /// A message the core emitted for `pipe` (a [`Transmit`]) that the driver never wrote to
    /// the connection, because the pipe died first.
    ///
    /// **Driver contract.** When a pipe goes away, the driver feeds one `Unsent` for every
    /// transmit it took from the core for that pipe and did not write (its per-pipe write
    /// queue), in the order the core emitted them, immediately before
    /// [`Input::PipeRemoved`] for that pipe: nothing else is fed, and no application command
    /// runs, between the first `Unsent` and `PipeRemoved`. `msg` is exactly the transmit's
    /// message, header and body as the core produced them. The driver does not count these
    /// messages as dropped itself: the core does, or sends them again.
    ///
    /// **Core contract.** The core treats the message as a transmit that never happened, and
    /// either sends it again (to another pipe; never to `pipe`, which it treats as busy from
    /// the first `Unsent` on) or counts it as
    /// [`DropReason::PipeClosed`](crate::stats::DropReason::PipeClosed), once per message:
    /// * PUSH, raw PUSH and raw REQ re-route it to another writable pipe. Returned messages
    ///   keep their order and go out before any new send; while some wait for a pipe (none is
    ///   writable, or none is attached), `send` returns `WouldBlock`.
    /// * REQ resends its context's outstanding request at once (same ID, counted in
    ///   [`CoreStats::resends`](crate::stats::CoreStats::resends)) when the message is that
    ///   request and the context still waits for it on `pipe`; the `PipeRemoved` that follows
    ///   then does not send it again. Any other copy (a replaced or answered request, or one
    ///   already resent elsewhere) is counted.
    /// * Every other role counts it: a survey or a reply was for that peer alone, a
    ///   broadcast copy was that pipe's.
    /// * An `Unsent` for a pipe the core does not know (never attached, refused, kicked or
    ///   already removed) is counted.
    Unsent {
        /// The pipe that died with the message in its write queue.
        pipe: PipeId,
        /// The transmit's message: unchanged, or with its header and body joined into the
        /// body (a driver that had framed it already); the bytes are the same.
        msg: Message,
    },
}

/// A message the driver must write to one pipe (header bytes, then body bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The pipe to write to.
    pub pipe: PipeId,
    /// The message; its header and body go on the wire back to back.
    pub msg: Message,
}

/// Something the driver or the application must learn about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// [`Protocol::recv`] may now return something other than `WouldBlock`: a message or an
    /// error. Spurious wake-ups are allowed; waiters simply try again.
    Readable,
    /// [`Protocol::send`] may now succeed. Spurious wake-ups are allowed.
    Writable,
    /// The core refuses or kicks this pipe; the driver must close it and then feed
    /// [`Input::PipeRemoved`].
    ClosePipe {
        /// The pipe to close.
        pipe: PipeId,
        /// Why the core wants it gone.
        reason: PipeCloseReason,
    },
    /// The driver may feed frames from this pipe again.
    ResumeReceiving {
        /// The pipe that may deliver again.
        pipe: PipeId,
    },
    /// [`Protocol::recv_on`] for `ctx` may now return something other than `WouldBlock`: a
    /// message handed to it, an error, or the cancellation of its waiting receive.
    ContextReadable {
        /// The context that became readable.
        ctx: ContextId,
    },
    /// [`Protocol::send_on`] for `ctx` may now succeed (REP and RESPONDENT: the pipe the reply
    /// waits for turned idle or went away).
    ContextWritable {
        /// The context that became writable.
        ctx: ContextId,
    },
}

/// Why a protocol core asked for a pipe to be closed. Each variant is a peer's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PipeCloseReason {
    /// The peer's protocol is not this socket's partner.
    #[error("peer speaks {0:?}, which cannot talk to this socket")]
    IncompatiblePeer(ProtocolId),
    /// An exclusive protocol (PAIR) already has its one peer.
    #[error("this socket already has its one peer")]
    Busy,
    /// The peer sent a message whose protocol header cannot be parsed.
    #[error("peer sent a malformed protocol header")]
    MalformedHeader,
}

/// Why [`Protocol::send`] did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No pipe or queue can take the message now; retry after [`Event::Writable`].
    #[error("no peer can take the message right now")]
    WouldBlock,
    /// The protocol's state forbids a send now (for example REP before a request arrived).
    #[error("send is not allowed in the current protocol state")]
    BadState,
    /// This protocol never sends (PULL, SUB).
    #[error("this protocol cannot send")]
    NotSupported,
    /// No open context has this ID (it was closed): open a new context.
    #[error("the context is closed")]
    UnknownContext,
    /// A raw socket was given a header that breaks its protocol's rules (raw PAIR v1: not
    /// exactly 4 bytes, or a hop count of `0xFF` or more). NNG's `NNG_EPROTO`.
    #[error("the message header breaks the protocol's rules")]
    InvalidHeader,
}

/// Why [`Protocol::recv`] did not return a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Nothing to receive yet; retry after [`Event::Readable`].
    #[error("no message is available yet")]
    WouldBlock,
    /// The protocol's state forbids a receive now (for example REQ with no request out).
    #[error("receive is not allowed in the current protocol state")]
    BadState,
    /// This protocol never receives (PUSH, PUB).
    #[error("this protocol cannot receive")]
    NotSupported,
    /// The pipe carrying the outstanding request closed and resending is disabled.
    #[error("the connection carrying the request was lost")]
    ConnectionReset,
    /// The survey ended: its deadline passed, and any responses not yet received are gone.
    /// [`Surveyor`](survey::Surveyor) reports it once per survey; receiving again gives
    /// [`RecvError::BadState`] until the next survey. It stands for NNG's and nanomsg's
    /// `ETIMEDOUT` on a surveyor.
    #[error("the survey ended")]
    SurveyExpired,
    /// The receive was waiting on a context when a newer send on that context replaced the
    /// request (or survey) it waited for; receive again for the new one's answer. NNG's
    /// `ECANCELED`, mangos' `ErrCanceled`.
    #[error("a newer send on this context canceled the request this receive was waiting for")]
    Canceled,
    /// No open context has this ID (it was closed): open a new context.
    #[error("the context is closed")]
    UnknownContext,
}

/// Why a configuration value was rejected when it was set.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The maximum TTL must be within `1..=255`.
    #[error("max ttl {0} is outside 1..=255")]
    MaxTtlOutOfRange(u8),
    /// A queue length must be within `0..=`[`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
    #[error("queue length {0} is outside 0..=8192")]
    QueueLenOutOfRange(usize),
    /// This role has no such queue or setting.
    #[error("this protocol has no such setting")]
    NotSupported,
}

/// One SP socket role as a sans-IO state machine. See the module docs for the drive loop.
///
/// The cores mark their accessors that a driver calls after every send, receive and delivery
/// (`poll_transmit`, `poll_event`, `poll_timeout`, `is_receiving`, `will_take`, `is_writable`)
/// `#[inline]`: the driver is another crate, which cannot inline them otherwise. With
/// `Message`'s accessors and `FrameDecoder::payload_len` marked too, a 64 B message over inproc
/// costs 6.9 % fewer instructions (BENCHMARKS.md, "The cores' small accessors are inlined into
/// the driver").
pub trait Protocol {
    /// Returns the SP type this socket announces in its handshake.
    fn protocol(&self) -> ProtocolId;

    /// Returns true for a raw ("x") socket, which hands protocol headers to the application and
    /// takes them from it unchanged (SP-PROTOCOLS.md section 5.1). Devices accept raw sockets
    /// only. Default: false.
    fn is_raw(&self) -> bool {
        false
    }

    /// Returns the SP type a peer must announce to be accepted.
    fn peer_protocol(&self) -> ProtocolId {
        // Every ID returned by `protocol()` is a known one, so it has a peer.
        self.protocol()
            .peer()
            .expect("a protocol core announces a known SP type")
    }

    /// Applies one pipe input. May queue transmits and events.
    fn handle(&mut self, input: Input, now: Instant);

    /// Fires every timer whose deadline is `<= now`. An early call does nothing.
    fn handle_timeout(&mut self, now: Instant);

    /// Returns the next message to write, if any.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// Returns the next event, if any.
    fn poll_event(&mut self) -> Option<Event>;

    /// Returns the earliest pending deadline. Read it again after every input.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Returns true while the driver should keep feeding frames from `pipe`.
    fn is_receiving(&self, pipe: PipeId) -> bool;

    /// Returns whether the core reads any `now` it is given. Only a core with timers does:
    /// REQ (its resend timer starts at the send) and SURVEYOR (its survey deadline, which a
    /// receive at the deadline also ends). For a core that returns false a driver may skip
    /// its clock read and pass the latest time it read instead, so that the hottest paths
    /// (every send, receive and delivery) read no clock. Default: true (the safe answer);
    /// every untimed core overrides it.
    fn reads_time(&self) -> bool {
        true
    }

    /// Returns whether a receive (`recv`, `recv_on`, `cancel_recv`) reads the `now` it is
    /// given. REQ's timers start at a send and fire on their own, so its receives read none;
    /// a driver then skips the clock on the receive path as it does everywhere for untimed
    /// cores (REQ/REP contexts: two clock reads fewer per round trip). Default:
    /// [`Protocol::reads_time`].
    fn receive_reads_time(&self) -> bool {
        self.reads_time()
    }

    /// Offers an application message for sending.
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when nothing can take it now, [`SendError::BadState`] or
    /// [`SendError::NotSupported`] when the protocol forbids it.
    fn send(&mut self, msg: Message, now: Instant) -> Result<(), SendError>;

    /// Returns true when [`Protocol::send`] called now would take `msg`, with no error of any
    /// kind. Default: false, which is always correct.
    ///
    /// Why: a driver gives a message that could not be sent back to its caller, so it offers
    /// the core a copy and keeps the original; when the core says it will take the message,
    /// the driver hands the original over instead. A copy of a message shares its payload,
    /// but counting that share costs two atomic operations per message on the hot path of a
    /// small message.
    #[inline]
    fn will_take(&self, _msg: &Message) -> bool {
        false
    }

    /// Takes the next message for the application.
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is ready, or a protocol-specific failure.
    fn recv(&mut self, now: Instant) -> Result<Message, RecvError>;

    /// Returns true when [`Protocol::recv`] called now would return a message, or the outcome
    /// of the last request or survey ([`RecvError::ConnectionReset`],
    /// [`RecvError::SurveyExpired`]), without waiting: the socket is readable (NNG's
    /// `NNG_OPT_RECVFD`, nanomsg's `NN_POLLIN`; SP-PROTOCOLS.md scenario 36). A socket with
    /// nothing to wait for (a REQ with no request out) is not readable. A driver waits for it
    /// on [`Event::Readable`].
    ///
    /// Default: whether any message waits in the core's queues ([`CoreStats::recv_queued`]),
    /// which may count a context's messages that the socket's own receive does not take: a
    /// false "readable" costs the waiter one receive that finds nothing, a false "not
    /// readable" would leave it waiting, so a custom core errs on the first side. The cores
    /// of this crate answer exactly.
    fn is_readable(&self) -> bool {
        self.stats().recv_queued > 0
    }

    /// Returns true when [`Protocol::send`] called now would not fail with
    /// [`SendError::WouldBlock`]: the socket is writable (NNG's `NNG_OPT_SENDFD`, nanomsg's
    /// `NN_POLLOUT`). A REQ is not writable before it has a pipe, nor while its pipes are
    /// busy; a PUB always is (SP-PROTOCOLS.md scenario 36); a role that cannot send (PULL,
    /// SUB) never is, and a replier (REP, RESPONDENT) is while it holds a request to answer
    /// whose pipe can take the reply. A driver waits for it on [`Event::Writable`].
    ///
    /// Default: [`Protocol::will_take`] of an empty message.
    #[inline]
    fn is_writable(&self) -> bool {
        self.will_take(&Message::default())
    }

    /// Opens a new context: independent per-operation state sharing the socket's pipes. It
    /// inherits the socket's current settings (resend interval, survey time, queue sizes).
    ///
    /// # Errors
    /// [`ContextError::NotSupported`] for every role without contexts (this default).
    fn open_context(&mut self, _now: Instant) -> Result<ContextId, ContextError> {
        Err(ContextError::NotSupported)
    }

    /// Closes `ctx`: its request, survey or queue is dropped, and a message already handed to
    /// its waiting receive goes to the next waiting context. A driver fails the operations
    /// still waiting on it.
    ///
    /// # Errors
    /// [`ContextError::UnknownContext`] when `ctx` is not open; [`ContextError::NotSupported`]
    /// for roles without contexts.
    fn close_context(&mut self, _ctx: ContextId, _now: Instant) -> Result<(), ContextError> {
        Err(ContextError::NotSupported)
    }

    /// Sends on `ctx`, as [`Protocol::send`] does on the default context. Each role documents
    /// how its contexts differ (for example a REQ context queues the request instead of
    /// returning `WouldBlock`).
    ///
    /// # Errors
    /// [`SendError::UnknownContext`] when `ctx` is not open, and the errors of
    /// [`Protocol::send`]; [`SendError::NotSupported`] for roles without contexts.
    fn send_on(&mut self, _ctx: ContextId, _msg: Message, _now: Instant) -> Result<(), SendError> {
        Err(SendError::NotSupported)
    }

    /// Returns true when [`Protocol::send_on`] on `ctx` called now would take `msg`, with no
    /// error of any kind: [`Protocol::will_take`] for a context's send, and for the same
    /// reason (the driver then hands over the message instead of a copy). Default: false,
    /// which is always correct.
    fn will_take_on(&self, _ctx: ContextId, _msg: &Message) -> bool {
        false
    }

    /// Receives on `ctx`, as [`Protocol::recv`] does on the default context. `WouldBlock`
    /// registers a waiting receive (see the module docs on contexts).
    ///
    /// # Errors
    /// [`RecvError::UnknownContext`] when `ctx` is not open, [`RecvError::Canceled`] once after
    /// a newer send replaced what a waiting receive waited for, [`RecvError::BadState`] for a
    /// second receive while one waits (REQ, REP, RESPONDENT), and the errors of
    /// [`Protocol::recv`]; [`RecvError::NotSupported`] for roles without contexts.
    fn recv_on(&mut self, _ctx: ContextId, _now: Instant) -> Result<Message, RecvError> {
        Err(RecvError::NotSupported)
    }

    /// Tells the core that the receive waiting on `ctx` gave up (timed out or was dropped).
    /// A message already handed to it goes to the next waiting context or back to the front
    /// of the socket's queue. Does nothing when no receive waits.
    fn cancel_recv(&mut self, _ctx: ContextId, _now: Instant) {}

    /// Returns a snapshot of the core's counters: every message it dropped, by reason, and
    /// its queue depths. Every core overrides this; a core never drops a message uncounted.
    fn stats(&self) -> CoreStats {
        CoreStats::default()
    }

    /// Whether a message received while the receive queue is full is dropped (SUB, BUS,
    /// STAR, a SURVEYOR's responses) rather than left with its pipe, which the core pauses.
    /// Default: false.
    ///
    /// Why a driver asks: with a core that drops, nothing stops a pipe that delivers batch
    /// after batch but the receivers those deliveries wake, so a driver lets them run first.
    fn drops_when_full(&self) -> bool {
        false
    }

    /// Returns the receive queue length in messages (NNG's `NNG_OPT_RECVBUF`), or `None` for a
    /// role without a receive queue. A length set as 0 reads back as 1, the length in effect.
    fn recv_buffer(&self) -> Option<usize> {
        None
    }

    /// Resizes the receive queue while the socket runs (0 counts as 1). Shrinking below what
    /// is queued drops the newest messages beyond the new length, counted as
    /// [`DropReason::QueueShrunk`](crate::stats::DropReason::QueueShrunk).
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN);
    /// [`ConfigError::NotSupported`] for a role without a receive queue (this default).
    fn set_recv_buffer(&mut self, _len: usize, _now: Instant) -> Result<(), ConfigError> {
        Err(ConfigError::NotSupported)
    }

    /// Returns the per-pipe send queue length of the core in messages (PUB, BUS, STAR,
    /// polyamorous PAIR v1), or `None` for a role that queues nothing itself.
    fn send_buffer(&self) -> Option<usize> {
        None
    }

    /// Resizes the core's per-pipe send queues while the socket runs (0 counts as 1), as
    /// [`Protocol::set_recv_buffer`] does.
    ///
    /// # Errors
    /// As [`Protocol::set_recv_buffer`].
    fn set_send_buffer(&mut self, _len: usize, _now: Instant) -> Result<(), ConfigError> {
        Err(ConfigError::NotSupported)
    }
}
