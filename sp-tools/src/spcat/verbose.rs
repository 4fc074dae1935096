//! What `--verbose` adds on standard error: a line per pipe attach and detach (`-v`), and a
//! statistics summary on exit (`-v -v`). Standard output is left alone, so scripts that parse
//! it see the same bytes with or without these lines.
//!
//! The pipe lines come from the socket's pipe hook, which runs on the socket's driver tasks
//! (or threads, on the blocking runtime): it only formats and prints, and accepts every pipe.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sp_transport::{Address, DetachReason, PipeEvent, PipeId, PipeVerdict, ProtocolId};
use sp_transport::{Pipe, SocketStats};

use crate::runtime::{ToolRuntime, ToolSocket};
use crate::socket::Protocol;

/// The longest spcat waits, after closing its socket, for the hook to report the last pipes
/// detached (normally immediate: closing already waited for the pipes to go).
pub const DETACH_WAIT: Duration = Duration::from_secs(1);

/// Counts the pipes the hook reported attached and not yet detached.
#[derive(Clone, Debug, Default)]
pub struct PipeLog {
    open: Arc<AtomicUsize>,
}

impl PipeLog {
    /// Installs a hook on `sock` that prints a line to stderr for every pipe attach and detach
    /// and accepts every pipe. Call it before the socket dials or listens.
    pub fn install<S: ToolSocket>(sock: &S) -> Self {
        let log = Self::default();
        let open = log.open.clone();
        // A closed stderr must cost nothing: never panic in the hook.
        let print = |line: String| {
            let _ = writeln!(io::stderr().lock(), "{line}");
        };
        sock.set_pipe_hook(move |event| {
            match event {
                PipeEvent::Attached(pipe) => {
                    open.fetch_add(1, Ordering::AcqRel);
                    print(attached_line(
                        pipe.id(),
                        peer_address(pipe),
                        pipe.peer_protocol(),
                    ));
                }
                PipeEvent::Detached { pipe, reason } => {
                    print(detached_line(pipe.id(), peer_address(pipe), reason));
                    // Counted once printed: spcat may exit as soon as no pipe is open.
                    // Saturating: a detach always follows its attach, but never wrap.
                    let _ = open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                        Some(n.saturating_sub(1))
                    });
                }
                _ => {}
            }
            PipeVerdict::Accept
        });
        log
    }

    /// Pipes reported attached and not yet detached.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// After the socket closed, waits (at most [`DETACH_WAIT`]) until the hook has printed
    /// every detach, so that each attach line has its detach line before spcat exits.
    pub async fn wait_for_detaches<R: ToolRuntime>(&self, rt: &R) {
        let deadline = Instant::now() + DETACH_WAIT;
        while self.open() > 0 && Instant::now() < deadline {
            rt.sleep(Duration::from_millis(1)).await;
        }
    }
}

/// The address printed for a pipe: the peer's, else ours (a Unix-socket peer that did not
/// bind has none; both ends then share the listener's path, as NNG reports it).
fn peer_address(pipe: &Pipe) -> Option<&Address> {
    pipe.remote_addr().or_else(|| pipe.local_addr())
}

fn address_text(addr: Option<&Address>) -> String {
    addr.map_or_else(|| "unknown address".to_string(), ToString::to_string)
}

/// The peer's protocol as spcat's flags name it (`req0`, `pair1`, ...), or its number.
fn protocol_text(id: ProtocolId) -> String {
    match Protocol::from_id(id) {
        Some(p) => p.name().to_string(),
        None => format!("0x{:x}", id.0),
    }
}

/// `pipe 0x1234abcd attached: tcp://127.0.0.1:53422 (pair1)`.
pub fn attached_line(id: PipeId, addr: Option<&Address>, peer: ProtocolId) -> String {
    format!(
        "pipe 0x{:08x} attached: {} ({})",
        id.get(),
        address_text(addr),
        protocol_text(peer)
    )
}

/// `pipe 0x1234abcd detached: tcp://127.0.0.1:53422 (closed by the peer)`.
pub fn detached_line(id: PipeId, addr: Option<&Address>, reason: &DetachReason) -> String {
    format!(
        "pipe 0x{:08x} detached: {} ({reason})",
        id.get(),
        address_text(addr)
    )
}

/// Appends `: name n, name n` for the non-zero counters.
fn reasons<N: std::fmt::Display>(out: &mut String, counts: impl Iterator<Item = (N, u64)>) {
    for (i, (name, n)) in counts.enumerate() {
        let sep = if i == 0 { ": " } else { ", " };
        let _ = write!(out, "{sep}{name} {n}");
    }
}

