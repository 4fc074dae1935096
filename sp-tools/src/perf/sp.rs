//! The SP-socket perf tests, with NNG's `perf/perf.c` message flow.
//!
//! * Latency: the server (`local_lat`) listens and echoes `trips` messages, checking their
//!   size; the client (`remote_lat`) dials, waits 100 ms, then times `trips` send+receive
//!   round trips. One-way latency = total / (trips * 2).
//! * Throughput: the server (`local_thr`) listens, receives one empty start message, starts
//!   the clock, receives `count` messages of `size` bytes, stops the clock, sends an empty
//!   "done" message and waits 200 ms before closing. The client (`remote_thr`) dials with a
//!   5 s receive timeout, sends the empty start message, then `count + 1` messages of `size`
//!   bytes (NNG's client sends one more than the server counts), then waits for "done".

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_transport::Message;
use tokio::sync::oneshot;

use super::report::{LatencyReport, ThroughputReport};
use super::PerfError;
use crate::runtime::{ToolRuntime, ToolSocket};
use crate::socket::{Protocol, ToolCore};
use sp_core::protocol::{bus, pair, pair1, reqrep};

/// Which sockets a test uses: NNG's default is PAIR v1 for both sides, in every mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// The dialing side.
    pub client: Protocol,
    /// The listening side.
    pub server: Protocol,
}

impl Pattern {
    /// PAIR v0 on both sides (`inproc_lat --pair0`, `inproc_thr --pair0`).
    pub const PAIR0: Pattern = Pattern {
        client: Protocol::Pair0,
        server: Protocol::Pair0,
    };
    /// PAIR v1 on both sides (NNG's default).
    pub const PAIR1: Pattern = Pattern {
        client: Protocol::Pair1,
        server: Protocol::Pair1,
    };
    /// REQ dials, REP listens (`inproc_lat --reqrep0`).
    pub const REQREP0: Pattern = Pattern {
        client: Protocol::Req0,
        server: Protocol::Rep0,
    };
    /// BUS on both sides.
    pub const BUS0: Pattern = Pattern {
        client: Protocol::Bus0,
        server: Protocol::Bus0,
    };
}

/// The TLS configuration every socket this process opens gets (from `--cert` and friends).
static TLS: std::sync::OnceLock<sp_transport::TlsConfig> = std::sync::OnceLock::new();

/// Makes every socket opened afterwards use `config` for `tls+tcp://` and `wss://`.
pub fn use_tls(config: sp_transport::TlsConfig) {
    let _ = TLS.set(config);
}

/// Opens a socket of `p`, with the process's TLS configuration if there is one.
pub(super) fn open<R: ToolRuntime>(rt: &R, p: Protocol) -> Result<R::Socket, PerfError> {
    let s = rt.open(p).map_err(|u| PerfError(format!("socket: {u}")))?;
    with_tls(&s);
    Ok(s)
}

/// Opens a socket of the core `P` as its own type, with the process's TLS configuration.
pub(super) fn open_typed<R: ToolRuntime, P: ToolCore>(rt: &R) -> R::Typed<P> {
    let s = rt.open_typed::<P>();
    with_tls(&s);
    s
}

fn with_tls(s: &impl ToolSocket) {
    if let Some(tls) = TLS.get() {
        s.set_tls(tls.clone());
    }
}

/// Awaits the future `$run` (an `async` block) with `$s` a socket opened for `$protocol`: the
/// adapter's socket of that core's own type for the protocols of the [`Pattern`]s, an
/// `AnySocket` for any other. The block is compiled once per core, and the timed loops then
/// call the socket itself, as NNG's perf tools call NNG, with no enum future around each
/// call (6.1 % of the instructions of a tcp 64 B sender, 5.5 % of its receiver's).
macro_rules! with_socket {
    ($rt:expr, $protocol:expr, |$s:ident| $run:expr) => {
        with_socket!(
            $rt, $protocol, $s, $run;
            Pair1 => pair1::Pair1, Pair0 => pair::Pair, Req0 => reqrep::Req,
            Rep0 => reqrep::Rep, Bus0 => bus::Bus
        )
    };
    ($rt:expr, $protocol:expr, $s:ident, $run:expr; $($proto:ident => $core:ty),*) => {
        match $protocol {
            $(Protocol::$proto => {
                let $s = open_typed::<_, $core>($rt);
                $run.await
            })*
            other => {
                let $s = open($rt, other)?;
                $run.await
            }
        }
    };
}

