//! Dialers and listeners: connect or accept, run the SP handshake, attach pipes, reconnect.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use futures_io::{AsyncRead, AsyncWrite};
use sp_core::backoff::Backoff;
use sp_core::frame::FrameKind;
use sp_core::handshake::{Handshake, HandshakeError};
use sp_core::ProtocolId;

use tracing::Instrument;

use crate::addr::Address;
use crate::endpoint_handle::EndpointOptions;
use crate::error::{Error, Result};
#[cfg(windows)]
use crate::ipc_windows::{bind_ipc, ipc_path, SocketFile};
use crate::pipe::{
    lock, run_inproc_pipe, run_stream_pipe, InprocPipe, PipeEnd, PipeHandle, PipeOwner, StreamPipe,
    Turns,
};
use crate::pipe_view::{EndpointId, PipeInfo, Transport};
use crate::rt::{self, Acceptor, BoxFuture, BoxStream, ConnInfo, Runtime, Sleep, TcpOptions};
use crate::socket::{Shared, SocketCore};
use crate::stats::{EndpointStats, RefusalReason};
use crate::tls::{TlsConfig, TlsError};
use crate::ws::{self, run_ws_pipe, WsPipe};

/// One dialer's or listener's shared state: its URL, options, counters and span, and the
/// switch that stops its task. [`Dialer`](crate::Dialer) and [`Listener`](crate::Listener) are
/// handles to it.
pub(crate) struct EndpointCtl {
    pub(crate) id: EndpointId,
    pub(crate) url: Address,
    /// A dialer (true) or a listener.
    pub(crate) dialer: bool,
    closed: AtomicBool,
    started: AtomicBool,
    waker: Mutex<Option<Waker>>,
    /// Set for inproc listeners: the registry entry to remove on close.
    inproc_name: Mutex<Option<String>>,
    /// The endpoint's options; read at every connection, so changes apply to the next one.
    pub(crate) opts: Mutex<EndpointOptions>,
    /// The bound address of a started listener.
    pub(crate) bound: Mutex<Option<Address>>,
    /// What a started listener holds of the OS (its listening socket and socket file, or its
    /// route on a shared WebSocket port). [`EndpointCtl::close`] releases it before it returns,
    /// so that the address is free again at once, as after NNG's `nng_listener_close`; the
    /// accept loop may notice the close only later.
    releases: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    pub(crate) counters: EndpointCounters,
    /// Every log line of the endpoint's task and of its pipes is inside this span.
    pub(crate) span: tracing::Span,
}

