//! The sequencer: the state machine that turns admitted entries into durable batches and
//! signed checkpoints, for one domain log.
//!
//! # What it decides
//! - **Order.** Each admitted entry gets the next index the moment it is submitted; its
//!   `integratedTime` is the submission time.
//! - **Batching (group commit).** Entries are grouped into a batch that closes as soon as
//!   the store is idle (no batch is being written), when it holds
//!   [`SequencerConfig::max_batch_entries`], or when its oldest entry has waited
//!   [`SequencerConfig::max_batch_delay`], whichever comes first. Closing a batch appends
//!   its leaves to the tree, signs a checkpoint for the new size and asks for **one**
//!   durable write of everything ([`Batch`]). Batches therefore grow with the load by
//!   themselves: a lone entry waits for one write, and under load each write carries
//!   what arrived during the previous one. (Tessera batches by size and time alone — 256
//!   entries or 250 ms — because each write to object storage costs; with a local fsync,
//!   waiting out the delay only adds latency: measured with 64 closed-loop writers, the
//!   time rule alone held the log to 247 appends/s at a 258 ms median.) Several batches
//!   may be in flight; the driver writes them in order.
//! - **Durability before anything leaves.** An entry's acknowledgement
//!   ([`SequencerOutput::Integrated`]) and the new checkpoint
//!   ([`SequencerOutput::Published`]) are released only after the batch is acknowledged
//!   durable ([`Outbox`] orders this). A failed write halts the log: every answer that
//!   depended on it becomes a rejection and nothing more is signed until restart.
//! - **No duplicate leaves.** An entry whose canonical body is already in the log, or
//!   in a batch not yet durable, gets [`SequencerOutput::Duplicate`] with the existing
//!   index — released only once that entry is durable.
//! - **Back-pressure.** At most [`SequencerConfig::max_pending_entries`] entries may be
//!   waiting (open batch plus batches in flight); beyond that a submission is rejected
//!   at once as [`Rejection::Overloaded`] — never queued without bound.
//! - **One root per size, across crashes and restores.** The sequencer signs a size
//!   only when it closes a batch that grows the tree, so sizes strictly increase within a
//!   run; the store writes a batch and its checkpoint atomically, so after a crash the
//!   tree on disk is exactly the tree of the newest durable checkpoint and nothing signed
//!   but not durable ever left the process. A log restored from a backup may be behind
//!   what it published before: [`Sequencer::recover`] takes the newest checkpoint the
//!   mesh (or the operator) holds for the origin and the sequencer refuses to sign until
//!   its own tree contains that checkpoint's tree ([`Halt::BehindPublished`],
//!   [`Halt::ForkedFromPublished`]).
//!
//! The driver owns the store and the clock: it calls [`Sequencer::submit`] for each
//! admitted entry, [`StateMachine::handle_timeout`] when [`StateMachine::poll_timeout`]
//! says, performs each [`SequencerOutput::Persist`] and reports the result with
//! [`SequencerInput`], and delivers every other output.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::{AdmittedEntry, Batch, SequencedEntry, SignedCheckpointNote};
use crate::checkpoint::{self, Checkpoint};
use crate::machine::{AckError, Effect, Outbox, PersistId, StateMachine, Timestamp};
use crate::merkle::{Frontier, Hash, HashReader, TreeError, stored_hash_count, tree_hash};
use crate::note::{Ed25519Signer, NoteSigner, Verifier};

/// Tunables of the sequencer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencerConfig {
    /// A batch closes as soon as it holds this many entries.
    pub max_batch_entries: usize,
    /// A batch closes at the latest this long after its first entry arrived.
    pub max_batch_delay: Duration,
    /// The most entries that may wait for durability at once; more are rejected.
    pub max_pending_entries: usize,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        SequencerConfig {
            max_batch_entries: 256,
            max_batch_delay: Duration::from_millis(250),
            max_pending_entries: 16_384,
        }
    }
}

/// The driver's name for one submission, echoed in the answer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// Looks up whether an entry is already durable in the log.
///
/// # Contract
/// The answer must reflect every batch the sequencer has been told is durable
/// ([`SequencerInput::Persisted`]): the driver reads the store in the same task that
/// reports persistence, so that this lookup and the sequencer's own set of not yet
/// durable entries together cover every entry ever sequenced.
pub trait EntryLookup {
    /// Why the lookup could not answer.
    type Error: std::fmt::Display;
    /// The index of the durable entry with this leaf hash, if any.
    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, Self::Error>;
}

/// Results of persistence the driver reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequencerInput {
    /// The batch of this persist request is durable.
    Persisted(PersistId),
    /// The batch of this persist request could not be written.
    PersistFailed(PersistId),
}

