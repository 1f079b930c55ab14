//! Rekor v1 entries (`log::entry`) against real Rekor output (`tests/vectors/rekor/` and
//! `tests/vectors/sigstore/`, sources in their SOURCES.md):
//! - proposed entries rebuilt from real bundles canonicalize to the logged bodies byte for
//!   byte (`hashedrekord` and `dsse` 0.0.1);
//! - `set_payload` reproduces what real signed entry timestamps sign (they verify with the
//!   Rekor key);
//! - real `LogEntry` responses round-trip through `LogEntryResponse`.
//!
//! Then admission with our own keys and certificates (good, tampered, wrong key), every
//! error variant, the search request bodies, and property tests (hostile bytes never
//! panic; accepted entries always fit the log).

// Helpers outside `#[test]` functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use provmesh_protocol::log::entry::{
    AdmitError, EntryKind, EntryUuidError, InclusionProofView, LogEntryResponse, LogEntryView,
    LogEntryViewError, MAX_PROPOSED_ENTRY_BYTES, MAX_SEARCH_INDEX_QUERY_BYTES,
    MAX_SEARCH_LOG_QUERY_BYTES, MAX_SEARCH_QUERIES, ProposedEntry, ProposedEntryError,
    SearchIndexQuery, SearchIndexQueryError, SearchLogQuery, SearchLogQueryError, entry_uuid,
    parse_entry_uuid, set_payload,
};
use provmesh_protocol::log::signer_cert::CertifiedSigner;
use provmesh_protocol::log::{MAX_ENTRY_BODY_BYTES, MAX_SEARCH_KEYS, SequencedEntry};
use provmesh_protocol::merkle::{Hash, leaf_hash, verify_inclusion};
use provmesh_protocol::{dsse, intoto};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

// ---------------------------------------------------------------------------------------
// Vectors

fn read(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/vectors/{dir}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn read_json(dir: &str, name: &str) -> Value {
    serde_json::from_slice(&read(dir, name)).unwrap()
}

fn b64(text: &Value) -> Vec<u8> {
    STANDARD.decode(text.as_str().unwrap()).unwrap()
}

/// Real bundles whose Rekor v1 entry is `hashedrekord` 0.0.1.
const HASHEDREKORD_BUNDLES: &[&str] = &[
    "bundle.txt.sigstore",
    "bundle_invalid_version.txt.sigstore",
    "bundle_v3.txt.sigstore",
    "bundle_v3_github.whl.sigstore",
    "tsa.bundle.txt.sigstore",
];

/// Every real bundle with a Rekor v1 signed entry timestamp: (directory, file).
const SET_BUNDLES: &[(&str, &str)] = &[
    ("sigstore", "bundle.txt.sigstore"),
    ("sigstore", "bundle_invalid_version.txt.sigstore"),
    ("sigstore", "bundle_v3.txt.sigstore"),
    ("sigstore", "bundle_v3_github.whl.sigstore"),
    ("sigstore", "tsa.bundle.txt.sigstore"),
    ("sigstore", "reusable-workflow-attestation.sigstore.json"),
    ("sigstore", "sigstore-js-2.1.0-bundle.json"),
    (
        "rekor",
        "conformance-happy-path-intoto-in-dsse-v3.sigstore.json",
    ),
];

#[test]
fn vectors_are_pinned_by_sha256sums() {
    let sums = String::from_utf8(read("rekor", "SHA256SUMS")).unwrap();
    let mut files = 0;
    for line in sums.lines() {
        let (digest, name) = line.split_once("  ").unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(read("rekor", name))),
            digest,
            "{name} changed"
        );
        files += 1;
    }
    assert_eq!(files, 4);
}

/// The leaf certificate of a bundle (v0.3 `certificate`, older `x509CertificateChain`).
fn bundle_leaf_der(bundle: &Value) -> Vec<u8> {
    let material = &bundle["verificationMaterial"];
    match material.get("certificate") {
        Some(certificate) => b64(&certificate["rawBytes"]),
        None => b64(&material["x509CertificateChain"]["certificates"][0]["rawBytes"]),
    }
}

fn tlog_entry(bundle: &Value) -> &Value {
    &bundle["verificationMaterial"]["tlogEntries"][0]
}

/// A PEM of `der` written unlike Rekor would (76-column CRLF lines, surrounding blank
/// lines), so that reproducing a body also proves the PEM is re-encoded canonically.
fn loose_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "\n  -----BEGIN CERTIFICATE-----\r\n{}\r\n-----END CERTIFICATE-----\r\n\n",
        lines.join("\r\n")
    )
}

fn hashedrekord_json(digest_hex: &str, signature: &[u8], pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "signature": {
                "content": STANDARD.encode(signature),
                "publicKey": {"content": STANDARD.encode(pem)},
            },
            "data": {"hash": {"algorithm": "sha256", "value": digest_hex}},
        },
    })
}

/// The `dsse` proposed entry sigstore-python sends: unset fields written as `null`.
fn dsse_json(envelope: &str, pem: &str) -> Value {
    json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "proposedContent": {"envelope": envelope, "verifiers": [STANDARD.encode(pem)]},
            "signatures": null,
            "envelopeHash": null,
            "payloadHash": null,
        },
    })
}

fn parse(value: &Value) -> Result<ProposedEntry, ProposedEntryError> {
    ProposedEntry::from_json(&serde_json::to_vec(value).unwrap())
}

#[test]
fn hashedrekord_bodies_reproduce_real_rekor_bodies() {
    for name in HASHEDREKORD_BUNDLES {
        let bundle = read_json("sigstore", name);
        let signature = &bundle["messageSignature"];
        assert_eq!(signature["messageDigest"]["algorithm"], "SHA2_256");
        let digest = hex::encode(b64(&signature["messageDigest"]["digest"]));
        let proposed = hashedrekord_json(
            &digest,
            &b64(&signature["signature"]),
            &loose_pem(&bundle_leaf_der(&bundle)),
        );
        let entry = parse(&proposed).unwrap_or_else(|e| panic!("{name}: {e}"));
        let logged = b64(&tlog_entry(&bundle)["canonicalizedBody"]);
        assert_eq!(
            String::from_utf8_lossy(entry.canonical_body()),
            String::from_utf8_lossy(&logged),
            "{name}"
        );
        assert_eq!(entry.kind(), EntryKind::HashedRekord);
        assert_eq!(entry.signer_certificate_der(), bundle_leaf_der(&bundle));
        assert_eq!(entry.leaf_hash(), leaf_hash(&logged));
    }
}

