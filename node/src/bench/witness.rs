//! `provmesh bench witness`: the cosigning throughput of one node's witness — for each
//! request, parse it, verify the log's checkpoint signature and the consistency proof
//! from the checkpoint cosigned before, store the new state durably (group-committed
//! with whatever else waits), and cosign.
//!
//! The bench runs the node's own witness (`crate::witness`, the thread that owns the
//! witness state and its redb store) in process and submits through its handle, without
//! HTTP in between. `--logs` logs, each with its key and a tree, are witnessed; for each,
//! `--checkpoints` signed checkpoints of growing size and their consistency proofs are
//! prepared before the clock starts. One submitter per log sends its checkpoints in
//! order (each must extend the one cosigned before), so up to `--logs` requests wait at
//! once. Every answer must be a cosignature line that verifies with the witness key over
//! that checkpoint, or the run fails and reports no figures.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::child::{ChildError, WorkDir};
use super::log::percentile_us;
use crate::witness::{self, WitnessedLogs};
use provmesh_protocol::checkpoint::Checkpoint;
use provmesh_protocol::cosignature::CosignatureSigner;
use provmesh_protocol::merkle::{MemoryHashStore, leaf_hash, prove_consistency, tree_hash};
use provmesh_protocol::note::{Ed25519Signer, KeyName, Note, Verifier};
use provmesh_protocol::witness::AddCheckpoint;

/// `provmesh bench witness`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchWitnessArgs {
    /// Logs witnessed, each submitting its checkpoints in order (the requests in flight).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub logs: u32,
    /// Checkpoints per log.
    #[arg(long, value_name = "K", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub checkpoints: u32,
    /// Leaves a log grows by between two checkpoints.
    #[arg(long, value_name = "L", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub leaves_per_checkpoint: u32,
    /// Keep the witness's store in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print exactly one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Why the bench failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchWitnessError {
    /// The work directory could not be made.
    #[error(transparent)]
    Dir(#[from] ChildError),
    /// The witness could not start.
    #[error("cannot start the witness: {0}")]
    Start(String),
    /// A fixture could not be built.
    #[error("cannot prepare the checkpoints: {0}")]
    Prepare(String),
    /// The witness refused or failed a request, or answered something that does not
    /// verify.
    #[error("checkpoint {size} of {origin}: {reason}")]
    Wrong {
        /// The log.
        origin: String,
        /// The checkpoint's size.
        size: u64,
        /// What happened.
        reason: String,
    },
}

/// What the bench measured.
#[derive(Debug, Clone, Serialize)]
pub struct WitnessBenchReport {
    /// Logs witnessed (requests in flight at most).
    pub logs: u32,
    /// Checkpoints cosigned.
    pub cosigns: u64,
    /// Seconds from the first request to the last answer.
    pub seconds: f64,
    /// Checkpoints cosigned per second.
    pub cosigns_per_sec: f64,
    /// Time from submitting a request to its answer, microseconds: 50th percentile.
    pub latency_p50_us: u64,
    /// … 99th percentile.
    pub latency_p99_us: u64,
    /// Leaves between two checkpoints of a log.
    pub leaves_per_checkpoint: u32,
    /// Hashes in the longest consistency proof sent.
    pub max_proof_hashes: usize,
}

impl WitnessBenchReport {
    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl std::fmt::Display for WitnessBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "witness             {} logs, {} checkpoints each {} leaves apart (proofs up to {} hashes)",
            self.logs, self.cosigns, self.leaves_per_checkpoint, self.max_proof_hashes
        )?;
        writeln!(
            f,
            "cosigned            {:.0} checkpoints/s ({} in {:.2} s)",
            self.cosigns_per_sec, self.cosigns, self.seconds
        )?;
        writeln!(
            f,
            "latency             p50 {:.2} ms, p99 {:.2} ms (submit to answer)",
            self.latency_p50_us as f64 / 1000.0,
            self.latency_p99_us as f64 / 1000.0
        )
    }
}

/// One prepared request: its body, and the checkpoint it carries.
struct Prepared {
    body: Vec<u8>,
    size: u64,
    note: Vec<u8>,
}

