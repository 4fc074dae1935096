//! `spcat --verbose` on stderr: a line per pipe attach and detach (`-v`), a statistics summary
//! on exit (`-v -v`), and nothing at all without `-v`.
//!
//! Synchronisation waits for output lines (read as they come, with a deadline), never for a
//! fixed time; every spcat ends by itself through `--count`, and a watchdog kills any still
//! running after the deadline.

use std::process::{Output, Stdio};

mod common;

use common::{spcat, stderr_of, text, wait, Running};

/// Runs spcat to completion with no stdin, within the deadline.
fn run(args: &[&str]) -> Output {
    let child = spcat(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait(child, "spcat")
}

/// A `pipe 0x... <what>: ...` line.
fn is_pipe_line(line: &str, what: &str) -> bool {
    line.starts_with("pipe 0x") && line.contains(&format!(" {what}: "))
}

/// Splits `pipe 0x1234abcd attached: ADDR (DETAIL)` into (`0x1234abcd`, `ADDR`, `DETAIL`).
fn parse_pipe_line(line: &str) -> (&str, &str, &str) {
    let rest = line.strip_prefix("pipe ").expect(line);
    let (id, rest) = rest.split_once(' ').expect(line);
    let (_, rest) = rest.split_once(": ").expect(line);
    let (addr, detail) = rest.split_once(" (").expect(line);
    let detail = detail.strip_suffix(')').expect(line);
    assert_eq!(id.len(), 10, "{line}");
    assert!(u32::from_str_radix(&id[2..], 16).is_ok(), "{line}");
    (id, addr, detail)
}

#[test]
fn verbose_prints_pipe_attach_and_detach_tokio() {
    pipe_lines_on("tokio");
}

#[test]
fn verbose_prints_pipe_attach_and_detach_smol() {
    pipe_lines_on("smol");
}

#[test]
fn verbose_prints_pipe_attach_and_detach_blocking() {
    pipe_lines_on("blocking");
}

/// A verbose PULL listener on `runtime` takes two PUSH peers in turn. The first one's attach
/// and detach (the peer exits: "closed by the peer") are printed while the listener still
/// runs; the second peer lets it reach its count and end.
fn pipe_lines_on(runtime: &str) {
    let mut listener = Running::start(&[
        "--pull0",
        "--runtime",
        runtime,
        "--listen",
        "tcp://127.0.0.1:0",
        "--verbose",
        "--ascii",
        "--count=2",
        "--recv-timeout=30",
    ]);
    let url = listener.listening_url();

    let first = run(&["--push0", "-v", "--dial", &url, "-D", "one"]);
    assert!(first.status.success(), "first push: {}", stderr_of(&first));

    let attached = listener
        .stderr
        .wait_for("attached line", |l| is_pipe_line(l, "attached"));
    let (id, peer, proto) = parse_pipe_line(&attached);
    assert!(peer.starts_with("tcp://127.0.0.1:"), "{attached}");
    assert_eq!(proto, "push0", "{attached}");
    let detached = listener
        .stderr
        .wait_for("detached line", |l| is_pipe_line(l, "detached"));
    assert_eq!(
        detached,
        format!("pipe {id} detached: {peer} (closed by the peer)")
    );

    // The dialer's own lines name the listener's address; it closed the pipe itself.
    let dialer_err = stderr_of(&first);
    let dialer_lines: Vec<&str> = dialer_err.lines().collect();
    assert_eq!(dialer_lines.len(), 2, "{dialer_err}");
    let (did, daddr, dproto) = parse_pipe_line(dialer_lines[0]);
    assert!(is_pipe_line(dialer_lines[0], "attached"), "{dialer_err}");
    assert_eq!((daddr, dproto), (url.as_str(), "pull0"), "{dialer_err}");
    assert_eq!(
        dialer_lines[1],
        format!("pipe {did} detached: {url} (closed locally)")
    );
    // -v changes nothing on stdout but nngcat's own "Connected to" line.
    assert_eq!(text(&first.stdout), format!("Connected to: {url}\n"));

    // Without -v, the second peer prints nothing at all.
    let second = run(&["--push0", "--dial", &url, "-D", "two"]);
    assert!(
        second.status.success(),
        "second push: {}",
        stderr_of(&second)
    );
    assert!(second.stderr.is_empty(), "{}", stderr_of(&second));
    assert!(second.stdout.is_empty(), "{}", text(&second.stdout));

    let (code, out, err) = listener.finish("listener");
    assert_eq!(code, Some(0), "listener stderr: {err:#?}");
    assert_eq!(out, [format!("Listening at: {url}"), "onetwo".to_string()]);
    // Two pipes, each attached then detached, and nothing else on stderr.
    assert_eq!(err.len(), 4, "{err:#?}");
    assert!(is_pipe_line(&err[0], "attached"), "{err:#?}");
    assert!(is_pipe_line(&err[1], "detached"), "{err:#?}");
    assert!(is_pipe_line(&err[2], "attached"), "{err:#?}");
    assert!(is_pipe_line(&err[3], "detached"), "{err:#?}");
    let (id2, peer2, _) = parse_pipe_line(&err[2]);
    let (id2d, peer2d, _) = parse_pipe_line(&err[3]);
    assert_eq!((id2, peer2), (id2d, peer2d), "{err:#?}");
    assert_ne!(id2, id, "{err:#?}");
}

fn stats_lines(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("stats: "))
        .collect()
}

