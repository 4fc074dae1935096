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

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
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
#[derive(Debug)]
pub(crate) struct Contexts<T> {
    default: T,
    open: BTreeMap<ContextId, T>,
    last: u32,
}

impl<T> Contexts<T> {
    /// Creates a table holding only the default context.
    pub(crate) fn new(default: T) -> Self {
        Self {
            default,
            open: BTreeMap::new(),
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
            if let Entry::Vacant(slot) = self.open.entry(id) {
                slot.insert(state);
                return id;
            }
        }
    }

    /// Removes an opened context and returns its state.
    pub(crate) fn close(&mut self, ctx: ContextId) -> Option<T> {
        self.open.remove(&ctx)
    }

    /// Returns the state of `key`, or `None` for an ID that is not open.
    pub(crate) fn get_mut(&mut self, key: CtxKey) -> Option<&mut T> {
        match key {
            None => Some(&mut self.default),
            Some(ctx) => self.open.get_mut(&ctx),
        }
    }

    /// Returns the state of `key`, shared.
    pub(crate) fn get(&self, key: CtxKey) -> Option<&T> {
        match key {
            None => Some(&self.default),
            Some(ctx) => self.open.get(&ctx),
        }
    }

    /// Returns the state of an opened context.
    pub(crate) fn lookup(&mut self, ctx: ContextId) -> Result<&mut T, ContextError> {
        self.open.get_mut(&ctx).ok_or(ContextError::UnknownContext)
    }

    /// Visits the default context, then the opened ones in ID order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (CtxKey, &mut T)> {
        std::iter::once((None, &mut self.default))
            .chain(self.open.iter_mut().map(|(id, state)| (Some(*id), state)))
    }

    /// Visits the default context, then the opened ones in ID order, shared.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (CtxKey, &T)> {
        std::iter::once((None, &self.default))
            .chain(self.open.iter().map(|(id, state)| (Some(*id), state)))
    }

    /// Returns how many contexts are open, not counting the default one.
    pub(crate) fn open_count(&self) -> usize {
        self.open.len()
    }
}

/// One deadline per context, any number of contexts: the timer table of the roles with
/// per-context timers (REQ's resend, SURVEYOR's deadline).
///
/// [`DeadlineSet::earliest`] is what `poll_timeout` returns; [`DeadlineSet::pop_due`] hands
/// out the contexts whose deadline is `<= now`, earliest first (ties in key order), so an early
/// `handle_timeout` does nothing.
#[derive(Debug, Default)]
pub(crate) struct DeadlineSet {
    by_time: BTreeSet<(Instant, CtxKey)>,
    by_key: BTreeMap<CtxKey, Instant>,
}

impl DeadlineSet {
    /// Arms `key`'s timer at `deadline`, or disarms it with `None`.
    pub(crate) fn set(&mut self, key: CtxKey, deadline: Option<Instant>) {
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old, key));
        }
        if let Some(at) = deadline {
            self.by_key.insert(key, at);
            self.by_time.insert((at, key));
        }
    }

    /// Returns the earliest armed deadline.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Disarms and returns the earliest context whose deadline is `<= now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<CtxKey> {
        let &(at, key) = self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, key));
        self.by_key.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
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

    #[test]
    fn deadlines_pop_in_time_order_and_only_when_due() {
        let t0 = Instant::now();
        let c1 = Some(ContextId(NonZeroU32::new(1).unwrap()));
        let mut set = DeadlineSet::default();
        set.set(c1, Some(t0 + Duration::from_secs(2)));
        set.set(None, Some(t0 + Duration::from_secs(1)));
        set.set(c1, Some(t0 + Duration::from_secs(3)));
        assert_eq!(set.earliest(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(set.pop_due(t0), None);
        assert_eq!(set.pop_due(t0 + Duration::from_secs(5)), Some(None));
        assert_eq!(set.pop_due(t0 + Duration::from_secs(5)), Some(c1));
        assert_eq!(set.earliest(), None);
    }
}
