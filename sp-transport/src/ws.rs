//! The WebSocket transport, `ws://` and `wss://` (spec 2.5), on async-tungstenite.
//!
//! * **Upgrade.** The dialer asks for the subprotocol `<server's protocol>.sp.nanomsg.org`
//!   and tungstenite refuses a reply that does not echo it. A listener answers only requests
//!   for its exact path (`404` otherwise, which dialers report as refused) that offer its own
//!   `<protocol>.sp.nanomsg.org` (`400` otherwise).
//! * **Messages.** One SP message is one binary WebSocket message, header then body; there is
//!   no SP handshake and no length prefix. A text message, or a message over the socket's
//!   receive limit, closes that connection only.
//! * **Shared ports.** Several sockets in the process may listen on one `host:port` under
//!   different paths, as NNG allows: the first listener binds the port and starts an
//!   [`HttpServer`], later ones add a route to it, and the port closes with the last route.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{self, client::IntoClientRequest};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures_util::sink::Sink;
use futures_util::stream::Stream;
use rustls::ServerConfig;
use sp_core::{Message, ProtocolId};
use tracing::Instrument;

use crate::addr::Address;
use crate::endpoint::{new_pipe_handle, unless_closed, with_timeout, EndpointCtl, Origin};
use crate::error::{Error, Result};
use crate::pipe::{end_pipe, lock, PipeEnd, PipeHandle, PipeOwner};
use crate::rt::{Acceptor, BoxFuture, BoxStream, ConnInfo};
use crate::stats::RefusalReason;

/// A connection after its upgrade.
pub(crate) type Ws = WebSocketStream<BoxStream>;

/// Rounds of read/write work in one poll before yielding to other tasks.
const POLL_BUDGET: usize = 32;
/// Messages read from the connection per delivery to the socket.
const READ_BATCH: usize = 64;
/// Largest HTTP upgrade we wait for, in time.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// `<name>.sp.nanomsg.org`, the subprotocol that names an SP socket type. A type without a
/// registered name (only possible for a custom core) is named by its number.
fn subprotocol(p: ProtocolId) -> String {
    match p.name() {
        Some(name) => format!("{name}.sp.nanomsg.org"),
        None => format!("{}.sp.nanomsg.org", p.0),
    }
}

/// How much tungstenite reads at once. It zeroes this much of its buffer before every read
/// attempt, including the many that find nothing to read, so its 128 KiB default costs more
/// than the extra reads a smaller buffer needs for large messages.
const WS_READ_BUFFER: usize = 32 * 1024;

/// The largest frame we accept (NNG's `ws:rxframe-max` default). tungstenite reserves a
/// frame's announced length as soon as it reads the header, so this bounds what a peer's
/// length field can make us allocate even when the message size is unlimited.
const WS_RX_FRAME_MAX: usize = 1 << 20;
/// The largest frame we send: bigger messages go out in continuation frames. As large as
/// NNG (and we) accept, so every message up to 1 MiB stays one frame; NNG itself sends
/// 64 KiB frames, which costs a frame header and, over TLS, a record per 64 KiB.
const WS_TX_FRAME_MAX: usize = WS_RX_FRAME_MAX;

/// tungstenite's settings for a receive limit of `max` bytes (0: unlimited messages, whose
/// frames are still bounded). A frame can never be larger than the message it belongs to.
fn ws_config(max: usize) -> WebSocketConfig {
    let (message, frame) = match max {
        0 => (None, WS_RX_FRAME_MAX),
        max => (Some(max), max.min(WS_RX_FRAME_MAX)),
    };
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(message)
        .max_frame_size(Some(frame))
}

/// Queues `payload` as one WebSocket message: a single binary frame, or a binary frame and
/// continuation frames of at most [`WS_TX_FRAME_MAX`] bytes each (slices, not copies).
fn push_frames(wire: &mut VecDeque<tungstenite::Message>, mut payload: Bytes) {
    use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use async_tungstenite::tungstenite::protocol::frame::Frame;
    if payload.len() <= WS_TX_FRAME_MAX {
        wire.push_back(tungstenite::Message::Binary(payload));
        return;
    }
    let mut opcode = OpCode::Data(Data::Binary);
    while !payload.is_empty() {
        let chunk = payload.split_to(payload.len().min(WS_TX_FRAME_MAX));
        let last = payload.is_empty();
        wire.push_back(tungstenite::Message::Frame(Frame::message(
            chunk, opcode, last,
        )));
        opcode = OpCode::Data(Data::Continue);
    }
}

