//! The code-signing CA (`ca`): issued leaves carry exactly the Fulcio profile stock
//! Sigstore verifiers demand (checked extension by extension with x509-parser); deleting
//! the SCT extension from the final TBS (with a DER walker written here, independent of
//! the crate's) gives back the precertificate TBS byte for byte; the SCT verifies over it
//! (also with the RFC 6962 signed struct assembled here) and fails on any change; the
//! leaf is admitted by the domain log's `CodeSigningRoots`; bad requests and bad CA
//! material are refused with their own errors; SCT encoding round-trips; real Fulcio
//! leaves' SCTs verify with the public-good and staging CT keys. When `openssl` or
//! Python `cryptography` (≥ 45, the WebPKI verifier sigstore-python 4 uses) is
//! installed, they verify the chain and the SCT too.

// Helpers outside `#[test]` functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING,
    EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair as _, UnparsedPublicKey,
};
use provmesh_protocol::ca::{
    CaLoadError, CodeSigningIssuer, CtKeyError, CtLogKey, IssueError, IssueRequest,
    IssuedCertificate, MAX_LEAF_VALIDITY_SECONDS, OID_CT_PRECERT_SCTS, RootCreateError,
    SctDecodeError, SctListError, SctVerifyError, SignedCertificateTimestamp,
    code_signing_root_name, create_code_signing_root, decode_sct_list, embedded_scts,
    encode_sct_list, verify_sct,
};
use provmesh_protocol::log::signer_cert::{CodeSigningRoots, SignerCertError};
use provmesh_protocol::sigstore::{
    DEFAULT_MAX_BUNDLE_LEN, DEFAULT_MAX_TRUSTED_ROOT_LEN, ParsedBundle, parse_trusted_root,
};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use sha2::{Digest as _, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::X509Version;

/// 2026-01-01T00:00:00Z: every leaf's notBefore.
const T0: i64 = 1_767_225_600;
const TRUST_DOMAIN: &str = "org-a.example";
const SPIFFE: &str = "spiffe://org-a.example/ns/ci/sa/builder";
const OIDC_ISSUER: &str = "spiffe://org-a.example";
const SERIAL: [u8; 20] = [
    0xf1, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
    0x11, 0x12, 0x13, 0x14,
];
/// The SCT time: a quarter second after notBefore.
const SCT_MS: u64 = 1_767_225_600_250;

// ---------------------------------------------------------------------------------------
// Fixtures.

fn pkcs8(alg: &'static EcdsaSigningAlgorithm) -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn key_pair(alg: &'static EcdsaSigningAlgorithm, pkcs8: &[u8]) -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(alg, pkcs8).unwrap()
}

fn spki(alg: &'static EcdsaSigningAlgorithm, pkcs8: &[u8]) -> Vec<u8> {
    key_pair(alg, pkcs8)
        .public_key()
        .as_der()
        .unwrap()
        .as_ref()
        .to_vec()
}

fn trust_domain() -> TrustDomain {
    TrustDomain::parse(TRUST_DOMAIN).unwrap()
}

fn spiffe_id() -> SpiffeId {
    SpiffeId::parse(SPIFFE).unwrap()
}

/// A domain CA: root certificate and key, CT key, subject key and the issuer.
struct Ca {
    root_der: Vec<u8>,
    root_key: Vec<u8>,
    root_alg: &'static EcdsaSigningAlgorithm,
    ct_key: Vec<u8>,
    issuer: CodeSigningIssuer,
    subject_key: Vec<u8>,
    subject_spki: Vec<u8>,
}

impl Ca {
    fn new(root_alg: &'static EcdsaSigningAlgorithm) -> Ca {
        let root_key = pkcs8(root_alg);
        let root_der = create_code_signing_root(
            &trust_domain(),
            &root_key,
            T0 - 86_400,
            T0 + 365 * 86_400,
            &[0x5a; 16],
        )
        .unwrap();
        let ct_key = pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING);
        let issuer = CodeSigningIssuer::new(
            trust_domain(),
            &[&root_der],
            &root_key,
            CtLogKey::from_pkcs8_der(&ct_key).unwrap(),
        )
        .unwrap();
        let subject_key = pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING);
        let subject_spki = spki(&ECDSA_P256_SHA256_ASN1_SIGNING, &subject_key);
        Ca {
            root_der,
            root_key,
            root_alg,
            ct_key,
            issuer,
            subject_key,
            subject_spki,
        }
    }

    fn root_spki(&self) -> Vec<u8> {
        spki(self.root_alg, &self.root_key)
    }

    fn ct_spki(&self) -> Vec<u8> {
        spki(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.ct_key)
    }

    fn issue(&self) -> IssuedCertificate {
        let id = spiffe_id();
        self.issuer
            .issue(&request(&self.subject_spki, &id))
            .unwrap()
    }
}

fn request<'a>(spki: &'a [u8], id: &'a SpiffeId) -> IssueRequest<'a> {
    IssueRequest {
        subject_public_key_spki_der: spki,
        spiffe_id: id,
        oidc_issuer: OIDC_ISSUER,
        not_before_unix: T0,
        validity_seconds: MAX_LEAF_VALIDITY_SECONDS,
        serial: &SERIAL,
        sct_timestamp_ms: SCT_MS,
    }
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = X509Certificate::from_der(der).unwrap();
    assert!(rest.is_empty());
    cert
}

// ---------------------------------------------------------------------------------------
// A DER walker of this test's own, to delete an extension from a TBSCertificate.

