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
//! On tokio, a receive that finds nothing may poll the socket's one pipe itself, outside the
//! lock (`crate::pipe_runner`), so that the bytes waiting for the pipe's task are read and
//! delivered on the receiving task. On tokio and smol, such a receive also reads the pipe's
//! connection itself for a few microseconds before it waits (`crate::busy_poll`).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use sp_core::backoff::BackoffConfig;
use sp_core::protocol::{ContextId, Event, Input, Protocol, RecvError, SendError};
use sp_core::stats::{DropCounts, DropReason};
use sp_core::{Message, PipeId, PipeIdAllocator, ProtocolId};
use tracing::Instrument;

use crate::addr::Address;
use crate::busy_poll::{BusyPoll, PollLease};
use crate::endpoint::{self, EndpointCtl, EndpointHost};
use crate::endpoint_handle::{
    check_handshake_timeout, check_recv_max_size, Dialer, EndpointOptions, Listener, ToAddress,
};
use crate::error::{Error, Result, SendResult, Unsent};
use crate::pipe::{lock, Delivery, PipeEnd, PipeHandle, PipeOwner, QUEUE_HIGH_WATER_MSGS};
use crate::pipe_events::{self, Hook, PipeEvent, PipeEvents, PipeVerdict, Subscribers};
use crate::pipe_view::{EndpointId, Pipe};
use crate::readiness::Readiness;
use crate::roles::{RecvRole, SendRole};
use crate::rt::{Runtime, Sleep};
use crate::stats::{RefusalCounts, RefusalReason, SocketStats};

/// How long closing pipes may take to write out what is queued, by default (mangos' default).
pub const DEFAULT_LINGER: Duration = Duration::from_secs(1);

/// A protocol core the driver can create on its own.
pub trait SocketCore: Protocol + Send + 'static {
    /// Creates the core with default settings and the given random seed.
    fn create(seed: u64) -> Self;
}

/// Settings every socket has. `#[non_exhaustive]`: build one with [`SocketOptions::builder`]
/// (or start from `Default` and set fields), apply it with [`Socket::set_options`].
///
/// Endpoints copy [`SocketOptions::endpoint`] when they are created and may override it
/// ([`Dialer`], [`Listener`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SocketOptions {
    /// How long `send` waits; `None` waits forever. Default: `None`.
    pub send_timeout: Option<Duration>,
    /// How long `recv` waits; `None` waits forever. Default: `None`.
    pub recv_timeout: Option<Duration>,
    /// How long a pipe may take to write out queued messages when the socket closes.
    /// Default: 1 s.
    pub linger: Duration,
    /// A name for logs and spans (NNG's `NNG_OPT_SOCKNAME`). Default: none.
    pub name: Option<String>,
    /// The defaults of new dialers and listeners: reconnect back-off, receive size limit,
    /// TCP options, handshake timeout, TLS.
    pub endpoint: EndpointOptions,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            send_timeout: None,
            recv_timeout: None,
            linger: DEFAULT_LINGER,
            name: None,
            endpoint: EndpointOptions::default(),
        }
    }
}

impl SocketOptions {
    /// Starts building options from the defaults.
    pub fn builder() -> SocketOptionsBuilder {
        SocketOptionsBuilder {
            opts: SocketOptions::default(),
        }
    }

    /// Checks every value, naming the first one out of range.
    ///
    /// # Errors
    /// [`Error::InvalidOption`].
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.name {
            if name.len() > MAX_NAME_LEN {
                return Err(Error::invalid_option(
                    "name",
                    "at most 64 bytes",
                    format!("{} bytes", name.len()),
                ));
            }
        }
        self.endpoint.validate()
    }
}

/// The longest socket name accepted (NNG's limit).
const MAX_NAME_LEN: usize = 64;

/// Builds [`SocketOptions`], checking them in [`SocketOptionsBuilder::build`].
///
/// ```
/// use std::time::Duration;
/// let opts = sp_transport::SocketOptions::builder()
///     .recv_timeout(Duration::from_secs(1))
///     .recv_max_size(64 * 1024)
///     .tcp_keepalive(true)
///     .name("frontend")
///     .build()
///     .unwrap();
/// assert_eq!(opts.endpoint.recv_max_size, 64 * 1024);
/// ```
#[derive(Clone, Debug)]
pub struct SocketOptionsBuilder {
    opts: SocketOptions,
}

impl SocketOptionsBuilder {
    /// How long `send` waits (`None`: forever, zero: not at all).
    pub fn send_timeout(mut self, t: impl Into<Option<Duration>>) -> Self {
        self.opts.send_timeout = t.into();
        self
    }

    /// How long `recv` waits (`None`: forever, zero: not at all).
    pub fn recv_timeout(mut self, t: impl Into<Option<Duration>>) -> Self {
        self.opts.recv_timeout = t.into();
        self
    }

    /// How long closing pipes may take to write out what is queued.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.opts.linger = linger;
        self
    }

    /// The socket's name, for logs and spans (at most 64 bytes).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.opts.name = Some(name.into());
        self
    }

    /// The largest message accepted from a peer (0: unlimited, below 2^60).
    pub fn recv_max_size(mut self, max: usize) -> Self {
        self.opts.endpoint.recv_max_size = max;
        self
    }

    /// The dialers' reconnect back-off (see [`Dialer::set_reconnect`]).
    pub fn reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.opts.endpoint.reconnect = BackoffConfig { min, max };
        self
    }

    /// `TCP_NODELAY` on TCP connections (default: on).
    pub fn tcp_nodelay(mut self, nodelay: bool) -> Self {
        self.opts.endpoint.tcp.nodelay = nodelay;
        self
    }

    /// `SO_KEEPALIVE` on TCP connections (default: off).
    pub fn tcp_keepalive(mut self, keepalive: bool) -> Self {
        self.opts.endpoint.tcp.keepalive = keepalive;
        self
    }

    /// How long a peer may take to complete its handshake (greater than zero).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.opts.endpoint.handshake_timeout = timeout;
        self
    }

    /// TLS for `tls+tcp://` and `wss://` endpoints.
    pub fn tls(mut self, config: crate::tls::TlsConfig) -> Self {
        self.opts.endpoint.tls = Some(config);
        self
    }

    /// Checks the values and returns the options.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the first value out of range.
    pub fn build(self) -> Result<SocketOptions> {
        self.opts.validate()?;
        Ok(self.opts)
    }
}

/// An SP socket driven by runtime `R` and speaking protocol `P`.
///
/// Clones share the socket; the socket closes when the last clone is dropped or on
/// [`Socket::close`]. Adapters name it per protocol, for example `sp_tokio::Req`.
pub struct Socket<R: Runtime, P: SocketCore> {
    owner: Arc<Owner<R, P>>,
    /// The message this handle's `Sink` accepted and has not handed to the protocol yet (at
    /// most one: `poll_ready` is pending until it is taken). Each clone has its own.
    pub(crate) sink_slot: Option<Message>,
    /// The polling window of the receive this handle's `Stream` is in (see
    /// `crate::busy_poll`); a new one for each item. Each clone has its own.
    pub(crate) stream_busy_poll: BusyPoll,
}

impl<R: Runtime, P: SocketCore> Clone for Socket<R, P> {
    fn clone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            sink_slot: None,
            stream_busy_poll: BusyPoll::default(),
        }
    }
}

impl<R: Runtime, P: SocketCore> std::fmt::Debug for Socket<R, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = self.shared();
        let st = shared.lock();
        let mut d = f.debug_struct("Socket");
        d.field("protocol", &shared.protocol);
        if let Some(name) = &st.opts.name {
            d.field("name", name);
        }
        d.field("pipes", &st.pipes.len())
            .field("endpoints", &st.endpoints.len())
            .field("closed", &shared.is_closed())
            .finish()
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
    /// The socket's span: parent of its endpoints' and pipes' spans.
    span: tracing::Span,
    /// The pipe hook (NNG's `nng_pipe_notify`), run outside the state lock.
    hook: Mutex<Option<Hook>>,
    /// Subscribers of [`Socket::pipe_events`].
    subscribers: Subscribers,
    protocol: ProtocolId,
    peer_protocol: ProtocolId,
    closed: AtomicBool,
    /// A device or reflector forwards on this socket (see `crate::device`).
    pub(crate) in_device: AtomicBool,
    /// Sends started (see [`SendTurns`]).
    sends: std::sync::atomic::AtomicU32,
    send_turns: SendTurns,
    /// What a receive that finds nothing may do with the socket's one pipe.
    pipe_polls: PipePolls,
    /// A delivery that woke a receiver pauses its pipe until a receive takes a message: the
    /// receivers run on threads of their own ([`Runtime::receivers_have_own_threads`]) and
    /// the core drops what a full queue cannot take ([`Protocol::drops_when_full`]).
    ///
    /// Why: a pipe's task that yields after such a delivery runs again at once on a pool
    /// thread, long before the woken thread does, and one 32 KiB read holds some 450 small
    /// messages: a SUB's queue of 128 overflowed while its thread woke up. Four sp-blocking
    /// subscribers paced at about half of what they take lost 1.1–6.2 % of the messages,
    /// 0.1–0.6 % with the pause (BENCHMARKS.md, "sp-blocking: a woken subscriber's pipe
    /// waits for its receive"); tokio's, whose receiver runs before the pipe's task again,
    /// 0.1 %.
    hand_over_on_wake: bool,
    /// Which receive polls the socket's one pipe directly (see `crate::busy_poll`).
    poll_lease: PollLease,
    state: Mutex<State<P>>,
}

/// What a receive that finds nothing may do with the socket's one stream pipe, instead of
/// waiting for that pipe's task (see `crate::pipe_runner`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PipePolls {
    /// Poll its reading side when its task has work waiting ([`Runtime::receivers_poll_pipes`]).
    woken: bool,
    /// Read its connection directly while the receive polls before it sleeps
    /// ([`Runtime::receivers_busy_poll`]).
    busy: bool,
}

impl PipePolls {
    /// What the runtime asks for, on a core that queues what it receives (not PUB or PUSH,
    /// whose pipes then run as plain tasks) and does not drop when full: its pipe's task
    /// stops delivering only to let the receivers it woke run, and a receiver that polls the
    /// pipe is not among them (SUB fan-out paced at what the subscribers take: 95.7-99.4 %
    /// delivered, 98.7-99.9 % without).
    fn of(rt: &impl Runtime, core: &impl SocketCore) -> Self {
        let core_allows = core.recv_buffer().is_some() && !core.drops_when_full();
        Self {
            woken: core_allows && rt.receivers_poll_pipes(),
            busy: core_allows && rt.receivers_busy_poll(),
        }
    }

