//! [`Dialer`] and [`Listener`]: handles to one endpoint of a socket (NNG's `nng_dialer` and
//! `nng_listener`), each with its own options, counters and `close`.
//!
//! A handle is a reference, not an owner: dropping it leaves the endpoint running until it
//! is closed or its socket closes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sp_core::backoff::{BackoffConfig, DEFAULT_RECONNECT_MAX, DEFAULT_RECONNECT_MIN};
use sp_core::frame::DEFAULT_MAX_MESSAGE_SIZE;
use sp_core::handshake::DEFAULT_HANDSHAKE_TIMEOUT;

use crate::addr::Address;
use crate::endpoint::{EndpointCtl, EndpointHost};
use crate::error::{Error, Result};
use crate::pipe::lock;
use crate::pipe_view::EndpointId;
use crate::rt::TcpOptions;
use crate::stats::EndpointStats;
use crate::tls::TlsConfig;
use crate::ws::OriginPolicy;
use crate::ws_http::HttpHandler;

/// The settings of one dialer or listener. A socket holds defaults
/// ([`SocketOptions::endpoint`](crate::SocketOptions::endpoint)); each endpoint copies them when
/// it is created and may then override them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EndpointOptions {
    /// Reconnect back-off for dialers. Default: 100 ms doubling to 2 s.
    pub reconnect: BackoffConfig,
    /// Largest message accepted from a peer, in bytes; 0 means unlimited (claims of 2^60
    /// bytes or more are still refused). Default: 1 MiB.
    pub recv_max_size: usize,
    /// TCP no-delay and keep-alive.
    pub tcp: TcpOptions,
    /// How long a peer may take to complete its handshake (SP, TLS, WebSocket). Default: 10 s.
    pub handshake_timeout: Duration,
    /// TLS for `tls+tcp://` and `wss://`. Default: none (such endpoints fail saying so).
    pub tls: Option<TlsConfig>,
    /// File mode bits of an `ipc://` listener's socket file (NNG's
    /// `NNG_OPT_IPC_PERMISSIONS`), e.g. `0o660` to let a group connect. Default: none (the
    /// process umask decides). A listener reads it when it binds, so a change after its start
    /// does nothing ([`Listener::set_ipc_permissions`] refuses one); a dialer, which makes no
    /// file, never reads it (it may carry it, so that `set_options(options())` works on any
    /// endpoint).
    pub ipc_permissions: Option<u32>,
    /// Which web pages may connect to a `ws://` or `wss://` listener, by the `Origin` header
    /// browsers send. Default: [`OriginPolicy::same_host`] (non-browser peers and pages served
    /// from the listener's own `host:port`); see [`OriginPolicy`] for why.
    pub ws_origins: OriginPolicy,
    /// What a `ws://` or `wss://` listener answers to plain HTTP requests (not upgrades) on
    /// paths where no SP socket listens: static files or an application handler, so that
    /// the page comes from the same port. Default: none (`426 Upgrade Required`).
    pub http_handler: Option<HttpHandler>,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self {
            reconnect: BackoffConfig {
                min: DEFAULT_RECONNECT_MIN,
                max: DEFAULT_RECONNECT_MAX,
            },
            recv_max_size: DEFAULT_MAX_MESSAGE_SIZE,
            tcp: TcpOptions::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            tls: None,
            ipc_permissions: None,
            ws_origins: OriginPolicy::default(),
            http_handler: None,
        }
    }
}

impl EndpointOptions {
    /// Checks every value, naming the first one out of range.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a receive limit of 2^60 or more or a zero handshake
    /// timeout.
    pub fn validate(&self) -> Result<()> {
        check_recv_max_size(self.recv_max_size)?;
        check_handshake_timeout(self.handshake_timeout)
    }
}

pub(crate) fn check_handshake_timeout(timeout: Duration) -> Result<()> {
    if timeout.is_zero() {
        return Err(Error::invalid_option(
            "handshake_timeout",
            "greater than zero",
            "0",
        ));
    }
    Ok(())
}

