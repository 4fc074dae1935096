//! A simulated network for the shared driver: [`SimRuntime`] runs sockets on turmoil's hosts.
//!
//! turmoil (tokio-rs's deterministic simulator) runs many hosts in one thread, each on a
//! tokio runtime with a paused clock that the simulation advances, and connects them by a
//! network that it can delay, hold, partition and crash. [`SimRuntime`] is one more
//! [`Runtime`] for the driver, exactly like sp-tokio's: it spawns on the host's tokio runtime
//! and reads tokio's clock, so every timer of the socket (REQ resends, survey deadlines,
//! reconnect back-off, handshake time-outs) runs in virtual time; only TCP goes to turmoil's
//! network (`bind_tcp`, `connect_tcp`, `resolve`), and the random seeds come from the
//! simulation's seed ([`Runtime::random_u64`]), so a seed replays a run exactly.
//!
//! How turmoil's network differs from a real one, and what the scenarios use:
//! * `hold`/`release` delays every segment between two hosts until the release, in order:
//!   what a real TCP makes of a partition that heals before it gives up (it retransmits).
//! * `partition` drops segments. turmoil's TCP has no retransmission, so a stream that lost a
//!   segment stalls for good; connection attempts across it are refused at once.
//! * `crash` drops a host's runtime with every task and stream on it; `bounce` starts its
//!   software again from the beginning.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sp_core::rng::SplitMix64;
use sp_transport::rt::{
    Acceptor, BoxFuture, ConnInfo, Connected, IpcListener, Runtime, Sleep, TcpOptions,
};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The socket types of every protocol on [`SimRuntime`] (`sockets::Req`, `sockets::XRep`, ...).
pub mod sockets {
    /// A socket of protocol `P` on the simulated network.
    pub type SimSocket<P> = sp_transport::Socket<super::SimRuntime, P>;
    sp_transport::protocol_sockets!(SimSocket);
}

/// A [`Runtime`] whose TCP is turmoil's simulated network and whose clock is the simulation's.
///
/// Create one inside a host's software (it takes the host's tokio runtime) with a seed drawn
/// from the scenario's seed, and open sockets on it with `Socket::with_runtime`.
#[derive(Clone, Debug)]
pub struct SimRuntime {
    tokio: sp_tokio::Tokio,
    rng: Arc<Mutex<SplitMix64>>,
}

impl SimRuntime {
    /// The runtime of the host whose software calls this; `seed` decides every random number
    /// its sockets draw.
    ///
    /// # Panics
    /// Outside a turmoil host (there is no tokio runtime to take).
    pub fn new(seed: u64) -> Self {
        Self {
            tokio: sp_tokio::Tokio::default(),
            rng: Arc::new(Mutex::new(SplitMix64::new(seed))),
        }
    }
}

impl Runtime for SimRuntime {
    fn spawn(&self, fut: BoxFuture<'static, ()>) {
        self.tokio.spawn(fut);
    }

    fn sleep_until(&self, deadline: Instant) -> Box<dyn Sleep> {
        self.tokio.sleep_until(deadline)
    }

    fn now(&self) -> Instant {
        self.tokio.now()
    }

    fn random_u64(&self) -> u64 {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_u64()
    }

    /// Host names are the simulation's (`turmoil::lookup`: a name no host has gets an address
    /// nobody listens on, so dialing it is refused).
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, io::Result<Vec<SocketAddr>>> {
        let ip = turmoil::lookup(host.as_str());
        Box::pin(std::future::ready(Ok(vec![SocketAddr::new(ip, port)])))
    }

