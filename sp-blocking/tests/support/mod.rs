//! Shared helpers: a watchdog, addresses for each transport.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Runs `f` on its own thread and fails the test if it has not finished after `secs` seconds,
/// so that a hang fails CI instead of stalling it.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out,
        // The body panicked: join to re-raise its panic with its own message.
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body ended without sending its result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test still running after {secs} s: hung"),
    }
}

/// The transports every scenario runs over.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Inproc,
    Ipc,
    Tcp,
}

pub const ALL: [Transport; 3] = [Transport::Inproc, Transport::Ipc, Transport::Tcp];

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh address to listen on (port 0 for TCP: use the address `listen` returns).
pub fn url(t: Transport) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    match t {
        Transport::Inproc => format!("inproc://sp-blocking-test-{pid}-{n}"),
        Transport::Ipc => {
            let path = std::env::temp_dir().join(format!("sp-blocking-test-{pid}-{n}.sock"));
            format!("ipc://{}", path.display())
        }
        Transport::Tcp => "tcp://127.0.0.1:0".into(),
    }
}

/// Polls `cond` every few milliseconds until it holds; fails after 5 s.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting: {what}"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// A self-signed certificate for `127.0.0.1` and `localhost`: the server's TLS configuration
/// and a client's that trusts it.
pub fn tls_server() -> (sp_blocking::TlsConfig, sp_blocking::TlsConfig) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let server = sp_blocking::TlsConfig::builder()
        .cert_key_pem(cert_pem.clone(), key_pem)
        .build()
        .unwrap();
    let client = sp_blocking::TlsConfig::builder()
        .ca_pem(cert_pem)
        .build()
        .unwrap();
    (server, client)
}
