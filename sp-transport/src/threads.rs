//! Pipes on threads, for runtimes without an event loop (sp-blocking).
//!
//! A thread-based runtime runs each driver task (timer, dialer, listener, accepted connection)
//! on a thread of its own, blocking it with [`park`] between polls. Its connections reach the
//! driver as [`ThreadedStream`]s. Those are never polled for data: once the handshake is done,
//! the driver runs the pipe here, with the same framing (`Inbound`, `Outbound`), the same
//! `PipeHandle` queue and the same `PipeOwner` calls as the async pipe task.
//!
//! ```text
//!  send (caller) ─▶ core ─▶ PipeHandle queue ─▶ non-blocking write on the caller's thread
//!                                     └─ the rest ─▶ writer thread: blocking vectored writes
//!  reader thread: blocking read ─▶ decode ─▶ deliver ─▶ core ─▶ wake a parked recv
//!  recv (caller) on a socket with one pipe: reads that pipe itself, then delivers the same way
//! ```
//!
//! A pipe has two threads: the task's thread, which becomes the *writer*, and a *reader*. The
//! two hand-offs a thread design would add to every message are avoided on the hot path:
//!
//! * **Direct writes.** A thread that drives the core inside [`with_direct_writes`] writes
//!   what the core queued itself, without blocking, once it leaves the socket's lock. What the
//!   kernel does not take at once goes to the writer thread, and so do the frames of a caller
//!   that streams (sends again within `STREAM_GAP` with nothing received on the pipe
//!   meanwhile): the writer batches those into few vectored writes, as the async pipe does.
//! * **Direct reads.** A caller blocked in [`Socket::recv_blocking`](crate::Socket) on a socket
//!   with a single threaded pipe reads that pipe's connection itself, for up to
//!   `DIRECT_READ_WINDOW`; if nothing comes in that time it parks and the reader thread reads.
//!   The reader thread leaves the connection to callers for `DIRECT_READ_GRACE` after each
//!   of their reads, and after its own next message when a caller found it reading; otherwise
//!   it reads, so that frames and the end of the connection are noticed while the application
//!   is away. A second pipe ends direct reads: a caller reading one pipe would not notice
//!   messages on another (for at most the window).
//!
//! Blocking IO is unblocked on close: closing the pipe's handle shuts the connection down.

use std::any::Any;
use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};

use crate::pipe::{
    lock, write_zero, Inbound, Outbound, PipeEnd, PipeHandle, PipeOwner, StreamPipe,
};
use crate::rt::{BoxStream, ByteStream};

/// The longest a caller's own read of a pipe blocks before it re-checks the socket (a second
/// pipe may have attached) and lets the pipe's reader thread take over.
const DIRECT_READ_WINDOW: Duration = Duration::from_millis(10);
/// How long the reader thread leaves a connection to callers after one of them read it.
const DIRECT_READ_GRACE: Duration = Duration::from_millis(2);
/// A sender that sends again this soon, with nothing received on the pipe meanwhile, is
/// streaming: its frames go to the writer thread, which batches them into fewer writes.
const STREAM_GAP: Duration = Duration::from_micros(50);
/// Handshake reads wake this often, so that the handshake deadline and a closing endpoint are
/// noticed.
const HANDSHAKE_READ_SLICE: Duration = Duration::from_millis(20);

/// Blocking operations on one connected stream, provided by a thread-based adapter.
///
/// Every method takes `&self`: a pipe's reader, its writer and callers use the stream at once.
pub trait ThreadIo: Send + Sync + 'static {
    /// Reads into `buf`, blocking until bytes arrive, the stream ends, the read timeout
    /// passes (`WouldBlock` or `TimedOut`) or [`ThreadIo::shutdown`] is called.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes from `bufs`, blocking until the kernel takes at least one byte.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Writes what the kernel takes right now, never blocking (`WouldBlock` if nothing).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Sets how long later reads block (`None`: no limit). Never called with zero.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Shuts both directions down, waking every blocked read and write. Idempotent.
    fn shutdown(&self);
}

