//! The embedded dev SPIFFE CA: its files, the X.509-SVID profile of its root and leaves
//! (checked with x509-parser and aws-lc-rs, not with rcgen), its JWT-SVIDs, its bundle,
//! and JWT-SVID validation with every refusal path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as sig, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use provmesh_node::identity::dev_ca::{CA_CERT_FILE, CA_KEY_FILE, JWT_KEY_FILE};
use provmesh_node::identity::{
    DevCa, DevCaConfig, IssueJwtError, IssueX509Error, JwtSvidError, OpenError, SubjectKey,
    SvidRequestError, verify_jwt_svid,
};
use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::X509Certificate;

/// A fixed "now" (2025-06-15), so validity windows are exact.
const NOW: u64 = 1_750_000_000;
const HOUR: Duration = Duration::from_secs(3600);

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn td(name: &str) -> TrustDomain {
    TrustDomain::parse(name).unwrap()
}

fn id(s: &str) -> SpiffeId {
    SpiffeId::parse(s).unwrap()
}

fn open(dir: &Path, domain: &str, now: u64) -> Result<DevCa, OpenError> {
    DevCa::open(dir, &td(domain), DevCaConfig::default(), at(now))
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    assert!(rest.is_empty());
    cert
}

/// Whether `cert`'s signature verifies (ECDSA P-256 SHA-256) under the P-256 point.
fn signed_by(cert: &X509Certificate<'_>, point: &[u8]) -> bool {
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .is_ok()
}

fn ski<'a>(cert: &'a X509Certificate<'_>) -> &'a [u8] {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
        .expect("a subjectKeyIdentifier")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over arbitrary header and claims JSON, ES256-signed with `pkcs8`.
fn sign_es256(pkcs8: &[u8], header: &Value, claims: &Value) -> String {
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).unwrap();
    sign_with(header, claims, |m| {
        key.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()
    })
}

fn sign_with(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The JWK members of an EC public key given as an uncompressed point.
fn ec_jwk(crv: &str, point: &[u8]) -> Map<String, Value> {
    let coords = &point[1..];
    let (x, y) = coords.split_at(coords.len() / 2);
    let Value::Object(map) = json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)}) else {
        unreachable!()
    };
    map
}

#[test]
fn first_start_creates_the_ca_and_later_starts_reload_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    for file in [CA_KEY_FILE, JWT_KEY_FILE, CA_CERT_FILE] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    #[cfg(unix)]
    for file in [CA_KEY_FILE, JWT_KEY_FILE] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    assert_eq!(ca.ca_validity(), (at(NOW - 60), at(NOW + 365 * 24 * 3600)));

    let again = open(dir.path(), "a.test", NOW + 1000).unwrap();
    assert_eq!(again.ca_certificate_der(), ca.ca_certificate_der());
    assert_eq!(again.jwt_key_id(), ca.jwt_key_id());
    assert_eq!(again.ca_validity(), ca.ca_validity());
    assert_eq!(again.trust_bundle().to_json(), ca.trust_bundle().to_json());
    // The reloaded CA signs with the same root key.
    let leaf = again
        .issue_x509_svid(
            &id("spiffe://a.test/w"),
            SubjectKey::Generate,
            HOUR,
            at(NOW + 1000),
        )
        .unwrap();
    let root = parse(ca.ca_certificate_der());
    assert!(signed_by(
        &parse(&leaf.chain_der[0]),
        &root.public_key().subject_public_key.data
    ));
}

#[test]
fn the_root_is_an_x509_svid_signing_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let pem = std::fs::read_to_string(dir.path().join(CA_CERT_FILE)).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    assert_eq!(block.contents, ca.ca_certificate_der());

    let root = parse(ca.ca_certificate_der());
    assert_eq!(root.version(), x509_parser::x509::X509Version::V3);
    assert_eq!(root.subject().as_raw(), root.issuer().as_raw());
    assert!(signed_by(&root, &root.public_key().subject_public_key.data));
    let bc = root.basic_constraints().unwrap().unwrap();
    assert!(bc.critical);
    assert!(bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    // X509-SVID §4.3 and appendix A: keyCertSign (+ cRLSign), no digitalSignature, critical.
    let ku = root.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
    assert!(!ku.value.digital_signature());
    // X509-SVID §3.2: the signing certificate is an SVID of the trust domain, no path.
    let san = root.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI("spiffe://a.test")]
    );
    assert!(!ski(&root).is_empty());
    assert_eq!(root.validity().not_before.timestamp(), (NOW - 60) as i64);
    assert_eq!(
        root.validity().not_after.timestamp(),
        (NOW + 365 * 24 * 3600) as i64
    );
}

