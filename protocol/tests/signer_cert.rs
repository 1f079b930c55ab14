//! Code-signing certificate admission (`log::signer_cert`): roots, intermediates and
//! leaves built with rcgen exercise every rule, each failure with its own error; real
//! Fulcio leaves from Sigstore bundles (`tests/vectors/sigstore/`) chain to the Fulcio CA
//! of the public-good or staging trusted-root vector, and not to the other; the
//! verified-certificate cache hits, misses, evicts and re-checks time; hostile bytes
//! never panic.

// Helpers outside `#[test]` functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use provmesh_protocol::log::signer_cert::{
    CertifiedSigner, CodeSigningRoots, MAX_CERTIFICATE_DER_LEN, MAX_ROOT_CERTIFICATES, RootsError,
    SignerCertError, UnixTime, VerifiedCertCache,
};
use provmesh_protocol::sigstore::{
    DEFAULT_MAX_BUNDLE_LEN, DEFAULT_MAX_TRUSTED_ROOT_LEN, ParsedBundle, parse_trusted_root,
};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
    SanType, SignatureAlgorithm, date_time_ymd,
};

/// 2026-01-01T00:00:00Z: the start of every generated leaf's validity.
const T0: i64 = 1_767_225_600;
/// Generated leaves live ten minutes, like Fulcio's.
const LEAF_LIFETIME: i64 = 600;
const SPIFFE: &str = "spiffe://org-a.example/ns/ci/sa/builder";

/// A CA: its parameters (the issuer name), key and certificate.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
    pem: String,
}

/// Sets a certificate's validity window from Unix times.
fn set_window(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    let epoch = date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(u64::try_from(not_before).unwrap());
    params.not_after = epoch + Duration::from_secs(u64::try_from(not_after).unwrap());
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "provmesh test");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(common_name: &str, not_before: i64, not_after: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_window(&mut params, not_before, not_after);
    params
}

/// A self-signed root valid 2025–2035.
fn root(common_name: &str, alg: &'static SignatureAlgorithm) -> Ca {
    root_with(
        ca_params(common_name, T0 - 365 * 86_400, T0 + 3_650 * 86_400),
        alg,
    )
}

fn root_with(params: CertificateParams, alg: &'static SignatureAlgorithm) -> Ca {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params,
        key,
    }
}

/// An intermediate under `parent`, valid 2025–2035.
fn intermediate(common_name: &str, parent: &Ca, alg: &'static SignatureAlgorithm) -> Ca {
    intermediate_with(
        ca_params(common_name, T0 - 365 * 86_400, T0 + 3_650 * 86_400),
        parent,
        alg,
    )
}

fn intermediate_with(
    params: CertificateParams,
    parent: &Ca,
    alg: &'static SignatureAlgorithm,
) -> Ca {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = params
        .signed_by(&key, &Issuer::from_params(&parent.params, &parent.key))
        .unwrap();
    Ca {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        params,
        key,
    }
}

/// A Fulcio-profile leaf: empty subject, one SAN, digitalSignature, codeSigning, valid
/// ten minutes from `T0`.
fn leaf_params(san: SanType) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![san];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.use_authority_key_identifier_extension = true;
    set_window(&mut params, T0, T0 + LEAF_LIFETIME);
    params
}

fn uri(value: &str) -> SanType {
    SanType::URI(value.try_into().unwrap())
}

/// Issues `params` under `issuer` with a fresh key of `alg`; returns DER and key.
fn issue_with(
    params: &CertificateParams,
    issuer: &Ca,
    alg: &'static SignatureAlgorithm,
) -> (Vec<u8>, KeyPair) {
    let key = KeyPair::generate_for(alg).unwrap();
    let cert = params
        .signed_by(&key, &Issuer::from_params(&issuer.params, &issuer.key))
        .unwrap();
    (cert.der().to_vec(), key)
}

fn issue(params: &CertificateParams, issuer: &Ca) -> Vec<u8> {
    issue_with(params, issuer, &PKCS_ECDSA_P256_SHA256).0
}

fn roots(cas: &[&Ca]) -> CodeSigningRoots {
    let ders: Vec<&[u8]> = cas.iter().map(|c| c.der.as_slice()).collect();
    CodeSigningRoots::from_der(&ders).unwrap()
}

/// One root and the roots built from it, for the single-rule tests.
fn simple() -> (Ca, CodeSigningRoots) {
    let ca = root("provmesh code signing", &PKCS_ECDSA_P256_SHA256);
    let roots = roots(&[&ca]);
    (ca, roots)
}

fn check_err(params: CertificateParams) -> SignerCertError {
    let (ca, roots) = simple();
    roots.check(&issue(&params, &ca), T0 + 1).unwrap_err()
}

// ---------------------------------------------------------------------------------------
// Accepted certificates.

