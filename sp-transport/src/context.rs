//! [`Context`]: many independent requests, replies, surveys or subscriptions on one socket.
//!
//! A context is an independent copy of a cooked protocol's per-operation state (SP-PROTOCOLS.md
//! sections 4.3–4.6, "Contexts"): each REQ context has its own outstanding request and resend
//! timer, each REP or RESPONDENT context answers its own request, each SURVEYOR context runs its
//! own survey, each SUB context has its own topics and queue. All of them share the socket's
//! pipes. The protocol rules live in the core (`sp_core::protocol::context`); this file only
//! waits: every context has its own waiter lists and readiness flags in the driver, and the
//! core names the context it wakes, so 100 contexts waiting on one socket cost one wake-up per
//! message, not 100.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use sp_core::protocol::pubsub::{Sub, SubscribeError};
use sp_core::protocol::reqrep::Req;
use sp_core::protocol::survey::Surveyor;
use sp_core::protocol::{ContextError, ContextId, RecvError, SendError};
use sp_core::Message;

use crate::error::{Error, Result, SendResult, Unsent};
use crate::pipe::PipeOwner;
use crate::roles::{ContextRole, RecvRole, SendRole};
use crate::rt::Runtime;
use crate::socket::{
    deadline_after, with_deadline, CtxWaiters, DeadlineWait, Expiry, Shared, Socket, SocketCore,
};

/// One context of a socket: send and receive on it as on a socket of its own.
///
/// Made by [`Socket::context`]. A context keeps its socket open (`Req::new().context()`
/// works); once the socket is closed ([`Socket::close`]), every operation on the context
/// fails with [`Error::Closed`]. Dropping the context
/// (or [`Context::close`]) closes it in the protocol core: its request or survey is abandoned,
/// and a request already handed to it goes to another waiting context.
///
/// Operations on one context follow the protocol's rules for one requester: on REQ a new send
/// cancels the previous request and a receive waiting for it fails with [`Error::Canceled`];
/// a second receive while one waits fails with [`Error::BadState`] (REQ, REP, RESPONDENT).
/// To keep many requests in flight, use many contexts, each from its own task, or all from one
/// task through a [`RecvSet`](crate::RecvSet).
pub struct Context<R: Runtime, P: SocketCore> {
    pub(crate) shared: Arc<Shared<R, P>>,
    pub(crate) id: ContextId,
    /// Keeps the socket open while the context lives (`Req::new().context()` works).
    _socket: Socket<R, P>,
    /// The receive in progress of the context's `Stream`.
    pub(crate) stream_op: Option<RecvOp<R, P>>,
    /// The send in progress of the context's `Sink`.
    pub(crate) sink_op: Option<SendOp<R, P>>,
    /// The context's own timeouts, here rather than under the socket's lock: a send or
    /// receive that waits reads one, and with 100 contexts on two threads that lock is
    /// contended.
    send_timeout: TimeoutCell,
    recv_timeout: TimeoutCell,
}

/// An `Option<Duration>` that `&self` can set: whole nanoseconds, `u64::MAX` for `None`
/// (durations past 584 years saturate just below it).
struct TimeoutCell(AtomicU64);

impl TimeoutCell {
    const NONE: u64 = u64::MAX;

    fn new(timeout: Option<Duration>) -> Self {
        let cell = Self(AtomicU64::new(Self::NONE));
        cell.set(timeout);
        cell
    }

    fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            Self::NONE => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn set(&self, timeout: Option<Duration>) {
        let nanos = timeout.map_or(Self::NONE, |t| {
            u64::try_from(t.as_nanos()).map_or(Self::NONE - 1, |n| n.min(Self::NONE - 1))
        });
        self.0.store(nanos, Ordering::Relaxed);
    }
}

