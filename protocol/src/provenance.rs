//! Provenance records: what one log entry says about which artifacts, who signed it and
//! how it was built — opened from the entry and checked.
//!
//! A log entry is a `hashedrekord` (a signature over an artifact digest) or a `dsse`
//! entry (a signed in-toto statement). Its canonical body names the signer's certificate
//! and, for `dsse`, only hashes the envelope; the log keeps the proposed entry with the
//! envelope beside it ([`crate::log::AdmittedEntry::attestation`]). [`Record::open`]
//! reads both and checks everything a consumer relies on:
//!
//! 1. the proposed entry rebuilds exactly the logged canonical body (so the envelope is
//!    the one the log hashed);
//! 2. the signer's certificate chains to the domain's code-signing roots and was valid
//!    at the integrated time, and names a SPIFFE ID;
//! 3. the signature verifies (the same check as the log's admission: the artifact
//!    signature, or the envelope's signature over PAE);
//! 4. the statement of a `dsse` entry is an in-toto statement.
//!
//! Inclusion in the log is proven separately (the Merkle proof and checkpoint travel
//! with the record); the policy ([`crate::policy`]) judges what is read here.

use std::collections::BTreeSet;

use crate::federation::domain_record::{CodeSigningRoot, CtKey};
use crate::intoto::{self, Statement};
use crate::log::entry::{AdmitError, EntryKind, ProposedEntry, ProposedEntryError};
use crate::log::signer_cert::{CodeSigningRoots, SignerCertError};
use crate::mesh::cosignatures::WitnessRoster;
use crate::note::{Note, Verifier};
use crate::sigstore::{DEFAULT_MAX_BUNDLE_LEN, ParsedBundle, TrustedRoot};
use crate::sigstore_bundle::{self, BundleBuildError, TlogEntryParts};
use crate::sigstore_trust::{CaTrust, CtTrust, DomainTrust, LogTrust, trusted_root};
use crate::slsa::Provenance;
use crate::spiffe::SpiffeId;
use crate::spiffe::TrustDomain;
use crate::verify::{Artifact, PreparedTrust, VerifiedBundle, VerifyError};

/// The SLSA provenance v1 predicate type.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// One artifact a record speaks of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its name, if the statement gives one.
    pub name: Option<String>,
    /// Its digests as `(algorithm, lowercase hex)`, e.g. `("sha256", "ab12…")`.
    pub digests: Vec<(String, String)>,
}

/// A log entry opened and checked (see the module documentation).
#[derive(Debug, Clone)]
pub struct Record {
    /// The entry as proposed (its canonical body is the logged one).
    pub entry: ProposedEntry,
    /// The signer's SPIFFE ID, from its certificate.
    pub signer: SpiffeId,
    /// The artifacts it speaks of: the digest of a `hashedrekord`, the subjects of a
    /// statement.
    pub subjects: Vec<Subject>,
    /// The in-toto statement of a `dsse` entry.
    pub statement: Option<Statement>,
    /// The SLSA provenance's `runDetails.builder.id`, if the statement is SLSA v1.
    pub builder_id: Option<String>,
}

