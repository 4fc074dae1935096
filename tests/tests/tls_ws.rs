//! TLS (`tls+tcp://`) and WebSocket (`ws://`, `wss://`) between our own sockets, and the
//! failure cases of spec 2.4/2.5: bad certificates, mutual TLS, plain TCP at a TLS listener,
//! wrong subprotocols, text frames, oversized messages, shared ports with paths.
//!
//! Certificates come from [`sp_tests::certs`], generated per test process.

use std::io::{Read, Write};
use std::time::Duration;

use sp_tests::certs::{client_tls, mutual_server_tls, pki, server_tls};
use sp_tests::{assert_no_worker_panics, wait_for_pipes, watch_worker_panics};
use sp_tokio::{Error, Pair, Pub, Pull, Push, RefusalReason, Rep, Req, Sub, TlsConfig, TlsError};

const T: Duration = Duration::from_secs(3);

fn timeouts<P: sp_transport::SocketCore>(s: &sp_tests::Sock<P>) {
    s.set_recv_timeout(Some(T));
    s.set_send_timeout(Some(T));
}

/// REQ/REP round trips over `scheme` (`tls+tcp`, `ws` or `wss`), REP listening.
async fn req_rep_over(scheme: &str, path: &str) {
    watch_worker_panics();
    let rep = Rep::new();
    let req = Req::new();
    timeouts(&rep);
    timeouts(&req);
    rep.set_tls(server_tls());
    req.set_tls(client_tls());
    let bound = rep
        .listen(&format!("{scheme}://127.0.0.1:0{path}"))
        .await
        .expect("listen");
    let url = bound.to_string();
    assert!(url.starts_with(scheme), "{url}");
    req.dial(&url).await.expect("dial");
    for size in [0usize, 1, 64, 1400, 70_000] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        req.send(body.clone()).await.expect("send");
        let got = rep.recv().await.expect("rep recv");
        assert_eq!(got.body.as_ref(), body.as_slice());
        rep.send(got.body).await.expect("reply");
        let back = req.recv().await.expect("req recv");
        assert_eq!(back.body.as_ref(), body.as_slice());
    }
    assert_no_worker_panics();
}

#[tokio::test]
async fn tls_req_rep_round_trips() {
    req_rep_over("tls+tcp", "").await;
}

#[tokio::test]
async fn ws_req_rep_round_trips() {
    req_rep_over("ws", "/sp").await;
}

#[tokio::test]
async fn wss_req_rep_round_trips() {
    req_rep_over("wss", "/secure/path").await;
}

#[tokio::test]
async fn ws_url_without_path_listens_on_root() {
    let pull = Pull::new();
    timeouts(&pull);
    let bound = pull.listen("ws://127.0.0.1:0").await.expect("listen");
    assert!(bound.to_string().ends_with('/'), "{bound}");
    let push = Push::new();
    push.dial(&bound.to_string()).await.expect("dial");
    push.send(&b"rooted"[..]).await.unwrap();
    assert_eq!(pull.recv().await.unwrap().body.as_ref(), b"rooted");
}

#[tokio::test]
async fn tls_dialer_listener_reversed_and_pub_sub() {
    // The dialing side holds the certificate: roles and TLS sides are independent.
    let sub = Sub::new();
    timeouts(&sub);
    sub.set_tls(client_tls());
    sub.subscribe(b"news");
    let publ = Pub::new();
    publ.set_tls(server_tls());
    let url = publ
        .listen("wss://127.0.0.1:0/feed")
        .await
        .expect("listen")
        .to_string();
    sub.dial(&url).await.expect("dial");
    wait_for_pipes(&publ, 1).await;
    publ.send(&b"sport: no"[..]).await.unwrap();
    publ.send(&b"news: yes"[..]).await.unwrap();
    assert_eq!(sub.recv().await.unwrap().body.as_ref(), b"news: yes");
}

// ---------------------------------------------------------------------------------------------
// Several sockets on one WebSocket port

