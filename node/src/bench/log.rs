//! `provmesh bench log`: a load generator for the domain transparency log, driving its
//! Rekor v1 write API (`POST /api/v1/log/entries`) with concurrent writers of real,
//! signed `hashedrekord` entries, and measuring append throughput and integration
//! latency.
//!
//! What it measures is the log, not itself: every certificate, signature and request
//! body is prepared before the clock starts, and each writer keeps one HTTP/1.1
//! connection alive. A response to an append arrives only once the entry is durable
//! and covered by a signed checkpoint, so the time from sending the request to reading
//! the response is the entry's **integration latency**.
//!
//! - Closed loop (no `--rate`): each writer sends its next entry as soon as the previous
//!   one is answered; latency runs from send to response.
//! - Open loop (`--rate R`): entry `j` of the measured phase is due at `start + j / R`,
//!   whatever happened before; latency runs from that *scheduled* time, so a stalled log
//!   is charged for the requests that queued up behind the stall (no coordinated
//!   omission). `max_send_lag_ms` says how late a writer ever was: if it is large, add
//!   writers.
//!
//! It cannot report speed for wrong answers: every `201` must name the UUID of the entry
//! sent, a sample of responses (`--verify-every`) is checked in full after the run
//! (canonical body, inclusion proof against the response's checkpoint, checkpoint and
//! signed entry timestamp signatures when the log key is known), and the log's tree must
//! have grown by exactly the number of entries created. Any failure is an error, and no
//! figures are reported.
//!
//! Without `--url` the bench starts its own log as a child process (`provmesh run`)
//! with a fresh code-signing CA, quotas off and metrics off, in a temporary directory or
//! in `--dir` (kept, with the CA and the log's output in `node.log`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use provmesh_protocol::checkpoint;
use provmesh_protocol::log::entry::{LogEntryResponse, LogEntryView, VerificationView};
use provmesh_protocol::merkle::{Hash, leaf_hash, verify_inclusion};
use provmesh_protocol::note::{Ed25519Verifier, Note, Verifier};
use serde::Serialize;

use super::child::{ChildError, ChildNode, WorkDir, provmesh_exe, write_file};
use super::signing::{BenchCa, BenchCaError, SignError, Signer, random_digest};
use crate::config;

/// The trust domain of the CA and signers the bench generates.
pub const BENCH_TRUST_DOMAIN: &str = "bench.example";
/// Lifetime of the writers' certificates: longer than any reasonable run.
const SIGNER_VALIDITY: Duration = Duration::from_secs(12 * 3600);
/// The most error messages kept as examples for the report.
const MAX_EXAMPLES: usize = 5;

/// Arguments of `provmesh bench log`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct BenchLogArgs {
    /// Hammer the log at this base URL (e.g. `http://127.0.0.1:8080`) instead of starting
    /// one; its code-signing roots must include `--ca-cert`.
    #[arg(long, value_name = "URL", requires_all = ["ca_cert", "ca_key"], conflicts_with = "dir")]
    pub url: Option<String>,
    /// The code-signing CA certificate (PEM) to issue writer certificates under.
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// The CA's private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
    /// With `--url`: the log's verifier key (its `log.vkey`), to check checkpoint and
    /// signed-entry-timestamp signatures in the sampled responses.
    #[arg(long, value_name = "FILE", requires = "url")]
    pub log_vkey: Option<PathBuf>,
    /// Keep the bench's own log in this directory (CA, configuration, data, `node.log`)
    /// instead of a temporary one. A CA found there (`ca.pem`, `ca.key`) is reused.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Concurrent writers, each with its own signing identity and connection.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub writers: u32,
    /// Entries appended in the measured phase.
    #[arg(long, value_name = "M", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub entries: u64,
    /// Open loop: entries per second, paced across all writers (latency is measured from
    /// each entry's scheduled time). Without it, closed loop as fast as the log answers.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Entries appended before the measured phase, not measured.
    #[arg(long, value_name = "K", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub warmup: u64,
    /// Check every K-th response in full (body, inclusion proof, signatures).
    #[arg(long, value_name = "K", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub verify_every: u64,
    /// The bench's own log: commit a batch when it holds this many entries.
    #[arg(long, value_name = "N", conflicts_with = "url", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_max_entries: Option<u64>,
    /// The bench's own log: … or when its oldest entry has waited this long (e.g. "5ms").
    #[arg(long, value_name = "DURATION", conflicts_with = "url", value_parser = parse_positive_duration)]
    pub batch_max_delay: Option<Duration>,
    /// Give up on one request after this long (it then counts as an error).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub request_timeout: Duration,
    /// Print exactly one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of entries per second"))?;
    if rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0 {
        Ok(rate)
    } else {
        Err(format!(
            "the rate must be above 0 and at most 10000000, not {s}"
        ))
    }
}

pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match config::parse_duration(s) {
        Ok(d) if d.is_zero() => Err(format!("duration {s:?} must be positive")),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Why a benchmark run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The code-signing CA could not be generated or loaded.
    #[error(transparent)]
    Ca(#[from] BenchCaError),
    /// An entry could not be signed.
    #[error("cannot prepare the entries: {0}")]
    Sign(#[from] SignError),
    /// The log's verifier key is not a valid Ed25519 vkey.
    #[error("{}: not a log verifier key: {reason}", path.display())]
    Vkey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The bench's own log did not start, or failed.
    #[error("the bench's log: {0}")]
    Node(String),
    /// The bench's own log could not be set up.
    #[error("the bench's log: {0}")]
    Child(#[from] ChildError),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The log could not be read before or after the run.
    #[error("cannot read the log at {url}: {reason}")]
    Read {
        /// The URL asked.
        url: String,
        /// Why.
        reason: String,
    },
    /// Not a single entry was appended.
    #[error("no entry was appended; first errors:\n  {}", examples.join("\n  "))]
    NothingAppended {
        /// Example errors.
        examples: Vec<String>,
    },
    /// The log gave wrong answers: the figures would be meaningless.
    #[error("the log gave {count} wrong answer(s); no figures are reported. Examples:\n  {}", examples.join("\n  "))]
    WrongAnswers {
        /// How many checks failed.
        count: u64,
        /// Example failures.
        examples: Vec<String>,
    },
}

/// The result of a run: what `--json` prints, and what the table shows.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BenchReport {
    /// Entries created (201) per second of measured wall time.
    pub appends_per_sec: f64,
    /// Median integration latency of the created entries, milliseconds.
    pub p50_integration_ms: f64,
    /// 90th percentile.
    pub p90_integration_ms: f64,
    /// 99th percentile.
    pub p99_integration_ms: f64,
    /// 99.9th percentile.
    pub p999_integration_ms: f64,
    /// Largest integration latency.
    pub max_integration_ms: f64,
    /// Mean integration latency.
    pub mean_integration_ms: f64,
    /// Entries sent in the measured phase.
    pub entries: u64,
    /// Entries the log created (201) in the measured phase.
    pub created: u64,
    /// Concurrent writers.
    pub writers: u32,
    /// Open-loop rate (entries per second), or `null` for a closed loop.
    pub rate: Option<f64>,
    /// Measured requests that failed: `throttled + other_status + transport_errors`.
    pub errors: u64,
    /// 409 answers (the log said the entry was already logged; none is expected).
    pub duplicates: u64,
    /// 429 answers (overload or quota).
    pub throttled: u64,
    /// Answers with another status.
    pub other_status: u64,
    /// Requests without an answer (connection error or `--request-timeout`).
    pub transport_errors: u64,
    /// Example error messages.
    pub error_examples: Vec<String>,
    /// Measured wall time: from the start of the measured phase to its last answer.
    pub wall_seconds: f64,
    /// Open loop: the latest any request was sent after its scheduled time; a large value
    /// means the writers could not keep the rate.
    pub max_send_lag_ms: f64,
    /// Entries appended before measuring.
    pub warmup: u64,
    /// Responses checked in full.
    pub verified_samples: u64,
    /// Whether checkpoint and signed-entry-timestamp signatures were checked (the log
    /// key was known).
    pub signatures_verified: bool,
    /// Tree size before the warm-up and after the run.
    pub tree_size_before: u64,
    /// See `tree_size_before`.
    pub tree_size_after: u64,
    /// The log hammered: its URL.
    pub url: String,
    /// The bench's own log: its batch settings (`null` with `--url`).
    pub batch_max_entries: Option<u64>,
    /// See `batch_max_entries`, in milliseconds.
    pub batch_max_delay_ms: Option<f64>,
    /// The bench's own log: how it exited after SIGTERM (`null` with `--url`).
    pub log_exit: Option<String>,
}

impl BenchReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of numbers, strings and options always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.rate {
            Some(rate) => format!("open loop at {rate} entries/s"),
            None => "closed loop".to_owned(),
        };
        writeln!(f, "provmesh bench log: {}", self.url)?;
        writeln!(
            f,
            "  {} writers, {mode}, {} entries measured after {} warm-up",
            self.writers, self.entries, self.warmup
        )?;
        if let (Some(entries), Some(delay)) = (self.batch_max_entries, self.batch_max_delay_ms) {
            writeln!(f, "  log batches: {entries} entries or {delay} ms")?;
        }
        writeln!(f)?;
        writeln!(f, "  appends/s          {:>12.1}", self.appends_per_sec)?;
        writeln!(f, "  wall time          {:>12.3} s", self.wall_seconds)?;
        writeln!(
            f,
            "  integration p50    {:>12.2} ms",
            self.p50_integration_ms
        )?;
        writeln!(
            f,
            "  integration p90    {:>12.2} ms",
            self.p90_integration_ms
        )?;
        writeln!(
            f,
            "  integration p99    {:>12.2} ms",
            self.p99_integration_ms
        )?;
        writeln!(
            f,
            "  integration p99.9  {:>12.2} ms",
            self.p999_integration_ms
        )?;
        writeln!(
            f,
            "  integration max    {:>12.2} ms",
            self.max_integration_ms
        )?;
        writeln!(
            f,
            "  integration mean   {:>12.2} ms",
            self.mean_integration_ms
        )?;
        if self.rate.is_some() {
            writeln!(f, "  max send lag       {:>12.2} ms", self.max_send_lag_ms)?;
        }
        writeln!(f)?;
        writeln!(f, "  created (201)      {:>12}", self.created)?;
        writeln!(f, "  duplicates (409)   {:>12}", self.duplicates)?;
        writeln!(f, "  throttled (429)    {:>12}", self.throttled)?;
        writeln!(f, "  other status       {:>12}", self.other_status)?;
        writeln!(f, "  transport errors   {:>12}", self.transport_errors)?;
        writeln!(
            f,
            "  verified           {:>12} responses in full{}",
            self.verified_samples,
            if self.signatures_verified {
                ", with signatures"
            } else {
                " (signatures not checked: no --log-vkey)"
            }
        )?;
        writeln!(
            f,
            "  tree size          {:>12} -> {}",
            self.tree_size_before, self.tree_size_after
        )?;
        if let Some(exit) = &self.log_exit {
            writeln!(f, "  log exit           {exit:>12}")?;
        }
        for example in &self.error_examples {
            writeln!(f, "  error: {example}")?;
        }
        Ok(())
    }
}

