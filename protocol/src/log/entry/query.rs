//! The request bodies of the Rekor v1 search endpoints:
//! `POST /api/v1/log/entries/retrieve` ([`SearchLogQuery`]) and
//! `POST /api/v1/index/retrieve` ([`SearchIndexQuery`]).
//!
//! Unknown members are refused, not ignored: a search criterion the log does not
//! understand, silently dropped, would answer a different question than the one asked.

use serde_json::{Map, Value};

use super::proposed::{MAX_PROPOSED_ENTRY_BYTES, ProposedEntry, ProposedEntryError};
use super::view::{EntryUuidError, entry_uuid, parse_entry_uuid};
use crate::merkle::Hash;

/// Most lookups one `entries/retrieve` request may ask for, over all three lists.
///
/// openapi.yaml `SearchLogQuery`: each of `entryUUIDs`, `logIndexes`, `entries` has
/// `minItems: 1, maxItems: 10`; `pkg/api/entries.go`: `maxSearchQueries = 10` bounds
/// their total ("totalQueries > maxSearchQueries" is refused).
pub const MAX_SEARCH_QUERIES: usize = 10;

/// Largest `entries/retrieve` body read, in bytes: room for [`MAX_SEARCH_QUERIES`]
/// proposed entries of the largest accepted size, plus the rest of the document.
pub const MAX_SEARCH_LOG_QUERY_BYTES: usize =
    MAX_SEARCH_QUERIES * MAX_PROPOSED_ENTRY_BYTES + 64 * 1024;

/// Largest `index/retrieve` body read, in bytes (a hash and an operator need far less).
pub const MAX_SEARCH_INDEX_QUERY_BYTES: usize = 64 * 1024;

/// `POST /api/v1/log/entries/retrieve`: `{"entryUUIDs": [...], "logIndexes": [...],
/// "entries": [...]}`, each list optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchLogQuery {
    /// Leaf hashes, from `entryUUIDs` (UUIDs or entry IDs, see [`parse_entry_uuid`]).
    pub entry_uuids: Vec<Hash>,
    /// `logIndexes`.
    pub log_indexes: Vec<u64>,
    /// `entries`: proposed entries, looked up by the leaf hash of their canonical body
    /// ([`ProposedEntry::leaf_hash`]; no signature needs to be checked to look up).
    pub entries: Vec<ProposedEntry>,
}

