//! Certificate signature checks shared by every X.509 path check in the core (the log's
//! code-signing signers, X.509-SVIDs): the signature algorithms accepted, CA keys parsed
//! once into `aws-lc-rs` verifiers, and bounded DER certificate parsing.

use std::fmt;

use aws_lc_rs::signature::{self as aws_sig, ParsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512, OID_SIG_ED448,
    OID_SIG_ED25519, OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, OID_X509_EXT_BASIC_CONSTRAINTS,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_ALT_NAME,
    OID_X509_EXT_SUBJECT_KEY_IDENTIFIER, Oid,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// The largest certificate, in DER bytes, accepted as a leaf or a CA.
///
/// Fulcio leaves with an embedded SCT are about 1 KiB; the limit bounds the work one
/// untrusted certificate can cause.
pub const MAX_CERTIFICATE_DER_LEN: usize = 16 * 1024;

/// The signature algorithms certificates may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigAlg {
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
}

impl SigAlg {
    /// Recognises a certificate's `signatureAlgorithm`; `Err` carries the dotted OID.
    pub(crate) fn from_identifier(alg: &AlgorithmIdentifier<'_>) -> Result<SigAlg, String> {
        let oid = &alg.algorithm;
        // RFC 5758 §3.2: "When the ecdsa-with-SHA224, ecdsa-with-SHA256,
        // ecdsa-with-SHA384, or ecdsa-with-SHA512 algorithm identifier appears in the
        // algorithm field as an AlgorithmIdentifier, the encoding MUST omit the
        // parameters field."
        let ecdsa = |a| alg.parameters.is_none().then_some(a);
        // RFC 4055 §5: "When any of these four object identifiers appears within an
        // AlgorithmIdentifier, the parameters MUST be NULL. Implementations MUST accept
        // the parameters being absent as well as present."
        let rsa = |a| match &alg.parameters {
            None => Some(a),
            Some(p) => p.as_null().is_ok().then_some(a),
        };
        let found = if *oid == OID_SIG_ECDSA_WITH_SHA256 {
            ecdsa(SigAlg::EcdsaSha256)
        } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
            ecdsa(SigAlg::EcdsaSha384)
        } else if *oid == OID_SIG_ECDSA_WITH_SHA512 {
            ecdsa(SigAlg::EcdsaSha512)
        } else if *oid == OID_PKCS1_SHA256WITHRSA {
            rsa(SigAlg::RsaPkcs1Sha256)
        } else if *oid == OID_PKCS1_SHA384WITHRSA {
            rsa(SigAlg::RsaPkcs1Sha384)
        } else if *oid == OID_PKCS1_SHA512WITHRSA {
            rsa(SigAlg::RsaPkcs1Sha512)
        } else {
            None
        };
        found.ok_or_else(|| {
            if alg.parameters.is_some() {
                format!("{} (with unexpected parameters)", oid.to_id_string())
            } else {
                oid.to_id_string()
            }
        })
    }
}

/// A CA public key, parsed once for each signature algorithm it may verify.
#[derive(Debug, Clone)]
pub(crate) struct IssuerKey {
    verifiers: Vec<(SigAlg, ParsedPublicKey)>,
}

impl IssuerKey {
    /// Parses a CA's SubjectPublicKeyInfo; `Err` describes an unsupported key.
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<IssuerKey, String> {
        type Table = [(SigAlg, &'static dyn VerificationAlgorithm); 3];
        const P256: Table = [
            (SigAlg::EcdsaSha256, &aws_sig::ECDSA_P256_SHA256_ASN1),
            (SigAlg::EcdsaSha384, &aws_sig::ECDSA_P256_SHA384_ASN1),
            (SigAlg::EcdsaSha512, &aws_sig::ECDSA_P256_SHA512_ASN1),
        ];
        const P384: Table = [
            (SigAlg::EcdsaSha256, &aws_sig::ECDSA_P384_SHA256_ASN1),
            (SigAlg::EcdsaSha384, &aws_sig::ECDSA_P384_SHA384_ASN1),
            (SigAlg::EcdsaSha512, &aws_sig::ECDSA_P384_SHA512_ASN1),
        ];
        const RSA: Table = [
            (SigAlg::RsaPkcs1Sha256, &aws_sig::RSA_PKCS1_2048_8192_SHA256),
            (SigAlg::RsaPkcs1Sha384, &aws_sig::RSA_PKCS1_2048_8192_SHA384),
            (SigAlg::RsaPkcs1Sha512, &aws_sig::RSA_PKCS1_2048_8192_SHA512),
        ];
        let table = match KeyType::of(spki) {
            KeyType::P256 => &P256,
            KeyType::P384 => &P384,
            KeyType::Rsa => &RSA,
            other => return Err(other.to_string()),
        };
        let verifiers = table
            .iter()
            .map(|&(alg, verification)| {
                // aws-lc-rs takes the whole SubjectPublicKeyInfo and checks the point is
                // on the curve, or the RSA modulus size.
                ParsedPublicKey::new(verification, spki.raw)
                    .map(|key| (alg, key))
                    .map_err(|e| format!("{} rejected: {e}", KeyType::of(spki)))
            })
            .collect::<Result<_, _>>()?;
        Ok(IssuerKey { verifiers })
    }

    /// Verifies `signature` over `message`; `None` if this key cannot verify `alg` (an
    /// ECDSA key and an RSA signature, say).
    pub(crate) fn verify(&self, alg: SigAlg, message: &[u8], signature: &[u8]) -> Option<bool> {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, key)| key.verify_sig(message, signature).is_ok())
    }
}

