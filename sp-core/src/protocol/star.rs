//! STAR, mangos' experimental flooding bus (SP-PROTOCOLS.md section 4.8; mangos
//! `protocol/star` and `protocol/xstar`): cooked [`Star`] and raw [`XStar`].
//!
//! Every message carries one hop-count word, `00 00 00 hops`. Unlike BUS, every STAR socket
//! relays what it receives to all its other peers, so a tree of STAR sockets floods each
//! message to every member; the hop count, checked against the TTL on receipt, stops loops.
//! Only mangos implements STAR (type `0x640`); NNG and nanomsg refuse such a peer.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::backtrace::WORD_LEN;
use crate::protocol::shared::{
    broadcast_queue_methods, check_max_ttl, Broadcast, DropQueue, Overflow, Pushed,
};
use crate::protocol::{ConfigError, Event, Input, Protocol, RecvError, SendError, Transmit};
use crate::stats::{DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How many messages wait for one busy pipe before further ones are dropped for it: 128, as
/// mangos' `WRITEQ-LEN`.
pub const DEFAULT_SEND_BUFFER: usize = 128;

/// How many received messages wait for the application before further ones are dropped: 128,
/// as mangos' `READQ-LEN`.
pub const DEFAULT_RECV_BUFFER: usize = 128;

/// The default TTL: a message that has made this many hops is no longer accepted. 8, as in
/// mangos.
pub const DEFAULT_MAX_TTL: u8 = 8;

/// The header of a message that has not been relayed yet.
const ZERO_HOPS: [u8; WORD_LEN] = [0; WORD_LEN];

/// Settings for [`Star`] and [`XStar`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StarConfig {
    /// A received message whose hop count is this or more is dropped (mangos' `TTL`).
    /// Default: 8. Range `1..=255`; 0 counts as 1.
    pub max_ttl: u8,
    /// How many messages may wait for each busy pipe; when a pipe's queue is full the new
    /// message is dropped for that pipe. Default: 128. 0 counts as 1.
    pub send_buffer: usize,
    /// How many received messages may wait for [`Protocol::recv`]; when full, new messages are
    /// dropped for the application (they are still relayed). Default: 128. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for StarConfig {
    fn default() -> Self {
        Self {
            max_ttl: DEFAULT_MAX_TTL,
            send_buffer: DEFAULT_SEND_BUFFER,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// Writes what [`Star`] and [`XStar`] share: the inherent methods and every [`Protocol`]
/// method but `send` and `recv`. `$what` names the role in the constructor's docs.
macro_rules! star_common {
    ($ty:ident, $what:literal) => {
        impl $ty {
            #[doc = concat!("Creates a ", $what, " socket core with no pipes.")]
            pub fn new(config: StarConfig) -> Self {
                Self {
                    core: StarCore::new(&config),
                }
            }

            /// Sets the TTL: received messages whose hop count is this or more are dropped.
            ///
            /// # Errors
            /// [`ConfigError::MaxTtlOutOfRange`] for 0.
            pub fn set_max_ttl(&mut self, max_ttl: u8) -> Result<(), ConfigError> {
                self.core.max_ttl = check_max_ttl(max_ttl)?;
                Ok(())
            }

            /// Returns the TTL.
            pub fn max_ttl(&self) -> u8 {
                self.core.max_ttl
            }

            /// Returns how many copies full per-pipe send queues have dropped (sent and
            /// relayed messages alike), over every pipe ever attached:
            /// [`DropReason::SendQueueFull`] in [`Protocol::stats`].
            pub fn dropped(&self) -> u64 {
                self.core.fanout.dropped()
            }

            /// Returns how many received messages were dropped for the application because its
            /// queue was full: [`DropReason::RecvQueueFull`] in [`Protocol::stats`].
            pub fn recv_dropped(&self) -> u64 {
                self.core.drops.get(DropReason::RecvQueueFull)
            }

            /// Returns how many received messages were dropped because their hop count reached
            /// the TTL: [`DropReason::TtlExceeded`] in [`Protocol::stats`].
            pub fn ttl_dropped(&self) -> u64 {
                self.core.drops.get(DropReason::TtlExceeded)
            }
        }
    };
}

macro_rules! star_pipe_methods {
    () => {
        fn protocol(&self) -> ProtocolId {
            ProtocolId::STAR
        }

        /// Applies a pipe input; see the type docs for what each input does.
        fn handle(&mut self, input: Input, _now: Instant) {
            self.core.handle(input);
        }

        /// Does nothing: STAR has no timers.
        fn handle_timeout(&mut self, _now: Instant) {}

        #[inline]
        fn poll_transmit(&mut self) -> Option<Transmit> {
            self.core.fanout.poll_transmit()
        }

        #[inline]
        fn poll_event(&mut self) -> Option<Event> {
            self.core.fanout.poll_event()
        }

        #[inline]
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }

        #[inline]
        fn is_receiving(&self, pipe: PipeId) -> bool {
            self.core.fanout.is_receiving(pipe)
        }

        broadcast_queue_methods!("STAR");
    };
}

/// The cooked STAR role (SP type `0x640`, `star`): sends each message to every peer, receives
/// from all, and relays what it receives to its other peers.
///
/// Follows SP-PROTOCOLS.md section 4.8 (mangos, where cooked STAR is a thin wrapper around
/// XSTAR, so cooked sockets relay too):
///
/// * **Send.** The application's header is replaced by `00 00 00 00` and the message goes to
///   every attached pipe: at once to an idle pipe, else into that pipe's queue of
///   `send_buffer`, else (queue full) it is dropped for that pipe and counted. Never blocks.
/// * **Receive from pipe P.** A message shorter than 4 bytes, with any of its first three
///   bytes non-zero, or with `hops >= max_ttl` is dropped (the pipe is kept). Otherwise `hops`
///   goes up by one and a copy with the new count goes to every pipe except P (the same
///   queue rules as a send); then the body, header stripped, is queued for
///   [`Protocol::recv`], or dropped and counted when that queue is full.
///
/// ```text
///  send body --> [00 00 00 00] body to every pipe (idle: now; busy: queued; full: dropped)
///
///  Received on P: [00 00 00 h] body
///      |-- short, reserved bytes set, or h >= max_ttl --> dropped
///      +-- [00 00 00 h+1] body to every pipe but P, and body queued for recv
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than STAR is refused), [`Input::PipeRemoved`]
/// (copies queued for it are discarded), [`Input::PipeWritable`], [`Input::Received`].
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ClosePipe`] for a wrong peer. Never [`Event::Writable`] or
/// [`Event::ResumeReceiving`]: STAR neither blocks a sender nor pauses a pipe.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::MalformedHeader`] for a received message
/// too short or with reserved bytes set, [`DropReason::TtlExceeded`] for one at the TTL,
/// [`DropReason::RecvQueueFull`] when the receive queue is full, [`DropReason::SendQueueFull`]
/// per copy (sent or relayed) a full pipe queue drops, [`DropReason::PipeClosed`] for copies
/// still queued when their pipe went away or handed back unsent ([`Input::Unsent`]),
/// [`DropReason::QueueShrunk`] for messages discarded
/// by resizing either queue.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Star {
    core: StarCore,
}

