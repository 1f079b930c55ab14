//! Equivocation evidence: a self-contained, versioned document that proves a log signed
//! two checkpoints that cannot both be true. Anyone holding the log's key can check it
//! offline; nothing in it has to be trusted but that key.
//!
//! It proves, it does not suspect. Two forms convict a log:
//!
//! * **Same size, different roots**: two checkpoints of one size whose root hashes
//!   differ, both signed by the log key.
//! * **Inconsistent**: a checkpoint of size `m` and one of size `n > m`, both signed, and
//!   an RFC 9162 consistency proof from `m` to `n` that reproduces the size-`n` signed
//!   root while deriving, for size `m`, a root other than the size-`m` signed one. The
//!   proof commits to the newer tree (it hashes up to its signed root), so the older
//!   prefix of that tree is not the tree the older checkpoint signed. When `m` is a power
//!   of two the RFC proof omits the old subtree (the verifier is expected to hold it), so
//!   the evidence carries it explicitly as `oldSubtree`.
//!
//! A proof that merely fails to verify convicts nobody: anyone can send garbage, and two
//! honest checkpoints with a garbage proof are never evidence ([`Evidence::verify`]
//! returns [`EvidenceError::NotProven`]).
//!
//! The document (JSON, at most [`MAX_EVIDENCE_BYTES`]):
//!
//! ```json
//! {
//!   "type": "https://provmesh.dev/evidence/equivocation/v1",
//!   "origin": "log.org-a.example",
//!   "logKey": "log.org-a.example+1a2b3c4d+AQ…",
//!   "older": "<signed checkpoint note>",
//!   "newer": "<signed checkpoint note>",
//!   "proof": ["<base64 hash>", …],
//!   "oldSubtree": "<base64 hash>"
//! }
//! ```
//!
//! `older` has the smaller size (or the same size); `proof` is empty for the same-size
//! form; `oldSubtree` is present only when the older size is a power of two.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::checkpoint::Checkpoint;
use crate::merkle::{Hash, consistency_proof_roots};
use crate::note::{Note, Verifier};

/// The document type of version 1.
pub const EVIDENCE_TYPE: &str = "https://provmesh.dev/evidence/equivocation/v1";
/// The largest evidence document accepted.
pub const MAX_EVIDENCE_BYTES: usize = 160 * 1024;
/// The most hashes in the proof (RFC 9162 proofs of 64-bit trees need fewer).
pub const MAX_PROOF_HASHES: usize = 128;

/// The wire form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document {
    #[serde(rename = "type")]
    kind: String,
    origin: String,
    log_key: String,
    older: String,
    newer: String,
    proof: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old_subtree: Option<String>,
}

/// An evidence document, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The log.
    pub origin: String,
    /// The log's key, which signed both checkpoints.
    pub log_key: Verifier,
    /// The checkpoint of the smaller (or the same) size, a signed note.
    pub older: Vec<u8>,
    /// The other checkpoint.
    pub newer: Vec<u8>,
    /// The consistency proof from the older size to the newer (empty for the same size).
    pub proof: Vec<Hash>,
    /// The subtree hash of the newer tree at the older size, when that size is a power
    /// of two.
    pub old_subtree: Option<Hash>,
}

/// How the log equivocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EquivocationKind {
    /// Two checkpoints of one size with different roots.
    SameSize,
    /// A newer tree whose prefix is not the older signed tree.
    Inconsistent,
}

/// What verified evidence proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// A stable identifier of the equivocation: SHA-256 of the origin and both
    /// checkpoints' sizes and roots, in order. Extra signature lines on the notes, or the
    /// two same-size checkpoints swapped, make no new evidence.
    pub id: [u8; 32],
    /// The log.
    pub origin: String,
    /// How it equivocated.
    pub kind: EquivocationKind,
    /// The older size.
    pub older_size: u64,
    /// The newer size.
    pub newer_size: u64,
}

/// Why a document is not evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// Longer than [`MAX_EVIDENCE_BYTES`].
    #[error("the document is {0} bytes; at most {MAX_EVIDENCE_BYTES} are accepted")]
    TooLarge(usize),
    /// Not an evidence document of a known version.
    #[error("not an evidence document: {0}")]
    Malformed(String),
    /// A checkpoint is not signed by the log key, or not a checkpoint of the origin.
    #[error("the {which} checkpoint: {reason}")]
    Checkpoint {
        /// `older` or `newer`.
        which: &'static str,
        /// Why.
        reason: String,
    },
    /// The checkpoints and proof are valid but prove nothing against the log.
    #[error("not proven: {0}")]
    NotProven(String),
}

fn malformed(reason: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::Malformed(reason.to_string())
}

fn decode_hash(s: &str) -> Result<Hash, EvidenceError> {
    BASE64
        .decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed(format!("{s:?} is not a base64-encoded 32-byte hash")))
}

