//! Counters a protocol core keeps: every message it drops, with the reason, and the few
//! protocol events an operator asks about (REQ resends, survey timeouts, queue depths).
//!
//! A core never drops a message without counting it here. The driver adds its own counters
//! (messages and bytes per pipe, pipes, dials) and the drops that happen outside the core
//! (a message over the receive limit, a transmit for a pipe already gone); it reports both
//! through the same [`DropCounts`]. Messages still queued in the driver for a pipe that closes
//! go back to the core ([`Input::Unsent`](crate::protocol::Input::Unsent)), which sends them
//! again or counts them.
//!
//! Two losses are deliberately not counted, because closing a pipe accounts for them: what
//! arrives on a pipe the core does not know (refused, kicked, or already removed), and what a
//! core loses by kicking a pipe itself (the garbage that made it do so, and copies it had
//! queued for that pipe). What the driver still held for a kicked pipe is counted, though: it
//! comes back as an `Unsent` for a pipe the core no longer knows, counted as
//! [`DropReason::PipeClosed`].

use std::fmt;

/// Why a message was dropped. Each variant names one place in the stack where a message can
/// be lost on purpose; [`DropCounts`] holds one counter per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DropReason {
    /// A per-pipe send queue was full (PUB, BUS, STAR, polyamorous PAIR v1): the message was
    /// not sent to that pipe. PUB drops the oldest queued message, the others the new one.
    SendQueueFull,
    /// The receive queue was full: the new message (or, with SUB's prefer-new, the oldest
    /// one) was dropped.
    RecvQueueFull,
    /// A SUB received a message that matches none of its subscriptions.
    NoSubscription,
    /// A message carried more hops than the socket's maximum TTL.
    TtlExceeded,
    /// A reply or response whose request or survey ID is not the one in flight: the request
    /// was cancelled, replaced, already answered, or never sent.
    StaleReply,
    /// A response arrived, or was still queued, after its survey's deadline.
    SurveyExpired,
    /// A reply whose route leads to a pipe that is gone, or a send addressed to a pipe that is
    /// gone (raw REP and RESPONDENT, polyamorous PAIR v1).
    NoRoute,
    /// A message whose protocol header could not be parsed, dropped without closing the pipe
    /// (STAR's reserved bytes), or a raw send whose header breaks the protocol's rules and is
    /// dropped rather than refused (XREP and XRESPONDENT without a pipe word, XSTAR without a
    /// 4-byte hop count).
    MalformedHeader,
    /// A message was queued for a pipe that closed before it was written: in a core's own
    /// per-pipe queue (PUB, BUS, STAR, SURVEYOR, raw REP, ...), or in the driver's queue and
    /// handed back to a core that had nowhere else to send it
    /// ([`Input::Unsent`](crate::protocol::Input::Unsent)).
    PipeClosed,
    /// A peer sent a message larger than the receive size limit (its pipe was closed).
    TooLarge,
    /// A queue was shrunk below the number of messages it held.
    QueueShrunk,
    /// A context was closed while messages waited in its queue.
    ContextClosed,
    /// A message came from a peer whose protocol may not send to this role, or on a pipe the
    /// role does not read (for example data sent to a PUB).
    Unexpected,
    /// A message the application sent was replaced by a newer one before any pipe took it: a
    /// REQ request still waiting for a writable pipe when the next request on its context
    /// cancelled it.
    Replaced,
    /// The socket closed while the message still waited in the core for a pipe to take it
    /// (PUSH's messages handed back by pipes that died, a REQ request no pipe took yet).
    /// What the pipes held when the socket closed goes back to the core first, so a message
    /// lost in closing is counted once: here, or as [`DropReason::PipeClosed`].
    SocketClosed,
}

