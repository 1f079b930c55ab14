//! A code-signing CA and signers for load tests: it issues certificates the domain log
//! admits and builds signed `hashedrekord` proposed entries with them.
//!
//! The log admits an entry only if its leaf certificate chains to a configured
//! code-signing root and is a code-signing certificate for one identity (see
//! `provmesh_protocol::log::signer_cert`): P-256 key, `keyUsage` digitalSignature,
//! `extendedKeyUsage` codeSigning, exactly one SAN (here a `spiffe://` URI), valid now,
//! not a CA. [`BenchCa`] issues exactly such leaves, and checks the first one it issues
//! against its own root with the log's admission code, so a CA that the log would refuse
//! is reported when it is loaded rather than as a wall of 422s under load.
//!
//! Used by `provmesh bench log` and by the end-to-end tests.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use provmesh_protocol::log::entry::ProposedEntry;
use provmesh_protocol::log::signer_cert::CodeSigningRoots;
use provmesh_protocol::merkle::Hash;
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};

use crate::identity::dev_ca::pem_certificate_der;

/// How far around "now" a generated root is valid: a day back (clock skew between the
/// machine that generated it and the log) to a day ahead (long benchmark runs).
const ROOT_VALIDITY_MARGIN: Duration = Duration::from_secs(24 * 3600);
/// How far back a leaf's validity starts, so a log whose clock is slightly behind still
/// finds it valid.
const LEAF_BACKDATE: Duration = Duration::from_secs(60);
/// The largest PEM input read by [`BenchCa::from_pem`] (a CA certificate or key is a
/// few KiB at most).
const MAX_PEM_LEN: usize = 64 * 1024;

/// Why a CA could not be generated, loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchCaError {
    /// The trust domain name is not a valid SPIFFE trust domain.
    #[error("invalid trust domain {name:?}: {reason}")]
    TrustDomain {
        /// The name given.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The signer identity is not a valid SPIFFE ID.
    #[error(
        "invalid signer identity {id:?}: {reason} (expected a SPIFFE ID such as \"spiffe://bench.example/writer/0\")"
    )]
    Identity {
        /// The identity given.
        id: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A PEM input is too long to be a certificate or a key.
    #[error("{what} is {len} bytes long; a PEM certificate or key is at most {max} bytes")]
    PemTooLong {
        /// Which input.
        what: &'static str,
        /// Its length.
        len: usize,
        /// [`MAX_PEM_LEN`].
        max: usize,
    },
    /// The CA certificate is not a PEM certificate whose subject name can be reproduced.
    #[error("the CA certificate cannot be used: {0}")]
    CaCertificate(String),
    /// The CA key could not be read.
    #[error("the CA private key cannot be read (expected a PEM PKCS#8 \"PRIVATE KEY\"): {0}")]
    CaKey(#[source] rcgen::Error),
    /// The validity requested does not fit a certificate.
    #[error("a validity of {0:?} does not fit in a certificate")]
    Validity(Duration),
    /// rcgen or aws-lc-rs failed to generate a key or a certificate.
    #[error("cannot generate {what}: {reason}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// What the library said.
        reason: String,
    },
    /// The CA's own leaf does not pass the log's admission check against the CA's root:
    /// the log would refuse every entry signed under it.
    #[error("certificates issued by this CA would be refused by the log: {0}")]
    NotAdmitted(String),
}

/// Why an entry could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// aws-lc-rs refused to sign.
    #[error("ECDSA signing failed")]
    Ecdsa,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The proposed entry could not be built from the signature and certificate.
    #[error("cannot build the proposed entry: {0}")]
    Entry(String),
}

/// A code-signing CA: a root certificate and its key, issuing leaf certificates.
pub struct BenchCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl fmt::Debug for BenchCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchCa").finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch, now.
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn generate_error(what: &'static str) -> impl FnOnce(rcgen::Error) -> BenchCaError {
    move |e| BenchCaError::Generate {
        what,
        reason: e.to_string(),
    }
}

