//! BUS, the many-to-many role (SP-PROTOCOLS.md section 4.7; NNG's `src/sp/protocol/bus0`), and
//! raw BUS ([`XBus`]). Messages carry no header on the wire.
//!
//! BUS does not forward: a message reaches only the peers directly connected to its sender.
//! Full delivery needs a full mesh, or a hub made of an [`XBus`] whose received messages are
//! sent straight back out (a reflector device), which the origin-pipe header keeps from echoing.

use std::time::Instant;

use bytes::Bytes;

use crate::backtrace::{read_word, WORD_LEN};
use crate::protocol::shared::{
    broadcast_queue_methods, forward_to_core, Broadcast, DropQueue, Overflow, Pushed,
};
use crate::protocol::{Event, Input, Protocol, RecvError, SendError, Transmit};
use crate::stats::{DropCounts, DropReason};
use crate::{Message, PipeId, ProtocolId};

/// How many messages BUS queues for each busy pipe, as NNG's `send-buffer` for BUS.
pub const DEFAULT_SEND_BUFFER: usize = 16;

/// How many received messages BUS holds for the application, as NNG's `recv-buffer` for BUS.
pub const DEFAULT_RECV_BUFFER: usize = 16;

/// Writes the inherent methods that [`Bus`] and [`XBus`] share: the constructor and the drop
/// counters. `$what` names the role in the constructor's docs.
macro_rules! bus_common_methods {
    ($what:literal) => {
        #[doc = concat!("Creates a ", $what, " socket core with no pipes.")]
        pub fn new(config: BusConfig) -> Self {
            Self {
                core: BusCore::new(&config),
            }
        }

        /// Returns how many messages full per-pipe send queues have dropped, summed over every
        /// pipe ever attached: [`DropReason::SendQueueFull`] in [`Protocol::stats`].
        pub fn dropped(&self) -> u64 {
            self.core.fanout.dropped()
        }

        /// Returns how many messages `pipe`'s full send queue has dropped, or `None` when
        /// `pipe` is not attached.
        pub fn dropped_on(&self, pipe: PipeId) -> Option<u64> {
            self.core.fanout.dropped_on(pipe)
        }

        /// Returns how many received messages a full receive queue has dropped:
        /// [`DropReason::RecvQueueFull`] in [`Protocol::stats`].
        pub fn recv_dropped(&self) -> u64 {
            self.core.drops.get(DropReason::RecvQueueFull)
        }
    };
}

/// Writes the [`Protocol`] methods that [`Bus`] and [`XBus`] share: all but `send` and `recv`,
/// where raw and cooked differ.
macro_rules! bus_pipe_methods {
    () => {
        fn protocol(&self) -> ProtocolId {
            ProtocolId::BUS
        }

        /// Applies a pipe input; see the type docs for what each input does.
        fn handle(&mut self, input: Input, _now: Instant) {
            self.core.handle(input);
        }

        forward_to_core!();

        broadcast_queue_methods!("BUS");
    };
}

/// Settings for [`Bus`] and [`XBus`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// How many messages may wait for each busy pipe; when a pipe's queue is full the new
    /// message is dropped for that pipe. Default: 16. 0 counts as 1.
    pub send_buffer: usize,
    /// How many received messages may wait for [`Protocol::recv`]; when full, new messages
    /// are dropped. Default: 16. 0 counts as 1.
    pub recv_buffer: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            send_buffer: DEFAULT_SEND_BUFFER,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

