//! The stored-hash layout of a log's Merkle tree.
//!
//! A log stores, for every *complete* subtree (2^level leaves starting at a multiple of
//! 2^level), its hash exactly once. Complete subtrees never change as the log grows, so
//! this layout is append-only: appending leaf `n` adds its leaf hash and the hashes of
//! the `trailing_ones(n)` complete subtrees that leaf closes. The hashes are numbered in
//! the order they are written, which is the numbering of Go's `golang.org/x/mod/sumdb/tlog`
//! ("Transparent Logs for Skeptical Clients", Russ Cox 2019) and of C2SP tlog-tiles:
//!
//! ```text
//! index:  0   1   2   3   4   5   6   7   8   9  10 …
//! hash:  L0  L1  N01 L2  L3  N23 N03 L4  L5  N45 L6 …   (L = leaf, Nab = subtree a..=b)
//! ```
//!
//! Any tree size `n` decomposes into at most 64 complete subtrees (one per set bit of
//! `n`), so the root of every historical size, and every proof, needs O(log n) stored
//! hashes. Nothing is ever recomputed from the leaves.
//!
//! Stores implement [`HashReader`]; [`MemoryHashStore`] is the in-memory one used by the
//! simulator, tests and benchmarks. Writers keep a [`Frontier`] (the right edge of the
//! tree) so that appending needs no reads at all.

use super::{EMPTY_ROOT, Hash, MAX_TREE_SIZE, node_hash};

/// Read access to a log's stored hashes.
///
/// # Contract
/// - `read_hashes` returns exactly one hash per requested index, in request order, or an
///   error. Callers check the length and report a mismatch as
///   [`TreeError::StoreContract`] rather than trusting it.
/// - A hash once returned for an index never changes: stored hashes are append-only.
///   Implementations must only expose hashes that are durable, or be used only by the
///   writer that holds them in memory.
/// - Indexes passed by this module are always below `stored_hash_count(tree_size)` for
///   the tree size the caller asked about; a store that does not yet hold that size
///   returns an error.
pub trait HashReader {
    /// The error the store reports when it cannot read.
    type Error;

    /// Returns the hashes at the given stored-hash indexes, in the same order.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error>;
}

impl<R: HashReader + ?Sized> HashReader for &R {
    type Error = R::Error;
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error> {
        (**self).read_hashes(indexes)
    }
}

/// Errors of tree operations computed from stored hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError<E> {
    /// The hash store failed to read.
    #[error("hash store: {0}")]
    Store(E),
    /// The hash store returned a different number of hashes than requested: a bug in the
    /// store, reported rather than trusted.
    #[error("hash store returned {returned} hashes for {requested} indexes")]
    StoreContract {
        /// How many hashes were requested.
        requested: usize,
        /// How many the store returned.
        returned: usize,
    },
    /// A tree size above [`MAX_TREE_SIZE`] was given.
    #[error("tree size {size} exceeds the supported maximum")]
    SizeTooLarge {
        /// The size that was asked for.
        size: u64,
    },
    /// A leaf index at or beyond the tree size was given.
    #[error("leaf index {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index that was asked for.
        index: u64,
        /// The tree size it was asked for.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder {
        /// The older (first) size.
        old_size: u64,
        /// The newer (second) size.
        new_size: u64,
    },
}

/// Reads hashes and enforces the [`HashReader`] length contract.
pub(crate) fn read_checked<R: HashReader>(
    reader: &R,
    indexes: &[u64],
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes).map_err(TreeError::Store)?;
    if hashes.len() != indexes.len() {
        return Err(TreeError::StoreContract {
            requested: indexes.len(),
            returned: hashes.len(),
        });
    }
    Ok(hashes)
}

pub(crate) fn check_size<E>(size: u64) -> Result<(), TreeError<E>> {
    if size > MAX_TREE_SIZE {
        return Err(TreeError::SizeTooLarge { size });
    }
    Ok(())
}

/// Number of stored hashes of a tree with `size` leaves: `2·size − popcount(size)`.
///
/// Appending leaf `n` writes `1 + trailing_ones(n)` hashes; summed over all leaves this is
/// `size + (size − popcount(size))`.
pub fn stored_hash_count(size: u64) -> u64 {
    2 * size - u64::from(size.count_ones())
}

/// Index of the stored hash of the `n`-th complete subtree at `level` (the subtree of
/// leaves `n·2^level .. (n+1)·2^level`).
///
/// That hash is written while appending the subtree's last leaf `m = (n+1)·2^level − 1`,
/// after the leaf hash and the `level − 1` smaller subtrees that leaf closes first.
/// `level` must be below 63 and the subtree must lie within [`MAX_TREE_SIZE`].
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    let last_leaf = ((n + 1) << level) - 1;
    stored_hash_count(last_leaf) + u64::from(level)
}

