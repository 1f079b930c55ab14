//! The durable store of the domain transparency log: the narrow [`LogStore`] trait with
//! its durability contract, and [`RedbLogStore`], its implementation on redb.
//!
//! The sequencer (`provmesh_protocol::log::sequencer`) decides what goes into the log; this
//! module only makes each [`Batch`] durable in one atomic, fsynced write transaction and
//! serves reads of committed state. It refuses a batch that does not extend exactly what
//! it holds (see [`ContractViolation`]), so that a bug upstream can never make the log
//! hold two different trees, or two different checkpoints, for one size. Why redb and not
//! sled: `docs/operations.md` (measured on this machine kind; sled is beta with an unstable
//! on-disk format, and a transparency log's first duty is to lose nothing and never fork).
//!
//! # On-disk format (version [`FORMAT_VERSION`])
//!
//! One redb file. redb's `u64` keys are fixed-width and compared numerically, so ranges
//! over indexes and sizes need no big-endian encoding; integers *inside* values are
//! big-endian so that the layout does not depend on redb's own integer encoding.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `log_meta` | `&str` | `&[u8]`, per key below |
//! | `log_entries` | `u64` entry index | `integrated_time` (`i64`, 8 bytes big-endian) ‖ canonical body |
//! | `log_hashes` | `u64` stored-hash index | `&[u8; 32]` the stored hash ([`provmesh_protocol::merkle::stored`] layout) |
//! | `log_leaf_index` | `&[u8; 32]` leaf hash | `u64` entry index (deduplication and lookup by UUID) |
//! | `log_search` (multimap) | `&[u8; 32]` search key | `u64` entry index, ascending |
//! | `log_checkpoints` | `u64` tree size | root hash (32 bytes) ‖ the signed checkpoint note, byte for byte as served |
//! | `log_attestations_v1` | `u64` entry index | for a `dsse` entry, the proposed entry JSON as admitted (with the DSSE envelope, which the canonical body only hashes) |
//!
//! `log_meta` keys:
//!
//! | key | value |
//! | --- | --- |
//! | `format_version` | `u64`, 8 bytes big-endian; written when the file is created |
//! | `tree_size` | `u64`, 8 bytes big-endian: the number of committed entries |
//! | `origin` | the log's origin, UTF-8 (also its checkpoint key name) |
//! | `public_key` | the log's Ed25519 checkpoint public key, 32 bytes |
//!
//! Invariants every commit keeps (and [`super::fsck`] re-verifies): entries `0..tree_size`
//! and stored hashes `0..stored_hash_count(tree_size)` are present and nothing beyond;
//! every stored hash is the one RFC 9162 gives for the entry bodies; the leaf-hash index
//! maps each entry's leaf hash to that entry and nothing else; every checkpoint is signed
//! by the metadata key, names the metadata origin, has the root of the tree at its size,
//! and no checkpoint lies beyond the tree; the newest checkpoint is at `tree_size` (once
//! one was committed). The root stored beside each note is a copy of the note's, kept so
//! that serving checkpoints needs no parsing.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use provmesh_protocol::checkpoint::{self, CheckpointOpenError};
use provmesh_protocol::log::{Batch, MAX_ENTRY_BODY_BYTES, MAX_SEARCH_KEYS, SignedCheckpointNote};
use provmesh_protocol::merkle::tiles::TILE_WIDTH;
use provmesh_protocol::merkle::{
    Frontier, Hash, HashReader, MAX_TREE_SIZE, TreeError, leaf_hash, stored_hash_count,
};
use provmesh_protocol::note::{Ed25519Verifier, KeyName, Verifier};
use redb::{
    Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableTable, TableDefinition,
};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// The most entries one [`LogStore::entries`] call returns: one C2SP tlog-tiles entry
/// bundle ("Full tiles MUST be exactly 256 hashes wide"; a bundle holds the entries of a
/// level-0 tile).
pub const MAX_ENTRIES_PER_READ: u64 = TILE_WIDTH as u64;

pub(crate) const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("log_meta");
pub(crate) const ENTRIES: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("log_entries");
pub(crate) const HASHES: TableDefinition<'static, u64, &[u8; 32]> =
    TableDefinition::new("log_hashes");
pub(crate) const LEAF_INDEX: TableDefinition<'static, &[u8; 32], u64> =
    TableDefinition::new("log_leaf_index");
pub(crate) const SEARCH: MultimapTableDefinition<'static, &[u8; 32], u64> =
    MultimapTableDefinition::new("log_search");
/// `dsse` entries' proposed entries (with the envelope), by entry index.
pub(crate) const ATTESTATIONS: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("log_attestations_v1");
pub(crate) const CHECKPOINTS: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("log_checkpoints");

pub(crate) const META_FORMAT_VERSION: &str = "format_version";
pub(crate) const META_TREE_SIZE: &str = "tree_size";
pub(crate) const META_ORIGIN: &str = "origin";
pub(crate) const META_PUBLIC_KEY: &str = "public_key";

