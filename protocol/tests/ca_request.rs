//! The code-signing CA's request rules (`provmesh_protocol::ca::request`): every way to
//! prove an identity is accepted when it holds, and every refusal path — another trust
//! domain, an expired SVID, a bad JWT signature or audience, no or a bad proof of
//! possession, an untrusted or malformed chain — is refused with its own reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use provmesh_protocol::ca::request::{
    AuthMethod, Credential, KeyProof, RequestError, SigningCertRequest, authorize,
    fulcio_response_json, parse_fulcio_response, pem_encode, x509_svid_proof_message,
};
use provmesh_protocol::machine::Timestamp;
use provmesh_protocol::spiffe::jwt::JwtSvidError;
use provmesh_protocol::spiffe::x509::X509SvidError;
use provmesh_protocol::spiffe::{SpiffeId, TrustBundle, TrustDomain};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PublicKeyData as _, SanType,
    SigningKey as _, date_time_ymd,
};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// 2026-11-25T00:00:00Z.
const NOW: i64 = 1_795_564_800;

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(NOW as u64)
}

/// Sets a certificate's validity window from Unix times.
fn set_window(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    let epoch = date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(u64::try_from(not_before).unwrap());
    params.not_after = epoch + Duration::from_secs(u64::try_from(not_after).unwrap());
}

fn ec_jwk(point: &[u8]) -> Map<String, Value> {
    let (x, y) = point[1..].split_at(32);
    let mut m = Map::new();
    m.insert("kty".into(), "EC".into());
    m.insert("crv".into(), "P-256".into());
    m.insert("x".into(), URL_SAFE_NO_PAD.encode(x).into());
    m.insert("y".into(), URL_SAFE_NO_PAD.encode(y).into());
    m
}

/// A trust domain's SPIFFE CA: an X.509 root and a JWT key, and its bundle.
struct Domain {
    td: TrustDomain,
    ca: Issuer<'static, KeyPair>,
    jwt_key: EcdsaKeyPair,
    bundle: TrustBundle,
}

