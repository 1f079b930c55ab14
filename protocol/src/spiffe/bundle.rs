//! SPIFFE bundle documents: the JWK Set of SPIFFE Trust Domain and Bundle §4.
//!
//! Specs:
//! * <https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Trust_Domain_and_Bundle.md>
//!   §4 (bundle format), §6.3 (JSON key duplication);
//! * <https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md> §6
//!   (`x509-svid` entries);
//! * <https://github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md> §6 (`jwt-svid`
//!   entries);
//! * RFC 7517 §4.7 (`x5c` is standard base64 of DER, not base64url) and §5 (JWK Sets).
//!
//! # What is an error and what is ignored
//!
//! The standards tell consumers to *ignore* individual JWK entries they cannot use, not
//! to reject the bundle: "Clients encountering unknown key types or uses MUST ignore the
//! corresponding JWK element" (§4.1.3), and an `x509-svid` entry whose `x5c` "is not set,
//! or is empty … MUST be ignored" (X509-SVID §6.2). [`TrustBundle::from_json`] follows
//! that: such entries are kept (they round-trip) as [`BundleKey::Ignored`] with a
//! [`KeyProblem`] saying why, and are listed by [`TrustBundle::diagnostics`].
//!
//! The whole document is rejected ([`BundleError`]) only when it is not a bundle at all:
//! too large, not JSON, duplicate JSON member names (§6.3's reasoning applied to the whole
//! document), `keys` missing or not an array ("The parameter `keys` MUST be present"),
//! too many keys, a `keys` element that is not a JSON object, a `spiffe_sequence` or
//! `spiffe_refresh_hint` that is not a non-negative integer, or two `jwt-svid` entries
//! with the same `kid` (which would make JWT-SVID key selection ambiguous).
//!
//! [`TrustBundle::from_json_strict`] additionally rejects a bundle with any entry that
//! breaks a rule the standards place on *publishers* (see
//! [`KeyProblem::is_publisher_violation`]); it is what go-spiffe's `spiffebundle.Parse`
//! roughly enforces and what provmesh requires of bundles it publishes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::der::{DerError, check_certificate_shape};

/// The largest bundle document [`TrustBundle::from_json`] accepts, in bytes (1 MiB).
pub const MAX_BUNDLE_JSON_LEN: usize = 1 << 20;

/// The most entries a bundle's `keys` array may have.
pub const MAX_BUNDLE_KEYS: usize = 1024;

/// `use` value of X.509-SVID CA certificate entries (X509-SVID §6.1).
pub const USE_X509_SVID: &str = "x509-svid";

/// `use` value of JWT-SVID signing key entries (JWT-SVID §6.1).
pub const USE_JWT_SVID: &str = "jwt-svid";

/// Name of the sequence number member (§4.1.1).
const SEQUENCE: &str = "spiffe_sequence";
/// Name of the refresh hint member (§4.1.2).
const REFRESH_HINT: &str = "spiffe_refresh_hint";
/// Name of the key array member (§4.1.3).
const KEYS: &str = "keys";

