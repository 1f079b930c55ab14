//! # Offline Sigstore bundle verification
//!
//! This module owns deciding whether a Sigstore bundle (v0.3) proves that an artifact was
//! signed by a given identity, using only a TrustedRoot: no network, no clock. The verified
//! time is the log's integrated time, vouched for by the signed entry timestamp (SET).
//!
//! It is the inverse of [`crate::sigstore_bundle`]: every part that module assembles is
//! checked here, with the building blocks the log and CA use themselves — the log entry
//! kinds ([`ProposedEntry`], [`set_payload`]), Merkle proofs ([`verify_inclusion`]),
//! checkpoint notes ([`Note::verify_with`], what [`crate::checkpoint::open`] checks), the
//! code-signing chain check
//! ([`CodeSigningRoots::check`]) and embedded SCTs ([`embedded_scts`], [`verify_sct`]).
//! What is checked, and in which order, follows sigstore-python 4.5.1's `Verifier`
//! (`sigstore/verify/verifier.py`), quoted beside each step.
//!
//! Logs with Ed25519 keys (provmesh logs, Rekor v2: `logId = SHA-256(origin ‖ 0x0A ‖ 0x01 ‖
//! key)`) and with ECDSA P-256 keys (Rekor v1: `logId = SHA-256(SPKI)`) are accepted, both
//! serving `hashedrekord` and `dsse` 0.0.1 entries with a SET.
//!
//! A verifier of many bundles prepares the TrustedRoot once ([`PreparedTrust::new`]: log
//! keys decoded, CA chains loaded and their signatures checked) and then calls
//! [`PreparedTrust::verify_bundle`] per bundle; [`verify_bundle`] does both for one
//! bundle. Preparing moves no per-bundle check out of the call: every bundle still has its
//! certificate signature, SCT, SET, checkpoint signature, inclusion proof, body and
//! artifact signature checked, and nothing about one bundle is remembered for the next.
//! Signatures are checked with aws-lc-rs (ECDSA P-256, the Ed25519 SET), except the
//! checkpoint's, which [`crate::note`] checks.

use std::fmt;

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ED25519, ParsedPublicKey};
use sha2::{Digest as _, Sha256};
use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{bundle, verification_material};
use sigstore_protobuf_specs::dev::sigstore::common::v1::{
    HashAlgorithm, PublicKeyDetails, TimeRange,
};
use sigstore_protobuf_specs::dev::sigstore::rekor::v1::TransparencyLogEntry;
use sigstore_protobuf_specs::dev::sigstore::trustroot::v1::TransparencyLogInstance;
use thiserror::Error;
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::ca::{
    EmbeddedSctError, OID_FULCIO_ISSUER_V1, OID_FULCIO_ISSUER_V2, SctVerifyError, embedded_scts,
    verify_sct,
};
use crate::checkpoint::{Checkpoint, CheckpointOpenError, CheckpointParseError};
use crate::dsse::{self, DsseVerifier, SignatureRejected};
use crate::intoto::{self, Statement};
use crate::log::entry::{
    API_VERSION, EntryKind, ProposedEntry, ProposedEntryError, dsse_body_matches, set_payload,
};
use crate::log::log_key_id;
use crate::log::signer_cert::{CertifiedSigner, CodeSigningRoots, SignerCertError, UnixTime};
use crate::merkle::{Hash, InclusionError, leaf_hash, verify_inclusion};
use crate::note::{EcdsaP256Verifier, Ed25519Verifier, KeyId, KeyName, Note, Verifier};
use crate::sigstore::{
    BundleError, BundleVersion, DEFAULT_MAX_BUNDLE_LEN, ParsedBundle, TrustedRoot,
};

/// The most inclusion proof hashes accepted: a tree of at most 2^64 leaves has a path of at
/// most 64 hashes.
const MAX_PROOF_HASHES: usize = 64;

/// What the bundle must be about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Artifact<'a> {
    /// The artifact's SHA-256 digest.
    Digest([u8; 32]),
    /// The artifact's bytes (hashed here with SHA-256).
    Bytes(&'a [u8]),
}

impl Artifact<'_> {
    fn sha256(&self) -> [u8; 32] {
        match self {
            Artifact::Digest(digest) => *digest,
            Artifact::Bytes(bytes) => Sha256::digest(bytes).into(),
        }
    }
}

/// Who must have signed: both values are compared exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityPolicy {
    /// The certificate's one subject alternative name (a SPIFFE ID or other URI, or an
    /// e-mail address).
    pub identity: String,
    /// The OIDC issuer the certificate names (Fulcio extension 1.3.6.1.4.1.57264.1.8, or
    /// the deprecated 1.3.6.1.4.1.57264.1.1 when the former is absent).
    pub issuer: String,
}

/// What a bundle that passed every check proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// The signer's identity (the certificate's SAN).
    pub identity: String,
    /// The signer's OIDC issuer.
    pub issuer: String,
    /// When the log integrated the entry, Unix seconds: the verified signing time.
    pub integrated_time: i64,
    /// The entry's index in the log.
    pub log_index: u64,
    /// The log's key ID (`logId.keyId`).
    pub log_key_id: [u8; 32],
}

