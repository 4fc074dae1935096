//! PAIR v1, the exclusive one-to-one role with a hop count (SP-PROTOCOLS.md section 4.2,
//! NNG's `pair1` in mono mode). Each message carries one 32-bit big-endian hop-count word.

use std::time::Instant;

use bytes::{Buf, Bytes};

use crate::backtrace::{read_word, WORD_LEN};
use crate::protocol::shared::{
    check_max_ttl, forward_queue_to_core, forward_to_core, forward_to_single_peer, Broadcast,
    Inbound, Overflow, RecvQueue, SinglePeer,
};
use crate::protocol::{ConfigError, Event, Input, Protocol, RecvError, SendError};
use crate::stats::{CoreStats, DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How many received messages PAIR v1 holds before it pauses its pipe.
pub const DEFAULT_RECV_BUFFER: usize = 128;

/// The default largest hop count a received message may carry: 8, as in NNG and mangos.
pub const DEFAULT_MAX_TTL: u8 = 8;

/// The largest well-formed hop-count word: the count lives in the low byte and the upper
/// 24 bits must be zero.
const MAX_HOP_WORD: u32 = 0xFF;

/// Every well-formed hop-count word, so that a header holding one is a static [`Bytes`]: no
/// allocation when a raw sender increments the count, and no reference-count update when a raw
/// receiver splits the word off (an atomic on the read buffer the application's thread also
/// touches).
static HOP_WORDS: [[u8; WORD_LEN]; MAX_HOP_WORD as usize + 1] = {
    let mut words = [[0; WORD_LEN]; MAX_HOP_WORD as usize + 1];
    let mut hops = 0;
    while hops <= MAX_HOP_WORD as usize {
        words[hops] = (hops as u32).to_be_bytes();
        hops += 1;
    }
    words
};

/// The header holding hop count `hops`, which must be at most [`MAX_HOP_WORD`].
fn hop_header(hops: u32) -> Bytes {
    Bytes::from_static(&HOP_WORDS[hops as usize])
}

/// How many messages wait for one busy pipe of a [`Pair1Poly`] before further ones are
/// dropped: 2, as in NNG.
pub const POLY_PIPE_QUEUE_LEN: usize = 2;

/// Settings for [`Pair1`], [`XPair1`] and [`Pair1Poly`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair1Config {
    /// The largest hop count a received message may carry; messages with more are dropped.
    /// Default: 8. Range `1..=255` (NNG allows 1–15, mangos 1–255); 0 counts as 1.
    pub max_ttl: u8,
    /// How many received messages may wait for [`Protocol::recv`] before the pipe is paused.
    /// Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for Pair1Config {
    fn default() -> Self {
        Self {
            max_ttl: DEFAULT_MAX_TTL,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The cooked PAIR v1 role (SP type 17, `pair1`) in mono mode: talks to exactly one PAIR v1
/// peer at a time, with a hop count in front of every message.
///
/// Follows SP-PROTOCOLS.md section 4.2 with NNG's wire behaviour. The header is one
/// big-endian word, `00 00 00 hops`:
///
/// * **Send.** The application's header is replaced by hop count 1 (NNG counts the first hop
///   when sending), so a peer sees `00 00 00 01` and then the body.
/// * **Receive.** A message shorter than 4 bytes, or whose word is above `0xFF`, is garbage:
///   the pipe is closed with [`PipeCloseReason::MalformedHeader`]. A hop count above
///   `max_ttl` is dropped and the pipe kept. Otherwise the word is stripped and the body
///   delivered. Hop count 0 is accepted: a cooked mangos peer sends it.
///
/// Everything else is PAIR v0 ([`crate::protocol::pair::Pair`]): a second pipe that arrives
/// while one is attached is refused with [`PipeCloseReason::Busy`], and sending applies
/// back-pressure, so nothing is ever dropped on the way out.
///
/// ```text
///                PipeAdded (a PAIR v1 peer)
///  +----------+ -------------------------> +----------+ --+ PipeAdded: ClosePipe(Busy)
///  | Detached |                            | Attached |   | Received, hops > max_ttl:
///  +----------+ <------------------------- +----------+ <-+ dropped, pipe kept
///   send: WouldBlock   PipeRemoved, or Received garbage   send: Ok (header 00 00 00 01)
///                      (< 4 bytes or word > 0xFF):        when the pipe is writable,
///                      ClosePipe(MalformedHeader)         else WouldBlock
///                      (queued messages stay for recv)
/// ```
///
/// **Inputs.** [`Input::PipeAdded`], [`Input::PipeRemoved`], [`Input::PipeWritable`] and
/// [`Input::Received`] for the attached pipe; inputs for any other pipe are ignored, except
/// [`Input::Unsent`], counted for any pipe.
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::Writable`] when the pipe becomes writable after a `send` or an `is_writable`
/// found it busy or missing; [`Event::ResumeReceiving`] once the queue drains to half of
/// `recv_buffer`; [`Event::ClosePipe`] for a second or a wrong peer and for garbage.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::TtlExceeded`] for a message over
/// `max_ttl`, [`DropReason::QueueShrunk`] for messages discarded by
/// [`Protocol::set_recv_buffer`], [`DropReason::PipeClosed`] for a message its dying pipe
/// handed back unsent ([`Input::Unsent`]: there is no other peer to take it). Sending applies
/// back-pressure, so it drops nothing itself.
///
/// **Timers.** None.
///
/// [`Event::Readable`]: crate::protocol::Event::Readable
/// [`Event::Writable`]: crate::protocol::Event::Writable
/// [`Event::ResumeReceiving`]: crate::protocol::Event::ResumeReceiving
/// [`Event::ClosePipe`]: crate::protocol::Event::ClosePipe
/// [`PipeCloseReason::MalformedHeader`]: crate::protocol::PipeCloseReason::MalformedHeader
/// [`PipeCloseReason::Busy`]: crate::protocol::PipeCloseReason::Busy
#[derive(Debug)]
pub struct Pair1 {
    max_ttl: u8,
    core: SinglePeer,
}

impl Pair1 {
    /// Creates a cooked PAIR v1 socket core with no pipe.
    pub fn new(config: Pair1Config) -> Self {
        Self {
            max_ttl: config.max_ttl.max(1),
            core: SinglePeer::new(ProtocolId::PAIR1, config.recv_buffer),
        }
    }

    /// Sets the largest hop count a received message may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.max_ttl = check_max_ttl(max_ttl)?;
        Ok(())
    }

    /// Returns the largest hop count a received message may carry.
    pub fn max_ttl(&self) -> u8 {
        self.max_ttl
    }

    /// Returns true while a peer is attached.
    pub fn is_attached(&self) -> bool {
        self.core.is_attached()
    }
}

impl Protocol for Pair1 {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::PAIR1
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let max_ttl = self.max_ttl;
        self.core.handle(input, |msg| split_hop_count(msg, max_ttl));
    }

    /// Queues `msg.body` for the peer behind hop count 1; `msg.header` is discarded.
    ///
    /// # Errors
    /// [`SendError::WouldBlock`] when no peer is attached or its pipe is busy; retry after
    /// [`Event::Writable`].
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        // Hop count 1: NNG counts the first hop on send.
        let header = hop_header(1);
        self.core.send(Message::with_header(header, msg.body))
    }

    forward_to_single_peer!();
}

