//! `provmesh bench lookup`: concurrent gRPC clients asking a node
//! `provmesh.v1.ProvenanceService.GetProvenance` over real HTTP/2, saturated (lookups/s)
//! and paced (latency at a fixed rate, measured from each lookup's scheduled time, so a
//! stalled server is charged for the lookups queued behind the stall).
//!
//! The bench starts its own authority (`provmesh run`, a fresh code-signing CA, no
//! mesh) as a child process, logs `--artifacts` signed artifacts through its HTTP write
//! API, then looks them up at random. Every answer must carry exactly the artifact's one
//! record, signed by the bench's signer, and an `allowed` verdict; a wrong answer fails
//! the run without figures. The clients run in this process and share the machine with
//! the node: pin them apart for latency figures (`taskset -c 1 provmesh bench lookup
//! --node-cpus 0`, docs/lookup.md).
//!
//! A second phase measures **cross-domain first lookups**: two federated domains (an
//! authority each, dev identities, a real mesh), `--cross-domain` artifacts signed in
//! domain A through its CA and log the way a build signs, then each looked up once from
//! domain B's node — a digest neither node was asked for before, so every lookup goes
//! over the mesh to A's authority, which opens and checks the records, and B checks them
//! under A's accepted keys. Every answer must be the artifact's one record, allowed.

use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use provmesh_protocol::proto::provmesh::v1 as pb;

use super::child::{ChildError, ChildNode, WorkDir, provmesh_exe, write_file};
use super::signing::{BenchCa, BenchCaError, SignError, random_digest};
use crate::grpc::v1::provenance_service_client::ProvenanceServiceClient;

/// The trust domain of the bench's authority and signer.
const TRUST_DOMAIN: &str = "lookup.bench.example";

/// Arguments of `provmesh bench lookup`.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct BenchLookupArgs {
    /// Artifacts logged and looked up (one signature each).
    #[arg(long, default_value_t = 64)]
    pub artifacts: u32,
    /// Concurrent clients, each with its own HTTP/2 connection.
    #[arg(long, default_value_t = 32)]
    pub clients: u32,
    /// How long the saturated phase runs.
    #[arg(long, default_value = "10s", value_parser = crate::config::parse_duration)]
    pub duration: Duration,
    /// The rate of the paced phase, lookups/s (0: no paced phase).
    #[arg(long, default_value_t = 20_000)]
    pub rate: u32,
    /// How long the paced phase runs.
    #[arg(long, default_value = "5s", value_parser = crate::config::parse_duration)]
    pub paced_duration: Duration,
    /// Artifacts signed in one domain and each looked up once from another (0: no
    /// cross-domain phase).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub cross_domain: u32,
    /// Run the bench's nodes on these CPUs (`taskset -c` list, e.g. `0`); run the bench
    /// itself on others (`taskset -c 1 provmesh bench lookup --node-cpus 0`).
    #[arg(long, value_name = "LIST")]
    pub node_cpus: Option<String>,
    /// Keep the authority's files (and its output, `node.log`) in DIR.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a report.
    #[arg(long)]
    pub json: bool,
}

