//! Proposed entries (`POST /api/v1/log/entries`), their canonical bodies, and admission.
//!
//! Parsing ([`ProposedEntry::from_json`]) checks the shape of the entry, decodes it, reads
//! the signer's certificate out of its PEM, and builds the canonical body Rekor v1 would
//! log for it. Nothing is trusted yet. The caller checks the certificate
//! ([`ProposedEntry::signer_certificate_der`] → `signer_cert` → `CertifiedSigner`), then
//! [`ProposedEntry::admit`] verifies the signature with the certified key and yields the
//! [`AdmittedEntry`].

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::{API_VERSION, EntryKind};
use crate::dsse::{self, DsseVerifier, SignatureRejected, VerifiedPayload};
use crate::intoto::{self, Statement};
use crate::log::signer_cert::CertifiedSigner;
use crate::log::{AdmittedEntry, MAX_ENTRY_BODY_BYTES, MAX_SEARCH_KEYS};
use crate::merkle::{Hash, leaf_hash};

/// Largest proposed entry [`ProposedEntry::from_json`] reads, in bytes (1 MiB).
///
/// A `hashedrekord` entry is about as long as its body (a few KiB). A `dsse` entry
/// carries the whole envelope, of which only hashes are logged; in-toto attestations are
/// typically a few KiB to a few hundred KiB, so 1 MiB bounds the work per request without
/// refusing real attestations. (Rekor's own `max_request_body_size` defaults to
/// unlimited; the HTTP layer should apply the same bound before buffering.)
pub const MAX_PROPOSED_ENTRY_BYTES: usize = 1 << 20;

/// Length of an uncompressed SEC1 P-256 point: `0x04 ‖ x ‖ y`.
const P256_SEC1_UNCOMPRESSED_LEN: usize = 65;

const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// Why [`ProposedEntry::from_json`] (or a constructor) refused a proposed entry.
///
/// Field names are JSON paths into the proposed entry, e.g. `spec.signature.content`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProposedEntryError {
    /// The document is longer than [`MAX_PROPOSED_ENTRY_BYTES`].
    #[error("proposed entry is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the document.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The document is not JSON.
    #[error("proposed entry is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// `kind` names an entry kind this log does not accept.
    #[error("entry kind `{0}` is not accepted by this log (accepted kinds: hashedrekord, dsse)")]
    UnknownKind(String),
    /// `apiVersion` is not `0.0.1`.
    #[error("{kind} apiVersion `{api_version}` is not supported (supported: 0.0.1)")]
    UnsupportedApiVersion {
        /// The entry kind.
        kind: EntryKind,
        /// The version asked for.
        api_version: String,
    },
    /// A required field is absent (or `null`).
    #[error("required field `{field}` is missing")]
    MissingField {
        /// JSON path of the field.
        field: &'static str,
    },
    /// A field the entry format does not define is present. Refused rather than ignored:
    /// the canonical body is built from the known fields only, so anything else the
    /// client sent would silently not be logged.
    #[error("field `{field}` is not part of the entry format")]
    UnknownField {
        /// JSON path of the field.
        field: String,
    },
    /// A field has the wrong JSON type or an invalid value.
    #[error("field `{field}` is invalid: {reason}")]
    InvalidField {
        /// JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A base64 field does not decode (standard alphabet, canonical padding).
    #[error("field `{field}` is not valid base64")]
    Base64 {
        /// JSON path of the field.
        field: &'static str,
    },
    /// `spec.data.hash.algorithm` is not `sha256`.
    #[error("hash algorithm `{algorithm}` is not supported (this log accepts sha256)")]
    UnsupportedHashAlgorithm {
        /// The algorithm named.
        algorithm: String,
    },
    /// The signer's certificate is not exactly one well-formed PEM `CERTIFICATE` block.
    #[error("field `{field}` is not a PEM certificate: {reason}")]
    CertificatePem {
        /// JSON path of the field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The canonical body would exceed [`MAX_ENTRY_BODY_BYTES`] (the tile entry limit).
    #[error("the entry's canonical body would be {len} bytes, more than the log's limit of {max}")]
    BodyTooLarge {
        /// Length of the canonical body.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why [`ProposedEntry::admit`] refused an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdmitError {
    /// The signer's key is not a 65-byte uncompressed P-256 point.
    #[error("the signer's key is not an uncompressed P-256 public key")]
    SignerKey,
    /// The entry's certificate is not a DER X.509 certificate (with nothing after it).
    #[error("the entry's certificate is not a well-formed X.509 certificate")]
    Certificate,
    /// The certified key is not the key of the entry's certificate: the signer given was
    /// obtained from another certificate.
    #[error("the signer's key is not the public key of the entry's certificate")]
    CertificateKeyMismatch,
    /// The signature does not verify with the certificate's key.
    #[error("the entry's signature does not verify with the certificate's key")]
    SignatureInvalid,
}

/// A parsed, not yet verified, proposed entry of an accepted kind.
///
/// Holds everything admission needs and the canonical body the log would store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedEntry {
    /// DER of the signer's (leaf) certificate.
    certificate_der: Vec<u8>,
    /// The canonical body, as Rekor v1 would produce it.
    body: Vec<u8>,
    /// Kind-specific content.
    content: Content,
}

/// What each kind signs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    /// `hashedrekord`: ECDSA over the artifact whose SHA-256 digest is given.
    HashedRekord {
        /// The artifact's SHA-256 digest (`spec.data.hash.value`).
        digest: [u8; 32],
        /// ASN.1 DER ECDSA signature (`spec.signature.content`, decoded).
        signature: Vec<u8>,
    },
    /// `dsse`: an envelope with exactly one signature.
    Dsse {
        /// The envelope JSON exactly as proposed (its SHA-256 is `envelopeHash`).
        envelope_json: String,
        /// The decoded envelope.
        envelope: dsse::Envelope,
        /// SHA-256 of the decoded payload (`payloadHash`).
        payload_hash: [u8; 32],
    },
}

