//! REQ and REP, the cooked request/reply roles (SP-PROTOCOLS.md section 4.4,
//! `rfc/sp-request-reply-01` in nanomsg/nanomsg).
//!
//! A request travels as `[request ID] body`; each REP-side device hop prepends a pipe word
//! (see [`crate::backtrace`]). REP sends the whole stack back in front of its reply; REQ strips
//! the request ID and delivers the rest.

use std::collections::VecDeque;
use std::mem;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use rustc_hash::FxHashMap;

use crate::backtrace::{read_word, RequestId, RequestIdSequence, DEFAULT_MAX_TTL, WORD_LEN};
use crate::protocol::context::{readable, Contexts, CtxKey, DeadlineSet};
use crate::protocol::replier::{forward_to_cooked_replier, CookedReplier};
use crate::protocol::shared::{deadline_after, refuse_wrong_peer, PipeSet};
use crate::protocol::{
    ContextError, ContextId, Event, Input, PipeCloseReason, Protocol, RecvError, SendError,
    Transmit,
};
use crate::stats::{CoreStats, DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How long REQ waits for a reply before sending the request again: 60 s, as in NNG, mangos,
/// nanomsg and the draft RFC.
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// How many received requests REP holds before it pauses the pipes that feed it.
pub const DEFAULT_RECV_BUFFER: usize = 128;

// [`Rep::set_max_ttl`] returns it, so it is reachable from this module too.
pub use crate::protocol::ConfigError;

/// Settings for [`Req`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqConfig {
    /// How long to wait for a reply before resending the request with the same ID.
    /// Default: `Some(60 s)`. `None` or a zero duration disables resending; then losing the pipe
    /// that carries a request fails it with [`RecvError::ConnectionReset`].
    pub resend_interval: Option<Duration>,
    /// The step of the grid that resend deadlines are rounded up to (NNG's
    /// `req:resend-tick`), socket-wide. Default: `None`, each resend happens exactly at its
    /// deadline. A zero duration counts as `None`. See [`Req::set_resend_tick`].
    pub resend_tick: Option<Duration>,
    /// Seed for the request ID sequence. Default: 0. Give every socket its own seed.
    pub seed: u64,
}

impl Default for ReqConfig {
    fn default() -> Self {
        Self {
            resend_interval: Some(DEFAULT_RESEND_INTERVAL),
            resend_tick: None,
            seed: 0,
        }
    }
}

/// The cooked REQ role (SP type 48): sends requests and receives the matching replies.
///
/// Follows SP-PROTOCOLS.md section 4.4.2 (NNG's `req0`). Each request gets a fresh
/// [`RequestId`] from a seeded sequence; that ID is the whole header. IDs are unique across
/// the socket, contexts included, so a reply finds its context by ID alone.
///
/// ```text
///            send: new ID, written to the first writable pipe, resend timer armed
///  +------+ ------------------------------------------------> +---------+
///  | Idle |                                                   | Waiting | --+ resend timer fires,
///  +------+ <---+                                             +---------+   | or its pipe closes
///     ^         | recv -> Err(ConnectionReset)                  |   |   ^   | (retry on): same ID
///     |     +-------+        its pipe closes (retry off)        |   |   +---+ on the next pipe
///     |     | Reset | <-----------------------------------------+   |
///     |     +-------+                                               | reply with the current ID
///     |     +---------+                                             |
///     +---- | Replied | <-------------------------------------------+
///  recv->Ok +---------+
///
///  send in any state cancels the current request first (a later reply to it is dropped).
///  recv in Idle: BadState. recv in Waiting: WouldBlock.
/// ```
///
/// **Contexts.** [`Protocol::open_context`] adds a context running the same machine with its
/// own request, resend timer and resend interval (inherited from the socket, then settable
/// with [`Req::set_context_resend_interval`]). Two differences from the default context:
/// * [`Protocol::send_on`] never returns `WouldBlock`: the request joins the socket's FIFO of
///   requests waiting for a writable pipe and goes out as soon as one is free (NNG queues
///   contexts the same way; mangos' `TestReqRetryLateConnect`).
/// * A send that replaces a request while a receive waits on the context fails that receive
///   once with [`RecvError::Canceled`] (announced by [`Event::ContextReadable`]); a second
///   receive while one waits is [`RecvError::BadState`] (scenario 47/48 rules).
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than REP is refused), [`Input::PipeRemoved`]
/// (the requests it carried are resent at once, or fail when resending is off),
/// [`Input::PipeWritable`] (the pipe rejoins the tail of the ready list; a request waiting for
/// a pipe goes out), [`Input::Received`] (a reply: shorter than 4 bytes kicks the pipe, a
/// stale or unknown ID is dropped), [`Input::Unsent`] (a request copy the dying pipe never
/// wrote: when its context still waits for that request on that pipe, the request goes at once
/// to the next writable pipe, counted as a resend, even with resending off since no peer saw
/// it; the `PipeRemoved` that follows then leaves it alone, so it is sent again exactly once.
/// Any other copy is counted as [`DropReason::PipeClosed`]).
///
/// **Events.** [`Event::Readable`] when a reply or a connection reset is ready for
/// [`Protocol::recv`]; [`Event::Writable`] when a pipe becomes writable while none was, so a
/// send that returned `WouldBlock` can be retried; [`Event::ContextReadable`] for the same
/// on a context; [`Event::ClosePipe`] for a wrong peer or a garbage reply.
///
/// **Timers.** One per context with a request out: the resend deadline, armed at
/// `now + resend_interval` each time the request is written (rounded up to the resend tick's
/// grid when a tick is set: see [`Req::set_resend_tick`]). When it fires, the same request
/// (same ID) goes to the next writable pipe, or to the first pipe that becomes writable.
///
/// **Counters** ([`Protocol::stats`]): `resends` counts every request written again (timer,
/// lost pipe or unsent copy), contexts included. Drops: [`DropReason::PipeClosed`] for an
/// unsent copy handed back that is no longer the outstanding request on its pipe (replaced,
/// answered, already resent elsewhere); [`DropReason::StaleReply`] for a reply whose ID is
/// not outstanding (late, repeated, cancelled, unknown) and for a reply that arrived but was
/// never received because a new send replaced its request; [`DropReason::Replaced`] for a
/// request still waiting for a pipe when a new send replaced it; [`DropReason::ContextClosed`]
/// for a context closed with a reply or an unsent request in it. A cancelled request that was
/// already written is not a drop: its pipe took it.
///
/// Pipes are used round-robin in the order they became writable. REQ never pauses a pipe.
#[derive(Debug)]
pub struct Req {
    ids: RequestIdSequence,
    pipes: PipeSet,
    /// The default context holds the socket's resend interval, which new contexts inherit.
    contexts: Contexts<ReqContext>,
    /// The context waiting for each outstanding request ID.
    by_id: FxHashMap<u32, CtxKey>,
    /// Contexts whose request waits for a writable pipe, first come first served.
    queue: VecDeque<CtxKey>,
    timers: DeadlineSet,
    /// The socket-wide grid that resend deadlines are rounded up to.
    tick: ResendTick,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: DropCounts,
    /// Requests written again after their first write.
    resends: u64,
}

