//! SPIFFE trust domains and SPIFFE IDs (SPIFFE-ID standard, section 2).
//!
//! Spec: <https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md>.
//!
//! Parsing is strict: the accepted language is exactly the one the standard says valid
//! SPIFFE IDs MUST have, which is also what go-spiffe's `spiffeid` package accepts in its
//! default build. Nothing is normalised: an input with an upper-case scheme or trust
//! domain is rejected rather than lower-cased, so that a parsed value always displays as
//! the exact bytes it was parsed from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest SPIFFE ID accepted, in bytes, scheme and separators included.
///
/// SPIFFE-ID §2.3: "SPIFFE implementations MUST support SPIFFE URIs up to 2048 bytes in
/// length and SHOULD NOT generate URIs of length greater than 2048 bytes." We support
/// exactly that and reject anything longer, so we never produce a longer one either.
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// The longest trust domain name accepted, in bytes.
///
/// SPIFFE-ID §2.3: "RFC 3986 defines a maximum length of 255 characters for the "host"
/// component of a URI; therefore a maximum length of a trust domain name is 255 bytes."
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// The scheme and authority separator every SPIFFE ID starts with.
const SCHEME_PREFIX: &str = "spiffe://";

/// Why a string is not a valid trust domain name.
///
/// Offsets are byte offsets into the string that was parsed (for a trust domain found
/// inside a SPIFFE ID, into the whole ID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustDomainError {
    /// The name is empty ("The `host` part of the authority MUST NOT be empty").
    #[error("trust domain is missing")]
    Empty,
    /// The name is longer than [`MAX_TRUST_DOMAIN_LEN`] bytes.
    #[error("trust domain is {len} bytes long; the maximum is {MAX_TRUST_DOMAIN_LEN}")]
    TooLong {
        /// Length of the offending name, in bytes.
        len: usize,
    },
    /// An upper-case letter ("The `host` part of the authority MUST be lowercase").
    #[error("trust domain must be lowercase (upper-case letter at byte {offset})")]
    Uppercase {
        /// Byte offset of the letter.
        offset: usize,
    },
    /// A `%` ("The `host` part of the authority MUST NOT contain percent-encoded
    /// characters").
    #[error("trust domain must not be percent-encoded ('%' at byte {offset})")]
    PercentEncoded {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// An `@`, i.e. a userinfo part ("The `userinfo` and `port` parts of the authority
    /// component MUST be empty").
    #[error("trust domain must not carry userinfo ('@' at byte {offset})")]
    Userinfo {
        /// Byte offset of the `@`.
        offset: usize,
    },
    /// A `:`, i.e. a port ("The `userinfo` and `port` parts of the authority component
    /// MUST be empty").
    #[error("trust domain must not carry a port (':' at byte {offset})")]
    Port {
        /// Byte offset of the `:`.
        offset: usize,
    },
    /// Any other byte outside `[a-z0-9.-_]`.
    #[error(
        "trust domain characters are limited to lowercase letters, numbers, dots, dashes, \
         and underscores (byte 0x{byte:02x} at {offset})"
    )]
    InvalidChar {
        /// Byte offset of the offending byte.
        offset: usize,
        /// The offending byte (for a non-ASCII character, its first UTF-8 byte).
        byte: u8,
    },
    /// [`TrustDomain::parse`] was handed something that looks like a SPIFFE ID
    /// (`scheme://…`); use [`TrustDomain::from_id_or_name`] for that.
    #[error("expected a trust domain name, found something that looks like a SPIFFE ID")]
    LooksLikeId,
}

