//! How long a receive that finds nothing polls its connection on the CPU before it sleeps:
//! one limit for every socket of the process, whatever its adapter.
//!
//! Why: a thread that sleeps until its connection has bytes pays the kernel's wake-up when
//! they come, 15–25 µs on a host slow to wake threads (a virtual machine whose idle CPU
//! halts), and a request/reply exchange pays it for every message. A receive that reads its
//! connection for a few microseconds first catches a reply that is on its way.
//!
//! The window is measured on the system's monotonic clock, not the runtime's: it bounds the
//! CPU a wait spends, which a paused or simulated clock would never end, and it decides only
//! when a wait sleeps, never what it receives or when a deadline passes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The default of [`busy_poll_limit`]: long enough for a peer's reply in a ping-pong over
/// loopback (5–10 µs one way on the hosts measured), short enough that a wait for anything
/// slower costs little CPU.
///
/// Measured on sp-blocking, interleaved with sleeping at once (4 rounds, tcp 64 B): one-way
/// latency 5.3–12.4 µs against 23.7–31.5, REQ/REP with one request in flight 36,673–66,059
/// round trips/s against 13,244–27,173; 64 KiB throughput, fan-out, 100 contexts on 100
/// threads and 64 B throughput within the spread of the runs. 50 µs cost fan-out a fifth and
/// 64 KiB a sixth in three rounds; 5 and 10 µs caught fewer replies (BENCHMARKS.md).
pub const DEFAULT_BUSY_POLL: Duration = Duration::from_micros(20);

/// The longest limit [`set_busy_poll_limit`] takes.
const MAX_BUSY_POLL: Duration = Duration::from_secs(1);

/// [`busy_poll_limit`] in nanoseconds.
static BUSY_POLL_NANOS: AtomicU64 = AtomicU64::new(DEFAULT_BUSY_POLL.as_nanos() as u64);

/// Sets how long a call that waits for a connection's bytes (a reply, the peer's next
/// message) first polls for them on the CPU before it sleeps, for every socket of the
/// process: [`DEFAULT_BUSY_POLL`] (20 µs) unless set. [`Duration::ZERO`] makes such calls
/// sleep at once, which spends no CPU on waiting and costs the kernel's wake-up of the thread
/// on every wait. Longer than 1 s counts as 1 s.
///
/// Where it applies:
/// - sp-blocking: a call that waits on its connections (Linux only; elsewhere it waits
///   through async-io's reactor) polls them for up to the limit. At most one waiting call per
///   core polls at a time, and none on a one-core machine. Before that, a `recv` reads its
///   connection itself, as below.
/// - sp-tokio, sp-smol and sp-blocking: a socket's receive (`recv`, `recv_until`,
///   `recv_many`, the socket as a `Stream`) on a socket with exactly one plain TCP or IPC pipe,
///   on a protocol that queues what it receives and pauses a full pipe (not SUB, BUS, STAR or
///   SURVEYOR, whose queues drop), while the peer does not send in bulk (reads of 4 KiB or
///   more). The receiving task reads the connection itself and yields between reads, so the
///   other tasks of its thread still run. One receive of a socket polls at a time; the others
///   sleep, and what its reads deliver wakes them. Contexts and `RecvSet` do not poll: with
///   both ends of a connection on one executor, a context's polling took REQ/REP with one
///   request in flight from 42,770 to 23,178 round trips/s on smol, the reads that found
///   nothing delaying the other end's work on the same thread.
pub fn set_busy_poll_limit(limit: Duration) {
    BUSY_POLL_NANOS.store(limit_nanos(limit), Ordering::Relaxed);
}

fn limit_nanos(limit: Duration) -> u64 {
    limit.min(MAX_BUSY_POLL).as_nanos() as u64
}

/// How long a waiting call polls its connection before it sleeps (see
/// [`set_busy_poll_limit`]).
pub fn busy_poll_limit() -> Duration {
    Duration::from_nanos(BUSY_POLL_NANOS.load(Ordering::Relaxed))
}

/// Which receive of a socket polls its pipe: at most one at a time, so that tasks or threads
/// sharing one socket do not all spin on it; the one that polls delivers to all of them. The
/// lease is held until the holder's receive completes or its window ends, whichever comes
/// first; a receive dropped while it polls leaves a lease that lapses by itself at its window's
/// end.
#[derive(Debug, Default)]
pub(crate) struct PollLease {
    /// When the lease lapses, in nanoseconds since [`epoch`]; 0 when free.
    until: AtomicU64,
}

/// The instant that [`PollLease`] counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    // At least 1: 0 means free.
    (at.saturating_duration_since(epoch()).as_nanos() as u64).max(1)
}

impl PollLease {
    /// Takes the lease until `until`, unless another receive holds it now; returns the
    /// lease's mark (for [`PollLease::give_back`]) if it took it.
    fn take(&self, now: Instant, until: Instant) -> Option<u64> {
        let held = self.until.load(Ordering::Relaxed);
        if held > nanos_since_epoch(now) {
            return None;
        }
        let mark = nanos_since_epoch(until);
        self.until
            .compare_exchange(held, mark, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| mark)
    }

