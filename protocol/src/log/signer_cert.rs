//! Who may write to a domain log: code-signing certificates that chain to the domain's
//! configured roots and are valid at integration time.
//!
//! A domain configures its code-signing CA as a PEM bundle ([`CodeSigningRoots`]). The
//! code-signing CA is its own trust anchor, separate from the SPIFFE trust bundle; a
//! Fulcio-style deployment configures its root and intermediate. Every entry a client
//! proposes carries a leaf certificate, and [`CodeSigningRoots::check`] admits it only if
//! the certificate is a code-signing certificate for exactly one identity, issued (via
//! at most [`MAX_CHAIN_DEPTH`] CA certificates) by a configured trust anchor, and valid at
//! the integration time the caller passes. The result, [`CertifiedSigner`], is what
//! admission needs: the identity quotas are charged to and the P-256 key the entry's
//! signature must verify with. [`VerifiedCertCache`] keeps the outcome of the expensive
//! part (parsing and the issuer signature) for certificates seen recently, since one
//! short-lived certificate usually signs a burst of entries.
//!
//! # What is checked
//!
//! On the leaf (RFC 5280 section, what is required):
//! - it parses as one DER certificate (no trailing bytes), at most
//!   [`MAX_CERTIFICATE_DER_LEN`] bytes, version 3 (§4.1.2.1);
//! - no extension it carries is malformed or repeated, and none is critical unless this
//!   module processes it (§4.2);
//! - it is not a CA: no `basicConstraints` with cA, no `keyCertSign` (§4.2.1.9, §4.2.1.3);
//! - `keyUsage` is present with `digitalSignature` (§4.2.1.3);
//! - `extendedKeyUsage` is present with `id-kp-codeSigning` (§4.2.1.12);
//!   `anyExtendedKeyUsage` alone does not count;
//! - `subjectAltName` holds exactly one name, a URI (a SPIFFE ID is parsed strictly as
//!   one) or an rfc822Name e-mail address (§4.2.1.6);
//! - its key is an ECDSA P-256 key, an uncompressed point on the curve;
//! - `notBefore <= at <= notAfter` (§4.1.2.5);
//! - its issuer name equals, byte for byte, the subject of a configured CA certificate
//!   whose key verifies the leaf's signature, and `signatureAlgorithm` equals
//!   `tbsCertificate.signature` (§4.1.1.2, §6.1.3 (a)).
//!
//! On every CA certificate of the path, up to and including the trust anchor: it is
//! valid at `at` and its `pathLenConstraint`, if any, allows the intermediates below it
//! (§6.1.4 (l), (m)). When the roots are loaded: every certificate is a version 3 CA
//! (§6.1.4 (k)), asserts `keyCertSign` if it has `keyUsage` (§6.1.4 (n)), carries no
//! critical extension this module does not process, and has an ECDSA P-256, ECDSA P-384
//! or RSA (2048 to 8192 bits) key; self-issued certificates are trust anchors and must
//! verify under their own key; every other certificate must be signed by another
//! certificate of the bundle and reach a trust anchor within [`MAX_CHAIN_DEPTH`]
//! certificates. Signatures: ECDSA with SHA-256, SHA-384 or SHA-512, and RSA PKCS #1
//! v1.5 with SHA-256, SHA-384 or SHA-512, verified with `aws-lc-rs`.
//!
//! # What is not checked
//!
//! This is not full RFC 5280 path validation. Not implemented: name constraints and
//! certificate policies (a CA certificate that marks either critical is rejected at
//! load, as §4.2 requires of an extension the implementation does not process; a
//! non-critical one is ignored); revocation (no CRL or OCSP: code-signing leaves are
//! short-lived); the §7.1 name-comparison rules (names are compared as encoded bytes,
//! as Go's `crypto/x509` does); authority and subject key identifiers (chains are built
//! by name, trying every CA of that name); extended key usage on CA certificates; the
//! Sigstore OIDC-issuer extensions and the embedded SCT (parsed, not verified: that is
//! the Sigstore verifier's business, not the log's).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::signature::{self as aws_sig, ParsedPublicKey};
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE,
    OID_X509_EXT_SUBJECT_ALT_NAME, Oid,
};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name, X509Version};

pub use crate::pkix::MAX_CERTIFICATE_DER_LEN;
use crate::pkix::{IssuerKey, KeyType, SigAlg, check_extensions, parse_certificate};
use crate::spiffe::SpiffeId;

/// The largest PEM bundle [`CodeSigningRoots::from_pem`] reads, in bytes.
pub const MAX_ROOTS_PEM_LEN: usize = 1 << 20;

/// The most certificates a root bundle may hold (trust anchors and intermediates).
pub const MAX_ROOT_CERTIFICATES: usize = 32;

/// The most CA certificates on a path from a leaf to a trust anchor, the anchor included
/// (so at most three intermediates).
pub const MAX_CHAIN_DEPTH: usize = 4;

/// The longest identity (SAN URI or e-mail address) accepted, in bytes; the SPIFFE ID
/// limit (SPIFFE-ID §2.3: "SPIFFE implementations MUST support SPIFFE URIs up to 2048
/// bytes in length").
pub const MAX_IDENTITY_LEN: usize = 2048;

/// The longest issuer or subject name kept for an error message, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 256;

/// `id-kp-codeSigning` (RFC 5280 §4.2.1.12), for error messages and documentation.
pub const OID_KP_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";

/// A signer whose certificate passed every check, reduced to what admission needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedSigner {
    /// The identity the certificate binds (its SAN: a SPIFFE ID URI, or an e-mail
    /// address for Fulcio-style certificates); quotas are charged to it.
    pub identity: String,
    /// The leaf certificate's P-256 public key, SEC1 uncompressed (65 bytes).
    pub public_key_sec1: Vec<u8>,
    /// Validity window of the leaf, Unix seconds, inclusive.
    pub not_before: i64,
    /// See `not_before`.
    pub not_after: i64,
}