/// An endpoint's counters (see [`EndpointStats`]).
#[derive(Default)]
pub(crate) struct EndpointCounters {
    pub(crate) dial_attempts: AtomicU64,
    pub(crate) dial_failures: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) pipes_attached: AtomicU64,
    pub(crate) pipes_open: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl EndpointCtl {
    pub(crate) fn new(
        url: Address,
        dialer: bool,
        opts: EndpointOptions,
        socket_span: &tracing::Span,
    ) -> Arc<Self> {
        let id = EndpointId::next();
        let span = if dialer {
            tracing::debug_span!(parent: socket_span, "dialer", id = id.0, url = %url)
        } else {
            tracing::debug_span!(parent: socket_span, "listener", id = id.0, url = %url)
        };
        Arc::new(Self {
            id,
            url,
            dialer,
            closed: AtomicBool::new(false),
            started: AtomicBool::new(false),
            waker: Mutex::new(None),
            inproc_name: Mutex::new(None),
            opts: Mutex::new(opts),
            bound: Mutex::new(None),
            releases: Mutex::new(Vec::new()),
            counters: EndpointCounters::default(),
            span,
        })
    }

    /// A control for the driver's own tasks (a shared WebSocket port), not an endpoint of any
    /// socket.
    pub(crate) fn internal(url: Address) -> Arc<Self> {
        Self::new(
            url,
            false,
            EndpointOptions::default(),
            &tracing::Span::none(),
        )
    }

    /// Marks the endpoint started; returns true if it had been started already.
    pub(crate) fn mark_started(&self) -> bool {
        self.started.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    pub(crate) fn options(&self) -> EndpointOptions {
        lock(&self.opts).clone()
    }

    pub(crate) fn stats(&self) -> EndpointStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EndpointStats {
            dial_attempts: get(&c.dial_attempts),
            dial_failures: get(&c.dial_failures),
            accepted: get(&c.accepted),
            refused: get(&c.refused),
            pipes_attached: get(&c.pipes_attached),
            pipes_open: get(&c.pipes_open),
        }
    }

    /// Stops the endpoint's task (its pipes are the socket's business; see
    /// [`EndpointHost::close_endpoint`]).
    pub(crate) fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.span.in_scope(|| tracing::debug!("endpoint closed"));
        if let Some(name) = lock(&self.inproc_name).take() {
            let mut reg = lock(inproc_registry());
            if reg.get(&name).is_some_and(|e| Arc::ptr_eq(&e.ctl, self)) {
                reg.remove(&name);
            }
        }
        let releases = std::mem::take(&mut *lock(&self.releases));
        for release in releases {
            release();
        }
        if let Some(w) = lock(&self.waker).take() {
            w.wake();
        }
    }

    /// Runs `release` when the endpoint closes (at once if it has closed already).
    pub(crate) fn on_close(&self, release: impl FnOnce() + Send + 'static) {
        let mut releases = lock(&self.releases);
        // `close` sets the flag before it takes the list: a release seen as not closed here
        // is taken and run by that `close`.
        if self.is_closed() {
            drop(releases);
            release();
        } else {
            releases.push(Box::new(release));
        }
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        *lock(&self.waker) = Some(cx.waker().clone());
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// What the endpoint handles need of their socket, without naming its runtime or protocol.
pub(crate) trait EndpointHost: Send + Sync {
    /// Starts a dialer and waits for its first connection.
    fn dial(self: Arc<Self>, ctl: Arc<EndpointCtl>) -> BoxFuture<'static, Result<()>>;
    /// Starts a dialer that connects in the background.
    fn dial_background(self: Arc<Self>, ctl: Arc<EndpointCtl>) -> Result<()>;
    /// Binds a listener and starts accepting.
    fn listen(self: Arc<Self>, ctl: Arc<EndpointCtl>) -> Result<Address>;
    /// Closes an endpoint and the pipes it made.
    fn close_endpoint(&self, ctl: &Arc<EndpointCtl>);
}

impl<R: Runtime, P: SocketCore> EndpointHost for Shared<R, P> {
    fn dial(self: Arc<Self>, ctl: Arc<EndpointCtl>) -> BoxFuture<'static, Result<()>> {
        Box::pin(dial(self, ctl))
    }

    fn dial_background(self: Arc<Self>, ctl: Arc<EndpointCtl>) -> Result<()> {
        dial_background(self, ctl)
    }

    fn listen(self: Arc<Self>, ctl: Arc<EndpointCtl>) -> Result<Address> {
        let span = ctl.span.clone();
        let _entered = span.enter();
        listen(self, ctl)
    }

    fn close_endpoint(&self, ctl: &Arc<EndpointCtl>) {
        self.remove_endpoint(ctl);
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
    let mut s = rt.sleep_until(rt.now() + d);
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

/// Resolves a listener's address. Runs on the caller's thread: a listener binds once, when
/// the application asks, never inside a pipe or dialer task.
fn resolve(addr: &Address) -> Result<Vec<SocketAddr>> {
    let Some((host, port)) = addr.host_port() else {
        unreachable!("resolve is only called for tcp-based addresses")
    };
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::io(format!("cannot resolve {addr}"), e))?
        .collect();
    found_addresses(addr, found)
}

/// Resolves a dialer's address through the runtime, so that a DNS lookup at every reconnect
/// never stalls an executor thread. An IP literal needs no lookup.
async fn resolve_for_dial<R: Runtime>(rt: &R, addr: &Address) -> Result<Vec<SocketAddr>> {
    if let Some(sa) = addr.socket_addr() {
        return Ok(vec![sa]);
    }
    let Some((host, port)) = addr.host_port() else {
        unreachable!("resolve is only called for tcp-based addresses")
    };
    let found = rt
        .resolve(host.to_string(), port)
        .await
        .map_err(|e| Error::io(format!("cannot resolve {addr}"), e))?;
    found_addresses(addr, found)
}

fn found_addresses(addr: &Address, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>> {
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
    opts: &EndpointOptions,
) -> Result<rt::Connected> {
    let map_err = |e: io::Error| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
            Error::ConnectionRefused(addr.to_string())
        }
        _ => Error::io(format!("cannot connect to {addr}"), e),
    };
    match addr {
        Address::Tcp { .. } | Address::Tls { .. } | Address::Ws { .. } => {
            let mut last = None;
            for sa in resolve_for_dial(rt, addr).await? {
                match rt.connect_tcp(sa, opts.tcp).await {
                    Ok(s) => return Ok(s),
                    Err(e) => last = Some(e),
                }
            }
            Err(map_err(
                last.unwrap_or_else(|| io::Error::other("no address to try")),
            ))
        }
        Address::Ipc { path } => rt.connect_ipc(ipc_path(path)).await.map_err(map_err),
        #[cfg(unix)]
        Address::Abstract { name } => {
            let stream = crate::unix::connect_abstract(name).map_err(map_err)?;
            rt.adopt_ipc(stream).map_err(map_err)
        }
        #[cfg(not(unix))]
        Address::Abstract { .. } => Err(Error::Unsupported {
            context: format!("cannot connect to {addr}"),
            what: crate::Unsupported::AbstractSockets,
        }),
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
    let mut hs = Handshake::new(local, rt.now(), timeout);
    let out = hs.outgoing();
    let mut written = 0;
    let mut buf = [0u8; 64];
    let mut leftover = BytesMut::new();
    let mut sleep: Box<dyn Sleep> = rt.sleep_until(rt.now() + timeout);
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
            hs.handle_timeout(rt.now());
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

/// Where a connection came from, for the pipe it becomes.
pub(crate) struct Origin {
    pub(crate) addr: Address,
    pub(crate) endpoint: Option<Arc<EndpointCtl>>,
    pub(crate) dialed: bool,
    pub(crate) conn: ConnInfo,
    pub(crate) tls_peer_certificate: Option<Vec<u8>>,
}

/// Creates the handle of a new pipe of `owner`, with its identity, what the OS told about the
/// connection, and its span (a child of its endpoint's span, or of the socket's).
pub(crate) fn new_pipe_handle(
    owner: &dyn PipeOwner,
    mut origin: Origin,
    ws_path: Option<String>,
) -> Arc<PipeHandle> {
    // The connection's writer goes to the pipe's queue, which drops it when the pipe closes
    // (kept in the pipe's description, it would hold the connection open as long as the
    // handle), and only for frames written to the connection as they are: over TLS or a
    // WebSocket, a write of our frames to the TCP stream beneath would bypass the layer.
    let direct = origin
        .conn
        .direct
        .take()
        .filter(|_| plain_stream(&origin.addr));
    // The reader, where the pipe uses it, went to the pipe itself (`establish`).
    origin.conn.direct_read = None;
    let id = owner.allocate_pipe_id();
    let parent = origin
        .endpoint
        .as_ref()
        .map_or_else(|| owner.span(), |e| e.span.clone());
    let span = match &origin.conn.remote {
        Some(remote) => tracing::debug_span!(parent: &parent, "pipe", id = %id, peer = %remote),
        None => tracing::debug_span!(parent: &parent, "pipe", id = %id),
    };
    let handle = PipeHandle::new(
        id,
        PipeInfo {
            transport: Transport::of(&origin.addr),
            endpoint: origin.endpoint,
            dialed: origin.dialed,
            conn: origin.conn,
            peer_protocol: owner.peer_protocol(),
            tls_peer_certificate: origin.tls_peer_certificate,
            ws_path,
            span,
        },
    );
    if let Some(writer) = direct {
        handle.share_writer(writer);
    }
    handle
}

/// Whether a pipe at `addr` writes and reads its frames as they are on the connection (plain
/// TCP and IPC), so that a task may write or read them there directly ([`ConnInfo::direct`],
/// [`ConnInfo::direct_read`]).
fn plain_stream(addr: &Address) -> bool {
    matches!(addr, Address::Tcp { .. } | Address::Ipc { .. })
}

/// Why a failed connection counts as refused, if it does (a refused TCP connect does not).
pub(crate) fn refusal_of(e: &Error) -> Option<RefusalReason> {
    match e {
        Error::Handshake {
            source: HandshakeError::IncompatiblePeer { .. },
            ..
        } => Some(RefusalReason::IncompatibleProtocol),
        Error::Handshake {
            source: HandshakeError::TimedOut,
            ..
        }
        | Error::TimedOut => Some(RefusalReason::HandshakeTimeout),
        Error::Handshake { .. } => Some(RefusalReason::BadHandshake),
        Error::Tls { .. } => Some(RefusalReason::Tls),
        Error::WebSocket { .. } => Some(RefusalReason::WebSocket),
        _ => None,
    }
}

/// Handshakes `stream` and attaches it as a pipe. Returns the pipe future to run.
async fn establish<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    mut stream: BoxStream,
    origin: Origin,
    opts: &EndpointOptions,
) -> Result<StreamPipe> {
    let local = PipeOwner::protocol(&**shared);
    let addr = origin.addr.clone();
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
        })
        .inspect_err(|e| {
            if let Some(reason) = refusal_of(e) {
                shared.refused(origin.endpoint.as_ref().map(|c| c.id), reason);
            }
        })?;
    // Read directly only as the pipe reads its stream: over TLS, the stream beneath is
    // not the frames' bytes.
    let direct_read = origin
        .conn
        .direct_read
        .clone()
        .filter(|_| plain_stream(&addr));
    let handle = new_pipe_handle(&**shared, origin, None);
    let owner: Arc<dyn PipeOwner> = shared.clone();
    let pipe = StreamPipe::new(
        owner,
        handle.clone(),
        stream,
        frame_kind(&addr),
        opts.recv_max_size,
        leftover,
        Turns::of(&shared.rt),
    )
    .with_direct_reader(direct_read);
    shared
        .attach(handle)
        .map_err(|reason| attach_error(reason, &addr))?;
    Ok(pipe)
}