/// Why a bundle was refused by [`verify_bundle`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The document is not a Sigstore bundle.
    #[error("the bundle does not parse: {0}")]
    Parse(#[source] BundleError),
    /// Not a v0.3 bundle.
    #[error("the bundle is {0:?}; only v0.3 bundles are verified")]
    UnsupportedVersion(BundleVersion),
    /// The verification material is not exactly one leaf certificate.
    #[error(
        "the bundle's verification material must be a single certificate (v0.3), not a \
         public key or a certificate chain"
    )]
    NotOneCertificate,
    /// Not exactly one transparency log entry.
    #[error("the bundle must carry exactly one transparency log entry, it has {0}")]
    TlogEntryCount(usize),
    /// A required part of the log entry is absent or out of range.
    #[error("the bundle's log entry is malformed: {0}")]
    MalformedEntry(&'static str),
    /// The entry kind is not the one of the bundle's content, or not supported.
    #[error(
        "the log entry is {kind:?} version {version:?}; this bundle's content needs a \
         {expected} 0.0.1 entry"
    )]
    UnsupportedEntry {
        /// The entry's kind.
        kind: String,
        /// The entry's version.
        version: String,
        /// The kind the content needs.
        expected: EntryKind,
    },
    /// No tlog of the trusted root has the entry's log ID.
    #[error("the bundle's log {0} is not a transparency log of the trusted root")]
    UnknownLog(String),
    /// The log's key is not valid at the integrated time.
    #[error("the key of log {log} is not valid at the integrated time {}", UnixTime(*.at))]
    LogKeyNotValid {
        /// The log ID, hex.
        log: String,
        /// The integrated time.
        at: i64,
    },
    /// The trusted root's key for the log is not usable.
    #[error("the trusted root's key for log {log} is unusable: {reason}")]
    BadLogKey {
        /// The log ID, hex.
        log: String,
        /// What is wrong.
        reason: String,
    },
    /// The log ID is not the one the log's key and origin give.
    #[error(
        "the log ID {stated} does not match the log's key for origin {origin:?} (expected {computed})"
    )]
    LogKeyIdMismatch {
        /// The checkpoint's origin.
        origin: String,
        /// The bundle's log ID, hex.
        stated: String,
        /// The ID computed from the trusted key, hex.
        computed: String,
    },
    /// The signed entry timestamp does not verify with the log's key.
    #[error(
        "the signed entry timestamp (inclusion promise) does not verify with the key of log \
         {0} over this entry, integrated time and index"
    )]
    BadSet(String),
    /// The inclusion proof does not prove the entry under its root hash.
    #[error("the inclusion proof does not prove the log entry under the stated root: {0}")]
    InclusionProof(#[source] InclusionError),
    /// The checkpoint is not a checkpoint note.
    #[error("the checkpoint is not a checkpoint note: {0}")]
    CheckpointMalformed(String),
    /// The checkpoint carries no signature with the log's key hint.
    #[error("the checkpoint has no signature with the key hint {0} of the bundle's log")]
    CheckpointSignatureMissing(KeyId),
    /// The checkpoint's signature does not verify with the log's key.
    #[error("the checkpoint is not validly signed by the bundle's log: {0}")]
    CheckpointSignature(#[source] CheckpointOpenError),
    /// The checkpoint commits to another tree than the inclusion proof.
    #[error(
        "the checkpoint is for tree size {checkpoint_size} with root {checkpoint_root}, but \
         the inclusion proof is for size {proof_size} with root {proof_root}"
    )]
    CheckpointMismatch {
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// The checkpoint's root, hex.
        checkpoint_root: String,
        /// The proof's size.
        proof_size: u64,
        /// The proof's root, hex.
        proof_root: String,
    },
    /// The trusted root has no certificate authority valid at the integrated time.
    #[error("the trusted root has no certificate authority valid at {}", UnixTime(*.0))]
    NoCertificateAuthority(i64),
    /// The signing certificate does not chain to a trusted CA, or is not a valid
    /// code-signing leaf at the integrated time.
    #[error("the signing certificate is not trusted at the integrated time: {0}")]
    Certificate(#[source] SignerCertError),
    /// The embedded SCTs could not be read.
    #[error("the signing certificate's embedded SCTs are unreadable: {0}")]
    Sct(#[source] EmbeddedSctError),
    /// Not exactly one embedded SCT.
    #[error("the signing certificate must carry exactly one embedded SCT, it has {0}")]
    SctCount(usize),
    /// The SCT's CT log is not in the trusted root.
    #[error("the certificate's SCT is from CT log {0}, which the trusted root does not list")]
    UnknownCtLog(String),
    /// The SCT does not verify.
    #[error("the certificate's SCT does not verify: {0}")]
    SctInvalid(#[source] SctVerifyError),
    /// The certificate's SAN is not the expected identity.
    #[error("the certificate's identity is {found:?}, not {expected:?}")]
    IdentityMismatch {
        /// The policy's identity.
        expected: String,
        /// The certificate's.
        found: String,
    },
    /// The certificate names no OIDC issuer.
    #[error(
        "the certificate has no OIDC issuer extension (1.3.6.1.4.1.57264.1.8 or .1.1), or it \
         is malformed"
    )]
    NoIssuer,
    /// The certificate's OIDC issuer is not the expected one.
    #[error("the certificate's OIDC issuer is {found:?}, not {expected:?}")]
    IssuerMismatch {
        /// The policy's issuer.
        expected: String,
        /// The certificate's.
        found: String,
    },
    /// The message signature's digest is not a SHA-256 digest.
    #[error("the bundle's message digest is not a SHA-256 digest")]
    UnsupportedDigest,
    /// The artifact is not the one the bundle is about.
    #[error("the artifact's SHA-256 digest {found} is not the bundle's {expected}")]
    ArtifactMismatch {
        /// The bundle's digest, hex.
        expected: String,
        /// The artifact's, hex.
        found: String,
    },
    /// No in-toto subject has the artifact's digest.
    #[error("the in-toto statement has no subject with the artifact's SHA-256 digest {0}")]
    SubjectMismatch(String),
    /// The DSSE payload is not an in-toto Statement.
    #[error("the DSSE envelope does not hold an in-toto Statement: {0}")]
    Statement(String),
    /// The DSSE envelope does not have exactly one signature.
    #[error("the bundle's DSSE envelope must have exactly one signature, it has {0}")]
    EnvelopeSignatures(usize),
    /// The signature does not verify with the certificate's key.
    #[error("the {0} does not verify with the signing certificate's key")]
    BadSignature(&'static str),
    /// The logged body is not the entry of the bundle's content and certificate.
    #[error("the log entry's body is not the entry of this bundle's {0}")]
    BodyMismatch(&'static str),
}

/// Verifies a Sigstore bundle against `trust`: that `artifact` was signed by the
/// certificate holder `policy` names, and that the signature was logged.
///
/// The verified time is the entry's integrated time (the SET signs it); the certificate,
/// its CA and the log key must be valid then. No clock is read.
///
/// This prepares `trust` for the one call; to verify many bundles against the same
/// TrustedRoot, prepare it once with [`PreparedTrust::new`] and call
/// [`PreparedTrust::verify_bundle`]: the checks and the result are the same.
pub fn verify_bundle(
    bundle_json: &[u8],
    artifact: Artifact<'_>,
    policy: &IdentityPolicy,
    trust: &TrustedRoot,
) -> Result<VerifiedBundle, VerifyError> {
    PreparedTrust::new(trust).verify_bundle(bundle_json, artifact, policy)
}

/// A TrustedRoot made ready to verify bundles: its log keys decoded, its CA chains loaded
/// (their own signatures checked once, see [`CodeSigningRoots::from_der`]) and its
/// certificates' names and keys extracted.
///
/// Only trust material is prepared: nothing about a bundle is kept, so every call of
/// [`verify_bundle`](Self::verify_bundle) checks every part of its bundle. A trust entry
/// that cannot be used (a malformed key, a chain that does not load) is reported when a
/// bundle needs it, exactly as an unprepared verification would, so preparing never
/// fails. The type is `Send + Sync`: share one across threads.
pub struct PreparedTrust {
    tlogs: Vec<PreparedLog>,
    cas: Vec<PreparedCa>,
    ctlogs: Vec<PreparedCtLog>,
}

impl fmt::Debug for PreparedTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedTrust")
            .field("tlogs", &self.tlogs.len())
            .field("certificate_authorities", &self.cas.len())
            .field("ctlogs", &self.ctlogs.len())
            .finish()
    }
}