impl Req {
    /// Creates a REQ socket core with no pipes.
    pub fn new(config: ReqConfig) -> Self {
        let default = ReqContext::new(normalize_interval(config.resend_interval));
        Self {
            ids: RequestIdSequence::new(config.seed),
            pipes: PipeSet::default(),
            contexts: Contexts::new(default),
            by_id: FxHashMap::default(),
            queue: VecDeque::new(),
            timers: DeadlineSet::default(),
            tick: ResendTick::new(config.resend_tick),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounts::default(),
            resends: 0,
        }
    }

    /// Sets the resend interval of the socket's own requests, which contexts opened later
    /// inherit. `None` or zero disables resending.
    ///
    /// A new value is used from the next time a request is written; disabling also disarms the
    /// current request's timer.
    pub fn set_resend_interval(&mut self, interval: Option<Duration>) {
        self.set_interval(None, interval);
    }

    /// Returns the resend interval, or `None` when resending is disabled.
    pub fn resend_interval(&self) -> Option<Duration> {
        self.contexts.default_ref().resend_interval
    }

    /// Sets the resend interval of context `ctx` alone, as [`Req::set_resend_interval`] does
    /// for the socket.
    ///
    /// # Errors
    /// [`ContextError::UnknownContext`] when `ctx` is not open.
    pub fn set_context_resend_interval(
        &mut self,
        ctx: ContextId,
        interval: Option<Duration>,
    ) -> Result<(), ContextError> {
        self.contexts.lookup(ctx)?;
        self.set_interval(Some(ctx), interval);
        Ok(())
    }

    /// Returns the resend interval of context `ctx`.
    ///
    /// # Errors
    /// [`ContextError::UnknownContext`] when `ctx` is not open.
    pub fn context_resend_interval(
        &mut self,
        ctx: ContextId,
    ) -> Result<Option<Duration>, ContextError> {
        Ok(self.contexts.lookup(ctx)?.resend_interval)
    }

    /// Sets the resend tick (NNG's `req:resend-tick`), for the socket and all its contexts.
    /// `None` or zero: each resend deadline is exactly `resend_interval` after the write.
    ///
    /// With a tick `T`, every resend deadline is rounded up to the next instant of a grid of
    /// step `T`, so a request is resent between `resend_interval` and `resend_interval + T`
    /// after it was written. The grid starts at the `now` of the first deadline armed after
    /// this call (or, for a tick given in [`ReqConfig`], the first deadline armed at all).
    ///
    /// The point is coalescing: with many contexts waiting for replies, their resend
    /// deadlines fall on the same few instants, so the driver's timer wakes once per tick
    /// rather than once per request. NNG resends on such a periodic tick (default 1 s, set
    /// per socket only). The default here, `None`, resends at each request's own deadline,
    /// as mangos does; that is the earliest instant of NNG's window.
    ///
    /// A new value applies to deadlines armed from the next write on, as a new resend
    /// interval does; deadlines already armed stay where they are.
    pub fn set_resend_tick(&mut self, tick: Option<Duration>) {
        self.tick = ResendTick::new(tick);
    }

    /// Returns the resend tick, or `None` when resend deadlines are not rounded.
    pub fn resend_tick(&self) -> Option<Duration> {
        self.tick.tick
    }