/// The raw PAIR v1 role (XPAIR1, SP type 17): [`Pair1`] with the hop-count word visible, for
/// devices and reflectors.
///
/// Follows SP-PROTOCOLS.md sections 4.2 and 5.1 with NNG's rules (`test_mono_raw_header`,
/// `test_pair1_ttl`):
///
/// * **Send.** The header must be exactly 4 bytes holding a hop count below `0xFF`; otherwise
///   the send fails with [`SendError::InvalidHeader`] (NNG's `NNG_EPROTO`). The count goes on
///   the wire incremented by one, so each device hop adds one.
/// * **Receive.** [`Pair1`]'s rules (garbage kicks, over `max_ttl` drops); the header is the
///   hop-count word exactly as it was on the wire.
///
/// Everything else (one peer, back-pressure, the receive queue) is [`Pair1`]'s.
///
/// **Inputs.** As [`Pair1`]. **Events.** As [`Pair1`]. **Timers.** None.
#[derive(Debug)]
pub struct XPair1 {
    max_ttl: u8,
    core: SinglePeer,
}

impl XPair1 {
    /// Creates a raw PAIR v1 socket core with no pipe.
    pub fn new(config: Pair1Config) -> Self {
        Self {
            max_ttl: config.max_ttl.max(1),
            core: SinglePeer::new(ProtocolId::PAIR1, config.recv_buffer),
        }
    }

