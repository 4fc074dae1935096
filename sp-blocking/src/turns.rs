//! Receive turns: of the threads blocked in `recv` on one socket, one waits in the socket and
//! the others wait for their turn, first come, first served.
//!
//! Why: sp-transport wakes every receive waiting on a socket when a message arrives. For the
//! tasks of an async runtime that is a cheap poll each; for threads it is a wake-up each, and
//! all but one find the message taken and sleep again (16 threads blocked on one PULL socket:
//! 570,000–620,000 context switches for 50,000 messages, against 130,000–160,000 for one
//! thread). With turns, the thread in the socket hands its turn to the one that has waited
//! longest when it returns, message or not: a burst wakes one thread per message, one after
//! the other, as NNG's queue of receive operations does.
//!
//! A thread alone in `recv` pays two atomic operations: it finds no one before it and goes
//! straight into the socket.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::Instant;

/// The turns of one socket's blocking receivers. Shared by every clone of the socket.
#[derive(Debug, Default)]
pub(crate) struct RecvTurns {
    /// Threads in a blocking receive: the one whose turn it is, plus those queued or about to
    /// queue.
    receivers: AtomicUsize,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// Threads waiting for their turn, oldest first.
    waiting: VecDeque<Arc<Waiter>>,
    /// Turns handed over when no thread was queued yet: a thread counted in `receivers` but
    /// not yet queued takes one instead of queueing.
    unclaimed: usize,
}

#[derive(Debug)]
struct Waiter {
    thread: Thread,
    granted: AtomicBool,
}

/// The turn to wait in the socket; handed to the next queued thread when dropped.
#[derive(Debug)]
pub(crate) struct Turn<'a> {
    turns: &'a RecvTurns,
}

impl RecvTurns {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Nothing here panics while holding the lock; a poisoned lock still holds a
        // consistent queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the turn at once if no other thread is receiving; otherwise `None`, and the
    /// caller, counted as a receiver, either queues ([`RecvTurns::wait`]) or says it will
    /// not ([`RecvTurns::not_waiting`]).
    pub(crate) fn try_take(&self) -> Option<Turn<'_>> {
        if self.receivers.fetch_add(1, Ordering::AcqRel) == 0 {
            return Some(Turn { turns: self });
        }
        None
    }

    /// After a failed [`RecvTurns::try_take`]: the thread will not wait after all (it found
    /// a message queued).
    pub(crate) fn not_waiting(&self) {
        let mut q = self.queue();
        if q.unclaimed > 0 {
            // A turn was handed to it before it queued: it hands it on.
            q.unclaimed -= 1;
            drop(q);
            drop(Turn { turns: self });
        } else {
            self.receivers.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// After a failed [`RecvTurns::try_take`]: waits for this thread's turn until `deadline`
    /// (`None`: for as long as it takes). `None` when the deadline came first; the thread is
    /// then out of the queue.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Option<Turn<'_>> {
        let me = {
            let mut q = self.queue();
            if q.unclaimed > 0 {
                q.unclaimed -= 1;
                return Some(Turn { turns: self });
            }
            let me = Arc::new(Waiter {
                thread: std::thread::current(),
                granted: AtomicBool::new(false),
            });
            q.waiting.push_back(me.clone());
            me
        };
        loop {
            if me.granted.load(Ordering::Acquire) {
                return Some(Turn { turns: self });
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return self.leave(&me);
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }

    /// A queued thread whose deadline came: it leaves the queue, unless its turn came in
    /// the meantime, which it then takes.
    fn leave(&self, me: &Arc<Waiter>) -> Option<Turn<'_>> {
        let mut q = self.queue();
        match q.waiting.iter().position(|w| Arc::ptr_eq(w, me)) {
            Some(at) => {
                q.waiting.remove(at);
                self.receivers.fetch_sub(1, Ordering::AcqRel);
                None
            }
            // Granted after the last look: the turn is this thread's.
            None => Some(Turn { turns: self }),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let turns = self.turns;
        if turns.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            return;
        }
        let mut q = turns.queue();
        match q.waiting.pop_front() {
            Some(next) => {
                next.granted.store(true, Ordering::Release);
                next.thread.unpark();
            }
            // A thread counted itself but has not queued yet (or left at its deadline just
            // now: its turn then stays unclaimed until a later thread queues, which at worst
            // puts two threads in the socket at once).
            None if turns.receivers.load(Ordering::Acquire) > 0 => q.unclaimed += 1,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_first_receiver_takes_the_turn_at_once_and_hands_it_to_the_oldest_waiter() {
        let turns = Arc::new(RecvTurns::default());
        let first = turns.try_take().expect("no one before it");
        assert!(turns.try_take().is_none(), "a second receiver queues");
        // The second receiver, counted by its failed try_take, waits on another thread.
        let t = turns.clone();
        let second = std::thread::spawn(move || t.wait(None).is_some());
        let t = turns.clone();
        while t.queue().waiting.is_empty() {
            std::thread::yield_now();
        }
        drop(first);
        assert!(second.join().unwrap(), "the turn passed on");
        assert_eq!(turns.receivers.load(Ordering::SeqCst), 0);
        assert_eq!(turns.queue().unclaimed, 0);
    }

    #[test]
    fn a_turn_handed_over_before_the_next_thread_queued_is_claimed_when_it_does() {
        let turns = RecvTurns::default();
        let first = turns.try_take().unwrap();
        assert!(turns.try_take().is_none());
        drop(first);
        assert_eq!(turns.queue().unclaimed, 1);
        let second = turns
            .wait(Some(Instant::now()))
            .expect("the unclaimed turn");
        drop(second);
        assert_eq!(turns.receivers.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_waiter_whose_deadline_passes_leaves_the_queue() {
        let turns = RecvTurns::default();
        let first = turns.try_take().unwrap();
        assert!(turns.try_take().is_none());
        let deadline = Instant::now() + Duration::from_millis(1);
        assert!(turns.wait(Some(deadline)).is_none());
        assert!(turns.queue().waiting.is_empty());
        drop(first);
        assert_eq!(turns.receivers.load(Ordering::SeqCst), 0);
        assert_eq!(
            turns.queue().unclaimed,
            0,
            "no turn left for a thread that left"
        );
    }
}
