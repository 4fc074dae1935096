//! The one error type that every adapter's socket returns.

use std::io;

use sp_core::frame::FrameError;
use sp_core::handshake::HandshakeError;
use sp_core::protocol::{RecvError, SendError};
use sp_core::ProtocolId;

use crate::addr::AddrError;

/// Everything a socket operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be parsed or cannot be used this way.
    #[error(transparent)]
    Address(#[from] AddrError),
    /// Another listener already owns the address.
    #[error(
        "address {0} is already in use; choose another address or stop the listener that holds it"
    )]
    AddressInUse(String),
    /// Nothing accepted the connection.
    #[error("connection to {0} was refused: nothing is listening there (use a non-blocking dial to keep retrying)")]
    ConnectionRefused(String),
    /// The SP handshake with the peer failed.
    #[error("sp handshake with {addr} failed")]
    Handshake {
        /// The peer's address.
        addr: String,
        /// What was wrong with the peer's header.
        #[source]
        source: HandshakeError,
    },
    /// The TLS handshake with the peer failed, or the TLS configuration is unusable.
    #[error("tls with {addr} failed: {source}")]
    Tls {
        /// The peer's (or listener's) address.
        addr: String,
        /// What was wrong; says whose certificate and why.
        #[source]
        source: crate::tls::TlsError,
    },
    /// The WebSocket upgrade was refused or failed.
    #[error("websocket connection to {addr} failed: {reason}")]
    WebSocket {
        /// The URL.
        addr: String,
        /// What went wrong, for example the HTTP status the server answered with.
        reason: String,
    },
    /// The deadline passed before the operation could complete.
    #[error("operation timed out")]
    TimedOut,
    /// A non-blocking operation could not complete at once.
    #[error("operation would block")]
    WouldBlock,
    /// The protocol's state forbids this operation now (for example REP sending before receiving).
    #[error("operation is not allowed in the current protocol state")]
    BadState,
    /// The protocol never performs this operation (for example PUSH receiving).
    #[error("operation is not supported by this protocol")]
    NotSupported,
    /// The socket has been closed.
    #[error("socket is closed")]
    Closed,
    /// The connection carrying an outstanding request was lost and resending is disabled.
    #[error("the connection carrying the request was lost")]
    ConnectionReset,
    /// A receive waiting on a context lost what it waited for: a newer send on the same
    /// context replaced the request (or survey). NNG's `ECANCELED`.
    #[error(
        "a newer send on this context canceled the request this receive was waiting for; receive again for the newer request's reply"
    )]
    Canceled,
    /// SUB was asked to unsubscribe from a topic it is not subscribed to (NNG `NNG_ENOENT`,
    /// mangos `ErrBadValue`).
    #[error("the topic is not subscribed")]
    UnknownTopic,
    /// A raw socket was given a message whose header breaks the protocol's rules (raw PAIR v1:
    /// not exactly 4 bytes, or a hop count of `0xFF` or more). NNG's `NNG_EPROTO`.
    #[error("the message header breaks the protocol's rules")]
    InvalidHeader,
    /// A device or reflector was given a cooked socket; devices forward headers unchanged, so
    /// they need raw sockets (NNG's `NNG_EINVAL`, mangos' `ErrNotRaw`).
    #[error("devices need raw sockets; open the raw (X) variant of the protocol")]
    NotRaw,
    /// A device's two sockets cannot face each other: each must speak the protocol the other
    /// expects as its peer, and a reflector's socket must peer with itself (NNG's `NNG_EINVAL`,
    /// mangos' `ErrBadProto`).
    #[error("a device cannot join {a} and {b}: each side must be the other's peer protocol")]
    IncompatibleDevice {
        /// The first socket's protocol.
        a: ProtocolId,
        /// The second socket's protocol (the same socket for a reflector).
        b: ProtocolId,
    },
    /// The socket already forwards in a running device or reflector: two devices on one
    /// socket would split its messages between them (NNG's `NNG_EBUSY`). Stop (drop) the
    /// other device first.
    #[error("the socket already runs in a device; stop that device before starting another")]
    DeviceBusy,
    /// An option value was out of range: names the option, the range it takes and the value
    /// given.
    #[error("invalid value {value} for option {option}: expected {expected}")]
    InvalidOption {
        /// The option, as named in the API (`recv_buffer`, `max_ttl`, ...).
        option: &'static str,
        /// The values it accepts.
        expected: &'static str,
        /// The value given.
        value: String,
    },
    /// The endpoint (dialer or listener) was started already; create another one.
    #[error("the endpoint for {0} was started already; create a new dialer or listener")]
    AlreadyStarted(String),
    /// The application's pipe hook refused the connection to this address.
    #[error("the connection to {0} was refused by the socket's pipe hook")]
    PipeRefused(String),
    /// A stream handed to the socket is not usable as a pipe (not connected, wrong kind).
    #[error("cannot adopt the stream: {0}")]
    NotConnected(String),
    /// This platform, or this adapter on this platform, cannot do what was asked: says what,
    /// and what supports it (for example `abstract://` outside Linux, or `ipc://` on Windows
    /// with an adapter that has no named pipes).
    #[error("{context}: {what}")]
    Unsupported {
        /// What we were doing.
        context: String,
        /// What is missing here, and where it exists.
        #[source]
        what: Unsupported,
    },
    /// A frame from the peer broke the framing rules.
    #[error("peer sent a bad frame")]
    Frame(#[from] FrameError),
    /// An operating-system error.
    #[error("{context}")]
    Io {
        /// What we were doing.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn invalid_option(
        option: &'static str,
        expected: &'static str,
        value: impl ToString,
    ) -> Self {
        Self::InvalidOption {
            option,
            expected,
            value: value.to_string(),
        }
    }

    /// Turns a protocol core's refusal of a setting into the typed error for `option`.
    pub(crate) fn config(option: &'static str, e: sp_core::protocol::ConfigError) -> Self {
        use sp_core::protocol::ConfigError;
        match e {
            ConfigError::MaxTtlOutOfRange(v) => Self::invalid_option(option, "1..=255", v),
            ConfigError::QueueLenOutOfRange(v) => Self::invalid_option(option, "0..=8192", v),
            ConfigError::NotSupported => Self::NotSupported,
            _ => Self::NotSupported,
        }
    }

    /// An IO error in `context`; an [`Unsupported`] inside it (an adapter's answer) becomes
    /// [`Error::Unsupported`].
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        if let Some(what) = source
            .get_ref()
            .and_then(|e| e.downcast_ref::<Unsupported>())
        {
            return Self::Unsupported {
                context: context.into(),
                what: what.clone(),
            };
        }
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Returns true for [`Error::TimedOut`].
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Self::TimedOut)
    }

    /// Returns true for [`Error::WouldBlock`].
    pub fn is_would_block(&self) -> bool {
        matches!(self, Self::WouldBlock)
    }

    /// Returns true for [`Error::BadState`].
    pub fn is_bad_state(&self) -> bool {
        matches!(self, Self::BadState)
    }

    /// Returns true for [`Error::Closed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// Returns true for [`Error::Canceled`].
    pub fn is_canceled(&self) -> bool {
        matches!(self, Self::Canceled)
    }

    /// Returns true for [`Error::NotSupported`].
    pub fn is_not_supported(&self) -> bool {
        matches!(self, Self::NotSupported)
    }

    /// Returns true for [`Error::ConnectionRefused`].
    pub fn is_connection_refused(&self) -> bool {
        matches!(self, Self::ConnectionRefused(_))
    }

    /// Returns true for [`Error::NotRaw`] and [`Error::IncompatibleDevice`]: the sockets given
    /// to a device or reflector cannot be joined.
    pub fn is_device_mismatch(&self) -> bool {
        matches!(self, Self::NotRaw | Self::IncompatibleDevice { .. })
    }

    /// Returns true for [`Error::AddressInUse`].
    pub fn is_address_in_use(&self) -> bool {
        matches!(self, Self::AddressInUse(_))
    }

    /// Returns true for [`Error::Unsupported`].
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::Unsupported { .. })
    }
}