impl Domain {
    fn new(name: &str) -> Domain {
        let td = TrustDomain::parse(name).unwrap();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(
            Ia5String::try_from(format!("spiffe://{name}")).unwrap(),
        )];
        set_window(&mut params, NOW - 86_400, NOW + 86_400);
        let cert = params.self_signed(&key).unwrap();
        let mut bundle = TrustBundle::new();
        bundle
            .add_x509_authority(cert.der(), ec_jwk(key.public_key_raw()))
            .unwrap();
        let jwt_key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        bundle
            .add_jwt_authority("jwt-1", ec_jwk(jwt_key.public_key().as_ref()))
            .unwrap();
        Domain {
            td,
            ca: Issuer::new(params, key),
            jwt_key,
            bundle,
        }
    }

    fn id(&self, path: &str) -> SpiffeId {
        SpiffeId::parse(&format!("spiffe://{}{path}", self.td.as_str())).unwrap()
    }

    /// An X.509-SVID for `uri`, valid `not_before..not_after`; with `ca` set, a CA
    /// certificate instead of a leaf (for the profile checks).
    fn svid(&self, uri: &str, not_before: i64, not_after: i64, ca: bool) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(Ia5String::try_from(uri).unwrap())];
        set_window(&mut params, not_before, not_after);
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        }
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.der().to_vec(), key)
    }

    fn valid_svid(&self, path: &str) -> (Vec<u8>, KeyPair) {
        self.svid(self.id(path).as_str(), NOW - 60, NOW + 3600, false)
    }

    /// A JWT-SVID signed with this domain's JWT key.
    fn jwt(&self, sub: &str, aud: &str, exp: i64) -> String {
        let header = json!({"alg": "ES256", "kid": "jwt-1", "typ": "JWT"});
        let claims = json!({
            "sub": sub, "aud": [aud], "exp": exp, "iat": NOW - 10,
            "iss": format!("spiffe://{}", self.td.as_str()),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .jwt_key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    fn valid_jwt(&self, path: &str) -> String {
        self.jwt(self.id(path).as_str(), "sigstore", NOW + 300)
    }
}

/// The key to certify, with a proof of possession over `spiffe_id`.
fn public_key_proof(key: &KeyPair, signed: &str) -> KeyProof {
    KeyProof::PublicKey {
        spki_der: key.subject_public_key_info(),
        proof_of_possession: key.sign(signed.as_bytes()).unwrap(),
    }
}

fn code_signing_key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
}

fn request(credential: Option<Credential>, key: KeyProof) -> SigningCertRequest {
    // Through the wire format, as the CA receives it.
    let request =
        SigningCertRequest::from_fulcio_json(&fulcio_json(credential.as_ref(), &key), None)
            .unwrap();
    assert_eq!(request.credential, credential);
    assert_eq!(request.key, key);
    request
}

fn fulcio_json(credential: Option<&Credential>, key: &KeyProof) -> Vec<u8> {
    let mut body = Map::new();
    match credential {
        Some(Credential::JwtSvid(token)) => {
            body.insert("credentials".into(), json!({"oidcIdentityToken": token}));
        }
        Some(Credential::X509SvidProof { chain, signature }) => {
            let chain: Vec<String> = chain.iter().map(|c| STANDARD.encode(c)).collect();
            body.insert(
                "credentials".into(),
                json!({"x509Svid": {"chain": chain, "signature": STANDARD.encode(signature)}}),
            );
        }
        Some(_) => unreachable!("no other credential kinds"),
        None => {}
    }
    match key {
        KeyProof::PublicKey {
            spki_der,
            proof_of_possession,
        } => {
            body.insert(
                "publicKeyRequest".into(),
                json!({
                    "publicKey": {"algorithm": "ECDSA", "content": pem_encode("PUBLIC KEY", spki_der)},
                    "proofOfPossession": STANDARD.encode(proof_of_possession),
                }),
            );
        }
        KeyProof::Csr(der) => {
            body.insert(
                "certificateSigningRequest".into(),
                STANDARD
                    .encode(pem_encode("CERTIFICATE REQUEST", der))
                    .into(),
            );
        }
        _ => unreachable!("no other key kinds"),
    }
    Value::Object(body).to_string().into_bytes()
}

fn authorize_at(domain: &Domain, request: &SigningCertRequest) -> Result<SpiffeId, RequestError> {
    authorize::<Vec<u8>>(request, None, &domain.td, &domain.bundle, now()).map(|a| a.spiffe_id)
}

fn csr_of(key: &KeyPair) -> Vec<u8> {
    CertificateParams::default()
        .serialize_request(key)
        .unwrap()
        .der()
        .to_vec()
}

#[test]
fn jwt_svid_with_proof_of_possession_is_authorized() {
    let domain = Domain::new("org-a.example");
    let id = domain.id("/ci/build");
    let key = code_signing_key();
    let req = request(
        Some(Credential::JwtSvid(domain.valid_jwt("/ci/build"))),
        public_key_proof(&key, id.as_str()),
    );
    let authorized = authorize::<Vec<u8>>(&req, None, &domain.td, &domain.bundle, now()).unwrap();
    assert_eq!(authorized.spiffe_id, id);
    assert_eq!(authorized.method, AuthMethod::JwtSvid);
    assert_eq!(
        authorized.subject_public_key_spki_der,
        key.subject_public_key_info()
    );
    // The form `provmesh sign` sends parses back to the same request.
    assert_eq!(
        SigningCertRequest::from_fulcio_json(&req.to_fulcio_json(), None).unwrap(),
        req
    );
}

#[test]
fn sigstore_python_shape_bearer_token_and_csr_is_authorized() {
    let domain = Domain::new("org-a.example");
    let key = code_signing_key();
    let body = json!({
        "certificateSigningRequest": STANDARD.encode(pem_encode("CERTIFICATE REQUEST", &csr_of(&key))),
    })
    .to_string();
    let token = domain.valid_jwt("/ci/build");
    let req = SigningCertRequest::from_fulcio_json(body.as_bytes(), Some(&token)).unwrap();
    assert_eq!(authorize_at(&domain, &req).unwrap(), domain.id("/ci/build"));
    // The same token in the body and the header is one credential, two different ones
    // are refused.
    let both = json!({
        "credentials": {"oidcIdentityToken": token},
        "certificateSigningRequest": STANDARD.encode(pem_encode("CERTIFICATE REQUEST", &csr_of(&key))),
    })
    .to_string();
    assert!(SigningCertRequest::from_fulcio_json(both.as_bytes(), Some(&token)).is_ok());
    let other = domain.valid_jwt("/ci/other");
    assert_eq!(
        SigningCertRequest::from_fulcio_json(both.as_bytes(), Some(&other)).unwrap_err(),
        RequestError::ConflictingCredentials
    );
}

#[test]
fn x509_svid_proof_and_mtls_peer_are_authorized() {
    let domain = Domain::new("org-a.example");
    let (svid, svid_key) = domain.valid_svid("/ci/build");
    let key = code_signing_key();
    let proof = svid_key
        .sign(&x509_svid_proof_message(&key.subject_public_key_info()))
        .unwrap();
    let req = request(
        Some(Credential::X509SvidProof {
            chain: vec![svid.clone()],
            signature: proof,
        }),
        KeyProof::Csr(csr_of(&key)),
    );
    let authorized = authorize::<Vec<u8>>(&req, None, &domain.td, &domain.bundle, now()).unwrap();
    assert_eq!(authorized.spiffe_id, domain.id("/ci/build"));
    assert_eq!(authorized.method, AuthMethod::X509SvidProof);

    // On an mTLS connection the peer's SVID is the credential.
    let bare = request(None, KeyProof::Csr(csr_of(&key)));
    let authorized = authorize(
        &bare,
        Some(&[svid.clone()][..]),
        &domain.td,
        &domain.bundle,
        now(),
    )
    .unwrap();
    assert_eq!(authorized.method, AuthMethod::Mtls);
    assert_eq!(authorized.spiffe_id, domain.id("/ci/build"));

    // A JWT-SVID of another workload on that connection does not match the peer.
    let id = domain.id("/ci/other");
    let mismatched = request(
        Some(Credential::JwtSvid(domain.valid_jwt("/ci/other"))),
        public_key_proof(&key, id.as_str()),
    );
    assert_eq!(
        authorize(
            &mismatched,
            Some(&[svid][..]),
            &domain.td,
            &domain.bundle,
            now()
        )
        .unwrap_err(),
        RequestError::ConflictingCredentials
    );
}

#[test]
fn identities_of_another_trust_domain_are_refused() {
    let ours = Domain::new("org-a.example");
    let theirs = Domain::new("org-b.example");
    let key = code_signing_key();

    // A JWT-SVID signed by our JWT key (the key is in our bundle) but for their domain.
    let foreign_sub = theirs.id("/ci/build");
    let token = ours.jwt(foreign_sub.as_str(), "sigstore", NOW + 300);
    let req = request(
        Some(Credential::JwtSvid(token)),
        public_key_proof(&key, foreign_sub.as_str()),
    );
    assert!(matches!(
        authorize_at(&ours, &req),
        Err(RequestError::JwtSvid(
            JwtSvidError::ForeignTrustDomain { .. }
        ))
    ));
    // Their own JWT-SVID: their key is not in our bundle.
    let req = request(
        Some(Credential::JwtSvid(theirs.valid_jwt("/ci/build"))),
        public_key_proof(&key, foreign_sub.as_str()),
    );
    assert!(matches!(
        authorize_at(&ours, &req),
        Err(RequestError::JwtSvid(_))
    ));
    // Their X.509-SVID.
    let (svid, svid_key) = theirs.valid_svid("/ci/build");
    let proof = svid_key
        .sign(&x509_svid_proof_message(&key.subject_public_key_info()))
        .unwrap();
    let req = request(
        Some(Credential::X509SvidProof {
            chain: vec![svid],
            signature: proof,
        }),
        KeyProof::Csr(csr_of(&key)),
    );
    let err = authorize_at(&ours, &req).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::X509Svid(X509SvidError::ForeignTrustDomain { .. })
        ),
        "{err}"
    );
    assert_eq!(err.status(), 401);
    // An SVID naming our domain but issued by their CA.
    let (forged, forged_key) =
        theirs.svid(ours.id("/ci/build").as_str(), NOW - 60, NOW + 60, false);
    let proof = forged_key
        .sign(&x509_svid_proof_message(&key.subject_public_key_info()))
        .unwrap();
    let req = request(
        Some(Credential::X509SvidProof {
            chain: vec![forged],
            signature: proof,
        }),
        KeyProof::Csr(csr_of(&key)),
    );
    assert!(matches!(
        authorize_at(&ours, &req),
        Err(RequestError::X509Svid(X509SvidError::Untrusted { .. }))
    ));
}