/// (tag, header length, content length) of the element at the start of `input`.
fn header(input: &[u8]) -> (u8, usize, usize) {
    let tag = input[0];
    let first = input[1];
    if first < 0x80 {
        return (tag, 2, usize::from(first));
    }
    let count = usize::from(first & 0x7f);
    let len = input[2..2 + count]
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    (tag, 2 + count, len)
}

fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// Splits a constructed content into its elements' full encodings.
fn elements(mut content: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (_, h, l) = header(content);
        out.push(&content[..h + l]);
        content = &content[h + l..];
    }
    out
}

fn content(element: &[u8]) -> &[u8] {
    let (_, h, l) = header(element);
    assert_eq!(h + l, element.len());
    &element[h..]
}

/// The TBS with every extension whose encoding starts with `oid_der` (after the
/// SEQUENCE header) removed; also returns how many were removed.
fn remove_extension(tbs: &[u8], oid_der: &[u8]) -> (Vec<u8>, usize) {
    let fields = elements(content(tbs));
    let (last, rest) = fields.split_last().unwrap();
    assert_eq!(last[0], 0xa3, "the last TBS field is [3] extensions");
    let extensions = content(content(last));
    let mut kept = Vec::new();
    let mut removed = 0;
    for extension in elements(extensions) {
        if content(extension).starts_with(oid_der) {
            removed += 1;
        } else {
            kept.extend_from_slice(extension);
        }
    }
    let mut body: Vec<u8> = rest.concat();
    body.extend(encode(0xa3, &encode(0x30, &kept)));
    (encode(0x30, &body), removed)
}

/// DER of OID 1.3.6.1.4.1.11129.2.4.2, spelled out here.
const SCT_OID_DER: [u8; 12] = [
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x02,
];

/// RFC 6962 §3.2 signed data for a precert SCT, assembled independently of the crate.
fn rfc6962_precert_input(timestamp_ms: u64, issuer_spki: &[u8], tbs: &[u8]) -> Vec<u8> {
    let mut message = vec![0u8, 0u8]; // v1, certificate_timestamp
    message.extend(timestamp_ms.to_be_bytes());
    message.extend([0u8, 1u8]); // precert_entry
    message.extend(Sha256::digest(issuer_spki));
    message.extend(&u32::try_from(tbs.len()).unwrap().to_be_bytes()[1..]);
    message.extend(tbs);
    message.extend([0u8, 0u8]); // no extensions
    message
}

// ---------------------------------------------------------------------------------------
// The profile.

#[test]
fn leaf_has_the_fulcio_profile() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let issued = ca.issue();
    let cert = parse(&issued.certificate_der);
    let root = parse(&ca.root_der);

    assert_eq!(cert.version(), X509Version::V3);
    // Empty subject (an empty RDNSequence), issuer = the root's subject, byte for byte.
    assert_eq!(cert.subject().as_raw(), &[0x30, 0x00]);
    assert_eq!(cert.issuer().as_raw(), root.subject().as_raw());
    assert_eq!(
        cert.signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA256
    );
    // Serial: the caller's bytes with the top bit cleared, positive, 20 octets.
    let mut serial = SERIAL.to_vec();
    serial[0] &= 0x7f;
    assert_eq!(issued.serial, serial);
    assert_eq!(cert.raw_serial(), &serial[..]);
    // Validity: exactly the request.
    assert_eq!(cert.validity().not_before.timestamp(), T0);
    assert_eq!(cert.validity().not_after.timestamp(), T0 + 600);
    // The subject key is the request's SubjectPublicKeyInfo.
    assert_eq!(cert.public_key().raw, &ca.subject_spki[..]);
    assert_eq!(issued.chain, vec![ca.root_der.clone()]);

    let extensions = cert.extensions();
    let oids: Vec<String> = extensions.iter().map(|e| e.oid.to_id_string()).collect();
    assert_eq!(
        oids,
        [
            "2.5.29.35",               // authorityKeyIdentifier
            "2.5.29.17",               // subjectAltName
            "2.5.29.15",               // keyUsage
            "2.5.29.37",               // extKeyUsage
            "2.5.29.14",               // subjectKeyIdentifier
            "1.3.6.1.4.1.57264.1.1",   // Fulcio issuer (deprecated)
            "1.3.6.1.4.1.57264.1.8",   // Fulcio issuer V2
            "1.3.6.1.4.1.11129.2.4.2", // SCT list, last, once
        ]
    );
    let root_ski = root
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .unwrap();
    let point = &cert.public_key().subject_public_key.data;
    for ext in extensions {
        let oid = ext.oid.to_id_string();
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                assert!(!ext.critical);
                assert_eq!(aki.key_identifier.as_ref().unwrap().0, &root_ski[..]);
                assert!(aki.authority_cert_issuer.is_none());
                assert!(aki.authority_cert_serial.is_none());
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                assert!(ext.critical, "SAN must be critical with an empty subject");
                assert_eq!(san.general_names, [GeneralName::URI(SPIFFE)]);
            }
            ParsedExtension::KeyUsage(ku) => {
                assert!(ext.critical);
                assert!(ku.digital_signature());
                assert_eq!(ku.flags.count_ones(), 1, "digitalSignature only");
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                assert!(!ext.critical);
                assert!(eku.code_signing);
                assert!(!eku.any && !eku.server_auth && !eku.client_auth);
                assert!(eku.other.is_empty());
            }
            ParsedExtension::SubjectKeyIdentifier(ski) => {
                assert!(!ext.critical);
                // RFC 7093 method 1.
                assert_eq!(ski.0, &Sha256::digest(point)[..20]);
            }
            ParsedExtension::SCT(scts) => {
                assert!(!ext.critical);
                assert_eq!(scts.len(), 1, "exactly one embedded SCT");
                let sct = &scts[0];
                assert_eq!(sct.version.0, 0);
                assert_eq!(sct.id.key_id, &issued.sct.log_id());
                assert_eq!(sct.timestamp, SCT_MS);
                assert!(sct.extensions.0.is_empty());
                assert_eq!(
                    (sct.signature.hash_alg_id, sct.signature.sign_alg_id),
                    (4, 3)
                );
                assert_eq!(sct.signature.data, issued.sct.signature());
            }
            _ if oid == "1.3.6.1.4.1.57264.1.1" => {
                assert!(!ext.critical);
                assert_eq!(ext.value, OIDC_ISSUER.as_bytes(), "raw bytes, no DER");
            }
            _ if oid == "1.3.6.1.4.1.57264.1.8" => {
                assert!(!ext.critical);
                let mut utf8 = vec![0x0c, OIDC_ISSUER.len() as u8];
                utf8.extend_from_slice(OIDC_ISSUER.as_bytes());
                assert_eq!(ext.value, &utf8[..], "DER UTF8String");
            }
            other => panic!("unexpected extension {oid}: {other:?}"),
        }
    }
    // The CT log id is SHA-256 of the CT key's SubjectPublicKeyInfo.
    assert_eq!(
        issued.sct.log_id(),
        <[u8; 32]>::from(Sha256::digest(ca.ct_spki()))
    );
    assert_eq!(
        ca.issuer.ct_log_key().public_key_spki_der(),
        &ca.ct_spki()[..]
    );
}

