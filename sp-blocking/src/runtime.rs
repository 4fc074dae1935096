//! [`Threads`]: the shared driver's runtime on a small, fixed pool of threads.
//!
//! One reactor (async-io's, on its own `async-io` thread, over the `polling` crate: epoll,
//! kqueue, event ports, IOCP) watches every connection and timer of every socket in the
//! process, and [`WORKERS`] worker threads (`sp-blocking`) run the driver's tasks: timers,
//! dialers, listeners and one task per pipe. The pool starts with the first socket and serves
//! all sockets of the process; its threads stay parked while there is nothing to do and live
//! as long as the process, as NNG's do.
//!
//! A blocking call runs on the caller's thread: [`block_on`] polls the call, runs ready tasks
//! while it waits, and sleeps on that thread until it is woken (see `crate::pool`, and
//! `crate::direct` for the caller's own wait on Linux).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{ready, Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use sp_transport::rt::{
    Acceptor, BoxFuture, ConnInfo, Connected, IpcListener, Runtime, Sleep, TcpOptions,
};
use sp_transport::Error;

/// How many worker threads run the driver's tasks, besides async-io's reactor thread.
pub(crate) const WORKERS: usize = 2;

/// Set once the reactor and every worker run.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// What has started so far; a failed start is retried by the next call.
static STARTED: Mutex<Started> = Mutex::new(Started {
    reactor: false,
    workers: 0,
});

struct Started {
    reactor: bool,
    workers: usize,
}

/// Starts the pool if it does not run yet: the reactor and its thread, then the workers.
///
/// # Errors
/// The OS refused a thread or the poller; the next call tries again. Tasks spawned meanwhile
/// wait in the run queue (a blocking call runs them while it waits) and are not lost.
pub(crate) fn start() -> io::Result<()> {
    if RUNNING.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    if !started.reactor {
        // async-io creates its poller and spawns its thread on first use, and panics if either
        // fails: make that first use here, where the panic becomes an error.
        let reactor = std::panic::catch_unwind(|| {
            let mut timer = Timer::after(Duration::from_secs(3600));
            futures_lite::future::block_on(futures_lite::future::poll_once(&mut timer));
        });
        if reactor.is_err() {
            return Err(io::Error::other(
                "cannot start async-io's reactor (its poller or its thread)",
            ));
        }
        started.reactor = true;
    }
    while started.workers < WORKERS {
        // Workers only run tasks; the reactor is driven by async-io's thread and by callers
        // waiting in `block_on`, so that a caller usually gets its own connection's events.
        thread::Builder::new()
            .name("sp-blocking".into())
            .spawn(crate::pool::worker)?;
        started.workers += 1;
    }
    RUNNING.store(true, Ordering::Release);
    Ok(())
}

/// [`start`], as the error a blocking call returns.
pub(crate) fn ensure_started() -> sp_transport::Result<()> {
    start().map_err(|source| Error::Io {
        context: "cannot start sp-blocking's threads".into(),
        source,
    })
}

pub(crate) use crate::pool::{block_on, block_on_after_attempt, block_on_send};

/// A receive: what `now`, its attempt without waiting, got; or, if that found nothing, the
/// blocking call of the future `make` builds, which starts by waiting.
///
/// Most receives of a busy [`RecvSet`](crate::RecvSet) find a member's message ready: this
/// way they cost one attempt, without building the call's future or reading the clock for
/// its deadline. The attempt is the one the future's first poll would make, so the outcome
/// is the same, passed deadlines included.
///
/// Not for a socket's own `recv`: there, a receiver that took its queued messages sooner
/// took the inproc pipe's queue in smaller batches, and contended with the sending thread
/// for that queue's lock (inproc 64 B throughput fell from 2.54–3.08 M to 2.21–2.48 M msg/s
/// in 6 interleaved rounds).
pub(crate) fn recv_now_or<T, F>(
    now: sp_transport::Result<T>,
    make: impl FnOnce() -> F,
) -> sp_transport::Result<T>
where
    F: Future<Output = sp_transport::Result<T>>,
{
    match now {
        Err(Error::WouldBlock) => {
            ensure_started()?;
            block_on_after_attempt(make)
        }
        done => done,
    }
}

/// Runs a blocking call that needs the pool: an error if the pool cannot start.
pub(crate) fn run<T>(
    fut: impl Future<Output = sp_transport::Result<T>>,
) -> sp_transport::Result<T> {
    ensure_started()?;
    block_on(fut)
}

