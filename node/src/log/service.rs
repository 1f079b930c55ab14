//! The running domain log: the one task that owns the sequencer, the writer thread that
//! owns durability, and the [`LogHandle`] through which HTTP and gRPC handlers append
//! and read.
//!
//! ```text
//!  handlers ──admit (parse, certificate, quota, signature)──▶ bounded channel ──▶ log task
//!     ▲                                                                          │  Sequencer
//!     └────────── answer (after the batch is durable) ◀──────────────────────────┤
//!                                                         batches ▼     ▲ durable
//!                                                          writer thread (redb commit)
//! ```
//!
//! Admission runs in the handlers, in parallel: everything that does not depend on the
//! log's order (JSON, certificate chain, signature) is checked before an entry reaches
//! the sequencer. The log task is the only place that orders entries and the only
//! reader of the deduplication index that matters (see
//! [`provmesh_protocol::log::sequencer::EntryLookup`]). Commits happen on a dedicated
//! thread in the order requested; the task keeps accepting entries for the next batch
//! meanwhile. Nothing is queued without bound: the submission channel and the
//! sequencer's pending limit both answer "overloaded" when full.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use provmesh_protocol::log::admission::{Admission, AdmissionError};
use provmesh_protocol::log::entry::{AdmitError, ProposedEntryError, set_payload};
use provmesh_protocol::log::quota::{QuotaConfig, QuotaError};
use provmesh_protocol::log::sequencer::{
    EntryLookup, Rejection, Sequencer, SequencerConfig, SequencerInput, SequencerOutput,
    StoredState, Ticket,
};
use provmesh_protocol::log::signer_cert::{CodeSigningRoots, SignerCertError};
use provmesh_protocol::log::{AdmittedEntry, SignedCheckpointNote, log_key_id};
use provmesh_protocol::machine::{PersistId, StateMachine, Timestamp};
use provmesh_protocol::merkle::{Hash, TreeError, prove_consistency, prove_inclusion, tree_hash};
use provmesh_protocol::note::Ed25519Signer;
use tokio::sync::{mpsc, oneshot, watch};

use super::store::{LogMetadata, LogStore, RedbLogStore, StoreError, StoredEntry};
use crate::shutdown::Shutdown;

/// Settings of a running log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Batching and back-pressure.
    pub sequencer: SequencerConfig,
    /// Per-identity quotas.
    pub quota: QuotaConfig,
    /// Verified certificates remembered, so that a certificate used for many entries has
    /// its chain checked once.
    pub certificate_cache: usize,
    /// Submissions that may wait for the log task.
    pub submission_queue: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            sequencer: SequencerConfig::default(),
            quota: QuotaConfig::default(),
            certificate_cache: 10_000,
            submission_queue: 4096,
        }
    }
}

/// The current time as the protocol sees it.
pub fn now() -> Timestamp {
    crate::clock::now()
}

/// Why the log could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogStartError {
    /// The store failed.
    #[error("log store: {0}")]
    Store(#[from] StoreError),
    /// The store belongs to another log.
    #[error(
        "the log store belongs to origin {stored:?} with another key or name than the configured \
         {configured:?}; a log's origin and key never change"
    )]
    NotThisLog {
        /// What the store says.
        stored: String,
        /// What the configuration says.
        configured: String,
    },
    /// The stored state is inconsistent or the published checkpoint is invalid.
    #[error("cannot resume the log: {0}")]
    Recover(String),
}