#[test]
fn expired_svids_are_refused() {
    let domain = Domain::new("org-a.example");
    let id = domain.id("/ci/build");
    let key = code_signing_key();
    let req = request(
        Some(Credential::JwtSvid(domain.jwt(
            id.as_str(),
            "sigstore",
            NOW - 1,
        ))),
        public_key_proof(&key, id.as_str()),
    );
    assert!(matches!(
        authorize_at(&domain, &req),
        Err(RequestError::JwtSvid(JwtSvidError::Expired { .. }))
    ));
    let (svid, svid_key) = domain.svid(id.as_str(), NOW - 3600, NOW - 60, false);
    let proof = svid_key
        .sign(&x509_svid_proof_message(&key.subject_public_key_info()))
        .unwrap();
    let req = request(
        Some(Credential::X509SvidProof {
            chain: vec![svid.clone()],
            signature: proof,
        }),
        KeyProof::Csr(csr_of(&key)),
    );
    assert!(matches!(
        authorize_at(&domain, &req),
        Err(RequestError::X509Svid(X509SvidError::NotValidAt {
            position: 0,
            ..
        }))
    ));
    let bare = request(None, KeyProof::Csr(csr_of(&key)));
    assert!(matches!(
        authorize(&bare, Some(&[svid][..]), &domain.td, &domain.bundle, now()),
        Err(RequestError::X509Svid(X509SvidError::NotValidAt { .. }))
    ));
}

