//! RFC 6962 Certificate Transparency signed certificate timestamps (SCTs) for
//! precertificates: the CT log key, signing and verifying an SCT, and the TLS encoding of
//! one SCT and of the `SignedCertificateTimestampList` a certificate embeds.
//!
//! provmesh runs no CT log server: the domain authority holds a CT key and signs the SCT
//! itself when it issues a code-signing certificate, then records the precertificate in
//! the domain log (design "Roles"), which keeps the SCT's promise. Sigstore verifiers
//! demand exactly one embedded SCT that verifies with a `ctlogs` key of the trusted root
//! (interop.md, "Signing certificate"); this module produces and checks it.
//!
//! Only what that needs is implemented: v1 SCTs over `precert_entry` signed with ECDSA
//! P-256 and SHA-256 (the `PKIX_ECDSA_P256_SHA_256` key type of a Sigstore trusted root).

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey,
};
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

/// `Version` v1 — RFC 6962 §3.2: `enum { v1(0), (255) } Version;`
pub const SCT_VERSION_V1: u8 = 0;
/// RFC 6962 §3.2: `enum { certificate_timestamp(0), tree_hash(1), (255) } SignatureType;`
const SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP: u8 = 0;
/// RFC 6962 §3.1: `enum { x509_entry(0), precert_entry(1), (65535) } LogEntryType;`
const ENTRY_TYPE_PRECERT: u16 = 1;
/// RFC 5246 §7.4.1.4.1: `enum { ..., sha256(4), ... } HashAlgorithm;`
pub const HASH_ALGORITHM_SHA256: u8 = 4;
/// RFC 5246 §7.4.1.4.1: `enum { anonymous(0), rsa(1), dsa(2), ecdsa(3), (255) }
/// SignatureAlgorithm;`
pub const SIGNATURE_ALGORITHM_ECDSA: u8 = 3;
/// RFC 6962 §3.2: `opaque TBSCertificate<1..2^24-1>;`
pub const MAX_TBS_CERTIFICATE_LEN: usize = (1 << 24) - 1;
/// The bound of a TLS `<..2^16-1>` vector: SCT extensions, the signature, one serialized
/// SCT and the whole SCT list.
pub const MAX_U16_VECTOR_LEN: usize = u16::MAX as usize;

/// Why a CT log signing key is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CtKeyError {
    /// The bytes are not an unencrypted PKCS #8 ECDSA P-256 private key.
    #[error("CT log key is not a PKCS #8 ECDSA P-256 private key: {reason}")]
    NotP256Pkcs8 {
        /// What aws-lc-rs reported.
        reason: String,
    },
    /// The public key could not be encoded (an aws-lc-rs failure).
    #[error("CT log public key could not be encoded as a SubjectPublicKeyInfo")]
    PublicKeyEncoding,
}

/// Why an SCT could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SctSignError {
    /// The precertificate TBS is empty or longer than a `TBSCertificate<1..2^24-1>`.
    #[error(
        "precertificate TBS is {len} bytes long; RFC 6962 allows 1 to {MAX_TBS_CERTIFICATE_LEN}"
    )]
    TbsLength {
        /// Its length.
        len: usize,
    },
    /// aws-lc-rs failed to sign.
    #[error("the CT log key failed to sign the SCT")]
    Signing,
}

/// Why an SCT list could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SctListError {
    /// RFC 6962 §3.3: `SerializedSCT sct_list <1..2^16-1>` — at least one SCT.
    #[error("an SCT list must hold at least one SCT")]
    Empty,
    /// The encoded list exceeds 65535 bytes.
    #[error("the SCT list is {len} bytes long; the maximum is {MAX_U16_VECTOR_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// Why bytes are not an SCT or an SCT list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SctDecodeError {
    /// The bytes end inside a field.
    #[error("SCT data is truncated")]
    Truncated,
    /// An SCT of another version than v1.
    #[error("SCT version {0} is not supported; only v1 (0) is")]
    UnsupportedVersion(u8),
    /// An empty `SerializedSCT` or an empty list (both are `<1..2^16-1>`).
    #[error("SCT list or SCT entry is empty")]
    Empty,
    /// Bytes follow the structure.
    #[error("{0} bytes follow the SCT data")]
    TrailingBytes(usize),
}

