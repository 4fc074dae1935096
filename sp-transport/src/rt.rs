//! The small runtime traits the driver is written against.
//!
//! An adapter (sp-tokio, sp-smol) implements [`Runtime`] in roughly a hundred lines: spawning a
//! task, a resettable timer, and wrapping TCP and Unix streams as futures-io byte streams. The
//! driver ([`Socket`](crate::Socket)) never names a runtime, nor any thread.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A bidirectional byte stream (TCP, Unix socket, later TLS or WebSocket bytes).
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// A boxed [`ByteStream`].
pub type BoxStream = Box<dyn ByteStream>;

/// A bound listening socket that yields connected streams.
pub trait Acceptor: Send + 'static {
    /// Polls for the next accepted connection.
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>>;
}

/// A timer that fires at an [`Instant`] and can be re-armed.
pub trait Sleep: Send + 'static {
    /// Moves the deadline.
    fn reset(&mut self, deadline: Instant);
    /// Completes once the deadline has passed.
    fn poll_sleep(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// TCP settings applied to every connection of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOptions {
    /// Set `TCP_NODELAY` (no Nagle delay). Default: true.
    pub nodelay: bool,
    /// Set `SO_KEEPALIVE`, so the OS probes an idle peer and a dead one ends the pipe.
    /// Default: false (NNG's default).
    pub keepalive: bool,
}

impl Default for TcpOptions {
    fn default() -> Self {
        Self {
            nodelay: true,
            keepalive: false,
        }
    }
}

impl TcpOptions {
    /// Applies these settings to a connected TCP socket.
    ///
    /// # Errors
    /// The OS refused a setting.
    #[cfg(unix)]
    pub fn apply(&self, socket: &impl std::os::fd::AsFd) -> io::Result<()> {
        self.apply_to(socket2::SockRef::from(socket))
    }

    /// Applies these settings to a connected TCP socket.
    ///
    /// # Errors
    /// The OS refused a setting.
    #[cfg(windows)]
    pub fn apply(&self, socket: &impl std::os::windows::io::AsSocket) -> io::Result<()> {
        self.apply_to(socket2::SockRef::from(socket))
    }

    fn apply_to(&self, sock: socket2::SockRef<'_>) -> io::Result<()> {
        sock.set_tcp_nodelay(self.nodelay)?;
        if self.keepalive {
            sock.set_keepalive(true)?;
        }
        Ok(())
    }
}

/// The user, group and process of the peer of a Unix socket, as the OS reports them
/// (`SO_PEERCRED`). NNG's `NNG_OPT_PEER_UID`, `_GID` and `_PID`. Linux (and Android) only:
/// elsewhere, and on Windows named pipes, a pipe has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// The peer's effective user ID.
    pub uid: u32,
    /// The peer's effective group ID.
    pub gid: u32,
    /// The peer's process ID, where the OS gives it (Linux does).
    pub pid: Option<u32>,
}