#[test]
fn a_hashedrekord_body_is_its_own_proposed_entry() {
    // The sigstore-java response's body, proposed again, canonicalizes to itself, and its
    // UUID is the leaf hash of the body.
    let response = read_json("rekor", "sigstore-java-entry.json");
    let (uuid, entry) = response.as_object().unwrap().iter().next().unwrap();
    let body = b64(&entry["body"]);
    let proposed = ProposedEntry::from_json(&body).unwrap();
    assert_eq!(proposed.canonical_body(), body.as_slice());
    assert_eq!(entry_uuid(&proposed.leaf_hash()), *uuid);
}

/// The `dsse` bundles, with the envelope JSON each client sent (the logged
/// `envelopeHash` is the SHA-256 of exactly that text).
fn dsse_cases() -> Vec<(Value, String)> {
    let mut cases = Vec::new();
    // gh CLI / sigstore-go: Go's `dsse.Envelope` struct, `keyid` after `sig`, empty.
    let bundle = read_json("sigstore", "reusable-workflow-attestation.sigstore.json");
    let e = &bundle["dsseEnvelope"];
    let envelope = format!(
        r#"{{"payload":"{}","payloadType":"{}","signatures":[{{"sig":"{}","keyid":""}}]}}"#,
        e["payload"].as_str().unwrap(),
        e["payloadType"].as_str().unwrap(),
        e["signatures"][0]["sig"].as_str().unwrap(),
    );
    cases.push((bundle, envelope));
    // sigstore-conformance: compact JSON without `keyid`.
    let bundle = read_json(
        "rekor",
        "conformance-happy-path-intoto-in-dsse-v3.sigstore.json",
    );
    let e = &bundle["dsseEnvelope"];
    let envelope = format!(
        r#"{{"payload":"{}","payloadType":"{}","signatures":[{{"sig":"{}"}}]}}"#,
        e["payload"].as_str().unwrap(),
        e["payloadType"].as_str().unwrap(),
        e["signatures"][0]["sig"].as_str().unwrap(),
    );
    cases.push((bundle, envelope));
    cases
}

#[test]
fn dsse_bodies_reproduce_real_rekor_bodies() {
    for (bundle, envelope) in dsse_cases() {
        let logged = b64(&tlog_entry(&bundle)["canonicalizedBody"]);
        assert_eq!(tlog_entry(&bundle)["kindVersion"]["kind"], "dsse");
        let proposed = dsse_json(&envelope, &loose_pem(&bundle_leaf_der(&bundle)));
        let entry = parse(&proposed).unwrap();
        assert_eq!(
            String::from_utf8_lossy(entry.canonical_body()),
            String::from_utf8_lossy(&logged)
        );
        assert_eq!(entry.kind(), EntryKind::Dsse);
        assert_eq!(entry.signer_certificate_der(), bundle_leaf_der(&bundle));
    }
}

#[test]
fn canonical_bodies_are_rfc8785_ordered() {
    // serde_json's map (no `preserve_order` in this build) sorts keys, which for these
    // ASCII keys is the RFC 8785 order, and it escapes strings as RFC 8785 does: a body
    // written in canonical form survives a parse and re-serialization unchanged.
    let mut bodies: Vec<Vec<u8>> = dsse_cases()
        .iter()
        .map(|(b, _)| b64(&tlog_entry(b)["canonicalizedBody"]))
        .collect();
    for name in HASHEDREKORD_BUNDLES {
        bodies.push(b64(
            &tlog_entry(&read_json("sigstore", name))["canonicalizedBody"],
        ));
    }
    let signer = TestSigner::new("ordered@example.com");
    bodies.push(signer.hashedrekord(b"artifact").canonical_body().to_vec());
    bodies.push(
        signer
            .dsse(intoto::PAYLOAD_TYPE, &statement(&[DIGEST_A]))
            .canonical_body()
            .to_vec(),
    );
    for body in bodies {
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(serde_json::to_vec(&value).unwrap(), body);
    }
}

// ---------------------------------------------------------------------------------------
// Signed entry timestamps

/// The Rekor v1 public key (SPKI DER) for a log ID, from the shipped trusted roots.
fn rekor_key(log_id: &[u8]) -> Vec<u8> {
    for root in ["public-good.trusted_root.json", "staging.trusted_root.json"] {
        for tlog in read_json("sigstore", root)["tlogs"].as_array().unwrap() {
            if b64(&tlog["logId"]["keyId"]) == log_id {
                return b64(&tlog["publicKey"]["rawBytes"]);
            }
        }
    }
    panic!("no Rekor key for log ID {}", hex::encode(log_id));
}

fn pem_to_der(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).unwrap();
    let inner: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(inner).unwrap()
}

fn ecdsa_p256_verifies(spki_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki_der)
        .verify(message, signature)
        .is_ok()
}

#[test]
fn set_payload_is_what_real_signed_entry_timestamps_sign() {
    for (dir, name) in SET_BUNDLES {
        let bundle = read_json(dir, name);
        let entry = tlog_entry(&bundle);
        let log_id: [u8; 32] = b64(&entry["logId"]["keyId"]).try_into().unwrap();
        let body = b64(&entry["canonicalizedBody"]);
        let time: i64 = entry["integratedTime"].as_str().unwrap().parse().unwrap();
        let index: u64 = entry["logIndex"].as_str().unwrap().parse().unwrap();
        let set = b64(&entry["inclusionPromise"]["signedEntryTimestamp"]);
        let key = rekor_key(&log_id);
        assert!(
            ecdsa_p256_verifies(&key, &set_payload(&body, time, &log_id, index), &set),
            "{name}"
        );
        // The check can fail: any field off by one breaks it.
        assert!(!ecdsa_p256_verifies(
            &key,
            &set_payload(&body, time + 1, &log_id, index),
            &set
        ));
        assert!(!ecdsa_p256_verifies(
            &key,
            &set_payload(&body, time, &log_id, index + 1),
            &set
        ));
    }
}