/// The `-v -v` summary, one `stats: ` line per group, newline-terminated:
///
/// ```text
/// stats: messages sent 3 (15 bytes), received 0 (0 bytes)
/// stats: pipes attached 1, detached 1
/// stats: dial attempts 1, failures 0; connections accepted 0
/// stats: refused 0
/// stats: dropped 2: send_queue_full 1, pipe_closed 1
/// stats: req resends 0, survey timeouts 0
/// ```
pub fn stats_summary(s: &SocketStats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "stats: messages sent {} ({} bytes), received {} ({} bytes)",
        s.msgs_sent, s.bytes_sent, s.msgs_received, s.bytes_received
    );
    let _ = writeln!(
        out,
        "stats: pipes attached {}, detached {}",
        s.pipes_attached, s.pipes_detached
    );
    let _ = writeln!(
        out,
        "stats: dial attempts {}, failures {}; connections accepted {}",
        s.dial_attempts, s.dial_failures, s.accepted
    );
    let _ = write!(out, "stats: refused {}", s.refused.total());
    reasons(&mut out, s.refused.iter());
    out.push('\n');
    let _ = write!(out, "stats: dropped {}", s.dropped.total());
    reasons(&mut out, s.dropped.iter());
    out.push('\n');
    let _ = writeln!(
        out,
        "stats: req resends {}, survey timeouts {}",
        s.req_resends, s.survey_timeouts
    );
    out
}

/// Prints [`stats_summary`] of `sock` to stderr in one write.
pub fn print_stats<S: ToolSocket>(sock: &S) {
    let summary = stats_summary(&sock.stats());
    let _ = io::stderr().lock().write_all(summary.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use sp_transport::DropReason;

    fn tcp(port: u16) -> Address {
        Address::parse(&format!("tcp://127.0.0.1:{port}")).unwrap()
    }

    #[test]
    fn pipe_lines() {
        let id = PipeId::new(0x1234_abcd).unwrap();
        assert_eq!(
            attached_line(id, Some(&tcp(53422)), ProtocolId::PAIR1),
            "pipe 0x1234abcd attached: tcp://127.0.0.1:53422 (pair1)"
        );
        assert_eq!(
            detached_line(id, Some(&tcp(53422)), &DetachReason::PeerClosed),
            "pipe 0x1234abcd detached: tcp://127.0.0.1:53422 (closed by the peer)"
        );
        let small = PipeId::new(0x2a).unwrap();
        assert_eq!(
            attached_line(small, None, ProtocolId::REQ),
            "pipe 0x0000002a attached: unknown address (req0)"
        );
        assert_eq!(
            attached_line(small, Some(&tcp(1)), ProtocolId(0x7777)),
            "pipe 0x0000002a attached: tcp://127.0.0.1:1 (0x7777)"
        );
        assert_eq!(
            detached_line(small, None, &DetachReason::Local),
            "pipe 0x0000002a detached: unknown address (closed locally)"
        );
    }

    #[test]
    fn summary_lists_every_counter() {
        let mut s = SocketStats::default();
        s.msgs_sent = 3;
        s.bytes_sent = 15;
        s.msgs_received = 2;
        s.bytes_received = 8;
        s.pipes_attached = 1;
        s.pipes_detached = 1;
        s.dial_attempts = 4;
        s.dial_failures = 3;
        s.req_resends = 5;
        s.survey_timeouts = 6;
        s.dropped.record(DropReason::PipeClosed);
        s.dropped.add(DropReason::SendQueueFull, 2);
        assert_eq!(
            stats_summary(&s),
            "stats: messages sent 3 (15 bytes), received 2 (8 bytes)\n\
             stats: pipes attached 1, detached 1\n\
             stats: dial attempts 4, failures 3; connections accepted 0\n\
             stats: refused 0\n\
             stats: dropped 3: send_queue_full 2, pipe_closed 1\n\
             stats: req resends 5, survey timeouts 6\n"
        );
    }

    #[tokio::test]
    async fn hook_counts_open_pipes() {
        use crate::socket::AnySocket;
        let rt = sp_tokio::Tokio::default();
        let a = AnySocket::open(Protocol::Pair1, &rt).unwrap();
        let b = AnySocket::open(Protocol::Pair1, &rt).unwrap();
        let log = PipeLog::install(&a);
        let url = a.listen("tcp://127.0.0.1:0").await.unwrap().to_string();
        b.dial(&url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.open() == 0 {
            assert!(Instant::now() < deadline, "no attach reported");
            ToolRuntime::sleep(&rt, Duration::from_millis(1)).await;
        }
        assert_eq!(log.open(), 1);
        b.close().await;
        a.close().await;
        log.wait_for_detaches(&rt).await;
        assert_eq!(log.open(), 0);
        let stats = a.stats();
        assert_eq!((stats.pipes_attached, stats.pipes_detached), (1, 1));
    }
}
