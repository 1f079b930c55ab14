//! `fsck` of a log store: a read-only re-verification of everything the store holds
//! against the invariants written in [`super::store`]'s module header.
//!
//! It trusts nothing stored but the entry bodies and the metadata (origin and key):
//!
//! - every stored hash is recomputed — leaf hashes from the bodies
//!   (`leaf_hash(body)`, RFC 9162 §2.1.1), interior hashes with a [`Frontier`] rebuilt from
//!   the empty tree — and compared with the stored value; gaps and records beyond the
//!   tree are reported;
//! - the leaf-hash index must map each entry's leaf hash to that entry, and hold nothing
//!   else; search postings must point into the tree;
//! - every checkpoint must open as a checkpoint of the metadata origin under the metadata
//!   Ed25519 key (signature verified), be stored under its own size, have the root of the
//!   tree at that size (taken from the rebuild as it passes that size), and lie within
//!   the tree; the newest checkpoint must be at the tree size.
//!
//! It streams: one read transaction, ordered cursors over the entry, hash and checkpoint
//! tables advanced together, and an O(log n) frontier, so memory does not grow with the
//! log. It stops after [`MAX_PROBLEMS`] problems. The store must not be open elsewhere
//! (the node holds an exclusive lock on the file while it runs).
//!
//! Problems are listed in the order found. The rebuild takes the bodies as the truth, so
//! a changed body shows up as a leaf-hash mismatch *and* as mismatches of the hashes and
//! checkpoints above it: the first problem listed is the one to look at.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use provmesh_protocol::checkpoint::{self, Checkpoint, CheckpointOpenError};
use provmesh_protocol::merkle::{
    EMPTY_ROOT, Frontier, Hash, MAX_TREE_SIZE, leaf_hash, stored_hash_count,
};
use provmesh_protocol::note::{Ed25519Verifier, KeyName, Note, Verifier};
use redb::{
    AccessGuard, Key, MultimapTableDefinition, ReadOnlyDatabase, ReadOnlyMultimapTable,
    ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableError, Value,
};

use super::store::{
    CHECKPOINTS, ENTRIES, FORMAT_VERSION, HASHES, LEAF_INDEX, META, META_FORMAT_VERSION,
    META_ORIGIN, META_PUBLIC_KEY, META_TREE_SIZE, SEARCH, decode_checkpoint, decode_entry,
    decode_u64,
};

/// The most problems one run collects; it stops checking when it reaches them.
pub const MAX_PROBLEMS: usize = 100;

/// A progress line is written every this many entries.
const PROGRESS_EVERY: u64 = 1 << 18;

