//! Issuing Fulcio-profile code-signing certificates with one embedded SCT.
//!
//! [`CodeSigningIssuer`] holds the domain's code-signing CA (certificate and key) and its
//! CT log key; [`CodeSigningIssuer::issue`] certifies a workload's P-256 public key for
//! its SPIFFE ID in the Fulcio profile, with one embedded SCT (the profile and the SCT
//! recipe are documented on `issue`).
//!
//! The caller (the node's CA endpoint) owns what this module cannot see: that the
//! requester proved the SPIFFE ID and possession of the key, the clock, the random
//! serial, and recording the precertificate in the domain log before the certificate is
//! handed out (design "Roles").

use std::fmt;
use std::time::Duration;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA384_ASN1,
    ECDSA_P256_SHA512_ASN1, ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
    ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P384_SHA512_ASN1, EcdsaKeyPair, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    VerificationAlgorithm,
};
use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PublicKeyData, SanType, SerialNumber,
    SignatureAlgorithm, date_time_ymd,
};
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use x509_parser::asn1_rs::Tag;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name, X509Version};

use super::der::{self, TAG_OCTET_STRING, TAG_UTF8_STRING};
use super::precert::embedded_scts;
use super::sct::{CtLogKey, SctSignError, SignedCertificateTimestamp, encode_sct_list};
use super::{OID_CT_PRECERT_SCTS, OID_FULCIO_ISSUER_V1, OID_FULCIO_ISSUER_V2};
use crate::spiffe::{SpiffeId, TrustDomain};

/// The longest leaf validity [`CodeSigningIssuer::issue`] grants: ten minutes (design
/// "Roles": "short-lived (≤ 10 min) code-signing certificates").
pub const MAX_LEAF_VALIDITY_SECONDS: u32 = 600;
/// The fewest serial bytes accepted: RFC 5280 §4.1.2.2 and the CA/Browser Forum ask for
/// at least 64 bits of randomness; 16 bytes leave 127 after the top bit is cleared.
pub const MIN_SERIAL_LEN: usize = 16;
/// The most serial bytes accepted: RFC 5280 §4.1.2.2 "Conforming CAs MUST NOT use
/// serialNumber values longer than 20 octets."
pub const MAX_SERIAL_LEN: usize = 20;
/// The longest OIDC issuer string accepted, in bytes.
pub const MAX_OIDC_ISSUER_LEN: usize = 1024;
/// The largest certificate or key input read, in bytes.
const MAX_INPUT_DER_LEN: usize = 16 * 1024;
/// The most certificates a CA chain may hold.
const MAX_CHAIN_LEN: usize = 8;
/// 9999-12-31T23:59:59Z: the last instant a four-digit GeneralizedTime can carry.
pub(crate) const MAX_UNIX_TIME: i64 = 253_402_300_799;
/// OID of subjectKeyIdentifier (RFC 5280 §4.2.1.2).
const OID_SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];

/// Why a code-signing CA could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CaLoadError {
    /// No certificate was given.
    #[error("the code-signing CA chain is empty; the issuing CA certificate comes first")]
    EmptyChain,
    /// More than 8 certificates.
    #[error("the code-signing CA chain holds {len} certificates; the maximum is {MAX_CHAIN_LEN}")]
    ChainTooLong {
        /// How many.
        len: usize,
    },
    /// A certificate does not parse.
    #[error(
        "code-signing CA chain certificate {position} is not a DER X.509 certificate: {reason}"
    )]
    Malformed {
        /// Which one, from 1.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// `chain[i]` is not issued by `chain[i + 1]`.
    #[error(
        "code-signing CA chain certificate {position} is not issued by certificate {}: \
         its issuer name differs from that certificate's subject, or its signature does \
         not verify with that certificate's key",
        .position + 1
    )]
    BrokenChain {
        /// Which one, from 1.
        position: usize,
    },
    /// The issuing certificate is not a CA allowed to sign certificates.
    #[error("the code-signing CA certificate cannot issue certificates: {reason}")]
    NotCa {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The issuing certificate has no subjectKeyIdentifier for the leaves'
    /// authorityKeyIdentifier.
    #[error(
        "the code-signing CA certificate has no subject key identifier; leaves need it for \
         their authority key identifier"
    )]
    NoSubjectKeyIdentifier,
    /// The CA's key is not ECDSA P-256 or P-384.
    #[error("the code-signing CA key must be ECDSA P-256 or P-384; the certificate has {found}")]
    UnsupportedKey {
        /// What it has.
        found: String,
    },
    /// The private key bytes are not a PKCS #8 key for the certificate's curve.
    #[error("the code-signing CA private key is not a PKCS #8 key for {curve}: {reason}")]
    InvalidKey {
        /// The certificate's curve.
        curve: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The private key does not belong to the certificate.
    #[error("the code-signing CA private key does not match the CA certificate's public key")]
    KeyMismatch,
    /// The CA subject uses an encoding rcgen cannot reproduce byte for byte.
    #[error(
        "the code-signing CA subject name cannot be reproduced exactly as the issuer of \
         leaves ({reason}); use a name of single-valued attributes, each type once"
    )]
    UnreproducibleName {
        /// What is unusual about it.
        reason: String,
    },
    /// Signing a probe certificate failed.
    #[error("signing with the code-signing CA key failed: {reason}")]
    Signing {
        /// What rcgen reported.
        reason: String,
    },
}

