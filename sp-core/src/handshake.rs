//! The 8-byte SP connection header (spec 2.1) as a small sans-IO state machine.
//!
//! Right after a TCP, TLS or IPC stream comes up, each side sends 8 bytes without waiting for
//! the other, then reads exactly 8:
//!
//! ```text
//! offset:  0     1     2     3     4     5     6     7
//!        +-----+-----+-----+-----+-----+-----+-----+-----+
//!        | 00  | 53  | 50  | 00  |  SP type  | 00  | 00  |
//!        +-----+-----+-----+-----+-----+-----+-----+-----+
//!          NUL   'S'   'P'  ver.  (u16 BE)    reserved
//! ```
//!
//! [`Handshake`] checks the received header strictly: the magic, version 0, reserved bytes 0
//! and a peer type that [`ProtocolId::is_valid_peer`] accepts. That stays compatible with
//! nanomsg, NNG and mangos, which all send zeros. Any failure means: close the stream without
//! sending anything more, and let the dialer redial.

use std::time::{Duration, Instant};

use crate::ProtocolId;

/// Length of the SP connection header, in bytes.
pub const HANDSHAKE_LEN: usize = 8;

/// How long a peer gets to deliver its header: 10 s, as in NNG. The timeout keeps half-open
/// connections from piling up.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first four header bytes: NUL, `S`, `P`, version 0.
const MAGIC: [u8; 3] = [0x00, 0x53, 0x50];
const VERSION: u8 = 0x00;

/// Returns the header a socket of type `local` sends: `00 53 50 00 <type BE> 00 00`.
pub fn header_bytes(local: ProtocolId) -> [u8; HANDSHAKE_LEN] {
    let [hi, lo] = local.0.to_be_bytes();
    [MAGIC[0], MAGIC[1], MAGIC[2], VERSION, hi, lo, 0x00, 0x00]
}

/// One side of the header exchange on a freshly connected stream.
///
/// ```text
///   new(local, now, timeout) ──> Pending ──(8 good bytes)──────────> Done(Ok(peer))
///                                   │ ──(a bad field, as soon as it is complete)─> Done(Err)
///                                   │ ──handle_eof──────────────────> Done(Err(Truncated))
///                                   └──handle_timeout(now ≥ deadline)> Done(Err(TimedOut))
/// ```
///
/// Drive it like this:
/// 1. Write [`outgoing`](Self::outgoing) to the stream at once; it does not depend on what the
///    peer sends.
/// 2. Pass every chunk read from the stream to [`handle_bytes`](Self::handle_bytes). Bytes it
///    does not consume belong to the first frame: hand them to the
///    [`FrameDecoder`](crate::frame::FrameDecoder).
/// 3. Call [`handle_eof`](Self::handle_eof) if the stream ends, and
///    [`handle_timeout`](Self::handle_timeout) when the [`poll_timeout`](Self::poll_timeout)
///    deadline passes.
/// 4. After each input, read [`result`](Self::result): `Some(Ok(peer))` means the pipe is up,
///    `Some(Err(_))` means close the stream.
#[derive(Clone, Debug)]
pub struct Handshake {
    local: ProtocolId,
    received: [u8; HANDSHAKE_LEN],
    received_len: usize,
    deadline: Option<Instant>,
    result: Option<Result<ProtocolId, HandshakeError>>,
}

impl Handshake {
    /// Starts a handshake for a socket of type `local` on a stream that came up at `now`.
    ///
    /// The peer must announce `local.peer()`; a `local` type without a known peer accepts no
    /// one. The peer gets `timeout` to deliver its 8 bytes; a timeout too large to add to `now`
    /// (such as [`Duration::MAX`]) means no deadline.
    pub fn new(local: ProtocolId, now: Instant, timeout: Duration) -> Self {
        Self {
            local,
            received: [0; HANDSHAKE_LEN],
            received_len: 0,
            deadline: now.checked_add(timeout),
            result: None,
        }
    }

    /// Returns the 8 bytes to send to the peer, the same as [`header_bytes`] for the local type.
    pub fn outgoing(&self) -> [u8; HANDSHAKE_LEN] {
        header_bytes(self.local)
    }

    /// Feeds bytes read from the stream and returns how many of them it consumed.
    ///
    /// It consumes at most what the header still lacks, so the bytes after the 8th stay with
    /// the caller: they are the start of the first frame. Each header field is checked as soon
    /// as it is complete, so a wrong magic fails before the remaining bytes arrive, and the
    /// bytes after the one that decided a failure are not consumed either. Once the result is
    /// decided this consumes nothing and returns 0.
    pub fn handle_bytes(&mut self, data: &[u8]) -> usize {
        let mut consumed = 0;
        // Byte by byte, so that the outcome and the count never depend on how the stream was
        // split into reads. At most 8 iterations do any work.
        for &byte in data {
            if self.result.is_some() {
                break;
            }
            self.received[self.received_len] = byte;
            self.received_len += 1;
            consumed += 1;
            self.result = self.check_last_byte();
        }
        consumed
    }

