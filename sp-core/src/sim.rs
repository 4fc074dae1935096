//! A deterministic simulation harness: protocol cores, virtual time and seeded links.
//!
//! Compiled for this crate's unit tests and, with the `sim` feature, for tests elsewhere.
//! Nothing here reads a clock: virtual time starts at the `Instant` given to [`Sim::new`] and
//! only moves when [`Sim::step`] jumps to the next thing that happens. All randomness (latency
//! jitter, loss) comes from one [`SplitMix64`] seeded in [`Sim::new`], so a seed and a script
//! replay exactly, transcript included.
//!
//! ```text
//!   node A (Box<dyn Protocol> + App)        link (latency, jitter, loss, capacity)       node B
//!   poll_transmit ───────> [A→B FIFO of in-flight messages] ──deliver──> Input::Received
//!   Input::PipeWritable <─── when A→B holds fewer than `capacity` messages
//!   Input::Received <──deliver── [B→A FIFO] <─────────────────────────────── poll_transmit
//! ```
//!
//! Each [`Sim::step`] picks the earliest of: a scripted [`Action`], the delivery at the head of
//! a link direction whose receiver is receiving, and a node's `poll_timeout`. Ties go in that
//! order, then by index. Virtual time moves to it, it is applied, and every affected node is
//! drained (transmits, events, application reactions) before the next step.
//!
//! [`Sim::disconnect`] loses what is in flight; [`Sim::disconnect_returning_unsent`] (and
//! [`Action::DisconnectReturningUnsent`]) treats it as still in the senders' driver queues and
//! hands it back to each sender with [`Input::Unsent`] before [`Input::PipeRemoved`].
//!
//! The harness follows the pipe readiness contract of [`crate::protocol`] to the letter and
//! fails (with the seed) when a core breaks it: a transmit on a busy or unknown pipe, or a
//! [`Event::ResumeReceiving`] for a pipe that is still not receiving. When a test panics while a
//! [`Sim`] is alive, the seed and the end of the transcript are printed.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::{Event, Input, Protocol, RecvError, SendError, Transmit};
use crate::rng::SplitMix64;
use crate::{Message, PipeId, PipeIdAllocator, ProtocolId};

/// Identifies a node of a [`Sim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Identifies a link (a dialer relationship between two nodes) of a [`Sim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(usize);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l{}", self.0)
    }
}

/// How a link behaves while connected.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way delay of every message. Default: 1 ms.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per message; messages never overtake each
    /// other within one direction. Default: 0.
    pub jitter: Duration,
    /// Probability in `0.0..=1.0` that a message vanishes in transit. Default: 0.
    pub loss: f64,
    /// How many messages one direction may hold in flight before the sender's pipe turns
    /// busy; it becomes writable again when the oldest one is delivered. 0 counts as 1.
    /// Default: 1.
    pub capacity: usize,
    /// When a core closes the link's pipe ([`Event::ClosePipe`]), reconnect after this long.
    /// Explicit [`Action::Disconnect`] never redials. Default: `None`.
    pub redial: Option<Duration>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss: 0.0,
            capacity: 1,
            redial: None,
        }
    }
}

/// What the simulated application on a node does by itself.
pub enum App {
    /// Only scripted [`Action`]s touch the socket (blocking sends still retry on
    /// [`Event::Writable`]).
    Manual,
    /// On [`Event::Readable`], receives until `WouldBlock` and keeps every result in the inbox.
    Collect,
    /// A server: receives like [`App::Collect`], and answers each message with the closure's
    /// result (`None`: no answer). A reply that gets `WouldBlock` is retried on
    /// [`Event::Writable`] before anything else is received.
    Responder(ResponderFn),
}

/// The closure of an [`App::Responder`]: the answer to a received message, if any.
pub type ResponderFn = Box<dyn FnMut(&Message) -> Option<Bytes>>;

impl App {
    /// Returns a responder that answers each message with `prefix` followed by its body.
    pub fn prefix_responder(prefix: &'static str) -> Self {
        App::Responder(Box::new(move |m: &Message| {
            let mut out = prefix.as_bytes().to_vec();
            out.extend_from_slice(&m.body);
            Some(out.into())
        }))
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            App::Manual => f.write_str("Manual"),
            App::Collect => f.write_str("Collect"),
            App::Responder(_) => f.write_str("Responder"),
        }
    }
}

