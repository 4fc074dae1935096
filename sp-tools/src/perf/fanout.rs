//! Fan-out throughput: one publisher, N subscribers, all in one process.
//!
//! ```text
//! fanout_thr [--yield-every K] [--rate R] <url> <subscribers> <msg-size> <count>   (PUB -> N SUBs)
//! raw_fanout_thr <tcp-url> <subscribers> <msg-size> <count>   (one writer -> N raw TCP streams)
//! ```
//!
//! * `fanout_thr`: a PUB listens on `url` (`tcp://127.0.0.1:0` picks a free port) and N SUBs,
//!   subscribed to everything, dial it. The PUB repeats a warm-up message until every SUB has
//!   received one, so no SUB misses the start. Then the clock starts, the PUB sends `count`
//!   messages of `msg-size` bytes as fast as `send` returns, and one end marker. A PUB never
//!   blocks: when a subscriber's queue is full it drops that subscriber's oldest queued
//!   message (SP-PROTOCOLS.md section 4.3), so the report gives messages *delivered* next to
//!   messages sent, and the rate at which they were sent. The markers have other lengths
//!   than the data (warm-up `size + 1`, end `size + 2`), so any size works. A SUB stops at the end marker, after `count` messages,
//!   or after [`IDLE_TIMEOUT`] without a message, so a lost marker cannot hang the run.
//!   A PUB `send` completes at once, so a plain send loop never gives its worker thread back
//!   to the runtime, and on a small thread pool the pipe tasks queued on that worker wait for
//!   the loop to end. `--yield-every K` makes the publisher yield to the runtime after every
//!   K sends, as a task with other work would (default 0: never). `--rate R` paces the
//!   publisher at R messages a second (default 0: as fast as it can): it sleeps on the
//!   runtime's timer whenever it is a millisecond or more ahead of that schedule, and yields
//!   while it is less (on sp-blocking, where a thread's sleep is finer than a millisecond, it
//!   sleeps whenever it is ahead). A PUB that sends no faster than its subscribers take
//!   should lose (almost) nothing, and the paced run measures exactly that.
//! * `raw_fanout_thr`: the baseline. One task writes the same framed bytes (SP's 8-byte length
//!   prefix and the body) to N accepted TCP connections in turn, through a buffered writer
//!   each; N reader tasks count `count` frames each. No handshake, no protocol, and TCP's
//!   back-pressure instead of drops: every message is delivered.
//!
//! Each subscriber's rate is its delivered messages over the time from the start to its last
//! message; the total rate is all delivered messages over the time to the last message any
//! subscriber received.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_transport::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use super::{parse_int, raw::tcp_host_port, Mode, PerfError};
use crate::runtime::{ToolRuntime, ToolSocket};

/// How long a subscriber waits for a message before it gives up on the rest.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the subscribers may take to connect and see the warm-up message.
pub const SETUP_DEADLINE: Duration = Duration::from_secs(10);

/// What a fan-out run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct FanoutReport {
    /// Message size in bytes.
    pub msg_size: usize,
    /// Messages the publisher sent.
    pub sent: u32,
    /// Time the publisher took to send them.
    pub send_time: Duration,
    /// Per subscriber: messages delivered, and the time from the start to the last one.
    pub subscribers: Vec<(u64, Duration)>,
    /// Messages the sockets dropped and counted, publisher and subscribers, from their
    /// statistics (where a lost message went); `None` for the raw baseline, which drops
    /// nothing.
    pub dropped: Option<(u64, u64)>,
}

impl FanoutReport {
    /// Messages delivered to all subscribers together.
    pub fn delivered(&self) -> u64 {
        self.subscribers.iter().map(|&(n, _)| n).sum()
    }

    /// Time from the start to the last message any subscriber received (at least the send
    /// time, so that a run where nothing arrived does not divide by zero).
    pub fn total_time(&self) -> Duration {
        self.subscribers
            .iter()
            .map(|&(_, t)| t)
            .fold(self.send_time, Duration::max)
    }

