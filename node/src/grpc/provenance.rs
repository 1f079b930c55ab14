//! `provmesh.v1.ProvenanceService` on the authority: the records of an artifact in the
//! domain's own log, each opened and checked (`provmesh_protocol::provenance`), with its
//! Sigstore bundle proven against the log's cosigned checkpoint when the mesh holds one,
//! and the verdict of the caller's policy (`provmesh_protocol::policy`).
//!
//! Records of other domains' logs are not answered here yet.

use std::collections::BTreeSet;
use std::sync::Arc;

use provmesh_protocol::log::SignedCheckpointNote;
use provmesh_protocol::log::entry::API_VERSION;
use provmesh_protocol::policy::{Policy, RecordFacts};
use provmesh_protocol::provenance::Record;
use provmesh_protocol::sigstore_bundle::{self, InclusionProofParts, TlogEntryParts};
use provmesh_protocol::spiffe::TrustDomain;
use tonic::{Request, Response, Status};

use super::v1::{
    GetProvenanceRequest, GetProvenanceResponse, ProvenanceRecord, Reason,
    provenance_service_server,
};
use crate::log::LogHandle;
use crate::log::service::EntryRecord;
use crate::mesh::MeshHandle;

/// The most records one answer carries.
pub const MAX_RECORDS: usize = 256;

/// The `provmesh.v1.ProvenanceService` implementation over the domain's log.
#[derive(Debug, Clone)]
pub struct ProvenanceGrpc {
    log: LogHandle,
    mesh: Option<MeshHandle>,
    trust_domain: TrustDomain,
}

impl ProvenanceGrpc {
    /// The service over `log`, the log of `trust_domain`, with the cosigned checkpoints
    /// and evidence of `mesh`.
    pub fn new(log: LogHandle, mesh: Option<MeshHandle>, trust_domain: TrustDomain) -> Self {
        Self {
            log,
            mesh,
            trust_domain,
        }
    }
}

/// Parses `sha256:<64 hex>` or 64 hex digits (either case).
fn parse_digest(text: &str) -> Result<[u8; 32], Status> {
    let hex_part = match text.split_once(':') {
        Some(("sha256", rest)) => rest,
        Some((algorithm, _)) => {
            return Err(Status::invalid_argument(format!(
                "digest algorithm {algorithm:?} is not indexed; give a sha256 digest"
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

fn verdict_message(verdict: &provmesh_protocol::policy::RecordVerdict) -> super::v1::Verdict {
    super::v1::Verdict {
        allowed: verdict.allowed,
        reasons: reasons(&verdict.reasons),
    }
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

/// What the mesh knows of the domain's own log: its cosigned checkpoint with the
/// witnessing domains, and whether it is proven to have equivocated.
struct LogStanding {
    cosigned: Option<(Arc<SignedCheckpointNote>, BTreeSet<TrustDomain>)>,
    equivocating: bool,
}

impl ProvenanceGrpc {
    async fn standing(&self) -> LogStanding {
        let Some(mesh) = &self.mesh else {
            return LogStanding {
                cosigned: None,
                equivocating: false,
            };
        };
        let origin = self.log.origin().to_owned();
        let cosigned = match mesh.checkpoint(origin.clone()).await {
            Ok(Some(answer)) => answer.root_hash.as_slice().try_into().ok().map(|root| {
                let witnesses = answer
                    .cosignatures
                    .iter()
                    .filter_map(|c| TrustDomain::parse(&c.trust_domain).ok())
                    .collect();
                let note = SignedCheckpointNote {
                    size: answer.size,
                    root_hash: root,
                    note: answer.checkpoint,
                };
                (Arc::new(note), witnesses)
            }),
            _ => None,
        };
        let equivocating = match mesh.status().await {
            Ok(status) => status
                .logs
                .iter()
                .any(|l| l.origin == origin && l.equivocating),
            Err(_) => false,
        };
        LogStanding {
            cosigned,
            equivocating,
        }
    }

    /// The record of one entry with its message (verdict still unset) and witnessing
    /// domains, or why it is left out.
    fn open_entry(
        &self,
        entry: &EntryRecord,
        attestation: Option<&[u8]>,
        standing: &LogStanding,
    ) -> Result<Opened, String> {
        let record = Record::open(
            &entry.body,
            attestation,
            entry.integrated_time,
            self.log.code_signing_roots(),
        )
        .map_err(|e| e.to_string())?;
        // The witnesses vouch for the checkpoint the bundle's proof leads to.
        let witnesses: BTreeSet<TrustDomain> = match &standing.cosigned {
            Some((checkpoint, witnesses)) if Arc::ptr_eq(checkpoint, &entry.checkpoint) => {
                witnesses.clone()
            }
            _ => BTreeSet::new(),
        };
        let tlog = TlogEntryParts {
            log_index: entry.index,
            log_key_id: *self.log.key_id(),
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
        let message = ProvenanceRecord {
            bundle,
            statement: record
                .statement
                .as_ref()
                .and_then(|s| s.to_json().ok())
                .unwrap_or_default(),
            signer: record.signer.to_string(),
            trust_domain: self.trust_domain.to_string(),
            log_origin: self.log.origin().to_owned(),
            log_index: entry.index,
            integrated_time: entry.integrated_time,
            kind: record.kind().as_str().to_owned(),
            predicate_type: record.predicate_type().unwrap_or_default().to_owned(),
            builder_id: record.builder_id.clone().unwrap_or_default(),
            witnessing_domains: witnesses.iter().map(ToString::to_string).collect(),
            log_equivocating: standing.equivocating,
            verdict: None,
        };
        Ok(Opened {
            message,
            record,
            witnesses,
        })
    }
}

/// One entry opened for an answer.
struct Opened {
    message: ProvenanceRecord,
    record: Record,
    witnesses: BTreeSet<TrustDomain>,
}

#[tonic::async_trait]
impl provenance_service_server::ProvenanceService for ProvenanceGrpc {
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
        let standing = self.standing().await;
        let cosigned = standing.cosigned.as_ref().map(|(c, _)| Arc::clone(c));
        let log = self.log.clone();
        let entries = tokio::task::spawn_blocking(move || {
            log.provenance_entries(&digest, MAX_RECORDS, cosigned)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut opened = Vec::with_capacity(entries.len());
        for found in &entries {
            let entry = &found.entry;
            match self.open_entry(entry, found.attestation.as_deref(), &standing) {
                // An entry found by the digest's search key that does not speak of the
                // artifact (found by its payload digest) is not a record of it.
                Ok(found) if found.record.covers_sha256(&digest) => opened.push(found),
                Ok(_) => {}
                Err(reason) => {
                    tracing::warn!(index = entry.index, %reason, "log entry left out of a provenance answer");
                }
            }
        }
        let facts: Vec<RecordFacts<'_>> = opened
            .iter()
            .map(|o| RecordFacts {
                log_domain: &self.trust_domain,
                log_origin: self.log.origin(),
                log_equivocating: standing.equivocating,
                signer: &o.record.signer,
                builder_id: o.record.builder_id.as_deref(),
                predicate_type: o.record.predicate_type(),
                integrated_time: u64::try_from(o.message.integrated_time).unwrap_or(0),
                witnessing_domains: &o.witnesses,
            })
            .collect();
        let verdict = policy.judge(&facts, now_unix());
        drop(facts);
        let records = opened
            .into_iter()
            .zip(&verdict.records)
            .map(|(o, record_verdict)| ProvenanceRecord {
                verdict: Some(verdict_message(record_verdict)),
                ..o.message
            })
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