/// Why a leaf certificate was not issued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IssueError {
    /// A zero validity.
    #[error("certificate validity must be at least one second")]
    ZeroValidity,
    /// More than [`MAX_LEAF_VALIDITY_SECONDS`].
    #[error(
        "certificate validity of {requested} s exceeds the maximum of \
         {MAX_LEAF_VALIDITY_SECONDS} s for code-signing certificates"
    )]
    ValidityTooLong {
        /// What was asked for.
        requested: u32,
    },
    /// notBefore before 1970 or notAfter after 9999.
    #[error("certificate validity starting at Unix time {not_before} is out of range")]
    TimeOutOfRange {
        /// The requested notBefore.
        not_before: i64,
    },
    /// The leaf would outlive, or predate, the CA certificate.
    #[error(
        "certificate validity {not_before}..={not_after} (Unix seconds) is not inside the \
         code-signing CA's {ca_not_before}..={ca_not_after}"
    )]
    OutsideCaValidity {
        /// Leaf notBefore.
        not_before: i64,
        /// Leaf notAfter.
        not_after: i64,
        /// CA notBefore.
        ca_not_before: i64,
        /// CA notAfter.
        ca_not_after: i64,
    },
    /// The SCT time is not inside the leaf's validity.
    #[error(
        "SCT timestamp {timestamp_ms} ms is outside the certificate validity \
         {not_before}..={not_after} (Unix seconds)"
    )]
    SctTimeOutsideValidity {
        /// The requested SCT time.
        timestamp_ms: u64,
        /// Leaf notBefore.
        not_before: i64,
        /// Leaf notAfter.
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
    /// The SPIFFE ID is of another trust domain.
    #[error("{spiffe_id} is not in trust domain {trust_domain}, which this CA serves")]
    ForeignIdentity {
        /// The requested identity.
        spiffe_id: String,
        /// The CA's trust domain.
        trust_domain: String,
    },
    /// The SPIFFE ID names the trust domain itself, not a workload.
    #[error("{spiffe_id} is a trust domain ID; code-signing certificates name a workload")]
    TrustDomainIdentity {
        /// The requested identity.
        spiffe_id: String,
    },
    /// The OIDC issuer is empty, too long or not printable ASCII.
    #[error("OIDC issuer is invalid: {reason}")]
    InvalidOidcIssuer {
        /// What is wrong.
        reason: String,
    },
    /// The subject key is not a DER SubjectPublicKeyInfo.
    #[error("subject public key is not a DER SubjectPublicKeyInfo: {reason}")]
    MalformedSubjectKey {
        /// What is wrong.
        reason: String,
    },
    /// The subject key is not an uncompressed ECDSA P-256 key.
    #[error("subject public key is {found}; code-signing certificates certify ECDSA P-256 keys")]
    UnsupportedSubjectKey {
        /// What it is.
        found: String,
    },
    /// The CT key failed to sign.
    #[error("signing the SCT failed: {0}")]
    Sct(#[from] SctSignError),
    /// rcgen failed to build or sign the certificate.
    #[error("building the certificate failed: {reason}")]
    Certificate {
        /// What rcgen reported.
        reason: String,
    },
    /// The final certificate does not rebuild to the precertificate the SCT signs: a bug.
    #[error("internal error: {reason}")]
    Internal {
        /// What did not hold.
        reason: String,
    },
}

/// What [`CodeSigningIssuer::issue`] certifies.
#[derive(Debug, Clone, Copy)]
pub struct IssueRequest<'a> {
    /// The workload's public key, a DER SubjectPublicKeyInfo of an uncompressed ECDSA
    /// P-256 key. Proof of possession is the caller's business.
    pub subject_public_key_spki_der: &'a [u8],
    /// The identity, verified by the caller; the only SAN.
    pub spiffe_id: &'a SpiffeId,
    /// The OIDC issuer written into the Fulcio issuer extensions, `spiffe://<trust
    /// domain>` in provmesh; verifiers match it (`--cert-oidc-issuer`).
    pub oidc_issuer: &'a str,
    /// notBefore, Unix seconds.
    pub not_before_unix: i64,
    /// notAfter − notBefore, seconds: 1 to [`MAX_LEAF_VALIDITY_SECONDS`].
    pub validity_seconds: u32,
    /// 16 to 20 random bytes from the caller's CSPRNG. The top bit of the first byte is
    /// cleared so the DER INTEGER is positive and at most 20 octets.
    pub serial: &'a [u8],
    /// The SCT's timestamp, Unix milliseconds: the issuance time, inside the validity.
    pub sct_timestamp_ms: u64,
}

