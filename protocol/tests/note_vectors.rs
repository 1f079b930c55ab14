//! Signed notes, checkpoints and cosignatures against outside vectors
//! (`tests/vectors/notes/`, sources and commits in its SOURCES.md):
//!
//! - the C2SP signed-note, tlog-checkpoint and tlog-cosignature spec examples;
//! - Go's `golang.org/x/mod/sumdb/note` test vectors (PeterNeumann / EnochRoot keys, the
//!   malformed messages of `TestOpen`, the vkey and skey manglings of `TestNewVerifier`
//!   and `TestNewSigner`);
//! - real checkpoints: Rekor v1 (ECDSA P-256, key from the Sigstore trusted root), Rekor v2
//!   log2025-1 and staging logs (Ed25519), sigstore-conformance checkpoint variants, a
//!   staging Rekor v2 checkpoint cosigned by three real witnesses, Sunlight test-data
//!   cosignatures, a Sigsum checkpoint and a Tessera test log checkpoint.
//!
//! Every valid vector is also mutated byte by byte: no single-byte change may still verify
//! under the same keys.

// Test helpers outside `#[test]` functions unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_protocol::checkpoint::{self, Checkpoint, CheckpointOpenError};
use provmesh_protocol::cosignature;
use provmesh_protocol::note::{
    CosignatureVerifier, EcdsaP256Verifier, Ed25519Signer, Ed25519Verifier, KeyId, KeyName,
    KeyParseError, Note, NoteParseError, NoteVerifyError, SignatureFailure, Verifier, VerifierSet,
};

