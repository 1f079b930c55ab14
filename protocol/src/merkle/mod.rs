//! RFC 6962 / RFC 9162 Merkle trees for append-only logs.
//!
//! This module owns the hashing rules of the transparency log, the layout in which a log
//! stores its tree (so that a log of 10^8 entries never recomputes it), the generation and
//! verification of inclusion and consistency proofs, and the C2SP tlog-tiles view of the
//! same stored hashes.
//!
//! - [`leaf_hash`] / [`node_hash`]: the two hash functions of RFC 9162 §2.1.1.
//! - [`stored`]: the *stored hash* layout. Every complete subtree of the log is hashed
//!   exactly once, when its last leaf is appended, and kept at a fixed index. The root of
//!   any tree size and every proof are then computed from O(log n) stored hashes, read
//!   through the narrow [`HashReader`] trait that the node implements on its store.
//! - [`proof`]: inclusion and consistency proofs — generation from stored hashes and the
//!   verification algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2, quoted beside the code.
//! - [`tiles`]: C2SP tlog-tiles coordinates, paths and tile contents.

pub mod proof;
pub mod stored;
pub mod tiles;

pub use proof::{
    ConsistencyError, InclusionError, consistency_proof_roots, inclusion_proof_root,
    prove_consistency, prove_inclusion, verify_consistency, verify_inclusion,
};
pub use stored::{
    Frontier, HashReader, MemoryHashStore, MemoryStoreError, TreeError, split_stored_hash_index,
    stored_hash_count, stored_hash_index, subtree_hash, tree_hash,
};

use sha2::{Digest, Sha256};

/// A SHA-256 hash: the only hash function provmesh logs use.
pub type Hash = [u8; 32];

/// The root hash of the empty tree.
///
/// RFC 9162 §2.1.1: "The hash of an empty list is the hash of an empty string:
/// MTH({}) = HASH()."
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The largest tree size this module accepts.
///
/// Stored-hash indexes of a tree of `n` leaves go up to `2n`, so sizes are capped at 2^62
/// to keep all index arithmetic inside `u64`. No log reaches it (10^8 ≈ 2^27).
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// Hash of a leaf entry.
///
/// RFC 9162 §2.1.1: "The hash of a list with one entry (also known as a leaf hash) is:
/// MTH({d(0)}) = HASH(0x00 || d(0))."
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// Hash of an interior node from its two children.
///
/// RFC 9162 §2.1.1: "MTH(D_n) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n])), where k < n
/// and k is the largest power of two smaller than n."
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two strictly smaller than `n` (RFC 9162's split point `k`).
///
/// `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest([])));
    }

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(MAX_TREE_SIZE), MAX_TREE_SIZE / 2);
    }
}
