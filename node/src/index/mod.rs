//! The node's provenance index: every record of the domain's own log, verified once at
//! ingest and indexed by subject digest, signer, builder, predicate type, subject name
//! and trust domain ([`provmesh_protocol::index`] decides the keys), so that searches and
//! watches read the index and never re-verify.
//!
//! [`start`] opens the store ([`store`]) and returns an [`IndexHandle`] with the task
//! that follows the log: at each new checkpoint it reads the entries not yet indexed, a
//! tile's worth at a time, opens each ([`provmesh_protocol::provenance::Record::open`]:
//! signature, certificate chain to the domain's roots, statement) and commits the records
//! with the log's progress in one transaction — idempotent and resumable after a crash.
//! A long catch-up logs its progress. Each record of the own domain is also checked
//! against the identities allowed to sign for it (identity monitoring,
//! `[authority.monitor]`): any other signer raises an alert — a warning in the log, the
//! `provmesh_index_identity_alerts_total` metric and the `WatchAlerts` stream.

pub mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use provmesh_protocol::index::{Cursor, IndexedRecord, unexpected_signer};
use provmesh_protocol::policy::Pattern;
use provmesh_protocol::provenance::Record;
use provmesh_protocol::spiffe::TrustDomain;
use tokio::sync::broadcast;

use crate::log::LogHandle;
use crate::log::store::{LogStore as _, MAX_ENTRIES_PER_READ};
use crate::shutdown::Shutdown;
pub use store::{IndexStore, IndexStoreError, Ingested, Page};

/// How many newly indexed records a watcher may fall behind before its stream ends (it
/// resumes from its last cursor).
pub const WATCH_QUEUE: usize = 4096;

/// How long to wait before trying again when the store or the log fails.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How often a long catch-up reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// A record just indexed, as watchers get it.
#[derive(Debug, Clone)]
pub struct IndexEvent {
    /// Its position in the index.
    pub cursor: Cursor,
    /// The record.
    pub record: IndexedRecord,
    /// Identity monitoring's alert about its signer, if any.
    pub alert: Option<String>,
}

/// A cheap, cloneable handle to the index: its store, for searches, and the stream of
/// newly indexed records, for watches.
#[derive(Debug, Clone)]
pub struct IndexHandle {
    store: Arc<IndexStore>,
    events: broadcast::Sender<Arc<IndexEvent>>,
    shutdown: Shutdown,
}

impl IndexHandle {
    /// The store (blocking reads).
    pub fn store(&self) -> &Arc<IndexStore> {
        &self.store
    }

    /// Every record indexed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<IndexEvent>> {
        self.events.subscribe()
    }

    /// The node's shutdown signal, which ends watches.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

/// The index's metrics.
#[derive(Debug, Clone, Default)]
struct IndexMetrics {
    records: Counter,
    alerts: Counter,
    lag: Gauge,
}

/// Opens the index in `dir` and returns its handle and the task that feeds it from the
/// domain's `log` (the authority's), raising alerts for signers not in `allowed_signers`
/// (empty: every signer is allowed).
pub fn start(
    dir: &std::path::Path,
    log: LogHandle,
    trust_domain: TrustDomain,
    allowed_signers: Vec<Pattern>,
    metrics: &mut prometheus_client::registry::Registry,
    shutdown: Shutdown,
) -> Result<
    (
        IndexHandle,
        impl std::future::Future<Output = Result<(), std::convert::Infallible>> + Send + 'static,
    ),
    IndexStoreError,
> {
    let store = Arc::new(IndexStore::open(dir)?);
    let (events, _) = broadcast::channel(WATCH_QUEUE);
    let measured = IndexMetrics::default();
    metrics.register(
        "records",
        "Records indexed since the node started",
        measured.records.clone(),
    );
    metrics.register(
        "identity_alerts",
        "Entries of the domain's log signed by an identity not allowed to sign for it",
        measured.alerts.clone(),
    );
    metrics.register(
        "lag_entries",
        "Entries of the domain's log not indexed yet",
        measured.lag.clone(),
    );
    let handle = IndexHandle {
        store: Arc::clone(&store),
        events: events.clone(),
        shutdown: shutdown.clone(),
    };
    let ingest = Ingest {
        store,
        log,
        trust_domain,
        allowed_signers: Arc::new(allowed_signers),
        events,
        metrics: measured,
    };
    Ok((handle, ingest.run(shutdown)))
}

struct Ingest {
    store: Arc<IndexStore>,
    log: LogHandle,
    trust_domain: TrustDomain,
    allowed_signers: Arc<Vec<Pattern>>,
    events: broadcast::Sender<Arc<IndexEvent>>,
    metrics: IndexMetrics,
}