/// The cooked BUS role (SP type 112): sends each message to every directly connected BUS peer
/// and receives from all of them.
///
/// Follows SP-PROTOCOLS.md section 4.7 with NNG's queueing. [`Protocol::send`] strips the
/// header and never blocks: an idle pipe gets its copy at once and turns busy, a busy pipe's
/// copy waits in that pipe's queue of `send_buffer` messages, and when that queue is full the
/// **new** copy is dropped for that pipe and counted ([`Bus::dropped`]). A received message
/// waits in one queue of `recv_buffer` messages; when it is full the new message is dropped and
/// counted ([`Bus::recv_dropped`]). BUS never pauses a pipe and never forwards what it receives
/// to its other peers (`test_bus_star`).
///
/// ```text
///  send --> for each pipe: [ idle? ] -- yes --> written, pipe turns busy
///                              | no
///                              +--> [ queue full? ] -- no --> queued (PipeWritable writes it)
///                                         | yes
///                                         +--> dropped for this pipe, counted
///
///  Received --> [ recv queue full? ] -- no --> queued; Event::Readable if it was empty
///                        | yes
///                        +--> dropped, counted (never forwarded to other pipes)
/// ```
///
/// **Inputs.** [`Input::PipeAdded`] (a peer other than BUS is refused), [`Input::PipeRemoved`]
/// (copies still queued for it are discarded; received messages stay), [`Input::PipeWritable`],
/// [`Input::Received`].
///
/// **Events.** [`Event::Readable`] when the receive queue stops being empty;
/// [`Event::ClosePipe`] for a wrong peer. Never [`Event::Writable`]: sending never returns
/// `WouldBlock`.
///
/// **Counters** ([`Protocol::stats`]): [`DropReason::SendQueueFull`] per copy a full pipe
/// queue drops, [`DropReason::RecvQueueFull`] per received message the full receive queue
/// drops, [`DropReason::PipeClosed`] for copies still queued when their pipe went away or
/// handed back unsent ([`Input::Unsent`]), and [`DropReason::QueueShrunk`] for messages discarded by resizing either queue. A message sent
/// with no pipe attached is not a drop: it reached every peer there was.
///
/// **Timers.** None.
#[derive(Debug)]
pub struct Bus {
    core: BusCore,
}

impl Bus {
    bus_common_methods!("BUS");
}

impl Protocol for Bus {
    fn drops_when_full(&self) -> bool {
        true
    }

    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    bus_pipe_methods!();

    /// Gives a copy of `msg.body` (the header is discarded) to every attached pipe.
    ///
    /// # Errors
    /// None: BUS never blocks, and with no pipe the message is discarded.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        self.core.fanout.send(Message::new(msg.body), None);
        Ok(())
    }

    /// Returns true: a BUS send never fails (a peer with a full queue loses a copy).
    #[inline]
    fn will_take(&self, _msg: &Message) -> bool {
        true
    }

    /// Takes the oldest received message, with an empty header and [`Message::pipe`] naming
    /// the pipe it came from.
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (pipe, body) = self.core.recv()?;
        Ok(Message::new(body).with_pipe(pipe))
    }
}

/// The raw BUS role (SP type 112, NNG's `bus0` raw mode): [`Bus`] with the origin pipe in the
/// header, so that a device can re-broadcast without echoing.
///
/// Follows SP-PROTOCOLS.md sections 4.7 and 5.1:
///
/// * **Receive.** The header is the 4-byte big-endian ID of the pipe the message came from;
///   the body is the message as it was on the wire.
/// * **Send.** When the header holds at least 4 bytes, its first word names a pipe to
///   **skip** and is removed; the rest of the header and the body go to every other pipe. A
///   message received from pipe P and sent back unchanged therefore reaches every peer but P
///   (`TestXBusNoLoop`). A shorter header goes out unchanged to every pipe, as does a word
///   that names no attached pipe.
///
/// Queues, drops and counters are those of [`Bus`].
///
/// ```text
///  Received on pipe P --> queued as [P] body          (full: dropped, counted)
///  send [W rest..] body --> rest.. body to every pipe except W, if the header has >= 4 bytes
///  send [short] body    --> short body to every pipe
/// ```
///
/// **Inputs.** As [`Bus`]. **Events.** As [`Bus`]. **Timers.** None.
#[derive(Debug)]
pub struct XBus {
    core: BusCore,
}

impl XBus {
    bus_common_methods!("raw BUS");
}

impl Protocol for XBus {
    fn drops_when_full(&self) -> bool {
        true
    }

