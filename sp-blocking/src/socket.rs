//! [`Socket`]: the shared driver's socket, with blocking calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sp_core::protocol::pair1::Pair1 as Pair1Core;
use sp_core::protocol::pubsub::Sub as SubCore;
use sp_core::protocol::reqrep::{Rep as RepCore, Req as ReqCore};
use sp_core::protocol::survey::{Respondent as RespondentCore, Surveyor as SurveyorCore};
use sp_transport::{
    ContextRole, Message, Pipe, PipeEvent, PipeId, PipeVerdict, ProtocolId, RecvRole, Result,
    SendResult, SendRole, SocketCore, SocketOptions, SocketStats, ToAddress,
};

use crate::endpoint::{Dialer, Listener, PipeEvents};
use crate::runtime::{block_on, block_on_send, ensure_started, run, send_with, Threads};
use crate::turns::RecvTurns;

/// A socket speaking protocol `P`, with blocking calls.
///
/// Every call runs on the caller's thread; the socket's background work (timers, dialers,
/// listeners, connections) runs on the process's sp-blocking pool, a fixed handful of threads
/// shared by every socket (see the [crate docs](crate#threads)).
/// Clones share the socket, which closes when the last clone is dropped or on
/// [`Socket::close`]. Sockets are `Send + Sync`: any number of threads may send and receive on
/// one socket at once.
pub struct Socket<P: SocketCore> {
    inner: sp_transport::Socket<Threads, P>,
    /// Which of the threads blocked in `recv` waits in the socket (see `turns`).
    turns: Arc<RecvTurns>,
}

impl<P: SocketCore> Clone for Socket<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            turns: self.turns.clone(),
        }
    }
}

impl<P: SocketCore> std::fmt::Debug for Socket<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl<P: SocketCore> Default for Socket<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: SocketCore> Socket<P> {
    /// Opens a socket. The first socket of the process starts sp-blocking's pool of threads
    /// (see the [crate docs](crate#threads)); if that fails, the calls that need it return the
    /// error.
    pub fn new() -> Self {
        Self {
            inner: sp_transport::Socket::with_runtime(Threads),
            turns: Arc::default(),
        }
    }

    /// The shared driver's socket.
    pub(crate) fn transport(&self) -> &sp_transport::Socket<Threads, P> {
        &self.inner
    }

    /// Returns the SP protocol this socket speaks.
    pub fn protocol(&self) -> ProtocolId {
        self.inner.protocol()
    }

    /// Returns the SP protocol a peer must speak.
    pub fn peer_protocol(&self) -> ProtocolId {
        self.inner.peer_protocol()
    }

    /// Returns true for a raw socket.
    pub fn is_raw(&self) -> bool {
        self.inner.is_raw()
    }

    /// Connects to `url`, blocking until the first connection and its handshake are done, and
    /// keeps reconnecting after the connection is lost. If the first attempt fails, the error
    /// is returned and no dialer is left behind ([`Socket::dial_nonblocking`] retries instead).
    ///
    /// # Errors
    /// [`Error::Address`](crate::Error::Address) for a bad URL,
    /// [`Error::ConnectionRefused`](crate::Error::ConnectionRefused),
    /// [`Error::Handshake`](crate::Error::Handshake), [`Error::Closed`](crate::Error::Closed),
    /// or an IO error.
    pub fn dial(&self, url: impl ToAddress) -> Result<Dialer> {
        run(self.inner.dial(url)).map(Dialer::new)
    }

    /// Starts a dialer that connects to `url` in the background, retrying with back-off until
    /// it succeeds, and reconnects whenever the connection is lost. Returns at once.
    ///
    /// # Errors
    /// [`Error::Address`](crate::Error::Address) for a bad URL,
    /// [`Error::Closed`](crate::Error::Closed).
    pub fn dial_nonblocking(&self, url: impl ToAddress) -> Result<Dialer> {
        self.inner.dial_nonblocking(url).map(Dialer::new)
    }

    /// Creates a dialer for `url` without starting it: set its options, then
    /// [`Dialer::start`] it.
    ///
    /// # Errors
    /// [`Error::Address`](crate::Error::Address), [`Error::Closed`](crate::Error::Closed).
    pub fn dialer(&self, url: impl ToAddress) -> Result<Dialer> {
        self.inner.dialer(url).map(Dialer::new)
    }

