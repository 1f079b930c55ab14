//! `provmesh.v1.ProvenanceService`: the records of an artifact in every federated
//! domain's log, with the verdict of the caller's policy (`provmesh_protocol::policy`).
//!
//! The domain's own log answers locally on the authority ([`crate::provenance`]); every
//! other log is asked over the mesh (its domain's authority answers), and each record it
//! returns is checked under that domain's accepted keys before it is used: bundle,
//! logged body, kept attestation, witnesses. A record that fails is left out, logged.

use std::collections::BTreeSet;
use std::sync::Arc;

use provmesh_protocol::log::SignedCheckpointNote;
use provmesh_protocol::policy::{Policy, RecordFacts};
use provmesh_protocol::provenance::{PreparedDomain, Record};
use provmesh_protocol::spiffe::TrustDomain;
use tonic::{Request, Response, Status};

use super::v1::{
    GetProvenanceRequest, GetProvenanceResponse, ProvenanceRecord, Reason,
    provenance_service_server,
};
use crate::log::LogHandle;
use crate::mesh::MeshHandle;
use crate::provenance::{AnswerCache, LogStanding, RemoteAnswers, cached_local_records};

/// The `provmesh.v1.ProvenanceService` implementation.
#[derive(Debug, Clone)]
pub struct ProvenanceGrpc {
    log: Option<LogHandle>,
    mesh: Option<MeshHandle>,
    trust_domain: TrustDomain,
    /// The own log's answers, opened and checked once.
    cache: Arc<AnswerCache>,
}

impl ProvenanceGrpc {
    /// The service of a node of `trust_domain`: over its `log` (the authority), and over
    /// the logs of the federation through `mesh`.
    pub fn new(
        log: Option<LogHandle>,
        mesh: Option<MeshHandle>,
        trust_domain: TrustDomain,
    ) -> Self {
        Self {
            log,
            mesh,
            trust_domain,
            cache: Arc::new(AnswerCache::default()),
        }
    }
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
    record: Record,
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
            statement: self
                .record
                .statement
                .as_ref()
                .and_then(|s| s.to_json().ok())
                .unwrap_or_default(),
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
    /// What the mesh knows of the own log.
    async fn standing(&self, log: &LogHandle) -> LogStanding {
        let Some(mesh) = &self.mesh else {
            return LogStanding::default();
        };
        let origin = log.origin().to_owned();
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

    /// The own log's records (authority).
    async fn local(&self, digest: [u8; 32]) -> Result<Vec<Found>, Status> {
        let Some(log) = self.log.clone() else {
            return Ok(Vec::new());
        };
        let standing = self.standing(&log).await;
        let trust_domain = self.trust_domain.clone();
        let cache = Arc::clone(&self.cache);
        tokio::task::spawn_blocking(move || {
            let records = cached_local_records(&log, &digest, &standing, &cache)
                .map_err(|e| Status::unavailable(e.to_string()))?;
            Ok(records
                .iter()
                .map(|r| Found {
                    record: r.record.clone(),
                    trust_domain: trust_domain.clone(),
                    origin: log.origin().to_owned(),
                    index: r.index,
                    integrated_time: r.integrated_time,
                    bundle: r.bundle.clone(),
                    witnesses: r.witnesses.clone(),
                    equivocating: standing.equivocating,
                })
                .collect())
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
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
                    trust_domain: domain.keys().trust_domain.clone(),
                    origin: origin.clone(),
                    index: checked.verified.log_index,
                    integrated_time: checked.verified.integrated_time,
                    record: checked.record,
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
