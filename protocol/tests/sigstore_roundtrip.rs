//! Sigstore bundles and TrustedRoots against real documents (`tests/vectors/sigstore/`,
//! sources in its SOURCES.md): media types and versions are recognised, and every
//! valid document round-trips exactly (parse → serialize → equal as a JSON value).
//! Property tests: hostile and mutated bytes never panic.
//!
//! Every vector file is pinned by `SHA256SUMS`, so changing any byte fails a test even
//! where the change would not alter the parsed value.

// Helpers outside `#[test]` functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use provmesh_protocol::sigstore::{
    BundleError, BundleVersion, DEFAULT_MAX_BUNDLE_LEN, DEFAULT_MAX_TRUSTED_ROOT_LEN, ParsedBundle,
    TrustedRootError, TrustedRootVersion, bundle_to_json, parse_trusted_root, trusted_root_to_json,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

fn vector_path(name: &str) -> String {
    format!(
        "{}/tests/vectors/sigstore/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(vector_path(name)).unwrap()
}

/// Valid bundles and the version their media type announces.
const BUNDLES: &[(&str, BundleVersion)] = &[
    (
        "a.dsse.staging-rekor-v2.txt.sigstore.json",
        BundleVersion::V0_3,
    ),
    ("bundle_v3.txt.sigstore", BundleVersion::V0_3),
    ("staging-rekor-v2.txt.sigstore.json", BundleVersion::V0_3),
    ("tsa.bundle.txt.sigstore", BundleVersion::V0_3),
    (
        "reusable-workflow-attestation.sigstore.json",
        BundleVersion::V0_3,
    ),
    ("sigstore-js-2.1.0-bundle.json", BundleVersion::V0_3),
    ("bundle_v3_github.whl.sigstore", BundleVersion::V0_2),
    ("bundle.txt.sigstore", BundleVersion::V0_1),
];

/// Valid trusted roots and their version.
const TRUSTED_ROOTS: &[(&str, TrustedRootVersion)] = &[
    ("public-good.trusted_root.json", TrustedRootVersion::V0_1),
    ("staging.trusted_root.json", TrustedRootVersion::V0_1),
    ("trustedroot.v1.json", TrustedRootVersion::V0_1),
    (
        "trustedroot.v1.local_tlog_ed25519_rekor-tiles.json",
        TrustedRootVersion::V0_1,
    ),
    ("gh-cli.trusted_root.json", TrustedRootVersion::V0_1),
];

#[test]
fn vector_files_match_their_pinned_hashes() {
    let sums = String::from_utf8(read("SHA256SUMS")).unwrap();
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(read(name))),
            hash,
            "{name} changed"
        );
        listed.push(name.to_owned());
    }
    let mut present: Vec<String> = std::fs::read_dir(vector_path(""))
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

#[test]
fn real_bundles_round_trip_exactly() {
    for (name, version) in BUNDLES {
        let bytes = read(name);
        let parsed = ParsedBundle::from_json(&bytes, DEFAULT_MAX_BUNDLE_LEN)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.version, *version, "{name}");
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let ours: Value = serde_json::from_slice(&parsed.to_json().unwrap()).unwrap();
        assert_eq!(ours, original, "{name} does not round-trip");
        // Serializing a second time is stable.
        let again =
            ParsedBundle::from_json(&bundle_to_json(&parsed.bundle).unwrap(), usize::MAX).unwrap();
        assert_eq!(again, parsed, "{name}");
    }
}