#[tokio::test]
async fn ws_paths_share_one_port() {
    let a = Pull::new();
    let b = Pull::new();
    timeouts(&a);
    timeouts(&b);
    let bound = a.listen("ws://127.0.0.1:0/a").await.expect("listen a");
    let Some((_, port)) = bound.address().host_port() else {
        panic!("ws address has a port")
    };
    b.listen(&format!("ws://127.0.0.1:{port}/b"))
        .await
        .expect("second path on the same port");
    // The same path twice is refused.
    let c = Pull::new();
    let err = c
        .listen(&format!("ws://127.0.0.1:{port}/a"))
        .await
        .expect_err("path in use");
    assert!(err.is_address_in_use(), "{err}");

    let to_a = Push::new();
    let to_b = Push::new();
    to_a.dial(&format!("ws://127.0.0.1:{port}/a"))
        .await
        .unwrap();
    to_b.dial(&format!("ws://127.0.0.1:{port}/b"))
        .await
        .unwrap();
    to_a.send(&b"for a"[..]).await.unwrap();
    to_b.send(&b"for b"[..]).await.unwrap();
    assert_eq!(a.recv().await.unwrap().body.as_ref(), b"for a");
    assert_eq!(b.recv().await.unwrap().body.as_ref(), b"for b");

    // An unknown path is refused like a closed port (NNG: ECONNREFUSED).
    let lost = Push::new();
    let err = lost
        .dial(&format!("ws://127.0.0.1:{port}/nowhere"))
        .await
        .expect_err("unknown path");
    assert!(err.is_connection_refused(), "{err}");

    // Closing one socket frees its path only; the other keeps serving.
    a.close().await;
    let again = Push::new();
    let err = again
        .dial(&format!("ws://127.0.0.1:{port}/a"))
        .await
        .expect_err("closed path");
    assert!(err.is_connection_refused(), "{err}");
    to_b.send(&b"still b"[..]).await.unwrap();
    assert_eq!(b.recv().await.unwrap().body.as_ref(), b"still b");
}

// ---------------------------------------------------------------------------------------------
// Certificate failures

fn tls_source(err: Error) -> TlsError {
    match err {
        Error::Tls { source, .. } => source,
        other => panic!("expected a tls error, got {other:?}: {other}"),
    }
}

async fn dial_tls_with(server: TlsConfig, client: TlsConfig, scheme: &str) -> Result<(), Error> {
    let rep = Rep::new();
    rep.set_tls(server);
    let path = if scheme == "tls+tcp" { "" } else { "/x" };
    let url = rep
        .listen(&format!("{scheme}://127.0.0.1:0{path}"))
        .await
        .expect("listen")
        .to_string();
    let req = Req::new();
    req.set_tls(client);
    req.set_handshake_timeout(T).unwrap();
    req.dial(&url).await.map(drop)
}

