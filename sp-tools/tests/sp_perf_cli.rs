//! End-to-end runs of the `sp-perf` binary with small counts: output lines as NNG prints them.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PERF: &str = env!("CARGO_BIN_EXE_sp-perf");
const DEADLINE: Duration = Duration::from_secs(60);

fn perf(args: &[&str]) -> Command {
    let mut c = Command::new(PERF);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn wait(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!(
                "sp-perf did not finish: {:?}",
                child.wait_with_output().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    wait(perf(args).spawn().unwrap())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a client until it gets past connecting: the server in the other process may not be
/// listening yet, and a raw server accepts exactly one connection, so no probe is possible.
fn run_client(args: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        let out = run(args);
        let err = text(&out.stderr);
        if out.status.success() || !err.contains("refused") || start.elapsed() > DEADLINE {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_tcp_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn assert_throughput_lines(out: &str, size: u32, count: u32) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[0].starts_with("total time: ") && lines[0].ends_with(" [s]"),
        "{out}"
    );
    assert_eq!(lines[1], format!("message size: {size} [B]"));
    assert_eq!(lines[2], format!("message count: {count}"));
    let msgs = lines[3]
        .strip_prefix("throughput: ")
        .and_then(|l| l.strip_suffix(" [msg/s]"))
        .unwrap();
    assert!(msgs.parse::<u64>().is_ok(), "{out}");
    assert!(
        lines[4].starts_with("throughput: ") && lines[4].ends_with(" [Mb/s]"),
        "{out}"
    );
}

fn assert_latency_lines(out: &str, size: u32, trips: u32) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("total time: ") && lines[0].ends_with(" [s]"),
        "{out}"
    );
    assert_eq!(lines[1], format!("message size: {size} [B]"));
    assert_eq!(lines[2], format!("round trip count: {trips}"));
    let us = lines[3]
        .strip_prefix("average latency: ")
        .and_then(|l| l.strip_suffix(" [us]"))
        .unwrap();
    assert!(us.parse::<f64>().unwrap() > 0.0, "{out}");
}

#[test]
fn inproc_modes() {
    let out = run(&["inproc_thr", "100", "5000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_throughput_lines(&text(&out.stdout), 100, 5000);
    let out = run(&["--threads", "1", "-m", "inproc_lat", "32", "500"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_latency_lines(&text(&out.stdout), 32, 500);
    let out = run(&["inproc_lat", "--pair0", "16", "200"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_latency_lines(&text(&out.stdout), 16, 200);
}

#[test]
fn tcp_throughput_and_latency() {
    let url = free_tcp_url();
    let server = perf(&["local_thr", &url, "256", "20000"]).spawn().unwrap();
    let client = run_client(&["remote_thr", &url, "256", "20000"]);
    let server = wait(server);
    assert!(client.status.success(), "{}", text(&client.stderr));
    assert!(client.stdout.is_empty());
    assert!(server.status.success(), "{}", text(&server.stderr));
    assert_throughput_lines(&text(&server.stdout), 256, 20000);

    let url = free_tcp_url();
    let server = perf(&["local_lat", &url, "64", "300"]).spawn().unwrap();
    let client = run_client(&["remote_lat", &url, "64", "300"]);
    let server = wait(server);
    assert!(client.status.success(), "{}", text(&client.stderr));
    assert!(server.status.success(), "{}", text(&server.stderr));
    assert!(server.stdout.is_empty());
    assert_latency_lines(&text(&client.stdout), 64, 300);
}

#[test]
fn raw_tcp_baselines() {
    let url = free_tcp_url();
    let server = perf(&["raw_local_thr", &url, "256", "20000"])
        .spawn()
        .unwrap();
    let client = run_client(&["raw_remote_thr", &url, "256", "20000"]);
    let server = wait(server);
    assert!(client.status.success(), "{}", text(&client.stderr));
    assert!(server.status.success(), "{}", text(&server.stderr));
    assert_throughput_lines(&text(&server.stdout), 256, 20000);

    let url = free_tcp_url();
    let server = perf(&["raw_local_lat", &url, "64", "300"]).spawn().unwrap();
    let client = run_client(&["raw_remote_lat", &url, "64", "300"]);
    let server = wait(server);
    assert!(client.status.success(), "{}", text(&client.stderr));
    assert!(server.status.success(), "{}", text(&server.stderr));
    assert_latency_lines(&text(&client.stdout), 64, 300);
}

#[test]
fn usage_errors_exit_two() {
    for (args, msg) in [
        (
            &["local_lat", "tcp://127.0.0.1:1"][..],
            "Usage: local_lat <listen-addr> <msg-size> <roundtrips>",
        ),
        (
            &["remote_thr", "tcp://127.0.0.1:1", "x", "1"],
            "Invalid message size",
        ),
        (&["nonsense"], "Unknown program mode? Use -m <mode>."),
        (
            &["--runtime", "smol", "inproc_thr", "1", "1"],
            "not supported yet",
        ),
        (&["inproc_thr", "--bus0", "1", "1"], "bad option"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(msg),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let url = free_tcp_url();
    let out = run(&["remote_lat", &url, "1", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("dial: "),
        "{}",
        text(&out.stderr)
    );
}