/// Opens a signed checkpoint note of `origin` with the log key.
fn open(
    note: &[u8],
    origin: &str,
    key: &Verifier,
    which: &'static str,
) -> Result<Checkpoint, EvidenceError> {
    let failed = |reason: String| EvidenceError::Checkpoint { which, reason };
    let note = Note::parse(note).map_err(|e| failed(e.to_string()))?;
    note.verify_with(key).map_err(|e| failed(e.to_string()))?;
    let checkpoint = Checkpoint::from_note(&note).map_err(|e| failed(e.to_string()))?;
    if checkpoint.origin() != origin {
        return Err(failed(format!(
            "its origin is {:?}, not {origin:?}",
            checkpoint.origin()
        )));
    }
    Ok(checkpoint)
}

impl Evidence {
    /// Parses a document; verifies nothing (see [`Evidence::verify`]).
    pub fn from_json(bytes: &[u8]) -> Result<Evidence, EvidenceError> {
        if bytes.len() > MAX_EVIDENCE_BYTES {
            return Err(EvidenceError::TooLarge(bytes.len()));
        }
        let document: Document = serde_json::from_slice(bytes).map_err(malformed)?;
        if document.kind != EVIDENCE_TYPE {
            return Err(malformed(format!(
                "type {:?} is not {EVIDENCE_TYPE:?}",
                document.kind
            )));
        }
        if document.proof.len() > MAX_PROOF_HASHES {
            return Err(malformed(format!(
                "more than {MAX_PROOF_HASHES} proof hashes"
            )));
        }
        let log_key = Verifier::from_vkey(&document.log_key).map_err(malformed)?;
        Ok(Evidence {
            origin: document.origin,
            log_key,
            older: document.older.into_bytes(),
            newer: document.newer.into_bytes(),
            proof: document
                .proof
                .iter()
                .map(|h| decode_hash(h))
                .collect::<Result<_, _>>()?,
            old_subtree: document
                .old_subtree
                .as_deref()
                .map(decode_hash)
                .transpose()?,
        })
    }

    /// The document, JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let document = Document {
            kind: EVIDENCE_TYPE.to_owned(),
            origin: self.origin.clone(),
            log_key: self.log_key.to_vkey(),
            older: String::from_utf8_lossy(&self.older).into_owned(),
            newer: String::from_utf8_lossy(&self.newer).into_owned(),
            proof: self.proof.iter().map(|h| BASE64.encode(h)).collect(),
            old_subtree: self.old_subtree.map(|h| BASE64.encode(h)),
        };
        serde_json::to_vec_pretty(&document).unwrap_or_default()
    }

    /// Checks that the document proves the log equivocated: both checkpoints are signed
    /// by the log key for the origin, and either they have one size and different roots,
    /// or the proof reproduces the newer root while deriving another older root.
    pub fn verify(&self) -> Result<Proven, EvidenceError> {
        let older = open(&self.older, &self.origin, &self.log_key, "older")?;
        let newer = open(&self.newer, &self.origin, &self.log_key, "newer")?;
        let (m, n) = (older.size(), newer.size());
        let id = {
            let mut heads = [(m, *older.root_hash()), (n, *newer.root_hash())];
            heads.sort();
            let mut hasher = Sha256::new();
            hasher.update((self.origin.len() as u64).to_be_bytes());
            hasher.update(self.origin.as_bytes());
            for (size, root) in heads {
                hasher.update(size.to_be_bytes());
                hasher.update(root);
            }
            <[u8; 32]>::from(hasher.finalize())
        };
        let proven = |kind| Proven {
            id,
            origin: self.origin.clone(),
            kind,
            older_size: m,
            newer_size: n,
        };
        if m > n {
            return Err(EvidenceError::NotProven(format!(
                "the older checkpoint's size {m} is larger than the newer's {n}"
            )));
        }
        if m == n {
            if !self.proof.is_empty() || self.old_subtree.is_some() {
                return Err(EvidenceError::NotProven(
                    "checkpoints of one size need no proof".to_owned(),
                ));
            }
            if older.root_hash() == newer.root_hash() {
                return Err(EvidenceError::NotProven(
                    "the two checkpoints are the same tree".to_owned(),
                ));
            }
            return Ok(proven(EquivocationKind::SameSize));
        }
        if m == 0 {
            return Err(EvidenceError::NotProven(
                "every tree extends the empty tree".to_owned(),
            ));
        }
        let subtree = match (m.is_power_of_two(), self.old_subtree) {
            (true, Some(subtree)) => subtree,
            (true, None) => {
                return Err(EvidenceError::NotProven(format!(
                    "the older size {m} is a power of two: the evidence must carry the old \
                     subtree"
                )));
            }
            (false, None) => *older.root_hash(),
            (false, Some(_)) => {
                return Err(EvidenceError::NotProven(format!(
                    "the older size {m} is not a power of two: no old subtree is carried"
                )));
            }
        };
        match consistency_proof_roots(m, n, &self.proof, &subtree) {
            Ok((_, new)) if new != *newer.root_hash() => Err(EvidenceError::NotProven(format!(
                "the proof does not reproduce the newer root ({new:02x?})"
            ))),
            Ok((old, _)) if old == *older.root_hash() => Err(EvidenceError::NotProven(
                "the proof shows the checkpoints consistent".to_owned(),
            )),
            Ok(_) => Ok(proven(EquivocationKind::Inconsistent)),
            Err(e) => Err(EvidenceError::NotProven(format!(
                "the proof does not verify: {e}"
            ))),
        }
    }
}

