//! The log's HTTP API (`log::http`) end to end: a real log on a temporary redb store,
//! served on a loopback port and driven with `reqwest`, as cosign or sigstore-go would.
//!
//! What the API serves is checked with independent implementations, never with the
//! code that produced it: checkpoints with `signed_note` (Go's `sumdb/note` port) and
//! `tlog_tiles::Checkpoint`, inclusion and consistency proofs with
//! `tlog_tiles::check_record` / `check_tree`, hash tiles with `tlog_tiles`'s
//! `TileHashReader` (which authenticates every tile against the checkpoint's root),
//! signed entry timestamps with `ed25519-dalek` over the RFC 8785 payload written out
//! in the shared fixture (`common/log.rs`, which also runs the log and signs the entries
//! sent to it), and the served public key against RFC 8410's PKIX layout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/log.rs"]
mod log_fixture;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use log_fixture::{
    DEADLINE, RunningLog, fast_settings, foreign_signer, hashedrekord, hashedrekord_signed,
    note_signer, signed_checkpoint, unix_now, verify_note, verify_set,
};
use provmesh_node::bench::signing::Signer;
use provmesh_node::log::http::{self, HttpSettings};
use provmesh_node::log::service::LogSettings;
use provmesh_node::log::store::LogStore as _;
use provmesh_protocol::log::quota::QuotaConfig;
use provmesh_protocol::log::sequencer::SequencerConfig;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tlog_tiles::{Tile, TileHashReader, TileReader};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------
// A running log, served over HTTP

/// The log of [`RunningLog`] behind its HTTP API on a loopback port.
struct TestLog {
    running: RunningLog,
    base: String,
    client: reqwest::Client,
    server: JoinHandle<std::io::Result<()>>,
}

impl Deref for TestLog {
    type Target = RunningLog;

    fn deref(&self) -> &RunningLog {
        &self.running
    }
}

impl TestLog {
    async fn start() -> TestLog {
        TestLog::start_with(fast_settings(), HttpSettings::default(), None).await
    }

    async fn start_with(
        settings: LogSettings,
        http_settings: HttpSettings,
        published: Option<Vec<u8>>,
    ) -> TestLog {
        let running = RunningLog::start(settings, published);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = http::router(running.handle.clone(), http_settings);
        let server = tokio::spawn(http::serve(listener, router, running.shutdown()));
        TestLog {
            running,
            base,
            client: reqwest::Client::new(),
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        tokio::time::timeout(DEADLINE, self.client.get(self.url(path)).send())
            .await
            .expect("GET in time")
            .unwrap()
    }

    async fn get_bytes(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let response = self.get(path).await;
        (response.status(), response.bytes().await.unwrap().to_vec())
    }

    async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        tokio::time::timeout(DEADLINE, request.send())
            .await
            .expect("POST in time")
            .unwrap()
    }

    async fn post_json(&self, path: &str, body: impl Into<Vec<u8>>) -> reqwest::Response {
        self.post(path, Some("application/json"), body.into()).await
    }

    async fn append(&self, proposed: impl AsRef<[u8]>) -> reqwest::Response {
        self.post_json("/api/v1/log/entries", proposed.as_ref())
            .await
    }

    /// Stops the log the way the node does, one signal for the server and the log, and
    /// checks that both end cleanly.
    async fn stop(mut self) {
        self.running.stop().await;
        let server = tokio::time::timeout(DEADLINE, self.server)
            .await
            .expect("the HTTP server stops after shutdown");
        server.unwrap().unwrap();
    }
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// Checks a Rekor error answer: status, `application/json`, `{"code", "message"}` with
/// the status as code and a message containing `needle`.
async fn expect_error(response: reqwest::Response, status: StatusCode, needle: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(content_type(&response), "application/json");
    let body = json_of(response).await;
    assert_eq!(body["code"], status.as_u16(), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(needle),
        "message {message:?} should mention {needle:?}"
    );
    body
}

fn content_type(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

// ---------------------------------------------------------------------------------------
// Independent verification

/// The log's public key as served by `/api/v1/log/publicKey`, checked against the
/// RFC 8410 PKIX layout.
async fn served_public_key(log: &TestLog) -> [u8; 32] {
    let response = log.get("/api/v1/log/publicKey").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/x-pem-file");
    let pem = response.text().await.unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"), "{pem}");
    let der = STANDARD.decode(b64).unwrap();
    // RFC 8410 §4 / §10.1: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
    assert_eq!(
        der[..12],
        [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
        ]
    );
    der[12..].try_into().unwrap()
}

fn hashes_of(list: &Value) -> Vec<tlog_tiles::Hash> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            tlog_tiles::Hash(
                hex::decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
        })
        .collect()
}

