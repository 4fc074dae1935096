//! `protocol_scenario`: arbitrary sequences of pipe events, peer messages, application calls
//! and clock steps against one core, run twice, with the core's invariants checked after
//! every step.
//!
//! The driver side (pipes, their write queues, peers' messages) is in `driver`, the
//! application side (sends, receives, contexts, options, the clock) in `app`, and the
//! checks that need a model of what the core should do (replies, surveys, queue bounds,
//! message accounting) in `checks`.

mod app;
mod checks;
mod driver;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cores::{
    Core, Cursor, Role, Settings, DURATIONS, MAX_TTLS, QUEUE_LENS, ROLES, SET_QUEUE_LENS,
};
use crate::protocol::pubsub::SubscribeError;
use crate::protocol::{
    ConfigError, ContextError, ContextId, Event, RecvError, SendError, Transmit,
};
use crate::stats::CoreStats;
use crate::{Message, PipeId};

/// Runs an arbitrary sequence of pipe events, messages, application calls, context calls,
/// queue resizes and clock steps against one core, twice on two fresh cores, and checks:
///
/// * no panic, and both runs produce the same outputs (transmits, events, results, statistics,
///   deadlines): a core is deterministic;
/// * the driver contract: transmits go only to attached pipes the core has not closed, one per
///   `PipeWritable`; `ClosePipe` names only attached pipes; closed and removed pipes are not
///   receiving; no timer at or before `now` survives `handle_timeout(now)`;
/// * queues stay bounded: `recv_queued` and `send_queued` within a bound derived from the
///   current queue lengths, the pipes and the contexts (see `check_bounds`);
/// * every received message is what the role makes of a message the pipe it names delivered
///   (its SP header parsed as `protocol_receive` checks);
/// * REQ hands a context only the reply to its latest request (the reply carries the ID the
///   core gave that request), SURVEYOR only responses to the context's current survey, before
///   its deadline; REP and RESPONDENT send a reply to the pipe the request came from, behind
///   the request's backtrace;
/// * PUSH, raw PUSH and raw REQ account for every message: sent = written + queued in the
///   driver + returned + dropped as `PipeClosed`;
/// * an `Unsent` for a pipe the core does not know is counted once as `PipeClosed`.
///
/// The first byte picks the role, the next three its settings and the driver's per-pipe queue
/// length; each following operation starts with a byte picking the operation.
pub fn protocol_scenario(data: &[u8], start: Instant) {
    let first = run_scenario(data, start);
    let second = run_scenario(data, start);
    if first != second {
        let at = first
            .iter()
            .zip(&second)
            .position(|(a, b)| a != b)
            .unwrap_or(first.len().min(second.len()));
        panic!(
            "two runs of the same scenario differ at output {at}: {:?} vs {:?}",
            first.get(at),
            second.get(at)
        );
    }
}

/// The outputs of one scenario run, one line each (for reading a failing input).
pub fn protocol_scenario_transcript(data: &[u8], start: Instant) -> Vec<String> {
    run_scenario(data, start)
        .iter()
        .map(|out| format!("{out:?}"))
        .collect()
}

/// The most operations one input runs.
const MAX_OPS: usize = 2_000;
/// The most pipes attached at once.
const MAX_LIVE_PIPES: usize = 4;
/// Pipe IDs from here on are never attached: `Unsent` for them is stray.
const STRAY_PIPE_BASE: u32 = 0x7fff_ff00;
/// How many transmitted and received headers are kept for the scenario to echo.
const KEPT_HEADERS: usize = 16;

/// One output of a scenario run, compared between the two runs.
#[derive(Debug, PartialEq)]
enum Out {
    Tx(Transmit),
    Event(Event),
    Send(Result<(), SendError>),
    Recv(Result<Message, RecvError>),
    Open(Result<ContextId, ContextError>),
    Context(Result<(), ContextError>),
    Config(Result<(), ConfigError>),
    Subscribe(Result<(), SubscribeError>),
    Timeout(Option<Instant>),
    Stats(CoreStats),
}

