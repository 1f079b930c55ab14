//! SPIFFE bundle document tests: go-spiffe testdata, SPIRE CLI bundles and the spec's
//! Appendix A text (tests/vectors/spiffe/, see SOURCES.md there), hand-written edge
//! cases and property tests.

// Helpers outside #[test] functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use provmesh_protocol::spiffe::{
    AddKeyError, BundleError, BundleKey, DerError, KeyDiagnostic, KeyProblem, MAX_BUNDLE_JSON_LEN,
    MAX_BUNDLE_KEYS, TrustBundle,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

macro_rules! vector {
    ($path:literal) => {
        include_bytes!(concat!("vectors/spiffe/", $path)).as_slice()
    };
}

const GO_VALID_1: &[u8] = vector!("go-spiffe/spiffebundle_valid_1.json");
const GO_VALID_2: &[u8] = vector!("go-spiffe/spiffebundle_valid_2.json");
const GO_VALID_WIT: &[u8] = vector!("go-spiffe/spiffebundle_valid_with_wit.json");
const GO_MISSING_KID: &[u8] = vector!("go-spiffe/spiffebundle_missing_kid.json");
const GO_MULTIPLE_X509: &[u8] = vector!("go-spiffe/spiffebundle_multiple_x509.json");
const GO_NO_KEYS: &[u8] = vector!("go-spiffe/spiffebundle_no_keys.json");
const GO_JWKS_VALID_1: &[u8] = vector!("go-spiffe/jwks_valid_1.json");
const GO_JWKS_VALID_2: &[u8] = vector!("go-spiffe/jwks_valid_2.json");
const GO_JWKS_MISSING_KID: &[u8] = vector!("go-spiffe/jwks_missing_kid.json");
const SPIRE_CERT1: &[u8] = vector!("spire/spire_cli_cert1_jwks.json");
const SPIRE_CERT2: &[u8] = vector!("spire/spire_cli_cert2_jwks.json");
const SPIRE_OTHER: &[u8] = vector!("spire/spire_cli_other_domain_jwks.json");
const SPEC_A1: &[u8] = vector!("spec/appendix_a_bundle_1_verbatim.txt");
const SPEC_A2: &[u8] = vector!("spec/appendix_a_bundle_2_verbatim.txt");

/// Every vector that parses, for the generic round-trip checks.
const PARSEABLE: &[&[u8]] = &[
    GO_VALID_1,
    GO_VALID_2,
    GO_VALID_WIT,
    GO_MISSING_KID,
    GO_MULTIPLE_X509,
    GO_JWKS_VALID_1,
    GO_JWKS_VALID_2,
    GO_JWKS_MISSING_KID,
    SPIRE_CERT1,
    SPIRE_CERT2,
    SPIRE_OTHER,
    SPEC_A1,
];

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn kids(b: &TrustBundle) -> Vec<&str> {
    b.jwt_authorities().map(|(kid, _)| kid).collect()
}

fn diag(index: usize, problem: KeyProblem) -> KeyDiagnostic {
    KeyDiagnostic { index, problem }
}

/// The DER of go-spiffe's test CA certificate (subject C=US, O=SPIFFE, URI SAN
/// spiffe://local), shared by the go-spiffe bundle vectors.
const GO_CA_DER_SHA256: &str = "04a424d08eff852d872fba83ed75ac76969e06c13b84f32dd538b65bbe928376";

#[test]
fn go_spiffe_valid_1() {
    let b = TrustBundle::from_json_strict(GO_VALID_1).unwrap();
    let x509: Vec<&[u8]> = b.x509_authorities().collect();
    assert_eq!(x509.len(), 1);
    assert_eq!(sha256_hex(x509[0]), GO_CA_DER_SHA256);
    assert!(x509[0].windows(14).any(|w| w == b"spiffe://local"));
    // go-spiffe: keysCount 1 (one JWT authority).
    assert_eq!(kids(&b), ["C6vs25welZOx6WksNYfbMfiw9l96pMnD"]);
    assert_eq!((b.sequence(), b.refresh_hint()), (None, None));
    assert!(b.diagnostics().is_empty());
    assert!(!b.is_effectively_empty());
}