#[test]
fn leaf_under_root_gives_identity_key_and_window() {
    let (ca, roots) = simple();
    let (der, key) = issue_with(&leaf_params(uri(SPIFFE)), &ca, &PKCS_ECDSA_P256_SHA256);
    let signer = roots.check(&der, T0 + 1).unwrap();
    assert_eq!(
        signer,
        CertifiedSigner {
            identity: SPIFFE.to_owned(),
            public_key_sec1: key.public_key_raw().to_vec(),
            not_before: T0,
            not_after: T0 + LEAF_LIFETIME,
        }
    );
    assert_eq!(signer.public_key_sec1.len(), 65);
    // RFC 5280 §4.1.2.5: the window is inclusive at both ends.
    assert!(roots.check(&der, T0).is_ok());
    assert!(roots.check(&der, T0 + LEAF_LIFETIME).is_ok());
}

#[test]
fn leaf_under_intermediate_p384_chain() {
    // The Fulcio shape: P-384 root and intermediate, P-256 leaf, ecdsa-with-SHA384.
    let root = root("root", &PKCS_ECDSA_P384_SHA384);
    let inter = intermediate("intermediate", &root, &PKCS_ECDSA_P384_SHA384);
    let roots = roots(&[&root, &inter]);
    let der = issue(&leaf_params(uri(SPIFFE)), &inter);
    assert_eq!(roots.check(&der, T0 + 1).unwrap().identity, SPIFFE);
    // Order in the bundle does not matter.
    let reversed = CodeSigningRoots::from_der(&[&inter.der, &root.der]).unwrap();
    assert!(reversed.check(&der, T0 + 1).is_ok());
    assert_eq!(reversed.fingerprint(), roots.fingerprint());
}

#[test]
fn leaf_under_two_intermediates() {
    let root = root("root", &PKCS_ECDSA_P256_SHA256);
    let a = intermediate("intermediate a", &root, &PKCS_ECDSA_P256_SHA256);
    let b = intermediate("intermediate b", &a, &PKCS_ECDSA_P384_SHA384);
    let roots = roots(&[&b, &root, &a]);
    let der = issue(&leaf_params(uri(SPIFFE)), &b);
    assert!(roots.check(&der, T0 + 1).is_ok());
}

#[test]
fn leaf_under_rsa_root() {
    let root = root("rsa root", &PKCS_RSA_SHA256);
    let roots = roots(&[&root]);
    let der = issue(&leaf_params(uri(SPIFFE)), &root);
    assert_eq!(roots.check(&der, T0 + 1).unwrap().identity, SPIFFE);
}

#[test]
fn email_and_plain_uri_identities() {
    let (ca, roots) = simple();
    let email = SanType::Rfc822Name("dev@org-a.example".try_into().unwrap());
    let der = issue(&leaf_params(email), &ca);
    assert_eq!(
        roots.check(&der, T0 + 1).unwrap().identity,
        "dev@org-a.example"
    );
    let workflow = "https://github.com/org-a/app/.github/workflows/release.yml@refs/tags/v1";
    let der = issue(&leaf_params(uri(workflow)), &ca);
    assert_eq!(roots.check(&der, T0 + 1).unwrap().identity, workflow);
}

#[test]
fn roots_from_pem_bundle_with_text_between_blocks() {
    let root = root("root", &PKCS_ECDSA_P384_SHA384);
    let inter = intermediate("intermediate", &root, &PKCS_ECDSA_P384_SHA384);
    let bundle = format!(
        "# provmesh code-signing CA\n{}\nsubject=intermediate\n{}",
        root.pem, inter.pem
    );
    let roots = CodeSigningRoots::from_pem(bundle.as_bytes()).unwrap();
    let listed: Vec<_> = roots.certificates().collect();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].trust_anchor);
    assert!(!listed[1].trust_anchor);
    assert_eq!(listed[1].subject, "O=provmesh test, CN=intermediate");
    let der = issue(&leaf_params(uri(SPIFFE)), &inter);
    assert!(roots.check(&der, T0 + 1).is_ok());
}

// ---------------------------------------------------------------------------------------
// Rejected leaves: one rule each.

#[test]
fn expired_and_not_yet_valid() {
    let (ca, roots) = simple();
    let der = issue(&leaf_params(uri(SPIFFE)), &ca);
    let after = T0 + LEAF_LIFETIME + 1;
    let err = roots.check(&der, after).unwrap_err();
    assert_eq!(
        err,
        SignerCertError::Expired {
            not_after: T0 + LEAF_LIFETIME,
            at: after
        }
    );
    assert_eq!(
        err.to_string(),
        "certificate expired at 2026-01-01T00:10:00Z (checked at 2026-01-01T00:10:01Z)"
    );
    let err = roots.check(&der, T0 - 1).unwrap_err();
    assert_eq!(
        err,
        SignerCertError::NotYetValid {
            not_before: T0,
            at: T0 - 1
        }
    );
    assert!(
        err.to_string()
            .contains("not valid until 2026-01-01T00:00:00Z")
    );
}

