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

/// Reads a child's output stream line by line on a thread of its own, so that a test can wait
/// for one line within the deadline instead of sleeping.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    /// Every line read so far, in order (without the newline).
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(stream: impl Read + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits (within the deadline) for the next line for which `want` holds and returns it;
    /// panics, listing what was read, on end of stream or expiry.
    pub fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no {what} ({e:?}); lines so far: {:#?}", self.seen),
            }
        }
    }

    /// Reads up to the end of the stream (within the deadline) and returns every line.
    pub fn finish(&mut self, what: &str) -> Vec<String> {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return std::mem::take(&mut self.seen)
                }
                Err(e) => panic!("{what} did not end ({e:?}); lines so far: {:#?}", self.seen),
            }
        }
    }
}

/// A running spcat whose stdout and stderr are read line by line as they come.
pub struct Running {
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Running {
    pub fn start(args: &[&str]) -> Self {
        let mut child = spcat(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spcat");
        let stdout = Lines::new(child.stdout.take().unwrap());
        let stderr = Lines::new(child.stderr.take().unwrap());
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the `Listening at: URL` line (printed with `-v`) and returns the URL.
    pub fn listening_url(&mut self) -> String {
        let line = self
            .stdout
            .wait_for("Listening at line", |l| l.starts_with("Listening at: "));
        line["Listening at: ".len()..].to_string()
    }

    /// Waits for the process to end (killing it after the deadline); returns its exit status
    /// and every line of its stdout and stderr.
    pub fn finish(mut self, what: &str) -> (Option<i32>, Vec<String>, Vec<String>) {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{what} did not finish within {DEADLINE:?}; stdout {:#?}, stderr {:#?}",
                    self.stdout.seen, self.stderr.seen
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = self.stdout.finish(what);
        let err = self.stderr.finish(what);
        (status.code(), out, err)
    }
}

impl Drop for Running {
    /// A test that fails half-way leaves no spcat behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