/// A `tlogs` entry.
struct PreparedLog {
    /// `logId.keyId` as the trusted root states it.
    key_id: Vec<u8>,
    /// The key's `validFor`.
    valid_for: Option<TimeRange>,
    /// The key, or why it is unusable (reported only to bundles from this log).
    key: Result<LogKey, String>,
}

/// A `certificateAuthorities` entry.
struct PreparedCa {
    valid_for: Option<TimeRange>,
    /// `None` when the chain does not load as code-signing roots: the CA is skipped, so a
    /// leaf only it could have issued fails as issued by no trusted CA.
    roots: Option<CodeSigningRoots>,
    /// Each chain certificate's raw subject and SPKI, in chain order: the SCT signs over
    /// the SPKI of the CA certificate that issued the leaf.
    issuers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A `ctlogs` entry.
struct PreparedCtLog {
    log_id: Option<Vec<u8>>,
    spki: Option<Vec<u8>>,
}

/// The trusted key of a log, decoded.
enum LogKey {
    Ed25519 {
        key: [u8; 32],
        /// The key for the SET, through aws-lc-rs; `None` when `key` is not a point or is
        /// of small order (see [`ed25519_set_key`]): every SET then fails to verify.
        set_key: Option<ParsedPublicKey>,
        /// The checkpoint verifier for the origin the trusted root's `baseUrl` names, if
        /// the log ID binds the key to that origin (see [`origin_candidates`]).
        checkpoint: Option<Verifier>,
    },
    EcdsaP256 {
        spki: Vec<u8>,
        /// The SEC1 point, parsed; `None` when it does not parse (the SET then fails).
        point: Option<ParsedPublicKey>,
        /// The checkpoint verifier for the host the trusted root's `baseUrl` names
        /// (Rekor v1 names its checkpoint key after its host).
        checkpoint: Option<Verifier>,
    },
}

impl PreparedTrust {
    /// Prepares `trust` for verifying bundles. Never fails: unusable entries are reported
    /// by the bundles that need them.
    pub fn new(trust: &TrustedRoot) -> PreparedTrust {
        let tlogs = trust
            .tlogs
            .iter()
            .map(|tlog| {
                let key_id = tlog
                    .log_id
                    .as_ref()
                    .map(|id| id.key_id.clone())
                    .unwrap_or_default();
                PreparedLog {
                    key: trusted_log_key(tlog, &key_id),
                    valid_for: tlog.public_key.as_ref().and_then(|k| k.valid_for),
                    key_id,
                }
            })
            .collect();
        let cas = trust
            .certificate_authorities
            .iter()
            .map(|ca| {
                let chain: Vec<&[u8]> = ca
                    .cert_chain
                    .as_ref()
                    .map(|c| {
                        c.certificates
                            .iter()
                            .map(|c| c.raw_bytes.as_slice())
                            .collect()
                    })
                    .unwrap_or_default();
                let issuers = chain
                    .iter()
                    .filter_map(|der| {
                        let (_, cert) = X509Certificate::from_der(der).ok()?;
                        Some((
                            cert.subject().as_raw().to_vec(),
                            cert.public_key().raw.to_vec(),
                        ))
                    })
                    .collect();
                PreparedCa {
                    valid_for: ca.valid_for,
                    roots: CodeSigningRoots::from_der(&chain).ok(),
                    issuers,
                }
            })
            .collect();
        let ctlogs = trust
            .ctlogs
            .iter()
            .map(|c| PreparedCtLog {
                log_id: c.log_id.as_ref().map(|id| id.key_id.clone()),
                spki: c.public_key.as_ref().and_then(|k| k.raw_bytes.clone()),
            })
            .collect();
        PreparedTrust { tlogs, cas, ctlogs }
    }

