//! Property tests for stream framing (spec 2.2, 2.3) and the connection header (spec 2.1).
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use sp_core::frame::{
    encode, encode_prefix, FrameDecoder, FrameError, FrameKind, DEFAULT_MAX_MESSAGE_SIZE,
};
use sp_core::handshake::{
    header_bytes, Handshake, HandshakeError, DEFAULT_HANDSHAKE_TIMEOUT, HANDSHAKE_LEN,
};
use sp_core::{Message, ProtocolId};

const ALL_PROTOCOLS: [ProtocolId; 12] = ProtocolId::ALL;

fn kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![Just(FrameKind::Tcp), Just(FrameKind::Ipc)]
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop::collection::vec(any::<u8>(), 0..12),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(header, body)| Message::with_header(header, body))
}

/// Bytes biased towards plausible prefixes: small lengths and the IPC type byte show up often.
fn biased_byte() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(0u8), 1 => Just(1u8), 4 => any::<u8>()]
}

fn protocol() -> impl Strategy<Value = ProtocolId> {
    prop::sample::select(&ALL_PROTOCOLS[..])
}

/// Decodes every whole frame in `buf`, stopping at the first `Ok(None)` or error.
fn drain(decoder: &mut FrameDecoder, buf: &mut BytesMut) -> Result<Vec<Bytes>, FrameError> {
    let mut out = Vec::new();
    while let Some(payload) = decoder.decode(buf)? {
        out.push(payload);
    }
    Ok(out)
}

