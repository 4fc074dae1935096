//! Pair (PAIR) on smol, the third pattern of "Getting Started with nanomsg": two peers, one
//! connection, messages both ways. Each node sends its name and receives the other's.
//!
//! ```sh
//! cargo run -p sp-smol --example smol_pair
//! ```

use std::error::Error;
use std::time::Duration;

use sp_smol::Pair;

fn main() -> Result<(), Box<dyn Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let node0 = Pair::new();
    let listener = node0.listen("tcp://127.0.0.1:0").await?;
    println!("node0 listening on {listener}");
    let node1 = Pair::new();
    node1.dial(&listener).await?;
    println!("node1 connected");

    // Both nodes talk at the same time.
    smol::future::try_zip(talk("node0", &node0), talk("node1", &node1)).await?;

    node0.close().await;
    node1.close().await;
    println!("pair done");
    Ok(())
}

/// Sends three greetings and receives the peer's three.
async fn talk(name: &str, socket: &Pair) -> sp_smol::Result<()> {
    socket.set_recv_timeout(Some(Duration::from_secs(5)));
    for i in 1..=3 {
        socket.send(format!("{name} says hello #{i}")).await?;
        let msg = socket.recv().await?;
        println!("{name} <- {:?}", String::from_utf8_lossy(&msg.body));
    }
    Ok(())
}