/// The error a dial reports when the new pipe could not attach.
pub(crate) fn attach_error(reason: RefusalReason, addr: &Address) -> Error {
    match reason {
        RefusalReason::Hook => Error::PipeRefused(addr.to_string()),
        _ => Error::Closed,
    }
}

fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// The TLS configuration an endpoint at `addr` must have.
fn tls_config<'a>(opts: &'a EndpointOptions, addr: &Address) -> Result<&'a TlsConfig> {
    opts.tls.as_ref().ok_or_else(|| Error::Tls {
        addr: addr.to_string(),
        source: TlsError::NotConfigured,
    })
}

/// Refuses at once a secure endpoint with no TLS configuration, instead of failing every
/// connection attempt later.
fn check_tls_configured(opts: &EndpointOptions, addr: &Address) -> Result<()> {
    match addr {
        Address::Tls { .. } | Address::Ws { secure: true, .. } => {
            tls_config(opts, addr).map(|_| ())
        }
        _ => Ok(()),
    }
}

/// Runs the client side of TLS on `stream`, bounded by the handshake timeout. Returns the
/// TLS stream and the server's certificate.
async fn tls_connect<R: Runtime>(
    rt: &R,
    addr: &Address,
    opts: &EndpointOptions,
    stream: BoxStream,
) -> Result<(BoxStream, Option<Vec<u8>>)> {
    let config = tls_config(opts, addr)?;
    let host = addr.host_port().map_or("", |(h, _)| h);
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

/// Closes a dialer whose first attempt did not finish: it failed, or its future was dropped.
struct CloseUnlessStarted<'a, R: Runtime, P: SocketCore> {
    shared: &'a Shared<R, P>,
    ctl: &'a Arc<EndpointCtl>,
    armed: bool,
}