pub(crate) fn check_recv_max_size(max: usize) -> Result<()> {
    if max as u64 >= sp_core::frame::MAX_LENGTH_CLAIM {
        return Err(Error::invalid_option(
            "recv_max_size",
            "0 (unlimited) to 2^60 - 1 bytes",
            max.to_string(),
        ));
    }
    Ok(())
}

/// Anything that names an address to dial or listen on: a URL (`&str`, `String`), a parsed
/// [`Address`], or a [`Listener`] (its bound address).
pub trait ToAddress {
    /// Returns the address.
    ///
    /// # Errors
    /// [`Error::Address`] for a URL that does not parse.
    fn to_address(&self) -> Result<Address>;
}

impl ToAddress for str {
    fn to_address(&self) -> Result<Address> {
        Ok(Address::parse(self)?)
    }
}

impl ToAddress for String {
    fn to_address(&self) -> Result<Address> {
        self.as_str().to_address()
    }
}

impl ToAddress for Address {
    fn to_address(&self) -> Result<Address> {
        Ok(self.clone())
    }
}

impl ToAddress for Listener {
    fn to_address(&self) -> Result<Address> {
        Ok(self.address())
    }
}

impl<T: ToAddress + ?Sized> ToAddress for &T {
    fn to_address(&self) -> Result<Address> {
        (**self).to_address()
    }
}

/// Writes the option setters dialers and listeners share.
macro_rules! endpoint_option_setters {
    () => {
        /// Returns a copy of this endpoint's options.
        pub fn options(&self) -> EndpointOptions {
            lock(&self.ctl.opts).clone()
        }

        /// Replaces this endpoint's options. Connections made from now on use them.
        ///
        /// # Errors
        /// [`Error::InvalidOption`] naming the first value out of range.
        pub fn set_options(&self, opts: EndpointOptions) -> Result<()> {
            opts.validate()?;
            *lock(&self.ctl.opts) = opts;
            Ok(())
        }

        /// Sets the largest message accepted from a peer (0: unlimited), for connections made
        /// from now on.
        ///
        /// # Errors
        /// [`Error::InvalidOption`] for 2^60 or more.
        pub fn set_recv_max_size(&self, max: usize) -> Result<()> {
            check_recv_max_size(max)?;
            lock(&self.ctl.opts).recv_max_size = max;
            Ok(())
        }

        /// Sets `TCP_NODELAY` for connections made from now on.
        pub fn set_tcp_nodelay(&self, nodelay: bool) {
            lock(&self.ctl.opts).tcp.nodelay = nodelay;
        }

        /// Sets `SO_KEEPALIVE` for connections made from now on.
        pub fn set_tcp_keepalive(&self, keepalive: bool) {
            lock(&self.ctl.opts).tcp.keepalive = keepalive;
        }

        /// Sets how long a peer may take to complete its handshake.
        ///
        /// # Errors
        /// [`Error::InvalidOption`] for zero.
        pub fn set_handshake_timeout(&self, timeout: Duration) -> Result<()> {
            check_handshake_timeout(timeout)?;
            lock(&self.ctl.opts).handshake_timeout = timeout;
            Ok(())
        }

        /// Sets this endpoint's TLS configuration, for connections made from now on: a
        /// dialer's next connection attempt, a listener's next accepted connection. So a
        /// running listener takes a renewed certificate without closing its port or the
        /// pipes it has. A `wss://` port that several listeners share (one per path) uses
        /// the configuration of the listener that opened it.
        ///
        /// A listener checks at start that it has a certificate; a configuration without
        /// one set afterwards refuses the connections that follow (a `tls+tcp://` listener
        /// counts them as [`RefusalReason::Tls`](crate::stats::RefusalReason::Tls)).
        pub fn set_tls(&self, config: TlsConfig) {
            lock(&self.ctl.opts).tls = Some(config);
        }

        /// Returns the endpoint's ID (pipes name it in [`Pipe::endpoint`](crate::Pipe::endpoint)).
        pub fn id(&self) -> EndpointId {
            self.ctl.id
        }

        /// Returns the URL the endpoint was created with.
        pub fn url(&self) -> &Address {
            &self.ctl.url
        }

        /// Returns this endpoint's counters now.
        pub fn stats(&self) -> EndpointStats {
            self.ctl.stats()
        }

        /// Returns true once the endpoint was closed (by [`close`](Self::close) or its
        /// socket).
        pub fn is_closed(&self) -> bool {
            self.ctl.is_closed()
        }

        /// Closes this endpoint and every pipe it made; the socket and its other endpoints
        /// carry on. A listener's address is free again when this returns. What was queued for those pipes is dropped and counted
        /// ([`DropReason::PipeClosed`](crate::stats::DropReason::PipeClosed)).
        ///
        /// # Errors
        /// [`Error::Closed`] when the endpoint was closed already.
        pub fn close(&self) -> Result<()> {
            if self.ctl.is_closed() {
                return Err(Error::Closed);
            }
            self.host.close_endpoint(&self.ctl);
            Ok(())
        }
    };
}

