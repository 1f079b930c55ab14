//! # Sigstore bundles built from a domain log's entry
//!
//! This module owns assembling the Sigstore bundle (v0.3,
//! `application/vnd.dev.sigstore.bundle.v0.3+json`) that a signer hands out next to its
//! artifact, from the signer's certificate, its signature (or DSSE envelope) and what the
//! domain log returned when the entry was appended ([`TlogEntryParts`]), and writing it as
//! JSON that every stock verifier reads ([`to_json`]).
//!
//! What the bundle must contain is measured against sigstore-python 4.5.1 and
//! @sigstore/verify 3.x (the project's interop notes, "interop.md" below) and quoted beside
//! the code. Building a bundle checks that the parts belong together — the log entry is the
//! one for this signature, the inclusion proof proves it under the checkpoint, the
//! checkpoint is signed with the bundle's log key ID — because a bundle that fails any of
//! these is refused by every verifier, and the error here says which part is wrong. No
//! signature is verified here (no key is at hand): that is the verifier's job.
//!
//! The message types are those of [`crate::sigstore`] (`sigstore_protobuf_specs`), whose
//! protobuf-JSON encoder omits fields holding their default value. sigstore-python's parser
//! (`sigstore_models`, pydantic in strict mode) *requires* several fields that are zero or
//! empty for the first entries of a log, so [`to_json`] writes them explicitly.

use serde_json::Value;
use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{
    Bundle, VerificationMaterial, bundle, verification_material,
};
use sigstore_protobuf_specs::dev::sigstore::common::v1::{
    HashAlgorithm, HashOutput, LogId, MessageSignature, X509Certificate,
};
use sigstore_protobuf_specs::dev::sigstore::rekor::v1::{
    Checkpoint as CheckpointMessage, InclusionPromise, InclusionProof, KindVersion,
    TransparencyLogEntry,
};
use sigstore_protobuf_specs::io::intoto;
use thiserror::Error;

use crate::checkpoint::{Checkpoint, CheckpointParseError};
use crate::dsse;
use crate::intoto as intoto_statement;
use crate::log::MAX_ENTRY_BODY_BYTES;
use crate::log::entry::{
    API_VERSION, EntryKind, ProposedEntry, ProposedEntryError, dsse_body_matches,
};
use crate::log::signer_cert::MAX_CERTIFICATE_DER_LEN;
use crate::merkle::{Hash, InclusionError, leaf_hash, verify_inclusion};
use crate::note::{KeyId, Note, NoteParseError};
use crate::sigstore::{BUNDLE_MEDIA_TYPE_V0_3, SerializeError};

/// The longest signed entry timestamp accepted, in bytes. An Ed25519 SET is 64 bytes and
/// a DER ECDSA P-384 one at most 104; the bound only stops absurd inputs.
pub const MAX_SIGNED_ENTRY_TIMESTAMP_LEN: usize = 512;

/// The longest message signature accepted, in bytes (a DER ECDSA P-256 signature is at
/// most 72).
pub const MAX_MESSAGE_SIGNATURE_LEN: usize = 512;

/// One entry of a domain log as the log returned it on append: what a bundle's `tlogEntries`
/// member is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogEntryParts {
    /// The entry's index in the log.
    pub log_index: u64,
    /// The log's key ID ([`crate::log::log_key_id`]), also the key hint of its checkpoint
    /// signatures and the `logId.keyId` of the trusted root.
    pub log_key_id: [u8; 32],
    /// The entry kind: `hashedrekord` for a message signature, `dsse` for an envelope.
    pub kind: EntryKind,
    /// The kind's version; provmesh logs only [`API_VERSION`] (`0.0.1`).
    pub kind_version: String,
    /// When the log integrated the entry, Unix seconds.
    pub integrated_time: i64,
    /// The canonical body the log stored (the Merkle leaf).
    pub canonical_body: Vec<u8>,
    /// The signed entry timestamp: the log key's signature over
    /// [`crate::log::entry::set_payload`] of the entry.
    pub signed_entry_timestamp: Vec<u8>,
    /// The entry's inclusion proof under a signed checkpoint.
    pub inclusion_proof: InclusionProofParts,
}

/// An inclusion proof with the signed checkpoint it leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProofParts {
    /// The index of the proven entry (the entry's `log_index`).
    pub log_index: u64,
    /// The size of the tree the proof is for: the checkpoint's size.
    pub tree_size: u64,
    /// The root of that tree: the checkpoint's root hash.
    pub root_hash: Hash,
    /// The audit path, leaf to root (RFC 6962).
    pub hashes: Vec<Hash>,
    /// The whole signed checkpoint note (body, blank line, signature lines).
    pub checkpoint_note_text: String,
}