/// Why the bench failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchLookupError {
    /// The authority could not be started.
    #[error(transparent)]
    Child(#[from] ChildError),
    /// The CA could not be made.
    #[error(transparent)]
    Ca(#[from] BenchCaError),
    /// An entry could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The node misbehaved or answered wrongly.
    #[error("{0}")]
    Node(String),
    /// The federation of the cross-domain phase failed.
    #[error(transparent)]
    Mesh(#[from] super::mesh::BenchMeshError),
}

/// What the bench measured.
#[derive(Debug, Clone)]
pub struct LookupBenchReport {
    /// Artifacts looked up.
    pub artifacts: u32,
    /// Concurrent clients.
    pub clients: u32,
    /// Lookups answered in the saturated phase.
    pub lookups: u64,
    /// Saturated throughput.
    pub lookups_per_sec: f64,
    /// Saturated latency, p50 and p99, ms.
    pub saturated_p50_ms: f64,
    /// See `saturated_p50_ms`.
    pub saturated_p99_ms: f64,
    /// The paced phase's rate (0: none).
    pub rate: u32,
    /// Paced latency from the scheduled time, p50 and p99, ms.
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// The largest delay in sending a paced lookup, ms: large means too few clients.
    pub max_send_lag_ms: f64,
    /// Cross-domain first lookups measured (0: none).
    pub cross_domain_lookups: u32,
    /// Their latency, p50, p99 and max, ms.
    pub cross_domain_p50_ms: f64,
    /// See `cross_domain_p50_ms`.
    pub cross_domain_p99_ms: f64,
    /// See `cross_domain_p50_ms`.
    pub cross_domain_max_ms: f64,
    /// Whether the nodes ran on CPUs of their own (`--node-cpus`).
    pub pinned: bool,
    /// Admission review of a Pod with 3 images never looked up, p50 and p99, ms.
    pub admission_uncached_p50_ms: f64,
    /// See `admission_uncached_p50_ms`.
    pub admission_uncached_p99_ms: f64,
    /// The same reviews again, answers cached, p50 and p99, ms.
    pub admission_cached_p50_ms: f64,
    /// See `admission_cached_p50_ms`.
    pub admission_cached_p99_ms: f64,
}

impl LookupBenchReport {
    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "artifacts": self.artifacts,
            "clients": self.clients,
            "lookups": self.lookups,
            "lookups_per_sec": self.lookups_per_sec,
            "saturated_p50_ms": self.saturated_p50_ms,
            "saturated_p99_ms": self.saturated_p99_ms,
            "rate": self.rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "max_send_lag_ms": self.max_send_lag_ms,
            "cross_domain_lookups": self.cross_domain_lookups,
            "cross_domain_p50_ms": self.cross_domain_p50_ms,
            "cross_domain_p99_ms": self.cross_domain_p99_ms,
            "cross_domain_max_ms": self.cross_domain_max_ms,
            "pinned": self.pinned,
            "admission_uncached_p50_ms": self.admission_uncached_p50_ms,
            "admission_uncached_p99_ms": self.admission_uncached_p99_ms,
            "admission_cached_p50_ms": self.admission_cached_p50_ms,
            "admission_cached_p99_ms": self.admission_cached_p99_ms,
        })
        .to_string()
    }
}

impl fmt::Display for LookupBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "saturated: {:.0} lookups/s ({} lookups, {} clients, {} artifacts), p50 {:.2} ms, p99 {:.2} ms",
            self.lookups_per_sec,
            self.lookups,
            self.clients,
            self.artifacts,
            self.saturated_p50_ms,
            self.saturated_p99_ms
        )?;
        if self.rate > 0 {
            writeln!(
                f,
                "paced at {}/s: p50 {:.2} ms, p99 {:.2} ms (max send lag {:.2} ms)",
                self.rate, self.p50_ms, self.p99_ms, self.max_send_lag_ms
            )?;
        }
        if self.cross_domain_lookups > 0 {
            writeln!(
                f,
                "cross-domain first lookups: {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                self.cross_domain_lookups,
                self.cross_domain_p50_ms,
                self.cross_domain_p99_ms,
                self.cross_domain_max_ms
            )?;
        }
        writeln!(
            f,
            "admission, a Pod of 3 images: uncached p50 {:.2} ms, p99 {:.2} ms; cached p50 {:.2} ms, p99 {:.2} ms",
            self.admission_uncached_p50_ms,
            self.admission_uncached_p99_ms,
            self.admission_cached_p50_ms,
            self.admission_cached_p99_ms
        )?;
        if self.pinned {
            writeln!(f, "the nodes ran on CPUs of their own (--node-cpus)")?;
        }
        Ok(())
    }
}

