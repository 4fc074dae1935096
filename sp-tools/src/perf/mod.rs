//! `sp-perf`: NNG's perf tests, argument for argument, plus raw-TCP baselines.
//!
//! ```text
//! sp-perf [--runtime tokio|smol|blocking] [--threads N] <mode> <args...>
//! sp-perf -m <mode> <args...>          (NNG's form)
//! local_lat <args...>                  (NNG's form: the program's name picks the mode)
//!
//!   local_lat  <listen-url>  <msg-size> <roundtrips>
//!   remote_lat <connect-url> <msg-size> <roundtrips>
//!   local_thr  <listen-url>  <msg-size> <count>
//!   remote_thr <connect-url> <msg-size> <count>
//!   inproc_lat [--pair0|--pair1|--reqrep0|--bus0] [--url URL] <msg-size> <count>
//!   inproc_thr [--pair0|--pair1] [--url URL] <msg-size> <count>
//!   raw_local_lat | raw_remote_lat | raw_local_thr | raw_remote_thr <tcp-url> <msg-size> <count>
//!   fanout_thr [--yield-every K] [--rate R] <url> <subscribers> <msg-size> <count>
//!   raw_fanout_thr <tcp-url> <subscribers> <msg-size> <count>
//!   req_ctx_thr [--set] <url>   <contexts> <msg-size> <count>
//!   raw_pipelined_thr <tcp-url> <depth>    <msg-size> <count>
//!   raw_threads_thr   <tcp-url> <pairs>    <msg-size> <count>
//! ```
//!
//! Every mode uses PAIR v1 on both sides, as NNG's perf does; the inproc modes can pick other
//! sockets. `--runtime` picks the adapter the SP modes run on (the same code, generic over
//! [`ToolRuntime`]); the raw modes always use tokio's `TcpStream`. Errors print one line to stderr and exit with status 2, as NNG's `die` does.

pub mod ctx;
pub mod fanout;
pub mod raw;
pub mod report;
pub mod sp;

use std::ffi::OsString;
use std::fmt;

use clap::{Arg, ArgAction, Command};

use crate::runtime::{block_on_smol, block_on_tokio, RuntimeKind, ToolRuntime};
use sp::Pattern;

/// A fatal perf error (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerfError(pub String);

impl fmt::Display for PerfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PerfError {}

/// The perf tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Latency server (`local_lat`, alias `latency_server`).
    LocalLat,
    /// Latency client (`remote_lat`, alias `latency_client`).
    RemoteLat,
    /// Throughput server (`local_thr`, alias `throughput_server`).
    LocalThr,
    /// Throughput client (`remote_thr`, alias `throughput_client`).
    RemoteThr,
    /// Both throughput sides in one process.
    InprocThr,
    /// Both latency sides in one process.
    InprocLat,
    /// Raw-TCP latency server.
    RawLocalLat,
    /// Raw-TCP latency client.
    RawRemoteLat,
    /// Raw-TCP throughput server.
    RawLocalThr,
    /// Raw-TCP throughput client.
    RawRemoteThr,
    /// One PUB fanning out to N SUBs in one process ([`fanout`]).
    FanoutThr,
    /// One writer fanning out to N raw TCP connections ([`fanout`]).
    RawFanoutThr,
    /// REQ/REP round trips with N contexts in flight on one socket ([`ctx`]).
    ReqCtxThr,
    /// Raw-TCP echo round trips with N requests in flight ([`ctx`]).
    RawPipelinedThr,
    /// Raw-TCP echo round trips on N connections, a blocking thread per end ([`ctx`]).
    RawThreadsThr,
}

impl Mode {
    /// Whether this is one of the raw-TCP baselines (which always run on tokio).
    pub fn is_raw(self) -> bool {
        matches!(
            self,
            Mode::RawLocalLat
                | Mode::RawRemoteLat
                | Mode::RawLocalThr
                | Mode::RawRemoteThr
                | Mode::RawFanoutThr
        )
    }
}