    /// Creates a listener for `url` without starting it: set its options, then
    /// [`Listener::start`] it.
    ///
    /// # Errors
    /// [`Error::Address`](crate::Error::Address), [`Error::Closed`](crate::Error::Closed).
    pub fn listener(&self, url: impl ToAddress) -> Result<Listener> {
        self.inner.listener(url).map(Listener::new)
    }

    /// Adopts a connected TCP stream as a pipe, blocking through the SP handshake (see
    /// [`sp_transport::Socket::adopt_tcp`]).
    ///
    /// # Errors
    /// As [`sp_transport::Socket::adopt_tcp`].
    pub fn adopt_tcp(&self, stream: std::net::TcpStream) -> Result<Pipe> {
        run(self.inner.adopt_tcp(stream))
    }

    /// Adopts a connected Unix stream as a pipe, blocking through the SP handshake. Unix
    /// only.
    ///
    /// # Errors
    /// As [`sp_transport::Socket::adopt_tcp`].
    #[cfg(unix)]
    pub fn adopt_ipc(&self, stream: std::os::unix::net::UnixStream) -> Result<Pipe> {
        run(self.inner.adopt_ipc(stream))
    }

    /// Returns the attached pipe with this ID (a received message's `pipe`).
    pub fn pipe(&self, id: PipeId) -> Option<Pipe> {
        self.inner.pipe(id)
    }

    /// Returns every attached pipe.
    pub fn pipes(&self) -> Vec<Pipe> {
        self.inner.pipes()
    }

    /// Sets the pipe hook (see [`sp_transport::Socket::set_pipe_hook`]); it runs on a pool
    /// thread or on a thread blocked in an sp-blocking call, so it must not block.
    pub fn set_pipe_hook(&self, hook: impl Fn(&PipeEvent) -> PipeVerdict + Send + Sync + 'static) {
        self.inner.set_pipe_hook(hook);
    }

    /// Removes the pipe hook.
    pub fn clear_pipe_hook(&self) {
        self.inner.clear_pipe_hook();
    }

    /// Returns this socket's pipe events from now on, read with blocking calls or as an
    /// iterator.
    pub fn pipe_events(&self) -> PipeEvents {
        PipeEvents::new(self.inner.pipe_events())
    }

    /// Returns a snapshot of the socket's counters (see [`sp_transport::Socket::stats`]).
    pub fn stats(&self) -> SocketStats {
        self.inner.stats()
    }

    /// Returns the socket's name, if it has one.
    pub fn name(&self) -> Option<String> {
        self.inner.name()
    }

    /// Names the socket, for logs and spans.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) above 64 bytes.
    pub fn set_name(&self, name: impl Into<String>) -> Result<()> {
        self.inner.set_name(name)
    }

