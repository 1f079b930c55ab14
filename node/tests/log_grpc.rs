//! The log's gRPC API (`provmesh.v1.LogService`, and `provmesh.v1.ProvenanceService` over
//! the same log) end to end: a real log on a temporary redb store, served on a loopback
//! port and driven with the generated tonic clients, as another node or a tool would.
//!
//! What the API serves is checked against values computed here from first principles
//! (leaf hashes and key IDs with `sha2`, signed entry timestamps with `ed25519-dalek` over
//! the RFC 8785 payload written out in the shared fixture `common/log.rs`, which also
//! runs the log and signs the entries sent to it), checkpoints with `signed_note` and
//! `tlog_tiles`, and proofs with `provmesh_protocol::merkle`'s verifiers cross-checked
//! by `tlog_tiles`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/log.rs"]
mod log_fixture;

use std::ops::Deref;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use log_fixture::{
    ORIGIN, RunningLog, fast_settings, foreign_signer, hashedrekord, hashedrekord_signed,
    signed_checkpoint, unix_now, verify_note, verify_set, within,
};
use provmesh_node::grpc::log::RETRY_AFTER_MS;
use provmesh_node::grpc::v1::log_service_client::LogServiceClient;
use provmesh_node::grpc::v1::{
    Checkpoint, ConsistencyProof, CreateEntryRequest, CreateEntryResponse, GetCheckpointRequest,
    GetConsistencyProofRequest, GetEntryRequest, LogEntry, SearchIndexRequest, SearchIndexResponse,
    get_entry_request,
};
use provmesh_node::grpc::{self};
use provmesh_node::log::service::LogSettings;
use provmesh_node::shutdown::{self, ShutdownTrigger};
use provmesh_protocol::log::quota::QuotaConfig;
use provmesh_protocol::merkle::{verify_consistency, verify_inclusion};
use provmesh_protocol::policy::Pattern;
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// The identity monitoring of the test index allows this signer only (the fixture's).
const ALLOWED_SIGNER: &str = "spiffe://org-a.example/build";

/// The request limit of the test servers: small, so that the limit is cheap to test.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------
// A running log, served over gRPC

/// The log of [`RunningLog`] behind its gRPC API on a loopback port, with a client.
struct TestLog {
    running: RunningLog,
    client: LogServiceClient<Channel>,
    channel: Channel,
    /// Stops the gRPC server, on its own: a log that stopped behind a running server is
    /// how the node looks while it shuts down.
    server_trigger: ShutdownTrigger,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    /// The provenance index of the log, allowing only the fixture's identity to sign.
    index: JoinHandle<Result<(), std::convert::Infallible>>,
    _index_dir: tempfile::TempDir,
}

impl Deref for TestLog {
    type Target = RunningLog;

    fn deref(&self) -> &RunningLog {
        &self.running
    }
}

impl TestLog {
    async fn start() -> TestLog {
        TestLog::start_with(fast_settings(), None).await
    }

