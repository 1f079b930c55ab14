//! The fixture of the log API tests (`log_http.rs`, `log_grpc.rs`): a real log task on a
//! temporary redb store with a fixed checkpoint key and a fresh code-signing root, the
//! signers and proposed entries sent to it, and the checks of its signatures that do not
//! depend on the API's wire format.
//!
//! Entries the log must admit are signed with `provmesh_node::bench::signing`, the code
//! `provmesh bench log` signs with, so these tests check it too; only what the log must
//! refuse (a foreign CA, a leaf without the codeSigning purpose, a signature over other
//! bytes) is built here. Declared by the log tests alone (`#[path]`), so that the other
//! test binaries do not compile it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use prometheus_client::registry::Registry;
use provmesh_node::bench::signing::{BenchCa, Signer};
use provmesh_node::log::service::{self, LogHandle, LogSettings, LogTaskError};
use provmesh_node::log::store::RedbLogStore;
use provmesh_node::shutdown::{self, Shutdown, ShutdownTrigger};
use provmesh_protocol::checkpoint::Checkpoint;
use provmesh_protocol::log::entry::ProposedEntry;
use provmesh_protocol::log::quota::QuotaConfig;
use provmesh_protocol::log::sequencer::SequencerConfig;
use provmesh_protocol::log::signer_cert::CodeSigningRoots;
use provmesh_protocol::note::{Ed25519Signer, KeyName};
use rcgen::ExtendedKeyUsagePurpose;
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;

/// The log's origin (its checkpoint key's name).
pub(crate) const ORIGIN: &str = "log.org-a.example";
/// The trust domain whose code-signing root the log trusts.
const TRUST_DOMAIN: &str = "org-a.example";
/// The identity every test signer's certificate binds.
const SPIFFE_ID: &str = "spiffe://org-a.example/build";
/// How long a test signer's certificate is valid (from a minute ago).
const LEAF_VALIDITY: Duration = Duration::from_secs(600);
/// Every wait in these tests ends by then, or the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// `future`, or a failed test after [`DEADLINE`].
pub(crate) async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .expect("answered in time")
}

/// Seconds since the Unix epoch, now: the test's own clock, to check integrated times.
pub(crate) fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// Settings that keep the tests fast: batches close after 5 ms, and the quota is out of
/// the way unless a test sets one.
pub(crate) fn fast_settings() -> LogSettings {
    LogSettings {
        sequencer: SequencerConfig {
            max_batch_delay: Duration::from_millis(5),
            ..SequencerConfig::default()
        },
        quota: QuotaConfig::per_second(100_000, 100_000),
        ..LogSettings::default()
    }
}

/// The log's checkpoint key: fixed, so that a test can sign a checkpoint "of this log"
/// before the log starts.
pub(crate) fn note_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &[7; 32])
}

/// A checkpoint of `size` entries with root `root`, signed with the log's key: what the
/// mesh may know of the log (the `published` checkpoint the log starts with).
pub(crate) fn signed_checkpoint(size: u64, root: [u8; 32]) -> Vec<u8> {
    Checkpoint::new(ORIGIN, size, root)
        .unwrap()
        .sign(&[&note_signer()])
        .unwrap()
        .to_bytes()
}

/// A proposed `hashedrekord` entry (the Rekor v1 REST body) for `artifact`, signed by
/// `signer`. ECDSA signatures are randomized, so two calls give two distinct entries for
/// the same artifact.
pub(crate) fn hashedrekord(signer: &Signer, artifact: &[u8]) -> Vec<u8> {
    signer
        .hashedrekord(Sha256::digest(artifact).into())
        .unwrap()
}

/// [`hashedrekord`] for `artifact` with `signer`'s signature over `signed` instead: an
/// entry whose signature does not verify.
pub(crate) fn hashedrekord_signed(signer: &Signer, artifact: &[u8], signed: &[u8]) -> Vec<u8> {
    let signature = signer.sign_digest(&Sha256::digest(signed).into()).unwrap();
    ProposedEntry::hashedrekord(
        Sha256::digest(artifact).into(),
        signature,
        signer.certificate_der().to_vec(),
    )
    .unwrap()
    .to_json()
}

/// A code-signing signer for the test identity whose certificate a CA the log does not
/// trust issued.
pub(crate) fn foreign_signer() -> Signer {
    BenchCa::generate("elsewhere.example")
        .unwrap()
        .issue_signer(SPIFFE_ID, LEAF_VALIDITY)
        .unwrap()
}

/// A running log task with nothing in front of it: each API test puts its server there.
pub(crate) struct RunningLog {
    pub(crate) handle: LogHandle,
    /// The public half of the log's checkpoint key ([`note_signer`]).
    pub(crate) public_key: [u8; 32],
    /// The domain's code-signing CA: its root is the only one the log trusts.
    ca: BenchCa,
    trigger: ShutdownTrigger,
    task: Option<JoinHandle<Result<(), LogTaskError>>>,
    _dir: tempfile::TempDir,
}

