//! Contexts: many independent requests or surveys in flight on one socket (SP-PROTOCOLS.md
//! sections 4.3–4.6, "Contexts" paragraphs; NNG's `nng_ctx`, mangos' `OpenContext`).
//!
//! A context is a second (third, ...) copy of a cooked role's per-operation state sharing the
//! socket's pipes: REQ keeps one outstanding request per context, REP and RESPONDENT one
//! request being answered, SURVEYOR one survey with its own deadline and response queue, SUB
//! its own topics and queue. The socket's own [`Protocol::send`] and [`Protocol::recv`] act on
//! a *default context* that is always there and never has an ID.
//!
//! [`Protocol::send`]: crate::protocol::Protocol::send
//! [`Protocol::recv`]: crate::protocol::Protocol::recv

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::num::NonZeroU32;
use std::time::Instant;

use crate::protocol::Event;

/// Identifies an open context of one socket core.
///
/// IDs are handed out by [`Protocol::open_context`](crate::protocol::Protocol::open_context)
/// in increasing order and not reused while open. They mean nothing outside the core that
/// issued them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContextId(NonZeroU32);

impl ContextId {
    /// Returns the ID's numeric value (never 0).
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ctx{}", self.0)
    }
}

/// Why a context could not be opened, closed or configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// This protocol has no contexts: only cooked REQ, REP, SURVEYOR, RESPONDENT and SUB have
    /// them (NNG and mangos answer `ENOTSUP` for the others, scenario 35).
    #[error("this protocol has no contexts (only req, rep, surveyor, respondent and sub do)")]
    NotSupported,
    /// No open context has this ID: it was closed, or belongs to another socket.
    #[error("no open context has this id")]
    UnknownContext,
}

/// The context an operation applies to inside a core: `None` is the default context (the
/// socket's own send and receive), `Some` an opened one. Ordered with the default first.
pub(crate) type CtxKey = Option<ContextId>;

/// Returns the readable event for `key`: [`Event::Readable`] for the default context,
/// [`Event::ContextReadable`] for an opened one.
pub(crate) fn readable(key: CtxKey) -> Event {
    match key {
        None => Event::Readable,
        Some(ctx) => Event::ContextReadable { ctx },
    }
}

/// Returns the writable event for `key`, as [`readable`] does.
pub(crate) fn writable(key: CtxKey) -> Event {
    match key {
        None => Event::Writable,
        Some(ctx) => Event::ContextWritable { ctx },
    }
}

/// The default context's state plus the states of the opened contexts, in ID order.
///
/// The opened ones sit in two parallel vectors sorted by ID, so a lookup is a binary search
/// over a few cache lines of IDs. A tree map cost a pointer chase per level on every send and
/// receive of a context; IDs are issued in increasing order, so opening appends, and only
/// closing (rare next to sends) shifts.
#[derive(Debug)]
pub(crate) struct Contexts<T> {
    default: T,
    ids: Vec<ContextId>,
    states: Vec<T>,
    /// The last ID issued; the next one counts on from it (skipping open IDs after wrapping).
    last: u32,
}

impl<T> Contexts<T> {
    /// Creates a table holding only the default context.
    pub(crate) fn new(default: T) -> Self {
        Self {
            default,
            ids: Vec::new(),
            states: Vec::new(),
            last: 0,
        }
    }

    /// Returns the default context.
    pub(crate) fn default_ctx(&mut self) -> &mut T {
        &mut self.default
    }

    /// Returns the default context, shared.
    pub(crate) fn default_ref(&self) -> &T {
        &self.default
    }

    /// Adds `state` under a fresh ID, the next one after the last issued that is not open.
    pub(crate) fn open(&mut self, state: T) -> ContextId {
        loop {
            self.last = self.last.wrapping_add(1);
            let Some(id) = NonZeroU32::new(self.last).map(ContextId) else {
                continue;
            };
            if let Err(at) = self.ids.binary_search(&id) {
                self.ids.insert(at, id);
                self.states.insert(at, state);
                return id;
            }
        }
    }

    /// Where opened context `ctx` sits in `ids` and `states`, if it is open.
    ///
    /// IDs are issued in increasing order, so while no context opened after the first open
    /// one has closed, `ctx` sits at its distance from the first open ID: one comparison
    /// finds it. Why: a REQ send looks its context up five times (the send, cancelling the
    /// previous request, starting the new one, queueing it, writing it), a binary search
    /// over 100 IDs each time.
    fn index(&self, ctx: ContextId) -> Option<usize> {
        let first = self.ids.first()?;
        let guess = ctx.0.get().wrapping_sub(first.0.get()) as usize;
        if self.ids.get(guess) == Some(&ctx) {
            return Some(guess);
        }
        self.ids.binary_search(&ctx).ok()
    }