// ---------------------------------------------------------------------------------------------
// Dialing

/// Runs the client side of the upgrade on a connected (and for `wss`, TLS) stream.
pub(crate) async fn upgrade(
    addr: &Address,
    stream: BoxStream,
    server_protocol: ProtocolId,
    max_message_size: usize,
) -> Result<Ws> {
    let url = addr.to_string();
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::WebSocket {
            addr: url.clone(),
            reason: e.to_string(),
        })?;
    let offered = subprotocol(server_protocol);
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&offered).expect("protocol names are ascii"),
    );
    match async_tungstenite::client_async_with_config(
        request,
        stream,
        Some(ws_config(max_message_size)),
    )
    .await
    {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) if response.status() == StatusCode::NOT_FOUND => {
            // NNG reports an unknown path as a refused connection.
            Err(Error::ConnectionRefused(url))
        }
        Err(tungstenite::Error::Http(response)) => Err(Error::WebSocket {
            addr: url,
            reason: format!(
                "the server refused the upgrade with HTTP {}{}",
                response.status(),
                if response.status() == StatusCode::BAD_REQUEST {
                    format!(" (does it run the {offered} protocol?)")
                } else {
                    String::new()
                }
            ),
        }),
        Err(tungstenite::Error::Protocol(e)) => Err(Error::WebSocket {
            addr: url,
            reason: format!("bad upgrade reply: {e} (we asked for {offered})"),
        }),
        Err(e) => Err(Error::WebSocket {
            addr: url,
            reason: e.to_string(),
        }),
    }
}

/// Attaches an upgraded connection to `owner` as the pipe `handle`; the refusal's reason if
/// the pipe hook refused it or the socket closed.
pub(crate) fn attach(
    owner: Arc<dyn PipeOwner>,
    handle: Arc<PipeHandle>,
    ws: Ws,
    max_message_size: usize,
) -> std::result::Result<WsPipe, RefusalReason> {
    owner.attach(handle.clone())?;
    Ok(WsPipe {
        owner,
        handle,
        ws,
        max_message_size,
        out: VecDeque::new(),
        wire: VecDeque::new(),
        needs_flush: false,
        paused: false,
        yield_now: false,
        inbox: VecDeque::new(),
        end: None,
    })
}

// ---------------------------------------------------------------------------------------------
// The pipe

/// One WebSocket connection carrying SP messages.
pub(crate) struct WsPipe {
    owner: Arc<dyn PipeOwner>,
    handle: Arc<PipeHandle>,
    ws: Ws,
    max_message_size: usize,
    out: VecDeque<Message>,
    /// The WebSocket frames of the message being sent.
    wire: VecDeque<tungstenite::Message>,
    needs_flush: bool,
    paused: bool,
    yield_now: bool,
    /// Messages read but not yet delivered (the core paused the pipe meanwhile).
    inbox: VecDeque<Message>,
    /// How the connection ended, reported once `inbox` is delivered.
    end: Option<PipeEnd>,
}

impl WsPipe {
    /// The pipe's tracing span.
    pub(crate) fn span(&self) -> tracing::Span {
        self.handle.info.span.clone()
    }
}

/// Runs a WebSocket pipe until it ends, then detaches it from its socket.
pub(crate) async fn run_ws_pipe(mut pipe: WsPipe) {
    let end = std::future::poll_fn(|cx| pipe.poll_run(cx)).await;
    if matches!(end, PipeEnd::Local) {
        // Best effort: start the closing handshake, never wait for the peer's answer.
        let ws = &mut pipe.ws;
        let _ = std::future::poll_fn(|cx| match Pin::new(&mut *ws).poll_close(cx) {
            Poll::Pending => Poll::Ready(Ok(())),
            ready => ready,
        })
        .await;
    }
    // Messages read but never taken by the core are lost with the pipe.
    pipe.handle.count_lost(pipe.inbox.len());
    end_pipe(&*pipe.owner, &pipe.handle, &end);
}

fn ws_end(e: tungstenite::Error) -> PipeEnd {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            PipeEnd::PeerClosed
        }
        tungstenite::Error::Io(e) => PipeEnd::Io(e),
        tungstenite::Error::Capacity(e) => PipeEnd::TooLarge(format!("message too large: {e}")),
        e => PipeEnd::Refused(e.to_string()),
    }
}