/// One inconsistency found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A table of the format does not exist.
    MissingTable {
        /// Table name.
        table: String,
    },
    /// A `log_meta` record is missing or malformed.
    Metadata {
        /// The `log_meta` key.
        key: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Entries or checkpoints exist but no origin and key were stored, so no checkpoint
    /// signature could be verified.
    MetadataMissing,
    /// An entry below the tree size is missing.
    EntryMissing {
        /// Entry index.
        index: u64,
    },
    /// An entry value does not have the documented layout.
    EntryCorrupt {
        /// Entry index.
        index: u64,
        /// What is wrong.
        detail: &'static str,
    },
    /// An entry exists at or beyond the tree size.
    EntryBeyondTree {
        /// Entry index.
        index: u64,
    },
    /// The stored leaf hash is not the leaf hash of the entry's body.
    LeafHashMismatch {
        /// Entry index.
        index: u64,
        /// Its stored-hash index.
        stored_index: u64,
    },
    /// A stored hash below `stored_hash_count(tree size)` is missing.
    HashMissing {
        /// Stored-hash index.
        index: u64,
    },
    /// A stored interior hash differs from the one recomputed from the bodies.
    HashMismatch {
        /// Stored-hash index.
        index: u64,
        /// Tree level of the subtree it is the hash of.
        level: u8,
    },
    /// A stored hash exists at or beyond `stored_hash_count(tree size)`.
    HashBeyondTree {
        /// Stored-hash index.
        index: u64,
    },
    /// Both an entry and its leaf hash are missing: the tree cannot be rebuilt past it,
    /// and nothing from this entry on was checked.
    TreeIncomplete {
        /// Entry index.
        index: u64,
    },
    /// The leaf-hash index has no record for an entry's leaf hash.
    LeafIndexMissing {
        /// Entry index.
        index: u64,
    },
    /// The leaf-hash index maps an entry's leaf hash to another entry (a duplicate entry
    /// or a wrong record).
    LeafIndexWrong {
        /// Entry index.
        index: u64,
        /// The index the record points to.
        points_to: u64,
    },
    /// A leaf-hash index record whose key is not the leaf hash of the entry it points to.
    LeafIndexStray {
        /// The record's key.
        leaf_hash: Hash,
        /// The index it points to.
        points_to: u64,
    },
    /// A search posting points at or beyond the tree size.
    SearchBeyondTree {
        /// The search key.
        key: [u8; 32],
        /// The entry index it points to.
        index: u64,
    },
    /// A checkpoint value does not have the documented layout.
    CheckpointCorrupt {
        /// The size it is stored under.
        size: u64,
        /// What is wrong.
        detail: &'static str,
    },
    /// A checkpoint does not open as a checkpoint of the log under its key.
    CheckpointInvalid {
        /// The size it is stored under.
        size: u64,
        /// Why.
        error: Box<CheckpointOpenError>,
    },
    /// A checkpoint is stored under another size than the one its text states.
    CheckpointSizeMismatch {
        /// The size it is stored under.
        stored_under: u64,
        /// The size in its text.
        note_size: u64,
    },
    /// The root stored beside a checkpoint note differs from the note's root.
    CheckpointStoredRootMismatch {
        /// The size it is stored under.
        size: u64,
    },
    /// A checkpoint's root is not the root of the tree rebuilt from the bodies.
    CheckpointRootMismatch {
        /// The checkpoint's size.
        size: u64,
        /// The root of the rebuilt tree at that size.
        tree_root: Hash,
        /// The root in the checkpoint.
        checkpoint_root: Hash,
    },
    /// A checkpoint is stored for a size beyond the tree.
    CheckpointBeyondTree {
        /// The checkpoint's size.
        size: u64,
        /// The tree size.
        tree_size: u64,
    },
    /// The newest checkpoint is not at the tree size.
    LatestCheckpoint {
        /// The newest checkpoint's size, if any.
        latest: Option<u64>,
        /// The tree size.
        tree_size: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingTable { table } => write!(f, "table {table} does not exist"),
            Problem::Metadata { key, detail } => write!(f, "metadata {key}: {detail}"),
            Problem::MetadataMissing => f.write_str(
                "the log holds data but no origin and key: checkpoint signatures cannot be verified",
            ),
            Problem::EntryMissing { index } => write!(f, "entry {index} is missing"),
            Problem::EntryCorrupt { index, detail } => write!(f, "entry {index}: {detail}"),
            Problem::EntryBeyondTree { index } => {
                write!(f, "entry {index} is stored beyond the tree size")
            }
            Problem::LeafHashMismatch {
                index,
                stored_index,
            } => write!(
                f,
                "entry {index}: stored leaf hash (stored hash {stored_index}) is not the hash of its body"
            ),
            Problem::HashMissing { index } => write!(f, "stored hash {index} is missing"),
            Problem::HashMismatch { index, level } => write!(
                f,
                "stored hash {index} (level {level}) differs from the hash recomputed from the entries"
            ),
            Problem::HashBeyondTree { index } => {
                write!(f, "stored hash {index} is stored beyond the tree size")
            }
            Problem::TreeIncomplete { index } => write!(
                f,
                "entry {index} and its leaf hash are both missing: the tree cannot be rebuilt, entries from {index} on were not checked"
            ),
            Problem::LeafIndexMissing { index } => {
                write!(f, "entry {index}: its leaf hash is not in the leaf-hash index")
            }
            Problem::LeafIndexWrong { index, points_to } => write!(
                f,
                "entry {index}: the leaf-hash index maps its leaf hash to entry {points_to} (duplicate entry or wrong record)"
            ),
            Problem::LeafIndexStray {
                leaf_hash,
                points_to,
            } => write!(
                f,
                "leaf-hash index record {} points to entry {points_to}, whose leaf hash it is not",
                hex::encode(leaf_hash)
            ),
            Problem::SearchBeyondTree { key, index } => write!(
                f,
                "search key {} points to entry {index}, beyond the tree",
                hex::encode(key)
            ),
            Problem::CheckpointCorrupt { size, detail } => {
                write!(f, "checkpoint {size}: {detail}")
            }
            Problem::CheckpointInvalid { size, error } => write!(f, "checkpoint {size}: {error}"),
            Problem::CheckpointSizeMismatch {
                stored_under,
                note_size,
            } => write!(
                f,
                "checkpoint stored under size {stored_under} is for size {note_size}"
            ),
            Problem::CheckpointStoredRootMismatch { size } => write!(
                f,
                "checkpoint {size}: the root stored beside the note differs from the note's"
            ),
            Problem::CheckpointRootMismatch {
                size,
                tree_root,
                checkpoint_root,
            } => write!(
                f,
                "checkpoint {size}: root {} is not the tree's root {} at that size",
                hex::encode(checkpoint_root),
                hex::encode(tree_root)
            ),
            Problem::CheckpointBeyondTree { size, tree_size } => write!(
                f,
                "checkpoint {size} is beyond the tree size {tree_size}"
            ),
            Problem::LatestCheckpoint {
                latest: Some(latest),
                tree_size,
            } => write!(
                f,
                "the newest checkpoint is for size {latest}, the tree size is {tree_size}"
            ),
            Problem::LatestCheckpoint {
                latest: None,
                tree_size,
            } => write!(f, "no checkpoint is stored for the tree of size {tree_size}"),
        }
    }
}

