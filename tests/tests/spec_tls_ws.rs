//! Spec 8.1 scenarios over the secure and WebSocket transports that `tls_ws.rs` leaves open:
//!
//! * **#21 WS bad version**: an upgrade asking for `Sec-WebSocket-Version` other than 13 (or
//!   naming none) is refused with HTTP `400`, as mangos (`TestWsBadWsVersion`) and NNG answer
//!   it (`404` when the path is unknown too); no pipe is made and the listener keeps serving
//!   real clients.
//! * **#24 TLS mutual authentication**: with a listener that requires client certificates,
//!   a client holding one exchanges messages, and each side's pipe reports the certificate
//!   the other side presented (the client's on the listener, the server's on the dialer);
//!   a plain-TCP pipe reports none, and client certificates that fail verification are
//!   refused.
//! * **#7 over TLS**: a receive limit of 100 lets 95- and 100-byte messages through and closes
//!   the connection on a 101-byte one (end to end, and on the bare length claim from a raw
//!   TLS peer), delivering nothing; a listener's own limit overrides the socket's.
//!
//! Scenario 23 (the request ID inside the WebSocket payload) is checked against raw WebSocket
//! peers. Certificates come from [`sp_tests::certs::pki`], generated per test process. Raw peers run
//! on blocking std sockets inside `spawn_blocking`, each read bounded by a timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sp_core::ProtocolId;
use sp_tests::certs::{client_tls_as, mutual_server_tls, pki, server_tls};
use sp_tests::harness::EventsWithin;
use sp_tests::{
    assert_no_worker_panics, framed, length_prefix, limited, sp_header, wait_until,
    watch_worker_panics,
};
use sp_tokio::{
    DetachReason, DropReason, Error, Pipe, PipeEvent, PipeEvents, Pull, Push, RefusalReason, Rep,
    Req, TlsConfig, TlsError, Transport,
};

/// How long a call or an event that must happen may take.
const T: Duration = Duration::from_secs(5);
/// How long to wait for something that must not happen.
const SHORT: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn timeouts<P: sp_transport::SocketCore>(s: &sp_tests::Sock<P>) {
    s.set_recv_timeout(Some(T));
    s.set_send_timeout(Some(T));
}

/// A REQ with the test timeouts and `tls` (if any), dialled to `url`.
async fn req_to(url: &str, tls: Option<sp_tokio::TlsConfig>) -> Req {
    let req = Req::new();
    timeouts(&req);
    if let Some(tls) = tls {
        req.set_tls(tls);
    }
    req.dial(url).await.expect("dial");
    req
}

/// `req` asks `body`; returns the request as `rep` received it (its pipe names the peer).
async fn ask(req: &Req, rep: &Rep, body: &[u8]) -> sp_tokio::Message {
    req.send(body.to_vec()).await.unwrap();
    let m = rep.recv().await.expect("the request");
    assert_eq!(m.body.as_ref(), body);
    m
}

/// `rep` echoes the request `m`; `req` gets it back.
async fn answer(rep: &Rep, req: &Req, m: sp_tokio::Message) {
    let body = m.body.clone();
    rep.send(m.body).await.unwrap();
    assert_eq!(req.recv().await.unwrap().body, body);
}

/// The DER bytes of the (single) certificate in `pem`: what a pipe reports.
fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("a PEM certificate")
        .as_ref()
        .to_vec()
}

/// The port a listener bound.
fn port_of(listener: &sp_tokio::Listener) -> u16 {
    listener
        .address()
        .host_port()
        .expect("a tcp-based address has a port")
        .1
}

async fn next_event(events: &mut PipeEvents, what: &str) -> PipeEvent {
    events
        .within(T)
        .await
        .unwrap_or_else(|| panic!("{what}: no pipe event within {T:?}"))
}

/// Reads `Attaching` then `Attached` for one pipe; returns it.
async fn expect_attach(events: &mut PipeEvents, what: &str) -> Pipe {
    let p = match next_event(events, what).await {
        PipeEvent::Attaching(p) => p,
        other => panic!("{what}: expected Attaching, got {other:?}"),
    };
    match next_event(events, what).await {
        PipeEvent::Attached(q) => {
            assert_eq!(
                p.id(),
                q.id(),
                "{what}: Attaching and Attached name one pipe"
            );
            q
        }
        other => panic!("{what}: expected Attached, got {other:?}"),
    }
}

