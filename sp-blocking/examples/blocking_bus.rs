//! Bus (BUS) with blocking calls, the sixth pattern of "Getting Started with nanomsg": every
//! node sends to every node it is directly connected to. Three nodes are wired as a full mesh
//! (each listens, and dials the nodes before it), then each one greets the bus and hears the
//! other two.
//!
//! ```sh
//! cargo run -p sp-blocking --example blocking_bus
//! ```

use std::error::Error;
use std::time::{Duration, Instant};

use sp_blocking::{Bus, PipeEvent, PipeEvents};

fn main() -> Result<(), Box<dyn Error>> {
    let names = ["node0", "node1", "node2"];
    let mut nodes = Vec::new();
    let mut events = Vec::new();
    let mut listeners = Vec::new();
    for name in names {
        let node = Bus::new();
        node.set_recv_timeout(Some(Duration::from_secs(5)));
        events.push(node.pipe_events());
        let listener = node.listen("tcp://127.0.0.1:0")?;
        println!("{name} listening on {listener}");
        // Dial every node before this one: one connection per pair of nodes.
        for (earlier, their_listener) in names.iter().zip(&listeners) {
            node.dial(their_listener)?;
            println!("{name} connected to {earlier}");
        }
        listeners.push(listener);
        nodes.push(node);
    }
    // Every node must see its two peers before the greetings start.
    for events in &mut events {
        wait_for_peers(events, names.len() - 1)?;
    }

    for (name, node) in names.iter().zip(&nodes) {
        let greeting = format!("hello from {name}");
        node.send(greeting.clone())?;
        println!("{name} -> {greeting:?}");
    }
    for (name, node) in names.iter().zip(&nodes) {
        for _ in 0..names.len() - 1 {
            let msg = node.recv()?;
            println!("{name} <- {:?}", String::from_utf8_lossy(&msg.body));
        }
    }

    for node in &nodes {
        node.close();
    }
    println!("bus done");
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
