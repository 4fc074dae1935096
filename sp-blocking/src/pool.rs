//! The pool's scheduler, and how a blocking call runs and waits on the caller's thread.
//!
//! Every driver task (pipes, timers, dialers, listeners) is an `async-task` task on one
//! process-wide run queue. The [`WORKERS`](crate::runtime::WORKERS) worker threads run it, and
//! so does every blocking call while it waits. A blocking call polls its work on the caller's
//! thread; most sends, and receives of a message already queued, complete there at once, and
//! what they woke (the writer of the message a `send` queued) is left to the pool, so that a
//! loop of sends lets a worker write in batches while the caller goes on.
//!
//! A call that must wait first runs ready tasks itself (the writer of the request whose reply
//! it now waits for, if no worker took it yet). Then, on Linux, if at most
//! [`DIRECT_MAX`](crate::direct::DIRECT_MAX) connections have a reader waiting for bytes, it
//! sleeps in `poll(2)` on them and on its thread's eventfd (see `crate::direct`): the kernel
//! wakes the caller itself when the reply arrives, and the caller reads it, one wake-up instead
//! of two (the reactor's thread, then the caller). Between two sleeps, while it is awake, that
//! caller counts as spinning (below): the reader it wakes after `poll(2)` returns, and what
//! it runs next, wake no worker.
//!
//! Otherwise (inproc pipes, many pipes, other platforms) another thread of this process ends
//! the wait, and the call *spins* for up to [`SPIN`]: it runs queued tasks and polls its own
//! work each time it is woken, on the CPU for [`SPIN_BEFORE_YIELD`] rounds, then yielding
//! the CPU between rounds. While any call spins, a newly queued task wakes no sleeping
//! worker: a spinning caller takes it. An inproc round trip between two blocking threads then
//! costs no sleep and no wake-up, where a futex wake-up of a parked thread costs several
//! microseconds here, twice per trip (the peer's pipe task on a worker, then the peer). A call
//! still waiting after [`SPIN`] sleeps in async-io's `block_on` (which drives the reactor when
//! no other thread does) and leaves the tasks to the workers.
//!
//! This is a scheduler of our own, not `async-executor`, for that one rule: `async-executor`
//! wakes a sleeping thread for every task scheduled while no runner is awake, and a spinning
//! caller cannot be counted as awake there.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_task::Runnable;
use concurrent_queue::ConcurrentQueue;

/// The run queue and who is there to take from it.
struct Pool {
    /// Tasks ready to run, oldest first.
    queue: ConcurrentQueue<Runnable>,
    /// Blocking calls spinning now: each takes queued tasks, so no worker needs waking.
    spinners: AtomicUsize,
    /// Workers not asleep: one of them takes a queued task, so no other needs waking.
    awake: AtomicUsize,
    /// Workers asleep on `wake` (written under `sleep`'s lock).
    idle: AtomicUsize,
    /// A worker was woken and has not yet started taking tasks: one wake-up at a time.
    notified: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        queue: ConcurrentQueue::unbounded(),
        spinners: AtomicUsize::new(0),
        awake: AtomicUsize::new(0),
        idle: AtomicUsize::new(0),
        notified: AtomicBool::new(false),
        sleep: Mutex::new(()),
        wake: Condvar::new(),
    })
}

impl Pool {
    /// Queues a task that became ready, waking a worker only if no caller spins and no
    /// worker is awake.
    fn schedule(&self, runnable: Runnable) {
        // Unbounded and never closed: the push cannot fail.
        let _ = self.queue.push(runnable);
        std::sync::atomic::fence(Ordering::SeqCst);
        // Pairs with `end_spin` and with a worker's check before sleeping: whichever of the
        // two sides comes second sees the other (both are sequentially consistent).
        if self.spinners.load(Ordering::SeqCst) == 0 && self.awake.load(Ordering::SeqCst) == 0 {
            self.wake_worker();
        }
    }

    /// Wakes one sleeping worker, unless one was woken and has not started yet.
    fn wake_worker(&self) {
        if self.idle.load(Ordering::SeqCst) > 0 && !self.notified.swap(true, Ordering::SeqCst) {
            let _guard = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_one();
        }
    }

