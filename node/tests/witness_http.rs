//! The domain's witness over HTTP (C2SP tlog-witness `POST /add-checkpoint`) on a running
//! authority: a log outside the mesh is configured by origin and key, and every status
//! code of the spec is answered to a request crafted for it; the cosignature verifies with
//! the domain's witness key; the cosigned state survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::authority::TestAuthority;
use provmesh_protocol::cosignature::CosignatureSigner;
use provmesh_protocol::merkle::Hash;
use provmesh_protocol::note::{Note, Verifier};
use provmesh_protocol::testing::TestLog;

const ORIGIN: &str = "log.external.example";

/// The body of an honest request from `old` to `new` for `log`.
fn extend(log: &mut TestLog, old: u64, new: u64) -> String {
    let proof = log.proof(old, new);
    body(old, &proof, &note(log, new))
}

/// `log`'s signed checkpoint of `size`, as text.
fn note(log: &mut TestLog, size: u64) -> String {
    String::from_utf8(log.note(size)).unwrap()
}

fn body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&STANDARD.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

fn config(log: &TestLog) -> String {
    format!(
        "[authority.witness]\n[[authority.witness.logs]]\norigin = \"{ORIGIN}\"\nkey = \"{}\"\n",
        log.verifier().to_vkey()
    )
}

/// POSTs `body`; returns status, content type and text.
async fn post(url: &str, body: impl Into<reqwest::Body>) -> (u16, String, String) {
    let response = reqwest::Client::new()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The domain's witness key, from the authority's files.
fn witness_key(authority: &TestAuthority) -> Verifier {
    let skey =
        std::fs::read_to_string(authority.data_dir.path().join("witness/witness.key")).unwrap();
    CosignatureSigner::from_skey(skey.trim())
        .unwrap()
        .verifier()
        .into()
}

#[tokio::test]
async fn add_checkpoint_answers_every_status_of_the_spec() {
    let mut log = TestLog::new(ORIGIN, 1);
    let authority = TestAuthority::start(&config(&log)).await;
    let url = authority.url.clone();

    // 200: the first checkpoint, from old size 0; the answer is a cosignature line that
    // verifies with the domain's witness key when appended to the checkpoint.
    let (status, _, lines) = post(&url, extend(&mut log, 0, 4)).await;
    assert_eq!(status, 200, "{lines}");
    assert!(lines.starts_with("— witness.org-a.example "), "{lines}");
    let cosigned = Note::parse(format!("{}{lines}", note(&mut log, 4)).as_bytes()).unwrap();
    let key = witness_key(&authority);
    let verified = cosigned.verify_with(&key).unwrap();
    assert!(verified.timestamp.is_some());

    // 200 again: growing with a consistency proof.
    let (status, _, lines) = post(&url, extend(&mut log, 4, 9)).await;
    assert_eq!(status, 200, "{lines}");

    // 404: an origin the witness does not witness.
    let mut unknown = TestLog::new("log.unknown.example", 5);
    let note_of_unknown = note(&mut unknown, 1);
    let (status, _, text) = post(&url, body(0, &[], &note_of_unknown)).await;
    assert_eq!(status, 404, "{text}");

    // 403: signed by a key the witness does not trust for the origin.
    let mut impostor = TestLog::new(ORIGIN, 2);
    let (status, _, text) = post(&url, extend(&mut impostor, 9, 12)).await;
    assert_eq!(status, 403, "{text}");

    // 400: not a request; old size larger than the checkpoint; a proof with old size 0;
    // more than 63 proof lines.
    let (status, _, _) = post(&url, "hello\n").await;
    assert_eq!(status, 400);
    let note = note(&mut log, 12);
    let (status, _, text) = post(&url, body(13, &[], &note)).await;
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = post(&url, body(0, &[[1; 32]], &note)).await;
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = post(&url, body(9, &[[1; 32]; 64], &note)).await;
    assert_eq!(status, 400, "{text}");

    // 409 with the witness's size: an old size that is not the one cosigned last.
    for old in [0, 4, 10] {
        let proof = log.proof(old, 12);
        let (status, content_type, text) = post(&url, body(old, &proof, &note)).await;
        assert_eq!(status, 409, "{text}");
        assert_eq!(content_type, "text/x.tlog.size");
        assert_eq!(text, "9\n");
    }

    // 422: a consistency proof that does not verify.
    let mut proof = log.proof(9, 12);
    proof[0][0] ^= 1;
    let (status, _, text) = post(&url, body(9, &proof, &note)).await;
    assert_eq!(status, 422, "{text}");

    // 409: the cosigned size with another root (the log signed a fork).
    let mut fork = TestLog::forked(ORIGIN, 1, 3);
    let (status, content_type, text) = post(&url, extend(&mut fork, 9, 9)).await;
    assert_eq!(status, 409, "{text}");
    assert_ne!(content_type, "text/x.tlog.size");

    // 413: a body over the bound, refused before it is read whole.
    let (status, _, _) = post(&url, vec![b'a'; 70 * 1024]).await;
    assert_eq!(status, 413);

    // Nothing refused moved the witness: the honest log goes on from 9.
    let (status, _, text) = post(&url, extend(&mut log, 9, 12)).await;
    assert_eq!(status, 200, "{text}");
    authority.stop().await;
}

#[tokio::test]
async fn the_cosigned_state_survives_a_restart() {
    let mut log = TestLog::new(ORIGIN, 1);
    let authority = TestAuthority::start(&config(&log)).await;
    let (status, _, text) = post(&authority.url, extend(&mut log, 0, 7)).await;
    assert_eq!(status, 200, "{text}");
    let data_dir = authority.stop().await;

    let authority = TestAuthority::start_in(data_dir, &config(&log)).await;
    // The witness remembers 7: old size 0 is refused with its size, a rollback to a
    // smaller checkpoint is not cosigned, and the log goes on from 7.
    let (status, _, text) = post(&authority.url, extend(&mut log, 0, 5)).await;
    assert_eq!((status, text.as_str()), (409, "7\n"));
    let (status, _, text) = post(&authority.url, extend(&mut log, 7, 11)).await;
    assert_eq!(status, 200, "{text}");
    authority.stop().await;
}