/// One prepared request.
struct Prepared {
    /// Position in the whole run (warm-up first).
    seq: u64,
    json: Vec<u8>,
    leaf_hash: Hash,
    /// The canonical body, kept for the entries whose answer is checked in full.
    sampled_body: Option<Vec<u8>>,
}

/// A response kept for the full check.
struct Sample {
    leaf_hash: Hash,
    canonical_body: Vec<u8>,
    response: Vec<u8>,
}

/// What one writer saw.
#[derive(Default)]
struct Tally {
    sent: u64,
    created: u64,
    duplicates: u64,
    throttled: u64,
    other_status: u64,
    transport_errors: u64,
    wrong: u64,
    wrong_examples: Vec<String>,
    error_examples: Vec<String>,
    latencies_us: Vec<u64>,
    samples: Vec<Sample>,
    max_lag: Duration,
    last_answer: Option<Instant>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.created += other.created;
        self.duplicates += other.duplicates;
        self.throttled += other.throttled;
        self.other_status += other.other_status;
        self.transport_errors += other.transport_errors;
        self.wrong += other.wrong;
        keep_examples(&mut self.wrong_examples, other.wrong_examples);
        keep_examples(&mut self.error_examples, other.error_examples);
        self.latencies_us.extend(other.latencies_us);
        self.samples.extend(other.samples);
        self.max_lag = self.max_lag.max(other.max_lag);
        self.last_answer = self.last_answer.max(other.last_answer);
    }

    fn errors(&self) -> u64 {
        self.throttled + self.other_status + self.transport_errors
    }

    fn error(&mut self, message: String) {
        if self.error_examples.len() < MAX_EXAMPLES {
            self.error_examples.push(message);
        }
    }

    fn wrong_answer(&mut self, message: String) {
        self.wrong += 1;
        if self.wrong_examples.len() < MAX_EXAMPLES {
            self.wrong_examples.push(message);
        }
    }
}

fn keep_examples(into: &mut Vec<String>, from: Vec<String>) {
    for example in from {
        if into.len() >= MAX_EXAMPLES {
            break;
        }
        into.push(example);
    }
}

/// How a writer paces its requests.
#[derive(Clone, Copy)]
enum Pace {
    /// Send each request when the previous one is answered.
    Closed,
    /// Entry `seq` is due at `start + (seq - first_seq) / rate`.
    Open {
        start: tokio::time::Instant,
        first_seq: u64,
        rate: f64,
    },
}