/// Why a path is not a valid SPIFFE ID path.
///
/// Offsets are byte offsets into the string that was parsed (for a path inside a SPIFFE
/// ID, into the whole ID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A non-empty path that does not start with `/`.
    #[error("path must have a leading slash")]
    NoLeadingSlash,
    /// An empty segment, `//` ("The path component MUST NOT include segments that are
    /// empty …").
    #[error("path cannot contain empty segments (at byte {offset})")]
    EmptySegment {
        /// Byte offset of the `/` that starts the empty segment.
        offset: usize,
    },
    /// A `.` or `..` segment ("… or are relative path modifiers (i.e. `.`, `..`)").
    #[error("path cannot contain dot segments (at byte {offset})")]
    DotSegment {
        /// Byte offset of the `/` that starts the dot segment.
        offset: usize,
    },
    /// A trailing `/` ("The path component MUST NOT include a trailing `/`").
    #[error("path cannot have a trailing slash")]
    TrailingSlash,
    /// A `%` ("The path component MUST NOT include percent-encoded characters").
    #[error("path must not be percent-encoded ('%' at byte {offset})")]
    PercentEncoded {
        /// Byte offset of the `%`.
        offset: usize,
    },
    /// Any other byte outside `[a-zA-Z0-9.-_]` and `/` ("Individual path segments MUST
    /// contain only letters, numbers, dots, dashes, and underscores").
    #[error(
        "path segment characters are limited to letters, numbers, dots, dashes, and \
         underscores (byte 0x{byte:02x} at {offset})"
    )]
    InvalidChar {
        /// Byte offset of the offending byte.
        offset: usize,
        /// The offending byte (for a non-ASCII character, its first UTF-8 byte).
        byte: u8,
    },
}

/// Why a string is not a valid SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// The input is empty.
    #[error("SPIFFE ID cannot be empty")]
    Empty,
    /// The input is longer than [`MAX_SPIFFE_ID_LEN`] bytes.
    #[error("SPIFFE ID is {len} bytes long; the maximum is {MAX_SPIFFE_ID_LEN}")]
    TooLong {
        /// Length of the input, in bytes.
        len: usize,
    },
    /// The input does not start with `spiffe://` ("Valid SPIFFE IDs MUST have the scheme
    /// set to `spiffe`"; an upper-case scheme is rejected, not folded).
    #[error("scheme is missing or invalid (expected \"spiffe://\")")]
    WrongScheme,
    /// A `?` ("Valid SPIFFE IDs … MUST NOT include a query or fragment component").
    #[error("SPIFFE ID must not include a query ('?' at byte {offset})")]
    Query {
        /// Byte offset of the `?`.
        offset: usize,
    },
    /// A `#` ("Valid SPIFFE IDs … MUST NOT include a query or fragment component").
    #[error("SPIFFE ID must not include a fragment ('#' at byte {offset})")]
    Fragment {
        /// Byte offset of the `#`.
        offset: usize,
    },
    /// The trust domain (authority) is invalid.
    #[error(transparent)]
    TrustDomain(#[from] TrustDomainError),
    /// The path is invalid.
    #[error(transparent)]
    Path(#[from] PathError),
}

/// A SPIFFE trust domain name, e.g. `example.org`: the authority of a SPIFFE ID.
///
/// Always valid: non-empty, at most [`MAX_TRUST_DOMAIN_LEN`] bytes of `[a-z0-9.-_]`.
/// Serialises as the bare name string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrustDomain(String);

/// A SPIFFE ID, e.g. `spiffe://example.org/ns/prod/sa/web`.
///
/// Always valid and at most [`MAX_SPIFFE_ID_LEN`] bytes; displays and serialises as the
/// exact string it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpiffeId {
    /// The whole ID, `spiffe://<td><path>`.
    full: String,
    /// The trust domain part.
    trust_domain: TrustDomain,
}

/// What a scan stopped on, or `Ok` at the end of its component.
enum Stop {
    /// The component ended at the end of input.
    End,
    /// The component ended at a `/` at this offset.
    Slash(usize),
}

/// Classifies one byte of an authority; the spec's §2.1 rules, quoted on the variants.
fn check_td_byte(byte: u8, offset: usize) -> Result<(), TrustDomainError> {
    match byte {
        // "The `host` part of the authority MUST contain only letters, numbers, dots,
        // dashes, and underscores ([a-z0-9.-_])."
        b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => Ok(()),
        // "The `host` part of the authority MUST be lowercase."
        b'A'..=b'Z' => Err(TrustDomainError::Uppercase { offset }),
        // "The `host` part of the authority MUST NOT contain percent-encoded characters."
        b'%' => Err(TrustDomainError::PercentEncoded { offset }),
        // "The `userinfo` and `port` parts of the authority component MUST be empty."
        b'@' => Err(TrustDomainError::Userinfo { offset }),
        b':' => Err(TrustDomainError::Port { offset }),
        _ => Err(TrustDomainError::InvalidChar { offset, byte }),
    }
}