#[test]
fn files_that_do_not_belong_together_are_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    open(a.path(), "a.test", NOW).unwrap();
    open(b.path(), "b.test", NOW).unwrap();

    // Another trust domain on the same files.
    match open(a.path(), "other.test", NOW) {
        Err(OpenError::TrustDomainMismatch {
            found, expected, ..
        }) => {
            assert_eq!(found, "spiffe://a.test");
            assert_eq!(expected, td("other.test"));
        }
        other => panic!("{other:?}"),
    }

    // The root key of another CA.
    let c = tempfile::tempdir().unwrap();
    for file in [CA_CERT_FILE, JWT_KEY_FILE] {
        std::fs::copy(a.path().join(file), c.path().join(file)).unwrap();
    }
    std::fs::copy(b.path().join(CA_KEY_FILE), c.path().join(CA_KEY_FILE)).unwrap();
    assert!(matches!(
        open(c.path(), "a.test", NOW),
        Err(OpenError::KeyMismatch { .. })
    ));

    // A certificate without its JWT key: refused, and the key is not made up anew.
    let d = tempfile::tempdir().unwrap();
    for file in [CA_CERT_FILE, CA_KEY_FILE] {
        std::fs::copy(a.path().join(file), d.path().join(file)).unwrap();
    }
    match open(d.path(), "a.test", NOW) {
        Err(OpenError::Incomplete { missing, .. }) => assert!(missing.ends_with(JWT_KEY_FILE)),
        other => panic!("{other:?}"),
    }
    assert!(!d.path().join(JWT_KEY_FILE).exists());

    // The same key as root and JWT key.
    let e = tempfile::tempdir().unwrap();
    std::fs::copy(a.path().join(CA_KEY_FILE), e.path().join(CA_KEY_FILE)).unwrap();
    std::fs::copy(a.path().join(CA_KEY_FILE), e.path().join(JWT_KEY_FILE)).unwrap();
    assert!(matches!(
        open(e.path(), "a.test", NOW),
        Err(OpenError::SharedKey { .. })
    ));

    // A damaged certificate: not PEM, then a flipped signature byte.
    let der = std::fs::read_to_string(a.path().join(CA_CERT_FILE)).unwrap();
    std::fs::write(a.path().join(CA_CERT_FILE), "not a certificate").unwrap();
    assert!(matches!(
        open(a.path(), "a.test", NOW),
        Err(OpenError::Unreadable { .. })
    ));
    let (_, block) = x509_parser::pem::parse_x509_pem(der.as_bytes()).unwrap();
    let mut flipped = block.contents.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(&flipped)
    );
    std::fs::write(a.path().join(CA_CERT_FILE), pem).unwrap();
    assert!(matches!(
        open(a.path(), "a.test", NOW),
        Err(OpenError::BadSignature { .. })
    ));
}

#[test]
fn a_root_with_the_right_key_and_name_but_another_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), "a.test", NOW).unwrap();
    let key =
        rcgen::KeyPair::try_from(std::fs::read(dir.path().join(CA_KEY_FILE)).unwrap()).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        rcgen::string::Ia5String::try_from("spiffe://a.test").unwrap(),
    )];
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    std::fs::remove_file(dir.path().join(CA_CERT_FILE)).unwrap();
    std::fs::write(dir.path().join(CA_CERT_FILE), cert.pem()).unwrap();
    assert!(matches!(
        open(dir.path(), "a.test", NOW),
        Err(OpenError::ForeignProfile { .. })
    ));
}

