//! Publish/subscribe (PUB/SUB) with blocking calls, the fourth pattern of "Getting Started
//! with nanomsg": a publisher sends to every subscriber, and each subscriber keeps only the
//! messages that start with one of its topics.
//!
//! PUB never waits: a message published while no subscriber is connected is simply dropped.
//! So the publisher watches its pipe events and starts publishing only once both subscribers
//! are attached.
//!
//! ```sh
//! cargo run -p sp-blocking --example blocking_pubsub
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use sp_blocking::{PipeEvent, PipeEvents, Pub, Sub};

fn main() -> Result<(), Box<dyn Error>> {
    let publisher = Pub::new();
    let mut events = publisher.pipe_events();
    let listener = publisher.listen("tcp://127.0.0.1:0")?;
    println!("publisher listening on {listener}");

    let weather = Sub::new();
    weather.subscribe(b"weather/");
    let sports = Sub::new();
    sports.subscribe(b"sports/");
    for sub in [&weather, &sports] {
        sub.set_recv_timeout(Some(Duration::from_secs(5)));
        sub.dial(&listener)?;
    }
    wait_for_peers(&mut events, 2)?;
    println!("both subscribers attached");

    let news = [
        "weather/oslo: snow",
        "sports/cup: 2-1",
        "markets/oil: up", // nobody subscribed: filtered out by both
        "weather/rome: sun",
    ];
    for item in news {
        publisher.send(item)?;
        println!("pub -> {item:?}");
    }

    for _ in 0..2 {
        let msg = weather.recv()?;
        println!("weather sub <- {:?}", String::from_utf8_lossy(&msg.body));
    }
    let msg = sports.recv()?;
    println!("sports sub <- {:?}", String::from_utf8_lossy(&msg.body));

    publisher.close();
    println!("pubsub done");
    Ok(())
}

/// Waits (at most 5 s) until `n` peers' pipes have attached to the socket of `events`.
fn wait_for_peers(events: &mut PipeEvents, n: usize) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut attached = 0;
    while attached < n {
        match events.recv_until(deadline) {
            Some(PipeEvent::Attached(_)) => attached += 1,
            Some(_) => {}
            None => return Err(format!("only {attached} of {n} peers attached in time").into()),
        }
    }
    Ok(())
}