/// Why a bundle document was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The document is larger than [`MAX_BUNDLE_JSON_LEN`].
    #[error("bundle document is {len} bytes; the maximum is {MAX_BUNDLE_JSON_LEN}")]
    TooLarge {
        /// Size of the document, in bytes.
        len: usize,
    },
    /// The document is not valid JSON, nests deeper than the JSON parser allows, or has
    /// an object with a duplicate member name.
    #[error("bundle document is not acceptable JSON: {0}")]
    InvalidJson(String),
    /// The document is not a JSON object.
    #[error("bundle document is not a JSON object")]
    NotAnObject,
    /// There is no `keys` member ("The parameter `keys` MUST be present").
    #[error("bundle has no \"keys\" member")]
    MissingKeys,
    /// `keys` is not an array ("Its value is an array of JWKs").
    #[error("bundle \"keys\" member is not an array")]
    KeysNotArray,
    /// `keys` has more than [`MAX_BUNDLE_KEYS`] elements.
    #[error("bundle has {count} keys; the maximum is {MAX_BUNDLE_KEYS}")]
    TooManyKeys {
        /// Number of elements of `keys`.
        count: usize,
    },
    /// An element of `keys` is not a JSON object, so not a JWK at all.
    #[error("bundle key {index} is not a JSON object")]
    KeyNotObject {
        /// Index of the element in `keys`.
        index: usize,
    },
    /// `spiffe_sequence` is present but not an integer in `0..=u64::MAX` ("When present,
    /// its value MUST be a monotonically increasing integer").
    #[error("\"spiffe_sequence\" is not an unsigned 64-bit integer")]
    InvalidSequence,
    /// `spiffe_refresh_hint` is present but not an integer in `0..=u64::MAX` ("When set,
    /// its value MUST be an integer representing the suggested consumer refresh interval
    /// in seconds").
    #[error("\"spiffe_refresh_hint\" is not a non-negative integer number of seconds")]
    InvalidRefreshHint,
    /// Two usable `jwt-svid` entries have the same `kid`.
    #[error("jwt-svid keys {first_index} and {index} have the same kid")]
    DuplicateKid {
        /// Index of the first entry with the `kid`.
        first_index: usize,
        /// Index of the later entry with the same `kid`.
        index: usize,
    },
    /// Strict parsing only: an entry breaks a publisher rule of the standards.
    #[error("bundle key {}: {}", .0.index, .0.problem)]
    NonConforming(KeyDiagnostic),
}

/// Why [`TrustBundle::add_x509_authority`] or [`TrustBundle::add_jwt_authority`] refused
/// a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddKeyError {
    /// The bundle already has [`MAX_BUNDLE_KEYS`] entries.
    #[error("bundle already has the maximum of {MAX_BUNDLE_KEYS} keys")]
    TooManyKeys,
    /// The resulting entry would not be a conforming, usable entry.
    #[error("key rejected: {0}")]
    Rejected(KeyProblem),
    /// A `jwt-svid` entry with this `kid` already exists.
    #[error("a jwt-svid key with this kid already exists")]
    DuplicateKid,
}

/// Something wrong with one JWK entry of a bundle.
///
/// [`KeyProblem::ignores_key`] tells whether the entry is unusable (and so ignored, as the
/// standards require) or usable despite the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// No `use` member. "The `use` parameter MUST be set … Clients encountering either a
    /// missing `use` parameter or an unknown `use` value MUST ignore the entire JWK
    /// element." (§4.2.2) Ignored.
    #[error("\"use\" is missing")]
    MissingUse,
    /// `use` is not a JSON string (RFC 7517 §4.2). Ignored.
    #[error("\"use\" is not a string")]
    UseNotString,
    /// A `use` other than `x509-svid` or `jwt-svid` ("The values are case sensitive").
    /// Ignored, but not a publisher violation: new SVID types may define new values.
    #[error("unknown \"use\" value")]
    UnknownUse,
    /// No `kty`, or not a string. "The `kty` parameter MUST be set" (§4.2.1). Ignored.
    #[error("\"kty\" is missing or not a string")]
    MissingKty,
    /// A `kty` other than `EC`, `RSA` or `OKP`. "Clients encountering an unknown key type
    /// MUST ignore the entire JWK element" (§4.2.1). Ignored; not a publisher violation.
    #[error("unsupported \"kty\" value")]
    UnsupportedKty,
    /// A member the key type requires (RFC 7518 §6.2.1 / §6.3.1, RFC 8037 §2) is missing
    /// or not a non-empty string; RFC 7517 §5 says to ignore such JWKs. Ignored.
    #[error("key parameter \"{0}\" is missing or not a non-empty string")]
    MissingKeyParameter(&'static str),
    /// `x509-svid` entry without `x5c`, or with an empty one: "If `x5c` is not set, or is
    /// empty, then the entry MUST be ignored" (X509-SVID §6.2). Ignored.
    #[error("x509-svid entry has no certificate in \"x5c\"")]
    MissingCertificate,
    /// `x509-svid` entry whose `x5c` is not an array (RFC 7517 §4.7). Ignored.
    #[error("\"x5c\" is not an array")]
    CertificateChainNotArray,
    /// The first `x5c` value is not a string of standard, padded base64 (RFC 7517 §4.7:
    /// "base64-encoded … not base64url-encoded"). Ignored.
    #[error("\"x5c\" certificate is not standard base64")]
    CertificateNotBase64,
    /// The first `x5c` value does not decode to the DER shape of a certificate. Ignored.
    #[error("\"x5c\" certificate is not DER: {0}")]
    CertificateNotDer(DerError),
    /// `x5c` holds more than one certificate. "The value MUST include exactly one CA
    /// certificate" (X509-SVID §6.1); consumers use the first: "all but the first MUST be
    /// ignored" (§6.2). Not ignored.
    #[error("\"x5c\" holds {count} certificates; exactly one is allowed")]
    ExtraCertificates {
        /// Number of `x5c` values.
        count: usize,
    },
    /// `x509-svid` entry with a `kid`: "the `kid` parameter of each JWK entry MUST NOT be
    /// set" (X509-SVID §6.1). Not ignored.
    #[error("x509-svid entry has a \"kid\"")]
    KidOnX509Authority,
    /// `jwt-svid` entry without a non-empty string `kid`: "the `kid` parameter of each JWK
    /// entry MUST be set" (JWT-SVID §6.1). Ignored, since JWT-SVID validation selects the
    /// key by `kid`.
    #[error("jwt-svid entry has no \"kid\"")]
    MissingKid,
}