/// Runs a blocking send that needs the pool: if the pool cannot start, the message comes
/// back with the error.
pub(crate) fn send_with<F>(
    msg: impl Into<sp_transport::Message>,
    send: impl FnOnce(sp_transport::Message) -> F,
) -> sp_transport::SendResult
where
    F: Future<Output = sp_transport::SendResult>,
{
    let msg = msg.into();
    match ensure_started() {
        Ok(()) => block_on_send(|| send(msg)),
        Err(e) => Err(sp_transport::Unsent::new(e, msg)),
    }
}

/// Runs every socket's tasks on sp-blocking's pool: async-io's reactor thread and
/// a fixed number of worker threads shared by all sockets of the process (see the
/// [crate docs](crate#threads)).
///
/// It is the runtime of every socket in this crate; there is nothing to configure.
#[derive(Clone, Copy, Debug, Default)]
pub struct Threads;

impl Runtime for Threads {
    fn wake_later(&self) -> Option<fn(&std::task::Waker)> {
        Some(crate::pool::wake_later)
    }

    /// Blocking calls wait on the caller's own thread.
    fn receivers_have_own_threads(&self) -> bool {
        true
    }

    /// A `recv` on a socket with one tcp or ipc pipe reads that connection itself before it
    /// waits (see `Runtime::receivers_busy_poll`), rather than poll it and then wake the
    /// pipe's reader task: tcp 64 B one-way latency 8.3–8.9 µs against 12.2–14.3, ipc
    /// 4.4–5.6 against 6.2–18.2, in three interleaved rounds.
    fn receivers_busy_poll(&self) -> bool {
        true
    }

    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        // A pool that cannot start is reported by the blocking calls; the task waits in the
        // run queue until the pool (or a blocking call) runs it.
        if let Err(e) = start() {
            tracing::error!(error = %e, "cannot start sp-blocking's threads");
        }
        crate::pool::spawn(fut);
    }

    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep> {
        Box::new(TimerSleep::new(deadline))
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
        opts: TcpOptions,
    ) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async move { tcp(Async::<TcpStream>::connect(addr).await?, opts) })
    }

    fn tcp_acceptor(
        &self,
        listener: TcpListener,
        opts: TcpOptions,
    ) -> io::Result<Box<dyn Acceptor>> {
        Ok(Box::new(TcpAcceptor {
            listener: Async::new(listener)?,
            opts,
        }))
    }

    #[cfg(unix)]
    fn connect_ipc(&self, path: PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async move { unix(Async::<UnixStream>::connect(path).await?) })
    }

    #[cfg(unix)]
    fn ipc_acceptor(&self, listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        Ok(Box::new(IpcAcceptor(Async::new(listener)?)))
    }

    /// Windows: [`Unsupported::NamedPipes`] (async-io has no named pipes; sp-tokio does).
    #[cfg(windows)]
    fn connect_ipc(&self, _path: PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async { Err(NAMED_PIPES.into()) })
    }

    /// Windows: [`Unsupported::NamedPipes`] (async-io has no named pipes; sp-tokio does).
    #[cfg(windows)]
    fn ipc_acceptor(&self, _listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        Err(NAMED_PIPES.into())
    }

    fn adopt_tcp(&self, stream: TcpStream, opts: TcpOptions) -> io::Result<Connected> {
        tcp(Async::new(stream)?, opts)
    }

    #[cfg(unix)]
    fn adopt_ipc(&self, stream: UnixStream) -> io::Result<Connected> {
        unix(Async::new(stream)?)
    }
}

#[cfg(windows)]
const NAMED_PIPES: sp_transport::Unsupported = sp_transport::Unsupported::NamedPipes {
    adapter: "sp-blocking",
};

/// A connected TCP stream with `opts` applied, and what the OS says about it.
fn tcp(s: Async<TcpStream>, opts: TcpOptions) -> io::Result<Connected> {
    opts.apply(s.get_ref())?;
    let info = ConnInfo::tcp(s.get_ref().local_addr(), s.get_ref().peer_addr());
    Ok(watched(s, info))
}

/// A connected Unix stream and what the OS says about it (addresses, peer credentials).
#[cfg(unix)]
fn unix(s: Async<UnixStream>) -> io::Result<Connected> {
    let (local, remote) = (s.get_ref().local_addr().ok(), s.get_ref().peer_addr().ok());
    let info = ConnInfo::unix(s.get_ref(), local.as_ref(), remote.as_ref());
    Ok(watched(s, info))
}

/// A connection a blocking caller can wait on itself (Linux, see `crate::direct`), with a
/// writer for the threads that send replies on it.
#[cfg(target_os = "linux")]
fn watched<T>(s: Async<T>, info: ConnInfo) -> Connected
where
    T: std::os::fd::AsFd + Send + Sync + 'static,
    for<'a> &'a T: std::io::Read + std::io::Write,
{
    let stream = crate::direct::Watched::new(s);
    let info = info.with_direct(stream.direct_writer(), stream.direct_reader());
    (Box::new(stream), info)
}

