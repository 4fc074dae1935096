//! Blocking handles to a socket's endpoints ([`Dialer`], [`Listener`]) and its pipe events
//! ([`PipeEvents`]): the `sp-tokio` types, with blocking calls where those wait.

use std::fmt;
use std::time::{Duration, Instant};

use sp_transport::{
    Address, EndpointId, EndpointOptions, EndpointStats, PipeEvent, Result, TlsConfig, ToAddress,
};

use crate::runtime::{block_on, run};

/// Writes the methods both endpoint handles forward unchanged.
macro_rules! forward_endpoint_methods {
    () => {
        /// Returns the endpoint's ID (pipes name it in `Pipe::endpoint`).
        pub fn id(&self) -> EndpointId {
            self.inner.id()
        }

        /// Returns the URL the endpoint was created with.
        pub fn url(&self) -> &Address {
            self.inner.url()
        }

        /// Returns a copy of this endpoint's options.
        pub fn options(&self) -> EndpointOptions {
            self.inner.options()
        }

        /// Replaces this endpoint's options (checked first).
        ///
        /// # Errors
        /// [`Error::InvalidOption`](crate::Error::InvalidOption).
        pub fn set_options(&self, opts: EndpointOptions) -> Result<()> {
            self.inner.set_options(opts)
        }

        /// Sets the largest message accepted from a peer (0: unlimited).
        ///
        /// # Errors
        /// [`Error::InvalidOption`](crate::Error::InvalidOption) for 2^60 or more.
        pub fn set_recv_max_size(&self, max: usize) -> Result<()> {
            self.inner.set_recv_max_size(max)
        }

        /// Sets `TCP_NODELAY` for connections made from now on.
        pub fn set_tcp_nodelay(&self, nodelay: bool) {
            self.inner.set_tcp_nodelay(nodelay);
        }

        /// Sets `SO_KEEPALIVE` for connections made from now on.
        pub fn set_tcp_keepalive(&self, keepalive: bool) {
            self.inner.set_tcp_keepalive(keepalive);
        }

        /// Sets how long a peer may take to complete its handshake.
        ///
        /// # Errors
        /// [`Error::InvalidOption`](crate::Error::InvalidOption) for zero.
        pub fn set_handshake_timeout(&self, timeout: Duration) -> Result<()> {
            self.inner.set_handshake_timeout(timeout)
        }

        /// Sets this endpoint's TLS configuration, for connections made from now on (a
        /// running listener takes a renewed certificate for the connections it accepts
        /// next; see `sp_transport::Listener::set_tls`).
        pub fn set_tls(&self, config: TlsConfig) {
            self.inner.set_tls(config);
        }

        /// Returns this endpoint's counters now.
        pub fn stats(&self) -> EndpointStats {
            self.inner.stats()
        }

        /// Returns true once the endpoint was closed.
        pub fn is_closed(&self) -> bool {
            self.inner.is_closed()
        }

        /// Closes this endpoint and every pipe it made; the socket carries on.
        ///
        /// # Errors
        /// [`Error::Closed`](crate::Error::Closed) when it was closed already.
        pub fn close(&self) -> Result<()> {
            self.inner.close()
        }
    };
}

/// A dialer (see [`sp_transport::Dialer`]), with a blocking [`Dialer::start`].
#[derive(Clone)]
pub struct Dialer {
    inner: sp_transport::Dialer,
}

impl Dialer {
    pub(crate) fn new(inner: sp_transport::Dialer) -> Self {
        Self { inner }
    }

    forward_endpoint_methods!();

    /// Sets the reconnect back-off (first wait about `min`, doubling up to `max`).
    pub fn set_reconnect(&self, min: Duration, max: Duration) {
        self.inner.set_reconnect(min, max);
    }

