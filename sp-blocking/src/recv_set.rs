//! [`RecvSet`]: one blocking wait on the receives of many sockets and contexts.

use std::time::Instant;

use sp_transport::{ContextRole, Message, RecvRole, Result};

use crate::runtime::{recv_now_or, Threads};
use crate::{Context, Socket};

/// Waits on the receives of many sockets and contexts from one thread (nanomsg's `nn_poll`,
/// libzmq's `zmq_poll`), returning the first message with the key its source was added under
/// (see [`sp_transport::RecvSet`] for what each member waits for).
///
/// Why: a thread per context costs an OS thread switch per reply. With a set, one thread keeps
/// many requests in flight: send on each context, then take the replies as they come and send
/// the next request on the context that answered.
///
/// ```
/// # fn main() -> sp_blocking::Result<()> {
/// let rep = sp_blocking::Rep::new();
/// let addr = rep.listen("inproc://sp-blocking-doc-recv-set")?;
/// let req = sp_blocking::Req::new();
/// req.dial(&addr.to_string())?;
/// std::thread::spawn(move || {
///     while let Ok(request) = rep.recv() {
///         let _ = rep.send(request.body);
///     }
/// });
///
/// let contexts = [req.context()?, req.context()?, req.context()?];
/// let mut set = sp_blocking::RecvSet::new();
/// for (i, ctx) in contexts.iter().enumerate() {
///     ctx.send(format!("request {i}"))?;
///     set.add_context(i, ctx);
/// }
/// for _ in 0..contexts.len() {
///     let (i, reply) = set.recv()?;
///     assert_eq!(reply?.body, format!("request {i}").as_bytes());
/// }
/// # Ok(()) }
/// ```
///
/// A socket member takes no turn among the threads blocked in its socket's `recv` (see
/// [`Socket::recv`]): it waits beside them, and whoever polls first takes a message.
pub struct RecvSet<K> {
    inner: sp_transport::RecvSet<Threads, K>,
}

impl<K> std::fmt::Debug for RecvSet<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<K: Clone> Default for RecvSet<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone> RecvSet<K> {
    /// An empty set.
    pub fn new() -> Self {
        Self {
            inner: sp_transport::RecvSet::new(),
        }
    }

    /// Adds `socket`'s receives under `key` (see [`sp_transport::RecvSet::add_socket`]).
    pub fn add_socket<P: RecvRole>(&mut self, key: K, socket: &Socket<P>) {
        self.inner.add_socket(key, socket.transport());
    }

    /// Adds `ctx`'s receives under `key` (see [`sp_transport::RecvSet::add_context`]).
    pub fn add_context<P: ContextRole + RecvRole>(&mut self, key: K, ctx: &Context<P>) {
        self.inner.add_context(key, ctx.transport());
    }

    /// Removes the first member added under `key`; returns whether there was one.
    pub fn remove(&mut self, key: &K) -> bool
    where
        K: PartialEq,
    {
        self.inner.remove(key)
    }

    /// How many members the set has.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Blocks until a member receives: its key and its receive's result.
    ///
    /// # Errors
    /// [`Error::BadState`](crate::Error::BadState) when the set is empty or no member has
    /// anything to wait for; a member's own error
    /// comes as its result, with its key.
    pub fn recv(&mut self) -> Result<(K, Result<Message>)> {
        recv_now_or(self.inner.try_recv(), || self.inner.recv())
    }

    /// Receives like [`RecvSet::recv`], but blocks at most until `deadline`.
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut) once the deadline passes, and the errors of
    /// [`RecvSet::recv`].
    pub fn recv_until(&mut self, deadline: Instant) -> Result<(K, Result<Message>)> {
        recv_now_or(self.inner.try_recv(), || self.inner.recv_until(deadline))
    }

    /// Receives the first message a member has ready now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) when no member has one, and the errors
    /// of [`RecvSet::recv`].
    pub fn try_recv(&mut self) -> Result<(K, Result<Message>)> {
        self.inner.try_recv()
    }
}