/// The JSON shape of a DSSE envelope inside `spec.proposedContent.envelope`.
///
/// DSSE envelope.md: "The following fields are REQUIRED and MUST be set, even if empty:
/// `payload`, `payloadType`, `signature`, `signature.sig`." and "Consumers MUST ignore
/// unrecognized fields." (serde ignores them; it refuses duplicate fields.)
#[derive(Deserialize)]
struct WireEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: Vec<WireSignature>,
}

#[derive(Deserialize)]
struct WireSignature {
    #[serde(default)]
    keyid: Option<String>,
    sig: String,
}

impl ProposedEntry {
    /// Parses a proposed entry: `{"apiVersion": "0.0.1", "kind": "hashedrekord" | "dsse",
    /// "spec": {…}}`.
    ///
    /// `null` members are treated as absent (sigstore-python sends `"signatures": null`
    /// and friends in `dsse` entries). Duplicate member names resolve to the last one, as
    /// in Rekor (Go's `encoding/json`); the canonical body is rebuilt from what was read,
    /// so what is logged is always what was verified.
    pub fn from_json(bytes: &[u8]) -> Result<ProposedEntry, ProposedEntryError> {
        if bytes.len() > MAX_PROPOSED_ENTRY_BYTES {
            return Err(ProposedEntryError::TooLarge {
                len: bytes.len(),
                max: MAX_PROPOSED_ENTRY_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(ProposedEntryError::Json)?;
        ProposedEntry::from_value(&value)
    }

    /// Parses a proposed entry already read as JSON (e.g. an element of
    /// `SearchLogQuery.entries`); the caller bounds the document size.
    pub(super) fn from_value(value: &Value) -> Result<ProposedEntry, ProposedEntryError> {
        let top = value.as_object().ok_or(ProposedEntryError::InvalidField {
            field: "$",
            reason: "a proposed entry must be a JSON object".into(),
        })?;
        // The kind decides everything else, so it is checked first: an entry of another
        // kind is reported as such, not as a pile of unknown fields.
        let kind_name = required_str(top, "kind", "kind")?;
        let kind = EntryKind::from_name(kind_name)
            .ok_or_else(|| ProposedEntryError::UnknownKind(kind_name.to_owned()))?;
        let api_version = required_str(top, "apiVersion", "apiVersion")?;
        if api_version != API_VERSION {
            return Err(ProposedEntryError::UnsupportedApiVersion {
                kind,
                api_version: api_version.to_owned(),
            });
        }
        reject_unknown(top, "", &["apiVersion", "kind", "spec"])?;
        let spec = required_object(top, "spec", "spec")?;
        match kind {
            EntryKind::HashedRekord => parse_hashedrekord_spec(spec),
            EntryKind::Dsse => parse_dsse_spec(spec),
        }
    }

    /// A `hashedrekord` entry: `signature` (ASN.1 DER ECDSA) over the artifact whose
    /// SHA-256 digest is `artifact_sha256`, by the key of `certificate_der`.
    pub fn hashedrekord(
        artifact_sha256: [u8; 32],
        signature: Vec<u8>,
        certificate_der: Vec<u8>,
    ) -> Result<ProposedEntry, ProposedEntryError> {
        if signature.is_empty() {
            return Err(empty("spec.signature.content"));
        }
        if certificate_der.is_empty() {
            return Err(ProposedEntryError::CertificatePem {
                field: "spec.signature.publicKey.content",
                reason: "the certificate is empty",
            });
        }
        let body = hashedrekord_body(
            &artifact_sha256,
            &signature,
            &canonical_pem(&certificate_der),
        );
        check_body_len(&body)?;
        Ok(ProposedEntry {
            certificate_der,
            body,
            content: Content::HashedRekord {
                digest: artifact_sha256,
                signature,
            },
        })
    }

    /// A `dsse` entry for the envelope `envelope_json` (the envelope's JSON text, sent
    /// and hashed as is), signed by the key of `certificate_der`.
    pub fn dsse(
        envelope_json: String,
        certificate_der: Vec<u8>,
    ) -> Result<ProposedEntry, ProposedEntryError> {
        if certificate_der.is_empty() {
            return Err(ProposedEntryError::CertificatePem {
                field: "spec.proposedContent.verifiers[0]",
                reason: "the certificate is empty",
            });
        }
        build_dsse(envelope_json, certificate_der)
    }

    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        match self.content {
            Content::HashedRekord { .. } => EntryKind::HashedRekord,
            Content::Dsse { .. } => EntryKind::Dsse,
        }
    }

    /// DER of the signer's leaf certificate, decoded from the entry's PEM. Check it
    /// (`signer_cert`) to obtain the `CertifiedSigner` that [`ProposedEntry::admit`] takes.
    pub fn signer_certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The DSSE envelope of a `dsse` entry.
    pub fn envelope(&self) -> Option<&dsse::Envelope> {
        match &self.content {
            Content::Dsse { envelope, .. } => Some(envelope),
            Content::HashedRekord { .. } => None,
        }
    }

    /// The artifact digest and signature of a `hashedrekord` entry.
    pub fn message_signature(&self) -> Option<([u8; 32], &[u8])> {
        match &self.content {
            Content::HashedRekord { digest, signature } => Some((*digest, signature)),
            Content::Dsse { .. } => None,
        }
    }

    /// The canonical body Rekor v1 logs for this entry, byte for byte. **Not verified**:
    /// use it before admission only for lookups (deduplication, `entries` searches).
    pub fn canonical_body(&self) -> &[u8] {
        &self.body
    }

    /// `leaf_hash(canonical_body)`: the entry's UUID and deduplication key. **Not
    /// verified** (see [`ProposedEntry::canonical_body`]).
    pub fn leaf_hash(&self) -> Hash {
        leaf_hash(&self.body)
    }

    /// The proposed entry as a JSON value that [`ProposedEntry::from_json`] reads back to
    /// an equal entry (the certificate PEM is written canonically).
    pub fn to_json_value(&self) -> Value {
        match &self.content {
            Content::HashedRekord { digest, signature } => serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": EntryKind::HashedRekord.as_str(),
                "spec": {
                    "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}},
                    "signature": {
                        "content": STANDARD.encode(signature),
                        "publicKey": {"content": STANDARD.encode(canonical_pem(&self.certificate_der))},
                    },
                },
            }),
            Content::Dsse { envelope_json, .. } => serde_json::json!({
                "apiVersion": API_VERSION,
                "kind": EntryKind::Dsse.as_str(),
                "spec": {
                    "proposedContent": {
                        "envelope": envelope_json,
                        "verifiers": [STANDARD.encode(canonical_pem(&self.certificate_der))],
                    },
                },
            }),
        }
    }

