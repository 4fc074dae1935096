//! The pool's executor, and how a blocking call runs and waits on the caller's thread.
//!
//! Every driver task (pipes, timers, dialers, listeners) runs on one async-executor that the
//! workers run. A blocking call polls its work on the caller's thread; most sends, and
//! receives of a message already queued, complete there at once, and what they woke (the
//! writer of the message a `send` queued) is left to the executor, so that a loop of sends
//! lets a worker write in batches while the caller goes on.
//!
//! A call that must wait first runs the executor's ready tasks itself (the writer of the
//! request whose reply it now waits for, if no worker took it yet). Then, on Linux, if at
//! most [`DIRECT_MAX`](crate::direct::DIRECT_MAX) connections have a reader waiting for bytes,
//! it sleeps in `poll(2)` on them and on its thread's eventfd (see `crate::direct`): the
//! kernel wakes the caller itself when the reply arrives, and the caller reads it, one
//! wake-up instead of two (the reactor's thread, then the caller). Otherwise (inproc pipes,
//! many pipes, other platforms) it waits as one of the executor's runners, in async-io's
//! `block_on`.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use async_executor::Executor;

/// The one executor of every sp-blocking socket in the process.
static EXECUTOR: Executor<'static> = Executor::new();

/// How many ready tasks a blocking call runs before it polls its own work again.
#[cfg(target_os = "linux")]
const RUN_BATCH: usize = 64;

/// Spawns `fut` on the pool.
pub(crate) fn spawn(fut: impl Future<Output = ()> + Send + 'static) {
    EXECUTOR.spawn(fut).detach();
}

/// A worker thread's loop: runs the executor's tasks. Never returns.
pub(crate) fn worker() {
    futures_lite::future::block_on(EXECUTOR.run(std::future::pending::<()>()))
}

/// Runs up to [`RUN_BATCH`] ready tasks on this thread; returns whether more may be ready.
#[cfg(target_os = "linux")]
fn run_ready() -> bool {
    for _ in 0..RUN_BATCH {
        if !EXECUTOR.try_tick() {
            return false;
        }
    }
    true
}

/// Runs `fut` to completion on the calling thread (see the module docs).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    // Most sends, and receives of a message already queued, complete at the first poll.
    if let Poll::Ready(out) = fut.as_mut().poll(&mut Context::from_waker(&noop_waker())) {
        return out;
    }
    // With connections to watch, the caller waits on them itself; with none (inproc, or too
    // many pipes), it waits as one of the executor's runners, which other threads' wakes
    // reach directly.
    #[cfg(target_os = "linux")]
    if let Some(wake) = crate::direct::caller_wake().filter(|_| crate::direct::watchable()) {
        let waker = Waker::from(wake.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            wake.begin_poll();
            if run_ready() {
                waker.wake_by_ref();
            }
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            wake.sleep();
        }
    }
    async_io::block_on(EXECUTOR.run(fut))
}

/// A waker that does nothing, for the first poll of [`block_on`]: a future still pending then
/// is polled again at once with the real waker.
fn noop_waker() -> Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: OnceLock<Waker> = OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop))).clone()
}
