//! A stream pipe's future in a cell that either its own task or a receiving task polls.
//!
//! Why: on a work-stealing executor (tokio), a pipe's task and the application's task that
//! receives from it hand each batch to each other, and the executor often runs the two on
//! different worker threads, which then take the socket's lock from each other and wake each
//! other for every batch. A task that finds nothing to receive, on a socket with one pipe
//! whose task has been woken since it last ran (bytes came, or the application's receive
//! resumed the pipe) or whose peer streams, polls the pipe's reading side itself instead of
//! waiting for the pipe's task: the bytes are read and delivered on the receiving task, and
//! the pipe's task, when it runs, finds that work done. Writing stays with the pipe's task,
//! which batches what several senders queued. A tokio ipc 64 B receiver moved from
//! 2.37–2.51 to 2.99–3.12 M msg/s (BENCHMARKS.md).
//!
//! The pipe is always polled with its own task's waker ([`PipeWake`]), whoever polls it, so
//! that everything it waits for (bytes, room, a resume) wakes its own task, never a receiving
//! task that may have gone away. That waker also records that the pipe was woken: a
//! receiving task polls a pipe only then or while its peer streams, so a receive that waits
//! for the peer's next message (a request/reply exchange) costs no read that finds nothing.
//!
//! A receiving task's poll delivers one batch at most, and only on a socket whose core
//! pauses a full pipe (`Protocol::drops_when_full` is false): the pipe's task stops
//! delivering when a delivery wakes a receiver, and the task that polls is not among those.
//!
//! A receiving task that polls before it sleeps (`crate::busy_poll`, on every adapter) reads
//! the pipe here too, but through the connection's direct reader
//! ([`crate::rt::ConnInfo::direct_read`]), whether or not the pipe was woken: its runtime's
//! reactor has not seen the bytes yet when they come during the poll.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Wake, Waker};

use crate::pipe::{lock, set_waker, PipeEnd, StreamPipe};

/// A stream pipe, shared by its task and the tasks that receive from its socket.
#[derive(Default)]
pub(crate) struct PipeRunner {
    cell: Mutex<Cell>,
    wake: Arc<PipeWake>,
    streaming: AtomicBool,
    /// See [`PipeRunner::sends_bulk`].
    bulk: AtomicBool,
    /// The pipe runs in this cell ([`PipeRunner::run`]).
    in_use: AtomicBool,
    /// The pipe's task found the cell taken by a receiving task, which wakes it when done.
    task_waits: AtomicBool,
    /// The pipe can be read directly by a receiving task that polls before it sleeps
    /// ([`PipeRunner::set_reads_directly`]).
    reads_directly: AtomicBool,
}

#[derive(Default)]
struct Cell {
    /// The pipe, until it ends (boxed: a handle whose pipe runs as a plain task, or is not a
    /// stream, carries only the empty cell).
    pipe: Option<Box<StreamPipe>>,
    /// How the pipe ended, when a receiving task's poll ended it: its task detaches it.
    ended: Option<PipeEnd>,
}

/// The pipe's waker, whoever polls it: wakes the pipe's task and records that it was woken.
///
/// The task's waker stays registered across wake-ups (an `AtomicWaker` hands it out once):
/// a wake-up that a receiving task's poll answered leaves the task registered for the next.
#[derive(Default)]
struct PipeWake {
    task: Mutex<Option<Waker>>,
    woken: AtomicBool,
}

impl Wake for PipeWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(task) = &*lock(&self.task) {
            task.wake_by_ref();
        }
    }
}

