//! Creating a domain's code-signing root: a self-signed CA certificate that issues the
//! code-signing leaves directly.
//!
//! Design "Roles": the code-signing CA is its own root, published in the domain record
//! and in `trusted_root.json`, never under the SPIFFE bundle's X.509-SVID root (a CA
//! there could mint SVIDs every partner would accept).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyIdMethod,
    KeyUsagePurpose, SerialNumber,
};
use thiserror::Error;

use super::issue::{
    MAX_SERIAL_LEN, MAX_UNIX_TIME, MIN_SERIAL_LEN, SerialProblem, key_identifier, load_ec_key,
    pkcs8_curve, serial_number, set_window,
};
use crate::spiffe::TrustDomain;

/// Why a code-signing root could not be created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RootCreateError {
    /// The key is not a PKCS #8 ECDSA P-256 or P-384 private key.
    #[error(
        "the code-signing root key is not a PKCS #8 ECDSA P-256 or P-384 private key: {reason}"
    )]
    InvalidKey {
        /// What is wrong.
        reason: String,
    },
    /// notBefore after notAfter, or outside 1970..=9999.
    #[error(
        "code-signing root validity {not_before}..={not_after} (Unix seconds) is empty or out \
         of range"
    )]
    InvalidValidity {
        /// The requested notBefore.
        not_before: i64,
        /// The requested notAfter.
        not_after: i64,
    },
    /// The serial is not 16 to 20 bytes.
    #[error(
        "serial is {len} bytes; {MIN_SERIAL_LEN} to {MAX_SERIAL_LEN} random bytes are required"
    )]
    SerialLength {
        /// Its length.
        len: usize,
    },
    /// The serial is zero (after clearing the top bit).
    #[error("serial is zero; RFC 5280 requires a positive serial number")]
    SerialZero,
    /// rcgen failed to sign.
    #[error("signing the code-signing root failed: {reason}")]
    Signing {
        /// What rcgen reported.
        reason: String,
    },
}

/// The subject (and issuer) common name of a domain's code-signing root.
pub fn code_signing_root_name(trust_domain: &TrustDomain) -> String {
    format!("{trust_domain} provmesh code-signing root")
}

/// Creates the self-signed code-signing root of `trust_domain`, DER:
///
/// - subject = issuer = `CN=<trust domain> provmesh code-signing root`;
/// - basicConstraints (critical): cA, pathLenConstraint 0 — leaves only, no
///   intermediates below it;
/// - keyUsage (critical): keyCertSign, cRLSign (RFC 5280 §4.2.1.3: "the keyCertSign bit
///   MUST be asserted" for a key that verifies certificate signatures);
/// - subjectKeyIdentifier (RFC 5280 §4.2.1.2: "this extension MUST appear in all
///   conforming CA certificates"), the leaves' authorityKeyIdentifier; no
///   authorityKeyIdentifier of its own (§4.2.1.1 lets a self-signed CA omit it).
///
/// `key_pkcs8_der` is the root's PKCS #8 ECDSA P-256 (or P-384) private key; the
/// validity is `not_before_unix..=not_after_unix`, Unix seconds; `serial` is 16 to 20
/// random bytes (top bit cleared, as for leaves). The same key and certificate then load
/// into [`CodeSigningIssuer::new`](super::CodeSigningIssuer::new).
pub fn create_code_signing_root(
    trust_domain: &TrustDomain,
    key_pkcs8_der: &[u8],
    not_before_unix: i64,
    not_after_unix: i64,
    serial: &[u8],
) -> Result<Vec<u8>, RootCreateError> {
    let curve = pkcs8_curve(key_pkcs8_der).ok_or_else(|| RootCreateError::InvalidKey {
        reason: "aws-lc-rs accepts it neither as P-256 nor as P-384 PKCS #8".to_owned(),
    })?;
    let key = load_ec_key(key_pkcs8_der, curve)
        .map_err(|reason| RootCreateError::InvalidKey { reason })?;
    if not_before_unix < 0 || not_after_unix > MAX_UNIX_TIME || not_before_unix > not_after_unix {
        return Err(RootCreateError::InvalidValidity {
            not_before: not_before_unix,
            not_after: not_after_unix,
        });
    }
    let serial = serial_number(serial).map_err(|problem| match problem {
        SerialProblem::Length(len) => RootCreateError::SerialLength { len },
        SerialProblem::Zero => RootCreateError::SerialZero,
    })?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // Trusted roots name each CA by organization and common name, and sigstore-python
    // requires both: the organization is the trust domain.
    name.push(DnType::OrganizationName, trust_domain.as_str());
    name.push(DnType::CommonName, code_signing_root_name(trust_domain));
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    set_window(&mut params, not_before_unix, not_after_unix);
    // rcgen writes basicConstraints critical and, for a CA, the subjectKeyIdentifier.
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.public_key_raw()));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .self_signed(&key)
        .map(|cert| cert.der().to_vec())
        .map_err(|e| RootCreateError::Signing {
            reason: e.to_string(),
        })
}
