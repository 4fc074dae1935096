//! The blocking adapter (`sp-blocking`) as a [`ToolRuntime`]: every socket call runs inline
//! and blocks the calling thread, so the tools' `async` logic never waits on an executor.

use std::future::Future;
use std::time::Duration;

use crate::runtime::ToolRuntime;
use crate::socket::{Protocol, Unsupported};

pub use crate::socket::BlockingSocket;

/// Opens `sp-blocking` sockets; spawned tasks run on threads of their own.
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocking;

impl ToolRuntime for Blocking {
    type Socket = BlockingSocket;

    fn open(&self, protocol: Protocol) -> std::result::Result<BlockingSocket, Unsupported> {
        BlockingSocket::open(protocol, self)
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
}

/// Runs the future `make` builds on the calling thread; its socket calls block that thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    smol::future::block_on(fut)
}
