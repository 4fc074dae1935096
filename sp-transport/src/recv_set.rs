//! [`RecvSet`]: one wait on the receives of many sockets and contexts (nanomsg's `nn_poll`,
//! libzmq's `zmq_poll`), which hands over the message rather than a readiness flag.
//!
//! Why a set and not a readiness poll: a readiness flag is stale by the time the caller acts
//! on it (another thread may take the message, and a REQ context has nothing "readable" until
//! its receive waits in the core), so the caller would have to try and poll again. The set
//! keeps a receive waiting on each member and returns the first message that arrives, with
//! the key the caller gave its source. (A socket's own readiness, for a caller that only
//! wants to know, is [`Socket::is_readable`] and [`Socket::readable`].)
//!
//! Why it exists next to `select!` and `StreamMap`: with one task (or one blocking thread)
//! per context, every reply costs a task wake-up, or an OS thread switch on sp-blocking. The
//! set gives each member a waker of its own that only queues the member's slot and wakes the
//! one waiting task, so a thread can keep a hundred requests in flight and poll only the
//! members that were woken: no member is polled twice for one message, and idle members cost
//! nothing.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Instant;

use sp_core::Message;

use crate::context::{Context, RecvOp};
use crate::error::{Error, Result};
use crate::pipe::lock;
use crate::roles::{ContextRole, RecvRole};
use crate::rt::Runtime;
use crate::socket::{with_deadline, Expiry, Shared, Socket, SocketCore};

/// Waits on the receives of many sockets and contexts at once and returns the first message,
/// with the key its source was added under.
///
/// Every member keeps one receive waiting: a socket's as [`Socket::recv`], a context's as
/// [`Context::recv`] (on a REQ context, the reply to its last request). After a member
/// delivers a message or an error, its next receive starts at the next call. A member with
/// nothing to wait for (a REQ context whose reply was taken and that sent nothing since, a
/// SURVEYOR context with no survey) is passed over, and looked at again at each call, so that
/// a request sent on it in between is waited for; a call when no member has anything to wait
/// for fails with [`Error::BadState`], as an empty set's does. So a caller may send on
/// several contexts and take the replies as they come, with or without removing the
/// contexts that answered. A member whose socket or context closed reports [`Error::Closed`]
/// once and leaves the set. The members' own receive timeouts do not apply: the set waits
/// as long as its call says.
///
/// One set waits in one task or thread at a time (`&mut self`). Members are served in the
/// order their messages arrived, each woken member polled once per wake-up, so a busy member
/// cannot starve the others.
///
/// ```
/// use sp_core::protocol::pipeline::Pull;
/// use sp_transport::{rt::Runtime, RecvSet, Result, Socket};
///
/// async fn first_of_two<R: Runtime>(a: &Socket<R, Pull>, b: &Socket<R, Pull>) -> Result<()> {
///     let mut set = RecvSet::new();
///     set.add_socket("a", a);
///     set.add_socket("b", b);
///     let (from, msg) = set.recv().await?;
///     println!("{from}: {:?}", msg?.body);
///     Ok(())
/// }
/// ```
pub struct RecvSet<R: Runtime, K> {
    slots: Vec<Option<Member<K>>>,
    /// Slots of removed members, to reuse.
    free: Vec<usize>,
    live: usize,
    ready: Arc<ReadyQueue>,
    /// The slots to poll, in turn: the woken ones (moved here from `ready` at each call) and
    /// those whose receive completed, queued again by this task without `ready`'s lock.
    order: VecDeque<usize>,
    /// The slots of members with nothing to wait for (their receive failed with `BadState`):
    /// looked at again at the start of each call.
    idle: Vec<usize>,
    /// A clock and timers for deadlines: the first member's runtime.
    rt: Option<R>,
}

struct Member<K> {
    key: K,
    source: Box<dyn Source>,
    wake: Arc<MemberWake>,
    /// `wake` as a `Waker`, made once: the member's waiting receive holds it, and a socket's
    /// list of waiters keeps one entry for it however often the member polls.
    waker: Waker,
}

/// A member's receive, whatever its socket's protocol and runtime.
trait Source: Send {
    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Message>>;
    /// The receive completed: the next poll starts a new one.
    fn rearm(&mut self);
}

struct SocketSource<R, P>(Arc<Shared<R, P>>);

impl<R: Runtime, P: SocketCore> Source for SocketSource<R, P> {
    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Message>> {
        // No busy poll: a set waits on several sources at once.
        self.0.poll_recv(cx, None)
    }

    fn rearm(&mut self) {}
}

struct ContextSource<R: Runtime, P: SocketCore> {
    shared: Arc<Shared<R, P>>,
    ctx: crate::ContextId,
    /// The receive waiting in the core; dropping it (removing the member, dropping the set)
    /// withdraws it, as a dropped [`Context::recv`] does.
    op: RecvOp<R, P>,
}

