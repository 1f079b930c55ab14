//! C2SP tlog-cosignature/v1 (<https://c2sp.org/tlog-cosignature>), Ed25519 variant.
//!
//! This module owns witness cosignatures: the `0x04` key ID, the timestamped signature
//! layout and the signed message. A cosignature is an ordinary signed-note signature line
//! ([`crate::note`]) added to a checkpoint ([`crate::checkpoint`]); this module produces
//! and verifies the bytes of that line. The ML-DSA-44 variant (`0x06`) is not
//! implemented.
//!
//! Spec: "A cosignature is a statement by a *cosigner* that it verified the consistency of
//! a checkpoint or subtree." "Semantically, a v1 cosignature is a statement that, as of
//! the specified time, the consistent tree head with the largest size the cosigner has
//! observed for the log identified by the origin line has the specified root hash."
//!
//! The timestamp is always an argument: this crate reads no clock. Verification returns
//! the verified timestamp; "verifiers MAY reject cosignatures with timestamps in the
//! future" is left to the caller, who knows the time and its skew tolerance.

use std::fmt;

use crate::checkpoint::Checkpoint;
use crate::note::{
    ED25519_SIGNATURE_LEN, KeyId, KeyName, KeyParseError, NoteSignError, NoteSignature, NoteSigner,
    SIGNATURE_TYPE_COSIGNATURE_V1, SignatureFailure, ed25519_verify, key_hash, parse_ed25519_skey,
};

/// The header line of the signed message, with its newline.
///
/// Spec: "The header line MUST be the fixed string `cosignature/v1`, and provides domain
/// separation."
pub const HEADER: &str = "cosignature/v1\n";

/// The largest timestamp a cosignature may carry.
///
/// Spec: "It MUST NOT exceed 2^63 - 1".
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Length of the timestamp prefix of the signature.
const TIMESTAMP_LEN: usize = 8;

/// Length of an Ed25519 cosignature after the key ID: timestamp and signature.
///
/// Spec:
/// ```text
/// struct {
///     u64 timestamp;
///     select (signature_algorithm) {
///         case ed25519: opaque ed25519_signature[64];
///         ...
///     } signature;
/// } timestamped_signature;
/// ```
/// "Per RFC 8446, Section 3.3, these are serialized in sequence, with the timestamp
/// encoded in big-endian order."
pub const SIGNATURE_LEN: usize = TIMESTAMP_LEN + ED25519_SIGNATURE_LEN;

/// The header and timestamp lines that precede the checkpoint body in the signed message.
///
/// Spec: "The signed message MUST be two newline (U+000A) terminated lines (one header
/// line and one timestamp line) followed by the whole note body of the cosigned checkpoint
/// (including the final newline, but not including any signature lines)."
/// "The timestamp line MUST consist of the string `time`, a single space (0x20), and
/// `timestamped_signature.timestamp` encoded as an ASCII decimal with no leading zeroes."
fn message_prefix(timestamp: u64) -> String {
    // u64's Display has no leading zeroes (and prints `0` for zero).
    format!("{HEADER}time {timestamp}\n")
}

/// The complete message an Ed25519 cosignature signs over a note text (the checkpoint
/// body including extension lines):
///
/// ```text
/// cosignature/v1
/// time 1679315147
/// example.com/behind-the-sofa
/// 20852163
/// CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
/// ```
///
/// Spec: "Extension lines MAY be included in the checkpoint by the log, and if present
/// MUST be included in the cosigned message."
pub fn signed_message(note_text: &str, timestamp: u64) -> String {
    let mut m = message_prefix(timestamp);
    m.push_str(note_text);
    m
}

/// Reads the (unverified) timestamp of a cosignature line. `None` if the signature has
/// the wrong length for an Ed25519 cosignature. Only trust it after verification.
pub fn unverified_timestamp(signature: &NoteSignature) -> Option<u64> {
    split_signature(signature.signature()).map(|(ts, _)| ts)
}

fn split_signature(sig: &[u8]) -> Option<(u64, &[u8])> {
    if sig.len() != SIGNATURE_LEN {
        return None;
    }
    let (ts, rest) = sig.split_first_chunk::<TIMESTAMP_LEN>()?;
    Some((u64::from_be_bytes(*ts), rest))
}

/// Verifies Ed25519 cosignature/v1 signatures (signature type `0x04`).
///
/// Spec: "The key ID for Ed25519 cosignatures MUST be computed as
/// `SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]`".
/// "Ed25519 public keys MAY be encoded as vkeys with signature type 0x04 and the 32-byte
/// Ed25519 cosigner public key as the public key material."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureVerifier {
    name: KeyName,
    key_id: KeyId,
    key: ed25519_dalek::VerifyingKey,
}

