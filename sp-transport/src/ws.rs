//! The WebSocket transport, `ws://` and `wss://` (spec 2.5), on async-tungstenite.
//!
//! * **Upgrade.** The dialer asks for the subprotocol `<server's protocol>.sp.nanomsg.org`
//!   and tungstenite refuses a reply that does not echo it. A listener answers only requests
//!   for its exact path (`404` otherwise, which dialers report as refused) from an origin its
//!   [`OriginPolicy`] admits (`403` otherwise: browsers let any page connect anywhere) that
//!   offer its own `<protocol>.sp.nanomsg.org` (`400` otherwise).
//! * **Plain HTTP.** A request that is not an upgrade gets the listener's
//!   [`HttpHandler`](crate::HttpHandler) answer (a page and its assets on the same port), or
//!   `426 Upgrade Required` saying what the port is for.
//! * **Messages.** One SP message is one binary WebSocket message, header then body; there is
//!   no SP handshake and no length prefix. A text message, or a message over the socket's
//!   receive limit, closes that connection only.
//! * **Close codes.** Our side closes with a code and a short reason, which a browser shows in
//!   its `CloseEvent` (without them it reports 1005): 1000 when only the pipe closes, 1001
//!   when its socket or listener closes, 1003 for a text message, 1009 for a message over the
//!   receive limit, 1002 for another protocol violation. A peer's close (a browser's 1000 or
//!   1001 when its page goes away) ends the pipe as an ordinary peer close.
//! * **Bring your own server.** An application that runs its own HTTP server checks and
//!   answers the upgrade with [`answer_upgrade`] and hands the upgraded connection (any
//!   [`MessageConnection`]) to [`Socket::adopt_ws`](crate::Socket::adopt_ws).
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
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{self, client::IntoClientRequest};
use async_tungstenite::WebSocketStream;
use bytes::Bytes;
use futures_util::sink::Sink;
use futures_util::stream::Stream;
use rustls::ServerConfig;
use sp_core::{Message, ProtocolId};
use tracing::Instrument;

use crate::addr::Address;
use crate::endpoint::{
    new_pipe_handle, unless_closed, with_timeout, EndpointCtl, Origin, SharedAcceptor,
};
use crate::error::{Error, Result};
use crate::pipe::{end_pipe, lock, PipeEnd, PipeHandle, PipeOwner};
use crate::rt::{Acceptor, BoxFuture, BoxStream, ConnInfo};
use crate::stats::RefusalReason;

/// A connection after its upgrade.
pub(crate) type Ws = WebSocketStream<BoxStream>;

/// An ordered, reliable, message-oriented connection that can carry SP messages: one SP
/// message per binary [`tungstenite::Message`]. Every [`WebSocketStream`] is one (whatever
/// HTTP server ran its upgrade), and so is anything else that speaks tungstenite's messages
/// (an adapter over another framework's WebSocket type, a test double).
///
/// Implemented for every type with the right `Stream` and `Sink` sides; hand one to
/// [`Socket::adopt_ws`](crate::Socket::adopt_ws).
pub trait MessageConnection:
    Stream<Item = std::result::Result<tungstenite::Message, tungstenite::Error>>
    + Sink<tungstenite::Message, Error = tungstenite::Error>
    + Send
    + Unpin
    + 'static
{
}

impl<T> MessageConnection for T where
    T: Stream<Item = std::result::Result<tungstenite::Message, tungstenite::Error>>
        + Sink<tungstenite::Message, Error = tungstenite::Error>
        + Send
        + Unpin
        + 'static
{
}

/// Rounds of read/write work in one poll before yielding to other tasks.
const POLL_BUDGET: usize = 32;
/// Messages read from the connection per delivery to the socket.
const READ_BATCH: usize = 64;
/// Largest HTTP upgrade we wait for, in time.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// `<name>.sp.nanomsg.org`, the subprotocol that names an SP socket type. A type without a
/// registered name (only possible for a custom core) is named by its number.
pub(crate) fn subprotocol(p: ProtocolId) -> String {
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
pub(crate) fn ws_config(max: usize) -> WebSocketConfig {
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
pub(crate) fn attach<W: MessageConnection>(
    owner: Arc<dyn PipeOwner>,
    handle: Arc<PipeHandle>,
    ws: W,
    max_message_size: usize,
) -> std::result::Result<WsPipe<W>, RefusalReason> {
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
        wait_for_bytes: false,
        inbox: VecDeque::new(),
        end: None,
        sent_text: false,
    })
}

