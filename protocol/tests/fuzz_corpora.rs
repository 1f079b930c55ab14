//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/`) through the same entry
//! points the libFuzzer targets call, so the ordinary stable test run — and CI — checks
//! every seed and every crash input ever saved, without a fuzzer.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use provmesh_protocol::fuzz_targets::TARGETS;
use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let dir = corpora.join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("fuzz target {name} has no corpus at {}: {e}", dir.display())
        });
        let mut count = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(
                outcome.is_ok(),
                "fuzz target {name} fails on {}",
                path.display()
            );
            count += 1;
        }
        assert!(count > 0, "fuzz target {name} has an empty corpus");
        replayed += count;
    }
    eprintln!(
        "replayed {replayed} corpus inputs over {} targets",
        TARGETS.len()
    );
}

#[test]
fn every_fuzz_target_binary_has_an_entry_point() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/Cargo.toml"))
            .unwrap();
    let binaries: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|name| *name != "provmesh-fuzz")
        .collect();
    let entry_points: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let mut sorted_binaries = binaries.clone();
    sorted_binaries.sort_unstable();
    let mut sorted_entries = entry_points.clone();
    sorted_entries.sort_unstable();
    assert_eq!(sorted_binaries, sorted_entries);
}