    /// Removes context `ctx`; returns its state, or `None` if it was not open.
    pub(crate) fn close(&mut self, ctx: ContextId) -> Option<T> {
        let at = self.index(ctx)?;
        self.ids.remove(at);
        Some(self.states.remove(at))
    }

    /// Returns the state of `key`, or `None` for an ID that is not open.
    pub(crate) fn get_mut(&mut self, key: CtxKey) -> Option<&mut T> {
        match key {
            None => Some(&mut self.default),
            Some(ctx) => {
                let at = self.index(ctx)?;
                Some(&mut self.states[at])
            }
        }
    }

    /// Returns the state of `key`, or `None` for an ID that is not open.
    pub(crate) fn get(&self, key: CtxKey) -> Option<&T> {
        match key {
            None => Some(&self.default),
            Some(ctx) => {
                let at = self.index(ctx)?;
                Some(&self.states[at])
            }
        }
    }

    /// Returns the state of opened context `ctx`.
    ///
    /// # Errors
    /// [`ContextError::UnknownContext`] when `ctx` is not open.
    pub(crate) fn lookup(&mut self, ctx: ContextId) -> Result<&mut T, ContextError> {
        self.get_mut(Some(ctx)).ok_or(ContextError::UnknownContext)
    }

    /// Visits the default context, then the opened ones in ID order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (CtxKey, &mut T)> {
        std::iter::once((None, &mut self.default)).chain(
            self.ids
                .iter()
                .zip(self.states.iter_mut())
                .map(|(id, state)| (Some(*id), state)),
        )
    }

    /// Visits the default context, then the opened ones in ID order, shared.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (CtxKey, &T)> {
        std::iter::once((None, &self.default)).chain(
            self.ids
                .iter()
                .zip(self.states.iter())
                .map(|(id, state)| (Some(*id), state)),
        )
    }

    /// Returns how many contexts are open, not counting the default one.
    pub(crate) fn open_count(&self) -> usize {
        self.ids.len()
    }
}

/// One deadline per context, any number of contexts: the timer table of the roles with
/// per-context timers (REQ's resend, SURVEYOR's deadline).
///
/// The owner keeps each context's armed deadline in the context itself, and tells this set
/// which entries are still live through a `live(key, at)` check: `at` is `key`'s armed
/// deadline. [`DeadlineSet::earliest`] is what `poll_timeout` returns;
/// [`DeadlineSet::pop_due`] hands out the contexts whose deadline is `<= now`, earliest first
/// (ties in key order), so an early `handle_timeout` does nothing.
///
/// Why a queue and a heap with stale entries rather than an ordered set: every request of a
/// busy REQ context arms a deadline and every reply disarms it. An ordered set paid two tree
/// updates each time (an eighth of a REQ socket's time with 100 contexts in flight). Here
/// arming is, as deadlines are mostly armed in time order (the same resend interval after a
/// later send), a push onto the back of a sorted queue; only a deadline earlier than the
/// queue's last goes to a heap. Disarming is the owner's change to its context, and a look at
/// the fronts. An entry whose key was re-armed or disarmed stays where it is, stale, until it
/// reaches the front, and both are cut down to their live entries when they have grown to
/// twice as many as were live at the last cut, so they never hold much more than that.
///
/// Why the owner keeps the deadlines: with a hash map of them here, arming and disarming were
/// two hash updates per request and a lookup per front checked, 476 instructions per round
/// trip of a REQ context (6 % of a REQ/REP round trip with 100 contexts in flight, callgrind;
/// BENCHMARKS.md, "REQ contexts keep their own resend deadline"); the owner finds its context
/// in its table by ID for less.
#[derive(Debug)]
pub(crate) struct DeadlineSet {
    /// Sorted, earliest first: what was armed in order.
    in_order: VecDeque<(Instant, CtxKey)>,
    /// Earliest first: what was armed out of order.
    heap: BinaryHeap<Reverse<(Instant, CtxKey)>>,
    /// When `in_order` and `heap` hold more entries than this, the stale ones are dropped:
    /// twice the live entries at the last cut, plus a few.
    cut_above: usize,
}