impl KeyProblem {
    /// Whether the entry is unusable and therefore ignored.
    pub fn ignores_key(&self) -> bool {
        !matches!(
            self,
            KeyProblem::ExtraCertificates { .. } | KeyProblem::KidOnX509Authority
        )
    }

    /// Whether the problem breaks a rule the standards place on bundle publishers (and so
    /// fails [`TrustBundle::from_json_strict`]). Unknown `use` and `kty` values do not:
    /// the standards expect consumers to meet values they do not understand.
    pub fn is_publisher_violation(&self) -> bool {
        !matches!(self, KeyProblem::UnknownUse | KeyProblem::UnsupportedKty)
    }
}

/// A [`KeyProblem`] and the index of the `keys` element it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDiagnostic {
    /// Index of the entry in `keys`.
    pub index: usize,
    /// What is wrong with it.
    pub problem: KeyProblem,
}

/// A JSON Web Key as it appeared in the bundle: every member is kept, so key material
/// (`kty`, `crv`, `x`, `y`, `n`, `e`, …) and unknown members round-trip unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Jwk(Map<String, Value>);

impl Jwk {
    /// Wraps a JSON object as a JWK (no validation).
    pub fn from_members(members: Map<String, Value>) -> Jwk {
        Jwk(members)
    }

    /// All members.
    pub fn members(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Consumes the JWK, returning its members.
    pub fn into_members(self) -> Map<String, Value> {
        self.0
    }

    /// One member by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A string member by name (`None` if absent or not a string).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// The `kty` member, if a string.
    pub fn kty(&self) -> Option<&str> {
        self.get_str("kty")
    }

    /// The `use` member, if a string.
    pub fn key_use(&self) -> Option<&str> {
        self.get_str("use")
    }

    /// The `kid` member, if a string.
    pub fn kid(&self) -> Option<&str> {
        self.get_str("kid")
    }
}

impl Serialize for Jwk {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// One element of a bundle's `keys` array, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleKey {
    /// A usable `x509-svid` entry: an X.509-SVID CA certificate.
    X509Authority {
        /// The entry as it appeared.
        jwk: Jwk,
        /// DER of the certificate (the first `x5c` value, decoded; shape-checked only).
        der: Vec<u8>,
    },
    /// A usable `jwt-svid` entry: a JWT-SVID signing key.
    JwtAuthority {
        /// The entry as it appeared; the public key is in its members.
        jwk: Jwk,
        /// The entry's `kid`.
        kid: String,
    },
    /// An entry the standards say to ignore; kept so that it round-trips.
    Ignored {
        /// The entry as it appeared.
        jwk: Jwk,
        /// Why it is ignored.
        reason: KeyProblem,
    },
}

impl BundleKey {
    /// The entry as it appeared in the document.
    pub fn jwk(&self) -> &Jwk {
        match self {
            BundleKey::X509Authority { jwk, .. }
            | BundleKey::JwtAuthority { jwk, .. }
            | BundleKey::Ignored { jwk, .. } => jwk,
        }
    }
}

/// A SPIFFE bundle document (a JWK Set with `spiffe_sequence`, `spiffe_refresh_hint` and
/// `x509-svid` / `jwt-svid` keys).
///
/// Parse with [`TrustBundle::from_json`]; serialise with [`TrustBundle::to_json`] or
/// serde. Members other than `keys`, `spiffe_sequence` and `spiffe_refresh_hint` are kept
/// and written back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustBundle {
    /// `spiffe_sequence`.
    sequence: Option<u64>,
    /// `spiffe_refresh_hint`, seconds.
    refresh_hint: Option<u64>,
    /// `keys`, in order.
    keys: Vec<BundleKey>,
    /// Problems found in `keys`, in order.
    diagnostics: Vec<KeyDiagnostic>,
    /// Every other top-level member.
    other: Map<String, Value>,
}

