//! STAR scenarios from SP-PROTOCOLS.md sections 4.8 and 8.6 (mangos' `xstar_test.go`), run in
//! the simulator.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::Instant;

use bytes::Bytes;
use sp_core::protocol::star::{Star, StarConfig, XStar};
use sp_core::protocol::{ConfigError, Protocol};
use sp_core::sim::{App, LinkConfig, NodeId, Sim};
use sp_core::Message;

const SEED: u64 = 0x5eed_0640;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn connect(sim: &mut Sim, a: NodeId, b: NodeId) {
    let link = sim.add_link(a, b, LinkConfig::default());
    sim.connect(link);
}

/// Returns `(header, body)` of every message `node` received.
fn received(sim: &Sim, node: NodeId) -> Vec<(Bytes, Bytes)> {
    sim.inbox(node)
        .iter()
        .filter_map(|e| e.result.as_ref().ok())
        .map(|m| (m.header.clone(), m.body.clone()))
        .collect()
}

fn hops(n: u8) -> Bytes {
    Bytes::copy_from_slice(&[0, 0, 0, n])
}

// Scenario 86 (mangos TestXStarRedistribute): s1 and s3 both connect to s2; s1's message
// reaches s2 with hop count 1 and s3 with hop count 2, and does not come back to s1.
#[test]
fn xstar_redistribute_hops() {
    let mut sim = Sim::new(SEED, Instant::now());
    let [s1, s2, s3] = ["s1", "s2", "s3"]
        .map(|name| sim.add_node(name, XStar::new(StarConfig::default()), App::Collect));
    connect(&mut sim, s1, s2);
    connect(&mut sim, s3, s2);

    let msg = Message::with_header(hops(0).to_vec(), "hello");
    let sent = sim.with_protocol::<XStar, _>(s1, |x, now| x.send(msg, now));
    assert_eq!(sent, Ok(()));
    sim.run_until_idle(100);

    assert_eq!(received(&sim, s2), vec![(hops(1), b("hello"))]);
    assert_eq!(received(&sim, s3), vec![(hops(2), b("hello"))]);
    assert!(received(&sim, s1).is_empty(), "no echo to the sender");
}

// Section 4.8: cooked STAR is a thin wrapper around XSTAR, so cooked sockets relay too; the
// application sees bodies only.
#[test]
fn star_cooked_sockets_relay_along_a_line() {
    let mut sim = Sim::new(SEED, Instant::now());
    let nodes: Vec<NodeId> = (0..4)
        .map(|i| {
            sim.add_node(
                &format!("s{i}"),
                Star::new(StarConfig::default()),
                App::Collect,
            )
        })
        .collect();
    for pair in nodes.windows(2) {
        connect(&mut sim, pair[0], pair[1]);
    }

    sim.send(nodes[3], "from the end").unwrap();
    sim.run_until_idle(100);

    for &node in &nodes[..3] {
        assert_eq!(
            received(&sim, node),
            vec![(Bytes::new(), b("from the end"))],
            "{}",
            sim.name(node)
        );
    }
    assert!(received(&sim, nodes[3]).is_empty());
}

// Section 5.3: a message is dropped once its hop count reaches the TTL. Along a line of
// cooked stars with the default TTL of 8 it reaches the 8 next members and no further.
#[test]
fn star_ttl_drop_after_max_hops() {
    let mut sim = Sim::new(SEED, Instant::now());
    let nodes: Vec<NodeId> = (0..11)
        .map(|i| {
            sim.add_node(
                &format!("s{i}"),
                Star::new(StarConfig::default()),
                App::Collect,
            )
        })
        .collect();
    for pair in nodes.windows(2) {
        connect(&mut sim, pair[0], pair[1]);
    }

    sim.send(nodes[0], "flood").unwrap();
    sim.run_until_idle(1000);

    let reached: Vec<usize> = (1..nodes.len())
        .filter(|&i| !received(&sim, nodes[i]).is_empty())
        .collect();
    assert_eq!(reached, (1..=8).collect::<Vec<_>>());
    let ninth = sim.protocol::<Star>(nodes[9]).unwrap();
    assert_eq!(ninth.ttl_dropped(), 1);
}

// Section 5.3: in a cycle the hop count bounds the flood, so the network goes quiet.
#[test]
fn star_ring_stops_flooding_at_the_ttl() {
    let mut sim = Sim::new(SEED, Instant::now());
    let config = StarConfig {
        max_ttl: 4,
        ..StarConfig::default()
    };
    let ring: Vec<NodeId> = (0..3)
        .map(|i| sim.add_node(&format!("s{i}"), Star::new(config.clone()), App::Collect))
        .collect();
    for i in 0..ring.len() {
        connect(&mut sim, ring[i], ring[(i + 1) % ring.len()]);
    }

    sim.send(ring[0], "loop").unwrap();
    sim.run_until_idle(1000);

    // Each copy is relayed on both ring directions until hop 4: a bounded number of copies.
    let total: usize = ring.iter().map(|&n| received(&sim, n).len()).sum();
    assert!((2..=16).contains(&total), "{total} copies delivered");
}

// Scenario 86 (mangos TestXStarTTL): the TTL option rejects 0 (negative values and 256 do not
// fit the `u8` it takes) and accepts 1 through 255.
#[test]
fn star_ttl_option_range() {
    let mut sim = Sim::new(SEED, Instant::now());
    let s = sim.add_node("s", XStar::new(StarConfig::default()), App::Manual);
    let results =
        sim.with_protocol::<XStar, _>(s, |x, _| [0u8, 1, 8, 255].map(|ttl| x.set_max_ttl(ttl)));
    assert_eq!(
        results,
        [
            Err(ConfigError::MaxTtlOutOfRange(0)),
            Ok(()),
            Ok(()),
            Ok(())
        ]
    );
    assert_eq!(sim.protocol::<XStar>(s).unwrap().max_ttl(), 255);
}

// Section 4.8: STAR never blocks; a full per-pipe queue drops for that pipe only.
#[test]
fn star_never_blocks_and_drops_for_a_full_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let config = StarConfig {
        send_buffer: 1,
        ..StarConfig::default()
    };
    let flooder = sim.add_node("flooder", Star::new(config), App::Manual);
    let peer = sim.add_node("peer", Star::new(StarConfig::default()), App::Collect);
    connect(&mut sim, flooder, peer);

    for n in 0..100 {
        assert_eq!(sim.send(flooder, b(&n.to_string())), Ok(()), "send {n}");
    }
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(peer), vec![b("0"), b("1")]);
    assert_eq!(sim.protocol::<Star>(flooder).unwrap().dropped(), 98);
    assert!(!sim.protocol::<Star>(flooder).unwrap().is_raw());
}
