//! SP over WebSocket with a real browser as the peer: headless Chromium loads
//! `tests/web/sp_test.html` from the same port as the SP sockets and runs REQ to REP (and a
//! 1 MiB request), SUB from PUB, PUSH to PULL, PAIR both ways, BUS, a listener that refuses
//! the page's origin, and the close codes (1003 for a text message, 1009 for one over the
//! limit, 1000 when the server closes the pipe, 1001 when the socket closes, the page's own
//! 1000 accepted quietly), over `ws` and
//! `wss`, with the page served by the listener itself (`HttpHandler::files`) and by an
//! application's own hyper server (`sp_tokio::http::upgrade`).
//!
//! Skips with the reason when Chromium is absent; fails then under `SP_REQUIRE_PEERS=1`.

use std::time::Duration;

use sp_tests::browser::{pages_dir, require_chromium, run_page};
use sp_tests::certs::server_tls;
use sp_tokio::{Bus, HttpHandler, Pair, Pub, Pull, RefusalReason, Rep};
use tokio::sync::Mutex;

/// Every browser test's page tests, in order.
const ALL: &[&str] = &[
    "reqrep", "big", "sub", "push", "pair", "bus", "origin", "text", "oversize", "normal", "quiet",
    "away",
];
const DEADLINE: Duration = Duration::from_secs(90);
const T: Duration = Duration::from_secs(20);

/// One browser at a time: two cores, and each Chromium starts a dozen processes.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// The Rust side of the page's tests, on `scheme://127.0.0.1:<port>`: one socket per path,
/// and the tasks that answer the page.
struct Peers {
    rep: Rep,
    publisher: Pub,
    pull: Pull,
    pair: Pair,
    bus: Bus,
    limit: Pull,
    bye: Pair,
    normal: Pair,
    quiet: Pair,
    foreign: Rep,
    page: String,
}

async fn peers(scheme: &str) -> Peers {
    let secure = scheme == "wss";
    let base = format!("{scheme}://127.0.0.1:0");
    let rep = Rep::new();
    rep.set_recv_max_size(2 << 20).unwrap();
    if secure {
        rep.set_tls(server_tls());
    }
    let first = rep.listen(format!("{base}/rep")).await.unwrap();
    first
        .set_http_handler(HttpHandler::files(pages_dir()))
        .unwrap();
    let (_, port) = first.address().host_port().unwrap();
    let at = |path: &str| format!("{scheme}://127.0.0.1:{port}{path}");
    macro_rules! listen {
        ($sock:expr, $path:expr) => {{
            let s = $sock;
            if secure {
                s.set_tls(server_tls());
            }
            s.listen(at($path)).await.unwrap();
            s
        }};
    }
    let publisher = listen!(Pub::new(), "/pub");
    let pull = listen!(Pull::new(), "/pull");
    let pair = listen!(Pair::new(), "/pair");
    let bus = listen!(Bus::new(), "/bus");
    let limit = Pull::new();
    limit.set_recv_max_size(1024).unwrap();
    let limit = listen!(limit, "/limit");
    let bye = listen!(Pair::new(), "/bye");
    let normal = listen!(Pair::new(), "/normal");
    let quiet = listen!(Pair::new(), "/quiet");
    // Another port, default origin policy: the page's origin is not its own.
    let foreign = Rep::new();
    if secure {
        foreign.set_tls(server_tls());
    }
    let foreign_at = foreign
        .listen(format!("{base}/rep"))
        .await
        .unwrap()
        .address();

    // REP and BUS echo, PAIR answers, PUB ticks until closed, /bye closes once greeted.
    let r = rep.clone();
    tokio::spawn(async move {
        while let Ok(m) = r.recv().await {
            if r.send(m.body).await.is_err() {
                break;
            }
        }
    });
    let b = bus.clone();
    tokio::spawn(async move {
        while let Ok(m) = b.recv().await {
            let mut echo = b"bus echo: ".to_vec();
            echo.extend_from_slice(&m.body);
            let _ = b.send(echo).await;
        }
    });
    let p = pair.clone();
    tokio::spawn(async move {
        if let Ok(m) = p.recv().await {
            assert_eq!(m.body.as_ref(), b"hello from the browser");
            let _ = p.send(&b"hello from rust"[..]).await;
        }
    });
    let publ = publisher.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        for n in 0u64.. {
            tick.tick().await;
            if publ.send(format!("tick {n}").into_bytes()).await.is_err() {
                break;
            }
        }
    });
    let by = bye.clone();
    tokio::spawn(async move {
        if let Ok(m) = by.recv().await {
            assert_eq!(m.body.as_ref(), b"ready");
            by.close().await;
        }
    });
    let n = normal.clone();
    tokio::spawn(async move {
        if let Ok(m) = n.recv().await {
            assert_eq!(m.body.as_ref(), b"ready");
            let pipe = m.pipe.and_then(|id| n.pipe(id)).expect("the page's pipe");
            pipe.close();
        }
    });
    let page_scheme = if secure { "https" } else { "http" };
    let page = format!(
        "{page_scheme}://127.0.0.1:{port}/sp_test.html?tests={}&foreign={}",
        ALL.join(","),
        foreign_at
    );
    Peers {
        rep,
        publisher,
        pull,
        pair,
        bus,
        limit,
        bye,
        normal,
        quiet,
        foreign,
        page,
    }
}