/// Key types whose required public-key members are known: (kty, required members).
const KEY_TYPES: &[(&str, &[&str])] = &[
    // RFC 7518 §6.2.1
    ("EC", &["crv", "x", "y"]),
    // RFC 7518 §6.3.1
    ("RSA", &["n", "e"]),
    // RFC 8037 §2
    ("OKP", &["crv", "x"]),
];

/// Checks `kty` and the members it requires.
fn check_key_type(jwk: &Jwk) -> Result<(), KeyProblem> {
    // "The `kty` parameter MUST be set … Clients encountering an unknown key type MUST
    // ignore the entire JWK element." (§4.2.1)
    let kty = jwk.kty().ok_or(KeyProblem::MissingKty)?;
    let (_, required) = KEY_TYPES
        .iter()
        .find(|(name, _)| *name == kty)
        .ok_or(KeyProblem::UnsupportedKty)?;
    for &name in *required {
        match jwk.get_str(name) {
            Some(v) if !v.is_empty() => {}
            _ => return Err(KeyProblem::MissingKeyParameter(name)),
        }
    }
    Ok(())
}

/// Classifies one `keys` element; `Err` is the reason to ignore it. Tolerated problems are
/// pushed onto `warnings`.
fn classify(jwk: Jwk, warnings: &mut Vec<KeyProblem>) -> BundleKey {
    match classify_inner(&jwk, warnings) {
        Ok(Usable::X509(der)) => BundleKey::X509Authority { jwk, der },
        Ok(Usable::Jwt(kid)) => BundleKey::JwtAuthority { jwk, kid },
        Err(reason) => BundleKey::Ignored { jwk, reason },
    }
}

/// What a usable entry yields.
enum Usable {
    /// `x509-svid`: the certificate DER.
    X509(Vec<u8>),
    /// `jwt-svid`: the key ID.
    Jwt(String),
}

/// The per-entry rules, in the order: `use`, `kty`, then the SVID type's rules.
fn classify_inner(jwk: &Jwk, warnings: &mut Vec<KeyProblem>) -> Result<Usable, KeyProblem> {
    // "Clients encountering either a missing `use` parameter or an unknown `use` value
    // MUST ignore the entire JWK element." (§4.2.2)
    let key_use = match jwk.get("use") {
        None => return Err(KeyProblem::MissingUse),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(KeyProblem::UseNotString),
    };
    if key_use != USE_X509_SVID && key_use != USE_JWT_SVID {
        return Err(KeyProblem::UnknownUse);
    }
    check_key_type(jwk)?;
    if key_use == USE_JWT_SVID {
        // "the `kid` parameter of each JWK entry MUST be set." (JWT-SVID §6.1)
        return match jwk.kid() {
            Some(kid) if !kid.is_empty() => Ok(Usable::Jwt(kid.to_owned())),
            _ => Err(KeyProblem::MissingKid),
        };
    }
    // X509-SVID §6.2: "check that the `x5c` parameter is set and has at least one value.
    // If `x5c` is not set, or is empty, then the entry MUST be ignored."
    let chain = match jwk.get("x5c") {
        None => return Err(KeyProblem::MissingCertificate),
        Some(Value::Array(chain)) => chain,
        Some(_) => return Err(KeyProblem::CertificateChainNotArray),
    };
    let first = chain.first().ok_or(KeyProblem::MissingCertificate)?;
    let b64 = first.as_str().ok_or(KeyProblem::CertificateNotBase64)?;
    let der = STANDARD
        .decode(b64)
        .map_err(|_| KeyProblem::CertificateNotBase64)?;
    check_certificate_shape(&der).map_err(KeyProblem::CertificateNotDer)?;
    if chain.len() > 1 {
        // "The value MUST include exactly one CA certificate" (X509-SVID §6.1); "If the
        // `x5c` parameter contains multiple values, then all but the first MUST be
        // ignored." (§6.2)
        warnings.push(KeyProblem::ExtraCertificates { count: chain.len() });
    }
    if jwk.get("kid").is_some() {
        // "the `kid` parameter of each JWK entry MUST NOT be set." (X509-SVID §6.1)
        warnings.push(KeyProblem::KidOnX509Authority);
    }
    Ok(Usable::X509(der))
}