#[test]
fn go_spiffe_valid_2() {
    // go-spiffe: keysCount 6, refreshHint 60s, sequenceNumber 1.
    let b = TrustBundle::from_json_strict(GO_VALID_2).unwrap();
    assert_eq!(b.x509_authorities().count(), 1);
    assert_eq!(
        kids(&b),
        [
            "IRsID4VIM3T11TsK43Ny1DgCD5UNWhva",
            "qjwWkiMpkHzIxsSrAsLxSZ2WZ8AyMESx",
            "uNhqAaPI7NDn7IHOsa2ac1BF4O5qGxjZ",
            "y3UHKFp0WqPpG7gVr3FKieiEzwH8fTMm",
            "mbrcuIaIUUapdCCmhQon4xJSicDmAVfK",
            "cHPeHMMEtvTeSMBc20DzPPhkF41BN2WJ",
        ]
    );
    assert_eq!(b.sequence(), Some(1));
    assert_eq!(b.refresh_hint(), Some(60));
    let jwk = b.jwt_authority("mbrcuIaIUUapdCCmhQon4xJSicDmAVfK").unwrap();
    assert_eq!(jwk.kty(), Some("EC"));
    assert_eq!(jwk.get_str("crv"), Some("P-256"));
    assert_eq!(
        jwk.get_str("x"),
        Some("HvINid075yH0ssKsbmalal1LDceTuz9dN_RScnmLiaw")
    );
    assert_eq!(
        jwk.get_str("y"),
        Some("VBFCHK_RS4oKamHY3UdGkwbd03cC6fqEm5PI4V1crSg")
    );
    assert!(b.jwt_authority("nope").is_none());
}

#[test]
fn go_spiffe_wit_keys_are_an_unknown_use() {
    // go-spiffe: keysCount 2 (JWT), witKeysCount 2. `wit-svid` is defined by the
    // incubating WIT-SVID spec; to us it is an unknown use, ignored but kept.
    let b = TrustBundle::from_json_strict(GO_VALID_WIT).unwrap();
    assert_eq!(b.x509_authorities().count(), 1);
    assert_eq!(kids(&b).len(), 2);
    assert_eq!(
        b.diagnostics(),
        [
            diag(3, KeyProblem::UnknownUse),
            diag(4, KeyProblem::UnknownUse)
        ]
    );
    assert_eq!(b.keys()[3].jwk().key_use(), Some("wit-svid"));
    assert!(matches!(b.keys()[4], BundleKey::Ignored { .. }));
    // Ignored keys round-trip.
    let again = TrustBundle::from_json(&b.to_json()).unwrap();
    assert_eq!(
        again.keys()[4].jwk().kid(),
        Some("y3UHKFp0WqPpG7gVr3FKieiEzwH8fTMm")
    );
}

#[test]
fn go_spiffe_missing_kid() {
    // go-spiffe rejects this bundle ("error adding authority 1 of JWKS: keyID cannot be
    // empty"). A jwt-svid key without kid breaks JWT-SVID 6.1 and cannot be selected, so
    // consumer parsing ignores that entry and keeps the CA; strict parsing rejects it.
    let b = TrustBundle::from_json(GO_MISSING_KID).unwrap();
    assert_eq!(b.diagnostics(), [diag(1, KeyProblem::MissingKid)]);
    assert_eq!(b.x509_authorities().count(), 1);
    assert_eq!(kids(&b), Vec::<&str>::new());
    assert!(matches!(b.keys()[1], BundleKey::Ignored { .. }));
    assert_eq!(
        TrustBundle::from_json_strict(GO_MISSING_KID),
        Err(BundleError::NonConforming(diag(1, KeyProblem::MissingKid)))
    );
}

#[test]
fn go_spiffe_no_keys() {
    // go-spiffe: "no authorities found". SPIFFE bundle 4.1.3: "keys MUST be present".
    assert_eq!(
        TrustBundle::from_json(GO_NO_KEYS),
        Err(BundleError::MissingKeys)
    );
}