    /// The proposed entry as compact JSON (see [`ProposedEntry::to_json_value`]).
    pub fn to_json(&self) -> Vec<u8> {
        self.to_json_value().to_string().into_bytes()
    }

    /// Verifies the entry's signature with `signer`'s key and returns the entry ready to
    /// be sequenced.
    ///
    /// `signer` must be the result of checking [`ProposedEntry::signer_certificate_der`];
    /// its key is compared with the certificate's as a guard against mixing up signers.
    /// - `hashedrekord`: ECDSA P-256 over the given SHA-256 digest (prehashed: the log
    ///   never sees the artifact). Rekor: `sigObj.Verify(nil, keyObj,
    ///   options.WithDigest(decoded), options.WithCryptoSignerOpts(alg))`.
    /// - `dsse`: the envelope's one signature, ECDSA P-256 with SHA-256 over
    ///   `PAE(payloadType, payload)`.
    ///
    /// Search keys: the artifact digest (`hashedrekord`); the payload digest and every
    /// in-toto subject's `sha256` digest (`dsse`), deduplicated, at most
    /// [`MAX_SEARCH_KEYS`].
    pub fn admit(&self, signer: &CertifiedSigner) -> Result<AdmittedEntry, AdmitError> {
        let sec1 = signer.public_key_sec1.as_slice();
        if sec1.len() != P256_SEC1_UNCOMPRESSED_LEN || sec1.first() != Some(&0x04) {
            return Err(AdmitError::SignerKey);
        }
        check_certificate_key(&self.certificate_der, sec1)?;
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, sec1)
            .map_err(|_| AdmitError::SignerKey)?;
        let search_keys = match &self.content {
            Content::HashedRekord { digest, signature } => {
                // `import_less_safe` only fails on a length mismatch, which a [u8; 32]
                // cannot have. Trusting a digest the log did not compute is the point of
                // the entry kind: the signature binds the signer to it, not to bytes.
                let prehashed = lc_digest::Digest::import_less_safe(digest, &lc_digest::SHA256)
                    .map_err(|_| AdmitError::SignatureInvalid)?;
                key.verify_digest_sig(&prehashed, signature)
                    .map_err(|_| AdmitError::SignatureInvalid)?;
                vec![*digest]
            }
            Content::Dsse {
                envelope,
                payload_hash,
                ..
            } => {
                let verifier = P256Verifier(&key);
                let verified = envelope
                    .verify(&[&verifier])
                    .map_err(|_| AdmitError::SignatureInvalid)?;
                dsse_search_keys(&verified, payload_hash)
            }
        };
        let attestation = match self.content {
            Content::Dsse { .. } => Some(self.to_json()),
            Content::HashedRekord { .. } => None,
        };
        Ok(AdmittedEntry {
            body: self.body.clone(),
            leaf_hash: leaf_hash(&self.body),
            search_keys,
            attestation,
        })
    }
}