impl<R: Runtime, P: SocketCore> Drop for CloseUnlessStarted<'_, R, P> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.remove_endpoint(self.ctl);
        }
    }
}

pub(crate) async fn dial<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    ctl: Arc<EndpointCtl>,
) -> Result<()> {
    let opts = ctl.options();
    check_tls_configured(&opts, &ctl.url)?;
    shared.add_endpoint(ctl.clone())?;
    let mut guard = CloseUnlessStarted {
        shared: &shared,
        ctl: &ctl,
        armed: true,
    };
    let first = connect_once(&shared, &ctl, &opts)
        .instrument(ctl.span.clone())
        .await?;
    guard.armed = false;
    drop(guard);
    let rt = shared.rt.clone();
    let span = ctl.span.clone();
    rt.spawn(Box::pin(
        dialer_loop(shared, ctl, Some(first)).instrument(span),
    ));
    Ok(())
}

pub(crate) fn dial_background<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    ctl: Arc<EndpointCtl>,
) -> Result<()> {
    check_tls_configured(&ctl.options(), &ctl.url)?;
    check_platform(&ctl.url)?;
    shared.add_endpoint(ctl.clone())?;
    let rt = shared.rt.clone();
    let span = ctl.span.clone();
    rt.spawn(Box::pin(dialer_loop(shared, ctl, None).instrument(span)));
    Ok(())
}

/// Refuses at once an address that no dial can reach on this platform (`abstract://`
/// outside Linux), rather than have a background dialer retry it for ever.
fn check_platform(url: &Address) -> Result<()> {
    let linux = cfg!(any(target_os = "linux", target_os = "android"));
    if matches!(url, Address::Abstract { .. }) && !linux {
        return Err(Error::Unsupported {
            context: format!("cannot dial {url}"),
            what: crate::Unsupported::AbstractSockets,
        });
    }
    Ok(())
}

/// A connected, attached pipe ready to run.
enum Connected {
    Stream(StreamPipe),
    Inproc(InprocLink),
    Ws(WsPipe),
}

impl Connected {
    /// Runs the pipe until it ends, inside its span.
    async fn run<R: Runtime>(self, rt: &R) {
        match self {
            Connected::Stream(pipe) => {
                let span = pipe.handle.info.span.clone();
                run_stream_pipe(pipe).instrument(span).await
            }
            Connected::Inproc(link) => link.run(rt).await,
            Connected::Ws(pipe) => {
                let span = pipe.span();
                run_ws_pipe(pipe).instrument(span).await
            }
        }
    }
}

/// One connection attempt of a dialer, counted.
async fn connect_once<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    ctl: &Arc<EndpointCtl>,
    opts: &EndpointOptions,
) -> Result<Connected> {
    bump(&ctl.counters.dial_attempts);
    shared.count_dial_attempt();
    let result = connect_attempt(shared, ctl, opts).await;
    if let Err(e) = &result {
        bump(&ctl.counters.dial_failures);
        shared.count_dial_failure();
        tracing::debug!(error = %e, "dial attempt failed");
    }
    result
}

