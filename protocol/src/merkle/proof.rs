//! Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4).
//!
//! Generation reads the O(log n) stored hashes the proof needs in a single
//! [`HashReader::read_hashes`] call. Verification follows the algorithms of RFC 9162
//! §2.1.3.2 and §2.1.4.2 step by step; their text is quoted beside the code.
//!
//! Proof lengths are fixed by the tree sizes, so verification rejects a proof of the
//! wrong length before hashing anything: a hostile peer cannot make a verifier hash more
//! than 64 nodes per proof.

use super::stored::{HashReader, TreeError, check_size, fold_right, read_checked, subtree_indexes};
use super::{Hash, MAX_TREE_SIZE, node_hash, split_point};

/// The sibling ranges `lo..hi` of an inclusion path, top-down.
///
/// RFC 9162 §2.1.3.1:
/// ```text
/// Given an ordered list of n inputs to the tree, D_n = {d(0), ..., d(n-1)}, the Merkle
/// inclusion proof PATH(m, D_n) for the (m+1)th input d(m), 0 <= m < n, is defined as
/// follows:
///
/// The proof for the single leaf in a tree with a one-element input list D[1] = {d(0)} is
/// empty:  PATH(0, {d(0)}) = {}
///
/// For n > 1, let k be the largest power of two smaller than n. The proof for the (m+1)th
/// element d(m) in a list of n > m elements is then defined recursively as
///   PATH(m, D_n) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k; and
///   PATH(m, D_n) = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k,
/// ```
fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0, size);
    let mut ranges = Vec::with_capacity(64);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
        }
    }
    ranges
}

/// The node ranges of a consistency proof, top-down.
///
/// RFC 9162 §2.1.4.1:
/// ```text
/// PROOF(m, D_n) = SUBPROOF(m, D_n, true)
///
/// In SUBPROOF, the boolean value represents whether the subtree created from D[0:m] is a
/// complete subtree of the Merkle Tree created from D_n, and, consequently, whether the
/// subtree Merkle Tree Hash MTH(D[0:m]) is known.  The initial call to SUBPROOF sets this
/// to be true, and SUBPROOF is then defined as follows:
///
/// The subproof for m = n is empty if m is the value for which PROOF was originally
/// requested (meaning that the subtree created from D[0:m] is a complete subtree of the
/// Merkle Tree created from the original D_n for which PROOF was requested, and the
/// subtree Merkle Tree Hash MTH(D[0:m]) is known):
///   SUBPROOF(m, D[m], true) = {}
///
/// Otherwise, the subproof for m = n is the Merkle Tree Hash committing inputs D[0:m]:
///   SUBPROOF(m, D[m], false) = {MTH(D[m])}
///
/// For m < n, let k be the largest power of two smaller than n. The subproof is then
/// defined recursively, using the appropriate step below:
///
/// If m <= k, the right subtree entries D[k:n] only exist in the current tree. We prove
/// that the left subtree entries D[0:k] are consistent and add a commitment to D[k:n]:
///   SUBPROOF(m, D_n, b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
///
/// If m > k, the left subtree entries D[0:k] are identical in both trees. We prove that
/// the right subtree entries D[k:n] are consistent and add a commitment to D[0:k].
///   SUBPROOF(m, D_n, b) = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
/// ```
/// Here `old_size` is the absolute end of the old tree, so "m <= k" reads `old_size <= lo + k`.
fn consistency_ranges(old_size: u64, new_size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0, new_size);
    let mut known = true;
    let mut ranges = Vec::with_capacity(64);
    loop {
        if old_size == hi {
            if !known {
                ranges.push((lo, hi));
            }
            return ranges;
        }
        let k = split_point(hi - lo);
        if old_size <= lo + k {
            ranges.push((lo + k, hi));
            hi = lo + k;
        } else {
            ranges.push((lo, lo + k));
            lo += k;
            known = false;
        }
    }
}

