//! `provmesh.v1.ProvenanceService`: the records of an artifact in every federated
//! domain's log, with the verdict of the caller's policy (`provmesh_protocol::policy`).
//!
//! The domain's own log answers locally on the authority ([`crate::provenance`]); every
//! other log is asked over the mesh (its domain's authority answers), and each record it
//! returns is checked under that domain's accepted keys before it is used: bundle,
//! logged body, kept attestation, witnesses. A record that fails is left out, logged.
//!
//! Searches and watches read the node's provenance index ([`crate::index`]), whose
//! records were verified once when they were indexed.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use provmesh_protocol::index::{Cursor, DEFAULT_PAGE_SIZE, QueryText, SearchQuery};

use provmesh_protocol::policy::{Policy, RecordFacts};
use provmesh_protocol::provenance::{PreparedDomain, Record};
use provmesh_protocol::spiffe::TrustDomain;
use tonic::{Request, Response, Status};

use tokio::sync::{broadcast, mpsc};

use super::v1::{
    GetProvenanceRequest, GetProvenanceResponse, IdentityAlert, IndexedRecord, IndexedSubject,
    ProvenanceRecord, Reason, RecordFilter, SearchProvenanceRequest, SearchProvenanceResponse,
    WatchAlertsRequest, WatchEntriesRequest, provenance_service_server,
};
use crate::index::{IndexEvent, IndexHandle};
use crate::log::LogHandle;
use crate::mesh::MeshHandle;
use crate::provenance::{LogStanding, RemoteAnswers, cached_answer, cached_local_records};

/// The `provmesh.v1.ProvenanceService` implementation.
#[derive(Debug, Clone)]
pub struct ProvenanceGrpc {
    log: Option<LogHandle>,
    mesh: Option<MeshHandle>,
    trust_domain: TrustDomain,
    /// The provenance index, for searches and watches.
    index: Option<IndexHandle>,
}

impl ProvenanceGrpc {
    /// The service of a node of `trust_domain`: over its `log` (the authority), over the
    /// logs of the federation through `mesh`, and searching its `index`.
    pub fn new(
        log: Option<LogHandle>,
        mesh: Option<MeshHandle>,
        index: Option<IndexHandle>,
        trust_domain: TrustDomain,
    ) -> Self {
        Self {
            log,
            mesh,
            trust_domain,
            index,
        }
    }

    fn index(&self) -> Result<&IndexHandle, Status> {
        self.index.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "this node keeps no provenance index: ask its domain's authority, which indexes the domain's log",
            )
        })
    }
}

/// How many records a watch buffers for a slow client before it waits on it.
const WATCH_BUFFER: usize = 64;

/// How many records a watch reads from the index at once when it replays.
const REPLAY_CHUNK: usize = 256;

/// The stream of a watch.
type WatchStream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

fn search_query(filter: Option<RecordFilter>) -> Result<SearchQuery, Status> {
    let filter = filter.unwrap_or_default();
    SearchQuery::parse(&QueryText {
        signer: &filter.signer,
        builder: &filter.builder_id,
        predicate_type: &filter.predicate_type,
        subject_name: &filter.subject_name,
        subject_digest: &filter.subject_digest,
        trust_domain: &filter.trust_domain,
        integrated_after: filter.integrated_after,
        integrated_before: filter.integrated_before,
    })
    .map_err(|e| Status::invalid_argument(format!("filter: {e}")))
}

/// A page token or cursor: empty is none; anything else must be one this node gave.
fn cursor(field: &str, token: &str) -> Result<Option<Cursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    Cursor::from_token(token).map(Some).ok_or_else(|| {
        Status::invalid_argument(format!(
            "{field} {:?} is not one this node gave",
            token.chars().take(40).collect::<String>()
        ))
    })
}