/// ECDSA P-256 / SHA-256 / ASN.1 DER verification through aws-lc-rs, for DSSE.
struct P256Verifier<'a>(&'a ParsedPublicKey);

impl DsseVerifier for P256Verifier<'_> {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejected> {
        self.0
            .verify_sig(message, signature)
            .map_err(|_| SignatureRejected)
    }
}

/// Checks that `sec1` is the subject public key of the certificate `der`.
fn check_certificate_key(der: &[u8], sec1: &[u8]) -> Result<(), AdmitError> {
    let (rest, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|_| AdmitError::Certificate)?;
    if !rest.is_empty() {
        return Err(AdmitError::Certificate);
    }
    if certificate.public_key().subject_public_key.data.as_ref() != sec1 {
        return Err(AdmitError::CertificateKeyMismatch);
    }
    Ok(())
}

/// `hashedrekord` 0.0.1 `spec`:
/// `{"signature": {"content", "publicKey": {"content"}}, "data": {"hash": {"algorithm", "value"}}}`.
fn parse_hashedrekord_spec(spec: &Map<String, Value>) -> Result<ProposedEntry, ProposedEntryError> {
    reject_unknown(spec, "spec.", &["signature", "data"])?;

    let signature = required_object(spec, "signature", "spec.signature")?;
    reject_unknown(signature, "spec.signature.", &["content", "publicKey"])?;
    // Rekor's Insertable(): "missing signature content" when empty.
    let content = required_str(signature, "content", "spec.signature.content")?;
    if content.is_empty() {
        return Err(empty("spec.signature.content"));
    }
    let signature_bytes = decode_standard(content, "spec.signature.content")?;
    let public_key = required_object(signature, "publicKey", "spec.signature.publicKey")?;
    reject_unknown(public_key, "spec.signature.publicKey.", &["content"])?;
    const KEY_FIELD: &str = "spec.signature.publicKey.content";
    let key_content = required_str(public_key, "content", KEY_FIELD)?;
    if key_content.is_empty() {
        return Err(empty(KEY_FIELD));
    }
    let certificate_der =
        certificate_der_from_pem(&decode_standard(key_content, KEY_FIELD)?, KEY_FIELD)?;

    let data = required_object(spec, "data", "spec.data")?;
    reject_unknown(data, "spec.data.", &["hash"])?;
    let hash = required_object(data, "hash", "spec.data.hash")?;
    reject_unknown(hash, "spec.data.hash.", &["algorithm", "value"])?;
    // The schema allows sha256, sha384 and sha512, but Rekor's algorithm registry
    // (`AllowedClientSigningAlgorithms`) pairs a P-256 key with SHA-256 only
    // (`PKIX_ECDSA_P256_SHA_256`), and P-256 is the only key this log certifies: a
    // SHA-384/512 digest would be refused by Rekor itself for such a key.
    let algorithm = required_str(hash, "algorithm", "spec.data.hash.algorithm")?;
    if algorithm != "sha256" {
        return Err(ProposedEntryError::UnsupportedHashAlgorithm {
            algorithm: algorithm.to_owned(),
        });
    }
    // Schema: "The hash value for the content, as represented by a lower case
    // hexadecimal string". Rekor copies the value into the body as given, so only the
    // lowercase form keeps the body (and search key) in one canonical spelling.
    let value = required_str(hash, "value", "spec.data.hash.value")?;
    let digest = parse_lower_hex_32(value).ok_or_else(|| ProposedEntryError::InvalidField {
        field: "spec.data.hash.value",
        reason: "must be 64 lowercase hexadecimal digits (a SHA-256 digest)".into(),
    })?;

    ProposedEntry::hashedrekord(digest, signature_bytes, certificate_der)
}

