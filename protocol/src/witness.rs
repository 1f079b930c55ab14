//! The witness: C2SP tlog-witness `add-checkpoint` as a sans-IO state machine.
//!
//! A witness keeps, for each log it witnesses (identified by its origin line), the
//! latest checkpoint it cosigned, and cosigns a newer one only when a consistency proof
//! from that checkpoint verifies. This module owns the request format, every check of
//! the spec and its status code, and the witness state; the node drives it (HTTP, the
//! store, the signing key) and so does the simulator.
//!
//! The spec's order of checks (<https://c2sp.org/tlog-witness>), each a [`Refusal`]:
//!
//! | check | status |
//! | --- | --- |
//! | the body is not an old size line, at most 63 proof lines, an empty line and a note; or a non-empty proof with old size 0 ("The proof MUST be empty if the old size is zero") | 400 |
//! | "If the checkpoint origin is unknown, the witness MUST respond with a 404 Not Found" | 404 |
//! | "If none of the signatures verify against a trusted public key, the witness MUST respond with a 403 Forbidden" | 403 |
//! | "The old size MUST be equal to or lower than the checkpoint size. Otherwise, the witness MUST respond with a 400 Bad Request" | 400 |
//! | "The witness MUST check that the old size matches the size of the latest checkpoint it cosigned … If it doesn't match, the witness MUST respond with a 409 Conflict … The response body MUST consist of the tree size of the latest cosigned checkpoint in decimal, followed by a newline" | 409 |
//! | "If the Merkle Consistency Proof doesn't verify, the witness MUST respond with a 422 Unprocessable Entity" | 422 |
//! | "If the old size matches the checkpoint size, the witness MUST check that the root hashes are also identical. If they don't match, the witness MUST respond with a 409 Conflict" | 409 |
//!
//! **Atomic check and update, durable before the cosignature.** [`Witness::add_checkpoint`]
//! checks a request against the state and, when it passes, moves the state forward in
//! the same call, so two requests can never both be checked against the same old state
//! (the spec's rollback race). It returns an [`Update`] that the driver must persist
//! before it calls [`Update::cosign`] and answers: a cosignature never leaves for a
//! state that a crash could forget. If persisting fails the driver answers with an error
//! and sends no cosignature; the state in memory stays ahead of the store, which is safe
//! (no cosignature was given for it, and a restart goes back to what was stored).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::checkpoint::Checkpoint;
use crate::cosignature::CosignatureSigner;
use crate::merkle::{ConsistencyError, Hash, verify_consistency};
use crate::note::{Note, NoteSignError, Verifier};

/// "The client MUST NOT send more than 63 consistency proof lines."
pub const MAX_PROOF_LINES: usize = 63;
/// The largest request body read: the old size line, 63 proof lines and a checkpoint
/// note with its signatures.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The content type of a 409 answer that carries the witness's size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";
/// The most logs one witness tracks.
pub const MAX_LOGS: usize = 65_536;

/// A parsed `add-checkpoint` request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness cosigned last.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint, a signed note, as sent.
    pub checkpoint: Vec<u8>,
}

/// Why a request body is malformed (status 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is longer than [`MAX_REQUEST_BYTES`].
    #[error("the request is {0} bytes; at most {MAX_REQUEST_BYTES} are accepted")]
    TooLarge(usize),
    /// The first line is not `old <size>`.
    #[error("the first line must be \"old <size>\" (a decimal with no leading zeroes)")]
    OldSizeLine,
    /// A proof line is not the base64 of 32 bytes.
    #[error("proof line {line} is not a base64-encoded 32-byte hash")]
    ProofLine {
        /// 1-based line number among the proof lines.
        line: usize,
    },
    /// More than [`MAX_PROOF_LINES`] proof lines.
    #[error("more than {MAX_PROOF_LINES} consistency proof lines")]
    TooManyProofLines,
    /// A proof was sent with old size 0.
    #[error("the consistency proof must be empty when the old size is 0")]
    ProofWithOldSizeZero,
    /// No empty line ends the proof, or nothing follows it.
    #[error("no empty line followed by a checkpoint")]
    NoCheckpoint,
    /// The body is not UTF-8 text.
    #[error("the request is not UTF-8 text")]
    NotText,
}

