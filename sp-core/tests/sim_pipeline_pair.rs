//! PUSH/PULL and PAIR v0 scenarios from SP-PROTOCOLS.md section 8.6, run in the simulator.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::pair::{Pair, PairConfig};
use sp_core::protocol::pipeline::{Pull, PullConfig, Push, PushConfig};
use sp_core::protocol::{RecvError, SendError};
use sp_core::sim::{Action, App, LinkConfig, NodeId, RawPeer, Sim};
use sp_core::ProtocolId;

mod exclusive;

const SEED: u64 = 0x5eed_0002;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

// Scenario 76.
#[test]
fn push_round_robins_over_idle_pulls() {
    let mut sim = Sim::new(SEED, Instant::now());
    let push = sim.add_node("push", Push::new(PushConfig::default()), App::Manual);
    let pulls: Vec<NodeId> = (1..=3)
        .map(|i| {
            sim.add_node(
                &format!("pull{i}"),
                Pull::new(PullConfig::default()),
                App::Collect,
            )
        })
        .collect();
    for &pull in &pulls {
        let link = sim.add_link(push, pull, LinkConfig::default());
        sim.connect(link);
    }

    for body in ["one", "two", "three"] {
        sim.send(push, body).unwrap();
    }
    sim.run_until_idle(100);

    for (pull, body) in pulls.iter().zip(["one", "two", "three"]) {
        assert_eq!(
            sim.received_bodies(*pull),
            vec![b(body)],
            "{}",
            sim.name(*pull)
        );
    }
}

// Scenario 77.
#[test]
fn push_without_pull_would_block_and_a_late_pull_gets_the_waiting_message() {
    let mut sim = Sim::new(SEED, Instant::now());
    let push = sim.add_node("push", Push::new(PushConfig::default()), App::Manual);
    let pull = sim.add_node("pull", Pull::new(PullConfig::default()), App::Collect);
    let link = sim.add_link(push, pull, LinkConfig::default());

    assert_eq!(sim.send(push, "now"), Err(SendError::WouldBlock));
    sim.at(
        ms(0),
        Action::SendBlocking {
            node: push,
            body: b("waiting"),
        },
    );
    sim.at(ms(40), Action::Connect(link));
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(pull), vec![b("waiting")]);
    assert!(sim.inbox(pull)[0].at >= ms(40));
}

#[test]
fn push_discards_data_from_pull_and_refuses_push_peer() {
    let mut sim = Sim::new(SEED, Instant::now());
    let push = sim.add_node("push", Push::new(PushConfig::default()), App::Manual);
    let raw_pull = sim.add_node("raw-pull", RawPeer::new(ProtocolId::PULL), App::Manual);
    let raw_push = sim.add_node("raw-push", RawPeer::new(ProtocolId::PUSH), App::Manual);
    let good = sim.add_link(push, raw_pull, LinkConfig::default());
    let bad = sim.add_link(push, raw_push, LinkConfig::default());
    sim.connect(good);
    sim.connect(bad);

    sim.send(raw_pull, "noise").unwrap();
    sim.run_until_idle(100);

    assert!(sim.is_connected(good));
    assert!(!sim.is_connected(bad));
    assert_eq!(sim.recv(push), Err(RecvError::NotSupported));
}

// Scenario 78.
#[test]
fn pull_fair_queues_several_pushers() {
    let mut sim = Sim::new(SEED, Instant::now());
    let pull = sim.add_node(
        "pull",
        Pull::new(PullConfig { recv_buffer: 2 }),
        App::Manual,
    );
    let pushers: Vec<NodeId> = (0..3)
        .map(|i| {
            sim.add_node(
                &format!("push{i}"),
                Push::new(PushConfig::default()),
                App::Manual,
            )
        })
        .collect();
    for (i, &push) in pushers.iter().enumerate() {
        let config = LinkConfig {
            latency: ms(1 + i as u64),
            ..LinkConfig::default()
        };
        let link = sim.add_link(push, pull, config);
        sim.connect(link);
        for n in 0..20 {
            sim.at(
                ms(0),
                Action::SendBlocking {
                    node: push,
                    body: b(&format!("{i}:{n}")),
                },
            );
        }
    }
    // A slow consumer: one receive every 5 ms.
    for n in 0..80 {
        sim.at(ms(10 + 5 * n), Action::Recv { node: pull });
    }
    sim.run_until_idle(10_000);

    let got = sim.received_bodies(pull);
    assert_eq!(got.len(), 60);
    let first_30 = &got[..30];
    for i in 0..3 {
        let share = first_30
            .iter()
            .filter(|m| m.starts_with(format!("{i}:").as_bytes()))
            .count();
        sim.check(share >= 8, || {
            format!("pusher {i} got {share} of the first 30: {first_30:?}")
        });
        let mine: Vec<&Bytes> = got
            .iter()
            .filter(|m| m.starts_with(format!("{i}:").as_bytes()))
            .collect();
        let expected: Vec<Bytes> = (0..20).map(|n| b(&format!("{i}:{n}"))).collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "per-pusher order is kept"
        );
    }
}

// Scenario 79.
#[test]
fn pair_is_exclusive_and_a_redialing_peer_takes_over() {
    exclusive::exclusive_peer_takes_over(SEED, || Pair::new(PairConfig::default()));
}

#[test]
fn pair_refuses_pair_v1_peer() {
    let mut sim = Sim::new(SEED, Instant::now());
    let pair = sim.add_node("pair", Pair::new(PairConfig::default()), App::Collect);
    let v1 = sim.add_node("pair1", RawPeer::new(ProtocolId::PAIR1), App::Manual);
    let link = sim.add_link(v1, pair, LinkConfig::default());

    sim.connect(link);

    assert!(sim.transcript_contains(pair, "IncompatiblePeer"));
    assert!(!sim.is_connected(link));
}

// Scenario 80.
#[test]
fn pair_back_pressure_blocks_sends_and_drops_nothing() {
    exclusive::back_pressure_blocks_sends_and_drops_nothing(
        SEED,
        Pair::new(PairConfig::default()),
        Pair::new(PairConfig { recv_buffer: 1 }),
    );
}