/// Runs the benchmark described by `args`; progress and diagnostics go to `progress`.
pub async fn run(args: &BenchLogArgs, progress: &mut dyn Write) -> Result<BenchReport, BenchError> {
    let total = args.warmup + args.entries;
    let writers = usize::try_from(args.writers).unwrap_or(1).max(1);

    let mut own_dir = match (&args.url, &args.dir) {
        (Some(_), _) => None,
        (None, Some(dir)) => Some(WorkDir::keep(dir)?),
        (None, None) => Some(WorkDir::temporary()?),
    };
    let ca = load_or_generate_ca(args, own_dir.as_ref())?;

    let _ = writeln!(
        progress,
        "preparing {total} signed entries for {writers} writers…"
    );
    let started = Instant::now();
    let prepared = prepare(&ca, writers, args.warmup, total, args.verify_every)?;
    let _ = writeln!(
        progress,
        "prepared in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut node = None;
    let (url, verifier) = match (&args.url, own_dir.as_mut()) {
        (Some(url), _) => {
            let verifier = match &args.log_vkey {
                Some(path) => Some(read_verifier(path)?),
                None => None,
            };
            (url.trim_end_matches('/').to_owned(), verifier)
        }
        (None, Some(dir)) => {
            let (started, http) = start_own_log(dir, &ca, args, progress).await?;
            let url = format!("http://{http}");
            let verifier = read_verifier(&dir.path.join("data").join("log").join("log.vkey"))?;
            node = Some(started);
            (url, Some(verifier))
        }
        (None, None) => return Err(BenchError::Node("no directory for the log".into())),
    };

    let result = hammer(args, &url, verifier.as_ref(), prepared, writers, progress).await;
    let log_exit = match node.take() {
        Some(node) => Some(node.stop().await),
        None => None,
    };
    let mut report = result?;
    if let Some(exit) = log_exit {
        // The figures stand either way; an unclean stop is reported beside them.
        if !exit.clean {
            let _ = writeln!(progress, "warning: the bench's log: {}", exit.description);
        }
        report.log_exit = Some(exit.description);
        report.batch_max_entries = Some(
            args.batch_max_entries
                .unwrap_or(DEFAULT_BENCH_BATCH_ENTRIES),
        );
        report.batch_max_delay_ms = Some(
            args.batch_max_delay
                .unwrap_or(DEFAULT_BENCH_BATCH_DELAY)
                .as_secs_f64()
                * 1000.0,
        );
    }
    drop(own_dir);
    Ok(report)
}

/// The HTTP client: plain HTTP/1.1 with keep-alive, one idle connection per writer.
fn client(writers: usize, timeout: Duration) -> Result<reqwest::Client, BenchError> {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(writers)
        .tcp_nodelay(true)
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| BenchError::Client(e.to_string()))
}