const MODE_NAMES: &[(&str, Mode)] = &[
    ("remote_lat", Mode::RemoteLat),
    ("latency_client", Mode::RemoteLat),
    ("local_lat", Mode::LocalLat),
    ("latency_server", Mode::LocalLat),
    ("local_thr", Mode::LocalThr),
    ("throughput_server", Mode::LocalThr),
    ("remote_thr", Mode::RemoteThr),
    ("throughput_client", Mode::RemoteThr),
    ("inproc_thr", Mode::InprocThr),
    ("inproc_lat", Mode::InprocLat),
    ("raw_local_lat", Mode::RawLocalLat),
    ("raw_remote_lat", Mode::RawRemoteLat),
    ("raw_local_thr", Mode::RawLocalThr),
    ("raw_remote_thr", Mode::RawRemoteThr),
    ("fanout_thr", Mode::FanoutThr),
    ("raw_fanout_thr", Mode::RawFanoutThr),
    ("req_ctx_thr", Mode::ReqCtxThr),
    ("raw_pipelined_thr", Mode::RawPipelinedThr),
    ("raw_threads_thr", Mode::RawThreadsThr),
];

/// NNG's program-name match: the part after the last `/`, `\` or `:`, compared without case,
/// optionally followed by an extension (`local_lat.exe`).
pub fn mode_from_name(arg: &str) -> Option<Mode> {
    let base = arg.rsplit(['/', '\\', ':']).next().unwrap_or(arg);
    let base = base.to_ascii_lowercase();
    MODE_NAMES.iter().find_map(|&(name, mode)| {
        let rest = base.strip_prefix(name)?;
        (rest.is_empty() || rest.starts_with('.')).then_some(mode)
    })
}

/// NNG's `parse_int`: a decimal integer from 0 to 10^9.
///
/// # Errors
/// `Invalid <what>`.
pub fn parse_int(arg: &str, what: &str) -> Result<u32, PerfError> {
    let invalid = || PerfError(format!("Invalid {what}"));
    let digits = arg.strip_prefix('+').unwrap_or(arg);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match digits.parse::<u64>() {
        Ok(v) if v <= 1_000_000_000 => Ok(v as u32),
        _ => Err(invalid()),
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The test.
    pub mode: Mode,
    /// The URL (inproc modes: NNG's default unless `--url`).
    pub url: String,
    /// Message size in bytes.
    pub size: usize,
    /// Round trips or messages.
    pub count: u32,
    /// Socket types.
    pub pattern: Pattern,
    /// The runtime the SP modes run on.
    pub runtime: RuntimeKind,
    /// Runtime worker threads (`--threads`, else the runtime's own default).
    pub threads: usize,
    /// Subscribers in the fan-out modes, requests in flight (contexts, pipeline depth) in the
    /// [`ctx`] modes (1 elsewhere).
    pub subscribers: usize,
    /// `fanout_thr --yield-every` and `--rate`: how the publisher sends.
    pub pace: fanout::PublisherPace,
    /// `req_ctx_thr --set`: each side waits on all its contexts from one task (one thread on
    /// sp-blocking) with a `RecvSet`, instead of a task (thread) per context.
    pub recv_set: bool,
    /// `--recv-batch` and `--send-batch`.
    pub batches: Batches,
    /// `--busy-poll`: how long a receive that waits for a connection's bytes polls before it
    /// sleeps ([`sp_transport::set_busy_poll_limit`]); `None` leaves the default.
    pub busy_poll: Option<std::time::Duration>,
    /// nngcat's TLS flags, for `tls+tcp://` and `wss://` URLs (NNG's perf tools have none).
    pub tls: crate::tls::TlsOptions,
}

/// How many messages the throughput modes hand over per call (`--recv-batch`,
/// `--send-batch`): 1 is one by one, as NNG's tools do; more uses `recv_many` and `send_many`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batches {
    /// `local_thr` and `inproc_thr`'s receiver.
    pub recv: usize,
    /// `remote_thr` and `inproc_thr`'s sender.
    pub send: usize,
}