#[test]
fn an_expired_root_is_refused_and_renewed_with_the_same_keys_once_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let later = NOW + 366 * 24 * 3600;
    assert!(matches!(
        open(dir.path(), "a.test", later),
        Err(OpenError::Expired { .. })
    ));

    std::fs::remove_file(dir.path().join(CA_CERT_FILE)).unwrap();
    let renewed = open(dir.path(), "a.test", later).unwrap();
    let (old, new) = (
        parse(ca.ca_certificate_der()),
        parse(renewed.ca_certificate_der()),
    );
    assert_eq!(old.public_key().raw, new.public_key().raw);
    assert_eq!(ski(&old), ski(&new));
    assert_eq!(renewed.jwt_key_id(), ca.jwt_key_id());
    // A new root is a new key set: the bundle's sequence goes up.
    assert!(renewed.trust_bundle().sequence() > ca.trust_bundle().sequence());
}

#[test]
fn an_x509_svid_with_a_generated_key_follows_the_x509_svid_profile() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let spiffe_id = id("spiffe://a.test/ns/build/sa/tekton");
    let svid = ca
        .issue_x509_svid(
            &spiffe_id,
            SubjectKey::Generate,
            Duration::from_secs(600),
            at(NOW + 10),
        )
        .unwrap();
    assert_eq!(svid.spiffe_id, spiffe_id);
    assert_eq!(
        svid.chain_der.len(),
        1,
        "leaf only: the root is in the bundle"
    );
    assert_eq!(
        (svid.not_before, svid.not_after),
        (at(NOW - 50), at(NOW + 610))
    );

    let root = parse(ca.ca_certificate_der());
    let leaf = parse(&svid.chain_der[0]);
    assert_eq!(leaf.issuer().as_raw(), root.subject().as_raw());
    assert!(signed_by(&leaf, &root.public_key().subject_public_key.data));
    assert_eq!(leaf.validity().not_before.timestamp(), (NOW - 50) as i64);
    assert_eq!(leaf.validity().not_after.timestamp(), (NOW + 610) as i64);
    // X509-SVID §2, §3.1: exactly one URI SAN; critical, since the subject is empty.
    assert!(leaf.subject().as_raw().len() <= 2, "empty subject");
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical);
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI(spiffe_id.as_str())]
    );
    // §4.1: cA false.
    let bc = leaf.basic_constraints().unwrap().unwrap();
    assert!(!bc.value.ca);
    // §4.3: critical key usage, digitalSignature, never keyCertSign or cRLSign.
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(ku.critical);
    assert!(ku.value.digital_signature());
    assert!(!ku.value.key_cert_sign() && !ku.value.crl_sign());
    // §4.4: serverAuth and clientAuth.
    let eku = leaf.extended_key_usage().unwrap().unwrap();
    assert!(eku.value.server_auth && eku.value.client_auth);
    // Key identifiers chain the leaf to the root.
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        })
        .unwrap();
    assert_eq!(aki, ski(&root));
    assert!(!ski(&leaf).is_empty());

    // The returned private key is the certified one.
    let pkcs8 = svid.private_key_pkcs8.as_ref().unwrap();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8).unwrap();
    assert_eq!(
        key.public_key().as_ref(),
        &leaf.public_key().subject_public_key.data[..]
    );
    assert!(!format!("{svid:?}").contains(&format!("{pkcs8:?}")));

    // Serials are unique, also for the same identity.
    let other = ca
        .issue_x509_svid(&spiffe_id, SubjectKey::Generate, HOUR, at(NOW + 10))
        .unwrap();
    assert_ne!(parse(&other.chain_der[0]).serial, leaf.serial);
}

#[test]
fn an_x509_svid_certifies_a_given_p256_or_p384_key_and_refuses_others() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let spiffe_id = id("spiffe://a.test/w");
    for alg in [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
    ] {
        let key = EcdsaKeyPair::generate(alg).unwrap();
        let spki = key.public_key().as_der().unwrap();
        let svid = ca
            .issue_x509_svid(&spiffe_id, SubjectKey::Spki(spki.as_ref()), HOUR, at(NOW))
            .unwrap();
        assert!(svid.private_key_pkcs8.is_none());
        assert_eq!(parse(&svid.chain_der[0]).public_key().raw, spki.as_ref());
    }
    let ed25519 = sig::Ed25519KeyPair::generate().unwrap();
    let mut off_curve = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
        .unwrap()
        .public_key()
        .as_der()
        .unwrap()
        .as_ref()
        .to_vec();
    let last = off_curve.len() - 1;
    off_curve[last] ^= 1;
    for spki in [
        b"garbage".to_vec(),
        ed25519.public_key().as_der().unwrap().as_ref().to_vec(),
        off_curve,
    ] {
        assert!(matches!(
            ca.issue_x509_svid(&spiffe_id, SubjectKey::Spki(&spki), HOUR, at(NOW)),
            Err(IssueX509Error::SubjectKey(_))
        ));
    }
}