fn hash_of(text: &Value) -> tlog_tiles::Hash {
    tlog_tiles::Hash(
        hex::decode(text.as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

/// Checks one `LogEntry` value (the object under the UUID) completely, and returns its
/// decoded body: the SET verifies over the RFC 8785 payload, the inclusion proof
/// verifies with `tlog_tiles` from `record_hash(body)` to the root of its checkpoint, the
/// checkpoint verifies, and the UUID is the leaf hash.
fn verify_entry(uuid: &str, entry: &Value, public_key: &[u8; 32], key_id: &[u8; 32]) -> Vec<u8> {
    let body = STANDARD.decode(entry["body"].as_str().unwrap()).unwrap();
    let index = entry["logIndex"].as_u64().unwrap();
    let integrated_time = entry["integratedTime"].as_i64().unwrap();
    assert!((unix_now() - integrated_time).abs() < 60);
    assert_eq!(entry["logID"], hex::encode(key_id));

    // The UUID is the RFC 6962 leaf hash of the body.
    let leaf = tlog_tiles::record_hash(&body);
    assert_eq!(uuid, hex::encode(leaf.0));

    let set = STANDARD
        .decode(
            entry["verification"]["signedEntryTimestamp"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    verify_set(
        &set,
        entry["body"].as_str().unwrap(),
        integrated_time,
        entry["logID"].as_str().unwrap(),
        index,
        public_key,
    );

    let proof = &entry["verification"]["inclusionProof"];
    assert_eq!(proof["logIndex"].as_u64().unwrap(), index);
    let size = proof["treeSize"].as_u64().unwrap();
    let root = hash_of(&proof["rootHash"]);
    tlog_tiles::check_record(&hashes_of(&proof["hashes"]), size, root, index, leaf)
        .expect("the inclusion proof verifies");
    let checkpoint = verify_note(proof["checkpoint"].as_str().unwrap().as_bytes(), public_key);
    assert_eq!(checkpoint.size(), size);
    assert_eq!(*checkpoint.hash(), root);
    body
}

/// The single `(uuid, LogEntry)` of a `{uuid: LogEntry}` response.
fn single_entry(response: &Value) -> (String, Value) {
    let map = response.as_object().unwrap();
    assert_eq!(map.len(), 1, "{response}");
    let (uuid, entry) = map.iter().next().unwrap();
    (uuid.clone(), entry.clone())
}

/// Hash tiles fetched over HTTP, for `tlog_tiles`'s `TileHashReader`.
struct FetchedTiles {
    tiles: HashMap<(u8, u64, u32), Vec<u8>>,
}

impl TileReader for FetchedTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                self.tiles
                    .get(&(t.level(), t.level_index(), t.width()))
                    .cloned()
                    .ok_or(tlog_tiles::Error::InvalidTile)
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// The C2SP path of a `tlog_tiles` tile: Go's sumdb paths carry the height
/// (`tile/8/0/001`), C2SP's do not (`tile/0/001`).
fn c2sp_path(tile: &Tile) -> String {
    let path = tile.path();
    format!("/tile/{}", path.strip_prefix("tile/8/").unwrap())
}

/// Fetches every hash tile of the tree of `size` leaves.
async fn fetch_tiles(log: &TestLog, size: u64) -> FetchedTiles {
    let mut tiles = HashMap::new();
    for tile in Tile::new_tiles(8, 0, size) {
        let response = log.get(&c2sp_path(&tile)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", c2sp_path(&tile));
        assert_eq!(content_type(&response), "application/octet-stream");
        let cache = header(&response, "cache-control").unwrap().to_owned();
        if tile.width() == 256 {
            assert_eq!(cache, "public, max-age=31536000, immutable");
        } else {
            assert!(
                !cache.contains("immutable") && cache.contains("max-age="),
                "{cache}"
            );
        }
        let data = response.bytes().await.unwrap().to_vec();
        assert_eq!(data.len(), tile.width() as usize * 32);
        tiles.insert((tile.level(), tile.level_index(), tile.width()), data);
    }
    FetchedTiles { tiles }
}

/// Splits an entry bundle into its entries (big-endian `uint16` length prefixes).
fn split_bundle(mut bundle: &[u8]) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    while !bundle.is_empty() {
        let len = usize::from(u16::from_be_bytes([bundle[0], bundle[1]]));
        entries.push(bundle[2..2 + len].to_vec());
        bundle = &bundle[2 + len..];
    }
    entries
}

/// Appends `count` entries for distinct artifacts, `parallel` at a time.
async fn append_many(
    log: &Arc<TestLog>,
    signer: &Arc<Signer>,
    first: usize,
    count: usize,
    parallel: usize,
) {
    let mut next = first;
    while next < first + count {
        let batch: Vec<_> = (next..(next + parallel).min(first + count))
            .map(|i| {
                let log = Arc::clone(log);
                let signer = Arc::clone(signer);
                tokio::spawn(async move {
                    let response = log
                        .append(&hashedrekord(&signer, format!("artifact {i}").as_bytes()))
                        .await;
                    assert_eq!(response.status(), StatusCode::CREATED);
                })
            })
            .collect();
        next += batch.len();
        for task in batch {
            task.await.unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_read_back_and_duplicate() {
    let log = TestLog::start().await;
    let signer = log.code_signer();
    let public_key = served_public_key(&log).await;
    assert_eq!(public_key, log.public_key);
    let key_id = *log.handle.key_id();

    // Create: 201, Location and ETag naming the UUID, `{uuid: LogEntry}` body.
    let artifact = b"release-1.0.tar.gz";
    let proposed = hashedrekord(&signer, artifact);
    let response = log.append(&proposed).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(content_type(&response), "application/json");
    let location = header(&response, "location").unwrap().to_owned();
    let etag = header(&response, "etag").unwrap().to_owned();
    let created = json_of(response).await;
    let (uuid, entry) = single_entry(&created);
    assert_eq!(location, format!("/api/v1/log/entries/{uuid}"));
    assert_eq!(etag, uuid);
    assert_eq!(entry["logIndex"], 0);
    let body = verify_entry(&uuid, &entry, &public_key, &key_id);
    // The logged body is Rekor's canonical hashedrekord for this artifact.
    let canonical: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(canonical["kind"], "hashedrekord");
    assert_eq!(canonical["apiVersion"], "0.0.1");
    assert_eq!(
        canonical["spec"]["data"]["hash"]["value"],
        hex::encode(Sha256::digest(artifact))
    );

    // A second entry, then the first again: 409 with the existing entry's Location and
    // a Rekor error body; the log does not grow.
    let second = log
        .append(&hashedrekord(&signer, b"release-1.1.tar.gz"))
        .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second_uuid = single_entry(&json_of(second).await).0;
    let duplicate = log.append(&proposed).await;
    assert_eq!(header(&duplicate, "location"), Some(location.as_str()));
    expect_error(duplicate, StatusCode::CONFLICT, &uuid).await;
    assert_eq!(log.handle.latest_checkpoint().unwrap().size, 2);

    // Read back by Location, by 80-digit entry ID, by index: the same entry, now proven
    // against the newer tree, with the same body bytes.
    let tree_id = http::tree_id(&key_id);
    for path in [
        location.clone(),
        format!("/api/v1/log/entries/{tree_id:016x}{uuid}"),
        format!("/api/v1/log/entries/{}", uuid.to_uppercase()),
        "/api/v1/log/entries?logIndex=0".to_owned(),
    ] {
        let response = log.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(content_type(&response), "application/json");
        let (read_uuid, read) = single_entry(&json_of(response).await);
        assert_eq!(read_uuid, uuid, "{path}");
        assert_eq!(read["verification"]["inclusionProof"]["treeSize"], 2);
        assert_eq!(verify_entry(&read_uuid, &read, &public_key, &key_id), body);
    }

    // The entry bundle holds the same bytes.
    let (status, bundle) = log.get_bytes("/tile/entries/000.p/2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(split_bundle(&bundle)[0], body);

    // entries/retrieve: by UUID, by proposed entry and by index, in Rekor's order (hash
    // lookups, then indexes); unknown ones are left out.
    let unknown = "ab".repeat(32);
    let query = serde_json::json!({
        "entryUUIDs": [second_uuid, unknown],
        "entries": [serde_json::from_slice::<Value>(&proposed).unwrap()],
        "logIndexes": [1, 0, 99],
    });
    let response = log
        .post_json("/api/v1/log/entries/retrieve", query.to_string())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let found = json_of(response).await;
    let found: Vec<String> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (uuid, entry) = single_entry(r);
            verify_entry(&uuid, &entry, &public_key, &key_id);
            uuid
        })
        .collect();
    assert_eq!(
        found,
        [
            second_uuid.clone(),
            uuid.clone(),
            second_uuid.clone(),
            uuid.clone()
        ]
    );

    // index/retrieve by artifact digest.
    for hash in [
        format!("sha256:{}", hex::encode(Sha256::digest(artifact))),
        hex::encode(Sha256::digest(artifact)).to_uppercase(),
    ] {
        let response = log
            .post_json("/api/v1/index/retrieve", format!(r#"{{"hash":"{hash}"}}"#))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(json_of(response).await, serde_json::json!([uuid]));
    }
    let response = log
        .post_json(
            "/api/v1/index/retrieve",
            format!(r#"{{"hash":"sha256:{}"}}"#, "00".repeat(32)),
        )
        .await;
    assert_eq!(json_of(response).await, serde_json::json!([]));

    // Not found: JSON 404s that say what is missing.
    expect_error(
        log.get(&format!("/api/v1/log/entries/{unknown}")).await,
        StatusCode::NOT_FOUND,
        &unknown,
    )
    .await;
    expect_error(
        log.get("/api/v1/log/entries?logIndex=2").await,
        StatusCode::NOT_FOUND,
        "index 2",
    )
    .await;
    expect_error(
        log.post_json("/api/v1/log", "{}").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "POST is not allowed on /api/v1/log",
    )
    .await;
    expect_error(
        log.get("/api/v1/nothing").await,
        StatusCode::NOT_FOUND,
        "/api/v1/nothing",
    )
    .await;

    log.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_tiles_bundles_and_proofs_verify_independently() {
    let log = Arc::new(TestLog::start().await);
    let signer = Arc::new(log.code_signer());
    let public_key = log.public_key;

    // One entry alone, so that a checkpoint of size 1 exists, then a burst.
    append_many(&log, &signer, 0, 1, 1).await;
    let (status, first_note) = log.get_bytes("/checkpoint").await;
    assert_eq!(status, StatusCode::OK);
    let first = verify_note(&first_note, &public_key);
    assert_eq!(first.size(), 1);
    append_many(&log, &signer, 1, 299, 30).await;
    log.handle.wait_for_size(300).await;

    // The checkpoint: text/plain, not cached, verified by signed_note.
    let response = log.get("/checkpoint").await;
    assert_eq!(content_type(&response), "text/plain; charset=utf-8");
    assert_eq!(header(&response, "cache-control"), Some("no-cache"));
    let note = response.bytes().await.unwrap().to_vec();
    let checkpoint = verify_note(&note, &public_key);
    let size = checkpoint.size();
    assert_eq!(size, 300);
    let root = *checkpoint.hash();

    // LogInfo agrees with it.
    let info = json_of(log.get("/api/v1/log").await).await;
    assert_eq!(info["treeSize"], size);
    assert_eq!(hash_of(&info["rootHash"]), root);
    assert_eq!(info["signedTreeHead"].as_str().unwrap().as_bytes(), note);
    assert_eq!(
        info["treeID"],
        http::tree_id(log.handle.key_id()).to_string()
    );

    // Every hash tile, authenticated by tlog_tiles against the checkpoint's root.
    let tiles = fetch_tiles(&log, size).await;
    let reader = TileHashReader::new(size, root, &tiles);
    assert_eq!(tlog_tiles::tree_hash(size, &reader).unwrap(), root);

    // Entry bundles: each entry hashes to its level-0 tile hash, and is the body the
    // entry API serves.
    let (status, full) = log.get_bytes("/tile/entries/000").await;
    assert_eq!(status, StatusCode::OK);
    let (status, partial) = log.get_bytes("/tile/entries/001.p/44").await;
    assert_eq!(status, StatusCode::OK);
    let entries: Vec<Vec<u8>> = split_bundle(&full)
        .into_iter()
        .chain(split_bundle(&partial))
        .collect();
    assert_eq!(entries.len(), 300);
    for (index, entry) in entries.iter().enumerate() {
        let tile = if index < 256 {
            &tiles.tiles[&(0, 0, 256)]
        } else {
            &tiles.tiles[&(0, 1, 44)]
        };
        let offset = (index % 256) * 32;
        assert_eq!(tlog_tiles::record_hash(entry).0, tile[offset..offset + 32]);
    }
    for index in [0u64, 1, 127, 255, 256, 299] {
        let response = json_of(
            log.get(&format!("/api/v1/log/entries?logIndex={index}"))
                .await,
        )
        .await;
        let (uuid, entry) = single_entry(&response);
        let body = verify_entry(&uuid, &entry, &public_key, log.handle.key_id());
        assert_eq!(body, entries[index as usize]);
        // The served inclusion proof is the one tlog_tiles derives from the tiles.
        let proof = hashes_of(&entry["verification"]["inclusionProof"]["hashes"]);
        assert_eq!(
            proof,
            tlog_tiles::prove_record(size, index, &reader).unwrap()
        );
    }

    // Consistency proofs: from the size-1 checkpoint to the current one, and between
    // arbitrary sizes, checked with tlog_tiles (roots from the authenticated tiles).
    let response = log.get("/api/v1/log/proof?firstSize=1").await;
    assert_eq!(response.status(), StatusCode::OK);
    let proof = json_of(response).await;
    assert_eq!(proof["treeSize"], size);
    assert_eq!(hash_of(&proof["rootHash"]), root);
    tlog_tiles::check_tree(&hashes_of(&proof["hashes"]), size, root, 1, *first.hash())
        .expect("consistency with the first checkpoint");
    for (a, b) in [
        (1u64, 2u64),
        (3, 7),
        (100, 256),
        (255, 257),
        (257, 299),
        (300, 300),
        (17, 300),
    ] {
        let proof = json_of(
            log.get(&format!(
                "/api/v1/log/proof?firstSize={a}&lastSize={b}&treeID={}",
                info["treeID"].as_str().unwrap()
            ))
            .await,
        )
        .await;
        let root_b = tlog_tiles::tree_hash(b, &reader).unwrap();
        let root_a = tlog_tiles::tree_hash(a, &reader).unwrap();
        assert_eq!(proof["treeSize"], b);
        assert_eq!(hash_of(&proof["rootHash"]), root_b, "{a}..{b}");
        let hashes = hashes_of(&proof["hashes"]);
        tlog_tiles::check_tree(&hashes, b, root_b, a, root_a).expect("consistency proof verifies");
        assert_eq!(hashes, tlog_tiles::prove_tree(b, a, &reader).unwrap());
    }

    // Tiles beyond the published tree, and partial widths no checkpoint had, are not
    // tiles of this log. C2SP: "Logs MUST serve partial tiles corresponding to tree
    // sizes for which a checkpoint was produced".
    let sizes: Vec<u64> = log
        .handle
        .store()
        .checkpoints(0..u64::MAX, 10_000)
        .unwrap()
        .iter()
        .map(|c| c.size)
        .collect();
    assert!(sizes.contains(&1) && sizes.contains(&300));
    for width in 1..=255u64 {
        let produced = sizes.contains(&(256 + width));
        for path in [
            format!("/tile/0/001.p/{width}"),
            format!("/tile/entries/001.p/{width}"),
        ] {
            let (status, data) = log.get_bytes(&path).await;
            if produced {
                assert_eq!(status, StatusCode::OK, "{path}");
                assert!(data.len() as u64 == width * 32 || path.contains("entries"));
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {sizes:?}");
            }
        }
    }
    // The size-1 checkpoint's partial tiles stay served although the tree moved on.
    assert_eq!(log.get("/tile/0/000.p/1").await.status(), StatusCode::OK);
    let (status, one) = log.get_bytes("/tile/entries/000.p/1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(split_bundle(&one), [entries[0].clone()]);
    for path in [
        "/tile/0/001",
        "/tile/entries/001",
        "/tile/0/002.p/1",
        "/tile/1/000",
        "/tile/2/000.p/1",
        "/tile/0/001.p/45",
    ] {
        let (status, text) = log.get_bytes(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(String::from_utf8(text).unwrap().contains("size 300"));
    }
    // Malformed tile paths: 400 naming the problem.
    for (path, needle) in [
        ("/tile/00/000", "level"),
        ("/tile/0/1", "index"),
        ("/tile/0/x000/001", "index"),
        ("/tile/0/000.p/256", "width"),
        ("/tile/0/000.p/0", "width"),
        ("/tile/entries/", "index"),
    ] {
        let (status, text) = log.get_bytes(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(needle), "{path}: {text}");
    }

    Arc::into_inner(log).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_refused_requests() {
    let log = TestLog::start_with(
        fast_settings(),
        HttpSettings {
            max_request_bytes: 8 * 1024,
        },
        None,
    )
    .await;
    let signer = log.code_signer();
    let good = String::from_utf8(hashedrekord(&signer, b"artifact")).unwrap();

    // 400: not JSON, an unknown kind, a bad field.
    expect_error(
        log.append("{not json").await,
        StatusCode::BAD_REQUEST,
        "JSON",
    )
    .await;
    let rekord = good.replace("hashedrekord", "rekord");
    expect_error(log.append(&rekord).await, StatusCode::BAD_REQUEST, "rekord").await;
    let digest = hex::encode(Sha256::digest(b"artifact"));
    let upper = good.replace(&digest, &digest.to_uppercase());
    expect_error(
        log.append(&upper).await,
        StatusCode::BAD_REQUEST,
        "spec.data.hash.value",
    )
    .await;

    // 415: the body must be declared as JSON (parameters allowed).
    expect_error(
        log.post(
            "/api/v1/log/entries",
            Some("text/plain"),
            good.clone().into_bytes(),
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "text/plain",
    )
    .await;
    expect_error(
        log.post("/api/v1/log/entries", None, good.clone().into_bytes())
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "application/json",
    )
    .await;

    // 413: over the configured limit, declared or chunked.
    let big = format!("{{\"kind\":\"{}\"}}", "x".repeat(9000));
    expect_error(
        log.append(&big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "8192",
    )
    .await;
    let (status, _) = raw_chunked_post(
        &log,
        &[
            big.as_bytes()[..4000].to_vec(),
            big.as_bytes()[4000..].to_vec(),
        ],
    )
    .await;
    assert_eq!(status, 413);

    // 422: well formed but refused — a certificate from another CA, a certificate
    // without the code-signing purpose, a signature over other bytes.
    expect_error(
        log.append(&hashedrekord(&foreign_signer(), b"artifact"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "certificate",
    )
    .await;
    expect_error(
        log.append(&hashedrekord(
            &log.signer_without_code_signing(),
            b"artifact",
        ))
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "certificate",
    )
    .await;
    expect_error(
        log.append(&hashedrekord_signed(&signer, b"artifact", b"other bytes"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature",
    )
    .await;

    // A body in several chunks is read whole.
    let bytes = good.as_bytes();
    let (status, response) = raw_chunked_post(
        &log,
        &[
            bytes[..10].to_vec(),
            bytes[10..500].to_vec(),
            bytes[500..].to_vec(),
        ],
    )
    .await;
    assert_eq!(status, 201, "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nlocation: /api/v1/log/entries/")
    );

    // Reads: bad UUIDs, indexes, sizes, tree IDs and queries are 400.
    let checks = [
        ("/api/v1/log/entries/xyz", "64 hex digits"),
        (
            &*format!("/api/v1/log/entries/{}", "g".repeat(64)),
            "hexadecimal",
        ),
        ("/api/v1/log/entries", "logIndex"),
        ("/api/v1/log/entries?logIndex=-1", "logIndex"),
        (
            "/api/v1/log/entries?logIndex=1&logIndex=2",
            "more than once",
        ),
        ("/api/v1/log/proof?firstSize=abc", "firstSize"),
        ("/api/v1/log/proof?firstSize=0&lastSize=1", "at least 1"),
        ("/api/v1/log/proof?firstSize=2&lastSize=1", "firstSize"),
        ("/api/v1/log/proof?firstSize=1&lastSize=5", "lastSize"),
        ("/api/v1/log/proof?firstSize=1&treeID=1", "treeID"),
        ("/api/v1/log/publicKey?treeID=1", "treeID"),
    ];
    for (path, needle) in checks {
        expect_error(log.get(path).await, StatusCode::BAD_REQUEST, needle).await;
    }
    // Search bodies.
    let eleven: Vec<u64> = (0..11).collect();
    expect_error(
        log.post_json(
            "/api/v1/log/entries/retrieve",
            serde_json::json!({"logIndexes": eleven}).to_string(),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit of 10",
    )
    .await;
    expect_error(
        log.post_json("/api/v1/log/entries/retrieve", r#"{"entryUUIDs":["nope"]}"#)
            .await,
        StatusCode::BAD_REQUEST,
        "entryUUIDs[0]",
    )
    .await;
    expect_error(
        log.post_json("/api/v1/index/retrieve", r#"{"email":"a@example.com"}"#)
            .await,
        StatusCode::BAD_REQUEST,
        "email",
    )
    .await;
    expect_error(
        log.post("/api/v1/index/retrieve", Some("text/plain"), b"{}".to_vec())
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "application/json",
    )
    .await;

    log.stop().await;
}

/// POSTs an entry with `Transfer-Encoding: chunked`, one write per chunk; returns the
/// status and the whole response text.
async fn raw_chunked_post(log: &TestLog, chunks: &[Vec<u8>]) -> (u16, String) {
    let address = log.base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let head = format!(
        "POST /api/v1/log/entries HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in chunks {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        // The server may answer 413 and close before the last chunk; that is the point.
        if stream.write_all(&frame).await.is_err() {
            break;
        }
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_and_overload_are_429_with_retry_after() {
    // Quota: one entry, then the identity must wait.
    let settings = LogSettings {
        quota: QuotaConfig::per_second(1, 1),
        ..fast_settings()
    };
    let log = TestLog::start_with(settings, HttpSettings::default(), None).await;
    let signer = log.code_signer();
    assert_eq!(
        log.append(&hashedrekord(&signer, b"one")).await.status(),
        StatusCode::CREATED
    );
    let refused = log.append(&hashedrekord(&signer, b"two")).await;
    let retry: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    expect_error(refused, StatusCode::TOO_MANY_REQUESTS, "quota").await;
    log.stop().await;

    // Overload: at most one entry may wait for durability. The first of a burst goes
    // to the store at once (group commit); the others arrive while its write is in
    // flight, so some of them must be refused at once rather than queued.
    let settings = LogSettings {
        sequencer: SequencerConfig {
            max_pending_entries: 1,
            ..SequencerConfig::default()
        },
        ..fast_settings()
    };
    let log = Arc::new(TestLog::start_with(settings, HttpSettings::default(), None).await);
    let signer = Arc::new(log.code_signer());
    let burst: Vec<_> = (0..128u32)
        .map(|i| {
            let (log, signer) = (Arc::clone(&log), Arc::clone(&signer));
            tokio::spawn(async move {
                let response = log
                    .append(&hashedrekord(&signer, format!("burst {i}").as_bytes()))
                    .await;
                let retry_after = header(&response, "retry-after").map(str::to_owned);
                (response.status(), retry_after)
            })
        })
        .collect();
    let mut created = 0;
    let mut refused = 0;
    for task in burst {
        match task.await.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (StatusCode::TOO_MANY_REQUESTS, retry_after) => {
                assert_eq!(retry_after.as_deref(), Some("1"));
                refused += 1;
            }
            (other, _) => panic!("unexpected status {other}"),
        }
    }
    assert!(
        created >= 1 && refused >= 1,
        "{created} created, {refused} refused"
    );
    let after = log.append(&hashedrekord(&signer, b"after the burst")).await;
    assert_eq!(after.status(), StatusCode::CREATED, "nothing stays pending");
    Arc::into_inner(log).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halted_log_serves_503() {
    // The mesh knows a checkpoint of size 5 for this log, but the store is empty (an old
    // backup): the log refuses to sign, and has nothing published to serve.
    let published = signed_checkpoint(5, [9; 32]);
    let log = TestLog::start_with(fast_settings(), HttpSettings::default(), Some(published)).await;
    let entry = hashedrekord(&log.code_signer(), b"artifact");
    expect_error(
        log.append(&entry).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "not accepting",
    )
    .await;
    expect_error(
        log.get("/api/v1/log").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "checkpoint",
    )
    .await;
    let (status, _) = log.get_bytes("/checkpoint").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = log.get_bytes("/tile/0/000.p/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The public key does not depend on the tree.
    assert_eq!(served_public_key(&log).await, note_signer().public_key());
    log.stop().await;
}
