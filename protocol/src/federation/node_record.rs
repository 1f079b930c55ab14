//! Node records: the signed statement binding a libp2p peer id to a SPIFFE ID.
//!
//! libp2p keys are separate from SPIFFE identities (design: "Identity"). A node proves
//! which SPIFFE ID speaks through its libp2p connection with a **node record** — its
//! peer id, its SPIFFE ID, its listen addresses and a validity window — in a DSSE
//! envelope signed by the key of its X.509-SVID, with the SVID chain attached:
//!
//! ```json
//! {"envelope":{"payload":"<base64 record>","payloadType":"application/vnd.provmesh.node-record.v1+json","signatures":[{"sig":"<base64 ASN.1 DER ECDSA>"}]},"svidChain":["<base64 DER leaf>","<base64 DER intermediate>"]}
//! ```
//!
//! The record itself (the DSSE payload) is canonical JSON: members in lexicographic
//! order, no white space, integers for times:
//!
//! ```json
//! {"addresses":["/ip4/10.0.0.7/tcp/4001"],"expiresAt":1795565400,"issuedAt":1795564800,"peerId":"12D3KooW…","spiffeId":"spiffe://org-a.example/provmesh/node/n1"}
//! ```
//!
//! [`SignedNodeRecord::verify`] accepts a record only if it was received from the peer
//! it names, its chain is a valid X.509-SVID of the record's trust domain under that
//! domain's **accepted** bundle at the time of the check, the SVID's SPIFFE ID is the
//! record's, the DSSE signature is the SVID key's, and its validity window holds (see
//! the method for the exact rules). A record never outlives the SVID that signed it:
//! the node re-issues it when its SVID rotates.
//!
//! Pure: the time, the expected peer id and the bundles are arguments.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::dsse::{DsseSigner, Envelope, SignError};
use crate::machine::Timestamp;
use crate::spiffe::x509::{
    MAX_SVID_CHAIN_LEN, SvidSignatureError, VerifiedX509Svid, X509SvidError, verify_svid_signature,
    verify_x509_svid,
};
use crate::spiffe::{SpiffeId, TrustBundle, TrustDomain};

/// The DSSE payload type of a node record.
pub const NODE_RECORD_PAYLOAD_TYPE: &str = "application/vnd.provmesh.node-record.v1+json";

/// The largest signed node record document accepted or produced, in bytes (64 KiB): a
/// record with 16 addresses of 256 bytes plus a chain of a few certificates fits with
/// room to spare.
pub const MAX_SIGNED_NODE_RECORD_LEN: usize = 64 * 1024;

/// The most addresses a node record lists.
pub const MAX_NODE_ADDRESSES: usize = 16;

/// The longest address (a libp2p multiaddr in its text form) a node record lists, in
/// bytes.
pub const MAX_NODE_ADDRESS_LEN: usize = 256;

/// The longest peer id accepted, in characters.
///
/// A libp2p peer id is a multihash of the peer's public key (identity multihash for keys
/// of at most 42 bytes, such as Ed25519: `12D3KooW…`, 52 characters; SHA-256 otherwise:
/// `Qm…`, 46 characters); rust-libp2p admits digests of up to 64 bytes, about 92 base58
/// characters. 128 leaves room without admitting arbitrary text.
pub const MAX_PEER_ID_LEN: usize = 128;

/// The base58btc alphabet (Bitcoin's), in which `PeerId::to_string()` writes a peer id
/// (libp2p peer-ids spec: "Peer IDs are encoded as base58btc" in their string form).
const BASE58_ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Why the fields of a node record are not acceptable (when built, signed or read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidNodeRecord {
    /// The peer id is empty, too long, or not base58btc.
    #[error(
        "the peer id {peer_id:?} is not a libp2p peer id in base58btc of at most \
         {MAX_PEER_ID_LEN} characters"
    )]
    PeerId {
        /// The offending value (truncated to [`MAX_PEER_ID_LEN`] + 1 characters).
        peer_id: String,
    },
    /// The SPIFFE ID names a trust domain, not a node (it has no path).
    #[error("the node record's SPIFFE ID {spiffe_id} has no path: a node is a workload")]
    NotWorkloadId {
        /// The ID.
        spiffe_id: String,
    },
    /// More than [`MAX_NODE_ADDRESSES`] addresses.
    #[error("the node record lists {count} addresses; at most {MAX_NODE_ADDRESSES} are accepted")]
    TooManyAddresses {
        /// How many.
        count: usize,
    },
    /// An address is not the text form of a multiaddr within the length bound.
    #[error(
        "address {index} of the node record is not a multiaddr of at most \
         {MAX_NODE_ADDRESS_LEN} visible ASCII characters starting with '/'"
    )]
    Address {
        /// Its position in `addresses`.
        index: usize,
    },
    /// `issuedAt` is not before `expiresAt`.
    #[error("the node record is issued at {issued_at} but expires at {expires_at}, not later")]
    EmptyWindow {
        /// `issuedAt`, Unix seconds.
        issued_at: u64,
        /// `expiresAt`, Unix seconds.
        expires_at: u64,
    },
}

/// Why bytes are not a node record payload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeRecordJsonError {
    /// Not JSON of the record's shape (a member missing, unknown, repeated or of the
    /// wrong type; a SPIFFE ID that does not parse).
    #[error("the node record is not JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    /// A field breaks a rule of [`InvalidNodeRecord`].
    #[error(transparent)]
    Invalid(#[from] InvalidNodeRecord),
    /// The JSON parses but is not the canonical encoding of what it holds (white space,
    /// member order, escapes), so two encodings of one record cannot circulate.
    #[error("the node record is not in canonical JSON (sorted members, no white space)")]
    NotCanonical,
}

