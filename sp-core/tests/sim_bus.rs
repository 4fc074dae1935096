//! BUS scenarios from SP-PROTOCOLS.md section 8.6, run in the deterministic simulator.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::Instant;

use bytes::Bytes;
use sp_core::protocol::bus::{Bus, BusConfig, XBus};
use sp_core::protocol::Protocol;
use sp_core::sim::{App, LinkConfig, NodeId, Sim};
use sp_core::PipeId;

const SEED: u64 = 0x5eed_0070;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Adds a collecting BUS node named `name`, linked to `hub` and connected.
fn add_spoke(sim: &mut Sim, hub: NodeId, name: &str) -> NodeId {
    let node = sim.add_node(name, Bus::new(BusConfig::default()), App::Collect);
    let link = sim.add_link(node, hub, LinkConfig::default());
    sim.connect(link);
    node
}

// Scenario 83 (`bus_test.c` test_bus_star, mangos TestBusFanOut and TestBusFanIn).
#[test]
fn bus_fans_out_to_direct_peers_without_forwarding() {
    let mut sim = Sim::new(SEED, Instant::now());
    let s1 = sim.add_node("s1", Bus::new(BusConfig::default()), App::Collect);
    let s2 = add_spoke(&mut sim, s1, "s2");
    let s3 = add_spoke(&mut sim, s1, "s3");

    sim.send(s1, "from s1").unwrap();
    sim.send(s2, "from s2").unwrap();
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(s1), vec![b("from s2")]);
    assert_eq!(sim.received_bodies(s2), vec![b("from s1")]);
    assert_eq!(
        sim.received_bodies(s3),
        vec![b("from s1")],
        "s2's message is not forwarded"
    );
}

// Scenario 84 (`bus_test.c` test_bus_send_flood).
#[test]
fn bus_never_blocks_with_a_send_buffer_of_one() {
    const SENDS: usize = 1000;
    let mut sim = Sim::new(SEED, Instant::now());
    let config = BusConfig {
        send_buffer: 1,
        ..BusConfig::default()
    };
    let flooder = sim.add_node("flooder", Bus::new(config), App::Manual);
    let peer = add_spoke(&mut sim, flooder, "peer");

    for n in 0..SENDS {
        assert_eq!(sim.send(flooder, b(&n.to_string())), Ok(()), "send {n}");
    }
    sim.run_until_idle(100);

    // The first went out at once and the second waited in the queue of one.
    assert_eq!(sim.received_bodies(peer), vec![b("0"), b("1")]);
    let dropped = sim.protocol::<Bus>(flooder).unwrap().dropped();
    assert_eq!(dropped, SENDS as u64 - 2);
}

// Scenario 85 (mangos TestXBusNoLoop): a reflector hub re-broadcasts without echoing.
#[test]
fn xbus_sends_back_to_every_pipe_but_the_origin() {
    let mut sim = Sim::new(SEED, Instant::now());
    let hub = sim.add_node("hub", XBus::new(BusConfig::default()), App::Manual);
    let spokes: Vec<NodeId> = ["b1", "b2", "b3"]
        .into_iter()
        .map(|name| add_spoke(&mut sim, hub, name))
        .collect();

    sim.send(spokes[0], "hello").unwrap();
    sim.run_until_idle(100);
    let msg = sim.recv(hub).unwrap();
    let origin = u32::from_be_bytes(msg.header[..].try_into().expect("a 4-byte header"));
    let sent = sim.with_protocol(hub, |x: &mut XBus, now| x.send(msg.clone(), now));
    sim.run_until_idle(100);

    assert!(PipeId::new(origin).is_some(), "the header names a pipe");
    assert_eq!(msg.body, "hello");
    assert_eq!(sent, Ok(()));
    assert!(sim.received_bodies(spokes[0]).is_empty(), "no echo");
    for &spoke in &spokes[1..] {
        assert_eq!(
            sim.received_bodies(spoke),
            vec![b("hello")],
            "{}",
            sim.name(spoke)
        );
    }
}