    /// Delivered messages per second, all subscribers together.
    pub fn msgs_per_sec(&self) -> f64 {
        rate(self.delivered(), self.total_time())
    }

    /// Messages the publisher sent per second: with `--rate`, whether it kept the pace (a
    /// publisher that shares a thread with its subscribers falls behind the schedule when they
    /// cannot keep up, and then loses nothing because it sent less, not because they took
    /// what the pace asked).
    pub fn send_rate(&self) -> f64 {
        rate(u64::from(self.sent), self.send_time)
    }

    /// Delivered messages per second for each subscriber.
    pub fn per_subscriber(&self) -> Vec<f64> {
        self.subscribers.iter().map(|&(n, t)| rate(n, t)).collect()
    }

    /// The report lines, in the style of NNG's `local_thr`.
    pub fn render(&self) -> String {
        let subs = self.subscribers.len();
        let expected = u64::from(self.sent) * subs as u64;
        let per = self.per_subscriber();
        let avg = if per.is_empty() {
            0.0
        } else {
            per.iter().sum::<f64>() / per.len() as f64
        };
        let slowest = per.iter().copied().fold(f64::INFINITY, f64::min);
        let fastest = per.iter().copied().fold(0.0, f64::max);
        let mbits = self.msgs_per_sec() * 8.0 * self.msg_size as f64 / (1024.0 * 1024.0);
        format!(
            "total time: {:.3} [s]\nsend time: {:.3} [s]\nsend rate: {:.0} [msg/s]\n\
             message size: {} [B]\nsubscribers: {}\n\
             messages sent: {}\nmessages delivered: {} of {} ({:.1}%)\n\
             throughput: {:.0} [msg/s] delivered in total\n\
             throughput per subscriber: {:.0} [msg/s] average, {:.0} slowest, {:.0} fastest\n\
             throughput: {:.3} [Mb/s] delivered in total\n",
            self.total_time().as_secs_f64(),
            self.send_time.as_secs_f64(),
            self.send_rate(),
            self.msg_size,
            subs,
            self.sent,
            self.delivered(),
            expected,
            percent(self.delivered(), expected),
            self.msgs_per_sec(),
            avg,
            if slowest.is_finite() { slowest } else { 0.0 },
            fastest,
            mbits
        ) + &self
            .dropped
            .map(|(by_pub, by_subs)| {
                format!(
                    "messages dropped: {by_pub} by the publisher, {by_subs} by the subscribers\n"
                )
            })
            .unwrap_or_default()
    }
}

fn rate(n: u64, t: Duration) -> f64 {
    if t.is_zero() {
        0.0
    } else {
        n as f64 / t.as_secs_f64()
    }
}

fn percent(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// How `fanout_thr`'s publisher sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherPace {
    /// `--yield-every K`: yield to the runtime after every K sends (0: never).
    pub yield_every: u32,
    /// `--rate R`: send at most R messages a second (0: as fast as `send` returns).
    pub rate: u32,
}

/// Removes the fan-out options from the front of `args` and returns them (all 0 when absent,
/// and for every mode but `fanout_thr`, which alone takes options).
///
/// # Errors
/// `bad option` for an unknown option or a missing value; "Invalid yield interval",
/// "Invalid rate".
pub fn take_options(mode: Mode, args: &mut Vec<String>) -> Result<PublisherPace, PerfError> {
    let mut pace = PublisherPace::default();
    if mode != Mode::FanoutThr {
        return Ok(pace);
    }
    while let Some(body) = args.first().and_then(|a| a.strip_prefix("--")) {
        let (name, inline) = match body.find(['=', ':']) {
            Some(p) => (&body[..p], Some(body[p + 1..].to_string())),
            None => (body, None),
        };
        // A prefix names an option if it names only one ("--y", "--ra").
        let is = |full: &str| !name.is_empty() && full.starts_with(name);
        let (yield_every, rate) = (is("yield-every"), is("rate"));
        if yield_every == rate {
            return Err(PerfError("bad option".into()));
        }
        let (value, used) = match inline {
            Some(v) => (v, 1),
            None => (
                args.get(1)
                    .cloned()
                    .ok_or_else(|| PerfError("bad option".into()))?,
                2,
            ),
        };
        if yield_every {
            pace.yield_every = parse_int(&value, "yield interval")?;
        } else {
            pace.rate = parse_int(&value, "rate")?;
        }
        args.drain(..used);
    }
    Ok(pace)
}