/// A node record: peer id ↔ SPIFFE ID, addresses and validity.
///
/// Always valid by the rules of [`InvalidNodeRecord`]. The fields are declared in
/// lexicographic order of their JSON names, so serialising the struct yields the
/// canonical JSON (serde writes struct members in declaration order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "WireNodeRecord")]
pub struct NodeRecord {
    /// The node's libp2p listen addresses (multiaddr text), for peers to dial it.
    addresses: Vec<String>,
    /// End of validity, Unix seconds (exclusive).
    expires_at: u64,
    /// When it was issued, Unix seconds; a newer record replaces an older one.
    issued_at: u64,
    /// The libp2p peer id, as `PeerId::to_string()` writes it.
    peer_id: String,
    /// The SPIFFE ID of the node's X.509-SVID.
    spiffe_id: SpiffeId,
}

/// The record as read from JSON, before its rules are checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireNodeRecord {
    addresses: Vec<String>,
    expires_at: u64,
    issued_at: u64,
    peer_id: String,
    spiffe_id: SpiffeId,
}

/// Embedding a record in another serde document checks its rules (not canonicity, which
/// is a property of the bytes [`NodeRecord::from_json`] reads).
impl TryFrom<WireNodeRecord> for NodeRecord {
    type Error = InvalidNodeRecord;

    fn try_from(wire: WireNodeRecord) -> Result<NodeRecord, InvalidNodeRecord> {
        NodeRecord::new(
            wire.peer_id,
            wire.spiffe_id,
            wire.addresses,
            wire.issued_at,
            wire.expires_at,
        )
    }
}

impl NodeRecord {
    /// A node record, checked against the rules of [`InvalidNodeRecord`].
    pub fn new(
        peer_id: impl Into<String>,
        spiffe_id: SpiffeId,
        addresses: Vec<String>,
        issued_at: u64,
        expires_at: u64,
    ) -> Result<NodeRecord, InvalidNodeRecord> {
        let peer_id = peer_id.into();
        check_peer_id(&peer_id)?;
        if spiffe_id.is_trust_domain_id() {
            return Err(InvalidNodeRecord::NotWorkloadId {
                spiffe_id: spiffe_id.as_str().to_owned(),
            });
        }
        if addresses.len() > MAX_NODE_ADDRESSES {
            return Err(InvalidNodeRecord::TooManyAddresses {
                count: addresses.len(),
            });
        }
        if let Some(index) = addresses.iter().position(|a| !is_multiaddr_text(a)) {
            return Err(InvalidNodeRecord::Address { index });
        }
        if issued_at >= expires_at {
            return Err(InvalidNodeRecord::EmptyWindow {
                issued_at,
                expires_at,
            });
        }
        Ok(NodeRecord {
            addresses,
            expires_at,
            issued_at,
            peer_id,
            spiffe_id,
        })
    }

    /// Parses a record payload: its shape, its rules, and that it is canonical.
    ///
    /// The input is bounded by the enclosing document ([`MAX_SIGNED_NODE_RECORD_LEN`]).
    pub fn from_json(bytes: &[u8]) -> Result<NodeRecord, NodeRecordJsonError> {
        let wire: WireNodeRecord =
            serde_json::from_slice(bytes).map_err(NodeRecordJsonError::Json)?;
        let record = NodeRecord::try_from(wire)?;
        if record.to_json() != bytes {
            return Err(NodeRecordJsonError::NotCanonical);
        }
        Ok(record)
    }

    /// The canonical JSON of the record (the DSSE payload).
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, integers and a SPIFFE ID always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// The node's SPIFFE ID.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The node's listen addresses (multiaddr text).
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// When the record was issued, Unix seconds.
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// When the record expires, Unix seconds (it is valid strictly before).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// A peer id as `PeerId::to_string()` writes it: non-empty base58btc within the bound.
fn check_peer_id(peer_id: &str) -> Result<(), InvalidNodeRecord> {
    let ok = !peer_id.is_empty()
        && peer_id.len() <= MAX_PEER_ID_LEN
        && peer_id.bytes().all(|b| BASE58_ALPHABET.contains(&b));
    if ok {
        Ok(())
    } else {
        Err(InvalidNodeRecord::PeerId {
            peer_id: peer_id.chars().take(MAX_PEER_ID_LEN + 1).collect(),
        })
    }
}

/// The text form of a multiaddr (multiformats/multiaddr: "`/<protocol>/<value>…`"):
/// starts with `/`, visible ASCII only (values such as DNS names or percent-encoded
/// unix paths never need white space), within [`MAX_NODE_ADDRESS_LEN`]. Which protocols
/// appear is the transport's business; the record only carries the text.
fn is_multiaddr_text(address: &str) -> bool {
    address.len() > 1
        && address.len() <= MAX_NODE_ADDRESS_LEN
        && address.starts_with('/')
        && address.bytes().all(|b| b.is_ascii_graphic())
}

/// Why a signed node record document was refused before any verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeRecordParseError {
    /// The document is longer than [`MAX_SIGNED_NODE_RECORD_LEN`].
    #[error(
        "the signed node record is {len} bytes; at most {MAX_SIGNED_NODE_RECORD_LEN} are accepted"
    )]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Not JSON of the shape `{"envelope": <DSSE envelope>, "svidChain": [<base64>…]}`,
    /// or the envelope breaks a DSSE parsing rule.
    #[error("the signed node record is not JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    /// A certificate of `svidChain` is not padded standard base64.
    #[error("certificate {index} of the node record's svidChain is not valid base64")]
    ChainBase64 {
        /// Its position (0 is the leaf).
        index: usize,
    },
    /// `svidChain` is empty or longer than [`MAX_SVID_CHAIN_LEN`].
    #[error(
        "the node record's svidChain has {len} certificates; 1 to {MAX_SVID_CHAIN_LEN} are accepted"
    )]
    ChainLength {
        /// How many.
        len: usize,
    },
}

