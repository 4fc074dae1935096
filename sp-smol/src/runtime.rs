//! [`Smol`]: the runtime glue for the shared driver.
//!
//! `async_io::Async<TcpStream>` and `Async<UnixStream>` already implement the futures-io
//! traits the driver reads and writes through, vectored writes included (`write_vectored`
//! retried on `poll_writable`); the streams are handed over in a
//! [`ReadinessStream`](crate::stream::ReadinessStream), which reads only after the reactor
//! reported bytes once a read found none.
//!
//! On Windows, `ipc://` would be a named pipe, which async-io cannot wait on: `connect_ipc`
//! and `ipc_acceptor` fail there with
//! [`Unsupported::NamedPipes`](sp_transport::Unsupported::NamedPipes), which names sp-tokio.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use async_io::{Async, Timer};
use smol::Executor;
use sp_transport::rt::{
    Acceptor, BoxFuture, ConnInfo, Connected, IpcListener, Runtime, Sleep, TcpOptions,
};
#[cfg(windows)]
use sp_transport::Unsupported;

/// Runs a socket's tasks on smol: by default on smol's global executor, or on an executor the
/// caller runs.
///
/// IO readiness and timers come from async-io's reactor, which every smol executor thread (and
/// any `smol::block_on`) drives, so sockets work from any thread.
#[derive(Clone, Default)]
pub struct Smol {
    executor: Option<Arc<Executor<'static>>>,
}

impl Smol {
    /// Spawns tasks on `executor` instead of the global one. The caller must keep running it
    /// (for example `executor.run(...)` on some threads) for as long as the sockets live.
    pub fn with_executor(executor: Arc<Executor<'static>>) -> Self {
        Self {
            executor: Some(executor),
        }
    }
}

impl fmt::Debug for Smol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let executor = if self.executor.is_some() {
            "given"
        } else {
            "global"
        };
        f.debug_struct("Smol").field("executor", &executor).finish()
    }
}

impl Runtime for Smol {
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        match &self.executor {
            Some(ex) => ex.spawn(fut).detach(),
            None => smol::spawn(fut).detach(),
        }
    }

    /// A receive on a socket with one TCP or IPC pipe reads that connection itself for up
    /// to `sp_transport::busy_poll_limit` before it waits (see
    /// `Runtime::receivers_busy_poll`): smol's tcp 64 B one-way latency went from 33.6–36.6 µs
    /// to 6.5–7.7 in three interleaved rounds, its ipc latency from 30.5–31.6 to 4.4–5.1.
    fn receivers_busy_poll(&self) -> bool {
        true
    }

    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep> {
        Box::new(SmolSleep {
            timer: Timer::at(deadline),
            deadline,
        })
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { smol::net::resolve((host.as_str(), port)).await })
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

/// A connected TCP stream with `opts` applied, and what the OS says about it.
fn tcp(s: Async<TcpStream>, opts: TcpOptions) -> io::Result<Connected> {
    opts.apply(s.get_ref())?;
    let info = ConnInfo::tcp(s.get_ref().local_addr(), s.get_ref().peer_addr());
    Ok(crate::stream::connected(s, info))
}

#[cfg(windows)]
const NAMED_PIPES: Unsupported = Unsupported::NamedPipes { adapter: "sp-smol" };

/// A connected Unix stream and what the OS says about it (addresses, peer credentials).
#[cfg(unix)]
fn unix(s: Async<UnixStream>) -> io::Result<Connected> {
    let (local, remote) = (s.get_ref().local_addr().ok(), s.get_ref().peer_addr().ok());
    let info = ConnInfo::unix(s.get_ref(), local.as_ref(), remote.as_ref());
    Ok(crate::stream::connected(s, info))
}

struct SmolSleep {
    timer: Timer,
    deadline: Instant,
}

impl Sleep for SmolSleep {
    fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.timer.set_at(deadline);
    }

    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        Pin::new(&mut self.timer).poll(cx).map(|_| ())
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
    use std::time::Duration;

    use super::*;

    fn sleep_done(s: &mut Box<dyn Sleep>) -> bool {
        let once = smol::future::poll_once(std::future::poll_fn(|cx| s.poll_sleep(cx)));
        smol::future::block_on(once).is_some()
    }

    #[test]
    fn sleep_fires_stays_ready_and_resets() {
        let rt = Smol::default();
        let mut s = rt.sleep_until(Instant::now() + Duration::from_millis(20));
        assert!(!sleep_done(&mut s));
        smol::block_on(std::future::poll_fn(|cx| s.poll_sleep(cx)));
        // A fired async-io timer alone would stay pending from here on.
        assert!(sleep_done(&mut s));
        s.reset(Instant::now() + Duration::from_secs(60));
        assert!(!sleep_done(&mut s));
        s.reset(Instant::now() + Duration::from_millis(10));
        smol::block_on(std::future::poll_fn(|cx| s.poll_sleep(cx)));
    }

    #[test]
    fn streams_connect_and_carry_bytes_both_ways() {
        use smol::io::{AsyncReadExt, AsyncWriteExt};

        let rt = Smol::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut acceptor = rt.tcp_acceptor(listener, TcpOptions::default()).unwrap();
        smol::block_on(async {
            let (mut client, info) = rt.connect_tcp(addr, TcpOptions::default()).await.unwrap();
            assert_eq!(info.remote.unwrap().to_string(), format!("tcp://{addr}"));
            let (mut server, _) = std::future::poll_fn(|cx| acceptor.poll_accept(cx))
                .await
                .unwrap();
            let iov = [io::IoSlice::new(b"vec"), io::IoSlice::new(b"tored")];
            let n = client.write_vectored(&iov).await.unwrap();
            assert!(n > 0);
            client.write_all(&b"vectored"[n..]).await.unwrap();
            let mut buf = [0u8; 8];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"vectored");
            server.write_all(b"back").await.unwrap();
            let mut back = [0u8; 4];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"back");
        });
    }
}