fn node_config(dir: &std::path::Path) -> String {
    let quote = |p: &std::path::Path| toml::Value::String(p.display().to_string()).to_string();
    format!(
        "# Written by `provmesh bench lookup`.\n\
         [node]\n\
         trust_domain = \"{TRUST_DOMAIN}\"\n\
         data_dir = {data}\n\n\
         [log]\n\
         level = \"warn\"\n\n\
         [metrics]\n\
         enabled = false\n\n\
         [http]\n\
         listen = \"127.0.0.1:0\"\n\n\
         [grpc]\n\
         listen = \"127.0.0.1:0\"\n\n\
         [mesh]\n\
         enabled = false\n\n\
         [admission]\n\
         enabled = true\n\n\
         [authority]\n\
         enabled = true\n\n\
         [authority.log]\n\
         code_signing_roots = {roots}\n\
         batch_max_delay = \"5ms\"\n\
         quota_per_second = 0\n",
        data = quote(&dir.join("data")),
        roots = quote(&dir.join("ca.pem")),
    )
}

/// Nearest-rank percentile of sorted microseconds, in ms.
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us[rank.clamp(1, sorted_us.len()) - 1] as f64 / 1000.0
}

/// Logs `count` new artifacts (one signature each) through the node's HTTP write API;
/// returns their digests (`sha256:<hex>`).
async fn log_artifacts(
    client: &reqwest::Client,
    http: &str,
    signer: &super::signing::Signer,
    count: u32,
) -> Result<Vec<String>, BenchLookupError> {
    let mut digests = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let digest = random_digest()?;
        let response = client
            .post(format!("http://{http}/api/v1/log/entries"))
            .header("content-type", "application/json")
            .body(signer.hashedrekord(digest)?)
            .send()
            .await
            .map_err(|e| BenchLookupError::Node(format!("cannot log an artifact: {e}")))?;
        if response.status() != reqwest::StatusCode::CREATED {
            return Err(BenchLookupError::Node(format!(
                "logging an artifact: HTTP {}",
                response.status()
            )));
        }
        digests.push(format!("sha256:{}", hex::encode(digest)));
    }
    Ok(digests)
}

/// How many Pods the admission phase reviews (three images each), first uncached, then
/// again cached.
const ADMISSION_PODS: u32 = 100;

/// An AdmissionReview of a Pod running `images` (digests `sha256:<hex>`).
fn pod_review(uid: u32, images: &[String]) -> String {
    let containers: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(i, digest)| {
            serde_json::json!({"name": format!("c{i}"), "image": format!("registry.example/app{i}@{digest}")})
        })
        .collect();
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("bench-{uid}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "object": {"spec": {"containers": containers}},
        }
    })
    .to_string()
}

/// The admission phase: [`ADMISSION_PODS`] Pods of three freshly logged images each,
/// reviewed one after another over HTTP, first with answers the node never computed
/// (uncached), then again (cached). Every review must be allowed. Latencies in µs.
async fn admission(
    client: &reqwest::Client,
    http: &str,
    signer: &super::signing::Signer,
) -> Result<(Vec<u64>, Vec<u64>), BenchLookupError> {
    let digests = log_artifacts(client, http, signer, ADMISSION_PODS * 3).await?;
    let reviews: Vec<String> = digests
        .chunks(3)
        .zip(0..)
        .map(|(images, uid)| pod_review(uid, images))
        .collect();
    let mut phases = Vec::new();
    for _ in 0..2 {
        let mut latencies = Vec::with_capacity(reviews.len());
        for review in &reviews {
            let sent = Instant::now();
            let response = client
                .post(format!("http://{http}{}", crate::admission::PATH))
                .header("content-type", "application/json")
                .body(review.clone())
                .send()
                .await
                .map_err(|e| BenchLookupError::Node(format!("admission: {e}")))?;
            let status = response.status();
            let answer = response
                .text()
                .await
                .map_err(|e| BenchLookupError::Node(format!("admission: {e}")))?;
            latencies.push(sent.elapsed().as_micros() as u64);
            let allowed = serde_json::from_str::<serde_json::Value>(&answer)
                .is_ok_and(|a| a["response"]["allowed"] == true);
            if status != reqwest::StatusCode::OK || !allowed {
                return Err(BenchLookupError::Node(format!(
                    "admission: HTTP {status}, not allowed: {answer}"
                )));
            }
        }
        latencies.sort_unstable();
        phases.push(latencies);
    }
    let cached = phases.pop().unwrap_or_default();
    let uncached = phases.pop().unwrap_or_default();
    Ok((uncached, cached))
}

