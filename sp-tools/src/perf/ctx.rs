//! Request/reply with many requests in flight: REQ and REP contexts, and a raw-TCP pipelined
//! baseline.
//!
//! ```text
//!   req_ctx_thr [--set] <url>   <contexts> <msg-size> <count>
//!   raw_pipelined_thr <tcp-url> <depth>    <msg-size> <count>
//!   raw_threads_thr   <tcp-url> <pairs>    <msg-size> <count>
//! ```
//!
//! * `req_ctx_thr` runs both sides in one process: a REP socket listens on `url` with
//!   `contexts` REP contexts, each answering requests in a loop; a REQ socket dials it with
//!   `contexts` REQ contexts, each a task sending its share of `count` requests one after the
//!   other. So up to `contexts` requests are outstanding at once on one connection. On
//!   sp-blocking each context is a thread. With `--set`, each side is one task (one thread on
//!   sp-blocking) that waits on all its contexts with a `RecvSet`: the REQ side sends on every
//!   context, then sends the next request on each context that gets its reply.
//! * `raw_pipelined_thr` is the same traffic without SP: one TCP connection, 8-byte length
//!   prefixes, an echo server, and a client that keeps up to `depth` requests in flight. It
//!   bounds what any request/reply stack can reach on this machine.
//! * `raw_threads_thr` is the baseline of `req_ctx_thr` on sp-blocking, where each context is
//!   a thread: `pairs` TCP connections, each with a client thread that makes its share of
//!   `count` round trips one after the other and a server thread that echoes them, with
//!   std's blocking sockets and the same framing. Each round trip wakes two sleeping threads,
//!   so it bounds what any design with a blocking thread per request can reach here, however
//!   little its protocol costs.
//!
//! All three print the total time, the round-trip rate and the mean time a request took.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::reqrep::{Rep, Req};
use sp_transport::rt::Runtime;
use sp_transport::{Message, Socket};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use super::raw::tcp_host_port;
use super::{parse_int, Job, Mode, PerfError};
use crate::runtime::{block_on_smol, block_on_tokio, RuntimeKind, ToolRuntime};

/// What a pipelined request/reply run measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PipelinedReport {
    /// Time for all round trips.
    pub total: Duration,
    /// Message size in bytes.
    pub msg_size: usize,
    /// Number of round trips.
    pub round_trips: u32,
    /// How many requests were allowed in flight at once (contexts or pipeline depth).
    pub in_flight: usize,
}

impl PipelinedReport {
    fn of(in_flight: usize, msg_size: usize, round_trips: u32, total: Duration) -> Self {
        Self {
            total,
            msg_size,
            round_trips,
            in_flight,
        }
    }

    /// Round trips per second.
    pub fn round_trips_per_sec(&self) -> f64 {
        f64::from(self.round_trips) / self.total.as_secs_f64()
    }

    /// The mean time one request took from send to reply, in microseconds.
    pub fn mean_round_trip_us(&self) -> f64 {
        if self.round_trips == 0 {
            return 0.0;
        }
        self.total.as_secs_f64() * 1_000_000.0 * self.in_flight as f64 / f64::from(self.round_trips)
    }

    /// The lines `req_ctx_thr` and `raw_pipelined_thr` print.
    pub fn render(&self) -> String {
        format!(
            "total time: {:.3} [s]\nmessage size: {} [B]\nround trip count: {}\nin flight: {}\nthroughput: {:.0} [round trips/s]\nmean round trip: {:.3} [us]\n",
            self.total.as_secs_f64(),
            self.msg_size,
            self.round_trips,
            self.in_flight,
            self.round_trips_per_sec(),
            self.mean_round_trip_us()
        )
    }
}

/// Removes `req_ctx_thr`'s `--set` from the front of `args`; returns whether it was there.
pub fn take_set_option(mode: Mode, args: &mut Vec<String>) -> bool {
    let set = mode == Mode::ReqCtxThr && args.first().is_some_and(|a| a == "--set");
    if set {
        args.remove(0);
    }
    set
}