impl<R: Runtime, P: ContextRole> Socket<R, P> {
    /// Opens a new context on this socket. It starts with the socket's current send and
    /// receive timeouts and protocol settings (resend interval, survey time).
    ///
    /// Only REQ, REP, SURVEYOR, RESPONDENT and SUB have contexts ([`ContextRole`]).
    ///
    /// # Errors
    /// [`Error::Closed`] once the socket is closed.
    pub fn context(&self) -> Result<Context<R, P>> {
        let shared = self.shared().clone();
        let mut st = shared.lock();
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        let now = shared.rt.now();
        let id = st.core.open_context(now).map_err(context_error)?;
        st.contexts.insert(id, CtxWaiters::new());
        st.pump(now);
        let (send_timeout, recv_timeout) = (st.opts.send_timeout, st.opts.recv_timeout);
        drop(st);
        Ok(Context {
            shared,
            id,
            _socket: self.clone(),
            stream_op: None,
            sink_op: None,
            send_timeout: TimeoutCell::new(send_timeout),
            recv_timeout: TimeoutCell::new(recv_timeout),
        })
    }
}

impl<R: Runtime, P: SocketCore> Context<R, P> {
    /// Returns the context's ID within its socket.
    pub fn id(&self) -> ContextId {
        self.id
    }

    /// Returns this context's send timeout (`None`: wait forever).
    pub fn send_timeout(&self) -> Option<Duration> {
        self.send_timeout.get()
    }

    /// Sets how long sends on this context wait (`None`: forever, zero: do not wait).
    pub fn set_send_timeout(&self, timeout: Option<Duration>) {
        self.send_timeout.set(timeout);
    }

    /// Returns this context's receive timeout (`None`: wait forever).
    pub fn recv_timeout(&self) -> Option<Duration> {
        self.recv_timeout.get()
    }

    /// Sets how long receives on this context wait (`None`: forever, zero: do not wait).
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) {
        self.recv_timeout.set(timeout);
    }

    /// Closes the context now (dropping it does the same).
    pub fn close(self) {}

    /// Runs `f` on the protocol core with this context's ID, then applies whatever it queued.
    /// For per-context settings that have no method here.
    pub fn with_core<T>(&self, f: impl FnOnce(&mut P, ContextId, Instant) -> T) -> T {
        let mut st = self.shared.lock();
        let now = self.shared.rt.now();
        let out = f(&mut st.core, self.id, now);
        st.pump(now);
        out
    }

    fn send_by<D: FnOnce() -> Option<Instant>>(
        &self,
        msg: Message,
        expiry: Expiry,
        deadline: D,
    ) -> CtxSendCall<R, P, D> {
        CtxSendCall {
            op: SendOp::new(self.shared.clone(), self.id, msg),
            deadline: Some(deadline),
            wait: DeadlineWait::new(expiry),
        }
    }

    fn recv_by<'a>(
        &'a self,
        expiry: Expiry,
        deadline: impl FnOnce() -> Option<Instant> + 'a,
    ) -> impl Future<Output = Result<Message>> + 'a {
        let mut op = RecvOp::new(self.shared.clone(), self.id);
        with_deadline(&self.shared.rt, expiry, deadline, move |cx| op.poll(cx))
    }
}

/// The future of a context's send: the operation and its deadline in one struct, as
/// `SendCall` is a socket's (an `async fn` around [`with_deadline`] moved both on the first
/// poll). A send that gives up hands its message back ([`Unsent`]).
pub(crate) struct CtxSendCall<R: Runtime, P: SocketCore, D> {
    op: SendOp<R, P>,
    deadline: Option<D>,
    wait: DeadlineWait,
}

// Nothing in it is pinned: the deadline closure is called through `&mut`.
impl<R: Runtime, P: SocketCore, D> Unpin for CtxSendCall<R, P, D> {}

impl<R: Runtime, P: SocketCore, D: FnOnce() -> Option<Instant>> Future for CtxSendCall<R, P, D> {
    type Output = SendResult;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<SendResult> {
        let Self { op, deadline, wait } = self.get_mut();
        let err = match op.poll(cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => e,
            Poll::Pending => {
                let expired =
                    wait.poll_expired(&op.shared.rt, || deadline.take().and_then(|f| f()), cx);
                std::task::ready!(expired)
            }
        };
        Poll::Ready(Err(Unsent::new(err, std::mem::take(&mut op.msg))))
    }
}