/// What the sequencer asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequencerOutput {
    /// Write `batch` durably and atomically, in the order requested, then report it.
    Persist {
        /// The id to report with [`SequencerInput`].
        id: PersistId,
        /// Everything to write in one transaction.
        batch: Batch,
    },
    /// A newer checkpoint is durable: publish it.
    Published(Arc<SignedCheckpointNote>),
    /// The entry is durable at `index`, covered by `checkpoint`.
    Integrated {
        /// The submission.
        ticket: Ticket,
        /// Its index in the log.
        index: u64,
        /// Its `integratedTime`, Unix seconds.
        integrated_time: i64,
        /// The durable checkpoint of the batch that holds it.
        checkpoint: Arc<SignedCheckpointNote>,
    },
    /// The same canonical body is already durable at `index`; nothing was added.
    Duplicate {
        /// The submission.
        ticket: Ticket,
        /// The index of the existing entry.
        index: u64,
    },
    /// The submission was not sequenced.
    Rejected {
        /// The submission.
        ticket: Ticket,
        /// Why.
        reason: Rejection,
    },
}

/// Why a submission was not sequenced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Too many entries are waiting for durability; retry later.
    #[error("the log is overloaded: {pending} entries are waiting to be written")]
    Overloaded {
        /// Entries waiting.
        pending: usize,
    },
    /// The log does not sign any more (see [`Halt`]).
    #[error("the log is halted: {0}")]
    Halted(Halt),
    /// The store could not say whether the entry is a duplicate.
    #[error("the log store could not be read: {0}")]
    StoreUnavailable(String),
    /// The tree is full.
    #[error("the log is full")]
    LogFull,
}

/// Why a log refuses to sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Halt {
    /// A batch could not be written; the process must restart from the store.
    #[error("a batch could not be written to the store; restart the node")]
    StorageFailed,
    /// The log once published a larger tree than it holds (restored from an old backup).
    #[error(
        "the log holds {local} entries but checkpoint {published} was published for this origin; \
         restore the missing entries before the log signs again (docs/operations.md)"
    )]
    BehindPublished {
        /// Entries held.
        local: u64,
        /// Size of the published checkpoint.
        published: u64,
    },
    /// The local tree differs from a published checkpoint: signing now would fork the log.
    #[error(
        "the local tree's root at size {size} differs from the published checkpoint; \
         this store is not the log's history and must not sign"
    )]
    ForkedFromPublished {
        /// The size where the roots differ.
        size: u64,
    },
}

/// Why [`Sequencer::recover`] refused the stored state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError<E> {
    /// The store could not be read.
    #[error("reading the stored tree: {0}")]
    Tree(TreeError<E>),
    /// The stored checkpoint is not a valid checkpoint of this log.
    #[error("stored checkpoint is invalid: {0}")]
    StoredCheckpoint(String),
    /// The stored checkpoint does not describe the stored tree.
    #[error("stored checkpoint is for size {checkpoint} but the store holds {stored} entries")]
    CheckpointSizeMismatch {
        /// Size in the checkpoint.
        checkpoint: u64,
        /// Entries in the store.
        stored: u64,
    },
    /// The stored checkpoint's root is not the stored tree's root.
    #[error("stored checkpoint root does not match the stored tree at size {size}")]
    CheckpointRootMismatch {
        /// The size.
        size: u64,
    },
    /// The store holds entries but no checkpoint (the store broke its contract).
    #[error("the store holds {stored} entries but no checkpoint")]
    MissingCheckpoint {
        /// Entries in the store.
        stored: u64,
    },
    /// The published checkpoint given for the restore check is not valid for this log.
    #[error("published checkpoint is invalid for this log: {0}")]
    PublishedCheckpoint(String),
}

/// The state a sequencer resumes from, read from the store.
#[derive(Debug, Clone)]
pub struct StoredState {
    /// Entries in the store.
    pub size: u64,
    /// The newest durable checkpoint, if any.
    pub latest_checkpoint: Option<SignedCheckpointNote>,
}

/// The open batch: entries with their indexes, and duplicates of them waiting for it.
#[derive(Debug, Default)]
struct OpenBatch {
    opened_at: Option<Timestamp>,
    entries: Vec<(Ticket, SequencedEntry)>,
    duplicates: Vec<(Ticket, u64)>,
}

