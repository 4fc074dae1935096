//! The cooked REP-side machinery that REP and RESPONDENT share, contexts included
//! (SP-PROTOCOLS.md sections 4.4.3 and 4.6).

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::context::{readable, writable, Contexts, CtxKey};
use crate::protocol::shared::BacktraceCore;
use crate::protocol::{
    ConfigError, ContextError, ContextId, Input, Protocol, RecvError, SendError,
};
use crate::stats::{CoreStats, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// A received request: the pipe it came from, its backtrace and its body.
type Request = (PipeId, Bytes, Bytes);

/// The state of one cooked REP-side context (the socket's own, or an opened one): the
/// backtrace and pipe of the request (or survey) being answered, and its waiting receive.
#[derive(Debug, Default)]
struct ReplyContext {
    saved: Option<SavedBacktrace>,
    /// A request handed to the waiting receive, not yet taken by it.
    handed: Option<Request>,
    /// A receive on this context returned `WouldBlock` and has not finished or given up.
    recv_waiting: bool,
}

impl ReplyContext {
    /// Returns the pipe the saved request came from, if one is saved.
    fn pipe(&self) -> Option<PipeId> {
        self.saved.as_ref().map(|saved| saved.pipe)
    }

    /// Saves `request`'s backtrace for the reply, replacing (abandoning) any saved one, and
    /// returns its body with [`Message::pipe`] naming the pipe it came from.
    fn take(&mut self, (pipe, backtrace, body): Request) -> Message {
        self.saved = Some(SavedBacktrace { pipe, backtrace });
        self.recv_waiting = false;
        Message::new(body).with_pipe(pipe)
    }
}

#[derive(Debug)]
struct SavedBacktrace {
    pipe: PipeId,
    backtrace: Bytes,
}

/// A cooked REP-side role: REP and RESPONDENT (SP-PROTOCOLS.md sections 4.4.3 and 4.6), which
/// differ only in their protocol IDs. Receiving saves the message's backtrace and pipe in the
/// receiving context; the next send on that context puts that backtrace in front of the reply
/// and writes it to that pipe, applying back-pressure while the pipe is busy.
///
/// Contexts fair-share the incoming requests: a request that arrives while receives wait on
/// contexts is handed to the one that has waited longest, and announced to it alone with
/// [`Event::ContextReadable`](crate::protocol::Event::ContextReadable). Requests that find no
/// waiting context stay in the socket's queue, where the next receive on any context (the
/// socket's own included) takes them.
///
/// Drops, all counted in [`Protocol::stats`]: a request over the TTL
/// ([`DropReason::TtlExceeded`]), a reply whose requester's pipe is gone
/// ([`DropReason::NoRoute`]), a reply its dying pipe handed back unsent
/// ([`DropReason::PipeClosed`], [`Input::Unsent`]), requests discarded by shrinking the queue
/// ([`DropReason::QueueShrunk`]). Nothing else is lost: a request handed to a context that
/// gives up or closes goes to the next one, and a reply waits for a busy pipe.
#[derive(Debug)]
pub(crate) struct CookedReplier {
    protocol: ProtocolId,
    core: BacktraceCore,
    contexts: Contexts<ReplyContext>,
    /// Opened contexts with a receive waiting and nothing handed to it, longest waiting first.
    waiting: VecDeque<ContextId>,
    /// Requests handed back by contexts that gave up waiting; served before the core's queue.
    returned: VecDeque<Request>,
    /// Opened contexts whose reply found its pipe busy.
    blocked: BTreeSet<ContextId>,
}

impl CookedReplier {
    /// Creates a core with no pipes for the role `protocol` (REP or RESPONDENT). `max_ttl` 0
    /// counts as 1.
    pub(crate) fn new(protocol: ProtocolId, max_ttl: u8, recv_buffer: usize) -> Self {
        // Every role built here is a known SP type, so it has a peer.
        let peer = protocol
            .peer()
            .expect("a cooked replier is REP or RESPONDENT");
        Self {
            protocol,
            // A cooked reply waits for its pipe instead of queueing: no per-pipe send queue.
            core: BacktraceCore::new(peer, max_ttl, recv_buffer, 0),
            contexts: Contexts::new(ReplyContext::default()),
            waiting: VecDeque::new(),
            returned: VecDeque::new(),
            blocked: BTreeSet::new(),
        }
    }

    /// Sets the most backtrace words an accepted request may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub(crate) fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.core.set_max_ttl(max_ttl)
    }

    /// Returns the most backtrace words an accepted request may carry.
    pub(crate) fn max_ttl(&self) -> u8 {
        self.core.max_ttl()
    }

    /// Returns true while a request received on the socket's own context waits for its reply.
    pub(crate) fn has_saved(&self) -> bool {
        self.contexts.default_ref().saved.is_some()
    }

    /// Returns the oldest request no context holds.
    fn next_request(&mut self) -> Option<Request> {
        self.returned.pop_front().or_else(|| self.core.pop())
    }

    /// Hands queued requests to waiting contexts, longest waiting first.
    fn dispatch(&mut self) {
        while let Some(&ctx) = self.waiting.front() {
            let Some(request) = self.next_request() else {
                return;
            };
            self.waiting.pop_front();
            // `waiting` only names open contexts: closing one removes it.
            let state = self
                .contexts
                .lookup(ctx)
                .expect("waiting contexts are open");
            state.handed = Some(request);
            self.core.pipes.push_event(readable(Some(ctx)));
        }
    }

    /// Wakes the contexts whose reply waited for a pipe that is now idle or gone.
    fn wake_blocked(&mut self) {
        if self.blocked.is_empty() {
            return;
        }
        let contexts = &mut self.contexts;
        let pipes = &self.core.pipes;
        let mut woken = Vec::new();
        self.blocked.retain(|&ctx| {
            let pipe = contexts.get(Some(ctx)).and_then(ReplyContext::pipe);
            match pipe {
                Some(pipe) if pipes.contains(pipe) && !pipes.is_idle(pipe) => true,
                Some(_) => {
                    woken.push(ctx);
                    false
                }
                // Closed, or the request was abandoned by a newer receive.
                None => false,
            }
        });
        for ctx in woken {
            self.core.pipes.push_event(writable(Some(ctx)));
        }
    }

    /// Sends the reply of context `ctx` (`None`: the socket's own).
    fn reply(&mut self, ctx: Option<ContextId>, msg: Message) -> Result<(), SendError> {
        let state = self
            .contexts
            .get_mut(ctx)
            .ok_or(SendError::UnknownContext)?;
        let saved = state.saved.take().ok_or(SendError::BadState)?;
        if !self.core.pipes.contains(saved.pipe) {
            // The requester is gone: report success and drop the reply.
            self.core.pipes.record(DropReason::NoRoute);
            return Ok(());
        }
        // The saved backtrace moves into the reply (no copy of its count); a busy pipe hands
        // the reply back, and the backtrace goes back where it was saved.
        let SavedBacktrace { pipe, backtrace } = saved;
        let reply = Message::with_header(backtrace, msg.body);
        if let Err(reply) = self.core.pipes.write_if_idle(pipe, reply) {
            state.saved = Some(SavedBacktrace {
                pipe,
                backtrace: reply.header,
            });
            if let Some(ctx) = ctx {
                self.blocked.insert(ctx);
            }
            return Err(SendError::WouldBlock);
        }
        Ok(())
    }

    /// Returns true when [`CookedReplier::reply`] on `key` would take a message now: the
    /// context holds a request whose pipe is idle, or gone (the reply is then dropped and
    /// counted).
    fn can_reply(&self, key: CtxKey) -> bool {
        self.contexts
            .get(key)
            .and_then(|state| state.saved.as_ref())
            .is_some_and(|saved| {
                !self.core.pipes.contains(saved.pipe) || self.core.pipes.is_idle(saved.pipe)
            })
    }

    /// Ends the waiting receive of `ctx`; a request handed to it goes to the next waiting
    /// context or back to the front of the queue.
    fn stop_waiting(&mut self, ctx: ContextId) {
        let Ok(state) = self.contexts.lookup(ctx) else {
            return;
        };
        state.recv_waiting = false;
        let handed = state.handed.take();
        self.waiting.retain(|c| *c != ctx);
        if let Some(request) = handed {
            self.returned.push_front(request);
            self.dispatch();
            if !self.returned.is_empty() {
                self.core.pipes.push_event(readable(None));
            }
        }
    }
}

