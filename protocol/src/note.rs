//! C2SP signed notes (<https://c2sp.org/signed-note>, v1.0.0).
//!
//! This module owns the signed-note wire format and everything needed to produce and
//! check one: key names, key IDs, verifier keys ("vkeys"), the signature algorithms
//! provmesh understands, and the set of verifiers a note is checked against.
//!
//! | type | byte | used by | signer | verifier |
//! | --- | --- | --- | --- | --- |
//! | Ed25519 | `0x01` | provmesh logs, Rekor v2, Go sumdb | [`Ed25519Signer`] | [`Ed25519Verifier`] |
//! | ECDSA P-256 | `0x02` | Rekor v1 checkpoints | [`EcdsaP256Signer`] | [`EcdsaP256Verifier`] |
//! | cosignature/v1 | `0x04` | witnesses | [`CosignatureSigner`] | [`CosignatureVerifier`] |
//!
//! A parsed [`Note`] keeps its text byte for byte and serializes back to exactly the
//! bytes it was parsed from ([`Note::to_bytes`]): base64 is decoded strictly (canonical
//! padding and trailing bits), so there is only one encoding of each signature line.
//!
//! Limits: a note is at most [`MAX_NOTE_SIZE`] bytes and carries at most
//! [`MAX_SIGNATURES`] signature lines. The spec asks verifiers to accept at least 16.
//!
//! Verification follows the spec and Go's `golang.org/x/mod/sumdb/note`: lines from keys
//! not in the [`VerifierSet`] are ignored, a line whose name and key ID match a known key
//! must verify or the whole note is rejected, and at least one known signature must
//! verify. Unlike Go, a second line from the same known key is verified too (Go skips
//! it), because the spec says "If the key name and ID match a known key, verifiers MUST
//! verify the signature".
//!
//! Nothing here reads a clock or draws randomness: Ed25519 keys come from a caller's
//! 32-byte seed, ECDSA signatures are deterministic (RFC 6979), and cosignature
//! timestamps are arguments.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ed25519_dalek::Signer as _;
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

pub use crate::cosignature::{CosignatureSigner, CosignatureVerifier};

/// The largest note, in bytes, that [`Note::parse`] accepts and [`Note`] builders produce.
///
/// Spec: "Verifiers SHOULD apply a maximum limit to the number of signatures in a note
/// (or, equivalently, to the overall size of a note), but MUST accept at least up to 16
/// signatures. Remember that post-quantum signatures can be up to nearly 5kB in size."
/// 1 MiB holds [`MAX_SIGNATURES`] post-quantum signature lines with room to spare.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// The most signature lines a note may carry (the limit Go's note package uses).
///
/// The spec requires accepting at least 16; a 101st line is rejected as malformed.
pub const MAX_SIGNATURES: usize = 100;

/// Signature type byte of plain Ed25519 note signatures.
///
/// Spec: "`0x01` — Ed25519 signatures as specified by this document."
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of ECDSA note signatures (Rekor v1, transparency-dev/witness).
///
/// Spec: "`0x02` — ECDSA signatures as implemented by github.com/transparency-dev/witness."
pub const SIGNATURE_TYPE_ECDSA: u8 = 0x02;

/// Signature type byte of timestamped Ed25519 checkpoint cosignatures.
///
/// Spec: "`0x04` — Timestamped Ed25519 checkpoint cosignatures, as specified by
/// c2sp.org/tlog-cosignature."
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Length of an Ed25519 public key and seed.
const ED25519_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub(crate) const ED25519_SIGNATURE_LEN: usize = 64;

/// Spec: "The base64 encoding used throughout is the standard Base 64 encoding specified
/// in RFC 4648, Section 4." Decoding is strict — padding required, trailing bits zero — so
/// that every signature has exactly one encoding and a parsed note re-serializes
/// byte-exactly. Go's encoder produces exactly this form.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(false),
);

/// Spec: signature lines are "em dash (U+2014), space (U+0020), key name, space,
/// base64-encoded signature, newline".
const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why bytes received from elsewhere are not a well-formed signed note.
///
/// Every variant means the *sender* produced bad bytes; none is caused by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NoteParseError {
    /// The note is larger than [`MAX_NOTE_SIZE`].
    #[error("note is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit, [`MAX_NOTE_SIZE`].
        max: usize,
    },
    /// The note is not valid UTF-8.
    #[error("note is not valid UTF-8 (at byte {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The note contains an ASCII control character other than newline.
    #[error("note contains control character {byte:#04x} at byte {offset}")]
    ControlCharacter {
        /// Offset of the character.
        offset: usize,
        /// The character.
        byte: u8,
    },
    /// There is no blank line separating the text from the signatures.
    #[error("note has no blank line before its signatures")]
    MissingSignatureSeparator,
    /// The blank line is followed by nothing: a note needs at least one signature line.
    #[error("note has no signature lines")]
    NoSignatures,
    /// The last signature line does not end with a newline.
    #[error("the last signature line does not end with a newline")]
    UnterminatedSignatureLine,
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {max} signature lines")]
    TooManySignatures {
        /// The limit, [`MAX_SIGNATURES`].
        max: usize,
    },
    /// One signature line is malformed.
    #[error("signature line {line}: {error}")]
    SignatureLine {
        /// 1-based number of the line within the signature block.
        line: usize,
        /// What is wrong with it.
        error: SignatureLineError,
    },
}

/// Why a single signature line is malformed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureLineError {
    /// The line does not start with an em dash and a space.
    #[error("does not start with \"\u{2014} \"")]
    MissingPrefix,
    /// The line has no space between key name and signature.
    #[error("no space between key name and signature")]
    MissingSignature,
    /// The key name is empty or contains a space or a plus sign.
    #[error("invalid key name")]
    InvalidKeyName,
    /// The signature is not canonical standard base64 with padding.
    #[error("signature is not canonical base64")]
    InvalidBase64,
    /// The decoded signature is shorter than a 4-byte key ID plus one byte.
    #[error("signature is {len} bytes, shorter than key ID plus signature")]
    TooShort {
        /// Decoded length.
        len: usize,
    },
}

