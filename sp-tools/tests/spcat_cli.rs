//! End-to-end tests of the `spcat` binary (spec 8.7), and interop with NNG's `nngcat`.
//!
//! Synchronisation never relies on sleeping: a listening spcat is started with `-v` and the
//! test waits for its "Listening at: URL" line (which also tells the bound port); a dialing
//! spcat facing a listener that may not be up yet uses `--async`, which retries. Every
//! receiver has a receive timeout or a count, so every process ends by itself; a watchdog
//! kills anything still running after a generous deadline and fails the test.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{nngcat_available, spcat, stderr_of, text, wait, Listener, DEADLINE, NNGCAT};

/// Runs to completion with no stdin, within the deadline.
fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    wait(child, "command")
}

/// Asserts that spcat refuses `args` with exit status 1 and an error mentioning `needle`.
fn assert_refused(args: &[&str], needle: &str) {
    let out = run(spcat(args));
    let err = stderr_of(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should exit 1; stderr: {err}"
    );
    assert!(err.starts_with("spcat: "), "{args:?}: {err}");
    assert!(
        err.contains(needle),
        "{args:?}: expected {needle:?} in {err:?}"
    );
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
}

fn free_tcp_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp://127.0.0.1:{}", l.local_addr().unwrap().port())
}

// ---- 8.7 #90, #91, #92: argument checks ----

#[test]
fn rejects_no_protocol() {
    assert_refused(&["--dial", "tcp://127.0.0.1:1"], "No protocol specified");
    assert_refused(
        &["--listen=tcp://127.0.0.1:0", "--data", "x"],
        "No protocol specified",
    );
}

#[test]
fn rejects_two_protocols() {
    assert_refused(
        &["--req0", "--rep0", "--dial", "tcp://127.0.0.1:1"],
        "Only one protocol",
    );
    assert_refused(&["--push", "--pull", "-l", "1"], "Only one protocol");
}

#[test]
fn rejects_ambiguous_abbreviation() {
    assert_refused(&["--re", "--dial", "tcp://127.0.0.1:1"], "ambiguous");
    assert_refused(
        &["--pull", "--dial", "tcp://127.0.0.1:1", "--ver"],
        "ambiguous",
    );
}

#[test]
fn rejects_incompatible_options() {
    // The checks of nngcat_incompat_test.sh (nothing needs to listen: they fail first).
    assert_refused(
        &[
            "--req0",
            "-x",
            "/tmp/bogusipc",
            "--subscribe=oops",
            "-D",
            "x",
        ],
        "--subscribe",
    );
    assert_refused(
        &["--interval", "1", "--pull", "-x", "/tmp/bogusipc"],
        "--interval",
    );
    assert_refused(&["--compat", "--pair1", "-x", "/tmp/bogusipc"], "--compat");
    assert_refused(
        &["--compat", "--count=1", "--pair0", "-x", "/tmp/bogusipc"],
        "--count and --compat",
    );
    assert_refused(
        &["--count=xyz", "--pair0", "-x", "/tmp/bogusipc"],
        "Integer argument expected",
    );
    assert_refused(
        &[
            "--async",
            "--file=/nosuchfilehere",
            "--push0",
            "-x",
            "/tmp/bogusipc",
        ],
        "Cannot open file",
    );
    // And a few more of nngcat's rules.
    assert_refused(&["--push", "-l", "1", "-D", "x", "--raw"], "--format");
    assert_refused(&["--pull", "-l", "1", "-D", "x"], "--file or --data");
    assert_refused(
        &["--pull", "-l", "1", "--raw", "--hex"],
        "Format may be specified only once",
    );
    assert_refused(
        &["--pull", "-l", "1", "--key", "/k"],
        "--key requires --cert",
    );
}