/// Why an append failed. Each variant maps to one HTTP status and gRPC code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The proposed entry is malformed or of an unsupported kind (HTTP 400).
    #[error(transparent)]
    Malformed(#[from] ProposedEntryError),
    /// The signer's certificate may not write to this log (HTTP 422 / permission denied).
    #[error("signing certificate refused: {0}")]
    Certificate(#[from] SignerCertError),
    /// The signature does not verify or the entry cannot be admitted (HTTP 422).
    #[error(transparent)]
    Rejected(#[from] AdmitError),
    /// The identity's quota is spent (HTTP 429).
    #[error(transparent)]
    Quota(#[from] QuotaError),
    /// The log cannot take more entries now (HTTP 429 / resource exhausted).
    #[error("the log is overloaded; retry later")]
    Overloaded,
    /// The log refuses to sign (HTTP 503 / unavailable).
    #[error("{0}")]
    Unavailable(String),
    /// Reading the store failed (HTTP 500).
    #[error("log store: {0}")]
    Store(#[from] StoreError),
}

impl From<AdmissionError> for AppendError {
    fn from(error: AdmissionError) -> Self {
        match error {
            AdmissionError::Malformed(e) => AppendError::Malformed(e),
            AdmissionError::Certificate(e) => AppendError::Certificate(e),
            AdmissionError::Rejected(e) => AppendError::Rejected(e),
            AdmissionError::Quota(e) => AppendError::Quota(e),
            // A kind of refusal this node does not know yet: refuse, naming it.
            other => AppendError::Unavailable(other.to_string()),
        }
    }
}

/// A logged entry with everything a client needs to verify it offline.
#[derive(Debug, Clone)]
pub struct EntryRecord {
    /// Its index.
    pub index: u64,
    /// Its leaf hash (Rekor v1 UUID).
    pub leaf_hash: Hash,
    /// Unix seconds at which the log accepted it.
    pub integrated_time: i64,
    /// The canonical body.
    pub body: Vec<u8>,
    /// The checkpoint the proof leads to.
    pub checkpoint: Arc<SignedCheckpointNote>,
    /// Inclusion proof in the tree of `checkpoint`, leaf to root.
    pub inclusion_proof: Vec<Hash>,
    /// Signed entry timestamp: the log key's Ed25519 signature over
    /// [`set_payload`] of the entry.
    pub signed_entry_timestamp: [u8; 64],
}

/// An entry found for a provenance lookup.
#[derive(Debug, Clone)]
pub struct ProvenanceEntry {
    /// The entry, proven.
    pub entry: EntryRecord,
    /// The proposed entry the log kept for it (`dsse`: with the envelope).
    pub attestation: Option<Vec<u8>>,
}

/// What an append produced.
#[derive(Debug, Clone)]
pub enum Appended {
    /// A new entry.
    Created(EntryRecord),
    /// The same canonical body was already logged; this is the existing entry.
    Duplicate(EntryRecord),
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The request asks for something the log cannot have (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The store failed (HTTP 500).
    #[error("log store: {0}")]
    Store(#[from] StoreError),
    /// The log has published no checkpoint yet (HTTP 503).
    #[error("the log has not published a checkpoint yet")]
    NoCheckpoint,
}

impl From<TreeError<StoreError>> for ReadError {
    fn from(error: TreeError<StoreError>) -> Self {
        match error {
            TreeError::Store(e) => ReadError::Store(e),
            other => ReadError::BadRequest(other.to_string()),
        }
    }
}

struct Submission {
    entry: AdmittedEntry,
    submitted: Instant,
    reply: oneshot::Sender<SequencerOutput>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The log's metrics (`provmesh_log_*`).
#[derive(Debug, Clone)]
struct LogMetrics {
    appends: Family<OutcomeLabels, Counter>,
    rejections: Family<ReasonLabels, Counter>,
    batch_entries: Histogram,
    commit_seconds: Histogram,
    integration_seconds: Histogram,
    pending_entries: Gauge,
    tree_size: Gauge,
    checkpoint_timestamp: Gauge<f64, AtomicU64>,
}

impl LogMetrics {
    fn new(registry: &mut Registry) -> Self {
        let metrics = LogMetrics {
            appends: Family::default(),
            rejections: Family::default(),
            batch_entries: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            integration_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            pending_entries: Gauge::default(),
            tree_size: Gauge::default(),
            checkpoint_timestamp: Gauge::default(),
        };
        registry.register(
            "appends",
            "Entries appended (outcome=created) or answered as duplicates (outcome=duplicate)",
            metrics.appends.clone(),
        );
        registry.register(
            "rejections",
            "Append requests refused, by reason",
            metrics.rejections.clone(),
        );
        registry.register(
            "batch_entries",
            "Entries per committed batch",
            metrics.batch_entries.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time to make one batch durable (one redb transaction with fsync)",
            metrics.commit_seconds.clone(),
        );
        registry.register(
            "integration_seconds",
            "Time from submission to the sequencer until the entry is durable and checkpointed",
            metrics.integration_seconds.clone(),
        );
        registry.register(
            "pending_entries",
            "Entries accepted and not yet durable",
            metrics.pending_entries.clone(),
        );
        registry.register(
            "tree_size",
            "Size of the newest published checkpoint",
            metrics.tree_size.clone(),
        );
        registry.register(
            "checkpoint_timestamp_seconds",
            "Unix time the newest checkpoint was published; its age is time() minus this",
            metrics.checkpoint_timestamp.clone(),
        );
        metrics
    }

    fn reject(&self, reason: &'static str) {
        self.rejections
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }
}

struct Shared {
    store: Arc<RedbLogStore>,
    signer: Ed25519Signer,
    key_id: [u8; 32],
    admission: Admission,
    submissions: mpsc::Sender<Submission>,
    published: watch::Receiver<Option<Arc<SignedCheckpointNote>>>,
    halted: Arc<Mutex<Option<String>>>,
    metrics: LogMetrics,
    /// Provenance answers opened from this log, shared by every server of them (gRPC
    /// lookups, the mesh's).
    answers: crate::provenance::AnswerCache,
}

/// A cheap, cloneable handle to the running log.
#[derive(Clone)]
pub struct LogHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandle")
            .field("origin", &self.origin())
            .finish_non_exhaustive()
    }
}

/// The log task, to be spawned; it ends when `shutdown` fires, after answering every
/// submission it accepted.
pub type LogTask = std::pin::Pin<Box<dyn Future<Output = Result<(), LogTaskError>> + Send>>;

/// Why the log task stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogTaskError {
    /// A batch could not be made durable; the log halted.
    #[error("the log halted: {0}")]
    Halted(String),
    /// The writer thread is gone.
    #[error("the log writer thread stopped")]
    WriterGone,
}

/// Resumes the log from `store` and returns its handle and its task.
///
/// `published` is the newest checkpoint known to have been published for this origin
/// (from the mesh or the operator); if the store does not contain its tree, the log
/// serves reads but refuses every append.
pub fn start(
    settings: LogSettings,
    store: Arc<RedbLogStore>,
    signer: Ed25519Signer,
    roots: CodeSigningRoots,
    published: Option<Vec<u8>>,
    registry: &mut Registry,
    shutdown: Shutdown,
) -> Result<(LogHandle, LogTask), LogStartError> {
    use provmesh_protocol::note::NoteSigner as _;
    let origin = signer.name().as_str().to_owned();
    let metadata = LogMetadata {
        origin: origin.clone(),
        public_key: signer.public_key(),
    };
    match store.metadata()? {
        Some(stored) if stored != metadata => {
            return Err(LogStartError::NotThisLog {
                stored: stored.origin,
                configured: origin,
            });
        }
        Some(_) => {}
        None => store.init_metadata(&metadata)?,
    }
    let stored = StoredState {
        size: store.size()?,
        latest_checkpoint: store.latest_checkpoint()?,
    };
    let sequencer = Sequencer::recover(
        settings.sequencer.clone(),
        signer.clone(),
        stored,
        &*store,
        published.as_deref(),
    )
    .map_err(|e| LogStartError::Recover(e.to_string()))?;
    let halted = Arc::new(Mutex::new(sequencer.halted().map(|h| h.to_string())));
    if let Some(reason) = sequencer.halted() {
        tracing::error!(%reason, "the log refuses to sign");
    }

    let metrics = LogMetrics::new(registry);
    let (published_tx, published_rx) = watch::channel(sequencer.published().cloned());
    if let Some(checkpoint) = sequencer.published() {
        metrics.tree_size.set(checkpoint.size as i64);
    }
    let (submissions_tx, submissions_rx) = mpsc::channel(settings.submission_queue.max(1));
    let key_id = log_key_id(signer.name(), &signer.public_key());
    let handle = LogHandle {
        shared: Arc::new(Shared {
            store: Arc::clone(&store),
            signer,
            key_id,
            admission: Admission::new(roots, settings.certificate_cache, settings.quota),
            submissions: submissions_tx,
            published: published_rx,
            halted: Arc::clone(&halted),
            metrics: metrics.clone(),
            answers: crate::provenance::AnswerCache::default(),
        }),
    };
    let task = LogDriver {
        sequencer,
        store,
        submissions: submissions_rx,
        published: published_tx,
        halted,
        metrics,
        waiting: HashMap::new(),
        next_ticket: 0,
    };
    Ok((handle, Box::pin(task.run(shutdown))))
}

/// The log task's state.
struct LogDriver {
    sequencer: Sequencer,
    store: Arc<RedbLogStore>,
    submissions: mpsc::Receiver<Submission>,
    published: watch::Sender<Option<Arc<SignedCheckpointNote>>>,
    halted: Arc<Mutex<Option<String>>>,
    metrics: LogMetrics,
    waiting: HashMap<Ticket, (oneshot::Sender<SequencerOutput>, Instant)>,
    next_ticket: u64,
}

/// Lookups in the store from the log task (the [`EntryLookup`] contract holds because
/// the task applies persistence results itself, after the commit returned).
struct StoreLookup<'a>(&'a RedbLogStore);

impl EntryLookup for StoreLookup<'_> {
    type Error = StoreError;
    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, StoreError> {
        self.0.index_of(leaf_hash)
    }
}

type WriteResult = (PersistId, Result<(), StoreError>, Duration, usize);

impl LogDriver {
    async fn run(mut self, shutdown: Shutdown) -> Result<(), LogTaskError> {
        // Both channels are bounded by the sequencer, not by their type: it never has more
        // than `max_pending_entries` entries in batches awaiting a write, so neither holds
        // more batches (or results) than that.
        let (write_tx, write_rx) =
            std::sync::mpsc::channel::<(PersistId, provmesh_protocol::log::Batch)>();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<WriteResult>();
        let store = Arc::clone(&self.store);
        let writer = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                // Batches arrive in the order the sequencer requested them and are
                // committed in that order; the store refuses one that does not extend
                // the tree it holds.
                for (id, batch) in write_rx {
                    let started = Instant::now();
                    let result = store.commit(&batch);
                    if done_tx
                        .send((id, result, started.elapsed(), batch.entries.len()))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .map_err(|_| LogTaskError::WriterGone)?;

        let mut accepting = true;
        let mut in_flight_writes = 0usize;
        loop {
            self.drain_outputs(&write_tx, &mut in_flight_writes)?;
            if !accepting && in_flight_writes == 0 && self.sequencer.pending_entries() == 0 {
                break;
            }
            let deadline = self.sequencer.poll_timeout().map(deadline_instant);
            tokio::select! {
                biased;
                Some((id, result, took, entries)) = done_rx.recv() => {
                    in_flight_writes -= 1;
                    self.on_write_done(id, result, took, entries);
                }
                submission = self.submissions.recv(), if accepting => match submission {
                    Some(submission) => {
                        self.submit(submission);
                        // Take whatever else is queued before answering: one pass of
                        // outputs per burst keeps the task's overhead per entry low.
                        for _ in 0..1024 {
                            match self.submissions.try_recv() {
                                Ok(submission) => self.submit(submission),
                                Err(_) => break,
                            }
                        }
                    }
                    None => accepting = false,
                },
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.sequencer.handle_timeout(now());
                }
                () = shutdown.triggered(), if accepting => {
                    // Answer every entry accepted so far, then stop.
                    accepting = false;
                    self.submissions.close();
                    while let Ok(submission) = self.submissions.try_recv() {
                        self.submit(submission);
                    }
                    self.sequencer.flush();
                }
            }
        }
        drop(write_tx);
        let _ = writer.join();
        match self.sequencer.halted() {
            Some(halt) if self.halted_by_storage() => Err(LogTaskError::Halted(halt.to_string())),
            _ => Ok(()),
        }
    }

    fn halted_by_storage(&self) -> bool {
        matches!(
            self.sequencer.halted(),
            Some(provmesh_protocol::log::sequencer::Halt::StorageFailed)
        )
    }

    fn submit(&mut self, submission: Submission) {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.waiting
            .insert(ticket, (submission.reply, submission.submitted));
        self.sequencer
            .submit(now(), ticket, submission.entry, &StoreLookup(&self.store));
    }

    fn on_write_done(
        &mut self,
        id: PersistId,
        result: Result<(), StoreError>,
        took: Duration,
        entries: usize,
    ) {
        let input = match result {
            Ok(()) => {
                self.metrics.commit_seconds.observe(took.as_secs_f64());
                self.metrics.batch_entries.observe(entries as f64);
                SequencerInput::Persisted(id)
            }
            Err(error) => {
                tracing::error!(%error, "a log batch could not be written; the log halts");
                SequencerInput::PersistFailed(id)
            }
        };
        self.sequencer.handle_input(now(), input);
        if let Some(halt) = self.sequencer.halted()
            && let Ok(mut halted) = self.halted.lock()
        {
            halted.get_or_insert_with(|| halt.to_string());
        }
    }

    fn drain_outputs(
        &mut self,
        write_tx: &std::sync::mpsc::Sender<(PersistId, provmesh_protocol::log::Batch)>,
        in_flight_writes: &mut usize,
    ) -> Result<(), LogTaskError> {
        while let Some(output) = self.sequencer.poll_output() {
            match output {
                SequencerOutput::Persist { id, batch } => {
                    write_tx
                        .send((id, batch))
                        .map_err(|_| LogTaskError::WriterGone)?;
                    *in_flight_writes += 1;
                }
                SequencerOutput::Published(checkpoint) => {
                    self.metrics.tree_size.set(checkpoint.size as i64);
                    self.metrics
                        .checkpoint_timestamp
                        .set(now().as_unix_millis() as f64 / 1000.0);
                    tracing::debug!(size = checkpoint.size, "checkpoint published");
                    self.published.send_replace(Some(checkpoint));
                }
                SequencerOutput::Integrated { ticket, .. }
                | SequencerOutput::Duplicate { ticket, .. }
                | SequencerOutput::Rejected { ticket, .. } => {
                    if let Some((reply, submitted)) = self.waiting.remove(&ticket) {
                        if matches!(output, SequencerOutput::Integrated { .. }) {
                            self.metrics
                                .integration_seconds
                                .observe(submitted.elapsed().as_secs_f64());
                        }
                        // The requester may have gone away; the entry is logged anyway.
                        let _ = reply.send(output);
                    }
                }
            }
        }
        self.metrics
            .pending_entries
            .set(self.sequencer.pending_entries() as i64);
        Ok(())
    }
}

fn deadline_instant(at: Timestamp) -> tokio::time::Instant {
    let wait = at.saturating_duration_since(now());
    tokio::time::Instant::now() + wait
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl LogHandle {
    /// The log's origin.
    pub fn origin(&self) -> &str {
        use provmesh_protocol::note::NoteSigner as _;
        self.shared.signer.name().as_str()
    }

    /// The log's key ID (`logID` in Rekor responses, `logId.keyId` in bundles).
    pub fn key_id(&self) -> &[u8; 32] {
        &self.shared.key_id
    }

    /// The log's Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.shared.signer.public_key()
    }

    /// The provenance answers already opened from this log
    /// ([`crate::provenance::cached_local_records`]).
    pub fn answer_cache(&self) -> &crate::provenance::AnswerCache {
        &self.shared.answers
    }

    /// The store (read-only use: commits belong to the log task).
    pub fn store(&self) -> &RedbLogStore {
        &self.shared.store
    }

    /// Why the log refuses appends, if it does.
    pub fn halted(&self) -> Option<String> {
        self.shared.halted.lock().ok().and_then(|h| h.clone())
    }

    /// The newest durable checkpoint.
    pub fn latest_checkpoint(&self) -> Option<Arc<SignedCheckpointNote>> {
        self.shared.published.borrow().clone()
    }

    /// A watch on the newest durable checkpoint, which changes each time the log
    /// publishes one: the mesh gossips it at once instead of at its next tick.
    pub fn checkpoint_updates(&self) -> watch::Receiver<Option<Arc<SignedCheckpointNote>>> {
        self.shared.published.clone()
    }

    /// Waits until a checkpoint of at least `size` is published (for tests and tools).
    pub async fn wait_for_size(&self, size: u64) {
        let mut published = self.shared.published.clone();
        let _ = published
            .wait_for(|c| c.as_ref().is_some_and(|c| c.size >= size))
            .await;
    }

    /// Admits, sequences and returns a proposed Rekor v1 entry (the JSON body of
    /// `POST /api/v1/log/entries`), once it is durable and checkpointed.
    pub async fn append(&self, proposed_json: &[u8]) -> Result<Appended, AppendError> {
        let admitted = match self.admit(proposed_json) {
            Ok(admitted) => admitted,
            Err(error) => {
                self.shared.metrics.reject(rejection_reason(&error));
                return Err(error);
            }
        };
        self.append_admitted(admitted).await
    }

    /// Sequences an entry the node admitted itself (the CA's precertificate records) and
    /// returns it once it is durable and checkpointed.
    pub async fn append_admitted(&self, admitted: AdmittedEntry) -> Result<Appended, AppendError> {
        let metrics = &self.shared.metrics;
        if let Some(reason) = self.halted() {
            metrics.reject("unavailable");
            return Err(AppendError::Unavailable(reason));
        }
        let (reply, answer) = oneshot::channel();
        // Kept to answer with: the log task hands the entry on to the store.
        let body = admitted.body.clone();
        let submission = Submission {
            entry: admitted,
            submitted: Instant::now(),
            reply,
        };
        match self.shared.submissions.try_send(submission) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics.reject("overloaded");
                return Err(AppendError::Overloaded);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics.reject("unavailable");
                return Err(AppendError::Unavailable("the log is shutting down".into()));
            }
        }
        let outcome = answer
            .await
            .map_err(|_| AppendError::Unavailable("the log is shutting down".into()))?;
        let result = match outcome {
            SequencerOutput::Integrated {
                index,
                integrated_time,
                checkpoint,
                ..
            } => self
                .record_of(
                    StoredEntry {
                        integrated_time,
                        body,
                    },
                    index,
                    checkpoint,
                )
                .map(Appended::Created),
            SequencerOutput::Duplicate { index, .. } => {
                let checkpoint = self.latest_checkpoint().ok_or(ReadError::NoCheckpoint);
                match checkpoint {
                    Ok(checkpoint) => self.record(index, checkpoint).map(Appended::Duplicate),
                    Err(e) => Err(e),
                }
            }
            SequencerOutput::Rejected { reason, .. } => {
                let error = match reason {
                    Rejection::Overloaded { .. } => AppendError::Overloaded,
                    other => AppendError::Unavailable(other.to_string()),
                };
                metrics.reject(rejection_reason(&error));
                return Err(error);
            }
            SequencerOutput::Persist { .. } | SequencerOutput::Published(_) => {
                return Err(AppendError::Unavailable("unexpected log answer".into()));
            }
        };
        let appended = result.map_err(|e| match e {
            ReadError::Store(e) => AppendError::Store(e),
            other => AppendError::Unavailable(other.to_string()),
        })?;
        let outcome = match appended {
            Appended::Created(_) => "created",
            Appended::Duplicate(_) => "duplicate",
        };
        metrics
            .appends
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        Ok(appended)
    }

    /// Everything that does not depend on the log's order: parse, certificate chain and
    /// validity, quota, signature.
    fn admit(&self, proposed_json: &[u8]) -> Result<AdmittedEntry, AppendError> {
        if let Some(reason) = self.halted() {
            return Err(AppendError::Unavailable(reason));
        }
        Ok(self.shared.admission.admit(proposed_json, now())?)
    }

    /// The entry at `index` with a proof to `checkpoint`.
    fn record(
        &self,
        index: u64,
        checkpoint: Arc<SignedCheckpointNote>,
    ) -> Result<EntryRecord, ReadError> {
        let entry = self
            .shared
            .store
            .entry(index)?
            .ok_or_else(|| ReadError::BadRequest(format!("entry {index} is not in the log")))?;
        self.record_of(entry, index, checkpoint)
    }

    /// [`Self::record`] for an entry already in hand.
    fn record_of(
        &self,
        entry: StoredEntry,
        index: u64,
        checkpoint: Arc<SignedCheckpointNote>,
    ) -> Result<EntryRecord, ReadError> {
        let inclusion_proof = prove_inclusion(index, checkpoint.size, &*self.shared.store)?;
        let leaf_hash = provmesh_protocol::merkle::leaf_hash(&entry.body);
        let payload = set_payload(
            &entry.body,
            entry.integrated_time,
            &self.shared.key_id,
            index,
        );
        Ok(EntryRecord {
            index,
            leaf_hash,
            integrated_time: entry.integrated_time,
            signed_entry_timestamp: self.shared.signer.sign_bytes(&payload),
            body: entry.body,
            checkpoint,
            inclusion_proof,
        })
    }

    /// The entry at `index`, proven against the newest checkpoint; `None` if the log
    /// holds no such entry.
    pub fn entry_by_index(&self, index: u64) -> Result<Option<EntryRecord>, ReadError> {
        let checkpoint = self.latest_checkpoint().ok_or(ReadError::NoCheckpoint)?;
        if index >= checkpoint.size {
            return Ok(None);
        }
        self.record(index, checkpoint).map(Some)
    }

    /// The entry with this leaf hash (Rekor v1 UUID), proven against the newest
    /// checkpoint.
    pub fn entry_by_leaf_hash(&self, leaf_hash: &Hash) -> Result<Option<EntryRecord>, ReadError> {
        match self.shared.store.index_of(leaf_hash)? {
            Some(index) => self.entry_by_index(index),
            None => Ok(None),
        }
    }

    /// The code-signing roots the log admits certificates under.
    pub fn code_signing_roots(&self) -> &provmesh_protocol::log::signer_cert::CodeSigningRoots {
        self.shared.admission.roots()
    }

    /// The entries found by an artifact or subject SHA-256 digest, oldest first, at most
    /// `limit`, each with the proposed entry kept for it (`dsse`), proven against
    /// `checkpoint` when it holds the entry (a cosigned checkpoint of this log), else
    /// against the newest checkpoint.
    pub fn provenance_entries(
        &self,
        digest: &[u8; 32],
        limit: usize,
        checkpoint: Option<Arc<SignedCheckpointNote>>,
    ) -> Result<Vec<ProvenanceEntry>, ReadError> {
        let latest = self.latest_checkpoint().ok_or(ReadError::NoCheckpoint)?;
        let store = &*self.shared.store;
        // Only a checkpoint of this tree: one of another root would be the log's own
        // split view, and a proof against it cannot hold.
        let checkpoint = match checkpoint {
            Some(c) if c.size <= latest.size && self.tree_root(c.size)? == c.root_hash => Some(c),
            _ => None,
        };
        let mut found = Vec::new();
        for index in store.search(digest, limit)? {
            let Some(entry) = store.entry(index)? else {
                continue;
            };
            let against = match &checkpoint {
                Some(cosigned) if index < cosigned.size && cosigned.size <= latest.size => {
                    Arc::clone(cosigned)
                }
                _ => Arc::clone(&latest),
            };
            let attestation = store.attestation(index)?;
            found.push(ProvenanceEntry {
                entry: self.record_of(entry, index, against)?,
                attestation,
            });
        }
        Ok(found)
    }

    /// Leaf hashes of entries found by an artifact or subject SHA-256 digest, oldest
    /// first, at most `limit`.
    pub fn search(&self, digest: &[u8; 32], limit: usize) -> Result<Vec<Hash>, ReadError> {
        let store = &*self.shared.store;
        let mut found = Vec::new();
        for index in store.search(digest, limit)? {
            if let Some(entry) = store.entry(index)? {
                found.push(provmesh_protocol::merkle::leaf_hash(&entry.body));
            }
        }
        Ok(found)
    }

    /// A consistency proof between two sizes, both at most the newest checkpoint's.
    pub fn consistency_proof(&self, first: u64, last: u64) -> Result<Vec<Hash>, ReadError> {
        let checkpoint = self.latest_checkpoint().ok_or(ReadError::NoCheckpoint)?;
        if last > checkpoint.size {
            return Err(ReadError::BadRequest(format!(
                "lastSize {last} is beyond the log's size {}",
                checkpoint.size
            )));
        }
        if first > last {
            return Err(ReadError::BadRequest(format!(
                "firstSize {first} is larger than lastSize {last}"
            )));
        }
        Ok(prove_consistency(first, last, &*self.shared.store)?)
    }

    /// The root hash of the first `size` leaves, for a size up to the latest checkpoint's.
    pub fn tree_root(&self, size: u64) -> Result<Hash, ReadError> {
        let checkpoint = self.latest_checkpoint().ok_or(ReadError::NoCheckpoint)?;
        if size > checkpoint.size {
            return Err(ReadError::BadRequest(format!(
                "size {size} is beyond the log's size {}",
                checkpoint.size
            )));
        }
        Ok(tree_hash(size, &*self.shared.store)?)
    }
}

fn rejection_reason(error: &AppendError) -> &'static str {
    match error {
        AppendError::Malformed(_) => "malformed",
        AppendError::Certificate(_) => "certificate",
        AppendError::Rejected(_) => "signature",
        AppendError::Quota(_) => "quota",
        AppendError::Overloaded => "overloaded",
        AppendError::Unavailable(_) => "unavailable",
        AppendError::Store(_) => "store",
    }
}
