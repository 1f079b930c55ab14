//! Merkle benchmarks: provmesh's stored-hash tree against ct-merkle (an independent
//! in-memory RFC 6962 tree) on the same inputs in the same run, so results read as ratios.
//!
//! `cargo bench -p provmesh-protocol --bench merkle`

// criterion_group! generates an undocumented public function; a benchmark fails loudly
// on bad fixtures rather than handling them.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use provmesh_protocol::merkle::{
    Frontier, MemoryHashStore, leaf_hash, prove_consistency, prove_inclusion, tree_hash,
    verify_consistency, verify_inclusion,
};
use std::hint::black_box;

type CtTree = ct_merkle::mem_backed_tree::MemoryBackedTree<sha2::Sha256, Vec<u8>>;

/// One million leaves: large enough that proofs are 20 hashes deep.
const SIZE: u64 = 1 << 20;

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i:016}").into_bytes()
}

fn build() -> (MemoryHashStore, CtTree) {
    let mut ours = MemoryHashStore::new();
    let mut theirs = CtTree::new();
    for i in 0..SIZE {
        ours.append(leaf_hash(&entry(i))).expect("append");
        theirs.push(entry(i));
    }
    (ours, theirs)
}

fn benches(c: &mut Criterion) {
    let (ours, theirs) = build();
    // Indexes spread over the tree, cycled so each iteration proves a different leaf.
    let indexes: Vec<u64> = (0..1024).map(|i| (i * 1021 + 7) % SIZE).collect();

    let mut group = c.benchmark_group("append_and_root");
    group.throughput(Throughput::Elements(1));
    // Both trees keep growing from 2^20 leaves, so the cost includes the subtree merges
    // (one per append on average) and a root over the current right edge.
    group.bench_function("provmesh", |b| {
        let mut frontier = Frontier::load(SIZE, &ours).expect("frontier");
        let mut stored = Vec::with_capacity(64);
        let leaf = leaf_hash(b"next entry");
        b.iter(|| {
            stored.clear();
            frontier.append(leaf, |h| stored.push(h)).expect("append");
            black_box(frontier.root())
        })
    });
    group.bench_function("ct-merkle", |b| {
        let mut tree = theirs.clone();
        b.iter(|| {
            tree.push(b"next entry".to_vec());
            black_box(tree.root())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("inclusion_prove");
    group.throughput(Throughput::Elements(1));
    group.bench_function("provmesh", |b| {
        let mut i = indexes.iter().cycle();
        b.iter(|| prove_inclusion(*i.next().expect("cycle"), SIZE, &ours).expect("prove"))
    });
    group.bench_function("ct-merkle", |b| {
        let mut i = indexes.iter().cycle();
        b.iter(|| theirs.prove_inclusion(*i.next().expect("cycle") as usize))
    });
    group.finish();

    let root = tree_hash(SIZE, &ours).expect("root");
    let ct_root = theirs.root();
    let index = indexes[3];
    let proof = prove_inclusion(index, SIZE, &ours).expect("prove");
    let ct_proof = theirs.prove_inclusion(index as usize);
    let leaf = leaf_hash(&entry(index));
    let mut group = c.benchmark_group("inclusion_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("provmesh", |b| {
        b.iter(|| verify_inclusion(index, SIZE, &leaf, black_box(&proof), &root).expect("valid"))
    });
    group.bench_function("ct-merkle", |b| {
        let value = entry(index);
        b.iter(|| {
            ct_root
                .verify_inclusion(&value, index, black_box(&ct_proof))
                .expect("valid")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("consistency_verify");
    group.throughput(Throughput::Elements(1));
    for old in [SIZE / 3, SIZE - 1000] {
        let old_root = tree_hash(old, &ours).expect("root");
        let proof = prove_consistency(old, SIZE, &ours).expect("prove");
        let ct_old_root = ct_merkle::RootHash::<sha2::Sha256>::new(old_root.into(), old);
        let ct_proof = theirs.prove_consistency((SIZE - old) as usize);
        group.bench_with_input(BenchmarkId::new("provmesh", old), &old, |b, &old| {
            b.iter(|| {
                verify_consistency(old, SIZE, black_box(&proof), &old_root, &root).expect("valid")
            })
        });
        group.bench_with_input(BenchmarkId::new("ct-merkle", old), &old, |b, _| {
            b.iter(|| {
                ct_root
                    .verify_consistency(&ct_old_root, black_box(&ct_proof))
                    .expect("valid")
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("consistency_prove");
    group.throughput(Throughput::Elements(1));
    group.bench_function("provmesh", |b| {
        b.iter(|| prove_consistency(SIZE / 3, SIZE, &ours).expect("prove"))
    });
    group.bench_function("ct-merkle", |b| {
        b.iter(|| theirs.prove_consistency((SIZE - SIZE / 3) as usize))
    });
    group.finish();
}

criterion_group! {
    name = merkle;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(merkle);