    /// Replaces every socket option at once (checked first).
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption).
    pub fn set_options(&self, opts: SocketOptions) -> Result<()> {
        self.inner.set_options(opts)
    }

    /// Returns the receive queue length in messages.
    ///
    /// # Errors
    /// [`Error::NotSupported`](crate::Error::NotSupported) for roles without one.
    pub fn recv_buffer(&self) -> Result<usize> {
        self.inner.recv_buffer()
    }

    /// Resizes the receive queue (0..=8192 messages) while the socket runs.
    ///
    /// # Errors
    /// As [`sp_transport::Socket::set_recv_buffer`].
    pub fn set_recv_buffer(&self, len: usize) -> Result<()> {
        self.inner.set_recv_buffer(len)
    }

    /// Returns the send queue length in messages.
    pub fn send_buffer(&self) -> usize {
        self.inner.send_buffer()
    }

    /// Resizes the send queue (0..=8192 messages) while the socket runs.
    ///
    /// # Errors
    /// As [`sp_transport::Socket::set_send_buffer`].
    pub fn set_send_buffer(&self, len: usize) -> Result<()> {
        self.inner.set_send_buffer(len)
    }

    /// Sets `SO_KEEPALIVE` for TCP endpoints created afterwards (default: off).
    pub fn set_tcp_keepalive(&self, keepalive: bool) {
        self.inner.set_tcp_keepalive(keepalive);
    }

    /// Listens on `url` and accepts peers until the socket closes. Returns the bound address,
    /// with the real port when `url` asked for port 0.
    ///
    /// # Errors
    /// [`Error::Address`](crate::Error::Address),
    /// [`Error::AddressInUse`](crate::Error::AddressInUse),
    /// [`Error::Closed`](crate::Error::Closed), or an IO error.
    pub fn listen(&self, url: impl ToAddress) -> Result<Listener> {
        run(self.inner.listen(url)).map(Listener::new)
    }

    /// Closes the socket and blocks until every pipe has written out what was already sent
    /// (at most the linger time, 1 s by default). Endpoints stop at once, and calls blocked on
    /// other threads return [`Error::Closed`](crate::Error::Closed). Dropping the last clone
    /// closes too, without waiting.
    pub fn close(&self) {
        block_on(self.inner.close());
    }

    /// Starts closing the socket without waiting (see [`Socket::close`]): queued messages are
    /// still written out in the background, within the linger time.
    pub fn close_now(&self) {
        self.inner.close_now();
    }

    /// Returns a copy of the socket's options.
    pub fn options(&self) -> SocketOptions {
        self.inner.options()
    }

    /// Returns the send timeout (`None`: wait forever).
    pub fn send_timeout(&self) -> Option<Duration> {
        self.inner.send_timeout()
    }

    /// Sets how long `send` blocks (`None`: forever, zero: do not wait).
    pub fn set_send_timeout(&self, timeout: Option<Duration>) {
        self.inner.set_send_timeout(timeout);
    }

    /// Returns the receive timeout (`None`: wait forever).
    pub fn recv_timeout(&self) -> Option<Duration> {
        self.inner.recv_timeout()
    }

    /// Sets how long `recv` blocks (`None`: forever, zero: do not wait).
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) {
        self.inner.set_recv_timeout(timeout);
    }

    /// Returns the largest message accepted from stream peers (0 = unlimited).
    pub fn recv_max_size(&self) -> usize {
        self.inner.recv_max_size()
    }

    /// Sets the largest message accepted from stream peers, for endpoints created afterwards.
    /// A peer that sends more loses its connection. 0 means unlimited.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for values of 2^60 or more.
    pub fn set_recv_max_size(&self, max: usize) -> Result<()> {
        self.inner.set_recv_max_size(max)
    }

    /// Sets the reconnect back-off for dialers created afterwards: the first wait is about
    /// `min`, doubling up to `max` (`Duration::ZERO`: no back-off).
    pub fn set_reconnect_backoff(&self, min: Duration, max: Duration) {
        self.inner.set_reconnect_backoff(min, max);
    }

    /// Sets `TCP_NODELAY` for TCP endpoints created afterwards (default: on).
    pub fn set_tcp_nodelay(&self, nodelay: bool) {
        self.inner.set_tcp_nodelay(nodelay);
    }

    /// Sets how long pipes may take, once the socket closes, to write out queued messages
    /// (default: 1 s). It bounds how long [`Socket::close`] blocks.
    pub fn set_linger(&self, linger: Duration) {
        self.inner.set_linger(linger);
    }

    /// Sets the TLS configuration for `tls+tcp://` and `wss://` endpoints created afterwards.
    pub fn set_tls(&self, config: sp_transport::TlsConfig) {
        self.inner.set_tls(config);
    }

    /// Sets how long a peer may take to complete its handshake, for endpoints created after.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) for zero.
    pub fn set_handshake_timeout(&self, timeout: Duration) -> Result<()> {
        self.inner.set_handshake_timeout(timeout)
    }

    /// Returns how many pipes are attached right now.
    pub fn pipe_count(&self) -> usize {
        self.inner.pipe_count()
    }

    /// Runs `f` on the protocol core, then applies whatever it queued. For protocol-specific
    /// settings and commands that have no method here.
    pub fn with_core<T>(&self, f: impl FnOnce(&mut P, Instant) -> T) -> T {
        self.inner.with_core(f)
    }
}

