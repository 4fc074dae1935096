//! A REP server as an operator runs it: it logs every peer that comes and goes, refuses one
//! peer by its address before the protocol sees it, closes one listener without touching the
//! others, and prints its statistics.
//!
//! ```sh
//! cargo run -p sp-tokio --example operated_server
//! ```

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sp_tokio::{DropReason, PipeEvent, PipeVerdict, RefusalReason, Rep, Req};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Rep::new();
    server.set_name("frontend")?;
    server.set_recv_timeout(Some(Duration::from_secs(5)));

    // Peers refused by address; the hook sees each pipe before the protocol does.
    let blocked: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
    let deny = blocked.clone();
    server.set_pipe_hook(move |event| match event {
        PipeEvent::Attaching(pipe) => {
            let peer = pipe.remote_addr().and_then(|a| a.socket_addr());
            if peer.is_some_and(|p| deny.lock().unwrap().contains(&p)) {
                println!("refusing {pipe:?}");
                PipeVerdict::Refuse
            } else {
                PipeVerdict::Accept
            }
        }
        PipeEvent::Attached(pipe) => {
            // A Unix-socket peer that did not bind has no address: show ours instead.
            let peer = pipe.remote_addr().or(pipe.local_addr());
            let peer = peer.map(|a| a.to_string()).unwrap_or_default();
            println!("+ pipe {} via {peer} ({:?})", pipe.id(), pipe.transport());
            PipeVerdict::Accept
        }
        PipeEvent::Detached { pipe, reason } => {
            let stats = pipe.stats();
            println!(
                "- pipe {} {reason}: {} messages in, {} out",
                pipe.id(),
                stats.msgs_in,
                stats.msgs_out
            );
            PipeVerdict::Accept
        }
        _ => PipeVerdict::Accept,
    });

    let tcp = server.listen("tcp://127.0.0.1:0").await?;
    let ipc_path = std::env::temp_dir().join(format!("operated-{}.ipc", std::process::id()));
    let ipc = server
        .listen(format!("ipc://{}", ipc_path.display()))
        .await?;
    println!("listening on {tcp} and {ipc}");

    // A well-behaved client over TCP, with its own dialer options.
    let client = Req::new();
    let dialer = client.dialer(&tcp)?;
    dialer.set_reconnect(Duration::from_millis(50), Duration::from_secs(1));
    dialer.set_tcp_keepalive(true);
    dialer.start().await?;
    for i in 0..3 {
        client.send(format!("request {i}").into_bytes()).await?;
        let request = server.recv().await?;
        // Every received message names the pipe it came from.
        if let Some(peer) = request
            .pipe
            .and_then(|id| server.pipe(id)?.remote_addr().cloned())
        {
            println!("request from {peer}");
        }
        server.send(request.body).await?;
        client.recv().await?;
    }

    // A client whose address we block: connect a plain TCP stream (so we know its address),
    // put that address on the deny list, then hand the stream to an SP socket.
    let stream = TcpStream::connect(tcp.address().socket_addr().expect("an ip address"))?;
    blocked.lock().unwrap().insert(stream.local_addr()?);
    let intruder = Req::new();
    match intruder.adopt_tcp(stream).await {
        Ok(pipe) => println!("intruder attached on its side: {pipe:?}"),
        Err(e) => println!("intruder failed: {e}"),
    }

    // An IPC client, then closing the IPC listener alone: its pipe goes, TCP carries on.
    let local = Req::new();
    local.dial(&ipc).await?;
    while server.stats().pipes_open < 2 {
        tokio::task::yield_now().await;
    }
    if let Some(pipe) = server
        .pipes()
        .iter()
        .find(|p| p.endpoint() == Some(ipc.id()))
    {
        println!("ipc peer credentials: {:?}", pipe.peer_credentials());
    }
    ipc.close()?;
    client.send("still here").await?;
    let request = server.recv().await?;
    server.send(request.body).await?;
    client.recv().await?;

    let stats = server.stats();
    println!("\nstatistics of {}:", server.name().unwrap_or_default());
    println!(
        "  messages: {} received ({} bytes), {} sent ({} bytes)",
        stats.msgs_received, stats.bytes_received, stats.msgs_sent, stats.bytes_sent
    );
    println!(
        "  pipes: {} open, {} attached, {} detached; {} accepted",
        stats.pipes_open, stats.pipes_attached, stats.pipes_detached, stats.accepted
    );
    println!(
        "  refused by the hook: {}",
        stats.refused.get(RefusalReason::Hook)
    );
    println!(
        "  dropped: {} in all, {} queued for closed pipes",
        stats.dropped.total(),
        stats.dropped.get(DropReason::PipeClosed)
    );
    println!("  tcp listener: {:?}", tcp.stats());
    server.close().await;
    Ok(())
}
