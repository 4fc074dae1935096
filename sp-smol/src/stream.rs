//! A connection whose reads wait for the reactor once several in a row found nothing.
//!
//! `Async<T>`'s own `poll_read` always tries the read first and asks the reactor only after
//! `EWOULDBLOCK`. The driver's pipe task polls its stream's read side each time it runs, and
//! on a sending pipe it runs for every batch of messages the application queues: a 64 B
//! throughput sender made 125,000 `recvfrom` calls that found nothing for 62,500 writes. Here,
//! once [`IDLE_AFTER_EMPTY_READS`] reads in a row found nothing, the next read is tried only
//! after the reactor has reported the connection readable (a check under async-io's lock, not
//! a system call), as tokio's streams do.
//!
//! The stream shares its socket with a [`SmolDirect`] writer, through which a task that sends
//! a reply writes it itself while the pipe's task has nothing to write
//! (`sp_transport::rt::ConnInfo::direct`), and a receiving task that polls before it sleeps
//! reads it (`ConnInfo::direct_read`).

use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};
use sp_transport::rt::{ConnInfo, Connected, DirectRead, DirectReader, DirectWrite, DirectWriter};

/// How many reads in a row must find nothing before the stream waits for the reactor's report.
///
/// A receiver that caught up with its peer finds nothing once, and its next poll usually finds
/// the next bytes already there, before the reactor has reported them: reading then saves a
/// turn of the reactor. A sending pipe, whose peer sends nothing, finds nothing every time.
const IDLE_AFTER_EMPTY_READS: u8 = 2;

/// A connection as its pipe reads and writes it, with the writer and reader that the
/// pipe's senders and receivers share with it.
pub(crate) fn connected<T>(io: Async<T>, info: ConnInfo) -> Connected
where
    T: Send + Sync + Unpin + 'static,
    for<'a> &'a T: Read + Write,
{
    let stream = ReadinessStream::new(io);
    let info = info.with_direct(stream.direct_writer(), stream.direct_reader());
    (Box::new(stream), info)
}

/// An `Async<T>` stream that reads only when it may have bytes (module docs).
pub(crate) struct ReadinessStream<T> {
    io: Arc<Async<T>>,
    /// How many reads in a row found nothing.
    empty_reads: u8,
}

impl<T> ReadinessStream<T> {
    pub(crate) fn new(io: Async<T>) -> Self {
        Self {
            io: Arc::new(io),
            empty_reads: 0,
        }
    }
}

impl<T> ReadinessStream<T>
where
    T: Send + Sync + 'static,
    for<'a> &'a T: Write,
{
    /// The writer that the pipe's senders share with this stream (see [`SmolDirect`]).
    pub(crate) fn direct_writer(&self) -> DirectWriter {
        DirectWriter(Arc::new(SmolDirect(self.io.clone())))
    }
}

impl<T> ReadinessStream<T>
where
    T: Send + Sync + 'static,
    for<'a> &'a T: Read,
{
    /// The reader through which a receiving task that polls before it sleeps reads this
    /// stream's socket (see [`SmolDirect`]).
    pub(crate) fn direct_reader(&self) -> DirectReader {
        DirectReader(Arc::new(SmolDirect(self.io.clone())))
    }
}

/// A connection's socket as the tasks sending on its pipe write to it: a plain non-blocking
/// write of what the socket takes now, from any task and any thread.
///
/// No lock: the driver writes through it only while the pipe's task writes nothing (under the
/// pipe queue's lock, see `sp_transport::rt::DirectWrite`), and both write through shared
/// references to the same socket, as `Async<T>` allows.
///
/// Why: a reply queued for the pipe's task cost a wake-up of that task before its write, and
/// where the sending task runs on another thread than the pipe's (an application in
/// `smol::block_on`, its sockets' tasks on smol's executor) a wake-up of that thread too.
pub(crate) struct SmolDirect<T>(Arc<Async<T>>);

impl<T> DirectWrite for SmolDirect<T>
where
    T: Send + Sync,
    for<'a> &'a T: Write,
{
    fn try_write(&self, buf: &[u8]) -> Option<usize> {
        // `Async::new` made the socket non-blocking: a full one says `WouldBlock`, and the
        // pipe's task writes the rest (and meets any error).
        self.0.get_ref().write(buf).ok().filter(|&n| n > 0)
    }
}

