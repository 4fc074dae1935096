//! Bus (BUS) on smol, the sixth pattern of "Getting Started with nanomsg": every node sends
//! to every node it is directly connected to. Three nodes are wired as a full mesh (each
//! listens, and dials the nodes before it), then each one greets the bus and hears the other
//! two.
//!
//! ```sh
//! cargo run -p sp-smol --example smol_bus
//! ```

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use sp_smol::{Bus, PipeEvent, PipeEvents};

fn main() -> Result<(), Box<dyn Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let names = ["node0", "node1", "node2"];
    let mut nodes = Vec::new();
    let mut events = Vec::new();
    let mut listeners = Vec::new();
    for name in names {
        let node = Bus::new();
        node.set_recv_timeout(Some(Duration::from_secs(5)));
        events.push(node.pipe_events());
        let listener = node.listen("tcp://127.0.0.1:0").await?;
        println!("{name} listening on {listener}");
        // Dial every node before this one: one connection per pair of nodes.
        for (earlier, their_listener) in names.iter().zip(&listeners) {
            node.dial(their_listener).await?;
            println!("{name} connected to {earlier}");
        }
        listeners.push(listener);
        nodes.push(node);
    }
    // Every node must see its two peers before the greetings start.
    for events in &mut events {
        wait_for_peers(events, names.len() - 1).await?;
    }

    for (name, node) in names.iter().zip(&nodes) {
        let greeting = format!("hello from {name}");
        node.send(greeting.clone()).await?;
        println!("{name} -> {greeting:?}");
    }
    for (name, node) in names.iter().zip(&nodes) {
        for _ in 0..names.len() - 1 {
            let msg = node.recv().await?;
            println!("{name} <- {:?}", String::from_utf8_lossy(&msg.body));
        }
    }

    for node in &nodes {
        node.close().await;
    }
    println!("bus done");
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