/// Inverse of [`stored_hash_index`]: the `(level, n)` of a stored-hash index, or `None`
/// for an index beyond the hashes of a tree of [`MAX_TREE_SIZE`] leaves.
pub fn split_stored_hash_index(index: u64) -> Option<(u8, u64)> {
    if index >= stored_hash_count(MAX_TREE_SIZE) {
        return None;
    }
    // Find the leaf m whose append wrote this index: stored_hash_count(m) <= index <
    // stored_hash_count(m + 1). stored_hash_count(m) lies in [2m − 64, 2m], so the search
    // starts at index / 2 and moves up at most a few dozen steps.
    let mut leaf = index / 2;
    while stored_hash_count(leaf) > index {
        leaf -= 1;
    }
    while stored_hash_count(leaf + 1) <= index {
        leaf += 1;
    }
    let level = index - stored_hash_count(leaf);
    // `level` ≤ trailing_ones(leaf) ≤ 63.
    let level = level as u8;
    Some((level, ((leaf + 1) >> level) - 1))
}

/// The complete subtrees `(level, n)` that make up the range `lo..hi` of leaves, left to
/// right, each as large as alignment allows.
///
/// For the ranges RFC 9162's recursion produces (`lo` a multiple of a power of two not
/// smaller than `hi − lo`), folding their hashes from the right yields `MTH(D[lo:hi])`.
fn complete_subtrees(mut lo: u64, hi: u64, out: &mut Vec<(u8, u64)>) {
    while lo < hi {
        // The largest power of two that fits in the range and to which `lo` is aligned.
        let fits = 63 - (hi - lo).leading_zeros();
        let level = if lo == 0 {
            fits
        } else {
            fits.min(lo.trailing_zeros())
        } as u8;
        out.push((level, lo >> level));
        lo += 1 << level;
    }
}

/// Stored-hash indexes needed to compute `MTH(D[lo:hi])`.
pub(crate) fn subtree_indexes(lo: u64, hi: u64, out: &mut Vec<u64>) {
    let mut parts = Vec::with_capacity(64);
    complete_subtrees(lo, hi, &mut parts);
    out.extend(parts.iter().map(|&(level, n)| stored_hash_index(level, n)));
}

/// Folds the hashes of [`subtree_indexes`] (left to right) into the subtree root.
pub(crate) fn fold_right(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return EMPTY_ROOT;
    };
    iter.fold(*last, |right, left| node_hash(left, &right))
}

/// The root hash `MTH(D[lo:hi])` of a subtree of the log, from stored hashes.
///
/// `lo..hi` must be a range RFC 9162's recursion produces — in particular any prefix
/// `0..n` — and `hi` at most the size the store holds.
pub fn subtree_hash<R: HashReader>(
    lo: u64,
    hi: u64,
    reader: &R,
) -> Result<Hash, TreeError<R::Error>> {
    check_size(hi)?;
    let mut indexes = Vec::with_capacity(64);
    subtree_indexes(lo, hi, &mut indexes);
    Ok(fold_right(&read_checked(reader, &indexes)?))
}

/// The root hash of the tree of the first `size` leaves (any historical size), read from
/// at most 62 stored hashes in one call.
pub fn tree_hash<R: HashReader>(size: u64, reader: &R) -> Result<Hash, TreeError<R::Error>> {
    subtree_hash(0, size, reader)
}

/// The right edge of a tree: the roots of its maximal complete subtrees, largest first.
///
/// It is everything needed to append: the writer keeps it in memory, and each append
/// returns the stored hashes to persist, with no reads. It also yields the root of the
/// current size without reads. Load it once from the store with [`Frontier::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)` of each complete subtree, decreasing levels: one per set bit of `size`.
    subtrees: Vec<(u8, Hash)>,
}

impl Default for Frontier {
    fn default() -> Self {
        Self::new()
    }
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier {
            size: 0,
            subtrees: Vec::new(),
        }
    }

    /// Loads the frontier of a tree of `size` leaves from its stored hashes (one read of
    /// at most 62 hashes).
    pub fn load<R: HashReader>(size: u64, reader: &R) -> Result<Self, TreeError<R::Error>> {
        check_size(size)?;
        let mut parts = Vec::with_capacity(64);
        complete_subtrees(0, size, &mut parts);
        let indexes: Vec<u64> = parts
            .iter()
            .map(|&(level, n)| stored_hash_index(level, n))
            .collect();
        let hashes = read_checked(reader, &indexes)?;
        let subtrees = parts
            .iter()
            .zip(hashes)
            .map(|(&(level, _), hash)| (level, hash))
            .collect();
        Ok(Frontier { size, subtrees })
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree (RFC 9162 `MTH`), computed from the frontier alone.
    pub fn root(&self) -> Hash {
        let mut iter = self.subtrees.iter().rev();
        let Some(&(_, last)) = iter.next() else {
            return EMPTY_ROOT;
        };
        iter.fold(last, |right, (_, left)| node_hash(left, &right))
    }

    /// Appends a leaf (given by its [`leaf_hash`](super::leaf_hash)) and calls `store` with
    /// every new stored hash, in index order starting at `stored_hash_count(size)`.
    ///
    /// Fails only when the tree is full ([`MAX_TREE_SIZE`]); nothing changes then.
    pub fn append(
        &mut self,
        leaf: Hash,
        mut store: impl FnMut(Hash),
    ) -> Result<(), TreeError<std::convert::Infallible>> {
        if self.size >= MAX_TREE_SIZE {
            return Err(TreeError::SizeTooLarge {
                size: self.size.saturating_add(1),
            });
        }
        store(leaf);
        let mut merged = (0u8, leaf);
        // Each trailing one of the old size is a complete subtree the new leaf completes.
        while let Some(&(level, left)) = self.subtrees.last() {
            if level != merged.0 {
                break;
            }
            self.subtrees.pop();
            merged = (level + 1, node_hash(&left, &merged.1));
            store(merged.1);
        }
        self.subtrees.push(merged);
        self.size += 1;
        Ok(())
    }
}