/// The default inproc addresses NNG uses.
pub const INPROC_LAT_URL: &str = "inproc://latency_test";
/// See [`INPROC_LAT_URL`].
pub const INPROC_THR_URL: &str = "inproc://throughput-test";

fn command() -> Command {
    Command::new("sp-perf")
        .about("NNG-compatible perf tests (local_lat, remote_lat, local_thr, remote_thr, inproc_lat, inproc_thr) and raw-TCP baselines")
        .override_usage(
            "sp-perf [--runtime tokio|smol|blocking] [--threads N] [--recv-batch N] [--send-batch N] [--busy-poll MICROS] <mode> <args...>\n       sp-perf -m <mode> <args...>\n\n\
             modes: local_lat <url> <size> <roundtrips> | remote_lat <url> <size> <roundtrips>\n       \
             local_thr <url> <size> <count> | remote_thr <url> <size> <count>\n       \
             inproc_lat [--pair0|--pair1|--reqrep0|--bus0] [--url URL] <size> <count>\n       \
             inproc_thr [--pair0|--pair1] [--url URL] <size> <count>\n       \
             raw_local_lat | raw_remote_lat | raw_local_thr | raw_remote_thr <tcp-url> <size> <count>\n       \
             fanout_thr [--yield-every K] [--rate R] <url> <subscribers> <size> <count> | raw_fanout_thr <tcp-url> <subscribers> <size> <count>\n       \
             req_ctx_thr [--set] <url> <contexts> <size> <count> | raw_pipelined_thr <tcp-url> <depth> <size> <count>\n       \
             raw_threads_thr <tcp-url> <pairs> <size> <count>",
        )
        .arg(Arg::new("runtime").long("runtime").value_name("RUNTIME").default_value("tokio").help("the adapter the SP modes run on: tokio, smol or blocking"))
        .arg(
            Arg::new("threads")
                .long("threads")
                .value_name("N")
                .value_parser(clap::value_parser!(u16).range(1..))
                .help("runtime worker threads [default: the runtime's own: tokio one per core, smol SMOL_THREADS or 1]"),
        )
        .arg(
            Arg::new("recv-batch")
                .long("recv-batch")
                .value_name("N")
                .value_parser(clap::value_parser!(u32).range(1..=1_000_000))
                .help("local_thr, inproc_thr: receive up to N messages at a time with recv_many [default: one by one, as NNG's tools]"),
        )
        .arg(
            Arg::new("send-batch")
                .long("send-batch")
                .value_name("N")
                .value_parser(clap::value_parser!(u32).range(1..=1_000_000))
                .help("remote_thr, inproc_thr: send N messages at a time with send_many [default: one by one, as NNG's tools]"),
        )
        .arg(
            Arg::new("busy-poll")
                .long("busy-poll")
                .value_name("MICROS")
                .value_parser(clap::value_parser!(u32).range(0..=1_000_000))
                .help("how long a receive waiting for a connection's bytes polls before it sleeps, in microseconds; 0 sleeps at once [default: sp_transport::DEFAULT_BUSY_POLL, 20]"),
        )
        .arg(Arg::new("mode-opt").short('m').value_name("MODE").help("the test to run (NNG's -m)"))
        .arg(Arg::new("cert").long("cert").short('E').value_name("FILE").value_parser(clap::value_parser!(OsString)).help("tls+tcp/wss: our certificate (and key, unless --key)"))
        .arg(Arg::new("key").long("key").value_name("FILE").value_parser(clap::value_parser!(OsString)).help("tls+tcp/wss: our private key"))
        .arg(Arg::new("cacert").long("cacert").value_name("FILE").value_parser(clap::value_parser!(OsString)).help("tls+tcp/wss: CA certificates that verify the server"))
        .arg(Arg::new("insecure").long("insecure").short('k').action(ArgAction::SetTrue).help("tls+tcp/wss: do not verify the server's certificate"))
        .arg(
            Arg::new("args")
                .action(ArgAction::Append)
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_name("ARGS"),
        )
}