impl AddCheckpoint {
    /// Parses a request body: "a sequence of an old size line, zero or more consistency
    /// proof lines, and an empty line, followed by a checkpoint. Each line MUST
    /// terminate in a newline character."
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, RequestError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(RequestError::TooLarge(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| RequestError::NotText)?;
        let (first, mut rest) = text.split_once('\n').ok_or(RequestError::OldSizeLine)?;
        let old_size = first
            .strip_prefix("old ")
            .and_then(parse_decimal)
            .ok_or(RequestError::OldSizeLine)?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest.split_once('\n').ok_or(RequestError::NoCheckpoint)?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(RequestError::TooManyProofLines);
            }
            let line_number = proof.len() + 1;
            let hash: Hash = BASE64
                .decode(line)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(RequestError::ProofLine { line: line_number })?;
            proof.push(hash);
        }
        if rest.is_empty() {
            return Err(RequestError::NoCheckpoint);
        }
        if old_size == 0 && !proof.is_empty() {
            return Err(RequestError::ProofWithOldSizeZero);
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            checkpoint: rest.as_bytes().to_vec(),
        })
    }

    /// The request body (the inverse of [`AddCheckpoint::parse`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            out.push_str(&BASE64.encode(hash));
            out.push('\n');
        }
        out.push('\n');
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.checkpoint);
        bytes
    }
}

/// An ASCII decimal with no leading zeroes (unless it is `0`).
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The latest checkpoint a witness cosigned for one log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// Its size.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// The signed note as the witness verified it (kept so that a conflicting checkpoint
    /// can later be shown beside it).
    pub note: Vec<u8>,
}

/// Why a checkpoint is not cosigned; [`Refusal::status`] is the HTTP status the spec
/// requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The body is malformed.
    #[error("malformed request: {0}")]
    Malformed(#[from] RequestError),
    /// The checkpoint's origin is not a log this witness witnesses.
    #[error("unknown log origin {origin:?}")]
    UnknownOrigin {
        /// The origin line (at most 256 bytes of it).
        origin: String,
    },
    /// No signature of a trusted key of the log verifies (or one of them is invalid).
    #[error("the checkpoint is not signed by a trusted key of {origin}: {reason}")]
    BadSignature {
        /// The log.
        origin: String,
        /// Why.
        reason: String,
    },
    /// The signed note's text is not a checkpoint.
    #[error("the signed note of {origin} is not a checkpoint: {reason}")]
    NotACheckpoint {
        /// The log.
        origin: String,
        /// Why.
        reason: String,
    },
    /// The old size is larger than the checkpoint's size.
    #[error("the old size {old_size} is larger than the checkpoint size {size}")]
    OldSizeLarger {
        /// The request's old size.
        old_size: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// The old size is not the size this witness cosigned last.
    #[error("the old size {old_size} is not the witness's size {witness_size}")]
    OldSizeMismatch {
        /// The request's old size.
        old_size: u64,
        /// The size of the latest checkpoint cosigned (0 if none).
        witness_size: u64,
    },
    /// The consistency proof does not verify.
    #[error("the consistency proof from {old_size} to {size} does not verify: {reason}")]
    BadProof {
        /// The old size.
        old_size: u64,
        /// The checkpoint's size.
        size: u64,
        /// Why.
        reason: String,
    },
    /// A checkpoint of the size this witness cosigned, with another root: the log
    /// signed two different trees of one size.
    #[error("a checkpoint of {origin} of size {size} with another root than the one cosigned")]
    RootMismatch {
        /// The log.
        origin: String,
        /// The size.
        size: u64,
        /// What this witness cosigned at that size.
        cosigned: Box<Cosigned>,
        /// The conflicting checkpoint's note.
        conflicting: Vec<u8>,
    },
}

impl Refusal {
    /// The HTTP status code the spec requires.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::NotACheckpoint { .. } => 400,
            Refusal::OldSizeLarger { .. } => 400,
            Refusal::UnknownOrigin { .. } => 404,
            Refusal::BadSignature { .. } => 403,
            Refusal::OldSizeMismatch { .. } | Refusal::RootMismatch { .. } => 409,
            Refusal::BadProof { .. } => 422,
        }
    }

    /// The body of a 409 answer for an old size that does not match: the witness's size
    /// and a newline, with content type [`SIZE_CONTENT_TYPE`].
    pub fn size_body(&self) -> Option<String> {
        match self {
            Refusal::OldSizeMismatch { witness_size, .. } => Some(format!("{witness_size}\n")),
            _ => None,
        }
    }
}