/// A scripted step, applied at a given virtual time with [`Sim::at`].
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The application tries one send; the result is kept in [`Sim::sends`].
    Send {
        /// The node that sends.
        node: NodeId,
        /// The body.
        body: Bytes,
    },
    /// The application sends and, on `WouldBlock`, waits for [`Event::Writable`] and retries,
    /// like a blocking send with no timeout. Blocking sends of one node go out in order.
    SendBlocking {
        /// The node that sends.
        node: NodeId,
        /// The body.
        body: Bytes,
    },
    /// The application tries one receive; anything but `WouldBlock` goes to the inbox.
    Recv {
        /// The node that receives.
        node: NodeId,
    },
    /// The link connects, with a fresh pipe ID on each side. No-op while connected.
    Connect(LinkId),
    /// The link disconnects; messages in flight are lost. No-op while disconnected.
    Disconnect(LinkId),
    /// The link disconnects as if each side's driver still held, unwritten, every message in
    /// flight from it: each side gets them back as [`Input::Unsent`], in the order it sent
    /// them, right before its [`Input::PipeRemoved`] ([`Sim::disconnect_returning_unsent`]).
    /// No-op while disconnected.
    DisconnectReturningUnsent(LinkId),
}

/// One message (or receive error) the application on a node got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// Virtual time since the start.
    pub at: Duration,
    /// What `recv` returned.
    pub result: Result<Message, RecvError>,
    /// The body of the node's latest successful send at that moment (the current request).
    pub current_request: Option<Bytes>,
}

/// One send attempt by the application on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRecord {
    /// Virtual time since the start.
    pub at: Duration,
    /// The body.
    pub body: Bytes,
    /// What `send` returned.
    pub result: Result<(), SendError>,
}

/// A protocol core the simulator can hold and hand back as its concrete type.
pub trait SimProtocol: Protocol {
    /// Returns `self` for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// Returns `self` for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Protocol + Any> SimProtocol for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// One transcript line: virtual time since the start, the node it concerns, and what happened.
pub type TranscriptEntry = (Duration, NodeId, String);

/// The simulator. See the module docs.
pub struct Sim {
    seed: u64,
    rng: SplitMix64,
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    links: Vec<Link>,
    script: BTreeMap<(Instant, u64), Action>,
    script_seq: u64,
    next_conn: u64,
    work: VecDeque<Work>,
    transcript: Vec<TranscriptEntry>,
    steps: usize,
    step_limit: usize,
}

impl Sim {
    /// Creates an empty simulation whose virtual clock starts at `start`.
    pub fn new(seed: u64, start: Instant) -> Self {
        Self {
            seed,
            rng: SplitMix64::new(seed),
            start,
            now: start,
            nodes: Vec::new(),
            links: Vec::new(),
            script: BTreeMap::new(),
            script_seq: 0,
            next_conn: 0,
            work: VecDeque::new(),
            transcript: Vec::new(),
            steps: 0,
            step_limit: 1_000_000,
        }
    }

    /// Returns the seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Returns the current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Returns the virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Returns the number of steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Bounds the total number of steps of [`Sim::run_until`]; exceeding it fails the test.
    /// Default: 1 000 000.
    pub fn set_step_limit(&mut self, limit: usize) {
        self.step_limit = limit;
    }

    /// Adds a node running `protocol`, with `app` reacting to its events.
    pub fn add_node(
        &mut self,
        name: &str,
        protocol: impl SimProtocol + 'static,
        app: App,
    ) -> NodeId {
        let id = NodeId(self.nodes.len());
        let pipe_seed = self.seed ^ (id.0 as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.nodes.push(Node {
            name: name.to_owned(),
            proto: Box::new(protocol),
            app,
            pipe_ids: PipeIdAllocator::new(pipe_seed),
            pipes: BTreeMap::new(),
            inbox: Vec::new(),
            sends: Vec::new(),
            blocked_sends: VecDeque::new(),
            pending_reply: None,
            last_sent: None,
        });
        id
    }

    /// Declares a link between `a` (the dialer) and `b`. It starts disconnected.
    pub fn add_link(&mut self, a: NodeId, b: NodeId, config: LinkConfig) -> LinkId {
        let id = LinkId(self.links.len());
        self.links.push(Link {
            ends: [a, b],
            config,
            conn: None,
        });
        id
    }

    /// Schedules `action` at `after` since the start (or now, if that has passed).
    pub fn at(&mut self, after: Duration, action: Action) {
        let when = (self.start + after).max(self.now);
        self.script.insert((when, self.script_seq), action);
        self.script_seq += 1;
    }

    /// Connects `link` now and processes the consequences.
    pub fn connect(&mut self, link: LinkId) {
        self.connect_link(link);
        self.process();
    }

    /// Disconnects `link` now and processes the consequences.
    pub fn disconnect(&mut self, link: LinkId) {
        self.disconnect_link(link, "disconnect", false, false);
        self.process();
    }

    /// Disconnects `link` now as a driver with per-pipe write queues does when a pipe dies:
    /// every message still in flight from a side is treated as never written and handed back
    /// to that side's core as one [`Input::Unsent`] each, in the order it was transmitted,
    /// immediately before that side's [`Input::PipeRemoved`] (with nothing in between: the
    /// application does not react to the core's events until `PipeRemoved` is applied). Then
    /// processes the consequences.
    ///
    /// A core that transmits on the dying pipe after getting its messages back fails the test
    /// (a transmit on an unknown pipe), since the pipe is removed before its outputs are read.
    pub fn disconnect_returning_unsent(&mut self, link: LinkId) {
        self.disconnect_link(link, "disconnect", false, true);
        self.process();
    }

    /// Returns true while `link` is connected.
    pub fn is_connected(&self, link: LinkId) -> bool {
        self.links[link.0].conn.is_some()
    }

    /// Makes the application on `node` try one send now; returns (and records) the result.
    pub fn send(&mut self, node: NodeId, body: impl Into<Bytes>) -> Result<(), SendError> {
        let result = self.app_send(node, body.into());
        self.process();
        result
    }

    /// Makes the application on `node` try one receive now; returns the result and keeps it in
    /// the inbox unless it is `WouldBlock`.
    pub fn recv(&mut self, node: NodeId) -> Result<Message, RecvError> {
        let result = self.app_recv(node);
        self.process();
        result
    }

    /// Runs `f` on the core of `node`, downcast to `T`, then processes its outputs.
    ///
    /// # Panics
    /// When the node's core is not a `T`.
    pub fn with_protocol<T: 'static, R>(
        &mut self,
        node: NodeId,
        f: impl FnOnce(&mut T, Instant) -> R,
    ) -> R {
        let now = self.now;
        let seed = self.seed;
        let proto = self.nodes[node.0].proto.as_any_mut().downcast_mut::<T>();
        let Some(proto) = proto else {
            panic!("sim (seed {seed}): node {node} does not hold the requested protocol type");
        };
        let result = f(proto, now);
        self.drain(node);
        self.process();
        result
    }