impl PeerCredentials {
    /// Reads the credentials of the process at the other end of a connected Unix socket;
    /// `None` where the OS does not say.
    #[cfg(unix)]
    pub fn of(socket: &impl std::os::fd::AsFd) -> Option<Self> {
        peer_credentials(socket.as_fd())
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_credentials(fd: std::os::fd::BorrowedFd<'_>) -> Option<PeerCredentials> {
    let cred = rustix::net::sockopt::socket_peercred(fd).ok()?;
    Some(PeerCredentials {
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
        pid: u32::try_from(cred.pid.as_raw_nonzero().get()).ok(),
    })
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn peer_credentials(_fd: std::os::fd::BorrowedFd<'_>) -> Option<PeerCredentials> {
    None
}

/// What the OS tells about a new connection, captured where its type is still known (a
/// [`BoxStream`] hides it): the two addresses and, for Unix sockets, the peer's credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnInfo {
    /// Our end's address.
    pub local: Option<crate::Address>,
    /// The peer's address.
    pub remote: Option<crate::Address>,
    /// The peer process's credentials (Unix sockets on Linux only).
    pub peer_credentials: Option<PeerCredentials>,
    /// The connection's writing side, for a task that sends a reply to write it itself while
    /// the pipe's task has nothing to write, rather than wake that task for it: plain TCP and
    /// Unix streams whose adapter can write without waiting, from any task. The driver takes
    /// it out when the pipe starts and drops it when the pipe closes. Default: none.
    pub direct: Option<DirectWriter>,
    /// The connection's reading side as a task that waits to receive reads it while it polls
    /// before sleeping ([`crate::set_busy_poll_limit`]): a plain read of what the socket holds
    /// now, which asks no reactor whether it is readable. Plain TCP and Unix streams whose
    /// adapter can read so. The driver takes it out when the pipe starts. Default: none.
    pub direct_read: Option<DirectReader>,
}

/// A connection's reading side that a task may read without waiting and without the
/// reactor's readiness (see [`ConnInfo::direct_read`]). The driver reads through it only
/// while it holds the pipe's reading side, so that it and the pipe's own reads never
/// interleave.
pub trait DirectRead: Send + Sync {
    /// Reads what the connection holds now into `buf`: `Ok(0)` at the end of the stream,
    /// [`io::ErrorKind::WouldBlock`] when it holds nothing now (or cannot be read now).
    ///
    /// # Errors
    /// The connection's own read error; `WouldBlock` as above.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
}

/// A shared [`DirectRead`]; two are equal when they are the same reader.
#[derive(Clone)]
pub struct DirectReader(pub Arc<dyn DirectRead>);

impl DirectReader {
    /// Reads what the connection holds now (see [`DirectRead::try_read`]).
    ///
    /// # Errors
    /// As [`DirectRead::try_read`].
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl std::fmt::Debug for DirectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectReader")
    }
}

impl PartialEq for DirectReader {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DirectReader {}

/// A connection's writing side that any task may write to without waiting (see
/// [`ConnInfo::direct`]). The driver writes through it only while the pipe's task writes
/// nothing, so the two never write at once.
pub trait DirectWrite: Send + Sync {
    /// Writes what the connection takes of `buf` now; `None` when it takes nothing now
    /// (would block, busy, failed: the pipe's task then writes it, and meets any error).
    fn try_write(&self, buf: &[u8]) -> Option<usize>;
}

/// A shared [`DirectWrite`]; two are equal when they are the same writer.
#[derive(Clone)]
pub struct DirectWriter(pub Arc<dyn DirectWrite>);

impl DirectWriter {
    /// Writes what the connection takes of `buf` now (see [`DirectWrite::try_write`]).
    pub fn try_write(&self, buf: &[u8]) -> Option<usize> {
        self.0.try_write(buf)
    }
}

/// Checks the [`DirectWriter`] an adapter makes (`writer_for`) for one end of a loopback TCP
/// connection: the writer puts its bytes on the socket, and says "not now" (instead of
/// blocking) once the socket takes no more. For the adapters' unit tests; panics on a failed
/// check.
#[doc(hidden)]
pub fn check_direct_writer(writer_for: impl FnOnce(std::net::TcpStream) -> DirectWriter) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let writer = writer_for(ours);
    assert_eq!(writer.try_write(b"hello"), Some(5));
    let mut buf = [0u8; 5];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    // The peer reads nothing more: the socket's buffers fill and the writer gives up.
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0usize;
    while let Some(n) = writer.try_write(&chunk) {
        written += n;
        assert!(written < 1 << 30, "a full socket must refuse");
    }
    assert!(written > 0);
}

/// Checks the [`DirectReader`] an adapter makes (`reader_for`) for one end of a loopback TCP
/// connection: it says "nothing now" while the peer sent nothing, reads what the peer sent,
/// and reads 0 once the peer closed. For the adapters' unit tests; panics on a failed check.
#[doc(hidden)]
pub fn check_direct_reader(reader_for: impl FnOnce(std::net::TcpStream) -> DirectReader) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let reader = reader_for(ours);
    let mut buf = [0u8; 16];
    let empty = reader.try_read(&mut buf).unwrap_err();
    assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
    // Waits for the loopback's delivery by reading until something came, as a busy poll does.
    let read_some = |buf: &mut [u8]| loop {
        match reader.try_read(buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
            Err(e) => panic!("read failed: {e}"),
        }
    };
    peer.write_all(b"hello").unwrap();
    let n = read_some(&mut buf);
    assert_eq!(&buf[..n], b"hello");
    drop(peer);
    let end = read_some(&mut buf);
    assert_eq!(end, 0, "a closed peer reads as the end of the stream");
}

impl std::fmt::Debug for DirectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirectWriter")
    }
}

impl PartialEq for DirectWriter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for DirectWriter {}

impl ConnInfo {
    /// This description with the connection's writer and reader for other tasks (see
    /// [`ConnInfo::direct`] and [`ConnInfo::direct_read`]).
    pub fn with_direct(self, writer: DirectWriter, reader: DirectReader) -> Self {
        Self {
            direct: Some(writer),
            direct_read: Some(reader),
            ..self
        }
    }

    /// Describes a TCP connection by its two socket addresses.
    pub fn tcp(local: io::Result<SocketAddr>, remote: io::Result<SocketAddr>) -> Self {
        let addr = |sa: SocketAddr| crate::Address::Tcp {
            host: sa.ip().to_string(),
            port: sa.port(),
        };
        Self {
            local: local.ok().map(addr),
            remote: remote.ok().map(addr),
            peer_credentials: None,
            direct: None,
            direct_read: None,
        }
    }

