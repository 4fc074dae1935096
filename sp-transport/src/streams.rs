//! `Stream` and `Sink` (futures-core and futures-sink) for sockets and contexts, so that
//! `StreamExt` and `SinkExt` work on them: `while let Some(msg) = sub.next().await`,
//! `stream.forward(push)`, `select_all` over sockets.
//!
//! * A receiving socket or context is a `Stream` of `Result<Message>`. It ignores the receive
//!   timeout (wrap it in your runtime's timeout for one) and ends once the socket is closed.
//! * A sending socket or context is a `Sink<Message>` with real back-pressure: `poll_ready`
//!   is ready only when the message accepted before has been taken by the protocol, so the
//!   sink holds at most one message and never a growing buffer. It ignores the send timeout.
//!   Closing the sink does not close the socket.
//! * A survey's responses ([`Responses`]) are a `Stream` that ends at the survey deadline.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use sp_core::protocol::survey::Surveyor;
use sp_core::Message;

use crate::context::{Context, RecvOp, SendOp};
use crate::error::{Error, Result};
use crate::roles::{ContextRole, RecvRole, SendRole};
use crate::rt::Runtime;
use crate::socket::Socket;

/// Ends a stream at a closed socket; passes every other outcome on.
fn stream_item(r: Result<Message>) -> Option<Result<Message>> {
    match r {
        Err(Error::Closed) => None,
        other => Some(other),
    }
}

impl<R: Runtime, P: RecvRole> Stream for Socket<R, P> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_stream_recv(cx).map(stream_item)
    }
}

impl<R: Runtime, P: SendRole> Socket<R, P> {
    /// Hands the message the sink holds to the protocol; ready once the slot is empty.
    fn poll_sink_slot(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        if self.sink_slot.is_none() {
            return Poll::Ready(Ok(()));
        }
        let res = std::task::ready!(self.poll_send_sink_slot(cx));
        self.sink_slot = None;
        Poll::Ready(res)
    }
}

impl<R: Runtime, P: SendRole> Sink<Message> for Socket<R, P> {
    type Error = Error;

    /// Ready once the previous message is handed over and the task has had its turn
    /// (`Socket::send`'s periodic yield): a `send_all` loop on PUB, which never waits, must
    /// not starve the pipe tasks behind it.
    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_sink_slot(cx))?;
        this.shared().poll_send_turn(cx).map(Ok)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<()> {
        let this = self.get_mut();
        debug_assert!(this.sink_slot.is_none(), "start_send without poll_ready");
        this.sink_slot = Some(msg);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_sink_slot(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_sink_slot(cx)
    }
}

impl<R: Runtime, P: ContextRole + RecvRole> Stream for Context<R, P> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let (shared, id) = (this.shared.clone(), this.id);
        let op = this
            .stream_op
            .get_or_insert_with(|| RecvOp::new(shared, id));
        let res = std::task::ready!(op.poll(cx));
        this.stream_op = None;
        Poll::Ready(stream_item(res))
    }
}

impl<R: Runtime, P: ContextRole + SendRole> Context<R, P> {
    fn poll_sink_op(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let Some(op) = &mut self.sink_op else {
            return Poll::Ready(Ok(()));
        };
        let res = std::task::ready!(op.poll(cx));
        self.sink_op = None;
        Poll::Ready(res)
    }
}

impl<R: Runtime, P: ContextRole + SendRole> Sink<Message> for Context<R, P> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_sink_op(cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<()> {
        let this = self.get_mut();
        debug_assert!(this.sink_op.is_none(), "start_send without poll_ready");
        this.sink_op = Some(SendOp::new(this.shared.clone(), this.id, msg));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_sink_op(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_sink_op(cx)
    }
}

/// The responses to one survey ([`Socket::survey`]): a `Stream` of messages that ends when
/// the survey's time is up. It runs on a context of its own, so responses to it never reach
/// another survey or the socket's own `recv`, and dropping it abandons only this survey (its
/// late responses are dropped and counted).
pub struct Responses<R: Runtime> {
    ctx: Context<R, Surveyor>,
    done: bool,
}

impl<R: Runtime> Responses<R> {
    /// Waits for the next response; `None` once the survey is over.
    ///
    /// # Cancel safety
    /// Cancel-safe: a response that arrives while no call waits stays queued for the next.
    pub async fn next_response(&mut self) -> Option<Result<Message>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<R: Runtime> Stream for Responses<R> {
    type Item = Result<Message>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match std::task::ready!(Pin::new(&mut this.ctx).poll_next(cx)) {
            // The survey's deadline passed (or the socket closed): the stream ends.
            Some(Err(Error::TimedOut)) | None => {
                this.done = true;
                Poll::Ready(None)
            }
            other => Poll::Ready(other),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for Responses<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responses")
            .field("context", &self.ctx)
            .field("done", &self.done)
            .finish()
    }
}

impl<R: Runtime> Socket<R, Surveyor> {
    /// Starts a survey on a context of its own and returns its responses, a `Stream` that
    /// ends at the survey deadline ([`Socket::set_survey_time`]).
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future before it completes sends nothing or abandons the
    /// survey; dropping the [`Responses`] abandons it too. Either way no response of it can
    /// reach another survey.
    ///
    /// # Errors
    /// [`Error::Closed`], and the errors of [`Context::send`].
    pub async fn survey(&self, msg: impl Into<Message>) -> Result<Responses<R>> {
        let ctx = self.context()?;
        ctx.send(msg).await?;
        Ok(Responses { ctx, done: false })
    }
}

impl<R: Runtime> Socket<R, sp_core::protocol::reqrep::Req> {
    /// Sends a request and waits for its reply, on a context of its own: concurrent
    /// `request` calls on one socket each get their own reply.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future abandons this request only. Its context closes, so a
    /// late reply is dropped and counted (`DropReason::ContextClosed` or `StaleReply`), never
    /// handed to another request or to the socket's own `recv`.
    ///
    /// # Errors
    /// The errors of [`Context::send`] and [`Context::recv`] (a receive timeout applies as
    /// set on the socket when the call starts).
    pub async fn request(&self, msg: impl Into<Message>) -> Result<Message> {
        let ctx = self.context()?;
        ctx.send(msg).await?;
        ctx.recv().await
    }
}

impl<R: Runtime> Context<R, sp_core::protocol::reqrep::Req> {
    /// Sends a request on this context and waits for its reply.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future leaves the request outstanding on this context; the
    /// context's next send replaces it, and its late reply is then dropped and counted.
    ///
    /// # Errors
    /// The errors of [`Context::send`] and [`Context::recv`].
    pub async fn request(&self, msg: impl Into<Message>) -> Result<Message> {
        self.send(msg).await?;
        self.recv().await
    }
}
