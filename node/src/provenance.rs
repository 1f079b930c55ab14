//! Provenance records as a node serves them: those of its own domain's log (on the
//! authority), and those of other domains' logs, fetched over the mesh and checked.
//!
//! * [`local_records`]: the entries of the domain's log about an artifact, opened and
//!   checked (`provmesh_protocol::provenance::Record`), each with its Sigstore bundle
//!   proven against the log's cosigned checkpoint when the mesh holds one covering it.
//!   The mesh serves them to other nodes (`Lookup`), the gRPC API to consumers.
//! * [`RemoteAnswer`]: what a domain's authority answered over the mesh, with that
//!   domain's keys from its accepted record, so the asker checks every record
//!   (`provmesh_protocol::provenance::PreparedDomain`) before using it.

use std::collections::BTreeSet;
use std::sync::Arc;

use provmesh_protocol::log::SignedCheckpointNote;
use provmesh_protocol::log::entry::API_VERSION;
use provmesh_protocol::mesh::cosignatures::WitnessRoster;
use provmesh_protocol::mesh::wire::FoundRecord;
use provmesh_protocol::provenance::{DomainKeys, Record};
use provmesh_protocol::sigstore_bundle::{self, InclusionProofParts, TlogEntryParts};
use provmesh_protocol::spiffe::TrustDomain;

use crate::log::LogHandle;
use crate::log::service::{EntryRecord, ReadError};

/// The most records of one artifact served from one log.
pub const MAX_RECORDS_PER_LOG: usize = provmesh_protocol::mesh::wire::MAX_LOOKUP_RECORDS;

/// What the mesh knows of a log: its cosigned checkpoint with the witnessing domains,
/// and whether it is proven to have equivocated.
#[derive(Debug, Clone, Default)]
pub struct LogStanding {
    /// The checkpoint served to consumers and the domains that cosigned it.
    pub cosigned: Option<(Arc<SignedCheckpointNote>, BTreeSet<TrustDomain>)>,
    /// Whether verified evidence convicts the log.
    pub equivocating: bool,
}

/// One record of the domain's own log.
#[derive(Debug, Clone)]
pub struct LocalRecord {
    /// The record, checked (shared: answers hand it out without copying it).
    pub record: Arc<Record>,
    /// Its in-toto statement as JSON (empty for a signature), serialized once.
    pub statement_json: Vec<u8>,
    /// The entry's index.
    pub index: u64,
    /// When the log integrated it, Unix seconds.
    pub integrated_time: i64,
    /// Its Sigstore bundle (JSON).
    pub bundle: Vec<u8>,
    /// The proposed entry kept for an attestation.
    pub attestation: Option<Vec<u8>>,
    /// The domains whose witnesses cosigned the bundle's checkpoint.
    pub witnesses: BTreeSet<TrustDomain>,
}

impl LocalRecord {
    /// The record as the mesh serves it.
    pub fn found(&self) -> FoundRecord {
        FoundRecord {
            bundle: self.bundle.clone(),
            attestation: self.attestation.clone(),
        }
    }
}

/// Answers of [`local_records`] already computed, so that a record is opened and checked
/// once, not at every lookup. An answer is keyed by the digest, the newest checkpoint's
/// size and the cosigned checkpoint's size and number of cosigners: when any of them
/// changes, the answer is computed again. Bounded: when full, it starts afresh.
#[derive(Debug, Default)]
pub struct AnswerCache {
    answers: std::sync::Mutex<std::collections::HashMap<AnswerKey, Arc<Vec<LocalRecord>>>>,
}

type AnswerKey = ([u8; 32], u64, u64, usize);

/// The most answers an [`AnswerCache`] holds.
pub const MAX_CACHED_ANSWERS: usize = 16_384;

impl AnswerCache {
    fn get(&self, key: &AnswerKey) -> Option<Arc<Vec<LocalRecord>>> {
        self.answers.lock().ok()?.get(key).cloned()
    }

    fn put(&self, key: AnswerKey, answer: Arc<Vec<LocalRecord>>) {
        if let Ok(mut answers) = self.answers.lock() {
            if answers.len() >= MAX_CACHED_ANSWERS {
                answers.clear();
            }
            answers.insert(key, answer);
        }
    }
}

fn answer_key(log: &LogHandle, sha256: &[u8; 32], standing: &LogStanding) -> AnswerKey {
    let latest = log.latest_checkpoint().map_or(0, |c| c.size);
    let (cosigned, cosigners) = standing
        .cosigned
        .as_ref()
        .map_or((0, 0), |(c, w)| (c.size, w.len()));
    (*sha256, latest, cosigned, cosigners)
}

