//! Property tests for signed notes, checkpoints and cosignatures:
//!
//! - hostile input never panics (random bytes, and random text built from the pieces a
//!   note is made of, so that deep parser paths are reached);
//! - whatever parses re-serializes to exactly the same bytes;
//! - sign → serialize → parse → verify round-trips for Ed25519, ECDSA P-256 and
//!   cosignature/v1 keys, and checkpoint bodies round-trip;
//! - any single-byte change to a signed note fails parsing or verification.

// Test helpers outside `#[test]` functions unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;
use common::note_like;
use proptest::prelude::*;
use provmesh_protocol::checkpoint::{self, Checkpoint};
use provmesh_protocol::cosignature::{self, CosignatureSigner};
use provmesh_protocol::note::{
    EcdsaP256Signer, EcdsaP256Verifier, Ed25519Signer, KeyName, Note, NoteSignError, NoteSignature,
    NoteSigner, Verifier, VerifierSet,
};

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";

/// Valid key names.
fn key_name() -> impl Strategy<Value = KeyName> {
    "[a-zA-Z0-9./_:-]{1,24}|[a-z]{1,8}\u{e9}[a-z]{0,8}".prop_map(|s| KeyName::new(s).unwrap())
}

/// Valid note texts: lines without control characters (possibly empty), each ending in
/// newline.
fn note_text() -> impl Strategy<Value = String> {
    prop::collection::vec("[^\u{0}-\u{1f}]{0,40}", 1..6).prop_map(|lines| {
        let mut s = String::new();
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
        s
    })
}

/// Valid checkpoints.
fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        "[^\u{0}-\u{1f}]{1,40}",
        any::<u64>(),
        any::<[u8; 32]>(),
        prop::collection::vec("[^\u{0}-\u{1f}]{1,20}", 0..3),
    )
        .prop_map(|(origin, size, hash, ext)| {
            Checkpoint::with_extension_lines(origin, size, hash, ext).unwrap()
        })
}

fn peter_set() -> VerifierSet {
    VerifierSet::from_verifiers([Verifier::from_vkey(PETER_VKEY).unwrap()]).unwrap()
}

/// Whatever parses must re-serialize byte-exactly; nothing may panic.
fn check_hostile(bytes: &[u8]) {
    if let Ok(note) = Note::parse(bytes) {
        assert_eq!(note.to_bytes(), bytes);
        let _ = note.verify(&peter_set());
        let _ = Checkpoint::from_note(&note);
        for sig in note.signatures() {
            assert_eq!(
                NoteSignature::parse_line(sig.to_line().trim_end_matches('\n')).as_ref(),
                Ok(sig)
            );
        }
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        if let Ok(cp) = Checkpoint::parse(s) {
            assert_eq!(cp.to_text(), s);
        }
        let _ = NoteSignature::parse_line(s);
        if let Ok(v) = Verifier::from_vkey(s) {
            assert_eq!(v.to_vkey(), s);
        }
        let _ = Ed25519Signer::from_skey(s);
        let _ = CosignatureSigner::from_skey(s);
        let _ = EcdsaP256Verifier::from_pem(KeyName::new("k").unwrap(), s);
    }
    let _ = EcdsaP256Verifier::from_spki_der(KeyName::new("k").unwrap(), bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        check_hostile(&bytes);
    }

    #[test]
    fn note_like_text_never_panics(bytes in note_like()) {
        check_hostile(&bytes);
    }

    #[test]
    fn checkpoint_like_text_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just(String::new()),
                "[0-9]{0,22}",
                "[A-Za-z0-9+/=]{0,46}",
                "[^\u{0}-\u{1f}]{0,10}",
            ],
            0..6,
        ),
        newline in any::<bool>(),
    ) {
        let mut s = lines.join("\n");
        if newline {
            s.push('\n');
        }
        if let Ok(cp) = Checkpoint::parse(&s) {
            prop_assert_eq!(cp.to_text(), s);
        }
    }

    #[test]
    fn checkpoint_text_round_trips(cp in checkpoint()) {
        let text = cp.to_text();
        prop_assert_eq!(Checkpoint::parse(&text), Ok(cp.clone()));
        prop_assert_eq!(cp.to_string(), text);
    }
}

