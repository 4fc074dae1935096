//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/<target>/`) on the stable toolchain,
//! through the same entry points the fuzz targets call.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read the corpus at {}: {err}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable corpus directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    // A stable order, so that a failure names the same file on every run.
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = corpus_files(target);
    assert!(
        files.len() >= 10,
        "expected a seed corpus for {target}, found {} files",
        files.len()
    );
    for path in files {
        let data = fs::read(&path).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "corpus file {} made {target} panic",
            path.display()
        );
    }
}

#[test]
fn frame_decoder_corpus_replays_cleanly() {
    replay("frame_decoder", sp_core::fuzzing::frame_decoder);
}

#[test]
fn handshake_corpus_replays_cleanly() {
    replay("handshake", |data| {
        sp_core::fuzzing::handshake(data, std::time::Instant::now())
    });
}
