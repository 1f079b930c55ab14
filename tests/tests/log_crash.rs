//! Crash consistency of the domain transparency log: a real `provmesh run` process is
//! appended to by concurrent writers over HTTP and killed with SIGKILL at a random
//! moment, restarted on the same data directory, and killed again, for
//! `PROVMESH_CRASH_CYCLES` cycles (default 10; the full run uses 100).
//!
//! A `201` is the log's promise that the entry is durable and under a signed checkpoint,
//! so after all the crashes, on a last restart:
//! - every acknowledged entry is in the log **at its acknowledged index**, with the body
//!   it was acknowledged with;
//! - every entry answered `409` on re-submission is in the log;
//! - no two checkpoints seen (in answers, or polled from `GET /checkpoint`) for one size
//!   differ, each verifies with the log's key (`<data>/log/log.vkey`), and each is
//!   consistent with the final tree (RFC 9162 consistency proof from
//!   `GET /api/v1/log/proof`);
//! - the node stops cleanly on SIGTERM and `provmesh log fsck` passes on its store.
//!
//! Requests cut off by a kill are sent again after the restart: a `201` then (the entry
//! was lost before it was durable, which is allowed: it was never acknowledged) and a
//! `409` (it was durable) are both correct answers.
//!
//! The kill delays come from a xorshift generator whose seed is printed first (shown
//! when the test fails); `PROVMESH_CRASH_SEED=<seed>` replays them.

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_node::bench::signing::{BenchCa, SignedEntry, Signer, random_digest};
use provmesh_protocol::checkpoint;
use provmesh_protocol::log::entry::LogEntryResponse;
use provmesh_protocol::merkle::{Hash, verify_consistency, verify_inclusion};
use provmesh_protocol::note::Verifier;
use provmesh_tests::command::wait_with_deadline;
use provmesh_tests::node_process::{NodeProcess, authority_config, toml_path};

const BIN: &str = env!("CARGO_BIN_EXE_provmesh-under-test");
const TRUST_DOMAIN: &str = "crash.example";
const WRITERS: usize = 8;
const DEFAULT_CYCLES: usize = 10;
/// The bound on every single wait: a start, a stop, a request, a writer's last answer.
const DEADLINE: Duration = Duration::from_secs(30);
/// The bound on `provmesh log fsck`, which re-hashes the whole store.
const FSCK_DEADLINE: Duration = Duration::from_secs(300);
/// The kill comes this many milliseconds after the writers start (inclusive range).
const KILL_AFTER_MS: (u64, u64) = (50, 400);
/// How often `GET /checkpoint` is polled while writers run.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// xorshift64 (Marsaglia 2003): enough to spread kill moments, and replayable.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn seed() -> u64 {
    if let Ok(text) = std::env::var("PROVMESH_CRASH_SEED") {
        return text.parse().expect("PROVMESH_CRASH_SEED is a u64");
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    // Never zero: xorshift stays at zero forever.
    (nanos as u64) | 1
}

/// Starts the node of `dir/provmesh.toml`, its output in `dir/<name>.log`, and waits
/// for its ready file.
fn start_node(dir: &Path, name: &str) -> NodeProcess {
    NodeProcess::start(
        Path::new(BIN),
        &dir.join("provmesh.toml"),
        dir,
        name,
        DEADLINE,
    )
}

/// An acknowledged entry.
struct Ack {
    entry: SignedEntry,
    index: u64,
    cycle: usize,
}

/// Everything observed over all cycles.
#[derive(Default)]
struct Seen {
    acks: Vec<Ack>,
    /// Entries answered 409 on re-submission: durable before the kill.
    durable: Vec<SignedEntry>,
    /// Entries whose request was cut off (or refused for now): to send again.
    uncertain: Vec<SignedEntry>,
    /// Every signed checkpoint note seen.
    checkpoints: BTreeSet<Vec<u8>>,
    /// Wrong answers seen live.
    failures: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

/// What one append request came to.
enum Outcome {
    Created {
        index: u64,
        checkpoint: Vec<u8>,
    },
    Duplicate,
    /// No answer, or an answer that says "not now" (429, 503): the entry may or may not
    /// be in the log; send it again later.
    CutOff,
    Wrong(String),
}

async fn submit(client: &reqwest::Client, base: &str, entry: &SignedEntry) -> Outcome {
    let response = client
        .post(format!("{base}/api/v1/log/entries"))
        .header("content-type", "application/json")
        .body(entry.json.clone())
        .send()
        .await;
    let Ok(response) = response else {
        return Outcome::CutOff;
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = response.bytes().await else {
        return Outcome::CutOff;
    };
    let uuid = hex::encode(entry.leaf_hash);
    match status {
        201 => match check_created(entry, &body) {
            Ok((index, checkpoint)) => Outcome::Created { index, checkpoint },
            Err(e) => Outcome::Wrong(format!("entry {uuid}: {e}")),
        },
        409 if location.as_deref().is_some_and(|l| l.ends_with(&uuid)) => Outcome::Duplicate,
        409 => Outcome::Wrong(format!(
            "entry {uuid}: 409 whose Location {location:?} is not the entry's"
        )),
        429 | 503 => Outcome::CutOff,
        other => Outcome::Wrong(format!(
            "entry {uuid}: status {other}: {}",
            String::from_utf8_lossy(&body)
        )),
    }
}

fn decode_hash(text: &str) -> Result<Hash, String> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).map_err(|e| format!("bad hash {text:?}: {e}"))?;
    Ok(hash)
}

