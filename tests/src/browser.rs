//! A real browser as a peer: headless Chromium (Debian's `chromium`) loads a test page that
//! opens SP connections with `new WebSocket(url, ["<protocol>.sp.nanomsg.org"])` and reports
//! each result with `console.log("SPTEST ...")`, which `--enable-logging=stderr` prints.
//!
//! [`run_page`] waits for the page's `SPTEST done` line (never a fixed sleep) and kills the
//! browser after a deadline whatever happens, so a test always ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The directory of the test pages (`tests/web`).
pub fn pages_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Finds Chromium (`chromium`, else `chromium-browser`, `google-chrome`); skips (or fails
/// under `SP_REQUIRE_PEERS=1`) with the reason when there is none.
pub fn require_chromium() -> Option<PathBuf> {
    ["chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| crate::find_in_path(name))
        .or_else(|| crate::require_peer("chromium"))
}

/// What a page reported: its `SPTEST` lines in order, and whether it said `done`.
#[derive(Debug)]
pub struct PageReport {
    /// The `SPTEST` lines, without the prefix: `ok <name>` or `fail <name>: <why>`.
    pub lines: Vec<String>,
    /// Whether the page finished (`SPTEST done`) before the deadline.
    pub done: bool,
    /// The browser's other stderr lines (for a failure's message).
    pub noise: Vec<String>,
}

impl PageReport {
    /// Panics naming every test that did not report `ok`.
    pub fn assert_ok(&self, tests: &[&str]) {
        let missing: Vec<&&str> = tests
            .iter()
            .filter(|t| !self.lines.iter().any(|l| l == &format!("ok {t}")))
            .collect();
        if !missing.is_empty() || !self.done {
            let noise: Vec<&String> = self.noise.iter().rev().take(30).collect();
            panic!(
                "browser tests {missing:?} did not pass (done: {}):\n{}\nlast browser output:\n{noise:#?}",
                self.done,
                self.lines.join("\n")
            );
        }
    }
}

/// Loads `url` in headless Chromium and collects the page's `SPTEST` console lines until
/// `SPTEST done` or `deadline`; the browser is killed either way.
pub fn run_page(chromium: &Path, url: &str, deadline: Duration) -> PageReport {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            // The wss tests' certificate comes from the tests' own CA.
            "--ignore-certificate-errors",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + deadline;
    let mut report = PageReport {
        lines: Vec::new(),
        done: false,
        noise: Vec::new(),
    };
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        match console_line(&line) {
            Some("done") => {
                report.done = true;
                break;
            }
            Some(l) => report.lines.push(l.to_owned()),
            None => report.noise.push(line),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(rx);
    let _ = reader.join();
    report
}

/// The `SPTEST` message in a Chromium console log line, e.g.
/// `[...:INFO:CONSOLE(24)] "SPTEST ok reqrep", source: http://... (24)`.
fn console_line(line: &str) -> Option<&str> {
    let start = line.find("\"SPTEST ")? + "\"SPTEST ".len();
    let rest = &line[start..];
    let end = rest.rfind("\", source:").or_else(|| rest.rfind('"'))?;
    Some(&rest[..end])
}