/// Bytes before the body in a `log_entries` value (the big-endian `integrated_time`).
const ENTRY_HEADER_BYTES: usize = 8;
/// Bytes before the note in a `log_checkpoints` value (the root hash).
const CHECKPOINT_HEADER_BYTES: usize = 32;

/// Who the log is: written once when the log is created, checked by the caller on every
/// start (a restart with another origin or key is the caller's decision, not the store's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMetadata {
    /// The log's origin: the first line of its checkpoints and its note key name.
    pub origin: String,
    /// The log's Ed25519 checkpoint public key.
    pub public_key: [u8; 32],
}

/// A committed entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The time the log accepted it, in Unix seconds (Rekor's `integratedTime`).
    pub integrated_time: i64,
    /// The canonical body: the exact bytes of the Merkle leaf.
    pub body: Vec<u8>,
}

/// Why a batch was refused. Nothing of the batch was written.
///
/// Every variant is a bug or a broken invariant upstream (the sequencer handed over a
/// batch that does not extend the stored tree), never a transient condition: retrying
/// the same batch fails the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractViolation {
    /// The log's origin and key were never stored: checkpoints cannot be checked.
    #[error("the log metadata (origin and key) must be initialized before the first commit")]
    MetadataMissing,
    /// The first entry is not at the current tree size.
    #[error("batch starts at entry {found}, the tree holds {expected} entries")]
    FirstIndex {
        /// The current tree size.
        expected: u64,
        /// The first entry's index.
        found: u64,
    },
    /// Entry indexes are not consecutive.
    #[error("entry {position} of the batch has index {found}, expected {expected}")]
    NonConsecutive {
        /// Position in the batch.
        position: usize,
        /// The index it should have.
        expected: u64,
        /// The index it has.
        found: u64,
    },
    /// The batch would grow the tree beyond the supported maximum.
    #[error("the batch would grow the tree beyond {max} entries")]
    TreeFull {
        /// The largest supported tree size.
        max: u64,
    },
    /// `first_stored_hash` is not `stored_hash_count(size before the batch)`.
    #[error("batch's first stored hash is {found}, the tree holds {expected} stored hashes")]
    FirstStoredHash {
        /// `stored_hash_count(size before the batch)`.
        expected: u64,
        /// The batch's `first_stored_hash`.
        found: u64,
    },
    /// The number of new stored hashes does not match the number of new entries.
    #[error("batch has {found} stored hashes, growing the tree to {new_size} adds {expected}")]
    StoredHashCount {
        /// The tree size after the batch.
        new_size: u64,
        /// `stored_hash_count(new) − stored_hash_count(old)`.
        expected: u64,
        /// The number in the batch.
        found: u64,
    },
    /// The checkpoint is not for the tree size after the batch.
    #[error("batch checkpoint is for size {found}, the tree after the batch has {expected}")]
    CheckpointSize {
        /// The tree size after the batch.
        expected: u64,
        /// The checkpoint's declared size.
        found: u64,
    },
    /// The checkpoint note does not open as a checkpoint of this log under its key.
    #[error("batch checkpoint does not verify with the log's key: {0}")]
    CheckpointNote(Box<CheckpointOpenError>),
    /// The note's text says another size or root than the batch declares.
    #[error(
        "batch checkpoint note is for size {note_size}, declared size {declared_size} (or the roots differ)"
    )]
    CheckpointNoteMismatch {
        /// The size in `SignedCheckpointNote::size`.
        declared_size: u64,
        /// The size in the note's text.
        note_size: u64,
    },
    /// An entry body is longer than the log stores.
    #[error("entry {index} body is {len} bytes, the limit is {max}")]
    BodyTooLarge {
        /// Entry index.
        index: u64,
        /// Body length.
        len: usize,
        /// [`MAX_ENTRY_BODY_BYTES`].
        max: usize,
    },
    /// An entry carries more search keys than allowed.
    #[error("entry {index} has {count} search keys, the limit is {max}")]
    TooManySearchKeys {
        /// Entry index.
        index: u64,
        /// Number of keys.
        count: usize,
        /// [`MAX_SEARCH_KEYS`].
        max: usize,
    },
    /// An entry's declared leaf hash is not the hash of its body.
    #[error("entry {index}: declared leaf hash is not the leaf hash of its body")]
    LeafHash {
        /// Entry index.
        index: u64,
    },
    /// A stored hash of the batch differs from the one the tree gives.
    #[error("stored hash {index} of the batch is not the tree's hash at that position")]
    StoredHash {
        /// Stored-hash index.
        index: u64,
    },
    /// The checkpoint's root is not the root of the tree after the batch.
    #[error("checkpoint root for size {size} is not the root of the stored tree at that size")]
    Root {
        /// The tree size.
        size: u64,
    },
    /// An entry's leaf hash is already in the log (the sequencer must deduplicate).
    #[error("entry {index} duplicates entry {existing} (same leaf hash)")]
    DuplicateLeaf {
        /// The new entry's index.
        index: u64,
        /// The entry already holding that leaf hash.
        existing: u64,
    },
    /// A different checkpoint is already stored for this size. Storing it would sign two
    /// roots (or two notes) for one size: a fork.
    #[error("a different checkpoint is already stored for size {size}; refusing to fork")]
    ConflictingCheckpoint {
        /// The tree size.
        size: u64,
    },
    /// The batch holds no entry and its checkpoint is already stored: nothing to commit.
    #[error("batch has no entries and the checkpoint for size {size} is already stored")]
    CheckpointAlreadyStored {
        /// The tree size.
        size: u64,
    },
}