/// Checks a `201` answer: keyed by the entry's UUID, the entry's canonical body, an
/// inclusion proof that verifies against the answer's root. Returns the index and the
/// checkpoint note.
fn check_created(entry: &SignedEntry, body: &[u8]) -> Result<(u64, Vec<u8>), String> {
    let response: LogEntryResponse =
        serde_json::from_slice(body).map_err(|e| format!("201 answer is not a LogEntry: {e}"))?;
    let (uuid, view) = single(response)?;
    if uuid != hex::encode(entry.leaf_hash) {
        return Err(format!("201 answer keyed {uuid}"));
    }
    if STANDARD.decode(&view.body).ok().as_ref() != Some(&entry.canonical_body) {
        return Err("201 answer with another body".into());
    }
    let proof = view
        .verification
        .and_then(|v| v.inclusion_proof)
        .ok_or("201 answer without an inclusion proof")?;
    let hashes = proof
        .hashes
        .iter()
        .map(|h| decode_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    let root = decode_hash(&proof.root_hash)?;
    if proof.log_index != view.log_index {
        return Err("201 answer whose proof is for another index".into());
    }
    verify_inclusion(
        view.log_index,
        proof.tree_size,
        &entry.leaf_hash,
        &hashes,
        &root,
    )
    .map_err(|e| format!("201 answer whose inclusion proof fails: {e}"))?;
    Ok((view.log_index, proof.checkpoint.into_bytes()))
}

fn single(
    response: LogEntryResponse,
) -> Result<(String, provmesh_protocol::log::entry::LogEntryView), String> {
    let mut members = response.0.into_iter();
    let first = members.next().ok_or("an answer with no entry")?;
    if members.next().is_some() {
        return Err("an answer with more than one entry".into());
    }
    Ok(first)
}

/// Records the outcome of sending `entry` (`resent`: after a restart, when a 409 means
/// the entry was durable before the kill).
fn record(seen: &Shared, entry: SignedEntry, outcome: Outcome, cycle: usize, resent: bool) {
    let mut seen = seen.lock().unwrap();
    match outcome {
        Outcome::Created { index, checkpoint } => {
            seen.checkpoints.insert(checkpoint);
            seen.acks.push(Ack {
                entry,
                index,
                cycle,
            });
        }
        Outcome::Duplicate if resent => seen.durable.push(entry),
        Outcome::Duplicate => seen.failures.push(format!(
            "cycle {cycle}: a new entry {} was answered 409",
            hex::encode(entry.leaf_hash)
        )),
        Outcome::CutOff => seen.uncertain.push(entry),
        Outcome::Wrong(e) => seen.failures.push(format!("cycle {cycle}: {e}")),
    }
}

/// Sends every uncertain entry again, one at a time.
async fn resubmit(client: &reqwest::Client, base: &str, seen: &Shared, cycle: usize) {
    let pending = std::mem::take(&mut seen.lock().unwrap().uncertain);
    for entry in pending {
        let outcome = submit(client, base, &entry).await;
        record(seen, entry, outcome, cycle, true);
    }
}

/// One writer: appends fresh entries until `stop`, or until the node stops answering.
async fn writer(
    client: reqwest::Client,
    base: String,
    signer: Arc<Signer>,
    seen: Shared,
    stop: Arc<AtomicBool>,
    cycle: usize,
) {
    while !stop.load(Ordering::SeqCst) {
        let entry = signer.signed_entry(random_digest().unwrap()).unwrap();
        let outcome = submit(&client, &base, &entry).await;
        let cut_off = matches!(outcome, Outcome::CutOff);
        record(&seen, entry, outcome, cycle, false);
        if cut_off {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Polls `GET /checkpoint` until `stop`.
async fn poll_checkpoints(
    client: reqwest::Client,
    base: String,
    seen: Shared,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        if let Ok(response) = client.get(format!("{base}/checkpoint")).send().await
            && response.status().as_u16() == 200
            && let Ok(body) = response.bytes().await
        {
            seen.lock().unwrap().checkpoints.insert(body.to_vec());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn write_config(dir: &Path, roots: &Path) {
    let config = authority_config(
        TRUST_DOMAIN,
        &dir.join("data"),
        &format!(
            "code_signing_roots = {roots}\n\
             batch_max_entries = 64\n\
             batch_max_delay = \"20ms\"\n\
             quota_per_second = 0\n",
            roots = toml_path(roots),
        ),
    );
    std::fs::write(dir.join("provmesh.toml"), config).unwrap();
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "{url}: status {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

async fn get_entry(client: &reqwest::Client, url: &str) -> Result<(String, Vec<u8>, u64), String> {
    let json = get_json(client, url).await?;
    let response: LogEntryResponse =
        serde_json::from_value(json).map_err(|e| format!("{url}: not a LogEntry: {e}"))?;
    let (uuid, view) = single(response)?;
    let body = STANDARD
        .decode(&view.body)
        .map_err(|_| format!("{url}: body is not base64"))?;
    Ok((uuid, body, view.log_index))
}

#[test]
fn acknowledged_entries_survive_kill_9() {
    let cycles: usize = std::env::var("PROVMESH_CRASH_CYCLES")
        .map(|c| c.parse().expect("PROVMESH_CRASH_CYCLES is a number"))
        .unwrap_or(DEFAULT_CYCLES);
    let seed = seed();
    // Printed first: libtest shows it with the failure.
    println!("log_crash: seed {seed} (replay with PROVMESH_CRASH_SEED={seed}), {cycles} cycles");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    runtime.block_on(crash_cycles(cycles, seed));
    println!(
        "log_crash: {cycles} cycles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn crash_cycles(cycles: usize, seed: u64) {
    let ctx = format!("(seed {seed})");
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let ca = BenchCa::generate(TRUST_DOMAIN).unwrap();
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, ca.root_pem()).unwrap();
    write_config(dir.path(), &roots);
    let signers: Vec<Arc<Signer>> = (0..WRITERS)
        .map(|i| {
            let id = format!("spiffe://{TRUST_DOMAIN}/writer/{i}");
            Arc::new(ca.issue_signer(&id, Duration::from_secs(3600)).unwrap())
        })
        .collect();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .unwrap();
    let seen: Shared = Arc::default();

    for cycle in 0..cycles {
        let mut node = start_node(dir.path(), &format!("cycle-{cycle}"));
        let base = node.url();
        resubmit(&client, &base, &seen, cycle).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for signer in &signers {
            tasks.spawn(writer(
                client.clone(),
                base.clone(),
                Arc::clone(signer),
                Arc::clone(&seen),
                Arc::clone(&stop),
                cycle,
            ));
        }
        tasks.spawn(poll_checkpoints(
            client.clone(),
            base.clone(),
            Arc::clone(&seen),
            Arc::clone(&stop),
        ));
        let delay = rng.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill();
        stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(DEADLINE, async {
            while let Some(joined) = tasks.join_next().await {
                joined.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("writers still running {DEADLINE:?} after the kill {ctx}"));
        let so_far = seen.lock().unwrap();
        assert!(
            so_far.failures.is_empty(),
            "wrong answers {ctx}:\n{}\nnode output:\n{}",
            so_far.failures.join("\n"),
            node.output()
        );
        eprintln!(
            "cycle {cycle}: killed after {delay} ms; {} acknowledged so far, {} cut off",
            so_far.acks.len(),
            so_far.uncertain.len()
        );
    }

    // Last restart: settle the cut-off entries, then check everything seen.
    let mut node = start_node(dir.path(), "final");
    let base = node.url();
    for _ in 0..20 {
        resubmit(&client, &base, &seen, cycles).await;
        if seen.lock().unwrap().uncertain.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.uncertain.is_empty(),
        "{} entries still unanswered after the last restart {ctx}",
        seen.uncertain.len()
    );
    assert!(
        seen.failures.is_empty(),
        "wrong answers {ctx}:\n{}",
        seen.failures.join("\n")
    );
    assert!(
        !seen.acks.is_empty(),
        "no entry was ever acknowledged {ctx}"
    );

    let vkey = std::fs::read_to_string(dir.path().join("data/log/log.vkey")).unwrap();
    let verifier = Verifier::from_vkey(vkey.trim()).unwrap();
    let origin = verifier.name().as_str().to_owned();
    let open = |note: &[u8]| {
        checkpoint::open(note, &origin, &verifier)
            .unwrap_or_else(|e| {
                panic!(
                    "checkpoint does not verify with the log key: {e} {ctx}\n{}",
                    String::from_utf8_lossy(note)
                )
            })
            .checkpoint
    };
    let final_note = client
        .get(format!("{base}/checkpoint"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let final_checkpoint = open(&final_note);
    let final_size = final_checkpoint.size();
    let final_root = *final_checkpoint.root_hash();

    // Every acknowledged entry is at its acknowledged index, with its body.
    let mut indexes = BTreeMap::new();
    for ack in &seen.acks {
        if let Some(other) = indexes.insert(ack.index, ack.entry.leaf_hash) {
            panic!(
                "two entries acknowledged at index {}: {} and {} {ctx}",
                ack.index,
                hex::encode(other),
                hex::encode(ack.entry.leaf_hash)
            );
        }
        assert!(
            ack.index < final_size,
            "entry acknowledged at index {} in cycle {}, but the log restarted with {final_size} \
             entries {ctx}",
            ack.index,
            ack.cycle
        );
        let url = format!("{base}/api/v1/log/entries?logIndex={}", ack.index);
        let (uuid, body, index) = get_entry(&client, &url).await.unwrap();
        assert_eq!(
            (uuid.as_str(), index),
            (hex::encode(ack.entry.leaf_hash).as_str(), ack.index),
            "index {} (acknowledged in cycle {}) holds another entry {ctx}",
            ack.index,
            ack.cycle
        );
        assert_eq!(
            body, ack.entry.canonical_body,
            "index {} body {ctx}",
            ack.index
        );
    }
    // Every entry answered 409 after a restart is in the log.
    for entry in &seen.durable {
        let uuid = hex::encode(entry.leaf_hash);
        let url = format!("{base}/api/v1/log/entries/{uuid}");
        let (found, body, _) = get_entry(&client, &url).await.unwrap();
        assert_eq!(found, uuid, "{ctx}");
        assert_eq!(body, entry.canonical_body, "entry {uuid} body {ctx}");
    }

    // Checkpoints: one root per size, each signed by the log, each a prefix of the final
    // tree.
    let mut roots_by_size: BTreeMap<u64, Hash> = BTreeMap::new();
    for note in &seen.checkpoints {
        let checkpoint = open(note);
        let (size, root) = (checkpoint.size(), *checkpoint.root_hash());
        if let Some(previous) = roots_by_size.insert(size, root) {
            assert_eq!(
                previous, root,
                "two different checkpoints for size {size} {ctx}"
            );
        }
    }
    for (&size, root) in &roots_by_size {
        assert!(
            size <= final_size,
            "a checkpoint of size {size} was published, but the log restarted with \
             {final_size} entries {ctx}"
        );
        let proof = if size == 0 || size == final_size {
            Vec::new()
        } else {
            let url = format!("{base}/api/v1/log/proof?firstSize={size}&lastSize={final_size}");
            let json = get_json(&client, &url).await.unwrap();
            json["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| decode_hash(h.as_str().unwrap()).unwrap())
                .collect()
        };
        verify_consistency(size, final_size, &proof, root, &final_root).unwrap_or_else(|e| {
            panic!("the checkpoint of size {size} is not a prefix of the final tree: {e} {ctx}")
        });
    }
    println!(
        "log_crash: {} acknowledged, {} durable on re-submission, {} checkpoints over {} sizes, \
         final size {final_size}",
        seen.acks.len(),
        seen.durable.len(),
        seen.checkpoints.len(),
        roots_by_size.len()
    );

    let status = node.terminate(DEADLINE);
    assert!(
        status.success(),
        "the node did not stop cleanly ({status}) {ctx}:\n{}",
        node.output()
    );
    // Output to a file: a pipe nobody reads while waiting could fill up and stall fsck.
    let fsck_output = dir.path().join("fsck.log");
    let file = std::fs::File::create(&fsck_output).unwrap();
    let mut fsck = Command::new(BIN)
        .args(["log", "fsck", "--data"])
        .arg(dir.path().join("data"))
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let status = wait_with_deadline(&mut fsck, "provmesh log fsck", FSCK_DEADLINE);
    let output = std::fs::read_to_string(&fsck_output).unwrap_or_default();
    assert!(status.success(), "fsck failed ({status}) {ctx}:\n{output}");
}
