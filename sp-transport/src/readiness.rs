//! Readiness: whether a socket's next receive or send would complete without waiting, and a
//! wait for that moment (NNG's `NNG_OPT_RECVFD` and `NNG_OPT_SENDFD`, nanomsg's `nn_poll`,
//! tokio's `readable` and `writable`; SP-PROTOCOLS.md scenario 36). The protocol cores decide
//! ([`Protocol::is_readable`](sp_core::protocol::Protocol::is_readable),
//! [`Protocol::is_writable`](sp_core::protocol::Protocol::is_writable)); the driver only waits
//! for their events.
//!
//! Readiness is a snapshot: another task or thread may take the message or the pipe before
//! this one acts, so a receive or send after a wait can still find nothing and wait itself.
//! To take the message in the same step, receive (or wait on many sources with a
//! [`RecvSet`](crate::RecvSet)).

use std::time::Instant;

use crate::error::Result;
use crate::roles::{RecvRole, SendRole};
use crate::rt::Runtime;
use crate::socket::{deadline_after, with_deadline, Expiry, Socket, SocketCore};

/// Which readiness a wait is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    Readable,
    Writable,
}

impl<R: Runtime, P: SocketCore> Socket<R, P> {
    /// Waits until the core reports `want`, by the deadline `deadline` gives from the timeout
    /// option (read at the first wait).
    async fn ready(
        &self,
        want: Readiness,
        deadline: impl FnOnce() -> Option<Instant>,
    ) -> Result<()> {
        let shared = self.shared();
        with_deadline(&shared.rt, Expiry::Timeout, deadline, |cx| {
            shared.poll_ready(want, cx)
        })
        .await
    }
}

/// Readiness for receiving: only roles that receive have it.
impl<R: Runtime, P: RecvRole> Socket<R, P> {
    /// Whether a receive now would complete without waiting: with a message, or with the
    /// outcome of the last request or survey (a REQ whose pipe was lost with resending off, a
    /// SURVEYOR whose survey ended). A REQ with no request out is not readable.
    pub fn is_readable(&self) -> bool {
        self.shared().is_ready(Readiness::Readable)
    }

    /// Waits, up to the receive timeout, until the socket is readable (see
    /// [`Socket::is_readable`]); takes nothing.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only waits.
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut), [`Error::Closed`](crate::Error::Closed);
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) with a zero receive timeout.
    pub async fn readable(&self) -> Result<()> {
        let rt = &self.shared().rt;
        let deadline = || deadline_after(rt, self.recv_timeout());
        self.ready(Readiness::Readable, deadline).await
    }

    /// Waits like [`Socket::readable`], but at most until `deadline` (ignoring the receive
    /// timeout option).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only waits.
    ///
    /// # Errors
    /// As [`Socket::readable`], with [`Error::TimedOut`](crate::Error::TimedOut) also for a
    /// deadline that had passed before the call (never `WouldBlock`).
    pub async fn readable_until(&self, deadline: Instant) -> Result<()> {
        let shared = self.shared();
        with_deadline(
            &shared.rt,
            Expiry::Deadline,
            || Some(deadline),
            |cx| shared.poll_ready(Readiness::Readable, cx),
        )
        .await
    }
}

/// Readiness for sending: only roles that send have it.
impl<R: Runtime, P: SendRole> Socket<R, P> {
    /// Whether a send now would complete without waiting for a pipe. A REQ is not writable
    /// before it has a pipe nor while its pipes are busy; a PUB always is; a REP or
    /// RESPONDENT is while it holds a request to answer and the requester's pipe can take the
    /// reply.
    pub fn is_writable(&self) -> bool {
        self.shared().is_ready(Readiness::Writable)
    }

    /// Waits, up to the send timeout, until the socket is writable (see
    /// [`Socket::is_writable`]); sends nothing.
    ///
    /// # Cancel safety
    /// Cancel-safe: it only waits.
    ///
    /// # Errors
    /// [`Error::TimedOut`](crate::Error::TimedOut), [`Error::Closed`](crate::Error::Closed);
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) with a zero send timeout.
    pub async fn writable(&self) -> Result<()> {
        let rt = &self.shared().rt;
        let deadline = || deadline_after(rt, self.send_timeout());
        self.ready(Readiness::Writable, deadline).await
    }

    /// Waits like [`Socket::writable`], but at most until `deadline` (ignoring the send
    /// timeout option).
    ///
    /// # Cancel safety
    /// Cancel-safe: it only waits.
    ///
    /// # Errors
    /// As [`Socket::writable`], with [`Error::TimedOut`](crate::Error::TimedOut) also for a
    /// deadline that had passed before the call (never `WouldBlock`).
    pub async fn writable_until(&self, deadline: Instant) -> Result<()> {
        let shared = self.shared();
        with_deadline(
            &shared.rt,
            Expiry::Deadline,
            || Some(deadline),
            |cx| shared.poll_ready(Readiness::Writable, cx),
        )
        .await
    }
}
