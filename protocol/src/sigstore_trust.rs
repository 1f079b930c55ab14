//! # Sigstore trust documents built from provmesh domains
//!
//! This module owns turning the key material of provmesh trust domains — each domain's
//! transparency log key, the P-256 key that signs its embedded SCTs, and its CA chain —
//! into the two documents stock Sigstore verifiers are configured with:
//!
//! * a **TrustedRoot** (`trusted_root.json`, [`trusted_root`]), read by sigstore-python
//!   (`Verifier(trusted_root=TrustedRoot.from_file(p))`), sigstore-js
//!   (`TrustedRoot.fromJSON`) and the other Sigstore clients;
//! * a **ClientTrustConfig** ([`client_trust_config`]), what the sigstore-python CLI
//!   takes with `--trust-config`: the TrustedRoot plus a SigningConfig.
//!
//! The message types and their protobuf-JSON encoding are [`crate::sigstore`]'s
//! (`sigstore_protobuf_specs`). What the documents must contain to pass *every* stock
//! verifier was measured against sigstore-python 4.5.1 and @sigstore/verify 3.x (the
//! project's interop notes, "interop.md" below) and is quoted beside the code that
//! implements it. One consequence runs through the module:
//! the protobuf JSON mapping omits empty strings, empty lists and zero numbers, while
//! sigstore-python's parser (`sigstore_models`, pydantic in strict mode) *requires*
//! several such fields to be present, so every field python requires is built
//! non-empty here or the build fails with an error saying which input is missing.
//!
//! Nothing here reads a clock: validity starts are arguments, and a start in the future
//! makes verifiers ignore the key until then (sigstore-python `is_timerange_valid`:
//! "checks that the the current time is not before `start`").

use sha2::{Digest as _, Sha256};
use sigstore_protobuf_specs::dev::sigstore::common::v1::{
    DistinguishedName, HashAlgorithm, LogId, PublicKey, PublicKeyDetails, TimeRange,
    X509Certificate as CertificateMessage, X509CertificateChain,
};
use sigstore_protobuf_specs::dev::sigstore::trustroot::v1::{
    CertificateAuthority, ClientTrustConfig, Service, ServiceConfiguration, ServiceSelector,
    SigningConfig, TransparencyLogInstance,
};
use thiserror::Error;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;

use crate::log::log_key_id;
use crate::log::signer_cert::MAX_CERTIFICATE_DER_LEN;
use crate::note::{KeyName, KeyParseError};
use crate::sigstore::{TRUSTED_ROOT_MEDIA_TYPE_V0_1, TrustedRoot};

/// Media type of a ClientTrustConfig.
///
/// sigstore_trustroot.proto: "MUST be application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";
/// sigstore-python 4.5.1 (`sigstore_models.trustroot.v1.ClientTrustConfig`) accepts
/// only this literal.
pub const CLIENT_TRUST_CONFIG_MEDIA_TYPE: &str =
    "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json";

/// Media type of the SigningConfig inside a ClientTrustConfig.
///
/// sigstore_trustroot.proto: "MUST be application/vnd.dev.sigstore.signingconfig.v0.2+json";
/// sigstore-python's `SigningConfig` wrapper accepts only this one.
pub const SIGNING_CONFIG_MEDIA_TYPE_V0_2: &str =
    "application/vnd.dev.sigstore.signingconfig.v0.2+json";

/// The most certificates one domain's CA chain may hold (leaf-most CA to root).
pub const MAX_CA_CHAIN_LEN: usize = 8;

/// The major API version advertised for a provmesh log in a SigningConfig: the node
/// serves the Rekor v1 API (`/api/v1/log/entries`, …).
const REKOR_V1_API: u32 = 1;

/// The major API version advertised for a domain CA (Fulcio's is 1; sigstore-python 4.5.1
/// keeps only `FULCIO_VERSIONS = [1]`).
const CA_API_V1: u32 = 1;