/// Why a bundle could not be built from its parts.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BundleBuildError {
    /// A required input is empty.
    #[error("the {0} is empty")]
    Empty(&'static str),
    /// An input is longer than its bound.
    #[error("the {what} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An index or size does not fit the bundle's `int64` field.
    #[error("the {what} {value} does not fit a protobuf int64")]
    OutOfRange {
        /// Which number.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// The integrated time is zero or negative, so the bundle would carry no verified time.
    #[error(
        "the integrated time {0} is not a positive Unix time; without it verifiers find no \
         verified time for the signature"
    )]
    NoIntegratedTime(i64),
    /// The kind version is not one a verifier takes an integrated time from.
    #[error("log entry version {0:?} is not supported; provmesh bundles carry 0.0.1 entries")]
    UnsupportedKindVersion(String),
    /// The entry is of the other kind than the bundle's content.
    #[error("the log entry is a {found} entry, but this bundle needs a {expected} entry")]
    WrongKind {
        /// The kind the content needs.
        expected: EntryKind,
        /// The kind given.
        found: EntryKind,
    },
    /// The proof is for another entry than the one given.
    #[error("the inclusion proof is for entry {proof}, not for the log entry {entry}")]
    ProofIndexMismatch {
        /// The entry's index.
        entry: u64,
        /// The proof's index.
        proof: u64,
    },
    /// The proof does not lead from the canonical body to the root hash.
    #[error("the inclusion proof does not prove the canonical body under the root hash: {0}")]
    InclusionProof(#[source] InclusionError),
    /// The checkpoint is not a signed note.
    #[error("the checkpoint is not a signed note: {0}")]
    CheckpointNote(#[source] NoteParseError),
    /// The checkpoint note's text is not a checkpoint.
    #[error("the checkpoint note's text is not a checkpoint: {0}")]
    CheckpointBody(#[source] CheckpointParseError),
    /// The checkpoint commits to another tree than the proof.
    #[error(
        "the checkpoint is for tree size {checkpoint_size} with root {checkpoint_root}, but \
         the inclusion proof is for size {proof_size} with root {proof_root}"
    )]
    CheckpointMismatch {
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// The checkpoint's root, hex.
        checkpoint_root: String,
        /// The proof's tree size.
        proof_size: u64,
        /// The proof's root, hex.
        proof_root: String,
    },
    /// No checkpoint signature carries the log key ID's key hint.
    #[error(
        "no signature on the checkpoint has the key hint {expected} of log key ID {log_key_id}; \
         verifiers look the log's signature up by it"
    )]
    CheckpointKeyHint {
        /// The key hint expected, 8 hex digits.
        expected: KeyId,
        /// The log key ID, hex.
        log_key_id: String,
    },
    /// The DSSE envelope's payload is not an in-toto Statement.
    #[error(
        "the DSSE envelope's payload type is {0:?}; Sigstore verifiers expect \
         application/vnd.in-toto+json"
    )]
    PayloadType(String),
    /// The DSSE envelope does not have exactly one signature.
    #[error("a bundle's DSSE envelope must have exactly one signature, this one has {0}")]
    EnvelopeSignatures(usize),
    /// The content cannot be an entry of the log (empty signature, certificate too long…).
    #[error("the signature and certificate do not make a log entry: {0}")]
    Entry(#[source] ProposedEntryError),
    /// The canonical body is not the entry of this signature, certificate and content.
    #[error("the log entry is not the entry of this {0}")]
    BodyMismatch(&'static str),
}

/// A bundle for a signature over an artifact known by its SHA-256 digest (a
/// `hashedrekord` log entry): `signature_der` is the ASN.1 DER ECDSA signature by the key
/// of the leaf certificate `cert_der`.
///
/// sigstore_bundle.proto: a v0.3 bundle carries "a single X.509 certificate" as
/// `verificationMaterial.certificate`; sigstore-python reads the signing certificate from
/// there for v0.3 ("For "v3" bundles, the signing certificate is the only one present").
/// `messageSignature.messageDigest` is set: sigstore-python compares it with the
/// artifact's digest ("Bundle message digest mismatch").
pub fn message_signature_bundle(
    cert_der: &[u8],
    artifact_digest: [u8; 32],
    signature_der: &[u8],
    tlog: &TlogEntryParts,
) -> Result<Bundle, BundleBuildError> {
    check_certificate(cert_der)?;
    check_len(
        "message signature",
        signature_der.len(),
        MAX_MESSAGE_SIGNATURE_LEN,
    )?;
    check_kind(tlog, EntryKind::HashedRekord)?;
    // sigstore-python `_validate_hashedrekord_v001_entry_body` rebuilds the entry from the
    // certificate, signature and digest and refuses the bundle if the logged one differs
    // ("transparency log entry is inconsistent with other materials"). The log builds its
    // canonical body with the same code as here, so the bytes must be equal.
    let expected =
        ProposedEntry::hashedrekord(artifact_digest, signature_der.to_vec(), cert_der.to_vec())
            .map_err(BundleBuildError::Entry)?;
    if expected.canonical_body() != tlog.canonical_body.as_slice() {
        return Err(BundleBuildError::BodyMismatch(
            "certificate, artifact digest and signature",
        ));
    }
    let entry = tlog_entry(tlog)?;
    Ok(Bundle {
        media_type: BUNDLE_MEDIA_TYPE_V0_3.to_owned(),
        verification_material: Some(verification(cert_der, entry)),
        content: Some(bundle::Content::MessageSignature(MessageSignature {
            message_digest: Some(HashOutput {
                algorithm: HashAlgorithm::Sha2256 as i32,
                digest: artifact_digest.to_vec(),
            }),
            signature: signature_der.to_vec(),
        })),
    })
}

/// A bundle for a DSSE envelope (a `dsse` log entry) signed by the key of the leaf
/// certificate `cert_der`.
///
/// sigstore_bundle.proto: "DSSE envelopes in a bundle MUST have exactly one signature."
/// interop.md: "DSSE: exactly one signature; payloadType `application/vnd.in-toto+json`"
/// (the sigstore-python CLI: "expected JSON payload for DSSE, got <type>"), and "For
/// attestations log **dsse/0.0.1 with a SET**: both verifiers accept it".
pub fn dsse_bundle(
    cert_der: &[u8],
    envelope: &dsse::Envelope,
    tlog: &TlogEntryParts,
) -> Result<Bundle, BundleBuildError> {
    check_certificate(cert_der)?;
    if envelope.payload_type() != intoto_statement::PAYLOAD_TYPE {
        return Err(BundleBuildError::PayloadType(
            envelope.payload_type().to_owned(),
        ));
    }
    let [signature] = envelope.signatures() else {
        return Err(BundleBuildError::EnvelopeSignatures(
            envelope.signatures().len(),
        ));
    };
    check_kind(tlog, EntryKind::Dsse)?;
    check_dsse_body(cert_der, envelope, &tlog.canonical_body)?;
    let entry = tlog_entry(tlog)?;
    Ok(Bundle {
        media_type: BUNDLE_MEDIA_TYPE_V0_3.to_owned(),
        verification_material: Some(verification(cert_der, entry)),
        content: Some(bundle::Content::DsseEnvelope(intoto::Envelope {
            payload: envelope.unverified_payload().to_vec(),
            payload_type: envelope.payload_type().to_owned(),
            signatures: vec![intoto::Signature {
                sig: signature.sig().to_vec(),
                keyid: signature.keyid().unwrap_or_default().to_owned(),
            }],
        })),
    })
}

/// Serializes a bundle as compact protobuf JSON that sigstore-python also reads.
///
/// The protobuf JSON mapping omits a field holding its default value, but
/// sigstore-python 4.5.1 (`sigstore_models.rekor.v1`) declares, with no default,
/// `TransparencyLogEntry.log_index: ProtoU64`, `InclusionProof.log_index: ProtoU64` and
/// `InclusionProof.hashes: list[ProtoBytes]` (and `intoto.Envelope.payload: ProtoBytes`),
/// so the first entry of a log (index 0, proof of a one-leaf tree: no hashes) would be
/// refused as "Field required". Those fields are written here when the encoder left them
/// out. The protobuf JSON mapping allows it ("An implementation may provide options to
/// emit fields with default values in the output"), and protobuf JSON readers, this
/// crate's [`crate::sigstore::ParsedBundle::from_json`] included, read them back.
pub fn to_json(bundle: &Bundle) -> Result<Vec<u8>, SerializeError> {
    let mut value = serde_json::to_value(bundle).map_err(SerializeError::Json)?;
    write_required_defaults(&mut value);
    serde_json::to_vec(&value).map_err(SerializeError::Json)
}

/// Adds the fields sigstore-python requires that protobuf JSON omitted (see [`to_json`]).
fn write_required_defaults(bundle: &mut Value) {
    // The zero of an int64 in protobuf JSON is the string "0"; sigstore-python
    // `_validate_proto_u64`: "Expected protobuf uint64 as string".
    let zero = || Value::String("0".to_owned());
    if let Some(entries) = bundle
        .pointer_mut("/verificationMaterial/tlogEntries")
        .and_then(Value::as_array_mut)
    {
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            entry.entry("logIndex").or_insert_with(zero);
            if let Some(proof) = entry
                .get_mut("inclusionProof")
                .and_then(Value::as_object_mut)
            {
                proof.entry("logIndex").or_insert_with(zero);
                proof
                    .entry("hashes")
                    .or_insert_with(|| Value::Array(Vec::new()));
            }
        }
    }
    if let Some(envelope) = bundle
        .get_mut("dsseEnvelope")
        .and_then(Value::as_object_mut)
    {
        envelope
            .entry("payload")
            .or_insert_with(|| Value::String(String::new()));
    }
}