#[test]
fn x509_svid_requests_outside_the_ca_s_remit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let issue = |spiffe_id: &str, validity, now| {
        ca.issue_x509_svid(&id(spiffe_id), SubjectKey::Generate, validity, at(now))
    };
    assert!(matches!(
        issue("spiffe://b.test/w", HOUR, NOW),
        Err(IssueX509Error::Request(
            SvidRequestError::ForeignTrustDomain { .. }
        ))
    ));
    assert!(matches!(
        issue("spiffe://a.test", HOUR, NOW),
        Err(IssueX509Error::Request(SvidRequestError::NoPath(_)))
    ));
    for validity in [
        Duration::ZERO,
        Duration::from_millis(999),
        HOUR + Duration::from_secs(1),
    ] {
        assert!(matches!(
            issue("spiffe://a.test/w", validity, NOW),
            Err(IssueX509Error::Request(SvidRequestError::Validity { .. }))
        ));
    }
    assert!(issue("spiffe://a.test/w", HOUR, NOW).is_ok());
    assert!(matches!(
        issue("spiffe://a.test/w", HOUR, NOW + 365 * 24 * 3600),
        Err(IssueX509Error::CaNotValid { .. })
    ));
}

#[test]
fn a_leaf_never_outlives_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let config = DevCaConfig {
        ca_validity: 2 * HOUR,
        max_svid_validity: 2 * HOUR,
        ..DevCaConfig::default()
    };
    let ca = DevCa::open(dir.path(), &td("a.test"), config, at(NOW)).unwrap();
    let svid = ca
        .issue_x509_svid(
            &id("spiffe://a.test/w"),
            SubjectKey::Generate,
            HOUR,
            at(NOW + 5400),
        )
        .unwrap();
    assert_eq!(svid.not_after, at(NOW + 7200));
    let leaf = parse(&svid.chain_der[0]);
    assert_eq!(leaf.validity().not_after.timestamp(), (NOW + 7200) as i64);

    let bad = DevCaConfig {
        ca_validity: HOUR,
        max_svid_validity: 2 * HOUR,
        ..DevCaConfig::default()
    };
    let other = tempfile::tempdir().unwrap();
    assert!(matches!(
        DevCa::open(other.path(), &td("a.test"), bad, at(NOW)),
        Err(OpenError::Config(_))
    ));
}

#[test]
fn the_trust_bundle_publishes_the_root_and_the_jwt_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let bundle = TrustBundle::from_json_strict(&ca.trust_bundle().to_json()).unwrap();
    assert!(bundle.diagnostics().is_empty());
    assert_eq!(
        bundle.x509_authorities().collect::<Vec<_>>(),
        vec![ca.ca_certificate_der()]
    );
    assert_eq!(bundle.sequence(), Some(NOW - 60));
    assert_eq!(bundle.refresh_hint(), Some(300));
    // The x509-svid entry's key is the root's.
    let root = parse(ca.ca_certificate_der());
    let x509_entry = bundle.keys()[0].jwk();
    assert_eq!(x509_entry.kid(), None);
    let expected = ec_jwk("P-256", &root.public_key().subject_public_key.data);
    for member in ["kty", "crv", "x", "y"] {
        assert_eq!(x509_entry.get(member), expected.get(member), "{member}");
    }
    // The jwt-svid entry: kid is the RFC 7638 thumbprint, recomputed here.
    let jwks: Vec<_> = bundle.jwt_authorities().collect();
    assert_eq!(jwks.len(), 1);
    let (kid, jwk) = jwks[0];
    assert_eq!(kid, ca.jwt_key_id());
    assert_eq!(jwk.key_use(), Some("jwt-svid"));
    let thumbprint_input = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        jwk.get_str("crv").unwrap(),
        jwk.kty().unwrap(),
        jwk.get_str("x").unwrap(),
        jwk.get_str("y").unwrap()
    );
    assert_eq!(kid, b64(&Sha256::digest(thumbprint_input.as_bytes())));
}

