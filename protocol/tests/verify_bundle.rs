//! provmesh's offline bundle verifier (`provmesh_protocol::verify`): good bundles built the
//! way a domain builds them — our CA and CT key, a log computed in memory (Merkle tree,
//! Ed25519 SET and checkpoint) and `sigstore_bundle` — are accepted with the identity,
//! issuer, time and index they prove; each tampering is refused with its own error. A
//! real Rekor v1 bundle (ECDSA P-256 log key, Fulcio chain) from sigstore-python's test
//! assets is accepted against the staging TrustedRoot. Provenance records
//! (`provmesh_protocol::provenance`) open from the same entries, and their bundles verify.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_protocol::ca::{CodeSigningIssuer, CtLogKey, IssueRequest, create_code_signing_root};
use provmesh_protocol::checkpoint::Checkpoint;
use provmesh_protocol::dsse;
use provmesh_protocol::intoto::{self, ResourceDescriptor, Statement};
use provmesh_protocol::log::entry::{API_VERSION, EntryKind, ProposedEntry, set_payload};
use provmesh_protocol::log::signer_cert::CodeSigningRoots;
use provmesh_protocol::log::signer_cert::SignerCertError;
use provmesh_protocol::merkle::{MemoryHashStore, leaf_hash, prove_inclusion};
use provmesh_protocol::note::{Ed25519Signer, KeyName};
use provmesh_protocol::provenance::{Record, RecordError, SLSA_PROVENANCE_V1};
use provmesh_protocol::sigstore::{DEFAULT_MAX_TRUSTED_ROOT_LEN, TrustedRoot, parse_trusted_root};
use provmesh_protocol::sigstore_bundle::{
    InclusionProofParts, TlogEntryParts, dsse_bundle, message_signature_bundle, to_json,
};
use provmesh_protocol::sigstore_trust::{
    CaTrust, CtTrust, DomainTrust, LogTrust, ct_log_id, trusted_root,
};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use provmesh_protocol::verify::{
    Artifact, IdentityPolicy, PreparedTrust, VerifiedBundle, VerifyError, verify_bundle,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const ORIGIN: &str = "log.org-a.example";
const IDENTITY: &str = "spiffe://org-a.example/ci/build";
const ISSUER: &str = "spiffe://org-a.example";
/// The integrated time of every entry; the CA and keys are valid around it.
const T: i64 = 1_750_000_000;
const ARTIFACT: &[u8] = b"provmesh build output\n";

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).unwrap();
    bytes
}

fn p256_pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

/// A trust domain's CA and CT key.
struct Ca {
    root_der: Vec<u8>,
    issuer: CodeSigningIssuer,
    ct_spki: Vec<u8>,
}

impl Ca {
    fn new(trust_domain: &str) -> Ca {
        let td = TrustDomain::parse(trust_domain).unwrap();
        let root_key = p256_pkcs8();
        let root_der =
            create_code_signing_root(&td, &root_key, T - 3600, T + 24 * 3600, &random::<16>())
                .unwrap();
        let ct = CtLogKey::from_pkcs8_der(&p256_pkcs8()).unwrap();
        let ct_spki = ct.public_key_spki_der().to_vec();
        let issuer = CodeSigningIssuer::new(td, &[&root_der], &root_key, ct).unwrap();
        Ca {
            root_der,
            issuer,
            ct_spki,
        }
    }

    /// A workload key and its certificate for `identity`, valid from `T - 60` for 10 min.
    fn workload(&self, identity: &str, oidc_issuer: &str) -> Workload {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &p256_pkcs8()).unwrap();
        let spki = key.public_key().as_der().unwrap();
        let issued = self
            .issuer
            .issue(&IssueRequest {
                subject_public_key_spki_der: spki.as_ref(),
                spiffe_id: &SpiffeId::parse(identity).unwrap(),
                oidc_issuer,
                not_before_unix: T - 60,
                validity_seconds: 600,
                serial: &random::<16>(),
                sct_timestamp_ms: u64::try_from(T - 60).unwrap() * 1000,
            })
            .unwrap();
        Workload {
            key,
            cert: issued.certificate_der,
        }
    }
}

struct Workload {
    key: EcdsaKeyPair,
    cert: Vec<u8>,
}

