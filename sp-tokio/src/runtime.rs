//! [`Tokio`]: the runtime glue for the shared driver.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use sp_transport::rt::{
    Acceptor, BoxFuture, ConnInfo, Connected, IpcListener, Runtime, Sleep, TcpOptions,
};
use tokio::io::{AsyncRead as TokioRead, ReadBuf};
use tokio::runtime::Handle;

/// Runs a socket's tasks on a tokio runtime.
#[derive(Clone, Debug)]
pub struct Tokio {
    handle: Handle,
}

impl Tokio {
    /// Uses the given runtime handle.
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

impl Default for Tokio {
    /// Uses the runtime the caller runs on.
    ///
    /// # Panics
    /// Panics outside a tokio runtime (as `Handle::current` does).
    fn default() -> Self {
        Self {
            handle: Handle::current(),
        }
    }
}

impl Runtime for Tokio {
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        self.handle.spawn(fut);
    }

    /// tokio's clock, which a paused runtime (`#[tokio::test(start_paused = true)]`,
    /// `tokio::time::pause`) advances virtually: every timer of the socket follows it.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// tokio's cooperative budget, as its own channels spend it: a send that completes at
    /// once spends a unit (or half of one, see the driver's `SendTurns`), and a task out of
    /// budget yields through tokio's deferred wake-up (see `Runtime::send_budget`). Measured
    /// on inproc 64 B throughput: 3.2 M msg/s with a self-wake every 32 sends, 4.3–4.4 M with
    /// the budget. The deferred wake-up does not wake another worker itself, but the worker
    /// that yielded looks for work to steal before it takes the task back, and then wakes
    /// its parked sibling as a worker that found work does (about every second yield, in
    /// a tcp or ipc stream).
    fn send_budget(&self) -> Option<fn(&mut Context<'_>) -> Poll<()>> {
        Some(|cx| tokio::task::coop::poll_proceed(cx).map(|restore| restore.made_progress()))
    }

    /// A receiving task that finds nothing polls its socket's one pipe when that pipe has
    /// work for its task (see `Runtime::receivers_poll_pipes`): a tokio ipc 64 B receiver
    /// made 10,765 worker wake-ups per 2,000,000 messages before, 1,415 after.
    fn receivers_poll_pipes(&self) -> bool {
        true
    }

    /// A receive on a socket with one TCP or IPC pipe reads that connection itself for up
    /// to `sp_transport::busy_poll_limit` before it waits (see
    /// `Runtime::receivers_busy_poll`): tokio's tcp 64 B one-way latency went from 29.3–36.1 µs
    /// to 6.8–8.1 in three interleaved rounds, its ipc latency from 19.7–21.1 to 4.4–5.1.
    fn receivers_busy_poll(&self) -> bool {
        true
    }

    /// tokio's own `yield_now`, polled once: it defers the wake-up until the worker has run
    /// its other tasks (see `Runtime::defer_yield`).
    fn defer_yield(&self) -> Option<fn(&mut Context<'_>)> {
        Some(|cx| {
            let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
        })
    }

    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep> {
        let _guard = self.handle.enter();
        Box::new(TokioSleep(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
        opts: TcpOptions,
    ) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            tcp(s, opts)
        })
    }

    fn tcp_acceptor(
        &self,
        listener: std::net::TcpListener,
        opts: TcpOptions,
    ) -> io::Result<Box<dyn Acceptor>> {
        let _guard = self.handle.enter();
        Ok(Box::new(TcpAcceptor {
            listener: tokio::net::TcpListener::from_std(listener)?,
            opts,
        }))
    }

    #[cfg(unix)]
    fn connect_ipc(&self, path: PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async move { unix(tokio::net::UnixStream::connect(path).await?) })
    }

    #[cfg(unix)]
    fn ipc_acceptor(&self, listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        let _guard = self.handle.enter();
        Ok(Box::new(IpcAcceptor(tokio::net::UnixListener::from_std(
            listener,
        )?)))
    }

    /// Windows: connects to the named pipe `path` (`\\.\pipe\NAME`).
    #[cfg(windows)]
    fn connect_ipc(&self, path: PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(crate::named_pipe::connect(path))
    }

    /// Windows: serves the named pipe `listener` names, one instance per connection.
    #[cfg(windows)]
    fn ipc_acceptor(&self, listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        let _guard = self.handle.enter();
        crate::named_pipe::acceptor(listener)
    }

    fn adopt_tcp(&self, stream: std::net::TcpStream, opts: TcpOptions) -> io::Result<Connected> {
        let _guard = self.handle.enter();
        tcp(tokio::net::TcpStream::from_std(stream)?, opts)
    }

    #[cfg(unix)]
    fn adopt_ipc(&self, stream: std::os::unix::net::UnixStream) -> io::Result<Connected> {
        let _guard = self.handle.enter();
        unix(tokio::net::UnixStream::from_std(stream)?)
    }
}

/// A connected TCP stream with `opts` applied, and what the OS says about it.
fn tcp(s: tokio::net::TcpStream, opts: TcpOptions) -> io::Result<Connected> {
    opts.apply(&s)?;
    let info = ConnInfo::tcp(s.local_addr(), s.peer_addr());
    Ok(crate::split::connected(s.into_split(), info))
}

/// A connected Unix stream and what the OS says about it (addresses, peer credentials).
#[cfg(unix)]
fn unix(s: tokio::net::UnixStream) -> io::Result<Connected> {
    let local = s
        .local_addr()
        .ok()
        .map(std::os::unix::net::SocketAddr::from);
    let remote = s.peer_addr().ok().map(std::os::unix::net::SocketAddr::from);
    let info = ConnInfo::unix(&s, local.as_ref(), remote.as_ref());
    Ok(crate::split::connected(s.into_split(), info))
}

struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Sleep for TokioSleep {
    fn reset(&mut self, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

use std::future::Future;

struct TcpAcceptor {
    listener: tokio::net::TcpListener,
    opts: TcpOptions,
}

impl Acceptor for TcpAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        self.listener.poll_accept(cx).map(|r| tcp(r?.0, self.opts))
    }
}

#[cfg(unix)]
struct IpcAcceptor(tokio::net::UnixListener);

#[cfg(unix)]
impl Acceptor for IpcAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        self.0.poll_accept(cx).map(|r| unix(r?.0))
    }
}

/// A tokio read into a plain buffer, as futures-io reads: how many bytes came.
pub(crate) fn poll_read_slice<T: TokioRead + Unpin>(
    io: &mut T,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    Pin::new(io)
        .poll_read(cx, &mut rb)
        .map_ok(|()| rb.filled().len())
}