    /// Runs one queued task; false if there was none.
    fn run_one(&self) -> bool {
        match self.queue.pop() {
            Ok(runnable) => {
                runnable.run();
                true
            }
            Err(_) => false,
        }
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
        if still_spinning == 0 && !self.queue.is_empty() && self.awake.load(Ordering::SeqCst) == 0 {
            self.wake_worker();
        }
    }
}

/// How many ready tasks a blocking call runs before it polls its own work again.
#[cfg(target_os = "linux")]
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
    let (runnable, task) = async_task::Builder::new()
        .propagate_panic(true)
        .spawn(|()| fut, |runnable| pool().schedule(runnable));
    task.detach();
    runnable.schedule();
}

/// A worker thread's loop: runs queued tasks, sleeps while there are none. Never returns.
pub(crate) fn worker() {
    let pool = pool();
    pool.awake.fetch_add(1, Ordering::SeqCst);
    loop {
        while let Ok(runnable) = pool.queue.pop() {
            // More queued than this worker takes now: let a sleeping one help.
            if !pool.queue.is_empty() {
                pool.wake_worker();
            }
            runnable.run();
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
        while pool.queue.is_empty() {
            guard = pool.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            // Woken: the wake-up is answered even if a spinning caller took the task.
            pool.notified.store(false, Ordering::SeqCst);
        }
        pool.idle.fetch_sub(1, Ordering::SeqCst);
        pool.awake.fetch_add(1, Ordering::SeqCst);
    }
}

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
/// Returns true if a task came.
fn linger_for_work(pool: &Pool) -> bool {
    let mut wait = SpinWait::new(WORKER_LINGER);
    loop {
        if !pool.queue.is_empty() {
            return true;
        }
        if !wait.pause() {
            return false;
        }
    }
}

/// The rounds of a bounded wait on the CPU: [`SPIN_BEFORE_YIELD`] rounds of spinning, then
/// yielding the CPU each round, until `limit` has passed (the clock read every
/// [`CLOCK_EVERY`] rounds).
struct SpinWait {
    start: Instant,
    limit: Duration,
    round: u32,
}

impl SpinWait {
    fn new(limit: Duration) -> Self {
        Self {
            start: Instant::now(),
            limit,
            round: 0,
        }
    }

    /// Waits one round; false once the limit has passed (then it does not wait).
    fn pause(&mut self) -> bool {
        self.round = self.round.wrapping_add(1);
        if self.round & (CLOCK_EVERY - 1) == 0 && self.start.elapsed() >= self.limit {
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
    let mut fut = pin!(fut);
    // Most sends, and receives of a message already queued, complete at the first poll.
    let first = NOOP_WAKER.with(|waker| fut.as_mut().poll(&mut Context::from_waker(waker)));
    if let Poll::Ready(out) = first {
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
            let out = fut.as_mut().poll(&mut cx);
            pool.end_spin();
            if let Poll::Ready(out) = out {
                return out;
            }
            let readable = wake.sleep();
            pool.begin_spin();
            readable.into_iter().for_each(Waker::wake);
        }
    }
    match spin(fut.as_mut()) {
        Poll::Ready(out) => out,
        Poll::Pending => async_io::block_on(fut),
    }
}

/// Runs queued tasks, and polls `fut` each time it is woken, for up to [`SPIN`] in all;
/// pending if `fut` still is then.
fn spin<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    let pool = pool();
    let (wake, waker) = SPIN_WAKER.with(Clone::clone);
    wake.0.store(true, Ordering::Relaxed);
    let mut cx = Context::from_waker(&waker);
    let mut wait = SpinWait::new(SPIN);
    pool.begin_spin();
    let mut out = Poll::Pending;
    loop {
        if wake.0.swap(false, Ordering::AcqRel) {
            out = fut.as_mut().poll(&mut cx);
            if out.is_ready() {
                break;
            }
        }
        if pool.run_one() {
            continue;
        }
        if !wait.pause() {
            break;
        }
    }
    pool.end_spin();
    out
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

thread_local! {
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
