//! The tasks or threads waiting to receive on a socket (not on a context), one registration
//! per receive operation.
//!
//! Each waiting receive holds the ID of its registration, so that it can update its waker,
//! withdraw when it is dropped, and learn that it was woken: what lets the socket wake one
//! waiting receiver for a message instead of all of them (see `State::wake_receivers`).

use std::collections::VecDeque;
use std::task::Waker;

/// The waiting receivers, oldest first.
#[derive(Default)]
pub(crate) struct Receivers {
    waiting: VecDeque<(u64, Waker)>,
    next_id: u64,
}

impl Receivers {
    /// Registers `waker` for the receive whose registration `slot` holds: replaces that
    /// registration's waker while it waits, or queues a new registration (behind every
    /// other) and keeps its ID in `slot`.
    pub(crate) fn register(&mut self, slot: &mut Option<u64>, waker: &Waker) {
        if let Some(id) = *slot {
            if let Some((_, w)) = self.waiting.iter_mut().find(|(i, _)| *i == id) {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                return;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.push_back((id, waker.clone()));
        *slot = Some(id);
    }

    /// Withdraws registration `id`; false if it was no longer there (it was woken).
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        match self.waiting.iter().position(|(i, _)| *i == id) {
            Some(at) => {
                self.waiting.remove(at);
                true
            }
            None => false,
        }
    }

    /// Wakes every waiting receiver.
    pub(crate) fn wake_all(&mut self) {
        for (_, w) in self.waiting.drain(..) {
            w.wake();
        }
    }

    /// Moves every waiting receiver's waker to `wakes` (woken once the socket's lock is
    /// released); returns how many there were.
    pub(crate) fn defer_all(&mut self, wakes: &mut Vec<Waker>) -> usize {
        let n = self.waiting.len();
        wakes.extend(self.waiting.drain(..).map(|(_, w)| w));
        n
    }

    /// Moves the waker of the receiver that has waited longest to `wakes`; returns how many
    /// it moved (0 or 1).
    pub(crate) fn defer_oldest(&mut self, wakes: &mut Vec<Waker>) -> usize {
        match self.waiting.pop_front() {
            Some((_, w)) => {
                wakes.push(w);
                1
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_keeps_one_registration_and_learns_when_it_was_woken() {
        let mut r = Receivers::default();
        let (mut a, mut b) = (None, None);
        r.register(&mut a, Waker::noop());
        r.register(&mut b, Waker::noop());
        r.register(&mut a, Waker::noop());
        assert_eq!(r.waiting.len(), 2, "a registered once");
        let mut wakes = Vec::new();
        assert_eq!(r.defer_oldest(&mut wakes), 1);
        assert!(!r.remove(a.unwrap()), "a was woken");
        assert!(r.remove(b.unwrap()), "b still waited");
        assert_eq!(r.defer_oldest(&mut wakes), 0);
        // A woken receive that waits again queues anew, behind the others.
        r.register(&mut b, Waker::noop());
        r.register(&mut a, Waker::noop());
        assert_eq!(r.waiting.front().map(|(id, _)| *id), b);
        assert_eq!(r.defer_all(&mut wakes), 2);
        assert_eq!(wakes.len(), 3);
    }
}