star_common!(Star, "STAR");

impl Protocol for Star {
    fn drops_when_full(&self) -> bool {
        true
    }

    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    star_pipe_methods!();

    /// Returns true: this send never waits.
    #[inline]
    fn is_writable(&self) -> bool {
        true
    }

    /// Sends `msg.body` behind hop count 0 to every attached pipe; `msg.header` is discarded.
    ///
    /// # Errors
    /// None: STAR never blocks, and with no pipe the message is discarded.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        let header = Bytes::from_static(&ZERO_HOPS);
        self.core
            .fanout
            .send(Message::with_header(header, msg.body), None);
        Ok(())
    }

    /// Takes the oldest received message, hop count stripped, with [`Message::pipe`] naming
    /// the pipe it came from.
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (pipe, _header, body) = self.core.queue.pop().ok_or(RecvError::WouldBlock)?;
        Ok(Message::new(body).with_pipe(pipe))
    }
}

/// The raw STAR role (XSTAR, SP type `0x640`): [`Star`] with the hop-count word visible.
///
/// Follows SP-PROTOCOLS.md sections 4.8 and 5.1:
///
/// * **Send.** The header must be exactly 4 bytes; any other message is dropped, counted as
///   [`DropReason::MalformedHeader`], and the send still succeeds (mangos). The header and body
///   go to every attached pipe with [`Star`]'s queue rules.
/// * **Receive.** As [`Star`], relaying included; the header is the hop-count word **after**
///   the increment, so a direct peer's message shows hops 1 (`TestXStarRedistribute`).
///
/// A reflector made of one XSTAR only needs to send back what it receives: the message has
/// already been relayed on receipt, so sending it again floods every peer a second time.
/// Devices are meant for the other raw protocols; STAR relays by itself.
///
/// **Inputs.** As [`Star`]. **Events.** As [`Star`]. **Timers.** None.
#[derive(Debug)]
pub struct XStar {
    core: StarCore,
}