    /// Returns the core of `node` downcast to `T`, if it is one.
    pub fn protocol<T: 'static>(&self, node: NodeId) -> Option<&T> {
        self.nodes[node.0].proto.as_any().downcast_ref()
    }

    /// Returns what the application on `node` received.
    pub fn inbox(&self, node: NodeId) -> &[InboxEntry] {
        &self.nodes[node.0].inbox
    }

    /// Returns the bodies of the messages the application on `node` received successfully.
    pub fn received_bodies(&self, node: NodeId) -> Vec<Bytes> {
        let inbox = &self.nodes[node.0].inbox;
        inbox
            .iter()
            .filter_map(|e| e.result.as_ref().ok().map(|m| m.body.clone()))
            .collect()
    }

    /// Returns every send attempt of the application on `node`.
    pub fn sends(&self, node: NodeId) -> &[SendRecord] {
        &self.nodes[node.0].sends
    }

    /// Returns the name given to `node`.
    pub fn name(&self, node: NodeId) -> &str {
        &self.nodes[node.0].name
    }

    /// Returns the transcript so far.
    pub fn transcript(&self) -> &[TranscriptEntry] {
        &self.transcript
    }

    /// Returns the transcript as text, one `time node: what` line per entry.
    pub fn transcript_text(&self) -> String {
        self.render_transcript(0)
    }

    /// Returns true when some transcript line of `node` contains `needle`.
    pub fn transcript_contains(&self, node: NodeId, needle: &str) -> bool {
        self.transcript
            .iter()
            .any(|(_, n, line)| *n == node && line.contains(needle))
    }

    /// Fails the test with `msg`, the seed and the end of the transcript.
    pub fn fail(&self, msg: &str) -> ! {
        panic!(
            "sim failure (seed {}) at {:?}: {msg}\n--- transcript tail ---\n{}",
            self.seed,
            self.elapsed(),
            self.render_transcript(self.transcript.len().saturating_sub(40))
        )
    }

    /// Fails the test (with the seed) unless `cond` holds.
    pub fn check(&self, cond: bool, msg: impl FnOnce() -> String) {
        if !cond {
            self.fail(&msg());
        }
    }

    /// Takes one step: moves virtual time to the earliest pending thing, applies it and drains
    /// every affected node. Returns false when nothing is pending.
    pub fn step(&mut self) -> bool {
        let Some((at, due)) = self.next_due() else {
            return false;
        };
        self.now = self.now.max(at);
        self.steps += 1;
        match due {
            Due::Action(key) => {
                if let Some(action) = self.script.remove(&key) {
                    self.apply_action(action);
                }
            }
            Due::Deliver(link, side) => self.deliver(link, side),
            Due::Timer(node) => self.work.push_back(Work::Timeout(node)),
        }
        self.process();
        true
    }

