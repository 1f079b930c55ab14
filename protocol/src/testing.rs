//! A transparency log for tests, benchmarks and the simulator: an Ed25519 log key and an
//! in-memory RFC 6962 tree whose leaves can differ from a fork point on, so that two
//! instances with one key play an equivocating log's two histories. It signs
//! checkpoints and proves consistency like a real log; it is not part of the supported
//! API and stores nothing.

use crate::checkpoint::Checkpoint;
use crate::merkle::{Hash, MemoryHashStore, leaf_hash, prove_consistency, subtree_hash, tree_hash};
use crate::note::{Ed25519Signer, KeyName, Verifier};

/// A log of one key whose leaf `i` is `[tag, i (8 bytes, big endian)]`, `tag` being 0
/// before `fork_at` and 1 from it on.
#[derive(Clone)]
pub struct TestLog {
    origin: String,
    signer: Ed25519Signer,
    store: MemoryHashStore,
    fork_at: u64,
}

impl std::fmt::Debug for TestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestLog")
            .field("origin", &self.origin)
            .field("size", &self.store.size())
            .field("fork_at", &self.fork_at)
            .finish_non_exhaustive()
    }
}

impl TestLog {
    /// An honest log of `origin` whose key comes from `key_seed`.
    ///
    /// # Panics
    ///
    /// If `origin` is not a valid key name (test fixtures pass constants).
    pub fn new(origin: &str, key_seed: u8) -> TestLog {
        TestLog::forked(origin, key_seed, u64::MAX)
    }

    /// The log of the same key whose leaves differ from index `fork_at` on.
    ///
    /// # Panics
    ///
    /// If `origin` is not a valid key name (test fixtures pass constants).
    #[allow(clippy::expect_used)]
    pub fn forked(origin: &str, key_seed: u8, fork_at: u64) -> TestLog {
        let name = KeyName::new(origin).expect("a test log's origin is a valid key name");
        TestLog {
            origin: origin.to_owned(),
            signer: Ed25519Signer::from_seed(name, &[key_seed; 32]),
            store: MemoryHashStore::new(),
            fork_at,
        }
    }

    /// The origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The log key.
    pub fn signer(&self) -> &Ed25519Signer {
        &self.signer
    }

    /// The log's verifier key.
    pub fn verifier(&self) -> Verifier {
        self.signer.verifier().into()
    }

    /// Grows the tree to `size` leaves (it never shrinks).
    pub fn grow_to(&mut self, size: u64) {
        while self.store.size() < size {
            let i = self.store.size();
            let mut entry = vec![u8::from(i >= self.fork_at)];
            entry.extend_from_slice(&i.to_be_bytes());
            // An in-memory tree of fewer than 2^63 leaves cannot fail to grow.
            let _ = self.store.append(leaf_hash(&entry));
        }
    }

    /// The root of the tree of `size` leaves.
    pub fn root(&mut self, size: u64) -> Hash {
        self.grow_to(size);
        tree_hash(size, &self.store).unwrap_or_default()
    }

    /// The signed checkpoint note of size `size`.
    ///
    /// # Panics
    ///
    /// Never for a valid origin: signing in memory does not fail.
    #[allow(clippy::expect_used)]
    pub fn note(&mut self, size: u64) -> Vec<u8> {
        let root = self.root(size);
        Checkpoint::new(self.origin.clone(), size, root)
            .expect("a test log's checkpoint is well formed")
            .sign(&[&self.signer])
            .expect("a test log signs its checkpoints")
            .to_bytes()
    }

    /// The RFC 9162 consistency proof from `old` to `new` (empty when `old` is 0 or
    /// equals `new`).
    pub fn proof(&mut self, old: u64, new: u64) -> Vec<Hash> {
        self.grow_to(new);
        if old == 0 || old >= new {
            return Vec::new();
        }
        prove_consistency(old, new, &self.store).unwrap_or_default()
    }

    /// The hash of the subtree of the first `size` leaves (for evidence about a
    /// power-of-two size).
    pub fn subtree(&mut self, size: u64) -> Hash {
        self.grow_to(size);
        subtree_hash(0, size, &self.store).unwrap_or_default()
    }
}
