//! Counts the threads and memory of a blocking socket with many pipes (`scripts/bench-pipes.sh`).
//!
//! ```text
//! blocking_pipes serve <url> <pipes>   # a PULL socket listens until <pipes> peers attached
//! blocking_pipes dial <url> <pipes>    # a PUSH socket dials <url> <pipes> times
//! blocking_pipes                       # both in one process, 100 pipes over TCP on loopback
//! ```
//!
//! Each side prints, once its socket has all its pipes, a line
//! `<side> pipes=<n> threads=<process threads> vm_kib=<VmSize> rss_kib=<VmRSS>`, sends and
//! receives one message per pipe, and exits. Linux only (it reads /proc/self).

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 1 {
        return both(100);
    }
    let [_, side, url, n] = &args[..] else {
        eprintln!("usage: blocking_pipes [serve|dial <url> <pipes>]");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("pipes: a number");
    match side.as_str() {
        "serve" => serve(url, n),
        "dial" => dial(url, n),
        _ => panic!("side: serve or dial"),
    }
}

/// Both sides in this process: a PULL listening on loopback and a PUSH dialing it `n` times.
fn both(n: usize) {
    let pull = sp_blocking::Pull::new();
    let url = pull
        .listen("tcp://127.0.0.1:0")
        .expect("listen")
        .to_string();
    let push = sp_blocking::Push::new();
    for _ in 0..n {
        push.dial(url.as_str()).expect("dial");
    }
    wait_for("every pipe attaches", || {
        pull.pipe_count() >= n && push.pipe_count() >= n
    });
    report("both", n);
    pull.set_recv_timeout(Some(Duration::from_secs(60)));
    push.set_send_timeout(Some(Duration::from_secs(60)));
    for _ in 0..n {
        push.send("x").expect("send");
        pull.recv().expect("receive");
    }
}

fn serve(url: &str, n: usize) {
    let pull = sp_blocking::Pull::new();
    pull.listen(url).expect("listen");
    wait_for("every peer attaches", || pull.pipe_count() >= n);
    report("serve", n);
    pull.set_recv_timeout(Some(Duration::from_secs(60)));
    for _ in 0..n {
        pull.recv().expect("one message per pipe");
    }
}

fn dial(url: &str, n: usize) {
    let push = sp_blocking::Push::new();
    for _ in 0..n {
        push.dial(url).expect("dial");
    }
    wait_for("every pipe attaches", || push.pipe_count() >= n);
    report("dial", n);
    push.set_send_timeout(Some(Duration::from_secs(60)));
    for _ in 0..n {
        push.send("x").expect("send");
    }
    // Let the frames go out before the socket closes.
    std::thread::sleep(Duration::from_millis(500));
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let threads that are starting start, so that they are counted.
    std::thread::sleep(Duration::from_millis(300));
}

fn report(side: &str, n: usize) {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or("?")
            .to_string()
    };
    println!(
        "{side} pipes={n} threads={threads} vm_kib={} rss_kib={}",
        field("VmSize:"),
        field("VmRSS:")
    );
}