impl CertifiedSigner {
    /// Whether `at` (Unix seconds) lies inside the leaf's validity window.
    pub fn is_valid_at(&self, at_unix_seconds: i64) -> bool {
        self.not_before <= at_unix_seconds && at_unix_seconds <= self.not_after
    }
}

/// A Unix time displayed as an RFC 3339 UTC timestamp, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnixTime(pub i64);

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Civil date from days since 1970-01-01 (proleptic Gregorian calendar), after
        // Howard Hinnant's `civil_from_days`; the arithmetic stays far from overflow for
        // every i64 input because `days` is at most i64::MAX / 86400.
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3_600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Why a leaf certificate is not admitted as a signer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignerCertError {
    /// The certificate is larger than [`MAX_CERTIFICATE_DER_LEN`].
    #[error("certificate is {len} bytes long; the maximum is {max}")]
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a DER X.509 certificate.
    #[error("certificate is not a valid DER X.509 certificate: {reason}")]
    Malformed {
        /// What the parser reported.
        reason: String,
    },
    /// Bytes follow the certificate.
    #[error("{len} bytes follow the certificate")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// Not a version 3 certificate, so it cannot carry the extensions required.
    #[error("certificate is X.509 version {version}; version 3 is required")]
    NotVersion3 {
        /// The version (1, 2, …).
        version: u32,
    },
    /// An extension is malformed or appears twice.
    #[error("certificate extension {oid} is malformed or appears more than once")]
    BadExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
    /// A critical extension this module does not process.
    #[error("certificate has a critical extension {oid} that provmesh does not process")]
    UnsupportedCriticalExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
    /// The certificate is a CA certificate (cA or keyCertSign).
    #[error(
        "certificate is a CA certificate (basicConstraints cA or keyUsage keyCertSign); \
         entries must be signed with an end-entity certificate"
    )]
    IsCa,
    /// No keyUsage extension.
    #[error("certificate has no key usage extension; digitalSignature is required")]
    NoKeyUsage,
    /// keyUsage without digitalSignature.
    #[error("certificate key usage does not include digitalSignature")]
    NoDigitalSignature,
    /// No extendedKeyUsage with codeSigning.
    #[error("certificate has no codeSigning extended key usage ({OID_KP_CODE_SIGNING})")]
    NoCodeSigning,
    /// No subjectAltName, or an empty one.
    #[error(
        "certificate has no subject alternative name; it must name exactly one identity \
         (a URI such as a SPIFFE ID, or an e-mail address)"
    )]
    NoIdentity,
    /// More than one subjectAltName entry.
    #[error("certificate names {count} subject alternative names; exactly one identity is allowed")]
    MultipleIdentities {
        /// How many names the SAN holds.
        count: usize,
    },
    /// The one SAN entry is neither a URI nor an e-mail address.
    #[error(
        "certificate identity is a {kind}; only a URI (such as a SPIFFE ID) or an e-mail \
         address is accepted"
    )]
    UnsupportedIdentityType {
        /// The general name type, e.g. `dNSName`.
        kind: &'static str,
    },
    /// The SAN URI or e-mail address is not well formed.
    #[error("certificate identity {identity:?} is invalid: {reason}")]
    InvalidIdentity {
        /// The identity (truncated to 256 characters).
        identity: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate's key is not ECDSA P-256.
    #[error("certificate key is {found}; signing certificates must carry an ECDSA P-256 key")]
    UnsupportedKey {
        /// What it is instead.
        found: String,
    },
    /// The P-256 key is not an uncompressed point on the curve.
    #[error("certificate P-256 public key is not a valid uncompressed curve point")]
    InvalidPublicKey,
    /// `at` is before `notBefore`.
    #[error("certificate is not valid until {} (checked at {})", UnixTime(*.not_before), UnixTime(*.at))]
    NotYetValid {
        /// The certificate's notBefore, Unix seconds.
        not_before: i64,
        /// The time checked, Unix seconds.
        at: i64,
    },
    /// `at` is after `notAfter`.
    #[error("certificate expired at {} (checked at {})", UnixTime(*.not_after), UnixTime(*.at))]
    Expired {
        /// The certificate's notAfter, Unix seconds.
        not_after: i64,
        /// The time checked, Unix seconds.
        at: i64,
    },
    /// No configured CA has the leaf's issuer name.
    #[error(
        "certificate is not issued by a configured code-signing root (its issuer is {issuer:?})"
    )]
    UnknownIssuer {
        /// The leaf's issuer name.
        issuer: String,
    },
    /// `signatureAlgorithm` differs from `tbsCertificate.signature`.
    #[error(
        "certificate signatureAlgorithm differs from the signature algorithm it was issued with"
    )]
    SignatureAlgorithmMismatch,
    /// The signature algorithm is not one this module verifies.
    #[error("certificate is signed with unsupported algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// The algorithm OID, dotted.
        oid: String,
    },
    /// CAs with the issuer's name exist but none of their keys verifies the signature.
    #[error(
        "certificate signature does not verify with any configured code-signing CA named {issuer:?}"
    )]
    BadSignature {
        /// The leaf's issuer name.
        issuer: String,
    },
    /// A CA certificate on every path to a trust anchor is outside its validity window.
    #[error(
        "code-signing CA {ca:?} is not valid at {} (valid from {} to {})",
        UnixTime(*.at), UnixTime(*.not_before), UnixTime(*.not_after)
    )]
    IssuerNotValid {
        /// The CA certificate's subject.
        ca: String,
        /// Its notBefore, Unix seconds.
        not_before: i64,
        /// Its notAfter, Unix seconds.
        not_after: i64,
        /// The time checked, Unix seconds.
        at: i64,
    },
    /// A CA's pathLenConstraint forbids the intermediates below it.
    #[error(
        "code-signing CA {ca:?} allows {path_len} intermediate certificates below it, the \
         chain has {intermediates}"
    )]
    PathLengthExceeded {
        /// The CA certificate's subject.
        ca: String,
        /// Its pathLenConstraint.
        path_len: u32,
        /// Intermediates below it on the path.
        intermediates: usize,
    },
}