/// A certificate issued by [`CodeSigningIssuer::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The final certificate, DER, with the embedded SCT.
    pub certificate_der: Vec<u8>,
    /// Its TBSCertificate without the SCT extension: what the SCT signs and what the
    /// domain log records.
    pub precertificate_tbs_der: Vec<u8>,
    /// The embedded SCT.
    pub sct: SignedCertificateTimestamp,
    /// The CA chain, issuing CA first, trust anchor last (a bundle's or trusted root's
    /// `certChain` after the leaf).
    pub chain: Vec<Vec<u8>>,
    /// The serial number as encoded: big-endian, no leading zeros.
    pub serial: Vec<u8>,
}

/// The domain's code-signing CA and CT log key.
///
/// `Send + Sync`: one instance serves concurrent requests.
pub struct CodeSigningIssuer {
    trust_domain: TrustDomain,
    chain: Vec<Vec<u8>>,
    ca_spki_der: Vec<u8>,
    ca_not_before: i64,
    ca_not_after: i64,
    issuer: Issuer<'static, KeyPair>,
    ct_key: CtLogKey,
}

impl fmt::Debug for CodeSigningIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys stay out of logs.
        f.debug_struct("CodeSigningIssuer")
            .field("trust_domain", &self.trust_domain)
            .field("chain_len", &self.chain.len())
            .field("ct_key", &self.ct_key)
            .finish_non_exhaustive()
    }
}

