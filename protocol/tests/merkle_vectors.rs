//! RFC 6962 Merkle trees against the transparency-dev/merkle reference vectors
//! (`tests/vectors/merkle/`, sources in its SOURCES.md).
//!
//! Valid vectors must equal what provmesh generates byte for byte, so changing any byte of
//! a vector fails a test; the corrupted vectors must all fail verification.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use provmesh_protocol::merkle::{
    EMPTY_ROOT, Hash, MemoryHashStore, leaf_hash, prove_consistency, prove_inclusion, tree_hash,
    verify_consistency, verify_inclusion,
};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/merkle/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A 32-byte hash, or `None` for a vector's deliberately malformed hash (wrong length):
/// provmesh's typed API cannot even represent those, so they are rejected at decoding.
fn try_hash(value: &Value) -> Option<Hash> {
    hex::decode(value.as_str().unwrap())
        .unwrap()
        .try_into()
        .ok()
}

fn hash(value: &Value) -> Hash {
    try_hash(value).unwrap()
}

fn try_hashes(value: &Value) -> Option<Vec<Hash>> {
    value.as_array().unwrap().iter().map(try_hash).collect()
}

fn reference_tree() -> (MemoryHashStore, Value) {
    let tree = load("tree.json");
    let mut store = MemoryHashStore::new();
    for leaf in tree["leaves"].as_array().unwrap() {
        store
            .append(leaf_hash(&hex::decode(leaf.as_str().unwrap()).unwrap()))
            .unwrap();
    }
    (store, tree)
}

/// Vectors from `proof/verify_test.go` are over the 8-leaf reference tree of `tree.json`;
/// the `testdata/` ones come from other trees and are checked by verification only.
fn on_reference_tree(case: &Value) -> bool {
    case["source"]
        .as_str()
        .unwrap()
        .starts_with("proof/verify_test.go")
}

#[test]
fn leaf_hashes_and_roots_match_the_reference_tree() {
    let (store, tree) = reference_tree();
    for (leaf, expected) in tree["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .zip(tree["leaf_hashes"].as_array().unwrap())
    {
        assert_eq!(
            leaf_hash(&hex::decode(leaf.as_str().unwrap()).unwrap()),
            hash(expected)
        );
    }
    let roots = tree["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 9, "sizes 0 through 8");
    for root in roots {
        let size = root["size"].as_u64().unwrap();
        assert_eq!(
            tree_hash(size, &store).unwrap(),
            hash(&root["root"]),
            "size {size}"
        );
    }
    assert_eq!(EMPTY_ROOT, hash(&tree["empty_root"]));
}

#[test]
fn inclusion_vectors() {
    let (store, _) = reference_tree();
    let (mut valid, mut invalid) = (0, 0);
    for case in load("inclusion.json").as_array().unwrap() {
        let index = case["leaf_index"].as_u64().unwrap();
        let size = case["tree_size"].as_u64().unwrap();
        let (Some(proof), Some(leaf), Some(root)) = (
            try_hashes(&case["proof"]),
            try_hash(&case["leaf_hash"]),
            try_hash(&case["root"]),
        ) else {
            assert!(!case["valid"].as_bool().unwrap(), "{case}");
            invalid += 1;
            continue;
        };
        let result = verify_inclusion(index, size, &leaf, &proof, &root);
        if case["valid"].as_bool().unwrap() {
            result.unwrap_or_else(|e| panic!("{case}: {e}"));
            if on_reference_tree(case) {
                assert_eq!(
                    prove_inclusion(index, size, &store).unwrap(),
                    proof,
                    "{case}"
                );
                assert_eq!(tree_hash(size, &store).unwrap(), root);
            }
            valid += 1;
        } else {
            assert!(result.is_err(), "corrupted vector verified: {case}");
            invalid += 1;
        }
    }
    assert!(
        valid >= 10 && invalid >= 50,
        "{valid} valid, {invalid} invalid"
    );
}

#[test]
fn consistency_vectors() {
    let (store, _) = reference_tree();
    let (mut valid, mut invalid) = (0, 0);
    for case in load("consistency.json").as_array().unwrap() {
        let size1 = case["size1"].as_u64().unwrap();
        let size2 = case["size2"].as_u64().unwrap();
        let (Some(proof), Some(root1), Some(root2)) = (
            try_hashes(&case["proof"]),
            try_hash(&case["root1"]),
            try_hash(&case["root2"]),
        ) else {
            // Go's verifier accepts any bytes as roots of equal sizes when they are equal;
            // provmesh's roots are 32-byte hashes, so such a vector cannot be expressed.
            if case["valid"].as_bool().unwrap() {
                assert_eq!(size1, size2, "{case}");
            } else {
                invalid += 1;
            }
            continue;
        };
        let result = verify_consistency(size1, size2, &proof, &root1, &root2);
        if case["valid"].as_bool().unwrap() {
            result.unwrap_or_else(|e| panic!("{case}: {e}"));
            if on_reference_tree(case) {
                assert_eq!(
                    prove_consistency(size1, size2, &store).unwrap(),
                    proof,
                    "{case}"
                );
                assert_eq!(tree_hash(size1, &store).unwrap(), root1);
                assert_eq!(tree_hash(size2, &store).unwrap(), root2);
            }
            valid += 1;
        } else {
            assert!(result.is_err(), "corrupted vector verified: {case}");
            invalid += 1;
        }
    }
    assert!(
        valid >= 5 && invalid >= 50,
        "{valid} valid, {invalid} invalid"
    );
}
