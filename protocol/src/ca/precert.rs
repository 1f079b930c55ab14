//! Rebuilding the precertificate TBS from a final certificate, and reading its embedded
//! SCT list: what a verifier does before [`verify_sct`](super::verify_sct).
//!
//! RFC 6962 §3.2: "Note that it is also possible to reconstruct this TBSCertificate from
//! the final certificate by extracting the TBSCertificate from it and deleting the SCT
//! extension." The deletion here is byte surgery: the SCT extension's encoding is cut
//! out of the `Extensions` SEQUENCE and the enclosing lengths are re-encoded, every other
//! byte copied. For a certificate in canonical DER (which the reader checks for every
//! length it walks, and which rcgen writes) this equals decoding and re-encoding the TBS
//! without the extension, as Sigstore verifiers do.

use thiserror::Error;

use super::OID_CT_PRECERT_SCTS_DER;
use super::der::{self, DerError, TAG_BOOLEAN, TAG_EXTENSIONS, TAG_OCTET_STRING, TAG_SEQUENCE};
use super::sct::{SctDecodeError, SignedCertificateTimestamp, decode_sct_list};

/// The largest certificate [`embedded_scts`] reads, in bytes (the limit the log applies
/// to signer certificates).
pub const MAX_EMBEDDED_SCT_CERTIFICATE_LEN: usize = 16 * 1024;

/// Why a certificate's embedded SCTs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EmbeddedSctError {
    /// The certificate is larger than [`MAX_EMBEDDED_SCT_CERTIFICATE_LEN`].
    #[error("certificate is {len} bytes long; the maximum is {MAX_EMBEDDED_SCT_CERTIFICATE_LEN}")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// The certificate is not DER of the `Certificate` shape (RFC 5280 §4.1).
    #[error("certificate is not a DER X.509 certificate: {0}")]
    Der(#[from] DerError),
    /// A structure does not have the shape RFC 5280 §4.1 gives it.
    #[error("certificate is not a DER X.509 certificate: {0}")]
    Shape(&'static str),
    /// No SCT list extension.
    #[error("certificate has no embedded SCT list extension (1.3.6.1.4.1.11129.2.4.2)")]
    NoSctList,
    /// The SCT list extension appears more than once.
    #[error("certificate has more than one SCT list extension (1.3.6.1.4.1.11129.2.4.2)")]
    DuplicateSctList,
    /// The extension value is not an OCTET STRING holding an SCT list.
    #[error("certificate SCT list extension is malformed: {0}")]
    SctList(#[from] SctDecodeError),
}

/// What a final certificate carries for CT: the precertificate TBS its SCTs sign, and
/// the SCTs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedScts {
    /// The certificate's DER `TBSCertificate` without the SCT list extension.
    pub precertificate_tbs_der: Vec<u8>,
    /// The SCTs of the list, in order.
    pub scts: Vec<SignedCertificateTimestamp>,
}

/// Reads the embedded SCT list of a DER certificate and rebuilds its precertificate TBS.
///
/// The certificate must carry exactly one SCT list extension, whose value (RFC 6962
/// §3.3: "an X509v3 certificate extension [...] with OID 1.3.6.1.4.1.11129.2.4.2", the
/// `extnValue` being an OCTET STRING that holds the DER OCTET STRING of the TLS
/// `SignedCertificateTimestampList`) decodes as v1 SCTs. Signatures are not checked.
pub fn embedded_scts(certificate_der: &[u8]) -> Result<EmbeddedScts, EmbeddedSctError> {
    if certificate_der.len() > MAX_EMBEDDED_SCT_CERTIFICATE_LEN {
        return Err(EmbeddedSctError::TooLarge {
            len: certificate_der.len(),
        });
    }
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let certificate = der::read_only(certificate_der, TAG_SEQUENCE)?;
    let (tbs, _) = der::read(certificate.content)?;
    if tbs.tag != TAG_SEQUENCE {
        return Err(EmbeddedSctError::Shape("tbsCertificate is not a SEQUENCE"));
    }
    let fields = der::children(tbs.content)?;
    // `extensions [3] EXPLICIT Extensions OPTIONAL` is the last TBSCertificate field.
    let Some((last, before)) = fields.split_last() else {
        return Err(EmbeddedSctError::Shape("tbsCertificate is empty"));
    };
    if last.tag != TAG_EXTENSIONS {
        return Err(EmbeddedSctError::NoSctList);
    }
    let extensions = der::read_only(last.content, TAG_SEQUENCE)?;
    let mut kept: Vec<u8> = Vec::with_capacity(extensions.content.len());
    let mut sct_list: Option<&[u8]> = None;
    for extension in der::children(extensions.content)? {
        if extension.tag != TAG_SEQUENCE {
            return Err(EmbeddedSctError::Shape("an extension is not a SEQUENCE"));
        }
        match sct_list_value(extension.content)? {
            None => kept.extend_from_slice(extension.raw),
            Some(_) if sct_list.is_some() => return Err(EmbeddedSctError::DuplicateSctList),
            Some(value) => sct_list = Some(value),
        }
    }
    let sct_list = sct_list.ok_or(EmbeddedSctError::NoSctList)?;
    let scts = decode_sct_list(der::read_only(sct_list, TAG_OCTET_STRING)?.content)?;

    let mut tbs_content: Vec<u8> = Vec::with_capacity(tbs.content.len());
    for field in before {
        tbs_content.extend_from_slice(field.raw);
    }
    // RFC 5280 §4.1: "Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension" — with no
    // extension left, the optional field is absent rather than empty.
    if !kept.is_empty() {
        tbs_content.extend_from_slice(&der::tlv(TAG_EXTENSIONS, &der::tlv(TAG_SEQUENCE, &kept)));
    }
    Ok(EmbeddedScts {
        precertificate_tbs_der: der::tlv(TAG_SEQUENCE, &tbs_content),
        scts,
    })
}

/// For the content of one `Extension` SEQUENCE: `Some(extnValue content)` if it is the
/// SCT list extension, `None` for any other extension.
///
/// ```text
/// Extension ::= SEQUENCE {
///     extnID      OBJECT IDENTIFIER,
///     critical    BOOLEAN DEFAULT FALSE,
///     extnValue   OCTET STRING }
/// ```
fn sct_list_value(extension: &[u8]) -> Result<Option<&[u8]>, EmbeddedSctError> {
    let parts = der::children(extension)?;
    let (oid, value) = match parts.as_slice() {
        [oid, value] => (oid, value),
        [oid, critical, value] if critical.tag == TAG_BOOLEAN => (oid, value),
        _ => return Err(EmbeddedSctError::Shape("an extension has the wrong fields")),
    };
    if value.tag != TAG_OCTET_STRING {
        return Err(EmbeddedSctError::Shape(
            "an extension value is not an OCTET STRING",
        ));
    }
    Ok((oid.raw == OID_CT_PRECERT_SCTS_DER).then_some(value.content))
}