/// A pipe as the scenario's driver sees it.
#[derive(Debug)]
struct Slot {
    id: PipeId,
    /// Added and not removed yet.
    live: bool,
    /// The core asked to close it (or refused it): it forgot the pipe.
    kicked: bool,
    /// A transmit came out since the last `PipeWritable`.
    busy: bool,
    /// Transmits taken and not written yet (the driver's per-pipe write queue).
    queue: VecDeque<Message>,
}

/// What a REQ context waits for, or a SURVEYOR context collects.
#[derive(Clone, Copy, Debug)]
struct Pending {
    id: u32,
    /// A survey's deadline (`None`: never, or not a survey).
    deadline: Option<Instant>,
}

type Key = Option<ContextId>;

struct Scenario {
    role: Role,
    /// The TTL the core was built with.
    max_ttl: u8,
    core: Core,
    now: Instant,
    driver_cap: usize,
    slots: Vec<Slot>,
    next_pipe: u32,
    /// Every context opened, and whether it is still open.
    contexts: Vec<(ContextId, bool)>,
    max_open_contexts: usize,
    max_live_pipes: usize,
    pipes_added: usize,
    /// Every message delivered, with its pipe.
    delivered: Vec<(PipeId, Bytes)>,
    /// Headers of recent transmits, and of recent messages the application received.
    tx_headers: VecDeque<Bytes>,
    app_headers: VecDeque<Bytes>,
    serial: u32,
    /// REQ: the request each context waits for; SURVEYOR: its running survey.
    pending: BTreeMap<Key, Pending>,
    /// SURVEYOR: the survey time of the socket (`None`) and of each context.
    survey_times: BTreeMap<Key, Duration>,
    /// REP, RESPONDENT: the pipe and body of the request each context received last.
    saved: BTreeMap<Key, (PipeId, Bytes)>,
    /// PUSH, raw PUSH, raw REQ: messages sent, written by the driver, and stray `Unsent`s.
    sent_ok: u64,
    written: u64,
    stray: u64,
    out: Vec<Out>,
}

fn run_scenario(data: &[u8], start: Instant) -> Vec<Out> {
    let mut c = Cursor::new(data);
    let role = ROLES[usize::from(c.byte()) % ROLES.len()];
    let a = c.byte();
    let b = c.byte();
    let d = c.byte();
    let settings = Settings {
        recv_buffer: QUEUE_LENS[usize::from(a & 7)],
        send_buffer: QUEUE_LENS[usize::from((a >> 3) & 7)],
        max_ttl: MAX_TTLS[usize::from(a >> 6)],
        resend: match b & 7 {
            0 => None,
            i => Some(DURATIONS[usize::from(i)]),
        },
        survey_time: DURATIONS[usize::from((b >> 3) & 7)],
        prefer_new: b & 0x40 != 0,
        seed: u64::from(d),
    };
    let mut s = Scenario {
        role,
        max_ttl: settings.max_ttl,
        core: Core::new(role, &settings),
        now: start,
        driver_cap: 1 + usize::from(d % 3),
        slots: Vec::new(),
        next_pipe: 1,
        contexts: Vec::new(),
        max_open_contexts: 0,
        max_live_pipes: 0,
        pipes_added: 0,
        delivered: Vec::new(),
        tx_headers: VecDeque::new(),
        app_headers: VecDeque::new(),
        serial: 0,
        pending: BTreeMap::new(),
        survey_times: BTreeMap::from([(None, settings.survey_time)]),
        saved: BTreeMap::new(),
        sent_ok: 0,
        written: 0,
        stray: 0,
        out: Vec::new(),
    };
    if b & 0x80 != 0 {
        if let Core::Sub(sub) = &mut s.core {
            sub.subscribe(b"");
        }
    }
    let mut ops = 0;
    while !c.is_empty() && ops < MAX_OPS {
        ops += 1;
        s.step(&mut c);
        let stats = s.core.peek().stats();
        s.check_bounds(&stats);
        s.check_accounting(&stats);
        let timeout = s.core.peek().poll_timeout();
        s.out.push(Out::Timeout(timeout));
        s.out.push(Out::Stats(stats));
    }
    s.out
}

fn push_bounded(list: &mut VecDeque<Bytes>, item: Bytes) {
    if list.len() == KEPT_HEADERS {
        list.pop_front();
    }
    list.push_back(item);
}

