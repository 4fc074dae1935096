//! Helpers shared by the spcat test files: bounded waits for child processes, a listening
//! spcat that reports its bound address, and the nngcat check.

#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SPCAT: &str = env!("CARGO_BIN_EXE_spcat");
pub const NNGCAT: &str = "/usr/bin/nngcat";
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn spcat(args: &[&str]) -> Command {
    let mut c = Command::new(SPCAT);
    c.args(args);
    c
}

/// Waits for a child (whose stdout/stderr are piped) within the deadline, killing it on expiry.
pub fn wait(mut child: Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("wait_with_output");
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait_with_output");
            panic!(
                "{what} did not finish within {DEADLINE:?}; stdout {:?}, stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A spcat started with `-v` and a listen address; `url` is where it listens.
pub struct Listener {
    child: Child,
    stdout: BufReader<ChildStdout>,
    pub url: String,
}

impl Listener {
    pub fn start(args: &[&str]) -> Self {
        let mut child = spcat(args)
            .arg("-v")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn listener");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read listener's first line");
        let Some(url) = line.trim_end().strip_prefix("Listening at: ") else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "listener {args:?} printed {line:?}; stderr {:?}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let url = url.to_string();
        Self { child, stdout, url }
    }

    /// Waits for the listener to end; returns its exit status, the rest of its stdout and its
    /// stderr.
    pub fn finish(mut self) -> (Option<i32>, Vec<u8>, String) {
        let reader = std::thread::spawn(move || {
            let mut rest = Vec::new();
            self.stdout.read_to_end(&mut rest).map(|_| rest)
        });
        let out = wait(self.child, "listener");
        let rest = reader.join().unwrap().expect("read listener output");
        (out.status.code(), rest, stderr_of(&out))
    }
}

/// Whether nngcat can be used; fails instead when SP_REQUIRE_PEERS=1.
pub fn nngcat_available() -> bool {
    if Path::new(NNGCAT).exists() {
        return true;
    }
    if std::env::var("SP_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{NNGCAT} is missing and SP_REQUIRE_PEERS=1 (install Debian's nng-utils)");
    }
    eprintln!("skipping nngcat interop: {NNGCAT} not found (install Debian's nng-utils)");
    false
}