fn path(name: &str) -> String {
    format!("{}/tests/vectors/notes/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn vector(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn vector_str(name: &str) -> String {
    String::from_utf8(vector(name)).unwrap()
}

fn vkeys(name: &str) -> Vec<Verifier> {
    vector_str(name)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| Verifier::from_vkey(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn vkey(name: &str) -> Verifier {
    let mut v = vkeys(name);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn set(verifiers: impl IntoIterator<Item = Verifier>) -> VerifierSet {
    VerifierSet::from_verifiers(verifiers).unwrap()
}

fn name(s: &str) -> KeyName {
    KeyName::new(s).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    STANDARD.decode(s.trim()).unwrap()
}

fn rekor_v1_key() -> EcdsaP256Verifier {
    EcdsaP256Verifier::from_spki_der(
        name("rekor.sigstore.dev"),
        &b64(&vector_str("rekor-v1.spki.b64")),
    )
    .unwrap()
}

/// Every parse of `bytes` must re-serialize to exactly `bytes`.
fn parse_exact(bytes: &[u8]) -> Note {
    let note = Note::parse(bytes).unwrap();
    assert_eq!(note.to_bytes(), bytes);
    assert_eq!(note.encoded_len(), bytes.len());
    assert_eq!(note.to_string().as_bytes(), bytes);
    note
}

/// Asserts that no single-byte change of `bytes` verifies under `verifiers` with the same
/// set of verified keys (lines from unknown keys may change freely only if they were
/// unknown before and stay so; a key that verified can only drop out).
fn assert_single_byte_changes_fail(bytes: &[u8], verifiers: &VerifierSet) {
    let original: Vec<(KeyId, Option<u64>)> = Note::parse(bytes)
        .unwrap()
        .verify(verifiers)
        .unwrap()
        .iter()
        .map(|v| (v.verifier.key_id(), v.timestamp))
        .collect();
    let mut mutated = bytes.to_vec();
    for i in 0..bytes.len() {
        for delta in [0x01u8, 0x80] {
            mutated[i] ^= delta;
            if let Ok(note) = Note::parse(&mutated)
                && let Ok(verified) = note.verify(verifiers)
            {
                let got: Vec<_> = verified
                    .iter()
                    .map(|v| (v.verifier.key_id(), v.timestamp))
                    .collect();
                assert!(
                    got.len() < original.len() && got.iter().all(|g| original.contains(g)),
                    "byte {i} ^ {delta:#x} still verifies: {got:?} (original {original:?})"
                );
            }
            mutated[i] ^= delta;
        }
    }
}

// ---------------------------------------------------------------------------------------
// C2SP spec examples
// ---------------------------------------------------------------------------------------

#[test]
fn c2sp_signed_note_example_verifies() {
    let bytes = vector("c2sp-example.note");
    let vkey_str = vector_str("c2sp-example.vkey");
    let v = Verifier::from_vkey(vkey_str.trim()).unwrap();
    assert_eq!(v.to_vkey(), vkey_str.trim());
    assert_eq!(v.key_id(), KeyId(0x530d903a));
    assert_eq!(v.name().as_str(), "example.com/foo");
    assert!(matches!(v, Verifier::Ed25519(_)));

    let note = parse_exact(&bytes);
    assert_eq!(note.text(), "This is an example message.\n");
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(note.signatures()[0].key_id(), KeyId(0x530d903a));
    let verifiers = set([v.clone()]);
    let verified = note.verify(&verifiers).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].index, 0);
    assert_eq!(verified[0].timestamp, None);
    note.verify_with(&v).unwrap();
    assert_single_byte_changes_fail(&bytes, &verifiers);
}

/// The C2SP spec examples without published keys, copied from the spec text (so that the
/// stored vector files cannot drift from the specs unnoticed).
const QUASIMODO: &str = "Ognuno sta solo sul cuor della terra\n\
trafitto da un raggio di sole:\n\
\n\
ed \u{e8} subito sera.\n\
\n\
\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
const BEHIND_THE_SOFA: &str = "example.com/behind-the-sofa\n\
20852163\n\
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\
\n\
\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
const COSIGNED_BEHIND_THE_SOFA_LINE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";

#[test]
fn c2sp_vectors_match_the_spec_text() {
    assert_eq!(vector_str("c2sp-quasimodo.note"), QUASIMODO);
    assert_eq!(
        vector_str("c2sp-tlog-checkpoint-example.checkpoint"),
        BEHIND_THE_SOFA
    );
    assert_eq!(
        vector_str("c2sp-tlog-cosignature-example.checkpoint"),
        format!("{BEHIND_THE_SOFA}{COSIGNED_BEHIND_THE_SOFA_LINE}")
    );
    assert_eq!(
        vector_str("c2sp-example.note"),
        "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
    );
}

#[test]
fn c2sp_quasimodo_example_parses_byte_exact() {
    let bytes = vector("c2sp-quasimodo.note");
    let note = parse_exact(&bytes);
    // The text contains an empty line and a non-ASCII letter; the separator is the *last*
    // blank line.
    assert_eq!(
        note.text(),
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n"
    );
    let sig = &note.signatures()[0];
    assert_eq!(sig.name().as_str(), "quasimodo.example/salvatore");
    // "NnugSz…" = 36 7b a0 4b.
    assert_eq!(sig.key_id(), KeyId(0x367ba04b));
    assert_eq!(sig.signature().len(), 64);
    // No key is published: an unrelated key must not verify it.
    let other = vkey("c2sp-example.vkey");
    assert_eq!(
        note.verify(&set([other])),
        Err(NoteVerifyError::NoKnownSignature)
    );
}

#[test]
fn c2sp_tlog_checkpoint_example_parses() {
    let bytes = vector("c2sp-tlog-checkpoint-example.checkpoint");
    let note = parse_exact(&bytes);
    let cp = Checkpoint::from_note(&note).unwrap();
    assert_eq!(cp.origin(), "example.com/behind-the-sofa");
    assert_eq!(cp.size(), 20852163);
    assert_eq!(
        cp.root_hash().as_slice(),
        b64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    );
    assert!(cp.extension_lines().is_empty());
    assert_eq!(cp.to_text(), note.text());
}

#[test]
fn c2sp_tlog_cosignature_example_message_and_timestamp() {
    let bytes = vector("c2sp-tlog-cosignature-example.checkpoint");
    let note = parse_exact(&bytes);
    let cosig = &note.signatures()[1];
    assert_eq!(cosig.name().as_str(), "witness.example.com/w1");
    assert_eq!(cosig.key_id(), KeyId(0x8d66cf3f));
    assert_eq!(cosig.signature().len(), cosignature::SIGNATURE_LEN);
    assert_eq!(cosignature::unverified_timestamp(cosig), Some(1679315147));
    // The log's line is not a 72-byte cosignature.
    assert_eq!(
        cosignature::unverified_timestamp(&note.signatures()[0]),
        None
    );
    // The spec's example of the signed message, verbatim.
    assert_eq!(
        cosignature::signed_message(note.text(), 1679315147),
        "cosignature/v1\n\
         time 1679315147\n\
         example.com/behind-the-sofa\n\
         20852163\n\
         CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

// ---------------------------------------------------------------------------------------
// Go golang.org/x/mod/sumdb/note vectors
// ---------------------------------------------------------------------------------------

const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n";

#[test]
fn go_peterneumann_signing_reproduces_the_note() {
    let skey = vector_str("go-note-peterneumann.skey");
    let signer = Ed25519Signer::from_skey(skey.trim()).unwrap();
    let v = vkey("go-note-peterneumann.vkey");
    assert_eq!(Verifier::from(signer.verifier()), v);
    assert_eq!(v.key_id(), KeyId(0xc74f20a3));

    let note = Note::sign(PETER_TEXT, &[&signer]).unwrap();
    assert_eq!(note.to_bytes(), vector("go-note-peterneumann.note"));
    assert_eq!(signer.to_skey(), skey.trim(), "the skey form round-trips");

    let verifiers = set([v]);
    assert_single_byte_changes_fail(&vector("go-note-peterneumann.note"), &verifiers);
}

#[test]
fn go_peter_enoch_open() {
    let bytes = vector("go-note-peter-enoch.note");
    let note = parse_exact(&bytes);
    assert_eq!(note.text(), PETER_TEXT);
    let peter = vkey("go-note-peterneumann.vkey");
    let enoch = vkey("go-note-enochroot.vkey");
    assert_eq!(enoch.key_id(), KeyId(0xaf0cfe78));

    // One verified, one ignored.
    let only_peter = set([peter.clone()]);
    let verified = note.verify(&only_peter).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].verifier, &peter);
    assert_eq!(verified[0].index, 0);

    // Both verified, in line order.
    let both = set([enoch.clone(), peter.clone()]);
    let verified = note.verify(&both).unwrap();
    assert_eq!(verified.len(), 2);
    assert_eq!((verified[0].verifier, verified[0].index), (&peter, 0));
    assert_eq!((verified[1].verifier, verified[1].index), (&enoch, 1));
    assert_single_byte_changes_fail(&bytes, &both);

    // Neither known.
    assert_eq!(
        note.verify(&VerifierSet::new()),
        Err(NoteVerifyError::EmptyVerifierSet)
    );
    let other = set([vkey("c2sp-example.vkey")]);
    assert_eq!(note.verify(&other), Err(NoteVerifyError::NoKnownSignature));
    assert_eq!(note.verify_known(&other), Ok(vec![]));

    // A duplicated verifier is refused when the set is built (Go: "ambiguous key").
    let mut dup = set([enoch.clone()]);
    let err = dup.insert(enoch).unwrap_err();
    assert_eq!(err.key_id, KeyId(0xaf0cfe78));
}

#[test]
fn go_malformed_messages_are_rejected() {
    let cases: serde_json::Value =
        serde_json::from_str(&vector_str("go-note-malformed.json")).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for case in cases {
        let desc = case["desc"].as_str().unwrap();
        let bytes = hex::decode(case["note_hex"].as_str().unwrap()).unwrap();
        let verifiers = set(case["vkeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| Verifier::from_vkey(k.as_str().unwrap()).unwrap()));
        match case["error"].as_str().unwrap() {
            "malformed" => {
                assert!(Note::parse(&bytes).is_err(), "{desc}: parsed");
            }
            "invalid signature for key PeterNeumann+c74f20a3" => {
                let note = Note::parse(&bytes).unwrap();
                match note.verify(&verifiers) {
                    Err(NoteVerifyError::InvalidSignature {
                        name, key_id, line, ..
                    }) => {
                        assert_eq!(
                            (name.as_str(), key_id, line),
                            ("PeterNeumann", KeyId(0xc74f20a3), 1)
                        );
                    }
                    other => panic!("{desc}: {other:?}"),
                }
            }
            other => panic!("unknown expectation {other}"),
        }
    }
}

#[test]
fn go_malformed_messages_give_the_expected_errors() {
    let sig = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    let cases: Vec<(String, NoteParseError)> = vec![
        (PETER_TEXT.into(), NoteParseError::MissingSignatureSeparator),
        (format!("{PETER_TEXT}\n"), NoteParseError::NoSignatures),
        (
            format!("{PETER_TEXT}\n{}", sig.trim_end_matches('\n')),
            NoteParseError::UnterminatedSignatureLine,
        ),
        (
            format!("\x01{PETER_TEXT}\n{sig}"),
            NoteParseError::ControlCharacter { offset: 0, byte: 1 },
        ),
        (
            format!("{PETER_TEXT}\n{sig}").replacen("PeterNeumann", "Bad Name", 1),
            NoteParseError::SignatureLine {
                line: 1,
                error: provmesh_protocol::note::SignatureLineError::InvalidBase64,
            },
        ),
        (
            format!("{PETER_TEXT}\n{sig}Unexpected line.\n"),
            NoteParseError::SignatureLine {
                line: 2,
                error: provmesh_protocol::note::SignatureLineError::MissingPrefix,
            },
        ),
        (
            format!("{PETER_TEXT}\n{}", sig.repeat(101)),
            NoteParseError::TooManySignatures { max: 100 },
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(Note::parse(msg.as_bytes()), Err(want), "{msg:?}");
    }
    let mut bad_utf8 = b"\xff".to_vec();
    bad_utf8.extend_from_slice(format!("{PETER_TEXT}\n{sig}").as_bytes());
    assert_eq!(
        Note::parse(&bad_utf8),
        Err(NoteParseError::InvalidUtf8 { offset: 0 })
    );
    // 100 signatures (the limit) are accepted; Go and the spec agree (at least 16).
    let hundred = format!("{PETER_TEXT}\n{}", sig.repeat(100));
    let note = parse_exact(hundred.as_bytes());
    assert_eq!(note.signatures().len(), 100);
    note.verify(&set([vkey("go-note-peterneumann.vkey")]))
        .unwrap();
}

#[test]
fn go_vkey_manglings_are_rejected() {
    let good = vector_str("go-note-peterneumann.vkey");
    let good = good.trim();
    Verifier::from_vkey(good).unwrap();
    let b = good.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(Verifier::from_vkey(&s).is_err(), "{s}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let s = String::from_utf8_lossy(&m);
        assert!(Verifier::from_vkey(&s).is_err(), "{s}");
    }
    // Wrong length key and unknown algorithm, each with an adjusted key hash. (Go rejects
    // the first for its length; its base64 also has non-zero trailing bits, which our
    // strict decoder refuses first.)
    assert_eq!(
        Verifier::from_vkey(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(KeyParseError::InvalidBase64)
    );
    // A 33-byte key with canonical base64 is refused for its length.
    assert_eq!(
        Verifier::from_vkey(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA=="
        ),
        Err(KeyParseError::InvalidKey { signature_type: 1 })
    );
    assert_eq!(
        Verifier::from_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyParseError::UnsupportedSignatureType(0x65))
    );
}

#[test]
fn go_skey_manglings_are_rejected() {
    let good = vector_str("go-note-peterneumann.skey");
    let good = good.trim();
    Ed25519Signer::from_skey(good).unwrap();
    let b = good.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                let s = String::from_utf8_lossy(&b[i..j]);
                assert!(Ed25519Signer::from_skey(&s).is_err(), "{s}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let s = String::from_utf8_lossy(&m);
        assert!(Ed25519Signer::from_skey(&s).is_err(), "{s}");
    }
}

// ---------------------------------------------------------------------------------------
// Rekor v1 (ECDSA P-256)
// ---------------------------------------------------------------------------------------

const REKOR_V1_ORIGIN: &str = "rekor.sigstore.dev - 2605736670972794746";

#[test]
fn rekor_v1_key_id_is_the_log_id_prefix() {
    let key = rekor_v1_key();
    assert_eq!(key.key_id(), KeyId(0xc0d23d6a));
    // trusted_root.json logId.keyId of rekor.sigstore.dev = SHA-256(DER SPKI).
    assert_eq!(
        key.key_hash().as_slice(),
        b64("wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=")
    );
    let from_pem =
        EcdsaP256Verifier::from_pem(name("rekor.sigstore.dev"), &vector_str("rekor-v1.pub.pem"))
            .unwrap();
    assert_eq!(from_pem, key);
    // vkey round trip (transparency-dev/formats encoding: 0x02 || DER SPKI).
    let v = Verifier::from(key.clone());
    assert_eq!(Verifier::from_vkey(&v.to_vkey()).unwrap(), v);
    assert!(v.to_vkey().starts_with("rekor.sigstore.dev+c0d23d6a+Aj"));
}

#[test]
fn rekor_v1_checkpoint_opens() {
    let bytes = vector("rekor-v1.checkpoint");
    parse_exact(&bytes);
    let key = Verifier::from(rekor_v1_key());
    let signed = checkpoint::open(&bytes, REKOR_V1_ORIGIN, &key).unwrap();
    assert_eq!(signed.checkpoint.origin(), REKOR_V1_ORIGIN);
    assert_eq!(signed.checkpoint.size(), 75441653);
    assert_eq!(
        signed.checkpoint.root_hash().as_slice(),
        b64("uAqI3id6JHPMMNUltHIKHuX1kVHpm5y7jSfnbaRO+E4=")
    );
    assert!(signed.checkpoint.extension_lines().is_empty());
    assert_single_byte_changes_fail(&bytes, &set([key.clone()]));

    // The origin is checked.
    assert!(matches!(
        checkpoint::open(&bytes, "rekor.sigstore.dev", &key),
        Err(CheckpointOpenError::OriginMismatch { .. })
    ));
}

#[test]
fn rekor_v1_checkpoint_with_timestamp_extension_line() {
    let bytes = vector("rekor-v1-timestamp-line.checkpoint");
    parse_exact(&bytes);
    let key = Verifier::from(rekor_v1_key());
    let signed = checkpoint::open(&bytes, REKOR_V1_ORIGIN, &key).unwrap();
    assert_eq!(signed.checkpoint.size(), 23083062);
    assert_eq!(
        signed.checkpoint.extension_lines(),
        ["Timestamp: 1689177396617352539"]
    );
    assert_eq!(signed.checkpoint.to_text(), signed.note.text());
    assert_single_byte_changes_fail(&bytes, &set([key]));
}

#[test]
fn rekor_v1_bad_checkpoints_fail() {
    let key = Verifier::from(rekor_v1_key());
    // Key hint changed: the only line is from an unknown key.
    assert_eq!(
        checkpoint::open(
            &vector("rekor-v1-bad-keyhint.checkpoint"),
            REKOR_V1_ORIGIN,
            &key
        ),
        Err(CheckpointOpenError::Verify(
            NoteVerifyError::NoKnownSignature
        ))
    );
    // One signature byte corrupted: a known key's signature fails.
    match checkpoint::open(
        &vector("rekor-v1-bad-signature.checkpoint"),
        REKOR_V1_ORIGIN,
        &key,
    ) {
        Err(CheckpointOpenError::Verify(NoteVerifyError::InvalidSignature {
            name,
            key_id,
            line: 1,
            reason: SignatureFailure::Mismatch | SignatureFailure::MalformedDer,
        })) => {
            assert_eq!(name, "rekor.sigstore.dev");
            assert_eq!(key_id, KeyId(0xc0d23d6a));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Rekor v2 (Ed25519)
// ---------------------------------------------------------------------------------------

/// The vkey derived from the trusted root's DER SPKI must equal the stored vkey, and the
/// full key hash must equal the trusted root's `logId.keyId`.
fn check_rekor_v2_key(origin: &str, spki_file: &str, vkey_file: &str, log_id: &str) -> Verifier {
    let spki = b64(&vector_str(spki_file));
    let pk: [u8; 32] = spki[spki.len() - 32..].try_into().unwrap();
    let v = Ed25519Verifier::new(name(origin), &pk).unwrap();
    assert_eq!(v.to_vkey(), vector_str(vkey_file).trim());
    assert_eq!(v.key_hash().as_slice(), b64(log_id));
    assert_eq!(v.public_key(), pk);
    Verifier::from(v)
}

#[test]
fn rekor_v2_production_checkpoint_opens() {
    let origin = "log2025-1.rekor.sigstore.dev";
    let key = check_rekor_v2_key(
        origin,
        "rekor-v2.pub.b64",
        "rekor-v2.vkey",
        "zxGZFVvd0FEmjR8WrFwMdcAJ9vtaY/QXf44Y1wUeP6A=",
    );
    let bytes = vector("rekor-v2.checkpoint");
    parse_exact(&bytes);
    let signed = checkpoint::open(&bytes, origin, &key).unwrap();
    assert_eq!(signed.checkpoint.size(), 412115);
    assert_eq!(
        signed.checkpoint.root_hash().as_slice(),
        b64("+8vUkEgBK/ansexBUomzocaWoPEmPIzxJC/y+xNMQN4=")
    );
    assert_single_byte_changes_fail(&bytes, &set([key]));
}

#[test]
fn rekor_v2_staging_and_conformance_checkpoints() {
    let origin = "log2025-alpha1.rekor.sigstage.dev";
    let key = check_rekor_v2_key(
        origin,
        "rekor-v2-staging-alpha1.pub.b64",
        "rekor-v2-staging-alpha1.vkey",
        "8w1amZ2S5mJIQkQmPxdMuOrL/oJkvFg9MnQXmeOCXck=",
    );
    let signed =
        checkpoint::open(&vector("rekor-v2-staging-alpha1.checkpoint"), origin, &key).unwrap();
    assert_eq!(signed.checkpoint.size(), 646);

    for (file, log_line) in [
        (
            "rekor-v2-conformance-cosigned-unknown-witness.checkpoint",
            0,
        ),
        ("rekor-v2-conformance-multiple-unknown-cosigs.checkpoint", 0),
        ("rekor-v2-conformance-origin-not-first.checkpoint", 1),
        ("rekor-v2-conformance-two-sigs-from-origin.checkpoint", 0),
        ("rekor-v2-conformance-two-sigs-cosigned.checkpoint", 0),
    ] {
        let bytes = vector(file);
        parse_exact(&bytes);
        let signed =
            checkpoint::open(&bytes, origin, &key).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(signed.checkpoint.size(), 736, "{file}");
        let only_log = set([key.clone()]);
        let verified = signed.note.verify(&only_log).unwrap();
        assert_eq!(verified.len(), 1, "{file}");
        assert_eq!(verified[0].index, log_line, "{file}");
    }

    // Same signature bytes under another origin and key name: no known signature.
    assert_eq!(
        checkpoint::open(
            &vector("rekor-v2-conformance-wrong-origin-bad.checkpoint"),
            origin,
            &key
        ),
        Err(CheckpointOpenError::Verify(
            NoteVerifyError::NoKnownSignature
        ))
    );
    // No signature lines at all.
    assert_eq!(
        checkpoint::open(
            &vector("rekor-v2-conformance-no-signature-bad.checkpoint"),
            origin,
            &key
        ),
        Err(CheckpointOpenError::Note(NoteParseError::NoSignatures))
    );
}

// ---------------------------------------------------------------------------------------
// Witness cosignatures (tlog-cosignature/v1)
// ---------------------------------------------------------------------------------------

#[test]
fn witnessed_rekor_v2_staging_checkpoint() {
    let origin = "log2025-alpha3.rekor.sigstage.dev";
    let log = check_rekor_v2_key(
        origin,
        "witnessed-rekor-v2-staging.log.pub.b64",
        "witnessed-rekor-v2-staging.log.vkey",
        "09OnDKEw7/hpZiYVPoTRzRbglHk0sylsUovegnRUlJY=",
    );
    let witnesses = vkeys("witnessed-rekor-v2-staging.vkeys");
    assert_eq!(witnesses.len(), 3);
    for w in &witnesses {
        assert!(matches!(w, Verifier::CosignatureV1(_)));
        // vkey round trip.
        assert_eq!(&Verifier::from_vkey(&w.to_vkey()).unwrap(), w);
    }
    let bytes = vector("witnessed-rekor-v2-staging.checkpoint");
    parse_exact(&bytes);
    let signed = checkpoint::open(&bytes, origin, &log).unwrap();
    assert_eq!(signed.checkpoint.size(), 4026479);

    let witness_set = set(witnesses.clone());
    let cosigned = signed.verify_cosignatures(&witness_set).unwrap();
    assert_eq!(cosigned.len(), 3);
    for (i, c) in cosigned.iter().enumerate() {
        assert_eq!(c.verifier, &witnesses[i]);
        assert_eq!(c.index, i + 1);
        assert_eq!(c.timestamp, Some(1778700214));
    }

    // All four keys together: the log line has no timestamp.
    let mut all = witnesses.clone();
    all.insert(0, log.clone());
    let all = set(all);
    let verified = signed.note.verify(&all).unwrap();
    assert_eq!(verified.len(), 4);
    assert_eq!(verified[0].timestamp, None);
    assert_single_byte_changes_fail(&bytes, &all);

    // A cosignature verifier directly.
    let Verifier::CosignatureV1(w0) = &witnesses[0] else {
        unreachable!()
    };
    let line = &signed.note.signatures()[1];
    assert_eq!(
        w0.verify(signed.note.text(), line.signature()),
        Ok(1778700214)
    );
    // The same key as a plain Ed25519 (0x01) verifier has another key ID, and the
    // cosignature bytes are not a plain signature over the text.
    let as_plain = Ed25519Verifier::new(w0.name().clone(), &w0.public_key()).unwrap();
    assert_ne!(as_plain.key_id(), w0.key_id());
    assert!(
        as_plain
            .verify(signed.note.text(), &line.signature()[8..])
            .is_err()
    );
}

#[test]
fn witnessed_static_ct_cosignature() {
    let bytes = vector("witnessed-static-ct.checkpoint");
    let note = parse_exact(&bytes);
    let witness = vkey("witnessed-static-ct.vkeys");
    assert_eq!(witness.key_id(), KeyId(0xb8a2cf20));
    let witnesses = set([witness.clone()]);
    let verified = note.verify(&witnesses).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].index, 1);
    assert_eq!(verified[0].timestamp, Some(1767139200));
    // The static-ct-api (0x05) log line is from a key type we do not verify: the log's
    // ECDSA key as a 0x02 verifier has a different key ID, so the line stays unknown.
    let log_ecdsa = EcdsaP256Verifier::from_spki_der(
        name("rome2026h1.example.org"),
        &b64(&vector_str("witnessed-static-ct.log.spki.b64")),
    )
    .unwrap();
    assert_ne!(log_ecdsa.key_id(), note.signatures()[0].key_id());
    assert_eq!(
        note.verify(&set([Verifier::from(log_ecdsa)])),
        Err(NoteVerifyError::NoKnownSignature)
    );
    let cp = Checkpoint::from_note(&note).unwrap();
    assert_eq!((cp.origin(), cp.size()), ("rome2026h1.example.org", 300));
}

#[test]
fn witnessed_cosignature_only_checkpoint() {
    let bytes = vector("witnessed-cosig-only.checkpoint");
    let note = parse_exact(&bytes);
    let witness = vkey("witnessed-cosig-only.vkeys");
    let witnesses = set([witness.clone()]);
    let verified = note.verify(&witnesses).unwrap();
    assert_eq!(verified[0].timestamp, Some(1767139200));
    assert_single_byte_changes_fail(&bytes, &witnesses);
    // Without the log's key, it cannot be opened as a checkpoint of its log.
    let unrelated = vkey("tessera-testdata.vkey");
    assert_eq!(
        checkpoint::open(&bytes, "milan2026h1.example.org", &unrelated),
        Err(CheckpointOpenError::Verify(
            NoteVerifyError::NoKnownSignature
        ))
    );
    // Timestamp beyond 2^63 - 1 is refused even before the signature check.
    let Verifier::CosignatureV1(w) = &witness else {
        unreachable!()
    };
    let mut sig = note.signatures()[0].signature().to_vec();
    sig[0] = 0x80;
    assert!(matches!(
        w.verify(note.text(), &sig),
        Err(SignatureFailure::TimestampOutOfRange(_))
    ));
    assert!(matches!(
        w.verify(note.text(), &sig[1..]),
        Err(SignatureFailure::WrongLength {
            expected: 72,
            found: 71
        })
    ));
}

#[test]
fn cosignature_verifier_from_vkey_rejects_other_types() {
    let plain = vector_str("tessera-testdata.vkey");
    assert_eq!(
        CosignatureVerifier::from_vkey(plain.trim()),
        Err(KeyParseError::UnsupportedSignatureType(1))
    );
    let cosig = vector_str("witnessed-cosig-only.vkeys");
    assert_eq!(
        Ed25519Verifier::from_vkey(cosig.trim()),
        Err(KeyParseError::UnsupportedSignatureType(4))
    );
}

// ---------------------------------------------------------------------------------------
// Other logs
// ---------------------------------------------------------------------------------------

#[test]
fn sigsum_and_tessera_checkpoints_open() {
    for (file, key_file, size) in [
        ("sigsum.checkpoint", "sigsum.vkey", 1),
        ("tessera-testdata.checkpoint", "tessera-testdata.vkey", 15),
    ] {
        let bytes = vector(file);
        parse_exact(&bytes);
        let key = vkey(key_file);
        let origin = key.name().as_str().to_owned();
        let signed = checkpoint::open(&bytes, &origin, &key).unwrap();
        assert_eq!(signed.checkpoint.size(), size);
        assert_single_byte_changes_fail(&bytes, &set([key]));
    }
}