impl BenchCa {
    /// Generates a self-signed P-256 root for `trust_domain`, valid from a day ago to a
    /// day from now.
    pub fn generate(trust_domain: &str) -> Result<BenchCa, BenchCaError> {
        let domain = TrustDomain::parse(trust_domain).map_err(|e| BenchCaError::TrustDomain {
            name: trust_domain.to_owned(),
            reason: e.to_string(),
        })?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "provmesh bench");
        name.push(
            DnType::CommonName,
            format!("{} code-signing CA", domain.as_str()),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = unix_now();
        set_validity(
            &mut params,
            now.saturating_sub(ROOT_VALIDITY_MARGIN),
            now + ROOT_VALIDITY_MARGIN,
        );
        let key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate_error("the CA key"))?;
        let cert = params
            .self_signed(&key)
            .map_err(generate_error("the CA certificate"))?;
        let ca = BenchCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        };
        ca.check_admission()?;
        Ok(ca)
    }

    /// Loads a CA from its certificate and PKCS#8 private key, both PEM (e.g. the files
    /// an earlier `provmesh bench log --dir` kept). The CA must be one the log has among
    /// its code-signing roots; a leaf it issues is checked against it before it is used.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<BenchCa, BenchCaError> {
        for (what, text) in [("the CA certificate", cert_pem), ("the CA key", key_pem)] {
            if text.len() > MAX_PEM_LEN {
                return Err(BenchCaError::PemTooLong {
                    what,
                    len: text.len(),
                    max: MAX_PEM_LEN,
                });
            }
        }
        let der = pem_certificate_der(cert_pem).map_err(BenchCaError::CaCertificate)?;
        let key = KeyPair::from_pem(key_pem).map_err(BenchCaError::CaKey)?;
        // rcgen reads the subject with x509-parser and keeps each attribute's string type,
        // so leaves name it as the issuer with the same bytes; it refuses a subject it
        // cannot write back (a multi-valued RDN, an unsupported string type).
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key).map_err(|e| {
            BenchCaError::CaCertificate(format!(
                "{e} (expected an X.509 certificate whose subject has one attribute per \
                 RDN, each a UTF8, Printable, IA5, Teletex, BMP or Universal string)"
            ))
        })?;
        let ca = BenchCa {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        };
        // Names are compared byte for byte by the log: a subject rcgen re-encodes
        // differently, or a key that is not the certificate's, shows up here.
        ca.check_admission()?;
        Ok(ca)
    }

    /// The root certificate, PEM: what the log's `code_signing_roots` file must hold.
    pub fn root_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PKCS#8 PEM (to keep the CA for a later run).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a code-signing leaf for `spiffe_id` with a fresh P-256 key, valid from a
    /// minute ago for `validity`.
    pub fn issue_signer(
        &self,
        spiffe_id: &str,
        validity: Duration,
    ) -> Result<Signer, BenchCaError> {
        self.issue_signer_with(spiffe_id, validity, |_| {})
    }

    /// [`BenchCa::issue_signer`], with the leaf's parameters changed by `adjust` just
    /// before it is signed: for a certificate that the log must refuse (another extended
    /// key usage, another validity window), so that a test can check that it does.
    pub fn issue_signer_with(
        &self,
        spiffe_id: &str,
        validity: Duration,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Result<Signer, BenchCaError> {
        let identity = SpiffeId::parse(spiffe_id).map_err(|e| BenchCaError::Identity {
            id: spiffe_id.to_owned(),
            reason: e.to_string(),
        })?;
        let uri = Ia5String::try_from(identity.as_str()).map_err(|e| BenchCaError::Identity {
            id: spiffe_id.to_owned(),
            reason: e.to_string(),
        })?;
        let mut params = CertificateParams::default();
        // Fulcio profile: empty subject, the identity in the SAN only.
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.is_ca = IsCa::ExplicitNoCa;
        let now = unix_now();
        let not_after = now
            .checked_add(validity)
            .filter(|t| t.as_secs() < 253_402_300_800) // 9999-12-31, the X.509 limit
            .ok_or(BenchCaError::Validity(validity))?;
        set_validity(&mut params, now.saturating_sub(LEAF_BACKDATE), not_after);
        adjust(&mut params);

        // The key is generated by aws-lc-rs, which signs the prehashed digest
        // (`EcdsaKeyPair::sign_digest`); rcgen gets the same key in PKCS#8 form.
        let pkcs8 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| BenchCaError::Generate {
                what: "a signer key",
                reason: "aws-lc-rs key generation failed".into(),
            })?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .map_err(|e| BenchCaError::Generate {
                what: "a signer key",
                reason: e.to_string(),
            })?;
        let leaf_key = KeyPair::try_from(pkcs8.as_ref()).map_err(generate_error("a signer key"))?;
        let cert = params
            .signed_by(&leaf_key, &self.issuer)
            .map_err(generate_error("a signer certificate"))?;
        Ok(Signer {
            identity: identity.as_str().to_owned(),
            certificate_der: cert.der().to_vec(),
            key,
        })
    }

    /// Issues a probe leaf and runs the log's admission check on it against this CA's
    /// certificate alone.
    fn check_admission(&self) -> Result<(), BenchCaError> {
        let roots = CodeSigningRoots::from_pem(self.cert_pem.as_bytes())
            .map_err(|e| BenchCaError::NotAdmitted(format!("as a root: {e}")))?;
        let probe = self.issue_signer("spiffe://probe.invalid/bench", Duration::from_secs(600))?;
        let now = i64::try_from(unix_now().as_secs()).unwrap_or(i64::MAX);
        roots
            .check(&probe.certificate_der, now)
            .map_err(|e| BenchCaError::NotAdmitted(e.to_string()))?;
        Ok(())
    }
}