/// Parses `<url> <contexts|depth> <msg-size> <count>` into `(url, in_flight, size, count)`.
///
/// # Errors
/// The usage line, or `Invalid ...` for a bad number.
pub fn parse_args(mode: Mode, args: &[String]) -> Result<(String, usize, usize, u32), PerfError> {
    let (usage, what) = if mode == Mode::RawPipelinedThr {
        (
            "raw_pipelined_thr <tcp-url> <depth> <msg-size> <count>",
            "depth",
        )
    } else if mode == Mode::RawThreadsThr {
        (
            "raw_threads_thr <tcp-url> <pairs> <msg-size> <count>",
            "pair count",
        )
    } else {
        (
            "req_ctx_thr [--set] <url> <contexts> <msg-size> <count>",
            "context count",
        )
    };
    if args.len() != 4 {
        return Err(PerfError(format!("Usage: {usage}")));
    }
    let in_flight = parse_int(&args[1], what)?;
    if in_flight == 0 {
        return Err(PerfError(format!("Invalid {what}")));
    }
    Ok((
        args[0].clone(),
        in_flight as usize,
        parse_int(&args[2], "message size")? as usize,
        parse_int(&args[3], "count")?,
    ))
}

/// Runs `req_ctx_thr` on the job's runtime, `raw_pipelined_thr` on tokio, or
/// `raw_threads_thr` on threads of its own.
///
/// # Errors
/// The test's errors.
pub fn run(job: &Job) -> Result<String, PerfError> {
    let job = job.clone();
    let threads = job.threads;
    let out = match (job.mode, job.runtime) {
        (Mode::RawPipelinedThr, _) => block_on_tokio(threads, |_| raw_pipelined(job)),
        (Mode::RawThreadsThr, _) => Ok(raw_threads(&job)),
        (_, RuntimeKind::Tokio) if job.recv_set => {
            block_on_tokio(threads, |rt| contexts_in_sets(rt, job))
        }
        (_, RuntimeKind::Smol) if job.recv_set => {
            block_on_smol(threads, |rt| contexts_in_sets(rt, job))
        }
        (_, RuntimeKind::Blocking) if job.recv_set => Ok(blocking_contexts_in_sets(&job)),
        (_, RuntimeKind::Tokio) => block_on_tokio(threads, |rt| contexts(rt, job)),
        (_, RuntimeKind::Smol) => block_on_smol(threads, |rt| contexts(rt, job)),
        (_, RuntimeKind::Blocking) => Ok(blocking_contexts(&job)),
    };
    Ok(out.map_err(PerfError)??.render())
}

use super::sp::err;

/// How many of `count` round trips worker `i` of `n` makes.
fn share(count: u32, n: usize, i: usize) -> u32 {
    let n = n as u32;
    count / n + u32::from((i as u32) < count % n)
}

/// `req_ctx_thr` on an async runtime.
async fn contexts<R: Runtime + Clone>(rt: R, job: Job) -> Result<PipelinedReport, PerfError> {
    let (n, size, count) = (job.subscribers, job.size, job.count);
    let rep = Socket::<R, Rep>::with_runtime(rt.clone());
    let listener = rep.listen(&job.url).await.map_err(err("listen"))?;
    let req = Socket::<R, Req>::with_runtime(rt.clone());
    req.dial(&listener).await.map_err(err("dial"))?;

    for _ in 0..n {
        let ctx = rep.context().map_err(err("context"))?;
        let _server = ToolRuntime::spawn(&rt, async move {
            // Ends when the socket closes.
            while let Ok(request) = ctx.recv().await {
                if ctx.send(request.body).await.is_err() {
                    break;
                }
            }
        });
    }
    let msg = Bytes::from(vec![0u8; size]);
    let start = Instant::now();
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let ctx = req.context().map_err(err("context"))?;
        let (msg, trips) = (msg.clone(), share(count, n, i));
        clients.push(ToolRuntime::spawn(&rt, async move {
            for _ in 0..trips {
                ctx.send(msg.clone()).await.map_err(err("send"))?;
                let reply = ctx.recv().await.map_err(err("recv"))?;
                if reply.body.len() != size {
                    return Err(PerfError(format!(
                        "wrong message size: {} != {size}",
                        reply.body.len()
                    )));
                }
            }
            Ok(())
        }));
    }
    for client in clients {
        client
            .await
            .ok_or_else(|| PerfError("a client task went away".into()))??;
    }
    let total = start.elapsed();
    req.close().await;
    rep.close().await;
    Ok(PipelinedReport::of(n, size, count, total))
}

/// The REQ side's bookkeeping with `--set`: how many round trips each context has left.
struct Pipeline {
    msg: Bytes,
    left: Vec<u32>,
}

impl Pipeline {
    fn new(contexts: usize, size: usize, count: u32) -> Self {
        Self {
            msg: Bytes::from(vec![0u8; size]),
            left: (0..contexts).map(|i| share(count, contexts, i)).collect(),
        }
    }

    fn msg(&self) -> Bytes {
        self.msg.clone()
    }

    fn has_more(&self, ctx: usize) -> bool {
        self.left[ctx] > 0
    }