/// Warm-up, measured phase, checks; returns the report without the own-log fields.
async fn hammer(
    args: &BenchLogArgs,
    url: &str,
    verifier: Option<&Verifier>,
    prepared: Vec<Vec<Prepared>>,
    writers: usize,
    progress: &mut dyn Write,
) -> Result<BenchReport, BenchError> {
    let client = client(writers, args.request_timeout)?;
    let size_before = tree_size(&client, url, verifier).await?;
    let append_url: Arc<str> = Arc::from(format!("{url}/api/v1/log/entries"));

    // Split each writer's entries into its warm-up and measured parts.
    let mut warmup = Vec::with_capacity(writers);
    let mut measured = Vec::with_capacity(writers);
    for entries in prepared {
        let (w, m): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.seq < args.warmup);
        warmup.push(w);
        measured.push(m);
    }

    let mut warm = Tally::default();
    if args.warmup > 0 {
        let _ = writeln!(progress, "warm-up: {} entries…", args.warmup);
        warm = drive(&client, &append_url, warmup, Pace::Closed, None, progress).await;
        let _ = writeln!(
            progress,
            "warm-up done: {} created, {} errors",
            warm.created,
            warm.errors() + warm.duplicates
        );
    }

    let _ = writeln!(
        progress,
        "measuring: {} entries, {} writers, {}…",
        args.entries,
        writers,
        match args.rate {
            Some(rate) => format!("open loop at {rate} entries/s"),
            None => "closed loop".to_owned(),
        }
    );
    // A short delay so every writer is spawned before the first entry is due.
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let pace = match args.rate {
        Some(rate) => Pace::Open {
            start,
            first_seq: args.warmup,
            rate,
        },
        None => Pace::Closed,
    };
    tokio::time::sleep_until(start).await;
    let mut tally = drive(
        &client,
        &append_url,
        measured,
        pace,
        Some(args.entries),
        progress,
    )
    .await;
    let wall = tally.last_answer.map_or(Duration::ZERO, |end| {
        end.saturating_duration_since(start.into_std())
    });

    // Checks, off the clock.
    let mut verified = 0u64;
    let samples = std::mem::take(&mut tally.samples);
    for sample in samples.iter().chain(&warm.samples) {
        match verify_sample(sample, verifier) {
            Ok(()) => verified += 1,
            Err(e) => tally.wrong_answer(e),
        }
    }
    tally.wrong += warm.wrong;
    keep_examples(&mut tally.wrong_examples, warm.wrong_examples);
    let size_after = tree_size(&client, url, verifier).await?;
    let created_total = warm.created + tally.created;
    if size_after != size_before + created_total {
        let message = format!(
            "the tree grew from {size_before} to {size_after}, but {created_total} entries were \
             created"
        );
        if args.url.is_some() {
            // Another client may be writing to a shared log.
            let _ = writeln!(progress, "warning: {message}");
        } else {
            tally.wrong_answer(message);
        }
    }
    if tally.wrong > 0 {
        return Err(BenchError::WrongAnswers {
            count: tally.wrong,
            examples: tally.wrong_examples,
        });
    }
    if tally.created == 0 {
        return Err(BenchError::NothingAppended {
            examples: tally.error_examples,
        });
    }

    let latencies = &mut tally.latencies_us;
    latencies.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let percentile = |p: f64| ms(percentile_us(latencies, p));
    let mean = if latencies.is_empty() {
        0.0
    } else {
        ms(latencies.iter().sum::<u64>()) / latencies.len() as f64
    };
    let wall_seconds = wall.as_secs_f64();
    Ok(BenchReport {
        appends_per_sec: if wall_seconds > 0.0 {
            tally.created as f64 / wall_seconds
        } else {
            0.0
        },
        p50_integration_ms: percentile(50.0),
        p90_integration_ms: percentile(90.0),
        p99_integration_ms: percentile(99.0),
        p999_integration_ms: percentile(99.9),
        max_integration_ms: latencies.last().copied().map_or(0.0, ms),
        mean_integration_ms: mean,
        entries: args.entries,
        created: tally.created,
        writers: args.writers,
        rate: args.rate,
        errors: tally.errors(),
        duplicates: tally.duplicates,
        throttled: tally.throttled,
        other_status: tally.other_status,
        transport_errors: tally.transport_errors,
        error_examples: tally.error_examples,
        wall_seconds,
        max_send_lag_ms: tally.max_lag.as_secs_f64() * 1000.0,
        warmup: args.warmup,
        verified_samples: verified,
        signatures_verified: verifier.is_some(),
        tree_size_before: size_before,
        tree_size_after: size_after,
        url: url.to_owned(),
        batch_max_entries: None,
        batch_max_delay_ms: None,
        log_exit: None,
    })
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile_us(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs one task per writer over its entries and merges what they saw; reports progress
/// about once a second.
async fn drive(
    client: &reqwest::Client,
    url: &Arc<str>,
    per_writer: Vec<Vec<Prepared>>,
    pace: Pace,
    expected: Option<u64>,
    progress: &mut dyn Write,
) -> Tally {
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for entries in per_writer {
        tasks.spawn(writer(
            client.clone(),
            Arc::clone(url),
            entries,
            pace,
            Arc::clone(&done),
        ));
    }
    let mut tally = Tally::default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let started = Instant::now();
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(writer)) => tally.merge(writer),
                Some(Err(e)) => {
                    tally.transport_errors += 1;
                    tally.error(format!("a writer task failed: {e}"));
                }
                None => break,
            },
            _ = ticker.tick(), if expected.is_some() => {
                let n = done.load(std::sync::atomic::Ordering::Relaxed);
                let _ = writeln!(
                    progress,
                    "  {n}/{} answered after {:.0} s",
                    expected.unwrap_or(0),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    tally
}

/// One writer: sends its entries one at a time over its connection.
async fn writer(
    client: reqwest::Client,
    url: Arc<str>,
    entries: Vec<Prepared>,
    pace: Pace,
    done: Arc<std::sync::atomic::AtomicU64>,
) -> Tally {
    let mut tally = Tally::default();
    for entry in entries {
        let due = match pace {
            Pace::Closed => None,
            Pace::Open {
                start,
                first_seq,
                rate,
            } => {
                let offset = (entry.seq - first_seq) as f64 / rate;
                let due = start + Duration::from_secs_f64(offset);
                tokio::time::sleep_until(due).await;
                Some(due.into_std())
            }
        };
        let sent = Instant::now();
        if let Some(due) = due {
            tally.max_lag = tally.max_lag.max(sent.saturating_duration_since(due));
        }
        tally.sent += 1;
        let response = client
            .post(&*url)
            .header("content-type", "application/json")
            .body(entry.json)
            .send()
            .await;
        let (status, body) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => (status, body),
                    Err(e) => {
                        tally.transport_errors += 1;
                        tally.error(format!("reading a {status} answer: {e}"));
                        continue;
                    }
                }
            }
            Err(e) => {
                tally.transport_errors += 1;
                tally.error(format!("sending: {e}"));
                continue;
            }
        };
        let answered = Instant::now();
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tally.last_answer = Some(answered);
        match status {
            201 => {
                // Latency from the scheduled time in an open loop (see the module docs).
                let latency = answered.saturating_duration_since(due.unwrap_or(sent));
                tally
                    .latencies_us
                    .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                tally.created += 1;
                // The answer is `{"<uuid>":{…}}`; checking the key is a byte comparison.
                let uuid = hex::encode(entry.leaf_hash);
                let key = body.get(2..2 + uuid.len());
                if body.first() != Some(&b'{') || key != Some(uuid.as_bytes()) {
                    tally.wrong_answer(format!(
                        "entry {}: the 201 answer is not keyed by the entry's UUID {uuid}: {}",
                        entry.seq,
                        excerpt(&body)
                    ));
                } else if let Some(canonical_body) = entry.sampled_body {
                    tally.samples.push(Sample {
                        leaf_hash: entry.leaf_hash,
                        canonical_body,
                        response: body.to_vec(),
                    });
                }
            }
            409 => {
                tally.duplicates += 1;
                tally.error(format!("entry {}: 409 {}", entry.seq, excerpt(&body)));
            }
            429 => {
                tally.throttled += 1;
                tally.error(format!("entry {}: 429 {}", entry.seq, excerpt(&body)));
            }
            other => {
                tally.other_status += 1;
                tally.error(format!("entry {}: {other} {}", entry.seq, excerpt(&body)));
            }
        }
    }
    tally
}

