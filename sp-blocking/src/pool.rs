//! The pool's scheduler, and how a blocking call runs and waits on the caller's thread.
//!
//! Every driver task (pipes, timers, dialers, listeners) is an `async-task` task on one
//! process-wide run queue. The [`WORKERS`](crate::runtime::WORKERS) worker threads run it, and
//! so does every blocking call while it waits. A blocking call polls its work on the caller's
//! thread; most sends, and receives of a message already queued, complete there at once, and
//! what they woke (the writer of the message a `send` queued) is left to the pool, so that a
//! loop of sends lets a worker write in batches while the caller goes on. A worker leaves
//! such a writer for [`SEND_BATCH_DELAY`] (10 µs), and the writer, after a small write, asks
//! to be woken that much later too (`wake_later`): the sends of those 10 µs go out in one
//! write, where a writer run at once wrote every two or three messages. A thread that sends a
//! stream runs the writers itself, at every [`YIELDS_PER_WRITE`]th of its periodic yields, and
//! a worker leaves them for [`STREAK_BATCH_DELAY`], for the end of the stream.
//!
//! A call that must wait first runs ready tasks itself (the writer of the request whose reply
//! it now waits for, if no worker took it yet). Then, on Linux, if at most
//! [`DIRECT_MAX`](crate::direct::DIRECT_MAX) connections have a reader waiting for bytes, it
//! polls them and its thread's eventfd on the CPU for up to
//! [`busy_poll_limit`](sp_transport::busy_poll_limit) (20 µs unless
//! set otherwise; while fewer than one caller per core does), then sleeps in `poll(2)` on them
//! (see `crate::direct`): the reply is usually there before it would have slept, and otherwise
//! the kernel wakes the caller itself when it arrives, and the caller reads it, one wake-up
//! instead of two (the reactor's thread, then the caller). Between two sleeps, while it is
//! awake, that caller counts as spinning (below): the reader it wakes after `poll(2)` returns,
//! and what it runs next, wake no worker.
//!
//! Otherwise (inproc pipes, many pipes, other platforms) another thread of this process ends
//! the wait, and the call *spins* for up to [`SPIN`]: it runs queued tasks and polls its own
//! work each time it is woken, on the CPU for [`SPIN_BEFORE_YIELD`] rounds, then yielding
//! the CPU between rounds. While any call spins, a newly queued task wakes no sleeping
//! worker: a spinning caller takes it. An inproc round trip between two blocking threads then
//! costs no sleep and no wake-up, where a futex wake-up of a parked thread costs several
//! microseconds here, twice per trip (the peer's pipe task on a worker, then the peer). A call
//! still waiting after [`SPIN`] sleeps in async-io's `block_on` (which drives the reactor when
//! no other thread does) and leaves the tasks to the workers; so does a call that finds one
//! caller per core spinning already ([`max_spinners`]: many threads waiting on one socket).
//! Until then the call keeps its own deadline (see `crate::deadline`): its spin and its
//! `poll(2)` end by then, and no reactor timer is armed for it.
//!
//! This is a scheduler of our own, not `async-executor`, for that one rule: `async-executor`
//! wakes a sleeping thread for every task scheduled while no runner is awake, and a spinning
//! caller cannot be counted as awake there.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_task::{Runnable, ScheduleInfo, WithInfo};
use concurrent_queue::ConcurrentQueue;

use crate::deadline::CallDeadline;

/// The run queue and who is there to take from it.
struct Pool {
    /// Tasks ready to run, oldest first.
    queue: ConcurrentQueue<Runnable>,
    /// Tasks a send woke on its caller's thread (the writer of the pipe it queued a message
    /// for) or that asked to run later, in the order they are due: a waiting caller runs them
    /// at once, a worker only once they are due (see [`Pool::schedule`]).
    deferred: Mutex<VecDeque<Deferred>>,
    /// When a worker in a timed sleep wakes, in nanoseconds since `epoch` (0: none is).
    /// A task deferred to no earlier than that needs no wake-up: that worker finds it.
    timed_sleep_until: AtomicU64,
    epoch: Instant,
    /// How many tasks `deferred` holds, read without its lock.
    deferred_len: AtomicUsize,
    /// Blocking calls spinning now: each takes queued tasks, so no worker needs waking.
    spinners: AtomicUsize,
    /// Of those, the callers waiting in [`spin`] (at most [`max_spinners`]); the others run
    /// tasks at a send's yield or between two sleeps on their connections.
    spin_waiters: AtomicUsize,
    /// Workers not asleep: one of them takes a queued task, so no other needs waking.
    awake: AtomicUsize,
    /// Workers asleep on `wake` (written under `sleep`'s lock).
    idle: AtomicUsize,
    /// A worker was woken and has not yet started taking tasks: one wake-up at a time.
    notified: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::new)
}