impl<P: SocketCore> Socket<P> {
    /// [`Socket::send`] for code that picks its protocol at run time (a CLI, a binding): a
    /// role that cannot send fails with [`Error::NotSupported`](crate::Error::NotSupported).
    ///
    /// # Errors
    /// As [`Socket::send`].
    pub fn send_any_role(&self, msg: impl Into<Message>) -> SendResult {
        send_with(msg, |msg| self.inner.send_any_role(msg))
    }

    /// [`Socket::recv`] for code that picks its protocol at run time: a role that cannot
    /// receive fails with [`Error::NotSupported`](crate::Error::NotSupported).
    ///
    /// # Errors
    /// As [`Socket::recv`].
    pub fn recv_any_role(&self) -> Result<Message> {
        run(self.inner.recv_any_role())
    }

    /// [`Socket::send_many`] for code that picks its protocol at run time, as
    /// [`Socket::send_any_role`].
    ///
    /// # Errors
    /// As [`Socket::send_many`].
    pub fn send_many_any_role(&self, msgs: &mut Vec<Message>) -> Result<usize> {
        if msgs.is_empty() {
            return Ok(0);
        }
        ensure_started()?;
        block_on_send(|| self.inner.send_many_any_role(msgs))
    }

    /// [`Socket::recv_many`] for code that picks its protocol at run time, as
    /// [`Socket::recv_any_role`].
    ///
    /// # Errors
    /// As [`Socket::recv_many`], and [`Error::NotSupported`](crate::Error::NotSupported).
    pub fn recv_many_any_role(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        run(self.inner.recv_many_any_role(buf, limit))
    }
}

/// Sending: only roles that send have it.
impl<P: SendRole> Socket<P> {
    /// Sends a message, blocking up to the send timeout until a peer can take it.
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut), [`Error::BadState`](crate::Error::BadState),
    /// [`Error::NotSupported`](crate::Error::NotSupported),
    /// [`Error::Closed`](crate::Error::Closed); [`Error::WouldBlock`](crate::Error::WouldBlock)
    /// with a zero timeout.
    pub fn send(&self, msg: impl Into<Message>) -> SendResult {
        send_with(msg, |msg| self.inner.send(msg))
    }

    /// Sends like [`Socket::send`], but blocks at most until `deadline` (ignoring the send
    /// timeout option).
    ///
    /// # Errors
    /// As [`Socket::send`], with [`Error::TimedOut`](crate::Error::TimedOut) also for a
    /// deadline that had passed before the call (never
    /// [`Error::WouldBlock`](crate::Error::WouldBlock)).
    pub fn send_until(&self, msg: impl Into<Message>, deadline: Instant) -> SendResult {
        send_with(msg, |msg| self.inner.send_until(msg, deadline))
    }

    /// Sends a message only if that is possible without waiting.
    ///
    /// # Errors
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) when no peer can take it now, and the
    /// errors of [`Socket::send`].
    pub fn try_send(&self, msg: impl Into<Message>) -> SendResult {
        self.inner.try_send(msg)
    }

    /// Sends messages from the front of `msgs`, in order, under one lock of the socket:
    /// blocks like [`Socket::send`] until the protocol takes the first, then sends what else
    /// it takes now. Removes what it sent from `msgs` and returns how many (0 for an empty
    /// `msgs`); what is left stays in `msgs`.
    ///
    /// # Errors
    /// As [`Socket::send`], for the first message only (`msgs` then unchanged): an error
    /// after it ends the batch, and the next send returns it.
    pub fn send_many(&self, msgs: &mut Vec<Message>) -> Result<usize> {
        self.send_many_any_role(msgs)
    }

    /// Sends from the front of `msgs` what the protocol takes now, without blocking; removes
    /// it from `msgs` and returns how many (see [`Socket::send_many`]).
    ///
    /// # Errors
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) when no peer can take the first message
    /// now, and the errors of [`Socket::send`].
    pub fn try_send_many(&self, msgs: &mut Vec<Message>) -> Result<usize> {
        self.inner.try_send_many(msgs)
    }
}