/// Runs the page against the peers, then checks the Rust side of what it did.
async fn run_all(scheme: &str) {
    let Some(chromium) = require_chromium() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let p = peers(scheme).await;
    p.pull.set_recv_timeout(Some(T));
    let url = p.page.clone();
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || run_page(&chromium, &url, DEADLINE))
        .await
        .unwrap();
    eprintln!(
        "{scheme}: browser ran {} tests in {:?}",
        report.lines.len(),
        started.elapsed()
    );
    report.assert_ok(ALL);
    // What the page pushed arrived; its refused connection was counted as such; its own
    // close detached the pipe.
    assert_eq!(
        p.pull.recv().await.unwrap().body.as_ref(),
        b"pushed from the browser"
    );
    assert_eq!(p.foreign.stats().refused.get(RefusalReason::Origin), 1);
    assert!(p.quiet.stats().pipes_attached >= 1);
    sp_tests::wait_for_pipe_count(&p.quiet, 0).await;
    assert!(p.limit.stats().pipes_attached >= 2);
    for s in [&p.rep] {
        s.close().await;
    }
    p.publisher.close().await;
    p.pair.close().await;
    p.bus.close().await;
    p.bye.close().await;
    p.normal.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_over_ws_page_from_the_listener() {
    run_all("ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_over_wss_page_from_the_listener() {
    run_all("wss").await;
}

/// The page and SP from the application's own hyper server: `sp_tokio::http::upgrade` on
/// the SP routes, the page on every other path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_with_the_page_from_the_applications_own_server() {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let Some(chromium) = require_chromium() else {
        return;
    };
    let _one = ONE_BROWSER.lock().await;
    let rep = Rep::new();
    rep.set_recv_max_size(2 << 20).unwrap();
    let limit = Pull::new();
    limit.set_recv_max_size(1024).unwrap();
    let quiet = Pair::new();
    let foreign = Rep::new();
    let foreign_at = foreign.listen("ws://127.0.0.1:0/rep").await.unwrap();
    let r = rep.clone();
    tokio::spawn(async move {
        while let Ok(m) = r.recv().await {
            if r.send(m.body).await.is_err() {
                break;
            }
        }
    });
    let page = std::fs::read_to_string(pages_dir().join("sp_test.html")).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let (rep2, limit2, quiet2) = (rep.clone(), limit.clone(), quiet.clone());
    let server = tokio::spawn(async move {
        loop {
            let (conn, _) = tcp.accept().await.unwrap();
            let (rep, limit, quiet, page) =
                (rep2.clone(), limit2.clone(), quiet2.clone(), page.clone());
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let response = match req.uri().path() {
                    "/rep" => sp_tokio::http::upgrade(&rep, req),
                    "/limit" => sp_tokio::http::upgrade(&limit, req),
                    "/quiet" => sp_tokio::http::upgrade(&quiet, req),
                    _ => {
                        let mut r = hyper::Response::new(page.clone());
                        r.headers_mut()
                            .insert("Content-Type", "text/html".parse().unwrap());
                        r
                    }
                };
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), service)
                    .with_upgrades(),
            );
        }
    });
    let tests = ["reqrep", "big", "text", "oversize", "quiet", "origin"];
    let url = format!(
        "http://127.0.0.1:{port}/sp_test.html?tests={}&foreign={}",
        tests.join(","),
        foreign_at.address()
    );
    let report = tokio::task::spawn_blocking(move || run_page(&chromium, &url, DEADLINE))
        .await
        .unwrap();
    report.assert_ok(&tests);
    // The adopted pipes count like accepted ones.
    assert!(rep.stats().pipes_attached >= 2, "{:?}", rep.stats());
    assert!(limit.stats().pipes_attached >= 2);
    sp_tests::wait_for_pipe_count(&quiet, 0).await;
    assert_eq!(foreign.stats().refused.get(RefusalReason::Origin), 1);
    server.abort();
    rep.close().await;
}