/// Why a PEM bundle of code-signing roots is rejected.
///
/// `position` counts certificates in the bundle from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RootsError {
    /// The PEM bundle is larger than [`MAX_ROOTS_PEM_LEN`].
    #[error("code-signing root bundle is {len} bytes long; the maximum is {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A PEM block is malformed.
    #[error("code-signing root bundle: PEM block {position} is malformed: {reason}")]
    Pem {
        /// Which block.
        position: usize,
        /// What the PEM reader reported.
        reason: String,
    },
    /// A PEM block is not labelled `CERTIFICATE`.
    #[error(
        "code-signing root bundle: PEM block {position} is labelled {label:?}; only CERTIFICATE \
         blocks are allowed"
    )]
    NotACertificate {
        /// Which block.
        position: usize,
        /// Its label.
        label: String,
    },
    /// The bundle holds no certificate.
    #[error("code-signing root bundle holds no certificate")]
    Empty,
    /// More than [`MAX_ROOT_CERTIFICATES`] certificates.
    #[error("code-signing root bundle holds more than {max} certificates")]
    TooManyCertificates {
        /// The limit.
        max: usize,
    },
    /// A certificate is not a DER X.509 certificate, or is too large.
    #[error("code-signing root certificate {position} is not a valid X.509 certificate: {reason}")]
    Malformed {
        /// Which certificate.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A certificate is not a CA certificate.
    #[error(
        "code-signing root certificate {position} ({subject:?}) is not a CA certificate: {reason}"
    )]
    NotCa {
        /// Which certificate.
        position: usize,
        /// Its subject.
        subject: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A critical extension this module does not process (e.g. name constraints).
    #[error(
        "code-signing root certificate {position} ({subject:?}) has a critical extension {oid} \
         that provmesh does not enforce"
    )]
    UnsupportedCriticalExtension {
        /// Which certificate.
        position: usize,
        /// Its subject.
        subject: String,
        /// The extension's OID.
        oid: String,
    },
    /// The certificate's key type is not supported for issuing.
    #[error(
        "code-signing root certificate {position} ({subject:?}) has an unsupported key: {found}"
    )]
    UnsupportedKey {
        /// Which certificate.
        position: usize,
        /// Its subject.
        subject: String,
        /// What the key is.
        found: String,
    },
    /// A self-issued certificate (a trust anchor) whose self-signature does not verify.
    #[error(
        "code-signing root certificate {position} ({subject:?}) is self-issued but its \
         self-signature does not verify"
    )]
    BadSelfSignature {
        /// Which certificate.
        position: usize,
        /// Its subject.
        subject: String,
    },
    /// An intermediate that no certificate of the bundle signed.
    #[error(
        "code-signing intermediate certificate {position} ({subject:?}) does not chain to a \
         root: no certificate in the bundle named {issuer:?} signed it"
    )]
    ChainsNowhere {
        /// Which certificate.
        position: usize,
        /// Its subject.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// An intermediate whose shortest path to a trust anchor is too long.
    #[error(
        "code-signing intermediate certificate {position} ({subject:?}) needs more than {max} \
         CA certificates to reach a root"
    )]
    ChainTooLong {
        /// Which certificate.
        position: usize,
        /// Its subject.
        subject: String,
        /// [`MAX_CHAIN_DEPTH`].
        max: usize,
    },
}

/// A configured CA certificate, as reported by [`CodeSigningRoots::certificates`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeSigningCa {
    /// Its subject name, for display.
    pub subject: String,
    /// SHA-256 of its DER encoding.
    pub sha256: [u8; 32],
    /// Start of its validity window, Unix seconds, inclusive.
    pub not_before: i64,
    /// End of its validity window, Unix seconds, inclusive.
    pub not_after: i64,
    /// Whether it is a trust anchor (self-issued) rather than an intermediate.
    pub trust_anchor: bool,
}

impl CodeSigningCa {
    /// Whether `at` (Unix seconds) lies inside its validity window.
    pub fn is_valid_at(&self, at_unix_seconds: i64) -> bool {
        self.not_before <= at_unix_seconds && at_unix_seconds <= self.not_after
    }
}

/// One configured CA certificate, ready for chain building.
#[derive(Debug, Clone)]
struct CaCert {
    info: CodeSigningCa,
    subject_raw: Vec<u8>,
    key: IssuerKey,
    path_len: Option<u32>,
    /// Indexes of the bundle certificates whose key verified this certificate's
    /// signature (empty for trust anchors).
    parents: Vec<usize>,
}

/// The parts of a certificate's signature, kept while the bundle loads.
struct Signed {
    issuer_raw: Vec<u8>,
    issuer_display: String,
    tbs: Vec<u8>,
    alg: Result<SigAlg, String>,
    signature: Vec<u8>,
}

/// A domain's code-signing trust anchors and intermediates.
///
/// Built once from configuration ([`from_pem`](Self::from_pem) or
/// [`from_der`](Self::from_der)), then shared: [`check`](Self::check) takes `&self` and
/// the type is `Send + Sync`. Signatures between bundle certificates are verified at
/// load, so a check verifies only the leaf's signature.
#[derive(Debug, Clone)]
pub struct CodeSigningRoots {
    cas: Vec<CaCert>,
    fingerprint: [u8; 32],
}