/// A checkpoint that passed every check. The witness state already moved to it; the
/// driver persists [`Update::origin`] → [`Update::cosigned`] and only then calls
/// [`Update::cosign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The log.
    pub origin: String,
    /// The new state to persist.
    pub cosigned: Cosigned,
    /// The checkpoint body to cosign.
    checkpoint: Checkpoint,
}

impl Update {
    /// The answer body: one tlog-cosignature/v1 line by `signer` at `timestamp` (seconds
    /// since the Unix epoch). Call it only once the update is durable.
    pub fn cosign(
        &self,
        signer: &CosignatureSigner,
        timestamp: u64,
    ) -> Result<String, NoteSignError> {
        Ok(signer.cosign(&self.checkpoint, timestamp)?.to_line())
    }
}

/// Why a log cannot be witnessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetLogError {
    /// A log needs at least one trusted key.
    #[error("log {0} has no trusted key")]
    NoKeys(String),
    /// The witness already tracks [`MAX_LOGS`] logs.
    #[error("the witness tracks {MAX_LOGS} logs already")]
    TooManyLogs,
}

#[derive(Debug, Clone)]
struct WitnessedLog {
    keys: Vec<Verifier>,
    latest: Option<Cosigned>,
}

/// The witness state: the logs witnessed, their trusted keys and what was cosigned last.
#[derive(Debug, Clone, Default)]
pub struct Witness {
    logs: BTreeMap<String, WitnessedLog>,
}

impl Witness {
    /// A witness of no log.
    pub fn new() -> Witness {
        Witness::default()
    }

    /// Witnesses `origin` with these trusted keys, or replaces its keys; what was
    /// cosigned is kept. A key's name is usually the origin, but need not be (the Go
    /// checksum database signs "go.sum database tree" as `sum.golang.org`).
    pub fn set_log(&mut self, origin: &str, keys: Vec<Verifier>) -> Result<(), SetLogError> {
        if keys.is_empty() {
            return Err(SetLogError::NoKeys(origin.to_owned()));
        }
        if let Some(log) = self.logs.get_mut(origin) {
            log.keys = keys;
            return Ok(());
        }
        if self.logs.len() >= MAX_LOGS {
            return Err(SetLogError::TooManyLogs);
        }
        self.logs
            .insert(origin.to_owned(), WitnessedLog { keys, latest: None });
        Ok(())
    }

    /// Stops witnessing `origin`; what was cosigned is forgotten here (the store keeps it).
    pub fn remove_log(&mut self, origin: &str) -> bool {
        self.logs.remove(origin).is_some()
    }

    /// Restores what was cosigned for `origin`, read back from the store at start. Call
    /// it after [`Witness::set_log`]; an unknown origin is ignored (its state stays in the
    /// store until the log is witnessed again).
    pub fn restore(&mut self, origin: &str, cosigned: Cosigned) -> bool {
        match self.logs.get_mut(origin) {
            Some(log) => {
                log.latest = Some(cosigned);
                true
            }
            None => false,
        }
    }

    /// Puts `origin`'s state back to `cosigned` (what the store holds, `None` for
    /// nothing): the driver calls it when storing an update failed, so that the witness
    /// neither reports nor builds on a state it never cosigned.
    pub fn reset(&mut self, origin: &str, cosigned: Option<Cosigned>) {
        if let Some(log) = self.logs.get_mut(origin) {
            log.latest = cosigned;
        }
    }

