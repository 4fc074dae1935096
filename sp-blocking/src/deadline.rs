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
//! A call that sleeps where the thread cannot keep it (async-io's `block_on`, after its spin)
//! polls its future there with no deadline kept, and the sleep arms a reactor timer as before.
//! The driver's own tasks (protocol timers, dialers) always arm timers, on whichever thread
//! they run: a task is never polled as the caller's own call.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    /// Set while the thread polls its own blocking call (see [`polling_own_call`]).
    static OWN_CALL: Cell<bool> = const { Cell::new(false) };
    /// The earliest deadline that the call being waited for on this thread left to keep.
    static KEPT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Records `deadline` for the thread to keep, if the thread is polling its own call; returns
/// whether it did (if not, the sleep must arm a timer).
pub(crate) fn keep(deadline: Instant) -> bool {
    if !OWN_CALL.get() {
        return false;
    }
    KEPT.set(Some(KEPT.get().map_or(deadline, |kept| kept.min(deadline))));
    true
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
    outer: Option<Instant>,
}

impl CallDeadline {
    pub(crate) fn begin() -> Self {
        Self {
            outer: KEPT.replace(None),
        }
    }

    /// The earliest deadline a poll of this call left to keep. It may be stale (the sleep
    /// was reset later or dropped): the wait then ends early and polls again, for nothing.
    pub(crate) fn kept(&self) -> Option<Instant> {
        KEPT.get()
    }
}

impl Drop for CallDeadline {
    fn drop(&mut self) {
        KEPT.set(self.outer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_the_own_call_keeps_its_deadlines_and_the_earliest_counts() {
        let call = CallDeadline::begin();
        let now = Instant::now();
        let (early, late) = (
            now + Duration::from_millis(5),
            now + Duration::from_millis(9),
        );
        assert!(
            !keep(early),
            "outside a poll of the call, a sleep arms its timer"
        );
        assert!(polling_own_call(|| keep(late)));
        assert!(polling_own_call(|| keep(early)));
        assert!(polling_own_call(|| keep(late)));
        assert_eq!(call.kept(), Some(early));
        assert!(
            !polling_own_call(|| running_task(|| keep(now))),
            "a task run during the call's poll arms its timer"
        );
        assert_eq!(call.kept(), Some(early));
    }

    #[test]
    fn a_call_inside_another_starts_empty_and_restores_the_outer_record() {
        let outer = CallDeadline::begin();
        let at = Instant::now() + Duration::from_millis(5);
        polling_own_call(|| keep(at));
        {
            let inner = CallDeadline::begin();
            assert_eq!(inner.kept(), None);
            polling_own_call(|| keep(at + Duration::from_millis(1)));
        }
        assert_eq!(outer.kept(), Some(at));
    }
}
