//! # in-toto Statement v1
//!
//! This module owns the in-toto attestation framework's Statement layer, version 1
//! ([`Statement`], `_type` = `https://in-toto.io/Statement/v1`), its common field
//! types ([`ResourceDescriptor`], [`DigestSet`], TypeURI and Timestamp checks), and
//! the step from a DSSE envelope whose payload type is
//! `application/vnd.in-toto+json` to a Statement ([`Statement::from_verified`]).
//!
//! Specification: in-toto attestation framework v1.2, `spec/v1/statement.md`,
//! `resource_descriptor.md`, `digest_set.md`, `field_types.md`, `envelope.md` and the
//! parsing rules of `spec/v1/README.md` (<https://github.com/in-toto/attestation>).
//! Sentences of the spec are quoted beside the code that implements them.
//!
//! Parsing is strict where the spec is: duplicate JSON object keys are rejected
//! anywhere in the document (JSON parsers disagree on which one wins), digests of
//! the named standard algorithms must be lowercase hex of the algorithm's length,
//! and the document is at most [`MAX_STATEMENT_JSON_LEN`] bytes with at most
//! [`MAX_SUBJECTS`] subjects. Unrecognised fields are kept (in the `extra` maps) and
//! written back, so a statement round-trips.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dsse::{Envelope, VerifiedPayload};

/// The `_type` of every Statement of this version: "Always
/// `https://in-toto.io/Statement/v1` for this version of the spec."
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";

/// The DSSE payload type of a JSON in-toto Statement.
///
/// envelope.md: "`payloadType` MUST be set to
/// `application/vnd.in-toto.<predicate>+json` or to `application/vnd.in-toto+json`."
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Largest Statement JSON document accepted, in bytes (16 MiB).
pub const MAX_STATEMENT_JSON_LEN: usize = 16 * 1024 * 1024;

/// Most subjects a Statement may list.
pub const MAX_SUBJECTS: usize = 65_536;

/// Most entries a single [`DigestSet`] may hold.
pub const MAX_DIGESTS_PER_SET: usize = 64;

/// A set of digests of one artifact: algorithm name → encoded digest.
///
/// digest_set.md: "A DigestSet is represented as a _JSON object_ mapping algorithm
/// name to a string encoding of the digest using that algorithm. The named standard
/// algorithms below use lowercase hex encoding."
pub type DigestSet = BTreeMap<String, String>;

/// A ResourceDescriptor: "A size-efficient description of any software artifact or
/// resource (mutable or immutable)."
///
/// "Though all fields are optional, a ResourceDescriptor MUST specify one of `uri`,
/// `digest` or `content` at a minimum." Fields are kept as written (an empty string
/// stays an empty string) so that documents round-trip; the accessors apply the
/// rule that "Unset, null, and empty field values MUST be interpreted equivalently".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// "Machine-readable identifier for distinguishing between descriptors."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// "A URI used to identify the resource or artifact globally."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// "A set of cryptographic digests of the contents of the resource or artifact."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestSet>,
    /// "The contents of the resource or artifact", base64 as written in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// "The location of the described resource or artifact, if different from the `uri`."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// "The MIME Type (i.e., media type) of the described resource or artifact."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// "additional information or metadata about the resource or artifact": any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
    /// Unrecognised (extension) fields, kept so the descriptor round-trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An in-toto Statement v1.