impl CodeSigningIssuer {
    /// Loads the CA: `ca_chain_der` is the issuing CA certificate first, then any
    /// certificates above it up to the trust anchor (often just the root);
    /// `ca_key_pkcs8_der` the issuing CA's PKCS #8 ECDSA P-256 or P-384 private key.
    ///
    /// The issuing certificate must be a v3 CA (basicConstraints cA, keyUsage
    /// keyCertSign if keyUsage is present) with a subjectKeyIdentifier, and its key must
    /// match. Each certificate must be issued by the next (name and signature). Leaves are issued only
    /// for SPIFFE IDs of `trust_domain`.
    pub fn new<C: AsRef<[u8]>>(
        trust_domain: TrustDomain,
        ca_chain_der: &[C],
        ca_key_pkcs8_der: &[u8],
        ct_key: CtLogKey,
    ) -> Result<CodeSigningIssuer, CaLoadError> {
        if ca_chain_der.is_empty() {
            return Err(CaLoadError::EmptyChain);
        }
        if ca_chain_der.len() > MAX_CHAIN_LEN {
            return Err(CaLoadError::ChainTooLong {
                len: ca_chain_der.len(),
            });
        }
        let parsed: Vec<X509Certificate<'_>> = ca_chain_der
            .iter()
            .enumerate()
            .map(|(index, der)| {
                parse_certificate(der.as_ref()).map_err(|reason| CaLoadError::Malformed {
                    position: index + 1,
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        for (index, pair) in parsed.windows(2).enumerate() {
            if let [child, parent] = pair
                && !issued_by(child, parent)
            {
                return Err(CaLoadError::BrokenChain {
                    position: index + 1,
                });
            }
        }
        let ca = parsed.first().ok_or(CaLoadError::EmptyChain)?;
        check_ca(ca)?;
        let ski = subject_key_identifier(ca)?;
        let key = load_ca_key(ca_key_pkcs8_der, ca.public_key())?;
        let params = issuer_params(ca.subject(), ski)?;
        let issuer = Issuer::new(params, key);
        // rcgen writes the issuer name from the parameters: make sure it writes the CA's
        // subject byte for byte, or every leaf would fail chain building. One probe
        // signature at load time, so a bad configuration fails at start. The probe is
        // inert and dropped: empty subject, no extensions, valid only at the epoch.
        let mut probe = CertificateParams::default();
        probe.distinguished_name = DistinguishedName::new();
        set_window(&mut probe, 0, 0);
        let probe = probe
            .signed_by(issuer.key(), &issuer)
            .map_err(|e| CaLoadError::Signing {
                reason: e.to_string(),
            })?;
        let probe = parse_certificate(probe.der()).map_err(|reason| CaLoadError::Signing {
            reason: format!("the probe certificate does not parse: {reason}"),
        })?;
        if probe.issuer().as_raw() != ca.subject().as_raw() {
            return Err(CaLoadError::UnreproducibleName {
                reason: "its re-encoding differs from the certificate's bytes".to_owned(),
            });
        }
        let ca_spki_der = ca.public_key().raw.to_vec();
        let ca_not_before = ca.validity().not_before.timestamp();
        let ca_not_after = ca.validity().not_after.timestamp();
        Ok(CodeSigningIssuer {
            trust_domain,
            chain: ca_chain_der.iter().map(|c| c.as_ref().to_vec()).collect(),
            ca_spki_der,
            ca_not_before,
            ca_not_after,
            issuer,
            ct_key,
        })
    }

    /// The trust domain whose identities this CA certifies.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA chain, issuing CA first.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The issuing CA's DER SubjectPublicKeyInfo (whose SHA-256 is the SCTs'
    /// `issuer_key_hash`).
    pub fn ca_public_key_spki_der(&self) -> &[u8] {
        &self.ca_spki_der
    }

    /// The CT log key SCTs are signed with.
    pub fn ct_log_key(&self) -> &CtLogKey {
        &self.ct_key
    }

    /// Issues a code-signing certificate for a workload's P-256 key and SPIFFE ID.
    ///
    /// The profile is the one stock Sigstore verifiers demand (interop.md,
    /// "Signing certificate"), in this extension order:
    ///
    /// | extension | critical | value |
    /// | --- | --- | --- |
    /// | authorityKeyIdentifier | no | keyIdentifier = the CA's subjectKeyIdentifier |
    /// | subjectAltName | **yes** (the subject is empty) | one URI: the SPIFFE ID |
    /// | keyUsage | yes | digitalSignature |
    /// | extKeyUsage | no | codeSigning |
    /// | subjectKeyIdentifier | no | RFC 7093 method 1 |
    /// | 1.3.6.1.4.1.57264.1.1 (Fulcio issuer, deprecated) | no | the issuer's raw bytes |
    /// | 1.3.6.1.4.1.57264.1.8 (Fulcio issuer V2) | no | DER UTF8String of the issuer |
    /// | 1.3.6.1.4.1.11129.2.4.2 (CT SCT list) | no | OCTET STRING of one SCT, last |
    ///
    /// The SCT recipe (RFC 6962 §3.2 without a CT server): sign the certificate without the
    /// SCT extension — its TBS is the precertificate TBS; sign an SCT over it with the CT
    /// key; add the SCT list as the last extension and sign again with everything else the
    /// same. Verifiers rebuild the precertificate TBS by deleting that extension; `issue`
    /// checks, before returning, that doing so on the final certificate yields exactly the
    /// TBS the SCT signs.
    pub fn issue(&self, request: &IssueRequest<'_>) -> Result<IssuedCertificate, IssueError> {
        let (not_before, not_after) = self.check_window(request)?;
        let serial = serial_number(request.serial).map_err(|problem| match problem {
            SerialProblem::Length(len) => IssueError::SerialLength { len },
            SerialProblem::Zero => IssueError::SerialZero,
        })?;
        self.check_identity(request.spiffe_id)?;
        check_oidc_issuer(request.oidc_issuer)?;
        let subject_key = P256SubjectKey::from_spki_der(request.subject_public_key_spki_der)?;

        let mut params = CertificateParams::default();
        // Fulcio profile: an empty subject, the identity in a critical SAN. RFC 5280
        // §4.2.1.6: "If the subject field contains an empty sequence, then the issuing
        // CA MUST include a subjectAltName extension that is marked as critical." rcgen
        // marks the SAN critical exactly when the subject is empty.
        params.distinguished_name = DistinguishedName::new();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        set_window(&mut params, not_before, not_after);
        let uri = Ia5String::try_from(request.spiffe_id.as_str()).map_err(|e| {
            IssueError::Certificate {
                reason: e.to_string(),
            }
        })?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        // RFC 5280 §4.2.1.1: "The keyIdentifier field of the authorityKeyIdentifier
        // extension MUST be included in all certificates generated by conforming CAs";
        // rcgen takes it from the CA's subjectKeyIdentifier (see `issuer_params`).
        params.use_authority_key_identifier_extension = true;
        params.is_ca = IsCa::NoCa;
        params.custom_extensions = vec![
            octet_string_extension(
                OID_SUBJECT_KEY_IDENTIFIER,
                &key_identifier(&subject_key.point),
            ),
            // Fulcio oid-info.md: "1.3.6.1.4.1.57264.1.1 through 1.3.6.1.4.1.57264.1.6
            // are formatted as raw strings without any DER encoding."
            CustomExtension::from_oid_content(
                OID_FULCIO_ISSUER_V1,
                request.oidc_issuer.as_bytes().to_vec(),
            ),
            // Fulcio oid-info.md: "1.3.6.1.4.1.57264.1.8 through 1.3.6.1.4.1.57264.1.24
            // are formatted as DER-encoded strings; the ASN.1 tag is UTF8String (0x0C)".
            CustomExtension::from_oid_content(
                OID_FULCIO_ISSUER_V2,
                der::tlv(TAG_UTF8_STRING, request.oidc_issuer.as_bytes()),
            ),
        ];

        // 1. The precertificate: the same certificate without the SCT extension. Its
        //    signature is discarded; only its TBS is kept.
        let precert = self.sign(&params, &subject_key)?;
        let precertificate_tbs_der = parse_certificate(&precert)
            .map_err(|reason| IssueError::Internal {
                reason: format!("rcgen wrote an unparseable certificate: {reason}"),
            })?
            .tbs_certificate
            .as_ref()
            .to_vec();
        // 2. The SCT over it.
        let sct = self.ct_key.sign_precert_sct(
            &precertificate_tbs_der,
            &self.ca_spki_der,
            request.sct_timestamp_ms,
        )?;
        // 3. The final certificate: the SCT list as the last extension. RFC 6962 §3.3:
        //    "the SignedCertificateTimestampList structure is placed in an X509v3
        //    certificate extension with OID 1.3.6.1.4.1.11129.2.4.2" — the extnValue
        //    OCTET STRING holds a DER OCTET STRING of the TLS-encoded list.
        let list =
            encode_sct_list(std::slice::from_ref(&sct)).map_err(|e| IssueError::Internal {
                reason: e.to_string(),
            })?;
        params
            .custom_extensions
            .push(octet_string_extension(OID_CT_PRECERT_SCTS, &list));
        let certificate_der = self.sign(&params, &subject_key)?;

        // What a verifier does: delete the SCT extension and re-encode. It must give
        // back the bytes the SCT signs.
        let embedded = embedded_scts(&certificate_der).map_err(|e| IssueError::Internal {
            reason: format!("the issued certificate's SCT list does not read back: {e}"),
        })?;
        if embedded.precertificate_tbs_der != precertificate_tbs_der
            || embedded.scts.as_slice() != std::slice::from_ref(&sct)
        {
            return Err(IssueError::Internal {
                reason: "the issued certificate does not rebuild to the precertificate its \
                         SCT signs"
                    .to_owned(),
            });
        }
        Ok(IssuedCertificate {
            certificate_der,
            precertificate_tbs_der,
            sct,
            chain: self.chain.clone(),
            serial,
        })
    }

    fn sign(
        &self,
        params: &CertificateParams,
        subject_key: &P256SubjectKey,
    ) -> Result<Vec<u8>, IssueError> {
        params
            .signed_by(subject_key, &self.issuer)
            .map(|cert| cert.der().to_vec())
            .map_err(|e| IssueError::Certificate {
                reason: e.to_string(),
            })
    }

    /// The leaf window, checked against the limits and the CA's window.
    fn check_window(&self, request: &IssueRequest<'_>) -> Result<(i64, i64), IssueError> {
        let validity = request.validity_seconds;
        if validity == 0 {
            return Err(IssueError::ZeroValidity);
        }
        if validity > MAX_LEAF_VALIDITY_SECONDS {
            return Err(IssueError::ValidityTooLong {
                requested: validity,
            });
        }
        let not_before = request.not_before_unix;
        let not_after = not_before.saturating_add(i64::from(validity));
        if not_before < 0 || not_after > MAX_UNIX_TIME {
            return Err(IssueError::TimeOutOfRange { not_before });
        }
        // A leaf outside its CA's window fails chain validation (RFC 5280 §6.1.3
        // (a)(2)) at every time it is checked: refuse to issue it.
        if not_before < self.ca_not_before || not_after > self.ca_not_after {
            return Err(IssueError::OutsideCaValidity {
                not_before,
                not_after,
                ca_not_before: self.ca_not_before,
                ca_not_after: self.ca_not_after,
            });
        }
        // Both are in 0..=MAX_UNIX_TIME, so the products fit in u64.
        let window_ms = (not_before.unsigned_abs() * 1000)..=(not_after.unsigned_abs() * 1000);
        if !window_ms.contains(&request.sct_timestamp_ms) {
            return Err(IssueError::SctTimeOutsideValidity {
                timestamp_ms: request.sct_timestamp_ms,
                not_before,
                not_after,
            });
        }
        Ok((not_before, not_after))
    }

    fn check_identity(&self, spiffe_id: &SpiffeId) -> Result<(), IssueError> {
        // A CA certifies only its own domain's identities: a certificate for another
        // domain's workload would let this domain sign as it.
        if !spiffe_id.member_of(&self.trust_domain) {
            return Err(IssueError::ForeignIdentity {
                spiffe_id: spiffe_id.to_string(),
                trust_domain: self.trust_domain.to_string(),
            });
        }
        if spiffe_id.is_trust_domain_id() {
            return Err(IssueError::TrustDomainIdentity {
                spiffe_id: spiffe_id.to_string(),
            });
        }
        Ok(())
    }
}

/// The issuer string is written verbatim into two extensions and compared by verifiers:
/// printable ASCII, no spaces, bounded.
fn check_oidc_issuer(issuer: &str) -> Result<(), IssueError> {
    let invalid = |reason: String| IssueError::InvalidOidcIssuer { reason };
    if issuer.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    if issuer.len() > MAX_OIDC_ISSUER_LEN {
        return Err(invalid(format!(
            "it is {} bytes long; the maximum is {MAX_OIDC_ISSUER_LEN}",
            issuer.len()
        )));
    }
    if let Some(c) = issuer.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(invalid(format!(
            "it contains {c:?}; only printable ASCII without spaces is accepted"
        )));
    }
    Ok(())
}

/// Why caller-supplied serial bytes are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SerialProblem {
    /// Not 16 to 20 bytes.
    Length(usize),
    /// Zero once the top bit is cleared.
    Zero,
}

/// The serial as it will be encoded: top bit cleared, leading zeros dropped.
pub(crate) fn serial_number(random: &[u8]) -> Result<Vec<u8>, SerialProblem> {
    if !(MIN_SERIAL_LEN..=MAX_SERIAL_LEN).contains(&random.len()) {
        return Err(SerialProblem::Length(random.len()));
    }
    let mut serial = random.to_vec();
    // RFC 5280 §4.1.2.2: "The serial number MUST be a positive integer [...]
    // Conforming CAs MUST NOT use serialNumber values longer than 20 octets." With the
    // top bit clear no 0x00 sign octet is needed, so 20 bytes stay 20 octets.
    if let Some(first) = serial.first_mut() {
        *first &= 0x7f;
    }
    let leading = serial.iter().take_while(|&&b| b == 0).count();
    serial.drain(..leading);
    if serial.is_empty() {
        return Err(SerialProblem::Zero);
    }
    Ok(serial)
}

/// Sets a certificate's validity from Unix seconds, both in `0..=MAX_UNIX_TIME`.
pub(crate) fn set_window(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    let epoch = date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(not_before.unsigned_abs());
    params.not_after = epoch + Duration::from_secs(not_after.unsigned_abs());
}

/// A subject key identifier: RFC 7093 §2, method 1: "The keyIdentifier is composed of
/// the leftmost 160-bits of the SHA-256 hash of the value of the BIT STRING
/// subjectPublicKey (excluding the tag, length, and number of unused bits)."
pub(crate) fn key_identifier(subject_public_key: &[u8]) -> Vec<u8> {
    Sha256::digest(subject_public_key)
        .get(..20)
        .unwrap_or_default()
        .to_vec()
}

/// A non-critical extension whose value is a DER OCTET STRING of `content`.
fn octet_string_extension(oid: &[u64], content: &[u8]) -> CustomExtension {
    CustomExtension::from_oid_content(oid, der::tlv(TAG_OCTET_STRING, content))
}

/// The workload key being certified: an uncompressed P-256 point.
struct P256SubjectKey {
    point: Vec<u8>,
}

impl P256SubjectKey {
    fn from_spki_der(spki_der: &[u8]) -> Result<P256SubjectKey, IssueError> {
        let malformed = |reason: String| IssueError::MalformedSubjectKey { reason };
        if spki_der.len() > MAX_INPUT_DER_LEN {
            return Err(malformed(format!(
                "it is {} bytes long; the maximum is {MAX_INPUT_DER_LEN}",
                spki_der.len()
            )));
        }
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed(format!("{} bytes follow it", rest.len())));
        }
        let curve = curve_of(&spki);
        if curve != Some(Curve::P256) {
            return Err(IssueError::UnsupportedSubjectKey {
                found: describe_key(&spki),
            });
        }
        let point = spki.subject_public_key.data.as_ref();
        // SEC1 §2.3.3: uncompressed is 0x04 ‖ X ‖ Y. The domain log admits only
        // uncompressed keys (`log::signer_cert`), so only those are certified.
        if spki.subject_public_key.unused_bits != 0
            || point.len() != 65
            || point.first() != Some(&0x04)
        {
            return Err(IssueError::UnsupportedSubjectKey {
                found: "a P-256 key not encoded as an uncompressed point".to_owned(),
            });
        }
        ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .map_err(|_| malformed("the P-256 point is not on the curve".to_owned()))?;
        Ok(P256SubjectKey {
            point: point.to_vec(),
        })
    }
}