/// `dsse` 0.0.1 `spec` as proposed: `{"proposedContent": {"envelope", "verifiers"}}`.
fn parse_dsse_spec(spec: &Map<String, Value>) -> Result<ProposedEntry, ProposedEntryError> {
    reject_unknown(
        spec,
        "spec.",
        &[
            "proposedContent",
            "signatures",
            "envelopeHash",
            "payloadHash",
        ],
    )?;
    // Rekor: "if we're here, then we're trying to propose a new entry so we check to
    // ensure client's aren't setting server-side computed fields".
    for (key, field) in [
        ("signatures", "spec.signatures"),
        ("envelopeHash", "spec.envelopeHash"),
        ("payloadHash", "spec.payloadHash"),
    ] {
        if member(spec, key).is_some() {
            return Err(ProposedEntryError::InvalidField {
                field,
                reason: "is computed by the log and must not be set in a proposed entry".into(),
            });
        }
    }
    let proposed = required_object(spec, "proposedContent", "spec.proposedContent")?;
    reject_unknown(
        proposed,
        "spec.proposedContent.",
        &["envelope", "verifiers"],
    )?;
    let envelope = required_str(proposed, "envelope", "spec.proposedContent.envelope")?;
    if envelope.is_empty() {
        return Err(empty("spec.proposedContent.envelope"));
    }
    const VERIFIERS: &str = "spec.proposedContent.verifiers";
    let verifiers = member(proposed, "verifiers")
        .ok_or(ProposedEntryError::MissingField { field: VERIFIERS })?
        .as_array()
        .ok_or_else(|| ProposedEntryError::InvalidField {
            field: VERIFIERS,
            reason: "must be an array of base64 strings".into(),
        })?;
    // The log admits one certified signer per entry, so the one envelope signature has
    // exactly one verifier (Rekor allows several keys for several signatures).
    let [verifier] = verifiers.as_slice() else {
        return Err(ProposedEntryError::InvalidField {
            field: VERIFIERS,
            reason: format!(
                "must list exactly one verifier certificate (found {})",
                verifiers.len()
            ),
        });
    };
    const VERIFIER: &str = "spec.proposedContent.verifiers[0]";
    let verifier = verifier
        .as_str()
        .ok_or_else(|| ProposedEntryError::InvalidField {
            field: VERIFIER,
            reason: "must be a base64 string".into(),
        })?;
    if verifier.is_empty() {
        return Err(empty(VERIFIER));
    }
    let certificate_der =
        certificate_der_from_pem(&decode_standard(verifier, VERIFIER)?, VERIFIER)?;
    build_dsse(envelope.to_owned(), certificate_der)
}