    /// Steps until nothing is pending and returns the number of steps taken.
    ///
    /// A core with an armed timer is never idle (for example REQ waiting for a reply with
    /// resending on); use [`Sim::run_until`] for those. Messages held back because their
    /// receiver paused the pipe do not count as pending.
    ///
    /// # Panics
    /// When more than `max_steps` steps would be needed; the message holds the seed.
    pub fn run_until_idle(&mut self, max_steps: usize) -> usize {
        let mut taken = 0;
        while self.step() {
            taken += 1;
            if taken > max_steps {
                self.fail(&format!("not idle after {max_steps} steps"));
            }
        }
        taken
    }

    /// Steps through everything due up to `after` since the start, then sets the clock there.
    pub fn run_until(&mut self, after: Duration) {
        let target = self.start + after;
        while let Some((at, _)) = self.next_due() {
            if at > target {
                break;
            }
            self.step();
            if self.steps > self.step_limit {
                self.fail(&format!("step limit {} exceeded", self.step_limit));
            }
        }
        self.now = self.now.max(target);
    }

    /// Runs for `duration` of virtual time from now.
    pub fn run_for(&mut self, duration: Duration) {
        let after = self.elapsed() + duration;
        self.run_until(after);
    }

    fn next_due(&self) -> Option<(Instant, Due)> {
        let mut best: Option<(Instant, Due)> = None;
        let mut offer = |at: Instant, due: Due| {
            // Strictly earlier wins, so ties keep the first offer (actions, links, timers).
            match &best {
                Some((t, _)) if *t <= at => {}
                _ => best = Some((at, due)),
            }
        };
        if let Some((key, _)) = self.script.first_key_value() {
            offer(key.0, Due::Action(*key));
        }
        for (index, link) in self.links.iter().enumerate() {
            let Some(conn) = &link.conn else { continue };
            for side in 0..2 {
                let dir = &conn.dirs[side];
                if dir.receiver_paused {
                    continue;
                }
                if let Some(head) = dir.queue.front() {
                    offer(head.at.max(self.now), Due::Deliver(LinkId(index), side));
                }
            }
        }
        for (index, node) in self.nodes.iter().enumerate() {
            if let Some(deadline) = node.proto.poll_timeout() {
                offer(deadline.max(self.now), Due::Timer(NodeId(index)));
            }
        }
        best
    }

    fn apply_action(&mut self, action: Action) {
        match action {
            Action::Send { node, body } => {
                let _ = self.app_send(node, body);
            }
            Action::SendBlocking { node, body } => {
                self.log(node, format!("app send-blocking {body:?} queued"));
                self.nodes[node.0].blocked_sends.push_back(body);
                self.pump_blocked_sends(node);
                self.drain(node);
            }
            Action::Recv { node } => {
                let _ = self.app_recv(node);
            }
            Action::Connect(link) => self.connect_link(link),
            Action::Disconnect(link) => self.disconnect_link(link, "disconnect", false, false),
            Action::DisconnectReturningUnsent(link) => {
                self.disconnect_link(link, "disconnect", false, true);
            }
        }
    }

    fn app_send(&mut self, node: NodeId, body: Bytes) -> Result<(), SendError> {
        let now = self.now;
        let at = self.elapsed();
        let n = &mut self.nodes[node.0];
        let result = n.proto.send(Message::new(body.clone()), now);
        if result.is_ok() {
            n.last_sent = Some(body.clone());
        }
        n.sends.push(SendRecord {
            at,
            body: body.clone(),
            result,
        });
        self.log(node, format!("app send {body:?} -> {result:?}"));
        self.drain(node);
        result
    }

    fn app_recv(&mut self, node: NodeId) -> Result<Message, RecvError> {
        let now = self.now;
        let at = self.elapsed();
        let n = &mut self.nodes[node.0];
        let result = n.proto.recv(now);
        if result != Err(RecvError::WouldBlock) {
            let current_request = n.last_sent.clone();
            n.inbox.push(InboxEntry {
                at,
                result: result.clone(),
                current_request,
            });
        }
        self.log(node, format!("app recv -> {}", fmt_recv(&result)));
        self.drain(node);
        result
    }

    fn connect_link(&mut self, link: LinkId) {
        let l = &self.links[link.0];
        if l.conn.is_some() {
            return;
        }
        let ends = l.ends;
        let conn_id = self.next_conn;
        self.next_conn += 1;
        let pipes = ends.map(|node| self.nodes[node.0].pipe_ids.allocate());
        let peers = ends.map(|node| self.nodes[node.0].proto.protocol());
        for side in 0..2 {
            let end = PipeEnd {
                link,
                side,
                conn: conn_id,
                closing: false,
            };
            self.nodes[ends[side].0].pipes.insert(pipes[side], end);
        }
        self.links[link.0].conn = Some(Conn {
            id: conn_id,
            pipes,
            dirs: [Dir::new(), Dir::new()],
        });
        self.log(
            ends[0],
            format!(
                "net connect {link} {}:{} <-> {}:{}",
                self.name(ends[0]),
                pipes[0],
                self.name(ends[1]),
                pipes[1]
            ),
        );
        for side in 0..2 {
            let input = Input::PipeAdded {
                pipe: pipes[side],
                peer: peers[1 - side],
            };
            self.work.push_back(Work::Input(ends[side], input));
        }
    }