impl Ingest {
    /// Follows the log until shutdown. Failures are logged and retried: the index is
    /// derived data, and a node that cannot index still serves lookups.
    async fn run(self, shutdown: Shutdown) -> Result<(), std::convert::Infallible> {
        let mut updates = self.log.checkpoint_updates();
        loop {
            if let Err(error) = self.catch_up(&shutdown).await {
                tracing::error!(%error, "indexing the domain's log failed; trying again shortly");
                tokio::select! {
                    () = tokio::time::sleep(RETRY_AFTER) => continue,
                    () = shutdown.triggered() => return Ok(()),
                }
            }
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { return Ok(()) },
                () = shutdown.triggered() => return Ok(()),
            }
        }
    }

    /// Indexes every entry up to the newest checkpoint.
    async fn catch_up(&self, shutdown: &Shutdown) -> Result<(), String> {
        let origin = self.log.origin().to_owned();
        let started = Instant::now();
        let mut reported = Instant::now();
        let first = self.blocking_progress(&origin).await?;
        loop {
            let size = self.log.latest_checkpoint().map_or(0, |c| c.size);
            let from = self.blocking_progress(&origin).await?;
            self.metrics
                .lag
                .set(i64::try_from(size.saturating_sub(from)).unwrap_or(i64::MAX));
            if from > size && size > 0 && first == from {
                // The log is a restored backup: it holds the same entries up to its size
                // (a log never forks), so what the index holds beyond stays right.
                tracing::warn!(%origin, indexed = from, log_size = size, "the index is ahead of the log (restored from a backup?); it resumes once the log catches up");
            }
            if from >= size || shutdown.is_triggered() {
                if from > first && size.saturating_sub(first) > MAX_ENTRIES_PER_READ {
                    tracing::info!(%origin, indexed = from - first, elapsed_ms = started.elapsed().as_millis() as u64, "index caught up with the log");
                }
                return Ok(());
            }
            let to = size.min(from.saturating_add(MAX_ENTRIES_PER_READ));
            let batch = self.clone_parts();
            let indexed = tokio::task::spawn_blocking(move || batch.index(from, to))
                .await
                .map_err(|e| e.to_string())??;
            for event in indexed {
                self.metrics.records.inc();
                if let Some(alert) = &event.alert {
                    self.metrics.alerts.inc();
                    tracing::warn!(
                        signer = %event.record.signer,
                        log_index = event.record.log_index,
                        %alert,
                        "identity alert"
                    );
                }
                // No watcher is not an error.
                let _ = self.events.send(Arc::new(event));
            }
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = Instant::now();
                tracing::info!(%origin, indexed = to, of = size, "indexing the domain's log");
            }
        }
    }

    async fn blocking_progress(&self, origin: &str) -> Result<u64, String> {
        let store = Arc::clone(&self.store);
        let origin = origin.to_owned();
        tokio::task::spawn_blocking(move || store.progress(&origin))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    fn clone_parts(&self) -> Batch {
        Batch {
            store: Arc::clone(&self.store),
            log: self.log.clone(),
            trust_domain: self.trust_domain.clone(),
            allowed_signers: Arc::clone(&self.allowed_signers),
        }
    }
}

/// What indexing one batch needs, off the async task.
struct Batch {
    store: Arc<IndexStore>,
    log: LogHandle,
    trust_domain: TrustDomain,
    allowed_signers: Arc<Vec<Pattern>>,
}

impl Batch {
    /// Opens entries `from..to` of the log and indexes the records among them (blocking).
    fn index(&self, from: u64, to: u64) -> Result<Vec<IndexEvent>, String> {
        let store = self.log.store();
        let origin = self.log.origin();
        let entries = store.entries(from..to).map_err(|e| e.to_string())?;
        let mut records = Vec::with_capacity(entries.len());
        for (index, entry) in (from..).zip(entries) {
            // The log also holds entries that are no records (the CA's precertificates).
            if !provmesh_protocol::provenance::is_record_kind(&entry.body) {
                continue;
            }
            let attestation = store.attestation(index).map_err(|e| e.to_string())?;
            match Record::open(
                &entry.body,
                attestation.as_deref(),
                entry.integrated_time,
                self.log.code_signing_roots(),
            ) {
                Ok(record) => {
                    let record = IndexedRecord::of(
                        &record,
                        &self.trust_domain,
                        origin,
                        index,
                        entry.integrated_time,
                    );
                    let alert = unexpected_signer(&self.allowed_signers, &record);
                    records.push(Ingested { record, alert });
                }
                Err(reason) => {
                    tracing::warn!(%origin, index, %reason, "log entry not indexed: it does not open as a record");
                }
            }
        }
        let indexed = self
            .store
            .ingest(origin, from, to, records)
            .map_err(|e| e.to_string())?;
        Ok(indexed
            .into_iter()
            .map(|(cursor, ingested)| IndexEvent {
                cursor,
                record: ingested.record,
                alert: ingested.alert,
            })
            .collect())
    }
}