    /// Verifies a Sigstore bundle: that `artifact` was signed by the certificate holder
    /// `policy` names, and that the signature was logged. See [`verify_bundle`].
    pub fn verify_bundle(
        &self,
        bundle_json: &[u8],
        artifact: Artifact<'_>,
        policy: &IdentityPolicy,
    ) -> Result<VerifiedBundle, VerifyError> {
        self.verify_bundle_for(bundle_json, artifact, &Signer::Exactly(policy))
    }

    /// Verifies a Sigstore bundle like [`PreparedTrust::verify_bundle`], for any signer
    /// whose certificate names a SPIFFE ID of `trust_domain` (the identity is then read
    /// from the result): what a provenance lookup needs, which asks who signed.
    pub fn verify_bundle_in_domain(
        &self,
        bundle_json: &[u8],
        artifact: Artifact<'_>,
        trust_domain: &crate::spiffe::TrustDomain,
    ) -> Result<VerifiedBundle, VerifyError> {
        self.verify_bundle_for(bundle_json, artifact, &Signer::InDomain(trust_domain))
    }

    fn verify_bundle_for(
        &self,
        bundle_json: &[u8],
        artifact: Artifact<'_>,
        expected: &Signer<'_>,
    ) -> Result<VerifiedBundle, VerifyError> {
        // sigstore-python `Bundle._verify`: "The bundle must have exactly one tlog entry"
        // and, for v0.3, "the signing certificate is the only one present".
        let parsed = ParsedBundle::from_json(bundle_json, DEFAULT_MAX_BUNDLE_LEN)
            .map_err(VerifyError::Parse)?;
        if parsed.version != BundleVersion::V0_3 {
            return Err(VerifyError::UnsupportedVersion(parsed.version));
        }
        let material = parsed
            .bundle
            .verification_material
            .as_ref()
            .ok_or(VerifyError::NotOneCertificate)?;
        let Some(verification_material::Content::Certificate(cert)) = &material.content else {
            return Err(VerifyError::NotOneCertificate);
        };
        let leaf_der = cert.raw_bytes.as_slice();
        let [entry] = material.tlog_entries.as_slice() else {
            return Err(VerifyError::TlogEntryCount(material.tlog_entries.len()));
        };
        let content = parsed
            .bundle
            .content
            .as_ref()
            .ok_or(VerifyError::MalformedEntry("the bundle has no content"))?;
        let expected_kind = match content {
            bundle::Content::MessageSignature(_) => EntryKind::HashedRekord,
            bundle::Content::DsseEnvelope(_) => EntryKind::Dsse,
        };

        // 1. The log entry: its log, SET, inclusion proof and checkpoint.
        let logged = verify_log_entry(entry, expected_kind, self)?;
        let at = logged.integrated_time;

        // 2. The certificate: chain, SCT and identity, at the integrated time. The leaf is
        // parsed here once for its issuer name and OIDC issuer; `CodeSigningRoots::check`
        // parses and judges it on its own (a leaf that does not parse fails there).
        let leaf = X509Certificate::from_der(leaf_der).ok().map(|(_, c)| c);
        // sigstore-python: "1) Verify that the signing certificate is signed by the
        // certificate chain and that the signing certificate was valid at the time of
        // signing."
        let leaf_issuer = leaf.as_ref().map(|c| c.issuer().as_raw());
        let (signer, issuer_spki) = verify_certificate(leaf_der, leaf_issuer, at, self)?;
        // "2) Check that the signing certificate contains a proof of inclusion into a
        // certificate transparency log."
        verify_embedded_sct(leaf_der, issuer_spki, self)?;
        // "(4): verify that the signer's identity matches the policy."
        let issuer = leaf
            .as_ref()
            .and_then(oidc_issuer)
            .ok_or(VerifyError::NoIssuer)?;
        match expected {
            Signer::Exactly(policy) => {
                if signer.identity != policy.identity {
                    return Err(VerifyError::IdentityMismatch {
                        expected: policy.identity.clone(),
                        found: signer.identity,
                    });
                }
                if issuer != policy.issuer {
                    return Err(VerifyError::IssuerMismatch {
                        expected: policy.issuer.clone(),
                        found: issuer,
                    });
                }
            }
            Signer::InDomain(trust_domain) => {
                let in_domain = crate::spiffe::SpiffeId::parse(&signer.identity)
                    .is_ok_and(|id| id.trust_domain() == *trust_domain);
                if !in_domain {
                    return Err(VerifyError::IdentityMismatch {
                        expected: format!("a SPIFFE ID of {trust_domain}"),
                        found: signer.identity,
                    });
                }
            }
        }

        // 3. The content: the logged body is this content's entry, the signature
        // verifies, and the artifact is the signed one.
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &signer.public_key_sec1)
            .map_err(|_| VerifyError::BadSignature("signature"))?;
        let digest = artifact.sha256();
        match content {
            bundle::Content::MessageSignature(message) => {
                verify_message_signature(
                    message,
                    leaf_der,
                    &entry.canonicalized_body,
                    &key,
                    digest,
                )?;
            }
            bundle::Content::DsseEnvelope(_) => {
                verify_dsse(&parsed, leaf_der, &entry.canonicalized_body, &key, digest)?;
            }
        }