/// Why [`SearchLogQuery::from_json`] refused a request body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchLogQueryError {
    /// The body is longer than [`MAX_SEARCH_LOG_QUERY_BYTES`].
    #[error("search query is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the body.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not JSON.
    #[error("search query is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The body is not a JSON object.
    #[error("search query must be a JSON object")]
    NotAnObject,
    /// A member other than `entryUUIDs`, `logIndexes`, `entries`.
    #[error(
        "search query field `{field}` is not supported (fields: entryUUIDs, logIndexes, entries)"
    )]
    UnknownField {
        /// The member's name.
        field: String,
    },
    /// A list is not an array, or is empty (`minItems: 1`).
    #[error("search query field `{field}` {reason}")]
    InvalidField {
        /// The member's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than [`MAX_SEARCH_QUERIES`] lookups in all.
    #[error("search query asks for {count} lookups, more than the limit of {max}")]
    TooManyQueries {
        /// Lookups asked for.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An element of `entryUUIDs` is not a string, or of `logIndexes` not a
    /// non-negative integer.
    #[error("search query `{field}[{index}]` {reason}")]
    InvalidItem {
        /// The list.
        field: &'static str,
        /// Position in the list.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An element of `entryUUIDs` is not a UUID or entry ID.
    #[error("search query `entryUUIDs[{index}]`: {source}")]
    EntryUuid {
        /// Position in the list.
        index: usize,
        /// Why it is not a UUID.
        #[source]
        source: EntryUuidError,
    },
    /// An element of `entries` is not an acceptable proposed entry.
    #[error("search query `entries[{index}]`: {source}")]
    Entry {
        /// Position in the list.
        index: usize,
        /// Why the entry was refused.
        #[source]
        source: ProposedEntryError,
    },
}

impl SearchLogQuery {
    /// Parses a request body (see [`SearchLogQueryError`] for what is refused).
    /// `null` lists count as absent.
    pub fn from_json(bytes: &[u8]) -> Result<SearchLogQuery, SearchLogQueryError> {
        if bytes.len() > MAX_SEARCH_LOG_QUERY_BYTES {
            return Err(SearchLogQueryError::TooLarge {
                len: bytes.len(),
                max: MAX_SEARCH_LOG_QUERY_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(SearchLogQueryError::Json)?;
        let object = value.as_object().ok_or(SearchLogQueryError::NotAnObject)?;
        if let Some(field) = unknown_member(object, &["entryUUIDs", "logIndexes", "entries"]) {
            return Err(SearchLogQueryError::UnknownField { field });
        }
        let uuids = list(object, "entryUUIDs")?;
        let indexes = list(object, "logIndexes")?;
        let entries = list(object, "entries")?;
        // Count before parsing anything expensive.
        let count = uuids.len() + indexes.len() + entries.len();
        if count > MAX_SEARCH_QUERIES {
            return Err(SearchLogQueryError::TooManyQueries {
                count,
                max: MAX_SEARCH_QUERIES,
            });
        }
        let entry_uuids = uuids
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let text = item.as_str().ok_or(SearchLogQueryError::InvalidItem {
                    field: "entryUUIDs",
                    index,
                    reason: "must be a string",
                })?;
                parse_entry_uuid(text)
                    .map_err(|source| SearchLogQueryError::EntryUuid { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let log_indexes = indexes
            .iter()
            .enumerate()
            .map(|(index, item)| {
                // openapi.yaml: `type: integer, minimum: 0`.
                item.as_u64().ok_or(SearchLogQueryError::InvalidItem {
                    field: "logIndexes",
                    index,
                    reason: "must be a non-negative integer",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let entries = entries
            .iter()
            .enumerate()
            .map(|(index, item)| {
                ProposedEntry::from_value(item)
                    .map_err(|source| SearchLogQueryError::Entry { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SearchLogQuery {
            entry_uuids,
            log_indexes,
            entries,
        })
    }

    /// The request body as compact JSON; empty lists are left out.
    pub fn to_json(&self) -> Vec<u8> {
        let mut object = Map::new();
        if !self.entry_uuids.is_empty() {
            object.insert(
                "entryUUIDs".into(),
                self.entry_uuids
                    .iter()
                    .map(|h| Value::from(entry_uuid(h)))
                    .collect(),
            );
        }
        if !self.log_indexes.is_empty() {
            object.insert("logIndexes".into(), self.log_indexes.clone().into());
        }
        if !self.entries.is_empty() {
            object.insert(
                "entries".into(),
                self.entries
                    .iter()
                    .map(ProposedEntry::to_json_value)
                    .collect(),
            );
        }
        Value::Object(object).to_string().into_bytes()
    }

    /// How many lookups the query asks for.
    pub fn query_count(&self) -> usize {
        self.entry_uuids.len() + self.log_indexes.len() + self.entries.len()
    }
}

/// A present list member: an array with 1 to [`MAX_SEARCH_QUERIES`] elements.
fn list<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a [Value], SearchLogQueryError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) if items.is_empty() => Err(SearchLogQueryError::InvalidField {
            field,
            reason: "must not be an empty list (minItems: 1)",
        }),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(SearchLogQueryError::InvalidField {
            field,
            reason: "must be an array",
        }),
    }
}

/// `POST /api/v1/index/retrieve` by artifact digest: `{"hash": "sha256:<hex>"}`.
///
/// The log indexes entries by SHA-256 digest only (see `AdmittedEntry::search_keys`), so
/// the other criteria of openapi.yaml `SearchIndex` (`publicKey`, `email`, `subject`) are
/// refused as unsupported rather than answered wrongly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchIndexQuery {
    /// The SHA-256 digest searched for.
    pub sha256: [u8; 32],
}

/// Why [`SearchIndexQuery::from_json`] refused a request body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchIndexQueryError {
    /// The body is longer than [`MAX_SEARCH_INDEX_QUERY_BYTES`].
    #[error("index query is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the body.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not JSON.
    #[error("index query is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The body is not a JSON object.
    #[error("index query must be a JSON object")]
    NotAnObject,
    /// A criterion of Rekor's `SearchIndex` this log does not index by.
    #[error("searching the index by `{field}` is not supported by this log (search by `hash`)")]
    Unsupported {
        /// The criterion.
        field: &'static str,
    },
    /// A member `SearchIndex` does not define.
    #[error("index query field `{field}` is not part of the query format")]
    UnknownField {
        /// The member's name.
        field: String,
    },
    /// `hash` or `operator` has the wrong type or form.
    #[error("index query field `{field}` is invalid: {reason}")]
    InvalidField {
        /// The member's name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `hash` names a digest algorithm other than SHA-256.
    #[error("index query hash algorithm `{algorithm}` is not supported (this log indexes sha256)")]
    UnsupportedHashAlgorithm {
        /// The algorithm.
        algorithm: String,
    },
    /// No `hash` was given.
    #[error("index query has no search criterion (expected `hash`)")]
    NoCriterion,
}

impl SearchIndexQuery {
    /// Parses a request body. `null` members count as absent; `operator` (`and` | `or`)
    /// is accepted and, with a single criterion, changes nothing.
    ///
    /// `hash` follows openapi.yaml `SearchIndex.hash`: `(sha256:)?` then 64 hex digits
    /// of either case (Rekor lowercases before the lookup). `sha512:` / 128 digits and
    /// `sha1:` / 40 digits are valid Rekor queries for digests this log does not index.
    pub fn from_json(bytes: &[u8]) -> Result<SearchIndexQuery, SearchIndexQueryError> {
        if bytes.len() > MAX_SEARCH_INDEX_QUERY_BYTES {
            return Err(SearchIndexQueryError::TooLarge {
                len: bytes.len(),
                max: MAX_SEARCH_INDEX_QUERY_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(SearchIndexQueryError::Json)?;
        let object = value
            .as_object()
            .ok_or(SearchIndexQueryError::NotAnObject)?;
        for field in ["publicKey", "email", "subject"] {
            if object.get(field).is_some_and(|v| !v.is_null()) {
                return Err(SearchIndexQueryError::Unsupported { field });
            }
        }
        if let Some(field) = unknown_member(
            object,
            &["hash", "operator", "publicKey", "email", "subject"],
        ) {
            return Err(SearchIndexQueryError::UnknownField { field });
        }
        match object.get("operator") {
            None | Some(Value::Null) => {}
            Some(Value::String(op)) if op == "and" || op == "or" => {}
            Some(_) => {
                return Err(SearchIndexQueryError::InvalidField {
                    field: "operator",
                    reason: "must be \"and\" or \"or\"",
                });
            }
        }
        let hash = match object.get("hash") {
            None | Some(Value::Null) => return Err(SearchIndexQueryError::NoCriterion),
            Some(Value::String(hash)) => hash,
            Some(_) => {
                return Err(SearchIndexQueryError::InvalidField {
                    field: "hash",
                    reason: "must be a string",
                });
            }
        };
        Ok(SearchIndexQuery {
            sha256: parse_search_hash(hash)?,
        })
    }

    /// The request body as compact JSON: `{"hash":"sha256:<hex>"}`.
    pub fn to_json(&self) -> Vec<u8> {
        format!(r#"{{"hash":"sha256:{}"}}"#, hex::encode(self.sha256)).into_bytes()
    }
}

/// `SearchIndex.hash`: `^(sha512:)?[0-9a-fA-F]{128}$|^(sha256:)?[0-9a-fA-F]{64}$|^(sha1:)?[0-9a-fA-F]{40}$`.
fn parse_search_hash(text: &str) -> Result<[u8; 32], SearchIndexQueryError> {
    let (algorithm, digits) = match text.split_once(':') {
        Some((algorithm, digits)) => (Some(algorithm), digits),
        None => (None, text),
    };
    let invalid = SearchIndexQueryError::InvalidField {
        field: "hash",
        reason: "must be `sha256:` followed by 64 hexadecimal digits",
    };
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid);
    }
    let unsupported = |algorithm: &str| SearchIndexQueryError::UnsupportedHashAlgorithm {
        algorithm: algorithm.to_owned(),
    };
    match (algorithm, digits.len()) {
        (Some("sha256") | None, 64) => {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(digits, &mut digest).map_err(|_| invalid)?;
            Ok(digest)
        }
        (Some("sha512") | None, 128) => Err(unsupported("sha512")),
        (Some("sha1") | None, 40) => Err(unsupported("sha1")),
        (Some(other), _) if !matches!(other, "sha256" | "sha512" | "sha1") => {
            Err(unsupported(other))
        }
        _ => Err(invalid),
    }
}

/// The first non-`null` member whose name is not in `allowed`.
fn unknown_member(object: &Map<String, Value>, allowed: &[&str]) -> Option<String> {
    object
        .iter()
        .find(|(k, v)| !v.is_null() && !allowed.contains(&k.as_str()))
        .map(|(k, _)| k.clone())
}