#[test]
fn go_spiffe_multiple_x509() {
    // go-spiffe: "expected a single certificate in x509-svid entry 0; got 2". X509-SVID
    // 6.2 has consumers use the first certificate; strict parsing rejects it (6.1).
    let b = TrustBundle::from_json(GO_MULTIPLE_X509).unwrap();
    let x509: Vec<&[u8]> = b.x509_authorities().collect();
    assert_eq!(x509.len(), 1);
    assert_eq!(sha256_hex(x509[0]), GO_CA_DER_SHA256);
    assert_eq!(kids(&b), ["C6vs25welZOx6WksNYfbMfiw9l96pMnD"]);
    assert_eq!(
        b.diagnostics(),
        [diag(0, KeyProblem::ExtraCertificates { count: 2 })]
    );
    assert_eq!(
        TrustBundle::from_json_strict(GO_MULTIPLE_X509),
        Err(BundleError::NonConforming(diag(
            0,
            KeyProblem::ExtraCertificates { count: 2 }
        )))
    );
}

#[test]
fn go_spiffe_plain_jwks_have_no_use() {
    // go-spiffe's jwtbundle files are plain JWK Sets without `use`: as SPIFFE bundles,
    // every entry is ignored (4.2.2).
    for (doc, n) in [
        (GO_JWKS_VALID_1, 1),
        (GO_JWKS_VALID_2, 2),
        (GO_JWKS_MISSING_KID, 2),
    ] {
        let b = TrustBundle::from_json(doc).unwrap();
        assert_eq!(b.keys().len(), n);
        assert!(
            b.diagnostics()
                .iter()
                .all(|d| d.problem == KeyProblem::MissingUse)
        );
        assert!(b.is_effectively_empty());
        assert_eq!(
            TrustBundle::from_json_strict(doc),
            Err(BundleError::NonConforming(diag(0, KeyProblem::MissingUse)))
        );
    }
}

#[test]
fn spire_cli_bundles() {
    // `spire-server bundle show -format spiffe` output from SPIRE's CLI tests.
    let b = TrustBundle::from_json_strict(SPIRE_CERT1).unwrap();
    assert_eq!(b.sequence(), Some(42));
    assert_eq!(b.refresh_hint(), Some(60));
    let der: Vec<&[u8]> = b.x509_authorities().collect();
    assert_eq!(der.len(), 1);
    assert!(der[0].windows(21).any(|w| w == b"spiffe://domain1.test"));
    let jwk = b.keys()[0].jwk();
    assert_eq!(
        jwk.get_str("x"),
        Some("fK-wKTnKL7KFLM27lqq5DC-bxrVaH6rDV-IcCSEOeL4")
    );

    let b2 = TrustBundle::from_json_strict(SPIRE_CERT2).unwrap();
    assert_eq!((b2.sequence(), b2.refresh_hint()), (None, None));
    let der2: Vec<&[u8]> = b2.x509_authorities().collect();
    assert!(der2[0].windows(21).any(|w| w == b"spiffe://domain2.test"));

    let other = TrustBundle::from_json_strict(SPIRE_OTHER).unwrap();
    assert_eq!(other.x509_authorities().collect::<Vec<_>>(), der);
    assert_eq!(kids(&other), ["KID"]);
}

#[test]
fn spec_appendix_a() {
    // Bundle #1 is valid JSON with placeholder text for the certificate, which is not
    // base64: the entry is ignored and the bundle is effectively empty.
    let b = TrustBundle::from_json(SPEC_A1).unwrap();
    assert_eq!(b.sequence(), Some(1));
    assert_eq!(b.refresh_hint(), Some(2_419_200));
    assert_eq!(b.diagnostics(), [diag(0, KeyProblem::CertificateNotBase64)]);
    assert!(b.is_effectively_empty());
    assert_eq!(b.keys()[0].jwk().get_str("e"), Some("AQAB"));
    // Bundle #2 as printed uses typographic quotes around "RSA": not JSON.
    assert!(matches!(
        TrustBundle::from_json(SPEC_A2),
        Err(BundleError::InvalidJson(_))
    ));
}

