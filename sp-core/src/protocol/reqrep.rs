//! REQ and REP, the cooked request/reply roles (SP-PROTOCOLS.md section 4.4,
//! `rfc/sp-request-reply-01` in nanomsg/nanomsg).
//!
//! A request travels as `[request ID] body`; each REP-side device hop prepends a pipe word
//! (see [`crate::backtrace`]). REP sends the whole stack back in front of its reply; REQ strips
//! the request ID and delivers the rest.

use std::collections::VecDeque;
use std::mem;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backtrace::{read_word, RequestId, RequestIdSequence, DEFAULT_MAX_TTL, WORD_LEN};
use crate::protocol::shared::{
    deadline_after, forward_to_cooked_replier, refuse_wrong_peer, CookedReplier, PipeSet,
    TimerTable,
};
use crate::protocol::{Event, Input, PipeCloseReason, Protocol, RecvError, SendError, Transmit};
use crate::{Message, PipeId, ProtocolId};

/// How long REQ waits for a reply before sending the request again: 60 s, as in NNG, mangos,
/// nanomsg and the draft RFC.
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// How many received requests REP holds before it pauses the pipes that feed it.
pub const DEFAULT_RECV_BUFFER: usize = 128;

// [`Rep::set_max_ttl`] returns it, so it is reachable from this module too.
pub use crate::protocol::ConfigError;

/// Settings for [`Req`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqConfig {
    /// How long to wait for a reply before resending the request with the same ID.
    /// Default: `Some(60 s)`. `None` or a zero duration disables resending; then losing the pipe
    /// that carries a request fails it with [`RecvError::ConnectionReset`].
    pub resend_interval: Option<Duration>,
    /// Seed for the request ID sequence. Default: 0. Give every socket its own seed.
    pub seed: u64,
}

impl Default for ReqConfig {
    fn default() -> Self {
        Self {
            resend_interval: Some(DEFAULT_RESEND_INTERVAL),
            seed: 0,
        }
    }
}