#[test]
fn bad_jwt_signature_and_audience_are_refused() {
    let domain = Domain::new("org-a.example");
    let id = domain.id("/ci/build");
    let key = code_signing_key();
    // Flip one bit of the signature.
    let token = domain.valid_jwt("/ci/build");
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[10] ^= 1;
    let tampered = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
    let req = request(
        Some(Credential::JwtSvid(tampered)),
        public_key_proof(&key, id.as_str()),
    );
    let err = authorize_at(&domain, &req).unwrap_err();
    assert_eq!(err, RequestError::JwtSvid(JwtSvidError::BadSignature));
    assert_eq!(err.status(), 401);
    // A token for another audience.
    let req = request(
        Some(Credential::JwtSvid(domain.jwt(
            id.as_str(),
            "spire-server",
            NOW + 300,
        ))),
        public_key_proof(&key, id.as_str()),
    );
    assert!(matches!(
        authorize_at(&domain, &req),
        Err(RequestError::JwtSvid(JwtSvidError::AudienceMismatch { .. }))
    ));
}

#[test]
fn missing_or_bad_proof_of_possession_is_refused() {
    let domain = Domain::new("org-a.example");
    let id = domain.id("/ci/build");
    let key = code_signing_key();
    let token = domain.valid_jwt("/ci/build");
    // No proofOfPossession at all.
    let body = json!({
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": pem_encode("PUBLIC KEY", &key.subject_public_key_info())}},
    })
    .to_string();
    let err = SigningCertRequest::from_fulcio_json(body.as_bytes(), None).unwrap_err();
    assert_eq!(err, RequestError::MissingProofOfPossession);
    assert_eq!(err.status(), 400);
    // Neither a public key nor a CSR.
    let body = json!({"credentials": {"oidcIdentityToken": token}}).to_string();
    assert_eq!(
        SigningCertRequest::from_fulcio_json(body.as_bytes(), None).unwrap_err(),
        RequestError::MissingProofOfPossession
    );
    // A proof over another identity, and a proof by another key.
    for proof in [
        public_key_proof(&key, "spiffe://org-a.example/ci/other"),
        KeyProof::PublicKey {
            spki_der: key.subject_public_key_info(),
            proof_of_possession: code_signing_key().sign(id.as_str().as_bytes()).unwrap(),
        },
    ] {
        let req = request(Some(Credential::JwtSvid(token.clone())), proof);
        assert!(matches!(
            authorize_at(&domain, &req),
            Err(RequestError::BadProofOfPossession(_))
        ));
    }
    // A CSR whose signature was tampered with.
    let mut csr = csr_of(&key);
    let last = csr.len() - 3;
    csr[last] ^= 1;
    let req = request(Some(Credential::JwtSvid(token.clone())), KeyProof::Csr(csr));
    assert!(matches!(
        authorize_at(&domain, &req),
        Err(RequestError::BadProofOfPossession(_) | RequestError::Malformed(_))
    ));
    // An X.509-SVID proof over another key than the one to certify.
    let (svid, svid_key) = domain.valid_svid("/ci/build");
    let proof = svid_key
        .sign(&x509_svid_proof_message(
            &code_signing_key().subject_public_key_info(),
        ))
        .unwrap();
    let req = request(
        Some(Credential::X509SvidProof {
            chain: vec![svid],
            signature: proof,
        }),
        KeyProof::Csr(csr_of(&key)),
    );
    let err = authorize_at(&domain, &req).unwrap_err();
    assert_eq!(err, RequestError::BadSvidProof);
    assert_eq!(err.status(), 401);
}