#[test]
fn leaf_signed_by_a_p384_root_uses_ecdsa_sha384() {
    let ca = Ca::new(&ECDSA_P384_SHA384_ASN1_SIGNING);
    let issued = ca.issue();
    let cert = parse(&issued.certificate_der);
    assert_eq!(
        cert.signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA384
    );
    assert_eq!(
        parse(&ca.root_der).signature_algorithm.algorithm,
        OID_SIG_ECDSA_WITH_SHA384
    );
    verify_sct(
        &issued.sct,
        &ca.ct_spki(),
        &issued.precertificate_tbs_der,
        &ca.root_spki(),
    )
    .unwrap();
    let roots = CodeSigningRoots::from_der(&[&ca.root_der]).unwrap();
    assert_eq!(
        roots
            .check(&issued.certificate_der, T0 + 1)
            .unwrap()
            .identity,
        SPIFFE
    );
}

// ---------------------------------------------------------------------------------------
// The precertificate and its SCT.

#[test]
fn removing_the_sct_extension_gives_the_precertificate_tbs() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let issued = ca.issue();
    let cert = parse(&issued.certificate_der);
    let final_tbs = cert.tbs_certificate.as_ref();

    let (rebuilt, removed) = remove_extension(final_tbs, &SCT_OID_DER);
    assert_eq!(removed, 1);
    assert_eq!(rebuilt, issued.precertificate_tbs_der);
    assert_ne!(final_tbs, &issued.precertificate_tbs_der[..]);
    // The precertificate TBS parses as a TBS of its own, without the SCT extension.
    let (_, precert) =
        x509_parser::certificate::TbsCertificate::from_der(&issued.precertificate_tbs_der).unwrap();
    assert!(
        precert
            .extensions()
            .iter()
            .all(|e| e.oid.to_id_string() != "1.3.6.1.4.1.11129.2.4.2")
    );
    assert_eq!(precert.extensions().len(), cert.extensions().len() - 1);

    // The crate's verifier-side reading agrees.
    let embedded = embedded_scts(&issued.certificate_der).unwrap();
    assert_eq!(
        embedded.precertificate_tbs_der,
        issued.precertificate_tbs_der
    );
    assert_eq!(embedded.scts, std::slice::from_ref(&issued.sct));
}

#[test]
fn sct_verifies_over_the_precertificate_and_nothing_else() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let issued = ca.issue();
    let tbs = &issued.precertificate_tbs_der;
    let (ct_spki, root_spki) = (ca.ct_spki(), ca.root_spki());
    verify_sct(&issued.sct, &ct_spki, tbs, &root_spki).unwrap();

    // The RFC 6962 §3.2 struct, assembled here, verifies with aws-lc-rs directly.
    let message = rfc6962_precert_input(SCT_MS, &root_spki, tbs);
    let ct_point = key_pair(&ECDSA_P256_SHA256_ASN1_SIGNING, &ca.ct_key)
        .public_key()
        .as_ref()
        .to_vec();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &ct_point)
        .verify(&message, issued.sct.signature())
        .unwrap();

    // One changed byte anywhere in the TBS breaks it.
    for position in [0, 1, 7, tbs.len() / 3, tbs.len() / 2, tbs.len() - 1] {
        let mut changed = tbs.clone();
        changed[position] ^= 0x01;
        assert_eq!(
            verify_sct(&issued.sct, &ct_spki, &changed, &root_spki).unwrap_err(),
            SctVerifyError::BadSignature,
            "byte {position}"
        );
    }
    // So do the final TBS, another issuer key, another timestamp.
    let cert = parse(&issued.certificate_der);
    assert_eq!(
        verify_sct(
            &issued.sct,
            &ct_spki,
            cert.tbs_certificate.as_ref(),
            &root_spki
        )
        .unwrap_err(),
        SctVerifyError::BadSignature
    );
    assert_eq!(
        verify_sct(&issued.sct, &ct_spki, tbs, &ca.subject_spki).unwrap_err(),
        SctVerifyError::BadSignature
    );
    let mut encoded = issued.sct.encode();
    encoded[1 + 32 + 7] ^= 0x01; // the timestamp's last byte
    let retimed = SignedCertificateTimestamp::decode(&encoded).unwrap();
    assert_eq!(retimed.timestamp_ms(), SCT_MS ^ 1);
    assert_eq!(
        verify_sct(&retimed, &ct_spki, tbs, &root_spki).unwrap_err(),
        SctVerifyError::BadSignature
    );
    // Another CT key: the log id does not match.
    let other = spki(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING),
    );
    assert!(matches!(
        verify_sct(&issued.sct, &other, tbs, &root_spki).unwrap_err(),
        SctVerifyError::WrongLog { .. }
    ));
    // A P-384 key whose SHA-256 the SCT names is still not a P-256 CT key.
    let p384 = spki(
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        &pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING),
    );
    let p384_sct = CtLogKey::from_pkcs8_der(&ca.ct_key)
        .unwrap()
        .sign_precert_sct(tbs, &root_spki, SCT_MS)
        .unwrap();
    assert_ne!(p384_sct.log_id(), <[u8; 32]>::from(Sha256::digest(&p384)));
    assert!(matches!(
        CtLogKey::from_pkcs8_der(&pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING)).unwrap_err(),
        CtKeyError::NotP256Pkcs8 { .. }
    ));
}