    /// Returns the ID of the socket's own request waiting for its reply, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        self.contexts.default_ref().request_id()
    }

    /// Returns the ID of the request context `ctx` waits for, if it is open and waits.
    pub fn context_request_id(&self, ctx: ContextId) -> Option<RequestId> {
        self.contexts
            .get(Some(ctx))
            .and_then(ReqContext::request_id)
    }

    /// Returns how many contexts are open (not counting the socket's own).
    pub fn context_count(&self) -> usize {
        self.contexts.open_count()
    }

    fn set_interval(&mut self, key: CtxKey, interval: Option<Duration>) {
        let interval = normalize_interval(interval);
        if let Some(ctx) = self.contexts.get_mut(key) {
            ctx.resend_interval = interval;
            if let (None, ReqState::Waiting(request)) = (interval, &mut ctx.state) {
                request.deadline = None;
            }
        }
        self.timers.disarmed(live_deadlines(&self.contexts));
    }

    /// Writes the queued requests to writable pipes, oldest first, while pipes are free.
    fn flush(&mut self, now: Instant) {
        while let Some(&key) = self.queue.front() {
            let Some(ctx) = self.contexts.get_mut(key) else {
                // Closed while queued.
                self.queue.pop_front();
                continue;
            };
            let ReqState::Waiting(request) = &mut ctx.state else {
                self.queue.pop_front();
                ctx.queued = false;
                continue;
            };
            if request.pipe.is_some() {
                self.queue.pop_front();
                ctx.queued = false;
                continue;
            }
            let Some(pipe) = self.pipes.take_next() else {
                return;
            };
            self.queue.pop_front();
            ctx.queued = false;
            request.pipe = Some(pipe);
            if mem::replace(&mut request.sent, true) {
                self.resends += 1;
            }
            let msg = Message::with_header(request.id.to_bytes().to_vec(), request.body.clone());
            self.transmits.push_back(Transmit { pipe, msg });
            let deadline = ctx
                .resend_interval
                .and_then(|interval| deadline_after(now, interval))
                .and_then(|at| self.tick.round_up(at, now));
            request.deadline = deadline;
            match deadline {
                Some(at) => self.timers.arm(key, at, live_deadlines(&self.contexts)),
                None => self.timers.disarmed(live_deadlines(&self.contexts)),
            }
        }
    }

    /// Puts context `key` at the tail of the queue of requests waiting for a pipe.
    fn enqueue(&mut self, key: CtxKey) {
        if let Some(ctx) = self.contexts.get_mut(key) {
            if !ctx.queued {
                ctx.queued = true;
                self.queue.push_back(key);
            }
        }
    }

    /// Reacts to the loss of `pipe` (closed by the peer or kicked by us): every request it
    /// carried is resent, or fails when its context does not resend.
    fn handle_pipe_lost(&mut self, pipe: PipeId, now: Instant) {
        let mut resend = Vec::new();
        for (key, ctx) in self.contexts.iter_mut() {
            let ReqState::Waiting(request) = &mut ctx.state else {
                continue;
            };
            if request.pipe != Some(pipe) {
                continue;
            }
            request.deadline = None;
            if ctx.resend_interval.is_some() {
                request.pipe = None;
                resend.push(key);
            } else {
                self.by_id.remove(&request.id.get());
                ctx.state = ReqState::Reset;
                self.events.push_back(readable(key));
            }
        }
        self.timers.disarmed(live_deadlines(&self.contexts));
        for key in resend {
            self.enqueue(key);
        }
        self.flush(now);
    }

    /// Takes back a request copy that `pipe` never wrote ([`Input::Unsent`]). `pipe` is
    /// about to be removed, so it turns busy. When the copy is the request its context still
    /// waits for on `pipe`, that request goes at once to the next writable pipe (or waits for
    /// one), whether or not the context resends: the peer never saw it. The request then no
    /// longer names `pipe`, so the `PipeRemoved` that follows neither sends it again nor fails
    /// it. Every other copy (replaced, answered, cancelled, already sent elsewhere, or from a
    /// pipe REQ does not know) is counted as [`DropReason::PipeClosed`].
    fn handle_unsent(&mut self, pipe: PipeId, msg: &Message, now: Instant) {
        if !self.pipes.contains(pipe) {
            self.drops.record(DropReason::PipeClosed);
            return;
        }
        self.pipes.take(pipe);
        // The header is the request ID; read it off the wire bytes if a driver joined header
        // and body.
        let id = if msg.header.len() >= WORD_LEN {
            read_word(&msg.header)
        } else {
            read_word(&msg.to_contiguous())
        };
        let key = id.and_then(|id| self.by_id.get(&id).copied());
        let current = key.and_then(|key| match self.contexts.get_mut(key) {
            Some(ReqContext {
                state: ReqState::Waiting(request),
                ..
            }) if request.pipe == Some(pipe) => {
                request.pipe = None;
                request.deadline = None;
                Some(key)
            }
            _ => None,
        });
        let Some(key) = current else {
            self.drops.record(DropReason::PipeClosed);
            return;
        };
        self.timers.disarmed(live_deadlines(&self.contexts));
        self.enqueue(key);
        self.flush(now);
    }

    fn handle_reply(&mut self, pipe: PipeId, msg: Message, now: Instant) {
        let mut body = msg.into_contiguous();
        let Some(id) = read_word(&body) else {
            // NNG kicks a peer that sends a reply without room for a request ID.
            self.events.push_back(Event::ClosePipe {
                pipe,
                reason: PipeCloseReason::MalformedHeader,
            });
            self.pipes.remove(pipe);
            self.handle_pipe_lost(pipe, now);
            return;
        };
        // Only outstanding IDs match; stale, unknown and repeated replies drop.
        let Some(key) = self.by_id.remove(&id) else {
            self.drops.record(DropReason::StaleReply);
            return;
        };
        // `by_id` only names open contexts waiting for that very ID.
        let ctx = self
            .contexts
            .get_mut(key)
            .expect("by_id names open contexts");
        body.advance(WORD_LEN);
        ctx.state = ReqState::Replied(pipe, body);
        self.timers.disarmed(live_deadlines(&self.contexts));
        self.events.push_back(readable(key));
    }

    /// Drops the request of context `key`, if any, so that a reply to it is dropped. Returns
    /// true when a receive was waiting for it.
    ///
    /// What the context held is counted when no pipe or application got it: a request never
    /// written ([`DropReason::Replaced`]) or a reply never received
    /// ([`DropReason::StaleReply`]), both [`DropReason::ContextClosed`] when `closing`.
    fn cancel_request(&mut self, key: CtxKey, closing: bool) -> bool {
        let Some(ctx) = self.contexts.get_mut(key) else {
            return false;
        };
        // Only a waiting request has a live resend deadline.
        let was_waiting = matches!(ctx.state, ReqState::Waiting(_));
        let lost = match &ctx.state {
            ReqState::Waiting(request) => {
                self.by_id.remove(&request.id.get());
                (!request.sent).then_some(DropReason::Replaced)
            }
            ReqState::Replied(..) => Some(DropReason::StaleReply),
            ReqState::Idle | ReqState::Reset => None,
        };
        if let Some(reason) = lost {
            let reason = if closing {
                DropReason::ContextClosed
            } else {
                reason
            };
            self.drops.record(reason);
        }
        ctx.state = ReqState::Idle;
        let recv_waiting = std::mem::take(&mut ctx.recv_waiting);
        if was_waiting {
            self.timers.disarmed(live_deadlines(&self.contexts));
        }
        recv_waiting
    }

    /// Makes `body` context `key`'s request under a fresh ID and writes it if a pipe is free.
    fn start_request(&mut self, key: CtxKey, body: Bytes, now: Instant) {
        let id = self.ids.next_id();
        if let Some(ctx) = self.contexts.get_mut(key) {
            ctx.state = ReqState::Waiting(Request {
                id,
                body,
                pipe: None,
                sent: false,
                deadline: None,
            });
            self.by_id.insert(id.get(), key);
            self.enqueue(key);
            self.flush(now);
        }
    }
}