/// The sequencer of one log. See the module documentation.
pub struct Sequencer {
    config: SequencerConfig,
    signer: Ed25519Signer,
    origin: String,
    /// The tree including every closed batch (durable or in flight).
    frontier: Frontier,
    open: OpenBatch,
    /// Leaf hash → index of every entry not yet known durable (open or in flight).
    not_durable: HashMap<Hash, u64>,
    /// Leaf hashes of each batch in flight, oldest first.
    in_flight: VecDeque<(PersistId, Vec<Hash>)>,
    /// Entries in batches in flight.
    in_flight_entries: usize,
    outbox: Outbox<Batch, SequencerOutput>,
    /// Outputs that depend on no write (rejections).
    immediate: VecDeque<SequencerOutput>,
    halted: Option<Halt>,
    /// The newest checkpoint known durable.
    published: Option<Arc<SignedCheckpointNote>>,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("origin", &self.origin)
            .field("size", &self.frontier.size())
            .field("open", &self.open.entries.len())
            .field("in_flight_entries", &self.in_flight_entries)
            .field("halted", &self.halted)
            .finish_non_exhaustive()
    }
}

impl Sequencer {
    /// Resumes the log from the store.
    ///
    /// Checks that the stored checkpoint is this log's (origin and key) and describes the
    /// stored tree exactly. If the store holds no checkpoint yet (a new log), the first
    /// output is the write of a signed checkpoint for the empty tree.
    ///
    /// `published` is the newest checkpoint the mesh or the operator holds for this
    /// origin, if known. It must carry this log's valid signature. If the stored tree
    /// does not contain it, the sequencer starts halted and signs nothing.
    pub fn recover<R: HashReader>(
        config: SequencerConfig,
        signer: Ed25519Signer,
        stored: StoredState,
        reader: &R,
        published: Option<&[u8]>,
    ) -> Result<Sequencer, RecoverError<R::Error>> {
        let verifier = Verifier::Ed25519(signer.verifier());
        let origin = signer.name().as_str().to_owned();
        let frontier = Frontier::load(stored.size, reader).map_err(RecoverError::Tree)?;
        let latest = match stored.latest_checkpoint {
            Some(note) => {
                let opened = checkpoint::open(&note.note, &origin, &verifier)
                    .map_err(|e| RecoverError::StoredCheckpoint(e.to_string()))?;
                let checkpoint = &opened.checkpoint;
                if checkpoint.size() != stored.size || note.size != stored.size {
                    return Err(RecoverError::CheckpointSizeMismatch {
                        checkpoint: checkpoint.size(),
                        stored: stored.size,
                    });
                }
                if *checkpoint.root_hash() != frontier.root() || note.root_hash != frontier.root() {
                    return Err(RecoverError::CheckpointRootMismatch { size: stored.size });
                }
                Some(Arc::new(note))
            }
            None if stored.size != 0 => {
                return Err(RecoverError::MissingCheckpoint {
                    stored: stored.size,
                });
            }
            None => None,
        };

        let mut halted = None;
        if let Some(published) = published {
            let opened = checkpoint::open(published, &origin, &verifier)
                .map_err(|e| RecoverError::PublishedCheckpoint(e.to_string()))?;
            let size = opened.checkpoint.size();
            if size > stored.size {
                halted = Some(Halt::BehindPublished {
                    local: stored.size,
                    published: size,
                });
            } else {
                let root = tree_hash(size, reader).map_err(RecoverError::Tree)?;
                if root != *opened.checkpoint.root_hash() {
                    halted = Some(Halt::ForkedFromPublished { size });
                }
            }
        }

        let mut sequencer = Sequencer {
            config,
            signer,
            origin,
            frontier,
            open: OpenBatch::default(),
            not_durable: HashMap::new(),
            in_flight: VecDeque::new(),
            in_flight_entries: 0,
            outbox: Outbox::new(),
            immediate: VecDeque::new(),
            halted,
            published: latest,
        };
        if sequencer.published.is_none() && sequencer.halted.is_none() {
            // A new log publishes the empty tree, so that witnesses and mirrors can
            // follow it from size 0.
            sequencer.close_batch();
        }
        Ok(sequencer)
    }

    /// The log's origin (its checkpoint key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The newest checkpoint known durable.
    pub fn published(&self) -> Option<&Arc<SignedCheckpointNote>> {
        self.published.as_ref()
    }

    /// Why the log refuses to sign, if it does.
    pub fn halted(&self) -> Option<&Halt> {
        self.halted.as_ref()
    }

    /// Entries submitted and not yet durable.
    pub fn pending_entries(&self) -> usize {
        self.open.entries.len() + self.in_flight_entries
    }

    /// The tree size once every closed batch is durable.
    pub fn sequenced_size(&self) -> u64 {
        self.frontier.size()
    }