/// Errors of the log store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the log store {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// redb's reason.
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// redb (or the I/O under it) failed.
    #[error("log store: {operation} failed: {source}")]
    Db {
        /// What the store was doing.
        operation: &'static str,
        /// redb's error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The batch breaks the store's contract; nothing was written.
    #[error("log store refused the batch: {0}")]
    Contract(#[from] ContractViolation),
    /// A stored value does not have the documented layout, or a record the invariants
    /// require is missing: the file was damaged or written by something else. Run fsck.
    #[error("log store is corrupt: {table} {key}: {problem}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The key, formatted.
        key: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The file was written in another format version.
    #[error(
        "log store format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedFormat {
        /// The version in the file.
        found: u64,
        /// [`FORMAT_VERSION`].
        supported: u64,
    },
    /// The metadata is already initialized with other values (it is write-once).
    #[error(
        "log metadata is already initialized with origin {stored_origin:?} and another key or origin; it cannot change"
    )]
    MetadataConflict {
        /// The origin in the store.
        stored_origin: String,
    },
    /// The metadata given to `init_metadata` cannot name a checkpoint key.
    #[error("invalid log metadata: {problem}")]
    InvalidMetadata {
        /// What is wrong.
        problem: String,
    },
    /// A stored hash at or beyond the committed tree was asked for.
    #[error("stored hash {index} is not committed (the tree holds {held} stored hashes)")]
    HashNotStored {
        /// The index asked for.
        index: u64,
        /// `stored_hash_count(tree size)`.
        held: u64,
    },
    /// An entry range longer than [`MAX_ENTRIES_PER_READ`] was asked for.
    #[error("entry range of {requested} entries is longer than the limit of {max}")]
    RangeTooLarge {
        /// The range length.
        requested: u64,
        /// [`MAX_ENTRIES_PER_READ`].
        max: u64,
    },
}

/// Maps any redb error into [`StoreError::Db`], naming the operation.
fn db_err<E: Into<redb::Error>>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    move |error| StoreError::Db {
        operation,
        source: Box::new(error.into()),
    }
}

/// The durable store of one transparency log.
///
/// # Durability contract
///
/// - **Atomic, durable commits.** [`commit`](LogStore::commit) applies the whole batch —
///   entries, stored hashes, leaf-hash and search indexes, checkpoint and tree size — in
///   one transaction that is on stable storage (fsynced) before it returns `Ok`. After a
///   crash the store reopens at the last commit that returned `Ok`, or at a later one whose
///   `commit` call had not returned yet; never at a partial batch.
/// - **Refused means untouched.** A [`StoreError::Contract`] error (and any error raised
///   before the transaction commits) leaves the store exactly as it was. A
///   [`StoreError::Db`] error *from the commit itself* (an fsync failure) leaves the
///   outcome unknown: the caller must not sign anything further, reopen the store and
///   read [`size`](LogStore::size) and [`latest_checkpoint`](LogStore::latest_checkpoint).
/// - **Append-only, never forked.** Entries, stored hashes and checkpoints are never
///   changed once committed. A commit is refused unless it extends the stored tree
///   exactly (first index = size, consecutive indexes, stored hashes that are the tree's
///   hashes, a checkpoint at the new size signed by the log key over the new root), and
///   a checkpoint is never replaced by different bytes for the same size.
/// - **Reads see committed state only.** Each read is one snapshot of committed data,
///   concurrent with the writer; [`HashReader::read_hashes`] refuses indexes at or
///   beyond `stored_hash_count(size)`, so proofs are only ever built from durable hashes.
///   Because everything is append-only, a value read once stays valid forever.
pub trait LogStore: HashReader<Error = StoreError> + Send + Sync {
    /// The log's origin and key, if initialized.
    fn metadata(&self) -> Result<Option<LogMetadata>, StoreError>;

    /// Writes the log's origin and key, once. Writing the same values again is a no-op;
    /// other values are refused with [`StoreError::MetadataConflict`].
    fn init_metadata(&self, metadata: &LogMetadata) -> Result<(), StoreError>;

    /// Makes a batch durable in one transaction (see the contract above).
    fn commit(&self, batch: &Batch) -> Result<(), StoreError>;

    /// The number of committed entries.
    fn size(&self) -> Result<u64, StoreError>;