/// The cooked REQ role (SP type 48): sends requests and receives the matching replies.
///
/// Follows SP-PROTOCOLS.md section 4.4.2 (NNG's `req0` without contexts). Each request gets
/// a fresh [`RequestId`] from a seeded sequence; that ID is the whole header.
///
/// ```text
///            send: new ID, written to the first writable pipe, resend timer armed
///  +------+ ------------------------------------------------> +---------+
///  | Idle |                                                   | Waiting | --+ resend timer fires,
///  +------+ <---+                                             +---------+   | or its pipe closes
///     ^         | recv -> Err(ConnectionReset)                  |   |   ^   | (retry on): same ID
///     |     +-------+        its pipe closes (retry off)        |   |   +---+ on the next pipe
///     |     | Reset | <-----------------------------------------+   |
///     |     +-------+                                               | reply with the current ID
///     |     +---------+                                             |
///     +---- | Replied | <-------------------------------------------+
///  recv->Ok +---------+
///
///  send in any state cancels the current request first (a later reply to it is dropped).
///  recv in Idle: BadState. recv in Waiting: WouldBlock.
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than REP is refused), [`Input::PipeRemoved`]
/// (the request it carried is resent at once, or fails when resending is off),
/// [`Input::PipeWritable`] (the pipe rejoins the tail of the ready list; a request waiting for
/// a pipe goes out), [`Input::Received`] (a reply: shorter than 4 bytes kicks the pipe, a
/// stale or unknown ID is dropped).
///
/// **Events.** [`Event::Readable`] when a reply or a connection reset is ready for
/// [`Protocol::recv`]; [`Event::Writable`] when a pipe becomes writable while none was, so a
/// send that returned `WouldBlock` can be retried; [`Event::ClosePipe`] for a wrong peer or a
/// garbage reply.
///
/// **Timers.** One: the resend deadline, armed at `now + resend_interval` each time the request
/// is written. When it fires, the same request (same ID) goes to the next writable pipe, or to
/// the first pipe that becomes writable.
///
/// Pipes are used round-robin in the order they became writable. REQ never pauses a pipe.
#[derive(Debug)]
pub struct Req {
    resend_interval: Option<Duration>,
    ids: RequestIdSequence,
    pipes: PipeSet,
    ctx: ReqContext,
    timers: TimerTable<{ ReqTimer::COUNT }>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Req {
    /// Creates a REQ socket core with no pipes.
    pub fn new(config: ReqConfig) -> Self {
        Self {
            resend_interval: normalize_interval(config.resend_interval),
            ids: RequestIdSequence::new(config.seed),
            pipes: PipeSet::default(),
            ctx: ReqContext::default(),
            timers: TimerTable::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Sets the resend interval. `None` or zero disables resending.
    ///
    /// A new value is used from the next time a request is written; disabling also disarms the
    /// current request's timer.
    pub fn set_resend_interval(&mut self, interval: Option<Duration>) {
        self.resend_interval = normalize_interval(interval);
        if self.resend_interval.is_none() {
            self.timers.set(ReqTimer::Resend as usize, None);
        }
    }

    /// Returns the resend interval, or `None` when resending is disabled.
    pub fn resend_interval(&self) -> Option<Duration> {
        self.resend_interval
    }

    /// Returns the ID of the request waiting for its reply, if any.
    pub fn request_id(&self) -> Option<RequestId> {
        match &self.ctx.state {
            ReqState::Waiting(request) => Some(request.id),
            _ => None,
        }
    }

    /// Writes the waiting request to the next writable pipe if it is not on one.
    fn flush(&mut self, now: Instant) {
        let ReqState::Waiting(request) = &mut self.ctx.state else {
            return;
        };
        if request.pipe.is_some() {
            return;
        }
        let Some(pipe) = self.pipes.take_next() else {
            return;
        };
        request.pipe = Some(pipe);
        let msg = Message::with_header(request.id.to_bytes().to_vec(), request.body.clone());
        self.transmits.push_back(Transmit { pipe, msg });
        let deadline = self
            .resend_interval
            .and_then(|interval| deadline_after(now, interval));
        self.timers.set(ReqTimer::Resend as usize, deadline);
    }

    /// Reacts to the loss of `pipe` (closed by the peer or kicked by us).
    fn handle_pipe_lost(&mut self, pipe: PipeId, now: Instant) {
        let ReqState::Waiting(request) = &mut self.ctx.state else {
            return;
        };
        if request.pipe != Some(pipe) {
            return;
        }
        self.timers.set(ReqTimer::Resend as usize, None);
        if self.resend_interval.is_some() {
            request.pipe = None;
            self.flush(now);
        } else {
            self.ctx.state = ReqState::Reset;
            self.events.push_back(Event::Readable);
        }
    }

    fn handle_reply(&mut self, pipe: PipeId, msg: Message, now: Instant) {
        let body = msg.to_contiguous();
        let Some(id) = read_word(&body) else {
            // NNG kicks a peer that sends a reply without room for a request ID.
            self.events.push_back(Event::ClosePipe {
                pipe,
                reason: PipeCloseReason::MalformedHeader,
            });
            self.pipes.remove(pipe);
            self.handle_pipe_lost(pipe, now);
            return;
        };
        // Only the current request's ID matches; stale, unknown and repeated replies drop.
        let ReqState::Waiting(request) = &self.ctx.state else {
            return;
        };
        if request.id.get() != id {
            return;
        }
        self.timers.set(ReqTimer::Resend as usize, None);
        self.ctx.state = ReqState::Replied(body.slice(WORD_LEN..));
        self.events.push_back(Event::Readable);
    }
}

impl Protocol for Req {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::REQ
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, now: Instant) {
        let was_writable = self.pipes.has_writable();
        match input {
            Input::PipeAdded { pipe, peer } => {
                if refuse_wrong_peer(self.peer_protocol(), pipe, peer, &mut self.events) {
                    return;
                }
                if self.pipes.insert(pipe) {
                    self.flush(now);
                }
            }
            Input::PipeRemoved { pipe } => {
                if self.pipes.remove(pipe) {
                    self.handle_pipe_lost(pipe, now);
                }
            }
            Input::PipeWritable { pipe } => {
                if self.pipes.set_writable(pipe) {
                    self.flush(now);
                }
            }
            Input::Received { pipe, msg } => {
                if self.pipes.contains(pipe) {
                    self.handle_reply(pipe, msg, now);
                }
            }
        }
        if !was_writable && self.pipes.has_writable() {
            self.events.push_back(Event::Writable);
        }
    }

    /// Resends the waiting request (same ID) once its resend deadline has passed.
    fn handle_timeout(&mut self, now: Instant) {
        if !self.timers.take_expired(ReqTimer::Resend as usize, now) {
            return;
        }
        if let ReqState::Waiting(request) = &mut self.ctx.state {
            request.pipe = None;
            self.flush(now);
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe)
    }

    /// Cancels the current request, then sends `msg`'s body as a new request.
    ///
    /// The header of `msg` is replaced by the new request ID. The request is written to the
    /// first writable pipe and the resend timer is armed.
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no pipe is writable. The previous request is cancelled
    /// anyway (as in NNG); no ID is used and nothing is stored, so retry after
    /// [`Event::Writable`].
    fn send(&mut self, msg: Message, now: Instant) -> Result<(), SendError> {
        self.ctx.state = ReqState::Idle;
        self.timers.set(ReqTimer::Resend as usize, None);
        if !self.pipes.has_writable() {
            return Err(SendError::WouldBlock);
        }
        let request = Request {
            id: self.ids.next_id(),
            body: msg.body,
            pipe: None,
        };
        self.ctx.state = ReqState::Waiting(request);
        self.flush(now);
        Ok(())
    }

    /// Returns the reply to the current request, without its request ID.
    ///
    /// # Errors
    /// [`RecvError::BadState`] when no request is outstanding (including after the reply or a
    /// reset was returned), [`RecvError::WouldBlock`] while waiting for the reply, and
    /// [`RecvError::ConnectionReset`] once when the request's pipe closed with resending off.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        match mem::take(&mut self.ctx.state) {
            ReqState::Idle => Err(RecvError::BadState),
            waiting @ ReqState::Waiting(_) => {
                self.ctx.state = waiting;
                Err(RecvError::WouldBlock)
            }
            ReqState::Replied(body) => Ok(Message::new(body)),
            ReqState::Reset => Err(RecvError::ConnectionReset),
        }
    }
}