    /// Tears down `link`'s connection and queues each side's `PipeRemoved`, preceded, when
    /// `return_unsent`, by an `Unsent` for each message in flight from that side.
    fn disconnect_link(&mut self, link: LinkId, why: &str, by_core: bool, return_unsent: bool) {
        let l = &mut self.links[link.0];
        let Some(conn) = l.conn.take() else {
            return;
        };
        let ends = l.ends;
        let redial = if by_core { l.config.redial } else { None };
        let in_flight: usize = conn.dirs.iter().map(|d| d.queue.len()).sum();
        let fate = if return_unsent {
            "returned unsent"
        } else {
            "lost"
        };
        self.log(
            ends[0],
            format!("net {why} {link} ({in_flight} in flight {fate})"),
        );
        for (side, (node, pipe)) in ends.into_iter().zip(conn.pipes).enumerate() {
            if let Some(end) = self.nodes[node.0].pipes.get_mut(&pipe) {
                end.closing = true;
            }
            if return_unsent {
                for flight in &conn.dirs[side].queue {
                    let msg = flight.msg.clone();
                    self.work
                        .push_back(Work::Input(node, Input::Unsent { pipe, msg }));
                }
            }
            self.work
                .push_back(Work::Input(node, Input::PipeRemoved { pipe }));
        }
        if let Some(delay) = redial {
            self.at(self.elapsed() + delay, Action::Connect(link));
        }
    }

    fn deliver(&mut self, link: LinkId, side: usize) {
        let l = &mut self.links[link.0];
        let receiver = l.ends[1 - side];
        let Some(conn) = &mut l.conn else { return };
        let pipe = conn.pipes[1 - side];
        let conn_id = conn.id;
        let dir = &mut conn.dirs[side];
        let Some(flight) = dir.queue.pop_front() else {
            return;
        };
        let wake = !dir.writable && !dir.wake_pending;
        if wake {
            dir.wake_pending = true;
        }
        if flight.lost {
            self.log(
                receiver,
                format!("net lost on {pipe}: {}", fmt_msg(&flight.msg)),
            );
        } else {
            // The wire carries header and body back to back; the receiver parses the header.
            let msg = Message::new(flight.msg.to_contiguous());
            self.work
                .push_back(Work::Input(receiver, Input::Received { pipe, msg }));
        }
        if wake {
            self.work.push_back(Work::Writable {
                link,
                conn: conn_id,
                side,
            });
        }
    }

    /// Applies queued work until there is none.
    fn process(&mut self) {
        let mut budget = 1_000_000usize;
        while let Some(work) = self.work.pop_front() {
            budget -= 1;
            if budget == 0 {
                self.fail("work loop does not settle within one instant");
            }
            match work {
                Work::Input(node, input) => self.apply_input(node, input),
                Work::Timeout(node) => {
                    let now = self.now;
                    self.log(node, "timeout".to_owned());
                    self.nodes[node.0].proto.handle_timeout(now);
                    self.drain(node);
                }
                Work::Writable { link, conn, side } => {
                    let l = &mut self.links[link.0];
                    let sender = l.ends[side];
                    let Some(c) = &mut l.conn else { continue };
                    if c.id != conn {
                        continue;
                    }
                    c.dirs[side].writable = true;
                    c.dirs[side].wake_pending = false;
                    let pipe = c.pipes[side];
                    self.apply_input(sender, Input::PipeWritable { pipe });
                }
            }
        }
    }

    fn apply_input(&mut self, node: NodeId, input: Input) {
        let now = self.now;
        let (pipe, removed) = match &input {
            Input::PipeAdded { pipe, .. } => (*pipe, false),
            Input::PipeRemoved { pipe } => (*pipe, true),
            Input::PipeWritable { pipe } | Input::Received { pipe, .. } => (*pipe, false),
            Input::Unsent { pipe, .. } => (*pipe, false),
        };
        let Some(end) = self.nodes[node.0].pipes.get(&pipe).copied() else {
            return;
        };
        let unsent = matches!(input, Input::Unsent { .. });
        if end.closing && !removed && !unsent {
            // The connection is already gone; only its Unsent and PipeRemoved still go in.
            return;
        }
        self.log(node, format!("in {}", fmt_input(&input)));
        let is_received = matches!(input, Input::Received { .. });
        let n = &mut self.nodes[node.0];
        n.proto.handle(input, now);
        if unsent {
            // The driver contract: nothing happens between the Unsent inputs and PipeRemoved,
            // which comes next in the work queue and drains the outputs of all of them.
            return;
        }
        if removed {
            n.pipes.remove(&pipe);
        } else if is_received && !n.proto.is_receiving(pipe) {
            if let Some(conn) = &mut self.links[end.link.0].conn {
                conn.dirs[1 - end.side].receiver_paused = true;
            }
        }
        self.drain(node);
    }

