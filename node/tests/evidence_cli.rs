//! `provmesh evidence verify`: a forked log's evidence is proven offline; a changed byte,
//! another log key, or two honest checkpoints are not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{assert_exit, run, run_with_stdin, stdout};
use provmesh_protocol::evidence::Evidence;
use provmesh_protocol::testing::TestLog;

const ORIGIN: &str = "log.org-a.example";

/// Evidence of a log that showed a tree of 6 leaves, then one of 11 forked at leaf 3.
fn forked_log_evidence() -> Evidence {
    let (mut honest, mut fork) = (TestLog::new(ORIGIN, 1), TestLog::forked(ORIGIN, 1, 3));
    Evidence {
        origin: ORIGIN.to_owned(),
        log_key: honest.verifier(),
        older: honest.note(6),
        newer: fork.note(11),
        proof: fork.proof(6, 11),
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
    let other = TestLog::new(ORIGIN, 2).verifier().to_vkey();
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
    let mut honest = TestLog::new(ORIGIN, 1);
    let garbage = Evidence {
        origin: ORIGIN.to_owned(),
        log_key: honest.verifier(),
        older: honest.note(6),
        newer: honest.note(11),
        proof: vec![[7; 32]; 4],
        old_subtree: None,
    };
    let out = run_with_stdin(&["evidence", "verify", "-"], &garbage.to_json());
    assert_exit(&out, 1, &["NOT PROVEN", "not proven"]);
}