/// Parsing outcome: run a job, or print clap's help/version and exit with its status.
#[derive(Debug)]
pub enum PerfArgs {
    /// Run this.
    Run(Job),
    /// Help or usage error rendered by clap (exit status 0 for help, 2 for errors).
    Clap(String, i32),
}

fn inproc_opts(mode: Mode, args: &[String]) -> Result<(Pattern, Option<String>, usize), PerfError> {
    const NAMES: &[&str] = &[
        "pair1",
        "pair0",
        "reqrep0",
        "bus0",
        "pubsub0",
        "pipeline0",
        "url",
    ];
    let mut pattern = Pattern::PAIR1;
    let mut url = None;
    let mut i = 0;
    while i < args.len() {
        let Some(body) = args[i].strip_prefix("--") else {
            break;
        };
        let (name, inline) = match body.find(['=', ':']) {
            Some(p) => (&body[..p], Some(&body[p + 1..])),
            None => (body, None),
        };
        let exact = NAMES.iter().find(|n| **n == name);
        let mut prefixed = NAMES.iter().filter(|n| n.starts_with(name));
        let resolved = match (exact, prefixed.next(), prefixed.next()) {
            (Some(n), _, _) => *n,
            (None, Some(n), None) if !name.is_empty() => *n,
            _ => return Err(PerfError("bad option".into())),
        };
        match (resolved, mode) {
            ("pair0", _) => pattern = Pattern::PAIR0,
            ("pair1", _) => pattern = Pattern::PAIR1,
            ("reqrep0", Mode::InprocLat) => pattern = Pattern::REQREP0,
            ("bus0", Mode::InprocLat) => pattern = Pattern::BUS0,
            ("url", _) => {
                let v = match inline {
                    Some(v) => v.to_string(),
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| PerfError("bad option".into()))?
                    }
                };
                url = Some(v);
            }
            _ => return Err(PerfError("bad option".into())),
        }
        i += 1;
    }
    Ok((pattern, url, i))
}

