//! Replays the committed cargo-fuzz corpus of the `spcat_args` target (`fuzz/corpus/spcat_args/`)
//! on the stable toolchain, through the very check the fuzz target runs
//! (`fuzz/common/spcat_args.rs`, included here by path). `tests/tests/fuzz_corpus_replay.rs`
//! checks that every target's corpus is replayed somewhere.
//!
//! Unix only: the check turns arbitrary bytes into arguments, which only Unix's `OsStr` can
//! hold (cargo-fuzz itself runs on Linux and macOS).
#![cfg(unix)]

#[path = "../../fuzz/common/replay.rs"]
mod replay;
#[path = "../../fuzz/common/spcat_args.rs"]
mod spcat_args;

#[test]
fn spcat_args_corpus_replays_cleanly() {
    replay::replay("spcat_args", spcat_args::spcat_args);
}
