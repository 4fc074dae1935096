//! Replays the committed cargo-fuzz corpus of the targets on `sp-core` (`fuzz/corpus/<target>/`)
//! on the stable toolchain, through the entry points the fuzz targets call
//! (`sp_core::fuzzing`). `tests/tests/fuzz_corpus_replay.rs` checks that every target's
//! corpus is replayed somewhere.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::Instant;

#[path = "../../fuzz/common/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn frame_decoder_corpus_replays_cleanly() {
    replay("frame_decoder", sp_core::fuzzing::frame_decoder);
}

#[test]
fn handshake_corpus_replays_cleanly() {
    replay("handshake", |data| {
        sp_core::fuzzing::handshake(data, Instant::now())
    });
}

#[test]
fn protocol_receive_corpus_replays_cleanly() {
    replay("protocol_receive", |data| {
        sp_core::fuzzing::protocol_receive(data, Instant::now())
    });
}

#[test]
fn protocol_scenario_corpus_replays_cleanly() {
    replay("protocol_scenario", |data| {
        sp_core::fuzzing::protocol_scenario(data, Instant::now())
    });
}
