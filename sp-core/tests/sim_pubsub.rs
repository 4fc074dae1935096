//! PUB/SUB scenarios from SP-PROTOCOLS.md section 8.5, run in the deterministic simulator.
//! Scenario 73 (SUB contexts) is in `sim_contexts.rs` and `tests/tests/contexts.rs`.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::pubsub::{Pub, PubConfig, Sub, SubConfig, SubscribeError, XSub};
use sp_core::protocol::{Event, Input, Protocol, RecvError, SendError, Transmit};
use sp_core::sim::{Action, App, LinkConfig, NodeId, RawPeer, Sim};
use sp_core::{Message, PipeId, ProtocolId};

const SEED: u64 = 0x5eed_0020;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn bodies(list: &[&str]) -> Vec<Bytes> {
    list.iter().map(|s| b(s)).collect()
}

/// Adds a SUB node subscribed to `topics`, linked to `publisher` and connected.
fn add_sub(
    sim: &mut Sim,
    publisher: NodeId,
    name: &str,
    config: SubConfig,
    topics: &[&str],
    app: App,
) -> NodeId {
    let mut sub = Sub::new(config);
    for topic in topics {
        sub.subscribe(topic.as_bytes());
    }
    let node = sim.add_node(name, sub, app);
    let link = sim.add_link(node, publisher, LinkConfig::default());
    sim.connect(link);
    node
}

fn add_pub(sim: &mut Sim, config: PubConfig) -> NodeId {
    sim.add_node("pub", Pub::new(config), App::Manual)
}

/// Receives on `node` until `WouldBlock`.
fn recv_all(sim: &mut Sim, node: NodeId) -> Vec<Bytes> {
    std::iter::from_fn(|| sim.recv(node).ok())
        .map(|m| m.body)
        .collect()
}

fn publish(sim: &mut Sim, publisher: NodeId, list: &[&str]) {
    for body in list {
        sim.send(publisher, b(body)).unwrap();
    }
}

// Scenario 67 (`sub_test.c` test_sub_filter).
#[test]
fn sub_filters_by_prefix_and_unsubscribe_purges_queued_messages() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());
    let topics = ["abc", "def", "ghi", "jkl"];
    let sub = add_sub(
        &mut sim,
        publisher,
        "sub",
        SubConfig::default(),
        &topics,
        App::Manual,
    );

    publish(
        &mut sim,
        publisher,
        &["def", "de", "abc123", "xzy", "ghi-drop", "jkl-mno"],
    );
    sim.run_until_idle(100);
    sim.with_protocol(sub, |s: &mut Sub, _| s.unsubscribe(b"ghi"))
        .unwrap();

    assert_eq!(
        recv_all(&mut sim, sub),
        bodies(&["def", "abc123", "jkl-mno"])
    );
}

// Scenario 68.
#[test]
fn sub_without_subscription_gets_nothing_and_empty_topic_gets_everything() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());
    let deaf = add_sub(
        &mut sim,
        publisher,
        "deaf",
        SubConfig::default(),
        &[],
        App::Collect,
    );
    let all = add_sub(
        &mut sim,
        publisher,
        "all",
        SubConfig::default(),
        &[""],
        App::Collect,
    );

    publish(&mut sim, publisher, &["x", "", "yz"]);
    sim.run_until_idle(100);

    assert!(sim.received_bodies(deaf).is_empty());
    assert_eq!(sim.received_bodies(all), bodies(&["x", "", "yz"]));
}

// Scenario 69 (`sub_test.c` test_sub_unsubscribe_option).
#[test]
fn sub_unsubscribing_an_unknown_topic_is_an_error() {
    let mut sub = Sub::new(SubConfig::default());
    sub.subscribe(b"abc");

    for unknown in [&b"ab"[..], b"abcd", b"", b"xyz"] {
        assert_eq!(sub.unsubscribe(unknown), Err(SubscribeError::UnknownTopic));
    }
    assert_eq!(sub.unsubscribe(b"abc"), Ok(()));
    assert_eq!(sub.unsubscribe(b"abc"), Err(SubscribeError::UnknownTopic));
}

