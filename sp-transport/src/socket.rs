//! The one shared driver: a protocol core behind a lock, woken by pipes, timers and callers.
//!
//! ```text
//!  app send/recv ──lock──▶ [ State { core: P, pipes, waiters, timer } ] ◀──lock── pipe tasks
//!                                   │ pump(): transmits ─▶ PipeHandle queues ─▶ pipe task ─▶ fd
//!                                   │         events    ─▶ wake waiters / close / resume pipes
//!                                   └ poll_timeout ─▶ timer task ─▶ handle_timeout(now)
//! ```
//!
//! A send takes the lock, runs the core, and leaves the frame on the pipe's queue; the pipe's
//! task is the only hand-off before the socket write. The lock is never held across an await.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use sp_core::backoff::{BackoffConfig, DEFAULT_RECONNECT_MAX, DEFAULT_RECONNECT_MIN};
use sp_core::frame::DEFAULT_MAX_MESSAGE_SIZE;
use sp_core::handshake::DEFAULT_HANDSHAKE_TIMEOUT;
use sp_core::protocol::{ContextId, Event, Input, Protocol, RecvError, SendError};
use sp_core::{Message, PipeId, PipeIdAllocator, ProtocolId};

use crate::addr::Address;
use crate::endpoint::{self, EndpointCtl};
use crate::error::{Error, Result};
use crate::pipe::{lock, PipeHandle, PipeOwner};
use crate::rt::{Runtime, Sleep};
use crate::threads::{self, DirectRead};

/// How long closing pipes may take to write out what is queued, by default (mangos' default).
pub const DEFAULT_LINGER: Duration = Duration::from_secs(1);

/// A protocol core the driver can create on its own.
pub trait SocketCore: Protocol + Send + 'static {
    /// Creates the core with default settings and the given random seed.
    fn create(seed: u64) -> Self;
}

/// Settings every socket has. Endpoints copy the dial/listen-related ones when created.
#[derive(Clone, Debug)]
pub struct SocketOptions {
    /// How long `send` waits; `None` waits forever. Default: `None`.
    pub send_timeout: Option<Duration>,
    /// How long `recv` waits; `None` waits forever. Default: `None`.
    pub recv_timeout: Option<Duration>,
    /// Largest message accepted from a stream peer, in bytes; 0 means unlimited (claims of
    /// 2^60 bytes or more are still refused). Default: 1 MiB.
    pub recv_max_size: usize,
    /// Reconnect back-off for dialers. Default: 100 ms doubling to 10 s.
    pub reconnect: BackoffConfig,
    /// Set `TCP_NODELAY` on TCP connections. Default: true.
    pub tcp_nodelay: bool,
    /// How long a pipe may take to write out queued messages when the socket closes.
    /// Default: 1 s.
    pub linger: Duration,
    /// How long a peer may take to send its 8-byte SP header. Default: 10 s.
    pub handshake_timeout: Duration,
    /// TLS for `tls+tcp://` and `wss://` endpoints. Default: none (such endpoints fail with
    /// an error saying so).
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            send_timeout: None,
            recv_timeout: None,
            recv_max_size: DEFAULT_MAX_MESSAGE_SIZE,
            reconnect: BackoffConfig {
                min: DEFAULT_RECONNECT_MIN,
                max: DEFAULT_RECONNECT_MAX,
            },
            tcp_nodelay: true,
            linger: DEFAULT_LINGER,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            tls: None,
        }
    }
}

/// An SP socket driven by runtime `R` and speaking protocol `P`.
///
/// Clones share the socket; the socket closes when the last clone is dropped or on
/// [`Socket::close`]. Adapters name it per protocol, for example `sp_tokio::Req`.
pub struct Socket<R: Runtime, P: SocketCore> {
    owner: Arc<Owner<R, P>>,
}

impl<R: Runtime, P: SocketCore> Clone for Socket<R, P> {
    fn clone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
        }
    }
}

/// Closes the socket when the last user handle goes away (tasks hold `Shared`, not this).
struct Owner<R: Runtime, P: SocketCore> {
    shared: Arc<Shared<R, P>>,
}

impl<R: Runtime, P: SocketCore> Drop for Owner<R, P> {
    fn drop(&mut self) {
        self.shared.close();
    }
}