impl<T> DirectRead for SmolDirect<T>
where
    T: Send + Sync,
    for<'a> &'a T: Read,
{
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // Non-blocking, as for writes: an empty socket says `WouldBlock`. The stream's own
        // reads, which this bypasses, go on as before: a read of theirs that finds nothing
        // waits for the reactor.
        self.0.get_ref().read(buf)
    }
}

impl<T> AsyncRead for ReadinessStream<T>
where
    T: Unpin,
    for<'a> &'a T: Read,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.empty_reads >= IDLE_AFTER_EMPTY_READS {
            // Idle: registers `cx` with the reactor, ready once it saw the connection readable.
            ready!(this.io.poll_readable(cx))?;
        }
        // async-io's read: on `EWOULDBLOCK` it registers `cx` with the reactor.
        let out = Pin::new(&mut &*this.io).poll_read(cx, buf);
        this.empty_reads = match out {
            Poll::Pending => this.empty_reads.saturating_add(1),
            Poll::Ready(_) => 0,
        };
        out
    }
}

impl<T> AsyncWrite for ReadinessStream<T>
where
    T: Unpin,
    for<'a> &'a T: Write,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.get_mut().io).poll_close(cx)
    }
}

// The test stream borrows its socket's file descriptor for async-io: Unix only.
#[cfg(all(test, unix))]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsFd, BorrowedFd};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_io::AsyncRead;

    use super::*;

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

    /// Once reads found nothing, polls make no read until the reactor reports the connection
    /// readable; the bytes then arrive.
    #[test]
    fn an_idle_stream_waits_for_the_reactor_and_then_reads() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut theirs, _) = listener.accept().unwrap();
        let ours = CountingReads {
            stream: ours,
            reads: AtomicUsize::new(0),
        };
        let mut stream = ReadinessStream::new(Async::new(ours).unwrap());
        let reads =
            |s: &ReadinessStream<CountingReads>| s.io.get_ref().reads.load(Ordering::Relaxed);
        let mut buf = [0u8; 8];
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..IDLE_AFTER_EMPTY_READS {
            assert!(Pin::new(&mut stream)
                .poll_read(&mut cx, &mut buf)
                .is_pending());
        }
        assert_eq!(stream.empty_reads, IDLE_AFTER_EMPTY_READS, "idle now");
        let idle = reads(&stream);
        // Nothing was sent, so the reactor has nothing to report: no read is made.
        for _ in 0..3 {
            assert!(Pin::new(&mut stream)
                .poll_read(&mut cx, &mut buf)
                .is_pending());
        }
        assert_eq!(reads(&stream), idle, "an idle stream does not read");
        theirs.write_all(b"hello").unwrap();
        let n = async_io::block_on(read_some(&mut stream, &mut buf)).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert!(reads(&stream) > idle);
        assert_eq!(
            stream.empty_reads, 0,
            "a read that got bytes ends the idle spell"
        );
    }

    /// The senders' writer puts its bytes on the stream's socket, and says "not now" (instead
    /// of blocking) once the socket takes no more.
    #[test]
    fn the_direct_writer_writes_to_the_streams_socket_without_blocking() {
        sp_transport::rt::check_direct_writer(|ours| {
            ReadinessStream::new(Async::new(ours).unwrap()).direct_writer()
        });
    }

    /// The receivers' reader reads the stream's socket without waiting for the reactor.
    #[test]
    fn the_direct_reader_reads_the_streams_socket_without_waiting() {
        sp_transport::rt::check_direct_reader(|ours| {
            ReadinessStream::new(Async::new(ours).unwrap()).direct_reader()
        });
    }

    async fn read_some<T>(s: &mut ReadinessStream<T>, buf: &mut [u8]) -> io::Result<usize>
    where
        T: Unpin,
        for<'a> &'a T: Read,
    {
        std::future::poll_fn(|cx| Pin::new(&mut *s).poll_read(cx, buf)).await
    }
}