/// `verificationMaterial` with the leaf certificate and one log entry.
fn verification(cert_der: &[u8], entry: TransparencyLogEntry) -> VerificationMaterial {
    VerificationMaterial {
        // interop.md: "One `certificate`, exactly one tlog entry"; sigstore-python:
        // "expected exactly one log entry in bundle".
        tlog_entries: vec![entry],
        timestamp_verification_data: None,
        content: Some(verification_material::Content::Certificate(
            X509Certificate {
                raw_bytes: cert_der.to_vec(),
            },
        )),
    }
}

/// The certificate is present and of a plausible size (it is not parsed: the log
/// checked it when the entry was appended, and the body comparison ties it to the entry).
fn check_certificate(cert_der: &[u8]) -> Result<(), BundleBuildError> {
    check_len("certificate", cert_der.len(), MAX_CERTIFICATE_DER_LEN)
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), BundleBuildError> {
    if len == 0 {
        return Err(BundleBuildError::Empty(what));
    }
    if len > max {
        return Err(BundleBuildError::TooLarge { what, len, max });
    }
    Ok(())
}

fn check_kind(tlog: &TlogEntryParts, expected: EntryKind) -> Result<(), BundleBuildError> {
    if tlog.kind != expected {
        return Err(BundleBuildError::WrongKind {
            expected,
            found: tlog.kind,
        });
    }
    Ok(())
}

