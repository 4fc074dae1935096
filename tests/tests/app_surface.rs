//! The application surface, on every adapter: endpoint handles (`Dialer`, `Listener`) with
//! their own options and `close`, pipe views and pipe events (the hook and the streams),
//! socket / pipe / endpoint statistics with exact counts, queue lengths, adopted streams and
//! `abstract://` sockets. One test at the bottom has a real NNG peer (nngcat).
//!
//! `app_suite!(module, adapter, run)` expands every scenario for one adapter, as
//! `conformance.rs` does: `adapter` names the typed sockets and the handle types (`Listener`,
//! `Dialer`, `PipeEvents`) with the async API of `sp_transport`, and `run` drives an async
//! test body. sp-blocking joins through `sp_tests::harness::blocking_shim`, whose `async fn`s
//! make each blocking call inline (every one of them bounded by a timeout or deadline).
//!
//! No scenario sleeps to synchronise: waits poll a condition or read pipe events, each with a
//! deadline. Every body also runs under an overall time limit.

use std::io::{Read, Write};
use std::time::Duration;

use sp_core::ProtocolId;
use sp_tests::harness::{run_blocking, run_smol, run_tokio, wait_for, with_limit, EventsWithin};
use sp_tests::{free_tcp_port, inproc_url};
use sp_transport::{
    Address, DetachReason, DropReason, Error, PipeEvent, PipeId, PipeVerdict, RefusalReason,
    SocketOptions, Transport as PipeTransport,
};

/// How long a call or an event that must happen may take.
const T: Duration = Duration::from_secs(5);
/// How long to wait for something that must not happen.
const SHORT: Duration = Duration::from_millis(300);
/// The most any one test body may take.
const LIMIT: Duration = Duration::from_secs(40);

/// The port of a TCP address.
fn tcp_port(a: &Address) -> u16 {
    match a {
        Address::Tcp { port, .. } => *port,
        other => panic!("expected a tcp:// address, got {other}"),
    }
}

/// The host of a TCP address.
fn tcp_host(a: &Address) -> &str {
    match a {
        Address::Tcp { host, .. } => host,
        other => panic!("expected a tcp:// address, got {other}"),
    }
}

/// The effective ID on the `Uid:` or `Gid:` line of `/proc/self/status`.
#[cfg(target_os = "linux")]
fn proc_status_id(key: &str) -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} line in /proc/self/status"));
    // "Uid:\treal\teffective\tsaved\tfs"
    line.split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad {key} line: {line:?}"))
}

/// A unique `abstract://` name for this process.
#[cfg(target_os = "linux")]
fn abstract_url(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("abstract://sp-tests-{tag}-{}-{n}", std::process::id())
}

/// A PULL peer written by hand on a std `TcpListener`: it completes the SP handshake
/// (header `00 53 50 00 00 51 00 00`), checks that the dialer announced PUSH, then never reads
/// again, so everything sent to it piles up. It accepts one connection (redials are refused)
/// and holds it until `done` is dropped or signalled.
struct StalledPull {
    url: String,
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl StalledPull {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the raw peer");
        let url = format!("tcp://{}", listener.local_addr().expect("local addr"));
        let (done, stop) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("the raw peer accepts");
            drop(listener);
            conn.write_all(&[0x00, b'S', b'P', 0x00, 0x00, 0x51, 0x00, 0x00])
                .expect("the raw peer writes its header");
            let mut header = [0u8; 8];
            conn.read_exact(&mut header)
                .expect("the raw peer reads the dialer's header");
            assert_eq!(header, [0x00, b'S', b'P', 0x00, 0x00, 0x50, 0x00, 0x00]);
            // Never read again; keep the connection until the test is done.
            let _ = stop.recv_timeout(LIMIT);
            drop(conn);
        });
        Self { url, done, thread }
    }

    fn finish(self) {
        let _ = self.done.send(());
        self.thread.join().expect("the raw peer thread");
    }
}

/// A TCP stream whose connection was reset by its peer: `peer_addr` fails with `ENOTCONN`.
fn reset_tcp_stream() -> std::net::TcpStream {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    // Unread data at close makes the kernel answer with RST instead of FIN.
    client.write_all(b"unread").expect("write");
    // Make sure the bytes arrived before the server closes.
    let mut seen = [0u8; 6];
    server.peek(&mut seen).expect("peek");
    drop(server);
    client
        .set_read_timeout(Some(T))
        .expect("set a read timeout");
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected a reset connection, got {other:?}"),
    }
    assert!(
        client.peer_addr().is_err(),
        "a reset stream should have no peer"
    );
    client
}

