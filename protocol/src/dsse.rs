//! # DSSE v1 envelopes and PAE
//!
//! This module owns the Dead Simple Signing Envelope (DSSE) v1: the
//! Pre-Authentication Encoding ([`pae`]), the standard JSON envelope
//! ([`Envelope`]: parse, emit, sign, verify) and the two small traits through which
//! callers plug keys in ([`DsseSigner`], [`DsseVerifier`]). Implementations are
//! provided for Ed25519 (`ed25519-dalek`) and ECDSA P-256 (`p256`) keys, with
//! ASN.1 DER signatures (what Sigstore uses) or, wrapped in [`FixedEncoding`], the
//! fixed-size `r || s` encoding of the DSSE test vectors.
//!
//! Specification: DSSE v1.0.2, `protocol.md` and `envelope.md` of
//! <https://github.com/secure-systems-lab/dsse>. The sentences of the spec that a
//! piece of code implements are quoted beside it.
//!
//! Limits: an envelope's JSON is at most [`MAX_ENVELOPE_JSON_LEN`] bytes and carries
//! at most [`MAX_SIGNATURES`] signatures. Base64 must be canonical and padded; either
//! the standard or the URL-safe alphabet is accepted, and the standard one is
//! emitted.
//!
//! The payload is reached only through [`Envelope::verify`] (which returns the
//! verified bytes in a [`VerifiedPayload`]) or through the explicitly named
//! [`Envelope::unverified_payload`].

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::Deserialize;

/// Largest envelope JSON document [`Envelope::from_json`] accepts, in bytes (32 MiB).
///
/// A base64 payload grows by a third, so this admits payloads of about 24 MiB.
pub const MAX_ENVELOPE_JSON_LEN: usize = 32 * 1024 * 1024;

/// Most signatures an envelope may carry, when parsed or signed.
pub const MAX_SIGNATURES: usize = 64;

/// The fixed prefix of every PAE: `"DSSEv1" = ASCII [0x44, 0x53, 0x53, 0x45, 0x76, 0x31]`.
const PAE_PREFIX: &[u8] = b"DSSEv1";

/// Computes the DSSE Pre-Authentication Encoding of a payload type and a body.
///
/// Spec (protocol.md, "Signature Definition"):
///
/// ```none
/// PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP + LEN(body) + SP + body
/// +               = concatenation
/// SP              = ASCII space [0x20]
/// "DSSEv1"        = ASCII [0x44, 0x53, 0x53, 0x45, 0x76, 0x31]
/// LEN(s)          = ASCII decimal encoding of the byte length of s, with no leading zeros
/// ```
///
/// and `SIGNATURE = Sign(PAE(UTF8(PAYLOAD_TYPE), SERIALIZED_BODY))`: the type is
/// taken as its UTF-8 bytes, which is what a Rust `&str` already is.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        PAE_PREFIX.len() + 4 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(PAE_PREFIX);
    out.push(b' ');
    // `usize::to_string` is the decimal encoding "with no leading zeros".
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// One signature of an [`Envelope`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// "KEYID: Optional, unauthenticated hint indicating what key and algorithm was
    /// used to sign the message. [...] It **MUST NOT** be used for security
    /// decisions; it may only be used to narrow the selection of possible keys to
    /// try." An empty `keyid` in JSON is stored as `None` ("An unset field MUST be
    /// treated the same as set-but-empty").
    keyid: Option<String>,
    /// The raw signature bytes (base64-decoded).
    sig: Vec<u8>,
}

impl Signature {
    /// Builds a signature from its parts; an empty `keyid` is the same as none.
    pub fn new(keyid: Option<String>, sig: Vec<u8>) -> Signature {
        Signature {
            keyid: keyid.filter(|k| !k.is_empty()),
            sig,
        }
    }

    /// The unauthenticated key hint, if set and non-empty.
    pub fn keyid(&self) -> Option<&str> {
        self.keyid.as_deref()
    }