    /// Submits an admitted entry observed at `now`. The answer comes out of
    /// [`StateMachine::poll_output`] as `Integrated`, `Duplicate` or `Rejected`.
    pub fn submit<L: EntryLookup>(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        entry: AdmittedEntry,
        lookup: &L,
    ) {
        if let Some(halt) = &self.halted {
            self.reject(ticket, Rejection::Halted(halt.clone()));
            return;
        }
        if let Some(&index) = self.not_durable.get(&entry.leaf_hash) {
            // Answer once the original is durable: an open-batch original waits for its
            // batch, one in flight for the writes already requested.
            if self.open_contains(index) {
                self.open.duplicates.push((ticket, index));
            } else {
                self.outbox
                    .release_after_persisted(SequencerOutput::Duplicate { ticket, index });
            }
            return;
        }
        match lookup.index_of(&entry.leaf_hash) {
            Ok(Some(index)) => {
                self.immediate
                    .push_back(SequencerOutput::Duplicate { ticket, index });
                return;
            }
            Ok(None) => {}
            Err(error) => {
                self.reject(ticket, Rejection::StoreUnavailable(error.to_string()));
                return;
            }
        }
        let pending = self.pending_entries();
        if pending >= self.config.max_pending_entries {
            self.reject(ticket, Rejection::Overloaded { pending });
            return;
        }
        let index = self.frontier.size() + self.open.entries.len() as u64;
        if index >= crate::merkle::MAX_TREE_SIZE {
            self.reject(ticket, Rejection::LogFull);
            return;
        }
        let integrated_time = i64::try_from(now.as_unix_seconds()).unwrap_or(i64::MAX);
        self.not_durable.insert(entry.leaf_hash, index);
        self.open.opened_at.get_or_insert(now);
        self.open.entries.push((
            ticket,
            SequencedEntry {
                index,
                integrated_time,
                entry,
            },
        ));
        // Group commit: a batch closes at once when the store is idle, so a lone entry
        // waits for one write, not for the delay; while a write is in flight, entries
        // gather for the next one until it completes, the batch is full or it is due.
        if self.open.entries.len() >= self.config.max_batch_entries || self.in_flight.is_empty() {
            self.close_batch();
        }
    }

    /// Closes the open batch now, whatever its size or age: the driver calls this when it
    /// stops taking submissions, so that every entry already accepted is answered.
    pub fn flush(&mut self) {
        if !self.open.entries.is_empty() && self.halted.is_none() {
            self.close_batch();
        }
    }

    fn open_contains(&self, index: u64) -> bool {
        index >= self.frontier.size()
    }

    fn reject(&mut self, ticket: Ticket, reason: Rejection) {
        self.immediate
            .push_back(SequencerOutput::Rejected { ticket, reason });
    }

    /// Closes the open batch: grows the tree, signs the new checkpoint and requests the
    /// write. With an empty batch this signs the current size (used once, for a new log).
    fn close_batch(&mut self) {
        let open = std::mem::take(&mut self.open);
        let old_size = self.frontier.size();
        let mut stored_hashes = Vec::with_capacity(open.entries.len() * 2);
        let mut frontier = self.frontier.clone();
        for (_, sequenced) in &open.entries {
            if frontier
                .append(sequenced.entry.leaf_hash, |hash| stored_hashes.push(hash))
                .is_err()
            {
                // Unreachable: submit refuses indexes at MAX_TREE_SIZE.
                self.fail_open_batch(open, Rejection::LogFull);
                return;
            }
        }
        let size = frontier.size();
        let root = frontier.root();
        let note = match Checkpoint::new(self.origin.clone(), size, root)
            .map_err(|e| e.to_string())
            .and_then(|body| {
                body.sign(&[&self.signer as &dyn NoteSigner])
                    .map_err(|e| e.to_string())
            }) {
            Ok(note) => note,
            Err(_) => {
                // Signing an in-memory checkpoint with a valid key cannot fail; if it
                // ever does, nothing was sent and the log must stop signing.
                self.halt(Halt::StorageFailed);
                self.fail_open_batch(open, Rejection::Halted(Halt::StorageFailed));
                return;
            }
        };
        self.frontier = frontier;
        let checkpoint = Arc::new(SignedCheckpointNote {
            size,
            root_hash: root,
            note: note.to_bytes(),
        });
        let leaf_hashes: Vec<Hash> = open
            .entries
            .iter()
            .map(|(_, e)| e.entry.leaf_hash)
            .collect();
        let mut tickets = Vec::with_capacity(open.entries.len());
        let mut entries = Vec::with_capacity(open.entries.len());
        for (ticket, sequenced) in open.entries {
            tickets.push((ticket, sequenced.index, sequenced.integrated_time));
            entries.push(sequenced);
        }
        let batch = Batch {
            entries,
            first_stored_hash: stored_hash_count(old_size),
            stored_hashes,
            checkpoint: (*checkpoint).clone(),
        };
        let id = self.outbox.persist(batch);
        self.in_flight_entries += leaf_hashes.len();
        self.in_flight.push_back((id, leaf_hashes));
        self.outbox
            .release_after_persisted(SequencerOutput::Published(checkpoint.clone()));
        for (ticket, index, integrated_time) in tickets {
            self.outbox
                .release_after_persisted(SequencerOutput::Integrated {
                    ticket,
                    index,
                    integrated_time,
                    checkpoint: checkpoint.clone(),
                });
        }
        for (ticket, index) in open.duplicates {
            self.outbox
                .release_after_persisted(SequencerOutput::Duplicate { ticket, index });
        }
    }