    fn bind_tcp(
        &self,
        addr: SocketAddr,
        opts: TcpOptions,
    ) -> io::Result<(SocketAddr, Box<dyn Acceptor>)> {
        // turmoil binds synchronously inside an async fn: one poll completes it.
        let mut bind = std::pin::pin!(turmoil::net::TcpListener::bind(addr));
        let listener = match bind
            .as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
        {
            Poll::Ready(r) => r?,
            Poll::Pending => return Err(io::Error::other("turmoil's bind did not complete")),
        };
        let local = listener.local_addr()?;
        let listener = Arc::new(listener);
        Ok((
            local,
            Box::new(SimAcceptor {
                listener,
                accepting: None,
                _opts: opts,
            }),
        ))
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
        _opts: TcpOptions,
    ) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(async move { Ok(connected(turmoil::net::TcpStream::connect(addr).await?)) })
    }

    fn tcp_acceptor(
        &self,
        _listener: std::net::TcpListener,
        _opts: TcpOptions,
    ) -> io::Result<Box<dyn Acceptor>> {
        Err(unsupported("an OS TCP listener"))
    }

    fn connect_ipc(&self, _path: PathBuf) -> BoxFuture<'static, io::Result<Connected>> {
        Box::pin(std::future::ready(Err(unsupported("IPC"))))
    }

    fn ipc_acceptor(&self, _listener: IpcListener) -> io::Result<Box<dyn Acceptor>> {
        Err(unsupported("IPC"))
    }

    fn adopt_tcp(&self, _stream: std::net::TcpStream, _opts: TcpOptions) -> io::Result<Connected> {
        Err(unsupported("an OS TCP stream"))
    }

    #[cfg(unix)]
    fn adopt_ipc(&self, _stream: std::os::unix::net::UnixStream) -> io::Result<Connected> {
        Err(unsupported("IPC"))
    }
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the simulated network has no {what}: use tcp:// between simulated hosts"),
    )
}

fn connected(stream: turmoil::net::TcpStream) -> Connected {
    let info = ConnInfo::tcp(stream.local_addr(), stream.peer_addr());
    (Box::new(stream.compat()), info)
}

type Accepting = Pin<Box<dyn Future<Output = io::Result<turmoil::net::TcpStream>> + Send>>;

/// Accepts on a turmoil listener, keeping one `accept` future across polls.
struct SimAcceptor {
    listener: Arc<turmoil::net::TcpListener>,
    accepting: Option<Accepting>,
    _opts: TcpOptions,
}

impl Acceptor for SimAcceptor {
    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Connected>> {
        let fut = self.accepting.get_or_insert_with(|| {
            let listener = self.listener.clone();
            Box::pin(async move { Ok(listener.accept().await?.0) })
        });
        let result = std::task::ready!(fut.as_mut().poll(cx));
        self.accepting = None;
        Poll::Ready(result.map(connected))
    }
}

use std::future::Future;

/// The seeds a scenario runs: `SP_SIM_SEED=n` replays one, `SP_SIM_SEEDS=a..b` runs a range
/// (what `scripts/simulate.sh` sets), otherwise `default` (what the test command runs).
pub fn seeds(default: std::ops::Range<u64>) -> std::ops::Range<u64> {
    if let Ok(one) = std::env::var("SP_SIM_SEED") {
        let n: u64 = one.trim().parse().expect("SP_SIM_SEED is a number");
        return n..n + 1;
    }
    if let Ok(range) = std::env::var("SP_SIM_SEEDS") {
        let (a, b) = range
            .split_once("..")
            .expect("SP_SIM_SEEDS is a range such as 0..1000");
        let a: u64 = a.trim().parse().expect("SP_SIM_SEEDS start is a number");
        let b: u64 = b.trim().parse().expect("SP_SIM_SEEDS end is a number");
        return a..b;
    }
    default
}

/// Derives independent seeds from a scenario seed: the network's, the chaos schedule's and
/// one per host.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    SplitMix64::new(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64()
}

/// A turmoil simulation builder with the scenario's seed and a network with latency.
pub fn builder(seed: u64, duration: Duration) -> turmoil::Builder {
    let mut b = turmoil::Builder::new();
    b.rng_seed(derive_seed(seed, 0))
        .simulation_duration(duration)
        .tick_duration(Duration::from_millis(5))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(25));
    b
}