impl PublicKeyData for P256SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        // For a public key rcgen uses the algorithm only to write the SPKI's
        // AlgorithmIdentifier: id-ecPublicKey with namedCurve secp256r1.
        &PKCS_ECDSA_P256_SHA256
    }
}

/// The curves a CA key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "ECDSA P-256",
            Curve::P384 => "ECDSA P-384",
        }
    }
}

/// The named curve of an EC SubjectPublicKeyInfo, if P-256 or P-384.
fn curve_of(spki: &SubjectPublicKeyInfo<'_>) -> Option<Curve> {
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return None;
    }
    let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
    if curve == OID_EC_P256 {
        Some(Curve::P256)
    } else if curve == OID_NIST_EC_P384 {
        Some(Curve::P384)
    } else {
        None
    }
}

/// A key's type, for messages.
fn describe_key(spki: &SubjectPublicKeyInfo<'_>) -> String {
    match curve_of(spki) {
        Some(curve) => format!("an {} key", curve.name()),
        None if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY => {
            "an elliptic-curve key on another curve".to_owned()
        }
        None => format!(
            "a key of algorithm {}",
            spki.algorithm.algorithm.to_id_string()
        ),
    }
}

/// Parses one DER certificate with nothing after it.
fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    if der.len() > MAX_INPUT_DER_LEN {
        return Err(format!(
            "it is {} bytes long; the maximum is {MAX_INPUT_DER_LEN}",
            der.len()
        ));
    }
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the certificate", rest.len()));
    }
    Ok(cert)
}

