//! Readiness with blocking calls: whether a socket's next receive or send would complete
//! without waiting, and a wait for that moment (see `sp_transport`'s readiness docs).

use std::time::Instant;

use sp_transport::{RecvRole, Result, SendRole};

use crate::runtime::run;
use crate::Socket;

/// Readiness for receiving.
impl<P: RecvRole> Socket<P> {
    /// Whether a receive now would complete without waiting (see
    /// [`sp_transport::Socket::is_readable`]).
    pub fn is_readable(&self) -> bool {
        self.transport().is_readable()
    }

    /// Blocks, up to the receive timeout, until the socket is readable; takes nothing.
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut), [`Error::Closed`](crate::Error::Closed).
    pub fn readable(&self) -> Result<()> {
        run(self.transport().readable())
    }

    /// Blocks like [`Socket::readable`], but at most until `deadline`.
    ///
    /// # Errors
    /// As [`Socket::readable`].
    pub fn readable_until(&self, deadline: Instant) -> Result<()> {
        run(self.transport().readable_until(deadline))
    }
}

/// Readiness for sending.
impl<P: SendRole> Socket<P> {
    /// Whether a send now would complete without waiting for a pipe (see
    /// [`sp_transport::Socket::is_writable`]).
    pub fn is_writable(&self) -> bool {
        self.transport().is_writable()
    }

    /// Blocks, up to the send timeout, until the socket is writable; sends nothing.
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut), [`Error::Closed`](crate::Error::Closed).
    pub fn writable(&self) -> Result<()> {
        run(self.transport().writable())
    }

    /// Blocks like [`Socket::writable`], but at most until `deadline`.
    ///
    /// # Errors
    /// As [`Socket::writable`].
    pub fn writable_until(&self, deadline: Instant) -> Result<()> {
        run(self.transport().writable_until(deadline))
    }
}