/// Sending on a context: roles that send ([`SendRole`]); SUB contexts only receive.
impl<R: Runtime, P: ContextRole + SendRole> Context<R, P> {
    /// Sends a message on this context, waiting up to the context's send timeout.
    ///
    /// REQ: cancels the context's previous request, then queues this one; it goes out as soon
    /// as a REP peer can take it, so the send returns at once even with no peer. SURVEYOR:
    /// starts a new survey on the context. REP and RESPONDENT: answers the request the context
    /// received, waiting while its pipe is busy.
    ///
    /// # Cancel safety
    /// Cancel-safe: the context's protocol takes the message only in the poll that completes
    /// the call; a future dropped before then sent nothing.
    ///
    /// # Errors
    /// [`Error::TimedOut`], [`Error::BadState`] (REP: nothing to answer), [`Error::Closed`].
    pub fn send(&self, msg: impl Into<Message>) -> impl Future<Output = SendResult> + '_ {
        let deadline = || deadline_after(&self.shared.rt, self.send_timeout());
        self.send_by(msg.into(), Expiry::Timeout, deadline)
    }

    /// Sends like [`Context::send`], but waits at most until `deadline`.
    ///
    /// # Cancel safety
    /// As [`Context::send`].
    ///
    /// # Errors
    /// As [`Context::send`], with [`Error::TimedOut`] also for a deadline that had
    /// passed before the call (never [`Error::WouldBlock`]).
    pub fn send_until(
        &self,
        msg: impl Into<Message>,
        deadline: Instant,
    ) -> impl Future<Output = SendResult> + '_ {
        self.send_by(msg.into(), Expiry::Deadline, move || Some(deadline))
    }

    /// Sends only if that is possible without waiting.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when it would have to wait, and the errors of [`Context::send`].
    pub fn try_send(&self, msg: impl Into<Message>) -> SendResult {
        let mut op = SendOp::new(self.shared.clone(), self.id, msg.into());
        let mut cx = TaskContext::from_waker(std::task::Waker::noop());
        let res = match op.poll(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::WouldBlock),
        };
        res.map_err(|e| Unsent::new(e, op.msg))
    }
}

/// Receiving on a context.
impl<R: Runtime, P: ContextRole + RecvRole> Context<R, P> {
    /// Receives the next message for this context, waiting up to its receive timeout.
    ///
    /// REQ: the reply to the context's request. SURVEYOR: the next response to its survey.
    /// REP and RESPONDENT: the next request, which this context then answers; waiting
    /// contexts are served in the order they started waiting. SUB: the next message matching
    /// the context's topics.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future withdraws the waiting receive, and a message already
    /// handed to it goes to the next waiting context (REP, RESPONDENT) or stays queued for the
    /// next receive on this context: nothing is lost or delivered twice.
    ///
    /// # Errors
    /// [`Error::TimedOut`] (also when a survey ends), [`Error::BadState`] (nothing to wait
    /// for, or another receive already waits on this context), [`Error::Canceled`] (REQ,
    /// SURVEYOR: a newer send replaced what this receive waited for),
    /// [`Error::ConnectionReset`], [`Error::Closed`].
    pub fn recv(&self) -> impl Future<Output = Result<Message>> + '_ {
        let deadline = || deadline_after(&self.shared.rt, self.recv_timeout());
        self.recv_by(Expiry::Timeout, deadline)
    }

    /// Receives like [`Context::recv`], but waits at most until `deadline`.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future withdraws the waiting receive, and a message already
    /// handed to it goes to the next waiting context (REP, RESPONDENT) or stays queued for the
    /// next receive on this context: nothing is lost or delivered twice.
    ///
    /// # Errors
    /// As [`Context::recv`], with [`Error::TimedOut`] also for a deadline that had
    /// passed before the call (never [`Error::WouldBlock`]).
    pub fn recv_until(&self, deadline: Instant) -> impl Future<Output = Result<Message>> + '_ {
        self.recv_by(Expiry::Deadline, move || Some(deadline))
    }

    /// Receives only if a message is ready now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when nothing is ready, and the errors of [`Context::recv`].
    pub fn try_recv(&self) -> Result<Message> {
        let mut op = RecvOp::new(self.shared.clone(), self.id);
        let mut cx = TaskContext::from_waker(std::task::Waker::noop());
        match op.poll(&mut cx) {
            Poll::Ready(r) => r,
            // Dropping `op` withdraws the receive from the core.
            Poll::Pending => Err(Error::WouldBlock),
        }
    }
}