/// Why a note did not verify against a [`VerifierSet`] or a [`Verifier`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NoteVerifyError {
    /// A signature line names a known key (name and key ID match) but its signature is
    /// invalid. The sender's fault: the spec says clients SHOULD then reject the whole note.
    #[error("invalid signature from known key {name}+{key_id} (signature line {line}): {reason}")]
    InvalidSignature {
        /// Key name of the line.
        name: String,
        /// Key ID of the line.
        key_id: KeyId,
        /// 1-based number of the line within the signature block.
        line: usize,
        /// Why it failed.
        reason: SignatureFailure,
    },
    /// No signature line comes from a known key. The sender's fault (or a key the caller
    /// does not trust): "If no signature from a known key verifies successfully, clients
    /// MUST reject the note."
    #[error("note has no signature from a known key")]
    NoKnownSignature,
    /// The verifier set is empty: a caller error, no note can verify against it.
    #[error("the verifier set is empty")]
    EmptyVerifierSet,
}

/// Why one signature did not verify under a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignatureFailure {
    /// The signature has the wrong length for the algorithm.
    #[error("signature is {found} bytes, expected {expected}")]
    WrongLength {
        /// Expected length.
        expected: usize,
        /// Length found.
        found: usize,
    },
    /// The signature is not a DER-encoded ECDSA signature.
    #[error("signature is not a DER ECDSA signature")]
    MalformedDer,
    /// A cosignature timestamp above 2^63 - 1.
    #[error("cosignature timestamp {0} exceeds 2^63 - 1")]
    TimestampOutOfRange(u64),
    /// The cryptographic check failed.
    #[error("signature does not verify")]
    Mismatch,
}

/// Why a note or note signature could not be produced. These are caller errors: the
/// caller passed text, keys or timestamps that cannot form a valid note.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NoteSignError {
    /// The text is empty or does not end with a newline.
    #[error("note text must be non-empty and end with a newline")]
    TextNotNewlineTerminated,
    /// The text contains an ASCII control character other than newline.
    #[error("note text contains control character {byte:#04x} at byte {offset}")]
    TextControlCharacter {
        /// Offset of the character.
        offset: usize,
        /// The character.
        byte: u8,
    },
    /// The note would have no signature line.
    #[error("a note needs at least one signature")]
    NoSignatures,
    /// The note would have more than [`MAX_SIGNATURES`] signature lines.
    #[error("a note may have at most {max} signatures")]
    TooManySignatures {
        /// The limit, [`MAX_SIGNATURES`].
        max: usize,
    },
    /// The serialized note would exceed [`MAX_NOTE_SIZE`].
    #[error("the note would be {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Size of the note.
        size: usize,
        /// The limit, [`MAX_NOTE_SIZE`].
        max: usize,
    },
    /// A signature value of zero bytes.
    #[error("a signature must not be empty")]
    EmptySignature,
    /// A cosignature was requested over a text that is not a checkpoint.
    #[error("cosignatures can only sign checkpoints: {0}")]
    NotACheckpoint(#[from] crate::checkpoint::CheckpointParseError),
    /// A cosignature timestamp above 2^63 - 1.
    #[error("cosignature timestamp {0} exceeds 2^63 - 1")]
    TimestampOutOfRange(u64),
    /// The signature backend failed (not expected for Ed25519 or RFC 6979 ECDSA).
    #[error("signing failed")]
    Backend,
}

/// Why a key name, verifier key, signer key or public key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus
    /// (U+002B) characters." (Control characters are refused too: they cannot appear in a
    /// note.)
    #[error("invalid key name")]
    InvalidKeyName,
    /// The string is not `<name>+<hex key ID>+<base64 key>` (or the `PRIVATE+KEY+` form).
    #[error("key is not of the form name+keyid+base64")]
    Malformed,
    /// The key ID is not 8 lowercase hex digits.
    #[error("key ID is not 8 lowercase hex digits")]
    InvalidKeyIdHex,
    /// The key material is not canonical standard base64.
    #[error("key material is not canonical base64")]
    InvalidBase64,
    /// The key material is empty (no signature type byte).
    #[error("key material is empty")]
    Empty,
    /// The signature type byte is not one this module supports.
    #[error("unsupported signature type {0:#04x}")]
    UnsupportedSignatureType(u8),
    /// The public or private key bytes are not a valid key for the algorithm.
    #[error("invalid key for signature type {signature_type:#04x}")]
    InvalidKey {
        /// The signature type.
        signature_type: u8,
    },
    /// The stated key ID differs from the one computed from name and key.
    #[error("key ID {stated} does not match the computed {computed}")]
    KeyIdMismatch {
        /// Key ID written in the key string.
        stated: KeyId,
        /// Key ID computed from name and key.
        computed: KeyId,
    },
    /// The PEM document is not a single `PUBLIC KEY` block of base64.
    #[error("not a PEM PUBLIC KEY block")]
    InvalidPem,
}

/// A verifier with the same key name and key ID is already in the [`VerifierSet`] (a
/// caller error: the spec warns that such collisions "can lead to errors").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a verifier for {name}+{key_id} is already in the set")]
pub struct DuplicateVerifierError {
    /// Key name of the duplicate.
    pub name: String,
    /// Key ID of the duplicate.
    pub key_id: KeyId,
}

// ---------------------------------------------------------------------------------------
// Key names and key IDs
// ---------------------------------------------------------------------------------------

/// A validated note key name.
///
/// Spec: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus
/// (U+002B) characters." ASCII control characters are also refused, because "Signed
/// notes MUST NOT contain any ASCII control characters (those below U+0020) other than
/// newline" (and newline is a space).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Validates a key name.
    pub fn new(name: impl Into<String>) -> Result<Self, KeyParseError> {
        let name = name.into();
        if is_valid_key_name(&name) {
            Ok(Self(name))
        } else {
            Err(KeyParseError::InvalidKeyName)
        }
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is a valid key name (see [`KeyName`]). Rust's `char::is_whitespace` is
/// the Unicode `White_Space` property, the same set as Go's `unicode.IsSpace`.
fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < '\u{20}')
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({:?})", self.0)
    }
}

