//! Typed statistics snapshots: per socket ([`SocketStats`]), per pipe ([`PipeStats`]) and per
//! endpoint ([`EndpointStats`]). NNG keeps these in its `nng_stat` tree; here each is a plain
//! struct read with one call, so a monitoring loop needs no string lookups.

use std::fmt;

pub use sp_core::stats::{DropCounts, DropReason};

/// Why a connection was refused before it became a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The peer announced a protocol that cannot talk to this socket.
    IncompatibleProtocol,
    /// The peer's 8-byte SP header was malformed, or it hung up during the handshake.
    BadHandshake,
    /// The peer did not finish its handshake (SP, TLS or WebSocket) in time.
    HandshakeTimeout,
    /// TLS failed (certificate, protocol).
    Tls,
    /// The WebSocket upgrade failed (wrong path, subprotocol, HTTP).
    WebSocket,
    /// A browser page from an origin the listener's
    /// [`OriginPolicy`](crate::OriginPolicy) does not allow asked for a WebSocket upgrade
    /// (answered with HTTP 403).
    Origin,
    /// The application's pipe hook refused the pipe (or panicked).
    Hook,
    /// The socket or endpoint was closing.
    Closed,
}

impl RefusalReason {
    /// Every reason, in declaration order.
    pub const ALL: [RefusalReason; 8] = [
        RefusalReason::IncompatibleProtocol,
        RefusalReason::BadHandshake,
        RefusalReason::HandshakeTimeout,
        RefusalReason::Tls,
        RefusalReason::WebSocket,
        RefusalReason::Origin,
        RefusalReason::Hook,
        RefusalReason::Closed,
    ];

    /// A short snake_case name, stable for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            RefusalReason::IncompatibleProtocol => "incompatible_protocol",
            RefusalReason::BadHandshake => "bad_handshake",
            RefusalReason::HandshakeTimeout => "handshake_timeout",
            RefusalReason::Tls => "tls",
            RefusalReason::WebSocket => "websocket",
            RefusalReason::Origin => "origin",
            RefusalReason::Hook => "hook",
            RefusalReason::Closed => "closed",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One counter per [`RefusalReason`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    counts: [u64; RefusalReason::ALL.len()],
}

impl RefusalCounts {
    pub(crate) fn record(&mut self, reason: RefusalReason) {
        let c = &mut self.counts[reason as usize];
        *c = c.saturating_add(1);
    }

    /// Returns how many connections were refused for `reason`.
    pub fn get(&self, reason: RefusalReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Returns how many connections were refused for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Returns the reasons with a non-zero count, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (RefusalReason, u64)> + '_ {
        RefusalReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

impl fmt::Debug for RefusalCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(r, n)| (r.name(), n)))
            .finish()
    }
}

/// A socket's counters at one moment ([`Socket::stats`](crate::Socket::stats)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketStats {
    /// Messages the application sent (accepted by `send`).
    pub msgs_sent: u64,
    /// Bytes of those messages (header and body).
    pub bytes_sent: u64,
    /// Messages the application received.
    pub msgs_received: u64,
    /// Bytes of those messages.
    pub bytes_received: u64,
    /// Dialers running now.
    pub dialers: usize,
    /// Listeners running now.
    pub listeners: usize,
    /// Pipes attached now.
    pub pipes_open: usize,
    /// Pipes attached since the socket opened.
    pub pipes_attached: u64,
    /// Pipes detached since the socket opened.
    pub pipes_detached: u64,
    /// Connection attempts by the socket's dialers.
    pub dial_attempts: u64,
    /// Connection attempts that failed (connect, TLS, handshake).
    pub dial_failures: u64,
    /// Connections the socket's listeners accepted (before their handshake).
    pub accepted: u64,
    /// Connections refused before they became pipes, by reason (dialed and accepted).
    pub refused: RefusalCounts,
    /// Requests REQ sent again (timer or lost pipe).
    pub req_resends: u64,
    /// Surveys whose time ran out (SURVEYOR).
    pub survey_timeouts: u64,
    /// Messages received and waiting for the application.
    pub recv_queued: usize,
    /// Messages waiting to be written: the protocol's own queues plus every pipe's queue.
    pub send_queued: usize,
    /// Every message dropped anywhere in the socket, by reason: by the protocol (queues full,
    /// no subscription, TTL, stale replies, expired surveys, ...) and by the driver (a pipe
    /// closed with messages queued, a message over the receive limit).
    pub dropped: DropCounts,
}

/// A pipe's counters at one moment ([`Pipe::stats`](crate::Pipe::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeStats {
    /// Messages received from the peer.
    pub msgs_in: u64,
    /// Bytes of those messages (after framing).
    pub bytes_in: u64,
    /// Messages handed to the pipe for writing.
    pub msgs_out: u64,
    /// Bytes of those messages.
    pub bytes_out: u64,
    /// Messages queued for writing now.
    pub queued: usize,
    /// Messages still queued for writing when the pipe closed, handed back to the protocol:
    /// PUSH sends them on another pipe, REQ resends its request at once, every other role
    /// counts them as dropped ([`DropReason::PipeClosed`]).
    pub returned: u64,
    /// Messages lost with the pipe: received from the peer but not yet taken by the protocol
    /// when it ended (counted once the pipe has ended).
    pub dropped_on_close: u64,
}

/// A dialer's or listener's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Connection attempts (dialers).
    pub dial_attempts: u64,
    /// Attempts that failed (dialers).
    pub dial_failures: u64,
    /// Connections accepted (listeners).
    pub accepted: u64,
    /// Connections refused before they became pipes.
    pub refused: u64,
    /// Pipes this endpoint attached since it started.
    pub pipes_attached: u64,
    /// Pipes of this endpoint attached now.
    pub pipes_open: u64,
}