impl Pool {
    fn new() -> Self {
        Self {
            queue: ConcurrentQueue::unbounded(),
            deferred: Mutex::new(VecDeque::new()),
            timed_sleep_until: AtomicU64::new(0),
            epoch: Instant::now(),
            deferred_len: AtomicUsize::new(0),
            spinners: AtomicUsize::new(0),
            spin_waiters: AtomicUsize::new(0),
            awake: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            notified: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Queues a task that became ready, waking a worker only if no caller spins and no
    /// worker is awake.
    ///
    /// A task woken by a send on its caller's thread is deferred: a worker leaves it for
    /// [`SEND_BATCH_DELAY`] ([`STREAK_BATCH_DELAY`] in a stream of sends), so that the sends
    /// that follow queue their messages behind it and the pipe's writer writes them all at
    /// once, and a caller that waits runs it at once (the writer of the request whose reply
    /// it waits for).
    fn schedule(&self, runnable: Runnable, later: bool) {
        let send_wake = DEFER_WAKES.get();
        // A spinning caller (other than a sending one) would take a deferred task at once
        // anyway: queue it where it takes it faster.
        let spinners = self.spinners.load(Ordering::SeqCst);
        let defer =
            (later || send_wake) && spinners <= usize::from(send_wake && SENDER_SPINS.get());
        let mut due = None;
        if defer {
            let delay = if send_wake && SENDS_IN_A_ROW.get() > STREAK_SENDS {
                STREAK_BATCH_DELAY
            } else {
                SEND_BATCH_DELAY
            };
            let at = Instant::now() + delay;
            let mut deferred = lock(&self.deferred);
            let i = deferred.partition_point(|d| d.due <= at);
            deferred.insert(i, Deferred { due: at, runnable });
            self.deferred_len.store(deferred.len(), Ordering::SeqCst);
            due = Some(at);
        } else {
            // Unbounded and never closed: the push cannot fail.
            let _ = self.queue.push(runnable);
        }
        std::sync::atomic::fence(Ordering::SeqCst);
        // Pairs with `end_spin` and with a worker's check before sleeping: whichever of the
        // two sides comes second sees the other (both are sequentially consistent).
        if self.spinners.load(Ordering::SeqCst) == 0
            && self.awake.load(Ordering::SeqCst) == 0
            && !due.is_some_and(|due| self.a_worker_wakes_by(due))
        {
            self.wake_worker();
        }
    }

    /// Whether a worker in a timed sleep wakes by `due` anyway (it then takes what is due).
    fn a_worker_wakes_by(&self, due: Instant) -> bool {
        let until = self.timed_sleep_until.load(Ordering::SeqCst);
        until != 0 && until <= self.nanos(due)
    }

    /// `at` in nanoseconds since the pool's epoch, at least 1 (0 means none).
    fn nanos(&self, at: Instant) -> u64 {
        let n = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(n).unwrap_or(u64::MAX).max(1)
    }

    /// Wakes one sleeping worker, unless one was woken and has not started yet.
    fn wake_worker(&self) {
        if self.idle.load(Ordering::SeqCst) > 0 && !self.notified.swap(true, Ordering::SeqCst) {
            let _guard = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_one();
        }
    }

    /// Runs one queued task, deferred ones included whatever their age (for a caller that
    /// waits); false if there was none.
    fn run_one(&self) -> bool {
        // Looked at before the pop: a pop that finds nothing still pays a full fence, and a
        // spinning caller asks on every round.
        let queued = (!self.queue.is_empty())
            .then(|| self.queue.pop().ok())
            .flatten();
        match queued.or_else(|| self.pop_deferred(None)) {
            Some(runnable) => {
                Self::run(runnable);
                true
            }
            None => false,
        }
    }

    /// The next task for a worker: a queued one, else a deferred one that has waited its
    /// [`SEND_BATCH_DELAY`].
    fn next_for_worker(&self) -> Option<Runnable> {
        self.queue.pop().ok().or_else(|| {
            // The clock is read only with a deferred task to age.
            (self.deferred_len.load(Ordering::SeqCst) > 0)
                .then(|| self.pop_deferred(Some(Instant::now())))
                .flatten()
        })
    }

    /// Takes the deferred task due first; with `now`, only if it is due by then.
    fn pop_deferred(&self, now: Option<Instant>) -> Option<Runnable> {
        if self.deferred_len.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut deferred = lock(&self.deferred);
        if now.is_some_and(|now| deferred.front().is_some_and(|d| d.due > now)) {
            return None;
        }
        let runnable = deferred.pop_front()?.runnable;
        self.deferred_len.store(deferred.len(), Ordering::SeqCst);
        Some(runnable)
    }

    /// What a sending thread runs at its periodic yield: the queued tasks (up to
    /// [`RUN_BATCH`]), and with `deferred` also the deferred ones (the writers of its stream
    /// of sends, before a worker would take them). Counted as a spinner meanwhile, so that
    /// what they wake it runs too, or leaves to a worker as it stops.
    fn run_at_yield(&self, deferred: bool) {
        self.begin_spin();
        for _ in 0..RUN_BATCH {
            match self.queue.pop() {
                Ok(runnable) => Self::run(runnable),
                Err(_) => break,
            }
        }
        if deferred {
            while let Some(runnable) = self.pop_deferred(None) {
                Self::run(runnable);
            }
        }
        self.end_spin();
    }

    /// When the first deferred task is due; `None` if there is none.
    fn deferred_due(&self) -> Option<Instant> {
        if self.deferred_len.load(Ordering::SeqCst) == 0 {
            return None;
        }
        lock(&self.deferred).front().map(|d| d.due)
    }

    /// Runs a task taken from a queue, on a worker or a waiting caller.
    fn run(runnable: Runnable) {
        crate::deadline::running_task(|| runnable.run());
        // A `wake_later` the task asked for and that scheduled nothing (the task ended, or
        // was woken by others meanwhile) must not defer the next task this thread wakes.
        WAKE_LATER.set(false);
    }

    /// Whether a caller that waits on its connections may first poll them on the CPU
    /// (`crate::direct`'s `busy_poll`): while fewer than [`max_spinners`] callers wait on the
    /// CPU, and with more than one core (on one, it would hold off the peer it waits for).
    /// It then counts among [`Pool::spin_waiters`] until it stops.
    #[cfg(target_os = "linux")]
    fn begin_busy_poll(&self) -> bool {
        if max_spinners() < 2 {
            return false;
        }
        if self.spin_waiters.fetch_add(1, Ordering::SeqCst) >= max_spinners() {
            self.spin_waiters.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn begin_spin(&self) {
        self.spinners.fetch_add(1, Ordering::SeqCst);
    }

    /// A spinning call stops. The last one to stop hands what is still queued to a worker
    /// (such as a pipe task that yielded after waking this caller); while others spin, they
    /// take it.
    fn end_spin(&self) {
        let still_spinning = self.spinners.fetch_sub(1, Ordering::SeqCst) - 1;
        std::sync::atomic::fence(Ordering::SeqCst);
        if still_spinning == 0 && self.awake.load(Ordering::SeqCst) == 0 && self.needs_a_worker() {
            self.wake_worker();
        }
    }

    /// Whether a task is queued, or deferred with no worker in a timed sleep that ends by
    /// the time it is due.
    fn needs_a_worker(&self) -> bool {
        !self.queue.is_empty()
            || self
                .deferred_due()
                .is_some_and(|due| !self.a_worker_wakes_by(due))
    }
}

/// A task that a send woke on its caller's thread, or that asked to run later, left for a
/// while (see [`Pool::schedule`]).
struct Deferred {
    /// When a worker may take it.
    due: Instant,
    runnable: Runnable,
}

/// A sending thread runs the deferred writers at every this many of its periodic yields
/// (one every 32 sends of a role whose sends never wait, PUB or BUS, every 256 of the
/// others, which find their queue of 256 full first; see `sp_transport`'s send): a stream of
/// small sends goes out in writes of about 100 messages (a publisher's) or 256, written on
/// the thread that sent them.
///
/// At every yield, as before, a blocking tcp 64 B sender wrote every 32 messages, and each
/// write woke the receiver: about 31,000 `writev` calls per 1,000,000 messages and 230–280 ms
/// of the sender's CPU, against about 10,500 and 170–180 ms at every third. A publisher, whose
/// sends never wait for room, still has its writers run well before a subscriber's queue
/// (256 messages) fills.
const YIELDS_PER_WRITE: u32 = 3;

/// After this many sends in a row, with no other blocking call in between, a thread is
/// sending a stream: the writers its sends wake wait [`STREAK_BATCH_DELAY`] for a worker.
const STREAK_SENDS: u32 = 64;

/// How long a worker leaves a writer woken by a thread that sends a stream of messages.
///
/// That thread runs the writer itself at its periodic yields (see [`YIELDS_PER_WRITE`]), or
/// when it waits (a send into a full queue of 256 messages, a receive), so the writer writes
/// the stream's messages on the thread that queued them, as a single-threaded runtime would.
/// With [`SEND_BATCH_DELAY`] alone, a sender slowed for a moment let a worker take the writer
/// first; the worker then took the pipe's queue in turns with the sending thread, which
/// slowed the sends, which left the worker the next writer too. A blocking ipc 64 B sender
/// stayed in that state for whole runs, in a third of them (2.9–3.4 M msg/s, 30,000–57,000
/// `futex` calls per 1,000,000 messages, against 4.2–4.8 M and 6,000–8,000).
///
/// Why 200 µs: a role whose sends wait for room (PAIR, PUSH, ...) yields every 256 sends, so
/// its thread runs the writer once the queue is full, 256 sends after the wake-up: about
/// 85 µs at 3 M msg/s. At 50 µs a worker took the writer first in most batches (tcp 64 B,
/// 2,000,000 messages: 17,600–19,100 `writev` calls of about 106 messages and 20,300–23,300
/// `futex` calls; at 200 µs 7,850–8,200 of 255 and 4,500–4,800). The last messages of a
/// stream go out at most this late.
const STREAK_BATCH_DELAY: Duration = Duration::from_micros(200);

/// How long a worker leaves a task that a send woke on its caller's thread (see
/// [`Pool::schedule`]).
///
/// A loop of small sends over TCP otherwise had its pipe's writer run by a worker after
/// every two or three messages: 570,000–890,000 `writev` calls for 2,000,000 messages of
/// 64 B, each carrying the loopback's whole send and receive path, and 1.3 M msg/s.
/// Left this long, the writer takes the messages of the sends that followed (a send takes
/// a fraction of a microsecond): 62,000–67,000 `writev` calls for the same run, and the
/// sender's CPU time went from 1.4–2.4 s to 0.52–0.57 s (a worker sleeps until a deferred
/// task is due, rather than spin: 0.65–0.87 s when it spun). A message a thread sends before
/// it goes on with other work goes out this much later; one it sends before it waits on a
/// socket goes out at once.
pub(crate) const SEND_BATCH_DELAY: Duration = Duration::from_micros(10);

/// How many ready tasks a blocking call runs before it polls its own work again.
const RUN_BATCH: usize = 64;

/// How long a waiting call keeps running tasks and polling before it sleeps (module docs).
///
/// Long enough for another thread of the process to answer an inproc message (a few
/// microseconds), short enough that a call waiting on something slower costs little CPU
/// before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// How many rounds [`spin`] waits on the CPU before it yields the CPU each round: a few
/// microseconds. Yielding after that lets a worker or the peer's thread run where a core is
/// short (a caller that spun without yielding cost inproc throughput here: 1.24 M against
/// 1.46 M msg/s), and still answers within a round of the scheduler.
const SPIN_BEFORE_YIELD: u32 = 64;

/// How many rounds of [`spin`] go by between two reads of the clock, a power of two (a read
/// costs about as much as the rest of a round).
const CLOCK_EVERY: u32 = 64;

/// Spawns `fut` on the pool.
pub(crate) fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    // A task that panics ends alone (the panic is kept for a join nobody makes), not with
    // the worker or the caller's thread that ran it.
    let (runnable, task) = async_task::Builder::new().propagate_panic(true).spawn(
        |()| fut,
        WithInfo(|runnable, info: ScheduleInfo| {
            let later = info.woken_while_running && WAKE_LATER.take();
            pool().schedule(runnable, later);
        }),
    );
    task.detach();
    runnable.schedule();
}

/// A worker thread's loop: runs queued tasks, sleeps while there are none. Never returns.
pub(crate) fn worker() {
    // The OS may end a timed sleep this much late (Linux's default is 50 µs): a deferred
    // writer is due after 10 µs. A refusal keeps the default: later writes, nothing worse.
    #[cfg(target_os = "linux")]
    let _ =
        rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(WORKER_TIMER_SLACK_NS));
    let pool = pool();
    pool.awake.fetch_add(1, Ordering::SeqCst);
    loop {
        while let Some(runnable) = pool.next_for_worker() {
            // More queued than this worker takes now: let a sleeping one help.
            if !pool.queue.is_empty() {
                pool.wake_worker();
            }
            Pool::run(runnable);
        }
        // Still counted as awake, so what is queued meanwhile wakes nobody: a writer woken
        // again by the next sends runs here without a futex wake-up on either side.
        if linger_for_work(pool) {
            continue;
        }
        let mut guard = pool.sleep.lock().unwrap_or_else(|e| e.into_inner());
        // Any wake-up sent so far reached a worker or found none asleep, under this lock:
        // from here a new task must wake one again.
        pool.notified.store(false, Ordering::SeqCst);
        pool.awake.fetch_sub(1, Ordering::SeqCst);
        pool.idle.fetch_add(1, Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        // A task queued after the loop above and before this worker stopped counting as
        // awake was not announced to it: look once more, under the lock `wake_worker` takes.
        // With a deferred task, it sleeps until that one is due (a timed wait, its slack
        // narrowed above) instead of spinning: the CPU goes to the threads with work.
        loop {
            if !pool.queue.is_empty() {
                break;
            }
            guard = match pool.deferred_due() {
                None => pool.wake.wait(guard).unwrap_or_else(|e| e.into_inner()),
                Some(due) => {
                    let wait = due.saturating_duration_since(Instant::now());
                    if wait.is_zero() {
                        break;
                    }
                    let until = pool.nanos(due);
                    pool.timed_sleep_until.store(until, Ordering::SeqCst);
                    let guard = pool
                        .wake
                        .wait_timeout(guard, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    let _ = pool.timed_sleep_until.compare_exchange(
                        until,
                        0,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    guard
                }
            };
            // Woken: the wake-up is answered even if a spinning caller took the task.
            pool.notified.store(false, Ordering::SeqCst);
        }
        pool.idle.fetch_sub(1, Ordering::SeqCst);
        pool.awake.fetch_add(1, Ordering::SeqCst);
    }
}

/// How late, in nanoseconds, a worker's timed sleep may end: the thread's timer slack.
#[cfg(target_os = "linux")]
const WORKER_TIMER_SLACK_NS: u64 = 1_000;

/// How long a worker that ran out of tasks keeps looking for more before it sleeps.
///
/// A pipe's writer goes idle after each write and is woken by the next send a few
/// microseconds later. Asleep in between, the worker cost a futex wake-up on the sending
/// thread and a sleep and wake-up of its own per write: with a loop of 64 B sends over TCP,
/// 103,000 futex calls and 87,000 context switches for 2,000,000 messages, and writes of 5
/// messages each. A worker that lingers this long answers the next wake-up without either.
const WORKER_LINGER: Duration = Duration::from_micros(50);

/// Waits up to [`WORKER_LINGER`] for a task to be queued, on the CPU for a few rounds and
/// then yielding it between rounds, so that on a busy machine the threads with work run.
/// Returns true if a task came, false if none came or [`Pool::linger_verdict`] ends the wait.
fn linger_for_work(pool: &Pool) -> bool {
    let mut wait = SpinWait::new(WORKER_LINGER, None);
    loop {
        if let Some(task_came) = pool.linger_verdict() {
            return task_came;
        }
        if !wait.pause() {
            return false;
        }
    }
}

impl Pool {
    /// Whether a lingering worker stops: `Some(true)` when a task is queued, `Some(false)`
    /// when it should sleep instead, `None` to go on waiting.
    ///
    /// It sleeps at once while a caller spins: that caller takes what is queued. Two threads
    /// in an inproc ping-pong keep a caller spinning nearly all the time, and a worker that
    /// lingered on took a share of their pipes' tasks, woke, lingered again and never slept: a
    /// third busy thread on two cores, yielding to them 400,000–600,000 times in a run of
    /// 200,000 round trips, which took 1.65–1.81 µs one way against 1.21–1.30 µs without it.
    /// And while a task is deferred, it sleeps until that one is due.
    fn linger_verdict(&self) -> Option<bool> {
        if !self.queue.is_empty() {
            return Some(true);
        }
        if self.spinners.load(Ordering::SeqCst) > 0 || self.deferred_len.load(Ordering::SeqCst) > 0
        {
            return Some(false);
        }
        None
    }
}

/// The rounds of a bounded wait on the CPU: [`SPIN_BEFORE_YIELD`] rounds of spinning, then
/// yielding the CPU each round, until `limit` has passed or a deadline is reached, whichever
/// comes first (the clock read every [`CLOCK_EVERY`] rounds).
struct SpinWait {
    until: Instant,
    round: u32,
}

impl SpinWait {
    fn new(limit: Duration, deadline: Option<Instant>) -> Self {
        let mut wait = Self {
            until: Instant::now() + limit,
            round: 0,
        };
        wait.end_by(deadline);
        wait
    }

    /// Ends the wait by `deadline` at the latest.
    fn end_by(&mut self, deadline: Option<Instant>) {
        if let Some(deadline) = deadline {
            self.until = self.until.min(deadline);
        }
    }

    /// Waits one round; false once the limit has passed (then it does not wait).
    fn pause(&mut self) -> bool {
        self.round = self.round.wrapping_add(1);
        if self.round & (CLOCK_EVERY - 1) == 0 && Instant::now() >= self.until {
            return false;
        }
        if self.round > SPIN_BEFORE_YIELD {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
        true
    }
}

/// Runs up to [`RUN_BATCH`] ready tasks on this thread; returns whether more may be ready.
#[cfg(target_os = "linux")]
fn run_ready() -> bool {
    let pool = pool();
    for _ in 0..RUN_BATCH {
        if !pool.run_one() {
            return false;
        }
    }
    true
}

/// Runs `fut` to completion on the calling thread (see the module docs).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    block_on_inner(|| fut, false, true)
}

/// [`block_on`] for a call whose caller has just made the attempt that the future's first
/// poll would make (a `try_recv` that found nothing): the call goes straight to waiting,
/// where the future is polled again with a waker, instead of trying twice in a row.
pub(crate) fn block_on_after_attempt<F: Future>(make: impl FnOnce() -> F) -> F::Output {
    block_on_inner(make, false, false)
}

/// [`block_on`] for a send, of the future `make` returns: the tasks its polls wake (the
/// writer of the pipe it queued the message for) are deferred (see [`Pool::schedule`]).
///
/// Built here rather than passed in: a send's future is a few hundred bytes, and each move
/// of it on the way down was a `memcpy` per message (about 6 % of a sending thread's time).
pub(crate) fn block_on_send<F: Future>(make: impl FnOnce() -> F) -> F::Output {
    block_on_inner(make, true, true)
}

/// [`block_on`]; `attempt_first`: poll once without a waker before waiting (unless the
/// caller just made that attempt itself).
fn block_on_inner<F: Future>(
    make: impl FnOnce() -> F,
    is_send: bool,
    attempt_first: bool,
) -> F::Output {
    // The deadlines its polls leave to this thread (see `crate::deadline`).
    let call = CallDeadline::begin();
    SENDS_IN_A_ROW.set(match is_send {
        true => SENDS_IN_A_ROW.get().saturating_add(1),
        false => 0,
    });
    let mut fut = pin!(make());
    // Most sends, and receives of a message already queued, complete at the first poll.
    // What that attempt wakes is deferred, a receive's as a send's: a receive that takes a
    // message resumes the pipe that waited for room in the queue, and its reader then runs
    // on this thread when the caller next waits for a message, or on a worker once due.
    // Run at once on a worker, it delivered into the queue while the caller took from it,
    // the two threads taking the socket's lock from each other, and the caller spun while
    // the worker read: a blocking tcp 64 B receiver fed by a smol sender took 4.12–4.32 M
    // msg/s, and 5.42–5.52 M deferring (three interleaved rounds).
    if attempt_first {
        if let Poll::Ready(out) = poll_unregistered(true, fut.as_mut()) {
            return out;
        }
    }
    // A send that yields (every few dozen sends, see `sp_transport`'s send) is ready when
    // polled again. At every few yields, it runs the deferred writers (see
    // `YIELDS_PER_WRITE`).
    let again = is_send.then(|| poll_unregistered(true, fut.as_mut()));
    if let Some(Poll::Ready(out)) = again {
        let yields = SEND_YIELDS.get().wrapping_add(1);
        SEND_YIELDS.set(yields);
        pool().run_at_yield(yields.is_multiple_of(YIELDS_PER_WRITE));
        return out;
    }
    // With connections to watch, the caller waits on them itself; with none (inproc, or too
    // many pipes), it spins, then sleeps until its waker is called.
    #[cfg(target_os = "linux")]
    if let Some(wake) = crate::direct::caller_wake().filter(|_| crate::direct::watchable()) {
        let waker = Waker::from(wake.clone());
        let mut cx = Context::from_waker(&waker);
        let pool = pool();
        // Awake, the caller counts as a spinner: the tasks it wakes (its connection's
        // reader, its request's writer) wake no worker, it runs them next.
        pool.begin_spin();
        loop {
            wake.begin_poll();
            if run_ready() {
                waker.wake_by_ref();
            }
            let out = poll_deferring_if(is_send, true, fut.as_mut(), &mut cx);
            pool.end_spin();
            if let Poll::Ready(out) = out {
                return out;
            }
            let limit = sp_transport::busy_poll_limit();
            let busy = !limit.is_zero() && pool.begin_busy_poll();
            let readable = wake.sleep(call.kept(), busy.then_some(limit));
            if busy {
                pool.spin_waiters.fetch_sub(1, Ordering::SeqCst);
            }
            pool.begin_spin();
            readable.into_iter().for_each(Waker::wake);
        }
    }
    if let Poll::Ready(out) = spin(pool(), fut.as_mut(), is_send, &call) {
        return out;
    }
    // A deadline that the spin reached: the call ends here, with no reactor timer.
    if call
        .kept()
        .is_some_and(|deadline| Instant::now() >= deadline)
    {
        if let Poll::Ready(out) = poll_unregistered(is_send, fut.as_mut()) {
            return out;
        }
    }
    // Polled by async-io from here on, not as this thread's own call: its sleeps arm timers.
    async_io::block_on(fut)
}

/// Polls `fut` once with a waker that does nothing (a future still pending is polled again
/// with a real one before the call waits).
fn poll_unregistered<F: Future>(defer: bool, fut: Pin<&mut F>) -> Poll<F::Output> {
    NOOP_WAKER.with(|waker| poll_deferring_if(defer, false, fut, &mut Context::from_waker(waker)))
}

/// Polls `fut`; with `defer` (a send, or a call's first attempt), the tasks the poll wakes
/// are deferred (see [`Pool::schedule`]): the writer of the pipe a send queued a message
/// for, the reader of the pipe a receive resumed, which the caller runs itself when it next
/// waits or yields.
fn poll_deferring_if<F: Future>(
    defer: bool,
    spinning: bool,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    DEFER_WAKES.set(defer);
    SENDER_SPINS.set(spinning);
    let out = crate::deadline::polling_own_call(|| fut.poll(cx));
    DEFER_WAKES.set(false);
    SENDER_SPINS.set(false);
    out
}

/// Runs queued tasks, and polls `fut` each time it is woken, for up to [`SPIN`] in all;
/// pending if `fut` still is then, or at once if [`max_spinners`] callers wait in it already.
fn spin<F: Future>(
    pool: &Pool,
    mut fut: Pin<&mut F>,
    is_send: bool,
    call: &CallDeadline,
) -> Poll<F::Output> {
    if pool.spin_waiters.fetch_add(1, Ordering::SeqCst) >= max_spinners() {
        pool.spin_waiters.fetch_sub(1, Ordering::SeqCst);
        return Poll::Pending;
    }
    let (wake, waker) = SPIN_WAKER.with(Clone::clone);
    wake.0.store(true, Ordering::Relaxed);
    let mut cx = Context::from_waker(&waker);
    let mut wait = SpinWait::new(SPIN, call.kept());
    pool.begin_spin();
    let mut out = Poll::Pending;
    loop {
        if wake.0.swap(false, Ordering::AcqRel) {
            out = poll_deferring_if(is_send, true, fut.as_mut(), &mut cx);
            if out.is_ready() {
                break;
            }
            wait.end_by(call.kept());
        }
        if pool.run_one() {
            continue;
        }
        if !wait.pause() {
            break;
        }
    }
    pool.end_spin();
    pool.spin_waiters.fetch_sub(1, Ordering::SeqCst);
    out
}

/// How many callers may wait in [`spin`] at once: one per core. Every caller beyond that
/// would spin on a core that another spinner, or the thread with the work, needs: a hundred
/// threads waiting on one socket's contexts, each spinning for [`SPIN`] and yielding to the
/// others, made 240,000–256,000 `sched_yield` calls in 100,000 inproc round trips
/// (14,000–19,000 with this limit).
fn max_spinners() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The waker of [`spin`]: records that the call's work may progress.
struct SpinWake(AtomicBool);

impl Wake for SpinWake {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Wakes `waker`, the task running on this thread, after [`SEND_BATCH_DELAY`] rather than at
/// once, unless a caller that waits takes it first: [`Threads`](crate::Threads)'
/// [`wake_later`](sp_transport::rt::Runtime::wake_later), which a pipe's writer calls after a
/// small batch.
pub(crate) fn wake_later(waker: &Waker) {
    WAKE_LATER.set(true);
    waker.wake_by_ref();
}

thread_local! {
    /// Set by [`wake_later`] until the task that asked is scheduled again when its poll ends.
    static WAKE_LATER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };

    /// Set with [`DEFER_WAKES`] while the sending caller counts as a spinner itself: its
    /// wakes are deferred unless another caller spins.
    static SENDER_SPINS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };

    /// How many times this thread's sends yielded (see [`YIELDS_PER_WRITE`]).
    static SEND_YIELDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };

    /// How many sends this thread made since its last other blocking call (see
    /// [`STREAK_SENDS`]).
    static SENDS_IN_A_ROW: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };

    /// Set while a send's future is polled on its caller's thread: the tasks it wakes are
    /// deferred (see [`Pool::schedule`]).
    static DEFER_WAKES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };

    /// A waker that does nothing, for the first poll of [`block_on`]: a future still pending
    /// then is polled again at once with the real waker. One per thread, so that the clones
    /// a pending call makes count on this thread's cache line, not one that every caller
    /// thread of the process shares.
    static NOOP_WAKER: Waker = {
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        Waker::from(Arc::new(Noop))
    };

    /// This thread's [`spin`] waker (one allocation per thread, not per wait). A wake left
    /// over from an earlier call costs one extra poll.
    static SPIN_WAKER: (Arc<SpinWake>, Waker) = {
        let wake = Arc::new(SpinWake(AtomicBool::new(false)));
        (wake.clone(), Waker::from(wake))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task that counts its runs; its schedule function does nothing (the tests queue it).
    fn counted(runs: &Arc<AtomicUsize>) -> Runnable {
        let runs = runs.clone();
        let (runnable, task) = async_task::spawn(
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
            },
            |_| {},
        );
        task.detach();
        runnable
    }

    /// A caller that finds one spinning caller per core sleeps at once, without a poll;
    /// otherwise it spins, and a ready call completes there.
    #[test]
    fn a_caller_spins_only_while_fewer_than_one_per_core_do() {
        let pool = Pool::new();
        let polls = AtomicUsize::new(0);
        let mut counted_poll = pin!(std::future::poll_fn(|_| {
            polls.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(())
        }));
        pool.spin_waiters.store(max_spinners(), Ordering::SeqCst);
        assert!(spin(&pool, counted_poll.as_mut(), false, &CallDeadline::begin()).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 0, "it did not spin");
        assert_eq!(pool.spin_waiters.load(Ordering::SeqCst), max_spinners());
        // Callers that run tasks elsewhere (a send's yield) do not count.
        pool.spin_waiters.fetch_sub(1, Ordering::SeqCst);
        pool.begin_spin();
        assert!(spin(&pool, counted_poll.as_mut(), false, &CallDeadline::begin()).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert_eq!(pool.spin_waiters.load(Ordering::SeqCst), max_spinners() - 1);
    }

    #[test]
    fn a_deferred_task_waits_its_delay_for_a_worker_but_not_for_a_waiting_caller() {
        let pool = Pool::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let before = Instant::now();
        pool.schedule(counted(&runs), true);
        assert!(pool.queue.is_empty(), "deferred, not queued");
        assert!(
            pool.needs_a_worker(),
            "no worker sleeps until it is due yet"
        );
        let due = pool
            .deferred_due()
            .expect("a worker sleeps until it is due");
        assert!(due >= before + SEND_BATCH_DELAY);
        assert!(due <= Instant::now() + SEND_BATCH_DELAY);
        // A worker leaves it until it is due, then takes it.
        assert!(pool
            .pop_deferred(Some(due - Duration::from_nanos(1)))
            .is_none());
        assert!(pool.pop_deferred(Some(due)).is_some());
        assert!(!pool.needs_a_worker());
        assert_eq!(pool.deferred_due(), None);
        // A waiting caller takes it whatever its age.
        pool.schedule(counted(&runs), true);
        assert!(pool.run_one());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!pool.run_one());
    }

    #[test]
    fn only_the_wakes_of_a_sends_first_poll_are_deferred() {
        let pool = Pool::new();
        let runs = Arc::new(AtomicUsize::new(0));
        pool.schedule(counted(&runs), false);
        assert_eq!(pool.queue.len(), 1, "an ordinary wake is queued");
        DEFER_WAKES.set(true);
        pool.schedule(counted(&runs), false);
        DEFER_WAKES.set(false);
        assert_eq!(pool.queue.len(), 1);
        assert_eq!(pool.deferred_len.load(Ordering::SeqCst), 1);
        // Queued tasks come first, for a worker as for a caller.
        assert!(pool.next_for_worker().is_some());
        assert!(pool.queue.is_empty(), "the queued one was taken");
        assert_eq!(pool.deferred_len.load(Ordering::SeqCst), 1);
        // The deferred one only when it is due (given times, not the clock: a test thread
        // preempted for the delay would see it due).
        let due = pool.deferred_due().expect("deferred");
        assert!(pool
            .pop_deferred(Some(due - Duration::from_nanos(1)))
            .is_none());
        assert!(pool.pop_deferred(Some(due)).is_some());
    }

    #[test]
    fn a_lingering_worker_sleeps_while_a_caller_spins_or_a_task_is_deferred() {
        let pool = Pool::new();
        let runs = Arc::new(AtomicUsize::new(0));
        assert_eq!(
            pool.linger_verdict(),
            None,
            "nothing to do yet: it waits on"
        );
        pool.begin_spin();
        assert_eq!(
            pool.linger_verdict(),
            Some(false),
            "the spinning caller takes what comes"
        );
        pool.schedule(counted(&runs), false);
        assert_eq!(pool.linger_verdict(), Some(true), "a queued task is taken");
        assert!(pool.run_one());
        pool.end_spin();
        assert_eq!(pool.linger_verdict(), None);
        pool.schedule(counted(&runs), true);
        assert_eq!(
            pool.linger_verdict(),
            Some(false),
            "it sleeps until the deferred task is due"
        );
    }

    #[test]
    fn a_wake_later_that_scheduled_nothing_does_not_defer_the_next_wake() {
        // The task asks to be woken later, then ends: its run clears the request.
        let (runnable, task) = async_task::spawn(
            std::future::poll_fn(|cx| {
                wake_later(cx.waker());
                Poll::Ready(())
            }),
            |_| {},
        );
        task.detach();
        Pool::run(runnable);
        assert!(!WAKE_LATER.get());
    }

    /// Schedules `runnable` as a send's poll would, `in_a_row` sends into a stream, with the
    /// sender counted as spinning or not.
    fn schedule_from_send(pool: &Pool, runnable: Runnable, in_a_row: u32, sender_spins: bool) {
        SENDS_IN_A_ROW.set(in_a_row);
        DEFER_WAKES.set(true);
        SENDER_SPINS.set(sender_spins);
        pool.schedule(runnable, false);
        DEFER_WAKES.set(false);
        SENDER_SPINS.set(false);
        SENDS_IN_A_ROW.set(0);
    }

    #[test]
    fn a_send_defers_its_wakes_unless_another_caller_spins() {
        let pool = Pool::new();
        let runs = Arc::new(AtomicUsize::new(0));
        // The sender itself spins (it waited, or yielded): still deferred.
        pool.begin_spin();
        schedule_from_send(&pool, counted(&runs), 0, true);
        assert_eq!(pool.deferred_len.load(Ordering::SeqCst), 1);
        assert!(pool.queue.is_empty());
        // Another caller spins too: it takes the task from the queue at once.
        pool.begin_spin();
        schedule_from_send(&pool, counted(&runs), 0, true);
        assert_eq!(pool.queue.len(), 1, "queued for the spinning caller");
        pool.end_spin();
        pool.end_spin();
    }

    #[test]
    fn the_writers_of_a_stream_of_sends_wait_longer_for_a_worker() {
        let pool = Pool::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let before = Instant::now();
        schedule_from_send(&pool, counted(&runs), STREAK_SENDS + 1, false);
        let streak_due = pool.deferred_due().expect("deferred");
        assert!(
            streak_due >= before + STREAK_BATCH_DELAY,
            "a stream's writer waits longer"
        );
        // A send that is not part of a stream defers for the short delay.
        let before = Instant::now();
        schedule_from_send(&pool, counted(&runs), 1, false);
        let after = Instant::now();
        let dues: Vec<Instant> = lock(&pool.deferred).iter().map(|d| d.due).collect();
        assert_eq!(dues.len(), 2);
        let short_due = if dues[0] == streak_due {
            dues[1]
        } else {
            dues[0]
        };
        assert!(short_due >= before + SEND_BATCH_DELAY);
        assert!(short_due <= after + SEND_BATCH_DELAY);
        // Kept in the order they are due in (whatever the time between the two sends), and
        // a worker takes them in that order, each once it is due.
        assert!(dues[0] <= dues[1], "in the order of when they are due");
        assert!(pool
            .pop_deferred(Some(dues[0] - Duration::from_nanos(1)))
            .is_none());
        assert!(pool.pop_deferred(Some(dues[0])).is_some());
        assert_eq!(pool.deferred_due(), Some(dues[1]));
    }

    #[test]
    fn a_worker_in_a_timed_sleep_is_not_woken_for_a_task_due_after_it_wakes() {
        let pool = Pool::new();
        let runs = Arc::new(AtomicUsize::new(0));
        schedule_from_send(&pool, counted(&runs), 0, false);
        let due = pool.deferred_due().expect("deferred");
        assert!(pool.needs_a_worker(), "nobody sleeps until it is due yet");
        // A worker sleeps until then (as `worker` records it).
        pool.timed_sleep_until
            .store(pool.nanos(due), Ordering::SeqCst);
        assert!(!pool.needs_a_worker(), "that worker takes it when it wakes");
        assert!(pool.a_worker_wakes_by(due + Duration::from_micros(1)));
        // A task due before that worker wakes needs another wake-up.
        assert!(!pool.a_worker_wakes_by(due - Duration::from_micros(1)));
        pool.timed_sleep_until.store(0, Ordering::SeqCst);
        assert!(pool.needs_a_worker());
    }

    #[test]
    fn a_sending_threads_yield_runs_the_deferred_writers_only_every_few_yields() {
        let pool = Pool::new();
        let runs = Arc::new(AtomicUsize::new(0));
        schedule_from_send(&pool, counted(&runs), STREAK_SENDS + 1, false);
        pool.schedule(counted(&runs), false);
        pool.run_at_yield(false);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the queued task ran");
        assert_eq!(
            pool.deferred_len.load(Ordering::SeqCst),
            1,
            "the writer waits"
        );
        pool.run_at_yield(true);
        assert_eq!(runs.load(Ordering::SeqCst), 2, "now the writer ran");
        assert_eq!(pool.deferred_len.load(Ordering::SeqCst), 0);
        assert_eq!(pool.spinners.load(Ordering::SeqCst), 0);
    }
}
