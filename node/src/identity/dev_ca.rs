//! The embedded dev SPIFFE CA: one trust domain's X.509-SVID root and JWT-SVID signing
//! key, kept in files, issuing SVIDs to this node and its workloads when no SPIRE agent
//! is configured.
//!
//! Files, in the directory the node gives it (`<data_dir>/identity/`):
//!
//! | file | holds |
//! | --- | --- |
//! | `ca.key` | the root's ECDSA P-256 key, PKCS#8 DER, mode 0600, created once ([`keyfile`]) |
//! | `jwt.key` | the JWT-SVID signing key, ECDSA P-256, same rules; a separate key |
//! | `ca.pem` | the self-signed root certificate, written last |
//!
//! `ca.pem` marks a complete CA: without it the keys are loaded or created and a
//! certificate is made (a first start, a start after a crash during the first, or a
//! renewal after an operator deleted an expired `ca.pem`); with it, both keys must exist
//! and the certificate must be exactly one this CA writes for the configured trust domain
//! and `ca.key`, or the CA refuses to start rather than publish keys that do not belong
//! together.
//!
//! Profiles (X509-SVID standard, <https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md>):
//! the root is a signing certificate (cA true, pathLen 0, key usage keyCertSign and
//! cRLSign, SAN URI `spiffe://<trust domain>`); leaves are SVIDs with exactly one URI SAN,
//! cA false, key usage digitalSignature, EKU serverAuth and clientAuth, issued directly
//! by the root. JWT-SVIDs are ES256 compact JWS tokens.
//!
//! This root is **not** the domain's code-signing root and must never be configured as
//! one: the code-signing CA is a separate root, published in the domain record and never
//! in the SPIFFE bundle, so that neither CA can mint what the other's relying parties
//! accept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_ASN1, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use provmesh_protocol::spiffe::{AddKeyError, SpiffeId, TrustBundle, TrustDomain};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
    PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::PEMError;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::pem::Pem;

use crate::keyfile::{self, KeyFileError};

/// The root key file.
pub const CA_KEY_FILE: &str = "ca.key";
/// The root certificate file.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The JWT-SVID signing key file.
pub const JWT_KEY_FILE: &str = "jwt.key";

/// How far back certificate validity starts, for verifiers whose clock is behind ours.
const BACKDATE: Duration = Duration::from_secs(60);
/// The largest `ca.pem` read (one P-256 certificate is under 1 KiB).
const MAX_CA_PEM_LEN: usize = 64 * 1024;
/// The most audiences a JWT-SVID is issued for (JWT-SVID §7.2 recommends one).
const MAX_AUDIENCES: usize = 16;
/// The longest audience value issued, in bytes.
const MAX_AUDIENCE_LEN: usize = 2048;
/// DER SubjectPublicKeyInfo prefix of an ECDSA P-256 key (id-ecPublicKey, prime256v1,
/// BIT STRING of 66 bytes: no unused bits, then the 65-byte uncompressed point).
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// The same for ECDSA P-384 (secp384r1, 97-byte point).
const P384_SPKI_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

/// What the dev CA is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCaConfig {
    /// Validity of a newly made root certificate.
    pub ca_validity: Duration,
    /// The longest validity an X.509- or JWT-SVID is issued with.
    pub max_svid_validity: Duration,
    /// The bundle's `spiffe_refresh_hint`.
    pub refresh_hint: Duration,
}

impl Default for DevCaConfig {
    /// A one-year root, SVIDs of at most one hour, a five-minute refresh hint.
    fn default() -> DevCaConfig {
        DevCaConfig {
            ca_validity: Duration::from_secs(365 * 24 * 3600),
            max_svid_validity: Duration::from_secs(3600),
            refresh_hint: Duration::from_secs(300),
        }
    }
}