impl Default for DeadlineSet {
    fn default() -> Self {
        Self {
            in_order: VecDeque::new(),
            heap: BinaryHeap::new(),
            cut_above: CUT_SLACK,
        }
    }
}

/// Stale entries a [`DeadlineSet`] keeps beyond twice its live ones.
const CUT_SLACK: usize = 16;

impl DeadlineSet {
    /// Adds `key`'s deadline `at`, which the owner has just armed (so `live(key, at)` holds).
    pub(crate) fn arm(&mut self, key: CtxKey, at: Instant, live: impl Fn(CtxKey, Instant) -> bool) {
        let entry = (at, key);
        if self.in_order.back().is_none_or(|&last| last <= entry) {
            self.in_order.push_back(entry);
        } else {
            self.heap.push(Reverse(entry));
        }
        if self.in_order.len() + self.heap.len() > self.cut_above {
            let is_live = |&(at, key): &(Instant, CtxKey)| live(key, at);
            self.in_order.retain(is_live);
            self.heap.retain(|Reverse(entry)| is_live(entry));
            self.cut_above = 2 * (self.in_order.len() + self.heap.len()) + CUT_SLACK;
        }
        self.drop_stale_fronts(live);
    }

    /// The owner disarmed or re-armed deadlines: keeps [`earliest`](Self::earliest) live.
    pub(crate) fn disarmed(&mut self, live: impl Fn(CtxKey, Instant) -> bool) {
        self.drop_stale_fronts(live);
    }

    /// The earliest live entry: the front of the queue or the top of the heap.
    fn front(&self) -> Option<(Instant, CtxKey)> {
        let queued = self.in_order.front().copied();
        let heaped = self.heap.peek().map(|Reverse(entry)| *entry);
        match (queued, heaped) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Returns the earliest armed deadline.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.front().map(|(at, _)| at)
    }

    /// Removes and returns the earliest context whose deadline is `<= now`. The owner then
    /// disarms or re-arms that context before it calls again.
    pub(crate) fn pop_due(
        &mut self,
        now: Instant,
        live: impl Fn(CtxKey, Instant) -> bool,
    ) -> Option<CtxKey> {
        self.drop_stale_fronts(&live);
        let (at, key) = self.front()?;
        if at > now {
            return None;
        }
        if self.in_order.front() == Some(&(at, key)) {
            self.in_order.pop_front();
        } else {
            self.heap.pop();
        }
        Some(key)
    }

    /// Pops stale entries off the front of the queue and the top of the heap, so that both
    /// fronts are live (or empty).
    fn drop_stale_fronts(&mut self, live: impl Fn(CtxKey, Instant) -> bool) {
        while let Some(&(at, key)) = self.in_order.front() {
            if live(key, at) {
                break;
            }
            self.in_order.pop_front();
        }
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if live(key, at) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn ids_increase_and_skip_open_ones_after_wrapping() {
        let mut table = Contexts::new(());
        let a = table.open(());
        let b = table.open(());
        assert!(a < b);
        assert_eq!(a.get(), 1);
        table.last = u32::MAX;
        assert_eq!(table.open(()).get(), 3, "0 is skipped, 1 and 2 are open");
        assert!(table.close(a).is_some());
        assert!(table.get(Some(a)).is_none());
        assert!(table.get(None).is_some());
    }

    /// A lookup finds each open context by its distance from the first while none between
    /// closed, and by search once one did (the guess then names another ID).
    #[test]
    fn lookups_find_open_contexts_before_and_after_a_close() {
        let mut table = Contexts::new(0u32);
        let ids: Vec<ContextId> = (1..=6).map(|n| table.open(n)).collect();
        for (n, id) in (1..).zip(&ids) {
            assert_eq!(table.get(Some(*id)), Some(&n));
        }
        assert_eq!(table.close(ids[2]), Some(3));
        assert_eq!(table.close(ids[0]), Some(1));
        assert!(table.get(Some(ids[2])).is_none());
        assert!(table.get(Some(ids[0])).is_none());
        for (n, id) in (1..).zip(&ids).filter(|(n, _)| *n != 1 && *n != 3) {
            assert_eq!(table.get(Some(*id)), Some(&n));
        }
        let beyond = ContextId(NonZeroU32::new(7).unwrap());
        assert!(table.get(Some(beyond)).is_none());
    }

    /// A [`DeadlineSet`]'s owner, as REQ and SURVEYOR are: it keeps each key's armed deadline.
    #[derive(Default)]
    struct Owner {
        set: DeadlineSet,
        armed: BTreeMap<CtxKey, Instant>,
    }

    impl Owner {
        fn live(armed: &BTreeMap<CtxKey, Instant>) -> impl Fn(CtxKey, Instant) -> bool + '_ {
            move |key, at| armed.get(&key) == Some(&at)
        }

        /// Arms `key` at `at`, or disarms it with `None`.
        fn set(&mut self, key: CtxKey, at: Option<Instant>) {
            match at {
                Some(at) => {
                    if self.armed.insert(key, at) != Some(at) {
                        self.set.arm(key, at, Self::live(&self.armed));
                    }
                }
                None => {
                    self.armed.remove(&key);
                    self.set.disarmed(Self::live(&self.armed));
                }
            }
        }

        /// Pops what is due and disarms it, as an owner does.
        fn pop_due(&mut self, now: Instant) -> Option<CtxKey> {
            let key = self.set.pop_due(now, Self::live(&self.armed))?;
            self.set(key, None);
            Some(key)
        }
    }