impl DropReason {
    /// Every reason, in declaration order (the index of each counter in [`DropCounts`]).
    pub const ALL: [DropReason; 15] = [
        DropReason::SendQueueFull,
        DropReason::RecvQueueFull,
        DropReason::NoSubscription,
        DropReason::TtlExceeded,
        DropReason::StaleReply,
        DropReason::SurveyExpired,
        DropReason::NoRoute,
        DropReason::MalformedHeader,
        DropReason::PipeClosed,
        DropReason::TooLarge,
        DropReason::QueueShrunk,
        DropReason::ContextClosed,
        DropReason::Unexpected,
        DropReason::Replaced,
        DropReason::SocketClosed,
    ];

    /// A short snake_case name, stable for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::SendQueueFull => "send_queue_full",
            DropReason::RecvQueueFull => "recv_queue_full",
            DropReason::NoSubscription => "no_subscription",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::StaleReply => "stale_reply",
            DropReason::SurveyExpired => "survey_expired",
            DropReason::NoRoute => "no_route",
            DropReason::MalformedHeader => "malformed_header",
            DropReason::PipeClosed => "pipe_closed",
            DropReason::TooLarge => "too_large",
            DropReason::QueueShrunk => "queue_shrunk",
            DropReason::ContextClosed => "context_closed",
            DropReason::Unexpected => "unexpected",
            DropReason::Replaced => "replaced",
            DropReason::SocketClosed => "socket_closed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One counter per [`DropReason`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    counts: [u64; DropReason::ALL.len()],
}

impl DropCounts {
    /// Counts one message dropped for `reason`.
    pub fn record(&mut self, reason: DropReason) {
        self.add(reason, 1);
    }

    /// Counts `n` messages dropped for `reason`.
    pub fn add(&mut self, reason: DropReason, n: u64) {
        let c = &mut self.counts[reason.index()];
        *c = c.saturating_add(n);
    }

    /// Returns how many messages were dropped for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Returns how many messages were dropped for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Returns the reasons with a non-zero count, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &DropCounts) {
        for r in DropReason::ALL {
            self.add(r, other.get(r));
        }
    }
}

impl fmt::Debug for DropCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(r, n)| (r.name(), n)))
            .finish()
    }
}

/// A snapshot of a protocol core's counters ([`Protocol::stats`](crate::protocol::Protocol::stats)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoreStats {
    /// Every message the core dropped, by reason.
    pub dropped: DropCounts,
    /// Requests REQ sent again (timer, lost pipe, or a copy a dying pipe never wrote), default
    /// context and contexts together.
    pub resends: u64,
    /// Surveys whose deadline passed (SURVEYOR), default context and contexts together.
    pub survey_timeouts: u64,
    /// Messages received and waiting for the application, over every queue of the core.
    pub recv_queued: usize,
    /// Messages the core holds for sending (per-pipe queues of PUB, BUS, STAR, ..., REQ requests
    /// waiting for a pipe, messages PUSH and XREQ got back from dying pipes).
    pub send_queued: usize,
}

/// Largest queue length, in messages, that [`Protocol::set_recv_buffer`] and
/// [`Protocol::set_send_buffer`] accept (NNG's limit for `NNG_OPT_RECVBUF`/`SENDBUF`).
///
/// [`Protocol::set_recv_buffer`]: crate::protocol::Protocol::set_recv_buffer
/// [`Protocol::set_send_buffer`]: crate::protocol::Protocol::set_send_buffer
pub const MAX_QUEUE_LEN: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_reason() {
        let mut d = DropCounts::default();
        d.record(DropReason::TtlExceeded);
        d.add(DropReason::SendQueueFull, 3);
        assert_eq!(d.get(DropReason::TtlExceeded), 1);
        assert_eq!(d.get(DropReason::SendQueueFull), 3);
        assert_eq!(d.get(DropReason::NoRoute), 0);
        assert_eq!(d.total(), 4);
        assert_eq!(
            format!("{d:?}"),
            r#"{"send_queue_full": 3, "ttl_exceeded": 1}"#
        );
    }

    #[test]
    fn every_reason_has_its_own_slot() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