/// A connection, waited on through async-io's reactor.
#[cfg(not(target_os = "linux"))]
fn watched<T>(s: Async<T>, info: ConnInfo) -> Connected
where
    Async<T>: sp_transport::rt::ByteStream,
{
    (Box::new(s), info)
}

/// A future that completes at `deadline` (a [`TimerSleep`]).
pub(crate) async fn sleep_until(deadline: Instant) {
    let mut sleep = TimerSleep::new(deadline);
    std::future::poll_fn(|cx| sleep.poll_sleep(cx)).await;
}

/// The blocking runtime's sleep: an async-io timer, armed only where the thread that polls
/// it cannot keep the deadline itself (see `crate::deadline`).
struct TimerSleep {
    timer: Option<Timer>,
    deadline: Instant,
    /// The token of the deadline this sleep left to the thread that polls its call.
    kept: Option<u64>,
}

impl TimerSleep {
    fn new(deadline: Instant) -> Self {
        Self {
            timer: None,
            deadline,
            kept: None,
        }
    }

    /// Takes back the deadline left to the caller's thread, if any.
    fn withdraw(&mut self) {
        if let Some(token) = self.kept.take() {
            crate::deadline::withdraw(token);
        }
    }
}

impl Sleep for TimerSleep {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        // Kept again, with the new deadline, at the next poll.
        self.withdraw();
        if let Some(timer) = &mut self.timer {
            timer.set_at(deadline);
        }
    }

    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // A fired async-io timer stays pending when polled again: check the clock first.
        if Instant::now() >= self.deadline {
            self.withdraw();
            return Poll::Ready(());
        }
        if self.timer.is_none() && crate::deadline::keep(&mut self.kept, self.deadline) {
            return Poll::Pending;
        }
        // Polled where its deadline cannot be kept: a timer keeps it from now on.
        self.withdraw();
        let deadline = self.deadline;
        let timer = self.timer.get_or_insert_with(|| Timer::at(deadline));
        Pin::new(timer).poll(cx).map(|_| ())
    }
}

impl Drop for TimerSleep {
    fn drop(&mut self) {
        self.withdraw();
    }
}

struct TcpAcceptor {
    listener: Async<TcpListener>,
    opts: TcpOptions,
}

impl Acceptor for TcpAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        let (s, _) = ready!(poll_accept(&self.listener, cx, TcpListener::accept))?;
        Poll::Ready(tcp(Async::new(s)?, self.opts))
    }
}

#[cfg(unix)]
struct IpcAcceptor(Async<UnixListener>);

#[cfg(unix)]
impl Acceptor for IpcAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        let (s, _) = ready!(poll_accept(&self.0, cx, UnixListener::accept))?;
        Poll::Ready(unix(Async::new(s)?))
    }
}

/// Accepts one connection from a non-blocking listener, waiting for readability in between.
fn poll_accept<L, T>(
    listener: &Async<L>,
    cx: &mut Context<'_>,
    accept: impl Fn(&L) -> io::Result<T>,
) -> Poll<io::Result<T>> {
    loop {
        match accept(listener.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            res => return Poll::Ready(res),
        }
        ready!(listener.poll_readable(cx))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadline::{polling_own_call, CallDeadline};
    use std::task::Waker;

    /// A sleep polled as the caller's own call leaves its deadline to the caller and arms no
    /// reactor timer; polled anywhere else (async-io's `block_on`, a task) it arms one.
    #[test]
    fn a_sleep_arms_a_timer_only_where_the_caller_cannot_keep_its_deadline() {
        let call = CallDeadline::begin();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut sleep = TimerSleep::new(deadline);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(polling_own_call(|| sleep.poll_sleep(&mut cx)).is_pending());
        assert!(sleep.timer.is_none(), "the caller keeps the deadline");
        assert_eq!(call.kept(), Some(deadline));
        assert!(sleep.poll_sleep(&mut cx).is_pending());
        assert!(sleep.timer.is_some(), "polled elsewhere, it arms a timer");
        assert_eq!(call.kept(), None, "and takes its deadline back");
        let mut dropped = TimerSleep::new(deadline);
        assert!(polling_own_call(|| dropped.poll_sleep(&mut cx)).is_pending());
        assert_eq!(call.kept(), Some(deadline));
        drop(dropped);
        assert_eq!(
            call.kept(),
            None,
            "a dropped sleep leaves no deadline behind"
        );
        let mut past = TimerSleep::new(Instant::now());
        assert!(polling_own_call(|| past.poll_sleep(&mut cx)).is_ready());
        assert!(past.poll_sleep(&mut cx).is_ready());
    }
}