/// The range of a `google.protobuf.Timestamp`: "Range is from 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z" (timestamp.proto). Outside it the JSON encoder fails.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// RFC 8410 §4 SubjectPublicKeyInfo of an Ed25519 key, up to the key bytes:
/// `SEQUENCE { SEQUENCE { OID 1.3.101.112 (id-Ed25519) }, BIT STRING (0 unused bits) }`.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// One trust domain's verification material, as a Sigstore TrustedRoot needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainTrust {
    /// The domain's transparency log.
    pub log: LogTrust,
    /// The key that signs the domain's embedded SCTs.
    pub ct: CtTrust,
    /// The domain's code-signing CA.
    pub ca: CaTrust,
}

/// A domain transparency log with an Ed25519 key (a `tlogs` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogTrust {
    /// The log's origin, also the name of its checkpoint signature, e.g.
    /// `log.org-a.example`.
    pub origin: String,
    /// The log's base URL, e.g. `https://log.org-a.example`. Its host must be the origin:
    /// @sigstore/verify accepts a checkpoint signature only when
    /// `tlog.baseURL.includes(signature.name)` (`verify/src/tlog/checkpoint.ts`).
    pub base_url: String,
    /// The log's Ed25519 public key.
    pub ed25519_public_key: [u8; 32],
    /// The log's key ID, [`crate::log::log_key_id`]`(origin, key)`: the `logId.keyId`
    /// of the bundles and the trusted root, whose first four bytes are the checkpoint
    /// signature's key hint.
    pub key_id: [u8; 32],
    /// When the key became valid (Unix seconds); verifiers ignore it before.
    pub valid_from_unix: i64,
}

impl LogTrust {
    /// The trust entry of the log `origin` with `ed25519_public_key`, its key ID computed.
    pub fn new(
        origin: &KeyName,
        base_url: impl Into<String>,
        ed25519_public_key: [u8; 32],
        valid_from_unix: i64,
    ) -> LogTrust {
        LogTrust {
            origin: origin.as_str().to_owned(),
            base_url: base_url.into(),
            ed25519_public_key,
            key_id: log_key_id(origin, &ed25519_public_key),
            valid_from_unix,
        }
    }
}

/// The P-256 key that signs a domain's SCTs (a `ctlogs` entry). There is no CT server:
/// the key signs the SCT embedded in each leaf (interop.md, "Signing certificate"), and its
/// log ID is `SHA-256(SPKI)` (RFC 6962 §3.2: "LogID ... is the SHA-256 hash of the
/// log's public key").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtTrust {
    /// DER SubjectPublicKeyInfo of the ECDSA P-256 key.
    pub spki_der: Vec<u8>,
    /// When the key became valid (Unix seconds).
    pub valid_from_unix: i64,
}

/// A domain's code-signing CA (a `certificateAuthorities` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaTrust {
    /// DER certificates, leaf-most CA first, trust anchor last.
    ///
    /// sigstore_trustroot.proto: "The last certificate in the chain MUST be the trust
    /// anchor." The trust anchor's subject must have an organization and a common name
    /// (sigstore-python requires both in the `subject` it reads).
    pub chain_der: Vec<Vec<u8>>,
    /// When the chain became valid (Unix seconds).
    pub valid_from_unix: i64,
    /// The CA's base URL, e.g. `https://ca.org-a.example` (the trusted root's `uri`).
    pub uri: String,
}