///
/// "The Statement is the middle layer of the attestation, binding it to a
/// particular subject and unambiguously identifying the types of the Predicate."
/// Build one with [`Statement::new`] or parse one with [`Statement::from_json`];
/// [`Statement::validate`] checks the rules below, and [`Statement::to_json`] runs it
/// before writing. The serde impls alone do not validate and do not reject duplicate
/// keys: untrusted bytes go through [`Statement::from_json`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// "Identifier for the schema of the Statement."
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// "Set of software artifacts that the attestation applies to."
    pub subject: Vec<ResourceDescriptor>,
    /// "URI identifying the type of the Predicate."
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// "Additional parameters of the Predicate. Unset is treated the same as
    /// set-but-empty."
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<Map<String, Value>>,
    /// Unrecognised (extension) fields, kept so the statement round-trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One (subject, algorithm, digest) triple, as yielded by [`Statement::subject_digests`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubjectDigest<'a> {
    /// Index of the subject in [`Statement::subject`].
    pub subject_index: usize,
    /// The subject's name, if set and non-empty.
    pub name: Option<&'a str>,
    /// The algorithm name (the DigestSet key), e.g. `sha256`.
    pub algorithm: &'a str,
    /// The encoded digest (lowercase hex for the standard algorithms).
    pub value: &'a str,
}

/// Why a [`DigestSet`] entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The set has no entry.
    #[error("digest set is empty")]
    Empty,
    /// The set has more than [`MAX_DIGESTS_PER_SET`] entries.
    #[error("digest set has more than {max} entries")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// An algorithm name is the empty string.
    #[error("digest set has an empty algorithm name")]
    EmptyAlgorithm,
    /// A digest value is empty.
    #[error("digest for {algorithm} is empty")]
    EmptyValue {
        /// The algorithm name.
        algorithm: String,
    },
    /// A standard algorithm's digest is not lowercase hexadecimal.
    #[error("digest for {algorithm} is not lowercase hex")]
    NotLowercaseHex {
        /// The algorithm name.
        algorithm: String,
    },
    /// A standard algorithm's digest has a length the algorithm cannot produce.
    #[error("digest for {algorithm} has {len} hex digits, which that algorithm does not produce")]
    WrongLength {
        /// The algorithm name.
        algorithm: String,
        /// The number of hex digits found.
        len: usize,
    },
}

/// Why a [`ResourceDescriptor`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceDescriptorError {
    /// None of `uri`, `digest` and `content` is set: "a ResourceDescriptor MUST
    /// specify one of `uri`, `digest` or `content` at a minimum."
    #[error("resource descriptor has none of uri, digest and content")]
    Empty,
    /// The `digest` field is invalid.
    #[error("invalid digest: {0}")]
    Digest(#[source] DigestError),
    /// `content` is not base64 (standard or URL-safe, padded).
    #[error("content is not base64")]
    ContentBase64,
}

/// Why a Statement was rejected by [`Statement::from_json`], [`Statement::validate`]
/// or [`Statement::to_json`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// The document is longer than [`MAX_STATEMENT_JSON_LEN`].
    #[error("statement is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the rejected document.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// The document is not JSON, or a field has the wrong JSON type, or a required
    /// field (`_type`, `subject`, `predicateType`) is missing.
    #[error("statement is not valid JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    /// A JSON object in the document has the same key twice.
    #[error("statement JSON has a duplicate object key")]
    DuplicateKey,
    /// `_type` is not `https://in-toto.io/Statement/v1`.
    #[error("statement _type is {0:?}, not {STATEMENT_TYPE_V1}")]
    UnsupportedType(String),
    /// `subject` is empty.
    #[error("statement has no subject")]
    NoSubject,
    /// `subject` has more than [`MAX_SUBJECTS`] entries.
    #[error("statement has more than {max} subjects")]
    TooManySubjects {
        /// The limit.
        max: usize,
    },
    /// A subject has no `digest`: "Each element MUST have `digest` set."
    #[error("subject {index} has no digest")]
    SubjectWithoutDigest {
        /// Index of the subject.
        index: usize,
    },
    /// A subject is not a valid ResourceDescriptor (bad digest or content).
    #[error("subject {index} is invalid: {source}")]
    InvalidSubject {
        /// Index of the subject.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: ResourceDescriptorError,
    },
    /// `predicateType` is empty or not a case-normalized URI.
    #[error("predicateType {0:?} is not a TypeURI")]
    InvalidPredicateType(String),
}

