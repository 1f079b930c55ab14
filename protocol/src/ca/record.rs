//! The log entry that records an issued precertificate in the domain log.
//!
//! An SCT is a promise that the certificate is logged (RFC 6962 §3). The authority keeps
//! it by appending each precertificate to its own transparency log **before** the
//! certificate and its SCT leave the CA, so every code-signing certificate of the domain
//! can be audited by anyone who follows the log.
//!
//! The entry carries what an RFC 6962 `precert_entry` carries — the issuer key hash and
//! the precertificate TBSCertificate — as a canonical JSON body in the style of the
//! log's Rekor v1 kinds:
//!
//! ```json
//! {"apiVersion":"0.0.1","kind":"provmesh-precert","spec":{"issuerKeyHash":"<hex SHA-256 of the CA's SubjectPublicKeyInfo>","tbsCertificate":"<base64 DER>"}}
//! ```
//!
//! Members in this order, no white space. The entry is found by SHA-256 of the final
//! certificate (DER), of the precertificate TBS, and of the SPIFFE ID (issuance by
//! identity).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use super::IssuedCertificate;
use crate::log::{AdmittedEntry, MAX_ENTRY_BODY_BYTES};
use crate::merkle::leaf_hash;
use crate::spiffe::SpiffeId;

/// The `kind` of a precertificate entry.
pub const PRECERT_ENTRY_KIND: &str = "provmesh-precert";

/// Why a precertificate cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The body would exceed what the log stores.
    #[error(
        "the precertificate entry is {len} bytes; the log stores at most {MAX_ENTRY_BODY_BYTES}"
    )]
    TooLarge {
        /// Its length.
        len: usize,
    },
}

/// The log entry recording `issued`, signed by the CA whose key is `ca_spki_der`, for
/// `spiffe_id`.
pub fn precertificate_entry(
    issued: &IssuedCertificate,
    ca_spki_der: &[u8],
    spiffe_id: &SpiffeId,
) -> Result<AdmittedEntry, RecordError> {
    let body = serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": PRECERT_ENTRY_KIND,
        "spec": {
            "issuerKeyHash": hex::encode(Sha256::digest(ca_spki_der)),
            "tbsCertificate": STANDARD.encode(&issued.precertificate_tbs_der),
        },
    })
    .to_string()
    .into_bytes();
    if body.len() > MAX_ENTRY_BODY_BYTES {
        return Err(RecordError::TooLarge { len: body.len() });
    }
    let mut search_keys: Vec<[u8; 32]> = vec![
        Sha256::digest(&issued.certificate_der).into(),
        Sha256::digest(&issued.precertificate_tbs_der).into(),
        Sha256::digest(spiffe_id.as_str().as_bytes()).into(),
    ];
    search_keys.dedup();
    Ok(AdmittedEntry {
        leaf_hash: leaf_hash(&body),
        body,
        search_keys,
        attestation: None,
    })
}
