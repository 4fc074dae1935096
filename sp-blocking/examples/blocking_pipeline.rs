//! Pipeline (PUSH/PULL) with blocking calls, the first pattern of "Getting Started with
//! nanomsg": a producer hands out jobs and each job goes to exactly one of two worker
//! threads, round-robin, with back-pressure (a PUSH send waits for a worker that can take the
//! message).
//!
//! ```sh
//! cargo run -p sp-blocking --example blocking_pipeline
//! ```

use std::error::Error;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use sp_blocking::{PipeEvent, PipeEvents, Pull, Push};

const JOBS: usize = 6;

fn main() -> Result<(), Box<dyn Error>> {
    // The producer listens; workers dial in. Watch its pipes before anyone can connect.
    let producer = Push::new();
    let mut events = producer.pipe_events();
    let listener = producer.listen("tcp://127.0.0.1:0")?;
    println!("producer (PUSH) listening on {listener}");

    // Two worker threads; each reports what it got to main over a channel.
    let (done_tx, done_rx) = mpsc::channel();
    let mut workers = Vec::new();
    let mut threads = Vec::new();
    for id in 1..=2 {
        let worker = Pull::new();
        worker.dial(&listener)?;
        workers.push(worker.clone());
        let done_tx = done_tx.clone();
        threads.push(thread::spawn(move || {
            // `incoming` ends once main closes the socket.
            for job in worker.incoming().flatten() {
                let job = String::from_utf8_lossy(&job.body).into_owned();
                if done_tx.send((id, job)).is_err() {
                    break;
                }
            }
        }));
    }

    // Wait until both workers are attached, so that the jobs are shared between them.
    wait_for_peers(&mut events, 2)?;

    for n in 1..=JOBS {
        let job = format!("job {n}");
        producer.send(job.clone())?;
        println!("producer -> {job:?}");
    }
    for _ in 0..JOBS {
        let (id, job) = done_rx.recv_timeout(Duration::from_secs(5))?;
        println!("worker {id} <- {job:?}");
    }

    for worker in &workers {
        worker.close();
    }
    for thread in threads {
        thread.join().map_err(|_| "a worker thread panicked")?;
    }
    producer.close();
    println!("pipeline done: {JOBS} jobs delivered, each to one worker");
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
