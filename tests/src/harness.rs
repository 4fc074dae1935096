//! Runtime-neutral harness for suites that run the same async test bodies on every adapter
//! (tokio, smol, and sp-blocking through [`blocking_shim`]).
//!
//! Everything here waits on async-io timers (smol's), which work under any executor, or on
//! plain threads; nothing needs a tokio runtime. (The polling helpers at the crate root, such
//! as [`crate::wait_until`], sleep on tokio's timer instead.)
//!
//! * [`run_tokio`], [`run_smol`], [`run_blocking`] drive a body to completion on one adapter's
//!   executor; [`tokio_runtime`] builds the runtime [`run_tokio`] uses, for a test that keeps it.
//! * [`with_limit`] fails a body that overruns its time limit.
//! * [`wait_for`] polls a condition with a deadline.
//! * [`background`] runs a second party on its own thread.
//! * [`EventsWithin`] reads pipe events with a deadline, whatever the adapter.

use std::future::Future;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::Timer;
use sp_transport::PipeEvent;

/// Fails the test if `body` has not finished within `limit`; otherwise returns its output.
pub async fn with_limit<T>(limit: Duration, body: impl Future<Output = T>) -> T {
    smol::future::or(body, async {
        Timer::after(limit).await;
        panic!("test body still running after {limit:?}");
    })
    .await
}

/// Polls `cond` every few milliseconds (on an async-io timer, which works under any executor)
/// until it holds; panics after `deadline`.
pub async fn wait_for(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        Timer::after(Duration::from_millis(2)).await;
    }
}

/// Runs `body` on its own thread (its own `block_on`), for a second party that must make
/// progress while the test body waits. Works for every adapter: socket calls can be awaited
/// from any thread.
pub fn background<T: Send + 'static>(
    body: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    std::thread::spawn(move || smol::block_on(body))
}

/// A fresh multi-thread tokio runtime with two workers and every driver enabled.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("start a tokio runtime")
}

/// Drives `body` on a fresh [`tokio_runtime`], which shuts down when it returns.
pub fn run_tokio<T>(body: impl Future<Output = T>) -> T {
    tokio_runtime().block_on(body)
}

/// Drives `body` on smol's executor.
pub fn run_smol<T>(body: impl Future<Output = T>) -> T {
    smol::block_on(body)
}

/// The blocking adapter's calls run inline: any executor that parks the thread will do.
pub fn run_blocking<T>(body: impl Future<Output = T>) -> T {
    smol::future::block_on(body)
}

/// Reads pipe events with a deadline, whatever the adapter.
// The futures are awaited in place by the test bodies, never spawned: no `Send` bound needed.
#[allow(async_fn_in_trait)]
pub trait EventsWithin {
    /// The next event, or `None` after `d` (or at the end of the stream).
    async fn within(&mut self, d: Duration) -> Option<PipeEvent>;
}

impl EventsWithin for sp_transport::PipeEvents {
    async fn within(&mut self, d: Duration) -> Option<PipeEvent> {
        smol::future::or(self.next(), async {
            Timer::after(d).await;
            None
        })
        .await
    }
}

/// sp-blocking behind the async API of `sp_transport`'s sockets and handles: each `async fn`
/// makes the blocking call inline, so awaiting it blocks the calling thread until the call
/// returns (every one of them bounded by a timeout or deadline). Everything else is
/// sp-blocking's own, through `Deref`.
pub mod blocking_shim {
    use std::time::{Duration, Instant};

    use sp_transport::{
        Message, PipeEvent, RecvRole, Result, SendResult, SendRole, SocketCore, ToAddress,
    };

    pub use sp_blocking::{set_busy_poll_limit, Listener, Pipe, DEFAULT_BUSY_POLL};
    pub use sp_transport::Error;

    /// An sp-blocking socket whose blocking calls are awaited like the async adapters'.
    pub struct Socket<P: SocketCore>(sp_blocking::Socket<P>);

    impl<P: SocketCore> Socket<P> {
        pub fn new() -> Self {
            Self(sp_blocking::Socket::new())
        }

        pub async fn listen(&self, url: impl ToAddress) -> Result<Listener> {
            self.0.listen(url)
        }

        pub async fn dial(&self, url: impl ToAddress) -> Result<Dialer> {
            self.0.dial(url).map(Dialer)
        }

        pub fn dialer(&self, url: impl ToAddress) -> Result<Dialer> {
            self.0.dialer(url).map(Dialer)
        }

        pub fn dial_nonblocking(&self, url: impl ToAddress) -> Result<Dialer> {
            self.0.dial_nonblocking(url).map(Dialer)
        }

        pub fn pipe_events(&self) -> PipeEvents {
            PipeEvents(self.0.pipe_events())
        }

        pub async fn adopt_tcp(&self, stream: std::net::TcpStream) -> Result<Pipe> {
            self.0.adopt_tcp(stream)
        }

        #[cfg(unix)]
        pub async fn adopt_ipc(&self, stream: std::os::unix::net::UnixStream) -> Result<Pipe> {
            self.0.adopt_ipc(stream)
        }

        pub async fn close(&self) {
            self.0.close()
        }
    }

    impl<P: SendRole> Socket<P> {
        pub async fn send(&self, msg: impl Into<Message>) -> SendResult {
            self.0.send(msg)
        }

        pub async fn writable_until(&self, deadline: Instant) -> Result<()> {
            self.0.writable_until(deadline)
        }

        pub async fn send_until(&self, msg: impl Into<Message>, deadline: Instant) -> SendResult {
            self.0.send_until(msg, deadline)
        }

        pub async fn send_many(&self, msgs: &mut Vec<Message>) -> Result<usize> {
            self.0.send_many(msgs)
        }
    }

    impl<P: RecvRole> Socket<P> {
        pub async fn recv(&self) -> Result<Message> {
            self.0.recv()
        }

        pub async fn recv_until(&self, deadline: Instant) -> Result<Message> {
            self.0.recv_until(deadline)
        }

        pub async fn recv_many(&self, buf: &mut Vec<Message>, limit: usize) -> Result<usize> {
            self.0.recv_many(buf, limit)
        }

        pub async fn readable_until(&self, deadline: Instant) -> Result<()> {
            self.0.readable_until(deadline)
        }
    }

    impl<P: SocketCore> Default for Socket<P> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<P: SocketCore> Clone for Socket<P> {
        fn clone(&self) -> Self {
            Self(self.0.clone())
        }
    }

    impl<P: SocketCore> std::ops::Deref for Socket<P> {
        type Target = sp_blocking::Socket<P>;

        fn deref(&self) -> &Self::Target {
            &self.0
        }
    }

    /// A dialer whose blocking `start` is awaited like the async adapters'.
    #[derive(Debug)]
    pub struct Dialer(sp_blocking::Dialer);

    impl Dialer {
        pub async fn start(&self) -> Result<()> {
            self.0.start()
        }
    }

    impl std::ops::Deref for Dialer {
        type Target = sp_blocking::Dialer;

        fn deref(&self) -> &Self::Target {
            &self.0
        }
    }

    /// Pipe events read with blocking calls, each bounded by a deadline.
    pub struct PipeEvents(sp_blocking::PipeEvents);

    impl PipeEvents {
        pub fn try_next(&mut self) -> Option<PipeEvent> {
            self.0.try_recv()
        }
    }

    impl super::EventsWithin for PipeEvents {
        async fn within(&mut self, d: Duration) -> Option<PipeEvent> {
            self.0.recv_until(Instant::now() + d)
        }
    }

    mod typed {
        use super::Socket;
        sp_transport::protocol_sockets!(Socket);
    }
    pub use typed::*;
}