    /// Pulls every output of `node` and reacts to it, application included.
    fn drain(&mut self, node: NodeId) {
        for _ in 0..1_000_000 {
            if let Some(tx) = self.nodes[node.0].proto.poll_transmit() {
                self.on_transmit(node, tx);
            } else if let Some(event) = self.nodes[node.0].proto.poll_event() {
                self.on_event(node, event);
            } else {
                return;
            }
        }
        self.fail("a core keeps producing outputs");
    }

    fn on_transmit(&mut self, node: NodeId, tx: Transmit) {
        self.log(node, format!("tx {} {}", tx.pipe, fmt_msg(&tx.msg)));
        let Some(end) = self.nodes[node.0].pipes.get(&tx.pipe).copied() else {
            self.fail(&format!(
                "{} transmitted on unknown pipe {}",
                self.name(node),
                tx.pipe
            ));
        };
        if end.closing {
            self.log(node, format!("net dropped: {} is closing", tx.pipe));
            return;
        }
        let busy = match &self.links[end.link.0].conn {
            Some(conn) => !conn.dirs[end.side].writable,
            None => false,
        };
        if busy {
            self.fail(&format!(
                "{} transmitted on busy pipe {}",
                self.name(node),
                tx.pipe
            ));
        }
        let jitter = self.sample_jitter(end.link);
        let lost = self.sample_loss(end.link);
        let now = self.now;
        let l = &mut self.links[end.link.0];
        let capacity = l.config.capacity.max(1);
        let at = now + l.config.latency + jitter;
        let Some(conn) = &mut l.conn else { return };
        let conn_id = conn.id;
        let dir = &mut conn.dirs[end.side];
        // One direction is a FIFO byte stream: a message never overtakes the one before it.
        let at = dir.queue.back().map_or(at, |last| at.max(last.at));
        dir.queue.push_back(InFlight {
            at,
            msg: tx.msg,
            lost,
        });
        dir.writable = false;
        if dir.queue.len() < capacity {
            dir.wake_pending = true;
            self.work.push_back(Work::Writable {
                link: end.link,
                conn: conn_id,
                side: end.side,
            });
        }
    }

    fn on_event(&mut self, node: NodeId, event: Event) {
        self.log(node, format!("ev {event:?}"));
        match event {
            Event::Readable | Event::Writable => self.pump_app(node),
            // Context operations are driven by the test itself through `with_protocol`.
            Event::ContextReadable { .. } | Event::ContextWritable { .. } => {}
            Event::ClosePipe { pipe, reason } => {
                if let Some(end) = self.nodes[node.0].pipes.get(&pipe).copied() {
                    if !end.closing {
                        let why = format!("closed by core ({reason})");
                        self.disconnect_link(end.link, &why, true, false);
                    }
                }
            }
            Event::ResumeReceiving { pipe } => {
                let Some(end) = self.nodes[node.0].pipes.get(&pipe).copied() else {
                    return;
                };
                if !self.nodes[node.0].proto.is_receiving(pipe) {
                    self.fail(&format!(
                        "{} resumed {pipe} but is_receiving is false",
                        self.name(node)
                    ));
                }
                if let Some(conn) = &mut self.links[end.link.0].conn {
                    if conn.id == end.conn {
                        conn.dirs[1 - end.side].receiver_paused = false;
                    }
                }
            }
        }
    }

    fn pump_blocked_sends(&mut self, node: NodeId) {
        let now = self.now;
        let at = self.elapsed();
        let n = &mut self.nodes[node.0];
        let mut lines = Vec::new();
        while let Some(body) = n.blocked_sends.front().cloned() {
            let result = n.proto.send(Message::new(body.clone()), now);
            if result == Err(SendError::WouldBlock) {
                break;
            }
            n.blocked_sends.pop_front();
            if result.is_ok() {
                n.last_sent = Some(body.clone());
            }
            lines.push(format!("app send-blocking {body:?} -> {result:?}"));
            n.sends.push(SendRecord { at, body, result });
        }
        for line in lines {
            self.log(node, line);
        }
    }