/// A public key's type, for dispatch and for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyType {
    P256,
    P384,
    Rsa,
    OtherCurve(String),
    Ed25519,
    Ed448,
    Other(String),
}

impl KeyType {
    pub(crate) fn of(spki: &SubjectPublicKeyInfo<'_>) -> KeyType {
        let alg = &spki.algorithm.algorithm;
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            // RFC 5480 §2.1.1: "namedCurve OBJECT IDENTIFIER" is the only form PKIX
            // allows ("implicitCurve and specifiedCurve MUST NOT be used in PKIX").
            match spki.algorithm.parameters.as_ref().map(|p| p.as_oid()) {
                Some(Ok(curve)) if curve == OID_EC_P256 => KeyType::P256,
                Some(Ok(curve)) if curve == OID_NIST_EC_P384 => KeyType::P384,
                Some(Ok(curve)) => KeyType::OtherCurve(curve.to_id_string()),
                _ => KeyType::OtherCurve("(not a named curve)".to_owned()),
            }
        } else if *alg == OID_PKCS1_RSAENCRYPTION {
            KeyType::Rsa
        } else if *alg == OID_SIG_ED25519 {
            KeyType::Ed25519
        } else if *alg == OID_SIG_ED448 {
            KeyType::Ed448
        } else {
            KeyType::Other(alg.to_id_string())
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::P256 => f.write_str("an ECDSA P-256 key"),
            KeyType::P384 => f.write_str("an ECDSA P-384 key"),
            KeyType::Rsa => f.write_str("an RSA key"),
            KeyType::OtherCurve(curve) => write!(f, "an elliptic-curve key on curve {curve}"),
            KeyType::Ed25519 => f.write_str("an Ed25519 key"),
            KeyType::Ed448 => f.write_str("an Ed448 key"),
            KeyType::Other(oid) => write!(f, "a key of algorithm {oid}"),
        }
    }
}

/// Parses one DER certificate of at most [`MAX_CERTIFICATE_DER_LEN`] bytes with nothing
/// after it; `Err` is the reason, for the caller's error type.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    if der.len() > MAX_CERTIFICATE_DER_LEN {
        return Err(format!(
            "it is {} bytes long; the maximum is {MAX_CERTIFICATE_DER_LEN}",
            der.len()
        ));
    }
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes follow the certificate", rest.len()));
    }
    Ok(cert)
}

/// The extensions the certificate checks of this crate process: a critical one of these is accepted, any other
/// critical extension rejects the certificate.
///
/// RFC 5280 §4.2: "A certificate-using system MUST reject the certificate if it
/// encounters a critical extension it does not recognize or a critical extension that
/// contains information that it cannot process."
pub(crate) fn is_processed_extension(oid: &Oid<'_>) -> bool {
    [
        &OID_X509_EXT_KEY_USAGE,
        &OID_X509_EXT_BASIC_CONSTRAINTS,
        &OID_X509_EXT_EXTENDED_KEY_USAGE,
        &OID_X509_EXT_SUBJECT_ALT_NAME,
        &OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
        &OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
    ]
    .contains(&oid)
}

/// Checks the extension list: no duplicates (RFC 5280 §4.2: "A certificate MUST NOT
/// include more than one instance of a particular extension"), none of the processed
/// extensions malformed, no unprocessed critical extension. Returns the offending OID
/// and whether it is a malformation (`true`) or an unsupported critical extension.
pub(crate) fn check_extensions(cert: &X509Certificate<'_>) -> Result<(), (String, bool)> {
    let extensions = cert.extensions();
    // Sorted, so finding a repeat costs O(n log n) even for a certificate stuffed with
    // thousands of extensions.
    let mut oids: Vec<&[u8]> = extensions.iter().map(|e| e.oid.as_bytes()).collect();
    oids.sort_unstable();
    if let Some(pair) = oids.windows(2).find(|pair| pair.first() == pair.get(1))
        && let Some(repeated) = extensions
            .iter()
            .find(|e| Some(&e.oid.as_bytes()) == pair.first())
    {
        return Err((repeated.oid.to_id_string(), true));
    }
    for ext in extensions {
        let processed = is_processed_extension(&ext.oid);
        if processed && matches!(ext.parsed_extension(), ParsedExtension::ParseError { .. }) {
            return Err((ext.oid.to_id_string(), true));
        }
        if ext.critical && !processed {
            return Err((ext.oid.to_id_string(), false));
        }
    }
    Ok(())
}