pub(crate) struct Shared<R, P> {
    pub(crate) rt: R,
    protocol: ProtocolId,
    peer_protocol: ProtocolId,
    closed: AtomicBool,
    /// Sends completed since the last forced yield (see [`SEND_YIELD_EVERY`]).
    sends: std::sync::atomic::AtomicU32,
    state: Mutex<State<P>>,
}

/// Every this many completed sends, `send` yields to the runtime once. A send that never waits
/// (PUB and BUS never block; PUSH rarely does) never returns to the executor, so a send loop
/// would starve the pipe tasks queued behind it on the same worker thread: PUB would then drop
/// most messages for its busy subscribers although the CPU could carry them.
const SEND_YIELD_EVERY: u32 = 32;

pub(crate) struct State<P> {
    pub(crate) core: P,
    pipes: BTreeMap<PipeId, Arc<PipeHandle>>,
    ids: PipeIdAllocator,
    send_waiters: Waiters,
    recv_waiters: Waiters,
    /// Callers of `close().await`, woken when the last pipe is gone after the close.
    close_waiters: Waiters,
    timer_deadline: Option<Instant>,
    timer_waker: Option<Waker>,
    pub(crate) opts: SocketOptions,
    endpoints: Vec<Arc<EndpointCtl>>,
    writable: Vec<PipeId>,
    /// The open contexts' waiters and readiness (see [`crate::Context`]).
    pub(crate) contexts: BTreeMap<ContextId, CtxWaiters>,
}

/// The wake-up state of one open context. The core names the context in
/// `Event::ContextReadable` / `Event::ContextWritable`, which sets the flag and wakes that
/// context's waiters alone. An operation's first attempt always reaches the core; a retry does
/// only once the flag is set, because a core counts a receive that returned `WouldBlock` as
/// waiting until it completes or is cancelled (see `sp_core::protocol`, "Contexts").
pub(crate) struct CtxWaiters {
    pub(crate) recv: Waiters,
    pub(crate) send: Waiters,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) recv_timeout: Option<Duration>,
}

impl CtxWaiters {
    pub(crate) fn new(opts: &SocketOptions) -> Self {
        Self {
            recv: Waiters::default(),
            send: Waiters::default(),
            readable: true,
            writable: true,
            send_timeout: opts.send_timeout,
            recv_timeout: opts.recv_timeout,
        }
    }

    pub(crate) fn wake_all(&mut self) {
        self.recv.wake_all();
        self.send.wake_all();
    }
}

#[derive(Default)]
pub(crate) struct Waiters(Vec<Waker>);

impl Waiters {
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    pub(crate) fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

impl<P: Protocol> State<P> {
    /// Drains the core's outputs into pipe queues, wake-ups and timer changes.
    pub(crate) fn pump(&mut self, now: Instant) {
        loop {
            while let Some(tx) = self.core.poll_transmit() {
                if let Some(pipe) = self.pipes.get(&tx.pipe) {
                    if pipe.enqueue(tx.msg) {
                        self.writable.push(tx.pipe);
                    }
                }
            }
            while let Some(event) = self.core.poll_event() {
                match event {
                    Event::Readable => self.recv_waiters.wake_all(),
                    Event::Writable => self.send_waiters.wake_all(),
                    Event::ClosePipe { pipe, reason } => {
                        tracing::warn!(%pipe, %reason, "protocol closes pipe");
                        if let Some(p) = self.pipes.get(&pipe) {
                            p.close();
                        }
                    }
                    Event::ResumeReceiving { pipe } => {
                        if let Some(p) = self.pipes.get(&pipe) {
                            p.resume();
                        }
                    }
                    Event::ContextReadable { ctx } => {
                        if let Some(w) = self.contexts.get_mut(&ctx) {
                            w.readable = true;
                            w.recv.wake_all();
                        }
                    }
                    Event::ContextWritable { ctx } => {
                        if let Some(w) = self.contexts.get_mut(&ctx) {
                            w.writable = true;
                            w.send.wake_all();
                        }
                    }
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }
            if self.writable.is_empty() {
                break;
            }
            for pipe in std::mem::take(&mut self.writable) {
                self.core.handle(Input::PipeWritable { pipe }, now);
            }
        }
        let deadline = self.core.poll_timeout();
        if deadline != self.timer_deadline {
            let earlier = match (deadline, self.timer_deadline) {
                (Some(new), Some(old)) => new < old,
                (Some(_), None) => true,
                _ => false,
            };
            self.timer_deadline = deadline;
            // A later or cleared deadline needs no wake-up: the timer fires early and re-arms.
            if earlier {
                if let Some(w) = self.timer_waker.take() {
                    w.wake();
                }
            }
        }
    }
}

impl<R: Runtime, P: SocketCore> Shared<R, P> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<P>> {
        lock(&self.state)
    }

