//! The domain transparency log: what an entry is, how entries are admitted, sequenced
//! into the Merkle tree and checkpointed, and what the durable store must hold.
//!
//! | module | owns |
//! | --- | --- |
//! | [`admission`] | the admission rules in order: parse, certificate, signature, quota |
//! | [`sequencer`] | the sequencer state machine: admitted entries in, durable batches and signed checkpoints out |
//! | [`entry`] | Rekor v1 entry kinds (`hashedrekord`, `dsse` 0.0.1): proposed entries, canonical bodies, signed entry timestamps, API views |
//! | [`signer_cert`] | who may write: code-signing certificates that chain to the domain's roots |
//! | [`quota`] | per-identity write quotas |
//!
//! A log is named by its **origin**, a configured name such as `log.org-a.example` that is
//! also the key name of its Ed25519 checkpoint key. Its key ID ([`log_key_id`]) is the
//! scheme Rekor v2 uses: `SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ public key)`, whose first four
//! bytes are the C2SP note key hint. The same ID names the log in checkpoints, in
//! Sigstore bundles (`logId.keyId`), in signed entry timestamps and in the trusted root.

pub mod admission;
pub mod entry;
pub mod quota;
pub mod sequencer;
pub mod signer_cert;

use crate::merkle::Hash;
use crate::note::{KeyName, key_hash};

/// The signature type byte of Ed25519 note keys (C2SP signed-note).
const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// A log's 32-byte key ID: `SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ Ed25519 public key)`.
///
/// Rekor v2 names its logs this way; the first four bytes are the C2SP note key hint, so
/// a checkpoint's signature line, a bundle's `logId.keyId` and the trusted root's
/// `logId.keyId` all point at the same key.
pub fn log_key_id(origin: &KeyName, public_key: &[u8; 32]) -> [u8; 32] {
    key_hash(origin, ED25519_SIGNATURE_TYPE, public_key)
}

/// The largest canonical entry body the log stores, in bytes.
///
/// C2SP tlog-tiles entry bundles prefix each entry with a big-endian `uint16` length, so
/// no entry served as a tile can be longer.
pub const MAX_ENTRY_BODY_BYTES: usize = u16::MAX as usize;

/// An entry that passed admission (parsed, signature and certificate verified, quota
/// charged) and waits to be sequenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmittedEntry {
    /// The canonical body: the exact bytes of the Merkle leaf and of the tile entry.
    pub body: Vec<u8>,
    /// `leaf_hash(body)`; also the entry's Rekor v1 UUID and its deduplication key.
    pub leaf_hash: Hash,
    /// SHA-256 digests the entry can be found by (`POST /api/v1/index/retrieve`): the
    /// artifact digest of a `hashedrekord`, the subject digests and payload digest of a
    /// `dsse` entry. Deduplicated, at most [`MAX_SEARCH_KEYS`].
    pub search_keys: Vec<[u8; 32]>,
    /// For a `dsse` entry, the proposed entry as admitted (its JSON, with the envelope):
    /// the canonical body keeps only the envelope's hashes, and the log keeps this beside
    /// the entry so that the attestation can be served (Rekor v1 kept attestations too).
    /// `None` for other kinds, whose canonical body says everything.
    pub attestation: Option<Vec<u8>>,
}

/// The most search keys one entry may carry (a statement with more subjects is indexed by
/// its first ones and stays findable by payload digest).
pub const MAX_SEARCH_KEYS: usize = 64;

/// One entry with its place in the log, as a batch persists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedEntry {
    /// The entry's index in the log (its leaf index).
    pub index: u64,
    /// The time the log accepted it, in Unix seconds (Rekor's `integratedTime`).
    pub integrated_time: i64,
    /// The admitted entry.
    pub entry: AdmittedEntry,
}

/// A checkpoint the log signed, as stored and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpointNote {
    /// Tree size it commits to.
    pub size: u64,
    /// Root hash at that size.
    pub root_hash: Hash,
    /// The whole signed note (checkpoint body, blank line, signature line), as served.
    pub note: Vec<u8>,
}

/// Everything one sequencing step makes durable, in **one** atomic write.
///
/// The store applies all of it or none of it: the entries, the stored Merkle hashes
/// they add, the index from leaf hash and search keys to entry, and the checkpoint that
/// covers them. Because the tree and its newest checkpoint are written together, the
/// store never holds a checkpoint for a tree it does not hold, nor a tree size it signed
/// nothing for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The entries, with consecutive indexes starting at the tree size before the batch.
    pub entries: Vec<SequencedEntry>,
    /// Index of the first new stored hash: `stored_hash_count(size before the batch)`.
    pub first_stored_hash: u64,
    /// The new stored hashes, consecutive from `first_stored_hash`.
    pub stored_hashes: Vec<Hash>,
    /// The checkpoint for the tree after the batch.
    pub checkpoint: SignedCheckpointNote,
}