/// Why an SCT does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SctVerifyError {
    /// The SCT names another log than the key given.
    #[error(
        "SCT was issued by CT log {found} but the key given is CT log {expected}",
        found = hex::encode(.found),
        expected = hex::encode(.expected)
    )]
    WrongLog {
        /// SHA-256 of the key given.
        expected: [u8; 32],
        /// The SCT's log id.
        found: [u8; 32],
    },
    /// The SCT is not signed with ECDSA and SHA-256.
    #[error(
        "SCT is signed with hash algorithm {hash} and signature algorithm {signature}; \
         only SHA-256 (4) with ECDSA (3) is supported"
    )]
    UnsupportedAlgorithm {
        /// Its `HashAlgorithm`.
        hash: u8,
        /// Its `SignatureAlgorithm`.
        signature: u8,
    },
    /// The CT log key is not a DER SubjectPublicKeyInfo of an ECDSA P-256 key.
    #[error("CT log key is not an ECDSA P-256 SubjectPublicKeyInfo: {reason}")]
    InvalidLogKey {
        /// What is wrong with it.
        reason: String,
    },
    /// The precertificate TBS is empty or too long to have been signed.
    #[error(
        "precertificate TBS is {len} bytes long; RFC 6962 allows 1 to {MAX_TBS_CERTIFICATE_LEN}"
    )]
    TbsLength {
        /// Its length.
        len: usize,
    },
    /// The signature does not verify over the precertificate entry.
    #[error("SCT signature does not verify over this precertificate and issuer key")]
    BadSignature,
}

/// A v1 signed certificate timestamp (RFC 6962 §3.2).
///
/// Built only by [`CtLogKey::sign_precert_sct`] or decoded from bytes, so every field
/// fits its TLS vector and [`encode`](Self::encode) cannot fail.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedCertificateTimestamp {
    log_id: [u8; 32],
    timestamp_ms: u64,
    extensions: Vec<u8>,
    hash_algorithm: u8,
    signature_algorithm: u8,
    signature: Vec<u8>,
}

impl fmt::Debug for SignedCertificateTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCertificateTimestamp")
            .field("log_id", &hex::encode(self.log_id))
            .field("timestamp_ms", &self.timestamp_ms)
            .field("extensions", &hex::encode(&self.extensions))
            .field("hash_algorithm", &self.hash_algorithm)
            .field("signature_algorithm", &self.signature_algorithm)
            .field("signature", &hex::encode(&self.signature))
            .finish()
    }
}

impl SignedCertificateTimestamp {
    /// The log's id: SHA-256 of its public key's SubjectPublicKeyInfo DER.
    pub fn log_id(&self) -> [u8; 32] {
        self.log_id
    }

    /// The timestamp, milliseconds since the Unix epoch (RFC 6962 §3.2: "the current
    /// NTP Time \[RFC5905\], measured since the epoch [...] in milliseconds").
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// The `CtExtensions` bytes (empty: RFC 6962 defines none).
    pub fn extensions(&self) -> &[u8] {
        &self.extensions
    }

    /// The `HashAlgorithm` of the `digitally-signed` element (4 = SHA-256).
    pub fn hash_algorithm(&self) -> u8 {
        self.hash_algorithm
    }

    /// The `SignatureAlgorithm` of the `digitally-signed` element (3 = ECDSA).
    pub fn signature_algorithm(&self) -> u8 {
        self.signature_algorithm
    }