#[test]
fn real_trusted_roots_round_trip_exactly() {
    for (name, version) in TRUSTED_ROOTS {
        let bytes = read(name);
        let (root, got) = parse_trusted_root(&bytes, DEFAULT_MAX_TRUSTED_ROOT_LEN)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, *version, "{name}");
        assert!(
            !root.tlogs.is_empty() && !root.certificate_authorities.is_empty(),
            "{name}"
        );
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let ours: Value = serde_json::from_slice(&trusted_root_to_json(&root).unwrap()).unwrap();
        // Some files write `2021-03-07T03:20:29.000Z`; the protobuf JSON mapping emits
        // the same google.protobuf.Timestamp as `2021-03-07T03:20:29Z`. Those compare
        // equal after that one rewrite; every other file compares exactly.
        if bytes.windows(5).any(|w| w == b".000Z") {
            assert_eq!(
                canonical_timestamps(ours),
                canonical_timestamps(original),
                "{name} does not round-trip"
            );
        } else {
            assert_eq!(ours, original, "{name} does not round-trip");
        }
    }
}

/// Rewrites RFC 3339 timestamps under `validFor` with a zero fraction (`.000Z`) to the
/// protobuf JSON mapping's canonical form (`Z`): the same instant.
fn canonical_timestamps(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if k == "validFor" {
                        match v {
                            Value::Object(range) => Value::Object(
                                range
                                    .into_iter()
                                    .map(|(k, v)| match v {
                                        Value::String(s) => {
                                            (k, Value::String(s.replace(".000Z", "Z")))
                                        }
                                        other => (k, other),
                                    })
                                    .collect(),
                            ),
                            other => other,
                        }
                    } else {
                        canonical_timestamps(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical_timestamps).collect()),
        other => other,
    }
}

#[test]
fn leaf_certificate_is_found_in_v01_chains_and_v03_certificates() {
    for (name, _) in BUNDLES {
        let bytes = read(name);
        let parsed = ParsedBundle::from_json(&bytes, DEFAULT_MAX_BUNDLE_LEN).unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        let material = &json["verificationMaterial"];
        let raw = if material["certificate"].is_object() {
            &material["certificate"]["rawBytes"]
        } else {
            &material["x509CertificateChain"]["certificates"][0]["rawBytes"]
        };
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(raw.as_str().unwrap())
            .unwrap();
        assert_eq!(
            parsed.leaf_certificate_der(),
            Some(der.as_slice()),
            "{name}"
        );
    }
}

#[test]
fn message_signature_bundles_have_no_dsse_envelope() {
    let parsed =
        ParsedBundle::from_json(&read("bundle_v3.txt.sigstore"), DEFAULT_MAX_BUNDLE_LEN).unwrap();
    assert!(parsed.dsse_envelope().is_err());
}

#[test]
fn wrong_media_types_are_rejected() {
    assert!(matches!(
        ParsedBundle::from_json(&read("bundle_invalid_version.txt.sigstore"), DEFAULT_MAX_BUNDLE_LEN),
        Err(BundleError::UnsupportedMediaType(m)) if m == "this is completely wrong"
    ));
    assert!(matches!(
        parse_trusted_root(&read("trustedroot.badtype.json"), DEFAULT_MAX_TRUSTED_ROOT_LEN),
        Err(TrustedRootError::UnsupportedMediaType(m)) if m == "bad-media-type"
    ));
    // A trusted root is not a bundle, and the other way round.
    assert!(
        ParsedBundle::from_json(
            &read("public-good.trusted_root.json"),
            DEFAULT_MAX_BUNDLE_LEN
        )
        .is_err()
    );
    assert!(
        parse_trusted_root(
            &read("bundle_v3.txt.sigstore"),
            DEFAULT_MAX_TRUSTED_ROOT_LEN
        )
        .is_err()
    );
}

#[test]
fn size_bounds_apply_before_parsing() {
    let bytes = read("bundle_v3.txt.sigstore");
    assert!(matches!(
        ParsedBundle::from_json(&bytes, bytes.len() - 1),
        Err(BundleError::TooLarge { .. })
    ));
    assert!(ParsedBundle::from_json(&bytes, bytes.len()).is_ok());
    let root = read("public-good.trusted_root.json");
    assert!(matches!(
        parse_trusted_root(&root, 100),
        Err(TrustedRootError::TooLarge { .. })
    ));
}