impl CodeSigningRoots {
    /// Loads a PEM bundle of one or more `CERTIFICATE` blocks (text between blocks is
    /// ignored, as RFC 7468 §5.2 allows). See [`from_der`](Self::from_der) for the rules.
    pub fn from_pem(bundle: &[u8]) -> Result<CodeSigningRoots, RootsError> {
        if bundle.len() > MAX_ROOTS_PEM_LEN {
            return Err(RootsError::TooLarge {
                len: bundle.len(),
                max: MAX_ROOTS_PEM_LEN,
            });
        }
        let mut ders = Vec::new();
        for (index, block) in Pem::iter_from_buffer(bundle).enumerate() {
            let position = index + 1;
            if position > MAX_ROOT_CERTIFICATES {
                return Err(RootsError::TooManyCertificates {
                    max: MAX_ROOT_CERTIFICATES,
                });
            }
            let block = block.map_err(|e| RootsError::Pem {
                position,
                reason: e.to_string(),
            })?;
            // RFC 7468 §5.1: certificates are encoded with the "CERTIFICATE" label.
            if block.label != "CERTIFICATE" {
                return Err(RootsError::NotACertificate {
                    position,
                    label: truncate(&block.label),
                });
            }
            ders.push(block.contents);
        }
        CodeSigningRoots::from_der(&ders)
    }