#[test]
fn wrong_or_missing_extended_key_usage() {
    let mut params = leaf_params(uri(SPIFFE));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    assert_eq!(check_err(params), SignerCertError::NoCodeSigning);
    let mut params = leaf_params(uri(SPIFFE));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
    assert_eq!(check_err(params), SignerCertError::NoCodeSigning);
    let mut params = leaf_params(uri(SPIFFE));
    params.extended_key_usages = vec![];
    let err = check_err(params);
    assert_eq!(err, SignerCertError::NoCodeSigning);
    assert!(
        err.to_string()
            .contains("no codeSigning extended key usage")
    );
}

#[test]
fn missing_key_usage_or_digital_signature() {
    let mut params = leaf_params(uri(SPIFFE));
    params.key_usages = vec![];
    assert_eq!(check_err(params), SignerCertError::NoKeyUsage);
    let mut params = leaf_params(uri(SPIFFE));
    params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    assert_eq!(check_err(params), SignerCertError::NoDigitalSignature);
}

#[test]
fn identity_count_and_type() {
    let mut params = leaf_params(uri(SPIFFE));
    params.subject_alt_names = vec![];
    assert_eq!(check_err(params), SignerCertError::NoIdentity);

    let mut params = leaf_params(uri(SPIFFE));
    params
        .subject_alt_names
        .push(SanType::Rfc822Name("dev@org-a.example".try_into().unwrap()));
    assert_eq!(
        check_err(params),
        SignerCertError::MultipleIdentities { count: 2 }
    );

    let params = leaf_params(SanType::DnsName(
        "builder.org-a.example".try_into().unwrap(),
    ));
    assert_eq!(
        check_err(params),
        SignerCertError::UnsupportedIdentityType { kind: "dNSName" }
    );
}

#[test]
fn malformed_identities() {
    for bad in [
        "spiffe://Org-A.example/ci",  // SPIFFE trust domains are lower case
        "spiffe://org-a.example/ci/", // trailing slash
        "spiffe://org-a.example?x=1", // query
        "no-scheme-here",
        "1http://example.org",
        "https://example.org/a b",
        "https:",
    ] {
        match check_err(leaf_params(uri(bad))) {
            SignerCertError::InvalidIdentity { identity, .. } => assert_eq!(identity, bad),
            other => panic!("{bad}: {other:?}"),
        }
    }
    for bad in ["no-at-sign", "@org-a.example", "dev@", "a@b@c"] {
        let san = SanType::Rfc822Name(bad.try_into().unwrap());
        assert!(
            matches!(
                check_err(leaf_params(san)),
                SignerCertError::InvalidIdentity { .. }
            ),
            "{bad}"
        );
    }
}

#[test]
fn ca_leaf_rejected() {
    let mut params = leaf_params(uri(SPIFFE));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    assert_eq!(check_err(params), SignerCertError::IsCa);
    let mut params = leaf_params(uri(SPIFFE));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    assert_eq!(check_err(params), SignerCertError::IsCa);
    // An explicit cA=FALSE is an end-entity certificate.
    let mut params = leaf_params(uri(SPIFFE));
    params.is_ca = IsCa::ExplicitNoCa;
    let (ca, roots) = simple();
    assert!(roots.check(&issue(&params, &ca), T0 + 1).is_ok());
}

#[test]
fn wrong_key_types() {
    let (ca, roots) = simple();
    let (der, _) = issue_with(&leaf_params(uri(SPIFFE)), &ca, &PKCS_ED25519);
    let err = roots.check(&der, T0 + 1).unwrap_err();
    assert_eq!(
        err,
        SignerCertError::UnsupportedKey {
            found: "an Ed25519 key".to_owned()
        }
    );
    assert!(err.to_string().contains("must carry an ECDSA P-256 key"));
    let (der, _) = issue_with(&leaf_params(uri(SPIFFE)), &ca, &PKCS_ECDSA_P384_SHA384);
    assert_eq!(
        roots.check(&der, T0 + 1).unwrap_err(),
        SignerCertError::UnsupportedKey {
            found: "an ECDSA P-384 key".to_owned()
        }
    );
}

#[test]
fn unknown_critical_extension_rejected() {
    let mut params = leaf_params(uri(SPIFFE));
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
    ext.set_criticality(true);
    params.custom_extensions = vec![ext];
    assert_eq!(
        check_err(params),
        SignerCertError::UnsupportedCriticalExtension {
            oid: "1.3.6.1.4.1.99999.1".to_owned()
        }
    );
    // The same extension, non-critical, is ignored (like Fulcio's issuer extensions).
    let mut params = leaf_params(uri(SPIFFE));
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 99999, 1],
        vec![5, 0],
    )];
    let (ca, roots) = simple();
    assert!(roots.check(&issue(&params, &ca), T0 + 1).is_ok());
}

#[test]
fn repeated_or_malformed_extension_rejected() {
    // RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a
    // particular extension."
    let mut params = leaf_params(uri(SPIFFE));
    let ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 2], vec![5, 0]);
    params.custom_extensions = vec![ext.clone(), ext];
    assert_eq!(
        check_err(params),
        SignerCertError::BadExtension {
            oid: "1.3.6.1.4.1.99999.2".to_owned()
        }
    );
    // A keyUsage whose content is not a BIT STRING.
    let mut params = leaf_params(uri(SPIFFE));
    params.key_usages = vec![];
    params.custom_extensions = vec![CustomExtension::from_oid_content(
        &[2, 5, 29, 15],
        vec![0x04, 0x01, 0x80],
    )];
    assert_eq!(
        check_err(params),
        SignerCertError::BadExtension {
            oid: "2.5.29.15".to_owned()
        }
    );
}

