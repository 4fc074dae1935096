//! [`Context`]: the shared driver's contexts, with blocking calls.

use std::time::{Duration, Instant};

use sp_core::protocol::pubsub::Sub as SubCore;
use sp_core::protocol::reqrep::Req as ReqCore;
use sp_core::protocol::survey::Surveyor as SurveyorCore;
use sp_core::protocol::ContextId;
use sp_transport::{ContextRole, Message, RecvRole, Result, SendResult, SendRole};

use crate::runtime::{run, send_with, Threads};

/// One context of a socket (see [`sp_transport::Context`]), with blocking calls: many
/// requests, replies, surveys or subscriptions in flight on one socket, each context used
/// from its own thread, or all of them from one thread through a [`RecvSet`](crate::RecvSet)
/// (no thread switch per message).
///
/// Made by [`Socket::context`](crate::Socket::context). Dropping it closes the context; once
/// the socket closes, every call fails with [`Error::Closed`](crate::Error::Closed).
pub struct Context<P: ContextRole> {
    inner: sp_transport::Context<Threads, P>,
}

impl<P: ContextRole> std::fmt::Debug for Context<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<P: ContextRole> Context<P> {
    pub(crate) fn new(inner: sp_transport::Context<Threads, P>) -> Self {
        Self { inner }
    }

    /// The shared driver's context.
    pub(crate) fn transport(&self) -> &sp_transport::Context<Threads, P> {
        &self.inner
    }

    /// Returns the context's ID within its socket.
    pub fn id(&self) -> ContextId {
        self.inner.id()
    }

    /// Sets how long sends on this context block (`None`: forever, zero: do not wait).
    pub fn set_send_timeout(&self, timeout: Option<Duration>) {
        self.inner.set_send_timeout(timeout);
    }

    /// Sets how long receives on this context block (`None`: forever, zero: do not wait).
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) {
        self.inner.set_recv_timeout(timeout);
    }

    /// Closes the context now (dropping it does the same).
    pub fn close(self) {}
}

/// Sending on a context (not SUB).
impl<P: ContextRole + SendRole> Context<P> {
    /// Sends on this context, blocking up to its send timeout (see
    /// [`sp_transport::Context::send`]).
    ///
    /// # Errors
    /// As [`sp_transport::Context::send`].
    pub fn send(&self, msg: impl Into<Message>) -> SendResult {
        send_with(msg, |msg| self.inner.send(msg))
    }

    /// Sends like [`Context::send`], but blocks at most until `deadline`.
    ///
    /// # Errors
    /// As [`Context::send`].
    pub fn send_until(&self, msg: impl Into<Message>, deadline: Instant) -> SendResult {
        send_with(msg, |msg| self.inner.send_until(msg, deadline))
    }

    /// Sends only if that is possible without waiting.
    ///
    /// # Errors
    /// [`Error::WouldBlock`](crate::Error::WouldBlock), and the errors of [`Context::send`].
    pub fn try_send(&self, msg: impl Into<Message>) -> SendResult {
        self.inner.try_send(msg)
    }
}

/// Receiving on a context.
impl<P: ContextRole + RecvRole> Context<P> {
    /// Receives on this context, blocking up to its receive timeout (see
    /// [`sp_transport::Context::recv`]).
    ///
    /// # Errors
    /// As [`sp_transport::Context::recv`].
    pub fn recv(&self) -> Result<Message> {
        run(self.inner.recv())
    }

    /// Receives like [`Context::recv`], but blocks at most until `deadline`.
    ///
    /// # Errors
    /// As [`Context::recv`].
    pub fn recv_until(&self, deadline: Instant) -> Result<Message> {
        run(self.inner.recv_until(deadline))
    }

    /// Receives only if a message is ready now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`](crate::Error::WouldBlock), and the errors of [`Context::recv`].
    pub fn try_recv(&self) -> Result<Message> {
        self.inner.try_recv()
    }
}

impl Context<ReqCore> {
    /// Sends a request on this context and blocks for its reply.
    ///
    /// # Errors
    /// The errors of [`Context::send`] and [`Context::recv`].
    pub fn request(&self, msg: impl Into<Message>) -> Result<Message> {
        run(self.inner.request(msg))
    }

    /// Sets how long this context waits for a reply before resending (`None`: never).
    ///
    /// # Errors
    /// [`Error::Closed`](crate::Error::Closed) once the socket is closed.
    pub fn set_resend_interval(&self, interval: Option<Duration>) -> Result<()> {
        self.inner.set_resend_interval(interval)
    }
}

impl Context<SurveyorCore> {
    /// Sets how long this context's surveys, from the next one on, collect responses.
    ///
    /// # Errors
    /// [`Error::Closed`](crate::Error::Closed) once the socket is closed.
    pub fn set_survey_time(&self, survey_time: Duration) -> Result<()> {
        self.inner.set_survey_time(survey_time)
    }
}

impl Context<SubCore> {
    /// Subscribes this context to `topic`.
    ///
    /// # Errors
    /// [`Error::Closed`](crate::Error::Closed) once the socket is closed.
    pub fn subscribe(&self, topic: &[u8]) -> Result<()> {
        self.inner.subscribe(topic)
    }

    /// Removes `topic` from this context.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`](crate::Error::UnknownTopic) when it is not subscribed there.
    pub fn unsubscribe(&self, topic: &[u8]) -> Result<()> {
        self.inner.unsubscribe(topic)
    }
}