/// Parses argv (program name first).
///
/// # Errors
/// NNG's usage and number messages.
pub fn parse(argv: Vec<OsString>) -> Result<PerfArgs, PerfError> {
    let prog_mode = argv
        .first()
        .and_then(|p| p.to_str())
        .and_then(mode_from_name);
    let m = match command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            return Ok(PerfArgs::Clap(e.render().to_string(), code));
        }
    };
    let runtime = m
        .get_one::<String>("runtime")
        .map_or(Ok(RuntimeKind::Tokio), |r| r.parse::<RuntimeKind>())
        .map_err(PerfError)?;
    let batch = |name: &str| m.get_one::<u32>(name).map_or(1, |&n| n as usize);
    let batches = Batches {
        recv: batch("recv-batch"),
        send: batch("send-batch"),
    };
    let busy_poll = m
        .get_one::<u32>("busy-poll")
        .map(|&us| std::time::Duration::from_micros(u64::from(us)));
    let threads = m
        .get_one::<u16>("threads")
        .map_or_else(|| runtime.default_threads(), |&n| usize::from(n));
    let tls = crate::tls::TlsOptions {
        insecure: m.get_flag("insecure"),
        cacert: m.get_one::<OsString>("cacert").cloned(),
        cert: m.get_one::<OsString>("cert").cloned(),
        key: m.get_one::<OsString>("key").cloned(),
    };
    let mut args: Vec<String> = m
        .get_many::<String>("args")
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mode = if let Some(name) = m.get_one::<String>("mode-opt") {
        mode_from_name(name)
            .ok_or_else(|| PerfError("Unknown program mode? Use -m <mode>.".into()))?
    } else if let Some(mode) = prog_mode {
        mode
    } else {
        let Some(first) = args.first() else {
            return Err(PerfError("Unknown program mode? Use -m <mode>.".into()));
        };
        let mode = mode_from_name(first)
            .ok_or_else(|| PerfError("Unknown program mode? Use -m <mode>.".into()))?;
        args.remove(0);
        mode
    };
    let usage = |u: &str| PerfError(format!("Usage: {u}"));
    let job = match mode {
        Mode::InprocLat | Mode::InprocThr => {
            let (pattern, url, used) = inproc_opts(mode, &args)?;
            let rest = &args[used..];
            if rest.len() != 2 {
                return Err(usage(if mode == Mode::InprocLat {
                    "inproc_lat <msg-size> <count>"
                } else {
                    "inproc_thr <msg-size> <count>"
                }));
            }
            let default_url = if mode == Mode::InprocLat {
                INPROC_LAT_URL
            } else {
                INPROC_THR_URL
            };
            Job {
                mode,
                url: url.unwrap_or_else(|| default_url.to_string()),
                size: parse_int(&rest[0], "message size")? as usize,
                count: parse_int(&rest[1], "count")?,
                pattern,
                runtime,
                threads,
                subscribers: 1,
                pace: fanout::PublisherPace::default(),
                recv_set: false,
                batches,
                busy_poll,
                tls: tls.clone(),
            }
        }
        Mode::FanoutThr | Mode::RawFanoutThr => {
            let pace = fanout::take_options(mode, &mut args)?;
            let (url, subscribers, size, count) = fanout::parse_args(mode, &args)?;
            Job {
                mode,
                url,
                size,
                count,
                pattern: Pattern::PAIR1,
                runtime,
                threads,
                subscribers,
                pace,
                recv_set: false,
                batches,
                busy_poll,
                tls: tls.clone(),
            }
        }
        Mode::ReqCtxThr | Mode::RawPipelinedThr | Mode::RawThreadsThr => {
            let recv_set = ctx::take_set_option(mode, &mut args);
            let (url, in_flight, size, count) = ctx::parse_args(mode, &args)?;
            Job {
                mode,
                url,
                size,
                count,
                pattern: Pattern::PAIR1,
                runtime,
                threads,
                subscribers: in_flight,
                pace: fanout::PublisherPace::default(),
                recv_set,
                batches,
                busy_poll,
                tls: tls.clone(),
            }
        }
        _ => {
            let (u, what) = match mode {
                Mode::LocalLat => (
                    "local_lat <listen-addr> <msg-size> <roundtrips>",
                    "round-trips",
                ),
                Mode::RemoteLat => (
                    "remote_lat <connect-to> <msg-size> <roundtrips>",
                    "round-trips",
                ),
                Mode::LocalThr => ("local_thr <listen-addr> <msg-size> <count>", "count"),
                Mode::RemoteThr => ("remote_thr <connect-to> <msg-size> <count>", "count"),
                Mode::RawLocalLat => (
                    "raw_local_lat <tcp-listen-addr> <msg-size> <roundtrips>",
                    "round-trips",
                ),
                Mode::RawRemoteLat => (
                    "raw_remote_lat <tcp-connect-to> <msg-size> <roundtrips>",
                    "round-trips",
                ),
                Mode::RawLocalThr => (
                    "raw_local_thr <tcp-listen-addr> <msg-size> <count>",
                    "count",
                ),
                _ => (
                    "raw_remote_thr <tcp-connect-to> <msg-size> <count>",
                    "count",
                ),
            };
            if args.len() != 3 {
                return Err(usage(u));
            }
            Job {
                mode,
                url: args[0].clone(),
                size: parse_int(&args[1], "message size")? as usize,
                count: parse_int(&args[2], what)?,
                pattern: Pattern::PAIR1,
                runtime,
                threads,
                subscribers: 1,
                pace: fanout::PublisherPace::default(),
                recv_set: false,
                batches,
                busy_poll,
                tls: tls.clone(),
            }
        }
    };
    Ok(PerfArgs::Run(job))
}