/// Reads an optional unsigned integer member.
fn optional_u64(
    map: &mut Map<String, Value>,
    name: &str,
    err: BundleError,
) -> Result<Option<u64>, BundleError> {
    match map.remove(name) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(err),
    }
}

impl TrustBundle {
    /// An empty bundle: no keys, no sequence number, no refresh hint.
    pub fn new() -> TrustBundle {
        TrustBundle::default()
    }

    /// Parses a bundle document, applying the standards' consumer rules: unusable entries
    /// are ignored (kept as [`BundleKey::Ignored`]), not fatal. See the module
    /// documentation for what rejects the whole document.
    pub fn from_json(json: &[u8]) -> Result<TrustBundle, BundleError> {
        if json.len() > MAX_BUNDLE_JSON_LEN {
            return Err(BundleError::TooLarge { len: json.len() });
        }
        let value = serde_json::from_slice::<CheckedValue>(json)
            .map_err(|e| BundleError::InvalidJson(e.to_string()))?;
        TrustBundle::from_value(value.0)
    }

    /// Like [`TrustBundle::from_json`], but also rejects any entry that breaks a publisher
    /// rule ([`KeyProblem::is_publisher_violation`]), with the first such entry.
    pub fn from_json_strict(json: &[u8]) -> Result<TrustBundle, BundleError> {
        let bundle = TrustBundle::from_json(json)?;
        bundle.check_strict()?;
        Ok(bundle)
    }

    /// Builds a bundle from an already parsed JSON value (same rules as
    /// [`TrustBundle::from_json`], except the size limit, which is the caller's).
    /// Duplicate member names cannot be detected in a [`Value`].
    pub fn from_value(value: Value) -> Result<TrustBundle, BundleError> {
        let Value::Object(mut map) = value else {
            return Err(BundleError::NotAnObject);
        };
        // "The parameter `keys` MUST be present. Its value is an array of JWKs." (§4.1.3)
        let keys = match map.remove(KEYS) {
            None => return Err(BundleError::MissingKeys),
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(BundleError::KeysNotArray),
        };
        if keys.len() > MAX_BUNDLE_KEYS {
            return Err(BundleError::TooManyKeys { count: keys.len() });
        }
        // §4.1.1: "When present, its value MUST be a monotonically increasing integer";
        // we hold it in 64 bits, as the section asks.
        let sequence = optional_u64(&mut map, SEQUENCE, BundleError::InvalidSequence)?;
        // §4.1.2: "When set, its value MUST be an integer representing the suggested
        // consumer refresh interval in seconds."
        let refresh_hint = optional_u64(&mut map, REFRESH_HINT, BundleError::InvalidRefreshHint)?;
        let mut bundle = TrustBundle {
            sequence,
            refresh_hint,
            keys: Vec::with_capacity(keys.len()),
            diagnostics: Vec::new(),
            other: map,
        };
        for (index, key) in keys.into_iter().enumerate() {
            let Value::Object(members) = key else {
                return Err(BundleError::KeyNotObject { index });
            };
            bundle.push_classified(index, Jwk(members))?;
        }
        Ok(bundle)
    }