/// Why the dev CA could not be opened or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The configuration cannot work.
    #[error("invalid dev CA configuration: {0}")]
    Config(String),
    /// A key file could not be read, created or parsed.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// `ca.pem` could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// `ca.pem` exists but a key does not: the files are not one CA.
    #[error(
        "{} exists but {} does not: restore the missing key, or delete the whole directory \
         to start a new CA",
        cert.display(),
        missing.display()
    )]
    Incomplete {
        /// The certificate file.
        cert: PathBuf,
        /// The missing key file.
        missing: PathBuf,
    },
    /// `ca.pem` is not one PEM certificate.
    #[error("{}: not a readable certificate: {reason}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate's key is not `ca.key`.
    #[error("{}: the certificate's key is not the one in {}", path.display(), key.display())]
    KeyMismatch {
        /// The certificate file.
        path: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate's signature does not verify under its own key: the file is damaged.
    #[error("{}: the certificate's self-signature does not verify", path.display())]
    BadSignature {
        /// The certificate file.
        path: PathBuf,
    },
    /// The certificate is for another trust domain.
    #[error("{}: the CA is for {found}, not for the configured spiffe://{expected}", path.display())]
    TrustDomainMismatch {
        /// The certificate file.
        path: PathBuf,
        /// The certificate's SAN URIs, comma-separated (empty if it has none).
        found: String,
        /// The configured trust domain.
        expected: TrustDomain,
    },
    /// The certificate has the right key and trust domain but not the profile this CA
    /// writes (other names, extensions or algorithm).
    #[error("{}: not a root certificate written by the provmesh dev CA", path.display())]
    ForeignProfile {
        /// The certificate file.
        path: PathBuf,
    },
    /// The root certificate is no longer (or not yet) valid.
    #[error(
        "{}: the CA certificate is valid from {not_before} to {not_after} (Unix seconds) but \
         it is now {now}; delete it to make a new one with the same keys",
        path.display()
    )]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// Its notBefore, Unix seconds.
        not_before: u64,
        /// Its notAfter, Unix seconds.
        not_after: u64,
        /// The time of the check.
        now: u64,
    },
    /// `jwt.key` holds the same key as `ca.key`.
    #[error("{} and {} hold the same key; the JWT-SVID key must be separate", ca.display(), jwt.display())]
    SharedKey {
        /// The root key file.
        ca: PathBuf,
        /// The JWT key file.
        jwt: PathBuf,
    },
    /// rcgen or aws-lc-rs failed to make the certificate or use a key.
    #[error("cannot {what}: {reason}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The library's message.
        reason: String,
    },
    /// The bundle could not be built from the keys.
    #[error("cannot build the trust bundle: {0}")]
    Bundle(#[from] AddKeyError),
}

/// Why an SVID is refused for a SPIFFE ID, or for a validity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SvidRequestError {
    /// The SPIFFE ID is not in this CA's trust domain.
    #[error("{id} is not in trust domain {trust_domain}; this CA issues only its own")]
    ForeignTrustDomain {
        /// The requested ID.
        id: SpiffeId,
        /// This CA's trust domain.
        trust_domain: TrustDomain,
    },
    /// The SPIFFE ID has no path: it names the trust domain, not a workload (X509-SVID
    /// §3.1: "Leaf certificate SPIFFE IDs MUST have a non-root path component").
    #[error("{0} names a trust domain, not a workload; an SVID needs a path")]
    NoPath(SpiffeId),
    /// The validity is zero, under a second, or above the configured maximum.
    #[error("a validity of {requested:?} is refused: it must be 1 s to {max:?}")]
    Validity {
        /// The requested validity.
        requested: Duration,
        /// The configured maximum.
        max: Duration,
    },
}

/// Why an X.509-SVID was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueX509Error {
    /// The SPIFFE ID or validity is refused.
    #[error(transparent)]
    Request(#[from] SvidRequestError),
    /// The root certificate is not valid now.
    #[error("the dev CA certificate is not valid now (valid until {not_after}, Unix seconds)")]
    CaNotValid {
        /// The root's notAfter, Unix seconds.
        not_after: u64,
    },
    /// The subject public key is not a DER SubjectPublicKeyInfo of a P-256 or P-384 key.
    #[error("unsupported subject public key: {0}")]
    SubjectKey(String),
    /// Key generation or signing failed.
    #[error("cannot issue the certificate: {0}")]
    Crypto(String),
}

/// Why a JWT-SVID was not issued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueJwtError {
    /// The SPIFFE ID or validity is refused.
    #[error(transparent)]
    Request(#[from] SvidRequestError),
    /// No audience, too many, or an empty or too long one (JWT-SVID §3.2: "The `aud`
    /// claim MUST be present, containing one or more values").
    #[error("invalid audiences: {0}")]
    Audience(String),
    /// Signing failed.
    #[error("cannot sign the JWT-SVID: the ECDSA signer failed")]
    Crypto,
}