    /// The raw signature bytes.
    pub fn sig(&self) -> &[u8] {
        &self.sig
    }
}

/// A DSSE v1 JSON envelope: `{"payload", "payloadType", "signatures": [{"keyid", "sig"}]}`.
///
/// Parsed with [`Envelope::from_json`], emitted with [`Envelope::to_json`], created
/// with [`Envelope::sign`] and checked with [`Envelope::verify`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// SERIALIZED_BODY, base64-decoded.
    payload: Vec<u8>,
    /// PAYLOAD_TYPE: "Opaque, case-sensitive string that uniquely and unambiguously
    /// identifies how to interpret `payload`."
    payload_type: String,
    /// The signatures, in document order.
    signatures: Vec<Signature>,
}

/// Why [`Envelope::from_json`] rejected a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The document is longer than [`MAX_ENVELOPE_JSON_LEN`].
    #[error("DSSE envelope is {len} bytes, more than the limit of {max}")]
    TooLarge {
        /// Length of the rejected document.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// The document is not JSON of the envelope's shape: a required field
    /// (`payload`, `payloadType`, `signatures`, `sig`) is missing, a field has the
    /// wrong JSON type or appears twice.
    #[error("DSSE envelope is not valid JSON of the expected shape: {0}")]
    Json(#[source] serde_json::Error),
    /// `payload` is not canonical padded base64 in the standard or URL-safe alphabet.
    #[error("DSSE payload is not valid base64")]
    PayloadBase64,
    /// A signature's `sig` is not canonical padded base64 in either alphabet.
    #[error("DSSE signature {index} is not valid base64")]
    SignatureBase64 {
        /// Position of the signature in `signatures`.
        index: usize,
    },
    /// The envelope has more than [`MAX_SIGNATURES`] signatures.
    #[error("DSSE envelope has more than {max} signatures")]
    TooManySignatures {
        /// The limit it exceeded.
        max: usize,
    },
}

/// Why [`Envelope::sign`] or [`Envelope::add_signature`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The signer itself reported a failure (a key that cannot sign, an HSM error…).
    #[error("signer failed: {0}")]
    Signer(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The call asked for no signature at all (an empty signer list).
    #[error("no signer was given")]
    NoSigners,
    /// The envelope would carry more than [`MAX_SIGNATURES`] signatures.
    #[error("a DSSE envelope carries at most {max} signatures")]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
}

/// Why [`Envelope::verify`] or [`Envelope::verify_threshold`] rejected an envelope.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Fewer distinct verifiers accepted a signature than the threshold requires
    /// (for [`Envelope::verify`]: no signature verified with any verifier). This is
    /// also the answer for an envelope without signatures.
    #[error("{accepted} of the required {threshold} keys verified a DSSE signature")]
    ThresholdNotMet {
        /// Distinct verifiers that accepted some signature.
        accepted: usize,
        /// Distinct verifiers required.
        threshold: usize,
    },
    /// The caller asked for a threshold of zero, which would accept anything.
    #[error("a DSSE verification threshold must be at least 1")]
    ZeroThreshold,
}

/// A verifier rejected a signature (wrong key, malformed or invalid signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature rejected")]
pub struct SignatureRejected;

/// A public key that can check a DSSE signature.
///
/// Spec: "Sign() is an arbitrary digital signature format. Details are agreed upon
/// out-of-band by the signer and verifier." Implementations decide the algorithm
/// and the signature's byte encoding.
pub trait DsseVerifier {
    /// Checks `signature` over `message` (which is the PAE, not the payload).
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejected>;

    /// The key id this verifier answers to, if any. When both the verifier and a
    /// signature carry a key id and they differ, that pair is skipped ("Optionally,
    /// filter acceptable public keys by KEYID"); the key id never makes a signature
    /// acceptable.
    fn keyid(&self) -> Option<&str> {
        None
    }
}

/// A private key that can produce a DSSE signature.
pub trait DsseSigner {
    /// Signs `message` (which is the PAE, not the payload) and returns the
    /// signature bytes in the encoding the verifiers expect.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;