/// Why [`trusted_root`] could not build a TrustedRoot.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrustedRootBuildError {
    /// No domain was given; sigstore-python needs at least one log, CT key and CA.
    #[error("a trusted root needs at least one domain")]
    NoDomains,
    /// Two domains have the same log origin.
    #[error("log origin {0:?} appears in more than one domain")]
    DuplicateOrigin(String),
    /// The origin is not a valid signed-note key name.
    #[error("log origin {origin:?} is not a valid note key name: {source}")]
    InvalidOrigin {
        /// The origin.
        origin: String,
        /// Why the key name was refused.
        #[source]
        source: KeyParseError,
    },
    /// The base URL is not `http(s)://<origin>[:port][/path]`.
    #[error("base URL {base_url:?} of log {origin:?} {reason}")]
    BaseUrl {
        /// The log origin.
        origin: String,
        /// The refused URL.
        base_url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Ed25519 public key is not a valid curve point.
    #[error("the Ed25519 public key of log {origin:?} is not a valid key")]
    InvalidLogKey {
        /// The log origin.
        origin: String,
    },
    /// `key_id` is not `log_key_id(origin, key)`.
    #[error(
        "key ID {stated} of log {origin:?} is not SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ key) = {computed}"
    )]
    KeyIdMismatch {
        /// The log origin.
        origin: String,
        /// The key ID given, in hex.
        stated: String,
        /// The key ID computed, in hex.
        computed: String,
    },
    /// The CT key is not a DER SubjectPublicKeyInfo of an ECDSA P-256 key.
    #[error("the CT key of domain {origin:?} is not a DER P-256 SubjectPublicKeyInfo")]
    InvalidCtKey {
        /// The log origin of the domain.
        origin: String,
    },
    /// The CA URI is not an `http(s)://` URL.
    #[error("CA URI {uri:?} of domain {origin:?} {reason}")]
    CaUri {
        /// The log origin of the domain.
        origin: String,
        /// The refused URI.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA chain has no certificate.
    #[error("the CA chain of domain {origin:?} is empty")]
    EmptyCaChain {
        /// The log origin of the domain.
        origin: String,
    },
    /// The CA chain has more than [`MAX_CA_CHAIN_LEN`] certificates.
    #[error("the CA chain of domain {origin:?} has {len} certificates, more than {max}")]
    CaChainTooLong {
        /// The log origin of the domain.
        origin: String,
        /// Certificates given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A CA certificate is not one DER X.509 certificate of at most
    /// [`MAX_CERTIFICATE_DER_LEN`] bytes.
    #[error("certificate {index} of the CA chain of domain {origin:?} is unusable: {reason}")]
    CaCertificate {
        /// The log origin of the domain.
        origin: String,
        /// Position in the chain (0 = leaf-most).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate's issuer is not the subject of the next one: the chain is not
    /// ordered leaf-most first, trust anchor last.
    #[error(
        "the CA chain of domain {origin:?} is out of order: certificate {index} was not issued by certificate {next}",
        next = index + 1
    )]
    CaChainOrder {
        /// The log origin of the domain.
        origin: String,
        /// The certificate whose issuer does not match.
        index: usize,
    },
    /// The trust anchor's subject lacks an organization (O) or a common name (CN).
    #[error(
        "the trust anchor of domain {origin:?} needs an organization (O) and a common name (CN) in its subject: sigstore-python requires both"
    )]
    CaSubjectIncomplete {
        /// The log origin of the domain.
        origin: String,
    },
    /// A validity start is outside the years 1 to 9999.
    #[error(
        "validity start {valid_from_unix} of domain {origin:?} is outside the protobuf Timestamp range"
    )]
    ValidFromOutOfRange {
        /// The log origin of the domain.
        origin: String,
        /// The refused start.
        valid_from_unix: i64,
    },
}

