//! WebSocket for web pages, checked with a Rust WebSocket client standing in for a browser:
//! the origin policy (403, counted and logged), close codes with reasons (1000, 1001, 1003,
//! 1009), the browser's own close codes accepted quietly, and a connection upgraded by the
//! application's own server adopted as a pipe (`Socket::adopt_ws`).

use std::io::{Read, Write};
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::Message as WsMessage;
use futures_util::StreamExt;
use sp_tests::{assert_no_worker_panics, wait_for_pipes, watch_worker_panics};
use sp_tokio::{OriginPolicy, Pull, RefusalReason, Rep, Req};
use tokio_util::compat::TokioAsyncReadCompatExt;

const T: Duration = Duration::from_secs(5);

/// Sends an upgrade request with these extra header lines; returns the status line and body.
fn upgrade_with(port: u16, path: &str, extra: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
        if all.starts_with(b"HTTP/1.1 101") && all.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&all).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (status, body)
}

#[tokio::test]
async fn origin_policy_refuses_foreign_pages_with_403_and_counts_them() {
    watch_worker_panics();
    let rep = Rep::new();
    let listener = rep.listen("ws://127.0.0.1:0/svc").await.unwrap();
    let (_, port) = listener.address().host_port().unwrap();
    let proto = "Sec-WebSocket-Protocol: rep.sp.nanomsg.org\r\n";
    let own = format!("{proto}Origin: http://127.0.0.1:{port}\r\n");
    let foreign = format!("{proto}Origin: https://evil.example\r\n");
    let other_port = format!("{proto}Origin: http://127.0.0.1:8080\r\n");
    let run = move |extra: String| {
        let extra = extra.clone();
        tokio::task::spawn_blocking(move || upgrade_with(port, "/svc", &extra))
    };

    // The default: no Origin (NNG, mangos, our dialers) and the listener's own host pass.
    assert!(run(proto.into()).await.unwrap().0.contains(" 101"));
    assert!(run(own.clone()).await.unwrap().0.contains(" 101"));
    let (status, body) = run(foreign.clone()).await.unwrap();
    assert!(status.contains(" 403"), "{status}");
    assert!(body.contains("origin"), "{body}");
    assert!(run(other_port.clone()).await.unwrap().0.contains(" 403"));
    // An unknown path is still 404, whatever the origin; a foreign origin learns nothing
    // about the protocol (403 before 400).
    let path_404 = tokio::task::spawn_blocking(move || {
        upgrade_with(port, "/nope", "Origin: https://evil.example\r\n")
    });
    assert!(path_404.await.unwrap().0.contains(" 404"));
    let no_proto = run("Origin: https://evil.example\r\n".into())
        .await
        .unwrap();
    assert!(no_proto.0.contains(" 403"), "{no_proto:?}");

    let stats = rep.stats();
    assert_eq!(stats.refused.get(RefusalReason::Origin), 3, "{stats:?}");
    assert_eq!(listener.stats().refused, 3);

    // An allow-list admits exactly its origins (case and a trailing slash aside).
    listener
        .set_ws_origins(OriginPolicy::allow(["HTTP://127.0.0.1:8080/"]))
        .unwrap();
    assert!(run(other_port.clone()).await.unwrap().0.contains(" 101"));
    assert!(run(own.clone()).await.unwrap().0.contains(" 101"));
    assert!(run(foreign.clone()).await.unwrap().0.contains(" 403"));
    // A predicate decides everything, including requests without Origin.
    listener
        .set_ws_origins(OriginPolicy::predicate(|o| {
            o.is_some_and(|o| o.ends_with(".example"))
        }))
        .unwrap();
    assert!(run(foreign.clone()).await.unwrap().0.contains(" 101"));
    assert!(run(proto.into()).await.unwrap().0.contains(" 403"));
    listener.set_ws_origins(OriginPolicy::any()).unwrap();
    assert!(run(other_port).await.unwrap().0.contains(" 101"));
    assert_no_worker_panics();
}

/// A raw WebSocket client of `proto` at `url`.
async fn raw_client(
    url: &str,
    proto: &str,
) -> async_tungstenite::WebSocketStream<impl futures_io::AsyncRead + futures_io::AsyncWrite + Unpin>
{
    use async_tungstenite::tungstenite::client::IntoClientRequest;
    let addr = sp_tokio::Address::parse(url).unwrap();
    let (host, port) = addr.host_port().unwrap();
    let tcp = tokio::net::TcpStream::connect((host, port)).await.unwrap();
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", proto.parse().unwrap());
    async_tungstenite::client_async(req, tcp.compat())
        .await
        .unwrap()
        .0
}