#[test]
fn a_jwt_svid_has_the_jwt_svid_header_and_the_claims_sigstore_needs() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let spiffe_id = id("spiffe://a.test/ns/build/sa/tekton");
    let token = ca
        .issue_jwt_svid(
            &spiffe_id,
            &["sigstore".into()],
            Duration::from_secs(300),
            at(NOW),
        )
        .unwrap();
    assert_eq!(token.split('.').count(), 3);
    assert_eq!(
        decode_part(&token, 0),
        json!({"alg": "ES256", "kid": ca.jwt_key_id(), "typ": "JWT"})
    );
    assert_eq!(
        decode_part(&token, 1),
        json!({
            "sub": "spiffe://a.test/ns/build/sa/tekton",
            "aud": "sigstore",
            "exp": NOW + 300,
            "iat": NOW,
            "iss": "spiffe://a.test",
        })
    );
    // The signature is ES256's 64-byte R || S and verifies under the bundle's JWK.
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert_eq!(signature.len(), 64);
    let jwk = ca.trust_bundle().jwt_authority(ca.jwt_key_id()).unwrap();
    let point = [
        vec![4],
        URL_SAFE_NO_PAD.decode(jwk.get_str("x").unwrap()).unwrap(),
        URL_SAFE_NO_PAD.decode(jwk.get_str("y").unwrap()).unwrap(),
    ]
    .concat();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(input.as_bytes(), &signature)
        .unwrap();

    // Several audiences are an array.
    let token = ca
        .issue_jwt_svid(&spiffe_id, &["a".into(), "b".into()], HOUR, at(NOW))
        .unwrap();
    assert_eq!(decode_part(&token, 1)["aud"], json!(["a", "b"]));
}

#[test]
fn jwt_svid_requests_outside_the_ca_s_remit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), "a.test", NOW).unwrap();
    let issue = |spiffe_id: &str, audiences: &[String], validity| {
        ca.issue_jwt_svid(&id(spiffe_id), audiences, validity, at(NOW))
    };
    let aud = ["sigstore".to_owned()];
    assert!(matches!(
        issue("spiffe://b.test/w", &aud, HOUR),
        Err(IssueJwtError::Request(
            SvidRequestError::ForeignTrustDomain { .. }
        ))
    ));
    assert!(matches!(
        issue("spiffe://a.test/w", &aud, 2 * HOUR),
        Err(IssueJwtError::Request(SvidRequestError::Validity { .. }))
    ));
    let many: Vec<String> = (0..17).map(|i| i.to_string()).collect();
    for audiences in [&[][..], &["".to_owned()][..], &many[..]] {
        assert!(matches!(
            issue("spiffe://a.test/w", audiences, HOUR),
            Err(IssueJwtError::Audience(_))
        ));
    }
}

/// A CA, a token it issued for `spiffe://a.test/w` and audience `svc` at NOW for an
/// hour, and its JWT key (PKCS#8) to sign hand-made tokens with.
struct Fixture {
    _dir: tempfile::TempDir,
    ca: DevCa,
    token: String,
    jwt_pkcs8: Vec<u8>,
}

fn fixture(domain: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = open(dir.path(), domain, NOW).unwrap();
    let token = ca
        .issue_jwt_svid(
            &id(&format!("spiffe://{domain}/w")),
            &["svc".into(), "other".into()],
            HOUR,
            at(NOW),
        )
        .unwrap();
    let jwt_pkcs8 = std::fs::read(dir.path().join(JWT_KEY_FILE)).unwrap();
    Fixture {
        _dir: dir,
        ca,
        token,
        jwt_pkcs8,
    }
}

impl Fixture {
    fn verify(&self, token: &str, audience: &str, now: u64) -> Result<SpiffeId, JwtSvidError> {
        verify_jwt_svid(
            token,
            audience,
            self.ca.trust_domain(),
            self.ca.trust_bundle(),
            at(now),
        )
    }

    fn header(&self) -> Value {
        json!({"alg": "ES256", "kid": self.ca.jwt_key_id(), "typ": "JWT"})
    }

    fn claims(&self) -> Value {
        json!({"sub": "spiffe://a.test/w", "aud": "svc", "exp": NOW + 3600})
    }

