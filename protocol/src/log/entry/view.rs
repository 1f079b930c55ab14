//! The Rekor v1 `LogEntry` response shape, and entry UUIDs.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::set_payload;
use crate::log::SequencedEntry;
use crate::merkle::Hash;

/// Length of an entry UUID in hex: the 32-byte leaf hash.
const UUID_HEX_LEN: usize = 64;
/// Length of a Rekor entry ID in hex: an 8-byte tree ID, then the UUID.
const ENTRY_ID_HEX_LEN: usize = 16 + UUID_HEX_LEN;

/// One entry as `GET /api/v1/log/entries/{uuid}` and friends return it (the value under
/// the UUID in a [`LogEntryResponse`]).
///
/// openapi.yaml `LogEntry`: `logID` ("the SHA256 hash of the DER-encoded public key for
/// the log" in Rekor v1; here the log's key ID), `logIndex`, `body` (base64 of the
/// canonical body), `integratedTime` ("as a Unix timestamp in seconds") and
/// `verification`. Fields are kept in their wire encoding so responses from a stock
/// Rekor deserialize too (an `attestation` member is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntryView {
    /// Base64 (standard, padded) of the canonical body.
    pub body: String,
    /// When the log integrated the entry, Unix seconds.
    #[serde(rename = "integratedTime")]
    pub integrated_time: i64,
    /// The log's key ID, 64 lowercase hex digits.
    #[serde(rename = "logID")]
    pub log_id: String,
    /// The entry's index in the log.
    #[serde(rename = "logIndex")]
    pub log_index: u64,
    /// The inclusion proof and the signed entry timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<VerificationView>,
}

/// `LogEntry.verification`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationView {
    /// The entry's inclusion proof in a checkpointed tree, once there is one.
    #[serde(
        rename = "inclusionProof",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub inclusion_proof: Option<InclusionProofView>,
    /// Base64 of the signature over [`set_payload`] ("Signature over the logID,
    /// logIndex, body and integratedTime").
    #[serde(
        rename = "signedEntryTimestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub signed_entry_timestamp: Option<String>,
}

/// openapi.yaml `InclusionProof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProofView {
    /// "The checkpoint (signed tree head) that the inclusion proof is based on": the
    /// whole signed note text.
    pub checkpoint: String,
    /// "A list of hashes required to compute the inclusion proof, sorted in order from
    /// leaf to root", lowercase hex.
    pub hashes: Vec<String>,
    /// "The index of the entry in the transparency log".
    #[serde(rename = "logIndex")]
    pub log_index: u64,
    /// Root hash of the tree of size `tree_size`, lowercase hex.
    #[serde(rename = "rootHash")]
    pub root_hash: String,
    /// "The size of the merkle tree at the time the inclusion proof was generated".
    #[serde(rename = "treeSize")]
    pub tree_size: u64,
}

/// A `LogEntry` response: `{"<uuid>": {…}}`, one member per entry (the single-entry
/// endpoints return one member; `entries/retrieve` returns an array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogEntryResponse(pub BTreeMap<String, LogEntryView>);

/// Why [`LogEntryView::set_payload`] could not decode a view.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogEntryViewError {
    /// `body` is not standard padded base64.
    #[error("log entry body is not valid base64")]
    Body,
    /// `logID` is not 64 hex digits.
    #[error("log entry logID is not 64 hex digits")]
    LogId,
}

/// Why [`parse_entry_uuid`] refused a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryUuidError {
    /// Neither 64 (UUID) nor 80 (entry ID) characters long.
    #[error("an entry UUID is 64 hex digits, or 80 for an entry ID; got {len} characters")]
    Length {
        /// Length of the string, in bytes.
        len: usize,
    },
    /// Not hexadecimal.
    #[error("an entry UUID must be hexadecimal")]
    NotHex,
    /// The tree ID of an entry ID is not a valid (non-negative `int64`) tree ID.
    #[error("the tree ID (first 16 hex digits) of the entry ID is out of range")]
    TreeId,
}

impl InclusionProofView {
    /// The proof that leaf `log_index` is in the tree of `tree_size` leaves with root
    /// `root_hash`, made of `hashes` (leaf to root), under the signed checkpoint note
    /// `checkpoint`.
    pub fn new(
        log_index: u64,
        tree_size: u64,
        root_hash: &Hash,
        hashes: &[Hash],
        checkpoint: &str,
    ) -> InclusionProofView {
        InclusionProofView {
            checkpoint: checkpoint.to_owned(),
            hashes: hashes.iter().map(hex::encode).collect(),
            log_index,
            root_hash: hex::encode(root_hash),
            tree_size,
        }
    }
}

