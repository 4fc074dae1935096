//! Pipeline (PUSH/PULL), the first pattern of "Getting Started with nanomsg": a producer
//! hands out jobs and each job goes to exactly one of two workers, round-robin, with
//! back-pressure (a PUSH send waits for a worker that can take the message).
//!
//! ```sh
//! cargo run -p sp-tokio --example pipeline
//! ```

use std::error::Error;
use std::time::Duration;

use sp_tokio::{PipeEvent, PipeEvents, Pull, Push};
use tokio::sync::mpsc;
use tokio::time::timeout;

const JOBS: usize = 6;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The producer listens; workers dial in. Watch its pipes before anyone can connect.
    let producer = Push::new();
    let mut events = producer.pipe_events();
    let listener = producer.listen("tcp://127.0.0.1:0").await?;
    println!("producer (PUSH) listening on {listener}");

    // Two workers; each reports what it got to main over a channel.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for id in 1..=2 {
        let worker = Pull::new();
        worker.dial(&listener).await?;
        workers.push(worker.clone());
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            // Ends with `Closed` once main closes the socket.
            while let Ok(job) = worker.recv().await {
                let job = String::from_utf8_lossy(&job.body).into_owned();
                if done_tx.send((id, job)).is_err() {
                    break;
                }
            }
        });
    }

    // Wait until both workers are attached, so that the jobs are shared between them.
    wait_for_peers(&mut events, 2).await?;

    for n in 1..=JOBS {
        let job = format!("job {n}");
        producer.send(job.clone()).await?;
        println!("producer -> {job:?}");
    }
    for _ in 0..JOBS {
        let (id, job) = timeout(Duration::from_secs(5), done_rx.recv())
            .await?
            .ok_or("the workers stopped early")?;
        println!("worker {id} <- {job:?}");
    }

    for worker in &workers {
        worker.close().await;
    }
    producer.close().await;
    println!("pipeline done: {JOBS} jobs delivered, each to one worker");
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
