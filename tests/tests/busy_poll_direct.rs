//! A receive that polls before it sleeps reads its connection itself. Over a connection whose
//! stream goes deaf after the SP handshake (its reads stay pending and never wake anyone, as
//! if the runtime's reactor never reported the peer's bytes), a receive gets the peer's
//! message only through that direct read; with polling off, the same receive times out.
//!
//! Its own test binary: it sets the process-wide limit (`sp_transport::set_busy_poll_limit`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_io::{AsyncRead, AsyncWrite};
use sp_core::protocol::pair::Pair;
use sp_tokio::Tokio;
use sp_transport::rt::{
    Acceptor, BoxFuture, BoxStream, Connected, IpcListener, Runtime, Sleep, TcpOptions,
};
use sp_transport::Socket;

/// The SP handshake's length: 8 bytes each way.
const HANDSHAKE: usize = 8;

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

/// tokio, except that an adopted TCP stream goes deaf after its handshake (its direct reader,
/// which reads the socket itself, stays as tokio made it).
#[derive(Clone, Default)]
struct DeafTokio(Tokio);

impl Runtime for DeafTokio {
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        self.0.spawn(fut)
    }
    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep> {
        self.0.sleep_until(deadline)
    }
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn defer_yield(&self) -> Option<fn(&mut Context<'_>)> {
        self.0.defer_yield()
    }
    fn receivers_poll_pipes(&self) -> bool {
        self.0.receivers_poll_pipes()
    }
    fn receivers_busy_poll(&self) -> bool {
        self.0.receivers_busy_poll()
    }
    fn connect_tcp(
        &self,
        addr: std::net::SocketAddr,
        opts: TcpOptions,
    ) -> BoxFuture<'static, io::Result<Connected>> {
        self.0.connect_tcp(addr, opts)
    }
    fn tcp_acceptor(
        &self,
        listener: std::net::TcpListener,
        opts: TcpOptions,
    ) -> io::Result<Box<dyn Acceptor>> {
        self.0.tcp_acceptor(listener, opts)
    }
    fn connect_ipc(&self, path: std::path::PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        self.0.connect_ipc(path)
    }
    fn ipc_acceptor(&self, listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        self.0.ipc_acceptor(listener)
    }
    fn adopt_tcp(&self, stream: std::net::TcpStream, opts: TcpOptions) -> io::Result<Connected> {
        let (inner, info) = self.0.adopt_tcp(stream, opts)?;
        let deaf = DeafAfterHandshake {
            inner,
            handshake_left: HANDSHAKE,
        };
        Ok((Box::new(deaf), info))
    }
    #[cfg(unix)]
    fn adopt_ipc(&self, stream: std::os::unix::net::UnixStream) -> io::Result<Connected> {
        self.0.adopt_ipc(stream)
    }
}

/// Our PAIR over a deaf connection to a tokio PAIR peer, which has sent one message: what
/// our receive got within `within` (`None`: nothing; the time limit dropped the receive).
async fn receive_from_a_deaf_connection(
    within: Duration,
) -> Option<sp_transport::Result<sp_transport::Message>> {
    let peer = sp_tokio::Pair::new();
    let listener = peer.listen("tcp://127.0.0.1:0").await.expect("listen");
    let sp_transport::Address::Tcp { port, .. } = listener.address() else {
        panic!("a tcp listener has a tcp address");
    };
    let ours: Socket<DeafTokio, Pair> = Socket::with_runtime(DeafTokio::default());
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    ours.adopt_tcp(conn).await.expect("adopt");
    peer.set_send_timeout(Some(Duration::from_secs(5)));
    peer.send("through the direct read").await.expect("send");
    // A time limit around the receive, not its own deadline: at its deadline a receive
    // tries once more, and that attempt must not count here.
    tokio::time::timeout(within, ours.recv()).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_reads_bytes_that_its_runtime_never_reported() {
    // Polling off: nothing reports the bytes, and the receive gets nothing. This shows the
    // connection deaf, so that the second half can pass only through the direct read.
    sp_transport::set_busy_poll_limit(Duration::ZERO);
    let deaf = receive_from_a_deaf_connection(Duration::from_millis(300)).await;
    assert!(deaf.is_none(), "got {deaf:?}");

    // Polling for up to a second: the receive reads the connection itself.
    sp_transport::set_busy_poll_limit(Duration::from_secs(1));
    let msg = receive_from_a_deaf_connection(Duration::from_secs(10))
        .await
        .expect("the direct read delivered the message")
        .expect("a message");
    assert_eq!(&msg.body[..], b"through the direct read");
    sp_transport::set_busy_poll_limit(sp_transport::DEFAULT_BUSY_POLL);
}
