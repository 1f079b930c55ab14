//! DSSE v1 against outside vectors (`tests/vectors/dsse/`, sources in its SOURCES.md):
//! the DSSE spec's PAE and ECDSA P-256 test vector, the DSSE reference
//! implementation's envelope with a key id, and real DSSE envelopes from Sigstore
//! bundles verified with their signing certificate's P-256 key. Then property tests:
//! JSON round trips, hostile bytes never panic, and any single-byte change to a
//! signed envelope's payload or payload type fails verification.
//!
//! Every vector file is pinned by `SHA256SUMS`, so changing any byte fails a test even
//! where the change would not alter a parsed value (JSON whitespace).

// Helpers outside `#[test]` functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::pkcs8::DecodePublicKey as _;
use proptest::prelude::*;
use provmesh_protocol::dsse::{
    DsseSigner, DsseVerifier, Envelope, FixedEncoding, ParseError, Signature, SignatureMatch,
    VerifyError, WithKeyId, pae,
};
use provmesh_protocol::sigstore::{DEFAULT_MAX_BUNDLE_LEN, ParsedBundle};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

fn vector_path(dir: &str, name: &str) -> String {
    format!("{}/tests/vectors/{dir}/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(vector_path(dir, name)).unwrap()
}

/// Parses a decimal number of at most 256 bits into 32 big-endian bytes.
fn decimal_to_be32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for c in s.bytes() {
        assert!(c.is_ascii_digit(), "not a decimal digit: {c}");
        let mut carry = u32::from(c - b'0');
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        assert_eq!(carry, 0, "number does not fit in 256 bits");
    }
    out
}

