//! TCP and Unix streams in two halves: the pipe's task reads its half alone, and shares the
//! writing half with the tasks that send on the pipe, so that a task sending a reply can
//! write it itself (`sp_transport::rt::ConnInfo::direct`), and with a receiving task that
//! reads the socket while it polls before it sleeps (`ConnInfo::direct_read`).

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};
use sp_transport::rt::{
    BoxStream, ConnInfo, Connected, DirectRead, DirectReader, DirectWrite, DirectWriter,
};
use tokio::io::{AsyncRead as TokioRead, AsyncWrite as TokioWrite};

/// A writing half that can write, and read its socket, without waiting and without a waker:
/// tokio's TCP and Unix halves both can.
pub(crate) trait WriteNow: TokioWrite + Send + Unpin + 'static {
    fn write_now(&self, buf: &[u8]) -> io::Result<usize>;
    /// Reads the socket beneath with a plain non-blocking read, without asking tokio's
    /// reactor whether it is readable: tokio's own `try_read` reads only once the reactor has
    /// reported readiness, and a receive that polls before it sleeps reads before that
    /// (`sp_transport::rt::ConnInfo::direct_read`). tokio tolerates reads behind its back: a
    /// later read of its own that finds nothing clears the readiness it recorded.
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize>;
}

impl WriteNow for tokio::net::tcp::OwnedWriteHalf {
    fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_write(buf)
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        let stream: &tokio::net::TcpStream = self.as_ref();
        (&*socket2::SockRef::from(stream)).read(buf)
    }
}

#[cfg(unix)]
impl WriteNow for tokio::net::unix::OwnedWriteHalf {
    fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_write(buf)
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        let stream: &tokio::net::UnixStream = self.as_ref();
        (&*socket2::SockRef::from(stream)).read(buf)
    }
}

/// Joins a connection's two halves into the stream its pipe's task reads and writes, and
/// adds to `info` the writer that its senders share.
pub(crate) fn connected<R, W>((read, write): (R, W), info: ConnInfo) -> Connected
where
    R: TokioRead + Send + Unpin + 'static,
    W: WriteNow,
{
    let write = Arc::new(Mutex::new(write));
    let stream: BoxStream = Box::new(Halves {
        read,
        write: write.clone(),
    });
    let half = Arc::new(SharedHalf(write));
    let info = info.with_direct(DirectWriter(half.clone()), DirectReader(half));
    (stream, info)
}

/// The pipe's view of a connection: the reading half unshared (a read takes no lock), the
/// writing half behind the lock it shares with [`SharedHalf`].
struct Halves<R, W> {
    read: R,
    write: Arc<Mutex<W>>,
}

/// The writing half as the senders see it.
struct SharedHalf<W>(Arc<Mutex<W>>);

fn lock<W>(half: &Mutex<W>) -> MutexGuard<'_, W> {
    // A panic while writing leaves nothing half-changed in the half itself: carry on.
    half.lock().unwrap_or_else(|e| e.into_inner())
}

impl<W: WriteNow> DirectWrite for SharedHalf<W> {
    fn try_write(&self, buf: &[u8]) -> Option<usize> {
        // The pipe's task holds the lock only while it writes, and the driver writes here
        // only while that task writes nothing: a lock found held means "not now".
        let half = self.0.try_lock().ok()?;
        half.write_now(buf).ok().filter(|&n| n > 0)
    }
}

impl<W: WriteNow> DirectRead for SharedHalf<W> {
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // The socket is reached through the writing half's lock; held (a write under way),
        // it says "nothing now", and the reader tries again on its next poll.
        let half = self.0.try_lock().map_err(|_| io::ErrorKind::WouldBlock)?;
        half.read_now(buf)
    }
}

impl<R: TokioRead + Unpin, W> AsyncRead for Halves<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        crate::runtime::poll_read_slice(&mut self.get_mut().read, cx, buf)
    }
}

impl<R: Unpin, W: WriteNow> AsyncWrite for Halves<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *lock(&self.write)).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *lock(&self.write)).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(&self.write)).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *lock(&self.write)).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receivers' reader reads the socket before tokio's reactor has reported it
    /// readable (nothing here ever runs the reactor).
    #[test]
    fn the_direct_reader_reads_the_socket_without_the_reactor() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _entered = rt.enter();
        sp_transport::rt::check_direct_reader(|ours| {
            ours.set_nonblocking(true).unwrap();
            let ours = tokio::net::TcpStream::from_std(ours).unwrap();
            let (_stream, info) = connected(ours.into_split(), ConnInfo::default());
            info.direct_read
                .expect("a TCP connection has a direct reader")
        });
    }
}