async fn expect_detached(events: &mut PipeEvents, what: &str) -> (Pipe, DetachReason) {
    match next_event(events, what).await {
        PipeEvent::Detached { pipe, reason } => (pipe, reason),
        other => panic!("{what}: expected Detached, got {other:?}"),
    }
}

/// Asserts that a receive on `pull` waits [`SHORT`] in vain: nothing was delivered.
async fn expect_nothing(pull: &Pull, case: &str) {
    let late = pull.recv_until(Instant::now() + SHORT).await;
    assert!(
        matches!(late, Err(Error::TimedOut)),
        "{case}: expected a timeout, got {late:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Scenario 21: WebSocket upgrade with a bad Sec-WebSocket-Version

/// Sends an upgrade request for `path` that is valid except for its version header
/// (`version` `None`: no version header at all). Returns the server's reply head (empty when
/// the server closed without answering) and the connection, still open on our side.
fn upgrade_with_version(port: u16, path: &str, version: Option<&str>) -> (String, TcpStream) {
    upgrade_with(port, "GET", path, version, None)
}

/// Sends an upgrade request with `method` for `path`, its version header as `version` says,
/// and without the header named `omit` (if any); returns as [`upgrade_with_version`].
fn upgrade_with(
    port: u16,
    method: &str,
    path: &str,
    version: Option<&str>,
    omit: Option<&str>,
) -> (String, TcpStream) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the ws listener");
    s.set_read_timeout(Some(T)).unwrap();
    let version = version.map(|v| format!("Sec-WebSocket-Version: {v}"));
    let lines = [
        Some(format!("Host: 127.0.0.1:{port}")),
        Some("Upgrade: websocket".to_string()),
        Some("Connection: Upgrade".to_string()),
        version,
        Some("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_string()),
        Some("Sec-WebSocket-Protocol: rep.sp.nanomsg.org".to_string()),
    ];
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for line in lines.into_iter().flatten() {
        if omit.is_none_or(|name| !line.starts_with(&format!("{name}:"))) {
            request.push_str(&line);
            request.push_str("\r\n");
        }
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes())
        .expect("write the upgrade request");
    // Byte by byte, so that nothing after the head (a refusal's body) is consumed here.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) if is_timeout(&e) => panic!("no answer to the upgrade within {T:?}"),
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), s)
}

/// Reads (and discards) until the server closes `s`; panics if it is still open after [`T`].
fn expect_server_closes(mut s: TcpStream, case: &str) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => panic!("{case}: the refused connection stays open"),
            Err(_) => return,
        }
    }
}