/// `-v -v` adds the statistics summary on exit, after the pipe lines; its message counts are
/// what went through.
#[test]
fn verbose_twice_prints_stats_summary() {
    let mut listener = Running::start(&[
        "--pull0",
        "--listen",
        "tcp://127.0.0.1:0",
        "-v",
        "-v",
        "--ascii",
        "--count=3",
        "--recv-timeout=30",
    ]);
    let url = listener.listening_url();
    let pusher = run(&[
        "--push0",
        "-v",
        "--verbose",
        "--dial",
        &url,
        "--count=3",
        "-D",
        "hello",
    ]);
    assert!(pusher.status.success(), "push: {}", stderr_of(&pusher));
    let (code, out, err) = listener.finish("listener");
    assert_eq!(code, Some(0), "listener stderr: {err:#?}");
    assert_eq!(
        out,
        [format!("Listening at: {url}"), "hellohellohello".into()]
    );

    assert_eq!(
        stats_lines(&err),
        [
            "stats: messages sent 0 (0 bytes), received 3 (15 bytes)",
            "stats: pipes attached 1, detached 1",
            "stats: dial attempts 0, failures 0; connections accepted 1",
            "stats: refused 0",
            "stats: dropped 0",
            "stats: req resends 0, survey timeouts 0",
        ],
        "{err:#?}"
    );
    // The summary comes last, after the pipe's detach line.
    let last_pipe = err.iter().rposition(|l| is_pipe_line(l, "detached"));
    let first_stats = err.iter().position(|l| l.starts_with("stats: "));
    assert!(
        matches!((last_pipe, first_stats), (Some(p), Some(s)) if p < s),
        "{err:#?}"
    );

    let pusher_err: Vec<String> = stderr_of(&pusher).lines().map(String::from).collect();
    let stats = stats_lines(&pusher_err);
    assert_eq!(stats.len(), 6, "{pusher_err:#?}");
    assert_eq!(
        stats[..2],
        [
            "stats: messages sent 3 (15 bytes), received 0 (0 bytes)",
            "stats: pipes attached 1, detached 1",
        ],
        "{pusher_err:#?}"
    );
    // The dialer may have tried to reconnect once the listener, done, went away.
    assert!(
        stats[2].starts_with("stats: dial attempts ")
            && stats[2].ends_with("; connections accepted 0"),
        "{pusher_err:#?}"
    );
    assert!(stats[3].starts_with("stats: refused "), "{pusher_err:#?}");
    assert!(stats[4].starts_with("stats: dropped "), "{pusher_err:#?}");
    assert_eq!(stats[5], "stats: req resends 0, survey timeouts 0");
}

/// Without `-v`, neither side writes anything to stderr, and the receiver's stdout holds the
/// message alone: the output nngcat users' scripts parse is unchanged. (IPC in a fresh
/// directory, so that no `-v` is needed to learn a port; the dialer retries until the
/// listener is up.)
#[test]
fn without_verbose_stderr_stays_empty() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("ipc://{}", dir.path().join("quiet.sock").display());
    let listener = spcat(&[
        "--pull0",
        "--listen",
        &url,
        "--raw",
        "--count=1",
        "--recv-timeout=30",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn listener");
    let pusher = run(&["--push0", "--async", "--dial", &url, "-D", "hello"]);
    let listener = wait(listener, "listener");
    assert!(pusher.status.success(), "push: {}", stderr_of(&pusher));
    assert!(pusher.stdout.is_empty(), "{}", text(&pusher.stdout));
    assert!(pusher.stderr.is_empty(), "{}", stderr_of(&pusher));
    assert!(
        listener.status.success(),
        "listener: {}",
        stderr_of(&listener)
    );
    assert_eq!(listener.stdout, b"hello");
    assert!(listener.stderr.is_empty(), "{}", stderr_of(&listener));
}