/// Why [`Statement::from_verified`] or [`Statement::from_envelope_unverified`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeStatementError {
    /// The envelope's payload type is not an in-toto JSON type
    /// (`application/vnd.in-toto+json` or `application/vnd.in-toto.<predicate>+json`).
    #[error("DSSE payload type {0:?} is not an in-toto JSON statement")]
    WrongPayloadType(String),
    /// The payload is not a valid Statement.
    #[error("DSSE payload is not a valid in-toto statement: {0}")]
    Statement(#[from] StatementError),
}

/// Expected lowercase-hex lengths, in hex digits, of the standard algorithms.
///
/// digest_set.md, "Supported algorithms": "Standard cryptographic hash algorithms
/// using the NIST names (converting to lowercase and replacing `-` with `_`) as keys
/// and lowercase hex-encoded values". Variable-output algorithms (SHAKE, BLAKE2,
/// GOST) accept any even length up to their maximum. `gitCommit`, `gitTree`,
/// `gitBlob`, `gitTag`: "The lowercase hex SHA-1 (40 character) or SHA-256 (64
/// character)". `dirHash1`: "output in lowercase hexadecimal".
enum HexLength {
    /// Exactly one of these lengths.
    OneOf(&'static [usize]),
    /// Any even, non-zero length up to this many hex digits.
    UpTo(usize),
}

/// The length rule of a standard algorithm, or `None` for an unrecognised one.
fn standard_hex_length(algorithm: &str) -> Option<HexLength> {
    use HexLength::{OneOf, UpTo};
    Some(match algorithm {
        "md5" => OneOf(&[32]),
        "sha1" | "ripemd160" => OneOf(&[40]),
        "sha224" | "sha512_224" | "sha3_224" => OneOf(&[56]),
        "sha256" | "sha512_256" | "sha3_256" | "sm3" | "dirHash1" | "dirHash" => OneOf(&[64]),
        "sha384" | "sha3_384" => OneOf(&[96]),
        "sha512" | "sha3_512" => OneOf(&[128]),
        "gost" => OneOf(&[64, 128]),
        "gitCommit" | "gitTree" | "gitBlob" | "gitTag" => OneOf(&[40, 64]),
        "blake2b" => UpTo(128),
        "blake2s" => UpTo(64),
        "shake128" | "shake256" => UpTo(1024),
        _ => return None,
    })
}

/// Whether `s` is non-empty lowercase hexadecimal.
fn is_lowercase_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Validates a DigestSet: non-empty, bounded, and every standard algorithm's value
/// lowercase hex of a length that algorithm produces.
///
/// "Consumers MUST only accept algorithms that they consider secure and MUST ignore
/// unrecognized or unaccepted algorithms": an unrecognised algorithm (e.g.
/// `{"somecoolhash": "abcd"}` or an `arn`) is accepted here with any non-empty
/// value, and simply never matches in [`Statement::matches_sha256`].
pub fn validate_digest_set(set: &DigestSet) -> Result<(), DigestError> {
    if set.is_empty() {
        return Err(DigestError::Empty);
    }
    if set.len() > MAX_DIGESTS_PER_SET {
        return Err(DigestError::TooMany {
            max: MAX_DIGESTS_PER_SET,
        });
    }
    for (algorithm, value) in set {
        if algorithm.is_empty() {
            return Err(DigestError::EmptyAlgorithm);
        }
        if value.is_empty() {
            return Err(DigestError::EmptyValue {
                algorithm: algorithm.clone(),
            });
        }
        let Some(rule) = standard_hex_length(algorithm) else {
            continue;
        };
        if !is_lowercase_hex(value) {
            return Err(DigestError::NotLowercaseHex {
                algorithm: algorithm.clone(),
            });
        }
        let len = value.len();
        let ok = match rule {
            HexLength::OneOf(lengths) => lengths.contains(&len),
            HexLength::UpTo(max) => len % 2 == 0 && len <= max,
        };
        if !ok {
            return Err(DigestError::WrongLength {
                algorithm: algorithm.clone(),
                len,
            });
        }
    }
    Ok(())
}

/// Returns `Some(s)` for a non-empty string: "Unset, null, and empty field values
/// MUST be interpreted equivalently."
fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl ResourceDescriptor {
    /// A descriptor of an artifact by name and digest set.
    pub fn with_digest(name: impl Into<String>, digest: DigestSet) -> ResourceDescriptor {
        ResourceDescriptor {
            name: Some(name.into()),
            digest: Some(digest),
            ..ResourceDescriptor::default()
        }
    }

    /// The name, if set and non-empty.
    pub fn name(&self) -> Option<&str> {
        non_empty(&self.name)
    }

    /// The URI, if set and non-empty.
    pub fn uri(&self) -> Option<&str> {
        non_empty(&self.uri)
    }

    /// The digest set, if set and non-empty.
    pub fn digest(&self) -> Option<&DigestSet> {
        self.digest.as_ref().filter(|d| !d.is_empty())
    }

    /// The decoded `content`, if set and non-empty; `Err` if it is not base64.
    pub fn content_bytes(&self) -> Result<Option<Vec<u8>>, ResourceDescriptorError> {
        match non_empty(&self.content) {
            None => Ok(None),
            Some(s) => decode_content(s).map(Some),
        }
    }

    /// Checks the descriptor: one of `uri`, `digest`, `content` set, a valid digest
    /// set if present, base64 content if present.
    pub fn validate(&self) -> Result<(), ResourceDescriptorError> {
        if self.uri().is_none() && self.digest().is_none() && non_empty(&self.content).is_none() {
            return Err(ResourceDescriptorError::Empty);
        }
        if let Some(digest) = self.digest() {
            validate_digest_set(digest).map_err(ResourceDescriptorError::Digest)?;
        }
        self.content_bytes()?;
        Ok(())
    }
}

/// Decodes `content`: protobuf-JSON `bytes`, standard or URL-safe base64, padded.
fn decode_content(s: &str) -> Result<Vec<u8>, ResourceDescriptorError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    STANDARD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .map_err(|_| ResourceDescriptorError::ContentBase64)
}

