//! The C2SP tlog-checkpoint body rules, one test per rule of the spec, and the
//! sign/open helpers (the real-world checkpoints are in `note_vectors.rs`).

// Test helpers outside `#[test]` functions unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

use provmesh_protocol::checkpoint::{
    self, Checkpoint, CheckpointBuildError, CheckpointOpenError, CheckpointParseError,
};
use provmesh_protocol::merkle::EMPTY_ROOT;
use provmesh_protocol::note::{
    Ed25519Signer, KeyName, Note, NoteSignError, NoteVerifyError, Verifier,
};

const HASH_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

fn parse(s: &str) -> Result<Checkpoint, CheckpointParseError> {
    Checkpoint::parse(s)
}

#[test]
fn spec_example_round_trips() {
    let text = format!("example.com/behind-the-sofa\n20852163\n{HASH_B64}\n");
    let cp = parse(&text).unwrap();
    assert_eq!(cp.to_text(), text);
    assert_eq!(
        cp,
        Checkpoint::new("example.com/behind-the-sofa", 20852163, *cp.root_hash()).unwrap()
    );
}

#[test]
fn at_least_three_non_empty_lines() {
    assert_eq!(
        parse("origin\n1\n"),
        Err(CheckpointParseError::TooFewLines { found: 2 })
    );
    assert_eq!(
        parse("origin\n"),
        Err(CheckpointParseError::TooFewLines { found: 1 })
    );
    assert_eq!(
        parse(&format!("origin\n1\n{HASH_B64}")),
        Err(CheckpointParseError::NotNewlineTerminated)
    );
    assert_eq!(parse(""), Err(CheckpointParseError::NotNewlineTerminated));
}

#[test]
fn origin_must_be_non_empty_but_any_format() {
    assert_eq!(
        parse(&format!("\n1\n{HASH_B64}\n")),
        Err(CheckpointParseError::EmptyOrigin)
    );
    // "clients MUST NOT assume that the origin is following this format": spaces and plus
    // signs are accepted (Rekor v1 origins contain spaces).
    let cp = parse(&format!("rekor.sigstore.dev - 1+2\n1\n{HASH_B64}\n")).unwrap();
    assert_eq!(cp.origin(), "rekor.sigstore.dev - 1+2");
    assert_eq!(
        Checkpoint::new("", 0, EMPTY_ROOT),
        Err(CheckpointBuildError::EmptyOrigin)
    );
    assert_eq!(
        Checkpoint::new("a\nb", 0, EMPTY_ROOT),
        Err(CheckpointBuildError::InvalidOrigin)
    );
    assert_eq!(
        Checkpoint::new("a\tb", 0, EMPTY_ROOT),
        Err(CheckpointBuildError::InvalidOrigin)
    );
}