    /// What was cosigned last for `origin`.
    pub fn latest(&self, origin: &str) -> Option<&Cosigned> {
        self.logs.get(origin)?.latest.as_ref()
    }

    /// The origins witnessed.
    pub fn origins(&self) -> impl Iterator<Item = &str> + '_ {
        self.logs.keys().map(String::as_str)
    }

    /// Checks `request` in the spec's order and, when every check passes, moves the
    /// state of its log to the checkpoint (see the module header for what the driver
    /// must do with the [`Update`]).
    pub fn add_checkpoint(&mut self, request: &AddCheckpoint) -> Result<Update, Refusal> {
        // The origin is the first line of the note's text; it selects the trusted keys,
        // and the text is used only once one of them verified.
        let note = Note::parse(&request.checkpoint).map_err(|e| Refusal::NotACheckpoint {
            origin: String::new(),
            reason: e.to_string(),
        })?;
        let origin = note.text().split('\n').next().unwrap_or_default();
        let Some(log) = self.logs.get_mut(origin) else {
            return Err(Refusal::UnknownOrigin {
                origin: origin.chars().take(256).collect(),
            });
        };
        let origin = origin.to_owned();
        let mut verified = false;
        for key in &log.keys {
            match note.verify_with(key) {
                Ok(_) => verified = true,
                Err(e) => {
                    if !matches!(e, crate::note::NoteVerifyError::NoKnownSignature) {
                        // A line of a trusted key that does not verify refuses the note.
                        return Err(Refusal::BadSignature {
                            origin,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        if !verified {
            return Err(Refusal::BadSignature {
                origin,
                reason: "no signature from a trusted key".to_owned(),
            });
        }
        let checkpoint = Checkpoint::from_note(&note).map_err(|e| Refusal::NotACheckpoint {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        let size = checkpoint.size();
        let root = *checkpoint.root_hash();
        if request.old_size > size {
            return Err(Refusal::OldSizeLarger {
                old_size: request.old_size,
                size,
            });
        }
        let witness_size = log.latest.as_ref().map_or(0, |l| l.size);
        if request.old_size != witness_size {
            return Err(Refusal::OldSizeMismatch {
                old_size: request.old_size,
                witness_size,
            });
        }
        if let Some(latest) = &log.latest
            && latest.size > 0
            && latest.size < size
        {
            verify_consistency(latest.size, size, &request.proof, &latest.root, &root).map_err(
                |e: ConsistencyError| Refusal::BadProof {
                    old_size: latest.size,
                    size,
                    reason: e.to_string(),
                },
            )?;
        } else if !request.proof.is_empty() {
            // From the empty tree, or between equal sizes, the proof is empty.
            return Err(Refusal::BadProof {
                old_size: request.old_size,
                size,
                reason: "a proof between these sizes is empty".to_owned(),
            });
        }
        if let Some(latest) = &log.latest
            && latest.size == size
            && latest.root != root
        {
            return Err(Refusal::RootMismatch {
                origin,
                size,
                cosigned: Box::new(latest.clone()),
                conflicting: request.checkpoint.clone(),
            });
        }
        let cosigned = Cosigned {
            size,
            root,
            note: request.checkpoint.clone(),
        };
        log.latest = Some(cosigned.clone());
        Ok(Update {
            origin,
            cosigned,
            checkpoint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::KeyName;
    use crate::testing::TestLog;
    use proptest::prelude::*;

    const ORIGIN: &str = "log.org-a.example";

    /// The request that brings a witness from `old` to `new` honestly for `log`.
    fn extend(log: &mut TestLog, old: u64, new: u64) -> AddCheckpoint {
        AddCheckpoint {
            old_size: old,
            proof: log.proof(old, new),
            checkpoint: log.note(new),
        }
    }

    fn witness_of(log: &TestLog) -> Witness {
        let mut witness = Witness::new();
        witness.set_log(ORIGIN, vec![log.verifier()]).unwrap();
        witness
    }

    fn cosigner() -> CosignatureSigner {
        CosignatureSigner::from_seed(KeyName::new("witness.org-b.example").unwrap(), &[9; 32])
    }

    #[test]
    fn cosigns_a_growing_log_and_answers_verifiable_lines() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut witness = witness_of(&log);
        let mut old = 0;
        for size in [1, 2, 5, 8, 8, 13, 100] {
            let update = witness
                .add_checkpoint(&extend(&mut log, old, size))
                .unwrap();
            assert_eq!(update.cosigned.size, size);
            let line = update.cosign(&cosigner(), 1_800_000_000).unwrap();
            // The answer appended to the checkpoint makes a note the witness key verifies.
            let mut note = log.note(size);
            note.extend_from_slice(line.as_bytes());
            let note = Note::parse(&note).unwrap();
            let witness_key: Verifier = cosigner().verifier().into();
            let verified = note.verify_with(&witness_key).unwrap();
            assert_eq!(verified.timestamp, Some(1_800_000_000));
            assert_eq!(witness.latest(ORIGIN).unwrap().size, size);
            old = size;
        }
    }

    #[test]
    fn every_refusal_has_the_spec_status() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut witness = witness_of(&log);
        witness.add_checkpoint(&extend(&mut log, 0, 4)).unwrap();

        // 404: unknown origin.
        let mut elsewhere = TestLog::new("log.elsewhere", 3);
        let refusal = witness.add_checkpoint(&extend(&mut elsewhere, 0, 1));
        assert_eq!(refusal.unwrap_err().status(), 404);

        // 403: signed by another key of the same name.
        let mut impostor = TestLog::new(ORIGIN, 2);
        assert_eq!(
            witness
                .add_checkpoint(&extend(&mut impostor, 4, 6))
                .unwrap_err()
                .status(),
            403
        );

        // 400: old size larger than the checkpoint's.
        let mut request = extend(&mut log, 4, 6);
        request.old_size = 7;
        request.proof.clear();
        assert_eq!(witness.add_checkpoint(&request).unwrap_err().status(), 400);

        // 409 with the witness's size: old size not the one cosigned.
        let refusal = witness.add_checkpoint(&extend(&mut log, 3, 6)).unwrap_err();
        assert_eq!(refusal.status(), 409);
        assert_eq!(refusal.size_body().as_deref(), Some("4\n"));
        let refusal = witness.add_checkpoint(&extend(&mut log, 0, 6)).unwrap_err();
        assert_eq!(refusal.size_body().as_deref(), Some("4\n"));

        // 422: a proof that does not verify.
        let mut request = extend(&mut log, 4, 6);
        request.proof[0][0] ^= 1;
        assert_eq!(witness.add_checkpoint(&request).unwrap_err().status(), 422);
        // 422: a proof between equal sizes.
        let mut request = extend(&mut log, 4, 4);
        request.proof.push([0; 32]);
        assert_eq!(witness.add_checkpoint(&request).unwrap_err().status(), 422);

        // 409: the same size with another root (a forked log signed both).
        let mut fork = TestLog::forked(ORIGIN, 1, 2);
        let refusal = witness
            .add_checkpoint(&extend(&mut fork, 4, 4))
            .unwrap_err();
        assert_eq!(refusal.status(), 409);
        assert!(refusal.size_body().is_none());
        assert!(matches!(refusal, Refusal::RootMismatch { size: 4, .. }));

        // Nothing refused moved the state; the honest log still goes on.
        assert_eq!(witness.latest(ORIGIN).unwrap().size, 4);
        witness.add_checkpoint(&extend(&mut log, 4, 6)).unwrap();
    }

    #[test]
    fn a_forked_history_is_not_cosigned() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 3);
        let mut witness = witness_of(&log);
        witness.add_checkpoint(&extend(&mut log, 0, 5)).unwrap();
        // The fork's proof from 5 to 9 is of its own tree: it does not reach the cosigned
        // root, whichever way it is presented.
        let refusal = witness
            .add_checkpoint(&extend(&mut fork, 5, 9))
            .unwrap_err();
        assert_eq!(refusal.status(), 422);
    }

    #[test]
    fn request_format() {
        let mut log = TestLog::new(ORIGIN, 1);
        let request = extend(&mut log, 3, 7);
        assert_eq!(AddCheckpoint::parse(&request.to_bytes()).unwrap(), request);
        let note = String::from_utf8(log.note(7)).unwrap();
        let parse = |body: String| AddCheckpoint::parse(body.as_bytes());
        assert_eq!(parse(format!("old 0\n\n{note}")).unwrap().old_size, 0);
        for bad in [
            "old 01\n\n",
            "old -1\n\n",
            "old 1 \n\n",
            "Old 1\n\n",
            "old\n\n",
            "",
        ] {
            assert_eq!(
                parse(format!("{bad}{note}")),
                Err(RequestError::OldSizeLine),
                "{bad:?}"
            );
        }
        let hash = BASE64.encode([7u8; 32]);
        assert_eq!(
            parse(format!("old 0\n{hash}\n\n{note}")),
            Err(RequestError::ProofWithOldSizeZero)
        );
        assert_eq!(
            parse(format!("old 3\nAAAA\n\n{note}")),
            Err(RequestError::ProofLine { line: 1 })
        );
        let lines63 = format!("{hash}\n").repeat(63);
        assert!(parse(format!("old 3\n{lines63}\n{note}")).is_ok());
        assert_eq!(
            parse(format!("old 3\n{lines63}{hash}\n\n{note}")),
            Err(RequestError::TooManyProofLines)
        );
        assert_eq!(parse("old 3\n".to_owned()), Err(RequestError::NoCheckpoint));
        assert_eq!(
            parse("old 3\n\n".to_owned()),
            Err(RequestError::NoCheckpoint)
        );
        assert_eq!(
            AddCheckpoint::parse(&vec![b'a'; MAX_REQUEST_BYTES + 1]),
            Err(RequestError::TooLarge(MAX_REQUEST_BYTES + 1))
        );
    }

    #[test]
    fn logs_need_a_key_and_keep_their_state() {
        let log = TestLog::new(ORIGIN, 1);
        let mut witness = Witness::new();
        assert!(matches!(
            witness.set_log(ORIGIN, Vec::new()),
            Err(SetLogError::NoKeys(_))
        ));
        assert!(!witness.restore(
            ORIGIN,
            Cosigned {
                size: 1,
                root: [0; 32],
                note: Vec::new()
            }
        ));
        witness.set_log(ORIGIN, vec![log.verifier()]).unwrap();
        assert!(witness.restore(
            ORIGIN,
            Cosigned {
                size: 1,
                root: [0; 32],
                note: Vec::new()
            }
        ));
        assert_eq!(witness.latest(ORIGIN).unwrap().size, 1);
        assert_eq!(witness.origins().collect::<Vec<_>>(), vec![ORIGIN]);
    }

    proptest! {
        // Each case builds and signs trees: a few dozen cases keep the test run short.
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the body, parsing never panics, and what parses prints back the same.
        #[test]
        fn arbitrary_bodies_parse_or_are_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(request) = AddCheckpoint::parse(&body) {
                prop_assert_eq!(request.to_bytes(), body);
            }
        }

        /// A witness driven by any sequence of honest and forked requests never cosigns
        /// two roots for one size, and its size never goes back.
        #[test]
        fn never_cosigns_a_rollback_or_two_roots_of_one_size(
            steps in proptest::collection::vec((0u64..24, 0u64..24, any::<bool>(), 0u64..6), 1..24)
        ) {
            let mut honest = TestLog::new(ORIGIN, 1);
            let mut witness = witness_of(&honest);
            let mut cosigned: BTreeMap<u64, Hash> = BTreeMap::new();
            let mut last = 0;
            for (old, new, forked, fork_at) in steps {
                let (old, new) = (old.min(new), old.max(new));
                let mut fork = TestLog::forked(ORIGIN, 1, fork_at);
                let log = if forked { &mut fork } else { &mut honest };
                if let Ok(update) = witness.add_checkpoint(&extend(log, old, new)) {
                    let size = update.cosigned.size;
                    prop_assert!(size >= last);
                    last = size;
                    let root = update.cosigned.root;
                    prop_assert_eq!(*cosigned.entry(size).or_insert(root), root);
                }
            }
        }
    }
}