async fn connect_attempt<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    ctl: &Arc<EndpointCtl>,
    opts: &EndpointOptions,
) -> Result<Connected> {
    let addr = &ctl.url;
    let origin = |conn: ConnInfo, cert: Option<Vec<u8>>| Origin {
        addr: addr.clone(),
        endpoint: Some(ctl.clone()),
        dialed: true,
        conn,
        tls_peer_certificate: cert,
    };
    match addr {
        Address::Inproc { name } => inproc_connect(shared, name, ctl).map(Connected::Inproc),
        Address::Ws { secure, path, .. } => {
            let (mut stream, conn) = connect_stream(&shared.rt, addr, opts).await?;
            let mut cert = None;
            if *secure {
                (stream, cert) = tls_connect(&shared.rt, addr, opts, stream).await?;
            }
            let peer = PipeOwner::peer_protocol(&**shared);
            let ws = with_timeout(
                sleep_for(&shared.rt, opts.handshake_timeout),
                ws::upgrade(addr, stream, peer, opts.recv_max_size),
            )
            .await
            .ok_or(Error::TimedOut)?
            .inspect_err(|e| {
                if let Some(reason) = refusal_of(e) {
                    shared.refused(Some(ctl.id), reason);
                }
            })?;
            let owner: Arc<dyn PipeOwner> = shared.clone();
            let handle = new_pipe_handle(&*owner, origin(conn, cert), Some(path.clone()));
            ws::attach(owner, handle, ws, opts.recv_max_size)
                .map(Connected::Ws)
                .map_err(|reason| attach_error(reason, addr))
        }
        Address::Tls { .. } => {
            let (stream, conn) = connect_stream(&shared.rt, addr, opts).await?;
            let (stream, cert) = tls_connect(&shared.rt, addr, opts, stream)
                .await
                .inspect_err(|_| shared.refused(Some(ctl.id), RefusalReason::Tls))?;
            establish(shared, stream, origin(conn, cert), opts)
                .await
                .map(Connected::Stream)
        }
        Address::Tcp { .. } | Address::Ipc { .. } | Address::Abstract { .. } => {
            let (stream, conn) = connect_stream(&shared.rt, addr, opts).await?;
            establish(shared, stream, origin(conn, None), opts)
                .await
                .map(Connected::Stream)
        }
    }
}

