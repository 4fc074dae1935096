//! tokio as sp-tokio runs it, with one property changed: a runtime for tests of driver
//! behaviour that depends on what the runtime says of itself, or on what its streams report.
//!
//! * [`TokioVariant::deaf_after_handshake`]: an adopted TCP stream reads the SP handshake
//!   and then nothing (its direct reader, which reads the socket itself, stays as tokio made
//!   it): bytes reach a receive only through a direct read.
//! * [`TokioVariant::own_thread_receivers`]: says that its receivers run on threads of their
//!   own (`Runtime::receivers_have_own_threads`), as sp-blocking's do, while everything
//!   still runs on the test's tokio runtime, in an order the test controls.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};
use sp_tokio::Tokio;
use sp_transport::rt::{
    Acceptor, BoxFuture, BoxStream, Connected, IpcListener, Runtime, Sleep, TcpOptions,
};

/// The SP handshake's length: 8 bytes each way.
const HANDSHAKE: usize = 8;

/// tokio with one property changed (see the module's docs).
#[derive(Clone, Default)]
pub struct TokioVariant {
    tokio: Tokio,
    deaf_after_handshake: bool,
    own_thread_receivers: bool,
}

impl TokioVariant {
    /// Adopted TCP streams go deaf after the handshake.
    pub fn deaf_after_handshake() -> Self {
        Self {
            deaf_after_handshake: true,
            ..Self::default()
        }
    }

    /// Receivers are said to run on threads of their own.
    pub fn own_thread_receivers() -> Self {
        Self {
            own_thread_receivers: true,
            ..Self::default()
        }
    }
}

/// A stream that reads the handshake and then nothing: every later read is pending, and its
/// waker is never woken. Writes go through.
struct DeafAfterHandshake {
    inner: BoxStream,
    handshake_left: usize,
}

impl AsyncRead for DeafAfterHandshake {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.handshake_left == 0 {
            return Poll::Pending;
        }
        let want = buf.len().min(this.handshake_left);
        let read = std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf[..want]));
        if let Ok(n) = &read {
            this.handshake_left -= n;
        }
        Poll::Ready(read)
    }
}

impl AsyncWrite for DeafAfterHandshake {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

impl Runtime for TokioVariant {
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        self.tokio.spawn(fut)
    }
    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep> {
        self.tokio.sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        self.tokio.now()
    }
    fn defer_yield(&self) -> Option<fn(&mut Context<'_>)> {
        self.tokio.defer_yield()
    }
    fn receivers_have_own_threads(&self) -> bool {
        self.own_thread_receivers
    }
    fn receivers_poll_pipes(&self) -> bool {
        self.tokio.receivers_poll_pipes()
    }
    fn receivers_busy_poll(&self) -> bool {
        self.tokio.receivers_busy_poll()
    }
    fn connect_tcp(
        &self,
        addr: std::net::SocketAddr,
        opts: TcpOptions,
    ) -> BoxFuture<'static, io::Result<Connected>> {
        self.tokio.connect_tcp(addr, opts)
    }
    fn tcp_acceptor(
        &self,
        listener: std::net::TcpListener,
        opts: TcpOptions,
    ) -> io::Result<Box<dyn Acceptor>> {
        self.tokio.tcp_acceptor(listener, opts)
    }
    fn connect_ipc(&self, path: std::path::PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        self.tokio.connect_ipc(path)
    }
    fn ipc_acceptor(&self, listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        self.tokio.ipc_acceptor(listener)
    }
    fn adopt_tcp(&self, stream: std::net::TcpStream, opts: TcpOptions) -> io::Result<Connected> {
        let (inner, info) = self.tokio.adopt_tcp(stream, opts)?;
        if !self.deaf_after_handshake {
            return Ok((inner, info));
        }
        let deaf = DeafAfterHandshake {
            inner,
            handshake_left: HANDSHAKE,
        };
        Ok((Box::new(deaf), info))
    }
    #[cfg(unix)]
    fn adopt_ipc(&self, stream: std::os::unix::net::UnixStream) -> io::Result<Connected> {
        self.tokio.adopt_ipc(stream)
    }
}