fn indexed_message(
    cursor: Cursor,
    record: &provmesh_protocol::index::IndexedRecord,
) -> IndexedRecord {
    IndexedRecord {
        cursor: cursor.to_token(),
        trust_domain: record.trust_domain.clone(),
        log_origin: record.log_origin.clone(),
        log_index: record.log_index,
        integrated_time: record.integrated_time,
        kind: record.kind.clone(),
        signer: record.signer.clone(),
        builder_id: record.builder_id.clone().unwrap_or_default(),
        predicate_type: record.predicate_type.clone().unwrap_or_default(),
        subjects: record
            .subjects
            .iter()
            .map(|s| IndexedSubject {
                name: s.name.clone(),
                digest: if s.sha256.is_empty() {
                    String::new()
                } else {
                    format!("sha256:{}", s.sha256)
                },
            })
            .collect(),
    }
}

/// Streams what `pick` makes of the records indexed after `after` (replayed from the
/// store first, when given) and then of each record as it is indexed, until the client
/// goes away or the node stops. A watcher that falls more than
/// [`crate::index::WATCH_QUEUE`] records behind gets `RESOURCE_EXHAUSTED` with the
/// cursor to resume from.
fn watch<T, F>(index: &IndexHandle, after: Option<Cursor>, pick: F) -> WatchStream<T>
where
    T: Send + 'static,
    F: Fn(&IndexEvent) -> Option<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(WATCH_BUFFER);
    // Subscribed before the replay, so that nothing indexed meanwhile is missed; what
    // both see is sent once (by cursor).
    let mut live = index.subscribe();
    let store = Arc::clone(index.store());
    let shutdown = index.shutdown().clone();
    tokio::spawn(async move {
        let mut last = after;
        if after.is_some() {
            loop {
                let store = Arc::clone(&store);
                let from = last;
                let chunk = match tokio::task::spawn_blocking(move || {
                    store.after(from, REPLAY_CHUNK)
                })
                .await
                {
                    Ok(Ok(chunk)) => chunk,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                };
                if chunk.is_empty() {
                    break;
                }
                for (cursor, record, alert) in chunk {
                    last = Some(cursor);
                    let event = IndexEvent {
                        cursor,
                        record,
                        alert,
                    };
                    if let Some(item) = pick(&event)
                        && tx.send(Ok(item)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
        loop {
            let event = tokio::select! {
                event = live.recv() => event,
                () = tx.closed() => return,
                () = shutdown.triggered() => {
                    let _ = tx.send(Err(Status::unavailable("the node is shutting down"))).await;
                    return;
                }
            };
            match event {
                Ok(event) => {
                    if last.is_some_and(|l| event.cursor <= l) {
                        continue;
                    }
                    last = Some(event.cursor);
                    if let Some(item) = pick(&event)
                        && tx.send(Ok(item)).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let resume = last.map(Cursor::to_token).unwrap_or_default();
                    let _ = tx
                        .send(Err(Status::resource_exhausted(format!(
                            "the watch fell {missed} records behind; watch again with after = {resume:?}"
                        ))))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Parses `sha256:<64 hex>` or 64 hex digits (either case).
fn parse_digest(text: &str) -> Result<[u8; 32], Status> {
    let hex_part = match text.split_once(':') {
        Some(("sha256", rest)) => rest,
        Some((algorithm, _)) => {
            return Err(Status::invalid_argument(format!(
                "digest algorithm {:?} is not indexed; give a sha256 digest",
                algorithm.chars().take(32).collect::<String>()
            )));
        }
        None => text,
    };
    let mut digest = [0u8; 32];
    if hex_part.len() != 64 || hex::decode_to_slice(hex_part, &mut digest).is_err() {
        return Err(Status::invalid_argument(format!(
            "{:?} is not a digest: expected sha256: and 64 hex digits",
            text.chars().take(80).collect::<String>()
        )));
    }
    Ok(digest)
}

fn reasons(reasons: &[provmesh_protocol::policy::Reason]) -> Vec<Reason> {
    reasons
        .iter()
        .map(|r| Reason {
            code: r.code().to_owned(),
            message: r.to_string(),
        })
        .collect()
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One record of the answer, before the policy judged it.
struct Found {
    record: Arc<Record>,
    /// The statement as JSON (empty for a signature).
    statement: Vec<u8>,
    trust_domain: TrustDomain,
    origin: String,
    index: u64,
    integrated_time: i64,
    bundle: Vec<u8>,
    witnesses: BTreeSet<TrustDomain>,
    equivocating: bool,
}

impl Found {
    fn facts(&self) -> RecordFacts<'_> {
        RecordFacts {
            log_domain: &self.trust_domain,
            log_origin: &self.origin,
            log_equivocating: self.equivocating,
            signer: &self.record.signer,
            builder_id: self.record.builder_id.as_deref(),
            predicate_type: self.record.predicate_type(),
            integrated_time: u64::try_from(self.integrated_time).unwrap_or(0),
            witnessing_domains: &self.witnesses,
        }
    }

    fn message(self, verdict: &provmesh_protocol::policy::RecordVerdict) -> ProvenanceRecord {
        ProvenanceRecord {
            statement: self.statement,
            signer: self.record.signer.to_string(),
            trust_domain: self.trust_domain.to_string(),
            log_origin: self.origin,
            log_index: self.index,
            integrated_time: self.integrated_time,
            kind: self.record.kind().as_str().to_owned(),
            predicate_type: self.record.predicate_type().unwrap_or_default().to_owned(),
            builder_id: self.record.builder_id.clone().unwrap_or_default(),
            witnessing_domains: self.witnesses.iter().map(ToString::to_string).collect(),
            log_equivocating: self.equivocating,
            bundle: self.bundle,
            verdict: Some(super::v1::Verdict {
                allowed: verdict.allowed,
                reasons: reasons(&verdict.reasons),
            }),
        }
    }
}

impl ProvenanceGrpc {
    /// What the mesh knows of the own log (nothing outside a mesh).
    async fn standing(&self, log: &LogHandle) -> LogStanding {
        match &self.mesh {
            Some(mesh) => mesh
                .standing(log.origin().to_owned())
                .await
                .unwrap_or_default(),
            None => LogStanding::default(),
        }
    }

    /// The own log's records (authority).
    async fn local(&self, digest: [u8; 32]) -> Result<Vec<Found>, Status> {
        let Some(log) = self.log.clone() else {
            return Ok(Vec::new());
        };
        let standing = self.standing(&log).await;
        // A cached answer is served here; only a miss reads the store and checks
        // signatures, off the async threads.
        let records = match cached_answer(&log, &digest, &standing) {
            Some(records) => records,
            None => {
                let (log, standing) = (log.clone(), standing.clone());
                tokio::task::spawn_blocking(move || cached_local_records(&log, &digest, &standing))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?
                    .map_err(|e| Status::unavailable(e.to_string()))?
            }
        };
        Ok(records
            .iter()
            .map(|r| Found {
                record: Arc::clone(&r.record),
                statement: r.statement_json.clone(),
                trust_domain: self.trust_domain.clone(),
                origin: log.origin().to_owned(),
                index: r.index,
                integrated_time: r.integrated_time,
                bundle: r.bundle.clone(),
                witnesses: r.witnesses.clone(),
                equivocating: standing.equivocating,
            })
            .collect())
    }

    /// The other logs' records, over the mesh, each checked.
    async fn remote(&self, digest: [u8; 32]) -> Result<Vec<Found>, Status> {
        let Some(mesh) = &self.mesh else {
            return Ok(Vec::new());
        };
        let answers = mesh
            .lookup(digest)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        tokio::task::spawn_blocking(move || check_remote(answers, digest))
            .await
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// Checks every record of `answers` under its domain's keys.
fn check_remote(answers: RemoteAnswers, digest: [u8; 32]) -> Vec<Found> {
    let now = now_unix();
    let mut found = Vec::new();
    for answer in answers.answers {
        let origin = answer.keys.origin.clone();
        let domain = match PreparedDomain::new(answer.keys) {
            Ok(domain) => domain,
            Err(e) => {
                tracing::warn!(%origin, error = %e, "cannot check the records of this log");
                continue;
            }
        };
        for served in answer.records {
            match domain.check(
                &served.bundle,
                served.attestation.as_deref(),
                digest,
                &answers.witnesses,
                now,
                answers.max_skew_secs,
            ) {
                Ok(checked) => found.push(Found {
                    statement: checked
                        .record
                        .statement
                        .as_ref()
                        .and_then(|s| s.to_json().ok())
                        .unwrap_or_default(),
                    trust_domain: domain.keys().trust_domain.clone(),
                    origin: origin.clone(),
                    index: checked.verified.log_index,
                    integrated_time: checked.verified.integrated_time,
                    record: Arc::new(checked.record),
                    bundle: served.bundle,
                    witnesses: checked.witnesses,
                    equivocating: answer.equivocating,
                }),
                Err(e) => {
                    tracing::warn!(%origin, error = %e, "a record served for a lookup does not check; left out");
                }
            }
        }
    }
    found
}

#[tonic::async_trait]
impl provenance_service_server::ProvenanceService for ProvenanceGrpc {
    type WatchEntriesStream = WatchStream<IndexedRecord>;
    type WatchAlertsStream = WatchStream<IdentityAlert>;

    async fn search_provenance(
        &self,
        request: Request<SearchProvenanceRequest>,
    ) -> Result<Response<SearchProvenanceResponse>, Status> {
        let request = request.into_inner();
        let index = self.index()?;
        let query = search_query(request.filter)?;
        let page_size = match usize::try_from(request.page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "page_size {} is negative",
                    request.page_size
                )));
            }
        };
        let before = cursor("page_token", &request.page_token)?;
        let store = Arc::clone(index.store());
        let page = tokio::task::spawn_blocking(move || store.search(&query, page_size, before))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(SearchProvenanceResponse {
            records: page
                .records
                .iter()
                .map(|(c, r)| indexed_message(*c, r))
                .collect(),
            next_page_token: page.next.map(Cursor::to_token).unwrap_or_default(),
        }))
    }

    async fn watch_entries(
        &self,
        request: Request<WatchEntriesRequest>,
    ) -> Result<Response<Self::WatchEntriesStream>, Status> {
        let request = request.into_inner();
        let index = self.index()?;
        let query = search_query(request.filter)?;
        let after = cursor("after", &request.after)?;
        Ok(Response::new(watch(index, after, move |event| {
            query
                .matches(&event.record)
                .then(|| indexed_message(event.cursor, &event.record))
        })))
    }

    async fn watch_alerts(
        &self,
        request: Request<WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        let index = self.index()?;
        let after = cursor("after", &request.into_inner().after)?;
        Ok(Response::new(watch(index, after, |event| {
            event.alert.as_ref().map(|reason| IdentityAlert {
                record: Some(indexed_message(event.cursor, &event.record)),
                reason: reason.clone(),
            })
        })))
    }

    async fn get_provenance(
        &self,
        request: Request<GetProvenanceRequest>,
    ) -> Result<Response<GetProvenanceResponse>, Status> {
        let request = request.into_inner();
        let digest = parse_digest(&request.digest)?;
        let policy = if request.policy.trim().is_empty() {
            Policy::default()
        } else {
            Policy::from_toml(&request.policy)
                .map_err(|e| Status::invalid_argument(format!("policy: {e}")))?
        };
        let (local, remote) = tokio::join!(self.local(digest), self.remote(digest));
        let mut found = local?;
        found.extend(remote?);
        let verdict = {
            let facts: Vec<RecordFacts<'_>> = found.iter().map(Found::facts).collect();
            policy.judge(&facts, now_unix())
        };
        let records = found
            .into_iter()
            .zip(&verdict.records)
            .map(|(f, v)| f.message(v))
            .collect();
        Ok(Response::new(GetProvenanceResponse {
            digest: format!("sha256:{}", hex::encode(digest)),
            records,
            verdict: Some(super::v1::Verdict {
                allowed: verdict.allowed,
                reasons: reasons(&verdict.reasons),
            }),
        }))
    }
}
