//! [`Threads`]: the shared driver's runtime traits on plain threads and blocking std sockets.
//!
//! On Windows, `ipc://` would be a named pipe, which std cannot serve: `connect_ipc` and
//! `ipc_acceptor` fail there with [`Unsupported::NamedPipes`], which names sp-tokio. Windows
//! has no `MSG_DONTWAIT` either, so a pipe's writes all go through its writer thread there.

use std::cell::Cell;
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::fd::AsFd as AsSocket;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(windows)]
use std::os::windows::io::AsSocket;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use sp_transport::rt::{
    Acceptor, BoxFuture, BoxStream, ConnInfo, Connected, IpcListener, Runtime, Sleep, TcpOptions,
};
use sp_transport::threads::{self, ThreadIo, ThreadedStream};
#[cfg(windows)]
use sp_transport::Unsupported;

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

    /// The blocking runtime resolves on the dialer's own thread.
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        use std::net::ToSocketAddrs;
        Box::pin(async move { Ok((host.as_str(), port).to_socket_addrs()?.collect()) })
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
        opts: TcpOptions,
    ) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async move { tcp(TcpStream::connect(addr)?, opts) })
    }

    fn tcp_acceptor(
        &self,
        listener: TcpListener,
        opts: TcpOptions,
    ) -> io::Result<Box<dyn Acceptor>> {
        listener.set_nonblocking(false)?;
        let bound = listener.local_addr()?;
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
            accept: Box::new(move || tcp(listener.accept()?.0, opts)),
        }))
    }

    #[cfg(unix)]
    fn connect_ipc(&self, path: PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async move { unix(UnixStream::connect(path)?) })
    }

    /// Windows: [`Unsupported::NamedPipes`] (std has no named-pipe server; sp-tokio does).
    #[cfg(windows)]
    fn connect_ipc(&self, _path: PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async { Err(NAMED_PIPES.into()) })
    }

    /// Windows: [`Unsupported::NamedPipes`] (std has no named-pipe server; sp-tokio does).
    #[cfg(windows)]
    fn ipc_acceptor(&self, _listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        Err(NAMED_PIPES.into())
    }

    #[cfg(unix)]
    fn ipc_acceptor(&self, listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        listener.set_nonblocking(false)?;
        let local = listener.local_addr()?;
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let _ = UnixStream::connect_addr(&local);
        });
        Ok(Box::new(BlockingAcceptor {
            wake,
            accept: Box::new(move || unix(listener.accept()?.0)),
        }))
    }

    fn adopt_tcp(&self, stream: TcpStream, opts: TcpOptions) -> io::Result<Connected> {
        stream.set_nonblocking(false)?;
        tcp(stream, opts)
    }

    #[cfg(unix)]
    fn adopt_ipc(&self, stream: UnixStream) -> io::Result<Connected> {
        stream.set_nonblocking(false)?;
        unix(stream)
    }
}

/// A connected TCP stream with `opts` applied, run on threads, and what the OS says about it.
fn tcp(s: TcpStream, opts: TcpOptions) -> io::Result<Connected> {
    opts.apply(&s)?;
    let info = ConnInfo::tcp(s.local_addr(), s.peer_addr());
    Ok((threaded(s)?, info))
}

#[cfg(windows)]
const NAMED_PIPES: Unsupported = Unsupported::NamedPipes {
    adapter: "sp-blocking",
};

/// A connected Unix stream run on threads, and what the OS says about it.
#[cfg(unix)]
fn unix(s: UnixStream) -> io::Result<Connected> {
    let (local, remote) = (s.local_addr().ok(), s.peer_addr().ok());
    let info = ConnInfo::unix(&s, local.as_ref(), remote.as_ref());
    Ok((threaded(s)?, info))
}

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
/// A future that completes at `deadline`, for [`block_on`].
pub(crate) async fn sleep_until(deadline: Instant) {
    let mut sleep = ThreadSleep { deadline };
    std::future::poll_fn(|cx| sleep.poll_sleep(cx)).await
}

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
    accept: Box<dyn FnMut() -> io::Result<Connected> + Send>,
}

impl Acceptor for BlockingAcceptor {
    fn poll_accept(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        // `None`: woken meanwhile, which only the endpoint's close does; `block_on` polls again
        // at once and the accept loop ends.
        threads::interruptible(self.wake.clone(), &mut self.accept)
            .map_or(Poll::Pending, Poll::Ready)
    }
}

fn threaded<S>(stream: S) -> io::Result<BoxStream>
where
    S: AsSocket + Send + Sync + 'static,
    for<'a> &'a S: Read + Write,
{
    Ok(Box::new(ThreadedStream::new(Arc::new(StdIo(stream)))?))
}

/// A std TCP or Unix stream in blocking mode, as [`ThreadIo`].
struct StdIo<S>(S);

/// Flags for a write that must not block (nor raise `SIGPIPE` where the flag exists).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NONBLOCKING_SEND: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
const NONBLOCKING_SEND: libc::c_int = libc::MSG_DONTWAIT;

impl<S> ThreadIo for StdIo<S>
where
    S: AsSocket + Send + Sync + 'static,
    for<'a> &'a S: Read + Write,
{
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.0).write_vectored(bufs)
    }

    #[cfg(unix)]
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        socket2::SockRef::from(&self.0).send_vectored_with_flags(bufs, NONBLOCKING_SEND)
    }

    /// Windows has no per-call non-blocking send (`MSG_DONTWAIT`), and a blocking socket
    /// cannot be made non-blocking for one call while other threads read it: every write goes
    /// to the pipe's writer thread.
    #[cfg(windows)]
    fn try_write_vectored(&self, _bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        socket2::SockRef::from(&self.0).set_read_timeout(timeout)
    }

    fn shutdown(&self) {
        let _ = socket2::SockRef::from(&self.0).shutdown(Shutdown::Both);
    }
}
