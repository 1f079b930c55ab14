//! The provenance index's vocabulary: what a verified record is indexed under, and how a
//! search matches records.
//!
//! A node indexes every record of the logs it holds once, at ingest, after
//! [`crate::provenance::Record::open`] checked it; searches then read the index and
//! never re-verify. The node stores the index (redb); this module decides what is
//! stored ([`IndexedRecord`]), under which keys ([`Facet::key`]) and what a query
//! matches ([`SearchQuery`]), so that every store and the simulator agree on it.
//!
//! Keys are SHA-256 over a context string, the facet's tag and its value: fixed-width
//! keys for any value length, and no value of one facet can collide with another's.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::policy::Pattern;
use crate::provenance::Record;
use crate::spiffe::TrustDomain;

/// Domain separation of index keys.
const KEY_CONTEXT: &[u8] = b"provmesh index key v1\n";

/// The longest value a search criterion may carry, in bytes.
pub const MAX_CRITERION_BYTES: usize = 2048;

/// The most records one search page holds.
pub const MAX_PAGE_SIZE: usize = 100;

/// The page size when the caller gives none.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// The most index rows one page may read: a page of a query whose criteria match few of
/// the rows it walks ends early, with a token to go on, so that no request does unbounded
/// work.
pub const MAX_ROWS_SCANNED_PER_PAGE: usize = 10_000;

/// One artifact a record speaks of, as indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedSubject {
    /// Its name in the statement (empty when it has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its SHA-256 digest, lowercase hex (empty when the subject names none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
}

/// What the index keeps of one verified record: enough to answer a search; the record
/// itself (bundle, statement) is read from its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedRecord {
    /// The trust domain whose log holds it.
    pub trust_domain: String,
    /// That log's origin.
    pub log_origin: String,
    /// Its index in the log.
    pub log_index: u64,
    /// When the log integrated it, Unix seconds.
    pub integrated_time: i64,
    /// `hashedrekord` or `dsse`.
    pub kind: String,
    /// The SPIFFE ID its certificate was issued to.
    pub signer: String,
    /// The SLSA provenance's builder id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder_id: Option<String>,
    /// The statement's predicate type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// The artifacts it speaks of.
    pub subjects: Vec<IndexedSubject>,
}