/// The logged `dsse` body is the entry of this envelope and certificate.
///
/// sigstore-python `_validate_dsse_v001_entry_body` compares `payloadHash` with the
/// SHA-256 of the envelope's payload and `signatures` with `[{signature: b64(sig),
/// verifier: b64(PEM of the certificate)}]`; `envelopeHash` is the hash of the envelope's
/// JSON text as it was sent to the log, which the bundle does not keep, so it is not
/// compared. The expected body is built by the log's own code from this envelope.
fn check_dsse_body(
    cert_der: &[u8],
    envelope: &dsse::Envelope,
    canonical_body: &[u8],
) -> Result<(), BundleBuildError> {
    check_len("canonical body", canonical_body.len(), MAX_ENTRY_BODY_BYTES)?;
    if !dsse_body_matches(envelope, cert_der, canonical_body).map_err(BundleBuildError::Entry)? {
        return Err(BundleBuildError::BodyMismatch("envelope and certificate"));
    }
    Ok(())
}

/// The `tlogEntries` member, after checking the proof and checkpoint belong to the entry.
fn tlog_entry(tlog: &TlogEntryParts) -> Result<TransparencyLogEntry, BundleBuildError> {
    check_len(
        "canonical body",
        tlog.canonical_body.len(),
        MAX_ENTRY_BODY_BYTES,
    )?;
    check_len(
        "signed entry timestamp",
        tlog.signed_entry_timestamp.len(),
        MAX_SIGNED_ENTRY_TIMESTAMP_LEN,
    )?;
    // sigstore-python `_establish_time` takes a verified time from the log only "if
    // (timestamp := integrated_time) and inclusion_promise" and only for
    // "dsse/hashedrekord 0.0.1 types"; without one: "not enough sources of verified time".
    if tlog.integrated_time <= 0 {
        return Err(BundleBuildError::NoIntegratedTime(tlog.integrated_time));
    }
    if tlog.kind_version != API_VERSION {
        return Err(BundleBuildError::UnsupportedKindVersion(
            tlog.kind_version.clone(),
        ));
    }
    let proof = &tlog.inclusion_proof;
    if proof.log_index != tlog.log_index {
        return Err(BundleBuildError::ProofIndexMismatch {
            entry: tlog.log_index,
            proof: proof.log_index,
        });
    }
    verify_inclusion(
        proof.log_index,
        proof.tree_size,
        &leaf_hash(&tlog.canonical_body),
        &proof.hashes,
        &proof.root_hash,
    )
    .map_err(BundleBuildError::InclusionProof)?;
    check_checkpoint(tlog)?;
    Ok(TransparencyLogEntry {
        log_index: int64("log index", tlog.log_index)?,
        // interop.md: "use one key id consistently in bundle, checkpoint and trusted root".
        log_id: Some(LogId {
            key_id: tlog.log_key_id.to_vec(),
        }),
        kind_version: Some(KindVersion {
            kind: tlog.kind.as_str().to_owned(),
            version: tlog.kind_version.clone(),
        }),
        integrated_time: tlog.integrated_time,
        // interop.md: "A verified time is required: an inclusion promise (SET) with a
        // non-zero integratedTime, or an RFC 3161 timestamp."
        inclusion_promise: Some(InclusionPromise {
            signed_entry_timestamp: tlog.signed_entry_timestamp.clone(),
        }),
        // interop.md: "Inclusion proof **and** checkpoint required."
        inclusion_proof: Some(InclusionProof {
            log_index: int64("inclusion proof log index", proof.log_index)?,
            root_hash: proof.root_hash.to_vec(),
            tree_size: int64("tree size", proof.tree_size)?,
            hashes: proof.hashes.iter().map(|h| h.to_vec()).collect(),
            checkpoint: Some(CheckpointMessage {
                envelope: proof.checkpoint_note_text.clone(),
            }),
        }),
        canonicalized_body: tlog.canonical_body.clone(),
    })
}