/// Receiving: only roles that receive have it.
impl<P: RecvRole> Socket<P> {
    /// Receives the next message, blocking up to the receive timeout.
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut), [`Error::BadState`](crate::Error::BadState),
    /// [`Error::NotSupported`](crate::Error::NotSupported),
    /// [`Error::ConnectionReset`](crate::Error::ConnectionReset),
    /// [`Error::Closed`](crate::Error::Closed); [`Error::WouldBlock`](crate::Error::WouldBlock)
    /// with a zero timeout.
    pub fn recv(&self) -> Result<Message> {
        if let Some(_turn) = self.turns.try_take() {
            return run(self.inner.recv());
        }
        let deadline = self.inner.recv_timeout().map(|t| {
            let now = Instant::now();
            now.checked_add(t).unwrap_or_else(far_future)
        });
        self.recv_in_turn(deadline, false)
    }

    /// Receives like [`Socket::recv`], but blocks at most until `deadline` (ignoring the
    /// receive timeout option).
    ///
    /// # Errors
    /// As [`Socket::recv`], with [`Error::TimedOut`](crate::Error::TimedOut) also for a
    /// deadline that had passed before the call (never
    /// [`Error::WouldBlock`](crate::Error::WouldBlock)).
    pub fn recv_until(&self, deadline: Instant) -> Result<Message> {
        if let Some(_turn) = self.turns.try_take() {
            return run(self.inner.recv_until(deadline));
        }
        self.recv_in_turn(Some(deadline), true)
    }

    /// Waits for this thread's turn (another thread is blocked in `recv`; see `turns`), then
    /// receives, all by `deadline` (`None`: no deadline). A deadline the caller `named`
    /// (`recv_until`) ends in [`Error::TimedOut`](crate::Error::TimedOut) even when it had
    /// passed before the call; one from a zero timeout makes the call non-blocking.
    fn recv_in_turn(&self, deadline: Option<Instant>, named: bool) -> Result<Message> {
        // What is queued needs no turn: a thread back from handling one message of a burst
        // takes the next at once, instead of queueing behind threads that sleep.
        match self.inner.try_recv() {
            Err(crate::Error::WouldBlock) => {}
            other => {
                self.turns.not_waiting();
                return other;
            }
        }
        let may_wait = deadline.is_none_or(|d| d > Instant::now());
        let turn = self.turns.wait(deadline);
        let out = match (turn.is_some(), deadline) {
            // Not `recv()`: that would read the receive timeout now, which may have changed
            // since this call read it.
            (true, None) => run(self.inner.recv_until(far_future())),
            (true, Some(d)) if may_wait || named => run(self.inner.recv_until(d)),
            // The deadline came first, or the call may not wait at all (a zero timeout): it
            // takes what is queued, as the socket would.
            (true, Some(_)) | (false, _) => self.inner.try_recv(),
        };
        drop(turn);
        match out {
            // A call that waited times out rather than "would block".
            Err(crate::Error::WouldBlock) if may_wait || named => Err(crate::Error::TimedOut),
            other => other,
        }
    }

    /// Receives a message only if one is ready now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) when nothing is ready, and the errors of
    /// [`Socket::recv`].
    pub fn try_recv(&self) -> Result<Message> {
        self.inner.try_recv()
    }

    /// Receives up to `limit` messages into `buf` at once: blocks like [`Socket::recv`] for
    /// the first, then appends it and whatever else is ready, in order, up to `limit` in
    /// all. Returns how many it appended: at least 1, or 0 for a `limit` of 0 (at once).
    /// A receiver that drains a busy socket in batches takes its lock once per batch, not
    /// once per message.
    ///
    /// # Errors
    /// As [`Socket::recv`], for the first message only: an error after it (the socket closed
    /// meanwhile) ends the batch, and the next receive returns it.
    pub fn recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        buf.push(self.recv()?);
        Ok(1 + self.inner.try_recv_many(buf, limit - 1).unwrap_or(0))
    }

    /// Takes up to `limit` messages that are ready now into `buf`, in order, under one lock
    /// of the socket; returns how many (see [`Socket::recv_many`]).
    ///
    /// # Errors
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) when nothing is ready (and `limit` is
    /// not 0), and the errors of [`Socket::recv`].
    pub fn try_recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        self.inner.try_recv_many(buf, limit)
    }

    /// Returns an iterator over received messages: each `next` blocks like [`Socket::recv`]
    /// and the iterator ends once the socket is closed (a blocking `Stream`).
    pub fn incoming(&self) -> Incoming<'_, P> {
        Incoming { socket: self }
    }
}