pub(super) fn err<E: Into<sp_transport::Error>>(what: &'static str) -> impl Fn(E) -> PerfError {
    move |e| PerfError(format!("{what}: {}", e.into()))
}

fn check_size(got: usize, want: usize) -> Result<(), PerfError> {
    if got == want {
        Ok(())
    } else {
        Err(wrong_size(got, want))
    }
}

fn wrong_size(got: usize, want: usize) -> PerfError {
    PerfError(format!("wrong message size: {got} != {want}"))
}

fn signal(ready: Option<oneshot::Sender<()>>) {
    if let Some(tx) = ready {
        let _ = tx.send(());
    }
}

/// `local_lat`: listens on `url` and echoes `trips` messages of `size` bytes.
///
/// `ready` is signalled once the listener is bound (used by `inproc_lat`).
///
/// # Errors
/// Socket errors and wrong message sizes.
pub async fn latency_server<R: ToolRuntime>(
    rt: &R,
    pattern: Pattern,
    url: &str,
    size: usize,
    trips: u32,
    ready: Option<oneshot::Sender<()>>,
) -> Result<(), PerfError> {
    with_socket!(rt, pattern.server, |s| async {
        s.listen(url).await.map_err(err("listen"))?;
        signal(ready);
        for _ in 0..trips {
            let m = s.recv().await.map_err(err("recv"))?;
            check_size(m.body.len(), size)?;
            s.send(m.body).await.map_err(err("send"))?;
        }
        // Give the last echo time to leave (NNG: "linger should do this").
        rt.sleep(Duration::from_millis(100)).await;
        s.close().await;
        Ok(())
    })
}

/// `remote_lat`: dials `url` and times `trips` round trips of `size`-byte messages.
///
/// # Errors
/// Socket errors.
pub async fn latency_client<R: ToolRuntime>(
    rt: &R,
    pattern: Pattern,
    url: &str,
    size: usize,
    trips: u32,
) -> Result<LatencyReport, PerfError> {
    with_socket!(rt, pattern.client, |s| async {
        s.dial(url).await.map_err(err("dial"))?;
        rt.sleep(Duration::from_millis(100)).await;
        let msg = Bytes::from(vec![0u8; size]);
        let start = Instant::now();
        for _ in 0..trips {
            s.send(msg.clone()).await.map_err(err("send"))?;
            s.recv().await.map_err(err("recv"))?;
        }
        let total = start.elapsed();
        s.close().await;
        Ok(LatencyReport {
            total,
            msg_size: size,
            round_trips: trips,
        })
    })
}

/// `local_thr`: listens on `url`, waits for the start message, then times `count` messages,
/// received one by one as NNG's tool does, or with `recv_batch` above 1 (`--recv-batch`)
/// up to that many at a time with `recv_many`.
///
/// # Errors
/// Socket errors and wrong message sizes.
pub async fn throughput_server<R: ToolRuntime>(
    rt: &R,
    pattern: Pattern,
    url: &str,
    size: usize,
    count: u32,
    recv_batch: usize,
    ready: Option<oneshot::Sender<()>>,
) -> Result<ThroughputReport, PerfError> {
    with_socket!(rt, pattern.server, |s| async {
        s.listen(url).await.map_err(err("listen"))?;
        signal(ready);
        s.recv().await.map_err(err("recv"))?; // the empty start message
        let start = Instant::now();
        let mut got = 0u32;
        let mut buf = Vec::with_capacity(recv_batch);
        while got < count {
            if recv_batch > 1 {
                buf.clear();
                let limit = recv_batch.min((count - got) as usize);
                got += s.recv_many(&mut buf, limit).await.map_err(err("recv"))? as u32;
                for m in &buf {
                    check_size(m.body.len(), size)?;
                }
            } else {
                // Matched rather than `map_err`ed: the message is not moved through a `Result`
                // once more, in the loop that is timed.
                match s.recv().await {
                    Ok(m) if m.body.len() == size => got += 1,
                    Ok(m) => return Err(wrong_size(m.body.len(), size)),
                    Err(e) => return Err(err("recv")(e)),
                }
            }
        }
        let total = start.elapsed();
        // Tell the sender we are done, and give that message time to leave.
        let _ = s.send(Bytes::new()).await;
        rt.sleep(Duration::from_millis(200)).await;
        s.close().await;
        Ok(ThroughputReport {
            total,
            msg_size: size,
            count,
        })
    })
}

