//! PAIR v1 (mono, cooked) scenarios from SP-PROTOCOLS.md sections 4.2 and 8.6, run in the
//! simulator. A [`RawPeer`] stands in for NNG where the test needs the bytes on the wire.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::pair::{Pair, PairConfig};
use sp_core::protocol::pair1::{Pair1, Pair1Config};
use sp_core::protocol::SendError;
use sp_core::sim::{Action, App, LinkConfig, LinkId, NodeId, RawPeer, Sim};
use sp_core::ProtocolId;

mod exclusive;

const SEED: u64 = 0x5eed_0011;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A wire message: the hop-count word `word`, then `body`.
fn hop(word: u32, body: &str) -> Bytes {
    let mut bytes = word.to_be_bytes().to_vec();
    bytes.extend_from_slice(body.as_bytes());
    bytes.into()
}

/// A PAIR v1 node (collecting what it receives) connected to a raw PAIR v1 peer.
fn pair1_and_raw_peer(sim: &mut Sim) -> (NodeId, NodeId, LinkId) {
    let pair = sim.add_node("pair1", Pair1::new(Pair1Config::default()), App::Collect);
    let raw = sim.add_node("raw", RawPeer::new(ProtocolId::PAIR1), App::Collect);
    let link = sim.add_link(raw, pair, LinkConfig::default());
    sim.connect(link);
    (pair, raw, link)
}

#[test]
fn pair1_exchanges_both_ways_with_one_hop_on_the_wire() {
    let mut sim = Sim::new(SEED, Instant::now());
    let (pair, raw, link) = pair1_and_raw_peer(&mut sim);

    sim.send(pair, "hi").unwrap();
    sim.send(raw, hop(1, "from nng")).unwrap();
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(raw), vec![hop(1, "hi")]);
    assert_eq!(&sim.received_bodies(raw)[0][..4], [0x00, 0x00, 0x00, 0x01]);
    assert_eq!(sim.received_bodies(pair), vec![b("from nng")]);
    assert!(sim.is_connected(link));
}

#[test]
fn pair1_talks_to_pair1_both_ways() {
    let mut sim = Sim::new(SEED, Instant::now());
    let client = sim.add_node("client", Pair1::new(Pair1Config::default()), App::Collect);
    let server = sim.add_node(
        "server",
        Pair1::new(Pair1Config::default()),
        App::prefix_responder("echo "),
    );
    let link = sim.add_link(client, server, LinkConfig::default());
    sim.connect(link);

    for (n, body) in ["one", "two", "three"].into_iter().enumerate() {
        sim.at(
            ms(n as u64),
            Action::SendBlocking {
                node: client,
                body: b(body),
            },
        );
    }
    sim.run_until_idle(1000);

    assert_eq!(
        sim.received_bodies(client),
        vec![b("echo one"), b("echo two"), b("echo three")]
    );
    assert!(sim.is_connected(link));
}

#[test]
fn pair1_accepts_hop_count_zero_from_mangos() {
    let mut sim = Sim::new(SEED, Instant::now());
    let (pair, raw, link) = pair1_and_raw_peer(&mut sim);

    sim.send(raw, hop(0, "cooked mangos")).unwrap();
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(pair), vec![b("cooked mangos")]);
    assert!(sim.is_connected(link));
}

/// Sends `wire` from a raw peer and checks that PAIR v1 kicked the pipe without delivering.
fn assert_kicked_by(wire: Bytes) {
    let mut sim = Sim::new(SEED, Instant::now());
    let (pair, raw, link) = pair1_and_raw_peer(&mut sim);

    sim.send(raw, wire).unwrap();
    sim.run_until_idle(100);

    assert!(sim.transcript_contains(pair, "MalformedHeader"));
    assert!(!sim.is_connected(link));
    assert!(sim.received_bodies(pair).is_empty());
}

// Scenario 81: garbage (hop word > 0xFF) kicks the pipe.
#[test]
fn pair1_kicks_pipe_on_garbage_hop_word() {
    assert_kicked_by(hop(0x1000, "garbage"));
}

#[test]
fn pair1_kicks_pipe_on_message_shorter_than_hop_word() {
    assert_kicked_by(Bytes::from_static(&[0x00, 0x01]));
}

// Scenario 81: over-TTL messages are dropped, the pipe stays.
#[test]
fn pair1_drops_over_ttl_and_keeps_the_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let (pair, raw, link) = pair1_and_raw_peer(&mut sim);
    sim.with_protocol(pair, |p: &mut Pair1, _| p.set_max_ttl(4))
        .unwrap();

    for (n, msg) in [hop(5, "looped"), hop(0xFF, "looped"), hop(4, "fits")]
        .into_iter()
        .enumerate()
    {
        sim.at(
            ms(n as u64),
            Action::SendBlocking {
                node: raw,
                body: msg,
            },
        );
    }
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(pair), vec![b("fits")]);
    assert!(sim.is_connected(link));
    assert!(!sim.transcript_contains(pair, "ClosePipe"));
}

// Scenario 79 for PAIR v1.
#[test]
fn pair1_refuses_second_peer_and_a_redialing_peer_takes_over() {
    exclusive::exclusive_peer_takes_over(SEED, || Pair1::new(Pair1Config::default()));
}

#[test]
fn pair1_does_not_accept_a_pair0_peer() {
    let mut sim = Sim::new(SEED, Instant::now());
    let v1 = sim.add_node("pair1", Pair1::new(Pair1Config::default()), App::Collect);
    let v0 = sim.add_node("pair0", Pair::new(PairConfig::default()), App::Collect);
    let raw_v0 = sim.add_node("raw-pair0", RawPeer::new(ProtocolId::PAIR0), App::Manual);
    let link = sim.add_link(v0, v1, LinkConfig::default());
    let raw_link = sim.add_link(raw_v0, v1, LinkConfig::default());

    sim.connect(link);
    sim.connect(raw_link);

    assert!(sim.transcript_contains(v1, "IncompatiblePeer"));
    assert!(!sim.is_connected(link));
    assert!(!sim.is_connected(raw_link));
    assert_eq!(sim.send(v1, "nobody"), Err(SendError::WouldBlock));
}

// Scenario 80 (`pair1_test.c` test_mono_back_pressure).
#[test]
fn pair1_back_pressure_blocks_sends_and_drops_nothing() {
    exclusive::back_pressure_blocks_sends_and_drops_nothing(
        SEED,
        Pair1::new(Pair1Config::default()),
        Pair1::new(Pair1Config {
            recv_buffer: 1,
            ..Pair1Config::default()
        }),
    );
}
