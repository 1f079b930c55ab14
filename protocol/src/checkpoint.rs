//! C2SP tlog-checkpoint (<https://c2sp.org/tlog-checkpoint>, v1.0.0) bodies.
//!
//! This module owns the checkpoint text — origin, tree size, root hash, extension lines —
//! its byte-exact parsing and formatting, and the two steps that tie it to a signed note:
//! signing a checkpoint into a [`Note`] and opening a received note as a checkpoint of a
//! given log, verified with that log's key. Cosignatures on the same note are checked
//! with [`Note::verify_known`] and [`crate::cosignature`].
//!
//! Spec: "A checkpoint is a signed note where the body is precisely formatted for use in
//! transparency log applications. The mandatory note text includes the three essential
//! parts of a log's Merkle tree head at a given size."

use std::fmt;

use base64::Engine as _;
use thiserror::Error;

use crate::note::{
    BASE64, MAX_NOTE_SIZE, Note, NoteParseError, NoteSignError, NoteSigner, NoteVerifyError,
    VerifiedSignature, Verifier, VerifierSet,
};

/// A Merkle tree hash (SHA-256).
pub use crate::merkle::Hash;

/// Why a text is not a well-formed checkpoint body. All variants mean the producer of the
/// text (usually a peer) made a mistake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckpointParseError {
    /// The text is larger than [`MAX_NOTE_SIZE`].
    #[error("checkpoint is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The text does not end with a newline.
    #[error("checkpoint text does not end with a newline")]
    NotNewlineTerminated,
    /// The text contains an ASCII control character other than newline.
    #[error("checkpoint contains control character {byte:#04x} at byte {offset}")]
    ControlCharacter {
        /// Offset of the character.
        offset: usize,
        /// The character.
        byte: u8,
    },
    /// Fewer than three lines.
    #[error("checkpoint has {found} lines, at least 3 are required")]
    TooFewLines {
        /// Number of lines found.
        found: usize,
    },
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// The tree size is not ASCII decimal digits, or has a leading zero.
    #[error("checkpoint tree size is not a decimal without leading zeroes")]
    InvalidTreeSize,
    /// The tree size does not fit in 64 bits.
    #[error("checkpoint tree size does not fit in 64 bits")]
    TreeSizeOverflow,
    /// The root hash is not canonical standard base64.
    #[error("checkpoint root hash is not canonical base64")]
    InvalidRootHashBase64,
    /// The root hash is not 32 bytes.
    #[error("checkpoint root hash is {found} bytes, expected 32")]
    InvalidRootHashLength {
        /// Decoded length.
        found: usize,
    },
    /// An extension line is empty.
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtensionLine {
        /// 1-based line number within the text.
        line: usize,
    },
}

/// Why a checkpoint could not be built from the caller's values (caller errors).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckpointBuildError {
    /// The origin is empty.
    #[error("origin must not be empty")]
    EmptyOrigin,
    /// The origin contains a newline or another control character.
    #[error("origin must not contain newlines or control characters")]
    InvalidOrigin,
    /// An extension line is empty.
    #[error("extension lines must not be empty")]
    EmptyExtensionLine,
    /// An extension line contains a newline or another control character.
    #[error("extension lines must not contain newlines or control characters")]
    InvalidExtensionLine,
    /// The checkpoint text would exceed [`MAX_NOTE_SIZE`].
    #[error("checkpoint text would exceed {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
}