impl WsPipe {
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<PipeEnd> {
        for _ in 0..POLL_BUDGET {
            if self.handle.poll_closed(cx.waker()) {
                return Poll::Ready(PipeEnd::Local);
            }
            let wrote = match self.poll_write_side(cx) {
                Ok(p) => p,
                Err(end) => return Poll::Ready(end),
            };
            if self.handle.is_draining() {
                if self.out.is_empty()
                    && self.wire.is_empty()
                    && !self.needs_flush
                    && self.handle.poll_drained(cx.waker())
                {
                    return Poll::Ready(PipeEnd::Local);
                }
                if !wrote {
                    return Poll::Pending;
                }
                continue;
            }
            let read = match self.poll_read_side(cx) {
                Ok(p) => p,
                Err(end) => return Poll::Ready(end),
            };
            if std::mem::take(&mut self.yield_now) {
                return crate::pipe::yield_after_pause(&self.handle, cx);
            }
            if !wrote && !read {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Result<bool, PipeEnd> {
        let mut progress = false;
        loop {
            if self.wire.is_empty() {
                if self.out.is_empty() {
                    let outcome = self.handle.take_out(&mut self.out, cx.waker());
                    if outcome.was_blocked {
                        self.owner.pipe_writable(self.handle.id);
                    }
                }
                let Some(msg) = self.out.pop_front() else {
                    break;
                };
                let payload = if msg.header.is_empty() {
                    msg.body
                } else {
                    msg.to_contiguous()
                };
                push_frames(&mut self.wire, payload);
            }
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(ws_end(e)),
                Poll::Pending => return Ok(progress),
            }
            let frame = self.wire.pop_front().expect("filled above");
            Pin::new(&mut self.ws).start_send(frame).map_err(ws_end)?;
            self.needs_flush = true;
            progress = true;
        }
        if self.needs_flush {
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Err(ws_end(e)),
                Poll::Pending => {}
            }
        }
        Ok(progress)
    }

    fn poll_read_side(&mut self, cx: &mut Context<'_>) -> Result<bool, PipeEnd> {
        if self.paused {
            if !self.handle.poll_resumed(cx.waker()) {
                return Ok(false);
            }
            self.paused = false;
        }
        // Read what is ready first, then hand it over in one delivery: the socket's lock is
        // never held while tungstenite reads and parses.
        if self.inbox.is_empty() && self.end.is_none() {
            while self.inbox.len() < READ_BATCH {
                match self.poll_message(cx) {
                    Poll::Ready(Ok(m)) => self.inbox.push_back(m),
                    Poll::Ready(Err(end)) => {
                        self.end = Some(end);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        let delivered = !self.inbox.is_empty();
        if delivered {
            let inbox = &mut self.inbox;
            if !self.owner.deliver(&self.handle, &mut || inbox.pop_front()) {
                self.paused = true;
                self.yield_now = true;
            }
        }
        // A connection that ended stays open until everything read before the end is
        // delivered, as a stream pipe does.
        if self.inbox.is_empty() {
            if let Some(end) = self.end.take() {
                return Err(end);
            }
        }
        Ok(delivered)
    }

    /// The next SP message from the connection, skipping control frames (which tungstenite
    /// answers itself).
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Message, PipeEnd>> {
        loop {
            let item = match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Ready(item) => item,
                Poll::Pending => return Poll::Pending,
            };
            return Poll::Ready(match item {
                Some(Ok(tungstenite::Message::Binary(data))) => {
                    let max = self.max_message_size;
                    if max != 0 && data.len() > max {
                        Err(PipeEnd::Refused(format!(
                            "message of {} bytes exceeds the receive limit of {max}",
                            data.len()
                        )))
                    } else {
                        Ok(Message::new(data))
                    }
                }
                // NNG refuses text frames on SP sockets (close code 1003).
                Some(Ok(tungstenite::Message::Text(_))) => Err(PipeEnd::Refused(
                    "the peer sent a text message; SP messages travel in binary frames".to_owned(),
                )),
                Some(Ok(_)) => continue,
                Some(Err(e)) => Err(ws_end(e)),
                None => Err(PipeEnd::PeerClosed),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Listening

/// One socket's listener: a path on an [`HttpServer`].
struct Route {
    owner: Arc<dyn PipeOwner>,
    ctl: Arc<EndpointCtl>,
    path: String,
    max_message_size: usize,
}

/// One bound `host:port` serving WebSocket upgrades for the routes registered on it.
struct HttpServer {
    secure: bool,
    routes: Mutex<HashMap<String, Arc<Route>>>,
    ctl: Arc<EndpointCtl>,
    bound: SocketAddr,
}

fn servers() -> &'static Mutex<HashMap<SocketAddr, Arc<HttpServer>>> {
    static SERVERS: OnceLock<Mutex<HashMap<SocketAddr, Arc<HttpServer>>>> = OnceLock::new();
    SERVERS.get_or_init(Default::default)
}

impl HttpServer {
    /// The receive limit to give tungstenite: the largest any route accepts (0: unlimited).
    /// Each pipe then enforces its own socket's limit exactly.
    fn max_message_size(&self) -> usize {
        let routes = lock(&self.routes);
        if routes.values().any(|r| r.max_message_size == 0) {
            return 0;
        }
        routes
            .values()
            .map(|r| r.max_message_size)
            .max()
            .unwrap_or(1)
    }

    fn remove_route(&self, path: &str) {
        let mut routes = lock(&self.routes);
        routes.remove(path);
        if routes.is_empty() {
            let mut reg = lock(servers());
            if reg
                .get(&self.bound)
                .is_some_and(|s| std::ptr::eq(&**s, self))
            {
                reg.remove(&self.bound);
            }
            drop(reg);
            self.ctl.close();
        }
    }

    /// Checks an upgrade request: the path must be a route and the offered subprotocols must
    /// include the route's own. Returns the route and the answer's subprotocol.
    fn choose(
        &self,
        request: &Request,
    ) -> Result<(Arc<Route>, String), (StatusCode, &'static str)> {
        let refuse = |status: StatusCode, why: &'static str| (status, why);
        let path = request.uri().path();
        let route = lock(&self.routes)
            .get(path)
            .filter(|r| !r.owner.is_closed())
            .cloned()
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "no SP socket listens on this path"))?;
        let wanted = subprotocol(route.owner.protocol());
        let offered = request
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim().eq_ignore_ascii_case(&wanted));
        if !offered {
            return Err(refuse(StatusCode::BAD_REQUEST, "SP protocol mismatch"));
        }
        Ok((route, wanted))
    }
}

/// Spawns a task on a socket's runtime.
pub(crate) type Spawner = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;
/// Makes a timer future on a socket's runtime.
pub(crate) type Sleeper = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;
/// Binds a TCP port: the bound address and an acceptor for it.
pub(crate) type Binder = Box<dyn FnOnce() -> Result<(SocketAddr, Box<dyn Acceptor>)> + Send>;

/// The upgrade callback: picks the route and answers with its subprotocol, or refuses.
struct Upgrade {
    server: Arc<HttpServer>,
    chosen: Arc<Mutex<Option<Arc<Route>>>>,
}

impl tungstenite::handshake::server::Callback for Upgrade {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> std::result::Result<Response, ErrorResponse> {
        match self.server.choose(request) {
            Ok((route, proto)) => {
                response.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_str(&proto).expect("protocol names are ascii"),
                );
                *lock(&self.chosen) = Some(route);
                Ok(response)
            }
            Err((status, why)) => {
                let mut r = ErrorResponse::new(Some(why.to_owned()));
                *r.status_mut() = status;
                Err(r)
            }
        }
    }
}

/// What [`listen`] needs from the socket and its runtime, without naming either.
pub(crate) struct ListenParams {
    pub(crate) owner: Arc<dyn PipeOwner>,
    pub(crate) ctl: Arc<EndpointCtl>,
    pub(crate) max_message_size: usize,
    pub(crate) tls: Option<Arc<ServerConfig>>,
    pub(crate) handshake_timeout: Duration,
    /// Spawns a task on the listening socket's runtime.
    pub(crate) spawn: Spawner,
    /// Binds the TCP port.
    pub(crate) bind: Binder,
    /// Creates a timer future.
    pub(crate) sleep: Sleeper,
}

/// Listens on `addr` (a `ws` or `wss` address whose `host:port` resolved to `wanted`).
/// Returns the bound address.
pub(crate) fn listen(addr: &Address, wanted: &[SocketAddr], p: ListenParams) -> Result<Address> {
    let Address::Ws { path, secure, .. } = addr else {
        unreachable!("ws::listen takes ws addresses")
    };
    let route = Arc::new(Route {
        owner: p.owner.clone(),
        ctl: p.ctl.clone(),
        path: path.clone(),
        max_message_size: p.max_message_size,
    });
    // A port this process already serves: add a route to it.
    let existing = {
        let reg = lock(servers());
        wanted
            .iter()
            .filter(|a| a.port() != 0)
            .find_map(|a| reg.get(a).cloned())
    };
    let server = match existing {
        Some(server) => {
            if server.secure != *secure {
                return Err(Error::AddressInUse(format!(
                    "{addr} (the port serves {} already)",
                    if server.secure { "wss" } else { "ws" }
                )));
            }
            let mut routes = lock(&server.routes);
            if routes.get(path).is_some_and(|r| !r.owner.is_closed()) {
                return Err(Error::AddressInUse(addr.to_string()));
            }
            routes.insert(path.clone(), route);
            drop(routes);
            server
        }
        None => {
            let (bound, acceptor) = (p.bind)()?;
            let server = Arc::new(HttpServer {
                secure: *secure,
                routes: Mutex::new(HashMap::from([(path.clone(), route)])),
                ctl: EndpointCtl::internal(addr.clone()),
                bound,
            });
            lock(servers()).insert(bound, server.clone());
            (p.spawn)(Box::pin(accept_loop(
                server.clone(),
                acceptor,
                p.tls.clone(),
                p.handshake_timeout,
                p.spawn.clone(),
                p.sleep.clone(),
            )));
            server
        }
    };
    // The route leaves the server when the socket closes it (or the socket closes).
    let ctl = p.ctl.clone();
    let server2 = server.clone();
    let path2 = path.clone();
    (p.spawn)(Box::pin(async move {
        std::future::poll_fn(|cx| {
            if ctl.poll_closed(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        server2.remove_route(&path2);
    }));
    let (host, port) = (server.bound.ip().to_string(), server.bound.port());
    Ok(Address::Ws {
        host,
        port,
        path: path.clone(),
        secure: *secure,
    })
}

async fn accept_loop(
    server: Arc<HttpServer>,
    mut acceptor: Box<dyn Acceptor>,
    tls: Option<Arc<ServerConfig>>,
    handshake_timeout: Duration,
    spawn: Spawner,
    sleep: Sleeper,
) {
    loop {
        let accepted = unless_closed(
            &server.ctl,
            std::future::poll_fn(|cx| acceptor.poll_accept(cx)),
        )
        .await;
        let (stream, conn) = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::warn!(addr = %server.bound, error = %e, "accept failed");
                if unless_closed(&server.ctl, sleep(Duration::from_millis(10)))
                    .await
                    .is_none()
                {
                    break;
                }
                continue;
            }
        };
        let server = server.clone();
        let tls = tls.clone();
        let sleep = sleep.clone();
        spawn(Box::pin(async move {
            let remote = conn.remote.clone();
            if let Err(why) =
                serve(server.clone(), stream, conn, tls, handshake_timeout, sleep).await
            {
                tracing::info!(addr = %server.bound, peer = ?remote, reason = %why, "refused incoming websocket connection");
            }
        }));
    }
}

/// Runs TLS (for `wss`) and the upgrade on one accepted connection, then its pipe.
async fn serve(
    server: Arc<HttpServer>,
    stream: BoxStream,
    conn: ConnInfo,
    tls: Option<Arc<ServerConfig>>,
    handshake_timeout: Duration,
    sleep: Sleeper,
) -> std::result::Result<(), String> {
    let (stream, cert) = match tls {
        Some(config) => with_timeout(sleep(handshake_timeout), crate::tls::accept(config, stream))
            .await
            .ok_or("tls handshake timed out")?
            .map_err(|e| e.to_string())?,
        None => (stream, None),
    };
    let chosen: Arc<Mutex<Option<Arc<Route>>>> = Arc::default();
    let callback = Upgrade {
        server: server.clone(),
        chosen: chosen.clone(),
    };
    let config = ws_config(server.max_message_size());
    let ws = with_timeout(
        sleep(UPGRADE_TIMEOUT.max(handshake_timeout)),
        async_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)),
    )
    .await
    .ok_or("websocket upgrade timed out")?
    .map_err(|e| format!("websocket upgrade failed: {e}"))?;
    let route = lock(&chosen).take().ok_or("no route chosen")?;
    route.owner.accepted(&route.ctl);
    let origin = Origin {
        addr: route.ctl.url.clone(),
        endpoint: Some(route.ctl.clone()),
        dialed: false,
        conn,
        tls_peer_certificate: cert,
    };
    let handle = new_pipe_handle(&*route.owner, origin, Some(route.path.clone()));
    let pipe = attach(route.owner.clone(), handle, ws, route.max_message_size)
        .map_err(|reason| format!("pipe refused ({reason})"))?;
    let span = pipe.span();
    run_ws_pipe(pipe).instrument(span).await;
    Ok(())
}