    /// The key id to record next to the signature, if any.
    fn keyid(&self) -> Option<&str> {
        None
    }
}

/// Ed25519 (RFC 8032) verification with the 64-byte signature.
///
/// Uses `verify_strict`: small-order keys and non-canonical signatures are rejected.
impl DsseVerifier for ed25519_dalek::VerifyingKey {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejected> {
        let bytes: &[u8; ed25519_dalek::SIGNATURE_LENGTH] =
            signature.try_into().map_err(|_| SignatureRejected)?;
        let signature = ed25519_dalek::Signature::from_bytes(bytes);
        self.verify_strict(message, &signature)
            .map_err(|_| SignatureRejected)
    }
}

/// Ed25519 signing; the signature is the 64-byte RFC 8032 encoding.
impl DsseSigner for ed25519_dalek::SigningKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature: ed25519_dalek::Signature = ed25519_dalek::Signer::try_sign(self, message)
            .map_err(|e| SignError::Signer(Box::new(e)))?;
        Ok(signature.to_bytes().to_vec())
    }
}

/// ECDSA P-256 with SHA-256 over the PAE; the signature is ASN.1 DER
/// (`Ecdsa-Sig-Value`), the encoding Sigstore bundles carry.
impl DsseVerifier for p256::ecdsa::VerifyingKey {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejected> {
        let signature =
            p256::ecdsa::Signature::from_der(signature).map_err(|_| SignatureRejected)?;
        p256::ecdsa::signature::Verifier::verify(self, message, &signature)
            .map_err(|_| SignatureRejected)
    }
}

/// ECDSA P-256 with SHA-256, deterministic nonces (RFC 6979, no RNG); the signature
/// is ASN.1 DER.
impl DsseSigner for p256::ecdsa::SigningKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature: p256::ecdsa::Signature =
            p256::ecdsa::signature::Signer::try_sign(self, message)
                .map_err(|e| SignError::Signer(Box::new(e)))?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

/// Wraps an ECDSA P-256 key so that signatures use the fixed-size `r || s`
/// encoding (64 bytes, IEEE P1363) instead of ASN.1 DER.
///
/// The DSSE spec's test vector uses this encoding ("Signature: raw concatenation
/// of r and s").
#[derive(Clone, Debug)]
pub struct FixedEncoding<K>(pub K);

impl DsseVerifier for FixedEncoding<p256::ecdsa::VerifyingKey> {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejected> {
        let signature =
            p256::ecdsa::Signature::from_slice(signature).map_err(|_| SignatureRejected)?;
        p256::ecdsa::signature::Verifier::verify(&self.0, message, &signature)
            .map_err(|_| SignatureRejected)
    }
}

impl DsseSigner for FixedEncoding<p256::ecdsa::SigningKey> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let signature: p256::ecdsa::Signature =
            p256::ecdsa::signature::Signer::try_sign(&self.0, message)
                .map_err(|e| SignError::Signer(Box::new(e)))?;
        Ok(signature.to_bytes().to_vec())
    }
}

/// Attaches a key id to a signer or verifier.
///
/// As a signer, the key id is written into the signature; as a verifier, it
/// narrows which signatures the key is tried against (never more than that).
#[derive(Clone, Debug)]
pub struct WithKeyId<K> {
    /// The wrapped key.
    pub key: K,
    /// The key id ("KEYID"), agreed upon out of band.
    pub keyid: String,
}

impl<K: DsseVerifier> DsseVerifier for WithKeyId<K> {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureRejected> {
        self.key.verify(message, signature)
    }

    fn keyid(&self) -> Option<&str> {
        Some(self.keyid.as_str()).filter(|k| !k.is_empty())
    }
}

impl<K: DsseSigner> DsseSigner for WithKeyId<K> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.key.sign(message)
    }

    fn keyid(&self) -> Option<&str> {
        Some(self.keyid.as_str()).filter(|k| !k.is_empty())
    }
}