    /// Whether the socket's stream pipes run where receiving tasks can poll them.
    fn any(self) -> bool {
        self.woken || self.busy
    }
}

/// How often a send spends a unit of the runtime's budget ([`Runtime::send_budget`]).
///
/// A role whose sends never wait for a pipe (PUB, BUS, STAR, SURVEYOR, polyamorous PAIR v1,
/// the raw repliers: writable before it has any pipe) drops what a busy pipe cannot take, so
/// each of its sends spends a unit: with tokio's 128 units a send loop gives the pipes their
/// turn every 128 messages, before their queues of 256 fill. The other roles wait when a
/// pipe's queue is full, so they lose nothing by running longer; each of their sends spends
/// half a unit (a unit every second send), and a send loop yields every 256 messages.
///
/// Why: at a yield, a tokio worker goes through its search for work, takes the deferred
/// sender back and, still counted as searching, wakes its parked sibling if it has one:
/// about one unpark per two yields on the sending side (`perf record` of its `eventfd`
/// writes: 97 % from `transition_from_searching`). tcp 64 B throughput, 8 interleaved
/// rounds of 2,000,000 messages: median 2.70 M msg/s with a unit per send, 3.15 M with one
/// every second send. PUB spending half a unit delivered 95–96 % of an unpaced fan-out
/// instead of 99.8 %, hence the two rates.
///
/// On a runtime without a budget, the same split sets how often a send yields
/// ([`SendTurns::yield_every`]).
#[derive(Debug, Clone, Copy)]
struct SendTurns {
    sends_per_unit: u32,
    /// Every this many sends, a send yields to the runtime once (before its attempt) when the
    /// runtime has no budget of its own.
    yield_every: u32,
}

impl SendTurns {
    fn new(never_waits: bool) -> Self {
        if never_waits {
            Self {
                sends_per_unit: 1,
                yield_every: NEVER_WAITING_SEND_YIELD_EVERY,
            }
        } else {
            Self {
                sends_per_unit: 2,
                yield_every: WAITING_SEND_YIELD_EVERY,
            }
        }
    }
}

/// A send that never waits (PUB and BUS never block) never returns to the executor, so a send
/// loop on a runtime without a budget would starve the pipe tasks queued behind it on the same
/// thread: PUB would then drop most messages for its busy subscribers although the CPU could
/// carry them. Such a send yields every this many messages, well before a pipe's queue of 256
/// fills.
const NEVER_WAITING_SEND_YIELD_EVERY: u32 = 32;

/// A send that waits when its pipe's queue is full yields every this many messages, as often
/// as tokio's budget has it yield (half a unit of 128 per send). Why not as often as one that
/// never waits: the pipe's task writes what queued since its last turn, so a yield every 32
/// messages was a `writev` of 32 messages; on smol (one thread), tcp 64 B throughput,
/// 3 interleaved rounds of 2,000,000 messages, 3.32–3.41 M msg/s with a yield every 32 sends,
/// 4.05–4.42 M with one every 256.
const WAITING_SEND_YIELD_EVERY: u32 = 256;

pub(crate) struct State<P> {
    pub(crate) core: P,
    pipes: BTreeMap<PipeId, Arc<PipeHandle>>,
    ids: PipeIdAllocator,
    send_waiters: Waiters,
    recv_waiters: Waiters,
    /// Callers of `close().await`, woken when the last pipe is gone after the close.
    close_waiters: Waiters,
    timer_deadline: Option<Instant>,
    /// When the timer task's sleep fires, if one is armed: it wakes then whatever the
    /// deadline, so a deadline at or after it needs no wake-up (see [`State::pump`]).
    timer_armed: Option<Instant>,
    /// The latest time the driver read from the runtime: what a core that reads no `now` is
    /// given instead of a fresh clock read (see [`Protocol::reads_time`]).
    latest_now: Instant,
    /// How many tasks waiting to receive the pumps since the last delivery woke (see
    /// [`Delivery::receivers_woken`]).
    receivers_woken: usize,
    /// Pipes paused until a receive takes a message: their delivery woke a receiver on a
    /// thread of its own, into a core that drops when full (see [`Shared::deliver`]).
    waiting_for_take: Vec<PipeId>,
    /// Waiters a pump woke, woken for real once the lock is released ([`StateGuard`]).
    wakes: Vec<Waker>,
    timer_waker: Option<Waker>,
    pub(crate) opts: SocketOptions,
    endpoints: Vec<Arc<EndpointCtl>>,
    counters: DriverCounters,
    /// Per-pipe queue length at which the driver reports a pipe full (`send_buffer` for roles
    /// with no send queue of their own).
    pipe_queue_len: usize,
    /// The open contexts' waiters and readiness (see [`crate::Context`]).
    /// A hash map: looked up on every operation of a context (a tree's pointer chase cost
    /// more with 100 contexts), iterated only when the socket closes.
    pub(crate) contexts: FxHashMap<ContextId, CtxWaiters>,
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
}

impl CtxWaiters {
    pub(crate) fn new() -> Self {
        Self {
            recv: Waiters::default(),
            send: Waiters::default(),
            readable: true,
            writable: true,
        }
    }

    pub(crate) fn wake_all(&mut self) {
        self.recv.wake_all();
        self.send.wake_all();
    }
}

/// The driver's own counters (the core keeps its drops; see [`Socket::stats`]).
#[derive(Default)]
struct DriverCounters {
    msgs_sent: u64,
    bytes_sent: u64,
    msgs_received: u64,
    bytes_received: u64,
    pipes_attached: u64,
    pipes_detached: u64,
    dial_attempts: u64,
    dial_failures: u64,
    accepted: u64,
    refused: RefusalCounts,
    /// Drops outside the core: messages queued for pipes that closed, oversized messages,
    /// messages the core still held when the socket closed.
    dropped: DropCounts,
    /// Whether the core's stranded messages were counted (once, when the closed socket's last
    /// pipe went).
    stranded_counted: bool,
}

#[derive(Default)]
pub(crate) struct Waiters(Vec<Waker>);

impl Waiters {
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    pub(crate) fn has_any(&self) -> bool {
        !self.0.is_empty()
    }

    /// Wakes every waiter; returns whether there was one.
    pub(crate) fn wake_all(&mut self) -> bool {
        let any = !self.0.is_empty();
        for w in self.0.drain(..) {
            w.wake();
        }
        any
    }

    /// Moves every waiter to `wakes`, to be woken once the socket's lock is released;
    /// returns how many there were.
    fn defer_all(&mut self, wakes: &mut Vec<Waker>) -> usize {
        // Mostly empty: a core reports its socket writable again after nearly every send.
        let n = self.0.len();
        if n > 0 {
            wakes.append(&mut self.0);
        }
        n
    }
}

/// The socket's state, locked; wakes what the pumps under it woke once the lock is released.
///
/// Why: a pipe task that delivers a batch of replies wakes a task per context it answered,
/// and on a multi-threaded runtime a wake-up may unpark another worker, which then would wait
/// for this very lock. Waking after the release keeps the lock's hold short, and no task is
/// woken into a lock that is still held.
pub(crate) struct StateGuard<'a, P> {
    /// `None` only inside `drop`, after the release.
    guard: Option<MutexGuard<'a, State<P>>>,
}

thread_local! {
    /// An empty list that keeps its capacity: swapped with the state's list of wakes at each
    /// release, so that neither list allocates once both have grown.
    static SPARE_WAKES: Cell<Vec<Waker>> = const { Cell::new(Vec::new()) };
}

impl<P> Deref for StateGuard<'_, P> {
    type Target = State<P>;

    fn deref(&self) -> &State<P> {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl<P> DerefMut for StateGuard<'_, P> {
    fn deref_mut(&mut self) -> &mut State<P> {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl<P> Drop for StateGuard<'_, P> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        if guard.wakes.is_empty() {
            return;
        }
        // A waker that re-enters (and takes this lock again) finds the spare gone and starts
        // an empty list of its own: correct, only not allocation-free.
        let mut wakes = std::mem::replace(&mut guard.wakes, SPARE_WAKES.take());
        drop(guard);
        for w in wakes.drain(..) {
            w.wake();
        }
        SPARE_WAKES.set(wakes);
    }
}

/// Polls `pipe` on a receiving task that found nothing to receive (see
/// `crate::pipe_runner`), in the pipe's span as its task's polls are. Called without the
/// socket's lock: the pipe's deliveries take it.
pub(crate) fn poll_pipe_for_receiver(pipe: &PipeHandle, directly: bool) {
    pipe.info
        .span
        .in_scope(|| pipe.runner.poll_for_receiver(directly));
}

impl<P: Protocol> State<P> {
    /// Counts what the core still holds for sending as [`DropReason::SocketClosed`]: called
    /// once the socket is closed and its last pipe is gone, when no pipe can take it any more
    /// (the pipes' own queues came back to the core as they closed).
    fn count_stranded(&mut self) {
        if !std::mem::replace(&mut self.counters.stranded_counted, true) {
            let stranded = self.core.stats().send_queued as u64;
            self.counters
                .dropped
                .add(DropReason::SocketClosed, stranded);
        }
    }

