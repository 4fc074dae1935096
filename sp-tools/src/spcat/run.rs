//! spcat's loops (spec 7.2): send loop, receive loop, send-then-receive, reply loop.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_transport::Error;

use super::args::{Config, Endpoint, Source};
use super::format::Format;
use super::verbose::{self, PipeLog};
use crate::runtime::{ToolRuntime, ToolSocket};
use crate::socket::Role;

/// How long nngcat waits after its last send so that queued messages reach the wire.
pub const DRAIN_DELAY: Duration = Duration::from_millis(200);

/// A fatal error: printed as `spcat: <message>`, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

fn fatal(what: &str, e: impl fmt::Display) -> RunError {
    RunError(format!("{what}: {e}"))
}

/// Reads the payload named by `--data` or `--file` (`-` = standard input).
///
/// # Errors
/// The file cannot be opened or read.
pub fn load_source(source: &Source) -> Result<Bytes, RunError> {
    match source {
        Source::Data(d) => Ok(Bytes::copy_from_slice(d)),
        Source::File(path) if path == "-" => {
            let mut buf = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| fatal("Read file - (standard input) failed", e))?;
            Ok(buf.into())
        }
        Source::File(path) => std::fs::read(path)
            .map(Bytes::from)
            .map_err(|e| fatal(&format!("Cannot open file {}", path.to_string_lossy()), e)),
    }
}

/// Whether a receive error ends a receive loop normally: a timeout (or the zero-timeout
/// "would block"), or a protocol state error such as REQ having no request outstanding.
pub fn ends_receive_loop(e: &Error) -> bool {
    e.is_timed_out() || e.is_would_block() || e.is_bad_state()
}

/// Prints received bodies in the chosen format, flushing after each (as nngcat does).
pub struct Printer<W: Write> {
    format: Option<Format>,
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Printer<W> {
    /// Prints with `format` (`None`: print nothing) to `out`.
    pub fn new(format: Option<Format>, out: W) -> Self {
        Self {
            format,
            out,
            buf: Vec::new(),
        }
    }

    /// Prints one message body.
    ///
    /// # Errors
    /// Writing to the output failed.
    pub fn print(&mut self, body: &[u8]) -> Result<(), RunError> {
        let Some(format) = self.format else {
            return Ok(());
        };
        if format == Format::No {
            return Ok(());
        }
        self.buf.clear();
        format.encode_into(body, &mut self.buf);
        self.out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush())
            .map_err(|e| fatal("Cannot write output", e))
    }

    /// Writes an informational line (verbose mode) and flushes it.
    ///
    /// # Errors
    /// Writing to the output failed.
    pub fn line(&mut self, text: &str) -> Result<(), RunError> {
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(|e| fatal("Cannot write output", e))
    }

