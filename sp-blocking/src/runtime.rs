//! [`Threads`]: the shared driver's runtime traits on plain threads and blocking std sockets.

use std::cell::Cell;
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use sp_transport::rt::{Acceptor, BoxFuture, BoxStream, Runtime, Sleep};
use sp_transport::threads::{self, ThreadIo, ThreadedStream};

/// Runs a socket's tasks on threads of their own, one thread per task.
///
/// It is the runtime of every socket in this crate; there is nothing to configure.
#[derive(Clone, Copy, Debug, Default)]
pub struct Threads;

impl Runtime for Threads {
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        let spawned = thread::Builder::new()
            .name("sp-blocking".into())
            .spawn(move || block_on(fut));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a socket thread; its task does not run");
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep> {
        Box::new(ThreadSleep { deadline })
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
        nodelay: bool,
    ) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(nodelay)?;
            threaded(s)
        })
    }

    fn tcp_acceptor(&self, listener: TcpListener, nodelay: bool) -> io::Result<Box<dyn Acceptor>> {
        listener.set_nonblocking(false)?;
        let bound = listener.local_addr()?;
        // Closing wakes the blocked `accept` with a connection of its own.
        let target = match bound {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
            }
            a => a,
        };
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = TcpStream::connect_timeout(&target, Duration::from_secs(1));
        });
        Ok(Box::new(BlockingAcceptor {
            wake,
            accept: Box::new(move || {
                let (s, _) = listener.accept()?;
                s.set_nodelay(nodelay)?;
                threaded(s)
            }),
        }))
    }

    fn connect_ipc(&self, path: PathBuf) -> BoxFuture<'static, io::Result<BoxStream>> {
        Box::pin(async move { threaded(UnixStream::connect(path)?) })
    }

    fn ipc_acceptor(&self, listener: UnixListener) -> io::Result<Box<dyn Acceptor>> {
        listener.set_nonblocking(false)?;
        let path = listener
            .local_addr()?
            .as_pathname()
            .map(PathBuf::from)
            .ok_or_else(|| io::Error::other("ipc listener has no path"))?;
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = UnixStream::connect(&path);
        });
        Ok(Box::new(BlockingAcceptor {
            wake,
            accept: Box::new(move || threaded(listener.accept()?.0)),
        }))
    }
}

/// Runs `fut` to completion on the calling thread, parking it while the future waits.
///
/// Frames the future queues are written from this thread when it leaves the socket's lock
/// ([`threads::with_direct_writes`]); timers ([`ThreadSleep`]) bound the parking.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = threads::waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        NEXT_DEADLINE.set(None);
        if let Poll::Ready(out) = threads::with_direct_writes(|| fut.as_mut().poll(&mut cx)) {
            return out;
        }
        threads::park(NEXT_DEADLINE.take());
    }
}

thread_local! {
    /// The earliest deadline of the timers polled during this thread's current poll.
    static NEXT_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A timer: polling it before its deadline makes [`block_on`] park no longer than that.
struct ThreadSleep {
    deadline: Instant,
}

impl Sleep for ThreadSleep {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    fn poll_sleep(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let d = self.deadline;
        NEXT_DEADLINE.set(Some(NEXT_DEADLINE.get().map_or(d, |n| n.min(d))));
        Poll::Pending
    }
}

/// A listener whose `accept` blocks its thread; waking the thread (the endpoint closing)
/// connects to the listener so that `accept` returns.
struct BlockingAcceptor {
    wake: Arc<dyn Fn() + Send + Sync>,
    accept: Box<dyn FnMut() -> io::Result<BoxStream> + Send>,
}

impl Acceptor for BlockingAcceptor {
    fn poll_accept(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<BoxStream>> {
        // `None`: woken meanwhile, which only the endpoint's close does; `block_on` polls again
        // at once and the accept loop ends.
        threads::interruptible(self.wake.clone(), &mut self.accept)
            .map_or(Poll::Pending, Poll::Ready)
    }
}

fn threaded<S>(stream: S) -> io::Result<BoxStream>
where
    S: AsFd + Send + Sync + 'static,
    for<'a> &'a S: Read + Write,
{
    Ok(Box::new(ThreadedStream::new(Arc::new(StdIo(stream)))?))
}

/// A std TCP or Unix stream in blocking mode, as [`ThreadIo`].
struct StdIo<S>(S);

/// Flags for a write that must not block (nor raise `SIGPIPE` where the flag exists).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NONBLOCKING_SEND: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const NONBLOCKING_SEND: libc::c_int = libc::MSG_DONTWAIT;

impl<S> ThreadIo for StdIo<S>
where
    S: AsFd + Send + Sync + 'static,
    for<'a> &'a S: Read + Write,
{
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.0).write_vectored(bufs)
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket2::SockRef::from(&self.0).send_vectored_with_flags(bufs, NONBLOCKING_SEND)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        socket2::SockRef::from(&self.0).set_read_timeout(timeout)
    }

    fn shutdown(&self) {
        let _ = socket2::SockRef::from(&self.0).shutdown(Shutdown::Both);
    }
}