/// Why an entry is not a usable record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A `dsse` entry without its kept envelope (logged before the log kept them).
    #[error("the log kept no envelope for this dsse entry")]
    NoAttestation,
    /// The entry or the kept proposed entry does not parse.
    #[error("the entry does not parse: {0}")]
    Entry(#[from] ProposedEntryError),
    /// The kept proposed entry is not the logged one.
    #[error("the kept attestation does not rebuild the logged entry")]
    Mismatch,
    /// The signer's certificate does not chain to the domain's roots at the integrated
    /// time.
    #[error("the signing certificate is not valid for the domain: {0}")]
    Certificate(#[from] SignerCertError),
    /// The certificate names no SPIFFE ID.
    #[error("the signing certificate's identity {0:?} is not a SPIFFE ID")]
    NotSpiffe(String),
    /// The signature does not verify.
    #[error("the signature does not verify: {0}")]
    Signature(#[from] AdmitError),
    /// The envelope's payload is not an in-toto statement.
    #[error("the envelope does not hold an in-toto statement: {0}")]
    Statement(#[from] intoto::EnvelopeStatementError),
}

impl Record {
    /// Opens the entry whose canonical body is `body`, integrated at `integrated_time`,
    /// with the proposed entry the log kept for it (`attestation`, for `dsse`), checking
    /// it against the code-signing `roots` of the log's domain.
    pub fn open(
        body: &[u8],
        attestation: Option<&[u8]>,
        integrated_time: i64,
        roots: &CodeSigningRoots,
    ) -> Result<Record, RecordError> {
        // A hashedrekord's canonical body is its proposed form; a dsse entry needs the
        // envelope the log kept.
        let entry = match attestation {
            Some(proposed) => ProposedEntry::from_json(proposed)?,
            None => ProposedEntry::from_json(body).map_err(|e| match e {
                ProposedEntryError::InvalidField { .. } if body_is_dsse(body) => {
                    RecordError::NoAttestation
                }
                other => RecordError::Entry(other),
            })?,
        };
        if entry.canonical_body() != body {
            return Err(RecordError::Mismatch);
        }
        let certified = roots.check(entry.signer_certificate_der(), integrated_time)?;
        let signer = SpiffeId::parse(&certified.identity)
            .map_err(|_| RecordError::NotSpiffe(certified.identity.clone()))?;
        entry.admit(&certified)?;
        let (subjects, statement) = match entry.message_signature() {
            Some((digest, _)) => (
                vec![Subject {
                    name: None,
                    digests: vec![("sha256".to_owned(), hex::encode(digest))],
                }],
                None,
            ),
            None => {
                let envelope = entry.envelope().ok_or(RecordError::NoAttestation)?;
                // The envelope's signature verified in `admit` above.
                let statement = Statement::from_envelope_unverified(envelope)?;
                let subjects = statement
                    .subject
                    .iter()
                    .map(|s| Subject {
                        name: s.name().filter(|n| !n.is_empty()).map(str::to_owned),
                        digests: s
                            .digest()
                            .map(|set| set.iter().map(|(a, v)| (a.clone(), v.clone())).collect())
                            .unwrap_or_default(),
                    })
                    .collect();
                (subjects, Some(statement))
            }
        };
        let builder_id = statement
            .as_ref()
            .filter(|s| s.predicate_type == SLSA_PROVENANCE_V1)
            .and_then(|s| Provenance::from_statement(s).ok())
            .map(|p| p.builder_id().to_owned());
        Ok(Record {
            entry,
            signer,
            subjects,
            statement,
            builder_id,
        })
    }

    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        self.entry.kind()
    }

    /// The statement's predicate type, for an attestation.
    pub fn predicate_type(&self) -> Option<&str> {
        self.statement.as_ref().map(|s| s.predicate_type.as_str())
    }

    /// Whether the record speaks of the artifact with this SHA-256 digest.
    pub fn covers_sha256(&self, digest: &[u8; 32]) -> bool {
        let hex = hex::encode(digest);
        self.subjects
            .iter()
            .flat_map(|s| &s.digests)
            .any(|(algorithm, value)| algorithm == "sha256" && *value == hex)
    }

    /// The Sigstore bundle (v0.3) of the record, with the log entry `tlog` (its inclusion
    /// proof and checkpoint).
    pub fn bundle(
        &self,
        tlog: &TlogEntryParts,
    ) -> Result<sigstore_protobuf_specs::dev::sigstore::bundle::v1::Bundle, BundleBuildError> {
        let cert = self.entry.signer_certificate_der();
        match (self.entry.message_signature(), self.entry.envelope()) {
            (Some((digest, signature)), _) => {
                sigstore_bundle::message_signature_bundle(cert, digest, signature, tlog)
            }
            (None, Some(envelope)) => sigstore_bundle::dsse_bundle(cert, envelope, tlog),
            (None, None) => Err(BundleBuildError::Empty("record content")),
        }
    }
}

/// Whether a canonical body is of a kind that makes a provenance record (`hashedrekord`
/// or `dsse`); a log also holds entries of other kinds, e.g. the CA's precertificates.
pub fn is_record_kind(body: &[u8]) -> bool {
    entry_kind(body)
        .is_some_and(|k| k == EntryKind::HashedRekord.as_str() || k == EntryKind::Dsse.as_str())
}

fn entry_kind(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: String,
    }
    serde_json::from_slice::<Kind>(body).ok().map(|k| k.kind)
}

/// Whether a canonical body is of kind `dsse` (for a clearer error when its envelope is
/// missing).
fn body_is_dsse(body: &[u8]) -> bool {
    entry_kind(body).is_some_and(|k| k == EntryKind::Dsse.as_str())
}

/// Which federated domains may fetch a domain's records over the mesh: its **read
/// scope**, enforced by the nodes that serve them (the domain's authority). The domain's
/// own nodes always may; a peer not bound to a SPIFFE ID never may.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadScope {
    /// `None`: every federated domain.
    allowed: Option<BTreeSet<TrustDomain>>,
}

impl ReadScope {
    /// Every federated domain may read (the default).
    pub fn everyone() -> ReadScope {
        ReadScope::default()
    }

    /// Only these domains (and the own) may read.
    pub fn only(domains: impl IntoIterator<Item = TrustDomain>) -> ReadScope {
        ReadScope {
            allowed: Some(domains.into_iter().collect()),
        }
    }