/// Which signature of an envelope was accepted, and by which verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignatureMatch {
    /// Index into [`Envelope::signatures`].
    pub signature_index: usize,
    /// Index into the verifier slice given to [`Envelope::verify`].
    pub verifier_index: usize,
}

/// The result of a successful verification: the authenticated payload type and
/// payload, borrowed from the very envelope that was verified.
///
/// Spec: "Implementations MUST ensure that the same SERIALIZED_BODY that is
/// verified is the same sent to the application layer. In particular,
/// implementations MUST NOT re-parse the envelope after verification to pull out
/// the payload." Hand this value, not the envelope, to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPayload<'a> {
    /// The authenticated PAYLOAD_TYPE.
    payload_type: &'a str,
    /// The authenticated SERIALIZED_BODY.
    payload: &'a [u8],
    /// The accepted (signature, verifier) pairs, one per distinct verifier.
    matches: Vec<SignatureMatch>,
}

impl<'a> VerifiedPayload<'a> {
    /// The authenticated payload type.
    pub fn payload_type(&self) -> &'a str {
        self.payload_type
    }

    /// The authenticated payload bytes.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The accepted (signature, verifier) pairs, one per distinct verifier, in the
    /// order they were found. Never empty.
    pub fn matches(&self) -> &[SignatureMatch] {
        &self.matches
    }

    /// The first accepted pair: which signature verified, and with which verifier.
    pub fn first_match(&self) -> Option<SignatureMatch> {
        self.matches.first().copied()
    }
}

/// The JSON shape of an envelope as read from the wire.
///
/// envelope.md, "Parsing rules": "The following fields are REQUIRED and MUST be
/// set, even if empty: `payload`, `payloadType`, `signature`, `signature.sig`."
/// and "Consumers MUST ignore unrecognized fields." (serde ignores unknown fields
/// and rejects a known field that appears twice.)
#[derive(Deserialize)]
struct WireEnvelope {
    payload: String,
    #[serde(rename = "payloadType")]
    payload_type: String,
    signatures: BoundedSignatures,
}

/// One signature as read from the wire.
#[derive(Deserialize)]
struct WireSignature {
    /// "The following fields are OPTIONAL and MAY be unset: `signature.keyid`."
    #[serde(default)]
    keyid: Option<String>,
    sig: String,
}

/// The `signatures` array, refusing to grow past [`MAX_SIGNATURES`] while parsing.
struct BoundedSignatures(Vec<WireSignature>);

impl<'de> Deserialize<'de> for BoundedSignatures {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = BoundedSignatures;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an array of at most {MAX_SIGNATURES} signatures")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<WireSignature>()? {
                    if out.len() >= MAX_SIGNATURES {
                        return Err(serde::de::Error::custom(TOO_MANY_SIGNATURES));
                    }
                    out.push(item);
                }
                Ok(BoundedSignatures(out))
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

/// Marker message used to map the bounded-array error back to a typed variant.
const TOO_MANY_SIGNATURES: &str = "too many DSSE signatures";

/// Decodes DSSE base64: "Either standard or URL-safe base64 encodings are allowed.
/// Signers may use either, and verifiers **MUST** accept either."
///
/// Padding must be present and canonical, and unused trailing bits zero (as the
/// DSSE reference implementation's `b64decode(validate=True)` and the Go
/// implementations' `StdEncoding`/`URLEncoding` demand).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}

/// Serializes as the standard JSON envelope (see [`Envelope::to_json`]), so an envelope
/// can be embedded in other serde documents.
impl serde::Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json_value().serialize(serializer)
    }
}

/// Deserializes the standard JSON envelope with the rules of [`Envelope::from_json`],
/// except the document size bound, which belongs to the enclosing document.
impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireEnvelope::deserialize(deserializer)?;
        Envelope::from_wire(wire).map_err(serde::de::Error::custom)
    }
}