/// The subject key of an X.509-SVID to issue.
#[derive(Debug, Clone, Copy)]
pub enum SubjectKey<'a> {
    /// Generate an ECDSA P-256 key pair and return its private key with the SVID.
    Generate,
    /// Certify this public key: a DER SubjectPublicKeyInfo of an ECDSA P-256 or P-384 key
    /// (e.g. from a CSR whose signature the caller has checked).
    Spki(&'a [u8]),
}

/// An issued X.509-SVID.
#[derive(Clone)]
pub struct X509Svid {
    /// The SPIFFE ID in its URI SAN.
    pub spiffe_id: SpiffeId,
    /// DER certificates, leaf first, as the Workload API's `X509SVID.x509_svid`; the root
    /// is not included (it is in the bundle).
    pub chain_der: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER, when it was generated ([`SubjectKey::Generate`]).
    pub private_key_pkcs8: Option<Vec<u8>>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity: the requested validity, cut to the root's own end.
    pub not_after: SystemTime,
}

impl fmt::Debug for X509Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The dev CA of one trust domain. See the module documentation.
pub struct DevCa {
    trust_domain: TrustDomain,
    config: DevCaConfig,
    issuer: Issuer<'static, KeyPair>,
    ca_der: Vec<u8>,
    ca_not_before: u64,
    ca_not_after: u64,
    jwt_key: EcdsaKeyPair,
    jwt_kid: String,
    bundle: TrustBundle,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("trust_domain", &self.trust_domain)
            .field("jwt_kid", &self.jwt_kid)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch (0 for earlier times).
fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A time from seconds since the Unix epoch.
fn from_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Maps a library error to [`OpenError::Crypto`].
fn crypto_error<E: fmt::Display>(what: &'static str) -> impl FnOnce(E) -> OpenError {
    move |e| OpenError::Crypto {
        what,
        reason: e.to_string(),
    }
}

/// Sets a certificate's validity window and a fresh random serial number.
fn stamp(params: &mut CertificateParams, not_before: u64, not_after: u64) -> Result<(), String> {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(not_before);
    params.not_after = epoch + Duration::from_secs(not_after);
    // RFC 5280 §4.1.2.2: a positive integer, unique per CA, at most 20 octets. rcgen's
    // default is a hash of the subject key, which would repeat for a re-certified key.
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| "the random number generator failed")?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(())
}

/// The root's parameters other than validity and serial: the same for every start, so a
/// reloaded `ca.pem` can be compared with them.
fn root_params(trust_domain: &TrustDomain) -> Result<CertificateParams, OpenError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "provmesh dev CA");
    name.push(DnType::CommonName, trust_domain.as_str());
    params.distinguished_name = name;
    // X509-SVID §3.2: "A signing certificate SHOULD itself be an SVID. If present, the
    // SPIFFE ID of a signing certificate MUST NOT have a path component".
    let uri =
        Ia5String::try_from(trust_domain.id().as_str()).map_err(crypto_error("name the root"))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    // X509-SVID §4.1: "Signing certificates MUST set the `cA` field to `true`"; a
    // pathLenConstraint is allowed, and this CA issues leaves only.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    // X509-SVID §4.3: "SVID signing certificates MUST set `keyCertSign`. They MAY set
    // `cRLSign`." Appendix A: digitalSignature "must be set if and only if the SVID is a
    // leaf certificate". rcgen marks key usage critical, as §4.3 requires.
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// The JWK members of an uncompressed P-256 point (RFC 7518 §6.2.1).
fn p256_jwk(point: &[u8]) -> Map<String, Value> {
    // SEC 1 uncompressed form: 0x04 || x || y.
    let coordinates = point.get(1..).unwrap_or_default();
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "EC".into());
    jwk.insert("crv".into(), "P-256".into());
    jwk.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
    jwk.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
    jwk
}

/// RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order,
/// without whitespace, base64url. A stable `kid` that anyone holding the key can recompute.
fn jwk_thumbprint(jwk: &Map<String, Value>) -> String {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str).unwrap_or_default();
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        member("crv"),
        member("kty"),
        member("x"),
        member("y")
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl DevCa {
    /// Opens the dev CA of `trust_domain` in `dir`, creating it on first start (see the
    /// module documentation for the files and what is refused). `now` dates a new root
    /// and is checked against an existing one's validity.
    pub fn open(
        dir: &Path,
        trust_domain: &TrustDomain,
        config: DevCaConfig,
        now: SystemTime,
    ) -> Result<DevCa, OpenError> {
        if config.max_svid_validity < Duration::from_secs(1)
            || config.max_svid_validity > config.ca_validity
        {
            return Err(OpenError::Config(format!(
                "the maximum SVID validity ({:?}) must be at least 1 s and at most the CA \
                 validity ({:?})",
                config.max_svid_validity, config.ca_validity
            )));
        }
        let ca_key_path = dir.join(CA_KEY_FILE);
        let jwt_key_path = dir.join(JWT_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        let existing = read_ca_pem(&cert_path)?;
        if existing.is_some() {
            for key in [&ca_key_path, &jwt_key_path] {
                let exists = key.try_exists().map_err(|source| OpenError::Io {
                    path: key.clone(),
                    source,
                })?;
                if !exists {
                    return Err(OpenError::Incomplete {
                        cert: cert_path,
                        missing: key.clone(),
                    });
                }
            }
        }
        let (ca_pkcs8, _) = keyfile::load_or_create_p256_pkcs8(&ca_key_path)?;
        let (jwt_pkcs8, _) = keyfile::load_or_create_p256_pkcs8(&jwt_key_path)?;
        let ca_key =
            KeyPair::try_from(ca_pkcs8.as_slice()).map_err(crypto_error("load the root key"))?;
        let jwt_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &jwt_pkcs8)
            .map_err(crypto_error("load the JWT key"))?;
        if jwt_key.public_key().as_ref() == ca_key.public_key_raw() {
            return Err(OpenError::SharedKey {
                ca: ca_key_path,
                jwt: jwt_key_path,
            });
        }

        let params = root_params(trust_domain)?;
        let (ca_der, ca_not_before, ca_not_after) = match existing {
            Some(pem) => {
                let der = pem_certificate_der(&pem).map_err(|reason| OpenError::Unreadable {
                    path: cert_path.clone(),
                    reason,
                })?;
                let (not_before, not_after) = check_root(
                    &cert_path,
                    &ca_key_path,
                    &der,
                    &params,
                    &ca_key,
                    trust_domain,
                )?;
                (der, not_before, not_after)
            }
            None => {
                let now = unix(now);
                let not_before = now.saturating_sub(BACKDATE.as_secs());
                let not_after = now.saturating_add(config.ca_validity.as_secs());
                let mut params = params.clone();
                stamp(&mut params, not_before, not_after).map_err(crypto_error("date the root"))?;
                let cert = params
                    .self_signed(&ca_key)
                    .map_err(crypto_error("make the root certificate"))?;
                keyfile::write_new_private(&cert_path, cert.pem().as_bytes())?;
                (cert.der().to_vec(), not_before, not_after)
            }
        };
        let now = unix(now);
        if now < ca_not_before || now >= ca_not_after {
            return Err(OpenError::Expired {
                path: cert_path,
                not_before: ca_not_before,
                not_after: ca_not_after,
                now,
            });
        }

        let jwt_jwk = p256_jwk(jwt_key.public_key().as_ref());
        let jwt_kid = jwk_thumbprint(&jwt_jwk);
        let mut bundle = TrustBundle::new();
        bundle.add_x509_authority(&ca_der, p256_jwk(ca_key.public_key_raw()))?;
        bundle.add_jwt_authority(&jwt_kid, jwt_jwk)?;
        // Trust Domain and Bundle §4.1.1: `spiffe_sequence` "MUST be a monotonically
        // increasing integer". The key set changes only when `ca.pem` is made anew (the
        // keys are bound to it, see the module documentation), and the root's notBefore
        // increases with each new `ca.pem`.
        bundle.set_sequence(Some(ca_not_before));
        bundle.set_refresh_hint(Some(config.refresh_hint.as_secs()));
        Ok(DevCa {
            trust_domain: trust_domain.clone(),
            issuer: Issuer::new(params, ca_key),
            config,
            ca_der,
            ca_not_before,
            ca_not_after,
            jwt_key,
            jwt_kid,
            bundle,
        })
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &DevCaConfig {
        &self.config
    }

    /// The root certificate, DER.
    pub fn ca_certificate_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The root certificate's validity window.
    pub fn ca_validity(&self) -> (SystemTime, SystemTime) {
        (from_unix(self.ca_not_before), from_unix(self.ca_not_after))
    }

    /// The JWT-SVID signing key's `kid` (its RFC 7638 thumbprint).
    pub fn jwt_key_id(&self) -> &str {
        &self.jwt_kid
    }

    /// The trust domain's SPIFFE bundle: the root as the `x509-svid` authority, the JWT
    /// key as the `jwt-svid` authority.
    pub fn trust_bundle(&self) -> &TrustBundle {
        &self.bundle
    }

    /// Checks that `spiffe_id` may hold an SVID of this CA and `validity` is allowed.
    fn check_request(
        &self,
        spiffe_id: &SpiffeId,
        validity: Duration,
    ) -> Result<(), SvidRequestError> {
        if !spiffe_id.member_of(&self.trust_domain) {
            return Err(SvidRequestError::ForeignTrustDomain {
                id: spiffe_id.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        if spiffe_id.is_trust_domain_id() {
            return Err(SvidRequestError::NoPath(spiffe_id.clone()));
        }
        if validity < Duration::from_secs(1) || validity > self.config.max_svid_validity {
            return Err(SvidRequestError::Validity {
                requested: validity,
                max: self.config.max_svid_validity,
            });
        }
        Ok(())
    }

    /// Issues an X.509-SVID for `spiffe_id`, valid from `now` (backdated a minute, not
    /// before the root) for `validity`, cut to the root's own end.
    pub fn issue_x509_svid(
        &self,
        spiffe_id: &SpiffeId,
        key: SubjectKey<'_>,
        validity: Duration,
        now: SystemTime,
    ) -> Result<X509Svid, IssueX509Error> {
        self.check_request(spiffe_id, validity)?;
        let now = unix(now);
        if now < self.ca_not_before || now >= self.ca_not_after {
            return Err(IssueX509Error::CaNotValid {
                not_after: self.ca_not_after,
            });
        }
        let not_before = now
            .saturating_sub(BACKDATE.as_secs())
            .max(self.ca_not_before);
        let not_after = now
            .saturating_add(validity.as_secs())
            .min(self.ca_not_after);

        let mut params = CertificateParams::default();
        // X509-SVID §3.1: "The Subject field is not required, however the URI SAN
        // extension MUST be marked as critical if Subject is omitted" — rcgen marks it
        // critical for an empty subject.
        params.distinguished_name = DistinguishedName::new();
        // X509-SVID §2: "An X.509 SVID MUST contain exactly one URI SAN".
        let uri = Ia5String::try_from(spiffe_id.as_str())
            .map_err(|e| IssueX509Error::Crypto(e.to_string()))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        // X509-SVID §4.1: "leaf certificates MUST set the `cA` field to `false`".
        params.is_ca = IsCa::ExplicitNoCa;
        // X509-SVID §4.3: "Leaf SVIDs MUST set `digitalSignature`. They MAY set
        // `keyEncipherment` and/or `keyAgreement`; these mostly make sense only for
        // certificates for RSA keys" — the keys here are EC, so digitalSignature alone.
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // X509-SVID §4.4: "Leaf SVIDs SHOULD include this extension … When included,
        // fields `id-kp-serverAuth` and `id-kp-clientAuth` MUST be set."
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        stamp(&mut params, not_before, not_after).map_err(IssueX509Error::Crypto)?;

        let crypto = |e: rcgen::Error| IssueX509Error::Crypto(e.to_string());
        let (cert, private_key_pkcs8) = match key {
            SubjectKey::Generate => {
                let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                    .and_then(|k| k.to_pkcs8v1())
                    .map_err(|_| IssueX509Error::Crypto("key generation failed".into()))?;
                let pair = KeyPair::try_from(pkcs8.as_ref()).map_err(crypto)?;
                let cert = params.signed_by(&pair, &self.issuer).map_err(crypto)?;
                (cert, Some(pkcs8.as_ref().to_vec()))
            }
            SubjectKey::Spki(spki) => {
                let public = SpkiKey::parse(spki).map_err(IssueX509Error::SubjectKey)?;
                (
                    params.signed_by(&public, &self.issuer).map_err(crypto)?,
                    None,
                )
            }
        };
        Ok(X509Svid {
            spiffe_id: spiffe_id.clone(),
            chain_der: vec![cert.der().to_vec()],
            private_key_pkcs8,
            not_before: from_unix(not_before),
            not_after: from_unix(not_after),
        })
    }

    /// Issues a JWT-SVID for `spiffe_id` and `audiences`, valid from `now` for
    /// `validity`: `{"alg":"ES256","kid":…,"typ":"JWT"}` over the claims `sub`, `aud` (a
    /// string for one audience, an array for several, as RFC 7519 §4.1.3 allows), `exp`,
    /// `iat` and `iss`.
    ///
    /// `iss` is `spiffe://<trust domain>`, the value provmesh's CA writes into the
    /// Fulcio issuer extensions. JWT-SVID does not define `iss`, but Sigstore clients
    /// require it: sigstore-python decodes identity tokens with `require: ["aud", "sub",
    /// "iat", "exp", "iss"]` and audience `sigstore`. Fulcio's `spiffe` issuer type looks
    /// the token's `iss` up among its configured `IssuerURL`s and fetches keys by OIDC
    /// discovery there (then only checks that `sub` is a SPIFFE ID of the configured
    /// `SPIFFETrustDomain`), so a stock Fulcio accepts these tokens only behind an OIDC
    /// discovery endpoint for this `iss`; provmesh's own CA validates them against the
    /// bundle instead ([`crate::identity::verify_jwt_svid`]).
    pub fn issue_jwt_svid(
        &self,
        spiffe_id: &SpiffeId,
        audiences: &[String],
        validity: Duration,
        now: SystemTime,
    ) -> Result<String, IssueJwtError> {
        self.check_request(spiffe_id, validity)?;
        let audience = match audiences {
            [] => return Err(IssueJwtError::Audience("at least one is required".into())),
            [one] => Aud::One(one),
            many if many.len() > MAX_AUDIENCES => {
                return Err(IssueJwtError::Audience(format!(
                    "{} given; at most {MAX_AUDIENCES}",
                    many.len()
                )));
            }
            many => Aud::Many(many),
        };
        if let Some(bad) = audiences
            .iter()
            .find(|a| a.is_empty() || a.len() > MAX_AUDIENCE_LEN)
        {
            return Err(IssueJwtError::Audience(format!(
                "an audience must be 1 to {MAX_AUDIENCE_LEN} bytes, not {}",
                bad.len()
            )));
        }
        let iat = unix(now);
        let issuer = self.trust_domain.id();
        let header = JwtHeader {
            alg: "ES256",
            kid: &self.jwt_kid,
            typ: "JWT",
        };
        let claims = JwtClaims {
            sub: spiffe_id.as_str(),
            aud: audience,
            exp: iat.saturating_add(validity.as_secs()),
            iat,
            iss: issuer.as_str(),
        };
        let mut token = format!("{}.{}", b64_json(&header), b64_json(&claims));
        // ES256 (RFC 7518 §3.4): ECDSA P-256 SHA-256, the signature being the 64-byte
        // `R || S`, which is aws-lc-rs's FIXED format.
        let signature = self
            .jwt_key
            .sign(&SystemRandom::new(), token.as_bytes())
            .map_err(|_| IssueJwtError::Crypto)?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }
}

/// base64url of the compact JSON of a token part. Serialising the part structs cannot
/// fail (strings and integers only), so no error path is offered.
fn b64_json<T: Serialize>(part: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(part).unwrap_or_default())
}

/// The JOSE header of an issued JWT-SVID (JWT-SVID §2: `alg`, `kid`, `typ` only).
#[derive(Serialize)]
struct JwtHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

/// The claims of an issued JWT-SVID.
#[derive(Serialize)]
struct JwtClaims<'a> {
    sub: &'a str,
    aud: Aud<'a>,
    exp: u64,
    iat: u64,
    iss: &'a str,
}

/// `aud`: a string for one audience, an array for several.
#[derive(Serialize)]
#[serde(untagged)]
enum Aud<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// A subject public key given as a SubjectPublicKeyInfo, for rcgen to certify.
struct SpkiKey {
    point: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

impl SpkiKey {
    /// Accepts a DER SubjectPublicKeyInfo of an ECDSA P-256 or P-384 key with a valid
    /// uncompressed point (named-curve form, RFC 5480 §2).
    fn parse(spki: &[u8]) -> Result<SpkiKey, String> {
        let (point, alg, verify) = if let Some(p) = spki.strip_prefix(P256_SPKI_PREFIX) {
            (p, &PKCS_ECDSA_P256_SHA256, &ECDSA_P256_SHA256_ASN1)
        } else if let Some(p) = spki.strip_prefix(P384_SPKI_PREFIX) {
            (p, &PKCS_ECDSA_P384_SHA384, &ECDSA_P384_SHA384_ASN1)
        } else {
            return Err("not a DER SubjectPublicKeyInfo of an ECDSA P-256 or P-384 key".into());
        };
        UnparsedPublicKey::new(verify, point)
            .parse()
            .map_err(|e| format!("not a valid public key: {e}"))?;
        Ok(SpkiKey {
            point: point.to_vec(),
            alg,
        })
    }
}

impl PublicKeyData for SpkiKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

/// Reads `ca.pem` if it exists.
fn read_ca_pem(path: &Path) -> Result<Option<String>, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if bytes.len() > MAX_CA_PEM_LEN {
        return Err(OpenError::Unreadable {
            path: path.to_owned(),
            reason: format!(
                "{} bytes; a CA certificate is at most {MAX_CA_PEM_LEN}",
                bytes.len()
            ),
        });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| OpenError::Unreadable {
            path: path.to_owned(),
            reason: "not UTF-8 text".into(),
        })
}

/// The DER of the one `CERTIFICATE` block of `pem` (RFC 7468 §5); blocks with other
/// labels and text around the blocks are ignored. `pem` is bounded by the caller.
pub(crate) fn pem_certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    let mut certificate = None;
    for block in Pem::iter_from_buffer(pem.as_bytes()) {
        let block = block.map_err(|e| match e {
            PEMError::Base64DecodeError => "the certificate is not base64".to_owned(),
            PEMError::IncompletePEM => "no END CERTIFICATE line".to_owned(),
            other => format!("not PEM: {other}"),
        })?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        if certificate.is_some() {
            return Err("more than one certificate; give the CA certificate alone".into());
        }
        certificate = Some(block.contents);
    }
    certificate.ok_or_else(|| "no BEGIN CERTIFICATE line".into())
}

/// A certificate as x509-parser reads it, with its validity window in Unix seconds.
struct ParsedCert<'a> {
    x509: X509Certificate<'a>,
    not_before: u64,
    not_after: u64,
}