/// A connection from a thread-based runtime, as a [`ByteStream`].
///
/// The driver polls it only for the SP handshake, through blocking calls (reads wake every
/// `HANDSHAKE_READ_SLICE` to let the handshake's timer be checked); it then runs the pipe on
/// threads. Only a runtime that runs each task on its own thread may return these.
pub struct ThreadedStream {
    io: Arc<dyn ThreadIo>,
}

impl std::fmt::Debug for ThreadedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedStream").finish_non_exhaustive()
    }
}

impl ThreadedStream {
    /// Wraps a connected stream.
    ///
    /// # Errors
    /// Setting the stream's read timeout failed.
    pub fn new(io: Arc<dyn ThreadIo>) -> io::Result<Self> {
        io.set_read_timeout(Some(HANDSHAKE_READ_SLICE))?;
        Ok(Self { io })
    }

    /// Returns the blocking IO behind `stream` if it is a `ThreadedStream`.
    pub(crate) fn io_of(stream: &mut BoxStream) -> Option<Arc<dyn ThreadIo>> {
        let any: &mut dyn Any = ByteStream::as_any_mut(&mut **stream);
        any.downcast_mut::<ThreadedStream>().map(|s| s.io.clone())
    }
}

impl AsyncRead for ThreadedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.io.read(buf) {
            Err(e) if is_timeout(&e) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            r => Poll::Ready(r),
        }
    }
}

/// `AsyncWrite` for a stream with an `io: Arc<dyn ThreadIo>` field: every write blocks the
/// calling thread until the kernel takes at least one byte, which is what a thread-run task
/// wants; close shuts the connection down.
macro_rules! blocking_async_write {
    ($ty:ty) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                Poll::Ready(self.io.write_vectored(&[IoSlice::new(buf)]))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                _cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                Poll::Ready(self.io.write_vectored(bufs))
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.io.shutdown();
                Poll::Ready(Ok(()))
            }
        }
    };
}

blocking_async_write!(ThreadedStream);

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

// ---------------------------------------------------------------------------------------------
// Parking

/// A thread's wake-up flag: its [`Waker`] sets the flag and unparks the thread.
struct Notify {
    thread: Thread,
    notified: AtomicBool,
    /// Called by a wake-up while the thread blocks in a call only that call's own means can
    /// end (see [`interruptible`]).
    interrupt: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    has_interrupt: AtomicBool,
}

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
        self.thread.unpark();
        if self.has_interrupt.load(Ordering::SeqCst) {
            let interrupt = lock(&self.interrupt).clone();
            if let Some(f) = interrupt {
                f();
            }
        }
    }
}

thread_local! {
    static NOTIFY: Arc<Notify> = Arc::new(Notify {
        thread: thread::current(),
        notified: AtomicBool::new(false),
        interrupt: Mutex::new(None),
        has_interrupt: AtomicBool::new(false),
    });
    static WAKER: Waker = NOTIFY.with(|n| Waker::from(n.clone()));
}

/// Returns the calling thread's waker: waking it ends the thread's current or next [`park`].
pub fn waker() -> Waker {
    WAKER.with(Waker::clone)
}

/// Blocks the calling thread until its [`waker`] is woken (possibly before this call) or
/// `deadline` passes. May return early; callers re-check what they wait for.
pub fn park(deadline: Option<Instant>) {
    NOTIFY.with(|n| {
        if n.notified.swap(false, Ordering::SeqCst) {
            return;
        }
        match deadline {
            None => thread::park(),
            Some(d) => {
                let now = Instant::now();
                if d > now {
                    thread::park_timeout(d - now);
                }
            }
        }
        n.notified.store(false, Ordering::SeqCst);
    });
}