#[test]
fn issuer_not_configured() {
    let (_, roots) = simple();
    let other = root("someone else", &PKCS_ECDSA_P256_SHA256);
    let der = issue(&leaf_params(uri(SPIFFE)), &other);
    let err = roots.check(&der, T0 + 1).unwrap_err();
    assert_eq!(
        err,
        SignerCertError::UnknownIssuer {
            issuer: "O=provmesh test, CN=someone else".to_owned()
        }
    );
    assert!(
        err.to_string()
            .starts_with("certificate is not issued by a configured code-signing root")
    );
}

#[test]
fn same_issuer_name_different_key() {
    let (ca, roots) = simple();
    // An impostor CA with the configured CA's name but its own key.
    let impostor_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = leaf_params(uri(SPIFFE))
        .signed_by(&key, &Issuer::from_params(&ca.params, &impostor_key))
        .unwrap()
        .der()
        .to_vec();
    assert_eq!(
        roots.check(&der, T0 + 1).unwrap_err(),
        SignerCertError::BadSignature {
            issuer: "O=provmesh test, CN=provmesh code signing".to_owned()
        }
    );
}

#[test]
fn tampered_signature_and_trailing_bytes() {
    let (ca, roots) = simple();
    let mut der = issue(&leaf_params(uri(SPIFFE)), &ca);
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(
        roots.check(&trailing, T0 + 1).unwrap_err(),
        SignerCertError::TrailingBytes { len: 1 }
    );
    // The last byte is inside the ECDSA signature's `s` integer.
    *der.last_mut().unwrap() ^= 1;
    assert!(matches!(
        roots.check(&der, T0 + 1).unwrap_err(),
        SignerCertError::BadSignature { .. }
    ));
    let huge = vec![0x30; MAX_CERTIFICATE_DER_LEN + 1];
    assert!(matches!(
        roots.check(&huge, T0).unwrap_err(),
        SignerCertError::TooLarge { .. }
    ));
    assert!(matches!(
        roots.check(b"", T0).unwrap_err(),
        SignerCertError::Malformed { .. }
    ));
}

#[test]
fn issuing_ca_must_be_valid_at_check_time() {
    // An intermediate that expired in 2025; the root is valid.
    let root = root("root", &PKCS_ECDSA_P256_SHA256);
    let expired_at = T0 - 86_400;
    let old = intermediate_with(
        ca_params("old intermediate", T0 - 365 * 86_400, expired_at),
        &root,
        &PKCS_ECDSA_P256_SHA256,
    );
    // Loading accepts it and reports it.
    let roots = roots(&[&root, &old]);
    let stale: Vec<_> = roots.not_valid_at(T0).map(|c| c.subject.clone()).collect();
    assert_eq!(stale, ["O=provmesh test, CN=old intermediate"]);
    assert_eq!(roots.not_valid_at(expired_at).count(), 0);
    let der = issue(&leaf_params(uri(SPIFFE)), &old);
    let err = roots.check(&der, T0 + 1).unwrap_err();
    assert_eq!(
        err,
        SignerCertError::IssuerNotValid {
            ca: "O=provmesh test, CN=old intermediate".to_owned(),
            not_before: T0 - 365 * 86_400,
            not_after: expired_at,
            at: T0 + 1,
        }
    );
    assert!(
        err.to_string()
            .contains("is not valid at 2026-01-01T00:00:01Z")
    );
}

#[test]
fn trust_anchor_must_be_valid_at_check_time() {
    let root = root_with(
        ca_params("short root", T0 - 86_400, T0 + 300),
        &PKCS_ECDSA_P256_SHA256,
    );
    let inter = intermediate("intermediate", &root, &PKCS_ECDSA_P256_SHA256);
    let roots = roots(&[&root, &inter]);
    let der = issue(&leaf_params(uri(SPIFFE)), &inter);
    assert!(roots.check(&der, T0 + 300).is_ok());
    assert!(matches!(
        roots.check(&der, T0 + 301).unwrap_err(),
        SignerCertError::IssuerNotValid { ca, .. } if ca == "O=provmesh test, CN=short root"
    ));
}

#[test]
fn path_length_constraint_enforced() {
    let mut params = ca_params("root", T0 - 86_400, T0 + 86_400);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root = root_with(params, &PKCS_ECDSA_P256_SHA256);
    let inter = intermediate("intermediate", &root, &PKCS_ECDSA_P256_SHA256);
    let roots = roots(&[&root, &inter]);
    // Directly under the root: zero intermediates, allowed.
    assert!(
        roots
            .check(&issue(&leaf_params(uri(SPIFFE)), &root), T0)
            .is_ok()
    );
    assert_eq!(
        roots
            .check(&issue(&leaf_params(uri(SPIFFE)), &inter), T0)
            .unwrap_err(),
        SignerCertError::PathLengthExceeded {
            ca: "O=provmesh test, CN=root".to_owned(),
            path_len: 0,
            intermediates: 1,
        }
    );
}