/// Why [`client_trust_config`] could not build a ClientTrustConfig.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientTrustConfigError {
    /// The trusted root has no transparency log, so the SigningConfig would have no
    /// log URL (sigstore-python: "No valid Rekor transparency log found in signing config").
    #[error("the trusted root has no transparency log to name in the signing config")]
    NoLog,
    /// The trusted root has no certificate authority, so the SigningConfig would have
    /// no CA URL (sigstore-python: "No valid Fulcio CA found in signing config").
    #[error("the trusted root has no certificate authority to name in the signing config")]
    NoCertificateAuthority,
    /// A log base URL or CA URI cannot be a SigningConfig service URL.
    #[error("{url:?} cannot be a signing config service URL: it {reason}")]
    ServiceUrl {
        /// The refused URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The JSON encoder failed (a timestamp outside the protobuf range).
    #[error("cannot encode the client trust config as protobuf JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// The DER SubjectPublicKeyInfo of an Ed25519 public key (RFC 8410 §4), the form of a
/// `PKIX_ED25519` key's `rawBytes`.
pub fn ed25519_spki_der(public_key: &[u8; 32]) -> Vec<u8> {
    let mut der = Vec::with_capacity(ED25519_SPKI_PREFIX.len() + public_key.len());
    der.extend_from_slice(&ED25519_SPKI_PREFIX);
    der.extend_from_slice(public_key);
    der
}

/// The RFC 6962 log ID of a CT key: SHA-256 of its DER SubjectPublicKeyInfo.
pub fn ct_log_id(spki_der: &[u8]) -> [u8; 32] {
    Sha256::digest(spki_der).into()
}

/// Builds the TrustedRoot of `domains`: one `tlogs`, one `ctlogs` and one
/// `certificateAuthorities` entry per domain, in the order given.
///
/// Each input is checked so that the document is accepted by stock verifiers
/// (sigstore-python 4.5.1, @sigstore/verify 3.x) and means what the domain intends:
/// the origin is a note key name, the base URL's host is the origin, `key_id` is the
/// log key ID, the keys parse, and the CA chain is DER X.509 ordered leaf-most first.
pub fn trusted_root(domains: &[DomainTrust]) -> Result<TrustedRoot, TrustedRootBuildError> {
    // interop.md: "At least one `tlogs`, one `ctlogs` and one `certificateAuthorities`
    // entry (python)" — pydantic requires the three lists, and protobuf JSON omits an
    // empty list, so an empty root would not even parse there.
    if domains.is_empty() {
        return Err(TrustedRootBuildError::NoDomains);
    }
    let mut root = TrustedRoot {
        // interop.md: "mediaType exactly `application/vnd.dev.sigstore.trustedroot+json;version=0.1`
        // (python rejects others, though the proto comment says 0.2)".
        media_type: TRUSTED_ROOT_MEDIA_TYPE_V0_1.to_owned(),
        ..TrustedRoot::default()
    };
    let mut origins: Vec<&str> = Vec::with_capacity(domains.len());
    for domain in domains {
        let origin = domain.log.origin.as_str();
        if origins.contains(&origin) {
            return Err(TrustedRootBuildError::DuplicateOrigin(origin.to_owned()));
        }
        origins.push(origin);
        root.tlogs.push(tlog_instance(&domain.log)?);
        root.ctlogs
            .push(ctlog_instance(origin, &domain.log.base_url, &domain.ct)?);
        root.certificate_authorities
            .push(certificate_authority(origin, &domain.ca)?);
    }
    Ok(root)
}

/// The `tlogs` entry of a domain log.
fn tlog_instance(log: &LogTrust) -> Result<TransparencyLogInstance, TrustedRootBuildError> {
    let origin = log.origin.as_str();
    let name = KeyName::new(origin).map_err(|source| TrustedRootBuildError::InvalidOrigin {
        origin: origin.to_owned(),
        source,
    })?;
    // interop.md: "the signature name must match the tlog's `baseUrl` host. Name the note
    // key after the log's URL host".
    let host = url_host(&log.base_url).map_err(|reason| TrustedRootBuildError::BaseUrl {
        origin: origin.to_owned(),
        base_url: log.base_url.clone(),
        reason: reason.to_owned(),
    })?;
    if host != origin {
        return Err(TrustedRootBuildError::BaseUrl {
            origin: origin.to_owned(),
            base_url: log.base_url.clone(),
            reason: format!("has host {host:?}, not the log origin"),
        });
    }
    // sigstore-python loads the key with `load_der_public_key` and, when that fails,
    // only logs a warning and drops it: refuse a bad key here instead.
    if ed25519_dalek::VerifyingKey::from_bytes(&log.ed25519_public_key).is_err() {
        return Err(TrustedRootBuildError::InvalidLogKey {
            origin: origin.to_owned(),
        });
    }
    // interop.md: "Ed25519 works when the same key id appears in the bundle's
    // `logId.keyId` and the trusted root" — the key ID provmesh puts in bundles.
    let computed = log_key_id(&name, &log.ed25519_public_key);
    if computed != log.key_id {
        return Err(TrustedRootBuildError::KeyIdMismatch {
            origin: origin.to_owned(),
            stated: hex::encode(log.key_id),
            computed: hex::encode(computed),
        });
    }
    Ok(TransparencyLogInstance {
        base_url: log.base_url.clone(),
        hash_algorithm: HashAlgorithm::Sha2256 as i32,
        public_key: Some(PublicKey {
            raw_bytes: Some(ed25519_spki_der(&log.ed25519_public_key)),
            key_details: PublicKeyDetails::PkixEd25519 as i32,
            valid_for: Some(valid_from(origin, log.valid_from_unix)?),
        }),
        log_id: Some(LogId {
            key_id: log.key_id.to_vec(),
        }),
        // `checkpointKeyId` and `operator`: "Only supported for TrustedRoot media types
        // matching or greater than application/vnd.dev.sigstore.trustedroot.v0.2+json",
        // and this document is v0.1; python matches the key hint against `logId` anyway.
        ..TransparencyLogInstance::default()
    })
}

/// The `ctlogs` entry of a domain's SCT key.
fn ctlog_instance(
    origin: &str,
    base_url: &str,
    ct: &CtTrust,
) -> Result<TransparencyLogInstance, TrustedRootBuildError> {
    use p256::pkcs8::DecodePublicKey as _;
    // interop.md: "put the CT key in `ctlogs` (PKIX_ECDSA_P256_SHA_256, logId =
    // SHA-256(SPKI))"; a key of another type would be dropped by python with a warning.
    if p256::ecdsa::VerifyingKey::from_public_key_der(&ct.spki_der).is_err() {
        return Err(TrustedRootBuildError::InvalidCtKey {
            origin: origin.to_owned(),
        });
    }
    Ok(TransparencyLogInstance {
        // sigstore-python requires `baseUrl` on every log (`base_url: str`, no default)
        // and protobuf JSON omits an empty string. No CT server exists and no verifier
        // contacts one during verification, so the entry names the domain's log URL,
        // the place the domain publishes from.
        base_url: base_url.to_owned(),
        hash_algorithm: HashAlgorithm::Sha2256 as i32,
        public_key: Some(PublicKey {
            raw_bytes: Some(ct.spki_der.clone()),
            key_details: PublicKeyDetails::PkixEcdsaP256Sha256 as i32,
            valid_for: Some(valid_from(origin, ct.valid_from_unix)?),
        }),
        log_id: Some(LogId {
            key_id: ct_log_id(&ct.spki_der).to_vec(),
        }),
        ..TransparencyLogInstance::default()
    })
}

/// The `certificateAuthorities` entry of a domain CA.
fn certificate_authority(
    origin: &str,
    ca: &CaTrust,
) -> Result<CertificateAuthority, TrustedRootBuildError> {
    url_host(&ca.uri).map_err(|reason| TrustedRootBuildError::CaUri {
        origin: origin.to_owned(),
        uri: ca.uri.clone(),
        reason: reason.to_owned(),
    })?;
    if ca.chain_der.is_empty() {
        return Err(TrustedRootBuildError::EmptyCaChain {
            origin: origin.to_owned(),
        });
    }
    if ca.chain_der.len() > MAX_CA_CHAIN_LEN {
        return Err(TrustedRootBuildError::CaChainTooLong {
            origin: origin.to_owned(),
            len: ca.chain_der.len(),
            max: MAX_CA_CHAIN_LEN,
        });
    }
    let certs = ca
        .chain_der
        .iter()
        .enumerate()
        .map(|(index, der)| parse_certificate(der).map_err(|reason| (index, reason)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(index, reason)| TrustedRootBuildError::CaCertificate {
            origin: origin.to_owned(),
            index,
            reason,
        })?;
    // sigstore_trustroot.proto: "The last certificate in the chain MUST be the trust
    // anchor"; verifiers build the path from the leaf through these in order.
    for (index, pair) in certs.windows(2).enumerate() {
        if let [cert, next] = pair
            && cert.issuer().as_raw() != next.subject().as_raw()
        {
            return Err(TrustedRootBuildError::CaChainOrder {
                origin: origin.to_owned(),
                index,
            });
        }
    }
    // sigstore_trustroot.proto: "The root certificate MUST be self-signed, and so the
    // subject and issuer are the same." The subject is the trust anchor's.
    // sigstore-python: `class DistinguishedName(Base): organization: str; common_name: str`
    // (both required, and protobuf JSON omits empty strings).
    let anchor = certs
        .last()
        .ok_or_else(|| TrustedRootBuildError::EmptyCaChain {
            origin: origin.to_owned(),
        })?;
    let subject = anchor.subject();
    let first = |attrs: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        attrs
            .next()
            .and_then(|a| a.as_str().ok())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (Some(organization), Some(common_name)) = (
        first(&mut subject.iter_organization()),
        first(&mut subject.iter_common_name()),
    ) else {
        return Err(TrustedRootBuildError::CaSubjectIncomplete {
            origin: origin.to_owned(),
        });
    };
    Ok(CertificateAuthority {
        subject: Some(DistinguishedName {
            organization,
            common_name,
        }),
        uri: ca.uri.clone(),
        cert_chain: Some(X509CertificateChain {
            certificates: ca
                .chain_der
                .iter()
                .map(|der| CertificateMessage {
                    raw_bytes: der.clone(),
                })
                .collect(),
        }),
        valid_for: Some(valid_from(origin, ca.valid_from_unix)?),
        ..CertificateAuthority::default()
    })
}

/// Parses one DER certificate of at most [`MAX_CERTIFICATE_DER_LEN`] bytes, nothing after it.
fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    if der.len() > MAX_CERTIFICATE_DER_LEN {
        return Err(format!(
            "{} bytes, more than the limit of {MAX_CERTIFICATE_DER_LEN}",
            der.len()
        ));
    }
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the certificate", rest.len()));
    }
    Ok(cert)
}

