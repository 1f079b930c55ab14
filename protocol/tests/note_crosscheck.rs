//! Cross-checks against `signed_note` 0.2 (Cloudflare's independent Rust port of Go's
//! `golang.org/x/mod/sumdb/note`, on the older ed25519-dalek 2 / sha2 0.10 stack):
//!
//! - notes we sign are byte-identical to the ones `signed_note` signs with the same key,
//!   and verify there; notes it signs parse and verify here;
//! - both parsers accept and reject the same inputs, and agree on what they parsed;
//! - our cosignature/v1 lines verify under a `signed_note` verifier whose key ID and
//!   signed message are computed in this file, independently of `provmesh-protocol`;
//!   so do the real witness cosignatures of the staging Rekor v2 vector.

// Test helpers outside `#[test]` functions unwrap too; a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::note_like;
use proptest::prelude::*;
use provmesh_protocol::checkpoint::Checkpoint;
use provmesh_protocol::note::{
    CosignatureSigner, Ed25519Signer, KeyName, Note, Verifier, VerifierSet,
};

/// Go's signer key string for an Ed25519 seed, built here (not by the crate under test).
fn skey(name: &str, seed: &[u8; 32]) -> String {
    let signer = Ed25519Signer::from_seed(KeyName::new(name).unwrap(), seed);
    let vkey = signer.verifier().to_vkey();
    let id = vkey.split('+').nth(1).unwrap();
    let mut raw = vec![1u8];
    raw.extend_from_slice(seed);
    format!("PRIVATE+KEY+{name}+{id}+{}", STANDARD.encode(raw))
}

/// A `signed_note` verifier for tlog-cosignature/v1 written from the spec, independent of
/// the crate under test: key ID = SHA-256(name || "\n" || 0x04 || key)[:4] computed by
/// `signed_note::key_id`, message = "cosignature/v1\ntime <t>\n" || text, Ed25519 checked
/// by `signed_note`'s own (ed25519-dalek 2) verifier.
struct CosigV1 {
    name: String,
    id: u32,
    plain: signed_note::StandardVerifier,
}

impl CosigV1 {
    fn from_vkey(vkey: &str) -> Self {
        let mut parts = vkey.splitn(3, '+');
        let name = parts.next().unwrap().to_owned();
        let _id = parts.next().unwrap();
        let key = STANDARD.decode(parts.next().unwrap()).unwrap();
        assert_eq!(key[0], 0x04);
        let id = signed_note::key_id(&name, &key);
        // Re-encode the same public key as a 0x01 vkey for the plain Ed25519 check.
        let mut plain_key = key.clone();
        plain_key[0] = 0x01;
        let plain_id = signed_note::key_id(&name, &plain_key);
        let plain = signed_note::StandardVerifier::new(&format!(
            "{name}+{plain_id:08x}+{}",
            STANDARD.encode(&plain_key)
        ))
        .unwrap();
        Self { name, id, plain }
    }
}

impl signed_note::Verifier for CosigV1 {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let t = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let mut m = format!("cosignature/v1\ntime {t}\n").into_bytes();
        m.extend_from_slice(msg);
        signed_note::Verifier::verify(&self.plain, &m, &sig[8..])
    }
}