    /// Reports that the stream ended. Before the 8th byte that fails the handshake with
    /// [`HandshakeError::Truncated`]; afterwards it changes nothing.
    pub fn handle_eof(&mut self) {
        if self.result.is_none() {
            self.result = Some(Err(HandshakeError::Truncated {
                received: self.received_len,
            }));
        }
    }

    /// Reports that time has reached `now`. At or after the deadline an undecided handshake
    /// fails with [`HandshakeError::TimedOut`]; an early call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.result.is_some() {
            return;
        }
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            self.result = Some(Err(HandshakeError::TimedOut));
        }
    }

    /// Returns when [`handle_timeout`](Self::handle_timeout) should next be called, or `None`
    /// once the result is decided (or when there is no deadline).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.result {
            Some(_) => None,
            None => self.deadline,
        }
    }

    /// Returns `None` while undecided, then `Some(Ok(peer_protocol))` or `Some(Err(_))`.
    pub fn result(&self) -> Option<Result<ProtocolId, HandshakeError>> {
        self.result.clone()
    }

    /// Returns the local protocol this handshake announces.
    pub fn local(&self) -> ProtocolId {
        self.local
    }

    /// Checks the field that the byte just received completes, if any.
    ///
    /// A wrong magic byte fails at once, so garbage is refused without waiting for more of it.
    /// The peer type is judged after the reserved bytes, so that a non-SP 8-byte blob is
    /// reported as malformed rather than as an incompatible peer.
    fn check_last_byte(&self) -> Option<Result<ProtocolId, HandshakeError>> {
        let r = &self.received;
        match self.received_len - 1 {
            i @ 0..=2 if r[i] != MAGIC[i] => {
                // Bytes after `i` have not been received and are still zero.
                Some(Err(HandshakeError::BadMagic {
                    bytes: [r[0], r[1], r[2]],
                }))
            }
            3 if r[3] != VERSION => Some(Err(HandshakeError::BadVersion { version: r[3] })),
            7 => {
                let reserved = u16::from_be_bytes([r[6], r[7]]);
                if reserved != 0 {
                    return Some(Err(HandshakeError::BadReserved { value: reserved }));
                }
                let peer = ProtocolId(u16::from_be_bytes([r[4], r[5]]));
                if !self.local.is_valid_peer(peer) {
                    let local = self.local;
                    return Some(Err(HandshakeError::IncompatiblePeer { local, peer }));
                }
                Some(Ok(peer))
            }
            _ => None,
        }
    }
}