#[test]
fn vectors_round_trip() {
    for doc in PARSEABLE {
        let b = TrustBundle::from_json(doc).unwrap();
        let out = b.to_json();
        assert_eq!(TrustBundle::from_json(&out).unwrap(), b);
        // Every member of the original survives, byte for byte after JSON parsing.
        let original: Value = serde_json::from_slice(doc).unwrap();
        let written: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(original, written);
        // serde agrees with to_json.
        assert_eq!(serde_json::to_value(&b).unwrap(), written);
        let via_serde: TrustBundle = serde_json::from_slice(doc).unwrap();
        assert_eq!(via_serde, b);
    }
}

#[test]
fn x5c_der_matches_vector_text() {
    // The DER handed out is exactly the base64-decoded first x5c value.
    for doc in [GO_VALID_1, SPIRE_CERT1, SPIRE_CERT2] {
        let v: Value = serde_json::from_slice(doc).unwrap();
        let b64 = v["keys"][0]["x5c"][0].as_str().unwrap();
        let b = TrustBundle::from_json(doc).unwrap();
        assert_eq!(
            b.x509_authorities().next().unwrap(),
            STANDARD.decode(b64).unwrap()
        );
    }
}

// ---- hand-written edge cases ----

fn parse(v: Value) -> Result<TrustBundle, BundleError> {
    TrustBundle::from_json(v.to_string().as_bytes())
}

fn ec_jwt(kid: &str) -> Value {
    json!({"use": "jwt-svid", "kty": "EC", "kid": kid, "crv": "P-256", "x": "AA", "y": "AA"})
}

fn spire_cert1_x5c() -> String {
    let v: Value = serde_json::from_slice(SPIRE_CERT1).unwrap();
    v["keys"][0]["x5c"][0].as_str().unwrap().to_owned()
}

fn ec_x509(x5c: Value) -> Value {
    json!({"use": "x509-svid", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "x5c": x5c})
}

#[test]
fn document_level_errors() {
    assert!(matches!(
        TrustBundle::from_json(b""),
        Err(BundleError::InvalidJson(_))
    ));
    assert!(matches!(
        TrustBundle::from_json(b"{\"keys\":[]"),
        Err(BundleError::InvalidJson(_))
    ));
    assert!(matches!(
        TrustBundle::from_json(b"{\"keys\":[]} x"),
        Err(BundleError::InvalidJson(_))
    ));
    assert_eq!(parse(json!([])), Err(BundleError::NotAnObject));
    assert_eq!(parse(json!({"keys": {}})), Err(BundleError::KeysNotArray));
    assert_eq!(parse(json!({"keys": null})), Err(BundleError::KeysNotArray));
    assert_eq!(
        parse(json!({"keys": [1]})),
        Err(BundleError::KeyNotObject { index: 0 })
    );
    for bad in [
        json!(-1),
        json!(1.5),
        json!("1"),
        json!(null),
        json!(18_446_744_073_709_551_616.0),
    ] {
        assert_eq!(
            parse(json!({"keys": [], "spiffe_sequence": bad})),
            Err(BundleError::InvalidSequence)
        );
        assert_eq!(
            parse(json!({"keys": [], "spiffe_refresh_hint": bad})),
            Err(BundleError::InvalidRefreshHint)
        );
    }
    let b =
        parse(json!({"keys": [], "spiffe_sequence": u64::MAX, "spiffe_refresh_hint": 0})).unwrap();
    assert_eq!((b.sequence(), b.refresh_hint()), (Some(u64::MAX), Some(0)));
    // 2^64 does not fit.
    assert_eq!(
        TrustBundle::from_json(b"{\"keys\":[],\"spiffe_sequence\":18446744073709551616}"),
        Err(BundleError::InvalidSequence)
    );
}

