//! tlog-cosignature/v1 known-answer tests.
//!
//! The spec publishes no cosigner key, so these answers were computed independently of
//! this crate with Python `cryptography` 48.0.0 (OpenSSL Ed25519) and `hashlib`, from the
//! spec's text alone: seed = bytes 0x00..=0x1f, key ID = SHA-256(name || "\n" || 0x04 ||
//! pk)[:4], signature = Ed25519("cosignature/v1\ntime <t>\n" || checkpoint text), line =
//! "— " name " " base64(key ID || u64be(t) || signature). Ed25519 is deterministic, so
//! signing here must give these exact bytes. Verification of real witness cosignatures is
//! in `note_vectors.rs`.

// Test helpers outside `#[test]` functions unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

use provmesh_protocol::checkpoint::{self, Checkpoint};
use provmesh_protocol::cosignature::{self, CosignatureSigner};
use provmesh_protocol::note::{
    Ed25519Signer, KeyId, KeyName, Note, NoteSignature, NoteVerifyError, SignatureFailure,
    Verifier, VerifierSet,
};

const SEED: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// The tlog-checkpoint spec example body.
const TEXT: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const WITNESS_VKEY: &str =
    "witness.example/kat+e24d35cb+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
const COSIG_LINE: &str = "\u{2014} witness.example/kat 4k01ywAAAABkGFDLBuRDazBLVac2NE+Y+IjbjQOcXLfF9CSDZVUIoS83rE1nFZsVE8YiWV6Ngr7lV8H6bdoBQGP/l73euDMQ9k+bBQ==\n";
const COSIG_LINE_T0: &str = "\u{2014} witness.example/kat 4k01ywAAAAAAAAAASwAd4w1ricaexXuzQd/SlFHJuf322oBej3abuJxsSyiqcXqANIUg1vbolAq6DI9UMxoAwjV4IZ4iKfBrkPOSDg==\n";
const LOG_VKEY: &str =
    "example.com/behind-the-sofa+1f59e8f5+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
const LOG_LINE: &str = "\u{2014} example.com/behind-the-sofa H1no9Vbha/V7K+0nOUyOYWY2eeqkJO0R/8eVdJBP1U6klJ63rYHH36AjiNbqMeYZ5wXtNMpYFqOQG4s/igFrnBBp3AU=\n";
/// The spec's example timestamp.
const T: u64 = 1679315147;

fn witness() -> CosignatureSigner {
    CosignatureSigner::from_seed(KeyName::new("witness.example/kat").unwrap(), &SEED)
}

fn log() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new("example.com/behind-the-sofa").unwrap(), &SEED)
}

#[test]
fn cosigner_key_id_and_vkey() {
    let w = witness();
    assert_eq!(w.key_id(), KeyId(0xe24d35cb));
    assert_eq!(w.verifier().to_vkey(), WITNESS_VKEY);
    assert_eq!(
        Verifier::from_vkey(WITNESS_VKEY).unwrap(),
        Verifier::from(w.verifier())
    );
    assert_eq!(w.verifier().key_hash()[..4], 0xe24d35cbu32.to_be_bytes());
    // The same key and name as a plain Ed25519 key has another ID (type byte 0x01).
    assert_eq!(log().verifier().to_vkey(), LOG_VKEY);
}

#[test]
fn cosigning_gives_the_known_answer() {
    let cp = Checkpoint::parse(TEXT).unwrap();
    let line = witness().cosign(&cp, T).unwrap();
    assert_eq!(line.to_line(), COSIG_LINE);
    assert_eq!(witness().sign(TEXT, 0).unwrap().to_line(), COSIG_LINE_T0);
    assert_eq!(
        NoteSignature::parse_line(COSIG_LINE.trim_end()).unwrap(),
        line
    );
}

#[test]
fn cosigned_note_gives_the_known_answer_and_verifies() {
    let cp = Checkpoint::parse(TEXT).unwrap();
    let w = witness();
    let note = cp.sign(&[&log(), &w.at(T)]).unwrap();
    let expected = format!("{TEXT}\n{LOG_LINE}{COSIG_LINE}");
    assert_eq!(note.to_bytes(), expected.as_bytes());

    let log_key = Verifier::from_vkey(LOG_VKEY).unwrap();
    let signed =
        checkpoint::open(expected.as_bytes(), "example.com/behind-the-sofa", &log_key).unwrap();
    let witnesses =
        VerifierSet::from_verifiers([Verifier::from_vkey(WITNESS_VKEY).unwrap()]).unwrap();
    let cosigned = signed.verify_cosignatures(&witnesses).unwrap();
    assert_eq!(cosigned.len(), 1);
    assert_eq!(cosigned[0].timestamp, Some(T));
    assert_eq!(cosigned[0].index, 1);
}

#[test]
fn timestamp_is_covered_by_the_signature() {
    // Change the timestamp of the known line from T to T+1 without re-signing.
    let line = NoteSignature::parse_line(COSIG_LINE.trim_end()).unwrap();
    let mut sig = line.signature().to_vec();
    sig[..8].copy_from_slice(&(T + 1).to_be_bytes());
    let forged = NoteSignature::new(line.name().clone(), line.key_id(), sig).unwrap();
    assert_eq!(cosignature::unverified_timestamp(&forged), Some(T + 1));
    let note = Note::from_parts(TEXT, vec![forged]).unwrap();
    let witnesses =
        VerifierSet::from_verifiers([Verifier::from_vkey(WITNESS_VKEY).unwrap()]).unwrap();
    assert_eq!(
        note.verify(&witnesses),
        Err(NoteVerifyError::InvalidSignature {
            name: "witness.example/kat".into(),
            key_id: KeyId(0xe24d35cb),
            line: 1,
            reason: SignatureFailure::Mismatch,
        })
    );
}

#[test]
fn extension_lines_are_covered() {
    // "Extension lines MAY be included in the checkpoint by the log, and if present MUST
    // be included in the cosigned message."
    let w = witness();
    let with_ext = format!("{TEXT}ext\n");
    let line = w.sign(&with_ext, T).unwrap();
    let v = w.verifier();
    assert_eq!(v.verify(&with_ext, line.signature()), Ok(T));
    assert_eq!(
        v.verify(TEXT, line.signature()),
        Err(SignatureFailure::Mismatch)
    );
    assert_eq!(
        cosignature::signed_message(&with_ext, T),
        format!("cosignature/v1\ntime {T}\n{TEXT}ext\n")
    );
}