/// Expands every scenario for one adapter; see the file docs.
macro_rules! app_suite {
    ($module:ident, $adapter:path, $run:path) => {
        mod $module {
            use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
            use std::sync::{Arc, Mutex};
            use std::time::{Duration, Instant};

            use sp_transport::SocketCore;
            use $adapter as sp;

            use super::*;

            fn run(body: impl std::future::Future<Output = ()>) {
                $run(with_limit(LIMIT, body))
            }

            // -----------------------------------------------------------------------------
            // Helpers

            /// Opens a socket with the suite's timeouts and a fast reconnect.
            fn open<P: SocketCore>() -> sp::Socket<P> {
                let s = sp::Socket::<P>::new();
                s.set_recv_timeout(Some(T));
                s.set_send_timeout(Some(T));
                s.set_reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100));
                s
            }

            async fn tcp_listener<P: SocketCore>(s: &sp::Socket<P>) -> sp::Listener {
                s.listen("tcp://127.0.0.1:0").await.expect("listen on tcp")
            }

            /// The next pipe event; panics after `T`.
            async fn next_event(ev: &mut sp::PipeEvents, what: &str) -> PipeEvent {
                ev.within(T)
                    .await
                    .unwrap_or_else(|| panic!("no pipe event within {T:?} ({what})"))
            }

            /// Attaching then Attached for one pipe; returns it.
            async fn expect_attach(ev: &mut sp::PipeEvents, what: &str) -> sp::Pipe {
                let p = match next_event(ev, what).await {
                    PipeEvent::Attaching(p) => p,
                    other => panic!("{what}: expected Attaching, got {other:?}"),
                };
                let q = match next_event(ev, what).await {
                    PipeEvent::Attached(p) => p,
                    other => panic!("{what}: expected Attached, got {other:?}"),
                };
                assert_eq!(
                    p.id(),
                    q.id(),
                    "{what}: Attaching and Attached name one pipe"
                );
                q
            }

            async fn expect_detached(
                ev: &mut sp::PipeEvents,
                what: &str,
            ) -> (sp::Pipe, DetachReason) {
                match next_event(ev, what).await {
                    PipeEvent::Detached { pipe, reason } => (pipe, reason),
                    other => panic!("{what}: expected Detached, got {other:?}"),
                }
            }

            /// Sends the messages `body(0)`, `body(1)`, ... until a send waits `SHORT` in vain
            /// (the peer stopped reading: the kernel's buffers and the pipe's queue are full);
            /// returns how many were sent.
            async fn send_until_stalled(push: &sp::Push, body: impl Fn(u32) -> Vec<u8>) -> u32 {
                let mut sent = 0u32;
                loop {
                    match push
                        .send_until(body(sent), Instant::now() + SHORT)
                        .await
                        .map_err(Error::from)
                    {
                        Ok(()) => sent += 1,
                        Err(Error::TimedOut) => return sent,
                        Err(e) => panic!("send: {e:?}"),
                    }
                    assert!(sent < 4000, "the peer never stalled");
                }
            }

            /// No event arrives within `SHORT`.
            async fn expect_no_event(ev: &mut sp::PipeEvents, what: &str) {
                if let Some(e) = ev.within(SHORT).await {
                    panic!("{what}: unexpected event {e:?}");
                }
            }

            fn invalid_option(e: Error, option: &str) -> String {
                match e {
                    Error::InvalidOption {
                        option: o, value, ..
                    } => {
                        assert_eq!(o, option, "the error names the option");
                        value
                    }
                    other => panic!("expected InvalidOption for {option}, got {other:?}"),
                }
            }

            // -----------------------------------------------------------------------------
            // 1. Endpoints

            /// `listen` returns a listener whose address has the real port; a dial takes the
            /// listener itself, its `Address` or a `&str`.
            #[test]
            fn listen_returns_the_bound_address_and_dial_takes_every_form() {
                run(async {
                    let pull: sp::Pull = open();
                    let l = tcp_listener(&pull).await;
                    let bound = l.address();
                    assert_ne!(tcp_port(&bound), 0, "the bound port is real");
                    assert_eq!(tcp_host(&bound), "127.0.0.1");
                    assert_eq!(l.to_string(), bound.to_string());
                    assert_eq!(
                        l.to_string(),
                        format!("tcp://127.0.0.1:{}", tcp_port(&bound))
                    );
                    assert_eq!(
                        l.url().to_string(),
                        "tcp://127.0.0.1:0",
                        "url() is as given"
                    );

                    let (a, b, c): (sp::Push, sp::Push, sp::Push) = (open(), open(), open());
                    let da = a.dial(&l).await.expect("dial the listener itself");
                    let db = b.dial(l.address()).await.expect("dial an Address");
                    let url = l.to_string();
                    let dc = c.dial(url.as_str()).await.expect("dial a &str");
                    assert_eq!(da.url(), &bound);
                    assert_eq!(db.url(), &bound);
                    assert_eq!(dc.url(), &bound);
                    assert_ne!(da.id(), db.id());
                    assert_ne!(da.id(), l.id());
                    wait_for("three pipes", T, || pull.pipe_count() == 3).await;

                    for (s, body) in [(&a, "a"), (&b, "b"), (&c, "c")] {
                        s.send(body).await.expect("send");
                    }
                    let mut got = Vec::new();
                    for _ in 0..3 {
                        got.push(pull.recv().await.expect("PULL receives").body.to_vec());
                    }
                    got.sort();
                    assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
                    let ls = l.stats();
                    assert_eq!(ls.accepted, 3);
                    assert_eq!(ls.pipes_attached, 3);
                    assert_eq!(ls.pipes_open, 3);
                    assert_eq!(da.stats().dial_attempts, 1);
                    assert_eq!(da.stats().pipes_open, 1);
                });
            }

            /// Closing one listener closes its pipes only; closing it again is `Closed`.
            #[test]
            fn closing_a_listener_closes_only_its_pipes() {
                run(async {
                    let pull: sp::Pull = open();
                    let l1 = tcp_listener(&pull).await;
                    let l2 = tcp_listener(&pull).await;
                    let (a, b): (sp::Push, sp::Push) = (open(), open());
                    let mut a_events = a.pipe_events();
                    let mut pull_events = pull.pipe_events();
                    a.dial(&l1).await.expect("A dials L1");
                    let a_pipe = expect_attach(&mut a_events, "A's pipe").await;
                    let l1_pipe = expect_attach(&mut pull_events, "PULL's pipe from A").await;
                    assert_eq!(l1_pipe.endpoint(), Some(l1.id()));
                    b.dial(&l2).await.expect("B dials L2");
                    let l2_pipe = expect_attach(&mut pull_events, "PULL's pipe from B").await;
                    assert_eq!(l2_pipe.endpoint(), Some(l2.id()));
                    assert_eq!(pull.pipe_count(), 2);

                    l1.close().expect("close L1");
                    assert!(l1.is_closed());
                    assert!(!l2.is_closed());
                    let (gone, reason) = expect_detached(&mut pull_events, "L1's pipe").await;
                    assert_eq!(gone.id(), l1_pipe.id());
                    assert_eq!(reason, DetachReason::Local);
                    let (a_gone, a_reason) = expect_detached(&mut a_events, "A's pipe").await;
                    assert_eq!(a_gone.id(), a_pipe.id());
                    assert_eq!(a_reason, DetachReason::PeerClosed);
                    assert_eq!(pull.pipe_count(), 1);
                    assert!(pull.pipes().iter().all(|p| p.endpoint() == Some(l2.id())));
                    assert_eq!(l1.stats().pipes_open, 0);
                    assert_eq!(l2.stats().pipes_open, 1);

                    b.send("still here").await.expect("B sends");
                    let m = pull.recv().await.expect("L2's pipe still carries messages");
                    assert_eq!(&m.body[..], b"still here");

                    assert!(
                        matches!(l1.close(), Err(Error::Closed)),
                        "closing twice is Closed"
                    );
                    // Nothing listens on L1's port any more.
                    let c: sp::Push = open();
                    let err = c.dial(&l1).await.expect_err("L1 is gone");
                    assert!(err.is_connection_refused(), "{err:?}");
                });
            }

            /// A dialer made with `socket.dialer(url)` is configured, then started; a second
            /// start is `AlreadyStarted` (and so is a listener's).
            #[test]
            fn dialer_configured_then_started() {
                run(async {
                    let pull: sp::Pull = open();
                    let l = pull.listener("tcp://127.0.0.1:0").expect("listener");
                    let bound = l.start().expect("start the listener");
                    assert_eq!(l.address(), bound);
                    match l.start() {
                        Err(Error::AlreadyStarted(_)) => {}
                        other => panic!("second listener start: {other:?}"),
                    }

                    let push: sp::Push = open();
                    let d = push.dialer(&l).expect("dialer");
                    assert_eq!(push.pipe_count(), 0, "not started: no connection");
                    d.set_recv_max_size(4096).expect("set the dialer's limit");
                    d.set_reconnect(Duration::from_millis(20), Duration::from_millis(40));
                    d.set_tcp_keepalive(true);
                    d.set_handshake_timeout(Duration::from_secs(3))
                        .expect("handshake timeout");
                    let o = d.options();
                    assert_eq!(o.recv_max_size, 4096);
                    assert_eq!(o.handshake_timeout, Duration::from_secs(3));
                    assert!(o.tcp.keepalive);
                    assert_eq!(
                        push.recv_max_size(),
                        1 << 20,
                        "the socket keeps its default"
                    );
                    d.start().await.expect("start the dialer");
                    assert_eq!(push.pipe_count(), 1);
                    assert_eq!(push.pipes()[0].endpoint(), Some(d.id()));
                    match d.start().await {
                        Err(Error::AlreadyStarted(url)) => assert_eq!(url, l.to_string()),
                        other => panic!("second dialer start: {other:?}"),
                    }
                    match d.start_nonblocking() {
                        Err(Error::AlreadyStarted(_)) => {}
                        other => panic!("start_nonblocking after start: {other:?}"),
                    }
                    push.send("configured").await.expect("send");
                    assert_eq!(&pull.recv().await.expect("recv").body[..], b"configured");
                    assert_eq!(push.pipe_count(), 1, "still one connection");
                });
            }

            /// The dialer's receive limit overrides the socket's: a message above it kills
            /// that pipe, while the same message over the socket's listener passes.
            #[test]
            fn per_endpoint_recv_max_size_overrides_the_socket() {
                run(async {
                    const BIG: usize = 2000;
                    let pull: sp::Pull = open();
                    assert_eq!(pull.recv_max_size(), 1 << 20);
                    let mut events = pull.pipe_events();

                    // PULL dials A with a 1000-byte limit...
                    let a: sp::Push = open();
                    let la = tcp_listener(&a).await;
                    let d = pull.dialer(&la).expect("dialer");
                    d.set_recv_max_size(1000).expect("the dialer's limit");
                    d.start().await.expect("PULL dials A");
                    let dialed = expect_attach(&mut events, "PULL's dialed pipe").await;
                    assert_eq!(dialed.endpoint(), Some(d.id()));
                    assert!(dialed.is_dialed());

                    // ...and B dials PULL's listener, which has the socket's 1 MiB.
                    let l = tcp_listener(&pull).await;
                    assert_eq!(l.options().recv_max_size, 1 << 20);
                    let b: sp::Push = open();
                    b.dial(&l).await.expect("B dials PULL");
                    let accepted = expect_attach(&mut events, "PULL's accepted pipe").await;
                    assert_eq!(accepted.endpoint(), Some(l.id()));
                    wait_for("A's pipe", T, || a.pipe_count() == 1).await;

                    b.send(vec![7u8; BIG]).await.expect("B sends");
                    let m = pull
                        .recv()
                        .await
                        .expect("the big message passes the listener");
                    assert_eq!(m.body.len(), BIG);

                    a.send(vec![9u8; BIG]).await.expect("A sends");
                    let (gone, reason) = expect_detached(&mut events, "the dialed pipe").await;
                    assert_eq!(gone.id(), dialed.id());
                    assert!(
                        matches!(reason, DetachReason::PeerMisbehaved(_)),
                        "{reason:?}"
                    );
                    assert_eq!(pull.stats().dropped.get(DropReason::TooLarge), 1);
                    let late = pull.recv_until(Instant::now() + SHORT).await;
                    assert!(
                        matches!(late, Err(Error::TimedOut)),
                        "A's message never arrives: {late:?}"
                    );
                    // The dialer reconnects.
                    let again = expect_attach(&mut events, "the redialed pipe").await;
                    assert_eq!(again.endpoint(), Some(d.id()));
                    assert_ne!(again.id(), dialed.id());
                });
            }

            /// Out-of-range values are `InvalidOption`, naming the option; nothing changes.
            #[test]
            fn invalid_options_name_the_option() {
                run(async {
                    let pull: sp::Pull = open();
                    let too_big = 1usize << 60;
                    let v = invalid_option(
                        pull.set_recv_max_size(too_big).unwrap_err(),
                        "recv_max_size",
                    );
                    assert_eq!(v, too_big.to_string());
                    assert_eq!(pull.recv_max_size(), 1 << 20, "unchanged");
                    pull.set_recv_max_size(too_big - 1)
                        .expect("2^60 - 1 is accepted");
                    pull.set_recv_max_size(0)
                        .expect("0 (unlimited) is accepted");

                    let d = pull.dialer("tcp://127.0.0.1:1").expect("dialer");
                    invalid_option(d.set_recv_max_size(too_big).unwrap_err(), "recv_max_size");
                    invalid_option(
                        d.set_handshake_timeout(Duration::ZERO).unwrap_err(),
                        "handshake_timeout",
                    );
                    let mut eo = d.options();
                    eo.handshake_timeout = Duration::ZERO;
                    invalid_option(d.set_options(eo).unwrap_err(), "handshake_timeout");
                    assert_ne!(d.options().handshake_timeout, Duration::ZERO, "unchanged");
                    let l = pull.listener("tcp://127.0.0.1:0").expect("listener");
                    invalid_option(l.set_recv_max_size(too_big).unwrap_err(), "recv_max_size");

                    let v = invalid_option(pull.set_recv_buffer(9000).unwrap_err(), "recv_buffer");
                    assert_eq!(v, "9000");
                    let pubs: sp::Pub = open();
                    invalid_option(pubs.set_send_buffer(9000).unwrap_err(), "send_buffer");

                    let v = invalid_option(pull.set_name("n".repeat(100)).unwrap_err(), "name");
                    assert!(v.contains("100"), "{v}");
                    assert_eq!(pull.name(), None, "unchanged");
                    pull.set_name("n".repeat(64)).expect("64 bytes is fine");
                    assert_eq!(pull.name(), Some("n".repeat(64)));

                    let e = SocketOptions::builder()
                        .handshake_timeout(Duration::ZERO)
                        .build()
                        .unwrap_err();
                    invalid_option(e, "handshake_timeout");
                    let e = SocketOptions::builder()
                        .recv_max_size(too_big)
                        .build()
                        .unwrap_err();
                    invalid_option(e, "recv_max_size");
                    let e = SocketOptions::builder()
                        .name("x".repeat(65))
                        .build()
                        .unwrap_err();
                    invalid_option(e, "name");
                    let mut o = SocketOptions::default();
                    o.name = Some("y".repeat(100));
                    invalid_option(pull.set_options(o).unwrap_err(), "name");
                    assert_eq!(pull.name(), Some("n".repeat(64)), "unchanged");

                    let good = SocketOptions::builder()
                        .name("good")
                        .recv_max_size(1234)
                        .recv_timeout(Duration::from_millis(1500))
                        .build()
                        .expect("valid options");
                    pull.set_options(good).expect("set_options");
                    assert_eq!(pull.name().as_deref(), Some("good"));
                    assert_eq!(pull.recv_max_size(), 1234);
                    assert_eq!(pull.recv_timeout(), Some(Duration::from_millis(1500)));
                    let l2 = pull.listener("tcp://127.0.0.1:0").expect("listener");
                    assert_eq!(l2.options().recv_max_size, 1234, "new endpoints copy it");
                });
            }

            // -----------------------------------------------------------------------------
            // 2. Pipes and events

            /// Attaching, Attached, Detached for one pipe, through the stream and the hook;
            /// what the pipe tells about both ends of a TCP connection.
            #[test]
            fn pipe_events_come_in_order_and_pipes_know_their_addresses() {
                run(async {
                    let pull: sp::Pull = open();
                    let seen: Arc<Mutex<Vec<(&'static str, PipeId, Option<DetachReason>)>>> =
                        Arc::default();
                    let log = seen.clone();
                    pull.set_pipe_hook(move |e| {
                        let entry = match e {
                            PipeEvent::Attaching(p) => ("attaching", p.id(), None),
                            PipeEvent::Attached(p) => ("attached", p.id(), None),
                            PipeEvent::Detached { pipe, reason } => {
                                ("detached", pipe.id(), Some(reason.clone()))
                            }
                            _ => ("other", e.pipe().id(), None),
                        };
                        log.lock().unwrap().push(entry);
                        PipeVerdict::Accept
                    });
                    let mut events = pull.pipe_events();
                    let l = tcp_listener(&pull).await;
                    let port = tcp_port(&l.address());

                    let push: sp::Push = open();
                    push.dial(&l).await.expect("dial");
                    let p = expect_attach(&mut events, "the accepted pipe").await;
                    assert_eq!(p.transport(), PipeTransport::Tcp);
                    assert!(!p.is_dialed());
                    assert_eq!(p.endpoint(), Some(l.id()));
                    assert_eq!(p.peer_protocol(), ProtocolId::PUSH);
                    let local = p.local_addr().expect("a tcp pipe has a local address");
                    assert_eq!(local, &l.address());
                    assert_eq!(tcp_port(local), port);
                    let remote = p.remote_addr().expect("a tcp pipe has a remote address");
                    assert_eq!(tcp_host(remote), "127.0.0.1");
                    assert_ne!(tcp_port(remote), port);
                    assert_eq!(
                        remote.to_string(),
                        format!("tcp://127.0.0.1:{}", tcp_port(remote))
                    );
                    assert!(p.peer_credentials().is_none(), "no credentials over tcp");
                    assert_eq!(pull.pipe(p.id()).as_ref(), Some(&p));

                    let theirs = push.pipes();
                    assert_eq!(theirs.len(), 1);
                    let q = &theirs[0];
                    assert!(q.is_dialed());
                    assert_eq!(q.transport(), PipeTransport::Tcp);
                    assert_eq!(q.peer_protocol(), ProtocolId::PULL);
                    assert_eq!(q.remote_addr(), Some(&l.address()));
                    assert_eq!(q.local_addr(), Some(remote));

                    push.close().await;
                    let (gone, reason) = expect_detached(&mut events, "the pipe").await;
                    assert_eq!(gone.id(), p.id());
                    assert_eq!(reason, DetachReason::PeerClosed);
                    assert!(gone.is_closed());
                    assert!(pull.pipe(p.id()).is_none(), "a detached pipe is not listed");
                    expect_no_event(&mut events, "after the pipe detached").await;

                    wait_for("the hook's three events", T, || {
                        seen.lock().unwrap().len() >= 3
                    })
                    .await;
                    let seen = seen.lock().unwrap().clone();
                    assert_eq!(
                        seen,
                        vec![
                            ("attaching", p.id(), None),
                            ("attached", p.id(), None),
                            ("detached", p.id(), Some(DetachReason::PeerClosed)),
                        ]
                    );
                });
            }

            /// An IPC pipe's peer credentials are this process's uid, gid and pid (Linux:
            /// elsewhere a pipe has none).
            #[cfg(target_os = "linux")]
            #[test]
            fn ipc_pipe_peer_credentials_are_ours() {
                run(async {
                    use std::os::unix::fs::MetadataExt;
                    let dir = sp_tests::TempIpcDir::new();
                    let a: sp::Pair = open();
                    let mut events = a.pipe_events();
                    let l = a.listen(dir.url().as_str()).await.expect("listen on ipc");
                    let b: sp::Pair = open();
                    b.dial(&l).await.expect("dial over ipc");
                    let p = expect_attach(&mut events, "the ipc pipe").await;
                    assert_eq!(p.transport(), PipeTransport::Ipc);
                    assert_eq!(p.local_addr(), Some(&l.address()));

                    let file = dir.dir().join("owner-probe");
                    std::fs::write(&file, b"x").expect("create a file");
                    let file_uid = std::fs::metadata(&file).expect("metadata").uid();
                    let uid = proc_status_id("Uid:");
                    let gid = proc_status_id("Gid:");
                    assert_eq!(uid, file_uid);
                    for (side, pipe) in [("listener", p.clone()), ("dialer", b.pipes()[0].clone())]
                    {
                        let c = pipe
                            .peer_credentials()
                            .unwrap_or_else(|| panic!("{side}: an ipc pipe has credentials"));
                        assert_eq!(c.uid, uid, "{side}");
                        assert_eq!(c.gid, gid, "{side}");
                        assert_eq!(c.pid, Some(std::process::id()), "{side}");
                    }
                });
            }

            /// A hook that refuses every pipe: not one message of the peer reaches `recv`.
            #[test]
            fn refusing_hook_lets_no_message_through() {
                run(async {
                    let pull: sp::Pull = open();
                    let offered = Arc::new(AtomicUsize::new(0));
                    let attached = Arc::new(AtomicUsize::new(0));
                    let (o, a) = (offered.clone(), attached.clone());
                    pull.set_pipe_hook(move |e| match e {
                        PipeEvent::Attaching(_) => {
                            o.fetch_add(1, Ordering::SeqCst);
                            PipeVerdict::Refuse
                        }
                        _ => {
                            a.fetch_add(1, Ordering::SeqCst);
                            PipeVerdict::Accept
                        }
                    });
                    let mut events = pull.pipe_events();
                    let l = tcp_listener(&pull).await;
                    let push: sp::Push = open();
                    push.set_send_timeout(Some(Duration::from_millis(50)));
                    push.dial_nonblocking(&l).expect("dial");
                    wait_for("a refusal", T, || {
                        pull.stats().refused.get(RefusalReason::Hook) >= 1
                    })
                    .await;
                    // The peer sends while its connections keep being refused.
                    for i in 0..20 {
                        let _ = push.send(format!("m{i}").into_bytes()).await;
                    }
                    let got = pull.recv_until(Instant::now() + SHORT).await;
                    assert!(
                        matches!(got, Err(Error::TimedOut)),
                        "nothing arrives: {got:?}"
                    );
                    let s = pull.stats();
                    assert!(s.refused.get(RefusalReason::Hook) >= 1, "{s:?}");
                    assert_eq!(s.msgs_received, 0);
                    assert_eq!(s.pipes_attached, 0);
                    assert_eq!(pull.pipe_count(), 0);
                    assert_eq!(
                        attached.load(Ordering::SeqCst),
                        0,
                        "no Attached, no Detached"
                    );
                    assert!(offered.load(Ordering::SeqCst) >= 1);
                    assert!(l.stats().refused >= 1);
                    // The stream saw Attaching events only.
                    while let Some(e) = events.try_next() {
                        assert!(matches!(e, PipeEvent::Attaching(_)), "{e:?}");
                    }
                    pull.clear_pipe_hook();
                    wait_for("a pipe once the hook is gone", T, || pull.pipe_count() == 1).await;
                    push.set_send_timeout(Some(T));
                    push.send("finally").await.expect("send");
                    // A pipe accepted just after the hook went may carry one of the earlier
                    // messages first; "finally" comes all the same.
                    loop {
                        let m = pull.recv().await.expect("a pipe accepted after the hook");
                        if &m.body[..] == b"finally" {
                            break;
                        }
                        assert!(m.body.starts_with(b"m"), "{:?}", m.body);
                    }
                });
            }

            /// A hook that panics refuses the pipe; the socket carries on.
            #[test]
            fn panicking_hook_refuses_the_pipe_and_the_socket_keeps_working() {
                run(async {
                    let pull: sp::Pull = open();
                    let panicked = Arc::new(AtomicBool::new(false));
                    let flag = panicked.clone();
                    pull.set_pipe_hook(move |e| {
                        if matches!(e, PipeEvent::Attaching(_))
                            && !flag.swap(true, Ordering::SeqCst)
                        {
                            panic!("a bug in the application's pipe hook (expected by the test)");
                        }
                        PipeVerdict::Accept
                    });
                    let l = tcp_listener(&pull).await;
                    let push: sp::Push = open();
                    push.dial_nonblocking(&l).expect("dial");
                    wait_for("a pipe after the panic", T, || pull.pipe_count() == 1).await;
                    assert!(panicked.load(Ordering::SeqCst));
                    let s = pull.stats();
                    assert_eq!(s.refused.get(RefusalReason::Hook), 1, "{s:?}");
                    assert_eq!(s.pipes_attached, 1);
                    push.send("after the panic").await.expect("send");
                    let m = pull.recv().await.expect("the socket still works");
                    assert_eq!(&m.body[..], b"after the panic");
                });
            }

            /// A received message names its pipe, and `socket.pipe(id)` returns that pipe.
            #[test]
            fn received_message_names_its_pipe() {
                run(async {
                    let pull: sp::Pull = open();
                    let l = tcp_listener(&pull).await;
                    let (a, b): (sp::Push, sp::Push) = (open(), open());
                    a.dial(&l).await.expect("A dials");
                    b.dial(&l).await.expect("B dials");
                    wait_for("two pipes", T, || pull.pipe_count() == 2).await;
                    let a_local = a.pipes()[0].local_addr().cloned().expect("A's address");
                    let b_local = b.pipes()[0].local_addr().cloned().expect("B's address");
                    a.send("from a").await.unwrap();
                    b.send("from b").await.unwrap();
                    for _ in 0..2 {
                        let m = pull.recv().await.expect("recv");
                        let id = m.pipe.unwrap_or_else(|| {
                            panic!("a received message names its pipe (Message::pipe is None)")
                        });
                        let p = pull.pipe(id).expect("socket.pipe(id) finds the pipe");
                        assert_eq!(p.id(), id);
                        let want = if &m.body[..] == b"from a" {
                            &a_local
                        } else {
                            &b_local
                        };
                        assert_eq!(p.remote_addr(), Some(want), "the pipe of {:?}", m.body);
                    }

                    // PAIR v0 as well.
                    let x: sp::Pair = open();
                    let lx = tcp_listener(&x).await;
                    let y: sp::Pair = open();
                    y.dial(&lx).await.expect("dial");
                    wait_for("the pair's pipe", T, || x.pipe_count() == 1).await;
                    y.send("pair").await.unwrap();
                    let m = x.recv().await.expect("recv");
                    let id = m.pipe.expect("a PAIR message names its pipe");
                    assert_eq!(x.pipe(id).map(|p| p.id()), Some(id));
                });
            }

            /// `Pipe::close` detaches the pipe with `Local`; its dialer reconnects.
            #[test]
            fn closing_a_pipe_detaches_it_and_the_dialer_reconnects() {
                run(async {
                    let pull: sp::Pull = open();
                    let l = tcp_listener(&pull).await;
                    let push: sp::Push = open();
                    let mut events = push.pipe_events();
                    let mut pull_events = pull.pipe_events();
                    let d = push.dial(&l).await.expect("dial");
                    let p = expect_attach(&mut events, "the first pipe").await;
                    assert_eq!(p.endpoint(), Some(d.id()));
                    let pp = expect_attach(&mut pull_events, "PULL's first pipe").await;

                    p.close();
                    assert!(p.is_closed());
                    p.close(); // closing a closed pipe does nothing
                    let (gone, reason) = expect_detached(&mut events, "the closed pipe").await;
                    assert_eq!(gone.id(), p.id());
                    assert_eq!(reason, DetachReason::Local);
                    let (pgone, preason) = expect_detached(&mut pull_events, "PULL's side").await;
                    assert_eq!(pgone.id(), pp.id());
                    assert_eq!(preason, DetachReason::PeerClosed);

                    let again = expect_attach(&mut events, "the redialed pipe").await;
                    assert_ne!(again.id(), p.id());
                    assert_eq!(again.endpoint(), Some(d.id()));
                    expect_attach(&mut pull_events, "PULL's new pipe").await;
                    push.send("over the new pipe").await.expect("send");
                    let m = pull.recv().await.expect("recv");
                    assert_eq!(&m.body[..], b"over the new pipe");
                    let ds = d.stats();
                    assert_eq!(ds.pipes_attached, 2);
                    assert_eq!(ds.pipes_open, 1);
                    assert_eq!(push.stats().pipes_detached, 1);
                });
            }

            // -----------------------------------------------------------------------------
            // 3. Statistics

            /// Message, byte and pipe counters over PUSH/PULL, socket- and pipe-wide.
            #[test]
            fn message_and_pipe_counters_are_exact() {
                run(async {
                    const N: u64 = 25;
                    let pull: sp::Pull = open();
                    let mut events = pull.pipe_events();
                    let l = tcp_listener(&pull).await;
                    let push: sp::Push = open();
                    let d = push.dial(&l).await.expect("dial");
                    let p = expect_attach(&mut events, "the pipe").await;
                    let mut bytes = 0u64;
                    for i in 0..N {
                        let body = vec![i as u8; 10 + i as usize * 7];
                        bytes += body.len() as u64;
                        push.send(body).await.expect("send");
                    }
                    for i in 0..N {
                        let m = pull.recv().await.expect("recv");
                        assert_eq!(m.body.len(), 10 + i as usize * 7);
                    }
                    let (ps, qs) = (push.stats(), pull.stats());
                    assert_eq!((ps.msgs_sent, ps.bytes_sent), (N, bytes), "{ps:?}");
                    assert_eq!((ps.msgs_received, ps.bytes_received), (0, 0));
                    assert_eq!((qs.msgs_received, qs.bytes_received), (N, bytes), "{qs:?}");
                    assert_eq!((qs.msgs_sent, qs.bytes_sent), (0, 0));
                    assert_eq!(
                        (ps.pipes_attached, ps.pipes_detached, ps.pipes_open),
                        (1, 0, 1)
                    );
                    assert_eq!(
                        (qs.pipes_attached, qs.pipes_detached, qs.pipes_open),
                        (1, 0, 1)
                    );
                    assert_eq!((ps.dial_attempts, ps.dial_failures), (1, 0));
                    assert_eq!((qs.accepted, qs.dial_attempts), (1, 0));
                    assert_eq!(qs.recv_queued, 0);
                    assert_eq!(qs.dropped.total(), 0);
                    assert_eq!(ps.dropped.total(), 0);

                    let out = push.pipes()[0].stats();
                    assert_eq!((out.msgs_out, out.bytes_out), (N, bytes), "{out:?}");
                    assert_eq!((out.msgs_in, out.bytes_in), (0, 0));
                    let inn = p.stats();
                    assert_eq!((inn.msgs_in, inn.bytes_in), (N, bytes), "{inn:?}");
                    assert_eq!((inn.msgs_out, inn.bytes_out), (0, 0));
                    assert_eq!(d.stats().pipes_attached, 1);

                    push.close().await;
                    expect_detached(&mut events, "the pipe").await;
                    let qs = pull.stats();
                    assert_eq!(
                        (qs.pipes_attached, qs.pipes_detached, qs.pipes_open),
                        (1, 1, 0)
                    );
                    assert_eq!(l.stats().pipes_open, 0);
                    assert_eq!(l.stats().pipes_attached, 1);
                    assert_eq!(
                        p.stats().msgs_in,
                        N,
                        "a closed pipe's counters stay readable"
                    );
                });
            }

            /// Dial attempts and failures: a refused synchronous dial, then a background dial
            /// that fails once and succeeds once a listener appears.
            #[test]
            fn dial_attempts_and_failures_are_exact() {
                run(async {
                    let port = free_tcp_port();
                    let url = format!("tcp://127.0.0.1:{port}");

                    let once: sp::Push = open();
                    let err = once.dial(url.as_str()).await.expect_err("nothing listens");
                    assert!(err.is_connection_refused(), "{err:?}");
                    let s = once.stats();
                    assert_eq!((s.dial_attempts, s.dial_failures), (1, 1), "{s:?}");
                    assert_eq!(s.refused.total(), 0, "a refused connect is no refusal");

                    let push: sp::Push = open();
                    let d = push.dialer(url.as_str()).expect("dialer");
                    // Redials wait 0.5-1 s, ample time to start the listener in between.
                    d.set_reconnect(Duration::from_secs(1), Duration::ZERO);
                    d.start_nonblocking().expect("start");
                    wait_for("the first failure", T, || d.stats().dial_failures >= 1).await;
                    let pull: sp::Pull = open();
                    let l = pull.listen(url.as_str()).await.expect("listen");
                    wait_for("the pipe", T, || push.pipe_count() == 1).await;
                    let ds = d.stats();
                    assert_eq!((ds.dial_attempts, ds.dial_failures), (2, 1), "{ds:?}");
                    assert_eq!((ds.pipes_attached, ds.pipes_open), (1, 1));
                    let s = push.stats();
                    assert_eq!((s.dial_attempts, s.dial_failures), (2, 1), "{s:?}");
                    wait_for("the accept", T, || pull.pipe_count() == 1).await;
                    assert_eq!(pull.stats().accepted, 1);
                    assert_eq!(l.stats().accepted, 1);
                    assert_eq!(l.stats().dial_attempts, 0);
                });
            }

            /// One message over the receive limit: its pipe dies, counted once as TooLarge.
            #[test]
            fn too_large_message_is_counted_once() {
                run(async {
                    let pull: sp::Pull = open();
                    pull.set_recv_max_size(1000).expect("limit");
                    let mut events = pull.pipe_events();
                    let l = tcp_listener(&pull).await;
                    let push: sp::Push = open();
                    push.dial(&l).await.expect("dial");
                    let p = expect_attach(&mut events, "the pipe").await;
                    push.send(vec![1u8; 1000]).await.expect("send at the limit");
                    assert_eq!(
                        pull.recv().await.expect("at the limit passes").body.len(),
                        1000
                    );
                    push.send(vec![2u8; 1001])
                        .await
                        .expect("send over the limit");
                    let (gone, reason) = expect_detached(&mut events, "the pipe").await;
                    assert_eq!(gone.id(), p.id());
                    assert!(
                        matches!(reason, DetachReason::PeerMisbehaved(_)),
                        "{reason:?}"
                    );
                    let s = pull.stats();
                    assert_eq!(s.dropped.get(DropReason::TooLarge), 1, "{s:?}");
                    assert_eq!(s.dropped.total(), 1, "{s:?}");
                    assert_eq!(s.msgs_received, 1);
                    // The PUSH redials; nothing more is dropped.
                    expect_attach(&mut events, "the redialed pipe").await;
                    push.send("small").await.unwrap();
                    assert_eq!(&pull.recv().await.expect("recv").body[..], b"small");
                    assert_eq!(pull.stats().dropped.get(DropReason::TooLarge), 1);
                });
            }

            /// A SUB counts every message no subscription matches.
            #[test]
            fn unmatched_messages_are_counted_as_no_subscription() {
                run(async {
                    const N: u64 = 17;
                    let url = inproc_url("nosub");
                    let publ: sp::Pub = open();
                    publ.listen(url.as_str()).await.expect("listen");
                    let sub: sp::Sub = open();
                    sub.subscribe(b"wanted");
                    sub.dial(url.as_str()).await.expect("dial");
                    wait_for("PUB's pipe", T, || publ.pipe_count() == 1).await;
                    for i in 0..N {
                        publ.send(format!("other {i}").into_bytes())
                            .await
                            .expect("publish");
                    }
                    publ.send("wanted: the end").await.expect("publish");
                    let m = sub.recv().await.expect("the matching message");
                    assert_eq!(&m.body[..], b"wanted: the end");
                    let s = sub.stats();
                    assert_eq!(s.dropped.get(DropReason::NoSubscription), N, "{s:?}");
                    assert_eq!(s.dropped.total(), N, "{s:?}");
                    assert_eq!(s.msgs_received, 1);
                    assert_eq!(publ.stats().msgs_sent, N + 1);
                });
            }

            /// Messages queued for a pipe whose peer stopped reading are dropped and counted
            /// when the pipe is closed.
            #[test]
            fn closing_a_stalled_pipe_reroutes_what_was_queued_exactly_once() {
                run(async {
                    let peer = StalledPull::start();
                    let push: sp::Push = open();
                    let mut events = push.pipe_events();
                    push.dial(peer.url.as_str())
                        .await
                        .expect("dial the raw peer");
                    let p = expect_attach(&mut events, "the pipe").await;
                    assert_eq!(p.peer_protocol(), ProtocolId::PULL);
                    // Send numbered messages until nothing moves: the kernel's buffers and the
                    // pipe's queue are full, so a send waits in vain.
                    let numbered = |i: u32| {
                        let mut body = vec![0x5a_u8; 64 * 1024];
                        body[..4].copy_from_slice(&i.to_be_bytes());
                        body
                    };
                    let sent = send_until_stalled(&push, numbered).await;
                    let before = p.stats();
                    assert!(before.queued > 0, "messages wait in the pipe: {before:?}");
                    assert!(push.stats().send_queued >= before.queued);
                    assert_eq!(before.msgs_out, u64::from(sent));
                    // A second, healthy PULL joins; then the stalled pipe is closed.
                    let pull: sp::Pull = open();
                    let l = tcp_listener(&pull).await;
                    push.dial(&l).await.expect("dial the healthy peer");
                    expect_attach(&mut events, "the healthy pipe").await;
                    p.close();
                    let (gone, reason) = expect_detached(&mut events, "the stalled pipe").await;
                    assert_eq!(gone.id(), p.id());
                    assert_eq!(reason, DetachReason::Local, "we closed the pipe");
                    let after = p.stats();
                    assert_eq!(after.queued, 0);
                    assert_eq!(after.returned, before.queued as u64, "{after:?}");
                    // Exactly the messages still queued arrive at the healthy PULL: the newest
                    // `returned` ones, in order, once each. What the stalled kernel buffers
                    // took is gone with the connection.
                    let first = sent - before.queued as u32;
                    for i in first..sent {
                        let msg = pull.recv().await.expect("a re-routed message");
                        assert_eq!(u32::from_be_bytes(msg.body[..4].try_into().unwrap()), i);
                    }
                    let extra = pull.recv_until(Instant::now() + SHORT).await;
                    assert!(
                        matches!(extra, Err(Error::TimedOut)),
                        "nothing twice: {extra:?}"
                    );
                    let s = push.stats();
                    assert_eq!(s.dropped.total(), 0, "re-routed, not dropped: {s:?}");
                    assert_eq!(s.msgs_sent, u64::from(sent));
                    push.close().await;
                    peer.finish();
                });
            }

            /// A REQ request whose pipe died waits for another pipe; when the socket closes
            /// first, it is counted as `socket_closed`, once.
            #[test]
            fn closing_the_socket_counts_a_request_no_pipe_took() {
                run(async {
                    let rep: sp::Rep = open();
                    let url = inproc_url("stranded-request");
                    rep.listen(url.as_str()).await.expect("listen");
                    let req: sp::Req = open();
                    let mut events = req.pipe_events();
                    req.dial(url.as_str()).await.expect("dial");
                    expect_attach(&mut events, "the pipe").await;
                    req.send("no reply").await.expect("send the request");
                    rep.recv().await.expect("the request arrives");
                    rep.close().await;
                    expect_detached(&mut events, "the pipe").await;
                    assert_eq!(req.stats().send_queued, 1, "the request waits for a pipe");
                    req.close().await;
                    let s = req.stats();
                    assert_eq!(s.dropped.get(DropReason::SocketClosed), 1, "{s:?}");
                    assert_eq!(s.dropped.total(), 1, "and nothing else: {s:?}");
                    assert_eq!(req.stats().dropped, s.dropped, "counted once");
                });
            }

            /// A socket closed while its only pipe is stalled, with no linger: what the pipe
            /// still queued goes back to PUSH, which has nowhere to send it, and each such
            /// message is counted as `socket_closed`, once. (The peer's kernel may take more
            /// bytes at any moment, even all of the queue, so the test counts what came back.)
            #[test]
            fn closing_the_socket_counts_what_no_pipe_took() {
                run(async {
                    let peer = StalledPull::start();
                    let push: sp::Push = open();
                    push.set_linger(Duration::ZERO);
                    let mut events = push.pipe_events();
                    push.dial(peer.url.as_str())
                        .await
                        .expect("dial the raw peer");
                    let p = expect_attach(&mut events, "the pipe").await;
                    send_until_stalled(&push, |_| vec![0x5a_u8; 64 * 1024]).await;
                    let queued = p.stats().queued as u64;
                    assert!(queued > 0, "messages wait in the pipe");
                    push.close().await;
                    let (gone, _) = expect_detached(&mut events, "the stalled pipe").await;
                    assert_eq!(gone.id(), p.id());
                    let s = push.stats();
                    let returned = p.stats().returned;
                    assert!(returned <= queued, "{returned} of {queued} came back");
                    assert_eq!(
                        s.dropped.get(DropReason::SocketClosed),
                        returned,
                        "every returned message counted as socket_closed: {s:?}"
                    );
                    assert_eq!(s.dropped.total(), returned, "and nothing else: {s:?}");
                    assert_eq!(push.stats().dropped, s.dropped, "counted once");
                    peer.finish();
                });
            }

            // -----------------------------------------------------------------------------
            // 4. Queues

            #[test]
            fn queue_lengths_round_trip() {
                run(async {
                    let pull: sp::Pull = open();
                    pull.set_recv_buffer(16).expect("set_recv_buffer");
                    assert_eq!(pull.recv_buffer().expect("recv_buffer"), 16);
                    pull.set_recv_buffer(8192).expect("the maximum");
                    assert_eq!(pull.recv_buffer().unwrap(), 8192);

                    let publ: sp::Pub = open();
                    publ.set_send_buffer(32).expect("set_send_buffer");
                    assert_eq!(publ.send_buffer(), 32);
                    assert!(matches!(publ.recv_buffer(), Err(Error::NotSupported)));

                    let push: sp::Push = open();
                    assert!(matches!(push.recv_buffer(), Err(Error::NotSupported)));
                    assert!(matches!(push.set_recv_buffer(4), Err(Error::NotSupported)));
                    push.set_send_buffer(8).expect("PUSH's per-pipe queue");
                    assert_eq!(push.send_buffer(), 8);
                });
            }

            /// `recv_many` takes what is queued, in order, up to its limit; `try_recv_many`
            /// never waits; a limit of 0 returns at once; an empty socket times out.
            #[test]
            fn recv_many_takes_what_is_queued_in_order_up_to_its_limit() {
                run(async {
                    let pull: sp::Pull = open();
                    let url = inproc_url(concat!("recv-many-", stringify!($module)));
                    pull.listen(&url).await.expect("listen");
                    let push: sp::Push = open();
                    push.dial(&url).await.expect("dial");
                    for i in 0u8..10 {
                        push.send(vec![i]).await.expect("send");
                    }
                    wait_for("10 messages queued", T, || pull.stats().recv_queued == 10).await;
                    let mut buf = Vec::new();
                    assert_eq!(pull.recv_many(&mut buf, 4).await.expect("recv_many"), 4);
                    assert_eq!(pull.recv_many(&mut buf, 100).await.expect("recv_many"), 6);
                    let bodies: Vec<u8> = buf.iter().map(|m| m.body[0]).collect();
                    assert_eq!(bodies, (0u8..10).collect::<Vec<_>>(), "in order, each once");
                    assert_eq!(pull.stats().msgs_received, 10);
                    assert_eq!(pull.stats().recv_queued, 0);

                    assert!(matches!(
                        pull.try_recv_many(&mut buf, 8),
                        Err(Error::WouldBlock)
                    ));
                    assert_eq!(pull.try_recv_many(&mut buf, 0).expect("limit 0"), 0);
                    assert_eq!(pull.recv_many(&mut buf, 0).await.expect("limit 0"), 0);
                    pull.set_recv_timeout(Some(Duration::from_millis(20)));
                    assert!(matches!(
                        pull.recv_many(&mut buf, 8).await,
                        Err(Error::TimedOut)
                    ));
                    assert_eq!(
                        buf.len(),
                        10,
                        "nothing appended by the calls that took nothing"
                    );

                    push.send(vec![10]).await.expect("send");
                    pull.set_recv_timeout(Some(T));
                    assert_eq!(pull.recv_many(&mut buf, 8).await.expect("recv_many"), 1);
                    assert_eq!(buf[10].body[0], 10);
                });
            }

            /// `send_many` sends from the front, in order, what the protocol takes, and
            /// leaves the rest; a full queue makes `try_send_many` send nothing.
            #[test]
            fn send_many_sends_from_the_front_what_the_queues_take() {
                run(async {
                    let pull: sp::Pull = open();
                    pull.set_recv_buffer(4).expect("a queue of 4");
                    let url = inproc_url(concat!("send-many-", stringify!($module)));
                    pull.listen(&url).await.expect("listen");
                    let push: sp::Push = open();
                    push.set_send_buffer(2).expect("a pipe queue of 2");
                    push.dial(&url).await.expect("dial");
                    wait_for("the pipe", T, || push.stats().pipes_open == 1).await;

                    let mut none = Vec::new();
                    assert_eq!(push.send_many(&mut none).await.expect("nothing to send"), 0);
                    let mut msgs: Vec<sp_transport::Message> =
                        (0u8..20).map(|i| vec![i].into()).collect();
                    let mut sent = push.send_many(&mut msgs).await.expect("send_many");
                    assert!(sent >= 1, "at least the first");
                    assert_eq!(msgs.len(), 20 - sent, "what was sent left the vector");
                    assert_eq!(msgs[0].body[0], sent as u8, "the rest, from the front");
                    // Queues of 2 (the pipe) and 4 (the receiver) hold at most a few more
                    // than that: once the receiver's is full, more sends would wait, and
                    // nothing more leaves the vector.
                    wait_for("the queues to fill", T, || {
                        match push.try_send_many(&mut msgs) {
                            Ok(n) => {
                                sent += n;
                                false
                            }
                            Err(Error::WouldBlock) => pull.stats().recv_queued == 4,
                            Err(e) => panic!("try_send_many: {e}"),
                        }
                    })
                    .await;
                    let left = msgs.len();
                    assert!(left > 0 && sent + left == 20, "{sent} sent, {left} left");
                    assert!(matches!(
                        push.try_send_many(&mut msgs),
                        Err(Error::WouldBlock)
                    ));
                    assert_eq!(msgs.len(), left, "a send that would block sent nothing");

                    let receiver = sp_tests::harness::background(async move {
                        let mut got = Vec::new();
                        while got.len() < 20 {
                            got.push(pull.recv().await.expect("recv").body[0]);
                        }
                        got
                    });
                    while !msgs.is_empty() {
                        assert!(push.send_many(&mut msgs).await.expect("send_many") >= 1);
                    }
                    let got = receiver.join().expect("receiver");
                    assert_eq!(got, (0u8..20).collect::<Vec<_>>(), "in order, each once");
                    assert_eq!(push.stats().msgs_sent, 20);
                });
            }

            // -----------------------------------------------------------------------------
            // 5. Adopted streams, abstract sockets

            /// Both ends of a socketpair, adopted into two PAIR sockets.
            #[cfg(unix)]
            #[test]
            fn adopted_socketpair_carries_messages_both_ways() {
                run(async {
                    let (s1, s2) = std::os::unix::net::UnixStream::pair().expect("socketpair");
                    let (a, b): (sp::Pair, sp::Pair) = (open(), open());
                    let b2 = b.clone();
                    // Each adoption waits for the other side's header: run one beside.
                    let other =
                        sp_tests::harness::background(async move { b2.adopt_ipc(s2).await });
                    let pa = a.adopt_ipc(s1).await.expect("adopt one end");
                    let pb = other.join().expect("thread").expect("adopt the other end");
                    for p in [&pa, &pb] {
                        assert_eq!(p.transport(), PipeTransport::Ipc);
                        assert_eq!(p.endpoint(), None, "an adopted pipe has no endpoint");
                        assert!(!p.is_dialed());
                        assert_eq!(p.peer_protocol(), ProtocolId::PAIR0);
                        if cfg!(target_os = "linux") {
                            let c = p.peer_credentials().expect("a socketpair has credentials");
                            assert_eq!(c.pid, Some(std::process::id()));
                        }
                    }
                    assert_eq!(a.pipes(), vec![pa.clone()]);
                    a.send("a to b").await.unwrap();
                    assert_eq!(&b.recv().await.expect("b receives").body[..], b"a to b");
                    b.send("b to a").await.unwrap();
                    let m = a.recv().await.expect("a receives");
                    assert_eq!(&m.body[..], b"b to a");
                    assert_eq!(a.stats().pipes_attached, 1);
                    // The adopted pipe is not redialed once it ends.
                    let mut events = a.pipe_events();
                    pa.close();
                    let (_, reason) = expect_detached(&mut events, "the adopted pipe").await;
                    assert_eq!(reason, DetachReason::Local);
                    expect_no_event(&mut events, "no reconnection").await;
                    assert_eq!(a.pipe_count(), 0);
                });
            }

            /// A TCP stream connected to a listening socket, adopted by another socket.
            #[test]
            fn adopted_tcp_stream_joins_a_listening_socket() {
                run(async {
                    let a: sp::Pair = open();
                    let l = tcp_listener(&a).await;
                    let port = tcp_port(&l.address());
                    let stream =
                        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    let ours = stream.local_addr().unwrap();
                    let b: sp::Pair = open();
                    let p = b.adopt_tcp(stream).await.expect("adopt");
                    assert_eq!(p.transport(), PipeTransport::Tcp);
                    assert_eq!(p.endpoint(), None);
                    assert_eq!(p.peer_protocol(), ProtocolId::PAIR0);
                    assert_eq!(p.remote_addr(), Some(&l.address()));
                    assert_eq!(p.local_addr().map(tcp_port), Some(ours.port()));
                    wait_for("the listener's pipe", T, || a.pipe_count() == 1).await;
                    b.send("adopted").await.unwrap();
                    assert_eq!(&a.recv().await.expect("recv").body[..], b"adopted");
                    a.send("reply").await.unwrap();
                    assert_eq!(&b.recv().await.expect("recv").body[..], b"reply");
                    let ap = &a.pipes()[0];
                    assert_eq!(ap.remote_addr().map(tcp_port), Some(ours.port()));
                });
            }

            /// A reset TCP stream has no peer: `NotConnected`. A Unix stream whose peer is
            /// gone fails the handshake.
            #[test]
            fn adopting_a_dead_stream_is_a_typed_error() {
                run(async {
                    let a: sp::Pair = open();
                    match a.adopt_tcp(reset_tcp_stream()).await {
                        Err(Error::NotConnected(why)) => assert!(!why.is_empty()),
                        other => panic!("expected NotConnected, got {other:?}"),
                    }
                    #[cfg(unix)]
                    {
                        let (s1, s2) = std::os::unix::net::UnixStream::pair().expect("socketpair");
                        drop(s2);
                        match a.adopt_ipc(s1).await {
                            Err(Error::Handshake { .. }) => {}
                            other => panic!("expected a handshake error, got {other:?}"),
                        }
                        let s = a.stats();
                        assert_eq!(s.refused.get(RefusalReason::BadHandshake), 1, "{s:?}");
                    }
                    assert_eq!(a.pipe_count(), 0);
                    assert_eq!(a.stats().pipes_attached, 0);
                });
            }

            /// Windows: `ipc://NAME` is the named pipe `\\.\pipe\NAME` on sp-tokio, which
            /// carries messages and refuses a second listener on the same name; sp-smol and
            /// sp-blocking refuse it with a typed error that names sp-tokio.
            #[cfg(windows)]
            #[test]
            fn ipc_is_a_named_pipe_on_windows() {
                run(async {
                    let dir = sp_tests::TempIpcDir::new();
                    let url = dir.url();
                    let a: sp::Pair = open();
                    match a.listen(url.as_str()).await {
                        Ok(l) => {
                            assert_eq!(stringify!($module), "tokio_adapter");
                            let b: sp::Pair = open();
                            b.dial(&l).await.expect("dial the pipe");
                            b.send("over a pipe").await.unwrap();
                            assert_eq!(&a.recv().await.expect("recv").body[..], b"over a pipe");
                            a.send("back").await.unwrap();
                            assert_eq!(&b.recv().await.expect("recv").body[..], b"back");
                            let c: sp::Pair = open();
                            let e = c.listen(url.as_str()).await.expect_err("the name is taken");
                            assert!(e.is_address_in_use(), "{e:?}");
                        }
                        Err(e) => {
                            assert_ne!(stringify!($module), "tokio_adapter", "{e}");
                            assert!(
                                matches!(
                                    e,
                                    Error::Unsupported {
                                        what: sp_transport::Unsupported::NamedPipes { .. },
                                        ..
                                    }
                                ),
                                "{e:?}"
                            );
                            assert!(e.to_string().contains("sp-tokio"), "{e}");
                        }
                    }
                });
            }

            /// Outside Linux, `abstract://` fails at once, to listen and to dial, with a typed
            /// error that points to `ipc://`.
            #[cfg(not(target_os = "linux"))]
            #[test]
            fn abstract_sockets_are_unsupported_off_linux() {
                run(async {
                    let a: sp::Pair = open();
                    for e in [
                        a.listen("abstract://off-linux").await.expect_err("listen"),
                        a.dial("abstract://off-linux").await.expect_err("dial"),
                        a.dial_nonblocking("abstract://off-linux")
                            .expect_err("dial_nonblocking"),
                    ] {
                        assert!(
                            matches!(
                                e,
                                Error::Unsupported {
                                    what: sp_transport::Unsupported::AbstractSockets,
                                    ..
                                }
                            ),
                            "{e:?}"
                        );
                        assert!(e.to_string().contains("ipc://"), "{e}");
                    }
                });
            }

            /// `abstract://name` listens and dials; the listener shows its `abstract://` URL.
            #[cfg(target_os = "linux")]
            #[test]
            fn abstract_socket_round_trip() {
                run(async {
                    let url = abstract_url("rt");
                    let a: sp::Pair = open();
                    let mut events = a.pipe_events();
                    let l = a.listen(url.as_str()).await.expect("listen on abstract");
                    assert_eq!(l.to_string(), url);
                    assert!(matches!(l.address(), Address::Abstract { .. }));
                    let b: sp::Pair = open();
                    b.dial(&l).await.expect("dial abstract");
                    let p = expect_attach(&mut events, "the abstract pipe").await;
                    assert_eq!(p.transport(), PipeTransport::Abstract);
                    assert_eq!(
                        p.peer_credentials().map(|c| c.pid),
                        Some(Some(std::process::id()))
                    );
                    b.send("ping").await.unwrap();
                    assert_eq!(&a.recv().await.expect("recv").body[..], b"ping");
                    a.send("pong").await.unwrap();
                    assert_eq!(&b.recv().await.expect("recv").body[..], b"pong");
                });
            }

            /// `abstract://` with an empty name asks the kernel for a fresh name (autobind):
            /// two such listeners coexist, each reports the name it got, and each is dialable.
            #[cfg(target_os = "linux")]
            #[test]
            fn abstract_empty_name_autobinds() {
                run(async {
                    let (a, b): (sp::Pair, sp::Pair) = (open(), open());
                    let la = a.listen("abstract://").await.expect("autobind one");
                    let lb = b.listen("abstract://").await.expect("autobind another");
                    for l in [&la, &lb] {
                        let shown = l.to_string();
                        assert!(shown.starts_with("abstract://"), "{shown}");
                        assert!(
                            shown.len() > "abstract://".len(),
                            "the listener reports the kernel's name, not an empty one: {shown}"
                        );
                    }
                    assert_ne!(la.address(), lb.address());
                    for (server, l) in [(&a, &la), (&b, &lb)] {
                        let c: sp::Pair = open();
                        c.dial(l).await.expect("dial the autobound name");
                        c.send("auto").await.unwrap();
                        assert_eq!(&server.recv().await.expect("recv").body[..], b"auto");
                    }
                });
            }
        }
    };
}

