//! The one error type that every adapter's socket returns.

use std::io;

use sp_core::frame::FrameError;
use sp_core::handshake::HandshakeError;
use sp_core::protocol::{RecvError, SendError};

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
    /// SUB was asked to unsubscribe from a topic it is not subscribed to (NNG `NNG_ENOENT`,
    /// mangos `ErrBadValue`).
    #[error("the topic is not subscribed")]
    UnknownTopic,
    /// An option value was out of range.
    #[error("invalid option value: {0}")]
    InvalidOption(String),
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
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
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

    /// Returns true for [`Error::ConnectionRefused`].
    pub fn is_connection_refused(&self) -> bool {
        matches!(self, Self::ConnectionRefused(_))
    }

    /// Returns true for [`Error::AddressInUse`].
    pub fn is_address_in_use(&self) -> bool {
        matches!(self, Self::AddressInUse(_))
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        match e {
            SendError::WouldBlock => Self::WouldBlock,
            SendError::BadState => Self::BadState,
            SendError::NotSupported => Self::NotSupported,
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
            #[allow(unreachable_patterns)]
            _ => Self::BadState,
        }
    }
}

/// Shorthand for results of socket operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