#[test]
fn sct_encoding_round_trips_and_rejects_bad_bytes() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let sct = ca.issue().sct;
    let encoded = sct.encode();
    // v1 | log id | timestamp | u16 0 | sha256 ecdsa | u16 len | signature
    assert_eq!(encoded[0], 0);
    assert_eq!(encoded[1..33], sct.log_id());
    assert_eq!(encoded[33..41], SCT_MS.to_be_bytes());
    assert_eq!(encoded[41..43], [0, 0]);
    assert_eq!(encoded[43..45], [4, 3]);
    let sig_len = usize::from(u16::from_be_bytes([encoded[45], encoded[46]]));
    assert_eq!(&encoded[47..], sct.signature());
    assert_eq!(sig_len, sct.signature().len());
    assert_eq!(SignedCertificateTimestamp::decode(&encoded).unwrap(), sct);

    let list = encode_sct_list(&[sct.clone(), sct.clone()]).unwrap();
    let entry = encoded.len();
    assert_eq!(
        usize::from(u16::from_be_bytes([list[0], list[1]])),
        2 * (2 + entry)
    );
    assert_eq!(usize::from(u16::from_be_bytes([list[2], list[3]])), entry);
    assert_eq!(decode_sct_list(&list).unwrap(), [sct.clone(), sct.clone()]);
    assert_eq!(encode_sct_list(&[]).unwrap_err(), SctListError::Empty);

    let mut v2 = encoded.clone();
    v2[0] = 1;
    assert_eq!(
        SignedCertificateTimestamp::decode(&v2).unwrap_err(),
        SctDecodeError::UnsupportedVersion(1)
    );
    assert_eq!(
        SignedCertificateTimestamp::decode(&encoded[..encoded.len() - 1]).unwrap_err(),
        SctDecodeError::Truncated
    );
    let mut longer = encoded.clone();
    longer.push(0);
    assert_eq!(
        SignedCertificateTimestamp::decode(&longer).unwrap_err(),
        SctDecodeError::TrailingBytes(1)
    );
    assert_eq!(decode_sct_list(&[0, 0]).unwrap_err(), SctDecodeError::Empty);
    assert_eq!(
        decode_sct_list(&[0, 2, 0, 0]).unwrap_err(),
        SctDecodeError::Empty
    );
    assert_eq!(
        decode_sct_list(&list[..list.len() - 1]).unwrap_err(),
        SctDecodeError::Truncated
    );
}

// ---------------------------------------------------------------------------------------
// The domain log admits the leaf.

#[test]
fn leaf_passes_the_logs_signer_certificate_check() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let issued = ca.issue();
    let roots = CodeSigningRoots::from_der(&[&ca.root_der]).unwrap();
    let subject_point = key_pair(&ECDSA_P256_SHA256_ASN1_SIGNING, &ca.subject_key)
        .public_key()
        .as_ref()
        .to_vec();
    for at in [T0, T0 + 300, T0 + 600] {
        let signer = roots.check(&issued.certificate_der, at).unwrap();
        assert_eq!(signer.identity, SPIFFE);
        assert_eq!(signer.public_key_sec1, subject_point);
        assert_eq!((signer.not_before, signer.not_after), (T0, T0 + 600));
    }
    assert!(matches!(
        roots.check(&issued.certificate_der, T0 + 601).unwrap_err(),
        SignerCertError::Expired { .. }
    ));
    // Another domain's root does not admit it.
    let other = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let other_roots = CodeSigningRoots::from_der(&[&other.root_der]).unwrap();
    assert!(matches!(
        other_roots.check(&issued.certificate_der, T0).unwrap_err(),
        SignerCertError::BadSignature { .. }
    ));
}

// ---------------------------------------------------------------------------------------
// Refusals.

#[test]
fn refuses_validity_over_ten_minutes_or_zero() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let id = spiffe_id();
    let mut req = request(&ca.subject_spki, &id);
    req.validity_seconds = 601;
    assert_eq!(
        ca.issuer.issue(&req).unwrap_err(),
        IssueError::ValidityTooLong { requested: 601 }
    );
    req.validity_seconds = u32::MAX;
    assert!(matches!(
        ca.issuer.issue(&req).unwrap_err(),
        IssueError::ValidityTooLong { .. }
    ));
    req.validity_seconds = 0;
    assert_eq!(ca.issuer.issue(&req).unwrap_err(), IssueError::ZeroValidity);
    req.validity_seconds = 60;
    let short = ca.issuer.issue(&req).unwrap();
    assert_eq!(
        parse(&short.certificate_der)
            .validity()
            .not_after
            .timestamp(),
        T0 + 60
    );
}