    /// Sets the largest hop count a received message may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.max_ttl = check_max_ttl(max_ttl)?;
        Ok(())
    }

    /// Returns the largest hop count a received message may carry.
    pub fn max_ttl(&self) -> u8 {
        self.max_ttl
    }

    /// Returns true while a peer is attached.
    pub fn is_attached(&self) -> bool {
        self.core.is_attached()
    }
}

impl Protocol for XPair1 {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::PAIR1
    }

    fn is_raw(&self) -> bool {
        true
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let max_ttl = self.max_ttl;
        // The whole wire message is queued; `recv` splits the (already checked) word off.
        self.core.handle(input, |msg| {
            let body = msg.into_contiguous();
            match refuse_hop_count(&body, max_ttl) {
                Some(refused) => refused,
                None => Inbound::Deliver(body),
            }
        });
    }

    forward_to_core!();
    forward_queue_to_core!();

    /// Returns true while the peer's pipe is writable (a send may still fail for its header).
    #[inline]
    fn is_writable(&self) -> bool {
        self.core.will_take()
    }

    /// Queues `msg` for the peer with its hop count incremented by one.
    ///
    /// # Errors
    /// [`SendError::InvalidHeader`] when the header is not exactly 4 bytes or holds a value of
    /// `0xFF` or more; [`SendError::WouldBlock`] when no peer is attached or its pipe is busy
    /// (retry after [`Event::Writable`]).
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        let hops = match (msg.header.len(), read_word(&msg.header)) {
            (WORD_LEN, Some(hops)) if hops < MAX_HOP_WORD => hops,
            _ => return Err(SendError::InvalidHeader),
        };
        self.core
            .send(Message::with_header(hop_header(hops + 1), msg.body))
    }

    /// Takes the oldest queued message, its hop-count word (as received) in the header and
    /// [`Message::pipe`] naming the pipe it came from. May queue [`Event::ResumeReceiving`].
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let Message {
            body: mut wire,
            pipe,
            ..
        } = self.core.recv()?;
        let header = match read_word(&wire) {
            Some(hops) if hops <= MAX_HOP_WORD => {
                wire.advance(WORD_LEN);
                hop_header(hops)
            }
            // Not reached: only messages whose word passed `refuse_hop_count` are queued.
            _ => wire.split_to(WORD_LEN.min(wire.len())),
        };
        Ok(Message::with_header(header, wire).with_pipe(pipe))
    }
}