    /// Returns false: this core has no timers and reads no `now` it is given.
    fn reads_time(&self) -> bool {
        false
    }

    bus_pipe_methods!();

    /// Returns true: XBUS is the raw BUS.
    fn is_raw(&self) -> bool {
        true
    }

    /// Sends `msg` to every attached pipe except the one its first header word names, with
    /// that word removed; see the type docs.
    ///
    /// # Errors
    /// None: BUS never blocks, and with no pipe the message is discarded.
    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        let Message { header, body, .. } = msg;
        let (skip, header) = match read_word(&header) {
            Some(word) => (PipeId::new(word), header.slice(WORD_LEN..)),
            None => (None, header),
        };
        self.core
            .fanout
            .send(Message::with_header(header, body), skip);
        Ok(())
    }

    /// Returns true: a raw BUS send never fails, whatever its header.
    #[inline]
    fn will_take(&self, _msg: &Message) -> bool {
        true
    }

    /// Takes the oldest received message; its header is the ID of the pipe it came from, as
    /// is its [`Message::pipe`].
    ///
    /// # Errors
    /// [`RecvError::WouldBlock`] when nothing is queued.
    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        let (pipe, body) = self.core.recv()?;
        let header = Bytes::copy_from_slice(&pipe.get().to_be_bytes());
        Ok(Message::with_header(header, body).with_pipe(pipe))
    }
}

/// What [`Bus`] and [`XBus`] share: the broadcasting send side and a lossy receive queue that
/// remembers each message's pipe.
#[derive(Debug)]
struct BusCore {
    fanout: Broadcast,
    queue: DropQueue<(PipeId, Bytes)>,
    /// Received messages dropped (a full queue, or shrinking it); the send side's drops are
    /// in `fanout`.
    drops: DropCounts,
}

impl BusCore {
    fn new(config: &BusConfig) -> Self {
        Self {
            fanout: Broadcast::new(ProtocolId::BUS, config.send_buffer, Overflow::DropNewest),
            queue: DropQueue::new(config.recv_buffer, Overflow::DropNewest),
            drops: DropCounts::default(),
        }
    }

    fn handle(&mut self, input: Input) {
        if let Some(received) = self.fanout.handle(input) {
            match self.queue.push(received) {
                Pushed::First => self.fanout.push_event(Event::Readable),
                Pushed::Queued => {}
                Pushed::Dropped => self.drops.record(DropReason::RecvQueueFull),
            }
        }
    }

    fn recv(&mut self) -> Result<(PipeId, Bytes), RecvError> {
        self.queue.pop().ok_or(RecvError::WouldBlock)
    }