impl Protocol for Req {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::REQ
    }

    /// A request's resend timer starts at its send; receiving a reply (or cancelling a wait)
    /// reads no time.
    fn receive_reads_time(&self) -> bool {
        false
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, now: Instant) {
        let was_writable = self.pipes.has_writable();
        match input {
            Input::PipeAdded { pipe, peer } => {
                if refuse_wrong_peer(self.peer_protocol(), pipe, peer, &mut self.events) {
                    return;
                }
                if self.pipes.insert(pipe) {
                    self.flush(now);
                }
            }
            Input::PipeRemoved { pipe } => {
                if self.pipes.remove(pipe) {
                    self.handle_pipe_lost(pipe, now);
                }
            }
            Input::PipeWritable { pipe } => {
                if self.pipes.set_writable(pipe) {
                    self.flush(now);
                }
            }
            Input::Received { pipe, msg } => {
                if self.pipes.contains(pipe) {
                    self.handle_reply(pipe, msg, now);
                }
            }
            Input::Unsent { pipe, msg } => self.handle_unsent(pipe, &msg, now),
        }
        if !was_writable && self.pipes.has_writable() {
            self.events.push_back(Event::Writable);
        }
    }

    /// Resends every waiting request (same ID) whose resend deadline has passed.
    fn handle_timeout(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now, live_deadlines(&self.contexts)) {
            // Only a waiting request's deadline is live.
            if let Some(ReqContext {
                state: ReqState::Waiting(request),
                ..
            }) = self.contexts.get_mut(key)
            {
                request.pipe = None;
                request.deadline = None;
                self.enqueue(key);
            }
        }
        self.flush(now);
    }

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
        self.timers.earliest()
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe)
    }

    /// Cancels the current request, then sends `msg`'s body as a new request.
    ///
    /// The header of `msg` is replaced by the new request ID. The request is written to the
    /// first writable pipe and the resend timer is armed.
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no pipe is writable. The previous request is cancelled
    /// anyway (as in NNG); no ID is used and nothing is stored, so retry after
    /// [`Event::Writable`].
    fn send(&mut self, msg: Message, now: Instant) -> Result<(), SendError> {
        self.cancel_request(None, false);
        if !self.pipes.has_writable() {
            return Err(SendError::WouldBlock);
        }
        self.start_request(None, msg.body, now);
        Ok(())
    }

    /// Returns true while a pipe is writable: `send` then takes any message.
    #[inline]
    fn will_take(&self, _msg: &Message) -> bool {
        self.pipes.has_writable()
    }

    /// Returns the reply to the current request, without its request ID.
    ///
    /// # Errors
    /// [`RecvError::BadState`] when no request is outstanding (including after the reply or a
    /// reset was returned), [`RecvError::WouldBlock`] while waiting for the reply, and
    /// [`RecvError::ConnectionReset`] once when the request's pipe closed with resending off.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        self.contexts.default_ctx().take_reply()
    }

    /// Returns true once the current request's reply arrived, or its pipe closed with
    /// resending off.
    fn is_readable(&self) -> bool {
        matches!(
            self.contexts.default_ref().state,
            ReqState::Replied(..) | ReqState::Reset
        )
    }

    /// Returns true while a pipe can take a request now.
    #[inline]
    fn is_writable(&self) -> bool {
        self.pipes.has_writable()
    }

    /// Opens a context with no request and the socket's resend interval.
    fn open_context(&mut self, _now: Instant) -> Result<ContextId, ContextError> {
        let interval = self.resend_interval();
        Ok(self.contexts.open(ReqContext::new(interval)))
    }

    /// Closes `ctx`; its request is abandoned and a late reply to it is dropped.
    fn close_context(&mut self, ctx: ContextId, _now: Instant) -> Result<(), ContextError> {
        self.cancel_request(Some(ctx), true);
        self.contexts
            .close(ctx)
            .map(drop)
            .ok_or(ContextError::UnknownContext)
    }

    /// Cancels `ctx`'s current request and queues `msg`'s body as its new request: written at
    /// once to a writable pipe, else as soon as one is free, in the order contexts sent. A
    /// receive waiting on `ctx` fails with [`RecvError::Canceled`].
    ///
    /// # Errors
    /// [`SendError::UnknownContext`] when `ctx` is not open. Never `WouldBlock`.
    fn send_on(&mut self, ctx: ContextId, msg: Message, now: Instant) -> Result<(), SendError> {
        let key = Some(ctx);
        self.contexts
            .lookup(ctx)
            .map_err(|_| SendError::UnknownContext)?;
        if self.cancel_request(key, false) {
            let state = self.contexts.lookup(ctx).expect("looked up above");
            state.canceled = true;
            self.events.push_back(readable(key));
        }
        self.start_request(key, msg.body, now);
        Ok(())
    }

    /// Returns true while `ctx` is open: its send queues any message.
    fn will_take_on(&self, ctx: ContextId, _msg: &Message) -> bool {
        self.contexts.get(Some(ctx)).is_some()
    }

    /// Returns the reply to `ctx`'s request, without its request ID.
    ///
    /// # Errors
    /// [`RecvError::UnknownContext`] when `ctx` is not open; [`RecvError::Canceled`] once when
    /// a send replaced the request a waiting receive waited for; [`RecvError::BadState`] with
    /// no request out or while another receive waits; [`RecvError::WouldBlock`] (registering
    /// the waiting receive) until the reply arrives; [`RecvError::ConnectionReset`] as for
    /// [`Protocol::recv`].
    fn recv_on(&mut self, ctx: ContextId, _now: Instant) -> Result<Message, RecvError> {
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| RecvError::UnknownContext)?;
        if std::mem::take(&mut state.canceled) {
            return Err(RecvError::Canceled);
        }
        match state.take_reply() {
            Err(RecvError::WouldBlock) if state.recv_waiting => Err(RecvError::BadState),
            Err(RecvError::WouldBlock) => {
                state.recv_waiting = true;
                Err(RecvError::WouldBlock)
            }
            other => {
                state.recv_waiting = false;
                other
            }
        }
    }

    fn cancel_recv(&mut self, ctx: ContextId, _now: Instant) {
        if let Ok(state) = self.contexts.lookup(ctx) {
            state.recv_waiting = false;
            state.canceled = false;
        }
    }

    /// Returns the counters (see the type docs). `recv_queued` counts the replies waiting to
    /// be received, `send_queued` the requests waiting for a writable pipe.
    fn stats(&self) -> CoreStats {
        let mut stats = CoreStats {
            dropped: self.drops,
            resends: self.resends,
            ..CoreStats::default()
        };
        for (_, ctx) in self.contexts.iter() {
            match &ctx.state {
                ReqState::Replied(..) => stats.recv_queued += 1,
                ReqState::Waiting(request) if request.pipe.is_none() => stats.send_queued += 1,
                _ => {}
            }
        }
        stats
    }
}