impl AsRef<str> for KeyName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for KeyName {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for KeyName {
    type Error = KeyParseError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for KeyName {
    type Error = KeyParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

/// The 32-bit key ID ("key hint") at the start of every note signature.
///
/// Spec: "The first four bytes in the signature are the uint32 key ID stored in
/// big-endian order." Displayed as 8 lowercase hex digits, as in vkeys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// The key ID the spec recommends, and requires for Ed25519 and cosignature keys:
    ///
    /// ```text
    /// key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]
    /// ```
    pub fn compute(name: &KeyName, signature_type: u8, public_key: &[u8]) -> Self {
        Self::from_hash(&key_hash(name, signature_type, public_key))
    }

    /// The first four bytes of a SHA-256 hash, big-endian.
    pub fn from_hash(hash: &[u8; 32]) -> Self {
        let [a, b, c, d, ..] = *hash;
        Self(u32::from_be_bytes([a, b, c, d]))
    }

    /// The four bytes as they appear in a signature.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:08x})", self.0)
    }
}

/// The full SHA-256 whose first four bytes are the recommended key ID:
/// `SHA-256(key name || 0x0A || signature type || public key)`.
///
/// For an Ed25519 log key (type `0x01`) this is the `logId.keyId` Rekor v2 and provmesh
/// publish in bundles and trusted roots.
pub fn key_hash(name: &KeyName, signature_type: u8, public_key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(name.as_str().as_bytes());
    h.update([b'\n', signature_type]);
    h.update(public_key);
    h.finalize().into()
}

// ---------------------------------------------------------------------------------------
// Signatures and notes
// ---------------------------------------------------------------------------------------

/// One signature line of a note: key name, key ID and the signature bytes that follow
/// the key ID.
///
/// Spec: "Signatures are the base64 encoding of 4+n bytes. The first four bytes in the
/// signature are the uint32 key ID stored in big-endian order. The remaining n bytes are
/// the result of using the specified key to sign the note text, according to the
/// signature algorithm."
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NoteSignature {
    name: KeyName,
    key_id: KeyId,
    signature: Vec<u8>,
}

impl NoteSignature {
    /// Assembles a signature line from its parts.
    pub fn new(name: KeyName, key_id: KeyId, signature: Vec<u8>) -> Result<Self, NoteSignError> {
        if signature.is_empty() {
            return Err(NoteSignError::EmptySignature);
        }
        Ok(Self {
            name,
            key_id,
            signature,
        })
    }

    /// Parses one signature line, without its final newline, as received for example
    /// from a witness that returns bare cosignature lines.
    pub fn parse_line(line: &str) -> Result<Self, SignatureLineError> {
        // "em dash (U+2014), space (U+0020), key name, space, base64-encoded signature"
        let rest = line
            .strip_prefix(SIGNATURE_LINE_PREFIX)
            .ok_or(SignatureLineError::MissingPrefix)?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(SignatureLineError::MissingSignature)?;
        let name = KeyName::new(name).map_err(|_| SignatureLineError::InvalidKeyName)?;
        let raw = BASE64
            .decode(b64)
            .map_err(|_| SignatureLineError::InvalidBase64)?;
        // "Signatures are the base64 encoding of 4+n bytes." As in Go, n must be >= 1.
        let (id, signature) = match raw.split_first_chunk::<4>() {
            Some((id, sig)) if !sig.is_empty() => (*id, sig),
            _ => return Err(SignatureLineError::TooShort { len: raw.len() }),
        };
        Ok(Self {
            name,
            key_id: KeyId(u32::from_be_bytes(id)),
            signature: signature.to_vec(),
        })
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The signature bytes after the key ID.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line as it appears in a note, including its final newline.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(self.encoded_len());
        self.write_line(&mut s);
        s
    }

    fn encoded_len(&self) -> usize {
        SIGNATURE_LINE_PREFIX.len()
            + self.name.as_str().len()
            + 1
            + (4 + self.signature.len()).div_ceil(3) * 4
            + 1
    }

    fn write_line(&self, out: &mut String) {
        out.push_str(SIGNATURE_LINE_PREFIX);
        out.push_str(self.name.as_str());
        out.push(' ');
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id.to_bytes());
        raw.extend_from_slice(&self.signature);
        BASE64.encode_string(&raw, out);
        out.push('\n');
    }
}

/// Something that can sign a note text under one key name and key ID.
///
/// Implemented by [`Ed25519Signer`], [`EcdsaP256Signer`] and, bound to a timestamp,
/// [`crate::cosignature::TimestampedCosigner`].
pub trait NoteSigner {
    /// The key name written on the signature line.
    fn name(&self) -> &KeyName;
    /// The key ID written at the start of the signature.
    fn key_id(&self) -> KeyId;
    /// Signs `text` (a validated note text ending in newline) and returns the line.
    fn sign_text(&self, text: &str) -> Result<NoteSignature, NoteSignError>;
}

