//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/<target>/`) of the targets on
//! `sp-transport` on the stable toolchain, through the very checks the fuzz targets run
//! (`sp_transport::fuzzing`, and `fuzz/common/*.rs` included here by path). The targets on
//! `sp-core` replay in `sp-core/tests/fuzz_corpus_replay.rs`, `spcat_args` in
//! `sp-tools/tests/fuzz_corpus_replay.rs`; the last test here checks that every target of
//! `fuzz/Cargo.toml` has a corpus that one of the three replays.

use std::fs;

#[path = "../../fuzz/common/address_parse.rs"]
mod address_parse;
#[path = "../../fuzz/common/replay.rs"]
mod replay;
#[path = "../../fuzz/common/tls_config.rs"]
mod tls_config;

use replay::{corpus_files, fuzz_dir, replay};

#[test]
fn address_parse_corpus_replays_cleanly() {
    replay("address_parse", address_parse::address_parse);
}

#[test]
fn tls_config_corpus_replays_cleanly() {
    replay("tls_config", tls_config::tls_config);
}

#[test]
fn ws_upgrade_corpus_replays_cleanly() {
    replay("ws_upgrade", sp_transport::fuzzing::ws_upgrade);
}

/// The replay tests, relative to the workspace root.
const REPLAY_TESTS: [&str; 3] = [
    "sp-core/tests/fuzz_corpus_replay.rs",
    "tests/tests/fuzz_corpus_replay.rs",
    "sp-tools/tests/fuzz_corpus_replay.rs",
];

/// Every `[[bin]]` of `fuzz/Cargo.toml` is a target with seeds in `fuzz/corpus/<name>/`, which
/// one of the replay tests replays; every corpus directory belongs to a target.
#[test]
fn every_fuzz_target_has_a_replayed_corpus() {
    let fuzz = fuzz_dir();
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut targets: Vec<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .map(|bin| {
            let name = bin
                .lines()
                .find_map(|line| line.trim().strip_prefix("name = "))
                .expect("every [[bin]] has a name");
            name.trim_matches('"').to_owned()
        })
        .collect();
    targets.sort();
    assert!(targets.len() >= 8, "fuzz targets: {targets:?}");

    let tests: String = REPLAY_TESTS
        .iter()
        .map(|path| fs::read_to_string(fuzz.join("..").join(path)).expect(path))
        .collect();
    for target in &targets {
        assert!(!corpus_files(target).is_empty());
        assert!(
            tests.contains(&format!("replay(\"{target}\"")),
            "no replay test replays the corpus of {target} (add one to {REPLAY_TESTS:?})"
        );
    }

    let mut dirs: Vec<String> = fs::read_dir(fuzz.join("corpus"))
        .expect("fuzz/corpus")
        .map(|entry| entry.expect("readable entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs, targets,
        "fuzz/corpus/ holds a directory for each target, no other"
    );
}
