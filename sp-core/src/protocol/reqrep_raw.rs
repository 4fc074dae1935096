//! XREQ and XREP, the raw request/reply roles (SP-PROTOCOLS.md sections 4.4.1, 5.1 and 5.3;
//! NNG's `req0` and `rep0` raw modes).
//!
//! Devices are built from them: a REQ/REP broker is an [`XRep`] facing the clients and an
//! [`XReq`] facing the servers, moving every message, header included, unchanged from one to
//! the other (section 5.2). The routing lives in the header: [`XRep`] pushes the ID of the pipe
//! a request came in on and pops it again to route the reply; [`XReq`] neither adds nor
//! checks anything.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::backtrace::{split_backtrace, BacktraceError, DEFAULT_MAX_TTL};
use crate::protocol::shared::{
    recv_queue_methods, refuse_wrong_peer, BacktraceCore, PipeSet, RecvQueue, Returned,
};
use crate::protocol::{ConfigError, Event, Input, Protocol, RecvError, SendError, Transmit};
use crate::stats::{CoreStats, DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How many received messages the raw roles hold before they pause the pipes that feed them.
pub const DEFAULT_RECV_BUFFER: usize = 128;

/// How many replies wait for one busy pipe of an [`XRep`] before further ones are dropped:
/// 64, as in NNG.
pub const XREP_PIPE_QUEUE_LEN: usize = 64;

/// The most backtrace words a reply to an [`XReq`] may carry. Replies are not TTL-checked
/// (section 5.3); this only bounds the parser, at the largest TTL any implementation allows.
const XREQ_MAX_STACK: u8 = u8::MAX;

/// Settings for [`XReq`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XReqConfig {
    /// How many received replies may wait for [`Protocol::recv`] before the pipes feeding
    /// them are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for XReqConfig {
    fn default() -> Self {
        Self {
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The raw REQ role (XREQ, SP type 48): the server-facing side of a device. It load-balances
/// messages over its REP peers with the header the application gives, and hands every reply
/// up with its whole backtrace in the header.
///
/// Follows SP-PROTOCOLS.md section 5.1 with NNG's rules (`req0` raw). It keeps no request
/// state: no IDs, no retries, any number of requests in flight.
///
/// ```text
///  +-------+  send: header + body as given, to the first writable pipe (round-robin);
///  | Ready | ---+       no writable pipe: WouldBlock, retry after Event::Writable
///  +-------+ <--+  Received: backtrace words (through the bottom word) -> header, queued
/// ```
///
/// * **Send.** `msg.header` and `msg.body` go out unchanged, back to back, to the pipe at the
///   front of the ready list, which then turns busy until [`Input::PipeWritable`]. This is the
///   round-robin of PUSH and REQ, with back-pressure when every pipe is busy.
/// * **Receive.** The words up to and including the first one with bit 31 set move from the
///   body into the header (NNG shows the whole stack; mangos and nanomsg only the first word,
///   which is the same on the wire). A reply that ends before a bottom word is garbage and
///   kicks its pipe, as NNG does. Replies are not TTL-checked.
///
/// * **Returned messages.** What a dying pipe hands back unsent ([`Input::Unsent`]) is
///   re-routed as PUSH does: unchanged, to the next writable pipe, in the order it came back,
///   before any new send (which returns `WouldBlock` while some still wait for a pipe).
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than REP is refused),
/// [`Input::PipeRemoved`], [`Input::PipeWritable`], [`Input::Received`], [`Input::Unsent`].
///
/// **Events.** [`Event::Writable`] when `send` may succeed again: a pipe becomes writable
/// while none was and no returned message waits; [`Event::Readable`] when the receive queue
/// stops being empty; [`Event::ResumeReceiving`] once it drains to half of `recv_buffer`;
/// [`Event::ClosePipe`] for a wrong peer or garbage.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::TtlExceeded`] for a reply whose stack is
/// deeper than any TTL allows (more than 255 words), [`DropReason::QueueShrunk`] for replies
/// discarded by [`Protocol::set_recv_buffer`], [`DropReason::PipeClosed`] for a message handed
/// back by a pipe XREQ does not know. `send_queued` counts returned messages waiting for a
/// pipe.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct XReq {
    pipes: PipeSet,
    /// Messages dying pipes handed back, waiting for a writable pipe.
    returned: Returned,
    queue: RecvQueue<(Bytes, Bytes)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    drops: DropCounts,
}

impl XReq {
    /// Creates an XREQ socket core with no pipes.
    pub fn new(config: XReqConfig) -> Self {
        Self {
            pipes: PipeSet::default(),
            returned: Returned::default(),
            queue: RecvQueue::new(config.recv_buffer),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounts::default(),
        }
    }

    /// Returns true when [`Protocol::send`] would take a message now.
    fn can_send(&self) -> bool {
        self.returned.is_empty() && self.pipes.has_writable()
    }

    fn handle_reply(&mut self, pipe: PipeId, msg: Message) {
        let mut body = msg.into_contiguous();
        match split_backtrace(&mut body, XREQ_MAX_STACK) {
            Ok(backtrace) => {
                if self.queue.push(pipe, (backtrace, body)) {
                    self.events.push_back(Event::Readable);
                }
            }
            // A stack deeper than any TTL allows cannot be a reply to anything we sent.
            Err(BacktraceError::TooManyHops { .. }) => {
                self.drops.record(DropReason::TtlExceeded);
            }
            Err(BacktraceError::NoBottom) => {
                let reason = crate::protocol::PipeCloseReason::MalformedHeader;
                self.events.push_back(Event::ClosePipe { pipe, reason });
                self.pipes.remove(pipe);
                self.queue.forget_pipe(pipe);
            }
        }
    }
}

impl Protocol for XReq {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::REQ
    }

    fn is_raw(&self) -> bool {
        true
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let could_send = self.can_send();
        match input {
            Input::PipeAdded { pipe, peer } => {
                if !refuse_wrong_peer(self.peer_protocol(), pipe, peer, &mut self.events) {
                    self.pipes.insert(pipe);
                }
            }
            Input::PipeRemoved { pipe } => {
                self.pipes.remove(pipe);
                self.queue.forget_pipe(pipe);
            }
            Input::PipeWritable { pipe } => {
                self.pipes.set_writable(pipe);
            }
            Input::Received { pipe, msg } => {
                if self.pipes.contains(pipe) {
                    self.handle_reply(pipe, msg);
                }
            }
            Input::Unsent { pipe, msg } => {
                self.returned
                    .take(&mut self.pipes, &mut self.drops, pipe, msg);
            }
        }
        self.returned.flush(&mut self.pipes, &mut self.transmits);
        if !could_send && self.can_send() {
            self.events.push_back(Event::Writable);
        }
    }

    /// Does nothing: XREQ has no timers.
    fn handle_timeout(&mut self, _now: Instant) {}

    #[inline]
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    #[inline]
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(pipe) && !self.queue.is_paused(pipe)
    }

    /// Returns true when `send` would take a message now: nothing handed back by a dying pipe
    /// waits to go first, and a pipe is writable.
    #[inline]
    fn is_writable(&self) -> bool {
        self.returned.is_empty() && self.pipes.has_writable()
    }

    /// Writes `msg`, header and body unchanged, to the first writable pipe ([`Message::pipe`]
    /// is ignored).
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no pipe is writable, or messages handed back by a dying
    /// pipe still wait for one; retry after [`Event::Writable`].
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        if !self.returned.is_empty() {
            return Err(SendError::WouldBlock);
        }
        let pipe = self.pipes.take_next().ok_or(SendError::WouldBlock)?;
        let msg = Message::with_header(msg.header, msg.body);
        self.transmits.push_back(Transmit { pipe, msg });
        Ok(())
    }

    /// Takes the oldest reply, its backtrace (through the bottom word) in the header and
    /// [`Message::pipe`] naming the pipe it came from.
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (pipe, (backtrace, body)) = self
            .queue
            .pop(&mut self.events)
            .ok_or(RecvError::WouldBlock)?;
        Ok(Message::with_header(backtrace, body).with_pipe(pipe))
    }

    /// Returns the counters; `send_queued` counts the returned messages waiting for a pipe.
    fn stats(&self) -> CoreStats {
        CoreStats {
            dropped: self.drops,
            recv_queued: self.queue.len(),
            send_queued: self.returned.len(),
            ..CoreStats::default()
        }
    }

    recv_queue_methods!(no_stats);
}