        Ok(VerifiedBundle {
            identity: signer.identity,
            issuer,
            integrated_time: at,
            log_index: logged.log_index,
            log_key_id: logged.log_key_id,
        })
    }
}

/// Whom a bundle must be signed by.
enum Signer<'a> {
    /// Exactly this identity and issuer.
    Exactly(&'a IdentityPolicy),
    /// Any SPIFFE ID of this trust domain.
    InDomain(&'a crate::spiffe::TrustDomain),
}

/// The parts of a log entry that verified.
struct LoggedEntry {
    integrated_time: i64,
    log_index: u64,
    log_key_id: [u8; 32],
}

fn verify_log_entry(
    entry: &TransparencyLogEntry,
    expected_kind: EntryKind,
    trust: &PreparedTrust,
) -> Result<LoggedEntry, VerifyError> {
    let kind_version = entry
        .kind_version
        .as_ref()
        .ok_or(VerifyError::MalformedEntry("kindVersion is missing"))?;
    // sigstore-python `_establish_time` takes the integrated time only for
    // "dsse/hashedrekord 0.0.1 types"; the body comparison below needs the same.
    if kind_version.kind != expected_kind.as_str() || kind_version.version != API_VERSION {
        return Err(VerifyError::UnsupportedEntry {
            kind: kind_version.kind.clone(),
            version: kind_version.version.clone(),
            expected: expected_kind,
        });
    }
    let key_id: [u8; 32] = entry
        .log_id
        .as_ref()
        .and_then(|id| id.key_id.as_slice().try_into().ok())
        .ok_or(VerifyError::MalformedEntry(
            "logId.keyId is missing or not 32 bytes",
        ))?;
    let log_index = u64::try_from(entry.log_index)
        .map_err(|_| VerifyError::MalformedEntry("logIndex is negative"))?;
    let at = entry.integrated_time;
    if at <= 0 {
        return Err(VerifyError::MalformedEntry(
            "integratedTime is not a positive Unix time",
        ));
    }
    let body = entry.canonicalized_body.as_slice();
    if body.is_empty() {
        return Err(VerifyError::MalformedEntry("canonicalizedBody is empty"));
    }
    let set = entry
        .inclusion_promise
        .as_ref()
        .map(|p| p.signed_entry_timestamp.as_slice())
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MalformedEntry(
            "inclusionPromise (the signed entry timestamp) is missing",
        ))?;
    let proof = entry
        .inclusion_proof
        .as_ref()
        .ok_or(VerifyError::MalformedEntry("inclusionProof is missing"))?;
    let note_text = proof
        .checkpoint
        .as_ref()
        .map(|c| c.envelope.as_str())
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MalformedEntry(
            "inclusionProof.checkpoint is missing",
        ))?;

    // The log: found by key ID among the trusted root's tlogs, valid at the integrated time.
    let tlog = trust
        .tlogs
        .iter()
        .find(|t| t.key_id == key_id)
        .ok_or_else(|| VerifyError::UnknownLog(hex::encode(key_id)))?;
    let log_hex = hex::encode(key_id);
    let log_key = tlog.key.as_ref().map_err(|reason| VerifyError::BadLogKey {
        log: log_hex.clone(),
        reason: reason.clone(),
    })?;
    if !in_range(tlog.valid_for.as_ref(), at) {
        return Err(VerifyError::LogKeyNotValid { log: log_hex, at });
    }

    // The checkpoint, verified with the log's key under the origin it names.
    let note = Note::parse(note_text.as_bytes())
        .map_err(|e| VerifyError::CheckpointMalformed(e.to_string()))?;
    let checkpoint = Checkpoint::from_note(&note)
        .map_err(|e: CheckpointParseError| VerifyError::CheckpointMalformed(e.to_string()))?;
    let origin = checkpoint.origin();
    let hint = KeyId::from_hash(&key_id);
    // A verifier built for this bundle when the prepared one is not for its key name.
    let built: Verifier;
    let verifier: &Verifier = match log_key {
        LogKey::Ed25519 {
            key,
            checkpoint: prepared,
            ..
        } => {
            // The key ID binds the key to the origin (`log_key_id`, Rekor v2's scheme), so
            // a checkpoint of another log under the same key is refused.
            let name = KeyName::new(origin.to_owned())
                .map_err(|e| VerifyError::CheckpointMalformed(e.to_string()))?;
            let computed = log_key_id(&name, key);
            if computed != key_id {
                return Err(VerifyError::LogKeyIdMismatch {
                    origin: origin.to_owned(),
                    stated: log_hex,
                    computed: hex::encode(computed),
                });
            }
            match prepared {
                Some(prepared) if *prepared.name() == name => prepared,
                _ => {
                    built = Verifier::Ed25519(Ed25519Verifier::new(name, key).map_err(|e| {
                        VerifyError::BadLogKey {
                            log: log_hex.clone(),
                            reason: e.to_string(),
                        }
                    })?);
                    &built
                }
            }
        }
        LogKey::EcdsaP256 {
            spki,
            checkpoint: prepared,
            ..
        } => {
            // Rekor v1 names its checkpoint key after its host, not after the origin
            // line ("rekor.sigstore.dev - <tree ID>"); sigstore-python matches the
            // signature by key hint alone (`sig.sig_hash == key_id[:4]`).
            let name = note
                .signatures()
                .iter()
                .find(|s| s.key_id() == hint)
                .map(|s| s.name())
                .ok_or(VerifyError::CheckpointSignatureMissing(hint))?;
            match prepared {
                Some(prepared) if prepared.name() == name => prepared,
                _ => {
                    built = Verifier::EcdsaP256(
                        EcdsaP256Verifier::from_spki_der(name.clone(), spki).map_err(|e| {
                            VerifyError::BadLogKey {
                                log: log_hex.clone(),
                                reason: e.to_string(),
                            }
                        })?,
                    );
                    &built
                }
            }
        }
    };
    if !note.signatures().iter().any(|s| s.key_id() == hint) {
        return Err(VerifyError::CheckpointSignatureMissing(hint));
    }
    // What `checkpoint::open` checks, on the note already parsed: every line of the log's
    // key verifies (at least one exists). The origin is the checkpoint's own, which the
    // key ID check above bound to the log for Ed25519 logs.
    note.verify_with(verifier)
        .map_err(|e| VerifyError::CheckpointSignature(CheckpointOpenError::Verify(e)))?;

    // The SET: the log's signature over the entry, its integrated time and index.
    // openapi.yaml: "Verify the canonicalized payload and signedEntryTimestamp against
    // rekor's public key".
    let payload = set_payload(body, at, &key_id, log_index);
    let set_ok = match log_key {
        LogKey::Ed25519 { set_key, .. } => set_key
            .as_ref()
            .is_some_and(|k| k.verify_sig(&payload, set).is_ok()),
        LogKey::EcdsaP256 { point, .. } => point
            .as_ref()
            .is_some_and(|k| k.verify_sig(&payload, set).is_ok()),
    };
    if !set_ok {
        return Err(VerifyError::BadSet(log_hex));
    }

    // The inclusion proof. Rekor v1 shards its log: the proof's index is within the
    // active shard while the entry's (and the SET's) is global, so each is used where it
    // belongs, as sigstore-python does.
    let proof_index = u64::try_from(proof.log_index)
        .map_err(|_| VerifyError::MalformedEntry("inclusionProof.logIndex is negative"))?;
    let tree_size = u64::try_from(proof.tree_size)
        .map_err(|_| VerifyError::MalformedEntry("inclusionProof.treeSize is negative"))?;
    let root: Hash = proof
        .root_hash
        .as_slice()
        .try_into()
        .map_err(|_| VerifyError::MalformedEntry("inclusionProof.rootHash is not 32 bytes"))?;
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(VerifyError::MalformedEntry(
            "inclusionProof has more than 64 hashes",
        ));
    }
    let mut hashes: [Hash; MAX_PROOF_HASHES] = [[0; 32]; MAX_PROOF_HASHES];
    for (slot, h) in hashes.iter_mut().zip(&proof.hashes) {
        *slot = h
            .as_slice()
            .try_into()
            .map_err(|_| VerifyError::MalformedEntry("an inclusionProof hash is not 32 bytes"))?;
    }
    let hashes = hashes.get(..proof.hashes.len()).unwrap_or_default();
    verify_inclusion(proof_index, tree_size, &leaf_hash(body), hashes, &root)
        .map_err(VerifyError::InclusionProof)?;
    // interop.md: "python uses `inclusionProof.rootHash/treeSize`, js uses the
    // checkpoint's: keep them equal" — a verifier must require it.
    if checkpoint.size() != tree_size || *checkpoint.root_hash() != root {
        return Err(VerifyError::CheckpointMismatch {
            checkpoint_size: checkpoint.size(),
            checkpoint_root: hex::encode(checkpoint.root_hash()),
            proof_size: tree_size,
            proof_root: hex::encode(root),
        });
    }
    Ok(LoggedEntry {
        integrated_time: at,
        log_index,
        log_key_id: key_id,
    })
}