/// An identity with a code-signing certificate and its private key.
pub struct Signer {
    identity: String,
    certificate_der: Vec<u8>,
    key: EcdsaKeyPair,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A signed `hashedrekord` proposed entry, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEntry {
    /// The JSON body of `POST /api/v1/log/entries`.
    pub json: Vec<u8>,
    /// The canonical body the log stores for it.
    pub canonical_body: Vec<u8>,
    /// `leaf_hash(canonical_body)`: the entry's UUID in the log's answer.
    pub leaf_hash: Hash,
}

impl Signer {
    /// The identity (SPIFFE ID) the certificate binds.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The leaf certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// ASN.1 DER ECDSA P-256 signature over the artifact whose SHA-256 digest is
    /// `artifact_digest`: the digest is signed as a prehash, since the signature is over
    /// the artifact, which the log never sees (Rekor verifies it with
    /// `options.WithDigest`).
    pub fn sign_digest(&self, artifact_digest: &[u8; 32]) -> Result<Vec<u8>, SignError> {
        // `import_less_safe` only refuses a digest of the wrong length.
        let digest =
            Digest::import_less_safe(artifact_digest, &SHA256).map_err(|_| SignError::Ecdsa)?;
        let signature = self
            .key
            .sign_digest(&digest)
            .map_err(|_| SignError::Ecdsa)?;
        Ok(signature.as_ref().to_vec())
    }

    /// A signed `hashedrekord` 0.0.1 entry for the artifact whose SHA-256 digest is
    /// `artifact_digest`, with everything a client needs to check the log's answer.
    pub fn signed_entry(&self, artifact_digest: [u8; 32]) -> Result<SignedEntry, SignError> {
        let signature = self.sign_digest(&artifact_digest)?;
        let entry =
            ProposedEntry::hashedrekord(artifact_digest, signature, self.certificate_der.clone())
                .map_err(|e| SignError::Entry(e.to_string()))?;
        Ok(SignedEntry {
            json: entry.to_json(),
            canonical_body: entry.canonical_body().to_vec(),
            leaf_hash: entry.leaf_hash(),
        })
    }

    /// The JSON of a `hashedrekord` 0.0.1 proposed entry for the artifact whose SHA-256
    /// digest is `artifact_digest`:
    /// `{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":<hex>}},"signature":{"content":<base64 DER signature>,"publicKey":{"content":<base64 of the certificate PEM>}}}}`.
    pub fn hashedrekord(&self, artifact_digest: [u8; 32]) -> Result<Vec<u8>, SignError> {
        self.signed_entry(artifact_digest).map(|e| e.json)
    }
}

/// A random 32-byte digest (an artifact nobody has logged yet).
pub fn random_digest() -> Result<[u8; 32], SignError> {
    let mut digest = [0u8; 32];
    aws_lc_rs::rand::fill(&mut digest).map_err(|_| SignError::Random)?;
    Ok(digest)
}

/// Sets a certificate's validity window from times since the Unix epoch.
fn set_validity(params: &mut CertificateParams, not_before: Duration, not_after: Duration) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + not_before;
    params.not_after = epoch + not_after;
}

#[cfg(test)]
mod tests {
    use provmesh_protocol::log::entry::ProposedEntry;
    use provmesh_protocol::log::signer_cert::CodeSigningRoots;
    use rcgen::DnValue;

    use super::*;

    #[test]
    fn generated_signers_are_admitted_and_their_entries_verify() {
        let ca = BenchCa::generate("bench.example").unwrap();
        let roots = CodeSigningRoots::from_pem(ca.root_pem().as_bytes()).unwrap();
        let signer = ca
            .issue_signer("spiffe://bench.example/writer/3", Duration::from_secs(3600))
            .unwrap();
        let now = i64::try_from(unix_now().as_secs()).unwrap();
        let certified = roots.check(signer.certificate_der(), now).unwrap();
        assert_eq!(certified.identity, "spiffe://bench.example/writer/3");

        let digest = random_digest().unwrap();
        let signed = signer.signed_entry(digest).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&signed.json).unwrap();
        assert_eq!(json["kind"], "hashedrekord");
        assert_eq!(json["apiVersion"], "0.0.1");
        assert_eq!(json["spec"]["data"]["hash"]["algorithm"], "sha256");
        assert_eq!(json["spec"]["data"]["hash"]["value"], hex::encode(digest));
        // The log's own parser and admission accept it, and agree on the body.
        let proposed = ProposedEntry::from_json(&signed.json).unwrap();
        let admitted = proposed.admit(&certified).unwrap();
        assert_eq!(admitted.body, signed.canonical_body);
        assert_eq!(admitted.leaf_hash, signed.leaf_hash);
        assert_eq!(admitted.search_keys, vec![digest]);
        // ECDSA signatures are randomised: a second entry for the digest differs in its
        // signature only.
        let again: serde_json::Value =
            serde_json::from_slice(&signer.hashedrekord(digest).unwrap()).unwrap();
        assert_eq!(again["spec"]["data"], json["spec"]["data"]);
        assert_eq!(
            again["spec"]["signature"]["publicKey"],
            json["spec"]["signature"]["publicKey"]
        );

