//! Plain HTTP on a WebSocket listener's port: static files or an application handler for
//! `GET` requests that are not WebSocket upgrades, so that a page and its SP socket share one
//! port with no HTTP framework.
//!
//! The listener reads each connection's request head itself (at most [`HEAD_MAX`] bytes):
//! an upgrade goes on to tungstenite with those bytes replayed in front of the stream, any
//! other request is answered here and the connection closed (`Connection: close`; pages load
//! a few files, so keep-alive is not worth its state).

use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_tungstenite::tungstenite::http::{self, header, Method, StatusCode};
use futures_io::{AsyncRead, AsyncWrite};

use crate::rt::BoxStream;

/// The largest request head read: more is refused with `431`.
pub(crate) const HEAD_MAX: usize = 16 * 1024;

/// A plain HTTP request, as a handler sees it: method, URI and headers, no body (only `GET`
/// and `HEAD` reach a handler).
pub type HttpRequest = http::Request<()>;
/// A handler's answer. The listener adds `Content-Length` and `Connection: close`.
pub type HttpResponse = http::Response<Vec<u8>>;

/// What a `ws://` or `wss://` listener answers to plain HTTP `GET` and `HEAD` requests (those
/// that are not WebSocket upgrades) on paths where no SP socket listens, so that the page
/// that talks to the socket comes from the same port (and so passes the default
/// [`OriginPolicy`](crate::OriginPolicy) with no setting). Set with
/// [`Listener::set_http_handler`](crate::Listener::set_http_handler).
///
/// Without one a listener answers such requests with `426 Upgrade Required` and a line that
/// says what the port is for.
#[derive(Clone)]
pub struct HttpHandler {
    inner: Arc<dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync>,
}

impl std::fmt::Debug for HttpHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpHandler(..)")
    }
}

impl HttpHandler {
    /// Answers with `f(request)`. `f` runs on the listener's runtime, so it should be quick
    /// (an in-memory page, a status document); do slow work elsewhere.
    pub fn new(f: impl Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static) -> Self {
        Self { inner: Arc::new(f) }
    }

    /// Serves the files under `root`: `/` and directories as their `index.html`, a
    /// `Content-Type` from the file name's extension (html, js, mjs, css, json, svg, png,
    /// jpg, gif, ico, wasm, txt; others `application/octet-stream`), `404` for a missing
    /// file and for any path that would leave `root` (`..`, absolute components). Files are
    /// read whole, on the listener's runtime: meant for a page and its few assets.
    pub fn files(root: impl Into<PathBuf>) -> Self {
        let root: PathBuf = root.into();
        Self::new(move |req| serve_file(&root, req.uri().path()))
    }

    pub(crate) fn answer(&self, req: &HttpRequest) -> HttpResponse {
        (self.inner)(req)
    }
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: &str) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(format!("{body}\n").into_bytes())
        .expect("valid response")
}

fn serve_file(root: &Path, path: &str) -> HttpResponse {
    let not_found = || text(StatusCode::NOT_FOUND, "not found");
    let mut file = root.to_path_buf();
    let relative = path.trim_start_matches('/');
    for part in Path::new(relative).components() {
        match part {
            Component::Normal(p) => file.push(p),
            Component::CurDir => {}
            _ => return not_found(),
        }
    }
    if file.is_dir() {
        file.push("index.html");
    }
    let Ok(body) = std::fs::read(&file) else {
        return not_found();
    };
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let content_type = match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    http::Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("valid response")
}

/// A parsed request head: whether it asks for a WebSocket upgrade, and the request.
pub(crate) struct Head {
    pub(crate) upgrade: bool,
    pub(crate) request: HttpRequest,
}

/// Parses `buf` as a request head; `Ok(None)` while incomplete.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(_)) => {}
        Err(_) => return Err("malformed HTTP request"),
    }
    let mut builder = http::Request::builder()
        .method(req.method.unwrap_or("GET"))
        .uri(req.path.unwrap_or("/"));
    let mut upgrade = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("upgrade")
            && String::from_utf8_lossy(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        {
            upgrade = true;
        }
        builder = builder.header(h.name, h.value);
    }
    let request = builder.body(()).map_err(|_| "malformed HTTP request")?;
    Ok(Some(Head { upgrade, request }))
}

/// The answer to a plain request: the handler's for `GET`/`HEAD` elsewhere than an SP route,
/// else a refusal that says what the port is for.
pub(crate) fn respond(
    handler: Option<&HttpHandler>,
    request: &HttpRequest,
    is_route: bool,
) -> HttpResponse {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET requests and WebSocket upgrades are served here",
        );
        r.headers_mut()
            .insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match handler {
        Some(h) if !is_route => h.answer(request),
        _ => {
            let mut r = text(
                StatusCode::UPGRADE_REQUIRED,
                "this is an SP (Scalability Protocols) WebSocket endpoint: connect with \
                 new WebSocket(url, [\"<protocol>.sp.nanomsg.org\"])",
            );
            r.headers_mut()
                .insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
            r
        }
    }
}

/// The bytes of `response` on the wire (no body for `HEAD`).
pub(crate) fn encode(response: HttpResponse, head_only: bool) -> Vec<u8> {
    let (parts, body) = response.into_parts();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_u16(),
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in parts.headers.iter() {
        if name == header::CONTENT_LENGTH || name == header::CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    if !head_only {
        out.extend_from_slice(&body);
    }
    out
}

/// A stream that first yields bytes already read from it.
pub(crate) struct Replay {
    pub(crate) head: Vec<u8>,
    pub(crate) at: usize,
    pub(crate) inner: BoxStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.at < this.head.len() {
            let n = buf.len().min(this.head.len() - this.at);
            buf[..n].copy_from_slice(&this.head[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Why no request head was read: the answer to send, if any, and what to log.
pub(crate) struct HeadError {
    pub(crate) answer: Option<HttpResponse>,
    pub(crate) why: String,
}

/// Reads a request head from `stream` (bounded by [`HEAD_MAX`]); returns it with every byte
/// read.
pub(crate) async fn read_head(stream: &mut BoxStream) -> Result<(Head, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let quiet = |why: String| HeadError { answer: None, why };
    loop {
        let n = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut chunk))
            .await
            .map_err(|e| quiet(format!("reading the request failed: {e}")))?;
        if n == 0 {
            return Err(quiet("the client closed before sending a request".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf) {
            Ok(Some(head)) => return Ok((head, buf)),
            Ok(None) if buf.len() > HEAD_MAX => {
                return Err(HeadError {
                    answer: Some(text(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "request head too large",
                    )),
                    why: "request head too large".into(),
                })
            }
            Ok(None) => {}
            Err(why) => {
                return Err(HeadError {
                    answer: Some(text(StatusCode::BAD_REQUEST, why)),
                    why: why.into(),
                })
            }
        }
    }
}

/// Writes `bytes` and closes the write side.
pub(crate) async fn write_all(stream: &mut BoxStream, bytes: &[u8]) -> io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let n =
            std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, &bytes[at..])).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        at += n;
    }
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await?;
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_close(cx)).await
}