#[test]
fn set_payload_layout() {
    let payload = set_payload(b"{}", 1_700_000_000, &[0xab; 32], 42);
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        format!(
            r#"{{"body":"e30=","integratedTime":1700000000,"logID":"{}","logIndex":42}}"#,
            "ab".repeat(32)
        )
    );
    // Above 2^53 numbers are written as RFC 8785 (ECMAScript) writes the nearest double.
    let payload = set_payload(b"", -1, &[0; 32], 9_007_199_254_740_993);
    let text = String::from_utf8(payload).unwrap();
    assert!(text.contains(r#""integratedTime":-1,"#), "{text}");
    assert!(text.ends_with(r#""logIndex":9007199254740992}"#), "{text}");
}

// ---------------------------------------------------------------------------------------
// LogEntry responses

#[test]
fn real_log_entry_responses_round_trip_and_verify() {
    let key = pem_to_der(&read("rekor", "sigstore-java-rekor.pub"));
    for name in [
        "sigstore-java-entry.json",
        "sigstore-java-entry-no-inclusion-proof.json",
    ] {
        let original = read_json("rekor", name);
        let response: LogEntryResponse = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(serde_json::to_value(&response).unwrap(), original, "{name}");
        assert_eq!(
            serde_json::from_slice::<Value>(&response.to_json()).unwrap(),
            original
        );
        let (uuid, view) = response.0.iter().next().unwrap();
        let body = STANDARD.decode(&view.body).unwrap();
        let leaf = leaf_hash(&body);
        assert_eq!(entry_uuid(&leaf), *uuid);
        assert_eq!(parse_entry_uuid(uuid).unwrap(), leaf);
        let verification = view.verification.as_ref().unwrap();
        let set = STANDARD
            .decode(verification.signed_entry_timestamp.as_ref().unwrap())
            .unwrap();
        assert!(ecdsa_p256_verifies(
            &key,
            &view.set_payload().unwrap(),
            &set
        ));
        if let Some(proof) = &verification.inclusion_proof {
            let hashes: Vec<Hash> = proof
                .hashes
                .iter()
                .map(|h| hex::decode(h).unwrap().try_into().unwrap())
                .collect();
            let root: Hash = hex::decode(&proof.root_hash).unwrap().try_into().unwrap();
            verify_inclusion(proof.log_index, proof.tree_size, &leaf, &hashes, &root).unwrap();
            // Rebuilding the view from its parts gives the same JSON.
            let rebuilt = LogEntryView::new(
                &body,
                view.integrated_time,
                &hex::decode(&view.log_id).unwrap().try_into().unwrap(),
                view.log_index,
                &set,
                Some(InclusionProofView::new(
                    proof.log_index,
                    proof.tree_size,
                    &root,
                    &hashes,
                    &proof.checkpoint,
                )),
            );
            assert_eq!(
                serde_json::to_value(LogEntryResponse::new(&leaf, rebuilt)).unwrap(),
                original
            );
        }
    }
}

#[test]
fn log_entry_view_has_the_rekor_shape() {
    let body = br#"{"apiVersion":"0.0.1"}"#.to_vec();
    let leaf = leaf_hash(&body);
    let sequenced = SequencedEntry {
        index: 7,
        integrated_time: 1_700_000_123,
        entry: provmesh_protocol::log::AdmittedEntry {
            body: body.clone(),
            leaf_hash: leaf,
            search_keys: vec![],
            attestation: None,
        },
    };
    let proof = InclusionProofView::new(7, 8, &[3; 32], &[[1; 32], [2; 32]], "note\n\n— sig\n");
    let view = LogEntryView::from_sequenced(&sequenced, &[9; 32], b"sig", Some(proof));
    let rendered: Value =
        serde_json::from_slice(&LogEntryResponse::new(&leaf, view.clone()).to_json()).unwrap();
    assert_eq!(
        rendered,
        json!({
            (hex::encode(leaf)): {
                "body": STANDARD.encode(&body),
                "integratedTime": 1_700_000_123,
                "logID": "09".repeat(32),
                "logIndex": 7,
                "verification": {
                    "inclusionProof": {
                        "checkpoint": "note\n\n— sig\n",
                        "hashes": ["01".repeat(32), "02".repeat(32)],
                        "logIndex": 7,
                        "rootHash": "03".repeat(32),
                        "treeSize": 8,
                    },
                    "signedEntryTimestamp": STANDARD.encode(b"sig"),
                },
            }
        })
    );
    assert_eq!(
        view.set_payload().unwrap(),
        set_payload(&body, 1_700_000_123, &[9; 32], 7)
    );
    let mut bad = view.clone();
    bad.body = "!".into();
    assert_eq!(bad.set_payload(), Err(LogEntryViewError::Body));
    let mut bad = view;
    bad.log_id = "xyz".into();
    assert_eq!(bad.set_payload(), Err(LogEntryViewError::LogId));
}

#[test]
fn entry_uuids_and_entry_ids() {
    let leaf = [0x5a; 32];
    let uuid = entry_uuid(&leaf);
    assert_eq!(uuid.len(), 64);
    assert_eq!(parse_entry_uuid(&uuid), Ok(leaf));
    assert_eq!(parse_entry_uuid(&uuid.to_uppercase()), Ok(leaf));
    // Entry IDs: a 16-hex-digit tree ID, then the UUID (Rekor's `sharding` package).
    assert_eq!(
        parse_entry_uuid(&format!("24296fb24b8ad77a{uuid}")),
        Ok(leaf)
    );
    assert_eq!(
        parse_entry_uuid(&format!("0000000000000000{uuid}")),
        Ok(leaf)
    );
    assert_eq!(
        parse_entry_uuid(&format!("7fffffffffffffff{uuid}")),
        Ok(leaf)
    );
    assert_eq!(
        parse_entry_uuid(&format!("8000000000000000{uuid}")),
        Err(EntryUuidError::TreeId)
    );
    assert_eq!(
        parse_entry_uuid(&uuid[1..]),
        Err(EntryUuidError::Length { len: 63 })
    );
    assert_eq!(parse_entry_uuid(""), Err(EntryUuidError::Length { len: 0 }));
    assert_eq!(
        parse_entry_uuid(&format!("g{}", &uuid[1..])),
        Err(EntryUuidError::NotHex)
    );
    // 80 bytes with a multi-byte character straddling the tree ID boundary: no panic.
    let tricky = format!("{}é{}", "0".repeat(15), "0".repeat(63));
    assert_eq!(tricky.len(), 80);
    assert_eq!(parse_entry_uuid(&tricky), Err(EntryUuidError::NotHex));
}

// ---------------------------------------------------------------------------------------
// Admission with our own keys

const DIGEST_A: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
const DIGEST_B: &str = "49a3aa6075e0f49f82843e74b5baa614ad2a588e6675612bf108a0a008c5ac25";

/// A P-256 key, a self-signed certificate for it, and the `CertifiedSigner` that
/// checking the certificate would yield.
struct TestSigner {
    key: EcdsaKeyPair,
    certificate_der: Vec<u8>,
    signer: CertifiedSigner,
}

impl TestSigner {
    fn new(identity: &str) -> TestSigner {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let certificate = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key_pair)
            .unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key_pair.serialize_der())
                .unwrap();
        let signer = CertifiedSigner {
            identity: identity.to_owned(),
            public_key_sec1: key_pair.public_key_raw().to_vec(),
            not_before: 0,
            not_after: i64::MAX,
        };
        assert_eq!(signer.public_key_sec1.len(), 65);
        TestSigner {
            key,
            certificate_der: certificate.der().to_vec(),
            signer,
        }
    }

    fn pem(&self) -> String {
        loose_pem(&self.certificate_der)
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Vec<u8> {
        let digest = lc_digest::Digest::import_less_safe(digest, &lc_digest::SHA256).unwrap();
        self.key.sign_digest(&digest).unwrap().as_ref().to_vec()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(&SystemRandom::new(), message)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn hashedrekord(&self, artifact: &[u8]) -> ProposedEntry {
        let digest: [u8; 32] = Sha256::digest(artifact).into();
        parse(&hashedrekord_json(
            &hex::encode(digest),
            &self.sign_digest(&digest),
            &self.pem(),
        ))
        .unwrap()
    }

    fn envelope(&self, payload_type: &str, payload: &[u8]) -> String {
        let sig = self.sign(&dsse::pae(payload_type, payload));
        json!({
            "payload": STANDARD.encode(payload),
            "payloadType": payload_type,
            "signatures": [{"keyid": "", "sig": STANDARD.encode(sig)}],
        })
        .to_string()
    }

    fn dsse(&self, payload_type: &str, payload: &[u8]) -> ProposedEntry {
        parse(&dsse_json(
            &self.envelope(payload_type, payload),
            &self.pem(),
        ))
        .unwrap()
    }
}

fn statement(digests: &[&str]) -> Vec<u8> {
    let subjects: Vec<Value> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"name": format!("artifact-{i}"), "digest": {"sha256": d}}))
        .collect();
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {},
    })
    .to_string()
    .into_bytes()
}

