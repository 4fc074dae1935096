//! Request/reply (REQ/REP) with blocking calls, the second pattern of "Getting Started with
//! nanomsg": a server thread answers "DATE" requests with the current time; the client uses
//! `request`, which sends and waits for the matching reply on a context of its own, so
//! requests from several threads on one socket each get their own answer.
//!
//! ```sh
//! cargo run -p sp-blocking --example blocking_reqrep
//! ```

use std::error::Error;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sp_blocking::{Rep, Req};

fn main() -> Result<(), Box<dyn Error>> {
    let server = Rep::new();
    let listener = server.listen("tcp://127.0.0.1:0")?;
    println!("server (REP) listening on {listener}");
    let serving = {
        let server = server.clone();
        thread::spawn(move || serve(&server))
    };

    let client = Req::new();
    client.set_recv_timeout(Some(Duration::from_secs(5)));
    client.dial(&listener)?;

    for question in ["DATE", "PING"] {
        println!("client -> {question:?}");
        let reply = client.request(question)?;
        println!("client <- {:?}", String::from_utf8_lossy(&reply.body));
    }

    // Two requests in flight at once on the same socket, from two threads: each gets its
    // own reply.
    thread::scope(|s| -> Result<(), Box<dyn Error>> {
        let other = s.spawn(|| client.request("WHO ARE YOU?"));
        let date = client.request("DATE")?;
        let who = other
            .join()
            .map_err(|_| "the requesting thread panicked")??;
        println!(
            "client <- {:?} (concurrent)",
            String::from_utf8_lossy(&date.body)
        );
        println!(
            "client <- {:?} (concurrent)",
            String::from_utf8_lossy(&who.body)
        );
        Ok(())
    })?;

    server.close();
    serving.join().map_err(|_| "the server thread panicked")??;
    println!("reqrep done");
    Ok(())
}

/// Answers requests until the socket is closed.
fn serve(rep: &Rep) -> sp_blocking::Result<()> {
    for request in rep.incoming() {
        let request = request?;
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
        rep.send(reply)?;
    }
    Ok(())
}
