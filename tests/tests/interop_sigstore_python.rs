//! A bundle provmesh produces is accepted by stock sigstore-python 4.5.1, offline.
//!
//! End to end, with nothing stubbed: a code-signing root and CT key
//! (`provmesh_protocol::ca`), a real domain log on a temporary redb store
//! (`provmesh_node::log::service`), a Fulcio-profile leaf with one embedded SCT for a fresh
//! P-256 key, an artifact signed with that key and appended to the log as a `hashedrekord`,
//! the bundle assembled from what the log answered (`sigstore_bundle`), and the
//! ClientTrustConfig for the domain (`sigstore_trust`). Then the pinned CLI of
//! `scripts/setup-verifiers`:
//!
//! ```text
//! sigstore --trust-config cfg.json verify identity --offline --bundle artifact.sigstore.json \
//!     --cert-identity spiffe://org-a.example/ci/build --cert-oidc-issuer spiffe://org-a.example artifact
//! ```
//!
//! must accept the artifact, and refuse a tampered artifact and a wrong identity. Three
//! bundles go through it: the log's first entry (index 0 of a one-leaf tree: an empty
//! inclusion proof, the case protobuf JSON writes least of), a second signature (index 1,
//! a proof with one hash), and an in-toto attestation about the artifact in a DSSE envelope
//! (a `dsse` 0.0.1 entry; the CLI also checks that a Statement subject has the file's
//! digest).
//!
//! Without the venv the test fails with a message saying to run `scripts/setup-verifiers`
//! (the project's test command always sets it up), unless `PROVMESH_SKIP_INTEROP=1`.

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use prometheus_client::registry::Registry;
use provmesh_node::log::service::{self, Appended, EntryRecord, LogHandle, LogSettings};
use provmesh_node::log::store::RedbLogStore;
use provmesh_node::shutdown;
use provmesh_protocol::ca::{CodeSigningIssuer, CtLogKey, IssueRequest, create_code_signing_root};
use provmesh_protocol::dsse;
use provmesh_protocol::intoto::{self, ResourceDescriptor, Statement};
use provmesh_protocol::log::entry::{API_VERSION, EntryKind, ProposedEntry};
use provmesh_protocol::log::quota::QuotaConfig;
use provmesh_protocol::log::sequencer::SequencerConfig;
use provmesh_protocol::log::signer_cert::CodeSigningRoots;
use provmesh_protocol::note::{Ed25519Signer, KeyName};
use provmesh_protocol::sigstore::Bundle;
use provmesh_protocol::sigstore_bundle::{
    InclusionProofParts, TlogEntryParts, dsse_bundle, message_signature_bundle, to_json,
};
use provmesh_protocol::sigstore_trust::{
    CaTrust, CtTrust, DomainTrust, LogTrust, client_trust_config, trusted_root,
};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use provmesh_protocol::verify::{Artifact, IdentityPolicy, verify_bundle};
use provmesh_tests::command::describe;
use provmesh_tests::sigstore_python::{SigstorePython, VerifyIdentity};
use sha2::{Digest as _, Sha256};

const TRUST_DOMAIN: &str = "org-a.example";
/// The log's origin, also the host of its base URL (sigstore-js matches the checkpoint
/// signature's name against the host; `sigstore_trust` insists on it).
const ORIGIN: &str = "log.org-a.example";
const LOG_URL: &str = "https://log.org-a.example";
const CA_URL: &str = "https://ca.org-a.example";
const IDENTITY: &str = "spiffe://org-a.example/ci/build";
const OIDC_ISSUER: &str = "spiffe://org-a.example";
/// Every wait on the log ends by then, or the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn random<const N: usize>(rng: &SystemRandom) -> [u8; N] {
    let mut bytes = [0u8; N];
    rng.fill(&mut bytes).unwrap();
    bytes
}

