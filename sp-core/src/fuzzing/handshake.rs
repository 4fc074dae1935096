//! `handshake`: the 8-byte SP protocol header exchange, whatever the peer sends and however
//! its bytes are split.

use std::time::{Duration, Instant};

use super::fnv1a;
use crate::handshake::{header_bytes, Handshake, HandshakeError, HANDSHAKE_LEN};
use crate::rng::SplitMix64;
use crate::ProtocolId;

/// Local protocols the handshake target picks from, including an unknown one.
const LOCALS: [ProtocolId; 16] = {
    let mut all = [ProtocolId(0); 16];
    let mut i = 0;
    while i < ProtocolId::ALL.len() {
        all[i] = ProtocolId::ALL[i];
        i += 1;
    }
    // Unknown types, as an unknown local never accepts any peer.
    all[12] = ProtocolId(0x0000);
    all[13] = ProtocolId(0x0fff);
    all[14] = ProtocolId(0x3100);
    all[15] = ProtocolId(0xffff);
    all
};

/// Runs a handshake over arbitrary bytes, fed whole and in chunks, and checks its invariants.
///
/// The first byte picks the local protocol (bits 0–3) and how the input ends (bits 4–5:
/// nothing, end of stream, the deadline, or a call just before the deadline); the rest is what
/// the peer sent.
///
/// Checked: it consumes at most 8 bytes and never more than given, consumes nothing once
/// decided, accepts exactly the headers of valid peers, reports a deadline only while
/// undecided, and reaches the same result whatever the chunking.
/// `start` is any instant (the caller reads the clock; this crate never does).
pub fn handshake(data: &[u8], start: Instant) {
    let Some((&control, peer_bytes)) = data.split_first() else {
        return;
    };
    let local = LOCALS[usize::from(control & 0x0f)];
    let ending = (control >> 4) & 3;
    let whole = run_handshake(local, ending, peer_bytes, start, &mut |rest| rest);
    let mut rng = SplitMix64::new(fnv1a(data));
    let chunked = run_handshake(local, ending, peer_bytes, start, &mut |rest| {
        1 + rng.below(rest as u64) as usize
    });
    assert_eq!(
        whole, chunked,
        "the handshake result depends on how the bytes were split"
    );

    let valid = peer_bytes.len() >= HANDSHAKE_LEN
        && local
            .peer()
            .is_some_and(|peer| peer_bytes[..HANDSHAKE_LEN] == header_bytes(peer));
    match &whole.0 {
        Some(Ok(peer)) => {
            assert!(valid, "accepted an invalid header");
            assert!(local.is_valid_peer(*peer));
            assert_eq!(whole.1, HANDSHAKE_LEN);
        }
        Some(Err(HandshakeError::Truncated { received })) => {
            assert_eq!(ending, 1);
            assert!(*received < HANDSHAKE_LEN && *received == peer_bytes.len());
        }
        Some(Err(HandshakeError::TimedOut)) => assert_eq!(ending, 2),
        Some(Err(_)) => assert!(!valid, "rejected a valid header"),
        None => {
            assert!(peer_bytes.len() < HANDSHAKE_LEN);
            assert!(ending == 0 || ending == 3, "ended without a result");
        }
    }
}

/// The result and total consumption of one handshake run.
type HandshakeOutcome = (Option<Result<ProtocolId, HandshakeError>>, usize);

/// Runs one handshake, feeding `peer_bytes` in chunks `next_chunk(remaining)` picks and
/// ending as `ending` says, and checks each call's invariants.
fn run_handshake(
    local: ProtocolId,
    ending: u8,
    peer_bytes: &[u8],
    start: Instant,
    next_chunk: &mut dyn FnMut(usize) -> usize,
) -> HandshakeOutcome {
    let timeout = Duration::from_secs(10);
    let mut hs = Handshake::new(local, start, timeout);
    let deadline = start + timeout;
    assert_eq!(hs.poll_timeout(), Some(deadline));
    assert_eq!(hs.outgoing(), header_bytes(local));

    let mut consumed = 0;
    let mut offset = 0;
    while offset < peer_bytes.len() {
        let n = next_chunk(peer_bytes.len() - offset).clamp(1, peer_bytes.len() - offset);
        let chunk = &peer_bytes[offset..offset + n];
        let decided_before = hs.result().is_some();
        let took = hs.handle_bytes(chunk);
        assert!(took <= chunk.len(), "consumed more than given");
        if decided_before {
            assert_eq!(took, 0, "consumed bytes after the result was decided");
        }
        consumed += took;
        assert!(consumed <= HANDSHAKE_LEN, "consumed more than the header");
        if hs.result().is_none() {
            assert_eq!(took, n, "left bytes over while still undecided");
        }
        offset += n;
    }
    match ending {
        1 => hs.handle_eof(),
        2 => hs.handle_timeout(deadline),
        3 => {
            let before = hs.result();
            hs.handle_timeout(deadline - Duration::from_nanos(1));
            assert_eq!(hs.result(), before, "an early timeout changed the result");
        }
        _ => {}
    }
    match hs.result() {
        Some(_) => assert_eq!(hs.poll_timeout(), None, "a deadline after the result"),
        None => assert_eq!(hs.poll_timeout(), Some(deadline)),
    }
    (hs.result(), consumed)
}