/// The checkpoint note commits to the proof's tree and carries a signature with the key
/// hint of the bundle's log key ID.
///
/// interop.md: "python uses `inclusionProof.rootHash/treeSize`, js uses the checkpoint's:
/// keep them equal", and "python: keyhint == `logId.keyId[:4]`" (sigstore-python
/// `SignedNote.verify`: `if sig.sig_hash == key_id[:4]`, else "checkpoint: Signature not
/// found for log ID").
fn check_checkpoint(tlog: &TlogEntryParts) -> Result<(), BundleBuildError> {
    let proof = &tlog.inclusion_proof;
    let note = Note::parse(proof.checkpoint_note_text.as_bytes())
        .map_err(BundleBuildError::CheckpointNote)?;
    let checkpoint = Checkpoint::from_note(&note).map_err(BundleBuildError::CheckpointBody)?;
    if checkpoint.size() != proof.tree_size || *checkpoint.root_hash() != proof.root_hash {
        return Err(BundleBuildError::CheckpointMismatch {
            checkpoint_size: checkpoint.size(),
            checkpoint_root: hex::encode(checkpoint.root_hash()),
            proof_size: proof.tree_size,
            proof_root: hex::encode(proof.root_hash),
        });
    }
    let expected = KeyId::from_hash(&tlog.log_key_id);
    if !note.signatures().iter().any(|s| s.key_id() == expected) {
        return Err(BundleBuildError::CheckpointKeyHint {
            expected,
            log_key_id: hex::encode(tlog.log_key_id),
        });
    }
    Ok(())
}