/// What fsck checked and found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsckReport {
    /// The store file.
    pub path: PathBuf,
    /// The log's origin, if stored.
    pub origin: Option<String>,
    /// The tree size in the metadata, if readable.
    pub tree_size: Option<u64>,
    /// Entry records seen.
    pub entries: u64,
    /// Stored-hash records seen.
    pub stored_hashes: u64,
    /// Leaf-hash index records.
    pub leaf_index_records: u64,
    /// Search postings (key, entry) seen.
    pub search_postings: u64,
    /// Checkpoint records seen.
    pub checkpoints: u64,
    /// The largest checkpoint size seen.
    pub latest_checkpoint: Option<u64>,
    /// Every problem found, in the order found (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Whether the check stopped at [`MAX_PROBLEMS`] before the end.
    pub stopped_early: bool,
}

impl FsckReport {
    fn new(path: &Path) -> Self {
        FsckReport {
            path: path.to_path_buf(),
            origin: None,
            tree_size: None,
            entries: 0,
            stored_hashes: 0,
            leaf_index_records: 0,
            search_postings: 0,
            checkpoints: 0,
            latest_checkpoint: None,
            problems: Vec::new(),
            stopped_early: false,
        }
    }

    /// Whether the store passed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for FsckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "log store {}", self.path.display())?;
        if let Some(origin) = &self.origin {
            write!(f, " (origin {origin})")?;
        }
        match self.tree_size {
            Some(size) => writeln!(f, ": tree size {size}")?,
            None => writeln!(f, ": tree size unreadable")?,
        }
        write!(
            f,
            "  {} entries, {} stored hashes, {} leaf-hash index records, {} search postings, {} checkpoints",
            self.entries,
            self.stored_hashes,
            self.leaf_index_records,
            self.search_postings,
            self.checkpoints
        )?;
        match self.latest_checkpoint {
            Some(latest) => writeln!(f, " (newest for size {latest})")?,
            None => writeln!(f)?,
        }
        if self.problems.is_empty() {
            return write!(f, "  OK: no problems found");
        }
        write!(f, "  {} problem(s)", self.problems.len())?;
        if self.stopped_early {
            write!(
                f,
                " (stopped at the limit of {MAX_PROBLEMS}; more may exist)"
            )?;
        }
        write!(f, "; the first may cause the others:")?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Why fsck did not produce a clean report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsckError {
    /// The store could not be opened read-only.
    #[error(
        "cannot open the log store {} read-only (is the node still running? stop it first): {source}",
        path.display()
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// redb's reason.
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// Reading the store failed.
    #[error("reading the log store failed while {operation}: {source}")]
    Read {
        /// What fsck was doing.
        operation: &'static str,
        /// redb's error.
        #[source]
        source: Box<redb::Error>,
    },
    /// Writing a progress line failed.
    #[error("writing progress failed: {0}")]
    Progress(#[source] std::io::Error),
    /// The check ran and found problems.
    #[error("{0}")]
    Problems(Box<FsckReport>),
}

/// Re-verifies the whole store at `path`, read-only, writing progress lines to
/// `progress` (pass `std::io::sink()` for none).
///
/// Returns the report when no problem was found, [`FsckError::Problems`] with the
/// report when any was, and other errors when the check could not run.
pub fn fsck<W: Write + ?Sized>(path: &Path, progress: &mut W) -> Result<FsckReport, FsckError> {
    let db = ReadOnlyDatabase::open(path).map_err(|source| FsckError::Open {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    // One snapshot for the whole run: every table is seen at the same commit.
    let txn = db
        .begin_read()
        .map_err(read("beginning the read transaction"))?;
    let mut checker = Checker {
        report: FsckReport::new(path),
        progress,
        identity: None,
        index_ok: 0,
    };
    match checker.run(&txn) {
        Ok(()) | Err(Stop::Limit) => {}
        Err(Stop::Error(error)) => return Err(error),
    }
    let report = checker.report;
    if report.is_ok() {
        Ok(report)
    } else {
        Err(FsckError::Problems(Box::new(report)))
    }
}

fn read<E: Into<redb::Error>>(operation: &'static str) -> impl FnOnce(E) -> FsckError {
    move |error| FsckError::Read {
        operation,
        source: Box::new(error.into()),
    }
}

/// Why a check ended before its end.
enum Stop {
    /// [`MAX_PROBLEMS`] were collected.
    Limit,
    /// The store could not be read.
    Error(FsckError),
}

impl From<FsckError> for Stop {
    fn from(error: FsckError) -> Self {
        Stop::Error(error)
    }
}

fn read_err<E: Into<redb::Error>>(operation: &'static str) -> impl FnOnce(E) -> Stop {
    move |error| Stop::Error(read(operation)(error))
}

/// An ordered cursor over a table keyed by `u64`, holding at most one record.
struct Cursor<V: Value + 'static> {
    iter: redb::Range<'static, u64, V>,
    head: Option<(u64, AccessGuard<'static, V>)>,
    operation: &'static str,
}

impl<V: Value + 'static> Cursor<V> {
    fn new(table: &ReadOnlyTable<u64, V>, operation: &'static str) -> Result<Self, Stop> {
        Ok(Cursor {
            iter: table.range(0u64..).map_err(read_err(operation))?,
            head: None,
            operation,
        })
    }

    fn fill(&mut self) -> Result<(), Stop> {
        if self.head.is_none()
            && let Some(item) = self.iter.next()
        {
            let (key, value) = item.map_err(read_err(self.operation))?;
            self.head = Some((key.value(), value));
        }
        Ok(())
    }

    /// The record at `key`, if it is the next one. Keys are unique and ascending, so when
    /// the caller asks for ascending keys a record that is not the next one is missing.
    fn take(&mut self, key: u64) -> Result<Option<AccessGuard<'static, V>>, Stop> {
        self.fill()?;
        if self.head.as_ref().is_some_and(|(k, _)| *k == key) {
            return Ok(self.head.take().map(|(_, v)| v));
        }
        Ok(None)
    }

    /// The next record, whatever its key.
    fn next(&mut self) -> Result<Option<(u64, AccessGuard<'static, V>)>, Stop> {
        self.fill()?;
        Ok(self.head.take())
    }
}

struct Checker<'w, W: Write + ?Sized> {
    report: FsckReport,
    progress: &'w mut W,
    /// The metadata origin and the verifier of its key, when both are valid.
    identity: Option<(String, Verifier)>,
    /// Entries whose leaf hash the leaf-hash index maps to themselves.
    index_ok: u64,
}

impl<W: Write + ?Sized> Checker<'_, W> {
    fn problem(&mut self, problem: Problem) -> Result<(), Stop> {
        self.report.problems.push(problem);
        if self.report.problems.len() >= MAX_PROBLEMS {
            self.report.stopped_early = true;
            return Err(Stop::Limit);
        }
        Ok(())
    }