/// Both parsers must agree on acceptance and on the parsed note.
fn check_same_parse(bytes: &[u8]) {
    let ours = Note::parse(bytes);
    let theirs = signed_note::Note::from_bytes(bytes);
    match (&ours, &theirs) {
        (Ok(o), Ok(t)) => {
            assert_eq!(o.text().as_bytes(), t.text());
            // Same text and the same signature lines (both re-serialize exactly).
            assert_eq!(o.to_bytes(), t.to_bytes());
            assert_eq!(o.to_bytes(), bytes);
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "parsers disagree on {:?}: ours {:?}, signed_note {:?}",
            String::from_utf8_lossy(bytes),
            ours.as_ref().map(|_| ()),
            theirs.as_ref().map(|_| ())
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn parsers_agree_on_note_like_input(bytes in note_like()) {
        check_same_parse(&bytes);
    }

    #[test]
    fn parsers_agree_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_same_parse(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ed25519_notes_match_signed_note(
        seeds in prop::collection::vec(any::<[u8; 32]>(), 1..4),
        text in prop::collection::vec("[^\u{0}-\u{1f}]{0,30}", 1..5),
    ) {
        let text: String = text.iter().map(|l| format!("{l}\n")).collect();
        let ours: Vec<Ed25519Signer> = seeds
            .iter()
            .enumerate()
            .map(|(i, s)| Ed25519Signer::from_seed(KeyName::new(format!("k{i}.example")).unwrap(), s))
            .collect();
        let theirs: Vec<signed_note::StandardSigner> = seeds
            .iter()
            .enumerate()
            .map(|(i, s)| signed_note::StandardSigner::new(&skey(&format!("k{i}.example"), s)).unwrap())
            .collect();

        // Same key, same text: the same bytes (Ed25519 is deterministic).
        let refs: Vec<&dyn provmesh_protocol::note::NoteSigner> =
            ours.iter().map(|s| s as &dyn provmesh_protocol::note::NoteSigner).collect();
        let our_note = Note::sign(text.clone(), &refs).unwrap();
        let mut their_note = signed_note::Note::new(text.as_bytes(), &[]).unwrap();
        let their_refs: Vec<&dyn signed_note::Signer> =
            theirs.iter().map(|s| s as &dyn signed_note::Signer).collect();
        their_note.add_sigs(&their_refs).unwrap();
        prop_assert_eq!(our_note.to_bytes(), their_note.to_bytes());

        // Our vkeys load in signed_note and verify our note there.
        let list = signed_note::VerifierList::new(
            ours.iter()
                .map(|s| {
                    Box::new(signed_note::StandardVerifier::new(&s.verifier().to_vkey()).unwrap())
                        as Box<dyn signed_note::Verifier>
                })
                .collect(),
        );
        let parsed = signed_note::Note::from_bytes(&our_note.to_bytes()).unwrap();
        let (verified, unverified) = parsed.verify(&list).unwrap();
        prop_assert_eq!(verified.len(), seeds.len());
        prop_assert!(unverified.is_empty());

        // Their note verifies here.
        let set = VerifierSet::from_verifiers(ours.iter().map(|s| Verifier::from(s.verifier()))).unwrap();
        let mine = Note::parse(&their_note.to_bytes()).unwrap();
        prop_assert_eq!(mine.verify(&set).unwrap().len(), seeds.len());
    }

    #[test]
    fn cosignatures_verify_under_independent_verifier(
        log_seed in any::<[u8; 32]>(),
        witness_seed in any::<[u8; 32]>(),
        size in any::<u64>(),
        hash in any::<[u8; 32]>(),
        timestamp in 0..=i64::MAX as u64,
    ) {
        let cp = Checkpoint::new("log.example/a", size, hash).unwrap();
        let log = Ed25519Signer::from_seed(KeyName::new("log.example/a").unwrap(), &log_seed);
        let witness = CosignatureSigner::from_seed(KeyName::new("witness.example").unwrap(), &witness_seed);
        let note = cp.sign(&[&log, &witness.at(timestamp)]).unwrap();

        let cosig = CosigV1::from_vkey(&witness.verifier().to_vkey());
        prop_assert_eq!(cosig.id, witness.key_id().0);
        let list = signed_note::VerifierList::new(vec![Box::new(cosig)]);
        let parsed = signed_note::Note::from_bytes(&note.to_bytes()).unwrap();
        let (verified, unverified) = parsed.verify(&list).unwrap();
        prop_assert_eq!(verified.len(), 1);
        prop_assert_eq!(verified[0].name(), "witness.example");
        prop_assert_eq!(unverified.len(), 1);
    }
}

#[test]
fn real_witness_cosignatures_verify_under_independent_verifier() {
    let dir = format!("{}/tests/vectors/notes", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(format!("{dir}/witnessed-rekor-v2-staging.checkpoint")).unwrap();
    let vkeys = std::fs::read_to_string(format!("{dir}/witnessed-rekor-v2-staging.vkeys")).unwrap();
    let list = signed_note::VerifierList::new(
        vkeys
            .lines()
            .map(|l| Box::new(CosigV1::from_vkey(l)) as Box<dyn signed_note::Verifier>)
            .collect(),
    );
    let theirs = signed_note::Note::from_bytes(&bytes).unwrap();
    let (verified, unverified) = theirs.verify(&list).unwrap();
    assert_eq!(verified.len(), 3);
    assert_eq!(unverified.len(), 1);

    // And ours agrees.
    let set = VerifierSet::from_verifiers(vkeys.lines().map(|l| Verifier::from_vkey(l).unwrap()))
        .unwrap();
    assert_eq!(Note::parse(&bytes).unwrap().verify(&set).unwrap().len(), 3);
}

#[test]
fn go_vectors_agree() {
    let dir = format!("{}/tests/vectors/notes", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(format!("{dir}/go-note-peter-enoch.note")).unwrap();
    let list = signed_note::VerifierList::new(
        ["go-note-peterneumann.vkey", "go-note-enochroot.vkey"]
            .iter()
            .map(|f| {
                let k = std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
                // Our vkey formatting equals the stored vkey, which signed_note accepts.
                let ours = Verifier::from_vkey(k.trim()).unwrap();
                assert_eq!(ours.to_vkey(), k.trim());
                Box::new(signed_note::StandardVerifier::new(k.trim()).unwrap())
                    as Box<dyn signed_note::Verifier>
            })
            .collect(),
    );
    let theirs = signed_note::Note::from_bytes(&bytes).unwrap();
    assert_eq!(theirs.verify(&list).unwrap().0.len(), 2);
    assert_eq!(Note::parse(&bytes).unwrap().to_bytes(), theirs.to_bytes());
}