/// Why a node record could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeRecordSignError {
    /// The signer failed.
    #[error("signing the node record failed: {0}")]
    Signer(#[source] SignError),
    /// The chain is empty or longer than [`MAX_SVID_CHAIN_LEN`].
    #[error(
        "an SVID chain of {len} certificates cannot be attached; 1 to {MAX_SVID_CHAIN_LEN} are accepted"
    )]
    ChainLength {
        /// How many.
        len: usize,
    },
    /// The signed document would exceed [`MAX_SIGNED_NODE_RECORD_LEN`] (certificates too
    /// large), so no peer would accept it.
    #[error(
        "the signed node record would be {len} bytes; at most {MAX_SIGNED_NODE_RECORD_LEN} are accepted"
    )]
    TooLarge {
        /// Its length.
        len: usize,
    },
}

/// Why [`SignedNodeRecord::verify`] refused a node record. Every variant is the sending
/// peer's fault or its operator's (an expired SVID, an unfederated domain); none is the
/// caller's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeRecordError {
    /// The envelope's payload type is not [`NODE_RECORD_PAYLOAD_TYPE`].
    #[error("the envelope's payload type is {found:?}, not {NODE_RECORD_PAYLOAD_TYPE:?}")]
    PayloadType {
        /// The payload type found (truncated to 128 characters).
        found: String,
    },
    /// The envelope does not carry exactly one signature (the SVID key's).
    #[error("a node record carries exactly one signature, this one {count}")]
    SignatureCount {
        /// How many it carries.
        count: usize,
    },
    /// The payload is not a node record.
    #[error("the node record's payload is invalid: {0}")]
    Payload(#[source] NodeRecordJsonError),
    /// The record names another peer than the one it came from: a record replayed by
    /// another node.
    #[error("the node record is for peer {record}, but it was received from peer {connection}")]
    WrongPeer {
        /// The peer id in the record.
        record: String,
        /// The peer id of the connection.
        connection: String,
    },
    /// `issuedAt` is later than now plus the allowed clock skew.
    #[error(
        "the node record is issued at {issued_at}, later than now ({now}) plus the allowed \
         clock skew of {max_skew_secs} s"
    )]
    IssuedInFuture {
        /// `issuedAt`, Unix seconds.
        issued_at: u64,
        /// The time of the check, Unix seconds.
        now: u64,
        /// The allowed skew, seconds.
        max_skew_secs: u64,
    },
    /// The record has expired (`expiresAt` ≤ now).
    #[error("the node record expired at {expires_at}; it is now {now}")]
    Expired {
        /// `expiresAt`, Unix seconds.
        expires_at: u64,
        /// The time of the check, Unix seconds.
        now: u64,
    },
    /// The record's trust domain has no accepted bundle: it is not federated (yet).
    #[error(
        "no trust bundle is accepted for trust domain {trust_domain}; its nodes cannot be bound"
    )]
    UnknownTrustDomain {
        /// The record's trust domain.
        trust_domain: TrustDomain,
    },
    /// The chain is not a valid X.509-SVID of the record's trust domain under its
    /// accepted bundle, now.
    #[error("the node record's SVID chain is not valid: {0}")]
    Svid(#[source] X509SvidError),
    /// The SVID is another workload's than the record names.
    #[error("the node record names {record}, but its SVID is {svid}")]
    SpiffeIdMismatch {
        /// The record's SPIFFE ID.
        record: SpiffeId,
        /// The SVID's SPIFFE ID.
        svid: SpiffeId,
    },
    /// The DSSE signature is not the SVID key's.
    #[error("the node record's signature is not by its SVID's key: {0}")]
    Signature(#[source] SvidSignatureError),
    /// `expiresAt` is after the SVID's notAfter: the record would outlive its signer.
    #[error(
        "the node record expires at {expires_at}, after its SVID (notAfter {svid_not_after}); \
         it must be re-issued when the SVID rotates"
    )]
    OutlivesSvid {
        /// `expiresAt`, Unix seconds.
        expires_at: u64,
        /// The SVID's notAfter, Unix seconds.
        svid_not_after: i64,
    },
}

/// A node record in its DSSE envelope, with the signing X.509-SVID chain (leaf first).
///
/// Read with [`SignedNodeRecord::from_json`] (nothing verified) and checked with
/// [`SignedNodeRecord::verify`]; created with [`SignedNodeRecord::sign`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedNodeRecord {
    /// The envelope; its payload is the canonical record.
    envelope: Envelope,
    /// The X.509-SVID chain, DER, leaf first (Workload API order).
    svid_chain: Vec<Vec<u8>>,
}

/// The document as read from JSON.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSignedNodeRecord {
    envelope: Envelope,
    svid_chain: Vec<String>,
}

/// A node record that passed [`SignedNodeRecord::verify`]: the peer it came from speaks
/// for its SPIFFE ID until [`VerifiedNodeRecord::expires_at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedNodeRecord {
    record: NodeRecord,
    svid_not_after: i64,
}

impl VerifiedNodeRecord {
    /// The verified record.
    pub fn record(&self) -> &NodeRecord {
        &self.record
    }

    /// The peer id (the connection's).
    pub fn peer_id(&self) -> &str {
        self.record.peer_id()
    }

    /// The SPIFFE ID the peer speaks for.
    pub fn spiffe_id(&self) -> &SpiffeId {
        self.record.spiffe_id()
    }

    /// When the record was issued, Unix seconds.
    pub fn issued_at(&self) -> u64 {
        self.record.issued_at()
    }

    /// When the binding ends, Unix seconds (never after the SVID's notAfter).
    pub fn expires_at(&self) -> u64 {
        self.record.expires_at()
    }

    /// The signing SVID's notAfter, Unix seconds.
    pub fn svid_not_after(&self) -> i64 {
        self.svid_not_after
    }
}