// ---------------------------------------------------------------------------------------------
// The pipe

/// One WebSocket connection carrying SP messages.
pub(crate) struct WsPipe<W = Ws> {
    owner: Arc<dyn PipeOwner>,
    handle: Arc<PipeHandle>,
    ws: W,
    max_message_size: usize,
    out: VecDeque<Message>,
    /// The WebSocket frames of the message being sent.
    wire: VecDeque<tungstenite::Message>,
    needs_flush: bool,
    paused: bool,
    yield_now: bool,
    /// A delivery of one message woke a receiver and the connection has nothing more: end
    /// the poll and let the receiver run (see `StreamPipe::after_waking_receiver`).
    wait_for_bytes: bool,
    /// Messages read but not yet delivered (the core paused the pipe meanwhile).
    inbox: VecDeque<Message>,
    /// How the connection ended, reported once `inbox` is delivered.
    end: Option<PipeEnd>,
    /// The peer sent a text message (closed with 1003 rather than 1002).
    sent_text: bool,
}

impl<W> WsPipe<W> {
    /// The pipe's tracing span.
    pub(crate) fn span(&self) -> tracing::Span {
        self.handle.info.span.clone()
    }
}

/// Runs a WebSocket pipe until it ends, then detaches it from its socket.
pub(crate) async fn run_ws_pipe<W: MessageConnection>(mut pipe: WsPipe<W>) {
    let end = std::future::poll_fn(|cx| pipe.poll_run(cx)).await;
    let close = match &end {
        PipeEnd::Local => Some(local_close(&*pipe.owner, &pipe.handle)),
        PipeEnd::PeerClosed | PipeEnd::Io(_) => None,
        _ => Some(violation_close(&end, pipe.sent_text)),
    };
    if let Some(frame) = close {
        // Best effort: send the close frame, never wait for the peer's answer. A browser
        // shows its code and reason in `CloseEvent` (without one it reports 1005).
        pipe.handle.info.span.in_scope(|| {
            tracing::debug!(code = u16::from(frame.code), reason = %frame.reason, "sending websocket close")
        });
        let ws = &mut pipe.ws;
        let mut frame = Some(frame);
        let _ = std::future::poll_fn(|cx| {
            if let Some(f) = frame.take() {
                match Pin::new(&mut *ws).poll_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Ready(Ok(())),
                }
                Pin::new(&mut *ws).start_send(tungstenite::Message::Close(Some(f)))?;
            }
            match Pin::new(&mut *ws).poll_flush(cx) {
                Poll::Pending => Poll::Ready(Ok(())),
                ready => ready,
            }
        })
        .await;
    }
    // Messages read but never taken by the core are lost with the pipe.
    pipe.handle.count_lost(pipe.inbox.len());
    end_pipe(&*pipe.owner, &pipe.handle, &end);
}

/// The close frame for a pipe our side closed: 1001 (going away) when its socket or its
/// listener is closing, 1000 (normal) when only the pipe closes.
fn local_close(owner: &dyn PipeOwner, handle: &PipeHandle) -> CloseFrame {
    let endpoint_closed = handle.info.endpoint.as_ref().is_some_and(|e| e.is_closed());
    if owner.is_closed() {
        close_frame(CloseCode::Away, "SP socket closed")
    } else if endpoint_closed {
        close_frame(CloseCode::Away, "SP listener closed")
    } else {
        close_frame(CloseCode::Normal, "pipe closed")
    }
}

/// The close frame for a peer that broke the rules: 1009 for a message over the receive
/// limit, 1003 for a text message, 1002 for a WebSocket protocol violation.
fn violation_close(end: &PipeEnd, sent_text: bool) -> CloseFrame {
    if sent_text {
        close_frame(
            CloseCode::Unsupported,
            "SP messages are binary; send an ArrayBuffer or Uint8Array",
        )
    } else if end.is_too_large() {
        close_frame(CloseCode::Size, "message over the receive limit")
    } else {
        close_frame(CloseCode::Protocol, "websocket protocol violation")
    }
}