/// The checkpoints of one log, in order.
fn prepare_log(
    index: u32,
    checkpoints: u32,
    leaves: u32,
) -> Result<(String, Verifier, Vec<Prepared>), BenchWitnessError> {
    let prepare = |e: &dyn std::fmt::Display| BenchWitnessError::Prepare(e.to_string());
    let origin = format!("log-{index}.bench.example");
    let name = KeyName::new(origin.clone()).map_err(|e| prepare(&e))?;
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&index.to_be_bytes());
    let signer = Ed25519Signer::from_seed(name, &seed);
    let mut store = MemoryHashStore::new();
    let mut requests = Vec::with_capacity(checkpoints as usize);
    let mut old = 0u64;
    for _ in 0..checkpoints {
        for _ in 0..leaves {
            let i = store.size();
            let mut entry = index.to_be_bytes().to_vec();
            entry.extend_from_slice(&i.to_be_bytes());
            store.append(leaf_hash(&entry)).map_err(|e| prepare(&e))?;
        }
        let size = store.size();
        let root = tree_hash(size, &store).map_err(|e| prepare(&e))?;
        let note = Checkpoint::new(origin.clone(), size, root)
            .map_err(|e| prepare(&e))?
            .sign(&[&signer])
            .map_err(|e| prepare(&e))?
            .to_bytes();
        let proof = if old == 0 {
            Vec::new()
        } else {
            prove_consistency(old, size, &store).map_err(|e| prepare(&e))?
        };
        let body = AddCheckpoint {
            old_size: old,
            proof,
            checkpoint: note.clone(),
        }
        .to_bytes();
        requests.push(Prepared { body, size, note });
        old = size;
    }
    Ok((origin, signer.verifier().into(), requests))
}

/// Runs the bench; `progress` gets a line per phase.
pub async fn run(
    args: &BenchWitnessArgs,
    progress: &mut dyn Write,
) -> Result<WitnessBenchReport, BenchWitnessError> {
    let dir = match &args.dir {
        Some(dir) => WorkDir::keep(dir)?,
        None => WorkDir::temporary()?,
    };
    let _ = writeln!(
        progress,
        "preparing {} checkpoints of {} logs…",
        u64::from(args.logs) * u64::from(args.checkpoints),
        args.logs
    );
    let mut logs = Vec::new();
    let mut configured = Vec::new();
    let mut max_proof_hashes = 0;
    for index in 0..args.logs {
        let (origin, key, requests) =
            prepare_log(index, args.checkpoints, args.leaves_per_checkpoint)?;
        for request in &requests {
            if let Ok(parsed) = AddCheckpoint::parse(&request.body) {
                max_proof_hashes = max_proof_hashes.max(parsed.proof.len());
            }
        }
        configured.push((origin.clone(), key));
        logs.push((origin, requests));
    }
    let signer = CosignatureSigner::from_seed(
        KeyName::new("witness.bench.example")
            .map_err(|e| BenchWitnessError::Prepare(e.to_string()))?,
        &[7; 32],
    );
    let witness_key: Verifier = signer.verifier().into();
    let handle = witness::start(
        &dir.path,
        signer,
        WitnessedLogs {
            configured,
            federated: None,
        },
    )
    .map_err(|e| BenchWitnessError::Start(e.to_string()))?;

    let _ = writeln!(progress, "cosigning…");
    let started = Instant::now();
    let mut submitters = tokio::task::JoinSet::new();
    for (origin, requests) in logs {
        let handle = handle.clone();
        submitters.spawn(async move {
            let mut latencies = Vec::with_capacity(requests.len());
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                let sent = Instant::now();
                let answer = handle.add_checkpoint(request.body).await;
                latencies.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
                answers.push((request.size, request.note, answer));
            }
            (origin, latencies, answers)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = submitters.join_next().await {
        results.push(joined.map_err(|e| BenchWitnessError::Start(e.to_string()))?);
    }
    let seconds = started.elapsed().as_secs_f64();

    // Every answer must be a cosignature of that checkpoint by the witness key.
    let mut latencies = Vec::new();
    let mut cosigns = 0u64;
    for (origin, log_latencies, answers) in results {
        latencies.extend(log_latencies);
        for (size, note, answer) in answers {
            let wrong = |reason: String| BenchWitnessError::Wrong {
                origin: origin.clone(),
                size,
                reason,
            };
            let lines = answer.map_err(|e| wrong(e.to_string()))?;
            let mut cosigned = note;
            cosigned.extend_from_slice(lines.as_bytes());
            Note::parse(&cosigned)
                .map_err(|e| wrong(e.to_string()))?
                .verify_with(&witness_key)
                .map_err(|e| wrong(e.to_string()))?;
            cosigns += 1;
        }
    }
    latencies.sort_unstable();
    Ok(WitnessBenchReport {
        logs: args.logs,
        cosigns,
        seconds,
        cosigns_per_sec: cosigns as f64 / seconds.max(f64::MIN_POSITIVE),
        latency_p50_us: percentile_us(&latencies, 50.0),
        latency_p99_us: percentile_us(&latencies, 99.0),
        leaves_per_checkpoint: args.leaves_per_checkpoint,
        max_proof_hashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_cosigns_every_checkpoint() {
        let args = BenchWitnessArgs {
            logs: 3,
            checkpoints: 5,
            leaves_per_checkpoint: 3,
            dir: None,
            json: false,
        };
        let report = run(&args, &mut std::io::sink()).await.unwrap();
        assert_eq!(report.cosigns, 15);
        assert!(report.max_proof_hashes > 0);
    }
}