/// Spec 8.1 #21 (mangos `TestWsBadWsVersion`; NNG refuses version != 13 with 400 too): the
/// request is otherwise a correct upgrade for the listener's path and protocol, so only the
/// version can be the reason. Other malformed upgrades (no key, no `Connection: upgrade`,
/// not a `GET`) get the same 400 rather than a silent close. RFC 6455 4.2.2 also asks the refusal to name the version the
/// server speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ws_upgrades_are_refused_with_400() {
    limited(async {
        watch_worker_panics();
        let rep = Rep::new();
        timeouts(&rep);
        let bound = rep.listen("ws://127.0.0.1:0/path").await.expect("listen");
        let port = port_of(&bound);

        let refusals = tokio::task::spawn_blocking(move || {
            [
                ("version 12", "/path", Some("12"), "400"),
                ("no version header", "/path", None, "400"),
                // Routing comes first, as in NNG and mangos: an unknown path is a 404.
                (
                    "version 12 on an unknown path",
                    "/elsewhere",
                    Some("12"),
                    "404",
                ),
            ]
            .map(|(case, path, version, status)| {
                let (head, conn) = upgrade_with_version(port, path, version);
                expect_server_closes(conn, case);
                (case, head, status)
            })
            .into_iter()
            .chain(
                [
                    ("no key", "GET", Some("Sec-WebSocket-Key")),
                    ("no Connection: upgrade", "GET", Some("Connection")),
                    ("a POST", "POST", None),
                ]
                .map(|(case, method, omit)| {
                    let (head, conn) = upgrade_with(port, method, "/path", Some("13"), omit);
                    expect_server_closes(conn, case);
                    (case, head, "400")
                }),
            )
            .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        for (case, head, status) in &refusals {
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status} ")),
                "{case}: expected a {status} refusal, got {head:?}"
            );
            let names_13 = head.lines().any(|l| {
                l.split_once(':').is_some_and(|(name, value)| {
                    name.eq_ignore_ascii_case("sec-websocket-version") && value.trim() == "13"
                })
            });
            assert_eq!(
                names_13,
                *status == "400",
                "{case}: a version refusal names the supported version: {head:?}"
            );
        }
        // The refusals were decided before any pipe existed.
        assert_eq!(rep.stats().pipes_attached, 0);
        assert_eq!(rep.pipe_count(), 0);

        // The control: the same raw request with version 13 is accepted and becomes a pipe.
        let (head, conn) =
            tokio::task::spawn_blocking(move || upgrade_with_version(port, "/path", Some("13")))
                .await
                .unwrap();
        assert!(head.starts_with("HTTP/1.1 101 "), "version 13: {head:?}");
        sp_tests::wait_for_pipes(&rep, 1).await;
        drop(conn);
        wait_until("the raw client's pipe to go", T, || rep.pipe_count() == 0).await;
        assert_eq!(rep.stats().pipes_attached, 1);

        // A real REQ still gets through the same listener.
        let req = req_to(&bound.to_string(), None).await;
        let m = ask(&req, &rep, b"version 13").await;
        answer(&rep, &req, m).await;
        assert_no_worker_panics();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Scenario 24: mutual TLS, and the pipe reports the verified peer

/// Spec 8.1 #24 (NNG `test_tls_cert_mutual`, which reads `tls-verified` off the pipe): with a
/// listener that requires client certificates, a client holding one signed by the CA
/// exchanges messages; the listener's pipe carries the client's certificate (DER, the leaf
/// only) and the dialer's pipe the server's. Over `tls+tcp` and `wss`, which share the TLS
/// layer but not the code that attaches the pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_pipes_report_the_peer_certificate() {
    limited(async {
        watch_worker_panics();
        let p = pki();
        let (client_der, server_der) = (der(&p.client.cert_pem), der(&p.server.cert_pem));
        for url in ["tls+tcp://127.0.0.1:0", "wss://127.0.0.1:0/mutual"] {
            let rep = Rep::new();
            timeouts(&rep);
            rep.set_tls(mutual_server_tls());
            let bound = rep.listen(url).await.expect("listen").to_string();
            let req = req_to(&bound, Some(client_tls_as(Some(&p.client)))).await;
            let m = ask(&req, &rep, b"who am i").await;

            let theirs = rep
                .pipe(m.pipe.expect("a received message names its pipe"))
                .expect("the pipe is attached");
            assert!(!theirs.is_dialed(), "{url}");
            assert!(
                matches!(theirs.transport(), Transport::Tls | Transport::Wss),
                "{url}: {:?}",
                theirs.transport()
            );
            assert_eq!(
                theirs.tls_peer_certificate(),
                Some(client_der.as_slice()),
                "{url}: the listener's pipe reports the client's certificate"
            );
            let ours = req.pipes();
            assert_eq!(ours.len(), 1, "{url}");
            assert_eq!(
                ours[0].tls_peer_certificate(),
                Some(server_der.as_slice()),
                "{url}: the dialer's pipe reports the server's certificate"
            );

            answer(&rep, &req, m).await;
        }
        assert_no_worker_panics();
    })
    .await;
}

/// The other half of #24: a certificate is reported only when one was presented and
/// verified. A plain-TCP pipe has none; a TLS listener that does not ask for client
/// certificates reports none even for a client that holds one (rustls never sends it
/// unasked); and a client certificate from a CA the listener does not trust is refused during
/// the handshake, leaving no pipe (NNG `test_tls_bad_cert_mutual`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_verified_tls_peers_report_a_certificate() {
    limited(async {
        watch_worker_panics();
        let p = pki();
        let rep = Rep::new();
        timeouts(&rep);
        rep.set_tls(server_tls());
        let tcp_url = rep
            .listen("tcp://127.0.0.1:0")
            .await
            .expect("listen tcp")
            .to_string();
        let tls_url = rep
            .listen("tls+tcp://127.0.0.1:0")
            .await
            .expect("listen tls")
            .to_string();
        for (url, expected) in [(&tcp_url, Transport::Tcp), (&tls_url, Transport::Tls)] {
            let req = req_to(url, Some(client_tls_as(Some(&p.client)))).await;
            let m = ask(&req, &rep, b"anyone").await;
            let pipe = rep.pipe(m.pipe.expect("pipe id")).expect("attached pipe");
            assert_eq!(pipe.transport(), expected, "{url}");
            assert_eq!(
                pipe.tls_peer_certificate(),
                None,
                "{url}: no certificate was presented"
            );
            answer(&rep, &req, m).await;
            req.close().await;
        }
        wait_until("the two clients' pipes to go", T, || rep.pipe_count() == 0).await;

        // A listener requiring client certificates verifies them: one that no trusted CA
        // signed is refused, and so is one from the trusted CA that is not meant for clients
        // (the test server certificate: its extended key usage is server auth only).
        let strict = Rep::new();
        timeouts(&strict);
        strict.set_tls(mutual_server_tls());
        let strict_url = strict
            .listen("tls+tcp://127.0.0.1:0")
            .await
            .expect("listen mutual")
            .to_string();
        let self_signed = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("self-signed certificate");
        let self_signed = TlsConfig::builder()
            .ca_pem(p.ca_pem.clone())
            .cert_key_pem(
                self_signed.cert.pem(),
                self_signed.signing_key.serialize_pem(),
            )
            .build()
            .expect("client tls");
        let cases = [
            (
                "self-signed",
                self_signed,
                rustls::AlertDescription::UnknownCA,
            ),
            (
                "server-only usage",
                client_tls_as(Some(&p.server)),
                rustls::AlertDescription::UnsupportedCertificate,
            ),
        ];
        for (n, (case, tls, alert)) in cases.into_iter().enumerate() {
            let stranger = Req::new();
            stranger.set_tls(tls);
            stranger.set_handshake_timeout(T).unwrap();
            let err = stranger
                .dial(&strict_url)
                .await
                .expect_err("an unverifiable client certificate was accepted");
            let msg = err.to_string();
            match err {
                Error::Tls {
                    source: TlsError::PeerRefused(got),
                    ..
                } => assert_eq!(got, alert, "{case}: {msg}"),
                other => panic!("{case}: expected the server's TLS refusal, got {other:?}"),
            }
            wait_until("the listener to count the tls refusal", T, || {
                strict.stats().refused.get(RefusalReason::Tls) == n as u64 + 1
            })
            .await;
        }
        assert_eq!(strict.stats().pipes_attached, 0);
        assert_no_worker_panics();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Scenario 7 over TLS: the receive limit closes the connection

/// A raw TLS client (rustls over a blocking std socket) that trusts the test CA.
fn raw_tls_connect(port: u16) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki().ca_pem.as_bytes()).expect("ca pem"))
        .expect("add ca");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1".to_owned()).expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("tls client");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(T)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

type RawTls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Asserts the connection stays open, with nothing to read, for `window`.
fn expect_open(raw: &mut RawTls, window: Duration, case: &str) {
    raw.sock.set_read_timeout(Some(window)).unwrap();
    let mut buf = [0u8; 64];
    match raw.read(&mut buf) {
        Err(e) if is_timeout(&e) => {}
        Ok(0) => panic!("{case}: our listener closed a connection it should keep"),
        Ok(n) => panic!("{case}: unexpected bytes {:02x?}", &buf[..n]),
        Err(e) => panic!("{case}: connection failed: {e}"),
    }
}

/// Reads until the listener closes the connection (close_notify, EOF or reset); panics if it
/// is still open after `within`. Returns the application bytes read on the way.
fn expect_closed(raw: &mut RawTls, within: Duration, case: &str) -> Vec<u8> {
    let end = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{case}: our listener did not close the connection within {within:?}"
        );
        raw.sock.set_read_timeout(Some(left)).unwrap();
        match raw.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {
                panic!("{case}: our listener did not close the connection within {within:?}")
            }
            Err(_) => return got,
        }
    }
}

