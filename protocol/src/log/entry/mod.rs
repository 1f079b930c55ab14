//! # Rekor v1 entries
//!
//! This module owns the Rekor v1 REST formats of the entries a domain log accepts and
//! serves, so that stock Rekor v1 clients (cosign, sigstore-python, sigstore-js,
//! sigstore-go) work against it unchanged:
//!
//! | item | owns |
//! | --- | --- |
//! | [`ProposedEntry`] | the request body of `POST /api/v1/log/entries` for `hashedrekord` and `dsse` 0.0.1: strict parsing, the signer's certificate, the canonical body, and [`ProposedEntry::admit`] (signature verification) |
//! | [`set_payload`] | the bytes a signed entry timestamp (SET) signs |
//! | [`LogEntryView`], [`LogEntryResponse`] | the `LogEntry` response shape (`{"<uuid>": {body, integratedTime, logID, logIndex, verification}}`) |
//! | [`parse_entry_uuid`], [`entry_uuid`] | entry UUIDs (64 hex) and Rekor entry IDs (80 hex) |
//! | [`SearchLogQuery`], [`SearchIndexQuery`] | the request bodies of `POST /api/v1/log/entries/retrieve` and `POST /api/v1/index/retrieve` |
//!
//! Sources: sigstore/rekor `pkg/types/hashedrekord/v0.0.1/entry.go`,
//! `pkg/types/dsse/v0.0.1/entry.go` and their JSON schemas, `pkg/types/entries.go`
//! (`CanonicalizeEntry`: the body is RFC 8785 JSON), `pkg/pki/x509/x509.go`
//! (`CanonicalValue`: certificates are re-encoded as PEM), `pkg/api/entries.go`
//! (`signEntry`, `SearchLogQueryHandler`), `pkg/api/index.go`, `pkg/sharding/sharding.go`
//! and `openapi.yaml`. The rules they implement are quoted beside the code.
//!
//! Only what the log needs is accepted: ECDSA P-256 signers holding a certificate,
//! SHA-256 artifact digests, one signature per DSSE envelope. Everything else is refused
//! with a typed error that says which field is wrong.

mod proposed;
mod query;
mod set;
mod view;

pub use proposed::{AdmitError, MAX_PROPOSED_ENTRY_BYTES, ProposedEntry, ProposedEntryError};
pub use query::{
    MAX_SEARCH_INDEX_QUERY_BYTES, MAX_SEARCH_LOG_QUERY_BYTES, MAX_SEARCH_QUERIES, SearchIndexQuery,
    SearchIndexQueryError, SearchLogQuery, SearchLogQueryError,
};
pub use set::set_payload;
pub use view::{
    EntryUuidError, InclusionProofView, LogEntryResponse, LogEntryView, LogEntryViewError,
    VerificationView, entry_uuid, parse_entry_uuid,
};

/// Whether a logged `dsse` 0.0.1 canonical body is the one for `envelope` and the
/// certificate `cert_der`, comparing what stock verifiers compare.
///
/// sigstore-python `_validate_dsse_v001_entry_body` compares `payloadHash` with the
/// SHA-256 of the envelope's payload and `signatures` with `[{signature: b64(sig),
/// verifier: b64(PEM of the certificate)}]`; `envelopeHash` is the hash of the envelope's
/// JSON text as it was sent to the log, which a bundle does not keep, so it is not
/// compared. The expected body is built by the log's own code from this envelope.
/// Fails only when the envelope and certificate do not make a valid proposed entry.
pub fn dsse_body_matches(
    envelope: &crate::dsse::Envelope,
    cert_der: &[u8],
    canonical_body: &[u8],
) -> Result<bool, ProposedEntryError> {
    #[derive(serde::Deserialize, PartialEq, Eq)]
    struct DsseBody {
        #[serde(rename = "apiVersion")]
        api_version: String,
        kind: String,
        spec: DsseSpec,
    }
    #[derive(serde::Deserialize, PartialEq, Eq)]
    struct DsseSpec {
        #[serde(rename = "payloadHash")]
        payload_hash: DsseHash,
        signatures: Vec<DsseSignature>,
    }
    #[derive(serde::Deserialize, PartialEq, Eq)]
    struct DsseHash {
        algorithm: String,
        value: String,
    }
    #[derive(serde::Deserialize, PartialEq, Eq)]
    struct DsseSignature {
        signature: String,
        verifier: String,
    }
    let Ok(envelope_json) = String::from_utf8(envelope.to_json()) else {
        return Ok(false);
    };
    let expected = ProposedEntry::dsse(envelope_json, cert_der.to_vec())?;
    let expected: Result<DsseBody, _> = serde_json::from_slice(expected.canonical_body());
    let logged: Result<DsseBody, _> = serde_json::from_slice(canonical_body);
    Ok(matches!((expected, logged), (Ok(expected), Ok(logged)) if expected == logged))
}

/// The one `apiVersion` of both accepted kinds.
pub const API_VERSION: &str = "0.0.1";

/// The Rekor entry kinds this log accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// `hashedrekord`: a signature over an artifact known by its SHA-256 digest.
    HashedRekord,
    /// `dsse`: a DSSE envelope (typically an in-toto attestation).
    Dsse,
}

impl EntryKind {
    /// The kind's name as written in the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::HashedRekord => "hashedrekord",
            EntryKind::Dsse => "dsse",
        }
    }

    /// The kind named `name`, if this log accepts it.
    pub fn from_name(name: &str) -> Option<EntryKind> {
        match name {
            "hashedrekord" => Some(EntryKind::HashedRekord),
            "dsse" => Some(EntryKind::Dsse),
            _ => None,
        }
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