    /// Frees the lease taken with `mark`, unless it lapsed and another receive took it since.
    fn give_back(&self, mark: u64) {
        let _ = self
            .until
            .compare_exchange(mark, 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// One receive's polling window: it opens at the receive's first poll that found nothing,
/// if it takes its socket's [`PollLease`], and closes [`busy_poll_limit`] later, for good.
#[derive(Debug, Default)]
pub(crate) struct BusyPoll {
    since: Option<Instant>,
    closed: bool,
    /// The mark of the socket's lease while this receive holds it.
    lease: Option<u64>,
}

impl BusyPoll {
    /// Whether the window may still be open, without reading the clock.
    pub(crate) fn may_poll(&self) -> bool {
        !self.closed && BUSY_POLL_NANOS.load(Ordering::Relaxed) > 0
    }

    /// Whether the receive may poll once more: opens the window at the first call (taking
    /// `lease`, or staying closed if another receive holds it) and closes it once the limit
    /// has passed.
    pub(crate) fn poll_again(&mut self, lease: &PollLease) -> bool {
        self.may_poll() && self.poll_within(busy_poll_limit(), lease)
    }

    fn poll_within(&mut self, limit: Duration, lease: &PollLease) -> bool {
        let now = Instant::now();
        let since = match self.since {
            Some(since) => since,
            None => {
                self.since = Some(now);
                self.lease = if limit.is_zero() {
                    None
                } else {
                    lease.take(now, now + limit)
                };
                now
            }
        };
        if self.lease.is_some() && !self.closed && now.duration_since(since) < limit {
            return true;
        }
        self.finish(lease);
        self.closed = true;
        false
    }

    /// The receive completed (or its window closed): gives `lease` back if it held it.
    pub(crate) fn finish(&mut self, lease: &PollLease) {
        if let Some(mark) = self.lease.take() {
            lease.give_back(mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_closes_for_good_once_the_limit_passed() {
        let limit = Duration::from_millis(2);
        let lease = PollLease::default();
        let mut window = BusyPoll::default();
        assert!(
            window.poll_within(limit, &lease),
            "the first empty poll opens the window"
        );
        let opened = Instant::now();
        while window.poll_within(limit, &lease) {
            assert!(
                opened.elapsed() < Duration::from_secs(10),
                "the window never closed"
            );
        }
        assert!(opened.elapsed() >= Duration::from_millis(1));
        assert!(!window.may_poll());
        let long = Duration::from_secs(1);
        assert!(
            !window.poll_within(long, &lease),
            "a closed window stays closed"
        );
        let zero = Duration::ZERO;
        assert!(
            !BusyPoll::default().poll_within(zero, &lease),
            "a zero limit never polls"
        );
        assert!(
            BusyPoll::default().poll_within(long, &lease),
            "the lease was given back"
        );
    }

    #[test]
    fn one_receive_of_a_socket_polls_at_a_time() {
        let limit = Duration::from_secs(60);
        let lease = PollLease::default();
        let mut first = BusyPoll::default();
        let mut second = BusyPoll::default();
        assert!(first.poll_within(limit, &lease));
        assert!(
            !second.poll_within(limit, &lease),
            "the first holds the lease"
        );
        assert!(
            !second.poll_within(limit, &lease),
            "and the second never polls after"
        );
        assert!(first.poll_within(limit, &lease));
        first.finish(&lease);
        assert!(
            BusyPoll::default().poll_within(limit, &lease),
            "a finished one gave it back"
        );

        // A lease whose holder went away (a dropped receive) lapses at its window's end.
        let short = Duration::from_millis(1);
        let lease = PollLease::default();
        assert!(BusyPoll::default().poll_within(short, &lease));
        let taken = Instant::now();
        while !BusyPoll::default().poll_within(short, &lease) {
            assert!(
                taken.elapsed() < Duration::from_secs(10),
                "the lease never lapsed"
            );
        }
        assert!(taken.elapsed() < Duration::from_secs(10));

        // A holder whose lease lapsed and went to another frees nothing when it finishes.
        let lease = PollLease::default();
        let mut late = BusyPoll::default();
        assert!(late.poll_within(short, &lease));
        let long = Duration::from_secs(60);
        let mut next = loop {
            let mut window = BusyPoll::default();
            if window.poll_within(long, &lease) {
                break window;
            }
            assert!(
                taken.elapsed() < Duration::from_secs(20),
                "the lease never lapsed"
            );
        };
        late.finish(&lease);
        let third = BusyPoll::default().poll_within(long, &lease);
        assert!(
            !third,
            "the late holder gave back a lease no longer its own"
        );
        next.finish(&lease);
        assert!(BusyPoll::default().poll_within(long, &lease));
    }

    #[test]
    fn the_limit_is_at_most_a_second() {
        assert_eq!(limit_nanos(Duration::from_secs(5)), 1_000_000_000);
        assert_eq!(limit_nanos(Duration::from_micros(20)), 20_000);
        assert_eq!(busy_poll_limit(), DEFAULT_BUSY_POLL);
    }
}
