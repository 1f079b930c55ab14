//! X.509-SVID validation: does a certificate chain prove a SPIFFE ID of a trust domain,
//! under that trust domain's bundle, at a given time?
//!
//! Implements the validation of the X509-SVID standard
//! (<https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md>), section 5:
//! "An X.509 SVID is validated by performing path validation as defined in RFC 5280
//! [...] using the trust bundle of the trust domain as the set of trust anchors", with
//! the leaf profile of sections 2 and 4:
//!
//! - §2: "An X.509 SVID MUST contain exactly one URI SAN, and by extension, exactly one
//!   SPIFFE ID." The ID must be a workload ID (a path), of the expected trust domain.
//! - §4.1: "Leaf certificates MUST set the cA field to false."
//! - §4.3: "Leaf SVIDs MUST set digitalSignature. [...] Leaf SVIDs MUST NOT set
//!   keyCertSign or cRLSign."
//! - §4.1/§4.3 for signing certificates (intermediates sent with the leaf): cA true and
//!   keyCertSign set.
//!
//! The chain is the Workload API's order: leaf first, then the intermediates, each
//! issued by the next; the last one (or the leaf) is issued by an X.509 authority of the
//! bundle. Every certificate, the authority included, must be valid at the given time.
//! Signatures are checked with `aws-lc-rs` (ECDSA P-256/P-384, RSA PKCS #1 v1.5).
//!
//! Not implemented (as in the log's signer check): name constraints and policies (a
//! certificate marking either critical is refused), revocation (SVIDs are short-lived).

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;

use crate::machine::Timestamp;
use crate::pkix::{IssuerKey, KeyType, SigAlg, check_extensions, parse_certificate};
use crate::spiffe::{SpiffeId, TrustBundle, TrustDomain};

/// The most certificates an X.509-SVID chain may hold, leaf included.
pub const MAX_SVID_CHAIN_LEN: usize = 8;

/// An X.509-SVID whose chain verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedX509Svid {
    /// The SPIFFE ID of its URI SAN.
    pub spiffe_id: SpiffeId,
    /// The leaf's public key, DER SubjectPublicKeyInfo.
    pub public_key_spki_der: Vec<u8>,
    /// The leaf's notAfter, Unix seconds.
    pub not_after_unix: i64,
}

/// Why a chain is not a valid X.509-SVID of the trust domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum X509SvidError {
    /// No certificate at all.
    #[error("the X.509-SVID chain is empty")]
    EmptyChain,
    /// More certificates than [`MAX_SVID_CHAIN_LEN`].
    #[error(
        "the X.509-SVID chain has {len} certificates; at most {MAX_SVID_CHAIN_LEN} are accepted"
    )]
    ChainTooLong {
        /// How many.
        len: usize,
    },
    /// A certificate does not parse or breaks the certificate rules.
    #[error("certificate {position} of the X.509-SVID chain is malformed: {reason}")]
    Malformed {
        /// 0 for the leaf.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// The leaf does not have the X.509-SVID leaf profile.
    #[error("not an X.509-SVID: {reason}")]
    NotSvid {
        /// Which rule it breaks.
        reason: String,
    },
    /// The SVID names another trust domain.
    #[error("the X.509-SVID is for {spiffe_id}, not a workload of trust domain {expected}")]
    ForeignTrustDomain {
        /// The SVID's ID.
        spiffe_id: String,
        /// The trust domain required.
        expected: String,
    },
    /// A certificate is expired or not yet valid.
    #[error(
        "certificate {position} of the X.509-SVID chain is not valid at {at} (Unix seconds): \
         valid from {not_before} to {not_after}"
    )]
    NotValidAt {
        /// 0 for the leaf; the chain length for the bundle authority.
        position: usize,
        /// notBefore, Unix seconds.
        not_before: i64,
        /// notAfter, Unix seconds.
        not_after: i64,
        /// The time of the check.
        at: i64,
    },
    /// An intermediate is not a signing certificate.
    #[error("certificate {position} of the X.509-SVID chain is not a CA: {reason}")]
    NotCa {
        /// Its position.
        position: usize,
        /// Which rule it breaks.
        reason: String,
    },
    /// A signature does not verify, or the chain does not lead to the bundle.
    #[error(
        "certificate {position} of the X.509-SVID chain was not issued by the next one nor by \
         an X.509 authority of the {trust_domain} bundle"
    )]
    Untrusted {
        /// The certificate whose issuer was not found.
        position: usize,
        /// The trust domain whose bundle was searched.
        trust_domain: String,
    },
    /// The bundle has no X.509 authority.
    #[error("the {trust_domain} bundle has no X.509 authority to validate X.509-SVIDs with")]
    NoAuthorities {
        /// The trust domain.
        trust_domain: String,
    },
}

