//! Pipe events (NNG's `nng_pipe_notify`, mangos' `SetPipeEventHook`): a hook that sees every
//! pipe before the protocol does and may refuse it, and streams of events for observers.
//!
//! For each pipe the order is always *attaching*, *attached*, *detached*. A pipe the hook
//! refuses at *attaching* never reaches the protocol: not one of its messages is delivered,
//! and no *attached* or *detached* follows.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use crate::pipe::lock;
use crate::pipe_view::Pipe;

/// Something that happened to a pipe.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PipeEvent {
    /// The pipe finished its handshake; the protocol has not seen it yet. A hook that
    /// returns [`PipeVerdict::Refuse`] here closes it unseen (NNG's `NNG_PIPE_EV_ADD_PRE`).
    Attaching(Pipe),
    /// The protocol took the pipe; messages flow (`NNG_PIPE_EV_ADD_POST`).
    Attached(Pipe),
    /// The pipe is gone from the socket (`NNG_PIPE_EV_REM_POST`).
    Detached {
        /// The pipe (its counters stay readable).
        pipe: Pipe,
        /// Why it went away.
        reason: DetachReason,
    },
}

impl PipeEvent {
    /// Returns the pipe the event is about.
    pub fn pipe(&self) -> &Pipe {
        match self {
            PipeEvent::Attaching(p) | PipeEvent::Attached(p) => p,
            PipeEvent::Detached { pipe, .. } => pipe,
        }
    }
}

/// Why a pipe detached.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DetachReason {
    /// Our side closed it: the application, the socket, its endpoint, or the protocol.
    Local,
    /// The peer closed the connection.
    PeerClosed,
    /// The peer broke the rules (a bad frame, a message over the size limit, ...); the
    /// text says which.
    PeerMisbehaved(String),
    /// The operating system reported an error on the connection.
    Io(String),
}

impl fmt::Display for DetachReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetachReason::Local => f.write_str("closed locally"),
            DetachReason::PeerClosed => f.write_str("closed by the peer"),
            DetachReason::PeerMisbehaved(why) => write!(f, "peer misbehaved: {why}"),
            DetachReason::Io(e) => write!(f, "connection error: {e}"),
        }
    }
}

/// What a pipe hook decides at [`PipeEvent::Attaching`] (ignored for the other events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeVerdict {
    /// Let the pipe attach.
    Accept,
    /// Close the pipe before the protocol sees it; counted as
    /// [`RefusalReason::Hook`](crate::stats::RefusalReason::Hook).
    Refuse,
}

pub(crate) type Hook = Arc<dyn Fn(&PipeEvent) -> PipeVerdict + Send + Sync>;

/// Runs `hook`, turning a panic into a refusal so that a bug in it costs one pipe, never the
/// pipe task or the socket.
pub(crate) fn run_hook(hook: &Hook, event: &PipeEvent) -> PipeVerdict {
    match catch_unwind(AssertUnwindSafe(|| hook(event))) {
        Ok(v) => v,
        Err(_) => {
            tracing::warn!(pipe = %event.pipe().id(), "pipe hook panicked; refusing the pipe");
            PipeVerdict::Refuse
        }
    }
}

/// How many events a [`PipeEvents`] stream buffers by default before it drops the oldest.
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

struct Queue {
    events: VecDeque<PipeEvent>,
    capacity: usize,
    missed: u64,
    ended: bool,
    waker: Option<Waker>,
}

/// The socket's list of event subscribers.
#[derive(Default)]
pub(crate) struct Subscribers(Mutex<Vec<Weak<Mutex<Queue>>>>);

impl Subscribers {
    pub(crate) fn subscribe(&self, capacity: usize, ended: bool) -> PipeEvents {
        let q = Arc::new(Mutex::new(Queue {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            missed: 0,
            ended,
            waker: None,
        }));
        let mut subs = lock(&self.0);
        subs.retain(|w| w.strong_count() > 0);
        subs.push(Arc::downgrade(&q));
        PipeEvents { q }
    }

    pub(crate) fn publish(&self, event: &PipeEvent) {
        let subs: Vec<_> = lock(&self.0).iter().filter_map(Weak::upgrade).collect();
        for q in subs {
            let mut q = lock(&q);
            if q.events.len() >= q.capacity {
                q.events.pop_front();
                q.missed += 1;
            }
            q.events.push_back(event.clone());
            if let Some(w) = q.waker.take() {
                w.wake();
            }
        }
    }

    /// Ends every stream once its buffered events are read (the socket closed).
    pub(crate) fn end(&self) {
        for q in lock(&self.0).drain(..).filter_map(|w| w.upgrade()) {
            let mut q = lock(&q);
            q.ended = true;
            if let Some(w) = q.waker.take() {
                w.wake();
            }
        }
    }
}

/// A stream of [`PipeEvent`]s from one socket ([`Socket::pipe_events`]). It ends (`None`)
/// after the socket closed and the last pipe detached... once its buffered events are read.
///
/// Events wait in a buffer of bounded size; when a slow reader lets it fill, the oldest event
/// is dropped and counted ([`PipeEvents::missed`]), so an unread stream costs bounded memory.
/// Use the hook ([`Socket::set_pipe_hook`]) to act on every pipe without fail.
///
/// [`Socket::pipe_events`]: crate::Socket::pipe_events
/// [`Socket::set_pipe_hook`]: crate::Socket::set_pipe_hook
pub struct PipeEvents {
    q: Arc<Mutex<Queue>>,
}

impl PipeEvents {
    /// Waits for the next event; `None` once the socket is closed and every event was read.
    ///
    /// Cancel-safe: dropping the future loses no event.
    pub async fn next(&mut self) -> Option<PipeEvent> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Returns the next buffered event without waiting.
    pub fn try_next(&mut self) -> Option<PipeEvent> {
        lock(&self.q).events.pop_front()
    }

    /// Returns how many events were dropped because the buffer was full.
    pub fn missed(&self) -> u64 {
        lock(&self.q).missed
    }

    /// Polls for the next event (the `Stream` implementation).
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<PipeEvent>> {
        let mut q = lock(&self.q);
        if let Some(e) = q.events.pop_front() {
            return Poll::Ready(Some(e));
        }
        if q.ended {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl futures_core::Stream for PipeEvents {
    type Item = PipeEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<PipeEvent>> {
        self.get_mut().poll_next_event(cx)
    }
}

impl fmt::Debug for PipeEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = lock(&self.q);
        f.debug_struct("PipeEvents")
            .field("buffered", &q.events.len())
            .field("missed", &q.missed)
            .field("ended", &q.ended)
            .finish()
    }
}