star_common!(XStar, "raw STAR");

impl Protocol for XStar {
    fn drops_when_full(&self) -> bool {
        true
    }

    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    star_pipe_methods!();

    fn is_raw(&self) -> bool {
        true
    }

    /// Returns true: this send never waits.
    #[inline]
    fn is_writable(&self) -> bool {
        true
    }

    /// Sends `msg`, header and body unchanged, to every attached pipe when the header is
    /// exactly 4 bytes; drops it otherwise.
    ///
    /// # Errors
    /// None: STAR never blocks, and a message with a bad header is dropped and counted.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        if msg.header.len() == WORD_LEN {
            let msg = Message::with_header(msg.header, msg.body);
            self.core.fanout.send(msg, None);
        } else {
            self.core.drops.record(DropReason::MalformedHeader);
        }
        Ok(())
    }

    /// Takes the oldest received message; its header is the incremented hop-count word, and
    /// [`Message::pipe`] names the pipe it came from.
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (pipe, header, body) = self.core.queue.pop().ok_or(RecvError::WouldBlock)?;
        Ok(Message::with_header(header, body).with_pipe(pipe))
    }
}

/// What [`Star`] and [`XStar`] share: the broadcasting send side, the hop check with its
/// relay, and a lossy receive queue of `(pipe, hop word, body)`.
#[derive(Debug)]
struct StarCore {
    max_ttl: u8,
    fanout: Broadcast,
    queue: DropQueue<(PipeId, Bytes, Bytes)>,
    /// Every drop but those of the pipes' send queues, which `fanout` counts.
    drops: DropCounts,
}

impl StarCore {
    fn new(config: &StarConfig) -> Self {
        Self {
            max_ttl: config.max_ttl.max(1),
            fanout: Broadcast::new(ProtocolId::STAR, config.send_buffer, Overflow::DropNewest),
            queue: DropQueue::new(config.recv_buffer, Overflow::DropNewest),
            drops: DropCounts::default(),
        }
    }