#[test]
fn tree_size_is_decimal_without_leading_zeroes() {
    let ok = |s: &str| parse(&format!("o\n{s}\n{HASH_B64}\n")).map(|c| c.size());
    assert_eq!(ok("0"), Ok(0));
    assert_eq!(ok("1"), Ok(1));
    assert_eq!(ok("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(
        ok("18446744073709551616"),
        Err(CheckpointParseError::TreeSizeOverflow)
    );
    for bad in ["", "00", "007", "+7", "-7", "7 ", "0x7", "7.0", "\u{0667}"] {
        assert_eq!(
            ok(bad),
            Err(CheckpointParseError::InvalidTreeSize),
            "{bad:?}"
        );
    }
}

#[test]
fn root_hash_is_canonical_base64_of_32_bytes() {
    let ok = |s: &str| parse(&format!("o\n1\n{s}\n")).map(|c| *c.root_hash());
    assert_eq!(
        ok("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        Ok(EMPTY_ROOT)
    );
    // An empty line, 31 and 33 bytes.
    assert_eq!(
        ok(""),
        Err(CheckpointParseError::InvalidRootHashLength { found: 0 })
    );
    assert_eq!(
        ok("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="),
        Err(CheckpointParseError::InvalidRootHashLength { found: 31 })
    );
    assert_eq!(
        ok("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        Err(CheckpointParseError::InvalidRootHashLength { found: 33 })
    );
    for bad in [
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", // no padding
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=", // non-zero trailing bits
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=", // URL alphabet
        " 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ] {
        assert_eq!(
            ok(bad),
            Err(CheckpointParseError::InvalidRootHashBase64),
            "{bad:?}"
        );
    }
}

#[test]
fn extension_lines_are_opaque_and_non_empty() {
    let text = format!("o\n1\n{HASH_B64}\nTimestamp: 1689177396617352539\n\u{e8} + x\n");
    let cp = parse(&text).unwrap();
    assert_eq!(
        cp.extension_lines(),
        ["Timestamp: 1689177396617352539", "\u{e8} + x"]
    );
    assert_eq!(cp.to_text(), text);
    assert_eq!(
        parse(&format!("o\n1\n{HASH_B64}\n\n")),
        Err(CheckpointParseError::EmptyExtensionLine { line: 4 })
    );
    assert_eq!(
        parse(&format!("o\n1\n{HASH_B64}\na\n\nb\n")),
        Err(CheckpointParseError::EmptyExtensionLine { line: 5 })
    );
    assert_eq!(
        Checkpoint::with_extension_lines("o", 1, EMPTY_ROOT, vec![String::new()]),
        Err(CheckpointBuildError::EmptyExtensionLine)
    );
    assert_eq!(
        Checkpoint::with_extension_lines("o", 1, EMPTY_ROOT, vec!["a\nb".into()]),
        Err(CheckpointBuildError::InvalidExtensionLine)
    );
}

#[test]
fn control_characters_are_refused() {
    assert_eq!(
        parse(&format!("o\r\n1\n{HASH_B64}\n")),
        Err(CheckpointParseError::ControlCharacter {
            offset: 1,
            byte: b'\r'
        })
    );
}

fn log() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new("log.example/a").unwrap(), &[42; 32])
}

#[test]
fn sign_and_open() {
    let cp = Checkpoint::new("log.example/a", 7, [9; 32]).unwrap();
    let signer = log();
    let key = Verifier::from(signer.verifier());
    let note = cp.sign(&[&signer]).unwrap();
    let bytes = note.to_bytes();
    let signed = checkpoint::open(&bytes, "log.example/a", &key).unwrap();
    assert_eq!(signed.checkpoint, cp);
    assert_eq!(signed.note, note);

    // Another origin.
    assert_eq!(
        checkpoint::open(&bytes, "log.example/b", &key),
        Err(CheckpointOpenError::OriginMismatch {
            expected: "log.example/b".into(),
            found: "log.example/a".into()
        })
    );
    // Another key.
    let other = Verifier::from(
        Ed25519Signer::from_seed(KeyName::new("log.example/a").unwrap(), &[43; 32]).verifier(),
    );
    assert_eq!(
        checkpoint::open(&bytes, "log.example/a", &other),
        Err(CheckpointOpenError::Verify(
            NoteVerifyError::NoKnownSignature
        ))
    );
    // Garbage.
    assert!(matches!(
        checkpoint::open(b"garbage", "log.example/a", &key),
        Err(CheckpointOpenError::Note(_))
    ));
}

#[test]
fn a_signed_note_that_is_not_a_checkpoint_is_refused_after_verification() {
    let signer = log();
    let key = Verifier::from(signer.verifier());
    let note = Note::sign("log.example/a\n7\n", &[&signer]).unwrap();
    assert_eq!(
        checkpoint::open(&note.to_bytes(), "log.example/a", &key),
        Err(CheckpointOpenError::Body(
            CheckpointParseError::TooFewLines { found: 2 }
        ))
    );
}

#[test]
fn checkpoint_sign_needs_a_signer() {
    let cp = Checkpoint::new("o", 0, EMPTY_ROOT).unwrap();
    assert_eq!(cp.sign(&[]), Err(NoteSignError::NoSignatures));
}