/// The messages a socket receives, as a blocking iterator ([`Socket::incoming`]). Each item
/// is a message or the error of that receive (a timeout, for one); it ends at a closed socket.
#[derive(Debug)]
pub struct Incoming<'a, P: RecvRole> {
    socket: &'a Socket<P>,
}

impl<P: RecvRole> Iterator for Incoming<'_, P> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        match self.socket.recv() {
            Err(crate::Error::Closed) => None,
            other => Some(other),
        }
    }
}

/// Contexts: REQ, REP, SURVEYOR, RESPONDENT and SUB.
impl<P: ContextRole> Socket<P> {
    /// Opens a new context on this socket: independent requests, replies, surveys or
    /// subscriptions sharing its connections (see [`sp_transport::Socket::context`]).
    ///
    /// # Errors
    /// [`Error::NotSupported`](crate::Error::NotSupported) for protocols without contexts,
    /// [`Error::Closed`](crate::Error::Closed).
    pub fn context(&self) -> Result<crate::Context<P>> {
        self.inner.context().map(crate::Context::new)
    }
}

impl Socket<ReqCore> {
    /// Sends a request and blocks for its reply, on a context of its own (see
    /// `sp_transport::Socket::request`): concurrent calls each get their own reply.
    ///
    /// # Errors
    /// The errors of [`Socket::send`] and [`Socket::recv`].
    pub fn request(&self, msg: impl Into<Message>) -> Result<Message> {
        run(self.inner.request(msg))
    }
}

impl Socket<SurveyorCore> {
    /// Starts a survey on a context of its own and returns its responses, a blocking iterator
    /// that ends at the survey deadline.
    ///
    /// # Errors
    /// The errors of [`Socket::send`].
    pub fn survey(&self, msg: impl Into<Message>) -> Result<Responses> {
        run(self.inner.survey(msg)).map(|inner| Responses { inner })
    }
}

/// The responses to one survey ([`Socket::survey`]), as a blocking iterator that ends when
/// the survey's time is up.
#[derive(Debug)]
pub struct Responses {
    inner: sp_transport::Responses<crate::runtime::Threads>,
}

impl Iterator for Responses {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        block_on(self.inner.next_response())
    }
}

impl Socket<ReqCore> {
    /// Returns how long REQ waits for a reply before sending the request again
    /// (`None`: never resends on a timer).
    pub fn resend_interval(&self) -> Option<Duration> {
        self.inner.resend_interval()
    }

    /// Sets how long REQ waits for a reply before resending (`None` disables timed resends and
    /// resends after a lost connection; the receive then fails with
    /// [`Error::ConnectionReset`](crate::Error::ConnectionReset)).
    pub fn set_resend_interval(&self, interval: Option<Duration>) {
        self.inner.set_resend_interval(interval);
    }

    /// Returns the resend tick (NNG's `req:resend-tick`): the step resend deadlines are rounded
    /// up to (`None`: each resend happens exactly at its deadline).
    pub fn resend_tick(&self) -> Option<Duration> {
        self.inner.resend_tick()
    }

    /// Sets the resend tick for the socket and all its contexts (`None` or zero: no rounding).
    /// With a tick, a request is resent between the resend interval and the interval plus
    /// one tick after it was written, and the resends of many contexts fall on the same
    /// instants, so the socket's timer wakes once per tick rather than once per request.
    /// Applies to deadlines armed from then on.
    pub fn set_resend_tick(&self, tick: Option<Duration>) {
        self.inner.set_resend_tick(tick);
    }
}

impl Socket<RepCore> {
    /// Sets the maximum number of backtrace hops (1–255, default 8) a request may carry.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) outside 1–255.
    pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
        self.inner.set_max_ttl(ttl)
    }
}

impl Socket<Pair1Core> {
    /// Sets the largest hop count (1–255, default 8) a received message may carry; messages
    /// with more hops are dropped.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) outside 1–255.
    pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
        self.inner.set_max_ttl(ttl)
    }
}

