//! `ipc://` on Windows: named pipes through tokio's `named_pipe` module, named as NNG names
//! them (`ipc://NAME` is `\\.\pipe\NAME`; the driver passes the full name).
//!
//! A listener keeps one unconnected pipe instance waiting; when a client connects to it, the
//! next instance is created before the connected one is handed over, so that the name never
//! disappears while the listener lives. The first instance is created with
//! `first_pipe_instance`, so that a name another process serves fails at `listen`, as
//! `AddrInUse`. Only local clients are accepted (tokio's default).
//!
//! Compiled for Windows by `scripts/cross-check.sh`, never run in this project's CI.

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};
use sp_transport::rt::{Acceptor, ConnInfo, Connected, IpcListener};
use tokio::io::{AsyncRead as TokioRead, AsyncWrite as TokioWrite};
use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeServer, ServerOptions};

/// `ERROR_PIPE_BUSY`: every instance of the pipe is connected to some client right now.
const ERROR_PIPE_BUSY: i32 = 231;
/// `ERROR_ACCESS_DENIED`: what creating the first instance of a pipe that exists fails with.
const ERROR_ACCESS_DENIED: i32 = 5;
/// How often, and how far apart, a client retries a busy pipe before it gives up.
const BUSY_RETRIES: u32 = 50;
const BUSY_RETRY_DELAY: Duration = Duration::from_millis(10);

/// Connects to the named pipe `path` (`\\.\pipe\NAME`). A pipe whose instances are all busy
/// (its listener is between two connections) is retried for half a second; a missing pipe
/// fails at once with `NotFound`, which the driver reports as a refused connection.
pub(crate) async fn connect(path: PathBuf) -> io::Result<Connected> {
    let mut retries = 0;
    let client = loop {
        match ClientOptions::new().open(&path) {
            Ok(client) => break client,
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && retries < BUSY_RETRIES => {
                retries += 1;
                tokio::time::sleep(BUSY_RETRY_DELAY).await;
            }
            Err(e) => return Err(e),
        }
    };
    let info = ConnInfo::named_pipe(path.as_os_str(), false);
    Ok((Box::new(Io(client)), info))
}

/// Serves the pipe `listener` names. Must run inside the tokio runtime (the caller enters it).
pub(crate) fn acceptor(listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
    let name = listener.pipe_name().to_os_string();
    let first = create(&name, true).map_err(|e| {
        if e.raw_os_error() == Some(ERROR_ACCESS_DENIED) {
            io::Error::new(io::ErrorKind::AddrInUse, e)
        } else {
            e
        }
    })?;
    Ok(Box::new(PipeAcceptor {
        waiting: Some(wait_for_client(first)),
        name,
    }))
}

fn create(name: &OsStr, first: bool) -> io::Result<NamedPipeServer> {
    ServerOptions::new().first_pipe_instance(first).create(name)
}

type Waiting = Pin<Box<dyn Future<Output = io::Result<NamedPipeServer>> + Send>>;

/// An instance of the pipe, waiting for a client to connect to it.
fn wait_for_client(server: NamedPipeServer) -> Waiting {
    Box::pin(async move {
        server.connect().await?;
        Ok(server)
    })
}

struct PipeAcceptor {
    name: OsString,
    /// The instance waiting for a client; `None` after creating one failed (retried at the
    /// next poll, which the accept loop makes after a pause).
    waiting: Option<Waiting>,
}

impl Acceptor for PipeAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        let waiting = match &mut self.waiting {
            Some(w) => w,
            None => self
                .waiting
                .insert(wait_for_client(create(&self.name, false)?)),
        };
        let connected = ready!(waiting.as_mut().poll(cx));
        self.waiting = None;
        let server = connected?;
        // The next instance first, so that the name stays served; if that fails, the next
        // poll tries again.
        self.waiting = create(&self.name, false).ok().map(wait_for_client);
        let info = ConnInfo::named_pipe(&self.name, true);
        Poll::Ready(Ok((Box::new(Io(server)), info)))
    }
}

/// Presents a tokio named pipe as a futures-io stream, forwarding vectored writes (TCP and
/// Unix streams go in two halves instead, see `crate::split`).
pub(crate) struct Io<T>(pub(crate) T);

impl<T: TokioRead + Unpin> AsyncRead for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        crate::runtime::poll_read_slice(&mut self.get_mut().0, cx, buf)
    }
}

impl<T: TokioWrite + Unpin> AsyncWrite for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