    pub(crate) fn options(&self) -> SocketOptions {
        self.lock().opts.clone()
    }

    pub(crate) fn add_endpoint(&self, ctl: Arc<EndpointCtl>) -> Result<()> {
        let mut st = self.lock();
        if self.is_closed() {
            return Err(Error::Closed);
        }
        st.endpoints.push(ctl);
        Ok(())
    }

    fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut st = self.lock();
        // Pipes first write out what the application already sent (NNG and mangos peers see
        // the last replies of a socket closed right after sending), bounded by the linger time.
        let pipes: Vec<Arc<PipeHandle>> = st.pipes.values().cloned().collect();
        for pipe in &pipes {
            pipe.drain();
        }
        if !pipes.is_empty() {
            let mut sleep = self.rt.sleep_until(Instant::now() + st.opts.linger);
            let shared = Arc::downgrade(self);
            self.rt.spawn(Box::pin(async move {
                // Ends early once every pipe has drained and gone.
                std::future::poll_fn(|cx| match shared.upgrade() {
                    Some(s) if s.poll_pipes_gone(cx).is_pending() => sleep.poll_sleep(cx),
                    _ => Poll::Ready(()),
                })
                .await;
                for pipe in pipes {
                    pipe.close();
                }
            }));
        }
        for ep in st.endpoints.drain(..) {
            ep.close();
        }
        st.send_waiters.wake_all();
        st.recv_waiters.wake_all();
        for w in st.contexts.values_mut() {
            w.wake_all();
        }
        if let Some(w) = st.timer_waker.take() {
            w.wake();
        }
    }

