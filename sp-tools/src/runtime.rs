//! The `--runtime` choice, and what spcat and sp-perf need from a runtime.
//!
//! The tools' logic is written once, generic over [`ToolRuntime`]: it opens sockets
//! ([`ToolSocket`]), sleeps and spawns through it.
//!
//! * Every async `sp_transport` runtime (tokio, smol) is a `ToolRuntime`, with [`AnySocket`]
//!   as its socket, and `sp_transport::Socket` of a core as its typed socket (sp-perf's timed
//!   loops use those, see [`ToolRuntime::open_typed`]). [`block_on_tokio`] and
//!   [`block_on_smol`] start a runtime with the asked number of worker threads and run a body
//!   as a task on it.
//! * [`crate::blocking::Blocking`] is sp-blocking's: its sockets
//!   ([`crate::socket::BlockingSocket`]) make blocking calls, run inline when the tools await
//!   them, so the body runs on the calling thread; sleeping blocks the thread and spawning
//!   starts a thread.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sp_transport::rt::Runtime;
use sp_transport::{
    Address, Message, PipeEvent, PipeVerdict, RecvRole, Result, SendResult, SocketStats,
};

use crate::socket::{AnySocket, Protocol, ToolCore, Unsupported};

/// The runtimes `--runtime` can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RuntimeKind {
    /// tokio (`sp-tokio`), the default.
    #[default]
    Tokio,
    /// smol / async-io (`sp-smol`).
    Smol,
    /// Plain threads and blocking calls (`sp-blocking`), through [`crate::blocking`].
    Blocking,
}

impl RuntimeKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Tokio => "tokio",
            RuntimeKind::Smol => "smol",
            RuntimeKind::Blocking => "blocking",
        }
    }

    /// The worker threads the runtime starts by itself, which the tools use unless told
    /// otherwise: tokio's multi-threaded runtime one per core; smol's global executor
    /// `SMOL_THREADS`, else one. (sp-blocking runs its own fixed pool and ignores it.)
    pub fn default_threads(self) -> usize {
        match self {
            RuntimeKind::Tokio => std::thread::available_parallelism().map_or(1, |n| n.get()),
            RuntimeKind::Smol => std::env::var("SMOL_THREADS")
                .ok()
                .and_then(|n| n.parse().ok())
                .filter(|&n: &usize| n > 0)
                .unwrap_or(1),
            RuntimeKind::Blocking => 1,
        }
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RuntimeKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tokio" => Ok(RuntimeKind::Tokio),
            "smol" => Ok(RuntimeKind::Smol),
            "blocking" => Ok(RuntimeKind::Blocking),
            other => Err(format!(
                "unknown runtime {other} (expected tokio, smol or blocking)"
            )),
        }
    }
}

/// A socket of any protocol, as the tools use it.
pub trait ToolSocket: Clone + Send + Sync + 'static {
    /// The protocol this socket speaks.
    fn protocol(&self) -> Protocol;
    /// Connects to `url`; the first attempt happens now and its failure is returned.
    fn dial(&self, url: &str) -> impl Future<Output = Result<()>> + Send;
    /// Starts a dialer that keeps retrying in the background.
    fn dial_nonblocking(&self, url: &str) -> Result<()>;
    /// Listens on `url`, returning the bound address.
    fn listen(&self, url: &str) -> impl Future<Output = Result<Address>> + Send;
    /// Sends one message; a message that could not be sent comes back in the error.
    fn send(&self, msg: impl Into<Message> + Send) -> impl Future<Output = SendResult> + Send;
    /// Sends from the front of `msgs` what the protocol takes, waiting for the first (the
    /// sockets' `send_many`); returns how many, removed from `msgs`.
    fn send_many(&self, msgs: &mut Vec<Message>) -> impl Future<Output = Result<usize>> + Send;
    /// Receives one message.
    fn recv(&self) -> impl Future<Output = Result<Message>> + Send;
    /// Receives up to `limit` messages into `buf`: waits for the first, then appends what
    /// else is ready (the sockets' `recv_many`); returns how many.
    fn recv_many(
        &self,
        buf: &mut Vec<Message>,
        limit: usize,
    ) -> impl Future<Output = Result<usize>> + Send;
    /// Sets the send timeout (`None`: wait forever).
    fn set_send_timeout(&self, timeout: Option<Duration>);
    /// Sets the receive timeout (`None`: wait forever).
    fn set_recv_timeout(&self, timeout: Option<Duration>);
    /// The receive timeout (`None`: wait forever).
    fn recv_timeout(&self) -> Option<Duration>;
    /// Sets the largest accepted message, for endpoints created afterwards.
    fn set_recv_max_size(&self, max: usize) -> Result<()>;
    /// Sets the reconnect back-off for dialers created afterwards.
    fn set_reconnect_backoff(&self, min: Duration, max: Duration);
    /// Sets the TLS configuration for `tls+tcp://` and `wss://` endpoints created afterwards.
    fn set_tls(&self, config: sp_transport::TlsConfig);
    /// Adds a SUB topic.
    ///
    /// # Errors
    /// [`sp_transport::Error::NotSupported`] for protocols other than SUB.
    fn subscribe(&self, topic: &[u8]) -> Result<()>;
    /// Sets the pipe hook: it sees every pipe event, on the socket's driver tasks or threads.
    fn set_pipe_hook(&self, hook: impl Fn(&PipeEvent) -> PipeVerdict + Send + Sync + 'static);
    /// Returns a snapshot of the socket's counters.
    fn stats(&self) -> SocketStats;
    /// Closes the socket, waiting (up to the linger time) until what was sent is written.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// What the tools need from a runtime: sockets, a clock and spawning.
pub trait ToolRuntime: Clone + Send + Sync + 'static {
    /// The runtime's socket type.
    type Socket: ToolSocket;
    /// The runtime's socket of the core `P`, as its own type (see [`ToolRuntime::open_typed`]).
    type Typed<P: ToolCore>: ToolSocket;

    /// Opens a socket of `protocol` on this runtime.
    ///
    /// # Errors
    /// [`Unsupported`] for a protocol this build does not implement yet.
    fn open(&self, protocol: Protocol) -> std::result::Result<Self::Socket, Unsupported>;

    /// Opens a socket of the core `P`, typed: its calls go straight to the adapter's socket,
    /// with no enum to match (sp-perf's loops use these).
    fn open_typed<P: ToolCore>(&self) -> Self::Typed<P>;

    /// Waits for `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send;

    /// The shortest wait [`ToolRuntime::sleep`] keeps to: a pacing loop sleeps once it is
    /// this far ahead of its schedule and yields while it is less. tokio's and async-io's
    /// timers fire on a millisecond tick at best.
    fn sleep_granularity(&self) -> Duration {
        Duration::from_millis(1)
    }

    /// Lets other work run before the caller goes on: other tasks on an async runtime.
    fn yield_now(&self) -> impl Future<Output = ()> + Send {
        YieldNow(false)
    }

    /// Runs `fut` as its own task; the returned future gives its output (`None` if the task
    /// went away without finishing).
    fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static;

    /// Receives on every socket at once, each message going to `take` with that socket's
    /// state, until `take` returns false for the socket or a receive fails (its timeout, say);
    /// gives back the states. Here a task per socket; sp-blocking waits on all of them from
    /// one thread instead (a thread per socket costs a thread switch per message).
    fn recv_each<P: ToolCore + RecvRole, T: Send + 'static>(
        &self,
        sockets: Vec<Self::Typed<P>>,
        states: Vec<T>,
        take: fn(&mut T, Message) -> bool,
    ) -> impl Future<Output = Option<Vec<T>>> + Send + 'static {
        let tasks: Vec<_> = sockets
            .into_iter()
            .zip(states)
            .map(|(socket, mut state)| {
                self.spawn(async move {
                    while let Ok(msg) = socket.recv().await {
                        if !take(&mut state, msg) {
                            break;
                        }
                    }
                    state
                })
            })
            .collect();
        async move {
            let mut states = Vec::with_capacity(tasks.len());
            for task in tasks {
                states.push(task.await?);
            }
            Some(states)
        }
    }
}