#[test]
fn no_credential_and_unsupported_keys_are_refused() {
    let domain = Domain::new("org-a.example");
    let key = code_signing_key();
    let req = request(None, KeyProof::Csr(csr_of(&key)));
    let err = authorize_at(&domain, &req).unwrap_err();
    assert_eq!(err, RequestError::NoCredential);
    assert_eq!(err.status(), 401);

    let p384 = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap();
    let id = domain.id("/ci/build");
    let req = request(
        Some(Credential::JwtSvid(domain.valid_jwt("/ci/build"))),
        KeyProof::PublicKey {
            spki_der: p384.subject_public_key_info(),
            proof_of_possession: p384.sign(id.as_str().as_bytes()).unwrap(),
        },
    );
    assert!(matches!(
        authorize_at(&domain, &req),
        Err(RequestError::UnsupportedKey(_))
    ));
}

#[test]
fn svid_profile_violations_are_refused() {
    let domain = Domain::new("org-a.example");
    let key = code_signing_key();
    let check = |chain: Vec<Vec<u8>>| {
        let req = request(None, KeyProof::Csr(csr_of(&key)));
        authorize(&req, Some(&chain[..]), &domain.td, &domain.bundle, now()).unwrap_err()
    };
    // A CA certificate is not a leaf SVID.
    let (ca_leaf, _) = domain.svid(domain.id("/ci/build").as_str(), NOW - 60, NOW + 60, true);
    assert!(matches!(
        check(vec![ca_leaf]),
        RequestError::X509Svid(X509SvidError::NotSvid { .. })
    ));
    // The trust domain's own ID is not a workload.
    let (td_only, _) = domain.svid("spiffe://org-a.example", NOW - 60, NOW + 60, false);
    assert!(matches!(
        check(vec![td_only]),
        RequestError::X509Svid(X509SvidError::NotSvid { .. })
    ));
    // Garbage and empty chains.
    assert!(matches!(
        check(vec![b"not a certificate".to_vec()]),
        RequestError::X509Svid(X509SvidError::Malformed { position: 0, .. })
    ));
    assert_eq!(
        check(vec![]),
        RequestError::X509Svid(X509SvidError::EmptyChain)
    );
    // An empty bundle cannot validate anything.
    let (svid, _) = domain.valid_svid("/ci/build");
    let req = request(None, KeyProof::Csr(csr_of(&key)));
    assert!(matches!(
        authorize(
            &req,
            Some(&[svid][..]),
            &domain.td,
            &TrustBundle::new(),
            now()
        ),
        Err(RequestError::X509Svid(X509SvidError::NoAuthorities { .. }))
    ));
}