    /// Checks context `ctx`'s reply and counts it; true if the context sends again.
    fn answered(
        &mut self,
        ctx: usize,
        reply: sp_transport::Result<Message>,
    ) -> Result<bool, PerfError> {
        let reply = reply.map_err(err("recv"))?;
        if reply.body.len() != self.msg.len() {
            return Err(PerfError(format!(
                "wrong message size: {} != {}",
                reply.body.len(),
                self.msg.len()
            )));
        }
        self.left[ctx] -= 1;
        Ok(self.has_more(ctx))
    }
}

/// `req_ctx_thr` with one task per side, each waiting on its contexts with a `RecvSet`.
async fn contexts_in_sets<R: Runtime + Clone>(
    rt: R,
    job: Job,
) -> Result<PipelinedReport, PerfError> {
    let (n, size, count) = (job.subscribers, job.size, job.count);
    let rep = Socket::<R, Rep>::with_runtime(rt.clone());
    let listener = rep.listen(&job.url).await.map_err(err("listen"))?;
    let req = Socket::<R, Req>::with_runtime(rt.clone());
    req.dial(&listener).await.map_err(err("dial"))?;
    let servers = (0..n)
        .map(|_| rep.context().map_err(err("context")))
        .collect::<Result<Vec<_>, _>>()?;
    let _server = ToolRuntime::spawn(&rt, async move {
        let mut set = sp_transport::RecvSet::new();
        for (i, ctx) in servers.iter().enumerate() {
            set.add_context(i, ctx);
        }
        while let Ok((i, request)) = set.recv().await {
            if let Ok(request) = request {
                let _ = servers[i].send(request.body).await;
            }
        }
    });
    let clients = (0..n)
        .map(|_| req.context().map_err(err("context")))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let mut run = Pipeline::new(n, size, count);
    let mut set = sp_transport::RecvSet::new();
    for (i, ctx) in clients.iter().enumerate() {
        if run.has_more(i) {
            ctx.send(run.msg()).await.map_err(err("send"))?;
            set.add_context(i, ctx);
        }
    }
    while !set.is_empty() {
        let (i, reply) = set.recv().await.map_err(err("recv"))?;
        if run.answered(i, reply)? {
            clients[i].send(run.msg()).await.map_err(err("send"))?;
        } else {
            set.remove(&i);
        }
    }
    let total = start.elapsed();
    req.close().await;
    rep.close().await;
    Ok(PipelinedReport::of(n, size, count, total))
}

/// sp-blocking's REP listening on the job's URL and a REQ dialled to it.
fn blocking_sockets(job: &Job) -> Result<(sp_blocking::Rep, sp_blocking::Req), PerfError> {
    let rep = sp_blocking::Rep::new();
    let listener = rep.listen(&job.url).map_err(err("listen"))?;
    let req = sp_blocking::Req::new();
    req.dial(&listener).map_err(err("dial"))?;
    Ok((rep, req))
}

/// `req_ctx_thr --set` on sp-blocking: one thread per side, each waiting on its contexts
/// with a [`sp_blocking::RecvSet`].
fn blocking_contexts_in_sets(job: &Job) -> Result<PipelinedReport, PerfError> {
    let (n, size, count) = (job.subscribers, job.size, job.count);
    let (rep, req) = blocking_sockets(job)?;
    let servers = (0..n)
        .map(|_| rep.context().map_err(err("context")))
        .collect::<Result<Vec<_>, _>>()?;
    let server = std::thread::spawn(move || {
        let mut set = sp_blocking::RecvSet::new();
        for (i, ctx) in servers.iter().enumerate() {
            set.add_context(i, ctx);
        }
        // Ends when the socket closes: each member reports it once and leaves.
        while let Ok((i, request)) = set.recv() {
            if let Ok(request) = request {
                let _ = servers[i].send(request.body);
            }
        }
    });
    let clients = (0..n)
        .map(|_| req.context().map_err(err("context")))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let mut run = Pipeline::new(n, size, count);
    let mut set = sp_blocking::RecvSet::new();
    for (i, ctx) in clients.iter().enumerate() {
        if run.has_more(i) {
            ctx.send(run.msg()).map_err(err("send"))?;
            set.add_context(i, ctx);
        }
    }
    while !set.is_empty() {
        let (i, reply) = set.recv().map_err(err("recv"))?;
        if run.answered(i, reply)? {
            clients[i].send(run.msg()).map_err(err("send"))?;
        } else {
            set.remove(&i);
        }
    }
    let total = start.elapsed();
    req.close();
    rep.close();
    server
        .join()
        .map_err(|_| PerfError("the server thread panicked".into()))?;
    Ok(PipelinedReport::of(n, size, count, total))
}