/// The start of a response body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().replace('\n', " ")
}

/// Checks one `201` answer in full against what was sent.
fn verify_sample(sample: &Sample, verifier: Option<&Verifier>) -> Result<(), String> {
    let uuid = hex::encode(sample.leaf_hash);
    let fail = |what: String| format!("entry {uuid}: {what}");
    let response: LogEntryResponse = serde_json::from_slice(&sample.response)
        .map_err(|e| fail(format!("the answer is not a LogEntry response: {e}")))?;
    let mut members = response.0.into_iter();
    let (key, view) = members
        .next()
        .ok_or_else(|| fail("the answer holds no entry".into()))?;
    if members.next().is_some() {
        return Err(fail("the answer holds more than one entry".into()));
    }
    if key != uuid {
        return Err(fail(format!("the answer is keyed {key}")));
    }
    let body = STANDARD
        .decode(&view.body)
        .map_err(|_| fail("the body is not base64".into()))?;
    if body != sample.canonical_body {
        return Err(fail(
            "the logged body is not the canonical body of the entry sent".into(),
        ));
    }
    if leaf_hash(&body) != sample.leaf_hash {
        return Err(fail("the body's leaf hash is not the UUID".into()));
    }
    let verification = view
        .verification
        .as_ref()
        .ok_or_else(|| fail("no verification member".into()))?;
    let proof = verification
        .inclusion_proof
        .as_ref()
        .ok_or_else(|| fail("no inclusion proof".into()))?;
    if proof.log_index != view.log_index {
        return Err(fail(format!(
            "the proof is for index {}, the entry is at {}",
            proof.log_index, view.log_index
        )));
    }
    let hashes = proof
        .hashes
        .iter()
        .map(|h| decode_hash(h))
        .collect::<Option<Vec<Hash>>>()
        .ok_or_else(|| fail("a proof hash is not 32 bytes of hex".into()))?;
    let root = decode_hash(&proof.root_hash).ok_or_else(|| fail("bad rootHash".into()))?;
    verify_inclusion(
        view.log_index,
        proof.tree_size,
        &sample.leaf_hash,
        &hashes,
        &root,
    )
    .map_err(|e| fail(format!("the inclusion proof does not verify: {e}")))?;
    // The checkpoint the proof leads to must commit to the same tree.
    let (size, checkpoint_root) = match verifier {
        Some(verifier) => {
            let opened = checkpoint::open(
                proof.checkpoint.as_bytes(),
                verifier.name().as_str(),
                verifier,
            )
            .map_err(|e| fail(format!("the checkpoint does not verify: {e}")))?;
            (opened.checkpoint.size(), *opened.checkpoint.root_hash())
        }
        None => {
            let note = Note::parse(proof.checkpoint.as_bytes())
                .map_err(|e| fail(format!("the checkpoint is not a note: {e}")))?;
            let parsed = checkpoint::Checkpoint::from_note(&note)
                .map_err(|e| fail(format!("the checkpoint does not parse: {e}")))?;
            (parsed.size(), *parsed.root_hash())
        }
    };
    if size != proof.tree_size || checkpoint_root != root {
        return Err(fail(format!(
            "the checkpoint (size {size}) is not the tree of the proof (size {})",
            proof.tree_size
        )));
    }
    if let Some(Verifier::Ed25519(key)) = verifier {
        verify_set(&view, verification, key).map_err(fail)?;
    }
    Ok(())
}

/// Checks the signed entry timestamp and the `logID` of an entry with the log's key.
fn verify_set(
    view: &LogEntryView,
    verification: &VerificationView,
    key: &Ed25519Verifier,
) -> Result<(), String> {
    if view.log_id != hex::encode(key.key_hash()) {
        return Err(format!("logID {} is not the log's key ID", view.log_id));
    }
    let set = verification
        .signed_entry_timestamp
        .as_ref()
        .ok_or("no signed entry timestamp")?;
    let set = STANDARD
        .decode(set)
        .map_err(|_| "the signed entry timestamp is not base64")?;
    let payload = view.set_payload().map_err(|e| e.to_string())?;
    let payload = String::from_utf8(payload).map_err(|_| "the SET payload is not UTF-8")?;
    key.verify(&payload, &set)
        .map_err(|e| format!("the signed entry timestamp does not verify: {e}"))
}