#[test]
fn refuses_subject_keys_other_than_p256() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let id = spiffe_id();
    let p384 = spki(
        &ECDSA_P384_SHA384_ASN1_SIGNING,
        &pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING),
    );
    let ed25519 = rcgen::PublicKeyData::subject_public_key_info(
        &rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
    );
    for (name, key) in [("P-384", p384), ("Ed25519", ed25519)] {
        match ca.issuer.issue(&request(&key, &id)).unwrap_err() {
            IssueError::UnsupportedSubjectKey { found } => {
                assert!(found.contains(name) || name == "Ed25519", "{found}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // A compressed P-256 point: 0x02/0x03 ‖ X, re-wrapped in the P-256 SPKI header.
    let uncompressed = key_pair(&ECDSA_P256_SHA256_ASN1_SIGNING, &ca.subject_key)
        .public_key()
        .as_ref()
        .to_vec();
    let mut compressed_point = vec![0x02 | (uncompressed[64] & 1)];
    compressed_point.extend_from_slice(&uncompressed[1..33]);
    let mut bit_string = vec![0x00];
    bit_string.extend(&compressed_point);
    let algorithm = &ca.subject_spki[2..2 + 2 + ca.subject_spki[3] as usize];
    let mut body = algorithm.to_vec();
    body.extend(encode(0x03, &bit_string));
    let compressed = encode(0x30, &body);
    assert!(matches!(
        ca.issuer.issue(&request(&compressed, &id)).unwrap_err(),
        IssueError::UnsupportedSubjectKey { .. }
    ));
}

#[test]
fn refuses_malformed_subject_keys() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let id = spiffe_id();
    let good = &ca.subject_spki;
    let mut trailing = good.clone();
    trailing.push(0);
    let mut off_curve = good.clone();
    let last = off_curve.len() - 1;
    off_curve[last] ^= 0x01; // Y no longer matches X
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("garbage", b"not a key".to_vec()),
        ("truncated", good[..good.len() - 1].to_vec()),
        ("trailing byte", trailing),
        ("point off the curve", off_curve),
        ("huge", vec![0x30; 20_000]),
    ];
    for (name, key) in cases {
        match ca.issuer.issue(&request(&key, &id)).unwrap_err() {
            IssueError::MalformedSubjectKey { .. } => {}
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn refuses_bad_serials_identities_issuers_and_times() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let id = spiffe_id();
    let issue = |req: &IssueRequest<'_>| ca.issuer.issue(req).unwrap_err();
    let base = request(&ca.subject_spki, &id);

    assert_eq!(
        issue(&IssueRequest {
            serial: &SERIAL[..15],
            ..base
        }),
        IssueError::SerialLength { len: 15 }
    );
    assert_eq!(
        issue(&IssueRequest {
            serial: &[1; 21],
            ..base
        }),
        IssueError::SerialLength { len: 21 }
    );
    let mut zero = [0u8; 16];
    zero[0] = 0x80; // cleared to zero
    assert_eq!(
        issue(&IssueRequest {
            serial: &zero,
            ..base
        }),
        IssueError::SerialZero
    );

    let foreign = SpiffeId::parse("spiffe://org-b.example/ns/ci/sa/builder").unwrap();
    assert!(matches!(
        issue(&IssueRequest {
            spiffe_id: &foreign,
            ..base
        }),
        IssueError::ForeignIdentity { .. }
    ));
    let domain_id = trust_domain().id();
    assert!(matches!(
        issue(&IssueRequest {
            spiffe_id: &domain_id,
            ..base
        }),
        IssueError::TrustDomainIdentity { .. }
    ));

    for bad in [
        "",
        "spiffe://org-a.example extra",
        "spiffe://ørg",
        &"x".repeat(1025),
    ] {
        assert!(
            matches!(
                issue(&IssueRequest {
                    oidc_issuer: bad,
                    ..base
                }),
                IssueError::InvalidOidcIssuer { .. }
            ),
            "{bad:?}"
        );
    }

    for sct_timestamp_ms in [SCT_MS - 251, (T0 as u64 + 600) * 1000 + 1, 0] {
        assert!(matches!(
            issue(&IssueRequest {
                sct_timestamp_ms,
                ..base
            }),
            IssueError::SctTimeOutsideValidity { .. }
        ));
    }
    // The root is valid from T0 - 1 day to T0 + 365 days.
    for not_before_unix in [T0 - 86_401, T0 + 365 * 86_400 - 599] {
        let sct_timestamp_ms = u64::try_from(not_before_unix).unwrap() * 1000;
        assert!(matches!(
            issue(&IssueRequest {
                not_before_unix,
                sct_timestamp_ms,
                ..base
            }),
            IssueError::OutsideCaValidity { .. }
        ));
    }
    for not_before_unix in [-1, i64::MAX - 10, 253_402_300_799] {
        assert!(matches!(
            issue(&IssueRequest {
                not_before_unix,
                ..base
            }),
            IssueError::TimeOutOfRange { .. }
        ));
    }
}

// ---------------------------------------------------------------------------------------
// CA material.

#[test]
fn root_has_the_code_signing_root_profile() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let root = parse(&ca.root_der);
    assert_eq!(root.subject().as_raw(), root.issuer().as_raw());
    assert_eq!(
        root.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        code_signing_root_name(&trust_domain())
    );
    assert_eq!(
        code_signing_root_name(&trust_domain()),
        "org-a.example provmesh code-signing root"
    );
    assert_eq!(root.validity().not_before.timestamp(), T0 - 86_400);
    assert_eq!(root.public_key().raw, &ca.root_spki()[..]);
    let bc = root.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    let ku = root.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.key_cert_sign() && ku.value.crl_sign());
    assert_eq!(ku.value.flags.count_ones(), 2);
    let point = &root.public_key().subject_public_key.data;
    let ski = root
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
        .unwrap();
    assert_eq!(ski, &Sha256::digest(point)[..20]);
    assert!(root.extended_key_usage().unwrap().is_none());
    // The log loads it as a trust anchor.
    let roots = CodeSigningRoots::from_der(&[&ca.root_der]).unwrap();
    assert_eq!(roots.certificates().filter(|c| c.trust_anchor).count(), 1);
}

#[test]
fn root_creation_refuses_bad_input() {
    let td = trust_domain();
    let key = pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING);
    assert!(matches!(
        create_code_signing_root(&td, b"junk", T0, T0 + 1, &SERIAL).unwrap_err(),
        RootCreateError::InvalidKey { .. }
    ));
    assert!(matches!(
        create_code_signing_root(&td, &key, T0 + 1, T0, &SERIAL).unwrap_err(),
        RootCreateError::InvalidValidity { .. }
    ));
    assert_eq!(
        create_code_signing_root(&td, &key, T0, T0 + 1, &SERIAL[..8]).unwrap_err(),
        RootCreateError::SerialLength { len: 8 }
    );
}