impl<R: Runtime, P: SocketCore> std::fmt::Debug for Context<R, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("protocol", &self.shared.protocol())
            .field("id", &self.id)
            .finish()
    }
}

impl<R: Runtime, P: SocketCore> Drop for Context<R, P> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(mut waiters) = st.contexts.remove(&self.id) {
            waiters.wake_all();
            let now = self.shared.rt.now();
            let _ = st.core.close_context(self.id, now);
            st.pump(now);
        }
    }
}

impl<R: Runtime> Context<R, Req> {
    /// Returns how long this context waits for a reply before resending its request
    /// (`None`: never).
    pub fn resend_interval(&self) -> Option<Duration> {
        self.with_core(|core, ctx, _| core.context_resend_interval(ctx))
            .ok()
            .flatten()
    }

    /// Sets how long this context waits for a reply before resending (`None` disables
    /// resending; losing the connection then fails the receive with
    /// [`Error::ConnectionReset`]). Other contexts keep their own value.
    ///
    /// # Errors
    /// [`Error::Closed`] once the socket is closed.
    pub fn set_resend_interval(&self, interval: Option<Duration>) -> Result<()> {
        self.with_core(|core, ctx, _| core.set_context_resend_interval(ctx, interval))
            .map_err(context_error)
    }
}

impl<R: Runtime> Context<R, Surveyor> {
    /// Returns how long this context's surveys collect responses.
    pub fn survey_time(&self) -> Option<Duration> {
        self.with_core(|core, ctx, _| core.context_survey_time(ctx))
            .ok()
    }

    /// Sets how long this context's surveys, from the next one on, collect responses.
    ///
    /// # Errors
    /// [`Error::Closed`] once the socket is closed.
    pub fn set_survey_time(&self, survey_time: Duration) -> Result<()> {
        self.with_core(|core, ctx, _| core.set_context_survey_time(ctx, survey_time))
            .map_err(context_error)
    }
}

impl<R: Runtime> Context<R, Sub> {
    /// Subscribes this context to `topic`; other contexts and the socket keep their own
    /// topics.
    ///
    /// # Errors
    /// [`Error::Closed`] once the socket is closed.
    pub fn subscribe(&self, topic: &[u8]) -> Result<()> {
        self.with_core(|core, ctx, _| core.subscribe_on(ctx, topic))
            .map_err(subscribe_error)
    }

    /// Removes `topic` from this context, and discards its queued messages that no remaining
    /// topic matches.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`] when the context is not subscribed to `topic`;
    /// [`Error::Closed`] once the socket is closed.
    pub fn unsubscribe(&self, topic: &[u8]) -> Result<()> {
        self.with_core(|core, ctx, _| core.unsubscribe_on(ctx, topic))
            .map_err(subscribe_error)
    }
}

fn context_error(e: ContextError) -> Error {
    match e {
        ContextError::NotSupported => Error::NotSupported,
        _ => Error::Closed,
    }
}

fn subscribe_error(e: SubscribeError) -> Error {
    match e {
        SubscribeError::UnknownTopic => Error::UnknownTopic,
        SubscribeError::UnknownContext => Error::Closed,
        _ => Error::NotSupported,
    }
}

