//! A broker: a device joins a raw REP socket (XREP, facing the clients) to a raw REQ socket
//! (XREQ, facing the workers). Clients' requests are spread over the workers, and every
//! reply finds its way back to the client that asked, through the backtrace the raw sockets
//! keep in the message header.
//!
//! ```text
//! clients (REQ) --> [XREP] front | device | back [XREQ] --> workers (REP)
//! ```
//!
//! ```sh
//! cargo run -p sp-tokio --example broker
//! ```

use std::error::Error;
use std::time::Duration;

use sp_tokio::{Rep, Req, XRep, XReq};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let front = XRep::new();
    let back = XReq::new();
    let front_addr = front.listen("tcp://127.0.0.1:0").await?;
    let back_addr = back.listen("tcp://127.0.0.1:0").await?;
    println!("broker: clients -> {front_addr} | device | {back_addr} <- workers");
    let device = {
        let (front, back) = (front.clone(), back.clone());
        tokio::spawn(async move { sp_tokio::device(&front, &back).await })
    };

    let mut workers = Vec::new();
    for id in 1..=2 {
        let worker = Rep::new();
        worker.dial(&back_addr).await?;
        workers.push(worker.clone());
        tokio::spawn(async move {
            // Ends with `Closed` once main closes the worker.
            while let Ok(job) = worker.recv().await {
                let job = String::from_utf8_lossy(&job.body).into_owned();
                println!("  worker {id} <- {job:?}");
                let reply = format!("{job} done by worker {id}");
                if worker.send(reply).await.is_err() {
                    break;
                }
            }
        });
    }

    let mut clients = Vec::new();
    for name in ["ann", "bob", "cid"] {
        let client = Req::new();
        client.set_recv_timeout(Some(Duration::from_secs(5)));
        client.dial(&front_addr).await?;
        clients.push(tokio::spawn(async move {
            for n in 1..=2 {
                let reply = client.request(format!("{name}'s job {n}")).await?;
                println!("{name} <- {:?}", String::from_utf8_lossy(&reply.body));
            }
            Ok::<(), sp_tokio::Error>(())
        }));
    }
    for client in clients {
        client.await??;
    }

    // The device returns once either of its sockets is closed.
    front.close().await;
    back.close().await;
    device.await??;
    for worker in &workers {
        worker.close().await;
    }
    println!("broker done: every client got its own replies");
    Ok(())
}