#[test]
fn two_anchors_with_one_name() {
    // Like Sigstore's public-good instance: two roots named alike, keys differ; an
    // intermediate signed by either is found.
    let old = root("shared name", &PKCS_ECDSA_P384_SHA384);
    let new = root("shared name", &PKCS_ECDSA_P384_SHA384);
    let inter = intermediate("intermediate", &new, &PKCS_ECDSA_P384_SHA384);
    let roots = roots(&[&old, &new, &inter]);
    assert!(
        roots
            .check(&issue(&leaf_params(uri(SPIFFE)), &inter), T0)
            .is_ok()
    );
    assert!(
        roots
            .check(&issue(&leaf_params(uri(SPIFFE)), &old), T0)
            .is_ok()
    );
    assert!(
        roots
            .check(&issue(&leaf_params(uri(SPIFFE)), &new), T0)
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------
// Rejected root bundles.

#[test]
fn intermediate_that_chains_nowhere() {
    let configured = root("configured root", &PKCS_ECDSA_P256_SHA256);
    let other = root("other root", &PKCS_ECDSA_P256_SHA256);
    let stray = intermediate("stray intermediate", &other, &PKCS_ECDSA_P256_SHA256);
    let err = CodeSigningRoots::from_der(&[&configured.der, &stray.der]).unwrap_err();
    assert_eq!(
        err,
        RootsError::ChainsNowhere {
            position: 2,
            subject: "O=provmesh test, CN=stray intermediate".to_owned(),
            issuer: "O=provmesh test, CN=other root".to_owned(),
        }
    );
    // Same issuer name, different key: still nowhere.
    let impostor = root("configured root", &PKCS_ECDSA_P256_SHA256);
    let stray = intermediate("stray intermediate", &impostor, &PKCS_ECDSA_P256_SHA256);
    assert!(matches!(
        CodeSigningRoots::from_der(&[&configured.der, &stray.der]).unwrap_err(),
        RootsError::ChainsNowhere { .. }
    ));
    // An intermediate alone has no anchor.
    assert!(matches!(
        CodeSigningRoots::from_der(&[&stray.der]).unwrap_err(),
        RootsError::ChainsNowhere { position: 1, .. }
    ));
}

#[test]
fn chain_depth_limited() {
    let root = root("root", &PKCS_ECDSA_P256_SHA256);
    let mut chain = vec![root];
    for i in 0..4 {
        let next = intermediate(
            &format!("level {i}"),
            chain.last().unwrap(),
            &PKCS_ECDSA_P256_SHA256,
        );
        chain.push(next);
    }
    // Root + 3 intermediates is the limit.
    let ok: Vec<&[u8]> = chain[..4].iter().map(|c| c.der.as_slice()).collect();
    let roots = CodeSigningRoots::from_der(&ok).unwrap();
    assert!(
        roots
            .check(&issue(&leaf_params(uri(SPIFFE)), &chain[3]), T0)
            .is_ok()
    );
    let too_deep: Vec<&[u8]> = chain.iter().map(|c| c.der.as_slice()).collect();
    assert!(matches!(
        CodeSigningRoots::from_der(&too_deep).unwrap_err(),
        RootsError::ChainTooLong { position: 5, .. }
    ));
}

#[test]
fn non_ca_certificates_rejected() {
    let (ca, _) = simple();
    let leaf = issue(&leaf_params(uri(SPIFFE)), &ca);
    assert!(matches!(
        CodeSigningRoots::from_der(&[&ca.der, &leaf]).unwrap_err(),
        RootsError::NotCa { position: 2, .. }
    ));
    // A CA without keyCertSign.
    let mut params = ca_params("no cert sign", T0 - 86_400, T0 + 86_400);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let no_sign = root_with(params, &PKCS_ECDSA_P256_SHA256);
    assert!(matches!(
        CodeSigningRoots::from_der(&[&no_sign.der]).unwrap_err(),
        RootsError::NotCa { reason, .. } if reason.contains("keyCertSign")
    ));
}

#[test]
fn bad_self_signature_rejected() {
    // Self-issued (subject = issuer) but signed by another key.
    let params = ca_params("self issued", T0 - 86_400, T0 + 86_400);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let der = params
        .signed_by(&key, &Issuer::from_params(&params, &other))
        .unwrap()
        .der()
        .to_vec();
    assert!(matches!(
        CodeSigningRoots::from_der(&[&der]).unwrap_err(),
        RootsError::BadSelfSignature { position: 1, .. }
    ));
}

#[test]
fn critical_name_constraints_rejected_at_load() {
    let mut params = ca_params("constrained", T0 - 86_400, T0 + 86_400);
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("org-a.example".to_owned())],
        excluded_subtrees: vec![],
    });
    let ca = root_with(params, &PKCS_ECDSA_P256_SHA256);
    assert_eq!(
        CodeSigningRoots::from_der(&[&ca.der]).unwrap_err(),
        RootsError::UnsupportedCriticalExtension {
            position: 1,
            subject: "O=provmesh test, CN=constrained".to_owned(),
            oid: "2.5.29.30".to_owned(),
        }
    );
}