#[test]
fn help_exits_one_with_usage() {
    let out = run(spcat(&["--help"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
}

#[test]
fn usage_no_longer_marks_protocols_unsupported() {
    let out = run(spcat(&["--help"]));
    let usage = String::from_utf8_lossy(&out.stdout);
    for p in ["--pub0", "--sub0", "--surveyor0", "--respondent0", "--bus0"] {
        let line = usage
            .lines()
            .find(|l| l.trim_start().starts_with(p))
            .unwrap_or_else(|| panic!("{p} missing from usage"));
        assert!(!line.contains("not supported"), "{line}");
    }
}

#[test]
fn failed_dial_is_fatal() {
    let url = free_tcp_url();
    assert_refused(&["--push", "--dial", &url, "-D", "x"], "Unable to dial on");
}

// ---- 8.7 #95: --file - reads stdin ----

#[test]
fn push_pull_over_ipc_from_stdin_raw() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("ipc://{}", dir.path().join("stdin.sock").display());
    let listener = Listener::start(&[
        "--listen",
        &url,
        "--count=1",
        "--recv-timeout=10",
        "--recv-maxsz=0",
        "--pull0",
        "--raw",
    ]);
    assert_eq!(listener.url, url);

    let mut pusher = spcat(&["--connect", &url, "--push0", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    pusher
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello world\n")
        .unwrap(); // closed on drop: EOF
    let pushed = wait(pusher, "pusher");
    assert!(pushed.status.success(), "pusher: {}", stderr_of(&pushed));

    let (code, out, err) = listener.finish();
    assert_eq!(code, Some(0), "listener stderr: {err}");
    assert_eq!(out, b"hello world\n");
}

// ---- quoted output of a REQ/REP exchange ----

#[test]
fn req_rep_quoted() {
    rep_on_runtime_answers_tokio_req("tokio");
}

/// `--runtime smol` runs the same loops on sp-smol; a smol REP answers a tokio REQ.
#[test]
fn req_rep_with_smol_runtime() {
    rep_on_runtime_answers_tokio_req("smol");
}

/// `--runtime blocking` runs them with sp-blocking's blocking calls.
#[test]
fn req_rep_with_blocking_runtime() {
    rep_on_runtime_answers_tokio_req("blocking");
}

fn rep_on_runtime_answers_tokio_req(runtime: &str) {
    let rep = Listener::start(&[
        "--rep0",
        "--runtime",
        runtime,
        "--listen",
        "tcp://127.0.0.1:0",
        "--data",
        "pong\tok",
        "--count",
        "1",
        "--quoted",
        "--recv-timeout",
        "10",
    ]);
    let req = run(spcat(&[
        "--req0",
        "--dial",
        &rep.url,
        "-D",
        "ping\n",
        "-Q",
        "--recv-timeout",
        "10",
    ]));
    assert!(req.status.success(), "req: {}", stderr_of(&req));
    assert_eq!(String::from_utf8_lossy(&req.stdout), "\"pong\\tok\"\n");
    let (code, out, err) = rep.finish();
    assert_eq!(code, Some(0), "{runtime} rep stderr: {err}");
    assert_eq!(String::from_utf8_lossy(&out), "\"ping\\n\"\n");
}

// ---- 8.7 #94: --recv-maxsz ----

#[test]
fn recv_maxsz_drops_larger_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("maxsz.sock");
    let path = path.to_str().unwrap();
    // -X/-x build ipc:///PATH, like nngcat.
    let listener = Listener::start(&[
        "-X",
        path,
        "--count=3",
        "--recv-maxsz=5",
        "--pull0",
        "--quoted",
        "--recv-timeout=10",
    ]);
    for data in ["one", "55555", "666666", "7777777", "88888"] {
        // Each push is its own process and connection; the 6- and 7-byte ones are dropped
        // together with their connections.
        let out = run(spcat(&["-x", path, "--push0", "--data", data]));
        assert!(out.status.success(), "push {data}: {}", stderr_of(&out));
    }
    let (code, out, err) = listener.finish();
    assert_eq!(code, Some(0), "listener stderr: {err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "\"one\"\n\"55555\"\n\"88888\"\n"
    );
}

#[test]
fn pair0_send_then_receive_hex() {
    let a = Listener::start(&[
        "--pair0",
        "--listen",
        "tcp://127.0.0.1:0",
        "--recv-timeout=2",
        "--hex",
        "--count=1",
    ]);
    let b = run(spcat(&[
        "--pair0",
        "--dial",
        &a.url,
        "-D",
        "\u{1}A",
        "--recv-timeout=1",
        "--ascii",
    ]));
    assert!(b.status.success(), "{}", stderr_of(&b));
    let (code, out, err) = a.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "\"\\x01\\x41\"\n");
}

#[test]
fn pair_means_pair1_and_talks_to_pair1() {
    let a = Listener::start(&[
        "--pair",
        "--listen",
        "tcp://127.0.0.1:0",
        "--recv-timeout=2",
        "--hex",
        "--count=1",
    ]);
    let b = run(spcat(&[
        "--pair1",
        "--dial",
        &a.url,
        "-D",
        "\u{2}B",
        "--recv-timeout=1",
        "--ascii",
    ]));
    assert!(b.status.success(), "{}", stderr_of(&b));
    let (code, out, err) = a.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "\"\\x02\\x42\"\n");
}

// ---- 8.7 #93: pub/sub with the quoted format ----

/// A SUB listening with two topics receives exactly the matching messages. The publisher is
/// the library's PUB, which dials and waits for its connection before publishing, so nothing
/// is lost to a subscription race.
#[test]
fn pub_sub_quoted_filters_by_topic() {
    let sub = Listener::start(&[
        "--sub0",
        "--listen",
        "tcp://127.0.0.1:0",
        "--subscribe=one",
        "--subscribe=two",
        "--quoted",
        "--count=3",
        "--recv-timeout=10",
    ]);
    let publisher = sp_blocking::Pub::new();
    publisher.dial(&sub.url).unwrap();
    wait_for_pipe(|| publisher.pipe_count());
    for msg in ["one flew", "xyz", "twofer test", "none swam", "one more"] {
        publisher.send(msg).unwrap();
    }
    let (code, out, err) = sub.finish();
    publisher.close();
    assert_eq!(code, Some(0), "sub stderr: {err}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "\"one flew\"\n\"twofer test\"\n\"one more\"\n"
    );
}

/// spcat's PUB send loop reaches a SUB with no `--subscribe` (everything); `--delay` lets the
/// connection settle before the first message, as with nngcat.
#[test]
fn spcat_pub_reaches_sub_subscribed_to_everything() {
    let sub = Listener::start(&[
        "--sub",
        "--listen",
        "tcp://127.0.0.1:0",
        "--ascii",
        "--count=2",
        "--recv-timeout=10",
    ]);
    let out = run(spcat(&[
        "--pub",
        "--dial",
        &sub.url,
        "-D",
        "news",
        "--delay=1",
        "--count=2",
        "--interval=1",
    ]));
    assert!(out.status.success(), "pub: {}", stderr_of(&out));
    let (code, out, err) = sub.finish();
    assert_eq!(code, Some(0), "sub stderr: {err}");
    assert_eq!(String::from_utf8_lossy(&out), "newsnews");
}

/// A SURVEYOR prints the responses until its survey ends (a normal end, exit 0); the
/// RESPONDENT prints the survey and answers it.
#[test]
fn surveyor_respondent_quoted() {
    let resp = Listener::start(&[
        "--respondent",
        "--listen",
        "tcp://127.0.0.1:0",
        "-D",
        "answer",
        "--count=1",
        "--quoted",
        "--recv-timeout=10",
    ]);
    let surv = run(spcat(&[
        "--surveyor0",
        "--dial",
        &resp.url,
        "-D",
        "question",
        "--delay=1",
        "--quoted",
    ]));
    assert!(surv.status.success(), "surveyor: {}", stderr_of(&surv));
    assert_eq!(String::from_utf8_lossy(&surv.stdout), "\"answer\"\n");
    let (code, out, err) = resp.finish();
    assert_eq!(code, Some(0), "respondent stderr: {err}");
    assert_eq!(String::from_utf8_lossy(&out), "\"question\"\n");
}

/// BUS runs like PAIR: with data, send then receive.
#[test]
fn bus_both_ways() {
    let a = Listener::start(&[
        "--bus0",
        "--listen",
        "tcp://127.0.0.1:0",
        "-D",
        "from a",
        "--delay=2",
        "--recv-timeout=3",
        "--ascii",
    ]);
    let b = run(spcat(&[
        "--bus",
        "--dial",
        &a.url,
        "-D",
        "from b",
        "--delay=1",
        "--recv-timeout=3",
        "--ascii",
    ]));
    assert!(b.status.success(), "{}", stderr_of(&b));
    assert_eq!(String::from_utf8_lossy(&b.stdout), "from a");
    let (code, out, err) = a.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "from b");
}