/// The names a log's checkpoint key may carry, from its trusted root `baseUrl`: the URL
/// without its scheme, then its host.
///
/// sigstore_trustroot.proto, `TransparencyLogInstance.base_url`: "SHOULD match the origin
/// on the log checkpoint [...] MAY be a scheme-less URL." Rekor v1 signs its checkpoints
/// under its host name. A candidate is only a guess made while preparing: a bundle whose
/// key name is another gets a verifier built for it.
fn origin_candidates(base_url: &str) -> impl Iterator<Item = &str> {
    let without_scheme = base_url
        .strip_prefix("https://")
        .or_else(|| base_url.strip_prefix("http://"))
        .unwrap_or(base_url)
        .trim_end_matches('/');
    let host = without_scheme
        .split(['/', ':'])
        .next()
        .unwrap_or(without_scheme);
    std::iter::once(without_scheme).chain((host != without_scheme).then_some(host))
}

/// The tlog's key, by its `keyDetails`, decoded for verifying.
fn trusted_log_key(tlog: &TransparencyLogInstance, key_id: &[u8]) -> Result<LogKey, String> {
    let key = tlog
        .public_key
        .as_ref()
        .ok_or_else(|| "no public key".to_owned())?;
    let spki = key
        .raw_bytes
        .as_deref()
        .ok_or_else(|| "no key bytes".to_owned())?;
    let (rest, parsed) =
        SubjectPublicKeyInfo::from_der(spki).map_err(|e| format!("not an SPKI: {e}"))?;
    if !rest.is_empty() {
        return Err("bytes follow the SPKI".to_owned());
    }
    let point = parsed.subject_public_key.data.as_ref();
    let names = || origin_candidates(&tlog.base_url).filter_map(|c| KeyName::new(c).ok());
    if key.key_details == PublicKeyDetails::PkixEd25519 as i32 {
        let key: [u8; 32] = point
            .try_into()
            .map_err(|_| "the Ed25519 key is not 32 bytes".to_owned())?;
        // The checkpoint verifier for the origin the log ID was computed from, if the
        // base URL names it.
        let checkpoint = names()
            .find(|name| log_key_id(name, &key).as_slice() == key_id)
            .and_then(|name| Ed25519Verifier::new(name, &key).ok())
            .map(Verifier::Ed25519);
        Ok(LogKey::Ed25519 {
            key,
            set_key: ed25519_set_key(&key),
            checkpoint,
        })
    } else if key.key_details == PublicKeyDetails::PkixEcdsaP256Sha256 as i32 {
        // Rekor v1: "LogID ... is the SHA-256 hash of the log's public key" (its SPKI).
        let computed: [u8; 32] = Sha256::digest(spki).into();
        if computed.as_slice() != key_id {
            return Err(format!(
                "the log ID is not SHA-256 of the ECDSA key ({})",
                hex::encode(computed)
            ));
        }
        let checkpoint = names()
            .last()
            .and_then(|name| EcdsaP256Verifier::from_spki_der(name, spki).ok())
            .map(Verifier::EcdsaP256);
        Ok(LogKey::EcdsaP256 {
            spki: spki.to_vec(),
            point: ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point).ok(),
            checkpoint,
        })
    } else {
        Err(format!(
            "key type {} is not supported (Ed25519 and ECDSA P-256 are)",
            key.key_details
        ))
    }
}