fn decode_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// The size of the log's newest checkpoint (`GET /checkpoint`), 0 before the first one.
async fn tree_size(
    client: &reqwest::Client,
    url: &str,
    verifier: Option<&Verifier>,
) -> Result<u64, BenchError> {
    let checkpoint_url = format!("{url}/checkpoint");
    let err = |reason: String| BenchError::Read {
        url: checkpoint_url.clone(),
        reason,
    };
    let response = client
        .get(&checkpoint_url)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| err(e.to_string()))?;
    match status {
        200 => {}
        // No checkpoint published yet: an empty log.
        404 | 503 => return Ok(0),
        other => return Err(err(format!("status {other}: {}", excerpt(&body)))),
    }
    let size = match verifier {
        Some(verifier) => checkpoint::open(&body, verifier.name().as_str(), verifier)
            .map_err(|e| err(format!("the checkpoint does not verify: {e}")))?
            .checkpoint
            .size(),
        None => {
            let note = Note::parse(&body).map_err(|e| err(e.to_string()))?;
            checkpoint::Checkpoint::from_note(&note)
                .map_err(|e| err(e.to_string()))?
                .size()
        }
    };
    Ok(size)
}

/// One writer's entries, with the writer's number.
type WriterEntries = (usize, Vec<Prepared>);

/// Issues one signer per writer and signs every entry, on all cores. Entry `seq` goes
/// to writer `seq % writers`, so the open-loop schedule spreads evenly.
fn prepare(
    ca: &BenchCa,
    writers: usize,
    warmup: u64,
    total: u64,
    verify_every: u64,
) -> Result<Vec<Vec<Prepared>>, BenchError> {
    let signers = (0..writers)
        .map(|i| {
            ca.issue_signer(
                &format!("spiffe://{BENCH_TRUST_DOMAIN}/writer/{i}"),
                SIGNER_VALIDITY,
            )
        })
        .collect::<Result<Vec<Signer>, _>>()?;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(writers);
    let signers = &signers;
    let results: Vec<Result<Vec<WriterEntries>, SignError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for w in (t..writers).step_by(threads) {
                        let mut entries = Vec::new();
                        let mut seq = w as u64;
                        while seq < total {
                            let signed = signers[w].signed_entry(random_digest()?)?;
                            // Sample in the measured phase by its own index, so the
                            // warm-up does not shift which entries are checked.
                            let sampled = seq
                                .checked_sub(warmup)
                                .unwrap_or(seq)
                                .is_multiple_of(verify_every);
                            entries.push(Prepared {
                                seq,
                                json: signed.json,
                                leaf_hash: signed.leaf_hash,
                                sampled_body: sampled.then_some(signed.canonical_body),
                            });
                            seq += writers as u64;
                        }
                        out.push((w, entries));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(SignError::Ecdsa)))
            .collect()
    });
    let mut per_writer: Vec<Vec<Prepared>> = (0..writers).map(|_| Vec::new()).collect();
    for result in results {
        for (w, entries) in result? {
            per_writer[w] = entries;
        }
    }
    Ok(per_writer)
}

fn read_file(path: &Path) -> Result<String, BenchError> {
    std::fs::read_to_string(path).map_err(|source| BenchError::File {
        path: path.to_owned(),
        source,
    })
}