/// Why a received note could not be opened as a checkpoint of the expected log.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CheckpointOpenError {
    /// The bytes are not a signed note (sender's fault).
    #[error("not a signed note: {0}")]
    Note(#[from] NoteParseError),
    /// The log's signature is missing or invalid (sender's fault), or the caller passed
    /// an unusable verifier.
    #[error("log signature: {0}")]
    Verify(#[from] NoteVerifyError),
    /// The verified text is not a checkpoint body (the log's fault).
    #[error("not a checkpoint: {0}")]
    Body(#[from] CheckpointParseError),
    /// The checkpoint is for another origin than the one expected.
    #[error("checkpoint origin {found:?} is not the expected {expected:?}")]
    OriginMismatch {
        /// The origin the caller expected.
        expected: String,
        /// The origin in the checkpoint.
        found: String,
    },
}

/// A checkpoint body: a log's Merkle tree head at a given size.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root_hash: Hash,
    extension_lines: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(
        origin: impl Into<String>,
        size: u64,
        root_hash: Hash,
    ) -> Result<Self, CheckpointBuildError> {
        Self::with_extension_lines(origin, size, root_hash, Vec::new())
    }

    /// A checkpoint with extension lines (each without its newline).
    ///
    /// Spec: "The use of extension lines is NOT RECOMMENDED, as they are not auditable by
    /// log monitors."
    pub fn with_extension_lines(
        origin: impl Into<String>,
        size: u64,
        root_hash: Hash,
        extension_lines: Vec<String>,
    ) -> Result<Self, CheckpointBuildError> {
        let origin = origin.into();
        // "The origin MUST be non-empty"
        if origin.is_empty() {
            return Err(CheckpointBuildError::EmptyOrigin);
        }
        if has_control(&origin) {
            return Err(CheckpointBuildError::InvalidOrigin);
        }
        for line in &extension_lines {
            // "Extension lines, if any, MUST be non-empty."
            if line.is_empty() {
                return Err(CheckpointBuildError::EmptyExtensionLine);
            }
            if has_control(line) {
                return Err(CheckpointBuildError::InvalidExtensionLine);
            }
        }
        let checkpoint = Self {
            origin,
            size,
            root_hash,
            extension_lines,
        };
        if checkpoint.text_len() > MAX_NOTE_SIZE {
            return Err(CheckpointBuildError::TooLarge { max: MAX_NOTE_SIZE });
        }
        Ok(checkpoint)
    }

    /// Parses a checkpoint body (a note text, including its final newline).
    pub fn parse(text: &str) -> Result<Self, CheckpointParseError> {
        if text.len() > MAX_NOTE_SIZE {
            return Err(CheckpointParseError::TooLarge {
                size: text.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        // A note text ends in a newline: "a text ending in newline (U+000A)".
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointParseError::NotNewlineTerminated)?;
        if let Some((offset, &byte)) = text
            .as_bytes()
            .iter()
            .enumerate()
            .find(|&(_, &b)| b < 0x20 && b != b'\n')
        {
            return Err(CheckpointParseError::ControlCharacter { offset, byte });
        }
        // "The note text is a sequence of at least three non-empty lines, separated by
        // newlines (U+000A)."
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(hash)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointParseError::TooFewLines {
                found: body.split('\n').count(),
            });
        };
        // "The first line is the origin ... The origin MUST be non-empty". Its
        // recommended form (no spaces, no plus) is not enforced: "clients MUST NOT assume
        // that the origin is following this format".
        if origin.is_empty() {
            return Err(CheckpointParseError::EmptyOrigin);
        }
        let size = parse_tree_size(size)?;
        let root_hash = parse_root_hash(hash)?;
        // "Any following lines are extension lines, opaque and OPTIONAL. Extension lines,
        // if any, MUST be non-empty."
        let mut extension_lines = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                return Err(CheckpointParseError::EmptyExtensionLine { line: i + 4 });
            }
            extension_lines.push(line.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root_hash,
            extension_lines,
        })
    }

    /// Parses the text of a note as a checkpoint. The note must have been verified first.
    pub fn from_note(note: &Note) -> Result<Self, CheckpointParseError> {
        Self::parse(note.text())
    }

    /// The checkpoint body: origin, size and root hash lines, extension lines, each ending
    /// with a newline. `Checkpoint::parse(&c.to_text()) == Ok(c)`.
    pub fn to_text(&self) -> String {
        let mut s = String::with_capacity(self.text_len());
        s.push_str(&self.origin);
        s.push('\n');
        s.push_str(&self.size.to_string());
        s.push('\n');
        BASE64.encode_string(self.root_hash, &mut s);
        s.push('\n');
        for line in &self.extension_lines {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    fn text_len(&self) -> usize {
        self.origin.len()
            + 1
            + 20
            + 1
            + 45
            + self
                .extension_lines
                .iter()
                .map(|l| l.len() + 1)
                .sum::<usize>()
    }

    /// The origin: "a unique identifier for the log identity which issued the checkpoint".
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size: "the number of leaves in the tree".
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash: "the root of the RFC 6962 Merkle hash tree at the specified tree
    /// size".
    pub fn root_hash(&self) -> &Hash {
        &self.root_hash
    }

    /// The extension lines, without their newlines.
    pub fn extension_lines(&self) -> &[String] {
        &self.extension_lines
    }

    /// Signs the checkpoint into a note. Spec: "The log's key name in its signature line
    /// SHOULD match the origin line." (not enforced: Rekor v1 does not).
    pub fn sign(&self, signers: &[&dyn NoteSigner]) -> Result<Note, NoteSignError> {
        Note::sign(self.to_text(), signers)
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("origin", &self.origin)
            .field("size", &self.size)
            .field("root_hash", &hex::encode(self.root_hash))
            .field("extension_lines", &self.extension_lines)
            .finish()
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn has_control(s: &str) -> bool {
    s.bytes().any(|b| b < 0x20)
}

/// "The second line is the tree size, the ASCII decimal representation of the number of
/// leaves in the tree, with no leading zeroes (unless the tree is empty, in which case the
/// tree size is `0`)."
fn parse_tree_size(line: &str) -> Result<u64, CheckpointParseError> {
    // `u64::from_str` would also accept a leading `+`.
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CheckpointParseError::InvalidTreeSize);
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(CheckpointParseError::InvalidTreeSize);
    }
    line.parse()
        .map_err(|_| CheckpointParseError::TreeSizeOverflow)
}

/// "The third line is the root hash, the base64 encoding of the root of the RFC 6962
/// Merkle hash tree at the specified tree size." "The base64 encoding used throughout is
/// the standard Base 64 encoding specified in RFC 4648, Section 4." (decoded strictly, so
/// the text round-trips byte for byte)
fn parse_root_hash(line: &str) -> Result<Hash, CheckpointParseError> {
    let bytes = BASE64
        .decode(line)
        .map_err(|_| CheckpointParseError::InvalidRootHashBase64)?;
    let found = bytes.len();
    bytes
        .try_into()
        .map_err(|_| CheckpointParseError::InvalidRootHashLength { found })
}

/// A checkpoint whose log signature verified, with the note it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The checkpoint body.
    pub checkpoint: Checkpoint,
    /// The whole note, including any cosignature lines (not yet verified).
    pub note: Note,
}