    async fn start_with(settings: LogSettings, published: Option<Vec<u8>>) -> TestLog {
        let running = RunningLog::start(settings, published);
        let (server_trigger, server_shutdown) = shutdown::channel();
        // The log and the provenance lookups and index over it, as on an authority outside
        // a mesh.
        let index_dir = tempfile::tempdir().unwrap();
        let trust_domain = provmesh_protocol::spiffe::TrustDomain::parse("org-a.example").unwrap();
        let (index, index_task) = provmesh_node::index::start(
            index_dir.path(),
            running.handle.clone(),
            trust_domain.clone(),
            vec![Pattern::Exact(ALLOWED_SIGNER.to_owned())],
            &mut prometheus_client::registry::Registry::default(),
            server_shutdown.clone(),
        )
        .unwrap();
        let routes = grpc::routes(
            Some(running.handle.clone()),
            None,
            Some(index),
            Some(trust_domain),
            MAX_MESSAGE_BYTES,
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(grpc::serve(listener, routes, server_shutdown));
        let channel = within(
            Endpoint::from_shared(format!("http://{address}"))
                .unwrap()
                .connect(),
        )
        .await
        .unwrap();
        TestLog {
            running,
            client: LogServiceClient::new(channel.clone()),
            channel,
            server_trigger,
            server,
            index: tokio::spawn(index_task),
            _index_dir: index_dir,
        }
    }

    async fn create(&self, proposed: Vec<u8>) -> Result<CreateEntryResponse, Status> {
        let request = CreateEntryRequest {
            proposed_entry_json: proposed,
        };
        within(self.client.clone().create_entry(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn created(&self, proposed: Vec<u8>) -> LogEntry {
        let response = self.create(proposed).await.unwrap();
        assert!(response.created);
        response.entry.unwrap()
    }

    async fn get(&self, key: get_entry_request::Key) -> Result<LogEntry, Status> {
        let request = GetEntryRequest { key: Some(key) };
        within(self.client.clone().get_entry(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn checkpoint(&self) -> Result<Checkpoint, Status> {
        within(self.client.clone().get_checkpoint(GetCheckpointRequest {}))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn consistency(&self, first: u64, last: Option<u64>) -> Result<ConsistencyProof, Status> {
        let request = GetConsistencyProofRequest {
            first_size: first,
            last_size: last,
        };
        within(self.client.clone().get_consistency_proof(request))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn search(&self, sha256: Vec<u8>, limit: u32) -> Result<SearchIndexResponse, Status> {
        let request = SearchIndexRequest { sha256, limit };
        within(self.client.clone().search_index(request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Stops the log task alone, leaving the server up.
    async fn stop_log(&mut self) {
        self.running.stop().await;
    }

    /// Stops the server and the log the way the node does, checking both end cleanly.
    async fn stop(mut self) {
        self.server_trigger.trigger();
        within(self.server).await.unwrap().unwrap();
        within(self.index).await.unwrap().unwrap();
        self.running.stop().await;
    }
}

/// Checks a refusal: its code, and a message that says what is wrong.
fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, needle: &str) -> Status {
    let status = result.expect_err("the call is refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "message {:?} should mention {needle:?}",
        status.message()
    );
    status
}

// ---------------------------------------------------------------------------------------
// Independent verification

fn hash(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().expect("a 32-byte hash")
}

/// RFC 9162 §2.1.1: a leaf hash is SHA-256(0x00 ‖ entry).
fn leaf_hash(body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(body);
    hasher.finalize().into()
}

/// The log's key ID: SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ Ed25519 public key).
fn key_id(public_key: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(ORIGIN.as_bytes());
    hasher.update([0x0a, 0x01]);
    hasher.update(public_key);
    hasher.finalize().into()
}

/// Checks a `Checkpoint` message: a note the log signed, whose parsed fields are the
/// note's.
fn verify_checkpoint(checkpoint: &Checkpoint, public_key: &[u8; 32]) {
    let note = verify_note(&checkpoint.signed_note, public_key);
    assert_eq!(checkpoint.origin, ORIGIN);
    assert_eq!(checkpoint.size, note.size());
    assert_eq!(checkpoint.root_hash, note.hash().0);
    assert_eq!(checkpoint.log_id, key_id(public_key));
    // The key hint on the note's signature line is the key ID's first four bytes.
    let mut key = vec![0x01];
    key.extend_from_slice(public_key);
    assert_eq!(
        checkpoint.log_id[..4],
        signed_note::key_id(ORIGIN, &key).to_be_bytes()
    );
}

/// Checks everything a client verifies offline about an entry: UUID, log ID, signed
/// entry timestamp, inclusion proof and the checkpoint it leads to.
fn verify_entry(entry: &LogEntry, public_key: &[u8; 32]) {
    assert_eq!(entry.uuid, leaf_hash(&entry.canonical_body));
    assert_eq!(entry.log_id, key_id(public_key));
    assert!((unix_now() - entry.integrated_time).abs() < 60);

    verify_set(
        &entry.signed_entry_timestamp,
        &STANDARD.encode(&entry.canonical_body),
        entry.integrated_time,
        &hex::encode(&entry.log_id),
        entry.log_index,
        public_key,
    );

    let proof = entry.inclusion_proof.as_ref().expect("an inclusion proof");
    assert_eq!(proof.log_index, entry.log_index);
    let hashes: Vec<[u8; 32]> = proof.hashes.iter().map(|h| hash(h)).collect();
    let root = hash(&proof.root_hash);
    verify_inclusion(
        entry.log_index,
        proof.tree_size,
        &hash(&entry.uuid),
        &hashes,
        &root,
    )
    .expect("the inclusion proof verifies");
    let tlog_hashes: Vec<tlog_tiles::Hash> = hashes.iter().map(|h| tlog_tiles::Hash(*h)).collect();
    tlog_tiles::check_record(
        &tlog_hashes,
        proof.tree_size,
        tlog_tiles::Hash(root),
        entry.log_index,
        tlog_tiles::Hash(hash(&entry.uuid)),
    )
    .expect("tlog_tiles agrees");
    let note = verify_note(&proof.checkpoint, public_key);
    assert_eq!(note.size(), proof.tree_size);
    assert_eq!(note.hash().0, root);
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_prove_and_search() {
    let log = TestLog::start().await;
    let key = log.public_key;
    let signer = log.code_signer();

    // A new log publishes the empty tree (once it is durable).
    within(log.handle.wait_for_size(0)).await;
    let empty = log.checkpoint().await.unwrap();
    verify_checkpoint(&empty, &key);
    assert_eq!(empty.size, 0);

    // Create: each append waits for its own checkpoint, so sizes go 1, 2, 3.
    let proposed_a = hashedrekord(&signer, b"artifact a");
    let a = log.created(proposed_a.clone()).await;
    verify_entry(&a, &key);
    assert_eq!(a.log_index, 0);
    assert_eq!(a.inclusion_proof.as_ref().unwrap().tree_size, 1);
    let body: serde_json::Value = serde_json::from_slice(&a.canonical_body).unwrap();
    assert_eq!(body["kind"], "hashedrekord");
    assert_eq!(
        body["spec"]["data"]["hash"]["value"],
        hex::encode(Sha256::digest(b"artifact a"))
    );

    // The same proposed entry again: not an error, the existing entry.
    let again = log.create(proposed_a).await.unwrap();
    assert!(!again.created);
    let again = again.entry.unwrap();
    verify_entry(&again, &key);
    assert_eq!(again.log_index, a.log_index);
    assert_eq!(again.uuid, a.uuid);
    assert_eq!(again.canonical_body, a.canonical_body);
    assert_eq!(again.integrated_time, a.integrated_time);

    let b = log.created(hashedrekord(&signer, b"artifact b")).await;
    verify_entry(&b, &key);
    assert_eq!(b.log_index, 1);
    let root_2 = b.inclusion_proof.as_ref().unwrap().root_hash.clone();
    // Same artifact as `a`, another signature: another entry, found by the same digest.
    let c = log.created(hashedrekord(&signer, b"artifact a")).await;
    verify_entry(&c, &key);
    assert_eq!(c.log_index, 2);
    assert_ne!(c.uuid, a.uuid);

    // Read back by index and by UUID, proven against the newest checkpoint.
    let by_index = log.get(get_entry_request::Key::LogIndex(1)).await.unwrap();
    verify_entry(&by_index, &key);
    assert_eq!(by_index.uuid, b.uuid);
    assert_eq!(by_index.canonical_body, b.canonical_body);
    assert_eq!(by_index.inclusion_proof.as_ref().unwrap().tree_size, 3);
    let by_uuid = log
        .get(get_entry_request::Key::Uuid(a.uuid.clone()))
        .await
        .unwrap();
    verify_entry(&by_uuid, &key);
    assert_eq!(by_uuid.log_index, 0);
    assert_eq!(by_uuid.canonical_body, a.canonical_body);
    assert_eq!(by_uuid.integrated_time, a.integrated_time);
    assert_eq!(by_uuid.signed_entry_timestamp, a.signed_entry_timestamp);

    // The checkpoint.
    let checkpoint = log.checkpoint().await.unwrap();
    verify_checkpoint(&checkpoint, &key);
    assert_eq!(checkpoint.size, 3);
    let root_1 = a.inclusion_proof.as_ref().unwrap().root_hash.clone();
    let root_3 = checkpoint.root_hash.clone();

    // Consistency, up to the newest checkpoint (last_size absent).
    let proof = log.consistency(1, None).await.unwrap();
    assert_eq!((proof.first_size, proof.last_size), (1, 3));
    assert_eq!(proof.root_hash, root_3);
    let newest = proof.checkpoint.as_ref().unwrap();
    verify_checkpoint(newest, &key);
    assert_eq!(newest.size, 3);
    let hashes: Vec<[u8; 32]> = proof.hashes.iter().map(|h| hash(h)).collect();
    assert!(!hashes.is_empty());
    verify_consistency(1, 3, &hashes, &hash(&root_1), &hash(&root_3)).expect("1 → 3 is consistent");
    // ... and not with another old root.
    assert!(verify_consistency(1, 3, &hashes, &hash(&root_2), &hash(&root_3)).is_err());
    // From a power-of-two size the RFC proof omits the older root: it comes separately.
    assert_eq!(proof.old_subtree, root_1);
    let proof = log.consistency(2, None).await.unwrap();
    assert_eq!(proof.old_subtree, root_2);
    let proof = log.consistency(3, Some(3)).await.unwrap();
    assert!(proof.old_subtree.is_empty());
    // Between two older sizes: the root at the last size comes with it.
    let proof = log.consistency(2, Some(2)).await.unwrap();
    assert!(proof.hashes.is_empty());
    assert_eq!(proof.root_hash, root_2);
    let proof = log.consistency(1, Some(2)).await.unwrap();
    assert_eq!(proof.root_hash, root_2);
    let hashes: Vec<[u8; 32]> = proof.hashes.iter().map(|h| hash(h)).collect();
    verify_consistency(1, 2, &hashes, &hash(&root_1), &hash(&root_2)).expect("1 → 2 is consistent");
    // From the empty tree: an empty proof.
    let proof = log.consistency(0, None).await.unwrap();
    assert!(proof.hashes.is_empty());
    assert_eq!(proof.root_hash, root_3);

    // Search by artifact digest: oldest first, limited, and says when it cut.
    let digest_a = Sha256::digest(b"artifact a").to_vec();
    let found = log.search(digest_a.clone(), 0).await.unwrap();
    assert_eq!(found.uuids, vec![a.uuid.clone(), c.uuid.clone()]);
    assert!(!found.truncated);
    let found = log.search(digest_a.clone(), 1).await.unwrap();
    assert_eq!(found.uuids, vec![a.uuid.clone()]);
    assert!(found.truncated);
    let found = log.search(digest_a, 2).await.unwrap();
    assert_eq!(found.uuids.len(), 2);
    assert!(!found.truncated);
    let found = log
        .search(Sha256::digest(b"artifact b").to_vec(), 10)
        .await
        .unwrap();
    assert_eq!(found.uuids, vec![b.uuid.clone()]);
    let nothing = log
        .search(Sha256::digest(b"never logged").to_vec(), 10)
        .await
        .unwrap();
    assert!(nothing.uuids.is_empty());
    assert!(!nothing.truncated);

    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_the_documented_codes() {
    let mut log = TestLog::start().await;
    let signer = log.code_signer();
    let logged = log.created(hashedrekord(&signer, b"logged")).await;

    // Malformed proposed entries.
    expect_code(
        log.create(b"{not json".to_vec()).await,
        Code::InvalidArgument,
        "not valid JSON",
    );
    expect_code(
        log.create(br#"{"apiVersion":"0.0.1","kind":"rekord","spec":{}}"#.to_vec())
            .await,
        Code::InvalidArgument,
        "rekord",
    );
    // Well formed, refused: a certificate from a CA the domain does not trust, and a
    // signature over other bytes than the artifact.
    expect_code(
        log.create(hashedrekord(&foreign_signer(), b"artifact"))
            .await,
        Code::PermissionDenied,
        "certificate",
    );
    expect_code(
        log.create(hashedrekord_signed(&signer, b"artifact", b"other bytes"))
            .await,
        Code::PermissionDenied,
        "signature",
    );
    // A request over the message limit is refused before the log sees it.
    let mut huge = hashedrekord(&signer, b"huge");
    huge.resize(MAX_MESSAGE_BYTES + 1024, b' ');
    expect_code(log.create(huge).await, Code::OutOfRange, "too large");
    // One of exactly the limit is accepted: the limit is on the proposed entry, as over
    // HTTP, not on the few bytes of protobuf framing around it. (Trailing spaces leave
    // the JSON valid.)
    let mut padded = hashedrekord(&signer, b"padded");
    padded.resize(MAX_MESSAGE_BYTES, b' ');
    let padded = log.create(padded).await.unwrap();
    assert!(padded.created);

    // Entries that are not there, and keys that cannot name one.
    expect_code(
        log.get(get_entry_request::Key::LogIndex(99)).await,
        Code::NotFound,
        "99",
    );
    expect_code(
        log.get(get_entry_request::Key::Uuid(vec![0x55; 32])).await,
        Code::NotFound,
        &"55".repeat(32),
    );
    expect_code(
        log.get(get_entry_request::Key::Uuid(logged.uuid[..31].to_vec()))
            .await,
        Code::InvalidArgument,
        "32-byte",
    );
    let no_key = within(log.client.clone().get_entry(GetEntryRequest { key: None })).await;
    expect_code(no_key, Code::InvalidArgument, "log_index");

    // Proofs beyond the tree, or backwards.
    expect_code(
        log.consistency(1, Some(3)).await,
        Code::OutOfRange,
        "beyond",
    );
    expect_code(
        log.consistency(2, Some(1)).await,
        Code::InvalidArgument,
        "larger",
    );

    // A search digest must be a SHA-256.
    expect_code(
        log.search(vec![1; 20], 0).await,
        Code::InvalidArgument,
        "sha256",
    );

    // A log that stopped (the node shutting down): reads are still served, appends are
    // unavailable.
    log.stop_log().await;
    expect_code(
        log.create(hashedrekord(&signer, b"too late")).await,
        Code::Unavailable,
        "shutting down",
    );
    let read = log.get(get_entry_request::Key::LogIndex(0)).await.unwrap();
    assert_eq!(read.uuid, logged.uuid);
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_is_resource_exhausted_with_a_retry_time() {
    let settings = LogSettings {
        quota: QuotaConfig::per_second(1, 1),
        ..fast_settings()
    };
    let log = TestLog::start_with(settings, None).await;
    let signer = log.code_signer();
    log.created(hashedrekord(&signer, b"one")).await;
    let refused = expect_code(
        log.create(hashedrekord(&signer, b"two")).await,
        Code::ResourceExhausted,
        "quota",
    );
    let retry: u64 = refused
        .metadata()
        .get(RETRY_AFTER_MS)
        .expect("the retry trailer")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1000).contains(&retry), "{retry}");
    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halted_log_is_unavailable() {
    // The mesh knows a checkpoint of size 5 for this log, but the store is empty (an old
    // backup): the log refuses to sign, and has nothing published to serve.
    let published = signed_checkpoint(5, [9; 32]);
    let log = TestLog::start_with(fast_settings(), Some(published)).await;
    expect_code(
        log.create(hashedrekord(&log.code_signer(), b"artifact"))
            .await,
        Code::Unavailable,
        "not accepting",
    );
    expect_code(log.checkpoint().await, Code::Unavailable, "checkpoint");
    expect_code(
        log.consistency(0, None).await,
        Code::Unavailable,
        "checkpoint",
    );
    expect_code(
        log.get(get_entry_request::Key::LogIndex(0)).await,
        Code::Unavailable,
        "checkpoint",
    );
    log.stop().await;
}

/// The parts of `google.protobuf.FileDescriptorProto` this test reads (descriptor.proto
/// field numbers), decoded independently of the crate that encoded them.
#[derive(Clone, PartialEq, prost::Message)]
struct FileDescriptorProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    package: String,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceDescriptorProto>,
}

/// `google.protobuf.ServiceDescriptorProto`: name and methods.
#[derive(Clone, PartialEq, prost::Message)]
struct ServiceDescriptorProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    method: Vec<MethodDescriptorProto>,
}

/// `google.protobuf.MethodDescriptorProto`: the name.
#[derive(Clone, PartialEq, prost::Message)]
struct MethodDescriptorProto {
    #[prost(string, tag = "1")]
    name: String,
}

/// One reflection request, one answer.
async fn reflect(channel: &Channel, request: MessageRequest) -> MessageResponse {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut client = ServerReflectionClient::new(channel.clone());
    let stream = tonic::codegen::tokio_stream::iter([request]);
    let mut answers = within(client.server_reflection_info(stream))
        .await
        .unwrap()
        .into_inner();
    within(answers.message())
        .await
        .unwrap()
        .expect("one answer")
        .message_response
        .expect("a message")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection() {
    let log = TestLog::start().await;

    // gRPC health checking: the server and the log service are SERVING; an unknown
    // service is NOT_FOUND, as the protocol says.
    let mut health = HealthClient::new(log.channel.clone());
    for service in [
        "",
        "provmesh.v1.LogService",
        "provmesh.v1.ProvenanceService",
    ] {
        let answer = within(health.check(HealthCheckRequest {
            service: service.into(),
        }))
        .await
        .unwrap()
        .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = within(health.check(HealthCheckRequest {
        service: "provmesh.v1.NoSuchService".into(),
    }))
    .await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);

    // Reflection lists the services ...
    let MessageResponse::ListServicesResponse(list) =
        reflect(&log.channel, MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "provmesh.v1.LogService",
            "provmesh.v1.ProvenanceService",
        ]
    );

    // ... and describes the log service, so tools can call it without the .proto file.
    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &log.channel,
        MessageRequest::FileContainingSymbol("provmesh.v1.LogService".into()),
    )
    .await
    else {
        panic!("not a file descriptor");
    };
    let file = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| <FileDescriptorProto as prost::Message>::decode(bytes.as_slice()).unwrap())
        .find(|file| file.name == "provmesh/v1/log.proto")
        .expect("log.proto is described");
    assert_eq!(file.package, "provmesh.v1");
    let service = file
        .service
        .iter()
        .find(|s| s.name == "LogService")
        .unwrap();
    let methods: Vec<&str> = service.method.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        methods,
        [
            "CreateEntry",
            "GetEntry",
            "GetCheckpoint",
            "GetConsistencyProof",
            "SearchIndex"
        ]
    );

    log.stop().await;
}

/// `provmesh.v1.ProvenanceService` over the log: an artifact's record with its verdict,
/// nothing found as an empty answer, and clean status codes for bad digests, bad and
/// oversized policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_lookups_answer_and_refuse_cleanly() {
    use provmesh_node::grpc::v1::GetProvenanceRequest;
    use provmesh_node::grpc::v1::provenance_service_client::ProvenanceServiceClient;

    let log = TestLog::start().await;
    let signer = log.code_signer();
    log.created(hashedrekord(&signer, b"artifact a")).await;
    let mut client = ProvenanceServiceClient::new(log.channel.clone());
    let ask = |digest: String, policy: &str| GetProvenanceRequest {
        digest,
        policy: policy.to_owned(),
    };
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(b"artifact a")));

    let answer = within(client.get_provenance(ask(digest.clone(), "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.digest, digest);
    assert_eq!(answer.records.len(), 1);
    let record = &answer.records[0];
    assert_eq!(record.kind, "hashedrekord");
    assert_eq!(record.trust_domain, "org-a.example");
    assert_eq!(record.log_index, 0);
    assert!(answer.verdict.as_ref().unwrap().allowed);
    let bundle: serde_json::Value = serde_json::from_slice(&record.bundle).unwrap();
    assert_eq!(
        bundle["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    // Answers are cached, but a new record of the artifact shows at once: the log grew.
    let proposed = hashedrekord(&log.code_signer(), b"artifact a");
    log.created(proposed).await;
    let again = within(client.get_provenance(ask(digest.clone(), "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.records.len(), 2);
    assert_eq!(again.records[1].log_index, 1);

    // Bare hex, upper case, works too; a policy requiring witnesses denies it.
    let upper = hex::encode_upper(Sha256::digest(b"artifact a"));
    let denied =
        within(client.get_provenance(ask(upper, "version = 1\nmin_witnessing_domains = 1")))
            .await
            .unwrap()
            .into_inner();
    let verdict = denied.records[0].verdict.as_ref().unwrap();
    assert!(!verdict.allowed);
    assert_eq!(verdict.reasons[0].code, "too-few-witnesses");

    // Nothing found: an answer, not an error.
    let none = within(client.get_provenance(ask(format!("sha256:{}", "0".repeat(64)), "")))
        .await
        .unwrap()
        .into_inner();
    assert!(none.records.is_empty());
    assert_eq!(none.verdict.unwrap().reasons[0].code, "no-record");

    // Bad digests and policies: INVALID_ARGUMENT with the reason.
    for (digest, policy, needle) in [
        ("", "", "not a digest"),
        ("sha256:1234", "", "not a digest"),
        (&*"z".repeat(64), "", "not a digest"),
        ("sha512:00", "", "not indexed"),
        (&*digest, "version = 9", "version 9"),
        (
            &*digest,
            "version = 1\n[[domain]]\ntrust_domain = \"A B\"",
            "domain[0].trust_domain",
        ),
        (&*digest, "\u{0}\u{1}garbage", "policy"),
    ] {
        let status = within(client.get_provenance(ask(digest.to_owned(), policy)))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{digest:?} {policy:?}"
        );
        assert!(status.message().contains(needle), "{}", status.message());
    }
    // A policy larger than a request may be is refused before it is read.
    let huge = format!("version = 1\n#{}", "x".repeat(MAX_MESSAGE_BYTES));
    let status = within(client.get_provenance(ask(digest, &huge)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
}

/// `SearchProvenance`, `WatchEntries` and `WatchAlerts` over the log's index: every
/// record found by signer and digest, page by page; a watch replays from a cursor and
/// then streams new records; an entry signed by an identity outside the allowed ones
/// raises an alert; bad filters, page sizes and tokens are INVALID_ARGUMENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_watch_the_index() {
    use provmesh_node::grpc::v1::provenance_service_client::ProvenanceServiceClient;
    use provmesh_node::grpc::v1::{
        RecordFilter, SearchProvenanceRequest, WatchAlertsRequest, WatchEntriesRequest,
    };
    use tokio_stream::StreamExt as _;

    let log = TestLog::start().await;
    let mut client = ProvenanceServiceClient::new(log.channel.clone());
    let signer = log.code_signer();
    for n in 0..5u8 {
        log.created(hashedrekord(&signer, &[b'a', n])).await;
    }
    // Indexing follows the log's checkpoints: wait until it holds the five.
    within(async {
        loop {
            let page = client
                .search_provenance(SearchProvenanceRequest::default())
                .await
                .unwrap()
                .into_inner();
            if page.records.len() == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // Live watches, from now on: every record, and the alerts.
    let mut live = within(client.watch_entries(WatchEntriesRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let mut alerts = within(client.watch_alerts(WatchAlertsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let intruder = log.code_signer_as("spiffe://org-a.example/intruder");
    log.created(hashedrekord(&intruder, b"smuggled")).await;

    let streamed = within(live.next()).await.unwrap().unwrap();
    assert_eq!(streamed.log_index, 5);
    assert_eq!(streamed.signer, "spiffe://org-a.example/intruder");
    let alert = within(alerts.next()).await.unwrap().unwrap();
    assert_eq!(alert.record.as_ref().unwrap().log_index, 5);
    assert!(
        alert.reason.contains("not among the identities allowed"),
        "{}",
        alert.reason
    );

    // Search by signer, two per page: the fixture's five, newest first.
    let search =
        |filter: RecordFilter, page_size: i32, page_token: String| SearchProvenanceRequest {
            filter: Some(filter),
            page_size,
            page_token,
        };
    let by_signer = RecordFilter {
        signer: ALLOWED_SIGNER.to_owned(),
        ..RecordFilter::default()
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = within(client.search_provenance(search(by_signer.clone(), 2, token)))
            .await
            .unwrap()
            .into_inner();
        assert!(page.records.len() <= 2);
        seen.extend(page.records.iter().map(|r| r.log_index));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, vec![4, 3, 2, 1, 0]);
    // By digest, and by signer prefix.
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(b"smuggled")));
    let found = within(client.search_provenance(search(
        RecordFilter {
            subject_digest: digest.clone(),
            ..RecordFilter::default()
        },
        0,
        String::new(),
    )))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(found.records.len(), 1);
    assert_eq!(found.records[0].subjects[0].digest, digest);
    let all = within(client.search_provenance(search(
        RecordFilter {
            signer: "spiffe://org-a.example/*".to_owned(),
            ..RecordFilter::default()
        },
        1000,
        String::new(),
    )))
    .await
    .unwrap()
    .into_inner();
    assert_eq!(all.records.len(), 6);

    // A watch from a cursor replays what came after it, then goes on live.
    let after = all.records[3].cursor.clone(); // entry 2
    let mut replay = within(client.watch_entries(WatchEntriesRequest {
        filter: Some(by_signer.clone()),
        after,
    }))
    .await
    .unwrap()
    .into_inner();
    for expected in [3, 4] {
        assert_eq!(
            within(replay.next()).await.unwrap().unwrap().log_index,
            expected
        );
    }
    log.created(hashedrekord(&signer, b"later")).await;
    assert_eq!(within(replay.next()).await.unwrap().unwrap().log_index, 6);

    // Bad input: INVALID_ARGUMENT with the reason, for every RPC.
    for (request, needle) in [
        (
            search(
                RecordFilter {
                    subject_digest: "sha256:12".into(),
                    ..RecordFilter::default()
                },
                0,
                String::new(),
            ),
            "subject digest",
        ),
        (
            search(
                RecordFilter {
                    signer: "x".repeat(5000),
                    ..RecordFilter::default()
                },
                0,
                String::new(),
            ),
            "longer than",
        ),
        (
            search(
                RecordFilter {
                    integrated_after: 10,
                    integrated_before: 5,
                    ..RecordFilter::default()
                },
                0,
                String::new(),
            ),
            "time range is empty",
        ),
        (
            search(RecordFilter::default(), -1, String::new()),
            "negative",
        ),
        (
            search(
                RecordFilter::default(),
                i32::MAX,
                "c99999999999999999999999".into(),
            ),
            "not one this node gave",
        ),
        (
            search(RecordFilter::default(), 10, "\u{0}garbage".into()),
            "not one this node gave",
        ),
    ] {
        expect_code(
            client.search_provenance(request).await,
            Code::InvalidArgument,
            needle,
        );
    }
    // A page size far beyond the limit is served as the largest page.
    let huge =
        within(client.search_provenance(search(RecordFilter::default(), i32::MAX, String::new())))
            .await
            .unwrap()
            .into_inner();
    assert_eq!(huge.records.len(), 7);
    expect_code(
        client
            .watch_entries(WatchEntriesRequest {
                filter: Some(RecordFilter {
                    trust_domain: "Not A Domain".into(),
                    ..RecordFilter::default()
                }),
                after: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "trust domain",
    );
    expect_code(
        client
            .watch_alerts(WatchAlertsRequest {
                after: "cursor".into(),
            })
            .await,
        Code::InvalidArgument,
        "not one this node gave",
    );
    drop((live, alerts, replay));
    log.stop().await;
}