fn encode_all(kind: FrameKind, msgs: &[Message]) -> BytesMut {
    let mut wire = BytesMut::new();
    for msg in msgs {
        encode(kind, msg, &mut wire);
    }
    wire
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(
        kind in kind(),
        msgs in prop::collection::vec(message(), 0..8),
    ) {
        let mut wire = encode_all(kind, &msgs);
        let mut decoder = FrameDecoder::new(kind, DEFAULT_MAX_MESSAGE_SIZE);
        let frames = drain(&mut decoder, &mut wire).unwrap();
        let expected: Vec<Bytes> = msgs.iter().map(Message::to_contiguous).collect();
        prop_assert_eq!(frames, expected);
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn prefix_plus_parts_equals_contiguous_encoding(kind in kind(), msg in message()) {
        let mut contiguous = BytesMut::new();
        encode(kind, &msg, &mut contiguous);
        let mut vectored = encode_prefix(kind, msg.len()).as_bytes().to_vec();
        vectored.extend_from_slice(&msg.header);
        vectored.extend_from_slice(&msg.body);
        prop_assert_eq!(&contiguous[..], &vectored[..]);
        prop_assert_eq!(encode_prefix(kind, msg.len()).as_bytes().len(), kind.prefix_len());
    }

    #[test]
    fn splitting_the_stream_anywhere_yields_the_same_frames(
        kind in kind(),
        msgs in prop::collection::vec(message(), 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let wire = encode_all(kind, &msgs).freeze();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(wire.len());
        cuts.sort_unstable();

        let mut decoder = FrameDecoder::new(kind, DEFAULT_MAX_MESSAGE_SIZE);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut fed = 0;
        for cut in cuts {
            buf.extend_from_slice(&wire[fed..cut]);
            fed = cut;
            frames.extend(drain(&mut decoder, &mut buf).unwrap());
            // drain stopped at Ok(None): the decoder must then ask for at least one byte.
            prop_assert!(decoder.bytes_wanted(&buf) >= 1);
        }
        let expected: Vec<Bytes> = msgs.iter().map(Message::to_contiguous).collect();
        prop_assert_eq!(frames, expected);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn decoder_never_panics_overconsumes_or_exceeds_its_limit(
        kind in kind(),
        max in prop_oneof![Just(0usize), 1usize..64, Just(DEFAULT_MAX_MESSAGE_SIZE)],
        data in prop::collection::vec(biased_byte(), 0..200),
    ) {
        let mut decoder = FrameDecoder::new(kind, max);
        let mut buf = BytesMut::from(&data[..]);
        loop {
            let before = buf.len();
            let capacity = buf.capacity();
            let wanted = decoder.bytes_wanted(&buf);
            match decoder.decode(&mut buf) {
                Ok(Some(payload)) => {
                    prop_assert_eq!(before - buf.len(), kind.prefix_len() + payload.len());
                    prop_assert!(max == 0 || payload.len() <= max);
                }
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before);
                    prop_assert_eq!(buf.capacity(), capacity);
                    prop_assert!(wanted >= 1);
                    prop_assert!(max == 0 || wanted <= max + kind.prefix_len());
                    break;
                }
                Err(FrameError::TooLarge { len, max: limit }) => {
                    prop_assert_eq!(limit, max);
                    prop_assert!(len > max as u64);
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
                Err(_) => {
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
            }
        }
    }

    #[test]
    fn a_claim_of_2_pow_63_is_refused_without_allocating(
        kind in kind(),
        max in prop_oneof![Just(0usize), Just(DEFAULT_MAX_MESSAGE_SIZE), Just(usize::MAX)],
    ) {
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(encode_prefix(kind, 0).as_bytes());
        let len_at = kind.prefix_len() - 8;
        buf[len_at..len_at + 8].copy_from_slice(&(1u64 << 63).to_be_bytes());
        let capacity = buf.capacity();
        let mut decoder = FrameDecoder::new(kind, max);
        prop_assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::ReservedLengthBits { len: 1 << 63 })
        );
        prop_assert_eq!(buf.capacity(), capacity);
        prop_assert_eq!(buf.len(), kind.prefix_len());
    }

    #[test]
    fn handshake_accepts_exactly_the_valid_partner(
        local in protocol(),
        sent in protocol(),
        split in 0usize..=8,
        trailing in prop::collection::vec(any::<u8>(), 0..10),
    ) {
        let mut hs = Handshake::new(local, Instant::now(), DEFAULT_HANDSHAKE_TIMEOUT);
        let mut data = header_bytes(sent).to_vec();
        data.extend_from_slice(&trailing);
        let first = hs.handle_bytes(&data[..split]);
        let second = hs.handle_bytes(&data[split..]);
        prop_assert_eq!(first + second, HANDSHAKE_LEN);
        if local.is_valid_peer(sent) {
            prop_assert_eq!(hs.result(), Some(Ok(sent)));
        } else {
            prop_assert_eq!(
                hs.result(),
                Some(Err(HandshakeError::IncompatiblePeer { local, peer: sent }))
            );
        }
        prop_assert_eq!(hs.poll_timeout(), None);
    }

    #[test]
    fn handshake_never_panics_or_accepts_garbage(
        local in protocol(),
        data in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut hs = Handshake::new(local, Instant::now(), DEFAULT_HANDSHAKE_TIMEOUT);
        let consumed = hs.handle_bytes(&data);
        prop_assert!(consumed <= HANDSHAKE_LEN.min(data.len()));
        hs.handle_eof();
        let valid = local.peer().is_some_and(|peer| data.starts_with(&header_bytes(peer)));
        prop_assert_eq!(matches!(hs.result(), Some(Ok(_))), valid);
    }
}

/// The bad headers a listener must survive (spec 2.1, mangos `TranSendConnBadHandshakes`).
#[test]
fn handshake_rejects_each_bad_header_from_the_spec() {
    let good = header_bytes(ProtocolId::REP);
    for n in 0..HANDSHAKE_LEN {
        let mut hs = Handshake::new(ProtocolId::REQ, Instant::now(), DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(hs.handle_bytes(&good[..n]), n);
        assert_eq!(hs.result(), None, "decided after {n} good bytes");
        hs.handle_eof();
        assert_eq!(
            hs.result(),
            Some(Err(HandshakeError::Truncated { received: n }))
        );
    }

    let cases: [(&[u8; 8], HandshakeError); 5] = [
        (
            b"\x01SP\x00\x00\x31\x00\x00",
            HandshakeError::BadMagic { bytes: [1, 0, 0] },
        ),
        (
            b"\x00xP\x00\x00\x31\x00\x00",
            HandshakeError::BadMagic {
                bytes: [0, b'x', 0],
            },
        ),
        (
            b"\x00Sx\x00\x00\x31\x00\x00",
            HandshakeError::BadMagic {
                bytes: [0, b'S', b'x'],
            },
        ),
        (
            b"\x00SP\x02\x00\x00\x00\x00",
            HandshakeError::BadVersion { version: 2 },
        ),
        (
            b"\x00SP\x00\x00\x00\x00\x01",
            HandshakeError::BadReserved { value: 1 },
        ),
    ];
    for (bytes, expected) in cases {
        // Byte by byte, so that each failure is seen as soon as its field is complete.
        let mut hs = Handshake::new(ProtocolId::REQ, Instant::now(), DEFAULT_HANDSHAKE_TIMEOUT);
        for byte in bytes {
            hs.handle_bytes(std::slice::from_ref(byte));
        }
        assert_eq!(
            hs.result(),
            Some(Err(expected.clone())),
            "header {bytes:02x?}"
        );

        // All at once: the same verdict, and the bytes after the decisive one stay unconsumed.
        let mut hs = Handshake::new(ProtocolId::REQ, Instant::now(), DEFAULT_HANDSHAKE_TIMEOUT);
        let consumed = hs.handle_bytes(bytes);
        assert_eq!(
            hs.result(),
            Some(Err(expected.clone())),
            "header {bytes:02x?}"
        );
        assert!(consumed <= HANDSHAKE_LEN);
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn handshake_times_out_without_a_header() {
    let start = Instant::now();
    let timeout = Duration::from_millis(250);
    let mut hs = Handshake::new(ProtocolId::PUSH, start, timeout);
    hs.handle_bytes(&[0, b'S']);
    assert_eq!(hs.poll_timeout(), Some(start + timeout));
    hs.handle_timeout(start + timeout);
    assert_eq!(hs.result(), Some(Err(HandshakeError::TimedOut)));
}