        // A signature over another digest does not verify.
        let other = random_digest().unwrap();
        let forged = ProposedEntry::hashedrekord(
            other,
            signer.sign_digest(&digest).unwrap(),
            signer.certificate_der().to_vec(),
        )
        .unwrap();
        assert!(forged.admit(&certified).is_err());
    }

    #[test]
    fn an_adjusted_leaf_is_signed_as_adjusted() {
        let ca = BenchCa::generate("bench.example").unwrap();
        let roots = CodeSigningRoots::from_pem(ca.root_pem().as_bytes()).unwrap();
        let now = i64::try_from(unix_now().as_secs()).unwrap();
        // Without the codeSigning purpose the same leaf is one the log refuses.
        let signer = ca
            .issue_signer_with("spiffe://bench.example/x", Duration::from_secs(60), |p| {
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            })
            .unwrap();
        assert!(roots.check(signer.certificate_der(), now).is_err());
        // Left as they are, the parameters give an admitted leaf.
        let signer = ca
            .issue_signer_with("spiffe://bench.example/x", Duration::from_secs(60), |_| {})
            .unwrap();
        roots.check(signer.certificate_der(), now).unwrap();
    }

    #[test]
    fn a_reloaded_ca_issues_leaves_under_the_same_root() {
        let ca = BenchCa::generate("bench.example").unwrap();
        let reloaded = BenchCa::from_pem(ca.root_pem(), ca.key_pem()).unwrap();
        let roots = CodeSigningRoots::from_pem(ca.root_pem().as_bytes()).unwrap();
        let signer = reloaded
            .issue_signer("spiffe://bench.example/writer/0", Duration::from_secs(60))
            .unwrap();
        let now = i64::try_from(unix_now().as_secs()).unwrap();
        roots.check(signer.certificate_der(), now).unwrap();
    }

    #[test]
    fn a_reloaded_ca_keeps_the_string_types_of_its_subject() {
        // A subject mixing PrintableString and UTF8String: a leaf's issuer must repeat
        // it byte for byte, or the log refuses the leaf and `from_pem` reports it.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CountryName,
            DnValue::PrintableString("DE".try_into().unwrap()),
        );
        name.push(DnType::OrganizationName, "provmesh bench");
        name.push(
            DnType::CommonName,
            DnValue::PrintableString("bench CA".try_into().unwrap()),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let now = unix_now();
        set_validity(&mut params, now - LEAF_BACKDATE, now + LEAF_BACKDATE);
        let cert = params.self_signed(&key).unwrap();
        let ca = BenchCa::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
        let signer = ca
            .issue_signer("spiffe://bench.example/writer/0", Duration::from_secs(60))
            .unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(signer.certificate_der()).unwrap();
        let (_, root) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        assert_eq!(
            leaf.tbs_certificate.issuer.as_raw(),
            root.tbs_certificate.subject.as_raw()
        );
    }

    #[test]
    fn a_key_that_is_not_the_cas_is_refused_at_load() {
        let ca = BenchCa::generate("bench.example").unwrap();
        let other = BenchCa::generate("bench.example").unwrap();
        let err = BenchCa::from_pem(ca.root_pem(), other.key_pem()).unwrap_err();
        assert!(matches!(err, BenchCaError::NotAdmitted(_)), "{err}");
        let err = BenchCa::from_pem("not a certificate", ca.key_pem()).unwrap_err();
        assert!(matches!(err, BenchCaError::CaCertificate(_)), "{err}");
        let err = BenchCa::from_pem(ca.root_pem(), "not a key").unwrap_err();
        assert!(matches!(err, BenchCaError::CaKey(_)), "{err}");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(matches!(
            BenchCa::generate("Not A Domain"),
            Err(BenchCaError::TrustDomain { .. })
        ));
        let ca = BenchCa::generate("bench.example").unwrap();
        assert!(matches!(
            ca.issue_signer("https://bench.example/x", Duration::from_secs(60)),
            Err(BenchCaError::Identity { .. })
        ));
    }
}