/// Errors of [`MemoryHashStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryStoreError {
    /// The index is beyond the hashes the store holds.
    #[error("stored hash {index} is not in the store (it holds {held})")]
    Missing {
        /// The index asked for.
        index: u64,
        /// How many hashes the store holds.
        held: u64,
    },
}

/// An in-memory log tree: all stored hashes in a vector, plus the frontier.
///
/// Used by the simulator, tests and benchmarks; the node stores the same hashes durably.
#[derive(Debug, Clone, Default)]
pub struct MemoryHashStore {
    hashes: Vec<Hash>,
    frontier: Frontier,
}

impl MemoryHashStore {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf by its leaf hash and returns its index.
    pub fn append(&mut self, leaf: Hash) -> Result<u64, TreeError<std::convert::Infallible>> {
        let index = self.frontier.size();
        let hashes = &mut self.hashes;
        self.frontier.append(leaf, |hash| hashes.push(hash))?;
        Ok(index)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The root hash of the current tree.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// All stored hashes, in index order.
    pub fn stored_hashes(&self) -> &[Hash] {
        &self.hashes
    }
}

impl HashReader for MemoryHashStore {
    type Error = MemoryStoreError;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Self::Error> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|i| self.hashes.get(i))
                    .copied()
                    .ok_or(MemoryStoreError::Missing {
                        index,
                        held: self.hashes.len() as u64,
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::leaf_hash;
    use super::*;

    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = super::super::split_point(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn stored_hash_layout_matches_the_documented_order() {
        // index: 0 L0, 1 L1, 2 N01, 3 L2, 4 L3, 5 N23, 6 N03, 7 L4
        assert_eq!(stored_hash_index(0, 0), 0);
        assert_eq!(stored_hash_index(0, 1), 1);
        assert_eq!(stored_hash_index(1, 0), 2);
        assert_eq!(stored_hash_index(0, 2), 3);
        assert_eq!(stored_hash_index(0, 3), 4);
        assert_eq!(stored_hash_index(1, 1), 5);
        assert_eq!(stored_hash_index(2, 0), 6);
        assert_eq!(stored_hash_index(0, 4), 7);
        for index in 0..10_000 {
            let (level, n) = split_stored_hash_index(index).unwrap();
            assert_eq!(stored_hash_index(level, n), index, "index {index}");
        }
        let last = stored_hash_count(MAX_TREE_SIZE) - 1;
        assert_eq!(split_stored_hash_index(last), Some((62, 0)));
        assert_eq!(split_stored_hash_index(last + 1), None);
        assert_eq!(split_stored_hash_index(u64::MAX), None);
    }

    #[test]
    fn every_prefix_root_matches_naive_recursion() {
        let mut store = MemoryHashStore::new();
        let mut leaves = Vec::new();
        for i in 0u32..300 {
            assert_eq!(
                tree_hash(store.size(), &store).unwrap(),
                naive_root(&leaves)
            );
            assert_eq!(store.root(), naive_root(&leaves));
            let leaf = leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            store.append(leaf).unwrap();
            assert_eq!(
                store.stored_hashes().len() as u64,
                stored_hash_count(store.size())
            );
        }
        // Historical sizes too.
        for size in 0..=leaves.len() {
            assert_eq!(
                tree_hash(size as u64, &store).unwrap(),
                naive_root(&leaves[..size])
            );
            let frontier = Frontier::load(size as u64, &store).unwrap();
            assert_eq!(frontier.root(), naive_root(&leaves[..size]));
        }
    }

    #[test]
    fn reading_beyond_the_store_is_an_error_not_a_panic() {
        let mut store = MemoryHashStore::new();
        store.append(leaf_hash(b"a")).unwrap();
        assert!(matches!(
            tree_hash(5, &store),
            Err(TreeError::Store(MemoryStoreError::Missing { .. }))
        ));
        assert!(matches!(
            tree_hash(MAX_TREE_SIZE + 1, &store),
            Err(TreeError::SizeTooLarge { .. })
        ));
    }

    struct ShortReader;
    impl HashReader for ShortReader {
        type Error = ();
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, ()> {
            Ok(vec![])
        }
    }

    #[test]
    fn a_store_breaking_its_contract_is_reported() {
        assert_eq!(
            tree_hash(3, &ShortReader),
            Err(TreeError::StoreContract {
                requested: 2,
                returned: 0
            })
        );
    }
}