impl Protocol for CookedReplier {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        self.protocol
    }

    fn handle(&mut self, input: Input, _now: Instant) {
        let watched = self.contexts.default_ref().pipe();
        self.core.handle(input, watched);
        self.dispatch();
        self.wake_blocked();
    }

    /// Does nothing: this role has no timers.
    fn handle_timeout(&mut self, _now: Instant) {}

    #[inline]
    fn poll_transmit(&mut self) -> Option<crate::protocol::Transmit> {
        self.core.poll_transmit()
    }

    #[inline]
    fn poll_event(&mut self) -> Option<crate::protocol::Event> {
        self.core.poll_event()
    }

    #[inline]
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.core.is_receiving(pipe)
    }

    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        self.reply(None, msg)
    }

    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let request = self.next_request().ok_or(RecvError::WouldBlock)?;
        Ok(self.contexts.default_ctx().take(request))
    }

    /// Returns true while a request no context holds is queued.
    fn is_readable(&self) -> bool {
        !self.returned.is_empty() || self.core.stats().recv_queued > 0
    }

    /// Returns true while the socket's own context holds a request whose reply can go now:
    /// its pipe is idle, or gone (the reply is then dropped and counted).
    #[inline]
    fn is_writable(&self) -> bool {
        self.can_reply(None)
    }

    /// Returns true when `send` would take a message now ([`Protocol::is_writable`]).
    #[inline]
    fn will_take(&self, _msg: &Message) -> bool {
        self.can_reply(None)
    }

    /// Returns true when `send_on` would take a message now: `ctx` holds a request whose
    /// reply can go.
    fn will_take_on(&self, ctx: ContextId, _msg: &Message) -> bool {
        self.can_reply(Some(ctx))
    }

    fn open_context(&mut self, _now: Instant) -> Result<ContextId, ContextError> {
        Ok(self.contexts.open(ReplyContext::default()))
    }

    fn close_context(&mut self, ctx: ContextId, _now: Instant) -> Result<(), ContextError> {
        self.stop_waiting(ctx);
        self.blocked.remove(&ctx);
        self.contexts
            .close(ctx)
            .map(drop)
            .ok_or(ContextError::UnknownContext)
    }

    fn send_on(&mut self, ctx: ContextId, msg: Message, _now: Instant) -> Result<(), SendError> {
        self.reply(Some(ctx), msg)
    }

    fn recv_on(&mut self, ctx: ContextId, _now: Instant) -> Result<Message, RecvError> {
        let state = self
            .contexts
            .lookup(ctx)
            .map_err(|_| RecvError::UnknownContext)?;
        if let Some(request) = state.handed.take() {
            return Ok(state.take(request));
        }
        if state.recv_waiting {
            return Err(RecvError::BadState);
        }
        match self.next_request() {
            Some(request) => {
                let state = self.contexts.lookup(ctx).expect("looked up above");
                Ok(state.take(request))
            }
            None => {
                let state = self.contexts.lookup(ctx).expect("looked up above");
                state.recv_waiting = true;
                self.waiting.push_back(ctx);
                Err(RecvError::WouldBlock)
            }
        }
    }

    fn cancel_recv(&mut self, ctx: ContextId, _now: Instant) {
        self.stop_waiting(ctx);
    }

    fn stats(&self) -> CoreStats {
        let mut stats = self.core.stats();
        let handed = self
            .contexts
            .iter()
            .filter(|(_, state)| state.handed.is_some())
            .count();
        stats.recv_queued += self.returned.len() + handed;
        stats
    }

    fn recv_buffer(&self) -> Option<usize> {
        Some(self.core.recv_buffer())
    }

    fn set_recv_buffer(&mut self, len: usize, _now: Instant) -> Result<(), ConfigError> {
        self.core.set_recv_buffer(len)
    }
}