fn digest_of(hex_digest: &str) -> [u8; 32] {
    hex::decode(hex_digest).unwrap().try_into().unwrap()
}

#[test]
fn hashedrekord_admission_accepts_good_and_rejects_tampered() {
    let alice = TestSigner::new("alice@example.com");
    let entry = alice.hashedrekord(b"hello, log");
    let admitted = entry.admit(&alice.signer).unwrap();
    let digest: [u8; 32] = Sha256::digest(b"hello, log").into();
    assert_eq!(admitted.body, entry.canonical_body());
    assert_eq!(admitted.leaf_hash, leaf_hash(&admitted.body));
    assert_eq!(admitted.search_keys, vec![digest]);

    let signature = alice.sign_digest(&digest);
    // A signature with one byte changed.
    let mut tampered = signature.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let entry = parse(&hashedrekord_json(
        &hex::encode(digest),
        &tampered,
        &alice.pem(),
    ))
    .unwrap();
    assert_eq!(
        entry.admit(&alice.signer),
        Err(AdmitError::SignatureInvalid)
    );
    // The right signature over another digest.
    let other: [u8; 32] = Sha256::digest(b"hello, log!").into();
    let entry = parse(&hashedrekord_json(
        &hex::encode(other),
        &signature,
        &alice.pem(),
    ))
    .unwrap();
    assert_eq!(
        entry.admit(&alice.signer),
        Err(AdmitError::SignatureInvalid)
    );
    // Alice's signature presented with Bob's certificate (and Bob's certified key).
    let bob = TestSigner::new("bob@example.com");
    let entry = parse(&hashedrekord_json(
        &hex::encode(digest),
        &signature,
        &bob.pem(),
    ))
    .unwrap();
    assert_eq!(entry.admit(&bob.signer), Err(AdmitError::SignatureInvalid));
    // Alice's certificate, but a signer obtained from Bob's certificate.
    let entry = alice.hashedrekord(b"hello, log");
    assert_eq!(
        entry.admit(&bob.signer),
        Err(AdmitError::CertificateKeyMismatch)
    );
    // A signer whose key is not an uncompressed P-256 point.
    let mut short = alice.signer.clone();
    short.public_key_sec1.truncate(64);
    assert_eq!(entry.admit(&short), Err(AdmitError::SignerKey));
    let mut off_curve = alice.signer.clone();
    off_curve.public_key_sec1[64] ^= 1;
    assert!(matches!(
        entry.admit(&off_curve),
        Err(AdmitError::SignerKey | AdmitError::CertificateKeyMismatch)
    ));
    // A PEM block whose content is not a certificate.
    let junk = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(b"not a certificate")
    );
    let entry = parse(&hashedrekord_json(&hex::encode(digest), &signature, &junk)).unwrap();
    assert_eq!(entry.admit(&alice.signer), Err(AdmitError::Certificate));
}