/// Settings for [`Rep`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepConfig {
    /// The most backtrace words (device hops plus the request ID) an accepted request may
    /// carry. Default: 8. Valid: 1..=255; [`Rep::new`] treats 0 as 1.
    pub max_ttl: u8,
    /// How many received requests may wait for [`Protocol::recv`] before the pipes feeding
    /// them are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for RepConfig {
    fn default() -> Self {
        Self {
            max_ttl: DEFAULT_MAX_TTL,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The cooked REP role (SP type 49): receives requests and sends one reply to each.
///
/// Follows SP-PROTOCOLS.md section 4.4.3 (NNG's `rep0` without contexts). Receiving a request
/// saves its backtrace and pipe; the next send puts that backtrace in front of the reply and
/// writes it to that pipe.
///
/// ```text
///              recv: saves backtrace + pipe
///  +------+ -----------------------------> +-------+ --+ recv: the newer request
///  | Idle |                                | Saved |   | replaces the saved one
///  +------+ <----------------------------- +-------+ <-+
///     |     send: Ok (dropped if the pipe     |
///     |     is gone)                          | send while the pipe is busy:
///     +--> send: BadState                     +-> WouldBlock, stays Saved
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than REQ is refused), [`Input::PipeRemoved`],
/// [`Input::PipeWritable`], [`Input::Received`]: the backtrace is parsed with
/// [`split_backtrace`](crate::backtrace::split_backtrace); more than `max_ttl` words drops the
/// request, a body that ends before the bottom word kicks the pipe.
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ResumeReceiving`] for paused pipes once the queue drains to half of `recv_buffer`;
/// [`Event::Writable`] when the saved request's pipe becomes writable or goes away, so a reply
/// that returned `WouldBlock` can be retried; [`Event::ClosePipe`] for a wrong peer or a
/// garbage request.
///
/// **Timers.** None.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::TtlExceeded`] for a request over
/// `max_ttl`, [`DropReason::NoRoute`] for a reply whose requester's pipe is gone,
/// [`DropReason::PipeClosed`] for a reply its dying pipe handed back unsent
/// ([`Input::Unsent`]: only that requester could take it), [`DropReason::QueueShrunk`] for
/// requests discarded by [`Protocol::set_recv_buffer`].
///
/// Requests wait in one FIFO in arrival order. When it holds `recv_buffer` requests, each pipe
/// that delivers another one is paused until the queue drains.
#[derive(Debug)]
pub struct Rep {
    inner: CookedReplier,
}

impl Rep {
    /// Creates a REP socket core with no pipes.
    pub fn new(config: RepConfig) -> Self {
        let inner = CookedReplier::new(ProtocolId::REP, config.max_ttl, config.recv_buffer);
        Self { inner }
    }

    /// Sets the most backtrace words an accepted request may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.inner.set_max_ttl(max_ttl)
    }

    /// Returns the most backtrace words an accepted request may carry.
    pub fn max_ttl(&self) -> u8 {
        self.inner.max_ttl()
    }

    /// Returns true when a received request is waiting for its reply.
    pub fn has_saved_request(&self) -> bool {
        self.inner.has_saved()
    }
}

impl Protocol for Rep {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    forward_to_cooked_replier!();
}

/// The per-request state of one REQ context (the socket's own, or an opened one).
#[derive(Debug)]
struct ReqContext {
    state: ReqState,
    /// `None`: no resending; a lost pipe fails the request.
    resend_interval: Option<Duration>,
    /// The context sits in [`Req`]'s queue of requests waiting for a pipe.
    queued: bool,
    /// A receive on this context returned `WouldBlock` and has not finished or given up.
    recv_waiting: bool,
    /// A send canceled the request a waiting receive waited for; the next receive says so.
    canceled: bool,
}

impl ReqContext {
    fn new(resend_interval: Option<Duration>) -> Self {
        Self {
            state: ReqState::Idle,
            resend_interval,
            queued: false,
            recv_waiting: false,
            canceled: false,
        }
    }

    fn request_id(&self) -> Option<RequestId> {
        match &self.state {
            ReqState::Waiting(request) => Some(request.id),
            _ => None,
        }
    }

    /// Takes the reply or the reset, leaving the context idle; see [`Protocol::recv`].
    fn take_reply(&mut self) -> Result<Message, RecvError> {
        match mem::take(&mut self.state) {
            ReqState::Idle => Err(RecvError::BadState),
            waiting @ ReqState::Waiting(_) => {
                self.state = waiting;
                Err(RecvError::WouldBlock)
            }
            ReqState::Replied(pipe, body) => Ok(Message::new(body).with_pipe(pipe)),
            ReqState::Reset => Err(RecvError::ConnectionReset),
        }
    }
}

#[derive(Debug, Default)]
enum ReqState {
    /// No request outstanding.
    #[default]
    Idle,
    /// A request waits for its reply.
    Waiting(Request),
    /// The reply arrived on the pipe; the body holds it without the request ID.
    Replied(PipeId, Bytes),
    /// The request's pipe closed with resending disabled.
    Reset,
}