fn int64(what: &'static str, value: u64) -> Result<i64, BundleBuildError> {
    i64::try_from(value).map_err(|_| BundleBuildError::OutOfRange { what, value })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::json;

    use super::*;
    use crate::log::entry::set_payload;
    use crate::log::log_key_id;
    use crate::merkle::{MemoryHashStore, prove_inclusion};
    use crate::note::{Ed25519Signer, KeyName, NoteSigner as _};
    use crate::sigstore::{BundleVersion, DEFAULT_MAX_BUNDLE_LEN, ParsedBundle};

    const ORIGIN: &str = "log.org-a.example";
    const INTEGRATED_TIME: i64 = 1_750_000_000;
    /// Stands in for the leaf certificate: the builder does not parse it (the log did),
    /// it only ties it to the logged body.
    const CERT: &[u8] = b"0\x82\x01\x00 stand-in leaf certificate DER";
    const SIGNATURE: &[u8] = b"0E\x02\x20 stand-in ECDSA signature";
    const DIGEST: [u8; 32] = [0xab; 32];

    fn log_signer(seed: u8) -> Ed25519Signer {
        Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &[seed; 32])
    }

    fn key_id_of(signer: &Ed25519Signer) -> [u8; 32] {
        log_key_id(signer.name(), &signer.public_key())
    }

    /// The parts a log would return for `body` appended at `index` of a tree of `size`
    /// leaves (the other leaves are filler), with a checkpoint signed by `signer`.
    fn parts(
        kind: EntryKind,
        body: &[u8],
        index: u64,
        size: u64,
        signer: &Ed25519Signer,
    ) -> TlogEntryParts {
        let mut tree = MemoryHashStore::new();
        for i in 0..size {
            let leaf = if i == index {
                leaf_hash(body)
            } else {
                leaf_hash(format!("filler {i}").as_bytes())
            };
            tree.append(leaf).unwrap();
        }
        let root = tree.root();
        let note = Checkpoint::new(ORIGIN, size, root)
            .unwrap()
            .sign(&[signer])
            .unwrap()
            .to_bytes();
        let key_id = key_id_of(signer);
        TlogEntryParts {
            log_index: index,
            log_key_id: key_id,
            kind,
            kind_version: API_VERSION.to_owned(),
            integrated_time: INTEGRATED_TIME,
            canonical_body: body.to_vec(),
            signed_entry_timestamp: signer
                .sign_bytes(&set_payload(body, INTEGRATED_TIME, &key_id, index))
                .to_vec(),
            inclusion_proof: InclusionProofParts {
                log_index: index,
                tree_size: size,
                root_hash: root,
                hashes: prove_inclusion(index, size, &tree).unwrap(),
                checkpoint_note_text: String::from_utf8(note).unwrap(),
            },
        }
    }

    fn hashedrekord_body() -> Vec<u8> {
        ProposedEntry::hashedrekord(DIGEST, SIGNATURE.to_vec(), CERT.to_vec())
            .unwrap()
            .canonical_body()
            .to_vec()
    }

    fn hashedrekord_parts(index: u64, size: u64) -> TlogEntryParts {
        parts(
            EntryKind::HashedRekord,
            &hashedrekord_body(),
            index,
            size,
            &log_signer(7),
        )
    }

    fn envelope(signatures: usize) -> dsse::Envelope {
        dsse::Envelope::from_parts(
            "application/vnd.in-toto+json",
            br#"{"_type":"https://in-toto.io/Statement/v1"}"#.to_vec(),
            (0..signatures)
                .map(|i| dsse::Signature::new(None, format!("sig {i}").into_bytes()))
                .collect(),
        )
        .unwrap()
    }

    fn dsse_parts(envelope: &dsse::Envelope, index: u64, size: u64) -> TlogEntryParts {
        let json = String::from_utf8(envelope.to_json()).unwrap();
        let body = ProposedEntry::dsse(json, CERT.to_vec()).unwrap();
        parts(
            EntryKind::Dsse,
            body.canonical_body(),
            index,
            size,
            &log_signer(7),
        )
    }

    fn json_of(bundle: &Bundle) -> Value {
        serde_json::from_slice(&to_json(bundle).unwrap()).unwrap()
    }

    /// `to_json` output reads back to the same bundle through the crate's parser.
    fn assert_round_trips(bundle: &Bundle) {
        let parsed = ParsedBundle::from_json(&to_json(bundle).unwrap(), DEFAULT_MAX_BUNDLE_LEN)
            .expect("the bundle parses back");
        assert_eq!(parsed.version, BundleVersion::V0_3);
        assert_eq!(&parsed.bundle, bundle);
        assert_eq!(parsed.leaf_certificate_der(), Some(CERT));
    }

    #[test]
    fn message_signature_bundle_has_the_sigstore_shape() {
        let tlog = hashedrekord_parts(3, 5);
        let bundle = message_signature_bundle(CERT, DIGEST, SIGNATURE, &tlog).unwrap();
        assert_round_trips(&bundle);
        let json = json_of(&bundle);
        let proof = &tlog.inclusion_proof;
        assert_eq!(
            json,
            json!({
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {
                    "certificate": {"rawBytes": STANDARD.encode(CERT)},
                    "tlogEntries": [{
                        "logIndex": "3",
                        "logId": {"keyId": STANDARD.encode(tlog.log_key_id)},
                        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
                        "integratedTime": INTEGRATED_TIME.to_string(),
                        "inclusionPromise": {
                            "signedEntryTimestamp": STANDARD.encode(&tlog.signed_entry_timestamp),
                        },
                        "inclusionProof": {
                            "logIndex": "3",
                            "rootHash": STANDARD.encode(proof.root_hash),
                            "treeSize": "5",
                            "hashes": proof.hashes.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
                            "checkpoint": {"envelope": proof.checkpoint_note_text},
                        },
                        "canonicalizedBody": STANDARD.encode(&tlog.canonical_body),
                    }],
                },
                "messageSignature": {
                    "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(DIGEST)},
                    "signature": STANDARD.encode(SIGNATURE),
                },
            })
        );
        assert_eq!(proof.hashes.len(), 3);
    }

    #[test]
    fn first_entry_of_a_log_keeps_the_fields_python_requires() {
        let tlog = hashedrekord_parts(0, 1);
        let bundle = message_signature_bundle(CERT, DIGEST, SIGNATURE, &tlog).unwrap();
        // The crate's protobuf-JSON encoder drops them (default values)...
        let plain: Value =
            serde_json::from_slice(&crate::sigstore::bundle_to_json(&bundle).unwrap()).unwrap();
        let plain_entry = &plain["verificationMaterial"]["tlogEntries"][0];
        assert!(plain_entry.get("logIndex").is_none());
        assert!(plain_entry["inclusionProof"].get("hashes").is_none());
        // ...and `to_json` writes them back.
        let json = json_of(&bundle);
        let entry = &json["verificationMaterial"]["tlogEntries"][0];
        assert_eq!(entry["logIndex"], "0");
        assert_eq!(entry["inclusionProof"]["logIndex"], "0");
        assert_eq!(entry["inclusionProof"]["treeSize"], "1");
        assert_eq!(entry["inclusionProof"]["hashes"], json!([]));
        assert_round_trips(&bundle);
    }

    #[test]
    fn dsse_bundle_carries_the_one_signature_envelope() {
        let env = envelope(1);
        let tlog = dsse_parts(&env, 1, 2);
        let bundle = dsse_bundle(CERT, &env, &tlog).unwrap();
        assert_round_trips(&bundle);
        let json = json_of(&bundle);
        assert_eq!(
            json["dsseEnvelope"],
            json!({
                "payload": STANDARD.encode(env.unverified_payload()),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{"sig": STANDARD.encode(b"sig 0")}],
            })
        );
        assert_eq!(
            json["verificationMaterial"]["tlogEntries"][0]["kindVersion"],
            json!({"kind": "dsse", "version": "0.0.1"})
        );
        let parsed =
            ParsedBundle::from_json(&to_json(&bundle).unwrap(), DEFAULT_MAX_BUNDLE_LEN).unwrap();
        assert_eq!(parsed.dsse_envelope().unwrap(), env);
    }

    #[test]
    fn dsse_bundle_refuses_other_envelopes() {
        let env = envelope(1);
        let tlog = dsse_parts(&env, 0, 1);
        assert!(matches!(
            dsse_bundle(CERT, &envelope(2), &tlog),
            Err(BundleBuildError::EnvelopeSignatures(2))
        ));
        assert!(matches!(
            dsse_bundle(CERT, &envelope(0), &tlog),
            Err(BundleBuildError::EnvelopeSignatures(0))
        ));
        let plain = dsse::Envelope::from_parts(
            "text/plain",
            env.unverified_payload().to_vec(),
            env.signatures().to_vec(),
        )
        .unwrap();
        assert!(matches!(
            dsse_bundle(CERT, &plain, &tlog),
            Err(BundleBuildError::PayloadType(t)) if t == "text/plain"
        ));
        let other = dsse::Envelope::from_parts(
            env.payload_type(),
            b"another payload".to_vec(),
            env.signatures().to_vec(),
        )
        .unwrap();
        assert!(matches!(
            dsse_bundle(CERT, &other, &tlog),
            Err(BundleBuildError::BodyMismatch(_))
        ));
        assert!(matches!(
            dsse_bundle(b"another certificate", &env, &tlog),
            Err(BundleBuildError::BodyMismatch(_))
        ));
        // A hashedrekord entry cannot back an envelope.
        assert!(matches!(
            dsse_bundle(CERT, &env, &hashedrekord_parts(0, 1)),
            Err(BundleBuildError::WrongKind {
                expected: EntryKind::Dsse,
                found: EntryKind::HashedRekord
            })
        ));
    }

    #[test]
    fn refuses_a_log_entry_for_other_content() {
        let tlog = hashedrekord_parts(2, 4);
        let build = |digest, signature: &[u8], cert: &[u8]| {
            message_signature_bundle(cert, digest, signature, &tlog)
        };
        assert!(matches!(
            build([0xcd; 32], SIGNATURE, CERT),
            Err(BundleBuildError::BodyMismatch(_))
        ));
        assert!(matches!(
            build(DIGEST, b"other signature", CERT),
            Err(BundleBuildError::BodyMismatch(_))
        ));
        assert!(matches!(
            build(DIGEST, SIGNATURE, b"other certificate"),
            Err(BundleBuildError::BodyMismatch(_))
        ));
        assert!(matches!(
            build(DIGEST, b"", CERT),
            Err(BundleBuildError::Empty("message signature"))
        ));
        assert!(matches!(
            build(DIGEST, SIGNATURE, b""),
            Err(BundleBuildError::Empty("certificate"))
        ));
        let mut dsse_kind = tlog.clone();
        dsse_kind.kind = EntryKind::Dsse;
        assert!(matches!(
            message_signature_bundle(CERT, DIGEST, SIGNATURE, &dsse_kind),
            Err(BundleBuildError::WrongKind { .. })
        ));
    }

    /// `tlog` altered by `change` is refused with an error `expected` accepts.
    fn assert_refused(
        change: impl FnOnce(&mut TlogEntryParts),
        expected: impl FnOnce(&BundleBuildError) -> bool,
    ) {
        let mut tlog = hashedrekord_parts(2, 6);
        change(&mut tlog);
        let error = message_signature_bundle(CERT, DIGEST, SIGNATURE, &tlog)
            .expect_err("altered parts are refused");
        assert!(expected(&error), "unexpected error: {error}");
    }

    #[test]
    fn refuses_parts_that_do_not_belong_together() {
        assert_refused(
            |t| t.inclusion_proof.log_index = 3,
            |e| {
                matches!(
                    e,
                    BundleBuildError::ProofIndexMismatch { entry: 2, proof: 3 }
                )
            },
        );
        assert_refused(
            |t| t.inclusion_proof.hashes[1][0] ^= 1,
            |e| matches!(e, BundleBuildError::InclusionProof(_)),
        );
        assert_refused(
            |t| {
                t.inclusion_proof.hashes.pop();
            },
            |e| matches!(e, BundleBuildError::InclusionProof(_)),
        );
        // A proof and checkpoint of another (valid) tree that also holds the entry.
        assert_refused(
            |t| {
                let other = hashedrekord_parts(2, 7);
                t.inclusion_proof.checkpoint_note_text = other.inclusion_proof.checkpoint_note_text;
            },
            |e| {
                matches!(
                    e,
                    BundleBuildError::CheckpointMismatch {
                        checkpoint_size: 7,
                        proof_size: 6,
                        ..
                    }
                )
            },
        );
        // The checkpoint signed by another key than the bundle's log key ID names.
        assert_refused(
            |t| t.log_key_id = key_id_of(&log_signer(8)),
            |e| matches!(e, BundleBuildError::CheckpointKeyHint { .. }),
        );
        assert_refused(
            |t| t.inclusion_proof.checkpoint_note_text = "log.org-a.example\n6\n".to_owned(),
            |e| matches!(e, BundleBuildError::CheckpointNote(_)),
        );
        assert_refused(
            |t| t.integrated_time = 0,
            |e| matches!(e, BundleBuildError::NoIntegratedTime(0)),
        );
        assert_refused(
            |t| t.kind_version = "0.0.2".to_owned(),
            |e| matches!(e, BundleBuildError::UnsupportedKindVersion(v) if v == "0.0.2"),
        );
        assert_refused(
            |t| t.signed_entry_timestamp.clear(),
            |e| matches!(e, BundleBuildError::Empty("signed entry timestamp")),
        );
        assert_refused(
            |t| t.signed_entry_timestamp = vec![1; MAX_SIGNED_ENTRY_TIMESTAMP_LEN + 1],
            |e| matches!(e, BundleBuildError::TooLarge { .. }),
        );
    }

    #[test]
    fn refuses_tree_sizes_beyond_the_merkle_limit() {
        // verify_inclusion refuses sizes above 2^62, so every index that reaches the
        // protobuf int64 fields fits.
        assert_refused(
            |t| {
                t.log_index = u64::MAX - 1;
                t.inclusion_proof.log_index = u64::MAX - 1;
                t.inclusion_proof.tree_size = u64::MAX;
            },
            |e| matches!(e, BundleBuildError::InclusionProof(_)),
        );
    }

    #[test]
    fn to_json_fills_only_missing_fields() {
        let mut value = json!({
            "verificationMaterial": {"tlogEntries": [
                {"logIndex": "9", "inclusionProof": {"logIndex": "9", "hashes": ["AA=="]}},
                {"inclusionProof": {}},
            ]},
            "dsseEnvelope": {"payloadType": "t"},
        });
        write_required_defaults(&mut value);
        assert_eq!(
            value,
            json!({
                "verificationMaterial": {"tlogEntries": [
                    {"logIndex": "9", "inclusionProof": {"logIndex": "9", "hashes": ["AA=="]}},
                    {"logIndex": "0", "inclusionProof": {"logIndex": "0", "hashes": []}},
                ]},
                "dsseEnvelope": {"payloadType": "t", "payload": ""},
            })
        );
    }
}