impl SignedNodeRecord {
    /// Signs `record` with `signer` (the key of the X.509-SVID whose chain, leaf first, is
    /// `svid_chain`).
    ///
    /// Nothing checks here that the key is the leaf's or that the record's times fit
    /// the SVID; [`SignedNodeRecord::verify`] does, as every peer will.
    pub fn sign(
        record: &NodeRecord,
        signer: &dyn DsseSigner,
        svid_chain: Vec<Vec<u8>>,
    ) -> Result<SignedNodeRecord, NodeRecordSignError> {
        if svid_chain.is_empty() || svid_chain.len() > MAX_SVID_CHAIN_LEN {
            return Err(NodeRecordSignError::ChainLength {
                len: svid_chain.len(),
            });
        }
        let envelope = Envelope::sign(NODE_RECORD_PAYLOAD_TYPE, record.to_json(), &[signer])
            .map_err(NodeRecordSignError::Signer)?;
        let signed = SignedNodeRecord {
            envelope,
            svid_chain,
        };
        let len = signed.to_json().len();
        if len > MAX_SIGNED_NODE_RECORD_LEN {
            return Err(NodeRecordSignError::TooLarge { len });
        }
        Ok(signed)
    }

    /// Parses a signed node record document. Verifies nothing.
    pub fn from_json(bytes: &[u8]) -> Result<SignedNodeRecord, NodeRecordParseError> {
        if bytes.len() > MAX_SIGNED_NODE_RECORD_LEN {
            return Err(NodeRecordParseError::TooLarge { len: bytes.len() });
        }
        let wire: WireSignedNodeRecord =
            serde_json::from_slice(bytes).map_err(NodeRecordParseError::Json)?;
        // The array is bounded by the document size; its length is checked before
        // anything is decoded.
        if wire.svid_chain.is_empty() || wire.svid_chain.len() > MAX_SVID_CHAIN_LEN {
            return Err(NodeRecordParseError::ChainLength {
                len: wire.svid_chain.len(),
            });
        }
        let svid_chain = wire
            .svid_chain
            .iter()
            .enumerate()
            .map(|(index, b64)| {
                STANDARD
                    .decode(b64)
                    .map_err(|_| NodeRecordParseError::ChainBase64 { index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SignedNodeRecord {
            envelope: wire.envelope,
            svid_chain,
        })
    }

    /// The document as compact JSON, members in lexicographic order at every level
    /// (`envelope`, `svidChain`; the envelope's as [`Envelope::to_json`] writes them).
    pub fn to_json(&self) -> Vec<u8> {
        let chain: Vec<serde_json::Value> = self
            .svid_chain
            .iter()
            .map(|der| STANDARD.encode(der).into())
            .collect();
        let mut obj = serde_json::Map::new();
        obj.insert("envelope".into(), self.envelope.to_json_value());
        obj.insert("svidChain".into(), chain.into());
        serde_json::Value::Object(obj).to_string().into_bytes()
    }

    /// The DSSE envelope (unverified).
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The attached X.509-SVID chain, DER, leaf first (unverified).
    pub fn svid_chain(&self) -> &[Vec<u8>] {
        &self.svid_chain
    }

    /// Verifies the record received on a connection from `expected_peer_id`, at `now`.
    ///
    /// `bundle_of` returns the **accepted** bundle of a trust domain (from the domain
    /// registry), or `None` for a domain that is not federated. Checks, cheapest first:
    ///
    /// 1. the payload type is [`NODE_RECORD_PAYLOAD_TYPE`] and there is exactly one
    ///    signature;
    /// 2. the payload is a valid, canonical [`NodeRecord`];
    /// 3. its `peerId` is `expected_peer_id` (a record is only valid from its own peer);
    /// 4. `issuedAt` ≤ now + `max_clock_skew_secs`, and now < `expiresAt`;
    /// 5. the record's trust domain has a bundle, and the chain validates as an
    ///    X.509-SVID of that domain under it at `now` (X509-SVID §5);
    /// 6. the SVID's SPIFFE ID is the record's;
    /// 7. the DSSE signature verifies with the SVID key over
    ///    PAE(payloadType, payload);
    /// 8. `expiresAt` ≤ the SVID's notAfter.
    ///
    /// DSSE: "implementations MUST ensure that the same SERIALIZED_BODY that is verified
    /// is the same sent to the application layer": the record returned is parsed from the
    /// very payload bytes the signature is checked over, held by this value.
    pub fn verify<'b>(
        &self,
        expected_peer_id: &str,
        bundle_of: impl Fn(&TrustDomain) -> Option<&'b TrustBundle>,
        now: Timestamp,
        max_clock_skew_secs: u64,
    ) -> Result<VerifiedNodeRecord, NodeRecordError> {
        if self.envelope.payload_type() != NODE_RECORD_PAYLOAD_TYPE {
            return Err(NodeRecordError::PayloadType {
                found: self.envelope.payload_type().chars().take(128).collect(),
            });
        }
        let [signature] = self.envelope.signatures() else {
            return Err(NodeRecordError::SignatureCount {
                count: self.envelope.signatures().len(),
            });
        };
        let payload = self.envelope.unverified_payload();
        let record = NodeRecord::from_json(payload).map_err(NodeRecordError::Payload)?;
        if record.peer_id != expected_peer_id {
            return Err(NodeRecordError::WrongPeer {
                record: record.peer_id,
                connection: expected_peer_id.to_owned(),
            });
        }
        let now_secs = now.as_unix_seconds();
        if record.issued_at > now_secs.saturating_add(max_clock_skew_secs) {
            return Err(NodeRecordError::IssuedInFuture {
                issued_at: record.issued_at,
                now: now_secs,
                max_skew_secs: max_clock_skew_secs,
            });
        }
        if record.expires_at <= now_secs {
            return Err(NodeRecordError::Expired {
                expires_at: record.expires_at,
                now: now_secs,
            });
        }
        let trust_domain = record.spiffe_id.trust_domain();
        let bundle =
            bundle_of(trust_domain).ok_or_else(|| NodeRecordError::UnknownTrustDomain {
                trust_domain: trust_domain.clone(),
            })?;
        let svid: VerifiedX509Svid = verify_x509_svid(&self.svid_chain, trust_domain, bundle, now)
            .map_err(NodeRecordError::Svid)?;
        if svid.spiffe_id != record.spiffe_id {
            return Err(NodeRecordError::SpiffeIdMismatch {
                record: record.spiffe_id,
                svid: svid.spiffe_id,
            });
        }
        // DSSE protocol.md: "Verify SIGNATURE against PAE(UTF8(PAYLOAD_TYPE),
        // SERIALIZED_BODY)"; the key is the SVID leaf's, whatever the unauthenticated
        // keyid says.
        verify_svid_signature(&svid, &self.envelope.pae(), signature.sig())
            .map_err(NodeRecordError::Signature)?;
        // A record never outlives the SVID that signed it (the SVID's notAfter is
        // inclusive in X.509, the record's expiresAt exclusive).
        if i128::from(record.expires_at) > i128::from(svid.not_after_unix) {
            return Err(NodeRecordError::OutlivesSvid {
                expires_at: record.expires_at,
                svid_not_after: svid.not_after_unix,
            });
        }
        Ok(VerifiedNodeRecord {
            record,
            svid_not_after: svid.not_after_unix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::DecodePrivateKey as _;
    use proptest::prelude::*;
    use rcgen::string::Ia5String;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
    };
    use serde_json::{Map, Value};
    use std::time::Duration;

    /// 2026-11-25T00:00:00Z.
    const NOW: u64 = 1_795_564_800;
    const PEER: &str = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    const OTHER_PEER: &str = "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK";
    const SKEW: u64 = 60;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(NOW)
    }

    fn set_window(params: &mut CertificateParams, not_before: u64, not_after: u64) {
        let epoch = date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs(not_before);
        params.not_after = epoch + Duration::from_secs(not_after);
    }

    fn ec_jwk(point: &[u8]) -> Map<String, Value> {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (x, y) = point[1..].split_at(32);
        let mut m = Map::new();
        m.insert("kty".into(), "EC".into());
        m.insert("crv".into(), "P-256".into());
        m.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
        m.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
        m
    }

    /// A trust domain with a test SPIFFE root and its bundle.
    struct Domain {
        td: TrustDomain,
        ca: Issuer<'static, KeyPair>,
        bundle: TrustBundle,
    }

    /// An X.509-SVID: its chain and its key as a DSSE signer.
    struct Svid {
        chain: Vec<Vec<u8>>,
        key: p256::ecdsa::SigningKey,
    }

    impl Domain {
        fn new(name: &str) -> Domain {
            let td = TrustDomain::parse(name).unwrap();
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::OrganizationName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            set_window(&mut params, NOW - 86_400, NOW + 86_400);
            let cert = params.self_signed(&key).unwrap();
            let mut bundle = TrustBundle::new();
            bundle
                .add_x509_authority(cert.der(), ec_jwk(key.public_key_raw()))
                .unwrap();
            Domain {
                td,
                ca: Issuer::new(params, key),
                bundle,
            }
        }

        fn id(&self, path: &str) -> SpiffeId {
            SpiffeId::new(&self.td, path).unwrap()
        }

        /// An SVID leaf for `path` valid `not_before..=not_after`, P-256 key.
        fn svid(&self, path: &str, not_before: u64, not_after: u64) -> Svid {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params.subject_alt_names = vec![SanType::URI(
                Ia5String::try_from(self.id(path).as_str()).unwrap(),
            )];
            set_window(&mut params, not_before, not_after);
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let cert = params.signed_by(&key, &self.ca).unwrap();
            Svid {
                chain: vec![cert.der().to_vec()],
                key: p256::ecdsa::SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap(),
            }
        }

        /// The usual node SVID: valid an hour around now.
        fn node_svid(&self) -> Svid {
            self.svid("/provmesh/node/n1", NOW - 600, NOW + 3600)
        }
    }

    fn record(spiffe_id: SpiffeId, peer: &str, issued_at: u64, expires_at: u64) -> NodeRecord {
        NodeRecord::new(
            peer,
            spiffe_id,
            vec![
                "/ip4/10.0.0.7/tcp/4001".into(),
                "/ip4/10.0.0.7/udp/4001/quic-v1".into(),
            ],
            issued_at,
            expires_at,
        )
        .unwrap()
    }

    fn signed(domain: &Domain, svid: &Svid, record: &NodeRecord) -> SignedNodeRecord {
        let signed = SignedNodeRecord::sign(record, &svid.key, svid.chain.clone()).unwrap();
        // Always through the wire, as a peer receives it.
        SignedNodeRecord::from_json(&signed.to_json()).unwrap_or_else(|e| {
            panic!("{e} for {}", domain.td);
        })
    }

    fn verify_with(
        signed: &SignedNodeRecord,
        peer: &str,
        domains: &[&Domain],
        at: u64,
    ) -> Result<VerifiedNodeRecord, NodeRecordError> {
        signed.verify(
            peer,
            |td| domains.iter().find(|d| d.td == *td).map(|d| &d.bundle),
            Timestamp::from_unix_seconds(at),
            SKEW,
        )
    }

    #[test]
    fn a_valid_record_binds_the_peer_to_its_svid() {
        let a = Domain::new("org-a.example");
        let svid = a.node_svid();
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW - 10, NOW + 600);
        let verified = verify_with(&signed(&a, &svid, &rec), PEER, &[&a], NOW).unwrap();
        assert_eq!(verified.peer_id(), PEER);
        assert_eq!(verified.spiffe_id(), &a.id("/provmesh/node/n1"));
        assert_eq!(verified.expires_at(), NOW + 600);
        assert_eq!(verified.issued_at(), NOW - 10);
        assert_eq!(verified.svid_not_after(), (NOW + 3600) as i64);
        assert_eq!(verified.record(), &rec);
        // Exactly at the edges: issued at now + skew, one second before expiry, and a
        // record expiring exactly at the SVID's notAfter.
        let edge = record(a.id("/provmesh/node/n1"), PEER, NOW + SKEW, NOW + 3600);
        assert!(verify_with(&signed(&a, &svid, &edge), PEER, &[&a], NOW).is_ok());
        assert!(verify_with(&signed(&a, &svid, &rec), PEER, &[&a], NOW + 599).is_ok());
    }

    #[test]
    fn a_record_from_another_peer_is_refused() {
        let a = Domain::new("org-a.example");
        let svid = a.node_svid();
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW, NOW + 600);
        let err = verify_with(&signed(&a, &svid, &rec), OTHER_PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::WrongPeer { ref record, ref connection }
                if record == PEER && connection == OTHER_PEER),
            "{err}"
        );
    }