/// Checks one answer: the artifact's one record, by the bench's signer, allowed.
fn check(answer: &pb::GetProvenanceResponse, digest: &str) -> Result<(), String> {
    let allowed = answer.verdict.as_ref().is_some_and(|v| v.allowed);
    match answer.records.as_slice() {
        [record] if allowed && answer.digest == digest && record.kind == "hashedrekord" => Ok(()),
        _ => Err(format!(
            "wrong answer for {digest}: {} records, allowed {allowed}",
            answer.records.len()
        )),
    }
}

/// Runs the bench (see the module documentation).
pub async fn run(
    args: &BenchLookupArgs,
    progress: &mut dyn Write,
) -> Result<LookupBenchReport, BenchLookupError> {
    let dir = match &args.dir {
        Some(dir) => WorkDir::keep(dir)?,
        None => WorkDir::temporary()?,
    };
    let ca = BenchCa::generate(TRUST_DOMAIN)?;
    write_file(&dir.path.join("ca.pem"), ca.root_pem())?;
    write_file(&dir.path.join("node.toml"), &node_config(&dir.path))?;
    let exe = provmesh_exe()?;
    let node = ChildNode::start_on(&exe, &dir.path, "node", args.node_cpus.as_deref()).await?;
    let result = measure(args, &ca, &node, progress).await;
    let exit = node.stop().await;
    if !exit.clean {
        let _ = writeln!(progress, "warning: the bench's node: {}", exit.description);
    }
    let mut report = result?;
    if args.cross_domain > 0 {
        let dir = match &args.dir {
            Some(dir) => WorkDir::keep(&dir.join("cross-domain"))?,
            None => WorkDir::temporary()?,
        };
        let mut latencies = cross_domain(args, &exe, &dir.path, progress).await?;
        latencies.sort_unstable();
        report.cross_domain_lookups = u32::try_from(latencies.len()).unwrap_or(u32::MAX);
        report.cross_domain_p50_ms = percentile_ms(&latencies, 50.0);
        report.cross_domain_p99_ms = percentile_ms(&latencies, 99.0);
        report.cross_domain_max_ms = latencies.last().map_or(0.0, |us| *us as f64 / 1000.0);
    }
    Ok(report)
}

/// How long the cross-domain federation may take to form, and a first record to be
/// found over it.
const FEDERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// How many artifacts the cross-domain phase signs at once.
const SIGNING_CONCURRENCY: usize = 16;

/// The cross-domain phase (see the module documentation): the latency of each first
/// lookup, microseconds.
async fn cross_domain(
    args: &BenchLookupArgs,
    exe: &std::path::Path,
    dir: &std::path::Path,
    progress: &mut dyn Write,
) -> Result<Vec<u64>, BenchLookupError> {
    use super::mesh::{self, domain_name, make_dev_ca, node_config};
    let (a, b) = (domain_name(0), domain_name(1));
    let mut federation = Vec::new();
    for domain in [&a, &b] {
        // The bench configuration names a roots file; the domains sign through their CAs.
        let ca = BenchCa::generate(domain)?;
        write_file(&dir.join(format!("{domain}-ca.pem")), ca.root_pem())?;
        let bundle = make_dev_ca(exe, dir, &format!("{domain}-authority"), domain)?;
        federation.push((domain.clone(), bundle));
    }
    let anti_entropy = Duration::from_secs(1);
    let mut nodes = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    for domain in [&a, &b] {
        let name = format!("{domain}-authority");
        let config = node_config(
            dir,
            &name,
            domain,
            None,
            &bootstrap,
            &federation,
            anti_entropy,
        );
        write_file(&dir.join(format!("{name}.toml")), &config)?;
        let node = mesh::start(exe, dir, &name, domain).await?;
        if let Some(address) = node.node.ready()["mesh"][0].as_str() {
            bootstrap.push(address.to_owned());
        }
        nodes.push(node);
    }
    let result = sign_and_look_up(args, dir, &a, &mut nodes, progress).await;
    for node in nodes {
        let exit = node.node.stop().await;
        if !exit.clean {
            let _ = writeln!(
                progress,
                "warning: a cross-domain node: {}",
                exit.description
            );
        }
    }
    result
}