/// Writes every [`Protocol`] method of a cooked REP-side role as a call to its
/// [`CookedReplier`] field `inner`.
macro_rules! forward_to_cooked_replier {
    () => {
        fn protocol(&self) -> $crate::ProtocolId {
            self.inner.protocol()
        }

        /// Applies a pipe input; see the type docs for what each input does.
        fn handle(&mut self, input: $crate::protocol::Input, now: ::std::time::Instant) {
            self.inner.handle(input, now);
        }

        /// Does nothing: this role has no timers.
        fn handle_timeout(&mut self, now: ::std::time::Instant) {
            self.inner.handle_timeout(now);
        }

        #[inline]
        fn poll_transmit(&mut self) -> Option<$crate::protocol::Transmit> {
            self.inner.poll_transmit()
        }

        #[inline]
        fn poll_event(&mut self) -> Option<$crate::protocol::Event> {
            self.inner.poll_event()
        }

        #[inline]
        fn poll_timeout(&self) -> Option<::std::time::Instant> {
            self.inner.poll_timeout()
        }

        #[inline]
        fn is_receiving(&self, pipe: $crate::PipeId) -> bool {
            self.inner.is_receiving(pipe)
        }

        /// Sends `msg`'s body as the one reply to the saved request (or survey), behind the
        /// saved backtrace, and clears what was saved.
        ///
        /// When the request's pipe has gone away the reply is dropped and the send still
        /// succeeds (`test_rep_close_pipe_before_send`).
        ///
        /// # Errors
        /// [`SendError::BadState`](crate::protocol::SendError::BadState) when nothing is saved
        /// (nothing received, or already answered).
        /// [`SendError::WouldBlock`](crate::protocol::SendError::WouldBlock) when the pipe is
        /// busy; the request stays saved, so retry after
        /// [`Event::Writable`](crate::protocol::Event::Writable).
        fn send(
            &mut self,
            msg: $crate::Message,
            now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::SendError> {
            self.inner.send(msg, now)
        }

        #[inline]
        fn will_take(&self, msg: &$crate::Message) -> bool {
            self.inner.will_take(msg)
        }

        /// Takes the oldest request (or survey) and saves its backtrace and pipe for the
        /// reply, replacing (and so abandoning) whatever was saved. Returns the body with an
        /// empty header. May queue
        /// [`Event::ResumeReceiving`](crate::protocol::Event::ResumeReceiving).
        ///
        /// # Errors
        /// [`RecvError::WouldBlock`](crate::protocol::RecvError::WouldBlock) when nothing is
        /// queued.
        fn recv(
            &mut self,
            now: ::std::time::Instant,
        ) -> Result<$crate::Message, $crate::protocol::RecvError> {
            self.inner.recv(now)
        }

        /// Opens a context with nothing saved. Each context answers one request at a time.
        fn open_context(
            &mut self,
            now: ::std::time::Instant,
        ) -> Result<$crate::protocol::ContextId, $crate::protocol::ContextError> {
            self.inner.open_context(now)
        }

        /// Closes `ctx`: its saved request is abandoned, and a request already handed to its
        /// waiting receive goes to the next waiting context.
        fn close_context(
            &mut self,
            ctx: $crate::protocol::ContextId,
            now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::ContextError> {
            self.inner.close_context(ctx, now)
        }

        /// Sends the reply to the request `ctx` received, as [`Protocol::send`] does for the
        /// socket's own; a busy pipe is announced free with
        /// [`Event::ContextWritable`](crate::protocol::Event::ContextWritable).
        ///
        /// # Errors
        /// [`SendError::UnknownContext`](crate::protocol::SendError::UnknownContext) when `ctx`
        /// is not open, and the errors of [`Protocol::send`].
        fn send_on(
            &mut self,
            ctx: $crate::protocol::ContextId,
            msg: $crate::Message,
            now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::SendError> {
            self.inner.send_on(ctx, msg, now)
        }

        fn will_take_on(&self, ctx: $crate::protocol::ContextId, msg: &$crate::Message) -> bool {
            self.inner.will_take_on(ctx, msg)
        }

        /// Takes a request for `ctx`: the one handed to its waiting receive, else the oldest
        /// queued. With none, registers the waiting receive: the next request to arrive goes
        /// to the context that has waited longest.
        ///
        /// # Errors
        /// [`RecvError::UnknownContext`](crate::protocol::RecvError::UnknownContext) when
        /// `ctx` is not open; [`RecvError::BadState`](crate::protocol::RecvError::BadState)
        /// while another receive waits on `ctx` (`test_rep_double_recv`);
        /// [`RecvError::WouldBlock`](crate::protocol::RecvError::WouldBlock).
        fn recv_on(
            &mut self,
            ctx: $crate::protocol::ContextId,
            now: ::std::time::Instant,
        ) -> Result<$crate::Message, $crate::protocol::RecvError> {
            self.inner.recv_on(ctx, now)
        }

        fn cancel_recv(&mut self, ctx: $crate::protocol::ContextId, now: ::std::time::Instant) {
            self.inner.cancel_recv(ctx, now);
        }

        /// Returns the counters: requests dropped over the TTL
        /// ([`DropReason::TtlExceeded`](crate::stats::DropReason::TtlExceeded)), replies whose
        /// pipe was gone ([`DropReason::NoRoute`](crate::stats::DropReason::NoRoute)) and
        /// requests discarded by shrinking the queue
        /// ([`DropReason::QueueShrunk`](crate::stats::DropReason::QueueShrunk)), plus the
        /// requests waiting to be received, those handed to waiting contexts included.
        fn stats(&self) -> $crate::stats::CoreStats {
            self.inner.stats()
        }

        fn is_readable(&self) -> bool {
            self.inner.is_readable()
        }

        #[inline]
        fn is_writable(&self) -> bool {
            self.inner.is_writable()
        }

        fn recv_buffer(&self) -> Option<usize> {
            self.inner.recv_buffer()
        }

        /// Resizes the receive queue. Shrinking drops the newest requests beyond the new
        /// length; growing resumes the pipes paused by a full queue.
        ///
        /// # Errors
        /// [`ConfigError::QueueLenOutOfRange`](crate::protocol::ConfigError::QueueLenOutOfRange)
        /// above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
        fn set_recv_buffer(
            &mut self,
            len: usize,
            now: ::std::time::Instant,
        ) -> Result<(), $crate::protocol::ConfigError> {
            self.inner.set_recv_buffer(len, now)
        }
    };
}
pub(crate) use forward_to_cooked_replier;