    /// The checkpoint of the largest size, if any was committed.
    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpointNote>, StoreError>;

    /// The checkpoint committed for exactly this size, if any.
    fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpointNote>, StoreError>;

    /// The checkpoints of sizes in `sizes`, smallest first, at most `limit` of them.
    fn checkpoints(
        &self,
        sizes: Range<u64>,
        limit: usize,
    ) -> Result<Vec<SignedCheckpointNote>, StoreError>;

    /// The committed entry at `index`, or `None` at or beyond the tree size.
    fn entry(&self, index: u64) -> Result<Option<StoredEntry>, StoreError>;

    /// The committed entries in `indexes` (clipped to the tree size), in order; at most
    /// [`MAX_ENTRIES_PER_READ`] may be asked for at once.
    fn entries(&self, indexes: Range<u64>) -> Result<Vec<StoredEntry>, StoreError>;

    /// The index of the entry with this leaf hash (its Rekor v1 UUID), if any.
    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError>;

    /// Indexes of the entries found by a search key, oldest first, at most `limit`.
    fn search(&self, key: &[u8; 32], limit: usize) -> Result<Vec<u64>, StoreError>;

    /// The proposed entry (with its envelope) kept for the `dsse` entry at `index`, if
    /// any (see `AdmittedEntry::attestation`).
    fn attestation(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
}

/// The metadata with the checkpoint verifier built from it (metadata is write-once, so
/// it is built once).
#[derive(Debug)]
struct Identity {
    metadata: LogMetadata,
    verifier: Verifier,
}

impl Identity {
    fn new(metadata: LogMetadata) -> Result<Self, String> {
        let name = KeyName::new(metadata.origin.clone())
            .map_err(|e| format!("origin {:?} is not a note key name: {e}", metadata.origin))?;
        let verifier = Ed25519Verifier::new(name, &metadata.public_key)
            .map_err(|e| format!("public key is not an Ed25519 key: {e}"))?;
        Ok(Identity {
            metadata,
            verifier: verifier.into(),
        })
    }
}

/// [`LogStore`] on a redb file (see the module header for the format).
pub struct RedbLogStore {
    db: Database,
    path: PathBuf,
    identity: OnceLock<Identity>,
}

impl fmt::Debug for RedbLogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbLogStore")
            .field("path", &self.path)
            .field("metadata", &self.identity.get().map(|i| &i.metadata))
            .finish_non_exhaustive()
    }
}

impl RedbLogStore {
    /// Opens the store at `path`, creating the file and its tables if missing.
    ///
    /// The file is locked: a second open (another node, or fsck) fails until this store
    /// is dropped.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbLogStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let mut txn = db
            .begin_write()
            .map_err(db_err("begin the open transaction"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_err("set durability"))?;
        {
            // Opening a table in a write transaction creates it.
            txn.open_table(ENTRIES)
                .map_err(db_err("create log_entries"))?;
            txn.open_table(HASHES)
                .map_err(db_err("create log_hashes"))?;
            txn.open_table(LEAF_INDEX)
                .map_err(db_err("create log_leaf_index"))?;
            txn.open_multimap_table(SEARCH)
                .map_err(db_err("create log_search"))?;
            txn.open_table(CHECKPOINTS)
                .map_err(db_err("create log_checkpoints"))?;
            txn.open_table(ATTESTATIONS)
                .map_err(db_err("create log_attestations_v1"))?;
            let mut meta = txn.open_table(META).map_err(db_err("create log_meta"))?;
            let version = meta
                .get(META_FORMAT_VERSION)
                .map_err(db_err("read format version"))?
                .map(|v| decode_u64(v.value()))
                .transpose()
                .map_err(|problem| corrupt_meta(META_FORMAT_VERSION, problem))?;
            match version {
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                None => {
                    let size = meta.get(META_TREE_SIZE).map_err(db_err("read tree size"))?;
                    if size.is_some() {
                        return Err(corrupt_meta(
                            META_FORMAT_VERSION,
                            "missing while the tree size is present",
                        ));
                    }
                    drop(size);
                    meta.insert(META_FORMAT_VERSION, &FORMAT_VERSION.to_be_bytes()[..])
                        .map_err(db_err("write format version"))?;
                    meta.insert(META_TREE_SIZE, &0u64.to_be_bytes()[..])
                        .map_err(db_err("write tree size"))?;
                }
            }
        }
        txn.commit()
            .map_err(db_err("commit the open transaction"))?;
        let store = RedbLogStore {
            db,
            path,
            identity: OnceLock::new(),
        };
        if let Some(metadata) = store.metadata()? {
            let identity = Identity::new(metadata).map_err(|_| StoreError::Corrupt {
                table: "log_meta",
                key: "origin/public_key".to_owned(),
                problem: "not a valid Ed25519 note key name and public key",
            })?;
            // Freshly created: cannot already be set.
            let _ = store.identity.set(identity);
        }
        Ok(store)
    }