#[test]
fn duplicate_member_names_are_rejected() {
    // SPIFFE bundle 6.3: duplicate names make behaviour "unpredictable".
    for doc in [
        r#"{"keys":[],"keys":[]}"#,
        r#"{"keys":[],"spiffe_sequence":1,"spiffe_sequence":2}"#,
        r#"{"keys":[{"use":"jwt-svid","use":"x509-svid","kty":"EC"}]}"#,
        r#"{"keys":[],"x":{"a":1,"a":1}}"#,
    ] {
        match TrustBundle::from_json(doc.as_bytes()) {
            Err(BundleError::InvalidJson(msg)) => assert!(msg.contains("duplicate"), "{msg}"),
            other => panic!("{doc}: {other:?}"),
        }
        assert!(serde_json::from_str::<TrustBundle>(doc).is_err());
    }
}

#[test]
fn size_and_count_limits() {
    let mut big = b"{\"keys\":[],\"pad\":\"".to_vec();
    big.resize(MAX_BUNDLE_JSON_LEN + 1 - 2, b'a');
    big.extend_from_slice(b"\"}");
    assert_eq!(big.len(), MAX_BUNDLE_JSON_LEN + 1);
    assert_eq!(
        TrustBundle::from_json(&big),
        Err(BundleError::TooLarge {
            len: MAX_BUNDLE_JSON_LEN + 1
        })
    );
    let many = json!({"keys": vec![json!({}); MAX_BUNDLE_KEYS + 1]});
    assert_eq!(
        parse(many),
        Err(BundleError::TooManyKeys {
            count: MAX_BUNDLE_KEYS + 1
        })
    );
    let limit = json!({"keys": vec![json!({}); MAX_BUNDLE_KEYS]});
    assert_eq!(parse(limit).unwrap().keys().len(), MAX_BUNDLE_KEYS);
    // Deep nesting is refused by the JSON parser, not by a stack overflow.
    let deep = format!(
        "{{\"keys\":[],\"x\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(matches!(
        TrustBundle::from_json(deep.as_bytes()),
        Err(BundleError::InvalidJson(_))
    ));
}