impl<R: Runtime, P: SocketCore> Source for ContextSource<R, P> {
    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Message>> {
        self.op.poll(cx)
    }

    fn rearm(&mut self) {
        self.op = RecvOp::new(self.shared.clone(), self.ctx);
    }
}

/// The slots of the members woken since the set last looked, and the waker of the task that
/// waits on the set.
#[derive(Default)]
struct ReadyQueue {
    inner: Mutex<ReadyInner>,
    /// `inner.slots` is not empty: read without the lock, so that a call finding it false
    /// takes no lock (a member that always has a message is queued again by the set alone).
    pending: AtomicBool,
}

#[derive(Default)]
struct ReadyInner {
    slots: VecDeque<usize>,
    waiter: Option<Waker>,
}

impl ReadyQueue {
    /// Queues `slot`; returns the waiting task's waker (taken: the task registers again when
    /// it polls), to be woken outside this lock.
    fn push(&self, slot: usize) -> Option<Waker> {
        let mut inner = lock(&self.inner);
        inner.slots.push_back(slot);
        self.pending.store(true, Ordering::Release);
        inner.waiter.take()
    }

    /// Moves the woken slots to the back of `order`. With `waiter`, when there were none, it
    /// registers the waiter under the lock, so that a member woken from then on finds it, and
    /// returns true.
    fn take_into(&self, order: &mut VecDeque<usize>, waiter: Option<&Waker>) -> bool {
        if waiter.is_none() && !self.pending.load(Ordering::Acquire) {
            return false;
        }
        let mut inner = lock(&self.inner);
        self.pending.store(false, Ordering::Relaxed);
        if !inner.slots.is_empty() {
            order.extend(inner.slots.drain(..));
            return false;
        }
        let Some(waker) = waiter else {
            return false;
        };
        match &inner.waiter {
            Some(w) if w.will_wake(waker) => {}
            _ => inner.waiter = Some(waker.clone()),
        }
        true
    }
}

/// A member's waker: queues the member's slot once until the set polls it.
struct MemberWake {
    slot: usize,
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

impl MemberWake {
    /// Queues the slot unless it is queued already; returns the waiter to wake.
    fn queue(&self) -> Option<Waker> {
        if self.queued.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.ready.push(self.slot)
    }
}

impl Wake for MemberWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(waiter) = self.queue() {
            waiter.wake();
        }
    }
}

impl<R: Runtime, K> Default for RecvSet<R, K> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            ready: Arc::default(),
            order: VecDeque::new(),
            idle: Vec::new(),
            rt: None,
        }
    }
}