    /// Returns ready once the socket has no pipe; registers for the last pipe's removal.
    fn poll_pipes_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.pipes.is_empty() {
            Poll::Ready(())
        } else {
            st.close_waiters.register(cx.waker());
            Poll::Pending
        }
    }

    fn poll_send(&self, msg: &Message, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut st = self.lock();
        if self.is_closed() {
            return Poll::Ready(Err(Error::Closed));
        }
        let now = Instant::now();
        match st.core.send(msg.clone(), now) {
            Ok(()) => {
                st.pump(now);
                Poll::Ready(Ok(()))
            }
            Err(SendError::WouldBlock) => {
                st.pump(now);
                st.send_waiters.register(cx.waker());
                Poll::Pending
            }
            Err(e) => {
                st.pump(now);
                Poll::Ready(Err(e.into()))
            }
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        let mut st = self.lock();
        let now = Instant::now();
        let result = st.core.recv(now);
        st.pump(now);
        match result {
            Ok(msg) => Poll::Ready(Ok(msg)),
            Err(_) if self.is_closed() => Poll::Ready(Err(Error::Closed)),
            Err(RecvError::WouldBlock) => {
                st.recv_waiters.register(cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// Returns the socket's only pipe if it runs on threads.
    fn sole_threaded_pipe(&self) -> Option<Arc<PipeHandle>> {
        let st = self.lock();
        match st.pipes.len() {
            1 => st
                .pipes
                .values()
                .next()
                .filter(|p| p.threads.get().is_some())
                .cloned(),
            _ => None,
        }
    }

    /// Runs the core's timers until the socket closes.
    async fn run_timer(self: Arc<Self>) {
        let mut sleep: Option<(Box<dyn Sleep>, Instant)> = None;
        std::future::poll_fn(|cx| loop {
            let mut st = self.lock();
            if self.is_closed() {
                return Poll::Ready(());
            }
            st.timer_waker = Some(cx.waker().clone());
            let Some(deadline) = st.timer_deadline else {
                return Poll::Pending;
            };
            let now = Instant::now();
            if now >= deadline {
                st.core.handle_timeout(now);
                st.pump(now);
                continue;
            }
            drop(st);
            match &mut sleep {
                Some((s, armed)) if *armed == deadline => {
                    if s.poll_sleep(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                slot => {
                    let mut s = self.rt.sleep_until(deadline);
                    let ready = s.poll_sleep(cx).is_ready();
                    *slot = Some((s, deadline));
                    if !ready {
                        return Poll::Pending;
                    }
                }
            }
        })
        .await
    }
}

impl<R: Runtime, P: SocketCore> PipeOwner for Shared<R, P> {
    fn allocate_pipe_id(&self) -> PipeId {
        let mut st = self.lock();
        loop {
            let id = st.ids.allocate();
            if !st.pipes.contains_key(&id) {
                return id;
            }
        }
    }

    fn attach(&self, handle: Arc<PipeHandle>, peer: ProtocolId) -> bool {
        let mut st = self.lock();
        if self.is_closed() {
            return false;
        }
        let now = Instant::now();
        let id = handle.id;
        st.pipes.insert(id, handle);
        st.core.handle(Input::PipeAdded { pipe: id, peer }, now);
        st.pump(now);
        true
    }

    fn deliver(&self, pipe: &PipeHandle, next: &mut dyn FnMut() -> Option<Message>) -> bool {
        let mut st = self.lock();
        let now = Instant::now();
        let mut receiving = st.core.is_receiving(pipe.id);
        while receiving {
            let Some(msg) = next() else { break };
            st.core.handle(Input::Received { pipe: pipe.id, msg }, now);
            receiving = st.core.is_receiving(pipe.id);
        }
        st.pump(now);
        // Re-check after pump: handling outputs never resumes this pipe, but be exact.
        if !st.core.is_receiving(pipe.id) {
            pipe.set_paused();
            false
        } else {
            true
        }
    }

    fn pipe_writable(&self, pipe: PipeId) {
        let mut st = self.lock();
        let now = Instant::now();
        st.core.handle(Input::PipeWritable { pipe }, now);
        st.pump(now);
    }

    fn pipe_closed(&self, pipe: PipeId) {
        let mut st = self.lock();
        if st.pipes.remove(&pipe).is_some() {
            let now = Instant::now();
            st.core.handle(Input::PipeRemoved { pipe }, now);
            st.pump(now);
            if st.pipes.is_empty() && self.is_closed() {
                st.close_waiters.wake_all();
            }
        }
    }

    fn protocol(&self) -> ProtocolId {
        self.protocol
    }

    fn peer_protocol(&self) -> ProtocolId {
        self.peer_protocol
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

impl<R: Runtime + Default, P: SocketCore> Socket<R, P> {
    /// Opens a socket on the adapter's default runtime (for tokio: the current runtime).
    ///
    /// # Panics
    /// Panics where the adapter's default runtime cannot be found (tokio: outside a runtime).
    pub fn new() -> Self {
        Self::with_runtime(R::default())
    }
}

impl<R: Runtime + Default, P: SocketCore> Default for Socket<R, P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Runtime, P: SocketCore> Socket<R, P> {
    /// Opens a socket on the given runtime.
    pub fn with_runtime(rt: R) -> Self {
        let seed = random_seed();
        let core = P::create(seed);
        let protocol = core.protocol();
        let peer_protocol = core.peer_protocol();
        let shared = Arc::new(Shared {
            rt,
            protocol,
            peer_protocol,
            closed: AtomicBool::new(false),
            sends: std::sync::atomic::AtomicU32::new(0),
            state: Mutex::new(State {
                core,
                pipes: BTreeMap::new(),
                ids: PipeIdAllocator::new(seed.rotate_left(17)),
                send_waiters: Waiters::default(),
                recv_waiters: Waiters::default(),
                close_waiters: Waiters::default(),
                timer_deadline: None,
                timer_waker: None,
                opts: SocketOptions::default(),
                endpoints: Vec::new(),
                writable: Vec::new(),
                contexts: BTreeMap::new(),
            }),
        });
        shared.rt.spawn(Box::pin(shared.clone().run_timer()));
        Self {
            owner: Arc::new(Owner { shared }),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<R, P>> {
        &self.owner.shared
    }

    /// Returns the SP protocol this socket speaks.
    pub fn protocol(&self) -> ProtocolId {
        self.shared().protocol
    }

    /// Connects to `url` and keeps reconnecting after the connection is lost.
    ///
    /// The first attempt happens now: if it fails (nothing listening, handshake refused), the
    /// error is returned and no dialer is left behind. See [`Socket::dial_nonblocking`] to retry
    /// in the background instead.
    ///
    /// # Errors
    /// [`Error::Address`] for a bad URL, [`Error::ConnectionRefused`], [`Error::Handshake`],
    /// [`Error::Closed`], or an IO error.
    pub async fn dial(&self, url: &str) -> Result<()> {
        let addr = Address::parse(url)?;
        addr.check_dialable()?;
        endpoint::dial(self.shared().clone(), addr, true).await
    }

    /// Starts a dialer that connects to `url` in the background, retrying with back-off until
    /// it succeeds, and reconnects whenever the connection is lost.
    ///
    /// # Errors
    /// [`Error::Address`] for a bad URL, [`Error::Closed`].
    pub fn dial_nonblocking(&self, url: &str) -> Result<()> {
        let addr = Address::parse(url)?;
        addr.check_dialable()?;
        endpoint::dial_background(self.shared().clone(), addr)
    }

    /// Listens on `url` and accepts peers until the socket closes. Returns the bound address,
    /// with the real port when `url` asked for port 0.
    ///
    /// # Errors
    /// [`Error::Address`], [`Error::AddressInUse`], [`Error::Closed`], or an IO error.
    pub async fn listen(&self, url: &str) -> Result<Address> {
        let addr = Address::parse(url)?;
        endpoint::listen(self.shared().clone(), addr)
    }

    /// Sends a message, waiting up to the send timeout for a peer that can take it.
    ///
    /// # Errors
    /// [`Error::TimedOut`], [`Error::BadState`], [`Error::NotSupported`], [`Error::Closed`].
    pub async fn send(&self, msg: impl Into<Message>) -> Result<()> {
        let msg = msg.into();
        let timeout = self.send_timeout();
        let shared = self.shared();
        with_deadline(&shared.rt, deadline_after(timeout), |cx| {
            shared.poll_send(&msg, cx)
        })
        .await?;
        if shared.sends.fetch_add(1, Ordering::Relaxed) % SEND_YIELD_EVERY == SEND_YIELD_EVERY - 1 {
            yield_now().await;
        }
        Ok(())
    }

    /// Sends a message only if that is possible without waiting.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when no peer can take it now, and the errors of [`Socket::send`].
    pub fn try_send(&self, msg: impl Into<Message>) -> Result<()> {
        let msg = msg.into();
        let mut st = self.shared().lock();
        if self.shared().is_closed() {
            return Err(Error::Closed);
        }
        let now = Instant::now();
        let res = st.core.send(msg, now);
        st.pump(now);
        res.map_err(Error::from)
    }

    /// Receives the next message, waiting up to the receive timeout.
    ///
    /// # Errors
    /// [`Error::TimedOut`], [`Error::BadState`], [`Error::NotSupported`],
    /// [`Error::ConnectionReset`], [`Error::Closed`].
    pub async fn recv(&self) -> Result<Message> {
        let timeout = self.recv_timeout();
        let shared = self.shared();
        with_deadline(&shared.rt, deadline_after(timeout), |cx| {
            shared.poll_recv(cx)
        })
        .await
    }

    /// Receives a message only if one is ready now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when nothing is ready, and the errors of [`Socket::recv`].
    pub fn try_recv(&self) -> Result<Message> {
        let mut st = self.shared().lock();
        let now = Instant::now();
        let res = st.core.recv(now);
        st.pump(now);
        match res {
            Ok(m) => Ok(m),
            Err(_) if self.shared().is_closed() => Err(Error::Closed),
            Err(e) => Err(e.into()),
        }
    }

    /// Receives like [`Socket::recv`], blocking the calling thread: for adapters without an
    /// event loop (sp-blocking), whose pipes run on [`threads`](crate::threads).
    ///
    /// While the socket has a single pipe, the waiting thread reads that pipe's connection
    /// itself rather than wait for the pipe's reader thread to hand a message over.
    ///
    /// # Errors
    /// As [`Socket::recv`].
    pub fn recv_blocking(&self) -> Result<Message> {
        self.recv_parked(deadline_after(self.recv_timeout()))
    }

    /// Receives like [`Socket::recv_blocking`], but waits at most until `deadline` (ignoring
    /// the receive timeout option).
    ///
    /// # Errors
    /// As [`Socket::recv`].
    pub fn recv_blocking_until(&self, deadline: Instant) -> Result<Message> {
        self.recv_parked(Some(deadline))
    }

    /// The waiting of [`with_deadline`], with the thread parked, or reading the sole pipe.
    fn recv_parked(&self, deadline: Option<Instant>) -> Result<Message> {
        let shared = self.shared();
        let waker = threads::waker();
        let mut cx = Context::from_waker(&waker);
        let mut first = true;
        // Once a read of its own found nothing, the caller leaves reading to the reader thread
        // and waits to be woken, rather than wake up every read window.
        let mut read_itself = true;
        loop {
            let sole_pipe = match threads::with_direct_writes(|| shared.poll_recv(&mut cx)) {
                Poll::Ready(r) => return r,
                Poll::Pending if read_itself => shared.sole_threaded_pipe(),
                Poll::Pending => None,
            };
            if let Some(e) = deadline_passed(deadline, &mut first) {
                return Err(e);
            }
            if let Some(pipe) = sole_pipe {
                match threads::read_directly(&pipe, deadline) {
                    DirectRead::Read => continue,
                    DirectRead::Idle => {
                        read_itself = false;
                        continue;
                    }
                    DirectRead::Unavailable => {}
                }
            }
            threads::park(deadline);
        }
    }

    /// Closes the socket and waits until every pipe has written out what was already sent
    /// (at most the linger time, 1 s by default). Endpoints stop at once and blocked calls
    /// return [`Error::Closed`]. Dropping the last clone closes too, without waiting.
    pub async fn close(&self) {
        let shared = self.shared();
        shared.close();
        std::future::poll_fn(|cx| shared.poll_pipes_gone(cx)).await
    }

    /// Starts closing the socket without waiting (see [`Socket::close`]): queued messages are
    /// still written out in the background, within the linger time.
    pub fn close_now(&self) {
        self.shared().close();
    }

    /// Sends like [`Socket::send`], but waits at most until `deadline` (ignoring the send
    /// timeout option).
    ///
    /// # Errors
    /// As [`Socket::send`].
    pub async fn send_until(&self, msg: impl Into<Message>, deadline: Instant) -> Result<()> {
        let msg = msg.into();
        let shared = self.shared();
        with_deadline(&shared.rt, Some(deadline), |cx| shared.poll_send(&msg, cx)).await
    }

    /// Receives like [`Socket::recv`], but waits at most until `deadline` (ignoring the receive
    /// timeout option).
    ///
    /// # Errors
    /// As [`Socket::recv`].
    pub async fn recv_until(&self, deadline: Instant) -> Result<Message> {
        let shared = self.shared();
        with_deadline(&shared.rt, Some(deadline), |cx| shared.poll_recv(cx)).await
    }

    /// Returns a copy of the socket's options.
    pub fn options(&self) -> SocketOptions {
        self.shared().options()
    }

    fn update_options(&self, f: impl FnOnce(&mut SocketOptions)) {
        f(&mut self.shared().lock().opts);
    }

    /// Returns the send timeout (`None`: wait forever).
    pub fn send_timeout(&self) -> Option<Duration> {
        self.shared().lock().opts.send_timeout
    }

    /// Sets how long `send` waits (`None`: forever, zero: do not wait).
    pub fn set_send_timeout(&self, timeout: Option<Duration>) {
        self.update_options(|o| o.send_timeout = timeout);
    }

    /// Returns the receive timeout (`None`: wait forever).
    pub fn recv_timeout(&self) -> Option<Duration> {
        self.shared().lock().opts.recv_timeout
    }

    /// Sets how long `recv` waits (`None`: forever, zero: do not wait).
    pub fn set_recv_timeout(&self, timeout: Option<Duration>) {
        self.update_options(|o| o.recv_timeout = timeout);
    }

    /// Returns the largest message accepted from stream peers (0 = unlimited).
    pub fn recv_max_size(&self) -> usize {
        self.shared().lock().opts.recv_max_size
    }

    /// Sets the largest message accepted from stream peers, for endpoints created afterwards.
    /// A peer that sends more loses its connection. 0 means unlimited.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for values of 2^60 or more.
    pub fn set_recv_max_size(&self, max: usize) -> Result<()> {
        if max as u64 >= sp_core::frame::MAX_LENGTH_CLAIM {
            return Err(Error::InvalidOption(format!(
                "recv max size {max} must be below 2^60 (use 0 for unlimited)"
            )));
        }
        self.update_options(|o| o.recv_max_size = max);
        Ok(())
    }

    /// Sets the reconnect back-off for dialers created afterwards: the first wait is about
    /// `min`, doubling up to `max` (`Duration::ZERO`: no back-off).
    pub fn set_reconnect_backoff(&self, min: Duration, max: Duration) {
        self.update_options(|o| o.reconnect = BackoffConfig { min, max });
    }

    /// Sets `TCP_NODELAY` for TCP endpoints created afterwards (default: on).
    pub fn set_tcp_nodelay(&self, nodelay: bool) {
        self.update_options(|o| o.tcp_nodelay = nodelay);
    }

    /// Sets how long pipes may take, once the socket closes, to write out queued messages.
    pub fn set_linger(&self, linger: Duration) {
        self.update_options(|o| o.linger = linger);
    }

    /// Sets how long a peer may take to complete the SP handshake, for endpoints created after.
    pub fn set_handshake_timeout(&self, timeout: Duration) {
        self.update_options(|o| o.handshake_timeout = timeout);
    }

    /// Sets the TLS configuration for `tls+tcp://` and `wss://` endpoints created after.
    pub fn set_tls(&self, config: crate::tls::TlsConfig) {
        self.update_options(|o| o.tls = Some(config));
    }

    /// Returns how many pipes are attached right now.
    pub fn pipe_count(&self) -> usize {
        self.shared().lock().pipes.len()
    }

    /// Runs `f` on the protocol core, then applies whatever it queued. For protocol-specific
    /// settings and commands (resend interval, TTL, subscriptions).
    pub fn with_core<T>(&self, f: impl FnOnce(&mut P, Instant) -> T) -> T {
        let mut st = self.shared().lock();
        let now = Instant::now();
        let out = f(&mut st.core, now);
        st.pump(now);
        out
    }
}

/// Returns to the executor once, staying ready to run.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Turns a timeout option into a deadline; a zero timeout becomes "now" (one attempt only).
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future))
}

fn far_future() -> Instant {
    // About 30 years: "forever" for any socket, and safe from Instant overflow.
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Polls `poll` until it is ready, or gives up at `deadline`: with [`Error::WouldBlock`] when
/// the deadline had already passed at the first attempt (a non-blocking call, as NNG's zero
/// timeout), and [`Error::TimedOut`] after a real wait.
pub(crate) async fn with_deadline<R: Runtime, T>(
    rt: &R,
    deadline: Option<Instant>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<Result<T>>,
) -> Result<T> {
    let mut sleep: Option<Box<dyn Sleep>> = None;
    let mut first = true;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = poll(cx) {
            return Poll::Ready(r);
        }
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        if let Some(e) = deadline_passed(Some(deadline), &mut first) {
            return Poll::Ready(Err(e));
        }
        let s = sleep.get_or_insert_with(|| rt.sleep_until(deadline));
        match s.poll_sleep(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Error::TimedOut)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Checks `deadline` after an attempt that could not complete: [`Error::WouldBlock`] when it
/// had passed already at the first attempt (a non-blocking call, as NNG's zero timeout),
/// [`Error::TimedOut`] when it passed while waiting, `None` while time is left.
fn deadline_passed(deadline: Option<Instant>, first: &mut bool) -> Option<Error> {
    let expired = deadline.is_some_and(|d| Instant::now() >= d);
    let was_first = std::mem::replace(first, false);
    expired.then_some(if was_first {
        Error::WouldBlock
    } else {
        Error::TimedOut
    })
}