impl SignedCheckpoint {
    /// Verifies the cosignatures on the note from the given witnesses. Returns the
    /// witnesses whose cosignatures verified, with their timestamps; lines from other keys
    /// are ignored, and an invalid line from a known witness is an error.
    pub fn verify_cosignatures<'v>(
        &self,
        witnesses: &'v VerifierSet,
    ) -> Result<Vec<VerifiedSignature<'v>>, NoteVerifyError> {
        self.note.verify_known(witnesses)
    }
}

/// Opens a received signed note as a checkpoint of the log `origin`, verified with the
/// log's key.
///
/// Order: parse the note, verify the log's signature (the spec: "The text MUST be ignored
/// unless the note is signed by a trusted key and the signature has been verified"), then
/// parse the text as a checkpoint and check its origin. Other signature lines are ignored
/// here (spec: "clients MUST ignore unknown signatures. This enables, for example, log key
/// rotation, and witness cosigning.").
pub fn open(
    bytes: &[u8],
    origin: &str,
    log_key: &Verifier,
) -> Result<SignedCheckpoint, CheckpointOpenError> {
    let note = Note::parse(bytes)?;
    note.verify_with(log_key)?;
    let checkpoint = Checkpoint::from_note(&note)?;
    if checkpoint.origin != origin {
        return Err(CheckpointOpenError::OriginMismatch {
            expected: origin.to_owned(),
            found: checkpoint.origin,
        });
    }
    Ok(SignedCheckpoint { checkpoint, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_size_rules() {
        assert_eq!(parse_tree_size("0"), Ok(0));
        assert_eq!(parse_tree_size("20852163"), Ok(20852163));
        assert_eq!(parse_tree_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_tree_size("18446744073709551616"),
            Err(CheckpointParseError::TreeSizeOverflow)
        );
        for bad in ["", "00", "01", "+1", "-1", " 1", "1 ", "１"] {
            assert_eq!(
                parse_tree_size(bad),
                Err(CheckpointParseError::InvalidTreeSize),
                "{bad:?}"
            );
        }
    }
}
