//! spcat over `tls+tcp://`, `ws://` and `wss://` with nngcat's TLS flags (`--cert/-E`,
//! `--key`, `--cacert`, `--insecure/-k`), between two spcats and with nngcat both ways.
//!
//! A listening spcat runs with `-v` and the test waits for its "Listening at: URL" line; every
//! process has a count or a receive timeout, so each ends by itself.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{nngcat_available, text, wait, Listener, NNGCAT, SPCAT};
use sp_tests::certs::pki;

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn run(program: &str, args: &[&str]) -> Output {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait(child, program)
}

/// The listener's URL with the host replaced by `localhost` (for peers whose TLS matches
/// names only).
fn via_localhost(l: &Listener) -> String {
    l.url.replace("127.0.0.1", "localhost")
}

fn rep_listens_req_dials(scheme: &str, path_part: &str, cert_args: &[&str], ca_args: &[&str]) {
    let listen = format!("{scheme}://127.0.0.1:0{path_part}");
    let rep = Listener::start(
        &[
            &[
                "--rep0", "--listen", &listen, "-D", "pong", "--count", "1", "--quoted",
            ][..],
            cert_args,
        ]
        .concat(),
    );
    let req = run(
        SPCAT,
        &[
            &[
                "--req0",
                "--dial",
                &rep.url,
                "-D",
                "ping",
                "--quoted",
                "--recv-timeout",
                "10",
            ][..],
            ca_args,
        ]
        .concat(),
    );
    assert!(req.status.success(), "req: {}", text(&req.stderr));
    assert_eq!(text(&req.stdout), "\"pong\"\n");
    let (code, out, err) = rep.finish();
    assert_eq!(code, Some(0), "rep: {err}");
    assert_eq!(text(&out), "\"ping\"\n");
}

#[test]
fn spcat_tls_with_combined_cert_file() {
    let p = pki();
    rep_listens_req_dials(
        "tls+tcp",
        "",
        &["--cert", path(&p.server.combined_file)],
        &["--cacert", path(&p.ca_file)],
    );
}

#[test]
fn spcat_wss_with_separate_key_and_short_flags() {
    let p = pki();
    rep_listens_req_dials(
        "wss",
        "/sp",
        &[
            "-E",
            path(&p.server.cert_file),
            "--key",
            path(&p.server.key_file),
        ],
        &["--cacert", path(&p.ca_file)],
    );
}

#[test]
fn spcat_ws_needs_no_tls_flags() {
    rep_listens_req_dials("ws", "/plain", &[], &[]);
}

#[test]
fn spcat_insecure_skips_verification() {
    let p = pki();
    rep_listens_req_dials(
        "tls+tcp",
        "",
        &["--cert", path(&p.untrusted.combined_file)],
        &["-k"],
    );
}

#[test]
fn spcat_tls_errors_name_the_problem() {
    let p = pki();
    let out = run(
        SPCAT,
        &[
            "--req0",
            "--dial",
            "tls+tcp://127.0.0.1:1",
            "-D",
            "x",
            "--cert",
            "/nonexistent/c.pem",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("Unable to load TLS configuration"), "{err}");
    assert!(err.contains("/nonexistent/c.pem"), "{err}");

    // A server signed by a CA we were not given: the dial fails and says why.
    let rep = Listener::start(&[
        "--rep0",
        "--listen",
        "tls+tcp://127.0.0.1:0",
        "--cert",
        path(&p.untrusted.combined_file),
        "--recv-timeout",
        "2",
    ]);
    let out = run(
        SPCAT,
        &[
            "--req0",
            "--dial",
            &rep.url,
            "-D",
            "x",
            "--cacert",
            path(&p.ca_file),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unknown certificate authority"), "{err}");
    let _ = rep.finish();

    // Listening on tls+tcp without a certificate.
    let out = run(
        SPCAT,
        &[
            "--rep0",
            "--listen",
            "tls+tcp://127.0.0.1:0",
            "--cacert",
            path(&p.ca_file),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("needs a certificate"),
        "{}",
        text(&out.stderr)
    );
}

/// nngcat's REQ dials spcat's REP (spcat listening with `--cert`/`--key`).
fn nngcat_dials_spcat(scheme: &str, path_part: &str) {
    let p = pki();
    let rep = Listener::start(&[
        "--rep0",
        "--listen",
        &format!("{scheme}://127.0.0.1:0{path_part}"),
        "-D",
        "from spcat",
        "--count",
        "1",
        "--quoted",
        "--cert",
        path(&p.server.cert_file),
        "--key",
        path(&p.server.key_file),
    ]);
    let nng = run(
        NNGCAT,
        &[
            "--req0",
            "--dial",
            &via_localhost(&rep),
            "-D",
            "from nngcat",
            "--quoted",
            "--cacert",
            path(&p.ca_file),
            "--recv-timeout",
            "10",
        ],
    );
    assert!(nng.status.success(), "nngcat: {}", text(&nng.stderr));
    assert_eq!(text(&nng.stdout), "\"from spcat\"\n");
    let (code, out, err) = rep.finish();
    assert_eq!(code, Some(0), "spcat: {err}");
    assert_eq!(text(&out), "\"from nngcat\"\n");
}

/// spcat's REQ dials nngcat's REP (nngcat listening with `--cert`).
fn spcat_dials_nngcat(scheme: &str, path_part: &str) {
    let p = pki();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("{scheme}://127.0.0.1:{port}{path_part}");
    let nng = Command::new(NNGCAT)
        .args([
            "--rep0",
            "--listen",
            &url,
            "-D",
            "from nngcat",
            "--count",
            "1",
            "--quoted",
        ])
        .args(["--cert", path(&p.server.combined_file)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sp = run(
        SPCAT,
        &[
            "--req0",
            "--async",
            "--dial",
            &url,
            "-D",
            "from spcat",
            "--quoted",
            "--cacert",
            path(&p.ca_file),
            "--recv-timeout",
            "10",
        ],
    );
    let nng = wait(nng, "nngcat");
    assert!(sp.status.success(), "spcat: {}", text(&sp.stderr));
    assert!(nng.status.success(), "nngcat: {}", text(&nng.stderr));
    assert_eq!(text(&sp.stdout), "\"from nngcat\"\n");
    assert_eq!(text(&nng.stdout), "\"from spcat\"\n");
}

#[test]
fn nngcat_dials_spcat_over_tls() {
    if nngcat_available() {
        nngcat_dials_spcat("tls+tcp", "");
    }
}

#[test]
fn spcat_dials_nngcat_over_tls() {
    if nngcat_available() {
        spcat_dials_nngcat("tls+tcp", "");
    }
}

#[test]
fn nngcat_dials_spcat_over_wss() {
    if nngcat_available() {
        nngcat_dials_spcat("wss", "/cat");
    }
}

#[test]
fn spcat_dials_nngcat_over_ws() {
    if nngcat_available() {
        spcat_dials_nngcat("ws", "/cat");
    }
}