#[derive(Debug)]
struct Request {
    id: RequestId,
    body: Bytes,
    /// The pipe the request was last written to; `None` while it waits for a writable pipe.
    pipe: Option<PipeId>,
    /// The request was written at least once: writing it again is a resend, and replacing it
    /// loses nothing a pipe did not take.
    sent: bool,
    /// When it is resent unless a reply comes first: armed in the socket's [`DeadlineSet`]
    /// each time the request is written, `None` while it waits for a pipe.
    deadline: Option<Instant>,
}

/// Whether `at` is still context `key`'s resend deadline: the [`DeadlineSet`] check of REQ.
fn live_deadlines(contexts: &Contexts<ReqContext>) -> impl Fn(CtxKey, Instant) -> bool + '_ {
    move |key, at| {
        matches!(
            contexts.get(key),
            Some(ReqContext { state: ReqState::Waiting(request), .. }) if request.deadline == Some(at)
        )
    }
}

fn normalize_interval(interval: Option<Duration>) -> Option<Duration> {
    interval.filter(|d| !d.is_zero())
}

/// REQ's resend tick: the step of the grid that resend deadlines are rounded up to, and
/// where the grid starts.
#[derive(Debug)]
struct ResendTick {
    /// `None`: deadlines are not rounded.
    tick: Option<Duration>,
    /// A grid instant: the `now` of the first deadline rounded with this tick. Any fixed
    /// instant would do; taking one the core was given avoids reading a clock.
    anchor: Option<Instant>,
}

impl ResendTick {
    fn new(tick: Option<Duration>) -> Self {
        Self {
            tick: normalize_interval(tick),
            anchor: None,
        }
    }

    /// Returns the first grid instant at or after `deadline`, anchoring the grid at `now` if
    /// it has no anchor yet; `deadline` itself without a tick. `None` when that instant cannot
    /// be represented (then the request is never resent on a timer, as with a deadline too
    /// far out to represent).
    fn round_up(&mut self, deadline: Instant, now: Instant) -> Option<Instant> {
        let Some(tick) = self.tick else {
            return Some(deadline);
        };
        let anchor = *self.anchor.get_or_insert(now);
        let tick = tick.as_nanos();
        match deadline.checked_duration_since(anchor) {
            Some(ahead) => match ahead.as_nanos() % tick {
                0 => Some(deadline),
                past => deadline.checked_add(duration_from_nanos(tick - past)),
            },
            // Before the anchor (a `now` older than the anchor's): the grid runs backwards
            // from it too, and the grid instant at or after `deadline` lies between the two.
            None => {
                let behind = (anchor - deadline).as_nanos();
                deadline.checked_add(duration_from_nanos(behind % tick))
            }
        }
    }
}