/// The most evidence documents a node keeps per log: one convicts it; a few more cover
/// different equivocations found, without letting a peer that re-wraps one fill every
/// node's disk.
pub const MAX_EVIDENCE_PER_LOG: usize = 8;

/// The most evidence ids one anti-entropy summary lists.
pub const MAX_EVIDENCE_IDS: usize = 4096;
/// The most evidence documents one anti-entropy answer carries; the rest follows in later
/// rounds.
pub const MAX_EVIDENCE_PER_ANSWER: usize = 16;

/// Anti-entropy for evidence: of the documents `held`, the ids of those a peer whose
/// summary lists `theirs` lacks, at most [`MAX_EVIDENCE_PER_ANSWER`] (lowest ids first;
/// the peer lists what it got next time and receives the next ones). Evidence is never
/// subject to following: every node is sent every conviction.
pub fn lacking(
    held: &std::collections::BTreeSet<[u8; 32]>,
    theirs: &std::collections::BTreeSet<[u8; 32]>,
) -> Vec<[u8; 32]> {
    held.difference(theirs)
        .take(MAX_EVIDENCE_PER_ANSWER)
        .copied()
        .collect()
}

/// What a node makes of evidence a peer sent, knowing the key its accepted domain record
/// gives the log (`None`: a log it does not know). One rule for the node and the
/// simulator alike.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Judgement {
    /// It proves the log equivocated under the log's own key: keep it, relay it.
    Proven(Proven),
    /// It cannot be judged here — a log this node does not know, or evidence about
    /// another key than the one this node accepted (the sender may know another record
    /// of the domain): neither kept nor relayed, and no fault of the sender's.
    Unjudged,
    /// It proves nothing under the log's own key: only ever sent on purpose.
    Refuted(EvidenceError),
}

