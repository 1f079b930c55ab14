//! The domain record: a trust domain's SPIFFE bundle and provmesh keys, signed by its
//! authority, and the domain-log entry that records it.
//!
//! This module owns three formats and the verification of one signature:
//!
//! * [`DomainRecord`], the JSON payload (`application/vnd.provmesh.domain-record.v1+json`):
//!
//!   ```json
//!   {"trustDomain":"org-a.example","recordSequence":3,"issuedAt":1795564800,
//!    "spiffeBundle":{"keys":[…],"spiffe_sequence":7},
//!    "authority":{"spiffeId":"spiffe://org-a.example/provmesh/authority","addresses":["/ip4/10.0.0.1/tcp/4001","https://authority.org-a.example"]},
//!    "logs":[{"origin":"log.org-a.example","verifierKey":"log.org-a.example+1a2b3c4d+AQ…","validFrom":1795000000}],
//!    "codeSigningRoots":[{"certificate":"<base64 DER>","validFrom":1795000000}],
//!    "ctKeys":[{"publicKey":"<base64 SubjectPublicKeyInfo DER>","validFrom":1795000000}],
//!    "witnessKeys":[{"verifierKey":"witness.org-a.example+5e6f7a8b+BA…","validFrom":1795000000,"validUntil":1796000000}]}
//!   ```
//!
//!   (shown wrapped; the real document has no white space). Every member is required
//!   except `validUntil`; unknown members are refused. The document is **canonical**: the
//!   members in this order, no white space, standard padded base64, `validUntil` omitted
//!   when open, and the SPIFFE bundle written as [`TrustBundle::to_json`] writes it
//!   (object members sorted by name). A payload that is not the canonical encoding of
//!   what it parses to is refused, so one record has exactly one byte string: equal
//!   records are equal bytes, and two different payloads for one record sequence are two
//!   different records (a fork), never two spellings of one.
//! * [`SignedDomainRecord`], `{"envelope":<DSSE envelope>,"svidChain":["<base64 DER>",…]}`:
//!   a DSSE v1 envelope with exactly one signature, made by the authority's X.509-SVID
//!   key, and that SVID's chain (leaf first, as the SPIFFE Workload API hands it out).
//! * The log entry of kind [`DOMAIN_RECORD_ENTRY_KIND`] ([`domain_record_entry`],
//!   [`signed_record_from_entry`]): design, "Federation": "Each record is also appended
//!   to the domain's own log, so witnesses make a forked trust bundle as detectable as a
//!   forked log."
//!
//! # Verification at `issuedAt`
//!
//! [`SignedDomainRecord::verify`] validates the SVID chain **at the record's `issuedAt`**,
//! not at the verifier's clock. X.509-SVIDs live for minutes to hours, while a record
//! stays the domain's current one for weeks, and a node that joins late walks the
//! domain's whole chain of records long after every SVID in it expired; checking at "now"
//! would make every record but the newest unverifiable. The cost is that a leaked
//! authority key remains usable to sign records dated inside its SVID's validity. Three
//! things bound that: `issuedAt` may not lie in the verifier's future (beyond the
//! configured skew); the registry refuses a record whose `issuedAt` is older than the
//! one it accepted (so a node that is up to date cannot be fed a record signed with a key
//! whose SVID expired before its current record was issued); and every record is in the
//! domain's witnessed log, so an alternative record the authority never published is a
//! visible fork, not a silent one.
//!
//! # Sizes
//!
//! A signed record must fit one log entry, whose body is at most
//! [`MAX_ENTRY_BODY_BYTES`] (tile entry bundles prefix each entry with a `uint16`
//! length) and carries the signed record as base64, which itself carries the record as
//! base64. Hence [`MAX_RECORD_JSON_LEN`] (32 KiB) for the record and
//! [`MAX_SIGNED_RECORD_JSON_LEN`] (47 KiB) for the signed record: every signed record
//! that parses makes a valid entry. A typical record (a few bundle keys, one log, one
//! root, one CT and one witness key) is 3–6 KiB.
//!
//! Pure: times are arguments; nothing here reads a clock or draws randomness.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::cosignature::CosignatureVerifier;
use crate::dsse::{self, DsseSigner, Envelope};
use crate::log::{AdmittedEntry, MAX_ENTRY_BODY_BYTES};
use crate::machine::Timestamp;
use crate::merkle::leaf_hash;
use crate::note::{KeyName, KeyParseError, SIGNATURE_TYPE_ECDSA, SIGNATURE_TYPE_ED25519, Verifier};
use crate::spiffe::x509::{
    MAX_SVID_CHAIN_LEN, SvidSignatureError, VerifiedX509Svid, X509SvidError, verify_svid_signature,
    verify_x509_svid,
};
use crate::spiffe::{BundleError, SpiffeId, TrustBundle, TrustDomain};

/// The DSSE payload type of a domain record.
pub const DOMAIN_RECORD_PAYLOAD_TYPE: &str = "application/vnd.provmesh.domain-record.v1+json";

/// The `kind` of the domain-log entry that records a signed domain record.
pub const DOMAIN_RECORD_ENTRY_KIND: &str = "provmesh-domain-record";

/// The largest record payload, in bytes (see the module documentation, "Sizes").
pub const MAX_RECORD_JSON_LEN: usize = 32 * 1024;

/// The largest signed record document, in bytes: its base64 and the entry's other
/// members (a trust domain of at most 255 bytes, a 20-digit sequence) stay within
/// [`MAX_ENTRY_BODY_BYTES`].
pub const MAX_SIGNED_RECORD_JSON_LEN: usize = 47 * 1024;

/// The most elements each key list of a record (`logs`, `codeSigningRoots`, `ctKeys`,
/// `witnessKeys`) may hold.
pub const MAX_KEYS_PER_LIST: usize = 64;

/// The most addresses an authority may list.
pub const MAX_ADDRESSES: usize = 16;

/// The longest address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 256;

/// The latest time a record may name, in Unix seconds: 9999-12-31T23:59:59Z, the end of
/// a `google.protobuf.Timestamp` ("Range is from 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z"), so every window maps onto a Sigstore TrustedRoot
/// `TimeRange`.
pub const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

// ---------------------------------------------------------------------------------------
// The record
// ---------------------------------------------------------------------------------------

/// When a key may be used: from `valid_from` to `valid_until`, both inclusive, in Unix
/// seconds. Open-ended while `valid_until` is `None`.
///
/// Inclusive at both ends like a Sigstore TrustedRoot `validFor` range, into which these
/// windows are exported (sigstore-python `_is_timerange_valid`: "checks that the the
/// current time is not before `start`" and "not after `end`").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyWindow {
    /// First second the key is valid.
    pub valid_from: u64,
    /// Last second the key is valid; `None` while it has no end.
    pub valid_until: Option<u64>,
}

impl KeyWindow {
    /// An open-ended window starting at `valid_from`.
    pub fn open_from(valid_from: u64) -> KeyWindow {
        KeyWindow {
            valid_from,
            valid_until: None,
        }
    }

    /// A closed window `valid_from..=valid_until`.
    pub fn between(valid_from: u64, valid_until: u64) -> KeyWindow {
        KeyWindow {
            valid_from,
            valid_until: Some(valid_until),
        }
    }

    /// Whether the key is valid at `unix_seconds`.
    pub fn contains(&self, unix_seconds: u64) -> bool {
        self.valid_from <= unix_seconds && self.valid_until.is_none_or(|end| unix_seconds <= end)
    }

    /// Whether the window is well formed: it ends no earlier than it starts, and both
    /// ends are at most [`MAX_UNIX_SECONDS`].
    pub fn is_valid(&self) -> bool {
        self.valid_from <= MAX_UNIX_SECONDS
            && self
                .valid_until
                .is_none_or(|end| self.valid_from <= end && end <= MAX_UNIX_SECONDS)
    }
}

/// The authority of the domain: who signs the records, and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The authority's SPIFFE ID, a workload of the record's trust domain.
    pub spiffe_id: SpiffeId,
    /// libp2p multiaddrs (`/ip4/…/tcp/…`) and `http://` / `https://` URLs, at most
    /// [`MAX_ADDRESSES`] of at most [`MAX_ADDRESS_LEN`] printable ASCII bytes.
    pub addresses: Vec<String>,
}

/// One transparency log of the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainLog {
    /// The log's origin: the first line of its checkpoints, and its key's name.
    pub origin: KeyName,
    /// The checkpoint key (C2SP signed-note Ed25519 `0x01` or ECDSA P-256 `0x02`), named
    /// `origin`.
    pub verifier: Verifier,
    /// When checkpoints signed by it are valid.
    pub window: KeyWindow,
}

/// One root of the domain's code-signing CA (never in the SPIFFE bundle: a CA under the
/// SVID root could mint SVIDs every partner would accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSigningRoot {
    /// The root certificate, DER.
    pub certificate_der: Vec<u8>,
    /// When certificates chaining to it are valid.
    pub window: KeyWindow,
}

/// One key that signs the SCTs embedded in the domain's code-signing certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtKey {
    /// ECDSA P-256 SubjectPublicKeyInfo, DER.
    pub public_key_spki_der: Vec<u8>,
    /// When SCTs signed by it are valid.
    pub window: KeyWindow,
}

/// One witness key of the domain (C2SP tlog-cosignature/v1, Ed25519, vkey type `0x04`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    /// The cosigner's verifier.
    pub verifier: CosignatureVerifier,
    /// When cosignatures by it count.
    pub window: KeyWindow,
}

/// A domain record: the payload the authority signs. See the module documentation for
/// its JSON form.
///
/// The fields are public so the authority can build one; [`DomainRecord::validate`]
/// (run by [`DomainRecord::from_json`] and [`SignedDomainRecord::sign`]) checks the
/// structural rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireRecord", into = "WireRecord")]
pub struct DomainRecord {
    /// The trust domain the record speaks for.
    pub trust_domain: TrustDomain,
    /// provmesh's own sequence number, at least 1, rising with every record of the
    /// domain (independent of the bundle's `spiffe_sequence`, which SPIRE owns: a log or
    /// CA key can change while the SPIRE bundle does not).
    pub record_sequence: u64,
    /// When the authority signed it, Unix seconds. The SVID chain is checked at this time.
    pub issued_at: u64,
    /// The domain's SPIFFE bundle (strict rules). One without usable keys revokes the
    /// domain.
    pub spiffe_bundle: TrustBundle,
    /// The authority.
    pub authority: Authority,
    /// The domain's transparency logs, with unique origins.
    pub logs: Vec<DomainLog>,
    /// The code-signing CA roots.
    pub code_signing_roots: Vec<CodeSigningRoot>,
    /// The SCT signing keys.
    pub ct_keys: Vec<CtKey>,
    /// The witness keys.
    pub witness_keys: Vec<WitnessKey>,
}

