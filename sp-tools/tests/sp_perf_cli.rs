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

/// Runs `*_thr` then `*_lat` between two processes over TCP; `server` and `client` are the
/// options each side starts with (`--runtime ...`), `prefix` picks the SP or the raw modes.
fn tcp_throughput_and_latency_between(server: &[&str], client: &[&str], prefix: &str) {
    let run_pair = |mode: &str, size: &str, count: &str| {
        let url = free_tcp_url();
        let (local, remote) = (
            format!("{prefix}local_{mode}"),
            format!("{prefix}remote_{mode}"),
        );
        let mut server_args = server.to_vec();
        server_args.extend([local.as_str(), &url, size, count]);
        let mut client_args = client.to_vec();
        client_args.extend([remote.as_str(), &url, size, count]);
        let server = perf(&server_args).spawn().unwrap();
        let client = run_client(&client_args);
        let server = wait(server);
        assert!(client.status.success(), "{}", text(&client.stderr));
        assert!(server.status.success(), "{}", text(&server.stderr));
        (text(&server.stdout), text(&client.stdout))
    };
    let (server_out, client_out) = run_pair("thr", "256", "20000");
    assert!(client_out.is_empty(), "{client_out}");
    assert_throughput_lines(&server_out, 256, 20000);
    let (server_out, client_out) = run_pair("lat", "64", "300");
    assert!(server_out.is_empty(), "{server_out}");
    assert_latency_lines(&client_out, 64, 300);
}

#[test]
fn tcp_throughput_and_latency() {
    tcp_throughput_and_latency_between(&[], &[], "");
}

#[test]
fn raw_tcp_baselines() {
    tcp_throughput_and_latency_between(&[], &[], "raw_");
}