/// The answer of [`local_records`] already in the log's answer cache, if any: cheap, no
/// blocking work.
pub fn cached_answer(
    log: &LogHandle,
    sha256: &[u8; 32],
    standing: &LogStanding,
) -> Option<Arc<Vec<LocalRecord>>> {
    log.answer_cache().get(&answer_key(log, sha256, standing))
}

/// [`local_records`] through the log's answer cache (blocking on a miss).
pub fn cached_local_records(
    log: &LogHandle,
    sha256: &[u8; 32],
    standing: &LogStanding,
) -> Result<Arc<Vec<LocalRecord>>, ReadError> {
    let cache = log.answer_cache();
    let key = answer_key(log, sha256, standing);
    if let Some(answer) = cache.get(&key) {
        return Ok(answer);
    }
    let answer = Arc::new(local_records(log, sha256, standing)?);
    cache.put(key, Arc::clone(&answer));
    Ok(answer)
}

/// The records of the artifact `sha256` in the domain's log (blocking: reads the store
/// and checks signatures). Entries found by the digest that do not speak of the artifact
/// (found by their payload digest), and entries that do not open, are left out, the
/// latter with a warning.
pub fn local_records(
    log: &LogHandle,
    sha256: &[u8; 32],
    standing: &LogStanding,
) -> Result<Vec<LocalRecord>, ReadError> {
    let cosigned = standing.cosigned.as_ref().map(|(c, _)| Arc::clone(c));
    let entries = log.provenance_entries(sha256, MAX_RECORDS_PER_LOG, cosigned)?;
    let mut records = Vec::with_capacity(entries.len());
    for found in entries {
        match open_local(log, &found.entry, found.attestation, standing) {
            Ok(record) if record.record.covers_sha256(sha256) => records.push(record),
            Ok(_) => {}
            Err(reason) => tracing::warn!(
                index = found.entry.index,
                %reason,
                "log entry left out of a provenance answer"
            ),
        }
    }
    Ok(records)
}

fn open_local(
    log: &LogHandle,
    entry: &EntryRecord,
    attestation: Option<Vec<u8>>,
    standing: &LogStanding,
) -> Result<LocalRecord, String> {
    let record = Record::open(
        &entry.body,
        attestation.as_deref(),
        entry.integrated_time,
        log.code_signing_roots(),
    )
    .map_err(|e| e.to_string())?;
    // The witnesses vouch for the checkpoint the bundle's proof leads to.
    let witnesses = match &standing.cosigned {
        Some((checkpoint, witnesses)) if Arc::ptr_eq(checkpoint, &entry.checkpoint) => {
            witnesses.clone()
        }
        _ => BTreeSet::new(),
    };
    let tlog = TlogEntryParts {
        log_index: entry.index,
        log_key_id: *log.key_id(),
        kind: record.kind(),
        kind_version: API_VERSION.to_owned(),
        integrated_time: entry.integrated_time,
        canonical_body: entry.body.clone(),
        signed_entry_timestamp: entry.signed_entry_timestamp.to_vec(),
        inclusion_proof: InclusionProofParts {
            log_index: entry.index,
            tree_size: entry.checkpoint.size,
            root_hash: entry.checkpoint.root_hash,
            hashes: entry.inclusion_proof.clone(),
            checkpoint_note_text: String::from_utf8_lossy(&entry.checkpoint.note).into_owned(),
        },
    };
    let bundle = record
        .bundle(&tlog)
        .map_err(|e| e.to_string())
        .and_then(|b| sigstore_bundle::to_json(&b).map_err(|e| e.to_string()))?;
    let statement_json = record
        .statement
        .as_ref()
        .and_then(|s| s.to_json().ok())
        .unwrap_or_default();
    Ok(LocalRecord {
        record: Arc::new(record),
        statement_json,
        index: entry.index,
        integrated_time: entry.integrated_time,
        bundle,
        attestation,
        witnesses,
    })
}

/// What one domain's log answered to a lookup over the mesh, unchecked, with the
/// domain's keys to check it with.
#[derive(Debug, Clone)]
pub struct RemoteAnswer {
    /// The domain's keys, from its accepted record.
    pub keys: DomainKeys,
    /// Whether this node holds evidence that the log equivocated.
    pub equivocating: bool,
    /// The records as served.
    pub records: Vec<FoundRecord>,
}

/// The answers of a lookup over the mesh, with the witness keys of the federation.
#[derive(Debug, Clone, Default)]
pub struct RemoteAnswers {
    /// One per log asked that answered.
    pub answers: Vec<RemoteAnswer>,
    /// Whose cosignatures count.
    pub witnesses: WitnessRoster,
    /// How far in the future a cosignature may be dated.
    pub max_skew_secs: u64,
}