    #[inline]
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.fanout.poll_transmit()
    }

    #[inline]
    fn poll_event(&mut self) -> Option<Event> {
        self.fanout.poll_event()
    }

    #[inline]
    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.fanout.is_receiving(pipe)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::testing::{add, drain_ev, drain_tx, p, receive};
    use crate::protocol::PipeCloseReason;

    fn with_pipes<T: Protocol>(mut proto: T, pipes: &[u32]) -> T {
        for &pipe in pipes {
            add(&mut proto, pipe, ProtocolId::BUS);
        }
        proto
    }

    #[test]
    fn bus_sends_body_to_every_pipe_and_drops_new_when_a_queue_is_full() {
        let now = Instant::now();
        let mut bus = with_pipes(
            Bus::new(BusConfig {
                send_buffer: 1,
                ..BusConfig::default()
            }),
            &[1, 2],
        );

        bus.send(Message::with_header(&b"hd"[..], &b"a"[..]), now)
            .unwrap();
        bus.handle(Input::PipeWritable { pipe: p(2) }, now);
        for body in ["b", "c"] {
            bus.send(Message::from(body), now).unwrap();
        }

        assert_eq!(
            drain_tx(&mut bus),
            vec![(1, "a".into()), (2, "a".into()), (2, "b".into())]
        );
        assert_eq!(bus.dropped(), 1, "pipe 1 had b queued, so c was dropped");
        assert_eq!(bus.dropped_on(p(1)), Some(1));
        assert_eq!(bus.dropped_on(p(2)), Some(0));
        bus.handle(Input::PipeWritable { pipe: p(1) }, now);
        assert_eq!(drain_tx(&mut bus), vec![(1, "b".into())]);
        assert!(drain_ev(&mut bus).is_empty(), "no Writable: never blocks");
    }

    #[test]
    fn bus_receives_from_every_pipe_without_forwarding_and_drops_when_full() {
        let now = Instant::now();
        let mut bus = with_pipes(
            Bus::new(BusConfig {
                recv_buffer: 2,
                ..BusConfig::default()
            }),
            &[1, 2],
        );

        receive(&mut bus, 1, "one");
        receive(&mut bus, 2, "two");
        receive(&mut bus, 2, "three");

        assert!(drain_tx(&mut bus).is_empty(), "nothing forwarded");
        assert_eq!(drain_ev(&mut bus), vec![Event::Readable]);
        assert_eq!(bus.recv_dropped(), 1);
        assert!(bus.is_receiving(p(2)), "BUS never pauses");
        assert_eq!(bus.recv(now).unwrap(), Message::from("one").with_pipe(p(1)));
        assert_eq!(bus.recv(now).unwrap(), Message::from("two").with_pipe(p(2)));
        assert_eq!(bus.recv(now), Err(RecvError::WouldBlock));
    }

    #[test]
    fn bus_refuses_non_bus_peer() {
        let mut bus = Bus::new(BusConfig::default());
        bus.handle(
            Input::PipeAdded {
                pipe: p(1),
                peer: ProtocolId::PAIR0,
            },
            Instant::now(),
        );
        let reason = PipeCloseReason::IncompatiblePeer(ProtocolId::PAIR0);
        assert_eq!(
            drain_ev(&mut bus),
            vec![Event::ClosePipe { pipe: p(1), reason }]
        );
        assert!(!bus.is_receiving(p(1)));
    }

    #[test]
    fn xbus_tags_received_messages_with_their_pipe() {
        let now = Instant::now();
        let mut xbus = with_pipes(XBus::new(BusConfig::default()), &[0x0102_0304]);
        receive(&mut xbus, 0x0102_0304, "hi");
        let msg = xbus.recv(now).unwrap();
        assert_eq!(&msg.header[..], [0x01, 0x02, 0x03, 0x04]);
        assert_eq!(msg.body, "hi");
    }

    #[test]
    fn xbus_skips_the_pipe_named_in_the_header_and_keeps_the_rest() {
        let now = Instant::now();
        let mut xbus = with_pipes(XBus::new(BusConfig::default()), &[1, 2, 3]);

        xbus.send(
            Message::with_header(&b"\x00\x00\x00\x02xy"[..], &b"m"[..]),
            now,
        )
        .unwrap();

        assert_eq!(
            drain_tx(&mut xbus),
            vec![(1, "xym".into()), (3, "xym".into())]
        );
    }

    #[test]
    fn xbus_short_header_or_unknown_pipe_goes_to_every_pipe() {
        let now = Instant::now();
        let mut xbus = with_pipes(XBus::new(BusConfig::default()), &[1, 2]);
        xbus.send(Message::with_header(&b"\x00\x02"[..], &b"m"[..]), now)
            .unwrap();
        assert_eq!(
            drain_tx(&mut xbus),
            vec![(1, "\x00\x02m".into()), (2, "\x00\x02m".into())]
        );
        for pipe in [1, 2] {
            xbus.handle(Input::PipeWritable { pipe: p(pipe) }, now);
        }
        xbus.send(
            Message::with_header(&b"\x80\x00\x00\x01"[..], &b"m"[..]),
            now,
        )
        .unwrap();
        assert_eq!(drain_tx(&mut xbus), vec![(1, "m".into()), (2, "m".into())]);
    }
}