proptest! {
    // Crypto is slow in unoptimized test builds.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ed25519_sign_parse_verify(
        seed in any::<[u8; 32]>(),
        name in key_name(),
        text in note_text(),
    ) {
        let signer = Ed25519Signer::from_seed(name, &seed);
        let verifier = Verifier::from(signer.verifier());
        prop_assert_eq!(Verifier::from_vkey(&verifier.to_vkey()), Ok(verifier.clone()));
        let note = Note::sign(text.clone(), &[&signer]).unwrap();
        let bytes = note.to_bytes();
        let parsed = Note::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &note);
        prop_assert_eq!(parsed.text(), text.as_str());
        let set = VerifierSet::from_verifiers([verifier.clone()]).unwrap();
        let verified = parsed.verify(&set).unwrap();
        prop_assert_eq!(verified.len(), 1);
        prop_assert_eq!(verified[0].verifier, &verifier);
        parsed.verify_with(&verifier).unwrap();
    }

    #[test]
    fn ecdsa_sign_parse_verify(
        scalar in any::<[u8; 32]>(),
        name in key_name(),
        text in note_text(),
    ) {
        // Scalars of zero or above the group order are refused, not a panic.
        let Ok(signer) = EcdsaP256Signer::from_secret_scalar(name, &scalar) else {
            return Ok(());
        };
        let verifier = Verifier::from(signer.verifier());
        prop_assert_eq!(Verifier::from_vkey(&verifier.to_vkey()), Ok(verifier.clone()));
        let note = Note::sign(text, &[&signer]).unwrap();
        let parsed = Note::parse(&note.to_bytes()).unwrap();
        prop_assert_eq!(&parsed, &note);
        let set = VerifierSet::from_verifiers([verifier]).unwrap();
        parsed.verify(&set).unwrap();
    }

    #[test]
    fn cosigned_checkpoint_round_trip(
        log_seed in any::<[u8; 32]>(),
        witness_seeds in prop::collection::vec(any::<[u8; 32]>(), 1..4),
        cp in checkpoint(),
        timestamp in 0..=cosignature::MAX_TIMESTAMP,
    ) {
        let log = Ed25519Signer::from_seed(KeyName::new("log.example").unwrap(), &log_seed);
        let mut note = cp.sign(&[&log]).unwrap();
        let witnesses: Vec<CosignatureSigner> = witness_seeds
            .iter()
            .enumerate()
            .map(|(i, seed)| {
                CosignatureSigner::from_seed(KeyName::new(format!("w{i}.example")).unwrap(), seed)
            })
            .collect();
        for (i, w) in witnesses.iter().enumerate() {
            let ts = timestamp.saturating_sub(i as u64);
            let line = w.cosign(&cp, ts).unwrap();
            prop_assert_eq!(cosignature::unverified_timestamp(&line), Some(ts));
            note.add_signature(line).unwrap();
        }
        let bytes = note.to_bytes();
        let log_key = Verifier::from(log.verifier());
        let signed = checkpoint::open(&bytes, cp.origin(), &log_key).unwrap();
        prop_assert_eq!(&signed.checkpoint, &cp);
        let set = VerifierSet::from_verifiers(
            witnesses.iter().map(|w| Verifier::from(w.verifier())),
        )
        .unwrap();
        let cosigned = signed.verify_cosignatures(&set).unwrap();
        prop_assert_eq!(cosigned.len(), witnesses.len());
        for (i, c) in cosigned.iter().enumerate() {
            prop_assert_eq!(c.timestamp, Some(timestamp.saturating_sub(i as u64)));
            prop_assert_eq!(c.index, i + 1);
        }
        // Re-cosigning replaces the earlier line from the same key (as Go's note.Sign).
        note.add_signatures_from(&[&witnesses[0].at(timestamp)]).unwrap();
        prop_assert_eq!(note.signatures().len(), 1 + witnesses.len());
    }

    #[test]
    fn single_byte_change_fails(
        seed in any::<[u8; 32]>(),
        witness_seed in any::<[u8; 32]>(),
        cp in checkpoint(),
        timestamp in 0..=cosignature::MAX_TIMESTAMP,
        position in any::<prop::sample::Index>(),
        xor in 1..=255u8,
    ) {
        let log = Ed25519Signer::from_seed(KeyName::new("log.example").unwrap(), &seed);
        let witness = CosignatureSigner::from_seed(KeyName::new("w.example").unwrap(), &witness_seed);
        let note = cp.sign(&[&log, &witness.at(timestamp)]).unwrap();
        let set = VerifierSet::from_verifiers([
            Verifier::from(log.verifier()),
            Verifier::from(witness.verifier()),
        ])
        .unwrap();
        let mut bytes = note.to_bytes();
        prop_assert_eq!(note.verify(&set).unwrap().len(), 2);
        let i = position.index(bytes.len());
        bytes[i] ^= xor;
        if let Ok(mutated) = Note::parse(&bytes) {
            // A line may drop out (its name or key ID changed into an unknown key), but
            // the note can never verify under both keys again.
            if let Ok(verified) = mutated.verify(&set) {
                prop_assert!(verified.len() < 2, "byte {} ^ {:#x} verified", i, xor);
            }
        }
    }

    #[test]
    fn cosignature_timestamp_bound(seed in any::<[u8; 32]>(), cp in checkpoint(), over in 1..=u64::MAX - cosignature::MAX_TIMESTAMP) {
        let w = CosignatureSigner::from_seed(KeyName::new("w.example").unwrap(), &seed);
        let ts = cosignature::MAX_TIMESTAMP + over;
        prop_assert_eq!(w.cosign(&cp, ts), Err(NoteSignError::TimestampOutOfRange(ts)));
        prop_assert_eq!(w.at(ts).sign_text(&cp.to_text()), Err(NoteSignError::TimestampOutOfRange(ts)));
    }
}