/// Validates a trust domain name that starts at byte `base` of the enclosing input.
///
/// `in_id` selects how `?` and `#` are reported: inside a SPIFFE ID they start a query or
/// fragment; in a bare name they are just invalid characters.
fn scan_trust_domain(bytes: &[u8], base: usize, in_id: bool) -> Result<Stop, SpiffeIdError> {
    for (i, &byte) in bytes.iter().enumerate() {
        let offset = base + i;
        match byte {
            b'/' if in_id => {
                check_td_len(i)?;
                return Ok(Stop::Slash(offset));
            }
            // "Valid SPIFFE IDs … MUST NOT include a query or fragment component."
            b'?' if in_id => return Err(SpiffeIdError::Query { offset }),
            b'#' if in_id => return Err(SpiffeIdError::Fragment { offset }),
            _ => check_td_byte(byte, offset)?,
        }
    }
    check_td_len(bytes.len())?;
    Ok(Stop::End)
}

/// The §2.1 emptiness rule and the §2.3 length limit for a trust domain of `len` bytes.
fn check_td_len(len: usize) -> Result<(), TrustDomainError> {
    if len == 0 {
        // "The `host` part of the authority MUST NOT be empty."
        Err(TrustDomainError::Empty)
    } else if len > MAX_TRUST_DOMAIN_LEN {
        // "a maximum length of a trust domain name is 255 bytes."
        Err(TrustDomainError::TooLong { len })
    } else {
        Ok(())
    }
}

/// Validates a SPIFFE ID path (empty, or `/seg/seg…`) that starts at byte `base` of the
/// enclosing input. Errors are reported in input order.
fn scan_path(path: &[u8], base: usize) -> Result<(), SpiffeIdError> {
    if path.is_empty() {
        return Ok(());
    }
    if path.first() != Some(&b'/') {
        return Err(PathError::NoLeadingSlash.into());
    }
    // Offset (relative to `path`) of the `/` opening the current segment.
    let mut seg_start = 0usize;
    for (i, &byte) in path.iter().enumerate().skip(1) {
        let offset = base + i;
        match byte {
            b'/' => {
                check_segment(path, seg_start, i, base)?;
                seg_start = i;
            }
            // "Individual path segments MUST contain only letters, numbers, dots, dashes,
            // and underscores ([a-zA-Z0-9.-_])."
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => {}
            // "The path component MUST NOT include percent-encoded characters."
            b'%' => return Err(PathError::PercentEncoded { offset }.into()),
            // "Valid SPIFFE IDs … MUST NOT include a query or fragment component."
            b'?' => return Err(SpiffeIdError::Query { offset }),
            b'#' => return Err(SpiffeIdError::Fragment { offset }),
            _ => return Err(PathError::InvalidChar { offset, byte }.into()),
        }
    }
    if seg_start + 1 == path.len() {
        // "The path component MUST NOT include a trailing `/`."
        return Err(PathError::TrailingSlash.into());
    }
    Ok(check_segment(path, seg_start, path.len(), base)?)
}

/// Checks the segment `path[start+1..end]` (`path[start]` is its `/`) for the §2.2
/// empty-segment and dot-segment rules.
fn check_segment(path: &[u8], start: usize, end: usize, base: usize) -> Result<(), PathError> {
    let segment = path.get(start + 1..end).unwrap_or_default();
    let offset = base + start;
    // "The path component MUST NOT include segments that are empty or are relative path
    // modifiers (i.e. `.`, `..`)"
    match segment {
        b"" => Err(PathError::EmptySegment { offset }),
        b"." | b".." => Err(PathError::DotSegment { offset }),
        _ => Ok(()),
    }
}