    fn fail_open_batch(&mut self, open: OpenBatch, reason: Rejection) {
        for (ticket, sequenced) in open.entries {
            self.not_durable.remove(&sequenced.entry.leaf_hash);
            self.reject(ticket, reason.clone());
        }
        for (ticket, _) in open.duplicates {
            self.reject(ticket, reason.clone());
        }
    }

    fn halt(&mut self, halt: Halt) {
        self.halted.get_or_insert(halt);
    }

    /// Withdraws every answer that waited on a failed write and halts the log.
    fn on_persist_failed(&mut self, id: PersistId) -> Result<(), AckError> {
        let withdrawn = self.outbox.fail(id)?;
        self.forget_in_flight(id);
        self.halt(Halt::StorageFailed);
        let reason = Rejection::Halted(Halt::StorageFailed);
        for output in withdrawn {
            match output {
                SequencerOutput::Integrated { ticket, .. }
                | SequencerOutput::Duplicate { ticket, .. }
                | SequencerOutput::Rejected { ticket, .. } => {
                    self.reject(ticket, reason.clone());
                }
                SequencerOutput::Published(_) | SequencerOutput::Persist { .. } => {}
            }
        }
        let open = std::mem::take(&mut self.open);
        self.fail_open_batch(open, reason);
        Ok(())
    }

    fn on_persisted(&mut self, id: PersistId) -> Result<(), AckError> {
        self.outbox.acknowledge(id)?;
        self.forget_in_flight(id);
        if self.in_flight.is_empty() && !self.open.entries.is_empty() && self.halted.is_none() {
            // The store is idle again: write what gathered meanwhile (group commit).
            self.close_batch();
        }
        Ok(())
    }

    /// Drops a finished write from the in-flight set: its entries are durable now (or
    /// were never written, after a failure).
    fn forget_in_flight(&mut self, id: PersistId) {
        if let Some(position) = self.in_flight.iter().position(|(pid, _)| *pid == id)
            && let Some((_, hashes)) = self.in_flight.remove(position)
        {
            self.in_flight_entries -= hashes.len();
            for hash in hashes {
                self.not_durable.remove(&hash);
            }
        }
    }
}

impl StateMachine for Sequencer {
    type Input = SequencerInput;
    type Output = SequencerOutput;

    fn handle_input(&mut self, _now: Timestamp, input: SequencerInput) {
        let result = match input {
            SequencerInput::Persisted(id) => self.on_persisted(id),
            SequencerInput::PersistFailed(id) => self.on_persist_failed(id),
        };
        if result.is_err() {
            // An acknowledgement for a write never requested: the driver is broken, and
            // the only safe answer is to sign nothing more.
            self.halt(Halt::StorageFailed);
        }
    }

    fn handle_timeout(&mut self, now: Timestamp) {
        if let Some(opened_at) = self.open.opened_at
            && now.saturating_duration_since(opened_at) >= self.config.max_batch_delay
            && self.halted.is_none()
        {
            self.close_batch();
        }
    }

    fn poll_output(&mut self) -> Option<SequencerOutput> {
        if let Some(output) = self.immediate.pop_front() {
            return Some(output);
        }
        match self.outbox.poll()? {
            Effect::Persist { id, write } => Some(SequencerOutput::Persist { id, batch: write }),
            Effect::Release(output) => {
                if let SequencerOutput::Published(checkpoint) = &output {
                    self.published = Some(checkpoint.clone());
                }
                Some(output)
            }
        }
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        self.open
            .opened_at
            .map(|opened| opened.saturating_add(self.config.max_batch_delay))
    }
}
