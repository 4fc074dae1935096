//! A web page and its SP sockets on one port, with no HTTP framework: the `ws://` listeners
//! serve the page themselves (`HttpHandler`) to plain GET requests. A PUB streams live figures
//! (the sockets' own statistics) to every open page and a REP answers the page's REQ form; the
//! page is sp-tokio's `examples/web_page.html` (plain JavaScript, no build step).
//!
//! ```sh
//! cargo run -p sp-smol --example smol_web      # then open http://127.0.0.1:8080/
//! ```
//!
//! `PORT` picks another port. With `SP_EXAMPLE_SELF_TEST=1` (as scripts/run-examples.sh
//! runs it) it listens on a free port, plays the page's part itself, and exits.

use std::error::Error;
use std::time::Duration;

use sp_smol::websocket::async_tungstenite::tungstenite::http::StatusCode;
use sp_smol::{HttpHandler, HttpResponse, Pub, Rep, Req, Sub};

const PAGE: &str = include_str!("../../sp-tokio/examples/web_page.html");

fn main() -> Result<(), Box<dyn Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let self_test = std::env::var("SP_EXAMPLE_SELF_TEST").is_ok_and(|v| v == "1");
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse()?,
        Err(_) if self_test => 0,
        Err(_) => 8080,
    };
    // The first listener binds the port; the second adds its path to it.
    let rpc = Rep::new();
    let listener = rpc.listen(format!("ws://127.0.0.1:{port}/sp/rpc")).await?;
    listener.set_http_handler(HttpHandler::new(|req| match req.uri().path() {
        "/" => {
            let mut page = HttpResponse::new(PAGE.as_bytes().to_vec());
            page.headers_mut()
                .insert("Content-Type", "text/html; charset=utf-8".parse().unwrap());
            page
        }
        _ => {
            let mut missing = HttpResponse::new(b"not found\n".to_vec());
            *missing.status_mut() = StatusCode::NOT_FOUND;
            missing
        }
    }))?;
    let bound = listener.address();
    let (host, port) = bound.host_port().expect("a ws address");
    let figures = Pub::new();
    figures
        .listen(format!("ws://{host}:{port}/sp/stats"))
        .await?;
    println!("open http://{host}:{port}/");

    // Answer each question.
    let r = rpc.clone();
    smol::spawn(async move {
        while let Ok(question) = r.recv().await {
            let text = String::from_utf8_lossy(&question.body).into_owned();
            let answer = format!(
                "{} (the server read {} bytes)",
                text.to_uppercase(),
                text.len()
            );
            let _ = r.send(answer.into_bytes()).await;
        }
    })
    .detach();
    // Publish both sockets' statistics twice a second.
    let (f, r) = (figures.clone(), rpc.clone());
    smol::spawn(async move {
        loop {
            smol::Timer::after(Duration::from_millis(500)).await;
            let (fs, rs) = (f.stats(), r.stats());
            let json = format!(
                r#"{{"pages watching":{},"figures sent":{},"questions answered":{},"bytes received":{},"connections refused":{}}}"#,
                fs.pipes_open, fs.msgs_sent, rs.msgs_sent, rs.bytes_received,
                fs.refused.total() + rs.refused.total()
            );
            if f.send(json.into_bytes()).await.is_err() {
                break;
            }
        }
    })
    .detach();

    if !self_test {
        std::future::pending::<()>().await;
    }
    // Self-test: what the page does, with our own SUB and REQ over the same port.
    let sub = Sub::new();
    sub.subscribe(b"");
    sub.set_recv_timeout(Some(Duration::from_secs(10)));
    sub.dial(format!("ws://{host}:{port}/sp/stats")).await?;
    println!(
        "figures: {}",
        String::from_utf8_lossy(&sub.recv().await?.body)
    );
    let req = Req::new();
    req.set_recv_timeout(Some(Duration::from_secs(10)));
    req.dial(format!("ws://{host}:{port}/sp/rpc")).await?;
    req.send(&b"hello"[..]).await?;
    let answer = req.recv().await?;
    println!("answer: {}", String::from_utf8_lossy(&answer.body));
    assert!(answer.body.starts_with(b"HELLO"));
    Ok(())
}