/// A feature that exists on some platforms or adapters only, asked for where it does not.
/// Inside [`Error::Unsupported`]; each says what to use instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unsupported {
    /// `abstract://` addresses: the abstract socket namespace is Linux's (and Android's).
    #[error("abstract:// sockets exist only on Linux; use ipc:// instead")]
    AbstractSockets,
    /// `ipc://` on Windows, where it runs over named pipes, with an adapter whose runtime
    /// has no named pipes.
    #[error(
        "ipc:// on Windows runs over named pipes, which {adapter} does not support; \
         sp-tokio does, or use tcp://"
    )]
    NamedPipes {
        /// The adapter that was asked (`"sp-smol"`, `"sp-blocking"`).
        adapter: &'static str,
    },
    /// `ipc_permissions` (a Unix file mode) where IPC endpoints are not files: Windows named
    /// pipes.
    #[error(
        "ipc_permissions sets the mode of a Unix socket file; a Windows named pipe has none \
         (it is protected by its security descriptor)"
    )]
    IpcPermissions,
}

impl From<Unsupported> for io::Error {
    /// An `io::Error` of kind `Unsupported` carrying `what`, for a [`Runtime`] method to
    /// return; the socket turns it back into [`Error::Unsupported`].
    ///
    /// [`Runtime`]: crate::rt::Runtime
    fn from(what: Unsupported) -> Self {
        io::Error::new(io::ErrorKind::Unsupported, what)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::WouldBlock => Self::WouldBlock,
            SendError::BadState => Self::BadState,
            SendError::NotSupported => Self::NotSupported,
            SendError::UnknownContext => Self::Closed,
            SendError::InvalidHeader => Self::InvalidHeader,
            #[allow(unreachable_patterns)]
            _ => Self::BadState,
        }
    }
}

impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::WouldBlock => Self::WouldBlock,
            RecvError::BadState => Self::BadState,
            RecvError::NotSupported => Self::NotSupported,
            RecvError::ConnectionReset => Self::ConnectionReset,
            // NNG reports an ended survey to a waiting receiver as ETIMEDOUT.
            RecvError::SurveyExpired => Self::TimedOut,
            RecvError::Canceled => Self::Canceled,
            RecvError::UnknownContext => Self::Closed,
            #[allow(unreachable_patterns)]
            _ => Self::BadState,
        }
    }
}

/// Shorthand for results of socket operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A send that failed: why, and the message it did not send, handed back so that nothing is
/// lost (retry it, send it elsewhere, log it). It dereferences to its [`Error`] (so
/// `e.is_timed_out()` works) and converts into one with `?`.
///
/// The pair lives in one box, so that a `Result` carrying it stays as small as any other.
#[derive(Debug)]
pub struct Unsent {
    inner: Box<(Error, sp_core::Message)>,
}

impl Unsent {
    /// Pairs a send's error with the message it did not send (for adapters that fail a send
    /// before it reaches the socket).
    pub fn new(error: Error, message: sp_core::Message) -> Self {
        Self {
            inner: Box::new((error, message)),
        }
    }

    /// Returns why the message was not sent.
    pub fn error(&self) -> &Error {
        &self.inner.0
    }

    /// Returns the message that was not sent.
    pub fn message(&self) -> &sp_core::Message {
        &self.inner.1
    }

    /// Returns the message that was not sent.
    pub fn into_message(self) -> sp_core::Message {
        self.inner.1
    }

    /// Returns why the message was not sent.
    pub fn into_error(self) -> Error {
        self.inner.0
    }

    /// Returns both: why, and the message.
    pub fn into_parts(self) -> (Error, sp_core::Message) {
        *self.inner
    }
}

impl std::ops::Deref for Unsent {
    type Target = Error;

    fn deref(&self) -> &Error {
        &self.inner.0
    }
}

impl std::fmt::Display for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message not sent: {}", self.inner.0)
    }
}

impl std::error::Error for Unsent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner.0)
    }
}

impl From<Unsent> for Error {
    fn from(e: Unsent) -> Self {
        e.inner.0
    }
}

/// What a send returns: `Ok`, or the message back with the reason.
pub type SendResult = std::result::Result<(), Unsent>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An adapter's `Unsupported` inside an `io::Error` reaches the application typed, with a
    /// message that names what does support it.
    #[test]
    fn an_adapters_unsupported_io_error_becomes_error_unsupported() {
        let from_adapter: io::Error = Unsupported::NamedPipes { adapter: "sp-smol" }.into();
        assert_eq!(from_adapter.kind(), io::ErrorKind::Unsupported);
        let e = Error::io("cannot listen on ipc://name", from_adapter);
        assert!(e.is_unsupported(), "{e:?}");
        assert!(matches!(
            &e,
            Error::Unsupported {
                what: Unsupported::NamedPipes { adapter: "sp-smol" },
                ..
            }
        ));
        let shown = e.to_string();
        assert!(
            shown.starts_with("cannot listen on ipc://name: "),
            "{shown}"
        );
        assert!(
            shown.contains("sp-smol") && shown.contains("sp-tokio"),
            "{shown}"
        );
        // Any other IO error stays an IO error.
        let other = Error::io("cannot listen", io::Error::from(io::ErrorKind::Unsupported));
        assert!(matches!(other, Error::Io { .. }), "{other:?}");
    }
}