    /// Lets the application of `node` react to Readable / Writable.
    fn pump_app(&mut self, node: NodeId) {
        self.pump_blocked_sends(node);
        let now = self.now;
        let at = self.elapsed();
        let n = &mut self.nodes[node.0];
        let mut lines = Vec::new();
        match &mut n.app {
            App::Manual => {}
            App::Collect => loop {
                let result = n.proto.recv(now);
                if matches!(
                    result,
                    Err(RecvError::WouldBlock | RecvError::BadState | RecvError::NotSupported)
                ) {
                    break;
                }
                lines.push(format!("app recv -> {}", fmt_recv(&result)));
                let current_request = n.last_sent.clone();
                n.inbox.push(InboxEntry {
                    at,
                    result,
                    current_request,
                });
            },
            App::Responder(answer) => loop {
                if let Some(reply) = n.pending_reply.take() {
                    let result = n.proto.send(Message::new(reply.clone()), now);
                    if result == Err(SendError::WouldBlock) {
                        n.pending_reply = Some(reply);
                        break;
                    }
                    lines.push(format!("app reply {reply:?} -> {result:?}"));
                    n.sends.push(SendRecord {
                        at,
                        body: reply,
                        result,
                    });
                }
                let result = n.proto.recv(now);
                if matches!(
                    result,
                    Err(RecvError::WouldBlock | RecvError::BadState | RecvError::NotSupported)
                ) {
                    break;
                }
                lines.push(format!("app recv -> {}", fmt_recv(&result)));
                if let Ok(msg) = &result {
                    n.pending_reply = answer(msg);
                }
                let current_request = n.last_sent.clone();
                n.inbox.push(InboxEntry {
                    at,
                    result,
                    current_request,
                });
            },
        }
        for line in lines {
            self.log(node, line);
        }
    }

    fn sample_jitter(&mut self, link: LinkId) -> Duration {
        let jitter = self.links[link.0].config.jitter;
        let nanos = u64::try_from(jitter.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.rng.below(nanos.saturating_add(1)))
    }

    fn sample_loss(&mut self, link: LinkId) -> bool {
        let loss = self.links[link.0].config.loss;
        if loss <= 0.0 {
            return false;
        }
        const SCALE: u64 = 1 << 32;
        self.rng.below(SCALE) < (loss.min(1.0) * SCALE as f64) as u64
    }

    fn log(&mut self, node: NodeId, line: String) {
        self.transcript.push((self.now - self.start, node, line));
    }

    fn render_transcript(&self, from: usize) -> String {
        let mut out = String::new();
        for (at, node, line) in &self.transcript[from..] {
            out.push_str(&format!(
                "{:>12.3?} {}: {line}\n",
                at, self.nodes[node.0].name
            ));
        }
        out
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "sim seed {} (replay with this seed); transcript tail:\n{}",
                self.seed,
                self.render_transcript(self.transcript.len().saturating_sub(40))
            );
        }
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("elapsed", &self.elapsed())
            .field("nodes", &self.nodes.len())
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

/// A scriptable raw peer: accepts any pipe, hands every received message (bytes as they came
/// off the wire, header still in the body, [`Message::pipe`] naming the pipe) to `recv`, and
/// sends messages unchanged on the first writable pipe. Tests use it to speak malformed or raw
/// protocol to a core.
#[derive(Debug)]
pub struct RawPeer {
    protocol: ProtocolId,
    pipes: Vec<PipeId>,
    writable: BTreeSet<PipeId>,
    inbox: VecDeque<Message>,
    unsent: Vec<(PipeId, Message)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl RawPeer {
    /// Creates a peer that announces `protocol` in its handshake.
    pub fn new(protocol: ProtocolId) -> Self {
        Self {
            protocol,
            pipes: Vec::new(),
            writable: BTreeSet::new(),
            inbox: VecDeque::new(),
            unsent: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Returns the attached pipes in the order they arrived.
    pub fn pipes(&self) -> &[PipeId] {
        &self.pipes
    }

    /// Returns the messages handed back unsent ([`Input::Unsent`]), with their pipes, in the
    /// order they came back. The peer keeps them and sends nothing again.
    pub fn unsent(&self) -> &[(PipeId, Message)] {
        &self.unsent
    }
}

impl Protocol for RawPeer {
    fn protocol(&self) -> ProtocolId {
        self.protocol
    }

    fn handle(&mut self, input: Input, _now: Instant) {
        match input {
            Input::PipeAdded { pipe, .. } => {
                self.pipes.push(pipe);
                self.writable.insert(pipe);
                self.events.push_back(Event::Writable);
            }
            Input::PipeRemoved { pipe } => {
                self.pipes.retain(|p| *p != pipe);
                self.writable.remove(&pipe);
            }
            Input::PipeWritable { pipe } => {
                if self.pipes.contains(&pipe) && self.writable.insert(pipe) {
                    self.events.push_back(Event::Writable);
                }
            }
            Input::Received { pipe, msg } => {
                if self.pipes.contains(&pipe) {
                    self.inbox.push_back(msg.with_pipe(pipe));
                    self.events.push_back(Event::Readable);
                }
            }
            Input::Unsent { pipe, msg } => {
                self.writable.remove(&pipe);
                self.unsent.push((pipe, msg));
            }
        }
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.pipes.contains(&pipe)
    }

    fn send(&mut self, msg: Message, _now: Instant) -> Result<(), SendError> {
        let pipe = *self
            .pipes
            .iter()
            .find(|p| self.writable.contains(p))
            .ok_or(SendError::WouldBlock)?;
        self.writable.remove(&pipe);
        self.transmits.push_back(Transmit { pipe, msg });
        Ok(())
    }

    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        self.inbox.pop_front().ok_or(RecvError::WouldBlock)
    }
}

struct Node {
    name: String,
    proto: Box<dyn SimProtocol>,
    app: App,
    pipe_ids: PipeIdAllocator,
    pipes: BTreeMap<PipeId, PipeEnd>,
    inbox: Vec<InboxEntry>,
    sends: Vec<SendRecord>,
    blocked_sends: VecDeque<Bytes>,
    pending_reply: Option<Bytes>,
    last_sent: Option<Bytes>,
}

/// Where a node's pipe leads.
#[derive(Clone, Copy, Debug)]
struct PipeEnd {
    link: LinkId,
    /// The node's side of the link: 0 for the dialer, 1 for the other end.
    side: usize,
    conn: u64,
    /// The connection is gone but the core has not been told yet.
    closing: bool,
}

struct Link {
    ends: [NodeId; 2],
    config: LinkConfig,
    conn: Option<Conn>,
}

struct Conn {
    id: u64,
    pipes: [PipeId; 2],
    /// `dirs[s]` carries messages from `ends[s]` to the other end.
    dirs: [Dir; 2],
}

struct Dir {
    queue: VecDeque<InFlight>,
    /// The sender may transmit (it has been told so with PipeWritable or PipeAdded).
    writable: bool,
    /// A PipeWritable for the sender is queued.
    wake_pending: bool,
    /// The receiver's core said it is not receiving and has not resumed yet.
    receiver_paused: bool,
}

impl Dir {
    fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            writable: true,
            wake_pending: false,
            receiver_paused: false,
        }
    }
}

