//! Waiting on the connections themselves: how a blocking call that waits for a peer wakes up
//! as soon as the kernel has the peer's bytes, with no other thread in between (Linux).
//!
//! async-io's reactor runs on its own thread and watches every connection. A caller that only
//! slept until that thread woke it would pay two wake-ups per message: the kernel wakes the
//! reactor thread, which wakes the caller. So a caller that must wait also watches, with
//! `poll(2)` on its own thread, the connections whose readers are parked (a pipe task that
//! found nothing to read), besides an eventfd that its waker writes to; first without
//! sleeping, for a few microseconds (see [`busy_poll`]), then asleep. When one of them
//! becomes readable, the caller wakes that reader itself and runs the ready tasks (see
//! `crate::pool`), so the reader reads on the caller's thread. The reactor sees the same
//! readiness; while a caller watches the connection, the reactor's wake-up only marks it for
//! that caller (see `ReactorWake`), so that no worker takes the reader from the caller.
//!
//! A caller watches at most [`DIRECT_MAX`] parked readers; with more (a socket with many
//! pipes), it sleeps on its eventfd alone and is woken through the reactor thread, as a
//! caller on other platforms always is.
//!
//! One caller watches a connection at a time; the others wait on their eventfd for whatever
//! the bytes it reads are for. Every waiting caller watched every parked reader before, and
//! the bytes of each reply woke them all: a hundred threads waiting on the contexts of one
//! connection made 1,470,000 context switches in 100,000 round trips (265,000 since).

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};
use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};

/// The most parked readers a waiting caller watches itself.
pub(crate) const DIRECT_MAX: usize = 16;

/// A connection as a waiting caller sees it: its file descriptor, borrowed from the stream
/// that the caller keeps alive while it polls.
trait Watchable: Send + Sync {
    fn fd(&self) -> BorrowedFd<'_>;
}

impl<T: AsFd + Send + Sync> Watchable for Async<T> {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// The waker of a reader that found nothing to read, and whether it is in the registry.
#[derive(Default)]
struct Parked {
    waker: Option<Waker>,
    listed: bool,
    /// The caller whose `poll(2)` holds the stream now, the only one (see the module docs): a
    /// stream dropped meanwhile wakes it, so that it lets go and the connection closes at
    /// once.
    watcher: Option<Weak<CallerWake>>,
    /// The reactor found the connection readable while a caller watched it: that caller
    /// wakes the reader as it stops watching (see [`ReactorWake`]).
    deferred: bool,
    /// A caller's `poll(2)` found the connection readable (or the reactor did while it
    /// watched): the reader's next poll reads, whatever the reactor's own record says.
    readable: bool,
}

struct Slot {
    io: Weak<dyn Watchable>,
    parked: Mutex<Parked>,
}

/// The parked readers of the process, and how many there are.
struct Registry {
    slots: Mutex<Vec<Arc<Slot>>>,
    /// `slots.len()`, written under its lock, read without it: every blocking call that
    /// waits reads it (see [`watchable`]), and two threads in an inproc ping-pong taking
    /// that lock in turn cost each other a cache miss per message.
    len: AtomicUsize,
}

impl Registry {
    /// Changes the list under its lock, then publishes its length.
    fn update<R>(&self, f: impl FnOnce(&mut Vec<Arc<Slot>>) -> R) -> R {
        let mut slots = lock(&self.slots);
        let out = f(&mut slots);
        self.len.store(slots.len(), Ordering::Release);
        out
    }
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        slots: Mutex::new(Vec::new()),
        len: AtomicUsize::new(0),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many reads in a row must find nothing before a reader waits for a readiness report
/// instead of reading.
///
/// A sending pipe, whose peer sends nothing, finds nothing every time. A receiver that caught
/// up with its peer finds nothing a few times between two of the peer's writes (its task is
/// polled again whenever its socket's receive queue has room), and the next bytes are usually
/// there before the reactor has reported them. Waiting for the report after two empty reads
/// cost the blocking 1400 B throughput receiver a wake-up through the reactor's thread for
/// most of its reads: 95,000 context switches against 9,000 for 500,000 messages, and half
/// the throughput. After 16, it reads as before.
const IDLE_AFTER_EMPTY_READS: u8 = 16;

/// A connection (TCP or Unix stream) whose reader a waiting caller can watch.
pub(crate) struct Watched<T> {
    io: Arc<Async<T>>,
    slot: Arc<Slot>,
    /// What the reactor wakes when the connection becomes readable: a [`ReactorWake`].
    reactor_waker: Waker,
    /// How many reads in a row found nothing (see [`Watched::poll_read`]).
    empty_reads: u8,
}

/// The waker a parked reader leaves with async-io's reactor. While a caller watches the
/// connection, the caller sees the same readiness in its `poll(2)` and wakes the reader
/// itself, on its own thread; the reactor's wake-up then only marks the slot, for that caller
/// to act on when it stops watching, so that nothing is lost.
///
/// Why: both woke the reader before, and the reactor's wake-up, queued for the pool, was often
/// taken by a worker, which read the bytes and woke the caller again: two threads taking
/// turns on each message. A blocking receiver of 64 KiB messages over TCP ran at about 48,000
/// msg/s when that happened and 88,000 when the caller read alone.
struct ReactorWake(Arc<Slot>);

impl Wake for ReactorWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let reader = {
            let mut p = lock(&self.0.parked);
            if p.watcher.as_ref().is_some_and(|w| !is_gone(w)) {
                p.deferred = true;
                None
            } else {
                p.waker.clone()
            }
        };
        if let Some(w) = reader {
            w.wake();
        }
    }
}

