//! The small runtime traits the driver is written against.
//!
//! An adapter (sp-tokio, sp-smol) implements [`Runtime`] in roughly a hundred lines: spawning a
//! task, a resettable timer, and wrapping TCP and Unix streams as futures-io byte streams. The
//! driver ([`Socket`](crate::Socket)) never names a runtime. A runtime without an event loop
//! (sp-blocking) runs each task on a thread and hands its connections over as
//! [`ThreadedStream`](crate::threads::ThreadedStream)s, whose pipes [`crate::threads`] runs.

use std::any::Any;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A bidirectional byte stream (TCP, Unix socket, later TLS or WebSocket bytes).
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Returns the stream as [`Any`], so that the driver can recognise a
    /// [`ThreadedStream`](crate::threads::ThreadedStream) and run its pipe on threads.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A boxed [`ByteStream`].
pub type BoxStream = Box<dyn ByteStream>;

/// A bound listening socket that yields connected streams.
pub trait Acceptor: Send + 'static {
    /// Polls for the next accepted connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<BoxStream>>;
}

/// A timer that fires at an [`Instant`] and can be re-armed.
pub trait Sleep: Send + 'static {
    /// Moves the deadline.
    fn reset(&mut self, deadline: Instant);
    /// Completes once the deadline has passed.
    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// What an adapter provides to the shared driver.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Spawns a detached task on the runtime.
    fn spawn(&self, fut: BoxFuture<'static, ()>);
    /// Creates a timer that fires at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep>;
    /// Connects a TCP stream, with `TCP_NODELAY` set as asked.
    fn connect_tcp(
        &self,
        addr: SocketAddr,
        nodelay: bool,
    ) -> BoxFuture<'static, io::Result<BoxStream>>;
    /// Adopts a bound, non-blocking std TCP listener.
    fn tcp_acceptor(
        &self,
        listener: std::net::TcpListener,
        nodelay: bool,
    ) -> io::Result<Box<dyn Acceptor>>;
    /// Connects a Unix domain stream.
    fn connect_ipc(&self, path: PathBuf) -> BoxFuture<'static, io::Result<BoxStream>>;
    /// Adopts a bound, non-blocking std Unix listener.
    fn ipc_acceptor(
        &self,
        listener: std::os::unix::net::UnixListener,
    ) -> io::Result<Box<dyn Acceptor>>;
}