/// Runs a job on a fresh runtime of its kind and returns what it prints.
///
/// # Errors
/// The test's errors.
pub fn run(job: &Job) -> Result<String, PerfError> {
    let job = job.clone();
    let threads = job.threads;
    if let Some(limit) = job.busy_poll {
        sp_transport::set_busy_poll_limit(limit);
    }
    if let Some(tls) = job
        .tls
        .config()
        .map_err(|e| PerfError(format!("tls: {e}")))?
    {
        sp::use_tls(tls);
    }
    if matches!(
        job.mode,
        Mode::ReqCtxThr | Mode::RawPipelinedThr | Mode::RawThreadsThr
    ) {
        return ctx::run(&job);
    }
    let out = match job.runtime {
        _ if job.mode.is_raw() => block_on_tokio(threads, |_| run_raw(job)),
        RuntimeKind::Tokio => block_on_tokio(threads, |rt| run_sp(rt, job)),
        RuntimeKind::Smol => block_on_smol(threads, |rt| run_sp(rt, job)),
        RuntimeKind::Blocking => Ok(crate::blocking::block_on(run_sp(
            crate::blocking::Blocking,
            job,
        ))),
    };
    out.map_err(PerfError)?
}

/// The SP modes, the same code on every runtime.
async fn run_sp<R: ToolRuntime>(rt: R, job: Job) -> Result<String, PerfError> {
    let (url, size, count, pattern) = (job.url.as_str(), job.size, job.count, job.pattern);
    let rt = &rt;
    Ok(match job.mode {
        Mode::LocalLat => {
            sp::latency_server(rt, pattern, url, size, count, None).await?;
            String::new()
        }
        Mode::RemoteLat => sp::latency_client(rt, pattern, url, size, count)
            .await?
            .render(),
        Mode::LocalThr => {
            sp::throughput_server(rt, pattern, url, size, count, job.batches.recv, None)
                .await?
                .render()
        }
        Mode::RemoteThr => {
            sp::throughput_client(rt, pattern, url, size, count, job.batches.send).await?;
            String::new()
        }
        Mode::InprocLat => sp::inproc_lat(rt, pattern, url, size, count)
            .await?
            .render(),
        Mode::InprocThr => sp::inproc_thr(rt, pattern, url, size, count, job.batches)
            .await?
            .render(),
        Mode::FanoutThr => fanout::pubsub(rt, url, job.subscribers, size, count, job.pace)
            .await?
            .render(),
        raw => return Err(PerfError(format!("{raw:?} is not an SP mode"))),
    })
}

/// The raw-TCP baselines (tokio only).
async fn run_raw(job: Job) -> Result<String, PerfError> {
    let (url, size, count) = (job.url.as_str(), job.size, job.count);
    Ok(match job.mode {
        Mode::RawLocalLat => {
            raw::latency_server(url, size, count).await?;
            String::new()
        }
        Mode::RawRemoteLat => raw::latency_client(url, size, count).await?.render(),
        Mode::RawLocalThr => raw::throughput_server(url, size, count).await?.render(),
        Mode::RawRemoteThr => {
            raw::throughput_client(url, size, count).await?;
            String::new()
        }
        Mode::RawFanoutThr => fanout::raw(url, job.subscribers, size, count)
            .await?
            .render(),
        sp_mode => return Err(PerfError(format!("{sp_mode:?} is not a raw mode"))),
    })
}