#[test]
fn dsse_admission_accepts_good_and_rejects_tampered() {
    let alice = TestSigner::new("alice@example.com");
    let payload = statement(&[DIGEST_A, DIGEST_B, DIGEST_A]);
    let entry = alice.dsse(intoto::PAYLOAD_TYPE, &payload);
    let admitted = entry.admit(&alice.signer).unwrap();
    let payload_hash: [u8; 32] = Sha256::digest(&payload).into();
    assert_eq!(
        admitted.search_keys,
        vec![payload_hash, digest_of(DIGEST_A), digest_of(DIGEST_B)]
    );
    assert_eq!(admitted.body, entry.canonical_body());
    let body: Value = serde_json::from_slice(&admitted.body).unwrap();
    assert_eq!(
        body["spec"]["payloadHash"]["value"],
        hex::encode(payload_hash)
    );

    // The payload changed after signing.
    let envelope: Value =
        serde_json::from_str(&alice.envelope(intoto::PAYLOAD_TYPE, &payload)).unwrap();
    let mut tampered = envelope.clone();
    tampered["payload"] = STANDARD.encode(statement(&[DIGEST_B])).into();
    let entry = parse(&dsse_json(&tampered.to_string(), &alice.pem())).unwrap();
    assert_eq!(
        entry.admit(&alice.signer),
        Err(AdmitError::SignatureInvalid)
    );
    // The payload type changed after signing.
    let mut tampered = envelope.clone();
    tampered["payloadType"] = "application/vnd.in-toto.other+json".into();
    let entry = parse(&dsse_json(&tampered.to_string(), &alice.pem())).unwrap();
    assert_eq!(
        entry.admit(&alice.signer),
        Err(AdmitError::SignatureInvalid)
    );
    // Alice's envelope presented with Bob's certificate.
    let bob = TestSigner::new("bob@example.com");
    let entry = parse(&dsse_json(&envelope.to_string(), &bob.pem())).unwrap();
    assert_eq!(entry.admit(&bob.signer), Err(AdmitError::SignatureInvalid));
    assert_eq!(
        entry.admit(&alice.signer),
        Err(AdmitError::CertificateKeyMismatch)
    );
}

#[test]
fn dsse_search_keys() {
    let alice = TestSigner::new("alice@example.com");
    // Not in-toto: found by payload digest only.
    let entry = alice.dsse("text/plain", b"hello");
    let hello: [u8; 32] = Sha256::digest(b"hello").into();
    assert_eq!(entry.admit(&alice.signer).unwrap().search_keys, vec![hello]);

    // An in-toto Statement v0.1 (what older cosign signs): indexed leniently, as Rekor
    // does; subjects without a valid sha256 are skipped.
    let v01 = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [
            {"name": "a", "digest": {"sha256": DIGEST_A}},
            {"name": "b", "digest": {"sha512": "00".repeat(64)}},
            {"name": "c", "digest": {"sha256": "not hex"}},
            {"name": "d", "digest": {"sha256": DIGEST_B.to_uppercase()}},
        ],
        "predicate": {},
    })
    .to_string();
    let entry = alice.dsse(intoto::PAYLOAD_TYPE, v01.as_bytes());
    let payload_hash: [u8; 32] = Sha256::digest(v01.as_bytes()).into();
    assert_eq!(
        entry.admit(&alice.signer).unwrap().search_keys,
        vec![payload_hash, digest_of(DIGEST_A), digest_of(DIGEST_B)]
    );

    // Many subjects: the payload digest and the first ones, MAX_SEARCH_KEYS in all.
    let many: Vec<String> = (0..MAX_SEARCH_KEYS + 10)
        .map(|i| hex::encode(Sha256::digest(i.to_be_bytes())))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let payload = statement(&refs);
    let keys = alice
        .dsse(intoto::PAYLOAD_TYPE, &payload)
        .admit(&alice.signer)
        .unwrap()
        .search_keys;
    assert_eq!(keys.len(), MAX_SEARCH_KEYS);
    assert_eq!(keys[0], <[u8; 32]>::from(Sha256::digest(&payload)));
    assert_eq!(keys[1], digest_of(&many[0]));
}

#[test]
fn proposed_entries_round_trip_and_constructors_agree() {
    let alice = TestSigner::new("alice@example.com");
    let hashed = alice.hashedrekord(b"x");
    assert_eq!(ProposedEntry::from_json(&hashed.to_json()).unwrap(), hashed);
    let digest: [u8; 32] = Sha256::digest(b"x").into();
    let signature = alice.sign_digest(&digest);
    let built =
        ProposedEntry::hashedrekord(digest, signature.clone(), alice.certificate_der.clone())
            .unwrap();
    assert_eq!(
        built.canonical_body(),
        parse(&hashedrekord_json(
            &hex::encode(digest),
            &signature,
            &alice.pem()
        ))
        .unwrap()
        .canonical_body()
    );
    // For hashedrekord the canonical body is itself the proposed entry.
    assert_eq!(built.to_json(), built.canonical_body());

    let envelope = alice.envelope("text/plain", b"hi");
    let dsse_entry = parse(&dsse_json(&envelope, &alice.pem())).unwrap();
    assert_eq!(
        ProposedEntry::from_json(&dsse_entry.to_json()).unwrap(),
        dsse_entry
    );
    let built = ProposedEntry::dsse(envelope, alice.certificate_der.clone()).unwrap();
    assert_eq!(built, dsse_entry);
    assert!(built.admit(&alice.signer).is_ok());
}

// ---------------------------------------------------------------------------------------
// Every error variant

/// Sets (or adds) the member at a JSON pointer.
fn set(value: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match value.pointer_mut(parent).unwrap() {
        Value::Object(object) => {
            object.insert(key.to_owned(), new);
        }
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = new,
        other => panic!("cannot set {pointer} in {other}"),
    }
}

fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .unwrap();
}