    /// The file the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db
            .begin_read()
            .map_err(db_err("begin a read transaction"))
    }

    /// Checks everything about a batch that needs no stored state: cheap to do before
    /// taking the write lock.
    fn check_batch_alone(&self, batch: &Batch) -> Result<(), ContractViolation> {
        let identity = self
            .identity
            .get()
            .ok_or(ContractViolation::MetadataMissing)?;
        let opened = checkpoint::open(
            &batch.checkpoint.note,
            &identity.metadata.origin,
            &identity.verifier,
        )
        .map_err(|e| ContractViolation::CheckpointNote(Box::new(e)))?;
        if opened.checkpoint.size() != batch.checkpoint.size
            || *opened.checkpoint.root_hash() != batch.checkpoint.root_hash
        {
            return Err(ContractViolation::CheckpointNoteMismatch {
                declared_size: batch.checkpoint.size,
                note_size: opened.checkpoint.size(),
            });
        }
        for (position, sequenced) in batch.entries.iter().enumerate() {
            let index = sequenced.index;
            if let Some(first) = batch.entries.first() {
                let expected = first.index.saturating_add(position as u64);
                if index != expected {
                    return Err(ContractViolation::NonConsecutive {
                        position,
                        expected,
                        found: index,
                    });
                }
            }
            let entry = &sequenced.entry;
            if entry.body.len() > MAX_ENTRY_BODY_BYTES {
                return Err(ContractViolation::BodyTooLarge {
                    index,
                    len: entry.body.len(),
                    max: MAX_ENTRY_BODY_BYTES,
                });
            }
            if entry.search_keys.len() > MAX_SEARCH_KEYS {
                return Err(ContractViolation::TooManySearchKeys {
                    index,
                    count: entry.search_keys.len(),
                    max: MAX_SEARCH_KEYS,
                });
            }
            // The leaf hash is the entry's identity (UUID, dedup key, Merkle leaf): one
            // wrong here would put a leaf in the tree that no body matches.
            if leaf_hash(&entry.body) != entry.leaf_hash {
                return Err(ContractViolation::LeafHash { index });
            }
        }
        Ok(())
    }
}

fn corrupt_meta(key: &str, problem: &'static str) -> StoreError {
    StoreError::Corrupt {
        table: "log_meta",
        key: key.to_owned(),
        problem,
    }
}

/// Decodes an 8-byte big-endian `u64` value.
pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64, &'static str> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| "value is not 8 bytes")
}

/// Splits a `log_entries` value into `(integrated_time, body)`.
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<(i64, &[u8]), &'static str> {
    let (time, body) = bytes
        .split_first_chunk::<ENTRY_HEADER_BYTES>()
        .ok_or("value is shorter than the 8-byte integrated time")?;
    Ok((i64::from_be_bytes(*time), body))
}

/// Splits a `log_checkpoints` value into `(root hash, note)`.
pub(crate) fn decode_checkpoint(bytes: &[u8]) -> Result<(Hash, &[u8]), &'static str> {
    let (root, note) = bytes
        .split_first_chunk::<CHECKPOINT_HEADER_BYTES>()
        .ok_or("value is shorter than the 32-byte root hash")?;
    Ok((*root, note))
}

fn encode_checkpoint(checkpoint: &SignedCheckpointNote) -> Vec<u8> {
    let mut value = Vec::with_capacity(CHECKPOINT_HEADER_BYTES + checkpoint.note.len());
    value.extend_from_slice(&checkpoint.root_hash);
    value.extend_from_slice(&checkpoint.note);
    value
}

fn read_tree_size(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<u64, StoreError> {
    let value = meta
        .get(META_TREE_SIZE)
        .map_err(db_err("read tree size"))?
        .ok_or_else(|| corrupt_meta(META_TREE_SIZE, "missing"))?;
    decode_u64(value.value()).map_err(|problem| corrupt_meta(META_TREE_SIZE, problem))
}

fn checkpoint_from(size: u64, bytes: &[u8]) -> Result<SignedCheckpointNote, StoreError> {
    let (root_hash, note) = decode_checkpoint(bytes).map_err(|problem| StoreError::Corrupt {
        table: "log_checkpoints",
        key: size.to_string(),
        problem,
    })?;
    Ok(SignedCheckpointNote {
        size,
        root_hash,
        note: note.to_vec(),
    })
}

fn entry_from(index: u64, bytes: &[u8]) -> Result<StoredEntry, StoreError> {
    let (integrated_time, body) = decode_entry(bytes).map_err(|problem| StoreError::Corrupt {
        table: "log_entries",
        key: index.to_string(),
        problem,
    })?;
    Ok(StoredEntry {
        integrated_time,
        body: body.to_vec(),
    })
}

/// Reads stored hashes from an open `log_hashes` table (of a read or write transaction).
struct TableHashes<'t, T> {
    table: &'t T,
    /// `stored_hash_count` of the committed tree: nothing at or beyond is served.
    held: u64,
}