/// Publishes one/two/three to a SUB with a queue of 2 and returns what it then receives and
/// how many messages it dropped.
fn overflow_a_queue_of_two(prefer_new: bool) -> (Vec<Bytes>, u64) {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());
    let config = SubConfig {
        recv_buffer: 2,
        prefer_new,
    };
    let sub = add_sub(&mut sim, publisher, "sub", config, &[""], App::Manual);

    publish(&mut sim, publisher, &["one", "two", "three"]);
    sim.run_until_idle(100);

    let dropped = sim.protocol::<Sub>(sub).unwrap().dropped();
    (recv_all(&mut sim, sub), dropped)
}

// Scenario 70 (`sub_test.c` test_sub_drop_new).
#[test]
fn sub_full_queue_prefer_old_drops_the_new_message() {
    assert_eq!(overflow_a_queue_of_two(false), (bodies(&["one", "two"]), 1));
}

// Scenario 71 (`sub_test.c` test_sub_drop_old, mangos TestSubRecvQLen).
#[test]
fn sub_full_queue_prefer_new_drops_the_oldest_message() {
    assert_eq!(
        overflow_a_queue_of_two(true),
        (bodies(&["two", "three"]), 1)
    );
}

// Scenario 72 (`pub_test.c` test_pub_send_no_pipes).
#[test]
fn pub_without_subscribers_accepts_and_discards() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());

    assert_eq!(sim.send(publisher, "into the void"), Ok(()));
    let sub = add_sub(
        &mut sim,
        publisher,
        "late",
        SubConfig::default(),
        &[""],
        App::Collect,
    );
    sim.send(publisher, "heard").unwrap();
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(sub), bodies(&["heard"]));
    assert_eq!(sim.protocol::<Pub>(publisher).unwrap().dropped(), 0);
}

/// A SUB peer that reads one message and then never again, like an application that stopped
/// reading and let its TCP window close: its pipe stays busy for the publisher forever.
#[derive(Debug)]
struct Stalled(RawPeer);

impl Protocol for Stalled {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::SUB
    }

    fn handle(&mut self, input: Input, now: Instant) {
        self.0.handle(input, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.0.handle_timeout(now);
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.0.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.0.poll_event()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_receiving(&self, _pipe: PipeId) -> bool {
        false
    }

    fn send(&mut self, msg: Message, now: Instant) -> Result<(), SendError> {
        self.0.send(msg, now)
    }

    fn recv(&mut self, now: Instant) -> Result<Message, RecvError> {
        self.0.recv(now)
    }
}

// Scenario 72 (mangos TestPubNonBlock): a stalled subscriber never blocks the publisher, and
// the others still get everything.
#[test]
fn pub_never_blocks_with_a_stalled_subscriber() {
    const SENDS: u64 = 1000;
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());
    let stalled = sim.add_node(
        "stalled",
        Stalled(RawPeer::new(ProtocolId::SUB)),
        App::Manual,
    );
    let link = sim.add_link(stalled, publisher, LinkConfig::default());
    sim.connect(link);
    let healthy = add_sub(
        &mut sim,
        publisher,
        "healthy",
        SubConfig::default(),
        &[""],
        App::Collect,
    );
    for n in 0..SENDS {
        let body = b(&n.to_string());
        sim.at(
            ms(n),
            Action::Send {
                node: publisher,
                body,
            },
        );
    }

    sim.run_until_idle(100_000);

    let sends = sim.sends(publisher);
    assert_eq!(sends.len(), SENDS as usize);
    assert!(sends.iter().all(|s| s.result.is_ok()));
    let expected: Vec<Bytes> = (0..SENDS).map(|n| b(&n.to_string())).collect();
    assert_eq!(sim.received_bodies(healthy), expected);
    // One message delivered, one stuck in flight, 16 queued: the rest dropped for it alone.
    let dropped = sim.protocol::<Pub>(publisher).unwrap().dropped();
    assert_eq!(dropped, SENDS - 1 - 1 - 16);
    assert!(sim.is_connected(link));
}

