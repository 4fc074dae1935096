//! Publish/subscribe (PUB/SUB) on smol, the fourth pattern of "Getting Started with
//! nanomsg": a publisher sends to every subscriber, and each subscriber keeps only the
//! messages that start with one of its topics.
//!
//! PUB never waits: a message published while no subscriber is connected is simply dropped.
//! So the publisher watches its pipe events and starts publishing only once both subscribers
//! are attached.
//!
//! ```sh
//! cargo run -p sp-smol --example smol_pubsub
//! ```

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use sp_smol::{PipeEvent, PipeEvents, Pub, Sub};

fn main() -> Result<(), Box<dyn Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let publisher = Pub::new();
    let mut events = publisher.pipe_events();
    let listener = publisher.listen("tcp://127.0.0.1:0").await?;
    println!("publisher listening on {listener}");

    let weather = Sub::new();
    weather.subscribe(b"weather/");
    let sports = Sub::new();
    sports.subscribe(b"sports/");
    for sub in [&weather, &sports] {
        sub.set_recv_timeout(Some(Duration::from_secs(5)));
        sub.dial(&listener).await?;
    }
    wait_for_peers(&mut events, 2).await?;
    println!("both subscribers attached");

    let news = [
        "weather/oslo: snow",
        "sports/cup: 2-1",
        "markets/oil: up", // nobody subscribed: filtered out by both
        "weather/rome: sun",
    ];
    for item in news {
        publisher.send(item).await?;
        println!("pub -> {item:?}");
    }

    for _ in 0..2 {
        let msg = weather.recv().await?;
        println!("weather sub <- {:?}", String::from_utf8_lossy(&msg.body));
    }
    let msg = sports.recv().await?;
    println!("sports sub <- {:?}", String::from_utf8_lossy(&msg.body));

    publisher.close().await;
    println!("pubsub done");
    Ok(())
}

/// Waits (at most 5 s) until `n` peers' pipes have attached to the socket of `events`.
async fn wait_for_peers(events: &mut PipeEvents, n: usize) -> Result<(), Box<dyn Error>> {
    timeout(Duration::from_secs(5), async {
        let mut attached = 0;
        while attached < n {
            match events.next().await {
                Some(PipeEvent::Attached(_)) => attached += 1,
                Some(_) => {}
                None => return Err("the socket closed while waiting for peers".into()),
            }
        }
        Ok(())
    })
    .await?
}

/// Runs `fut` for at most `limit`.
async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Result<T, Box<dyn Error>> {
    smol::future::or(async { Ok(fut.await) }, async {
        smol::Timer::after(limit).await;
        Err(format!("timed out after {limit:?}").into())
    })
    .await
}