impl<T: ReadableTable<u64, &'static [u8; 32]>> HashReader for TableHashes<'_, T> {
    type Error = StoreError;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        indexes
            .iter()
            .map(|&index| {
                if index >= self.held {
                    return Err(StoreError::HashNotStored {
                        index,
                        held: self.held,
                    });
                }
                let hash = self
                    .table
                    .get(index)
                    .map_err(db_err("read a stored hash"))?
                    .ok_or_else(|| StoreError::Corrupt {
                        table: "log_hashes",
                        key: index.to_string(),
                        problem: "missing below the tree size",
                    })?;
                Ok(*hash.value())
            })
            .collect()
    }
}

fn tree_error(error: TreeError<StoreError>) -> StoreError {
    match error {
        TreeError::Store(error) => error,
        // Sizes were checked against MAX_TREE_SIZE and the reader returns one hash per
        // index, so these mean the stored tree size itself is out of range.
        _ => corrupt_meta(META_TREE_SIZE, "not a valid tree size"),
    }
}

impl HashReader for RedbLogStore {
    type Error = StoreError;

    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StoreError> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(db_err("open log_meta"))?;
        let size = read_tree_size(&meta)?;
        let table = txn.open_table(HASHES).map_err(db_err("open log_hashes"))?;
        TableHashes {
            table: &table,
            held: stored_hash_count(size.min(MAX_TREE_SIZE)),
        }
        .read_hashes(indexes)
    }
}

impl LogStore for RedbLogStore {
    fn metadata(&self) -> Result<Option<LogMetadata>, StoreError> {
        if let Some(identity) = self.identity.get() {
            return Ok(Some(identity.metadata.clone()));
        }
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(db_err("open log_meta"))?;
        let origin = meta.get(META_ORIGIN).map_err(db_err("read origin"))?;
        let key = meta
            .get(META_PUBLIC_KEY)
            .map_err(db_err("read public key"))?;
        match (origin, key) {
            (None, None) => Ok(None),
            (Some(origin), Some(key)) => {
                let origin = std::str::from_utf8(origin.value())
                    .map_err(|_| corrupt_meta(META_ORIGIN, "not UTF-8"))?
                    .to_owned();
                let public_key = <[u8; 32]>::try_from(key.value())
                    .map_err(|_| corrupt_meta(META_PUBLIC_KEY, "not 32 bytes"))?;
                Ok(Some(LogMetadata { origin, public_key }))
            }
            (None, Some(_)) => Err(corrupt_meta(META_ORIGIN, "missing beside the public key")),
            (Some(_), None) => Err(corrupt_meta(META_PUBLIC_KEY, "missing beside the origin")),
        }
    }