#[test]
fn cosigning_a_non_checkpoint_is_refused() {
    let w = CosignatureSigner::from_seed(KeyName::new("w.example").unwrap(), &[7; 32]);
    assert!(matches!(
        w.sign("hello\n", 1),
        Err(NoteSignError::NotACheckpoint(_))
    ));
    assert!(matches!(
        Note::sign("hello\n", &[&w.at(1)]),
        Err(NoteSignError::NotACheckpoint(_))
    ));
}

#[test]
fn building_invalid_notes_is_refused() {
    let s = Ed25519Signer::from_seed(KeyName::new("k").unwrap(), &[1; 32]);
    assert_eq!(
        Note::sign("no newline", &[&s]),
        Err(NoteSignError::TextNotNewlineTerminated)
    );
    assert_eq!(
        Note::sign("", &[&s]),
        Err(NoteSignError::TextNotNewlineTerminated)
    );
    assert_eq!(
        Note::sign("tab\there\n", &[&s]),
        Err(NoteSignError::TextControlCharacter { offset: 3, byte: 9 })
    );
    assert_eq!(Note::sign("x\n", &[]), Err(NoteSignError::NoSignatures));
    let mut note = Note::sign("x\n", &[&s]).unwrap();
    assert_eq!(
        note.retain_signatures(|_| false),
        Err(NoteSignError::NoSignatures)
    );
    // 100 distinct signers are fine, the 101st is refused and leaves the note unchanged.
    let signers: Vec<Ed25519Signer> = (0..101u8)
        .map(|i| Ed25519Signer::from_seed(KeyName::new(format!("k{i}")).unwrap(), &[i; 32]))
        .collect();
    for s in &signers[1..100] {
        note.add_signature(s.sign_text(note.text()).unwrap())
            .unwrap();
    }
    assert_eq!(note.signatures().len(), 100);
    let before = note.clone();
    assert_eq!(
        note.add_signature(signers[100].sign_text(note.text()).unwrap()),
        Err(NoteSignError::TooManySignatures { max: 100 })
    );
    assert_eq!(note, before);
    assert_eq!(Note::parse(&note.to_bytes()), Ok(note));
}