app_suite!(tokio_adapter, sp_tokio, run_tokio);
app_suite!(smol_adapter, sp_smol, run_smol);
app_suite!(
    blocking_adapter,
    sp_tests::harness::blocking_shim,
    run_blocking
);

// ---------------------------------------------------------------------------------------------
// 7. A real peer: nngcat dials our listener

mod interop {
    use sp_tests::cat::{Cat, CatKind, Mode, Role};
    use sp_tests::{PeerProcess, PEER_DEADLINE};
    use sp_transport::{DetachReason, PipeEvent, ProtocolId, Transport};

    use super::{tcp_host, tcp_port, T};

    async fn next_event(ev: &mut sp_tokio::PipeEvents) -> PipeEvent {
        tokio::time::timeout(T * 2, ev.next())
            .await
            .expect("a pipe event in time")
            .expect("the stream goes on")
    }

    /// nngcat's PUSH dials our PULL: Attaching and Attached name a tcp pipe from
    /// 127.0.0.1 with the PUSH protocol; its message names that pipe; once nngcat exits, the
    /// pipe detaches with `PeerClosed`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nngcat_pipe_events_attached_then_peer_closed() {
        let Some(nngcat) = Cat::find(CatKind::Nngcat) else {
            return;
        };
        tokio::time::timeout(super::LIMIT, async {
            let pull = sp_tokio::Pull::new();
            pull.set_recv_timeout(Some(T * 2));
            let mut events = pull.pipe_events();
            let l = pull.listen("tcp://127.0.0.1:0").await.expect("listen");
            let port = tcp_port(&l.address());
            let mut cmd = nngcat.command(Role::Push, Mode::Dial, &l.to_string());
            cmd.args(["--data", "hello from nng"]);
            let proc = PeerProcess::spawn("nngcat push", &mut cmd);

            let p = match next_event(&mut events).await {
                PipeEvent::Attaching(p) => p,
                other => panic!("expected Attaching, got {other:?}"),
            };
            match next_event(&mut events).await {
                PipeEvent::Attached(q) => assert_eq!(q.id(), p.id()),
                other => panic!("expected Attached, got {other:?}"),
            }
            assert_eq!(p.transport(), Transport::Tcp);
            assert_eq!(p.peer_protocol(), ProtocolId::PUSH);
            assert_eq!(p.endpoint(), Some(l.id()));
            let remote = p.remote_addr().expect("nngcat's address");
            assert_eq!(tcp_host(remote), "127.0.0.1");
            assert_ne!(tcp_port(remote), port);
            assert!(remote.to_string().starts_with("tcp://127.0.0.1:"));

            let m = pull.recv().await.expect("nngcat's message");
            assert_eq!(&m.body[..], b"hello from nng");
            if let Some(id) = m.pipe {
                assert_eq!(id, p.id(), "the message names nngcat's pipe");
            }
            proc.wait(PEER_DEADLINE).await.assert_success("nngcat push");
            match next_event(&mut events).await {
                PipeEvent::Detached { pipe, reason } => {
                    assert_eq!(pipe.id(), p.id());
                    assert_eq!(reason, DetachReason::PeerClosed);
                }
                other => panic!("expected Detached, got {other:?}"),
            }
            assert_eq!(p.stats().msgs_in, 1);
            assert_eq!(pull.stats().pipes_detached, 1);
        })
        .await
        .expect("the test finishes in time");
    }
}