/// One receive on a context, from its first attempt until it completes or gives up.
pub(crate) struct RecvOp<R: Runtime, P: SocketCore> {
    shared: Arc<Shared<R, P>>,
    ctx: ContextId,
    first: bool,
    /// The core counts this receive as waiting on the context.
    waiting: bool,
}

impl<R: Runtime, P: SocketCore> RecvOp<R, P> {
    pub(crate) fn new(shared: Arc<Shared<R, P>>, ctx: ContextId) -> Self {
        Self {
            shared,
            ctx,
            first: true,
            waiting: false,
        }
    }

    pub(crate) fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Message>> {
        let mut st = self.shared.lock();
        let closed = self.shared.is_closed();
        let Some(waiters) = st.contexts.get_mut(&self.ctx).filter(|_| !closed) else {
            self.waiting = false;
            return Poll::Ready(Err(Error::Closed));
        };
        if !self.first && !waiters.readable {
            waiters.recv.register(cx.waker());
            return Poll::Pending;
        }
        self.first = false;
        let now = self.shared.receive_now(&mut st);
        let result = st.core.recv_on(self.ctx, now);
        let would_block = result == Err(RecvError::WouldBlock);
        if let Some(waiters) = st.contexts.get_mut(&self.ctx) {
            if would_block {
                waiters.readable = false;
                waiters.recv.register(cx.waker());
            }
        }
        st.pump(now);
        self.waiting = would_block;
        match result {
            Ok(msg) => {
                st.count_received(msg.len());
                Poll::Ready(Ok(msg))
            }
            Err(RecvError::WouldBlock) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
}

impl<R: Runtime, P: SocketCore> Drop for RecvOp<R, P> {
    fn drop(&mut self) {
        if self.waiting {
            let mut st = self.shared.lock();
            let now = self.shared.receive_now(&mut st);
            st.core.cancel_recv(self.ctx, now);
            st.pump(now);
        }
    }
}

/// One send on a context, retried when the core names the context writable.
pub(crate) struct SendOp<R, P> {
    shared: Arc<Shared<R, P>>,
    ctx: ContextId,
    msg: Message,
    first: bool,
}

impl<R: Runtime, P: SocketCore> SendOp<R, P> {
    pub(crate) fn new(shared: Arc<Shared<R, P>>, ctx: ContextId, msg: Message) -> Self {
        Self {
            shared,
            ctx,
            msg,
            first: true,
        }
    }

    pub(crate) fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let mut st = self.shared.lock();
        let closed = self.shared.is_closed();
        let Some(waiters) = st.contexts.get_mut(&self.ctx).filter(|_| !closed) else {
            return Poll::Ready(Err(Error::Closed));
        };
        if !self.first && !waiters.writable {
            waiters.send.register(cx.waker());
            return Poll::Pending;
        }
        self.first = false;
        let now = self.shared.core_now(&mut st);
        let len = self.msg.len();
        // The message itself when the core says it takes it, else a copy (see
        // `Protocol::will_take`): a refused message stays here for the retry or the caller.
        let taken = st.core.will_take_on(self.ctx, &self.msg);
        let result = if taken {
            st.core
                .send_on(self.ctx, std::mem::take(&mut self.msg), now)
        } else {
            st.core.send_on(self.ctx, self.msg.clone(), now)
        };
        debug_assert!(
            result.is_ok() || !taken,
            "a core refused a context's message it said it would take"
        );
        if result == Err(SendError::WouldBlock) {
            if let Some(waiters) = st.contexts.get_mut(&self.ctx) {
                waiters.writable = false;
                waiters.send.register(cx.waker());
            }
        }
        if result.is_ok() {
            st.count_sent(len);
        }
        st.pump(now);
        match result {
            Ok(()) => Poll::Ready(Ok(())),
            Err(SendError::WouldBlock) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
}