/// Parses `<url> <subscribers> <msg-size> <count>` for `mode` (after [`take_options`]).
///
/// # Errors
/// The usage line, or NNG-style "Invalid ..." messages; zero subscribers is invalid.
pub fn parse_args(mode: Mode, args: &[String]) -> Result<(String, usize, usize, u32), PerfError> {
    if args.len() != 4 {
        return Err(PerfError(format!(
            "Usage: {}",
            if mode == Mode::RawFanoutThr {
                "raw_fanout_thr <tcp-url> <subscribers> <msg-size> <count>"
            } else {
                "fanout_thr [--yield-every K] [--rate R] <url> <subscribers> <msg-size> <count>"
            }
        )));
    }
    let subs = parse_int(&args[1], "subscriber count")?;
    if subs == 0 {
        return Err(PerfError("Invalid subscriber count".into()));
    }
    Ok((
        args[0].clone(),
        subs as usize,
        parse_int(&args[2], "message size")? as usize,
        parse_int(&args[3], "count")?,
    ))
}

use super::sp::{err, open_typed};

/// `fanout_thr`: one PUB and `subs` SUBs on `url`, `count` messages of `size` bytes, sent as
/// `pace` says.
///
/// # Errors
/// Socket errors, or subscribers that do not connect within [`SETUP_DEADLINE`].
pub async fn pubsub<R: ToolRuntime>(
    rt: &R,
    url: &str,
    subs: usize,
    size: usize,
    count: u32,
    pace: PublisherPace,
) -> Result<FanoutReport, PerfError> {
    let publisher = open_typed::<_, sp_core::protocol::pubsub::Pub>(rt);
    let addr = publisher
        .listen(url)
        .await
        .map_err(err("listen"))?
        .to_string();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut sockets = Vec::with_capacity(subs);
    for _ in 0..subs {
        let sub = open_typed::<_, sp_core::protocol::pubsub::Sub>(rt);
        sub.subscribe(b"").map_err(err("subscribe"))?;
        sub.set_recv_timeout(Some(IDLE_TIMEOUT));
        sub.dial(&addr).await.map_err(err("dial"))?;
        sockets.push(sub);
    }
    let tallies = (0..subs)
        .map(|_| Tally::new(size, count, ready.clone()))
        .collect();
    let received = rt.recv_each(sockets.clone(), tallies, Tally::take);

    let warm_up = Bytes::from(vec![0u8; size + 1]);
    let setup_end = Instant::now() + SETUP_DEADLINE;
    while ready.load(Ordering::Acquire) < subs {
        if Instant::now() > setup_end {
            return Err(PerfError(format!(
                "only {} of {subs} subscribers connected within {SETUP_DEADLINE:?}",
                ready.load(Ordering::Acquire)
            )));
        }
        publisher.send(warm_up.clone()).await.map_err(err("send"))?;
        rt.sleep(Duration::from_millis(1)).await;
    }

    let msg = Bytes::from(vec![0u8; size]);
    let start = Instant::now();
    let interval = (pace.rate > 0).then(|| Duration::from_secs(1) / pace.rate);
    for i in 0..count {
        publisher.send(msg.clone()).await.map_err(err("send"))?;
        if pace.yield_every > 0 && (i + 1) % pace.yield_every == 0 {
            rt.yield_now().await;
        }
        if let Some(interval) = interval {
            // Where the schedule says the next send is due: sleep once that is the runtime's
            // timer granularity (a 1 ms tick; none for a blocking thread) or more away, and
            // yield while it is less. Sleeping alone sends the messages of a whole tick (and
            // of the timer's lateness) in one burst, which a subscriber's receive queue (128
            // messages) may not hold.
            let due = start + interval * (i + 1);
            let now = Instant::now();
            if due >= now + rt.sleep_granularity() {
                rt.sleep(due - now).await;
            } else if due > now {
                rt.yield_now().await;
            }
        }
    }
    let send_time = start.elapsed();
    publisher
        .send(Bytes::from(vec![0u8; size + 2]))
        .await
        .map_err(err("send"))?;

    let subscribers = received
        .await
        .ok_or_else(|| PerfError("subscriber task failed".into()))?
        .into_iter()
        .map(|t| (t.n, t.last.map_or(Duration::ZERO, |l| l - start)))
        .collect();
    let by_subs = sockets.iter().map(|s| s.stats().dropped.total()).sum();
    let by_pub = publisher.stats().dropped.total();
    for s in sockets {
        s.close().await;
    }
    publisher.close().await;
    Ok(FanoutReport {
        msg_size: size,
        sent: count,
        send_time,
        subscribers,
        dropped: Some((by_pub, by_subs)),
    })
}