    /// Describes a Unix-socket connection: its bound path (if any; a dialer's end has none)
    /// and the peer's credentials.
    #[cfg(unix)]
    pub fn unix(
        socket: &impl std::os::fd::AsFd,
        local: Option<&std::os::unix::net::SocketAddr>,
        remote: Option<&std::os::unix::net::SocketAddr>,
    ) -> Self {
        Self {
            local: local.and_then(unix_address),
            remote: remote.and_then(unix_address),
            peer_credentials: PeerCredentials::of(socket),
            direct: None,
            direct_read: None,
        }
    }
}

#[cfg(unix)]
fn unix_address(sa: &std::os::unix::net::SocketAddr) -> Option<crate::Address> {
    if let Some(path) = sa.as_pathname() {
        return Some(crate::Address::Ipc {
            path: path.to_path_buf(),
        });
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        if let Some(name) = sa.as_abstract_name() {
            return Some(crate::Address::Abstract {
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
    }
    None
}

/// Runs `getaddrinfo` on a short-lived thread and waits for it without blocking.
async fn resolve_on_thread(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    use std::sync::{Arc, Mutex};
    use std::task::Waker;
    type Slot = (Option<io::Result<Vec<SocketAddr>>>, Option<Waker>);
    let slot: Arc<Mutex<Slot>> = Arc::default();
    let done = slot.clone();
    std::thread::Builder::new()
        .name("sp-resolve".into())
        .spawn(move || {
            let found = (host.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect);
            let mut s = done.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = Some(found);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        })?;
    std::future::poll_fn(|cx| {
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        match s.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// A connection with what the OS told about it.
pub type Connected = (BoxStream, ConnInfo);

/// A bound IPC listener that the driver hands to [`Runtime::ipc_acceptor`]: on Unix, a bound,
/// non-blocking std `UnixListener`.
#[cfg(unix)]
pub type IpcListener = std::os::unix::net::UnixListener;
#[cfg(windows)]
pub use crate::ipc_windows::IpcListener;

/// What an adapter provides to the shared driver.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Spawns a detached task on the runtime.
    fn spawn(&self, fut: BoxFuture<'static, ()>);
    /// Creates a timer that fires at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep>;
    /// Reads the runtime's clock: the one clock of every socket on this runtime. Its timers
    /// ([`Runtime::sleep_until`]) fire by it, and the protocol cores get their `now` from it,
    /// so that a runtime with virtual time (tokio's paused clock, a simulator) drives every
    /// timeout, back-off and resend. The default is the system's monotonic clock.
    fn now(&self) -> Instant {
        Instant::now()
    }
    /// How a pipe's writer that has just written a small batch waits before it takes the next
    /// one, if this runtime can make it wait: a function that wakes a task that is running
    /// now a little later, after other work. `None` (the default): the writer takes what was
    /// queued meanwhile at once.
    ///
    /// Why: where the senders run on other threads than the pipe's task (sp-blocking's
    /// callers and workers), a writer that writes on at once finds only the two or three
    /// messages queued during its last write, and a loop of small sends costs a `writev` for
    /// every two or three messages. An executor that runs senders and writers on the same
    /// threads (tokio, smol) batches by itself: the writer runs when the sending task yields.
    fn wake_later(&self) -> Option<fn(&Waker)> {
        None
    }
    /// The runtime's budget for sends that complete at once: a function that a send polls
    /// before its attempt (every second send, for a role whose sends wait for room when a
    /// pipe's queue is full), `Pending` (with the task's wake-up arranged) when the task should
    /// yield first. `None` (the default): the socket yields itself, by waking the task during
    /// its own poll, every 32 sends of a role whose sends never wait and every 256 of the
    /// others.
    ///
    /// Why: tokio has such a budget (`tokio::task::coop`), which its own channels and I/O
    /// spend, and its yield defers the wake-up until the worker has run its other tasks; a
    /// task woken during its own poll instead wakes a parked worker to steal it, and two
    /// workers taking an inproc stream from each other cost a third of the CPU.
    fn send_budget(&self) -> Option<fn(&mut Context<'_>) -> Poll<()>> {
        None
    }
    /// How a pipe's task that has just handed a message to the one receiver waiting for it
    /// gives that receiver its turn: a function that has the running task polled again after
    /// the other tasks ready on its thread, without waking another thread to take it. `None`
    /// (the default): the task wakes itself during its poll.
    ///
    /// Why: tokio treats a task woken during its own poll as a yield and wakes a parked
    /// worker to steal it, so the pipe's task and the receiver it just woke then run on two
    /// workers and take the socket's lock from each other for every batch.
    fn defer_yield(&self) -> Option<fn(&mut Context<'_>)> {
        None
    }
    /// Whether the tasks a pipe wakes to receive run on threads of their own (sp-blocking's
    /// callers) rather than on the executor that runs the pipe's task. Default: false.
    ///
    /// Why: an inproc pipe whose delivery woke a receiver delivers on where that receiver
    /// shares the executor, since it runs after the pipe's poll anyway and then finds more to
    /// take at once. A receiver on a thread of its own runs at once, in parallel: a pipe that
    /// delivered on then took one or two messages at a time from its sender, each delivery a
    /// wake-up of that thread, so there the pipe ends its poll after waking it instead.
    fn receivers_have_own_threads(&self) -> bool {
        false
    }
    /// Whether a task that receives from a socket with one stream pipe, and finds nothing
    /// queued, polls that pipe's reading side itself when the pipe has work for its task (it
    /// was woken and has not run yet, or its peer streams). The driver does so only for a
    /// core that queues what it receives and pauses a pipe when full. Default: false.
    ///
    /// Why: on tokio the pipe's task and the receiving task hand each batch to each other,
    /// often across its two worker threads; polled by the receiving task, the pipe reads and
    /// delivers on that task's thread (see `crate::pipe_runner`).
    fn receivers_poll_pipes(&self) -> bool {
        false
    }
    /// Whether a task that receives from a socket with one plain TCP or Unix stream pipe,
    /// and finds nothing queued, reads that connection itself ([`ConnInfo::direct_read`]),
    /// yielding between reads, for up to [`busy_poll_limit`](crate::busy_poll_limit) before
    /// it waits for the runtime to wake it. The driver does so under the same conditions as
    /// [`Runtime::receivers_poll_pipes`]. Default: false.
    ///
    /// Why: a runtime that sleeps in its reactor when it has nothing to do pays the kernel's
    /// wake-up of its thread for every message of a request/reply exchange, 15–25 µs on a
    /// host slow to wake threads; a reply that comes within the limit is read at once.
    fn receivers_busy_poll(&self) -> bool {
        false
    }
    /// Resolves a host name to socket addresses without blocking the executor. The default
    /// runs the system resolver on a thread of its own for the one lookup.
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        Box::pin(resolve_on_thread(host, port))
    }
    /// Draws a random number: the seed of each socket's protocol core (request and survey
    /// ids, pipe ids) and of each dialer's back-off jitter. The default mixes the process's
    /// random hash keys with the clock; a simulator overrides it with a seeded generator so
    /// that a run replays exactly.
    fn random_u64(&self) -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(Instant::now())
    }
    /// Binds a TCP listener at `addr` and returns the address it bound (the port the OS chose
    /// for port 0) and its acceptor; `opts` apply to accepted connections. The default binds
    /// a non-blocking std listener and hands it to [`Runtime::tcp_acceptor`]; a runtime with
    /// a network of its own (a simulator) binds there instead.
    fn bind_tcp(
        &self,
        addr: SocketAddr,
        opts: TcpOptions,
    ) -> io::Result<(SocketAddr, Box<dyn Acceptor>)> {
        let listener = std::net::TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        Ok((local, self.tcp_acceptor(listener, opts)?))
    }
    /// Connects a TCP stream and applies `opts` to it.
    fn connect_tcp(
        &self,
        addr: SocketAddr,
        opts: TcpOptions,
    ) -> BoxFuture<'static, io::Result<Connected>>;
    /// Adopts a bound, non-blocking std TCP listener; `opts` apply to accepted connections.
    fn tcp_acceptor(
        &self,
        listener: std::net::TcpListener,
        opts: TcpOptions,
    ) -> io::Result<Box<dyn Acceptor>>;
    /// Connects to an IPC listener: on Unix a Unix domain stream to the socket file `path`;
    /// on Windows a named pipe, `path` being its full name (`\\.\pipe\NAME` for
    /// `ipc://NAME`). An adapter without named pipes returns
    /// [`Unsupported::NamedPipes`](crate::Unsupported::NamedPipes) there.
    fn connect_ipc(&self, path: PathBuf) -> BoxFuture<'static, io::Result<Connected>>;
    /// Adopts a bound IPC listener ([`IpcListener`]): on Unix a non-blocking std Unix
    /// listener; on Windows a named pipe's name, whose instances the adapter creates.
    fn ipc_acceptor(&self, listener: IpcListener) -> io::Result<Box<dyn Acceptor>>;
    /// Adopts a connected std TCP stream (made elsewhere: socket activation, a test) and
    /// applies `opts` to it.
    fn adopt_tcp(&self, stream: std::net::TcpStream, opts: TcpOptions) -> io::Result<Connected>;
    /// Adopts a connected std Unix stream (a socketpair, an abstract-namespace connection).
    /// Unix only: std has no such stream elsewhere.
    #[cfg(unix)]
    fn adopt_ipc(&self, stream: std::os::unix::net::UnixStream) -> io::Result<Connected>;
}