impl LogEntryView {
    /// The view of an entry: its canonical `body`, when it was integrated, the log's key
    /// ID, its index, the signed entry timestamp (signature bytes over [`set_payload`])
    /// and, once it exists, its inclusion proof.
    pub fn new(
        body: &[u8],
        integrated_time: i64,
        log_id: &[u8; 32],
        log_index: u64,
        signed_entry_timestamp: &[u8],
        inclusion_proof: Option<InclusionProofView>,
    ) -> LogEntryView {
        LogEntryView {
            body: STANDARD.encode(body),
            integrated_time,
            log_id: hex::encode(log_id),
            log_index,
            verification: Some(VerificationView {
                inclusion_proof,
                signed_entry_timestamp: Some(STANDARD.encode(signed_entry_timestamp)),
            }),
        }
    }

    /// The view of a stored entry (see [`LogEntryView::new`]).
    pub fn from_sequenced(
        entry: &SequencedEntry,
        log_id: &[u8; 32],
        signed_entry_timestamp: &[u8],
        inclusion_proof: Option<InclusionProofView>,
    ) -> LogEntryView {
        LogEntryView::new(
            &entry.entry.body,
            entry.integrated_time,
            log_id,
            entry.index,
            signed_entry_timestamp,
            inclusion_proof,
        )
    }

    /// The bytes this entry's signed entry timestamp signs ([`set_payload`] of its
    /// decoded fields), for a client checking a response.
    pub fn set_payload(&self) -> Result<Vec<u8>, LogEntryViewError> {
        let body = STANDARD
            .decode(&self.body)
            .map_err(|_| LogEntryViewError::Body)?;
        let mut log_id = [0u8; 32];
        hex::decode_to_slice(&self.log_id, &mut log_id).map_err(|_| LogEntryViewError::LogId)?;
        Ok(set_payload(
            &body,
            self.integrated_time,
            &log_id,
            self.log_index,
        ))
    }
}

impl LogEntryResponse {
    /// The response for one entry, keyed by its UUID (see [`entry_uuid`]).
    pub fn new(leaf_hash: &Hash, view: LogEntryView) -> LogEntryResponse {
        LogEntryResponse(BTreeMap::from([(entry_uuid(leaf_hash), view)]))
    }

    /// The response as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A map of strings to plain structs always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The UUID of the entry whose leaf hash is `leaf_hash`: 64 lowercase hex digits.
///
/// Rekor: `uuid := hex.EncodeToString(queuedLeaf.GetMerkleLeafHash())`. Rekor v1 keys
/// its responses by the 80-digit entry ID (tree ID + UUID); clients accept either form
/// (`sharding.GetUUIDFromIDString`), and a domain log has one tree, so the UUID alone is
/// served.
pub fn entry_uuid(leaf_hash: &Hash) -> String {
    hex::encode(leaf_hash)
}

/// The leaf hash named by an entry UUID (64 hex digits) or a Rekor entry ID (80: a
/// 16-digit tree ID, then the UUID). Either case of hex is accepted.
///
/// Rekor `sharding.GetUUIDFromIDString` / `ValidateTreeID`: the tree ID is "a valid
/// int64 in hex (base 16)"; the log has one tree, so which tree is named does not matter
/// beyond that ("0 is not a valid TreeID" is tolerated there too).
pub fn parse_entry_uuid(text: &str) -> Result<Hash, EntryUuidError> {
    if text.len() != UUID_HEX_LEN && text.len() != ENTRY_ID_HEX_LEN {
        return Err(EntryUuidError::Length { len: text.len() });
    }
    // All ASCII from here on, so splitting at a byte index cannot cut a character.
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EntryUuidError::NotHex);
    }
    let uuid = match text.len() {
        UUID_HEX_LEN => text,
        ENTRY_ID_HEX_LEN => {
            let (tree_id, uuid) = text.split_at(ENTRY_ID_HEX_LEN - UUID_HEX_LEN);
            let mut tree = [0u8; 8];
            hex::decode_to_slice(tree_id, &mut tree).map_err(|_| EntryUuidError::NotHex)?;
            if i64::try_from(u64::from_be_bytes(tree)).is_err() {
                return Err(EntryUuidError::TreeId);
            }
            uuid
        }
        len => return Err(EntryUuidError::Length { len }),
    };
    let mut hash = [0u8; 32];
    hex::decode_to_slice(uuid, &mut hash).map_err(|_| EntryUuidError::NotHex)?;
    Ok(hash)
}