/// Reads and hashes the given ranges, returning them leaf-to-root (reversed).
fn hash_ranges<R: HashReader>(
    ranges: &[(u64, u64)],
    reader: &R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    let mut indexes = Vec::with_capacity(ranges.len() * 2);
    let mut bounds = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let start = indexes.len();
        subtree_indexes(lo, hi, &mut indexes);
        bounds.push(start..indexes.len());
    }
    let hashes = read_checked(reader, &indexes)?;
    Ok(bounds
        .into_iter()
        .rev()
        .map(|range| fold_right(hashes.get(range).unwrap_or_default()))
        .collect())
}

/// Generates the inclusion proof (audit path, leaf to root) of leaf `index` in the tree
/// of `size` leaves, from stored hashes.
pub fn prove_inclusion<R: HashReader>(
    index: u64,
    size: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    check_size(size)?;
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    hash_ranges(&inclusion_ranges(index, size), reader)
}

/// Generates the consistency proof from the tree of `old_size` leaves to the tree of
/// `new_size` leaves, from stored hashes.
///
/// The proof is empty when `old_size` is 0 or equals `new_size`: every tree extends the
/// empty tree, and a tree is consistent with itself when the roots are equal.
pub fn prove_consistency<R: HashReader>(
    old_size: u64,
    new_size: u64,
    reader: &R,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    check_size(new_size)?;
    if old_size > new_size {
        return Err(TreeError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    hash_ranges(&consistency_ranges(old_size, new_size), reader)
}

/// Why an inclusion proof did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionError {
    /// The leaf index is not below the tree size (or the size is beyond [`MAX_TREE_SIZE`]).
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The proof does not have the length the index and size determine.
    #[error("inclusion proof has {actual} hashes, a proof for this index and size has {expected}")]
    WrongLength {
        /// The length the index and size require.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// The proof leads to a different root than the one given.
    #[error("inclusion proof leads to a different root")]
    RootMismatch,
}

/// Why a consistency proof did not verify.
///
/// A proof that fails to verify is *not* evidence of equivocation by itself: anyone can
/// send garbage. Evidence needs both roots signed (see [`consistency_proof_roots`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsistencyError {
    /// The old size is larger than the new size, or the new size is beyond [`MAX_TREE_SIZE`].
    #[error("cannot prove tree size {old_size} consistent with tree size {new_size}")]
    SizesOutOfOrder {
        /// The older (first) size.
        old_size: u64,
        /// The newer (second) size.
        new_size: u64,
    },
    /// The proof does not have the length the two sizes determine.
    #[error("consistency proof has {actual} hashes, a proof for these sizes has {expected}")]
    WrongLength {
        /// The length the sizes require.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// Equal sizes with different roots: these two trees cannot both be the log's.
    #[error("same tree size with different roots")]
    DifferentRootsForOneSize,
    /// The proof does not reproduce the old root.
    #[error("consistency proof does not reproduce the old root")]
    OldRootMismatch,
    /// The proof does not reproduce the new root.
    #[error("consistency proof does not reproduce the new root")]
    NewRootMismatch,
}

/// Computes the root an inclusion proof leads to for a leaf hash, following RFC 9162
/// §2.1.3.2 up to the final comparison.
pub fn inclusion_proof_root(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, InclusionError> {
    // "1. Compare leaf_index from the inclusion_proof_v2 structure against tree_size.
    //  If leaf_index is greater than or equal to tree_size, then fail the proof
    //  verification."
    if index >= size || size > MAX_TREE_SIZE {
        return Err(InclusionError::IndexOutOfRange { index, size });
    }
    // The RFC's loop rejects a proof of the wrong length through its checks on `sn`;
    // checking the length first bounds the work and names the failure.
    let expected = inclusion_ranges(index, size).len();
    if proof.len() != expected {
        return Err(InclusionError::WrongLength {
            expected,
            actual: proof.len(),
        });
    }
    // "2. Set fn to leaf_index and sn to tree_size - 1.
    //  3. Set r to hash."
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    // "4. For each value p in the inclusion_path array:"
    for p in proof {
        // "a. If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0 {
            return Err(InclusionError::WrongLength {
                expected,
                actual: proof.len(),
            });
        }
        // "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // "i. Set r to HASH(0x01 || p || r)."
            r = node_hash(p, &r);
            // "ii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            //  either LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: i. Set r to HASH(0x01 || r || p)."
            r = node_hash(&r, p);
        }
        // "c. Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // "5. Compare sn to 0. [...] If sn is equal to 0 and r and the root_hash are equal,
    //  then the log has proven the inclusion of hash."
    if sn != 0 {
        return Err(InclusionError::WrongLength {
            expected,
            actual: proof.len(),
        });
    }
    Ok(r)
}

/// Verifies that `leaf` (a [`leaf_hash`](super::leaf_hash)) is at `index` in the tree of
/// `size` leaves with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), InclusionError> {
    if inclusion_proof_root(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(InclusionError::RootMismatch)
    }
}

/// Computes the old and new roots a consistency proof reproduces, following RFC 9162
/// §2.1.4.2 up to the final comparison. Requires `0 < old_size < new_size`.
///
/// When `old_size` is a power of two the RFC proof omits the old root (the verifier
/// already knows it): `old_subtree` is then used as the first hash of the path, so the
/// derived old root is `old_subtree` itself. Equivocation evidence relies on this: a
/// proof that reproduces a signed new root while carrying an explicit old subtree
/// different from a signed old root proves the two cannot both be true. For other old
/// sizes `old_subtree` is ignored.
pub fn consistency_proof_roots(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_subtree: &Hash,
) -> Result<(Hash, Hash), ConsistencyError> {
    if old_size == 0 || old_size >= new_size || new_size > MAX_TREE_SIZE {
        return Err(ConsistencyError::SizesOutOfOrder { old_size, new_size });
    }
    let expected = consistency_ranges(old_size, new_size).len();
    // "1. If consistency_path is an empty array, stop and fail the proof verification."
    if proof.len() != expected {
        return Err(ConsistencyError::WrongLength {
            expected,
            actual: proof.len(),
        });
    }
    let wrong_length = ConsistencyError::WrongLength {
        expected,
        actual: proof.len(),
    };
    // "2. If first is an exact power of 2, then prepend first_hash to the
    //  consistency_path array."
    let mut path = proof.iter();
    let first = if old_size.is_power_of_two() {
        old_subtree
    } else {
        path.next().ok_or(wrong_length)?
    };
    // "3. Set fn to first - 1 and sn to second - 1."
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // "4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is
    //  not set."
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // "5. Set both fr and sr to the first value in the consistency_path array."
    let (mut fr, mut sr) = (*first, *first);
    // "6. For each subsequent value c in the consistency_path array:"
    for c in path {
        // "a. If sn is 0, then stop the iteration and fail the proof verification."
        if sn == 0 {
            return Err(wrong_length);
        }
        // "b. If LSB(fn) is set, or if fn is equal to sn, then:"
        if fn_ & 1 == 1 || fn_ == sn {
            // "i. Set fr to HASH(0x01 || c || fr).  ii. Set sr to HASH(0x01 || c || sr)."
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // "iii. If LSB(fn) is not set, then right-shift both fn and sn equally until
            //  either LSB(fn) is set or fn is 0."
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            // "Otherwise: i. Set sr to HASH(0x01 || sr || c)."
            sr = node_hash(&sr, c);
        }
        // "c. Finally, right-shift both fn and sn one time."
        fn_ >>= 1;
        sn >>= 1;
    }
    // "7. [...] verify that the fr calculated is equal to the first_hash supplied, that
    //  the sr calculated is equal to the second_hash supplied, and that sn is 0."
    if sn != 0 {
        return Err(wrong_length);
    }
    Ok((fr, sr))
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix of the
/// tree of `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
///
/// Trivial cases, where RFC 9162 defines no proof, take an empty one: the empty tree is a
/// prefix of every tree, and equal sizes are consistent exactly when the roots are equal.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ConsistencyError> {
    if old_size > new_size || new_size > MAX_TREE_SIZE {
        return Err(ConsistencyError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ConsistencyError::WrongLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        if old_size == new_size && old_root != new_root {
            return Err(ConsistencyError::DifferentRootsForOneSize);
        }
        return Ok(());
    }
    let (fr, sr) = consistency_proof_roots(old_size, new_size, proof, old_root)?;
    if fr != *old_root {
        return Err(ConsistencyError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ConsistencyError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{MemoryHashStore, leaf_hash, tree_hash};
    use super::*;

    fn store_of(size: u64) -> MemoryHashStore {
        let mut store = MemoryHashStore::new();
        for i in 0..size {
            store.append(leaf_hash(&i.to_le_bytes())).unwrap();
        }
        store
    }

    #[test]
    fn every_proof_in_small_trees_verifies_and_every_bit_flip_fails() {
        let store = store_of(40);
        for size in 1..=40u64 {
            let root = tree_hash(size, &store).unwrap();
            for index in 0..size {
                let leaf = leaf_hash(&index.to_le_bytes());
                let proof = prove_inclusion(index, size, &store).unwrap();
                verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][7] ^= 1;
                    assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
                }
                if index + 1 < size {
                    assert!(verify_inclusion(index + 1, size, &leaf, &proof, &root).is_err());
                }
            }
            for old in 0..=size {
                let old_root = tree_hash(old, &store).unwrap();
                let proof = prove_consistency(old, size, &store).unwrap();
                verify_consistency(old, size, &proof, &old_root, &root).unwrap();
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][0] ^= 0x80;
                    assert!(verify_consistency(old, size, &bad, &old_root, &root).is_err());
                }
                if old > 0 && old < size {
                    let mut bad_old = old_root;
                    bad_old[31] ^= 1;
                    assert!(verify_consistency(old, size, &proof, &bad_old, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn wrong_lengths_are_rejected_before_hashing() {
        let huge = vec![[0u8; 32]; 1_000_000];
        assert!(matches!(
            verify_inclusion(3, 10, &[0; 32], &huge, &[0; 32]),
            Err(InclusionError::WrongLength { expected: 4, .. })
        ));
        assert!(matches!(
            verify_consistency(3, 10, &huge, &[0; 32], &[0; 32]),
            Err(ConsistencyError::WrongLength { .. })
        ));
        assert!(matches!(
            verify_consistency(0, 10, &huge[..1], &[0; 32], &[0; 32]),
            Err(ConsistencyError::WrongLength { expected: 0, .. })
        ));
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        let store = store_of(4);
        assert!(prove_inclusion(4, 4, &store).is_err());
        assert!(prove_consistency(5, 4, &store).is_err());
        assert!(prove_inclusion(0, u64::MAX, &store).is_err());
        assert!(verify_inclusion(u64::MAX - 1, u64::MAX, &[0; 32], &[], &[0; 32]).is_err());
        assert!(verify_consistency(1, u64::MAX, &[], &[0; 32], &[0; 32]).is_err());
        assert_eq!(
            verify_consistency(4, 4, &[], &[0; 32], &[1; 32]),
            Err(ConsistencyError::DifferentRootsForOneSize)
        );
    }

    #[test]
    fn explicit_old_subtree_derives_a_different_old_root_for_power_of_two_sizes() {
        let store = store_of(12);
        let new_root = tree_hash(12, &store).unwrap();
        let old_root = tree_hash(8, &store).unwrap();
        let proof = prove_consistency(8, 12, &store).unwrap();
        let (fr, sr) = consistency_proof_roots(8, 12, &proof, &old_root).unwrap();
        assert_eq!((fr, sr), (old_root, new_root));
        // A forged old root cannot reproduce the honest new root through this proof.
        let forged = [9u8; 32];
        let (fr, sr) = consistency_proof_roots(8, 12, &proof, &forged).unwrap();
        assert_eq!(fr, forged);
        assert_ne!(sr, new_root);
    }
}