impl Workload {
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    }
}

/// A domain log computed in memory: the Merkle tree, the SET and the checkpoint are made
/// as the node's log makes them.
struct Log {
    signer: Ed25519Signer,
    store: MemoryHashStore,
    bodies: Vec<Vec<u8>>,
}

impl Log {
    fn new() -> Log {
        let mut log = Log {
            signer: Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &random()),
            store: MemoryHashStore::new(),
            bodies: Vec::new(),
        };
        // Other entries before, so proofs are not trivial.
        for i in 0..3u8 {
            log.append(vec![b'x', i]);
        }
        log
    }

    fn key_id(&self) -> [u8; 32] {
        provmesh_protocol::log::log_key_id(
            &KeyName::new(ORIGIN).unwrap(),
            &self.signer.public_key(),
        )
    }

    fn append(&mut self, body: Vec<u8>) -> u64 {
        let index = self.store.append(leaf_hash(&body)).unwrap();
        self.bodies.push(body);
        index
    }

    /// Appends `body` and two more entries, and returns the bundle's log entry.
    fn log(&mut self, body: Vec<u8>, kind: EntryKind) -> TlogEntryParts {
        let index = self.append(body.clone());
        self.append(b"after-1".to_vec());
        self.append(b"after-2".to_vec());
        let size = self.store.size();
        let root = self.store.root();
        let key_id = self.key_id();
        let set = self
            .signer
            .sign_bytes(&set_payload(&body, T, &key_id, index));
        let note = Checkpoint::new(ORIGIN, size, root)
            .unwrap()
            .sign(&[&self.signer])
            .unwrap();
        TlogEntryParts {
            log_index: index,
            log_key_id: key_id,
            kind,
            kind_version: API_VERSION.to_owned(),
            integrated_time: T,
            canonical_body: body,
            signed_entry_timestamp: set.to_vec(),
            inclusion_proof: InclusionProofParts {
                log_index: index,
                tree_size: size,
                root_hash: root,
                hashes: prove_inclusion(index, size, &self.store).unwrap(),
                checkpoint_note_text: String::from_utf8(note.to_bytes()).unwrap(),
            },
        }
    }

    fn trust(&self) -> LogTrust {
        LogTrust::new(
            &KeyName::new(ORIGIN).unwrap(),
            format!("https://{ORIGIN}"),
            self.signer.public_key(),
            T - 3600,
        )
    }
}

fn trust_root(log: &Log, ca: &Ca) -> TrustedRoot {
    trusted_root(&[DomainTrust {
        log: log.trust(),
        ct: CtTrust {
            spki_der: ca.ct_spki.clone(),
            valid_from_unix: T - 3600,
        },
        ca: CaTrust {
            chain_der: vec![ca.root_der.clone()],
            valid_from_unix: T - 3600,
            uri: "https://ca.org-a.example".to_owned(),
        },
    }])
    .unwrap()
}

/// The `hashedrekord` entry of `workload`'s signature over `artifact`.
fn blob_entry(workload: &Workload, artifact: &[u8]) -> ProposedEntry {
    let digest: [u8; 32] = Sha256::digest(artifact).into();
    ProposedEntry::hashedrekord(digest, workload.sign(artifact), workload.cert.clone()).unwrap()
}

fn blob_bundle(log: &mut Log, workload: &Workload, artifact: &[u8]) -> Vec<u8> {
    let entry = blob_entry(workload, artifact);
    let (digest, signature) = entry.message_signature().unwrap();
    let tlog = log.log(entry.canonical_body().to_vec(), EntryKind::HashedRekord);
    to_json(&message_signature_bundle(&workload.cert, digest, signature, &tlog).unwrap()).unwrap()
}

/// The `dsse` entry of a statement of `predicate_type` about `artifact`, signed by
/// `workload`.
fn attestation_entry(
    workload: &Workload,
    artifact: &[u8],
    predicate_type: &str,
    predicate: serde_json::Map<String, Value>,
) -> ProposedEntry {
    let subject = ResourceDescriptor::with_digest(
        "artifact",
        [("sha256".to_owned(), hex::encode(Sha256::digest(artifact)))]
            .into_iter()
            .collect(),
    );
    let statement = Statement::new(vec![subject], predicate_type, Some(predicate))
        .to_json()
        .unwrap();
    let signature = workload.sign(&dsse::pae(intoto::PAYLOAD_TYPE, &statement));
    let envelope = dsse::Envelope::from_parts(
        intoto::PAYLOAD_TYPE,
        statement,
        vec![dsse::Signature::new(None, signature)],
    )
    .unwrap();
    let envelope_json = String::from_utf8(envelope.to_json()).unwrap();
    ProposedEntry::dsse(envelope_json, workload.cert.clone()).unwrap()
}