    /// The signature: an ASN.1 DER `Ecdsa-Sig-Value` for ECDSA.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The TLS encoding of this SCT (RFC 6962 §3.2, RFC 5246 §4.7):
    ///
    /// ```text
    /// struct {
    ///     Version sct_version;            -- 1 byte, v1(0)
    ///     LogID id;                       -- opaque key_id[32]
    ///     uint64 timestamp;
    ///     CtExtensions extensions;        -- opaque <0..2^16-1>
    ///     digitally-signed struct { ... } -- HashAlgorithm, SignatureAlgorithm,
    /// } SignedCertificateTimestamp;       -- opaque signature<0..2^16-1>
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(1 + 32 + 8 + 2 + self.extensions.len() + 4 + self.signature.len());
        out.push(SCT_VERSION_V1);
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        push_u16_vector(&mut out, &self.extensions);
        out.push(self.hash_algorithm);
        out.push(self.signature_algorithm);
        push_u16_vector(&mut out, &self.signature);
        out
    }

    /// Decodes one TLS-encoded v1 SCT filling `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<SignedCertificateTimestamp, SctDecodeError> {
        let mut reader = Reader(bytes);
        let version = reader.u8()?;
        if version != SCT_VERSION_V1 {
            return Err(SctDecodeError::UnsupportedVersion(version));
        }
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(reader.take(32)?);
        let timestamp_ms = u64::from_be_bytes(
            reader
                .take(8)?
                .try_into()
                .map_err(|_| SctDecodeError::Truncated)?,
        );
        let extensions = reader.u16_vector()?.to_vec();
        let hash_algorithm = reader.u8()?;
        let signature_algorithm = reader.u8()?;
        let signature = reader.u16_vector()?.to_vec();
        if !reader.0.is_empty() {
            return Err(SctDecodeError::TrailingBytes(reader.0.len()));
        }
        Ok(SignedCertificateTimestamp {
            log_id,
            timestamp_ms,
            extensions,
            hash_algorithm,
            signature_algorithm,
            signature,
        })
    }
}

/// An ECDSA P-256 CT log signing key.
///
/// Loaded from PKCS #8 DER: the node generates and persists the key; this crate has no
/// random number generator.
pub struct CtLogKey {
    key_pair: EcdsaKeyPair,
    spki_der: Vec<u8>,
    log_id: [u8; 32],
}

impl fmt::Debug for CtLogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("CtLogKey")
            .field("log_id", &hex::encode(self.log_id))
            .finish_non_exhaustive()
    }
}

impl CtLogKey {
    /// Loads an unencrypted PKCS #8 (RFC 5208) ECDSA P-256 private key.
    pub fn from_pkcs8_der(pkcs8_der: &[u8]) -> Result<CtLogKey, CtKeyError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8_der)
            .map_err(|e| CtKeyError::NotP256Pkcs8 {
                reason: e.to_string(),
            })?;
        let spki_der = key_pair
            .public_key()
            .as_der()
            .map_err(|_| CtKeyError::PublicKeyEncoding)?
            .as_ref()
            .to_vec();
        // RFC 6962 §3.2: "key_id" is the SHA-256 hash of the log's public key,
        // calculated over the DER encoding of the key represented as
        // SubjectPublicKeyInfo.
        let log_id = Sha256::digest(&spki_der).into();
        Ok(CtLogKey {
            key_pair,
            spki_der,
            log_id,
        })
    }

    /// The log id: SHA-256 of [`public_key_spki_der`](Self::public_key_spki_der); the
    /// `logId.keyId` of the trusted root's `ctlogs` entry.
    pub fn log_id(&self) -> [u8; 32] {
        self.log_id
    }

    /// The public key as a DER SubjectPublicKeyInfo (the trusted root's
    /// `ctlogs[].publicKey.rawBytes`).
    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Signs a v1 SCT for a precertificate (RFC 6962 §3.2, `entry_type` =
    /// `precert_entry`), with no `CtExtensions`.
    ///
    /// `precert_tbs_der` is the DER `TBSCertificate` of the final certificate without the
    /// SCT list extension; `issuer_spki_der` the DER SubjectPublicKeyInfo of the CA that
    /// issues it.
    pub fn sign_precert_sct(
        &self,
        precert_tbs_der: &[u8],
        issuer_spki_der: &[u8],
        timestamp_ms: u64,
    ) -> Result<SignedCertificateTimestamp, SctSignError> {
        let message = precert_signature_input(precert_tbs_der, issuer_spki_der, timestamp_ms, &[])
            .ok_or(SctSignError::TbsLength {
                len: precert_tbs_der.len(),
            })?;
        // `sign_digest` rather than `sign`: aws-lc-rs ignores the `SecureRandom` argument
        // of `sign` anyway (AWS-LC draws the ECDSA nonce internally), and this crate
        // constructs no random number generator of its own.
        let signature = self
            .key_pair
            .sign_digest(&digest::digest(&digest::SHA256, &message))
            .map_err(|_| SctSignError::Signing)?;
        Ok(SignedCertificateTimestamp {
            log_id: self.log_id,
            timestamp_ms,
            extensions: Vec::new(),
            hash_algorithm: HASH_ALGORITHM_SHA256,
            signature_algorithm: SIGNATURE_ALGORITHM_ECDSA,
            // An ECDSA P-256 DER signature is at most 72 bytes: fits `<0..2^16-1>`.
            signature: signature.as_ref().to_vec(),
        })
    }
}