    fn signed(&self, header: &Value, claims: &Value) -> String {
        sign_es256(&self.jwt_pkcs8, header, claims)
    }
}

#[test]
fn a_jwt_svid_verifies_until_it_expires() {
    let f = fixture("a.test");
    for audience in ["svc", "other"] {
        assert_eq!(
            f.verify(&f.token, audience, NOW),
            Ok(id("spiffe://a.test/w"))
        );
    }
    assert!(f.verify(&f.token, "svc", NOW + 3599).is_ok());
    for now in [NOW + 3600, NOW + 7200] {
        assert!(matches!(
            f.verify(&f.token, "svc", now),
            Err(JwtSvidError::Expired { .. })
        ));
    }
    // A hand-made token with the same key and fractional times also verifies.
    let token = f.signed(
        &f.header(),
        &json!({"sub": "spiffe://a.test/w", "aud": ["svc"], "exp": NOW as f64 + 0.5, "nbf": NOW - 10, "jti": "x"}),
    );
    assert!(f.verify(&token, "svc", NOW).is_ok());
}

#[test]
fn a_jwt_svid_is_refused_on_every_failed_check() {
    let f = fixture("a.test");
    let refused = |token: &str| f.verify(token, "svc", NOW).unwrap_err();

    // Tampered payload: another subject under the original signature.
    let mut parts: Vec<String> = f.token.split('.').map(str::to_owned).collect();
    let mut claims = decode_part(&f.token, 1);
    claims["sub"] = json!("spiffe://a.test/admin");
    parts[1] = b64(claims.to_string().as_bytes());
    assert_eq!(refused(&parts.join(".")), JwtSvidError::BadSignature);
    // A signature of the wrong length (ES256's is 64 bytes), and one of another message.
    let (input, signature) = f.token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let truncated = format!("{input}.{}", b64(&signature[..60]));
    assert_eq!(refused(&truncated), JwtSvidError::BadSignature);
    let other = f.signed(&f.header(), &f.claims());
    let swapped = format!("{input}.{}", other.rsplit_once('.').unwrap().1);
    assert_eq!(refused(&swapped), JwtSvidError::BadSignature);

    assert!(matches!(
        f.verify(&f.token, "elsewhere", NOW),
        Err(JwtSvidError::AudienceMismatch { found, .. }) if found == ["svc", "other"]
    ));

    // Signed by another trust domain's key: unknown kid in this bundle.
    let b = fixture("b.test");
    assert!(matches!(refused(&b.token), JwtSvidError::UnknownKeyId(_)));
    // Checked against its own bundle but for the wrong trust domain.
    let foreign = verify_jwt_svid(
        &b.token,
        "svc",
        f.ca.trust_domain(),
        b.ca.trust_bundle(),
        at(NOW),
    );
    assert!(matches!(
        foreign,
        Err(JwtSvidError::ForeignTrustDomain { .. })
    ));

    // Algorithms outside JWT-SVID §2.1, `none` first.
    for alg in ["none", "HS256", "EdDSA"] {
        let header = json!({"alg": alg, "kid": f.ca.jwt_key_id(), "typ": "JWT"});
        let token = sign_with(&header, &f.claims(), |_| Vec::new());
        assert_eq!(
            refused(&token),
            JwtSvidError::UnsupportedAlgorithm(alg.into())
        );
    }
    // A supported alg that the key cannot do.
    let header = json!({"alg": "ES384", "kid": f.ca.jwt_key_id()});
    assert!(matches!(
        refused(&f.signed(&header, &f.claims())),
        JwtSvidError::KeyMismatch { .. }
    ));
    let header = json!({"alg": "ES256", "typ": "JWT"});
    assert_eq!(
        refused(&f.signed(&header, &f.claims())),
        JwtSvidError::MissingKeyId
    );

    // Malformed: compact form, base64url, header members, typ, duplicate claims, size.
    let malformed = [
        f.token.splitn(3, '.').take(2).collect::<Vec<_>>().join("."),
        format!("{}.", f.token),
        format!("{}=", f.token),
        f.token.replacen('.', "=.", 1),
        f.signed(
            &json!({"alg": "ES256", "kid": f.ca.jwt_key_id(), "jku": "https://evil"}),
            &f.claims(),
        ),
        f.signed(
            &json!({"alg": "ES256", "kid": f.ca.jwt_key_id(), "typ": "at+jwt"}),
            &f.claims(),
        ),
        sign_with(&f.header(), &Value::Null, |m| {
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &f.jwt_pkcs8).unwrap();
            key.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()
        }),
        "a".repeat(17 * 1024),
    ];
    for token in &malformed {
        assert!(
            matches!(refused(token), JwtSvidError::Malformed(_)),
            "{token:.80}: {:?}",
            refused(token)
        );
    }
    let duplicate = {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &f.jwt_pkcs8).unwrap();
        let claims = format!(
            r#"{{"sub":"spiffe://a.test/w","sub":"spiffe://a.test/admin","aud":"svc","exp":{}}}"#,
            NOW + 60
        );
        let input = format!(
            "{}.{}",
            b64(f.header().to_string().as_bytes()),
            b64(claims.as_bytes())
        );
        let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature.as_ref()))
    };
    assert!(matches!(refused(&duplicate), JwtSvidError::Malformed(_)));

    // Claims: required ones missing, an empty audience list, a subject that is not a
    // SPIFFE ID, a token not valid yet.
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = f.claims();
        change(&mut claims);
        refused(&f.signed(&f.header(), &claims))
    };
    for claim in ["exp", "aud", "sub"] {
        assert_eq!(
            with(&|c| {
                c.as_object_mut().unwrap().remove(claim);
            }),
            JwtSvidError::MissingClaim(claim)
        );
    }
    assert_eq!(
        with(&|c| c["aud"] = json!([])),
        JwtSvidError::MissingClaim("aud")
    );
    assert!(matches!(
        with(&|c| c["sub"] = json!("https://a.test/w")),
        JwtSvidError::SubjectNotSpiffeId(_)
    ));
    assert!(matches!(
        with(&|c| c["nbf"] = json!(NOW + 60)),
        JwtSvidError::NotYetValid { .. }
    ));
    assert!(matches!(
        with(&|c| c["exp"] = json!("tomorrow")),
        JwtSvidError::Malformed(_)
    ));
}