    /// Whether a peer bound to an identity of `requester` (`None`: bound to none) may
    /// read the records of `own`.
    pub fn permits(&self, own: &TrustDomain, requester: Option<&TrustDomain>) -> bool {
        match (requester, &self.allowed) {
            (None, _) => false,
            (Some(requester), _) if requester == own => true,
            (Some(_), None) => true,
            (Some(requester), Some(allowed)) => allowed.contains(requester),
        }
    }
}

/// What a node needs to check records of another domain's log: that domain's keys, as
/// its accepted domain record gives them.
#[derive(Debug, Clone)]
pub struct DomainKeys {
    /// The domain.
    pub trust_domain: TrustDomain,
    /// The log's origin.
    pub origin: String,
    /// The log's checkpoint key.
    pub log_key: Verifier,
    /// The domain's code-signing roots.
    pub roots: Vec<CodeSigningRoot>,
    /// The domain's SCT keys.
    pub ct_keys: Vec<CtKey>,
}

impl DomainKeys {
    /// The Sigstore trust of each pair of code-signing root and SCT key (a domain that
    /// rotated keys has several), each with whether both keys' windows contain
    /// `now_unix`; at least one.
    fn trusts_at(
        &self,
        now_unix: Option<u64>,
    ) -> Result<Vec<(DomainTrust, bool)>, FoundRecordError> {
        let Verifier::Ed25519(log_key) = &self.log_key else {
            return Err(FoundRecordError::Trust(
                "only Ed25519 log keys are supported".to_owned(),
            ));
        };
        let name = crate::note::KeyName::new(self.origin.clone())
            .map_err(|e| FoundRecordError::Trust(e.to_string()))?;
        let valid_from = |from: u64| i64::try_from(from).unwrap_or(i64::MAX);
        let mut trusts = Vec::new();
        for root in &self.roots {
            for ct in &self.ct_keys {
                let domain = DomainTrust {
                    log: LogTrust::new(
                        &name,
                        format!("https://{}", self.origin),
                        log_key.public_key(),
                        0,
                    ),
                    ct: CtTrust {
                        spki_der: ct.public_key_spki_der.clone(),
                        valid_from_unix: valid_from(ct.window.valid_from),
                    },
                    ca: CaTrust {
                        chain_der: vec![root.certificate_der.clone()],
                        valid_from_unix: valid_from(root.window.valid_from),
                        uri: format!("https://{}", self.trust_domain),
                    },
                };
                let current = now_unix
                    .is_some_and(|now| root.window.contains(now) && ct.window.contains(now));
                trusts.push((domain, current));
            }
        }
        if trusts.is_empty() {
            return Err(FoundRecordError::Trust(
                "the domain has no code-signing root or no SCT key".to_owned(),
            ));
        }
        Ok(trusts)
    }

    /// The domain's trust in effect at `now_unix`: the newest pair of code-signing root and
    /// SCT key whose windows both contain it, else the newest pair. A Sigstore trusted
    /// root holds one CA and one CT key per log, so bundles certified under a key retired
    /// before `now_unix` do not verify with it.
    pub fn trust_at(&self, now_unix: u64) -> Result<DomainTrust, FoundRecordError> {
        let mut trusts = self.trusts_at(Some(now_unix))?;
        let current = trusts.iter().rposition(|(_, current)| *current);
        let index = current.unwrap_or(trusts.len() - 1);
        Ok(trusts.swap_remove(index).0)
    }
}

/// A Sigstore trusted root for `domains`, each with its trust in effect at `now_unix`
/// ([`DomainKeys::trust_at`]), in the order given.
pub fn trusted_root_of(
    domains: &[DomainKeys],
    now_unix: u64,
) -> Result<TrustedRoot, FoundRecordError> {
    let trusts = domains
        .iter()
        .map(|d| d.trust_at(now_unix))
        .collect::<Result<Vec<_>, _>>()?;
    trusted_root(&trusts).map_err(|e| FoundRecordError::Trust(e.to_string()))
}

/// A record of another domain's log, checked.
#[derive(Debug, Clone)]
pub struct CheckedRecord {
    /// The record.
    pub record: Record,
    /// What its bundle proves.
    pub verified: VerifiedBundle,
    /// The domains whose witnesses cosigned the bundle's checkpoint.
    pub witnesses: BTreeSet<TrustDomain>,
}