/// Spec 8.1 #7 over TLS with a raw peer, mirroring `bad_input.rs`'s `recv_max_raw`: limit
/// 100, a 95-byte and a 100-byte message arrive intact, and the bare length claim of 101
/// bytes (no payload follows) closes the connection: the limit is checked on the length,
/// inside the TLS channel, before anything is read or reserved. Nothing more is delivered,
/// and the listener still serves a well-behaved PUSH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_recv_max_100_accepts_100_and_closes_on_a_101_claim() {
    limited(async {
        watch_worker_panics();
        let pull = Pull::new();
        timeouts(&pull);
        pull.set_tls(server_tls());
        pull.set_recv_max_size(100).unwrap();
        let bound = pull.listen("tls+tcp://127.0.0.1:0").await.expect("listen");
        let port = port_of(&bound);
        let m95: Vec<u8> = (0..95u8).collect();
        let m100: Vec<u8> = (0..100u8).rev().collect();

        let frames = [
            framed(sp_tests::Transport::Tcp, &m95),
            framed(sp_tests::Transport::Tcp, &m100),
        ]
        .concat();
        let mut raw = tokio::task::spawn_blocking(move || {
            let mut raw = raw_tls_connect(port);
            raw.write_all(&sp_header(ProtocolId::PUSH.0))
                .expect("send our header");
            let mut got = [0u8; 8];
            raw.read_exact(&mut got)
                .expect("read the listener's header");
            assert_eq!(
                got,
                sp_header(ProtocolId::PULL.0),
                "listener's handshake bytes"
            );
            raw.write_all(&frames).expect("send two frames");
            raw.flush().unwrap();
            raw
        })
        .await
        .unwrap();
        assert_eq!(
            pull.recv().await.expect("95-byte message").body.as_ref(),
            &m95[..]
        );
        assert_eq!(
            pull.recv().await.expect("100-byte message").body.as_ref(),
            &m100[..]
        );

        raw = tokio::task::spawn_blocking(move || {
            expect_open(&mut raw, Duration::from_millis(100), "after two frames");
            raw.write_all(&length_prefix(sp_tests::Transport::Tcp, 101))
                .expect("send the claim");
            raw.flush().unwrap();
            let got = expect_closed(&mut raw, T, "101-byte claim");
            assert!(got.is_empty(), "a PULL sends nothing: {got:02x?}");
            raw
        })
        .await
        .unwrap();
        drop(raw);
        wait_until("the raw peer's pipe to go", T, || pull.pipe_count() == 0).await;
        assert_eq!(pull.stats().dropped.get(DropReason::TooLarge), 1);

        // The listener keeps serving; the good message is the next one delivered.
        let push = Push::new();
        timeouts(&push);
        push.set_tls(client_tls_as(None));
        push.dial(&bound.to_string()).await.expect("good dial");
        push.send(&b"after the claim"[..]).await.unwrap();
        assert_eq!(pull.recv().await.unwrap().body.as_ref(), b"after the claim");
        assert_no_worker_panics();
    })
    .await;
}