#[test]
fn pub_queue_overflow_drops_the_oldest_for_the_slow_subscriber_and_counts() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig { send_buffer: 4 });
    let fast = sim.add_node("fast", Sub::new(SubConfig::default()), App::Collect);
    let slow = sim.add_node("slow", Sub::new(SubConfig::default()), App::Collect);
    let roomy = LinkConfig {
        capacity: 64,
        ..LinkConfig::default()
    };
    let narrow = LinkConfig {
        latency: ms(100),
        ..LinkConfig::default()
    };
    for (node, config) in [(fast, roomy), (slow, narrow)] {
        sim.with_protocol(node, |s: &mut Sub, _| s.subscribe(b""));
        let link = sim.add_link(node, publisher, config);
        sim.connect(link);
    }
    let all: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();

    publish(&mut sim, publisher, &all);
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(fast), bodies(&all));
    // 1 went out at once; 2..=5 filled the queue; each of 6..=10 pushed out the oldest.
    assert_eq!(
        sim.received_bodies(slow),
        bodies(&["1", "7", "8", "9", "10"])
    );
    assert_eq!(sim.protocol::<Pub>(publisher).unwrap().dropped(), 5);
}

// Scenario 74 (`xsub_test.c` test_xsub_subscribe_option, mangos TestXSubCannotSubscribe).
#[test]
fn xsub_refuses_subscriptions_and_delivers_every_message() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());
    let xsub = sim.add_node("xsub", XSub::new(SubConfig::default()), App::Collect);
    let link = sim.add_link(xsub, publisher, LinkConfig::default());
    sim.connect(link);

    let refused = sim.with_protocol(xsub, |x: &mut XSub, _| x.subscribe(b"abc"));
    publish(&mut sim, publisher, &["abc", "xyz", ""]);
    sim.run_until_idle(100);

    assert_eq!(refused, Err(SubscribeError::NotSupported));
    assert_eq!(sim.received_bodies(xsub), bodies(&["abc", "xyz", ""]));
    assert!(sim
        .inbox(xsub)
        .iter()
        .all(|e| e.result.as_ref().is_ok_and(|m| m.header.is_empty())));
}

// Scenario 75 (mangos TestPubBroadcast).
#[test]
fn pub_broadcasts_every_message_to_every_matching_subscriber() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());
    let subs: Vec<(NodeId, Vec<Bytes>)> = [
        (
            "everything",
            &[""][..],
            &["news:1", "sport:1", "news:2", "weather"][..],
        ),
        ("news", &["news"][..], &["news:1", "news:2"][..]),
        ("sport", &["sport", "sport:"][..], &["sport:1"][..]),
    ]
    .into_iter()
    .map(|(name, topics, expected)| {
        let node = add_sub(
            &mut sim,
            publisher,
            name,
            SubConfig::default(),
            topics,
            App::Collect,
        );
        (node, bodies(expected))
    })
    .collect();

    publish(
        &mut sim,
        publisher,
        &["news:1", "sport:1", "news:2", "weather"],
    );
    sim.run_until_idle(100);

    for (node, expected) in subs {
        assert_eq!(sim.received_bodies(node), expected, "{}", sim.name(node));
    }
}

#[test]
fn pub_and_sub_refuse_peers_of_the_wrong_type() {
    let mut sim = Sim::new(SEED, Instant::now());
    let publisher = add_pub(&mut sim, PubConfig::default());
    let sub = sim.add_node("sub", Sub::new(SubConfig::default()), App::Manual);
    let pull = sim.add_node("pull", RawPeer::new(ProtocolId::PULL), App::Manual);
    let push = sim.add_node("push", RawPeer::new(ProtocolId::PUSH), App::Manual);
    let to_pub = sim.add_link(pull, publisher, LinkConfig::default());
    let to_sub = sim.add_link(push, sub, LinkConfig::default());

    sim.connect(to_pub);
    sim.connect(to_sub);

    assert!(!sim.is_connected(to_pub));
    assert!(!sim.is_connected(to_sub));
    assert!(sim.transcript_contains(publisher, "IncompatiblePeer"));
    assert!(sim.transcript_contains(sub, "IncompatiblePeer"));
    assert_eq!(sim.recv(publisher), Err(RecvError::NotSupported));
    assert_eq!(sim.send(sub, "x"), Err(SendError::NotSupported));
}
