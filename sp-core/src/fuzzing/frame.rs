//! `frame_decoder`: the SP framing of TCP and IPC streams (spec 2.2, 2.3) against a
//! deliberately simple reference reader, whatever the chunking.

use bytes::BytesMut;

use super::fnv1a;
use crate::frame::{FrameDecoder, FrameError, FrameKind, MAX_LENGTH_CLAIM};
use crate::rng::SplitMix64;

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