/// The bytes an SCT for a precertificate signs (RFC 6962 §3.2); `None` if the TBS is
/// empty or longer than 2^24-1 bytes.
///
/// ```text
/// digitally-signed struct {
///     Version sct_version;                          -- v1(0)
///     SignatureType signature_type = certificate_timestamp;  -- 0
///     uint64 timestamp;
///     LogEntryType entry_type;                      -- precert_entry(1), uint16
///     select(entry_type) {
///         case precert_entry: PreCert;              -- opaque issuer_key_hash[32];
///     } signed_entry;                               -- TBSCertificate<1..2^24-1>
///     CtExtensions extensions;                      -- <0..2^16-1>
/// };
/// ```
///
/// RFC 6962 §3.2: "issuer_key_hash" is the SHA-256 hash of the certificate issuer's
/// public key, calculated over the DER encoding of the key represented as
/// SubjectPublicKeyInfo.
fn precert_signature_input(
    precert_tbs_der: &[u8],
    issuer_spki_der: &[u8],
    timestamp_ms: u64,
    extensions: &[u8],
) -> Option<Vec<u8>> {
    let tbs_len = precert_tbs_der.len();
    if tbs_len == 0 || tbs_len > MAX_TBS_CERTIFICATE_LEN || extensions.len() > MAX_U16_VECTOR_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(1 + 1 + 8 + 2 + 32 + 3 + tbs_len + 2 + extensions.len());
    out.push(SCT_VERSION_V1);
    out.push(SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP);
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(&ENTRY_TYPE_PRECERT.to_be_bytes());
    out.extend_from_slice(&Sha256::digest(issuer_spki_der));
    // uint24 length: the low three bytes of the big-endian u32 (`tbs_len < 2^24`).
    let len = u32::try_from(tbs_len).ok()?.to_be_bytes();
    out.extend_from_slice(len.get(1..)?);
    out.extend_from_slice(precert_tbs_der);
    push_u16_vector(&mut out, extensions);
    Some(out)
}

/// Verifies `sct` as the CT log with key `ct_log_spki_der` (a DER SubjectPublicKeyInfo
/// of an ECDSA P-256 key) having signed the precertificate `precert_tbs_der` issued by
/// the CA whose key is `issuer_spki_der`.
///
/// The log id must be SHA-256 of `ct_log_spki_der` and the algorithm ECDSA with SHA-256.
/// The timestamp is not judged: what time an SCT may carry is the caller's policy.
pub fn verify_sct(
    sct: &SignedCertificateTimestamp,
    ct_log_spki_der: &[u8],
    precert_tbs_der: &[u8],
    issuer_spki_der: &[u8],
) -> Result<(), SctVerifyError> {
    let expected: [u8; 32] = Sha256::digest(ct_log_spki_der).into();
    if sct.log_id != expected {
        return Err(SctVerifyError::WrongLog {
            expected,
            found: sct.log_id,
        });
    }
    if (sct.hash_algorithm, sct.signature_algorithm)
        != (HASH_ALGORITHM_SHA256, SIGNATURE_ALGORITHM_ECDSA)
    {
        return Err(SctVerifyError::UnsupportedAlgorithm {
            hash: sct.hash_algorithm,
            signature: sct.signature_algorithm,
        });
    }
    let point =
        p256_point(ct_log_spki_der).map_err(|reason| SctVerifyError::InvalidLogKey { reason })?;
    let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point).map_err(|e| {
        SctVerifyError::InvalidLogKey {
            reason: format!("the key is not a point on P-256 ({e})"),
        }
    })?;
    let message = precert_signature_input(
        precert_tbs_der,
        issuer_spki_der,
        sct.timestamp_ms,
        &sct.extensions,
    )
    .ok_or(SctVerifyError::TbsLength {
        len: precert_tbs_der.len(),
    })?;
    key.verify_sig(&message, &sct.signature)
        .map_err(|_| SctVerifyError::BadSignature)
}