/// An Ed25519 log key made ready to verify SETs with aws-lc-rs, or `None` when it is not
/// a valid point or is of small order.
///
/// aws-lc-rs verifies as RFC 8032 §5.1.7 says (S must be below L, cofactorless equation),
/// as Go's `crypto/ed25519` in Rekor does. The strict verification used before also
/// refused small-order public keys, under which signatures can be forged; that property
/// belongs to the trusted key, so it is checked here, once, and such a key verifies
/// nothing.
fn ed25519_set_key(key: &[u8; 32]) -> Option<ParsedPublicKey> {
    let point = ed25519_dalek::VerifyingKey::from_bytes(key).ok()?;
    if point.is_weak() {
        return None;
    }
    ParsedPublicKey::new(&ED25519, key).ok()
}

/// Whether `at` lies in `range` (start inclusive, end inclusive; an absent bound is open).
fn in_range(range: Option<&TimeRange>, at: i64) -> bool {
    let Some(range) = range else {
        return true;
    };
    range.start.as_ref().is_none_or(|s| s.seconds <= at)
        && range.end.as_ref().is_none_or(|e| at <= e.seconds)
}

/// Checks the leaf against every trusted CA valid at `at`; returns the signer and the
/// SPKI of the CA certificate that issued the leaf (the SCT signs over it).
fn verify_certificate<'t>(
    leaf_der: &[u8],
    leaf_issuer: Option<&[u8]>,
    at: i64,
    trust: &'t PreparedTrust,
) -> Result<(CertifiedSigner, &'t [u8]), VerifyError> {
    let mut last_error: Option<SignerCertError> = None;
    for ca in &trust.cas {
        if !in_range(ca.valid_for.as_ref(), at) {
            continue;
        }
        let Some(roots) = &ca.roots else {
            continue;
        };
        match roots.check(leaf_der, at) {
            Ok(signer) => {
                // The issuing CA certificate: the chain member whose subject is the
                // leaf's issuer (`check` verified the leaf's signature with it).
                let issuer_spki = ca
                    .issuers
                    .iter()
                    .find(|(subject, _)| Some(subject.as_slice()) == leaf_issuer)
                    .map(|(_, spki)| spki.as_slice());
                if let Some(issuer_spki) = issuer_spki {
                    return Ok((signer, issuer_spki));
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => VerifyError::Certificate(e),
        None => VerifyError::NoCertificateAuthority(at),
    })
}

/// Exactly one embedded SCT, from a CT log of the trusted root, verifying over the
/// precertificate.
///
/// interop.md (signing certificate): "exactly one embedded SCT"; sigstore-python
/// `verify_sct` refuses a certificate whose SCT log is unknown.
fn verify_embedded_sct(
    leaf_der: &[u8],
    issuer_spki: &[u8],
    trust: &PreparedTrust,
) -> Result<(), VerifyError> {
    let embedded = embedded_scts(leaf_der).map_err(VerifyError::Sct)?;
    let [sct] = embedded.scts.as_slice() else {
        return Err(VerifyError::SctCount(embedded.scts.len()));
    };
    let log_id = sct.log_id();
    let ct_key = trust
        .ctlogs
        .iter()
        .find(|c| c.log_id.as_deref() == Some(log_id.as_slice()))
        .and_then(|c| c.spki.as_deref())
        .ok_or_else(|| VerifyError::UnknownCtLog(hex::encode(log_id)))?;
    verify_sct(sct, ct_key, &embedded.precertificate_tbs_der, issuer_spki)
        .map_err(VerifyError::SctInvalid)
}

/// The OIDC issuer of a Fulcio-profile certificate.
///
/// Fulcio oid-info.md: 1.3.6.1.4.1.57264.1.8 "Issuer (V2)" holds a DER UTF8String;
/// 1.3.6.1.4.1.57264.1.1 "Issuer" (deprecated) holds the issuer's raw bytes. V2 wins.
fn oidc_issuer(cert: &X509Certificate<'_>) -> Option<String> {
    let find = |oid: &[u64]| {
        cert.extensions()
            .iter()
            .find(|e| {
                e.oid
                    .iter()
                    .is_some_and(|arcs| arcs.eq(oid.iter().copied()))
            })
            .map(|e| e.value)
    };
    if let Some(value) = find(OID_FULCIO_ISSUER_V2) {
        let (rest, object) = x509_parser::der_parser::der::parse_der_utf8string(value).ok()?;
        if !rest.is_empty() {
            return None;
        }
        return object.as_str().ok().map(str::to_owned);
    }
    find(OID_FULCIO_ISSUER_V1).and_then(|v| String::from_utf8(v.to_vec()).ok())
}

/// A `hashedrekord` bundle: digest, body and signature.
fn verify_message_signature(
    message: &sigstore_protobuf_specs::dev::sigstore::common::v1::MessageSignature,
    leaf_der: &[u8],
    body: &[u8],
    key: &ParsedPublicKey,
    artifact_digest: [u8; 32],
) -> Result<(), VerifyError> {
    let hash = message
        .message_digest
        .as_ref()
        .ok_or(VerifyError::UnsupportedDigest)?;
    if hash.algorithm != HashAlgorithm::Sha2256 as i32 {
        return Err(VerifyError::UnsupportedDigest);
    }
    let digest: [u8; 32] = hash
        .digest
        .as_slice()
        .try_into()
        .map_err(|_| VerifyError::UnsupportedDigest)?;
    // sigstore-python: "Bundle message digest mismatch".
    if digest != artifact_digest {
        return Err(VerifyError::ArtifactMismatch {
            expected: hex::encode(digest),
            found: hex::encode(artifact_digest),
        });
    }
    // sigstore-python `_validate_hashedrekord_v001_entry_body` rebuilds the entry from
    // the certificate, signature and digest ("transparency log entry is inconsistent with
    // other materials"); the log's own builder gives the canonical bytes.
    let expected =
        ProposedEntry::hashedrekord(digest, message.signature.clone(), leaf_der.to_vec()).map_err(
            |_: ProposedEntryError| VerifyError::BodyMismatch("certificate, digest and signature"),
        )?;
    if expected.canonical_body() != body {
        return Err(VerifyError::BodyMismatch(
            "certificate, digest and signature",
        ));
    }
    // ECDSA over the artifact, checked against its digest (the artifact itself may not
    // be at hand): `import_less_safe` only fails on a length mismatch.
    let prehashed = lc_digest::Digest::import_less_safe(&digest, &lc_digest::SHA256)
        .map_err(|_| VerifyError::BadSignature("message signature"))?;
    key.verify_digest_sig(&prehashed, &message.signature)
        .map_err(|_| VerifyError::BadSignature("message signature"))
}

/// ECDSA P-256 / SHA-256 / ASN.1 DER through aws-lc-rs, for DSSE.
struct P256Verifier<'a>(&'a ParsedPublicKey);

impl DsseVerifier for P256Verifier<'_> {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejected> {
        self.0
            .verify_sig(message, signature)
            .map_err(|_| SignatureRejected)
    }
}