    #[test]
    fn only_the_records_own_domain_bundle_validates_it() {
        let a = Domain::new("org-a.example");
        let b = Domain::new("org-b.example");
        let svid = a.node_svid();
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW, NOW + 600);
        let signed = signed(&a, &svid, &rec);
        // org-a's record checked with org-b's bundle in org-a's place.
        let err = signed
            .verify(PEER, |_| Some(&b.bundle), now(), SKEW)
            .unwrap_err();
        assert!(
            matches!(err, NodeRecordError::Svid(X509SvidError::Untrusted { .. })),
            "{err}"
        );
        // org-a not federated: a distinct error.
        let err = verify_with(&signed, PEER, &[&b], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::UnknownTrustDomain { ref trust_domain } if *trust_domain == a.td),
            "{err}"
        );
        // An org-b SVID signing a record that claims an org-a identity.
        let b_svid = b.node_svid();
        let forged = SignedNodeRecord::sign(&rec, &b_svid.key, b_svid.chain.clone()).unwrap();
        let err = verify_with(&forged, PEER, &[&a, &b], NOW).unwrap_err();
        assert!(
            matches!(
                err,
                NodeRecordError::Svid(X509SvidError::ForeignTrustDomain { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn an_svid_of_another_workload_cannot_sign_for_the_node() {
        let a = Domain::new("org-a.example");
        let svid = a.svid("/ci/builder", NOW - 600, NOW + 3600);
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW, NOW + 600);
        let err = verify_with(&signed(&a, &svid, &rec), PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::SpiffeIdMismatch { ref record, ref svid }
                if *record == a.id("/provmesh/node/n1") && *svid == a.id("/ci/builder")),
            "{err}"
        );
    }

    #[test]
    fn expired_and_future_records_and_svids_are_refused() {
        let a = Domain::new("org-a.example");
        let svid = a.node_svid();
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW - 10, NOW + 600);
        let signed_rec = signed(&a, &svid, &rec);
        let err = verify_with(&signed_rec, PEER, &[&a], NOW + 600).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::Expired { expires_at, now } if expires_at == NOW + 600 && now == NOW + 600),
            "{err}"
        );
        let future = record(a.id("/provmesh/node/n1"), PEER, NOW + SKEW + 1, NOW + 600);
        let err = verify_with(&signed(&a, &svid, &future), PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::IssuedInFuture { .. }),
            "{err}"
        );
        // An SVID that expired while the record claims to be valid.
        let old_svid = a.svid("/provmesh/node/n1", NOW - 3600, NOW - 1);
        let err = verify_with(&signed(&a, &old_svid, &rec), PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(
                err,
                NodeRecordError::Svid(X509SvidError::NotValidAt { position: 0, .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn a_record_cannot_outlive_its_svid() {
        let a = Domain::new("org-a.example");
        let svid = a.node_svid();
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW, NOW + 3601);
        let err = verify_with(&signed(&a, &svid, &rec), PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::OutlivesSvid { expires_at, svid_not_after }
                if expires_at == NOW + 3601 && svid_not_after == (NOW + 3600) as i64),
            "{err}"
        );
    }

    #[test]
    fn bad_signatures_are_refused() {
        let a = Domain::new("org-a.example");
        let svid = a.node_svid();
        let other = a.node_svid();
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW, NOW + 600);
        // Signed by another key than the leaf's.
        let wrong_key = SignedNodeRecord::sign(&rec, &other.key, svid.chain.clone()).unwrap();
        let err = verify_with(&wrong_key, PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(
                err,
                NodeRecordError::Signature(SvidSignatureError::BadSignature)
            ),
            "{err}"
        );
        // A valid signature moved onto a changed payload (another address).
        let good = signed(&a, &svid, &rec);
        let mut changed = rec.clone();
        changed.addresses = vec!["/ip4/192.0.2.1/tcp/4001".into()];
        let tampered = SignedNodeRecord {
            envelope: Envelope::from_parts(
                NODE_RECORD_PAYLOAD_TYPE,
                changed.to_json(),
                good.envelope().signatures().to_vec(),
            )
            .unwrap(),
            svid_chain: svid.chain.clone(),
        };
        let err = verify_with(&tampered, PEER, &[&a], NOW).unwrap_err();
        assert!(matches!(err, NodeRecordError::Signature(_)), "{err}");
        // No signature, two signatures, another payload type.
        let unsigned = SignedNodeRecord {
            envelope: Envelope::new(NODE_RECORD_PAYLOAD_TYPE, rec.to_json()),
            svid_chain: svid.chain.clone(),
        };
        let err = verify_with(&unsigned, PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::SignatureCount { count: 0 }),
            "{err}"
        );
        let mut twice = good.clone();
        twice.envelope.add_signature(&svid.key).unwrap();
        let err = verify_with(&twice, PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::SignatureCount { count: 2 }),
            "{err}"
        );
        let other_type = SignedNodeRecord {
            envelope: Envelope::sign("application/vnd.in-toto+json", rec.to_json(), &[&svid.key])
                .unwrap(),
            svid_chain: svid.chain.clone(),
        };
        let err = verify_with(&other_type, PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(err, NodeRecordError::PayloadType { ref found } if found == "application/vnd.in-toto+json"),
            "{err}"
        );
    }

    #[test]
    fn the_record_json_is_canonical() {
        let a = Domain::new("org-a.example");
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW, NOW + 600);
        let expected = format!(
            r#"{{"addresses":["/ip4/10.0.0.7/tcp/4001","/ip4/10.0.0.7/udp/4001/quic-v1"],"expiresAt":{},"issuedAt":{NOW},"peerId":"{PEER}","spiffeId":"spiffe://org-a.example/provmesh/node/n1"}}"#,
            NOW + 600
        );
        assert_eq!(String::from_utf8(rec.to_json()).unwrap(), expected);
        // Members sorted as a serde_json map would sort them.
        let value: Value = serde_json::from_slice(&rec.to_json()).unwrap();
        assert_eq!(value.to_string().into_bytes(), rec.to_json());
        assert_eq!(NodeRecord::from_json(expected.as_bytes()).unwrap(), rec);
        // The same record, other encodings: refused.
        let spaced = expected.replacen(',', ", ", 1);
        assert!(matches!(
            NodeRecord::from_json(spaced.as_bytes()),
            Err(NodeRecordJsonError::NotCanonical)
        ));
        let reordered = format!(
            r#"{{"spiffeId":"spiffe://org-a.example/provmesh/node/n1","addresses":["/ip4/10.0.0.7/tcp/4001","/ip4/10.0.0.7/udp/4001/quic-v1"],"expiresAt":{},"issuedAt":{NOW},"peerId":"{PEER}"}}"#,
            NOW + 600
        );
        assert!(matches!(
            NodeRecord::from_json(reordered.as_bytes()),
            Err(NodeRecordJsonError::NotCanonical)
        ));
        // A signed record whose payload is not canonical is refused before any crypto.
        let svid = a.node_svid();
        let envelope =
            Envelope::sign(NODE_RECORD_PAYLOAD_TYPE, spaced.into_bytes(), &[&svid.key]).unwrap();
        let signed = SignedNodeRecord {
            envelope,
            svid_chain: svid.chain,
        };
        let err = verify_with(&signed, PEER, &[&a], NOW).unwrap_err();
        assert!(
            matches!(
                err,
                NodeRecordError::Payload(NodeRecordJsonError::NotCanonical)
            ),
            "{err}"
        );
    }

    #[test]
    fn invalid_record_fields_are_refused() {
        let id = SpiffeId::parse("spiffe://org-a.example/provmesh/node/n1").unwrap();
        let new = |peer: &str, id: SpiffeId, addrs: Vec<String>, i: u64, e: u64| {
            NodeRecord::new(peer, id, addrs, i, e)
        };
        for bad_peer in [
            "",
            "12D3KooW0OIl",
            "12D3 KooW",
            &"1".repeat(MAX_PEER_ID_LEN + 1),
        ] {
            assert!(
                matches!(
                    new(bad_peer, id.clone(), vec![], 1, 2),
                    Err(InvalidNodeRecord::PeerId { .. })
                ),
                "{bad_peer:?}"
            );
        }
        assert!(matches!(
            new(PEER, id.trust_domain().id(), vec![], 1, 2),
            Err(InvalidNodeRecord::NotWorkloadId { .. })
        ));
        let many = vec!["/ip4/10.0.0.1/tcp/1".to_owned(); MAX_NODE_ADDRESSES + 1];
        assert!(matches!(
            new(PEER, id.clone(), many, 1, 2),
            Err(InvalidNodeRecord::TooManyAddresses { count: 17 })
        ));
        let at_limit = vec![format!("/dns/{}", "a".repeat(MAX_NODE_ADDRESS_LEN - 5)); 16];
        assert!(new(PEER, id.clone(), at_limit, 1, 2).is_ok());
        for bad in [
            String::new(),
            "/".into(),
            "ip4/10.0.0.1".into(),
            "/ip4/10.0.0.1 /tcp/1".into(),
            "/dns/é".into(),
            format!("/dns/{}", "a".repeat(MAX_NODE_ADDRESS_LEN - 4)),
        ] {
            assert!(
                matches!(
                    new(
                        PEER,
                        id.clone(),
                        vec!["/ip4/10.0.0.1/tcp/1".into(), bad.clone()],
                        1,
                        2
                    ),
                    Err(InvalidNodeRecord::Address { index: 1 })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            new(PEER, id.clone(), vec![], 5, 5),
            Err(InvalidNodeRecord::EmptyWindow { .. })
        ));
        // Unknown and missing members.
        let unknown = format!(
            r#"{{"addresses":[],"expiresAt":2,"extra":1,"issuedAt":1,"peerId":"{PEER}","spiffeId":"{id}"}}"#
        );
        assert!(matches!(
            NodeRecord::from_json(unknown.as_bytes()),
            Err(NodeRecordJsonError::Json(_))
        ));
        let missing =
            format!(r#"{{"addresses":[],"expiresAt":2,"peerId":"{PEER}","spiffeId":"{id}"}}"#);
        assert!(matches!(
            NodeRecord::from_json(missing.as_bytes()),
            Err(NodeRecordJsonError::Json(_))
        ));
        let bad_id = format!(
            r#"{{"addresses":[],"expiresAt":2,"issuedAt":1,"peerId":"{PEER}","spiffeId":"spiffe://Org/x"}}"#
        );
        assert!(matches!(
            NodeRecord::from_json(bad_id.as_bytes()),
            Err(NodeRecordJsonError::Json(_))
        ));
        let negative = format!(
            r#"{{"addresses":[],"expiresAt":2,"issuedAt":-1,"peerId":"{PEER}","spiffeId":"{id}"}}"#
        );
        assert!(NodeRecord::from_json(negative.as_bytes()).is_err());
        // Embedded in another serde document, the rules still hold.
        let empty_window = format!(
            r#"{{"addresses":[],"expiresAt":1,"issuedAt":1,"peerId":"{PEER}","spiffeId":"{id}"}}"#
        );
        assert!(serde_json::from_str::<NodeRecord>(&empty_window).is_err());
    }

    #[test]
    fn malformed_and_oversized_documents_are_refused() {
        let a = Domain::new("org-a.example");
        let svid = a.node_svid();
        let rec = record(a.id("/provmesh/node/n1"), PEER, NOW, NOW + 600);
        let good = SignedNodeRecord::sign(&rec, &svid.key, svid.chain.clone()).unwrap();
        let good_json: Value = serde_json::from_slice(&good.to_json()).unwrap();
        let with = |key: &str, value: Value| {
            let mut doc = good_json.clone();
            doc[key] = value;
            doc.to_string().into_bytes()
        };
        let oversized = vec![b' '; MAX_SIGNED_NODE_RECORD_LEN + 1];
        assert!(matches!(
            SignedNodeRecord::from_json(&oversized),
            Err(NodeRecordParseError::TooLarge { len }) if len == MAX_SIGNED_NODE_RECORD_LEN + 1
        ));
        for bad in [&b"{"[..], b"[]", b"null", b"{\"envelope\":{}}"] {
            assert!(matches!(
                SignedNodeRecord::from_json(bad),
                Err(NodeRecordParseError::Json(_))
            ));
        }
        assert!(matches!(
            SignedNodeRecord::from_json(&with("extra", Value::Bool(true))),
            Err(NodeRecordParseError::Json(_))
        ));
        assert!(matches!(
            SignedNodeRecord::from_json(&with("svidChain", serde_json::json!(["not base64!"]))),
            Err(NodeRecordParseError::ChainBase64 { index: 0 })
        ));
        assert!(matches!(
            SignedNodeRecord::from_json(&with("svidChain", serde_json::json!([]))),
            Err(NodeRecordParseError::ChainLength { len: 0 })
        ));
        let long_chain = vec![Value::from("AA=="); MAX_SVID_CHAIN_LEN + 1];
        assert!(matches!(
            SignedNodeRecord::from_json(&with("svidChain", long_chain.into())),
            Err(NodeRecordParseError::ChainLength { len: 9 })
        ));
        let mut bad_envelope = good_json.clone();
        bad_envelope["envelope"]["payload"] = "%%%".into();
        assert!(matches!(
            SignedNodeRecord::from_json(bad_envelope.to_string().as_bytes()),
            Err(NodeRecordParseError::Json(_))
        ));
        // Garbage certificates parse as bytes and are refused by verification.
        let garbage =
            SignedNodeRecord::from_json(&with("svidChain", serde_json::json!(["AAEC"]))).unwrap();
        assert!(matches!(
            verify_with(&garbage, PEER, &[&a], NOW),
            Err(NodeRecordError::Svid(X509SvidError::Malformed { .. }))
        ));
        // Signing refuses what no peer would accept.
        assert!(matches!(
            SignedNodeRecord::sign(&rec, &svid.key, vec![]),
            Err(NodeRecordSignError::ChainLength { len: 0 })
        ));
        assert!(matches!(
            SignedNodeRecord::sign(&rec, &svid.key, vec![vec![0; MAX_SIGNED_NODE_RECORD_LEN]]),
            Err(NodeRecordSignError::TooLarge { .. })
        ));
    }

    fn arb_record() -> impl Strategy<Value = NodeRecord> {
        let peer = proptest::string::string_regex("[1-9A-HJ-NP-Za-km-z]{1,128}").unwrap();
        let path = proptest::string::string_regex("(/[a-zA-Z0-9._-]{0,12}[a-zA-Z0-9_-])+").unwrap();
        let address = proptest::string::string_regex("/[!-~]{1,255}").unwrap();
        (
            peer,
            path,
            proptest::collection::vec(address, 0..=MAX_NODE_ADDRESSES),
            0..u64::MAX - 1,
            1..u64::MAX,
        )
            .prop_filter_map("valid record", |(peer, path, addresses, issued, span)| {
                let td = TrustDomain::parse("org-a.example").ok()?;
                let id = SpiffeId::new(&td, &path).ok()?;
                NodeRecord::new(peer, id, addresses, issued, issued.saturating_add(span)).ok()
            })
    }

    proptest! {
        /// Records and signed records round-trip through their JSON exactly.
        #[test]
        fn records_round_trip(rec in arb_record(), chain in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..64), 1..=MAX_SVID_CHAIN_LEN)) {
            prop_assert_eq!(NodeRecord::from_json(&rec.to_json()).unwrap(), rec.clone());
            let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
            let signed = SignedNodeRecord::sign(&rec, &key, chain).unwrap();
            let json = signed.to_json();
            let back = SignedNodeRecord::from_json(&json).unwrap();
            prop_assert_eq!(&back, &signed);
            prop_assert_eq!(back.to_json(), json);
            prop_assert_eq!(NodeRecord::from_json(back.envelope().unverified_payload()).unwrap(), rec);
        }
    }
}