#[test]
fn pem_bundle_errors() {
    assert_eq!(
        CodeSigningRoots::from_pem(b"").unwrap_err(),
        RootsError::Empty
    );
    assert_eq!(
        CodeSigningRoots::from_pem(b"just a comment\n").unwrap_err(),
        RootsError::Empty
    );
    let (ca, _) = simple();
    let with_key = format!("{}{}", ca.pem, ca.key.serialize_pem());
    assert_eq!(
        CodeSigningRoots::from_pem(with_key.as_bytes()).unwrap_err(),
        RootsError::NotACertificate {
            position: 2,
            label: "PRIVATE KEY".to_owned()
        }
    );
    let truncated = &ca.pem[..ca.pem.len() - 30];
    assert!(matches!(
        CodeSigningRoots::from_pem(truncated.as_bytes()).unwrap_err(),
        RootsError::Pem { position: 1, .. }
    ));
    let many = ca.pem.repeat(MAX_ROOT_CERTIFICATES + 1);
    assert_eq!(
        CodeSigningRoots::from_pem(many.as_bytes()).unwrap_err(),
        RootsError::TooManyCertificates {
            max: MAX_ROOT_CERTIFICATES
        }
    );
    // Duplicates are dropped.
    let twice = ca.pem.repeat(2);
    assert_eq!(
        CodeSigningRoots::from_pem(twice.as_bytes())
            .unwrap()
            .certificates()
            .count(),
        1
    );
}

#[test]
fn unix_time_display() {
    assert_eq!(UnixTime(0).to_string(), "1970-01-01T00:00:00Z");
    assert_eq!(UnixTime(T0).to_string(), "2026-01-01T00:00:00Z");
    assert_eq!(UnixTime(951_782_400).to_string(), "2000-02-29T00:00:00Z");
    assert_eq!(UnixTime(-1).to_string(), "1969-12-31T23:59:59Z");
    assert_eq!(
        UnixTime(253_402_300_799).to_string(),
        "9999-12-31T23:59:59Z"
    );
}

// ---------------------------------------------------------------------------------------
// The verified-certificate cache.

#[test]
fn cache_hit_miss_and_time_recheck() {
    let (ca, roots) = simple();
    let der = issue(&leaf_params(uri(SPIFFE)), &ca);
    let cache = VerifiedCertCache::new(8);
    let first = cache.check_cached(&roots, &der, T0 + 1).unwrap();
    assert_eq!(first, roots.check(&der, T0 + 1).unwrap());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (0, 1, 1));
    assert_eq!(cache.check_cached(&roots, &der, T0 + 2).unwrap(), first);
    assert_eq!(cache.stats().hits, 1);
    // A hit still re-checks the leaf's validity window.
    assert_eq!(
        cache
            .check_cached(&roots, &der, T0 + LEAF_LIFETIME + 1)
            .unwrap_err(),
        SignerCertError::Expired {
            not_after: T0 + LEAF_LIFETIME,
            at: T0 + LEAF_LIFETIME + 1
        }
    );
    assert_eq!(
        cache.check_cached(&roots, &der, T0 - 1).unwrap_err(),
        SignerCertError::NotYetValid {
            not_before: T0,
            at: T0 - 1
        }
    );
    assert_eq!(cache.stats().hits, 3);
    // A byte changed is another key: a miss, and the full check rejects it.
    let mut tampered = der.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(matches!(
        cache.check_cached(&roots, &tampered, T0 + 1).unwrap_err(),
        SignerCertError::BadSignature { .. }
    ));
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.entries), (2, 1));
}

#[test]
fn cache_rechecks_issuer_window_on_hit() {
    let root = root("root", &PKCS_ECDSA_P256_SHA256);
    let inter = intermediate_with(
        ca_params("short intermediate", T0 - 86_400, T0 + 100),
        &root,
        &PKCS_ECDSA_P256_SHA256,
    );
    let roots = roots(&[&root, &inter]);
    let der = issue(&leaf_params(uri(SPIFFE)), &inter);
    let cache = VerifiedCertCache::new(4);
    assert!(cache.check_cached(&roots, &der, T0 + 1).is_ok());
    // The leaf is still valid at T0 + 200 but its issuer is not.
    assert!(matches!(
        cache.check_cached(&roots, &der, T0 + 200).unwrap_err(),
        SignerCertError::IssuerNotValid { .. }
    ));
    assert_eq!(
        cache.check_cached(&roots, &der, T0 + 200),
        roots.check(&der, T0 + 200)
    );
}