/// A `dsse` bundle: envelope signature, body and in-toto subject.
fn verify_dsse(
    parsed: &ParsedBundle,
    leaf_der: &[u8],
    body: &[u8],
    key: &ParsedPublicKey,
    artifact_digest: [u8; 32],
) -> Result<(), VerifyError> {
    let envelope = parsed
        .dsse_envelope()
        .map_err(|_| VerifyError::EnvelopeSignatures(dsse::MAX_SIGNATURES + 1))?;
    // sigstore_bundle.proto: "During verification a client MUST reject an envelope if
    // the number of signatures is not equal to one."
    if envelope.signatures().len() != 1 {
        return Err(VerifyError::EnvelopeSignatures(envelope.signatures().len()));
    }
    let verified = envelope
        .verify(&[&P256Verifier(key)])
        .map_err(|_| VerifyError::BadSignature("DSSE envelope signature"))?;
    // sigstore-python `_validate_dsse_v001_entry_body`: payloadHash and signatures
    // (signature and PEM verifier) must be those of this envelope and certificate.
    if !dsse_body_matches(&envelope, leaf_der, body).unwrap_or(false) {
        return Err(VerifyError::BodyMismatch("DSSE envelope and certificate"));
    }
    // sigstore-python: "in-toto statement has no subject for digest".
    let statement =
        Statement::from_verified(&verified).map_err(|e| VerifyError::Statement(e.to_string()))?;
    if verified.payload_type() != intoto::PAYLOAD_TYPE {
        return Err(VerifyError::Statement(format!(
            "payload type {:?}",
            verified.payload_type()
        )));
    }
    if !statement.matches_sha256(&artifact_digest) {
        return Err(VerifyError::SubjectMismatch(hex::encode(artifact_digest)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_candidates_are_the_url_without_scheme_then_its_host() {
        fn all(url: &str) -> Vec<&str> {
            origin_candidates(url).collect()
        }
        assert_eq!(all("https://log.org-a.example"), ["log.org-a.example"]);
        assert_eq!(all("https://log.org-a.example/"), ["log.org-a.example"]);
        assert_eq!(
            all("https://example.com/tlog"),
            ["example.com/tlog", "example.com"]
        );
        assert_eq!(
            all("http://rekor.local:3000"),
            ["rekor.local:3000", "rekor.local"]
        );
        // "MAY be a scheme-less URL."
        assert_eq!(
            all("log2025-1.rekor.sigstore.dev"),
            ["log2025-1.rekor.sigstore.dev"]
        );
    }

    #[test]
    fn small_order_log_keys_verify_no_set() {
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(ed25519_set_key(&identity).is_none());
        let valid =
            crate::note::Ed25519Signer::from_seed(KeyName::new("log.example").unwrap(), &[7; 32])
                .public_key();
        assert!(ed25519_set_key(&valid).is_some());
    }

    /// One prepared root serves many threads.
    #[test]
    fn prepared_trust_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<PreparedTrust>();
    }
}