    /// Returns the writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Opens the socket, sets its options, starts its endpoints and runs the loop for its role.
///
/// With `-v`, every pipe attach and detach is also reported on stderr; with `-v -v`, the
/// socket's statistics follow on exit (see [`super::verbose`]).
///
/// # Errors
/// Anything nngcat treats as fatal: an unsupported protocol, a failed dial or listen, a send
/// error, a receive error other than a timeout or state error, an output error.
pub async fn run<R: ToolRuntime, W: Write>(
    rt: &R,
    cfg: &Config,
    data: Option<Bytes>,
    printer: &mut Printer<W>,
) -> Result<(), RunError> {
    let sock = rt
        .open(cfg.protocol)
        .map_err(|u| RunError(format!("Unable to open socket: {u}")))?;
    // Installed before any endpoint starts, so that it sees every pipe.
    let pipe_log = (cfg.verbose >= 1).then(|| PipeLog::install(&sock));
    if let Err(e) = set_up(&sock, cfg, printer).await {
        if cfg.verbose >= 2 {
            verbose::print_stats(&sock);
        }
        return Err(e);
    }

    let result = match (cfg.protocol.role(), &data) {
        (Role::RecvOnly, _) | (Role::Responder | Role::Peer, None) => {
            recv_loop(&sock, cfg.count, printer).await
        }
        (Role::Responder, Some(d)) => reply_loop(rt, &sock, cfg, d, printer).await,
        (Role::SendOnly, Some(d)) => send_loop(rt, &sock, cfg, d).await,
        (Role::Requester | Role::Peer, Some(d)) => send_recv(rt, &sock, cfg, d, printer).await,
        (Role::SendOnly | Role::Requester, None) => Err(RunError(
            "No data to send (specify with --data or --file)".into(),
        )),
    };
    sock.close().await;
    if let Some(log) = &pipe_log {
        log.wait_for_detaches(rt).await;
    }
    if cfg.verbose >= 2 {
        verbose::print_stats(&sock);
    }
    result
}

/// Subscribes, sets the socket's options and starts its endpoints, in command-line order.
async fn set_up<S: ToolSocket, W: Write>(
    sock: &S,
    cfg: &Config,
    printer: &mut Printer<W>,
) -> Result<(), RunError> {
    // The parser allows `--subscribe` with SUB only and gives SUB `[""]` (everything) when
    // none is given, as nngcat does.
    for topic in &cfg.subscriptions {
        sock.subscribe(topic)
            .map_err(|e| fatal("Unable to subscribe", e))?;
    }
    sock.set_send_timeout(cfg.send_timeout);
    sock.set_recv_timeout(cfg.recv_timeout);
    if let Some(tls) = cfg
        .tls
        .config()
        .map_err(|e| fatal("Unable to load TLS configuration", e))?
    {
        sock.set_tls(tls);
    }
    if let Some(max) = cfg.recv_maxsz {
        sock.set_recv_max_size(max)
            .map_err(|e| fatal("Unable to set max receive size", e))?;
    }
    for ep in &cfg.endpoints {
        match ep {
            Endpoint::Dial(url) => {
                let res = if cfg.async_dial {
                    sock.dial_nonblocking(url)
                } else {
                    sock.dial(url).await
                };
                res.map_err(|e| fatal(&format!("Unable to dial on {url}"), e))?;
                if cfg.verbose >= 1 {
                    printer.line(&format!("Connected to: {url}"))?;
                }
            }
            Endpoint::Listen(url) => {
                let addr = sock
                    .listen(url)
                    .await
                    .map_err(|e| fatal(&format!("Unable to listen on {url}"), e))?;
                if cfg.verbose >= 1 {
                    printer.line(&format!("Listening at: {addr}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Receives and prints until a timeout or state error, or `count` receives (0: no limit).
///
/// # Errors
/// Any other receive error, or an output error.
pub async fn recv_loop<S: ToolSocket, W: Write>(
    sock: &S,
    count: u32,
    printer: &mut Printer<W>,
) -> Result<(), RunError> {
    let mut iters = 0u32;
    loop {
        if count > 0 && iters >= count {
            return Ok(());
        }
        let res = sock.recv().await;
        iters += 1;
        match res {
            Ok(msg) => printer.print(&msg.body)?,
            Err(e) if ends_receive_loop(&e) => return Ok(()),
            Err(e) => return Err(fatal("Receive error", e)),
        }
    }
}

/// Receives, prints, answers with `data`; `count` answers at most (0: no limit).
///
/// nngcat treats every receive error here as fatal; spcat ends normally on a receive timeout
/// (so `--recv-timeout` can end a replier), like the other receive loops.
///
/// # Errors
/// Other receive errors, send errors, output errors.
pub async fn reply_loop<R: ToolRuntime, W: Write>(
    rt: &R,
    sock: &R::Socket,
    cfg: &Config,
    data: &Bytes,
    printer: &mut Printer<W>,
) -> Result<(), RunError> {
    let mut iters = 0u32;
    loop {
        let msg = match sock.recv().await {
            Ok(m) => m,
            Err(e) if ends_receive_loop(&e) => break,
            Err(e) => return Err(fatal("Receive error", e)),
        };
        printer.print(&msg.body)?;
        sock.send(data.clone())
            .await
            .map_err(|e| fatal("Send error", e))?;
        iters += 1;
        if cfg.count > 0 && iters >= cfg.count {
            break;
        }
    }
    rt.sleep(DRAIN_DELAY).await;
    Ok(())
}

/// Sends `data` after the delay, then every interval, `count` times (once with neither).
///
/// # Errors
/// Send errors.
pub async fn send_loop<R: ToolRuntime>(
    rt: &R,
    sock: &R::Socket,
    cfg: &Config,
    data: &Bytes,
) -> Result<(), RunError> {
    if !cfg.delay.is_zero() {
        rt.sleep(cfg.delay).await;
    }
    let mut iters = 0u32;
    loop {
        let start = Instant::now();
        sock.send(data.clone())
            .await
            .map_err(|e| fatal("Send error", e))?;
        iters += 1;
        if (cfg.interval.is_none() && cfg.count == 0) || (cfg.count > 0 && iters >= cfg.count) {
            break;
        }
        if let Some(iv) = cfg.interval {
            // Account for the time the send took, so the interval stays steady.
            let spent = start.elapsed();
            if spent < iv {
                rt.sleep(iv - spent).await;
            }
        }
    }
    rt.sleep(DRAIN_DELAY).await;
    Ok(())
}

/// Sends `data`, then prints answers until a timeout or state error; with an interval or a
/// count, repeats, cutting the receive timeout to what is left of the interval.
///
/// # Errors
/// Send errors, receive errors other than timeouts and state errors, output errors.
pub async fn send_recv<R: ToolRuntime, W: Write>(
    rt: &R,
    sock: &R::Socket,
    cfg: &Config,
    data: &Bytes,
    printer: &mut Printer<W>,
) -> Result<(), RunError> {
    if !cfg.delay.is_zero() {
        rt.sleep(cfg.delay).await;
    }
    let mut iters = 0u32;
    loop {
        let start = Instant::now();
        sock.send(data.clone())
            .await
            .map_err(|e| fatal("Send error", e))?;
        if cfg.interval.is_none() && cfg.count == 0 {
            // One send, then receive until done.
            return recv_loop(sock, 0, printer).await;
        }
        loop {
            let mut expire = cfg.interval.map(|iv| iv.saturating_sub(start.elapsed()));
            if let Some(rt) = cfg.recv_timeout {
                expire = Some(expire.map_or(rt, |e| e.min(rt)));
            }
            sock.set_recv_timeout(expire);
            match sock.recv().await {
                Ok(msg) => printer.print(&msg.body)?,
                Err(e) if ends_receive_loop(&e) => break,
                Err(e) => return Err(fatal("Cannot receive", e)),
            }
        }
        iters += 1;
        if cfg.count > 0 && iters >= cfg.count {
            return Ok(());
        }
        if let Some(iv) = cfg.interval {
            let spent = start.elapsed();
            if spent < iv {
                rt.sleep(iv - spent).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_formats_and_flushes() {
        let mut p = Printer::new(Some(Format::Quoted), Vec::new());
        p.print(b"a\tb").unwrap();
        p.print(b"").unwrap();
        assert_eq!(p.into_inner(), b"\"a\\tb\"\n\"\"\n");
        let mut p = Printer::new(None, Vec::new());
        p.print(b"x").unwrap();
        assert!(p.into_inner().is_empty());
        let mut p = Printer::new(Some(Format::No), Vec::new());
        p.print(b"x").unwrap();
        p.line("Listening at: x").unwrap();
        assert_eq!(p.into_inner(), b"Listening at: x\n");
    }

    #[test]
    fn loop_ending_errors() {
        assert!(ends_receive_loop(&Error::TimedOut));
        assert!(ends_receive_loop(&Error::BadState));
        assert!(ends_receive_loop(&Error::WouldBlock));
        assert!(!ends_receive_loop(&Error::Closed));
        assert!(!ends_receive_loop(&Error::NotSupported));
    }

    #[test]
    fn load_data_and_files() {
        assert_eq!(
            load_source(&Source::Data(b"abc".to_vec())).unwrap(),
            Bytes::from_static(b"abc")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payload");
        std::fs::write(&path, b"file\x00bytes").unwrap();
        assert_eq!(
            load_source(&Source::File(path.into_os_string())).unwrap(),
            Bytes::from_static(b"file\x00bytes")
        );
        let missing = dir.path().join("missing");
        let e = load_source(&Source::File(missing.into_os_string())).unwrap_err();
        assert!(e.0.starts_with("Cannot open file"), "{e}");
    }
}