/// Settings for [`Rep`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepConfig {
    /// The most backtrace words (device hops plus the request ID) an accepted request may
    /// carry. Default: 8. Valid: 1..=255; [`Rep::new`] treats 0 as 1.
    pub max_ttl: u8,
    /// How many received requests may wait for [`Protocol::recv`] before the pipes feeding
    /// them are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for RepConfig {
    fn default() -> Self {
        Self {
            max_ttl: DEFAULT_MAX_TTL,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The cooked REP role (SP type 49): receives requests and sends one reply to each.
///
/// Follows SP-PROTOCOLS.md section 4.4.3 (NNG's `rep0` without contexts). Receiving a request
/// saves its backtrace and pipe; the next send puts that backtrace in front of the reply and
/// writes it to that pipe.
///
/// ```text
///              recv: saves backtrace + pipe
///  +------+ -----------------------------> +-------+ --+ recv: the newer request
///  | Idle |                                | Saved |   | replaces the saved one
///  +------+ <----------------------------- +-------+ <-+
///     |     send: Ok (dropped if the pipe     |
///     |     is gone)                          | send while the pipe is busy:
///     +--> send: BadState                     +-> WouldBlock, stays Saved
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than REQ is refused), [`Input::PipeRemoved`],
/// [`Input::PipeWritable`], [`Input::Received`]: the backtrace is parsed with
/// [`split_backtrace`](crate::backtrace::split_backtrace); more than `max_ttl` words drops the
/// request, a body that ends before the bottom word kicks the pipe.
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ResumeReceiving`] for paused pipes once the queue drains below `recv_buffer`;
/// [`Event::Writable`] when the saved request's pipe becomes writable or goes away, so a reply
/// that returned `WouldBlock` can be retried; [`Event::ClosePipe`] for a wrong peer or a
/// garbage request.
///
/// **Timers.** None.
///
/// Requests wait in one FIFO in arrival order. When it holds `recv_buffer` requests, each pipe
/// that delivers another one is paused until the queue drains.
#[derive(Debug)]
pub struct Rep {
    inner: CookedReplier,
}

impl Rep {
    /// Creates a REP socket core with no pipes.
    pub fn new(config: RepConfig) -> Self {
        let inner = CookedReplier::new(ProtocolId::REP, config.max_ttl, config.recv_buffer);
        Self { inner }
    }

    /// Sets the most backtrace words an accepted request may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.inner.set_max_ttl(max_ttl)
    }

    /// Returns the most backtrace words an accepted request may carry.
    pub fn max_ttl(&self) -> u8 {
        self.inner.max_ttl()
    }

    /// Returns true when a received request is waiting for its reply.
    pub fn has_saved_request(&self) -> bool {
        self.inner.has_saved()
    }
}

impl Protocol for Rep {
    forward_to_cooked_replier!();
}

/// REQ's timers, indexing its [`TimerTable`].
#[derive(Clone, Copy, Debug)]
enum ReqTimer {
    /// Resend the waiting request.
    Resend = 0,
}

impl ReqTimer {
    const COUNT: usize = 1;
}

/// The per-request state of REQ, kept apart from the socket so that contexts can be added.
#[derive(Debug, Default)]
struct ReqContext {
    state: ReqState,
}

#[derive(Debug, Default)]
enum ReqState {
    /// No request outstanding.
    #[default]
    Idle,
    /// A request waits for its reply.
    Waiting(Request),
    /// The reply arrived; the body holds it without the request ID.
    Replied(Bytes),
    /// The request's pipe closed with resending disabled.
    Reset,
}

#[derive(Debug)]
struct Request {
    id: RequestId,
    body: Bytes,
    /// The pipe the request was last written to; `None` while it waits for a writable pipe.
    pipe: Option<PipeId>,
}

fn normalize_interval(interval: Option<Duration>) -> Option<Duration> {
    interval.filter(|d| !d.is_zero())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    fn drain_tx(proto: &mut impl Protocol) -> Vec<Transmit> {
        std::iter::from_fn(|| proto.poll_transmit()).collect()
    }

    fn drain_ev(proto: &mut impl Protocol) -> Vec<Event> {
        std::iter::from_fn(|| proto.poll_event()).collect()
    }

    fn reply_to(tx: &Transmit, body: &'static [u8]) -> Input {
        Input::Received {
            pipe: tx.pipe,
            msg: Message::with_header(tx.msg.header.clone(), body),
        }
    }

    #[test]
    fn req_recv_before_send_is_bad_state() {
        let mut req = Req::new(ReqConfig::default());
        assert_eq!(req.recv(Instant::now()), Err(RecvError::BadState));
    }

    #[test]
    fn req_send_without_pipe_would_block_and_uses_no_id() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig {
            seed: 3,
            ..ReqConfig::default()
        });
        assert_eq!(
            req.send(Message::new(&b"x"[..]), now),
            Err(SendError::WouldBlock)
        );
        assert_eq!(req.recv(now), Err(RecvError::BadState));
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        assert_eq!(drain_ev(&mut req), vec![Event::Writable]);
        req.send(Message::new(&b"x"[..]), now).unwrap();
        let first = RequestIdSequence::new(3).next_id();
        assert_eq!(req.request_id(), Some(first));
        assert_eq!(drain_tx(&mut req)[0].msg.header[..], first.to_bytes());
    }

    #[test]
    fn req_matches_reply_and_strips_id() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"ping"[..]), now).unwrap();
        let tx = drain_tx(&mut req).remove(0);
        assert_eq!(req.recv(now), Err(RecvError::WouldBlock));
        assert_eq!(req.poll_timeout(), Some(now + DEFAULT_RESEND_INTERVAL));
        drain_ev(&mut req);
        req.handle(reply_to(&tx, b"pong"), now);
        assert_eq!(drain_ev(&mut req), vec![Event::Readable]);
        assert_eq!(req.poll_timeout(), None);
        assert_eq!(req.recv(now).unwrap().body, &b"pong"[..]);
        assert_eq!(req.recv(now), Err(RecvError::BadState));
        req.handle(reply_to(&tx, b"again"), now);
        assert!(drain_ev(&mut req).is_empty(), "a repeated reply is dropped");
    }

    #[test]
    fn req_kicks_reply_shorter_than_an_id() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"ping"[..]), now).unwrap();
        drain_ev(&mut req);
        req.handle(
            Input::Received {
                pipe: p(1),
                msg: Message::new(&b"\x80\x00"[..]),
            },
            now,
        );
        assert_eq!(
            drain_ev(&mut req),
            vec![Event::ClosePipe {
                pipe: p(1),
                reason: PipeCloseReason::MalformedHeader
            }]
        );
        assert!(!req.is_receiving(p(1)));
    }

    #[test]
    fn req_refuses_wrong_peer() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PULL,
            },
            now,
        );
        let reason = PipeCloseReason::IncompatiblePeer(ProtocolId::PULL);
        assert_eq!(
            drain_ev(&mut req),
            vec![Event::ClosePipe { pipe: p(1), reason }]
        );
        assert_eq!(
            req.send(Message::new(&b"x"[..]), now),
            Err(SendError::WouldBlock)
        );
    }

    #[test]
    fn req_early_timeout_is_a_no_op() {
        let now = Instant::now();
        let mut req = Req::new(ReqConfig::default());
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"x"[..]), now).unwrap();
        drain_tx(&mut req);
        req.handle(Input::PipeWritable { pipe: p(1) }, now);
        req.handle_timeout(now + Duration::from_secs(59));
        assert!(drain_tx(&mut req).is_empty());
        req.handle_timeout(now + DEFAULT_RESEND_INTERVAL);
        assert_eq!(drain_tx(&mut req).len(), 1);
    }

    #[test]
    fn req_timer_resend_waits_for_a_writable_pipe() {
        let now = Instant::now();
        let later = now + Duration::from_millis(10);
        let mut req = Req::new(ReqConfig {
            resend_interval: Some(Duration::from_millis(10)),
            seed: 1,
        });
        req.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REP,
            },
            now,
        );
        req.send(Message::new(&b"x"[..]), now).unwrap();
        let first = drain_tx(&mut req).remove(0);
        req.handle_timeout(later);
        assert!(drain_tx(&mut req).is_empty(), "pipe 1 is still busy");
        assert_eq!(req.poll_timeout(), None);
        req.handle(
            Input::PipeAdded {
                pipe: p(2),
                peer: ProtocolId::REP,
            },
            later,
        );
        let resent = drain_tx(&mut req).remove(0);
        assert_eq!(resent.pipe, p(2));
        assert_eq!(resent.msg, first.msg, "same ID, same body");
        assert_eq!(req.poll_timeout(), Some(later + Duration::from_millis(10)));
    }

    #[test]
    fn req_zero_resend_interval_disables_resend() {
        let mut req = Req::new(ReqConfig {
            resend_interval: Some(Duration::ZERO),
            seed: 0,
        });
        assert_eq!(req.resend_interval(), None);
        req.set_resend_interval(Some(Duration::from_millis(5)));
        assert_eq!(req.resend_interval(), Some(Duration::from_millis(5)));
    }

    #[test]
    fn rep_send_before_recv_is_bad_state() {
        let mut rep = Rep::new(RepConfig::default());
        assert_eq!(
            rep.send(Message::new(&b"x"[..]), Instant::now()),
            Err(SendError::BadState)
        );
    }

    #[test]
    fn rep_returns_backtrace_with_reply() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig::default());
        rep.handle(
            Input::PipeAdded {
                pipe: p(7),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let wire = Message::new(&b"\x00\x00\x01\x2b\x80\x00\x03\x37Hello"[..]);
        rep.handle(
            Input::Received {
                pipe: p(7),
                msg: wire,
            },
            now,
        );
        assert_eq!(drain_ev(&mut rep), vec![Event::Readable]);
        let req = rep.recv(now).unwrap();
        assert_eq!(req, Message::new(&b"Hello"[..]));
        rep.send(Message::new(&b"World"[..]), now).unwrap();
        let tx = drain_tx(&mut rep);
        assert_eq!(tx[0].pipe, p(7));
        assert_eq!(
            tx[0].msg.to_contiguous(),
            &b"\x00\x00\x01\x2b\x80\x00\x03\x37World"[..]
        );
        assert_eq!(
            rep.send(Message::new(&b"again"[..]), now),
            Err(SendError::BadState)
        );
    }

    #[test]
    fn rep_busy_pipe_keeps_saved_request() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig::default());
        rep.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let request = Message::new(&b"\x80\x00\x00\x01a"[..]);
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request.clone(),
            },
            now,
        );
        rep.recv(now).unwrap();
        rep.send(Message::new(&b"1"[..]), now).unwrap();
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request,
            },
            now,
        );
        rep.recv(now).unwrap();
        drain_ev(&mut rep);
        assert_eq!(
            rep.send(Message::new(&b"2"[..]), now),
            Err(SendError::WouldBlock)
        );
        assert!(rep.has_saved_request());
        rep.handle(Input::PipeWritable { pipe: p(1) }, now);
        assert_eq!(drain_ev(&mut rep), vec![Event::Writable]);
        rep.send(Message::new(&b"2"[..]), now).unwrap();
        assert_eq!(drain_tx(&mut rep).len(), 2);
    }

    #[test]
    fn rep_blocked_reply_wakes_when_pipe_goes_away() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig::default());
        rep.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let request = Message::new(&b"\x80\x00\x00\x01a"[..]);
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request.clone(),
            },
            now,
        );
        rep.recv(now).unwrap();
        rep.send(Message::new(&b"1"[..]), now).unwrap();
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: request,
            },
            now,
        );
        rep.recv(now).unwrap();
        assert_eq!(
            rep.send(Message::new(&b"2"[..]), now),
            Err(SendError::WouldBlock)
        );
        drain_ev(&mut rep);
        rep.handle(Input::PipeRemoved { pipe: p(1) }, now);
        assert_eq!(drain_ev(&mut rep), vec![Event::Writable]);
        assert_eq!(rep.send(Message::new(&b"2"[..]), now), Ok(()));
        assert_eq!(drain_tx(&mut rep).len(), 1, "only the first reply went out");
    }

    #[test]
    fn rep_max_ttl_rejects_zero() {
        let mut rep = Rep::new(RepConfig::default());
        assert_eq!(rep.set_max_ttl(0), Err(ConfigError::MaxTtlOutOfRange(0)));
        assert_eq!(rep.max_ttl(), DEFAULT_MAX_TTL);
        rep.set_max_ttl(255).unwrap();
        assert_eq!(rep.max_ttl(), 255);
    }

    #[test]
    fn rep_drops_over_ttl_without_kicking() {
        let now = Instant::now();
        let mut rep = Rep::new(RepConfig {
            max_ttl: 2,
            ..RepConfig::default()
        });
        rep.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::REQ,
            },
            now,
        );
        let wire = Message::new(&b"\x00\x00\x00\x01\x00\x00\x00\x02\x80\x00\x00\x01x"[..]);
        rep.handle(
            Input::Received {
                pipe: p(1),
                msg: wire,
            },
            now,
        );
        assert!(drain_ev(&mut rep).is_empty());
        assert!(rep.is_receiving(p(1)));
    }
}