impl<'a> ParsedCert<'a> {
    /// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`
    /// (RFC 5280 §4.1), with nothing after it, a signature BIT STRING without unused bits
    /// (an ECDSA signature is whole octets) and a validity that starts after 1970.
    fn parse(der: &'a [u8]) -> Option<ParsedCert<'a>> {
        let (rest, x509) = x509_parser::parse_x509_certificate(der).ok()?;
        if !rest.is_empty() || x509.signature_value.unused_bits != 0 {
            return None;
        }
        let validity = x509.validity();
        let not_before = u64::try_from(validity.not_before.timestamp()).ok()?;
        let not_after = u64::try_from(validity.not_after.timestamp()).ok()?;
        Some(ParsedCert {
            x509,
            not_before,
            not_after,
        })
    }

    /// Whether both agree in everything this CA fixes in its root apart from key,
    /// signature, serial and validity: version, TBS signature algorithm, issuer and
    /// subject (byte for byte), unique identifiers, extensions in order, and the outer
    /// signature algorithm.
    fn same_profile(&self, other: &ParsedCert<'_>) -> bool {
        let (a, b) = (&self.x509.tbs_certificate, &other.x509.tbs_certificate);
        a.version == b.version
            && a.signature == b.signature
            && a.issuer.as_raw() == b.issuer.as_raw()
            && a.subject.as_raw() == b.subject.as_raw()
            && a.issuer_uid == b.issuer_uid
            && a.subject_uid == b.subject_uid
            && a.extensions() == b.extensions()
            && self.x509.signature_algorithm == other.x509.signature_algorithm
    }

    /// The URIs of its subjectAltName extensions (RFC 5280 §4.2.1.6:
    /// `uniformResourceIdentifier [6] IA5String`).
    fn san_uris(&self) -> Vec<&'a str> {
        self.x509
            .iter_extensions()
            .filter_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => Some(san),
                _ => None,
            })
            .flat_map(|san| &san.general_names)
            .filter_map(|name| match name {
                GeneralName::URI(uri) => Some(*uri),
                _ => None,
            })
            .collect()
    }
}