/// Checks that `signature` over `message` was made with the key of the X.509-SVID leaf
/// `svid` (already validated with [`verify_x509_svid`]).
///
/// The SVID key signs with its natural hash: ECDSA P-256 and RSA PKCS #1 v1.5 with
/// SHA-256, ECDSA P-384 with SHA-384 (the key types SPIRE issues: `ec-p256` by default,
/// `ec-p384`, `rsa-2048`, `rsa-4096`). ECDSA signatures are ASN.1 DER.
pub fn verify_svid_signature(
    svid: &VerifiedX509Svid,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SvidSignatureError> {
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&svid.public_key_spki_der)
        .map_err(|_| SvidSignatureError::UnsupportedKey)?;
    let alg = match KeyType::of(&spki) {
        KeyType::P256 => SigAlg::EcdsaSha256,
        KeyType::P384 => SigAlg::EcdsaSha384,
        KeyType::Rsa => SigAlg::RsaPkcs1Sha256,
        _ => return Err(SvidSignatureError::UnsupportedKey),
    };
    let key = IssuerKey::from_spki(&spki).map_err(|_| SvidSignatureError::UnsupportedKey)?;
    match key.verify(alg, message, signature) {
        Some(true) => Ok(()),
        Some(false) => Err(SvidSignatureError::BadSignature),
        None => Err(SvidSignatureError::UnsupportedKey),
    }
}

/// Why a signature is not one of an X.509-SVID's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidSignatureError {
    /// The SVID's key is not ECDSA P-256/P-384 or RSA.
    #[error("the X.509-SVID's key type cannot sign here (ECDSA P-256/P-384 or RSA only)")]
    UnsupportedKey,
    /// The signature does not verify with the SVID's key.
    #[error("the signature does not verify with the X.509-SVID's key")]
    BadSignature,
}

/// Validates `chain` (leaf first, DER) as an X.509-SVID of `trust_domain` under its
/// `bundle`, at `now`. See the module documentation for the rules.
pub fn verify_x509_svid<C: AsRef<[u8]>>(
    chain: &[C],
    trust_domain: &TrustDomain,
    bundle: &TrustBundle,
    now: Timestamp,
) -> Result<VerifiedX509Svid, X509SvidError> {
    if chain.is_empty() {
        return Err(X509SvidError::EmptyChain);
    }
    if chain.len() > MAX_SVID_CHAIN_LEN {
        return Err(X509SvidError::ChainTooLong { len: chain.len() });
    }
    let at = i64::try_from(now.as_unix_seconds()).unwrap_or(i64::MAX);
    let certificates = chain
        .iter()
        .enumerate()
        .map(|(position, der)| parse_checked(der.as_ref(), position))
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, intermediates) = match certificates.split_first() {
        Some(split) => split,
        None => return Err(X509SvidError::EmptyChain),
    };
    let spiffe_id = leaf_identity(leaf)?;
    if !spiffe_id.member_of(trust_domain) {
        return Err(X509SvidError::ForeignTrustDomain {
            spiffe_id: spiffe_id.as_str().to_owned(),
            expected: trust_domain.as_str().to_owned(),
        });
    }
    for (offset, intermediate) in intermediates.iter().enumerate() {
        check_signing_certificate(intermediate, offset + 1)?;
    }
    for (position, cert) in certificates.iter().enumerate() {
        check_validity(cert, position, at)?;
    }
    let authorities = bundle
        .x509_authorities()
        .filter_map(|der| parse_certificate(der).ok())
        .collect::<Vec<_>>();
    if authorities.is_empty() {
        return Err(X509SvidError::NoAuthorities {
            trust_domain: trust_domain.as_str().to_owned(),
        });
    }
    let untrusted = |position| X509SvidError::Untrusted {
        position,
        trust_domain: trust_domain.as_str().to_owned(),
    };
    for (position, cert) in certificates.iter().enumerate() {
        // An authority of the bundle ends the path. RFC 5280 §6.1: trust anchors are
        // given by the bundle; their own CA flags are the bundle's business, their
        // validity is checked like the chain's.
        let mut anchored = false;
        for authority in authorities
            .iter()
            .filter(|a| a.subject().as_raw() == cert.issuer().as_raw())
        {
            if signed_by(cert, authority) {
                check_validity(authority, certificates.len(), at)?;
                anchored = true;
                break;
            }
        }
        if anchored {
            return Ok(VerifiedX509Svid {
                spiffe_id,
                public_key_spki_der: leaf.public_key().raw.to_vec(),
                not_after_unix: leaf.validity().not_after.timestamp(),
            });
        }
        match certificates.get(position + 1) {
            Some(next)
                if next.subject().as_raw() == cert.issuer().as_raw() && signed_by(cert, next) => {}
            _ => return Err(untrusted(position)),
        }
    }
    Err(untrusted(certificates.len().saturating_sub(1)))
}