async fn sign_and_look_up(
    args: &BenchLookupArgs,
    dir: &std::path::Path,
    signing_domain: &str,
    nodes: &mut [super::mesh::BenchNode],
    progress: &mut dyn Write,
) -> Result<Vec<u64>, BenchLookupError> {
    use crate::signing::{SignOptions, TokenSource, sign_file};
    let failed = |what: String| BenchLookupError::Node(what);
    let address = |node: &super::mesh::BenchNode, key: &str| {
        node.node
            .address(key)
            .map(str::to_owned)
            .ok_or_else(|| failed(format!("{} has no {key} address", node.node.name())))
    };
    // Domain B's node accepts domain A's record.
    let deadline = Instant::now() + FEDERATION_TIMEOUT;
    let consumer = nodes
        .last_mut()
        .ok_or_else(|| failed("no consumer node".into()))?;
    loop {
        let status = super::mesh::status(consumer).await?;
        if status
            .domains
            .iter()
            .any(|d| d.trust_domain == signing_domain && d.record_sequence >= 1)
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(failed(format!(
                "{} did not accept {signing_domain} within {FEDERATION_TIMEOUT:?}",
                consumer.node.name()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let consumer_grpc = address(consumer, "grpc")?;
    let signer = nodes
        .first()
        .ok_or_else(|| failed("no signing node".into()))?;
    let signer_http = address(signer, "http")?;

    // A build of domain A signs each artifact through A's CA and log.
    let config = crate::config::Config::load(&dir.join(format!("{signing_domain}-authority.toml")))
        .map_err(|e| failed(e.to_string()))?;
    let identity = provmesh_protocol::spiffe::SpiffeId::parse(&format!(
        "spiffe://{signing_domain}/bench/builder"
    ))
    .map_err(|e| failed(e.to_string()))?;
    let token = TokenSource::Node {
        config: Box::new(config),
        spiffe_id: Some(identity),
    }
    .obtain()
    .await
    .map_err(|e| failed(e.to_string()))?;
    let options = SignOptions::new(format!("http://{signer_http}"), TokenSource::Literal(token));
    let count = args.cross_domain as usize;
    let mut files = Vec::with_capacity(count + 1);
    for i in 0..=count {
        let file = dir.join(format!("artifact-{i}"));
        write_file(&file, &format!("{i} {}\n", hex::encode(random_digest()?)))?;
        files.push(file);
    }
    // Builds sign concurrently, as a busy domain's do: the log batches their entries.
    let signed: Vec<Result<(), String>> = futures::stream::iter(files.iter().enumerate())
        .map(|(i, file)| {
            let options = &options;
            async move {
                sign_file(options, file, &file.with_extension("sigstore.json"))
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("signing artifact {i}: {e}"))
            }
        })
        .buffered(SIGNING_CONCURRENCY)
        .collect()
        .await;
    signed
        .into_iter()
        .collect::<Result<Vec<()>, String>>()
        .map_err(failed)?;
    let mut digests = Vec::with_capacity(files.len());
    for file in &files {
        let digest = crate::signing::sign::sha256_file(file).map_err(|e| failed(e.to_string()))?;
        digests.push(format!("sha256:{}", hex::encode(digest)));
    }
    let _ = writeln!(
        progress,
        "cross-domain: signed {count} artifacts in {signing_domain}; looking each up once from {}",
        nodes.last().map_or("", |n| n.node.name())
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{consumer_grpc}"))
        .map_err(|e| failed(e.to_string()))?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| failed(format!("cannot connect to {consumer_grpc}: {e}")))?;
    let mut client = ProvenanceServiceClient::new(channel);
    let ask = |digest: &str| pb::GetProvenanceRequest {
        digest: digest.to_owned(),
        policy: String::new(),
    };
    // The last artifact warms the path (connections, the log's server known to B) and is
    // not measured: B may need a moment to learn who serves A's log.
    let warm = digests
        .pop()
        .ok_or_else(|| failed("nothing signed".into()))?;
    let deadline = Instant::now() + FEDERATION_TIMEOUT;
    loop {
        let answer = client
            .get_provenance(ask(&warm))
            .await
            .map_err(|e| failed(e.to_string()))?
            .into_inner();
        if check(&answer, &warm).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return Err(failed(format!(
                "no record of domain {signing_domain} found from the other domain within {FEDERATION_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut latencies = Vec::with_capacity(digests.len());
    for digest in &digests {
        let sent = Instant::now();
        let answer = client
            .get_provenance(ask(digest))
            .await
            .map_err(|e| failed(e.to_string()))?
            .into_inner();
        latencies.push(sent.elapsed().as_micros() as u64);
        check(&answer, digest).map_err(failed)?;
    }
    Ok(latencies)
}

async fn measure(
    args: &BenchLookupArgs,
    ca: &BenchCa,
    node: &ChildNode,
    progress: &mut dyn Write,
) -> Result<LookupBenchReport, BenchLookupError> {
    let missing = |what: &str| BenchLookupError::Node(format!("the ready file has no {what}"));
    let http = node
        .address("http")
        .ok_or_else(|| missing("http"))?
        .to_owned();
    let grpc = node
        .address("grpc")
        .ok_or_else(|| missing("grpc"))?
        .to_owned();

    // Log the artifacts: one signature each, through the HTTP write API.
    let signer = ca.issue_signer(
        &format!("spiffe://{TRUST_DOMAIN}/bench/builder"),
        Duration::from_secs(3600),
    )?;
    let client = reqwest::Client::new();
    let digests = log_artifacts(&client, &http, &signer, args.artifacts.max(1)).await?;
    let _ = writeln!(progress, "logged {} artifacts", digests.len());
    let digests = std::sync::Arc::new(digests);

    let mut channels = Vec::with_capacity(args.clients as usize);
    for _ in 0..args.clients.max(1) {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .map_err(|e| BenchLookupError::Node(e.to_string()))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| BenchLookupError::Node(format!("cannot connect to {grpc}: {e}")))?;
        channels.push(ProvenanceServiceClient::new(channel));
    }

    // Saturated: every client asks again as soon as it is answered.
    let _ = writeln!(
        progress,
        "saturated: {} clients for {:?}…",
        channels.len(),
        args.duration
    );
    let deadline = Instant::now() + args.duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut client) in channels.clone().into_iter().enumerate() {
        let digests = std::sync::Arc::clone(&digests);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut n = i;
            while Instant::now() < deadline {
                let digest = &digests[n % digests.len()];
                n = n.wrapping_mul(31).wrapping_add(7);
                let sent = Instant::now();
                let answer = client
                    .get_provenance(pb::GetProvenanceRequest {
                        digest: digest.clone(),
                        policy: String::new(),
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                latencies.push(sent.elapsed().as_micros() as u64);
                check(&answer, digest)?;
            }
            Ok::<_, String>(latencies)
        });
    }
    let mut saturated = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let latencies = joined
            .map_err(|e| BenchLookupError::Node(e.to_string()))?
            .map_err(BenchLookupError::Node)?;
        saturated.extend(latencies);
    }
    let elapsed = started.elapsed().as_secs_f64();
    saturated.sort_unstable();

    // Paced: lookup j is due at start + j / rate, spread over the clients.
    let (mut paced, mut max_lag_us) = (Vec::new(), 0u64);
    if args.rate > 0 {
        let _ = writeln!(
            progress,
            "paced: {}/s for {:?}…",
            args.rate, args.paced_duration
        );
        let total = (f64::from(args.rate) * args.paced_duration.as_secs_f64()) as u64;
        let clients = channels.len() as u64;
        let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
        let start = Instant::now() + Duration::from_millis(50);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut client) in channels.into_iter().enumerate() {
            let digests = std::sync::Arc::clone(&digests);
            tasks.spawn(async move {
                let mut latencies = Vec::new();
                let mut max_lag = 0u64;
                let mut j = i as u64;
                while j < total {
                    let due = start + interval * u32::try_from(j).unwrap_or(u32::MAX);
                    tokio::time::sleep_until(due.into()).await;
                    max_lag = max_lag.max(due.elapsed().as_micros() as u64);
                    let digest = &digests[(j as usize) % digests.len()];
                    let answer = client
                        .get_provenance(pb::GetProvenanceRequest {
                            digest: digest.clone(),
                            policy: String::new(),
                        })
                        .await
                        .map_err(|e| e.to_string())?
                        .into_inner();
                    latencies.push(due.elapsed().as_micros() as u64);
                    check(&answer, digest)?;
                    j += clients;
                }
                Ok::<_, String>((latencies, max_lag))
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (latencies, lag) = joined
                .map_err(|e| BenchLookupError::Node(e.to_string()))?
                .map_err(BenchLookupError::Node)?;
            paced.extend(latencies);
            max_lag_us = max_lag_us.max(lag);
        }
        paced.sort_unstable();
    }

    let _ = writeln!(
        progress,
        "admission: {ADMISSION_PODS} Pods of 3 images, uncached then cached…"
    );
    let (uncached, cached) = admission(&client, &http, &signer).await?;
    Ok(LookupBenchReport {
        admission_uncached_p50_ms: percentile_ms(&uncached, 50.0),
        admission_uncached_p99_ms: percentile_ms(&uncached, 99.0),
        admission_cached_p50_ms: percentile_ms(&cached, 50.0),
        admission_cached_p99_ms: percentile_ms(&cached, 99.0),
        artifacts: args.artifacts.max(1),
        clients: args.clients.max(1),
        lookups: saturated.len() as u64,
        lookups_per_sec: saturated.len() as f64 / elapsed.max(f64::EPSILON),
        saturated_p50_ms: percentile_ms(&saturated, 50.0),
        saturated_p99_ms: percentile_ms(&saturated, 99.0),
        rate: args.rate,
        p50_ms: percentile_ms(&paced, 50.0),
        p99_ms: percentile_ms(&paced, 99.0),
        max_send_lag_ms: max_lag_us as f64 / 1000.0,
        cross_domain_lookups: 0,
        cross_domain_p50_ms: 0.0,
        cross_domain_p99_ms: 0.0,
        cross_domain_max_ms: 0.0,
        pinned: args.node_cpus.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_in_ms() {
        let values: Vec<u64> = (1..=100).map(|v| v * 1000).collect();
        assert_eq!(percentile_ms(&values, 50.0), 50.0);
        assert_eq!(percentile_ms(&values, 99.0), 99.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }

    #[test]
    fn a_wrong_answer_is_refused() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let mut answer = pb::GetProvenanceResponse {
            digest: digest.clone(),
            records: vec![pb::ProvenanceRecord {
                kind: "hashedrekord".into(),
                ..Default::default()
            }],
            verdict: Some(pb::Verdict {
                allowed: true,
                reasons: vec![],
            }),
        };
        assert!(check(&answer, &digest).is_ok());
        answer.records.clear();
        assert!(check(&answer, &digest).is_err());
    }
}
