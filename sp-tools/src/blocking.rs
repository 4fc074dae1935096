//! The blocking adapter (`sp-blocking`) as a [`ToolRuntime`]: every socket call runs inline
//! and blocks the calling thread, so the tools' `async` logic never waits on an executor.

use std::future::Future;
use std::time::{Duration, Instant};

use sp_blocking::RecvSet;
use sp_transport::{Message, RecvRole};

use crate::runtime::{ToolRuntime, ToolSocket};
use crate::socket::{Protocol, ToolCore, Unsupported};

pub use crate::socket::BlockingSocket;

/// Opens `sp-blocking` sockets; spawned tasks run on threads of their own.
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocking;

impl ToolRuntime for Blocking {
    type Socket = BlockingSocket;
    type Typed<P: ToolCore> = sp_blocking::Socket<P>;

    fn open(&self, protocol: Protocol) -> std::result::Result<BlockingSocket, Unsupported> {
        BlockingSocket::open(protocol, self)
    }

    fn open_typed<P: ToolCore>(&self) -> sp_blocking::Socket<P> {
        sp_blocking::Socket::new()
    }

    async fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }

    /// None: a thread's sleep overshoots by the kernel's timer slack (50 µs by default on
    /// Linux), not by a millisecond tick, so a pacing loop sleeps whenever it is ahead.
    fn sleep_granularity(&self) -> Duration {
        Duration::ZERO
    }

    /// A blocking program's yield: the thread gives its core to other runnable threads. (The
    /// async runtimes' yield, a self-wake, would poll again at once here and spin.)
    async fn yield_now(&self) {
        std::thread::yield_now();
    }

    fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let task = std::thread::spawn(move || block_on(fut));
        async move { task.join().ok() }
    }

    /// One thread waits on every socket with an [`sp_blocking::RecvSet`]. The sockets'
    /// receive timeouts do not apply to a set; the longest of them bounds each wait.
    fn recv_each<P: ToolCore + RecvRole, T: Send + 'static>(
        &self,
        sockets: Vec<sp_blocking::Socket<P>>,
        mut states: Vec<T>,
        take: fn(&mut T, Message) -> bool,
    ) -> impl Future<Output = Option<Vec<T>>> + Send + 'static {
        let task = std::thread::spawn(move || {
            let idle = sockets.iter().filter_map(ToolSocket::recv_timeout).max();
            let mut set = RecvSet::new();
            for (i, socket) in sockets.iter().enumerate() {
                set.add_socket(i, socket);
            }
            while !set.is_empty() {
                // What is ready first, without reading the clock for a deadline: a busy set
                // has a message ready for nearly every call.
                let got = match (set.try_recv(), idle) {
                    (Err(sp_transport::Error::WouldBlock), Some(idle)) => {
                        set.recv_until(Instant::now() + idle)
                    }
                    (Err(sp_transport::Error::WouldBlock), None) => set.recv(),
                    (ready, _) => ready,
                };
                let Ok((i, result)) = got else { break };
                let keep = result.is_ok_and(|msg| take(&mut states[i], msg));
                if !keep {
                    set.remove(&i);
                }
            }
            states
        });
        async move { task.join().ok() }
    }
}

/// Runs the future `make` builds on the calling thread; its socket calls block that thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    smol::future::block_on(fut)
}