impl TrustDomain {
    /// Parses a bare trust domain name such as `example.org`.
    ///
    /// Rejects anything the SPIFFE-ID standard §2.1 forbids (see [`TrustDomainError`]),
    /// names longer than [`MAX_TRUST_DOMAIN_LEN`], and `spiffe://…` IDs (use
    /// [`TrustDomain::from_id_or_name`] to accept those too).
    pub fn parse(name: &str) -> Result<TrustDomain, TrustDomainError> {
        if name.contains(":/") {
            return Err(TrustDomainError::LooksLikeId);
        }
        match scan_trust_domain(name.as_bytes(), 0, false) {
            Ok(_) => Ok(TrustDomain(name.to_owned())),
            Err(SpiffeIdError::TrustDomain(e)) => Err(e),
            // Not produced when `in_id` is false; report conservatively.
            Err(_) => Err(TrustDomainError::LooksLikeId),
        }
    }

    /// Parses either a bare trust domain name (`example.org`) or a SPIFFE ID
    /// (`spiffe://example.org/anything`), returning the trust domain. This is the
    /// behaviour of go-spiffe's `TrustDomainFromString`: input containing `:/` is parsed
    /// as a SPIFFE ID.
    pub fn from_id_or_name(id_or_name: &str) -> Result<TrustDomain, SpiffeIdError> {
        if id_or_name.contains(":/") {
            SpiffeId::parse(id_or_name).map(|id| id.trust_domain)
        } else {
            TrustDomain::parse(id_or_name).map_err(SpiffeIdError::from)
        }
    }

    /// The trust domain name, e.g. `example.org`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SPIFFE ID of the trust domain itself, `spiffe://<name>` (no path).
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            full: format!("{SCHEME_PREFIX}{}", self.0),
            trust_domain: self.clone(),
        }
    }

    /// Consumes the value, returning the name.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl SpiffeId {
    /// Parses a SPIFFE ID such as `spiffe://example.org/ns/prod/sa/web`.
    ///
    /// Accepts exactly the IDs SPIFFE-ID §2 calls valid, up to [`MAX_SPIFFE_ID_LEN`]
    /// bytes. The first violation in input order is reported.
    pub fn parse(input: &str) -> Result<SpiffeId, SpiffeIdError> {
        if input.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        if input.len() > MAX_SPIFFE_ID_LEN {
            // "SPIFFE implementations MUST support SPIFFE URIs up to 2048 bytes in length
            // and SHOULD NOT generate URIs of length greater than 2048 bytes."
            return Err(SpiffeIdError::TooLong { len: input.len() });
        }
        // "Valid SPIFFE IDs MUST have the scheme set to `spiffe`". Matching the literal
        // `spiffe://` also requires an authority component to follow.
        let Some(rest) = input.strip_prefix(SCHEME_PREFIX) else {
            return Err(SpiffeIdError::WrongScheme);
        };
        let base = SCHEME_PREFIX.len();
        let path_start = match scan_trust_domain(rest.as_bytes(), base, true)? {
            Stop::End => input.len(),
            Stop::Slash(offset) => offset,
        };
        let path = input.get(path_start..).unwrap_or_default();
        scan_path(path.as_bytes(), path_start)?;
        let td = input.get(base..path_start).unwrap_or_default();
        Ok(SpiffeId {
            full: input.to_owned(),
            trust_domain: TrustDomain(td.to_owned()),
        })
    }

    /// Builds the SPIFFE ID `spiffe://<trust_domain><path>`.
    ///
    /// `path` is empty (the trust domain's own ID) or starts with `/` and obeys the
    /// SPIFFE-ID §2.2 rules. Errors are [`SpiffeIdError::Path`], [`SpiffeIdError::Query`],
    /// [`SpiffeIdError::Fragment`] (offsets relative to `path`) or
    /// [`SpiffeIdError::TooLong`].
    pub fn new(trust_domain: &TrustDomain, path: &str) -> Result<SpiffeId, SpiffeIdError> {
        scan_path(path.as_bytes(), 0)?;
        let len = SCHEME_PREFIX.len() + trust_domain.0.len() + path.len();
        if len > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeIdError::TooLong { len });
        }
        Ok(SpiffeId {
            full: format!("{SCHEME_PREFIX}{}{path}", trust_domain.0),
            trust_domain: trust_domain.clone(),
        })
    }

    /// Builds a SPIFFE ID from path segments, e.g. `["ns", "prod"]` → `/ns/prod`. No
    /// segments gives the trust domain's own ID. A segment containing `/` is rejected.
    pub fn from_segments<'a, I>(
        trust_domain: &TrustDomain,
        segments: I,
    ) -> Result<SpiffeId, SpiffeIdError>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut path = String::new();
        for segment in segments {
            let base = path.len() + 1;
            // A segment is checked on its own so that `""`, `.` and `..` are reported as
            // such and a `/` inside a segment is an invalid character.
            match segment {
                "" => return Err(PathError::EmptySegment { offset: base - 1 }.into()),
                "." | ".." => return Err(PathError::DotSegment { offset: base - 1 }.into()),
                _ => {}
            }
            if let Some(pos) = segment.find('/') {
                return Err(PathError::InvalidChar {
                    offset: base + pos,
                    byte: b'/',
                }
                .into());
            }
            path.push('/');
            path.push_str(segment);
            if path.len() > MAX_SPIFFE_ID_LEN {
                return Err(SpiffeIdError::TooLong { len: path.len() });
            }
        }
        SpiffeId::new(trust_domain, &path)
    }

    /// The trust domain this ID belongs to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path, `""` or `/seg/seg…`.
    pub fn path(&self) -> &str {
        let start = SCHEME_PREFIX.len() + self.trust_domain.0.len();
        self.full.get(start..).unwrap_or_default()
    }

    /// The path segments, in order (none for a trust domain ID).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path().split('/').skip(1)
    }

    /// Whether this ID is in `trust_domain`.
    pub fn member_of(&self, trust_domain: &TrustDomain) -> bool {
        self.trust_domain == *trust_domain
    }

    /// Whether this is a trust domain's own ID (`spiffe://<name>`, no path).
    pub fn is_trust_domain_id(&self) -> bool {
        self.path().is_empty()
    }

    /// The whole ID as a string.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// Consumes the value, returning the whole ID as a string.
    pub fn into_string(self) -> String {
        self.full
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl FromStr for TrustDomain {
    type Err = TrustDomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustDomain::parse(s)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpiffeId::parse(s)
    }
}