#[test]
fn malformed_bodies_are_refused_with_reasons() {
    for (body, needle) in [
        (&b"not json"[..], "not the expected JSON"),
        (br#"{"certificateSigningRequest": "%%%"}"#, "base64"),
        (
            br#"{"publicKeyRequest": {"publicKey": {"algorithm": "RSA_PSS", "content": "x"}, "proofOfPossession": "AA=="}}"#,
            "ECDSA",
        ),
        (
            br#"{"credentials": {"oidcIdentityToken": "a.b.c", "x509Svid": {"chain": [], "signature": ""}}, "certificateSigningRequest": "AA=="}"#,
            "two different credentials",
        ),
    ] {
        let err = SigningCertRequest::from_fulcio_json(body, None).unwrap_err();
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
    }
    let huge = vec![b' '; 64 * 1024 + 1];
    assert!(matches!(
        SigningCertRequest::from_fulcio_json(&huge, None),
        Err(RequestError::Malformed(_))
    ));
}

#[test]
fn fulcio_answer_round_trips() {
    let domain = Domain::new("org-a.example");
    let (leaf, _) = domain.valid_svid("/ci/build");
    let root = b"root-der".to_vec();
    let json = fulcio_response_json(&leaf, std::slice::from_ref(&root));
    let value: Value = serde_json::from_slice(&json).unwrap();
    let certificates = &value["signedCertificateEmbeddedSct"]["chain"]["certificates"];
    assert!(
        certificates[0]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----\n")
    );
    assert_eq!(parse_fulcio_response(&json).unwrap(), vec![leaf, root]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn credential() -> impl Strategy<Value = Option<Credential>> {
        prop_oneof![
            Just(None),
            "[A-Za-z0-9_.-]{1,200}".prop_map(|t| Some(Credential::JwtSvid(t))),
            (
                prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
                prop::collection::vec(any::<u8>(), 0..100),
            )
                .prop_map(|(chain, signature)| Some(Credential::X509SvidProof {
                    chain,
                    signature
                })),
        ]
    }

    fn key() -> impl Strategy<Value = KeyProof> {
        prop_oneof![
            (
                prop::collection::vec(any::<u8>(), 1..200),
                prop::collection::vec(any::<u8>(), 1..100),
            )
                .prop_map(|(spki_der, proof_of_possession)| KeyProof::PublicKey {
                    spki_der,
                    proof_of_possession
                }),
            prop::collection::vec(any::<u8>(), 1..400).prop_map(KeyProof::Csr),
        ]
    }

    proptest! {
        /// What `provmesh sign` and forwarding nodes send parses back to the same
        /// request, whatever the bytes inside.
        #[test]
        fn requests_round_trip_through_fulcio_json(credential in credential(), key in key()) {
            let request = SigningCertRequest::from_fulcio_json(
                &fulcio_json(credential.as_ref(), &key), None,
            ).unwrap();
            prop_assert_eq!(&request.credential, &credential);
            prop_assert_eq!(&request.key, &key);
            let again = SigningCertRequest::from_fulcio_json(&request.to_fulcio_json(), None).unwrap();
            prop_assert_eq!(again, request);
        }

        /// Arbitrary bodies and bearer tokens are parsed or refused, never a panic, and
        /// nothing random is ever authorized.
        #[test]
        fn arbitrary_bodies_are_never_authorized(
            body in prop::collection::vec(any::<u8>(), 0..600),
            bearer in proptest::option::of("[ -~]{0,100}"),
        ) {
            let domain = Domain::new("org-a.example");
            if let Ok(request) = SigningCertRequest::from_fulcio_json(&body, bearer.as_deref()) {
                prop_assert!(authorize::<Vec<u8>>(&request, None, &domain.td, &domain.bundle, now()).is_err());
            }
        }
    }
}

#[test]
fn only_self_verifying_requests_are_forwardable() {
    let domain = Domain::new("org-a.example");
    let key = code_signing_key();
    let bare = request(None, KeyProof::Csr(csr_of(&key)));
    let err = bare.check_forwardable().unwrap_err();
    assert_eq!(err, RequestError::NotForwardable);
    assert_eq!(err.status(), 401);
    let with_jwt = request(
        Some(Credential::JwtSvid(domain.valid_jwt("/ci/build"))),
        KeyProof::Csr(csr_of(&key)),
    );
    assert!(with_jwt.check_forwardable().is_ok());
}