/// The SEC1 point of a DER SubjectPublicKeyInfo holding an ECDSA P-256 key.
fn p256_point(spki_der: &[u8]) -> Result<Vec<u8>, String> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the key", rest.len()));
    }
    // RFC 5480 §2.1.1: id-ecPublicKey with the namedCurve parameter secp256r1.
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY || curve != Some(OID_EC_P256) {
        return Err(format!(
            "its algorithm is {} rather than id-ecPublicKey on secp256r1",
            spki.algorithm.algorithm.to_id_string()
        ));
    }
    if spki.subject_public_key.unused_bits != 0 {
        return Err("the key bit string is not octet-aligned".to_owned());
    }
    Ok(spki.subject_public_key.data.to_vec())
}

/// Encodes a `SignedCertificateTimestampList` (RFC 6962 §3.3):
///
/// ```text
/// opaque SerializedSCT<1..2^16-1>;
/// struct {
///     SerializedSCT sct_list <1..2^16-1>;
/// } SignedCertificateTimestampList;
/// ```
///
/// These bytes go inside the OCTET STRING that is the value of the certificate
/// extension 1.3.6.1.4.1.11129.2.4.2.
pub fn encode_sct_list(scts: &[SignedCertificateTimestamp]) -> Result<Vec<u8>, SctListError> {
    if scts.is_empty() {
        return Err(SctListError::Empty);
    }
    let mut body = Vec::new();
    for sct in scts {
        let encoded = sct.encode();
        if encoded.len() > MAX_U16_VECTOR_LEN {
            return Err(SctListError::TooLong { len: encoded.len() });
        }
        push_u16_vector(&mut body, &encoded);
    }
    if body.len() > MAX_U16_VECTOR_LEN {
        return Err(SctListError::TooLong { len: body.len() });
    }
    let mut out = Vec::with_capacity(2 + body.len());
    push_u16_vector(&mut out, &body);
    Ok(out)
}

/// Decodes a `SignedCertificateTimestampList` (see [`encode_sct_list`]) filling `bytes`.
///
/// Every entry must be a v1 SCT. At most 64 KiB is read, so at most a few hundred SCTs.
pub fn decode_sct_list(bytes: &[u8]) -> Result<Vec<SignedCertificateTimestamp>, SctDecodeError> {
    let mut outer = Reader(bytes);
    let list = outer.u16_vector()?;
    if !outer.0.is_empty() {
        return Err(SctDecodeError::TrailingBytes(outer.0.len()));
    }
    if list.is_empty() {
        return Err(SctDecodeError::Empty);
    }
    let mut reader = Reader(list);
    let mut scts = Vec::new();
    while !reader.0.is_empty() {
        let entry = reader.u16_vector()?;
        if entry.is_empty() {
            return Err(SctDecodeError::Empty);
        }
        scts.push(SignedCertificateTimestamp::decode(entry)?);
    }
    Ok(scts)
}

/// Appends a TLS `opaque <0..2^16-1>` vector; callers keep `bytes` within the bound.
fn push_u16_vector(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A cursor over TLS-encoded bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SctDecodeError> {
        if self.0.len() < n {
            return Err(SctDecodeError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, SctDecodeError> {
        self.take(1)?
            .first()
            .copied()
            .ok_or(SctDecodeError::Truncated)
    }

    fn u16_vector(&mut self) -> Result<&'a [u8], SctDecodeError> {
        let len = self.take(2)?;
        let len = u16::from_be_bytes([
            len.first().copied().unwrap_or_default(),
            len.get(1).copied().unwrap_or_default(),
        ]);
        self.take(usize::from(len))
    }
}