    fn init_metadata(&self, metadata: &LogMetadata) -> Result<(), StoreError> {
        let identity = Identity::new(metadata.clone())
            .map_err(|problem| StoreError::InvalidMetadata { problem })?;
        let mut txn = self
            .db
            .begin_write()
            .map_err(db_err("begin the metadata transaction"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_err("set durability"))?;
        {
            let mut meta = txn.open_table(META).map_err(db_err("open log_meta"))?;
            let stored_origin = meta
                .get(META_ORIGIN)
                .map_err(db_err("read origin"))?
                .map(|v| v.value().to_vec());
            let stored_key = meta
                .get(META_PUBLIC_KEY)
                .map_err(db_err("read public key"))?
                .map(|v| v.value().to_vec());
            match (stored_origin, stored_key) {
                (None, None) => {
                    meta.insert(META_ORIGIN, metadata.origin.as_bytes())
                        .map_err(db_err("write origin"))?;
                    meta.insert(META_PUBLIC_KEY, &metadata.public_key[..])
                        .map_err(db_err("write public key"))?;
                }
                (Some(origin), Some(key))
                    if origin == metadata.origin.as_bytes() && key == metadata.public_key =>
                {
                    // Same values: nothing to write.
                }
                (origin, _) => {
                    return Err(StoreError::MetadataConflict {
                        stored_origin: String::from_utf8_lossy(&origin.unwrap_or_default())
                            .into_owned(),
                    });
                }
            }
        }
        txn.commit().map_err(db_err("commit the metadata"))?;
        // Already set only if it was stored with these same values.
        let _ = self.identity.set(identity);
        Ok(())
    }

    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        self.check_batch_alone(batch)?;
        let mut txn = self
            .db
            .begin_write()
            .map_err(db_err("begin the commit transaction"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_err("set durability"))?;
        {
            let mut meta = txn.open_table(META).map_err(db_err("open log_meta"))?;
            let old_size = read_tree_size(&meta)?;
            if old_size > MAX_TREE_SIZE {
                return Err(corrupt_meta(META_TREE_SIZE, "beyond the supported maximum"));
            }
            if let Some(first) = batch.entries.first()
                && first.index != old_size
            {
                return Err(ContractViolation::FirstIndex {
                    expected: old_size,
                    found: first.index,
                }
                .into());
            }
            let added = batch.entries.len() as u64;
            let new_size = old_size
                .checked_add(added)
                .filter(|&size| size <= MAX_TREE_SIZE)
                .ok_or(ContractViolation::TreeFull { max: MAX_TREE_SIZE })?;
            let first_hash = stored_hash_count(old_size);
            if batch.first_stored_hash != first_hash {
                return Err(ContractViolation::FirstStoredHash {
                    expected: first_hash,
                    found: batch.first_stored_hash,
                }
                .into());
            }
            let new_hashes = stored_hash_count(new_size) - first_hash;
            if batch.stored_hashes.len() as u64 != new_hashes {
                return Err(ContractViolation::StoredHashCount {
                    new_size,
                    expected: new_hashes,
                    found: batch.stored_hashes.len() as u64,
                }
                .into());
            }
            if batch.checkpoint.size != new_size {
                return Err(ContractViolation::CheckpointSize {
                    expected: new_size,
                    found: batch.checkpoint.size,
                }
                .into());
            }

            let mut checkpoints = txn
                .open_table(CHECKPOINTS)
                .map_err(db_err("open log_checkpoints"))?;
            let checkpoint_stored = match checkpoints
                .get(new_size)
                .map_err(db_err("read a checkpoint"))?
            {
                None => false,
                Some(stored) => {
                    let stored = checkpoint_from(new_size, stored.value())?;
                    if stored != batch.checkpoint {
                        return Err(
                            ContractViolation::ConflictingCheckpoint { size: new_size }.into()
                        );
                    }
                    if batch.entries.is_empty() {
                        return Err(
                            ContractViolation::CheckpointAlreadyStored { size: new_size }.into(),
                        );
                    }
                    true
                }
            };

            // The batch's hashes must be the tree's: rebuild them from the stored right
            // edge (at most 62 reads) and the batch's leaves, and compare, so that a
            // checkpoint is never stored over a root the stored tree does not have.
            let mut hashes = txn.open_table(HASHES).map_err(db_err("open log_hashes"))?;
            let mut frontier = Frontier::load(
                old_size,
                &TableHashes {
                    table: &hashes,
                    held: first_hash,
                },
            )
            .map_err(tree_error)?;
            let mut next = 0usize;
            let mut mismatch = None;
            for sequenced in &batch.entries {
                frontier
                    .append(sequenced.entry.leaf_hash, |hash| {
                        if mismatch.is_none() && batch.stored_hashes.get(next) != Some(&hash) {
                            mismatch = Some(first_hash + next as u64);
                        }
                        next += 1;
                    })
                    .map_err(|_| ContractViolation::TreeFull { max: MAX_TREE_SIZE })?;
            }
            if let Some(index) = mismatch {
                return Err(ContractViolation::StoredHash { index }.into());
            }
            if frontier.root() != batch.checkpoint.root_hash {
                return Err(ContractViolation::Root { size: new_size }.into());
            }

            // Writes. An early return drops the transaction, which aborts it.
            let mut entries = txn
                .open_table(ENTRIES)
                .map_err(db_err("open log_entries"))?;
            let mut leaf_index = txn
                .open_table(LEAF_INDEX)
                .map_err(db_err("open log_leaf_index"))?;
            let mut search = txn
                .open_multimap_table(SEARCH)
                .map_err(db_err("open log_search"))?;
            let mut attestations = txn
                .open_table(ATTESTATIONS)
                .map_err(db_err("open log_attestations_v1"))?;
            let mut value = Vec::new();
            for sequenced in &batch.entries {
                let index = sequenced.index;
                value.clear();
                value.extend_from_slice(&sequenced.integrated_time.to_be_bytes());
                value.extend_from_slice(&sequenced.entry.body);
                if entries
                    .insert(index, value.as_slice())
                    .map_err(db_err("write an entry"))?
                    .is_some()
                {
                    return Err(StoreError::Corrupt {
                        table: "log_entries",
                        key: index.to_string(),
                        problem: "present beyond the tree size",
                    });
                }
                if let Some(existing) = leaf_index
                    .insert(&sequenced.entry.leaf_hash, index)
                    .map_err(db_err("write the leaf-hash index"))?
                {
                    return Err(ContractViolation::DuplicateLeaf {
                        index,
                        existing: existing.value(),
                    }
                    .into());
                }
                for key in &sequenced.entry.search_keys {
                    search
                        .insert(key, index)
                        .map_err(db_err("write the search index"))?;
                }
                if let Some(attestation) = &sequenced.entry.attestation {
                    attestations
                        .insert(index, attestation.as_slice())
                        .map_err(db_err("write an attestation"))?;
                }
            }
            for (offset, hash) in batch.stored_hashes.iter().enumerate() {
                let index = first_hash + offset as u64;
                if hashes
                    .insert(index, hash)
                    .map_err(db_err("write a stored hash"))?
                    .is_some()
                {
                    return Err(StoreError::Corrupt {
                        table: "log_hashes",
                        key: index.to_string(),
                        problem: "present beyond the tree size",
                    });
                }
            }
            if !checkpoint_stored {
                checkpoints
                    .insert(new_size, encode_checkpoint(&batch.checkpoint).as_slice())
                    .map_err(db_err("write the checkpoint"))?;
            }
            meta.insert(META_TREE_SIZE, &new_size.to_be_bytes()[..])
                .map_err(db_err("write the tree size"))?;
        }
        txn.commit().map_err(db_err("commit the batch"))
    }

    fn size(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(db_err("open log_meta"))?;
        read_tree_size(&meta)
    }

    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpointNote>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn
            .open_table(CHECKPOINTS)
            .map_err(db_err("open log_checkpoints"))?;
        let Some((size, value)) = table.last().map_err(db_err("read the latest checkpoint"))?
        else {
            return Ok(None);
        };
        checkpoint_from(size.value(), value.value()).map(Some)
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpointNote>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn
            .open_table(CHECKPOINTS)
            .map_err(db_err("open log_checkpoints"))?;
        let Some(value) = table.get(size).map_err(db_err("read a checkpoint"))? else {
            return Ok(None);
        };
        checkpoint_from(size, value.value()).map(Some)
    }