#[test]
fn per_key_rules() {
    let cert = spire_cert1_x5c();
    let cases: Vec<(Value, Option<KeyProblem>)> = vec![
        (json!({"kty": "EC"}), Some(KeyProblem::MissingUse)),
        (
            json!({"use": 1, "kty": "EC"}),
            Some(KeyProblem::UseNotString),
        ),
        (
            json!({"use": "X509-SVID", "kty": "EC"}),
            Some(KeyProblem::UnknownUse),
        ),
        (
            json!({"use": "sig", "kty": "EC"}),
            Some(KeyProblem::UnknownUse),
        ),
        (
            json!({"use": "jwt-svid", "kid": "k"}),
            Some(KeyProblem::MissingKty),
        ),
        (
            json!({"use": "jwt-svid", "kty": "oct", "kid": "k", "k": "AA"}),
            Some(KeyProblem::UnsupportedKty),
        ),
        (
            json!({"use": "jwt-svid", "kty": "EC", "kid": "k", "crv": "P-256", "x": "AA"}),
            Some(KeyProblem::MissingKeyParameter("y")),
        ),
        (
            json!({"use": "jwt-svid", "kty": "RSA", "kid": "k", "n": "AA", "e": ""}),
            Some(KeyProblem::MissingKeyParameter("e")),
        ),
        (
            json!({"use": "jwt-svid", "kty": "OKP", "kid": "k", "crv": "Ed25519", "x": "AA"}),
            None,
        ),
        (
            json!({"use": "jwt-svid", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
            Some(KeyProblem::MissingKid),
        ),
        (
            json!({"use": "jwt-svid", "kty": "EC", "kid": "", "crv": "P-256", "x": "AA", "y": "AA"}),
            Some(KeyProblem::MissingKid),
        ),
        (
            json!({"use": "jwt-svid", "kty": "EC", "kid": 5, "crv": "P-256", "x": "AA", "y": "AA"}),
            Some(KeyProblem::MissingKid),
        ),
        (
            json!({"use": "x509-svid", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
            Some(KeyProblem::MissingCertificate),
        ),
        (ec_x509(json!([])), Some(KeyProblem::MissingCertificate)),
        (
            ec_x509(json!(cert.clone())),
            Some(KeyProblem::CertificateChainNotArray),
        ),
        (ec_x509(json!([5])), Some(KeyProblem::CertificateNotBase64)),
        (
            ec_x509(json!([cert.replace('+', "-").replace('/', "_")])),
            Some(KeyProblem::CertificateNotBase64),
        ),
        (
            ec_x509(json!([cert.trim_end_matches('=')])),
            Some(KeyProblem::CertificateNotBase64),
        ),
        (
            ec_x509(json!([format!(" {cert}")])),
            Some(KeyProblem::CertificateNotBase64),
        ),
        (
            ec_x509(json!([STANDARD.encode(b"not a certificate")])),
            Some(KeyProblem::CertificateNotDer(DerError::UnexpectedTag {
                element: 0,
                found: b'n',
                expected: 0x30,
            })),
        ),
        (
            ec_x509(json!([STANDARD.encode([0x30, 0x00])])),
            Some(KeyProblem::CertificateNotDer(DerError::WrongElementCount {
                count: 0,
            })),
        ),
        (ec_x509(json!([cert.clone()])), None),
    ];
    for (key, want) in cases {
        let b = parse(json!({"keys": [key.clone()]})).unwrap();
        match want {
            Some(problem) => {
                assert_eq!(b.diagnostics(), [diag(0, problem.clone())], "{key}");
                assert!(
                    matches!(&b.keys()[0], BundleKey::Ignored { reason, .. } if *reason == problem)
                );
                assert!(b.is_effectively_empty());
                assert_eq!(
                    TrustBundle::from_json_strict(json!({"keys": [key]}).to_string().as_bytes())
                        .is_err(),
                    problem.is_publisher_violation()
                );
            }
            None => {
                assert!(b.diagnostics().is_empty(), "{key}: {:?}", b.diagnostics());
                assert!(!b.is_effectively_empty());
            }
        }
    }
    // A kid on an x509-svid entry breaks X509-SVID 6.1 but the entry stays usable.
    let mut key = ec_x509(json!([cert]));
    key["kid"] = json!("k");
    let b = parse(json!({"keys": [key]})).unwrap();
    assert_eq!(b.x509_authorities().count(), 1);
    assert_eq!(b.diagnostics(), [diag(0, KeyProblem::KidOnX509Authority)]);
}

#[test]
fn duplicate_kids_are_rejected() {
    assert_eq!(
        parse(json!({"keys": [ec_jwt("a"), ec_jwt("b"), ec_jwt("a")]})),
        Err(BundleError::DuplicateKid {
            first_index: 0,
            index: 2
        })
    );
    // An ignored entry does not take the kid.
    let mut ignored = ec_jwt("a");
    ignored["kty"] = json!("oct");
    let b = parse(json!({"keys": [ignored, ec_jwt("a")]})).unwrap();
    assert_eq!(kids(&b), ["a"]);
    // The same kid under another use is not a JWT-SVID key.
    let mut wit = ec_jwt("a");
    wit["use"] = json!("wit-svid");
    assert!(parse(json!({"keys": [wit, ec_jwt("a")]})).is_ok());
}

#[test]
fn empty_keys_revoke() {
    // 4.1.3: an empty key array revokes; it is conforming.
    let b = TrustBundle::from_json_strict(br#"{"keys":[],"spiffe_sequence":7}"#).unwrap();
    assert!(b.is_effectively_empty());
    assert_eq!(b.sequence(), Some(7));
}

#[test]
fn unknown_members_round_trip() {
    let doc = json!({
        "keys": [{"use": "jwt-svid", "kty": "EC", "kid": "a", "crv": "P-256", "x": "AA", "y": "AA", "alg": "ES256", "ext": {"n": [1, 2]}}],
        "spiffe_refresh_hint": 300,
        "vendor": {"nested": [true, null, 1.5]},
    });
    let b = parse(doc.clone()).unwrap();
    assert_eq!(b.other_members().get("vendor"), doc.get("vendor"));
    assert_eq!(b.jwt_authority("a").unwrap().get_str("alg"), Some("ES256"));
    let back: Value = serde_json::from_slice(&b.to_json()).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn building_bundles() {
    let der = STANDARD.decode(spire_cert1_x5c()).unwrap();
    let ec = |x: &str| -> Map<String, Value> {
        json!({"kty": "EC", "crv": "P-256", "x": x, "y": "AA"})
            .as_object()
            .unwrap()
            .clone()
    };
    let mut b = TrustBundle::new();
    assert!(b.is_effectively_empty());
    b.set_sequence(Some(3));
    b.set_refresh_hint(Some(300));
    b.add_x509_authority(&der, ec("fK")).unwrap();
    b.add_jwt_authority("kid-1", ec("AB")).unwrap();
    assert_eq!(
        b.add_jwt_authority("kid-1", ec("AC")),
        Err(AddKeyError::DuplicateKid)
    );
    assert_eq!(
        b.add_x509_authority(b"junk", ec("AA")),
        Err(AddKeyError::Rejected(KeyProblem::CertificateNotDer(
            DerError::UnexpectedTag {
                element: 0,
                found: b'j',
                expected: 0x30
            }
        )))
    );
    let mut with_kid = ec("AA");
    with_kid.insert("kid".into(), json!("x"));
    assert_eq!(
        b.add_x509_authority(&der, with_kid),
        Err(AddKeyError::Rejected(KeyProblem::KidOnX509Authority))
    );
    let mut rsa_missing = Map::new();
    rsa_missing.insert("kty".into(), json!("RSA"));
    assert_eq!(
        b.add_jwt_authority("kid-2", rsa_missing),
        Err(AddKeyError::Rejected(KeyProblem::MissingKeyParameter("n")))
    );
    assert_eq!(b.keys().len(), 2);

    let parsed = TrustBundle::from_json_strict(&b.to_json()).unwrap();
    assert_eq!(parsed, b);
    assert_eq!(parsed.x509_authorities().next().unwrap(), der.as_slice());
    assert_eq!(kids(&parsed), ["kid-1"]);
    let v: Value = serde_json::from_slice(&b.to_json()).unwrap();
    assert_eq!(v["keys"][0]["use"], "x509-svid");
    assert_eq!(v["keys"][0]["x5c"][0], spire_cert1_x5c());
    assert_eq!(v["keys"][1]["kid"], "kid-1");
    assert_eq!(v["spiffe_sequence"], 3);
    assert_eq!(v["spiffe_refresh_hint"], 300);

    let mut full = TrustBundle::new();
    for i in 0..MAX_BUNDLE_KEYS {
        full.add_jwt_authority(&format!("k{i}"), ec("AA")).unwrap();
    }
    assert_eq!(
        full.add_jwt_authority("one-more", ec("AA")),
        Err(AddKeyError::TooManyKeys)
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(b) = TrustBundle::from_json(&bytes) {
            prop_assert_eq!(TrustBundle::from_json(&b.to_json()).unwrap(), b);
        }
    }

    #[test]
    fn mutated_vectors_never_panic(
        which in 0..PARSEABLE.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut doc = PARSEABLE[which].to_vec();
        for (at, byte) in edits {
            let i = at.index(doc.len());
            doc[i] = byte;
        }
        if let Ok(b) = TrustBundle::from_json(&doc) {
            prop_assert_eq!(TrustBundle::from_json(&b.to_json()).unwrap(), b.clone());
            for der in b.x509_authorities() {
                prop_assert!(provmesh_protocol::spiffe::check_certificate_shape(der).is_ok());
            }
        }
    }

    #[test]
    fn der_check_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = provmesh_protocol::spiffe::check_certificate_shape(&bytes);
    }

    #[test]
    fn sequence_and_hint_round_trip(seq in any::<Option<u64>>(), hint in any::<Option<u64>>()) {
        let mut b = TrustBundle::new();
        b.set_sequence(seq);
        b.set_refresh_hint(hint);
        let parsed = TrustBundle::from_json(&b.to_json()).unwrap();
        prop_assert_eq!(parsed.sequence(), seq);
        prop_assert_eq!(parsed.refresh_hint(), hint);
    }
}