    #[test]
    fn deadlines_pop_in_time_order_and_only_when_due() {
        let t0 = Instant::now();
        let c1 = Some(ContextId(NonZeroU32::new(1).unwrap()));
        let mut owner = Owner::default();
        owner.set(c1, Some(t0 + Duration::from_secs(2)));
        owner.set(None, Some(t0 + Duration::from_secs(1)));
        owner.set(c1, Some(t0 + Duration::from_secs(3)));
        assert_eq!(owner.set.earliest(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(owner.pop_due(t0), None);
        assert_eq!(owner.pop_due(t0 + Duration::from_secs(5)), Some(None));
        assert_eq!(owner.pop_due(t0 + Duration::from_secs(5)), Some(c1));
        assert_eq!(owner.set.earliest(), None);
    }

    /// A busy REQ socket's pattern: each context re-armed at a later time than any before.
    /// The deadlines stay in the queue (no heap work), and it holds at most about twice the
    /// armed keys.
    #[test]
    fn deadlines_armed_in_time_order_stay_in_the_queue() {
        let t0 = Instant::now();
        let mut owner = Owner::default();
        for round in 0..1000u64 {
            let key = Some(ContextId(
                NonZeroU32::new(1 + (round % 100) as u32).unwrap(),
            ));
            owner.set(key, Some(t0 + Duration::from_millis(round)));
            if round % 3 == 0 {
                owner.set(key, None);
            }
        }
        assert!(owner.set.heap.is_empty());
        assert!(owner.set.in_order.len() <= 4 * owner.armed.len() + 2 * CUT_SLACK);
        assert_eq!(owner.set.earliest(), owner.armed.values().min().copied());
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Arms (`Some` seconds from the base) or disarms context `key` (0: the default one).
        Set(u8, Option<u8>),
        /// Pops what is due this many seconds from the base.
        Pop(u8),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0u8..6, proptest::option::of(0u8..20)).prop_map(|(k, at)| Op::Set(k, at)),
            (0u8..25).prop_map(Op::Pop),
        ]
    }

    proptest::proptest! {
        /// The queue and heap with stale entries behave like an ordered map of key to deadline,
        /// and hold no more than a few times the armed keys (here at most 6 are armed).
        #[test]
        fn deadline_set_matches_an_ordered_model(ops in proptest::collection::vec(op(), 0..300)) {
            let t0 = Instant::now();
            let key = |k: u8| NonZeroU32::new(u32::from(k)).map(ContextId);
            let mut owner = Owner::default();
            let mut model: BTreeMap<CtxKey, Instant> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Set(k, at) => {
                        let at = at.map(|s| t0 + Duration::from_secs(u64::from(s)));
                        owner.set(key(k), at);
                        match at {
                            Some(at) => model.insert(key(k), at),
                            None => model.remove(&key(k)),
                        };
                    }
                    Op::Pop(s) => {
                        let now = t0 + Duration::from_secs(u64::from(s));
                        let due = model
                            .iter()
                            .map(|(k, at)| (*at, *k))
                            .min()
                            .filter(|(at, _)| *at <= now);
                        if let Some((_, k)) = due {
                            model.remove(&k);
                        }
                        proptest::prop_assert_eq!(owner.pop_due(now), due.map(|(_, k)| k));
                    }
                }
                proptest::prop_assert_eq!(owner.set.earliest(), model.values().min().copied());
                let held = owner.set.in_order.len() + owner.set.heap.len();
                proptest::prop_assert!(held <= 4 * model.len() + 2 * CUT_SLACK + 1);
            }
        }
    }
}