impl Socket<SubCore> {
    /// Subscribes to `topic`: messages whose body starts with these bytes are delivered. The
    /// empty topic matches every message; with no topic nothing is delivered.
    pub fn subscribe(&self, topic: &[u8]) {
        self.inner.subscribe(topic);
    }

    /// Removes `topic`, and discards queued messages that no remaining topic matches.
    ///
    /// # Errors
    /// [`Error::UnknownTopic`](crate::Error::UnknownTopic) when `topic` is not subscribed.
    pub fn unsubscribe(&self, topic: &[u8]) -> Result<()> {
        self.inner.unsubscribe(topic)
    }
}

/// Writes the SUB prefer-new setting for the cooked and raw SUB sockets.
macro_rules! prefer_new_setters {
    ($($core:ty),* $(,)?) => {
        $(impl Socket<$core> {
            /// Returns what a full receive queue gives up (`true`: the oldest message).
            pub fn prefer_new(&self) -> bool {
                self.inner.prefer_new()
            }

            /// Sets what a full receive queue gives up while the socket runs.
            pub fn set_prefer_new(&self, prefer_new: bool) {
                self.inner.set_prefer_new(prefer_new);
            }
        })*
    };
}

prefer_new_setters!(SubCore, sp_core::protocol::pubsub::XSub);

impl Socket<SurveyorCore> {
    /// Returns how long each survey collects responses (default 1 s).
    pub fn survey_time(&self) -> Duration {
        self.inner.survey_time()
    }

    /// Sets how long each survey from now on collects responses. Once a survey's time is up,
    /// `recv` fails with [`Error::TimedOut`](crate::Error::TimedOut).
    pub fn set_survey_time(&self, survey_time: Duration) {
        self.inner.set_survey_time(survey_time);
    }
}

impl Socket<RespondentCore> {
    /// Sets the maximum number of backtrace hops (1–255, default 8) a survey may carry.
    ///
    /// # Errors
    /// [`Error::InvalidOption`](crate::Error::InvalidOption) outside 1–255.
    pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
        self.inner.set_max_ttl(ttl)
    }
}

/// Writes `set_max_ttl` for the raw and STAR sockets whose core has a TTL.
macro_rules! ttl_setters {
    ($($core:ty),* $(,)?) => {
        $(impl Socket<$core> {
            /// Sets the TTL (1–255, default 8): the most hops (or backtrace words) a received
            /// message may carry; messages over it are dropped.
            ///
            /// # Errors
            /// [`Error::InvalidOption`](crate::Error::InvalidOption) outside 1–255.
            pub fn set_max_ttl(&self, ttl: u8) -> Result<()> {
                self.inner.set_max_ttl(ttl)
            }
        })*
    };
}

ttl_setters!(
    sp_core::protocol::reqrep_raw::XRep,
    sp_core::protocol::survey::XRespondent,
    sp_core::protocol::pair1::XPair1,
    sp_core::protocol::pair1::Pair1Poly,
    sp_core::protocol::star::Star,
    sp_core::protocol::star::XStar,
);

/// Forwards messages between two raw sockets in both directions, blocking the calling thread
/// until one of them closes (from another thread, or by dropping its other handles).
///
/// See [`sp_transport::device`] for which sockets can be joined and how delivery works.
///
/// # Errors
/// [`Error::NotRaw`](crate::Error::NotRaw) or
/// [`Error::IncompatibleDevice`](crate::Error::IncompatibleDevice) when the sockets cannot be
/// joined.
pub fn device<A: SocketCore, B: SocketCore>(a: &Socket<A>, b: &Socket<B>) -> Result<()> {
    run(sp_transport::device(&a.inner, &b.inner))
}

/// Sends everything a raw socket receives back out on it, blocking the calling thread until
/// the socket closes. See [`sp_transport::reflector`].
///
/// # Errors
/// As [`device`], for a cooked socket or one that does not peer with itself.
pub fn reflector<P: SocketCore>(socket: &Socket<P>) -> Result<()> {
    run(sp_transport::reflector(&socket.inner))
}

/// About 30 years from now: "forever", safe from `Instant` overflow.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}