#[test]
fn every_proposed_entry_error_is_reachable() {
    let alice = TestSigner::new("alice@example.com");
    let digest: [u8; 32] = Sha256::digest(b"x").into();
    let good = hashedrekord_json(
        &hex::encode(digest),
        &alice.sign_digest(&digest),
        &alice.pem(),
    );
    assert!(parse(&good).is_ok());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        parse(&v).unwrap_err()
    };

    let big = vec![b' '; MAX_PROPOSED_ENTRY_BYTES + 1];
    assert!(matches!(
        ProposedEntry::from_json(&big),
        Err(ProposedEntryError::TooLarge { .. })
    ));
    assert!(matches!(
        ProposedEntry::from_json(b"{\"kind\":"),
        Err(ProposedEntryError::Json(_))
    ));
    assert!(matches!(
        with(&|v| set(v, "/kind", "rekord".into())),
        ProposedEntryError::UnknownKind(k) if k == "rekord"
    ));
    assert!(matches!(
        with(&|v| set(v, "/apiVersion", "0.0.2".into())),
        ProposedEntryError::UnsupportedApiVersion { kind: EntryKind::HashedRekord, api_version } if api_version == "0.0.2"
    ));
    assert!(matches!(
        with(&|v| remove(v, "/spec/data")),
        ProposedEntryError::MissingField { field: "spec.data" }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/signature/publicKey", Value::Null)),
        ProposedEntryError::MissingField {
            field: "spec.signature.publicKey"
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/data/content", "aGk=".into())),
        ProposedEntryError::UnknownField { field } if field == "spec.data.content"
    ));
    assert!(matches!(
        with(&|v| set(
            v,
            "/spec/data/hash/value",
            hex::encode(digest).to_uppercase().into()
        )),
        ProposedEntryError::InvalidField {
            field: "spec.data.hash.value",
            ..
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/signature/content", 5.into())),
        ProposedEntryError::InvalidField {
            field: "spec.signature.content",
            ..
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/signature/content", "".into())),
        ProposedEntryError::InvalidField {
            field: "spec.signature.content",
            ..
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/signature/content", "MEUC!!==".into())),
        ProposedEntryError::Base64 {
            field: "spec.signature.content"
        }
    ));
    assert!(matches!(
        with(&|v| {
            set(v, "/spec/data/hash/algorithm", "sha384".into());
            set(v, "/spec/data/hash/value", "ab".repeat(48).into());
        }),
        ProposedEntryError::UnsupportedHashAlgorithm { algorithm } if algorithm == "sha384"
    ));
    let pem_error = |pem: &str| {
        with(&|v| {
            set(
                v,
                "/spec/signature/publicKey/content",
                STANDARD.encode(pem).into(),
            )
        })
    };
    let der = &alice.certificate_der;
    let one = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(der)
    );
    for bad in [
        "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n".to_owned(),
        format!("{one}{one}"),
        format!("garbage\n{one}"),
        format!("{one}trailing"),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_owned(),
        "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n".to_owned(),
        "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nMFkw\n-----END CERTIFICATE-----\n"
            .to_owned(),
        format!(
            "-----BEGIN CERTIFICATE-----{}\n-----END CERTIFICATE-----",
            STANDARD.encode(der)
        ),
        "-----BEGIN CERTIFICATE-----\nMFkw\n".to_owned(),
    ] {
        assert!(
            matches!(
                pem_error(&bad),
                ProposedEntryError::CertificatePem {
                    field: "spec.signature.publicKey.content",
                    ..
                }
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        with(&|v| set(
            v,
            "/spec/signature/publicKey/content",
            STANDARD.encode([0xff, 0xfe]).into()
        )),
        ProposedEntryError::CertificatePem { .. }
    ));
    // A signature long enough that the body no longer fits a tile entry.
    assert!(matches!(
        with(&|v| set(v, "/spec/signature/content", STANDARD.encode(vec![0u8; 50_000]).into())),
        ProposedEntryError::BodyTooLarge { max, .. } if max == MAX_ENTRY_BODY_BYTES
    ));
    assert!(matches!(
        parse(&json!([1])),
        Err(ProposedEntryError::InvalidField { field: "$", .. })
    ));
    assert!(matches!(
        parse(&json!({"apiVersion": "0.0.1", "spec": {}})),
        Err(ProposedEntryError::MissingField { field: "kind" })
    ));
    assert!(matches!(
        with(&|v| set(v, "/extra", 1.into())),
        ProposedEntryError::UnknownField { field } if field == "extra"
    ));
    // `null` members are absent members, known or not.
    assert!(
        parse(&{
            let mut v = good.clone();
            set(&mut v, "/spec/signature/url", Value::Null);
            v
        })
        .is_ok()
    );
}

#[test]
fn every_dsse_specific_error_is_reachable() {
    let alice = TestSigner::new("alice@example.com");
    let envelope = alice.envelope("text/plain", b"hi");
    let good = dsse_json(&envelope, &alice.pem());
    assert!(parse(&good).is_ok());
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        parse(&v).unwrap_err()
    };
    for (pointer, field) in [
        ("/spec/signatures", "spec.signatures"),
        ("/spec/envelopeHash", "spec.envelopeHash"),
        ("/spec/payloadHash", "spec.payloadHash"),
    ] {
        let err = with(&|v| set(v, pointer, json!({"algorithm": "sha256", "value": "00"})));
        assert!(
            matches!(err, ProposedEntryError::InvalidField { field: f, .. } if f == field),
            "{err}"
        );
    }
    assert!(matches!(
        with(&|v| remove(v, "/spec/proposedContent")),
        ProposedEntryError::MissingField {
            field: "spec.proposedContent"
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/proposedContent/verifiers", json!([]))),
        ProposedEntryError::InvalidField {
            field: "spec.proposedContent.verifiers",
            ..
        }
    ));
    assert!(matches!(
        with(&|v| {
            let pem = STANDARD.encode(alice.pem());
            set(v, "/spec/proposedContent/verifiers", json!([pem, pem]));
        }),
        ProposedEntryError::InvalidField {
            field: "spec.proposedContent.verifiers",
            ..
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/proposedContent/verifiers", json!([7]))),
        ProposedEntryError::InvalidField {
            field: "spec.proposedContent.verifiers[0]",
            ..
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/proposedContent/verifiers", json!(["@@"]))),
        ProposedEntryError::Base64 {
            field: "spec.proposedContent.verifiers[0]"
        }
    ));
    assert!(matches!(
        with(&|v| set(v, "/spec/proposedContent/envelope", "{\"payload\":".into())),
        ProposedEntryError::InvalidField {
            field: "spec.proposedContent.envelope",
            ..
        }
    ));
    let envelope_value: Value = serde_json::from_str(&envelope).unwrap();
    let with_envelope = |f: &dyn Fn(&mut Value)| {
        let mut e = envelope_value.clone();
        f(&mut e);
        with(&|v| set(v, "/spec/proposedContent/envelope", e.to_string().into()))
    };
    assert!(matches!(
        with_envelope(&|e| set(e, "/signatures", json!([]))),
        ProposedEntryError::InvalidField {
            field: "spec.proposedContent.envelope",
            ..
        }
    ));
    assert!(matches!(
        with_envelope(&|e| {
            let sig = e["signatures"][0].clone();
            set(e, "/signatures", json!([sig, sig]));
        }),
        ProposedEntryError::InvalidField {
            field: "spec.proposedContent.envelope",
            ..
        }
    ));
    assert!(matches!(
        with_envelope(&|e| set(e, "/payload", "%%%".into())),
        ProposedEntryError::Base64 {
            field: "spec.proposedContent.envelope.payload"
        }
    ));
    // URL-safe `sig`: Rekor would copy it into the body, against its own schema.
    assert!(matches!(
        with_envelope(&|e| set(e, "/signatures/0/sig", "-_8=".into())),
        ProposedEntryError::Base64 {
            field: "spec.proposedContent.envelope.signatures[0].sig"
        }
    ));
    // A URL-safe payload is fine (DSSE allows either alphabet).
    let mut url_safe = envelope_value.clone();
    set(&mut url_safe, "/payload", "-_8=".into());
    assert!(parse(&dsse_json(&url_safe.to_string(), &alice.pem())).is_ok());
}

#[test]
fn constructors_refuse_what_from_json_refuses() {
    let alice = TestSigner::new("alice@example.com");
    assert!(matches!(
        ProposedEntry::hashedrekord([0; 32], vec![], alice.certificate_der.clone()),
        Err(ProposedEntryError::InvalidField { .. })
    ));
    assert!(matches!(
        ProposedEntry::hashedrekord([0; 32], vec![1], vec![]),
        Err(ProposedEntryError::CertificatePem { .. })
    ));
    assert!(matches!(
        ProposedEntry::hashedrekord([0; 32], vec![1; 60_000], alice.certificate_der.clone()),
        Err(ProposedEntryError::BodyTooLarge { .. })
    ));
    assert!(matches!(
        ProposedEntry::dsse("{}".into(), alice.certificate_der.clone()),
        Err(ProposedEntryError::InvalidField { .. })
    ));
    assert!(matches!(
        ProposedEntry::dsse(alice.envelope("t", b"x"), vec![]),
        Err(ProposedEntryError::CertificatePem { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Search request bodies

#[test]
fn search_log_query_parses_and_round_trips() {
    let alice = TestSigner::new("alice@example.com");
    let entry = alice.hashedrekord(b"x");
    let uuid = entry_uuid(&[1; 32]);
    let body = json!({
        "entryUUIDs": [uuid, format!("24296fb24b8ad77a{}", entry_uuid(&[2; 32]))],
        "logIndexes": [0, 42],
        "entries": [entry.to_json_value()],
    });
    let query = SearchLogQuery::from_json(body.to_string().as_bytes()).unwrap();
    assert_eq!(query.entry_uuids, vec![[1; 32], [2; 32]]);
    assert_eq!(query.log_indexes, vec![0, 42]);
    assert_eq!(query.entries, vec![entry]);
    assert_eq!(query.query_count(), 5);
    assert_eq!(SearchLogQuery::from_json(&query.to_json()).unwrap(), query);
    // sigstore-python's retrieve: one proposed entry, with its `null` fields.
    let dsse_entry = dsse_json(&alice.envelope("t", b"x"), &alice.pem());
    let query =
        SearchLogQuery::from_json(json!({"entries": [dsse_entry]}).to_string().as_bytes()).unwrap();
    assert_eq!(query.entries[0].kind(), EntryKind::Dsse);
    assert_eq!(
        SearchLogQuery::from_json(b"{\"logIndexes\":null}").unwrap(),
        SearchLogQuery::default()
    );
}

#[test]
fn every_search_log_query_error_is_reachable() {
    let q = |v: Value| SearchLogQuery::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(matches!(
        SearchLogQuery::from_json(&vec![b' '; MAX_SEARCH_LOG_QUERY_BYTES + 1]),
        Err(SearchLogQueryError::TooLarge { .. })
    ));
    assert!(matches!(
        SearchLogQuery::from_json(b"[").unwrap_err(),
        SearchLogQueryError::Json(_)
    ));
    assert!(matches!(q(json!([])), SearchLogQueryError::NotAnObject));
    assert!(matches!(
        q(json!({"hash": "x"})),
        SearchLogQueryError::UnknownField { field } if field == "hash"
    ));
    assert!(matches!(
        q(json!({"logIndexes": []})),
        SearchLogQueryError::InvalidField {
            field: "logIndexes",
            ..
        }
    ));
    assert!(matches!(
        q(json!({"entries": {}})),
        SearchLogQueryError::InvalidField {
            field: "entries",
            ..
        }
    ));
    let eleven: Vec<u64> = (0..=MAX_SEARCH_QUERIES as u64).collect();
    assert!(matches!(
        q(json!({"logIndexes": eleven})),
        SearchLogQueryError::TooManyQueries { count: 11, max: 10 }
    ));
    assert!(matches!(
        q(json!({"logIndexes": [1, 2, 3, 4, 5], "entryUUIDs": vec![entry_uuid(&[0; 32]); 6]})),
        SearchLogQueryError::TooManyQueries { count: 11, .. }
    ));
    assert!(matches!(
        q(json!({"logIndexes": [-1]})),
        SearchLogQueryError::InvalidItem {
            field: "logIndexes",
            index: 0,
            ..
        }
    ));
    assert!(matches!(
        q(json!({"logIndexes": [1, 1.5]})),
        SearchLogQueryError::InvalidItem {
            field: "logIndexes",
            index: 1,
            ..
        }
    ));
    assert!(matches!(
        q(json!({"entryUUIDs": [1]})),
        SearchLogQueryError::InvalidItem {
            field: "entryUUIDs",
            index: 0,
            ..
        }
    ));
    assert!(matches!(
        q(json!({"entryUUIDs": ["abc"]})),
        SearchLogQueryError::EntryUuid {
            index: 0,
            source: EntryUuidError::Length { len: 3 }
        }
    ));
    assert!(matches!(
        q(json!({"entries": [{"kind": "rekord"}]})),
        SearchLogQueryError::Entry {
            index: 0,
            source: ProposedEntryError::UnknownKind(_)
        }
    ));
}

#[test]
fn search_index_query_forms_and_errors() {
    let hex_a = DIGEST_A;
    for hash in [
        format!("sha256:{hex_a}"),
        hex_a.to_owned(),
        format!("sha256:{}", hex_a.to_uppercase()),
    ] {
        let query =
            SearchIndexQuery::from_json(json!({"hash": hash}).to_string().as_bytes()).unwrap();
        assert_eq!(query.sha256, digest_of(hex_a));
        assert_eq!(
            query.to_json(),
            format!(r#"{{"hash":"sha256:{hex_a}"}}"#).into_bytes()
        );
        assert_eq!(
            SearchIndexQuery::from_json(&query.to_json()).unwrap(),
            query
        );
    }
    let ok = json!({"hash": hex_a, "operator": "and", "email": null});
    assert!(SearchIndexQuery::from_json(ok.to_string().as_bytes()).is_ok());

    let q = |v: Value| SearchIndexQuery::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(matches!(
        SearchIndexQuery::from_json(&vec![b' '; MAX_SEARCH_INDEX_QUERY_BYTES + 1]),
        Err(SearchIndexQueryError::TooLarge { .. })
    ));
    assert!(matches!(
        SearchIndexQuery::from_json(b"{").unwrap_err(),
        SearchIndexQueryError::Json(_)
    ));
    assert!(matches!(q(json!("x")), SearchIndexQueryError::NotAnObject));
    for field in ["email", "subject", "publicKey"] {
        let err = q(json!({ field: {"format": "x509", "content": "AA=="} }));
        assert!(
            matches!(err, SearchIndexQueryError::Unsupported { field: f } if f == field),
            "{err}"
        );
    }
    assert!(matches!(
        q(json!({"hash": hex_a, "limit": 5})),
        SearchIndexQueryError::UnknownField { field } if field == "limit"
    ));
    assert!(matches!(
        q(json!({"hash": hex_a, "operator": "xor"})),
        SearchIndexQueryError::InvalidField {
            field: "operator",
            ..
        }
    ));
    assert!(matches!(
        q(json!({"hash": 5})),
        SearchIndexQueryError::InvalidField { field: "hash", .. }
    ));
    for bad in [
        "sha256:abc",
        "",
        "sha256:",
        &format!("{hex_a}0"),
        &format!("SHA256:{hex_a}"),
    ] {
        let err = q(json!({ "hash": bad }));
        assert!(
            matches!(
                err,
                SearchIndexQueryError::InvalidField { field: "hash", .. }
                    | SearchIndexQueryError::UnsupportedHashAlgorithm { .. }
            ),
            "{bad}: {err}"
        );
    }
    assert!(matches!(
        q(json!({"hash": "sha256:abc"})),
        SearchIndexQueryError::InvalidField { field: "hash", .. }
    ));
    for (hash, algorithm) in [
        (format!("sha512:{}", "ab".repeat(64)), "sha512"),
        ("ab".repeat(64), "sha512"),
        (format!("sha1:{}", "ab".repeat(20)), "sha1"),
        ("ab".repeat(20), "sha1"),
        (format!("md5:{}", "ab".repeat(16)), "md5"),
    ] {
        let err = q(json!({ "hash": hash }));
        assert!(
            matches!(&err, SearchIndexQueryError::UnsupportedHashAlgorithm { algorithm: a } if a == algorithm),
            "{hash}: {err}"
        );
    }
    assert!(matches!(q(json!({})), SearchIndexQueryError::NoCriterion));
    assert!(matches!(
        q(json!({"hash": null, "operator": "or"})),
        SearchIndexQueryError::NoCriterion
    ));
}

// ---------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(entry) = ProposedEntry::from_json(&bytes) {
            prop_assert!(entry.canonical_body().len() <= MAX_ENTRY_BODY_BYTES);
        }
        let _ = SearchLogQuery::from_json(&bytes);
        let _ = SearchIndexQuery::from_json(&bytes);
        let _ = parse_entry_uuid(&String::from_utf8_lossy(&bytes));
    }

    /// Byte-level mutations of valid entries of both kinds never panic; whatever still
    /// parses keeps a body that fits the log and round-trips through `to_json`.
    #[test]
    fn mutated_entries_never_panic(
        dsse_kind in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let alice = TestSigner::new("alice@example.com");
        let entry = if dsse_kind {
            alice.dsse(intoto::PAYLOAD_TYPE, &statement(&[DIGEST_A]))
        } else {
            alice.hashedrekord(b"artifact")
        };
        let mut bytes = entry.to_json();
        for (index, byte) in &edits {
            let i = index.index(bytes.len());
            bytes[i] = *byte;
        }
        if let Ok(parsed) = ProposedEntry::from_json(&bytes) {
            prop_assert!(parsed.canonical_body().len() <= MAX_ENTRY_BODY_BYTES);
            prop_assert_eq!(&ProposedEntry::from_json(&parsed.to_json()).unwrap(), &parsed);
            // Admission decides, it does not panic.
            let _ = parsed.admit(&alice.signer);
        }
    }

    /// Whatever the sizes of the variable fields, an accepted entry's body fits a tile
    /// entry, and `BodyTooLarge` is exactly the case where it would not.
    #[test]
    fn accepted_bodies_fit_the_log(
        signature_len in 1usize..60_000,
        pem_width in 1usize..200,
        artifact in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let alice = TestSigner::new("alice@example.com");
        let digest: [u8; 32] = Sha256::digest(&artifact).into();
        // A real signature, in a certificate PEM of any line width: admitted, same body.
        let signature = alice.sign_digest(&digest);
        let b64_cert = STANDARD.encode(&alice.certificate_der);
        let lines: Vec<&str> = b64_cert
            .as_bytes()
            .chunks(pem_width)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----",
            lines.join("\n")
        );
        let entry = parse(&hashedrekord_json(&hex::encode(digest), &signature, &pem)).unwrap();
        let admitted = entry.admit(&alice.signer).unwrap();
        prop_assert!(admitted.body.len() <= MAX_ENTRY_BODY_BYTES);
        prop_assert_eq!(&admitted.body, &alice_body(&alice, &digest, &signature));
        // A signature field of any length: accepted exactly when the body fits.
        let junk = vec![0x30u8; signature_len];
        match parse(&hashedrekord_json(&hex::encode(digest), &junk, &pem)) {
            Ok(entry) => prop_assert!(entry.canonical_body().len() <= MAX_ENTRY_BODY_BYTES),
            Err(ProposedEntryError::BodyTooLarge { len, max }) => {
                prop_assert!(len > max);
                prop_assert_eq!(max, MAX_ENTRY_BODY_BYTES);
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}

/// The body of a hashedrekord entry built with the canonical (64-column) PEM.
fn alice_body(alice: &TestSigner, digest: &[u8; 32], signature: &[u8]) -> Vec<u8> {
    ProposedEntry::hashedrekord(*digest, signature.to_vec(), alice.certificate_der.clone())
        .unwrap()
        .canonical_body()
        .to_vec()
}
