//! A blocking call's own deadline, kept by the thread that waits for it.
//!
//! A call with a timeout or a deadline (`recv_timeout`, `recv_until`, a request's or a
//! survey's deadline) waits on its caller's thread, and that thread can keep the deadline
//! itself: the `poll(2)` it sleeps in takes a time-out, and its spin is bounded anyway. An
//! async-io timer instead registers with the reactor each time the call has to wait, and async-io
//! wakes its reactor thread for every timer it inserts (an `eventfd` write, then a context
//! switch on a core that the waiting call's peer may need). A REQ/REP round trip over inproc
//! between two threads took 12–13 µs with a receive timeout set that way, against 4 µs
//! without one (`cargo bench -p sp-blocking --bench timeouts`); now both take 4 µs.
//!
//! So while a blocking call polls its own future on its own thread, a sleep in that future
//! that has not passed yet only records its deadline here ([`keep`]), and the call's wait
//! ends by then ([`CallDeadline::kept`]) and polls again, which then finds the deadline passed.
//! The sleep takes its deadline back ([`withdraw`]) when it fires, is reset, arms a timer or
//! is dropped: a deadline the call no longer has would otherwise end every later wait of the
//! call at once (a call whose first phase had a time-out would spin through the rest).
//! A call that sleeps where the thread cannot keep it (async-io's `block_on`, after its spin)
//! polls its future there with no deadline kept, and the sleep arms a reactor timer as before.
//! The driver's own tasks (protocol timers, dialers) always arm timers, on whichever thread
//! they run: a task is never polled as the caller's own call.
//!
//! This relies on one property of the futures a blocking call waits on: each poll that leaves
//! the future pending polls its sleep too (as `sp_transport`'s `with_deadline` and the
//! handshake do), so that the sleep arms its timer at the first poll by async-io's
//! `block_on`, where the thread no longer keeps the deadline.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

thread_local! {
    /// Set while the thread polls its own blocking call (see [`polling_own_call`]).
    static OWN_CALL: Cell<bool> = const { Cell::new(false) };
    /// The deadlines that the sleeps of the call being waited for on this thread left to it,
    /// by the sleep's token. A sleep withdraws its deadline when it fires, arms a timer after
    /// all, is reset or is dropped, so that no deadline outlives its sleep.
    static KEPT: RefCell<Vec<(u64, Instant)>> = const { RefCell::new(Vec::new()) };
}

/// Tokens of the sleeps that left a deadline, unique in the process.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Records `deadline` for the thread to keep, if the thread is polling its own call, under
/// `token` (given one on first use); returns whether it did (if not, the sleep must arm a
/// timer).
pub(crate) fn keep(token: &mut Option<u64>, deadline: Instant) -> bool {
    if !OWN_CALL.get() {
        return false;
    }
    let token = *token.get_or_insert_with(|| NEXT_TOKEN.fetch_add(1, Ordering::Relaxed));
    KEPT.with_borrow_mut(|kept| match kept.iter_mut().find(|(t, _)| *t == token) {
        Some(entry) => entry.1 = deadline,
        None => kept.push((token, deadline)),
    });
    true
}

/// Withdraws the deadline kept under `token` (nothing if it is not this thread's).
pub(crate) fn withdraw(token: u64) {
    // During the thread's exit the record may be gone already: then there is nothing to do.
    let _ = KEPT.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut() {
            kept.retain(|(t, _)| *t != token);
        }
    });
}

/// Runs `poll`, a poll of the thread's own blocking call: the sleeps in it leave their
/// deadlines to the thread.
pub(crate) fn polling_own_call<R>(poll: impl FnOnce() -> R) -> R {
    let outer = OWN_CALL.replace(true);
    let out = poll();
    OWN_CALL.set(outer);
    out
}

/// Runs `task`, a driver task (on a worker, or on a waiting caller's thread): its sleeps arm
/// timers, whichever thread runs it.
pub(crate) fn running_task<R>(task: impl FnOnce() -> R) -> R {
    let outer = OWN_CALL.replace(false);
    let out = task();
    OWN_CALL.set(outer);
    out
}

/// The deadlines of one blocking call, from its first poll to its return: the thread's record
/// starts empty and is restored when the call ends.
pub(crate) struct CallDeadline {
    outer: Vec<(u64, Instant)>,
}

impl CallDeadline {
    pub(crate) fn begin() -> Self {
        Self { outer: KEPT.take() }
    }

    /// The earliest deadline of the call's sleeps that are waiting on this thread.
    pub(crate) fn kept(&self) -> Option<Instant> {
        KEPT.with_borrow(|kept| kept.iter().map(|&(_, at)| at).min())
    }
}

impl Drop for CallDeadline {
    fn drop(&mut self) {
        let outer = std::mem::take(&mut self.outer);
        let _ = KEPT.try_with(|kept| {
            if let Ok(mut kept) = kept.try_borrow_mut() {
                *kept = outer;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_the_own_call_keeps_deadlines_and_the_earliest_live_one_counts() {
        let call = CallDeadline::begin();
        let now = Instant::now();
        let (early, late) = (
            now + Duration::from_millis(5),
            now + Duration::from_millis(9),
        );
        let (mut a, mut b) = (None, None);
        assert!(
            !keep(&mut a, early),
            "outside a poll of the call, a sleep arms its timer"
        );
        assert_eq!(a, None);
        assert!(polling_own_call(|| keep(&mut a, late)));
        assert!(polling_own_call(|| keep(&mut b, early)));
        assert_eq!(call.kept(), Some(early));
        assert!(
            !polling_own_call(|| running_task(|| keep(&mut None, now))),
            "a task run during the call's poll arms its timer"
        );
        // A sleep kept again moves its own deadline; a withdrawn one counts no more.
        assert!(polling_own_call(|| keep(
            &mut a,
            early - Duration::from_millis(1)
        )));
        assert_eq!(call.kept(), Some(early - Duration::from_millis(1)));
        withdraw(a.unwrap());
        assert_eq!(call.kept(), Some(early));
        withdraw(b.unwrap());
        assert_eq!(call.kept(), None);
    }

    #[test]
    fn a_call_inside_another_starts_empty_and_restores_the_outer_record() {
        let outer = CallDeadline::begin();
        let at = Instant::now() + Duration::from_millis(5);
        polling_own_call(|| keep(&mut None, at));
        {
            let inner = CallDeadline::begin();
            assert_eq!(inner.kept(), None);
            polling_own_call(|| keep(&mut None, at + Duration::from_millis(1)));
        }
        assert_eq!(outer.kept(), Some(at));
    }
}