    fn handle(&mut self, input: Input) {
        let Some((pipe, wire)) = self.fanout.handle(input) else {
            return;
        };
        let Some(&[0, 0, 0, hops]) = wire.get(..WORD_LEN) else {
            // Too short, or reserved bytes set: mangos drops it and keeps the pipe.
            self.drops.record(DropReason::MalformedHeader);
            return;
        };
        if hops >= self.max_ttl {
            self.drops.record(DropReason::TtlExceeded);
            return;
        }
        let mut header = BytesMut::from(&ZERO_HOPS[..]);
        // `hops < max_ttl <= 255`, so the increment cannot overflow.
        header[WORD_LEN - 1] = hops + 1;
        let header = header.freeze();
        let body = wire.slice(WORD_LEN..);
        let relay = Message::with_header(header.clone(), body.clone());
        self.fanout.send(relay, Some(pipe));
        match self.queue.push((pipe, header, body)) {
            Pushed::First => self.fanout.push_event(Event::Readable),
            Pushed::Queued => {}
            // Still relayed above: only this socket's application misses it.
            Pushed::Dropped => self.drops.record(DropReason::RecvQueueFull),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::testing::{add, drain_ev, drain_tx, p};

    fn received(proto: &mut impl Protocol, pipe: u32, bytes: &'static [u8]) {
        let msg = Message::new(bytes);
        proto.handle(Input::Received { pipe: p(pipe), msg }, Instant::now());
    }

    fn with_pipes<T: Protocol>(mut proto: T, pipes: &[u32]) -> T {
        for &pipe in pipes {
            add(&mut proto, pipe, ProtocolId::STAR);
        }
        proto
    }

    #[test]
    fn star_sends_hop_zero_to_every_pipe() {
        let now = Instant::now();
        let mut star = with_pipes(Star::new(StarConfig::default()), &[1, 2]);
        star.send(Message::with_header(&b"junk"[..], "m"), now)
            .unwrap();
        let zero_m = Bytes::from_static(b"\0\0\0\0m");
        assert_eq!(drain_tx(&mut star), vec![(1, zero_m.clone()), (2, zero_m)]);
    }

    #[test]
    fn star_relays_incremented_hops_to_other_pipes_and_delivers() {
        let now = Instant::now();
        let mut xstar = with_pipes(XStar::new(StarConfig::default()), &[1, 2, 3]);
        received(&mut xstar, 2, b"\0\0\0\x03m");

        let relayed = Bytes::from_static(b"\0\0\0\x04m");
        assert_eq!(
            drain_tx(&mut xstar),
            vec![(1, relayed.clone()), (3, relayed)]
        );
        assert_eq!(drain_ev(&mut xstar), vec![Event::Readable]);
        let msg = xstar.recv(now).unwrap();
        assert_eq!(
            (&msg.header[..], &msg.body[..]),
            (&b"\0\0\0\x04"[..], &b"m"[..])
        );
    }

    #[test]
    fn star_drops_short_reserved_and_over_ttl_messages() {
        let now = Instant::now();
        let mut star = with_pipes(Star::new(StarConfig::default()), &[1, 2]);
        for bad in [
            &b"\0\0\0"[..],
            b"\x01\0\0\x01m",
            b"\0\0\0\x08m",
            b"\0\0\0\xffm",
        ] {
            received(&mut star, 1, bad);
        }
        assert!(drain_tx(&mut star).is_empty());
        assert_eq!(star.ttl_dropped(), 2);
        assert_eq!(star.recv(now), Err(RecvError::WouldBlock));
        received(&mut star, 1, b"\0\0\0\x07m");
        assert_eq!(star.recv(now).unwrap(), Message::from("m").with_pipe(p(1)));
        assert!(star.is_receiving(p(1)));
    }

    #[test]
    fn xstar_send_drops_header_not_four_bytes() {
        let now = Instant::now();
        let mut xstar = with_pipes(XStar::new(StarConfig::default()), &[1]);
        assert!(xstar.is_raw());
        for header in [&b""[..], b"\0\0\0", b"\0\0\0\0\0"] {
            let sent = xstar.send(Message::with_header(header, "m"), now);
            assert_eq!(sent, Ok(()));
        }
        assert!(drain_tx(&mut xstar).is_empty());
        xstar
            .send(Message::with_header(&b"\0\0\0\x02"[..], "m"), now)
            .unwrap();
        assert_eq!(
            drain_tx(&mut xstar),
            vec![(1, Bytes::from_static(b"\0\0\0\x02m"))]
        );
    }

    #[test]
    fn star_max_ttl_accepts_1_to_255() {
        let mut star = Star::new(StarConfig::default());
        assert_eq!(star.max_ttl(), DEFAULT_MAX_TTL);
        assert_eq!(star.set_max_ttl(0), Err(ConfigError::MaxTtlOutOfRange(0)));
        star.set_max_ttl(255).unwrap();
        assert_eq!(star.max_ttl(), 255);
    }
}