#[test]
fn cache_evicts_within_capacity() {
    let (ca, roots) = simple();
    let leaves: Vec<Vec<u8>> = (0..10)
        .map(|i| issue(&leaf_params(uri(&format!("{SPIFFE}/{i}"))), &ca))
        .collect();
    let cache = VerifiedCertCache::new(3);
    assert_eq!(cache.capacity(), 3);
    for (i, der) in leaves.iter().enumerate() {
        let signer = cache.check_cached(&roots, der, T0).unwrap();
        assert_eq!(signer.identity, format!("{SPIFFE}/{i}"));
        assert!(cache.stats().entries <= 3);
    }
    assert_eq!(cache.stats().misses, 10);
    // The newest is held, the oldest was evicted.
    cache.check_cached(&roots, &leaves[9], T0).unwrap();
    assert_eq!(cache.stats().hits, 1);
    cache.check_cached(&roots, &leaves[0], T0).unwrap();
    assert_eq!(cache.stats().misses, 11);
    assert!(cache.stats().entries <= 3);

    // A certificate in steady use survives a stream of others.
    let cache = VerifiedCertCache::new(4);
    for der in &leaves[1..] {
        cache.check_cached(&roots, &leaves[0], T0).unwrap();
        cache.check_cached(&roots, der, T0).unwrap();
    }
    assert_eq!(cache.stats().hits, 8);

    // Capacity 0 caches nothing.
    let cache = VerifiedCertCache::new(0);
    cache.check_cached(&roots, &leaves[0], T0).unwrap();
    cache.check_cached(&roots, &leaves[0], T0).unwrap();
    assert_eq!(cache.stats().misses, 2);
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn cache_is_per_root_set() {
    let (ca, roots) = simple();
    let der = issue(&leaf_params(uri(SPIFFE)), &ca);
    let cache = VerifiedCertCache::new(8);
    assert!(cache.check_cached(&roots, &der, T0).is_ok());
    // Reconfigured with another CA of the same name: the cached success must not be used.
    let (_, other_roots) = simple();
    assert!(matches!(
        cache.check_cached(&other_roots, &der, T0).unwrap_err(),
        SignerCertError::BadSignature { .. }
    ));
    assert_eq!(cache.stats().entries, 0);
}

#[test]
fn cache_shared_between_threads() {
    let (ca, roots) = simple();
    let leaves: Vec<Vec<u8>> = (0..4)
        .map(|i| issue(&leaf_params(uri(&format!("{SPIFFE}/{i}"))), &ca))
        .collect();
    let cache = VerifiedCertCache::new(16);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..25 {
                    for (i, der) in leaves.iter().enumerate() {
                        let signer = cache.check_cached(&roots, der, T0).unwrap();
                        assert_eq!(signer.identity, format!("{SPIFFE}/{i}"));
                    }
                }
            });
        }
    });
    let stats = cache.stats();
    assert_eq!(stats.hits + stats.misses, 400);
    assert!(stats.misses >= 4);
    assert_eq!(stats.entries, 4);
}

// ---------------------------------------------------------------------------------------
// Real Fulcio certificates.

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/vectors/sigstore/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Every CA certificate of a TrustedRoot vector.
fn fulcio_roots(trusted_root: &str) -> CodeSigningRoots {
    let (root, _) =
        parse_trusted_root(&vector(trusted_root), DEFAULT_MAX_TRUSTED_ROOT_LEN).unwrap();
    let ders: Vec<Vec<u8>> = root
        .certificate_authorities
        .iter()
        .flat_map(|ca| ca.cert_chain.as_ref().unwrap().certificates.iter())
        .map(|c| c.raw_bytes.clone())
        .collect();
    assert!(ders.len() >= 2);
    CodeSigningRoots::from_der(&ders).unwrap()
}

fn bundle_leaf(name: &str) -> Vec<u8> {
    ParsedBundle::from_json(&vector(name), DEFAULT_MAX_BUNDLE_LEN)
        .unwrap()
        .leaf_certificate_der()
        .unwrap()
        .to_vec()
}

/// The not-before time of a certificate, read independently of the module under test.
fn not_before(der: &[u8]) -> i64 {
    use x509_parser::prelude::FromDer as _;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    cert.validity().not_before.timestamp()
}

/// Checks real Fulcio leaves against the CA of `trusted_root`: each is admitted inside
/// its window with its SAN as identity, rejected one second after, and the cache agrees.
fn check_real_leaves(trusted_root: &str, leaves: &[(&str, &str)]) {
    let roots = fulcio_roots(trusted_root);
    for &(bundle, identity) in leaves {
        let der = bundle_leaf(bundle);
        let at = not_before(&der) + 60;
        let signer = roots
            .check(&der, at)
            .unwrap_or_else(|e| panic!("{bundle}: {e}"));
        assert_eq!(signer.identity, identity, "{bundle}");
        assert_eq!(signer.public_key_sec1.len(), 65);
        assert_eq!(signer.public_key_sec1[0], 4);
        // Fulcio leaves live ten minutes.
        assert_eq!(signer.not_after - signer.not_before, 600, "{bundle}");
        assert!(matches!(
            roots.check(&der, signer.not_after + 1).unwrap_err(),
            SignerCertError::Expired { .. }
        ));
        let cache = VerifiedCertCache::new(2);
        assert_eq!(cache.check_cached(&roots, &der, at).unwrap(), signer);
        assert_eq!(cache.check_cached(&roots, &der, at).unwrap(), signer);
        assert_eq!(cache.stats().hits, 1);
    }
}

