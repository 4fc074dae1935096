//! Request/reply (REQ/REP), the second pattern of "Getting Started with nanomsg": a server
//! answers "DATE" requests with the current time; the client uses `request`, which sends and
//! waits for the matching reply on a context of its own, so concurrent requests on one socket
//! each get their own answer.
//!
//! ```sh
//! cargo run -p sp-tokio --example reqrep
//! ```

use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sp_tokio::{Rep, Req};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let server = Rep::new();
    let listener = server.listen("tcp://127.0.0.1:0").await?;
    println!("server (REP) listening on {listener}");
    let serving = tokio::spawn(serve(server.clone()));

    let client = Req::new();
    client.set_recv_timeout(Some(Duration::from_secs(5)));
    client.dial(&listener).await?;

    for question in ["DATE", "PING"] {
        println!("client -> {question:?}");
        let reply = client.request(question).await?;
        println!("client <- {:?}", String::from_utf8_lossy(&reply.body));
    }

    // Two requests in flight at once on the same socket: each gets its own reply.
    let (a, b) = tokio::join!(client.request("DATE"), client.request("WHO ARE YOU?"));
    println!(
        "client <- {:?} (concurrent)",
        String::from_utf8_lossy(&a?.body)
    );
    println!(
        "client <- {:?} (concurrent)",
        String::from_utf8_lossy(&b?.body)
    );

    server.close().await;
    serving.await??;
    println!("reqrep done");
    Ok(())
}

/// Answers requests until the socket is closed.
async fn serve(rep: Rep) -> sp_tokio::Result<()> {
    loop {
        let request = match rep.recv().await {
            Ok(request) => request,
            Err(e) if e.is_closed() => return Ok(()),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&request.body).into_owned();
        let reply = match text.as_str() {
            "DATE" => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                format!("{} seconds since 1970", now.as_secs())
            }
            "PING" => "PONG".to_owned(),
            other => format!("unknown request {other:?}"),
        };
        println!("server <- {text:?}, -> {reply:?}");
        rep.send(reply).await?;
    }
}