/// Spec 8.1 #7 over TLS end to end, mirroring `bad_input.rs`'s `recv_max_end_to_end` with
/// our own PUSH: limit 100 on the listening socket, 95 and 100 bytes arrive, 101 do not (the
/// receive times out) because the listener closes that pipe as misbehaving; the sender's
/// dialer then reconnects and traffic resumes. Pipe events replace the tcp test's retry loop:
/// the next message is sent once the new pipe is up on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_recv_max_100_drops_our_own_101_byte_message() {
    limited(async {
        watch_worker_panics();
        let pull = Pull::new();
        timeouts(&pull);
        pull.set_tls(server_tls());
        pull.set_recv_max_size(100).unwrap();
        let mut events = pull.pipe_events();
        let url = pull
            .listen("tls+tcp://127.0.0.1:0")
            .await
            .expect("listen")
            .to_string();
        let push = Push::new();
        timeouts(&push);
        push.set_tls(client_tls_as(None));
        push.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100));
        push.dial(&url).await.expect("dial");
        let first = expect_attach(&mut events, "the first pipe").await;
        wait_until("the sender's pipe", T, || push.pipe_count() == 1).await;
        let sender_pipe = push.pipes()[0].id();

        push.send(vec![7u8; 95]).await.unwrap();
        assert_eq!(pull.recv().await.expect("95 bytes arrive").body.len(), 95);
        push.send(vec![8u8; 100]).await.unwrap();
        assert_eq!(pull.recv().await.expect("100 bytes arrive").body.len(), 100);
        push.send(vec![9u8; 101])
            .await
            .expect("the sender's send succeeds");

        let (gone, reason) = expect_detached(&mut events, "the oversize pipe").await;
        assert_eq!(gone.id(), first.id());
        assert!(
            matches!(reason, DetachReason::PeerMisbehaved(_)),
            "{reason:?}"
        );
        assert_eq!(pull.stats().dropped.get(DropReason::TooLarge), 1);
        expect_nothing(&pull, "101 bytes must not arrive").await;

        // The dialer reconnects by itself; traffic resumes over the new pipe.
        let again = expect_attach(&mut events, "the redialed pipe").await;
        assert_ne!(again.id(), first.id());
        wait_until("the sender's new pipe", T, || {
            let pipes = push.pipes();
            pipes.len() == 1 && pipes[0].id() != sender_pipe
        })
        .await;
        push.send(vec![10u8; 95]).await.unwrap();
        let m = pull.recv().await.expect("traffic resumes");
        assert_eq!(m.body.as_ref(), &[10u8; 95][..]);
        assert_eq!(m.pipe, Some(again.id()));
        assert_no_worker_panics();
    })
    .await;
}