/// Checks a stored root against the key, trust domain and profile of this CA, and
/// returns its validity window (Unix seconds).
fn check_root(
    path: &Path,
    key_path: &Path,
    der: &[u8],
    params: &CertificateParams,
    key: &KeyPair,
    trust_domain: &TrustDomain,
) -> Result<(u64, u64), OpenError> {
    let unreadable = |reason: &str| OpenError::Unreadable {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let stored = ParsedCert::parse(der).ok_or_else(|| unreadable("not a DER certificate"))?;
    // What this CA would write now with the same key, apart from serial and validity.
    let reference = params
        .self_signed(key)
        .map_err(crypto_error("make a reference root certificate"))?;
    let expected = ParsedCert::parse(reference.der())
        .ok_or_else(|| unreadable("rcgen wrote an unparsable certificate"))?;
    if stored.x509.tbs_certificate.subject_pki.raw != expected.x509.tbs_certificate.subject_pki.raw
    {
        return Err(OpenError::KeyMismatch {
            path: path.to_owned(),
            key: key_path.to_owned(),
        });
    }
    // The signature is over the TBSCertificate's DER as stored (RFC 5280 §4.1.1.3).
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key_raw())
        .verify(
            stored.x509.tbs_certificate.as_ref(),
            &stored.x509.signature_value.data,
        )
        .map_err(|_| OpenError::BadSignature {
            path: path.to_owned(),
        })?;
    let uris = stored.san_uris();
    if uris != [trust_domain.id().as_str()] {
        return Err(OpenError::TrustDomainMismatch {
            path: path.to_owned(),
            found: uris.join(", "),
            expected: trust_domain.clone(),
        });
    }
    if !stored.same_profile(&expected) {
        return Err(OpenError::ForeignProfile {
            path: path.to_owned(),
        });
    }
    Ok((stored.not_before, stored.not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_certificate_block_of_a_pem_file_is_read() {
        let block = |label: &str, body: &str| {
            format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
        };
        let cert = block("CERTIFICATE", "AQID");
        assert_eq!(pem_certificate_der(&cert), Ok(vec![1, 2, 3]));
        let with_text = format!("a comment\n{}{cert}", block("PRIVATE KEY", "BAUG"));
        assert_eq!(pem_certificate_der(&with_text), Ok(vec![1, 2, 3]));
        assert!(pem_certificate_der(&format!("{cert}{cert}")).is_err());
        assert!(pem_certificate_der("not a certificate").is_err());
        assert!(pem_certificate_der(&block("PRIVATE KEY", "BAUG")).is_err());
        assert!(pem_certificate_der(&block("CERTIFICATE", "A!ID")).is_err());
        assert!(pem_certificate_der("-----BEGIN CERTIFICATE-----\nAQID\n").is_err());
    }

    #[test]
    fn the_jwk_thumbprint_matches_rfc_7638_shape() {
        let mut point = vec![0x04];
        point.extend([1u8; 32]);
        point.extend([2u8; 32]);
        let jwk = p256_jwk(&point);
        assert_eq!(jwk["x"], URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert_eq!(jwk["y"], URL_SAFE_NO_PAD.encode([2u8; 32]));
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode([1u8; 32]),
            URL_SAFE_NO_PAD.encode([2u8; 32])
        );
        assert_eq!(
            jwk_thumbprint(&jwk),
            URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
        );
    }
}