impl Envelope {
    /// An envelope with a payload and no signature yet (see [`Envelope::add_signature`]).
    pub fn new(payload_type: impl Into<String>, payload: impl Into<Vec<u8>>) -> Envelope {
        Envelope {
            payload: payload.into(),
            payload_type: payload_type.into(),
            signatures: Vec::new(),
        }
    }

    /// Builds an envelope from already decoded parts, e.g. from a Sigstore bundle's
    /// `dsseEnvelope`. Fails if there are more than [`MAX_SIGNATURES`] signatures.
    pub fn from_parts(
        payload_type: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        signatures: Vec<Signature>,
    ) -> Result<Envelope, ParseError> {
        if signatures.len() > MAX_SIGNATURES {
            return Err(ParseError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        Ok(Envelope {
            payload: payload.into(),
            payload_type: payload_type.into(),
            signatures,
        })
    }

    /// Parses a JSON envelope.
    ///
    /// Spec (protocol.md, "To verify"): "Receive and decode SERIALIZED_BODY,
    /// PAYLOAD_TYPE, SIGNATURE, and KEYID, such as from the recommended JSON
    /// envelope. Reject if decoding fails." Parsing does not verify anything.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, ParseError> {
        if bytes.len() > MAX_ENVELOPE_JSON_LEN {
            return Err(ParseError::TooLarge {
                len: bytes.len(),
                max: MAX_ENVELOPE_JSON_LEN,
            });
        }
        let wire: WireEnvelope = serde_json::from_slice(bytes).map_err(|e| {
            if e.to_string().starts_with(TOO_MANY_SIGNATURES) {
                ParseError::TooManySignatures {
                    max: MAX_SIGNATURES,
                }
            } else {
                ParseError::Json(e)
            }
        })?;
        Envelope::from_wire(wire)
    }

    /// Decodes the base64 fields of a parsed wire envelope.
    fn from_wire(wire: WireEnvelope) -> Result<Envelope, ParseError> {
        let payload = decode_base64(&wire.payload).ok_or(ParseError::PayloadBase64)?;
        let signatures = wire
            .signatures
            .0
            .into_iter()
            .enumerate()
            .map(|(index, s)| {
                let sig = decode_base64(&s.sig).ok_or(ParseError::SignatureBase64 { index })?;
                Ok(Signature::new(s.keyid, sig))
            })
            .collect::<Result<Vec<_>, ParseError>>()?;
        Ok(Envelope {
            payload,
            payload_type: wire.payload_type,
            signatures,
        })
    }

    /// The envelope as a JSON value, with standard base64 and the spec's field names.
    pub fn to_json_value(&self) -> serde_json::Value {
        let signatures: Vec<serde_json::Value> = self
            .signatures
            .iter()
            .map(|s| {
                let mut obj = serde_json::Map::new();
                if let Some(keyid) = &s.keyid {
                    obj.insert("keyid".into(), keyid.clone().into());
                }
                obj.insert("sig".into(), STANDARD.encode(&s.sig).into());
                serde_json::Value::Object(obj)
            })
            .collect();
        let mut obj = serde_json::Map::new();
        obj.insert("payload".into(), STANDARD.encode(&self.payload).into());
        obj.insert("payloadType".into(), self.payload_type.clone().into());
        obj.insert("signatures".into(), signatures.into());
        serde_json::Value::Object(obj)
    }

    /// Serializes the envelope as compact JSON (standard base64, padded). An unset
    /// key id is omitted.
    pub fn to_json(&self) -> Vec<u8> {
        self.to_json_value().to_string().into_bytes()
    }

    /// The payload type. Unauthenticated until [`Envelope::verify`] succeeds.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The payload bytes, **not verified**. Use [`Envelope::verify`] and
    /// [`VerifiedPayload::payload`] for anything that is trusted.
    pub fn unverified_payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signatures, in document order.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// The PAE of this envelope's payload type and payload: the bytes every
    /// signature signs.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }

    /// Creates an envelope signed by every signer, in order.
    ///
    /// Spec (protocol.md, "To sign"): "Sign PAE(UTF8(PAYLOAD_TYPE),
    /// SERIALIZED_BODY). Call the result SIGNATURE. Optionally, compute a KEYID."
    pub fn sign(
        payload_type: impl Into<String>,
        payload: impl Into<Vec<u8>>,
        signers: &[&dyn DsseSigner],
    ) -> Result<Envelope, SignError> {
        if signers.is_empty() {
            return Err(SignError::NoSigners);
        }
        let mut envelope = Envelope::new(payload_type, payload);
        for signer in signers {
            envelope.add_signature(*signer)?;
        }
        Ok(envelope)
    }

    /// Appends one more signature over this envelope's PAE.
    pub fn add_signature(&mut self, signer: &dyn DsseSigner) -> Result<(), SignError> {
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(SignError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let sig = signer.sign(&self.pae())?;
        self.signatures
            .push(Signature::new(signer.keyid().map(str::to_owned), sig));
        Ok(())
    }

    /// Verifies that at least one signature verifies with one of `verifiers`, and
    /// returns the authenticated payload with the first accepted pair.
    ///
    /// Spec: "Optionally, filter acceptable public keys by KEYID. Verify SIGNATURE
    /// against PAE(UTF8(PAYLOAD_TYPE), SERIALIZED_BODY). Reject if the verification
    /// fails." Checking that the payload type is supported is the caller's next
    /// step ("Reject if PAYLOAD_TYPE is not a supported type"), e.g.
    /// [`crate::intoto::Statement::from_verified`].
    pub fn verify<'a>(
        &'a self,
        verifiers: &[&dyn DsseVerifier],
    ) -> Result<VerifiedPayload<'a>, VerifyError> {
        self.verify_threshold(verifiers, 1)
    }