struct InFlight {
    at: Instant,
    msg: Message,
    lost: bool,
}

enum Due {
    Action((Instant, u64)),
    Deliver(LinkId, usize),
    Timer(NodeId),
}

enum Work {
    Input(NodeId, Input),
    Timeout(NodeId),
    Writable {
        link: LinkId,
        conn: u64,
        side: usize,
    },
}

fn fmt_msg(msg: &Message) -> String {
    if msg.header.is_empty() {
        format!("{:?}", msg.body)
    } else {
        let header: String = msg.header.iter().map(|b| format!("{b:02x}")).collect();
        format!("[{header}] {:?}", msg.body)
    }
}

fn fmt_recv(result: &Result<Message, RecvError>) -> String {
    match result {
        Ok(msg) => format!("Ok {}", fmt_msg(msg)),
        Err(e) => format!("Err {e:?}"),
    }
}

fn fmt_input(input: &Input) -> String {
    match input {
        Input::PipeAdded { pipe, peer } => format!("PipeAdded {pipe} peer {peer:?}"),
        Input::PipeRemoved { pipe } => format!("PipeRemoved {pipe}"),
        Input::PipeWritable { pipe } => format!("PipeWritable {pipe}"),
        Input::Received { pipe, msg } => format!("Received {pipe} {}", fmt_msg(msg)),
        Input::Unsent { pipe, msg } => format!("Unsent {pipe} {}", fmt_msg(msg)),
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;
    use crate::protocol::pipeline::{Pull, PullConfig, Push, PushConfig};

    #[test]
    fn sim_delivers_after_latency_and_is_replayable() {
        let run = || {
            let start = Instant::now();
            let mut sim = Sim::new(5, start);
            let push = sim.add_node("push", Push::new(PushConfig::default()), App::Manual);
            let pull = sim.add_node("pull", Pull::new(PullConfig::default()), App::Collect);
            let config = LinkConfig {
                latency: Duration::from_millis(3),
                jitter: Duration::from_millis(2),
                ..LinkConfig::default()
            };
            let link = sim.add_link(push, pull, config);
            sim.connect(link);
            for i in 0..5u8 {
                sim.at(
                    Duration::from_millis(u64::from(i)),
                    Action::SendBlocking {
                        node: push,
                        body: vec![i].into(),
                    },
                );
            }
            sim.run_until_idle(1000);
            assert_eq!(sim.received_bodies(pull).len(), 5);
            assert!(sim.inbox(pull)[0].at >= Duration::from_millis(3));
            sim.transcript()
                .iter()
                .map(|(t, n, l)| (*t, *n, l.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn sim_run_until_stops_at_target_time() {
        let mut sim = Sim::new(1, Instant::now());
        sim.run_until(Duration::from_secs(2));
        assert_eq!(sim.elapsed(), Duration::from_secs(2));
        assert!(!sim.step());
    }
}