    /// Classifies and appends one entry, recording its problems.
    fn push_classified(&mut self, index: usize, jwk: Jwk) -> Result<(), BundleError> {
        let mut warnings = Vec::new();
        let key = classify(jwk, &mut warnings);
        // `keys` holds every entry, so a position in it is a document index.
        if let BundleKey::JwtAuthority { kid, .. } = &key
            && let Some(first_index) = self.jwt_index(kid)
        {
            return Err(BundleError::DuplicateKid { first_index, index });
        }
        if let BundleKey::Ignored { reason, .. } = &key {
            self.diagnostics.push(KeyDiagnostic {
                index,
                problem: reason.clone(),
            });
        }
        self.diagnostics.extend(
            warnings
                .into_iter()
                .map(|problem| KeyDiagnostic { index, problem }),
        );
        self.keys.push(key);
        Ok(())
    }

    /// Index of the usable `jwt-svid` entry with this `kid`.
    fn jwt_index(&self, kid: &str) -> Option<usize> {
        self.keys
            .iter()
            .position(|k| matches!(k, BundleKey::JwtAuthority { kid: k, .. } if k == kid))
    }

    /// Fails with the first publisher-rule violation, if any.
    pub fn check_strict(&self) -> Result<(), BundleError> {
        match self
            .diagnostics
            .iter()
            .find(|d| d.problem.is_publisher_violation())
        {
            Some(d) => Err(BundleError::NonConforming(d.clone())),
            None => Ok(()),
        }
    }

    /// Serialises the bundle as compact JSON. Every entry, ignored ones included, and
    /// every unknown top-level member is written back.
    pub fn to_json(&self) -> Vec<u8> {
        self.to_value().to_string().into_bytes()
    }

    /// The bundle as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut map = self.other.clone();
        map.insert(
            KEYS.to_owned(),
            Value::Array(
                self.keys
                    .iter()
                    .map(|k| Value::Object(k.jwk().0.clone()))
                    .collect(),
            ),
        );
        if let Some(seq) = self.sequence {
            map.insert(SEQUENCE.to_owned(), Value::from(seq));
        }
        if let Some(hint) = self.refresh_hint {
            map.insert(REFRESH_HINT.to_owned(), Value::from(hint));
        }
        Value::Object(map)
    }

    /// `spiffe_sequence`, if present.
    pub fn sequence(&self) -> Option<u64> {
        self.sequence
    }

    /// Sets or clears `spiffe_sequence`.
    pub fn set_sequence(&mut self, sequence: Option<u64>) {
        self.sequence = sequence;
    }

    /// `spiffe_refresh_hint` in seconds, if present.
    pub fn refresh_hint(&self) -> Option<u64> {
        self.refresh_hint
    }

    /// Sets or clears `spiffe_refresh_hint` (seconds).
    pub fn set_refresh_hint(&mut self, seconds: Option<u64>) {
        self.refresh_hint = seconds;
    }

    /// Every entry of `keys`, in document order.
    pub fn keys(&self) -> &[BundleKey] {
        &self.keys
    }

    /// Problems found in `keys` (ignored entries and tolerated publisher violations), in
    /// document order.
    pub fn diagnostics(&self) -> &[KeyDiagnostic] {
        &self.diagnostics
    }

    /// Top-level members other than `keys`, `spiffe_sequence` and `spiffe_refresh_hint`.
    pub fn other_members(&self) -> &Map<String, Value> {
        &self.other
    }

    /// DER of the X.509-SVID CA certificates (usable `x509-svid` entries), in order.
    pub fn x509_authorities(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.iter().filter_map(|k| match k {
            BundleKey::X509Authority { der, .. } => Some(der.as_slice()),
            _ => None,
        })
    }

    /// The JWT-SVID signing keys (usable `jwt-svid` entries) as `(kid, JWK)`, in order.
    /// `kid`s are unique.
    pub fn jwt_authorities(&self) -> impl Iterator<Item = (&str, &Jwk)> {
        self.keys.iter().filter_map(|k| match k {
            BundleKey::JwtAuthority { jwk, kid } => Some((kid.as_str(), jwk)),
            _ => None,
        })
    }

    /// The JWT-SVID signing key with this `kid`.
    pub fn jwt_authority(&self, kid: &str) -> Option<&Jwk> {
        self.jwt_authorities()
            .find(|(k, _)| *k == kid)
            .map(|(_, jwk)| jwk)
    }

    /// Whether the bundle has no usable key. Per §4.1.3, whether `keys` is empty (the
    /// trust domain "has revoked any previously-published keys") or no entry is usable,
    /// "workloads MUST treat all SVIDs from the trust domain as invalid and untrusted".
    pub fn is_effectively_empty(&self) -> bool {
        !self
            .keys
            .iter()
            .any(|k| !matches!(k, BundleKey::Ignored { .. }))
    }

    /// Appends an `x509-svid` entry for the CA certificate `der`. `key_params` holds the
    /// certificate's public key as JWK members (`kty` plus `crv`/`x`/`y`, `n`/`e`, …);
    /// `use` and `x5c` are set here. The entry must be conforming and usable.
    pub fn add_x509_authority(
        &mut self,
        der: &[u8],
        key_params: Map<String, Value>,
    ) -> Result<(), AddKeyError> {
        let mut members = key_params;
        members.insert("use".to_owned(), Value::from(USE_X509_SVID));
        members.insert(
            "x5c".to_owned(),
            Value::Array(vec![Value::from(STANDARD.encode(der))]),
        );
        self.add_checked(Jwk(members))
    }

    /// Appends a `jwt-svid` entry with key ID `kid`. `key_params` holds the public key as
    /// JWK members (`kty` plus `crv`/`x`/`y`, `n`/`e`, …); `use` and `kid` are set here.
    /// The entry must be conforming and usable, and `kid` new.
    pub fn add_jwt_authority(
        &mut self,
        kid: &str,
        key_params: Map<String, Value>,
    ) -> Result<(), AddKeyError> {
        if self.jwt_index(kid).is_some() {
            return Err(AddKeyError::DuplicateKid);
        }
        let mut members = key_params;
        members.insert("use".to_owned(), Value::from(USE_JWT_SVID));
        members.insert("kid".to_owned(), Value::from(kid));
        self.add_checked(Jwk(members))
    }

    /// Classifies `jwk` and appends it only if it has no problem at all.
    fn add_checked(&mut self, jwk: Jwk) -> Result<(), AddKeyError> {
        if self.keys.len() >= MAX_BUNDLE_KEYS {
            return Err(AddKeyError::TooManyKeys);
        }
        let mut warnings = Vec::new();
        let key = classify(jwk, &mut warnings);
        if let BundleKey::Ignored { reason, .. } = key {
            return Err(AddKeyError::Rejected(reason));
        }
        if let Some(problem) = warnings.into_iter().next() {
            return Err(AddKeyError::Rejected(problem));
        }
        self.keys.push(key);
        Ok(())
    }
}