    /// Verifies a `(t, n)`-envelope: at least `threshold` distinct verifiers must
    /// each accept some signature.
    ///
    /// Spec (protocol.md, "Multi-signature Verification"): "A `(t, n)`-ENVELOPE is
    /// valid if the enclosed signatures pass the verification against at least `t`
    /// of `n` unique trusted public keys". Each entry of `verifiers` counts as one
    /// key: the caller must not pass the same key twice. A key is counted once,
    /// whatever number of signatures it verifies. The work is bounded by
    /// [`MAX_SIGNATURES`] × `verifiers.len()` signature checks.
    pub fn verify_threshold<'a>(
        &'a self,
        verifiers: &[&dyn DsseVerifier],
        threshold: usize,
    ) -> Result<VerifiedPayload<'a>, VerifyError> {
        if threshold == 0 {
            return Err(VerifyError::ZeroThreshold);
        }
        let message = self.pae();
        let mut matches: Vec<SignatureMatch> = Vec::new();
        // "For each (SIGNATURE, KEYID) in SIGNATURES, [...] Break if the number of
        // unique keys in ACCEPTED_KEYS is greater or equal to `t`."
        'signatures: for (signature_index, signature) in self.signatures.iter().enumerate() {
            for (verifier_index, verifier) in verifiers.iter().enumerate() {
                if matches.iter().any(|m| m.verifier_index == verifier_index) {
                    continue;
                }
                // KEYID "may only be used to narrow the selection of possible keys
                // to try": skip only when both sides name a key and the names differ.
                if let (Some(want), Some(have)) = (signature.keyid(), verifier.keyid())
                    && want != have
                {
                    continue;
                }
                if verifier.verify(&message, &signature.sig).is_ok() {
                    matches.push(SignatureMatch {
                        signature_index,
                        verifier_index,
                    });
                    if matches.len() >= threshold {
                        break 'signatures;
                    }
                }
            }
        }
        // "Reject if the unique keys in ACCEPTED_KEYS is less than `t`."
        if matches.len() < threshold {
            return Err(VerifyError::ThresholdNotMet {
                accepted: matches.len(),
                threshold,
            });
        }
        Ok(VerifiedPayload {
            payload_type: &self.payload_type,
            payload: &self.payload,
            matches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_of_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn pae_of_empty_inputs() {
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn pae_counts_utf8_bytes_not_chars() {
        // "é" is two bytes in UTF-8.
        assert_eq!(pae("é", b"x"), "DSSEv1 2 é 1 x".as_bytes().to_vec());
    }

    #[test]
    fn url_safe_and_standard_base64_are_both_accepted() {
        // 0xfb 0xff encodes as "+/8=" (standard) and "-_8=" (URL-safe).
        let std = br#"{"payload":"+/8=","payloadType":"t","signatures":[]}"#;
        let url = br#"{"payload":"-_8=","payloadType":"t","signatures":[]}"#;
        let a = Envelope::from_json(std).unwrap();
        let b = Envelope::from_json(url).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.unverified_payload(), &[0xfb, 0xff]);
        // Emitted in the standard alphabet.
        assert_eq!(a.to_json(), std.to_vec());
    }

    #[test]
    fn mixed_alphabets_and_bad_padding_are_rejected() {
        for payload in [
            "+_8=",
            "+/8",
            "+/9=",
            "aGVsbG8gd29ybGQ",
            " aGk=",
            "aGk=\\n",
            "aGk=\\u0000",
        ] {
            let doc = format!(r#"{{"payload":"{payload}","payloadType":"t","signatures":[]}}"#);
            assert!(
                matches!(
                    Envelope::from_json(doc.as_bytes()),
                    Err(ParseError::PayloadBase64)
                ),
                "{payload}"
            );
        }
    }

    #[test]
    fn required_fields_must_be_present() {
        for doc in [
            r#"{"payloadType":"t","signatures":[]}"#,
            r#"{"payload":"","signatures":[]}"#,
            r#"{"payload":"","payloadType":"t"}"#,
            r#"{"payload":"","payloadType":"t","signatures":[{"keyid":"k"}]}"#,
            r#"{"payload":"","payload":"","payloadType":"t","signatures":[]}"#,
        ] {
            assert!(
                matches!(
                    Envelope::from_json(doc.as_bytes()),
                    Err(ParseError::Json(_))
                ),
                "{doc}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_empty_keyid_is_unset() {
        let doc = br#"{"payload":"","payloadType":"","signatures":[{"keyid":"","sig":"","x":1}],"extra":[1]}"#;
        let env = Envelope::from_json(doc).unwrap();
        assert_eq!(env.signatures().len(), 1);
        assert_eq!(env.signatures()[0].keyid(), None);
    }

    #[test]
    fn too_many_signatures_is_a_typed_error() {
        let sigs = vec![r#"{"sig":""}"#; MAX_SIGNATURES + 1].join(",");
        let doc = format!(r#"{{"payload":"","payloadType":"t","signatures":[{sigs}]}}"#);
        assert!(matches!(
            Envelope::from_json(doc.as_bytes()),
            Err(ParseError::TooManySignatures { .. })
        ));
    }

    #[test]
    fn serde_embedding_round_trips() {
        let env = Envelope::from_parts(
            "t",
            b"payload".to_vec(),
            vec![Signature::new(Some("k".into()), vec![1, 2, 3])],
        )
        .unwrap();
        let doc = serde_json::json!({ "record": env });
        let back: std::collections::BTreeMap<String, Envelope> =
            serde_json::from_value(doc).unwrap();
        assert_eq!(back["record"], env);
        let bad = serde_json::json!({"payload": "!", "payloadType": "t", "signatures": []});
        assert!(serde_json::from_value::<Envelope>(bad).is_err());
    }

    #[test]
    fn zero_threshold_is_refused() {
        let env = Envelope::new("t", b"x".to_vec());
        assert!(matches!(
            env.verify_threshold(&[], 0),
            Err(VerifyError::ZeroThreshold)
        ));
        assert!(matches!(
            env.verify(&[]),
            Err(VerifyError::ThresholdNotMet {
                accepted: 0,
                threshold: 1
            })
        ));
    }
}