/// What one SUB received: data messages counted until the end marker or `count` messages
/// (a receive timeout also ends it), and when the last one arrived.
struct Tally {
    size: usize,
    count: u32,
    /// Counts the SUBs that received a warm-up message.
    ready: Arc<AtomicUsize>,
    warmed: bool,
    n: u64,
    last: Option<Instant>,
    /// Data messages counted since `last` was read.
    since_last: u32,
}

/// How many data messages a [`Tally`] counts between two reads of the clock. A read per
/// message was 7 % of the time of sp-blocking's one receiving thread (a clock read costs
/// tens of nanoseconds on a VM); the end marker, or the last of `count`, reads it again, so
/// only a SUB whose end marker was dropped ends its time up to this many messages early.
const CLOCK_EVERY: u32 = 64;

impl Tally {
    fn new(size: usize, count: u32, ready: Arc<AtomicUsize>) -> Self {
        Self {
            size,
            count,
            ready,
            warmed: false,
            n: 0,
            last: None,
            since_last: 0,
        }
    }

    /// Counts `m`; false once this SUB is done.
    fn take(&mut self, m: Message) -> bool {
        let len = m.body.len();
        if len == self.size {
            self.n += 1;
            self.since_last += 1;
            if self.since_last == CLOCK_EVERY
                || self.last.is_none()
                || self.n >= u64::from(self.count)
            {
                self.mark_last();
            }
        } else if len == self.size + 1 {
            if !self.warmed {
                self.warmed = true;
                self.ready.fetch_add(1, Ordering::AcqRel);
            }
        } else if len == self.size + 2 {
            if self.since_last > 0 {
                self.mark_last();
            }
            return false;
        }
        self.n < u64::from(self.count)
    }

    /// The last data message arrived about now.
    fn mark_last(&mut self) {
        self.last = Some(Instant::now());
        self.since_last = 0;
    }
}