/// A signed note: a text and one or more signature lines.
///
/// Invariants: the text is valid note text (non-empty, ends in newline, no control
/// characters but newline); there are 1..=[`MAX_SIGNATURES`] signatures; the encoding is
/// at most [`MAX_NOTE_SIZE`] bytes. Hence `Note::parse(&n.to_bytes()) == Ok(n)`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note received from elsewhere. No signature is checked here: call
    /// [`Note::verify`] before trusting the text.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteParseError> {
        if bytes.len() > MAX_NOTE_SIZE {
            return Err(NoteParseError::TooLarge {
                size: bytes.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        // "Signed notes MUST be valid UTF-8 and MUST NOT contain any ASCII control
        // characters (those below U+0020) other than newline."
        let s = std::str::from_utf8(bytes).map_err(|e| NoteParseError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        // Bytes below 0x20 never occur inside a multi-byte UTF-8 sequence, so a byte scan
        // finds exactly the control characters.
        if let Some((offset, &byte)) = find_control(s) {
            return Err(NoteParseError::ControlCharacter { offset, byte });
        }
        // "A signed note consists of a text ending in newline (U+000A), followed by a
        // blank line (only a newline), followed by one or more signature lines"
        // "The note text includes the final newline but not the separating blank line.
        // The note text MAY contain empty lines; the text is separated from the
        // signatures by the last empty line in the note."
        let split = s
            .rfind("\n\n")
            .ok_or(NoteParseError::MissingSignatureSeparator)?;
        let (text, rest) = s.split_at(split + 1);
        let sigs = rest.get(1..).unwrap_or_default();
        if sigs.is_empty() {
            return Err(NoteParseError::NoSignatures);
        }
        let body = sigs
            .strip_suffix('\n')
            .ok_or(NoteParseError::UnterminatedSignatureLine)?;
        // Bound the work before decoding anything.
        if body.split('\n').count() > MAX_SIGNATURES {
            return Err(NoteParseError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let signatures = body
            .split('\n')
            .enumerate()
            .map(|(i, line)| {
                NoteSignature::parse_line(line)
                    .map_err(|error| NoteParseError::SignatureLine { line: i + 1, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Assembles a note from a text and signatures made over it.
    pub fn from_parts(
        text: impl Into<String>,
        signatures: Vec<NoteSignature>,
    ) -> Result<Self, NoteSignError> {
        let text = text.into();
        check_text(&text)?;
        let note = Self { text, signatures };
        note.check_signatures()?;
        Ok(note)
    }

    /// Signs `text` with each signer, in order.
    pub fn sign(
        text: impl Into<String>,
        signers: &[&dyn NoteSigner],
    ) -> Result<Self, NoteSignError> {
        let text = text.into();
        check_text(&text)?;
        let signatures = signers
            .iter()
            .map(|s| s.sign_text(&text))
            .collect::<Result<Vec<_>, _>>()?;
        let mut note = Self {
            text,
            signatures: Vec::with_capacity(signatures.len()),
        };
        for sig in signatures {
            note.replace_or_push(sig);
        }
        note.check_signatures()?;
        Ok(note)
    }

    /// Adds a signature line. As Go's `note.Sign` does, an existing line with the same key
    /// name and key ID is removed first; the new line goes last.
    ///
    /// The caller is responsible for the signature having been made over this note's text
    /// (it is not verified here).
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), NoteSignError> {
        let mut next = self.clone();
        next.replace_or_push(signature);
        next.check_signatures()?;
        *self = next;
        Ok(())
    }

    /// Signs this note's text with each signer and adds the lines (see
    /// [`Note::add_signature`]).
    pub fn add_signatures_from(
        &mut self,
        signers: &[&dyn NoteSigner],
    ) -> Result<(), NoteSignError> {
        let mut next = self.clone();
        for s in signers {
            let sig = s.sign_text(&next.text)?;
            next.replace_or_push(sig);
        }
        next.check_signatures()?;
        *self = next;
        Ok(())
    }

    /// Keeps only the signature lines for which `keep` returns true, for example to trim
    /// a note to the log signature plus at most 15 cosignatures. At least one line must
    /// remain.
    pub fn retain_signatures(
        &mut self,
        mut keep: impl FnMut(&NoteSignature) -> bool,
    ) -> Result<(), NoteSignError> {
        let kept: Vec<_> = self
            .signatures
            .iter()
            .filter(|s| keep(s))
            .cloned()
            .collect();
        if kept.is_empty() {
            return Err(NoteSignError::NoSignatures);
        }
        self.signatures = kept;
        Ok(())
    }

    fn replace_or_push(&mut self, sig: NoteSignature) {
        self.signatures
            .retain(|s| !(s.key_id == sig.key_id && s.name == sig.name));
        self.signatures.push(sig);
    }

    fn check_signatures(&self) -> Result<(), NoteSignError> {
        if self.signatures.is_empty() {
            return Err(NoteSignError::NoSignatures);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(NoteSignError::TooManySignatures {
                max: MAX_SIGNATURES,
            });
        }
        let size = self.encoded_len();
        if size > MAX_NOTE_SIZE {
            return Err(NoteSignError::TooLarge {
                size,
                max: MAX_NOTE_SIZE,
            });
        }
        Ok(())
    }

    /// The note text, including its final newline. Ignore it until the note verified.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Length of [`Note::to_bytes`].
    pub fn encoded_len(&self) -> usize {
        self.text.len()
            + 1
            + self
                .signatures
                .iter()
                .map(NoteSignature::encoded_len)
                .sum::<usize>()
    }

    /// The signed note: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Verifies the note against a set of trusted keys.
    ///
    /// Spec: "Verifiers MUST ignore signatures from unknown keys, even if they share a
    /// name or ID (but not both) with a known key. If the key name and ID match a known
    /// key, verifiers MUST verify the signature. If a signature from a known key fails to
    /// verify, clients SHOULD reject the whole note. If no signature from a known key
    /// verifies successfully, clients MUST reject the note."
    ///
    /// Returns one entry per known key that signed, in line order (a key that signed
    /// twice is reported once, for its first line; both lines are verified).
    pub fn verify<'v>(
        &self,
        verifiers: &'v VerifierSet,
    ) -> Result<Vec<VerifiedSignature<'v>>, NoteVerifyError> {
        let verified = self.verify_known(verifiers)?;
        if verified.is_empty() {
            return Err(NoteVerifyError::NoKnownSignature);
        }
        Ok(verified)
    }

    /// Like [`Note::verify`], but a note with no line from any key of the set is not an
    /// error: it returns an empty list. Use it to collect witness cosignatures on a note
    /// whose log signature was checked separately. Invalid lines from known keys are
    /// still an error.
    pub fn verify_known<'v>(
        &self,
        verifiers: &'v VerifierSet,
    ) -> Result<Vec<VerifiedSignature<'v>>, NoteVerifyError> {
        if verifiers.is_empty() {
            return Err(NoteVerifyError::EmptyVerifierSet);
        }
        let mut verified: Vec<VerifiedSignature<'v>> = Vec::new();
        for (index, sig) in self.signatures.iter().enumerate() {
            let Some(verifier) = verifiers.get(&sig.name, sig.key_id) else {
                continue;
            };
            let timestamp = self.check_line(index, sig, verifier)?;
            if !verified.iter().any(|v| std::ptr::eq(v.verifier, verifier)) {
                verified.push(VerifiedSignature {
                    verifier,
                    index,
                    timestamp,
                });
            }
        }
        Ok(verified)
    }

    /// Verifies the note against one trusted key: the key must have signed, and every
    /// line from it must verify; other lines are ignored. This is the cheap call for a
    /// log's own signature on a checkpoint.
    pub fn verify_with<'v>(
        &self,
        verifier: &'v Verifier,
    ) -> Result<VerifiedSignature<'v>, NoteVerifyError> {
        let mut first = None;
        for (index, sig) in self.signatures.iter().enumerate() {
            if sig.key_id != verifier.key_id() || sig.name != *verifier.name() {
                continue;
            }
            let timestamp = self.check_line(index, sig, verifier)?;
            if first.is_none() {
                first = Some(VerifiedSignature {
                    verifier,
                    index,
                    timestamp,
                });
            }
        }
        first.ok_or(NoteVerifyError::NoKnownSignature)
    }

    fn check_line(
        &self,
        index: usize,
        sig: &NoteSignature,
        verifier: &Verifier,
    ) -> Result<Option<u64>, NoteVerifyError> {
        verifier
            .verify_signature(&self.text, &sig.signature)
            .map_err(|reason| NoteVerifyError::InvalidSignature {
                name: sig.name.as_str().to_owned(),
                key_id: sig.key_id,
                line: index + 1,
                reason,
            })
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(self.encoded_len());
        s.push_str(&self.text);
        s.push('\n');
        for sig in &self.signatures {
            sig.write_line(&mut s);
        }
        f.write_str(&s)
    }
}

/// The first ASCII control character other than newline, with its offset.
fn find_control(s: &str) -> Option<(usize, &u8)> {
    s.as_bytes()
        .iter()
        .enumerate()
        .find(|&(_, &b)| b < 0x20 && b != b'\n')
}

/// Checks a note text supplied by a caller: "a text ending in newline (U+000A)" with no
/// control characters other than newline.
fn check_text(text: &str) -> Result<(), NoteSignError> {
    if !text.ends_with('\n') {
        return Err(NoteSignError::TextNotNewlineTerminated);
    }
    if let Some((offset, &byte)) = find_control(text) {
        return Err(NoteSignError::TextControlCharacter { offset, byte });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Verifiers
// ---------------------------------------------------------------------------------------

/// A signature that verified, and the key that verified it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedSignature<'v> {
    /// The trusted key.
    pub verifier: &'v Verifier,
    /// Index of the line in [`Note::signatures`].
    pub index: usize,
    /// For cosignatures, the verified timestamp (seconds since the Unix epoch). The spec
    /// lets verifiers reject timestamps in the future; this crate reads no clock, so that
    /// check is the caller's.
    pub timestamp: Option<u64>,
}

/// A trusted public key that can verify note signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verifier {
    /// Ed25519, signature type `0x01`.
    Ed25519(Ed25519Verifier),
    /// ECDSA P-256 with SHA-256, signature type `0x02`.
    EcdsaP256(EcdsaP256Verifier),
    /// Timestamped Ed25519 cosignatures, signature type `0x04`.
    CosignatureV1(CosignatureVerifier),
}

impl Verifier {
    /// Parses a verifier key of type `0x01`, `0x02` or `0x04`.
    ///
    /// Spec: "`<key name>+hex(32-bit key ID)+base64(signature type || public key)`" —
    /// "The key name and ID MUST match those used in the signatures." For `0x02` the key
    /// is a DER SubjectPublicKeyInfo, as in transparency-dev/formats.
    pub fn from_vkey(vkey: &str) -> Result<Self, KeyParseError> {
        let (name, stated, key) = split_key_string(vkey)?;
        let (&ty, material) = key.split_first().ok_or(KeyParseError::Empty)?;
        let verifier = match ty {
            SIGNATURE_TYPE_ED25519 => {
                Self::Ed25519(Ed25519Verifier::new(name, ed25519_bytes(ty, material)?)?)
            }
            SIGNATURE_TYPE_ECDSA => {
                Self::EcdsaP256(EcdsaP256Verifier::from_spki_der(name, material)?)
            }
            SIGNATURE_TYPE_COSIGNATURE_V1 => Self::CosignatureV1(CosignatureVerifier::new(
                name,
                ed25519_bytes(ty, material)?,
            )?),
            other => return Err(KeyParseError::UnsupportedSignatureType(other)),
        };
        let computed = verifier.key_id();
        if computed != stated {
            return Err(KeyParseError::KeyIdMismatch { stated, computed });
        }
        Ok(verifier)
    }

    /// The verifier key string (see [`Verifier::from_vkey`]).
    pub fn to_vkey(&self) -> String {
        match self {
            Self::Ed25519(v) => v.to_vkey(),
            Self::EcdsaP256(v) => v.to_vkey(),
            Self::CosignatureV1(v) => v.to_vkey(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        match self {
            Self::Ed25519(v) => v.name(),
            Self::EcdsaP256(v) => v.name(),
            Self::CosignatureV1(v) => v.name(),
        }
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        match self {
            Self::Ed25519(v) => v.key_id(),
            Self::EcdsaP256(v) => v.key_id(),
            Self::CosignatureV1(v) => v.key_id(),
        }
    }

    /// The signature type byte.
    pub fn signature_type(&self) -> u8 {
        match self {
            Self::Ed25519(_) => SIGNATURE_TYPE_ED25519,
            Self::EcdsaP256(_) => SIGNATURE_TYPE_ECDSA,
            Self::CosignatureV1(_) => SIGNATURE_TYPE_COSIGNATURE_V1,
        }
    }

    /// Verifies one signature (the bytes after the key ID) over a note text. Returns the
    /// timestamp for cosignatures.
    pub fn verify_signature(
        &self,
        text: &str,
        signature: &[u8],
    ) -> Result<Option<u64>, SignatureFailure> {
        match self {
            Self::Ed25519(v) => v.verify(text, signature).map(|()| None),
            Self::EcdsaP256(v) => v.verify(text, signature).map(|()| None),
            Self::CosignatureV1(v) => v.verify(text, signature).map(Some),
        }
    }
}

impl FromStr for Verifier {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_vkey(s)
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

impl From<Ed25519Verifier> for Verifier {
    fn from(v: Ed25519Verifier) -> Self {
        Self::Ed25519(v)
    }
}

impl From<EcdsaP256Verifier> for Verifier {
    fn from(v: EcdsaP256Verifier) -> Self {
        Self::EcdsaP256(v)
    }
}

impl From<CosignatureVerifier> for Verifier {
    fn from(v: CosignatureVerifier) -> Self {
        Self::CosignatureV1(v)
    }
}

/// Splits `name+hex8+base64` into its parts (base64 may itself contain `+`).
fn split_key_string(s: &str) -> Result<(KeyName, KeyId, Vec<u8>), KeyParseError> {
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyParseError::Malformed);
    };
    let name = KeyName::new(name)?;
    let id = parse_key_id_hex(id)?;
    let key = BASE64
        .decode(b64)
        .map_err(|_| KeyParseError::InvalidBase64)?;
    Ok((name, id, key))
}

/// Spec: "The hex encoding of a positive integer is the fixed length lowercase Base 16
/// encoding of its zero-padded big endian representation."
fn parse_key_id_hex(s: &str) -> Result<KeyId, KeyParseError> {
    if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(KeyParseError::InvalidKeyIdHex);
    }
    u32::from_str_radix(s, 16)
        .map(KeyId)
        .map_err(|_| KeyParseError::InvalidKeyIdHex)
}

fn ed25519_bytes(signature_type: u8, material: &[u8]) -> Result<&[u8; 32], KeyParseError> {
    material
        .try_into()
        .map_err(|_| KeyParseError::InvalidKey { signature_type })
}

fn format_vkey(name: &KeyName, key_id: KeyId, signature_type: u8, key: &[u8]) -> String {
    let mut raw = Vec::with_capacity(1 + key.len());
    raw.push(signature_type);
    raw.extend_from_slice(key);
    format!("{name}+{key_id}+{}", BASE64.encode(raw))
}

/// Parses `PRIVATE+KEY+<name>+<hex key ID>+base64(type || 32-byte seed)`, the signer key
/// format of Go's note package (not part of the C2SP spec). The key ID is checked by the
/// caller once the public key is derived.
/// Formats Go's `PRIVATE+KEY+<name>+<id>+base64(<type> || seed)` signer key, the inverse
/// of [`parse_ed25519_skey`].
pub(crate) fn format_ed25519_skey(
    name: &KeyName,
    key_id: KeyId,
    signature_type: u8,
    seed: &[u8; 32],
) -> String {
    let mut key = Vec::with_capacity(33);
    key.push(signature_type);
    key.extend_from_slice(seed);
    format!(
        "PRIVATE+KEY+{}+{:08x}+{}",
        name.as_str(),
        u32::from_be_bytes(key_id.to_bytes()),
        BASE64.encode(&key)
    )
}

pub(crate) fn parse_ed25519_skey(
    skey: &str,
    expected_type: u8,
) -> Result<(KeyName, [u8; 32]), KeyParseError> {
    let rest = skey
        .strip_prefix("PRIVATE+KEY+")
        .ok_or(KeyParseError::Malformed)?;
    let (name, stated, key) = split_key_string(rest)?;
    let (&ty, seed) = key.split_first().ok_or(KeyParseError::Empty)?;
    if ty != expected_type {
        return Err(KeyParseError::UnsupportedSignatureType(ty));
    }
    let seed: [u8; ED25519_KEY_LEN] = seed
        .try_into()
        .map_err(|_| KeyParseError::InvalidKey { signature_type: ty })?;
    // The stated key ID must be the one the seed's public key gives.
    let public_key = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let computed = KeyId::compute(&name, ty, public_key.as_bytes());
    if computed != stated {
        return Err(KeyParseError::KeyIdMismatch { stated, computed });
    }
    Ok((name, seed))
}

/// Verifies one Ed25519 signature over `parts` concatenated.
pub(crate) fn ed25519_verify(
    key: &ed25519_dalek::VerifyingKey,
    parts: &[&[u8]],
    signature: &[u8],
) -> Result<(), SignatureFailure> {
    use ed25519_dalek::ed25519::signature::MultipartVerifier as _;
    let bytes: &[u8; ED25519_SIGNATURE_LEN] =
        signature
            .try_into()
            .map_err(|_| SignatureFailure::WrongLength {
                expected: ED25519_SIGNATURE_LEN,
                found: signature.len(),
            })?;
    let sig = ed25519_dalek::Signature::from_bytes(bytes);
    // RFC 8032 verification with a canonical S, as Go's crypto/ed25519 does.
    key.multipart_verify(parts, &sig)
        .map_err(|_| SignatureFailure::Mismatch)
}

/// An Ed25519 note verifier (signature type `0x01`).
///
/// Spec: "Ed25519 signatures are generated according to RFC 8032 over the note text. The
/// key ID is generated as recommended above, with the public key encoded as 32 bytes
/// according to RFC 8032 and signature type identifier byte `0x01`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519Verifier {
    name: KeyName,
    key_id: KeyId,
    key: ed25519_dalek::VerifyingKey,
}

impl Ed25519Verifier {
    /// A verifier for a 32-byte RFC 8032 public key.
    pub fn new(name: KeyName, public_key: &[u8; 32]) -> Result<Self, KeyParseError> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| {
            KeyParseError::InvalidKey {
                signature_type: SIGNATURE_TYPE_ED25519,
            }
        })?;
        let key_id = KeyId::compute(&name, SIGNATURE_TYPE_ED25519, public_key);
        Ok(Self { name, key_id, key })
    }

    /// Parses a vkey of type `0x01`.
    pub fn from_vkey(vkey: &str) -> Result<Self, KeyParseError> {
        match Verifier::from_vkey(vkey)? {
            Verifier::Ed25519(v) => Ok(v),
            other => Err(KeyParseError::UnsupportedSignatureType(
                other.signature_type(),
            )),
        }
    }

    /// The vkey string.
    pub fn to_vkey(&self) -> String {
        format_vkey(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.key.as_bytes(),
        )
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// `SHA-256(name || 0x0A || 0x01 || public key)`: the full hash behind the key ID, used
    /// as `logId.keyId` by Rekor v2 and provmesh.
    pub fn key_hash(&self) -> [u8; 32] {
        key_hash(&self.name, SIGNATURE_TYPE_ED25519, self.key.as_bytes())
    }

    /// Verifies a 64-byte signature over a note text.
    pub fn verify(&self, text: &str, signature: &[u8]) -> Result<(), SignatureFailure> {
        ed25519_verify(&self.key, &[text.as_bytes()], signature)
    }
}