impl CosignatureVerifier {
    /// A verifier for a cosigner's name and 32-byte Ed25519 public key.
    pub fn new(name: KeyName, public_key: &[u8; 32]) -> Result<Self, KeyParseError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| {
            KeyParseError::InvalidKey {
                signature_type: SIGNATURE_TYPE_COSIGNATURE_V1,
            }
        })?;
        let key_id = KeyId::compute(&name, SIGNATURE_TYPE_COSIGNATURE_V1, public_key);
        Ok(Self { name, key_id, key })
    }

    /// Parses a vkey of type `0x04`.
    pub fn from_vkey(vkey: &str) -> Result<Self, KeyParseError> {
        match crate::note::Verifier::from_vkey(vkey)? {
            crate::note::Verifier::CosignatureV1(v) => Ok(v),
            other => Err(KeyParseError::UnsupportedSignatureType(
                other.signature_type(),
            )),
        }
    }

    /// The vkey string `name+id+base64(0x04 || public key)`.
    pub fn to_vkey(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(SIGNATURE_TYPE_COSIGNATURE_V1);
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            self.key_id,
            base64::Engine::encode(&crate::note::BASE64, raw)
        )
    }

    /// The cosigner name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// `SHA-256(name || 0x0A || 0x04 || public key)`, whose first four bytes are the key ID.
    pub fn key_hash(&self) -> [u8; 32] {
        key_hash(
            &self.name,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        )
    }

    /// Verifies a cosignature (the 72 bytes after the key ID) over a note text and
    /// returns its timestamp, in seconds since the Unix epoch.
    pub fn verify(&self, note_text: &str, signature: &[u8]) -> Result<u64, SignatureFailure> {
        let (timestamp, sig) = split_signature(signature).ok_or(SignatureFailure::WrongLength {
            expected: SIGNATURE_LEN,
            found: signature.len(),
        })?;
        // "It MUST NOT exceed 2^63 - 1"
        if timestamp > MAX_TIMESTAMP {
            return Err(SignatureFailure::TimestampOutOfRange(timestamp));
        }
        // "`signature` is an Ed25519 (RFC 8032) ... signature from the cosigner public
        // key over the message defined below."
        let prefix = message_prefix(timestamp);
        ed25519_verify(&self.key, &[prefix.as_bytes(), note_text.as_bytes()], sig)?;
        Ok(timestamp)
    }
}

/// Produces Ed25519 cosignature/v1 signatures from a caller-supplied 32-byte seed.
///
/// Spec: "A cosigner operator that operates multiple Ed25519 cosigners (e.g. with distinct
/// additional statements) MUST use distinct public keys for each cosigner. The Ed25519
/// signed message format doesn't commit to the cosigner name, so the same public key
/// can't be used across multiple cosigners." — one seed per witness identity.
#[derive(Clone)]
pub struct CosignatureSigner {
    name: KeyName,
    key_id: KeyId,
    key: ed25519_dalek::SigningKey,
}

impl CosignatureSigner {
    /// A cosigner from its name and RFC 8032 32-byte private key (seed).
    pub fn from_seed(name: KeyName, seed: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let key_id = KeyId::compute(
            &name,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            key.verifying_key().as_bytes(),
        );
        Self { name, key_id, key }
    }

    /// Parses `PRIVATE+KEY+<name>+<id>+base64(0x04 || seed)`, the signer key format of
    /// transparency-dev/formats.
    pub fn from_skey(skey: &str) -> Result<Self, KeyParseError> {
        let (name, seed) = parse_ed25519_skey(skey, SIGNATURE_TYPE_COSIGNATURE_V1)?;
        Ok(Self::from_seed(name, &seed))
    }

    /// The key in the `PRIVATE+KEY+<name>+<id>+base64(0x04 || seed)` form that
    /// [`CosignatureSigner::from_skey`] reads back. It is the secret: store it like one.
    pub fn to_skey(&self) -> String {
        crate::note::format_ed25519_skey(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            self.key.as_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The cosigner name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Cosigns a checkpoint at `timestamp` (seconds since the Unix epoch) and returns the
    /// signature line to add to its note.
    pub fn cosign(
        &self,
        checkpoint: &Checkpoint,
        timestamp: u64,
    ) -> Result<NoteSignature, NoteSignError> {
        self.sign_checked_text(&checkpoint.to_text(), timestamp)
    }

    /// Cosigns a note text, which must be a checkpoint body ("a cosignature is a note
    /// signature applied to a checkpoint").
    pub fn sign(&self, note_text: &str, timestamp: u64) -> Result<NoteSignature, NoteSignError> {
        Checkpoint::parse(note_text)?;
        self.sign_checked_text(note_text, timestamp)
    }

    fn sign_checked_text(
        &self,
        note_text: &str,
        timestamp: u64,
    ) -> Result<NoteSignature, NoteSignError> {
        use ed25519_dalek::ed25519::signature::MultipartSigner as _;
        if timestamp > MAX_TIMESTAMP {
            return Err(NoteSignError::TimestampOutOfRange(timestamp));
        }
        let prefix = message_prefix(timestamp);
        let sig = self
            .key
            .try_multipart_sign(&[prefix.as_bytes(), note_text.as_bytes()])
            .map_err(|_| NoteSignError::Backend)?;
        let mut bytes = Vec::with_capacity(SIGNATURE_LEN);
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(&sig.to_bytes());
        NoteSignature::new(self.name.clone(), self.key_id, bytes)
    }

    /// This cosigner bound to a timestamp, usable wherever a [`NoteSigner`] is expected.
    pub fn at(&self, timestamp: u64) -> TimestampedCosigner<'_> {
        TimestampedCosigner {
            signer: self,
            timestamp,
        }
    }
}

impl fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignatureSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A [`CosignatureSigner`] with a fixed timestamp (see [`CosignatureSigner::at`]).
#[derive(Clone, Copy, Debug)]
pub struct TimestampedCosigner<'a> {
    signer: &'a CosignatureSigner,
    timestamp: u64,
}

impl NoteSigner for TimestampedCosigner<'_> {
    fn name(&self) -> &KeyName {
        &self.signer.name
    }
    fn key_id(&self) -> KeyId {
        self.signer.key_id
    }
    fn sign_text(&self, text: &str) -> Result<NoteSignature, NoteSignError> {
        self.signer.sign(text, self.timestamp)
    }
}
