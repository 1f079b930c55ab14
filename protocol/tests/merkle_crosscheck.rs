//! Merkle roots, proofs, stored-hash indexes and tile paths cross-checked against two
//! independent implementations — `tlog_tiles` (a port of Go's sumdb tlog) and `ct-merkle`
//! — and property tests: every generated proof verifies, every tampered one fails.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use provmesh_protocol::merkle::tiles::{TileId, TilePath};
use provmesh_protocol::merkle::{
    Hash, MAX_TREE_SIZE, MemoryHashStore, leaf_hash, prove_consistency, prove_inclusion,
    split_stored_hash_index, stored_hash_index, tree_hash, verify_consistency, verify_inclusion,
};

type CtTree = ct_merkle::mem_backed_tree::MemoryBackedTree<sha2::Sha256, Vec<u8>>;

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

fn trees(size: u64) -> (MemoryHashStore, CtTree) {
    let mut ours = MemoryHashStore::new();
    let mut theirs = CtTree::new();
    for i in 0..size {
        ours.append(leaf_hash(&entry(i))).unwrap();
        theirs.push(entry(i));
    }
    (ours, theirs)
}

/// Our store seen through tlog_tiles' reader trait.
struct TlogView<'a>(&'a MemoryHashStore);

impl tlog_tiles::tlog::HashReader for TlogView<'_> {
    fn read_hashes(
        &self,
        indexes: &[u64],
    ) -> Result<Vec<tlog_tiles::tlog::Hash>, tlog_tiles::tlog::Error> {
        Ok(indexes
            .iter()
            .map(|&i| tlog_tiles::tlog::Hash(self.0.stored_hashes()[i as usize]))
            .collect())
    }
}

fn flatten(proof: &[Hash]) -> Vec<u8> {
    proof.concat()
}

fn tamper(proof: &mut [Hash], which: usize, bit: u8) {
    let len = proof.len();
    proof[which % len][(bit / 8) as usize % 32] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn inclusion_matches_independent_implementations(
        size in 1u64..1500, index_seed in any::<u64>(), which in any::<usize>(), bit in any::<u8>(),
    ) {
        let (ours, theirs) = trees(size);
        let index = index_seed % size;
        let root = tree_hash(size, &ours).unwrap();
        let ct_root = theirs.root();
        prop_assert_eq!(root.as_slice(), ct_root.as_bytes().as_slice());
        prop_assert_eq!(root, tlog_tiles::tlog::tree_hash(size, &TlogView(&ours)).unwrap().0);

        let proof = prove_inclusion(index, size, &ours).unwrap();
        prop_assert_eq!(flatten(&proof), theirs.prove_inclusion(index as usize).as_bytes().to_vec());
        let tlog_proof = tlog_tiles::tlog::prove_record(size, index, &TlogView(&ours)).unwrap();
        prop_assert_eq!(&proof, &tlog_proof.iter().map(|h| h.0).collect::<Vec<_>>());

        let leaf = leaf_hash(&entry(index));
        prop_assert!(verify_inclusion(index, size, &leaf, &proof, &root).is_ok());
        if !proof.is_empty() {
            let mut bad = proof.clone();
            tamper(&mut bad, which, bit);
            prop_assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
            // The independent verifier agrees the tampered proof is bad.
            let bad_ct = ct_merkle::InclusionProof::<sha2::Sha256>::from_bytes(flatten(&bad));
            prop_assert!(theirs.root().verify_inclusion(&entry(index), index, &bad_ct).is_err());
        }
        let mut bad_leaf = leaf;
        bad_leaf[bit as usize % 32] ^= 1;
        prop_assert!(verify_inclusion(index, size, &bad_leaf, &proof, &root).is_err());
        if size > 1 {
            let other = (index + 1) % size;
            prop_assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_matches_independent_implementations(
        new_size in 2u64..1500, old_seed in any::<u64>(), which in any::<usize>(), bit in any::<u8>(),
    ) {
        let (ours, theirs) = trees(new_size);
        let old_size = 1 + old_seed % (new_size - 1);
        let old_root = tree_hash(old_size, &ours).unwrap();
        let new_root = tree_hash(new_size, &ours).unwrap();

        let proof = prove_consistency(old_size, new_size, &ours).unwrap();
        let ct_proof = theirs.prove_consistency((new_size - old_size) as usize);
        prop_assert_eq!(flatten(&proof), ct_proof.as_bytes().to_vec());
        let tlog_proof = tlog_tiles::tlog::prove_tree(new_size, old_size, &TlogView(&ours)).unwrap();
        prop_assert_eq!(&proof, &tlog_proof.iter().map(|h| h.0).collect::<Vec<_>>());

        prop_assert!(verify_consistency(old_size, new_size, &proof, &old_root, &new_root).is_ok());
        let mut bad = proof.clone();
        tamper(&mut bad, which, bit);
        prop_assert!(verify_consistency(old_size, new_size, &bad, &old_root, &new_root).is_err());
        let mut bad_root = new_root;
        bad_root[bit as usize % 32] ^= 1;
        prop_assert!(verify_consistency(old_size, new_size, &proof, &old_root, &bad_root).is_err());
        prop_assert!(verify_consistency(old_size, new_size, &proof[1..], &old_root, &new_root).is_err());
    }

    #[test]
    fn stored_hash_indexes_match_go_layout(level in 0u8..40, n in 0u64..(1 << 20)) {
        let index = stored_hash_index(level, n);
        prop_assert_eq!(index, tlog_tiles::tlog::stored_hash_index(level, n));
        prop_assert_eq!(split_stored_hash_index(index), Some((level, n)));
    }

    #[test]
    fn tile_paths_match_go_layout(level in 0u8..8, index_seed in any::<u64>(), width in 1u16..=256) {
        // Tiles whose hashes lie within a tree of MAX_TREE_SIZE leaves.
        let tiles_in_level = ((MAX_TREE_SIZE >> (8 * u32::from(level))) / 256).max(1);
        let index = index_seed % tiles_in_level;
        let ours = TileId { level, index, width };
        let theirs = tlog_tiles::tile::Tile::new(8, level, index, u32::from(width), false);
        // Go's sumdb paths name the tile height (`tile/8/…`); C2SP fixes it at 8 and drops it.
        prop_assert_eq!(ours.path(), theirs.path().replacen("tile/8/", "tile/", 1));
        prop_assert_eq!(TilePath::parse(&ours.path()), Ok(TilePath::Hashes(ours)));
    }

    #[test]
    fn tile_path_parser_never_panics(path in "tile/[0-9a-z./]{0,40}") {
        if let Ok(TilePath::Hashes(tile)) = TilePath::parse(&path) {
            prop_assert_eq!(tile.path(), path);
        }
    }
}

#[test]
fn tile_contents_match_go_tile_reader() {
    let (ours, _) = trees(70_000);
    for tile in TileId::new_tiles(0, 70_000) {
        let theirs =
            tlog_tiles::tile::Tile::new(8, tile.level, tile.index, u32::from(tile.width), false);
        assert_eq!(
            tile.read(&ours).unwrap(),
            theirs.read_data(&TlogView(&ours)).unwrap(),
            "{}",
            tile.path()
        );
    }
}