/// A fresh PKCS #8 ECDSA P-256 private key.
fn p256_pkcs8(rng: &SystemRandom) -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The bundle's log entry, from what the log answered on append.
fn tlog_parts(record: &EntryRecord, log_key_id: [u8; 32], kind: EntryKind) -> TlogEntryParts {
    TlogEntryParts {
        log_index: record.index,
        log_key_id,
        kind,
        kind_version: API_VERSION.to_owned(),
        integrated_time: record.integrated_time,
        canonical_body: record.body.clone(),
        signed_entry_timestamp: record.signed_entry_timestamp.to_vec(),
        inclusion_proof: InclusionProofParts {
            log_index: record.index,
            tree_size: record.checkpoint.size,
            root_hash: record.checkpoint.root_hash,
            hashes: record.inclusion_proof.clone(),
            checkpoint_note_text: String::from_utf8(record.checkpoint.note.clone()).unwrap(),
        },
    }
}

/// Appends a proposed entry and returns what the log answered for the new entry.
async fn append(log: &LogHandle, proposed: &[u8]) -> EntryRecord {
    let appended = tokio::time::timeout(DEADLINE, log.append(proposed))
        .await
        .expect("the log answers in time")
        .expect("the log admits the entry");
    let Appended::Created(record) = appended else {
        panic!("a fresh signature is a new entry");
    };
    record
}

/// A workload's signing key and its code-signing certificate.
struct Workload {
    key: EcdsaKeyPair,
    cert: Vec<u8>,
    rng: SystemRandom,
}

impl Workload {
    /// A DER ECDSA P-256 signature over `message` (`ECDSA_P256_SHA256_ASN1_SIGNING` hashes
    /// it with SHA-256).
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(&self.rng, message).unwrap().as_ref().to_vec()
    }

    /// Signs `artifact`, logs the `hashedrekord` entry and returns the bundle.
    async fn blob_bundle(&self, log: &LogHandle, artifact: &[u8]) -> (Bundle, u64, usize) {
        let digest: [u8; 32] = Sha256::digest(artifact).into();
        let signature = self.sign(artifact);
        let proposed = ProposedEntry::hashedrekord(digest, signature.clone(), self.cert.clone())
            .unwrap()
            .to_json();
        let record = append(log, &proposed).await;
        let tlog = tlog_parts(&record, *log.key_id(), EntryKind::HashedRekord);
        let bundle = message_signature_bundle(&self.cert, digest, &signature, &tlog).unwrap();
        (bundle, record.index, record.inclusion_proof.len())
    }

    /// Signs an in-toto Statement about `artifact` into a DSSE envelope, logs the `dsse`
    /// entry and returns the bundle.
    async fn attestation_bundle(&self, log: &LogHandle, artifact: &[u8]) -> (Bundle, u64) {
        let digest = hex::encode(Sha256::digest(artifact));
        let subject = ResourceDescriptor::with_digest(
            "artifact",
            [("sha256".to_owned(), digest)].into_iter().collect(),
        );
        let statement = Statement::new(
            vec![subject],
            "https://provmesh.example/test/v1",
            Some(serde_json::Map::new()),
        )
        .to_json()
        .unwrap();
        let signature = self.sign(&dsse::pae(intoto::PAYLOAD_TYPE, &statement));
        let envelope = dsse::Envelope::from_parts(
            intoto::PAYLOAD_TYPE,
            statement,
            vec![dsse::Signature::new(None, signature)],
        )
        .unwrap();
        let envelope_json = String::from_utf8(envelope.to_json()).unwrap();
        let proposed = ProposedEntry::dsse(envelope_json, self.cert.clone())
            .unwrap()
            .to_json();
        let record = append(log, &proposed).await;
        let tlog = tlog_parts(&record, *log.key_id(), EntryKind::Dsse);
        (
            dsse_bundle(&self.cert, &envelope, &tlog).unwrap(),
            record.index,
        )
    }
}