/// An Ed25519 note signer (signature type `0x01`), from a caller-supplied 32-byte seed.
#[derive(Clone)]
pub struct Ed25519Signer {
    name: KeyName,
    key_id: KeyId,
    key: ed25519_dalek::SigningKey,
}

impl Ed25519Signer {
    /// A signer from an RFC 8032 32-byte private key (seed).
    pub fn from_seed(name: KeyName, seed: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let key_id = KeyId::compute(
            &name,
            SIGNATURE_TYPE_ED25519,
            key.verifying_key().as_bytes(),
        );
        Self { name, key_id, key }
    }

    /// Parses Go's `PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)` signer key.
    pub fn from_skey(skey: &str) -> Result<Self, KeyParseError> {
        let (name, seed) = parse_ed25519_skey(skey, SIGNATURE_TYPE_ED25519)?;
        Ok(Self::from_seed(name, &seed))
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Ed25519Verifier {
        Ed25519Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The key in Go's `PRIVATE+KEY+<name>+<id>+base64(0x01 || seed)` form, which
    /// [`Ed25519Signer::from_skey`] reads back. It is the secret: store it like one.
    pub fn to_skey(&self) -> String {
        format_ed25519_skey(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.key.as_bytes(),
        )
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs arbitrary bytes with the same key (RFC 8032 Ed25519, deterministic). A log
    /// signs its signed entry timestamps this way, as Rekor does with its log key.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer as _;
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl NoteSigner for Ed25519Signer {
    fn name(&self) -> &KeyName {
        &self.name
    }
    fn key_id(&self) -> KeyId {
        self.key_id
    }
    fn sign_text(&self, text: &str) -> Result<NoteSignature, NoteSignError> {
        let sig = self.key.sign(text.as_bytes());
        NoteSignature::new(self.name.clone(), self.key_id, sig.to_bytes().to_vec())
    }
}

/// An ECDSA P-256 / SHA-256 note verifier (signature type `0x02`), as Rekor v1 signs its
/// checkpoints.
///
/// Spec: "The ECDSA curve MUST be one of NIST P-256, NIST P-384, or NIST P-521, and SHOULD
/// be NIST P-256." (only P-256 is supported) "Note that the key ID for these signatures is
/// the truncated SHA-256 hash of the DER encoded public key in SPKI format." The
/// signature is an ASN.1 DER `ECDSA-Sig-Value` over SHA-256 of the note text. High-S
/// signatures are accepted, as Go's `ecdsa.VerifyASN1` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcdsaP256Verifier {
    name: KeyName,
    key_id: KeyId,
    spki_der: Vec<u8>,
    key: p256::ecdsa::VerifyingKey,
}

impl EcdsaP256Verifier {
    /// A verifier from a DER SubjectPublicKeyInfo. The key ID is the first four bytes of
    /// SHA-256 over these exact DER bytes (Rekor's log ID is the full hash).
    pub fn from_spki_der(name: KeyName, spki_der: &[u8]) -> Result<Self, KeyParseError> {
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der).map_err(|_| {
            KeyParseError::InvalidKey {
                signature_type: SIGNATURE_TYPE_ECDSA,
            }
        })?;
        let hash: [u8; 32] = Sha256::digest(spki_der).into();
        Ok(Self {
            name,
            key_id: KeyId::from_hash(&hash),
            spki_der: spki_der.to_vec(),
            key,
        })
    }

    /// A verifier from a PEM `PUBLIC KEY` block (as Sigstore distributes the Rekor key).
    pub fn from_pem(name: KeyName, pem: &str) -> Result<Self, KeyParseError> {
        let der = decode_public_key_pem(pem)?;
        Self::from_spki_der(name, &der)
    }

    /// Parses a vkey of type `0x02`.
    pub fn from_vkey(vkey: &str) -> Result<Self, KeyParseError> {
        match Verifier::from_vkey(vkey)? {
            Verifier::EcdsaP256(v) => Ok(v),
            other => Err(KeyParseError::UnsupportedSignatureType(
                other.signature_type(),
            )),
        }
    }

    /// The vkey string, `name+id+base64(0x02 || DER SPKI)` (transparency-dev/formats).
    pub fn to_vkey(&self) -> String {
        format_vkey(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_ECDSA,
            &self.spki_der,
        )
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo: Rekor v1's log ID.
    pub fn key_hash(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    /// Verifies a DER ECDSA signature over SHA-256 of a note text.
    pub fn verify(&self, text: &str, signature: &[u8]) -> Result<(), SignatureFailure> {
        use p256::ecdsa::signature::Verifier as _;
        let sig = p256::ecdsa::Signature::from_der(signature)
            .map_err(|_| SignatureFailure::MalformedDer)?;
        self.key
            .verify(text.as_bytes(), &sig)
            .map_err(|_| SignatureFailure::Mismatch)
    }
}

/// Decodes a single PEM `PUBLIC KEY` block.
fn decode_public_key_pem(pem: &str) -> Result<Vec<u8>, KeyParseError> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let mut lines = pem.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(BEGIN) {
        return Err(KeyParseError::InvalidPem);
    }
    let mut b64 = String::new();
    let mut ended = false;
    for line in lines {
        if ended {
            return Err(KeyParseError::InvalidPem);
        }
        if line == END {
            ended = true;
        } else {
            b64.push_str(line);
        }
    }
    if !ended {
        return Err(KeyParseError::InvalidPem);
    }
    BASE64.decode(b64).map_err(|_| KeyParseError::InvalidPem)
}

/// An ECDSA P-256 note signer (signature type `0x02`) with deterministic RFC 6979
/// nonces, for logs that must look like Rekor v1 and for tests.
#[derive(Clone)]
pub struct EcdsaP256Signer {
    name: KeyName,
    key: p256::ecdsa::SigningKey,
    verifier: EcdsaP256Verifier,
}

impl EcdsaP256Signer {
    /// A signer from a 32-byte big-endian secret scalar.
    pub fn from_secret_scalar(name: KeyName, secret: &[u8; 32]) -> Result<Self, KeyParseError> {
        let invalid = KeyParseError::InvalidKey {
            signature_type: SIGNATURE_TYPE_ECDSA,
        };
        let key = p256::ecdsa::SigningKey::from_slice(secret).map_err(|_| invalid.clone())?;
        let der = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|_| invalid)?;
        let verifier = EcdsaP256Verifier::from_spki_der(name.clone(), der.as_bytes())?;
        Ok(Self {
            name,
            key,
            verifier,
        })
    }

    /// The matching verifier.
    pub fn verifier(&self) -> EcdsaP256Verifier {
        self.verifier.clone()
    }
}

impl fmt::Debug for EcdsaP256Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaP256Signer")
            .field("name", &self.name)
            .field("key_id", &self.verifier.key_id)
            .finish_non_exhaustive()
    }
}