    /// Loads DER certificates, in any order (e.g. a Sigstore TrustedRoot's `certChain`).
    ///
    /// Self-issued certificates (subject equal to issuer) are trust anchors and must
    /// verify under their own key; every other certificate is an intermediate that must
    /// be signed by another certificate of the set and reach a trust anchor within
    /// [`MAX_CHAIN_DEPTH`] certificates. All must be CA certificates. Duplicates are
    /// dropped. Certificates outside their validity window are accepted (the check
    /// time decides); list them with [`not_valid_at`](Self::not_valid_at).
    pub fn from_der<C: AsRef<[u8]>>(certificates: &[C]) -> Result<CodeSigningRoots, RootsError> {
        if certificates.is_empty() {
            return Err(RootsError::Empty);
        }
        if certificates.len() > MAX_ROOT_CERTIFICATES {
            return Err(RootsError::TooManyCertificates {
                max: MAX_ROOT_CERTIFICATES,
            });
        }
        let mut cas: Vec<CaCert> = Vec::with_capacity(certificates.len());
        let mut signed: Vec<Signed> = Vec::with_capacity(certificates.len());
        let mut positions: Vec<usize> = Vec::with_capacity(certificates.len());
        for (index, der) in certificates.iter().enumerate() {
            let position = index + 1;
            let (ca, parts) = parse_ca(der.as_ref(), position)?;
            if cas.iter().any(|c| c.info.sha256 == ca.info.sha256) {
                continue;
            }
            cas.push(ca);
            signed.push(parts);
            positions.push(position);
        }

        // Signatures: a trust anchor by its own key, an intermediate by every bundle
        // certificate of its issuer's name (RFC 5280 §6.1.3 (a)(1), (4)).
        for i in 0..cas.len() {
            let parts = &signed[i];
            if cas[i].info.trust_anchor {
                if verify_by(&cas[i].key, parts) != Some(true) {
                    return Err(RootsError::BadSelfSignature {
                        position: positions[i],
                        subject: cas[i].info.subject.clone(),
                    });
                }
                continue;
            }
            let parents: Vec<usize> = (0..cas.len())
                .filter(|&j| {
                    j != i
                        && cas[j].subject_raw == parts.issuer_raw
                        && verify_by(&cas[j].key, parts) == Some(true)
                })
                .collect();
            if parents.is_empty() {
                return Err(RootsError::ChainsNowhere {
                    position: positions[i],
                    subject: cas[i].info.subject.clone(),
                    issuer: parts.issuer_display.clone(),
                });
            }
            cas[i].parents = parents;
        }

        // Shortest distance to a trust anchor, in CA certificates (the anchor counts 1),
        // by relaxation: a path needs at most `cas.len()` certificates.
        let mut depth: Vec<Option<usize>> = cas
            .iter()
            .map(|c| c.info.trust_anchor.then_some(1))
            .collect();
        for _ in 0..cas.len() {
            let next: Vec<Option<usize>> = cas
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    c.parents
                        .iter()
                        .filter_map(|&p| depth[p].map(|d| d + 1))
                        .chain(depth[i])
                        .min()
                })
                .collect();
            depth = next;
        }
        for (i, d) in depth.iter().enumerate() {
            match d {
                Some(d) if *d <= MAX_CHAIN_DEPTH => {}
                Some(_) => {
                    return Err(RootsError::ChainTooLong {
                        position: positions[i],
                        subject: cas[i].info.subject.clone(),
                        max: MAX_CHAIN_DEPTH,
                    });
                }
                None => {
                    return Err(RootsError::ChainsNowhere {
                        position: positions[i],
                        subject: cas[i].info.subject.clone(),
                        issuer: signed[i].issuer_display.clone(),
                    });
                }
            }
        }

        let mut fingerprints: Vec<[u8; 32]> = cas.iter().map(|c| c.info.sha256).collect();
        fingerprints.sort_unstable();
        let mut hasher = Sha256::new();
        for f in &fingerprints {
            hasher.update(f);
        }
        Ok(CodeSigningRoots {
            cas,
            fingerprint: hasher.finalize().into(),
        })
    }

    /// The configured CA certificates, in bundle order, duplicates removed.
    pub fn certificates(&self) -> impl Iterator<Item = &CodeSigningCa> {
        self.cas.iter().map(|c| &c.info)
    }

    /// The configured CA certificates that are not valid at `at_unix_seconds` (expired or
    /// not yet valid), for a warning at load: leaves cannot chain through them then.
    pub fn not_valid_at(&self, at_unix_seconds: i64) -> impl Iterator<Item = &CodeSigningCa> {
        self.certificates()
            .filter(move |c| !c.is_valid_at(at_unix_seconds))
    }

    /// SHA-256 over the sorted SHA-256 fingerprints of the certificates: names this set
    /// of roots (two loads of the same certificates have the same fingerprint).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// Checks that `leaf_der` is a code-signing certificate issued under these roots and
    /// valid at `at_unix_seconds`, and returns the signer it certifies.
    ///
    /// The checks, in order, are listed in the [module documentation](self); the first
    /// failure is returned.
    pub fn check(
        &self,
        leaf_der: &[u8],
        at_unix_seconds: i64,
    ) -> Result<CertifiedSigner, SignerCertError> {
        self.check_full(leaf_der, at_unix_seconds)
            .map(|verified| verified.signer)
    }

    /// [`check`](Self::check), also returning the validity window of the CA path found.
    fn check_full(&self, leaf_der: &[u8], at: i64) -> Result<Verified, SignerCertError> {
        let leaf = parse_leaf(leaf_der)?;
        let signer = leaf_signer(&leaf)?;
        check_window(&signer, at)?;
        let path_window = self.verify_issuer(&leaf, at)?;
        Ok(Verified {
            signer,
            path_window,
        })
    }

    /// Finds a CA that signed `leaf` and a path from it to a trust anchor valid at `at`;
    /// returns the intersection of the path's validity windows.
    fn verify_issuer(
        &self,
        leaf: &X509Certificate<'_>,
        at: i64,
    ) -> Result<Window, SignerCertError> {
        let issuer_raw = leaf.issuer().as_raw();
        let candidates: Vec<usize> = (0..self.cas.len())
            .filter(|&i| self.cas[i].subject_raw == issuer_raw)
            .collect();
        if candidates.is_empty() {
            return Err(SignerCertError::UnknownIssuer {
                issuer: display_name(leaf.issuer()),
            });
        }
        // RFC 5280 §4.1.1.2: signatureAlgorithm "MUST contain the same algorithm
        // identifier as the signature field in the sequence tbsCertificate".
        if leaf.signature_algorithm != leaf.tbs_certificate.signature {
            return Err(SignerCertError::SignatureAlgorithmMismatch);
        }
        let alg = SigAlg::from_identifier(&leaf.signature_algorithm)
            .map_err(|oid| SignerCertError::UnsupportedSignatureAlgorithm { oid })?;
        let tbs = leaf.tbs_certificate.as_ref();
        let signature = leaf.signature_value.data.as_ref();
        let mut any_verifier = false;
        let mut problem: Option<SignerCertError> = None;
        let mut failed = [0u32; MAX_CHAIN_DEPTH];
        for &i in &candidates {
            // RFC 5280 §6.1.3 (a)(1): "The signature on the certificate can be verified
            // using working_public_key_algorithm, the working_public_key, and the
            // working_public_key_parameters."
            match self.cas[i].key.verify(alg, tbs, signature) {
                None => continue,
                Some(false) => any_verifier = true,
                Some(true) => {
                    any_verifier = true;
                    if let Some(window) = self.path_from(i, 0, at, &mut failed, &mut problem) {
                        return Ok(window);
                    }
                }
            }
        }
        Err(match (problem, any_verifier) {
            (Some(problem), _) => problem,
            (None, true) => SignerCertError::BadSignature {
                issuer: display_name(leaf.issuer()),
            },
            (None, false) => SignerCertError::UnsupportedSignatureAlgorithm {
                oid: leaf.signature_algorithm.algorithm.to_id_string(),
            },
        })
    }

    /// Depth-first search for a path from CA `ca`, with `below` intermediates between it
    /// and the leaf, to a trust anchor, every certificate valid at `at`. `failed[below]`
    /// remembers the CAs already known to have no path at that depth, so the search is
    /// linear in the bundle size per depth. The first problem met is kept for the error.
    fn path_from(
        &self,
        ca: usize,
        below: usize,
        at: i64,
        failed: &mut [u32; MAX_CHAIN_DEPTH],
        problem: &mut Option<SignerCertError>,
    ) -> Option<Window> {
        // `ca < MAX_ROOT_CERTIFICATES <= 32`, so the bit exists; `below` beyond the
        // table means the path is already too long.
        let bit = u32::try_from(ca)
            .ok()
            .and_then(|c| 1u32.checked_shl(c))
            .unwrap_or(0);
        if failed.get(below).is_none_or(|f| f & bit != 0) {
            return None;
        }
        let found = self.path_from_unmemoized(ca, below, at, failed, problem);
        if found.is_none()
            && let Some(f) = failed.get_mut(below)
        {
            *f |= bit;
        }
        found
    }

    fn path_from_unmemoized(
        &self,
        ca: usize,
        below: usize,
        at: i64,
        failed: &mut [u32; MAX_CHAIN_DEPTH],
        problem: &mut Option<SignerCertError>,
    ) -> Option<Window> {
        let cert = self.cas.get(ca)?;
        let info = &cert.info;
        // RFC 5280 §6.1.3 (a)(2): "The certificate validity period includes the current
        // time." — the integration time here.
        if !info.is_valid_at(at) {
            problem.get_or_insert_with(|| SignerCertError::IssuerNotValid {
                ca: info.subject.clone(),
                not_before: info.not_before,
                not_after: info.not_after,
                at,
            });
            return None;
        }
        // RFC 5280 §4.2.1.9: "The pathLenConstraint field [...] gives the maximum number
        // of non-self-issued intermediate certificates that may follow this certificate
        // in a valid certification path." Every intermediate here is non-self-issued
        // (self-issued certificates are trust anchors and end the path).
        if let Some(path_len) = cert.path_len
            && usize::try_from(path_len).is_ok_and(|p| below > p)
        {
            problem.get_or_insert_with(|| SignerCertError::PathLengthExceeded {
                ca: info.subject.clone(),
                path_len,
                intermediates: below,
            });
            return None;
        }
        let own = Window {
            not_before: info.not_before,
            not_after: info.not_after,
        };
        if info.trust_anchor {
            return Some(own);
        }
        if below + 1 >= MAX_CHAIN_DEPTH {
            return None;
        }
        cert.parents.iter().find_map(|&parent| {
            self.path_from(parent, below + 1, at, failed, problem)
                .map(|w| w.intersect(own))
        })
    }
}