#[tokio::test]
async fn sigstore_python_accepts_provmesh_bundles_offline() {
    let Some(sigstore) = SigstorePython::find() else {
        return;
    };
    let rng = SystemRandom::new();
    let now = unix_now();
    let trust_domain = TrustDomain::parse(TRUST_DOMAIN).unwrap();
    // Everything the trusted root names became valid an hour ago: verifiers ignore keys
    // and CAs before their start.
    let valid_from = now - 3600;

    // The domain's code-signing root and CT key.
    let root_key = p256_pkcs8(&rng);
    let root_serial: [u8; 16] = random(&rng);
    let root_der = create_code_signing_root(
        &trust_domain,
        &root_key,
        valid_from,
        now + 24 * 3600,
        &root_serial,
    )
    .unwrap();
    let ct_key = CtLogKey::from_pkcs8_der(&p256_pkcs8(&rng)).unwrap();
    let ct_spki = ct_key.public_key_spki_der().to_vec();
    let issuer =
        CodeSigningIssuer::new(trust_domain.clone(), &[&root_der], &root_key, ct_key).unwrap();

    // A real log that trusts that root.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbLogStore::open(dir.path().join("log.redb")).unwrap());
    let log_signer = Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &random(&rng));
    let settings = LogSettings {
        sequencer: SequencerConfig {
            max_batch_delay: Duration::from_millis(5),
            ..SequencerConfig::default()
        },
        quota: QuotaConfig::per_second(0, 0),
        ..LogSettings::default()
    };
    let (trigger, shutdown) = shutdown::channel();
    let (log, task) = service::start(
        settings,
        store,
        log_signer,
        CodeSigningRoots::from_der(&[&root_der]).unwrap(),
        None,
        &mut Registry::default(),
        shutdown,
    )
    .unwrap();
    let task = tokio::spawn(task);
    assert_eq!(log.origin(), ORIGIN);

    // The workload: a fresh P-256 key, certified for its SPIFFE ID.
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &p256_pkcs8(&rng)).unwrap();
    let spki = key.public_key().as_der().unwrap();
    let not_before = now - 60;
    let issued = issuer
        .issue(&IssueRequest {
            subject_public_key_spki_der: spki.as_ref(),
            spiffe_id: &SpiffeId::parse(IDENTITY).unwrap(),
            oidc_issuer: OIDC_ISSUER,
            not_before_unix: not_before,
            validity_seconds: 600,
            serial: &random::<16>(&rng),
            sct_timestamp_ms: u64::try_from(not_before).unwrap() * 1000,
        })
        .unwrap();
    let workload = Workload {
        key,
        cert: issued.certificate_der,
        rng: SystemRandom::new(),
    };

    // Sign and log: the log's entries 0 (blob), 1 (another blob) and 2 (attestation).
    let artifact_bytes = b"provmesh build output\n".to_vec();
    let second_bytes = b"another build output\n".to_vec();
    let (first_bundle, index, proof_len) = workload.blob_bundle(&log, &artifact_bytes).await;
    assert_eq!((index, proof_len), (0, 0));
    let (second_bundle, index, proof_len) = workload.blob_bundle(&log, &second_bytes).await;
    assert_eq!((index, proof_len), (1, 1));
    let (attestation_bundle, index) = workload.attestation_bundle(&log, &artifact_bytes).await;
    assert_eq!(index, 2);

    // The domain's trust configuration.
    let log_trust = LogTrust::new(
        &KeyName::new(ORIGIN).unwrap(),
        LOG_URL,
        log.public_key(),
        valid_from,
    );
    assert_eq!(&log_trust.key_id, log.key_id());
    let root = trusted_root(&[DomainTrust {
        log: log_trust,
        ct: CtTrust {
            spki_der: ct_spki,
            valid_from_unix: valid_from,
        },
        ca: CaTrust {
            chain_der: vec![root_der.clone()],
            valid_from_unix: valid_from,
            uri: CA_URL.to_owned(),
        },
    }])
    .unwrap();
    let config = client_trust_config(&root).unwrap();

    // The log has done its part; stop it before the (blocking) verifier runs.
    trigger.trigger();
    tokio::time::timeout(DEADLINE, task)
        .await
        .expect("the log stops in time")
        .unwrap()
        .unwrap();

    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = files.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let config_path = write("cfg.json", &serde_json::to_vec(&config).unwrap());
    let artifact = write("artifact", &artifact_bytes);
    let second = write("second", &second_bytes);
    let mut tampered_bytes = artifact_bytes.clone();
    tampered_bytes[0] ^= 1;
    let tampered = write("artifact-tampered", &tampered_bytes);
    let first_bundle = write("artifact.sigstore.json", &to_json(&first_bundle).unwrap());
    let second_bundle = write("second.sigstore.json", &to_json(&second_bundle).unwrap());
    let attestation_bundle = write(
        "artifact.intoto.sigstore.json",
        &to_json(&attestation_bundle).unwrap(),
    );

    // provmesh's own offline verifier must reach the same verdict as sigstore-python.
    let ours = |bundle: &Path, identity: &str, artifact: &Path| {
        let policy = IdentityPolicy {
            identity: identity.to_owned(),
            issuer: OIDC_ISSUER.to_owned(),
        };
        let bytes = std::fs::read(artifact).unwrap();
        let verdict = verify_bundle(
            &std::fs::read(bundle).unwrap(),
            Artifact::Bytes(&bytes),
            &policy,
            &root,
        );
        // And `provmesh verify`, the command that wraps it, says the same.
        let command = Command::new(env!("CARGO_BIN_EXE_provmesh-under-test"))
            .arg("verify")
            .arg(artifact)
            .arg("--bundle")
            .arg(bundle)
            .args(["--identity", identity, "--trust-config"])
            .arg(&config_path)
            .output()
            .unwrap();
        assert_eq!(
            command.status.success(),
            verdict.is_ok(),
            "provmesh verify disagrees with the library on {}: {}",
            bundle.display(),
            describe(&command)
        );
        verdict
    };
    let accepts = |bundle: &Path, artifact: &Path| {
        if let Err(e) = ours(bundle, IDENTITY, artifact) {
            panic!("provmesh's verifier refused {}: {e}", bundle.display());
        }
        sigstore.assert_accepts(&VerifyIdentity {
            trust_config: &config_path,
            bundle,
            identity: IDENTITY,
            issuer: OIDC_ISSUER,
            artifact,
        });
    };
    let refuses = |bundle: &Path, identity: &str, artifact: &Path, reason: &str| {
        assert!(
            ours(bundle, identity, artifact).is_err(),
            "provmesh's verifier accepted {} for {identity} and {}",
            bundle.display(),
            artifact.display()
        );
        let check = VerifyIdentity {
            trust_config: &config_path,
            bundle,
            identity,
            issuer: OIDC_ISSUER,
            artifact,
        };
        sigstore.assert_refuses(&check, reason);
    };

    accepts(&first_bundle, &artifact);
    // (a) A tampered artifact: its digest is not the bundle's.
    refuses(
        &first_bundle,
        IDENTITY,
        &tampered,
        "Bundle message digest mismatch",
    );
    // (b) Another identity than the certificate's.
    let other = "spiffe://org-a.example/ci/other";
    refuses(
        &first_bundle,
        other,
        &artifact,
        "Certificate's SANs do not match spiffe://org-a.example/ci/other",
    );
    accepts(&second_bundle, &second);
    // The second bundle is for the second artifact only.
    refuses(
        &second_bundle,
        IDENTITY,
        &artifact,
        "Bundle message digest mismatch",
    );
    accepts(&attestation_bundle, &artifact);
    refuses(
        &attestation_bundle,
        IDENTITY,
        &tampered,
        "in-toto statement has no subject for digest",
    );
    refuses(
        &attestation_bundle,
        other,
        &artifact,
        "Certificate's SANs do not match spiffe://org-a.example/ci/other",
    );
}