    fn say(&mut self, line: fmt::Arguments<'_>) -> Result<(), Stop> {
        writeln!(self.progress, "{line}").map_err(|e| Stop::Error(FsckError::Progress(e)))
    }

    fn open<K: Key + 'static, V: Value + 'static>(
        &mut self,
        txn: &ReadTransaction,
        definition: TableDefinition<'_, K, V>,
    ) -> Result<Option<ReadOnlyTable<K, V>>, Stop> {
        match txn.open_table(definition) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(table)) => {
                self.problem(Problem::MissingTable { table })?;
                Ok(None)
            }
            Err(error) => Err(read_err("opening a table")(error)),
        }
    }

    fn open_multimap<K: Key + 'static, V: Key + 'static>(
        &mut self,
        txn: &ReadTransaction,
        definition: MultimapTableDefinition<'_, K, V>,
    ) -> Result<Option<ReadOnlyMultimapTable<K, V>>, Stop> {
        match txn.open_multimap_table(definition) {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableDoesNotExist(table)) => {
                self.problem(Problem::MissingTable { table })?;
                Ok(None)
            }
            Err(error) => Err(read_err("opening a table")(error)),
        }
    }

    fn run(&mut self, txn: &ReadTransaction) -> Result<(), Stop> {
        let path = self.report.path.display().to_string();
        self.say(format_args!("fsck {path}"))?;
        let meta = self.open(txn, META)?;
        let entries = self.open(txn, ENTRIES)?;
        let hashes = self.open(txn, HASHES)?;
        let leaf_index = self.open(txn, LEAF_INDEX)?;
        let search = self.open_multimap(txn, SEARCH)?;
        let checkpoints = self.open(txn, CHECKPOINTS)?;
        let (Some(meta), Some(entries), Some(hashes)) = (meta, entries, hashes) else {
            return Ok(());
        };
        let Some(size) = self.check_meta(&meta)? else {
            return Ok(());
        };
        let has_checkpoints = match &checkpoints {
            Some(table) => !table
                .is_empty()
                .map_err(read_err("reading log_checkpoints"))?,
            None => false,
        };
        if self.identity.is_none() && self.report.origin.is_none() && (size > 0 || has_checkpoints)
        {
            self.problem(Problem::MetadataMissing)?;
        }

        self.say(format_args!(
            "tree size {size}: checking entries, stored hashes and checkpoints"
        ))?;
        let complete = self.rebuild(
            size,
            &entries,
            &hashes,
            leaf_index.as_ref(),
            checkpoints.as_ref(),
        )?;
        if let Some(leaf_index) = &leaf_index
            && complete
        {
            self.say(format_args!("checking the leaf-hash index"))?;
            self.check_leaf_index(size, leaf_index, &entries, &hashes)?;
        }
        if let Some(search) = &search {
            self.say(format_args!("checking the search index"))?;
            self.check_search(size, search)?;
        }
        if complete && self.report.latest_checkpoint != Some(size) && (size > 0 || has_checkpoints)
        {
            self.problem(Problem::LatestCheckpoint {
                latest: self.report.latest_checkpoint,
                tree_size: size,
            })?;
        }
        self.say(format_args!("done"))
    }

    /// Checks `log_meta`; returns the tree size when it is usable.
    fn check_meta(
        &mut self,
        meta: &ReadOnlyTable<&'static str, &'static [u8]>,
    ) -> Result<Option<u64>, Stop> {
        let get = |key: &'static str| -> Result<Option<Vec<u8>>, Stop> {
            Ok(meta
                .get(key)
                .map_err(read_err("reading log_meta"))?
                .map(|v| v.value().to_vec()))
        };
        match get(META_FORMAT_VERSION)?.map(|v| decode_u64(&v)) {
            Some(Ok(FORMAT_VERSION)) => {}
            Some(Ok(found)) => {
                // Another format: nothing below can be interpreted.
                self.problem(Problem::Metadata {
                    key: META_FORMAT_VERSION,
                    detail: format!("version {found}, this build reads {FORMAT_VERSION}"),
                })?;
                return Ok(None);
            }
            Some(Err(detail)) => self.problem(Problem::Metadata {
                key: META_FORMAT_VERSION,
                detail: detail.to_owned(),
            })?,
            None => self.problem(Problem::Metadata {
                key: META_FORMAT_VERSION,
                detail: "missing".to_owned(),
            })?,
        }
        match (get(META_ORIGIN)?, get(META_PUBLIC_KEY)?) {
            (None, None) => {}
            (Some(origin), Some(key)) => self.set_identity(origin, key)?,
            (None, Some(_)) => self.problem(Problem::Metadata {
                key: META_ORIGIN,
                detail: "missing beside the public key".to_owned(),
            })?,
            (Some(_), None) => self.problem(Problem::Metadata {
                key: META_PUBLIC_KEY,
                detail: "missing beside the origin".to_owned(),
            })?,
        }
        let size = match get(META_TREE_SIZE)?.map(|v| decode_u64(&v)) {
            Some(Ok(size)) if size <= MAX_TREE_SIZE => size,
            Some(Ok(size)) => {
                self.problem(Problem::Metadata {
                    key: META_TREE_SIZE,
                    detail: format!("{size} is beyond the supported maximum"),
                })?;
                return Ok(None);
            }
            Some(Err(detail)) => {
                self.problem(Problem::Metadata {
                    key: META_TREE_SIZE,
                    detail: detail.to_owned(),
                })?;
                return Ok(None);
            }
            None => {
                self.problem(Problem::Metadata {
                    key: META_TREE_SIZE,
                    detail: "missing".to_owned(),
                })?;
                return Ok(None);
            }
        };
        self.report.tree_size = Some(size);
        Ok(Some(size))
    }

    fn set_identity(&mut self, origin: Vec<u8>, key: Vec<u8>) -> Result<(), Stop> {
        let origin = match String::from_utf8(origin) {
            Ok(origin) => origin,
            Err(_) => {
                return self.problem(Problem::Metadata {
                    key: META_ORIGIN,
                    detail: "not UTF-8".to_owned(),
                });
            }
        };
        self.report.origin = Some(origin.clone());
        let name = match KeyName::new(origin.clone()) {
            Ok(name) => name,
            Err(error) => {
                return self.problem(Problem::Metadata {
                    key: META_ORIGIN,
                    detail: format!("not a note key name: {error}"),
                });
            }
        };
        let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
            return self.problem(Problem::Metadata {
                key: META_PUBLIC_KEY,
                detail: format!("{} bytes, an Ed25519 key has 32", key.len()),
            });
        };
        match Ed25519Verifier::new(name, &key) {
            Ok(verifier) => self.identity = Some((origin, verifier.into())),
            Err(error) => self.problem(Problem::Metadata {
                key: META_PUBLIC_KEY,
                detail: format!("not an Ed25519 public key: {error}"),
            })?,
        }
        Ok(())
    }

    /// Rebuilds the tree from the bodies, comparing every stored hash and every
    /// checkpoint on the way. Returns whether the whole tree was rebuilt.
    fn rebuild(
        &mut self,
        size: u64,
        entries: &ReadOnlyTable<u64, &'static [u8]>,
        hashes: &ReadOnlyTable<u64, &'static [u8; 32]>,
        leaf_index: Option<&ReadOnlyTable<&'static [u8; 32], u64>>,
        checkpoints: Option<&ReadOnlyTable<u64, &'static [u8]>>,
    ) -> Result<bool, Stop> {
        let mut entry_cursor = Cursor::new(entries, "reading log_entries")?;
        let mut hash_cursor = Cursor::new(hashes, "reading log_hashes")?;
        let mut checkpoint_cursor = match checkpoints {
            Some(table) => Some(Cursor::new(table, "reading log_checkpoints")?),
            None => None,
        };
        let mut frontier = Frontier::new();
        // The hashes one append stores: the leaf and at most 62 subtrees it completes.
        let mut appended: Vec<Hash> = Vec::with_capacity(64);
        self.checkpoint_at(0, EMPTY_ROOT, checkpoint_cursor.as_mut())?;
        for index in 0..size {
            let leaf_position = stored_hash_count(index);
            let body_leaf = match entry_cursor.take(index)? {
                Some(value) => {
                    self.report.entries += 1;
                    match decode_entry(value.value()) {
                        Ok((_, body)) => Some(leaf_hash(body)),
                        Err(detail) => {
                            self.problem(Problem::EntryCorrupt { index, detail })?;
                            None
                        }
                    }
                }
                None => {
                    self.problem(Problem::EntryMissing { index })?;
                    None
                }
            };
            let stored_leaf = hash_cursor.take(leaf_position)?.map(|v| *v.value());
            if stored_leaf.is_some() {
                self.report.stored_hashes += 1;
            }
            let leaf = match (body_leaf, stored_leaf) {
                (Some(body_leaf), Some(stored_leaf)) => {
                    if body_leaf != stored_leaf {
                        self.problem(Problem::LeafHashMismatch {
                            index,
                            stored_index: leaf_position,
                        })?;
                    }
                    body_leaf
                }
                (Some(body_leaf), None) => {
                    self.problem(Problem::HashMissing {
                        index: leaf_position,
                    })?;
                    body_leaf
                }
                // No body to hash: go on with the stored leaf so one lost entry does not
                // hide the rest of the tree.
                (None, Some(stored_leaf)) => stored_leaf,
                (None, None) => {
                    self.problem(Problem::HashMissing {
                        index: leaf_position,
                    })?;
                    self.problem(Problem::TreeIncomplete { index })?;
                    self.finish_checkpoints(size, checkpoint_cursor.as_mut())?;
                    return Ok(false);
                }
            };
            if let (Some(body_leaf), Some(leaf_index)) = (body_leaf, leaf_index) {
                let points_to = leaf_index
                    .get(&body_leaf)
                    .map_err(read_err("reading log_leaf_index"))?
                    .map(|v| v.value());
                match points_to {
                    Some(points_to) if points_to == index => self.index_ok += 1,
                    Some(points_to) => {
                        self.problem(Problem::LeafIndexWrong { index, points_to })?;
                    }
                    None => self.problem(Problem::LeafIndexMissing { index })?,
                }
            }
            appended.clear();
            // Cannot fail: size <= MAX_TREE_SIZE was checked.
            if frontier.append(leaf, |hash| appended.push(hash)).is_err() {
                return Ok(false);
            }
            // appended[0] is the leaf, checked above; appended[level] closes a subtree
            // of 2^level leaves and is stored right after the leaf (stored.rs layout).
            for (level, expected) in appended.iter().enumerate().skip(1) {
                let stored_index = leaf_position + level as u64;
                match hash_cursor.take(stored_index)? {
                    Some(stored) => {
                        self.report.stored_hashes += 1;
                        if stored.value() != expected {
                            self.problem(Problem::HashMismatch {
                                index: stored_index,
                                level: level as u8,
                            })?;
                        }
                    }
                    None => self.problem(Problem::HashMissing {
                        index: stored_index,
                    })?,
                }
            }
            self.checkpoint_at(frontier.size(), frontier.root(), checkpoint_cursor.as_mut())?;
            if (index + 1) % PROGRESS_EVERY == 0 {
                self.say(format_args!("  {} / {size} entries", index + 1))?;
            }
        }
        // Whatever is left lies beyond the tree.
        while let Some((index, _)) = entry_cursor.next()? {
            self.report.entries += 1;
            self.problem(Problem::EntryBeyondTree { index })?;
        }
        while let Some((index, _)) = hash_cursor.next()? {
            self.report.stored_hashes += 1;
            self.problem(Problem::HashBeyondTree { index })?;
        }
        self.finish_checkpoints(size, checkpoint_cursor.as_mut())?;
        Ok(true)
    }

    /// Checks the checkpoint stored for `size`, if it is the cursor's next record.
    fn checkpoint_at(
        &mut self,
        size: u64,
        tree_root: Hash,
        cursor: Option<&mut Cursor<&'static [u8]>>,
    ) -> Result<(), Stop> {
        if let Some(cursor) = cursor
            && let Some(value) = cursor.take(size)?
        {
            self.check_checkpoint(size, value.value(), Some(tree_root))?;
        }
        Ok(())
    }

    /// Checks the checkpoints the rebuild did not reach: those beyond the tree, or all
    /// remaining ones when the rebuild stopped (their roots then go unchecked).
    fn finish_checkpoints(
        &mut self,
        tree_size: u64,
        cursor: Option<&mut Cursor<&'static [u8]>>,
    ) -> Result<(), Stop> {
        let Some(cursor) = cursor else {
            return Ok(());
        };
        while let Some((size, value)) = cursor.next()? {
            self.check_checkpoint(size, value.value(), None)?;
            if size > tree_size {
                self.problem(Problem::CheckpointBeyondTree { size, tree_size })?;
            }
        }
        Ok(())
    }

    fn check_checkpoint(
        &mut self,
        size: u64,
        value: &[u8],
        tree_root: Option<Hash>,
    ) -> Result<(), Stop> {
        self.report.checkpoints += 1;
        self.report.latest_checkpoint = Some(size);
        let (stored_root, note) = match decode_checkpoint(value) {
            Ok(parts) => parts,
            Err(detail) => return self.problem(Problem::CheckpointCorrupt { size, detail }),
        };
        let opened = match &self.identity {
            Some((origin, verifier)) => {
                checkpoint::open(note, origin, verifier).map(|signed| signed.checkpoint)
            }
            // No key to verify with (reported once already): at least parse it.
            None => Note::parse(note)
                .map_err(CheckpointOpenError::from)
                .and_then(|note| Checkpoint::from_note(&note).map_err(CheckpointOpenError::from)),
        };
        let checkpoint = match opened {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                return self.problem(Problem::CheckpointInvalid {
                    size,
                    error: Box::new(error),
                });
            }
        };
        if checkpoint.size() != size {
            self.problem(Problem::CheckpointSizeMismatch {
                stored_under: size,
                note_size: checkpoint.size(),
            })?;
        }
        if *checkpoint.root_hash() != stored_root {
            self.problem(Problem::CheckpointStoredRootMismatch { size })?;
        }
        if let Some(tree_root) = tree_root
            && *checkpoint.root_hash() != tree_root
        {
            self.problem(Problem::CheckpointRootMismatch {
                size,
                tree_root,
                checkpoint_root: *checkpoint.root_hash(),
            })?;
        }
        Ok(())
    }

    /// The rebuild confirmed `index_ok` records (one per distinct leaf hash, each mapping
    /// to its own entry). Any further record is a stray; find them only when some exist.
    fn check_leaf_index(
        &mut self,
        size: u64,
        leaf_index: &ReadOnlyTable<&'static [u8; 32], u64>,
        entries: &ReadOnlyTable<u64, &'static [u8]>,
        hashes: &ReadOnlyTable<u64, &'static [u8; 32]>,
    ) -> Result<(), Stop> {
        let records = leaf_index
            .len()
            .map_err(read_err("reading log_leaf_index"))?;
        self.report.leaf_index_records = records;
        if records == self.index_ok {
            return Ok(());
        }
        for item in leaf_index
            .iter()
            .map_err(read_err("reading log_leaf_index"))?
        {
            let (key, value) = item.map_err(read_err("reading log_leaf_index"))?;
            let (key, points_to) = (*key.value(), value.value());
            if !self.leaf_of(points_to, size, entries, hashes, &key)? {
                self.problem(Problem::LeafIndexStray {
                    leaf_hash: key,
                    points_to,
                })?;
            }
        }
        Ok(())
    }

    /// Whether `leaf` is the leaf hash of entry `index` (by its stored leaf hash, or, when
    /// that differs, by its body).
    fn leaf_of(
        &mut self,
        index: u64,
        size: u64,
        entries: &ReadOnlyTable<u64, &'static [u8]>,
        hashes: &ReadOnlyTable<u64, &'static [u8; 32]>,
        leaf: &Hash,
    ) -> Result<bool, Stop> {
        if index >= size {
            return Ok(false);
        }
        let stored = hashes
            .get(stored_hash_count(index))
            .map_err(read_err("reading log_hashes"))?;
        if stored.is_some_and(|v| v.value() == leaf) {
            return Ok(true);
        }
        let entry = entries
            .get(index)
            .map_err(read_err("reading log_entries"))?;
        Ok(entry
            .as_ref()
            .and_then(|v| decode_entry(v.value()).ok())
            .is_some_and(|(_, body)| leaf_hash(body) == *leaf))
    }

    fn check_search(
        &mut self,
        size: u64,
        search: &ReadOnlyMultimapTable<&'static [u8; 32], u64>,
    ) -> Result<(), Stop> {
        for item in search.iter().map_err(read_err("reading log_search"))? {
            let (key, values) = item.map_err(read_err("reading log_search"))?;
            let key = *key.value();
            for value in values {
                let index = value.map_err(read_err("reading log_search"))?.value();
                self.report.search_postings += 1;
                if index >= size {
                    self.problem(Problem::SearchBeyondTree { key, index })?;
                }
            }
        }
        Ok(())
    }
}