impl AsRef<str> for TrustDomain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SpiffeId {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

impl Serialize for TrustDomain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl Serialize for SpiffeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

/// Serde visitor that parses a string with `F`.
struct ParseVisitor<T, E>(fn(&str) -> Result<T, E>, &'static str);

impl<T, E: fmt::Display> serde::de::Visitor<'_> for ParseVisitor<T, E> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<DE: serde::de::Error>(self, v: &str) -> Result<T, DE> {
        (self.0)(v).map_err(DE::custom)
    }
}

impl<'de> Deserialize<'de> for TrustDomain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor(
            TrustDomain::parse,
            "a SPIFFE trust domain name",
        ))
    }
}

impl<'de> Deserialize<'de> for SpiffeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParseVisitor(SpiffeId::parse, "a SPIFFE ID string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_domain_basics() {
        let td = TrustDomain::parse("example.org").unwrap();
        assert_eq!(td.as_str(), "example.org");
        assert_eq!(td.to_string(), "example.org");
        assert_eq!(td.id().as_str(), "spiffe://example.org");
        assert!(td.id().is_trust_domain_id());
        assert_eq!("example.org".parse::<TrustDomain>().unwrap(), td);
        assert_eq!(TrustDomain::parse(""), Err(TrustDomainError::Empty));
        assert_eq!(
            TrustDomain::parse("Example.org"),
            Err(TrustDomainError::Uppercase { offset: 0 })
        );
        assert_eq!(
            TrustDomain::parse("a:1"),
            Err(TrustDomainError::Port { offset: 1 })
        );
        assert_eq!(
            TrustDomain::parse("spiffe://a"),
            Err(TrustDomainError::LooksLikeId)
        );
        assert_eq!(
            TrustDomain::parse(&"a".repeat(256)),
            Err(TrustDomainError::TooLong { len: 256 })
        );
        assert!(TrustDomain::parse(&"a".repeat(255)).is_ok());
        assert_eq!(
            TrustDomain::from_id_or_name("spiffe://a/b")
                .unwrap()
                .as_str(),
            "a"
        );
    }

    #[test]
    fn trust_domain_serde() {
        let td: TrustDomain = serde_json::from_str("\"example.org\"").unwrap();
        assert_eq!(serde_json::to_string(&td).unwrap(), "\"example.org\"");
        assert!(serde_json::from_str::<TrustDomain>("\"Example.org\"").is_err());
        assert!(serde_json::from_str::<TrustDomain>("42").is_err());
    }

    #[test]
    fn spiffe_id_basics() {
        let id = SpiffeId::parse("spiffe://example.org/ns/prod/sa/web").unwrap();
        assert_eq!(id.trust_domain().as_str(), "example.org");
        assert_eq!(id.path(), "/ns/prod/sa/web");
        assert_eq!(
            id.segments().collect::<Vec<_>>(),
            ["ns", "prod", "sa", "web"]
        );
        assert!(id.member_of(&TrustDomain::parse("example.org").unwrap()));
        assert!(!id.member_of(&TrustDomain::parse("example.com").unwrap()));
        let td = id.trust_domain().clone();
        assert_eq!(SpiffeId::new(&td, "/ns/prod/sa/web").unwrap(), id);
        assert_eq!(
            SpiffeId::from_segments(&td, ["ns", "prod", "sa", "web"]).unwrap(),
            id
        );
        assert_eq!(SpiffeId::from_segments(&td, []).unwrap(), td.id());
        assert!(SpiffeId::from_segments(&td, ["a/b"]).is_err());
        assert_eq!(td.id().segments().count(), 0);
    }

    #[test]
    fn spiffe_id_errors() {
        use PathError as P;
        use SpiffeIdError as E;
        use TrustDomainError as T;
        let cases: &[(&str, SpiffeIdError)] = &[
            ("", E::Empty),
            ("SPIFFE://a", E::WrongScheme),
            ("spiffe:/a", E::WrongScheme),
            ("spiffe://", E::TrustDomain(T::Empty)),
            ("spiffe:///a", E::TrustDomain(T::Empty)),
            ("spiffe://A", E::TrustDomain(T::Uppercase { offset: 9 })),
            ("spiffe://u@a", E::TrustDomain(T::Userinfo { offset: 10 })),
            ("spiffe://a:8", E::TrustDomain(T::Port { offset: 10 })),
            (
                "spiffe://a%41",
                E::TrustDomain(T::PercentEncoded { offset: 10 }),
            ),
            ("spiffe://a?q", E::Query { offset: 10 }),
            ("spiffe://a/b#f", E::Fragment { offset: 12 }),
            ("spiffe://a/", E::Path(P::TrailingSlash)),
            ("spiffe://a/b/", E::Path(P::TrailingSlash)),
            ("spiffe://a//b", E::Path(P::EmptySegment { offset: 10 })),
            ("spiffe://a/./b", E::Path(P::DotSegment { offset: 10 })),
            ("spiffe://a/b/..", E::Path(P::DotSegment { offset: 12 })),
            ("spiffe://a/b%20", E::Path(P::PercentEncoded { offset: 12 })),
            (
                "spiffe://a/b c",
                E::Path(P::InvalidChar {
                    offset: 12,
                    byte: b' ',
                }),
            ),
            (
                "spiffe://a/é",
                E::Path(P::InvalidChar {
                    offset: 11,
                    byte: 0xc3,
                }),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(SpiffeId::parse(input).as_ref(), Err(want), "{input:?}");
        }
        let long = format!("spiffe://a/{}", "b".repeat(MAX_SPIFFE_ID_LEN - 11));
        assert_eq!(long.len(), MAX_SPIFFE_ID_LEN);
        assert!(SpiffeId::parse(&long).is_ok());
        let longer = format!("{long}c");
        assert_eq!(
            SpiffeId::parse(&longer),
            Err(E::TooLong {
                len: MAX_SPIFFE_ID_LEN + 1
            })
        );
        assert_eq!(
            SpiffeId::new(&TrustDomain::parse("a").unwrap(), "x"),
            Err(E::Path(P::NoLeadingSlash))
        );
    }
}