#[test]
fn issuer_refuses_bad_ca_material() {
    let td = trust_domain();
    let ct = || CtLogKey::from_pkcs8_der(&pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING)).unwrap();
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let no_chain: [&[u8]; 0] = [];
    assert_eq!(
        CodeSigningIssuer::new(td.clone(), &no_chain, &ca.root_key, ct()).unwrap_err(),
        CaLoadError::EmptyChain
    );
    assert_eq!(
        CodeSigningIssuer::new(
            td.clone(),
            &[&ca.root_der],
            &pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING),
            ct()
        )
        .unwrap_err(),
        CaLoadError::KeyMismatch
    );
    assert!(matches!(
        CodeSigningIssuer::new(
            td.clone(),
            &[&ca.root_der],
            &pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING),
            ct()
        )
        .unwrap_err(),
        CaLoadError::InvalidKey { .. }
    ));
    // A leaf is not a CA.
    let leaf = ca.issue().certificate_der;
    assert!(matches!(
        CodeSigningIssuer::new(td.clone(), &[&leaf], &ca.subject_key, ct()).unwrap_err(),
        CaLoadError::NotCa { .. }
    ));
    // The chain must link: `other`'s root has the same name as ours but another key,
    // so the intermediate (signed by our root) is not issued by it.
    let other = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "intermediate");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let root_key = rcgen::KeyPair::try_from(&ca.root_key[..]).unwrap();
    let mut root_params = rcgen::CertificateParams::default();
    root_params.distinguished_name = rcgen::DistinguishedName::new();
    root_params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, trust_domain().as_str());
    root_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        code_signing_root_name(&trust_domain()),
    );
    let root_issuer = rcgen::Issuer::new(root_params, root_key);
    let intermediate_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let intermediate = params.signed_by(&intermediate_key, &root_issuer).unwrap();
    let intermediate_pkcs8 = intermediate_key.serialize_der();
    assert_eq!(
        CodeSigningIssuer::new(
            td.clone(),
            &[intermediate.der().to_vec(), other.root_der.clone()],
            &intermediate_pkcs8,
            ct()
        )
        .unwrap_err(),
        CaLoadError::BrokenChain { position: 1 }
    );
    // Linked correctly, it loads, and leaves carry both certificates as their chain.
    let issuer = CodeSigningIssuer::new(
        td.clone(),
        &[intermediate.der().to_vec(), ca.root_der.clone()],
        &intermediate_pkcs8,
        ct(),
    )
    .unwrap();
    let id = spiffe_id();
    let issued = issuer.issue(&request(&ca.subject_spki, &id)).unwrap();
    assert_eq!(issued.chain.len(), 2);
    assert_eq!(
        parse(&issued.certificate_der).issuer().as_raw(),
        parse(intermediate.der()).subject().as_raw()
    );
    // A CA without a subject key identifier cannot give leaves an AKI.
    let mut no_ski = rcgen::CertificateParams::default();
    no_ski.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    no_ski.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(Vec::new());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = no_ski.self_signed(&key).unwrap();
    assert_eq!(
        CodeSigningIssuer::new(td, &[cert.der().to_vec()], &key.serialize_der(), ct()).unwrap_err(),
        CaLoadError::NoSubjectKeyIdentifier
    );
}

#[test]
fn issuer_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CodeSigningIssuer>();
    assert_send_sync::<CtLogKey>();
}