/// A validity window, Unix seconds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    not_before: i64,
    not_after: i64,
}

impl Window {
    fn intersect(self, other: Window) -> Window {
        Window {
            not_before: self.not_before.max(other.not_before),
            not_after: self.not_after.min(other.not_after),
        }
    }

    fn contains(self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// A leaf that passed every check, with the window its CA path is valid in.
#[derive(Debug, Clone)]
struct Verified {
    signer: CertifiedSigner,
    path_window: Window,
}

/// Verifies a bundle certificate's signature with `key`; `None` if the key cannot
/// verify that algorithm.
fn verify_by(key: &IssuerKey, parts: &Signed) -> Option<bool> {
    let alg = parts.alg.as_ref().ok()?;
    key.verify(*alg, &parts.tbs, &parts.signature)
}

/// Parses and checks one bundle certificate as a CA.
fn parse_ca(der: &[u8], position: usize) -> Result<(CaCert, Signed), RootsError> {
    let malformed = |reason: String| RootsError::Malformed { position, reason };
    let cert = parse_certificate(der).map_err(malformed)?;
    let subject = display_name(cert.subject());
    let not_ca = |reason| RootsError::NotCa {
        position,
        subject: subject.clone(),
        reason,
    };
    // RFC 5280 §6.1.4 (k): "verify that the certificate is a version 3 certificate and
    // that the basicConstraints extension is present and that cA is set to TRUE."
    if cert.version() != X509Version::V3 {
        return Err(not_ca("it is not an X.509 version 3 certificate"));
    }
    check_extensions(&cert).map_err(|(oid, malformed_ext)| {
        if malformed_ext {
            malformed(format!(
                "extension {oid} is malformed or appears more than once"
            ))
        } else {
            RootsError::UnsupportedCriticalExtension {
                position,
                subject: subject.clone(),
                oid,
            }
        }
    })?;
    let basic = cert
        .basic_constraints()
        .map_err(|e| malformed(e.to_string()))?;
    let Some(basic) = basic.filter(|b| b.value.ca) else {
        return Err(not_ca("basicConstraints cA is not set"));
    };
    // RFC 5280 §6.1.4 (n): "If a key usage extension is present, verify that the
    // keyCertSign bit is set."
    if let Some(ku) = cert.key_usage().map_err(|e| malformed(e.to_string()))?
        && !ku.value.key_cert_sign()
    {
        return Err(not_ca("keyUsage does not include keyCertSign"));
    }
    let key =
        IssuerKey::from_spki(cert.public_key()).map_err(|found| RootsError::UnsupportedKey {
            position,
            subject: subject.clone(),
            found,
        })?;
    let trust_anchor = cert.subject().as_raw() == cert.issuer().as_raw();
    let info = CodeSigningCa {
        subject: subject.clone(),
        sha256: Sha256::digest(der).into(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        trust_anchor,
    };
    let alg = if cert.signature_algorithm == cert.tbs_certificate.signature {
        SigAlg::from_identifier(&cert.signature_algorithm)
    } else {
        Err("signatureAlgorithm differs from tbsCertificate.signature".to_owned())
    };
    let signed = Signed {
        issuer_raw: cert.issuer().as_raw().to_vec(),
        issuer_display: display_name(cert.issuer()),
        tbs: cert.tbs_certificate.as_ref().to_vec(),
        alg,
        signature: cert.signature_value.data.to_vec(),
    };
    let ca = CaCert {
        info,
        subject_raw: cert.subject().as_raw().to_vec(),
        key,
        path_len: basic.value.path_len_constraint,
        parents: Vec::new(),
    };
    Ok((ca, signed))
}

/// Parses a leaf and checks its structure and extensions (not its key or identity).
fn parse_leaf(der: &[u8]) -> Result<X509Certificate<'_>, SignerCertError> {
    if der.len() > MAX_CERTIFICATE_DER_LEN {
        return Err(SignerCertError::TooLarge {
            len: der.len(),
            max: MAX_CERTIFICATE_DER_LEN,
        });
    }
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| SignerCertError::Malformed {
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(SignerCertError::TrailingBytes { len: rest.len() });
    }
    // RFC 5280 §4.1.2.1: "When extensions are used, as expected in this profile, version
    // MUST be 3 (value is 2)."
    if cert.version() != X509Version::V3 {
        return Err(SignerCertError::NotVersion3 {
            version: cert.version().0.saturating_add(1),
        });
    }
    check_extensions(&cert).map_err(|(oid, malformed)| {
        if malformed {
            SignerCertError::BadExtension { oid }
        } else {
            SignerCertError::UnsupportedCriticalExtension { oid }
        }
    })?;
    Ok(cert)
}

/// Checks the leaf's CA status, key usages, identity and key; returns the signer.
fn leaf_signer(cert: &X509Certificate<'_>) -> Result<CertifiedSigner, SignerCertError> {
    let bad = |oid: &Oid<'_>| SignerCertError::BadExtension {
        oid: oid.to_id_string(),
    };
    // RFC 5280 §4.2.1.9: "The cA boolean indicates whether the certified public key may
    // be used to verify certificate signatures."
    let basic = cert
        .basic_constraints()
        .map_err(|_| bad(&OID_X509_EXT_BASIC_CONSTRAINTS))?;
    if basic.is_some_and(|b| b.value.ca) {
        return Err(SignerCertError::IsCa);
    }
    let key_usage = cert
        .key_usage()
        .map_err(|_| bad(&OID_X509_EXT_KEY_USAGE))?
        .ok_or(SignerCertError::NoKeyUsage)?;
    // RFC 5280 §4.2.1.3: "If the cA boolean is not asserted, then the keyCertSign bit in
    // the key usage extension MUST NOT be asserted." Such a certificate claims to sign
    // certificates: it is not an end-entity certificate.
    if key_usage.value.key_cert_sign() {
        return Err(SignerCertError::IsCa);
    }
    // RFC 5280 §4.2.1.3: "The digitalSignature bit is asserted when the subject public
    // key is used for verifying digital signatures, other than signatures on
    // certificates (bit 5) and CRLs (bit 6)".
    if !key_usage.value.digital_signature() {
        return Err(SignerCertError::NoDigitalSignature);
    }
    // RFC 5280 §4.2.1.12: "id-kp-codeSigning [...] Signing of downloadable executable
    // code", and "If the extension is present, then the certificate MUST only be used
    // for one of the purposes indicated." `anyExtendedKeyUsage` is not enough: Sigstore
    // verifiers require codeSigning itself.
    let eku = cert
        .extended_key_usage()
        .map_err(|_| bad(&OID_X509_EXT_EXTENDED_KEY_USAGE))?;
    if !eku.is_some_and(|e| e.value.code_signing) {
        return Err(SignerCertError::NoCodeSigning);
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|_| bad(&OID_X509_EXT_SUBJECT_ALT_NAME))?;
    let names = san.map(|s| s.value.general_names.as_slice()).unwrap_or(&[]);
    let identity = match names {
        [] => return Err(SignerCertError::NoIdentity),
        [name] => identity_of(name)?,
        more => {
            return Err(SignerCertError::MultipleIdentities { count: more.len() });
        }
    };
    let public_key_sec1 = p256_key(cert.public_key())?;
    Ok(CertifiedSigner {
        identity,
        public_key_sec1,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The leaf's P-256 key as a SEC1 uncompressed point, checked to be on the curve.
fn p256_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<Vec<u8>, SignerCertError> {
    let key_type = KeyType::of(spki);
    if key_type != KeyType::P256 {
        return Err(SignerCertError::UnsupportedKey {
            found: key_type.to_string(),
        });
    }
    let point = spki.subject_public_key.data.as_ref();
    // SEC1 §2.3.3: an uncompressed point is 0x04 ‖ X ‖ Y, 32 bytes each for P-256.
    // Compressed points (RFC 5480 §2.2 allows them, "MAY") are not accepted: admission
    // hands the key on as 65 bytes.
    if point.len() != 65 || point.first() != Some(&0x04) {
        return Err(SignerCertError::InvalidPublicKey);
    }
    ParsedPublicKey::new(&aws_sig::ECDSA_P256_SHA256_ASN1, point)
        .map_err(|_| SignerCertError::InvalidPublicKey)?;
    Ok(point.to_vec())
}

/// The identity a single SAN entry names.
fn identity_of(name: &GeneralName<'_>) -> Result<String, SignerCertError> {
    let invalid = |identity: &str, reason: String| SignerCertError::InvalidIdentity {
        identity: truncate(identity),
        reason,
    };
    match name {
        GeneralName::URI(uri) => {
            check_printable(uri).map_err(|r| invalid(uri, r))?;
            // RFC 5280 §4.2.1.6: "The name MUST NOT be a relative URI, and it MUST follow
            // the URI syntax and encoding rules specified in [RFC3986]. The name MUST
            // include both a scheme (e.g., "http" or "ftp") and a scheme-specific-part."
            let Some((scheme, rest)) = uri.split_once(':') else {
                return Err(invalid(uri, "the URI has no scheme".to_owned()));
            };
            // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
            let mut chars = scheme.chars();
            let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !scheme_ok {
                return Err(invalid(uri, "the URI scheme is not valid".to_owned()));
            }
            if rest.is_empty() {
                return Err(invalid(
                    uri,
                    "the URI has no scheme-specific part".to_owned(),
                ));
            }
            // A SPIFFE ID must be a valid one: quotas and policies match it exactly.
            if scheme.eq_ignore_ascii_case("spiffe") {
                let id = SpiffeId::parse(uri).map_err(|e| invalid(uri, e.to_string()))?;
                return Ok(id.into_string());
            }
            Ok((*uri).to_owned())
        }
        GeneralName::RFC822Name(mailbox) => {
            check_printable(mailbox).map_err(|r| invalid(mailbox, r))?;
            // RFC 5280 §4.2.1.6: "The format of an rfc822Name is a "Mailbox" as defined
            // in Section 4.1.2 of [RFC2821]." — `Local-part "@" Domain`.
            match mailbox.rsplit_once('@') {
                Some((local, domain))
                    if !local.is_empty() && !domain.is_empty() && !local.contains('@') =>
                {
                    Ok((*mailbox).to_owned())
                }
                _ => Err(invalid(
                    mailbox,
                    "an e-mail address must have the form local-part@domain".to_owned(),
                )),
            }
        }
        other => Err(SignerCertError::UnsupportedIdentityType {
            kind: general_name_kind(other),
        }),
    }
}

/// An identity must be non-empty, at most [`MAX_IDENTITY_LEN`] bytes of printable ASCII
/// without spaces: it is logged, compared and used as a quota key.
fn check_printable(identity: &str) -> Result<(), String> {
    if identity.is_empty() {
        return Err("it is empty".to_owned());
    }
    if identity.len() > MAX_IDENTITY_LEN {
        return Err(format!(
            "it is {} bytes long; the maximum is {MAX_IDENTITY_LEN}",
            identity.len()
        ));
    }
    if let Some(c) = identity.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "it contains {c:?}; only printable ASCII without spaces is accepted"
        ));
    }
    Ok(())
}

/// The ASN.1 name of a general name's type, for messages.
fn general_name_kind(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::RFC822Name(_) => "rfc822Name",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::Invalid(..) => "malformed general name",
    }
}