/// Reads until the server's close frame; returns it.
async fn close_frame(
    ws: &mut async_tungstenite::WebSocketStream<
        impl futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
    >,
) -> Option<CloseFrame> {
    tokio::time::timeout(T, async {
        while let Some(Ok(m)) = ws.next().await {
            if let WsMessage::Close(frame) = m {
                return frame;
            }
        }
        None
    })
    .await
    .expect("the server never closed")
}

#[tokio::test]
async fn close_codes_say_why_the_connection_ended() {
    watch_worker_panics();
    let pull = Pull::new();
    pull.set_recv_max_size(1024).unwrap();
    let bound = pull.listen("ws://127.0.0.1:0/in").await.unwrap();
    let url = bound.to_string();

    // A text message: 1003, unsupported data.
    let mut ws = raw_client(&url, "pull.sp.nanomsg.org").await;
    ws.send(WsMessage::Text("hello".into())).await.unwrap();
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Unsupported, "{frame:?}");
    assert!(frame.reason.contains("binary"), "{frame:?}");

    // A message over the receive limit: 1009, message too big.
    let mut ws = raw_client(&url, "pull.sp.nanomsg.org").await;
    ws.send(WsMessage::Binary(vec![1u8; 4096].into()))
        .await
        .unwrap();
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size, "{frame:?}");

    // The application closes the pipe: 1000, normal.
    let mut ws = raw_client(&url, "pull.sp.nanomsg.org").await;
    wait_for_pipes(&pull, 1).await;
    pull.pipes()[0].close();
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Normal, "{frame:?}");

    // The peer closes with the codes browsers use: the pipe detaches quietly.
    for code in [CloseCode::Normal, CloseCode::Away] {
        let mut ws = raw_client(&url, "pull.sp.nanomsg.org").await;
        wait_for_pipes(&pull, 1).await;
        ws.close(Some(CloseFrame {
            code,
            reason: "page closed".into(),
        }))
        .await
        .unwrap();
        sp_tests::wait_for_pipe_count(&pull, 0).await;
    }

    // A WebSocket protocol violation (a frame with reserved bits set): 1002.
    let (_, port) = bound.address().host_port().unwrap();
    let code = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "GET /in HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: pull.sp.nanomsg.org\r\n\r\n"
        )
        .unwrap();
        // After the 101 (tungstenite refuses bytes sent before it): FIN + RSV1..3 + binary,
        // masked, 1 byte.
        s.set_read_timeout(Some(T)).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 512];
        while !all.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "no upgrade answer");
            all.extend_from_slice(&buf[..n]);
        }
        s.write_all(&[0xf2, 0x81, 1, 2, 3, 4, 0x55]).unwrap();
        let _ = s.read_to_end(&mut all);
        let frames = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let close = &all[frames..];
        assert_eq!(close.first(), Some(&0x88), "{close:?}");
        u16::from_be_bytes([close[2], close[3]])
    })
    .await
    .unwrap();
    assert_eq!(code, 1002);

    // The listener closes (the socket carries on): 1001, going away.
    let mut ws = raw_client(&url, "pull.sp.nanomsg.org").await;
    sp_tests::wait_for_pipe_count(&pull, 1).await;
    bound.close().unwrap();
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    assert!(frame.reason.contains("listener"), "{frame:?}");

    // The socket closes: 1001, going away.
    let bound = pull.listen("ws://127.0.0.1:0/in").await.unwrap();
    let mut ws = raw_client(&bound.to_string(), "pull.sp.nanomsg.org").await;
    wait_for_pipes(&pull, 1).await;
    pull.close().await;
    let frame = close_frame(&mut ws).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away, "{frame:?}");
    assert!(frame.reason.contains("closed"), "{frame:?}");
    assert_no_worker_panics();
}

