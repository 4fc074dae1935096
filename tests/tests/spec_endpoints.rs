//! Endpoint and socket basics from SP-PROTOCOLS.md section 8 that had no or only partial
//! tests: 8.1 #18 (IPC socket file permissions), 8.1 #25 (inproc keeps raw headers exactly as
//! TCP and IPC do), 8.2 #27 (the default send and receive timeouts are infinite), 8.2 #32
//! (dialers and listeners copy the socket's settings when they are created, and keep them),
//! 8.2 #30 (REQ resend time and resend tick read back what was stored) and 8.2 #33 (TCP
//! no-delay and keep-alive reach the OS socket; NNG's defaults).
//!
//! Every wait polls an event (pipe counts, counters, receives with timeouts); no test sleeps
//! to synchronise. The only short waits assert that something does *not* happen.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use sp_tests::{
    assert_no_worker_panics, inproc_url, wait_for_pipes, wait_until, watch_worker_panics, Sock,
    Transport,
};
use sp_tokio::{
    DropReason, EndpointOptions, Error, Message, Pull, Push, Rep, SocketOptions, XPush, XRep, XReq,
};
use sp_transport::SocketCore;

/// How long a call or an event that must happen may take.
const T: Duration = Duration::from_secs(5);
/// How long to wait for something that must not happen.
const SHORT: Duration = Duration::from_millis(100);
/// A TCP address to listen on: loopback, with a port the kernel picks.
const LOCAL: &str = "tcp://127.0.0.1:0";

fn timeouts<P: SocketCore>(s: &Sock<P>) {
    s.set_recv_timeout(Some(T));
    s.set_send_timeout(Some(T));
}