/// RFC 5280 §4.1.2.5: "The validity period for a certificate is the period of time from
/// notBefore through notAfter, inclusive."
fn check_window(signer: &CertifiedSigner, at: i64) -> Result<(), SignerCertError> {
    if at < signer.not_before {
        return Err(SignerCertError::NotYetValid {
            not_before: signer.not_before,
            at,
        });
    }
    if at > signer.not_after {
        return Err(SignerCertError::Expired {
            not_after: signer.not_after,
            at,
        });
    }
    Ok(())
}

/// A name for messages: its RFC 4514-style string, truncated.
fn display_name(name: &X509Name<'_>) -> String {
    let text = name.to_string();
    if text.is_empty() {
        "(empty name)".to_owned()
    } else {
        truncate(&text)
    }
}

/// At most [`MAX_DISPLAY_NAME_CHARS`] characters of `text`, with `…` if cut.
fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_DISPLAY_NAME_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or_default()),
    }
}

/// Hit and miss counts of a [`VerifiedCertCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups answered from the cache (including those that then failed the time check).
    pub hits: u64,
    /// Lookups that ran the full check.
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
}

/// What the cache keeps for one certificate: the signer and its CA path's window.
#[derive(Debug, Clone)]
struct CacheEntry {
    signer: CertifiedSigner,
    path_window: Window,
}

