//! # Sigstore bundle and TrustedRoot documents
//!
//! This module owns reading and writing the two Sigstore JSON documents provmesh
//! exchanges with stock Sigstore clients: the **bundle** (`*.sigstore.json`, media
//! type `application/vnd.dev.sigstore.bundle.v0.3+json`; v0.1 and v0.2 are read and
//! reported) and the **TrustedRoot** (`trusted_root.json`). The message types are
//! those of `sigstore_protobuf_specs` (the protobuf-specs of
//! <https://github.com/sigstore/protobuf-specs>, `sigstore_bundle.proto` and
//! `sigstore_trustroot.proto`), whose serde implementations use the canonical
//! protobuf JSON mapping: lowerCamelCase names, `bytes` as base64, 64-bit integers
//! as strings, enums by name, default values omitted, unknown fields rejected.
//!
//! This module checks media types, sizes and the presence of the parts every
//! bundle needs; it does not verify signatures, certificates, inclusion proofs or
//! checkpoints (that is the verifier's job), except that [`ParsedBundle::dsse_envelope`]
//! hands the DSSE envelope to [`crate::dsse`] for signature checks.

use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{bundle, verification_material};

pub use sigstore_protobuf_specs::dev::sigstore::bundle::v1::Bundle;
pub use sigstore_protobuf_specs::dev::sigstore::trustroot::v1::TrustedRoot;

use crate::dsse;

/// Media type of a v0.3 bundle, the one provmesh writes.
///
/// sigstore_bundle.proto: "MUST be application/vnd.dev.sigstore.bundle.v0.3+json
/// when when encoded as JSON."
pub const BUNDLE_MEDIA_TYPE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Media type of a TrustedRoot as provmesh writes it.
///
/// sigstore_trustroot.proto: "Clients MAY process and parse content with the media
/// type defined in the old format: application/vnd.dev.sigstore.trustedroot+json;version=0.1".
/// sigstore-python accepts only this form, so it is the one provmesh emits.
pub const TRUSTED_ROOT_MEDIA_TYPE_V0_1: &str =
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1";

/// Default size bound for a bundle document (32 MiB: bundles carry DSSE payloads).
pub const DEFAULT_MAX_BUNDLE_LEN: usize = 32 * 1024 * 1024;

/// Default size bound for a TrustedRoot document (4 MiB; the public-good one is
/// about 7 KiB).
pub const DEFAULT_MAX_TRUSTED_ROOT_LEN: usize = 4 * 1024 * 1024;

/// The bundle format version, from the media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum BundleVersion {
    /// `application/vnd.dev.sigstore.bundle+json;version=0.1`.
    V0_1,
    /// `application/vnd.dev.sigstore.bundle+json;version=0.2`.
    V0_2,
    /// `application/vnd.dev.sigstore.bundle.v0.3+json` or the older spelling
    /// `application/vnd.dev.sigstore.bundle+json;version=0.3`.
    V0_3,
}

impl BundleVersion {
    /// The version of a bundle media type, if it is one this module reads.
    ///
    /// sigstore_bundle.proto: "Clients must to be able to accept media type using the
    /// previously defined formats: * application/vnd.dev.sigstore.bundle+json;version=0.1
    /// * application/vnd.dev.sigstore.bundle+json;version=0.2
    /// * application/vnd.dev.sigstore.bundle+json;version=0.3"
    pub fn from_media_type(media_type: &str) -> Option<BundleVersion> {
        match media_type {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => Some(BundleVersion::V0_1),
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => Some(BundleVersion::V0_2),
            BUNDLE_MEDIA_TYPE_V0_3 | "application/vnd.dev.sigstore.bundle+json;version=0.3" => {
                Some(BundleVersion::V0_3)
            }
            _ => None,
        }
    }
}

/// The TrustedRoot format version, from the media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TrustedRootVersion {
    /// `application/vnd.dev.sigstore.trustedroot+json;version=0.1` or
    /// `application/vnd.dev.sigstore.trustedroot.v0.1+json`.
    V0_1,
    /// `application/vnd.dev.sigstore.trustedroot.v0.2+json`.
    V0_2,
}