fn parse_checked(der: &[u8], position: usize) -> Result<X509Certificate<'_>, X509SvidError> {
    let malformed = |reason: String| X509SvidError::Malformed { position, reason };
    let cert = parse_certificate(der).map_err(malformed)?;
    check_extensions(&cert).map_err(|(oid, is_malformed)| {
        malformed(if is_malformed {
            format!("extension {oid} is malformed or repeated")
        } else {
            format!("critical extension {oid} is not supported")
        })
    })?;
    Ok(cert)
}

/// The leaf profile (X509-SVID §2, §4.1, §4.3) and its SPIFFE ID.
fn leaf_identity(leaf: &X509Certificate<'_>) -> Result<SpiffeId, X509SvidError> {
    let not_svid = |reason: &str| X509SvidError::NotSvid {
        reason: reason.to_owned(),
    };
    let basic = leaf
        .basic_constraints()
        .map_err(|_| not_svid("its basicConstraints extension is malformed"))?;
    if basic.is_some_and(|b| b.value.ca) {
        return Err(not_svid("the leaf is a CA certificate (cA is true)"));
    }
    let key_usage = leaf
        .key_usage()
        .map_err(|_| not_svid("its keyUsage extension is malformed"))?
        .ok_or_else(|| not_svid("the leaf has no keyUsage; digitalSignature is required"))?;
    if !key_usage.value.digital_signature() {
        return Err(not_svid("the leaf's keyUsage lacks digitalSignature"));
    }
    if key_usage.value.key_cert_sign() || key_usage.value.crl_sign() {
        return Err(not_svid("the leaf's keyUsage sets keyCertSign or cRLSign"));
    }
    let san = leaf
        .subject_alternative_name()
        .map_err(|_| not_svid("its subjectAltName extension is malformed"))?
        .ok_or_else(|| not_svid("the leaf has no subjectAltName"))?;
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    let (Some(uri), None) = (uris.next(), uris.next()) else {
        return Err(not_svid("the leaf must have exactly one URI SAN"));
    };
    let spiffe_id = SpiffeId::parse(uri).map_err(|e| X509SvidError::NotSvid {
        reason: format!("its URI SAN {uri:?} is not a SPIFFE ID: {e}"),
    })?;
    if spiffe_id.is_trust_domain_id() {
        return Err(not_svid(
            "its SPIFFE ID names a trust domain, not a workload (it has no path)",
        ));
    }
    Ok(spiffe_id)
}

/// X509-SVID §4.1 and §4.3 for an intermediate: cA true and keyCertSign.
fn check_signing_certificate(
    cert: &X509Certificate<'_>,
    position: usize,
) -> Result<(), X509SvidError> {
    let not_ca = |reason: &str| X509SvidError::NotCa {
        position,
        reason: reason.to_owned(),
    };
    let basic = cert
        .basic_constraints()
        .map_err(|_| not_ca("its basicConstraints extension is malformed"))?;
    if !basic.is_some_and(|b| b.value.ca) {
        return Err(not_ca("cA is not set"));
    }
    let key_usage = cert
        .key_usage()
        .map_err(|_| not_ca("its keyUsage extension is malformed"))?;
    if key_usage.is_some_and(|ku| !ku.value.key_cert_sign()) {
        return Err(not_ca("its keyUsage lacks keyCertSign"));
    }
    Ok(())
}

fn check_validity(
    cert: &X509Certificate<'_>,
    position: usize,
    at: i64,
) -> Result<(), X509SvidError> {
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if at < not_before || at > not_after {
        return Err(X509SvidError::NotValidAt {
            position,
            not_before,
            not_after,
            at,
        });
    }
    Ok(())
}

/// Whether `issuer`'s key verifies `cert`'s signature (RFC 5280 §6.1.3 (a)(1)), with the
/// outer and inner signature algorithms equal (§4.1.1.2).
fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    if cert.signature_algorithm != cert.tbs_certificate.signature {
        return false;
    }
    let Ok(alg) = SigAlg::from_identifier(&cert.signature_algorithm) else {
        return false;
    };
    let Ok(key) = IssuerKey::from_spki(issuer.public_key()) else {
        return false;
    };
    key.verify(
        alg,
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data,
    )
    .unwrap_or(false)
}