async fn dialer_loop<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    ctl: Arc<EndpointCtl>,
    mut connected: Option<Connected>,
) {
    let mut config = ctl.options().reconnect;
    let mut backoff = Backoff::new(config.clone(), shared.rt.random_u64());
    loop {
        // A pipe connected by a synchronous dial is attached already: it must run even if the
        // socket closed meanwhile, to write out what was sent and to detach properly.
        if connected.is_none() && (ctl.is_closed() || shared.is_closed()) {
            return;
        }
        let opts = ctl.options();
        let attempt = match connected.take() {
            Some(c) => Ok(c),
            // Boxed: its states (a TLS handshake's among them) are only the dial's, and this
            // task keeps its size while the pipe runs.
            None => match unless_closed(&ctl, Box::pin(connect_once(&shared, &ctl, &opts))).await {
                Some(r) => r,
                None => return,
            },
        };
        if opts.reconnect != config {
            // The application changed the back-off: start over from its minimum.
            config = opts.reconnect.clone();
            backoff = Backoff::new(config.clone(), shared.rt.random_u64());
        }
        if let Ok(conn) = attempt {
            backoff.reset();
            conn.run(&shared.rt).await;
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

/// Attaches an upgraded WebSocket connection (from the application's own HTTP server) and
/// runs it as a pipe with no endpoint.
pub(crate) fn adopt_ws<R: Runtime, P: SocketCore, W: ws::MessageConnection>(
    shared: Arc<Shared<R, P>>,
    conn: W,
    info: ConnInfo,
    path: String,
    opts: EndpointOptions,
) -> Result<crate::Pipe> {
    // The peer's address when the server told it, as for an adopted TCP stream.
    let (host, port) = match &info.remote {
        Some(Address::Tcp { host, port }) => (host.clone(), *port),
        _ => ("adopted".into(), 0),
    };
    let addr = Address::Ws {
        host,
        port,
        path: path.clone(),
        secure: false,
    };
    let origin = Origin {
        addr: addr.clone(),
        endpoint: None,
        dialed: false,
        conn: info,
        tls_peer_certificate: None,
    };
    let owner: Arc<dyn PipeOwner> = shared.clone();
    let handle = new_pipe_handle(&*owner, origin, Some(path));
    let pipe = ws::attach(owner, handle.clone(), conn, opts.recv_max_size)
        .map_err(|reason| attach_error(reason, &addr))?;
    let span = handle.info.span.clone();
    shared
        .rt
        .spawn(Box::pin(run_ws_pipe(pipe).instrument(span)));
    Ok(crate::Pipe { handle })
}

/// Handshakes an adopted connection and runs it as a pipe with no endpoint.
pub(crate) async fn adopt<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    (stream, conn): rt::Connected,
    addr: Address,
    opts: EndpointOptions,
) -> Result<crate::Pipe> {
    let origin = Origin {
        addr,
        endpoint: None,
        dialed: false,
        conn,
        tls_peer_certificate: None,
    };
    let pipe = establish(&shared, stream, origin, &opts).await?;
    let handle = pipe.handle.clone();
    let span = handle.info.span.clone();
    shared
        .rt
        .spawn(Box::pin(run_stream_pipe(pipe).instrument(span)));
    Ok(crate::Pipe { handle })
}

// ---------------------------------------------------------------------------------------------
// Listening

pub(crate) fn listen<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    ctl: Arc<EndpointCtl>,
) -> Result<Address> {
    let opts = ctl.options();
    let addr = ctl.url.clone();
    let bound = match &addr {
        Address::Inproc { name } => {
            inproc_listen(&shared, name, ctl.clone())?;
            shared
                .add_endpoint(ctl.clone())
                .inspect_err(|_| ctl.close())?;
            addr
        }
        Address::Tcp { .. } | Address::Tls { .. } => {
            // Checked now, so that a listener without a certificate fails to start; each
            // accepted connection reads the listener's TLS again (see `accept_loop`).
            let secure = matches!(&addr, Address::Tls { .. });
            if secure {
                server_tls(&opts, &addr)?;
            }
            let (local, acceptor) = bind_tcp(&shared.rt, &addr, resolve(&addr)?, opts.tcp)?;
            let (host, port) = (local.ip().to_string(), local.port());
            let bound_addr = match addr {
                Address::Tls { .. } => Address::Tls { host, port },
                _ => Address::Tcp { host, port },
            };
            shared.add_endpoint(ctl.clone())?;
            spawn_accept_loop(
                shared,
                acceptor,
                bound_addr.clone(),
                ctl.clone(),
                None,
                secure,
            );
            bound_addr
        }
        Address::Ws { secure, .. } => {
            // Checked now, so that a listener without a certificate fails to start; each
            // accepted connection reads the TLS of the listener that opened the port again.
            let tls: Option<ws::ServerTls> = if *secure {
                server_tls(&opts, &addr)?;
                let (ctl, addr) = (ctl.clone(), addr.clone());
                Some(Arc::new(move || {
                    server_tls(&ctl.options(), &addr).map_err(|e| e.to_string())
                }))
            } else {
                None
            };
            let wanted = resolve(&addr)?;
            let rt = shared.rt.clone();
            let bind_addr = addr.clone();
            let bind_wanted = wanted.clone();
            let tcp = opts.tcp;
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
                bind: Box::new(move || bind_tcp(&rt, &bind_addr, bind_wanted, tcp)),
                sleep: sleeper(&shared.rt),
            };
            shared.add_endpoint(ctl.clone())?;
            ws::listen(&addr, &wanted, params).inspect_err(|_| ctl.close())?
        }
        Address::Ipc { path } => {
            let listener = bind_ipc(path, &addr)?;
            // Refused on Windows already by `Listener::set_ipc_permissions`.
            #[cfg(unix)]
            if let Some(mode) = opts.ipc_permissions {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| Error::io(format!("cannot set the permissions of {addr}"), e))?;
            }
            let acceptor = shared
                .rt
                .ipc_acceptor(listener)
                .map_err(|e| match e.kind() {
                    // Windows: another process owns the pipe's name.
                    io::ErrorKind::AddrInUse => Error::AddressInUse(addr.to_string()),
                    _ => Error::io(format!("cannot listen on {addr}"), e),
                })?;
            shared.add_endpoint(ctl.clone())?;
            let file = SocketFile::of(path);
            spawn_accept_loop(shared, acceptor, addr.clone(), ctl.clone(), file, false);
            addr
        }
        #[cfg(not(unix))]
        Address::Abstract { .. } => {
            return Err(Error::Unsupported {
                context: format!("cannot listen on {addr}"),
                what: crate::Unsupported::AbstractSockets,
            })
        }
        #[cfg(unix)]
        Address::Abstract { name } => {
            let listener = crate::unix::bind_abstract(name).map_err(|e| match e.kind() {
                io::ErrorKind::AddrInUse => Error::AddressInUse(addr.to_string()),
                _ => Error::io(format!("cannot listen on {addr}"), e),
            })?;
            // An empty name asks the kernel for one (autobind); report the name it chose.
            let bound = listener
                .local_addr()
                .ok()
                .and_then(|a| crate::rt::ConnInfo::unix(&listener, Some(&a), None).local)
                .unwrap_or(addr);
            let acceptor = shared
                .rt
                .ipc_acceptor(listener)
                .map_err(|e| Error::io(format!("cannot listen on {bound}"), e))?;
            shared.add_endpoint(ctl.clone())?;
            spawn_accept_loop(shared, acceptor, bound.clone(), ctl.clone(), None, false);
            bound
        }
    };
    tracing::debug!(address = %bound, "listening");
    *lock(&ctl.bound) = Some(bound.clone());
    Ok(bound)
}