impl NoteSigner for EcdsaP256Signer {
    fn name(&self) -> &KeyName {
        &self.name
    }
    fn key_id(&self) -> KeyId {
        self.verifier.key_id
    }
    fn sign_text(&self, text: &str) -> Result<NoteSignature, NoteSignError> {
        use p256::ecdsa::signature::Signer as _;
        let sig: p256::ecdsa::Signature = self
            .key
            .try_sign(text.as_bytes())
            .map_err(|_| NoteSignError::Backend)?;
        NoteSignature::new(
            self.name.clone(),
            self.verifier.key_id,
            sig.to_der().as_bytes().to_vec(),
        )
    }
}

/// The keys a note is verified against, looked up by key name and key ID.
///
/// Lookup is a linear scan (compare the 32-bit ID first), which beats hashing for the
/// handful of keys a checkpoint is checked against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifierSet {
    verifiers: Vec<Verifier>,
}

impl VerifierSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of the given verifiers; no two may share key name and key ID.
    pub fn from_verifiers(
        verifiers: impl IntoIterator<Item = Verifier>,
    ) -> Result<Self, DuplicateVerifierError> {
        let mut set = Self::new();
        for v in verifiers {
            set.insert(v)?;
        }
        Ok(set)
    }

    /// Adds a verifier; fails if one with the same key name and key ID is present.
    pub fn insert(&mut self, verifier: impl Into<Verifier>) -> Result<(), DuplicateVerifierError> {
        let verifier = verifier.into();
        if self.get(verifier.name(), verifier.key_id()).is_some() {
            return Err(DuplicateVerifierError {
                name: verifier.name().as_str().to_owned(),
                key_id: verifier.key_id(),
            });
        }
        self.verifiers.push(verifier);
        Ok(())
    }

    /// The verifier for a key name and key ID, if any.
    pub fn get(&self, name: &KeyName, key_id: KeyId) -> Option<&Verifier> {
        self.verifiers
            .iter()
            .find(|v| v.key_id() == key_id && v.name() == name)
    }

    /// Number of verifiers.
    pub fn len(&self) -> usize {
        self.verifiers.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.verifiers.is_empty()
    }

    /// The verifiers, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Verifier> {
        self.verifiers.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_name_rules() {
        assert!(KeyName::new("example.com/log").is_ok());
        assert!(KeyName::new("").is_err());
        assert!(KeyName::new("a b").is_err());
        assert!(KeyName::new("a+b").is_err());
        assert!(KeyName::new("a\u{a0}b").is_err());
        assert!(KeyName::new("a\u{1}b").is_err());
    }

    #[test]
    fn separator_is_last_blank_line() {
        let n = Note::parse("a\n\nb\n\n\u{2014} k AAAAAAE=\n".as_bytes()).unwrap();
        assert_eq!(n.text(), "a\n\nb\n");
        assert_eq!(n.signatures().len(), 1);
    }

    #[test]
    fn non_canonical_base64_rejected() {
        // "AAAAAAE=" decodes to 00 00 00 00 01; "AAAAAAF=" has non-zero trailing bits.
        assert!(Note::parse("a\n\n\u{2014} k AAAAAAF=\n".as_bytes()).is_err());
        assert!(Note::parse("a\n\n\u{2014} k AAAAAAE\n".as_bytes()).is_err());
    }
}
