//! `provmesh evidence verify`: a forked log's evidence is proven offline; a changed byte,
//! another log key, or two honest checkpoints are not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_exit, run, run_with_stdin, stdout};
use provmesh_protocol::checkpoint::Checkpoint;
use provmesh_protocol::evidence::Evidence;
use provmesh_protocol::merkle::{Hash, MemoryHashStore, leaf_hash, prove_consistency, tree_hash};
use provmesh_protocol::note::{Ed25519Signer, KeyName, Verifier};

const ORIGIN: &str = "log.org-a.example";

/// A tree of `size` leaves whose leaves differ from `fork_at` on.
fn tree(size: u64, fork_at: u64) -> MemoryHashStore {
    let mut store = MemoryHashStore::new();
    for i in 0..size {
        let mut entry = vec![u8::from(i >= fork_at)];
        entry.extend_from_slice(&i.to_be_bytes());
        store.append(leaf_hash(&entry)).unwrap();
    }
    store
}

fn note(signer: &Ed25519Signer, store: &MemoryHashStore, size: u64) -> Vec<u8> {
    let root: Hash = tree_hash(size, store).unwrap();
    Checkpoint::new(ORIGIN.to_owned(), size, root)
        .unwrap()
        .sign(&[signer])
        .unwrap()
        .to_bytes()
}

fn signer(seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &[seed; 32])
}

/// Evidence of a log that showed a tree of 6 leaves, then one of 11 forked at leaf 3.
fn forked_log_evidence() -> Evidence {
    let key = signer(1);
    let (honest, fork) = (tree(11, u64::MAX), tree(11, 3));
    Evidence {
        origin: ORIGIN.to_owned(),
        log_key: key.verifier().into(),
        older: note(&key, &honest, 6),
        newer: note(&key, &fork, 11),
        proof: prove_consistency(6, 11, &fork).unwrap(),
        old_subtree: None,
    }
}

#[test]
fn a_forked_logs_evidence_is_proven_and_a_changed_byte_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let evidence = forked_log_evidence();
    let document = evidence.to_json();
    let path = dir.path().join("evidence.json");
    std::fs::write(&path, &document).unwrap();
    let path = path.to_str().unwrap();
    let vkey = evidence.log_key.to_vkey();

    let out = run(&["evidence", "verify", path, "--log-key", &vkey]);
    assert_exit(&out, 0, &[]);
    assert!(stdout(&out).starts_with("PROVEN: log.org-a.example equivocated"));

    // From standard input, without --log-key: proven, saying whose key it trusted.
    let out = run_with_stdin(&["evidence", "verify", "-"], &document);
    assert_exit(&out, 0, &[]);
    assert!(stdout(&out).contains("pass --log-key"));

    // Another key than the log's.
    let other = Verifier::from(signer(2).verifier()).to_vkey();
    let out = run(&["evidence", "verify", path, "--log-key", &other]);
    assert_exit(&out, 1, &["NOT PROVEN", "not"]);

    // A byte of the newer checkpoint's signature changed.
    let text = String::from_utf8(document.clone()).unwrap();
    let signature_at = text.rfind("— log.org-a.example ").unwrap() + 30;
    let mut changed = document.clone();
    changed[signature_at] = if changed[signature_at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let out = run_with_stdin(&["evidence", "verify", "-", "--log-key", &vkey], &changed);
    assert_exit(&out, 1, &["NOT PROVEN"]);

    // Not JSON at all.
    let out = run_with_stdin(&["evidence", "verify", "-"], b"hello");
    assert_exit(&out, 1, &["NOT PROVEN", "not an evidence document"]);
}

#[test]
fn two_honest_checkpoints_with_a_garbage_proof_are_not_evidence() {
    let key = signer(1);
    let honest = tree(11, u64::MAX);
    let garbage = Evidence {
        origin: ORIGIN.to_owned(),
        log_key: key.verifier().into(),
        older: note(&key, &honest, 6),
        newer: note(&key, &honest, 11),
        proof: vec![[7; 32]; 4],
        old_subtree: None,
    };
    let out = run_with_stdin(&["evidence", "verify", "-"], &garbage.to_json());
    assert_exit(&out, 1, &["NOT PROVEN", "not proven"]);
}