/// Converts a nanosecond count no larger than [`Duration::MAX`]'s into a `Duration`.
fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder of a division by 10^9 fits in a u32.
    Duration::new(secs, (nanos % NANOS_PER_SEC) as u32)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    fn drain_tx(proto: &mut impl Protocol) -> Vec<Transmit> {
        std::iter::from_fn(|| proto.poll_transmit()).collect()
    }

    fn drain_ev(proto: &mut impl Protocol) -> Vec<Event> {
        std::iter::from_fn(|| proto.poll_event()).collect()
    }

    fn reply_to(tx: &Transmit, body: &'static [u8]) -> Input {
        Input::Received {
            pipe: tx.pipe,
            msg: Message::with_header(tx.msg.header.clone(), body),
        }
    }

    /// The driver hands REQ's receives a stale `now` (`receive_reads_time` is false): the
    /// resend deadline must not move, whatever time a receive is given.
    #[test]
    fn req_receives_leave_the_resend_deadline_alone_whatever_time_they_are_given() {
        let t0 = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        assert!(!req.receive_reads_time());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            t0,
        );
        let ctx = req.open_context(t0).unwrap();
        req.send_on(ctx, Message::new(&b"ping"[..]), t0).unwrap();
        let deadline = req.poll_timeout().expect("a resend deadline");
        assert_eq!(deadline, t0 + DEFAULT_RESEND_INTERVAL);
        drain_tx(&mut req);
        req.handle(Input::PipeWritable { pipe: p(1) }, t0);
        let hour = Duration::from_secs(3600);
        for now in [t0, t0 + hour, t0 + 2 * hour] {
            assert_eq!(req.recv_on(ctx, now), Err(RecvError::WouldBlock));
            req.cancel_recv(ctx, now);
            assert_eq!(req.recv(now), Err(RecvError::BadState));
            assert_eq!(req.poll_timeout(), Some(deadline));
            assert!(drain_tx(&mut req).is_empty(), "a receive resent nothing");
        }
        req.handle_timeout(deadline);
        assert_eq!(drain_tx(&mut req).len(), 1, "the deadline still resends");
    }

    #[test]
    fn req_recv_before_send_is_bad_state() {
        let mut req = Req::new(ReqConfig::default());
        assert_eq!(req.recv(Instant::now()), Err(RecvError::BadState));
    }

    #[test]
    fn req_send_without_pipe_would_block_and_uses_no_id() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig {
            seed: 3,
            ..ReqConfig::default()
        });
        assert_eq!(
            req.send(Message::new(&b"x"[..]), now),
            Err(SendError::WouldBlock)
        );
        assert_eq!(req.recv(now), Err(RecvError::BadState));
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        assert_eq!(drain_ev(&mut req), vec![Event::Writable]);
        req.send(Message::new(&b"x"[..]), now).unwrap();
        let first = RequestIdSequence::new(3).next_id();
        assert_eq!(req.request_id(), Some(first));
        assert_eq!(drain_tx(&mut req)[0].msg.header[..], first.to_bytes());
    }

    /// The resend timer is the earliest outstanding request's, whichever order the replies
    /// come in: a reply, a cancel or a close of the context whose deadline is first moves it
    /// to the next, a resend re-arms it, and with nothing outstanding there is none.
    #[test]
    fn req_context_timers_follow_the_outstanding_requests() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut req = Req::new(ReqConfig::default());
        req.set_resend_interval(Some(Duration::from_secs(1)));
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            t0,
        );
        let ctxs: Vec<ContextId> = (0..3).map(|_| req.open_context(t0).unwrap()).collect();
        let mut sent = Vec::new();
        for (i, &ctx) in ctxs.iter().enumerate() {
            let now = at(10 * i as u64);
            req.send_on(ctx, Message::new(&b"q"[..]), now).unwrap();
            sent.extend(drain_tx(&mut req));
            req.handle(Input::PipeWritable { pipe: p(1) }, now);
        }
        assert_eq!(req.poll_timeout(), Some(at(1000)));
        // The second context's reply: the first's deadline stays the earliest.
        req.handle(reply_to(&sent[1], b"r"), at(15));
        assert_eq!(req.poll_timeout(), Some(at(1000)));
        // The first's: the third's is next.
        req.handle(reply_to(&sent[0], b"r"), at(16));
        assert_eq!(req.poll_timeout(), Some(at(1020)));
        // Its resend re-arms it a second later.
        req.handle_timeout(at(1020));
        assert_eq!(drain_tx(&mut req).len(), 1, "the third request is resent");
        assert_eq!(req.poll_timeout(), Some(at(2020)));
        // A new request on the first context, then closing the third: the first's is left.
        req.handle(Input::PipeWritable { pipe: p(1) }, at(1400));
        req.send_on(ctxs[0], Message::new(&b"q"[..]), at(1500))
            .unwrap();
        assert_eq!(req.poll_timeout(), Some(at(2020)));
        req.close_context(ctxs[2], at(1600)).unwrap();
        assert_eq!(req.poll_timeout(), Some(at(2500)));
        // Closing the first too: nothing is outstanding.
        req.close_context(ctxs[0], at(1700)).unwrap();
        assert_eq!(req.poll_timeout(), None);
    }

    #[test]
    fn req_matches_reply_and_strips_id() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"ping"[..]), now).unwrap();
        let tx = drain_tx(&mut req).remove(0);
        assert_eq!(req.recv(now), Err(RecvError::WouldBlock));
        assert_eq!(req.poll_timeout(), Some(now + DEFAULT_RESEND_INTERVAL));
        drain_ev(&mut req);
        req.handle(reply_to(&tx, b"pong"), now);
        assert_eq!(drain_ev(&mut req), vec![Event::Readable]);
        assert_eq!(req.poll_timeout(), None);
        assert_eq!(req.recv(now).unwrap().body, &b"pong"[..]);
        assert_eq!(req.recv(now), Err(RecvError::BadState));
        req.handle(reply_to(&tx, b"again"), now);
        assert!(drain_ev(&mut req).is_empty(), "a repeated reply is dropped");
    }

    #[test]
    fn req_kicks_reply_shorter_than_an_id() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"ping"[..]), now).unwrap();
        drain_ev(&mut req);
        req.handle(
            Input::Received {
                pipe: p(1),
                msg: Message::new(&b"\x80\x00"[..]),
            },
            now,
        );
        assert_eq!(
            drain_ev(&mut req),
            vec![Event::ClosePipe {
                pipe: p(1),
                reason: PipeCloseReason::MalformedHeader
            }]
        );
        assert!(!req.is_receiving(p(1)));
    }

    #[test]
    fn req_refuses_wrong_peer() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PULL,
            },
            now,
        );
        let reason = PipeCloseReason::IncompatiblePeer(ProtocolId::PULL);
        assert_eq!(
            drain_ev(&mut req),
            vec![Event::ClosePipe { pipe: p(1), reason }]
        );
        assert_eq!(
            req.send(Message::new(&b"x"[..]), now),
            Err(SendError::WouldBlock)
        );
    }

    #[test]
    fn req_early_timeout_is_a_no_op() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"x"[..]), now).unwrap();
        drain_tx(&mut req);
        req.handle(Input::PipeWritable { pipe: p(1) }, now);
        req.handle_timeout(now + Duration::from_secs(59));
        assert!(drain_tx(&mut req).is_empty());
        req.handle_timeout(now + DEFAULT_RESEND_INTERVAL);
        assert_eq!(drain_tx(&mut req).len(), 1);
    }

    #[test]
    fn req_timer_resend_waits_for_a_writable_pipe() {
        let now = Instant::now();
        let later = now + Duration::from_millis(10);
        let mut req = Req::new(ReqConfig {
            resend_interval: Some(Duration::from_millis(10)),
            resend_tick: None,
            seed: 1,
        });
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"x"[..]), now).unwrap();
        let first = drain_tx(&mut req).remove(0);
        req.handle_timeout(later);
        assert!(drain_tx(&mut req).is_empty(), "pipe 1 is still busy");
        assert_eq!(req.poll_timeout(), None);
        req.handle(
            Input::PipeAdded {
                pipe: p(2),
                peer: ProtocolId::REP,
            },
            later,
        );
        let resent = drain_tx(&mut req).remove(0);
        assert_eq!(resent.pipe, p(2));
        assert_eq!(resent.msg, first.msg, "same ID, same body");
        assert_eq!(req.poll_timeout(), Some(later + Duration::from_millis(10)));
    }

    #[test]
    fn req_zero_resend_interval_disables_resend() {
        let mut req = Req::new(ReqConfig {
            resend_interval: Some(Duration::ZERO),
            resend_tick: None,
            seed: 0,
        });
        assert_eq!(req.resend_interval(), None);
        req.set_resend_interval(Some(Duration::from_millis(5)));
        assert_eq!(req.resend_interval(), Some(Duration::from_millis(5)));
    }

    #[test]
    fn req_zero_resend_tick_counts_as_none() {
        assert_eq!(Req::new(ReqConfig::default()).resend_tick(), None);
        let mut req = Req::new(ReqConfig {
            resend_tick: Some(Duration::ZERO),
            ..ReqConfig::default()
        });
        assert_eq!(req.resend_tick(), None);
        req.set_resend_tick(Some(Duration::from_millis(30)));
        assert_eq!(req.resend_tick(), Some(Duration::from_millis(30)));
        req.set_resend_tick(Some(Duration::ZERO));
        assert_eq!(req.resend_tick(), None);
        req.set_resend_tick(Some(Duration::from_secs(1)));
        req.set_resend_tick(None);
        assert_eq!(req.resend_tick(), None);
    }

    #[test]
    fn resend_tick_rounds_up_to_the_grid_on_either_side_of_its_anchor() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut tick = ResendTick::new(Some(ms(30)));
        assert_eq!(tick.round_up(t0 + ms(100), t0), Some(t0 + ms(120)));
        assert_eq!(tick.round_up(t0 + ms(150), t0 + ms(50)), Some(t0 + ms(150)));
        assert_eq!(tick.round_up(t0 + ms(151), t0 + ms(51)), Some(t0 + ms(180)));

        // A `now` older than the anchor: the grid extends backwards (..., 20, 50 ms).
        let mut tick = ResendTick::new(Some(ms(30)));
        assert_eq!(tick.round_up(t0 + ms(150), t0 + ms(50)), Some(t0 + ms(170)));
        assert_eq!(tick.round_up(t0 + ms(25), t0), Some(t0 + ms(50)));
        assert_eq!(tick.round_up(t0 + ms(20), t0), Some(t0 + ms(20)));

        let mut none = ResendTick::new(None);
        assert_eq!(none.round_up(t0 + ms(7), t0), Some(t0 + ms(7)));
        let mut nanos = ResendTick::new(Some(Duration::from_nanos(1)));
        assert_eq!(nanos.round_up(t0 + ms(7), t0), Some(t0 + ms(7)));
    }

    /// A tick whose grid instants cannot be represented leaves the request without a resend
    /// deadline rather than panicking.
    #[test]
    fn resend_tick_too_large_to_represent_disarms_the_deadline() {
        let t0 = Instant::now();
        let mut tick = ResendTick::new(Some(Duration::MAX));
        assert_eq!(tick.round_up(t0 + Duration::from_secs(1), t0), None);
        assert_eq!(tick.round_up(t0, t0), Some(t0));
    }

    #[test]
    fn rep_send_before_recv_is_bad_state() {
        let mut rep = Rep::new(RepConfig::default());
        assert_eq!(
            rep.send(Message::new(&b"x"[..]), Instant::now()),
            Err(SendError::BadState)
        );
    }

    #[test]
    fn rep_returns_backtrace_with_reply() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig::default());
        rep.handle(
            Input::PipeAdded {
                pipe: p(7),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let wire = Message::new(&b"\x00\x00\x01\x2b\x80\x00\x03\x37Hello"[..]);
        rep.handle(
            Input::Received {
                pipe: p(7),
                msg: wire,
            },
            now,
        );
        assert_eq!(drain_ev(&mut rep), vec![Event::Readable]);
        let req = rep.recv(now).unwrap();
        assert_eq!(req, Message::new(&b"Hello"[..]).with_pipe(p(7)));
        rep.send(Message::new(&b"World"[..]), now).unwrap();
        let tx = drain_tx(&mut rep);
        assert_eq!(tx[0].pipe, p(7));
        assert_eq!(
            tx[0].msg.to_contiguous(),
            &b"\x00\x00\x01\x2b\x80\x00\x03\x37World"[..]
        );
        assert_eq!(
            rep.send(Message::new(&b"again"[..]), now),
            Err(SendError::BadState)
        );
    }

    #[test]
    fn rep_busy_pipe_keeps_saved_request() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig::default());
        rep.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let request = Message::new(&b"\x80\x00\x00\x01a"[..]);
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request.clone(),
            },
            now,
        );
        rep.recv(now).unwrap();
        rep.send(Message::new(&b"1"[..]), now).unwrap();
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request,
            },
            now,
        );
        rep.recv(now).unwrap();
        drain_ev(&mut rep);
        assert_eq!(
            rep.send(Message::new(&b"2"[..]), now),
            Err(SendError::WouldBlock)
        );
        assert!(rep.has_saved_request());
        rep.handle(Input::PipeWritable { pipe: p(1) }, now);
        assert_eq!(drain_ev(&mut rep), vec![Event::Writable]);
        rep.send(Message::new(&b"2"[..]), now).unwrap();
        assert_eq!(drain_tx(&mut rep).len(), 2);
    }

    #[test]
    fn rep_blocked_reply_wakes_when_pipe_goes_away() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig::default());
        rep.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let request = Message::new(&b"\x80\x00\x00\x01a"[..]);
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request.clone(),
            },
            now,
        );
        rep.recv(now).unwrap();
        rep.send(Message::new(&b"1"[..]), now).unwrap();
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request,
            },
            now,
        );
        rep.recv(now).unwrap();
        assert_eq!(
            rep.send(Message::new(&b"2"[..]), now),
            Err(SendError::WouldBlock)
        );
        drain_ev(&mut rep);
        rep.handle(Input::PipeRemoved { pipe: p(1) }, now);
        assert_eq!(drain_ev(&mut rep), vec![Event::Writable]);
        assert_eq!(rep.send(Message::new(&b"2"[..]), now), Ok(()));
        assert_eq!(drain_tx(&mut rep).len(), 1, "only the first reply went out");
    }

    #[test]
    fn rep_max_ttl_rejects_zero() {
        let mut rep = Rep::new(RepConfig::default());
        assert_eq!(rep.set_max_ttl(0), Err(ConfigError::MaxTtlOutOfRange(0)));
        assert_eq!(rep.max_ttl(), DEFAULT_MAX_TTL);
        rep.set_max_ttl(255).unwrap();
        assert_eq!(rep.max_ttl(), 255);
    }

    #[test]
    fn rep_drops_over_ttl_without_kicking() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig {
            max_ttl: 2,
            ..RepConfig::default()
        });
        rep.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let wire = Message::new(&b"\x00\x00\x00\x01\x00\x00\x00\x02\x80\x00\x00\x01x"[..]);
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: wire,
            },
            now,
        );
        assert!(drain_ev(&mut rep).is_empty());
        assert!(rep.is_receiving(p(1)));
    }
}