#[test]
fn jwt_svids_of_the_other_algorithms_verify_against_their_bundle_keys() {
    let domain = td("a.test");
    let claims = json!({"sub": "spiffe://a.test/w", "aud": "svc", "exp": NOW + 60});
    let mut bundle = TrustBundle::new();

    let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    bundle
        .add_jwt_authority("p384", ec_jwk("P-384", p384.public_key().as_ref()))
        .unwrap();
    let es384 = sign_with(&json!({"alg": "ES384", "kid": "p384"}), &claims, |m| {
        p384.sign(&SystemRandom::new(), m)
            .unwrap()
            .as_ref()
            .to_vec()
    });

    let rsa = sig::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let components = sig::RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let Value::Object(rsa_jwk) =
        json!({"kty": "RSA", "n": b64(&components.n), "e": b64(&components.e)})
    else {
        unreachable!()
    };
    bundle.add_jwt_authority("rsa", rsa_jwk).unwrap();
    let rsa_token = |alg: &str, encoding: &'static dyn sig::RsaEncoding| {
        sign_with(
            &json!({"alg": alg, "kid": "rsa", "typ": "JOSE"}),
            &claims,
            |m| {
                let mut out = vec![0; rsa.public_modulus_len()];
                rsa.sign(encoding, &SystemRandom::new(), m, &mut out)
                    .unwrap();
                out
            },
        )
    };
    let rs256 = rsa_token("RS256", &sig::RSA_PKCS1_SHA256);
    let ps256 = rsa_token("PS256", &sig::RSA_PSS_SHA256);

    for token in [&es384, &rs256, &ps256] {
        assert_eq!(
            verify_jwt_svid(token, "svc", &domain, &bundle, at(NOW)),
            Ok(id("spiffe://a.test/w"))
        );
    }
    // An RSA algorithm with the EC key.
    let header = json!({"alg": "RS256", "kid": "p384"});
    let token = sign_with(&header, &claims, |_| vec![0; 256]);
    assert!(matches!(
        verify_jwt_svid(&token, "svc", &domain, &bundle, at(NOW)),
        Err(JwtSvidError::KeyMismatch { .. })
    ));
}
