//! Dialers and listeners: connect or accept, run the SP handshake, attach pipes, reconnect.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};
use sp_core::backoff::Backoff;
use sp_core::frame::FrameKind;
use sp_core::handshake::{Handshake, HandshakeError};
use sp_core::ProtocolId;

use crate::addr::Address;
use crate::error::{Error, Result};
use crate::pipe::{
    lock, run_inproc_pipe, run_stream_pipe, InprocPipe, PipeHandle, PipeOwner, StreamPipe,
};
use crate::rt::{Acceptor, BoxStream, Runtime, Sleep};
use crate::socket::{Shared, SocketCore, SocketOptions};
use crate::tls::{TlsConfig, TlsError};
use crate::ws::{self, run_ws_pipe, WsPipe};

/// Lets the socket stop one of its dialer or listener tasks.
#[derive(Default)]
pub(crate) struct EndpointCtl {
    closed: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Set for inproc listeners: the registry entry to remove on close.
    inproc_name: Mutex<Option<String>>,
}

impl EndpointCtl {
    pub(crate) fn close(self: &Arc<Self>) {
        self.closed.store(true, Ordering::Release);
        if let Some(name) = lock(&self.inproc_name).take() {
            let mut reg = lock(inproc_registry());
            if reg.get(&name).is_some_and(|e| Arc::ptr_eq(&e.ctl, self)) {
                reg.remove(&name);
            }
        }
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        *lock(&self.waker) = Some(cx.waker().clone());
        self.closed.load(Ordering::Acquire)
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Runs `fut` until it finishes or the endpoint closes (then `None`).
pub(crate) async fn unless_closed<T>(
    ctl: &EndpointCtl,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if ctl.poll_closed(cx) {
            return Poll::Ready(None);
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

pub(crate) async fn sleep_for<R: Runtime>(rt: &R, d: Duration) {
    let mut s = rt.sleep_until(Instant::now() + d);
    std::future::poll_fn(|cx| s.poll_sleep(cx)).await
}

/// Runs `fut` until it finishes or `timer` fires (then `None`).
pub(crate) async fn with_timeout<T>(
    timer: impl std::future::Future<Output = ()>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    let mut fut = std::pin::pin!(fut);
    let mut timer = std::pin::pin!(timer);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// A boxed timer future on `rt`, for code that holds no runtime type.
fn sleeper<R: Runtime>(
    rt: &R,
) -> Arc<dyn Fn(Duration) -> crate::rt::BoxFuture<'static, ()> + Send + Sync> {
    let rt = rt.clone();
    Arc::new(move |d| {
        let rt = rt.clone();
        Box::pin(async move { sleep_for(&rt, d).await })
    })
}

// ---------------------------------------------------------------------------------------------
// Stream transports (TCP, TLS, IPC; WebSocket runs on a TCP or TLS stream)

fn frame_kind(addr: &Address) -> FrameKind {
    match addr {
        Address::Ipc { .. } => FrameKind::Ipc,
        _ => FrameKind::Tcp,
    }
}

fn resolve(addr: &Address) -> Result<Vec<SocketAddr>> {
    let Some((host, port)) = addr.host_port() else {
        unreachable!("resolve is only called for tcp-based addresses")
    };
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("cannot resolve {addr}"), e))?
        .collect();
    if found.is_empty() {
        return Err(Error::io(
            format!("cannot resolve {addr}"),
            io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        ));
    }
    Ok(found)
}

async fn connect_stream<R: Runtime>(
    rt: &R,
    addr: &Address,
    opts: &SocketOptions,
) -> Result<BoxStream> {
    let map_err = |e: io::Error| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
            Error::ConnectionRefused(addr.to_string())
        }
        _ => Error::io(format!("cannot connect to {addr}"), e),
    };
    match addr {
        Address::Tcp { .. } | Address::Tls { .. } | Address::Ws { .. } => {
            let mut last = None;
            for sa in resolve(addr)? {
                match rt.connect_tcp(sa, opts.tcp_nodelay).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            Err(map_err(
                last.unwrap_or_else(|| io::Error::other("no address to try")),
            ))
        }
        Address::Ipc { path } => rt.connect_ipc(path.clone()).await.map_err(map_err),
        Address::Inproc { .. } => unreachable!("inproc has no stream"),
    }
}

/// Exchanges the 8-byte SP headers. Returns the peer's type and any bytes read past them.
///
/// On failure, also returns the IO error that ended the exchange, if one did: over TLS it may
/// say why the peer refused us (TLS 1.3 reports a refused client certificate only then).
async fn handshake<R: Runtime>(
    rt: &R,
    stream: &mut BoxStream,
    local: ProtocolId,
    timeout: Duration,
) -> std::result::Result<BytesMut, (HandshakeError, Option<io::Error>)> {
    let mut io_error = None;
    let result = handshake_inner(rt, stream, local, timeout, &mut io_error).await;
    result.map_err(|e| (e, io_error))
}

async fn handshake_inner<R: Runtime>(
    rt: &R,
    stream: &mut BoxStream,
    local: ProtocolId,
    timeout: Duration,
    io_error: &mut Option<io::Error>,
) -> std::result::Result<BytesMut, HandshakeError> {
    let mut hs = Handshake::new(local, Instant::now(), timeout);
    let out = hs.outgoing();
    let mut written = 0;
    let mut buf = [0u8; 64];
    let mut leftover = BytesMut::new();
    let mut sleep: Box<dyn Sleep> = rt.sleep_until(Instant::now() + timeout);
    std::future::poll_fn(|cx| loop {
        if let Some(result) = hs.result() {
            return Poll::Ready(result.map(|_| ()));
        }
        let mut progress = false;
        while written < out.len() {
            match Pin::new(&mut *stream).poll_write(cx, &out[written..]) {
                Poll::Ready(Ok(0)) => {
                    hs.handle_eof();
                    break;
                }
                Poll::Ready(Err(e)) => {
                    *io_error = Some(e);
                    hs.handle_eof();
                    break;
                }
                Poll::Ready(Ok(n)) => {
                    written += n;
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if hs.result().is_none() {
            // Read only what the header still needs, so no frame bytes are consumed early...
            match Pin::new(&mut *stream).poll_read(cx, &mut buf[..8]) {
                Poll::Ready(Ok(0)) => hs.handle_eof(),
                Poll::Ready(Err(e)) => {
                    *io_error = Some(e);
                    hs.handle_eof()
                }
                Poll::Ready(Ok(n)) => {
                    let used = hs.handle_bytes(&buf[..n]);
                    // ...but a peer may still have sent more in the same segment; keep it.
                    leftover.extend_from_slice(&buf[used..n]);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        if hs.result().is_some() {
            continue;
        }
        if sleep.poll_sleep(cx).is_ready() {
            hs.handle_timeout(Instant::now());
            continue;
        }
        if !progress {
            return Poll::Pending;
        }
    })
    .await?;
    // The handshake may complete before our own 8 bytes are out; finish writing them.
    std::future::poll_fn(|cx| {
        while written < out.len() {
            match Pin::new(&mut *stream).poll_write(cx, &out[written..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(Err(HandshakeError::Truncated { received: 8 }))
                }
                Poll::Ready(Ok(n)) => written += n,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    })
    .await?;
    Ok(leftover)
}

/// Handshakes `stream` and attaches it as a pipe. Returns the pipe future to run.
async fn establish<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    mut stream: BoxStream,
    addr: &Address,
    opts: &SocketOptions,
) -> Result<StreamPipe> {
    let local = PipeOwner::protocol(&**shared);
    let leftover = handshake(&shared.rt, &mut stream, local, opts.handshake_timeout)
        .await
        .map_err(|(source, io_error)| {
            match io_error.filter(|e| matches!(addr, Address::Tls { .. }) && is_tls_error(e)) {
                Some(e) => Error::Tls {
                    addr: addr.to_string(),
                    source: TlsError::from_io(e, None),
                },
                None => Error::Handshake {
                    addr: addr.to_string(),
                    source,
                },
            }
        })?;
    let peer = PipeOwner::peer_protocol(&**shared);
    let id = shared.allocate_pipe_id();
    let handle = PipeHandle::new(id);
    let owner: Arc<dyn PipeOwner> = shared.clone();
    let pipe = StreamPipe::new(
        owner,
        handle.clone(),
        stream,
        frame_kind(addr),
        opts.recv_max_size,
        leftover,
    );
    if !shared.attach(handle, peer) {
        return Err(Error::Closed);
    }
    tracing::debug!(pipe = %id, %addr, "pipe attached");
    Ok(pipe)
}

fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// The TLS configuration an endpoint at `addr` must have.
fn tls_config<'a>(opts: &'a SocketOptions, addr: &Address) -> Result<&'a TlsConfig> {
    opts.tls.as_ref().ok_or_else(|| Error::Tls {
        addr: addr.to_string(),
        source: TlsError::NotConfigured,
    })
}

/// Refuses at once a secure endpoint on a socket with no TLS configuration, instead of
/// failing every connection attempt later.
fn check_tls_configured(opts: &SocketOptions, addr: &Address) -> Result<()> {
    match addr {
        Address::Tls { .. } | Address::Ws { secure: true, .. } => {
            tls_config(opts, addr).map(|_| ())
        }
        _ => Ok(()),
    }
}

/// Runs the client side of TLS on `stream`, bounded by the handshake timeout.
async fn tls_connect<R: Runtime>(
    rt: &R,
    addr: &Address,
    opts: &SocketOptions,
    stream: BoxStream,
) -> Result<BoxStream> {
    let config = tls_config(opts, addr)?;
    let host = addr.host_port().map_or("", |(h, _)| h);
    let stream = crate::threads::into_pollable(stream);
    with_timeout(
        sleep_for(rt, opts.handshake_timeout),
        config.connect(host, stream),
    )
    .await
    .ok_or(Error::TimedOut)?
    .map_err(|source| Error::Tls {
        addr: addr.to_string(),
        source,
    })
}

// ---------------------------------------------------------------------------------------------
// Dialing

pub(crate) async fn dial<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    addr: Address,
    _synchronous: bool,
) -> Result<()> {
    let opts = shared.options();
    check_tls_configured(&opts, &addr)?;
    let ctl = Arc::new(EndpointCtl::default());
    shared.add_endpoint(ctl.clone())?;
    let first = match connect_once(&shared, &addr, &opts).await {
        Ok(first) => first,
        Err(e) => {
            ctl.close();
            return Err(e);
        }
    };
    let rt = shared.rt.clone();
    rt.spawn(Box::pin(dialer_loop(shared, addr, opts, ctl, Some(first))));
    Ok(())
}

pub(crate) fn dial_background<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    addr: Address,
) -> Result<()> {
    let opts = shared.options();
    check_tls_configured(&opts, &addr)?;
    let ctl = Arc::new(EndpointCtl::default());
    shared.add_endpoint(ctl.clone())?;
    let rt = shared.rt.clone();
    rt.spawn(Box::pin(dialer_loop(shared, addr, opts, ctl, None)));
    Ok(())
}

/// A connected, attached pipe ready to run.
enum Connected {
    Stream(StreamPipe),
    Inproc(InprocLink),
    Ws(WsPipe),
}

async fn connect_once<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    addr: &Address,
    opts: &SocketOptions,
) -> Result<Connected> {
    match addr {
        Address::Inproc { name } => inproc_connect(shared, name).map(Connected::Inproc),
        Address::Ws { secure, .. } => {
            let mut stream = connect_stream(&shared.rt, addr, opts).await?;
            if *secure {
                stream = tls_connect(&shared.rt, addr, opts, stream).await?;
            }
            let peer = PipeOwner::peer_protocol(&**shared);
            let stream = crate::threads::into_pollable(stream);
            let ws = with_timeout(
                sleep_for(&shared.rt, opts.handshake_timeout),
                ws::upgrade(addr, stream, peer, opts.recv_max_size),
            )
            .await
            .ok_or(Error::TimedOut)??;
            let owner: Arc<dyn PipeOwner> = shared.clone();
            ws::attach(owner, ws, opts.recv_max_size)
                .map(Connected::Ws)
                .ok_or(Error::Closed)
        }
        Address::Tls { .. } => {
            let stream = connect_stream(&shared.rt, addr, opts).await?;
            let stream = tls_connect(&shared.rt, addr, opts, stream).await?;
            establish(shared, stream, addr, opts)
                .await
                .map(Connected::Stream)
        }
        Address::Tcp { .. } | Address::Ipc { .. } => {
            let stream = connect_stream(&shared.rt, addr, opts).await?;
            establish(shared, stream, addr, opts)
                .await
                .map(Connected::Stream)
        }
    }
}

async fn dialer_loop<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    addr: Address,
    opts: SocketOptions,
    ctl: Arc<EndpointCtl>,
    mut connected: Option<Connected>,
) {
    let mut backoff = Backoff::new(opts.reconnect.clone(), random_u64());
    loop {
        // A pipe connected by a synchronous dial is attached already: it must run even if the
        // socket closed meanwhile, to write out what was sent and to detach properly.
        if connected.is_none() && (ctl.is_closed() || shared.is_closed()) {
            return;
        }
        let attempt = match connected.take() {
            Some(c) => Ok(c),
            None => match unless_closed(&ctl, connect_once(&shared, &addr, &opts)).await {
                Some(r) => r,
                None => return,
            },
        };
        match attempt {
            Ok(conn) => {
                backoff.reset();
                match conn {
                    Connected::Stream(pipe) => run_stream_pipe(pipe).await,
                    Connected::Inproc(link) => link.run(&shared.rt).await,
                    Connected::Ws(pipe) => run_ws_pipe(pipe).await,
                }
            }
            Err(e) => tracing::debug!(%addr, error = %e, "dial attempt failed"),
        }
        let delay = backoff.next_delay();
        if unless_closed(&ctl, sleep_for(&shared.rt, delay))
            .await
            .is_none()
        {
            return;
        }
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

// ---------------------------------------------------------------------------------------------
// Listening

pub(crate) fn listen<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    addr: Address,
) -> Result<Address> {
    let opts = shared.options();
    let ctl = Arc::new(EndpointCtl::default());
    match &addr {
        Address::Inproc { name } => {
            inproc_listen(&shared, name, ctl.clone())?;
            shared
                .add_endpoint(ctl.clone())
                .inspect_err(|_| ctl.close())?;
            Ok(addr)
        }
        Address::Tcp { .. } | Address::Tls { .. } => {
            let tls = match &addr {
                Address::Tls { .. } => Some(server_tls(&opts, &addr)?),
                _ => None,
            };
            let (local, acceptor) = bind_tcp(&shared.rt, &addr, resolve(&addr)?, &opts)?;
            let (host, port) = (local.ip().to_string(), local.port());
            let bound_addr = match addr {
                Address::Tls { .. } => Address::Tls { host, port },
                _ => Address::Tcp { host, port },
            };
            shared.add_endpoint(ctl.clone())?;
            let rt = shared.rt.clone();
            rt.spawn(Box::pin(accept_loop(
                shared,
                acceptor,
                bound_addr.clone(),
                opts,
                ctl,
                None,
                tls,
            )));
            Ok(bound_addr)
        }
        Address::Ws { secure, .. } => {
            let tls = if *secure {
                Some(server_tls(&opts, &addr)?)
            } else {
                None
            };
            let wanted = resolve(&addr)?;
            let rt = shared.rt.clone();
            let bind_addr = addr.clone();
            let bind_opts = opts.clone();
            let bind_wanted = wanted.clone();
            let params = ws::ListenParams {
                owner: shared.clone(),
                ctl: ctl.clone(),
                max_message_size: opts.recv_max_size,
                tls,
                handshake_timeout: opts.handshake_timeout,
                spawn: {
                    let rt = rt.clone();
                    Arc::new(move |fut| rt.spawn(fut))
                },
                bind: Box::new(move || bind_tcp(&rt, &bind_addr, bind_wanted, &bind_opts)),
                sleep: sleeper(&shared.rt),
            };
            shared.add_endpoint(ctl.clone())?;
            ws::listen(&addr, &wanted, params).inspect_err(|_| ctl.close())
        }
        Address::Ipc { path } => {
            let listener = bind_ipc(path, &addr)?;
            let acceptor = shared
                .rt
                .ipc_acceptor(listener)
                .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
            shared.add_endpoint(ctl.clone())?;
            let rt = shared.rt.clone();
            rt.spawn(Box::pin(accept_loop(
                shared,
                acceptor,
                addr.clone(),
                opts,
                ctl,
                SocketFile::of(path),
                None,
            )));
            Ok(addr)
        }
    }
}

/// The rustls server configuration a TLS listener at `addr` needs.
fn server_tls(opts: &SocketOptions, addr: &Address) -> Result<Arc<rustls::ServerConfig>> {
    tls_config(opts, addr)?
        .server_config()
        .map_err(|source| Error::Tls {
            addr: addr.to_string(),
            source,
        })
}

/// Binds the first of `candidates` that works. Returns the bound address and its acceptor.
fn bind_tcp<R: Runtime>(
    rt: &R,
    addr: &Address,
    candidates: Vec<SocketAddr>,
    opts: &SocketOptions,
) -> Result<(SocketAddr, Box<dyn Acceptor>)> {
    let mut last = None;
    let mut bound = None;
    for sa in candidates {
        match std::net::TcpListener::bind(sa) {
            Ok(l) => {
                bound = Some(l);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let listener = match (bound, last) {
        (Some(l), _) => l,
        (None, Some(e)) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(Error::AddressInUse(addr.to_string()))
        }
        (None, e) => {
            return Err(Error::io(
                format!("cannot listen on {addr}"),
                e.unwrap_or_else(|| io::Error::other("no address")),
            ))
        }
    };
    let local = listener
        .local_addr()
        .map_err(|e| Error::io(format!("cannot read bound address of {addr}"), e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
    let acceptor = rt
        .tcp_acceptor(listener, opts.tcp_nodelay)
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
    Ok((local, acceptor))
}

/// Binds a Unix socket, replacing a stale socket file but never a live listener's.
fn bind_ipc(path: &Path, addr: &Address) -> Result<std::os::unix::net::UnixListener> {
    use std::os::unix::net::{UnixListener, UnixStream};
    let bind = || UnixListener::bind(path);
    let listener = match bind() {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => match UnixStream::connect(path) {
            Ok(_) => return Err(Error::AddressInUse(addr.to_string())),
            // Only a socket file nobody listens on is stale; never delete anything else.
            Err(ce) if ce.kind() == io::ErrorKind::ConnectionRefused && is_socket_file(path) => {
                tracing::debug!(path = %path.display(), "removing stale ipc socket file");
                match std::fs::remove_file(path) {
                    // Gone already: its closing owner removed it meanwhile.
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(Error::io(format!("cannot remove stale socket {addr}"), e))
                    }
                    _ => {}
                }
                bind().map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?
            }
            Err(_) => return Err(Error::AddressInUse(addr.to_string())),
        },
        Err(e) => return Err(Error::io(format!("cannot listen on {addr}"), e)),
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
    Ok(listener)
}

fn is_socket_file(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

async fn accept_loop<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    mut acceptor: Box<dyn Acceptor>,
    addr: Address,
    opts: SocketOptions,
    ctl: Arc<EndpointCtl>,
    unlink_on_close: Option<SocketFile>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    loop {
        let accepted =
            unless_closed(&ctl, std::future::poll_fn(|cx| acceptor.poll_accept(cx))).await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::warn!(%addr, error = %e, "accept failed");
                // Out of descriptors and similar: back off briefly rather than spin.
                if unless_closed(&ctl, sleep_for(&shared.rt, Duration::from_millis(10)))
                    .await
                    .is_none()
                {
                    break;
                }
                continue;
            }
        };
        let shared2 = shared.clone();
        let addr2 = addr.clone();
        let opts2 = opts.clone();
        let tls = tls.clone();
        shared.rt.spawn(Box::pin(async move {
            let stream = match tls {
                // A peer that does not complete TLS in time (or at all, like a plain TCP
                // client) costs only this task.
                Some(config) => match with_timeout(
                    sleep_for(&shared2.rt, opts2.handshake_timeout),
                    crate::tls::accept(config, crate::threads::into_pollable(stream)),
                )
                .await
                {
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        tracing::info!(addr = %addr2, error = %e, "refused incoming tls connection");
                        return;
                    }
                    None => {
                        tracing::info!(addr = %addr2, "incoming tls handshake timed out");
                        return;
                    }
                },
                None => stream,
            };
            match establish(&shared2, stream, &addr2, &opts2).await {
                Ok(pipe) => run_stream_pipe(pipe).await,
                Err(e) => tracing::info!(addr = %addr2, error = %e, "refused incoming connection"),
            }
        }));
    }
    drop(acceptor);
    if let Some(file) = unlink_on_close {
        file.remove_if_unchanged();
    }
}

/// The socket file an IPC listener created, identified by inode so that closing never removes
/// a file that a newer listener has bound at the same path meanwhile.
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some(Self {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    fn remove_if_unchanged(self) {
        if Self::of(&self.path).is_some_and(|now| now.dev == self.dev && now.ino == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// inproc

struct InprocEntry {
    ctl: Arc<EndpointCtl>,
    owner: Arc<dyn PipeOwner>,
}

fn inproc_registry() -> &'static Mutex<HashMap<String, InprocEntry>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, InprocEntry>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn inproc_listen<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    name: &str,
    ctl: Arc<EndpointCtl>,
) -> Result<()> {
    let mut reg = lock(inproc_registry());
    if reg.contains_key(name) {
        return Err(Error::AddressInUse(format!("inproc://{name}")));
    }
    *lock(&ctl.inproc_name) = Some(name.to_string());
    reg.insert(
        name.to_string(),
        InprocEntry {
            ctl,
            owner: shared.clone(),
        },
    );
    Ok(())
}

/// Both halves of a new inproc connection, attached to their sockets but not yet running.
struct InprocLink {
    ours: InprocPipe,
    theirs: InprocPipe,
}

impl InprocLink {
    /// Runs the listener's half as its own task and ours inline (it ends when either closes).
    async fn run<R: Runtime>(self, rt: &R) {
        rt.spawn(Box::pin(run_inproc_pipe(self.theirs)));
        run_inproc_pipe(self.ours).await;
    }
}

fn inproc_connect<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    name: &str,
) -> Result<InprocLink> {
    let listener = {
        let reg = lock(inproc_registry());
        match reg.get(name) {
            Some(e) if !e.ctl.is_closed() && !e.owner.is_closed() => e.owner.clone(),
            _ => return Err(Error::ConnectionRefused(format!("inproc://{name}"))),
        }
    };
    let local = PipeOwner::protocol(&**shared);
    let remote = listener.protocol();
    if !local.is_valid_peer(remote) {
        return Err(Error::Handshake {
            addr: format!("inproc://{name}"),
            source: HandshakeError::IncompatiblePeer {
                local,
                peer: remote,
            },
        });
    }
    let ours_owner: Arc<dyn PipeOwner> = shared.clone();
    let ours = PipeHandle::new(ours_owner.allocate_pipe_id());
    let theirs = PipeHandle::new(listener.allocate_pipe_id());
    if !listener.attach(theirs.clone(), local) {
        return Err(Error::ConnectionRefused(format!("inproc://{name}")));
    }
    if !ours_owner.attach(ours.clone(), remote) {
        theirs.close();
        listener.pipe_closed(theirs.id);
        return Err(Error::Closed);
    }
    Ok(InprocLink {
        ours: InprocPipe {
            owner: ours_owner.clone(),
            handle: ours.clone(),
            peer_owner: listener.clone(),
            peer: theirs.clone(),
            inbox: VecDeque::new(),
        },
        theirs: InprocPipe {
            owner: listener,
            handle: theirs,
            peer_owner: ours_owner,
            peer: ours,
            inbox: VecDeque::new(),
        },
    })
}
