//! Entry points for the cargo-fuzz targets in `fuzz/` and for the corpus replay test.
//!
//! Each function accepts arbitrary bytes. It panics only when an invariant of the code under
//! test is broken, which is a bug.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::frame::{FrameDecoder, FrameError, FrameKind, MAX_LENGTH_CLAIM};
use crate::handshake::{header_bytes, Handshake, HandshakeError, HANDSHAKE_LEN};
use crate::rng::SplitMix64;
use crate::ProtocolId;

/// Receive limits the frame target picks from (0 = unlimited).
const MAX_SIZES: [usize; 8] = [
    0,
    1,
    10,
    16,
    100,
    1024,
    65_536,
    crate::frame::DEFAULT_MAX_MESSAGE_SIZE,
];

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

/// Decodes a stream of frames, fed whole and in chunks, and checks the decoder's invariants.
///
/// The first byte picks the framing (bit 0) and a receive limit (bits 1–3); the rest is the
/// stream. The chunk boundaries come from a generator seeded with a hash of the input.
///
/// Checked: the decoder never consumes more than it was given, consumes exactly prefix plus
/// payload, returns payloads equal to the bytes on the wire and within the limit, leaves the
/// buffer untouched (capacity included) on `Ok(None)` and on errors, reports at least one wanted
/// byte when it needs more, and agrees with an independent reference parser whatever the
/// chunking.
pub fn frame_decoder(data: &[u8]) {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let kind = if control & 1 == 0 {
        FrameKind::Tcp
    } else {
        FrameKind::Ipc
    };
    let max = MAX_SIZES[usize::from((control >> 1) & 7)];
    let expected = reference_decode(kind, max, stream);

    let whole = decode_in_chunks(kind, max, stream, &mut |rest| rest);
    assert_eq!(
        whole, expected,
        "decoding the whole input disagrees with the reference"
    );

    let mut rng = SplitMix64::new(fnv1a(data));
    let chunked = decode_in_chunks(kind, max, stream, &mut |rest| {
        // Favour small chunks so prefixes get split, with occasional large ones.
        let cap = if rng.below(4) == 0 {
            rest
        } else {
            rest.min(12)
        };
        1 + rng.below(cap as u64) as usize
    });
    assert_eq!(
        chunked, expected,
        "decoding in chunks disagrees with the reference"
    );
}

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

/// What decoding a stream produced: the payloads, then how it stopped (an error, or `None`
/// with the number of bytes left waiting for more).
type DecodeOutcome = (Vec<Vec<u8>>, Result<usize, FrameError>);

/// Feeds `stream` to a fresh decoder in chunks whose sizes `next_chunk(remaining)` picks
/// (1..=remaining), decoding after each chunk, and checks every call's invariants.
fn decode_in_chunks(
    kind: FrameKind,
    max: usize,
    stream: &[u8],
    next_chunk: &mut dyn FnMut(usize) -> usize,
) -> DecodeOutcome {
    let mut decoder = FrameDecoder::new(kind, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    loop {
        loop {
            let len_before = buf.len();
            let capacity_before = buf.capacity();
            let wanted = decoder.bytes_wanted(&buf);
            let snapshot = buf.clone();
            match decoder.decode(&mut buf) {
                Ok(Some(payload)) => {
                    let consumed = len_before - buf.len();
                    assert!(consumed <= len_before, "consumed more than given");
                    assert_eq!(consumed, kind.prefix_len() + payload.len());
                    assert_eq!(&snapshot[kind.prefix_len()..consumed], &payload[..]);
                    assert_eq!(wanted, 0, "bytes_wanted > 0 although a frame was complete");
                    if max != 0 {
                        assert!(payload.len() <= max, "payload above the limit");
                    }
                    frames.push(payload.to_vec());
                }
                Ok(None) => {
                    assert_eq!(buf, snapshot, "Ok(None) changed the buffer");
                    assert_eq!(buf.capacity(), capacity_before, "Ok(None) allocated");
                    assert!(
                        wanted >= 1,
                        "bytes_wanted is 0 although more bytes are needed"
                    );
                    if max != 0 {
                        assert!(
                            wanted <= max + kind.prefix_len(),
                            "bytes_wanted above limit"
                        );
                    }
                    break;
                }
                Err(err) => {
                    assert_eq!(buf, snapshot, "an error changed the buffer");
                    assert_eq!(buf.capacity(), capacity_before, "an error allocated");
                    assert_eq!(wanted, 0);
                    assert!(!err.to_string().is_empty());
                    return (frames, Err(err));
                }
            }
        }
        if fed == stream.len() {
            return (frames, Ok(buf.len()));
        }
        let n = next_chunk(stream.len() - fed).clamp(1, stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
    }
}

/// An independent, deliberately simple reading of spec 2.2 and 2.3.
fn reference_decode(kind: FrameKind, max: usize, mut stream: &[u8]) -> DecodeOutcome {
    let mut frames = Vec::new();
    loop {
        if kind == FrameKind::Ipc {
            match stream.first() {
                Some(&0x01) | None => {}
                Some(&byte) => return (frames, Err(FrameError::BadIpcType { byte })),
            }
        }
        let p = kind.prefix_len();
        if stream.len() < p {
            return (frames, Ok(stream.len()));
        }
        let len = u64::from_be_bytes(stream[p - 8..p].try_into().expect("slice of 8 bytes"));
        if len >= MAX_LENGTH_CLAIM {
            return (frames, Err(FrameError::ReservedLengthBits { len }));
        }
        if max != 0 && len > max as u64 {
            return (frames, Err(FrameError::TooLarge { len, max }));
        }
        // Inputs are far smaller than 2^60, so a length that does not fit is simply incomplete.
        match usize::try_from(len)
            .ok()
            .and_then(|len| stream.get(p..p.checked_add(len)?))
        {
            Some(payload) => {
                frames.push(payload.to_vec());
                stream = &stream[p + payload.len()..];
            }
            None => return (frames, Ok(stream.len())),
        }
    }
}

/// The result and total consumption of one handshake run.
type HandshakeOutcome = (Option<Result<ProtocolId, HandshakeError>>, usize);

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

/// FNV-1a: a stable hash of the input to seed the chunking, with no std hasher randomness.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant
mod tests {
    use super::*;

    #[test]
    fn frame_decoder_accepts_edge_inputs() {
        for input in [
            &[][..],
            &[0],
            &[0, 0x80],
            &[1, 0, 0, 0, 1],
            &[0, 0, 0, 0, 0, 0, 0, 0, 10, 1, 2],
            &[0, 0x10, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x0f, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xaa, 2],
        ] {
            frame_decoder(input);
        }
    }

    #[test]
    fn handshake_accepts_edge_inputs() {
        let mut good = vec![0x04];
        good.extend_from_slice(&header_bytes(ProtocolId::REP));
        good.extend_from_slice(b"trailing frame bytes");
        for ending in 0..4u8 {
            good[0] = 0x04 | (ending << 4);
            let now = Instant::now();
            handshake(&good, now);
            handshake(&good[..5], now);
            handshake(&[ending << 4], now);
        }
        handshake(&[], Instant::now());
    }
}