fn attestation_bundle(log: &mut Log, workload: &Workload, artifact: &[u8]) -> Vec<u8> {
    let entry = attestation_entry(
        workload,
        artifact,
        "https://provmesh.example/test/v1",
        serde_json::Map::new(),
    );
    let tlog = log.log(entry.canonical_body().to_vec(), EntryKind::Dsse);
    to_json(&dsse_bundle(&workload.cert, entry.envelope().unwrap(), &tlog).unwrap()).unwrap()
}

fn policy() -> IdentityPolicy {
    IdentityPolicy {
        identity: IDENTITY.to_owned(),
        issuer: ISSUER.to_owned(),
    }
}

/// A domain with one blob bundle and one attestation bundle about [`ARTIFACT`].
struct Fixture {
    log: Log,
    ca: Ca,
    workload: Workload,
    blob: Vec<u8>,
    attestation: Vec<u8>,
    root: TrustedRoot,
}

fn fixture() -> Fixture {
    let mut log = Log::new();
    let ca = Ca::new("org-a.example");
    let workload = ca.workload(IDENTITY, ISSUER);
    let blob = blob_bundle(&mut log, &workload, ARTIFACT);
    let attestation = attestation_bundle(&mut log, &workload, ARTIFACT);
    let root = trust_root(&log, &ca);
    Fixture {
        log,
        ca,
        workload,
        blob,
        attestation,
        root,
    }
}

fn verify(bundle: &[u8], root: &TrustedRoot) -> Result<VerifiedBundle, VerifyError> {
    verify_bundle(bundle, Artifact::Bytes(ARTIFACT), &policy(), root)
}