impl TrustedRootVersion {
    /// The version of a TrustedRoot media type, if it is one this module reads.
    ///
    /// sigstore_trustroot.proto: "MUST be application/vnd.dev.sigstore.trustedroot.v0.2+json
    /// when encoded as JSON. Clients MAY choose to also support
    /// application/vnd.dev.sigstore.trustedroot.v0.1+json. Clients MAY process and
    /// parse content with the media type defined in the old format:
    /// application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    pub fn from_media_type(media_type: &str) -> Option<TrustedRootVersion> {
        match media_type {
            TRUSTED_ROOT_MEDIA_TYPE_V0_1 | "application/vnd.dev.sigstore.trustedroot.v0.1+json" => {
                Some(TrustedRootVersion::V0_1)
            }
            "application/vnd.dev.sigstore.trustedroot.v0.2+json" => Some(TrustedRootVersion::V0_2),
            _ => None,
        }
    }
}

/// Why a bundle document was rejected by [`ParsedBundle::from_json`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The document is longer than the caller's bound.
    #[error("bundle is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the rejected document.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// Not JSON, or not the protobuf-JSON form of a `Bundle` (unknown field, wrong
    /// type, bad base64, two members of a oneof…).
    #[error("bundle is not valid protobuf JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The media type is none of the bundle media types.
    #[error("unsupported bundle media type {0:?}")]
    UnsupportedMediaType(String),
    /// `verificationMaterial` is absent, or holds neither a public key, a
    /// certificate nor a certificate chain.
    #[error("bundle has no verification material")]
    MissingVerificationMaterial,
    /// The bundle has neither `messageSignature` nor `dsseEnvelope`.
    #[error("bundle has neither a message signature nor a DSSE envelope")]
    MissingContent,
}

/// Why a TrustedRoot document was rejected by [`parse_trusted_root`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustedRootError {
    /// The document is longer than the caller's bound.
    #[error("trusted root is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the rejected document.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// Not JSON, or not the protobuf-JSON form of a `TrustedRoot`.
    #[error("trusted root is not valid protobuf JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The media type is none of the TrustedRoot media types.
    #[error("unsupported trusted root media type {0:?}")]
    UnsupportedMediaType(String),
}

/// Why [`ParsedBundle::dsse_envelope`] could not produce an envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleEnvelopeError {
    /// The bundle's content is a message signature, not a DSSE envelope.
    #[error("bundle content is not a DSSE envelope")]
    NotDsse,
    /// The envelope has more signatures than [`dsse::MAX_SIGNATURES`].
    #[error("bundle DSSE envelope is not acceptable: {0}")]
    Envelope(#[from] dsse::ParseError),
}

/// Why serializing a Sigstore document failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerializeError {
    /// The JSON encoder failed (for example on a timestamp outside the range the
    /// protobuf JSON mapping allows).
    #[error("cannot encode as protobuf JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// A bundle read from JSON, with the version its media type announced.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedBundle {
    /// The bundle message.
    pub bundle: Bundle,
    /// The version its media type announced.
    pub version: BundleVersion,
}

impl ParsedBundle {
    /// Parses a bundle from JSON, at most `max_len` bytes long (see
    /// [`DEFAULT_MAX_BUNDLE_LEN`]), checks its media type and that it has
    /// verification material and content.
    pub fn from_json(bytes: &[u8], max_len: usize) -> Result<ParsedBundle, BundleError> {
        if bytes.len() > max_len {
            return Err(BundleError::TooLarge {
                len: bytes.len(),
                max: max_len,
            });
        }
        let bundle: Bundle = serde_json::from_slice(bytes).map_err(BundleError::Json)?;
        let version = BundleVersion::from_media_type(&bundle.media_type)
            .ok_or_else(|| BundleError::UnsupportedMediaType(bundle.media_type.clone()))?;
        if bundle
            .verification_material
            .as_ref()
            .and_then(|m| m.content.as_ref())
            .is_none()
        {
            return Err(BundleError::MissingVerificationMaterial);
        }
        if bundle.content.is_none() {
            return Err(BundleError::MissingContent);
        }
        Ok(ParsedBundle { bundle, version })
    }