impl<R: Runtime> ToolRuntime for R {
    type Socket = AnySocket<R>;
    type Typed<P: ToolCore> = sp_transport::Socket<R, P>;

    fn open(&self, protocol: Protocol) -> std::result::Result<AnySocket<R>, Unsupported> {
        AnySocket::open(protocol, self)
    }

    fn open_typed<P: ToolCore>(&self) -> sp_transport::Socket<R, P> {
        sp_transport::Socket::with_runtime(self.clone())
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> + Send {
        let mut timer = self.sleep_until(Instant::now() + d);
        std::future::poll_fn(move |cx| timer.poll_sleep(cx))
    }

    fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        Runtime::spawn(
            self,
            Box::pin(async move {
                let _ = tx.send(fut.await);
            }),
        );
        async move { rx.await.ok() }
    }
}

/// Returns `Pending` once (waking itself at once), so the executor runs other tasks first.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Runs the future `make` builds on a fresh multi-threaded tokio runtime with `threads` worker
/// threads. The body runs as a task on a worker, beside the sockets' pipe tasks: from
/// `block_on` it would run on the calling thread and every hand-off would cross threads.
///
/// # Errors
/// The runtime cannot start, or the body panicked.
pub fn block_on_tokio<F>(
    threads: usize,
    make: impl FnOnce(sp_tokio::Tokio) -> F,
) -> std::result::Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let task = rt.spawn(make(sp_tokio::Tokio::new(rt.handle().clone())));
    rt.block_on(task)
        .map_err(|e| format!("benchmark task failed: {e}"))
}

/// Runs the future `make` builds on a fresh smol executor driven by `threads` threads (each in
/// `smol::block_on`, which also drives async-io's reactor). The body runs as a task on that
/// executor, beside the sockets' pipe tasks, as with [`block_on_tokio`].
///
/// # Errors
/// The body panicked.
pub fn block_on_smol<F>(
    threads: usize,
    make: impl FnOnce(sp_smol::Smol) -> F,
) -> std::result::Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let executor = Arc::new(smol::Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let workers: Vec<_> = (0..threads.max(1))
        .map(|i| {
            let (ex, stopped) = (executor.clone(), stopped.clone());
            std::thread::Builder::new()
                .name(format!("sp-smol-{i}"))
                .spawn(move || smol::block_on(ex.run(stopped.recv())))
                .map_err(|e| format!("cannot start the runtime: {e}"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let body = make(sp_smol::Smol::with_executor(executor.clone()));
    // A panic becomes an error, as it does through tokio's JoinHandle.
    let task = executor.spawn(smol::future::FutureExt::catch_unwind(AssertUnwindSafe(
        body,
    )));
    // Wait with a plain parker, not `smol::block_on`: that one would let this idle thread drive
    // the reactor, and every IO event would then hop to an executor thread.
    let out = smol::future::block_on(task);
    drop(stop);
    for w in workers {
        let _ = w.join();
    }
    out.map_err(|_| "benchmark task failed: it panicked".to_string())
}