    /// Starts the dialer, blocking until its first connection and handshake are done. If that
    /// fails, the error is returned and the dialer is closed.
    ///
    /// # Errors
    /// As [`sp_transport::Dialer::start`].
    pub fn start(&self) -> Result<()> {
        run(self.inner.start())
    }

    /// Starts the dialer in the background; returns at once.
    ///
    /// # Errors
    /// As [`sp_transport::Dialer::start_nonblocking`].
    pub fn start_nonblocking(&self) -> Result<()> {
        self.inner.start_nonblocking()
    }
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A listener (see [`sp_transport::Listener`]). It displays as its bound address, and a dial
/// takes it as an address.
#[derive(Clone)]
pub struct Listener {
    inner: sp_transport::Listener,
}

impl Listener {
    pub(crate) fn new(inner: sp_transport::Listener) -> Self {
        Self { inner }
    }

    forward_endpoint_methods!();

    /// Binds and starts accepting; returns the bound address.
    ///
    /// # Errors
    /// As [`sp_transport::Listener::start`].
    pub fn start(&self) -> Result<Address> {
        self.inner.start()
    }

    /// Sets the file mode bits of an `ipc://` listener's socket file, applied when it binds.
    ///
    /// # Errors
    /// As [`sp_transport::Listener::set_ipc_permissions`].
    pub fn set_ipc_permissions(&self, mode: u32) -> Result<()> {
        self.inner.set_ipc_permissions(mode)
    }

    /// Sets which web pages may connect to a `ws://` or `wss://` listener.
    ///
    /// # Errors
    /// As [`sp_transport::Listener::set_ws_origins`].
    pub fn set_ws_origins(&self, policy: sp_transport::OriginPolicy) -> Result<()> {
        self.inner.set_ws_origins(policy)
    }

    /// Serves plain HTTP `GET` requests on a `ws://` or `wss://` listener's port.
    ///
    /// # Errors
    /// As [`sp_transport::Listener::set_http_handler`].
    pub fn set_http_handler(&self, handler: sp_transport::HttpHandler) -> Result<()> {
        self.inner.set_http_handler(handler)
    }

    /// Returns the bound address once started, else the URL it was created with.
    pub fn address(&self) -> Address {
        self.inner.address()
    }
}

impl ToAddress for Listener {
    fn to_address(&self) -> Result<Address> {
        Ok(self.address())
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// The pipe events of a socket, read with blocking calls or as an iterator (which ends once
/// the socket is closed and its last pipe detached). See [`sp_transport::PipeEvents`].
pub struct PipeEvents {
    inner: sp_transport::PipeEvents,
}

impl PipeEvents {
    pub(crate) fn new(inner: sp_transport::PipeEvents) -> Self {
        Self { inner }
    }

    /// Blocks until the next event; `None` once the socket is closed and every event read.
    pub fn recv(&mut self) -> Option<PipeEvent> {
        block_on(self.inner.next())
    }

    /// Blocks until the next event or `deadline`; `None` at the deadline or the end.
    pub fn recv_until(&mut self, deadline: Instant) -> Option<PipeEvent> {
        let inner = &mut self.inner;
        block_on(async move {
            let mut sleep = std::pin::pin!(crate::runtime::sleep_until(deadline));
            std::future::poll_fn(|cx| {
                if let std::task::Poll::Ready(e) = inner.poll_next_event(cx) {
                    return std::task::Poll::Ready(e);
                }
                sleep.as_mut().poll(cx).map(|()| None)
            })
            .await
        })
    }

    /// Returns the next buffered event without blocking.
    pub fn try_recv(&mut self) -> Option<PipeEvent> {
        self.inner.try_next()
    }

    /// Returns how many events were dropped because the buffer was full.
    pub fn missed(&self) -> u64 {
        self.inner.missed()
    }
}

impl Iterator for PipeEvents {
    type Item = PipeEvent;

    fn next(&mut self) -> Option<PipeEvent> {
        self.recv()
    }
}

impl fmt::Debug for PipeEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

use std::future::Future;
