//! Many requests in flight from one thread, with blocking calls: a client keeps 50 requests
//! outstanding on 50 REQ contexts and a server answers from 8 REP contexts, each side on a
//! single thread waiting with a `RecvSet` (as `nn_poll` or `zmq_poll` would be used in C).
//! A thread per context would work too, at the price of an OS thread switch per reply.
//!
//! The client also shows readiness: it waits until its socket is writable (connected)
//! before sending, as a C program would poll `NNG_OPT_SENDFD`.
//!
//! ```sh
//! cargo run -p sp-blocking --example blocking_many_requests
//! ```

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use sp_blocking::{RecvSet, Rep, Req};

const IN_FLIGHT: usize = 50;
const PER_CONTEXT: usize = 20;

fn main() -> Result<(), Box<dyn Error>> {
    let server = Rep::new();
    let listener = server.listen("tcp://127.0.0.1:0")?;
    println!("server (REP) listening on {listener}");
    let serving = {
        let server = server.clone();
        thread::spawn(move || serve(&server))
    };

    let client = Req::new();
    client.dial_nonblocking(&listener)?;
    // Readiness: a REQ is writable once a pipe can take a request.
    client.writable_until(Instant::now() + Duration::from_secs(5))?;
    println!("client (REQ) connected: writable");

    let contexts = (0..IN_FLIGHT)
        .map(|_| client.context())
        .collect::<Result<Vec<_>, _>>()?;
    let mut set = RecvSet::new();
    let mut sent = vec![0usize; IN_FLIGHT];
    for (i, ctx) in contexts.iter().enumerate() {
        ctx.send(format!("context {i} request 0"))?;
        set.add_context(i, ctx);
    }
    let started = Instant::now();
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !set.is_empty() {
        // The first reply of any context, and which context it is for.
        let (i, reply) = set.recv_until(deadline)?;
        let expected = format!("answer to context {i} request {}", sent[i]);
        assert_eq!(reply?.body, expected.as_bytes(), "a reply for its context");
        answered += 1;
        sent[i] += 1;
        if sent[i] == PER_CONTEXT {
            set.remove(&i);
        } else {
            contexts[i].send(format!("context {i} request {}", sent[i]))?;
        }
    }
    println!(
        "client: {answered} replies, {IN_FLIGHT} in flight, from one thread in {:?}",
        started.elapsed()
    );

    server.close();
    serving.join().map_err(|_| "the server thread panicked")??;
    println!("many requests done");
    Ok(())
}

/// Answers requests on 8 REP contexts from this one thread until the socket is closed.
fn serve(server: &Rep) -> sp_blocking::Result<()> {
    let contexts = (0..8)
        .map(|_| server.context())
        .collect::<Result<Vec<_>, _>>()?;
    let mut set = RecvSet::new();
    for (i, ctx) in contexts.iter().enumerate() {
        set.add_context(i, ctx);
    }
    // Each context leaves the set with `Closed` when the socket closes; then the set is empty.
    while let Ok((i, request)) = set.recv() {
        if let Ok(request) = request {
            let answer = format!("answer to {}", String::from_utf8_lossy(&request.body));
            contexts[i].send(answer)?;
        }
    }
    Ok(())
}