/// A dialer: connects to one address and reconnects after every loss, with its own options.
///
/// From [`Socket::dial`](crate::Socket::dial) (started, first connection made),
/// [`Socket::dial_nonblocking`](crate::Socket::dial_nonblocking) (started, connecting in the
/// background) or [`Socket::dialer`](crate::Socket::dialer) (configure it, then start it).
#[derive(Clone)]
pub struct Dialer {
    pub(crate) ctl: Arc<EndpointCtl>,
    pub(crate) host: Arc<dyn EndpointHost>,
}

impl Dialer {
    endpoint_option_setters!();

    /// Sets the reconnect back-off: the first wait is about `min`, doubling up to `max`
    /// (NNG's `NNG_OPT_RECONNMINT`/`RECONNMAXT`; a zero `max` turns the doubling off, a `max`
    /// below `min` acts like `min`). Takes effect at the dialer's next wait.
    pub fn set_reconnect(&self, min: Duration, max: Duration) {
        lock(&self.ctl.opts).reconnect = BackoffConfig { min, max };
    }

    /// Starts the dialer and waits for its first connection and handshake. If that fails,
    /// the error is returned and the dialer is closed.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future before it completes closes the dialer; no connection
    /// outlives it.
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`], [`Error::ConnectionRefused`], [`Error::Handshake`],
    /// [`Error::Closed`], a TLS or IO error.
    pub async fn start(&self) -> Result<()> {
        self.begin()?;
        self.host.clone().dial(self.ctl.clone()).await
    }

    /// Starts the dialer in the background: it retries with back-off until it connects, then
    /// reconnects after every loss. Returns at once.
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`], [`Error::Closed`], a TLS configuration error.
    pub fn start_nonblocking(&self) -> Result<()> {
        self.begin()?;
        self.host.clone().dial_background(self.ctl.clone())
    }

    fn begin(&self) -> Result<()> {
        if self.ctl.is_closed() {
            return Err(Error::Closed);
        }
        if self.ctl.mark_started() {
            return Err(Error::AlreadyStarted(self.ctl.url.to_string()));
        }
        Ok(())
    }
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dialer")
            .field("id", &self.ctl.id)
            .field("url", &format_args!("{}", self.ctl.url))
            .field("started", &self.ctl.is_started())
            .field("closed", &self.ctl.is_closed())
            .finish()
    }
}

/// A listener: accepts peers on one address, with its own options.
///
/// From [`Socket::listen`](crate::Socket::listen) (bound and accepting) or
/// [`Socket::listener`](crate::Socket::listener) (configure it, then start it). It displays as
/// its bound address, so `listener.to_string()` is a URL to dial; a dial also takes the
/// listener itself.
#[derive(Clone)]
pub struct Listener {
    pub(crate) ctl: Arc<EndpointCtl>,
    pub(crate) host: Arc<dyn EndpointHost>,
}

impl Listener {
    endpoint_option_setters!();