/// A `TimeRange` open at the end, starting at `unix` seconds.
fn valid_from(origin: &str, unix: i64) -> Result<TimeRange, TrustedRootBuildError> {
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&unix) {
        return Err(TrustedRootBuildError::ValidFromOutOfRange {
            origin: origin.to_owned(),
            valid_from_unix: unix,
        });
    }
    let mut range = TimeRange::default();
    // The field's type is `prost_types::Timestamp`, reached by inference because
    // prost-types is not a direct dependency of this crate.
    range.start.get_or_insert_with(Default::default).seconds = unix;
    Ok(range)
}

/// The host of an `http://` or `https://` URL, without port; `Err` says what is wrong.
///
/// sigstore_trustroot.proto (`Service.url`): "MUST include scheme and authority. MAY
/// include path."
fn url_host(url: &str) -> Result<&str, &'static str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters");
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("does not start with https:// or http://")?;
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .ok_or("has no authority")?;
    if authority.contains('@') {
        return Err("has user information");
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return Err("has a malformed port"),
        None => authority,
    };
    if host.is_empty() {
        return Err("has no host");
    }
    Ok(host)
}

/// Builds the ClientTrustConfig of `root`, as JSON: the document sigstore-python's CLI
/// takes with `--trust-config` (a global option, before `verify`).
///
/// ```text
/// {"mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
///  "trustedRoot": {…}, "signingConfig": {"mediaType": "…signingconfig.v0.2+json", …}}
/// ```
///
/// Verification reads only `trustedRoot`, but sigstore-python 4.5.1's `SigningConfig`
/// (built whenever a command needs signing services, e.g. `sign` or the OIDC issuer
/// lookup) raises "No valid Rekor transparency log found in signing config" and "No
/// valid Fulcio CA found in signing config" on empty lists. So the signing config
/// names each log's `baseUrl` (Rekor API v1, which provmesh logs serve) in
/// `rekorTlogUrls` with selector `ANY`, and each CA's `uri` in `caUrls` (API v1):
/// the domains' own services. Each service's operator is its URL's host
/// (python requires `operator`; "Operator MUST be formatted as a scheme-less URI") and
/// its validity is the key's or chain's. No OIDC provider or TSA is named: provmesh
/// uses neither.
pub fn client_trust_config(
    root: &TrustedRoot,
) -> Result<serde_json::Value, ClientTrustConfigError> {
    client_trust_config_with_services(root, &[], &[])
}