// ---------------------------------------------------------------------------------------
// Real Fulcio leaves: their SCTs verify with the trusted roots' CT keys.

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/vectors/sigstore/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Verifies the embedded SCT of a real Fulcio leaf with the CT key of `trusted_root`
/// that its log id names and the key of the CA whose SKI is the leaf's AKI.
fn check_real_sct(trusted_root: &str, bundle: &str) {
    let (root, _) =
        parse_trusted_root(&vector(trusted_root), DEFAULT_MAX_TRUSTED_ROOT_LEN).unwrap();
    let leaf = ParsedBundle::from_json(&vector(bundle), DEFAULT_MAX_BUNDLE_LEN)
        .unwrap()
        .leaf_certificate_der()
        .unwrap()
        .to_vec();
    let embedded = embedded_scts(&leaf).unwrap();
    assert_eq!(embedded.scts.len(), 1, "{bundle}");
    let sct = &embedded.scts[0];
    // The independent walker rebuilds the same precertificate TBS.
    let cert = parse(&leaf);
    let (rebuilt, removed) = remove_extension(cert.tbs_certificate.as_ref(), &SCT_OID_DER);
    assert_eq!(removed, 1);
    assert_eq!(rebuilt, embedded.precertificate_tbs_der, "{bundle}");

    let ct_spki = root
        .ctlogs
        .iter()
        .find(|log| log.log_id.as_ref().unwrap().key_id == sct.log_id())
        .unwrap_or_else(|| panic!("{bundle}: no CT log {}", hex::encode(sct.log_id())))
        .public_key
        .as_ref()
        .unwrap()
        .raw_bytes
        .clone()
        .unwrap();
    let aki = cert
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                Some(aki.key_identifier.as_ref().unwrap().0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    let issuer_spki = root
        .certificate_authorities
        .iter()
        .flat_map(|ca| ca.cert_chain.as_ref().unwrap().certificates.iter())
        .map(|c| c.raw_bytes.clone())
        .find(|der| {
            parse(der).iter_extensions().any(|e| {
                matches!(e.parsed_extension(),
                    ParsedExtension::SubjectKeyIdentifier(id) if id.0 == &aki[..])
            })
        })
        .map(|der| parse(&der).public_key().raw.to_vec())
        .unwrap_or_else(|| panic!("{bundle}: no CA with the leaf's AKI"));

    verify_sct(
        sct,
        &ct_spki,
        &embedded.precertificate_tbs_der,
        &issuer_spki,
    )
    .unwrap_or_else(|e| panic!("{bundle}: {e}"));
    // And not over the final TBS.
    assert_eq!(
        verify_sct(sct, &ct_spki, cert.tbs_certificate.as_ref(), &issuer_spki).unwrap_err(),
        SctVerifyError::BadSignature
    );
}

#[test]
fn real_fulcio_scts_verify() {
    for bundle in [
        "bundle_v3_github.whl.sigstore",
        "sigstore-js-2.1.0-bundle.json",
        "reusable-workflow-attestation.sigstore.json",
    ] {
        check_real_sct("public-good.trusted_root.json", bundle);
    }
    for bundle in [
        "bundle_v3.txt.sigstore",
        "staging-rekor-v2.txt.sigstore.json",
        "a.dsse.staging-rekor-v2.txt.sigstore.json",
    ] {
        check_real_sct("staging.trusted_root.json", bundle);
    }
}

#[test]
fn embedded_scts_rejects_certificates_without_exactly_one_list() {
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    assert!(matches!(
        embedded_scts(&ca.root_der).unwrap_err(),
        provmesh_protocol::ca::EmbeddedSctError::NoSctList
    ));
    assert!(embedded_scts(b"\x30\x03\x02\x01\x00").is_err());
    assert!(embedded_scts(&[]).is_err());
    // Two SCT list extensions (built with rcgen): refused.
    let list = ca.issue().sct;
    let value = {
        let list = encode_sct_list(&[list]).unwrap();
        encode(0x04, &list)
    };
    let mut params = rcgen::CertificateParams::default();
    for _ in 0..2 {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                OID_CT_PRECERT_SCTS,
                value.clone(),
            ));
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    assert!(matches!(
        embedded_scts(cert.der()).unwrap_err(),
        provmesh_protocol::ca::EmbeddedSctError::DuplicateSctList
    ));
}

mod hostile_bytes {
    use super::*;
    use proptest::prelude::*;