/// Decodes the envelope and builds the `dsse` entry.
fn build_dsse(
    envelope_json: String,
    certificate_der: Vec<u8>,
) -> Result<ProposedEntry, ProposedEntryError> {
    const ENVELOPE: &str = "spec.proposedContent.envelope";
    let wire: WireEnvelope =
        serde_json::from_str(&envelope_json).map_err(|e| ProposedEntryError::InvalidField {
            field: ENVELOPE,
            reason: format!("not a DSSE envelope: {e}"),
        })?;
    // Rekor requires every signature to verify with some verifier; with one certified
    // signer per entry that means exactly one signature.
    let [signature] = wire.signatures.as_slice() else {
        return Err(ProposedEntryError::InvalidField {
            field: ENVELOPE,
            reason: format!(
                "a DSSE envelope must carry exactly one signature (found {})",
                wire.signatures.len()
            ),
        });
    };
    // DSSE: "Either standard or URL-safe base64 encodings are allowed."
    let payload = STANDARD
        .decode(&wire.payload)
        .or_else(|_| URL_SAFE.decode(&wire.payload))
        .map_err(|_| ProposedEntryError::Base64 {
            field: "spec.proposedContent.envelope.payload",
        })?;
    // Rekor copies the `sig` string into the body's `signatures[].signature`, whose schema
    // pattern is the standard alphabet with padding; requiring it here keeps our body
    // identical to Rekor's and valid under that schema.
    const SIG: &str = "spec.proposedContent.envelope.signatures[0].sig";
    if signature.sig.is_empty() {
        return Err(empty(SIG));
    }
    let sig = decode_standard(&signature.sig, SIG)?;

    let payload_hash: [u8; 32] = Sha256::digest(&payload).into();
    // Rekor: `envelopeHash := sha256.Sum256([]byte(*dsseObj.ProposedContent.Envelope))`.
    let envelope_hash: [u8; 32] = Sha256::digest(envelope_json.as_bytes()).into();
    let body = dsse_body(
        &envelope_hash,
        &payload_hash,
        &signature.sig,
        &canonical_pem(&certificate_der),
    );
    check_body_len(&body)?;
    let envelope = dsse::Envelope::from_parts(
        wire.payload_type,
        payload,
        vec![dsse::Signature::new(signature.keyid.clone(), sig)],
    )
    .map_err(|e| ProposedEntryError::InvalidField {
        field: ENVELOPE,
        reason: e.to_string(),
    })?;
    Ok(ProposedEntry {
        certificate_der,
        body,
        content: Content::Dsse {
            envelope_json,
            envelope,
            payload_hash,
        },
    })
}

