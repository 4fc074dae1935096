//! A send loop that never waits gives its executor a turn, in each async adapter.
//!
//! PUB and BUS sends complete at once, whatever the subscribers take, so a task that sends in
//! a loop never returns to its executor by itself; the pipe tasks behind it on the same thread
//! would not run until the loop ends. So `send` and the `Sink` take turns: tokio's sockets
//! spend tokio's cooperative budget (`tokio::task::coop`, as its channels do), smol's yield
//! every 32 sends of a role that never waits (every 256 of one that waits when its pipe is
//! full). Each test runs the loop on a single-threaded executor beside an observer
//! task that counts its own turns: the observer can only run when the loop yields.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use sp_tests::harness::with_limit;

/// How long a test body may take in all.
const LIMIT: Duration = Duration::from_secs(30);
/// Sends per loop: several times tokio's budget (128) and smol's yield interval (32).
const SENDS: u32 = 1_000;

/// Runs `body` on a current-thread tokio runtime beside an observer task; returns the
/// observer's turns while `body` ran.
fn observed_on_tokio<F: Future<Output = ()>>(body: impl FnOnce() -> F) -> u32 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("start a current-thread tokio runtime");
    rt.block_on(with_limit(LIMIT, async {
        let turns = Arc::new(AtomicU32::new(0));
        let counted = turns.clone();
        let observer = tokio::spawn(async move {
            loop {
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        // The observer's first turn, so that it is waiting to run again when the loop starts.
        tokio::task::yield_now().await;
        let before = turns.load(Ordering::Relaxed);
        body().await;
        let during = turns.load(Ordering::Relaxed) - before;
        observer.abort();
        during
    }))
}

/// Runs `body` on a single-threaded smol executor beside an observer task; returns the
/// observer's turns while `body` ran.
fn observed_on_smol<F: Future<Output = ()>>(body: impl FnOnce() -> F) -> u32 {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(with_limit(LIMIT, async {
        let turns = Arc::new(AtomicU32::new(0));
        let counted = turns.clone();
        let _observer = ex.spawn(async move {
            loop {
                counted.fetch_add(1, Ordering::Relaxed);
                smol::future::yield_now().await;
            }
        });
        smol::future::yield_now().await;
        let before = turns.load(Ordering::Relaxed);
        body().await;
        turns.load(Ordering::Relaxed) - before
    })))
}

macro_rules! turn_suite {
    ($module:ident, $adapter:ident, $observed:ident) => {
        mod $module {
            use super::*;
            use $adapter as sp;

            /// `SENDS` sends on a PUB with no subscriber: every send completes at once (the
            /// message is dropped).
            pub(super) async fn pub_send_loop() {
                let publisher = sp::Pub::new();
                for i in 0..SENDS {
                    publisher
                        .send(i.to_be_bytes().to_vec())
                        .await
                        .expect("a PUB send");
                }
            }

            #[test]
            fn a_pub_send_loop_gives_the_executor_turns() {
                let turns = $observed(pub_send_loop);
                assert!(
                    turns >= 2,
                    "{SENDS} sends that completed at once let another task run {turns} times"
                );
            }

            #[test]
            fn a_pub_sink_loop_gives_the_executor_turns() {
                let turns = $observed(|| async {
                    let mut publisher = sp::Pub::new();
                    for i in 0..SENDS {
                        publisher
                            .feed(sp::Message::from(i.to_be_bytes().to_vec()))
                            .await
                            .expect("a PUB sink send");
                    }
                    publisher.flush().await.expect("flush the PUB sink");
                });
                assert!(
                    turns >= 2,
                    "{SENDS} sink sends that completed at once let another task run {turns} times"
                );
            }
        }
    };
}

turn_suite!(tokio_adapter, sp_tokio, observed_on_tokio);
turn_suite!(smol_adapter, sp_smol, observed_on_smol);

/// A PUB drops what a busy pipe cannot take, so its sends spend tokio's whole budget (128
/// units) and yield at least every 128 sends, before a pipe's queue (256) fills; roles whose
/// sends wait for room spend a unit every second send (see the driver's `SendTurns`).
#[test]
fn a_tokio_pub_send_loop_yields_at_least_every_128_sends() {
    let turns = observed_on_tokio(tokio_adapter::pub_send_loop);
    assert_yields_at_least_every(128, turns);
}

/// Fails unless `SENDS` PUB sends let the observer run `turns` times, at least once per
/// `every` sends (less one: the loop may start just after a yield).
fn assert_yields_at_least_every(every: u32, turns: u32) {
    assert!(
        turns >= SENDS / every - 1,
        "{SENDS} PUB sends let another task run only {turns} times"
    );
}

/// smol has no budget: a PUB's send loop yields every 32 sends (roles whose sends wait for
/// room yield every 256; see the driver's `SendTurns`).
#[test]
fn a_smol_pub_send_loop_yields_at_least_every_32_sends() {
    let turns = observed_on_smol(smol_adapter::pub_send_loop);
    assert_yields_at_least_every(32, turns);
}