/// `raw_fanout_thr`: one writer task sends `count` frames of `size` bytes to each of `subs`
/// TCP connections on `url`; a reader task per connection counts them.
///
/// # Errors
/// IO errors and a non-TCP URL.
pub async fn raw(
    url: &str,
    subs: usize,
    size: usize,
    count: u32,
) -> Result<FanoutReport, PerfError> {
    let io = |what: &'static str| move |e: std::io::Error| PerfError(format!("{what}: {e}"));
    let listener = TcpListener::bind(tcp_host_port(url)?)
        .await
        .map_err(io("listen"))?;
    let addr = listener.local_addr().map_err(io("listen"))?;
    let mut writers = Vec::with_capacity(subs);
    let mut readers = Vec::with_capacity(subs);
    for _ in 0..subs {
        let client = TcpStream::connect(addr).await.map_err(io("dial"))?;
        let (server, _) = listener.accept().await.map_err(io("accept"))?;
        client.set_nodelay(true).map_err(io("set_nodelay"))?;
        server.set_nodelay(true).map_err(io("set_nodelay"))?;
        writers.push(BufWriter::with_capacity(64 * 1024, server));
        readers.push(client);
    }

    let start = Instant::now();
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|stream| tokio::spawn(raw_reader(stream, count)))
        .collect();
    let mut frame = Vec::with_capacity(8 + size);
    frame.extend_from_slice(&(size as u64).to_be_bytes());
    frame.resize(8 + size, 0);
    for _ in 0..count {
        for w in &mut writers {
            w.write_all(&frame).await.map_err(io("send"))?;
        }
    }
    for w in &mut writers {
        w.flush().await.map_err(io("send"))?;
    }
    let send_time = start.elapsed();

    let mut subscribers = Vec::with_capacity(subs);
    for task in tasks {
        let (n, last) = task
            .await
            .map_err(|e| PerfError(format!("reader task failed: {e}")))??;
        subscribers.push((n, last.map_or(Duration::ZERO, |l| l - start)));
    }
    Ok(FanoutReport {
        msg_size: size,
        sent: count,
        send_time,
        subscribers,
        dropped: None,
    })
}

