//! The mesh's wire messages (`protocol/proto/provmesh/v1/mesh.proto`), decoded from
//! untrusted bytes into checked types before any rule looks at them.
//!
//! Every limit is enforced here, once, for the node and the simulator alike: a message
//! larger than its bound is refused before it is decoded, every repeated field is
//! bounded, hashes are 32 bytes, origins and trust domains are well-formed names, and a
//! gossip message must match its topic (a checkpoint travels only in its log's topic).
//! What the decoded objects *mean* — whether a record or checkpoint verifies — is the
//! business of [`crate::federation`] and [`super::checkpoints`].

use prost::Message as _;

use super::checkpoints::{Summary as CheckpointSummary, SummaryEntry, TreeHead};
use crate::evidence;
use crate::merkle::Hash;
use crate::proto::provmesh::v1 as pb;
use crate::spiffe::TrustDomain;

/// The libp2p request-response protocol of the mesh.
pub const MESH_PROTOCOL: &str = "/provmesh/mesh/1.0.0";
/// The gossipsub topic of domain records.
pub const DOMAIN_RECORDS_TOPIC: &str = "provmesh/v1/domain-records";
/// The gossipsub topic of equivocation evidence, which every node follows.
pub const EVIDENCE_TOPIC: &str = "provmesh/v1/evidence";
/// The prefix of a log's gossipsub topic; the origin follows.
pub const LOG_TOPIC_PREFIX: &str = "provmesh/v1/log/";

/// The largest gossip message: room for a domain record (at most 47 KiB of JSON, see
/// `federation::domain_record::MAX_SIGNED_RECORD_JSON_LEN`) with framing, and for records
/// of later versions that may be larger.
pub const MAX_GOSSIP_MESSAGE_BYTES: usize = 320 * 1024;
/// The largest checkpoint note: a checkpoint with its log signature and cosignatures.
pub const MAX_CHECKPOINT_NOTE_BYTES: usize = 64 * 1024;
/// The largest request.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The largest response: an anti-entropy answer or a chain of records.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// The most logs or domains one summary may list.
pub const MAX_SUMMARY_ENTRIES: usize = 4096;
/// The most checkpoints or records in one answer.
pub const MAX_ANSWER_ITEMS: usize = 256;
/// The most origins a node may declare it serves.
pub const MAX_SERVED_ORIGINS: usize = 64;
/// The longest log origin accepted on the wire.
pub const MAX_ORIGIN_LEN: usize = 256;
/// The most hashes in a consistency proof: RFC 9162 proofs of 64-bit trees need fewer.
pub const MAX_PROOF_HASHES: usize = 128;
/// The longest refusal reason kept.
pub const MAX_REASON_LEN: usize = 512;

/// The gossipsub topic of the log `origin`.
pub fn log_topic(origin: &str) -> String {
    format!("{LOG_TOPIC_PREFIX}{origin}")
}

/// The origin whose log topic `topic` is, if it is one.
pub fn origin_of_topic(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(LOG_TOPIC_PREFIX)
        .filter(|origin| check_origin(origin).is_ok())
}

/// A gossip message, checked against its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gossip {
    /// A signed checkpoint note of the topic's log.
    Checkpoint(Vec<u8>),
    /// A signed domain record (JSON).
    DomainRecord(Vec<u8>),
    /// Equivocation evidence (JSON), at most `evidence::MAX_EVIDENCE_BYTES`.
    Evidence(Vec<u8>),
}

/// A mesh request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// The sender's node record and the logs it serves.
    Hello(Hello),
    /// Anti-entropy: what the sender knows.
    Summary(Summary),
    /// A consistency proof of a served log.
    Consistency {
        /// The log.
        origin: String,
        /// The older size.
        first_size: u64,
        /// The newer size.
        last_size: u64,
    },
    /// The records of a domain after a sequence.
    RecordChain {
        /// The domain.
        trust_domain: TrustDomain,
        /// Records with a higher sequence are wanted.
        after_sequence: u64,
    },
    /// The records of the artifact with this SHA-256 digest in the responder's logs.
    Lookup {
        /// The artifact's digest.
        sha256: Hash,
    },
}