/// `remote_thr`: dials `url` and sends the start message, then `count + 1` messages as fast
/// as the socket takes them (one by one as NNG's tool does, or with `send_batch` above 1,
/// `--send-batch`, that many at a time with `send_many`), then waits up to 5 s for the
/// server's "done".
///
/// # Errors
/// Socket errors.
pub async fn throughput_client<R: ToolRuntime>(
    rt: &R,
    pattern: Pattern,
    url: &str,
    size: usize,
    count: u32,
    send_batch: usize,
) -> Result<(), PerfError> {
    with_socket!(rt, pattern.client, |s| async {
        s.set_recv_timeout(Some(Duration::from_secs(5)));
        s.dial(url).await.map_err(err("dial"))?;
        s.send(Bytes::new()).await.map_err(err("send"))?;
        let msg = Bytes::from(vec![0u8; size]);
        if send_batch > 1 {
            let mut left = count + 1;
            let mut batch = Vec::with_capacity(send_batch);
            while left > 0 {
                let n = send_batch.min(left as usize);
                batch.extend((0..n).map(|_| Message::from(msg.clone())));
                while !batch.is_empty() {
                    let sent = s.send_many(&mut batch).await.map_err(err("send"))?;
                    left -= sent as u32;
                }
            }
        } else {
            for _ in 0..=count {
                s.send(msg.clone()).await.map_err(err("send"))?;
            }
        }
        let _ = s.recv().await; // "done", if it comes
        s.close().await;
        Ok(())
    })
}

/// `inproc_lat`: a latency server task and a client in one process.
///
/// # Errors
/// Either side's errors.
pub async fn inproc_lat<R: ToolRuntime>(
    rt: &R,
    pattern: Pattern,
    url: &str,
    size: usize,
    trips: u32,
) -> Result<LatencyReport, PerfError> {
    let (tx, rx) = oneshot::channel();
    let server_url = url.to_string();
    let server_rt = rt.clone();
    let server = rt.spawn(async move {
        latency_server(&server_rt, pattern, &server_url, size, trips, Some(tx)).await
    });
    if rx.await.is_err() {
        // The server failed before listening: report its error.
        return Err(join(server.await)?
            .err()
            .unwrap_or_else(|| PerfError("server stopped".into())));
    }
    let report = latency_client(rt, pattern, url, size, trips).await?;
    join(server.await)??;
    Ok(report)
}

/// `inproc_thr`: a throughput server task and a client in one process; the server reports.
///
/// # Errors
/// Either side's errors.
pub async fn inproc_thr<R: ToolRuntime>(
    rt: &R,
    pattern: Pattern,
    url: &str,
    size: usize,
    count: u32,
    batches: super::Batches,
) -> Result<ThroughputReport, PerfError> {
    let (tx, rx) = oneshot::channel();
    let server_url = url.to_string();
    let server_rt = rt.clone();
    let server = rt.spawn(async move {
        throughput_server(
            &server_rt,
            pattern,
            &server_url,
            size,
            count,
            batches.recv,
            Some(tx),
        )
        .await
    });
    if rx.await.is_err() {
        return Err(join(server.await)?
            .err()
            .unwrap_or_else(|| PerfError("server stopped".into())));
    }
    throughput_client(rt, pattern, url, size, count, batches.send).await?;
    join(server.await)?
}

fn join<T>(r: Option<T>) -> Result<T, PerfError> {
    r.ok_or_else(|| PerfError("server task failed".into()))
}