/// Reads `count` frames from `stream`; returns how many arrived and when the last one did.
async fn raw_reader(stream: TcpStream, count: u32) -> Result<(u64, Option<Instant>), PerfError> {
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = Vec::new();
    let mut n = 0u64;
    let mut last = None;
    while n < u64::from(count) {
        let read = async {
            let len = r.read_u64().await?;
            buf.resize(len as usize, 0);
            r.read_exact(&mut buf).await
        };
        match tokio::time::timeout(IDLE_TIMEOUT, read).await {
            Ok(Ok(_)) => {
                n += 1;
                last = Some(Instant::now());
            }
            Ok(Err(e)) => return Err(PerfError(format!("recv: {e}"))),
            Err(_) => break,
        }
    }
    Ok((n, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines() {
        let r = FanoutReport {
            msg_size: 64,
            sent: 1000,
            send_time: Duration::from_millis(100),
            subscribers: vec![
                (1000, Duration::from_millis(500)),
                (500, Duration::from_millis(250)),
            ],
            dropped: None,
        };
        assert_eq!(r.delivered(), 1500);
        assert_eq!(r.total_time(), Duration::from_millis(500));
        assert_eq!(
            r.render(),
            "total time: 0.500 [s]\nsend time: 0.100 [s]\nsend rate: 10000 [msg/s]\n\
             message size: 64 [B]\nsubscribers: 2\n\
             messages sent: 1000\nmessages delivered: 1500 of 2000 (75.0%)\n\
             throughput: 3000 [msg/s] delivered in total\n\
             throughput per subscriber: 2000 [msg/s] average, 2000 slowest, 2000 fastest\n\
             throughput: 1.465 [Mb/s] delivered in total\n"
        );
    }

    #[test]
    fn nothing_delivered_does_not_divide_by_zero() {
        let r = FanoutReport {
            msg_size: 1,
            sent: 0,
            send_time: Duration::ZERO,
            subscribers: vec![(0, Duration::ZERO)],
            dropped: Some((3, 4)),
        };
        assert!(r.render().contains("messages delivered: 0 of 0 (0.0%)\n"));
        assert!(r
            .render()
            .contains("throughput: 0 [msg/s] delivered in total\n"));
        assert!(r
            .render()
            .ends_with("messages dropped: 3 by the publisher, 4 by the subscribers\n"));
    }

    /// A tally counts data messages only, reads the clock for the first, every
    /// [`CLOCK_EVERY`]th and at the end marker, and is done at the marker or at `count`.
    #[test]
    fn a_tally_times_its_last_message_without_a_clock_read_each() {
        let msg = |len: usize| Message::from(Bytes::from(vec![0u8; len]));
        let ready = Arc::new(AtomicUsize::new(0));
        let mut t = Tally::new(8, 1000, ready.clone());
        assert!(t.take(msg(9)), "a warm-up message");
        assert!(t.take(msg(9)));
        assert_eq!((t.n, ready.load(Ordering::Acquire)), (0, 1), "warmed once");
        assert!(t.take(msg(8)));
        let first = t.last.expect("the first data message is timed");
        for _ in 1..CLOCK_EVERY {
            assert!(t.take(msg(8)));
        }
        assert_eq!(t.last, Some(first), "no clock read until the next batch");
        assert!(t.take(msg(8)));
        let batch = t.last.unwrap();
        assert!(batch >= first && t.since_last == 0);
        assert!(t.take(msg(8)));
        assert!(!t.take(msg(10)), "the end marker ends it");
        assert!(
            t.last.unwrap() >= batch && t.since_last == 0,
            "and is timed"
        );
        assert_eq!(t.n, u64::from(CLOCK_EVERY) + 2);
        let mut t = Tally::new(8, 2, ready);
        assert!(t.take(msg(8)));
        assert!(!t.take(msg(8)), "done at count");
        assert_eq!(t.since_last, 0, "the last of count is timed");
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(Mode::FanoutThr, &args(&["inproc://x", "4", "64", "100"])).unwrap(),
            ("inproc://x".to_string(), 4, 64, 100)
        );
        assert_eq!(
            parse_args(Mode::FanoutThr, &args(&["inproc://x", "0", "64", "100"]))
                .unwrap_err()
                .0,
            "Invalid subscriber count"
        );
        assert_eq!(
            parse_args(Mode::RawFanoutThr, &args(&["tcp://h:1", "2", "64"]))
                .unwrap_err()
                .0,
            "Usage: raw_fanout_thr <tcp-url> <subscribers> <msg-size> <count>"
        );
        let pace = |yield_every, rate| PublisherPace { yield_every, rate };
        let mut a = args(&["--yield-every", "16", "tcp://h:1", "2", "8", "10"]);
        assert_eq!(take_options(Mode::FanoutThr, &mut a), Ok(pace(16, 0)));
        assert_eq!(a, args(&["tcp://h:1", "2", "8", "10"]));
        let mut a = args(&["--yield=4", "a"]);
        assert_eq!(take_options(Mode::FanoutThr, &mut a), Ok(pace(4, 0)));
        assert_eq!(a, args(&["a"]));
        let mut a = args(&["--rate", "50000", "--y=2", "a"]);
        assert_eq!(take_options(Mode::FanoutThr, &mut a), Ok(pace(2, 50000)));
        assert_eq!(a, args(&["a"]));
        let mut a = args(&["--rate=x", "a"]);
        assert_eq!(
            take_options(Mode::FanoutThr, &mut a).unwrap_err().0,
            "Invalid rate"
        );
        let mut a = args(&["--bogus", "a"]);
        assert_eq!(
            take_options(Mode::FanoutThr, &mut a).unwrap_err().0,
            "bad option"
        );
        // Only fanout_thr takes options; the others leave the arguments alone.
        let mut a = args(&["--yield=4", "a"]);
        assert_eq!(
            take_options(Mode::RawFanoutThr, &mut a),
            Ok(PublisherPace::default())
        );
        assert_eq!(a.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn raw_fanout_delivers_everything() {
        let r = raw("tcp://127.0.0.1:0", 3, 16, 2000).await.unwrap();
        assert_eq!(r.subscribers.len(), 3);
        assert_eq!(r.delivered(), 6000);
    }
}