/// Whether `s` is a TypeURI / ResourceURI in the case-normalized form the spec
/// demands.
///
/// field_types.md: "Uniform Resource Identifier as specified in RFC 3986 [...]
/// A TypeURI is represented as a case sensitive _string_ and MUST be case normalized
/// as per section 6.2.2.1 of RFC 3986, meaning that the scheme and authority MUST be
/// in lowercase." This checks an RFC 3986 scheme (`ALPHA *( ALPHA / DIGIT / "+" /
/// "-" / "." ) ":"`) in lowercase, a lowercase host when there is an authority, and
/// no whitespace or control characters; it is not a full URI grammar.
pub(crate) fn is_type_uri(s: &str) -> bool {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.bytes();
    if !matches!(scheme_chars.next(), Some(b'a'..=b'z')) {
        return false;
    }
    if !scheme_chars.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'+' | b'-' | b'.')) {
        return false;
    }
    if let Some(after) = rest.strip_prefix("//") {
        let authority = after.split(['/', '?', '#']).next().unwrap_or_default();
        // Userinfo is case-sensitive; the host is what must be lowercase.
        let host = authority.rsplit('@').next().unwrap_or_default();
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return false;
        }
    }
    true
}

/// Whether `s` is an in-toto Timestamp: "A timestamp is represented as a _string_
/// and MUST be in RFC 3339 format in the UTC timezone ("Z")."
///
/// Accepts `YYYY-MM-DDThh:mm:ss[.fraction]Z` with a real calendar date (leap years
/// included), hours 00–23, minutes 00–59 and seconds 00–60 (RFC 3339 allows a leap
/// second). No clock is read.
pub(crate) fn is_utc_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter().try_fold(0u32, |acc, d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0..4),
        digits(5..7),
        digits(8..10),
        digits(11..13),
        digits(14..16),
        digits(17..19),
    ) else {
        return false;
    };
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return false;
    }
    // time-secfrac = "." 1*DIGIT, then "Z".
    let rest = b.get(19..).unwrap_or_default();
    let zone = match rest.strip_prefix(b".") {
        Some(frac) => {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return false;
            }
            frac.get(n..).unwrap_or_default()
        }
        None => rest,
    };
    if zone != b"Z" {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day) && hour <= 23 && minute <= 59 && second <= 60
}