#[tokio::test]
#[allow(clippy::result_large_err)] // tungstenite's callback type
async fn a_connection_upgraded_by_the_application_becomes_a_pipe() {
    use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    watch_worker_panics();
    let rep = Rep::new();
    rep.set_recv_timeout(Some(T));
    // The application's own server: a TCP listener running tungstenite's handshake, whose
    // callback lets the socket check and answer the request.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let server = {
        let rep = rep.clone();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (conn, _) = tcp.accept().await.unwrap();
                let rep2 = rep.clone();
                let callback = move |req: &Request, _: Response| {
                    rep2.answer_ws_upgrade(req.headers()).map_err(|refusal| {
                        let mut r = ErrorResponse::new(Some(refusal.reason().into()));
                        *r.status_mut() = refusal.status();
                        r
                    })
                };
                let config = sp_transport::websocket::stream_config(rep.recv_max_size());
                match async_tungstenite::accept_hdr_async_with_config(
                    conn.compat(),
                    callback,
                    Some(config),
                )
                .await
                {
                    Ok(ws) => {
                        rep.adopt_ws(ws, "/app", Default::default()).unwrap();
                    }
                    Err(e) => eprintln!("refused: {e}"),
                }
            }
        })
    };
    // A foreign page is refused with 403...
    let (status, _) = tokio::task::spawn_blocking(move || {
        upgrade_with(
            port,
            "/app",
            "Sec-WebSocket-Protocol: rep.sp.nanomsg.org\r\nOrigin: https://evil.example\r\n",
        )
    })
    .await
    .unwrap();
    assert!(status.contains(" 403"), "{status}");
    assert_eq!(rep.stats().refused.get(RefusalReason::Origin), 1);
    // ...and our own REQ dialer is served like at a listener.
    let req = Req::new();
    req.set_recv_timeout(Some(T));
    req.dial(format!("ws://127.0.0.1:{port}/app"))
        .await
        .unwrap();
    req.send(&b"ping"[..]).await.unwrap();
    let msg = rep.recv().await.unwrap();
    assert_eq!(msg.body.as_ref(), b"ping");
    rep.send(&b"pong"[..]).await.unwrap();
    assert_eq!(req.recv().await.unwrap().body.as_ref(), b"pong");
    let pipe = &rep.pipes()[0];
    assert_eq!(pipe.ws_path(), Some("/app"));
    assert_eq!(pipe.endpoint(), None);
    assert_eq!(rep.stats().pipes_attached, 1);
    server.await.unwrap();
    assert_no_worker_panics();
}

/// Sends a plain HTTP request; returns the whole answer.
fn plain(port: u16, request_line: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // One write: `write!` writes piece by piece, and a server that refuses the request line
    // may answer and close before the rest is written, which then fails with a broken pipe.
    let request = format!("{request_line}\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn a_listener_serves_the_page_and_sp_on_one_port() {
    watch_worker_panics();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>SP page</h1>").unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log(1)").unwrap();
    let rep = Rep::new();
    rep.set_recv_timeout(Some(T));
    let listener = rep.listen("ws://127.0.0.1:0/sp").await.unwrap();
    let (_, port) = listener.address().host_port().unwrap();
    let get = move |line: &'static str| tokio::task::spawn_blocking(move || plain(port, line));

    // No handler: a plain request learns what the port is for.
    let answer = get("GET / HTTP/1.1").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    assert!(answer.contains("sp.nanomsg.org"), "{answer}");

    listener
        .set_http_handler(sp_tokio::HttpHandler::files(dir.path()))
        .unwrap();
    let answer = get("GET / HTTP/1.1").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("text/html"), "{answer}");
    assert!(answer.ends_with("<h1>SP page</h1>"), "{answer}");
    let answer = get("GET /app.js HTTP/1.1").await.unwrap();
    assert!(answer.contains("text/javascript"), "{answer}");
    let answer = get("HEAD /app.js HTTP/1.1").await.unwrap();
    assert!(answer.contains("Content-Length: 14"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    for missing in ["GET /nope.css HTTP/1.1", "GET /../etc/passwd HTTP/1.1"] {
        let answer = get(missing).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    }
    let answer = get("NOT HTTP AT ALL").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = get("POST / HTTP/1.1").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    // A plain GET on the SP route is told to upgrade.
    let answer = get("GET /sp HTTP/1.1").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");

    // An application handler instead of files.
    listener
        .set_http_handler(sp_tokio::HttpHandler::new(|req| {
            sp_tokio::HttpResponse::new(format!("you asked for {}", req.uri().path()).into())
        }))
        .unwrap();
    let answer = get("GET /status HTTP/1.1").await.unwrap();
    assert!(answer.ends_with("you asked for /status"), "{answer}");

    // SP still works on the same port.
    let req = Req::new();
    req.set_recv_timeout(Some(T));
    req.dial(&listener).await.unwrap();
    req.send(&b"hi"[..]).await.unwrap();
    assert_eq!(rep.recv().await.unwrap().body.as_ref(), b"hi");
    assert_no_worker_panics();
}