/// Settings for [`XRep`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XRepConfig {
    /// The most backtrace words (device hops plus the request ID) an accepted request may
    /// carry, not counting the pipe word this socket adds. Default: 8. Valid: 1..=255;
    /// [`XRep::new`] treats 0 as 1.
    pub max_ttl: u8,
    /// How many received requests may wait for [`Protocol::recv`] before the pipes feeding
    /// them are paused. Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for XRepConfig {
    fn default() -> Self {
        Self {
            max_ttl: DEFAULT_MAX_TTL,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The raw REP role (XREP, SP type 49): the client-facing side of a device, which records
/// each request's pipe in its header and routes replies by it.
///
/// Follows SP-PROTOCOLS.md sections 5.1 and 5.3 (NNG's `rep0` raw mode; the same rules as
/// [`XRespondent`](crate::protocol::survey::XRespondent)).
///
/// ```text
///  +-------+  Received on pipe P: header = [P] + backtrace, queued for recv (TTL checked)
///  | Ready | ---+
///  +-------+ <--+  send: pop the first header word as the pipe; the rest goes out (never
///                  blocks; an unknown or full pipe, or a missing header, drops the message)
/// ```
///
/// * **Receive.** The backtrace is parsed as REP does: more than `max_ttl` words (the pipe
///   word not counted) drops the request and keeps the pipe, since devices produce such
///   traffic legitimately; a body that ends before the bottom word kicks the pipe (NNG). The
///   ID of the pipe it arrived on is then pushed in front, so the header holds
///   `[pipe, hops..., request ID]` (`test_req_recv_garbage` sees 8 bytes for a direct REQ).
/// * **Send.** The first header word names the pipe and is removed; the rest of the header
///   and the body are sent there. A header shorter than 4 bytes (`test_xrep_send_no_header`)
///   or a word that is not a pipe ID drops the message as [`DropReason::MalformedHeader`], an
///   unknown pipe as [`DropReason::NoRoute`], and the send succeeds. A busy pipe queues up to
///   [`XREP_PIPE_QUEUE_LEN`] messages and then drops ([`DropReason::SendQueueFull`],
///   [`XRep::dropped_sends`]), so one slow client never holds up the others.
///
/// **Counters** ([`Protocol::stats`]): those above, [`DropReason::TtlExceeded`] for a request
/// over `max_ttl`, [`DropReason::PipeClosed`] for replies still queued when their pipe went
/// away or handed back unsent ([`Input::Unsent`]) and [`DropReason::QueueShrunk`] for requests discarded by
/// [`Protocol::set_recv_buffer`].
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than REQ is refused),
/// [`Input::PipeRemoved`], [`Input::PipeWritable`], [`Input::Received`].
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ResumeReceiving`] once it drains to half of `recv_buffer`; [`Event::ClosePipe`] for a
/// wrong peer or garbage. Never [`Event::Writable`]: sending never blocks.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct XRep {
    core: BacktraceCore,
}

impl XRep {
    /// Creates an XREP socket core with no pipes.
    pub fn new(config: XRepConfig) -> Self {
        Self {
            core: BacktraceCore::new(
                ProtocolId::REQ,
                config.max_ttl,
                config.recv_buffer,
                XREP_PIPE_QUEUE_LEN,
            ),
        }
    }
}

crate::protocol::shared::raw_replier!(XRep, ProtocolId::REP, "request", "reply");

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::testing::{add, drain_ev, drain_tx, p};
    use crate::protocol::PipeCloseReason;

    fn received(proto: &mut impl Protocol, pipe: u32, bytes: &[u8]) {
        let msg = Message::new(bytes.to_vec());
        proto.handle(Input::Received { pipe: p(pipe), msg }, Instant::now());
    }

    #[test]
    fn xreq_round_robins_header_as_given_and_blocks_when_busy() {
        let now = Instant::now();
        let mut xreq = XReq::new(XReqConfig::default());
        assert!(xreq.is_raw());
        add(&mut xreq, 1, ProtocolId::REP);
        add(&mut xreq, 2, ProtocolId::REP);
        assert_eq!(drain_ev(&mut xreq), vec![Event::Writable]);

        for body in ["a", "b"] {
            let msg = Message::with_header(&b"\x80\x00\x00\x01"[..], body);
            xreq.send(msg, now).unwrap();
        }
        assert_eq!(
            xreq.send(Message::from("c"), now),
            Err(SendError::WouldBlock)
        );
        assert_eq!(
            drain_tx(&mut xreq),
            vec![
                (1, Bytes::from_static(b"\x80\x00\x00\x01a")),
                (2, Bytes::from_static(b"\x80\x00\x00\x01b")),
            ]
        );
        xreq.handle(Input::PipeWritable { pipe: p(2) }, now);
        assert_eq!(drain_ev(&mut xreq), vec![Event::Writable]);
        xreq.send(Message::from("c"), now).unwrap();
        assert_eq!(drain_tx(&mut xreq), vec![(2, Bytes::from("c"))]);
    }

    #[test]
    fn xreq_recv_shows_whole_stack_and_kicks_reply_without_bottom() {
        let now = Instant::now();
        let mut xreq = XReq::new(XReqConfig::default());
        add(&mut xreq, 1, ProtocolId::REP);
        drain_ev(&mut xreq);

        received(&mut xreq, 1, b"\x00\x00\x00\x07\x80\x00\x00\x05reply");
        let msg = xreq.recv(now).unwrap();
        assert_eq!(&msg.header[..], b"\x00\x00\x00\x07\x80\x00\x00\x05");
        assert_eq!(msg.body, "reply");

        received(&mut xreq, 1, b"\x00\x00\x00\x07junk");
        let reason = PipeCloseReason::MalformedHeader;
        assert_eq!(
            drain_ev(&mut xreq),
            vec![Event::Readable, Event::ClosePipe { pipe: p(1), reason }]
        );
        assert!(!xreq.is_receiving(p(1)));
    }

    #[test]
    fn xrep_prepends_pipe_and_routes_by_it() {
        let now = Instant::now();
        let mut xrep = XRep::new(XRepConfig::default());
        add(&mut xrep, 5, ProtocolId::REQ);
        received(&mut xrep, 5, b"\x80\x00\x00\x09hi");
        let msg = xrep.recv(now).unwrap();
        assert_eq!(&msg.header[..], b"\x00\x00\x00\x05\x80\x00\x00\x09");

        xrep.send(Message::with_header(msg.header, "ok"), now)
            .unwrap();
        xrep.send(Message::with_header(&b"\x00\x00"[..], "short"), now)
            .unwrap();
        xrep.send(Message::with_header(&b"\x00\x00\x00\x06"[..], "gone"), now)
            .unwrap();

        assert_eq!(
            drain_tx(&mut xrep),
            vec![(5, Bytes::from_static(b"\x80\x00\x00\x09ok"))]
        );
    }
}