fn read_verifier(path: &Path) -> Result<Verifier, BenchError> {
    let text = read_file(path)?;
    let verifier = Verifier::from_vkey(text.trim()).map_err(|e| BenchError::Vkey {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    match verifier {
        Verifier::Ed25519(_) => Ok(verifier),
        _ => Err(BenchError::Vkey {
            path: path.to_owned(),
            reason: "a domain log's key is an Ed25519 (type 0x01) key".into(),
        }),
    }
}

/// The CA from `--ca-cert`/`--ca-key`, or the one kept in `--dir`, or a new one (saved in
/// the work directory).
fn load_or_generate_ca(args: &BenchLogArgs, dir: Option<&WorkDir>) -> Result<BenchCa, BenchError> {
    if let (Some(cert), Some(key)) = (&args.ca_cert, &args.ca_key) {
        return Ok(BenchCa::from_pem(&read_file(cert)?, &read_file(key)?)?);
    }
    let Some(dir) = dir else {
        return Ok(BenchCa::generate(BENCH_TRUST_DOMAIN)?);
    };
    let (cert, key) = (dir.path.join("ca.pem"), dir.path.join("ca.key"));
    if cert.is_file() && key.is_file() {
        return Ok(BenchCa::from_pem(&read_file(&cert)?, &read_file(&key)?)?);
    }
    let ca = BenchCa::generate(BENCH_TRUST_DOMAIN)?;
    write_file(&cert, ca.root_pem())?;
    write_private(&key, ca.key_pem())?;
    Ok(ca)
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> Result<(), BenchError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|source| BenchError::File {
            path: path.to_owned(),
            source,
        })
}

/// Batch size of the bench's own log unless `--batch-max-entries` says otherwise: the
/// node's default.
const DEFAULT_BENCH_BATCH_ENTRIES: u64 = 256;
/// Batch delay of the bench's own log unless `--batch-max-delay` says otherwise: the
/// node's default.
const DEFAULT_BENCH_BATCH_DELAY: Duration = Duration::from_millis(250);

/// The configuration of the bench's own log.
fn node_config(dir: &Path, args: &BenchLogArgs) -> String {
    let quote = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
    let batch_entries = args
        .batch_max_entries
        .unwrap_or(DEFAULT_BENCH_BATCH_ENTRIES);
    let batch_delay = args.batch_max_delay.unwrap_or(DEFAULT_BENCH_BATCH_DELAY);
    format!(
        "# Written by `provmesh bench log`.\n\
         [node]\n\
         trust_domain = \"{BENCH_TRUST_DOMAIN}\"\n\
         data_dir = {data}\n\n\
         [log]\n\
         level = \"warn\"\n\n\
         [metrics]\n\
         enabled = false\n\n\
         [shutdown]\n\
         grace_period = \"10s\"\n\n\
         [http]\n\
         enabled = true\n\
         listen = \"127.0.0.1:0\"\n\n\
         # The bench measures the HTTP API; no gRPC listener on a fixed port.\n\
         [grpc]\n\
         enabled = false\n\n\
         [mesh]\n\
         enabled = false\n\n\
         [authority]\n\
         enabled = true\n\n\
         [authority.log]\n\
         code_signing_roots = {roots}\n\
         batch_max_entries = {batch_entries}\n\
         batch_max_delay = \"{delay}\"\n\
         quota_per_second = 0\n",
        data = quote(&dir.join("data")),
        roots = quote(&dir.join("ca.pem")),
        delay = config::format_duration(batch_delay),
    )
}

/// Starts the bench's own log in `dir` (its CA and configuration written there).
async fn start_own_log(
    dir: &WorkDir,
    ca: &BenchCa,
    args: &BenchLogArgs,
    progress: &mut dyn Write,
) -> Result<(ChildNode, SocketAddr), BenchError> {
    write_file(&dir.path.join("ca.pem"), ca.root_pem())?;
    write_file(&dir.path.join("node.toml"), &node_config(&dir.path, args))?;
    let node = ChildNode::start(&provmesh_exe()?, &dir.path, "node").await?;
    let _ = writeln!(
        progress,
        "started the log (pid {}) in {}",
        node.pid(),
        dir.path.display()
    );
    let http = node
        .address("http")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            BenchError::Node(format!(
                "the ready file has no HTTP address: {}",
                node.ready()
            ))
        })?;
    let _ = writeln!(progress, "the log is ready at http://{http}");
    Ok((node, http))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_us(&values, 50.0), 50);
        assert_eq!(percentile_us(&values, 90.0), 90);
        assert_eq!(percentile_us(&values, 99.0), 99);
        assert_eq!(percentile_us(&values, 99.9), 100);
        assert_eq!(percentile_us(&values, 100.0), 100);
        assert_eq!(percentile_us(&[7], 50.0), 7);
        assert_eq!(percentile_us(&[], 50.0), 0);
    }

    #[test]
    fn entries_are_spread_over_writers_and_sampled() {
        let ca = BenchCa::generate(BENCH_TRUST_DOMAIN).unwrap();
        let prepared = prepare(&ca, 3, 4, 14, 5).unwrap();
        assert_eq!(prepared.len(), 3);
        let seqs: Vec<Vec<u64>> = prepared
            .iter()
            .map(|w| w.iter().map(|e| e.seq).collect())
            .collect();
        assert_eq!(seqs[0], vec![0, 3, 6, 9, 12]);
        assert_eq!(seqs[1], vec![1, 4, 7, 10, 13]);
        assert_eq!(seqs[2], vec![2, 5, 8, 11]);
        let sampled: Vec<u64> = prepared
            .iter()
            .flatten()
            .filter(|e| e.sampled_body.is_some())
            .map(|e| e.seq)
            .collect();
        // Measured entries 4.. are sampled from their own start: 4 and 9; warm-up 0.
        let mut sampled = sampled;
        sampled.sort_unstable();
        assert_eq!(sampled, vec![0, 4, 9]);
        let mut hashes: Vec<Hash> = prepared.iter().flatten().map(|e| e.leaf_hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), 14, "every entry is unique");
    }

    #[test]
    fn the_own_log_config_is_valid() {
        let dir = Path::new("/tmp/provmesh-bench-config-test");
        let args = BenchLogArgs {
            url: None,
            ca_cert: None,
            ca_key: None,
            log_vkey: None,
            dir: None,
            writers: 4,
            entries: 10,
            rate: None,
            warmup: 0,
            verify_every: 1,
            batch_max_entries: Some(32),
            batch_max_delay: Some(Duration::from_millis(5)),
            request_timeout: Duration::from_secs(1),
            json: false,
        };
        let config = crate::config::Config::parse(&node_config(dir, &args)).unwrap();
        assert!(config.authority.enabled);
        assert!(!config.metrics.enabled);
        assert!(!config.grpc.enabled);
        assert_eq!(config.authority.log.quota_per_second, 0);
        assert_eq!(config.authority.log.batch_max_entries, 32);
        assert_eq!(
            config.authority.log.batch_max_delay,
            Duration::from_millis(5)
        );
        assert_eq!(config.node.data_dir, dir.join("data"));
    }
}