    fn issued() -> &'static IssuedCertificate {
        static ISSUED: std::sync::OnceLock<IssuedCertificate> = std::sync::OnceLock::new();
        ISSUED.get_or_init(|| Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING).issue())
    }

    proptest! {
        #[test]
        fn sct_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_sct_list(&bytes);
            let _ = SignedCertificateTimestamp::decode(&bytes);
        }

        #[test]
        fn embedded_scts_never_panics_on_mutated_certificates(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut der = issued().certificate_der.clone();
            for (index, byte) in edits {
                let i = index.index(der.len());
                der[i] = byte;
            }
            let _ = embedded_scts(&der);
            let _ = embedded_scts(&der[..cut.index(der.len())]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Third-party verifiers, when installed.

/// A scratch directory for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("provmesh-ca-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[test]
fn openssl_verifies_the_chain() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let ca = Ca::new(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let issued = ca.issue();
    let dir = scratch("openssl");
    let (root, leaf) = (dir.join("root.pem"), dir.join("leaf.pem"));
    std::fs::write(&root, pem(&ca.root_der)).unwrap();
    std::fs::write(&leaf, pem(&issued.certificate_der)).unwrap();

    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    for needle in [
        "X509v3 Subject Alternative Name: critical",
        "URI:spiffe://org-a.example/ns/ci/sa/builder",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "Code Signing",
        "CT Precertificate SCTs",
        "1.3.6.1.4.1.57264.1.1",
        "1.3.6.1.4.1.57264.1.8",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let verify = Command::new("openssl")
        .args(["verify", "-x509_strict", "-purpose", "any", "-attime"])
        .arg((T0 + 60).to_string())
        .arg("-CAfile")
        .arg(&root)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // One second after notAfter it is expired.
    let late = Command::new("openssl")
        .args(["verify", "-attime"])
        .arg((T0 + 601).to_string())
        .arg("-CAfile")
        .arg(&root)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(!late.status.success());
    std::fs::remove_dir_all(dir).unwrap();
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 CA made by `openssl req` with `subject`: (certificate, PKCS #8).
fn openssl_ca(dir: &std::path::Path, subject: &str) -> (Vec<u8>, Vec<u8>) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "ca.der",
            "-outform",
            "DER",
            "-days",
            "30",
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.der",
        ],
    );
    (
        std::fs::read(dir.join("ca.der")).unwrap(),
        std::fs::read(dir.join("key.der")).unwrap(),
    )
}

#[test]
fn openssl_made_ca_names_are_reproduced_or_refused() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let dir = scratch("openssl-ca");
    let ct = || CtLogKey::from_pkcs8_der(&pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING)).unwrap();
    // PrintableString countryName, UTF8String others: reproduced byte for byte.
    let (ca_der, key) = openssl_ca(&dir, "/C=US/O=Example Org/CN=Example Code Signing");
    let issuer = CodeSigningIssuer::new(trust_domain(), &[&ca_der], &key, ct()).unwrap();
    let ca = parse(&ca_der);
    let subject_key = pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let subject_spki = spki(&ECDSA_P256_SHA256_ASN1_SIGNING, &subject_key);
    let id = spiffe_id();
    let not_before_unix = ca.validity().not_before.timestamp() + 60;
    let issued = issuer
        .issue(&IssueRequest {
            not_before_unix,
            sct_timestamp_ms: u64::try_from(not_before_unix).unwrap() * 1000,
            ..request(&subject_spki, &id)
        })
        .unwrap();
    assert_eq!(
        parse(&issued.certificate_der).issuer().as_raw(),
        ca.subject().as_raw()
    );
    let roots = CodeSigningRoots::from_der(&[&ca_der]).unwrap();
    roots
        .check(&issued.certificate_der, not_before_unix)
        .unwrap();
    // The same attribute type twice: rcgen cannot write that name.
    let (ca_der, key) = openssl_ca(&dir, "/O=Example/OU=a/OU=b/CN=Example");
    assert!(matches!(
        CodeSigningIssuer::new(trust_domain(), &[&ca_der], &key, ct()).unwrap_err(),
        CaLoadError::UnreproducibleName { .. }
    ));
    // A multi-valued RDN.
    let (ca_der, key) = openssl_ca(&dir, "/O=Example/OU=a+CN=Example");
    assert!(matches!(
        CodeSigningIssuer::new(trust_domain(), &[&ca_der], &key, ct()).unwrap_err(),
        CaLoadError::UnreproducibleName { .. }
    ));
    std::fs::remove_dir_all(dir).unwrap();
}

/// What sigstore-python 4.5 does with a leaf (its `_verify_chain_at_time` and
/// `_internal/sct.py`): WebPKI chain validation with the EKU policy relaxed, then the SCT
/// over `tbs_precertificate_bytes`. Prints `OK` or raises.
const PYTHON_CHECK: &str = r#"
import sys, struct, datetime
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, ExtensionPolicy, Criticality
from cryptography.x509 import ExtendedKeyUsage, PrecertificateSignedCertificateTimestamps
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

root_pem, leaf_pem, ct_der, precert_hex, at = sys.argv[1:6]
root = x509.load_pem_x509_certificate(open(root_pem, "rb").read())
leaf = x509.load_pem_x509_certificate(open(leaf_pem, "rb").read())
ct_key = serialization.load_der_public_key(open(ct_der, "rb").read())
ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(ExtendedKeyUsage, Criticality.NON_CRITICAL, None)
verifier = (PolicyBuilder().store(Store([root]))
    .time(datetime.datetime.fromtimestamp(int(at), tz=datetime.timezone.utc))
    .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
    .build_client_verifier())
chain = verifier.verify(leaf, []).chain
assert chain[-1] == root, chain

assert leaf.tbs_precertificate_bytes.hex() == precert_hex, "precert TBS differs"
scts = leaf.extensions.get_extension_for_class(PrecertificateSignedCertificateTimestamps).value
assert len(scts) == 1
sct = scts[0]
issuer_key_id = hashes.Hash(hashes.SHA256())
issuer_key_id.update(root.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
issuer_key_id = issuer_key_id.finalize()
tbs = leaf.tbs_precertificate_bytes
entry = issuer_key_id + len(tbs).to_bytes(3, "big") + tbs
ts = int(sct.timestamp.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
data = struct.pack("!BBQH", sct.version.value, 0, ts, sct.entry_type.value) + entry + struct.pack("!H", len(sct.extension_bytes)) + sct.extension_bytes
log_id = hashes.Hash(hashes.SHA256()); log_id.update(open(ct_der, "rb").read())
assert sct.log_id == log_id.finalize()
ct_key.verify(sct.signature, data, ec.ECDSA(hashes.SHA256()))
san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
assert san.critical and san.value.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://org-a.example/ns/ci/sa/builder"]
assert leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")).value.value == b"spiffe://org-a.example"
print("OK")
"#;

#[test]
fn python_cryptography_verifies_like_sigstore_python() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "from cryptography.x509.verification import ExtensionPolicy",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: python3 with cryptography >= 45 is not installed");
        return;
    }
    for root_alg in [
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
    ] {
        let ca = Ca::new(root_alg);
        let issued = ca.issue();
        let dir = scratch("python");
        let (root, leaf, ct) = (
            dir.join("root.pem"),
            dir.join("leaf.pem"),
            dir.join("ct.der"),
        );
        std::fs::write(&root, pem(&ca.root_der)).unwrap();
        std::fs::write(&leaf, pem(&issued.certificate_der)).unwrap();
        std::fs::write(&ct, ca.ct_spki()).unwrap();
        let out = Command::new("python3")
            .arg("-c")
            .arg(PYTHON_CHECK)
            .arg(&root)
            .arg(&leaf)
            .arg(&ct)
            .arg(hex::encode(&issued.precertificate_tbs_der))
            .arg((T0 + 60).to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