/// One record of a [`Response::Lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRecord {
    /// Its Sigstore bundle (JSON).
    pub bundle: Vec<u8>,
    /// The proposed entry kept for an attestation (with its envelope).
    pub attestation: Option<Vec<u8>>,
}

/// The most records a [`Response::Lookup`] carries.
pub const MAX_LOOKUP_RECORDS: usize = 64;
/// The largest bundle or kept attestation in a [`Response::Lookup`].
pub const MAX_LOOKUP_ITEM_BYTES: usize = 1024 * 1024;

/// A mesh response, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// The responder's node record and served logs.
    Hello(Hello),
    /// What the requester lacks.
    Summary {
        /// Signed checkpoint notes.
        checkpoints: Vec<Vec<u8>>,
        /// Signed domain records, oldest first per domain.
        domain_records: Vec<Vec<u8>>,
        /// Equivocation evidence documents (JSON).
        evidence: Vec<Vec<u8>>,
    },
    /// A consistency proof.
    Consistency {
        /// The proof hashes, in RFC 9162 order.
        proof: Vec<Hash>,
        /// When the older size is a power of two, that subtree in the responder's tree.
        old_subtree: Option<Hash>,
    },
    /// Signed domain records, oldest first.
    RecordChain(Vec<Vec<u8>>),
    /// The records of a looked-up artifact.
    Lookup(Vec<FoundRecord>),
    /// Not served, and why.
    Refused(String),
}

/// A node's introduction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Its signed node record (JSON), verified by [`crate::federation::node_record`].
    pub node_record: Vec<u8>,
    /// Origins of the logs it can prove consistency for.
    pub serves_origins: Vec<String>,
}

/// What a node knows: latest checkpoints and accepted record sequences.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The latest checkpoint of each followed log (a log without one is sent with size
    /// 0 and an empty root hash).
    pub logs: CheckpointSummary,
    /// `(trust domain, record sequence)` of each domain with an accepted record.
    pub domains: Vec<(TrustDomain, u64)>,
    /// The ids of the equivocation evidence held.
    pub evidence_ids: Vec<[u8; 32]>,
}

/// Why bytes are not a valid mesh message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Larger than the bound of its kind.
    #[error("the message is {len} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not a protobuf encoding of the expected message.
    #[error("the message does not decode: {0}")]
    Decode(String),
    /// The message carries no body.
    #[error("the message is empty")]
    Empty,
    /// A gossip message in a topic that does not carry its kind.
    #[error("a {kind} does not belong in topic {topic:?}")]
    WrongTopic {
        /// What the message is.
        kind: &'static str,
        /// The topic it came in.
        topic: String,
    },
    /// A field breaks a rule.
    #[error("{field}: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn field(field: &'static str, reason: impl Into<String>) -> WireError {
    WireError::Field {
        field,
        reason: reason.into(),
    }
}

