//! Properties of the raw header rules (SP-PROTOCOLS.md sections 4.2, 4.8 and 5.1): whatever a
//! peer or the application puts in front of a message, the raw cores accept exactly what the
//! rules allow and route it exactly where the header says.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use sp_core::protocol::pair1::{Pair1Config, XPair1};
use sp_core::protocol::reqrep_raw::{XRep, XRepConfig};
use sp_core::protocol::star::{StarConfig, XStar};
use sp_core::protocol::{Input, Protocol, SendError};
use sp_core::{Message, PipeId, ProtocolId};

fn p(n: u32) -> PipeId {
    PipeId::new(n).unwrap()
}

fn add(proto: &mut impl Protocol, pipe: u32, peer: ProtocolId, now: Instant) {
    proto.handle(
        Input::PipeAdded {
            pipe: p(pipe),
            peer,
        },
        now,
    );
}

proptest! {
    /// Raw PAIR v1 sends a header iff it is exactly one word below 0xFF, and puts it on the
    /// wire incremented by one.
    #[test]
    fn xpair1_send_accepts_exactly_the_valid_hop_words(
        header in proptest::collection::vec(any::<u8>(), 0..8),
        small in 0u32..0x100,
        use_small in any::<bool>(),
    ) {
        let now = Instant::now();
        let header = if use_small { small.to_be_bytes().to_vec() } else { header };
        let mut x = XPair1::new(Pair1Config::default());
        add(&mut x, 1, ProtocolId::PAIR1, now);
        let valid = header.len() == 4
            && u32::from_be_bytes(header[..].try_into().unwrap()) < 0xFF;

        let sent = x.send(Message::with_header(header.clone(), "b"), now);

        if valid {
            prop_assert_eq!(sent, Ok(()));
            let value = u32::from_be_bytes(header[..].try_into().unwrap());
            let tx = x.poll_transmit().unwrap();
            prop_assert_eq!(&tx.msg.header[..], &(value + 1).to_be_bytes()[..]);
        } else {
            prop_assert_eq!(sent, Err(SendError::InvalidHeader));
            prop_assert!(x.poll_transmit().is_none());
        }
    }

    /// STAR delivers and relays a received message iff its word is `00 00 00 h` with
    /// `h < ttl`; both carry `h + 1`, and the relay never goes back to the sender.
    #[test]
    fn star_relays_exactly_the_messages_under_ttl(
        word in proptest::collection::vec(any::<u8>(), 0..6),
        ttl in 1u8..=255,
    ) {
        let now = Instant::now();
        let mut x = XStar::new(StarConfig { max_ttl: ttl, ..StarConfig::default() });
        for pipe in [1, 2, 3] {
            add(&mut x, pipe, ProtocolId::STAR, now);
        }
        let mut wire = word.clone();
        wire.extend_from_slice(b"body");
        x.handle(Input::Received { pipe: p(2), msg: Message::new(wire) }, now);

        let accepted = word.len() >= 4 && word[..3] == [0, 0, 0] && word[3] < ttl;
        let relayed: Vec<_> = std::iter::from_fn(|| x.poll_transmit()).collect();
        let delivered = x.recv(now).ok();
        if accepted {
            let header = [0, 0, 0, word[3] + 1];
            let pipes: Vec<u32> = relayed.iter().map(|t| t.pipe.get()).collect();
            prop_assert_eq!(pipes, vec![1, 3]);
            for tx in &relayed {
                prop_assert_eq!(&tx.msg.header[..], &header[..]);
            }
            let msg = delivered.unwrap();
            prop_assert_eq!(&msg.header[..], &header[..]);
        } else {
            prop_assert!(relayed.is_empty());
            prop_assert!(delivered.is_none());
        }
    }

    /// XREP sends a received request back, unchanged, to the pipe it came from, with the
    /// stack exactly as it arrived.
    #[test]
    fn xrep_routes_a_reply_back_along_the_stack(
        hops in proptest::collection::vec(1u32..0x8000_0000, 0..7),
        id in 0x8000_0000u32..=u32::MAX,
        pipe in 1u32..0x8000_0000,
        other in 1u32..0x8000_0000,
    ) {
        prop_assume!(pipe != other);
        let now = Instant::now();
        let mut x = XRep::new(XRepConfig::default());
        add(&mut x, pipe, ProtocolId::REQ, now);
        add(&mut x, other, ProtocolId::REQ, now);
        let stack: Vec<u8> = hops.iter().chain([&id]).flat_map(|w| w.to_be_bytes()).collect();
        let mut wire = stack.clone();
        wire.extend_from_slice(b"req");
        x.handle(Input::Received { pipe: p(pipe), msg: Message::new(wire) }, now);

        let request = x.recv(now).unwrap();
        prop_assert_eq!(&request.header[..4], &pipe.to_be_bytes()[..]);
        x.send(Message::with_header(request.header, "rep"), now).unwrap();

        let tx = x.poll_transmit().unwrap();
        prop_assert_eq!(tx.pipe, p(pipe));
        prop_assert_eq!(tx.msg.header, Bytes::from(stack));
        prop_assert!(x.poll_transmit().is_none());
    }
}
