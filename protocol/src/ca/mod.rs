//! The domain's Fulcio-style code-signing CA: certificates, SCTs and the root.
//!
//! * [`CodeSigningIssuer`] issues short-lived (≤ 10 minutes) code-signing certificates
//!   in the Fulcio profile stock Sigstore verifiers accept, each with exactly one
//!   embedded SCT ([`issue`](CodeSigningIssuer::issue) documents the profile).
//! * [`CtLogKey`], [`SignedCertificateTimestamp`], [`verify_sct`] and the SCT list
//!   encoding implement RFC 6962 §3.2–3.3 for precertificates; [`embedded_scts`] rebuilds
//!   the precertificate TBS from a final certificate, as a verifier does.
//! * [`create_code_signing_root`] creates the domain's self-signed code-signing root.
//! * [`precertificate_entry`] is the domain-log entry that records an issued
//!   precertificate before its SCT is returned.
//! * [`request`] decides who may obtain a certificate for which key (SPIFFE credentials,
//!   proof of possession, the Fulcio v2 request and answer formats).
//!
//! Sans-IO like the rest of the crate: times, serial numbers and keys (PKCS #8 DER) are
//! arguments. The only randomness is the ECDSA nonce, drawn inside AWS-LC when a
//! signature is made (rcgen and the CT key both sign with aws-lc-rs).

mod der;
mod issue;
mod precert;
mod record;
pub mod request;
mod root;
mod sct;

pub use der::DerError;
pub use issue::{
    CaLoadError, CodeSigningIssuer, IssueError, IssueRequest, IssuedCertificate,
    MAX_LEAF_VALIDITY_SECONDS, MAX_OIDC_ISSUER_LEN, MAX_SERIAL_LEN, MIN_SERIAL_LEN,
};
pub use precert::{
    EmbeddedSctError, EmbeddedScts, MAX_EMBEDDED_SCT_CERTIFICATE_LEN, embedded_scts,
};
pub use record::{PRECERT_ENTRY_KIND, RecordError, precertificate_entry};
pub use root::{RootCreateError, code_signing_root_name, create_code_signing_root};
pub use sct::{
    CtKeyError, CtLogKey, HASH_ALGORITHM_SHA256, MAX_TBS_CERTIFICATE_LEN, MAX_U16_VECTOR_LEN,
    SCT_VERSION_V1, SIGNATURE_ALGORITHM_ECDSA, SctDecodeError, SctListError, SctSignError,
    SctVerifyError, SignedCertificateTimestamp, decode_sct_list, encode_sct_list, verify_sct,
};

/// Fulcio "Issuer" (deprecated) extension, 1.3.6.1.4.1.57264.1.1: the OIDC issuer as raw
/// bytes. sigstore-python's `Identity` policy checks this one.
pub const OID_FULCIO_ISSUER_V1: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];
/// Fulcio "Issuer (V2)" extension, 1.3.6.1.4.1.57264.1.8: the OIDC issuer as a DER
/// UTF8String. sigstore-js prefers this one.
pub const OID_FULCIO_ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];
/// RFC 6962 §3.3 embedded SCT list extension, 1.3.6.1.4.1.11129.2.4.2.
pub const OID_CT_PRECERT_SCTS: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
/// The DER encoding (tag, length, value) of [`OID_CT_PRECERT_SCTS`].
const OID_CT_PRECERT_SCTS_DER: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02,
];