/// Judges `evidence` against the key this node holds for its log (see [`Judgement`]).
pub fn judge(evidence: &Evidence, log_key: Option<&Verifier>) -> Judgement {
    match log_key {
        Some(key) if *key == evidence.log_key => match evidence.verify() {
            Ok(proven) => Judgement::Proven(proven),
            Err(e) => Judgement::Refuted(e),
        },
        _ => Judgement::Unjudged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestLog;
    use proptest::prelude::*;

    const ORIGIN: &str = "log.org-a.example";

    fn evidence(
        log_key: Verifier,
        older: Vec<u8>,
        newer: Vec<u8>,
        proof: Vec<Hash>,
        old_subtree: Option<Hash>,
    ) -> Evidence {
        Evidence {
            origin: ORIGIN.to_owned(),
            log_key,
            older,
            newer,
            proof,
            old_subtree,
        }
    }

    #[test]
    fn same_size_different_roots_is_proven() {
        let (mut honest, mut fork) = (TestLog::new(ORIGIN, 1), TestLog::forked(ORIGIN, 1, 3));
        let e = evidence(
            honest.verifier(),
            honest.note(6),
            fork.note(6),
            Vec::new(),
            None,
        );
        let proven = e.verify().unwrap();
        assert_eq!(proven.kind, EquivocationKind::SameSize);
        // The document round-trips and still proves it.
        let again = Evidence::from_json(&e.to_json()).unwrap();
        assert_eq!(again, e);
        assert_eq!(again.verify().unwrap(), proven);
        // The same equivocation, the notes swapped, is the same evidence.
        let swapped = evidence(
            honest.verifier(),
            fork.note(6),
            honest.note(6),
            Vec::new(),
            None,
        );
        assert_eq!(swapped.verify().unwrap().id, proven.id);
        // One checkpoint twice proves nothing.
        let same = evidence(
            honest.verifier(),
            honest.note(6),
            honest.note(6),
            Vec::new(),
            None,
        );
        assert!(matches!(same.verify(), Err(EvidenceError::NotProven(_))));
    }

    #[test]
    fn an_inconsistent_newer_tree_is_proven() {
        let (mut honest, mut fork) = (TestLog::new(ORIGIN, 1), TestLog::forked(ORIGIN, 1, 3));
        // Older size 6 (not a power of two): the proof from the fork's tree derives the
        // fork's root at 6, not the honest one.
        let proof = fork.proof(6, 11);
        let e = evidence(
            honest.verifier(),
            honest.note(6),
            fork.note(11),
            proof,
            None,
        );
        assert_eq!(e.verify().unwrap().kind, EquivocationKind::Inconsistent);
        // Older size 4 (a power of two): the evidence carries the fork's subtree at 4.
        let proof = fork.proof(4, 11);
        let subtree = fork.subtree(4);
        let e = evidence(
            honest.verifier(),
            honest.note(4),
            fork.note(11),
            proof.clone(),
            Some(subtree),
        );
        assert_eq!(e.verify().unwrap().kind, EquivocationKind::Inconsistent);
        let without = evidence(
            honest.verifier(),
            honest.note(4),
            fork.note(11),
            proof,
            None,
        );
        assert!(matches!(without.verify(), Err(EvidenceError::NotProven(_))));
    }

    #[test]
    fn a_changed_byte_breaks_the_evidence() {
        let (mut honest, mut fork) = (TestLog::new(ORIGIN, 1), TestLog::forked(ORIGIN, 1, 3));
        let proof = fork.proof(6, 11);
        let document = evidence(
            honest.verifier(),
            honest.note(6),
            fork.note(11),
            proof,
            None,
        )
        .to_json();
        assert!(Evidence::from_json(&document).unwrap().verify().is_ok());
        for i in 0..document.len() {
            let mut changed = document.clone();
            changed[i] ^= 0x01;
            let result = Evidence::from_json(&changed).and_then(|e| e.verify().map(|_| e));
            // A change may leave the document equivalent (JSON white space), never prove
            // something else.
            if let Ok(e) = result {
                assert_eq!(e, Evidence::from_json(&document).unwrap(), "byte {i}");
            }
        }
    }

    #[test]
    fn checkpoints_of_another_key_or_origin_are_not_evidence() {
        let (mut honest, mut fork) = (TestLog::new(ORIGIN, 1), TestLog::forked(ORIGIN, 1, 3));
        let mut other = TestLog::forked(ORIGIN, 2, 3);
        let e = evidence(
            honest.verifier(),
            honest.note(6),
            other.note(6),
            Vec::new(),
            None,
        );
        assert!(matches!(
            e.verify(),
            Err(EvidenceError::Checkpoint { which: "newer", .. })
        ));
        let mut e = evidence(
            honest.verifier(),
            honest.note(6),
            fork.note(6),
            Vec::new(),
            None,
        );
        e.origin = "log.org-b.example".to_owned();
        assert!(matches!(e.verify(), Err(EvidenceError::Checkpoint { .. })));
    }

    #[test]
    fn evidence_is_judged_under_the_logs_own_key() {
        let (mut honest, mut fork) = (TestLog::new(ORIGIN, 1), TestLog::forked(ORIGIN, 1, 3));
        let proven = evidence(
            honest.verifier(),
            honest.note(6),
            fork.note(6),
            Vec::new(),
            None,
        );
        let key = honest.verifier();
        assert!(matches!(judge(&proven, Some(&key)), Judgement::Proven(_)));
        assert_eq!(judge(&proven, None), Judgement::Unjudged);
        let other = TestLog::new(ORIGIN, 2).verifier();
        assert_eq!(judge(&proven, Some(&other)), Judgement::Unjudged);
        let nothing = evidence(
            honest.verifier(),
            honest.note(6),
            honest.note(6),
            Vec::new(),
            None,
        );
        assert!(matches!(judge(&nothing, Some(&key)), Judgement::Refuted(_)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Two honest checkpoints never become evidence, whatever proof and subtree come
        /// with them: the true proof shows them consistent, and garbage does not verify.
        #[test]
        fn honest_checkpoints_are_never_evidence(
            m in 1u64..40,
            extra in 0u64..40,
            garbage in proptest::collection::vec(any::<[u8; 32]>(), 0..12),
            subtree in proptest::option::of(any::<[u8; 32]>()),
            use_true_proof in any::<bool>(),
        ) {
            let n = m + extra;
            let mut log = TestLog::new(ORIGIN, 1);
            let proof = if use_true_proof { log.proof(m, n) } else { garbage };
            let e = evidence(log.verifier(), log.note(m), log.note(n), proof, subtree);
            prop_assert!(e.verify().is_err());
        }

        /// Whatever the bytes, parsing never panics, and what parses prints a document
        /// that parses to the same evidence.
        #[test]
        fn arbitrary_documents(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(e) = Evidence::from_json(&bytes) {
                prop_assert_eq!(Evidence::from_json(&e.to_json()), Ok(e));
            }
        }
    }
}