impl<T: AsFd + Send + Sync + 'static> Watched<T> {
    pub(crate) fn new(io: Async<T>) -> Self {
        let io = Arc::new(io);
        let weak: Weak<dyn Watchable> = Arc::downgrade(&io) as Weak<dyn Watchable>;
        let slot = Arc::new(Slot {
            io: weak,
            parked: Mutex::new(Parked::default()),
        });
        Self {
            io,
            reactor_waker: Waker::from(Arc::new(ReactorWake(slot.clone()))),
            slot,
            empty_reads: 0,
        }
    }

    /// The connection's writing side for the threads that send on its pipe (see
    /// [`DirectSocket`]).
    pub(crate) fn direct_writer(&self) -> sp_transport::rt::DirectWriter
    where
        for<'a> &'a T: Write,
    {
        sp_transport::rt::DirectWriter(Arc::new(DirectSocket(self.io.clone())))
    }

    /// The connection's reading side for a receive that reads it while it polls before it
    /// sleeps (`sp_transport::rt::ConnInfo::direct_read`).
    pub(crate) fn direct_reader(&self) -> sp_transport::rt::DirectReader
    where
        for<'a> &'a T: Read,
    {
        sp_transport::rt::DirectReader(Arc::new(DirectSocket(self.io.clone())))
    }

    /// The reader is about to read: the waker to wake if it finds nothing, kept before the
    /// read so that a readiness the reactor reports during it finds the reader. Returns
    /// whether a caller found the connection readable since the last read.
    fn set_reader(&self, waker: &Waker) -> bool {
        let mut p = lock(&self.slot.parked);
        match &p.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => p.waker = Some(waker.clone()),
        }
        std::mem::take(&mut p.readable)
    }

    /// The reader found nothing: a waiting caller may watch this connection for it.
    fn park(&self) {
        let mut p = lock(&self.slot.parked);
        if !p.listed {
            p.listed = true;
            drop(p);
            registry().update(|slots| slots.push(self.slot.clone()));
        }
    }

    /// The reader read something: it is not parked.
    fn unpark(&self) {
        lock(&self.slot.parked).waker = None;
    }
}

impl<T> AsyncRead for Watched<T>
where
    T: AsFd + Send + Sync + 'static,
    for<'a> &'a T: Read,
{
    /// Reads, unless the last [`IDLE_AFTER_EMPTY_READS`] reads found nothing and no readiness
    /// was reported since.
    ///
    /// `Async<T>`'s own `poll_read` tries the read first and asks the reactor only after
    /// `EWOULDBLOCK`, and a pipe task polls its read side each time it runs: on a sending pipe,
    /// for every batch the application queues. A 64 B throughput sender made 190,000
    /// `recvfrom` calls that found nothing for 67,000 writes. Once the connection looks idle,
    /// this asks the reactor (a check under its lock, no system call) and the caller that
    /// watches the connection (`Parked::readable`) before it reads again.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let caller_saw_bytes = this.set_reader(cx.waker());
        let mut reactor_cx = Context::from_waker(&this.reactor_waker);
        if this.empty_reads >= IDLE_AFTER_EMPTY_READS && !caller_saw_bytes {
            match this.io.poll_readable(&mut reactor_cx) {
                Poll::Pending => {
                    this.park();
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => {
                    this.unpark();
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(())) => {}
            }
        }
        let out = Pin::new(&mut &*this.io).poll_read(&mut reactor_cx, buf);
        this.empty_reads = match out {
            Poll::Pending => this.empty_reads.saturating_add(1),
            Poll::Ready(_) => 0,
        };
        match out {
            Poll::Pending => this.park(),
            Poll::Ready(_) => this.unpark(),
        }
        out
    }
}