/// STAR (macat's `--star`) runs like BUS: with data, send then receive, both ways.
#[test]
fn star_both_ways() {
    let a = Listener::start(&[
        "--star",
        "--listen",
        "tcp://127.0.0.1:0",
        "-D",
        "from a",
        "--delay=2",
        "--recv-timeout=3",
        "--quoted",
    ]);
    let b = run(spcat(&[
        "--star",
        "--dial",
        &a.url,
        "-D",
        "from b",
        "--delay=1",
        "--recv-timeout=3",
        "--quoted",
    ]));
    assert!(b.status.success(), "{}", stderr_of(&b));
    assert_eq!(String::from_utf8_lossy(&b.stdout), "\"from a\"\n");
    let (code, out, err) = a.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(String::from_utf8_lossy(&out), "\"from b\"\n");
}

/// Waits (up to the deadline) until `pipes()` reports a connection.
fn wait_for_pipe(pipes: impl Fn() -> usize) {
    let start = Instant::now();
    while pipes() == 0 {
        assert!(
            start.elapsed() < DEADLINE,
            "no connection within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---- interop with NNG's nngcat ----

fn nngcat(args: &[&str]) -> Command {
    let mut c = Command::new(NNGCAT);
    c.args(args);
    c
}

/// nngcat listens on a fresh TCP address with `nng_args`, and spcat dials it with `sp_args`
/// and `--async` (retrying until nngcat is up). Both must succeed; returns their stdouts,
/// spcat's first.
fn spcat_dials_nngcat(sp_args: &[&str], nng_args: &[&str]) -> (String, String) {
    let url = free_tcp_url();
    let nng = nngcat(&[nng_args, &["--listen", &url]].concat())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sp = run(spcat(&[sp_args, &["--async", "--dial", &url]].concat()));
    let nng = wait(nng, "nngcat");
    assert!(sp.status.success(), "spcat: {}", stderr_of(&sp));
    assert!(nng.status.success(), "nngcat: {}", stderr_of(&nng));
    (text(&sp.stdout), text(&nng.stdout))
}

/// spcat listens with `sp_args`, and nngcat dials it with `nng_args`. Both must succeed;
/// returns their stdouts (spcat's without the "Listening at" line), spcat's first.
fn nngcat_dials_spcat(sp_args: &[&str], nng_args: &[&str]) -> (Vec<u8>, String) {
    let sp = Listener::start(&[sp_args, &["--listen", "tcp://127.0.0.1:0"]].concat());
    let nng = run(nngcat(&[nng_args, &["--dial", &sp.url]].concat()));
    assert!(nng.status.success(), "nngcat: {}", stderr_of(&nng));
    let (code, out, err) = sp.finish();
    assert_eq!(code, Some(0), "spcat: {err}");
    (out, text(&nng.stdout))
}

#[test]
fn interop_req_rep_nngcat_listens() {
    if !nngcat_available() {
        return;
    }
    let (sp, nng) = spcat_dials_nngcat(
        &[
            "--req0",
            "-D",
            "from sp\x7f",
            "--quoted",
            "--recv-timeout",
            "10",
        ],
        &[
            "--rep0",
            "-D",
            "from nng",
            "--count",
            "1",
            "--quoted",
            "--recv-timeout",
            "10",
        ],
    );
    assert_eq!(sp, "\"from nng\"\n");
    assert_eq!(nng, "\"from sp\\x7f\"\n");
}

#[test]
fn interop_req_rep_spcat_listens() {
    if !nngcat_available() {
        return;
    }
    let (sp, nng) = nngcat_dials_spcat(
        &[
            "--rep0",
            "-D",
            "from sp",
            "--count",
            "1",
            "--quoted",
            "--recv-timeout",
            "10",
        ],
        &[
            "--req0",
            "-D",
            "from nng\n",
            "--quoted",
            "--recv-timeout",
            "10",
        ],
    );
    assert_eq!(nng, "\"from sp\"\n");
    assert_eq!(text(&sp), "\"from nng\\n\"\n");
}

#[test]
fn interop_push_pull_nngcat_listens() {
    if !nngcat_available() {
        return;
    }
    let (_, nng) = spcat_dials_nngcat(
        &["--push0", "-D", "\u{1}bc", "--count", "2"],
        &["--pull0", "--count", "2", "--hex", "--recv-timeout", "10"],
    );
    assert_eq!(nng, "\"\\x01\\x62\\x63\"\n".repeat(2));
}

#[test]
fn interop_push_pull_spcat_listens() {
    if !nngcat_available() {
        return;
    }
    let (sp, _) = nngcat_dials_spcat(
        &[
            "--pull0",
            "--count",
            "1",
            "--msgpack",
            "--recv-timeout",
            "10",
        ],
        &["--push0", "-D", "nng says hi"],
    );
    let mut want = vec![0xc4, 11];
    want.extend_from_slice(b"nng says hi");
    assert_eq!(sp, want);
}

// In the PAIR v1 tests both sides send their data once, then print what they receive until
// 3 s pass in silence: each payload crosses once each way, hop-count header included.
#[test]
fn interop_pair1_nngcat_listens() {
    if !nngcat_available() {
        return;
    }
    let (sp, nng) = spcat_dials_nngcat(
        &[
            "--pair1",
            "-D",
            "from sp\t",
            "--quoted",
            "--recv-timeout",
            "3",
        ],
        &[
            "--pair1",
            "-D",
            "from nng",
            "--quoted",
            "--recv-timeout",
            "3",
        ],
    );
    assert_eq!(sp, "\"from nng\"\n");
    assert_eq!(nng, "\"from sp\\t\"\n");
}

#[test]
fn interop_pair1_spcat_listens() {
    if !nngcat_available() {
        return;
    }
    let (sp, nng) = nngcat_dials_spcat(
        &["--pair1", "-D", "from sp", "--hex", "--recv-timeout", "3"],
        &["--pair1", "-D", "\u{1}nng", "--hex", "--recv-timeout", "3"],
    );
    assert_eq!(nng, "\"\\x66\\x72\\x6f\\x6d\\x20\\x73\\x70\"\n");
    assert_eq!(text(&sp), "\"\\x01\\x6e\\x6e\\x67\"\n");
}