/// Why a record payload is not a well-formed domain record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordFormatError {
    /// Longer than [`MAX_RECORD_JSON_LEN`].
    #[error("the domain record is {len} bytes; at most {MAX_RECORD_JSON_LEN} are accepted")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not JSON of the record's shape: a member missing, unknown, repeated or of the
    /// wrong type, or a trust domain, SPIFFE ID or bundle that does not parse.
    #[error("the domain record is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// Parses, but is not the canonical encoding of what it parses to.
    #[error(
        "the domain record is not in canonical form (member order, no white space, standard \
         base64, the bundle's members sorted)"
    )]
    NotCanonical,
    /// `recordSequence` is 0; sequences start at 1 (0 stands for "no record").
    #[error("the record sequence is 0; record sequences start at 1")]
    ZeroSequence,
    /// `issuedAt` is after [`MAX_UNIX_SECONDS`].
    #[error("issuedAt {0} is after the year 9999")]
    IssuedAtOutOfRange(u64),
    /// The SPIFFE bundle breaks a rule of the SPIFFE standards.
    #[error("the record's SPIFFE bundle is not acceptable: {0}")]
    Bundle(BundleError),
    /// The bundle has usable keys but no X.509 authority, so no later record of the
    /// domain could be verified (a bundle without any usable key revokes instead).
    #[error(
        "the record's SPIFFE bundle has keys but no x509-svid authority, so no later record \
         could be verified"
    )]
    NoX509Authority,
    /// The authority's SPIFFE ID is not a workload of the record's trust domain.
    #[error("the authority {authority} is not a workload of trust domain {trust_domain}")]
    AuthorityOutsideDomain {
        /// The authority's ID.
        authority: String,
        /// The record's trust domain.
        trust_domain: String,
    },
    /// More than [`MAX_ADDRESSES`] addresses.
    #[error("the authority lists {count} addresses; at most {MAX_ADDRESSES} are accepted")]
    TooManyAddresses {
        /// How many.
        count: usize,
    },
    /// An address is not a multiaddr or HTTP(S) URL of printable ASCII.
    #[error("authority address {index} is not acceptable: {reason}")]
    InvalidAddress {
        /// Its position.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key list has more than [`MAX_KEYS_PER_LIST`] elements.
    #[error("\"{list}\" has {count} elements; at most {MAX_KEYS_PER_LIST} are accepted")]
    TooManyKeys {
        /// The list's JSON name.
        list: &'static str,
        /// How many.
        count: usize,
    },
    /// A validity window ends before it starts or lies after [`MAX_UNIX_SECONDS`].
    #[error(
        "\"{list}\" element {index}: validUntil is before validFrom, or a time is after the \
         year 9999"
    )]
    InvalidWindow {
        /// The list's JSON name.
        list: &'static str,
        /// The element.
        index: usize,
    },
    /// A base64 member does not decode.
    #[error("\"{list}\" element {index}: \"{member}\" is not standard padded base64")]
    Base64 {
        /// The list's JSON name.
        list: &'static str,
        /// The element.
        index: usize,
        /// The member.
        member: &'static str,
    },
    /// A log's `origin` is not a valid note key name.
    #[error("log {index}: the origin is not a valid key name: {source}")]
    InvalidOrigin {
        /// The element.
        index: usize,
        /// Why.
        source: KeyParseError,
    },
    /// A log's `verifierKey` is not a C2SP vkey.
    #[error("log {index}: the verifier key does not parse: {source}")]
    LogKey {
        /// The element.
        index: usize,
        /// Why.
        source: KeyParseError,
    },
    /// A log's key is named differently from its origin.
    #[error("log {index}: the verifier key is named {key_name:?}, not the origin {origin:?}")]
    LogKeyName {
        /// The element.
        index: usize,
        /// The origin.
        origin: String,
        /// The key's name.
        key_name: String,
    },
    /// A log's key cannot sign checkpoints (a cosignature key, `0x04`).
    #[error(
        "log {index}: a key of signature type {signature_type:#04x} does not sign checkpoints \
         (Ed25519 0x01 or ECDSA P-256 0x02)"
    )]
    LogKeyType {
        /// The element.
        index: usize,
        /// Its signature type.
        signature_type: u8,
    },
    /// Two logs have the same origin.
    #[error("the origin {origin} is listed twice")]
    DuplicateOrigin {
        /// The origin.
        origin: String,
    },
    /// A code-signing root is not an X.509 certificate.
    #[error("code-signing root {index} is not an X.509 certificate: {reason}")]
    CodeSigningRoot {
        /// The element.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A CT key is not an ECDSA P-256 SubjectPublicKeyInfo.
    #[error("CT key {index} is not a DER ECDSA P-256 SubjectPublicKeyInfo")]
    CtKey {
        /// The element.
        index: usize,
    },
    /// A witness key is not a cosignature/v1 vkey.
    #[error("witness key {index} is not a cosignature/v1 (0x04) verifier key: {source}")]
    WitnessKey {
        /// The element.
        index: usize,
        /// Why.
        source: KeyParseError,
    },
    /// The same certificate or key is listed twice in one list.
    #[error("\"{list}\" element {index} repeats an earlier element")]
    DuplicateKey {
        /// The list's JSON name.
        list: &'static str,
        /// The later element.
        index: usize,
    },
}

impl DomainRecord {
    /// Parses a record payload: at most [`MAX_RECORD_JSON_LEN`] bytes, the record's
    /// shape, the structural rules of [`DomainRecord::validate`], and canonical form.
    pub fn from_json(json: &[u8]) -> Result<DomainRecord, RecordFormatError> {
        if json.len() > MAX_RECORD_JSON_LEN {
            return Err(RecordFormatError::TooLarge { len: json.len() });
        }
        let wire: WireRecord =
            serde_json::from_slice(json).map_err(|e| RecordFormatError::Json(e.to_string()))?;
        let record = DomainRecord::from_wire(wire)?;
        if record.to_json() != json {
            return Err(RecordFormatError::NotCanonical);
        }
        Ok(record)
    }