fn close_frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
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

impl<W: MessageConnection> WsPipe<W> {
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
                return crate::pipe::yield_after_pause(&self.handle, cx, None);
            }
            if std::mem::take(&mut self.wait_for_bytes) {
                return Poll::Pending;
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
                let payload = msg.into_contiguous();
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
        let mut read_all = false;
        if self.inbox.is_empty() && self.end.is_none() {
            while self.inbox.len() < READ_BATCH {
                match self.poll_message(cx) {
                    Poll::Ready(Ok(m)) => self.inbox.push_back(m),
                    Poll::Ready(Err(end)) => {
                        self.end = Some(end);
                        break;
                    }
                    Poll::Pending => {
                        read_all = true;
                        break;
                    }
                }
            }
        }
        let delivered = !self.inbox.is_empty();
        if delivered {
            let inbox = &mut self.inbox;
            let delivery = self.owner.deliver(&self.handle, &mut || inbox.pop_front());
            if !delivery.receiving {
                self.paused = true;
                self.yield_now = true;
            } else if delivery.woke_receiver() {
                // As a stream pipe does: after one message, with the connection read to its
                // end, the woken receiver runs next; otherwise this task yields to it.
                if delivery.woke_one_receiver() && read_all && self.inbox.is_empty() {
                    self.wait_for_bytes = true;
                } else {
                    self.yield_now = true;
                }
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
                        Err(PipeEnd::TooLarge(format!(
                            "message of {} bytes exceeds the receive limit of {max}",
                            data.len()
                        )))
                    } else {
                        Ok(Message::new(data))
                    }
                }
                // NNG refuses text frames on SP sockets (close code 1003).
                Some(Ok(tungstenite::Message::Text(_))) => {
                    self.sent_text = true;
                    Err(PipeEnd::Refused(
                        "the peer sent a text message; SP messages travel in binary frames"
                            .to_owned(),
                    ))
                }
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

    /// The plain-HTTP handler of the port: that of the first open route (by path) that has
    /// one.
    fn http_handler(&self) -> Option<crate::ws_http::HttpHandler> {
        let routes = lock(&self.routes);
        let mut open: Vec<&Arc<Route>> = routes.values().filter(|r| !r.owner.is_closed()).collect();
        open.sort_by(|a, b| a.path.cmp(&b.path));
        open.iter()
            .find_map(|r| lock(&r.ctl.opts).http_handler.clone())
    }

    /// The open route at `path`, with its socket's protocol.
    fn route(&self, path: &str) -> Option<(Arc<Route>, ProtocolId)> {
        let route = lock(&self.routes)
            .get(path)
            .filter(|r| !r.owner.is_closed())
            .cloned()?;
        let protocol = route.owner.protocol();
        Some((route, protocol))
    }
}

/// Why a listener (or [`answer_upgrade`]) refuses a WebSocket upgrade request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeRefusal {
    /// No open SP socket listens on the request's path: `404`, which dialers (NNG's and
    /// ours) report as a refused connection.
    UnknownPath,
    /// The request does not offer the route's `<protocol>.sp.nanomsg.org`: `400`.
    ProtocolMismatch,
    /// The request's `Origin` is not allowed by the listener's [`OriginPolicy`]: `403`.
    OriginRefused,
    /// The request is not a WebSocket upgrade (not a `GET`, or no `Upgrade: websocket`,
    /// `Connection: upgrade`, `Sec-WebSocket-Key` or version 13): `400`, with
    /// `Sec-WebSocket-Version: 13` from a listener (as NNG and mangos answer a wrong version).
    NotAnUpgrade,
}

impl UpgradeRefusal {
    /// The HTTP status the refusal is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            UpgradeRefusal::UnknownPath => StatusCode::NOT_FOUND,
            UpgradeRefusal::ProtocolMismatch | UpgradeRefusal::NotAnUpgrade => {
                StatusCode::BAD_REQUEST
            }
            UpgradeRefusal::OriginRefused => StatusCode::FORBIDDEN,
        }
    }

    /// The body of that answer: what went wrong, for the browser's network panel.
    pub fn reason(self) -> &'static str {
        match self {
            UpgradeRefusal::UnknownPath => "no SP socket listens on this path",
            UpgradeRefusal::ProtocolMismatch => "SP protocol mismatch",
            UpgradeRefusal::OriginRefused => {
                "this page's origin may not connect to the SP socket (see its origin policy)"
            }
            UpgradeRefusal::NotAnUpgrade => "not a WebSocket upgrade request",
        }
    }
}

