//! Scenarios every exclusive (PAIR v0 and PAIR v1) socket must pass, generic over the core.
//! Shared by `sim_pipeline_pair.rs` and `sim_pair1.rs`.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::SendError;
use sp_core::sim::{Action, App, LinkConfig, Sim, SimProtocol};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Scenario 79: a third socket is refused while a pair is attached, and its redialer takes
/// over once the first peer leaves. `make` builds a fresh core.
pub fn exclusive_peer_takes_over<P: SimProtocol + 'static>(seed: u64, make: impl Fn() -> P) {
    let mut sim = Sim::new(seed, Instant::now());
    let server = sim.add_node("server", make(), App::Collect);
    let first = sim.add_node("first", make(), App::Collect);
    let third = sim.add_node("third", make(), App::Collect);
    let link1 = sim.add_link(first, server, LinkConfig::default());
    let redial = LinkConfig {
        redial: Some(ms(10)),
        ..LinkConfig::default()
    };
    let link3 = sim.add_link(third, server, redial);
    sim.connect(link1);
    sim.connect(link3);

    assert!(sim.transcript_contains(server, "Busy"));
    assert!(!sim.is_connected(link3));
    sim.send(first, "from first").unwrap();
    assert_eq!(sim.send(third, "from third"), Err(SendError::WouldBlock));
    sim.run_until(ms(50));
    sim.disconnect(link1);
    sim.at(
        ms(50),
        Action::SendBlocking {
            node: third,
            body: b("from third"),
        },
    );
    sim.run_until(ms(100));

    assert!(sim.is_connected(link3));
    assert_eq!(
        sim.received_bodies(server),
        vec![b("from first"), b("from third")]
    );
}

/// Scenario 80: with a sink that never reads and holds one message, sends eventually get
/// `WouldBlock`, and every accepted message arrives in order once the sink reads.
pub fn back_pressure_blocks_sends_and_drops_nothing<P: SimProtocol + 'static>(
    seed: u64,
    sender: P,
    sink_holding_one: P,
) {
    let mut sim = Sim::new(seed, Instant::now());
    let sender = sim.add_node("sender", sender, App::Manual);
    let sink = sim.add_node("sink", sink_holding_one, App::Manual);
    let link = sim.add_link(sender, sink, LinkConfig::default());
    sim.connect(link);

    for n in 0..10 {
        sim.at(
            ms(n * 3),
            Action::Send {
                node: sender,
                body: b(&format!("m{n}")),
            },
        );
    }
    sim.run_until(ms(40));
    let accepted: Vec<Bytes> = sim
        .sends(sender)
        .iter()
        .filter(|s| s.result.is_ok())
        .map(|s| s.body.clone())
        .collect();
    let refused = sim
        .sends(sender)
        .iter()
        .filter(|s| s.result == Err(SendError::WouldBlock))
        .count();
    sim.check(refused > 0, || {
        "the sender never felt back-pressure".to_owned()
    });
    for n in 0..10 {
        sim.at(ms(50 + n), Action::Recv { node: sink });
    }
    sim.run_until_idle(1000);

    assert_eq!(
        sim.received_bodies(sink),
        accepted,
        "every accepted message arrives, in order"
    );
}