/// The cache's state, behind its mutex.
#[derive(Debug, Default)]
struct CacheState {
    /// The fingerprint of the roots the entries were verified under.
    roots: Option<[u8; 32]>,
    current: HashMap<[u8; 32], CacheEntry>,
    previous: HashMap<[u8; 32], CacheEntry>,
    hits: u64,
    misses: u64,
}

/// A bounded cache of certificates that passed [`CodeSigningRoots::check`], for the
/// log's write path.
///
/// Keyed by SHA-256 of the **full DER** of the leaf. It must be: a key derived from less
/// (serial and issuer, the TBS, the public key) would let a certificate with a forged
/// signature or different extensions hit an entry verified for another certificate.
/// Only successes are cached. A hit skips parsing and the signature check, which cannot
/// change for the same bytes under the same roots, and re-checks only what can: the
/// leaf's validity window and that of the CA path it was verified through (if the path
/// has expired at the new time, the full check runs again and may find another path).
///
/// Entries belong to one set of roots: a lookup with roots of a different
/// [`fingerprint`](CodeSigningRoots::fingerprint) empties the cache first, so a
/// reconfigured domain never admits a certificate on the strength of a removed root.
///
/// Eviction is two-generational: new entries go into the current generation; when it
/// holds half the capacity it becomes the previous one and the old previous generation
/// is dropped. A hit in the previous generation moves the entry back to the current
/// one, so certificates in steady use stay. At most `capacity` entries are held.
///
/// The cache is `Sync`: its state sits behind a [`Mutex`] held only for map operations,
/// never during a signature check.
#[derive(Debug)]
pub struct VerifiedCertCache {
    capacity: usize,
    state: Mutex<CacheState>,
}

impl VerifiedCertCache {
    /// A cache holding at most `capacity` certificates (0 disables caching).
    pub fn new(capacity: usize) -> VerifiedCertCache {
        VerifiedCertCache {
            capacity,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The capacity fixed at construction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Hit and miss counts and the number of entries.
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            hits: state.hits,
            misses: state.misses,
            entries: state.current.len() + state.previous.len(),
        }
    }

    /// [`CodeSigningRoots::check`] with this cache: same result for the same arguments.
    pub fn check_cached(
        &self,
        roots: &CodeSigningRoots,
        leaf_der: &[u8],
        at_unix_seconds: i64,
    ) -> Result<CertifiedSigner, SignerCertError> {
        let at = at_unix_seconds;
        // Oversized input is rejected before it is hashed.
        if leaf_der.len() > MAX_CERTIFICATE_DER_LEN {
            return roots.check(leaf_der, at);
        }
        let key: [u8; 32] = Sha256::digest(leaf_der).into();
        let cached = {
            let mut state = self.lock();
            if state.roots != Some(roots.fingerprint) {
                state.current.clear();
                state.previous.clear();
                state.roots = Some(roots.fingerprint);
            }
            let found = match state.current.get(&key) {
                Some(entry) => Some(entry.clone()),
                None => {
                    let promoted = state.previous.remove(&key);
                    if let Some(entry) = &promoted {
                        self.insert(&mut state, key, entry.clone());
                    }
                    promoted
                }
            };
            match found {
                Some(entry) if entry.path_window.contains(at) || !entry.signer.is_valid_at(at) => {
                    state.hits += 1;
                    Some(entry)
                }
                _ => {
                    state.misses += 1;
                    None
                }
            }
        };
        if let Some(entry) = cached {
            // The same order as the full check: the leaf's window first.
            check_window(&entry.signer, at)?;
            return Ok(entry.signer);
        }
        let verified = roots.check_full(leaf_der, at)?;
        let mut state = self.lock();
        // Another task may have reconfigured the cache for other roots meanwhile.
        if state.roots == Some(roots.fingerprint) {
            self.insert(
                &mut state,
                key,
                CacheEntry {
                    signer: verified.signer.clone(),
                    path_window: verified.path_window,
                },
            );
        }
        Ok(verified.signer)
    }

    /// Inserts into the current generation, rotating generations when it is full.
    fn insert(&self, state: &mut CacheState, key: [u8; 32], entry: CacheEntry) {
        if self.capacity == 0 {
            return;
        }
        let generation = self.capacity.div_ceil(2);
        if !state.current.contains_key(&key) && state.current.len() >= generation {
            state.previous = std::mem::take(&mut state.current);
        }
        state.previous.remove(&key);
        // With an odd capacity both generations together may reach it: drop one old
        // entry to stay within the bound.
        if !state.current.contains_key(&key)
            && state.current.len() + state.previous.len() >= self.capacity
            && let Some(old) = state.previous.keys().next().copied()
        {
            state.previous.remove(&old);
        }
        state.current.insert(key, entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // The state is consistent after every map operation, so a panic elsewhere while
        // the lock was held leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
