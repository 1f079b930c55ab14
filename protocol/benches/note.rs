//! Signed-note benchmarks on real checkpoints (`tests/vectors/notes/`): provmesh against
//! the independent `signed_note` crate (a port of Go's `sumdb/note`) where it supports the
//! key type, in the same run, so results read as ratios.
//!
//! `cargo bench -p provmesh-protocol --bench note`

// criterion_group! generates an undocumented public function; a benchmark fails loudly
// on bad fixtures rather than handling them.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use provmesh_protocol::checkpoint;
use provmesh_protocol::note::{EcdsaP256Verifier, KeyName, Note, Verifier, VerifierSet};
use std::hint::black_box;

fn vector(name: &str) -> String {
    let path = format!("{}/tests/vectors/notes/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn benches(c: &mut Criterion) {
    // Rekor v2 production checkpoint: Ed25519 log key.
    let rekor_v2 = vector("rekor-v2.checkpoint");
    let rekor_v2_vkey = vector("rekor-v2.vkey").trim().to_owned();
    let ours = VerifierSet::from_verifiers([Verifier::from_vkey(&rekor_v2_vkey).expect("vkey")])
        .expect("set");
    let theirs = signed_note::VerifierList::new(vec![Box::new(
        signed_note::StandardVerifier::new(&rekor_v2_vkey).expect("vkey"),
    )]);

    let mut group = c.benchmark_group("ed25519_note_parse_and_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("provmesh", |b| {
        b.iter(|| {
            let note = Note::parse(black_box(rekor_v2.as_bytes())).expect("parse");
            assert_eq!(note.verify(&ours).expect("verify").len(), 1);
        })
    });
    group.bench_function("signed_note", |b| {
        b.iter(|| {
            let note =
                signed_note::Note::from_bytes(black_box(rekor_v2.as_bytes())).expect("parse");
            assert_eq!(note.verify(&theirs).expect("verify").0.len(), 1);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("checkpoint_open");
    group.throughput(Throughput::Elements(1));
    let log_key = Verifier::from_vkey(&rekor_v2_vkey).expect("vkey");
    group.bench_function("provmesh", |b| {
        b.iter(|| {
            checkpoint::open(
                black_box(rekor_v2.as_bytes()),
                "log2025-1.rekor.sigstore.dev",
                &log_key,
            )
            .expect("open")
        })
    });
    group.finish();

    // Rekor v1 production checkpoint: ECDSA P-256 (signed_note has no such verifier).
    let rekor_v1 = vector("rekor-v1.checkpoint");
    let rekor_v1_key = EcdsaP256Verifier::from_pem(
        KeyName::new("rekor.sigstore.dev").expect("name"),
        &vector("rekor-v1.pub.pem"),
    )
    .expect("key");
    let rekor_v1_set = VerifierSet::from_verifiers([Verifier::from(rekor_v1_key)]).expect("set");
    let mut group = c.benchmark_group("ecdsa_p256_note_parse_and_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("provmesh", |b| {
        b.iter(|| {
            let note = Note::parse(black_box(rekor_v1.as_bytes())).expect("parse");
            assert_eq!(note.verify(&rekor_v1_set).expect("verify").len(), 1);
        })
    });
    group.finish();

    // A real witnessed checkpoint: the log signature plus three cosignature/v1 lines.
    let witnessed = vector("witnessed-rekor-v2-staging.checkpoint");
    let mut keys = vec![
        Verifier::from_vkey(vector("witnessed-rekor-v2-staging.log.vkey").trim()).expect("vkey"),
    ];
    for line in vector("witnessed-rekor-v2-staging.vkeys")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        keys.push(Verifier::from_vkey(line.trim()).expect("witness vkey"));
    }
    let witnessed_set = VerifierSet::from_verifiers(keys).expect("set");
    let mut group = c.benchmark_group("cosigned_checkpoint_verify_log_and_3_witnesses");
    group.throughput(Throughput::Elements(1));
    group.bench_function("provmesh", |b| {
        b.iter(|| {
            let note = Note::parse(black_box(witnessed.as_bytes())).expect("parse");
            assert_eq!(note.verify(&witnessed_set).expect("verify").len(), 4);
        })
    });
    group.finish();
}

criterion_group! {
    name = note;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(note);
