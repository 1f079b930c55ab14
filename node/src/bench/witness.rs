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
//! that checkpoint, or the run fails and reports no figures; afterwards the witness must
//! still refuse a stale old size (409) and a corrupt proof (422) of a further log.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::child::{ChildError, WorkDir};
use super::log::percentile_us;
use crate::witness::{self, WitnessedLogs};
use provmesh_protocol::cosignature::CosignatureSigner;
use provmesh_protocol::note::{KeyName, Note, Verifier};
use provmesh_protocol::testing::TestLog;
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

/// Checks that the witness refuses a stale old size (409 with its size) and a proof with
/// a flipped byte (422), and then cosigns the honest request: `probe` are the first
/// requests of a log, `last` the one that extends them.
async fn refusals_hold(
    handle: &witness::WitnessHandle,
    probe: &[Prepared],
    last: &[u8],
) -> Result<(), BenchWitnessError> {
    use provmesh_protocol::witness::Refusal;
    let wrong = |reason: String| BenchWitnessError::Wrong {
        origin: "the probe log".to_owned(),
        size: 0,
        reason,
    };
    for request in probe {
        handle
            .add_checkpoint(request.body.clone())
            .await
            .map_err(|e| wrong(e.to_string()))?;
    }
    let Ok(mut stale) = AddCheckpoint::parse(last) else {
        return Err(wrong("the probe request does not parse".to_owned()));
    };
    let mut bad_proof = stale.clone();
    stale.old_size = 0;
    stale.proof.clear();
    match handle.add_checkpoint(stale.to_bytes()).await {
        Err(witness::AddError::Refused(Refusal::OldSizeMismatch { .. })) => {}
        other => return Err(wrong(format!("a stale old size was answered {other:?}"))),
    }
    if let Some(hash) = bad_proof.proof.first_mut() {
        hash[0] ^= 1;
        match handle.add_checkpoint(bad_proof.to_bytes()).await {
            Err(witness::AddError::Refused(Refusal::BadProof { .. })) => {}
            other => return Err(wrong(format!("a corrupt proof was answered {other:?}"))),
        }
    }
    handle
        .add_checkpoint(last.to_vec())
        .await
        .map(|_| ())
        .map_err(|e| wrong(e.to_string()))
}

/// The checkpoints of one log, in order, each `leaves` leaves after the one before.
fn prepare_log(
    index: u32,
    checkpoints: u32,
    leaves: u32,
) -> Result<(String, Verifier, Vec<Prepared>), BenchWitnessError> {
    let origin = format!("log-{index}.bench.example");
    // Keys repeat every 256 logs; their names, and so their key IDs, do not.
    let mut log = TestLog::new(&origin, index.to_le_bytes()[0]);
    let mut requests = Vec::with_capacity(checkpoints as usize);
    let mut old = 0u64;
    for step in 1..=u64::from(checkpoints) {
        let size = step * u64::from(leaves);
        let note = log.note(size);
        let body = AddCheckpoint {
            old_size: old,
            proof: log.proof(old, size),
            checkpoint: note.clone(),
        }
        .to_bytes();
        requests.push(Prepared { body, size, note });
        old = size;
    }
    Ok((origin, log.verifier(), requests))
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
    // A log outside the measured set, to check after the run that the witness still
    // refuses what it must: a witness that skipped its checks would be as fast.
    let (probe_origin, probe_key, mut probe) =
        prepare_log(args.logs, 3, args.leaves_per_checkpoint)?;
    configured.push((probe_origin, probe_key));
    let probe_last = probe.pop().map(|p| p.body).unwrap_or_default();
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
            mesh: None,
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
    refusals_hold(&handle, &probe, &probe_last).await?;
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