impl<T> AsyncWrite for Watched<T>
where
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.io).poll_close(cx)
    }
}

impl<T> Drop for Watched<T> {
    fn drop(&mut self) {
        let (watcher, listed) = {
            let mut p = lock(&self.slot.parked);
            p.waker = None;
            (p.watcher.take(), std::mem::replace(&mut p.listed, false))
        };
        // Out of the registry now: with more parked readers than a caller watches, nobody
        // looks at it, and a server's closed connections would pile up there.
        if listed {
            registry().update(|slots| slots.retain(|slot| !Arc::ptr_eq(slot, &self.slot)));
        }
        if let Some(w) = watcher.and_then(|w| w.upgrade()) {
            w.wake_by_ref();
        }
    }
}

/// A connection's socket as other threads than the pipe's task use it: the threads sending
/// on its pipe write to it (a plain non-blocking write of what the socket takes now, on the
/// sending thread), and a receive that polls before it sleeps reads it
/// (`sp_transport::rt::DirectRead`, a plain non-blocking read).
///
/// Why: a reply queued for the pipe's writer was written by a caller that waits next (its
/// `recv`), but the send first deferred the writer and woke a worker to run it in case the
/// caller did not wait: a futex wake-up and two context switches of a worker per reply,
/// which mostly found the writer already run. The driver writes through this only for a
/// send that answers a delivery while the pipe's task writes nothing (under the pipe
/// queue's lock, see `sp_transport::rt::DirectWrite`), so no lock is needed here.
struct DirectSocket<T>(Arc<Async<T>>);

impl<T: Send + Sync> sp_transport::rt::DirectWrite for DirectSocket<T>
where
    for<'a> &'a T: Write,
{
    fn try_write(&self, buf: &[u8]) -> Option<usize> {
        // `Async::new` made the socket non-blocking: a full one says `WouldBlock`, and the
        // pipe's task writes the rest (and meets any error).
        self.0.get_ref().write(buf).ok().filter(|&n| n > 0)
    }
}

impl<T: Send + Sync> sp_transport::rt::DirectRead for DirectSocket<T>
where
    for<'a> &'a T: Read,
{
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.get_ref().read(buf)
    }
}

/// A caller thread's waker: it writes to the thread's eventfd, which the caller's `poll(2)`
/// watches beside the connections.
pub(crate) struct CallerWake {
    efd: OwnedFd,
    notified: AtomicBool,
    /// The thread is polling its call or running tasks (not in `poll(2)`): a wake only sets
    /// `notified`.
    busy: AtomicBool,
}

impl Wake for CallerWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::SeqCst) && !self.busy.load(Ordering::SeqCst) {
            // A full counter (never, at one write per sleep) only means it is readable.
            let _ = rustix::io::write(&self.efd, &1u64.to_ne_bytes());
        }
    }
}

/// This thread's [`CallerWake`], made on first use; `None` if the OS refused an eventfd (the
/// caller then sleeps in async-io's `block_on`).
pub(crate) fn caller_wake() -> Option<Arc<CallerWake>> {
    thread_local! {
        static WAKE: Option<Arc<CallerWake>> = CallerWake::new()
            .inspect_err(|e| tracing::warn!(error = %e, "sp-blocking: no eventfd, waiting through async-io"))
            .ok();
    }
    WAKE.with(Clone::clone)
}