impl std::fmt::Display for UpgradeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status().as_u16(), self.reason())
    }
}

impl std::error::Error for UpgradeRefusal {}

/// What a route knows beyond its protocol: which origins it admits.
pub(crate) trait UpgradeRoute {
    /// Checks the request's `Origin`; refusing counts and logs the refusal.
    fn check_origin(&self, _request: &Request) -> std::result::Result<(), UpgradeRefusal> {
        Ok(())
    }
}

/// Route indices (the `ws_upgrade` fuzz target's routes) admit every origin.
impl UpgradeRoute for usize {}

impl UpgradeRoute for Arc<Route> {
    fn check_origin(&self, request: &Request) -> std::result::Result<(), UpgradeRefusal> {
        let policy = lock(&self.ctl.opts).ws_origins.clone();
        let origin = header_str(request.headers(), "Origin");
        let host = header_str(request.headers(), "Host");
        if policy.allows(origin, host) {
            return Ok(());
        }
        self.owner.refused(Some(self.ctl.id), RefusalReason::Origin);
        self.ctl.span.in_scope(|| {
            tracing::warn!(
                origin = origin.unwrap_or(""),
                host = host.unwrap_or(""),
                path = %self.path,
                "refused websocket upgrade (403): origin not allowed; add it with \
                 Listener::set_ws_origins"
            )
        });
        Err(UpgradeRefusal::OriginRefused)
    }
}

/// A header's value as text (`None`: absent or not visible ASCII).
fn header_str<'a>(
    headers: &'a async_tungstenite::tungstenite::http::HeaderMap,
    name: &str,
) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Which web pages may open a WebSocket to an SP listener, judged by the `Origin` header a
/// browser sends with every WebSocket upgrade.
///
/// # Why a policy, and why this default
/// A browser lets any page connect a WebSocket anywhere, including to `localhost` and the
/// intranet, and does not apply the same-origin policy to it: only the server can tell a
/// page it trusts from one the user happened to open (cross-site WebSocket hijacking). So a
/// listener looks at `Origin`, which browsers always send and pages cannot forge.
///
/// The default, [`OriginPolicy::same_host`], admits
/// * requests **without** `Origin`: they come from programs, not pages (NNG, mangos, our
///   dialers, `curl`), and such a program could send any header it liked anyway, so
///   refusing them would protect nothing and break every non-browser peer;
/// * pages served from the listener's own `host:port` (the `Origin`'s host and port equal
///   the request's `Host`): a page served together with the SP socket, as
///   [`HttpHandler`](crate::HttpHandler) and [`Socket::adopt_ws`](crate::Socket::adopt_ws)
///   allow, works with no setting;
/// * and refuses every other origin with HTTP 403, counted as
///   [`RefusalReason::Origin`] and logged at `warn`.
///
/// A page served from another port or host names its origin in [`OriginPolicy::allow`];
/// [`OriginPolicy::any`] turns the check off (for a public service that wants every page).
#[derive(Clone, Default)]
pub struct OriginPolicy {
    rule: OriginRule,
}

/// A caller's origin check (see [`OriginPolicy::predicate`]).
type OriginCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

#[derive(Clone, Default)]
enum OriginRule {
    #[default]
    SameHost,
    Any,
    List(Arc<[String]>),
    Predicate(OriginCheck),
}

impl std::fmt::Debug for OriginPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rule {
            OriginRule::SameHost => f.write_str("OriginPolicy::same_host()"),
            OriginRule::Any => f.write_str("OriginPolicy::any()"),
            OriginRule::List(l) => write!(f, "OriginPolicy::allow({l:?})"),
            OriginRule::Predicate(_) => f.write_str("OriginPolicy::predicate(..)"),
        }
    }
}

impl OriginPolicy {
    /// The default: requests without `Origin` (non-browser peers) and pages served from the
    /// listener's own `host:port`.
    pub fn same_host() -> Self {
        Self::default()
    }