impl RunningLog {
    /// Starts a log on a new temporary store and spawns its task (on the current tokio
    /// runtime). `published` is the newest checkpoint the mesh knows for it, if any.
    pub(crate) fn start(settings: LogSettings, published: Option<Vec<u8>>) -> RunningLog {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbLogStore::open(dir.path().join("log.redb")).unwrap());
        let signer = note_signer();
        let public_key = signer.public_key();
        let ca = BenchCa::generate(TRUST_DOMAIN).unwrap();
        let roots = CodeSigningRoots::from_pem(ca.root_pem().as_bytes()).unwrap();
        let (trigger, shutdown) = shutdown::channel();
        let (handle, task) = service::start(
            settings,
            store,
            signer,
            roots,
            published,
            &mut Registry::default(),
            shutdown,
        )
        .unwrap();
        RunningLog {
            handle,
            public_key,
            ca,
            trigger,
            task: Some(tokio::spawn(task)),
            _dir: dir,
        }
    }

    /// The log's shutdown signal, for a server that stops with the log, as in the node.
    #[allow(
        dead_code,
        reason = "log_http's server shares it; log_grpc's has its own"
    )]
    pub(crate) fn shutdown(&self) -> Shutdown {
        self.trigger.subscribe()
    }

    /// A signer the log admits: a code-signing leaf for the test identity, issued under
    /// the log's root.
    pub(crate) fn code_signer(&self) -> Signer {
        self.ca.issue_signer(SPIFFE_ID, LEAF_VALIDITY).unwrap()
    }

    /// A signer the log admits for another identity of the domain.
    #[allow(dead_code, reason = "only log_grpc signs as another identity")]
    pub(crate) fn code_signer_as(&self, spiffe_id: &str) -> Signer {
        self.ca.issue_signer(spiffe_id, LEAF_VALIDITY).unwrap()
    }

    /// A signer whose leaf chains to the log's root but has the clientAuth purpose instead
    /// of codeSigning.
    #[allow(dead_code, reason = "only log_http sends such an entry")]
    pub(crate) fn signer_without_code_signing(&self) -> Signer {
        self.ca
            .issue_signer_with(SPIFFE_ID, LEAF_VALIDITY, |params| {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            })
            .unwrap()
    }

    /// Stops the log task the way the node does and checks that it ends cleanly, in time.
    /// Idempotent.
    pub(crate) async fn stop(&mut self) {
        self.trigger.trigger();
        if let Some(task) = self.task.take() {
            within(task).await.unwrap().unwrap();
        }
    }
}

/// The log's note verifier key in Go's `<name>+<hex id>+<base64(0x01 ‖ key)>` form,
/// built here from the raw key.
fn vkey(public_key: &[u8; 32]) -> String {
    let mut key = vec![0x01];
    key.extend_from_slice(public_key);
    format!(
        "{ORIGIN}+{:08x}+{}",
        signed_note::key_id(ORIGIN, &key),
        STANDARD.encode(&key)
    )
}

/// Verifies a signed checkpoint note with `signed_note` (a port of Go's `sumdb/note`)
/// and parses its body with `tlog_tiles`.
pub(crate) fn verify_note(note: &[u8], public_key: &[u8; 32]) -> tlog_tiles::Checkpoint {
    let verifier = signed_note::StandardVerifier::new(&vkey(public_key)).unwrap();
    let known = signed_note::VerifierList::new(vec![Box::new(verifier)]);
    let parsed = signed_note::Note::from_bytes(note).unwrap();
    let (verified, unverified) = parsed.verify(&known).unwrap();
    assert_eq!(verified.len(), 1);
    assert!(unverified.is_empty());
    let checkpoint = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    assert_eq!(checkpoint.origin(), ORIGIN);
    checkpoint
}

/// Verifies a signed entry timestamp with `ed25519-dalek` over the payload written out
/// here. openapi.yaml: "To verify the signedEntryTimestamp: 1. Remove the Verification
/// object from the JSON Document 2. Canonicalize the remaining JSON document by following
/// RFC 8785 rules 3. Verify ..." — keys sorted, no whitespace.
pub(crate) fn verify_set(
    set: &[u8],
    body_base64: &str,
    integrated_time: i64,
    log_id_hex: &str,
    log_index: u64,
    public_key: &[u8; 32],
) {
    let payload = format!(
        r#"{{"body":"{body_base64}","integratedTime":{integrated_time},"logID":"{log_id_hex}","logIndex":{log_index}}}"#,
    );
    VerifyingKey::from_bytes(public_key)
        .unwrap()
        .verify(payload.as_bytes(), &Signature::from_slice(set).unwrap())
        .expect("the SET verifies");
}