impl CallerWake {
    fn new() -> io::Result<Arc<Self>> {
        let efd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Arc::new(Self {
            efd,
            notified: AtomicBool::new(false),
            busy: AtomicBool::new(true),
        }))
    }

    /// Starts a poll of the call: wakes from now on are seen by the next check.
    pub(crate) fn begin_poll(&self) {
        self.busy.store(true, Ordering::SeqCst);
        self.notified.store(false, Ordering::SeqCst);
    }

    /// Starts watching `slot`'s connection, if its reader is still parked and no other
    /// caller watches it.
    fn try_watch(self: &Arc<Self>, slot: &Slot) -> bool {
        let mut p = lock(&slot.parked);
        let watch = p.waker.is_some() && p.watcher.as_ref().is_none_or(is_gone);
        if watch {
            p.watcher = Some(Arc::downgrade(self));
        }
        watch
    }

    /// Sleeps until the waker is woken, a watched connection is readable or `deadline` (the
    /// call's own, see `crate::deadline`) has come; returns the wakers of the readers whose
    /// connection is readable, for the caller to wake once it counts as taking tasks again
    /// (their tasks then run on this thread). With `busy_for`, it first polls without
    /// sleeping for up to that long (see [`busy_poll`]).
    pub(crate) fn sleep(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        busy_for: Option<Duration>,
    ) -> Vec<Waker> {
        self.busy.store(false, Ordering::SeqCst);
        // A wake between the poll and here wrote nothing: check before sleeping.
        if self.notified.load(Ordering::SeqCst) {
            return Vec::new();
        }
        // Whole nanoseconds to the deadline; `None` (no deadline, or one too far to express)
        // sleeps until something happens.
        let timeout = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .and_then(|left| Timespec::try_from(left).ok());
        if timeout.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0) {
            return Vec::new();
        }
        let mut watched = watched_readers();
        // Only readers still parked, and only connections no other caller watches: a stream
        // dropped from here on wakes this caller.
        watched.retain(|(_, slot)| self.try_watch(slot));
        let mut fds = Vec::with_capacity(1 + watched.len());
        fds.push(PollFd::new(&self.efd, PollFlags::IN));
        for (io, _) in &watched {
            fds.push(PollFd::from_borrowed_fd(io.fd(), PollFlags::IN));
        }
        // Interrupted or failed, the sleep found nothing readable; the watches still end
        // below (a watch left behind would keep every other caller off the connection, and
        // the reactor's wake-ups waiting for a watcher that is not there).
        let found = busy_for.is_some_and(|d| busy_poll(&mut fds, d, deadline));
        let polled = if found {
            Ok(1)
        } else {
            poll(&mut fds, timeout.as_ref())
        };
        let ready: Vec<bool> = match polled {
            Ok(_) => fds[1..].iter().map(|f| !f.revents().is_empty()).collect(),
            Err(e) => {
                if e != rustix::io::Errno::INTR {
                    tracing::error!(error = %e, "sp-blocking: poll failed");
                }
                vec![false; watched.len()]
            }
        };
        if !fds[0].revents().is_empty() {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&self.efd, &mut buf);
        }
        drop(fds);
        let mut readable = Vec::new();
        for ((_, slot), ready) in watched.iter().zip(ready) {
            let mut p = lock(&slot.parked);
            p.watcher = None;
            // Readable here, or reported by the reactor while watched (see `ReactorWake`).
            if ready || std::mem::take(&mut p.deferred) {
                p.readable = true;
                readable.extend(p.waker.take());
            }
        }
        readable
    }
}

