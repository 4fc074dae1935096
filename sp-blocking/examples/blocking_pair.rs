//! Pair (PAIR) with blocking calls, the third pattern of "Getting Started with nanomsg": two
//! peers, one connection, messages both ways. Each node, on its own thread, sends its name and
//! receives the other's.
//!
//! ```sh
//! cargo run -p sp-blocking --example blocking_pair
//! ```

use std::error::Error;
use std::thread;
use std::time::Duration;

use sp_blocking::Pair;

fn main() -> Result<(), Box<dyn Error>> {
    let node0 = Pair::new();
    let listener = node0.listen("tcp://127.0.0.1:0")?;
    println!("node0 listening on {listener}");
    let node1 = Pair::new();
    node1.dial(&listener)?;
    println!("node1 connected");

    // Both nodes talk at the same time.
    thread::scope(|s| -> Result<(), Box<dyn Error>> {
        let other = s.spawn(|| talk("node1", &node1));
        talk("node0", &node0)?;
        other.join().map_err(|_| "node1's thread panicked")??;
        Ok(())
    })?;

    node0.close();
    node1.close();
    println!("pair done");
    Ok(())
}

/// Sends three greetings and receives the peer's three.
fn talk(name: &str, socket: &Pair) -> sp_blocking::Result<()> {
    socket.set_recv_timeout(Some(Duration::from_secs(5)));
    for i in 1..=3 {
        socket.send(format!("{name} says hello #{i}"))?;
        let msg = socket.recv()?;
        println!("{name} <- {:?}", String::from_utf8_lossy(&msg.body));
    }
    Ok(())
}