    /// Binds and starts accepting. Returns the bound address, with the real port when the
    /// URL asked for port 0.
    ///
    /// # Errors
    /// [`Error::AlreadyStarted`], [`Error::AddressInUse`], [`Error::Closed`], a TLS or IO
    /// error.
    pub fn start(&self) -> Result<Address> {
        if self.ctl.is_closed() {
            return Err(Error::Closed);
        }
        if self.ctl.mark_started() {
            return Err(Error::AlreadyStarted(self.ctl.url.to_string()));
        }
        self.host.clone().listen(self.ctl.clone())
    }

    /// Sets which web pages may connect to this `ws://` or `wss://` listener (checked at every
    /// upgrade request, so it may change while the listener runs). See [`OriginPolicy`].
    ///
    /// # Errors
    /// [`Error::NotSupported`] for other transports.
    pub fn set_ws_origins(&self, policy: OriginPolicy) -> Result<()> {
        if !matches!(self.ctl.url, Address::Ws { .. }) {
            return Err(Error::NotSupported);
        }
        lock(&self.ctl.opts).ws_origins = policy;
        Ok(())
    }

    /// Serves plain HTTP `GET` requests on this `ws://` or `wss://` listener's port (paths
    /// where no SP socket listens) with `handler`: static files
    /// ([`HttpHandler::files`]) or an application function ([`HttpHandler::new`]). Checked
    /// at every request. When several listeners share the port, the first by path that has
    /// a handler answers.
    ///
    /// # Errors
    /// [`Error::NotSupported`] for other transports.
    pub fn set_http_handler(&self, handler: HttpHandler) -> Result<()> {
        if !matches!(self.ctl.url, Address::Ws { .. }) {
            return Err(Error::NotSupported);
        }
        lock(&self.ctl.opts).http_handler = Some(handler);
        Ok(())
    }

    /// Sets the file mode bits (`0..=0o777`) of the socket file of an `ipc://` listener,
    /// applied when it binds (NNG's `NNG_OPT_IPC_PERMISSIONS`), so only before
    /// [`start`](Self::start).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] above `0o777`; [`Error::NotSupported`] for other transports;
    /// on Windows, whose named pipes are no files, [`Error::Unsupported`]
    /// ([`Unsupported::IpcPermissions`](crate::Unsupported::IpcPermissions));
    /// [`Error::AlreadyStarted`] once the listener was started (NNG's `NNG_EBUSY`), as the
    /// mode could no longer take effect.
    pub fn set_ipc_permissions(&self, mode: u32) -> Result<()> {
        if !matches!(self.ctl.url, Address::Ipc { .. }) {
            return Err(Error::NotSupported);
        }
        if cfg!(windows) {
            return Err(Error::Unsupported {
                context: format!("cannot set ipc_permissions of {}", self.ctl.url),
                what: crate::Unsupported::IpcPermissions,
            });
        }
        if mode > 0o777 {
            return Err(Error::invalid_option(
                "ipc_permissions",
                "0..=0o777",
                format!("{mode:#o}"),
            ));
        }
        // Checked under the options' lock: `start` marks the listener started before it
        // reads the options, so a mode stored here is either read by the bind or refused.
        let mut opts = lock(&self.ctl.opts);
        if self.ctl.is_started() {
            return Err(Error::AlreadyStarted(self.ctl.url.to_string()));
        }
        opts.ipc_permissions = Some(mode);
        Ok(())
    }

    /// Returns the bound address once started (with the real port for port 0), else the URL
    /// it was created with.
    pub fn address(&self) -> Address {
        lock(&self.ctl.bound)
            .clone()
            .unwrap_or_else(|| self.ctl.url.clone())
    }
}

impl fmt::Display for Listener {
    /// Formats the bound address as a URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.address(), f)
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("id", &self.ctl.id)
            .field("address", &format_args!("{}", self.address()))
            .field("started", &self.ctl.is_started())
            .field("closed", &self.ctl.is_closed())
            .finish()
    }
}