fn word_at(bytes: &[u8]) -> Option<u32> {
    let word: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(word))
}

impl Scenario {
    fn step(&mut self, c: &mut Cursor<'_>) {
        match c.byte() % 24 {
            0 | 1 => self.add_pipe(c),
            2 => self.remove_pipe(c),
            3 | 4 => self.writable(c),
            5 => self.write_out(c),
            6..=9 => self.receive(c),
            10 => self.stray_unsent(c),
            11 | 12 => self.app_send(c),
            13 | 14 => self.app_recv(c),
            15 => self.open_context(),
            16 => self.close_context(c),
            17 => {
                if let Some(ctx) = self.pick_context(c) {
                    self.core.get().cancel_recv(ctx, self.now);
                    self.pump();
                }
            }
            18 => {
                let len = c.pick(&SET_QUEUE_LENS);
                let result = self.core.get().set_recv_buffer(len, self.now);
                self.out.push(Out::Config(result));
                self.pump();
            }
            19 => {
                let len = c.pick(&SET_QUEUE_LENS);
                let result = self.core.get().set_send_buffer(len, self.now);
                self.out.push(Out::Config(result));
                self.pump();
            }
            20 | 21 => self.advance(c),
            _ => self.role_op(c),
        }
    }

    /// Drains every transmit and event, checking each against the driver contract. Returns
    /// the transmits.
    pub(super) fn pump(&mut self) -> Vec<Transmit> {
        let mut txs = Vec::new();
        while let Some(tx) = self.core.get().poll_transmit() {
            let slot = self.slots.iter_mut().find(|s| s.id == tx.pipe);
            let slot = slot.unwrap_or_else(|| panic!("transmit for {:?}, never added", tx.pipe));
            assert!(slot.live, "transmit for {:?}, already removed", tx.pipe);
            assert!(
                !slot.kicked,
                "transmit for {:?}, which the core closed",
                tx.pipe
            );
            assert!(
                !slot.busy,
                "a second transmit for {:?} without PipeWritable in between",
                tx.pipe
            );
            slot.busy = true;
            slot.queue.push_back(tx.msg.clone());
            push_bounded(&mut self.tx_headers, tx.msg.header.clone());
            txs.push(tx.clone());
            self.out.push(Out::Tx(tx));
        }
        while let Some(event) = self.core.get().poll_event() {
            if let Event::ClosePipe { pipe, .. } = event {
                let slot = self.slots.iter_mut().find(|s| s.id == pipe);
                let slot = slot.unwrap_or_else(|| panic!("ClosePipe for {pipe:?}, never added"));
                assert!(slot.live, "ClosePipe for {pipe:?}, already removed");
                assert!(!slot.kicked, "ClosePipe twice for {pipe:?}");
                slot.kicked = true;
                assert!(
                    !self.core.peek().is_receiving(pipe),
                    "{pipe:?} is still receiving after ClosePipe"
                );
            }
            self.out.push(Out::Event(event));
        }
        txs
    }

    pub(super) fn live_count(&self) -> usize {
        self.slots.iter().filter(|s| s.live).count()
    }

    pub(super) fn pick_live(&self, c: &mut Cursor<'_>) -> Option<usize> {
        let pick = usize::from(c.byte());
        let live = self.live_count();
        let nth = (live > 0).then(|| pick % live)?;
        (0..self.slots.len())
            .filter(|&i| self.slots[i].live)
            .nth(nth)
    }

    /// Picks the default context (`None`) or one ever opened, open or closed.
    pub(super) fn pick_key(&self, c: &mut Cursor<'_>) -> Key {
        let pick = usize::from(c.byte());
        if pick & 3 == 0 || self.contexts.is_empty() {
            None
        } else {
            Some(self.contexts[(pick / 4) % self.contexts.len()].0)
        }
    }

    pub(super) fn pick_context(&self, c: &mut Cursor<'_>) -> Option<ContextId> {
        let pick = usize::from(c.byte());
        (!self.contexts.is_empty()).then(|| self.contexts[pick % self.contexts.len()].0)
    }

    pub(super) fn is_open(&self, ctx: ContextId) -> bool {
        self.contexts.iter().any(|&(id, open)| id == ctx && open)
    }
}