    /// The canonical JSON payload (see the module documentation).
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, integers and JSON values always serialise; nothing can fail.
        serde_json::to_vec(&self.to_wire()).unwrap_or_default()
    }

    /// Checks the structural rules: sequence at least 1; times up to
    /// [`MAX_UNIX_SECONDS`]; a strictly conforming bundle that either has no usable key
    /// (revocation) or has an X.509 authority; the authority a workload of the domain
    /// with at most [`MAX_ADDRESSES`] acceptable addresses; at most
    /// [`MAX_KEYS_PER_LIST`] elements per list; ordered windows; log keys of a
    /// checkpoint-signing type named by their unique origins; code-signing roots that
    /// parse as certificates; P-256 CT keys; no element listed twice.
    pub fn validate(&self) -> Result<(), RecordFormatError> {
        if self.record_sequence == 0 {
            return Err(RecordFormatError::ZeroSequence);
        }
        if self.issued_at > MAX_UNIX_SECONDS {
            return Err(RecordFormatError::IssuedAtOutOfRange(self.issued_at));
        }
        // provmesh publishes bundles that follow the publisher rules (spiffe::bundle,
        // "from_json_strict ... what provmesh requires of bundles it publishes").
        self.spiffe_bundle
            .check_strict()
            .map_err(RecordFormatError::Bundle)?;
        if !self.spiffe_bundle.is_effectively_empty()
            && self.spiffe_bundle.x509_authorities().next().is_none()
        {
            return Err(RecordFormatError::NoX509Authority);
        }
        self.validate_authority()?;
        for (list, count) in [
            (LOGS, self.logs.len()),
            (CODE_SIGNING_ROOTS, self.code_signing_roots.len()),
            (CT_KEYS, self.ct_keys.len()),
            (WITNESS_KEYS, self.witness_keys.len()),
        ] {
            if count > MAX_KEYS_PER_LIST {
                return Err(RecordFormatError::TooManyKeys { list, count });
            }
        }
        let windows = self
            .logs
            .iter()
            .map(|l| (LOGS, &l.window))
            .enumerate()
            .chain(
                self.code_signing_roots
                    .iter()
                    .map(|r| (CODE_SIGNING_ROOTS, &r.window))
                    .enumerate(),
            )
            .chain(
                self.ct_keys
                    .iter()
                    .map(|k| (CT_KEYS, &k.window))
                    .enumerate(),
            )
            .chain(
                self.witness_keys
                    .iter()
                    .map(|k| (WITNESS_KEYS, &k.window))
                    .enumerate(),
            );
        for (index, (list, window)) in windows {
            if !window.is_valid() {
                return Err(RecordFormatError::InvalidWindow { list, index });
            }
        }
        self.validate_logs()?;
        self.validate_keys()
    }

    fn validate_authority(&self) -> Result<(), RecordFormatError> {
        let authority = &self.authority;
        if !authority.spiffe_id.member_of(&self.trust_domain)
            || authority.spiffe_id.is_trust_domain_id()
        {
            return Err(RecordFormatError::AuthorityOutsideDomain {
                authority: authority.spiffe_id.to_string(),
                trust_domain: self.trust_domain.to_string(),
            });
        }
        if authority.addresses.len() > MAX_ADDRESSES {
            return Err(RecordFormatError::TooManyAddresses {
                count: authority.addresses.len(),
            });
        }
        for (index, address) in authority.addresses.iter().enumerate() {
            check_address(address)
                .map_err(|reason| RecordFormatError::InvalidAddress { index, reason })?;
        }
        Ok(())
    }

    fn validate_logs(&self) -> Result<(), RecordFormatError> {
        let mut origins = BTreeSet::new();
        for (index, log) in self.logs.iter().enumerate() {
            // Design, "Transparency log": "Origin = key name".
            if log.verifier.name() != &log.origin {
                return Err(RecordFormatError::LogKeyName {
                    index,
                    origin: log.origin.to_string(),
                    key_name: log.verifier.name().to_string(),
                });
            }
            let signature_type = log.verifier.signature_type();
            if signature_type != SIGNATURE_TYPE_ED25519 && signature_type != SIGNATURE_TYPE_ECDSA {
                return Err(RecordFormatError::LogKeyType {
                    index,
                    signature_type,
                });
            }
            if !origins.insert(&log.origin) {
                return Err(RecordFormatError::DuplicateOrigin {
                    origin: log.origin.to_string(),
                });
            }
        }
        Ok(())
    }

    fn validate_keys(&self) -> Result<(), RecordFormatError> {
        use p256::pkcs8::DecodePublicKey as _;
        let mut seen = BTreeSet::new();
        for (index, root) in self.code_signing_roots.iter().enumerate() {
            crate::pkix::parse_certificate(&root.certificate_der)
                .map_err(|reason| RecordFormatError::CodeSigningRoot { index, reason })?;
            if !seen.insert(root.certificate_der.as_slice()) {
                return Err(RecordFormatError::DuplicateKey {
                    list: CODE_SIGNING_ROOTS,
                    index,
                });
            }
        }
        let mut seen = BTreeSet::new();
        for (index, key) in self.ct_keys.iter().enumerate() {
            // The CT key goes into a TrustedRoot's `ctlogs` as PKIX_ECDSA_P256_SHA_256
            // (sigstore_trust): nothing else would be usable there.
            p256::ecdsa::VerifyingKey::from_public_key_der(&key.public_key_spki_der)
                .map_err(|_| RecordFormatError::CtKey { index })?;
            if !seen.insert(key.public_key_spki_der.as_slice()) {
                return Err(RecordFormatError::DuplicateKey {
                    list: CT_KEYS,
                    index,
                });
            }
        }
        let mut seen = BTreeSet::new();
        for (index, key) in self.witness_keys.iter().enumerate() {
            if !seen.insert(key.verifier.key_hash()) {
                return Err(RecordFormatError::DuplicateKey {
                    list: WITNESS_KEYS,
                    index,
                });
            }
        }
        Ok(())
    }

    /// Whether the record revokes its domain: its bundle has no usable key. SPIFFE Trust
    /// Domain and Bundle §4.1.3: an empty `keys` means the trust domain "has revoked any
    /// previously-published keys"; "workloads MUST treat all SVIDs from the trust domain
    /// as invalid and untrusted".
    pub fn revokes(&self) -> bool {
        self.spiffe_bundle.is_effectively_empty()
    }

    /// The log with this origin.
    pub fn log(&self, origin: &str) -> Option<&DomainLog> {
        self.logs.iter().find(|l| l.origin.as_str() == origin)
    }

    fn from_wire(wire: WireRecord) -> Result<DomainRecord, RecordFormatError> {
        let logs = wire
            .logs
            .into_iter()
            .enumerate()
            .map(|(index, log)| {
                let origin = KeyName::new(log.origin)
                    .map_err(|source| RecordFormatError::InvalidOrigin { index, source })?;
                let verifier = Verifier::from_vkey(&log.verifier_key)
                    .map_err(|source| RecordFormatError::LogKey { index, source })?;
                Ok(DomainLog {
                    origin,
                    verifier,
                    window: KeyWindow {
                        valid_from: log.valid_from,
                        valid_until: log.valid_until,
                    },
                })
            })
            .collect::<Result<Vec<_>, RecordFormatError>>()?;
        let code_signing_roots = wire
            .code_signing_roots
            .into_iter()
            .enumerate()
            .map(|(index, root)| {
                Ok(CodeSigningRoot {
                    certificate_der: decode(
                        &root.certificate,
                        CODE_SIGNING_ROOTS,
                        index,
                        "certificate",
                    )?,
                    window: KeyWindow {
                        valid_from: root.valid_from,
                        valid_until: root.valid_until,
                    },
                })
            })
            .collect::<Result<Vec<_>, RecordFormatError>>()?;
        let ct_keys = wire
            .ct_keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| {
                Ok(CtKey {
                    public_key_spki_der: decode(&key.public_key, CT_KEYS, index, "publicKey")?,
                    window: KeyWindow {
                        valid_from: key.valid_from,
                        valid_until: key.valid_until,
                    },
                })
            })
            .collect::<Result<Vec<_>, RecordFormatError>>()?;
        let witness_keys = wire
            .witness_keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| {
                Ok(WitnessKey {
                    verifier: CosignatureVerifier::from_vkey(&key.verifier_key)
                        .map_err(|source| RecordFormatError::WitnessKey { index, source })?,
                    window: KeyWindow {
                        valid_from: key.valid_from,
                        valid_until: key.valid_until,
                    },
                })
            })
            .collect::<Result<Vec<_>, RecordFormatError>>()?;
        let record = DomainRecord {
            trust_domain: wire.trust_domain,
            record_sequence: wire.record_sequence,
            issued_at: wire.issued_at,
            spiffe_bundle: wire.spiffe_bundle,
            authority: Authority {
                spiffe_id: wire.authority.spiffe_id,
                addresses: wire.authority.addresses,
            },
            logs,
            code_signing_roots,
            ct_keys,
            witness_keys,
        };
        record.validate()?;
        Ok(record)
    }

    fn to_wire(&self) -> WireRecord {
        WireRecord {
            trust_domain: self.trust_domain.clone(),
            record_sequence: self.record_sequence,
            issued_at: self.issued_at,
            spiffe_bundle: self.spiffe_bundle.clone(),
            authority: WireAuthority {
                spiffe_id: self.authority.spiffe_id.clone(),
                addresses: self.authority.addresses.clone(),
            },
            logs: self
                .logs
                .iter()
                .map(|l| WireLog {
                    origin: l.origin.to_string(),
                    verifier_key: l.verifier.to_vkey(),
                    valid_from: l.window.valid_from,
                    valid_until: l.window.valid_until,
                })
                .collect(),
            code_signing_roots: self
                .code_signing_roots
                .iter()
                .map(|r| WireRoot {
                    certificate: STANDARD.encode(&r.certificate_der),
                    valid_from: r.window.valid_from,
                    valid_until: r.window.valid_until,
                })
                .collect(),
            ct_keys: self
                .ct_keys
                .iter()
                .map(|k| WireCtKey {
                    public_key: STANDARD.encode(&k.public_key_spki_der),
                    valid_from: k.window.valid_from,
                    valid_until: k.window.valid_until,
                })
                .collect(),
            witness_keys: self
                .witness_keys
                .iter()
                .map(|k| WireWitness {
                    verifier_key: k.verifier.to_vkey(),
                    valid_from: k.window.valid_from,
                    valid_until: k.window.valid_until,
                })
                .collect(),
        }
    }
}

impl TryFrom<WireRecord> for DomainRecord {
    type Error = RecordFormatError;
    fn try_from(wire: WireRecord) -> Result<Self, Self::Error> {
        DomainRecord::from_wire(wire)
    }
}

impl From<DomainRecord> for WireRecord {
    fn from(record: DomainRecord) -> Self {
        record.to_wire()
    }
}

/// JSON names of the key lists, for messages.
const LOGS: &str = "logs";
const CODE_SIGNING_ROOTS: &str = "codeSigningRoots";
const CT_KEYS: &str = "ctKeys";
const WITNESS_KEYS: &str = "witnessKeys";

fn decode(
    b64: &str,
    list: &'static str,
    index: usize,
    member: &'static str,
) -> Result<Vec<u8>, RecordFormatError> {
    STANDARD.decode(b64).map_err(|_| RecordFormatError::Base64 {
        list,
        index,
        member,
    })
}

/// An authority address: a libp2p multiaddr (`/…`) or an `http://` / `https://` URL, of
/// printable ASCII without spaces (nothing here dials it; the node parses it further).
fn check_address(address: &str) -> Result<(), &'static str> {
    if address.is_empty() || address.len() > MAX_ADDRESS_LEN {
        return Err("it is empty or longer than 256 bytes");
    }
    if !address.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("it holds a space, a control character or non-ASCII text");
    }
    if !(address.starts_with('/')
        || address.starts_with("https://")
        || address.starts_with("http://"))
    {
        return Err("it is neither a multiaddr (\"/…\") nor an http:// or https:// URL");
    }
    Ok(())
}

/// The record's JSON shape. Member order here is the canonical order.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireRecord {
    trust_domain: TrustDomain,
    record_sequence: u64,
    issued_at: u64,
    spiffe_bundle: TrustBundle,
    authority: WireAuthority,
    logs: Vec<WireLog>,
    code_signing_roots: Vec<WireRoot>,
    ct_keys: Vec<WireCtKey>,
    witness_keys: Vec<WireWitness>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireAuthority {
    spiffe_id: SpiffeId,
    addresses: Vec<String>,
}

/// `validFrom` and `validUntil` are written out in every element type rather than
/// flattened from one struct: serde's `flatten` does not work with `deny_unknown_fields`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireLog {
    origin: String,
    verifier_key: String,
    valid_from: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireRoot {
    certificate: String,
    valid_from: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireCtKey {
    public_key: String,
    valid_from: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireWitness {
    verifier_key: String,
    valid_from: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// The signed record
// ---------------------------------------------------------------------------------------

/// A domain record in its DSSE envelope, with the signing SVID's chain.
///
/// Parse with [`SignedDomainRecord::from_json`], create with [`SignedDomainRecord::sign`],
/// check with [`SignedDomainRecord::verify`]. Until verified, nothing in it is trusted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedDomainRecord {
    /// The envelope: one signature over the PAE of the record payload.
    envelope: Envelope,
    /// The X.509-SVID chain, DER, leaf first.
    svid_chain: Vec<Vec<u8>>,
}

/// Why a signed record document was rejected before any signature was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedRecordParseError {
    /// Longer than [`MAX_SIGNED_RECORD_JSON_LEN`].
    #[error(
        "the signed domain record is {len} bytes; at most {MAX_SIGNED_RECORD_JSON_LEN} are \
         accepted"
    )]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not `{"envelope":{…},"svidChain":[…]}` with a valid DSSE envelope.
    #[error("the signed domain record is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// The envelope does not carry exactly one signature.
    #[error("the envelope carries {count} signatures; a domain record has exactly one")]
    SignatureCount {
        /// How many it carries.
        count: usize,
    },
    /// The SVID chain is empty or longer than [`MAX_SVID_CHAIN_LEN`].
    #[error("the SVID chain has {len} certificates; 1 to {MAX_SVID_CHAIN_LEN} are accepted")]
    ChainLength {
        /// How many.
        len: usize,
    },
    /// A chain element is not standard padded base64.
    #[error("SVID chain certificate {index} is not standard padded base64")]
    ChainBase64 {
        /// Its position.
        index: usize,
    },
    /// Parses, but is not the canonical encoding of what it parses to.
    #[error(
        "the signed domain record is not in canonical form (member order, no white space, \
         standard base64)"
    )]
    NotCanonical,
}