/// The bundle with `edit` applied to its JSON.
fn edited(bundle: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(bundle).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn entry(value: &mut Value) -> &mut Value {
    value
        .pointer_mut("/verificationMaterial/tlogEntries/0")
        .unwrap()
}

/// Flips one bit in the middle of a base64 field.
fn flip_b64(field: &mut Value) {
    let mut bytes = STANDARD.decode(field.as_str().unwrap()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    *field = Value::String(STANDARD.encode(bytes));
}

#[test]
fn good_blob_bundle_verifies() {
    let f = fixture();
    let verified = verify(&f.blob, &f.root).unwrap();
    assert_eq!(
        verified,
        VerifiedBundle {
            identity: IDENTITY.to_owned(),
            issuer: ISSUER.to_owned(),
            integrated_time: T,
            log_index: 3,
            log_key_id: f.log.key_id(),
        }
    );
    // By digest, too.
    let digest: [u8; 32] = Sha256::digest(ARTIFACT).into();
    verify_bundle(&f.blob, Artifact::Digest(digest), &policy(), &f.root).unwrap();
    // For any signer of the domain (a lookup asks who signed), and no other domain.
    let prepared = PreparedTrust::new(&f.root);
    let org_a = TrustDomain::parse("org-a.example").unwrap();
    let in_domain = prepared
        .verify_bundle_in_domain(&f.blob, Artifact::Digest(digest), &org_a)
        .unwrap();
    assert_eq!(in_domain, verified);
    let org_b = TrustDomain::parse("org-b.example").unwrap();
    assert!(matches!(
        prepared.verify_bundle_in_domain(&f.blob, Artifact::Digest(digest), &org_b),
        Err(VerifyError::IdentityMismatch { .. })
    ));
}

#[test]
fn good_attestation_bundle_verifies() {
    let f = fixture();
    let verified = verify(&f.attestation, &f.root).unwrap();
    assert_eq!(verified.log_index, 6);
    assert_eq!(verified.identity, IDENTITY);
}

#[test]
fn first_entry_of_a_one_leaf_log_verifies() {
    // Index 0 of a one-leaf tree: an empty inclusion proof.
    let ca = Ca::new("org-a.example");
    let workload = ca.workload(IDENTITY, ISSUER);
    let mut log = Log {
        signer: Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &random()),
        store: MemoryHashStore::new(),
        bodies: Vec::new(),
    };
    let digest: [u8; 32] = Sha256::digest(ARTIFACT).into();
    let signature = workload.sign(ARTIFACT);
    let body = ProposedEntry::hashedrekord(digest, signature.clone(), workload.cert.clone())
        .unwrap()
        .canonical_body()
        .to_vec();
    let index = log.append(body.clone());
    assert_eq!(index, 0);
    let key_id = log.key_id();
    let note = Checkpoint::new(ORIGIN, 1, log.store.root())
        .unwrap()
        .sign(&[&log.signer])
        .unwrap();
    let tlog = TlogEntryParts {
        log_index: 0,
        log_key_id: key_id,
        kind: EntryKind::HashedRekord,
        kind_version: API_VERSION.to_owned(),
        integrated_time: T,
        canonical_body: body.clone(),
        signed_entry_timestamp: log
            .signer
            .sign_bytes(&set_payload(&body, T, &key_id, 0))
            .to_vec(),
        inclusion_proof: InclusionProofParts {
            log_index: 0,
            tree_size: 1,
            root_hash: log.store.root(),
            hashes: Vec::new(),
            checkpoint_note_text: String::from_utf8(note.to_bytes()).unwrap(),
        },
    };
    let bundle =
        to_json(&message_signature_bundle(&workload.cert, digest, &signature, &tlog).unwrap())
            .unwrap();
    let verified = verify(&bundle, &trust_root(&log, &ca)).unwrap();
    assert_eq!(verified.log_index, 0);
}

#[test]
fn tampered_artifact_is_refused() {
    let f = fixture();
    let tampered = b"provmesh build outpuT\n";
    let err = verify_bundle(&f.blob, Artifact::Bytes(tampered), &policy(), &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::ArtifactMismatch { .. }), "{err}");
    let err = verify_bundle(
        &f.attestation,
        Artifact::Bytes(tampered),
        &policy(),
        &f.root,
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::SubjectMismatch(_)), "{err}");
}

#[test]
fn wrong_identity_and_issuer_are_refused() {
    let f = fixture();
    for bundle in [&f.blob, &f.attestation] {
        let mut other = policy();
        other.identity = "spiffe://org-a.example/ci/other".to_owned();
        let err = verify_bundle(bundle, Artifact::Bytes(ARTIFACT), &other, &f.root).unwrap_err();
        assert!(
            matches!(&err, VerifyError::IdentityMismatch { found, .. } if found == IDENTITY),
            "{err}"
        );
        let mut other = policy();
        other.issuer = "https://accounts.example".to_owned();
        let err = verify_bundle(bundle, Artifact::Bytes(ARTIFACT), &other, &f.root).unwrap_err();
        assert!(
            matches!(&err, VerifyError::IssuerMismatch { found, .. } if found == ISSUER),
            "{err}"
        );
    }
}

#[test]
fn bad_set_is_refused() {
    let f = fixture();
    let bad = edited(&f.blob, |v| {
        flip_b64(&mut entry(v)["inclusionPromise"]["signedEntryTimestamp"]);
    });
    let err = verify(&bad, &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::BadSet(_)), "{err}");
    // Another integrated time than the log signed.
    let bad = edited(&f.blob, |v| {
        entry(v)["integratedTime"] = Value::String((T + 1).to_string());
    });
    let err = verify(&bad, &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::BadSet(_)), "{err}");
}

#[test]
fn bad_inclusion_proof_is_refused() {
    let f = fixture();
    let bad = edited(&f.blob, |v| {
        flip_b64(&mut entry(v)["inclusionProof"]["hashes"][0]);
    });
    let err = verify(&bad, &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::InclusionProof(_)), "{err}");
}