/// Runs sp-perf with the given argv and returns the exit status.
pub fn main_with_args(argv: Vec<OsString>) -> i32 {
    let job = match parse(argv) {
        Ok(PerfArgs::Run(job)) => job,
        Ok(PerfArgs::Clap(text, code)) => {
            if code == 0 {
                print!("{text}");
            } else {
                eprint!("{text}");
            }
            return code;
        }
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    match run(&job) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

/// Runs sp-perf with the process's arguments.
pub fn main() -> i32 {
    main_with_args(std::env::args_os().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(args: &[&str]) -> Result<Job, PerfError> {
        let argv = std::iter::once("sp-perf")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        match parse(argv)? {
            PerfArgs::Run(j) => Ok(j),
            PerfArgs::Clap(text, code) => panic!("clap ({code}): {text}"),
        }
    }

    #[test]
    fn clap_command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn mode_names() {
        assert_eq!(mode_from_name("local_lat"), Some(Mode::LocalLat));
        assert_eq!(mode_from_name("/usr/bin/remote_thr"), Some(Mode::RemoteThr));
        assert_eq!(
            mode_from_name("C:\\bin\\LOCAL_THR.exe"),
            Some(Mode::LocalThr)
        );
        assert_eq!(mode_from_name("latency_client"), Some(Mode::RemoteLat));
        assert_eq!(mode_from_name("throughput_server"), Some(Mode::LocalThr));
        assert_eq!(mode_from_name("local_latx"), None);
        assert_eq!(mode_from_name("sp-perf"), None);
        assert_eq!(mode_from_name("raw_remote_lat"), Some(Mode::RawRemoteLat));
    }

    #[test]
    fn parse_int_rules() {
        assert_eq!(parse_int("0", "count"), Ok(0));
        assert_eq!(parse_int("1000000000", "count"), Ok(1_000_000_000));
        assert_eq!(
            parse_int("1000000001", "count"),
            Err(PerfError("Invalid count".into()))
        );
        assert_eq!(
            parse_int("-1", "count"),
            Err(PerfError("Invalid count".into()))
        );
        assert_eq!(
            parse_int("12x", "message size"),
            Err(PerfError("Invalid message size".into()))
        );
        assert_eq!(
            parse_int("", "count"),
            Err(PerfError("Invalid count".into()))
        );
    }

    #[test]
    fn positional_modes() {
        let j = job(&["local_lat", "tcp://127.0.0.1:5555", "64", "1000"]).unwrap();
        assert_eq!(
            (j.mode, j.url.as_str(), j.size, j.count),
            (Mode::LocalLat, "tcp://127.0.0.1:5555", 64, 1000)
        );
        assert_eq!(
            (j.pattern, j.runtime, j.threads),
            (
                Pattern::PAIR1,
                RuntimeKind::Tokio,
                RuntimeKind::Tokio.default_threads()
            )
        );
        let j = job(&[
            "--threads",
            "4",
            "--runtime",
            "tokio",
            "remote_thr",
            "ipc:///tmp/x",
            "1",
            "2",
        ])
        .unwrap();
        assert_eq!((j.mode, j.threads), (Mode::RemoteThr, 4));
        let j = job(&["-m", "remote_lat", "tcp://h:1", "10", "20"]).unwrap();
        assert_eq!(j.mode, Mode::RemoteLat);
        let j = job(&["--runtime", "smol", "local_thr", "tcp://h:1", "10", "20"]).unwrap();
        assert_eq!((j.mode, j.runtime), (Mode::LocalThr, RuntimeKind::Smol));
        let j = job(&["raw_local_thr", "tcp://127.0.0.1:1", "10", "20"]).unwrap();
        assert_eq!(j.mode, Mode::RawLocalThr);
    }

    #[test]
    fn usage_errors() {
        assert_eq!(
            job(&["local_lat", "tcp://x"]).unwrap_err().0,
            "Usage: local_lat <listen-addr> <msg-size> <roundtrips>"
        );
        assert_eq!(
            job(&["remote_thr", "a", "b", "c", "d"]).unwrap_err().0,
            "Usage: remote_thr <connect-to> <msg-size> <count>"
        );
        assert_eq!(
            job(&["local_thr", "tcp://x", "big", "1"]).unwrap_err().0,
            "Invalid message size"
        );
        assert_eq!(
            job(&["remote_lat", "tcp://x", "1", "many"]).unwrap_err().0,
            "Invalid round-trips"
        );
        assert_eq!(
            job(&["local_thr", "tcp://x", "1", "many"]).unwrap_err().0,
            "Invalid count"
        );
        assert_eq!(
            job(&[]).unwrap_err().0,
            "Unknown program mode? Use -m <mode>."
        );
        assert_eq!(
            job(&["bogus"]).unwrap_err().0,
            "Unknown program mode? Use -m <mode>."
        );
        assert_eq!(
            job(&["--runtime", "blocking", "inproc_thr", "1", "1"])
                .unwrap()
                .runtime,
            RuntimeKind::Blocking
        );
        assert_eq!(
            job(&["--runtime", "async-std", "inproc_thr", "1", "1"])
                .unwrap_err()
                .0,
            "unknown runtime async-std (expected tokio, smol or blocking)"
        );
    }

    #[test]
    fn inproc_options() {
        let j = job(&["inproc_lat", "64", "100"]).unwrap();
        assert_eq!(
            (j.url.as_str(), j.pattern),
            (INPROC_LAT_URL, Pattern::PAIR1)
        );
        let j = job(&["inproc_thr", "64", "100"]).unwrap();
        assert_eq!(
            (j.url.as_str(), j.pattern),
            (INPROC_THR_URL, Pattern::PAIR1)
        );
        let j = job(&["inproc_thr", "--pair0", "64", "100"]).unwrap();
        assert_eq!(j.pattern, Pattern::PAIR0);
        let j = job(&["inproc_lat", "--reqrep0", "--url=inproc://x", "64", "100"]).unwrap();
        assert_eq!(
            (j.url.as_str(), j.pattern),
            ("inproc://x", Pattern::REQREP0)
        );
        let j = job(&[
            "inproc_lat",
            "--url",
            "tcp://127.0.0.1:9",
            "--pair1",
            "1",
            "2",
        ])
        .unwrap();
        assert_eq!(
            (j.url.as_str(), j.pattern),
            ("tcp://127.0.0.1:9", Pattern::PAIR1)
        );
        assert_eq!(
            job(&["inproc_thr", "--reqrep0", "1", "2"]).unwrap_err().0,
            "bad option"
        );
        assert_eq!(
            job(&["inproc_thr", "--pair", "1", "2"]).unwrap_err().0,
            "bad option"
        );
        assert_eq!(
            job(&["inproc_thr", "1"]).unwrap_err().0,
            "Usage: inproc_thr <msg-size> <count>"
        );
    }

    #[test]
    fn inproc_runs_end_to_end_on_every_runtime() {
        for rt in ["tokio", "smol", "blocking"] {
            let runtime = format!("--runtime={rt}");
            let url = |test: &str| format!("--url=inproc://sp-perf-unit-{rt}-{test}");
            let j = job(&[&runtime, "inproc_thr", &url("thr"), "64", "2000"]).unwrap();
            let out = run(&j).unwrap();
            assert!(out.contains("message count: 2000\n"), "{rt}: {out}");
            assert!(out.contains("message size: 64 [B]\n"), "{rt}: {out}");
            let j = job(&[&runtime, "inproc_lat", &url("lat"), "16", "200"]).unwrap();
            let out = run(&j).unwrap();
            assert!(out.contains("round trip count: 200\n"), "{rt}: {out}");
            let j = job(&[
                &runtime,
                "--threads=1",
                "inproc_lat",
                "--reqrep0",
                &url("rr"),
                "8",
                "50",
            ])
            .unwrap();
            assert!(run(&j).unwrap().contains("average latency: "), "{rt}");
        }
    }
}