/// `req_ctx_thr` on sp-blocking: one thread per context.
fn blocking_contexts(job: &Job) -> Result<PipelinedReport, PerfError> {
    let (n, size, count) = (job.subscribers, job.size, job.count);
    let (rep, req) = blocking_sockets(job)?;
    for _ in 0..n {
        let ctx = rep.context().map_err(err("context"))?;
        std::thread::spawn(move || {
            while let Ok(request) = ctx.recv() {
                if ctx.send(request.body).is_err() {
                    break;
                }
            }
        });
    }
    let msg = Bytes::from(vec![0u8; size]);
    let start = Instant::now();
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let ctx = req.context().map_err(err("context"))?;
            let (msg, trips) = (msg.clone(), share(count, n, i));
            Ok(std::thread::spawn(move || -> Result<(), PerfError> {
                for _ in 0..trips {
                    ctx.send(msg.clone()).map_err(err("send"))?;
                    ctx.recv().map_err(err("recv"))?;
                }
                Ok(())
            }))
        })
        .collect::<Result<_, PerfError>>()?;
    for client in clients {
        client
            .join()
            .map_err(|_| PerfError("a client thread panicked".into()))??;
    }
    let total = start.elapsed();
    req.close();
    rep.close();
    Ok(PipelinedReport::of(n, size, count, total))
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> PerfError {
    move |e| PerfError(format!("{what}: {e}"))
}

/// `raw_threads_thr`: `pairs` connections, each with a client thread making its share of the
/// round trips and a server thread echoing them, over std's blocking `TcpStream`s.
fn raw_threads(job: &Job) -> Result<PipelinedReport, PerfError> {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// Reads one frame of `size` payload bytes into `buf`; false at the end of the stream.
    /// A frame of another length is an error, so a stray peer's length is never allocated.
    fn read_frame(s: &mut TcpStream, size: usize, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut len = [0u8; 8];
        match s.read_exact(&mut len) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            other => other?,
        }
        if u64::from_be_bytes(len) != size as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a frame of {} bytes, not {size}", u64::from_be_bytes(len)),
            ));
        }
        buf.resize(size, 0);
        s.read_exact(buf)?;
        Ok(true)
    }
    /// Writes `body` as one frame, prefix and payload in one write.
    fn write_frame(s: &mut TcpStream, frame: &mut Vec<u8>, body: &[u8]) -> std::io::Result<()> {
        frame.clear();
        frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
        frame.extend_from_slice(body);
        s.write_all(frame)
    }

    let (pairs, size, count) = (job.subscribers, job.size, job.count);
    let listener = TcpListener::bind(tcp_host_port(&job.url)?).map_err(io_err("listen"))?;
    let addr = listener.local_addr().map_err(io_err("listen"))?;
    let mut clients = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let client = TcpStream::connect(addr).map_err(io_err("connect"))?;
        let (server, _) = listener.accept().map_err(io_err("accept"))?;
        for s in [&client, &server] {
            s.set_nodelay(true).map_err(io_err("nodelay"))?;
        }
        std::thread::spawn(move || {
            let (mut server, mut buf, mut frame) = (server, Vec::new(), Vec::new());
            while let Ok(true) = read_frame(&mut server, size, &mut buf) {
                if write_frame(&mut server, &mut frame, &buf).is_err() {
                    break;
                }
            }
        });
        clients.push(client);
    }
    let start = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let trips = share(count, pairs, i);
            // Returns the round trips it made: each an echo of `size` bytes.
            std::thread::spawn(move || -> std::io::Result<u32> {
                let (body, mut buf, mut frame) = (vec![0u8; size], Vec::new(), Vec::new());
                for _ in 0..trips {
                    write_frame(&mut client, &mut frame, &body)?;
                    if !read_frame(&mut client, size, &mut buf)? {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Ok(trips)
            })
        })
        .collect();
    let mut made = 0;
    for worker in workers {
        made += worker
            .join()
            .map_err(|_| PerfError("a client thread panicked".into()))?
            .map_err(io_err("round trip"))?;
    }
    Ok(PipelinedReport::of(pairs, size, made, start.elapsed()))
}