/// Whether `parent` issued `child`: RFC 5280 §6.1.3 (a)(4) name chaining, and (a)(1)
/// "The signature on the certificate can be verified using working_public_key_algorithm,
/// the working_public_key, and the working_public_key_parameters." ECDSA (P-256, P-384)
/// and RSA PKCS #1 v1.5 signatures with SHA-256, SHA-384 or SHA-512.
fn issued_by(child: &X509Certificate<'_>, parent: &X509Certificate<'_>) -> bool {
    use x509_parser::oid_registry::{
        OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA,
        OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
        OID_SIG_ECDSA_WITH_SHA512,
    };
    if child.issuer().as_raw() != parent.subject().as_raw()
        || child.signature_algorithm != child.tbs_certificate.signature
    {
        return false;
    }
    let key = parent.public_key();
    let alg = &child.signature_algorithm.algorithm;
    let rsa = key.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION;
    let verification: &'static dyn VerificationAlgorithm = match (curve_of(key), rsa) {
        (Some(Curve::P256), _) if *alg == OID_SIG_ECDSA_WITH_SHA256 => &ECDSA_P256_SHA256_ASN1,
        (Some(Curve::P256), _) if *alg == OID_SIG_ECDSA_WITH_SHA384 => &ECDSA_P256_SHA384_ASN1,
        (Some(Curve::P256), _) if *alg == OID_SIG_ECDSA_WITH_SHA512 => &ECDSA_P256_SHA512_ASN1,
        (Some(Curve::P384), _) if *alg == OID_SIG_ECDSA_WITH_SHA256 => &ECDSA_P384_SHA256_ASN1,
        (Some(Curve::P384), _) if *alg == OID_SIG_ECDSA_WITH_SHA384 => &ECDSA_P384_SHA384_ASN1,
        (Some(Curve::P384), _) if *alg == OID_SIG_ECDSA_WITH_SHA512 => &ECDSA_P384_SHA512_ASN1,
        (None, true) if *alg == OID_PKCS1_SHA256WITHRSA => &RSA_PKCS1_2048_8192_SHA256,
        (None, true) if *alg == OID_PKCS1_SHA384WITHRSA => &RSA_PKCS1_2048_8192_SHA384,
        (None, true) if *alg == OID_PKCS1_SHA512WITHRSA => &RSA_PKCS1_2048_8192_SHA512,
        _ => return false,
    };
    // aws-lc-rs takes the whole SubjectPublicKeyInfo and checks the key.
    ParsedPublicKey::new(verification, key.raw).is_ok_and(|parsed| {
        parsed
            .verify_sig(child.tbs_certificate.as_ref(), &child.signature_value.data)
            .is_ok()
    })
}