/// The same tests on smol and on sp-blocking, each against the other: either side may run on
/// either runtime; and `--recv-batch` and `--send-batch` on every runtime.
#[test]
fn smol_and_blocking_runtimes() {
    for rt in ["smol", "blocking"] {
        let out = run(&["--runtime", rt, "inproc_thr", "100", "5000"]);
        assert!(out.status.success(), "{rt}: {}", text(&out.stderr));
        assert_throughput_lines(&text(&out.stdout), 100, 5000);
    }
    // Sending and receiving in batches counts the same messages: the exact count, or the run
    // would hang or fail on a size check.
    for (rt, batches) in [
        ("tokio", ["--recv-batch", "64"]),
        ("smol", ["--send-batch", "32"]),
        ("blocking", ["--recv-batch", "64"]),
        ("blocking", ["--send-batch", "32"]),
    ] {
        let mut args = vec!["--runtime", rt];
        args.extend(batches);
        args.extend(["inproc_thr", "100", "5000"]);
        let out = run(&args);
        assert!(
            out.status.success(),
            "{rt} {batches:?}: {}",
            text(&out.stderr)
        );
        assert_throughput_lines(&text(&out.stdout), 100, 5000);
    }
    let both = [
        "--recv-batch",
        "64",
        "--send-batch",
        "32",
        "inproc_thr",
        "100",
        "5000",
    ];
    let out = run(&both);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_throughput_lines(&text(&out.stdout), 100, 5000);
    let (smol, blocking) = (["--runtime", "smol"], ["--runtime", "blocking"]);
    tcp_throughput_and_latency_between(&smol, &blocking, "");
    tcp_throughput_and_latency_between(&blocking, &smol, "");
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
            &["--runtime", "glommio", "inproc_thr", "1", "1"],
            "unknown runtime glommio",
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

#[test]
fn req_ctx_thr_and_raw_pipelined_baseline_report_round_trips() {
    let runs: [&[&str]; 6] = [
        &["req_ctx_thr", "inproc://sp-perf-cli-ctx", "16", "32", "400"],
        &[
            "req_ctx_thr",
            "--set",
            "tcp://127.0.0.1:0",
            "16",
            "32",
            "401",
        ],
        &[
            "--runtime",
            "smol",
            "req_ctx_thr",
            "--set",
            "inproc://sp-perf-cli-ctx-smol",
            "3",
            "32",
            "100",
        ],
        &[
            "--runtime",
            "blocking",
            "req_ctx_thr",
            "--set",
            "tcp://127.0.0.1:0",
            "7",
            "32",
            "300",
        ],
        &[
            "--runtime",
            "blocking",
            "req_ctx_thr",
            "tcp://127.0.0.1:0",
            "4",
            "32",
            "200",
        ],
        &["raw_pipelined_thr", "tcp://127.0.0.1:0", "16", "32", "400"],
    ];
    for args in runs {
        let out = run(args);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let count = args[args.len() - 1];
        let in_flight = args[args.len() - 3];
        assert!(
            stdout.contains(&format!("round trip count: {count}\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("in flight: {in_flight}\n")),
            "{stdout}"
        );
        assert!(stdout.contains(" [round trips/s]\n"), "{stdout}");
    }
    let usage = run(&["req_ctx_thr", "inproc://x", "0", "1", "1"]);
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(text(&usage.stderr).trim(), "Invalid context count");
}

/// Reads the `key: value` line of a fan-out report.
fn fanout_line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {key:?} line in: {out}"))
}

/// Checks a fan-out report's lines and returns the delivered count. An SP run's report has an
/// eleventh line with the drops the sockets counted; the raw baseline drops nothing and has
/// none.
fn assert_fanout_lines(out: &str, subs: u64, size: u32, count: u64) -> u64 {
    let sp = out.contains("\nmessages dropped: ");
    assert_eq!(out.lines().count(), if sp { 11 } else { 10 }, "{out}");
    if sp {
        let dropped = fanout_line(out, "messages dropped");
        let (by_pub, by_subs) = dropped.split_once(" by the publisher, ").unwrap();
        assert!(by_pub.parse::<u64>().is_ok(), "{out}");
        let by_subs = by_subs.strip_suffix(" by the subscribers").unwrap();
        assert!(by_subs.parse::<u64>().is_ok(), "{out}");
    }
    let send_rate = fanout_line(out, "send rate")
        .strip_suffix(" [msg/s]")
        .unwrap();
    assert!(send_rate.parse::<u64>().is_ok(), "{out}");
    assert_eq!(fanout_line(out, "message size"), format!("{size} [B]"));
    assert_eq!(fanout_line(out, "subscribers"), subs.to_string());
    assert_eq!(fanout_line(out, "messages sent"), count.to_string());
    let delivered = fanout_line(out, "messages delivered");
    let (n, rest) = delivered.split_once(" of ").unwrap();
    let n: u64 = n.parse().unwrap();
    assert!(rest.starts_with(&format!("{} (", subs * count)), "{out}");
    assert!(n <= subs * count, "{out}");
    let rate = fanout_line(out, "throughput")
        .strip_suffix(" [msg/s] delivered in total")
        .unwrap();
    assert!(rate.parse::<u64>().is_ok(), "{out}");
    assert!(
        fanout_line(out, "throughput per subscriber").contains(" slowest, "),
        "{out}"
    );
    n
}

#[test]
fn fanout_modes() {
    // A PUB drops when a subscriber falls behind, so only the shape and the bound are fixed;
    // each subscriber sees at least the warm-up, so something arrives.
    let out = run(&[
        "fanout_thr",
        "inproc://sp-perf-cli-fanout",
        "3",
        "32",
        "2000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\nmessages dropped: "));
    assert_fanout_lines(&text(&out.stdout), 3, 32, 2000);
    let out = run(&[
        "--runtime",
        "smol",
        "fanout_thr",
        "--yield-every",
        "8",
        "tcp://127.0.0.1:0",
        "2",
        "0",
        "1000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_fanout_lines(&text(&out.stdout), 2, 0, 1000);
    let out = run(&[
        "--runtime",
        "blocking",
        "fanout_thr",
        "inproc://x",
        "2",
        "8",
        "500",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_fanout_lines(&text(&out.stdout), 2, 8, 500);
    // The raw baseline has TCP's back-pressure: everything arrives.
    let out = run(&["raw_fanout_thr", "tcp://127.0.0.1:0", "3", "100", "3000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(assert_fanout_lines(&text(&out.stdout), 3, 100, 3000), 9000);
    assert!(!text(&out.stdout).contains("messages dropped"));
    // A paced publisher takes as long as its rate says: 2000 messages at 20,000 a second
    // are 0.1 s. (What it delivers depends on the machine's load: the benchmark measures it.)
    let out = run(&[
        "fanout_thr",
        "--rate",
        "20000",
        "tcp://127.0.0.1:0",
        "2",
        "16",
        "2000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_fanout_lines(&text(&out.stdout), 2, 16, 2000);
    let send_time: f64 = fanout_line(&text(&out.stdout), "send time")
        .strip_suffix(" [s]")
        .unwrap()
        .parse()
        .unwrap();
    assert!(send_time >= 0.099, "{}", text(&out.stdout));

    for (args, msg) in [
        (
            &["fanout_thr", "inproc://x", "0", "1", "1"][..],
            "Invalid subscriber count",
        ),
        (
            &["raw_fanout_thr", "tcp://127.0.0.1:0", "1", "1"],
            "Usage: raw_fanout_thr <tcp-url> <subscribers> <msg-size> <count>",
        ),
        (
            &["fanout_thr", "--bogus", "inproc://x", "1", "1", "1"],
            "bad option",
        ),
        (
            &["raw_fanout_thr", "ipc:///tmp/x", "1", "1", "1"],
            "raw modes need a tcp://host:port URL",
        ),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(msg),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}