/// Why a record could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainRecordSignError {
    /// The record breaks a structural rule.
    #[error("the domain record is not valid: {0}")]
    Invalid(#[source] RecordFormatError),
    /// The record payload is longer than [`MAX_RECORD_JSON_LEN`].
    #[error("the domain record is {len} bytes; at most {MAX_RECORD_JSON_LEN} are accepted")]
    RecordTooLarge {
        /// Its length.
        len: usize,
    },
    /// The chain is empty or longer than [`MAX_SVID_CHAIN_LEN`].
    #[error("the SVID chain has {len} certificates; 1 to {MAX_SVID_CHAIN_LEN} are accepted")]
    ChainLength {
        /// How many.
        len: usize,
    },
    /// The signer failed.
    #[error("signing the domain record failed: {0}")]
    Signer(#[source] dsse::SignError),
    /// The signed document would exceed [`MAX_SIGNED_RECORD_JSON_LEN`] (a long chain or
    /// signature on top of a large record).
    #[error(
        "the signed domain record would be {len} bytes; at most {MAX_SIGNED_RECORD_JSON_LEN} \
         fit a log entry"
    )]
    TooLarge {
        /// Its length.
        len: usize,
    },
}

/// Why a signed record does not verify as the domain's record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainRecordError {
    /// The envelope's payload type is not [`DOMAIN_RECORD_PAYLOAD_TYPE`].
    #[error("the envelope's payload type is {found:?}, not {DOMAIN_RECORD_PAYLOAD_TYPE:?}")]
    WrongPayloadType {
        /// The type found.
        found: String,
    },
    /// The payload is not a well-formed record.
    #[error("the payload is not a valid domain record: {0}")]
    Record(#[source] RecordFormatError),
    /// The record speaks for another trust domain.
    #[error("the record is for trust domain {found}, not {expected}")]
    WrongTrustDomain {
        /// The trust domain required.
        expected: String,
        /// The record's.
        found: String,
    },
    /// The chain is not a valid X.509-SVID of the domain under the bundle, at `issuedAt`.
    #[error("the signer's X.509-SVID does not verify at the record's issuedAt: {0}")]
    Svid(#[source] X509SvidError),
    /// The SVID is not the domain authority's (a workload or another domain's SVID).
    #[error("the record is signed by {signer}, not by the domain authority {expected}")]
    SignerNotAuthority {
        /// The SVID's SPIFFE ID (unverified when it names another trust domain).
        signer: String,
        /// The authority's ID.
        expected: String,
    },
    /// The DSSE signature does not verify with the SVID's key.
    #[error("the DSSE signature does not verify with the signer's X.509-SVID: {0}")]
    Signature(#[source] SvidSignatureError),
    /// Signed by the authority, but naming another authority in `authority.spiffeId`.
    #[error("the record names {listed} as authority, but the domain authority is {expected}")]
    AuthorityMismatch {
        /// The ID in the record.
        listed: String,
        /// The authority's ID.
        expected: String,
    },
    /// `issuedAt` is later than the verifier's clock plus the allowed skew.
    #[error(
        "the record is issued at {issued_at}, later than now ({now}) plus the allowed clock \
         skew of {max_skew_secs} s"
    )]
    IssuedInFuture {
        /// The record's `issuedAt`.
        issued_at: u64,
        /// The verifier's time, Unix seconds.
        now: u64,
        /// The allowed skew, seconds.
        max_skew_secs: u64,
    },
}

impl DomainRecordError {
    /// Whether the failure shows that whoever sent the record sent something forged or
    /// malformed, which no honest node relays. `false` when the record may be genuine
    /// but this verifier cannot check it yet or at all (its bundle lacks the signing
    /// root — it may be behind the domain's chain — or the SVID is not valid at
    /// `issuedAt`, or the key type is unsupported, or the clock differs), and when the
    /// record is validly signed by the authority and only the authority is at fault.
    pub fn blames_sender(&self) -> bool {
        match self {
            DomainRecordError::WrongPayloadType { .. }
            | DomainRecordError::Record(_)
            | DomainRecordError::WrongTrustDomain { .. }
            | DomainRecordError::SignerNotAuthority { .. } => true,
            DomainRecordError::Svid(e) => match e {
                X509SvidError::EmptyChain
                | X509SvidError::ChainTooLong { .. }
                | X509SvidError::Malformed { .. }
                | X509SvidError::NotSvid { .. }
                | X509SvidError::ForeignTrustDomain { .. }
                | X509SvidError::NotCa { .. } => true,
                X509SvidError::NotValidAt { .. }
                | X509SvidError::Untrusted { .. }
                | X509SvidError::NoAuthorities { .. } => false,
            },
            DomainRecordError::Signature(e) => match e {
                SvidSignatureError::BadSignature => true,
                SvidSignatureError::UnsupportedKey => false,
            },
            DomainRecordError::AuthorityMismatch { .. }
            | DomainRecordError::IssuedInFuture { .. } => false,
        }
    }
}

impl SignedDomainRecord {
    /// Parses a signed record: at most [`MAX_SIGNED_RECORD_JSON_LEN`] bytes, exactly the
    /// members `envelope` and `svidChain`, one DSSE signature, 1 to
    /// [`MAX_SVID_CHAIN_LEN`] base64 certificates, canonical form. Verifies nothing.
    pub fn from_json(json: &[u8]) -> Result<SignedDomainRecord, SignedRecordParseError> {
        if json.len() > MAX_SIGNED_RECORD_JSON_LEN {
            return Err(SignedRecordParseError::TooLarge { len: json.len() });
        }
        let wire: WireSigned = serde_json::from_slice(json)
            .map_err(|e| SignedRecordParseError::Json(e.to_string()))?;
        let count = wire.envelope.signatures().len();
        if count != 1 {
            return Err(SignedRecordParseError::SignatureCount { count });
        }
        let len = wire.svid_chain.len();
        if len == 0 || len > MAX_SVID_CHAIN_LEN {
            return Err(SignedRecordParseError::ChainLength { len });
        }
        let svid_chain = wire
            .svid_chain
            .iter()
            .enumerate()
            .map(|(index, b64)| {
                STANDARD
                    .decode(b64)
                    .map_err(|_| SignedRecordParseError::ChainBase64 { index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let signed = SignedDomainRecord {
            envelope: wire.envelope,
            svid_chain,
        };
        if signed.to_json() != json {
            return Err(SignedRecordParseError::NotCanonical);
        }
        Ok(signed)
    }

    /// The canonical JSON document: `{"envelope":…,"svidChain":[…]}`, no white space,
    /// standard base64.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = WireSignedOut {
            envelope: &self.envelope,
            svid_chain: self.svid_chain.iter().map(|c| STANDARD.encode(c)).collect(),
        };
        // Strings and JSON values always serialise; nothing can fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Signs `record` with the authority's SVID key `signer`, attaching `chain_der` (the
    /// SVID, leaf first, then any intermediates). The record is validated first, and the
    /// result must fit [`MAX_SIGNED_RECORD_JSON_LEN`].
    pub fn sign<C: AsRef<[u8]>>(
        record: &DomainRecord,
        signer: &dyn DsseSigner,
        chain_der: &[C],
    ) -> Result<SignedDomainRecord, DomainRecordSignError> {
        record.validate().map_err(DomainRecordSignError::Invalid)?;
        let payload = record.to_json();
        if payload.len() > MAX_RECORD_JSON_LEN {
            return Err(DomainRecordSignError::RecordTooLarge { len: payload.len() });
        }
        if chain_der.is_empty() || chain_der.len() > MAX_SVID_CHAIN_LEN {
            return Err(DomainRecordSignError::ChainLength {
                len: chain_der.len(),
            });
        }
        let envelope = Envelope::sign(DOMAIN_RECORD_PAYLOAD_TYPE, payload, &[signer])
            .map_err(DomainRecordSignError::Signer)?;
        let signed = SignedDomainRecord {
            envelope,
            svid_chain: chain_der.iter().map(|c| c.as_ref().to_vec()).collect(),
        };
        let len = signed.to_json().len();
        if len > MAX_SIGNED_RECORD_JSON_LEN {
            return Err(DomainRecordSignError::TooLarge { len });
        }
        Ok(signed)
    }

    /// The DSSE envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The SVID chain, DER, leaf first.
    pub fn svid_chain(&self) -> &[Vec<u8>] {
        &self.svid_chain
    }

    /// The record payload, **not verified**.
    pub fn unverified_payload(&self) -> &[u8] {
        self.envelope.unverified_payload()
    }

    /// The record, parsed from the payload **without verifying anything**: for routing
    /// (which domain, which sequence) before verification, never for trust.
    pub fn unverified_record(&self) -> Result<DomainRecord, RecordFormatError> {
        DomainRecord::from_json(self.envelope.unverified_payload())
    }

    /// SHA-256 of [`SignedDomainRecord::to_json`].
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.to_json()).into()
    }

    /// Verifies the record as `trust_domain`'s, signed by `authority_id`, under `bundle`
    /// (the bundle the caller trusts for the domain: the bootstrap bundle or the one of
    /// the previously accepted record), with the verifier's clock at `now`.
    ///
    /// In order: the payload type is [`DOMAIN_RECORD_PAYLOAD_TYPE`]; the payload is a
    /// well-formed canonical record; it is `trust_domain`'s; the chain is a valid
    /// X.509-SVID of `trust_domain` under `bundle` **at the record's `issuedAt`** (see
    /// the module documentation); its SPIFFE ID is `authority_id`; the DSSE signature
    /// over the PAE verifies with its key; the record names `authority_id` as its
    /// authority; `issuedAt` is at most `now` plus `max_clock_skew_secs`.
    ///
    /// The record is read from the payload before the signature is checked (its
    /// `issuedAt` says when to validate the chain), but it is only returned after the
    /// signature over those very payload bytes verified: DSSE's "the same
    /// SERIALIZED_BODY that is verified is the same sent to the application layer".
    pub fn verify(
        &self,
        trust_domain: &TrustDomain,
        authority_id: &SpiffeId,
        bundle: &TrustBundle,
        now: Timestamp,
        max_clock_skew_secs: u64,
    ) -> Result<VerifiedDomainRecord, DomainRecordError> {
        // DSSE protocol.md, "To verify": "Reject if PAYLOAD_TYPE is not a supported type."
        if self.envelope.payload_type() != DOMAIN_RECORD_PAYLOAD_TYPE {
            return Err(DomainRecordError::WrongPayloadType {
                found: self.envelope.payload_type().to_owned(),
            });
        }
        let record = self
            .unverified_record()
            .map_err(DomainRecordError::Record)?;
        if &record.trust_domain != trust_domain {
            return Err(DomainRecordError::WrongTrustDomain {
                expected: trust_domain.to_string(),
                found: record.trust_domain.to_string(),
            });
        }
        let svid = verify_x509_svid(
            &self.svid_chain,
            trust_domain,
            bundle,
            Timestamp::from_unix_seconds(record.issued_at),
        )
        .map_err(|e| match e {
            // A leaf of another trust domain: "a node of domain B can never publish or
            // alter A's record".
            X509SvidError::ForeignTrustDomain { spiffe_id, .. } => {
                DomainRecordError::SignerNotAuthority {
                    signer: spiffe_id,
                    expected: authority_id.to_string(),
                }
            }
            other => DomainRecordError::Svid(other),
        })?;
        // Design, "Federation": a record is accepted only if "its SPIFFE ID is the
        // domain's authority ID".
        if &svid.spiffe_id != authority_id {
            return Err(DomainRecordError::SignerNotAuthority {
                signer: svid.spiffe_id.to_string(),
                expected: authority_id.to_string(),
            });
        }
        let [signature] = self.envelope.signatures() else {
            // `from_json` and `sign` guarantee one signature; a value built otherwise
            // does not exist, but refuse rather than assume.
            return Err(DomainRecordError::Signature(
                SvidSignatureError::BadSignature,
            ));
        };
        verify_svid_signature(&svid, &self.envelope.pae(), signature.sig())
            .map_err(DomainRecordError::Signature)?;
        if &record.authority.spiffe_id != authority_id {
            return Err(DomainRecordError::AuthorityMismatch {
                listed: record.authority.spiffe_id.to_string(),
                expected: authority_id.to_string(),
            });
        }
        let now_secs = now.as_unix_seconds();
        if record.issued_at > now_secs.saturating_add(max_clock_skew_secs) {
            return Err(DomainRecordError::IssuedInFuture {
                issued_at: record.issued_at,
                now: now_secs,
                max_skew_secs: max_clock_skew_secs,
            });
        }
        let signed_json = self.to_json();
        let digest = Sha256::digest(&signed_json).into();
        Ok(VerifiedDomainRecord {
            record,
            signed: self.clone(),
            signed_json,
            digest,
            svid,
        })
    }
}

/// `{"envelope":…,"svidChain":[…]}` as read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSigned {
    envelope: Envelope,
    svid_chain: Vec<String>,
}

