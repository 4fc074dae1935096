//! [`Pipe`]: the application's view of one connection (NNG's `nng_pipe`), with what the
//! transport learned about the peer when it connected.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sp_core::{PipeId, ProtocolId};

use crate::addr::Address;
use crate::endpoint::EndpointCtl;
use crate::pipe::PipeHandle;
use crate::rt::{ConnInfo, PeerCredentials};
use crate::stats::PipeStats;

/// Identifies one dialer or listener of a socket, unique within the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub(crate) u32);

impl EndpointId {
    pub(crate) fn next() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Returns the ID as a number (for logs and metrics).
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// The transport a pipe runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// `tcp://`, or an adopted TCP stream.
    Tcp,
    /// `tls+tcp://`.
    Tls,
    /// `ipc://`, or an adopted Unix stream.
    Ipc,
    /// `abstract://` (Linux abstract-namespace Unix sockets).
    Abstract,
    /// `inproc://`.
    Inproc,
    /// `ws://`.
    Ws,
    /// `wss://`.
    Wss,
}

impl Transport {
    pub(crate) fn of(addr: &Address) -> Self {
        match addr {
            Address::Tcp { .. } => Transport::Tcp,
            Address::Tls { .. } => Transport::Tls,
            Address::Ipc { .. } => Transport::Ipc,
            Address::Abstract { .. } => Transport::Abstract,
            Address::Inproc { .. } => Transport::Inproc,
            Address::Ws { secure: false, .. } => Transport::Ws,
            Address::Ws { secure: true, .. } => Transport::Wss,
        }
    }
}

/// Everything known about a pipe when it attaches; fixed for its life.
pub(crate) struct PipeInfo {
    pub(crate) transport: Transport,
    /// The dialer or listener that made it; `None` for an adopted connection.
    pub(crate) endpoint: Option<Arc<EndpointCtl>>,
    pub(crate) dialed: bool,
    pub(crate) conn: ConnInfo,
    pub(crate) peer_protocol: ProtocolId,
    /// The peer's TLS certificate (DER), when it presented one.
    pub(crate) tls_peer_certificate: Option<Vec<u8>>,
    /// The HTTP path of a WebSocket pipe.
    pub(crate) ws_path: Option<String>,
    /// The pipe's tracing span: every log line about this pipe is inside it.
    pub(crate) span: tracing::Span,
}

/// Per-pipe counters of what comes in (once per delivered batch) and what is lost; what goes
/// out is counted in the pipe's queue, under the lock it takes anyway.
#[derive(Debug, Default)]
pub(crate) struct PipeCounters {
    pub(crate) msgs_in: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) dropped_on_close: AtomicU64,
}

impl PipeCounters {
    pub(crate) fn count_in(&self, msgs: u64, bytes: u64) {
        if msgs > 0 {
            self.msgs_in.fetch_add(msgs, Ordering::Relaxed);
            self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// One connection of a socket, as the application sees it: who the peer is, how it
/// connected, what went through it. Cheap to clone; it stays readable after the pipe closed.
///
/// Pipes come from [`PipeEvent`](crate::PipeEvent)s, from
/// [`Socket::pipe`](crate::Socket::pipe) (for example with the [`Message::pipe`] of a
/// received message) and from [`Socket::pipes`](crate::Socket::pipes).
///
/// [`Message::pipe`]: sp_core::Message::pipe
#[derive(Clone)]
pub struct Pipe {
    pub(crate) handle: Arc<PipeHandle>,
}

impl Pipe {
    fn info(&self) -> &PipeInfo {
        &self.handle.info
    }

    /// Returns the pipe's ID, the one received messages carry in [`Message::pipe`].
    ///
    /// [`Message::pipe`]: sp_core::Message::pipe
    pub fn id(&self) -> PipeId {
        self.handle.id
    }

    /// Returns the transport the pipe runs on.
    pub fn transport(&self) -> Transport {
        self.info().transport
    }

    /// Returns the dialer or listener that made the pipe; `None` for an adopted connection.
    pub fn endpoint(&self) -> Option<EndpointId> {
        self.info().endpoint.as_ref().map(|e| e.id)
    }

    /// Returns true when our side dialed, false when it accepted (or adopted) the connection.
    pub fn is_dialed(&self) -> bool {
        self.info().dialed
    }

    /// Returns our end's address (`tcp://127.0.0.1:5555`, `ipc:///tmp/s`, ...), where the
    /// transport has one.
    pub fn local_addr(&self) -> Option<&Address> {
        self.info().conn.local.as_ref()
    }

    /// Returns the peer's address (NNG's `NNG_OPT_REMADDR`), where the transport has one:
    /// TCP, TLS and WebSocket peers have theirs; a Unix socket peer that did not bind has
    /// none.
    pub fn remote_addr(&self) -> Option<&Address> {
        self.info().conn.remote.as_ref()
    }

    /// Returns the SP protocol the peer announced.
    pub fn peer_protocol(&self) -> ProtocolId {
        self.info().peer_protocol
    }

    /// Returns the credentials of the peer process of an IPC pipe (uid, gid and, on Linux,
    /// pid).
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.info().conn.peer_credentials
    }

    /// Returns the certificate the TLS peer presented (DER), if it presented one.
    pub fn tls_peer_certificate(&self) -> Option<&[u8]> {
        self.info().tls_peer_certificate.as_deref()
    }

    /// Returns the HTTP request path of a WebSocket pipe.
    pub fn ws_path(&self) -> Option<&str> {
        self.info().ws_path.as_deref()
    }

    /// Returns the pipe's counters now.
    pub fn stats(&self) -> PipeStats {
        self.handle.stats()
    }

    /// Returns true once the pipe is closed.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Closes this pipe alone. What is queued for it is dropped (and counted); a dialer that
    /// made it reconnects. Closing a closed pipe does nothing.
    pub fn close(&self) {
        self.info()
            .span
            .in_scope(|| tracing::debug!("pipe closed by the application"));
        self.handle.close();
    }
}

impl fmt::Debug for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info();
        let mut d = f.debug_struct("Pipe");
        d.field("id", &self.handle.id)
            .field("transport", &info.transport)
            .field("peer_protocol", &info.peer_protocol);
        if let Some(remote) = &info.conn.remote {
            d.field("remote", &format_args!("{remote}"));
        }
        if let Some(ep) = &info.endpoint {
            d.field("endpoint", &ep.id);
        }
        d.field("closed", &self.is_closed()).finish()
    }
}

impl PartialEq for Pipe {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.handle, &other.handle)
    }
}

impl Eq for Pipe {}