    /// Serializes the bundle as protobuf JSON (compact), leaving out default-valued
    /// fields as the protobuf JSON mapping allows. Bundles provmesh hands to clients go
    /// through [`crate::sigstore_bundle::to_json`] instead: sigstore-python requires
    /// `logIndex` and `hashes` even when they are `0` and empty.
    pub fn to_json(&self) -> Result<Vec<u8>, SerializeError> {
        bundle_to_json(&self.bundle)
    }

    /// The DER bytes of the signing certificate: the v0.3 `certificate`, or the
    /// first (leaf) certificate of an `x509CertificateChain`. `None` when the bundle
    /// names a public key instead.
    ///
    /// sigstore_bundle.proto: "A sequence of one or more X.509 certificates, of
    /// which the first member MUST be a leaf certificate conveying the signing key."
    pub fn leaf_certificate_der(&self) -> Option<&[u8]> {
        match self
            .bundle
            .verification_material
            .as_ref()?
            .content
            .as_ref()?
        {
            verification_material::Content::Certificate(cert) => Some(&cert.raw_bytes),
            verification_material::Content::X509CertificateChain(chain) => {
                chain.certificates.first().map(|c| c.raw_bytes.as_slice())
            }
            verification_material::Content::PublicKey(_) => None,
        }
    }

    /// The bundle's DSSE envelope as a [`dsse::Envelope`], for signature checks.
    ///
    /// sigstore_bundle.proto: "DSSE envelopes in a bundle MUST have exactly one
    /// signature. [...] During verification a client MUST reject an envelope if the
    /// number of signatures is not equal to one." That check belongs to the
    /// verifier; this conversion keeps every signature.
    pub fn dsse_envelope(&self) -> Result<dsse::Envelope, BundleEnvelopeError> {
        let Some(bundle::Content::DsseEnvelope(env)) = &self.bundle.content else {
            return Err(BundleEnvelopeError::NotDsse);
        };
        let signatures = env
            .signatures
            .iter()
            .map(|s| dsse::Signature::new(Some(s.keyid.clone()), s.sig.clone()))
            .collect();
        Ok(dsse::Envelope::from_parts(
            env.payload_type.clone(),
            env.payload.clone(),
            signatures,
        )?)
    }
}

/// Serializes any bundle as protobuf JSON (compact), leaving out default-valued fields
/// (see [`ParsedBundle::to_json`] and [`crate::sigstore_bundle::to_json`]).
pub fn bundle_to_json(bundle: &Bundle) -> Result<Vec<u8>, SerializeError> {
    serde_json::to_vec(bundle).map_err(SerializeError::Json)
}

/// Parses a TrustedRoot from JSON, at most `max_len` bytes long (see
/// [`DEFAULT_MAX_TRUSTED_ROOT_LEN`]), and checks its media type. Returns the
/// version the media type announced.
pub fn parse_trusted_root(
    bytes: &[u8],
    max_len: usize,
) -> Result<(TrustedRoot, TrustedRootVersion), TrustedRootError> {
    if bytes.len() > max_len {
        return Err(TrustedRootError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    let root: TrustedRoot = serde_json::from_slice(bytes).map_err(TrustedRootError::Json)?;
    let version = TrustedRootVersion::from_media_type(&root.media_type)
        .ok_or_else(|| TrustedRootError::UnsupportedMediaType(root.media_type.clone()))?;
    Ok((root, version))
}

/// Serializes a TrustedRoot as protobuf JSON (compact).
pub fn trusted_root_to_json(root: &TrustedRoot) -> Result<Vec<u8>, SerializeError> {
    serde_json::to_vec(root).map_err(SerializeError::Json)
}