fn spawn_accept_loop<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    acceptor: Box<dyn Acceptor>,
    addr: Address,
    ctl: Arc<EndpointCtl>,
    unlink_on_close: Option<SocketFile>,
    secure: bool,
) {
    let acceptor = SharedAcceptor::new(acceptor);
    let release = acceptor.clone();
    ctl.on_close(move || {
        release.close();
        if let Some(file) = unlink_on_close {
            file.remove_if_unchanged();
        }
    });
    let rt = shared.rt.clone();
    let span = ctl.span.clone();
    rt.spawn(Box::pin(
        accept_loop(shared, acceptor, addr, ctl, secure).instrument(span),
    ));
}

/// A listener's acceptor, shared by its accept loop and by the close of its endpoint, which
/// drops it (closing the listening socket) without waiting for the loop to run.
#[derive(Clone)]
pub(crate) struct SharedAcceptor(Arc<Mutex<Option<Box<dyn Acceptor>>>>);

impl SharedAcceptor {
    pub(crate) fn new(acceptor: Box<dyn Acceptor>) -> Self {
        Self(Arc::new(Mutex::new(Some(acceptor))))
    }

    /// The next accepted connection, or `None` once closed.
    pub(crate) async fn accept(&self) -> Option<io::Result<rt::Connected>> {
        std::future::poll_fn(|cx| match lock(&self.0).as_mut() {
            Some(acceptor) => acceptor.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        })
        .await
    }

    /// Closes the listening socket.
    pub(crate) fn close(&self) {
        // Dropped after the lock is released.
        let acceptor = lock(&self.0).take();
        drop(acceptor);
    }
}

/// The rustls server configuration a TLS listener at `addr` needs.
fn server_tls(opts: &EndpointOptions, addr: &Address) -> Result<Arc<rustls::ServerConfig>> {
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
    tcp: TcpOptions,
) -> Result<(SocketAddr, Box<dyn Acceptor>)> {
    let mut last = None;
    for sa in candidates {
        match rt.bind_tcp(sa, tcp) {
            Ok(bound) => return Ok(bound),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == io::ErrorKind::AddrInUse => Error::AddressInUse(addr.to_string()),
        e => Error::io(
            format!("cannot listen on {addr}"),
            e.unwrap_or_else(|| io::Error::other("no address")),
        ),
    })
}

/// Binds a Unix socket, replacing a stale socket file but never a live listener's.
#[cfg(unix)]
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

/// The path that [`Runtime::connect_ipc`] connects to for `ipc://path`: the path itself.
#[cfg(unix)]
fn ipc_path(path: &Path) -> PathBuf {
    path.to_path_buf()
}

#[cfg(unix)]
fn is_socket_file(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Accepts connections until the endpoint closes; the close releases the acceptor.
async fn accept_loop<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    acceptor: SharedAcceptor,
    addr: Address,
    ctl: Arc<EndpointCtl>,
    secure: bool,
) {
    loop {
        let accepted = unless_closed(&ctl, acceptor.accept()).await.flatten();
        let (stream, conn) = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "accept failed");
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
        shared.accepted(&ctl);
        let shared2 = shared.clone();
        let ctl2 = ctl.clone();
        let addr2 = addr.clone();
        let span = ctl.span.clone();
        shared.rt.spawn(Box::pin(
            async move {
                // Boxed and freed once done: the connection's task, which lives as long as its
                // pipe, would otherwise keep room for the largest state of the set-up (a TLS
                // handshake's), 3.5 KiB a connection (BENCHMARKS.md, "An idle pipe's own
                // buffers and task").
                let set_up = Box::pin(set_up_accepted(shared2, stream, conn, addr2, ctl2, secure));
                let pipe = set_up.await;
                if let Some(pipe) = pipe {
                    let span = pipe.handle.info.span.clone();
                    run_stream_pipe(pipe).instrument(span).await
                }
            }
            .instrument(span),
        ));
    }
}