/// Runs the blocking call `f`, which `interrupt` makes return, so that waking the calling
/// thread meanwhile (for example an endpoint closing while its thread blocks in `accept`)
/// also ends `f`. Returns `None`, dropping what `f` returned, if the thread was woken before or
/// during `f`; the wake-up stays pending for the next [`park`].
pub fn interruptible<T>(
    interrupt: Arc<dyn Fn() + Send + Sync>,
    f: impl FnOnce() -> T,
) -> Option<T> {
    NOTIFY.with(|n| {
        *lock(&n.interrupt) = Some(interrupt);
        n.has_interrupt.store(true, Ordering::SeqCst);
        let out = if n.notified.load(Ordering::SeqCst) {
            None
        } else {
            Some(f())
        };
        n.has_interrupt.store(false, Ordering::SeqCst);
        lock(&n.interrupt).take();
        out.filter(|_| !n.notified.load(Ordering::SeqCst))
    })
}

// ---------------------------------------------------------------------------------------------
// Direct writes

thread_local! {
    /// Pipes the calling thread queued frames on, to write once it leaves the socket's lock;
    /// `None` outside [`with_direct_writes`].
    static DEFERRED: RefCell<Option<Vec<Arc<PipeHandle>>>> = const { RefCell::new(None) };
}

/// Runs `f`, then writes whatever it queued on threaded pipes from the calling thread,
/// without blocking; the pipes' writer threads take over what the kernel does not accept.
///
/// Thread-based adapters wrap every call that drives a socket's core in this. Outside it,
/// queued frames wake the pipe's writer thread instead. Nested calls write at the outermost.
pub fn with_direct_writes<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DEFERRED.with(|d| *d.borrow_mut() = None);
        }
    }
    let outermost = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        d.is_none().then(|| *d = Some(Vec::new())).is_some()
    });
    if !outermost {
        return f();
    }
    let reset = Reset;
    let out = f();
    flush_deferred();
    drop(reset);
    out
}

/// Writes out the pipes deferred so far, including those their writing defers in turn.
fn flush_deferred() {
    loop {
        let batch = DEFERRED.with(|d| d.borrow_mut().as_mut().map(std::mem::take));
        let Some(batch) = batch.filter(|b| !b.is_empty()) else {
            return;
        };
        for handle in batch {
            if let Some(pipe) = handle.threads.get() {
                pipe.flush(&handle);
            }
        }
    }
}

/// Runs `f` with direct writes off (pending ones written first): for a thread that is about to
/// block for long, such as a pipe's writer.
fn without_direct_writes<T>(f: impl FnOnce() -> T) -> T {
    flush_deferred();
    let saved = DEFERRED.with(|d| d.borrow_mut().take());
    let out = f();
    DEFERRED.with(|d| *d.borrow_mut() = saved);
    out
}

/// A threaded pipe's queue consumer: defers to the waking thread's direct writes when it has
/// them on, and wakes the writer thread otherwise.
struct WriterWake {
    handle: Weak<PipeHandle>,
    writer: Waker,
}