impl<R: Runtime, K> fmt::Debug for RecvSet<R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvSet")
            .field("members", &self.live)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime, K: Clone> RecvSet<R, K> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `socket`'s receives under `key`. The set holds the socket's state, not the socket:
    /// once every handle of the socket is dropped or closed, the member reports
    /// [`Error::Closed`] and leaves.
    pub fn add_socket<P: RecvRole>(&mut self, key: K, socket: &Socket<R, P>) {
        let shared = socket.shared().clone();
        self.rt.get_or_insert_with(|| shared.rt.clone());
        self.add(key, Box::new(SocketSource(shared)));
    }

    /// Adds `ctx`'s receives under `key`. Closing or dropping the context ends the member (it
    /// reports [`Error::Closed`] and leaves).
    pub fn add_context<P: ContextRole + RecvRole>(&mut self, key: K, ctx: &Context<R, P>) {
        let shared = ctx.shared.clone();
        self.rt.get_or_insert_with(|| shared.rt.clone());
        let op = RecvOp::new(shared.clone(), ctx.id);
        self.add(
            key,
            Box::new(ContextSource {
                shared,
                ctx: ctx.id,
                op,
            }),
        );
    }

    fn add(&mut self, key: K, source: Box<dyn Source>) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let wake = Arc::new(MemberWake {
            slot,
            queued: AtomicBool::new(false),
            ready: self.ready.clone(),
        });
        let waker = Waker::from(wake.clone());
        // A new member's first receive runs at the next call.
        wake.queued.store(true, Ordering::Relaxed);
        self.order.push_back(slot);
        self.slots[slot] = Some(Member {
            key,
            source,
            wake,
            waker,
        });
        self.live += 1;
    }

    /// Removes the first member added under `key`, withdrawing its waiting receive (nothing
    /// is lost: a message handed to it stays with its socket or context). Returns whether
    /// there was one.
    pub fn remove(&mut self, key: &K) -> bool
    where
        K: PartialEq,
    {
        let Some(slot) = self
            .slots
            .iter()
            .position(|m| m.as_ref().is_some_and(|m| m.key == *key))
        else {
            return false;
        };
        self.remove_slot(slot);
        true
    }

    fn remove_slot(&mut self, slot: usize) {
        if self.slots[slot].take().is_some() {
            self.live -= 1;
            self.free.push(slot);
            self.idle.retain(|&s| s != slot);
        }
    }

    /// How many members the set has.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Polls for the first message of any member. `Ready(Err(BadState))` when the set is
    /// empty or no member has anything to wait for; otherwise `Ready(Ok((key, result)))` with
    /// a member's receive result.
    pub fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(K, Result<Message>)>> {
        // The members woken since the last call go behind those already in turn: a member
        // queued again after each message cannot keep the others waiting.
        self.ready.take_into(&mut self.order, None);
        // Members that had nothing to wait for get one more look: the caller may have given
        // them something since (a REQ context's next request).
        for slot in std::mem::take(&mut self.idle) {
            if let Some(Some(member)) = self.slots.get(slot) {
                if !member.wake.queued.swap(true, Ordering::AcqRel) {
                    self.order.push_back(slot);
                }
            }
        }
        let mut registered = false;
        loop {
            if self.live == 0 {
                return Poll::Ready(Err(Error::BadState));
            }
            let Some(slot) = self.order.pop_front() else {
                if self.idle.len() == self.live {
                    // Every member is idle: nothing would ever wake this call.
                    return Poll::Ready(Err(Error::BadState));
                }
                if registered {
                    return Poll::Pending;
                }
                registered = self.ready.take_into(&mut self.order, Some(cx.waker()));
                continue;
            };
            // A slot queued by a member since removed (its waker outlived it) may be empty or
            // hold a newer member: polling that one once more costs one look.
            let Some(Some(member)) = self.slots.get_mut(slot) else {
                continue;
            };
            // Cleared before the poll: a wake-up during or after it queues the slot again.
            member.wake.queued.store(false, Ordering::Release);
            let mut member_cx = TaskContext::from_waker(&member.waker);
            let Poll::Ready(result) = member.source.poll_recv(&mut member_cx) else {
                continue;
            };
            if matches!(result, Err(Error::BadState)) {
                // Nothing to wait for: passed over until the next call looks again.
                member.source.rearm();
                // Once: a slot polled twice in a call (a stale waker queued it too) must not
                // count as two idle members.
                if !self.idle.contains(&slot) {
                    self.idle.push(slot);
                }
                continue;
            }
            let key = member.key.clone();
            if matches!(result, Err(Error::Closed)) {
                self.remove_slot(slot);
            } else {
                member.source.rearm();
                // Its next receive starts at the next call, in turn behind the others; unless
                // a wake-up during the poll queued it already.
                if !member.wake.queued.swap(true, Ordering::AcqRel) {
                    self.order.push_back(slot);
                }
            }
            return Poll::Ready(Ok((key, result)));
        }
    }

    /// Waits for the first message of any member: the member's key and its receive's result.
    ///
    /// # Cancel safety
    /// Cancel-safe: the members' receives belong to the set, not to this future; a message
    /// leaves its member only in the poll that returns it, so a future dropped before then
    /// (a timeout, a losing `select!` branch) took nothing, and the next call gets it.
    ///
    /// # Errors
    /// [`Error::BadState`] when the set is empty or no member has anything to wait for. A
    /// member's own error (such as [`Error::Closed`]) comes as its result, with its key.
    pub async fn recv(&mut self) -> Result<(K, Result<Message>)> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Receives like [`RecvSet::recv`], but waits at most until `deadline`.
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`RecvSet::recv`].
    ///
    /// # Errors
    /// [`Error::TimedOut`] once the deadline passes, and the errors of [`RecvSet::recv`].
    pub async fn recv_until(&mut self, deadline: Instant) -> Result<(K, Result<Message>)> {
        let Some(rt) = self.rt.clone() else {
            return Err(Error::BadState);
        };
        with_deadline(
            &rt,
            Expiry::Deadline,
            || Some(deadline),
            |cx| self.poll_recv(cx),
        )
        .await
    }

    /// Receives the first message a member has ready now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when no member has one, and the errors of [`RecvSet::recv`].
    pub fn try_recv(&mut self) -> Result<(K, Result<Message>)> {
        let mut cx = TaskContext::from_waker(Waker::noop());
        match self.poll_recv(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(Error::WouldBlock),
        }
    }
}

// Nothing in the set is pinned: members live behind boxes and the runtime is only cloned.
impl<R: Runtime, K> Unpin for RecvSet<R, K> {}

/// The members' messages as a stream, which ends when the set is empty.
impl<R: Runtime, K: Clone> futures_core::Stream for RecvSet<R, K> {
    type Item = (K, Result<Message>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Result::ok)
    }
}
