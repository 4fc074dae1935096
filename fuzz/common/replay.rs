//! Replays a committed cargo-fuzz corpus (`fuzz/corpus/<target>/`) through a target's check,
//! on the stable toolchain. Shared by the replay tests of the crates the targets exercise
//! (`sp-core/tests`, `tests/tests`, `sp-tools/tests`; each includes this file with `#[path]`).

use std::fs;
use std::path::{Path, PathBuf};

/// The fuzz crate's directory, from the including crate's manifest directory.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file of `target`'s corpus, in a stable order (so that a failure names the same file
/// on every run). Panics when the corpus directory is missing or empty: every target keeps
/// seeds, and a replay of nothing would pass silently.
pub fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read the corpus at {}: {err}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable corpus directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus of {target} at {} is empty",
        dir.display()
    );
    files
}

/// Runs `check` on every file of `target`'s corpus; fails naming the first file that made
/// it panic.
pub fn replay(target: &str, check: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    for path in corpus_files(target) {
        let data = fs::read(&path).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "corpus file {} made {target} panic",
            path.display()
        );
    }
}