fn identity(id: &sp_tests::certs::Identity) -> TlsConfig {
    TlsConfig::builder()
        .cert_key_pem(id.cert_pem.clone(), id.key_pem.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn expired_certificate_is_reported_as_expired() {
    for scheme in ["tls+tcp", "wss"] {
        let err = dial_tls_with(identity(&pki().expired), client_tls(), scheme)
            .await
            .expect_err("expired certificate accepted");
        let msg = err.to_string();
        assert!(
            matches!(tls_source(err), TlsError::Expired),
            "{scheme}: {msg}"
        );
    }
}

#[tokio::test]
async fn unknown_ca_is_reported_as_unknown_issuer() {
    for scheme in ["tls+tcp", "wss"] {
        let err = dial_tls_with(identity(&pki().untrusted), client_tls(), scheme)
            .await
            .expect_err("untrusted certificate accepted");
        assert!(
            matches!(tls_source(err), TlsError::UnknownIssuer),
            "{scheme}"
        );
    }
}

/// A running listener given a new certificate serves the connections it accepts next with
/// it (certificate renewal), and keeps the pipe it made with the old one.
#[tokio::test]
async fn a_running_listener_serves_new_connections_with_a_new_certificate() {
    for (scheme, path) in [("tls+tcp", ""), ("wss", "/renewed")] {
        let rep = Rep::new();
        timeouts(&rep);
        let listener = rep
            .listener(format!("{scheme}://127.0.0.1:0{path}").as_str())
            .unwrap();
        listener.set_tls(identity(&pki().untrusted));
        let url = listener.start().expect("listen").to_string();

        // An insecure client gets in with the first certificate; a verifying one does not.
        let old = Req::new();
        timeouts(&old);
        old.set_tls(TlsConfig::builder().insecure(true).build().unwrap());
        old.dial(&url).await.expect("insecure dial");
        let req = Req::new();
        timeouts(&req);
        req.set_tls(client_tls());
        req.set_handshake_timeout(T).unwrap();
        let err = req
            .dial(&url)
            .await
            .expect_err("untrusted certificate accepted");
        assert!(
            matches!(tls_source(err), TlsError::UnknownIssuer),
            "{scheme}"
        );

        listener.set_tls(server_tls());
        req.dial(&url)
            .await
            .expect("dial after the certificate changed");
        for (client, body) in [(&req, &b"renewed"[..]), (&old, &b"kept"[..])] {
            client.send(body).await.unwrap();
            let m = rep.recv().await.unwrap();
            assert_eq!(m.body.as_ref(), body, "{scheme}");
            rep.send(m.body).await.unwrap();
            assert_eq!(client.recv().await.unwrap().body.as_ref(), body, "{scheme}");
        }
    }
}

/// A listener whose new configuration has no certificate refuses what comes next, and says
/// so in its counters, rather than serving the old one.
#[tokio::test]
async fn a_running_listener_without_a_certificate_refuses_new_connections() {
    let rep = Rep::new();
    timeouts(&rep);
    rep.set_tls(server_tls());
    let listener = rep.listen("tls+tcp://127.0.0.1:0").await.expect("listen");
    listener.set_tls(client_tls());
    let req = Req::new();
    timeouts(&req);
    req.set_tls(client_tls());
    req.set_handshake_timeout(T).unwrap();
    req.dial(&listener.to_string())
        .await
        .expect_err("served without a certificate");
    assert_eq!(listener.stats().refused, 1, "{:?}", listener.stats());
    let refusals = rep.stats().refused;
    assert_eq!(refusals.get(RefusalReason::Tls), 1, "{refusals:?}");
}

#[tokio::test]
async fn wrong_host_name_is_reported_as_wrong_name() {
    let client = TlsConfig::builder()
        .ca_pem(pki().ca_pem.clone())
        .server_name("not-this-host.example")
        .build()
        .unwrap();
    let err = dial_tls_with(server_tls(), client, "tls+tcp")
        .await
        .expect_err("wrong name accepted");
    match tls_source(err) {
        TlsError::WrongName { expected } => assert_eq!(expected, "not-this-host.example"),
        other => panic!("expected WrongName, got {other:?}"),
    }
}

#[tokio::test]
async fn insecure_client_accepts_any_certificate() {
    let client = TlsConfig::builder().insecure(true).build().unwrap();
    dial_tls_with(identity(&pki().untrusted), client, "tls+tcp")
        .await
        .expect("insecure dial");
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_certificate() {
    let err = dial_tls_with(mutual_server_tls(), client_tls(), "tls+tcp")
        .await
        .expect_err("client without certificate accepted");
    let msg = err.to_string();
    assert!(
        matches!(
            tls_source(err),
            TlsError::PeerRefused(rustls::AlertDescription::CertificateRequired)
        ),
        "{msg}"
    );
    assert!(msg.contains("client certificate"), "{msg}");
}

#[tokio::test]
async fn mutual_tls_accepts_a_client_with_certificate() {
    let p = pki();
    let client = TlsConfig::builder()
        .ca_pem(p.ca_pem.clone())
        .cert_key_pem(p.client.cert_pem.clone(), p.client.key_pem.clone())
        .build()
        .unwrap();
    let rep = Rep::new();
    timeouts(&rep);
    rep.set_tls(mutual_server_tls());
    let url = rep
        .listen("tls+tcp://127.0.0.1:0")
        .await
        .unwrap()
        .to_string();
    let req = Req::new();
    timeouts(&req);
    req.set_tls(client);
    req.dial(&url).await.expect("dial with client certificate");
    req.send(&b"mutual"[..]).await.unwrap();
    let m = rep.recv().await.unwrap();
    rep.send(m.body).await.unwrap();
    assert_eq!(req.recv().await.unwrap().body.as_ref(), b"mutual");
}

#[tokio::test]
async fn configuration_errors_say_what_is_missing() {
    let req = Req::new();
    let err = req
        .dial("tls+tcp://127.0.0.1:1")
        .await
        .expect_err("no tls config");
    assert!(matches!(tls_source(err), TlsError::NotConfigured));

    let rep = Rep::new();
    rep.set_tls(client_tls());
    let err = rep
        .listen("tls+tcp://127.0.0.1:0")
        .await
        .expect_err("listener without certificate");
    assert!(matches!(tls_source(err), TlsError::NoServerIdentity));

    let err = TlsConfig::builder()
        .cert_key_pem(pki().server.cert_pem.clone(), "not a key")
        .build()
        .expect_err("bad key");
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
    let err = TlsConfig::builder()
        .ca_file("/nonexistent/ca.pem")
        .build()
        .expect_err("missing file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Misbehaving peers cost only their own connection

/// Reads everything until the peer closes (or the read times out).
fn read_until_closed(stream: &mut std::net::TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(T)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn plain_tcp_client_at_tls_listener_is_dropped() {
    watch_worker_panics();
    let rep = Rep::new();
    timeouts(&rep);
    rep.set_tls(server_tls());
    let bound = rep.listen("tls+tcp://127.0.0.1:0").await.unwrap();
    let (_, port) = bound.address().host_port().unwrap();
    let raw = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // An SP header where a TLS ClientHello belongs.
        s.write_all(&[0, b'S', b'P', 0, 0, 48, 0, 0]).unwrap();
        read_until_closed(&mut s)
    })
    .await
    .unwrap();
    assert!(
        raw.is_empty() || raw[0] == 0x15,
        "only a TLS alert may come back, got {raw:?}"
    );
    assert_eq!(rep.pipe_count(), 0);
    // The listener still serves TLS clients.
    let req = Req::new();
    timeouts(&req);
    req.set_tls(client_tls());
    req.dial(&bound.to_string())
        .await
        .expect("dial after garbage");
    req.send(&b"fine"[..]).await.unwrap();
    assert_eq!(rep.recv().await.unwrap().body.as_ref(), b"fine");
    assert_no_worker_panics();
}

/// Sends a hand-written upgrade request and returns the server's status line.
fn raw_upgrade(port: u16, path: &str, protocol: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let proto = protocol.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{proto}\r\n"
    )
    .unwrap();
    let reply = read_until_closed_or_headers(&mut s);
    reply.lines().next().unwrap_or_default().to_owned()
}

fn read_until_closed_or_headers(s: &mut std::net::TcpStream) -> String {
    s.set_read_timeout(Some(T)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    while !all.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn ws_upgrade_with_wrong_subprotocol_is_refused() {
    watch_worker_panics();
    let rep = Rep::new();
    timeouts(&rep);
    let bound = rep.listen("ws://127.0.0.1:0/svc").await.unwrap();
    let (_, port) = bound.address().host_port().unwrap();
    let statuses = tokio::task::spawn_blocking(move || {
        [
            raw_upgrade(port, "/svc", Some("pub.sp.nanomsg.org")),
            raw_upgrade(port, "/svc", None),
            raw_upgrade(port, "/other", Some("rep.sp.nanomsg.org")),
            raw_upgrade(port, "/svc", Some("x, rep.sp.nanomsg.org")),
        ]
    })
    .await
    .unwrap();
    assert!(statuses[0].contains(" 400"), "{statuses:?}");
    assert!(statuses[1].contains(" 400"), "{statuses:?}");
    assert!(statuses[2].contains(" 404"), "{statuses:?}");
    assert!(statuses[3].contains(" 101"), "{statuses:?}");

    // Through the API: a SUB asks for pub.sp.nanomsg.org and is refused with a clear error.
    let sub = Sub::new();
    let err = sub.dial(&bound.to_string()).await.expect_err("wrong peer");
    match &err {
        Error::WebSocket { reason, .. } => assert!(reason.contains("400"), "{reason}"),
        other => panic!("expected a websocket error, got {other:?}"),
    }
    // The REP still serves REQs.
    let req = Req::new();
    timeouts(&req);
    req.dial(&bound.to_string()).await.unwrap();
    req.send(&b"ok"[..]).await.unwrap();
    assert_eq!(rep.recv().await.unwrap().body.as_ref(), b"ok");
    assert_no_worker_panics();
}

#[tokio::test]
async fn ws_text_frame_and_oversize_message_close_only_that_connection() {
    use async_tungstenite::tungstenite::Message as WsMessage;
    use futures_util::StreamExt;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    watch_worker_panics();
    let pull = Pull::new();
    timeouts(&pull);
    pull.set_recv_max_size(1024).unwrap();
    let bound = pull.listen("ws://127.0.0.1:0/in").await.unwrap();
    let url = bound.to_string();
    let (_, port) = bound.address().host_port().unwrap();

    async fn raw_client(
        url: &str,
        port: u16,
    ) -> async_tungstenite::WebSocketStream<
        impl futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
    > {
        use async_tungstenite::tungstenite::client::IntoClientRequest;
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "pull.sp.nanomsg.org".parse().unwrap(),
        );
        async_tungstenite::client_async(req, tcp.compat())
            .await
            .unwrap()
            .0
    }

    let push = Push::new();
    push.dial(&url).await.unwrap();
    wait_for_pipes(&pull, 1).await;

    for bad in [
        WsMessage::Text("a text frame".into()),
        WsMessage::Binary(vec![7u8; 4096].into()),
    ] {
        let mut ws = raw_client(&url, port).await;
        wait_for_pipes(&pull, 2).await;
        ws.send(bad).await.unwrap();
        // The listener closes this connection...
        let end =
            tokio::time::timeout(T, async { while let Some(Ok(_)) = ws.next().await {} }).await;
        assert!(end.is_ok(), "connection not closed");
        sp_tests::wait_for_pipe_count(&pull, 1).await;
        // ...and the well-behaved pusher keeps delivering.
        push.send(&b"still here"[..]).await.unwrap();
        assert_eq!(pull.recv().await.unwrap().body.as_ref(), b"still here");
    }
    // A binary message within the limit from a raw client is delivered as one SP message.
    let mut ws = raw_client(&url, port).await;
    ws.send(WsMessage::Binary(b"raw binary".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(pull.recv().await.unwrap().body.as_ref(), b"raw binary");
    assert_no_worker_panics();
}

// ---------------------------------------------------------------------------------------------
// The other adapters

#[test]
fn smol_tls_and_ws() {
    smol::block_on(async {
        for url in [
            "tls+tcp://127.0.0.1:0",
            "ws://127.0.0.1:0/s",
            "wss://127.0.0.1:0/s",
        ] {
            let rep = sp_smol::Rep::new();
            let req = sp_smol::Req::new();
            rep.set_tls(server_tls());
            req.set_tls(client_tls());
            rep.set_recv_timeout(Some(T));
            req.set_recv_timeout(Some(T));
            let bound = rep.listen(url).await.unwrap();
            req.dial(&bound.to_string()).await.unwrap();
            req.send(&b"smol"[..]).await.unwrap();
            let m = rep.recv().await.unwrap();
            rep.send(m.body).await.unwrap();
            assert_eq!(req.recv().await.unwrap().body.as_ref(), b"smol", "{url}");
        }
    });
}

#[test]
fn blocking_tls_and_ws() {
    for url in [
        "tls+tcp://127.0.0.1:0",
        "ws://127.0.0.1:0/b",
        "wss://127.0.0.1:0/b",
    ] {
        let rep = sp_blocking::Rep::new();
        let req = sp_blocking::Req::new();
        rep.set_tls(server_tls());
        req.set_tls(client_tls());
        rep.set_recv_timeout(Some(T));
        req.set_recv_timeout(Some(T));
        let bound = rep.listen(url).unwrap();
        req.dial(bound.to_string()).unwrap();
        for i in 0..20 {
            let body = format!("blocking {i}").into_bytes();
            req.send(body.clone()).unwrap();
            let m = rep.recv().unwrap();
            rep.send(m.body).unwrap();
            assert_eq!(req.recv().unwrap().body.as_ref(), body.as_slice(), "{url}");
        }
    }
}

#[tokio::test]
async fn pair_over_all_secure_schemes_both_ways() {
    for scheme in ["tls+tcp", "wss"] {
        let a = Pair::new();
        let b = Pair::new();
        timeouts(&a);
        timeouts(&b);
        a.set_tls(server_tls());
        b.set_tls(client_tls());
        let path = if scheme == "tls+tcp" { "" } else { "/p" };
        let url = a
            .listen(&format!("{scheme}://127.0.0.1:0{path}"))
            .await
            .unwrap()
            .to_string();
        b.dial(&url).await.unwrap();
        b.send(&b"to a"[..]).await.unwrap();
        assert_eq!(a.recv().await.unwrap().body.as_ref(), b"to a");
        a.send(&b"to b"[..]).await.unwrap();
        assert_eq!(b.recv().await.unwrap().body.as_ref(), b"to b");
    }
}

#[tokio::test]
async fn tls_and_ws_over_ipv6_loopback() {
    if !sp_tests::ipv6_loopback_available() {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    }
    for url in ["tls+tcp://[::1]:0", "ws://[::1]:0/six", "wss://[::1]:0/six"] {
        let pull = Pull::new();
        timeouts(&pull);
        pull.set_tls(server_tls());
        let bound = pull.listen(url).await.expect("listen on ::1").to_string();
        assert!(bound.contains("[::1]"), "{bound}");
        let push = Push::new();
        push.set_tls(client_tls());
        push.dial(&bound).await.expect("dial ::1");
        push.send(&b"over ipv6"[..]).await.unwrap();
        assert_eq!(
            pull.recv().await.unwrap().body.as_ref(),
            b"over ipv6",
            "{url}"
        );
    }
}

#[tokio::test]
async fn large_messages_travel_as_continuation_frames() {
    // 4 MiB messages are sent in 1 MiB frames and reassembled; a receiver accepts frames of
    // at most 1 MiB, so one-frame sending would fail here.
    for url in ["ws://127.0.0.1:0/big", "wss://127.0.0.1:0/big"] {
        let pull = Pull::new();
        timeouts(&pull);
        pull.set_tls(server_tls());
        pull.set_recv_max_size(8 << 20).unwrap();
        let bound = pull.listen(url).await.unwrap().to_string();
        let push = Push::new();
        push.set_tls(client_tls());
        push.dial(&bound).await.unwrap();
        let body: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 253) as u8).collect();
        push.send(body.clone()).await.unwrap();
        assert_eq!(
            pull.recv().await.unwrap().body.as_ref(),
            body.as_slice(),
            "{url}"
        );
    }
}

#[tokio::test]
async fn ws_frame_length_claim_is_refused_even_without_a_size_limit() {
    use tokio::io::AsyncWriteExt;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    watch_worker_panics();
    let pull = Pull::new();
    timeouts(&pull);
    pull.set_recv_max_size(0).unwrap(); // unlimited messages
    let bound = pull.listen("ws://127.0.0.1:0/claim").await.unwrap();
    let url = bound.to_string();
    let (_, port) = bound.address().host_port().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut req = async_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        url.as_str(),
    )
    .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "pull.sp.nanomsg.org".parse().unwrap(),
    );
    let (mut ws, _) = async_tungstenite::client_async(req, tcp.compat())
        .await
        .unwrap();
    wait_for_pipes(&pull, 1).await;
    // A masked binary frame announcing 2^62 payload bytes, and four of them.
    let mut frame = vec![0x82, 0xFF];
    frame.extend_from_slice(&(1u64 << 62).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4, 9, 9, 9, 9]);
    let raw = ws.get_mut().get_mut();
    raw.write_all(&frame).await.unwrap();
    // The listener drops this connection without reserving the claim...
    sp_tests::wait_for_pipe_count(&pull, 0).await;
    // ...and keeps serving.
    let push = Push::new();
    push.dial(&url).await.unwrap();
    push.send(&b"after the claim"[..]).await.unwrap();
    assert_eq!(pull.recv().await.unwrap().body.as_ref(), b"after the claim");
    assert_no_worker_panics();
}