/// Why stored index bytes are not an [`IndexedRecord`] (a damaged index: rebuild it).
#[derive(Debug, thiserror::Error)]
#[error("an index row does not decode: {0}")]
pub struct IndexDecodeError(#[from] serde_json::Error);

impl IndexedRecord {
    /// What the index keeps of `record`, entry `log_index` of the log `log_origin` of
    /// `trust_domain`, integrated at `integrated_time`.
    pub fn of(
        record: &Record,
        trust_domain: &TrustDomain,
        log_origin: &str,
        log_index: u64,
        integrated_time: i64,
    ) -> IndexedRecord {
        IndexedRecord {
            trust_domain: trust_domain.to_string(),
            log_origin: log_origin.to_owned(),
            log_index,
            integrated_time,
            kind: record.kind().as_str().to_owned(),
            signer: record.signer.to_string(),
            builder_id: record.builder_id.clone(),
            predicate_type: record.predicate_type().map(str::to_owned),
            subjects: record
                .subjects
                .iter()
                .map(|s| IndexedSubject {
                    name: s.name.clone().unwrap_or_default(),
                    sha256: s
                        .digests
                        .iter()
                        .find(|(algorithm, _)| algorithm == "sha256")
                        .map(|(_, value)| value.to_ascii_lowercase())
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing owned strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads the stored form.
    pub fn decode(bytes: &[u8]) -> Result<IndexedRecord, IndexDecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Every facet the record is found under, without repeats.
    pub fn facets(&self) -> Vec<Facet<'_>> {
        let mut facets = vec![
            Facet::TrustDomain(&self.trust_domain),
            Facet::Signer(&self.signer),
        ];
        if let Some(builder) = &self.builder_id {
            facets.push(Facet::Builder(builder));
        }
        if let Some(predicate_type) = &self.predicate_type {
            facets.push(Facet::PredicateType(predicate_type));
        }
        for subject in &self.subjects {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(&subject.sha256, &mut digest).is_ok() {
                facets.push(Facet::Sha256(digest));
            }
            if !subject.name.is_empty() {
                facets.push(Facet::SubjectName(&subject.name));
            }
        }
        let mut seen = std::collections::HashSet::new();
        facets.retain(|f| seen.insert(f.key()));
        facets
    }
}

/// One value a record is found under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet<'a> {
    /// The SHA-256 digest of an artifact it speaks of.
    Sha256([u8; 32]),
    /// Its signer's SPIFFE ID.
    Signer(&'a str),
    /// Its SLSA builder id.
    Builder(&'a str),
    /// Its predicate type.
    PredicateType(&'a str),
    /// The name of a subject.
    SubjectName(&'a str),
    /// The trust domain whose log holds it.
    TrustDomain(&'a str),
}

impl Facet<'_> {
    /// The index key.
    pub fn key(&self) -> [u8; 32] {
        let (tag, value): (&[u8], &[u8]) = match self {
            Facet::Sha256(digest) => (b"sha256", digest),
            Facet::Signer(id) => (b"signer", id.as_bytes()),
            Facet::Builder(id) => (b"builder", id.as_bytes()),
            Facet::PredicateType(t) => (b"predicate-type", t.as_bytes()),
            Facet::SubjectName(name) => (b"subject-name", name.as_bytes()),
            Facet::TrustDomain(td) => (b"trust-domain", td.as_bytes()),
        };
        let mut hasher = Sha256::new();
        hasher.update(KEY_CONTEXT);
        hasher.update(tag);
        hasher.update([0]);
        hasher.update(value);
        hasher.finalize().into()
    }
}

/// What a search asks for: every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// The signer's SPIFFE ID, exact or a prefix (`spiffe://org.example/ci/*`).
    pub signer: Option<Pattern>,
    /// The SLSA builder id, exact or a prefix.
    pub builder: Option<Pattern>,
    /// The predicate type, exact.
    pub predicate_type: Option<String>,
    /// A subject's name, exact.
    pub subject_name: Option<String>,
    /// A subject's SHA-256 digest.
    pub subject_sha256: Option<[u8; 32]>,
    /// The trust domain whose log holds the record.
    pub trust_domain: Option<TrustDomain>,
    /// Integrated at or after this Unix time.
    pub integrated_after: Option<i64>,
    /// Integrated before this Unix time.
    pub integrated_before: Option<i64>,
}

/// Why a search query is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A criterion is longer than [`MAX_CRITERION_BYTES`].
    #[error("{field} is longer than {MAX_CRITERION_BYTES} bytes")]
    TooLong {
        /// Which criterion.
        field: &'static str,
    },
    /// The trust domain is not a SPIFFE trust domain name.
    #[error("trust domain {0:?} is not a SPIFFE trust domain name")]
    TrustDomain(String),
    /// The digest is not `sha256:` and 64 hex digits.
    #[error("subject digest {0:?} is not sha256: and 64 hex digits")]
    Digest(String),
    /// The time range is empty.
    #[error(
        "the time range is empty: integrated_after {after} is not before integrated_before {before}"
    )]
    EmptyTimeRange {
        /// The range's start.
        after: i64,
        /// The range's end.
        before: i64,
    },
}

/// The criteria of a query as text, the way an API or a command line gives them; empty
/// strings and zero times mean "any".
#[derive(Debug, Clone, Default)]
pub struct QueryText<'a> {
    /// See [`SearchQuery::signer`].
    pub signer: &'a str,
    /// See [`SearchQuery::builder`].
    pub builder: &'a str,
    /// See [`SearchQuery::predicate_type`].
    pub predicate_type: &'a str,
    /// See [`SearchQuery::subject_name`].
    pub subject_name: &'a str,
    /// `sha256:<hex>` or 64 hex digits.
    pub subject_digest: &'a str,
    /// See [`SearchQuery::trust_domain`].
    pub trust_domain: &'a str,
    /// See [`SearchQuery::integrated_after`].
    pub integrated_after: i64,
    /// See [`SearchQuery::integrated_before`].
    pub integrated_before: i64,
}

/// Parses a SHA-256 digest given as `sha256:<64 hex>` or 64 hex digits (either case).
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let hex_part = text.strip_prefix("sha256:").unwrap_or(text);
    let mut digest = [0u8; 32];
    (hex_part.len() == 64 && hex::decode_to_slice(hex_part, &mut digest).is_ok()).then_some(digest)
}

fn non_empty(field: &'static str, text: &str) -> Result<Option<String>, QueryError> {
    if text.len() > MAX_CRITERION_BYTES {
        return Err(QueryError::TooLong { field });
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

impl SearchQuery {
    /// The query the criteria `text` give.
    pub fn parse(text: &QueryText<'_>) -> Result<SearchQuery, QueryError> {
        let pattern =
            |field, value: &str| non_empty(field, value).map(|v| v.map(|v| Pattern::parse(&v)));
        let trust_domain = match non_empty("trust_domain", text.trust_domain)? {
            Some(td) => {
                Some(TrustDomain::parse(&td).map_err(|_| QueryError::TrustDomain(shorten(&td)))?)
            }
            None => None,
        };
        let subject_sha256 = match non_empty("subject_digest", text.subject_digest)? {
            Some(d) => Some(parse_sha256(&d).ok_or_else(|| QueryError::Digest(shorten(&d)))?),
            None => None,
        };
        let query = SearchQuery {
            signer: pattern("signer", text.signer)?,
            builder: pattern("builder", text.builder)?,
            predicate_type: non_empty("predicate_type", text.predicate_type)?,
            subject_name: non_empty("subject_name", text.subject_name)?,
            subject_sha256,
            trust_domain,
            integrated_after: (text.integrated_after != 0).then_some(text.integrated_after),
            integrated_before: (text.integrated_before != 0).then_some(text.integrated_before),
        };
        if let (Some(after), Some(before)) = (query.integrated_after, query.integrated_before)
            && after >= before
        {
            return Err(QueryError::EmptyTimeRange { after, before });
        }
        Ok(query)
    }

    /// Whether `record` meets every criterion.
    pub fn matches(&self, record: &IndexedRecord) -> bool {
        let pattern_holds = |pattern: &Option<Pattern>, value: Option<&str>| match pattern {
            None => true,
            Some(p) => value.is_some_and(|v| p.matches(v)),
        };
        pattern_holds(&self.signer, Some(&record.signer))
            && pattern_holds(&self.builder, record.builder_id.as_deref())
            && self
                .predicate_type
                .as_ref()
                .is_none_or(|t| record.predicate_type.as_ref() == Some(t))
            && self
                .subject_name
                .as_ref()
                .is_none_or(|n| record.subjects.iter().any(|s| s.name == *n))
            && self.subject_sha256.is_none_or(|d| {
                let hex = hex::encode(d);
                record.subjects.iter().any(|s| s.sha256 == hex)
            })
            && self
                .trust_domain
                .as_ref()
                .is_none_or(|td| record.trust_domain == td.as_str())
            && self
                .integrated_after
                .is_none_or(|t| record.integrated_time >= t)
            && self
                .integrated_before
                .is_none_or(|t| record.integrated_time < t)
    }

    /// The facet to walk: the one likely to match the fewest records among the exact
    /// criteria, or `None` when no criterion names one (walk every record).
    pub fn facet(&self) -> Option<[u8; 32]> {
        fn exact(pattern: &Option<Pattern>) -> Option<&str> {
            match pattern {
                Some(Pattern::Exact(value)) => Some(value.as_str()),
                _ => None,
            }
        }
        if let Some(digest) = self.subject_sha256 {
            return Some(Facet::Sha256(digest).key());
        }
        if let Some(signer) = exact(&self.signer) {
            return Some(Facet::Signer(signer).key());
        }
        if let Some(name) = &self.subject_name {
            return Some(Facet::SubjectName(name).key());
        }
        if let Some(builder) = exact(&self.builder) {
            return Some(Facet::Builder(builder).key());
        }
        if let Some(predicate_type) = &self.predicate_type {
            return Some(Facet::PredicateType(predicate_type).key());
        }
        if let Some(td) = &self.trust_domain {
            return Some(Facet::TrustDomain(td.as_str()).key());
        }
        None
    }
}

/// The position of a record in a node's index, as the opaque page tokens and watch
/// cursors of the API carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(pub u64);

impl Cursor {
    /// The token form.
    pub fn to_token(self) -> String {
        format!("c{}", self.0)
    }

    /// Reads a token; `None` when it is not one this node gave.
    pub fn from_token(token: &str) -> Option<Cursor> {
        let digits = token.strip_prefix('c')?;
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Cursor)
    }
}

/// Checks the signer of a record of the node's own domain against the identities allowed
/// to sign for it (identity monitoring): `None` when allowed, else the alert's reason.
pub fn unexpected_signer(allowed: &[Pattern], record: &IndexedRecord) -> Option<String> {
    if allowed.is_empty() || allowed.iter().any(|p| p.matches(&record.signer)) {
        return None;
    }
    Some(format!(
        "entry {} of {} was signed by {}, which is not among the identities allowed to sign for {}",
        record.log_index, record.log_origin, record.signer, record.trust_domain
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record() -> IndexedRecord {
        IndexedRecord {
            trust_domain: "org-a.example".into(),
            log_origin: "org-a.example/log".into(),
            log_index: 7,
            integrated_time: 1_700_000_000,
            kind: "dsse".into(),
            signer: "spiffe://org-a.example/ci/build".into(),
            builder_id: Some("https://ci.org-a.example/builder".into()),
            predicate_type: Some("https://slsa.dev/provenance/v1".into()),
            subjects: vec![IndexedSubject {
                name: "app.tar".into(),
                sha256: "ab".repeat(32),
            }],
        }
    }

    fn query(text: QueryText<'_>) -> SearchQuery {
        SearchQuery::parse(&text).expect("valid query")
    }

    #[test]
    fn every_criterion_must_hold() {
        let r = record();
        assert!(query(QueryText::default()).matches(&r));
        assert!(
            query(QueryText {
                signer: "spiffe://org-a.example/ci/*",
                builder: "https://ci.org-a.example/builder",
                predicate_type: "https://slsa.dev/provenance/v1",
                subject_name: "app.tar",
                subject_digest: &format!("sha256:{}", "AB".repeat(32)),
                trust_domain: "org-a.example",
                integrated_after: 1_700_000_000,
                integrated_before: 1_700_000_001,
            })
            .matches(&r)
        );
        for miss in [
            QueryText {
                signer: "spiffe://org-a.example/ci/buil",
                ..QueryText::default()
            },
            QueryText {
                builder: "https://other/*",
                ..QueryText::default()
            },
            QueryText {
                predicate_type: "https://spdx.dev/Document",
                ..QueryText::default()
            },
            QueryText {
                subject_name: "app",
                ..QueryText::default()
            },
            QueryText {
                trust_domain: "org-b.example",
                ..QueryText::default()
            },
            QueryText {
                integrated_before: 1_700_000_000,
                ..QueryText::default()
            },
            QueryText {
                integrated_after: 1_700_000_001,
                ..QueryText::default()
            },
        ] {
            assert!(!query(miss.clone()).matches(&r), "{miss:?}");
        }
    }

    #[test]
    fn the_walked_facet_is_one_the_record_is_indexed_under() {
        let r = record();
        let keys: Vec<_> = r.facets().iter().map(Facet::key).collect();
        for text in [
            QueryText {
                signer: "spiffe://org-a.example/ci/build",
                ..QueryText::default()
            },
            QueryText {
                builder: "https://ci.org-a.example/builder",
                ..QueryText::default()
            },
            QueryText {
                predicate_type: "https://slsa.dev/provenance/v1",
                ..QueryText::default()
            },
            QueryText {
                subject_name: "app.tar",
                ..QueryText::default()
            },
            QueryText {
                trust_domain: "org-a.example",
                ..QueryText::default()
            },
        ] {
            let facet = query(text.clone()).facet().expect("an exact criterion");
            assert!(keys.contains(&facet), "{text:?}");
        }
        // A prefix names no facet by itself.
        assert_eq!(
            query(QueryText {
                signer: "spiffe://org-a.example/*",
                ..QueryText::default()
            })
            .facet(),
            None
        );
    }

    #[test]
    fn bad_criteria_are_refused_with_the_reason() {
        let long = "x".repeat(MAX_CRITERION_BYTES + 1);
        for (text, expected) in [
            (
                QueryText {
                    signer: &long,
                    ..QueryText::default()
                },
                "signer is longer",
            ),
            (
                QueryText {
                    subject_digest: "sha512:00",
                    ..QueryText::default()
                },
                "not sha256",
            ),
            (
                QueryText {
                    trust_domain: "Not A Domain",
                    ..QueryText::default()
                },
                "not a SPIFFE trust domain",
            ),
            (
                QueryText {
                    integrated_after: 5,
                    integrated_before: 5,
                    ..QueryText::default()
                },
                "time range is empty",
            ),
        ] {
            let error = SearchQuery::parse(&text).expect_err("refused").to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn identities_outside_the_allowed_ones_raise_an_alert() {
        let r = record();
        assert_eq!(unexpected_signer(&[], &r), None);
        assert_eq!(
            unexpected_signer(&[Pattern::parse("spiffe://org-a.example/ci/*")], &r),
            None
        );
        let alert = unexpected_signer(&[Pattern::parse("spiffe://org-a.example/release")], &r)
            .expect("an alert");
        assert!(alert.contains("spiffe://org-a.example/ci/build"), "{alert}");
    }

    proptest! {
        #[test]
        fn records_round_trip_and_facet_keys_are_distinct(
            signer in "[a-z/:.]{0,40}",
            name in "[ -~]{0,40}",
            index in any::<u64>(),
            time in any::<i64>(),
        ) {
            let mut r = record();
            r.signer = signer.clone();
            r.subjects[0].name = name.clone();
            r.log_index = index;
            r.integrated_time = time;
            prop_assert_eq!(IndexedRecord::decode(&r.encode()).expect("decodes"), r.clone());
            // The same text under two facets gives two keys.
            prop_assert_ne!(Facet::Signer(&signer).key(), Facet::SubjectName(&signer).key());
            prop_assert_ne!(Facet::Builder(&name).key(), Facet::PredicateType(&name).key());
        }

        #[test]
        fn cursor_tokens_round_trip_and_garbage_is_refused(n in any::<u64>(), junk in "\\PC{0,30}") {
            prop_assert_eq!(Cursor::from_token(&Cursor(n).to_token()), Some(Cursor(n)));
            if let Some(c) = Cursor::from_token(&junk) {
                prop_assert_eq!(c.to_token(), junk);
            }
        }
    }
}