/// The canonical `hashedrekord` body.
///
/// Rekor `Canonicalize`: `{apiVersion, kind, spec: {data: {hash}, signature: {content,
/// publicKey: {content}}}}` — "key URL (if known) is not set deliberately", "data content
/// is not set deliberately" — with `signature.content` the raw signature and
/// `publicKey.content` the certificate's `CanonicalValue()` (PEM), both base64; then
/// `CanonicalizeEntry` applies RFC 8785. Every value here is ASCII base64 or hex (no JSON
/// escaping), and the keys are written in RFC 8785 order (sorted by UTF-16 code units,
/// which for ASCII is byte order).
fn hashedrekord_body(digest: &[u8; 32], signature: &[u8], pem: &str) -> Vec<u8> {
    let mut body = String::with_capacity(256 + 2 * signature.len() + 2 * pem.len());
    body.push_str(r#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":""#);
    body.push_str(&hex::encode(digest));
    body.push_str(r#""}},"signature":{"content":""#);
    body.push_str(&STANDARD.encode(signature));
    body.push_str(r#"","publicKey":{"content":""#);
    body.push_str(&STANDARD.encode(pem));
    body.push_str(r#""}}}}"#);
    body.into_bytes()
}

/// The canonical `dsse` body.
///
/// Rekor `Canonicalize`: `{apiVersion, kind, spec: {envelopeHash, payloadHash,
/// signatures: [{signature, verifier}]}}` with `ProposedContent: nil // this is
/// explicitly done as we don't want to canonicalize the envelope`; `signature` is the
/// envelope's `sig` string, `verifier` the base64 of the certificate's PEM
/// `CanonicalValue()`; then RFC 8785 (see [`hashedrekord_body`] for why writing it
/// directly is exact).
fn dsse_body(envelope_hash: &[u8; 32], payload_hash: &[u8; 32], sig: &str, pem: &str) -> Vec<u8> {
    let mut body = String::with_capacity(320 + sig.len() + 2 * pem.len());
    body.push_str(r#"{"apiVersion":"0.0.1","kind":"dsse","spec":{"envelopeHash":{"algorithm":"sha256","value":""#);
    body.push_str(&hex::encode(envelope_hash));
    body.push_str(r#""},"payloadHash":{"algorithm":"sha256","value":""#);
    body.push_str(&hex::encode(payload_hash));
    body.push_str(r#""},"signatures":[{"signature":""#);
    body.push_str(sig);
    body.push_str(r#"","verifier":""#);
    body.push_str(&STANDARD.encode(pem));
    body.push_str(r#""}]}}"#);
    body.into_bytes()
}

fn check_body_len(body: &[u8]) -> Result<(), ProposedEntryError> {
    if body.len() > MAX_ENTRY_BODY_BYTES {
        return Err(ProposedEntryError::BodyTooLarge {
            len: body.len(),
            max: MAX_ENTRY_BODY_BYTES,
        });
    }
    Ok(())
}

/// Search keys of a verified `dsse` entry: its payload digest first (so it is always
/// findable), then the `sha256` digest of every in-toto subject, deduplicated, at most
/// [`MAX_SEARCH_KEYS`] in all.
///
/// Rekor indexes subject digests when `env.PayloadType == in_toto.PayloadType` and never
/// refuses an entry over its payload. The payload is parsed as an in-toto Statement v1
/// ([`Statement::from_verified`]); when that parser refuses it (older clients still sign
/// Statement v0.1, which has the same `subject` shape), subjects are read leniently, as
/// Rekor's `indexKeyExtract` does, so those entries stay findable by subject.
fn dsse_search_keys(verified: &VerifiedPayload<'_>, payload_hash: &[u8; 32]) -> Vec<[u8; 32]> {
    let mut keys = vec![*payload_hash];
    if !intoto::is_in_toto_payload_type(verified.payload_type()) {
        return keys;
    }
    let mut add = |hex_digest: &str| {
        if keys.len() >= MAX_SEARCH_KEYS {
            return;
        }
        let mut digest = [0u8; 32];
        if hex_digest.len() == 64
            && hex::decode_to_slice(hex_digest, &mut digest).is_ok()
            && !keys.contains(&digest)
        {
            keys.push(digest);
        }
    };
    match Statement::from_verified(verified) {
        Ok(statement) => statement
            .subject_digests()
            .filter(|d| d.algorithm == "sha256")
            .for_each(|d| add(d.value)),
        Err(_) => {
            if let Ok(value) = serde_json::from_slice::<Value>(verified.payload()) {
                value
                    .get("subject")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.get("digest")?.get("sha256")?.as_str())
                    .for_each(add);
            }
        }
    }
    keys
}

/// The certificate DER in a PEM text holding exactly one `CERTIFICATE` block.
///
/// Rekor (`x509.NewPublicKey`) trims surrounding whitespace, decodes one PEM block and
/// treats any further blocks as a chain; the log wants the signer's leaf alone, so
/// exactly one block, no headers, nothing before or after it.
fn certificate_der_from_pem(
    pem: &[u8],
    field: &'static str,
) -> Result<Vec<u8>, ProposedEntryError> {
    let err = |reason| ProposedEntryError::CertificatePem { field, reason };
    let text = std::str::from_utf8(pem).map_err(|_| err("it is not text"))?;
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let Some(rest) = text.strip_prefix(PEM_BEGIN) else {
        return Err(if text.starts_with("-----BEGIN ") {
            err(
                "the PEM block is not a CERTIFICATE (the log needs the signer's certificate, not a bare key)",
            )
        } else {
            err("it does not start with -----BEGIN CERTIFICATE-----")
        });
    };
    let end = rest
        .find(PEM_END)
        .ok_or_else(|| err("it has no -----END CERTIFICATE----- line"))?;
    let (inner, after) = rest.split_at(end);
    if after.len() != PEM_END.len() {
        return Err(err(
            "it holds more than one PEM block, or text after the END line",
        ));
    }
    if inner.contains("-----") {
        return Err(err("it holds more than one PEM block"));
    }
    if inner.contains(':') {
        return Err(err("PEM headers are not allowed"));
    }
    // The BEGIN and END markers each stand on their own line.
    if !(inner.starts_with('\n') || inner.starts_with("\r\n")) || !inner.ends_with('\n') {
        return Err(err(
            "the BEGIN and END markers must be on lines of their own",
        ));
    }
    let compact: String = inner.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD
        .decode(compact)
        .map_err(|_| err("the block's content is not base64"))?;
    if der.is_empty() {
        return Err(err("the block is empty"));
    }
    Ok(der)
}

/// The PEM Rekor writes for a certificate (`cryptoutils.MarshalCertificateToPEM`, i.e.
/// Go's `pem.EncodeToMemory`): standard base64 in lines of 64 characters, each line and
/// both markers ending in `\n`.
fn canonical_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    pem.push_str(PEM_BEGIN);
    pem.push('\n');
    let mut start = 0;
    while start < b64.len() {
        // base64 is ASCII, so every index is a char boundary.
        let end = usize::min(start + 64, b64.len());
        pem.push_str(&b64[start..end]);
        pem.push('\n');
        start = end;
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

/// Rekor decodes `format: byte` fields with Go's `base64.StdEncoding` (standard alphabet,
/// padded); canonical padding and zero trailing bits are required here as well.
fn decode_standard(text: &str, field: &'static str) -> Result<Vec<u8>, ProposedEntryError> {
    STANDARD
        .decode(text)
        .map_err(|_| ProposedEntryError::Base64 { field })
}

/// Exactly 64 lowercase hex digits, decoded.
fn parse_lower_hex_32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

fn empty(field: &'static str) -> ProposedEntryError {
    ProposedEntryError::InvalidField {
        field,
        reason: "must not be empty".into(),
    }
}

/// A member that is present and not `null`.
fn member<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

fn required_object<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a Map<String, Value>, ProposedEntryError> {
    member(object, key)
        .ok_or(ProposedEntryError::MissingField { field })?
        .as_object()
        .ok_or_else(|| ProposedEntryError::InvalidField {
            field,
            reason: "must be a JSON object".into(),
        })
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a str, ProposedEntryError> {
    member(object, key)
        .ok_or(ProposedEntryError::MissingField { field })?
        .as_str()
        .ok_or_else(|| ProposedEntryError::InvalidField {
            field,
            reason: "must be a string".into(),
        })
}

/// Refuses members outside `allowed` (see [`ProposedEntryError::UnknownField`]). A
/// `null` member carries nothing that could go unlogged, so it is let through like an
/// absent one (generated clients write every optional field, set or not).
fn reject_unknown(
    object: &Map<String, Value>,
    prefix: &str,
    allowed: &[&str],
) -> Result<(), ProposedEntryError> {
    match object
        .iter()
        .find(|(k, v)| !v.is_null() && !allowed.contains(&k.as_str()))
    {
        Some((key, _)) => Err(ProposedEntryError::UnknownField {
            field: format!("{prefix}{key}"),
        }),
        None => Ok(()),
    }
}