/// Why a record served by another node is not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FoundRecordError {
    /// The domain's keys do not make a trusted root.
    #[error("the domain's keys make no trusted root: {0}")]
    Trust(String),
    /// The bundle does not verify under the domain's keys.
    #[error("the bundle does not verify: {0}")]
    Bundle(#[from] VerifyError),
    /// The bundle verifies, but not for this domain's log.
    #[error("the bundle is not of log {0}")]
    OtherLog(String),
    /// The record does not open.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// The verifier-ready trust of a domain: one prepared trusted root per pair of
/// code-signing root and SCT key (a domain rotating keys has several).
#[derive(Debug)]
pub struct PreparedDomain {
    keys: DomainKeys,
    trusts: Vec<PreparedTrust>,
    roots: CodeSigningRoots,
}

impl PreparedDomain {
    /// Prepares `keys` (a Sigstore trusted root per root and SCT key, as
    /// `provmesh trust-root export` would write it).
    pub fn new(keys: DomainKeys) -> Result<PreparedDomain, FoundRecordError> {
        let mut trusts = Vec::new();
        for (domain, _) in keys.trusts_at(None)? {
            let root: TrustedRoot =
                trusted_root(&[domain]).map_err(|e| FoundRecordError::Trust(e.to_string()))?;
            trusts.push(PreparedTrust::new(&root));
        }
        let ders: Vec<&[u8]> = keys
            .roots
            .iter()
            .map(|r| r.certificate_der.as_slice())
            .collect();
        let roots = CodeSigningRoots::from_der(&ders)
            .map_err(|e| FoundRecordError::Trust(e.to_string()))?;
        Ok(PreparedDomain {
            keys,
            trusts,
            roots,
        })
    }

    /// The domain's keys.
    pub fn keys(&self) -> &DomainKeys {
        &self.keys
    }

    /// Checks a record another node served for the artifact `sha256`: its bundle verifies
    /// under this domain's keys for a signer of the domain (log entry, SET, inclusion
    /// proof, checkpoint, certificate chain, SCT, signature, artifact), the record opens
    /// from the logged body and the kept attestation, and the witnesses that cosigned the
    /// bundle's checkpoint are read with `witnesses` (cosignatures no later than
    /// `now_unix + max_skew_secs`).
    pub fn check(
        &self,
        bundle_json: &[u8],
        attestation: Option<&[u8]>,
        sha256: [u8; 32],
        witnesses: &WitnessRoster,
        now_unix: u64,
        max_skew_secs: u64,
    ) -> Result<CheckedRecord, FoundRecordError> {
        let mut last_error = None;
        let mut verified = None;
        for trust in &self.trusts {
            match trust.verify_bundle_in_domain(
                bundle_json,
                Artifact::Digest(sha256),
                &self.keys.trust_domain,
            ) {
                Ok(v) => {
                    verified = Some(v);
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some(verified) = verified else {
            return Err(last_error.map_or_else(
                || FoundRecordError::Trust("no trusted root".to_owned()),
                FoundRecordError::Bundle,
            ));
        };
        // Verified above; read again for the logged body and the checkpoint note.
        let parsed = ParsedBundle::from_json(bundle_json, DEFAULT_MAX_BUNDLE_LEN)
            .map_err(|e| FoundRecordError::Bundle(VerifyError::Parse(e)))?;
        let entry = parsed
            .bundle
            .verification_material
            .as_ref()
            .and_then(|m| m.tlog_entries.first())
            .ok_or_else(|| FoundRecordError::OtherLog(self.keys.origin.clone()))?;
        let record = Record::open(
            &entry.canonicalized_body,
            attestation,
            verified.integrated_time,
            &self.roots,
        )?;
        let checkpoint_witnesses = entry
            .inclusion_proof
            .as_ref()
            .and_then(|p| p.checkpoint.as_ref())
            .and_then(|c| Note::parse(c.envelope.as_bytes()).ok())
            .and_then(|note| witnesses.collect(&note, now_unix, max_skew_secs).ok())
            .map(|found| found.domains().cloned().collect())
            .unwrap_or_default();
        Ok(CheckedRecord {
            record,
            verified,
            witnesses: checkpoint_witnesses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signatures_and_attestations_are_records() {
        assert!(is_record_kind(
            br#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{}}"#
        ));
        assert!(is_record_kind(br#"{"kind":"dsse"}"#));
        assert!(!is_record_kind(br#"{"kind":"provmesh-precert"}"#));
        assert!(!is_record_kind(b"not json"));
        assert!(body_is_dsse(br#"{"kind":"dsse"}"#));
    }

    #[test]
    fn the_read_scope_admits_the_own_and_the_listed_domains() {
        let td = |name: &str| TrustDomain::parse(name).unwrap_or_else(|e| panic!("{e}"));
        let (a, b, c) = (
            td("org-a.example"),
            td("org-b.example"),
            td("org-c.example"),
        );
        let everyone = ReadScope::everyone();
        assert!(everyone.permits(&a, Some(&b)));
        assert!(!everyone.permits(&a, None));
        let only_b = ReadScope::only([b.clone()]);
        assert!(only_b.permits(&a, Some(&a)));
        assert!(only_b.permits(&a, Some(&b)));
        assert!(!only_b.permits(&a, Some(&c)));
        assert!(ReadScope::only([]).permits(&a, Some(&a)));
        assert!(!ReadScope::only([]).permits(&a, Some(&b)));
    }
}
