//! `provmesh.v1.LogService`: the domain log's Rekor v1 operations over gRPC.
//!
//! Handlers only translate between messages and the [`LogHandle`]: every rule about what
//! an entry, a proof or a checkpoint is lives in the handle and in `provmesh_protocol`,
//! shared with the HTTP API, so both faces serve the same bytes. The `.proto` file
//! (`protocol/proto/provmesh/v1/log.proto`) documents every message and the status codes;
//! [`append_status`] and [`read_status`] implement that table:
//!
//! | failure | code |
//! | --- | --- |
//! | malformed request or proposed entry | `INVALID_ARGUMENT` |
//! | certificate not accepted, signature does not verify | `PERMISSION_DENIED` |
//! | no such entry | `NOT_FOUND` |
//! | tree size beyond the newest checkpoint | `OUT_OF_RANGE` |
//! | quota spent, log overloaded | `RESOURCE_EXHAUSTED` + trailer [`RETRY_AFTER_MS`] |
//! | no checkpoint yet, log halted or shutting down | `UNAVAILABLE` |
//! | store failure | `INTERNAL` (details in the node's log only) |
//!
//! `PERMISSION_DENIED` rather than `FAILED_PRECONDITION` for a refused entry: the log's
//! state has nothing to do with it, and no change to it would make the same bytes
//! acceptable — the entry's signer is not one the domain allows to write, or the entry
//! does not prove it comes from that signer. (The HTTP API answers `422` for the same
//! cases.)

use std::sync::Arc;
use std::time::Duration;

use provmesh_protocol::log::SignedCheckpointNote;
use provmesh_protocol::log::quota::QuotaError;
use provmesh_protocol::merkle::tree_hash;
use provmesh_protocol::proto::hash_field;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use super::v1::{
    Checkpoint, ConsistencyProof, CreateEntryRequest, CreateEntryResponse, GetCheckpointRequest,
    GetConsistencyProofRequest, GetEntryRequest, InclusionProof, LogEntry, SearchIndexRequest,
    SearchIndexResponse, get_entry_request, log_service_server,
};
use crate::log::http::MAX_SEARCH_RESULTS;
use crate::log::service::{AppendError, Appended, EntryRecord, LogHandle, ReadError};

/// Trailer of a `RESOURCE_EXHAUSTED` answer: after how many milliseconds a retry may
/// succeed (a decimal integer). gRPC has no standard field for it short of `google.rpc`
/// error details, which this API does not use.
pub const RETRY_AFTER_MS: &str = "provmesh-retry-after-ms";