#[test]
fn bad_checkpoint_is_refused() {
    let f = fixture();
    // Signed by another key under the log's name: no signature with the log's key hint.
    let impostor = Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &random());
    let size = f.log.store.size();
    let forged = Checkpoint::new(ORIGIN, size, f.log.store.root())
        .unwrap()
        .sign(&[&impostor])
        .unwrap();
    let bad = edited(&f.attestation, |v| {
        entry(v)["inclusionProof"]["checkpoint"]["envelope"] =
            Value::String(String::from_utf8(forged.to_bytes()).unwrap());
    });
    let err = verify(&bad, &f.root).unwrap_err();
    assert!(
        matches!(err, VerifyError::CheckpointSignatureMissing(_)),
        "{err}"
    );

    // The log's key hint, a corrupted signature.
    let bad = edited(&f.attestation, |v| {
        let note = &mut entry(v)["inclusionProof"]["checkpoint"]["envelope"];
        let text = note.as_str().unwrap().to_owned();
        let (head, line) = text.trim_end().rsplit_once(' ').unwrap();
        let mut sig = STANDARD.decode(line).unwrap();
        sig[10] ^= 1;
        *note = Value::String(format!("{head} {}\n", STANDARD.encode(sig)));
    });
    let err = verify(&bad, &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::CheckpointSignature(_)), "{err}");

    // Validly signed, but for another tree than the proof's.
    let other = Checkpoint::new(ORIGIN, size + 1, [7; 32])
        .unwrap()
        .sign(&[&f.log.signer])
        .unwrap();
    let bad = edited(&f.attestation, |v| {
        entry(v)["inclusionProof"]["checkpoint"]["envelope"] =
            Value::String(String::from_utf8(other.to_bytes()).unwrap());
    });
    let err = verify(&bad, &f.root).unwrap_err();
    assert!(
        matches!(err, VerifyError::CheckpointMismatch { .. }),
        "{err}"
    );
}

#[test]
fn unknown_log_is_refused() {
    let f = fixture();
    let other_log = Log::new();
    let err = verify(&f.blob, &trust_root(&other_log, &f.ca)).unwrap_err();
    assert!(matches!(err, VerifyError::UnknownLog(_)), "{err}");
}

#[test]
fn certificate_from_another_ca_is_refused() {
    let mut f = fixture();
    // A certificate for the same identity from a CA the trusted root does not list, logged
    // in the trusted log.
    let other_ca = Ca::new("org-a.example");
    let stranger = other_ca.workload(IDENTITY, ISSUER);
    let bundle = blob_bundle(&mut f.log, &stranger, ARTIFACT);
    let err = verify(&bundle, &f.root).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(SignerCertError::BadSignature { .. })
                | VerifyError::Certificate(SignerCertError::UnknownIssuer { .. })
        ),
        "{err}"
    );
}

#[test]
fn certificate_not_valid_at_integrated_time_is_refused() {
    let f = fixture();
    // The leaf is valid from T-60 to T+540; the log says it integrated the entry later.
    let late = T + 3600;
    let mut log = Log::new();
    let digest: [u8; 32] = Sha256::digest(ARTIFACT).into();
    let signature = f.workload.sign(ARTIFACT);
    let body = ProposedEntry::hashedrekord(digest, signature.clone(), f.workload.cert.clone())
        .unwrap()
        .canonical_body()
        .to_vec();
    let mut tlog = log.log(body.clone(), EntryKind::HashedRekord);
    tlog.integrated_time = late;
    tlog.signed_entry_timestamp = log
        .signer
        .sign_bytes(&set_payload(&body, late, &tlog.log_key_id, tlog.log_index))
        .to_vec();
    let bundle =
        to_json(&message_signature_bundle(&f.workload.cert, digest, &signature, &tlog).unwrap())
            .unwrap();
    let err = verify(&bundle, &trust_root(&log, &f.ca)).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Certificate(SignerCertError::Expired { .. })
        ),
        "{err}"
    );
}

#[test]
fn sct_from_unknown_or_wrong_ct_key_is_refused() {
    let f = fixture();
    // The trusted root lists another CT key.
    let other = Ca::new("org-a.example");
    let mut root = f.root.clone();
    root.ctlogs[0].public_key.as_mut().unwrap().raw_bytes = Some(other.ct_spki.clone());
    root.ctlogs[0].log_id.as_mut().unwrap().key_id = ct_log_id(&other.ct_spki).to_vec();
    let err = verify(&f.blob, &root).unwrap_err();
    assert!(matches!(err, VerifyError::UnknownCtLog(_)), "{err}");

    // The trusted root's entry with the SCT's log ID holds another key.
    let mut root = f.root.clone();
    root.ctlogs[0].public_key.as_mut().unwrap().raw_bytes = Some(other.ct_spki.clone());
    let err = verify(&f.blob, &root).unwrap_err();
    assert!(matches!(err, VerifyError::SctInvalid(_)), "{err}");
}