/// The issuing certificate must be able to issue (RFC 5280 §6.1.4 (k), (n)).
fn check_ca(ca: &X509Certificate<'_>) -> Result<(), CaLoadError> {
    let not_ca = |reason| CaLoadError::NotCa { reason };
    if ca.version() != X509Version::V3 {
        return Err(not_ca("it is not an X.509 version 3 certificate"));
    }
    let basic = ca
        .basic_constraints()
        .map_err(|_| not_ca("its basicConstraints extension is malformed or repeated"))?;
    if !basic.is_some_and(|b| b.value.ca) {
        return Err(not_ca("basicConstraints cA is not set"));
    }
    let key_usage = ca
        .key_usage()
        .map_err(|_| not_ca("its keyUsage extension is malformed or repeated"))?;
    if key_usage.is_some_and(|ku| !ku.value.key_cert_sign()) {
        return Err(not_ca("keyUsage does not include keyCertSign"));
    }
    Ok(())
}

/// The CA's subjectKeyIdentifier, which becomes the leaves' authorityKeyIdentifier.
fn subject_key_identifier(ca: &X509Certificate<'_>) -> Result<Vec<u8>, CaLoadError> {
    use x509_parser::extensions::ParsedExtension;
    ca.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .filter(|id| !id.is_empty())
        .ok_or(CaLoadError::NoSubjectKeyIdentifier)
}