    /// Every origin: any page on the web may connect. Only for services meant to be public;
    /// a page the user opens can then send requests to this socket from the user's network.
    pub fn any() -> Self {
        Self {
            rule: OriginRule::Any,
        }
    }

    /// [`OriginPolicy::same_host`] plus these exact origins (`scheme://host[:port]` as the
    /// browser sends it, e.g. `"https://app.example.com"` or `"http://localhost:8080"`;
    /// compared without regard to ASCII case or a trailing `/`).
    pub fn allow<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<String> = origins
            .into_iter()
            .map(|o| o.into().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Self {
            rule: OriginRule::List(list.into()),
        }
    }

    /// Decides by `f(origin)`, `None` for a request without `Origin` (return `true` there
    /// to keep non-browser peers working).
    pub fn predicate(f: impl Fn(Option<&str>) -> bool + Send + Sync + 'static) -> Self {
        Self {
            rule: OriginRule::Predicate(Arc::new(f)),
        }
    }

    /// Whether a request with this `Origin` header and this `Host` header is admitted.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let same_host = || match (origin, host) {
            (None, _) => true,
            (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, authority)| {
                authority
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(host.trim())
            }),
            (Some(_), None) => false,
        };
        match &self.rule {
            OriginRule::Any => true,
            OriginRule::SameHost => same_host(),
            OriginRule::List(list) => {
                same_host()
                    || origin.is_some_and(|o| {
                        let o = o.trim_end_matches('/');
                        list.iter().any(|a| a.eq_ignore_ascii_case(o))
                    })
            }
            OriginRule::Predicate(f) => f(origin),
        }
    }
}

/// The checks a listener makes on an upgrade request that tungstenite found well-formed
/// (method, version, `Upgrade`, `Connection` and `Sec-WebSocket-Key`/`-Version` headers):
/// `route(path)` must name an open route for the request's path, and some
/// `Sec-WebSocket-Protocol` header must offer that route's `<protocol>.sp.nanomsg.org` (any
/// case, in a comma-separated list; values that are not visible ASCII are ignored). Returns
/// the route and the subprotocol to answer with. Between the two, the route checks the
/// request's `Origin` against its listener's [`OriginPolicy`] (`403`), so a page from a
/// foreign site learns nothing about the protocol.
///
/// A pure function of the request (apart from the route counting and logging an origin
/// refusal), so that the `ws_upgrade` fuzz target checks exactly what listeners run
/// ([`Upgrade`] calls it for every request).
pub(crate) fn check_upgrade_request<R: UpgradeRoute>(
    request: &Request,
    route: impl FnOnce(&str) -> Option<(R, ProtocolId)>,
) -> std::result::Result<(R, String), UpgradeRefusal> {
    let (route, protocol) = route(request.uri().path()).ok_or(UpgradeRefusal::UnknownPath)?;
    route.check_origin(request)?;
    let wanted = subprotocol(protocol);
    let offered = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(&wanted));
    if !offered {
        return Err(UpgradeRefusal::ProtocolMismatch);
    }
    Ok((route, wanted))
}

/// Spawns a task on a socket's runtime.
pub(crate) type Spawner = Arc<dyn Fn(BoxFuture<'static, ()>) + Send + Sync>;
/// Makes a timer future on a socket's runtime.
pub(crate) type Sleeper = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;
/// Binds a TCP port: the bound address and an acceptor for it.
pub(crate) type Binder = Box<dyn FnOnce() -> Result<(SocketAddr, Box<dyn Acceptor>)> + Send>;

/// The upgrade callback: runs [`check_upgrade_request`] with `route` looking routes up, then
/// answers with the chosen subprotocol (keeping the route in `chosen`) or refuses with the
/// refusal's status and reason.
pub(crate) struct Upgrade<R, F> {
    pub(crate) route: F,
    pub(crate) chosen: Arc<Mutex<Option<R>>>,
}

impl<R: UpgradeRoute, F> tungstenite::handshake::server::Callback for Upgrade<R, F>
where
    F: FnOnce(&str) -> Option<(R, ProtocolId)>,
{
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> std::result::Result<Response, ErrorResponse> {
        match check_upgrade_request(request, self.route) {
            Ok((route, proto)) => {
                response.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_str(&proto).expect("protocol names are ascii"),
                );
                *lock(&self.chosen) = Some(route);
                Ok(response)
            }
            Err(refusal) => {
                let mut r = ErrorResponse::new(Some(refusal.reason().to_owned()));
                *r.status_mut() = refusal.status();
                Err(r)
            }
        }
    }
}