impl PipeRunner {
    /// Runs `pipe` on the calling task until it ends, while receiving tasks may poll it too
    /// ([`PipeRunner::poll_for_receiver`]).
    pub(crate) async fn run(&self, pipe: StreamPipe) -> PipeEnd {
        lock(&self.cell).pipe = Some(Box::new(pipe));
        self.in_use.store(true, Ordering::Relaxed);
        // A task dropped before the pipe ended (its runtime shut down) drops the pipe, as it
        // would if it owned it: the connection closes, and no cycle through the handle stays.
        struct DropPipe<'a>(&'a PipeRunner);
        impl Drop for DropPipe<'_> {
            fn drop(&mut self) {
                let pipe = lock(&self.0.cell).pipe.take();
                drop(pipe);
            }
        }
        let _drop_pipe = DropPipe(self);
        let waker = Waker::from(self.wake.clone());
        std::future::poll_fn(|cx| {
            set_waker(&mut lock(&self.wake.task), cx.waker());
            self.wake.woken.store(false, Ordering::Relaxed);
            let mut pipe_cx = Context::from_waker(&waker);
            // A receiving task polls the pipe now: it wakes this task when it is done, rather
            // than this worker thread blocking on the lock meanwhile.
            self.task_waits.store(true, Ordering::SeqCst);
            let Some(mut cell) = self.try_cell() else {
                return Poll::Pending;
            };
            self.task_waits.store(false, Ordering::Relaxed);
            if let Some(end) = cell.ended.take() {
                return Poll::Ready(end);
            }
            cell.poll(&mut pipe_cx)
        })
        .await
    }

    /// The cell, unless another task holds it (a poisoned lock is taken as `lock` takes it).
    fn try_cell(&self) -> Option<MutexGuard<'_, Cell>> {
        match self.cell.try_lock() {
            Ok(cell) => Some(cell),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Whether the pipe has work for its task: it was woken since its task last ran, or its
    /// last read found the peer streaming (the next read will likely find bytes too).
    pub(crate) fn has_work(&self) -> bool {
        self.wake.woken.load(Ordering::Acquire) || self.streaming.load(Ordering::Relaxed)
    }

    /// Records whether the pipe's last read found its peer streaming (4 KiB or more), for
    /// [`PipeRunner::has_work`]; only where receiving tasks poll the pipe (the flag lives
    /// beside fields that other threads read).
    pub(crate) fn set_streaming(&self, streaming: bool) {
        if self.in_use.load(Ordering::Relaxed) {
            store_changed(&self.streaming, streaming);
        }
    }

    /// Records what the pipe's last read that found bytes found: 4 KiB or more (`bulk`), or
    /// less (see [`PipeRunner::sends_bulk`]); `filled`, it found as much as it asked for,
    /// and a small read so says nothing of the peer (a read of a large frame's length
    /// prefix alone asks for 8 bytes).
    pub(crate) fn read_found(&self, bulk: bool, filled: bool) {
        if self.in_use.load(Ordering::Relaxed) {
            store_changed(&self.streaming, bulk);
            if bulk || !filled {
                store_changed(&self.bulk, bulk);
            }
        }
    }

    /// Whether the peer sends in bulk: the pipe's last read that found bytes found 4 KiB or
    /// more. A receive that finds nothing on such a pipe does not poll before it waits: the
    /// peer fills the queue faster than the receiver drains it, and a receiver that read
    /// the connection as each piece arrived took the CPU from the sender and made more reads
    /// of fewer bytes (tokio, tcp 64 KiB throughput: 28,777–59,897 msg/s against
    /// 35,882–73,710 in five interleaved rounds).
    pub(crate) fn sends_bulk(&self) -> bool {
        self.bulk.load(Ordering::Relaxed)
    }

    /// Records that the pipe's connection can be read directly
    /// (`StreamPipe::with_direct_reader`): set before the pipe attaches, so that a receive
    /// that comes before the pipe's task first runs polls it too (and finds the cell empty
    /// until then).
    pub(crate) fn set_reads_directly(&self, reads_directly: bool) {
        self.reads_directly.store(reads_directly, Ordering::Relaxed);
    }

    /// Whether a receiving task may read the pipe's connection directly
    /// ([`PipeRunner::poll_for_receiver`]).
    pub(crate) fn reads_directly(&self) -> bool {
        self.reads_directly.load(Ordering::Relaxed)
    }

    /// Whether a receive that finds nothing may read the pipe's connection directly now: it
    /// can, and the peer does not send in bulk ([`PipeRunner::sends_bulk`]).
    pub(crate) fn may_read_directly(&self) -> bool {
        self.reads_directly() && !self.sends_bulk()
    }

    /// Polls the pipe's reading side on a receiving task, if it has work
    /// ([`PipeRunner::has_work`]) or the task reads `directly` (a busy poll, see
    /// [`PipeRunner::reads_directly`]), and no other task is polling it now. Returns whether
    /// it polled. Its task, which every wake-up of the pipe wakes too, does the rest.
    ///
    /// A direct read leaves the pipe's "woken" mark alone: it answers no wake-up, and the
    /// pipe's task runs for whatever woke it.
    pub(crate) fn poll_for_receiver(&self, directly: bool) -> bool {
        let directly = directly && self.reads_directly();
        if !directly && !self.has_work() {
            return false;
        }
        let Some(mut cell) = self.try_cell() else {
            return false;
        };
        let Some(pipe) = cell.pipe.as_mut() else {
            return false;
        };
        if !directly {
            self.wake.woken.store(false, Ordering::Relaxed);
        }
        let waker = Waker::from(self.wake.clone());
        let ended = match pipe.poll_read_for_receiver(&mut Context::from_waker(&waker), directly) {
            Poll::Ready(end) => {
                cell.pipe = None;
                cell.ended = Some(end);
                true
            }
            Poll::Pending => false,
        };
        drop(cell);
        // An ended pipe's task detaches it; a task that found the pipe taken runs again.
        if self.task_waits.swap(false, Ordering::SeqCst) || ended {
            self.wake.wake_by_ref();
        }
        true
    }
}

#[cfg(test)]
impl PipeRunner {
    /// Runs `f` while the cell is taken, as a receiving task's poll takes it.
    pub(crate) fn with_cell_taken<T>(&self, f: impl FnOnce() -> T) -> T {
        let _cell = lock(&self.cell);
        f()
    }
}

impl Cell {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<PipeEnd> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Poll::Pending;
        };
        let end = std::task::ready!(Pin::new(pipe).poll(cx));
        self.pipe = None;
        Poll::Ready(end)
    }
}

/// Stores `value` in `flag` unless it holds it already: a flag that other threads read
/// stays in their caches while it does not change.
fn store_changed(flag: &AtomicBool, value: bool) {
    if flag.load(Ordering::Relaxed) != value {
        flag.store(value, Ordering::Relaxed);
    }
}