/// Loads the CA private key for the certificate's curve and checks it matches.
pub(crate) fn load_ca_key(
    pkcs8_der: &[u8],
    ca_spki: &SubjectPublicKeyInfo<'_>,
) -> Result<KeyPair, CaLoadError> {
    let curve = curve_of(ca_spki).ok_or_else(|| CaLoadError::UnsupportedKey {
        found: describe_key(ca_spki),
    })?;
    let key = load_ec_key(pkcs8_der, curve).map_err(|reason| CaLoadError::InvalidKey {
        curve: curve.name(),
        reason,
    })?;
    if key.public_key_raw() != ca_spki.subject_public_key.data.as_ref() {
        return Err(CaLoadError::KeyMismatch);
    }
    Ok(key)
}

/// Loads a PKCS #8 ECDSA key on `curve` as an rcgen key pair.
pub(crate) fn load_ec_key(pkcs8_der: &[u8], curve: Curve) -> Result<KeyPair, String> {
    if pkcs8_der.len() > MAX_INPUT_DER_LEN {
        return Err(format!(
            "it is {} bytes long; the maximum is {MAX_INPUT_DER_LEN}",
            pkcs8_der.len()
        ));
    }
    let (aws_alg, rcgen_alg) = match curve {
        Curve::P256 => (&ECDSA_P256_SHA256_ASN1_SIGNING, &PKCS_ECDSA_P256_SHA256),
        Curve::P384 => (&ECDSA_P384_SHA384_ASN1_SIGNING, &PKCS_ECDSA_P384_SHA384),
    };
    // aws-lc-rs first: it accepts PKCS #8 only and checks the curve, which rcgen's
    // loader reports less precisely.
    EcdsaKeyPair::from_pkcs8(aws_alg, pkcs8_der).map_err(|e| e.to_string())?;
    KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8_der.into(), rcgen_alg).map_err(|e| e.to_string())
}

/// Which curve a PKCS #8 EC private key is on, if P-256 or P-384.
pub(crate) fn pkcs8_curve(pkcs8_der: &[u8]) -> Option<Curve> {
    if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_der).is_ok() {
        Some(Curve::P256)
    } else if EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, pkcs8_der).is_ok() {
        Some(Curve::P384)
    } else {
        None
    }
}

/// rcgen issuer parameters that reproduce the CA's subject name and key identifier.
fn issuer_params(name: &X509Name<'_>, ski: Vec<u8>) -> Result<CertificateParams, CaLoadError> {
    let unreproducible = |reason: String| CaLoadError::UnreproducibleName { reason };
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let mut attributes = rdn.iter();
        let (Some(attribute), None) = (attributes.next(), attributes.next()) else {
            return Err(unreproducible(
                "it has a multi-valued or empty relative distinguished name".to_owned(),
            ));
        };
        let oid: Vec<u64> = attribute
            .attr_type()
            .iter()
            .ok_or_else(|| unreproducible("an attribute type OID is too large".to_owned()))?
            .collect();
        let value = attribute.attr_value();
        let text = || {
            std::str::from_utf8(value.data)
                .map_err(|_| unreproducible("an attribute string is not UTF-8".to_owned()))
        };
        let bad = |e: rcgen::Error| unreproducible(e.to_string());
        let dn_value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::PrintableString => DnValue::PrintableString(
                PrintableString::try_from(text()?).map_err(|e| unreproducible(e.to_string()))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                Ia5String::try_from(text()?).map_err(|e| unreproducible(e.to_string()))?,
            ),
            Tag::T61String => DnValue::TeletexString(
                TeletexString::try_from(text()?).map_err(|e| unreproducible(e.to_string()))?,
            ),
            Tag::BmpString => {
                DnValue::BmpString(BmpString::from_utf16be(value.data.to_vec()).map_err(bad)?)
            }
            Tag::UniversalString => DnValue::UniversalString(
                UniversalString::from_utf32be(value.data.to_vec()).map_err(bad)?,
            ),
            other => {
                return Err(unreproducible(format!(
                    "an attribute value has ASN.1 tag {other}"
                )));
            }
        };
        dn.push(DnType::from_oid(&oid), dn_value);
    }
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.key_identifier_method = KeyIdMethod::PreSpecified(ski);
    Ok(params)
}