/// The TLS of a `wss://` port, read at each accepted connection: the current configuration
/// of the listener that opened the port, or why it has none.
pub(crate) type ServerTls =
    Arc<dyn Fn() -> std::result::Result<Arc<ServerConfig>, String> + Send + Sync>;

/// What [`listen`] needs from the socket and its runtime, without naming either.
pub(crate) struct ListenParams {
    pub(crate) owner: Arc<dyn PipeOwner>,
    pub(crate) ctl: Arc<EndpointCtl>,
    pub(crate) max_message_size: usize,
    pub(crate) tls: Option<ServerTls>,
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
            let acceptor = SharedAcceptor::new(acceptor);
            let release = acceptor.clone();
            server.ctl.on_close(move || release.close());
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
    // The route leaves the server when the socket closes it (or the socket closes), and the
    // last route's leaving closes the port, before that close returns.
    let path2 = path.clone();
    let server2 = server.clone();
    p.ctl.on_close(move || server2.remove_route(&path2));
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
    acceptor: SharedAcceptor,
    tls: Option<ServerTls>,
    handshake_timeout: Duration,
    spawn: Spawner,
    sleep: Sleeper,
) {
    loop {
        let accepted = unless_closed(&server.ctl, acceptor.accept())
            .await
            .flatten();
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
    tls: Option<ServerTls>,
    handshake_timeout: Duration,
    sleep: Sleeper,
) -> std::result::Result<(), String> {
    let tls = tls
        .map(|current| current())
        .transpose()
        .map_err(|e| format!("no usable certificate: {e}"))?;
    let (stream, cert) = match tls {
        Some(config) => with_timeout(sleep(handshake_timeout), crate::tls::accept(config, stream))
            .await
            .ok_or("tls handshake timed out")?
            .map_err(|e| e.to_string())?,
        None => (stream, None),
    };
    // Read the request head: an upgrade goes on to tungstenite (with the bytes replayed), a
    // plain request gets the listener's HTTP answer.
    let mut stream = stream;
    let read = with_timeout(
        sleep(UPGRADE_TIMEOUT.max(handshake_timeout)),
        crate::ws_http::read_head(&mut stream),
    )
    .await
    .ok_or("http request timed out")?;
    let (head, bytes) = match read {
        Ok(read) => read,
        Err(e) => {
            if let Some(answer) = e.answer {
                let wire = crate::ws_http::encode(answer, false);
                let _ = with_timeout(
                    sleep(UPGRADE_TIMEOUT),
                    crate::ws_http::write_all(&mut stream, &wire),
                )
                .await;
            }
            return Err(e.why);
        }
    };
    if !head.upgrade {
        let path = head.request.uri().path();
        let is_route = server.route(path).is_some();
        let handler = server.http_handler();
        let response = crate::ws_http::respond(handler.as_ref(), &head.request, is_route);
        tracing::debug!(
            addr = %server.bound,
            method = %head.request.method(),
            path,
            status = response.status().as_u16(),
            "plain http request"
        );
        let head_only = head.request.method() == tungstenite::http::Method::HEAD;
        let wire = crate::ws_http::encode(response, head_only);
        with_timeout(
            sleep(UPGRADE_TIMEOUT),
            crate::ws_http::write_all(&mut stream, &wire),
        )
        .await
        .ok_or("http answer timed out")?
        .map_err(|e| format!("http answer failed: {e}"))?;
        return Ok(());
    }
    // tungstenite drops a malformed upgrade (not a GET, no key, no `Connection: upgrade`, a
    // version other than 13) without a word, before our callback runs. Answer it as NNG and
    // mangos do (spec 8.1 #21): `404` on a path no socket serves, else `400` naming the
    // version we speak (RFC 6455 4.2.2).
    if head.request.method() != tungstenite::http::Method::GET
        || !is_websocket_upgrade(head.request.headers())
    {
        let refusal = match server.route(head.request.uri().path()) {
            Some(_) => UpgradeRefusal::NotAnUpgrade,
            None => UpgradeRefusal::UnknownPath,
        };
        let mut answer = crate::ws_http::text(refusal.status(), refusal.reason());
        if refusal == UpgradeRefusal::NotAnUpgrade {
            answer
                .headers_mut()
                .insert("Sec-WebSocket-Version", HeaderValue::from_static("13"));
        }
        let wire = crate::ws_http::encode(answer, false);
        let _ = with_timeout(
            sleep(UPGRADE_TIMEOUT),
            crate::ws_http::write_all(&mut stream, &wire),
        )
        .await;
        return Err(format!(
            "websocket upgrade refused ({}): not a GET with Upgrade, Connection, \
             Sec-WebSocket-Key and Sec-WebSocket-Version 13",
            refusal.status().as_u16()
        ));
    }
    let stream: BoxStream = Box::new(crate::ws_http::Replay {
        head: bytes,
        at: 0,
        inner: stream,
    });
    let chosen: Arc<Mutex<Option<Arc<Route>>>> = Arc::default();
    let routes = server.clone();
    let callback = Upgrade {
        route: move |path: &str| routes.route(path),
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

// ---------------------------------------------------------------------------------------------
// Bring your own HTTP server

/// Checks a WebSocket upgrade request that reached an application's own HTTP server (axum,
/// hyper, ...) for an SP socket of protocol `protocol`, as a listener would: a well-formed
/// upgrade (`400` otherwise), an `Origin` that `origins` admits (`403`), and an offer of
/// `<protocol>.sp.nanomsg.org` (`400`). Returns the `101 Switching Protocols` answer with its
/// `Sec-WebSocket-Accept` and `Sec-WebSocket-Protocol` headers; once the server has sent it
/// and upgraded the connection, wrap the connection in a [`WebSocketStream`] (with
/// [`stream_config`]) and hand it to [`Socket::adopt_ws`](crate::Socket::adopt_ws).
/// [`Socket::answer_ws_upgrade`](crate::Socket::answer_ws_upgrade) calls this with the
/// socket's protocol and origin policy.
///
/// # Errors
/// The [`UpgradeRefusal`]: answer with its [`status`](UpgradeRefusal::status) and
/// [`reason`](UpgradeRefusal::reason).
pub fn answer_upgrade(
    protocol: ProtocolId,
    headers: &tungstenite::http::HeaderMap,
    origins: &OriginPolicy,
) -> std::result::Result<Response, UpgradeRefusal> {
    let Some(key) = headers
        .get("Sec-WebSocket-Key")
        .filter(|_| is_websocket_upgrade(headers))
    else {
        return Err(UpgradeRefusal::NotAnUpgrade);
    };
    if !origins.allows(header_str(headers, "Origin"), header_str(headers, "Host")) {
        return Err(UpgradeRefusal::OriginRefused);
    }
    let wanted = subprotocol(protocol);
    if !has_token(headers, "Sec-WebSocket-Protocol", &wanted) {
        return Err(UpgradeRefusal::ProtocolMismatch);
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", accept)
        .header("Sec-WebSocket-Protocol", wanted)
        .body(())
        .expect("valid headers"))
}

/// Whether a header list names `token` in `name` (a comma-separated list, any case).
fn has_token(headers: &tungstenite::http::HeaderMap, name: &str, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the headers make a WebSocket version 13 upgrade (RFC 6455 4.2.1): `Upgrade:
/// websocket`, `Connection: upgrade`, `Sec-WebSocket-Version: 13` and a key.
fn is_websocket_upgrade(headers: &tungstenite::http::HeaderMap) -> bool {
    has_token(headers, "Upgrade", "websocket")
        && has_token(headers, "Connection", "upgrade")
        && header_str(headers, "Sec-WebSocket-Version") == Some("13")
        && headers.contains_key("Sec-WebSocket-Key")
}

/// tungstenite's settings for a connection that will carry SP messages of up to
/// `recv_max_size` bytes (0: unlimited), as listeners use them: pass them to
/// `WebSocketStream::from_raw_socket` so an oversized message is refused while it arrives,
/// before it is buffered whole.
pub fn stream_config(recv_max_size: usize) -> WebSocketConfig {
    ws_config(recv_max_size)
}