/// The spec's P-256 key, checked against both its decimal and hex forms.
fn spec_keys() -> (p256::ecdsa::SigningKey, p256::ecdsa::VerifyingKey) {
    let key: Value = serde_json::from_slice(&read("dsse", "spec-p256-key.json")).unwrap();
    let field = |name: &str| -> [u8; 32] {
        let dec = decimal_to_be32(key[name].as_str().unwrap());
        let hex: [u8; 32] = hex::decode(key[format!("{name}_hex")].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(dec, hex, "decimal and hex forms of {name} differ");
        dec
    };
    let (x, y, d) = (field("x"), field("y"), field("d"));
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let signing = p256::ecdsa::SigningKey::from_slice(&d).unwrap();
    assert_eq!(
        *signing.verifying_key(),
        verifying,
        "d does not match (x, y)"
    );
    (signing, verifying)
}

#[test]
fn vector_files_match_their_pinned_hashes() {
    let sums = String::from_utf8(read("dsse", "SHA256SUMS")).unwrap();
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        let got = hex::encode(Sha256::digest(read("dsse", name)));
        assert_eq!(got, hash, "{name} changed");
        listed.push(name.to_owned());
    }
    let mut present: Vec<String> = std::fs::read_dir(vector_path("dsse", ""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "SHA256SUMS" && n != "SOURCES.md")
        .collect();
    present.sort();
    listed.sort();
    assert_eq!(
        present, listed,
        "every vector file must be pinned in SHA256SUMS"
    );
}

/// protocol.md, "Test Vectors": PAE of "hello world" / "http://example.com/HelloWorld".
#[test]
fn spec_pae_vector() {
    let expected = read("dsse", "spec-hello-world.pae");
    assert_eq!(
        pae("http://example.com/HelloWorld", b"hello world"),
        expected
    );
    let envelope = Envelope::from_json(&read("dsse", "spec-hello-world.envelope.json")).unwrap();
    assert_eq!(envelope.pae(), expected);
}

/// protocol.md, "Test Vectors": the envelope verifies with the spec's key (r || s
/// signature), and deterministic RFC 6979 signing with `d` reproduces it exactly.
#[test]
fn spec_envelope_verifies_and_signing_reproduces_it() {
    let (signing, verifying) = spec_keys();
    let bytes = read("dsse", "spec-hello-world.envelope.json");
    let envelope = Envelope::from_json(&bytes).unwrap();
    assert_eq!(envelope.payload_type(), "http://example.com/HelloWorld");
    assert_eq!(envelope.unverified_payload(), b"hello world");

    let verifier = FixedEncoding(verifying);
    let verified = envelope.verify(&[&verifier]).unwrap();
    assert_eq!(verified.payload(), b"hello world");
    assert_eq!(verified.payload_type(), "http://example.com/HelloWorld");
    assert_eq!(
        verified.first_match(),
        Some(SignatureMatch {
            signature_index: 0,
            verifier_index: 0
        })
    );

    // The DER verifier must not accept the fixed-size encoding.
    assert!(envelope.verify(&[&verifying]).is_err());

    let signer = FixedEncoding(signing);
    let resigned = Envelope::sign(
        "http://example.com/HelloWorld",
        b"hello world".to_vec(),
        &[&signer],
    )
    .unwrap();
    assert_eq!(resigned, envelope);
    // Emitted JSON equals the spec's JSON (as a value: the spec's has spaces).
    let ours: Value = serde_json::from_slice(&resigned.to_json()).unwrap();
    let theirs: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(ours, theirs);
}

/// implementation/signing_spec.py: the same signature with key id `66301bbf`. The key id
/// narrows which keys are tried; it never makes a signature acceptable.
#[test]
fn reference_implementation_envelope_with_keyid() {
    let (_, verifying) = spec_keys();
    let envelope =
        Envelope::from_json(&read("dsse", "reference-impl-hello-world.envelope.json")).unwrap();
    assert_eq!(envelope.signatures()[0].keyid(), Some("66301bbf"));

    let right = WithKeyId {
        key: FixedEncoding(verifying),
        keyid: "66301bbf".into(),
    };
    let wrong = WithKeyId {
        key: FixedEncoding(verifying),
        keyid: "other".into(),
    };
    let unnamed = FixedEncoding(verifying);
    assert!(envelope.verify(&[&right]).is_ok());
    assert!(envelope.verify(&[&unnamed]).is_ok());
    assert!(matches!(
        envelope.verify(&[&wrong]),
        Err(VerifyError::ThresholdNotMet {
            accepted: 0,
            threshold: 1
        })
    ));
    let verified = envelope.verify(&[&wrong, &right]).unwrap();
    assert_eq!(verified.first_match().unwrap().verifier_index, 1);
}

/// Sigstore bundles whose DSSE envelope is verified with the leaf certificate's key.
/// The SPKI files are derived from the certificates (see SOURCES.md); the test checks
/// that each SPKI occurs verbatim inside its certificate's DER.
const SIGSTORE_DSSE_BUNDLES: &[(&str, &str)] = &[
    (
        "a.dsse.staging-rekor-v2.txt.sigstore.json",
        "a.dsse.staging-rekor-v2.txt.sigstore.spki.b64",
    ),
    (
        "reusable-workflow-attestation.sigstore.json",
        "reusable-workflow-attestation.sigstore.spki.b64",
    ),
    (
        "sigstore-js-2.1.0-bundle.json",
        "sigstore-js-2.1.0-bundle.spki.b64",
    ),
];

fn sigstore_key(bundle: &ParsedBundle, spki_file: &str) -> p256::ecdsa::VerifyingKey {
    let spki_b64 = String::from_utf8(read("dsse", spki_file)).unwrap();
    let spki = STANDARD.decode(spki_b64.trim_end()).unwrap();
    let cert = bundle.leaf_certificate_der().unwrap();
    assert!(
        cert.windows(spki.len()).any(|w| w == spki.as_slice()),
        "{spki_file} is not the key of the bundle's certificate"
    );
    p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap()
}

#[test]
fn real_sigstore_dsse_envelopes_verify_with_their_certificate_key() {
    for (bundle_file, spki_file) in SIGSTORE_DSSE_BUNDLES {
        let bytes = read("sigstore", bundle_file);
        let bundle = ParsedBundle::from_json(&bytes, DEFAULT_MAX_BUNDLE_LEN).unwrap();
        let key = sigstore_key(&bundle, spki_file);

        // The envelope through the protobuf types, and through our own JSON parser.
        let from_bundle = bundle.dsse_envelope().unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        let from_json =
            Envelope::from_json(&serde_json::to_vec(&json["dsseEnvelope"]).unwrap()).unwrap();
        assert_eq!(from_bundle, from_json, "{bundle_file}");
        assert_eq!(from_json.payload_type(), "application/vnd.in-toto+json");
        assert_eq!(from_json.signatures().len(), 1);

        let verified = from_json.verify(&[&key]).unwrap();
        assert_eq!(verified.first_match().unwrap().signature_index, 0);
        assert_eq!(verified.payload(), from_json.unverified_payload());

        // Sampled single-byte changes of the payload and the type fail.
        let payload = from_json.unverified_payload();
        for i in (0..payload.len()).step_by(97).chain([payload.len() - 1]) {
            let mut changed = payload.to_vec();
            changed[i] ^= 0x01;
            let tampered = Envelope::from_parts(
                from_json.payload_type(),
                changed,
                from_json.signatures().to_vec(),
            )
            .unwrap();
            assert!(tampered.verify(&[&key]).is_err(), "{bundle_file} byte {i}");
        }
        let tampered = Envelope::from_parts(
            "application/vnd.in-toto+jsoN",
            payload.to_vec(),
            from_json.signatures().to_vec(),
        )
        .unwrap();
        assert!(tampered.verify(&[&key]).is_err());

        // A different certificate's key does not verify it.
        for (other_file, other_spki) in SIGSTORE_DSSE_BUNDLES {
            if other_file != bundle_file {
                let other =
                    ParsedBundle::from_json(&read("sigstore", other_file), DEFAULT_MAX_BUNDLE_LEN)
                        .unwrap();
                let other_key = sigstore_key(&other, other_spki);
                assert!(from_json.verify(&[&other_key]).is_err());
            }
        }
    }
}

#[test]
fn threshold_counts_distinct_keys() {
    let a = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
    let b = ed25519_dalek::SigningKey::from_bytes(&[2u8; 32]);
    let c = p256::ecdsa::SigningKey::from_slice(&[3u8; 32]).unwrap();
    let envelope = Envelope::sign("application/x.test", b"body".to_vec(), &[&a, &b, &c]).unwrap();
    let (va, vb, vc) = (a.verifying_key(), b.verifying_key(), *c.verifying_key());
    let verifiers: [&dyn DsseVerifier; 3] = [&va, &vb, &vc];
    let verified = envelope.verify_threshold(&verifiers, 3).unwrap();
    assert_eq!(
        verified.matches(),
        &[
            SignatureMatch {
                signature_index: 0,
                verifier_index: 0
            },
            SignatureMatch {
                signature_index: 1,
                verifier_index: 1
            },
            SignatureMatch {
                signature_index: 2,
                verifier_index: 2
            },
        ]
    );
    // Two signatures by the same key count once.
    let twice = Envelope::sign("application/x.test", b"body".to_vec(), &[&a, &a]).unwrap();
    assert!(matches!(
        twice.verify_threshold(&verifiers, 2),
        Err(VerifyError::ThresholdNotMet {
            accepted: 1,
            threshold: 2
        })
    ));
    // An unsigned envelope verifies with nothing.
    let unsigned = Envelope::new("application/x.test", b"body".to_vec());
    assert!(unsigned.verify(&verifiers).is_err());
}

#[test]
fn ed25519_signatures_are_64_bytes_and_keyids_are_written() {
    let key = WithKeyId {
        key: ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]),
        keyid: "k1".into(),
    };
    assert_eq!(key.keyid(), Some("k1"));
    let envelope = Envelope::sign("t", b"x".to_vec(), &[&key]).unwrap();
    assert_eq!(envelope.signatures()[0].sig().len(), 64);
    let json: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
    assert_eq!(json["signatures"][0]["keyid"], "k1");
    let verifier = key.key.verifying_key();
    assert!(envelope.verify(&[&verifier]).is_ok());
    // A truncated or extended signature is rejected, not a panic.
    for len in [0, 63, 65] {
        let mut sig = envelope.signatures()[0].sig().to_vec();
        sig.resize(len, 0);
        let bad =
            Envelope::from_parts("t", b"x".to_vec(), vec![Signature::new(None, sig)]).unwrap();
        assert!(bad.verify(&[&verifier]).is_err());
    }
}

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let big = vec![b' '; provmesh_protocol::dsse::MAX_ENVELOPE_JSON_LEN + 1];
    assert!(matches!(
        Envelope::from_json(&big),
        Err(ParseError::TooLarge { .. })
    ));
}