#[test]
fn structural_requirements() {
    let original: Value = serde_json::from_slice(&read("bundle_v3.txt.sigstore")).unwrap();

    let mut no_material = original.clone();
    no_material
        .as_object_mut()
        .unwrap()
        .remove("verificationMaterial");
    assert!(matches!(
        ParsedBundle::from_json(no_material.to_string().as_bytes(), usize::MAX),
        Err(BundleError::MissingVerificationMaterial)
    ));

    let mut no_content = original.clone();
    no_content
        .as_object_mut()
        .unwrap()
        .remove("messageSignature");
    assert!(matches!(
        ParsedBundle::from_json(no_content.to_string().as_bytes(), usize::MAX),
        Err(BundleError::MissingContent)
    ));

    // Both members of the content oneof.
    let dsse: Value =
        serde_json::from_slice(&read("a.dsse.staging-rekor-v2.txt.sigstore.json")).unwrap();
    let mut both = original.clone();
    both["dsseEnvelope"] = dsse["dsseEnvelope"].clone();
    assert!(matches!(
        ParsedBundle::from_json(both.to_string().as_bytes(), usize::MAX),
        Err(BundleError::Json(_))
    ));

    // Unknown fields are rejected by the protobuf JSON mapping.
    let mut unknown = original.clone();
    unknown["surprise"] = Value::Bool(true);
    assert!(matches!(
        ParsedBundle::from_json(unknown.to_string().as_bytes(), usize::MAX),
        Err(BundleError::Json(_))
    ));

    // The older spelling of the v0.3 media type is read as v0.3.
    let mut old = original;
    old["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.3".into();
    assert_eq!(
        ParsedBundle::from_json(old.to_string().as_bytes(), usize::MAX)
            .unwrap()
            .version,
        BundleVersion::V0_3
    );
}

fn all_vectors() -> Vec<Vec<u8>> {
    BUNDLES
        .iter()
        .map(|(n, _)| n)
        .chain(TRUSTED_ROOTS.iter().map(|(n, _)| n))
        .map(|n| read(n))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ParsedBundle::from_json(&bytes, DEFAULT_MAX_BUNDLE_LEN);
        let _ = parse_trusted_root(&bytes, DEFAULT_MAX_TRUSTED_ROOT_LEN);
    }

    /// One to four bytes of a real document replaced: parsing never panics, and what
    /// parses serializes again.
    #[test]
    fn mutated_documents_never_panic(
        which in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let vectors = all_vectors();
        let mut bytes = which.get(&vectors).clone();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(parsed) = ParsedBundle::from_json(&bytes, DEFAULT_MAX_BUNDLE_LEN) {
            let _ = parsed.to_json();
            let _ = parsed.dsse_envelope();
        }
        if let Ok((root, _)) = parse_trusted_root(&bytes, DEFAULT_MAX_TRUSTED_ROOT_LEN) {
            let _ = trusted_root_to_json(&root);
        }
    }

    /// Structure-aware hostile input: JSON values in the places a bundle has fields.
    #[test]
    fn hostile_field_values_never_panic(
        field in prop_oneof![
            Just("mediaType"), Just("verificationMaterial"), Just("messageSignature"),
            Just("dsseEnvelope"),
        ],
        value in prop_oneof![
            Just(Value::Null), any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from), any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
            Just(serde_json::json!({"certificate": {"rawBytes": "!!"}})),
            Just(serde_json::json!({"tlogEntries": [{"logIndex": "-1", "integratedTime": "99999999999999999999"}]})),
            Just(serde_json::json!({"payload": "AA", "payloadType": 7, "signatures": [{}]})),
            Just(serde_json::json!([[[[[[[[]]]]]]]])),
        ],
    ) {
        let mut doc: Value = serde_json::from_slice(&read("bundle_v3.txt.sigstore")).unwrap();
        doc[field] = value;
        let _ = ParsedBundle::from_json(doc.to_string().as_bytes(), DEFAULT_MAX_BUNDLE_LEN);
    }
}