impl Wake for WriterWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Called with the pipe's queue locked: only note the pipe here.
        let deferred = DEFERRED
            .try_with(|d| match (d.try_borrow_mut(), self.handle.upgrade()) {
                (Ok(mut d), Some(handle)) => d.as_mut().map(|list| list.push(handle)).is_some(),
                _ => false,
            })
            .unwrap_or(false);
        if !deferred {
            self.writer.wake_by_ref();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The pipe

/// The thread-run half of one pipe, shared by its writer thread, its reader thread and callers.
pub(crate) struct ThreadPipe {
    owner: Arc<dyn PipeOwner>,
    io: Arc<dyn ThreadIo>,
    /// Encoded frames not yet written; whoever holds the lock writes.
    out: Mutex<WriteTurn>,
    /// The decoder; whoever holds the lock reads the connection.
    read: Mutex<ReadTurn>,
    /// A caller found the reader thread reading: leave the next read to callers.
    wanted: AtomicBool,
    /// Frames arrived since the last direct write (the peer answers: not a stream).
    received: AtomicBool,
    writer: Waker,
    writer_wake: Waker,
    reader: OnceLock<Waker>,
    /// Why the pipe ended, first reason wins.
    end: Mutex<Option<PipeEnd>>,
}

struct WriteTurn {
    outbound: Outbound,
    /// When a caller last had frames to write.
    last_send: Option<Instant>,
}

struct ReadTurn {
    inbound: Inbound,
    /// The read timeout the stream has now.
    timeout: Option<Duration>,
    /// The reader thread stays away until then (a caller read recently).
    quiet_until: Option<Instant>,
    /// The pipe has ended: nobody reads any more.
    done: bool,
}

impl ReadTurn {
    fn set_timeout(&mut self, io: &dyn ThreadIo, timeout: Option<Duration>) -> io::Result<()> {
        if self.timeout != timeout {
            io.set_read_timeout(timeout)?;
            self.timeout = timeout;
        }
        Ok(())
    }

    /// Reads once, blocking, and delivers what became whole. `Ok(false)`: nothing came in time.
    fn read_and_deliver(
        &mut self,
        pipe: &ThreadPipe,
        handle: &PipeHandle,
    ) -> Result<bool, PipeEnd> {
        match self.inbound.fill(|buf| Poll::Ready(pipe.io.read(buf))) {
            Poll::Ready(Ok(0)) => Err(PipeEnd::PeerClosed),
            Poll::Ready(Ok(_)) => {
                if !handle.is_ending() {
                    pipe.deliver(&mut self.inbound, handle)?;
                }
                Ok(true)
            }
            Poll::Ready(Err(e)) if is_timeout(&e) => Ok(false),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Poll::Ready(Err(e)) => Err(PipeEnd::Io(e)),
            Poll::Pending => Ok(true),
        }
    }
}

/// Runs `pipe`, whose stream is the threaded stream `io`, until it ends: the calling thread
/// writes, a new thread reads. Returns why it ended, once no thread reads or writes any more.
pub(crate) fn run_pipe(pipe: StreamPipe, io: Arc<dyn ThreadIo>) -> PipeEnd {
    without_direct_writes(|| {
        let StreamPipe {
            owner,
            handle,
            inbound,
            outbound,
            ..
        } = pipe;
        let writer = waker();
        let tp = Arc::new(ThreadPipe {
            owner,
            io,
            out: Mutex::new(WriteTurn {
                outbound,
                last_send: None,
            }),
            read: Mutex::new(ReadTurn {
                inbound,
                timeout: Some(HANDSHAKE_READ_SLICE),
                quiet_until: None,
                done: false,
            }),
            wanted: AtomicBool::new(false),
            received: AtomicBool::new(false),
            writer_wake: Waker::from(Arc::new(WriterWake {
                handle: Arc::downgrade(&handle),
                writer: writer.clone(),
            })),
            writer,
            reader: OnceLock::new(),
            end: Mutex::new(None),
        });
        if handle.threads.set(tp.clone()).is_err() {
            unreachable!("a pipe handle is run once");
        }
        let reader = {
            let (tp, handle) = (tp.clone(), handle.clone());
            thread::Builder::new()
                .name("sp-pipe-reader".into())
                .spawn(move || tp.run_reader(&handle))
        };
        let reader = match reader {
            Ok(r) => Some(r),
            Err(e) => {
                tp.set_end(PipeEnd::Io(e));
                None
            }
        };
        let end = if reader.is_some() {
            tp.run_writer(&handle)
        } else {
            PipeEnd::Local
        };
        tp.set_end(end);
        // Shuts the connection down, which ends the reader's and any caller's blocking read.
        handle.close();
        if let Some(r) = reader {
            let _ = r.join();
        }
        lock(&tp.read).done = true;
        let end = lock(&tp.end).take();
        end.unwrap_or(PipeEnd::Local)
    })
}

/// How a pipe ended, seen from one of its threads: once our side closed the pipe, the
/// interrupted IO (an EOF, a broken pipe) is the consequence of that close, not the peer's.
fn end_of(handle: &PipeHandle, end: PipeEnd) -> PipeEnd {
    match end {
        PipeEnd::PeerClosed | PipeEnd::Io(_) if handle.is_closed() => PipeEnd::Local,
        end => end,
    }
}

impl ThreadPipe {
    fn set_end(&self, end: PipeEnd) {
        lock(&self.end).get_or_insert(end);
    }

    /// Feeds buffered frames to the core (see `Inbound::deliver`), writing directly whatever
    /// that queues.
    fn deliver(&self, inbound: &mut Inbound, handle: &PipeHandle) -> Result<Option<bool>, PipeEnd> {
        let delivered = with_direct_writes(|| inbound.deliver(&*self.owner, handle))?;
        if delivered.is_some() {
            self.received.store(true, Ordering::Relaxed);
        }
        Ok(delivered)
    }

    /// Unblocks every thread that reads, writes or waits for this pipe (it is closing).
    pub(crate) fn interrupt(&self) {
        self.io.shutdown();
        self.writer.wake_by_ref();
        if let Some(r) = self.reader.get() {
            r.wake_by_ref();
        }
    }

    /// The writer thread: takes queued frames and writes them, blocking, until the pipe closes
    /// or has drained.
    fn run_writer(&self, handle: &PipeHandle) -> PipeEnd {
        loop {
            if handle.is_closed() {
                return PipeEnd::Local;
            }
            let mut turn = lock(&self.out);
            let out = &mut turn.outbound;
            if out.is_empty() {
                let outcome = out.take(handle, &self.writer_wake);
                if outcome.was_blocked {
                    with_direct_writes(|| self.owner.pipe_writable(handle.id));
                }
                if out.is_empty() {
                    drop(turn);
                    // Not `is_draining`: the sender may have queued more since `take` found
                    // the queue empty, and then closed the socket.
                    if handle.is_drained() {
                        return PipeEnd::Local;
                    }
                    if !handle.is_draining() {
                        park(None);
                    }
                    continue;
                }
            }
            match out.write_with(|iov| Poll::Ready(self.io.write_vectored(iov))) {
                Poll::Ready(Ok(0)) => return write_zero(),
                Poll::Ready(Err(e)) if e.kind() != io::ErrorKind::Interrupted => {
                    return end_of(handle, PipeEnd::Io(e))
                }
                _ => {}
            }
        }
    }

    /// Writes what `handle` has queued from the calling thread, without blocking, unless the
    /// writer thread is writing or the caller is streaming; wakes the writer thread for
    /// whatever is left.
    fn flush(&self, handle: &PipeHandle) {
        let mut written = false;
        if let Ok(mut turn) = self.out.try_lock() {
            if !self.is_streaming(&mut turn) {
                written = self.write_without_blocking(&mut turn.outbound, handle);
            }
        }
        if !written || handle.is_ending() {
            self.writer.wake_by_ref();
        }
    }

    /// Notes a caller's send; returns true if it follows the previous one within `STREAM_GAP`
    /// with nothing received in between.
    fn is_streaming(&self, turn: &mut WriteTurn) -> bool {
        let now = Instant::now();
        let previous = turn.last_send.replace(now);
        let answered = self.received.swap(false, Ordering::Relaxed);
        !answered && previous.is_some_and(|t| now - t < STREAM_GAP)
    }

    /// Writes what is queued while the kernel takes it at once. Returns true once everything
    /// is written; false leaves the rest (or a failure to report) to the writer thread.
    fn write_without_blocking(&self, out: &mut Outbound, handle: &PipeHandle) -> bool {
        loop {
            if out.is_empty() {
                let outcome = out.take(handle, &self.writer_wake);
                if outcome.was_blocked {
                    self.owner.pipe_writable(handle.id);
                }
                if out.is_empty() {
                    return true;
                }
            }
            match out.write_with(|iov| Poll::Ready(self.io.try_write_vectored(iov))) {
                Poll::Ready(Ok(n)) if n > 0 => {}
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return false,
            }
        }
    }

    /// The reader thread: reads and delivers while no caller does, until the pipe ends.
    fn run_reader(&self, handle: &PipeHandle) {
        let me = waker();
        let _ = self.reader.set(me.clone());
        let end = loop {
            if handle.is_ending() {
                break None;
            }
            if !handle.poll_resumed(&me) {
                park(None);
                continue;
            }
            let mut turn = lock(&self.read);
            if turn.done {
                break None;
            }
            if let Some(until) = turn.quiet_until {
                if Instant::now() < until {
                    drop(turn);
                    park(Some(until));
                    continue;
                }
                turn.quiet_until = None;
            }
            match self.deliver(&mut turn.inbound, handle) {
                Ok(Some(_)) => {
                    if self.wanted.swap(false, Ordering::AcqRel) {
                        turn.quiet_until = Some(Instant::now() + DIRECT_READ_GRACE);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(end) => break Some(end),
            }
            if let Err(e) = turn.set_timeout(&*self.io, None) {
                break Some(PipeEnd::Io(e));
            }
            if let Err(end) = turn.read_and_deliver(self, handle) {
                break Some(end);
            }
            if self.wanted.swap(false, Ordering::AcqRel) {
                turn.quiet_until = Some(Instant::now() + DIRECT_READ_GRACE);
            }
        };
        if let Some(end) = end {
            self.set_end(end_of(handle, end));
            handle.close();
        }
    }

    /// Reads the connection on the calling thread, for a caller waiting to receive, until
    /// `deadline` or for at most `DIRECT_READ_WINDOW`.
    fn read_directly(&self, handle: &PipeHandle, deadline: Option<Instant>) -> DirectRead {
        if !handle.may_deliver() {
            return DirectRead::Unavailable;
        }
        let Ok(mut turn) = self.read.try_lock() else {
            self.wanted.store(true, Ordering::Release);
            return DirectRead::Unavailable;
        };
        if turn.done {
            return DirectRead::Unavailable;
        }
        let window = deadline.map_or(DIRECT_READ_WINDOW, |d| {
            d.saturating_duration_since(Instant::now())
                .min(DIRECT_READ_WINDOW)
        });
        if window.is_zero() {
            return DirectRead::Idle;
        }
        let result = match self.deliver(&mut turn.inbound, handle) {
            Ok(Some(_)) => Ok(true),
            Ok(None) => turn
                .set_timeout(&*self.io, Some(window))
                .map_err(PipeEnd::Io)
                .and_then(|()| turn.read_and_deliver(self, handle)),
            Err(end) => Err(end),
        };
        match result {
            Ok(true) => {
                turn.quiet_until = Some(Instant::now() + DIRECT_READ_GRACE);
                DirectRead::Read
            }
            Ok(false) => {
                // Nothing came: the reader thread watches the connection meanwhile.
                turn.quiet_until = None;
                drop(turn);
                if let Some(r) = self.reader.get() {
                    r.wake_by_ref();
                }
                DirectRead::Idle
            }
            Err(end) => {
                drop(turn);
                self.set_end(end);
                handle.close();
                DirectRead::Read
            }
        }
    }
}

/// What a caller's own read of a pipe did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DirectRead {
    /// The pipe cannot deliver now, or another thread reads it: nothing was done.
    Unavailable,
    /// Bytes (or the end of the connection) came in: check the socket again.
    Read,
    /// Nothing came within the window or before the deadline; the pipe's reader thread reads
    /// from now on, and the caller should wait for it rather than read again.
    Idle,
}

/// Lets a caller waiting to receive read `handle`'s connection itself (see
/// [`ThreadPipe::read_directly`]).
pub(crate) fn read_directly(handle: &PipeHandle, deadline: Option<Instant>) -> DirectRead {
    handle
        .threads
        .get()
        .map_or(DirectRead::Unavailable, |pipe| {
            pipe.read_directly(handle, deadline)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_returns_at_the_deadline_or_when_woken() {
        let start = Instant::now();
        park(Some(start + Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));

        // A wake-up before parking is kept for the next park.
        waker().wake_by_ref();
        let start = Instant::now();
        park(None);
        assert!(start.elapsed() < Duration::from_secs(1));

        let w = waker();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            w.wake();
        });
        park(None);
        t.join().unwrap();
    }

    #[test]
    fn interruptible_calls_the_interrupt_when_woken_and_reports_it() {
        use std::sync::mpsc;
        let (tx, rx) = mpsc::channel::<()>();
        let tx = Mutex::new(Some(tx));
        let interrupt: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            lock(&tx).take();
        });
        let w = waker();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            w.wake();
        });
        // The blocking call ends only through the interrupt (the sender is dropped).
        assert_eq!(
            interruptible(interrupt.clone(), || rx.recv().is_err()),
            None
        );
        t.join().unwrap();
        // The wake-up is still pending: a second call does not block at all.
        assert_eq!(interruptible(interrupt, || unreachable!()), None::<()>);
        park(None);
        assert_eq!(interruptible(Arc::new(|| {}), || 7), Some(7));
    }

    #[test]
    fn direct_writes_nest_and_reset() {
        let inner = with_direct_writes(|| {
            assert!(DEFERRED.with(|d| d.borrow().is_some()));
            with_direct_writes(|| DEFERRED.with(|d| d.borrow().is_some()))
        });
        assert!(inner);
        assert!(DEFERRED.with(|d| d.borrow().is_none()));
        let _ = std::panic::catch_unwind(|| with_direct_writes(|| panic!("body fails")));
        assert!(
            DEFERRED.with(|d| d.borrow().is_none()),
            "reset after a panic"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Streams that other layers wrap (TLS, WebSocket)

/// Turns a [`ThreadedStream`] into a stream that can be polled like an async one, for layers
/// that wrap the connection (TLS, WebSocket) and so cannot hand it to [`run_pipe`]. Any other
/// stream is returned unchanged.
///
/// A reader thread does the blocking reads into a bounded buffer and wakes the poller, so a
/// task polling the stream never blocks in a read and writes what is queued at once. Writes
/// block in the caller, as the kernel's buffer allows.
pub(crate) fn into_pollable(mut stream: BoxStream) -> BoxStream {
    let Some(io) = ThreadedStream::io_of(&mut stream) else {
        return stream;
    };
    drop(stream);
    let shared = Arc::new(ReadAhead::default());
    let (io2, shared2) = (io.clone(), shared.clone());
    let spawned = thread::Builder::new()
        .name("sp-blocking-read".into())
        .spawn(move || read_ahead(&*io2, &shared2));
    if let Err(e) = spawned {
        shared.finish(Err(e));
    }
    Box::new(PollableStream { io, shared })
}

/// How much the reader thread reads ahead of the poller before it waits.
const READ_AHEAD_MAX: usize = 1 << 20;

#[derive(Default)]
struct ReadAhead {
    state: Mutex<ReadAheadState>,
    room: std::sync::Condvar,
}

#[derive(Default)]
struct ReadAheadState {
    buf: std::collections::VecDeque<u8>,
    end: Option<io::Result<()>>,
    waker: Option<Waker>,
    closed: bool,
}

impl ReadAhead {
    fn finish(&self, end: io::Result<()>) {
        let mut st = lock(&self.state);
        st.end.get_or_insert(end);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

fn read_ahead(io: &dyn ThreadIo, shared: &ReadAhead) {
    let end = (|| {
        io.set_read_timeout(None)?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match io.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut st = lock(&shared.state);
            while st.buf.len() >= READ_AHEAD_MAX && !st.closed {
                st = shared.room.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.closed {
                return Ok(());
            }
            st.buf.extend(&chunk[..n]);
            if let Some(w) = st.waker.take() {
                w.wake();
            }
        }
    })();
    shared.finish(end);
}

/// See [`into_pollable`].
struct PollableStream {
    io: Arc<dyn ThreadIo>,
    shared: Arc<ReadAhead>,
}

impl Drop for PollableStream {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.room.notify_all();
        self.io.shutdown();
    }
}

impl AsyncRead for PollableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut st = lock(&self.shared.state);
        if !st.buf.is_empty() {
            let n = buf.len().min(st.buf.len());
            for (dst, src) in buf.iter_mut().zip(st.buf.drain(..n)) {
                *dst = src;
            }
            self.shared.room.notify_one();
            return Poll::Ready(Ok(n));
        }
        match st.end.take() {
            Some(Ok(())) => {
                st.end = Some(Ok(()));
                Poll::Ready(Ok(0))
            }
            Some(Err(e)) => {
                st.end = Some(Ok(()));
                Poll::Ready(Err(e))
            }
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

blocking_async_write!(PollableStream);