#[test]
fn body_not_matching_content_is_refused() {
    let f = fixture();
    // A second, validly logged blob bundle whose body is grafted onto the first: log
    // entry, SET, proof and checkpoint all verify, the content is not the entry's.
    let mut log = f.log;
    let other_artifact = b"another build output\n";
    let other = blob_bundle(&mut log, &f.workload, other_artifact);
    let root = trust_root(&log, &f.ca);
    let other_value: Value = serde_json::from_slice(&other).unwrap();
    let bad = edited(&f.blob, |v| {
        *entry(v) = other_value["verificationMaterial"]["tlogEntries"][0].clone();
    });
    let err = verify(&bad, &root).unwrap_err();
    assert!(matches!(err, VerifyError::BodyMismatch(_)), "{err}");

    // The same for the attestation: its entry replaced by a hashedrekord entry.
    let bad = edited(&f.attestation, |v| {
        *entry(v) = other_value["verificationMaterial"]["tlogEntries"][0].clone();
    });
    let err = verify(&bad, &root).unwrap_err();
    assert!(matches!(err, VerifyError::UnsupportedEntry { .. }), "{err}");
}

#[test]
fn bad_message_signature_is_refused() {
    let f = fixture();
    // A signature by another key: the body no longer matches, and a body rebuilt for it
    // would still fail the signature check. Forge both with a fresh log that logs it.
    let mut log = Log::new();
    let digest: [u8; 32] = Sha256::digest(ARTIFACT).into();
    let other = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &p256_pkcs8()).unwrap();
    let signature = other
        .sign(&SystemRandom::new(), ARTIFACT)
        .unwrap()
        .as_ref()
        .to_vec();
    let body = ProposedEntry::hashedrekord(digest, signature.clone(), f.workload.cert.clone())
        .unwrap()
        .canonical_body()
        .to_vec();
    let tlog = log.log(body, EntryKind::HashedRekord);
    let bundle =
        to_json(&message_signature_bundle(&f.workload.cert, digest, &signature, &tlog).unwrap())
            .unwrap();
    let err = verify(&bundle, &trust_root(&log, &f.ca)).unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature(_)), "{err}");
}

#[test]
fn malformed_bundles_are_refused() {
    let f = fixture();
    let err = verify(b"{}", &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::Parse(_)), "{err}");
    let two = edited(&f.blob, |v| {
        let e = entry(v).clone();
        v["verificationMaterial"]["tlogEntries"]
            .as_array_mut()
            .unwrap()
            .push(e);
    });
    let err = verify(&two, &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::TlogEntryCount(2)), "{err}");
    let none = edited(&f.blob, |v| {
        entry(v).as_object_mut().unwrap().remove("inclusionPromise");
    });
    let err = verify(&none, &f.root).unwrap_err();
    assert!(matches!(err, VerifyError::MalformedEntry(_)), "{err}");
}