    fn checkpoints(
        &self,
        sizes: Range<u64>,
        limit: usize,
    ) -> Result<Vec<SignedCheckpointNote>, StoreError> {
        if sizes.start >= sizes.end || limit == 0 {
            return Ok(Vec::new());
        }
        let txn = self.begin_read()?;
        let table = txn
            .open_table(CHECKPOINTS)
            .map_err(db_err("open log_checkpoints"))?;
        let mut out = Vec::new();
        for item in table
            .range(sizes)
            .map_err(db_err("read checkpoints"))?
            .take(limit)
        {
            let (size, value) = item.map_err(db_err("read checkpoints"))?;
            out.push(checkpoint_from(size.value(), value.value())?);
        }
        Ok(out)
    }

    fn entry(&self, index: u64) -> Result<Option<StoredEntry>, StoreError> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(db_err("open log_meta"))?;
        if index >= read_tree_size(&meta)? {
            return Ok(None);
        }
        let table = txn
            .open_table(ENTRIES)
            .map_err(db_err("open log_entries"))?;
        let value = table
            .get(index)
            .map_err(db_err("read an entry"))?
            .ok_or_else(|| StoreError::Corrupt {
                table: "log_entries",
                key: index.to_string(),
                problem: "missing below the tree size",
            })?;
        entry_from(index, value.value()).map(Some)
    }

    fn entries(&self, indexes: Range<u64>) -> Result<Vec<StoredEntry>, StoreError> {
        let requested = indexes.end.saturating_sub(indexes.start);
        if requested > MAX_ENTRIES_PER_READ {
            return Err(StoreError::RangeTooLarge {
                requested,
                max: MAX_ENTRIES_PER_READ,
            });
        }
        let txn = self.begin_read()?;
        let meta = txn.open_table(META).map_err(db_err("open log_meta"))?;
        let end = indexes.end.min(read_tree_size(&meta)?);
        if indexes.start >= end {
            return Ok(Vec::new());
        }
        let table = txn
            .open_table(ENTRIES)
            .map_err(db_err("open log_entries"))?;
        let mut out = Vec::with_capacity((end - indexes.start) as usize);
        let mut expected = indexes.start;
        for item in table
            .range(indexes.start..end)
            .map_err(db_err("read entries"))?
        {
            let (index, value) = item.map_err(db_err("read entries"))?;
            if index.value() != expected {
                break;
            }
            out.push(entry_from(expected, value.value())?);
            expected += 1;
        }
        // A gap below the tree size would silently shift every later entry.
        if expected != end {
            return Err(StoreError::Corrupt {
                table: "log_entries",
                key: expected.to_string(),
                problem: "missing below the tree size",
            });
        }
        Ok(out)
    }

    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn
            .open_table(LEAF_INDEX)
            .map_err(db_err("open log_leaf_index"))?;
        Ok(table
            .get(leaf_hash)
            .map_err(db_err("read the leaf-hash index"))?
            .map(|v| v.value()))
    }

    fn attestation(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn
            .open_table(ATTESTATIONS)
            .map_err(db_err("open log_attestations_v1"))?;
        Ok(table
            .get(index)
            .map_err(db_err("read an attestation"))?
            .map(|v| v.value().to_vec()))
    }

    fn search(&self, key: &[u8; 32], limit: usize) -> Result<Vec<u64>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn
            .open_multimap_table(SEARCH)
            .map_err(db_err("open log_search"))?;
        let mut out = Vec::new();
        for value in table
            .get(key)
            .map_err(db_err("read the search index"))?
            .take(limit)
        {
            out.push(value.map_err(db_err("read the search index"))?.value());
        }
        Ok(out)
    }
}