/// `{"envelope":…,"svidChain":[…]}` as written; member order is the canonical order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireSignedOut<'a> {
    envelope: &'a Envelope,
    svid_chain: Vec<String>,
}

/// A signed record that verified: the record, the signed document and what verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDomainRecord {
    /// The record (its bundle and log verifiers parsed).
    record: DomainRecord,
    /// The signed record as verified.
    signed: SignedDomainRecord,
    /// Its canonical JSON.
    signed_json: Vec<u8>,
    /// SHA-256 of `signed_json`.
    digest: [u8; 32],
    /// The signer's validated SVID.
    svid: VerifiedX509Svid,
}

impl VerifiedDomainRecord {
    /// The record.
    pub fn record(&self) -> &DomainRecord {
        &self.record
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.record.trust_domain
    }

    /// The record sequence.
    pub fn sequence(&self) -> u64 {
        self.record.record_sequence
    }

    /// The domain's SPIFFE bundle from the record.
    pub fn bundle(&self) -> &TrustBundle {
        &self.record.spiffe_bundle
    }

    /// The logs' checkpoint verifiers, with their windows.
    pub fn logs(&self) -> &[DomainLog] {
        &self.record.logs
    }

    /// The signed record.
    pub fn signed(&self) -> &SignedDomainRecord {
        &self.signed
    }

    /// The signed record's canonical JSON: the bytes that are served and logged.
    pub fn signed_json(&self) -> &[u8] {
        &self.signed_json
    }

    /// SHA-256 of [`VerifiedDomainRecord::signed_json`].
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The signer's SVID (its SPIFFE ID is the authority's).
    pub fn svid(&self) -> &VerifiedX509Svid {
        &self.svid
    }
}

// ---------------------------------------------------------------------------------------
// The log entry
// ---------------------------------------------------------------------------------------

/// Why a signed record cannot be made into, or read back from, a log entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainRecordEntryError {
    /// The entry body exceeds what the log stores.
    #[error(
        "the domain-record entry is {len} bytes; the log stores at most {MAX_ENTRY_BODY_BYTES}"
    )]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The body is not JSON of the entry's shape.
    #[error("the entry is not a domain-record entry of the expected shape: {0}")]
    Json(String),
    /// The `kind` or `apiVersion` is not this entry's.
    #[error(
        "the entry is of kind {kind:?} version {api_version:?}, not {DOMAIN_RECORD_ENTRY_KIND:?} \
         version \"0.0.1\""
    )]
    WrongKind {
        /// The `kind` found.
        kind: String,
        /// The `apiVersion` found.
        api_version: String,
    },
    /// `spec.signedRecord` is not standard padded base64.
    #[error("the entry's signedRecord is not standard padded base64")]
    Base64,
    /// `spec.signedRecord` is not a signed record.
    #[error("the entry's signed record does not parse: {0}")]
    SignedRecord(#[source] SignedRecordParseError),
    /// The signed record's payload is not a record (so the entry's trust domain and
    /// sequence cannot be derived).
    #[error("the entry's domain record does not parse: {0}")]
    Record(#[source] RecordFormatError),
    /// The body is not the canonical entry of the record it carries: its `trustDomain`
    /// or `recordSequence` differs from the record's, or the JSON is not canonical.
    #[error(
        "the entry is not the canonical entry of the record it carries (trustDomain or \
         recordSequence differ, or the JSON is not canonical)"
    )]
    NotCanonical,
}

/// The domain-log entry recording `signed`:
///
/// ```json
/// {"apiVersion":"0.0.1","kind":"provmesh-domain-record","spec":{"trustDomain":"org-a.example","recordSequence":3,"signedRecord":"<base64 of the signed record JSON>"}}
/// ```
///
/// Members in this order, no white space (like the `provmesh-precert` entry). The
/// entry is found by SHA-256 of the trust domain name and by SHA-256 of the signed
/// record JSON. Only the record's form is checked here; the authority logs records it
/// signed itself, and readers verify what they read back.
pub fn domain_record_entry(
    signed: &SignedDomainRecord,
) -> Result<AdmittedEntry, DomainRecordEntryError> {
    let record = signed
        .unverified_record()
        .map_err(DomainRecordEntryError::Record)?;
    let signed_json = signed.to_json();
    let body = WireEntry {
        api_version: crate::log::entry::API_VERSION.to_owned(),
        kind: DOMAIN_RECORD_ENTRY_KIND.to_owned(),
        spec: WireEntrySpec {
            trust_domain: record.trust_domain.to_string(),
            record_sequence: record.record_sequence,
            signed_record: STANDARD.encode(&signed_json),
        },
    };
    // Strings and integers always serialise; nothing can fail.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    if body.len() > MAX_ENTRY_BODY_BYTES {
        return Err(DomainRecordEntryError::TooLarge { len: body.len() });
    }
    let mut search_keys: Vec<[u8; 32]> = vec![
        Sha256::digest(record.trust_domain.as_str().as_bytes()).into(),
        Sha256::digest(&signed_json).into(),
    ];
    search_keys.dedup();
    Ok(AdmittedEntry {
        leaf_hash: leaf_hash(&body),
        body,
        search_keys,
        attestation: None,
    })
}

/// Reads the signed record back from a domain-record entry body, so a node can rebuild
/// a domain's chain of records from its log. The body must be exactly the entry
/// [`domain_record_entry`] makes for the record it carries. Verifies nothing: hand the
/// result to the registry.
pub fn signed_record_from_entry(body: &[u8]) -> Result<SignedDomainRecord, DomainRecordEntryError> {
    if body.len() > MAX_ENTRY_BODY_BYTES {
        return Err(DomainRecordEntryError::TooLarge { len: body.len() });
    }
    let wire: WireEntry =
        serde_json::from_slice(body).map_err(|e| DomainRecordEntryError::Json(e.to_string()))?;
    if wire.kind != DOMAIN_RECORD_ENTRY_KIND || wire.api_version != crate::log::entry::API_VERSION {
        return Err(DomainRecordEntryError::WrongKind {
            kind: wire.kind,
            api_version: wire.api_version,
        });
    }
    let json = STANDARD
        .decode(&wire.spec.signed_record)
        .map_err(|_| DomainRecordEntryError::Base64)?;
    let signed =
        SignedDomainRecord::from_json(&json).map_err(DomainRecordEntryError::SignedRecord)?;
    if domain_record_entry(&signed)?.body != body {
        return Err(DomainRecordEntryError::NotCanonical);
    }
    Ok(signed)
}

/// The entry body. Member order here is the canonical order.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireEntry {
    api_version: String,
    kind: String,
    spec: WireEntrySpec,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireEntrySpec {
    trust_domain: String,
    record_sequence: u64,
    signed_record: String,
}