/// [`client_trust_config`] with the services reached elsewhere than the trusted root
/// names them.
///
/// A log's `baseUrl` in the trusted root names the log (its host must be the origin, see
/// [`LogTrust::base_url`]); where a client reaches its Rekor API can differ — a node on
/// loopback, a Kubernetes Service name — and so can a CA's. `log_api_urls[i]` and
/// `ca_api_urls[i]`, when present, are the URLs of the root's `i`-th log and CA in the
/// signing config; those past the end keep the root's URL.
pub fn client_trust_config_with_services(
    root: &TrustedRoot,
    log_api_urls: &[String],
    ca_api_urls: &[String],
) -> Result<serde_json::Value, ClientTrustConfigError> {
    if root.tlogs.is_empty() {
        return Err(ClientTrustConfigError::NoLog);
    }
    if root.certificate_authorities.is_empty() {
        return Err(ClientTrustConfigError::NoCertificateAuthority);
    }
    let rekor_tlog_urls = root
        .tlogs
        .iter()
        .enumerate()
        .map(|(i, tlog)| {
            let valid_for = tlog.public_key.as_ref().and_then(|k| k.valid_for);
            let url = log_api_urls.get(i).unwrap_or(&tlog.base_url);
            service(url, REKOR_V1_API, valid_for)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ca_urls = root
        .certificate_authorities
        .iter()
        .enumerate()
        .map(|(i, ca)| {
            service(
                ca_api_urls.get(i).unwrap_or(&ca.uri),
                CA_API_V1,
                ca.valid_for,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = ClientTrustConfig {
        media_type: CLIENT_TRUST_CONFIG_MEDIA_TYPE.to_owned(),
        trusted_root: Some(root.clone()),
        signing_config: Some(SigningConfig {
            media_type: SIGNING_CONFIG_MEDIA_TYPE_V0_2.to_owned(),
            ca_urls,
            rekor_tlog_urls,
            // "Clients MUST select Services based on the selector value of
            // `rekor_tlog_config`": one log per signature, as the public-good instance.
            rekor_tlog_config: Some(ServiceConfiguration {
                selector: ServiceSelector::Any as i32,
                count: 0,
            }),
            ..SigningConfig::default()
        }),
    };
    serde_json::to_value(&config).map_err(ClientTrustConfigError::Json)
}

/// A SigningConfig service at `url`.
fn service(
    url: &str,
    major_api_version: u32,
    valid_for: Option<TimeRange>,
) -> Result<Service, ClientTrustConfigError> {
    let operator = url_host(url).map_err(|reason| ClientTrustConfigError::ServiceUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    })?;
    Ok(Service {
        url: url.to_owned(),
        major_api_version,
        valid_for,
        operator: operator.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_host_takes_the_authority_without_port() {
        assert_eq!(
            url_host("https://log.org-a.example"),
            Ok("log.org-a.example")
        );
        assert_eq!(url_host("http://log.a:8080/x?y#z"), Ok("log.a"));
        assert!(url_host("log.org-a.example").is_err());
        assert!(url_host("https://").is_err());
        assert!(url_host("https://u@log.a").is_err());
        assert!(url_host("https://log.a:").is_err());
        assert!(url_host("https://log.a:80x").is_err());
        assert!(url_host("https://log.a /").is_err());
    }

    #[test]
    fn ed25519_spki_is_rfc8410() {
        // RFC 8410 §10.1: the example Ed25519 public key in SubjectPublicKeyInfo form.
        let key = hex::decode("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1")
            .unwrap();
        let der = ed25519_spki_der(&key.try_into().unwrap());
        assert_eq!(
            hex::encode(der),
            "302a300506032b657003210019bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
    }

    #[test]
    fn valid_from_bounds_are_the_timestamp_range() {
        assert!(valid_from("o", MIN_TIMESTAMP_SECONDS).is_ok());
        assert!(valid_from("o", MAX_TIMESTAMP_SECONDS).is_ok());
        assert!(valid_from("o", MIN_TIMESTAMP_SECONDS - 1).is_err());
        assert!(valid_from("o", MAX_TIMESTAMP_SECONDS + 1).is_err());
    }
}
