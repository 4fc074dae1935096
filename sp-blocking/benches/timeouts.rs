//! What a receive timeout costs a blocking request/reply round trip.
//!
//! `cargo bench -p sp-blocking --bench timeouts`: a REQ/REP round trip of 64 B between two
//! threads over inproc and TCP, with no receive timeout and with a 5 s one on both sockets
//! (the timeout never fires: it only has to be kept while each call waits). Numbers are in
//! BENCHMARKS.md ("sp-blocking: a call keeps its own deadline").

use std::thread;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sp_blocking::{Rep, Req};

/// A REQ dialed to a REP that echoes on a thread of its own until the REP is closed.
fn echo_pair(url: &str, timeout: Option<Duration>) -> (Req, Rep, thread::JoinHandle<()>) {
    let rep = Rep::new();
    rep.set_recv_timeout(timeout);
    let addr = rep.listen(url).expect("listen").to_string();
    let req = Req::new();
    req.set_recv_timeout(timeout);
    req.dial(&addr).expect("dial");
    let echo = rep.clone();
    let server = thread::spawn(move || {
        while let Ok(request) = echo.recv() {
            if echo.send(request.body).is_err() {
                break;
            }
        }
    });
    req.request(&b"warm-up"[..]).expect("first round trip");
    (req, rep, server)
}

fn round_trips(c: &mut Criterion) {
    let mut group = c.benchmark_group("blocking REQ/REP round trip, 64 B");
    for (transport, url) in [
        ("inproc", "inproc://bench-timeouts"),
        ("tcp", "tcp://127.0.0.1:0"),
    ] {
        for (label, timeout) in [
            ("no timeout", None),
            ("5 s receive timeout", Some(Duration::from_secs(5))),
        ] {
            let (req, rep, server) = echo_pair(url, timeout);
            let body = bytes::Bytes::from(vec![0u8; 64]);
            group.bench_function(format!("{transport}, {label}"), |b| {
                b.iter(|| req.request(body.clone()).expect("round trip"))
            });
            // Closing wakes the echoing thread's receive with `Closed`.
            rep.close();
            req.close();
            let _ = server.join();
        }
    }
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
