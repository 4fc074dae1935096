//! A web page and its SP sockets on one port, served by the application's own axum router:
//! a PUB streams live figures (the sockets' own statistics) to every open page, and a REP
//! answers the page's REQ form. The page is plain JavaScript (`web_page.html`), no build step.
//!
//! ```sh
//! cargo run -p sp-tokio --example web      # then open http://127.0.0.1:8080/
//! ```
//!
//! `PORT` picks another port. With `SP_EXAMPLE_SELF_TEST=1` (as scripts/run-examples.sh
//! runs it) it listens on a free port, plays the page's part itself with SP sockets over
//! WebSocket, and exits.

use std::error::Error;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("web_page.html");

#[derive(Clone)]
struct Sp {
    figures: sp_tokio::Pub,
    rpc: sp_tokio::Rep,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let sp = Sp {
        figures: sp_tokio::Pub::new(),
        rpc: sp_tokio::Rep::new(),
    };
    // The SP routes: the socket checks the upgrade (subprotocol, origin) and adopts the pipe.
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(
            "/sp/stats",
            get(|State(sp): State<Sp>, req: Request| async move {
                sp_tokio::http::upgrade(&sp.figures, req)
            }),
        )
        .route(
            "/sp/rpc",
            get(|State(sp): State<Sp>, req: Request| async move {
                sp_tokio::http::upgrade(&sp.rpc, req)
            }),
        )
        .with_state(sp.clone());

    let self_test = std::env::var("SP_EXAMPLE_SELF_TEST").is_ok_and(|v| v == "1");
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse()?,
        Err(_) if self_test => 0,
        Err(_) => 8080,
    };
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = tcp.local_addr()?;
    println!("open http://{addr}/");
    tokio::spawn(async move { axum::serve(tcp, app).await });

    // Answer each question.
    let rpc = sp.rpc.clone();
    tokio::spawn(async move {
        while let Ok(question) = rpc.recv().await {
            let text = String::from_utf8_lossy(&question.body).into_owned();
            let answer = format!(
                "{} (the server read {} bytes)",
                text.to_uppercase(),
                text.len()
            );
            let _ = rpc.send(answer.into_bytes()).await;
        }
    });
    // Publish both sockets' statistics twice a second.
    let (figures, rpc) = (sp.figures.clone(), sp.rpc.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            let (f, r) = (figures.stats(), rpc.stats());
            let json = format!(
                r#"{{"pages watching":{},"figures sent":{},"questions answered":{},"bytes received":{},"connections refused":{}}}"#,
                f.pipes_open,
                f.msgs_sent,
                r.msgs_sent,
                r.bytes_received,
                f.refused.total() + r.refused.total()
            );
            if figures.send(json.into_bytes()).await.is_err() {
                break;
            }
        }
    });

    if !self_test {
        std::future::pending::<()>().await;
    }
    // Self-test: what the page does, with our own SUB and REQ over the same routes.
    let sub = sp_tokio::Sub::new();
    sub.subscribe(b"");
    sub.set_recv_timeout(Some(Duration::from_secs(10)));
    sub.dial(format!("ws://{addr}/sp/stats")).await?;
    let figures = sub.recv().await?;
    println!("figures: {}", String::from_utf8_lossy(&figures.body));
    let req = sp_tokio::Req::new();
    req.set_recv_timeout(Some(Duration::from_secs(10)));
    req.dial(format!("ws://{addr}/sp/rpc")).await?;
    req.send(&b"hello"[..]).await?;
    let answer = req.recv().await?;
    println!("answer: {}", String::from_utf8_lossy(&answer.body));
    assert!(answer.body.starts_with(b"HELLO"));
    Ok(())
}