impl Serialize for TrustBundle {
    /// Serialises as [`TrustBundle::to_value`] does.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TrustBundle {
    /// Deserialises with the rules of [`TrustBundle::from_json`], duplicate member
    /// detection included; the size limit is the outer document's business.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = CheckedValue::deserialize(deserializer)?;
        TrustBundle::from_value(value.0).map_err(de::Error::custom)
    }
}

/// A JSON value deserialised with duplicate object member names rejected (SPIFFE Trust
/// Domain and Bundle §6.3: with duplicate names "the behavior of software that receives
/// such an object is unpredictable").
struct CheckedValue(Value);

impl<'de> Deserialize<'de> for CheckedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

/// Visitor building a [`CheckedValue`].
struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = CheckedValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<CheckedValue, E> {
        Ok(CheckedValue(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<CheckedValue, E> {
        Ok(CheckedValue(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<CheckedValue, E> {
        Ok(CheckedValue(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<CheckedValue, E> {
        serde_json::Number::from_f64(v)
            .map(|n| CheckedValue(Value::Number(n)))
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<CheckedValue, E> {
        Ok(CheckedValue(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<CheckedValue, E> {
        Ok(CheckedValue(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<CheckedValue, E> {
        Ok(CheckedValue(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<CheckedValue, E> {
        Ok(CheckedValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CheckedValue, A::Error> {
        let mut out = Vec::new();
        while let Some(CheckedValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(CheckedValue(Value::Array(out)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<CheckedValue, A::Error> {
        let mut out = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            if out.contains_key(&name) {
                return Err(de::Error::custom("duplicate object member name"));
            }
            let CheckedValue(v) = access.next_value()?;
            out.insert(name, v);
        }
        Ok(CheckedValue(Value::Object(out)))
    }
}