/// Builders for tests elsewhere in the crate: a development SPIFFE CA per trust domain
/// (rcgen), authority and workload X.509-SVIDs with P-256 keys, and complete records.
#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
    use rcgen::string::Ia5String;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
    };
    use serde_json::{Map, Value};

    use super::*;
    use crate::cosignature::CosignatureSigner;
    use crate::note::Ed25519Signer;

    /// 2026-11-25T00:00:00Z: "now" in these tests.
    pub(crate) const NOW: u64 = 1_795_564_800;

    /// The authority path of the tests (the registry's default).
    pub(crate) const AUTHORITY: &str = "/provmesh/authority";

    /// A CA certificate's validity around [`NOW`]: 30 days either side.
    const CA_LIFETIME: u64 = 30 * 86_400;

    fn set_window(params: &mut CertificateParams, not_before: u64, not_after: u64) {
        let epoch = date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs(not_before);
        params.not_after = epoch + Duration::from_secs(not_after);
    }

    /// The JWK members of a P-256 public key (uncompressed point).
    pub(crate) fn ec_jwk(point: &[u8]) -> Map<String, Value> {
        let (x, y) = point[1..].split_at(32);
        let mut m = Map::new();
        m.insert("kty".into(), "EC".into());
        m.insert("crv".into(), "P-256".into());
        m.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
        m.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
        m
    }

    /// An X.509-SVID and its key.
    pub(crate) struct Svid {
        /// Leaf first.
        pub(crate) chain: Vec<Vec<u8>>,
        /// The leaf's key, as a DSSE signer.
        pub(crate) key: p256::ecdsa::SigningKey,
    }

    /// One SPIFFE X.509 root of a trust domain.
    pub(crate) struct DevCa {
        pub(crate) td: TrustDomain,
        issuer: Issuer<'static, KeyPair>,
        pub(crate) der: Vec<u8>,
        point: Vec<u8>,
    }

    impl DevCa {
        /// A root for `td`; `generation` tells apart the roots of one domain.
        pub(crate) fn new(td: &str, generation: u32) -> DevCa {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::OrganizationName, format!("{td} root {generation}"));
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.subject_alt_names = vec![SanType::URI(
                Ia5String::try_from(format!("spiffe://{td}")).unwrap(),
            )];
            set_window(&mut params, NOW - CA_LIFETIME, NOW + CA_LIFETIME);
            let der = params.self_signed(&key).unwrap().der().to_vec();
            DevCa {
                td: TrustDomain::parse(td).unwrap(),
                point: key.public_key_raw().to_vec(),
                issuer: Issuer::new(params, key),
                der,
            }
        }

        /// A SPIFFE ID of the domain.
        pub(crate) fn id(&self, path: &str) -> SpiffeId {
            SpiffeId::new(&self.td, path).unwrap()
        }

        /// An X.509-SVID for `id`, valid `not_before..=not_after`.
        pub(crate) fn svid_for(&self, id: &str, not_before: u64, not_after: u64) -> Svid {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(id).unwrap())];
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            set_window(&mut params, not_before, not_after);
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            Svid {
                chain: vec![cert.der().to_vec()],
                key: p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap(),
            }
        }

        /// An X.509-SVID for `path` of this domain, valid an hour around `at`, as SPIRE
        /// issues them.
        pub(crate) fn svid(&self, path: &str, at: u64) -> Svid {
            self.svid_for(self.id(path).as_str(), at - 600, at + 3000)
        }

        /// A bundle holding these roots.
        pub(crate) fn bundle(roots: &[&DevCa]) -> TrustBundle {
            let mut bundle = TrustBundle::new();
            for root in roots {
                bundle
                    .add_x509_authority(&root.der, ec_jwk(&root.point))
                    .unwrap();
            }
            bundle
        }
    }

    /// A self-signed code-signing root certificate (DER).
    pub(crate) fn code_signing_root(name: &str) -> Vec<u8> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} code signing"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        set_window(&mut params, NOW - CA_LIFETIME, NOW + CA_LIFETIME);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// The log `origin` with an Ed25519 key derived from `seed`.
    pub(crate) fn log(origin: &str, seed: u8, window: KeyWindow) -> DomainLog {
        let name = KeyName::new(origin).unwrap();
        DomainLog {
            origin: name.clone(),
            verifier: Ed25519Signer::from_seed(name, &[seed; 32])
                .verifier()
                .into(),
            window,
        }
    }

    /// The witness key `name` derived from `seed`.
    pub(crate) fn witness(name: &str, seed: u8, window: KeyWindow) -> WitnessKey {
        WitnessKey {
            verifier: CosignatureSigner::from_seed(KeyName::new(name).unwrap(), &[seed; 32])
                .verifier(),
            window,
        }
    }

    /// A P-256 CT key derived from `seed`.
    pub(crate) fn ct_key(seed: u8, window: KeyWindow) -> CtKey {
        let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        CtKey {
            public_key_spki_der: key
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes()
                .to_vec(),
            window,
        }
    }

    /// A complete record of `ca`'s domain: one log `log.<td>`, one code-signing root,
    /// one CT key and one witness key, all valid from a day before [`NOW`].
    pub(crate) fn record(
        ca: &DevCa,
        sequence: u64,
        issued_at: u64,
        bundle: TrustBundle,
    ) -> DomainRecord {
        let td = ca.td.as_str();
        let from = KeyWindow::open_from(NOW - 86_400);
        DomainRecord {
            trust_domain: ca.td.clone(),
            record_sequence: sequence,
            issued_at,
            spiffe_bundle: bundle,
            authority: Authority {
                spiffe_id: ca.id(AUTHORITY),
                addresses: vec![
                    "/ip4/127.0.0.1/tcp/4001".to_owned(),
                    format!("https://authority.{td}"),
                ],
            },
            logs: vec![log(&format!("log.{td}"), 1, from)],
            code_signing_roots: vec![CodeSigningRoot {
                certificate_der: code_signing_root(td),
                window: from,
            }],
            ct_keys: vec![ct_key(2, from)],
            witness_keys: vec![witness(&format!("witness.{td}"), 3, from)],
        }
    }

    /// `record` signed by `svid`.
    pub(crate) fn sign(record: &DomainRecord, svid: &Svid) -> SignedDomainRecord {
        SignedDomainRecord::sign(record, &svid.key, &svid.chain).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn authority(ca: &DevCa) -> SpiffeId {
        ca.id(AUTHORITY)
    }

    fn sample() -> (DevCa, DomainRecord) {
        let ca = DevCa::new("org-a.example", 1);
        let bundle = DevCa::bundle(&[&ca]);
        let record = record(&ca, 1, NOW, bundle);
        (ca, record)
    }

    /// The JSON of `record` edited with `edit`, re-serialised compactly.
    fn edited(record: &DomainRecord, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut value: serde_json::Value = serde_json::from_slice(&record.to_json()).unwrap();
        edit(&mut value);
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn record_round_trips_in_canonical_form() {
        let (_, record) = sample();
        let json = record.to_json();
        assert_eq!(DomainRecord::from_json(&json), Ok(record.clone()));
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"trustDomain":"org-a.example","recordSequence":1,"issuedAt":1795564800,"spiffeBundle":{"keys":[{"crv":"P-256","kty":"EC","use":"x509-svid","#),
            "{text}"
        );
        let order = [
            "\"authority\"",
            "\"logs\"",
            "\"codeSigningRoots\"",
            "\"ctKeys\"",
            "\"witnessKeys\"",
        ];
        let positions: Vec<usize> = order.iter().map(|m| text.find(m).unwrap()).collect();
        assert!(positions.is_sorted(), "{text}");
        assert!(!text.contains("validUntil"), "open windows omit validUntil");
        assert!(!text.contains(' ') && !text.contains('\n'));
        // Serde goes through the same wire form.
        assert_eq!(serde_json::to_vec(&record).unwrap(), json);
        assert_eq!(
            serde_json::from_slice::<DomainRecord>(&json).unwrap(),
            record
        );
    }

    #[test]
    fn bundle_members_are_written_sorted() {
        // The canonical form relies on serde_json writing object members sorted (its
        // `preserve_order` feature off): a dependency enabling it would change every
        // record's bytes, and this test would say so.
        let (_, mut record) = sample();
        record.spiffe_bundle.set_sequence(Some(7));
        record.spiffe_bundle.set_refresh_hint(Some(300));
        let text = String::from_utf8(record.to_json()).unwrap();
        let keys = text.find("\"keys\"").unwrap();
        let hint = text.find("\"spiffe_refresh_hint\":300").unwrap();
        let sequence = text.find("\"spiffe_sequence\":7").unwrap();
        assert!(keys < hint && hint < sequence, "{text}");
        assert_eq!(DomainRecord::from_json(text.as_bytes()), Ok(record));
    }

    #[test]
    fn non_canonical_spellings_are_refused() {
        let (_, record) = sample();
        let json = record.to_json();
        let mut spaced = b" ".to_vec();
        spaced.extend_from_slice(&json);
        assert_eq!(
            DomainRecord::from_json(&spaced),
            Err(RecordFormatError::NotCanonical)
        );
        let null_until = edited(&record, |v| {
            v["logs"][0]["validUntil"] = serde_json::Value::Null
        });
        assert_eq!(
            DomainRecord::from_json(&null_until),
            Err(RecordFormatError::NotCanonical)
        );
        // Members out of order (serde_json::Value sorts them).
        let sorted = edited(&record, |_| {});
        assert_eq!(
            DomainRecord::from_json(&sorted),
            Err(RecordFormatError::NotCanonical)
        );
    }

    #[test]
    fn unknown_missing_and_repeated_members_are_refused() {
        let (_, record) = sample();
        let unknown = edited(&record, |v| v["extra"] = 1.into());
        assert!(
            matches!(DomainRecord::from_json(&unknown), Err(RecordFormatError::Json(e)) if e.contains("unknown field"))
        );
        let missing = edited(&record, |v| {
            v.as_object_mut().unwrap().remove("ctKeys");
        });
        assert!(
            matches!(DomainRecord::from_json(&missing), Err(RecordFormatError::Json(e)) if e.contains("ctKeys"))
        );
        let unknown_in_log = edited(&record, |v| v["logs"][0]["url"] = "x".into());
        assert!(matches!(
            DomainRecord::from_json(&unknown_in_log),
            Err(RecordFormatError::Json(_))
        ));
        let json = String::from_utf8(record.to_json()).unwrap();
        let repeated = json.replacen(
            "\"recordSequence\":1,",
            "\"recordSequence\":1,\"recordSequence\":2,",
            1,
        );
        assert!(
            matches!(DomainRecord::from_json(repeated.as_bytes()), Err(RecordFormatError::Json(e)) if e.contains("duplicate"))
        );
        let too_large = vec![b' '; MAX_RECORD_JSON_LEN + 1];
        assert_eq!(
            DomainRecord::from_json(&too_large),
            Err(RecordFormatError::TooLarge {
                len: MAX_RECORD_JSON_LEN + 1
            })
        );
    }

    #[test]
    fn structural_rules_are_enforced() {
        let (ca, base) = sample();
        let check = |edit: &dyn Fn(&mut DomainRecord)| {
            let mut record = base.clone();
            edit(&mut record);
            let err = record.validate().unwrap_err();
            // Whatever `validate` refuses, signing refuses too.
            let svid = ca.svid(AUTHORITY, NOW);
            assert!(matches!(
                SignedDomainRecord::sign(&record, &svid.key, &svid.chain),
                Err(DomainRecordSignError::Invalid(ref e)) if *e == err
            ));
            err
        };
        assert_eq!(
            check(&|r| r.record_sequence = 0),
            RecordFormatError::ZeroSequence
        );
        assert_eq!(
            check(&|r| r.issued_at = MAX_UNIX_SECONDS + 1),
            RecordFormatError::IssuedAtOutOfRange(MAX_UNIX_SECONDS + 1)
        );
        assert_eq!(
            check(&|r| r.logs[0].window = KeyWindow::between(NOW, NOW - 1)),
            RecordFormatError::InvalidWindow {
                list: "logs",
                index: 0
            }
        );
        assert_eq!(
            check(&|r| r.witness_keys[0].window = KeyWindow::open_from(MAX_UNIX_SECONDS + 1)),
            RecordFormatError::InvalidWindow {
                list: "witnessKeys",
                index: 0
            }
        );
        assert_eq!(
            check(&|r| r.logs.push(r.logs[0].clone())),
            RecordFormatError::DuplicateOrigin {
                origin: "log.org-a.example".into()
            }
        );
        assert_eq!(
            check(&|r| r.logs[0].origin = KeyName::new("log2.org-a.example").unwrap()),
            RecordFormatError::LogKeyName {
                index: 0,
                origin: "log2.org-a.example".into(),
                key_name: "log.org-a.example".into()
            }
        );
        assert_eq!(
            check(&|r| {
                let name = r.logs[0].origin.clone();
                r.logs[0].verifier =
                    crate::cosignature::CosignatureSigner::from_seed(name, &[9; 32])
                        .verifier()
                        .into();
            }),
            RecordFormatError::LogKeyType {
                index: 0,
                signature_type: 0x04
            }
        );
        assert!(matches!(
            check(&|r| r.code_signing_roots[0].certificate_der = vec![0x30, 0x00]),
            RecordFormatError::CodeSigningRoot { index: 0, .. }
        ));
        assert_eq!(
            check(&|r| r.code_signing_roots.push(r.code_signing_roots[0].clone())),
            RecordFormatError::DuplicateKey {
                list: "codeSigningRoots",
                index: 1
            }
        );
        assert_eq!(
            check(&|r| r.ct_keys[0].public_key_spki_der = ca.der.clone()),
            RecordFormatError::CtKey { index: 0 }
        );
        assert_eq!(
            check(&|r| r.ct_keys.push(r.ct_keys[0].clone())),
            RecordFormatError::DuplicateKey {
                list: "ctKeys",
                index: 1
            }
        );
        assert_eq!(
            check(&|r| r.witness_keys.push(r.witness_keys[0].clone())),
            RecordFormatError::DuplicateKey {
                list: "witnessKeys",
                index: 1
            }
        );
        assert_eq!(
            check(&|r| r.authority.spiffe_id =
                SpiffeId::parse("spiffe://org-b.example/provmesh/authority").unwrap()),
            RecordFormatError::AuthorityOutsideDomain {
                authority: "spiffe://org-b.example/provmesh/authority".into(),
                trust_domain: "org-a.example".into()
            }
        );
        assert!(matches!(
            check(&|r| r.authority.spiffe_id = r.trust_domain.id()),
            RecordFormatError::AuthorityOutsideDomain { .. }
        ));
        for bad in [
            "",
            "tcp://host:1",
            "/ip4/1.2.3.4/tcp/1 x",
            "https://é.example",
        ] {
            assert!(matches!(
                check(&|r| r.authority.addresses[1] = bad.to_owned()),
                RecordFormatError::InvalidAddress { index: 1, .. }
            ));
        }
        assert_eq!(
            check(&|r| r.authority.addresses = vec!["/dns/a".to_owned(); MAX_ADDRESSES + 1]),
            RecordFormatError::TooManyAddresses {
                count: MAX_ADDRESSES + 1
            }
        );
        assert_eq!(
            check(&|r| {
                r.logs = (0..=MAX_KEYS_PER_LIST)
                    .map(|i| log(&format!("log{i}.org-a.example"), 1, KeyWindow::open_from(0)))
                    .collect();
            }),
            RecordFormatError::TooManyKeys {
                list: "logs",
                count: MAX_KEYS_PER_LIST + 1
            }
        );
        // Keys, but none that could verify the next record.
        assert_eq!(
            check(&|r| {
                let mut bundle = TrustBundle::new();
                bundle.add_jwt_authority("k", ec_jwk(&[4; 65])).unwrap();
                r.spiffe_bundle = bundle;
            }),
            RecordFormatError::NoX509Authority
        );
    }

    #[test]
    fn vkeys_must_parse_and_be_of_the_right_kind() {
        let (_, record) = sample();
        let bad_log = edited(&record, |v| {
            v["logs"][0]["verifierKey"] = "log.org-a.example+00000000+AQ==".into()
        });
        assert!(matches!(
            DomainRecord::from_json(&bad_log),
            Err(RecordFormatError::LogKey { index: 0, .. })
        ));
        // A log key (type 0x01) where a witness key is required.
        let log_vkey = record.logs[0].verifier.to_vkey();
        let bad_witness = edited(&record, |v| {
            v["witnessKeys"][0]["verifierKey"] = log_vkey.clone().into()
        });
        assert!(matches!(
            DomainRecord::from_json(&bad_witness),
            Err(RecordFormatError::WitnessKey {
                index: 0,
                source: KeyParseError::UnsupportedSignatureType(1)
            })
        ));
        let bad_base64 = edited(&record, |v| {
            v["ctKeys"][0]["publicKey"] = "not base64!".into()
        });
        assert_eq!(
            DomainRecord::from_json(&bad_base64),
            Err(RecordFormatError::Base64 {
                list: "ctKeys",
                index: 0,
                member: "publicKey"
            })
        );
    }

    #[test]
    fn an_empty_bundle_revokes() {
        let (_, mut record) = sample();
        assert!(!record.revokes());
        record.spiffe_bundle = TrustBundle::new();
        assert_eq!(record.validate(), Ok(()));
        assert!(record.revokes());
        assert_eq!(DomainRecord::from_json(&record.to_json()), Ok(record));
    }

    #[test]
    fn key_windows_are_inclusive() {
        let open = KeyWindow::open_from(10);
        assert!(!open.contains(9) && open.contains(10) && open.contains(u64::MAX));
        let closed = KeyWindow::between(10, 20);
        assert!(
            !closed.contains(9)
                && closed.contains(10)
                && closed.contains(20)
                && !closed.contains(21)
        );
        assert!(KeyWindow::between(10, 10).is_valid());
        assert!(!KeyWindow::between(10, 9).is_valid());
    }

    #[test]
    fn signed_record_round_trips_and_verifies() {
        let (ca, record) = sample();
        let svid = ca.svid(AUTHORITY, NOW);
        let signed = sign(&record, &svid);
        let json = signed.to_json();
        assert!(json.starts_with(br#"{"envelope":{"payload":""#));
        assert_eq!(SignedDomainRecord::from_json(&json), Ok(signed.clone()));
        assert_eq!(signed.unverified_record(), Ok(record.clone()));
        let bundle = DevCa::bundle(&[&ca]);
        let verified = signed
            .verify(
                &ca.td,
                &authority(&ca),
                &bundle,
                Timestamp::from_unix_seconds(NOW),
                60,
            )
            .unwrap();
        assert_eq!(verified.record(), &record);
        assert_eq!(verified.sequence(), 1);
        assert_eq!(verified.signed_json(), json.as_slice());
        assert_eq!(verified.digest(), <[u8; 32]>::from(Sha256::digest(&json)));
        assert_eq!(verified.digest(), signed.digest());
        assert_eq!(verified.svid().spiffe_id, authority(&ca));
        assert_eq!(verified.logs()[0].origin.as_str(), "log.org-a.example");
    }

    #[test]
    fn signed_record_shape_is_strict() {
        let (ca, record) = sample();
        let svid = ca.svid(AUTHORITY, NOW);
        let signed = sign(&record, &svid);
        let mut value: serde_json::Value = serde_json::from_slice(&signed.to_json()).unwrap();
        let sig = value["envelope"]["signatures"][0].clone();
        value["envelope"]["signatures"]
            .as_array_mut()
            .unwrap()
            .push(sig);
        assert_eq!(
            SignedDomainRecord::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(SignedRecordParseError::SignatureCount { count: 2 })
        );
        value["envelope"]["signatures"]
            .as_array_mut()
            .unwrap()
            .clear();
        assert_eq!(
            SignedDomainRecord::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(SignedRecordParseError::SignatureCount { count: 0 })
        );
        let mut value: serde_json::Value = serde_json::from_slice(&signed.to_json()).unwrap();
        value["svidChain"] = serde_json::json!([]);
        assert_eq!(
            SignedDomainRecord::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(SignedRecordParseError::ChainLength { len: 0 })
        );
        value["svidChain"] = serde_json::json!(["!"]);
        assert_eq!(
            SignedDomainRecord::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(SignedRecordParseError::ChainBase64 { index: 0 })
        );
        let mut value: serde_json::Value = serde_json::from_slice(&signed.to_json()).unwrap();
        value["extra"] = true.into();
        assert!(matches!(
            SignedDomainRecord::from_json(&serde_json::to_vec(&value).unwrap()),
            Err(SignedRecordParseError::Json(_))
        ));
        let pretty = serde_json::to_vec_pretty(
            &serde_json::from_slice::<serde_json::Value>(&signed.to_json()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            SignedDomainRecord::from_json(&pretty),
            Err(SignedRecordParseError::NotCanonical)
        );
        assert_eq!(
            SignedDomainRecord::from_json(&vec![b' '; MAX_SIGNED_RECORD_JSON_LEN + 1]),
            Err(SignedRecordParseError::TooLarge {
                len: MAX_SIGNED_RECORD_JSON_LEN + 1
            })
        );
        let no_chain: [&[u8]; 0] = [];
        assert!(matches!(
            SignedDomainRecord::sign(&record, &svid.key, &no_chain),
            Err(DomainRecordSignError::ChainLength { len: 0 })
        ));
    }

    /// Verifies `signed` as org-a's under `bundle` at [`NOW`] with a minute of skew.
    fn verify_a(
        ca: &DevCa,
        signed: &SignedDomainRecord,
        bundle: &TrustBundle,
    ) -> Result<VerifiedDomainRecord, DomainRecordError> {
        signed.verify(
            &ca.td,
            &authority(ca),
            bundle,
            Timestamp::from_unix_seconds(NOW),
            60,
        )
    }

    #[test]
    fn verification_refuses_what_the_authority_did_not_sign() {
        let (ca, record) = sample();
        let bundle = DevCa::bundle(&[&ca]);

        // A workload of the same domain.
        let node = ca.svid("/provmesh/node/x", NOW);
        let err = verify_a(&ca, &sign(&record, &node), &bundle).unwrap_err();
        assert_eq!(
            err,
            DomainRecordError::SignerNotAuthority {
                signer: "spiffe://org-a.example/provmesh/node/x".into(),
                expected: "spiffe://org-a.example/provmesh/authority".into()
            }
        );
        assert!(err.blames_sender());

        // Another domain's authority signing org-a's record.
        let other = DevCa::new("org-b.example", 1);
        let b_authority = other.svid(AUTHORITY, NOW);
        let err = verify_a(&ca, &sign(&record, &b_authority), &bundle).unwrap_err();
        assert!(
            matches!(err, DomainRecordError::SignerNotAuthority { ref signer, .. } if signer == "spiffe://org-b.example/provmesh/authority")
        );
        assert!(err.blames_sender());

        // Signed by the authority, but the payload changed afterwards.
        let svid = ca.svid(AUTHORITY, NOW);
        let signed = sign(&record, &svid);
        let mut altered = record.clone();
        altered.record_sequence = 2;
        let forged = SignedDomainRecord {
            envelope: dsse::Envelope::from_parts(
                DOMAIN_RECORD_PAYLOAD_TYPE,
                altered.to_json(),
                signed.envelope().signatures().to_vec(),
            )
            .unwrap(),
            svid_chain: signed.svid_chain().to_vec(),
        };
        let err = verify_a(&ca, &forged, &bundle).unwrap_err();
        assert_eq!(
            err,
            DomainRecordError::Signature(SvidSignatureError::BadSignature)
        );
        assert!(err.blames_sender());

        // The right signature under another payload type.
        let envelope =
            dsse::Envelope::sign("application/json", record.to_json(), &[&svid.key]).unwrap();
        let typed = SignedDomainRecord {
            envelope,
            svid_chain: svid.chain.clone(),
        };
        let err = verify_a(&ca, &typed, &bundle).unwrap_err();
        assert_eq!(
            err,
            DomainRecordError::WrongPayloadType {
                found: "application/json".into()
            }
        );
        assert!(err.blames_sender());

        // Asked for as another domain's record.
        let err = signed
            .verify(
                &other.td,
                &other.id(AUTHORITY),
                &bundle,
                Timestamp::from_unix_seconds(NOW),
                60,
            )
            .unwrap_err();
        assert!(matches!(err, DomainRecordError::WrongTrustDomain { .. }));

        // Signed by the authority but naming another authority.
        let mut misnamed = record.clone();
        misnamed.authority.spiffe_id = ca.id("/provmesh/other-authority");
        let err = verify_a(&ca, &sign(&misnamed, &svid), &bundle).unwrap_err();
        assert!(matches!(err, DomainRecordError::AuthorityMismatch { .. }));
        assert!(!err.blames_sender());
    }

    #[test]
    fn verification_happens_at_issued_at() {
        let (ca, record) = sample();
        let bundle = DevCa::bundle(&[&ca]);
        let svid = ca.svid(AUTHORITY, NOW);
        let signed = sign(&record, &svid);
        // Three weeks later the SVID has long expired; the record still verifies.
        let later = Timestamp::from_unix_seconds(NOW + 21 * 86_400);
        assert!(
            signed
                .verify(&ca.td, &authority(&ca), &bundle, later, 0)
                .is_ok()
        );

        // An SVID that had expired when the record says it was issued.
        let mut late = record.clone();
        late.issued_at = NOW + 7200;
        let err = verify_a(&ca, &sign(&late, &svid), &bundle).unwrap_err();
        assert!(matches!(
            err,
            DomainRecordError::Svid(X509SvidError::NotValidAt { position: 0, .. })
        ));
        assert!(!err.blames_sender());

        // A record from the future, beyond the skew.
        let mut future = record.clone();
        future.issued_at = NOW + 120;
        let err = verify_a(&ca, &sign(&future, &svid), &bundle).unwrap_err();
        assert_eq!(
            err,
            DomainRecordError::IssuedInFuture {
                issued_at: NOW + 120,
                now: NOW,
                max_skew_secs: 60
            }
        );
        assert!(!err.blames_sender());
        future.issued_at = NOW + 60;
        assert!(verify_a(&ca, &sign(&future, &svid), &bundle).is_ok());
    }

    #[test]
    fn verification_needs_the_signing_root_in_the_bundle() {
        let (ca, record) = sample();
        let signed = sign(&record, &ca.svid(AUTHORITY, NOW));
        let rotated = DevCa::new("org-a.example", 2);
        let err = verify_a(&ca, &signed, &DevCa::bundle(&[&rotated])).unwrap_err();
        assert!(matches!(
            err,
            DomainRecordError::Svid(X509SvidError::Untrusted { .. })
        ));
        assert!(!err.blames_sender(), "a node behind the chain cannot tell");
        let err = verify_a(&ca, &signed, &TrustBundle::new()).unwrap_err();
        assert!(matches!(
            err,
            DomainRecordError::Svid(X509SvidError::NoAuthorities { .. })
        ));
    }

    #[test]
    fn entry_carries_the_signed_record() {
        let (ca, record) = sample();
        let signed = sign(&record, &ca.svid(AUTHORITY, NOW));
        let entry = domain_record_entry(&signed).unwrap();
        let expected = format!(
            r#"{{"apiVersion":"0.0.1","kind":"provmesh-domain-record","spec":{{"trustDomain":"org-a.example","recordSequence":1,"signedRecord":"{}"}}}}"#,
            STANDARD.encode(signed.to_json())
        );
        assert_eq!(String::from_utf8(entry.body.clone()).unwrap(), expected);
        assert_eq!(entry.leaf_hash, leaf_hash(&entry.body));
        assert_eq!(
            entry.search_keys,
            vec![
                <[u8; 32]>::from(Sha256::digest(b"org-a.example")),
                signed.digest()
            ]
        );
        assert_eq!(signed_record_from_entry(&entry.body), Ok(signed.clone()));

        let wrong_domain = expected.replace(
            "\"trustDomain\":\"org-a.example\"",
            "\"trustDomain\":\"org-b.example\"",
        );
        assert_eq!(
            signed_record_from_entry(wrong_domain.as_bytes()),
            Err(DomainRecordEntryError::NotCanonical)
        );
        let wrong_sequence = expected.replace("\"recordSequence\":1", "\"recordSequence\":2");
        assert_eq!(
            signed_record_from_entry(wrong_sequence.as_bytes()),
            Err(DomainRecordEntryError::NotCanonical)
        );
        let wrong_kind = expected.replace("provmesh-domain-record", "provmesh-precert");
        assert!(matches!(
            signed_record_from_entry(wrong_kind.as_bytes()),
            Err(DomainRecordEntryError::WrongKind { .. })
        ));
        let not_base64 = r#"{"apiVersion":"0.0.1","kind":"provmesh-domain-record","spec":{"trustDomain":"org-a.example","recordSequence":1,"signedRecord":"!"}}"#;
        assert_eq!(
            signed_record_from_entry(not_base64.as_bytes()),
            Err(DomainRecordEntryError::Base64)
        );
        assert!(matches!(
            signed_record_from_entry(b"{}"),
            Err(DomainRecordEntryError::Json(_))
        ));
    }

    #[test]
    fn the_largest_signed_record_fits_a_log_entry() {
        // The worst case: the longest trust domain name, the longest sequence and a
        // signed record of the maximum size.
        let body = WireEntry {
            api_version: crate::log::entry::API_VERSION.to_owned(),
            kind: DOMAIN_RECORD_ENTRY_KIND.to_owned(),
            spec: WireEntrySpec {
                trust_domain: "a".repeat(crate::spiffe::MAX_TRUST_DOMAIN_LEN),
                record_sequence: u64::MAX,
                signed_record: STANDARD.encode(vec![0; MAX_SIGNED_RECORD_JSON_LEN]),
            },
        };
        let len = serde_json::to_vec(&body).unwrap().len();
        assert!(len <= MAX_ENTRY_BODY_BYTES, "{len}");
        // And the largest record leaves room for a chain and a signature.
        let envelope_overhead = STANDARD.encode(vec![0; MAX_RECORD_JSON_LEN]).len() + 256;
        assert!(MAX_SIGNED_RECORD_JSON_LEN - envelope_overhead > 3 * 1024);
    }

    #[test]
    fn an_oversized_record_is_refused_when_signing() {
        let (ca, mut record) = sample();
        record.code_signing_roots = (0..60)
            .map(|i| CodeSigningRoot {
                certificate_der: code_signing_root(&format!("root {i} with a long name")),
                window: KeyWindow::open_from(0),
            })
            .collect();
        let svid = ca.svid(AUTHORITY, NOW);
        let len = record.to_json().len();
        assert!(len > MAX_RECORD_JSON_LEN, "{len}");
        assert!(matches!(
            SignedDomainRecord::sign(&record, &svid.key, &svid.chain),
            Err(DomainRecordSignError::RecordTooLarge { .. })
        ));
    }
}