    /// Drains the core's outputs into pipe queues, wake-ups and timer changes.
    ///
    /// A pipe whose queue still has room after a message is writable again at once: the core
    /// hears so before the next transmit is taken, and what that lets it send comes out of
    /// the same loop. Of the calls the pump makes, only `handle` makes transmits, so one pass
    /// over the transmits and then one over the events drains everything.
    pub(crate) fn pump(&mut self, now: Instant) {
        self.latest_now = now;
        while let Some(tx) = self.core.poll_transmit() {
            let Some(pipe) = self.pipes.get(&tx.pipe) else {
                // The core addressed a pipe it was told is gone: count the loss.
                self.counters.dropped.record(DropReason::PipeClosed);
                continue;
            };
            let (room, writer) = pipe.enqueue_leaving_wake(tx.msg, self.pipe_queue_len);
            // Woken once the socket's lock is released (`StateGuard`).
            if let Some(w) = writer {
                self.wakes.push(w);
            }
            if room {
                self.core.handle(Input::PipeWritable { pipe: tx.pipe }, now);
            }
        }
        while let Some(event) = self.core.poll_event() {
            match event {
                Event::Readable => {
                    self.receivers_woken += self.recv_waiters.defer_all(&mut self.wakes);
                }
                Event::Writable => {
                    self.send_waiters.defer_all(&mut self.wakes);
                }
                Event::ClosePipe { pipe, reason } => {
                    if let Some(p) = self.pipes.get(&pipe) {
                        p.info
                            .span
                            .in_scope(|| tracing::warn!(%reason, "protocol closes pipe"));
                        p.close();
                    }
                }
                Event::ResumeReceiving { pipe } => {
                    if let Some(w) = self.pipes.get(&pipe).and_then(|p| p.resume()) {
                        self.wakes.push(w);
                    }
                }
                Event::ContextReadable { ctx } => {
                    if let Some(w) = self.contexts.get_mut(&ctx) {
                        w.readable = true;
                        self.receivers_woken += w.recv.defer_all(&mut self.wakes);
                    }
                }
                Event::ContextWritable { ctx } => {
                    if let Some(w) = self.contexts.get_mut(&ctx) {
                        w.writable = true;
                        w.send.defer_all(&mut self.wakes);
                    }
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
        }
        let deadline = self.core.poll_timeout();
        if deadline != self.timer_deadline {
            self.timer_deadline = deadline;
            // The timer task needs waking only for a deadline before the sleep it has armed: a
            // later or cleared one waits for that sleep, which fires early and re-arms. Why:
            // a REQ with one request in flight moves its deadline from none to a minute ahead
            // on every request; waking the timer task for each was a task wake-up (often
            // another thread's) per round trip.
            let earlier = match (deadline, self.timer_armed) {
                (Some(new), Some(armed)) => new < armed,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if earlier {
                if let Some(w) = self.timer_waker.take() {
                    w.wake();
                }
            }
        }
    }
}

impl<P> State<P> {
    /// The socket's one pipe, if a receiving task that found nothing may poll it itself (see
    /// `crate::pipe_runner`): it has work waiting for its task, where `polls.woken`, or it
    /// can be read directly, where `polls.busy`. `None` with no pipe or several.
    pub(crate) fn pipe_to_poll(&self, polls: PipePolls) -> Option<Arc<PipeHandle>> {
        let mut pipes = self.pipes.values();
        match (pipes.next(), pipes.next()) {
            (Some(pipe), None)
                if (polls.woken && pipe.runner.has_work())
                    || (polls.busy && pipe.runner.may_read_directly()) =>
            {
                Some(pipe.clone())
            }
            _ => None,
        }
    }

    pub(crate) fn count_sent(&mut self, bytes: usize) {
        self.counters.msgs_sent += 1;
        self.counters.bytes_sent += bytes as u64;
    }

    /// Counts a message a receive took, and resumes the pipes that waited for a take.
    pub(crate) fn count_received(&mut self, bytes: usize) {
        self.counters.msgs_received += 1;
        self.counters.bytes_received += bytes as u64;
        if !self.waiting_for_take.is_empty() {
            self.resume_after_take();
        }
    }

    #[cold]
    fn resume_after_take(&mut self) {
        for id in self.waiting_for_take.drain(..) {
            if let Some(w) = self.pipes.get(&id).and_then(|p| p.resume()) {
                self.wakes.push(w);
            }
        }
    }
}

impl<R: Runtime, P: SocketCore> Shared<R, P> {
    pub(crate) fn lock(&self) -> StateGuard<'_, P> {
        StateGuard {
            guard: Some(lock(&self.state)),
        }
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

    /// Closes `ctl`, forgets it, and closes the pipes it made (their queues are dropped and
    /// counted when they detach).
    pub(crate) fn remove_endpoint(&self, ctl: &Arc<EndpointCtl>) {
        ctl.close();
        let mut st = self.lock();
        st.endpoints.retain(|e| !Arc::ptr_eq(e, ctl));
        for pipe in st.pipes.values() {
            if pipe
                .info
                .endpoint
                .as_ref()
                .is_some_and(|e| Arc::ptr_eq(e, ctl))
            {
                pipe.close();
            }
        }
    }

    pub(crate) fn count_dial_attempt(&self) {
        self.lock().counters.dial_attempts += 1;
    }

    pub(crate) fn count_dial_failure(&self) {
        self.lock().counters.dial_failures += 1;
    }

    /// Runs the hook and informs the streams of `event`; returns the hook's verdict.
    fn publish(&self, event: &PipeEvent) -> PipeVerdict {
        let hook = lock(&self.hook).clone();
        let verdict = match &hook {
            Some(h) => pipe_events::run_hook(h, event),
            None => PipeVerdict::Accept,
        };
        self.subscribers.publish(event);
        verdict
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
            let mut sleep = self.rt.sleep_until(self.rt.now() + st.opts.linger);
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
        if st.pipes.is_empty() {
            st.count_stranded();
            self.subscribers.end();
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

    /// The `now` for a call into the core on a hot path (send, receive, delivery, a writable
    /// pipe): a fresh clock read only for a core that reads time (REQ, SURVEYOR); the others
    /// get the latest time read.
    pub(crate) fn core_now(&self, st: &mut State<P>) -> Instant {
        let fresh = st.core.reads_time();
        self.now_if(st, fresh)
    }

    /// The `now` for a receive: as [`Shared::core_now`], for cores whose receives read time
    /// ([`Protocol::receive_reads_time`]; not REQ's).
    pub(crate) fn receive_now(&self, st: &mut State<P>) -> Instant {
        let fresh = st.core.receive_reads_time();
        self.now_if(st, fresh)
    }

    /// Reads the runtime's clock when `fresh`, else returns the latest time read.
    fn now_if(&self, st: &mut State<P>, fresh: bool) -> Instant {
        if fresh {
            st.latest_now = self.rt.now();
        }
        st.latest_now
    }

    /// One send attempt; on `WouldBlock` it registers `waker` (if any) for
    /// [`Event::Writable`]. The core gets the message itself when it says it will take it
    /// ([`Protocol::will_take`]), `msg` then left empty, and a copy otherwise, `msg` then
    /// kept for the caller to retry or give back. An empty `msg` was sent already.
    fn try_send_locked(&self, msg: &mut Option<Message>, waker: Option<&Waker>) -> Result<()> {
        let Some(offered) = msg.as_ref() else {
            return Ok(());
        };
        let mut st = self.lock();
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let now = self.core_now(&mut st);
        let len = offered.len();
        let result = if st.core.will_take(offered) {
            st.core.send(msg.take().unwrap_or_default(), now)
        } else {
            st.core.send(offered.clone(), now)
        };
        debug_assert!(
            result.is_ok() || msg.is_some(),
            "a core refused a message it said it would take"
        );
        match result {
            Ok(()) => st.count_sent(len),
            Err(SendError::WouldBlock) => {
                if let Some(w) = waker {
                    st.send_waiters.register(w);
                }
            }
            Err(_) => {}
        }
        st.pump(now);
        result.map_err(Error::from)
    }

    /// Sends from the front of `msgs`, in order, what the core takes now, under one lock;
    /// removes what it sent and returns how many. On `WouldBlock` for the first message it
    /// registers `waker` (if any) for [`Event::Writable`].
    ///
    /// # Errors
    /// As one send ([`Shared::try_send_locked`]), only when the first message is not sent;
    /// an error after it ends the batch, and the next send reports it.
    fn try_send_many(&self, msgs: &mut Vec<Message>, waker: Option<&Waker>) -> Result<usize> {
        if msgs.is_empty() {
            return Ok(0);
        }
        let mut st = self.lock();
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let now = self.core_now(&mut st);
        let mut sent = 0;
        let mut first_error = None;
        for slot in msgs.iter_mut() {
            let len = slot.len();
            let result = if st.core.will_take(slot) {
                st.core.send(std::mem::take(slot), now)
            } else {
                st.core.send(slot.clone(), now)
            };
            match result {
                Ok(()) => {
                    st.count_sent(len);
                    sent += 1;
                    // Hands the message to its pipe now: a core that sent to a pipe takes
                    // the next message only once it knows that pipe still has room.
                    st.pump(now);
                }
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        if sent == 0 && matches!(first_error, Some(SendError::WouldBlock)) {
            if let Some(w) = waker {
                st.send_waiters.register(w);
            }
        }
        st.pump(now);
        drop(st);
        msgs.drain(..sent);
        match first_error {
            Some(e) if sent == 0 => Err(e.into()),
            _ => Ok(sent),
        }
    }

    /// One receive attempt; on `WouldBlock` it registers `waker` (if any) for
    /// [`Event::Readable`].
    fn try_recv_locked(&self, waker: Option<&Waker>) -> Result<Message> {
        self.try_recv_or_pipe(waker, PipePolls::default(), &mut None)
    }

    /// Takes up to `limit` messages that are ready now into `buf`, under one lock; returns how
    /// many. Registers no waker: a caller that finds nothing waits with `poll_recv`.
    ///
    /// # Errors
    /// As one receive ([`Shared::try_recv_locked`]), only when it takes nothing; an error
    /// after the first message (the socket closed meanwhile) ends the batch, and the next
    /// receive reports it.
    pub(crate) fn try_recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let mut st = self.lock();
        let now = self.receive_now(&mut st);
        let mut taken = 0;
        while taken < limit {
            match st.core.recv(now) {
                Ok(msg) => {
                    st.count_received(msg.len());
                    buf.push(msg);
                    taken += 1;
                }
                Err(_) if taken > 0 => break,
                Err(e) => {
                    st.pump(now);
                    return Err(if self.is_closed() {
                        Error::Closed
                    } else {
                        e.into()
                    });
                }
            }
        }
        st.pump(now);
        // As after one receive: a socket that a receive made writable tells its senders.
        if st.send_waiters.has_any() && st.core.is_writable() {
            let st = &mut *st;
            st.send_waiters.defer_all(&mut st.wakes);
        }
        Ok(taken)
    }

    /// Receives like [`Shared::try_recv_locked`]; a receive that finds nothing while the
    /// socket's one pipe is one to poll (see [`State::pipe_to_poll`]) returns
    /// [`Error::WouldBlock`] with that pipe in `pipe_to_poll`, and registers no waker: the
    /// caller polls the pipe, then tries again.
    fn try_recv_or_pipe(
        &self,
        waker: Option<&Waker>,
        polls: PipePolls,
        pipe_to_poll: &mut Option<Arc<PipeHandle>>,
    ) -> Result<Message> {
        let mut st = self.lock();
        let now = self.receive_now(&mut st);
        let result = st.core.recv(now);
        st.pump(now);
        match result {
            Ok(msg) => {
                st.count_received(msg.len());
                // A receive can make a socket writable with no event from the core (a REP
                // that takes a request may reply): a task waiting in `writable` looks again.
                if st.send_waiters.has_any() && st.core.is_writable() {
                    let st = &mut *st;
                    st.send_waiters.defer_all(&mut st.wakes);
                }
                Ok(msg)
            }
            Err(_) if self.is_closed() => Err(Error::Closed),
            Err(RecvError::WouldBlock) => {
                if polls.any() {
                    if let Some(pipe) = st.pipe_to_poll(polls) {
                        *pipe_to_poll = Some(pipe);
                        return Err(Error::WouldBlock);
                    }
                }
                if let Some(w) = waker {
                    st.recv_waiters.register(w);
                }
                Err(Error::WouldBlock)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Polled before a send's attempt (never after it, so that a future dropped while it
    /// yields has sent nothing): `Pending`, with the task's wake-up arranged, when the task
    /// should give the executor a turn first. The runtime's budget decides where it has one
    /// ([`Runtime::send_budget`]), spent by every send or every second one ([`SendTurns`]);
    /// otherwise every [`SendTurns::yield_every`]th call yields.
    pub(crate) fn poll_send_turn(&self, cx: &mut Context<'_>) -> Poll<()> {
        let per_unit = self.send_turns.sends_per_unit;
        match self.rt.send_budget() {
            Some(spend) if per_unit == 1 => spend(cx),
            Some(spend) if self.count_send().is_multiple_of(per_unit) => spend(cx),
            Some(_) => Poll::Ready(()),
            None if self
                .count_send()
                .is_multiple_of(self.send_turns.yield_every) =>
            {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }

    /// Counts a send's turn and returns the count (see [`Shared::poll_send_turn`]).
    ///
    /// A plain load and store, not an atomic add: two threads sending at once may lose a
    /// count, which only moves a yield, and the add's locked instruction was a measurable
    /// share of a small message's cost. The poll after a yield counts again, so it goes on.
    fn count_send(&self) -> u32 {
        let sends = self.sends.load(Ordering::Relaxed).wrapping_add(1);
        self.sends.store(sends, Ordering::Relaxed);
        sends
    }

    /// A send attempt of `msg` (see `try_send_locked`): `Pending` while the core cannot take
    /// it, the message kept.
    pub(crate) fn poll_send(
        &self,
        msg: &mut Option<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<()>> {
        match self.try_send_locked(msg, Some(cx.waker())) {
            Err(Error::WouldBlock) => Poll::Pending,
            done => Poll::Ready(done),
        }
    }

    /// A receive's poll. With `busy`, the receive's polling window (see `crate::busy_poll`):
    /// while it is open, a receive that finds nothing on a socket with one pipe that can be
    /// read directly reads that pipe's connection itself and, if still nothing came, has its
    /// task polled again after the runtime's other tasks instead of waiting to be woken.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        mut busy: Option<&mut BusyPoll>,
    ) -> Poll<Result<Message>> {
        let mut polls = self.pipe_polls;
        polls.busy &= busy.as_ref().is_some_and(|b| b.may_poll());
        let mut pipe = None;
        let mut result = self.try_recv_or_pipe(Some(cx.waker()), polls, &mut pipe);
        // Matched in place: a message found at once is moved only into the output.
        if let (Err(Error::WouldBlock), Some(pipe)) = (&result, pipe) {
            result = if self.poll_pipe_instead_of_waiting(&pipe, polls, busy.as_deref_mut()) {
                match self.try_recv_locked(None) {
                    Err(Error::WouldBlock) => {
                        // Registered nowhere (see `poll_again_later`).
                        self.poll_again_later(cx);
                        return Poll::Pending;
                    }
                    done => done,
                }
            } else {
                self.try_recv_locked(Some(cx.waker()))
            };
        }
        match result {
            Err(Error::WouldBlock) => Poll::Pending,
            done => {
                if let Some(busy) = busy {
                    busy.finish(&self.poll_lease);
                }
                Poll::Ready(done)
            }
        }
    }

    /// A receive that found nothing polls the socket's one pipe, `pipe`, itself: directly
    /// while its window `busy` is open and it holds the socket's [`PollLease`] (returns
    /// true then), or, where the runtime polls woken pipes, if the pipe's task has work.
    ///
    /// Not directly while the peer sends in bulk (`PipeRunner::may_read_directly`). The
    /// clock is read only here, by a receive that found nothing.
    fn poll_pipe_instead_of_waiting(
        &self,
        pipe: &PipeHandle,
        polls: PipePolls,
        busy: Option<&mut BusyPoll>,
    ) -> bool {
        let directly = polls.busy
            && pipe.runner.may_read_directly()
            && busy.is_some_and(|b| b.poll_again(&self.poll_lease));
        if directly || (polls.woken && pipe.runner.has_work()) {
            poll_pipe_for_receiver(pipe, directly);
        }
        directly
    }

    /// Has the running task polled again after the runtime's other tasks, as a receive that
    /// polls its pipe does between two reads. Its waker is registered nowhere meanwhile, so
    /// that a delivery that its own read makes wakes nothing.
    fn poll_again_later(&self, cx: &mut Context<'_>) {
        match self.rt.defer_yield() {
            Some(defer) => defer(cx),
            None => cx.waker().wake_by_ref(),
        }
    }

    /// Ready once the core reports the socket readable (`Readiness::Readable`) or writable,
    /// or with [`Error::Closed`]; otherwise registers `cx`'s waker for the core's next
    /// [`Event::Readable`] or [`Event::Writable`].
    pub(crate) fn poll_ready(&self, want: Readiness, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut st = self.lock();
        if self.is_closed() {
            return Poll::Ready(Err(Error::Closed));
        }
        let (ready, waiters) = match want {
            Readiness::Readable => (st.core.is_readable(), &mut st.recv_waiters),
            Readiness::Writable => (st.core.is_writable(), &mut st.send_waiters),
        };
        if ready {
            return Poll::Ready(Ok(()));
        }
        waiters.register(cx.waker());
        Poll::Pending
    }

    /// The core's readiness now.
    pub(crate) fn is_ready(&self, want: Readiness) -> bool {
        let st = self.lock();
        match want {
            Readiness::Readable => st.core.is_readable(),
            Readiness::Writable => st.core.is_writable(),
        }
    }

    /// Runs the core's timers until the socket closes.
    ///
    /// A sleep stays armed while the deadline moves later or is cleared: it fires early, and
    /// the task re-arms for the deadline of then (see `State::timer_armed`).
    async fn run_timer(self: Arc<Self>) {
        let mut sleep: Option<(Box<dyn Sleep>, Instant)> = None;
        std::future::poll_fn(|cx| loop {
            // Polled outside the socket's lock; a deadline set meanwhile is read below.
            if let Some((s, _)) = &mut sleep {
                if s.poll_sleep(cx).is_ready() {
                    sleep = None;
                }
            }
            let mut st = self.lock();
            if self.is_closed() {
                return Poll::Ready(());
            }
            st.timer_waker = Some(cx.waker().clone());
            st.timer_armed = sleep.as_ref().map(|(_, at)| *at);
            let Some(deadline) = st.timer_deadline else {
                return Poll::Pending;
            };
            let now = self.rt.now();
            if now >= deadline {
                st.core.handle_timeout(now);
                st.pump(now);
                continue;
            }
            // A sleep that fires at or before the deadline serves: the loop re-arms then.
            if st.timer_armed.is_some_and(|at| at <= deadline) {
                return Poll::Pending;
            }
            st.timer_armed = Some(deadline);
            drop(st);
            sleep = Some((self.rt.sleep_until(deadline), deadline));
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

    fn attach(&self, handle: Arc<PipeHandle>) -> std::result::Result<(), RefusalReason> {
        if self.is_closed() {
            self.refused(
                handle.info.endpoint.as_ref().map(|e| e.id),
                RefusalReason::Closed,
            );
            return Err(RefusalReason::Closed);
        }
        // The hook runs before the protocol sees the pipe, outside the lock: it may call back
        // into the socket (statistics, other pipes).
        let pipe = Pipe {
            handle: handle.clone(),
        };
        if self.publish(&PipeEvent::Attaching(pipe.clone())) == PipeVerdict::Refuse {
            handle
                .info
                .span
                .in_scope(|| tracing::info!("pipe refused by the pipe hook"));
            handle.close();
            self.refused(
                handle.info.endpoint.as_ref().map(|e| e.id),
                RefusalReason::Hook,
            );
            return Err(RefusalReason::Hook);
        }
        {
            let mut st = self.lock();
            if self.is_closed() {
                drop(st);
                handle.close();
                self.refused(
                    handle.info.endpoint.as_ref().map(|e| e.id),
                    RefusalReason::Closed,
                );
                return Err(RefusalReason::Closed);
            }
            let now = self.rt.now();
            let id = handle.id;
            let peer = handle.info.peer_protocol;
            st.pipes.insert(id, handle.clone());
            st.counters.pipes_attached += 1;
            st.core.handle(Input::PipeAdded { pipe: id, peer }, now);
            st.pump(now);
        }
        if let Some(ep) = &handle.info.endpoint {
            ep.counters.pipes_attached.fetch_add(1, Ordering::Relaxed);
            ep.counters.pipes_open.fetch_add(1, Ordering::Relaxed);
        }
        handle
            .info
            .span
            .in_scope(|| tracing::debug!("pipe attached"));
        self.publish(&PipeEvent::Attached(pipe));
        Ok(())
    }

    fn refused(&self, endpoint: Option<EndpointId>, reason: RefusalReason) {
        let mut st = self.lock();
        st.counters.refused.record(reason);
        if let Some(ep) = endpoint.and_then(|id| st.endpoints.iter().find(|e| e.id == id)) {
            ep.counters.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn accepted(&self, endpoint: &EndpointCtl) {
        endpoint.counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.lock().counters.accepted += 1;
    }

    fn span(&self) -> tracing::Span {
        self.span.clone()
    }

    fn deliver(&self, pipe: &PipeHandle, next: &mut dyn FnMut() -> Option<Message>) -> Delivery {
        let mut st = self.lock();
        let now = self.core_now(&mut st);
        st.receivers_woken = 0;
        let mut receiving = st.core.is_receiving(pipe.id);
        // Counted once per batch: the counters are shared with readers of the statistics.
        let (mut msgs, mut bytes) = (0u64, 0u64);
        // Where a delivery that wakes a receiver pauses the pipe, it holds at most a batch:
        // an inproc pipe hands over all it took from its peer, more than a queue holds.
        let most = if self.hand_over_on_wake {
            crate::pipe::DELIVER_BATCH as u64
        } else {
            u64::MAX
        };
        while receiving && msgs < most {
            let Some(msg) = next() else { break };
            msgs += 1;
            bytes += msg.len() as u64;
            st.core.handle(Input::Received { pipe: pipe.id, msg }, now);
            receiving = st.core.is_receiving(pipe.id);
        }
        pipe.counters.count_in(msgs, bytes);
        st.pump(now);
        // Re-check after pump: handling outputs never resumes this pipe, but be exact.
        let mut receiving = st.core.is_receiving(pipe.id);
        if receiving && st.receivers_woken > 0 && self.hand_over_on_wake {
            // A receiver woke on a thread of its own, and a queue that drops when full
            // would fill from this pipe's next batches before that thread ran: the pipe
            // waits for a receive to take a message (held in its buffers and the
            // connection's meanwhile, as a pipe the core paused).
            receiving = false;
            if !st.waiting_for_take.contains(&pipe.id) {
                st.waiting_for_take.push(pipe.id);
            }
        }
        if !receiving {
            pipe.set_paused();
        }
        Delivery {
            receiving,
            receivers_woken: st.receivers_woken,
            messages: msgs,
        }
    }

    fn pipe_writable(&self, pipe: PipeId) {
        let mut st = self.lock();
        let now = self.core_now(&mut st);
        st.core.handle(Input::PipeWritable { pipe }, now);
        st.pump(now);
    }

    fn pipe_closed(&self, pipe: PipeId, end: &PipeEnd) {
        let mut st = self.lock();
        let Some(handle) = st.pipes.remove(&pipe) else {
            return;
        };
        st.waiting_for_take.retain(|&waiting| waiting != pipe);
        let now = self.rt.now();
        st.counters.pipes_detached += 1;
        let lost = handle.counters.dropped_on_close.load(Ordering::Relaxed);
        st.counters.dropped.add(DropReason::PipeClosed, lost);
        if end.is_too_large() {
            st.counters.dropped.record(DropReason::TooLarge);
        }
        // What the pipe never wrote goes back to the protocol first, then the pipe goes: with
        // nothing else in between (no pump), as the `Input::Unsent` contract asks.
        for msg in handle.take_unsent() {
            st.core.handle(Input::Unsent { pipe, msg }, now);
        }
        st.core.handle(Input::PipeRemoved { pipe }, now);
        st.pump(now);
        let last = st.pipes.is_empty() && self.is_closed();
        if last {
            st.count_stranded();
            st.close_waiters.wake_all();
        }
        drop(st);
        if let Some(ep) = &handle.info.endpoint {
            ep.counters.pipes_open.fetch_sub(1, Ordering::Relaxed);
        }
        self.publish(&PipeEvent::Detached {
            pipe: Pipe { handle },
            reason: end.detach_reason(),
        });
        if last {
            self.subscribers.end();
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

    fn receivers_have_own_threads(&self) -> bool {
        self.rt.receivers_have_own_threads()
    }

    fn receivers_poll_pipes(&self) -> bool {
        self.pipe_polls.any()
    }
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
        let seed = rt.random_u64();
        let started = rt.now();
        let core = P::create(seed);
        let protocol = core.protocol();
        let peer_protocol = core.peer_protocol();
        // Writable with no pipe at all: its sends never wait for one (see `SendTurns`).
        let send_turns = SendTurns::new(core.is_writable());
        let pipe_polls = PipePolls::of(&rt, &core);
        let hand_over_on_wake = rt.receivers_have_own_threads() && core.drops_when_full();
        let span =
            tracing::debug_span!("socket", protocol = %protocol, name = tracing::field::Empty);
        let shared = Arc::new(Shared {
            rt,
            span: span.clone(),
            hook: Mutex::new(None),
            subscribers: Subscribers::default(),
            protocol,
            peer_protocol,
            closed: AtomicBool::new(false),
            in_device: AtomicBool::new(false),
            sends: std::sync::atomic::AtomicU32::new(0),
            send_turns,
            pipe_polls,
            hand_over_on_wake,
            poll_lease: PollLease::default(),
            state: Mutex::new(State {
                core,
                pipes: BTreeMap::new(),
                ids: PipeIdAllocator::new(seed.rotate_left(17)),
                send_waiters: Waiters::default(),
                recv_waiters: Waiters::default(),
                close_waiters: Waiters::default(),
                timer_deadline: None,
                timer_armed: None,
                latest_now: started,
                receivers_woken: 0,
                waiting_for_take: Vec::new(),
                wakes: Vec::new(),
                timer_waker: None,
                opts: SocketOptions::default(),
                endpoints: Vec::new(),
                counters: DriverCounters::default(),
                pipe_queue_len: QUEUE_HIGH_WATER_MSGS,
                contexts: FxHashMap::default(),
            }),
        });
        shared
            .rt
            .spawn(Box::pin(shared.clone().run_timer().instrument(span)));
        Self {
            owner: Arc::new(Owner { shared }),
            sink_slot: None,
            stream_busy_poll: BusyPoll::default(),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<R, P>> {
        &self.owner.shared
    }

    /// A receive for this handle's `Stream`: each item gets a polling window of its own.
    pub(crate) fn poll_stream_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        let received = self
            .owner
            .shared
            .poll_recv(cx, Some(&mut self.stream_busy_poll));
        if received.is_ready() {
            self.stream_busy_poll = BusyPoll::default();
        }
        received
    }

    /// A send attempt of the message this handle's `Sink` holds (see `Shared::poll_send`).
    pub(crate) fn poll_send_sink_slot(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.owner.shared.poll_send(&mut self.sink_slot, cx)
    }

    /// Returns the SP protocol this socket speaks.
    pub fn protocol(&self) -> ProtocolId {
        self.shared().protocol
    }

    /// Returns the SP protocol a peer must speak (NNG's `NNG_OPT_PEER`).
    pub fn peer_protocol(&self) -> ProtocolId {
        self.shared().peer_protocol
    }

    /// Returns true for a raw socket (NNG's `NNG_OPT_RAW`): headers pass to and from the
    /// application unchanged.
    pub fn is_raw(&self) -> bool {
        self.shared().lock().core.is_raw()
    }

    fn host(&self) -> Arc<dyn EndpointHost> {
        self.shared().clone()
    }

    /// Creates a dialer for `url` without starting it: set its options (reconnect, receive
    /// limit, TCP, handshake timeout, TLS), then [`Dialer::start`] it.
    ///
    /// # Errors
    /// [`Error::Address`] for a bad URL or one that cannot be dialed (a wildcard host),
    /// [`Error::Closed`].
    pub fn dialer(&self, url: impl ToAddress) -> Result<Dialer> {
        let addr = url.to_address()?;
        addr.check_dialable()?;
        if self.shared().is_closed() {
            return Err(Error::Closed);
        }
        let opts = self.shared().lock().opts.endpoint.clone();
        Ok(Dialer {
            ctl: EndpointCtl::new(addr, true, opts, &self.shared().span),
            host: self.host(),
        })
    }

    /// Creates a listener for `url` without starting it: set its options, then
    /// [`Listener::start`] it.
    ///
    /// # Errors
    /// [`Error::Address`] for a bad URL, [`Error::Closed`].
    pub fn listener(&self, url: impl ToAddress) -> Result<Listener> {
        let addr = url.to_address()?;
        if self.shared().is_closed() {
            return Err(Error::Closed);
        }
        let opts = self.shared().lock().opts.endpoint.clone();
        Ok(Listener {
            ctl: EndpointCtl::new(addr, false, opts, &self.shared().span),
            host: self.host(),
        })
    }

    /// Connects to `url` (a URL string, an [`Address`] or a [`Listener`]) and keeps
    /// reconnecting after the connection is lost. Returns the [`Dialer`], to close it or
    /// change its options.
    ///
    /// The first attempt happens now: if it fails (nothing listening, handshake refused), the
    /// error is returned and no dialer is left behind. See [`Socket::dial_nonblocking`] to retry
    /// in the background instead.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future before it completes closes the dialer and any pipe
    /// it had made; nothing stays connected.
    ///
    /// # Errors
    /// [`Error::Address`] for a bad URL, [`Error::ConnectionRefused`], [`Error::Handshake`],
    /// [`Error::PipeRefused`], [`Error::Closed`], or an IO error.
    pub async fn dial(&self, url: impl ToAddress) -> Result<Dialer> {
        let dialer = self.dialer(url)?;
        dialer.start().await?;
        Ok(dialer)
    }

    /// Starts a dialer that connects to `url` in the background, retrying with back-off until
    /// it succeeds, and reconnects whenever the connection is lost.
    ///
    /// # Errors
    /// [`Error::Address`] for a bad URL, [`Error::Closed`].
    pub fn dial_nonblocking(&self, url: impl ToAddress) -> Result<Dialer> {
        let dialer = self.dialer(url)?;
        dialer.start_nonblocking()?;
        Ok(dialer)
    }

    /// Listens on `url` and accepts peers until the listener or the socket closes. Returns the
    /// [`Listener`]: its [`address`](Listener::address) (and its `Display`) is the bound
    /// address, with the real port when `url` asked for port 0.
    ///
    /// # Cancel safety
    /// Completes in its first poll (binding does not wait), so there is nothing to cancel.
    ///
    /// # Errors
    /// [`Error::Address`], [`Error::AddressInUse`], [`Error::Closed`], or an IO error.
    pub async fn listen(&self, url: impl ToAddress) -> Result<Listener> {
        let listener = self.listener(url)?;
        listener.start()?;
        Ok(listener)
    }

    /// Adopts a connected TCP stream as a pipe (NNG's `socket://` transport: systemd socket
    /// activation, a connection made by other code). Runs the SP handshake on it, bounded by
    /// the handshake timeout, then attaches it like an accepted connection; the pipe has no
    /// endpoint and is not reconnected once it ends.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future during the handshake drops the stream; the pipe is
    /// attached only in the poll that completes the call.
    ///
    /// # Errors
    /// [`Error::NotConnected`] for a stream with no peer, [`Error::Handshake`],
    /// [`Error::PipeRefused`], [`Error::Closed`], an IO error.
    pub async fn adopt_tcp(&self, stream: std::net::TcpStream) -> Result<Pipe> {
        let remote = stream
            .peer_addr()
            .map_err(|e| Error::NotConnected(format!("the tcp stream has no peer ({e})")))?;
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot adopt the tcp stream", e))?;
        let opts = self.shared().lock().opts.endpoint.clone();
        let connected = self
            .shared()
            .rt
            .adopt_tcp(stream, opts.tcp)
            .map_err(|e| Error::io("cannot adopt the tcp stream", e))?;
        let addr = Address::Tcp {
            host: remote.ip().to_string(),
            port: remote.port(),
        };
        endpoint::adopt(self.shared().clone(), connected, addr, opts).await
    }

    /// Adopts a connected Unix stream as a pipe (a `socketpair`, an inherited descriptor), as
    /// [`Socket::adopt_tcp`] does.
    ///
    /// # Cancel safety
    /// As [`Socket::adopt_tcp`].
    ///
    /// # Errors
    /// As [`Socket::adopt_tcp`].
    ///
    /// Unix only: std has no such stream on Windows.
    #[cfg(unix)]
    pub async fn adopt_ipc(&self, stream: std::os::unix::net::UnixStream) -> Result<Pipe> {
        stream
            .peer_addr()
            .map_err(|e| Error::NotConnected(format!("the unix stream has no peer ({e})")))?;
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io("cannot adopt the unix stream", e))?;
        let opts = self.shared().lock().opts.endpoint.clone();
        let connected = self
            .shared()
            .rt
            .adopt_ipc(stream)
            .map_err(|e| Error::io("cannot adopt the unix stream", e))?;
        let addr = connected
            .1
            .local
            .clone()
            .or_else(|| connected.1.remote.clone())
            .unwrap_or(Address::Ipc {
                path: "socketpair".into(),
            });
        endpoint::adopt(self.shared().clone(), connected, addr, opts).await
    }

    /// Adopts a WebSocket connection that the application's own HTTP server upgraded (axum,
    /// hyper, ...; see [`Socket::answer_ws_upgrade`]) as a pipe, exactly like one a `ws://`
    /// listener accepted: pipe hook and events, the receive limit, statistics, close codes.
    /// Any [`MessageConnection`](crate::MessageConnection) will do, so any ordered, reliable
    /// stream of binary messages can become a pipe this way. `path` is reported as the pipe's
    /// WebSocket path; `info` holds what is known about the connection (its addresses).
    ///
    /// The pipe has no endpoint and is not reconnected once it ends.
    ///
    /// # Errors
    /// [`Error::PipeRefused`] when the pipe hook refuses it, [`Error::Closed`].
    pub fn adopt_ws<W: crate::MessageConnection>(
        &self,
        conn: W,
        path: impl Into<String>,
        info: crate::rt::ConnInfo,
    ) -> Result<Pipe> {
        let opts = self.shared().lock().opts.endpoint.clone();
        endpoint::adopt_ws(self.shared().clone(), conn, info, path.into(), opts)
    }

    /// Checks a WebSocket upgrade request that reached the application's own HTTP server for
    /// this socket, with the socket's default origin policy
    /// ([`EndpointOptions::ws_origins`](crate::EndpointOptions::ws_origins)), and returns the
    /// `101` answer to send (see [`websocket::answer_upgrade`](crate::websocket::answer_upgrade)).
    ///
    /// # Errors
    /// The [`UpgradeRefusal`](crate::UpgradeRefusal) to answer with instead; an origin
    /// refusal is counted ([`RefusalReason::Origin`]) and logged.
    pub fn answer_ws_upgrade(
        &self,
        headers: &crate::websocket::async_tungstenite::tungstenite::http::HeaderMap,
    ) -> std::result::Result<
        crate::websocket::async_tungstenite::tungstenite::handshake::server::Response,
        crate::UpgradeRefusal,
    > {
        let origins = self.shared().lock().opts.endpoint.ws_origins.clone();
        let answer = crate::ws::answer_upgrade(self.protocol(), headers, &origins);
        if matches!(answer, Err(crate::UpgradeRefusal::OriginRefused)) {
            PipeOwner::refused(&**self.shared(), None, crate::RefusalReason::Origin);
            tracing::warn!(
                origin = ?headers.get("Origin"),
                "refused websocket upgrade (403): origin not allowed by the socket's \
                 EndpointOptions::ws_origins"
            );
        }
        answer
    }

    /// Returns the attached pipe with this ID (for example a received message's
    /// [`Message::pipe`]); `None` once it detached.
    pub fn pipe(&self, id: PipeId) -> Option<Pipe> {
        let st = self.shared().lock();
        st.pipes.get(&id).map(|handle| Pipe {
            handle: handle.clone(),
        })
    }

    /// Returns every attached pipe.
    pub fn pipes(&self) -> Vec<Pipe> {
        let st = self.shared().lock();
        st.pipes
            .values()
            .map(|handle| Pipe {
                handle: handle.clone(),
            })
            .collect()
    }

    /// Sets the pipe hook: `hook` sees every [`PipeEvent`] of this socket, in order for each
    /// pipe (attaching, attached, detached), on the task that moves the pipe's bytes (keep it
    /// short; never block in it). Its verdict on [`PipeEvent::Attaching`] decides whether the
    /// pipe attaches: a refused pipe is closed before the protocol sees it, so not one of its
    /// messages reaches the application. A hook that panics refuses the pipe.
    ///
    /// The hook applies to pipes that finish their handshake from now on. It replaces the
    /// previous hook.
    pub fn set_pipe_hook(&self, hook: impl Fn(&PipeEvent) -> PipeVerdict + Send + Sync + 'static) {
        *lock(&self.shared().hook) = Some(Arc::new(hook));
    }

    /// Removes the pipe hook.
    pub fn clear_pipe_hook(&self) {
        *lock(&self.shared().hook) = None;
    }

    /// Returns a stream of this socket's [`PipeEvent`]s from now on (a `futures_core::Stream`,
    /// also readable with [`PipeEvents::next`]). It ends once the socket is closed and its last
    /// pipe detached. It buffers up to 1024 events; see [`PipeEvents`].
    pub fn pipe_events(&self) -> PipeEvents {
        self.pipe_events_with_capacity(pipe_events::DEFAULT_EVENT_CAPACITY)
    }

    /// Returns a stream of [`PipeEvent`]s buffering up to `capacity` events.
    pub fn pipe_events_with_capacity(&self, capacity: usize) -> PipeEvents {
        let shared = self.shared();
        let st = shared.lock();
        let ended = shared.is_closed() && st.pipes.is_empty();
        shared.subscribers.subscribe(capacity, ended)
    }

    /// Returns a snapshot of the socket's counters: messages and bytes, pipes, dials,
    /// refusals, REQ resends, survey timeouts, queue depths and every message dropped anywhere
    /// in the socket, by reason.
    pub fn stats(&self) -> SocketStats {
        let st = self.shared().lock();
        let core = st.core.stats();
        let c = &st.counters;
        let mut dropped = c.dropped;
        dropped.merge(&core.dropped);
        let pipe_queued: usize = st.pipes.values().map(|p| p.queued()).sum();
        SocketStats {
            msgs_sent: c.msgs_sent,
            bytes_sent: c.bytes_sent,
            msgs_received: c.msgs_received,
            bytes_received: c.bytes_received,
            dialers: st.endpoints.iter().filter(|e| e.dialer).count(),
            listeners: st.endpoints.iter().filter(|e| !e.dialer).count(),
            pipes_open: st.pipes.len(),
            pipes_attached: c.pipes_attached,
            pipes_detached: c.pipes_detached,
            dial_attempts: c.dial_attempts,
            dial_failures: c.dial_failures,
            accepted: c.accepted,
            refused: c.refused,
            req_resends: core.resends,
            survey_timeouts: core.survey_timeouts,
            recv_queued: core.recv_queued,
            send_queued: core.send_queued + pipe_queued,
            dropped,
        }
    }

    /// Returns the socket's name, if it has one.
    pub fn name(&self) -> Option<String> {
        self.shared().lock().opts.name.clone()
    }

    /// Names the socket (NNG's `NNG_OPT_SOCKNAME`): the name appears on its tracing span, and
    /// so on every log line of the socket, its endpoints and pipes.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] above 64 bytes.
    pub fn set_name(&self, name: impl Into<String>) -> Result<()> {
        let name = name.into();
        if name.len() > MAX_NAME_LEN {
            return Err(Error::invalid_option(
                "name",
                "at most 64 bytes",
                format!("{} bytes", name.len()),
            ));
        }
        self.shared().span.record("name", name.as_str());
        self.update_options(|o| o.name = Some(name));
        Ok(())
    }

    /// Replaces every socket option at once (checked first). Endpoints created afterwards
    /// copy the new endpoint defaults; running ones keep theirs.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the first value out of range.
    pub fn set_options(&self, opts: SocketOptions) -> Result<()> {
        opts.validate()?;
        if let Some(name) = &opts.name {
            self.shared().span.record("name", name.as_str());
        }
        self.update_options(|o| *o = opts);
        Ok(())
    }

    /// Returns the receive queue length in messages (NNG's `NNG_OPT_RECVBUF`).
    ///
    /// # Errors
    /// [`Error::NotSupported`] for a role that receives nothing into a queue (PUSH, PUB, REQ).
    pub fn recv_buffer(&self) -> Result<usize> {
        self.shared()
            .lock()
            .core
            .recv_buffer()
            .ok_or(Error::NotSupported)
    }

    /// Resizes the receive queue while the socket runs (0..=8192 messages; 0 counts as 1).
    /// Shrinking below what is queued drops the newest messages beyond the new length,
    /// counted as [`DropReason::QueueShrunk`].
    ///
    /// # Errors
    /// [`Error::InvalidOption`] above 8192, [`Error::NotSupported`] for a role with no
    /// receive queue.
    pub fn set_recv_buffer(&self, len: usize) -> Result<()> {
        self.with_core(|core, now| core.set_recv_buffer(len, now))
            .map_err(|e| Error::config("recv_buffer", e))
    }

    /// Returns the send queue length in messages (NNG's `NNG_OPT_SENDBUF`): the per-pipe
    /// queue of PUB, BUS and STAR, and for every other role the queue each pipe holds for
    /// writing.
    pub fn send_buffer(&self) -> usize {
        let st = self.shared().lock();
        st.core.send_buffer().unwrap_or(st.pipe_queue_len)
    }

    /// Resizes the send queue while the socket runs (0..=8192 messages; 0 counts as 1): for
    /// PUB, BUS, STAR and polyamorous PAIR v1 the protocol's per-pipe queue (shrinking drops
    /// and counts), for every other role the per-pipe write queue, which then reports a pipe
    /// full at that many messages (or 1 MiB).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] above 8192.
    pub fn set_send_buffer(&self, len: usize) -> Result<()> {
        if len > sp_core::stats::MAX_QUEUE_LEN {
            return Err(Error::invalid_option("send_buffer", "0..=8192", len));
        }
        let mut st = self.shared().lock();
        let now = self.shared().rt.now();
        let res = match st.core.set_send_buffer(len, now) {
            Err(sp_core::protocol::ConfigError::NotSupported) => {
                st.pipe_queue_len = len.max(1);
                Ok(())
            }
            other => other.map_err(|e| Error::config("send_buffer", e)),
        };
        st.pump(now);
        res
    }

    /// [`Socket::send`] for code that picks its protocol at run time (devices, a CLI such as
    /// spcat, a language binding), where the role's type cannot say whether it sends: a role
    /// that cannot send fails with [`Error::NotSupported`]. Typed code calls `send`.
    ///
    /// # Cancel safety
    /// As [`Socket::send`].
    ///
    /// # Errors
    /// As [`Socket::send`], and [`Error::NotSupported`].
    pub fn send_any_role(
        &self,
        msg: impl Into<Message>,
    ) -> impl std::future::Future<Output = SendResult> + '_ {
        SendCall {
            socket: self,
            msg: Some(msg.into()),
            turn_taken: false,
            wait: DeadlineWait::new(Expiry::Timeout),
        }
    }

    /// Runs a send's `attempt` until it is ready or the send timeout passes, after the
    /// task's turn ([`Shared::poll_send_turn`]). The turn comes before the attempt, never
    /// after it: a future dropped while it yields has sent nothing (after a completed send,
    /// a drop would make the caller send the message again).
    async fn send_in_turn<T>(
        &self,
        attempt: impl FnMut(&mut Context<'_>) -> Poll<Result<T>>,
    ) -> Result<T> {
        let shared = self.shared();
        std::future::poll_fn(|cx| shared.poll_send_turn(cx)).await;
        with_deadline(
            &shared.rt,
            Expiry::Timeout,
            || deadline_after(&shared.rt, self.send_timeout()),
            attempt,
        )
        .await
    }

    /// [`Socket::send_many`] for code that picks its protocol at run time, as
    /// [`Socket::send_any_role`].
    ///
    /// # Cancel safety
    /// As [`Socket::send_many`].
    ///
    /// # Errors
    /// As [`Socket::send_many`], and [`Error::NotSupported`].
    pub async fn send_many_any_role(&self, msgs: &mut Vec<Message>) -> Result<usize> {
        if msgs.is_empty() {
            return Ok(0);
        }
        let shared = self.shared();
        self.send_in_turn(|cx| match shared.try_send_many(msgs, Some(cx.waker())) {
            Err(Error::WouldBlock) => Poll::Pending,
            done => Poll::Ready(done),
        })
        .await
    }

    /// [`Socket::recv`] for code that picks its protocol at run time, as
    /// [`Socket::send_any_role`]: a role that cannot receive fails with
    /// [`Error::NotSupported`].
    ///
    /// # Cancel safety
    /// As [`Socket::recv`].
    ///
    /// # Errors
    /// As [`Socket::recv`], and [`Error::NotSupported`].
    pub fn recv_any_role(&self) -> impl std::future::Future<Output = Result<Message>> + '_ {
        let shared = self.shared();
        // The attempt owns its busy-poll state, as a context's receive owns its operation.
        let mut busy = BusyPoll::default();
        with_deadline(
            &shared.rt,
            Expiry::Timeout,
            move || deadline_after(&shared.rt, self.recv_timeout()),
            move |cx| shared.poll_recv(cx, Some(&mut busy)),
        )
    }

    /// [`Socket::try_recv_many`] for code that picks its protocol at run time, as
    /// [`Socket::recv_any_role`].
    ///
    /// # Errors
    /// As [`Socket::try_recv_many`], and [`Error::NotSupported`].
    pub fn try_recv_many_any_role(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        self.shared().try_recv_many(buf, limit)
    }

    /// [`Socket::recv_many`] for code that picks its protocol at run time, as
    /// [`Socket::recv_any_role`].
    ///
    /// # Cancel safety
    /// As [`Socket::recv_many`].
    ///
    /// # Errors
    /// As [`Socket::recv_many`], and [`Error::NotSupported`].
    pub async fn recv_many_any_role(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        buf.push(self.recv_any_role().await?);
        // In the poll that completed the receive: nothing here awaits.
        Ok(1 + self.shared().try_recv_many(buf, limit - 1).unwrap_or(0))
    }

    /// Closes the socket and waits until every pipe has written out what was already sent
    /// (at most the linger time, 1 s by default). Endpoints stop at once, and listeners'
    /// addresses are free again by the first poll's end; blocked calls return
    /// [`Error::Closed`]. Dropping the last clone closes too, without waiting.
    ///
    /// # Cancel safety
    /// The close starts in the first poll and goes on if the future is dropped; only the
    /// waiting for the pipes to drain stops.
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
        self.shared().lock().opts.endpoint.recv_max_size
    }

    /// Sets the largest message accepted from stream peers, for endpoints created afterwards.
    /// A peer that sends more loses its connection. 0 means unlimited.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for values of 2^60 or more.
    pub fn set_recv_max_size(&self, max: usize) -> Result<()> {
        check_recv_max_size(max)?;
        self.update_options(|o| o.endpoint.recv_max_size = max);
        Ok(())
    }

    /// Sets the reconnect back-off for dialers created afterwards: the first wait is about
    /// `min`, doubling up to `max` (`Duration::ZERO`: no back-off).
    pub fn set_reconnect_backoff(&self, min: Duration, max: Duration) {
        self.update_options(|o| o.endpoint.reconnect = BackoffConfig { min, max });
    }

    /// Sets `TCP_NODELAY` for TCP endpoints created afterwards (default: on).
    pub fn set_tcp_nodelay(&self, nodelay: bool) {
        self.update_options(|o| o.endpoint.tcp.nodelay = nodelay);
    }

    /// Sets `SO_KEEPALIVE` for TCP endpoints created afterwards (default: off), so that the OS
    /// detects a peer that vanished without closing.
    pub fn set_tcp_keepalive(&self, keepalive: bool) {
        self.update_options(|o| o.endpoint.tcp.keepalive = keepalive);
    }

    /// Sets how long pipes may take, once the socket closes, to write out queued messages.
    pub fn set_linger(&self, linger: Duration) {
        self.update_options(|o| o.linger = linger);
    }

    /// Sets how long a peer may take to complete its handshake (SP, TLS, WebSocket), for
    /// endpoints created afterwards.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for zero.
    pub fn set_handshake_timeout(&self, timeout: Duration) -> Result<()> {
        check_handshake_timeout(timeout)?;
        self.update_options(|o| o.endpoint.handshake_timeout = timeout);
        Ok(())
    }

    /// Sets the TLS configuration for `tls+tcp://` and `wss://` endpoints created after.
    pub fn set_tls(&self, config: crate::tls::TlsConfig) {
        self.update_options(|o| o.endpoint.tls = Some(config));
    }

    /// Returns how many pipes are attached right now.
    pub fn pipe_count(&self) -> usize {
        self.shared().lock().pipes.len()
    }

    /// Runs `f` on the protocol core, then applies whatever it queued. For protocol-specific
    /// settings and commands (resend interval, TTL, subscriptions).
    pub fn with_core<T>(&self, f: impl FnOnce(&mut P, Instant) -> T) -> T {
        let mut st = self.shared().lock();
        let now = self.shared().rt.now();
        let out = f(&mut st.core, now);
        st.pump(now);
        out
    }
}

/// The sending half of the API: only roles that send have it ([`SendRole`]).
impl<R: Runtime, P: SendRole> Socket<R, P> {
    /// Sends a message, waiting up to the send timeout for a peer that can take it.
    ///
    /// A send that could complete at once sometimes returns to the executor first, so that a
    /// loop of sends that never wait (PUB, BUS) lets the pipe tasks behind it run: on tokio it
    /// spends tokio's cooperative budget, as tokio's own channels do (`tokio::task::coop`);
    /// elsewhere every 32nd send of such a role yields (every 256th of one whose sends wait
    /// for room).
    ///
    /// # Cancel safety
    /// Cancel-safe: the protocol takes the message only in the poll that completes the call;
    /// a future dropped before then (a timeout, a losing `select!` branch) sent nothing.
    ///
    /// # Errors
    /// [`Error::TimedOut`], [`Error::BadState`], [`Error::NotSupported`], [`Error::Closed`].
    pub fn send(
        &self,
        msg: impl Into<Message>,
    ) -> impl std::future::Future<Output = SendResult> + '_ {
        self.send_any_role(msg)
    }

    /// Sends messages from the front of `msgs`, in order, under one lock of the socket:
    /// waits like [`Socket::send`] until the protocol takes the first, then sends what else
    /// it takes now. Removes what it sent from `msgs` and returns how many (0 for an empty
    /// `msgs`); what is left stays in `msgs`, to send again.
    ///
    /// Why: each send takes the socket's lock and runs the protocol once; a sender with a
    /// batch in hand pays that once per batch, and its pipe's writer is woken once for it.
    ///
    /// # Cancel safety
    /// Cancel-safe: messages leave `msgs` only in the poll that completes the call; a future
    /// dropped before then sent nothing.
    ///
    /// # Errors
    /// As [`Socket::send`], for the first message only (`msgs` then unchanged): an error
    /// after it ends the batch, and the next send returns it.
    pub async fn send_many(&self, msgs: &mut Vec<Message>) -> Result<usize> {
        self.send_many_any_role(msgs).await
    }

    /// Sends from the front of `msgs` what the protocol takes now, without waiting, under
    /// one lock; removes it from `msgs` and returns how many (see [`Socket::send_many`]).
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when no peer can take the first message now, and the errors of
    /// [`Socket::send`].
    pub fn try_send_many(&self, msgs: &mut Vec<Message>) -> Result<usize> {
        self.shared().try_send_many(msgs, None)
    }

    /// Sends a message only if that is possible without waiting.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when no peer can take it now, and the errors of [`Socket::send`].
    pub fn try_send(&self, msg: impl Into<Message>) -> SendResult {
        let mut msg = Some(msg.into());
        self.shared()
            .try_send_locked(&mut msg, None)
            .map_err(|e| Unsent::new(e, msg.unwrap_or_default()))
    }

    /// Sends like [`Socket::send`], but waits at most until `deadline` (ignoring the send
    /// timeout option).
    ///
    /// # Cancel safety
    /// Cancel-safe: the protocol takes the message only in the poll that completes the call;
    /// a future dropped before then (a timeout, a losing `select!` branch) sent nothing.
    ///
    /// # Errors
    /// As [`Socket::send`], with [`Error::TimedOut`] also for a deadline that had
    /// passed before the call (never [`Error::WouldBlock`]).
    pub async fn send_until(&self, msg: impl Into<Message>, deadline: Instant) -> SendResult {
        let mut msg = Some(msg.into());
        let shared = self.shared();
        with_deadline(
            &shared.rt,
            Expiry::Deadline,
            || Some(deadline),
            |cx| shared.poll_send(&mut msg, cx),
        )
        .await
        .map_err(|e| Unsent::new(e, msg.unwrap_or_default()))
    }
}

/// The receiving half of the API: only roles that receive have it ([`RecvRole`]).
impl<R: Runtime, P: RecvRole> Socket<R, P> {
    /// Receives the next message, waiting up to the receive timeout.
    ///
    /// Several tasks may wait here on clones of one socket: each message wakes every waiting
    /// task, and one of them takes it (the others poll once for nothing). That costs little
    /// for a few tasks; for dozens (64 tokio tasks on one PULL socket used a fifth more CPU
    /// than one task for the same paced messages), receive in one task and hand the messages
    /// to the workers through a channel. sp-blocking's threads take turns instead.
    ///
    /// # Cancel safety
    /// Cancel-safe: a message leaves the socket only in the poll that completes the call; a
    /// future dropped before then (a timeout, a losing `select!` branch) took nothing, and
    /// the next receive gets the message.
    ///
    /// # Errors
    /// [`Error::TimedOut`], [`Error::BadState`], [`Error::NotSupported`],
    /// [`Error::ConnectionReset`], [`Error::Closed`].
    pub fn recv(&self) -> impl std::future::Future<Output = Result<Message>> + '_ {
        self.recv_any_role()
    }

    /// Receives a message only if one is ready now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when nothing is ready, and the errors of [`Socket::recv`].
    pub fn try_recv(&self) -> Result<Message> {
        self.shared().try_recv_locked(None)
    }

    /// Receives up to `limit` messages into `buf` at once: waits like [`Socket::recv`] for
    /// the first, then appends it and whatever else is ready, in order, up to `limit` in
    /// all. Returns how many it appended: at least 1, or 0 for a `limit` of 0 (at once).
    ///
    /// Why: each receive takes the socket's lock and runs the protocol once; a receiver that
    /// drains a busy socket in batches pays that once per batch (as `recvmmsg` does for
    /// datagrams, or tokio's `mpsc::Receiver::recv_many`).
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`Socket::recv`]: messages leave the socket only in the poll that
    /// completes the call.
    ///
    /// # Errors
    /// As [`Socket::recv`], for the first message only: an error after it (the socket closed
    /// meanwhile) ends the batch, and the next receive returns it.
    pub async fn recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        self.recv_many_any_role(buf, limit).await
    }

    /// Takes up to `limit` messages that are ready now into `buf`, in order, under one lock
    /// of the socket; returns how many (see [`Socket::recv_many`]).
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when nothing is ready (and `limit` is not 0), and the errors of
    /// [`Socket::recv`].
    pub fn try_recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
        self.try_recv_many_any_role(buf, limit)
    }

    /// Receives like [`Socket::recv`], but waits at most until `deadline` (ignoring the receive
    /// timeout option).
    ///
    /// # Cancel safety
    /// Cancel-safe: a message leaves the socket only in the poll that completes the call; a
    /// future dropped before then (a timeout, a losing `select!` branch) took nothing, and
    /// the next receive gets the message.
    ///
    /// # Errors
    /// As [`Socket::recv`], with [`Error::TimedOut`] also for a deadline that had
    /// passed before the call (never [`Error::WouldBlock`]).
    pub async fn recv_until(&self, deadline: Instant) -> Result<Message> {
        let shared = self.shared();
        let mut busy = BusyPoll::default();
        with_deadline(
            &shared.rt,
            Expiry::Deadline,
            || Some(deadline),
            |cx| shared.poll_recv(cx, Some(&mut busy)),
        )
        .await
    }
}

/// Turns a timeout option into a deadline; a zero timeout becomes "now" (one attempt only).
pub(crate) fn deadline_after<R: Runtime>(rt: &R, timeout: Option<Duration>) -> Option<Instant> {
    // No timeout, no clock read: the common case costs nothing.
    let t = timeout?;
    let now = rt.now();
    // About 30 years stands for "forever": safe from Instant overflow.
    Some(
        now.checked_add(t)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30)),
    )
}

/// Where a call's deadline comes from, which decides what a deadline that had passed already
/// at the call's first attempt means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The socket's or context's timeout option: a zero timeout makes the call non-blocking,
    /// [`Error::WouldBlock`] when it cannot complete at once (NNG's `NNG_EAGAIN`).
    Timeout,
    /// A deadline the caller named (`recv_until`, `send_until`, ...): [`Error::TimedOut`]
    /// once it has passed, even before the first attempt, as those calls document.
    ///
    /// Why not [`Error::WouldBlock`] as for a zero timeout: a deadline a few microseconds
    /// away may pass before the call starts on a busy machine, and the caller who asked to
    /// wait until then should see the time-out, not a non-blocking call's answer.
    Deadline,
}

/// Polls `poll` until it is ready, or gives up at the deadline `deadline` returns:
/// [`Error::TimedOut`], or [`Error::WouldBlock`] when a timeout option's deadline had already
/// passed at the first attempt (see [`Expiry`]).
///
/// `deadline` is called once, after the first attempt that could not complete: a call that
/// completes at once reads neither the timeout option (a lock) nor the clock.
pub(crate) fn with_deadline<R: Runtime, T, D, F>(
    rt: &R,
    expiry: Expiry,
    deadline: D,
    poll: F,
) -> WithDeadline<'_, R, D, F>
where
    D: FnOnce() -> Option<Instant>,
    F: FnMut(&mut Context<'_>) -> Poll<Result<T>>,
{
    WithDeadline {
        rt,
        poll,
        deadline: Some(deadline),
        wait: DeadlineWait::new(expiry),
    }
}

/// The future of [`with_deadline`] (and of [`Socket::recv`]): a plain struct rather than an
/// `async fn` around a `poll_fn`, whose state machine moved the closures into the `poll_fn`
/// on the first poll.
pub(crate) struct WithDeadline<'r, R, D, F> {
    rt: &'r R,
    poll: F,
    deadline: Option<D>,
    wait: DeadlineWait,
}

// Nothing in it is pinned: the closures are called through `&mut`, never polled as futures.
impl<R, D, F> Unpin for WithDeadline<'_, R, D, F> {}

impl<R: Runtime, T, D, F> std::future::Future for WithDeadline<'_, R, D, F>
where
    D: FnOnce() -> Option<Instant>,
    F: FnMut(&mut Context<'_>) -> Poll<Result<T>>,
{
    type Output = Result<T>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let Self {
            rt,
            poll,
            deadline,
            wait,
        } = self.get_mut();
        if let Poll::Ready(r) = poll(cx) {
            return Poll::Ready(r);
        }
        wait.poll_expired(*rt, || deadline.take().and_then(|f| f()), cx)
            .map(Err)
    }
}

/// A call's deadline, for a call whose attempt could not complete: read at the first such
/// attempt, then slept on (a call without a deadline waits on).
pub(crate) struct DeadlineWait {
    expiry: Expiry,
    /// The deadline, once read (`Some(None)`: the call has none).
    deadline: Option<Option<Instant>>,
    first: bool,
    sleep: Option<Box<dyn Sleep>>,
}

impl DeadlineWait {
    pub(crate) fn new(expiry: Expiry) -> Self {
        Self {
            expiry,
            deadline: None,
            first: true,
            sleep: None,
        }
    }

    /// After an attempt that could not complete: ready with the error that ends the call
    /// once its deadline has passed (see [`with_deadline`]), otherwise registers `cx` with
    /// the deadline's timer. `deadline` is called at the first such attempt only. Out of line:
    /// the calls that complete at once never come here.
    #[inline(never)]
    pub(crate) fn poll_expired<R: Runtime>(
        &mut self,
        rt: &R,
        deadline: impl FnOnce() -> Option<Instant>,
        cx: &mut Context<'_>,
    ) -> Poll<Error> {
        let Some(deadline) = *self.deadline.get_or_insert_with(deadline) else {
            return Poll::Pending;
        };
        if let Some(e) = deadline_passed(rt.now(), Some(deadline), &mut self.first, self.expiry) {
            return Poll::Ready(e);
        }
        let s = self.sleep.get_or_insert_with(|| rt.sleep_until(deadline));
        match s.poll_sleep(cx) {
            Poll::Ready(()) => Poll::Ready(Error::TimedOut),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The future of [`Socket::send`]: the task's turn ([`Shared::poll_send_turn`]), then
/// attempts until the protocol takes the message or the send timeout passes. One struct,
/// where nested `async fn`s built and moved a state machine per layer on every send.
pub(crate) struct SendCall<'a, R: Runtime, P: SocketCore> {
    socket: &'a Socket<R, P>,
    msg: Option<Message>,
    turn_taken: bool,
    wait: DeadlineWait,
}

impl<R: Runtime, P: SocketCore> Unpin for SendCall<'_, R, P> {}

impl<R: Runtime, P: SocketCore> std::future::Future for SendCall<'_, R, P> {
    type Output = SendResult;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SendResult> {
        let this = self.get_mut();
        let shared = this.socket.shared();
        if !this.turn_taken {
            // The turn comes before the attempt, never after it: a future dropped while it
            // yields has sent nothing.
            std::task::ready!(shared.poll_send_turn(cx));
            this.turn_taken = true;
        }
        let err = match shared.poll_send(&mut this.msg, cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => e,
            Poll::Pending => {
                let socket = this.socket;
                let timeout = || deadline_after(&shared.rt, socket.send_timeout());
                std::task::ready!(this.wait.poll_expired(&shared.rt, timeout, cx))
            }
        };
        Poll::Ready(Err(Unsent::new(err, this.msg.take().unwrap_or_default())))
    }
}

/// Checks `deadline` after an attempt that could not complete: [`Error::WouldBlock`] when a
/// timeout option's deadline had passed already at the first attempt (a non-blocking call,
/// as NNG's zero timeout), otherwise [`Error::TimedOut`] once it has passed; `None` while
/// time is left.
fn deadline_passed(
    now: Instant,
    deadline: Option<Instant>,
    first: &mut bool,
    expiry: Expiry,
) -> Option<Error> {
    let expired = deadline.is_some_and(|d| now >= d);
    let was_first = std::mem::replace(first, false);
    expired.then_some(if was_first && expiry == Expiry::Timeout {
        Error::WouldBlock
    } else {
        Error::TimedOut
    })
}