// Which instance issued which vector was confirmed independently with
// `openssl verify -partial_chain -no_check_time` against each trusted root's chain.

#[test]
fn real_fulcio_leaves_chain_to_public_good_root() {
    // The public-good TrustedRoot holds two self-signed roots both named
    // "O=sigstore.dev, CN=sigstore" and the P-384 "sigstore-intermediate".
    let roots = fulcio_roots("public-good.trusted_root.json");
    assert_eq!(roots.certificates().filter(|c| c.trust_anchor).count(), 2);
    check_real_leaves(
        "public-good.trusted_root.json",
        &[
            (
                "bundle_v3_github.whl.sigstore",
                "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
            ),
            (
                "sigstore-js-2.1.0-bundle.json",
                "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
            ),
            (
                "reusable-workflow-attestation.sigstore.json",
                "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@09b495c3f12c7881b3cc17209a327792065c1a1d",
            ),
        ],
    );
}

#[test]
fn real_fulcio_leaves_chain_to_staging_root() {
    check_real_leaves(
        "staging.trusted_root.json",
        &[
            ("bundle_v3.txt.sigstore", "william@yossarian.net"),
            (
                "tsa.bundle.txt.sigstore",
                "alexis.challande@trailofbits.com",
            ),
            ("staging-rekor-v2.txt.sigstore.json", "jku@goto.fi"),
            (
                "a.dsse.staging-rekor-v2.txt.sigstore.json",
                "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
            ),
        ],
    );
}

#[test]
fn real_leaves_of_one_instance_fail_under_the_other() {
    // Staging's intermediate has public-good's name and another key: same issuer name,
    // signature by a different key.
    let public_good = fulcio_roots("public-good.trusted_root.json");
    let staging = fulcio_roots("staging.trusted_root.json");
    let issuer = "O=sigstore.dev, CN=sigstore-intermediate".to_owned();
    let der = bundle_leaf("staging-rekor-v2.txt.sigstore.json");
    assert_eq!(
        public_good.check(&der, not_before(&der) + 60).unwrap_err(),
        SignerCertError::BadSignature {
            issuer: issuer.clone()
        }
    );
    let der = bundle_leaf("bundle_v3_github.whl.sigstore");
    assert_eq!(
        staging.check(&der, not_before(&der) + 60).unwrap_err(),
        SignerCertError::BadSignature { issuer }
    );
}

#[test]
fn real_p384_fulcio_leaf_rejected_for_key_type() {
    // An older staging leaf with a P-384 key: it chains, but admission needs P-256.
    let der = bundle_leaf("bundle.txt.sigstore");
    let roots = fulcio_roots("staging.trusted_root.json");
    assert_eq!(
        roots.check(&der, not_before(&der) + 60).unwrap_err(),
        SignerCertError::UnsupportedKey {
            found: "an ECDSA P-384 key".to_owned()
        }
    );
}

// ---------------------------------------------------------------------------------------
// Hostile input.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), at in any::<i64>()) {
        let (_, roots) = shared();
        prop_assert!(roots.check(&bytes, at).is_err());
        let cache = VerifiedCertCache::new(2);
        prop_assert!(cache.check_cached(roots, &bytes, at).is_err());
        let _ = CodeSigningRoots::from_pem(&bytes);
        let _ = CodeSigningRoots::from_der(&[&bytes]);
    }

    #[test]
    fn mutated_leaf_never_panics(index in any::<prop::sample::Index>(), xor in 1u8..=255, at in any::<i64>()) {
        let (leaf, roots) = shared();
        let mut der = leaf.clone();
        let i = index.index(der.len());
        der[i] ^= xor;
        // The signature covers the TBS, so a changed byte is rejected or, if it only
        // touched the outer encoding, certifies exactly the same signer.
        if let Ok(signer) = roots.check(&der, at) {
            prop_assert_eq!(Ok(signer), roots.check(leaf, at));
        }
    }

    #[test]
    fn any_time_gives_window_answer(at in any::<i64>()) {
        let (leaf, roots) = shared();
        let result = roots.check(leaf, at);
        prop_assert_eq!(result.is_ok(), (T0..=T0 + LEAF_LIFETIME).contains(&at));
    }
}

/// One leaf and its roots, built once for the property tests.
fn shared() -> (&'static Vec<u8>, &'static CodeSigningRoots) {
    static SHARED: std::sync::OnceLock<(Vec<u8>, CodeSigningRoots)> = std::sync::OnceLock::new();
    let (leaf, roots) = SHARED.get_or_init(|| {
        let (ca, roots) = simple();
        (issue(&leaf_params(uri(SPIFFE)), &ca), roots)
    });
    (leaf, roots)
}