/// Wait suggested when the log as a whole is overloaded (a spent quota names its own):
/// the sequencer drains a full queue within a few batch delays. Same as the HTTP API's
/// `Retry-After`.
const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The `provmesh.v1.LogService` implementation over a running log (the generated server
/// trait is `v1::log_service_server::LogService`).
#[derive(Debug, Clone)]
pub struct LogGrpc {
    log: LogHandle,
}

impl LogGrpc {
    /// The service over `log`.
    pub fn new(log: LogHandle) -> Self {
        LogGrpc { log }
    }

    /// The newest checkpoint, or `UNAVAILABLE` before the log published one.
    fn published(&self) -> Result<Arc<SignedCheckpointNote>, Status> {
        self.log
            .latest_checkpoint()
            .ok_or_else(|| read_status(ReadError::NoCheckpoint))
    }

    /// The `Checkpoint` message of `checkpoint`.
    fn checkpoint_message(&self, checkpoint: &SignedCheckpointNote) -> Checkpoint {
        Checkpoint {
            origin: self.log.origin().to_owned(),
            size: checkpoint.size,
            root_hash: checkpoint.root_hash.to_vec(),
            signed_note: checkpoint.note.clone(),
            log_id: self.log.key_id().to_vec(),
        }
    }

    /// The `LogEntry` message of `record`: the same values as the Rekor v1 `LogEntry` the
    /// HTTP API serves, in raw bytes rather than hex and base64.
    fn entry_message(&self, record: EntryRecord) -> LogEntry {
        let checkpoint = &record.checkpoint;
        LogEntry {
            uuid: record.leaf_hash.to_vec(),
            log_index: record.index,
            integrated_time: record.integrated_time,
            log_id: self.log.key_id().to_vec(),
            inclusion_proof: Some(InclusionProof {
                log_index: record.index,
                tree_size: checkpoint.size,
                root_hash: checkpoint.root_hash.to_vec(),
                hashes: record.inclusion_proof.iter().map(|h| h.to_vec()).collect(),
                checkpoint: checkpoint.note.clone(),
            }),
            signed_entry_timestamp: record.signed_entry_timestamp.to_vec(),
            canonical_body: record.body,
        }
    }
}

#[tonic::async_trait]
impl log_service_server::LogService for LogGrpc {
    async fn create_entry(
        &self,
        request: Request<CreateEntryRequest>,
    ) -> Result<Response<CreateEntryResponse>, Status> {
        let proposed = request.into_inner().proposed_entry_json;
        let (record, created) = match self.log.append(&proposed).await {
            Ok(Appended::Created(record)) => (record, true),
            Ok(Appended::Duplicate(record)) => (record, false),
            Err(error) => return Err(append_status(error)),
        };
        Ok(Response::new(CreateEntryResponse {
            entry: Some(self.entry_message(record)),
            created,
        }))
    }

    async fn get_entry(
        &self,
        request: Request<GetEntryRequest>,
    ) -> Result<Response<LogEntry>, Status> {
        let found = match request.into_inner().key {
            Some(get_entry_request::Key::LogIndex(index)) => self
                .log
                .entry_by_index(index)
                .map_err(read_status)?
                .ok_or_else(|| {
                    Status::not_found(format!("the log has no entry at index {index}"))
                })?,
            Some(get_entry_request::Key::Uuid(uuid)) => {
                let leaf_hash = hash_field("uuid", &uuid)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                self.log
                    .entry_by_leaf_hash(&leaf_hash)
                    .map_err(read_status)?
                    .ok_or_else(|| {
                        Status::not_found(format!(
                            "the log has no entry with UUID {}",
                            hex::encode(leaf_hash)
                        ))
                    })?
            }
            None => {
                return Err(Status::invalid_argument(
                    "GetEntryRequest names no entry: set `log_index` or `uuid`",
                ));
            }
        };
        Ok(Response::new(self.entry_message(found)))
    }

    async fn get_checkpoint(
        &self,
        _request: Request<GetCheckpointRequest>,
    ) -> Result<Response<Checkpoint>, Status> {
        let checkpoint = self.published()?;
        Ok(Response::new(self.checkpoint_message(&checkpoint)))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<ConsistencyProof>, Status> {
        let request = request.into_inner();
        // Taken first: the proof below is made against a checkpoint at least this new, so
        // `last_size` checked against this one is in every later tree too.
        let checkpoint = self.published()?;
        let first = request.first_size;
        let last = request.last_size.unwrap_or(checkpoint.size);
        if last > checkpoint.size {
            return Err(Status::out_of_range(format!(
                "last_size {last} is beyond the newest checkpoint, of size {}",
                checkpoint.size
            )));
        }
        if first > last {
            return Err(Status::invalid_argument(format!(
                "first_size {first} is larger than last_size {last}"
            )));
        }
        let hashes = self
            .log
            .consistency_proof(first, last)
            .map_err(read_status)?;
        let root_hash = if last == checkpoint.size {
            checkpoint.root_hash
        } else {
            tree_hash(last, self.log.store()).map_err(|e| read_status(ReadError::from(e)))?
        };
        let old_subtree = if first.is_power_of_two() && first < last {
            tree_hash(first, self.log.store())
                .map_err(|e| read_status(ReadError::from(e)))?
                .to_vec()
        } else {
            Vec::new()
        };
        Ok(Response::new(ConsistencyProof {
            first_size: first,
            last_size: last,
            root_hash: root_hash.to_vec(),
            hashes: hashes.iter().map(|h| h.to_vec()).collect(),
            checkpoint: Some(self.checkpoint_message(&checkpoint)),
            old_subtree,
        }))
    }

    async fn search_index(
        &self,
        request: Request<SearchIndexRequest>,
    ) -> Result<Response<SearchIndexResponse>, Status> {
        let request = request.into_inner();
        let digest = hash_field("sha256", &request.sha256)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let limit = match usize::try_from(request.limit) {
            Ok(0) | Err(_) => MAX_SEARCH_RESULTS,
            Ok(limit) => limit.min(MAX_SEARCH_RESULTS),
        };
        // One more than asked tells whether the list was cut short.
        let mut found = self.log.search(&digest, limit + 1).map_err(read_status)?;
        let truncated = found.len() > limit;
        found.truncate(limit);
        Ok(Response::new(SearchIndexResponse {
            uuids: found.iter().map(|h| h.to_vec()).collect(),
            truncated,
        }))
    }
}

/// The status of a failed append (see the module's table).
pub fn append_status(error: AppendError) -> Status {
    match error {
        AppendError::Malformed(e) => Status::invalid_argument(e.to_string()),
        e @ (AppendError::Certificate(_) | AppendError::Rejected(_)) => {
            Status::permission_denied(e.to_string())
        }
        AppendError::Quota(e) => {
            let wait = match &e {
                QuotaError::Exhausted { retry_after_ms, .. } => {
                    Duration::from_millis(*retry_after_ms)
                }
                _ => OVERLOAD_RETRY_AFTER,
            };
            resource_exhausted(e.to_string(), wait)
        }
        e @ AppendError::Overloaded => resource_exhausted(e.to_string(), OVERLOAD_RETRY_AFTER),
        AppendError::Unavailable(reason) => {
            Status::unavailable(format!("the log is not accepting entries: {reason}"))
        }
        AppendError::Store(e) => internal("the log store failed", &e),
    }
}

/// The status of a failed read (see the module's table).
pub fn read_status(error: ReadError) -> Status {
    match error {
        ReadError::BadRequest(message) => Status::invalid_argument(message),
        e @ ReadError::NoCheckpoint => Status::unavailable(e.to_string()),
        ReadError::Store(e) => internal("reading the log store failed", &e),
    }
}

/// `RESOURCE_EXHAUSTED` with the [`RETRY_AFTER_MS`] trailer.
fn resource_exhausted(message: String, wait: Duration) -> Status {
    let mut status = Status::resource_exhausted(message);
    // At least one millisecond: zero would invite an immediate retry storm.
    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    status
        .metadata_mut()
        .insert(RETRY_AFTER_MS, MetadataValue::from(millis));
    status
}

/// A store failure: the details go to the node's log, the client learns only that the
/// fault is the server's.
fn internal(what: &str, error: &dyn std::fmt::Display) -> Status {
    tracing::error!(%error, "log gRPC API: {what}");
    Status::internal(format!(
        "internal error: {what}; the log operator has the details"
    ))
}

#[cfg(test)]
mod tests {
    use provmesh_protocol::log::entry::ProposedEntryError;
    use tonic::Code;

    use super::*;

    #[test]
    fn append_errors_map_to_the_documented_codes() {
        let malformed = append_status(AppendError::Malformed(ProposedEntryError::UnknownKind(
            "rekord".into(),
        )));
        assert_eq!(malformed.code(), Code::InvalidArgument);
        assert!(malformed.message().contains("rekord"), "{malformed:?}");

        let quota = append_status(AppendError::Quota(QuotaError::Exhausted {
            identity: "spiffe://org-a.example/build".into(),
            retry_after_ms: 250,
        }));
        assert_eq!(quota.code(), Code::ResourceExhausted);
        assert_eq!(quota.metadata().get(RETRY_AFTER_MS).unwrap(), "250");
        assert!(quota.message().contains("spiffe://org-a.example/build"));

        let overloaded = append_status(AppendError::Overloaded);
        assert_eq!(overloaded.code(), Code::ResourceExhausted);
        assert_eq!(overloaded.metadata().get(RETRY_AFTER_MS).unwrap(), "1000");

        let halted = append_status(AppendError::Unavailable("the store failed".into()));
        assert_eq!(halted.code(), Code::Unavailable);
        assert!(halted.message().contains("the store failed"));
    }

    #[test]
    fn read_errors_map_to_the_documented_codes() {
        assert_eq!(
            read_status(ReadError::BadRequest("no".into())).code(),
            Code::InvalidArgument
        );
        assert_eq!(
            read_status(ReadError::NoCheckpoint).code(),
            Code::Unavailable
        );
    }
}
