//! Sockets as `Stream`s and `Sink`s: a three-stage pipeline built from `futures` combinators.
//!
//! ```text
//! source: iter -> send_all -> PUSH --tcp--> PULL stream .map(square) .forward(PUSH sink)
//!                                                 --inproc--> PULL stream -> results
//! ```
//!
//! A receiving socket is a `Stream` of `Result<Message>` and a sending socket a
//! `Sink<Message>` with real back-pressure, so `StreamExt` and `SinkExt` apply directly.
//!
//! ```sh
//! cargo run -p sp-tokio --example stream_sink
//! ```

use std::error::Error;
use std::time::Duration;

use futures_util::{stream, SinkExt, StreamExt};
use sp_tokio::{Message, Pull, Push};

const COUNT: usize = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Stage 1 -> 2 over TCP, stage 2 -> 3 in-process.
    let stage_in = Pull::new();
    let tcp = stage_in.listen("tcp://127.0.0.1:0").await?;
    let results = Pull::new();
    let inproc = results
        .listen(format!("inproc://stream-sink-{}", std::process::id()))
        .await?;
    let mut source = Push::new();
    source.dial(&tcp).await?;
    let stage_out = Push::new();
    stage_out.dial(&inproc).await?;
    println!("source -> {tcp} -> squarer -> {inproc} -> results");

    // Source: an iterator of numbers, sent with `send_all`.
    let producing = tokio::spawn(async move {
        let mut numbers = stream::iter(1..=COUNT).map(|n| {
            println!("source -> {n}");
            Ok(Message::from(n.to_string()))
        });
        source.send_all(&mut numbers).await
    });

    // Stage: the PULL stream, mapped, forwarded into the PUSH sink.
    let squaring = tokio::spawn(
        stage_in
            .take(COUNT)
            .map(|msg| {
                let msg = msg?;
                let n: u64 = String::from_utf8_lossy(&msg.body).parse().unwrap_or(0);
                println!("squarer: {n} -> {}", n * n);
                Ok(Message::from((n * n).to_string()))
            })
            .forward(stage_out),
    );

    // Sink end: the first COUNT results, with a bound on the wait.
    let squares = tokio::time::timeout(
        Duration::from_secs(5),
        results.clone().take(COUNT).collect::<Vec<_>>(),
    )
    .await?;
    for square in squares {
        println!("results <- {}", String::from_utf8_lossy(&square?.body));
    }

    producing.await??;
    squaring.await??;
    results.close().await;
    println!("stream_sink done");
    Ok(())
}