/// PAIR v1 in NNG's polyamorous mode (`nng_pair1_open_poly`; deprecated in NNG): any number of
/// PAIR v1 peers, each message addressed to one of them through [`Message::pipe`].
///
/// Follows SP-PROTOCOLS.md section 4.2 (`pair1_poly_test.c`):
///
/// * **Receive.** Messages from every pipe go into one queue, with [`Pair1`]'s hop rules
///   (garbage kicks the pipe, too many hops drops). The message handed to the application has
///   no header and records its pipe in [`Message::pipe`].
/// * **Send.** The message goes to the pipe in [`Message::pipe`], or with none to the pipe
///   attached first among those still attached, with hop count 1 on the wire. When that pipe
///   is gone (or none is attached), or its queue of [`POLY_PIPE_QUEUE_LEN`] messages
///   ([`Protocol::set_send_buffer`] changes it) is full, the message is dropped and counted and
///   the send still succeeds: there is no back-pressure, so one slow peer never blocks the
///   others. Directed sends reach direct peers only, not peers behind a device.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::TtlExceeded`] on receive;
/// [`DropReason::NoRoute`] and [`DropReason::SendQueueFull`] on send;
/// [`DropReason::PipeClosed`] for messages still queued when their pipe went away or handed
/// back unsent ([`Input::Unsent`]); [`DropReason::QueueShrunk`] for messages discarded by
/// resizing either queue.
///
/// There is no raw variant, as in NNG.
///
/// ```text
///  Received on P: [00 00 00 h] body --> garbage: kick P; h > max_ttl: dropped;
///                                       else body (pipe = P) queued for recv
///  send body (pipe = Q or None) --> [00 00 00 01] body to Q (None: the oldest pipe);
///                                   Q gone or its queue full: dropped, Ok
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than PAIR v1 is refused; any number of PAIR
/// v1 peers are accepted), [`Input::PipeRemoved`], [`Input::PipeWritable`],
/// [`Input::Received`].
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ResumeReceiving`] once it drains to half of `recv_buffer`; [`Event::ClosePipe`] for a
/// wrong peer or garbage. Never [`Event::Writable`]: sending never blocks.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Pair1Poly {
    max_ttl: u8,
    core: PolyCore,
}

impl Pair1Poly {
    /// Creates a polyamorous PAIR v1 socket core with no pipes.
    pub fn new(config: Pair1Config) -> Self {
        Self {
            max_ttl: config.max_ttl.max(1),
            core: PolyCore {
                pipes: Broadcast::new(ProtocolId::PAIR1, POLY_PIPE_QUEUE_LEN, Overflow::DropNewest),
                attached: Vec::new(),
                queue: RecvQueue::new(config.recv_buffer),
                recv_drops: DropCounts::default(),
            },
        }
    }

    /// Sets the largest hop count a received message may carry.
    ///
    /// # Errors
    /// [`ConfigError::MaxTtlOutOfRange`] for 0.
    pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
        self.max_ttl = check_max_ttl(max_ttl)?;
        Ok(())
    }

    /// Returns the largest hop count a received message may carry.
    pub fn max_ttl(&self) -> u8 {
        self.max_ttl
    }

    /// Returns the attached pipes, the first attached first.
    pub fn pipes(&self) -> &[PipeId] {
        &self.core.attached
    }

    /// Returns how many messages were dropped because their pipe's queue was full:
    /// [`DropReason::SendQueueFull`] in [`Protocol::stats`]. Messages for pipes that are gone
    /// count as [`DropReason::NoRoute`] there instead.
    pub fn dropped_sends(&self) -> u64 {
        self.core.pipes.dropped()
    }
}

impl Protocol for Pair1Poly {
    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    fn protocol(&self) -> ProtocolId {
        ProtocolId::PAIR1
    }

    /// Applies a pipe input; see the type docs for what each input does.
    fn handle(&mut self, input: Input, _now: Instant) {
        let core = &mut self.core;
        match &input {
            Input::PipeAdded { pipe, peer }
                if *peer == ProtocolId::PAIR1 && !core.attached.contains(pipe) =>
            {
                core.attached.push(*pipe);
            }
            Input::PipeRemoved { pipe } => core.forget(*pipe),
            _ => {}
        }
        let Some((pipe, wire)) = core.pipes.handle(input) else {
            return;
        };
        match split_hop_count(Message::new(wire), self.max_ttl) {
            Inbound::Deliver(body) => {
                if core.queue.push(pipe, body) {
                    core.pipes.push_event(Event::Readable);
                }
            }
            Inbound::Drop(reason) => core.recv_drops.record(reason),
            Inbound::Kick => {
                core.pipes.kick(pipe);
                core.forget(pipe);
            }
        }
    }

    forward_to_core!();

    /// Returns true: this send never waits.
    #[inline]
    fn is_writable(&self) -> bool {
        true
    }

    /// Sends `msg.body` behind hop count 1 to the pipe in `msg.pipe` (or, with none, the pipe
    /// attached first); `msg.header` is discarded. A message whose pipe is gone, with no pipe
    /// attached, or busy with a full queue is dropped and counted.
    ///
    /// # Errors
    /// None: polyamorous PAIR v1 never blocks.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        let pipe = msg.pipe.or_else(|| self.core.attached.first().copied());
        let Some(pipe) = pipe else {
            self.core.pipes.record(DropReason::NoRoute);
            return Ok(());
        };
        // Hop count 1: NNG counts the first hop on send.
        let header = hop_header(1);
        self.core
            .pipes
            .send_to(pipe, Message::with_header(header, msg.body));
        Ok(())
    }

    /// Takes the oldest queued message, hop count stripped, with [`Message::pipe`] naming the
    /// pipe it came from. May queue [`Event::ResumeReceiving`].
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let core = &mut self.core;
        let (pipe, body) = core
            .queue
            .pop(core.pipes.events_mut())
            .ok_or(RecvError::WouldBlock)?;
        Ok(Message::new(body).with_pipe(pipe))
    }

    fn stats(&self) -> CoreStats {
        self.core
            .pipes
            .stats(&self.core.recv_drops, self.core.queue.len())
    }

    fn recv_buffer(&self) -> Option<usize> {
        Some(self.core.queue.capacity())
    }

    /// Resizes the receive queue. Growing it resumes the pipes paused by a full queue.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
    fn set_recv_buffer(&mut self, len: usize, _now: Instant) -> Result<(), ConfigError> {
        let core = &mut self.core;
        core.queue
            .resize(len, core.pipes.events_mut(), &mut core.recv_drops)
    }

    fn send_buffer(&self) -> Option<usize> {
        Some(self.core.pipes.capacity())
    }

    /// Resizes every pipe's send queue, and those of pipes attached later. Shrinking drops the
    /// newest messages beyond the new length. Sending never blocks, so growing wakes nobody.
    ///
    /// # Errors
    /// [`ConfigError::QueueLenOutOfRange`] above [`MAX_QUEUE_LEN`](crate::stats::MAX_QUEUE_LEN).
    fn set_send_buffer(&mut self, len: usize, _now: Instant) -> Result<(), ConfigError> {
        self.core.pipes.resize(len)
    }
}

/// The pipes, attach order and receive queue of [`Pair1Poly`].
#[derive(Debug)]
struct PolyCore {
    pipes: Broadcast,
    /// Attached PAIR v1 pipes in the order they arrived, for sends that name no pipe.
    attached: Vec<PipeId>,
    queue: RecvQueue<Bytes>,
    /// Received messages dropped (over the TTL, or by shrinking the queue); the send side's
    /// drops are in `pipes`.
    recv_drops: DropCounts,
}

impl PolyCore {
    fn forget(&mut self, pipe: PipeId) {
        self.attached.retain(|p| *p != pipe);
        self.queue.forget_pipe(pipe);
    }

    #[inline]
    fn poll_transmit(&mut self) -> Option<crate::protocol::Transmit> {
        self.pipes.poll_transmit()
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.pipes.poll_event()
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.is_receiving(pipe) && !self.queue.is_paused(pipe)
    }
}

/// Applies NNG's receive rules to a wire message: garbage kicks, too many hops drops, anything
/// else loses its hop-count word and is delivered.
fn split_hop_count(msg: Message, max_ttl: u8) -> Inbound {
    // An inproc peer hands its hop-count word over as the header: read it there and deliver
    // the body as it is, rather than join the two into a new buffer only to split them again
    // (an allocation and a copy per message).
    if msg.header.len() == WORD_LEN {
        return match refuse_hop_count(&msg.header, max_ttl) {
            Some(refused) => refused,
            None => Inbound::Deliver(msg.body),
        };
    }
    let mut body = msg.into_contiguous();
    if let Some(refused) = refuse_hop_count(&body, max_ttl) {
        return refused;
    }
    // In place: `slice` would add a reference to the read buffer and drop one.
    body.advance(WORD_LEN);
    Inbound::Deliver(body)
}

/// The verdict on a wire body whose hop-count word breaks NNG's receive rules; `None` when
/// it may be delivered.
fn refuse_hop_count(body: &[u8], max_ttl: u8) -> Option<Inbound> {
    match read_word(body) {
        None => Some(Inbound::Kick),
        Some(hops) if hops > MAX_HOP_WORD => Some(Inbound::Kick),
        Some(hops) if hops > u32::from(max_ttl) => Some(Inbound::Drop(DropReason::TtlExceeded)),
        Some(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::{Event, PipeCloseReason, RecvError};
    use crate::PipeId;

    fn p(n: u32) -> PipeId {
        PipeId::new(n).unwrap()
    }

    #[test]
    fn every_hop_header_holds_its_count_big_endian() {
        for hops in 0..=MAX_HOP_WORD {
            assert_eq!(&hop_header(hops)[..], &hops.to_be_bytes()[..]);
        }
    }

    fn attached(config: Pair1Config) -> Pair1 {
        let mut pair = Pair1::new(config);
        // A caller that finds the socket not writable is told when it becomes writable.
        assert!(!pair.is_writable());
        pair.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PAIR1,
            },
            Instant::now(),
        );
        assert_eq!(pair.poll_event(), Some(Event::Writable));
        pair
    }

    fn wire(hops: u32, body: &[u8]) -> Message {
        let mut bytes = hops.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        Message::new(bytes)
    }

    fn receive(pair: &mut Pair1, msg: Message) {
        pair.handle(Input::Received { pipe: p(1), msg }, Instant::now());
    }

    fn events(pair: &mut Pair1) -> Vec<Event> {
        std::iter::from_fn(|| pair.poll_event()).collect()
    }

    fn kick() -> Event {
        let reason = PipeCloseReason::MalformedHeader;
        Event::ClosePipe { pipe: p(1), reason }
    }

    #[test]
    fn pair1_send_replaces_header_with_one_hop() {
        let now = Instant::now();
        let mut pair = attached(Pair1Config::default());

        pair.send(Message::with_header(&b"junk"[..], &b"hi"[..]), now)
            .unwrap();

        let tx = pair.poll_transmit().unwrap();
        assert_eq!(tx.pipe, p(1));
        assert_eq!(&tx.msg.to_contiguous()[..], b"\x00\x00\x00\x01hi");
    }

    /// An inproc peer's message keeps the hop count as its header: the rules are the wire's,
    /// and the body is delivered as the very buffer the sender gave (no join, no copy). A
    /// header of another length is joined to the body and parsed as wire bytes.
    #[test]
    fn pair1_reads_a_handed_over_hop_count_header_in_place() {
        let now = Instant::now();
        let mut pair = attached(Pair1Config::default());
        let body = Bytes::from_static(b"body");
        receive(&mut pair, Message::with_header(hop_header(1), body.clone()));
        let got = pair.recv(now).unwrap();
        assert_eq!(got.body.as_ptr(), body.as_ptr(), "the sender's buffer");
        assert_eq!(&got.body[..], b"body");

        receive(
            &mut pair,
            Message::with_header(&b"\x00\x00"[..], &b"\x00\x02split"[..]),
        );
        assert_eq!(&pair.recv(now).unwrap().body[..], b"split");

        let over = u32::from(DEFAULT_MAX_TTL) + 1;
        receive(&mut pair, Message::with_header(hop_header(over), &b"x"[..]));
        assert_eq!(
            pair.recv(now),
            Err(RecvError::WouldBlock),
            "over max_ttl: dropped"
        );
        assert_eq!(pair.stats().dropped.get(DropReason::TtlExceeded), 1);

        receive(
            &mut pair,
            Message::with_header(&b"\xff\xff\xff\xff"[..], &b"x"[..]),
        );
        assert!(events(&mut pair).contains(&kick()), "garbage kicks");
    }

    #[test]
    fn pair1_recv_strips_hop_word_from_zero_to_max_ttl() {
        let now = Instant::now();
        let mut pair = attached(Pair1Config::default());

        for hops in [0, 1, u32::from(DEFAULT_MAX_TTL)] {
            receive(&mut pair, wire(hops, b"body"));
        }

        assert_eq!(events(&mut pair), vec![Event::Readable]);
        for _ in 0..3 {
            let msg = pair.recv(now).unwrap();
            assert!(msg.header.is_empty());
            assert_eq!(&msg.body[..], b"body");
        }
        assert_eq!(pair.recv(now), Err(RecvError::WouldBlock));
    }

    #[test]
    fn pair1_drops_over_ttl_and_keeps_the_pipe() {
        let now = Instant::now();
        let mut pair = attached(Pair1Config {
            max_ttl: 4,
            ..Pair1Config::default()
        });

        receive(&mut pair, wire(5, b"looped"));
        receive(&mut pair, wire(0xFF, b"looped"));
        assert!(events(&mut pair).is_empty());
        receive(&mut pair, wire(4, b"ok"));

        assert_eq!(events(&mut pair), vec![Event::Readable]);
        assert_eq!(&pair.recv(now).unwrap().body[..], b"ok");
        assert!(pair.is_attached());
    }

    #[test]
    fn pair1_kicks_hop_word_above_0xff() {
        for word in [0x100, 0x1000, 0xDEAD_0000, u32::MAX] {
            let mut pair = attached(Pair1Config::default());
            receive(&mut pair, wire(word, b"x"));
            assert_eq!(events(&mut pair), vec![kick()], "{word:#x}");
            assert!(!pair.is_attached());
        }
    }

    #[test]
    fn pair1_kicks_message_shorter_than_hop_word() {
        for short in [&b""[..], b"\x00", b"\x00\x00\x01"] {
            let mut pair = attached(Pair1Config::default());
            receive(&mut pair, Message::new(short));
            assert_eq!(events(&mut pair), vec![kick()], "{short:?}");
            assert!(!pair.is_attached());
        }
    }

    #[test]
    fn pair1_accepts_a_new_peer_after_kicking_one() {
        let now = Instant::now();
        let mut pair = attached(Pair1Config::default());
        receive(&mut pair, Message::new(&b"\x01"[..]));
        events(&mut pair);
        assert!(!pair.is_writable(), "no peer after the kick");

        receive(&mut pair, wire(1, b"late"));
        pair.handle(
            Input::PipeAdded {
                pipe: p(2),
                peer: ProtocolId::PAIR1,
            },
            now,
        );

        assert_eq!(events(&mut pair), vec![Event::Writable]);
        assert_eq!(pair.recv(now), Err(RecvError::WouldBlock));
        pair.send(Message::from("x"), now).unwrap();
        assert_eq!(pair.poll_transmit().unwrap().pipe, p(2));
    }

    #[test]
    fn pair1_refuses_pair0_and_second_peer() {
        let now = Instant::now();
        let mut pair = Pair1::new(Pair1Config::default());
        pair.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PAIR0,
            },
            now,
        );
        let reason = PipeCloseReason::IncompatiblePeer(ProtocolId::PAIR0);
        assert_eq!(
            events(&mut pair),
            vec![Event::ClosePipe { pipe: p(1), reason }]
        );
        assert!(!pair.is_attached());

        let mut pair = attached(Pair1Config::default());
        pair.handle(
            Input::PipeAdded {
                pipe: p(2),
                peer: ProtocolId::PAIR1,
            },
            now,
        );
        let reason = PipeCloseReason::Busy;
        assert_eq!(
            events(&mut pair),
            vec![Event::ClosePipe { pipe: p(2), reason }]
        );
    }

    #[test]
    fn pair1_send_blocks_while_pipe_busy_and_tells_a_caller_that_found_it_so() {
        let now = Instant::now();
        let mut pair = Pair1::new(Pair1Config::default());
        assert_eq!(
            pair.send(Message::from("x"), now),
            Err(SendError::WouldBlock)
        );
        let mut pair = attached(Pair1Config::default());
        // A sending loop: each send makes the pipe busy until the driver queued it, and
        // nobody waits meanwhile, so no event.
        for _ in 0..3 {
            pair.send(Message::from("x"), now).unwrap();
            pair.handle(Input::PipeWritable { pipe: p(1) }, now);
            assert_eq!(events(&mut pair), vec![]);
        }
        // A send that finds the pipe busy asks for the event, once.
        pair.send(Message::from("x"), now).unwrap();
        assert_eq!(
            pair.send(Message::from("y"), now),
            Err(SendError::WouldBlock)
        );
        pair.handle(Input::PipeWritable { pipe: p(1) }, now);

        assert_eq!(events(&mut pair), vec![Event::Writable]);
        pair.send(Message::from("y"), now).unwrap();
        assert_eq!(std::iter::from_fn(|| pair.poll_transmit()).count(), 5);
        // So does a readiness check that finds it not writable.
        assert!(!pair.is_writable());
        pair.handle(Input::PipeWritable { pipe: p(1) }, now);
        assert_eq!(events(&mut pair), vec![Event::Writable]);
    }

    #[test]
    fn pair1_max_ttl_accepts_1_to_255() {
        let mut pair = Pair1::new(Pair1Config::default());
        assert_eq!(pair.max_ttl(), DEFAULT_MAX_TTL);
        assert_eq!(pair.set_max_ttl(0), Err(ConfigError::MaxTtlOutOfRange(0)));
        assert_eq!(pair.max_ttl(), DEFAULT_MAX_TTL);
        pair.set_max_ttl(1).unwrap();
        pair.set_max_ttl(255).unwrap();
        assert_eq!(pair.max_ttl(), 255);
        let zero = Pair1::new(Pair1Config {
            max_ttl: 0,
            ..Pair1Config::default()
        });
        assert_eq!(zero.max_ttl(), 1);
    }

    #[test]
    fn pair1_ttl_15_passes_hop_15_and_drops_16() {
        // NNG's test_pair1_ttl with ttl-max 15, seen from the receiver.
        let now = Instant::now();
        let mut pair = attached(Pair1Config::default());
        pair.set_max_ttl(15).unwrap();

        receive(&mut pair, wire(16, b"over"));
        receive(&mut pair, wire(15, b"edge"));

        assert_eq!(&pair.recv(now).unwrap().body[..], b"edge");
        assert_eq!(pair.recv(now), Err(RecvError::WouldBlock));
    }
}