/// A real Rekor v1 bundle (sigstore-python `test/assets/bundle_v3.txt.sigstore`: staging
/// Rekor, ECDSA P-256 log key, Fulcio P-384 chain) against the staging TrustedRoot.
#[test]
fn real_rekor_v1_bundle_verifies() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/sigstore/");
    let bundle = std::fs::read(format!("{dir}bundle_v3.txt.sigstore")).unwrap();
    let root_json = std::fs::read(format!("{dir}staging.trusted_root.json")).unwrap();
    let (root, _) = parse_trusted_root(&root_json, DEFAULT_MAX_TRUSTED_ROOT_LEN).unwrap();
    let value: Value = serde_json::from_slice(&bundle).unwrap();
    let digest: [u8; 32] = STANDARD
        .decode(
            value["messageSignature"]["messageDigest"]["digest"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
        .try_into()
        .unwrap();
    let policy = IdentityPolicy {
        identity: "william@yossarian.net".to_owned(),
        issuer: "https://github.com/login/oauth".to_owned(),
    };
    let verified = verify_bundle(&bundle, Artifact::Digest(digest), &policy, &root).unwrap();
    assert_eq!(verified.integrated_time, 1_712_085_549);
    assert_eq!(verified.log_index, 25_915_956);

    let mut other = digest;
    other[0] ^= 1;
    let err = verify_bundle(&bundle, Artifact::Digest(other), &policy, &root).unwrap_err();
    assert!(matches!(err, VerifyError::ArtifactMismatch { .. }), "{err}");
    // The public-good root does not know the staging log.
    let pg = std::fs::read(format!("{dir}public-good.trusted_root.json")).unwrap();
    let (pg, _) = parse_trusted_root(&pg, DEFAULT_MAX_TRUSTED_ROOT_LEN).unwrap();
    let err = verify_bundle(&bundle, Artifact::Digest(digest), &policy, &pg).unwrap_err();
    assert!(matches!(err, VerifyError::UnknownLog(_)), "{err}");
}

// ---- Provenance records (`provmesh_protocol::provenance`) ------------------------------

fn roots(ca: &Ca) -> CodeSigningRoots {
    CodeSigningRoots::from_der(&[&ca.root_der]).unwrap()
}

fn slsa_predicate(builder: &str) -> serde_json::Map<String, Value> {
    serde_json::json!({
        "buildDefinition": {
            "buildType": "https://tekton.dev/chains/v2/slsa",
            "externalParameters": {"repository": "https://git.org-a.example/app"},
        },
        "runDetails": {"builder": {"id": builder}},
    })
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn records_open_with_signer_subjects_statement_and_builder() {
    let ca = Ca::new("org-a.example");
    let workload = ca.workload(IDENTITY, ISSUER);
    let digest: [u8; 32] = Sha256::digest(ARTIFACT).into();

    // A signature: the artifact digest is its only subject.
    let blob = blob_entry(&workload, ARTIFACT);
    let record = Record::open(blob.canonical_body(), None, T, &roots(&ca)).unwrap();
    assert_eq!(record.signer.to_string(), IDENTITY);
    assert_eq!(record.kind(), EntryKind::HashedRekord);
    assert!(record.covers_sha256(&digest));
    assert_eq!((record.predicate_type(), &record.builder_id), (None, &None));

    // A SLSA provenance attestation: subjects, predicate type and builder id.
    let builder = "https://tekton.dev/chains/v2";
    let entry = attestation_entry(
        &workload,
        ARTIFACT,
        SLSA_PROVENANCE_V1,
        slsa_predicate(builder),
    );
    let record = Record::open(
        entry.canonical_body(),
        Some(&entry.to_json()),
        T,
        &roots(&ca),
    )
    .unwrap();
    assert_eq!(record.kind(), EntryKind::Dsse);
    assert!(record.covers_sha256(&digest));
    assert!(!record.covers_sha256(&[0; 32]));
    assert_eq!(record.subjects[0].name.as_deref(), Some("artifact"));
    assert_eq!(record.predicate_type(), Some(SLSA_PROVENANCE_V1));
    assert_eq!(record.builder_id.as_deref(), Some(builder));

    // Its bundle, built with a log entry, verifies like any other.
    let mut log = Log::new();
    let tlog = log.log(entry.canonical_body().to_vec(), EntryKind::Dsse);
    let bundle = to_json(&record.bundle(&tlog).unwrap()).unwrap();
    let verified = verify(&bundle, &trust_root(&log, &ca)).unwrap();
    assert_eq!(verified.log_index, tlog.log_index);
}

#[test]
fn records_that_do_not_hold_are_refused() {
    let ca = Ca::new("org-a.example");
    let workload = ca.workload(IDENTITY, ISSUER);
    let entry = attestation_entry(&workload, ARTIFACT, "x:y", serde_json::Map::new());
    let body = entry.canonical_body();
    // A dsse entry needs its kept envelope.
    assert!(matches!(
        Record::open(body, None, T, &roots(&ca)),
        Err(RecordError::NoAttestation)
    ));
    // The envelope of another entry.
    let other = attestation_entry(&workload, b"other", "x:y", serde_json::Map::new());
    assert!(matches!(
        Record::open(body, Some(&other.to_json()), T, &roots(&ca)),
        Err(RecordError::Mismatch)
    ));
    // Another domain's roots, and a time outside the certificate.
    let other_ca = Ca::new("org-b.example");
    assert!(matches!(
        Record::open(body, Some(&entry.to_json()), T, &roots(&other_ca)),
        Err(RecordError::Certificate(_))
    ));
    assert!(matches!(
        Record::open(body, Some(&entry.to_json()), T + 3600, &roots(&ca)),
        Err(RecordError::Certificate(_))
    ));
    // A signature by another key over the same statement.
    let impostor = ca.workload(IDENTITY, ISSUER);
    let forged = ProposedEntry::hashedrekord(
        Sha256::digest(ARTIFACT).into(),
        impostor.sign(ARTIFACT),
        workload.cert.clone(),
    )
    .unwrap();
    assert!(matches!(
        Record::open(forged.canonical_body(), None, T, &roots(&ca)),
        Err(RecordError::Signature(_))
    ));
    // Garbage.
    assert!(matches!(
        Record::open(b"{}", None, T, &roots(&ca)),
        Err(RecordError::Entry(_))
    ));
}

#[test]
fn records_served_by_another_node_are_checked_under_the_domains_keys() {
    use provmesh_protocol::federation::domain_record::{CodeSigningRoot, CtKey, KeyWindow};
    use provmesh_protocol::mesh::cosignatures::WitnessRoster;
    use provmesh_protocol::provenance::{DomainKeys, FoundRecordError, PreparedDomain};

    let ca = Ca::new("org-a.example");
    let workload = ca.workload(IDENTITY, ISSUER);
    let mut log = Log::new();
    let keys = |ca: &Ca, log: &Log| DomainKeys {
        trust_domain: TrustDomain::parse("org-a.example").unwrap(),
        origin: ORIGIN.to_owned(),
        log_key: log.signer.verifier().into(),
        roots: vec![CodeSigningRoot {
            certificate_der: ca.root_der.clone(),
            window: KeyWindow::open_from(0),
        }],
        ct_keys: vec![CtKey {
            public_key_spki_der: ca.ct_spki.clone(),
            window: KeyWindow::open_from(0),
        }],
    };
    let domain = PreparedDomain::new(keys(&ca, &log)).unwrap();
    let entry = attestation_entry(
        &workload,
        ARTIFACT,
        SLSA_PROVENANCE_V1,
        slsa_predicate("b:1"),
    );
    let tlog = log.log(entry.canonical_body().to_vec(), EntryKind::Dsse);
    let bundle =
        to_json(&dsse_bundle(&workload.cert, entry.envelope().unwrap(), &tlog).unwrap()).unwrap();
    let digest: [u8; 32] = Sha256::digest(ARTIFACT).into();
    let roster = WitnessRoster::new();
    let checked = domain
        .check(
            &bundle,
            Some(&entry.to_json()),
            digest,
            &roster,
            T as u64,
            60,
        )
        .unwrap();
    assert_eq!(checked.record.signer.to_string(), IDENTITY);
    assert_eq!(checked.record.builder_id.as_deref(), Some("b:1"));
    assert_eq!(checked.verified.log_index, tlog.log_index);
    assert!(checked.witnesses.is_empty());
    // Another artifact, another domain's keys, and an attestation of another entry fail.
    assert!(matches!(
        domain.check(
            &bundle,
            Some(&entry.to_json()),
            [0; 32],
            &roster,
            T as u64,
            60
        ),
        Err(FoundRecordError::Bundle(_))
    ));
    let other = PreparedDomain::new(keys(&Ca::new("org-a.example"), &Log::new())).unwrap();
    assert!(matches!(
        other.check(
            &bundle,
            Some(&entry.to_json()),
            digest,
            &roster,
            T as u64,
            60
        ),
        Err(FoundRecordError::Bundle(_))
    ));
    let unrelated = attestation_entry(&workload, b"x", "x:y", serde_json::Map::new());
    assert!(matches!(
        domain.check(
            &bundle,
            Some(&unrelated.to_json()),
            digest,
            &roster,
            T as u64,
            60
        ),
        Err(FoundRecordError::Record(RecordError::Mismatch))
    ));
}