/// Marker message of the duplicate-key error raised inside serde.
const DUPLICATE_KEY: &str = "duplicate JSON object key";

/// A JSON value parsed with duplicate object keys rejected.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

/// Builds a [`Value`] like serde_json's own visitor, but fails on a repeated key.
struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Why [`parse_strict_json`] failed.
#[derive(Debug)]
pub(crate) enum StrictJsonError {
    /// Not JSON (syntax, depth over serde_json's 128 levels, trailing data).
    Json(serde_json::Error),
    /// An object repeats a key.
    DuplicateKey,
}

/// Parses JSON into a [`Value`], rejecting duplicate object keys at any depth.
/// Nesting is bounded by serde_json's recursion limit (128).
pub(crate) fn parse_strict_json(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    serde_json::from_slice::<StrictValue>(bytes)
        .map(|StrictValue(v)| v)
        .map_err(|e| {
            if e.to_string().starts_with(DUPLICATE_KEY) {
                StrictJsonError::DuplicateKey
            } else {
                StrictJsonError::Json(e)
            }
        })
}

/// Whether a DSSE payload type announces a JSON in-toto Statement.
///
/// envelope.md: "`payloadType` MUST be set to
/// `application/vnd.in-toto.<predicate>+json` or to `application/vnd.in-toto+json`."
/// `<predicate>` "MUST match the predicate specification filename without the file
/// extension"; those names are lowercase letters, digits, `_` and `-`.
pub fn is_in_toto_payload_type(payload_type: &str) -> bool {
    if payload_type == PAYLOAD_TYPE {
        return true;
    }
    payload_type
        .strip_prefix("application/vnd.in-toto.")
        .and_then(|rest| rest.strip_suffix("+json"))
        .is_some_and(|predicate| {
            !predicate.is_empty()
                && predicate
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        })
}