/// Polls `fds` without sleeping until one is ready (true), `busy_for` has passed or
/// `deadline` has come (false).
///
/// Why: the reply to a request, or the peer's next message in a ping-pong, usually comes
/// within microseconds, and a thread asleep in `poll(2)` costs the kernel's wake-up on top:
/// a blocking tcp 64 B ping-pong took 23.6 µs one way sleeping at once, and 5.4 µs polling
/// for up to 20 µs first (a REQ/REP round trip with one request in flight: 17,706 against
/// 66,865 a second). The CPU it spends is bounded by `busy_for` per wait, and the caller
/// polls so only while fewer than one caller per core does (see `crate::pool`).
fn busy_poll(fds: &mut [PollFd<'_>], busy_for: Duration, deadline: Option<Instant>) -> bool {
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let until = Instant::now() + busy_for;
    let until = deadline.map_or(until, |d| d.min(until));
    loop {
        if matches!(poll(fds, Some(&zero)), Ok(n) if n > 0) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::hint::spin_loop();
    }
}

/// Whether the caller behind a connection's watch is gone (its thread ended).
fn is_gone(caller: &Weak<CallerWake>) -> bool {
    caller.strong_count() == 0
}

/// Whether a waiting caller has connections to watch (between 1 and [`DIRECT_MAX`] parked
/// readers).
pub(crate) fn watchable() -> bool {
    let n = registry().len.load(Ordering::Acquire);
    (1..=DIRECT_MAX).contains(&n)
}

/// The parked readers to watch (at most [`DIRECT_MAX`], none if there are more), each with its
/// stream kept alive; drops the slots of streams that are gone or readers no longer parked.
fn watched_readers() -> Vec<(Arc<dyn Watchable>, Arc<Slot>)> {
    registry().update(|reg| {
        reg.retain(|slot| {
            let mut p = lock(&slot.parked);
            let keep = p.waker.is_some() && slot.io.strong_count() > 0;
            if !keep {
                p.listed = false;
            }
            keep
        });
        if reg.len() > DIRECT_MAX {
            return Vec::new();
        }
        reg.iter()
            .filter_map(|slot| Some((slot.io.upgrade()?, slot.clone())))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};

    use super::*;

    fn listed(slot: &Arc<Slot>) -> bool {
        lock(&registry().slots).iter().any(|s| Arc::ptr_eq(s, slot))
    }

    /// A reader that finds nothing is listed for waiting callers; its stream, once dropped, is
    /// not, whether or not a caller looked at the registry in between.
    #[test]
    fn a_parked_reader_is_listed_until_its_stream_drops() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut theirs, _) = listener.accept().unwrap();
        let mut watched = Watched::new(Async::new(ours).unwrap());
        let slot = watched.slot.clone();
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 8];
        assert!(Pin::new(&mut watched)
            .poll_read(&mut cx, &mut buf)
            .is_pending());
        assert!(listed(&slot), "a parked reader is listed");
        theirs.write_all(b"x").unwrap();
        // Waits for the byte through the reactor; the read leaves the reader unparked.
        let got = async_io::block_on(std::future::poll_fn(|cx| {
            Pin::new(&mut watched).poll_read(cx, &mut buf)
        }))
        .unwrap();
        assert_eq!(&buf[..got], b"x");
        assert!(
            lock(&slot.parked).waker.is_none(),
            "a reader that read is not parked"
        );
        assert!(Pin::new(&mut watched)
            .poll_read(&mut cx, &mut buf)
            .is_pending());
        drop(watched);
        assert!(!listed(&slot), "a dropped stream is not listed");
    }

    /// One caller at a time watches a parked reader's connection: another may once the
    /// first stopped watching, or once its thread (and so its waker) is gone.
    #[test]
    fn one_caller_at_a_time_watches_a_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let _theirs = listener.accept().unwrap();
        let watched = Watched::new(Async::new(ours).unwrap());
        let (first, second) = (CallerWake::new().unwrap(), CallerWake::new().unwrap());
        assert!(
            !first.try_watch(&watched.slot),
            "nothing parked, nothing to watch"
        );
        watched.set_reader(Waker::noop());
        assert!(first.try_watch(&watched.slot));
        assert!(!second.try_watch(&watched.slot), "watched by the first");
        lock(&watched.slot.parked).watcher = None;
        assert!(
            second.try_watch(&watched.slot),
            "the first stopped watching"
        );
        drop(second);
        assert!(first.try_watch(&watched.slot), "the second caller is gone");
    }

    /// The senders' writer puts its bytes on the stream's socket, and says "not now" (instead
    /// of blocking) once the socket takes no more.
    #[test]
    fn the_direct_writer_writes_to_the_streams_socket_without_blocking() {
        sp_transport::rt::check_direct_writer(|ours| {
            Watched::new(Async::new(ours).unwrap()).direct_writer()
        });
    }

    /// A TCP stream that counts the reads made on it.
    struct CountingReads {
        stream: TcpStream,
        reads: AtomicUsize,
    }

    impl AsFd for CountingReads {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.stream.as_fd()
        }
    }

    impl Read for &CountingReads {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            (&self.stream).read(buf)
        }
    }

    /// A reader whose last reads found nothing makes no read while nothing is reported, and
    /// reads again as soon as a waiting caller found the connection readable, whatever the
    /// reactor has seen by then.
    #[test]
    fn an_idle_reader_reads_once_a_caller_saw_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut theirs, _) = listener.accept().unwrap();
        let ours = CountingReads {
            stream: ours,
            reads: AtomicUsize::new(0),
        };
        let mut watched = Watched::new(Async::new(ours).unwrap());
        let reads = |w: &Watched<CountingReads>| w.io.get_ref().reads.load(Ordering::Relaxed);
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 8];
        for _ in 0..IDLE_AFTER_EMPTY_READS {
            assert!(Pin::new(&mut watched)
                .poll_read(&mut cx, &mut buf)
                .is_pending());
        }
        assert_eq!(watched.empty_reads, IDLE_AFTER_EMPTY_READS, "idle now");
        let idle = reads(&watched);
        // Nothing was sent, so neither the reactor nor a caller reports anything: no read.
        for _ in 0..3 {
            assert!(Pin::new(&mut watched)
                .poll_read(&mut cx, &mut buf)
                .is_pending());
        }
        assert_eq!(reads(&watched), idle, "an idle reader does not read");
        theirs.write_all(b"hi").unwrap();
        // What `CallerWake::sleep` records when its `poll(2)` finds the connection readable.
        lock(&watched.slot.parked).readable = true;
        match Pin::new(&mut watched).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(n)) => assert_eq!(&buf[..n], b"hi"),
            other => panic!("expected the bytes, got {other:?}"),
        }
        assert_eq!(watched.empty_reads, 0);
        assert!(!lock(&watched.slot.parked).readable, "the hint is used up");
    }
}