/// Spec 8.1 #7's last sentence over TLS (NNG `test_tls_recv_max` sets the limit on the
/// listener): a listener's own receive limit overrides the socket's in both directions. The
/// socket says 100; listener `wide` says 1000 and lets 150 bytes through, while `narrow`,
/// which kept the socket's 100, closes the pipe that sent the same 150 bytes. Then `tight`
/// says 50 and refuses 60 bytes the socket's limit would allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_recv_max_size_overrides_the_socket() {
    limited(async {
        watch_worker_panics();
        let pull = Pull::new();
        timeouts(&pull);
        pull.set_tls(server_tls());
        pull.set_recv_max_size(100).unwrap();
        let mut events = pull.pipe_events();

        let wide = pull.listener("tls+tcp://127.0.0.1:0").expect("listener");
        wide.set_recv_max_size(1000).expect("the listener's limit");
        wide.start().expect("start wide");
        let narrow = pull.listen("tls+tcp://127.0.0.1:0").await.expect("narrow");
        let tight = pull.listener("tls+tcp://127.0.0.1:0").expect("listener");
        tight.set_recv_max_size(50).expect("the listener's limit");
        tight.start().expect("start tight");
        assert_eq!(wide.options().recv_max_size, 1000);
        assert_eq!(narrow.options().recv_max_size, 100);
        assert_eq!(tight.options().recv_max_size, 50);
        assert_eq!(pull.recv_max_size(), 100, "the socket keeps its own limit");

        // The senders must not redial within the test (the first redial comes after at
        // least 30 s), so that the only pipe events are the ones this test causes.
        let connect = |listener: &sp_tokio::Listener| {
            let url = listener.to_string();
            async move {
                let push = Push::new();
                timeouts(&push);
                push.set_reconnect_backoff(Duration::from_secs(60), Duration::from_secs(60));
                push.set_tls(client_tls_as(None));
                push.dial(&url).await.expect("dial");
                push
            }
        };
        let to_wide = connect(&wide).await;
        let via_wide = expect_attach(&mut events, "wide's pipe").await;
        assert_eq!(via_wide.endpoint(), Some(wide.id()));
        let to_narrow = connect(&narrow).await;
        let via_narrow = expect_attach(&mut events, "narrow's pipe").await;
        assert_eq!(via_narrow.endpoint(), Some(narrow.id()));
        let to_tight = connect(&tight).await;
        let via_tight = expect_attach(&mut events, "tight's pipe").await;
        assert_eq!(via_tight.endpoint(), Some(tight.id()));

        to_wide.send(vec![1u8; 150]).await.unwrap();
        let m = pull.recv().await.expect("150 bytes pass the wide listener");
        assert_eq!(m.body.as_ref(), &[1u8; 150][..]);
        assert_eq!(m.pipe, Some(via_wide.id()));

        for (push, via, len, case) in [
            (
                &to_narrow,
                &via_narrow,
                150,
                "150 bytes at the socket's 100",
            ),
            (&to_tight, &via_tight, 60, "60 bytes at tight's 50"),
        ] {
            push.send(vec![2u8; len]).await.unwrap();
            let (gone, reason) = expect_detached(&mut events, case).await;
            assert_eq!(gone.id(), via.id(), "{case}");
            assert!(
                matches!(reason, DetachReason::PeerMisbehaved(_)),
                "{case}: {reason:?}"
            );
            expect_nothing(&pull, case).await;
        }
        assert_eq!(pull.stats().dropped.get(DropReason::TooLarge), 2);
        // The wide pipe was untouched by its neighbours' drops.
        assert!(!via_wide.is_closed());
        to_wide.send(vec![3u8; 1000]).await.unwrap();
        assert_eq!(pull.recv().await.unwrap().body.len(), 1000);
        assert_no_worker_panics();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Scenario 23: the SP header travels inside the WebSocket payload

/// Spec 8.1 #23 (mangos `TestWsMessageHeader`): over `ws://` a REQ's request is one binary
/// frame holding the 4-byte request ID (high bit set) and then the body, with no length
/// prefix, and a REP's reply carries the same ID back in front of its body. Checked from both
/// sides with a raw WebSocket peer (async-tungstenite), so no third-party SP peer is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_frames_carry_the_request_id_in_their_payload() {
    use async_tungstenite::tungstenite::client::IntoClientRequest;
    use async_tungstenite::tungstenite::handshake::server::{Request, Response};
    use async_tungstenite::tungstenite::Message as WsMessage;
    use futures_util::StreamExt;
    use tokio_util::compat::TokioAsyncReadCompatExt;

    limited(async {
        watch_worker_panics();
        // Our REP, a raw WebSocket REQ: the raw request's ID comes back on the reply.
        let rep = Rep::new();
        timeouts(&rep);
        let bound = rep.listen("ws://127.0.0.1:0/rr").await.expect("listen");
        let url = bound.to_string();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port_of(&bound)))
            .await
            .unwrap();
        let mut request = url.as_str().into_client_request().unwrap();
        // The subprotocol names the listener's protocol, as NNG and mangos do.
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "rep.sp.nanomsg.org".parse().unwrap(),
        );
        let (mut ws, _) = async_tungstenite::client_async(request, tcp.compat())
            .await
            .expect("raw ws client");
        ws.send(WsMessage::Binary(b"\x80\x00\x00\x2aping".to_vec().into()))
            .await
            .unwrap();
        let m = rep.recv().await.expect("the raw request");
        assert_eq!(
            m.body.as_ref(),
            b"ping",
            "the ID is the header, not the body"
        );
        rep.send(&b"pong"[..]).await.unwrap();
        match ws.next().await.expect("a reply frame").unwrap() {
            WsMessage::Binary(payload) => assert_eq!(payload.as_ref(), b"\x80\x00\x00\x2apong"),
            other => panic!("the reply is not one binary frame: {other:?}"),
        }

        // Our REQ, a raw WebSocket REP: the request's frame is the ID and the body.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // tungstenite's callback type fixes the error's size.
            #[allow(clippy::result_large_err)]
            let choose = |req: &Request, mut res: Response| {
                let asked = req
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                assert!(asked.contains("rep.sp.nanomsg.org"), "asked for {asked:?}");
                res.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    "rep.sp.nanomsg.org".parse().unwrap(),
                );
                Ok(res)
            };
            let mut ws = async_tungstenite::accept_hdr_async(tcp.compat(), choose)
                .await
                .expect("raw ws server");
            let payload = match ws.next().await.expect("a request frame").unwrap() {
                WsMessage::Binary(payload) => payload,
                other => panic!("the request is not one binary frame: {other:?}"),
            };
            assert_eq!(
                payload.len(),
                4 + 5,
                "a 4-byte ID and the body: {payload:?}"
            );
            assert!(
                payload[0] & 0x80 != 0,
                "the ID's high bit is set: {payload:?}"
            );
            assert_eq!(&payload[4..], b"hello");
            let mut reply = payload[..4].to_vec();
            reply.extend_from_slice(b"world");
            ws.send(WsMessage::Binary(reply.into())).await.unwrap();
            // Held open until the REQ has its reply.
            ws.next().await;
        });
        let req = req_to(&format!("ws://127.0.0.1:{port}/"), None).await;
        req.send(&b"hello"[..]).await.unwrap();
        assert_eq!(
            req.recv().await.expect("the raw reply").body.as_ref(),
            b"world"
        );
        req.close().await;
        server.await.expect("the raw server's checks");
        assert_no_worker_panics();
    })
    .await;
}