/// Takes an accepted connection through TLS (on a secure listener) and the SP handshake to an
/// attached pipe; `None`, logged and counted, when it is refused.
async fn set_up_accepted<R: Runtime, P: SocketCore>(
    shared: Arc<Shared<R, P>>,
    stream: BoxStream,
    conn: ConnInfo,
    addr: Address,
    ctl: Arc<EndpointCtl>,
    secure: bool,
) -> Option<StreamPipe> {
    // The listener's options as they are now: a certificate set after the listener started
    // serves the connections accepted from then on.
    let opts = ctl.options();
    let tls = match secure.then(|| server_tls(&opts, &addr)).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            tracing::warn!(peer = ?conn.remote, error = %e, "refused incoming tls connection: the listener has no usable certificate");
            shared.refused(Some(ctl.id), RefusalReason::Tls);
            return None;
        }
    };
    let (stream, cert) = match tls {
        // A peer that does not complete TLS in time (or at all, like a plain TCP client)
        // costs only this task.
        Some(config) => match with_timeout(
            sleep_for(&shared.rt, opts.handshake_timeout),
            crate::tls::accept(config, stream),
        )
        .await
        {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::info!(peer = ?conn.remote, error = %e, "refused incoming tls connection");
                shared.refused(Some(ctl.id), RefusalReason::Tls);
                return None;
            }
            None => {
                tracing::info!(peer = ?conn.remote, "incoming tls handshake timed out");
                shared.refused(Some(ctl.id), RefusalReason::HandshakeTimeout);
                return None;
            }
        },
        None => (stream, None),
    };
    let remote = conn.remote.clone();
    let origin = Origin {
        addr,
        endpoint: Some(ctl),
        dialed: false,
        conn,
        tls_peer_certificate: cert,
    };
    establish(&shared, stream, origin, &opts)
        .await
        .inspect_err(|e| tracing::info!(peer = ?remote, error = %e, "refused incoming connection"))
        .ok()
}

/// The socket file an IPC listener created, identified by inode so that closing never removes
/// a file that a newer listener has bound at the same path meanwhile.
#[cfg(unix)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

#[cfg(unix)]
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
        let theirs = self.theirs.handle.info.span.clone();
        rt.spawn(Box::pin(run_inproc_pipe(self.theirs).instrument(theirs)));
        let ours = self.ours.handle.info.span.clone();
        run_inproc_pipe(self.ours).instrument(ours).await;
    }
}

fn inproc_connect<R: Runtime, P: SocketCore>(
    shared: &Arc<Shared<R, P>>,
    name: &str,
    ctl: &Arc<EndpointCtl>,
) -> Result<InprocLink> {
    let url = || format!("inproc://{name}");
    let (listener, listener_ctl) = {
        let reg = lock(inproc_registry());
        match reg.get(name) {
            Some(e) if !e.ctl.is_closed() && !e.owner.is_closed() => {
                (e.owner.clone(), e.ctl.clone())
            }
            _ => return Err(Error::ConnectionRefused(url())),
        }
    };
    let local = PipeOwner::protocol(&**shared);
    let remote = listener.protocol();
    if !local.is_valid_peer(remote) {
        let e = Error::Handshake {
            addr: url(),
            source: HandshakeError::IncompatiblePeer {
                local,
                peer: remote,
            },
        };
        shared.refused(Some(ctl.id), RefusalReason::IncompatibleProtocol);
        listener.refused(Some(listener_ctl.id), RefusalReason::IncompatibleProtocol);
        return Err(e);
    }
    let addr = Address::Inproc {
        name: name.to_string(),
    };
    let conn = ConnInfo {
        local: Some(addr.clone()),
        remote: Some(addr.clone()),
        peer_credentials: None,
        direct: None,
        direct_read: None,
    };
    let ours_owner: Arc<dyn PipeOwner> = shared.clone();
    let origin = |endpoint, dialed| Origin {
        addr: addr.clone(),
        endpoint: Some(endpoint),
        dialed,
        conn: conn.clone(),
        tls_peer_certificate: None,
    };
    let ours = new_pipe_handle(&*ours_owner, origin(ctl.clone(), true), None);
    let theirs = new_pipe_handle(&*listener, origin(listener_ctl, false), None);
    if listener.attach(theirs.clone()).is_err() {
        return Err(Error::ConnectionRefused(url()));
    }
    if let Err(reason) = ours_owner.attach(ours.clone()) {
        theirs.close();
        listener.pipe_closed(theirs.id, &PipeEnd::PeerClosed);
        return Err(attach_error(reason, &addr));
    }
    Ok(InprocLink {
        ours: InprocPipe::new(
            ours_owner.clone(),
            ours.clone(),
            listener.clone(),
            theirs.clone(),
        ),
        theirs: InprocPipe::new(listener, theirs, ours_owner, ours),
    })
}