fn ed_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[42u8; 32])
}

fn p256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[42u8; 32]).unwrap()
}

fn arb_envelope() -> impl Strategy<Value = Envelope> {
    (
        ".{0,40}",
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            (
                proptest::option::of("[ -~]{0,20}"),
                proptest::collection::vec(any::<u8>(), 0..100),
            ),
            0..5,
        ),
    )
        .prop_map(|(payload_type, payload, sigs)| {
            let sigs = sigs
                .into_iter()
                .map(|(keyid, sig)| Signature::new(keyid, sig))
                .collect();
            Envelope::from_parts(payload_type, payload, sigs).unwrap()
        })
}

proptest! {
    #[test]
    fn json_round_trips(envelope in arb_envelope()) {
        let json = envelope.to_json();
        let back = Envelope::from_json(&json).unwrap();
        prop_assert_eq!(&back, &envelope);
        prop_assert_eq!(back.to_json(), json);
    }

    #[test]
    fn url_safe_encoding_parses_to_the_same_envelope(envelope in arb_envelope()) {
        let mut value = envelope.to_json_value();
        let to_url = |s: &str| s.replace('+', "-").replace('/', "_");
        let payload = to_url(value["payload"].as_str().unwrap());
        value["payload"] = payload.into();
        for sig in value["signatures"].as_array_mut().unwrap() {
            let s = to_url(sig["sig"].as_str().unwrap());
            sig["sig"] = s.into();
        }
        let back = Envelope::from_json(value.to_string().as_bytes()).unwrap();
        prop_assert_eq!(back, envelope);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::from_json(&bytes);
    }

    #[test]
    fn mutated_envelopes_never_panic(
        index in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = read("dsse", "spec-hello-world.envelope.json");
        let i = index.index(bytes.len());
        bytes[i] = byte;
        if let Ok(envelope) = Envelope::from_json(&bytes) {
            let (_, verifying) = spec_keys();
            let _ = envelope.verify(&[&FixedEncoding(verifying)]);
        }
    }

    /// Any single-byte change to a signed payload fails verification, for Ed25519
    /// and ECDSA P-256 (DER and fixed-size).
    #[test]
    fn single_byte_payload_change_fails_verification(
        payload in proptest::collection::vec(any::<u8>(), 1..200),
        index in any::<proptest::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let ed = ed_key();
        let p = p256_key();
        let fixed = FixedEncoding(p256_key());
        let signers: [&dyn DsseSigner; 3] = [&ed, &p, &fixed];
        let ed_v = ed.verifying_key();
        let p_v = *p.verifying_key();
        let fixed_v = FixedEncoding(p_v);
        let verifiers: [&dyn DsseVerifier; 3] = [&ed_v, &p_v, &fixed_v];

        let envelope = Envelope::sign("application/vnd.in-toto+json", payload.clone(), &signers).unwrap();
        prop_assert!(envelope.verify_threshold(&verifiers, 3).is_ok());

        let i = index.index(payload.len());
        let mut changed = payload;
        changed[i] = changed[i].wrapping_add(delta);
        // Round-trip through JSON so the change is made to a parsed envelope.
        let tampered = Envelope::from_parts(
            envelope.payload_type(),
            changed,
            envelope.signatures().to_vec(),
        ).unwrap();
        let tampered = Envelope::from_json(&tampered.to_json()).unwrap();
        for (k, verifier) in verifiers.iter().enumerate() {
            prop_assert!(tampered.verify(&[*verifier]).is_err(), "verifier {} accepted", k);
        }
    }
}