impl Statement {
    /// A v1 Statement about `subject`, with the given predicate.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: Option<Map<String, Value>>,
    ) -> Statement {
        Statement {
            statement_type: STATEMENT_TYPE_V1.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
            extra: Map::new(),
        }
    }

    /// Parses and validates a Statement from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Statement, StatementError> {
        if bytes.len() > MAX_STATEMENT_JSON_LEN {
            return Err(StatementError::TooLarge {
                len: bytes.len(),
                max: MAX_STATEMENT_JSON_LEN,
            });
        }
        let value = parse_strict_json(bytes).map_err(|e| match e {
            StrictJsonError::Json(e) => StatementError::Json(e),
            StrictJsonError::DuplicateKey => StatementError::DuplicateKey,
        })?;
        Statement::from_value(value)
    }

    /// Validates and converts an already parsed JSON value (duplicate keys cannot be
    /// detected at this stage: prefer [`Statement::from_json`] for untrusted bytes).
    pub fn from_value(value: Value) -> Result<Statement, StatementError> {
        // Refuse an oversized subject array before building typed descriptors.
        if let Some(Value::Array(subjects)) = value.get("subject")
            && subjects.len() > MAX_SUBJECTS
        {
            return Err(StatementError::TooManySubjects { max: MAX_SUBJECTS });
        }
        let statement: Statement = serde_json::from_value(value).map_err(StatementError::Json)?;
        statement.validate()?;
        Ok(statement)
    }

    /// Checks the rules of statement.md: the `_type`, a non-empty `subject` whose
    /// every element has a valid `digest`, and a `predicateType` that is a TypeURI.
    pub fn validate(&self) -> Result<(), StatementError> {
        // "Always `https://in-toto.io/Statement/v1` for this version of the spec."
        if self.statement_type != STATEMENT_TYPE_V1 {
            return Err(StatementError::UnsupportedType(self.statement_type.clone()));
        }
        // "Set of software artifacts that the attestation applies to." An empty set
        // would attest nothing (and "Unset, null, and empty" are equivalent).
        if self.subject.is_empty() {
            return Err(StatementError::NoSubject);
        }
        if self.subject.len() > MAX_SUBJECTS {
            return Err(StatementError::TooManySubjects { max: MAX_SUBJECTS });
        }
        for (index, subject) in self.subject.iter().enumerate() {
            // "Each element MUST have `digest` set."
            if subject.digest().is_none() {
                return Err(StatementError::SubjectWithoutDigest { index });
            }
            subject
                .validate()
                .map_err(|source| StatementError::InvalidSubject { index, source })?;
        }
        // "`predicateType` _string (TypeURI), required_"
        if !is_type_uri(&self.predicate_type) {
            return Err(StatementError::InvalidPredicateType(
                self.predicate_type.clone(),
            ));
        }
        Ok(())
    }

    /// Validates, then serializes as compact JSON (extension fields included).
    pub fn to_json(&self) -> Result<Vec<u8>, StatementError> {
        self.validate()?;
        serde_json::to_vec(self).map_err(StatementError::Json)
    }

    /// Every (subject, algorithm, digest) triple, subjects in order.
    pub fn subject_digests(&self) -> impl Iterator<Item = SubjectDigest<'_>> + '_ {
        self.subject
            .iter()
            .enumerate()
            .flat_map(|(subject_index, subject)| {
                subject
                    .digest
                    .iter()
                    .flatten()
                    .map(move |(algorithm, value)| SubjectDigest {
                        subject_index,
                        name: subject.name(),
                        algorithm,
                        value,
                    })
            })
    }

    /// The first subject whose `sha256` digest equals `digest`.
    ///
    /// "Two DigestSets SHOULD be considered matching if ANY acceptable field
    /// matches"; only `sha256` is considered here. "IMPORTANT: Subject artifacts
    /// are matched purely by digest, regardless of content type."
    pub fn subject_with_sha256(&self, digest: &[u8; 32]) -> Option<&ResourceDescriptor> {
        let wanted = hex::encode(digest);
        self.subject.iter().find(|s| {
            s.digest
                .as_ref()
                .and_then(|d| d.get("sha256"))
                .is_some_and(|v| *v == wanted)
        })
    }

    /// Whether some subject's `sha256` digest equals `digest`.
    pub fn matches_sha256(&self, digest: &[u8; 32]) -> bool {
        self.subject_with_sha256(digest).is_some()
    }

    /// The Statement in a **verified** DSSE payload.
    ///
    /// dsse protocol.md, after signature verification: "Reject if PAYLOAD_TYPE is
    /// not a supported type. Parse SERIALIZED_BODY according to PAYLOAD_TYPE.
    /// Reject if the parsing fails." The bytes parsed are the ones that were
    /// verified (no re-parse of the envelope).
    pub fn from_verified(
        verified: &VerifiedPayload<'_>,
    ) -> Result<Statement, EnvelopeStatementError> {
        Statement::from_payload(verified.payload_type(), verified.payload())
    }

    /// The Statement in a DSSE envelope whose signatures have **not** been checked
    /// here (for example because the Sigstore bundle holding it is verified
    /// elsewhere). Anything trusted must come from [`Statement::from_verified`].
    pub fn from_envelope_unverified(
        envelope: &Envelope,
    ) -> Result<Statement, EnvelopeStatementError> {
        Statement::from_payload(envelope.payload_type(), envelope.unverified_payload())
    }

    /// Checks the payload type, then parses the payload.
    fn from_payload(
        payload_type: &str,
        payload: &[u8],
    ) -> Result<Statement, EnvelopeStatementError> {
        if !is_in_toto_payload_type(payload_type) {
            return Err(EnvelopeStatementError::WrongPayloadType(
                payload_type.to_owned(),
            ));
        }
        Ok(Statement::from_json(payload)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for ok in [
            "1985-04-12T23:20:50.52Z",
            "2000-02-29T00:00:00Z",
            "2016-12-31T23:59:60Z",
            "2024-05-21T22:56:17.123456789Z",
        ] {
            assert!(is_utc_timestamp(ok), "{ok}");
        }
        for bad in [
            "",
            "1985-04-12T23:20:50.52",
            "1985-04-12T23:20:50+00:00",
            "1985-04-12 23:20:50Z",
            "1985-04-12t23:20:50z",
            "1900-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-00-01T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-04-30T24:00:00Z",
            "2023-04-30T23:60:00Z",
            "2023-04-30T23:59:61Z",
            "2023-04-30T23:59:59.Z",
            "2023-04-30T23:59:59ZZ",
            "+023-04-30T23:59:59Z",
            "2023-4-30T23:59:59Z",
            "２０２３-04-30T23:59:59Z",
        ] {
            assert!(!is_utc_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn type_uris() {
        for ok in [
            "https://slsa.dev/provenance/v1",
            "https://in-toto.io/Statement/v1",
            "pkg:deb/debian/stunnel@5.50-3?arch=amd64",
            "https://User@example.com/Path",
        ] {
            assert!(is_type_uri(ok), "{ok}");
        }
        for bad in [
            "",
            "no-scheme",
            "HTTPS://x.dev/",
            "https://SLSA.dev/p",
            "1http://x",
            "https://x y",
        ] {
            assert!(!is_type_uri(bad), "{bad}");
        }
    }

    #[test]
    fn digest_rules() {
        let set = |k: &str, v: &str| DigestSet::from([(k.to_owned(), v.to_owned())]);
        assert!(validate_digest_set(&set("sha256", &"a".repeat(64))).is_ok());
        assert!(validate_digest_set(&set("sha512", &"0".repeat(128))).is_ok());
        assert!(validate_digest_set(&set("gitCommit", &"0".repeat(40))).is_ok());
        assert!(validate_digest_set(&set("gitCommit", &"0".repeat(64))).is_ok());
        assert!(
            validate_digest_set(&set("arn", "arn:aws:ec2:region:123:image/ami-123abcd")).is_ok()
        );
        assert_eq!(
            validate_digest_set(&set("sha256", &"A".repeat(64))),
            Err(DigestError::NotLowercaseHex {
                algorithm: "sha256".into()
            })
        );
        assert_eq!(
            validate_digest_set(&set("sha256", &"a".repeat(63))),
            Err(DigestError::WrongLength {
                algorithm: "sha256".into(),
                len: 63
            })
        );
        assert_eq!(
            validate_digest_set(&set("sha1", &"a".repeat(64))),
            Err(DigestError::WrongLength {
                algorithm: "sha1".into(),
                len: 64
            })
        );
        assert_eq!(
            validate_digest_set(&DigestSet::new()),
            Err(DigestError::Empty)
        );
        assert_eq!(
            validate_digest_set(&set("x", "")),
            Err(DigestError::EmptyValue {
                algorithm: "x".into()
            })
        );
    }

    #[test]
    fn payload_types() {
        assert!(is_in_toto_payload_type("application/vnd.in-toto+json"));
        assert!(is_in_toto_payload_type(
            "application/vnd.in-toto.provenance+json"
        ));
        assert!(!is_in_toto_payload_type("application/vnd.in-toto.+json"));
        assert!(!is_in_toto_payload_type("application/json"));
        assert!(!is_in_toto_payload_type("application/vnd.in-toto+dsse"));
        assert!(!is_in_toto_payload_type(
            "application/vnd.in-toto.Provenance+json"
        ));
    }

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        let doc = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa","sha256":"bb"}}],"predicateType":"x:y"}"#;
        assert!(matches!(
            Statement::from_json(doc),
            Err(StatementError::DuplicateKey)
        ));
    }
}