/// `raw_pipelined_thr`: an echo server and a client keeping `depth` requests in flight over
/// one TCP connection, with 8-byte big-endian length prefixes.
async fn raw_pipelined(job: Job) -> Result<PipelinedReport, PerfError> {
    let (depth, size, count) = (job.subscribers, job.size, job.count);
    let listener = TcpListener::bind(tcp_host_port(&job.url)?)
        .await
        .map_err(io_err("listen"))?;
    let addr = listener.local_addr().map_err(io_err("listen"))?;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.map_err(io_err("accept"))?;
        stream.set_nodelay(true).map_err(io_err("nodelay"))?;
        let (r, w) = stream.into_split();
        let (mut r, mut w) = (BufReader::new(r), BufWriter::new(w));
        let mut buf = Vec::new();
        for _ in 0..count {
            let len = r.read_u64().await.map_err(io_err("read"))?;
            buf.resize(len as usize, 0);
            r.read_exact(&mut buf).await.map_err(io_err("read"))?;
            w.write_u64(len).await.map_err(io_err("write"))?;
            w.write_all(&buf).await.map_err(io_err("write"))?;
            // Write out once nothing more is waiting to be read, so answers go out in batches.
            if r.buffer().is_empty() {
                w.flush().await.map_err(io_err("write"))?;
            }
        }
        w.flush().await.map_err(io_err("write"))?;
        Ok::<_, PerfError>(())
    });
    let stream = TcpStream::connect(addr).await.map_err(io_err("connect"))?;
    stream.set_nodelay(true).map_err(io_err("nodelay"))?;
    let (r, w) = stream.into_split();
    let credits = Arc::new(tokio::sync::Semaphore::new(depth));
    let start = Instant::now();
    let writer = {
        let credits = credits.clone();
        tokio::spawn(async move {
            let mut w = BufWriter::new(w);
            let body = vec![0u8; size];
            for _ in 0..count {
                let permit = match credits.try_acquire() {
                    Ok(permit) => permit,
                    Err(_) => {
                        // Out of credits: push out what is batched, then wait for a reply.
                        w.flush().await.map_err(io_err("write"))?;
                        credits
                            .acquire()
                            .await
                            .map_err(|_| PerfError("closed".into()))?
                    }
                };
                permit.forget();
                w.write_u64(size as u64).await.map_err(io_err("write"))?;
                w.write_all(&body).await.map_err(io_err("write"))?;
            }
            w.flush().await.map_err(io_err("write"))?;
            Ok::<_, PerfError>(w)
        })
    };
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    for _ in 0..count {
        let len = r.read_u64().await.map_err(io_err("read"))?;
        buf.resize(len as usize, 0);
        r.read_exact(&mut buf).await.map_err(io_err("read"))?;
        if buf.len() != size {
            return Err(PerfError(format!(
                "wrong message size: {} != {size}",
                buf.len()
            )));
        }
        credits.add_permits(1);
    }
    let total = start.elapsed();
    let joined = |e: tokio::task::JoinError| PerfError(format!("task failed: {e}"));
    writer.await.map_err(joined)??;
    server.await.map_err(joined)??;
    Ok(PipelinedReport {
        total,
        msg_size: size,
        round_trips: count,
        in_flight: depth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (count, n) in [(10, 3), (2, 5), (0, 1), (100, 100)] {
            let total: u32 = (0..n).map(|i| share(count, n, i)).sum();
            assert_eq!(total, count);
        }
    }

    #[test]
    fn args_are_checked() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(Mode::ReqCtxThr, &args(&["inproc://x", "8", "64", "100"])),
            Ok(("inproc://x".to_string(), 8, 64, 100))
        );
        assert_eq!(
            parse_args(Mode::ReqCtxThr, &args(&["inproc://x", "0", "64", "100"]))
                .unwrap_err()
                .0,
            "Invalid context count"
        );
        assert_eq!(
            parse_args(Mode::RawPipelinedThr, &args(&["tcp://x"]))
                .unwrap_err()
                .0,
            "Usage: raw_pipelined_thr <tcp-url> <depth> <msg-size> <count>"
        );
        assert_eq!(
            parse_args(Mode::RawThreadsThr, &args(&["tcp://x", "0", "64", "1"]))
                .unwrap_err()
                .0,
            "Invalid pair count"
        );
    }

    /// Every round trip of every pair is made and counted, and the report says how many pairs
    /// there were.
    #[test]
    fn raw_threads_makes_every_round_trip() {
        let argv = [
            "sp-perf",
            "raw_threads_thr",
            "tcp://127.0.0.1:0",
            "3",
            "16",
            "10",
        ];
        let Ok(super::super::PerfArgs::Run(job)) = super::super::parse(argv.map(Into::into).into())
        else {
            panic!("raw_threads_thr's arguments parse");
        };
        let report = raw_threads(&job).unwrap();
        assert_eq!((report.in_flight, report.round_trips), (3, 10));
    }
}