/// Why the header exchange failed. Close the stream without sending anything more.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// Bytes 0–2 are not `00 53 50`. The handshake fails on the first wrong byte, so the bytes
    /// after it read as 0.
    #[error(
        "peer sent {bytes:02x?} where an sp connection header starts with [00, 53, 50]; the \
         peer does not speak the sp protocols, check the address and transport"
    )]
    BadMagic {
        /// The first three bytes received.
        bytes: [u8; 3],
    },
    /// Byte 3 (the version) is not 0.
    #[error(
        "peer sent sp header version {version} but only version 0 exists; the peer is not a \
         compatible sp implementation"
    )]
    BadVersion {
        /// The version byte received.
        version: u8,
    },
    /// Bytes 6–7 (reserved) are not zero.
    #[error(
        "peer sent reserved sp header bytes {value:#06x} where zeros are required; the peer is \
         not a compatible sp implementation"
    )]
    BadReserved {
        /// The reserved bytes received, big-endian.
        value: u16,
    },
    /// The peer's socket type cannot talk to ours.
    #[error(
        "peer is a {peer} socket, which cannot talk to a local {local} socket; connect matching \
         socket types (such as req with rep)"
    )]
    IncompatiblePeer {
        /// Our socket type.
        local: ProtocolId,
        /// The type the peer announced.
        peer: ProtocolId,
    },
    /// The stream ended before all 8 bytes arrived.
    #[error(
        "connection closed after {received} of 8 sp header bytes; the peer went away or does \
         not speak the sp protocols"
    )]
    Truncated {
        /// How many header bytes had arrived.
        received: usize,
    },
    /// The header did not arrive before the deadline.
    #[error(
        "sp connection header not received within the handshake timeout; the peer is stalled or \
         does not speak the sp protocols"
    )]
    TimedOut,
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;

    fn start(local: ProtocolId) -> (Handshake, Instant) {
        let now = Instant::now();
        (Handshake::new(local, now, DEFAULT_HANDSHAKE_TIMEOUT), now)
    }

    #[test]
    fn header_bytes_match_the_spec_examples() {
        assert_eq!(
            header_bytes(ProtocolId::REQ),
            [0, 0x53, 0x50, 0, 0, 0x30, 0, 0]
        );
        assert_eq!(
            header_bytes(ProtocolId::REP),
            [0, 0x53, 0x50, 0, 0, 0x31, 0, 0]
        );
        assert_eq!(
            header_bytes(ProtocolId::PAIR1),
            [0, 0x53, 0x50, 0, 0, 0x11, 0, 0]
        );
        assert_eq!(
            header_bytes(ProtocolId::STAR),
            [0, 0x53, 0x50, 0, 0x06, 0x40, 0, 0]
        );
    }

    #[test]
    fn accepts_the_valid_peer_and_leaves_the_first_frame() {
        let (mut hs, _) = start(ProtocolId::REQ);
        assert_eq!(hs.outgoing(), header_bytes(ProtocolId::REQ));
        let mut data = header_bytes(ProtocolId::REP).to_vec();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(hs.handle_bytes(&data), HANDSHAKE_LEN);
        assert_eq!(hs.result(), Some(Ok(ProtocolId::REP)));
        assert_eq!(hs.poll_timeout(), None);
        assert_eq!(hs.handle_bytes(&data), 0);
    }

    #[test]
    fn accepts_a_header_fed_one_byte_at_a_time() {
        let (mut hs, _) = start(ProtocolId::PUB);
        for (i, byte) in header_bytes(ProtocolId::SUB).iter().enumerate() {
            assert_eq!(hs.result(), None, "decided early at byte {i}");
            assert_eq!(hs.handle_bytes(&[*byte]), 1);
        }
        assert_eq!(hs.result(), Some(Ok(ProtocolId::SUB)));
    }

    #[test]
    fn rejects_an_incompatible_peer() {
        let (mut hs, _) = start(ProtocolId::PAIR0);
        hs.handle_bytes(&header_bytes(ProtocolId::PAIR1));
        assert_eq!(
            hs.result(),
            Some(Err(HandshakeError::IncompatiblePeer {
                local: ProtocolId::PAIR0,
                peer: ProtocolId::PAIR1
            }))
        );
    }

    #[test]
    fn rejects_bad_magic_on_the_first_wrong_byte() {
        let (mut hs, _) = start(ProtocolId::REQ);
        assert_eq!(hs.handle_bytes(&[0x01]), 1);
        assert_eq!(
            hs.result(),
            Some(Err(HandshakeError::BadMagic { bytes: [1, 0, 0] }))
        );
        let (mut hs, _) = start(ProtocolId::REQ);
        assert_eq!(
            hs.handle_bytes(&[0, b'x', b'P', 0, 0, 0x31, 0, 0]),
            2,
            "stops at 'x'"
        );
        assert_eq!(
            hs.result(),
            Some(Err(HandshakeError::BadMagic {
                bytes: [0, b'x', 0]
            }))
        );
    }

    #[test]
    fn rejects_bad_version_and_reserved_bytes() {
        let (mut hs, _) = start(ProtocolId::REQ);
        hs.handle_bytes(&[0, b'S', b'P', 2, 0, 0, 0, 0]);
        assert_eq!(
            hs.result(),
            Some(Err(HandshakeError::BadVersion { version: 2 }))
        );
        let (mut hs, _) = start(ProtocolId::REQ);
        hs.handle_bytes(&[0, b'S', b'P', 0, 0, 0x31, 0, 1]);
        assert_eq!(
            hs.result(),
            Some(Err(HandshakeError::BadReserved { value: 1 }))
        );
    }

    #[test]
    fn eof_before_eight_bytes_is_truncated() {
        let (mut hs, _) = start(ProtocolId::REQ);
        hs.handle_bytes(&[0, b'S', b'P']);
        hs.handle_eof();
        assert_eq!(
            hs.result(),
            Some(Err(HandshakeError::Truncated { received: 3 }))
        );
        let (mut done, _) = start(ProtocolId::REQ);
        done.handle_bytes(&header_bytes(ProtocolId::REP));
        done.handle_eof();
        assert_eq!(done.result(), Some(Ok(ProtocolId::REP)));
    }

    #[test]
    fn times_out_only_at_the_deadline() {
        let (mut hs, now) = start(ProtocolId::REQ);
        let deadline = now + DEFAULT_HANDSHAKE_TIMEOUT;
        assert_eq!(hs.poll_timeout(), Some(deadline));
        hs.handle_timeout(deadline - Duration::from_nanos(1));
        assert_eq!(hs.result(), None);
        hs.handle_timeout(deadline);
        assert_eq!(hs.result(), Some(Err(HandshakeError::TimedOut)));
        assert_eq!(hs.poll_timeout(), None);
    }

    #[test]
    fn unrepresentable_timeout_means_no_deadline() {
        let hs = Handshake::new(ProtocolId::REQ, Instant::now(), Duration::MAX);
        assert_eq!(hs.poll_timeout(), None);
    }

    #[test]
    fn unknown_local_type_accepts_no_one() {
        let (mut hs, _) = start(ProtocolId(0x0fff));
        hs.handle_bytes(&header_bytes(ProtocolId(0x0fff)));
        assert!(matches!(
            hs.result(),
            Some(Err(HandshakeError::IncompatiblePeer { .. }))
        ));
    }
}