fn check_len(bytes: &[u8], max: usize) -> Result<(), WireError> {
    if bytes.len() > max {
        return Err(WireError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

/// A log origin as C2SP tlog-checkpoint allows it on the first line: non-empty, no
/// white space or control characters ("The origin line [...] SHOULD be a schema-less
/// URL"), bounded.
fn check_origin(origin: &str) -> Result<(), WireError> {
    if origin.is_empty() || origin.len() > MAX_ORIGIN_LEN {
        return Err(field(
            "origin",
            format!("must be 1 to {MAX_ORIGIN_LEN} bytes"),
        ));
    }
    if origin.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(field(
            "origin",
            "must not contain white space or control characters",
        ));
    }
    Ok(())
}

fn hash(bytes: &[u8], name: &'static str) -> Result<Hash, WireError> {
    bytes
        .try_into()
        .map_err(|_| field(name, format!("{} bytes, not 32", bytes.len())))
}

fn bounded<T>(items: &[T], max: usize, name: &'static str) -> Result<(), WireError> {
    if items.len() > max {
        return Err(field(
            name,
            format!("{} items; at most {max} are accepted", items.len()),
        ));
    }
    Ok(())
}

fn decode<M: prost::Message + Default>(bytes: &[u8], max: usize) -> Result<M, WireError> {
    check_len(bytes, max)?;
    M::decode(bytes).map_err(|e| WireError::Decode(e.to_string()))
}

/// Decodes a gossip message that arrived in `topic`.
pub fn decode_gossip(topic: &str, bytes: &[u8]) -> Result<Gossip, WireError> {
    let message: pb::GossipMessage = decode(bytes, MAX_GOSSIP_MESSAGE_BYTES)?;
    let wrong = |kind| WireError::WrongTopic {
        kind,
        topic: topic.to_owned(),
    };
    match message.body.ok_or(WireError::Empty)? {
        pb::gossip_message::Body::Checkpoint(note) => {
            if origin_of_topic(topic).is_none() {
                return Err(wrong("checkpoint"));
            }
            check_len(&note, MAX_CHECKPOINT_NOTE_BYTES)?;
            // The origin is the note's first line; the topic must name the same log.
            let first_line = note.split(|b| *b == b'\n').next().unwrap_or_default();
            if Some(first_line) != origin_of_topic(topic).map(str::as_bytes) {
                return Err(wrong("checkpoint of another log"));
            }
            Ok(Gossip::Checkpoint(note))
        }
        pb::gossip_message::Body::DomainRecord(record) => {
            if topic != DOMAIN_RECORDS_TOPIC {
                return Err(wrong("domain record"));
            }
            Ok(Gossip::DomainRecord(record))
        }
        pb::gossip_message::Body::Evidence(evidence) => {
            if topic != EVIDENCE_TOPIC {
                return Err(wrong("evidence"));
            }
            check_len(&evidence, crate::evidence::MAX_EVIDENCE_BYTES)?;
            Ok(Gossip::Evidence(evidence))
        }
    }
}

/// Encodes a gossip message.
pub fn encode_gossip(message: &Gossip) -> Vec<u8> {
    let body = match message {
        Gossip::Checkpoint(note) => pb::gossip_message::Body::Checkpoint(note.clone()),
        Gossip::DomainRecord(record) => pb::gossip_message::Body::DomainRecord(record.clone()),
        Gossip::Evidence(evidence) => pb::gossip_message::Body::Evidence(evidence.clone()),
    };
    pb::GossipMessage { body: Some(body) }.encode_to_vec()
}

fn hello_from(hello: pb::Hello) -> Result<Hello, WireError> {
    bounded(&hello.serves_origins, MAX_SERVED_ORIGINS, "serves_origins")?;
    for origin in &hello.serves_origins {
        check_origin(origin)?;
    }
    if hello.node_record.is_empty() {
        return Err(field("node_record", "missing"));
    }
    Ok(Hello {
        node_record: hello.node_record,
        serves_origins: hello.serves_origins,
    })
}

fn hello_to(hello: &Hello) -> pb::Hello {
    pb::Hello {
        node_record: hello.node_record.clone(),
        serves_origins: hello.serves_origins.clone(),
    }
}

/// Decodes a request.
pub fn decode_request(bytes: &[u8]) -> Result<Request, WireError> {
    use pb::mesh_request::Body;
    let message: pb::MeshRequest = decode(bytes, MAX_REQUEST_BYTES)?;
    Ok(match message.body.ok_or(WireError::Empty)? {
        Body::Hello(hello) => Request::Hello(hello_from(hello)?),
        Body::Summary(summary) => {
            bounded(&summary.logs, MAX_SUMMARY_ENTRIES, "logs")?;
            bounded(&summary.domains, MAX_SUMMARY_ENTRIES, "domains")?;
            let mut logs = CheckpointSummary::default();
            for head in summary.logs {
                check_origin(&head.origin)?;
                let head_of = if head.root_hash.is_empty() && head.size == 0 {
                    None
                } else {
                    Some(TreeHead {
                        size: head.size,
                        root: hash(&head.root_hash, "root_hash")?,
                    })
                };
                logs.entries.push(SummaryEntry {
                    origin: head.origin,
                    head: head_of,
                    // A count above what any note can carry is a lie, harmless: it only
                    // makes this node pull from the sender.
                    cosignatures: usize::try_from(head.cosignatures).unwrap_or(usize::MAX),
                });
            }
            let mut domains = Vec::with_capacity(summary.domains.len());
            for head in summary.domains {
                let td = TrustDomain::parse(&head.trust_domain)
                    .map_err(|e| field("trust_domain", e.to_string()))?;
                domains.push((td, head.record_sequence));
            }
            bounded(
                &summary.evidence_ids,
                evidence::MAX_EVIDENCE_IDS,
                "evidence_ids",
            )?;
            let evidence_ids = summary
                .evidence_ids
                .iter()
                .map(|id| hash(id, "evidence_ids"))
                .collect::<Result<_, _>>()?;
            Request::Summary(Summary {
                logs,
                domains,
                evidence_ids,
            })
        }
        Body::Consistency(request) => {
            check_origin(&request.origin)?;
            if request.first_size > request.last_size {
                return Err(field("first_size", "larger than last_size"));
            }
            Request::Consistency {
                origin: request.origin,
                first_size: request.first_size,
                last_size: request.last_size,
            }
        }
        Body::RecordChain(request) => Request::RecordChain {
            trust_domain: TrustDomain::parse(&request.trust_domain)
                .map_err(|e| field("trust_domain", e.to_string()))?,
            after_sequence: request.after_sequence,
        },
        Body::Lookup(request) => Request::Lookup {
            sha256: hash(&request.sha256, "sha256")?,
        },
    })
}

/// Encodes a request.
pub fn encode_request(request: &Request) -> Vec<u8> {
    use pb::mesh_request::Body;
    let body = match request {
        Request::Hello(hello) => Body::Hello(hello_to(hello)),
        Request::Summary(summary) => Body::Summary(pb::MeshSummary {
            logs: summary
                .logs
                .entries
                .iter()
                .map(|entry| pb::LogHead {
                    origin: entry.origin.clone(),
                    size: entry.head.map_or(0, |h| h.size),
                    root_hash: entry.head.map(|h| h.root.to_vec()).unwrap_or_default(),
                    cosignatures: u32::try_from(entry.cosignatures).unwrap_or(u32::MAX),
                })
                .collect(),
            domains: summary
                .domains
                .iter()
                .map(|(td, sequence)| pb::DomainHead {
                    trust_domain: td.to_string(),
                    record_sequence: *sequence,
                })
                .collect(),
            evidence_ids: summary.evidence_ids.iter().map(|id| id.to_vec()).collect(),
        }),
        Request::Consistency {
            origin,
            first_size,
            last_size,
        } => Body::Consistency(pb::ConsistencyRequest {
            origin: origin.clone(),
            first_size: *first_size,
            last_size: *last_size,
        }),
        Request::RecordChain {
            trust_domain,
            after_sequence,
        } => Body::RecordChain(pb::RecordChainRequest {
            trust_domain: trust_domain.to_string(),
            after_sequence: *after_sequence,
        }),
        Request::Lookup { sha256 } => Body::Lookup(pb::LookupRequest {
            sha256: sha256.to_vec(),
        }),
    };
    pb::MeshRequest { body: Some(body) }.encode_to_vec()
}

/// Decodes a response.
pub fn decode_response(bytes: &[u8]) -> Result<Response, WireError> {
    use pb::mesh_response::Body;
    let message: pb::MeshResponse = decode(bytes, MAX_RESPONSE_BYTES)?;
    Ok(match message.body.ok_or(WireError::Empty)? {
        Body::Hello(hello) => Response::Hello(hello_from(hello)?),
        Body::Summary(answer) => {
            bounded(&answer.checkpoints, MAX_ANSWER_ITEMS, "checkpoints")?;
            bounded(&answer.domain_records, MAX_ANSWER_ITEMS, "domain_records")?;
            for note in &answer.checkpoints {
                check_len(note, MAX_CHECKPOINT_NOTE_BYTES)?;
            }
            for record in &answer.domain_records {
                check_len(record, MAX_GOSSIP_MESSAGE_BYTES)?;
            }
            bounded(
                &answer.evidence,
                evidence::MAX_EVIDENCE_PER_ANSWER,
                "evidence",
            )?;
            for document in &answer.evidence {
                check_len(document, evidence::MAX_EVIDENCE_BYTES)?;
            }
            Response::Summary {
                checkpoints: answer.checkpoints,
                domain_records: answer.domain_records,
                evidence: answer.evidence,
            }
        }
        Body::Consistency(proof_message) => {
            bounded(&proof_message.hashes, MAX_PROOF_HASHES, "hashes")?;
            let proof = proof_message
                .hashes
                .iter()
                .map(|h| hash(h, "hashes"))
                .collect::<Result<_, _>>()?;
            let old_subtree = match proof_message.old_subtree.as_slice() {
                [] => None,
                bytes => Some(hash(bytes, "old_subtree")?),
            };
            Response::Consistency { proof, old_subtree }
        }
        Body::RecordChain(chain) => {
            bounded(&chain.records, MAX_ANSWER_ITEMS, "records")?;
            for record in &chain.records {
                check_len(record, MAX_GOSSIP_MESSAGE_BYTES)?;
            }
            Response::RecordChain(chain.records)
        }
        Body::Lookup(answer) => {
            bounded(&answer.records, MAX_LOOKUP_RECORDS, "records")?;
            let mut records = Vec::with_capacity(answer.records.len());
            for record in answer.records {
                check_len(&record.bundle, MAX_LOOKUP_ITEM_BYTES)?;
                check_len(&record.attestation, MAX_LOOKUP_ITEM_BYTES)?;
                if record.bundle.is_empty() {
                    return Err(field("bundle", "empty"));
                }
                records.push(FoundRecord {
                    bundle: record.bundle,
                    attestation: (!record.attestation.is_empty()).then_some(record.attestation),
                });
            }
            Response::Lookup(records)
        }
        Body::Refused(refusal) => {
            let mut reason = refusal.reason;
            if reason.len() > MAX_REASON_LEN {
                let mut end = MAX_REASON_LEN;
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                reason.truncate(end);
            }
            Response::Refused(reason)
        }
    })
}

/// Encodes a response.
pub fn encode_response(response: &Response) -> Vec<u8> {
    use pb::mesh_response::Body;
    let body = match response {
        Response::Hello(hello) => Body::Hello(hello_to(hello)),
        Response::Summary {
            checkpoints,
            domain_records,
            evidence,
        } => Body::Summary(pb::SummaryAnswer {
            checkpoints: checkpoints.clone(),
            domain_records: domain_records.clone(),
            evidence: evidence.clone(),
        }),
        Response::Consistency { proof, old_subtree } => Body::Consistency(pb::ConsistencyProof {
            hashes: proof.iter().map(|h| h.to_vec()).collect(),
            old_subtree: old_subtree.map(|h| h.to_vec()).unwrap_or_default(),
            ..Default::default()
        }),
        Response::RecordChain(records) => Body::RecordChain(pb::RecordChain {
            records: records.clone(),
        }),
        Response::Lookup(records) => Body::Lookup(pb::LookupAnswer {
            records: records
                .iter()
                .map(|r| pb::FoundRecord {
                    bundle: r.bundle.clone(),
                    attestation: r.attestation.clone().unwrap_or_default(),
                })
                .collect(),
        }),
        Response::Refused(reason) => Body::Refused(pb::Refusal {
            reason: reason.clone(),
        }),
    };
    pb::MeshResponse { body: Some(body) }.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn td(name: &str) -> TrustDomain {
        TrustDomain::parse(name).unwrap()
    }

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Hello(Hello {
                node_record: b"{}".to_vec(),
                serves_origins: vec!["log.org-a.example".into()],
            }),
            Request::Summary(Summary {
                logs: CheckpointSummary {
                    entries: vec![
                        SummaryEntry {
                            origin: "log.org-a.example".into(),
                            head: Some(TreeHead {
                                size: 7,
                                root: [3; 32],
                            }),
                            cosignatures: 2,
                        },
                        SummaryEntry {
                            origin: "log.org-c.example".into(),
                            head: None,
                            cosignatures: 0,
                        },
                    ],
                },
                domains: vec![(td("org-a.example"), 2)],
                evidence_ids: vec![[9; 32]],
            }),
            Request::Consistency {
                origin: "log.org-a.example".into(),
                first_size: 3,
                last_size: 9,
            },
            Request::RecordChain {
                trust_domain: td("org-b.example"),
                after_sequence: 4,
            },
            Request::Lookup { sha256: [5; 32] },
        ];
        for request in requests {
            assert_eq!(decode_request(&encode_request(&request)), Ok(request));
        }
    }

    #[test]
    fn responses_round_trip() {
        let responses = [
            Response::Summary {
                checkpoints: vec![b"log.a\n1\nAAAA\n".to_vec()],
                domain_records: vec![b"{}".to_vec()],
                evidence: vec![b"{}".to_vec()],
            },
            Response::Consistency {
                proof: vec![[1; 32], [2; 32]],
                old_subtree: None,
            },
            Response::Consistency {
                proof: vec![[1; 32]],
                old_subtree: Some([3; 32]),
            },
            Response::RecordChain(vec![b"{}".to_vec()]),
            Response::Lookup(vec![
                FoundRecord {
                    bundle: b"{}".to_vec(),
                    attestation: None,
                },
                FoundRecord {
                    bundle: b"{\"b\":1}".to_vec(),
                    attestation: Some(b"{\"a\":1}".to_vec()),
                },
            ]),
            Response::Refused("not served".into()),
        ];
        for response in responses {
            assert_eq!(decode_response(&encode_response(&response)), Ok(response));
        }
    }

    #[test]
    fn a_checkpoint_travels_only_in_its_own_log_topic() {
        let note = b"log.org-a.example\n1\nAAAA\n\n\xe2\x80\x94 x\n".to_vec();
        let bytes = encode_gossip(&Gossip::Checkpoint(note.clone()));
        assert_eq!(
            decode_gossip(&log_topic("log.org-a.example"), &bytes),
            Ok(Gossip::Checkpoint(note))
        );
        for topic in [
            log_topic("log.org-b.example"),
            DOMAIN_RECORDS_TOPIC.to_owned(),
        ] {
            assert!(matches!(
                decode_gossip(&topic, &bytes),
                Err(WireError::WrongTopic { .. })
            ));
        }
        let record = encode_gossip(&Gossip::DomainRecord(b"{}".to_vec()));
        assert!(matches!(
            decode_gossip(&log_topic("log.org-a.example"), &record),
            Err(WireError::WrongTopic { .. })
        ));
        assert!(decode_gossip(DOMAIN_RECORDS_TOPIC, &record).is_ok());
    }

    #[test]
    fn oversized_and_malformed_messages_are_refused() {
        let big = vec![0u8; MAX_GOSSIP_MESSAGE_BYTES + 1];
        assert!(matches!(
            decode_gossip(DOMAIN_RECORDS_TOPIC, &big),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_request(&[0xff, 0xff, 0xff]),
            Err(WireError::Decode(_))
        ));
        assert_eq!(decode_request(&[]), Err(WireError::Empty));
        let bad_hash = pb::MeshRequest {
            body: Some(pb::mesh_request::Body::Summary(pb::MeshSummary {
                logs: vec![pb::LogHead {
                    origin: "log.a".into(),
                    size: 1,
                    root_hash: vec![0; 31],
                    cosignatures: 0,
                }],
                domains: vec![],
                evidence_ids: vec![],
            })),
        }
        .encode_to_vec();
        assert!(matches!(
            decode_request(&bad_hash),
            Err(WireError::Field {
                field: "root_hash",
                ..
            })
        ));
        let bad_origin = encode_request(&Request::Consistency {
            origin: "two words".into(),
            first_size: 1,
            last_size: 2,
        });
        assert!(decode_request(&bad_origin).is_err());
        let backwards = encode_request(&Request::Consistency {
            origin: "log.a".into(),
            first_size: 5,
            last_size: 2,
        });
        assert!(decode_request(&backwards).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
            let _ = decode_gossip(DOMAIN_RECORDS_TOPIC, &bytes);
            let _ = decode_gossip(&log_topic("log.a"), &bytes);
        }
    }
}