/// Asserts that `fut` is still pending after [`SHORT`]; the caller polls it again later.
async fn assert_still_pending<F: Future>(fut: std::pin::Pin<&mut F>, what: &str)
where
    F::Output: std::fmt::Debug,
{
    if let Ok(out) = tokio::time::timeout(SHORT, fut).await {
        panic!("{what} should still wait after {SHORT:?}, but ended with {out:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8.1 #18: IPC permissions (NNG `test_ipc_listener_perms`, `test_ipc_dialer_perms`)

#[cfg(unix)]
mod ipc_permissions {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::path::Path;

    use sp_tests::{ipc_url, TempIpcDir};

    use super::*;

    /// The permission bits of the file at `path`.
    fn mode_of(path: &Path) -> u32 {
        let meta = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("no socket file at {}: {e}", path.display()));
        assert!(
            meta.file_type().is_socket(),
            "{} is a socket",
            path.display()
        );
        meta.permissions().mode() & 0o777
    }

    /// A mode set on a listener made with `socket.listener(url)`, before `start`, is the mode
    /// of the socket file it binds, whatever the umask would have given; a peer still
    /// connects and a message crosses. Several modes, so that none can pass by matching the
    /// umask's default by chance.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mode_set_before_start_is_the_socket_files_mode() {
        watch_worker_panics();
        let dir = TempIpcDir::new();
        for mode in [0o600, 0o640, 0o666] {
            let path = dir.path();
            let url = ipc_url(&path);
            let pull = Pull::new();
            timeouts(&pull);
            let l = pull.listener(url.as_str()).expect("listener");
            l.set_ipc_permissions(mode).expect("mode before start");
            assert_eq!(l.options().ipc_permissions, Some(mode));
            assert!(!path.exists(), "no socket file before start");
            l.start().expect("start");
            assert_eq!(mode_of(&path), mode, "socket file mode for {mode:#o}");

            let push = Push::new();
            timeouts(&push);
            push.dial(url.as_str())
                .await
                .expect("dial the chmodded socket");
            push.send(format!("mode {mode:o}").into_bytes())
                .await
                .unwrap();
            let got = pull.recv().await.expect("the message crosses");
            assert_eq!(got.body, format!("mode {mode:o}").as_bytes());
        }
        assert_no_worker_panics();
    }

    /// The mode is applied when the listener binds, so setting it afterwards cannot take
    /// effect: it is refused with `AlreadyStarted` (NNG refuses `ipc:permissions` on a started
    /// listener with `NNG_EBUSY`), and neither the file nor the listener's options change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mode_set_after_start_is_refused_and_changes_nothing() {
        let dir = TempIpcDir::new();
        let path = dir.path();
        let pull = Pull::new();
        let l = pull.listener(ipc_url(&path)).expect("listener");
        l.set_ipc_permissions(0o600).expect("mode before start");
        l.start().expect("start");
        match l.set_ipc_permissions(0o666) {
            Err(Error::AlreadyStarted(url)) => assert_eq!(url, ipc_url(&path)),
            other => panic!("mode after start: {other:?}"),
        }
        assert_eq!(mode_of(&path), 0o600, "the file keeps its mode");
        assert_eq!(l.options().ipc_permissions, Some(0o600));

        // The same holds for a listener started by `listen`, which had no mode at bind.
        let other = dir.path();
        let l2 = pull.listen(ipc_url(&other)).await.expect("listen");
        let before = mode_of(&other);
        assert!(
            l2.set_ipc_permissions(0o600)
                .is_err_and(|e| matches!(e, Error::AlreadyStarted(_))),
            "mode after listen"
        );
        assert_eq!(mode_of(&other), before);
        assert_eq!(l2.options().ipc_permissions, None);
    }

    /// Mode bits above `0o777` (set-user-ID and the like) are `InvalidOption` naming the
    /// option, and other transports are `NotSupported`; nothing is stored. A dialer has no
    /// `set_ipc_permissions` at all: the spec's "setting it on a dialer is refused" holds by
    /// type, so there is nothing to call at run time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_modes_and_other_transports_are_refused() {
        let dir = TempIpcDir::new();
        let pull = Pull::new();
        let l = pull.listener(dir.url()).expect("listener");
        match l.set_ipc_permissions(0o4755) {
            Err(Error::InvalidOption { option, value, .. }) => {
                assert_eq!(option, "ipc_permissions");
                assert_eq!(value, "0o4755");
            }
            other => panic!("mode 0o4755: {other:?}"),
        }
        assert_eq!(l.options().ipc_permissions, None, "unchanged");

        for url in [LOCAL.to_string(), inproc_url("perms")] {
            let l = pull.listener(url.as_str()).expect("listener");
            assert!(
                l.set_ipc_permissions(0o600)
                    .is_err_and(|e| e.is_not_supported()),
                "ipc_permissions on {url}"
            );
            assert_eq!(l.options().ipc_permissions, None, "unchanged on {url}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 8.1 #25: inproc keeps headers (mangos `TestInpMessageHeader`)

/// One message XREQ sends: its header and body.
struct Case {
    header: &'static [u8],
    body: &'static [u8],
    /// The backtrace XREP should show below its pipe word, and XREQ should get back.
    stack: &'static [u8],
    /// The body XREP should show.
    rest: &'static [u8],
}

const CASES: [Case; 4] = [
    // A request ID alone.
    Case {
        header: b"\x80\x00\x00\x07",
        body: b"hello",
        stack: b"\x80\x00\x00\x07",
        rest: b"hello",
    },
    // A hop word above the request ID: the whole stack stays in the header.
    Case {
        header: b"\x00\x00\x00\x05\x80\x00\x00\x08",
        body: b"two words",
        stack: b"\x00\x00\x00\x05\x80\x00\x00\x08",
        rest: b"two words",
    },
    // No header: the request ID at the front of the body is parsed as on a wire.
    Case {
        header: b"",
        body: b"\x80\x00\x00\x09in the body",
        stack: b"\x80\x00\x00\x09",
        rest: b"in the body",
    },
    // The stack ends at the first bottom word; a word-like body after it stays body.
    Case {
        header: b"\x80\x00\x00\x0a",
        body: b"\x80\x00\x00\x01tail",
        stack: b"\x80\x00\x00\x0a",
        rest: b"\x80\x00\x00\x01tail",
    },
];

/// What one case showed: XREP's header below its pipe word and its body, then the header and
/// body XREQ got back.
type Seen = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// Raw XREQ dials raw XREP over `t` and sends every case; XREP answers each with the header
/// it received. Checks the pipe word XREP pushes and returns what each side saw.
async fn xreq_xrep_headers(t: Transport) -> Vec<Seen> {
    let ep = sp_tests::Endpoint::new(t);
    let xrep = XRep::new();
    timeouts(&xrep);
    let url = xrep
        .listen(ep.our_listen_url().as_str())
        .await
        .expect("listen")
        .to_string();
    let xreq = XReq::new();
    timeouts(&xreq);
    xreq.dial(url.as_str()).await.expect("dial");
    wait_for_pipes(&xrep, 1).await;

    let mut seen = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        xreq.send(Message::with_header(case.header, case.body))
            .await
            .expect("XREQ sends");
        let m = xrep.recv().await.expect("XREP receives");
        assert!(
            m.header.len() >= 8,
            "{t:?} case {i}: header {:02x?}",
            m.header
        );
        let word = u32::from_be_bytes(m.header[..4].try_into().expect("4 bytes"));
        assert_eq!(
            word & 0x8000_0000,
            0,
            "{t:?}: the pipe word has bit 31 clear"
        );
        assert_eq!(
            Some(word),
            m.pipe.map(|p| p.get()),
            "{t:?}: the pipe word names the arrival pipe"
        );
        let (stack, rest) = (m.header[4..].to_vec(), m.body.to_vec());

        let mut answer = b"re: ".to_vec();
        answer.extend_from_slice(&rest);
        xrep.send(Message::with_header(m.header.clone(), answer))
            .await
            .expect("XREP replies");
        let r = xreq.recv().await.expect("XREQ gets the reply");
        seen.push((stack, rest, r.header.to_vec(), r.body.to_vec()));
    }
    seen
}

/// A raw XREQ's header crosses inproc exactly as it crosses TCP and IPC: XREP shows its pipe
/// word above the sender's backtrace (re-parsed from header then body, so a request ID sent
/// in the body is found too), and the reply brings the backtrace back to XREQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_request_headers_cross_inproc_as_they_cross_tcp_and_ipc() {
    watch_worker_panics();
    let tcp = xreq_xrep_headers(Transport::Tcp).await;
    for (i, (case, seen)) in CASES.iter().zip(&tcp).enumerate() {
        let mut answer = b"re: ".to_vec();
        answer.extend_from_slice(case.rest);
        let want = (
            case.stack.to_vec(),
            case.rest.to_vec(),
            case.stack.to_vec(),
            answer,
        );
        assert_eq!(seen, &want, "tcp case {i}");
    }
    let inproc = xreq_xrep_headers(Transport::Inproc).await;
    assert_eq!(inproc, tcp, "inproc shows what tcp shows");
    let ipc = xreq_xrep_headers(Transport::Ipc).await;
    assert_eq!(ipc, tcp, "ipc shows what tcp shows");
    assert_no_worker_panics();
}

/// Raw PUSH with a header: PULL has no control words, so the header arrives as the leading
/// bytes of the body on every transport, inproc included.
async fn raw_push_header_at_pull(t: Transport) -> (Vec<u8>, Vec<u8>) {
    let ep = sp_tests::Endpoint::new(t);
    let pull = Pull::new();
    timeouts(&pull);
    let url = pull
        .listen(ep.our_listen_url().as_str())
        .await
        .expect("listen")
        .to_string();
    let xpush = XPush::new();
    timeouts(&xpush);
    xpush.dial(url.as_str()).await.expect("dial");
    xpush
        .send(Message::with_header(&b"\x80\x00\x00\x01"[..], "body"))
        .await
        .expect("XPUSH sends");
    let m = pull.recv().await.expect("PULL receives");
    (m.header.to_vec(), m.body.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_push_header_reaches_pull_as_body_bytes_on_every_transport() {
    let want = (Vec::new(), b"\x80\x00\x00\x01body".to_vec());
    for t in [Transport::Tcp, Transport::Ipc, Transport::Inproc] {
        assert_eq!(raw_push_header_at_pull(t).await, want, "{t:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8.2 #27: default timeouts are infinite (NNG `test_recv_timeout`, `test_send_timeout`)

/// A fresh socket (and a context of one) has no send or receive timeout, as the spec's
/// defaults (NNG -1, nanomsg -1, mangos none) say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_sockets_and_contexts_have_no_timeouts() {
    let defaults = SocketOptions::default();
    assert_eq!(defaults.recv_timeout, None);
    assert_eq!(defaults.send_timeout, None);
    let pull = Pull::new();
    assert_eq!(pull.recv_timeout(), None);
    assert_eq!(pull.send_timeout(), None);
    let push = Push::new();
    assert_eq!(push.recv_timeout(), None);
    assert_eq!(push.send_timeout(), None);
    let rep = Rep::new();
    let ctx = rep.context().expect("REP context");
    assert_eq!(ctx.recv_timeout(), None);
    assert_eq!(ctx.send_timeout(), None);
}

/// With the default timeout a receive on an empty socket does not give up: it is still
/// waiting after a while, and the same receive completes once a message arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_with_the_default_timeout_waits_until_a_message_comes() {
    let url = inproc_url("wait-recv");
    let pull = Pull::new();
    pull.listen(url.as_str()).await.expect("listen");
    let mut recv = pin!(pull.recv());
    assert_still_pending(recv.as_mut(), "a receive on an empty socket").await;

    let push = Push::new();
    timeouts(&push);
    push.dial(url.as_str()).await.expect("dial");
    push.send("late").await.expect("send");
    let got = tokio::time::timeout(T, recv)
        .await
        .expect("the waiting receive completes")
        .expect("a message");
    assert_eq!(got.body, "late");
}

/// With the default timeout a PUSH send with no peer does not give up either: it waits, and
/// goes out once a PULL connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_with_the_default_timeout_waits_until_a_peer_comes() {
    let url = inproc_url("wait-send");
    let push = Push::new();
    push.listen(url.as_str()).await.expect("listen");
    let mut send = pin!(push.send("waited"));
    assert_still_pending(send.as_mut(), "a send with no peer").await;

    let pull = Pull::new();
    timeouts(&pull);
    pull.dial(url.as_str()).await.expect("dial");
    tokio::time::timeout(T, send)
        .await
        .expect("the waiting send completes")
        .expect("sent");
    assert_eq!(pull.recv().await.expect("recv").body, "waited");
}

// ---------------------------------------------------------------------------------------------
// 8.2 #30: REQ resend time and tick (NNG `test_req_resend_option`,
// `test_req_resend_tick_option`)

/// Checks the defaults of a fresh REQ socket's resend time and tick, then that each reads
/// back what was stored; a zero tick reads back as none. Written once for the three adapters'
/// socket types, which share the method names but no trait.
macro_rules! assert_resend_settings_round_trip {
    ($req:expr) => {{
        let req = $req;
        assert_eq!(req.resend_interval(), Some(Duration::from_secs(60)));
        assert_eq!(
            req.resend_tick(),
            None,
            "resends are not rounded by default"
        );
        req.set_resend_interval(Some(Duration::from_millis(1234)));
        req.set_resend_tick(Some(Duration::from_millis(321)));
        assert_eq!(req.resend_interval(), Some(Duration::from_millis(1234)));
        assert_eq!(req.resend_tick(), Some(Duration::from_millis(321)));
        req.set_resend_tick(Some(Duration::ZERO));
        assert_eq!(req.resend_tick(), None, "a zero tick means no tick");
        assert_eq!(req.resend_interval(), Some(Duration::from_millis(1234)));
        req.set_resend_interval(None);
        assert_eq!(req.resend_interval(), None);
    }};
}

/// Resend time and resend tick store and return their values on sp-tokio, sp-smol and
/// sp-blocking REQ sockets. The scenario's wrong-type half has no counterpart here: both
/// setters take an `Option<Duration>`.
#[test]
fn req_resend_time_and_tick_read_back_on_every_adapter() {
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tokio_rt.block_on(async { assert_resend_settings_round_trip!(sp_tokio::Req::new()) });
    smol::block_on(async { assert_resend_settings_round_trip!(sp_smol::Req::new()) });
    assert_resend_settings_round_trip!(sp_blocking::Req::new());
}

// ---------------------------------------------------------------------------------------------
// 8.2 #32: endpoint option inheritance (NNG `test_dialer_options`, `test_listener_options`)

/// The endpoint settings the socket can set, as one comparable value: receive limit,
/// reconnect min and max, TCP no-delay and keep-alive, handshake timeout.
type Settings = (usize, Duration, Duration, bool, bool, Duration);

fn settings(o: &EndpointOptions) -> Settings {
    (
        o.recv_max_size,
        o.reconnect.min,
        o.reconnect.max,
        o.tcp.nodelay,
        o.tcp.keepalive,
        o.handshake_timeout,
    )
}

/// Dialers and listeners, started or not, take the socket's settings as they are when the
/// endpoint is created; a later change to the socket (one setter at a time or the whole
/// `SocketOptions`) leaves them alone and reaches only endpoints created afterwards. Nor
/// does an endpoint's own change reach the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_copy_socket_settings_at_creation_and_keep_them() {
    watch_worker_panics();
    let defaults: Settings = (
        1 << 20,
        Duration::from_millis(100),
        Duration::from_secs(2),
        true,
        false,
        Duration::from_secs(10),
    );
    let peer = Push::new();
    let peer_url = peer.listen(LOCAL).await.expect("peer listens").to_string();

    let pull = Pull::new();
    timeouts(&pull);
    assert_eq!(settings(&pull.options().endpoint), defaults);
    let d0 = pull.dialer(peer_url.as_str()).expect("dialer");
    assert_eq!(
        settings(&d0.options()),
        defaults,
        "a dialer takes the defaults"
    );

    let first: Settings = (
        1234,
        Duration::from_millis(10),
        Duration::from_millis(250),
        false,
        true,
        Duration::from_secs(3),
    );
    pull.set_recv_max_size(first.0).unwrap();
    pull.set_reconnect_backoff(first.1, first.2);
    pull.set_tcp_nodelay(first.3);
    pull.set_tcp_keepalive(first.4);
    pull.set_handshake_timeout(first.5).unwrap();
    assert_eq!(settings(&pull.options().endpoint), first);
    assert_eq!(
        settings(&d0.options()),
        defaults,
        "the earlier dialer is unchanged"
    );

    let dialer = pull.dialer(peer_url.as_str()).expect("dialer");
    let listener = pull.listener(LOCAL).expect("listener");
    let dialed = pull.dial(peer_url.as_str()).await.expect("dial");
    let listening = pull.listen(LOCAL).await.expect("listen");
    let made_then = [
        ("dialer", dialer.options()),
        ("listener", listener.options()),
        ("started dialer", dialed.options()),
        ("started listener", listening.options()),
    ];
    for (what, o) in &made_then {
        assert_eq!(
            settings(o),
            first,
            "a new {what} copies the socket's settings"
        );
    }

    let second: Settings = (
        99,
        Duration::from_millis(500),
        Duration::ZERO,
        true,
        false,
        Duration::from_secs(7),
    );
    pull.set_recv_max_size(second.0).unwrap();
    pull.set_reconnect_backoff(second.1, second.2);
    pull.set_tcp_nodelay(second.3);
    pull.set_tcp_keepalive(second.4);
    pull.set_handshake_timeout(second.5).unwrap();
    assert_eq!(pull.recv_max_size(), 99);
    let now = [
        ("dialer", dialer.options()),
        ("listener", listener.options()),
        ("started dialer", dialed.options()),
        ("started listener", listening.options()),
    ];
    for (what, o) in &now {
        assert_eq!(settings(o), first, "the {what} keeps its settings");
    }
    assert_eq!(
        settings(&pull.dialer(peer_url.as_str()).unwrap().options()),
        second
    );
    assert_eq!(settings(&pull.listener(LOCAL).unwrap().options()), second);

    // Replacing all the socket's options at once changes no endpoint either.
    let third = SocketOptions::builder()
        .recv_max_size(4321)
        .reconnect(Duration::from_millis(1), Duration::from_millis(2))
        .tcp_nodelay(false)
        .tcp_keepalive(true)
        .handshake_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    pull.set_options(third.clone()).expect("set_options");
    assert_eq!(settings(&dialed.options()), first);
    assert_eq!(settings(&listening.options()), first);
    assert_eq!(
        settings(&pull.listener(LOCAL).unwrap().options()),
        settings(&third.endpoint)
    );

    // And an endpoint's own change stays with it.
    dialed.set_recv_max_size(777).unwrap();
    listening.set_tcp_keepalive(false);
    assert_eq!(pull.recv_max_size(), 4321);
    assert!(pull.options().endpoint.tcp.keepalive);
    assert_eq!(dialer.options().recv_max_size, first.0);
    assert!(listener.options().tcp.keepalive);
    assert_no_worker_panics();
}

/// The copied receive limit is the one the listener enforces: a listener started under a
/// 1000-byte socket limit still takes a 500-byte message after the socket's limit drops to
/// 100, while a listener created after the drop refuses the same message (its pipe is
/// closed, the drop counted as too large, nothing delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_enforces_the_limit_it_was_created_with() {
    watch_worker_panics();
    let pull = Pull::new();
    timeouts(&pull);
    pull.set_recv_max_size(1000).unwrap();
    let before = pull.listen(LOCAL).await.expect("listen under 1000");
    pull.set_recv_max_size(100).unwrap();
    let after = pull.listen(LOCAL).await.expect("listen under 100");
    assert_eq!(before.options().recv_max_size, 1000);
    assert_eq!(after.options().recv_max_size, 100);

    let a = Push::new();
    timeouts(&a);
    a.dial(&before).await.expect("A dials the first listener");
    let b = Push::new();
    timeouts(&b);
    b.dial(&after).await.expect("B dials the second listener");
    wait_for_pipes(&pull, 2).await;

    a.send(vec![1u8; 500]).await.expect("A sends");
    let m = pull
        .recv()
        .await
        .expect("500 bytes pass the first listener");
    assert_eq!(&m.body[..], &[1u8; 500][..]);

    b.send(vec![2u8; 500]).await.expect("B sends");
    wait_until("the too-large drop is counted", T, || {
        pull.stats().dropped.get(DropReason::TooLarge) == 1
    })
    .await;
    let late = pull.recv_until(Instant::now() + SHORT).await;
    assert!(
        matches!(late, Err(Error::TimedOut)),
        "B's message never arrives: {late:?}"
    );
    assert_no_worker_panics();
}

/// Scenario 33: the TCP options reach the connection itself, not only the endpoint's record.
/// A connection adopted by a socket gets the socket's no-delay and keep-alive; a second
/// handle on the same OS socket (`try_clone`) reads them back. NNG's defaults hold for a
/// socket whose options were never set: no-delay on, keep-alive off.
#[tokio::test]
async fn tcp_options_reach_the_os_socket() {
    for (set, nodelay, keepalive) in [
        (None, true, false),
        (Some((false, true)), false, true),
        (Some((true, false)), true, false),
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        let probe = ours.try_clone().unwrap();
        let (socket, peer) = (Pull::new(), Push::new());
        if let Some((nodelay, keepalive)) = set {
            socket.set_tcp_nodelay(nodelay);
            socket.set_tcp_keepalive(keepalive);
        }
        let (adopted, peer_adopted) = tokio::join!(socket.adopt_tcp(ours), peer.adopt_tcp(theirs));
        adopted.expect("adopt our end");
        peer_adopted.expect("adopt their end");
        assert_eq!(probe.nodelay().unwrap(), nodelay, "no-delay after {set:?}");
        assert_eq!(
            socket2::SockRef::from(&probe).keepalive().unwrap(),
            keepalive,
            "keep-alive after {set:?}"
        );
        peer.send("through").await.unwrap();
        assert_eq!(socket.recv().await.unwrap().body.as_ref(), b"through");
    }
}

/// Scenario 36, the wake-up no core event gives: a REP becomes writable when it takes a
/// request, which is the application's own receive, not something a pipe delivered. A task
/// already parked in `writable()` must be woken by that receive.
#[tokio::test]
async fn a_receive_that_makes_a_rep_writable_wakes_its_writable_waiter() {
    sp_tests::limited(async {
        let (rep, req) = (Rep::new(), sp_tokio::Req::new());
        timeouts(&rep);
        let url = rep
            .listen(inproc_url("writable"))
            .await
            .unwrap()
            .to_string();
        req.dial(&url).await.unwrap();
        let waiter = {
            let rep = rep.clone();
            // No deadline of its own: only a wake-up ends this wait.
            rep.set_send_timeout(None);
            tokio::spawn(async move { rep.writable().await })
        };
        // One thread (the test's runtime): the yield lets the waiter make its first poll, which
        // finds nothing to answer and parks, before the request comes.
        tokio::task::yield_now().await;
        req.send("ask").await.unwrap();
        rep.readable_until(Instant::now() + T).await.unwrap();
        assert!(!waiter.is_finished(), "an idle REP is not writable");
        rep.recv().await.unwrap();
        tokio::time::timeout(T, waiter)
            .await
            .expect("the receive woke the waiting task")
            .unwrap()
            .expect("writable");
    })
    .await;
}
