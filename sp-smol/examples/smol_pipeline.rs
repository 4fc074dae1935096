//! Pipeline (PUSH/PULL) on smol, the first pattern of "Getting Started with nanomsg": a
//! producer hands out jobs and each job goes to exactly one of two workers, round-robin,
//! with back-pressure (a PUSH send waits for a worker that can take the message).
//!
//! ```sh
//! cargo run -p sp-smol --example smol_pipeline
//! ```

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use sp_smol::{PipeEvent, PipeEvents, Pull, Push};

const JOBS: usize = 6;

fn main() -> Result<(), Box<dyn Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    // The producer listens; workers dial in. Watch its pipes before anyone can connect.
    let producer = Push::new();
    let mut events = producer.pipe_events();
    let listener = producer.listen("tcp://127.0.0.1:0").await?;
    println!("producer (PUSH) listening on {listener}");

    // Two workers; each reports what it got to main over a channel.
    let (done_tx, done_rx) = smol::channel::unbounded();
    let mut workers = Vec::new();
    let mut tasks = Vec::new();
    for id in 1..=2 {
        let worker = Pull::new();
        worker.dial(&listener).await?;
        workers.push(worker.clone());
        let done_tx = done_tx.clone();
        tasks.push(smol::spawn(async move {
            // Ends with `Closed` once main closes the socket.
            while let Ok(job) = worker.recv().await {
                let job = String::from_utf8_lossy(&job.body).into_owned();
                if done_tx.send((id, job)).await.is_err() {
                    break;
                }
            }
        }));
    }

    // Wait until both workers are attached, so that the jobs are shared between them.
    wait_for_peers(&mut events, 2).await?;

    for n in 1..=JOBS {
        let job = format!("job {n}");
        producer.send(job.clone()).await?;
        println!("producer -> {job:?}");
    }
    for _ in 0..JOBS {
        let (id, job) = timeout(Duration::from_secs(5), done_rx.recv()).await??;
        println!("worker {id} <- {job:?}");
    }

    for worker in &workers {
        worker.close().await;
    }
    for task in tasks {
        task.await;
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

/// Runs `fut` for at most `limit`.
async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Result<T, Box<dyn Error>> {
    smol::future::or(async { Ok(fut.await) }, async {
        smol::Timer::after(limit).await;
        Err(format!("timed out after {limit:?}").into())
    })
    .await
}
